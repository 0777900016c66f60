"""Data files, results files and training manifests: reading, writing, checking.

Everything that touches the disk (or the hub, for GSM8K) lives here; utils.py stays pure (prompts, parsing,
rewards) and never imports this module. Bad input is a utils.UserError naming the file.

    >>> with tempfile.TemporaryDirectory() as folder:
    ...     atomic_write_json(os.path.join(folder, "results.json"), {"accuracy": 0.5})
    ...     read_json(os.path.join(folder, "results.json"))
    {'accuracy': 0.5}
"""

import hashlib
import json
import os
import sys
import tempfile

from utils import UserError, content_key, content_keys, gsm8k_gold, gsm8k_prompt


# ----------------------------------------------------------------------------
# JSON files: written atomically, read with one-line errors

_UMASK = os.umask(0)
os.umask(_UMASK)


def atomic_write_json(path, obj):
    """Write JSON to a temp file beside `path`, then rename: readers never see half a file."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=".json")
    try:
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600 files; results are meant to be shared
        with os.fdopen(fd, "w") as f:
            json.dump(obj, f, indent=1)
            f.write("\n")
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def read_json(path, what="file"):
    if not os.path.exists(path):
        raise UserError(f"{what} not found: {path}")
    try:
        with open(path) as f:
            return json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise UserError(f"{what} is not valid JSON: {path} ({e})") from None


def read_jsonl(path):
    """The rows of a JSON-lines file (blank lines skipped); a bad line is a UserError naming file:line."""
    rows = []
    with open(path) as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise UserError(f"{path}:{number} is not valid JSON ({e.msg})") from None
    return rows


# ----------------------------------------------------------------------------
# Provenance: what a results file or manifest was made from


def file_sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def library_versions():
    from importlib import metadata

    versions = {"python": sys.version.split()[0]}
    for name in ("torch", "transformers", "trl", "peft", "datasets", "accelerate", "unsloth", "vllm"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return versions


# ----------------------------------------------------------------------------
# Training manifests

# A training manifest lists what a trainer saw, so the eval scripts can refuse contaminated test items.
MANIFEST_NAME = "training_manifest.json"


def write_manifest(output_dir, records, data_path, parent=None, parent_dir=None):
    """What a run trained on; with `parent` (the manifest of the model it started from, in `parent_dir`) that
    model's items too, so the eval scripts' guard covers the whole history."""
    hashes = [r["hash"] for r in records]
    pairs = [content_keys(r) for r in records]  # one reading of each prompt for both keys
    keys, renamed = [k for k, _ in pairs], [r for _, r in pairs]
    manifest = {
        "data_file": os.path.abspath(data_path),
        "data_sha256": file_sha256(data_path),
        "splits": sorted({r["split"] for r in records}),
        "ids": [r["id"] for r in records],
        "hashes": hashes,
        "content_keys": keys,  # what the eval scripts' guard compares (stored hashes can be copied or changed)
        "renamed_content_keys": renamed,  # the same problems with other variable names
    }
    if parent:
        manifest["inherited"] = {"from": os.path.abspath(parent_dir), "data_sha256": parent.get("data_sha256"),
                                 "ids": parent["ids"], "hashes": parent["hashes"]}
        # an older parent manifest has no content keys: its hashes are data.py's content keys
        for field, ours, theirs in (("hashes", hashes, parent["hashes"]),
                                    ("content_keys", keys, parent.get("content_keys", parent["hashes"])),
                                    ("renamed_content_keys", renamed, parent.get("renamed_content_keys", []))):
            seen = set(ours)  # once, not per parent key: manifests hold tens of thousands
            manifest[field] = ours + [k for k in theirs if k not in seen]
    atomic_write_json(os.path.join(output_dir, MANIFEST_NAME), manifest)


def read_manifest(adapter_dir):
    """The manifest of a trained folder, or None if it has none; a checkpoint-N folder's is its run's (the
    parent's). A manifest that is not a {ids, hashes} mapping is an error, never a silent pass."""
    path = os.path.join(adapter_dir, MANIFEST_NAME)
    if not os.path.exists(path) and os.path.basename(os.path.normpath(adapter_dir)).startswith("checkpoint-"):
        path = os.path.join(os.path.dirname(os.path.normpath(adapter_dir)), MANIFEST_NAME)
    if not os.path.exists(path):
        return None
    manifest = read_json(path, "training manifest")
    if not isinstance(manifest, dict) or not all(isinstance(manifest.get(k), list) for k in ("ids", "hashes")):
        raise UserError(f"{path} is not a training manifest (a mapping with 'ids' and 'hashes' lists)")
    for field in ("content_keys", "renamed_content_keys"):
        if not isinstance(manifest.get(field, []), list):
            raise UserError(f"{path}: {field!r} is not a list")
    return manifest


# ----------------------------------------------------------------------------
# data.json (written by data.py): one split's records, checked

SPLITS = ("train", "val", "test", "test_ood", "test_near", "test_far")


def load_split(path, split, missing_hint=""):
    """Records of one split of data.json (written by data.py); `missing_hint` ends the error of an absent split."""
    if split not in SPLITS:
        raise UserError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")
    data = read_json(path, "data file")
    records = data.get("records") if isinstance(data, dict) else data
    if not isinstance(records, list):
        raise UserError(f"{path} has no 'records' list; regenerate it with data.py")
    ids = [r.get("id") for r in records if isinstance(r, dict)]
    if len(set(ids)) != len(ids):
        duplicate = next(i for i in ids if ids.count(i) > 1)
        raise UserError(f"{path} has more than one record with id {duplicate!r}; regenerate it with data.py")
    chosen = [r for r in records if isinstance(r, dict) and r.get("split") == split]
    if not chosen:
        raise UserError(f"{path} has no records in split {split!r}{missing_hint}")
    for r in chosen:
        missing = [k for k in ("id", "prompt", "answer") if k not in r]
        if missing or not isinstance(r["answer"], dict):
            what = f"lacks {', '.join(missing)}" if missing else "has an answer that is not a {variable: value} mapping"
            raise UserError(f"{path}: record {r.get('id')!r} {what}; regenerate it with data.py")
    check_splits_disjoint(path, [r for r in records if isinstance(r, dict)])
    return chosen


_DISJOINT = set()  # (path, mtime, size) of data files already checked: a script reads train and val separately


def check_splits_disjoint(path, records):
    """Refuse a data file in which two splits hold the same problem (content_key), whatever their ids or hashes."""
    stat = os.stat(path)
    if (os.path.abspath(path), stat.st_mtime_ns, stat.st_size) in _DISJOINT:
        return
    first = {}  # content key -> the first record with it
    for r in records:
        if not r.get("prompt"):  # reported as lacking a prompt when its split is read
            continue
        other = first.setdefault(content_key(r), r)
        if other.get("split") != r.get("split"):
            raise UserError(f"{path}: {r.get('id')!r} ({r.get('split')}) and {other.get('id')!r} ({other.get('split')}) "
                            "are the same problem, so its splits overlap; regenerate it with data.py")
    _DISJOINT.add((os.path.abspath(path), stat.st_mtime_ns, stat.st_size))


# ----------------------------------------------------------------------------
# GSM8K files (parsing the gold answer is utils.gsm8k_gold)


def load_gsm8k(split="test", gsm8k_dir=None):
    """GSM8K as records {id, question, answer (number), prompt}.

    From `gsm8k_dir` (or env GSM8K_DIR) holding train.jsonl/test.jsonl, else the hub's openai/gsm8k.
    """
    gsm8k_dir = gsm8k_dir or os.environ.get("GSM8K_DIR")
    if gsm8k_dir:
        path = os.path.join(gsm8k_dir, f"{split}.jsonl")
        if not os.path.exists(path):
            raise UserError(f"GSM8K file not found: {path}")
        rows = read_jsonl(path)
        for number, row in enumerate(rows, 1):
            if not isinstance(row, dict) or not {"question", "answer"} <= row.keys():
                raise UserError(f"{path}: row {number} lacks 'question' or 'answer'")
    else:
        try:
            import datasets

            rows = list(datasets.load_dataset("openai/gsm8k", "main", split=split))
        except Exception as e:  # offline, hub down, no datasets: all end the same way for the user
            raise UserError(
                f"GSM8K is unavailable ({type(e).__name__}); pass --gsm8k-dir DIR or set GSM8K_DIR "
                "to a folder with train.jsonl/test.jsonl"
            ) from None
    records = []
    for i, r in enumerate(rows):
        gold = gsm8k_gold(r["answer"])
        if gold is None:  # scoring it would count every model wrong on it
            raise UserError(f"GSM8K {split} row {i + 1} has no '#### number' in its answer: {str(r['answer'])[-80:]!r}")
        records.append({"id": f"gsm8k-{split}-{i:04d}", "question": r["question"], "answer": gold,
                        "prompt": gsm8k_prompt(r["question"])})
    return records


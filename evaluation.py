"""The harness both eval scripts share: flags, resume, generation, scoring, summary, results file.

A benchmark script (linear_equation_eval.py, gsm8k_eval.py) supplies a `Benchmark`: how to load its items,
how to parse and score an output, its protocol; `run(benchmark, argv)` does the rest:

    settings -> items (--limit) -> contamination guard -> model -> generate, appending each finished item
    to <out>/.<name>_<benchmark>.partial.jsonl -> score -> summary -> <out>/<name>_<benchmark>.json

The sidecar's first line holds the settings, so `--resume` continues only the same run; the results file
is written atomically and the sidecar removed after it. `--rescore FILE` re-parses stored texts, no model.

Several GPUs: `torchrun --nproc_per_node N <script> ...` (or `accelerate launch`) starts one process per GPU;
each decodes every N-th batch of the whole run on cuda:LOCAL_RANK, appending to its own sidecar
(.<name>_<benchmark>.partial.rank<R>.jsonl), and rank 0 gathers the outputs, scores them in item order and
writes the one results file. Greedy results equal a single process's (generation.generate(shard=...)).
"""

import argparse
import datetime
import hashlib
import json
import os
import re
import sys
import time
from dataclasses import dataclass, field
from typing import Callable, Optional

import modeling
from records import atomic_write_json, library_versions, read_json, read_manifest
from utils import MAX_NEW_TOKENS, UserError, content_keys, is_main_process, process_info, wilson_interval

SAMPLING_FIELDS = ("max_new_tokens", "num_samples", "temperature", "top_p", "top_k")
GREEDY = {"num_samples": 1, "temperature": 0.0, "top_p": 1.0, "top_k": 0}
CRASH_ENV = "EVAL_CRASH_AFTER"  # tests: raise after this many items were saved, to simulate a crash


@dataclass
class Benchmark:
    name: str  # "linear_equation" | "gsm8k"
    modes: tuple  # parser modes, strictest first; the first one also counts format failures
    load: Callable  # args -> (items [{id, prompt, answer, hash?}], data {data_file, data_sha256, split})
    parse: Callable  # (text, answer, mode) -> parsed value or None
    correct: Callable  # (parsed, answer) -> bool
    protocol: dict  # the original study's sampling settings (`--protocol original`)
    max_new_tokens: int = MAX_NEW_TOKENS  # greedy runs (utils.py: the token budgets' home)


@dataclass
class EvalArguments:
    """Flags shared by the eval scripts; each script adds its data flags."""

    model: str = field(default=modeling.DEFAULT_MODEL, metadata={
        "help": "hub id, local directory, or the embedded 'smollm2-135m'"})
    adapter: Optional[str] = field(default=None, metadata={"help": "PEFT LoRA directory evaluated on top of --model"})
    limit: Optional[int] = field(default=None, metadata={"help": "evaluate only the first N items (quick runs)"})
    max_new_tokens: Optional[int] = field(default=None, metadata={
        "help": f"generation budget per output (default {MAX_NEW_TOKENS}; --protocol original sets its own)"})
    num_samples: Optional[int] = field(default=None, metadata={"help": "outputs per item (default 1: greedy)"})
    temperature: Optional[float] = field(default=None, metadata={"help": "0 = greedy (default)"})
    top_p: Optional[float] = field(default=None, metadata={"help": "nucleus sampling mass (default 1.0)"})
    top_k: Optional[int] = field(default=None, metadata={"help": "sample from the k likeliest tokens; 0 = all"})
    protocol: Optional[str] = field(default=None, metadata={
        "help": "'original': the original study's sampling (n, T=0.7, top_p 0.8, top_k 20); flags override it"})
    batch_size: Optional[int] = field(default=None, metadata={
        "help": "most rows per batch: the prompts are split evenly into the fewest such batches "
                "(default 256 on CUDA, 16 on CPU)"})
    backend: str = field(default="auto", metadata={"help": "auto | vllm | hf (auto: vLLM when installed with CUDA)"})
    device: Optional[str] = field(default=None, metadata={"help": "cuda | cpu (default: cuda if available)"})
    dtype: Optional[str] = field(default=None, metadata={"help": "bf16 | fp16 | fp32 (default: bf16 on CUDA, fp32 on CPU)"})
    static_cache: str = field(default="auto", metadata={
        "help": "HF backend: auto | on | off (auto: static cache + CUDA-graphed decode on CUDA)"})
    name: Optional[str] = field(default=None, metadata={"help": "run name for the results file (default: from model+adapter)"})
    out: str = field(default="results", metadata={"help": "directory for results files"})
    resume: bool = field(default=False, metadata={
        "help": "continue an interrupted run from its .partial.jsonl (a finished one with the same settings is kept)"})
    overwrite: bool = field(default=False, metadata={"help": "replace a finished results file with the same --name"})
    rescore: Optional[str] = field(default=None, metadata={
        "help": "re-parse the texts in this results file with the current parsers and rewrite it (no model)"})
    allow_overlap: bool = field(default=False, metadata={
        "help": "evaluate even items the adapter was trained on (recorded in the summary)"})
    seed: int = field(default=0, metadata={"help": "sampling seed"})


def parse_args(arg_classes, argv):
    from trl import TrlParser

    parser = TrlParser(arg_classes)
    try:
        return parser.parse_args_and_config(args=argv)
    except (ValueError, OSError) as e:  # a bad --config file
        raise UserError(str(e)) from None


# ----------------------------------------------------------------------------
# Settings


def sampling_settings(benchmark, args):
    """Explicit flags, else --protocol original, else greedy with the benchmark's token budget."""
    if args.protocol not in (None, "original"):
        raise UserError(f"unknown --protocol {args.protocol!r}; the only one is 'original'")
    base = dict(GREEDY, max_new_tokens=benchmark.max_new_tokens)
    if args.protocol == "original":
        base.update(benchmark.protocol)
    settings = {k: getattr(args, k) if getattr(args, k) is not None else base[k] for k in SAMPLING_FIELDS}
    if settings["num_samples"] < 1 or settings["max_new_tokens"] < 1:
        raise UserError("--num-samples and --max-new-tokens must be at least 1")
    if settings["temperature"] <= 0 and settings["num_samples"] > 1:
        raise UserError("--num-samples > 1 needs --temperature > 0 (greedy outputs would all be the same)")
    return settings


def default_name(model, adapter):
    """'Qwen/Qwen2.5-1.5B-Instruct' + 'outputs/sft/' -> 'Qwen2.5-1.5B-Instruct+sft'."""
    name = os.path.basename(os.path.normpath(model))
    if adapter:
        parts = os.path.normpath(adapter).split(os.sep)
        tail = parts[-1] if not parts[-1].startswith("checkpoint-") or len(parts) < 2 else "-".join(parts[-2:])
        name += "+" + tail
    return re.sub(r"[^A-Za-z0-9._+-]", "_", name)


def results_path(benchmark, args, split):
    suffix = benchmark.name + ("" if split in ("test", None) or benchmark.name == "gsm8k" else f"_{split}")
    return os.path.join(args.out, f"{args.name}_{suffix}.json")


def items_hash(items):
    """Content hash of what is evaluated (ids, prompts, answers): the resume key for hub data."""
    h = hashlib.sha256()
    for item in items:
        h.update(json.dumps([item["id"], item["prompt"], item["answer"]], sort_keys=True).encode())
    return h.hexdigest()


def check_overlap(items, trained_dirs, data, allow):
    """Items that the model folder (a full fine-tune) or the adapter was trained on, read from the training manifests
    they carry: by content (utils.content_key of the prompt; a manifest without content keys, written before them,
    by its hashes, which are data.py's content keys), with the variables renamed, by stored hash, or by id in the
    same data file. Returns their ids, sorted."""
    overlap = set()
    keys = {item["id"]: content_keys(item) for item in items}  # (as written, variables renamed)
    for directory in trained_dirs:
        manifest = read_manifest(directory) if directory and os.path.isdir(directory) else None
        if not manifest:
            continue
        hashes = set(manifest.get("hashes", []))
        trained_keys = set(manifest.get("content_keys") or hashes)
        trained_renamed = set(manifest.get("renamed_content_keys", []))
        same_file = manifest.get("data_sha256") == data["data_sha256"]
        ids = set(manifest.get("ids", [])) if same_file else set()
        found = [item["id"] for item in items
                 if keys[item["id"]][0] in trained_keys or keys[item["id"]][1] in trained_renamed
                 or item.get("hash") in hashes or item["id"] in ids]
        if found and not allow:
            raise UserError(
                f"{len(found)} of {len(items)} items were in the training data of {directory} "
                f"({os.path.join(directory, 'training_manifest.json')}), e.g. {found[0]}; evaluate another split "
                "or pass --allow-overlap to evaluate anyway")
        overlap.update(found)
    return sorted(overlap)


# ----------------------------------------------------------------------------
# Sidecar: a header line with the settings, then one {"id", "outputs", "elapsed_s"} line per finished item


def partial_path(path, rank=0, world=1):
    """The sidecar of one process: .<base>.partial.jsonl, or .<base>.partial.rank<R>.jsonl when sharded."""
    directory, base = os.path.split(path)
    return os.path.join(directory, "." + base.replace(".json", ".partial" + (f".rank{rank}" if world > 1 else "")
                                                       + ".jsonl"))


def partial_paths(path):
    """Every sidecar of this results file, whatever number of processes wrote them (resume may change it)."""
    directory, base = os.path.split(path)
    pattern = re.escape("." + base.replace(".json", ".partial")) + r"(\.rank\d+)?\.jsonl"
    names = os.listdir(directory or ".") if os.path.isdir(directory or ".") else []
    return sorted(os.path.join(directory, n) for n in names if re.fullmatch(pattern, n))


def read_partial(path, header, resume):
    """The lines {id, outputs, elapsed_s} saved by an interrupted run with these settings."""
    if not os.path.exists(path):
        return []
    if not resume:
        raise UserError(f"an interrupted run left {path}; pass --resume to continue it, or delete it to start over")
    with open(path) as f:
        lines = [line for line in f if line.strip()]
    try:
        saved_header = json.loads(lines[0])["settings"] if lines else None
        rows = []
        for line in lines[1:]:
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:  # the last line of a killed run may be half-written
                break
    except (json.JSONDecodeError, KeyError, TypeError):
        raise UserError(f"{path} is not a partial results file; delete it to start over") from None
    if saved_header != header:
        changed = sorted(k for k in set(header) | set(saved_header or {})
                         if (saved_header or {}).get(k) != header.get(k))
        raise UserError(f"{path} was written with other settings ({', '.join(changed)} differ); rerun with the "
                        "same flags, or delete it to start over")
    return rows


def open_partial(path, header, rows):
    """Rewrite the sidecar cleanly (header + complete lines), then append to it."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path + ".tmp", "w") as f:
        f.write(json.dumps({"settings": header}) + "\n")
        for row in rows:
            f.write(json.dumps(row) + "\n")
    os.replace(path + ".tmp", path)
    return open(path, "a")


# ----------------------------------------------------------------------------
# Generation


def load_generator(args, settings, shard=None):
    """Load the model now, so a bad model or adapter fails before any file is written; returns a function
    prompts -> iterator of (index, outputs), only this process's share of them with `shard` (rank, world)."""
    import generation

    common = dict(max_new_tokens=settings["max_new_tokens"], num_samples=settings["num_samples"],
                  temperature=settings["temperature"], top_p=settings["top_p"], top_k=settings["top_k"],
                  seed=args.seed)
    if args.backend_used == "vllm":
        dtype = str(modeling.parse_dtype(args.dtype)).replace("torch.", "") if args.dtype else "auto"
        llm, lora = generation.load_vllm(modeling.resolve_model(args.model), args.adapter, dtype, args.seed)
        return lambda prompts: generation.generate_vllm(llm, prompts, lora=lora, **common)
    model, tokenizer = modeling.load_model(args.model, args.adapter, device=args.device, dtype=args.dtype)
    static = {"auto": "auto", "on": True, "off": False}[args.static_cache]
    return lambda prompts: generation.generate(model, tokenizer, prompts, batch_size=args.batch_size,
                                               static_cache=static, shard=shard, **common)


def generate_outputs(generator, items, sidecar, done, elapsed_before):
    """Generate what `done` lacks (this process's share when sharded), appending each finished item to the
    sidecar; returns ({id: outputs}, seconds)."""
    todo = [item for item in items if item["id"] not in done]
    crash_after = int(os.environ.get(CRASH_ENV, "0") or 0)
    start, saved = time.time(), 0
    for index, outputs in generator([item["prompt"] for item in todo]):
        done[todo[index]["id"]] = outputs
        elapsed = round(elapsed_before + time.time() - start, 3)
        sidecar.write(json.dumps({"id": todo[index]["id"], "outputs": outputs, "elapsed_s": elapsed}) + "\n")
        sidecar.flush()
        saved += 1
        if crash_after and saved >= crash_after:
            import torch.distributed as dist

            # all save before one dies (torchrun kills the rest); so every rank must reach crash_after items
            if dist.is_available() and dist.is_initialized():
                dist.barrier()
            raise RuntimeError(f"{CRASH_ENV}={crash_after}: simulated crash")
    return done, elapsed_before + time.time() - start


# ----------------------------------------------------------------------------
# Several processes (torchrun / accelerate launch): one per GPU, each with a share of the batches


def init_process_group():
    """gloo everywhere: only small Python objects (ids and texts) cross processes, never GPU tensors, so
    NCCL (and its NVLink setup) is not needed; the long timeout covers ranks finishing hours apart."""
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group("gloo", timeout=datetime.timedelta(hours=24))
    return dist


def gather_outputs(dist, done, elapsed):
    """Every process's {id: outputs} merged, and the slowest process's generation time (the run's wall time)."""
    gathered = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, (done, elapsed))
    merged = {}
    for part, _ in gathered:
        merged.update(part)
    return merged, max(seconds for _, seconds in gathered)


# ----------------------------------------------------------------------------
# Scoring and summary


def score_records(benchmark, items, outputs_by_id):
    records = []
    for item in items:
        outputs = []
        for out in outputs_by_id[item["id"]]:
            parsed = {m: benchmark.parse(out["text"], item["answer"], m) for m in benchmark.modes}
            correct = {m: bool(benchmark.correct(parsed[m], item["answer"])) for m in benchmark.modes}
            outputs.append({"text": out["text"], "num_tokens": out["num_tokens"], "truncated": out["truncated"],
                            "parsed": parsed, "correct": correct})
        records.append({"id": item["id"], "answer": item["answer"], "outputs": outputs})
    return records


def summarize(benchmark, records):
    outputs = [o for r in records for o in r["outputs"]]
    accuracy = {}
    for mode in benchmark.modes:
        correct = sum(o["correct"][mode] for o in outputs)
        lo, hi = wilson_interval(correct, len(outputs))
        accuracy[mode] = {"correct": correct, "total": len(outputs),
                          "accuracy": correct / len(outputs) if outputs else 0.0, "ci95": [lo, hi]}
    return {
        "num_items": len(records), "num_outputs": len(outputs), "modes": list(benchmark.modes),
        "accuracy": accuracy,
        "format_failures": sum(o["parsed"][benchmark.modes[0]] is None for o in outputs),
        "truncated": sum(bool(o["truncated"]) for o in outputs),
        "generated_tokens": sum(o["num_tokens"] for o in outputs),
    }


def print_summary(summary, path):
    if not is_main_process():
        return
    g = summary["generation"]
    sampling = "greedy" if g["temperature"] <= 0 else f"T={g['temperature']}, top_p {g['top_p']}, top_k {g['top_k']}"
    adapter = f" + {summary['adapter']}" if summary.get("adapter") else ""
    n = summary["num_outputs"]
    print(f"\n{summary['benchmark']} | {summary['model']}{adapter} | split {summary['split']} | "
          f"{summary['num_items']} items x {g['num_samples']} | {sampling}, {g['max_new_tokens']} tokens")
    for mode, acc in summary["accuracy"].items():
        lo, hi = acc["ci95"]
        print(f"{mode:<9} Final: {acc['correct']}/{acc['total']} ({100 * acc['accuracy']:.2f}%)  "
              f"95% CI [{100 * lo:.1f}, {100 * hi:.1f}]")
    print(f"format failures {summary['format_failures']}/{n} | truncated {summary['truncated']}/{n} | "
          f"{summary.get('wall_time_s', 0):.0f} s | {summary.get('tokens_per_s', 0):.1f} tok/s")
    print(f"results: {path}")


def rescore(benchmark, path):
    """Recompute parsed values, correctness and the summary from the stored texts."""
    if os.path.isdir(path):
        raise UserError(f"--rescore {path} is a folder; give one results file")
    results = read_json(path, "results file")
    summary = results.get("summary") if isinstance(results, dict) else None
    if not isinstance(summary, dict) or summary.get("benchmark") != benchmark.name:
        raise UserError(f"{path} is not a {benchmark.name} results file")
    try:
        items = [{"id": r["id"], "answer": r["answer"]} for r in results["records"]]
        outputs = {r["id"]: r["outputs"] for r in results["records"]}
        records = score_records(benchmark, items, outputs)
    except (KeyError, TypeError) as e:
        raise UserError(f"{path} has malformed records ({type(e).__name__}: {e})") from None
    summary.update(summarize(benchmark, records))
    summary["rescored_at"] = time.strftime("%Y-%m-%dT%H:%M:%S")
    atomic_write_json(path, {"summary": summary, "records": records})
    print_summary(summary, path)
    return {"summary": summary, "records": records}


# ----------------------------------------------------------------------------
# The pipeline


def check_flags(args):
    """Typos fail here, before anything slow is loaded."""
    if args.backend not in ("auto", "vllm", "hf"):
        raise UserError(f"unknown --backend {args.backend!r}; choose auto, vllm or hf")
    if args.static_cache not in ("auto", "on", "off"):
        raise UserError(f"unknown --static-cache {args.static_cache!r}; choose auto, on or off")
    if args.dtype:
        modeling.parse_dtype(args.dtype)
    if args.model != modeling.SMOLLM2_ALIAS:  # (the alias converts the embedded GGUF: not a cheap check)
        modeling.resolve_model(args.model)  # a missing local folder: one line now, not after torch has loaded
    if args.adapter and not os.path.exists(os.path.join(args.adapter, "adapter_config.json")):
        raise UserError(f"no LoRA adapter (adapter_config.json) in {args.adapter}")
    if args.adapter:
        modeling.check_adapter_base(args.model, args.adapter)
    if args.batch_size is not None and args.batch_size < 1:
        raise UserError(f"--batch-size must be at least 1 (got {args.batch_size})")
    if args.name is not None and (not args.name or args.name in (".", "..") or any(c in args.name for c in "/\\")):
        raise UserError(f"--name {args.name!r} must be a file name, not a path (the folder is --out)")
    if os.path.exists(args.out) and not os.path.isdir(args.out):
        raise UserError(f"--out {args.out} is a file; give a folder for the results files")


FINISHED_KEYS = ("model", "adapter", "split", "data_sha256", "limit")  # with the generation settings below


def check_finished(path, args, settings, dtype, data):
    """A finished results file at `path`: kept (--resume with the same settings: returned), replaced
    (--overwrite: None), else refused, so that a run never silently replaces another one."""
    if args.overwrite:
        return None
    if not args.resume:
        raise UserError(f"{path} exists (a finished run); pass --overwrite to replace it, --resume to keep it, or "
                        "choose another --name")
    results = read_json(path, "results file")
    summary = results.get("summary", {}) if isinstance(results, dict) else {}
    ours = {"model": args.model, "adapter": args.adapter, "split": data["split"], "data_sha256": data["data_sha256"],
            "limit": args.limit}
    generation = summary.get("generation") or {}
    wanted = {**settings, "seed": args.seed, "dtype": dtype}
    changed = [k for k in FINISHED_KEYS if summary.get(k) != ours[k]]
    changed += [k for k in wanted if generation.get(k) != wanted[k]]
    if changed:
        raise UserError(f"{path} was made with other settings ({', '.join(changed)} differ); pass --overwrite to "
                        "replace it, or choose another --name")
    return results


def main(benchmark, data_arguments, argv=None):
    """Parse flags (EvalArguments + the script's data flags), evaluate, return the results dict."""
    eval_args, data_args = parse_args((EvalArguments, data_arguments), argv)
    args = argparse.Namespace(**vars(eval_args), **vars(data_args))
    args.command = " ".join(["python", os.path.basename(sys.argv[0])] + list(sys.argv[1:] if argv is None else argv))
    return run(benchmark, args)


def run(benchmark, args):
    """Evaluate per `args` (EvalArguments + the benchmark's data flags); returns the results dict."""
    if args.rescore:
        return rescore(benchmark, args.rescore)
    settings = sampling_settings(benchmark, args)
    check_flags(args)
    items, data = benchmark.load(args)
    if args.limit is not None:
        items = items[: max(args.limit, 0)]
    if not items:
        raise UserError("no items to evaluate")
    overlap = check_overlap(items, [args.model, args.adapter], data, args.allow_overlap)

    import generation  # torch: only once the cheap checks have passed

    rank, world, local_rank = process_info()
    if args.backend == "auto":  # sharding is our HF path's; vLLM runs as one process
        args.backend_used = "vllm" if world == 1 and generation.vllm_available() else "hf"
    else:
        args.backend_used = args.backend
    if args.backend_used == "vllm" and not generation.vllm_available():
        raise UserError("--backend vllm needs vLLM installed and a CUDA GPU; use --backend hf")
    if args.backend_used == "vllm" and world > 1:
        raise UserError("--backend vllm runs as one process; start it without torchrun/accelerate, or use --backend hf")
    device = args.device or modeling.default_device()
    batch_size = args.batch_size or (generation.CUDA_BATCH_SIZE if device.startswith("cuda") else generation.CPU_BATCH_SIZE)
    dtype = str(modeling.parse_dtype(args.dtype) if args.dtype else modeling.default_dtype(device)).replace("torch.", "")
    args.batch_size, args.device = batch_size, device
    args.name = args.name or default_name(args.model, args.adapter)
    path = results_path(benchmark, args, data["split"])
    header = {"benchmark": benchmark.name, "model": args.model, "adapter": args.adapter, "dtype": dtype,
              "data_sha256": data["data_sha256"], "split": data["split"], "items": items_hash(items),
              "seed": args.seed, **settings}
    shown = {**header, "items": len(items), "backend": args.backend_used, "batch_size": batch_size,
             "device": device, "dtype": dtype, "allow_overlap": args.allow_overlap, "results": path}
    if rank == 0:
        print("config: " + " | ".join(f"{k} {v}" for k, v in shown.items() if v is not None)
              + (f" | processes {world}" if world > 1 else ""))

    sidecar_paths = partial_paths(path)
    if not sidecar_paths and os.path.exists(path):
        results = check_finished(path, args, settings, dtype, data)
        if results is not None:
            if rank == 0:
                print(f"{path} is complete with these settings; nothing to resume")
            print_summary(results["summary"], path)
            return results
    # Every sidecar counts (an interrupted run may have had another number of processes); each process
    # rewrites and appends to only its own.
    sidecar_path = partial_path(path, rank, world)
    done, own_rows, elapsed = {}, [], 0.0
    for p in sidecar_paths:
        rows = read_partial(p, header, args.resume)
        done.update((row["id"], row["outputs"]) for row in rows)
        elapsed = max([row.get("elapsed_s", 0.0) for row in rows] + [elapsed])  # generation time before the crash
        own_rows = rows if p == sidecar_path else own_rows
    if done and rank == 0:
        print(f"resuming: {len(done)} of {len(items)} items already done")
    dist = None
    if world > 1:
        dist = init_process_group()
        dist.barrier()  # all have read the sidecars before any writes to them: the same `done` everywhere
        if device == "cuda":  # one GPU per process; the summary keeps "cuda"
            import torch

            torch.cuda.set_device(local_rank)
            args.device = f"cuda:{local_rank}"
    if len(done) < len(items):
        generator = load_generator(args, settings, shard=(rank, world) if world > 1 else None)
        with open_partial(sidecar_path, header, own_rows) as sidecar:
            done, elapsed = generate_outputs(generator, items, sidecar, done, elapsed)
    if dist:
        done, elapsed = gather_outputs(dist, done, elapsed)

    records = score_records(benchmark, items, done)
    summary = {"benchmark": benchmark.name, "name": args.name, "model": args.model, "adapter": args.adapter,
               **data, **summarize(benchmark, records)}
    summary.update({
        "generation": {**settings, "seed": args.seed, "protocol": args.protocol, "backend": args.backend_used,
                       "batch_size": batch_size, "device": device, "dtype": dtype,
                       "static_cache": args.static_cache, "world_size": world},
        "versions": library_versions(), "wall_time_s": round(elapsed, 2),
        "tokens_per_s": round(summary["generated_tokens"] / elapsed, 2) if elapsed > 0 else 0.0,
        "allow_overlap": bool(args.allow_overlap), "overlapping_items": len(overlap),
        "overlapping_ids": overlap, "limit": args.limit,
        "command": getattr(args, "command", None),
    })
    results = {"summary": summary, "records": records}
    if rank == 0:
        atomic_write_json(path, results)
        for p in partial_paths(path):
            os.remove(p)
    print_summary(summary, path)
    return results

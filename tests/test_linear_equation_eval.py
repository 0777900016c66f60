"""linear_equation_eval.py (and the shared harness evaluation.py): results schema, resume after a crash,
rescore, the contamination guard, adapters, protocol flags, and one-line errors on bad input."""

import json
import os

import pytest

import linear_equation_eval
import utils
from conftest import run_script
from records import MANIFEST_NAME, atomic_write_json, file_sha256, load_split, read_json, write_manifest

FAST = ["--max-new-tokens", "6", "--batch-size", "4"]


@pytest.fixture(autouse=True)
def one_thread_subprocesses(monkeypatch):
    """Scripts run here get one torch thread: on a 2-core machine shared with other jobs, two threads ran
    SmolLM2 12x slower (62 s against 5 s for the same 2 x 16 tokens), waiting on each other."""
    monkeypatch.setenv("OMP_NUM_THREADS", "1")


@pytest.fixture(scope="module")
def lively_model_dir(tiny_model_dir, tmp_path_factory):
    """The tiny random model with large weights: its greedy outputs differ from item to item."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    for p in model.parameters():
        torch.nn.init.normal_(p, std=0.3)
    path = str(tmp_path_factory.mktemp("lively"))
    model.save_pretrained(path)
    AutoTokenizer.from_pretrained(tiny_model_dir).save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def adapter_dir(tiny_model_dir, tmp_path_factory):
    """A LoRA with random (non-zero) weights on the tiny model, saved as sft.py would."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(tiny_model_dir),
                           LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False))
    path = str(tmp_path_factory.mktemp("adapter") / "sft")
    model.save_pretrained(path)
    return path


def evaluate(model, data, out, *extra):
    return linear_equation_eval.main(["--model", model, "--data", data, "--out", str(out), *FAST, *extra])


def test_results_file(tiny_model_dir, tiny_data, tmp_path):
    results = evaluate(tiny_model_dir, tiny_data, tmp_path, "--limit", "3")
    name = os.path.basename(tiny_model_dir)
    path = tmp_path / f"{name}_linear_equation.json"
    assert read_json(str(path)) == json.loads(json.dumps(results))
    assert not list(tmp_path.glob(".*partial*"))  # the sidecar is gone once the results are written
    s = results["summary"]
    assert (s["benchmark"], s["name"], s["split"], s["modes"]) == ("linear_equation", name, "test", ["strict", "lenient"])
    assert s["data_sha256"] == file_sha256(tiny_data) and s["num_items"] == s["num_outputs"] == 3
    assert s["generation"]["max_new_tokens"] == 6 and s["generation"]["temperature"] == 0.0
    assert s["accuracy"]["strict"]["total"] == 3 and s["accuracy"]["strict"]["ci95"][0] == 0.0
    assert s["truncated"] == sum(o["truncated"] for r in results["records"] for o in r["outputs"])
    assert s["format_failures"] == 3 and s["allow_overlap"] is False and "torch" in s["versions"]
    assert s["tokens_per_s"] > 0 and s["wall_time_s"] > 0
    test_ids = [r["id"] for r in load_split(tiny_data, "test")][:3]
    assert [r["id"] for r in results["records"]] == test_ids
    output = results["records"][0]["outputs"][0]
    assert set(output) == {"text", "num_tokens", "truncated", "parsed", "correct"}
    assert set(output["parsed"]) == set(output["correct"]) == {"strict", "lenient"}


def test_resume_after_crash_gives_the_same_records(warm_python, lively_model_dir, tiny_data, tmp_path, monkeypatch):
    whole = evaluate(lively_model_dir, tiny_data, tmp_path / "whole", "--batch-size", "2")
    assert len({r["outputs"][0]["text"] for r in whole["records"]}) > 1

    out = tmp_path / "crashed"
    args = ["--model", lively_model_dir, "--data", tiny_data, "--out", str(out), *FAST, "--name", "run",
            "--batch-size", "2"]
    monkeypatch.setenv("EVAL_CRASH_AFTER", "2")  # the process dies (traceback, exit 1) after saving 2 items
    crashed = warm_python.run("linear_equation_eval.py", *args)  # a RuntimeError: a traceback and exit 1
    monkeypatch.delenv("EVAL_CRASH_AFTER")
    assert crashed.returncode == 1 and "simulated crash" in crashed.stderr
    sidecar = out / ".run_linear_equation.partial.jsonl"
    lines = sidecar.read_text().splitlines()
    assert len(lines) == 3 and "settings" in json.loads(lines[0])  # header + the 2 items saved before the crash
    assert not (out / "run_linear_equation.json").exists()
    with open(sidecar, "a") as f:
        f.write('{"id": "test-00')  # a kill in the middle of a write leaves half a line

    with pytest.raises(utils.UserError, match="--resume"):
        linear_equation_eval.main(args)  # a leftover sidecar is never silently overwritten
    with pytest.raises(utils.UserError, match="max_new_tokens"):
        linear_equation_eval.main(args + ["--resume", "--max-new-tokens", "7"])
    resumed = linear_equation_eval.main(args + ["--resume", "--batch-size", "3"])
    assert resumed["records"] == whole["records"]
    assert not sidecar.exists()


def test_rescore(tiny_model_dir, tiny_data, tmp_path):
    results = evaluate(tiny_model_dir, tiny_data, tmp_path, "--limit", "2", "--name", "r")
    path = tmp_path / "r_linear_equation.json"
    record, other = results["records"]
    answer = ", ".join(f"{v} = {n}" for v, n in record["answer"].items())
    record["outputs"][0]["text"] = f"<think>solved</think><answer>{answer}</answer>"
    other["outputs"][0]["text"] = "so " + ", ".join(f"{v} = {n}" for v, n in other["answer"].items())
    atomic_write_json(str(path), results)
    rescored = linear_equation_eval.main(["--rescore", str(path)])
    assert read_json(str(path)) == json.loads(json.dumps(rescored))
    first, second = (r["outputs"][0] for r in rescored["records"])
    assert first["correct"] == {"strict": True, "lenient": True} and first["parsed"]["strict"] == record["answer"]
    assert second["correct"] == {"strict": False, "lenient": True}
    acc = rescored["summary"]["accuracy"]
    assert (acc["strict"]["correct"], acc["lenient"]["correct"], rescored["summary"]["format_failures"]) == (1, 2, 1)
    assert rescored["summary"]["generation"] == results["summary"]["generation"]


def test_adapter_protocol_and_overlap_guard(tiny_model_dir, adapter_dir, tiny_data, tmp_path):
    # protocol original sets n=5, T=0.7, top_p 0.8, top_k 20; an explicit flag still wins
    results = evaluate(tiny_model_dir, tiny_data, tmp_path, "--adapter", adapter_dir, "--limit", "2",
                       "--protocol", "original", "--num-samples", "2", "--split", "val")
    s = results["summary"]
    assert s["name"] == os.path.basename(tiny_model_dir) + "+sft" and s["adapter"] == adapter_dir
    assert (tmp_path / f"{s['name']}_linear_equation_val.json").exists() and s["split"] == "val"
    g = s["generation"]
    assert (g["num_samples"], g["temperature"], g["top_p"], g["top_k"]) == (2, 0.7, 0.8, 20)
    assert s["num_outputs"] == 4 and all(len(r["outputs"]) == 2 for r in results["records"])
    plain = evaluate(tiny_model_dir, tiny_data, tmp_path, "--limit", "2", "--split", "val")
    with_adapter = evaluate(tiny_model_dir, tiny_data, tmp_path, "--adapter", adapter_dir, "--limit", "2",
                            "--split", "val", "--overwrite")  # the same name as the protocol run above
    assert plain["records"] != with_adapter["records"]  # the LoRA is applied

    records = load_split(tiny_data, "test")
    write_manifest(adapter_dir, records[1:2], tiny_data)
    try:
        with pytest.raises(utils.UserError, match="1 of 3 items.*test-0001.*--allow-overlap"):
            evaluate(tiny_model_dir, tiny_data, tmp_path, "--adapter", adapter_dir, "--limit", "3")
        results = evaluate(tiny_model_dir, tiny_data, tmp_path, "--adapter", adapter_dir, "--limit", "3",
                           "--allow-overlap")
        assert results["summary"]["allow_overlap"] is True and results["summary"]["overlapping_items"] == 1
        assert results["summary"]["overlapping_ids"] == ["test-0001"]
    finally:
        os.remove(os.path.join(adapter_dir, MANIFEST_NAME))


@pytest.fixture
def bad_run(warm_python, tmp_path):
    """linear_equation_eval.py's command line on bad input: exit 2, one error line, nothing written; the runs
    share one interpreter (conftest.WarmPython)."""

    def run(*args, data=None):
        out = tmp_path / "out"
        result = warm_python.run("linear_equation_eval.py", "--out", str(out), "--max-new-tokens", "2",
                                 *(["--data", data] if data else []), *args)
        assert result.returncode == 2, result.stderr
        errors = [line for line in result.stderr.splitlines() if "error" in line.lower()]
        assert len(errors) == 1 and errors[0].startswith("error: ") and "Traceback" not in result.stderr, result.stderr
        assert not out.exists() or not any(out.iterdir())
        return errors[0]

    return run


def test_bad_input(bad_run, tiny_model_dir, tiny_data, tmp_path, smollm2_dir):
    broken = tmp_path / "broken.json"
    broken.write_text('{"records": [')
    assert "not found" in bad_run("--model", tiny_model_dir, data=str(tmp_path / "missing.json"))
    assert "not valid JSON" in bad_run("--model", tiny_model_dir, data=str(broken))
    assert "unknown split" in bad_run("--model", tiny_model_dir, "--split", "tset", data=tiny_data)
    assert "--protocol" in bad_run("--model", tiny_model_dir, "--protocol", "new", data=tiny_data)
    assert "model folder not found" in bad_run("--model", str(tmp_path / "no-such-model"), data=tiny_data)
    assert "adapter" in bad_run("--model", tiny_model_dir, "--adapter", str(tmp_path), data=tiny_data)


def test_adapter_for_another_model(bad_run, adapter_dir, smollm2_dir, tiny_data, tmp_path):
    message = bad_run("--model", smollm2_dir, "--adapter", adapter_dir, "--limit", "1", data=tiny_data)
    assert "does not match the model" in message and "hidden size 32 vs 576" in message


def test_adapter_with_more_layers_of_the_same_width_is_refused(bad_run, tiny_model_dir, tiny_data, tmp_path):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.from_pretrained(tiny_model_dir)
    config.num_hidden_layers = 30  # the case: a 30-layer SmolLM2 adapter on a 2-layer model, same width
    model = get_peft_model(AutoModelForCausalLM.from_config(config), LoraConfig(r=2, target_modules=["q_proj"]))
    model.save_pretrained(str(tmp_path / "deep"))
    message = bad_run("--model", tiny_model_dir, "--adapter", str(tmp_path / "deep"), data=tiny_data)
    assert "does not match the model" in message and "layers 30 vs 2" in message


def test_smollm2_end_to_end(warm_python, smollm2_dir, tiny_data, tmp_path):
    """The real model, 2 systems, 16 tokens: real text comes back and is scored (it cannot solve them yet)."""
    result = warm_python.run("linear_equation_eval.py", "--model", "smollm2-135m", "--data", tiny_data, "--limit",
                             "2", "--max-new-tokens", "16", "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert "strict    Final: " in result.stdout and "lenient   Final: " in result.stdout
    results = read_json(str(tmp_path / "smollm2-135m_linear_equation.json"))
    texts = [r["outputs"][0]["text"] for r in results["records"]]
    assert all(len(t.split()) >= 3 for t in texts), texts  # words, not padding or special tokens
    assert results["summary"]["generated_tokens"] == sum(r["outputs"][0]["num_tokens"] for r in results["records"])


# ----------------------------------------------------------------------------
# Several processes (torchrun; gloo on CPU): each takes every other batch, rank 0 writes the one results file


def torchrun(nproc, script, *args):
    """`torchrun --standalone --nproc_per_node N script args` with this Python; the CompletedProcess."""
    return run_script("-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(nproc), script, *args)


def same_results(sharded, single):
    """Records equal, and the summary too except timing, the command and the number of processes."""
    assert sharded["records"] == single["records"]
    volatile = ("wall_time_s", "tokens_per_s", "command", "generation")
    assert {k: v for k, v in sharded["summary"].items() if k not in volatile} == \
        {k: v for k, v in single["summary"].items() if k not in volatile}
    assert sharded["summary"]["generation"] == {**single["summary"]["generation"], "world_size": 2}


def test_two_processes_write_the_single_process_results(lively_model_dir, tiny_data, tmp_path):
    args = ["--model", lively_model_dir, "--data", tiny_data, *FAST, "--batch-size", "2", "--limit", "5",
            "--name", "run"]
    single = linear_equation_eval.main(args + ["--out", str(tmp_path / "one")])
    result = torchrun(2, "linear_equation_eval.py", *args, "--out", str(tmp_path / "two"))
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count("strict    Final: ") == 1  # only rank 0 prints the summary
    assert os.listdir(tmp_path / "two") == ["run_linear_equation.json"]  # no sidecars left
    sharded = read_json(str(tmp_path / "two" / "run_linear_equation.json"))
    assert len({r["outputs"][0]["text"] for r in single["records"]}) > 1
    same_results(sharded, single)


def test_resume_a_crashed_two_process_run_with_one(lively_model_dir, tiny_data, tmp_path, monkeypatch):
    args = ["--model", lively_model_dir, "--data", tiny_data, *FAST, "--batch-size", "2", "--limit", "5",
            "--name", "run", "--out", str(tmp_path)]
    whole = linear_equation_eval.main(args[:-1] + [str(tmp_path / "whole")])
    monkeypatch.setenv("EVAL_CRASH_AFTER", "1")  # each rank dies after saving its first item
    crashed = torchrun(2, "linear_equation_eval.py", *args)
    monkeypatch.delenv("EVAL_CRASH_AFTER")
    assert crashed.returncode != 0 and "simulated crash" in crashed.stderr
    sidecars = sorted(p.name for p in tmp_path.glob(".run_linear_equation.partial*.jsonl"))
    assert sidecars == [".run_linear_equation.partial.rank0.jsonl", ".run_linear_equation.partial.rank1.jsonl"]
    with pytest.raises(utils.UserError, match="--resume"):
        linear_equation_eval.main(args)
    resumed = linear_equation_eval.main(args + ["--resume"])  # one process continues the two's work
    assert resumed["records"] == whole["records"]
    assert not list(tmp_path.glob(".run_linear_equation.partial*"))


def test_finished_results_are_never_silently_replaced(tiny_model_dir, tiny_data, tmp_path):
    first = evaluate(tiny_model_dir, tiny_data, tmp_path, "--limit", "2", "--name", "run")
    path = tmp_path / "run_linear_equation.json"
    with pytest.raises(utils.UserError, match="exists.*--overwrite"):
        evaluate(tiny_model_dir, tiny_data, tmp_path, "--limit", "2", "--name", "run")
    with pytest.raises(utils.UserError, match="other settings.*limit"):  # --resume keeps only the same run
        evaluate(tiny_model_dir, tiny_data, tmp_path, "--limit", "3", "--name", "run", "--resume")
    assert read_json(str(path)) == json.loads(json.dumps(first))
    kept = evaluate(tiny_model_dir, tiny_data, tmp_path, "--limit", "2", "--name", "run", "--resume")
    assert kept["records"] == json.loads(json.dumps(first))["records"]
    replaced = evaluate(tiny_model_dir, tiny_data, tmp_path, "--limit", "3", "--name", "run", "--overwrite")
    assert replaced["summary"]["num_items"] == 3


def test_bad_names_batch_sizes_and_data(warm_python, bad_run, tiny_model_dir, tiny_data, tmp_path):
    for name in ("../x", "/abs/x", ".."):
        assert "file name" in bad_run("--model", tiny_model_dir, "--name", name, data=tiny_data)
    for size in ("0", "-1"):
        assert "--batch-size" in bad_run("--model", tiny_model_dir, "--batch-size", size, data=tiny_data)
    records = read_json(tiny_data)
    duplicated = tmp_path / "duplicated.json"
    atomic_write_json(str(duplicated), {**records, "records": records["records"] + records["records"][:1]})
    assert "more than one record" in bad_run("--model", tiny_model_dir, data=str(duplicated))
    no_prompt = tmp_path / "no_prompt.json"
    broken = [dict(r) for r in records["records"]]
    del next(r for r in broken if r["split"] == "test")["prompt"]
    atomic_write_json(str(no_prompt), {**records, "records": broken})
    assert "lacks prompt" in bad_run("--model", tiny_model_dir, data=str(no_prompt))
    a_file = tmp_path / "a_file"
    a_file.write_text("")
    result = warm_python.run("linear_equation_eval.py", "--out", str(a_file), "--model", tiny_model_dir, "--data",
                             tiny_data)
    assert result.returncode == 2 and "is a file" in result.stderr and "Traceback" not in result.stderr


def test_rescore_of_a_folder_is_one_line(warm_python, tmp_path):
    result = warm_python.run("linear_equation_eval.py", "--rescore", str(tmp_path))
    assert result.returncode == 2 and "is a folder" in result.stderr and "Traceback" not in result.stderr


def copied_test_item(tiny_data, tmp_path, name):
    """tiny_data with train-0000 replaced by test-0001's problem under another id and hash (equations reordered)."""
    data = read_json(tiny_data)
    records = [dict(r) for r in data["records"]]
    test = next(r for r in records if r["id"] == "test-0001")
    train = next(r for r in records if r["id"] == "train-0000")
    user = test["prompt"][1]["content"].split("\n")
    user[1], user[2] = user[2], user[1]  # the same system, its equations swapped
    train.update(prompt=[test["prompt"][0], {"role": "user", "content": "\n".join(user)}], answer=test["answer"],
                 equations=test["equations"][::-1], hash="0123456789abcdef")
    path = tmp_path / name
    atomic_write_json(str(path), {**data, "records": records})
    return str(path), records


def test_data_whose_splits_overlap_by_content_is_refused(warm_python, bad_run, tiny_model_dir, tiny_data, tmp_path):
    path, _ = copied_test_item(tiny_data, tmp_path, "overlap.json")
    message = bad_run("--model", tiny_model_dir, data=path)
    assert "'train-0000' (train) and 'test-0001' (test) are the same problem" in message
    result = warm_python.run("sft.py", "--data", path, "--model", tiny_model_dir, "--output_dir", str(tmp_path / "o"))
    assert result.returncode == 2 and "same problem" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "o").exists()


def test_guard_compares_content_not_stored_hashes(bad_run, tiny_model_dir, adapter_dir, tiny_data, tmp_path):
    # an adapter trained on another file whose train item copies test-0001 with another id and hash
    path, records = copied_test_item(tiny_data, tmp_path, "other.json")
    trained = tmp_path / "adapter"
    os.makedirs(trained)
    for name in os.listdir(adapter_dir):
        if name.startswith("adapter_"):
            os.symlink(os.path.join(adapter_dir, name), trained / name)
    write_manifest(str(trained), [r for r in records if r["id"] == "train-0000"], path)
    message = bad_run("--model", tiny_model_dir, "--adapter", str(trained), "--limit", "3", data=tiny_data)
    assert "1 of 3 items" in message and "test-0001" in message
    # a manifest written before content keys: its hashes (data.py's content keys) are compared instead
    manifest = read_json(str(trained / MANIFEST_NAME))
    del manifest["content_keys"]
    manifest["hashes"] = [load_split(tiny_data, "test")[1]["hash"]]
    atomic_write_json(str(trained / MANIFEST_NAME), manifest)
    assert "test-0001" in bad_run("--model", tiny_model_dir, "--adapter", str(trained), "--limit", "3",
                                  data=tiny_data)



def test_guard_sees_a_copy_with_its_variables_renamed(tiny_data, tmp_path):
    import evaluation
    _, records = copied_test_item(tiny_data, tmp_path, "renamed.json")
    train = next(r for r in records if r["id"] == "train-0000")
    user = train["prompt"][1]["content"]
    renamed = user.replace("x", "#").replace("y", "x").replace("#", "y")  # x <-> y: another column order
    train["prompt"] = [train["prompt"][0], {"role": "user", "content": renamed}]
    assert utils.content_key(train) != utils.content_key(next(r for r in records if r["id"] == "test-0001"))
    trained = tmp_path / "model"
    os.makedirs(trained)
    write_manifest(str(trained), [train], tiny_data)
    items = load_split(tiny_data, "test")
    data = {"data_sha256": "another file"}
    assert evaluation.check_overlap(items, [str(trained)], data, allow=True) == ["test-0001"]
    with pytest.raises(utils.UserError, match="test-0001"):
        evaluation.check_overlap(items, [str(trained)], data, allow=False)


def test_a_missing_model_folder_is_caught_with_the_cheap_flag_checks(tmp_path):
    """Before the data is read and torch loads (that took ~20 s on 2 cores before the error line)."""
    import argparse

    import evaluation
    args = argparse.Namespace(backend="auto", static_cache="auto", dtype=None, model=str(tmp_path / "none"),
                              adapter=None, batch_size=None, name=None, out=str(tmp_path))
    with pytest.raises(utils.UserError, match="model folder not found"):
        evaluation.check_flags(args)

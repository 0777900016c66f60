"""sample.py: which samples are kept (hand-written texts), and the entry point on the tiny random model."""

import json
import re

import pytest

import data
import sample
from records import load_split
from traces import check_trace
from utils import UserError


def step_record():
    args = data.parse_args(["--preset", "easy", "--train", "1", "--val", "0", "--test", "0", "--test-ood", "0"])
    data.check_args(args)
    return data.generate(args)["records"][0]


def broken_line(response):
    """The same response with one number of one worked line changed; the answer stays right."""
    lines = response.split("\n")
    i = next(i for i, line in enumerate(lines) if line.startswith("Substitute"))
    lines[i] = re.sub(r"= (-?\d+)$", lambda m: f"= {int(m[1]) + 1}", lines[i])
    return "\n".join(lines)


def args(verify):
    return sample.SampleArguments(teacher="teacher-x", verify=verify, temperature=0.7, top_p=0.9, seed=5)


def test_keep_by_verify_level():
    record = step_record()
    good, bad_line = record["response"], broken_line(record["response"])
    assert check_trace(good)["valid"] and not check_trace(bad_line)["valid"]
    wrong = good.rsplit("<answer>", 1)[0] + "<answer>x = 100, y = 100</answer>"
    assert [sample.keep(t, record, "trace") for t in (good, bad_line, wrong, "")] == [True, False, False, False]
    assert [sample.keep(t, record, "answer") for t in (good, bad_line, wrong, "")] == [True, True, False, False]
    assert [sample.keep(t, record, "none") for t in (good, bad_line, wrong, "")] == [True, True, True, True]


def test_accepted_records_dedupe_and_provenance():
    record = step_record()
    good, bad_line = record["response"], broken_line(record["response"])
    outputs = [[{"text": t} for t in (good, bad_line, good, "junk")]]
    kept = sample.accepted_records([record], outputs, args("trace"))
    assert [r["id"] for r in kept] == [f"{record['id']}-s0"] and kept[0]["response"] == good
    kept = sample.accepted_records([record], outputs, args("answer"))
    assert [r["id"] for r in kept] == [f"{record['id']}-s0", f"{record['id']}-s1"]  # s2 repeats s0
    kept = sample.accepted_records([record], outputs, args("none"))
    assert [r["id"] for r in kept] == [f"{record['id']}-s{j}" for j in (0, 1, 3)]
    for r in kept:
        assert r["hash"] == record["hash"] and r["answer"] == record["answer"] and r["prompt"] == record["prompt"]
        assert r["source"] == {"teacher": "teacher-x", "adapter": None, "sample": int(r["id"][-1]),
                               "temperature": 0.7, "top_p": 0.9, "seed": 5, "original_id": record["id"]}


def test_entry_point_verify_none_keeps_every_distinct_sample(warm_python, tiny_model_dir, tiny_data, tmp_path):
    out = tmp_path / "sampled.json"
    result = warm_python.run("sample.py", "--teacher", tiny_model_dir, "--data", tiny_data, "--out", str(out),
                             "--train_slice", "2:5", "--k", "3", "--max_new_tokens", "6", "--verify", "none")
    assert result.returncode == 0, result.stderr[-3000:]
    written = json.loads(out.read_text())
    original = json.loads(open(tiny_data).read())
    others = [r for r in original["records"] if r["split"] != "train"]
    assert [r for r in written["records"] if r["split"] != "train"] == others  # copied unchanged
    train = load_split(tiny_data, "train")[2:5]
    kept = [r for r in written["records"] if r["split"] == "train"]
    by_prompt = {}
    for r in kept:
        source = r["source"]
        assert r["id"] == f"{source['original_id']}-s{source['sample']}" and 0 <= source["sample"] < 3
        assert source["teacher"] == tiny_model_dir and source["adapter"] is None
        by_prompt.setdefault(source["original_id"], []).append(r["response"])
        parent = next(t for t in train if t["id"] == source["original_id"])
        assert (r["hash"], r["answer"], r["prompt"]) == (parent["hash"], parent["answer"], parent["prompt"])
    assert sorted(by_prompt) == [t["id"] for t in train]
    assert all(len(texts) == len(set(texts)) for texts in by_prompt.values())  # distinct per prompt
    sampling = written["meta"]["sampling"]
    assert sampling["kept"] == len(kept) and sampling["prompts"] == 3 and sampling["samples"] == 9
    assert sampling["flops"] > 0 and sampling["seconds"] >= 0 and sampling["verify"] == "none"
    assert sampling["flops"] == pytest.approx(2 * sampling["teacher_parameters"] *
                                              (sampling["generated_tokens"] + sampling["prompt_tokens"]))
    assert written["meta"]["seed"] == original["meta"]["seed"]  # data.py's meta is kept


def test_entry_point_verify_answer_with_a_random_model_writes_nothing(warm_python, tiny_model_dir, tiny_data,
                                                                       tmp_path):
    out = tmp_path / "sampled.json"
    result = warm_python.run("sample.py", "--teacher", tiny_model_dir, "--data", tiny_data, "--out", str(out),
                             "--train_slice", "0:2", "--k", "2", "--max_new_tokens", "4", "--verify", "answer")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "passed --verify answer; nothing written" in result.stderr.strip().splitlines()[-1]
    assert not out.exists()


@pytest.mark.parametrize("argv, message", [
    (["--k", "0"], "--k and --max_new_tokens"),
    (["--max_new_tokens", "0"], "--k and --max_new_tokens"),
    (["--temperature", "0"], "--temperature > 0"),
])
def test_bad_flags(argv, message, tmp_path, capsys):
    """UserError -> exit 2 with one line through utils.cli (the verify-answer run above shows it end to end)."""
    with pytest.raises(UserError, match=message):
        sample.parse_args(["--teacher", "x", *argv])
    with pytest.raises(SystemExit) as exit_info:  # argparse's own errors: exit 2
        sample.parse_args(["--teacher", "x", "--verify", "maybe"])
    assert exit_info.value.code == 2 and "invalid choice" in capsys.readouterr().err
    with pytest.raises(UserError, match="is a directory"):
        sample.parse_args(["--teacher", "x", "--out", str(tmp_path)])


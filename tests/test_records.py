"""records.py: data.json splits, JSON and JSON-lines files, training manifests, GSM8K files."""

import json
import os

import pytest

import records
from conftest import GSM8K_DIR
from utils import UserError, gsm8k_prompt


# ----------------------------------------------------------------------------
# data.json and JSON files


def test_load_split(tmp_path, tiny_data):
    test = records.load_split(tiny_data, "test")
    assert len(test) == 6 and {r["split"] for r in test} == {"test"}
    assert len(records.load_split(tiny_data, "train")) == 24
    with pytest.raises(UserError, match=r"unknown split 'tset'; choose one of train, val, test, test_ood"):
        records.load_split(tiny_data, "tset")
    with pytest.raises(UserError, match="data file not found: .*missing.json"):
        records.load_split(str(tmp_path / "missing.json"), "test")
    bad = tmp_path / "bad.json"
    bad.write_text('{"records": [')
    with pytest.raises(UserError, match="data file is not valid JSON: .*bad.json"):
        records.load_split(str(bad), "test")
    bad.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(UserError, match="not valid JSON"):
        records.load_split(str(bad), "test")
    bad.write_text('{"meta": {}}')
    with pytest.raises(UserError, match="has no 'records' list; regenerate it with data.py"):
        records.load_split(str(bad), "test")
    bad.write_text('{"records": [{"split": "train"}]}')
    with pytest.raises(UserError, match="has no records in split 'test'"):
        records.load_split(str(bad), "test")


def test_atomic_write_json_never_leaves_half_a_file(tmp_path):
    path = tmp_path / "out" / "results.json"
    records.atomic_write_json(str(path), {"a": [1, 2]})
    assert records.read_json(str(path)) == {"a": [1, 2]}
    with pytest.raises(TypeError):
        records.atomic_write_json(str(path), {"a": object()})
    assert records.read_json(str(path)) == {"a": [1, 2]}
    assert os.listdir(path.parent) == ["results.json"]


# ----------------------------------------------------------------------------
# Training manifests


def test_manifest_round_trip(tmp_path, tiny_data):
    train = records.load_split(tiny_data, "train")
    assert records.read_manifest(str(tmp_path)) is None
    records.write_manifest(str(tmp_path), train, tiny_data)
    manifest = records.read_manifest(str(tmp_path))
    assert manifest["ids"] == [r["id"] for r in train] and manifest["splits"] == ["train"]
    assert manifest["data_sha256"] == records.file_sha256(tiny_data)


def test_manifest_of_a_checkpoint_is_its_runs_and_a_malformed_one_is_an_error(tmp_path):
    records.atomic_write_json(str(tmp_path / records.MANIFEST_NAME), {"ids": ["train-0000"], "hashes": ["h"]})
    (tmp_path / "checkpoint-8").mkdir()
    assert records.read_manifest(str(tmp_path / "checkpoint-8"))["hashes"] == ["h"]
    for bad in ([], {"ids": "train-0000"}, {"hashes": []}):
        records.atomic_write_json(str(tmp_path / records.MANIFEST_NAME), bad)
        with pytest.raises(UserError, match="not a training manifest"):
            records.read_manifest(str(tmp_path))


# ----------------------------------------------------------------------------
# GSM8K files


def test_load_gsm8k_from_dir_and_env(monkeypatch, tmp_path):
    test = records.load_gsm8k("test", GSM8K_DIR)
    assert len(test) == 1319
    assert test[0]["id"] == "gsm8k-test-0000" and test[0]["answer"] == 18
    assert test[0]["prompt"] == gsm8k_prompt(test[0]["question"])
    monkeypatch.setenv("GSM8K_DIR", GSM8K_DIR)
    assert [r["answer"] for r in records.load_gsm8k("test")] == [r["answer"] for r in test]
    with pytest.raises(UserError, match="GSM8K file not found"):
        records.load_gsm8k("test", str(tmp_path))


def test_gsm8k_file_errors_name_the_line(tmp_path):
    good = {"question": "2 + 2?", "answer": "so 4\n#### 4"}
    for lines, message in [
        ([json.dumps(good), "{not json"], r"test.jsonl:2 is not valid JSON"),
        ([json.dumps(good), json.dumps({"answer": "#### 1"})], r"test.jsonl: row 2 lacks 'question'"),
        ([json.dumps({"question": "q", "answer": "no marker"})], r"row 1 has no '#### number'"),
    ]:
        (tmp_path / "test.jsonl").write_text("\n".join(lines) + "\n")
        with pytest.raises(UserError, match=message):
            records.load_gsm8k("test", str(tmp_path))
    (tmp_path / "test.jsonl").write_text(json.dumps(good) + "\n")
    assert records.load_gsm8k("test", str(tmp_path))[0]["answer"] == 4


def test_doctests():
    import doctest

    assert doctest.testmod(records).failed == 0

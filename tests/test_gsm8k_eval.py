"""gsm8k_eval.py: local GSM8K files, the three parser modes, rescore, the offline error, SmolLM2 end to end.
(Resume, the contamination guard and most errors live in the shared harness: tests/test_linear_equation_eval.py.)"""

import os

import pytest

import gsm8k_eval
from conftest import GSM8K_DIR, run_script
from records import atomic_write_json, file_sha256, load_gsm8k, read_json


@pytest.fixture(autouse=True)
def one_thread_subprocesses(monkeypatch):
    """Scripts run here get one torch thread: on a 2-core machine shared with other jobs, two threads ran
    SmolLM2 12x slower (62 s against 5 s for the same 2 x 16 tokens), waiting on each other."""
    monkeypatch.setenv("OMP_NUM_THREADS", "1")


def test_local_gsm8k_results(tiny_model_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("GSM8K_DIR", GSM8K_DIR)  # the env var alone finds the files
    results = gsm8k_eval.main(["--model", tiny_model_dir, "--limit", "3", "--max-new-tokens", "4",
                               "--name", "tiny", "--out", str(tmp_path)])
    assert read_json(str(tmp_path / "tiny_gsm8k.json"))["summary"] == results["summary"]
    s = results["summary"]
    assert (s["benchmark"], s["split"], s["modes"]) == ("gsm8k", "test",
                                                           ["strict", "flexible", "lenient", "math_verify"])
    assert s["data_file"] == os.path.abspath(os.path.join(GSM8K_DIR, "test.jsonl"))
    assert s["data_sha256"] == file_sha256(s["data_file"])
    gold = load_gsm8k("test", GSM8K_DIR)[:3]
    assert [(r["id"], r["answer"]) for r in results["records"]] == [(g["id"], g["answer"]) for g in gold]
    assert all(set(r["outputs"][0]["correct"]) == set(s["modes"]) for r in results["records"])


def test_original_protocol_budget(tiny_model_dir, tmp_path):
    results = gsm8k_eval.main(["--model", tiny_model_dir, "--gsm8k-dir", GSM8K_DIR, "--limit", "1",
                               "--protocol", "original", "--max-new-tokens", "3", "--out", str(tmp_path)])
    g = results["summary"]["generation"]
    assert (g["num_samples"], g["temperature"], g["top_p"], g["top_k"], g["max_new_tokens"]) == (3, 0.7, 0.8, 20, 3)
    assert gsm8k_eval.PROTOCOL["max_new_tokens"] == 1024  # the study's GSM8K budget when not overridden


def test_rescore_modes(tiny_model_dir, tmp_path):
    results = gsm8k_eval.main(["--model", tiny_model_dir, "--gsm8k-dir", GSM8K_DIR, "--limit", "3",
                               "--max-new-tokens", "2", "--name", "r", "--out", str(tmp_path)])
    path = str(tmp_path / "r_gsm8k.json")
    a, b, c = (r["answer"] for r in results["records"])
    texts = [f"<think>ok</think><answer>{a}</answer>",  # all three modes
             f"<think>ok</think><answer>${b} in total</answer>",  # flexible and lenient
             f"so the answer is \\boxed{{{c}}}"]  # lenient only
    for record, text in zip(results["records"], texts):
        record["outputs"][0]["text"] = text
    atomic_write_json(path, results)
    rescored = gsm8k_eval.main(["--rescore", path])
    correct = [r["outputs"][0]["correct"] for r in rescored["records"]]
    assert correct == [{"strict": True, "flexible": True, "lenient": True, "math_verify": True},
                       {"strict": False, "flexible": True, "lenient": True, "math_verify": True},
                       {"strict": False, "flexible": False, "lenient": True, "math_verify": False}]
    acc = read_json(path)["summary"]["accuracy"]
    assert [acc[m]["correct"] for m in ("strict", "flexible", "lenient")] == [1, 2, 3]
    assert rescored["summary"]["format_failures"] == 2


@pytest.mark.parametrize("text, value", [
    ("<answer>\\frac{36}{2}</answer>", 18), ("<answer>18.0</answer>", 18), ("<answer>$1,080$</answer>", 1080),
    ("<answer>3/2</answer>", 1.5), ("<answer>1</answer> then <answer>-7</answer>", -7),
    ("18, but no answer block", None), ("<answer>x</answer>", None), ("<answer>", None)])
def test_math_verify_mode_reads_latex_and_decimals_in_the_answer_block(text, value):
    assert gsm8k_eval.math_verify_answer(text) == value


def test_gsm8k_unavailable_offline(tiny_model_dir, tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "GSM8K_DIR"}
    import subprocess
    import sys

    from conftest import REPO

    result = subprocess.run([sys.executable, "gsm8k_eval.py", "--model", tiny_model_dir, "--out", str(tmp_path)],
                            cwd=REPO, env={**env, "HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1"},
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if "error" in line.lower()]
    assert len(errors) == 1 and "--gsm8k-dir" in errors[0] and "Traceback" not in result.stderr
    assert not any(tmp_path.iterdir())
    assert "not valid JSON" in run_script("gsm8k_eval.py", "--rescore", __file__).stderr


def test_smollm2_end_to_end(smollm2_dir, tmp_path):
    """The real model on 2 questions, 16 tokens: it starts answering in words."""
    result = run_script("gsm8k_eval.py", "--model", "smollm2-135m", "--gsm8k-dir", GSM8K_DIR, "--limit", "2",
                        "--max-new-tokens", "16", "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    for mode in ("strict", "flexible", "lenient"):
        assert f"{mode:<9} Final: " in result.stdout
    results = read_json(str(tmp_path / "smollm2-135m_gsm8k.json"))
    assert all(len(r["outputs"][0]["text"].split()) >= 3 for r in results["records"])

"""study.py end to end on a tiny random model: every stage runs, a rerun skips them, the report is written."""

import json
import os
import shutil

import yaml

from conftest import GSM8K_DIR, REPO, run_script


def write_config(tmp_path, model_dir, study, runs=("baseline", "sft", "grpo")):
    config = {
        "study": study,
        "model": model_dir,
        "gsm8k_dir": GSM8K_DIR,
        "runs": list(runs),
        "data": "--coef-range -5 5 --solution-range -9 9 --train 8 --val 2 --test 3 --test-ood 3",
        "eval": "--max-new-tokens 8 --batch-size 4",
        "eval_gsm8k": "--limit 3",
        "sft": "--max_steps 2 --per_device_train_batch_size 4 --eval_steps 1 --save_steps 1",
        "grpo": "--max_steps 1 --num_generations 2 --per_device_train_batch_size 4 --gradient_accumulation_steps 1 "
                "--max_completion_length 8 --val_steps 1 --val_limit 2",
    }
    path = tmp_path / f"{study}-{len(runs)}.yaml"
    path.write_text(yaml.safe_dump(config))
    return str(path)


def test_study_runs_end_to_end_and_resumes(tmp_path, tiny_model_dir):
    study = f"pytest-{os.getpid()}"
    config = write_config(tmp_path, tiny_model_dir, study)
    results = os.path.join(REPO, "results", study)
    outputs = os.path.join(REPO, "outputs", study)
    try:
        first = run_script("study.py", config)
        assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
        for run in ("baseline", "sft", "grpo"):
            for suffix in ("linear_equation", "linear_equation_test_ood", "gsm8k"):
                summary = json.load(open(os.path.join(results, f"{run}_{suffix}.json")))["summary"]
                assert summary["num_items"] == 3
                assert (summary["adapter"] is None) == (run == "baseline")
        assert os.path.exists(os.path.join(results, "sft_train_log.jsonl"))
        assert os.path.exists(os.path.join(results, "grpo_train_log.jsonl"))
        report = open(os.path.join(results, "report.md")).read()
        assert "baseline" in report and "GRPO" in report
        commands = open(os.path.join(results, "commands.sh")).read()
        assert "python sft.py" in commands and "python grpo.py" in commands

        second = run_script("study.py", config)  # everything exists: only the report is rebuilt
        assert second.returncode == 0, second.stderr[-3000:]
        assert second.stdout.count(": done (") == 1 + 3 * 3 + 2  # data, 9 evals, 2 trainings

        # A fresh clone has the committed results/ but not outputs/: nothing there counts as done
        shutil.rmtree(outputs)
        dry = run_script("study.py", config, "--dry-run")
        assert dry.returncode == 0 and ": done (" not in dry.stdout, dry.stdout
        assert os.path.exists(os.path.join(results, "baseline_gsm8k.json"))  # a dry run deletes nothing
        baseline_only = write_config(tmp_path, tiny_model_dir, study, runs=("baseline",))
        third = run_script("study.py", baseline_only)
        assert third.returncode == 0, third.stderr[-3000:]
        assert third.stdout.count("which no run of this checkout made") == 1 + 3  # data and 3 evals redone
        assert " is complete; nothing to resume" not in third.stdout
        fourth = run_script("study.py", baseline_only)  # now they are this checkout's own
        assert fourth.stdout.count(": done (") == 1 + 3
    finally:
        shutil.rmtree(results, ignore_errors=True)
        shutil.rmtree(outputs, ignore_errors=True)


def test_study_bad_config(tmp_path):
    missing = run_script("study.py", str(tmp_path / "nope.yaml"))
    assert missing.returncode == 2 and "config not found" in missing.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text("study: x\nmodel: m\nruns: [baseline, dpo]\n")
    unknown = run_script("study.py", str(bad))
    assert unknown.returncode == 2 and "unknown runs" in unknown.stderr
    assert "Traceback" not in unknown.stderr

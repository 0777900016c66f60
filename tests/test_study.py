"""study.py: config errors, --dry-run on the committed configs, and one small end-to-end run on the tiny model."""

import json
import os
import shutil

import pytest
import yaml

from conftest import GSM8K_DIR, REPO, run_script

VALID = {"study": "x", "model": "m", "s0": "--max_steps 1", "seeds": [1, 2],
         "arms": {"sft_more": {"kind": "sft"}, "grpo": {"kind": "grpo"}}}


def with_changes(**changes):
    config = json.loads(json.dumps(VALID))
    for key, value in changes.items():
        if value is None:
            config.pop(key)
        else:
            config[key] = value
    return config


BAD_CONFIGS = [
    (with_changes(arms={"a": {"kind": "sft", "from": "sft_more"}}), "starts from 'sft_more'"),
    (with_changes(arms={"a": {"kind": "sft", "from": "grpo"}, "grpo": {"kind": "grpo"}}), "starts from 'grpo'"),
    (with_changes(arms={"a": {"kind": "dpo"}}), "kind must be one of sft, grpo, rft"),
    (with_changes(arms={"s0": {"kind": "sft"}}), "not named base or s0"),
    (with_changes(contrasts={"primary": [{"a": "grpo", "b": "ppo"}]}), "contrast"),
    (with_changes(contrasts={"secondary": [{"a": "nope", "b": "s0"}]}), "contrast"),
    (with_changes(seeds=[1, "2"]), "seeds: give a list of integers"),
    (with_changes(seeds=3), "seeds: give a list of integers"),
    (with_changes(seeds=[]), "seeds: give a list of integers"),
    (with_changes(study="a/b"), "plain folder name"),
    (with_changes(study=".."), "plain folder name"),
    (with_changes(study="../up"), "plain folder name"),
    (with_changes(evals={"linear_equation": "", "mmlu": ""}), "evals: unknown ['mmlu']"),
    (with_changes(s0=None), "at least 'study', 'model' and 's0'"),
    (with_changes(arms={"a": {"kind": "sft", "seeds": [9]}}), "seeds [9] are not in the study's seeds"),
]


def test_load_config_errors_exit_2_with_one_line(tmp_path):
    import study
    from utils import UserError

    assert study.load_config(write(tmp_path / "ok.yaml", VALID))["arms"]["grpo"]["from"] == "s0"
    for i, (config, message) in enumerate(BAD_CONFIGS):
        path = write(tmp_path / f"bad{i}.yaml", config)
        with pytest.raises(UserError) as error:
            study.load_config(path)
        assert message in str(error.value), (config, str(error.value))
    # Through the command line: exit 2, one line, nothing run or written
    for config, message in BAD_CONFIGS[::4]:
        path = write(tmp_path / "cli.yaml", config)
        result = run_script(os.path.join(REPO, "study.py"), path, cwd=tmp_path)
        lines = result.stderr.strip().splitlines()
        assert result.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: "), result.stderr
        assert message in lines[0] and result.stdout == ""
        assert not os.path.exists(tmp_path / "results") and not os.path.exists(tmp_path / "outputs")
    missing = run_script(os.path.join(REPO, "study.py"), str(tmp_path / "nope.yaml"), cwd=tmp_path)
    assert missing.returncode == 2 and "config not found" in missing.stderr


def write(path, config):
    path.write_text(yaml.safe_dump(config))
    return str(path)


@pytest.mark.parametrize("name", ["study_small.yaml", "study_full.yaml"])
def test_dry_run_lists_the_commands_and_runs_nothing(name, tmp_path):
    """Run in a scratch folder: the dry run prints every command and writes nothing (no results/, outputs/, data)."""
    with open(os.path.join(REPO, "configs", name)) as f:
        config = yaml.safe_load(f)
    if "s0" not in config:
        pytest.skip(f"configs/{name} is still in the old config format (runs: {config.get('runs')}), which the "
                    "rewritten study.py rejects")
    result = run_script(os.path.join(REPO, "study.py"), os.path.join(REPO, "configs", name), "--dry-run",
                        cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert os.listdir(tmp_path) == []  # no results/ (its commands.sh is the finished run's), outputs/, data, logs
    lines = [line for line in result.stdout.splitlines() if ": python " in line]
    assert ": done (" not in result.stdout and lines
    commands = "\n".join(lines)
    seeds = config["seeds"]
    for seed in seeds:
        assert f"seed{seed} train s0: python sft.py" in result.stdout
        for arm, spec in config["arms"].items():
            if seed in spec.get("seeds", seeds):
                assert f"seed{seed} train {arm}: python {'grpo' if spec['kind'] == 'grpo' else 'sft'}.py" in result.stdout
    assert "python data.py" in commands and "--max_train_flops" in commands
    assert f"--max_train_flops {config['budget_flops']}" in commands


def test_study_runs_end_to_end_and_a_rerun_skips_everything(tmp_path, tiny_model_dir):
    study = f"pytest-{os.getpid()}"
    quick = "--eval_strategy no --save_strategy no --logging_steps 1"
    config = {
        "study": study, "model": tiny_model_dir, "full_finetune": True, "seeds": [3], "gsm8k_dir": GSM8K_DIR,
        "data": "--preset easy --train 24 --val 2 --test 2 --test-ood 0 --seed 0",
        "s0": f"--train_slice 0:8 --max_steps 1 --per_device_train_batch_size 4 {quick}",
        "train_offset": 8,
        # Every stage is a fresh interpreter importing torch + transformers (~9 s of CPU), so the primary arms are
        # evaluated on linear_equation only and rft not at all (an arm's `evals` picks from the study's); base and S0
        # run both benchmarks
        "arms": {
            "sft_more": {"kind": "sft", "flags": f"--max_steps 1 --per_device_train_batch_size 4 {quick}",
                         "evals": ["linear_equation"]},
            "grpo": {"kind": "grpo", "flags": "--fast_generation true --max_steps 1 --num_generations 2 "
                     "--per_device_train_batch_size 2 --gradient_accumulation_steps 1 --max_completion_length 4 "
                     "--beta 0 --save_strategy no --val_steps 0", "evals": ["linear_equation"]},
            "rft": {"kind": "rft", "sample": "--train_slice 8:10 --k 2 --max_new_tokens 4 --verify none",
                    "flags": f"--max_steps 1 --per_device_train_batch_size 2 {quick}", "evals": []},
        },
        "evals": {"linear_equation": "--limit 2 --max-new-tokens 8", "gsm8k": "--limit 2 --max-new-tokens 8"},
        "eval": "--batch-size 4",
        "contrasts": {"primary": [{"a": "grpo", "b": "sft_more", "benchmark": "linear_equation", "split": "test"}]},
    }
    path = write(tmp_path / "tiny.yaml", config)
    results = str(tmp_path / "results")  # not the repo's results/: a killed run would leave files there
    outputs = os.path.join(REPO, "outputs", study)  # git-ignored
    try:
        first = run_script("study.py", path, "--jobs", "2", "--results", results)
        assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
        seed_dir = os.path.join(results, "seed3")
        evaluated = {"base": ("linear_equation", "gsm8k"), "s0": ("linear_equation", "gsm8k"),
                     "sft_more": ("linear_equation",), "grpo": ("linear_equation",), "rft": ()}
        for arm, suffixes in evaluated.items():
            for suffix in ("linear_equation", "gsm8k"):  # exactly the evals the config asks for
                assert os.path.exists(os.path.join(seed_dir, f"{arm}_{suffix}.json")) == (suffix in suffixes), arm
            for suffix in suffixes:
                with open(os.path.join(seed_dir, f"{arm}_{suffix}.json")) as f:
                    summary = json.load(f)["summary"]
                assert summary["num_items"] == 2 and summary["adapter"] is None  # full fine-tunes: model folders
                assert summary["model"] == (tiny_model_dir if arm == "base" else
                                            os.path.join("outputs", study, "seed3", arm)), summary["model"]
        for arm in ("s0", "sft_more", "grpo", "rft"):  # the train logs travel into results/
            assert os.path.exists(os.path.join(seed_dir, f"{arm}_train_log.jsonl")), arm
            assert os.path.exists(os.path.join(seed_dir, f"{arm}_run_config.json")), arm
        with open(os.path.join(outputs, "seed3", "rft_data.json")) as f:
            assert json.load(f)["meta"]["sampling"]["verify"] == "none"
        assert os.path.exists(os.path.join(outputs, "logs", "seed3_train_grpo.log"))
        report = open(os.path.join(results, "report.md")).read()
        assert "### Primary (pre-registered)" in report
        assert any("grpo vs sft_more" in line and "linear_equation test" in line for line in report.splitlines())
        commands = open(os.path.join(results, "commands.sh")).read()
        for script in ("data.py", "sft.py", "grpo.py", "sample.py", "linear_equation_eval.py", "gsm8k_eval.py"):
            assert f"python {script}" in commands, script

        second = run_script("study.py", path, "--jobs", "2", "--results", results)
        assert second.returncode == 0, second.stderr[-3000:]
        stages = 1 + 2 * 2 + 2 + 4 + 1  # data, base and s0 x 2 evals, 2 arms x 1 eval, 4 trainings, 1 sampling
        assert second.stdout.count(": done (") == stages, second.stdout
        assert ": start (" not in second.stdout
    finally:
        shutil.rmtree(results, ignore_errors=True)
        shutil.rmtree(outputs, ignore_errors=True)


def test_primary_contrasts_stages_start_first():
    """A lease that runs out should leave the pre-registered answer: S0, the primary arms (GRPO first), their
    evals on the primary splits, then the rest."""
    import study
    config = study.load_config(os.path.join(REPO, "configs", "study_small.yaml"))
    stages = study.plan(config, [1])
    order = [s.name for s in sorted(stages, key=lambda s: s.rank)]
    first = order.index
    assert first("seed1 train s0") < first("seed1 train grpo") < first("seed1 train sft_more") \
        < first("seed1 eval grpo linear_equation") < first("seed1 sample rft") < first("seed1 eval s0 linear_equation")
    assert first("seed1 eval sft_more linear_equation_test_near") < first("seed1 train grpo_base")
    assert first("seed1 eval grpo gsm8k") > first("seed1 train sft_n1000")  # secondary benchmark: last tier


def test_arms_picks_their_stages_and_what_they_wait_for():
    """--arms: a lease for the rest of a seed runs those arms' stages only, with S0 only where an arm starts there."""
    import study
    from utils import UserError
    config = study.load_config(os.path.join(REPO, "configs", "study_small.yaml"))
    stages = study.plan(config, [1])
    names = [s.name for s in study.only_arms(stages, ["grpo_base", "sft_n20000"], config)]
    assert names[0] == "data" and "seed1 train s0" not in names
    assert {n.split()[2] for n in names[1:]} == {"grpo_base", "sft_n20000"}
    assert "seed1 eval grpo_base gsm8k" in names and "seed1 eval sft_n20000 linear_equation" in names
    names = [s.name for s in study.only_arms(stages, ["rft"], config)]
    assert names[:4] == ["data", "seed1 train s0", "seed1 sample rft", "seed1 train rft"]
    assert not [n for n in names if n.startswith("seed1 eval s0")]  # S0 trains for rft, its evals are not asked for
    with pytest.raises(UserError, match=r"--arms: unknown \['grpo_bas'\]"):
        study.only_arms(stages, ["grpo_bas"], config)
    with pytest.raises(UserError, match="--arms grpo_base: no stages for these seeds"):  # grpo_base: seed 1 only
        study.only_arms(study.plan(config, [2]), ["grpo_base"], config)


def test_dry_run_copies_no_run_record(tmp_path):
    """A done training stage's log is copied into results/ on a real rerun, never on a dry run."""
    import sys

    import study
    results, outputs, train_dir = tmp_path / "results", tmp_path / "outputs", tmp_path / "outputs" / "grpo"
    train_dir.mkdir(parents=True)
    (train_dir / "train_log.jsonl").write_text("{}\n")
    (train_dir / "run_config.json").write_text("{}")
    (outputs / "stages_done.json").write_text(json.dumps(["seed1 train grpo"]))
    train = study.Stage("seed1 train grpo", str(train_dir / "run_config.json"), [sys.executable, "-c", "1"],
                        train_dir=str(train_dir), results_name="grpo")
    study.run_stages([train], str(results), str(outputs), jobs=1, dry_run=True)
    assert not results.exists()
    study.run_stages([train], str(results), str(outputs), jobs=1, dry_run=False)
    assert (results / "seed1" / "grpo_train_log.jsonl").exists()


def test_extras_wait_for_the_primary_stages_unless_told_to_fill_free_slots(tmp_path, capsys):
    import sys

    import study
    results, outputs = str(tmp_path / "results"), str(tmp_path / "outputs")

    def stage(name, rank, seconds):
        out = str(tmp_path / f"{name}.done")
        code = f"import time; time.sleep({seconds}); open({out!r}, 'w').close()"
        return study.Stage(name, out, [sys.executable, "-c", code], rank=rank)

    stages = [stage("data", study.priority("data", {}), 0), stage("seed1 train s0", 0, 0.5),
              stage("seed1 train extra", study.EXTRAS, 0), stage("seed1 eval base x", study.EXTRAS + 1, 0)]
    stages[1].after = stages[2].after = stages[3].after = ["data"]  # the data stage must not wait behind them
    study.run_stages(stages, results, outputs, jobs=3, dry_run=False)
    lines = [line.split(":")[0] + (" start" if "start" in line else " end") for line in capsys.readouterr().out.splitlines()]
    assert lines.index("seed1 train s0 end") < lines.index("seed1 train extra start")
    assert lines.index("seed1 train s0 end") < lines.index("seed1 eval base x start")

    for name in ("seed1 train s0", "seed1 train extra", "seed1 eval base x"):  # --fill-free-slots: side by side
        os.remove(str(tmp_path / f"{name}.done"))
    os.remove(os.path.join(outputs, "stages_done.json"))
    study.run_stages(stages, results, outputs, jobs=3, dry_run=False, fill_free_slots=True)
    lines = [line.split(":")[0] + (" start" if "start" in line else " end") for line in capsys.readouterr().out.splitlines()]
    assert lines.index("seed1 train extra start") < lines.index("seed1 train s0 end")


def test_stages_share_the_cores(tmp_path, monkeypatch):
    """Each stage gets cores // jobs OpenMP threads (at least 1), unless OMP_NUM_THREADS is set already."""
    import sys

    import study
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(study.os, "sched_getaffinity", lambda pid: {0, 1, 2, 3})
    code = "import os, sys; open(sys.argv[1], 'w').write(os.environ['OMP_NUM_THREADS'])"

    def threads(name, jobs):
        out = tmp_path / name
        study.run_stages([study.Stage(f"seed1 eval {name}", str(out), [sys.executable, "-c", code, str(out)])],
                         str(tmp_path / "results"), str(tmp_path / "outputs"), jobs=jobs, dry_run=False)
        return out.read_text()

    assert (threads("a", 1), threads("b", 2), threads("c", 8)) == ("4", "2", "1")
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert threads("d", 2) == "3"


def test_a_run_that_ends_after_another_stage_failed_is_recorded(tmp_path):
    """study.py stops at a failed stage but lets the running ones finish: those are recorded (done, timed, log and
    config copied into results); a rerun that finds one done but not copied copies it."""
    import sys

    import study
    from utils import UserError
    results, outputs, train_dir = str(tmp_path / "results"), str(tmp_path / "outputs"), tmp_path / "grpo"
    code = (f"import os, time; time.sleep(1); os.makedirs({str(train_dir)!r}); "
            f"open(os.path.join({str(train_dir)!r}, 'train_log.jsonl'), 'w').write('{{}}\\n'); "
            f"open(os.path.join({str(train_dir)!r}, 'run_config.json'), 'w').write('{{}}')")
    train = study.Stage("seed1 train grpo", str(train_dir / "run_config.json"), [sys.executable, "-c", code],
                        train_dir=str(train_dir), results_name="grpo")
    fail = study.Stage("seed1 eval s0 x", str(tmp_path / "never"), [sys.executable, "-c", "raise SystemExit(1)"])
    with pytest.raises(UserError, match="stage 'seed1 eval s0 x' failed"):
        study.run_stages([train, fail], results, outputs, jobs=2, dry_run=False)
    copies = [os.path.join(results, "seed1", f"grpo_{n}") for n in ("train_log.jsonl", "run_config.json")]
    assert all(os.path.exists(c) for c in copies)
    assert "seed1 train grpo" in json.load(open(os.path.join(outputs, "stages_done.json")))
    assert "seed1 train grpo" in json.load(open(os.path.join(results, "timings.json")))
    for c in copies:
        os.remove(c)
    study.run_stages([train], results, outputs, jobs=1, dry_run=False)  # done: skipped, and copied again
    assert all(os.path.exists(c) for c in copies)

"""Run the whole study: data -> baseline eval -> SFT -> eval -> GRPO -> eval -> report.

    python study.py configs/study_quick.yaml      # `make study`: SmolLM2-135M on 2 CPU cores, ~15 min
    python study.py configs/study_gpu_mini.yaml   # SmolLM2-135M on one GPU, bigger sizes, full GSM8K test
    python study.py configs/study_full.yaml       # the real study: Qwen2.5-1.5B-Instruct on a GPU

Every stage is one of our scripts run as a subprocess with the flags from the config, so the study is
exactly the commands a user would type (they are written to results/<study>/commands.sh). A stage whose
output already exists is skipped: the eval scripts write their results atomically and the trainers
save the adapter last, so an existing output is a complete one, and a rerun after a crash continues
(trainers and evals also get --resume for the stage that was interrupted). Files under results/ count as
done only when this checkout's own runs made them (recorded in outputs/<study>/stages_done.json, which git
ignores): a fresh clone's committed results are redone, not mistaken for the user's finished run.
"""

import argparse
import glob
import os
import shlex
import shutil
import subprocess
import sys
import time

from utils import UserError, atomic_write_json, cli, one_line_errors, read_json

RUNS = ("baseline", "sft", "grpo", "sft_grpo")  # sft_grpo: GRPO started from the SFT adapter
EVALS = (  # (script, results-file suffix, extra flags)
    ("linear_equation_eval.py", "linear_equation", ["--split", "test"]),
    ("linear_equation_eval.py", "linear_equation_test_ood", ["--split", "test_ood"]),
    ("gsm8k_eval.py", "gsm8k", []),
)


def load_config(path):
    import yaml

    if not os.path.exists(path):
        raise UserError(f"config not found: {path}")
    try:
        with open(path) as f:
            config = yaml.safe_load(f)
    except yaml.YAMLError as e:
        raise UserError(f"{path} is not valid YAML: {str(e).splitlines()[0]}") from None
    if not isinstance(config, dict) or "study" not in config or "model" not in config:
        raise UserError(f"{path} must be a mapping with at least 'study' and 'model'")
    unknown = set(config.get("runs", [])) - set(RUNS)
    if unknown:
        raise UserError(f"unknown runs {sorted(unknown)}; choose from {', '.join(RUNS)}")
    return config


def flags(config, key):
    """A config entry as a list of command-line words; numbers become strings."""
    value = config.get(key) or []
    return [str(v) for v in (shlex.split(value) if isinstance(value, str) else value)]


def plan(config):
    """The stages as (name, output that marks it done, argv)."""
    study, model = config["study"], config["model"]
    results, outputs = os.path.join("results", study), os.path.join("outputs", study)
    data = os.path.join(results, "data.json")
    py = sys.executable
    stages = [("data", data, [py, "data.py", *flags(config, "data"), "--out", data])]
    gsm8k_dir = config.get("gsm8k_dir")
    gsm8k_flags = ["--gsm8k-dir", gsm8k_dir] if gsm8k_dir and os.path.isdir(gsm8k_dir) else []
    for run in config.get("runs", RUNS[:3]):
        adapter = None if run == "baseline" else os.path.join(outputs, run)
        if adapter:
            trainer = "sft.py" if run == "sft" else "grpo.py"
            argv = [py, trainer, "--model_name_or_path", model, "--data", data, "--output_dir", adapter,
                    *flags(config, "sft" if run == "sft" else "grpo")]
            if glob.glob(os.path.join(adapter, "checkpoint-*")):  # interrupted earlier: continue it
                argv.append("--resume")
            if run == "sft_grpo":
                argv += ["--init_adapter", os.path.join(outputs, "sft")]
            stages.append((f"train {run}", os.path.join(adapter, "adapter_config.json"), argv))
        for script, suffix, extra in EVALS:
            out = os.path.join(results, f"{run}_{suffix}.json")
            argv = [py, script, "--model", model, "--name", run, "--out", results, *flags(config, "eval"),
                    *flags(config, f"eval_{suffix}"), *extra, "--resume"]
            argv += ["--data", data] if script.startswith("linear") else gsm8k_flags
            if adapter:
                argv += ["--adapter", adapter]
            stages.append((f"eval {run} {suffix}", out, argv))
    # report.py finds the training logs that keep_run_records copies next to the results
    stages.append(("report", os.path.join(results, "report.md"), [py, "report.py", results]))
    return stages


def keep_run_records(config):
    """Copy each trainer's log and config into results/<study>/ (outputs/ is not committed)."""
    results, outputs = os.path.join("results", config["study"]), os.path.join("outputs", config["study"])
    for run in config.get("runs", RUNS[:3]):
        for name, suffix in (("train_log.jsonl", "train_log.jsonl"), ("run_config.json", "run_config.json")):
            src = os.path.join(outputs, run, name)
            if os.path.exists(src):
                shutil.copyfile(src, os.path.join(results, f"{run}_{suffix}"))


def main(argv=None):
    parser = one_line_errors(argparse.ArgumentParser(description=__doc__.split("\n\n")[0]))
    parser.add_argument("config", help="study YAML (see configs/)")
    parser.add_argument("--dry-run", action="store_true", help="print the commands, run nothing")
    args = parser.parse_args(argv)
    config = load_config(args.config)
    stages = plan(config)
    results = os.path.join("results", config["study"])
    os.makedirs(results, exist_ok=True)
    with open(os.path.join(results, "commands.sh"), "w") as f:
        f.write(f"# {config['study']}: the commands study.py runs for {args.config}\n")
        for name, _, cmd in stages:
            f.write(f"# {name}\n{shlex.join(['python', *cmd[1:]])}\n")
    timings_path = os.path.join(results, "timings.json")
    timings = read_json(timings_path) if os.path.exists(timings_path) else {}
    done_path = os.path.join("outputs", config["study"], "stages_done.json")
    done = set(read_json(done_path)) if os.path.exists(done_path) else set()
    start = time.time()
    for i, (name, output, cmd) in enumerate(stages, 1):
        prefix = f"[{i}/{len(stages)}] {name}"
        exists = os.path.exists(output) and name != "report"  # the report is rebuilt every time
        ours = name in done or not output.startswith(results + os.sep)  # outputs/ is never committed
        if exists and ours:
            print(f"{prefix}: done ({output})")
            continue
        print(f"{prefix}: {shlex.join(['python', *cmd[1:]])}", flush=True)
        if args.dry_run:
            continue
        if exists:  # not ours, e.g. the committed results: an eval run with --resume would take it as complete
            print(f"{prefix}: replacing {output}, which no run of this checkout made")
            os.remove(output)
        t0 = time.time()
        if subprocess.run(cmd).returncode != 0:
            raise UserError(f"stage '{name}' failed (see above); fix it and rerun: finished stages are kept")
        timings[name] = round(time.time() - t0, 1)
        atomic_write_json(timings_path, timings)
        done.add(name)
        atomic_write_json(done_path, sorted(done))
        print(f"{prefix}: {timings[name]:.0f} s", flush=True)
        if name.startswith("train"):
            keep_run_records(config)
    if not args.dry_run:
        print(f"study {config['study']} complete in {time.time() - start:.0f} s; report: {results}/report.md")


if __name__ == "__main__":
    cli(main)

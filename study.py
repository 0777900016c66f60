"""Run a study: data -> S0 (SFT from the base model) -> arms from S0 at equal compute -> evals -> report.

    python study.py configs/study_small.yaml              # SmolLM2-135M on one GPU, every seed in the config
    python study.py configs/study_small.yaml --seed 2     # one seed (e.g. one GPU lease each)
    python study.py configs/study_small.yaml --jobs 4     # up to 4 stages at once (one small model per process)
    python study.py configs/study_full.yaml --dry-run     # list the commands (Qwen2.5-1.5B-Instruct)
    python study.py configs/study_quick.yaml              # `make study`: the pipeline on 2 CPU cores

Every stage is one of our scripts run as a subprocess with flags from the config, so the study is exactly the
commands a user would type (written to results/<study>/commands.sh). Per seed, S0 is trained from the base model;
then every arm starts from that same S0 with the same --max_train_flops (budget_flops), so arms are compared at
equal compute: (b) sft_more, SFT on fresh train items; (c) grpo; (d) rft, SFT on S0's own verified samples
(sample.py; its sampling counts in the budget); and controls such as grpo_base. Arms train on the train split
after S0's items (train_offset), never on the test splits.

A stage whose output exists and was made by this checkout (outputs/<study>/stages_done.json, git-ignored) is
skipped, so a rerun after a crash continues; trainers get --resume when they left checkpoints. Each stage's output
goes to outputs/<study>/logs/<stage>.log. Results: results/<study>/seed<N>/<arm>_<benchmark>.json, the training
logs beside them, config.yaml, commands.sh, and report.py's report.md.
"""

import argparse
import glob
import os
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field

from records import atomic_write_json, read_json
from utils import UserError, cli, one_line_errors

BASE, S0 = "base", "s0"
ARM_KINDS = ("sft", "grpo", "rft")  # rft: sample.py from the start model, then sft.py on the kept samples
EVALS = {  # results-file suffix -> (script, flags); the config's `evals` picks and extends them
    "linear_equation": ("linear_equation_eval.py", ["--split", "test"]),
    "linear_equation_test_near": ("linear_equation_eval.py", ["--split", "test_near"]),
    "linear_equation_test_far": ("linear_equation_eval.py", ["--split", "test_far"]),
    "linear_equation_test_ood": ("linear_equation_eval.py", ["--split", "test_ood"]),
    "gsm8k": ("gsm8k_eval.py", []),
}


@dataclass
class Stage:
    name: str
    output: str  # exists when the stage is done
    argv: list
    after: list = field(default_factory=list)  # names of stages that must finish first
    train_dir: str | None = None  # a trainer's output dir: its log is copied into results/ when it finishes
    results_name: str | None = None  # <arm> for that copy
    rank: int = 0  # lower starts first among ready stages (see priority)


# ----------------------------------------------------------------------------
# Config


def load_config(path):
    import yaml

    if not os.path.exists(path):
        raise UserError(f"config not found: {path}")
    try:
        with open(path) as f:
            config = yaml.safe_load(f)
    except yaml.YAMLError as e:
        raise UserError(f"{path} is not valid YAML: {str(e).splitlines()[0]}") from None
    if not isinstance(config, dict) or not {"study", "model", "s0"} <= set(config):
        raise UserError(f"{path} must be a mapping with at least 'study', 'model' and 's0'")
    if not isinstance(config["study"], str) or not config["study"] or os.sep in config["study"] \
            or config["study"].startswith("."):
        raise UserError(f"study: {config['study']!r} must be a plain folder name (no '/', not starting with '.')")
    seeds = config.setdefault("seeds", [0])
    if not isinstance(seeds, list) or not seeds or not all(isinstance(s, int) for s in seeds):
        raise UserError("seeds: give a list of integers, e.g. [1, 2, 3]")
    arms = config.setdefault("arms", {})
    if not isinstance(arms, dict):
        raise UserError("arms: give a mapping of arm name -> {kind, from, flags}")
    for name, arm in arms.items():
        if name in (BASE, S0) or not isinstance(arm, dict):
            raise UserError(f"arm {name!r}: a mapping with kind/from/flags, not named {BASE} or {S0}")
        if arm.get("kind") not in ARM_KINDS:
            raise UserError(f"arm {name!r}: kind must be one of {', '.join(ARM_KINDS)}")
        if arm.setdefault("from", S0) not in (BASE, S0):
            raise UserError(f"arm {name!r} starts from {arm['from']!r}: every arm starts from {S0} (or {BASE} for a "
                            "control), so that arms share their start")
        unknown_seeds = set(arm.get("seeds", seeds)) - set(seeds)
        if unknown_seeds:
            raise UserError(f"arm {name!r}: seeds {sorted(unknown_seeds)} are not in the study's seeds {seeds}")
    known = {BASE, S0, *arms}
    for group in ("primary", "secondary"):
        for contrast in (config.get("contrasts") or {}).get(group) or []:
            if not isinstance(contrast, dict) or {contrast.get("a"), contrast.get("b")} - known:
                raise UserError(f"contrast {contrast!r}: a and b must be arms of this config ({', '.join(sorted(known))})")
    unknown_evals = set(config.get("evals", {})) - set(EVALS)
    if unknown_evals:
        raise UserError(f"evals: unknown {sorted(unknown_evals)}; choose from {', '.join(EVALS)}")
    return config


def flags(value):
    """A config entry as command-line words: a string, or a list of strings (YAML aliases of shared flags + more)."""
    value = value or []
    return [word for v in ([value] if isinstance(value, str) else value) for word in shlex.split(str(v))]


# ----------------------------------------------------------------------------
# Plan


def model_flags(config, kind, model_dir):
    """How a script loads a start/evaluated model: a full fine-tune is a model folder, a LoRA an adapter."""
    if model_dir is None:
        return {"train": ["--model_name_or_path", config["model"]], "eval": ["--model", config["model"]],
                "sample": ["--teacher", config["model"]]}[kind]
    if config.get("full_finetune"):
        return {"train": ["--model_name_or_path", model_dir], "eval": ["--model", model_dir],
                "sample": ["--teacher", model_dir]}[kind]
    return {"train": ["--model_name_or_path", config["model"], "--init_adapter", model_dir],
            "eval": ["--model", config["model"], "--adapter", model_dir],
            "sample": ["--teacher", config["model"], "--adapter", model_dir]}[kind]


def plan(config, seeds, results=None):
    """Every stage, in an order that respects `after`."""
    study, py = config["study"], sys.executable
    results, outputs = results or os.path.join("results", study), os.path.join("outputs", study)
    data = os.path.join(outputs, "data.json")
    peft = ["--use_peft", "false"] if config.get("full_finetune") else []
    budget = ["--max_train_flops", str(config["budget_flops"])] if config.get("budget_flops") else []
    offset = config.get("train_offset")
    fresh = ["--train_slice", f"{offset}:"] if offset else []
    gsm8k_dir = config.get("gsm8k_dir")
    gsm8k = ["--gsm8k-dir", gsm8k_dir] if gsm8k_dir and os.path.isdir(gsm8k_dir) else []
    evals = config.get("evals") or {k: "" for k in ("linear_equation", "linear_equation_test_near", "gsm8k")}
    stages = [Stage("data", data, [py, "data.py", *flags(config.get("data")), "--out", data])]

    def add_evals(arm, seed, model_dir, after, only=None):
        folder = os.path.join(results, f"seed{seed}")
        for suffix, extra in evals.items():
            if only is not None and suffix not in only:
                continue
            script, split = EVALS[suffix]
            argv = [py, script, *model_flags(config, "eval", model_dir), "--name", arm, "--out", folder,
                    *flags(config.get("eval")), *flags(extra), *split, "--resume"]
            argv += ["--data", data] if script.startswith("linear") else gsm8k
            stages.append(Stage(f"seed{seed} eval {arm} {suffix}", os.path.join(folder, f"{arm}_{suffix}.json"),
                                argv, after))
        if arm in (config.get("passk") or {}).get("arms", []):
            argv = [py, "linear_equation_eval.py", *model_flags(config, "eval", model_dir), "--name", f"{arm}_passk",
                    "--out", folder, "--data", data, *flags(config.get("eval")), *flags(config["passk"].get("flags")),
                    "--resume"]
            stages.append(Stage(f"seed{seed} passk {arm}", os.path.join(folder, f"{arm}_passk_linear_equation.json"),
                                argv, after))

    def add_training(name, script, seed, start_dir, out_dir, arm_flags, data_file, after, arm):
        argv = [py, script, *model_flags(config, "train", start_dir), *peft, "--data", data_file,
                "--output_dir", out_dir, "--seed", str(seed), *arm_flags]
        if glob.glob(os.path.join(out_dir, "checkpoint-*")):  # interrupted earlier: continue it
            argv.append("--resume")
        done = os.path.join(out_dir, "run_config.json")  # written after the weights
        stages.append(Stage(name, done, argv, after, train_dir=out_dir, results_name=arm))

    for i, seed in enumerate(seeds):
        run_dir = os.path.join(outputs, f"seed{seed}")
        s0_dir = os.path.join(run_dir, S0)
        if i == 0:  # the base model's greedy outputs do not depend on the training seed
            add_evals(BASE, seed, None, ["data"])
        add_training(f"seed{seed} train {S0}", "sft.py", seed, None, s0_dir, flags(config["s0"]), data, ["data"], S0)
        add_evals(S0, seed, s0_dir, [f"seed{seed} train {S0}"])
        for arm, spec in config.get("arms", {}).items():
            if seed not in spec.get("seeds", seeds):
                continue
            start = s0_dir if spec["from"] == S0 else None
            after = [f"seed{seed} train {S0}"] if spec["from"] == S0 else ["data"]
            arm_dir, arm_data = os.path.join(run_dir, arm), data
            if spec["kind"] == "rft":  # S0's own verified samples become the train responses
                arm_data = os.path.join(run_dir, f"{arm}_data.json")
                argv = [py, "sample.py", *model_flags(config, "sample", start), "--data", data, "--out", arm_data,
                        "--seed", str(seed), *flags(spec.get("sample"))]
                stages.append(Stage(f"seed{seed} sample {arm}", arm_data, argv, after))
                after = [f"seed{seed} sample {arm}"]
            script = "grpo.py" if spec["kind"] == "grpo" else "sft.py"
            equal = spec.get("equal_compute", True)  # false: e.g. the data-efficiency curve's SFT runs
            slice_flags = fresh if equal and spec["kind"] != "rft" else []  # sample.py already took fresh items
            add_training(f"seed{seed} train {arm}", script, seed, start, arm_dir,
                         [*slice_flags, *(budget if equal else []), *flags(spec.get("flags"))], arm_data, after, arm)
            add_evals(arm, seed, arm_dir, [f"seed{seed} train {arm}"], spec.get("evals"))
    for stage in stages:
        stage.rank = priority(stage.name, config)
    return stages


# ----------------------------------------------------------------------------
# Run


def keep_run_record(stage, results):
    """Copy a trainer's log and config into results/<study>/seed<N>/ (outputs/ is not committed)."""
    seed_dir = os.path.join(results, stage.name.split()[0])
    os.makedirs(seed_dir, exist_ok=True)
    for name in ("train_log.jsonl", "run_config.json"):
        src = os.path.join(stage.train_dir, name)
        if os.path.exists(src):
            shutil.copyfile(src, os.path.join(seed_dir, f"{stage.results_name}_{name}"))


EXTRAS = 4  # ranks from here on wait until every stage the primary contrasts need has finished


def primary_contrasts(config):
    return (config.get("contrasts") or {}).get("primary") or []


def primary_arms(config):
    """The arms the pre-registered primary contrasts compare."""
    return {c[k] for c in primary_contrasts(config) for k in ("a", "b")}


def priority(name, config):
    """Start order among ready stages: what the pre-registered primary contrasts need comes first, so that a lease
    that runs out leaves the answer rather than the extras. S0, then the primary arms (GRPO first: the slowest),
    then their evals on the primary benchmarks, then other training and sampling, then every other eval. The
    extras (other training, sampling and evals) start only once the primary stages are done, not in free slots
    beside them (sharing the GPU slows those), unless --fill-free-slots."""
    arms = primary_arms(config)
    suffixes = {c["benchmark"] if c.get("split", "test") == "test" else f"{c['benchmark']}_{c['split']}"
                for c in primary_contrasts(config)}
    words = name.split() + ["", "", ""]
    kind, arm, suffix = words[1], words[2], words[3]
    if name == "data" or (kind, arm) == ("train", S0):
        return 0
    if kind in ("train", "sample") and arm in arms:
        return 1 if arm.startswith("grpo") else 2
    if kind == "eval" and arm in arms and suffix in suffixes:
        return 3
    return 4 if kind in ("train", "sample") else 5


def run_stages(stages, results, outputs, jobs, dry_run, fill_free_slots=False):
    """Run what is not done yet, up to `jobs` stages at once, each as soon as the stages it needs have finished.
    The extras wait for the primary stages unless fill_free_slots (more throughput, slower primary stages)."""
    done_path = os.path.join(outputs, "stages_done.json")
    done = set(read_json(done_path)) if os.path.exists(done_path) else set()
    timings_path = os.path.join(results, "timings.json")
    timings = read_json(timings_path) if os.path.exists(timings_path) else {}
    finished, pending, running = set(), [], {}
    for stage in stages:
        ours = stage.name in done or not stage.output.startswith(results + os.sep)  # outputs/ is never committed
        if os.path.exists(stage.output) and ours:
            print(f"{stage.name}: done ({stage.output})")
            finished.add(stage.name)
            if stage.train_dir and not dry_run:  # again: a run that ended while study.py was stopping left no copy
                keep_run_record(stage, results)
        else:
            pending.append(stage)
    if dry_run:
        for stage in pending:
            print(f"{stage.name}: {shlex.join(['python', *stage.argv[1:]])}")
        return
    os.makedirs(os.path.join(outputs, "logs"), exist_ok=True)
    env = dict(os.environ)
    # Each stage's torch would take every core: with jobs > 1 their OpenMP threads fight (make study's CPU evals
    # ran 2.5x slower with two 2-thread processes on 2 cores than with two 1-thread ones). A set value is kept.
    env.setdefault("OMP_NUM_THREADS", str(max(1, len(os.sched_getaffinity(0)) // jobs)))

    def record(stage, start):
        timings[stage.name] = round(time.time() - start, 1)
        atomic_write_json(timings_path, timings)
        done.add(stage.name)
        atomic_write_json(done_path, sorted(done))
        finished.add(stage.name)
        if stage.train_dir:
            keep_run_record(stage, results)
        print(f"{stage.name}: {timings[stage.name]:.0f} s", flush=True)

    while pending or running:
        ready = sorted((s for s in pending if set(s.after) <= finished), key=lambda s: s.rank)
        if not fill_free_slots and any(s.rank < EXTRAS for s in ready + [r[0] for r in running.values()]):
            ready = [s for s in ready if s.rank < EXTRAS]  # extras in free slots slowed S0 3x on 2026-12-03
        for stage in ready[:max(0, jobs - len(running))]:
            pending.remove(stage)
            if os.path.exists(stage.output):  # not ours, e.g. committed results: --resume would take them as complete
                os.remove(stage.output)
            log = os.path.join(outputs, "logs", stage.name.replace(" ", "_") + ".log")
            print(f"{stage.name}: start (log {log})", flush=True)
            with open(log, "w") as f:
                f.write(shlex.join(["python", *stage.argv[1:]]) + "\n")
                f.flush()
                process = subprocess.Popen(stage.argv, stdout=f, stderr=subprocess.STDOUT, env=env)
            running[stage.name] = (stage, process, time.time(), log)
        time.sleep(0.2)
        for name, (stage, process, start, log) in list(running.items()):
            if process.poll() is None:
                continue
            del running[name]
            if process.returncode != 0:
                for other, other_process, other_start, _ in running.values():
                    if other_process.wait() == 0:  # let the others finish: their work is kept, and recorded
                        record(other, other_start)
                with open(log) as f:
                    tail = [line.rstrip() for line in f if line.strip()][-1:] or ["(no output)"]
                raise UserError(f"stage '{name}' failed ({tail[0][:300]}); see {log}; rerun to continue: "
                                "finished stages are kept")
            record(stage, start)


def only_arms(stages, arms, config):
    """The stages of these arms (training, sampling, evals, pass@k) and every stage they wait for."""
    known = {BASE, S0, *config.get("arms", {})}
    if set(arms) - known:
        raise UserError(f"--arms: unknown {sorted(set(arms) - known)}; this config has {', '.join(sorted(known))}")
    by_name = {s.name: s for s in stages}
    wanted = {s.name for s in stages if s.name != "data" and s.name.split()[2] in arms}
    if not wanted:
        raise UserError(f"--arms {','.join(arms)}: no stages for these seeds (see the arms' `seeds`; base runs with "
                        "the config's first seed)")
    todo = list(wanted)
    while todo:
        for name in by_name[todo.pop()].after:  # a seed's stages wait only for its own and data
            if name not in wanted:
                wanted.add(name)
                todo.append(name)
    return [s for s in stages if s.name in wanted]


def main(argv=None):
    parser = one_line_errors(argparse.ArgumentParser(description=__doc__.split("\n\n")[0]))
    parser.add_argument("config", help="study YAML (see configs/)")
    parser.add_argument("--seed", type=int, action="append", help="run only this seed (repeatable); default: all")
    parser.add_argument("--jobs", type=int, default=1, help="stages run at once (small models share a GPU well)")
    parser.add_argument("--fill-free-slots", action="store_true",
                        help="start the extras (secondary arms, benchmarks, pass@k) in free slots beside the primary "
                             "stages instead of after them: the whole study ends sooner, its primary stages later")
    parser.add_argument("--arms", default=None,
                        help="run only these arms, comma-separated (base and s0 count as arms), with the stages they "
                             "need, e.g. --arms grpo_base,sft_n20000 (no S0): a lease for the rest")
    parser.add_argument("--dry-run", action="store_true", help="print the commands, run and write nothing")
    parser.add_argument("--no-report", action="store_true", help="skip report.py at the end (e.g. seeds run apart)")
    parser.add_argument("--results", default=None, help="results folder (default results/<study>); e.g. a git-ignored "
                        "one on a machine that syncs the working tree (the lent GPU's tool removes untracked files)")
    args = parser.parse_args(argv)
    if args.jobs < 1:
        raise UserError("--jobs must be at least 1")
    config = load_config(args.config)
    seeds = args.seed or config["seeds"]
    if set(seeds) - set(config["seeds"]):
        raise UserError(f"--seed {sorted(set(seeds) - set(config['seeds']))}: not in the config's seeds {config['seeds']}")
    results = os.path.normpath(args.results or os.path.join("results", config["study"]))
    outputs = os.path.join("outputs", config["study"])
    all_stages = plan(config, config["seeds"], results)
    if not args.dry_run:  # a dry run writes nothing: it must not overwrite a finished study's commands.sh
        os.makedirs(results, exist_ok=True)
        shutil.copyfile(args.config, os.path.join(results, "config.yaml"))  # the pre-registered contrasts travel along
        with open(os.path.join(results, "commands.sh"), "w") as f:
            f.write(f"# {config['study']}: the commands study.py runs for {args.config}\n")
            for stage in all_stages:
                f.write(f"# {stage.name}\n{shlex.join(['python', *stage.argv[1:]])}\n")
    chosen = [s for s in all_stages if s.name == "data" or s.name.split()[0] in {f"seed{n}" for n in seeds}]
    fill_free_slots = args.fill_free_slots
    if args.arms:
        arms = [a.strip() for a in args.arms.split(",") if a.strip()]
        chosen = only_arms(chosen, arms, config)
        fill_free_slots |= not primary_arms(config) & set(arms)  # S0 there only for an extra arm: nothing to wait for
    start = time.time()
    run_stages(chosen, results, outputs, args.jobs, args.dry_run, fill_free_slots)
    if args.dry_run or args.no_report:
        return
    subprocess.run([sys.executable, "report.py", results], check=False)
    print(f"study {config['study']} (seeds {seeds}) done in {time.time() - start:.0f} s; report: {results}/report.md")


if __name__ == "__main__":
    cli(main)

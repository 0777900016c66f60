"""Study report: accuracy with 95% CIs, paired tests against the baseline, bar chart, training curves.

Reads the results JSONs that linear_equation_eval.py and gsm8k_eval.py wrote into one study folder and
writes report.md and PNGs (into the same folder unless --out). It only reads files: nothing is re-scored.

    python report.py results/quick
    python report.py results/quick --train-log sft=outputs/quick/sft --train-log grpo=outputs/quick/grpo
    python report.py results/full --out reports/full --bootstrap-samples 20000
    python report.py results/small     # a multi-seed study: config.yaml + seed1/, seed2/, ... (study_report.py)

Results files are recognised by their content (summary.benchmark + summary.split), not their names;
the run is summary.name (baseline, sft, grpo, sft_grpo are tabled in that order, other names after).
Training curves: --train-log RUN=PATH, PATH a training output dir or its train_log.jsonl; for runs
without the flag, a copy named <run>_train_log.jsonl in the study folder is used if there is one.
"""

import argparse
import glob
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from records import read_json, read_jsonl
from stats import mcnemar_exact, paired_bootstrap
from utils import UserError, cli, wilson_interval

RUN_ORDER = ("baseline", "sft", "grpo", "sft_grpo")
RUN_LABELS = {"baseline": "Baseline", "sft": "SFT", "grpo": "GRPO", "sft_grpo": "SFT+GRPO"}
# (benchmark, split) -> column label; other combinations found in the folder are tabled after these
COLUMNS = {("linear_equation", "test"): "Linear test", ("linear_equation", "test_ood"): "Linear test_ood",
           ("gsm8k", "test"): "GSM8K"}
TABLE_MODES = ("strict", "lenient")
LOG_NAME = "train_log.jsonl"  # written by callbacks.JsonlLogCallback (not imported: it pulls in transformers)
REPORT_NAME = "report.md"

# The original study's reported figures, in percent, keyed by (run, benchmark, split). These two are
# the only numbers of it we know; every other reference cell stays empty. Not comparable: see NOTE.
ORIGINAL_STUDY = {
    ("baseline", "linear_equation", "test"): 4.2,
    ("sft", "gsm8k", "test"): 0.73,
}
ORIGINAL_STUDY_NOTE = (
    "**Why the original study's figures are not comparable.** They are shown for reference only. "
    "Its GRPO run trained on 88 of its 100 test items, so its in-domain test score measures recall "
    "of seen problems. Its 4.2% baseline on linear equations came from parsing the first `x = ...` "
    "anywhere in the text (often an intermediate step) instead of the final answer. Its SFT collapse "
    "on GSM8K (0.73%) came from computing the loss on the whole prompt at learning rate 5e-4, together "
    "with a parser that rejected answers such as \"$18\". Our runs train on the train split only "
    "(the eval scripts refuse overlapping items unless allow_overlap is set), score the final answer, "
    "and accept \"$18\" in the flexible and lenient modes."
)

# ----------------------------------------------------------------------------
# Reading


@dataclass
class Result:
    path: str
    run: str
    benchmark: str
    split: str
    summary: dict
    records: list

    def count(self, mode):
        acc = self.summary["accuracy"][mode]
        return int(acc["correct"]), int(acc["total"])


def load_results(study_dir):
    """Every results JSON in `study_dir`; other JSON files are skipped, malformed ones are an error."""
    if not os.path.isdir(study_dir):
        raise UserError(f"study folder not found: {study_dir} (run the eval scripts with --out {study_dir})")
    results, seen = [], {}
    for path in sorted(glob.glob(os.path.join(study_dir, "*.json"))):
        if path.endswith("_run_config.json"):  # a trainer's config that study.py copies beside its results
            continue
        obj = read_json(path, "results file")
        summary = obj.get("summary") if isinstance(obj, dict) else None
        if not isinstance(summary, dict) or "benchmark" not in summary:
            print(f"skipping {path}: not a results file (no summary.benchmark)")
            continue
        accuracy = summary.get("accuracy")
        if (not summary.get("split") or not isinstance(accuracy, dict)
                or not all(isinstance(a, dict) and {"correct", "total"} <= a.keys() for a in accuracy.values())):
            raise UserError(f"{path} lacks summary.split or summary.accuracy[mode].correct/total; "
                            "re-run the eval or --rescore it")
        run = summary.get("name") or os.path.basename(path).split(f"_{summary['benchmark']}")[0]
        key = (run, summary["benchmark"], summary["split"])
        if key in seen:
            raise UserError(f"two results for run {run!r}, {key[1]} {key[2]}: {seen[key]} and {path}; "
                            "move one out of the folder")
        seen[key] = path
        results.append(Result(path, run, summary["benchmark"], summary["split"], summary,
                              obj.get("records") or []))
    if not results:
        raise UserError(f"no results JSON in {study_dir}: expected files written by "
                        "linear_equation_eval.py / gsm8k_eval.py (--out that folder)")
    return results


def warnings_for(result):
    """Things a reader must know before trusting a file's numbers."""
    found = []
    if result.summary.get("allow_overlap"):
        found.append(f"`{result.path}` was evaluated with allow_overlap: some items may have been trained on")
    for mode in result.summary["accuracy"]:
        outputs = [o for r in result.records for o in r.get("outputs", [])]
        if outputs and (sum(bool(o.get("correct", {}).get(mode)) for o in outputs), len(outputs)) != result.count(mode):
            found.append(f"`{result.path}`: summary {mode} accuracy {'/'.join(map(str, result.count(mode)))} "
                         f"disagrees with its records; the paired tests use the records")
    return found


def read_train_log(path):
    """Rows of a train_log.jsonl; `path` may be the training output dir."""
    if os.path.isdir(path):
        path = os.path.join(path, LOG_NAME)
    if not os.path.exists(path):
        raise UserError(f"training log not found: {path}")
    return path, read_jsonl(path)


def load_train_logs(specs, study_dir, runs):
    logs = {}
    for spec in specs:
        run, sep, path = spec.partition("=")
        if not sep or not run or not path:
            raise UserError(f"--train-log takes RUN=PATH (e.g. sft=outputs/quick/sft), got {spec!r}")
        logs[run] = read_train_log(path)
    for run in runs:
        copy = os.path.join(study_dir, f"{run}_{LOG_NAME}")
        if run not in logs and os.path.exists(copy):
            logs[run] = read_train_log(copy)
    return logs


# ----------------------------------------------------------------------------
# Paired significance against the baseline


def _item_outcomes(result, mode):
    return {r["id"]: [bool(o["correct"][mode]) for o in r["outputs"]] for r in result.records}


def paired_test(base, other, mode, samples=10000, seed=0):
    """Compare two results on the same items: McNemar for one output per item, else paired bootstrap.

    Returns {"test": ..., "p": ..., ...} or {"na": reason} when the items cannot be paired.
    """
    if not base.records or not other.records:
        return {"na": "no per-item records"}
    sha_a, sha_b = base.summary.get("data_sha256"), other.summary.get("data_sha256")
    if sha_a and sha_b and sha_a != sha_b:
        return {"na": "different data files"}
    answers_a = {r["id"]: r.get("answer") for r in base.records}
    answers_b = {r["id"]: r.get("answer") for r in other.records}
    if answers_a.keys() != answers_b.keys():
        return {"na": f"item sets differ ({len(answers_a)} vs {len(answers_b)} items)"}
    if any(answers_a[i] != answers_b[i] for i in answers_a):
        return {"na": "same ids but different answers"}
    try:
        a, b = _item_outcomes(base, mode), _item_outcomes(other, mode)
    except (KeyError, TypeError):
        return {"na": f"records lack per-output {mode} correctness"}
    if any(not a[i] or not b[i] for i in a):
        return {"na": "an item has no outputs"}
    if all(len(a[i]) == 1 and len(b[i]) == 1 for i in a):
        lost = sum(a[i][0] and not b[i][0] for i in a)
        gained = sum(b[i][0] and not a[i][0] for i in a)
        return {"test": "mcnemar", "lost": lost, "gained": gained, "p": mcnemar_exact(lost, gained),
                "items": len(a)}
    diffs = [np.mean(b[i]) - np.mean(a[i]) for i in sorted(a)]
    return {"test": "bootstrap", "items": len(a), "samples": samples, **paired_bootstrap(diffs, samples, seed)}


def format_test(t):
    if "na" in t:
        return f"n/a ({t['na']})"
    p = f"p = {t['p']:.3g}" if t["p"] >= 0.001 else "p < 0.001"
    if t["test"] == "mcnemar":
        return f"+{t['gained']} / -{t['lost']}, {p}"
    lo, hi = t["ci95"]
    return f"{100 * t['delta']:+.1f} pp [{100 * lo:+.1f}, {100 * hi:+.1f}], {p}"


# ----------------------------------------------------------------------------
# Tables


def ordered(items, known):
    """Known names in their fixed order, then the others sorted."""
    first = [k for k in known if k in set(items)]
    return first + sorted(set(items) - set(first))


def column_label(key):
    return COLUMNS.get(key, f"{key[0]} {key[1]}")


def pct(correct, total):
    return f"{100 * correct / total:.1f}" if total else "-"


def acc_cell(result, mode):
    if result is None or mode not in result.summary["accuracy"]:
        return ""
    correct, total = result.count(mode)
    lo, hi = wilson_interval(correct, total)
    return f"{pct(correct, total)} [{100 * lo:.1f}, {100 * hi:.1f}]"


def md_table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(str(c) for c in row) + " |" for row in rows])


def main_table(by_key, runs, columns):
    header = ["Run"] + [f"{column_label(c)} {m}" for c in columns for m in TABLE_MODES]
    header.append("Original study, reported (not comparable, see note)")
    rows = []
    for run in runs:
        cells = [acc_cell(by_key.get((run, *c)), m) for c in columns for m in TABLE_MODES]
        reference = [f"{column_label(k[1:])}: {v}%" for k, v in ORIGINAL_STUDY.items() if k[0] == run]
        rows.append([RUN_LABELS.get(run, run)] + cells + ["; ".join(reference)])
    return md_table(header, rows)


def detail_table(by_key, runs, column, baseline, samples, seed):
    """Counts as read from the files, failure rates and the paired test against the baseline."""
    results = [by_key[(run, *column)] for run in runs if (run, *column) in by_key]
    modes = list(dict.fromkeys(m for r in results for m in r.summary.get("modes") or r.summary["accuracy"]))
    base = by_key.get((baseline, *column))
    header = ["Run", "items", "outputs"] + modes + ["format failures", "truncated"]
    if base is not None:
        header += [f"vs {baseline}, {m}" for m in TABLE_MODES]
    rows = []
    for r in results:
        outputs = int(r.summary.get("num_outputs") or r.count(modes[0])[1])
        row = [RUN_LABELS.get(r.run, r.run), r.summary.get("num_items", len(r.records)), outputs]
        for m in modes:
            c, t = r.count(m) if m in r.summary["accuracy"] else (0, 0)
            row.append(f"{c}/{t} ({pct(c, t)}%)" if t else "")
        for key in ("format_failures", "truncated"):
            n = r.summary.get(key)
            row.append(f"{n} ({pct(n, outputs)}%)" if n is not None else "")
        if base is not None:
            row += ["" if r is base else format_test(paired_test(base, r, m, samples, seed)) for m in TABLE_MODES]
        rows.append(row)
    return md_table(header, rows)


def _is_val_accuracy(key):
    # val_accuracy, eval_accuracy, val/accuracy_strict ...; not SFT's next-token accuracy
    return "accuracy" in key and "token" not in key


def training_table(logs):
    rows = []
    for run in ordered(list(logs), RUN_ORDER):
        path, log = logs[run]
        last = {}
        for row in log:
            last.update({k: v for k, v in row.items() if isinstance(v, (int, float))})

        def fmt(key):
            return f"{last[key]:.4g}" if key in last else ""
        val = next((k for k in sorted(last) if _is_val_accuracy(k)), None)
        rows.append([RUN_LABELS.get(run, run), fmt("step"), fmt("loss"), fmt("eval_loss"), fmt("reward"),
                     fmt(val) if val else "", f"`{path}`"])
    return md_table(["Run", "last step", "loss", "eval loss", "reward", "val accuracy", "log"], rows)


def render_report(study_dir, results, logs, plots, baseline, samples, seed):
    by_key = {(r.run, r.benchmark, r.split): r for r in results}
    runs = ordered([r.run for r in results], RUN_ORDER)
    columns = ordered({(r.benchmark, r.split) for r in results}, COLUMNS)
    out = [f"# Report: {os.path.basename(os.path.normpath(study_dir))}", "",
           f"Generated by `report.py` from the {len(results)} results files listed under Inputs. Accuracy = "
           "correct outputs / all outputs, in %, with the 95% Wilson interval. *strict*: the answer is "
           "read only from a well-formed `<think>...</think><answer>...</answer>` response; *lenient*: "
           "falls back to the last answer-like value anywhere in the text.", "",
           "## Accuracy", "", "Counts (n) and failure rates per cell are in the detail tables below.", "",
           main_table(by_key, runs, columns), "", ORIGINAL_STUDY_NOTE, ""]
    if "accuracy" in plots:
        out += [f"![accuracy]({plots['accuracy']})", ""]
    if warnings := [w for r in results for w in warnings_for(r)]:
        out += ["**Warnings**", ""] + [f"- {w}" for w in warnings] + [""]
    out += ["## Details and paired tests", "",
            f"Paired tests compare each run with `{baseline}` on the same items. One output per item: "
            "exact McNemar test, shown as `+gained / -lost, p` (gained: the run right where the baseline "
            "was wrong). Several outputs per item: paired bootstrap over items "
            f"({samples} resamples, seed {seed}) of the per-item accuracy difference, shown as "
            "`difference in percentage points [95% CI], p`. With several outputs per item the Wilson "
            "intervals treat outputs as independent and are too narrow; the bootstrap does not. Tests "
            "are marked n/a where the two files do not hold the same items. Format failures: outputs "
            "whose strict parse failed.", ""]
    if not any(r.run == baseline for r in results):
        out += [f"No run named `{baseline}` in this folder, so there are no paired tests (see --baseline).", ""]
    for column in columns:
        out += [f"### {column_label(column)}", "", detail_table(by_key, runs, column, baseline, samples, seed), ""]
    if logs:
        out += ["## Training", "", training_table(logs), ""]
        out += [f"![training {run}]({plots[f'training_{run}']})" for run in ordered(list(logs), RUN_ORDER)
                if f"training_{run}" in plots] + [""]
    out += ["## Inputs", ""]
    for run in runs:
        for column in columns:
            if (r := by_key.get((run, *column))) is None:
                continue
            s, js = r.summary, json.dumps
            out.append(f"- `{r.path}`: run `{r.run}`, {r.benchmark} {r.split}, {s.get('num_items')} items, "
                       f"{s.get('num_outputs')} outputs; model `{s.get('model')}`, adapter {js(s.get('adapter'))}; "
                       f"data `{s.get('data_file')}` (sha256 {js(s.get('data_sha256'))}); allow_overlap "
                       f"{js(s.get('allow_overlap'))}; generation `{js(s.get('generation'), sort_keys=True)}`")
    return "\n".join(out) + "\n"


# ----------------------------------------------------------------------------
# Files and command line


def atomic_write(path, write):
    """`write(tmp)` a temp file beside `path`, then rename it: readers never see half a file."""
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(os.path.abspath(path)), prefix=".tmp-",
                               suffix=os.path.splitext(path)[1])
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("study_dir", help="folder of results JSONs, e.g. results/quick, or of seed*/ folders")
    p.add_argument("--train-log", action="append", default=[], metavar="RUN=PATH",
                   help="training curves of RUN from a training output dir or train_log.jsonl (repeatable)")
    p.add_argument("--out", default=None, help="where report.md and PNGs go (default: the study folder)")
    p.add_argument("--baseline", default="baseline", help="run the paired tests compare against")
    p.add_argument("--bootstrap-samples", type=int, default=10000,
                   help="resamples for the paired bootstrap (runs with several outputs per item)")
    p.add_argument("--seed", type=int, default=0, help="seed of the paired (study: hierarchical) bootstrap")
    p.add_argument("--data", default=None, metavar="DATA_JSON",
                   help="multi-seed study: its data.json (data.py with the config's data flags; checked against "
                        "the results' sha256). Adds the primary contrasts without the test items whose system, "
                        "variables renamed, is also a train item")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if args.bootstrap_samples < 1:
        raise UserError("--bootstrap-samples must be at least 1")
    import study_report  # here, not at the top: it imports this module, as plots.py does
    from plots import plot_accuracy, plot_training

    if study_report.is_study(args.study_dir):  # seed*/ subfolders: the multi-seed study report
        return study_report.main(args)
    results = load_results(args.study_dir)
    logs = load_train_logs(args.train_log, args.study_dir, {r.run for r in results})
    out_dir = args.out or args.study_dir
    os.makedirs(out_dir, exist_ok=True)
    print(f"report | {len(results)} results files | training logs: {', '.join(logs) or 'none'} | out {out_dir}")
    plots = {"accuracy": "accuracy.png"}
    plot_accuracy(results, os.path.join(out_dir, plots["accuracy"]))
    for run, (_, log) in logs.items():
        name = f"training_{run}.png"
        if plot_training(run, log, os.path.join(out_dir, name)):
            plots[f"training_{run}"] = name
    text = render_report(args.study_dir, results, logs, plots, args.baseline, args.bootstrap_samples, args.seed)
    path = os.path.join(out_dir, REPORT_NAME)
    atomic_write(path, lambda tmp: Path(tmp).write_text(text))
    print(f"wrote {path} and {len(plots)} plots")
    return path


if __name__ == "__main__":
    cli(main)

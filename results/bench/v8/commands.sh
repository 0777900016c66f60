#!/usr/bin/env bash
# bench v8 (issue 7), one GPU: what v7 left unmeasured. From the repo root, with trl/datasets importable:
#     OUT=/some/dir bash results/bench/v8/commands.sh check|full|stock|lora
# back to back on one warm machine (the four fit one session's 1800 s with the machine's start):
#   check (~200 s): the CUDA-only tests and the fast trainer's loss/gradient tests on CUDA.
#   full (~340 s):  GRPO full FT with --compile-layers, fast path, 3 timed steps (its first step compiles, ~300 s).
#   stock (~210 s): stock TRL GRPOTrainer, full FT and LoRA r=64, 3 timed steps each.
#   lora (~460 s):  GRPO LoRA r=64 with --compile-layers, fast path (first step ~400 s).
# As first run (NOTES v8), check gave the tests 150 s and then the full-FT run both paths in 400 s: both timed
# out; stock and lora were then run as the inline equivalents of these parts. Logs go to $OUT/work and are packed
# into $OUT/v8_<part>.tgz.
set -uo pipefail
PART=${1:?check, full, stock or lora}
case $PART in check|full|stock|lora) ;; *) echo "unknown part: $PART (check, full, stock or lora)"; exit 2;; esac
OUT=${OUT:-results/bench/v8/out}
source "$(dirname "${BASH_SOURCE[0]}")/../common.sh"  # $WORK, env.txt, $BENCH, $DATA, $PY, $TOK, run
export TORCHINDUCTOR_CACHE_DIR=/tmp/inductor-v8

if [ "$PART" = check ]; then
    TEST_TOKENIZER_DIR=$TOK timeout 240 $PY -m pytest -q -p no:cacheprovider -rs --tb=short tests/test_generation.py \
        tests/test_fast_grpo.py -k "cuda or compiled or loss_and_gradients or mixed_precision" -s \
        > "$WORK/cuda_tests.log" 2>&1
    echo "== cuda tests: exit $?"; grep "relative error" "$WORK/cuda_tests.log"; tail -n 3 "$WORK/cuda_tests.log"
elif [ "$PART" = full ]; then
    run grpo_full_compile 420 --parts floor,grpo --grpo-variants full --grpo-paths fast --grpo-steps 3 --compile-layers
elif [ "$PART" = stock ]; then
    run grpo_stock 420 --parts floor,grpo --grpo-variants full,lora --grpo-paths stock --grpo-steps 3
elif [ "$PART" = lora ]; then
    run grpo_lora_compile 570 --parts grpo --grpo-variants lora --grpo-paths fast --grpo-steps 3 --compile-layers
fi
tar czf "$OUT/v8_$PART.tgz" -C "$WORK" .

#!/usr/bin/env bash
# bench v7 (issue 7), one GPU. From the repo root, with trl/datasets importable:
#     OUT=/some/dir bash results/bench/v7/commands.sh eval|lora|lora_again|final
#   eval (~550 s): first the CUDA-only tests and the fast trainer's loss/gradient tests, which then run on CUDA
#                  (Inductor; the tiny models get the Qwen tokenizer: the GPU machine lacks the embedded SmolLM2);
#                  then eval_sweep.py: our eval path at most 256 (as before v7: 5 x 256 + 39 rows topped up, "256u"),
#                  256, 264, 330, 440, 660 rows a batch (even: 6 x 220, 5 x 264, 4 x 330, 3 x 440, 2 x 660) after one
#                  untimed pass; plain generate at 256 and 440 rows a batch; peak memory of each.
#   lora (~580 s): GRPO LoRA r=64 with --compile-layers, fast path only, 3 timed steps; Inductor's cache in
#                  /tmp/inductor-v7 (outside $OUT: the machine keeps it while warm).
#   lora_again (~400 s, right after lora on the same machine): the same fast run in a second process (Inductor's
#                  cache from lora), then stock TRL on the same config.
#   final (~500 s): bench.py at the committed defaults, every part (floor, eval with plain generate on all 1319
#                  prompts, GRPO full and LoRA fast vs stock over 3 timed steps, SFT): the JSON to commit as
#                  results/bench/bench_h200.json.
# One session's 1800 s of device time holds eval, lora and lora_again (~1500 s with the machine's start); final
# needs the next. Every log goes to $OUT/work and is packed into $OUT/v7_<part>.tgz.
set -uo pipefail
PART=${1:?eval, lora, lora_again or final}
case $PART in eval|lora|lora_again|final) ;; *) echo "unknown part: $PART (eval, lora, lora_again or final)"; exit 2;; esac
OUT=${OUT:-results/bench/v7/out}
source "$(dirname "${BASH_SOURCE[0]}")/../common.sh"  # $WORK, env.txt, $BENCH, $DATA, $PY, run
export TORCHINDUCTOR_CACHE_DIR=/tmp/inductor-v7

if [ "$PART" = eval ]; then
    TEST_TOKENIZER_DIR=$TOK timeout 150 $PY -m pytest -q -p no:cacheprovider -rs tests/test_generation.py \
        tests/test_fast_grpo.py -k "cuda or compiled or loss_and_gradients" -s > "$WORK/cuda_tests.log" 2>&1
    echo "== cuda tests: exit $?"; grep "relative error" "$WORK/cuda_tests.log"; tail -n 3 "$WORK/cuda_tests.log"
    timeout 400 $PY results/bench/v7/eval_sweep.py $DATA --ours 256u,256,264,330,440,660 --plain 256,440 \
        --out "$WORK/eval_sweep.json" > "$WORK/eval_sweep.log" 2>&1  # the JSON is rewritten after each pass
    echo "== eval sweep: exit $?"; grep -E "^(ours|plain) " "$WORK/eval_sweep.log"
elif [ "$PART" = lora ]; then
    run grpo_lora_compile 580 --parts floor,grpo --grpo-variants lora --grpo-paths fast --grpo-steps 3 --compile-layers
elif [ "$PART" = lora_again ]; then
    run grpo_lora_again 580 --parts floor,grpo --grpo-variants lora --grpo-steps 3 --compile-layers
elif [ "$PART" = final ]; then
    run bench_h200 580
fi
tar czf "$OUT/v7_$PART.tgz" -C "$WORK" .

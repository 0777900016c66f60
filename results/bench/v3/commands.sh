#!/usr/bin/env bash
# bench.py v3 (fused RMSNorm in the CUDA decode, LoRA folded for GRPO's decode) on one GPU.
# From the repo root, with trl/datasets (and pytest for part a) importable:
#   OUT=/some/dir bash results/bench/v3/commands.sh a|b
#   a (~450 s): the CUDA-only tests; a tiny fp32 model (greedy tokens, fast path vs plain generate); the decode
#               step with and without the fused RMSNorm (where_time_goes.py --parts eval); the 1319 x 256 eval at
#               the default batch 256 (plain generate on all 1319 prompts at the same batch, 2 passes of ours);
#               the GRPO per-part breakdown (where_time_goes.py --parts grpo).
#   b (~280 s): floor and GRPO full / LoRA r=64, stock TRL vs --fast_generation, 6 timed steps each.
#   final (~480 s): the final code's bench JSON: floor, the eval at batch 256 (2 passes of ours, plain generate
#               on all 1319 prompts), GRPO full and LoRA over 6 timed steps.
# Every JSON/.md/log goes to $OUT/work and is packed into $OUT/v3_<part>.tgz.
set -uo pipefail
PART=${1:?a, b or final}
OUT=${OUT:-results/bench/v3/out}
source "$(dirname "${BASH_SOURCE[0]}")/../common.sh"  # $WORK, env.txt, $BENCH, $DATA, $PY, run

if [ "$PART" = a ]; then
    timeout 120 $PY -m pytest -q -p no:cacheprovider -rs tests/test_generation.py -k "cuda" > "$WORK/cuda_tests.log" 2>&1
    echo "== cuda tests: exit $?"; tail -n 5 "$WORK/cuda_tests.log"
    run tiny_fp32 60 --model tiny --dtype float32 --parts eval --eval-prompts 128 --eval-tokens 64
    timeout 150 $PY results/bench/v2/where_time_goes.py --no-unsloth $DATA --parts eval > "$WORK/decode_steps.log" 2>&1
    echo "== decode steps: exit $?"; grep -e "ms per step" -e "fused RMSNorm layers" "$WORK/decode_steps.log"
    run final_eval 300 --parts floor,eval --eval-repeats 2
    timeout 200 $PY results/bench/v2/where_time_goes.py --no-unsloth $DATA --parts grpo > "$WORK/grpo_parts.log" 2>&1
    echo "== grpo parts: exit $?"; grep -A6 "seconds per optimizer step" "$WORK/grpo_parts.log"
elif [ "$PART" = b ]; then
    run final_grpo 560 --parts floor,grpo --grpo-steps 6
else
    run final 560 --parts floor,eval,grpo --eval-repeats 2 --grpo-steps 6
fi
tar czf "$OUT/v3_$PART.tgz" -C "$WORK" .

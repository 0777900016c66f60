#!/usr/bin/env bash
# bench.py v4 (GRPO's training step without cuDNN attention; grpo.py --compile_layers: the training step's decoder
# layers through one torch.compile graph) on one GPU. From the repo root, with trl/datasets (and pytest for part a) importable:
#   OUT=/some/dir bash results/bench/v4/commands.sh a|b|final
#   a (~400 s): the CUDA-only tests; v3's norm_error.py (with its float32 yardstick); the GRPO per-part breakdown
#               and profile of full FT as v3 left it, then of full FT and LoRA with --compile-layers.
#   b (~500 s): floor and GRPO full / LoRA r=64, stock TRL vs --fast_generation, 6 timed steps; the per-part
#               breakdown and profile of full FT with --compile-layers.
#   (a ran on 4f363b9, b on 7d3c482; --compile-layers and the cuDNN switch were then taken out, so a and b need
#   those commits: see NOTES v4)
#   final (~560 s): the final code's bench JSON: floor, the eval at batch 256 (2 passes of ours, plain generate
#               on all 1319 prompts), GRPO full and LoRA over 6 timed steps.
# Every JSON/.md/log goes to $OUT/work and is packed into $OUT/v4_<part>.tgz.
set -uo pipefail
PART=${1:?a, b or final}
OUT=${OUT:-results/bench/v4/out}
source "$(dirname "${BASH_SOURCE[0]}")/../common.sh"  # $WORK, env.txt, $BENCH, $DATA, $PY, run
WTG="$PY results/bench/v2/where_time_goes.py --no-unsloth $DATA --parts grpo"

if [ "$PART" = a ]; then
    timeout 120 $PY -m pytest -q -p no:cacheprovider -rs tests/test_generation.py -k "cuda" > "$WORK/cuda_tests.log" 2>&1
    echo "== cuda tests: exit $?"; tail -n 5 "$WORK/cuda_tests.log"
    timeout 120 $PY results/bench/v3/norm_error.py --no-unsloth $DATA > "$WORK/norm_error.log" 2>&1
    echo "== norm error: exit $?"; tail -n 8 "$WORK/norm_error.log"
    timeout 150 $WTG --grpo-variants full > "$WORK/grpo_parts_full.log" 2>&1
    echo "== grpo parts, full FT: exit $?"; grep -A6 "seconds per optimizer step" "$WORK/grpo_parts_full.log"
    timeout 300 $WTG --compile-layers > "$WORK/grpo_parts_compiled.log" 2>&1
    echo "== grpo parts, compiled: exit $?"; grep -A6 "seconds per optimizer step" "$WORK/grpo_parts_compiled.log"
elif [ "$PART" = b ]; then
    run grpo 360 --parts floor,grpo --grpo-steps 6
    timeout 150 $WTG --grpo-variants full --compile-layers > "$WORK/grpo_parts_full_compiled.log" 2>&1
    echo "== grpo parts, full FT compiled: exit $?"; grep -A6 "seconds per optimizer step" "$WORK/grpo_parts_full_compiled.log"
else
    run final 580 --parts floor,eval,grpo --eval-repeats 2 --grpo-steps 6
fi
tar czf "$OUT/v4_$PART.tgz" -C "$WORK" .

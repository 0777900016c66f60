#!/usr/bin/env bash
# bench v5: what holds the host in full-FT GRPO's training part (issue 7), on one GPU. From the repo root, with
# trl/datasets importable:   OUT=/some/dir bash results/bench/v5/commands.sh idle|...
#   idle (~300 s): where_time_goes.py on full FT: the per-part breakdown, the profile and the GPU-idle report of
#                  one step; then the same with --profile-stack (idle gaps charged to Python frames too); both
#                  traces (compact, gzipped) in $OUT/trace_*.json.gz.
#   compiled (~500 s): the CUDA-only tests (now also with StaticDecoder(compile=True)); floor and GRPO full /
#                  LoRA r=64, stock TRL vs --fast_generation with the decode step compiled (grpo.py's default
#                  now), 6 timed steps after 1 warm-up step (which compiles).
#   padded (~450 s, ran on 1952856: GRPOArguments.pad_to_multiple_of=64, since taken out): floor, the eval at
#                  batch 256, GRPO full and LoRA over 6 timed steps (GRPO stopped at NaN gradients, see NOTES v5c).
#   rightpad (~250 s; ran as part `final` on 35bab68, with masked_rows.py's first, small-model form): masked_rows.py;
#                  floor and GRPO full FT, stock vs fast (decode compiled, completions right-padded to 64 tokens by
#                  the fast trainer, since taken out), 6 timed steps (stopped at NaN gradients, see NOTES v5d).
#   masked (~60 s; not run: no device time left): masked_rows.py at the 1.5B shape, lengths 411 and 448 (which
#                  SDPA backend, length and padding give non-finite gradients).
# Every log goes to $OUT/work and is packed into $OUT/v5_<part>.tgz.
set -uo pipefail
PART=${1:?idle, compiled, padded, rightpad or masked}
OUT=${OUT:-results/bench/v5/out}
source "$(dirname "${BASH_SOURCE[0]}")/../common.sh"  # $WORK, env.txt, $BENCH, $DATA, $PY, run
WTG="$PY results/bench/v2/where_time_goes.py --no-unsloth $DATA --parts grpo"

if [ "$PART" = idle ]; then
    export WTG_TRACE_DIR=$OUT
    timeout 200 $WTG --grpo-variants full > "$WORK/idle_full.log" 2>&1
    echo "== idle, full FT: exit $?"; grep -A6 "seconds per optimizer step" "$WORK/idle_full.log"
    sed -n '/GPU idle/,$p' "$WORK/idle_full.log" | head -60
    timeout 240 $WTG --grpo-variants full --profile-stack > "$WORK/idle_full_stack.log" 2>&1
    echo "== idle, full FT, Python frames: exit $?"; sed -n '/GPU idle/,$p' "$WORK/idle_full_stack.log" | head -60
elif [ "$PART" = compiled ]; then
    timeout 150 $PY -m pytest -q -p no:cacheprovider -rs tests/test_generation.py -k "cuda or compiled" > "$WORK/cuda_tests.log" 2>&1
    echo "== cuda tests: exit $?"; tail -n 5 "$WORK/cuda_tests.log"
    run grpo_compiled 420 --parts floor,grpo --grpo-steps 6
elif [ "$PART" = padded ]; then
    run final 560 --parts floor,eval,grpo --grpo-steps 6
elif [ "$PART" = rightpad ]; then
    timeout 90 $PY results/bench/v5/masked_rows.py > "$WORK/masked_rows.log" 2>&1
    echo "== masked rows: exit $?"; grep "rows padded" "$WORK/masked_rows.log"
    run final 320 --parts floor,grpo --grpo-variants full --grpo-steps 6
elif [ "$PART" = masked ]; then
    timeout 120 $PY results/bench/v5/masked_rows.py > "$WORK/masked_rows.log" 2>&1
    echo "== masked rows: exit $?"; grep -e "padding" -e Error "$WORK/masked_rows.log"
fi
tar czf "$OUT/v5_$PART.tgz" -C "$WORK" .

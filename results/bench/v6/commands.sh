#!/usr/bin/env bash
# bench v6: the training step's decoder layers compiled (grpo.py --compile_layers, the default with
# --fast_generation on CUDA) and SDPA without cuDNN attention there (issue 7), on one GPU. From the repo root,
# with trl/datasets importable:   OUT=/some/dir bash results/bench/v6/commands.sh full|lora
#   full (~400 s): the CUDA-only tests and the compiled-layer loss test (Inductor, fp32); floor and GRPO full FT,
#                  stock TRL vs --fast_generation (decode and layers compiled), 6 timed steps after 1 warm-up step.
#   lora (~450 s): floor, the eval (1319 x 256), GRPO LoRA r=64 the same way.
#   parts (~300 s): where_time_goes.py on full FT (seconds per step in decode / loss forwards / backwards, a
#                  profile and the GPU-idle report of one step), compiled layers (with TORCH_LOGS=recompiles) and
#                  --eager-layers.
#   stack (~500 s): the same as full and lora's GRPO, once the whole decoder stack is one compiled graph (the
#                  per-layer graphs of parts `full` and `parts` cost more host time than their kernels): floor, GRPO
#                  full FT and LoRA r=64, stock vs fast, 6 timed steps; TORCH_LOGS=recompiles,graph_breaks.
# Every log goes to $OUT/work and is packed into $OUT/v6_<part>.tgz.
set -uo pipefail
PART=${1:?full or lora}
OUT=${OUT:-results/bench/v6/out}
source "$(dirname "${BASH_SOURCE[0]}")/../common.sh"  # $WORK, env.txt, $BENCH, $DATA, $PY, run

if [ "$PART" = full ]; then
    timeout 150 $PY -m pytest -q -p no:cacheprovider -rs tests/test_generation.py tests/test_bench.py \
        -k "cuda or compiled" > "$WORK/cuda_tests.log" 2>&1
    echo "== cuda tests: exit $?"; tail -n 5 "$WORK/cuda_tests.log"
    run grpo_full 420 --parts floor,grpo --grpo-variants full --grpo-steps 6
elif [ "$PART" = parts ]; then
    WTG="$PY results/bench/v2/where_time_goes.py --no-unsloth $DATA --parts grpo --grpo-variants full"
    TORCH_LOGS=recompiles timeout 300 $WTG --grpo-steps 4 > "$WORK/parts_compiled.log" 2>&1
    echo "== parts, compiled layers: exit $?"; grep -A7 "seconds per optimizer step" "$WORK/parts_compiled.log"
    grep -c "Recompiling" "$WORK/parts_compiled.log"
    timeout 200 $WTG --grpo-steps 3 --eager-layers > "$WORK/parts_eager.log" 2>&1
    echo "== parts, eager layers: exit $?"; grep -A6 "seconds per optimizer step" "$WORK/parts_eager.log"
elif [ "$PART" = stack ]; then
    TORCH_LOGS=recompiles,graph_breaks run grpo_stack 560 --parts floor,grpo --grpo-steps 6
    grep -c "Graph break" "$WORK/grpo_stack.log"; grep -c "Recompiling" "$WORK/grpo_stack.log"
elif [ "$PART" = lora ]; then
    run grpo_lora 540 --parts floor,eval,grpo --grpo-variants lora --grpo-steps 6
fi
tar czf "$OUT/v6_$PART.tgz" -C "$WORK" .

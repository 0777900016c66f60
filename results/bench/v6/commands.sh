#!/usr/bin/env bash
# bench v6: the training step's decoder stack compiled (grpo.py --compile_layers, bench.py --compile-layers) and
# SDPA without cuDNN attention there (issue 7), on one GPU. From the repo root, with trl/datasets importable:
#     OUT=/some/dir bash results/bench/v6/commands.sh stack|lora|parts
#   stack (~560 s; ran at 6aa12b4, where --compile_layers was the default and compiled the whole stack; results in
#                  stack/, whose LoRA half the timeout cut off): floor, GRPO full FT and LoRA r=64, stock TRL vs
#                  --fast_generation (decode and decoder stack compiled), 6 timed steps after 1 warm-up step;
#                  TORCH_LOGS=recompiles,graph_breaks.
#   lora (~350 s and more; ran at 6aa12b4 in stack_lora/ and timed out within the fast trainer's first step):
#                  GRPO LoRA alone, 3 timed steps.
#   parts (~300 s; ran with the first form of compile_layers, one compiled graph per decoder layer, which no
#                  commit holds (at HEAD this part compiles the stack); results in parts/):
#                  where_time_goes.py on full FT (seconds per step in decode / loss forwards / backwards, a profile
#                  and the GPU-idle report of one step), compiled and eager.
# layers/ holds the first run of that uncommitted per-layer form (CUDA-only tests, floor, GRPO full FT, 6 timed steps); its
# tests errored only at setup of the one that needs the embedded SmolLM2 (not on the GPU machine).
# Every log goes to $OUT/work and is packed into $OUT/v6_<part>.tgz.
set -uo pipefail
PART=${1:?stack, lora or parts}
OUT=${OUT:-results/bench/v6/out}
source "$(dirname "${BASH_SOURCE[0]}")/../common.sh"  # $WORK, env.txt, $BENCH, $DATA, $PY, run

if [ "$PART" = stack ]; then
    TORCH_LOGS=recompiles,graph_breaks run grpo_stack 560 --parts floor,grpo --grpo-steps 6 --compile-layers
    grep -c "Graph break" "$WORK/grpo_stack.log"; grep -c "Recompiling" "$WORK/grpo_stack.log"
elif [ "$PART" = lora ]; then
    run grpo_lora 350 --parts grpo --grpo-variants lora --grpo-steps 3 --compile-layers
elif [ "$PART" = parts ]; then
    WTG="$PY results/bench/v2/where_time_goes.py --no-unsloth $DATA --parts grpo --grpo-variants full"
    TORCH_LOGS=recompiles timeout 300 $WTG --grpo-steps 4 --compile-layers > "$WORK/parts_compiled.log" 2>&1
    echo "== parts, compiled: exit $?"; grep -A7 "seconds per optimizer step" "$WORK/parts_compiled.log"
    timeout 200 $WTG --grpo-steps 3 > "$WORK/parts_eager.log" 2>&1
    echo "== parts, eager: exit $?"; grep -A6 "seconds per optimizer step" "$WORK/parts_eager.log"
fi
tar czf "$OUT/v6_$PART.tgz" -C "$WORK" .

#!/usr/bin/env bash
# bench.py on one GPU (issue 7): the runs behind results/bench/ (bench v7 and v8; NOTES there has the figures and
# the history). From the repo root, with trl/datasets importable:
#     OUT=/some/dir bash runbooks/bench_h200.sh check|final|sweep|full|stock|lora|parts
#   check (~200 s): the CUDA-only tests and the fast trainer's loss/gradient tests on CUDA (the tiny test models
#                   get the Qwen tokenizer through TEST_TOKENIZER_DIR: the GPU machine lacks the embedded SmolLM2).
#   final (~500 s): bench.py at the committed defaults, every part (floor, eval with plain generate on all 1319
#                   prompts, GRPO full and LoRA fast vs stock over 3 timed steps, SFT): results/bench/bench_h200.*.
#   sweep (~400 s): runbooks/eval_sweep.py, our eval path at several batch widths and plain generate at 256 and 440
#                   rows, after one untimed pass (results/bench/v7/eval/).
#   full (~340 s):  GRPO full FT with --compile-layers, fast path, 3 timed steps (its first step compiles, ~300 s).
#   stock (~210 s): stock TRL GRPOTrainer, full FT and LoRA r=64, 3 timed steps each.
#   lora (~460 s):  GRPO LoRA r=64 with --compile-layers, fast path (first step ~400 s).
#   parts (~200 s): runbooks/where_time_goes.py, seconds per GRPO step in decode / loss forwards / backwards /
#                   optimizer and where the GPU waits for the host (full FT).
# check, full, stock and lora fit one session's 1800 s back to back on one warm machine (Inductor's cache stays in
# /tmp/inductor-bench while it is warm); run stock on the same machine as full/lora: stock TRL's step is host-bound
# and its time moves between machines, so only same-machine ratios are quoted. Logs go to $OUT/work and are packed
# into $OUT/bench_<part>.tgz.
set -uo pipefail
PART=${1:?check, final, sweep, full, stock, lora or parts}
case $PART in check|final|sweep|full|stock|lora|parts) ;;
    *) echo "unknown part: $PART (check, final, sweep, full, stock, lora or parts)"; exit 2;; esac
[ -f bench.py ] || { echo "run from the repo root"; exit 2; }
OUT=${OUT:-/tmp/bench-out}
WORK=$OUT/work
mkdir -p "$WORK"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
export TORCHINDUCTOR_CACHE_DIR=/tmp/inductor-bench
PY=${PYTHON:-python}
TOK=.qwen-tok; [ -d "$TOK" ] || TOK=../shared/models/qwen-tokenizer   # carried copies first, else ../shared
GSM=.gsm8k; [ -d "$GSM" ] || GSM=../shared/data/gsm8k
DATA="--tokenizer $TOK --gsm8k-dir $GSM"
export USE_UNSLOTH=0  # stock transformers + TRL: bench.py measures our code against them, not Unsloth's
BENCH="$PY bench.py $DATA"
nvidia-smi --query-gpu=name,uuid,memory.total,driver_version,clocks.max.sm --format=csv > "$WORK/env.txt" 2>&1
$PY -c "import torch, transformers, trl, peft; print(torch.__version__, transformers.__version__, trl.__version__,
peft.__version__)" >> "$WORK/env.txt" 2>&1

run() {  # name, timeout, bench.py arguments...: its JSON/.md/log in $WORK, the table or the log's tail printed
    local name=$1 limit=$2; shift 2
    timeout "$limit" $BENCH --out "$WORK/$name.json" "$@" > "$WORK/$name.log" 2>&1
    echo "== $name: exit $? (124 = timeout ${limit} s)"
    cat "$WORK/$name.md" 2>/dev/null || tail -n 20 "$WORK/$name.log"
}

if [ "$PART" = check ]; then
    TEST_TOKENIZER_DIR=$TOK timeout 240 $PY -m pytest -q -p no:cacheprovider -rs --tb=short tests/test_generation.py \
        tests/test_fast_grpo.py -k "cuda or compiled or loss_and_gradients or mixed_precision" -s \
        > "$WORK/cuda_tests.log" 2>&1
    echo "== cuda tests: exit $?"; grep "relative error" "$WORK/cuda_tests.log"; tail -n 3 "$WORK/cuda_tests.log"
elif [ "$PART" = final ]; then
    run bench_h200 580
elif [ "$PART" = sweep ]; then
    timeout 400 $PY runbooks/eval_sweep.py $DATA --ours 256u,256,264,330,440,660 --plain 256,440 \
        --out "$WORK/eval_sweep.json" > "$WORK/eval_sweep.log" 2>&1  # the JSON is rewritten after each pass
    echo "== eval sweep: exit $?"; grep -E "^(ours|plain) " "$WORK/eval_sweep.log"
elif [ "$PART" = full ]; then
    run grpo_full_compile 420 --parts floor,grpo --grpo-variants full --grpo-paths fast --grpo-steps 3 --compile-layers
elif [ "$PART" = stock ]; then
    run grpo_stock 420 --parts floor,grpo --grpo-variants full,lora --grpo-paths stock --grpo-steps 3
elif [ "$PART" = lora ]; then
    run grpo_lora_compile 570 --parts grpo --grpo-variants lora --grpo-paths fast --grpo-steps 3 --compile-layers
elif [ "$PART" = parts ]; then
    timeout 300 $PY runbooks/where_time_goes.py $DATA --parts grpo --grpo-variants full \
        > "$WORK/where_time_goes.log" 2>&1
    echo "== where_time_goes: exit $?"; head -n 30 "$WORK/where_time_goes.log"
fi
tar czf "$OUT/bench_$PART.tgz" -C "$WORK" .

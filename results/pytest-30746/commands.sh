# pytest-30746: the commands study.py runs for /tmp/pytest-of-root/pytest-83/test_study_runs_end_to_end_and0/tiny.yaml
# data
python data.py --preset easy --train 24 --val 2 --test 2 --test-ood 0 --seed 0 --out outputs/pytest-30746/data.json
# seed3 eval base gsm8k
python gsm8k_eval.py --model /tmp/pytest-of-root/pytest-83/tiny-model0 --name base --out results/pytest-30746/seed3 --batch-size 4 --limit 2 --max-new-tokens 8 --resume --gsm8k-dir /work/main/../shared/data/gsm8k
# seed3 eval base linear_equation
python linear_equation_eval.py --model /tmp/pytest-of-root/pytest-83/tiny-model0 --name base --out results/pytest-30746/seed3 --batch-size 4 --limit 2 --max-new-tokens 8 --split test --resume --data outputs/pytest-30746/data.json
# seed3 train s0
python sft.py --model_name_or_path /tmp/pytest-of-root/pytest-83/tiny-model0 --use_peft false --data outputs/pytest-30746/data.json --output_dir outputs/pytest-30746/seed3/s0 --seed 3 --train_slice 0:8 --max_steps 1 --per_device_train_batch_size 4 --eval_strategy no --save_strategy no --logging_steps 1
# seed3 eval s0 gsm8k
python gsm8k_eval.py --model outputs/pytest-30746/seed3/s0 --name s0 --out results/pytest-30746/seed3 --batch-size 4 --limit 2 --max-new-tokens 8 --resume --gsm8k-dir /work/main/../shared/data/gsm8k
# seed3 eval s0 linear_equation
python linear_equation_eval.py --model outputs/pytest-30746/seed3/s0 --name s0 --out results/pytest-30746/seed3 --batch-size 4 --limit 2 --max-new-tokens 8 --split test --resume --data outputs/pytest-30746/data.json
# seed3 train grpo
python grpo.py --model_name_or_path outputs/pytest-30746/seed3/s0 --use_peft false --data outputs/pytest-30746/data.json --output_dir outputs/pytest-30746/seed3/grpo --seed 3 --train_slice 8: --fast_generation true --max_steps 1 --num_generations 2 --per_device_train_batch_size 2 --gradient_accumulation_steps 1 --max_completion_length 4 --beta 0 --save_strategy no --val_steps 0
# seed3 eval grpo gsm8k
python gsm8k_eval.py --model outputs/pytest-30746/seed3/grpo --name grpo --out results/pytest-30746/seed3 --batch-size 4 --limit 2 --max-new-tokens 8 --resume --gsm8k-dir /work/main/../shared/data/gsm8k
# seed3 eval grpo linear_equation
python linear_equation_eval.py --model outputs/pytest-30746/seed3/grpo --name grpo --out results/pytest-30746/seed3 --batch-size 4 --limit 2 --max-new-tokens 8 --split test --resume --data outputs/pytest-30746/data.json
# seed3 sample rft
python sample.py --teacher outputs/pytest-30746/seed3/s0 --data outputs/pytest-30746/data.json --out outputs/pytest-30746/seed3/rft_data.json --seed 3 --train_slice 8:10 --k 2 --max_new_tokens 4 --verify none
# seed3 train rft
python sft.py --model_name_or_path outputs/pytest-30746/seed3/s0 --use_peft false --data outputs/pytest-30746/seed3/rft_data.json --output_dir outputs/pytest-30746/seed3/rft --seed 3 --max_steps 1 --per_device_train_batch_size 2 --eval_strategy no --save_strategy no --logging_steps 1
# seed3 eval rft gsm8k
python gsm8k_eval.py --model outputs/pytest-30746/seed3/rft --name rft --out results/pytest-30746/seed3 --batch-size 4 --limit 2 --max-new-tokens 8 --resume --gsm8k-dir /work/main/../shared/data/gsm8k
# seed3 eval rft linear_equation
python linear_equation_eval.py --model outputs/pytest-30746/seed3/rft --name rft --out results/pytest-30746/seed3 --batch-size 4 --limit 2 --max-new-tokens 8 --split test --resume --data outputs/pytest-30746/data.json
# seed3 train sft_more
python sft.py --model_name_or_path outputs/pytest-30746/seed3/s0 --use_peft false --data outputs/pytest-30746/data.json --output_dir outputs/pytest-30746/seed3/sft_more --seed 3 --train_slice 8: --max_steps 1 --per_device_train_batch_size 4 --eval_strategy no --save_strategy no --logging_steps 1
# seed3 eval sft_more gsm8k
python gsm8k_eval.py --model outputs/pytest-30746/seed3/sft_more --name sft_more --out results/pytest-30746/seed3 --batch-size 4 --limit 2 --max-new-tokens 8 --resume --gsm8k-dir /work/main/../shared/data/gsm8k
# seed3 eval sft_more linear_equation
python linear_equation_eval.py --model outputs/pytest-30746/seed3/sft_more --name sft_more --out results/pytest-30746/seed3 --batch-size 4 --limit 2 --max-new-tokens 8 --split test --resume --data outputs/pytest-30746/data.json

# quick: the commands study.py runs for configs/study_quick.yaml
# data
python data.py --preset easy --train 48 --val 8 --test 10 --test-near 6 --test-far 6 --test-ood 0 --seed 0 --out outputs/quick/data.json
# seed1 eval base linear_equation
python linear_equation_eval.py --model smollm2-135m --name base --out results/quick/seed1 --batch-size 10 --max-new-tokens 48 --split test --resume --data outputs/quick/data.json
# seed1 eval base linear_equation_test_near
python linear_equation_eval.py --model smollm2-135m --name base --out results/quick/seed1 --batch-size 10 --max-new-tokens 48 --split test_near --resume --data outputs/quick/data.json
# seed1 eval base gsm8k
python gsm8k_eval.py --model smollm2-135m --name base --out results/quick/seed1 --batch-size 10 --max-new-tokens 32 --limit 5 --resume --gsm8k-dir ../shared/data/gsm8k
# seed1 train s0
python sft.py --model_name_or_path smollm2-135m --data outputs/quick/data.json --output_dir outputs/quick/seed1/s0 --seed 1 --train_slice 0:8 --num_train_epochs 1 --per_device_train_batch_size 8 --learning_rate 1e-3 --eval_strategy no --save_strategy no
# seed1 eval s0 linear_equation
python linear_equation_eval.py --model smollm2-135m --adapter outputs/quick/seed1/s0 --name s0 --out results/quick/seed1 --batch-size 10 --max-new-tokens 48 --split test --resume --data outputs/quick/data.json
# seed1 eval s0 linear_equation_test_near
python linear_equation_eval.py --model smollm2-135m --adapter outputs/quick/seed1/s0 --name s0 --out results/quick/seed1 --batch-size 10 --max-new-tokens 48 --split test_near --resume --data outputs/quick/data.json
# seed1 eval s0 gsm8k
python gsm8k_eval.py --model smollm2-135m --adapter outputs/quick/seed1/s0 --name s0 --out results/quick/seed1 --batch-size 10 --max-new-tokens 32 --limit 5 --resume --gsm8k-dir ../shared/data/gsm8k
# seed1 train sft_more
python sft.py --model_name_or_path smollm2-135m --init_adapter outputs/quick/seed1/s0 --data outputs/quick/data.json --output_dir outputs/quick/seed1/sft_more --seed 1 --train_slice 8: --max_train_flops 2e12 --num_train_epochs 3 --per_device_train_batch_size 8 --learning_rate 5e-4 --eval_strategy no --save_strategy no
# seed1 eval sft_more linear_equation
python linear_equation_eval.py --model smollm2-135m --adapter outputs/quick/seed1/sft_more --name sft_more --out results/quick/seed1 --batch-size 10 --max-new-tokens 48 --split test --resume --data outputs/quick/data.json
# seed1 eval sft_more linear_equation_test_near
python linear_equation_eval.py --model smollm2-135m --adapter outputs/quick/seed1/sft_more --name sft_more --out results/quick/seed1 --batch-size 10 --max-new-tokens 48 --split test_near --resume --data outputs/quick/data.json
# seed1 eval sft_more gsm8k
python gsm8k_eval.py --model smollm2-135m --adapter outputs/quick/seed1/sft_more --name sft_more --out results/quick/seed1 --batch-size 10 --max-new-tokens 32 --limit 5 --resume --gsm8k-dir ../shared/data/gsm8k
# seed1 train grpo
python grpo.py --model_name_or_path smollm2-135m --init_adapter outputs/quick/seed1/s0 --data outputs/quick/data.json --output_dir outputs/quick/seed1/grpo --seed 1 --train_slice 8: --max_train_flops 2e12 --rewards correctness --reward_weights 1 --wrong_credit 0 --num_generations 4 --per_device_train_batch_size 8 --gradient_accumulation_steps 1 --max_completion_length 32 --learning_rate 1e-4 --save_strategy no --val_steps 0
# seed1 eval grpo linear_equation
python linear_equation_eval.py --model smollm2-135m --adapter outputs/quick/seed1/grpo --name grpo --out results/quick/seed1 --batch-size 10 --max-new-tokens 48 --split test --resume --data outputs/quick/data.json
# seed1 eval grpo linear_equation_test_near
python linear_equation_eval.py --model smollm2-135m --adapter outputs/quick/seed1/grpo --name grpo --out results/quick/seed1 --batch-size 10 --max-new-tokens 48 --split test_near --resume --data outputs/quick/data.json
# seed1 eval grpo gsm8k
python gsm8k_eval.py --model smollm2-135m --adapter outputs/quick/seed1/grpo --name grpo --out results/quick/seed1 --batch-size 10 --max-new-tokens 32 --limit 5 --resume --gsm8k-dir ../shared/data/gsm8k
# seed1 sample rft
python sample.py --teacher smollm2-135m --adapter outputs/quick/seed1/s0 --data outputs/quick/data.json --out outputs/quick/seed1/rft_data.json --seed 1 --train_slice 8:12 --k 2 --max_new_tokens 48 --verify none
# seed1 train rft
python sft.py --model_name_or_path smollm2-135m --init_adapter outputs/quick/seed1/s0 --data outputs/quick/seed1/rft_data.json --output_dir outputs/quick/seed1/rft --seed 1 --max_train_flops 2e12 --num_train_epochs 3 --per_device_train_batch_size 4 --learning_rate 5e-4 --eval_strategy no --save_strategy no
# seed1 eval rft linear_equation
python linear_equation_eval.py --model smollm2-135m --adapter outputs/quick/seed1/rft --name rft --out results/quick/seed1 --batch-size 10 --max-new-tokens 48 --split test --resume --data outputs/quick/data.json
# seed1 eval rft linear_equation_test_near
python linear_equation_eval.py --model smollm2-135m --adapter outputs/quick/seed1/rft --name rft --out results/quick/seed1 --batch-size 10 --max-new-tokens 48 --split test_near --resume --data outputs/quick/data.json
# seed1 eval rft gsm8k
python gsm8k_eval.py --model smollm2-135m --adapter outputs/quick/seed1/rft --name rft --out results/quick/seed1 --batch-size 10 --max-new-tokens 32 --limit 5 --resume --gsm8k-dir ../shared/data/gsm8k

# small: the commands study.py runs for configs/study_small.yaml
# data
python data.py --preset easy --train 23000 --val 200 --test 1000 --test-near 500 --test-far 500 --test-ood 0 --seed 0 --out outputs/small/data.json
# seed1 eval base linear_equation
python linear_equation_eval.py --model smollm2-135m --name base --out outputs/small/results/seed1 --dtype fp32 --max-new-tokens 384 --split test --resume --data outputs/small/data.json
# seed1 eval base linear_equation_test_near
python linear_equation_eval.py --model smollm2-135m --name base --out outputs/small/results/seed1 --dtype fp32 --max-new-tokens 384 --split test_near --resume --data outputs/small/data.json
# seed1 eval base linear_equation_test_far
python linear_equation_eval.py --model smollm2-135m --name base --out outputs/small/results/seed1 --dtype fp32 --max-new-tokens 768 --split test_far --resume --data outputs/small/data.json
# seed1 eval base gsm8k
python gsm8k_eval.py --model smollm2-135m --name base --out outputs/small/results/seed1 --dtype fp32 --max-new-tokens 512 --resume
# seed1 train s0
python sft.py --model_name_or_path smollm2-135m --use_peft false --data outputs/small/data.json --output_dir outputs/small/seed1/s0 --seed 1 --train_slice 0:3000 --num_train_epochs 2 --learning_rate 2e-4 --per_device_train_batch_size 64 --warmup_steps 0.05 --lr_scheduler_type linear --max_length 640 --eval_strategy no --save_strategy no --bf16 false --tf32 true --val_steps 25 --val_limit 100 --val_max_new_tokens 384 --logging_steps 1
# seed1 eval s0 linear_equation
python linear_equation_eval.py --model outputs/small/seed1/s0 --name s0 --out outputs/small/results/seed1 --dtype fp32 --max-new-tokens 384 --split test --resume --data outputs/small/data.json
# seed1 eval s0 linear_equation_test_near
python linear_equation_eval.py --model outputs/small/seed1/s0 --name s0 --out outputs/small/results/seed1 --dtype fp32 --max-new-tokens 384 --split test_near --resume --data outputs/small/data.json
# seed1 eval s0 linear_equation_test_far
python linear_equation_eval.py --model outputs/small/seed1/s0 --name s0 --out outputs/small/results/seed1 --dtype fp32 --max-new-tokens 768 --split test_far --resume --data outputs/small/data.json
# seed1 eval s0 gsm8k
python gsm8k_eval.py --model outputs/small/seed1/s0 --name s0 --out outputs/small/results/seed1 --dtype fp32 --max-new-tokens 512 --resume
# seed1 passk s0
python linear_equation_eval.py --model outputs/small/seed1/s0 --name s0_passk --out outputs/small/results/seed1 --data outputs/small/data.json --dtype fp32 --limit 200 --num-samples 16 --temperature 1.0 --max-new-tokens 384 --resume
# seed1 train sft_more
python sft.py --model_name_or_path outputs/small/seed1/s0 --use_peft false --data outputs/small/data.json --output_dir outputs/small/seed1/sft_more --seed 1 --train_slice 3000: --max_train_flops 1.5e15 --num_train_epochs 10 --learning_rate 1e-4 --lr_scheduler_type constant_with_warmup --warmup_steps 5 --per_device_train_batch_size 64 --max_length 640 --eval_strategy no --save_strategy no --bf16 false --tf32 true --val_steps 25 --val_limit 100 --val_max_new_tokens 384 --logging_steps 1
# seed1 eval sft_more linear_equation
python linear_equation_eval.py --model outputs/small/seed1/sft_more --name sft_more --out outputs/small/results/seed1 --dtype fp32 --max-new-tokens 384 --split test --resume --data outputs/small/data.json
# seed1 eval sft_more linear_equation_test_near
python linear_equation_eval.py --model outputs/small/seed1/sft_more --name sft_more --out outputs/small/results/seed1 --dtype fp32 --max-new-tokens 384 --split test_near --resume --data outputs/small/data.json
# seed1 eval sft_more linear_equation_test_far
python linear_equation_eval.py --model outputs/small/seed1/sft_more --name sft_more --out outputs/small/results/seed1 --dtype fp32 --max-new-tokens 768 --split test_far --resume --data outputs/small/data.json
# seed1 eval sft_more gsm8k
python gsm8k_eval.py --model outputs/small/seed1/sft_more --name sft_more --out outputs/small/results/seed1 --dtype fp32 --max-new-tokens 512 --resume
# seed1 passk sft_more
python linear_equation_eval.py --model outputs/small/seed1/sft_more --name sft_more_passk --out outputs/small/results/seed1 --data outputs/small/data.json --dtype fp32 --limit 200 --num-samples 16 --temperature 1.0 --max-new-tokens 384 --resume
# seed1 train grpo
python grpo.py --model_name_or_path outputs/small/seed1/s0 --use_peft false --data outputs/small/data.json --output_dir outputs/small/seed1/grpo --seed 1 --train_slice 3000: --max_train_flops 1.5e15 --rewards correctness --reward_weights 1 --wrong_credit 0 --num_generations 8 --per_device_train_batch_size 64 --gradient_accumulation_steps 2 --max_completion_length 384 --temperature 1.0 --beta 0 --loss_type dapo --mask_truncated_completions true --learning_rate 2e-6 --lr_scheduler_type constant_with_warmup --warmup_steps 5 --num_train_epochs 1 --fast_generation true --compile_decode false --bf16 false --tf32 true --save_strategy no --val_steps 10 --val_limit 100 --logging_steps 1
# seed1 eval grpo linear_equation
python linear_equation_eval.py --model outputs/small/seed1/grpo --name grpo --out outputs/small/results/seed1 --dtype fp32 --max-new-tokens 384 --split test --resume --data outputs/small/data.json
# seed1 eval grpo linear_equation_test_near
python linear_equation_eval.py --model outputs/small/seed1/grpo --name grpo --out outputs/small/results/seed1 --dtype fp32 --max-new-tokens 384 --split test_near --resume --data outputs/small/data.json
# seed1 eval grpo linear_equation_test_far
python linear_equation_eval.py --model outputs/small/seed1/grpo --name grpo --out outputs/small/results/seed1 --dtype fp32 --max-new-tokens 768 --split test_far --resume --data outputs/small/data.json
# seed1 eval grpo gsm8k
python gsm8k_eval.py --model outputs/small/seed1/grpo --name grpo --out outputs/small/results/seed1 --dtype fp32 --max-new-tokens 512 --resume
# seed1 passk grpo
python linear_equation_eval.py --model outputs/small/seed1/grpo --name grpo_passk --out outputs/small/results/seed1 --data outputs/small/data.json --dtype fp32 --limit 200 --num-samples 16 --temperature 1.0 --max-new-tokens 384 --resume
# seed1 sample rft
python sample.py --teacher outputs/small/seed1/s0 --data outputs/small/data.json --out outputs/small/seed1/rft_data.json --seed 1 --train_slice 3000:4000 --k 4 --temperature 1.0 --max_new_tokens 384 --dtype fp32
# seed1 train rft
python sft.py --model_name_or_path outputs/small/seed1/s0 --use_peft false --data outputs/small/seed1/rft_data.json --output_dir outputs/small/seed1/rft --seed 1 --max_train_flops 1.5e15 --num_train_epochs 20 --learning_rate 1e-4 --lr_scheduler_type constant_with_warmup --warmup_steps 5 --per_device_train_batch_size 64 --max_length 640 --eval_strategy no --save_strategy no --bf16 false --tf32 true --val_steps 25 --val_limit 100 --val_max_new_tokens 384 --logging_steps 1
# seed1 eval rft linear_equation
python linear_equation_eval.py --model outputs/small/seed1/rft --name rft --out outputs/small/results/seed1 --dtype fp32 --max-new-tokens 384 --split test --resume --data outputs/small/data.json
# seed1 eval rft linear_equation_test_near
python linear_equation_eval.py --model outputs/small/seed1/rft --name rft --out outputs/small/results/seed1 --dtype fp32 --max-new-tokens 384 --split test_near --resume --data outputs/small/data.json
# seed1 eval rft linear_equation_test_far
python linear_equation_eval.py --model outputs/small/seed1/rft --name rft --out outputs/small/results/seed1 --dtype fp32 --max-new-tokens 768 --split test_far --resume --data outputs/small/data.json
# seed1 eval rft gsm8k
python gsm8k_eval.py --model outputs/small/seed1/rft --name rft --out outputs/small/results/seed1 --dtype fp32 --max-new-tokens 512 --resume
# seed1 train grpo_base
python grpo.py --model_name_or_path smollm2-135m --use_peft false --data outputs/small/data.json --output_dir outputs/small/seed1/grpo_base --seed 1 --train_slice 3000: --max_train_flops 1.5e15 --rewards correctness --reward_weights 1 --wrong_credit 0 --num_generations 8 --per_device_train_batch_size 64 --gradient_accumulation_steps 2 --max_completion_length 384 --temperature 1.0 --beta 0 --loss_type dapo --mask_truncated_completions true --learning_rate 2e-6 --lr_scheduler_type constant_with_warmup --warmup_steps 5 --num_train_epochs 1 --fast_generation true --compile_decode false --bf16 false --tf32 true --save_strategy no --val_steps 10 --val_limit 100 --logging_steps 1
# seed1 eval grpo_base linear_equation
python linear_equation_eval.py --model outputs/small/seed1/grpo_base --name grpo_base --out outputs/small/results/seed1 --dtype fp32 --max-new-tokens 384 --split test --resume --data outputs/small/data.json
# seed1 eval grpo_base linear_equation_test_near
python linear_equation_eval.py --model outputs/small/seed1/grpo_base --name grpo_base --out outputs/small/results/seed1 --dtype fp32 --max-new-tokens 384 --split test_near --resume --data outputs/small/data.json
# seed1 eval grpo_base linear_equation_test_far
python linear_equation_eval.py --model outputs/small/seed1/grpo_base --name grpo_base --out outputs/small/results/seed1 --dtype fp32 --max-new-tokens 768 --split test_far --resume --data outputs/small/data.json
# seed1 eval grpo_base gsm8k
python gsm8k_eval.py --model outputs/small/seed1/grpo_base --name grpo_base --out outputs/small/results/seed1 --dtype fp32 --max-new-tokens 512 --resume
# seed1 train sft_n1000
python sft.py --model_name_or_path smollm2-135m --use_peft false --data outputs/small/data.json --output_dir outputs/small/seed1/sft_n1000 --seed 1 --train_slice 0:3000 --num_train_epochs 2 --learning_rate 2e-4 --per_device_train_batch_size 64 --warmup_steps 0.05 --lr_scheduler_type linear --max_length 640 --eval_strategy no --save_strategy no --bf16 false --tf32 true --val_steps 25 --val_limit 100 --val_max_new_tokens 384 --logging_steps 1 --train_slice 0:1000
# seed1 eval sft_n1000 linear_equation
python linear_equation_eval.py --model outputs/small/seed1/sft_n1000 --name sft_n1000 --out outputs/small/results/seed1 --dtype fp32 --max-new-tokens 384 --split test --resume --data outputs/small/data.json
# seed1 train sft_n10000
python sft.py --model_name_or_path smollm2-135m --use_peft false --data outputs/small/data.json --output_dir outputs/small/seed1/sft_n10000 --seed 1 --train_slice 0:3000 --num_train_epochs 2 --learning_rate 2e-4 --per_device_train_batch_size 64 --warmup_steps 0.05 --lr_scheduler_type linear --max_length 640 --eval_strategy no --save_strategy no --bf16 false --tf32 true --val_steps 25 --val_limit 100 --val_max_new_tokens 384 --logging_steps 1 --train_slice 0:10000
# seed1 eval sft_n10000 linear_equation
python linear_equation_eval.py --model outputs/small/seed1/sft_n10000 --name sft_n10000 --out outputs/small/results/seed1 --dtype fp32 --max-new-tokens 384 --split test --resume --data outputs/small/data.json
# seed1 train sft_n20000
python sft.py --model_name_or_path smollm2-135m --use_peft false --data outputs/small/data.json --output_dir outputs/small/seed1/sft_n20000 --seed 1 --train_slice 0:3000 --num_train_epochs 2 --learning_rate 2e-4 --per_device_train_batch_size 64 --warmup_steps 0.05 --lr_scheduler_type linear --max_length 640 --eval_strategy no --save_strategy no --bf16 false --tf32 true --val_steps 25 --val_limit 100 --val_max_new_tokens 384 --logging_steps 1 --train_slice 0:20000
# seed1 eval sft_n20000 linear_equation
python linear_equation_eval.py --model outputs/small/seed1/sft_n20000 --name sft_n20000 --out outputs/small/results/seed1 --dtype fp32 --max-new-tokens 384 --split test --resume --data outputs/small/data.json
# seed2 train s0
python sft.py --model_name_or_path smollm2-135m --use_peft false --data outputs/small/data.json --output_dir outputs/small/seed2/s0 --seed 2 --train_slice 0:3000 --num_train_epochs 2 --learning_rate 2e-4 --per_device_train_batch_size 64 --warmup_steps 0.05 --lr_scheduler_type linear --max_length 640 --eval_strategy no --save_strategy no --bf16 false --tf32 true --val_steps 25 --val_limit 100 --val_max_new_tokens 384 --logging_steps 1
# seed2 eval s0 linear_equation
python linear_equation_eval.py --model outputs/small/seed2/s0 --name s0 --out outputs/small/results/seed2 --dtype fp32 --max-new-tokens 384 --split test --resume --data outputs/small/data.json
# seed2 eval s0 linear_equation_test_near
python linear_equation_eval.py --model outputs/small/seed2/s0 --name s0 --out outputs/small/results/seed2 --dtype fp32 --max-new-tokens 384 --split test_near --resume --data outputs/small/data.json
# seed2 eval s0 linear_equation_test_far
python linear_equation_eval.py --model outputs/small/seed2/s0 --name s0 --out outputs/small/results/seed2 --dtype fp32 --max-new-tokens 768 --split test_far --resume --data outputs/small/data.json
# seed2 eval s0 gsm8k
python gsm8k_eval.py --model outputs/small/seed2/s0 --name s0 --out outputs/small/results/seed2 --dtype fp32 --max-new-tokens 512 --resume
# seed2 passk s0
python linear_equation_eval.py --model outputs/small/seed2/s0 --name s0_passk --out outputs/small/results/seed2 --data outputs/small/data.json --dtype fp32 --limit 200 --num-samples 16 --temperature 1.0 --max-new-tokens 384 --resume
# seed2 train sft_more
python sft.py --model_name_or_path outputs/small/seed2/s0 --use_peft false --data outputs/small/data.json --output_dir outputs/small/seed2/sft_more --seed 2 --train_slice 3000: --max_train_flops 1.5e15 --num_train_epochs 10 --learning_rate 1e-4 --lr_scheduler_type constant_with_warmup --warmup_steps 5 --per_device_train_batch_size 64 --max_length 640 --eval_strategy no --save_strategy no --bf16 false --tf32 true --val_steps 25 --val_limit 100 --val_max_new_tokens 384 --logging_steps 1
# seed2 eval sft_more linear_equation
python linear_equation_eval.py --model outputs/small/seed2/sft_more --name sft_more --out outputs/small/results/seed2 --dtype fp32 --max-new-tokens 384 --split test --resume --data outputs/small/data.json
# seed2 eval sft_more linear_equation_test_near
python linear_equation_eval.py --model outputs/small/seed2/sft_more --name sft_more --out outputs/small/results/seed2 --dtype fp32 --max-new-tokens 384 --split test_near --resume --data outputs/small/data.json
# seed2 eval sft_more linear_equation_test_far
python linear_equation_eval.py --model outputs/small/seed2/sft_more --name sft_more --out outputs/small/results/seed2 --dtype fp32 --max-new-tokens 768 --split test_far --resume --data outputs/small/data.json
# seed2 eval sft_more gsm8k
python gsm8k_eval.py --model outputs/small/seed2/sft_more --name sft_more --out outputs/small/results/seed2 --dtype fp32 --max-new-tokens 512 --resume
# seed2 passk sft_more
python linear_equation_eval.py --model outputs/small/seed2/sft_more --name sft_more_passk --out outputs/small/results/seed2 --data outputs/small/data.json --dtype fp32 --limit 200 --num-samples 16 --temperature 1.0 --max-new-tokens 384 --resume
# seed2 train grpo
python grpo.py --model_name_or_path outputs/small/seed2/s0 --use_peft false --data outputs/small/data.json --output_dir outputs/small/seed2/grpo --seed 2 --train_slice 3000: --max_train_flops 1.5e15 --rewards correctness --reward_weights 1 --wrong_credit 0 --num_generations 8 --per_device_train_batch_size 64 --gradient_accumulation_steps 2 --max_completion_length 384 --temperature 1.0 --beta 0 --loss_type dapo --mask_truncated_completions true --learning_rate 2e-6 --lr_scheduler_type constant_with_warmup --warmup_steps 5 --num_train_epochs 1 --fast_generation true --compile_decode false --bf16 false --tf32 true --save_strategy no --val_steps 10 --val_limit 100 --logging_steps 1
# seed2 eval grpo linear_equation
python linear_equation_eval.py --model outputs/small/seed2/grpo --name grpo --out outputs/small/results/seed2 --dtype fp32 --max-new-tokens 384 --split test --resume --data outputs/small/data.json
# seed2 eval grpo linear_equation_test_near
python linear_equation_eval.py --model outputs/small/seed2/grpo --name grpo --out outputs/small/results/seed2 --dtype fp32 --max-new-tokens 384 --split test_near --resume --data outputs/small/data.json
# seed2 eval grpo linear_equation_test_far
python linear_equation_eval.py --model outputs/small/seed2/grpo --name grpo --out outputs/small/results/seed2 --dtype fp32 --max-new-tokens 768 --split test_far --resume --data outputs/small/data.json
# seed2 eval grpo gsm8k
python gsm8k_eval.py --model outputs/small/seed2/grpo --name grpo --out outputs/small/results/seed2 --dtype fp32 --max-new-tokens 512 --resume
# seed2 passk grpo
python linear_equation_eval.py --model outputs/small/seed2/grpo --name grpo_passk --out outputs/small/results/seed2 --data outputs/small/data.json --dtype fp32 --limit 200 --num-samples 16 --temperature 1.0 --max-new-tokens 384 --resume
# seed2 sample rft
python sample.py --teacher outputs/small/seed2/s0 --data outputs/small/data.json --out outputs/small/seed2/rft_data.json --seed 2 --train_slice 3000:4000 --k 4 --temperature 1.0 --max_new_tokens 384 --dtype fp32
# seed2 train rft
python sft.py --model_name_or_path outputs/small/seed2/s0 --use_peft false --data outputs/small/seed2/rft_data.json --output_dir outputs/small/seed2/rft --seed 2 --max_train_flops 1.5e15 --num_train_epochs 20 --learning_rate 1e-4 --lr_scheduler_type constant_with_warmup --warmup_steps 5 --per_device_train_batch_size 64 --max_length 640 --eval_strategy no --save_strategy no --bf16 false --tf32 true --val_steps 25 --val_limit 100 --val_max_new_tokens 384 --logging_steps 1
# seed2 eval rft linear_equation
python linear_equation_eval.py --model outputs/small/seed2/rft --name rft --out outputs/small/results/seed2 --dtype fp32 --max-new-tokens 384 --split test --resume --data outputs/small/data.json
# seed2 eval rft linear_equation_test_near
python linear_equation_eval.py --model outputs/small/seed2/rft --name rft --out outputs/small/results/seed2 --dtype fp32 --max-new-tokens 384 --split test_near --resume --data outputs/small/data.json
# seed2 eval rft linear_equation_test_far
python linear_equation_eval.py --model outputs/small/seed2/rft --name rft --out outputs/small/results/seed2 --dtype fp32 --max-new-tokens 768 --split test_far --resume --data outputs/small/data.json
# seed2 eval rft gsm8k
python gsm8k_eval.py --model outputs/small/seed2/rft --name rft --out outputs/small/results/seed2 --dtype fp32 --max-new-tokens 512 --resume
# seed3 train s0
python sft.py --model_name_or_path smollm2-135m --use_peft false --data outputs/small/data.json --output_dir outputs/small/seed3/s0 --seed 3 --train_slice 0:3000 --num_train_epochs 2 --learning_rate 2e-4 --per_device_train_batch_size 64 --warmup_steps 0.05 --lr_scheduler_type linear --max_length 640 --eval_strategy no --save_strategy no --bf16 false --tf32 true --val_steps 25 --val_limit 100 --val_max_new_tokens 384 --logging_steps 1
# seed3 eval s0 linear_equation
python linear_equation_eval.py --model outputs/small/seed3/s0 --name s0 --out outputs/small/results/seed3 --dtype fp32 --max-new-tokens 384 --split test --resume --data outputs/small/data.json
# seed3 eval s0 linear_equation_test_near
python linear_equation_eval.py --model outputs/small/seed3/s0 --name s0 --out outputs/small/results/seed3 --dtype fp32 --max-new-tokens 384 --split test_near --resume --data outputs/small/data.json
# seed3 eval s0 linear_equation_test_far
python linear_equation_eval.py --model outputs/small/seed3/s0 --name s0 --out outputs/small/results/seed3 --dtype fp32 --max-new-tokens 768 --split test_far --resume --data outputs/small/data.json
# seed3 eval s0 gsm8k
python gsm8k_eval.py --model outputs/small/seed3/s0 --name s0 --out outputs/small/results/seed3 --dtype fp32 --max-new-tokens 512 --resume
# seed3 passk s0
python linear_equation_eval.py --model outputs/small/seed3/s0 --name s0_passk --out outputs/small/results/seed3 --data outputs/small/data.json --dtype fp32 --limit 200 --num-samples 16 --temperature 1.0 --max-new-tokens 384 --resume
# seed3 train sft_more
python sft.py --model_name_or_path outputs/small/seed3/s0 --use_peft false --data outputs/small/data.json --output_dir outputs/small/seed3/sft_more --seed 3 --train_slice 3000: --max_train_flops 1.5e15 --num_train_epochs 10 --learning_rate 1e-4 --lr_scheduler_type constant_with_warmup --warmup_steps 5 --per_device_train_batch_size 64 --max_length 640 --eval_strategy no --save_strategy no --bf16 false --tf32 true --val_steps 25 --val_limit 100 --val_max_new_tokens 384 --logging_steps 1
# seed3 eval sft_more linear_equation
python linear_equation_eval.py --model outputs/small/seed3/sft_more --name sft_more --out outputs/small/results/seed3 --dtype fp32 --max-new-tokens 384 --split test --resume --data outputs/small/data.json
# seed3 eval sft_more linear_equation_test_near
python linear_equation_eval.py --model outputs/small/seed3/sft_more --name sft_more --out outputs/small/results/seed3 --dtype fp32 --max-new-tokens 384 --split test_near --resume --data outputs/small/data.json
# seed3 eval sft_more linear_equation_test_far
python linear_equation_eval.py --model outputs/small/seed3/sft_more --name sft_more --out outputs/small/results/seed3 --dtype fp32 --max-new-tokens 768 --split test_far --resume --data outputs/small/data.json
# seed3 eval sft_more gsm8k
python gsm8k_eval.py --model outputs/small/seed3/sft_more --name sft_more --out outputs/small/results/seed3 --dtype fp32 --max-new-tokens 512 --resume
# seed3 passk sft_more
python linear_equation_eval.py --model outputs/small/seed3/sft_more --name sft_more_passk --out outputs/small/results/seed3 --data outputs/small/data.json --dtype fp32 --limit 200 --num-samples 16 --temperature 1.0 --max-new-tokens 384 --resume
# seed3 train grpo
python grpo.py --model_name_or_path outputs/small/seed3/s0 --use_peft false --data outputs/small/data.json --output_dir outputs/small/seed3/grpo --seed 3 --train_slice 3000: --max_train_flops 1.5e15 --rewards correctness --reward_weights 1 --wrong_credit 0 --num_generations 8 --per_device_train_batch_size 64 --gradient_accumulation_steps 2 --max_completion_length 384 --temperature 1.0 --beta 0 --loss_type dapo --mask_truncated_completions true --learning_rate 2e-6 --lr_scheduler_type constant_with_warmup --warmup_steps 5 --num_train_epochs 1 --fast_generation true --compile_decode false --bf16 false --tf32 true --save_strategy no --val_steps 10 --val_limit 100 --logging_steps 1
# seed3 eval grpo linear_equation
python linear_equation_eval.py --model outputs/small/seed3/grpo --name grpo --out outputs/small/results/seed3 --dtype fp32 --max-new-tokens 384 --split test --resume --data outputs/small/data.json
# seed3 eval grpo linear_equation_test_near
python linear_equation_eval.py --model outputs/small/seed3/grpo --name grpo --out outputs/small/results/seed3 --dtype fp32 --max-new-tokens 384 --split test_near --resume --data outputs/small/data.json
# seed3 eval grpo linear_equation_test_far
python linear_equation_eval.py --model outputs/small/seed3/grpo --name grpo --out outputs/small/results/seed3 --dtype fp32 --max-new-tokens 768 --split test_far --resume --data outputs/small/data.json
# seed3 eval grpo gsm8k
python gsm8k_eval.py --model outputs/small/seed3/grpo --name grpo --out outputs/small/results/seed3 --dtype fp32 --max-new-tokens 512 --resume
# seed3 passk grpo
python linear_equation_eval.py --model outputs/small/seed3/grpo --name grpo_passk --out outputs/small/results/seed3 --data outputs/small/data.json --dtype fp32 --limit 200 --num-samples 16 --temperature 1.0 --max-new-tokens 384 --resume
# seed3 sample rft
python sample.py --teacher outputs/small/seed3/s0 --data outputs/small/data.json --out outputs/small/seed3/rft_data.json --seed 3 --train_slice 3000:4000 --k 4 --temperature 1.0 --max_new_tokens 384 --dtype fp32
# seed3 train rft
python sft.py --model_name_or_path outputs/small/seed3/s0 --use_peft false --data outputs/small/seed3/rft_data.json --output_dir outputs/small/seed3/rft --seed 3 --max_train_flops 1.5e15 --num_train_epochs 20 --learning_rate 1e-4 --lr_scheduler_type constant_with_warmup --warmup_steps 5 --per_device_train_batch_size 64 --max_length 640 --eval_strategy no --save_strategy no --bf16 false --tf32 true --val_steps 25 --val_limit 100 --val_max_new_tokens 384 --logging_steps 1
# seed3 eval rft linear_equation
python linear_equation_eval.py --model outputs/small/seed3/rft --name rft --out outputs/small/results/seed3 --dtype fp32 --max-new-tokens 384 --split test --resume --data outputs/small/data.json
# seed3 eval rft linear_equation_test_near
python linear_equation_eval.py --model outputs/small/seed3/rft --name rft --out outputs/small/results/seed3 --dtype fp32 --max-new-tokens 384 --split test_near --resume --data outputs/small/data.json
# seed3 eval rft linear_equation_test_far
python linear_equation_eval.py --model outputs/small/seed3/rft --name rft --out outputs/small/results/seed3 --dtype fp32 --max-new-tokens 768 --split test_far --resume --data outputs/small/data.json
# seed3 eval rft gsm8k
python gsm8k_eval.py --model outputs/small/seed3/rft --name rft --out outputs/small/results/seed3 --dtype fp32 --max-new-tokens 512 --resume

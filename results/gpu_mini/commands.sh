# gpu_mini: the commands study.py runs for configs/study_gpu_mini.yaml
# data
python data.py --coef-range -5 5 --solution-range -9 9 --train 1000 --val 32 --test 200 --test-ood 200 --seed 0 --out results/gpu_mini/data.json
# eval baseline linear_equation
python linear_equation_eval.py --model smollm2-135m --name baseline --out results/gpu_mini --max-new-tokens 384 --batch-size 256 --split test --resume --data results/gpu_mini/data.json
# eval baseline linear_equation_test_ood
python linear_equation_eval.py --model smollm2-135m --name baseline --out results/gpu_mini --max-new-tokens 384 --batch-size 256 --split test_ood --resume --data results/gpu_mini/data.json
# eval baseline gsm8k
python gsm8k_eval.py --model smollm2-135m --name baseline --out results/gpu_mini --max-new-tokens 384 --batch-size 256 --resume
# train sft
python sft.py --model_name_or_path smollm2-135m --data results/gpu_mini/data.json --output_dir outputs/gpu_mini/sft --num_train_epochs 1 --per_device_train_batch_size 16 --learning_rate 2e-4 --eval_steps 0.25 --save_steps 0.5 --resume
# eval sft linear_equation
python linear_equation_eval.py --model smollm2-135m --name sft --out results/gpu_mini --max-new-tokens 384 --batch-size 256 --split test --resume --data results/gpu_mini/data.json --adapter outputs/gpu_mini/sft
# eval sft linear_equation_test_ood
python linear_equation_eval.py --model smollm2-135m --name sft --out results/gpu_mini --max-new-tokens 384 --batch-size 256 --split test_ood --resume --data results/gpu_mini/data.json --adapter outputs/gpu_mini/sft
# eval sft gsm8k
python gsm8k_eval.py --model smollm2-135m --name sft --out results/gpu_mini --max-new-tokens 384 --batch-size 256 --resume --adapter outputs/gpu_mini/sft
# train grpo
python grpo.py --model_name_or_path smollm2-135m --data results/gpu_mini/data.json --output_dir outputs/gpu_mini/grpo --max_steps 16 --num_generations 6 --per_device_train_batch_size 48 --gradient_accumulation_steps 1 --max_completion_length 256 --learning_rate 1e-4 --val_steps 8 --val_limit 32 --save_steps 8
# eval grpo linear_equation
python linear_equation_eval.py --model smollm2-135m --name grpo --out results/gpu_mini --max-new-tokens 384 --batch-size 256 --split test --resume --data results/gpu_mini/data.json --adapter outputs/gpu_mini/grpo
# eval grpo linear_equation_test_ood
python linear_equation_eval.py --model smollm2-135m --name grpo --out results/gpu_mini --max-new-tokens 384 --batch-size 256 --split test_ood --resume --data results/gpu_mini/data.json --adapter outputs/gpu_mini/grpo
# eval grpo gsm8k
python gsm8k_eval.py --model smollm2-135m --name grpo --out results/gpu_mini --max-new-tokens 384 --batch-size 256 --resume --adapter outputs/gpu_mini/grpo
# report
python report.py results/gpu_mini

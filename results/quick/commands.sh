# quick: the commands study.py runs for configs/study_quick.yaml
# data
python data.py --coef-range -5 5 --solution-range -9 9 --train 64 --val 8 --test 20 --test-ood 20 --seed 0 --out results/quick/data.json
# eval baseline linear_equation
python linear_equation_eval.py --model smollm2-135m --name baseline --out results/quick --max-new-tokens 128 --batch-size 20 --split test --resume --data results/quick/data.json
# eval baseline linear_equation_test_ood
python linear_equation_eval.py --model smollm2-135m --name baseline --out results/quick --max-new-tokens 128 --batch-size 20 --split test_ood --resume --data results/quick/data.json
# eval baseline gsm8k
python gsm8k_eval.py --model smollm2-135m --name baseline --out results/quick --max-new-tokens 128 --batch-size 20 --limit 20 --resume --gsm8k-dir ../shared/data/gsm8k
# train sft
python sft.py --model_name_or_path smollm2-135m --data results/quick/data.json --output_dir outputs/quick/sft --num_train_epochs 1 --per_device_train_batch_size 8 --eval_steps 0.5 --save_steps 0.5
# eval sft linear_equation
python linear_equation_eval.py --model smollm2-135m --name sft --out results/quick --max-new-tokens 128 --batch-size 20 --split test --resume --data results/quick/data.json --adapter outputs/quick/sft
# eval sft linear_equation_test_ood
python linear_equation_eval.py --model smollm2-135m --name sft --out results/quick --max-new-tokens 128 --batch-size 20 --split test_ood --resume --data results/quick/data.json --adapter outputs/quick/sft
# eval sft gsm8k
python gsm8k_eval.py --model smollm2-135m --name sft --out results/quick --max-new-tokens 128 --batch-size 20 --limit 20 --resume --gsm8k-dir ../shared/data/gsm8k --adapter outputs/quick/sft
# train grpo
python grpo.py --model_name_or_path smollm2-135m --data results/quick/data.json --output_dir outputs/quick/grpo --max_steps 2 --num_generations 4 --per_device_train_batch_size 8 --gradient_accumulation_steps 1 --max_completion_length 96 --learning_rate 1e-4 --val_steps 2 --val_limit 4 --save_steps 2
# eval grpo linear_equation
python linear_equation_eval.py --model smollm2-135m --name grpo --out results/quick --max-new-tokens 128 --batch-size 20 --split test --resume --data results/quick/data.json --adapter outputs/quick/grpo
# eval grpo linear_equation_test_ood
python linear_equation_eval.py --model smollm2-135m --name grpo --out results/quick --max-new-tokens 128 --batch-size 20 --split test_ood --resume --data results/quick/data.json --adapter outputs/quick/grpo
# eval grpo gsm8k
python gsm8k_eval.py --model smollm2-135m --name grpo --out results/quick --max-new-tokens 128 --batch-size 20 --limit 20 --resume --gsm8k-dir ../shared/data/gsm8k --adapter outputs/quick/grpo
# report
python report.py results/quick

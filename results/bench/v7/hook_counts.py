"""bench v7, CPU: make-inputs-require-grads hooks on the embedding after each GRPO step, stock TRL vs the fast
trainer, full fine-tune and LoRA, gradient checkpointing on (bench.py's tiny random Qwen2, 5 steps).

    .venv/bin/python results/bench/v7/hook_counts.py | grep "embedding hooks" > results/bench/v7/hook_counts.txt
"""

import os
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", ".."))
sys.argv.append("--no-unsloth")  # read by training.py at import (bench imports it)
import bench  # noqa: E402
import grpo  # noqa: E402
from modeling import load_tokenizer  # noqa: E402
from transformers import TrainerCallback  # noqa: E402

init = grpo.GRPOArguments.__init__
# bench's GRPO config leaves gradient checkpointing at grpo.py's default, which is off on CPU
grpo.GRPOArguments.__init__ = lambda self, *a, **k: init(self, *a, **{**k, "gradient_checkpointing": True})
args = bench.parse_args(["--device", "cpu", "--model", "tiny", "--grpo-prompts", "2", "--grpo-generations", "2",
                         "--grpo-tokens", "4", "--grpo-steps", "4", "--lora-r", "4", "--no-unsloth",
                         "--tokenizer", os.path.join(os.path.dirname(__file__), "..", "..", "..", "..", "shared",
                                                     "models", "qwen-tokenizer")])
tokenizer = load_tokenizer(args.tokenizer)
for lora in (False, True):
    for fast in (False, True):
        with tempfile.TemporaryDirectory() as tmp:
            trainer, _ = bench.grpo_trainer(args, tokenizer, lora, fast, tmp)
            embedding = trainer.accelerator.unwrap_model(trainer.model).get_input_embeddings()
            counts = []

            class CountHooks(TrainerCallback):
                def on_step_end(self, *a, **k):
                    counts.append(len(embedding._forward_hooks))

            trainer.add_callback(CountHooks())
            trainer.train()
        print(f"{'LoRA' if lora else 'full FT'}, {type(trainer).__name__}: embedding hooks after each step {counts}",
              flush=True)

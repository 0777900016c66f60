"""A Qwen2.5-1.5B-shaped model with random bf16 weights and the Qwen tokenizer, saved to $MODEL (CPU=1: tiny).

Shared by the runbooks runbooks/multigpu_2gpu.sh and runbooks/unsloth_h200.sh (env: MODEL, QWEN_TOK, CPU).
"""
import os
import time

import torch
from transformers import AutoTokenizer, Qwen2Config, Qwen2ForCausalLM

t0 = time.time()
cpu = os.environ.get("CPU") == "1"
tok = AutoTokenizer.from_pretrained(os.environ["QWEN_TOK"])
# Qwen2.5's plain ChatML (the tokenizer folder carries Qwen3's template, with think handling)
tok.chat_template = (r"{%- for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + "
                     r"'<|im_end|>' + '\n'}}{%- endfor %}{%- if add_generation_prompt %}{{'<|im_start|>assistant\n'}}"
                     r"{%- endif %}")
shape = (dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2)
         if cpu else dict(hidden_size=1536, intermediate_size=8960, num_hidden_layers=28, num_attention_heads=12,
                          num_key_value_heads=2))
config = Qwen2Config(vocab_size=151936, max_position_embeddings=32768, rope_theta=1e6, rms_norm_eps=1e-6,
                     tie_word_embeddings=True, bos_token_id=151643, eos_token_id=151645, pad_token_id=151643,
                     torch_dtype="bfloat16", **shape)
torch.manual_seed(0)
with torch.device("cpu" if cpu else "cuda"):
    model = Qwen2ForCausalLM(config).to(torch.float32 if cpu else torch.bfloat16)
model.generation_config.eos_token_id = [151645, 151643]
model.generation_config.pad_token_id = 151643
model.save_pretrained(os.environ["MODEL"])
tok.save_pretrained(os.environ["MODEL"])
n = sum(p.numel() for p in model.parameters())
print(f"built {n / 1e9:.3f}B parameters ({config.num_hidden_layers} layers) in {time.time() - t0:.0f} s "
      f"-> {os.environ['MODEL']}")

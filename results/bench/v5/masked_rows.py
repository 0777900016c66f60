"""Does a left-padded batch give NaN gradients, per SDPA backend? (v5c: grpo.py with pad_to_multiple_of=64 hit
grad_norm nan at its first step on an H200.) A small random Qwen2 in bf16 on CUDA, forward + backward of the
mean logit over the real tokens, with the first `pad` columns masked in some or all rows.

    python results/bench/v5/masked_rows.py
"""

import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from transformers import Qwen2Config, Qwen2ForCausalLM

torch.manual_seed(0)
config = Qwen2Config(vocab_size=1024, hidden_size=256, intermediate_size=512, num_hidden_layers=2,
                     num_attention_heads=4, num_key_value_heads=2, attn_implementation="sdpa")
DEVICE = "cuda" if torch.cuda.is_available() else "cpu"  # CPU: a dry run (most backends not run)
model = Qwen2ForCausalLM(config).to(DEVICE, torch.bfloat16)
ids = torch.randint(0, 1024, (8, 384), device=DEVICE)
for rows in ("none", "half", "all"):
    mask = torch.ones_like(ids)
    padded = {"none": 0, "half": 4, "all": 8}[rows]
    mask[:padded, :64] = 0
    for backend in (SDPBackend.CUDNN_ATTENTION, SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION,
                    SDPBackend.MATH, None):
        model.zero_grad()
        try:
            with sdpa_kernel(backend) if backend else torch.enable_grad():
                logits = model(input_ids=ids, attention_mask=mask).logits
                loss = (logits.float() * mask[..., None]).mean()
                loss.backward()
            bad = [n for n, p in model.named_parameters() if p.grad is not None and not p.grad.isfinite().all()]
            print(f"rows padded: {rows:4s} | {str(backend or 'default'):32s} | logits finite on real tokens: "
                  f"{bool(logits[mask.bool()].isfinite().all())} | non-finite grads: {len(bad)} {bad[:2]}")
        except RuntimeError as e:
            print(f"rows padded: {rows:4s} | {str(backend):32s} | not run: {str(e).splitlines()[0][:80]}")

"""Where do v5's NaN gradients come from? grpo.py's fast trainer with its training sequences padded to 64 tokens
(left by TRL's pad_to_multiple_of, or right by our trainer) logged grad_norm nan at its first step on an H200,
with every advantage 0 (loss 0). Without padding the same config never did. Here: a Qwen2.5-1.5B-shaped model
(random bf16 weights, as bench.py), gradient checkpointing, bf16 autocast, 8 rows x 411 tokens (the bench's
unpadded length) and x 448 (its length padded to 64, as in both NaN runs); a loss that is
0 x the logits (so any non-finite gradient comes from non-finite activations) and one that is not; masks with no
padding, right padding (last 37 positions) and left padding (first 37 in half the rows); per SDPA backend.

    python results/bench/v5/masked_rows.py [--layers N]
"""

import sys

import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from transformers import Qwen2Config, Qwen2ForCausalLM

CUDA = torch.cuda.is_available()  # CPU: a dry run at toy size (most backends not run)
DEVICE = "cuda" if CUDA else "cpu"
LAYERS = int(sys.argv[sys.argv.index("--layers") + 1]) if "--layers" in sys.argv else (28 if CUDA else 2)
ROWS, PAD = 8, 37

torch.manual_seed(0)
shape = dict(hidden_size=1536, intermediate_size=8960, num_attention_heads=12, num_key_value_heads=2,
             vocab_size=151936) if CUDA else dict(hidden_size=256, intermediate_size=512, num_attention_heads=4,
                                                   num_key_value_heads=2, vocab_size=1024)
config = Qwen2Config(num_hidden_layers=LAYERS, rope_theta=1e6, tie_word_embeddings=True, **shape)
config._attn_implementation = "sdpa"
with torch.device(DEVICE):
    model = Qwen2ForCausalLM(config).to(torch.bfloat16)
model.gradient_checkpointing_enable()
model.train()
cases = {}
for length in (411, 448):
    ids = torch.randint(0, config.vocab_size, (ROWS, length), device=DEVICE)
    none = torch.ones_like(ids)
    right, left = none.clone(), none.clone()
    right[:, -PAD:] = 0
    left[: ROWS // 2, :PAD] = 0
    cases.update({f"{length} none": (ids, none), f"{length} right": (ids, right), f"{length} left": (ids, left)})
backends = [SDPBackend.CUDNN_ATTENTION, SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION, SDPBackend.MATH]
for name, (ids, mask) in cases.items():
    for backend in backends + [None]:
        for scale in (0.0, 1.0):
            model.zero_grad()
            try:
                with sdpa_kernel(backend) if backend else torch.enable_grad(), torch.autocast(DEVICE, torch.bfloat16):
                    logits = model(input_ids=ids, attention_mask=mask).logits
                    keep = mask.bool()
                    loss = scale * logits[keep].float().log_softmax(-1)[:, 0].mean()
                    loss.backward()  # within: the recompute must take the same backend
                bad = [n for n, p in model.named_parameters() if p.grad is not None and not p.grad.isfinite().all()]
                print(f"length, padding {name:9s} | {str(backend or 'default'):28s} | loss x {scale} | logits "
                      f"finite: real {bool(logits[keep].isfinite().all())}, "
                      f"padded {bool(logits[~keep].isfinite().all())} | "
                      f"non-finite grads: {len(bad)} {bad[:1]}")
            except RuntimeError as e:
                print(f"length, padding {name:9s} | {str(backend or 'default'):28s} | not run: "
                      f"{str(e).splitlines()[0][:60]}")

"""How much the fused RMSNorm moves a training step's loss and gradients (issue 7: "GRPO loss/gradients of the
fast path match stock TRL's"), on bench.py's model: Qwen2.5-1.5B shape, random weights, its dtype (bf16).

    PYTHONPATH=. python results/bench/v3/norm_error.py --no-unsloth --tokenizer .qwen-tok

One causal-LM loss forward + backward on 8 x 384 random tokens, in training mode with gradient checkpointing
(as the GRPO runs): the model's own RMSNorm twice (the run-to-run floor of the GPU's kernels), then
generation.fused_rms_norms, then the own norm in float32 as the yardstick. Prints relative errors of the loss
and of the parameter gradients (worst, median, 90th percentile over parameters).
"""

import contextlib
import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", ".."))
import bench  # noqa: E402
import generation  # noqa: E402
from modeling import load_tokenizer  # noqa: E402


def step(model, ids, fused):
    model.zero_grad(set_to_none=True)
    with generation.fused_rms_norms(model) if fused else contextlib.nullcontext():
        loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
    return loss.detach().float(), [p.grad.float() for p in model.parameters()]


def grad_errors(a, b):
    """{parameter index: relative error of a's gradient against b's}, over the parameters b has a gradient for."""
    return {k: ((x - y).norm() / y.norm()).item() for k, (x, y) in enumerate(zip(a[1], b[1])) if y.norm() > 0}


def errors(a, b):
    loss = ((a[0] - b[0]).abs() / b[0].abs()).item()
    return loss, max(grad_errors(a, b).values())


def spread(a, b):
    rel = sorted(grad_errors(a, b).values())
    return rel[len(rel) // 2], rel[int(len(rel) * 0.9)]


def main():
    args = bench.parse_args(sys.argv[1:])
    model = bench.build_model(args, load_tokenizer(args.tokenizer)).train()
    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    generator = torch.Generator(args.device).manual_seed(0)
    ids = torch.randint(0, model.config.vocab_size, (8, 384), device=args.device, generator=generator)
    fused_layers = len(generation._fused_norm_forwards(model))
    print(f"{args.model} {args.dtype} on {args.device}, fused RMSNorm layers: {fused_layers}")
    own = step(model, ids, fused=False)
    again = step(model, ids, fused=False)
    fused = step(model, ids, fused=True)
    print("own norm vs own norm again: loss %.1e, worst parameter gradient %.1e" % errors(again, own))
    print("fused norm vs own norm:     loss %.1e, worst parameter gradient %.1e" % errors(fused, own))
    names = [n for n, _ in model.named_parameters()]
    print("parameter gradients' relative errors, fused vs own: median %.1e, 90th percentile %.1e" % spread(fused, own))
    # The yardstick: how far each bf16 step is from the same step in float32 (own norm)
    truth = step(model.float(), ids, fused=False)
    for name, result in (("own", own), ("fused", fused)):
        print(f"{name} norm ({args.dtype}) vs float32: loss %.1e, worst parameter gradient %.1e;"
              % errors(result, truth), "median %.1e, 90th percentile %.1e" % spread(result, truth))
    worst = sorted((error, names[k]) for k, error in grad_errors(fused, own).items())
    for error, name in worst[-6:]:
        print(f"  {error:.1e} {name}")


if __name__ == "__main__":
    main()

"""bench v6, CPU only: the compiled decoder stack (fast_grpo.compiled_forward, in training.py when this ran) with
Inductor on a tiny Qwen2, gradient checkpointing on: its gradients against the eager model's, and its first
forward+backward (the compile) by layer count, as one stack graph and with each layer a nested compile region,
dynamic and static.

    .venv/bin/python results/bench/v6/cpu_compile.py > results/bench/v6/cpu_compile.txt
    rm -rf /tmp/torchinductor_$USER; for i in 1 2; do .venv/bin/python results/bench/v6/cpu_compile.py --cache; done
    # --cache: only the dynamic stack graph (grpo.py's), Inductor's caches kept (cold, then warm)
"""

import functools
import os
import sys
import time

CACHE = "--cache" in sys.argv  # keep Inductor's on-disk caches: run twice to see a second process's compile
if not CACHE:
    os.environ["TORCHINDUCTOR_FORCE_DISABLE_CACHES"] = "1"  # compile times, not cache hits from an earlier run
import torch  # noqa: E402
from torch._dynamo.utils import counters  # noqa: E402
from transformers import Qwen2Config, Qwen2ForCausalLM  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", ".."))
import generation  # noqa: E402
import fast_grpo  # noqa: E402


def run(layers, dynamic, nested):
    torch._dynamo.reset()
    counters.clear()
    fast_grpo._compiled.cache_clear()
    torch.manual_seed(0)
    config = Qwen2Config(vocab_size=256, hidden_size=64, intermediate_size=128, num_hidden_layers=layers,
                         num_attention_heads=4, num_key_value_heads=2)
    model = Qwen2ForCausalLM(config).train()
    model.gradient_checkpointing_enable()
    ids = torch.randint(0, 256, (2, 24))
    mask = torch.ones_like(ids)
    mask[0, :3] = 0  # a left-padded row, as TRL's batches have
    (model(input_ids=ids, attention_mask=mask, use_cache=False).logits ** 2).sum().backward()
    eager_grads = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    fallback = fast_grpo.CompileFallback()
    [stack] = fast_grpo.decoder_stacks(model)
    compiled = fast_grpo._compiled  # grpo.py's is dynamic; static: one graph per shape
    if not dynamic:
        fast_grpo._compiled = lambda cls, backend: torch.compile(cls.forward, dynamic=False, backend=backend)
    try:
        forwards = {stack: fast_grpo.compiled_forward(stack, "inductor", fallback)}
    finally:
        fast_grpo._compiled = compiled
    if nested:
        region = torch.compiler.nested_compile_region(type(stack.layers[0]).forward)
        forwards.update({layer: functools.partial(region, layer) for layer in stack.layers})
    start = time.perf_counter()
    with generation.replaced_forwards(forwards):
        (model(input_ids=ids, attention_mask=mask, use_cache=False).logits ** 2).sum().backward()
    seconds = time.perf_counter() - start
    error = max(((p.grad - g).norm() / g.norm()).item() for p, g in zip(model.parameters(), eager_grads))
    form = "nested regions" if nested else "one stack graph"
    print(f"{layers} layers, {'dynamic' if dynamic else 'static'}, {form}: "
          f"first forward+backward {seconds:.1f} s, graphs {counters['stats']['unique_graphs']}, "
          f"fell back {fallback.failed}, worst parameter gradient vs eager {error:.1e}", flush=True)


if __name__ == "__main__":
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, Inductor caches {'kept' if CACHE else 'off'}")
    for dynamic in (True,) if CACHE else (True, False):
        for layers in (2, 8):
            for nested in (False,) if CACHE else (False, True):
                run(layers, dynamic, nested)

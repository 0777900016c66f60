"""bench v7: the eval's batch width on one GPU (issue 7). One model, our path at several --batch widths over
the same 1319 GSM8K prompts x 256 greedy tokens (each pass timed from the call, graph recording included),
after one untimed warm-up pass; then plain `model.generate` at the given widths. Peak memory per pass.

    python results/bench/v7/eval_sweep.py --tokenizer .qwen-tok --gsm8k-dir .gsm8k \
        --ours 256,220,264,330,440,660 --plain 256,440 --out $OUT/eval_sweep.json
"""

import argparse
import json
import os
import sys
import time

import torch

sys.path.insert(0, os.getcwd())
import bench  # noqa: E402
import generation  # noqa: E402
from modeling import load_tokenizer  # noqa: E402

p = argparse.ArgumentParser()
p.add_argument("--ours", default="256,220,264,330,440,660", help="batch widths of our path")
p.add_argument("--plain", default="256", help="batch widths of plain generate")
p.add_argument("--out", required=True)
cli, rest = p.parse_known_args()  # the rest are bench.py's (--tokenizer, --gsm8k-dir, --model, --device ...)
args = bench.parse_args(rest + ["--no-unsloth"])
cuda = args.device.type == "cuda"
tokenizer = load_tokenizer(args.tokenizer)
prompts, source = bench.eval_prompts(args)
model = bench.build_model(args, tokenizer).eval()
results = {"device": args.device_name, "source": source, "prompts": len(prompts), "new_tokens": args.eval_tokens,
           "versions": bench.library_versions(), "ours": {}, "plain": {}}


def timed(fn):
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    bench.sync(args.device)
    start = time.perf_counter()
    out = fn()
    bench.sync(args.device)
    return out, round(time.perf_counter() - start, 2), bench.peak_gib(args.device)


def ours(width):
    return generation.generate_all(model, tokenizer, prompts, max_new_tokens=args.eval_tokens, batch_size=width,
                                   progress=False, return_ids=True)


_, warm_s, _ = timed(lambda: ours(256))
results["warmup_pass_s"] = warm_s
reference = None
for width in map(int, cli.ours.split(",")):
    out, seconds, peak = timed(lambda: ours(width))
    ids = [o[0]["token_ids"] for o in out]
    reference = reference or ids
    same = sum(a == b for a, b in zip(ids, reference))
    results["ours"][width] = {"s": seconds, "peak_gib": peak, "batches": -(-len(prompts) // width),
                              "same_tokens_as_first_width": same}
    print(f"ours  width {width}: {seconds} s, peak {peak} GiB, {same}/{len(prompts)} as the first width", flush=True)
    json.dump(results, open(cli.out, "w"), indent=1)
for width in map(int, cli.plain.split(",")):
    _, seconds, peak = timed(lambda: bench.plain_generate(model, tokenizer, prompts, width, args.eval_tokens))
    results["plain"][width] = {"s": seconds, "peak_gib": peak}
    print(f"plain width {width}: {seconds} s, peak {peak} GiB", flush=True)
    json.dump(results, open(cli.out, "w"), indent=1)

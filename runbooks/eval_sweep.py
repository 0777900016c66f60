"""bench v7: the eval's batch width on one GPU (issue 7). One model, our path at several batch sizes over
the same 1319 GSM8K prompts x 256 greedy tokens (each pass timed from the call, graph recording included),
after one untimed warm-up pass; then plain `model.generate` at the given batch sizes. Peak memory per pass.
1319 prompts in even batches of at most 256 / 264 / 330 / 440 / 660 rows: 6 / 5 / 4 / 3 / 2 batches of
220 / 264 / 330 / 440 / 660 rows; "256u": 5 of 256 and a 39-row one topped up to 256 (before v7).

    python runbooks/eval_sweep.py --tokenizer .qwen-tok --gsm8k-dir .gsm8k \
        --ours 256u,256,264,330,440,660 --plain 256,440 --out $OUT/eval_sweep.json
"""

import argparse
import os
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
os.environ["USE_UNSLOTH"] = "0"  # stock transformers + PEFT (read by modeling.import_unsloth when bench imports sft)
import bench  # noqa: E402
import generation  # noqa: E402
from modeling import load_tokenizer  # noqa: E402
from records import atomic_write_json  # noqa: E402

p = argparse.ArgumentParser()
p.add_argument("--ours", default="256u,256,264,330,440,660",
               help="most rows per batch of our path (even batches); Nu: N per batch as before v7, the last topped up")
p.add_argument("--plain", default="256", help="batch widths of plain generate")
p.add_argument("--out", required=True)
cli, rest = p.parse_known_args()  # the rest are bench.py's (--tokenizer, --gsm8k-dir, --model, --device ...)
args = bench.parse_args(rest)
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


def ours(batch_size, uneven=False):
    even_width = generation.even_width
    if uneven:  # batches of batch_size rows in order, the last topped up to that width (before v7)
        generation.even_width = lambda rows, size: size
    try:
        return generation.generate_all(model, tokenizer, prompts, max_new_tokens=args.eval_tokens,
                                       batch_size=batch_size, progress=False, return_ids=True)
    finally:
        generation.even_width = even_width


_, warm_s, _ = timed(lambda: ours(256))
results["warmup_pass_s"] = warm_s
reference = None
for name in cli.ours.split(","):
    uneven = name.endswith("u")
    batch_size = int(name.rstrip("u"))
    out, seconds, peak = timed(lambda: ours(batch_size, uneven))
    ids = [o[0]["token_ids"] for o in out]
    reference = reference or ids
    same = sum(a == b for a, b in zip(ids, reference))
    width = batch_size if uneven else generation.even_width(len(prompts), batch_size)
    batches = -(-len(prompts) // width)
    results["ours"][name] = {"s": seconds, "peak_gib": peak, "batches": batches, "batch_width": width,
                             "same_tokens_as_first": same}
    print(f"ours  {name}: {batches} batches of {width} rows: {seconds} s, peak {peak} GiB, "
          f"{same}/{len(prompts)} token-identical to the first", flush=True)
    atomic_write_json(cli.out, results)
for width in map(int, cli.plain.split(",")):
    _, seconds, peak = timed(lambda: bench.plain_generate(model, tokenizer, prompts, width, args.eval_tokens))
    results["plain"][width] = {"s": seconds, "peak_gib": peak}
    print(f"plain {width} rows a batch: {seconds} s, peak {peak} GiB", flush=True)
    atomic_write_json(cli.out, results)

"""Where the time goes in a fast-path GRPO step and in a decode step (issue 7 diagnosis), on one GPU.

    python runbooks/where_time_goes.py --tokenizer .qwen-tok --gsm8k-dir .gsm8k > where_time_goes.log   # from the repo root
    (or: OUT=/some/dir bash runbooks/bench_h200.sh parts)

Prints, for the bench's GRPO config (8 prompts x 8 generations x 256 tokens, Qwen2.5-1.5B shape, full and
LoRA, --fast_generation): seconds per optimizer step in our decode, the rest of TRL's generate-and-score,
the loss forwards, the backwards and the optimizer (CUDA-synchronised wrappers, so the parts add up); then a
torch.profiler table of one step of each (v4: full FT too) and where in it the GPU waits for the host
(idle gaps between kernels, charged to the marked part and each host thread's innermost op); then the cost
of one decode step at batch 64/128/256 (v3: with and without the fused RMSNorm) and a profiler table of
decode steps. Takes bench.py's arguments (--model, --grpo-variants, ...); --parts eval runs only the decode
part, --parts grpo only the GRPO part. --profile-stack (v5) records Python frames in the profiled step, so an idle
gap is charged to the innermost Python function or op (slower step; the attribution, not its size, is the point).
"""

import bisect
import collections
import gzip
import json
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import modeling  # noqa: E402

modeling.import_unsloth(sys.argv[1:])  # bench.py's --no-unsloth (or USE_UNSLOTH=0), before transformers loads

import torch  # noqa: E402
from transformers import TrainerCallback  # noqa: E402

import bench  # noqa: E402
import generation  # noqa: E402
from modeling import load_tokenizer  # noqa: E402


CUDA = torch.cuda.is_available()  # on CPU: a toy-size dry run of the script
DEVICE = torch.device("cuda" if CUDA else "cpu")
ROWS = (64, 128, 256) if CUDA else (4,)
STEPS = 256 if CUDA else 8
ACTIVITIES = [torch.profiler.ProfilerActivity.CPU] + ([torch.profiler.ProfilerActivity.CUDA] if CUDA else [])
SORT = "self_cuda_time_total" if CUDA else "self_cpu_time_total"
PROFILE_STACK = "--profile-stack" in sys.argv  # not one of bench.py's arguments: taken out before they are parsed
if PROFILE_STACK:
    sys.argv.remove("--profile-stack")


def timed(acc, name, fn, parts):
    """fn, its time added to acc[name] (synchronised, except in the profiled step: its syncs would idle the GPU)."""
    def wrapper(*a, **k):
        sync = not parts.profiling
        if sync:
            bench.sync(DEVICE)
        start = time.perf_counter()
        try:
            with torch.profiler.record_function(name):
                return fn(*a, **k)
        finally:
            if sync:
                bench.sync(DEVICE)
            acc[name] += time.perf_counter() - start
    return wrapper


def innermost(ops, at):
    """The innermost of one thread's ops [(start, end, name)], sorted by start, that is running at time `at`."""
    k = bisect.bisect_right(ops, (at, float("inf"))) - 1
    while k >= 0 and ops[k][1] <= at:  # nested ops: the latest-starting one still open is the innermost
        k -= 1
    return ops[k][2] if k >= 0 else None


def gpu_idle(kernels, host_ops, labels, min_gap_ns=5_000):
    """Where the GPU waits for the host. kernels: [(start, end)] of device work; host_ops: {thread: [(start, end,
    name)]}; labels: [(start, end, name)] of marked regions. Each gap between kernels (from the first kernel to
    the last) counts towards (innermost marked region, what each host thread was running at its middle).
    Returns (total idle ns, {(region, op per thread...): ns})."""
    kernels, labels = sorted(kernels), sorted(labels)
    host = {t: sorted(ops) for t, ops in host_ops.items()}
    by_cause, total, end = collections.Counter(), 0, None
    for start, stop in kernels:
        if end is not None and start - end >= min_gap_ns:
            middle = (start + end) // 2
            cause = (innermost(labels, middle),) + tuple(innermost(ops, middle) for ops in host.values())
            by_cause[cause] += start - end
            total += start - end
        end = stop if end is None else max(end, stop)
    return total, by_cause


DEVICE_WORK = ("kernel", "gpu_memcpy", "gpu_memset")  # trace categories; not gpu_user_annotation's spans
HOST_WORK = ("cpu_op", "cuda_runtime", "cuda_driver", "python_function")  # aten ops, CUDA calls, Python frames


def trace_events(profiler):
    """The profile's spans [(category, thread, start ns, end ns, name)], read from its Chrome trace: the same
    across torch versions (torch 2.11's kineto events lack activity_type()), with Python frames under
    --profile-stack. Also saved, gzipped, to $WTG_TRACE_DIR when set, for reading again off the GPU machine."""
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "trace.json")
        profiler.export_chrome_trace(path)
        with open(path) as f:
            trace = json.load(f)
    events = [(e.get("cat", ""), str(e.get("tid")), round(e["ts"] * 1e3), round((e["ts"] + e.get("dur", 0)) * 1e3),
               e["name"]) for e in trace["traceEvents"] if e.get("ph") == "X" and "ts" in e]
    if os.environ.get("WTG_TRACE_DIR"):
        names = sorted({e[4] for e in events} | {e[0] for e in events})
        index = {n: k for k, n in enumerate(names)}
        packed = {"names": names, "events": [[index[c], t, a, b, index[n]] for c, t, a, b, n in events]}
        out = os.path.join(os.environ["WTG_TRACE_DIR"], f"trace_{os.getpid()}_{time.time_ns()}.json.gz")
        with gzip.open(out, "wt") as f:
            json.dump(packed, f)
        print(f"trace: {len(events)} spans in {out}")
    return events


def load_trace(path):
    """The spans trace_events saved to $WTG_TRACE_DIR, as it returned them."""
    with gzip.open(path, "rt") as f:
        packed = json.load(f)
    names = packed["names"]
    return [(names[c], t, a, b, names[n]) for c, t, a, b, n in packed["events"]]


def print_gpu_idle(events, title, rows=15):
    kernels, host, labels = [], collections.defaultdict(list), []
    for category, thread, start, end, name in events:
        if category in DEVICE_WORK:
            kernels.append((start, end))
        elif category == "user_annotation":  # timed()'s record_function, TRL's profiling context
            labels.append((start, end, name))
        elif category in HOST_WORK:
            host[thread].append((start, end, name))
    total, by_cause = gpu_idle(kernels, host, labels)
    print(f"\n== {title}: GPU idle {total / 1e9:.3f} s between its first and last kernel; by marked region and "
          f"what each host thread ({len(host)}) was running")
    for cause, ns in by_cause.most_common(rows):
        print(f"{ns / 1e6:9.1f} ms | " + " | ".join(str(c) for c in cause))
    # the combinations above split one cause over many rows: also each column on its own
    for column, name in enumerate(["marked region"] + [f"host thread {t}" for t in host]):
        alone = collections.Counter()
        for cause, ns in by_cause.items():
            alone[cause[column]] += ns
        print(f"-- by {name} alone")
        for what, ns in alone.most_common(rows // 2):
            print(f"{ns / 1e6:9.1f} ms | {what}")


class Parts(TrainerCallback):
    """Per optimizer step: the accumulated part times, the optimizer's and the whole step's; optionally profiles one."""

    def __init__(self, acc, profile_step=None):
        self.acc, self.steps, self.profile_step, self.profiler, self.profiling = acc, [], profile_step, None, False

    def on_step_begin(self, args, state, control, **kwargs):
        bench.sync(DEVICE)
        self.acc.clear()
        self.start = time.perf_counter()
        if state.global_step == self.profile_step:
            self.profiler = torch.profiler.profile(activities=ACTIVITIES, with_stack=PROFILE_STACK)
            self.profiler.__enter__()
            self.profiling = True

    def on_pre_optimizer_step(self, args, state, control, **kwargs):
        bench.sync(DEVICE)
        self.opt_start = time.perf_counter()

    def on_optimizer_step(self, args, state, control, **kwargs):
        bench.sync(DEVICE)
        self.acc["optimizer"] += time.perf_counter() - self.opt_start

    def on_step_end(self, args, state, control, **kwargs):
        bench.sync(DEVICE)
        if self.profiler is not None and state.global_step == self.profile_step + 1:
            self.profiler.__exit__(None, None, None)
            self.profiling = False
        parts = dict(self.acc)
        parts["step"] = time.perf_counter() - self.start
        self.steps.append(parts)


def grpo_breakdown(args, tokenizer, lora):
    acc = collections.defaultdict(float)
    with tempfile.TemporaryDirectory() as tmp:
        trainer, _ = bench.grpo_trainer(args, tokenizer, lora, True, tmp)
        parts = Parts(acc, profile_step=args.warmup_steps + 1)
        for name in ("_generate_single_turn", "_generate_and_score_completions", "compute_loss", "training_step"):
            setattr(trainer, name, timed(acc, name, getattr(trainer, name), parts))
        trainer.add_callback(parts)
        trainer.train()
    print(f"\n== GRPO {'LoRA r=64' if lora else 'full FT'}, fast path: seconds per optimizer step")
    print(f"(step {parts.profile_step} ran under the profiler, its parts unsynchronised)")
    print("step | total | our decode | rest of generate+score | loss forwards | backwards + rest of "
          "training_step | optimizer | outside training_step")
    for k, p in enumerate(parts.steps):
        decode, gen = p.get("_generate_single_turn", 0), p.get("_generate_and_score_completions", 0)
        loss, train = p.get("compute_loss", 0), p.get("training_step", 0)
        print(f"{k} | {p['step']:.3f} | {decode:.3f} | {gen - decode:.3f} | {loss:.3f} | {train - gen - loss:.3f} | "
              f"{p.get('optimizer', 0):.3f} | {p['step'] - train - p.get('optimizer', 0):.3f}")
    if parts.profiler is not None:
        name = "LoRA" if lora else "full FT"
        averages = parts.profiler.key_averages()
        print(f"\n== one {name} GRPO step, by self CUDA time")
        print(averages.table(sort_by=SORT, row_limit=25, max_name_column_width=60))
        print(f"\n== one {name} GRPO step, by self CPU time")
        print(averages.table(sort_by="self_cpu_time_total", row_limit=20, max_name_column_width=60))
        print_gpu_idle(trace_events(parts.profiler), f"one {name} GRPO step")
    del trainer
    bench.cleanup()


def decode_steps(args, tokenizer):
    model = bench.build_model(args, tokenizer).eval()
    prompts = bench.eval_prompts(args)[0]

    def seconds(rows, tokens):
        bench.sync(DEVICE)
        start = time.perf_counter()
        generation.generate_all(model, tokenizer, prompts[:rows], max_new_tokens=tokens, batch_size=rows,
                                static_cache=True, progress=False)
        bench.sync(DEVICE)
        return time.perf_counter() - start

    print("\n== decode step (static cache, CUDA graph), random weights never stop")
    fused_devices = generation.FUSED_NORM_DEVICES
    for rows in ROWS:
        for norms, devices in (("fused", fused_devices), ("unfused", ())):
            generation.FUSED_NORM_DEVICES = devices
            generation._fused_norms_cache.clear()
            seconds(rows, 32)  # warm-up: first shapes pick kernels, the allocator grows
            short, long = seconds(rows, 32), seconds(rows, 32 + STEPS)
            print(f"batch {rows}, {norms} RMSNorm: {(long - short) / STEPS * 1e3:.2f} ms per step; 32 tokens incl. "
                  f"prefill + record {short:.2f} s")
    generation.FUSED_NORM_DEVICES = fused_devices
    generation._fused_norms_cache.clear()
    print(f"fused RMSNorm layers: {len(generation._fused_norm_forwards(model))}")
    seconds(64, 8)
    with torch.profiler.profile(activities=ACTIVITIES) as prof:
        seconds(64, 64)
    print("\n== 64 rows x 64 tokens (1 prefill, 63 decode steps), by self CUDA time")
    print(prof.key_averages().table(sort_by=SORT, row_limit=25, max_name_column_width=60))


def main():
    args = bench.parse_args(sys.argv[1:])
    tokenizer = load_tokenizer(args.tokenizer)
    if "eval" in args.parts:
        decode_steps(args, tokenizer)
        bench.cleanup()
    for variant in args.grpo_variants.split(",") if "grpo" in args.parts else []:
        grpo_breakdown(args, tokenizer, lora=variant == "lora")


if __name__ == "__main__":
    main()

"""The figures NOTES v5 reads from where_time_goes.py's compact traces (WTG_TRACE_DIR; not committed: 6 and
14 MB). For each trace: the longest cuDNN attention calls, GPU busy time and wall time per training_step /
compute_loss region, and for the last training_step the kernels, host ops and Python calls per thread and how
busy each host thread was (the union of its spans over the region's wall time).

    python results/bench/v5/read_trace.py TRACE.json.gz [...] > results/bench/v5/idle/trace_reading.txt
"""

import collections
import importlib.util
import os
import statistics
import sys

# the trace's format and categories are where_time_goes.py's, which writes it
_spec = importlib.util.spec_from_file_location(
    "where_time_goes", os.path.join(os.path.dirname(__file__), "..", "v2", "where_time_goes.py"))
wtg = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(wtg)


def union(spans, start, end):
    """Time within [start, end) covered by at least one of the spans [(a, b)]."""
    covered, reach = 0, start
    for a, b in sorted(spans):
        a, b = max(a, reach), min(b, end)
        if b > a:
            covered += b - a
            reach = b
    return covered


def read(path):
    events = wtg.load_trace(path)
    print(f"== {path}: {len(events)} spans")
    kernels = [(a, b) for c, t, a, b, n in events if c in wtg.DEVICE_WORK]
    first = min(a for a, b in kernels)
    for name in ("aten::_cudnn_attention_forward", "aten::_cudnn_attention_backward"):
        calls = sorted((b - a) / 1e6 for c, t, a, b, n in events if c == "cpu_op" and n == name)
        print(f"{name}: {len(calls)} calls, median {statistics.median(calls) * 1e3:.1f} us, "
              f"longest {[round(x, 1) for x in calls[-3:]]} ms")
    regions = sorted((a, b, n) for c, t, a, b, n in events
                     if c == "user_annotation" and n in ("training_step", "compute_loss"))
    for a, b, n in regions:
        print(f"{n:14s} at {(a - first) / 1e9:6.3f} s: wall {(b - a) / 1e6:7.1f} ms, "
              f"GPU busy {union(kernels, a, b) / 1e6:7.1f} ms")
    a, b, _ = [r for r in regions if r[2] == "training_step"][-1]
    loss_end = [r for r in regions if r[2] == "compute_loss"][-1][1]
    print(f"last training_step: {sum(a <= x < b for x, y in kernels)} kernels; its loss forward "
          f"{(loss_end - a) / 1e6:.1f} ms, the rest (backward) {(b - loss_end) / 1e6:.1f} ms")
    threads = collections.defaultdict(list)
    for c, t, x, y, n in events:
        if c in wtg.HOST_WORK and a <= x and y <= b:
            threads[t].append((c, x, y))
    for t, spans in sorted(threads.items()):
        kinds = collections.Counter(c for c, x, y in spans)
        spans = [(x, y) for c, x, y in spans]
        print(f"  thread {t}: {kinds['cpu_op']} ops, {kinds['python_function']} Python calls; inside a span "
              f"{union(spans, a, loss_end) / (loss_end - a):.0%} of the loss forward, "
              f"{union(spans, loss_end, b) / (b - loss_end):.0%} of the rest")


if __name__ == "__main__":
    for path in sys.argv[1:]:
        read(path)

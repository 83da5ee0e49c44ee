"""Timing and peak-memory helpers for the benchmarks (median of repeats)."""
import statistics
import time
import tracemalloc


def measure(fn, repeats: int = 5, warmup: int = 1):
    """Median wall time (s) over ``repeats`` runs and peak traced memory (bytes) of one run.

    Peak memory is tracemalloc's peak, which includes numpy array buffers; it is
    measured in a separate run so that tracing does not distort the timings.
    """
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    tracemalloc.start()
    fn()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return statistics.median(times), peak


def table(rows, header):
    w = [max(len(str(r[i])) for r in rows + [header]) for i in range(len(header))]
    line = lambda r: "| " + " | ".join(str(c).ljust(w[i]) for i, c in enumerate(r)) + " |"
    return "\n".join([line(header), "|" + "|".join("-" * (x + 2) for x in w) + "|"] + [line(r) for r in rows])


#: Python source timing ``call`` in a fresh interpreter after ``setup`` (one warm-up call, then
#: ``repeats`` timed calls); prints the times as one JSON line.  Prefix it with the imports.
TIMING_BODY = """
import time, json
import numpy as np
rng = np.random.default_rng(0)
{setup}
fn = lambda: {call}
fn()
ts = []
for _ in range({repeats}):
    t0 = time.perf_counter(); fn(); ts.append(time.perf_counter() - t0)
print(json.dumps(ts))
"""


def time_in_subprocess(code: str, cwd: str, env=None) -> list:
    """Run ``code`` (ending in :data:`TIMING_BODY`) with this interpreter; the times it printed."""
    import json
    import subprocess
    import sys
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=cwd, env=env)
    if out.returncode:
        raise RuntimeError(out.stderr[-2000:])
    return json.loads(out.stdout.strip().splitlines()[-1])

"""Benchmark: dask.distributed speed-up on one machine (issue 7 target: >= 1.7x with 2 local
workers over 1 for ResCNN(depth=3, readout="gap") on n = 256 8x8x3 images, NTK).

Each worker is one process with one thread; the result is checked to be bit-identical to the
in-process matrix.  The default backend is used (numba when installed); a warm-up call excludes the
workers' imports and numba's cache load from the timings.  Run: python benchmarks/bench_distributed.py [--n 256]
"""
import argparse
import time

import numpy as np


from reskernels.numerics import gram  # noqa: E402
from reskernels.theory import ResCNN  # noqa: E402


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--n", type=int, default=256)
    a = p.parse_args()
    from distributed import Client, LocalCluster
    X = np.random.default_rng(0).standard_normal((a.n, 8, 8, 3))
    arch = ResCNN(3, 0.5, readout="gap")
    budget = 2**26          # small tiles: enough of them to balance two workers
    t0 = time.perf_counter()
    ref = gram(arch, X, memory_budget=budget)
    t_local = time.perf_counter() - t0
    rows = [("in process, all cores (threads)", f"{t_local:.1f}", "")]
    times = {}
    for workers in (1, 2):
        with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
                          silence_logs=40) as cluster, Client(cluster) as client:
            gram(arch, X[:2], client=client)      # warm-up: imports and numba's cache load on every worker
            t0 = time.perf_counter()
            K = gram(arch, X, memory_budget=budget, client=client)
            times[workers] = time.perf_counter() - t0
            rows.append((f"dask LocalCluster, {workers} worker(s) x 1 thread", f"{times[workers]:.1f}",
                         "yes" if np.array_equal(K, ref) else "NO"))
    print(f"ResCNN(3, 0.5, gap), n = {a.n}, 8x8x3, NTK; speed-up 2 workers / 1 worker = "
          f"{times[1] / times[2]:.2f}x")
    print("| executor | time (s) | bit-identical to in-process |")
    print("|---|---|---|")
    for r in rows:
        print("| " + " | ".join(r) + " |")


if __name__ == "__main__":
    main()

"""Benchmark: conv Gram matrices on one GPU (backend="cupy" or the fused kernel "cuda", float64) vs
the CPU path.

Issue 7 target: a depth-10 ResCNN and CNN with gap readout on 32x32x3 inputs, float64, under
1 ms per Gram entry on one H100, and n = 1000 images end to end.  Prints time per entry for a
symmetric block of n images (n (n + 1) / 2 entries), the agreement with the CPU path on a few
entries, and, with --n-end-to-end N, the time of the whole N x N matrix.
Issue 15 target: ResCNN(10, 0.5) and CNN(10) gap on 32x32x3 at n = 256 and n = 1000 below 0.2 ms
per entry on one H100 / H200 with the fused kernel (``--backends cuda``: numerics/conv_cuda.py,
numba-cuda), agreeing with the CPU to 1e-15.
Run (on a GPU machine): python benchmarks/bench_gpu.py [--n 16] [--n-end-to-end 1000]
[--backends cupy cuda]
"""
import argparse
import time

import numpy as np


from reskernels.numerics import gram  # noqa: E402
from reskernels.theory import CNN, ResCNN  # noqa: E402


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--n", type=int, default=64)
    p.add_argument("--hw", type=int, default=32)
    p.add_argument("--depth", type=int, default=10)
    p.add_argument("--budget-gib", type=float, default=40.0)
    p.add_argument("--n-end-to-end", type=int, default=0)
    p.add_argument("--cpu-check", type=int, default=2, help="images compared with the CPU path")
    p.add_argument("--backends", nargs="+", default=["cupy", "cuda"], choices=["cupy", "cuda"])
    a = p.parse_args()
    from numba import cuda
    dev = getattr(cuda, "get_current_device", lambda: None)()      # None under numba's simulator
    dev = "numba CUDA simulator" if dev is None else dev.name
    dev = dev.decode() if isinstance(dev, bytes) else dev
    rng = np.random.default_rng(0)
    X = rng.standard_normal((max(a.n, a.n_end_to_end), a.hw, a.hw, 3))
    budget = int(a.budget_gib * 2**30)
    rows = []
    for backend in a.backends:
        for arch in (ResCNN(a.depth, 0.5, readout="gap"), CNN(a.depth, readout="gap")):
            gram(arch, X[:2], backend=backend, memory_budget=budget)       # warm-up (kernel compilation)
            t0 = time.perf_counter()
            K = gram(arch, X[:a.n], backend=backend, memory_budget=budget)
            t = time.perf_counter() - t0
            entries = a.n * (a.n + 1) // 2
            c = a.cpu_check
            t1 = time.perf_counter()
            K_cpu = gram(arch, X[:c], memory_budget=2**30)
            t_cpu = time.perf_counter() - t1
            scale = np.sqrt(np.outer(np.diag(K_cpu), np.diag(K_cpu)))
            err = float(np.max(np.abs(K[:c, :c] - K_cpu) / scale))
            diag = bool(np.array_equal(np.diag(K[:c, :c]), np.diag(K_cpu)))
            rows.append((backend, arch.slug, a.n, f"{1e3 * t / entries:.3f}",
                         f"{1e3 * t_cpu / (c * (c + 1) // 2):.1f}", f"{err:.1e}", diag))
            if a.n_end_to_end:
                t0 = time.perf_counter()
                gram(arch, X[:a.n_end_to_end], backend=backend, memory_budget=budget, progress=True)
                rows.append((backend, arch.slug, a.n_end_to_end, f"end to end {time.perf_counter() - t0:.1f} s",
                             "", "", ""))
    print(f"device: {dev}, {a.hw}x{a.hw}x3 inputs, float64")
    print("| backend | spec | n | GPU ms / entry | CPU (same machine, all cores) ms / entry | max rel. diff GPU vs CPU "
          "| diagonal bit for bit |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print("| " + " | ".join(map(str, r)) + " |")


if __name__ == "__main__":
    main()

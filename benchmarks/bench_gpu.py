"""Benchmark: conv Gram matrices on one GPU (backend="cupy" or the fused kernel "cuda", float64) vs
the CPU path.

Issue 7 target: a depth-10 ResCNN and CNN with gap readout on 32x32x3 inputs, float64, under
1 ms per Gram entry on one H100, and n = 1000 images end to end.  Prints time per entry for a
symmetric block of n images (n (n + 1) / 2 entries), the agreement with the CPU path on a few
entries, and, with --n-end-to-end N, the time of the whole N x N matrix.
Issue 15 target: ResCNN(10, 0.5) and CNN(10) gap on 32x32x3 at n = 256 and n = 1000 below 0.2 ms
per entry on one H100 / H200 with the fused kernel (``--backends cuda``: numerics/conv_cuda.py,
numba-cuda), agreeing with the CPU to 1e-15.  The limit column: the lowered program's flops per
(offset, position) entry (benchmarks/bench_transcendental.flops_per_entry: patch taps, the dual's
algebra, the NTK updates; loads and stores not counted) and one acos per dual layer, times P^2
per Gram entry, at the device's measured FMA and acos throughput (:func:`device_limits`).
Run (on a GPU machine): python benchmarks/bench_gpu.py [--n 16] [--n-end-to-end 1000]
[--backends cupy cuda]
"""
import argparse
import math
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from bench_transcendental import flops_per_entry  # noqa: E402

from reskernels.numerics import gram  # noqa: E402
from reskernels.theory import CNN, ResCNN  # noqa: E402


def device_limits(n=1 << 24, reps=256):
    """(ns per float64 flop, ns per acos) of this GPU, best of 5 (a limit is a best case): one kernel of
    independent multiply-add chains (2 flops an iteration, contracted into one FMA) and one of acos
    calls (plus 2 flops an iteration) over n threads.  None under numba's simulator."""
    from numba import cuda
    if getattr(cuda, "get_current_device", None) is None:
        return None

    @cuda.jit
    def fma_k(x, out, reps):
        i = cuda.grid(1)
        if i < x.shape[0]:
            a = x[i]
            for _ in range(reps):
                a = a * 0.9999999 + 1e-9
            out[i] = a

    @cuda.jit
    def acos_k(x, out, reps):
        i = cuda.grid(1)
        if i < x.shape[0]:
            v = x[i]
            s = 0.0
            for _ in range(reps):
                s += math.acos(v)
                v = v * 0.9999999
            out[i] = s

    x = cuda.to_device(np.random.default_rng(0).uniform(-0.9, 0.9, n))
    out = cuda.device_array(n)
    rates = []
    for k in (fma_k, acos_k):
        k[(n + 255) // 256, 256](x, out, 1)                           # compile
        cuda.synchronize()
        best = float("inf")
        for _ in range(5):
            t0 = time.perf_counter()
            k[(n + 255) // 256, 256](x, out, reps)
            cuda.synchronize()
            best = min(best, time.perf_counter() - t0)
        rates.append(best * 1e9 / (n * reps))
    return rates[0] / 2, rates[1]


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
    if "cuda" in a.backends:
        from numba import cuda
        dev = getattr(cuda, "get_current_device", lambda: None)()      # None under numba's simulator
        dev = "numba CUDA simulator" if dev is None else dev.name
        limits = device_limits()
    else:                      # CuPy alone (numba's CUDA target need not be installed)
        import cupy
        dev, limits = cupy.cuda.runtime.getDeviceProperties(0)["name"], None
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
            # per Gram entry: offsets x positions problems-entries, each one acos per dual layer
            P = a.hw * a.hw
            duals = sum(1 for m in arch.kernel_maps() if getattr(m, "activation", None) is not None)
            flops, calls = P * P * flops_per_entry(arch, "ntk", a.hw, a.hw), P * P * duals
            if limits is None:
                lim, ratio = "-", "-"
            else:
                lim_ms = 1e-6 * (flops * limits[0] + calls * limits[1])
                lim, ratio = f"{lim_ms:.4f}", f"{1e3 * t / entries / lim_ms:.1f}"
            rows.append((backend, arch.slug, a.n, f"{1e3 * t / entries:.3f}", lim, ratio,
                         f"{1e3 * t_cpu / (c * (c + 1) // 2):.1f}", f"{err:.1e}", diag))
            if a.n_end_to_end:
                t0 = time.perf_counter()
                gram(arch, X[:a.n_end_to_end], backend=backend, memory_budget=budget, progress=True)
                rows.append((backend, arch.slug, a.n_end_to_end, f"end to end {time.perf_counter() - t0:.1f} s",
                             "", "", "", "", ""))
    print(f"device: {dev}, {a.hw}x{a.hw}x3 inputs, float64" + (
        "" if limits is None else f"; measured {limits[0]:.2e} ns per flop, {limits[1]:.2e} ns per acos"))
    print("| backend | spec | n | GPU ms / entry | arithmetic limit ms / entry | time / limit "
          "| CPU (same machine, all cores) ms / entry | max rel. diff GPU vs CPU | diagonal bit for bit |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print("| " + " | ".join(map(str, r)) + " |")


if __name__ == "__main__":
    main()

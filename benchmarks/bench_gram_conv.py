"""Benchmark: Gram matrices of convolutional kernels (float64, 2 threads).

Issue targets for ResCNN(depth=3, alpha=0.5, filter_size=3) on 8x8x3 images, NTK:
gap n = 64 <= 1.0 s and 0.5 GB; gap n = 256 <= 15 s within a 1 GB budget; flatten n = 256 <= 0.3 s.
Both CPU backends are timed: "numpy" (vectorised passes) and "numba" (the fused loop of
numerics.conv_fused; its compilation is cached on disk and excluded by a warm-up call).  Peak memory
is tracemalloc's (numpy buffers); the numba loop's own scratch (eight H x W grids per running tile,
under 1 MiB here) is not traced, so the process's peak resident size is printed as well.
Run: python benchmarks/bench_gram_conv.py [--skip-large] [--backends numba,numpy]
"""
import os
import resource
import sys

import numpy as np

from common import measure, table  # noqa: E402

from reskernels.numerics import gram  # noqa: E402
from reskernels.theory import CNN, ResCNN  # noqa: E402


def main():
    rng = np.random.default_rng(0)
    rows = []
    cases = [("gap", 64, 5), ("flatten", 256, 5), ("gap", 256, 1)]
    if "--skip-large" in sys.argv:
        cases = cases[:2]
    backends = ["numba", "numpy"]
    if "--backends" in sys.argv:
        backends = sys.argv[sys.argv.index("--backends") + 1].split(",")
    gram(CNN(2), rng.standard_normal((2, 4, 4, 1)), backend=backends[0])   # compile / load the cache
    for readout, n, reps in cases:
        X = rng.standard_normal((n, 8, 8, 3))
        for backend in backends:
            for arch in (ResCNN(3, 0.5, readout=readout), CNN(4, readout=readout)):
                t, peak = measure(lambda: gram(arch, X, memory_budget=2**30, backend=backend), repeats=reps,
                                  warmup=0 if n == 256 and readout == "gap" else 1)
                rows.append((arch.slug, backend, n, f"{t:.3f}", f"{peak / 2**20:.0f}"))
                print(rows[-1], flush=True)
    print(f"cpus: {os.cpu_count()}; process peak resident size "
          f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10:.0f} MiB")
    print(table(rows, ("arch (8x8x3 images, ntk)", "backend", "n", "median time (s)", "peak traced memory (MiB)")))


if __name__ == "__main__":
    main()

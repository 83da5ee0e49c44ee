"""Benchmark: float64 Gram matrices of fully connected kernels.

Issue target (2-core machine): gram(ResNet(depth=10, alpha=0.5), X, kind="ntk") on
n = 1000 / 2000 points in d = 16 in at most 0.12 s / 0.5 s, peak memory < 0.6 GB at n = 2000.
Run: python benchmarks/bench_gram_fc.py
"""
import os

import numpy as np

from common import measure, table  # noqa: E402

from reskernels.numerics import gram  # noqa: E402
from reskernels.theory import MLP, ResNet  # noqa: E402


def main():
    rng = np.random.default_rng(0)
    rows = []
    for arch in (ResNet(10, 0.5), MLP(10)):
        for n in (1000, 2000):
            X = rng.standard_normal((n, 16))
            for kind in ("ntk", "nngp"):
                t, peak = measure(lambda: gram(arch, X, kind=kind), repeats=5)
                rows.append((arch.slug, kind, n, f"{t:.3f}", f"{peak / 2**20:.0f}"))
    print(f"cpus: {os.cpu_count()}")
    print(table(rows, ("arch", "kind", "n", "median time (s)", "peak traced memory (MiB)")))


if __name__ == "__main__":
    main()

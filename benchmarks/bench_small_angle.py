"""Benchmark: the small-angle series of the ReLU half-angle dual, before and after, in one run.

``theory.activations.SMALL_ANGLE_H`` = 0 is the code before 2026-12-03 (su sv - h rho as a difference,
bit for bit; tests/golden), 0.25 the default (its Taylor series below h = 1/4).  Times the FC Gram
matrices of bench_gram_fc.py on both paths (numpy, and the compiled loop when numba is installed),
alternating the two settings round by round so that both see the same machine load, and reports the
accuracy against the same recursion in mpmath (40 digits) at depth, the reason for the change.
Run: python benchmarks/bench_small_angle.py [--rounds 5]
"""
import argparse
import os
import statistics
import time

import mpmath as mp
import numpy as np

from common import table  # noqa: E402

import reskernels.theory.activations as activations  # noqa: E402
from reskernels.numerics import gram  # noqa: E402
from reskernels.numerics.backends import MPMATH, NUMPY  # noqa: E402
from reskernels.numerics.fc import half_angle_recursion  # noqa: E402
from reskernels.theory import MLP, ResNet  # noqa: E402

SETTINGS = {"difference (before)": 0.0, "series (after)": activations.SMALL_ANGLE_H}


def _timed(fn):
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def timings(rounds: int):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((2000, 16))
    try:
        import numba  # noqa: F401
        backends = ("numpy", "auto")
    except ImportError:
        backends = ("numpy",)
    rows = []
    for arch in (ResNet(10, 0.5), MLP(10)):
        for backend in backends:
            call = lambda: gram(arch, X, kind="ntk", backend=backend)
            times = {name: [] for name in SETTINGS}
            for name, h in SETTINGS.items():          # warm-up (compilation) for both
                activations.SMALL_ANGLE_H = h
                call()
            for _ in range(rounds):
                for name, h in SETTINGS.items():
                    activations.SMALL_ANGLE_H = h
                    times[name].append(_timed(call))
            activations.SMALL_ANGLE_H = SETTINGS["series (after)"]
            med = {k: statistics.median(v) for k, v in times.items()}
            rows.append((arch.slug, backend, "ntk", 2000, *(f"{med[k]:.3f}" for k in SETTINGS),
                         f"{med['series (after)'] / med['difference (before)']:.3f}"))
    return rows


def accuracy():
    ts = np.array([-0.5, 0.0, 0.5, 0.9, 0.9999])
    th = np.arccos(ts) / 2
    rows = []
    for arch in (MLP(100), MLP(1000), MLP(10000), ResNet(1000, 0.5)):
        with mp.workdps(40):
            ref = [half_angle_recursion(arch, mp.sin(mp.acos(mp.mpf(t)) / 2), mp.cos(mp.acos(mp.mpf(t)) / 2),
                                        MPMATH)[1] for t in ts]
        errs = []
        for h in SETTINGS.values():
            activations.SMALL_ANGLE_H = h
            _, T = half_angle_recursion(arch, np.sin(th), np.cos(th), NUMPY)
            errs.append(max(abs(float(a / b) - 1) for a, b in zip(T, ref)))
        activations.SMALL_ANGLE_H = SETTINGS["series (after)"]
        rows.append((arch.slug, "ntk", *(f"{e:.1e}" for e in errs)))
    return rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    print(f"cpus: {os.cpu_count()}")
    print(table(timings(args.rounds), ("arch", "backend", "kind", "n", *(f"median s, {k}" for k in SETTINGS),
                                       "after / before")))
    print()
    print("largest relative error of the normalised NTK against mpmath (40 digits), t in "
          "{-0.5, 0, 0.5, 0.9, 0.9999}:")
    print(table(accuracy(), ("arch", "kind", *SETTINGS)))


if __name__ == "__main__":
    main()

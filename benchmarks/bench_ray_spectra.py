"""Benchmark: ray eigenvalues of the five-pixel C0 = 2 case to k = 64 (issue 14 item 2 target: < 1 min on
2 cores).  CNN(3, q=3, center), receptive window 5 pixels, NNGP and NTK.

* single-pixel rays e0, e1, e2 (the others follow by reflection), numerics.ray_spectra.ray_spectrum with the
  defaults of the decay checks (n = 6, n2 = 8, M = 48 kmax);
* ``--pairs``: the pair rays e0+e1 and e0+e2 (numerics.ray_spectra.window_ray_spectrum: graded active rule,
  corner-graded near inactive pixels; NNGP to --pair-kmax-nngp (default 40, where lambda reaches about 1e3
  eps lambda_0), NTK to --kmax) and the full window (k, ..., k) to k = 7 (N = 22 / 16 per axis);

prints CPU and wall seconds, the points with estimated error <= 1% and the slopes with their bounds against the
predicted exponents.  Run: python benchmarks/bench_ray_spectra.py [--kmax 64] [--pairs]
"""
import argparse
import os
import time

import numpy as np

from reskernels.numerics.ray_spectra import measure_ray, window_ray_spectrum
from reskernels.theory import CNN


def show(r):
    if r.slope is None:
        return f"  {r.kind} {r.name}: {len(r.ks)} points <= 1%, no slope, {r.seconds:.1f} s CPU"
    return (f"  {r.kind} {r.name}: {len(r.ks)} points <= 1% (k {r.ks[0]}..{r.ks[-1]}), slope {r.slope:.3f} "
            f"+- {r.bound:.3f}, predicted -{r.predicted:g}, {r.seconds:.1f} s CPU")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--kmax", type=int, default=64)
    ap.add_argument("--pairs", action="store_true")
    ap.add_argument("--pair-kmax-nngp", type=int, default=40)
    a = ap.parse_args()
    arch = CNN(3, readout="center")
    w0, c0 = time.perf_counter(), time.process_time()
    print(f"CNN(3) center, P = 5, C0 = 2, k <= {a.kmax}; {os.cpu_count()} cores visible, load {os.getloadavg()[0]:.1f}")
    for kind in ("nngp", "ntk"):
        for name, sup in (("e0", (0,)), ("e1", (1,)), ("e2", (2,))):
            print(show(measure_ray(arch, kind, sup, name, kmax=a.kmax, n=6, n2=8)), flush=True)
    print(f"single-pixel rays: {time.process_time() - c0:.1f} s CPU, {time.perf_counter() - w0:.1f} s wall")
    if a.pairs:
        for kind, kmax, g in (("nngp", a.pair_kmax_nngp, 9), ("ntk", a.kmax, 8)):
            for name, sup in (("e0+e1", (0, 1)), ("e0+e2", (0, 2))):
                print(show(measure_ray(arch, kind, sup, name, kmax=kmax, g=g, n=6)), flush=True)
        for kind in ("nngp", "ntk"):
            t = time.process_time()
            W = window_ray_spectrum(arch, (-2, -1, 0, 1, 2), 7, kind, N=22, N2=16)
            rel = W.error[1:] / np.abs(W.values[1:])
            print(f"  {kind} full window k = 1..7: " + " ".join(f"{x:.3e}({e:.0e})" for x, e in zip(W.values[1:], rel))
                  + f", {time.process_time() - t:.1f} s CPU", flush=True)
    print(f"total: {time.process_time() - c0:.1f} s CPU, {time.perf_counter() - w0:.1f} s wall")


if __name__ == "__main__":
    main()

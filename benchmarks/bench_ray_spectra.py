"""Benchmark: ray eigenvalues of the five-pixel C0 = 2 case to k = 64 (issue 14 item 2 target: < 1 min on
2 cores).  CNN(3, q=3, center), receptive window 5 pixels, NNGP and NTK, the single-pixel rays e0, e1, e2
(the others follow by reflection) with numerics.ray_spectra defaults of the decay checks (n = 6, n2 = 8,
M = 48 kmax); prints CPU and wall seconds, the points with estimated error <= 1% and the slopes with
their bounds against the predicted exponents.  Run: python benchmarks/bench_ray_spectra.py [--kmax 64]
"""
import argparse
import os
import time

from reskernels.numerics.ray_spectra import measure_ray
from reskernels.theory import CNN


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--kmax", type=int, default=64)
    a = ap.parse_args()
    arch = CNN(3, readout="center")
    w0, c0 = time.perf_counter(), time.process_time()
    print(f"CNN(3) center, P = 5, C0 = 2, k <= {a.kmax}; {os.cpu_count()} cores visible, load {os.getloadavg()[0]:.1f}")
    for kind in ("nngp", "ntk"):
        for name, sup in (("e0", (0,)), ("e1", (1,)), ("e2", (2,))):
            r = measure_ray(arch, kind, sup, name, kmax=a.kmax, n=6, n2=8)
            print(f"  {kind} {name}: {len(r.ks)} points <= 1% (k {r.ks[0]}..{r.ks[-1]}), slope {r.slope:.3f} "
                  f"+- {r.bound:.3f}, predicted -{r.predicted:g}, {r.seconds:.1f} s CPU")
    print(f"total: {time.process_time() - c0:.1f} s CPU, {time.perf_counter() - w0:.1f} s wall")


if __name__ == "__main__":
    main()

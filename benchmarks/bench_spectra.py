"""Benchmark: certified Funk-Hecke eigenvalues, and how many digits float64 keeps.

Issue target (single core): all mu_k, k = 0..200, at 40 significant digits for
ResNet(depth=4, alpha=0.5) on S^2 and S^5 under 10 s each; k = 0..1000 at 30 digits
under 60 s.  Run: python benchmarks/bench_spectra.py
"""
import time

import mpmath

from common import table  # noqa: E402

from reskernels.numerics.spectra import eigenvalues, eigenvalues_float64, gauss_legendre_fixed  # noqa: E402
from reskernels.theory import ResNet  # noqa: E402


def main():
    arch = ResNet(4, 0.5)
    rows = []
    for d, kmax, dps in [(3, 200, 40), (6, 200, 40), (3, 1000, 30)]:
        gauss_legendre_fixed.cache_clear()
        t0 = time.perf_counter()
        mu, info = eigenvalues(arch, "ntk", d=d, ks=range(kmax + 1), dps=dps, return_info=True)
        t = time.perf_counter() - t0
        rows.append((f"S^{d - 1}", f"0..{kmax}", dps, f"{t:.1f}", f"{info.nodes}", f"{info.work_dps}"))
    print(table(rows, ("sphere", "k", "digits", "time (s, incl. nodes)", "nodes (pass 1, 2)", "working dps")))
    print()
    ref = dict(zip([100, 200, 1000], eigenvalues(arch, "ntk", d=3, ks=[100, 200, 1000], dps=30)))
    rows = []
    for n in (400, 2000):
        t0 = time.perf_counter()
        f64 = eigenvalues_float64(arch, "ntk", d=3, ks=[100, 200, 1000], n=n)
        t = time.perf_counter() - t0
        digs = [f"{-float(mpmath.log10(abs(mpmath.mpf(x) / ref[k] - 1))):.1f}" for x, k in zip(f64, [100, 200, 1000])]
        rows.append((f"float64 theta-GL, n={n}", f"{t:.3f}", *digs))
    print(table(rows, ("route", "time (s)", "digits k=100", "digits k=200", "digits k=1000")))


if __name__ == "__main__":
    main()

"""Benchmark: ray eigenvalues of the five-pixel C0 = 2 case to k = 64 (issue 14 item 2 target: < 1 min on
2 cores).  CNN(3, q=3, center), receptive window 5 pixels, NNGP and NTK.

* single-pixel rays e0, e1, e2 (the others follow by reflection), numerics.ray_spectra.ray_spectrum with the
  defaults of the decay checks (n = 6, n2 = 8, M = 48 kmax);
* the pair rays e0+e1 and e0+e2 (numerics.ray_spectra.window_ray_spectrum: graded active rule, corner-graded
  near inactive pixels; 10 Gauss nodes a corner panel for the NNGP, 8 for the NTK) to --kmax; with
  ``--all-pairs`` also e1+e2 and e-1+e1, the other pairs inside a 3-pixel window;
* ``--far-pairs``: the pairs at distance 3 and 4, e-2+e1 and e-2+e2, which lie only in the 5-pixel window
  (three near pixels on the two-sided corner rule, corner="both", 10 Gauss nodes a panel, even k; NTK to
  --kmax, NNGP to k = 28, where its k^-8 falls to 10 eps lambda_0): ~13 and ~7 minutes CPU for the NTK rays,
  not part of the one-minute target;
* ``--window``: the full window (k, ..., k), every pixel active, with GEIFMAN-DECAY's full-mode rules
  (N2 = 2 kmax + 8, N = N2 + 8 nodes a pixel on mirror orbits, streamed by the compiled loop, ~90 ns a node
  on its own 2 threads; NNGP to k = 32, NTK to k = 64: ~4 and ~80 minutes CPU), or to ``--window-kmax``
  with the same rules scaled; prints the slope, CPU seconds and the process's peak memory.  With
  ``--window-c0 3`` on C0 = 3 (Legendre sums, active rule r = 4: N2 = ceil(8 kmax / 3) + 8, N = N2 + 8;
  default k <= 20 NTK, 16 NNGP, where k^-11 / k^-13 reach the floor of 0.01 eps lambda_0) and the rounding
  proxy of those sums at N = 32 (numerics.ray_spectra.window_rounding).  ``--window-arch rescnn2`` takes the
  full window of ResCNN(2, 0.5) on the same circular 5-pixel signal (its receptive field wraps; ResCNN(1)'s
  full window vanishes) instead of CNN(3)'s.

Each ray is one job; ``--jobs`` worker processes run them (default: the CPUs), longest first.  Prints per ray
the points with estimated error <= 1% and the slope with its bound against the predicted exponent, and CPU
seconds; then the wall time of the whole case.  ``--backend numpy`` evaluates the kernel by the numpy
interpreter instead of the compiled loop (the "before" of the compiled evaluator).
Run: python benchmarks/bench_ray_spectra.py [--kmax 64] [--jobs 2] [--backend auto|numpy] [--all-pairs] [--window]
     [--window-kmax K] [--window-c0 3] [--window-arch cnn3|rescnn2] [--far-pairs]
"""
import argparse
import os
import resource
import time
from concurrent.futures import ProcessPoolExecutor

import numpy as np

from reskernels.numerics.ray_spectra import measure_ray, window_rounding
from reskernels.theory import CNN, ResCNN

ARCH = CNN(3, readout="center")
WINDOW_ARCHS = {"cnn3": ARCH, "rescnn2": ResCNN(2, 0.5, readout="center")}
P = 5        # the circular signal: CNN(3)'s receptive field; ResCNN(2)'s (9 pixels) wraps on it
PAIR_G = {"nngp": 10, "ntk": 8}
FAR_PAIRS = {"e-2+e1": (-2, 1), "e-2+e2": (-2, 2)}


def far_pair_rules(kind):
    """The rules GEIFMAN-DECAY's full mode measures the far pairs with (its claim defaults)."""
    from reskernels.proofs_check.registry import load_all
    return dict(load_all()["GEIFMAN-DECAY"].defaults["far_pair_rules"][kind])


def window_rules(kind, kmax=None, C0=2):
    """GEIFMAN-DECAY's full-window rules (its claim defaults), or the same rules scaled to kmax; on C0 > 2
    the graded active rule r = 4 (it stretches delta by up to 8/3): N2 = ceil(8 kmax / 3) + 8, default
    kmax 20 (NTK) / 16 (NNGP)."""
    from reskernels.proofs_check.registry import load_all
    rules = dict(load_all()["GEIFMAN-DECAY"].defaults["full_window_rules"][kind])
    if C0 != 2:
        kmax = kmax or {"ntk": 20, "nngp": 16}[kind]
        N2 = -(-8 * kmax // 3) + 8
        return dict(rules, kmax=kmax, N2=N2, N=N2 + 8, C0=C0)
    if kmax:
        rules.update(kmax=kmax, N2=2 * kmax + 8, N=2 * kmax + 16)
    return rules


def show(r):
    if r.slope is None:
        return f"  {r.kind} {r.name}: {len(r.ks)} points <= 1%, no slope, {r.seconds:.1f} s CPU"
    return (f"  {r.kind} {r.name}: {len(r.ks)} points <= 1% (k {r.ks[0]}..{r.ks[-1]}), slope {r.slope:.3f} "
            f"+- {r.bound:.3f}, predicted -{r.predicted:g}, {r.seconds:.1f} s CPU")


def job(spec):
    kind, name, sup, kmax, backend = spec[:5]
    if name == "window":
        C0, arch = spec[5], WINDOW_ARCHS[spec[6]]
        rules = window_rules(kind, kmax, C0)
        r = measure_ray(arch, kind, sup, f"{spec[6]} full window, C0 = {C0}", backend=backend, P=P, **rules)
        rel = np.max(r.errors / np.abs(r.values)) if len(r.ks) else float("nan")
        rounding = ""
        if C0 != 2:
            rd = window_rounding(arch, kind, 32, rules["kmax"], C0=C0, P=P)
            rounding = f", rounding proxy at N = 32 {np.max(rd[1:]):.1e} eps lambda_0"
            rounding += "; lambda at k = " + ", ".join(f"{k}: {x:.3g}" for k, x in zip(r.ks, r.values))
        return (show(r) + f"; N = {rules['N']} / {rules['N2']}, largest estimate {rel:.1e} of lambda{rounding}, "
                f"peak {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB (this worker)")
    rules = dict(n=6, n2=8) if len(sup) == 1 else dict(g=PAIR_G[kind], n=6)
    if name in FAR_PAIRS:
        rules = far_pair_rules(kind)
        top = rules.pop("kmax")       # the NNGP's k^-8 reaches 10 eps lambda_0 by k ~ 27; the NTK takes --kmax
        kmax = min(kmax, top) if kind == "nngp" else kmax
    return show(measure_ray(ARCH, kind, sup, name, kmax=kmax, backend=backend, **rules))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--kmax", type=int, default=64)
    ap.add_argument("--jobs", type=int, default=os.cpu_count())
    ap.add_argument("--backend", default="auto", choices=("auto", "numpy", "numba"))
    ap.add_argument("--all-pairs", action="store_true")
    ap.add_argument("--window", action="store_true")
    ap.add_argument("--window-kmax", type=int, default=None)
    ap.add_argument("--window-c0", type=int, default=2, choices=(2, 3))
    ap.add_argument("--window-arch", default="cnn3", choices=tuple(WINDOW_ARCHS))
    ap.add_argument("--far-pairs", action="store_true")
    a = ap.parse_args()
    pairs = [("e0+e1", (0, 1)), ("e0+e2", (0, 2))] + ([("e1+e2", (1, 2)), ("e-1+e1", (-1, 1))] if a.all_pairs else [])
    pairs = list(FAR_PAIRS.items()) + pairs if a.far_pairs else pairs     # longest first
    jobs = [(kind, name, sup, a.kmax, a.backend) for kind in ("nngp", "ntk") for name, sup in pairs]
    jobs += [(kind, name, sup, a.kmax, a.backend) for kind in ("nngp", "ntk")
             for name, sup in (("e0", (0,)), ("e1", (1,)), ("e2", (2,)))]
    if a.window:
        jobs = [(kind, "window", (-2, -1, 0, 1, 2), a.window_kmax, a.backend, a.window_c0, a.window_arch)
                for kind in ("ntk", "nngp")] + jobs
    print(f"CNN(3) center, P = 5, C0 = 2" + (f" (the full window of {WINDOW_ARCHS[a.window_arch].slug} on "
                                              f"C0 = {a.window_c0})" if a.window else "")
          + f", k <= {a.kmax}, backend {a.backend}; {a.jobs} worker processes, "
          f"{os.cpu_count()} cores visible, load {os.getloadavg()[0]:.1f}", flush=True)
    w0 = time.perf_counter()
    with ProcessPoolExecutor(a.jobs) as ex:
        for line in ex.map(job, jobs):
            print(line, flush=True)
    print(f"wall {time.perf_counter() - w0:.1f} s for {len(jobs)} rays on {a.jobs} processes")


if __name__ == "__main__":
    main()

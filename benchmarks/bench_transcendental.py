"""Benchmark: how far each kernel engine is from the transcendental limit of this machine (issue 15).

Three parts, all printed as markdown tables:

1. **Throughput** (ns per float64, the minimum of repeats: a limit is a best case): numpy's arccos / arcsin / sqrt / exp / sin
   and scipy's erf on 1e7 doubles (streamed from memory) and on 4096 doubles repeated (in L1),
   libm's acos called from a numba loop, the polynomial arccos of :mod:`numerics.fastmath` in a
   numba loop, and the rate of plain arithmetic (a vectorised multiply-add loop in L1, ns per flop).
2. **Engines vs their limit** (one thread, ``n_threads=1``, so that every limit is per core): the
   code before the change (``--old``, another checkout) and this checkout, alternating in fresh
   subprocesses (old, new, new with ``RESKERNELS_ACOS=libm``, old, ...), median times.  For each
   case the transcendental calls are counted (conv: pairs x offsets x positions x dual layers, one
   arccos each; FC: pairs x dual layers, one arcsin each) and so are the flops per entry of the
   lowered program (:func:`flops_per_entry`); the limits are

   * transcendental limit = calls x the fastest in-cache arccos (or arcsin) of part 1;
   * arithmetic limit = that + flops x ns per flop of part 1;

   and each row gives time / limit.
3. **Activations vs ReLU**: FC ResNet(10, 0.5) on n = 1000 inputs, conv ResCNN(2, 0.5) gap on
   n = 16 6x6x3 images and conv ResCNN(3, 0.5) gap on n = 64 8x8x3 images (default threads,
   default backend: numba for every closed-form activation, :mod:`numerics.conv_fused` and
   :mod:`numerics.conv_fused_general`), every closed-form activation, ReLU with a bias and tanh /
   gelu / a user function (quadrature duals, timed on n = 10 and 2 inputs: they cost ~1e5 x more
   per entry), as time per pair / the same of ReLU on the same spec (targets: 2x closed form, 5x
   quadrature); the best of ``--repeats`` calls (default 5: a shared machine's load only adds).
   input_var = 0.01 keeps the polynomial activations' variance maps finite at depth 10.

Run (old = a checkout of the commit before the change, e.g.
``mkdir /tmp/rk-old && git archive ba2a2bf | tar -x -C /tmp/rk-old``):

    python benchmarks/bench_transcendental.py --old /tmp/rk-old [--rounds 3] [--parts 1,2,3]
"""
import argparse
import os
import statistics
import sys
import time

import numpy as np

from common import TIMING_BODY, table, time_in_subprocess

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# ------------------------------------------------------------------------------------------------
# 1. throughput
# ------------------------------------------------------------------------------------------------

def _median_time(fn, repeats=7, best=False):
    """Median wall time of ``repeats`` calls after one warm-up (``best``: the minimum instead --
    a machine's throughput limit is its best case, and the minimum is what load cannot inflate)."""
    fn()
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return min(ts) if best else statistics.median(ts)


def throughput():
    """{name: (ns per double streamed, ns per double in L1)}; 'flop': ns per flop in L1."""
    import math

    import numba
    import scipy.special as sc

    sys.path.insert(0, HERE)
    from reskernels.numerics import fastmath as fm

    rng = np.random.default_rng(0)
    big = rng.uniform(-1, 1, 10 ** 7)
    small = big[:4096].copy()
    ob, osm = np.empty_like(big), np.empty_like(small)
    reps = 500

    @numba.njit(cache=False, fastmath=False, error_model="numpy")
    def libm_loop(x, o, n):
        for _ in range(n):
            for i in range(x.shape[0]):
                o[i] = math.acos(x[i])

    @numba.njit(cache=False, fastmath=False, error_model="numpy")
    def poly_loop(x, o, n):
        for _ in range(n):
            for i in range(x.shape[0]):
                o[i] = fm.acos(x[i])

    @numba.njit(cache=False, fastmath=False, error_model="numpy")
    def fma_loop(x, o, n):          # 2 flops per element and pass
        for _ in range(n):
            for i in range(x.shape[0]):
                o[i] = o[i] * 0.999 + x[i]

    out = {}
    ufuncs = [("np.arccos", np.arccos), ("np.arcsin", np.arcsin), ("np.sqrt", np.sqrt),
              ("np.exp", np.exp), ("np.sin", np.sin), ("scipy erf", sc.erf)]
    for name, f in ufuncs:
        xb, xs = (np.abs(big), np.abs(small)) if f is np.sqrt else (big, small)
        tb = _median_time(lambda: f(xb, out=ob), 3, True) / big.size
        ts = _median_time(lambda: [f(xs, out=osm) for _ in range(reps)], 9, True) / (reps * small.size)
        out[name] = (tb * 1e9, ts * 1e9)
    for name, loop in (("numba libm acos", libm_loop), ("numba fastmath.acos", poly_loop)):
        tb = _median_time(lambda: loop(big, ob, 1), 3, True) / big.size
        ts = _median_time(lambda: loop(small, osm, reps), 9, True) / (reps * small.size)
        out[name] = (tb * 1e9, ts * 1e9)
    osm[:] = 0.0
    out["flop"] = (None, _median_time(lambda: fma_loop(small, osm, reps * 4), 9, True) / (reps * 4 * small.size * 2) * 1e9)
    return out


# ------------------------------------------------------------------------------------------------
# 2. engines vs their limit
# ------------------------------------------------------------------------------------------------

def _patch_flops(q_h, q_w):
    """adds and scalings of the separable patch operator per entry (a single tap is a copy)."""
    return sum(q for q in (q_h, q_w) if q > 1)


PHI_FLOPS = 16   # sqrt, divide, two clips, snap, pi - theta, sqrt(1 - r^2), products and quotients


def flops_per_entry(arch, kind, H, W):
    """Arithmetic per (pair, offset, position) entry of the lowered program, without the
    transcendental (counted apart): stem products, patch taps, the dual's algebra, the NTK
    updates (a lower bound: loads, stores and index arithmetic are not counted)."""
    from reskernels.theory import layers as _L
    ntk = kind == "ntk"
    one_d = H == 1

    def taps(q):
        return (1 if one_d else q), q

    total = 0
    for m in arch.kernel_maps():
        if isinstance(m, _L.Stem):
            total += 2 * 3 + _patch_flops(*taps(m.stem_size)) + 1
        elif isinstance(m, _L.Nonlinear):
            pf = _patch_flops(*taps(m.filter_size))
            total += PHI_FLOPS + pf + 2 + (2 + pf if ntk else 0)
        elif isinstance(m, _L.Block):
            pf = _patch_flops(*taps(m.filter_size))
            total += PHI_FLOPS + 2 * pf + 3 + (2 * pf + 6 if ntk else 0)
        elif isinstance(m, _L.Linear):
            total += 1 if ntk else 0
    return total + 1   # readout


CASES = [  # (name, setup, call, kind: conv / fc, arch expression, n, (H, W), readout offsets)
    ("conv ResCNN(3, 0.5) gap n=64 8x8x3 ntk", "X = rng.standard_normal((64, 8, 8, 3))",
     "gram(ResCNN(3, 0.5), X, memory_budget=2**30, backend='numba', n_threads=1)", "conv", "ResCNN(3, 0.5)", 64, (8, 8), 64),
    ("conv CNN(4) gap n=64 8x8x3 ntk", "X = rng.standard_normal((64, 8, 8, 3))",
     "gram(CNN(4), X, memory_budget=2**30, backend='numba', n_threads=1)", "conv", "CNN(4)", 64, (8, 8), 64),
    ("conv ResCNN(3, 0.5) flatten n=256 8x8x3 ntk", "X = rng.standard_normal((256, 8, 8, 3))",
     "gram(ResCNN(3, 0.5, readout='flatten'), X, memory_budget=2**30, backend='numba', n_threads=1)", "conv",
     "ResCNN(3, 0.5, readout='flatten')", 256, (8, 8), 1),
    ("FC ResNet(10, 0.5) n=1000 ntk", "X = rng.standard_normal((1000, 16))",
     "gram(ResNet(10, 0.5), X, n_threads=1)", "fc", "ResNet(10, 0.5)", 1000, None, None),
]

BODY = """
import sys
sys.path.insert(0, {root!r})
from reskernels import MLP, ResNet, CNN, ResCNN, gram
""" + TIMING_BODY


def _run(root, setup, call, repeats, env=None):
    e = dict(os.environ)
    e.update(env or {})
    e["PYTHONPATH"] = root
    return time_in_subprocess(BODY.format(root=root, setup=setup, call=call, repeats=repeats), cwd=root, env=e)


def engines(old, rounds, tp):
    sys.path.insert(0, HERE)
    from reskernels import CNN, ResCNN, ResNet  # noqa: F401  (eval of the case's arch)
    t_acos = min(tp["np.arccos"][1], tp["numba fastmath.acos"][1]) * 1e-9
    t_asin = tp["np.arcsin"][1] * 1e-9
    t_flop = tp["flop"][1] * 1e-9
    rows = []
    for name, setup, call, kind, arch_src, n, grid, R in CASES:
        arch = eval(arch_src)
        pairs = n * (n + 1) // 2
        duals = arch.depth
        if kind == "conv":
            H, W = grid
            entries = pairs * R * H * W
            calls = entries * duals
            t_lim = calls * t_acos
            flops = entries * flops_per_entry(arch, "ntk", H, W)
        else:
            calls = pairs * duals
            t_lim = calls * t_asin
            flops = pairs * duals * 30      # the half-angle step: ~30 flops per layer
        a_lim = t_lim + flops * t_flop
        times = {"old": [], "new": [], "new, libm acos": []}
        for _ in range(rounds):
            times["old"] += _run(old, setup, call, 3)
            times["new"] += _run(HERE, setup, call, 3)
            if kind == "conv":
                times["new, libm acos"] += _run(HERE, setup, call, 3, {"RESKERNELS_ACOS": "libm"})
        mo, mn = statistics.median(times["old"]), statistics.median(times["new"])
        ml = statistics.median(times["new, libm acos"]) if times["new, libm acos"] else float("nan")
        rows.append((name, f"{calls / 1e6:.1f}M", f"{flops / calls:.0f}", f"{mo:.3f}", f"{ml:.3f}", f"{mn:.3f}",
                     f"{mo / mn:.2f}x", f"{t_lim:.3f}", f"{mn / t_lim:.1f}", f"{a_lim:.3f}", f"{mn / a_lim:.1f}"))
        print(rows[-1], flush=True)
    return table(rows, ("case (1 thread)", "transcendental calls", "flops / call", "before (s)",
                        "after, libm acos (s)", "after (s)", "speed-up", "transcendental limit (s)",
                        "after / limit", "arith + transc. limit (s)", "after / arith limit"))


# ------------------------------------------------------------------------------------------------
# 3. activations vs ReLU
# ------------------------------------------------------------------------------------------------

def activations(repeats=5):
    sys.path.insert(0, HERE)
    from reskernels import ResCNN, ResNet, gram
    from reskernels.numerics.conv import ConvGramPlan
    from reskernels.theory import activations as A
    acts = [("relu", "relu", 0.0), ("relu + bias 0.1", "relu", 0.1), ("leaky_relu(0.1)", A.leaky_relu(0.1), 0.0),
            ("abs", "abs", 0.0), ("step", "step", 0.0), ("erf", "erf", 0.0), ("sin", "sin", 0.0), ("cos", "cos", 0.0),
            ("monomial(2)", A.monomial(2), 0.0), ("rectified_monomial(2)", A.rectified_monomial(2), 0.0),
            ("gelu", "gelu", 0.0), ("tanh", "tanh", 0.0),
            ("user (from_function)", A.from_function(np.tanh, lambda x: 1 - np.tanh(x) ** 2, name="user"), 0.0)]
    rng = np.random.default_rng(0)
    rows, base = [], {}
    for name, act, b in acts:
        closed = A.get(act).closed_form
        # quadrature duals cost ~1e5 x more per entry: timed on fewer inputs, compared per pair
        n_fc, n_c2, n_c3 = (1000, 16, 64) if closed else (10, 2, 2)
        X = rng.standard_normal((n_fc, 16))
        X2 = rng.standard_normal((n_c2, 6, 6, 3))
        X3 = rng.standard_normal((n_c3, 8, 8, 3))
        fc = ResNet(10, 0.5, input_var=0.01, activation=act, bias_var=b)
        c2 = ResCNN(2, 0.5, input_var=0.01, activation=act, bias_var=b)
        c3 = ResCNN(3, 0.5, input_var=0.01, activation=act, bias_var=b)
        res = []
        for key, f, n in (("fc", lambda: gram(fc, X), n_fc), ("c2", lambda: gram(c2, X2), n_c2),
                          ("c3", lambda: gram(c3, X3), n_c3)):
            with np.errstate(all="ignore"):
                t = _median_time(f, repeats if closed else 1, best=True) / (n * (n + 1) // 2)     # per pair
            base.setdefault(key, t)
            res.append(t)
        engine = ConvGramPlan(c2, X2[:1]).backend
        rows.append((name, f"{res[0] * 1e6:.3g}", f"{res[0] / base['fc']:.3g}", engine,
                     f"{res[1] * 1e6:.3g}", f"{res[1] / base['c2']:.3g}", f"{res[2] * 1e6:.3g}",
                     f"{res[2] / base['c3']:.3g}", "2x" if closed else "5x"))
        print(rows[-1], flush=True)
    return table(rows, ("activation", "FC ResNet(10) n=1000 us / pair", "/ ReLU", "conv backend",
                        "conv ResCNN(2) gap 6x6x3 n=16 us / pair", "/ ReLU",
                        "conv ResCNN(3) gap 8x8x3 n=64 us / pair", "/ ReLU", "target"))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--old", help="a checkout of the code before the change (part 2)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--parts", default="1,2,3")
    ap.add_argument("--repeats", type=int, default=5, help="part 3: best of this many calls per case")
    args = ap.parse_args()
    parts = set(args.parts.split(","))
    tp = throughput() if parts & {"1", "2"} else None
    if "1" in parts:
        rows = [(k, "" if v[0] is None else f"{v[0]:.2f}", f"{v[1]:.3f}") for k, v in tp.items()]
        print(table(rows, ("function", "ns / double (1e7 streamed)", "ns / double (4096 in L1)")), flush=True)
    if "2" in parts:
        if not args.old:
            ap.error("part 2 needs --old")
        print(engines(args.old, args.rounds, tp), flush=True)
    if "3" in parts:
        print(activations(args.repeats), flush=True)


if __name__ == "__main__":
    main()

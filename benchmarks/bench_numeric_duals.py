"""Benchmark: activations without a closed-form dual (tanh, a user function, GELU) against ReLU on
the same spec, side by side in one run (issue 15).

FC ResNet(10, 0.5, input_var=0.01) on n standard-normal inputs in R^16 and conv ResCNN(2, 0.5,
input_var=0.01) gap on n 6x6x3 images (``--sphere``: the FC inputs normalised to the unit sphere and
every image pixel to the unit sphere of its channels, the multi-sphere, where every input meets a
dual with the same variance and the compiled loops read tables in rho, numerics/rho_tables.py) (``--input-var 1``: the default, variances 10-100 in the FC
layers, where tanh needs the fine rules of the coefficient ladder).  FC on every backend of
``--backends`` (default both: "numpy", the interpreter, tile by tile, which was also the default
route of tanh, GELU and user functions before numerics/fc_series.py; "auto", gram's default: the
compiled FC loop, ReLU's half-angle loop and the others' variance-carrying loop with their Hermite
series), conv likewise ("numpy": the interpreter, which was the conv route of tanh, GELU and user
functions before their series ran in the compiled conv loop; "auto": gram's default, the compiled
loops); ``--threads`` (default: all); median of ``--repeats`` calls after
one warm-up call (the warm-up also fills the Hermite coefficient cache of numerics/hermite.py, which
a later Gram matrix of the same inputs reuses, and the tables in rho numerics/rho_tables.py keeps:
pass ``--cold`` to clear both before every timed call).
Printed: time per pair (n (n + 1) / 2 pairs) and the ratio to ReLU on the same route, and to
ReLU's compiled loop (the target's reference).

    python benchmarks/bench_numeric_duals.py [--n-fc 1000] [--n-conv 16] [--repeats 3] [--cold] [--input-var 0.01]
                                             [--backends numpy auto] [--threads 1] [--sphere] [--no-conv]
"""
import argparse
import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from common import table  # noqa: E402


def _median(fn, repeats, before=None):
    fn()
    ts = []
    for _ in range(repeats):
        if before is not None:
            before()
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--n-fc", type=int, default=1000)
    ap.add_argument("--n-conv", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--input-var", type=float, default=0.01)
    ap.add_argument("--cold", action="store_true", help="clear the coefficient cache and the kept tables before each call")
    ap.add_argument("--backends", nargs="+", default=["numpy", "auto"], choices=["numpy", "auto"])
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--sphere", action="store_true", help="FC inputs on the unit sphere, image pixels on the multi-sphere")
    ap.add_argument("--no-conv", action="store_true", help="FC only")
    args = ap.parse_args(argv)
    from reskernels import ResCNN, ResNet, gram
    from reskernels.numerics import hermite
    from reskernels.theory import activations as A
    acts = [("relu", "relu"), ("tanh", "tanh"),
            ("user (from_function tanh)", A.from_function(np.tanh, lambda x: 1 - np.tanh(x) ** 2, name="user")),
            ("gelu", "gelu")]
    rng = np.random.default_rng(0)
    X = rng.standard_normal((args.n_fc, 16))
    if args.sphere:
        X /= np.linalg.norm(X, axis=1, keepdims=True)
    Xc = rng.standard_normal((args.n_conv, 6, 6, 3))
    if args.sphere:
        Xc /= np.linalg.norm(Xc, axis=-1, keepdims=True)
    from reskernels.numerics import rho_tables

    def clear():
        hermite._cache.clear()
        rho_tables._table_kept.cache_clear()
    before = clear if args.cold else None
    pairs = lambda n: n * (n + 1) // 2
    times = {}                                      # (activation, route) -> seconds per pair
    for name, act in acts:
        fc = ResNet(10, 0.5, input_var=args.input_var, activation=act)
        conv = ResCNN(2, 0.5, input_var=args.input_var, activation=act)
        with np.errstate(all="ignore"):
            for be in args.backends:
                times[name, be] = _median(lambda: gram(fc, X, backend=be, n_threads=args.threads), args.repeats,
                                          before) / pairs(args.n_fc)
            for be in [] if args.no_conv else args.backends:
                times[name, "conv " + be] = _median(lambda: gram(conv, Xc, backend=be, n_threads=args.threads),
                                                    args.repeats, before) / pairs(args.n_conv)
        print(name, {k[1]: f"{v * 1e6:.3g} us" for k, v in times.items() if k[0] == name}, flush=True)
    ref = times.get(("relu", "auto"))               # ReLU's compiled half-angle loop
    rows = []
    for name, _ in acts:
        row = [name]
        for be in args.backends:
            t = times[name, be]
            row += [f"{t * 1e6:.3g}", f"{t / times['relu', be]:.3g}"
                    + ("" if ref is None or be == "auto" else f" ({t / ref:.3g} of the compiled ReLU)")]
        cref = times.get(("relu", "conv auto"))       # ReLU's compiled conv loop
        for be in [] if args.no_conv else args.backends:
            t = times[name, "conv " + be]
            row += [f"{t * 1e6:.3g}", f"{t / times['relu', 'conv ' + be]:.3g}"
                    + ("" if cref is None or be == "auto" else f" ({t / cref:.3g} of the compiled ReLU)")]
        rows.append(tuple(row))
    header = ["activation"]
    for be in args.backends:
        header += [f"FC ResNet(10) n={args.n_fc}{' sphere' if args.sphere else ''} {be} us / pair", "/ ReLU"]
    for be in [] if args.no_conv else args.backends:
        header += [f"conv ResCNN(2) gap 6x6x3 n={args.n_conv}{' multi-sphere' if args.sphere else ''} {be} us / pair",
                   "/ ReLU"]
    print(table(rows, tuple(header)))


if __name__ == "__main__":
    main()

"""Benchmark: activations without a closed-form dual (tanh, a user function, GELU) against ReLU on
the same spec, side by side in one run (issue 15).

FC ResNet(10, 0.5, input_var=0.01) on n standard-normal inputs in R^16 and conv ResCNN(2, 0.5,
input_var=0.01) gap on n 6x6x3 images (``--input-var 1``: the default, variances 10-100 in the FC
layers, where tanh needs the fine rules of the coefficient ladder), numpy backend, default threads; median of ``--repeats``
calls after one warm-up call (the warm-up also fills the Hermite coefficient cache of
numerics/hermite.py, which a later Gram matrix of the same inputs reuses: pass ``--cold`` to clear
it before every timed call).  Printed: time per pair (n (n + 1) / 2 pairs) and the ratio to ReLU.

    python benchmarks/bench_numeric_duals.py [--n-fc 1000] [--n-conv 16] [--repeats 3] [--cold] [--input-var 0.01]
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
    ap.add_argument("--cold", action="store_true", help="clear the coefficient cache before each call")
    args = ap.parse_args(argv)
    from reskernels import ResCNN, ResNet, gram
    from reskernels.numerics import hermite
    from reskernels.theory import activations as A
    acts = [("relu", "relu"), ("tanh", "tanh"),
            ("user (from_function tanh)", A.from_function(np.tanh, lambda x: 1 - np.tanh(x) ** 2, name="user")),
            ("gelu", "gelu")]
    rng = np.random.default_rng(0)
    X = rng.standard_normal((args.n_fc, 16))
    Xc = rng.standard_normal((args.n_conv, 6, 6, 3))
    before = hermite._cache.clear if args.cold else None
    rows, base = [], {}
    for name, act in acts:
        res = []
        for key, arch, data in (("fc", ResNet(10, 0.5, input_var=args.input_var, activation=act), X),
                                ("conv", ResCNN(2, 0.5, input_var=args.input_var, activation=act), Xc)):
            n = data.shape[0]
            with np.errstate(all="ignore"):
                t = _median(lambda: gram(arch, data, backend="numpy"), args.repeats, before) / (n * (n + 1) // 2)
            base.setdefault(key, t)
            res.append(t)
        rows.append((name, f"{res[0] * 1e6:.3g}", f"{res[0] / base['fc']:.3g}",
                     f"{res[1] * 1e6:.3g}", f"{res[1] / base['conv']:.3g}"))
        print(rows[-1], flush=True)
    print(table(rows, ("activation", f"FC ResNet(10) n={args.n_fc} us / pair", "/ ReLU",
                       f"conv ResCNN(2) gap 6x6x3 n={args.n_conv} us / pair", "/ ReLU")))


if __name__ == "__main__":
    main()

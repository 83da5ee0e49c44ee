"""Benchmark: closed-form activations on the fully connected variance-carrying interpreter against
ReLU on the same spec (issues 13 and 15: within 2x of ReLU).

FC ResNet(10, 0.5, input_var=0.01) NTK on n standard-normal inputs in R^16, default threads.  Each
activation twice: backend "auto" (the closed-form duals in the compiled per-entry loop of
numerics.variance.CompiledDualContext when numba is installed) and backend "numpy" (the numpy
formulas); ReLU without a bias runs on the half-angle engine either way.  Rounds alternate the
activations; printed: the median over rounds of the best of ``--repeats`` calls, and the ratio to
ReLU's in the same run.

    python benchmarks/bench_fc_activations.py [--n 1000] [--rounds 3] [--repeats 3]
"""
import argparse
import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from common import table  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)
    from reskernels import ResNet, gram
    from reskernels.theory import activations as A
    acts = [("relu", "relu", 0.0), ("relu + bias 0.1", "relu", 0.1), ("leaky_relu(0.1)", A.leaky_relu(0.1), 0.0),
            ("abs", "abs", 0.0), ("step", "step", 0.0), ("erf", "erf", 0.0), ("sin", "sin", 0.0),
            ("cos", "cos", 0.0), ("monomial(2)", A.monomial(2), 0.0),
            ("rectified_monomial(2)", A.rectified_monomial(2), 0.0)]
    X = np.random.default_rng(0).standard_normal((args.n, 16))
    times = {(name, b): [] for name, _, _ in acts for b in ("auto", "numpy")}
    for _ in range(args.rounds):
        for name, act, bias in acts:
            arch = ResNet(10, 0.5, activation=act, input_var=0.01, bias_var=bias)
            for b in ("auto", "numpy"):
                with np.errstate(all="ignore"):
                    gram(arch, X, backend=b)
                    best = min(_time(lambda: gram(arch, X, backend=b)) for _ in range(args.repeats))
                times[(name, b)].append(best)
    med = {k: statistics.median(v) for k, v in times.items()}
    rows = []
    for name, _, _ in acts:
        ra, rn = med[(name, "auto")] / med[("relu", "auto")], med[(name, "numpy")] / med[("relu", "numpy")]
        rows.append((name, f"{med[(name, 'auto')]:.3f}", f"{ra:.2f}", f"{med[(name, 'numpy')]:.3f}", f"{rn:.2f}"))
    print(table(rows, ("activation", f"auto (s), n={args.n}", "/ ReLU", "numpy (s)", "/ ReLU")))


def _time(fn):
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


if __name__ == "__main__":
    main()

"""Benchmark: the code before and after a refactor, side by side in one run.

Runs every case of bench_gram_fc.py, bench_gram_conv.py and bench_spectra.py in fresh subprocesses,
alternating the old checkout and this one (old, new, old, new, ...) so that both see the same
machine load, and reports the median time of each with the ratio new / old.

    git worktree add /tmp/reskernels-old 0bd2f16       # the commit before the kernel-step refactor
    python benchmarks/bench_refactor.py --old /tmp/reskernels-old [--rounds 3] [--skip-large]

The old checkout is imported with its own layout (top-level ``theory`` / ``numerics`` packages);
this checkout as the installed ``reskernels`` package.  Warm-up calls (numba compilation, node
caches) are excluded from the timings.
"""
import argparse
import statistics

from common import TIMING_BODY, table, time_in_subprocess

OLD_IMPORTS = """
import sys; sys.path.insert(0, {old!r})
from theory import MLP, ResNet, CNN, ResCNN
from numerics import gram
from numerics.spectra import eigenvalues
"""
NEW_IMPORTS = """
from reskernels import MLP, ResNet, CNN, ResCNN, gram, eigenvalues
"""
BODY = TIMING_BODY

CASES = [  # (name, setup, call, repeats per subprocess)
    ("FC ResNet(10, 0.5) ntk n=1000", "X = rng.standard_normal((1000, 16))", "gram(ResNet(10, 0.5), X)", 5),
    ("FC ResNet(10, 0.5) ntk n=2000", "X = rng.standard_normal((2000, 16))", "gram(ResNet(10, 0.5), X)", 3),
    ("FC MLP(10) ntk n=2000", "X = rng.standard_normal((2000, 16))", "gram(MLP(10), X)", 3),
    ("conv ResCNN(3, 0.5) gap n=64 numba", "X = rng.standard_normal((64, 8, 8, 3))",
     "gram(ResCNN(3, 0.5), X, memory_budget=2**30, backend='numba')", 3),
    ("conv CNN(4) gap n=64 numba", "X = rng.standard_normal((64, 8, 8, 3))",
     "gram(CNN(4), X, memory_budget=2**30, backend='numba')", 3),
    ("conv ResCNN(3, 0.5) gap n=64 numpy", "X = rng.standard_normal((64, 8, 8, 3))",
     "gram(ResCNN(3, 0.5), X, memory_budget=2**30, backend='numpy')", 3),
    ("conv ResCNN(3, 0.5) flatten n=256 numba", "X = rng.standard_normal((256, 8, 8, 3))",
     "gram(ResCNN(3, 0.5, readout='flatten'), X, memory_budget=2**30, backend='numba')", 5),
    ("conv ResCNN(3, 0.5) flatten n=256 numpy", "X = rng.standard_normal((256, 8, 8, 3))",
     "gram(ResCNN(3, 0.5, readout='flatten'), X, memory_budget=2**30, backend='numpy')", 3),
    ("spectra ResNet(4, 0.5) S^2 k<=200 dps 40", "",
     "eigenvalues(ResNet(4, 0.5), 'ntk', d=3, ks=range(201), dps=40)", 1),
    ("spectra ResNet(4, 0.5) S^5 k<=200 dps 40", "",
     "eigenvalues(ResNet(4, 0.5), 'ntk', d=6, ks=range(201), dps=40)", 1),
]
LARGE = [
    ("conv ResCNN(3, 0.5) gap n=256 numba", "X = rng.standard_normal((256, 8, 8, 3))",
     "gram(ResCNN(3, 0.5), X, memory_budget=2**30, backend='numba')", 1),
    ("spectra ResNet(4, 0.5) S^2 k<=1000 dps 30", "",
     "eigenvalues(ResNet(4, 0.5), 'ntk', d=3, ks=range(1001), dps=30)", 1),
]


def run(imports, setup, call, repeats):
    return time_in_subprocess(imports + BODY.format(setup=setup, call=call, repeats=repeats), cwd="/")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--old", required=True, help="a checkout of the code before the change")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--skip-large", action="store_true")
    ap.add_argument("--only", default="", help="run the cases whose name contains this text")
    args = ap.parse_args()
    rows = []
    for name, setup, call, reps in CASES + ([] if args.skip_large else LARGE):
        if args.only not in name:
            continue
        old, new = [], []
        for _ in range(args.rounds):
            old += run(OLD_IMPORTS.format(old=args.old), setup, call, reps)
            new += run(NEW_IMPORTS, setup, call, reps)
        mo, mn = statistics.median(old), statistics.median(new)
        rows.append((name, f"{mo:.3f}", f"{mn:.3f}", f"{mn / mo:.3f}"))
        print(rows[-1], flush=True)
    print(table(rows, ("case", "before (s)", "after (s)", "after / before")))


if __name__ == "__main__":
    main()

"""reskernels against neural-tangents side by side: the speed targets of the transcendental-limit issue.

neural-tangents is not a dependency of reskernels (0.6.5 needs jax 0.4.x and pulls in TensorFlow), so
this benchmark runs in an environment of its own::

    python -m venv nt && nt/bin/pip install "jax[cpu]==0.4.30" "neural-tangents==0.6.5" ".[fast]"
    nt/bin/python benchmarks/bench_vs_neural_tangents.py [--cases fc gap64 ...] [--repeats 3]

Each (case, library) runs in a fresh subprocess: imports, inputs, one warm-up call (jax's jit
compilation, numba's compilation), then ``repeats`` timed calls; the time is their median.  Memory,
two ways: the first call's peak resident size minus the size after the imports and the inputs
(``ru_maxrss``: what compilation and loading compiled code allocate included), and the steady state:
the resident size sampled every millisecond during one more call, after the timed ones, minus the
size before it (the computation's own buffers; XLA's included, which tracemalloc does not see).  The stax networks are those of docs/neural_tangents.md (float64 enabled
before any array is created), and every case also reports how far the two Gram matrices are apart:
max |K_nt - K_rk| / max |K_rk|, on the diagonal and off it (the docs' "Checking one against the other",
run).

Targets (issue text): FC ResNet(10) NTK n = 2000, d = 16: <= 0.2x neural-tangents' time at <= 1/8 of
its memory; ResCNN(3, 0.5) gap n = 64 and 256 on 8x8x3: <= 0.05x; flatten n = 256: <= 0.1x.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

CASES = {
    # name: (spec expression, n, input shape without n, NT batch size or None)
    "fc": ("ResNet(10, 0.5)", 2000, (16,), None),
    "gap64": ("ResCNN(3, 0.5, readout='gap')", 64, (8, 8, 3), None),
    "gap256": ("ResCNN(3, 0.5, readout='gap')", 256, (8, 8, 3), 64),
    "flatten256": ("ResCNN(3, 0.5, readout='flatten')", 256, (8, 8, 3), None),
}

_CHILD = r'''
import json, resource, statistics, sys, time
import numpy as np
lib, spec, n, shape, repeats, batch = sys.argv[1], sys.argv[2], int(sys.argv[3]), tuple(json.loads(sys.argv[4])), int(sys.argv[5]), json.loads(sys.argv[6])
rng = np.random.default_rng(0)
X = rng.standard_normal((n,) + shape)
if len(shape) == 1:
    X /= np.linalg.norm(X, axis=1, keepdims=True)
from reskernels import ResNet, ResCNN, gram
arch = eval(spec)
if lib == "nt":
    import jax
    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    import neural_tangents as nt
    from neural_tangents import stax
    W = 512
    if not arch.is_conv:
        def block(a):
            branch = stax.serial(stax.Dense(W, W_std=arch.weight_var ** 0.5), stax.Relu(), stax.Dense(W, W_std=a))
            return stax.serial(stax.FanOut(2), stax.parallel(branch, stax.Identity()), stax.FanInSum())
        net = stax.serial(stax.Dense(W, W_std=(arch.input_var * shape[0]) ** 0.5),
                          *[block(arch.alpha) for _ in range(arch.depth)], stax.Dense(1, W_std=1.0))
    else:
        def conv(s, q):
            return stax.Conv(W, (q, q), padding="CIRCULAR", W_std=s)
        def block(a):
            branch = stax.serial(conv(arch.weight_var ** 0.5, arch.filter_size), stax.Relu(), conv(a, arch.filter_size))
            return stax.serial(stax.FanOut(2), stax.parallel(branch, stax.Identity()), stax.FanInSum())
        pool = {"gap": stax.GlobalAvgPool(), "flatten": stax.Flatten()}[arch.readout]
        net = stax.serial(conv((arch.input_var * shape[-1]) ** 0.5, arch.stem_size),
                          *[block(arch.alpha) for _ in range(arch.depth)], pool, stax.Dense(1, W_std=1.0))
    kernel_fn = jax.jit(net[2], static_argnames=("get",))
    if batch:
        kernel_fn = nt.batch(net[2], batch_size=batch, store_on_device=False)
    Xj = jnp.asarray(X)
    def run():
        return np.asarray(jax.block_until_ready(kernel_fn(Xj, None, "ntk")))
else:
    def run():
        return gram(arch, X, kind="ntk")
import os, threading
page = os.sysconf("SC_PAGE_SIZE")
def rss():
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * page
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t0 = time.perf_counter(); K = run(); first = time.perf_counter() - t0
peak_first = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
del K
times = []
for _ in range(repeats):
    t0 = time.perf_counter(); K = run(); times.append(time.perf_counter() - t0)
del K
# steady state: one more call with the resident size sampled every millisecond, minus the size before
# (apart from the timed calls: the sampling thread would take the GIL from the executor's threads)
steady0 = rss()
top = [steady0]
stop = threading.Event()
def sample():
    while not stop.is_set():
        top[0] = max(top[0], rss())
        time.sleep(0.001)
th = threading.Thread(target=sample, daemon=True)
th.start()
K = run()
stop.set(); th.join()
np.save(sys.argv[7], K)
print(json.dumps({"median_s": statistics.median(times), "times": times, "first_s": first,
                  "mem_mb": (peak_first - base) / 1024, "steady_mb": (top[0] - steady0) / 2**20,
                  "rss_mb": peak_first / 1024}))
'''


def run_case(lib, name, repeats, tmp):
    spec, n, shape, batch = CASES[name]
    out = os.path.join(tmp, f"{name}_{lib}.npy")
    r = subprocess.run([sys.executable, "-c", _CHILD, lib, spec, str(n), json.dumps(list(shape)), str(repeats),
                        json.dumps(batch if lib == "nt" else None), out], capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"{name} / {lib} failed:\n{r.stderr[-3000:]}")
    res = json.loads(r.stdout.strip().splitlines()[-1])
    res["K"] = out
    return res


def main():
    import tempfile

    import numpy as np
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--json", help="write the rows here")
    a = p.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in a.cases:
            nt_ = run_case("nt", name, a.repeats, tmp)
            rk = run_case("rk", name, a.repeats, tmp)
            Knt, Krk = np.load(nt_["K"]), np.load(rk["K"])
            rel = np.abs(Knt - Krk) / np.max(np.abs(Krk))
            diff = float(np.max(rel))
            off = rel.copy()
            np.fill_diagonal(off, 0.0)
            diag_diff = float(np.max(np.diag(rel)))
            row = {"case": name, "spec": CASES[name][0], "n": CASES[name][1], "nt_batch": CASES[name][3],
                   "nt_s": nt_["median_s"], "rk_s": rk["median_s"], "time_ratio": rk["median_s"] / nt_["median_s"],
                   "nt_mem_mb": nt_["mem_mb"], "rk_mem_mb": rk["mem_mb"],
                   "mem_ratio": rk["mem_mb"] / nt_["mem_mb"] if nt_["mem_mb"] > 0 else None,
                   "nt_steady_mb": nt_["steady_mb"], "rk_steady_mb": rk["steady_mb"],
                   "steady_ratio": rk["steady_mb"] / nt_["steady_mb"] if nt_["steady_mb"] > 0 else None,
                   "nt_first_s": nt_["first_s"], "rk_first_s": rk["first_s"], "max_rel_diff": diff,
                   "max_rel_diff_diagonal": diag_diff, "max_rel_diff_off_diagonal": float(np.max(off))}
            rows.append(row)
            print(json.dumps(row), flush=True)
    print("\n| case | n | neural-tangents (s) | reskernels (s) | time ratio | memory, first call: NT / reskernels "
          "(MB) | ratio | memory, steady: NT / reskernels (MB) | ratio | max rel. difference (diagonal / "
          "off-diagonal) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        mr = "-" if r["mem_ratio"] is None else f"{r['mem_ratio']:.3f}"
        sr = "-" if r["steady_ratio"] is None else f"{r['steady_ratio']:.3f}"
        print(f"| {r['spec']} | {r['n']} | {r['nt_s']:.3f} | {r['rk_s']:.3f} | {r['time_ratio']:.3f} | "
              f"{r['nt_mem_mb']:.0f} / {r['rk_mem_mb']:.0f} | {mr} | {r['nt_steady_mb']:.0f} / {r['rk_steady_mb']:.0f} "
              f"| {sr} | {r['max_rel_diff_diagonal']:.1e} / {r['max_rel_diff_off_diagonal']:.1e} |")
    if a.json:
        with open(a.json, "w") as fh:
            json.dump(rows, fh, indent=1)


if __name__ == "__main__":
    main()

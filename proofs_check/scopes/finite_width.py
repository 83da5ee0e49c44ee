"""Scope maps of the finite-width claims: LITTWIN-MLP-DEPTH, LITTWIN-DENSENET, LITTWIN-DENSENET-PARAMS
(fluctuations of the NTK at initialisation), HUANG-KERNEL-REGIME (the finite network's NTK against
its limit) and TIRER-STABLE-TRAINING (the NTK's drift under gradient descent).

The conventions these papers leave open (docs/papers.md, the entries marked [unknown]):
the parameterisation (NTK or standard), which tensors are trained, the branch scale alpha (fixed,
L^-1/2, L^-1), the depth and width ranges, and, for "independent of depth", how small a change
counts as none.  Every margin comes from the finite-width engines (:mod:`numerics.montecarlo`,
:mod:`numerics.training`) and carries its Monte Carlo error (a 90% bootstrap interval, or the
Student-t 90% interval of a mean) as ``"margin error"``, so that a point the samples cannot resolve is a tie.

Standard parameterisation.  A tensor of the NTK-parameterised network is P ~ N(0, 1) entering as
W = sqrt(s2) P; its gradient factor (:func:`numerics.montecarlo.gradient_factors`) is
df/dP = sqrt(s2) delta a^T, so its NTK part is s2 (delta delta^T) o (a a^T).  The same network in the
standard parameterisation trains W ~ N(0, s2) itself: df/dW = delta a^T and its NTK part is
(delta delta^T) o (a a^T) [derived] (the standard-parameterisation NTK of Sohl-Dickstein, Novak,
Schoenholz and Lee 2020, arXiv 2001.07301 [recalled]).  The function at initialisation is the same;
only the gradient geometry (one learning rate per tensor, 1 / s2) differs.
"""
from __future__ import annotations

import zlib
from functools import lru_cache

import numpy as np

from reskernels.theory import DenseNet, MLP, ResNet

from ..scope import Axis, scope_map
from .data import ALPHA_SCALINGS

N_INIT = 200          # initialisations per network for CV^2 (as LITTWIN-CV-RESNET's quick mode)
N_BOOT = 500          # bootstrap replicates
PARAMETERISATIONS = ("ntk", "standard")
TRAINED = ("all", "hidden")


def _seed(text: str) -> int:
    return zlib.crc32(text.encode())


# --------------------------------------------------------------------------- shared statistics

@lru_cache(maxsize=128)
def theta_diag_variants(arch, width: int, n_init: int, seed: int) -> dict:
    """Theta(x, x) at ``n_init`` initialisations (generators ``default_rng([seed, i])``) of the finite
    network, x = e_1 in R^8, for both parameterisations and both trained sets:
    ``{(parameterisation, trained): (n_init,) array}``.

    One forward/backward pass per initialisation gives every variant: a tensor's part of Theta(x, x)
    is s2 |delta|^2 |a|^2 (NTK parameterisation) or |delta|^2 |a|^2 (standard), summed over every
    tensor (trained = "all") or the hidden ones (module doc)."""
    from reskernels.numerics.montecarlo import gradient_factors, init_params
    x = np.zeros((1, 8))
    x[0, 0] = 1.0
    out = {(pz, tr): np.empty(n_init) for pz in PARAMETERISATIONS for tr in TRAINED}
    for i in range(n_init):
        params = init_params(arch, 8, int(width), np.random.default_rng([seed, i]))
        _, factors, _ = gradient_factors(arch, params, x)
        acc = dict.fromkeys(out, 0.0)
        for name, s2, delta, a in factors:
            g = float(np.sum(delta * delta) * np.sum(a * a))
            for tr in TRAINED:
                if tr == "all" or name == "hidden":
                    acc[("ntk", tr)] += s2 * g
                    acc[("standard", tr)] += g
        for k in out:
            out[k][i] = acc[k]
    return out


def cv2_replicates(s: np.ndarray, n_boot: int = N_BOOT, seed: int = 0) -> np.ndarray:
    """Bootstrap replicates of CV^2 = Var s / (mean s)^2 (ddof 1) over the samples ``s``."""
    idx = np.random.default_rng(seed).integers(0, len(s), size=(n_boot, len(s)))
    r = s[idx]
    return r.var(axis=1, ddof=1) / r.mean(axis=1) ** 2


def signed(reps: np.ndarray) -> tuple[float, float, list]:
    """(margin, error, [5%, 50%, 95%]) of bootstrap replicates of a quantity that is positive where
    the claim holds: margin = the median; error = median - 5% quantile when the median is positive,
    95% quantile - median otherwise.  So the point holds iff the 5% quantile is > 0, fails iff the 95%
    quantile is < 0, and is a tie (unresolved at 90%) when the interval contains 0."""
    q5, q50, q95 = (float(q) for q in np.quantile(reps, [0.05, 0.5, 0.95]))
    return q50, (q50 - q5 if q50 > 0 else q95 - q50), [q5, q50, q95]


def worst(margins: dict, errors: dict):
    """The key deciding a conjunction of (margin, error) tests: a resolved failure (margin < -error)
    if there is one, the most negative margin + error among them; else the least resolved test, the
    smallest margin - error.  The conjunction holds iff that test holds, and fails (resolved) iff any
    test does."""
    bad = [k for k in margins if margins[k] < -errors[k]]
    if bad:
        return min(bad, key=lambda k: margins[k] + errors[k])
    return min(margins, key=lambda k: margins[k] - errors[k])


def _log_cv2_ratio(sa, sb, seed: int) -> np.ndarray:
    """Replicates of log(CV^2 a / CV^2 b) from independent bootstraps of two independent samples."""
    return np.log(cv2_replicates(sa, seed=seed) / cv2_replicates(sb, seed=seed + 1))


def _cv2_samples(arch, width, at, tag):
    return theta_diag_variants(arch, int(width), N_INIT, _seed(f"{arch.slug}-{width}-{tag}"))[
        (at["parameterisation"], at["trained"])]


PARAM_AXIS = Axis("parameterisation", PARAMETERISATIONS, "ntk",
                  "NTK parameterisation (W = sqrt(s2/fan-in) P, P trained) or standard (W ~ N(0, s2/fan-in) "
                  "trained itself); the same network at initialisation")
TRAINED_AXIS = Axis("trained", TRAINED, "all", "every tensor trained, or the hidden ones only (not the input "
                    "layer nor the readout)")


# --------------------------------------------------------------------------- LITTWIN-MLP-DEPTH

@scope_map("LITTWIN-MLP-DEPTH", (
    PARAM_AXIS, TRAINED_AXIS,
    Axis("depth", (2, 8), 8, "base depth L: CV^2 compared at L and 4L (width n) and at widths n and 4n (depth L)",
         ordered=True),
    Axis("width", (32, 64, 128), 64, "base width n", quick=(64,), ordered=True),
), "bootstrap median of the least resolved of log(CV^2(4L, n) / CV^2(L, n)) and log(CV^2(L, n) / CV^2(L, 4n)); "
   "error: the 90% bootstrap interval's half on the side of 0",
   "CV^2 = Var Theta(x,x) / (E Theta(x,x))^2 of the finite ReLU MLP's NTK grows with L/n: larger at depth 4L "
   "than at L (width n), smaller at width 4n than at n (depth L)",
   f"bias-free ReLU MLP, weight_var 2, d = 8, one unit input; {N_INIT} initialisations per network, "
   f"{N_BOOT} bootstrap replicates", check_over=("parameterisation", "trained"))
def littwin_mlp_depth(at):
    L, n = at["depth"], at["width"]
    s = {k: _cv2_samples(MLP(k[0]), k[1], at, "mlp") for k in ((L, n), (4 * L, n), (L, 4 * n))}
    tests = {f"L={4 * L} over L={L}": _log_cv2_ratio(s[(4 * L, n)], s[(L, n)], 11),
             f"n={n} over n={4 * n}": _log_cv2_ratio(s[(L, n)], s[(L, 4 * n)], 13)}
    res = {k: signed(r) for k, r in tests.items()}
    key = worst({k: r[0] for k, r in res.items()}, {k: r[1] for k, r in res.items()})
    margin, err, _ = res[key]
    return margin, {f"CV^2 L={k[0]}, n={k[1]}": float(np.var(v, ddof=1) / np.mean(v) ** 2) for k, v in s.items()} | {
        "log CV^2 ratios (5%, 50%, 95%)": {k: r[2] for k, r in res.items()}, "least resolved": key,
        "margin error": err}


# --------------------------------------------------------------------------- LITTWIN-DENSENET

@scope_map("LITTWIN-DENSENET", (
    Axis("varied", ("depth", "weight_var"), "depth",
         "what changes: depth L = 2 -> 32 (weight_var 2), or weight_var = 1 -> 4 (L = 8)"),
    PARAM_AXIS, TRAINED_AXIS,
    Axis("width", (32, 64, 128), 64, "width n", quick=(64,), ordered=True),
    Axis("tolerance", (1.5, 2.0, 3.0), 2.0, "the reading of 'independent': CV^2 changes by less than this "
         "factor over the change (2: 'of the same order')", quick=(2.0,), ordered=True),
), "log(tolerance) - |median log(CV^2 b / CV^2 a)| over bootstrap replicates; error: the larger half of the "
   "90% bootstrap interval",
   "CV^2 of the finite DenseNet's NTK changes by less than the tolerance factor between L = 2 and 32, or "
   "between weight_var = 1 and 4 (holds iff the 90% bootstrap interval of the log ratio lies inside "
   "+-log tolerance; fails iff it lies outside)",
   f"DenseNet of docs/conventions.md (1/l-normalised concatenation; no branch scale), d = 8, one unit input; "
   f"{N_INIT} initialisations per network", check_over=("varied", "parameterisation"))
def littwin_densenet(at):
    n = at["width"]
    a, b = ((DenseNet(2), DenseNet(32)) if at["varied"] == "depth"
            else (DenseNet(8, weight_var=1.0), DenseNet(8, weight_var=4.0)))
    sa, sb = _cv2_samples(a, n, at, "dense"), _cv2_samples(b, n, at, "dense")
    reps = _log_cv2_ratio(sb, sa, 17)
    q5, q50, q95 = (float(q) for q in np.quantile(reps, [0.05, 0.5, 0.95]))
    return np.log(at["tolerance"]) - abs(q50), {
        f"CV^2 L={a.depth}, weight_var={a.weight_var:g}": float(np.var(sa, ddof=1) / np.mean(sa) ** 2),
        f"CV^2 L={b.depth}, weight_var={b.weight_var:g}": float(np.var(sb, ddof=1) / np.mean(sb) ** 2),
        "log CV^2 ratio (5%, 50%, 95%)": [q5, q50, q95], "margin error": max(q50 - q5, q95 - q50)}


# --------------------------------------------------------------------------- LITTWIN-DENSENET-PARAMS

RIVALS = {"MLP": lambda L: MLP(L), "ResNet a=1": lambda L: ResNet(L, 1.0),
          "ResNet a=L^-1/2": lambda L: ResNet.with_gamma(L, 0.5), "ResNet a=L^-1": lambda L: ResNet.with_gamma(L, 1.0)}


@scope_map("LITTWIN-DENSENET-PARAMS", (
    Axis("rival", tuple(RIVALS), "MLP", "the network the DenseNet is compared with, at its parameter count"),
    PARAM_AXIS, TRAINED_AXIS,
    Axis("width", (32, 64), 64, "the DenseNet's width (sets the parameter budget)", quick=(64,), ordered=True),
), "bootstrap median of log(growth of the rival's CV^2 / growth of the DenseNet's CV^2) from L = 2 to 8; "
   "error: the 90% bootstrap interval's half on the side of 0",
   "at equal parameter count the DenseNet's CV^2 grows less from L = 2 to L = 8 than the rival's",
   f"rival at the width with the DenseNet's parameter count (littwin.width_for_params); d = 8, one unit input; "
   f"{N_INIT} initialisations per network", check_over=("rival",))
def littwin_densenet_params(at):
    from ..claims.littwin import n_params, width_for_params
    growth, cv = {}, {}
    for who in ("DenseNet", at["rival"]):
        logs = []
        for L in (2, 8):
            if who == "DenseNet":
                arch, w = DenseNet(L), at["width"]
            else:
                arch = RIVALS[who](L)
                w = width_for_params(arch, n_params(DenseNet(L), at["width"]))
            s = _cv2_samples(arch, w, at, "params")
            cv[f"CV^2 {who}, L={L} (width {w})"] = float(np.var(s, ddof=1) / np.mean(s) ** 2)
            logs.append(np.log(cv2_replicates(s, seed=_seed(f"{who}{L}") % 1000)))
        growth[who] = logs[1] - logs[0]
    margin, err, q = signed(growth[at["rival"]] - growth["DenseNet"])
    return margin, cv | {"log growth ratio (5%, 50%, 95%)": q, "margin error": err}


# --------------------------------------------------------------------------- HUANG-KERNEL-REGIME

HUANG_SEEDS = 6


@scope_map("HUANG-KERNEL-REGIME", (
    Axis("alpha", ("0.6", "1", "L^-1/2", "L^-1"), "0.6", "branch scale: fixed (0.6: the claim's; 1) or alpha = "
         "L^-gamma (gamma = 1/2, 1; the range of the training theory is [unknown])", quick=("0.6", "L^-1")),
    Axis("depth", (4, 16, 64), 4, "number of blocks L", quick=(4, 16), ordered=True),
    Axis("width", (256, 1024), 1024, "width m", ordered=True),
    Axis("tolerance", (0.1, 0.2, 0.3), 0.2, "the reading of 'the finite network's NTK is the ResNTK': the "
         "relative distance allowed", quick=(0.2,), ordered=True),
), "tolerance - mean over initialisations of ||Theta_m - Theta||_F / ||Theta||_F for the worst of the total "
   "NTK and its input, hidden and readout parts; error: the 95% one-sided Student-t multiple of that mean's "
   "standard error (a 90% interval)",
   "one finite network's NTK (and each parameter group's part) is within the tolerance (relative Frobenius "
   "distance, mean over initialisations) of its infinite-width limit: the kernel regime at width m",
   f"bias-free ReLU ResNet, weight_var 2, trained='all', N(0,1) weights in the NTK parameterisation; 4 points "
   f"on S^2 (the claim's); {HUANG_SEEDS} initialisations", check_over=("alpha", "width"))
def huang_kernel_regime(at):
    from reskernels.numerics import gram
    from reskernels.numerics.montecarlo import empirical_kernels
    from reskernels.numerics.samplers import sphere
    from scipy.stats import t as student_t
    L = at["depth"]
    arch = ResNet(L, ALPHA_SCALINGS.get(at["alpha"], lambda L: float(at["alpha"]))(L))
    X = sphere(4, 3, seed=11)
    full = gram(arch, X)
    hidden = gram(arch.replace(trained="hidden"), X)
    readout = gram(arch, X, kind="nngp")
    lim = {"total": full, "input": full - hidden - readout, "hidden": hidden, "readout": readout}
    dist = {k: [] for k in lim}
    for i in range(HUANG_SEEDS):
        ek = empirical_kernels(arch, X, at["width"], np.random.default_rng([12, i]))
        got = dict(ek["parts"], total=ek["ntk"])
        for k, K in lim.items():
            dist[k].append(np.linalg.norm(got[k] - K) / np.linalg.norm(K))
    mean = {k: float(np.mean(d)) for k, d in dist.items()}
    tq = float(student_t.ppf(0.95, HUANG_SEEDS - 1))
    err = {k: tq * float(np.std(d, ddof=1) / np.sqrt(len(d))) for k, d in dist.items()}
    m = {k: at["tolerance"] - mean[k] for k in lim}
    part = worst(m, err)
    return m[part], {"alpha": float(np.ravel(arch.alpha)[0]), "worst part": part,
                     "mean relative distance": mean, "error by part": err, "margin error": err[part]}


# --------------------------------------------------------------------------- TIRER-STABLE-TRAINING

@scope_map("TIRER-STABLE-TRAINING", (
    Axis("alpha", ("0.5", "1", "L^-1/2", "L^-1"), "0.5", "branch scale: fixed (0.5: the claim's; 1) or alpha = "
         "L^-1/2, L^-1", quick=("0.5", "1", "L^-1")),
    Axis("depth", (4, 8), 4, "number of blocks L", quick=(4,), ordered=True),
    TRAINED_AXIS,
    Axis("widths", ("256/1024", "64/256"), "256/1024", "the two widths compared", quick=("256/1024",)),
), "bootstrap median of log(mean drift at the smaller width / mean drift at the larger); error: the 90% "
   "bootstrap interval's half on the side of 0; the fitted drift exponent is reported, not asserted",
   "the relative NTK drift ||Theta_T - Theta_0||_F / ||Theta_0||_F after 20 GD steps shrinks as the width "
   "grows (finite-width evidence that the NTK is constant at infinite width)",
   "Tirer model ResNet(L, alpha, weight_var=1, input_var=1/2), 6 points on the circle, target sin 4x, "
   "full-batch GD, lr = N / lambda_max(Theta_0), 20 steps, 6 initialisations per width (the claim's)",
   check_over=("widths",), full_over=("widths",))   # a point costs ~50 CPU s: `reskernels scope` for the rest
def tirer_stable_training(at):
    from reskernels.numerics.samplers import circle_points_at

    from ..claims.tirer import drift_runs
    L = at["depth"]
    arch = ResNet(L, ALPHA_SCALINGS.get(at["alpha"], lambda L: float(at["alpha"]))(L), weight_var=1.0,
                  input_var=0.5, trained=at["trained"])
    m1, m2 = (int(w) for w in at["widths"].split("/"))
    theta = np.linspace(0, 2 * np.pi, 6, endpoint=False)
    runs = drift_runs(arch, circle_points_at(theta), np.sin(4 * theta), (m1, m2), 6, 20)
    d1, d2 = (np.array([r["drift"] for r in runs[m]]) for m in (m1, m2))
    rng = np.random.default_rng(1)
    reps = np.log(d1[rng.integers(0, len(d1), (2000, len(d1)))].mean(1)
                  / d2[rng.integers(0, len(d2), (2000, len(d2)))].mean(1))
    margin, err, q = signed(reps)
    trained = all(r["loss"] < r["loss0"] for rs in runs.values() for r in rs)
    return margin, {"mean drift": {str(m1): float(d1.mean()), str(m2): float(d2.mean())},
                    "drift exponent": float(-np.log(d1.mean() / d2.mean()) / np.log(m2 / m1)),
                    "log drift ratio (5%, 50%, 95%)": q, "every run trained": trained, "margin error": err}

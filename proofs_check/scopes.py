"""The scope maps of the claims whose conventions the papers leave open (docs/papers.md).

Each map states its criterion and its margin (positive: the claim holds at that convention point);
the machinery (sweep, region sentence, table, figure) is :mod:`reskernels.proofs_check.scope`.
Kernel values come from the public engines (:func:`reskernels.gram`, the finite-width networks of
:mod:`reskernels.numerics.montecarlo`); repeated Gram matrices within one process are cached.
"""
from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

from reskernels.numerics import gram
from reskernels.numerics.gramspec import condition_number, walsh_spectrum
from reskernels.numerics.limits import n2, normalized_kernel
from reskernels.numerics.samplers import multisphere, sphere
from reskernels.theory import CNN, MLP, ResCNN, ResNet

from .scope import Axis, scope_map

#: alpha as a function of the number of blocks L
ALPHA_SCALINGS = {"0.5": lambda L: 0.5, "1": lambda L: 1.0, "L^-1/2": lambda L: L ** -0.5, "L^-1": lambda L: 1.0 / L}


# --------------------------------------------------------------------------- data

def _draw(name: str, n: int, seed: int) -> np.ndarray:
    if name == "multisphere":
        return multisphere(n, 8, 3, seed)
    if name == "image-rows":
        from reskernels.numerics.datasets import image_rows
        return image_rows(n, 8, seed=seed)
    if name == "digits":
        from reskernels.numerics.datasets import digit_signals
        return digit_signals(n, seed=seed, normalize_pixels=True)[0]
    raise ValueError(f"unknown data set {name!r}")


@lru_cache(maxsize=64)
def conv_data(name: str, n: int, seed: int) -> np.ndarray:
    """``n`` distinct 1-D circular signals of 8 pixels: ``multisphere`` MS(3, 8) uniform (the papers'
    setting); ``image-rows`` rows of scikit-image photographs, RGB pixels on the unit sphere;
    ``digits`` scikit-learn digits, rows as pixels and columns as 8 channels, pixels on the unit sphere.

    Real data repeat themselves (flat image regions, blank digit rows); a repeated input makes every
    Gram matrix singular whatever the kernel, so repeats (equal to 1e-9 after normalising) are
    dropped and more points drawn."""
    for factor in (1, 2, 4, 8):
        X = _draw(name, factor * n, seed)
        flat = X.reshape(len(X), -1)
        flat = flat / np.linalg.norm(flat, axis=1, keepdims=True)
        _, first = np.unique(np.round(flat, 9), axis=0, return_index=True)
        keep = np.sort(first)
        if len(keep) >= n:
            return np.ascontiguousarray(X[keep[:n]])
    raise ValueError(f"data set {name!r} has fewer than {n} distinct inputs")


@lru_cache(maxsize=4096)
def _cond(arch, kind, data, n, seed):
    return condition_number(gram(arch, conv_data(data, n, seed), kind=kind, normalize=True))


# --------------------------------------------------------------------------- Barzilai: conditioning

def _cond_axes():
    return (
        Axis("depth", (1, 4, 16, 64), 16, "number of residual blocks L of the ResCNN", quick=(4, 16), ordered=True),
        Axis("alpha", tuple(ALPHA_SCALINGS), "0.5", "residual scaling as a function of L"),
        Axis("trained", ("all", "hidden"), "all", "layers in the NTK (stem and readout trained or fixed)"),
        Axis("baseline", ("L+1", "2L+1"), "L+1", "depth of the plain CNN compared: L+1 (one conv per block, "
             "the suite's default) or 2L+1 (as many conv layers as the ResCNN)"),
        Axis("readout", ("center", "flatten", "gap"), "center", "readout of both networks"),
        Axis("data", ("multisphere", "image-rows", "digits"), "multisphere",
             "inputs (n points, 8-pixel circular signals): uniform MS(3, 8), photograph rows, digits",
             quick=("multisphere", "image-rows", "digits")),
        Axis("n", (50, 100, 200), 100, "number of points", quick=(100,), ordered=True),
    )


def _cond_point(kind, at, draws=(10, 11)):
    L = at["depth"]
    a = ALPHA_SCALINGS[at["alpha"]](L)
    Lb = L + 1 if at["baseline"] == "L+1" else 2 * L + 1
    res = ResCNN(L, a, readout=at["readout"], trained=at["trained"])
    base = CNN(Lb, readout=at["readout"], trained=at["trained"])
    cr = [_cond(res, kind, at["data"], at["n"], s) for s in draws]
    cb = [_cond(base, kind, at["data"], at["n"], s) for s in draws]
    margin = min(math.log10(b / r) for r, b in zip(cr, cb))
    return margin, {"cond ResCNN": cr, f"cond CNN({Lb})": cb}


_COND_FIXED = ("ResCNN(L, alpha, filter_size=3, stem_size=1, input_var=1, weight_var=2) vs CNN(baseline, same "
               "fields); diagonal-normalised Gram matrices without jitter; draws with seeds 10, 11")
_COND_MARGIN = ("log10(cond plain / cond residual), worst of 2 draws; > 0 where the residual kernel is better "
                "conditioned in every draw")


@scope_map("BARZILAI-COND-NTK", _cond_axes(), _COND_MARGIN,
           "the ResCNTK Gram matrix has a smaller condition number than the plain CNTK's in every draw", _COND_FIXED,
           check_over=("alpha", "data"))
def cond_ntk(at):
    return _cond_point("ntk", at)


@scope_map("BARZILAI-COND-GPK", _cond_axes(), _COND_MARGIN,
           "the ResCGPK Gram matrix has a smaller condition number than the plain CGPK's in every draw", _COND_FIXED,
           check_over=("alpha", "data"))
def cond_gpk(at):
    return _cond_point("nngp", at)


# --------------------------------------------------------------------------- Barzilai: locality

@lru_cache(maxsize=512)
def _single_pixel_ratios(arch, kind, C0, n_torus=16):
    """lambda(e_r) / lambda(e_0), r = 1, 2: degree-1 single-pixel eigenvalues relative to the centre."""
    if C0 == 1:   # finite Walsh sums: rounding only
        lam = walsh_spectrum(arch, kind, 7)
        return tuple(lam[frozenset({r})] / lam[frozenset({0})] for r in (1, 2)), 1e-12
    from .common import torus
    S = torus(arch, kind, n_torus)
    lam, err = S.ray([(1, 0, 0, 0, 0), (0, 1, 0, 0, 0), (0, 0, 1, 0, 0)])
    rel = float(np.max(err / np.abs(lam)))   # the rule's doubling change, relative
    return (float(lam[1] / lam[0]), float(lam[2] / lam[0])), 2 * rel


@scope_map("BARZILAI-LOCAL", (
    Axis("alpha", (1.0, 0.5, 0.25, 0.125), 0.5, "residual scaling of ResCNN(1, alpha)", quick=(1.0, 0.5, 0.25),
         ordered=True),
    Axis("kind", ("nngp", "ntk"), "ntk", "kernel"),
    Axis("C0", (1, 2), 2, "channels per pixel: 1 (hypercube, Walsh eigenvalues) or 2 (products of circles, "
         "torus quadrature)"),
    Axis("trained", ("all", "hidden"), "all", "layers in the NTK (equal for the NNGP)"),
), "min over r = 1, 2 of log10(ratio plain / ratio residual), ratio = lambda(e_r) / lambda(e_0); > 0 where the "
   "residual kernel gives farther pixels relatively smaller eigenvalues",
   "ResCNN(1, alpha) single-pixel degree-1 eigenvalue ratios lie below CNN(3)'s (same receptive field)",
   "center readout, filter_size=3, stem_size=1, weight_var=2; C0 = 2 torus rule with 16 and 32 points per axis",
   check_over=("kind", "C0", "trained"))
def local(at):
    kw = dict(readout="center", trained=at["trained"])
    plain, e1 = _single_pixel_ratios(CNN(3, **kw), at["kind"], at["C0"])
    res, e2 = _single_pixel_ratios(ResCNN(1, at["alpha"], **kw), at["kind"], at["C0"])
    margin = min(math.log10(p / r) for p, r in zip(plain, res))
    # each ratio's relative error is at most twice the rule's relative change; log10(1 + e) <= e / ln 10
    return margin, {"ratios ResCNN": list(res), "ratios CNN(3)": list(plain), "margin error": (e1 + e2) / math.log(10)}


# --------------------------------------------------------------------------- Huang: conditioning

@scope_map("HUANG-RESNET-STABLE", (
    Axis("gamma", (0.5, 0.75, 1.0, 1.5), 1.0, "alpha = L^-gamma", quick=(0.5, 1.0), ordered=True),
    Axis("depth", (10, 100, 1000), 1000, "number of blocks L (MLP(L) compared)", ordered=True),
    Axis("trained", ("all", "hidden"), "hidden", "layers in the NTK"),
    Axis("d", (3, 16), 3, "input dimension (n = 40 uniform points on S^(d-1))", ordered=True),
), "log10(cond MLP(L) / cond ResNet(L)) of the normalised NTK Gram matrices; > 0 where the ResNet's is better "
   "conditioned",
   "the normalised ResNTK Gram matrix is better conditioned than the deep FC-NTK's (the statement's 'stay well "
   "conditioned where the deep FC-NTK's do not')",
   "40 points uniform on the sphere (seed 5), normalize=True, no jitter; ReLU, weight_var=2",
   check_over=("gamma", "depth", "trained"))
def huang_stable(at):
    L = at["depth"]
    X = sphere(40, at["d"], 5)
    res = ResNet.with_gamma(L, at["gamma"], trained=at["trained"])
    c_res = np.linalg.cond(gram(res, X, normalize=True))
    c_fc = np.linalg.cond(gram(MLP(L, trained=at["trained"]), X, normalize=True))
    t = np.linspace(-1, 1, 2001)
    sup = float(np.abs(normalized_kernel(res)(t) - n2(t)).max())
    return math.log10(c_fc / c_res), {"cond ResNet": float(c_res), "cond MLP": float(c_fc), "sup |K - N2|": sup}


# --------------------------------------------------------------------------- Littwin: CV^2 ordering

@lru_cache(maxsize=256)
def _theta_diag(arch, width, n_init, seed):
    from reskernels.numerics.montecarlo import empirical_kernels
    x = np.zeros((1, 8))
    x[0, 0] = 1.0
    return np.array([empirical_kernels(arch, x, width, np.random.default_rng([seed, i]))["ntk"][0, 0]
                     for i in range(n_init)])


def _cv2(s):
    return s.var(ddof=1) / s.mean() ** 2


@scope_map("LITTWIN-CV-RESNET", (
    Axis("depth", (2, 8, 16), 8, "number of layers / blocks L", quick=(2, 8), ordered=True),
    Axis("width", (32, 64, 128), 64, "hidden width n", quick=(32, 64), ordered=True),
    Axis("n_init", (100, 200, 400), 200, "initialisations per network (CV^2 is heavy-tailed: small samples "
         "underestimate it, the MLP's most)", quick=(200,), ordered=True),
), "bootstrap median of log(CV^2 a / CV^2 b) for the least resolved adjacent pair, error = median minus "
   "its 5% quantile; holds where every pair of the order MLP > ResNet(1) > ResNet(L^-1/2) > ResNet(L^-1) holds "
   "with 95% bootstrap confidence, a tie where a pair is not resolved",
   "CV^2 = Var Theta(x,x) / (E Theta(x,x))^2 of the finite-width NTK is ordered MLP > ResNet(alpha=1) > "
   "ResNet(L^-1/2) > ResNet(L^-1)",
   "N(0,1) weights in the NTK parameterisation, trained='all', d = 8, one unit input; bootstrap 500 replicates",
   check_over=("width",))
def littwin_cv(at):
    L, w, m = at["depth"], at["width"], at["n_init"]
    models = {"MLP": MLP(L), "ResNet a=1": ResNet(L, 1.0), "ResNet a=L^-1/2": ResNet.with_gamma(L, 0.5),
              "ResNet a=L^-1": ResNet.with_gamma(L, 1.0)}
    samples = {nm: _theta_diag(arch, w, m, 1000 + 7 * i + L) for i, (nm, arch) in enumerate(models.items())}
    names = list(models)
    rng = np.random.default_rng(3)
    pairs = []
    for a, b in zip(names, names[1:]):
        idx = rng.integers(0, m, size=(500, m))
        ra = np.array([_cv2(samples[a][i]) for i in idx])
        rb = np.array([_cv2(samples[b][i]) for i in idx])
        q5, q50 = np.quantile(np.log(ra / rb), [0.05, 0.5])
        pairs.append((float(q5), float(q50)))
    q5, q50 = min(pairs)     # the least resolved pair
    # margin = its bootstrap median, error = median - 5% quantile: holds iff the 5% quantile is > 0,
    # a tie when the interval reaches 0 (the order is not resolved), fails when it is reversed
    return q50, {nm: _cv2(s) for nm, s in samples.items()} | {
        "pairs (5%, 50%) of log CV^2 ratio": [list(p) for p in pairs], "margin error": q50 - q5}


# --------------------------------------------------------------------------- Tirer: smoothness

@scope_map("TIRER-SMOOTHER", (
    Axis("activation", ("relu", "erf", "gelu", "tanh"), "relu", "activation of both networks",
         quick=("relu", "erf")),
    Axis("bias_var", (0.0, 0.5), 0.0, "bias variance on every layer", ordered=True),
    Axis("alpha", (0.1, 0.5, 1.0, 2.0), 1.0, "residual scaling (Tirer's model: weight_var=1)", quick=(0.1, 1.0, 2.0),
         ordered=True),
    Axis("depth", (2, 5, 10), 5, "number of blocks / layers", quick=(5,), ordered=True),
), "log10(RMS f'' of the MLP interpolant / RMS f'' of the ResNet interpolant); > 0 where the ResNet NTK "
   "interpolant is smoother",
   "the ResNet NTK interpolant of the toy target has smaller RMS second derivative than the MLP NTK's",
   "Tirer's toy: 0.5 cos x + sin 4x from 6 points on the circle, 4096-point grid, weight_var=1, input_var=1/2",
   check_over=("activation", "alpha", "bias_var"))
def tirer_smoother(at):
    from .claims.tirer import toy_experiment
    kw = dict(weight_var=1.0, input_var=0.5, activation=at["activation"], bias_var=at["bias_var"])
    mlp = toy_experiment(MLP(at["depth"], **kw))
    res = toy_experiment(ResNet(at["depth"], at["alpha"], **kw))
    return (math.log10(mlp["rms_f2"] / res["rms_f2"]),
            {"RMS f'' ResNet": res["rms_f2"], "RMS f'' MLP": mlp["rms_f2"], "RMSE ResNet": res["rmse"]})

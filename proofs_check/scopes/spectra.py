"""Scope maps of Barzilai's spectral claims (docs/papers.md §7): BARZILAI-EIGFUN, BARZILAI-DIAG,
BARZILAI-DOUBLE-CONSTANT and BARZILAI-DECAY, over the conventions the paper leaves open [unknown]:
the trained layers (stem and readout trained or frozen), the stem width, alpha fixed or scaled with
the depth, the readout and the non-residual baseline (linear stem or an Arora-style stem of three
pixels).  Every margin comes from the engines: :func:`reskernels.gram` (Gram matrices on the
multi-sphere MS(3, 8)) and :func:`numerics.ray_spectra.measure_ray` (eigenvalues along rays on
MS(2, 5)).
"""
from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

from reskernels.numerics import gram
from reskernels.numerics.ray_spectra import measure_ray
from reskernels.numerics.samplers import multisphere
from reskernels.numerics.tolerances import DIAGONAL_RTOL, EPS
from reskernels.theory import CNN, ResCNN

from ..scope import Axis, scope_map
from .data import ALPHA_SCALINGS

_TRAINED = Axis("trained", ("all", "hidden"), "all",
                "layers in the NTK: every layer, or stem and readout frozen (equal for the NNGP)")
_STEM = Axis("stem_size", (1, 3), 1, "pixels the linear stem sees: 1 (the suite's default) or 3 (Arora-style)")


# --------------------------------------------------------------------------- Barzilai: eigenfunctions

_EIG_P, _EIG_C = 6, 3


def _rotated(X, seed):
    """X with an independent random orthogonal C x C matrix applied to every pixel."""
    rng = np.random.default_rng(seed)
    Q = [np.linalg.qr(rng.standard_normal((_EIG_C, _EIG_C)))[0] for _ in range(X.shape[1])]
    return np.stack([X[:, i] @ Q[i] for i in range(X.shape[1])], axis=1)


def _rel(A, B):
    return float(np.abs(A - B).max() / np.abs(B).max())


@scope_map("BARZILAI-EIGFUN", (
    Axis("readout", ("center", "flatten", "gap"), "center", "readout of ResCNN(2, 0.6)"),
    Axis("kind", ("ntk", "nngp"), "ntk", "kernel"),
    _TRAINED,
    _STEM,
), "min over the identities the claim makes for this readout of log10(tol / relative error), tol = 64 (depth + 2) "
   "eps (a few roundings per layer, averaged over P shifts); for gap also log10(change under per-pixel rotations / "
   "1e-3); > 0 where every identity holds to rounding",
   "center and flatten are multi-dot-product kernels on MS (invariant under independent per-pixel rotations; "
   "flatten = (1/P) sum_s center(t_s x, t_s z)); gap = (1/P) sum_s flatten(x, t_s z) and is not multi-dot-product",
   "ResCNN(2, 0.6, filter_size=3), 5 points of MS(3, 6) (seed 1), rotations seed 0; float64 gram",
   check_over=("readout", "kind", "trained", "stem_size"))
def eigfun(at):
    kw = dict(trained=at["trained"], stem_size=at["stem_size"])
    kind = at["kind"]
    arch = {r: ResCNN(2, 0.6, readout=r, **kw) for r in ("center", "flatten", "gap")}
    tol = 64 * (arch["center"].depth + 2) * EPS
    X = multisphere(5, _EIG_P, _EIG_C, 1)
    XR = _rotated(X, 0)
    r = at["readout"]
    errs = {}
    K = gram(arch[r], X, kind=kind)
    rot = _rel(gram(arch[r], XR, kind=kind), K)
    if r in ("center", "flatten"):
        errs["per-pixel rotation change"] = rot
    if r == "flatten":
        via = np.mean([gram(arch["center"], np.roll(X, s, axis=1), kind=kind) for s in range(_EIG_P)], axis=0)
        errs["flatten vs shift mean of center"] = _rel(via, K)
    if r == "gap":
        via = np.mean([gram(arch["flatten"], X, np.roll(X, s, axis=1), kind=kind) for s in range(_EIG_P)], axis=0)
        errs["gap vs shift mean of flatten"] = _rel(via, K)
    margins = [math.log10(tol / max(e, EPS)) for e in errs.values()]
    if r == "gap":
        margins.append(math.log10(max(rot, EPS) / 1e-3))   # gap must NOT be a multi-dot-product kernel
    detail = dict(errs, tol=tol)
    if r == "gap":
        detail["per-pixel rotation change (must exceed 1e-3)"] = rot
    return min(margins), detail


# --------------------------------------------------------------------------- Barzilai: diagonals

def stated_diagonal(network: str, depth: int, alpha: float, kind: str) -> float:
    """The claim's closed forms on MS (docs/papers.md BARZILAI-DIAG): ResCNN(L, a) NNGP (1+a^2)^L,
    NTK (1+a^2)^L (2 + 2 L a^2/(1+a^2)); CNN(D) NNGP 1, NTK D + 1 (center/flatten readouts)."""
    if network == "ResCNN":
        g = (1 + alpha ** 2) ** depth
        return g if kind == "nngp" else g * (2 + 2 * depth * alpha ** 2 / (1 + alpha ** 2))
    return 1.0 if kind == "nngp" else depth + 1.0


@scope_map("BARZILAI-DIAG", (
    Axis("network", ("ResCNN", "CNN"), "ResCNN", "ResCNN(L, alpha) or the baseline CNN(L + 1)"),
    Axis("kind", ("ntk", "nngp"), "ntk", "kernel"),
    _TRAINED,
    Axis("readout", ("center", "flatten"), "center", "readout (the closed forms are stated for these two)"),
    _STEM,
    Axis("alpha", tuple(ALPHA_SCALINGS), "0.5", "residual scaling as a function of L (ResCNN only)",
         quick=("0.5",)),
    Axis("depth", (1, 4, 16), 4, "number of residual blocks L (the CNN has L + 1 ReLU layers)", quick=(4,),
         ordered=True),
), "log10(1e-14 / max_x |K(x,x) / stated - 1|) over 6 MS(3, 8) points (deviation floored at eps); > 0 where the "
   "engine's diagonal equals the stated closed form to the diagonal tolerance",
   "the diagonals on MS equal the stated closed forms: ResCNN NNGP (1+a^2)^L, NTK (1+a^2)^L (2 + 2 L a^2/(1+a^2)); "
   "CNN(D) NNGP 1, NTK D + 1",
   "filter_size=3, input_var=1, weight_var=2; 6 points of MS(3, 8) (seed 2); unnormalised float64 gram",
   check_over=("network", "kind", "trained", "readout", "stem_size"))
def diag(at):
    L = at["depth"]
    kw = dict(readout=at["readout"], trained=at["trained"], stem_size=at["stem_size"])
    if at["network"] == "ResCNN":
        a = ALPHA_SCALINGS[at["alpha"]](L)
        arch, D = ResCNN(L, a, **kw), L
    else:
        a, arch, D = None, CNN(L + 1, **kw), L + 1
    d = np.diag(gram(arch, multisphere(6, 8, 3, 2), kind=at["kind"]))
    want = stated_diagonal(at["network"], D, a, at["kind"])
    dev = float(np.abs(d / want - 1).max())
    return math.log10(DIAGONAL_RTOL / max(dev, EPS)), {"measured (max)": float(d.max()), "stated": want,
                                                       "relative deviation": dev}


# --------------------------------------------------------------------------- Barzilai: double-constant limit

_DC_NETWORKS = ("CNN",) + tuple(f"ResCNN a={k}" for k in ALPHA_SCALINGS)


def _dc_arch(network: str, L: int, **kw):
    if network == "CNN":
        return CNN(L, **kw)
    return ResCNN(L, ALPHA_SCALINGS[network.split("=", 1)[1]](L), **kw)


def extrapolate_limit(Ls, B):
    """b in B(L) = b + (c log L + e) / L through three depths (rows of B: one per depth)."""
    A = np.array([[1.0, math.log(L) / L, 1.0 / L] for L in Ls])
    return np.linalg.solve(A, np.asarray(B))[0]


@lru_cache(maxsize=256)
def _offdiag(arch):
    X = multisphere(5, 8, 3, 3)
    return gram(arch, X, normalize=True)[np.triu_indices(len(X), 1)]


@scope_map("BARZILAI-DOUBLE-CONSTANT", (
    Axis("network", _DC_NETWORKS, "ResCNN a=0.5", "plain CNN(L) or ResCNN(L, alpha(L))"),
    Axis("readout", ("center", "flatten", "gap"), "flatten", "readout (stated limit 1/4 for center/flatten, "
         "P/(P+3) = 8/11 for gap)"),
    _TRAINED,
    _STEM,
    Axis("depth", (40, 160, 320), 160, "L0 of the depth ladder L0, 2 L0, 4 L0, 8 L0 (the claim's own check: "
         "L0 = 150..500)", quick=(160,), ordered=True),
), "log10(2 |e2 - e1| / max |e2 - b|), e1, e2 the limits extrapolated from depths (L0, 2L0, 4L0) and (2L0, 4L0, "
   "8L0), b the stated limit, over the 10 off-diagonal pairs; > 0 where b lies within twice the extrapolation's "
   "own change (the claim's criterion)",
   "the normalised NTK tends to a double-constant kernel with off-diagonal b = 1/4 (center, flatten) or "
   "P/(P+3) (gap)",
   "filter_size=3, input_var=1, weight_var=2; 5 points of MS(3, 8) (seed 3); normalised NTK; model "
   "b + (c log L + e)/L",
   check_over=("network", "readout", "trained"))
def double_constant(at):
    kw = dict(readout=at["readout"], trained=at["trained"], stem_size=at["stem_size"])
    L0 = at["depth"]
    Ls = [L0, 2 * L0, 4 * L0, 8 * L0]
    B = np.array([_offdiag(_dc_arch(at["network"], L, **kw)) for L in Ls])
    want = 8 / 11 if at["readout"] == "gap" else 0.25
    e1, e2 = extrapolate_limit(Ls[:3], B[:3]), extrapolate_limit(Ls[1:], B[1:])
    dev = float(np.abs(e2 - want).max())
    change = float(np.abs(e2 - e1).max())
    return math.log10(max(2 * change, EPS) / max(dev, EPS)), {
        "extrapolated (min, max)": [float(e2.min()), float(e2.max())], "stated": want,
        "extrapolation change": change, f"raw deviation at L = {Ls[-1]}": float(np.abs(B[-1] - want).max())}


# --------------------------------------------------------------------------- Barzilai: decay rates

#: plain networks of receptive radius 2 (5 pixels), as ResCNN(1): the suite's CNN(3) with a linear stem
#: of one pixel (its first ReLU sees one pixel) and an Arora-style CNN(2) with a stem of three pixels
#: (every ReLU sees three pixels, as in ResCNN(1))
_BASELINES = {"CNN(3)": dict(depth=3, stem_size=1), "CNN(2, stem_size=3)": dict(depth=2, stem_size=3)}
DECAY_TOL = 0.1   # docs/papers.md BARZILAI-DECAY: "similar rate" = exponents within 0.1
IDENTIFIES = 0.5  # a slope bound below half the spacing (>= 1) of the candidate exponents 2 nu + |A| (C0 - 1)
_RAYS: dict = {}


def rate_margin(rr, rp, tol: float = DECAY_TOL):
    """(margin, error, basis) of "the two rays decay at similar rates": margin = tol - |p_r - p_p| > error
    holds, < -error fails, else a tie.  Where each measured slope agrees with its predicted exponent
    (:meth:`RaySlope.agrees`) with a bound small enough to single it out (< IDENTIFIES: the candidates
    2 nu + |A| (C0 - 1) are at least 1 apart), the exponents are the predicted ones (exact rationals, each
    confirmed by its ray): error 0.  That basis rests on the window theory (the true exponents are among
    the candidates); the measurement only confirms which candidate, it does not itself show the two
    exponents within tol.  Otherwise the measured slopes decide alone: p = -slope, error the sum of the
    two bounds (so the measurement must show |difference| + bounds < tol to hold, and |difference| -
    bounds > tol to fail)."""
    if rr.slope is None or rp.slope is None:
        raise ValueError("rate_margin needs two measured slopes (a ray with too few converged points is a tie)")
    if all(r.agrees() and r.bound < IDENTIFIES for r in (rr, rp)):
        return tol - abs(rr.predicted - rp.predicted), 0.0, "predicted exponents, each confirmed by its slope"
    return tol - abs(rr.slope - rp.slope), rr.bound + rp.bound, "measured slopes and their bounds"


def ray_rules(kmax: int, kind: str, three_pixel_windows: bool) -> dict:
    """The rules of :func:`measure_ray` for a single-pixel ray.  Kernels whose every ReLU sees three
    pixels (ResCNN(1), CNN(2, stem_size=3): rays ~ k^-6 NNGP, k^-4 NTK) need the fine graded inactive
    rule (n = 14 / 18 nodes, r = 6) and an active grid of 8 kmax (NNGP) or 16 kmax (NTK) points; the
    linear-stem CNN(3) (k^-4, k^-2) converges with n = 6 / 8, r = 4 but its slower decay needs the
    default active grid of 48 kmax points (aliasing).  Points: even k >= kmax / 4."""
    if three_pixel_windows:
        rules = dict(M=(8 if kind == "nngp" else 16) * kmax, n=14, n2=18, r=6)
    else:
        rules = dict(n=6, n2=8, r=4)
    return dict(rules, kmax=kmax, kmin=kmax // 4)


def _ray(arch, kind, kmax, three_pixel_windows):
    key = (arch, kind, kmax)
    if key not in _RAYS:
        _RAYS[key] = measure_ray(arch, kind, (0,), "e0", rel_err=0.01, min_points=6,
                                 **ray_rules(kmax, kind, three_pixel_windows))
    return _RAYS[key]


@scope_map("BARZILAI-DECAY", (
    Axis("baseline", tuple(_BASELINES), "CNN(3)", "the non-residual network compared (both receptive radius 2): "
         "linear stem of one pixel (the claim's default) or an Arora-style stem of three pixels"),
    Axis("kind", ("nngp", "ntk"), "nngp", "kernel", quick=("nngp",)),
    Axis("alpha", (0.25, 0.5, 1.0), 0.5, "residual scaling of ResCNN(1, alpha)", quick=(0.5,), ordered=True),
    Axis("trained", ("all", "hidden"), "all", "layers in the NTK (equal for the NNGP)", quick=("all",)),
    Axis("kmax", (16, 32), 32, "largest frequency computed on the ray (resolution, not a convention; at 16 the "
         "three-pixel baseline's slope bound, ~1.2, is too wide to single out an exponent: a tie)",
         quick=(32,), ordered=True),
), "tol - |exponent residual - exponent plain|, tol = 0.1, on the single-pixel ray e0: the predicted exponents where "
   "each slope confirms its own (margin error 0), else the measured slopes (margin error: the two slope bounds; "
   "spectra.rate_margin); a ray with fewer than 6 points of <= 1% error is a tie; > 0 where the rates agree within tol",
   "ResCNN(1, alpha) and the plain baseline decay at similar rates: single-pixel ray slopes within 0.1",
   "C0 = 2 (products of circles), center readout, filter_size=3, normalised kernels; rays by "
   "numerics.ray_spectra.measure_ray with the rules of spectra.ray_rules (points with estimated error <= 1%, "
   "even k >= kmax / 4)",
   check_over=("baseline",))
def decay(at):
    kind, kmax = at["kind"], at["kmax"]
    trained = at["trained"] if kind == "ntk" else "all"   # the NNGP does not depend on the trained set
    res = ResCNN(1, at["alpha"], readout="center", trained=trained)
    base = CNN(readout="center", trained=trained, **_BASELINES[at["baseline"]])
    rr = _ray(res, kind, kmax, True)
    rp = _ray(base, kind, kmax, at["baseline"] != "CNN(3)")
    detail = {"points residual / plain": [len(rr.ks), len(rp.ks)],
              "predicted exponents residual / plain": [rr.predicted, rp.predicted]}
    if not (rr.decided and rp.decided):
        detail["margin error"] = DECAY_TOL
        detail["undecided"] = "fewer than 6 converged points"
        return 0.0, detail
    margin, error, basis = rate_margin(rr, rp)
    detail.update({"slope residual": rr.slope, "bound residual": rr.bound, "slope plain": rp.slope,
                   "bound plain": rp.bound, "margin error": error, "basis": basis,
                   # predicted_exponent reads the windows of the kernel maps, not the trained set
                   "slope within bound of -predicted residual / plain": [rr.agrees(), rp.agrees()]})
    return margin, detail

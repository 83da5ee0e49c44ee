"""Number contexts for the variance-carrying interpreter (:mod:`theory.general`): float64 arrays
(numpy) and mpmath numbers, and the fully connected kernels it computes.

The interpreter's rules are written once in :mod:`theory.general`; a context supplies the
functions the activations' ``dual`` hooks call, how spec floats are read and the patch operator.

Duals without a closed form (tanh, GELU, user functions) are Gaussian expectations
E[f(u) f(v)] with u = sqrt(qx) x, v = sqrt(qz)(rho x + sqrt(1 - rho^2) y), x, y independent
standard normals, taken by the tensor trapezoid rule on [-R, R]^2: for an integrand analytic in the
strip |Im x| < d and decaying like exp(-x^2/2) its error is about exp(-2 pi d / h) + exp(-R^2/2)
(Trefethen & Weideman 2014).  With sigma = sqrt(max(qx, qz)) and tanh's poles at i pi/2, the
strip of f(sigma x) is d = pi / (2 sigma):

* float64: R = 8.6 and h = 0.2 / max(1, sigma) (2 pi d / h >= 49: error ~1e-17 of the integrand's
  scale for tanh; GELU is entire); measured against 30-digit mpmath to 1e-15 relative
  (``tests/numerics/test_activations.py``), so the quadrature adds ~1e-15 per layer to the float64
  kernel.  User functions with kinks converge only algebraically in h: the docs state no bound
  for them beyond the doubling check of :func:`quadrature_error` -- unless the kinks are given
  (``from_function(..., kinks=...)``): then Gauss-Legendre panels split at them
  (:func:`gaussian_expectation_kinked`, relu within 1.2e-15 of its scale at every rho);
* mpmath: R for 10^-(dps+5) and h for 10^-(dps+12), evaluated twice (h and 2h/3, the second at 10 more
  digits) and accepted only where the two agree to the working precision -- otherwise
  :class:`PrecisionError`.
"""
from __future__ import annotations

import math
from functools import lru_cache

import mpmath
import numpy as np
import scipy.special

from reskernels.theory import activations as _acts
from reskernels.theory import general as _G

from . import hermite as _hermite
from . import saturating as _saturating
from .backends import MpmathBackend, NumpyBackend

_GH_CHUNK = 2 ** 8      # entries per quadrature chunk: (2 R / h)^2 temporaries each
_GH_CHUNK_1D = 2 ** 12  # entries per chunk of the one-dimensional rule: 2 R / h temporaries each


class PrecisionError(ArithmeticError):
    """A quadrature dual could not be certified to the requested precision."""


class NumpyContext(NumpyBackend):
    """float64 arrays: the half-angle backend's functions plus those the activations' duals call
    (numpy / scipy.special); ``patch`` supplied by the caller."""

    exp = staticmethod(np.exp)
    sinh = staticmethod(np.sinh)
    cosh = staticmethod(np.cosh)
    tanh = staticmethod(np.tanh)
    erf = staticmethod(scipy.special.erf)
    erfc = staticmethod(scipy.special.erfc)

    @staticmethod
    def damped_sinh_cosh(qx, qz, S):
        """(e sinh S, e cosh S), e = exp(-(qx + qz)/2): sin's and cos's duals.  Where both variances
        are at most ``HALF_EXP_MAX_VARIANCE`` (708) as written; above, where e underflows and sinh S
        overflows (|S| <= sqrt(qx qz)), as t (1 -+ exp(-2|S|)) / 2 with t = exp((|S| - h1) - h2) <= 1,
        h1 >= h2 the halves of the variances (the differences exact for near-parallel pairs).  The
        compiled loop's form: :func:`numerics.conv_fused_general.sin_dual_large`."""
        big = np.maximum(qx, qz) > _acts.HALF_EXP_MAX_VARIANCE
        if not np.any(big):
            e = np.exp(-(qx + qz) / 2)
            return e * np.sinh(S), e * np.cosh(S)
        with np.errstate(over="ignore", under="ignore", invalid="ignore"):
            e = np.exp(-(qx + qz) / 2)
            sh, ch = e * np.sinh(S), e * np.cosh(S)
            s = np.abs(S)
            t = np.exp((s - np.maximum(qx, qz) / 2) - np.minimum(qx, qz) / 2)
            r = np.expm1(-2.0 * s)
            return (np.where(big, np.copysign(t * (-r) * 0.5, S), sh),
                    np.where(big, t * (2.0 + r) * 0.5, ch))

    def __init__(self, want_ntk=True, patch=None):
        self.want_ntk = want_ntk
        self.xp = self
        self._patch = patch

    def patch(self, M, q):
        if q == 1 or self._patch is None:
            if q != 1:
                raise TypeError("a convolution in a fully connected context")
            return M
        return self._patch(M, q)

    @staticmethod
    def kappa0(rho):
        return (np.pi - np.arccos(rho)) / np.pi

    @staticmethod
    def kappa1(rho):
        return (np.sqrt(1.0 - rho * rho) + (np.pi - np.arccos(rho)) * rho) / np.pi

    @staticmethod
    def clip1(x):
        return np.clip(x, -1.0, 1.0)

    @staticmethod
    def safe_div(a, b):
        pos = b > 0
        return np.where(pos, a / np.where(pos, b, 1.0), 0.0)

    @staticmethod
    def positive(g):
        return (g > 0) * 1.0

    def gaussian_expectation(self, fn, qx, qz, S, smoothed=None, strip=None, kinks=None, soft=None,
                             saturating=None):
        """E[fn(u) fn(v)] for (u, v) ~ N(0, [[qx, S], [S, qz]]) on broadcastable float64 arrays:
        the Hermite (Mehler) series with its computed truncation bound (:mod:`numerics.hermite`),
        and, for exactly the entries it does not certify (kinked or step-like functions, large
        variances), the trapezoid rule of :meth:`gaussian_expectation_trapezoid` (``strip``: see
        there).  With ``kinks`` (the points where fn or its derivative jumps) every entry is taken by
        the Gauss-Legendre panels of :func:`gaussian_expectation_kinked` instead (the series of a
        kinked function converges only algebraically).  ``soft = (centres, d)``: fn is analytic
        but for singularities at distance d from the real axis above and below ``centres`` (tanh and
        sech^2: ((0,), pi / 2)); entries left by the series whose larger variance exceeds
        :data:`SOFT_KINK_VARIANCE` take the graded panels of :func:`gaussian_expectation_kinked`
        (cost independent of the variance) instead of the trapezoid rule (whose step shrinks like
        1 / sqrt(q): its cost grows like q).  ``saturating = (base, A, g, parity)``: fn = A base + g
        with g localised (:mod:`numerics.saturating`); the entries left by the Hermite series whose
        larger variance exceeds SOFT_KINK_VARIANCE take that module's separable series first, where
        it holds."""
        if kinks is None:
            out, rest = _hermite.gaussian_expectation_hermite(fn, qx, qz, S, self)
            second = lambda q: second_moment_trapezoid(fn, q, self)
            pair = lambda a, b, c: self.gaussian_expectation_trapezoid(fn, a, b, c, smoothed, strip)
            if soft is not None:
                pair = _soft_split(fn, soft, pair, self)
            if saturating is not None:
                pair = _saturating_first(saturating, pair, self)
        else:
            shape = np.broadcast_shapes(np.shape(qx), np.shape(qz), np.shape(S))
            out, rest = np.empty(shape), np.ones(shape, dtype=bool)
            second = lambda q: second_moment_kinked(fn, q, kinks, self)
            pair = lambda a, b, c: gaussian_expectation_kinked(fn, a, b, c, kinks, self)
        if np.any(rest):
            shape = out.shape
            pick = lambda a, m: np.broadcast_to(np.asarray(a, float), shape)[m]
            same = (pick(S, ...) == pick(qx, ...)) & (pick(qx, ...) == pick(qz, ...))
            diag, off = rest & same, rest & ~same
            if np.any(diag):          # an input with itself: E[fn(u)^2], the one-dimensional rule
                out[diag] = second(pick(qx, diag))
            if np.any(off):
                out[off] = pair(pick(qx, off), pick(qz, off), pick(S, off))
        with np.errstate(over="ignore", invalid="ignore"):
            beyond = ~np.isfinite(np.asarray(qx, float) * np.asarray(qz, float))
        if np.any(beyond):
            # qx qz beyond float64 (variances >~ 1e154): every rule above takes rho = S / sqrt(qx qz)
            # and would return a finite wrong value; NaN makes gram raise its InputRangeError instead
            # (a pair (x, x) keeps its one-dimensional value)
            shape = out.shape
            full = lambda a: np.broadcast_to(np.asarray(a, float), shape)
            out[np.broadcast_to(beyond, shape) & ~((full(S) == full(qx)) & (full(qx) == full(qz)))] = np.nan
        return out

    def gaussian_expectation_trapezoid(self, fn, qx, qz, S, smoothed=None, strip=None):
        """E[fn(u) fn(v)] by the tensor trapezoid rule (module docstring), in chunks of entries.

        With ``smoothed(m, s2, ctx) = E_w[fn(m + sqrt(s2) w)]`` in closed form the inner integral is
        exact and the rule is one-dimensional: E_x[fn(sqrt(qx) x) smoothed(sqrt(qz) rho x,
        qz (1 - rho^2))], the same nodes in x.

        ``strip``: fn is analytic in |Im x| < strip (tanh and sech^2: pi / 2).  Then the step in y
        follows the y-integrand's own strip, D = strip / s with s = sqrt(qz (1 - rho^2)), which is wide
        exactly where the series fell back (|rho| near 1): :func:`analytic_step` instead of the
        step in x (entries sorted by s, so a chunk's largest s sets its step)."""
        qx, qz, S = np.broadcast_arrays(np.asarray(qx, float), np.asarray(qz, float), np.asarray(S, float))
        shape = S.shape
        qx, qz, S = qx.ravel(), qz.ravel(), S.ravel()
        out = np.empty(S.size)
        if smoothed is not None:
            for a in range(0, S.size, _GH_CHUNK_1D):
                sl = slice(a, a + _GH_CHUNK_1D)
                sigma = float(np.sqrt(max(qx[sl].max(), qz[sl].max(), 0.0)))
                x, w = trapezoid_nodes(0.2 / max(1.0, sigma), TRAPEZOID_RADIUS)
                g = np.sqrt(qx[sl] * qz[sl])
                rho = np.clip(self.safe_div(S[sl], g), -1.0, 1.0)[:, None]
                fu = fn(np.sqrt(qx[sl])[:, None] * x[None, :], self)
                fv = smoothed(np.sqrt(qz[sl])[:, None] * rho * x[None, :], qz[sl][:, None] * (1.0 - rho * rho), self)
                out[sl] = (fu * fv) @ w
            return out.reshape(shape)
        if strip is not None:          # entries in order of s, so that a chunk's steps in y are alike
            rho_all = np.clip(self.safe_div(S, np.sqrt(qx * qz)), -1.0, 1.0)
            order = np.argsort(qz * (1.0 - rho_all * rho_all), kind="stable")
            qx, qz, S = qx[order], qz[order], S[order]
        for a in range(0, S.size, _GH_CHUNK):
            sl = slice(a, a + _GH_CHUNK)
            sigma = float(np.sqrt(max(qx[sl].max(), qz[sl].max(), 0.0)))
            x, w = trapezoid_nodes(0.2 / max(1.0, sigma), TRAPEZOID_RADIUS)
            g = np.sqrt(qx[sl] * qz[sl])
            rho = np.clip(self.safe_div(S[sl], g), -1.0, 1.0)
            r2 = np.sqrt(1.0 - rho * rho)
            y, wy = x, w
            if strip is not None:
                s_max = float(np.max(np.sqrt(qz[sl]) * r2))
                y, wy = trapezoid_nodes(analytic_step(strip / s_max if s_max > 0 else math.inf),
                                        TRAPEZOID_RADIUS)
            su, sz = np.sqrt(qx[sl])[:, None], np.sqrt(qz[sl])[:, None, None]
            fu = fn(su * x[None, :], self)                                      # (e, i)
            fv = np.empty(fu.shape)
            step = max(1, _GRID_BUDGET // (fu.shape[0] * y.size))               # x nodes a pass
            for b in range(0, x.size, step):
                xs = x[b:b + step]
                v = sz * (rho[:, None, None] * xs[None, :, None]
                          + r2[:, None, None] * y[None, None, :])               # (e, i, j)
                fv[:, b:b + step] = fn(v, self) @ wy                            # (e, i)
            out[sl] = (fu * fv) @ w
        if strip is not None:
            back = np.empty_like(out)
            back[order] = out
            out = back
        return out.reshape(shape)


class CompiledDualContext(NumpyContext):
    """:class:`NumpyContext` whose closed-form duals (the activations with an ``engine_id``: ReLU,
    leaky ReLU, abs, step, rectified monomials, monomials) run in one compiled loop
    per call, the per-entry functions of the conv engine (``numerics.conv_fused_general.dual_grid``,
    numba) instead of ~20-40 numpy passes; sin, cos and erf (numpy's SIMD exp, sinh, cosh, arcsin
    are as fast or faster there: benchmarks/bench_fc_activations.py) and the quadrature duals keep
    the numpy route.  Values
    within a few ulps of the numpy route (arccos by ``numerics.fastmath`` unless
    ``numerics.conv_fused.ACOS`` is "libm"), the diagonal exact as there (arccos(1) = 0)."""

    def compiled_dual(self, act, qx, qz, S, want_ntk):
        from . import conv_fused
        from . import conv_fused_general as G
        if act.engine_id < 0 or act.engine_id in (G.SIN, G.COS, G.ERF):
            return None             # sin, cos, erf: numpy's SIMD exp / sinh / arcsin are as fast (bench)
        qx, qz, S = np.broadcast_arrays(np.asarray(qx, float), np.asarray(qz, float), np.asarray(S, float))
        shape = S.shape
        QX, QZ = qx.ravel().copy(), qz.ravel().copy()              # scratch of the loop
        Sf = np.ascontiguousarray(S).ravel()
        E1, E0 = np.empty(Sf.size), np.empty(Sf.size)
        G.dual_grid(act.engine_id, np.asarray(act.engine_params, dtype=np.float64),
                    np.asarray(act.engine_coefs, dtype=np.float64), QX, QZ, Sf, E1, E0,
                    np.empty((4, Sf.size)), conv_fused.ACOS == "poly")
        return E1.reshape(shape), (E0.reshape(shape) if want_ntk else None)


TRAPEZOID_RADIUS = 8.6
#: most float64 values of one grid temporary of the 2-D rules (32 MiB; a pass holds ~6 of them)
_GRID_BUDGET = 1 << 22
#: most values of one grid temporary of the graded panels (``soft``): 2 MiB, so that the ~10
#: passes over a chunk stay in cache (MLP(2, tanh) on 30 inputs in R^3072: 7.9 s at 2^22, 4.0 s here)
_PANEL_BUDGET = 1 << 18
#: -ln of the target error of :func:`analytic_step` (e^-46 = 1e-20 of the integrand's scale)
_STEP_EXPONENT = 46.0


def analytic_step(D):
    """Trapezoid step for int g(y) exp(-y^2/2) dy with g analytic in |Im y| < D.

    The rule's error is about exp(d^2/2 - 2 pi d / h) for any d < D (Trefethen & Weideman 2014:
    exp(-2 pi d / h) times the integrand's size on |Im y| = d, where the Gaussian has grown by
    exp(d^2/2)).  It is e^-46 at h = 2 pi d / (d^2/2 + 46), largest at d = sqrt(92) (a wider strip
    does not help: the Gaussian's growth takes over), so d = min(D, sqrt(92)); the step is capped at
    0.5, where the Gaussian alone (d = 2 pi / h) gives exp(-2 pi^2 / h^2) = e^-79.  Rounded down to
    a quarter-octave (h = 0.5 * 2^(-m/4)) so that chunks share their nodes.  At D = pi / 2 (tanh,
    s = 1) 0.209 rounds to 0.177, below the x rule's 0.2 / max(1, sigma) there; at D = 2 pi (s = 1/4)
    0.5.

    >>> analytic_step(math.inf), round(analytic_step(math.pi / 2), 3), analytic_step(2 * math.pi), analytic_step(4e7)
    (0.5, 0.177, 0.5, 0.5)
    """
    if not D > 0:
        raise ValueError(f"D must be > 0, got {D}")
    d = min(D, math.sqrt(2 * _STEP_EXPONENT))
    h = min(0.5, 2 * math.pi * d / (d * d / 2 + _STEP_EXPONENT))
    m = math.ceil(-4 * math.log2(h / 0.5) - 1e-12)
    return 0.5 * 2.0 ** (-m / 4)


SECOND_MOMENT_RADIUS = 12.0


def second_moment_trapezoid(fn, q, ctx):
    """E[fn(sqrt(q) X)^2], X standard normal, by the trapezoid rule of the module docstring in one
    dimension, per entry of ``q``, on [-12, 12] instead of [-8.6, 8.6] (one dimension makes the wider
    interval cheap): the neglected mass exp(-72) ~ 5e-32 keeps functions of polynomial growth
    (sin(x) + x^2/5: x^8 exp(-x^2/2) at 8.6 is 1e-13 of E[f^2]) exact to rounding."""
    q = np.asarray(q, float)
    out = np.empty(q.shape)
    for a in range(0, q.size, _GH_CHUNK_1D):
        sl = slice(a, a + _GH_CHUNK_1D)
        sigma = float(np.sqrt(max(q[sl].max(), 0.0)))
        x, w = trapezoid_nodes(0.2 / max(1.0, sigma), SECOND_MOMENT_RADIUS)
        f = fn(np.sqrt(q[sl])[:, None] * x[None, :], ctx)
        out[sl] = (f * f) @ w
    return out


#: most nodes of one trapezoid rule: the step of the rules above shrinks like 1 / sqrt(q), so this is
#: a variance of ~2e10 for the one-dimensional second moment (step 0.2 / sqrt(q) on [-12, 12]); a
#: rule asked for more raises InputRangeError (numpy had raised "Maximum allowed size exceeded" or
#: MemoryError, naming no input)
TRAPEZOID_MAX_NODES = 1 << 24


@lru_cache(maxsize=64)
def trapezoid_nodes(h, R):
    """Nodes and weights h exp(-x^2/2)/sqrt(2 pi) of the trapezoid rule with step h on [-R, R];
    InputRangeError beyond :data:`TRAPEZOID_MAX_NODES` nodes."""
    k = math.ceil(R / h)
    if 2 * k + 1 > TRAPEZOID_MAX_NODES:
        from .inputs import InputRangeError
        raise InputRangeError(
            f"a quadrature dual would need {2 * k + 1:.3g} trapezoid nodes (step {h:.3g}; the step shrinks like "
            "1 / sqrt(variance)): the inputs' variances are too large for this activation's float64 rules; "
            "rescale X (and Z) or lower input_var")
    k = int(k)
    x = h * np.arange(-k, k + 1)
    return x, h * np.exp(-x * x / 2) / math.sqrt(2 * math.pi)


# ---------------------------------------------------------------------------------------------
# Piecewise-smooth functions with known kinks: Gauss-Legendre panels split at the kinks
# ---------------------------------------------------------------------------------------------

#: Gauss-Legendre nodes per panel of the kink-aware rules
KINK_GL = 16
#: panels of the uniform background grid on [-R, R] (length 2 R / 8 = 2.15 at R = 8.6)
KINK_PANELS = 8
#: the kink-aware rules' interval [-R, R]: the neglected tail of x^(2p) phi(x) is ~R^(2p-1) e^(-R^2/2),
#: at R = 12 below 1e-16 of E[f^2] for piecewise polynomials of degree p <= 4 (at 8.6, relu^4 lost 2.5e-12)
KINK_RADIUS = 12.0
#: ratio of successive panel lengths towards a smoothed kink, and most grading levels (GL 16 on
#: 8 panels, ratio 2: relu within 1.2e-15 of its scale at every rho; ratio 3 or 4: 3e-14 to 5e-11;
#: 6 panels of 12 nodes miss x^5 phi by 1e-13)
KINK_GRADE = 2.0
KINK_MAX_LEVELS = 32


@lru_cache(maxsize=8)
def _gauss_legendre(m):
    return np.polynomial.legendre.leggauss(m)


def kink_panel_rule(points, R, panels=None, gl=None):
    """Nodes and weights of int_{-R}^{R} g(x) phi(x) dx, phi the standard normal density, for each
    row of ``points`` (..., p): the row's points clipped to [-R, R], together with -R, R and the
    uniform grid of ``panels`` (default :data:`KINK_PANELS`) panels, sorted; each panel between
    consecutive points gets ``gl`` (default :data:`KINK_GL`) Gauss-Legendre nodes (a panel of
    length zero weighs nothing).  Exact to
    rounding for g a polynomial of degree <= 2 KINK_GL - 1 times phi's smoothness on each panel;
    g may have kinks and jumps at the given points.

    >>> x, w = kink_panel_rule(np.array([[0.0]]), 8.6)      # E[relu(X)] = 1 / sqrt(2 pi), E[X^2 1(X > 0)] = 1/2
    >>> bool(abs(w @ np.maximum(x, 0).T - 1 / math.sqrt(2 * math.pi)) < 1e-16), bool(abs((w * (x > 0)) @ (x * x).T - 0.5) < 1e-15)
    (True, True)
    """
    panels, gl = panels or KINK_PANELS, gl or KINK_GL
    pts = np.clip(np.nan_to_num(np.asarray(points, float), nan=-R), -R, R)
    lead = pts.shape[:-1]
    grid = np.broadcast_to(np.linspace(-R, R, panels + 1), lead + (panels + 1,))
    edges = np.sort(np.concatenate([grid, pts], axis=-1), axis=-1)
    a, b = edges[..., :-1, None], edges[..., 1:, None]
    t, w = _gauss_legendre(gl)
    half = (b - a) / 2
    x = (a + half) + half * t
    wx = half * w * np.exp(-x * x / 2) / math.sqrt(2 * math.pi)
    return x.reshape(lead + (-1,)), wx.reshape(lead + (-1,))


def _kink_levels(w, L):
    """Grading levels (panel lengths L / KINK_GRADE^j) from L down to below the smoothing width w:
    none where w >= 2 L or w = 0 (|rho| = 1: an exact kink, at a breakpoint already); at most
    KINK_MAX_LEVELS (L 2^-32 = 7e-10 L, below the smallest width r / |rho| >= sqrt(2 eps) of a rho
    short of +-1)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        lv = np.ceil(np.log(L / w) / math.log(KINK_GRADE)) + 1
    lv = np.clip(np.nan_to_num(lv, nan=0.0, posinf=0.0), 0, KINK_MAX_LEVELS)
    return np.where(w > 0, lv, 0).astype(int)


def gaussian_expectation_kinked(fn, qx, qz, S, kinks, ctx, soft=None):
    """E[fn(u) fn(v)], (u, v) ~ N(0, [[qx, S], [S, qz]]), for fn smooth between known ``kinks``
    (points where fn or its derivative jumps), by Gauss-Legendre panels (:func:`kink_panel_rule`):
    u = sqrt(qx) x, v = sqrt(qz) (rho x + r y), r = sqrt(1 - rho^2).  The inner rule in y splits at
    the kinks y = (c / sqrt(qz) - rho x) / r of each outer node; the outer rule in x splits at
    c / sqrt(qx) (fn(u)) and at x_c = c / (sqrt(qz) rho), where the inner integral
    m(x) = E_y[fn(v)] is a kink smoothed over the width r / |rho|, graded towards x_c in panels
    shrinking by KINK_GRADE down to that width (:func:`_kink_levels`): accurate at every
    correlation, |rho| -> 1 included.  Both rules on [-12, 12] (:data:`KINK_RADIUS`).

    ``soft``: fn is analytic, its singularities at distance ``soft`` from the real axis above and
    below the ``kinks`` (tanh: kinks (0,), soft pi / 2).  Then the panels are graded towards each
    of these points too, down to the singularities' distance in that variable: soft / sqrt(qx) for
    c / sqrt(qx) in x, soft / (sqrt(qz) r) for the inner points in y, and towards x_c down to
    max(r, soft / sqrt(qz)) / |rho|; a panel next to a point then sees the singularity at least a
    panel length away, where 16 Gauss-Legendre nodes err by ~1e-21 (Bernstein ellipse 4.6), and the
    number of panels grows like log(q) instead of the trapezoid rule's nodes like q."""
    c = np.asarray(kinks, float).ravel()
    qx, qz, S = np.broadcast_arrays(np.asarray(qx, float), np.asarray(qz, float), np.asarray(S, float))
    shape = S.shape
    qx, qz, S = qx.ravel(), qz.ravel(), S.ravel()
    rho = ctx.clip1(ctx.safe_div(S, np.sqrt(qx * qz)))
    r = np.sqrt((1.0 - rho) * (1.0 + rho))                 # no cancellation as |rho| -> 1
    R = KINK_RADIUS
    L = 2 * R / KINK_PANELS
    with np.errstate(divide="ignore", invalid="ignore"):
        width = r if soft is None else np.maximum(r, soft / np.sqrt(qz))
        lv = _kink_levels(np.where(rho != 0, width / np.abs(rho), np.inf), L)
        if soft is None:
            lu = ly = np.full(S.size, -1)                  # no grading at the kinks themselves
        else:
            lu = _kink_levels(soft / np.sqrt(qx), L)
            ly = np.where(r > 0, _kink_levels(soft / (np.sqrt(qz) * r), L), -1)
    out = np.empty(S.size)
    groups = np.stack([lv, lu, ly], axis=1)
    for J, Ju, Jy in np.unique(groups, axis=0).tolist():   # entries graded alike, in chunks
        ids = np.flatnonzero(np.all(groups == (J, Ju, Jy), axis=1))
        n_in = (KINK_PANELS + c.size * (1 + 2 * (Jy + 1))) * KINK_GL
        n_out = (KINK_PANELS + c.size * (2 + 2 * (J + 1) + 2 * (Ju + 1))) * KINK_GL
        step = max(1, (_GRID_BUDGET if soft is None else _PANEL_BUDGET) // (n_out * n_in))
        for a in range(0, ids.size, step):
            idx = ids[a:a + step]
            e = idx.size
            sx, sz, rh, rr = np.sqrt(qx[idx]), np.sqrt(qz[idx]), rho[idx], r[idx]
            with np.errstate(divide="ignore", invalid="ignore"):
                xc = (c[None, :] / sz[:, None]) / rh[:, None]                          # (e, nk)
                pts = [c[None, :] / sx[:, None], xc, _graded(xc, L, J)]
                if Ju >= 0:
                    pts.append(_graded(c[None, :] / sx[:, None], L, Ju))
                pts = np.concatenate(pts, axis=1)
            x, wx = kink_panel_rule(pts, R)                                           # (e, n_out)
            fu = fn(sx[:, None] * x, ctx)
            with np.errstate(divide="ignore", invalid="ignore"):
                yc = (c[None, None, :] / sz[:, None, None] - rh[:, None, None] * x[:, :, None]) / rr[:, None, None]
                if Jy >= 0:
                    yc = np.concatenate([yc, _graded(yc, L, Jy)], axis=2)
            y, wy = kink_panel_rule(np.where(rr[:, None, None] > 0, yc, -R), R)        # (e, n_out, n_in)
            v = sz[:, None, None] * (rh[:, None, None] * x[:, :, None] + rr[:, None, None] * y)
            m = np.einsum("eij,eij->ei", fn(v, ctx), wy)
            out[idx] = np.einsum("ei,ei->e", fu * m, wx)
    return out.reshape(shape)


def _graded(points, L, J):
    """points +- L KINK_GRADE^-j, j = 0..J, along the last axis ((..., p) -> (..., 2 p (J + 1)))."""
    steps = L * KINK_GRADE ** -np.arange(J + 1)
    return (points[..., :, None, None]
            + np.array([-1.0, 1.0])[:, None] * steps).reshape(points.shape[:-1] + (-1,))


#: larger variance above which the entries the Hermite series leaves take the graded panels of
#: :func:`gaussian_expectation_kinked` (``soft``) instead of the trapezoid rule: there the
#: trapezoid rule's (86 sqrt(q))^2 nodes an entry exceed the panels' (measured break-even)
SOFT_KINK_VARIANCE = 25.0


def _soft_split(fn, soft, trapezoid, ctx):
    """The 2-D rule of an analytic fn with nearby singularities (``soft`` = (centres, distance)):
    the trapezoid rule for entries with max(qx, qz) <= :data:`SOFT_KINK_VARIANCE`, the graded
    panels above."""
    centres, dist = soft

    def pair(qx, qz, S):
        big = np.maximum(qx, qz) > SOFT_KINK_VARIANCE
        out = np.empty(S.shape)
        if np.any(~big):
            out[~big] = trapezoid(qx[~big], qz[~big], S[~big])
        if np.any(big):
            out[big] = gaussian_expectation_kinked(fn, qx[big], qz[big], S[big], centres, ctx, soft=dist)
        return out
    return pair


def _saturating_first(saturating, rule, ctx):
    """``rule`` for the entries left by the Hermite series, except that those whose larger variance
    exceeds :data:`SOFT_KINK_VARIANCE` take the separable series of :mod:`numerics.saturating` first
    (``saturating`` = (base, A, g, parity): fn = A base + g, g localised), where it holds."""
    def pair(qx, qz, S):
        out = np.empty(S.shape)
        rest = np.ones(S.shape, dtype=bool)
        big = np.flatnonzero(np.maximum(qx, qz) > SOFT_KINK_VARIANCE)
        if big.size:
            val, ok = _saturating.expectation(*saturating, qx[big], qz[big], S[big], ctx)
            out[big[ok]] = val[ok]
            rest[big[ok]] = False
        if np.any(rest):
            out[rest] = rule(qx[rest], qz[rest], S[rest])
        return out
    return pair


def second_moment_kinked(fn, q, kinks, ctx):
    """E[fn(sqrt(q) X)^2] by Gauss-Legendre panels on [-12, 12] (24 panels of 16 nodes: one
    dimension, so cheap) split at the kinks c / sqrt(q)."""
    c = np.asarray(kinks, float).ravel()
    q = np.asarray(q, float)
    s = np.sqrt(q.ravel())
    with np.errstate(divide="ignore", invalid="ignore"):
        x, w = kink_panel_rule(c[None, :] / s[:, None], SECOND_MOMENT_RADIUS, 24, 16)
    f = fn(s[:, None] * x, ctx)
    return np.einsum("ei,ei->e", f * f, w).reshape(q.shape)


class MpmathContext(MpmathBackend):
    """mpmath numbers at the current precision (callers fence it with workdps): the half-angle
    backend's functions (spec floats read by their shortest decimal repr, as in sympy) plus those
    the activations' duals call."""

    exp = staticmethod(mpmath.exp)
    sinh = staticmethod(mpmath.sinh)
    cosh = staticmethod(mpmath.cosh)
    tanh = staticmethod(mpmath.tanh)
    erf = staticmethod(mpmath.erf)
    erfc = staticmethod(mpmath.erfc)

    @staticmethod
    def damped_sinh_cosh(qx, qz, S):
        """(exp(-(qx + qz)/2) sinh S, exp(-(qx + qz)/2) cosh S): sin's and cos's duals (mpmath's
        exponent range has no underflow or overflow to avoid)."""
        e = mpmath.exp(-(qx + qz) / 2)
        return e * mpmath.sinh(S), e * mpmath.cosh(S)

    def __init__(self, want_ntk=True):
        self.want_ntk = want_ntk
        self.xp = self

    @staticmethod
    def patch(M, q):
        if q != 1:
            raise TypeError("mpmath kernels are for fully connected programs")
        return M

    @staticmethod
    def maximum(a, b):
        """max as an mpf (a float bound such as relu's 0.0 is converted)."""
        return a if a >= b else (b if not isinstance(b, (int, float)) else mpmath.mpf(b))

    @staticmethod
    def kappa0(rho):
        return (mpmath.pi - mpmath.acos(rho)) / mpmath.pi

    @staticmethod
    def kappa1(rho):
        return (mpmath.sqrt(1 - rho * rho) + (mpmath.pi - mpmath.acos(rho)) * rho) / mpmath.pi

    @staticmethod
    def clip1(x):
        return max(mpmath.mpf(-1), min(mpmath.mpf(1), x))

    @staticmethod
    def safe_div(a, b):
        return a / b if b > 0 else a * 0

    @staticmethod
    def positive(g):
        return 1 if g > 0 else 0

    def gaussian_expectation(self, fn, qx, qz, S, smoothed=None, strip=None, kinks=None, soft=None,
                             saturating=None):
        """E[fn(u) fn(v)] at the current precision (the two-dimensional rule also where a closed-form
        smoothing exists: an independent route from the float64 one) by the trapezoid rule, certified by a second
        evaluation with step 2h/3 at 10 more digits (module docstring); ``strip`` is not used here
        (one step for both directions keeps this route independent of the float64 one), nor is
        ``soft``.  With
        ``kinks``, nested Gauss-Legendre quadrature split at them (:meth:`_kinked`) instead, certified the
        same way (without kinks a kinked function's two trapezoid steps disagree, h^2, and the
        value is refused with PrecisionError rather than returned with wrong digits)."""
        dps = mpmath.mp.dps
        qx, qz, S = mpmath.mpf(qx), mpmath.mpf(qz), mpmath.mpf(S)
        if kinks is not None:
            vals = []
            for extra in (5, 15):
                with mpmath.workdps(dps + extra):
                    vals.append(self._kinked(fn, qx, qz, S, kinks))
            return _certified(*vals, dps, "kinked quadrature dual")
        sigma = mpmath.sqrt(max(qx, qz, mpmath.mpf(1)))
        # error ~ exp(-2 pi d / h) with d = pi / (2 sigma) below 10^-(dps + 12) (7 digits of margin for
        # the prefactor: at rho = 1 the integrand's poles are of order 4)
        h = mpmath.pi ** 2 / (sigma * (dps + 12) * mpmath.log(10))
        R = mpmath.sqrt(2 * (dps + 5) * mpmath.log(10))
        vals = []
        for step, extra in ((h, 5), (2 * h / 3, 15)):
            with mpmath.workdps(dps + extra):
                vals.append(self._trapezoid(fn, qx, qz, S, mpmath.mpf(step), R))
        return _certified(*vals, dps, "quadrature dual")

    def _kinked(self, fn, qx, qz, S, kinks):
        """E[fn(u) fn(v)] at the working precision by nested Gauss-Legendre quadrature (mpmath.quad)
        on [-R, R], R = sqrt(2 (dps + 5) ln 10), u = sqrt(qx) x, v = sqrt(qz) (rho x + r y): the inner
        integral in y split at the kinks (c / sqrt(qz) - rho x) / r and at 0, the outer in x at
        c / sqrt(qx), 0 and x_c = c / (sqrt(qz) rho), where the inner integral is a kink smoothed over
        the width r / |rho|: split points x_c +- 2^-j down to that width (as the float64 rule)."""
        g = mpmath.sqrt(qx * qz)
        rho = S / g if g > 0 else mpmath.mpf(0)
        rho = max(mpmath.mpf(-1), min(mpmath.mpf(1), rho))
        r = mpmath.sqrt((1 - rho) * (1 + rho))
        sx, sz = mpmath.sqrt(qx), mpmath.sqrt(qz)
        cs = [mpmath.mpf(c) for c in kinks]
        R = mpmath.sqrt(2 * (mpmath.mp.dps + 5) * mpmath.log(10))

        def split(points):
            inside = sorted(set(p for p in points if mpmath.isfinite(p) and -R < p < R))
            return [-R] + inside + [R]

        def quad(f, pts):
            return mpmath.quad(f, split(pts), method="gauss-legendre")

        def inner(x):
            if r == 0:
                return fn(sz * rho * x, self)
            kinks_y = [(c / sz - rho * x) / r for c in cs] if sz > 0 else []    # fn(0) for every y
            return quad(lambda y: fn(sz * (rho * x + r * y), self) * mpmath.npdf(y), [mpmath.mpf(0)] + kinks_y)

        outer = [mpmath.mpf(0)] + ([c / sx for c in cs] if sx > 0 else [])
        if rho != 0:
            w = r / abs(rho)
            for c in cs:
                xc = c / (sz * rho)
                outer.append(xc)
                j = 0
                while w > 0 and 2 ** -j > w / 2 and j < 4 * mpmath.mp.dps:
                    outer += [xc - mpmath.mpf(2) ** -j, xc + mpmath.mpf(2) ** -j]
                    j += 1
        return quad(lambda x: fn(sx * x, self) * inner(x) * mpmath.npdf(x), outer)

    def _trapezoid(self, fn, qx, qz, S, h, R):
        """The product trapezoid rule of step h on [-R, R]^2.  At rho = +-1 (the diagonal state
        (q, q, q) of every variance, and exactly antiparallel pairs) v = sqrt(qz) rho x for every y, so
        the inner sum is fn(v) times the sum of the weights: the same rule's value in one dimension."""
        g = qx if qx == qz else mpmath.sqrt(qx * qz)      # rho = 1 exactly on the diagonal state
        rho = S / g if g > 0 else mpmath.mpf(0)
        rho = max(mpmath.mpf(-1), min(mpmath.mpf(1), rho))
        r2 = mpmath.sqrt(1 - rho * rho)
        sx, sz = mpmath.sqrt(qx), mpmath.sqrt(qz)
        k = int(mpmath.ceil(R / h))
        xs = [h * i for i in range(-k, k + 1)]
        ws = [h * mpmath.exp(-x * x / 2) / mpmath.sqrt(2 * mpmath.pi) for x in xs]
        wsum = mpmath.fsum(ws) if r2 == 0 else None
        total = mpmath.mpf(0)
        for x, wx in zip(xs, ws):
            fu = fn(sx * x, self)
            if fu == 0:
                continue
            if wsum is not None:
                inner = wsum * fn(sz * rho * x, self)
            else:
                inner = mpmath.fsum(wy * fn(sz * (rho * x + r2 * y), self) for y, wy in zip(xs, ws))
            total += wx * fu * inner
        return total


def _certified(a, b, dps, what):
    """``b`` (the finer of two evaluations) rounded to ``dps`` digits where the two agree to that
    precision (relative, or absolute below 10^-dps), else :class:`PrecisionError`."""
    if abs(a - b) > mpmath.mpf(10) ** (-dps) * max(abs(b), mpmath.mpf(10) ** (-dps)):
        raise PrecisionError(f"{what} not certified at {dps} digits: {a} vs {b}")
    return +b


MPMATH_CONTEXT = MpmathContext


def stem_state(stem, Gxz, Gxx, Gzz, xp_zero, number=float):
    """The stem state from inner products: q = input_var |x|^2 + b, S = input_var <x, z> + b,
    T = S if the input layer is trained else 0 (Gxz, Gxx, Gzz already averaged over stem taps;
    ``number`` reads the spec's floats into the number system)."""
    iv, b = number(stem.input_var), number(stem.bias_var)
    S = iv * Gxz + b
    qx = iv * Gxx + b
    qz = qx if Gzz is Gxx else iv * Gzz + b
    return _G.State(qx, qz, S, S if stem.trained else xp_zero(S))


def fc_kernel(maps, Gxz, Gxx, Gzz, want_ntk: bool, ctx=None):
    """NNGP or NTK of a fully connected program from inner products (float64 arrays or mpmath
    numbers; ``Gzz`` may be ``Gxx`` itself for a symmetric block)."""
    ctx = ctx or NumpyContext(want_ntk)
    st = stem_state(maps[0], Gxz, Gxx, Gzz, lambda S: S * 0, ctx.number)
    st = _G.run(maps, st, ctx)
    return st.T if want_ntk else st.S

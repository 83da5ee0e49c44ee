"""Funk-Hecke eigenvalues of zonal kernels on S^(d-1) at any number of correct digits.

mu_k = c_d int_0^pi f(cos theta) P_k(cos theta) sin^(d-2)(theta) d theta     (docs/spectral.md §1)

with respect to the uniform probability measure (so sum_k N(d,k) mu_k = f(1)).

Method (docs/spectral.md §7.1-7.2):

* Gauss-Legendre in theta on [0, pi]: every contract FC kernel is analytic in theta
  (the (1 - t)^(1/2) endpoint singularity becomes theta/sqrt 2), so the rule converges
  geometrically; n = 1.5 k_max + 2 dps + 100 nodes.
* All k in one pass: the normalised Gegenbauer polynomials P_0..P_kmax are run by the
  three-term recurrence at every node, in fixed-point integer arithmetic (``wp`` bits)
  vectorised over nodes -- no per-k restart, no monomial expansion.
* Working precision: dps + ceil((d + 2) log10(k_max + 2)) + 8 digits, since mu_k ~ k^-s
  comes out of an integrand of size f(1) (s = d for NTKs, d + 2 for NNGPs).
* Verification: a second pass with more nodes (n + n/4 + 32) and 10 more digits.  A value
  is returned only when both passes agree to dps + 1 digits; otherwise the precision and
  node count are raised (up to ``max_retries`` times) and then :class:`PrecisionError`
  is raised -- never wrong digits.
* Exact zeros: a value whose magnitude is below the absolute floor
  max|f| 10^-(dps + ceil((d+2) log10(k_max+2)) + 8) in both passes is returned as exactly 0
  (max|f| over 17 equispaced angles; it is f(1) for every PSD kernel)
  (e.g. the odd k >= 3 of MLP(depth=1)).  Kernels whose true eigenvalues fall below this
  floor (analytic kernels decay faster than any power) also get 0 there.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Iterable

import mpmath
import numpy as np

from reskernels.theory.arch import check_kind

from .pointwise import kernel_theta_mp


class PrecisionError(ArithmeticError):
    """The requested digits could not be certified."""


@dataclass
class SpectrumInfo:
    """How a spectrum was computed (recorded with every result)."""

    d: int
    ks: list
    dps: int
    nodes: tuple
    work_dps: tuple
    floor: mpmath.mpf
    retries: int
    zeros: list


def _fixed(x, wp):
    """mpf -> integer round(x 2^wp)."""
    return int(mpmath.nint(mpmath.ldexp(x, wp)))


def _legendre_fixed(X, n, wp):
    """(P_n(x), P_{n-1}(x)) for an object array of fixed-point x (O(n) vectorised steps)."""
    one = 1 << wp
    p0 = np.array([one] * len(X), dtype=object)
    p1 = X.copy()
    for j in range(1, n):
        p0, p1 = p1, ((2 * j + 1) * ((X * p1) >> wp) - j * p0) // (j + 1)
    return p1, p0


@lru_cache(maxsize=16)
def gauss_legendre_fixed(n: int, wp: int):
    """Gauss-Legendre nodes x_i and weights w_i on [-1, 1] with ``wp``-bit accuracy.

    float64 starting values (numpy) refined by Newton's method on P_n in fixed-point
    integer arithmetic (the O(n^2) recurrence vectorised over nodes).  Newton converges
    quadratically, so once the largest update is below 2^(-wp/2 - 8) the next update
    leaves an error below 2^(-wp - 16); the weights 2 / ((1 - x^2) P_n'(x)^2) use P_n'
    from one more recurrence pass at the final nodes.  Returns (x, w) as tuples of mpf.
    """
    x0, _ = np.polynomial.legendre.leggauss(n)
    half = x0[n // 2:]  # the non-negative half (with the middle node 0 when n is odd)
    one = 1 << wp
    X = np.array([int(round(float(v) * 2.0 ** 53)) << (wp - 53) for v in half], dtype=object)
    fine = 1 << max(0, wp // 2 - 8)

    def newton_parts(X):
        p1, p0 = _legendre_fixed(X, n, wp)
        x2m1 = ((X * X) >> wp) - one                       # x^2 - 1 < 0 for interior nodes
        dp = (n * (((X * p1) >> wp) - p0) << wp) // x2m1    # P_n' = n (x P_n - P_{n-1}) / (x^2 - 1)
        return p1, dp

    for it in range(12):
        p1, dp = newton_parts(X)
        step = (p1 << wp) // dp
        X = X - step
        if max(abs(int(v)) for v in step) < fine:
            break
    else:  # pragma: no cover - Newton converges from float64 starts
        raise PrecisionError("Gauss-Legendre Newton iteration did not converge")
    _, dp = newton_parts(X)
    with mpmath.workprec(wp):
        xs = [mpmath.ldexp(mpmath.mpf(int(v)), -wp) for v in X]
        ws = [2 / ((1 - xv * xv) * mpmath.ldexp(mpmath.mpf(int(q)), -wp) ** 2) for xv, q in zip(xs, dp)]
    skip = 1 if n % 2 == 1 else 0  # the middle node appears once
    full_x = [-v for v in reversed(xs[skip:])] + xs
    full_w = list(reversed(ws[skip:])) + ws
    return tuple(full_x), tuple(full_w)


def _is_spec(f) -> bool:
    return callable(getattr(f, "kernel_maps", None))


def _kernel_theta(f, kind, normalized, variable="t"):
    if _is_spec(f):
        if f.is_conv:
            raise TypeError(f"eigenvalues on the sphere need a fully connected (zonal) spec, got {f.slug}; "
                            "conv kernels: reskernels.numerics.multisphere")
        check_kind(kind)
        return lambda th: kernel_theta_mp(f, th, kind, normalized=normalized)
    if callable(f):
        if variable == "theta":
            return f
        if variable != "t":
            raise ValueError(f"variable must be 't' or 'theta', got {variable!r}")
        return lambda th: f(mpmath.cos(th))
    raise TypeError(f"eigenvalues needs an FC architecture spec or a callable t -> K(t), got {f!r}")


def _one_pass(kth, d: int, kmax: int, n: int, dps_work: int):
    """mu_0..mu_kmax by n-node theta-Gauss-Legendre at dps_work digits (mpf list)."""
    wp = int(dps_work * 3.33) + 16
    with mpmath.workprec(wp):
        x, w = gauss_legendre_fixed(n, wp)
        pi = mpmath.pi
        cd = mpmath.gamma(mpmath.mpf(d) / 2) / (mpmath.sqrt(pi) * mpmath.gamma(mpmath.mpf(d - 1) / 2))
        T, W = [], []
        for xi, wi in zip(x, w):
            th = pi * (xi + 1) / 2
            s = mpmath.sin(th)
            weight = cd * (pi / 2) * wi * kth(th) * (s ** (d - 2) if d > 2 else 1)
            T.append(_fixed(mpmath.cos(th), wp))
            W.append(_fixed(weight, wp))
        one = 1 << wp
        Tv = np.array(T, dtype=object)
        Wv = np.array(W, dtype=object)
        acc = [sum(W)]
        p0 = np.array([one] * n, dtype=object)
        p1 = Tv.copy()
        if kmax >= 1:
            acc.append(int(((Wv * p1) >> wp).sum()))
        for k in range(1, kmax):
            p0, p1 = p1, ((2 * k + d - 2) * ((Tv * p1) >> wp) - k * p0) // (k + d - 2)
            acc.append(int(((Wv * p1) >> wp).sum()))
        return [mpmath.ldexp(mpmath.mpf(a), -wp) for a in acc]


def eigenvalues(f, kind: str = "ntk", d: int = 3, ks: Iterable[int] = range(0, 201), dps: int = 30,
                *, normalized: bool = False, variable: str = "t", max_retries: int = 3,
                return_info: bool = False):
    """Funk-Hecke eigenvalues mu_k (uniform probability measure on S^(d-1)), certified to
    ``dps`` significant digits.

    Parameters
    ----------
    f : MLP or ResNet spec, or a callable t -> K(t) accepting mpf (any zonal kernel)
    kind : "ntk" or "nngp" (ignored for a callable)
    d : ambient dimension >= 2 (d = 3 is the ordinary sphere S^2)
    ks : degrees k >= 0 (all computed in one pass)
    dps : significant digits guaranteed in every returned value (exact zeros: see module doc)
    normalized : use the kernel divided by its diagonal scale (FC specs)
    variable : for a callable, whether it takes t = cos(theta) ("t") or the angle ("theta");
        the angle form avoids the cancellation of 1 - t near t = 1 (e.g. the Laplace kernel)
    return_info : also return a :class:`SpectrumInfo` describing nodes, precisions and zeros

    Returns
    -------
    list of mpmath.mpf, one per k in ``ks``.

    Examples
    --------
    >>> from reskernels.theory import MLP
    >>> mu = eigenvalues(MLP(depth=1), "ntk", d=3, ks=[0, 1, 2, 3], dps=20)
    >>> [mpmath.nstr(m, 12) for m in mu]     # 1/2, 1/3, 5/64, exact 0
    ['0.5', '0.333333333333', '0.078125', '0.0']
    """
    ks = [int(k) for k in ks]
    if not ks or min(ks) < 0:
        raise ValueError(f"ks must be a non-empty collection of integers >= 0, got {ks!r}")
    if int(d) != d or d < 2:
        raise ValueError(f"d (ambient dimension) must be an integer >= 2, got {d!r}")
    if int(dps) != dps or dps < 5:
        raise ValueError(f"dps must be an integer >= 5, got {dps!r}")
    d, dps = int(d), int(dps)
    kmax = max(ks)
    kth = _kernel_theta(f, kind, normalized, variable)
    decay_digits = math.ceil((d + 2) * math.log10(kmax + 2))
    work = dps + decay_digits + 8
    n = int(1.5 * kmax) + 2 * dps + 100
    with mpmath.workdps(work + 5):
        # the scale of the integrand: max |K| on a theta grid (= K(1) for PSD kernels, but
        # also right for kernels that vanish at t = 1 such as (1 - t)^nu)
        fmax = max(abs(kth(mpmath.pi * j / 16)) for j in range(17))
        floor = fmax * mpmath.mpf(10) ** (-work)
    for attempt in range(max_retries + 1):
        n2, work2 = n + n // 4 + 32, work + 10
        a = _one_pass(kth, d, kmax, n, work)
        b = _one_pass(kth, d, kmax, n2, work2)
        out, zeros, short = [], [], 0
        with mpmath.workdps(work2):
            for k in ks:
                x, y = a[k], b[k]
                if abs(x) <= floor and abs(y) <= floor:
                    out.append(mpmath.mpf(0))
                    zeros.append(k)
                    continue
                rel = abs(x - y) / abs(y) if y != 0 else mpmath.inf
                if rel > mpmath.mpf(10) ** (-(dps + 1)):
                    lost = (dps + 1) + (mpmath.log10(rel) if rel != mpmath.inf else work)
                    short = max(short, int(mpmath.ceil(lost)))
                out.append(y)
        if short == 0:
            with mpmath.workdps(dps + 5):
                res = [+v for v in out]
            if return_info:
                return res, SpectrumInfo(d, ks, dps, (n, n2), (work, work2), floor, attempt, zeros)
            return res
        work += short + 5
        n = int(n * 1.5)
    raise PrecisionError(f"could not certify {dps} digits for k up to {kmax} on S^{d - 1} "
                         f"after {max_retries} retries (last shortfall {short} digits)")


def eigenvalues_float64(f, kind: str = "ntk", d: int = 3, ks=range(0, 201), n: int = 400):
    """The float64 theta-Gauss-Legendre route (what most public code does), for comparison.

    Loses digits like 1e-16 / mu_k (docs/spectral.md §7.2): use :func:`eigenvalues` for digits.
    """
    from scipy.special import gamma
    from .pointwise import zonal
    g = zonal(f, kind) if _is_spec(f) else f
    x, w = np.polynomial.legendre.leggauss(n)
    th = np.pi * (x + 1) / 2
    cd = gamma(d / 2) / (np.sqrt(np.pi) * gamma((d - 1) / 2))
    W = cd * (np.pi / 2) * w * g(np.cos(th)) * np.sin(th) ** (d - 2)
    ks = list(ks)
    kmax = max(ks)
    t = np.cos(th)
    P = [np.ones_like(t), t]
    for k in range(1, kmax):
        P.append(((2 * k + d - 2) * t * P[k] - k * P[k - 1]) / (k + d - 2))
    return np.array([float(np.dot(W, P[k])) for k in ks])


def laplace_theta(c=1):
    """The Laplace kernel exp(-c |x - z|) on the sphere as a function of the angle:
    |x - z| = 2 sin(theta/2) (docs/spectral.md §5.3); mu_k ~ c 2^(d-2) Gamma(d/2)^2/pi k^-d."""
    def f(theta):
        return mpmath.exp(-2 * mpmath.mpf(c) * mpmath.sin(theta / 2))
    return f

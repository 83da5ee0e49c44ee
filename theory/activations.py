"""Activations and everything the engines need to know about them, as named hooks.

An activation phi enters a kernel only through two Gaussian expectations, its *dual
activations* (Cho & Saul 2009; Daniely et al. 2016): for a centred Gaussian pair (u, v) with
variances Sxx, Szz and covariance S,

    E[phi(u) phi(v)]    (the NNGP through the activation),
    E[phi'(u) phi'(v)]  (the derivative factor of the NTK).

Each :class:`Activation` carries these as hooks, the way a sympy function carries its special
values, derivatives and series:

``second_moment``
    m2 = E[phi(g)^2] for g ~ N(0, 1), exact (sympy).  For a positively homogeneous activation
    E[phi(u) phi(v)] = m2 sqrt(Sxx Szz) kappa1(rho) and E[phi'(u) phi'(v)] = m2 kappa0(rho),
    with rho = S / sqrt(Sxx Szz) and the *normalised* duals kappa1(1) = kappa0(1) = 1 for ReLU.
``kappa0(x)``, ``kappa1(x)``
    the normalised duals of a sympy expression *or* of a truncated :class:`theory.series.Series`
    (Taylor at an interior point, Puiseux expansion at rho = +-1): exact kernels, Taylor and
    endpoint coefficients all come from these two hooks.
``half_angle(su, sv, xp)``
    the float64 / mpmath form on the half-angle state (su, sv) = (sin, cos)(theta/2):
    returns (rho, kappa0, kappa1, dk, u2, v2) with kappa1 = rho + dk, dk computed without
    cancellation, so that 1 -+ kappa1 stay accurate relative to their size near rho = +-1.
``from_rho(rho, xp)``, ``from_theta(theta, xp)``
    (pi kappa1, pi - theta) from a correlation or from an angle, the conv engines' forms.
``fn(x, xp)``, ``derivative(x, xp)``
    the finite-width function and its (a.e.) derivative for Monte Carlo networks.
``engine_id``, ``engine_params``, ``engine_coefs``
    the activation's code in the compiled (numba) and CUDA engines (-1: none), and the floats its
    compiled dual reads (see :data:`ENGINE_IDS`): the numba conv loops of
    :mod:`numerics.conv_fused` evaluate the dual selected by the id with the same formula and the
    same operation order as the ``dual`` / ``from_rho`` hooks below.

``homogeneous`` marks positive homogeneity of degree 1 (phi(c x) = c phi(x), c > 0): the kernel
then depends on the input norms only through the diagonal scale, and an engine may carry the
normalised half-angle state alone.  ReLU is the only entry so far; a new activation is one more
instance of :class:`Activation` registered in :data:`ACTIVATIONS`.

References
----------
Cho & Saul, "Kernel methods for deep learning", NeurIPS 2009 (arc-cosine kernels);
docs/conventions.md ("Architectures") for the kernel maps the engines build from these hooks.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache
from typing import Callable

import sympy as sp

from . import duals as _duals
from . import series as _series


#: the compiled duals (numba: :mod:`numerics.conv_duals`; CUDA: ReLU only), by activation family.
#: ``engine_params`` per family: leaky_relu (w, 2 s, 1 + s^2) of its docstring; rectified_monomial
#: (n, len A_n, len B_n, len A_(n-1), len B_(n-1)) with ``engine_coefs`` = A_n, B_n, A_(n-1), B_(n-1)
#: (:func:`_arccos_kernel_parts`); monomial (n, count, count') with ``engine_coefs`` the Mehler
#: coefficients of E[u^n v^n] then of E[u^(n-1) v^(n-1)]; the others none.
ENGINE_IDS = {"relu": 0, "leaky_relu": 1, "step": 2, "rectified_monomial": 3, "erf": 4, "sin": 5, "cos": 6,
              "monomial": 7}


@dataclass(frozen=True, eq=False)
class Activation:
    """An activation with its dual-activation hooks (see the module docstring).

    Two activations are equal when their ``key`` is: a name plus parameters, so that specs
    built with ``"relu"`` and with ``relu()`` compare and hash equal.  Hooks that only a
    positively homogeneous activation has (``kappa0``, ``kappa1``, ``half_angle``, ``from_rho``,
    ``from_theta``, ``second_moment``) are None for the others; every activation has ``dual``,
    ``fn`` and ``derivative``."""

    name: str
    key: tuple
    fn: Callable
    derivative: Callable
    dual: Callable
    homogeneous: bool = False
    second_moment: sp.Expr | None = None
    kappa0: Callable | None = None
    kappa1: Callable | None = None
    half_angle: Callable | None = None
    from_rho: Callable | None = None
    from_theta: Callable | None = None
    engine_id: int = -1
    engine_params: tuple = ()
    engine_coefs: tuple = ()
    polynomial_degree: int | None = None
    closed_form: bool = True

    def __post_init__(self):
        object.__setattr__(self, "_m2", None if self.second_moment is None else float(self.second_moment))

    def __eq__(self, other):
        return isinstance(other, Activation) and self.key == other.key

    def __hash__(self):
        return hash(self.key)

    def __repr__(self):
        return self.name

    @property
    def second_moment_float(self) -> float:
        """m2 as a float (computed once)."""
        return self._m2


# ---------------------------------------------------------------------------------------------
# ReLU: kappa0(r) = (pi - arccos r)/pi, kappa1(r) = (sqrt(1 - r^2) + (pi - arccos r) r)/pi, m2 = 1/2
# ---------------------------------------------------------------------------------------------

#: h = theta/2 below which float64 backends take g(h) = su sv - h rho = (sin 2h - 2h cos 2h)/2 from its
#: Taylor series (:data:`HALF_F_SERIES`) instead of the difference, whose two terms are both ~h while
#: g ~ 4h^3/3: the difference errs by up to ~1.5 eps / h^2 relative (24 eps at h = 1/4, where 14 were
#: measured; 3e4 eps at h = 0.007), and 1 - kappa1 = 2 su^2 - dk carries it into the next layer's half
#: angle as ~0.6 eps / h, layer after layer (the deep FC recursion, where h ~ 3 pi / (2 l) at layer l:
#: MLP(10^4) at t = 0 had 1 - rho_L off by 6e-9 relative and the NTK by 1.4e-9; docs/spectral.md §7.4).
#: 0 turns the series off (the bits of the difference everywhere, as before 2026-12-03; the golden tests
#: check that).
SMALL_ANGLE_H = 0.25
#: g(h) / h^3 = sum_n c_n h^(2n - 2), c_n = (-1)^(n+1) n 2^(2n+1) / (2n+1)!, n = 1..8 (4/3, -8/15, 8/105,
#: ...): on h < 1/4 within 2 eps of g, relative (1.85 eps measured against mpmath at 50 digits; the 8th
#: term is below the rounding)
HALF_F_SERIES = tuple(float(Fraction((-1) ** (n + 1) * n * 2 ** (2 * n + 1), math.factorial(2 * n + 1)))
                      for n in range(1, 9))


def half_f_series(h):
    """g(h) = su sv - h rho = (sin 2h - 2h cos 2h)/2 by :data:`HALF_F_SERIES` (Horner in h^2): accurate
    relative to g for small h, where the difference cancels (see :data:`SMALL_ANGLE_H`)."""
    h2 = h * h
    s = h2 * HALF_F_SERIES[-1]              # a new array (or scalar); then in place on arrays
    for c in HALF_F_SERIES[-2:0:-1]:
        s += c
        s *= h2
    s += HALF_F_SERIES[0]
    s *= h * h2
    return s


def _relu_half_angle(su, sv, xp):
    """(rho, kappa0, kappa1, dk, su^2, sv^2) of ReLU from the half-angle state.

    With h = theta/2: rho = sv^2 - su^2, kappa0 = 1 - 2h/pi and
    dk = (sin theta - theta cos theta)/pi = (2/pi)(su sv - h rho) >= 0, so that
    kappa1 = rho + dk, 1 - kappa1 = 2 su^2 - dk, 1 + kappa1 = 2 sv^2 + dk (no cancellation).
    One arcsin of min(su, sv), reflected to pi/2 - m when su > sv.  On float64 backends
    (``xp.small_angle_series``) su sv - h rho comes from its Taylor series where h < :data:`SMALL_ANGLE_H`;
    mpmath keeps the difference (its working precision absorbs the cancellation, and the reference
    route then shares no formula with float64 there).
    """
    pi = xp.pi
    u2 = su * su
    v2 = sv * sv
    rho = v2 - u2
    m = xp.arcsin(xp.minimum(su, sv))
    h = xp.where(su <= sv, m, pi / 2 - m)
    k0 = 1 - h * (2 / pi)
    g = su * sv - h * rho
    if SMALL_ANGLE_H > 0 and xp.small_angle_series:
        g = xp.where_fn(h < SMALL_ANGLE_H, half_f_series, h, g)
    f_pi = g * (2 / pi)
    k1 = rho + f_pi
    return rho, k0, k1, f_pi, u2, v2


def _relu_from_rho(rho, xp, pi):
    """(pi kappa1(rho), pi - arccos(rho)) in the operation order of every float64 conv engine:
    sqrt(1 - rho^2) + (pi - theta) rho.  At rho = 1 exactly: (pi, pi)."""
    pt = pi - xp.arccos(rho)
    k = xp.sqrt(1.0 - rho * rho)
    k += pt * rho
    return k, pt


def _relu_from_theta(theta, xp, pi):
    """(pi kappa1, pi - theta) from an angle known more accurately than its cosine:
    sin theta + (pi - theta) cos theta."""
    p = pi - theta
    return xp.sin(theta) + p * xp.cos(theta), p


def _relu_fn(x, xp):
    return xp.maximum(x, 0.0)


def _relu_derivative(x, xp):
    return x > 0


def _relu_dual(qx, qz, S, xp, ntk=True):
    """E[relu(u) relu(v)] = sqrt(Sxx Szz) kappa1(rho)/2, E[relu'(u) relu'(v)] = kappa0(rho)/2."""
    g = xp.sqrt(qx * qz)
    rho = xp.clip1(xp.safe_div(S, g))
    return g * xp.kappa1(rho) / 2, (xp.kappa0(rho) / 2 if ntk else None)


RELU = Activation(
    name="relu", key=("relu",), homogeneous=True, second_moment=sp.Rational(1, 2),
    kappa0=_series.kappa0, kappa1=_series.kappa1, half_angle=_relu_half_angle,
    from_rho=_relu_from_rho, from_theta=_relu_from_theta, fn=_relu_fn,
    derivative=_relu_derivative, dual=_relu_dual, engine_id=0)
"""ReLU, max(x, 0): kappa0(r) = (pi - arccos r)/pi, kappa1(r) = (sqrt(1 - r^2) + (pi - arccos r) r)/pi
(arc-cosine kernels of degree 0 and 1, Cho & Saul 2009), m2 = 1/2, so that
E[relu(u) relu(v)] = sqrt(Sxx Szz) kappa1(rho)/2 and E[relu'(u) relu'(v)] = kappa0(rho)/2."""


def relu() -> Activation:
    """ReLU, max(x, 0) (the activation of the five papers).

    >>> import sympy as sp
    >>> r = sp.Symbol("r")
    >>> act = relu()
    >>> sp.simplify(sp.diff(act.kappa1(r), r) - act.kappa0(r))    # kappa1' = kappa0
    0
    >>> act.kappa0(sp.Integer(1)), act.kappa1(sp.Integer(1)), act.second_moment
    (1, 1, 1/2)
    """
    return RELU


# ---------------------------------------------------------------------------------------------
# Leaky ReLU and abs: positively homogeneous, duals from ReLU's (phi = relu(x) - s relu(-x))
# ---------------------------------------------------------------------------------------------

def leaky_relu(slope: float) -> Activation:
    """Leaky ReLU, max(x, 0) + slope min(x, 0) (``slope=-1`` is abs, ``slope=0`` ReLU, 1 the identity).

    With phi = relu(x) - s relu(-x) and kappa1(-r) = kappa1(r) - r:
    E[phi(u) phi(v)] = sqrt(Sxx Szz) [(1 - s)^2 kappa1(rho) + 2 s rho] / 2 and
    E[phi'(u) phi'(v)] = [(1 - s)^2 kappa0(rho) + 2 s] / 2, so m2 = (1 + s^2)/2 and the normalised
    duals are k1 = [(1-s)^2 kappa1 + 2 s rho]/(1 + s^2), k0 = [(1-s)^2 kappa0 + 2 s]/(1 + s^2);
    k1 - rho = (1-s)^2 (kappa1 - rho)/(1 + s^2) >= 0 keeps the half-angle state free of cancellation.

    >>> import sympy as sp
    >>> r = sp.Symbol("r")
    >>> a = leaky_relu(0.25)
    >>> sp.simplify(sp.diff(a.kappa1(r), r) - a.kappa0(r)), a.kappa1(sp.Integer(1)), a.second_moment
    (0, 1, 17/32)
    """
    if isinstance(slope, bool) or not isinstance(slope, (int, float)) or not math.isfinite(slope):
        raise ValueError(f"slope must be a finite real number, got {slope!r}")
    s = float(slope)
    if s == -1.0 and s != 0:
        name = "abs"
    else:
        name = f"leaky_relu({s:g})"
    se = sp.Rational(repr(s))
    w, m2 = (1 - se) ** 2, (1 + se ** 2) / 2
    wf, twos, den = float(w), 2 * s, float(1 + se ** 2)
    if s == 0.0:
        return RELU

    def k0(x):
        return (w * _series.kappa0(x) + 2 * se) / (1 + se ** 2)

    def k1(x):
        return (w * _series.kappa1(x) + 2 * se * x) / (1 + se ** 2)

    def half_angle(su, sv, xp):
        rho, r0, r1, dk, u2, v2 = _relu_half_angle(su, sv, xp)
        w_, t_, d_ = xp.number(wf), xp.number(twos), xp.number(den)     # exact decimals in mpmath
        dk = dk * (w_ / d_)
        return rho, (r0 * w_ + t_) / d_, rho + dk, dk, u2, v2

    def from_rho(rho, xp, pi):
        k, pt = _relu_from_rho(rho, xp, pi)
        return (k * wf + twos * pi * rho) / den, (pt * wf + twos * pi) / den

    def from_theta(theta, xp, pi):
        k, p = _relu_from_theta(theta, xp, pi)
        return (k * wf + twos * pi * xp.cos(theta)) / den, (p * wf + twos * pi) / den

    def dual(qx, qz, S, xp, ntk=True):
        g = xp.sqrt(qx * qz)
        rho = xp.clip1(xp.safe_div(S, g))
        wx, sx = xp.number(w), xp.number(se)
        E1 = g * (wx * xp.kappa1(rho) + 2 * sx * rho) / 2
        return E1, ((wx * xp.kappa0(rho) + 2 * sx) / 2 if ntk else None)

    return Activation(
        name=name, key=("leaky_relu", s), homogeneous=True, second_moment=m2, kappa0=k0, kappa1=k1,
        half_angle=half_angle, from_rho=from_rho, from_theta=from_theta,
        fn=lambda x, xp: xp.where(x > 0, x, s * x), derivative=lambda x, xp: xp.where(x > 0, 1.0, s),
        dual=dual, engine_id=ENGINE_IDS["leaky_relu"], engine_params=(wf, twos, den))


def abs_() -> Activation:
    """|x| = leaky_relu(-1): E[|u||v|] = sqrt(Sxx Szz)(2 kappa1(rho) - rho),
    E[sign(u) sign(v)] = 2 kappa0(rho) - 1 (= 1 - 2 theta/pi)."""
    return leaky_relu(-1.0)


# ---------------------------------------------------------------------------------------------
# Non-homogeneous activations: duals in closed form, (qx, qz, S) -> (E[phi phi], E[phi' phi'])
# ---------------------------------------------------------------------------------------------

def step() -> Activation:
    """Heaviside step, 1 for x > 0 and 0 otherwise: E[phi(u) phi(v)] = kappa0(rho)/2 (the
    arc-cosine kernel of degree 0).  Its derivative vanishes almost everywhere, so, as in a
    finite network trained by backpropagation, no gradient passes the step: E[phi' phi'] = 0."""
    def dual(qx, qz, S, xp, ntk=True):
        g = xp.sqrt(qx * qz)
        rho = xp.clip1(xp.safe_div(S, g))
        return xp.positive(g) * xp.kappa0(rho) / 2, (S * 0 if ntk else None)
    return Activation(name="step", key=("step",), fn=lambda x, xp: (x > 0) * 1.0,
                      derivative=lambda x, xp: x * 0.0, dual=dual, engine_id=ENGINE_IDS["step"])


def erf() -> Activation:
    """erf(x): E[erf(u) erf(v)] = (2/pi) arcsin(2 S / sqrt((1 + 2 Sxx)(1 + 2 Szz))) and
    E[erf'(u) erf'(v)] = (4/pi) / sqrt((1 + 2 Sxx)(1 + 2 Szz) - 4 S^2) (Williams 1997)."""
    def dual(qx, qz, S, xp, ntk=True):
        d = (1 + 2 * qx) * (1 + 2 * qz)
        E1 = (2 / xp.pi) * xp.arcsin(2 * S / xp.sqrt(d))
        return E1, ((4 / xp.pi) / xp.sqrt(d - 4 * S * S) if ntk else None)
    return Activation(name="erf", key=("erf",), fn=lambda x, xp: xp.erf(x),
                      derivative=lambda x, xp: (2 / math.sqrt(math.pi)) * xp.exp(-x * x), dual=dual,
                      engine_id=ENGINE_IDS["erf"])


#: sin's and cos's duals in float64: up to this variance as exp(-(qx + qz)/2) times sinh S, cosh S (a
#: product exp(-q/2) exp(-q'/2) of two such factors is a normal float64, exp(-708) = 3.3e-308, and
#: sinh, cosh of |S| <= sqrt(q q') stay finite); above it in the form exp(|S| - (qx + qz)/2) (1 -+
#: exp(-2|S|)) / 2, which neither underflows nor overflows (NumpyContext.damped_sinh_cosh,
#: numerics.conv_fused_general.sin_dual_large)
HALF_EXP_MAX_VARIANCE = 708.0


def sin() -> Activation:
    """sin(x): E[sin u sin v] = exp(-(Sxx + Szz)/2) sinh(S), E[cos u cos v] = exp(-(Sxx + Szz)/2) cosh(S)
    (``xp.damped_sinh_cosh``: in float64 without underflow or overflow at large variances)."""
    def dual(qx, qz, S, xp, ntk=True):
        sh, ch = xp.damped_sinh_cosh(qx, qz, S)
        return sh, (ch if ntk else None)
    return Activation(name="sin", key=("sin",), fn=lambda x, xp: xp.sin(x),
                      derivative=lambda x, xp: xp.cos(x), dual=dual, engine_id=ENGINE_IDS["sin"])


def cos() -> Activation:
    """cos(x): E[cos u cos v] = exp(-(Sxx + Szz)/2) cosh(S), E[sin u sin v] = exp(-(Sxx + Szz)/2) sinh(S)
    (``xp.damped_sinh_cosh``, as :func:`sin`)."""
    def dual(qx, qz, S, xp, ntk=True):
        sh, ch = xp.damped_sinh_cosh(qx, qz, S)
        return ch, (sh if ntk else None)
    return Activation(name="cos", key=("cos",), fn=lambda x, xp: xp.cos(x),
                      derivative=lambda x, xp: -xp.sin(x), dual=dual, engine_id=ENGINE_IDS["cos"])


def _hermite_moment_coefficients(n: int) -> list:
    """[(k, c)] with E[X^n Y^n] = sum_k c rho^k for standard normals of correlation rho:
    c = (n! / (k! ((n-k)/2)! 2^((n-k)/2)))^2 k!  (Mehler: x^n = sum_k c_nk He_k(x))."""
    out = []
    for k in range(n % 2, n + 1, 2):
        j = (n - k) // 2
        cnk = sp.factorial(n) / (sp.factorial(k) * sp.factorial(j) * 2 ** j)
        out.append((k, cnk ** 2 * sp.factorial(k)))
    return out


def _monomial_moment(n, qx, qz, S):
    """E[u^n v^n] = sum_k c_k S^k (Sxx Szz)^((n-k)/2), a polynomial in (Sxx, Szz, S)."""
    tot = 0
    for k, c in _hermite_moment_coefficients(n):
        tot = tot + int(c) * S ** k * (qx * qz) ** ((n - k) // 2)
    return tot


def monomial(n: int) -> Activation:
    """x^n: E[u^n v^n] = sum_k c_nk^2 k! S^k (Sxx Szz)^((n-k)/2) over k = n, n-2, ... (Mehler's
    formula; a polynomial, so kernels of monomial networks are polynomials in t with exact zero
    eigenvalues past their degree), E[phi' phi'] = n^2 E[u^(n-1) v^(n-1)]."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ValueError(f"n must be an integer >= 0, got {n!r}")
    def dual(qx, qz, S, xp, ntk=True):
        E1 = _monomial_moment(n, qx, qz, S)
        E0 = (n * n * _monomial_moment(n - 1, qx, qz, S) if n >= 1 else S * 0) if ntk else None
        return E1 + S * 0, E0
    eid, params, coefs = _monomial_engine(n)
    return Activation(name=f"monomial({n})", key=("monomial", n), fn=lambda x, xp: x ** n,
                      derivative=lambda x, xp: n * x ** (n - 1) if n else x * 0.0, dual=dual,
                      polynomial_degree=n, engine_id=eid, engine_params=params, engine_coefs=coefs)


def _exact_floats(values):
    """The integers ``values`` as floats, or None where one is not exactly a float64 (|c| > 2^53):
    the compiled duals then do not apply (the numpy engines keep Python's exact integers)."""
    out = tuple(float(int(c)) for c in values)
    return out if all(int(f) == int(c) for f, c in zip(out, values)) else None


def _monomial_engine(n):
    """(engine id, (n, count_n, count_n-1), coefficients) of :func:`monomial` for the compiled dual:
    the c_k of E[u^n v^n] in the order of _hermite_moment_coefficients (k = n mod 2, +2, ...), then
    those of E[u^(n-1) v^(n-1)] (the derivative factor; none for n = 0)."""
    c1 = [c for _, c in _hermite_moment_coefficients(n)]
    c0 = [c for _, c in _hermite_moment_coefficients(n - 1)] if n >= 1 else []
    coefs = _exact_floats(c1 + c0)
    if coefs is None:
        return -1, (), ()
    return ENGINE_IDS["monomial"], (float(n), float(len(c1)), float(len(c0))), coefs


@lru_cache(maxsize=None)
def _arccos_kernel_parts(n: int):
    """(A_n, B_n) with J_n(theta) = A_n(cos) sin(theta) + B_n(cos) (pi - theta), polynomials in
    rho = cos(theta) (as sympy Poly coefficient lists), from Cho & Saul's definition
    J_n = (-1)^n sin^(2n+1) (1/sin d/dtheta)^n ((pi - theta)/sin)."""
    th, rho = sp.symbols("theta rho")
    e = (sp.pi - th) / sp.sin(th)
    for _ in range(n):
        e = sp.diff(e, th) / sp.sin(th)
    J = sp.expand(sp.simplify((-1) ** n * sp.sin(th) ** (2 * n + 1) * e))
    B = -J.coeff(th)
    A = sp.simplify((J - B * (sp.pi - th)) / sp.sin(th))
    def to_rho(f):
        f = sp.expand(sp.expand_trig(sp.simplify(f)))
        f = sp.expand(f.subs(sp.cos(th), rho).subs(sp.sin(th), sp.sqrt(1 - rho ** 2)))
        return sp.Poly(f, rho).all_coeffs()[::-1]
    return tuple(to_rho(A)), tuple(to_rho(B))


def _poly(coeffs, x):
    out = 0
    for c in reversed(coeffs):
        out = out * x + int(c) if c == int(c) else out * x + c
    return out


def _arccos_angle(qx, qz, S, xp):
    """(g, rho, kappa0, sin(theta)/pi) of a pair, g = sqrt(qx qz): what every arc-cosine kernel
    order shares (one arccos and one square root per entry for the NNGP and the NTK dual)."""
    g = xp.sqrt(qx * qz)
    rho = xp.clip1(xp.safe_div(S, g))
    k0 = xp.kappa0(rho)
    return g, rho, k0, xp.kappa1(rho) - rho * k0


def _arccos_from_angle(n, g, rho, k0, sin_pi):
    """E[relu(u)^n relu(v)^n] = (Sxx Szz)^(n/2) J_n(theta)/(2 pi) from :func:`_arccos_angle`, written
    with kappa0, kappa1 so that series and endpoint expansions pass through: sin(theta)/pi =
    kappa1 - rho kappa0, (pi - theta)/pi = kappa0."""
    A, B = _arccos_kernel_parts(n)
    return g ** n * (_poly(A, rho) * sin_pi + _poly(B, rho) * k0) / 2


def rectified_monomial(n: int) -> Activation:
    """relu(x)^n: the arc-cosine kernel of degree n (Cho & Saul 2009),
    E[phi(u) phi(v)] = (Sxx Szz)^(n/2) J_n(theta)/(2 pi), E[phi' phi'] = n^2 (Sxx Szz)^((n-1)/2)
    J_(n-1)(theta)/(2 pi); n = 0 is the step, n = 1 ReLU.

    >>> A, B = _arccos_kernel_parts(2)       # J_2 = 3 sin(theta) cos(theta) + (pi - theta)(1 + 2 cos^2)
    >>> A, B
    ((0, 3), (1, 0, 2))
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ValueError(f"n must be an integer >= 0, got {n!r}")
    if n == 0:
        return step()
    if n == 1:
        return RELU
    def dual(qx, qz, S, xp, ntk=True):
        angle = _arccos_angle(qx, qz, S, xp)          # shared by both orders: the same bits, half the passes
        E1 = _arccos_from_angle(n, *angle)
        return E1, (n * n * _arccos_from_angle(n - 1, *angle) if ntk else None)
    (A1, B1), (A0, B0) = _arccos_kernel_parts(n), _arccos_kernel_parts(n - 1)
    coefs = _exact_floats(A1 + B1 + A0 + B0) if all(c == int(c) for c in A1 + B1 + A0 + B0) else None
    eid = -1 if coefs is None else ENGINE_IDS["rectified_monomial"]
    params = (float(n), float(len(A1)), float(len(B1)), float(len(A0)), float(len(B0))) if coefs else ()
    return Activation(name=f"rectified_monomial({n})", key=("rectified_monomial", n),
                      fn=lambda x, xp: xp.maximum(x, 0.0) ** n,
                      derivative=lambda x, xp: n * xp.maximum(x, 0.0) ** (n - 1), dual=dual,
                      engine_id=eid, engine_params=params, engine_coefs=coefs or ())


# ---------------------------------------------------------------------------------------------
# Activations without a closed-form dual: Gaussian quadrature, certified in mpmath
# ---------------------------------------------------------------------------------------------

def _numeric_dual(fn, derivative, name, smoothed=None, strip=None, kinks=None, soft=None, saturating=None):
    """Duals by quadrature.  ``smoothed = (Sf, Sdf)``, where known, are the Gaussian smoothings
    Sf(m, s2) = E_w[fn(m + sqrt(s2) w)] (w standard normal) in closed form: the float64 context
    then integrates E[f(u) f(v)] = E_x[f(sqrt(qx) x) Sf(sqrt(qz) rho x, qz (1 - rho^2))] by a 1-D rule
    instead of the 2-D one (docs: numerics/variance.py).  ``strip``: fn and its derivative are analytic
    in |Im x| < strip (sets the 2-D rule's step in its narrow direction).  ``kinks``: the points
    where fn or its derivative jumps (float64: Gauss-Legendre panels split there).  ``soft`` =
    (centres, d): fn and its derivative are analytic but for singularities at distance d above and
    below the centres (float64: panels graded towards them at large variances; ``strip`` is then d
    unless given).  ``saturating`` = ((base, A, g, parity), (base', A', g', parity')): fn = A base + g
    and derivative = A' base' + g' with base one of "sign", "step", "relu" and g, g' localised, odd
    (parity 1) or even (0) (float64: a separable series at large variances, numerics/saturating.py)."""
    if soft is not None and strip is None:    # analytic but for the soft kinks' singularities
        strip = soft[1]
    kw0 = {} if smoothed is None else {"smoothed": smoothed[0]}
    kw1 = {} if smoothed is None else {"smoothed": smoothed[1]}
    if strip is not None:
        kw0, kw1 = {**kw0, "strip": strip}, {**kw1, "strip": strip}
    if kinks is not None:
        kw0, kw1 = {**kw0, "kinks": kinks}, {**kw1, "kinks": kinks}
    if soft is not None:
        kw0, kw1 = {**kw0, "soft": soft}, {**kw1, "soft": soft}
    if saturating is not None:
        kw0, kw1 = {**kw0, "saturating": saturating[0]}, {**kw1, "saturating": saturating[1]}

    def dual(qx, qz, S, xp, ntk=True):
        E1 = xp.gaussian_expectation(fn, qx, qz, S, **kw0)
        if not ntk:
            return E1, None
        if derivative is None:
            raise ValueError(f"the NTK of {name} needs its derivative: pass derivative= to from_function")
        return E1, xp.gaussian_expectation(derivative, qx, qz, S, **kw1)
    return dual


def _tanh_minus_sign(x, xp):
    """tanh(x) - sign(x) = -sign(x) 2 e / (1 + e), e = exp(-2 |x|) (relative accuracy at every x; 0 at 0)."""
    e = xp.exp(-2 * abs(x))
    return ((x < 0) * 1.0 - (x > 0) * 1.0) * (2 * e / (1 + e))


def _sech2(x, xp):
    """sech^2(x) = 1 - tanh^2(x) = 4 e / (1 + e)^2, e = exp(-2 |x|) (relative accuracy at every x)."""
    e = xp.exp(-2 * abs(x))
    return 4 * e / ((1 + e) * (1 + e))


def tanh() -> Activation:
    """tanh(x), whose duals have no known closed form: E[tanh(u) tanh(v)] and E[tanh'(u) tanh'(v)]
    by their Hermite (Mehler) series in float64 (coefficients by a trapezoid ladder, error bound in
    docs/conventions.md) and by adaptive
    quadrature at any precision in mpmath, certified by recomputation."""
    return Activation(name="tanh", key=("tanh",), fn=lambda x, xp: xp.tanh(x),
                      derivative=lambda x, xp: 1 - xp.tanh(x) ** 2,
                      dual=_numeric_dual(lambda x, xp: xp.tanh(x), lambda x, xp: 1 - xp.tanh(x) ** 2, "tanh",
                                         soft=((0.0,), math.pi / 2),    # poles of tanh, sech^2 at +-i pi / 2
                                         saturating=(("sign", 1.0, _tanh_minus_sign, 1), ("sign", 0.0, _sech2, 0))),
                      closed_form=False)


def _gelu_minus_relu(x, xp):
    """gelu(x) - relu(x) = -|x| Phi(-|x|) (even, |.| <= phi(x)): Phi(-|x|) = erfc(|x| / sqrt 2) / 2."""
    a = abs(x)
    return -a * xp.erfc(a / math.sqrt(2)) / 2


def _gelu_prime_minus_step(x, xp):
    """gelu'(x) - step(x) = x phi(x) - sign(x) Phi(-|x|) (odd, a jump of -1 at 0)."""
    a = abs(x)
    return x * xp.exp(-x * x / 2) / math.sqrt(2 * math.pi) - xp.where(x > 0, 1.0, -1.0) * xp.erfc(a / math.sqrt(2)) / 2


def gelu() -> Activation:
    """GELU, x Phi(x) (the exact form, Phi the standard normal CDF); its duals are taken by
    quadrature like tanh's, but in one dimension: with y = m + s w, w standard normal and
    r = sqrt(1 + s^2), the Gaussian smoothings are closed forms (Stein's lemma,
    E[Phi(y)] = Phi(m / r), E[phi(y)] = phi(m / r) / r):

        E[gelu(y)]  = m Phi(m / r) + s^2 phi(m / r) / r,
        E[gelu'(y)] = Phi(m / r) + m phi(m / r) / r^3,

    so E[gelu(u) gelu(v)] = E_x[gelu(sqrt(qx) x) E[gelu(y)]] with m = sqrt(qz) rho x,
    s^2 = qz (1 - rho^2) (the same for the derivatives)."""
    def f(x, xp):
        return x * (1 + xp.erf(x / math.sqrt(2))) / 2

    def df(x, xp):
        return (1 + xp.erf(x / math.sqrt(2))) / 2 + x * xp.exp(-x * x / 2) / math.sqrt(2 * math.pi)

    def _cdf_pdf(m, s2, xp):
        r = xp.sqrt(1 + s2)
        z = m / r
        return r, (1 + xp.erf(z / math.sqrt(2))) / 2, xp.exp(-z * z / 2) / math.sqrt(2 * math.pi)

    def sf(m, s2, xp):
        r, cdf, pdf = _cdf_pdf(m, s2, xp)
        return m * cdf + s2 * pdf / r

    def sdf(m, s2, xp):
        r, cdf, pdf = _cdf_pdf(m, s2, xp)
        return cdf + m * pdf / (r * r * r)
    return Activation(name="gelu", key=("gelu",), fn=f, derivative=df,
                      dual=_numeric_dual(f, df, "gelu", smoothed=(sf, sdf),
                                         saturating=(("relu", 1.0, _gelu_minus_relu, 0),
                                                     ("step", 1.0, _gelu_prime_minus_step, 1))),
                      closed_form=False)


def from_function(fn, derivative=None, name: str | None = None, kinks=None) -> Activation:
    """A user activation: ``fn(x)`` (and ``derivative(x)`` for the NTK) acting elementwise on numpy
    arrays and on mpmath numbers.  Duals by quadrature (see :func:`tanh`).

    ``kinks``: the points where fn or its derivative is not smooth (a kink of fn, a jump of fn or
    of the derivative), e.g. ``kinks=[0.0]`` for relu or ``[-1.0, 1.0]`` for a hard tanh.  The float64
    duals then take Gauss-Legendre panels split at them (``numerics.variance.gaussian_expectation_kinked``:
    relu within 1.2e-15 of the scale at every correlation, relu^2..relu^4 within the 5e-14 of their
    closed forms' own rounding near rho = 1, measured) instead of the Hermite
    series and the trapezoid rule, which converge only algebraically across a kink (relu given
    without kinks: ~5e-4 of the scale, no bound claimed).

    >>> import numpy as np
    >>> relu = from_function(lambda x: np.maximum(x, 0.0), lambda x: (x > 0) * 1.0, name="relu", kinks=[0.0])
    >>> relu.name
    'from_function(relu)'
    """
    if not callable(fn) or (derivative is not None and not callable(derivative)):
        raise ValueError("from_function needs a callable fn (and a callable derivative or None)")
    if kinks is not None:
        try:
            kinks = tuple(float(c) for c in (kinks if hasattr(kinks, "__iter__") else [kinks]))
        except (TypeError, ValueError):
            raise ValueError(f"kinks must be a sequence of finite numbers, got {kinks!r}") from None
        if not kinks or not all(math.isfinite(c) for c in kinks) or len(kinks) > 16:
            raise ValueError(f"kinks must hold 1 to 16 finite numbers, got {kinks!r}")
    label = name or getattr(fn, "__name__", "user")
    f = lambda x, xp: fn(x)
    df = None if derivative is None else (lambda x, xp: derivative(x))
    return Activation(name=f"from_function({label})", key=("from_function", fn, derivative, kinks), fn=f,
                      derivative=df if df is not None else _no_derivative(label),
                      dual=_numeric_dual(f, df, label, kinks=kinks), closed_form=False)


def _no_derivative(label):
    def df(x, xp):
        raise ValueError(f"the activation {label} was given without a derivative: pass derivative= to "
                         "from_function for NTKs and finite-width gradients")
    return df


#: name -> constructor of the parameter-free activations (``activation="relu"`` in a spec)
ACTIVATIONS = {"relu": relu, "abs": abs_, "step": step, "erf": erf, "gelu": gelu, "tanh": tanh,
               "sin": sin, "cos": cos}


def get(activation) -> Activation:
    """The :class:`Activation` for a name or an Activation; ValueError naming the allowed names."""
    if isinstance(activation, Activation):
        return activation
    if isinstance(activation, str) and activation in ACTIVATIONS:
        return ACTIVATIONS[activation]()
    raise ValueError(f"activation must be one of {tuple(ACTIVATIONS)} or an Activation object, "
                     f"got {activation!r}")


# the exact coefficient formulas of ReLU's duals, kept next to the object that uses them
kappa0_taylor = _duals.kappa0_taylor
kappa1_taylor = _duals.kappa1_taylor

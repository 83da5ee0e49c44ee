"""Gaussian expectations of saturating activations at large variances, by a separable series.

A saturating activation is f = A base + g with a base whose Gaussian expectations are closed forms
-- sign, step or relu -- and g localised (decaying at least like exp(-2 |u|)):

* tanh = sign + g, g = tanh - sign = -sign(u) 2 e / (1 + e), e = exp(-2|u|) (odd); its derivative
  sech^2 = 4 e / (1 + e)^2 (A = 0, even);
* gelu = relu + g, g = -|u| Phi(-|u|) (even); gelu' = step + g, g = u phi(u) - sign(u) Phi(-|u|) (odd).

For (u, v) ~ N(0, [[qx, S], [S, qz]]), D = qx qz - S^2 (written for base = sign):

    E[f(u) f(v)] = A^2 (2/pi) arcsin(rho) + A (E[sign(u) g(v)] + E[g(u) sign(v)]) + E[g(u) g(v)],

    E[sign(u) g(v)] = int g(v) erf(S v / sqrt(2 qz D)) phi(v; qz) dv,

    E[g(u) g(v)] = (2 pi sqrt D)^-1 int int g(u) g(v) exp(-(a u^2 + c v^2) / 2) exp(b u v) du dv
                 = (2 pi sqrt D)^-1 sum_k b^k / k! M_k(a) M_k(c),

with E[sign u | v] = erf(mu / (sigma sqrt 2)), mu = S v / qz, sigma^2 = D / qz, and
M_k(a) = int g(u) u^k exp(-a u^2 / 2) du, a = qz / D, c = qx / D, b = S / D
(the bivariate normal density with exp(b u v) expanded in powers, as in Pearson's tetrachoric
series; the arcsin term is Sheppard's orthant probability).  For step and relu the first term is
1/4 + arcsin(rho) / (2 pi) and the arc-cosine kernel sqrt(qx qz) (sin theta + (pi - theta) cos theta)
/ (2 pi) (Cho & Saul 2009), and E[base u | v] is Phi(mu / sigma) and mu Phi(mu / sigma) +
sigma phi(mu / sigma) (:data:`BASES`).  Every integral is one-dimensional over |u| <= :data:`RADIUS`, where g
lives, on fixed Gauss-Legendre panels (:data:`EDGES`, 16 nodes each) that resolve g's poles at
distance pi/2 from the real axis; only the Gaussian factors depend on the entry.  At large
variances this replaces the 2-D graded panels (~2.5e5 nodes an entry) by ~2000 function values.

Where it holds (:func:`expectation` returns a mask): the Gaussian factors vary slowly on the
panels, a, c <= :data:`A_MAX` (then the erf slopes S / sqrt(2 qz D) = rho sqrt(c / 2) <= 0.36
too), and the series converges fast, |b| <= :data:`B_MAX` (its terms fall like (b/4)^k k!); for
tanh at q = 3072 every |rho| <= 0.9967, at q = 30 |rho| <= 0.72.  The rest (near-parallel pairs at
large variances) keeps the rule it had: tanh the graded panels of
:func:`numerics.variance.gaussian_expectation_kinked`, GELU its one-dimensional smoothed rule.
D is taken by exact products (:func:`determinant`) and the bases' angles by atan2(S, sqrt D): near
|b| = B_MAX at huge variances rho is within 1e-6 of 1.  Accuracy: against nested QUADPACK, the graded
panels, GELU's one-dimensional smoothed rule and 30-digit quadratures at the boundary
(tests/numerics/test_saturating.py); a review's long-double references on 1160 entries (q 26..1e7,
variance ratios 0.1..10, rho up to the mask's edge): <= 0.81 eps of the scale.
"""
from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import scipy.special

#: |u| beyond which g is dropped: |g| <= 2 exp(-2 |u|) (sech^2: 4 exp(-2 |u|)), 2e-17 at 20
RADIUS = 20.0
#: panel edges on [0, RADIUS]: half-lengths <= 0.25 next to the jump at 0 (poles at distance pi/2:
#: 16 nodes err by ~1e-30 there), growing where g has decayed (|g| < 1e-4 beyond 5)
EDGES = (0.0, 0.5, 1.0, 1.5, 2.0, 2.75, 3.5, 4.5, 5.5, 7.0, 8.5, 10.5, 12.5, 15.0, 17.5, 20.0)
GL = 16
#: largest a = qz / D and c = qx / D: exp(-a u^2 / 2) smooth on the panels (width >= 2)
A_MAX = 0.25
#: largest |b| = |S| / D: the series' terms (b/4)^k k! fall below 2^-60 of the first within K_MAX
B_MAX = 0.05
K_MAX = 48
#: entries per chunk (temporaries of (chunk, nodes) float64: 8 MB)
CHUNK = 4096


@lru_cache(maxsize=1)
def half_rule():
    """Gauss-Legendre nodes and weights on (0, RADIUS), panels :data:`EDGES`, :data:`GL` nodes each."""
    t, w = np.polynomial.legendre.leggauss(GL)
    a, b = np.array(EDGES[:-1])[:, None], np.array(EDGES[1:])[:, None]
    h = (b - a) / 2
    return ((a + h) + h * t).ravel(), (h * w).ravel()


def gaussian_factors(gw, u, a, parity):
    """2 g(u_i) w_i u_i^parity exp(-a u_i^2 / 2) per entry (rows) and node of the half rule: the
    integrand of M_parity(a) (``gw`` = g times the weights at the nodes ``u``; ``parity`` 1: g odd,
    0: even; by symmetry twice the integral over (0, R), and zero for the k of the other parity)."""
    P = 2.0 * gw[None, :] * np.exp(-0.5 * a[:, None] * (u * u)[None, :])
    return P * u[None, :] if parity else P


def series(gw, u, a, c, b, parity, kmax=K_MAX):
    """sum_k b^k / k! M_k(a) M_k(c) over the k of g's parity, M_k(a) = int g(u) u^k exp(-a u^2/2) du,
    and a convergence flag per entry: the last term within 2^-60 of the largest.  The moments are
    summed degree by degree (P u^2 each step) until every entry has converged or k = kmax; with
    |b| <= B_MAX the terms fall by >= 2.5x a step up to k = 48 (ratio ~ b^2 k^2 / 16), so the
    tail is below 2^-59 of the largest term."""
    Pa, Pc = gaussian_factors(gw, u, a, parity), gaussian_factors(gw, u, c, parity)
    u2 = (u * u)[None, :]
    total = np.zeros(b.size)
    big = np.zeros(b.size)
    term = np.zeros(b.size)
    coef = np.ones(b.size)                          # b^k / k!
    for k in range(kmax + 1):
        if k:
            coef = coef * b / k
        if k % 2 != parity:
            continue
        if k > parity:
            Pa, Pc = Pa * u2, Pc * u2
        term = coef * Pa.sum(axis=1) * Pc.sum(axis=1)
        total += term
        big = np.maximum(big, np.abs(term))
        if k >= parity + 4 and np.all(np.abs(term) <= 2.0 ** -60 * big):
            break
    return total, np.abs(term) <= 2.0 ** -60 * big


def _sign_pair(qx, qz, S, D):
    """(2/pi) arcsin(rho) as (2/pi) atan2(S, sqrt D): no loss near |rho| = 1, where arcsin's slope is
    1 / sqrt(1 - rho^2)."""
    return (2.0 / math.pi) * np.arctan2(S, np.sqrt(D))


def _step_pair(qx, qz, S, D):
    return 0.25 + np.arctan2(S, np.sqrt(D)) / (2.0 * math.pi)


def _relu_pair(qx, qz, S, D):
    """(sqrt D + (pi - theta) S) / (2 pi), theta = atan2(sqrt D, S): the arc-cosine kernel
    g (sin theta + (pi - theta) cos theta) / (2 pi), g sin theta = sqrt D, g cos theta = S."""
    return (np.sqrt(D) + (math.pi - np.arctan2(np.sqrt(D), S)) * S) / (2.0 * math.pi)


def _sign_given(m, s):
    return scipy.special.erf(m / (s * math.sqrt(2.0)))


def _step_given(m, s):
    return scipy.special.ndtr(m / s)


def _relu_given(m, s):
    z = m / s
    return m * scipy.special.ndtr(z) + s * np.exp(-0.5 * z * z) / math.sqrt(2.0 * math.pi)


#: the saturating parts with closed forms: E[base(u) base(v)] (Sheppard's orthant probability; the
#: arc-cosine kernel of degree 1, Cho & Saul 2009) and E[base(m + s Z)], Z standard normal
BASES = {"sign": (_sign_pair, _sign_given), "step": (_step_pair, _step_given),
         "relu": (_relu_pair, _relu_given)}


@lru_cache(maxsize=1)
def full_rule():
    """The half rule mirrored onto (-RADIUS, RADIUS)."""
    u, w = half_rule()
    return np.concatenate([-u[::-1], u]), np.concatenate([w[::-1], w])


def cross(given, gw, y, qa, qb, S, D):
    """E[base(x) g(y)] for (x, y) with Var x = qa, Var y = qb, Cov = S, D = qa qb - S^2:
    int g(y) E[base(x) | y] phi(y; qb) dy, E[base(x) | y] = given(S y / qb, sqrt(D / qb)) (``gw``:
    g times the weights of the full rule at its nodes ``y``)."""
    m = (S / qb)[:, None] * y[None, :]
    s = np.sqrt(D / qb)[:, None]
    dens = np.exp(-0.5 * (y * y)[None, :] / qb[:, None]) / np.sqrt(2.0 * math.pi * qb)[:, None]
    return (given(m, s) * dens) @ gw


def _split(a):
    """Veltkamp's split a = hi + lo, hi with 26 significant bits (exact products hi hi')."""
    t = 134217729.0 * a
    hi = t - (t - a)
    return hi, a - hi


def _product(a, b):
    """a b = p + e exactly (Dekker's two-product; |a|, |b| < 1e300)."""
    p = a * b
    ah, al = _split(a)
    bh, bl = _split(b)
    return p, ((ah * bh - p) + ah * bl + al * bh) + al * bl


def determinant(qx, qz, S):
    """D = qx qz - S^2 to a few ulps of D itself: both products exact as p + e (Dekker), p - p'
    exact where they are close (Sterbenz).  (sqrt(qx qz) - S)(sqrt(qx qz) + S) loses
    eps / (1 - rho) of D to the rounded square root: 1e-2 relative at rho = 1 - 1e-14.)"""
    p, e = _product(qx, qz)
    p2, e2 = _product(S, S)
    return (p - p2) + (e - e2)


def expectation(base, amplitude, g, parity, qx, qz, S, xp):
    """E[f(u) f(v)] for f = amplitude base + g (module doc; ``base``: a key of :data:`BASES`) on flat
    float64 arrays, and the mask of entries where the series holds (a, c <= A_MAX, |b| <= B_MAX,
    converged); elsewhere the value is undefined.  ``g(x, xp)``: the localised part; ``parity``: 1
    if g is odd, 0 if even."""
    qx, qz, S = (np.asarray(v, float).ravel() for v in (qx, qz, S))
    out = np.zeros(S.size)
    ok = np.zeros(S.size, dtype=bool)
    u, w = half_rule()
    gw = g(u, xp) * w
    if amplitude != 0.0:
        y, wy = full_rule()
        gwy = g(y, xp) * wy
        pair, given = BASES[base]
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        D = determinant(qx, qz, S)
        a, c, b = qz / D, qx / D, S / D
        cand = (D > 0) & (a <= A_MAX) & (c <= A_MAX) & (np.abs(b) <= B_MAX)
    idx = np.flatnonzero(cand)
    for s in range(0, idx.size, CHUNK):
        i = idx[s:s + CHUNK]
        gg, conv = series(gw, u, a[i], c[i], b[i], parity)
        val = gg / (2.0 * math.pi * np.sqrt(D[i]))
        if amplitude != 0.0:
            val = (amplitude * amplitude * pair(qx[i], qz[i], S[i], D[i])
                   + amplitude * (cross(given, gwy, y, qx[i], qz[i], S[i], D[i])
                                  + cross(given, gwy, y, qz[i], qx[i], S[i], D[i]))
                   + val)
        out[i] = val
        ok[i] = conv
    return out, ok

"""Exact spherical-harmonic quantities (docs/spectral.md §0-§4): the oracles of the spectral engine.

Conventions: S^(d-1) in R^d (d = ambient dimension), tau the uniform probability
measure, mu_k the Funk-Hecke eigenvalue of a zonal kernel on degree-k harmonics, so
that K(t) = sum_k mu_k N(d,k) P_k(t) and sum_k N(d,k) mu_k = K(1).  P_k is the
normalised Gegenbauer polynomial C_k^lambda(t)/C_k^lambda(1), lambda = (d-2)/2
(Legendre for d = 3, Chebyshev T_k for d = 2).
"""
from __future__ import annotations

from functools import lru_cache

import sympy as sp

t = sp.Symbol("t")


def _check_dk(d, k=0):
    if int(d) != d or d < 2:
        raise ValueError(f"d (ambient dimension) must be an integer >= 2, got {d!r}")
    if int(k) != k or k < 0:
        raise ValueError(f"k must be a non-negative integer, got {k!r}")
    return int(d), int(k)


def multiplicity(d: int, k: int) -> int:
    """N(d,k): the dimension of degree-k spherical harmonics on S^(d-1).

    N(d,0) = 1, N(d,k) = (2k+d-2)(k+d-3)!/(k!(d-2)!)  (N(3,k) = 2k+1, N(2,k) = 2).
    """
    d, k = _check_dk(d, k)
    if k == 0:
        return 1
    return (2 * k + d - 2) * sp.factorial(k + d - 3) // (sp.factorial(k) * sp.factorial(d - 2))


def density_constant(d: int):
    """c_d = Gamma(d/2) / (sqrt(pi) Gamma((d-1)/2)): t = <x,z> has density c_d (1-t^2)^((d-3)/2)."""
    d, _ = _check_dk(d)
    return sp.gamma(sp.Rational(d, 2)) / (sp.sqrt(sp.pi) * sp.gamma(sp.Rational(d - 1, 2)))


@lru_cache(maxsize=None)
def legendre_polynomial(d: int, k: int) -> sp.Expr:
    """Normalised P_k of dimension d (P_k(1) = 1) by the three-term recurrence
    (k+d-2) P_{k+1} = (2k+d-2) t P_k - k P_{k-1}."""
    d, k = _check_dk(d, k)
    if k == 0:
        return sp.Integer(1)
    if k == 1:
        return t
    pm, p = legendre_polynomial(d, k - 2), legendre_polynomial(d, k - 1)
    j = k - 1
    return sp.expand(((2 * j + d - 2) * t * p - j * pm) / (j + d - 2))


def mu_monomial(n: int, k: int, d: int):
    """Exact mu_k(t^n) = Gamma(d/2) n! / (2^n ((n-k)/2)! Gamma((n+k+d)/2)) for n >= k,
    n - k even, else 0 (docs/spectral.md §2).  Rational for every integer d >= 2."""
    d, k = _check_dk(d, k)
    if n < k or (n - k) % 2:
        return sp.Integer(0)
    p = (n - k) // 2
    return sp.gamma(sp.Rational(d, 2)) * sp.factorial(n) / (
        2 ** n * sp.factorial(p) * sp.gamma(sp.Rational(n + k + d, 2)))


def mu_polynomial(coeffs, k: int, d: int):
    """mu_k of sum_n coeffs[n] t^n, exact (no cancellation when all coeffs >= 0)."""
    return sp.simplify(sum((sp.sympify(c) * mu_monomial(n, k, d) for n, c in enumerate(coeffs)),
                           sp.Integer(0)))


def mu_arccos(n: int, k: int, d: int):
    """Exact mu_k of kappa0 (n = 0) or kappa1 (n = 1), any d >= 2 (docs/spectral.md §4.3).

    kappa0: mu_0 = 1/2, mu_k = 0 for even k >= 2, and for odd k
            mu_k = Gamma(d/2)^2 Gamma(k/2)^2 / (2 pi^2 Gamma((k+d)/2)^2).
    kappa1: mu_0 = d Gamma(d/2)^2 / (2 pi Gamma((d+1)/2)^2), mu_1 = 1/(2d), mu_k = 0 for
            odd k >= 3, and for even k >= 2
            mu_k = d Gamma(d/2)^2 Gamma((k-1)/2)^2 / (8 pi^2 Gamma((k+d+1)/2)^2).

    Rational for odd d, rational over pi^2 for even d.
    """
    d, k = _check_dk(d, k)
    g, pi, R = sp.gamma, sp.pi, sp.Rational
    if n == 0:
        if k == 0:
            return R(1, 2)
        if k % 2 == 0:
            return sp.Integer(0)
        return sp.simplify(g(R(d, 2)) ** 2 * g(R(k, 2)) ** 2 / (2 * pi ** 2 * g(R(k + d, 2)) ** 2))
    if n == 1:
        if k == 0:
            return sp.simplify(d * g(R(d, 2)) ** 2 / (2 * pi * g(R(d + 1, 2)) ** 2))
        if k == 1:
            return R(1, 2 * d)
        if k % 2 == 1:
            return sp.Integer(0)
        return sp.simplify(d * g(R(d, 2)) ** 2 * g(R(k - 1, 2)) ** 2 / (8 * pi ** 2 * g(R(k + d + 1, 2)) ** 2))
    raise ValueError("n must be 0 (kappa0) or 1 (kappa1)")


def mu_times_t(mu: dict, j: int, d: int):
    """Exact mu_j(t f) from the spectrum of f (docs/spectral.md §2):
    mu_j(t f) = ((j+d-2) mu_{j+1}(f) + j mu_{j-1}(f)) / (2j+d-2) for j >= 1, mu_0(t f) = mu_1(f)."""
    if j == 0:
        return mu[1]
    return ((j + d - 2) * mu[j + 1] + j * mu[j - 1]) / (2 * j + d - 2)


def mu_mlp1_ntk(k: int, d: int):
    """Exact mu_k of MLP(depth=1).ntk = t kappa0 + kappa1 (defaults), any d >= 2."""
    if d == 2 and k == 0:  # the j = 0 line of the t-recurrence: mu_0(t f) = mu_1(f)
        return sp.simplify(mu_arccos(0, 1, d) + mu_arccos(1, 0, d))
    k0 = {j: mu_arccos(0, j, d) for j in range(max(0, k - 1), k + 2)}
    return sp.simplify(mu_times_t(k0, k, d) + mu_arccos(1, k, d))

"""The ReLU dual activations kappa0, kappa1 as exact sympy objects.

kappa0(r) = (pi - arccos r) / pi,
kappa1(r) = (sqrt(1 - r^2) + (pi - arccos r) r) / pi            (docs/conventions.md)

so that E[relu'(u) relu'(v)] = kappa0(rho)/2 and E[relu(u) relu(v)] = kappa1(rho)/2
for unit-variance Gaussians with correlation rho (Cho & Saul 2009; the factor 2 is
restored by weight_var = 2).  Identities: kappa1' = kappa0, kappa0(1) = kappa1(1) = 1,
kappa0(-1) = kappa1(-1) = 0.

This module also gives the exact Taylor coefficients at r = 0 (docs/spectral.md §4.2),
the endpoint (Puiseux) expansions at r = +-1 (docs/spectral.md §5.2), and the
truncated-series versions of both functions used by :mod:`theory.series`.
"""
from __future__ import annotations

from functools import lru_cache

import sympy as sp

r = sp.Symbol("r")


def kappa0(x):
    """kappa0(x) = (pi - acos x)/pi as a sympy expression (pi symbolic)."""
    return (sp.pi - sp.acos(x)) / sp.pi


def kappa1(x):
    """kappa1(x) = (sqrt(1 - x^2) + (pi - acos x) x)/pi as a sympy expression."""
    return (sp.sqrt(1 - x**2) + (sp.pi - sp.acos(x)) * x) / sp.pi


@lru_cache(maxsize=None)
def kappa_derivative(which: int, order: int) -> sp.Expr:
    """d^order/dr^order of kappa0 (which=0) or kappa1 (which=1), as an expression in r."""
    f = kappa0(r) if which == 0 else kappa1(r)
    return sp.simplify(sp.diff(f, r, order)) if order else f


def kappa0_taylor(n: int) -> sp.Expr:
    """Exact coefficient of r^n in kappa0 at r = 0.

    kappa0(r) = 1/2 + (1/pi) sum_j binom(2j, j) / (4^j (2j+1)) r^(2j+1)   (docs/spectral.md §4.2).
    """
    if n == 0:
        return sp.Rational(1, 2)
    if n % 2 == 0:
        return sp.Integer(0)
    j = (n - 1) // 2
    return sp.binomial(2 * j, j) / (sp.Integer(4) ** j * (2 * j + 1)) / sp.pi


def kappa1_taylor(n: int) -> sp.Expr:
    """Exact coefficient of r^n in kappa1 at r = 0.

    kappa1(r) = 1/pi + r/2 + (1/pi) sum_j binom(2j, j)/(4^j (2j+1)(2j+2)) r^(2j+2)
    (docs/spectral.md §4.2; follows from kappa1' = kappa0).
    """
    if n == 0:
        return 1 / sp.pi
    if n == 1:
        return sp.Rational(1, 2)
    if n % 2 == 1:
        return sp.Integer(0)
    return kappa0_taylor(n - 1) / n


def arcsin_coefficient(n: int) -> sp.Rational:
    """c_n with arcsin(x) = sum_n c_n x^(2n+1): c_n = (2n)! / (4^n (n!)^2 (2n+1))."""
    return sp.binomial(2 * n, n) / (sp.Integer(4) ** n * (2 * n + 1))

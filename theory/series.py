"""Truncated power series with exact sympy coefficients, closed under the ReLU duals.

A :class:`Series` holds c_0, ..., c_{N-1} of sum_j c_j x^j (mod x^N).  It supports
ring arithmetic with scalars and other series, and :func:`kappa0` / :func:`kappa1`
of a series, so the *same* kernel recursion that builds ``kernel_expr`` also
produces

* Taylor coefficients at t = 0 (x = t, the expansion point r* of every layer lies
  strictly inside (-1, 1), where the duals are analytic), and
* Puiseux expansions at t = +1 and t = -1 (x = s with t = 1 - s^2 or t = -1 + s^2,
  docs/spectral.md §7.5): when a correlation has constant term exactly +1 or -1 the duals
  are expanded with arccos(1 - w) = 2 sqrt(w/2) sum_n c_n (w/2)^n, where
  w = s^2 (w_2 + w_3 s + ...), so half-integer powers of u = 1 -+ t become integer
  powers of s.

Coefficients are exact sympy numbers while they stay small; an interior expansion
point whose exact form is large (deep layers) is evaluated to 60 digits and the
coefficients that depend on it become 60-digit sympy Floats.
"""
from __future__ import annotations

from dataclasses import dataclass

import sympy as sp

from . import duals


def _simp(e):
    """Keep a coefficient exact while it is small; past EXACT_OPS_LIMIT operations
    replace it by its NUMERIC_DPS-digit value (see the module docstring)."""
    if e.has(sp.Float):
        return sp.N(e, NUMERIC_DPS)
    e = sp.expand(e)
    if sp.count_ops(e) > 4 * EXACT_OPS_LIMIT:
        return sp.N(e, NUMERIC_DPS)
    return e


class NotDivisible(ValueError):
    """A series operation needs a power of x that the series' variable cannot express (e.g. the
    square root of a series starting at an odd power); :func:`theory.endpoints.endpoint_expansion`
    then retries with a finer root of u."""


@dataclass(frozen=True)
class Series:
    """sum_j coeffs[j] x^j modulo x^len(coeffs), coefficients exact sympy numbers."""

    coeffs: tuple

    @classmethod
    def variable(cls, order: int, const=0, lin=1, quad=0) -> "Series":
        c = [sp.Integer(0)] * order
        c[0] = sp.sympify(const)
        if order > 1:
            c[1] = sp.sympify(lin)
        if order > 2:
            c[2] = sp.sympify(quad)
        return cls(tuple(c))

    @property
    def order(self) -> int:
        return len(self.coeffs)

    def __getitem__(self, j):
        return self.coeffs[j]

    def _coerce(self, other):
        if isinstance(other, Series):
            if other.order != self.order:
                raise ValueError("series of different truncation order")
            return other
        return Series((sp.sympify(other),) + (sp.Integer(0),) * (self.order - 1))

    def __add__(self, other):
        o = self._coerce(other)
        return Series(tuple(_simp(a + b) for a, b in zip(self.coeffs, o.coeffs)))

    __radd__ = __add__

    def __neg__(self):
        return Series(tuple(-a for a in self.coeffs))

    def __sub__(self, other):
        return self + (-self._coerce(other))

    def __rsub__(self, other):
        return self._coerce(other) - self

    def __mul__(self, other):
        if not isinstance(other, Series):
            s = sp.sympify(other)
            return Series(tuple(_simp(s * a) for a in self.coeffs))
        n = self.order
        out = []
        for k in range(n):
            out.append(_simp(sum((self.coeffs[i] * other.coeffs[k - i] for i in range(k + 1)),
                                 sp.Integer(0))))
        return Series(tuple(out))

    __rmul__ = __mul__

    def __truediv__(self, other):
        if isinstance(other, Series):
            return self * other.reciprocal()
        s = sp.sympify(other)
        return Series(tuple(_simp(a / s) for a in self.coeffs))

    def __rtruediv__(self, other):
        return self.reciprocal() * other

    def __pow__(self, k):
        if isinstance(k, bool) or not isinstance(k, int) or k < 0:
            raise TypeError("a series is raised to non-negative integer powers only")
        out = self._coerce(1)
        for _ in range(k):
            out = out * self
        return out

    def reciprocal(self) -> "Series":
        """1/self for a nonzero constant term c0: sum_j (-1)^j delta^j / c0^(j+1)."""
        c0 = self.coeffs[0]
        if _is(c0, 0):
            raise ZeroDivisionError("reciprocal of a series without constant term")
        return (self - c0).compose_power([(-1) ** j / c0 ** (j + 1) for j in range(self.order)])

    def shift_down(self, m: int) -> "Series":
        """Divide by x^m; the first m coefficients must vanish.  The top m coefficients of the
        result are unknown (set to 0): callers keep guard terms."""
        for j in range(m):
            if sp.simplify(self.coeffs[j]) != 0:
                raise NotDivisible("series is not divisible by x^%d" % m)
        return Series(self.coeffs[m:] + (sp.Integer(0),) * m)

    def leading_index(self) -> int:
        """The index of the first nonzero coefficient (``order`` for the zero series)."""
        for j, c in enumerate(self.coeffs):
            if sp.simplify(c) != 0:
                return j
        return self.order

    def shift_up(self, m: int) -> "Series":
        return Series((sp.Integer(0),) * m + self.coeffs[: self.order - m])

    def compose_power(self, coeffs) -> "Series":
        """sum_j coeffs[j] * delta^j, with delta = self (zero constant term)."""
        out = Series((sp.sympify(coeffs[0]),) + (sp.Integer(0),) * (self.order - 1))
        p = None
        for j in range(1, min(len(coeffs), self.order)):
            p = self if p is None else p * self
            out = out + p * coeffs[j]
        return out

    def sqrt_of_unit(self) -> "Series":
        """sqrt(self) for a series with nonzero constant term c0: sqrt(c0) sqrt(1 + y)."""
        c0 = self.coeffs[0]
        y = (self - c0) / c0
        binom = [sp.binomial(sp.Rational(1, 2), j) for j in range(self.order)]
        return y.compose_power(binom) * sp.sqrt(c0)


def _is(value, target) -> bool:
    d = sp.sympify(value - target)
    if d == 0:
        return True
    approx = d.evalf(30)
    if approx.is_number and abs(approx) > 1e-20:  # clearly not the endpoint: skip simplify
        return False
    return sp.simplify(d) == 0


def sqrt_series(w: Series) -> Series:
    """sqrt(w) for w = x^(2m) (w_2m + w_(2m+1) x + ...), w_2m != 0: x^m sqrt(w / x^(2m)).
    The top m coefficients are unknown (guard terms); a leading odd power raises
    :class:`NotDivisible` (the root needs a finer variable)."""
    lead = w.leading_index()
    if lead >= w.order:
        raise ValueError("square root of a series that vanishes to its truncation order")
    if lead % 2:
        raise NotDivisible(f"square root of a series starting at x^{lead}")
    return w.shift_down(lead).sqrt_of_unit().shift_up(lead // 2)


def _arccos_one_minus(w: Series) -> Series:
    """arccos(1 - w) for w = x^(2m) (w_2m + ...), w_2m != 0, as a series in x."""
    root = sqrt_series(w)
    half = w / 2
    # arccos(1-w) = 2 sqrt(w/2) sum_n c_n (w/2)^n
    coeffs = [duals.arcsin_coefficient(n) for n in range(w.order)]
    tail = half.compose_power(coeffs)
    return root * tail * sp.sqrt(2)


#: interior expansion points with more operations than this are evaluated as
#: ``NUMERIC_DPS``-digit floats: nested exact constants (acos of acos of ...) make the
#: expressions grow exponentially with depth, while their value is all a user needs.
EXACT_OPS_LIMIT = 30
NUMERIC_DPS = 60


def _taylor(which: int, x: Series) -> Series:
    c0 = x[0]
    delta = x - c0
    if sp.count_ops(c0) > EXACT_OPS_LIMIT or c0.has(sp.Float):
        c0n = sp.Float(sp.N(c0, NUMERIC_DPS), NUMERIC_DPS)
        coeffs = [sp.N(duals.kappa_derivative(which, j).subs(duals.r, c0n), NUMERIC_DPS)
                  / sp.factorial(j) for j in range(x.order)]
    else:
        coeffs = [duals.kappa_derivative(which, j).subs(duals.r, c0) / sp.factorial(j)
                  for j in range(x.order)]
    return delta.compose_power(coeffs)


def kappa0(x):
    """kappa0 of a sympy expression or of a :class:`Series`."""
    if not isinstance(x, Series):
        return duals.kappa0(x)
    c0 = x[0]
    if _is(c0, 1):
        return 1 - _arccos_one_minus(1 - x) / sp.pi
    if _is(c0, -1):
        return _arccos_one_minus(x + 1) / sp.pi
    return _taylor(0, x)


def kappa1(x):
    """kappa1 of a sympy expression or of a :class:`Series`.

    At the endpoints: with rho = +-(1 - w), sqrt(1 - rho^2) = sqrt(w (2 - w)) and
    arccos(-1 + w) = pi - arccos(1 - w).
    """
    if not isinstance(x, Series):
        return duals.kappa1(x)
    c0 = x[0]
    if _is(c0, 1) or _is(c0, -1):
        sign = 1 if _is(c0, 1) else -1
        w = (1 - x) if sign == 1 else (x + 1)
        a = _arccos_one_minus(w)
        inner = (2 - w)  # constant term 2
        rt = sqrt_series(w) * inner.sqrt_of_unit()
        if sign == 1:
            # (sqrt(1-rho^2) + (pi - arccos(1-w)) (1 - w)) / pi
            return (rt + (sp.pi - a) * (1 - w)) / sp.pi
        # (sqrt(1-rho^2) + arccos(1-w) (-1 + w)) / pi
        return (rt + a * (w - 1)) / sp.pi
    return _taylor(1, x)

"""Fully connected kernel recursions, written once for any number system.

The body :func:`normalized_recursion` works on the *correlation* rho and on the
diagonal-normalised NTK, so it never overflows and has the same shape in every
backend; it is used here with sympy expressions (``kernel_expr``), with truncated
series (Taylor and endpoint coefficients) and, in :mod:`numerics`, with mpmath.

Let a_l = alpha_l^2 c / 2 (c = ``weight_var``).  On the unit sphere, with rho_0 = t:

MLP (contract "MLP"; the diagonal is s_h = input_var (c/2)^h):
    rho_h = kappa1(rho_{h-1}),
    T_h = rho_h + kappa0(rho_{h-1}) T_{h-1},   T_0 = t   (all) or 0 (hidden),
    with the readout term rho_L dropped at h = L for ``trained="hidden"``.
    NNGP = s_L rho_L, NTK = s_L T_L.

ResNet (contract "ResNet"; s_l = input_var prod_{j<=l} (1 + a_j)):
    rho_l = (rho_{l-1} + a_l kappa1(rho_{l-1})) / (1 + a_l),
    T_l = [T_{l-1} (1 + a_l kappa0(rho_{l-1})) + a_l (kappa1 + rho kappa0)(rho_{l-1})] / (1 + a_l),
    T_0 = t (all: the input layer B_1 K_0) or 0 (hidden); "all" adds rho_L (readout).
    NNGP = s_L rho_L, NTK = s_L T_L.

Dividing the contract's forward form Theta_l = Theta_{l-1}(1 + alpha^2 Phi0) +
alpha^2 [Phi1 + K Phi0] by s_l gives T_l; unrolled it is the contract's backward
sum with B_{l+1}.
"""
from __future__ import annotations

from typing import Callable

import sympy as sp


def _finish(e):
    """Simplify an exact coefficient; round one that carries 60-digit floats."""
    return sp.N(e, 50) if e.has(sp.Float) else sp.simplify(e)

from . import series as _series
from .arch import MLP, ResNet, check_kind

t = sp.Symbol("t")


def exact_number(x: float) -> sp.Rational:
    """The exact rational with the shortest decimal repr of a float (0.02 -> 1/50)."""
    return sp.Rational(repr(float(x)))


def exact_gains(arch) -> list:
    """a_l = alpha_l^2 c/2 as exact rationals."""
    c = exact_number(arch.weight_var)
    return [exact_number(a) ** 2 * c / 2 for a in arch.alphas()]


def exact_diag_scale(arch):
    """s_L: the NNGP diagonal on the unit sphere, exact."""
    iv = exact_number(arch.input_var)
    if isinstance(arch, ResNet):
        out = iv
        for a in exact_gains(arch):
            out = out * (1 + a)
        return out
    return iv * (exact_number(arch.weight_var) / 2) ** arch.depth


def normalized_recursion(arch, rho0, kappa0: Callable, kappa1: Callable, gains=None):
    """Return (rho_L, T_L): the diagonal-normalised NNGP and NTK (see module doc).

    ``rho0`` and the return values live in whatever number system ``kappa0``,
    ``kappa1`` and the arithmetic operators act on.  ``gains`` overrides a_l (for
    exact arithmetic pass rationals; default: ``arch.block_gains()``).
    """
    zero = rho0 * 0
    hidden = arch.trained == "hidden"
    rho = rho0
    if isinstance(arch, MLP):
        T = zero if hidden else rho0
        L = arch.depth
        for h in range(1, L + 1):
            k0, k1 = kappa0(rho), kappa1(rho)
            T = (k0 * T) if (hidden and h == L) else (k1 + k0 * T)
            rho = k1
        return rho, T
    if isinstance(arch, ResNet):
        a_list = arch.block_gains() if gains is None else gains
        T = zero if hidden else rho0
        for a in a_list:
            k0, k1 = kappa0(rho), kappa1(rho)
            T = (T * (1 + a * k0) + a * (k1 + rho * k0)) / (1 + a)
            rho = (rho + a * k1) / (1 + a)
        if not hidden:
            T = T + rho
        return rho, T
    raise TypeError(f"expected a fully connected spec (MLP or ResNet), got {type(arch).__name__}")


def _select(arch, kind, rho, T):
    return rho if check_kind(kind) == "nngp" else T


def kernel_expr(arch, kind: str = "ntk") -> sp.Expr:
    """Exact kernel on the unit sphere as a sympy expression in ``t = <x, z>``.

    pi stays symbolic and float parameters become the rationals of their shortest
    decimal repr (``alpha=0.02`` -> 1/50).  Expressions nest one ``acos`` per layer;
    for depth beyond ~6 use :func:`numerics.gram` or :func:`numerics.kernel_mp`.

    Examples
    --------
    >>> from theory import MLP, kernel_expr, t
    >>> from theory.duals import kappa0, kappa1
    >>> import sympy as sp
    >>> sp.simplify(kernel_expr(MLP(depth=1), kind="ntk") - (t*kappa0(t) + kappa1(t)))
    0
    """
    rho, T = normalized_recursion(arch, t, _series.kappa0, _series.kappa1, gains=_gains_or_none(arch))
    return exact_diag_scale(arch) * _select(arch, kind, rho, T)


def _gains_or_none(arch):
    return exact_gains(arch) if isinstance(arch, ResNet) else None


def taylor_coefficients(arch, kind: str = "ntk", order: int = 8) -> list:
    """Exact Taylor coefficients b_0..b_{order-1} of the kernel at t = 0.

    Computed by composing truncated power series through the recursion (the duals
    are expanded at each layer's interior correlation rho_l(0) in (-1, 1)).  For
    every contract kernel all b_n >= 0 (spectral.md §2, Schoenberg).
    """
    x = _series.Series.variable(order)
    rho, T = normalized_recursion(arch, x, _series.kappa0, _series.kappa1, gains=_gains_or_none(arch))
    scale = exact_diag_scale(arch)
    return [_finish(scale * c) for c in _select(arch, kind, rho, T).coeffs]

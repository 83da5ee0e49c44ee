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

import sympy as sp

from . import layers as _L
from . import series as _series
from .arch import check_kind


def _finish(e):
    """Simplify an exact coefficient; round one that carries 60-digit floats."""
    return sp.N(e, 50) if e.has(sp.Float) else sp.simplify(e)


t = sp.Symbol("t")


def exact_number(x: float) -> sp.Rational:
    """The exact rational with the shortest decimal repr of a float (0.02 -> 1/50)."""
    return sp.Rational(repr(float(x)))


def exact_gain(m) -> sp.Expr:
    """The gain of a kernel map as an exact number: c m2 (Nonlinear), alpha^2 c m2 (Block)."""
    c = exact_number(m.weight_var)
    if isinstance(m, _L.Block):
        return exact_number(m.alpha) ** 2 * c * m.activation.second_moment
    return c * m.activation.second_moment


def exact_gains(arch) -> list:
    """a_l = alpha_l^2 c m2 of the residual blocks, as exact rationals."""
    return [exact_gain(m) for m in arch.kernel_maps() if isinstance(m, _L.Block)]


def exact_diag_scale(arch):
    """s_L: the NNGP diagonal on the unit sphere, exact: input_var times the product of the
    Nonlinear gains c m2, the block factors 1 + a_l and the Linear weight variances."""
    maps = arch.kernel_maps()
    out = exact_number(maps[0].input_var)
    for m in maps[1:]:
        if isinstance(m, _L.Nonlinear):
            out = out * exact_gain(m)
        elif isinstance(m, _L.Block):
            out = out * (1 + exact_gain(m))
        elif isinstance(m, _L.Linear):
            out = out * exact_number(m.weight_var)
    return out


def _stem(m, rho, T, gain, ctx):
    return rho, (T if m.trained else rho * 0)


def _nonlinear(m, rho, T, gain, ctx):
    """rho' = kappa1(rho), T' = [trained] kappa1(rho) + kappa0(rho) T."""
    k0, k1 = ctx(m.activation)
    k0, k1 = k0(rho), k1(rho)
    return k1, ((k1 + k0 * T) if m.trained else (k0 * T))


def _block(m, rho, T, gain, ctx):
    """rho' = (rho + a kappa1)/(1 + a), T' = [T (1 + a kappa0) + a (kappa1 + rho kappa0)]/(1 + a)."""
    a = gain(m)
    k0, k1 = ctx(m.activation)
    k0, k1 = k0(rho), k1(rho)
    T = (T * (1 + a * k0) + a * (k1 + rho * k0)) / (1 + a)
    return (rho + a * k1) / (1 + a), T


def _linear(m, rho, T, gain, ctx):
    """A weight layer after no activation: rho unchanged, T' = T + [trained] rho."""
    return rho, (T + rho if m.trained else T)


def _pool(m, rho, T, gain, ctx):
    if m.pooling != "dense":
        raise TypeError("zonal kernels (kernel_expr, Taylor, endpoints) need a fully connected "
                        f"spec; this program pools by {m.pooling!r}")
    return rho, T


#: one function per kernel-map type (the sympy / Series interpreter)
MAP_RULES = {_L.Stem: _stem, _L.Nonlinear: _nonlinear, _L.Block: _block, _L.Linear: _linear,
             _L.Pool: _pool}


def _symbolic_duals(act):
    """(kappa0, kappa1) acting on sympy expressions and truncated Series."""
    return act.kappa0, act.kappa1


def normalized_recursion(arch, rho0, gains: str = "exact", duals=_symbolic_duals):
    """Return (rho_L, T_L): the diagonal-normalised NNGP and NTK (see module doc).

    Interprets ``arch.kernel_maps()`` with one rule per map (:data:`MAP_RULES`).  ``rho0`` and the
    return values live in whatever number system the activation's duals and the arithmetic
    operators act on (sympy expressions, :class:`theory.series.Series`); block gains are exact
    rationals (``gains="exact"``) or the spec's floats (``gains="float"``).
    """
    gain = exact_gain if gains == "exact" else (lambda m: m.gain)
    maps = arch.kernel_maps()
    if arch.is_conv:
        raise TypeError(f"expected a fully connected spec (zonal kernel), got {arch.slug}")
    rho, T = rho0, rho0
    for m in maps:
        rho, T = MAP_RULES[type(m)](m, rho, T, gain, duals)
    return rho, T


def _select(arch, kind, rho, T):
    return rho if check_kind(kind) == "nngp" else T


def _general(arch, kind, t_value):
    """(NNGP, NTK) on the unit sphere by the variance-carrying interpreter (theory.general)."""
    from . import general as _G
    maps = arch.kernel_maps()
    if arch.is_conv:
        raise TypeError(f"exact zonal kernels need a fully connected spec, got {arch.slug}")
    ctx = _G.SympyContext(want_ntk=check_kind(kind) == "ntk")
    st = _G.run(maps, _G.sphere_state(maps, t_value, ctx), ctx)
    return st.S if kind == "nngp" else st.T


def kernel_expr(arch, kind: str = "ntk") -> sp.Expr:
    """Exact kernel on the unit sphere as a sympy expression in ``t = <x, z>``.

    pi stays symbolic and float parameters become the rationals of their shortest
    decimal repr (``alpha=0.02`` -> 1/50).  Expressions nest one ``acos`` per layer;
    for depth beyond ~6 use :func:`numerics.gram` or :func:`numerics.kernel_mp`.

    Examples
    --------
    >>> from reskernels.theory import MLP, kernel_expr, t
    >>> from reskernels.theory.duals import kappa0, kappa1
    >>> import sympy as sp
    >>> sp.simplify(kernel_expr(MLP(depth=1), kind="ntk") - (t*kappa0(t) + kappa1(t)))
    0
    """
    if not _L.is_normalizable(arch.kernel_maps()):
        return _general(arch, kind, t)
    rho, T = normalized_recursion(arch, t)
    return exact_diag_scale(arch) * _select(arch, kind, rho, T)


def taylor_coefficients(arch, kind: str = "ntk", order: int = 8) -> list:
    """Exact Taylor coefficients b_0..b_{order-1} of the kernel at t = 0.

    Computed by composing truncated power series through the recursion (the duals
    are expanded at each layer's interior correlation rho_l(0) in (-1, 1)).  For
    every contract kernel all b_n >= 0 (docs/spectral.md §2, Schoenberg).
    """
    x = _series.Series.variable(order)
    if not _L.is_normalizable(arch.kernel_maps()):
        return [_finish(c) for c in _general(arch, kind, x).coeffs]
    rho, T = normalized_recursion(arch, x)
    scale = exact_diag_scale(arch)
    return [_finish(scale * c) for c in _select(arch, kind, rho, T).coeffs]

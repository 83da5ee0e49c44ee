"""Endpoint (Puiseux) expansions of the kernels at t = +1 and t = -1.

For a kernel kappa on [-1, 1]::

    kappa(1 - u)  = p_1(u)  + c_plus  u^nu + ...,
    kappa(-1 + u) = p_-1(u) + c_minus u^nu + ...,

and the non-integer powers fix the eigenvalue asymptotics
mu_k ~ (c_plus + (-1)^k c_minus) C(d, nu) k^(-d-2nu+1) (Bietti & Bach 2021 [recalled];
explicit constants docs/spectral.md §5 [derived]).  We substitute u = s^2 and push a
truncated series in s through the same recursion that defines the kernel
(:func:`theory.recursions.normalized_recursion`), so the coefficient of s^j is the
coefficient of u^(j/2).
"""
from __future__ import annotations

import sympy as sp

from . import series as _series
from .recursions import _finish, _select, exact_diag_scale, normalized_recursion


def endpoint_expansion(arch, kind: str = "ntk", side: int = 1, order: int = 6) -> dict:
    """Exact coefficients {p: coefficient of u^p} of kernel(side*(1 - u)), p = j/2 < order/2.

    ``side=+1`` expands kernel(1 - u), ``side=-1`` expands kernel(-1 + u).
    """
    if side not in (1, -1):
        raise ValueError(f"side must be +1 or -1, got {side!r}")
    if order < 4:
        raise ValueError("order must be >= 4 to reach the u^(3/2) term")
    s_var = _series.Series.variable(order, const=side, lin=0, quad=-side)
    from . import layers as _L
    if not _L.is_normalizable(arch.kernel_maps()):
        from .recursions import _general
        ser = _general(arch, kind, s_var)
        return {sp.Rational(j, 2): _finish(c) for j, c in enumerate(ser.coeffs)}
    rho, T = normalized_recursion(arch, s_var)
    scale = exact_diag_scale(arch)
    ser = _select(arch, kind, rho, T)
    return {sp.Rational(j, 2): _finish(scale * c) for j, c in enumerate(ser.coeffs)}


def endpoint_coefficients(arch, kind: str = "ntk") -> dict:
    """The leading endpoint-singular coefficients of the kernel on the unit sphere.

    Returns ``{"c_plus": {1/2: ., 3/2: .}, "c_minus": {1/2: ., 3/2: .}, "nu": nu}``,
    the coefficients of (1 - t)^(1/2), (1 - t)^(3/2) at t = 1 and of (1 + t)^(1/2),
    (1 + t)^(3/2) at t = -1, exact (sympy), and ``nu``, the smallest half-integer
    power with a nonzero coefficient at either end (1/2 for NTKs, 3/2 for NNGPs).

    Examples
    --------
    >>> from reskernels.theory import MLP
    >>> import sympy as sp
    >>> c = endpoint_coefficients(MLP(depth=1), "ntk")
    >>> sp.simplify(c["c_plus"][sp.Rational(1, 2)] + sp.sqrt(2)/sp.pi)
    0
    """
    half, three_half = sp.Rational(1, 2), sp.Rational(3, 2)
    plus = endpoint_expansion(arch, kind, side=1, order=5)
    minus = endpoint_expansion(arch, kind, side=-1, order=5)
    out = {
        "c_plus": {half: plus[half], three_half: plus[three_half]},
        "c_minus": {half: minus[half], three_half: minus[three_half]},
    }
    nu = None
    for p in (half, three_half):
        if any(sp.simplify(out[k][p]) != 0 for k in ("c_plus", "c_minus")):
            nu = p
            break
    out["nu"] = nu
    return out

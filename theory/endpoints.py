"""Endpoint (Puiseux) expansions of the kernels at t = +1 and t = -1.

For a kernel kappa on [-1, 1]::

    kappa(1 - u)  = p_1(u)  + c_plus  u^nu + ...,
    kappa(-1 + u) = p_-1(u) + c_minus u^nu + ...,

and the non-integer powers fix the eigenvalue asymptotics
mu_k ~ (c_plus + (-1)^k c_minus) C(d, nu) k^(-d-2nu+1) (Bietti & Bach 2021 [recalled];
explicit constants docs/spectral.md §5 [derived]).  We substitute u = s^r and push a
truncated series in s through the same recursion that defines the kernel
(:func:`theory.recursions.normalized_recursion`), so the coefficient of s^j is the
coefficient of u^(j/r).  r = 2 for every kernel whose activations' duals are smooth in the
half angle (ReLU and its relatives: powers u^(j/2)); a dual with a square-root singularity
applied to a kernel that already has one -- a step after a step, kappa0(kappa0(t)) with
1 - kappa0(1 - u) ~ (sqrt 2 / pi) u^(1/2) -- gives u^(1/4), and each further such layer halves
the power again; the expansion then retries with r = 4, 8, 16 (the root the series needs shows
as a square root of a series not divisible by s^2).
"""
from __future__ import annotations

import sympy as sp

from . import series as _series
from .recursions import _finish, _select, exact_diag_scale, normalized_recursion


#: the largest root degree r (u = s^r) tried: four nested square-root singularities
MAX_ROOT = 16


def endpoint_expansion(arch, kind: str = "ntk", side: int = 1, order: int = 6) -> dict:
    """Exact coefficients {p: coefficient of u^p} of kernel(side*(1 - u)), p < order/2.

    ``side=+1`` expands kernel(1 - u), ``side=-1`` expands kernel(-1 + u).  The powers p are
    multiples of 1/2 (``order`` terms), or of 1/r when nested square-root singularities need
    u = s^r (r = 4, 8, 16; ``order * r / 2`` terms, see the module docstring).
    """
    if side not in (1, -1):
        raise ValueError(f"side must be +1 or -1, got {side!r}")
    if order < 4:
        raise ValueError("order must be >= 4 to reach the u^(3/2) term")
    r = 2
    while True:
        try:
            return _expansion(arch, kind, side, order * r // 2, r)
        except _series.NotDivisible:
            if r >= MAX_ROOT:
                raise ValueError(f"{arch!r} {kind}: the endpoint expansion at t = {side:+d} needs powers "
                                 f"of u finer than u^(1/{MAX_ROOT}) (more than four nested square-root "
                                 "singularities, e.g. a deep chain of step activations)") from None
            r *= 2


def _expansion(arch, kind, side, n_terms, r):
    """kernel(side (1 - s^r)) as {j / r: coefficient of s^j}, j < n_terms.  Each square root of
    a series starting at s^(2m) leaves its top m coefficients unknown (m <= r / 2, and they stay
    at the top through the later layers), so the series carries r / 2 guard terms."""
    n_out, n_terms = n_terms, n_terms + r // 2
    coeffs = [sp.Integer(0)] * n_terms
    coeffs[0] = sp.Integer(side)
    coeffs[r] = sp.Integer(-side)
    s_var = _series.Series(tuple(coeffs))
    from . import layers as _L
    if not _L.is_normalizable(arch.kernel_maps()):
        from .recursions import _general
        ser = _general(arch, kind, s_var)
        return {sp.Rational(j, r): _finish(c) for j, c in enumerate(ser.coeffs[:n_out])}
    rho, T = normalized_recursion(arch, s_var)
    scale = exact_diag_scale(arch)
    ser = _select(arch, kind, rho, T)
    return {sp.Rational(j, r): _finish(scale * c) for j, c in enumerate(ser.coeffs[:n_out])}


def endpoint_coefficients(arch, kind: str = "ntk") -> dict:
    """The leading endpoint-singular coefficients of the kernel on the unit sphere.

    Returns ``{"c_plus": {1/2: ., 3/2: ., ...}, "c_minus": {...}, "nu": nu}``: the coefficients of
    the non-integer powers (1 - t)^p, p < 2, at t = 1 and of (1 + t)^p at t = -1, exact (sympy),
    always with p = 1/2 and 3/2 (0 where absent), and ``nu``, the smallest non-integer power with
    a nonzero coefficient at either end (1/2 for ReLU NTKs, 3/2 for NNGPs, 1/4 for a step after a
    step; None for a kernel analytic at both ends).  Computed with 4 terms in u^(1/2) (guard
    terms included; finer roots as :func:`endpoint_expansion` needs them).

    Examples
    --------
    >>> from reskernels.theory import MLP
    >>> import sympy as sp
    >>> c = endpoint_coefficients(MLP(depth=1), "ntk")
    >>> sp.simplify(c["c_plus"][sp.Rational(1, 2)] + sp.sqrt(2)/sp.pi)
    0
    """
    half, three_half = sp.Rational(1, 2), sp.Rational(3, 2)
    plus = endpoint_expansion(arch, kind, side=1, order=4)
    minus = endpoint_expansion(arch, kind, side=-1, order=4)
    powers = sorted({p for p in list(plus) + list(minus) if not p.is_integer} | {half, three_half})
    out = {"c_plus": {p: plus.get(p, sp.Integer(0)) for p in powers},
           "c_minus": {p: minus.get(p, sp.Integer(0)) for p in powers}}
    nu = None
    for p in powers:
        if any(sp.simplify(out[k][p]) != 0 for k in ("c_plus", "c_minus")):
            nu = p
            break
    out["nu"] = nu
    return out

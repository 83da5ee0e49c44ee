"""Fully connected kernels (MLP, ResNet) by a half-angle recursion, exact on the diagonal.

The state of a pair is carried as (su, sv) = (sin(theta/2), cos(theta/2)), with
theta = arccos(rho).  Then u = 1 - rho = 2 su^2 and v = 1 + rho = 2 sv^2 are each
accurate *relative* to their size, so nothing is lost near rho = +-1
(spectral.md §7.4; papers.md NUM-RHO1).  One layer needs one arcsin:

    theta = 2 arcsin(min(su, sv)), reflected to pi - theta when su > sv,
    kappa0 = 1 - theta/pi,
    f      = sin(theta) - theta cos(theta)  (>= 0),   kappa1 = rho + f/pi,
    1 - kappa1 = u - f/pi,                    1 + kappa1 = v + f/pi.

MLP:    u' = 1 - kappa1,  v' = 1 + kappa1.
ResNet: u' = (u + a (1 - kappa1)) / (1 + a),  v' = (v + a (1 + kappa1)) / (1 + a).

The diagonal-normalised NTK T follows :mod:`theory.recursions` exactly.  With
su = 0 (the same input twice) theta = 0, kappa0 = kappa1 = 1 and rho = 1 hold
exactly, so diagonals carry no sqrt(eps) error.  The body is written against a
backend (:mod:`numerics.backends`): float64 arrays or mpmath scalars.
"""
from __future__ import annotations

from theory.arch import MLP, ResNet


def layer_duals(su, sv, xp):
    """(rho, kappa0, kappa1, f/pi, su^2, sv^2) from the half-angle state.

    With h = theta/2: rho = sv^2 - su^2, kappa0 = 1 - 2h/pi, and
    f/pi = (sin theta - theta cos theta)/pi = (2/pi)(su sv - h rho) >= 0, so that
    kappa1 = rho + f/pi, 1 - kappa1 = 2 su^2 - f/pi, 1 + kappa1 = 2 sv^2 + f/pi.
    """
    pi = xp.pi
    u2 = su * su
    v2 = sv * sv
    rho = v2 - u2
    m = xp.arcsin(xp.minimum(su, sv))
    h = xp.where(su <= sv, m, pi / 2 - m)
    k0 = 1 - h * (2 / pi)
    f_pi = (su * sv - h * rho) * (2 / pi)
    k1 = rho + f_pi
    return rho, k0, k1, f_pi, u2, v2


def half_angle_recursion(arch, su, sv, xp, want_ntk: bool = True):
    """Return (rho_L, T_L) -- normalised NNGP and NTK -- from the input half angles.

    ``su``, ``sv`` are sin and cos of half the input angle between x and z.  The
    unnormalised kernels are these times ``exp(arch.log_diag_scale()) |x| |z|``.

    Half-angle updates (u2 = su^2 = (1 - rho)/2, v2 = sv^2 = (1 + rho)/2):
    MLP u2' = u2 - f/(2 pi), v2' = v2 + f/(2 pi); ResNet u2' = u2 - b f/pi,
    v2' = v2 + b f/pi with b = a / (2 (1 + a)).  Since f/pi <= 2 u2, u2' >= u2/(1+a):
    no cancellation.
    """
    hidden = arch.trained == "hidden"
    rho0 = (sv - su) * (sv + su)
    T = rho0 * 0 if hidden else rho0
    if isinstance(arch, MLP):
        L = arch.depth
        for h in range(1, L + 1):
            rho, k0, k1, f_pi, u2, v2 = layer_duals(su, sv, xp)
            if want_ntk:
                T = k0 * T if (hidden and h == L) else k1 + k0 * T
            su = xp.sqrt(xp.maximum(u2 - f_pi / 2, 0))
            sv = xp.sqrt(v2 + f_pi / 2)
        return (sv - su) * (sv + su), T
    if isinstance(arch, ResNet):
        for a in xp.gains(arch):
            rho, k0, k1, f_pi, u2, v2 = layer_duals(su, sv, xp)
            inv = 1 / (1 + a)
            b = a * inv / 2
            if want_ntk:
                # T' = [T (1 + a k0) + a (k1 + rho k0)] / (1 + a)
                T = T * inv + (k0 * (T + rho) + k1) * (a * inv)
            df = f_pi * b
            su = xp.sqrt(xp.maximum(u2 - df, 0))
            sv = xp.sqrt(v2 + df)
        rho = (sv - su) * (sv + su)
        if not hidden:
            T = T + rho
        return rho, T
    raise TypeError(f"expected MLP or ResNet, got {type(arch).__name__}")


def normalized_diagonal(arch, kind: str) -> float:
    """Closed-form diagonal of the normalised recursion (contract.md; spectral.md §10.12).

    NNGP: 1.  MLP NTK: L + 1 (all) or L - 1 (hidden).
    ResNet NTK: sum_l 2 a_l/(1 + a_l), plus 2 when trained="all".
    Multiply by ``exp(arch.log_diag_scale())`` for the kernel on the unit sphere.
    """
    if kind == "nngp":
        return 1.0
    if isinstance(arch, MLP):
        return float(arch.depth + 1 if arch.trained == "all" else arch.depth - 1)
    import math
    s = math.fsum(2 * a / (1 + a) for a in arch.block_gains())
    return s + (2.0 if arch.trained == "all" else 0.0)

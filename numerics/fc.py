"""Fully connected kernels (MLP, ResNet) by a half-angle recursion, exact on the diagonal.

The state of a pair is carried as (su, sv) = (sin(theta/2), cos(theta/2)), with
theta = arccos(rho).  Then u = 1 - rho = 2 su^2 and v = 1 + rho = 2 sv^2 are each
accurate *relative* to their size, so nothing is lost near rho = +-1
(docs/spectral.md §7.4; docs/papers.md NUM-RHO1).  One layer needs one arcsin:

    theta = 2 arcsin(min(su, sv)), reflected to pi - theta when su > sv,
    kappa0 = 1 - theta/pi,
    f      = sin(theta) - theta cos(theta)  (>= 0),   kappa1 = rho + f/pi,
    1 - kappa1 = u - f/pi,                    1 + kappa1 = v + f/pi.

f ~ theta^3/3 is a difference of two terms ~theta: below theta = 1/2 float64 takes it from its Taylor
series (:data:`theory.activations.SMALL_ANGLE_H`), else the deep recursion, whose angles shrink like
3 pi / l, would pass ~1.2 eps/theta a layer into 1 - kappa1 (docs/conventions.md, "Half-angle state").

Nonlinear map (MLP layer): u' = 1 - kappa1,  v' = 1 + kappa1.
Block (ResNet):             u' = (u + a (1 - kappa1)) / (1 + a),  v' = (v + a (1 + kappa1)) / (1 + a).

The diagonal-normalised NTK T follows :mod:`theory.recursions` exactly (the same kernel
maps, one rule per map type; the activation's ``half_angle`` hook supplies the duals).  With
su = 0 (the same input twice) theta = 0, kappa0 = kappa1 = 1 and rho = 1 hold
exactly, so diagonals carry no sqrt(eps) error.  The body is written against a
backend (:mod:`numerics.backends`): float64 arrays or mpmath scalars.
"""
from __future__ import annotations

from reskernels.theory import layers as _L


def _stem(m, st, xp, want_ntk):
    su, sv, T = st
    rho0 = (sv - su) * (sv + su)
    return su, sv, (rho0 if m.trained else rho0 * 0)


def _nonlinear(m, st, xp, want_ntk):
    """u2' = u2 - dk/2, v2' = v2 + dk/2 (kappa1 = rho + dk); T' = [trained] kappa1 + kappa0 T."""
    su, sv, T = st
    rho, k0, k1, f_pi, u2, v2 = m.activation.half_angle(su, sv, xp)
    if want_ntk:
        T = k1 + k0 * T if m.trained else k0 * T
    su = xp.sqrt(xp.maximum(u2 - f_pi / 2, 0))
    sv = xp.sqrt(v2 + f_pi / 2)
    return su, sv, T


def _block(m, st, xp, want_ntk):
    """u2' = u2 - b dk, v2' = v2 + b dk with b = a / (2 (1 + a));
    T' = T/(1 + a) + (kappa0 (T + rho) + kappa1) a/(1 + a)."""
    su, sv, T = st
    a = xp.gain(m)
    rho, k0, k1, f_pi, u2, v2 = m.activation.half_angle(su, sv, xp)
    inv = 1 / (1 + a)
    b = a * inv / 2
    if want_ntk:
        T = T * inv + (k0 * (T + rho) + k1) * (a * inv)
    df = f_pi * b
    return xp.sqrt(xp.maximum(u2 - df, 0)), xp.sqrt(v2 + df), T


def _linear(m, st, xp, want_ntk):
    su, sv, T = st
    if m.trained:
        T = T + (sv - su) * (sv + su)
    return su, sv, T


def _pool(m, st, xp, want_ntk):
    if m.pooling != "dense":
        raise TypeError(f"the half-angle engine is for fully connected programs; got pooling {m.pooling!r}")
    return st


#: one function per kernel-map type (the float64 / mpmath half-angle interpreter)
MAP_RULES = {_L.Stem: _stem, _L.Nonlinear: _nonlinear, _L.Block: _block, _L.Linear: _linear,
             _L.Pool: _pool}


def half_angle_state(arch, su, sv, xp, want_ntk: bool = True):
    """The last state (su_L, sv_L, T_L) of the half-angle recursion from the input half angles: sin and
    cos of half the angle at the last layer (accurate relative to their size, which rho_L = (sv - su)(sv + su)
    is not near +-1) and the normalised NTK (None without ``want_ntk``).
    Interprets ``arch.kernel_maps()`` with one rule per map (:data:`MAP_RULES`).  Since dk <= 2 u2,
    u2' >= u2/(1 + a): no cancellation.
    """
    if arch.is_conv:
        raise TypeError(f"the half-angle engine needs a fully connected spec, got {arch.slug}")
    st = (su, sv, None)
    for m in arch.kernel_maps():
        st = MAP_RULES[type(m)](m, st, xp, want_ntk)
    return st


def half_angle_recursion(arch, su, sv, xp, want_ntk: bool = True):
    """Return (rho_L, T_L) -- normalised NNGP and NTK -- from the input half angles.

    ``su``, ``sv`` are sin and cos of half the input angle between x and z.  The
    unnormalised kernels are these times ``exp(arch.log_diag_scale()) |x| |z|``.
    The last state of :func:`half_angle_state`, with rho_L = (sv - su)(sv + su).
    """
    su, sv, T = half_angle_state(arch, su, sv, xp, want_ntk)
    return (sv - su) * (sv + su), T


def normalized_diagonal(arch, kind: str) -> float:
    """Closed-form diagonal of the normalised recursion (docs/conventions.md; spectral §10.12).

    NNGP: 1.  NTK: :func:`theory.layers.normalized_ntk_diagonal` -- MLP L + 1 (all) or L - 1
    (hidden), ResNet sum_l 2 a_l/(1 + a_l), plus 2 when trained="all".
    Multiply by ``exp(arch.log_diag_scale())`` for the kernel on the unit sphere.
    """
    if kind == "nngp":
        return 1.0
    return _L.normalized_ntk_diagonal(arch.kernel_maps())

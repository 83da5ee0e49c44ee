"""Pointwise kernel evaluation on the unit sphere: float64 and any mpmath precision.

Fully connected kernels are zonal: on S^(d-1) they are functions of t = <x, z>
(or of the angle theta = arccos t).  These helpers evaluate them with the same
half-angle recursion as :func:`numerics.gram` (:mod:`numerics.fc`):

* :func:`kernel_mp` -- K(t) at ``dps`` significant digits (mpmath, fenced by workdps);
* :func:`kernel_theta_mp` -- K(cos theta) at the *current* mpmath precision, the form
  the eigenvalue quadrature uses (theta carries no cancellation near t = 1);
* :func:`zonal` -- a vectorised float64 callable t -> K(t).
"""
from __future__ import annotations

import math

import mpmath
import numpy as np

from reskernels.theory.arch import check_kind

from reskernels.theory import layers as _L

from .backends import MPMATH, NUMPY
from .fc import half_angle_recursion
from .variance import MpmathContext, fc_kernel


def _fc(arch):
    if getattr(arch, "is_conv", True):
        raise TypeError(f"zonal evaluation needs a fully connected spec (MLP, ResNet), got {arch!r}")


def _general(arch) -> bool:
    return not _L.is_normalizable(arch.kernel_maps())


def _general_mp(arch, t, kind, normalized):
    """K(t) on the unit sphere by the variance-carrying interpreter at the current precision."""
    maps, want = arch.kernel_maps(), kind == "ntk"
    ctx = MpmathContext(want)
    val = fc_kernel(maps, t, mpmath.mpf(1), mpmath.mpf(1), want, ctx)
    if normalized:
        val = val / fc_kernel(maps, mpmath.mpf(1), mpmath.mpf(1), mpmath.mpf(1), want, ctx)
    return val


def kernel_theta_mp(arch, theta, kind: str = "ntk", normalized: bool = False):
    """K(cos theta) on the unit sphere at the current mpmath precision."""
    _fc(arch)
    check_kind(kind)
    if _general(arch):
        return _general_mp(arch, mpmath.cos(mpmath.mpf(theta)), kind, normalized)
    theta = mpmath.mpf(theta)
    su, sv = mpmath.sin(theta / 2), mpmath.cos(theta / 2)
    rho, T = half_angle_recursion(arch, su, sv, MPMATH, want_ntk=(kind == "ntk"))
    val = T if kind == "ntk" else rho
    if normalized:
        return val
    return val * mpmath.exp(_log_scale_mp(arch))


def _log_scale_mp(arch):
    return MPMATH.log_diag_scale(arch)


def kernel_mp(arch, t, kind: str = "ntk", dps: int = 30, normalized: bool = False):
    """K(t) on the unit sphere to ``dps`` digits (evaluated with 10 guard digits).

    ``t`` may be a float, a string or an mpf; it is read at the working precision.
    """
    _fc(arch)
    if isinstance(dps, bool) or not isinstance(dps, int) or dps < 1:
        raise ValueError(f"dps must be an integer >= 1, got {dps!r}")
    with mpmath.workdps(dps + 10):
        tt = mpmath.mpf(t)
        if not -1 <= tt <= 1:
            raise ValueError(f"t must lie in [-1, 1], got {t!r}")
        if _general(arch):
            return +_general_mp(arch, tt, check_kind(kind), normalized)
        su = mpmath.sqrt((1 - tt) / 2)
        sv = mpmath.sqrt((1 + tt) / 2)
        rho, T = half_angle_recursion(arch, su, sv, MPMATH, want_ntk=(check_kind(kind) == "ntk"))
        val = T if kind == "ntk" else rho
        if not normalized:
            val = val * mpmath.exp(_log_scale_mp(arch))
        return +val


def zonal(arch, kind: str = "ntk", normalized: bool = False):
    """Return a vectorised float64 function t -> K(t) on the unit sphere."""
    _fc(arch)
    check_kind(kind)
    if _general(arch):
        maps, want = arch.kernel_maps(), kind == "ntk"
        one = np.ones(1)
        d = fc_kernel(maps, one, one, one, want)[0] if normalized else 1.0

        def g(t):
            t = np.clip(np.asarray(t, dtype=np.float64), -1.0, 1.0)
            return fc_kernel(maps, t, np.ones_like(t), np.ones_like(t), want) / d
        return g
    scale = 1.0 if normalized else math.exp(arch.log_diag_scale())

    def f(t):
        t = np.clip(np.asarray(t, dtype=np.float64), -1.0, 1.0)
        su, sv = np.sqrt((1.0 - t) / 2), np.sqrt((1.0 + t) / 2)
        rho, T = half_angle_recursion(arch, su, sv, NUMPY, want_ntk=(kind == "ntk"))
        return (T if kind == "ntk" else rho) * scale

    return f

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

from .backends import MPMATH, NUMPY
from .fc import half_angle_recursion


def _fc(arch):
    if getattr(arch, "is_conv", True):
        raise TypeError(f"zonal evaluation needs a fully connected spec (MLP, ResNet), got {arch!r}")


def kernel_theta_mp(arch, theta, kind: str = "ntk", normalized: bool = False):
    """K(cos theta) on the unit sphere at the current mpmath precision."""
    _fc(arch)
    check_kind(kind)
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
    with mpmath.workdps(dps + 10):
        tt = mpmath.mpf(t)
        if not -1 <= tt <= 1:
            raise ValueError(f"t must lie in [-1, 1], got {t!r}")
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
    scale = 1.0 if normalized else math.exp(arch.log_diag_scale())

    def f(t):
        t = np.clip(np.asarray(t, dtype=np.float64), -1.0, 1.0)
        su, sv = np.sqrt((1.0 - t) / 2), np.sqrt((1.0 + t) / 2)
        rho, T = half_angle_recursion(arch, su, sv, NUMPY, want_ntk=(kind == "ntk"))
        return (T if kind == "ntk" else rho) * scale

    return f

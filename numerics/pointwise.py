"""Pointwise kernel evaluation on the unit sphere: float64 and any mpmath precision.

Fully connected kernels are zonal: on S^(d-1) they are functions of t = <x, z>
(or of the angle theta = arccos t).  These helpers evaluate them with the same
half-angle recursion as :func:`numerics.gram` (:mod:`numerics.fc`):

* :func:`kernel_mp` -- K(t) at ``dps`` significant digits (mpmath, fenced by workdps);
* :func:`kernel_theta_mp` -- K(cos theta) at the *current* mpmath precision, the form
  the eigenvalue quadrature uses (theta carries no cancellation near t = 1);
* :func:`zonal` -- a vectorised float64 callable t -> K(t).

mpmath results are :class:`MpfDigits`: mpf values that print the digits they were computed to
(``str``/``repr`` of a plain mpf follow the *global* ``mpmath.mp.dps``, 15 by default, whatever
precision produced the value).
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


class MpfDigits(mpmath.mpf):
    """An ``mpmath.mpf`` that prints ``dps`` significant digits.

    ``str(x)`` is ``mpmath.nstr(x, x.dps)`` and ``repr(x)`` is ``mpf('<the same digits>')``,
    independent of the global ``mpmath.mp.dps``.  Everything else is the mpf: the value (its
    ``_mpf_`` tuple) is the computed one, bit for bit; ``isinstance(x, mpmath.mpf)`` holds;
    ``float(x)``, comparisons, hashing and mpmath functions behave as for any mpf; arithmetic
    returns plain mpf values rounded at the current precision, as mpmath always does.

    Examples
    --------
    >>> x = MpfDigits.of(mpmath.mpf(1) / 3, 5)
    >>> str(x), repr(x)
    ('0.33333', "mpf('0.33333')")
    >>> isinstance(x, mpmath.mpf), x._mpf_ == (mpmath.mpf(1) / 3)._mpf_, float(x) == 1 / 3
    (True, True, True)
    """

    __slots__ = ("dps",)

    @classmethod
    def of(cls, value, dps: int) -> "MpfDigits":
        """``value`` (an mpf, kept exactly) labelled to print ``dps`` significant digits."""
        if isinstance(dps, bool) or not isinstance(dps, int) or dps < 1:
            raise ValueError(f"dps must be an integer >= 1, got {dps!r}")
        out = object.__new__(cls)
        out._mpf_ = mpmath.mpf(value)._mpf_ if not hasattr(value, "_mpf_") else value._mpf_
        out.dps = dps
        return out

    def __str__(self):
        return mpmath.libmp.to_str(self._mpf_, self.dps)

    def __repr__(self):
        if self.context.pretty:
            return str(self)
        return f"mpf('{self}')"

    def __reduce__(self):
        return (_mpf_digits, (mpmath.libmp.to_pickable(self._mpf_), self.dps))


def _mpf_digits(pickled, dps):
    """Unpickle an :class:`MpfDigits`."""
    out = object.__new__(MpfDigits)
    out._mpf_ = mpmath.libmp.from_pickable(pickled)
    out.dps = dps
    return out


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
    """K(cos theta) on the unit sphere at the current mpmath precision.

    Returns an :class:`MpfDigits` that prints ``mpmath.mp.dps`` digits (the precision at the call).
    """
    return MpfDigits.of(_kernel_theta_mp(arch, theta, kind, normalized), mpmath.mp.dps)


def _kernel_theta_mp(arch, theta, kind, normalized):
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
    Returns an :class:`MpfDigits`: the mpf computed at dps + 10 digits, printing ``dps`` digits.

    Examples
    --------
    >>> from reskernels.theory import MLP
    >>> print(kernel_mp(MLP(depth=1), 0, "nngp", dps=30))      # kappa1(0) = 1/pi
    0.318309886183790671537767526745
    """
    _fc(arch)
    if isinstance(dps, bool) or not isinstance(dps, int) or dps < 1:
        raise ValueError(f"dps must be an integer >= 1, got {dps!r}")
    with mpmath.workdps(dps + 10):
        tt = mpmath.mpf(t)
        if not -1 <= tt <= 1:
            raise ValueError(f"t must lie in [-1, 1], got {t!r}")
        if _general(arch):
            return MpfDigits.of(+_general_mp(arch, tt, check_kind(kind), normalized), dps)
        su = mpmath.sqrt((1 - tt) / 2)
        sv = mpmath.sqrt((1 + tt) / 2)
        rho, T = half_angle_recursion(arch, su, sv, MPMATH, want_ntk=(check_kind(kind) == "ntk"))
        val = T if kind == "ntk" else rho
        if not normalized:
            val = val * mpmath.exp(_log_scale_mp(arch))
        return MpfDigits.of(+val, dps)


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

"""Number backends, so that one recursion body serves float64 arrays and mpmath.

A backend exposes the handful of operations the half-angle recursion of
:mod:`numerics.fc` needs: ``sqrt``, ``arcsin``, ``minimum``, ``maximum``, ``where``
and ``pi``, and says whether it is float64 (``small_angle_series``).  The numpy backend works
elementwise on float64 arrays; the mpmath backend works on scalars at the *current* mpmath
precision (callers fence it with ``mpmath.workdps``); it reads spec parameters by their shortest
decimal repr, so that ``alpha=0.1`` means exactly 1/10 there and in the sympy route.
"""
from __future__ import annotations

from functools import lru_cache

import mpmath
import numpy as np


class NumpyBackend:
    name = "float64"
    #: the ReLU half-angle duals take su sv - h rho from its Taylor series at small h
    #: (:data:`theory.activations.SMALL_ANGLE_H`): float64 cannot absorb the difference's cancellation
    small_angle_series = True

    @staticmethod
    def number(x):
        return float(x)

    @staticmethod
    def gain(m):
        """A block's gain a = alpha^2 c m2 in float64 (:attr:`theory.layers.Block.gain`)."""
        return m.gain

    sqrt = staticmethod(np.sqrt)
    arcsin = staticmethod(np.arcsin)
    minimum = staticmethod(np.minimum)
    maximum = staticmethod(np.maximum)
    where = staticmethod(np.where)
    pi = np.pi

    @staticmethod
    def sin(x):
        return np.sin(x)

    @staticmethod
    def cos(x):
        return np.cos(x)

    @staticmethod
    def where_fn(cond, fn, x, other):
        """``where(cond, fn(x), other)``, and ``other`` itself without calling fn when cond holds nowhere
        (fn on every entry otherwise: fn on the masked entries only was no faster on ResNet(10) and MLP(10),
        whose later layers have small angles on most entries; benchmarks/bench_small_angle.py)."""
        cond = np.asarray(cond)
        if not cond.any():
            return other
        return np.where(cond, fn(np.asarray(x, dtype=float)), other)


class MpmathBackend:
    name = "mpmath"
    small_angle_series = False      # the working precision absorbs the cancellation

    @staticmethod
    def number(x):
        """A spec float read by its shortest decimal repr (0.1 -> 1/10), as the sympy
        route reads it, at the current precision."""
        return mpmath.mpf(repr(float(x)))

    def second_moment(self, act):
        """m2 of an activation (an exact sympy number) at the current precision."""
        m2 = act.second_moment
        return mpmath.mpf(int(m2.p)) / int(m2.q)

    def gain(self, m):
        """A block's gain a = alpha^2 c m2 at the current precision (spec floats read by their
        shortest repr); cached per map and working precision (quadratures call it per node)."""
        return _gain_mp(m, mpmath.mp.prec)

    def log_diag_scale(self, arch):
        """log of the NNGP diagonal scale at the current precision (:func:`theory.layers.log_diag_scale`),
        cached per spec and working precision."""
        return _log_scale_mp(arch, mpmath.mp.prec)

    @staticmethod
    def sqrt(x):
        return mpmath.sqrt(x)

    @staticmethod
    def arcsin(x):
        return mpmath.asin(x)

    @staticmethod
    def minimum(a, b):
        return a if a <= b else b

    @staticmethod
    def maximum(a, b):
        return a if a >= b else b

    @staticmethod
    def where(c, a, b):
        return a if c else b

    @staticmethod
    def where_fn(c, fn, x, other):
        raise NotImplementedError("mpmath keeps the exact difference (small_angle_series is False): a float "
                                  "series would cut its working precision to float64")

    @staticmethod
    def sin(x):
        return mpmath.sin(x)

    @staticmethod
    def cos(x):
        return mpmath.cos(x)

    @property
    def pi(self):  # evaluated at the precision in force
        return +mpmath.pi


@lru_cache(maxsize=4096)
def _gain_mp(m, prec):
    with mpmath.workprec(prec):
        number = MpmathBackend.number
        return number(m.alpha) ** 2 * number(m.weight_var) * MPMATH.second_moment(m.activation)


@lru_cache(maxsize=1024)
def _log_scale_mp(arch, prec):
    from reskernels.theory import layers as _L
    with mpmath.workprec(prec):
        number = MpmathBackend.number
        maps = arch.kernel_maps()
        terms = []
        for m in maps[1:]:
            if isinstance(m, _L.Nonlinear):
                terms.append(mpmath.log(number(m.weight_var) * MPMATH.second_moment(m.activation)))
            elif isinstance(m, _L.Block):
                terms.append(mpmath.log1p(_gain_mp(m, prec)))
            elif isinstance(m, _L.Linear):
                terms.append(mpmath.log(number(m.weight_var)))
        return mpmath.log(number(maps[0].input_var)) + mpmath.fsum(terms)


class CupyBackend(NumpyBackend):
    """float64 on a CUDA GPU: the numpy backend's operations taken from CuPy."""
    name = "cupy-float64"

    def __init__(self):
        import cupy
        self.sqrt, self.arcsin = cupy.sqrt, cupy.arcsin
        self.minimum, self.maximum, self.where = cupy.minimum, cupy.maximum, cupy.where
        self.sin, self.cos = cupy.sin, cupy.cos
        self._cupy = cupy

    def where_fn(self, cond, fn, x, other):
        """``where(cond, fn(x), other)`` on the device, fn on every entry (no host sync per layer)."""
        return self._cupy.where(cond, fn(x), other)


NUMPY = NumpyBackend()
MPMATH = MpmathBackend()


def backend_for(name: str):
    """The recursion backend of an array backend name ("numpy", "cupy")."""
    if name == "numpy":
        return NUMPY
    if name == "cupy":
        return CupyBackend()
    raise ValueError(f"unknown backend {name!r}")

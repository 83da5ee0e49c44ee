"""Number backends, so that one recursion body serves float64 arrays and mpmath.

A backend exposes the handful of operations the half-angle recursion of
:mod:`numerics.fc` needs: ``sqrt``, ``arcsin``, ``minimum``, ``maximum``, ``where``
and ``pi``.  The numpy backend works elementwise on float64 arrays; the mpmath
backend works on scalars at the *current* mpmath precision (callers fence it with
``mpmath.workdps``).
"""
from __future__ import annotations

import mpmath
import numpy as np


class NumpyBackend:
    name = "float64"
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


class MpmathBackend:
    name = "mpmath"

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
    def sin(x):
        return mpmath.sin(x)

    @staticmethod
    def cos(x):
        return mpmath.cos(x)

    @property
    def pi(self):  # evaluated at the precision in force
        return +mpmath.pi


NUMPY = NumpyBackend()
MPMATH = MpmathBackend()

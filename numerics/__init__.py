"""reskernels.numerics -- float64 Gram matrices and mpmath evaluation.

Public names (contract.md): :func:`gram`, :func:`eigenvalues`.
"""
from .gram import gram
from .pointwise import kernel_mp, kernel_theta_mp, zonal

__all__ = ["gram", "kernel_mp", "kernel_theta_mp", "zonal"]

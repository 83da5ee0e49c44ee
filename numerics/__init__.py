"""reskernels.numerics -- float64 Gram matrices, mpmath evaluation and certified spectra.

Public names (docs/conventions.md): :func:`gram`, :func:`eigenvalues`.
"""
if __name__ != "reskernels.numerics":  # the folder numerics/ installs as reskernels.numerics only
    raise ImportError(f"numerics/ is the subpackage reskernels.numerics: use 'import reskernels.numerics' "
                      "(pip install . from the repository)")
from .gram import gram
from .pointwise import kernel_mp, kernel_theta_mp, zonal
from .spectra import PrecisionError, eigenvalues

__all__ = ["gram", "eigenvalues", "kernel_mp", "kernel_theta_mp", "zonal", "PrecisionError"]

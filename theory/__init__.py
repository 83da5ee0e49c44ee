"""reskernels.theory -- exact (sympy) side of the suite.

Public names (docs/conventions.md): the specs :class:`MLP`, :class:`ResNet`, :class:`CNN`,
:class:`ResCNN` (each with ``layers()``, its kernel program), :func:`kernel_expr`, the symbol ``t``
in which kernel expressions are written, and the modules :mod:`~reskernels.theory.layers` (kernel
steps) and :mod:`~reskernels.theory.activations` (activations and their dual hooks).
"""
if __name__ != "reskernels.theory":  # the folder theory/ installs as reskernels.theory only
    raise ImportError(f"theory/ is the subpackage reskernels.theory: use 'import reskernels.theory' "
                      "(pip install . from the repository)")
from . import activations, layers
from .arch import (CNN, KIND_VALUES, MLP, READOUT_VALUES, SPECS, TRAINED_VALUES, DenseNet, ResCNN,
                   ResNet, check_kind, spec_from_dict)
from .endpoints import endpoint_coefficients, endpoint_expansion
from .latex import KernelSystem, kernel_latex, kernel_system
from .recursions import kernel_expr, t, taylor_coefficients

__all__ = [
    "MLP", "ResNet", "CNN", "ResCNN", "DenseNet", "kernel_expr", "t", "taylor_coefficients",
    "endpoint_coefficients", "endpoint_expansion", "check_kind",
    "KIND_VALUES", "TRAINED_VALUES", "READOUT_VALUES", "SPECS", "spec_from_dict",
    "activations", "layers", "kernel_latex", "kernel_system", "KernelSystem",
]

"""reskernels.theory -- exact (sympy) side of the suite.

Public names (contract.md): :class:`MLP`, :class:`ResNet`, :func:`kernel_expr`,
plus the symbol ``t`` in which kernel expressions are written.
"""
from .arch import CNN, KIND_VALUES, MLP, READOUT_VALUES, TRAINED_VALUES, ResCNN, ResNet, check_kind
from .endpoints import endpoint_coefficients, endpoint_expansion
from .recursions import kernel_expr, t, taylor_coefficients

__all__ = [
    "MLP", "ResNet", "CNN", "ResCNN", "kernel_expr", "t", "taylor_coefficients",
    "endpoint_coefficients", "endpoint_expansion", "check_kind",
    "KIND_VALUES", "TRAINED_VALUES", "READOUT_VALUES",
]

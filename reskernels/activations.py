"""Activations and their dual-activation hooks (``reskernels.activations.relu()``, ...);
see :mod:`reskernels.theory.activations`."""
from reskernels.theory.activations import (ACTIVATIONS, Activation, abs_, cos, erf, from_function, gelu, get,
                                           leaky_relu, monomial, rectified_monomial, relu, sin, step, tanh)

__all__ = ["Activation", "ACTIVATIONS", "get", "relu", "leaky_relu", "abs_", "step", "erf", "gelu", "tanh",
           "sin", "cos", "monomial", "rectified_monomial", "from_function"]

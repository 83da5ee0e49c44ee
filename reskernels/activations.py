"""Activations and their dual-activation hooks (``reskernels.activations.relu()``, ...);
see :mod:`reskernels.theory.activations`."""
from reskernels.theory.activations import ACTIVATIONS, Activation, get, relu

__all__ = ["Activation", "ACTIVATIONS", "get", "relu"]

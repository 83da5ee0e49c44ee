"""Inputs and alpha scalings shared by the scope maps."""
from __future__ import annotations

from functools import lru_cache

import numpy as np

from reskernels.numerics.samplers import multisphere

#: alpha as a function of the number of blocks L
ALPHA_SCALINGS = {"0.5": lambda L: 0.5, "1": lambda L: 1.0, "L^-1/2": lambda L: L ** -0.5, "L^-1": lambda L: 1.0 / L}


def _draw(name: str, n: int, seed: int) -> np.ndarray:
    if name == "multisphere":
        return multisphere(n, 8, 3, seed)
    if name == "image-rows":
        from reskernels.numerics.datasets import image_rows
        return image_rows(n, 8, seed=seed)
    if name == "digits":
        from reskernels.numerics.datasets import digit_signals
        return digit_signals(n, seed=seed, normalize_pixels=True)[0]
    raise ValueError(f"unknown data set {name!r}")


@lru_cache(maxsize=64)
def conv_data(name: str, n: int, seed: int) -> np.ndarray:
    """``n`` distinct 1-D circular signals of 8 pixels: ``multisphere`` MS(3, 8) uniform (the papers'
    setting); ``image-rows`` rows of scikit-image photographs, RGB pixels on the unit sphere;
    ``digits`` scikit-learn digits, rows as pixels and columns as 8 channels, pixels on the unit sphere.

    Real data repeat themselves (flat image regions, blank digit rows); a repeated input makes every
    Gram matrix singular whatever the kernel, so repeats (equal to 1e-9 after normalising) are
    dropped and more points drawn."""
    for factor in (1, 2, 4, 8):
        X = _draw(name, factor * n, seed)
        flat = X.reshape(len(X), -1)
        flat = flat / np.linalg.norm(flat, axis=1, keepdims=True)
        _, first = np.unique(np.round(flat, 9), axis=0, return_index=True)
        keep = np.sort(first)
        if len(keep) >= n:
            return np.ascontiguousarray(X[keep[:n]])
    raise ValueError(f"data set {name!r} has fewer than {n} distinct inputs")



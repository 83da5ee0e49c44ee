"""Validation of user inputs: numeric, finite, of the expected rank -- or a ValueError naming the
argument (every engine's entry point calls these)."""
from __future__ import annotations

import numpy as np


def as_float_array(X, name: str, ndim: int | tuple) -> np.ndarray:
    """Validate an input array: numeric, finite, of the expected rank; returns float64."""
    try:
        A = np.asarray(X)
    except Exception as exc:  # pragma: no cover - exotic objects
        raise ValueError(f"{name} could not be converted to an array: {exc}") from None
    if A.dtype == object or not (np.issubdtype(A.dtype, np.number) or A.dtype == bool):
        raise ValueError(f"{name} must be a real numeric array, got dtype {A.dtype}")
    if np.iscomplexobj(A):
        raise ValueError(f"{name} must be real, got a complex array")
    dims = (ndim,) if isinstance(ndim, int) else ndim
    if A.ndim not in dims:
        raise ValueError(f"{name} must have rank {' or '.join(map(str, dims))}, "
                         f"got shape {A.shape}")
    A = A.astype(np.float64, copy=False)
    if not np.all(np.isfinite(A)):
        bad = np.argwhere(~np.isfinite(A))[0]
        raise ValueError(f"{name} contains a non-finite value (NaN or inf) at index {tuple(bad)}")
    return A

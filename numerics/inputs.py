"""Validation of user inputs: numeric, finite, of the expected rank -- or a ValueError naming the
argument (every engine's entry point calls these)."""
from __future__ import annotations

import numpy as np


def as_float_array(X, name: str, ndim: int | tuple) -> np.ndarray:
    """Validate an input array: numeric, finite, of the expected rank, no masked entries, no empty
    feature axis; returns float64."""
    if np.ma.isMaskedArray(X) and np.ma.getmaskarray(X).any():
        raise ValueError(f"{name} is a masked array with masked entries: fill or drop them first "
                         "(the kernel would silently use the hidden values)")
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
    if A.ndim >= 2 and A.shape[-1] == 0:
        raise ValueError(f"{name} has no features (shape {A.shape}): the last axis must have length >= 1")
    A = A.astype(np.float64, copy=False)
    if not np.all(np.isfinite(A)):
        bad = np.argwhere(~np.isfinite(A))[0]
        raise ValueError(f"{name} contains a non-finite value (NaN or inf) at index {tuple(bad)}")
    return A


def check_gram_options(normalize, memory_budget, tile, n_threads) -> None:
    """ValueError naming the argument for a bad gram option (never a silently ignored value)."""
    if not isinstance(normalize, (bool, np.bool_)):
        raise ValueError(f"normalize must be True or False, got {normalize!r}")
    if isinstance(memory_budget, bool) or not isinstance(memory_budget, (int, np.integer)) or memory_budget <= 0:
        raise ValueError(f"memory_budget must be a positive integer number of bytes, got {memory_budget!r}")
    if isinstance(tile, bool) or not isinstance(tile, (int, np.integer)) or tile <= 0:
        raise ValueError(f"tile must be a positive integer, got {tile!r}")
    if n_threads is not None and (isinstance(n_threads, bool) or not isinstance(n_threads, (int, np.integer))
                                  or n_threads <= 0):
        raise ValueError(f"n_threads must be a positive integer or None, got {n_threads!r}")


class InputRangeError(ValueError, FloatingPointError):
    """Kernel values that float64 cannot represent for these inputs (the message names X or Z)."""

"""Float64 Gram matrices: validation, pair geometry, tiling, threads.

``gram(arch, X, Z=None, kind="ntk")`` returns the n x m matrix of kernel values.
Fully connected kernels are positively homogeneous, K(x, z) = |x| |z| K(x^, z^),
and zonal, so each entry needs only the half angle between x^ and z^:

* sin^2(theta/2) = |x^ - z^|^2 / 4 and cos^2(theta/2) = |x^ + z^|^2 / 4.

They are taken from one BLAS product t = X^ Z^T, and recomputed from explicit
differences (sums) wherever |t| > 0.9, where 1 -+ t would lose relative accuracy.
Identical rows therefore give sin(theta/2) = 0 exactly and the diagonal is exact.

Work is split into square tiles of output entries whose size follows
``memory_budget`` (bytes of temporaries, default 256 MiB); tiles run on a thread
pool (numpy ufuncs release the GIL).  With ``Z=None`` only tiles on or above the
block diagonal are computed and mirrored, so K is exactly symmetric.

Overflow: the unnormalised kernel carries the diagonal scale
input_var (c/2)^L (MLP) or input_var prod (1 + alpha_l^2 c/2) (ResNet), which
overflows float64 for e.g. ResNet(depth=1100, alpha=1).  ``gram`` then raises
:class:`OverflowError`; ``normalize=True`` returns K(x,z)/sqrt(K(x,x) K(z,z)),
which is computed without the scale and is finite at any depth.
"""
from __future__ import annotations

import math
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from theory.arch import MLP, ResNet, check_kind

from .backends import NUMPY
from .fc import half_angle_recursion, normalized_diagonal

#: float64 temporaries alive per output entry inside one tile (measured upper bound)
_TEMPS_PER_ENTRY = 24
_NEAR = 0.9


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


def _unit_rows(A):
    # rescale first to avoid overflow of the squared norm for huge entries
    scale = np.max(np.abs(A), axis=1)
    safe = np.where(scale > 0, scale, 1.0)
    As = A / safe[:, None]
    n2 = np.sqrt(np.einsum("ij,ij->i", As, As))
    norms = n2 * scale
    unit = np.where(n2[:, None] > 0, As / np.where(n2 > 0, n2, 1.0)[:, None], 0.0)
    return unit, norms


def half_angles(Xu, Zu):
    """(sin(theta/2), cos(theta/2)) for all pairs of unit (or zero) rows."""
    t = Xu @ Zu.T
    np.clip(t, -1.0, 1.0, out=t)
    su2 = (1.0 - t) * 0.5
    sv2 = (1.0 + t) * 0.5
    for sign, target, other in ((-1.0, su2, sv2), (1.0, sv2, su2)):
        mask = (t > _NEAR) if sign < 0 else (t < -_NEAR)
        ii, jj = np.nonzero(mask)
        step = max(1, (1 << 20) // max(1, Xu.shape[1]))
        for s in range(0, ii.size, step):
            i, j = ii[s:s + step], jj[s:s + step]
            diff = Xu[i] + sign * Zu[j]
            val = np.einsum("ij,ij->i", diff, diff) * 0.25
            target[i, j] = val
            other[i, j] = 1.0 - val
    return np.sqrt(su2), np.sqrt(sv2)


def _tiles(n, m, block, symmetric):
    for i0 in range(0, n, block):
        for j0 in range(i0 if symmetric else 0, m, block):
            yield i0, min(i0 + block, n), j0, min(j0 + block, m)


def gram(arch, X, Z=None, kind: str = "ntk", *, normalize: bool = False,
         memory_budget: int = 256 * 2**20, tile: int = 128, n_threads: int | None = None,
         progress: bool | None = None) -> np.ndarray:
    """Exact float64 Gram matrix of an infinite-width kernel.

    Parameters
    ----------
    arch : MLP, ResNet, CNN or ResCNN (conv inputs: (n, P, C) or (n, H, W, C), see :mod:`numerics.conv`)
    X : array (n, d);  Z : array (m, d) or None (then Z = X, exact symmetry)
    kind : "ntk" or "nngp"
    normalize : return K(x,z) / sqrt(K(x,x) K(z,z)) (finite at any depth)
    memory_budget : bytes of temporaries summed over threads (bounds the tile size)
    tile : largest tile edge; 128 keeps a tile's temporaries in cache
    n_threads : worker threads (default: the number of CPUs)
    progress : conv kernels: print a tile counter on stderr (default: automatic)

    Returns
    -------
    ndarray float64 of shape (n, m).

    Examples
    --------
    >>> import numpy as np
    >>> from theory import MLP
    >>> x = np.array([[0.6, 0.8]])
    >>> float(gram(MLP(depth=3), x)[0, 0])          # NTK(x,x) = L + 1 on the sphere
    4.0
    """
    check_kind(kind)
    if not isinstance(arch, (MLP, ResNet)):
        from .conv import gram_conv, is_conv
        if is_conv(arch):
            return gram_conv(arch, X, Z, kind, normalize=normalize, memory_budget=memory_budget,
                             n_threads=n_threads, progress=progress)
        raise TypeError(f"gram expects an architecture spec (MLP, ResNet, CNN, ResCNN), "
                        f"got {type(arch).__name__}")
    X = as_float_array(X, "X", 2)
    symmetric = Z is None
    Zm = X if symmetric else as_float_array(Z, "Z", 2)
    if Zm.shape[1] != X.shape[1]:
        raise ValueError(f"X and Z must have the same feature dimension, got X with "
                         f"{X.shape[1]} and Z with {Zm.shape[1]} columns")
    n, m = X.shape[0], Zm.shape[0]
    Xu, nx = _unit_rows(X)
    Zu, nz = (Xu, nx) if symmetric else _unit_rows(Zm)
    if normalize and (np.any(nx == 0) or np.any(nz == 0)):
        raise ValueError("normalize=True is undefined for zero input vectors (K(x,x) = 0)")
    diag = normalized_diagonal(arch, kind)
    if normalize and diag == 0:
        raise ValueError(f"normalize=True is undefined: {arch} has K(x,x) = 0 for kind={kind!r}")
    if not normalize:
        logscale = arch.log_diag_scale()
        if logscale > 700:
            raise OverflowError(
                f"the unnormalised kernel of {arch.slug} has diagonal scale exp({logscale:.1f}), "
                "beyond float64; use gram(..., normalize=True) for the normalised kernel")
        scale = math.exp(logscale)
    out = np.empty((n, m), dtype=np.float64)
    if n == 0 or m == 0:
        return out
    threads = n_threads or os.cpu_count() or 1
    per_thread = max(1, memory_budget // (threads * _TEMPS_PER_ENTRY * 8))
    block = max(16, min(tile, int(math.isqrt(per_thread))))
    want_ntk = kind == "ntk"

    def work(tile):
        i0, i1, j0, j1 = tile
        su, sv = half_angles(Xu[i0:i1], Zu[j0:j1])
        rho, T = half_angle_recursion(arch, su, sv, NUMPY, want_ntk=want_ntk)
        val = T if want_ntk else rho
        if normalize:
            val = val / diag
        else:
            val = val * scale * np.outer(nx[i0:i1], nz[j0:j1])
        if symmetric and j0 == i0:  # mirror the upper triangle: exact symmetry
            val = np.triu(val) + np.triu(val, 1).T
        out[i0:i1, j0:j1] = val
        if symmetric and j0 != i0:
            out[j0:j1, i0:i1] = val.T
        return None

    tiles = list(_tiles(n, m, block, symmetric))
    if threads == 1 or len(tiles) == 1:
        for tile in tiles:
            work(tile)
    else:
        with ThreadPoolExecutor(max_workers=threads) as pool:
            for _ in pool.map(work, tiles):
                pass
    if not np.all(np.isfinite(out)):
        raise FloatingPointError(
            "non-finite kernel values: the inputs' norms times the diagonal scale "
            "overflow float64; rescale X or use normalize=True")
    return out

"""Input samplers of the claim checks: the sphere S^(d-1), the multi-sphere MS(C0, P) and the circle.

Random points are normalised Gaussian draws (uniform on the sphere by rotation invariance).
``seed`` is anything :func:`numpy.random.default_rng` accepts; a ``Generator`` is drawn from in
place, so a sampler can sit inside a longer stream of draws without changing it.
"""
from __future__ import annotations

import numpy as np


def unit_last_axis(X: np.ndarray) -> np.ndarray:
    """X / |X| along the last axis: rows onto S^(d-1), or every pixel onto its channel sphere."""
    return X / np.linalg.norm(X, axis=-1, keepdims=True)


def sphere(n: int, d: int, seed) -> np.ndarray:
    """n points uniform on the unit sphere S^(d-1) of R^d, shape (n, d).

    x = g / |g| with g ~ N(0, I_d) (Muller 1959).

    Examples
    --------
    >>> X = sphere(5, 3, 0)
    >>> X.shape, bool(np.allclose(np.linalg.norm(X, axis=1), 1.0))
    ((5, 3), True)
    """
    return unit_last_axis(np.random.default_rng(seed).standard_normal((n, d)))


def multisphere(n: int, P: int, C: int, seed) -> np.ndarray:
    """n points uniform on the multi-sphere MS(C, P) = (S^(C-1))^P, shape (n, P, C).

    Every pixel x_i = g_i / |g_i|, g_i ~ N(0, I_C) independently: a 1-D signal of P pixels with C
    channels, each pixel a unit vector (the input set of Barzilai et al., arXiv 2211.14810, and
    Geifman et al.; docs/papers.md §7, §8.2).

    Examples
    --------
    >>> X = multisphere(2, 8, 3, seed=1)
    >>> X.shape, bool(np.allclose(np.linalg.norm(X, axis=-1), 1.0))
    ((2, 8, 3), True)
    """
    return unit_last_axis(np.random.default_rng(seed).standard_normal((n, P, C)))


def circle_points_at(angles) -> np.ndarray:
    """The points (cos a, sin a) of S^1 at the given angles, shape (len(angles), 2).

    The input embedding of the Tirer et al. toy experiment (arXiv 2009.10008, docs/papers.md §5);
    :func:`numerics.gramspec.circle_points` gives n equispaced ones.

    Examples
    --------
    >>> circle_points_at(np.array([0.0, np.pi / 2])).round(12).tolist()
    [[1.0, 0.0], [0.0, 1.0]]
    """
    x = np.asarray(angles)
    return np.stack([np.cos(x), np.sin(x)], axis=1)

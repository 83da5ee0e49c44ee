"""Real data that ships with the dependencies (no download), shaped for the kernels' inputs.

* :func:`digits` -- scikit-learn's 8 x 8 handwritten digits (1,797 images, UCI optdigits),
  pixel values 0..16;
* :func:`digit_signals` -- the same images as circular 1-D signals of ``P = 8`` pixels (the rows)
  with ``C = 8`` channels (the columns), the layout of :class:`~reskernels.theory.CNN` on 1-D inputs;
* :func:`image_rows` -- one row of ``P`` pixels (RGB channels) from random patches of
  scikit-image's photographs (:func:`~reskernels.numerics.images.natural_patches`).

Both are optional extras (``pip install "reskernels[data]"``); a missing one raises an
ImportError that says which package to install.
"""
from __future__ import annotations

import numpy as np


def _need(module: str, package: str):
    try:
        return __import__(module, fromlist=["_"])
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(f"this data set needs {package}: pip install {package} "
                          f"(or pip install \"reskernels[data]\")") from exc


def _positive_int(name, value):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def digits(n: int | None = None, *, seed: int = 0, classes=None):
    """``(images, labels)``: images (n, 8, 8) float64 in [0, 16], labels (n,) int.

    ``n=None`` returns all 1,797 images in the data set's order; otherwise ``n`` distinct images
    drawn without replacement (deterministic for ``seed``).  ``classes`` keeps only those labels.
    """
    datasets = _need("sklearn.datasets", "scikit-learn")
    bunch = datasets.load_digits()
    images, labels = bunch.images.astype(np.float64), bunch.target.astype(int)
    if classes is not None:
        keep = np.isin(labels, list(classes))
        if not keep.any():
            raise ValueError(f"classes={classes!r} selects no digit (labels are 0..9)")
        images, labels = images[keep], labels[keep]
    if n is None:
        return images, labels
    n = _positive_int("n", n)
    if n > len(images):
        raise ValueError(f"n={n} exceeds the {len(images)} digits available")
    idx = np.random.default_rng(seed).choice(len(images), size=n, replace=False)
    return images[idx], labels[idx]


def digit_signals(n: int | None = None, *, seed: int = 0, classes=None, normalize_pixels: bool = False):
    """Digits as 1-D signals: ``(X, labels)`` with X of shape (n, 8, 8) = (n, P pixels, C channels).

    Rows are pixels and columns channels.  ``normalize_pixels`` divides every pixel by its norm
    (multi-sphere inputs); an all-zero row (blank) is left as the unit vector e_0 there, since the
    multi-sphere has no zero pixel.  Each image is centred by the data set's mean image first.
    """
    images, labels = digits(n, seed=seed, classes=classes)
    mean = digits()[0].mean(axis=0)
    X = images - mean
    if normalize_pixels:
        norms = np.linalg.norm(X, axis=-1, keepdims=True)
        blank = norms[..., 0] == 0
        X = np.where(norms > 0, X / np.where(norms > 0, norms, 1.0), 0.0)
        X[blank, 0] = 1.0
    return X, labels


def image_rows(n: int, P: int = 8, *, seed: int = 0, normalize_pixels: bool = True) -> np.ndarray:
    """``n`` rows of ``P`` RGB pixels from random patches of scikit-image's photographs: (n, P, 3).

    The first row of each ``P`` x ``P`` patch of :func:`~reskernels.numerics.images.natural_patches`
    (centred by the images' mean colour; pixels normalised to the unit sphere when
    ``normalize_pixels``)."""
    from .images import natural_patches
    n, P = _positive_int("n", n), _positive_int("P", P)
    return np.ascontiguousarray(natural_patches(n, P, seed=seed, normalize_pixels=normalize_pixels)[:, 0])

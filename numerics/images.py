"""Small natural-image inputs on the multi-sphere, from images that ship inside scikit-image.

    from reskernels.numerics.images import natural_patches
    X = natural_patches(200, size=8, seed=0)          # (200, 8, 8, 3): every pixel a unit RGB vector

Patches of ``size`` x ``size`` pixels are cut at random positions from the RGB sample photographs
bundled with scikit-image (astronaut, coffee, chelsea, rocket; no download), converted to float64
in [0, 1], centred per channel over the whole collection (so that a pixel's direction carries
colour contrast, not only brightness) and normalised per pixel onto the unit sphere S^2, i.e. onto
the multi-sphere MS(3, size^2) on which the convolutional kernels' spectral statements are made.
A pixel whose centred colour is exactly zero stays zero (a legal input; kernel contributions 0).
Optional dependency: ``pip install reskernels[images]``.
"""
from __future__ import annotations

import numpy as np

IMAGES = ("astronaut", "coffee", "chelsea", "rocket")


def _load(names):
    try:
        import skimage.data
    except ImportError as exc:
        raise ImportError("natural_patches needs scikit-image (pip install reskernels[images])") from exc
    out = []
    for name in names:
        if name not in IMAGES:
            raise ValueError(f"unknown image {name!r}; choose from {IMAGES}")
        out.append(np.asarray(getattr(skimage.data, name)(), dtype=np.float64) / 255.0)
    return out


def natural_patches(n: int, size: int = 8, *, seed: int = 0, images=IMAGES, center: bool = True,
                    normalize_pixels: bool = True) -> np.ndarray:
    """``n`` random ``size`` x ``size`` RGB patches, shape (n, size, size, 3), float64.

    ``center``: subtract the per-channel mean of all images; ``normalize_pixels``: divide every pixel
    by its norm (multi-sphere inputs).  Deterministic for a given ``seed``."""
    if int(n) != n or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    if int(size) != size or size < 1:
        raise ValueError(f"size must be a positive integer, got {size!r}")
    ims = _load(tuple(images))
    if any(size > min(im.shape[:2]) for im in ims):
        raise ValueError(f"size={size} exceeds an image ({[im.shape[:2] for im in ims]})")
    rng = np.random.default_rng(seed)
    which = rng.integers(0, len(ims), size=int(n))
    out = np.empty((int(n), size, size, 3))
    for k, w in enumerate(which):
        im = ims[w]
        r = rng.integers(0, im.shape[0] - size + 1)
        c = rng.integers(0, im.shape[1] - size + 1)
        out[k] = im[r:r + size, c:c + size]
    if center:
        mean = np.mean([im.reshape(-1, 3).mean(axis=0) for im in ims], axis=0)
        out -= mean
    if normalize_pixels:
        norm = np.linalg.norm(out, axis=-1, keepdims=True)
        out = np.divide(out, norm, out=np.zeros_like(out), where=norm > 0)
    return out

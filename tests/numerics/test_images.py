"""Natural-image patches on the multi-sphere: shape, unit pixels, determinism, errors, and a
Gram matrix on them that is PSD with the exact unit diagonal."""
import numpy as np
import pytest

pytest.importorskip("skimage")

from reskernels.numerics import gram  # noqa: E402
from reskernels.numerics.images import natural_patches  # noqa: E402
from reskernels.theory import ResCNN  # noqa: E402


def test_patches_are_unit_pixel_images_and_deterministic():
    X = natural_patches(50, size=6, seed=3)
    assert X.shape == (50, 6, 6, 3) and X.dtype == np.float64
    norms = np.linalg.norm(X, axis=-1)
    assert np.all((np.abs(norms - 1) <= 4e-16) | (norms == 0))
    assert np.array_equal(X, natural_patches(50, size=6, seed=3))
    assert not np.array_equal(X, natural_patches(50, size=6, seed=4))
    raw = natural_patches(5, size=4, center=False, normalize_pixels=False)
    assert raw.min() >= 0 and raw.max() <= 1


def test_bad_arguments():
    with pytest.raises(ValueError):
        natural_patches(0)
    with pytest.raises(ValueError):
        natural_patches(3, size=10_000)
    with pytest.raises(ValueError, match="unknown image"):
        natural_patches(3, images=("lena",))


def test_gram_on_natural_patches_is_psd_with_unit_diagonal():
    X = natural_patches(24, size=4, seed=0)
    K = gram(ResCNN(2, 0.5, readout="gap"), X, normalize=True)
    assert np.array_equal(np.diag(K), np.ones(24))
    assert np.linalg.eigvalsh(K).min() > -1e-12

"""Finite-width conv nets converge to the conv kernels (Monte Carlo tolerances)."""
import numpy as np
import pytest

from reskernels.numerics import gram
from reskernels.numerics.montecarlo_conv import conv_kernel_montecarlo, empirical_conv_kernels
from reskernels.theory import CNN, ResCNN

pytestmark = pytest.mark.montecarlo


def _ms(shape, seed):
    X = np.random.default_rng(seed).standard_normal(shape)
    return X / np.linalg.norm(X, axis=-1, keepdims=True)


ARCHS = [CNN(1, readout="gap"), CNN(2, readout="flatten"), CNN(2, readout="center", trained="hidden"),
         ResCNN(2, 0.7, readout="gap"), ResCNN(2, 0.7, readout="center", trained="hidden"),
         ResCNN(1, 0.5, readout="flatten", stem_size=3)]


@pytest.mark.parametrize("arch", ARCHS, ids=lambda a: a.slug)
@pytest.mark.parametrize("two_d", [False, True])
def test_conv_nets_converge_to_the_kernel(arch, two_d):
    """|mean - K| <= 4 s.e. + (depth/width) max|K| (the O(depth/width) bias of the mean)."""
    X = _ms((3, 3, 3, 2) if two_d else (3, 5, 3), 1)
    width = 128 if two_d else 256
    for kind in ("nngp", "ntk"):
        mean, se, _ = conv_kernel_montecarlo(arch, X, kind, width=width, n_seeds=8, seed=2)
        K = gram(arch, X, kind=kind)
        assert np.all(np.abs(mean - K) <= 4 * se + arch.depth / width * np.abs(K).max()), (kind, np.max(np.abs(mean - K) / se))


def test_criterion_detects_a_wrong_convention():
    """Negative control: a network with weight_var=2 is *not* the kernel of weight_var=1."""
    X = _ms((3, 5, 3), 3)
    arch = ResCNN(2, 0.7, readout="flatten")
    mean, se, _ = conv_kernel_montecarlo(arch, X, "ntk", width=256, n_seeds=8, seed=4)
    K_wrong = gram(arch.replace(weight_var=1.0), X)
    assert not np.all(np.abs(mean - K_wrong) <= 4 * se + 2 / 256 * np.abs(K_wrong).max())


def test_depth_one_cnn_nngp_is_unbiased():
    """CNN(1): the pre-activations are exactly Gaussian, so E[empirical NNGP] = NNGP at any width."""
    X = _ms((3, 5, 2), 5)
    arch = CNN(1, readout="flatten")
    mean, se, _ = conv_kernel_montecarlo(arch, X, "nngp", width=32, n_seeds=200, seed=6)
    assert np.all(np.abs(mean - gram(arch, X, kind="nngp")) <= 4 * se + 1e-12)


def test_parts_sum_to_the_all_trained_ntk():
    X = _ms((2, 4, 2), 7)
    ek = empirical_conv_kernels(ResCNN(2, 0.5, readout="gap"), X, 64, np.random.default_rng(0))
    np.testing.assert_allclose(sum(ek["parts"].values()), ek["ntk"], rtol=1e-13)

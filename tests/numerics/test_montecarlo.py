"""Finite-width networks vs the closed forms, with Monte Carlo tolerances."""
import numpy as np
import pytest

from reskernels.numerics import gram
from reskernels.numerics.montecarlo import empirical_kernels, kernel_montecarlo
from reskernels.theory import MLP, ResNet

pytestmark = pytest.mark.montecarlo


def _sphere(n, d, seed):
    X = np.random.default_rng(seed).standard_normal((n, d))
    return X / np.linalg.norm(X, axis=1)[:, None]


@pytest.mark.parametrize("arch", [MLP(1), MLP(1, weight_var=1.0, input_var=0.5)])
@pytest.mark.parametrize("kind", ["nngp", "ntk"])
def test_depth_one_is_unbiased_at_every_width(arch, kind):
    """For MLP(depth=1) E[empirical kernel] equals the limit exactly: |mean - K| <= 4 s.e."""
    X = _sphere(5, 3, 0)
    mean, se, _ = kernel_montecarlo(arch, X, kind, width=64, n_seeds=200, seed=1)
    K = gram(arch, X, kind=kind)
    assert np.all(np.abs(mean - K) <= 4 * se + 1e-12)


@pytest.mark.parametrize("arch", [MLP(3), MLP(3, trained="hidden"), ResNet(4, 0.6),
                                  ResNet(4, 0.6, trained="hidden"), ResNet(3, [0.3, 1.0, 0.5], weight_var=1.0)])
@pytest.mark.parametrize("kind", ["nngp", "ntk"])
def test_deep_networks_converge_within_monte_carlo_error(arch, kind):
    """|mean - K| <= 4 s.e. + b, b = (depth/width) max|K|: the O(depth/width) finite-width
    bias of the mean (Hanin & Nica 2019), small next to 4 s.e. at this width."""
    X = _sphere(4, 3, 2)
    width = 512
    mean, se, _ = kernel_montecarlo(arch, X, kind, width=width, n_seeds=12, seed=3)
    K = gram(arch, X, kind=kind)
    bias = arch.depth / width * np.abs(K).max()
    assert np.all(np.abs(mean - K) <= 4 * se + bias), (np.abs(mean - K) / se).max()


def test_ntk_parts_match_their_own_limits():
    """docs/papers.md HUANG-KERNEL-REGIME: the input, hidden and readout parts separately."""
    arch = ResNet(4, 0.6)
    X = _sphere(4, 3, 4)
    hidden = gram(arch.replace(trained="hidden"), X)
    readout = gram(arch, X, kind="nngp")
    full = gram(arch, X)
    limits = {"hidden": hidden, "readout": readout, "input": full - hidden - readout}
    for part, K in limits.items():
        mean, se, _ = kernel_montecarlo(arch, X, width=512, n_seeds=12, seed=5, part=part)
        assert np.all(np.abs(mean - K) <= 4 * se + 4 / 512 * np.abs(full).max()), part


def test_fluctuations_shrink_like_inverse_sqrt_width():
    """Std of one draw ~ width^(-1/2): fitted exponent within its bootstrap 99% interval of -1/2."""
    arch = ResNet(2, 0.8)
    X = _sphere(3, 3, 6)
    widths = [32, 128, 512]
    stds, boots = [], []
    rng = np.random.default_rng(7)
    for w in widths:
        _, _, S = kernel_montecarlo(arch, X, width=w, n_seeds=60, seed=w)
        off = S[:, 0, 1]
        stds.append(off.std(ddof=1))
        boots.append([rng.choice(off, off.size).std(ddof=1) for _ in range(300)])
    slope = np.polyfit(np.log(widths), np.log(stds), 1)[0]
    bslopes = [np.polyfit(np.log(widths), np.log([b[i] for b in boots]), 1)[0] for i in range(300)]
    lo, hi = np.quantile(bslopes, [0.005, 0.995])
    assert lo - 0.05 <= -0.5 <= hi + 0.05, (slope, lo, hi)
    assert -0.75 < slope < -0.25


def test_empirical_kernel_rejects_bad_width():
    with pytest.raises(ValueError, match="width"):
        empirical_kernels(MLP(2), np.ones((2, 3)), 0, np.random.default_rng(0))

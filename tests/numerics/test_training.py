"""Finite-width ResNet training: gradients against central finite differences, the refactored
empirical NTK unchanged, and the NTK drift shrinking with width."""
import numpy as np
import pytest

from reskernels.numerics.montecarlo import init_resnet, resnet_factors
from reskernels.numerics.training import gd_ntk_drift, loss_gradients
from reskernels.theory import MLP, ResNet


@pytest.mark.parametrize("trained", ["all", "hidden"])
def test_gradients_match_finite_differences(trained):
    arch = ResNet(2, 0.7, trained=trained, weight_var=1.5, input_var=0.8)
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((4, 3)), rng.standard_normal(4)
    params = init_resnet(arch, 3, 5, rng)
    loss, grads, _, _ = loss_gradients(arch, params, X, y)
    assert set(k[0] for k in grads) == ({"W", "V"} if trained == "hidden" else {"W0", "W", "V", "v"})
    h = 1e-6
    for (name, l), g in grads.items():
        P = params[name] if l is None else params[name][l]
        for idx in [(0,) * P.ndim, tuple(s - 1 for s in P.shape)]:
            old = P[idx]
            P[idx] = old + h
            lp = loss_gradients(arch, params, X, y)[0]
            P[idx] = old - h
            lm = loss_gradients(arch, params, X, y)[0]
            P[idx] = old
            fd = (lp - lm) / (2 * h)
            # central differences: O(h^2) truncation + O(eps/h) rounding of the loss
            assert abs(fd - g[idx]) <= 1e-7 * max(1.0, abs(fd)), (name, l, idx, fd, g[idx])


def test_factors_give_the_jacobian_gram():
    """NTK from the factors = J J^T with J from finite differences of f (small net)."""
    arch = ResNet(2, 0.5)
    rng = np.random.default_rng(1)
    X = rng.standard_normal((3, 2))
    params = init_resnet(arch, 2, 4, rng)
    f, factors, _ = resnet_factors(arch, params, X)
    K = sum(s2 * (d @ d.T) * (a @ a.T) for _, s2, d, a in factors)
    cols = []
    for name in ("W0", "W", "V", "v"):
        tensors = [params[name]] if name in ("W0", "v") else params[name]
        for P in tensors:
            for idx in np.ndindex(P.shape):
                old = P[idx]
                P[idx] = old + 1e-6
                fp = resnet_factors(arch, params, X)[0]
                P[idx] = old - 1e-6
                fm = resnet_factors(arch, params, X)[0]
                P[idx] = old
                cols.append((fp - fm) / 2e-6)
    J = np.array(cols).T
    np.testing.assert_allclose(K, J @ J.T, rtol=1e-6, atol=1e-8)


def test_drift_shrinks_with_width_and_loss_decreases():
    arch = ResNet(3, 0.5)
    theta = np.linspace(0, 2 * np.pi, 6, endpoint=False)
    X, y = np.stack([np.cos(theta), np.sin(theta)], 1), np.sin(2 * theta)
    d = {m: np.mean([gd_ntk_drift(arch, X, y, m, 10, np.random.default_rng([m, s]))["drift"] for s in range(4)])
         for m in (64, 1024)}
    out = gd_ntk_drift(arch, X, y, 256, 10, np.random.default_rng(0))
    assert out["loss"] < out["loss0"]
    # 16x the width: m^-1/2 predicts a ratio of 4; demand clearly more than 2
    assert d[64] / d[1024] > 2.0, d


def test_bad_input():
    with pytest.raises(TypeError):
        gd_ntk_drift(MLP(2), np.ones((2, 2)), np.ones(2), 8, 1, np.random.default_rng(0))
    with pytest.raises(ValueError):
        gd_ntk_drift(ResNet(2, 0.5), np.ones((2, 2)), np.ones(3), 8, 1, np.random.default_rng(0))

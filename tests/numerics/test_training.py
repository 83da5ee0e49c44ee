"""Finite-width ResNet training: gradients against central finite differences, the refactored
empirical NTK unchanged, and the NTK drift shrinking with width."""
import numpy as np
import pytest

from reskernels.numerics.montecarlo import gradient_factors, init_params
from reskernels.numerics.training import gd_ntk_drift, loss_gradients
from reskernels.theory import CNN, MLP, ResNet


@pytest.mark.parametrize("trained", ["all", "hidden"])
@pytest.mark.parametrize("family", ["ResNet", "MLP"])
def test_gradients_match_finite_differences(trained, family):
    arch = (ResNet(2, 0.7, trained=trained, weight_var=1.5, input_var=0.8) if family == "ResNet" else
            MLP(3, trained=trained, weight_var=1.5, input_var=0.8))
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((4, 3)), rng.standard_normal(4)
    params = init_params(arch, 3, 5, rng)
    loss, grads, _, _ = loss_gradients(arch, params, X, y)
    # ResNet maps: 0 Stem (W0), 1-2 blocks (W, V), 3 Linear readout (v);
    # MLP maps: 0 Stem (W0), 1-2 hidden layers (W), 3 the last layer's readout vector v
    hidden = {(1, 0), (1, 1), (2, 0), (2, 1)} if family == "ResNet" else {(1, 0), (2, 0)}
    assert set(grads) == (hidden if trained == "hidden" else hidden | {(0, 0), (3, 0)})
    h = 1e-6
    for (i, j), g in grads.items():
        P = params[i][j]
        for idx in [(0,) * P.ndim, tuple(s - 1 for s in P.shape)]:
            old = P[idx]
            P[idx] = old + h
            lp = loss_gradients(arch, params, X, y)[0]
            P[idx] = old - h
            lm = loss_gradients(arch, params, X, y)[0]
            P[idx] = old
            fd = (lp - lm) / (2 * h)
            # central differences: O(h^2) truncation + O(eps/h) rounding of the loss
            assert abs(fd - g[idx]) <= 1e-7 * max(1.0, abs(fd)), (i, j, idx, fd, g[idx])


def test_factors_give_the_jacobian_gram():
    """NTK from the factors = J J^T with J from finite differences of f (small net)."""
    arch = ResNet(2, 0.5)
    rng = np.random.default_rng(1)
    X = rng.standard_normal((3, 2))
    params = init_params(arch, 2, 4, rng)
    f, factors, _ = gradient_factors(arch, params, X)
    K = sum(s2 * (d @ d.T) * (a @ a.T) for _, s2, d, a in factors)
    cols = []
    for tensors in params:
        for P in tensors:
            for idx in np.ndindex(P.shape):
                old = P[idx]
                P[idx] = old + 1e-6
                fp = gradient_factors(arch, params, X)[0]
                P[idx] = old - 1e-6
                fm = gradient_factors(arch, params, X)[0]
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
    with pytest.raises(TypeError, match="fully connected"):
        gd_ntk_drift(CNN(2), np.ones((2, 2)), np.ones(2), 8, 1, np.random.default_rng(0))
    with pytest.raises(ValueError):
        gd_ntk_drift(ResNet(2, 0.5), np.ones((2, 2)), np.ones(3), 8, 1, np.random.default_rng(0))

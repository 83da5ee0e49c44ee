"""Gradient descent on finite-width networks (MLP, ResNet), and how far their empirical NTK moves.

The network is the one of :mod:`numerics.montecarlo` (NTK parameterisation, bias-free ReLU,
N(0, 1) initialisation).  :func:`gd_ntk_drift` runs full-batch gradient descent on the squared loss
(1 / 2N) sum_i (f(x_i) - y_i)^2 over the trained tensors (``arch.trained``) and reports the relative
change of the empirical NTK, ||Theta_T - Theta_0||_F / ||Theta_0||_F.  In the kernel regime
(Jacot et al. 2018) the NTK is constant at infinite width and the drift of a finite network shrinks
with the width m (like m^(-1/2) for a fixed number of steps of size O(1) in function space).

Gradients use the factors of :func:`numerics.montecarlo.gradient_factors`:
d/dP sum_i r_i f(x_i) = sqrt(s2) delta^T diag(r) a for every tensor P (tested against finite
differences).
"""
from __future__ import annotations

import numpy as np

from .montecarlo import gradient_factors, init_params, ntk_from_factors


def loss_gradients(arch, params, X, y):
    """(loss, {key: gradient}, f, factors) of (1/2N) sum (f - y)^2 for the trained tensors."""
    f, factors, keys = gradient_factors(arch, params, X)
    r = (f - y) / len(y)
    grads = {}
    for (name, s2, delta, a), key in zip(factors, keys):
        if arch.trained == "hidden" and name != "hidden":
            continue
        g = np.sqrt(s2) * (delta.T * r) @ a
        grads[key] = g[0] if params[key[0]][key[1]].ndim == 1 else g
    return 0.5 * float(np.mean((f - y) ** 2)), grads, f, factors


def _apply(params, grads, lr):
    for (i, j), g in grads.items():
        params[i][j] = params[i][j] - lr * g


def gd_ntk_drift(arch, X, y, width: int, steps: int, rng: np.random.Generator, lr_scale: float = 1.0) -> dict:
    """Train a fresh finite network by ``steps`` full-batch GD steps; return the NTK drift.

    The step size is lr = lr_scale N / lambda_max(Theta_0) (half the stability limit of the
    linearised dynamics at lr_scale = 1), so that every width moves the function by O(1)."""
    if arch.is_conv:
        raise TypeError(f"gd_ntk_drift trains fully connected specs, got {arch.slug}")
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if X.ndim != 2 or y.shape != (X.shape[0],):
        raise ValueError(f"X must be (N, d) and y (N,), got {X.shape} and {y.shape}")
    if int(steps) < 0 or int(width) < 1:
        raise ValueError("steps must be >= 0 and width >= 1")
    params = init_params(arch, X.shape[1], int(width), rng)
    loss0, grads, f0, factors = loss_gradients(arch, params, X, y)
    K0 = ntk_from_factors(factors, arch.trained)
    lr = lr_scale * len(y) / float(np.linalg.eigvalsh(K0).max())
    loss = loss0
    for _ in range(int(steps)):
        _apply(params, grads, lr)
        loss, grads, f, factors = loss_gradients(arch, params, X, y)
    KT = ntk_from_factors(factors, arch.trained)
    return {"drift": float(np.linalg.norm(KT - K0) / np.linalg.norm(K0)), "loss0": loss0, "loss": loss,
            "lr": lr}

"""Finite-width networks in numpy with hand-written backpropagation.

These networks realise the contract's conventions at finite width m (NTK
parameterisation, bias-free ReLU, N(0, 1) weights):

MLP(depth=L):  g_1 = sqrt(input_var) X W_0^T,  g_{h+1} = sqrt(c/m) relu(g_h) W_h^T,
               f = sqrt(c/m) relu(g_L) . v
ResNet(L, alpha):  h_0 = sqrt(input_var) X W_0^T,
               h_l = h_{l-1} + (alpha_l/sqrt(m)) relu(sqrt(c/m) h_{l-1} W_l^T) V_l^T,
               f = h_L . v / sqrt(m)

The empirical NTK is sum over trained parameter tensors of <df/dp(x), df/dp(z)>;
for a dense layer y = s a W^T this is s^2 (delta delta^T) o (a a^T), with delta the
backpropagated signal at y -- never forming a Jacobian.  The empirical NNGP is the
readout-layer kernel (the readout Gaussian integrated out analytically).

As m -> infinity both converge to :func:`numerics.gram` (Jacot et al. 2018); the
fluctuations of one draw shrink like m^(-1/2) and the bias of the mean like m^(-1).
For MLP(depth=1) both empirical kernels are *unbiased* at every width.
"""
from __future__ import annotations

import numpy as np

from reskernels.theory.arch import CNN, MLP, ResCNN, ResNet, check_kind


def _relu(x):
    return np.maximum(x, 0.0)


def empirical_kernels(arch, X, width: int, rng: np.random.Generator) -> dict:
    """One initialisation: {"nngp": (N,N), "ntk": (N,N), "parts": {name: (N,N)}}.

    ``parts`` splits the full (trained="all") NTK into "input", "hidden" and
    "readout"; "ntk" sums the parts selected by ``arch.trained``.
    """
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2:
        raise ValueError(f"X must have shape (n, d), got {X.shape}")
    if int(width) < 1:
        raise ValueError(f"width must be >= 1, got {width!r}")
    m = int(width)
    N, d = X.shape
    c, iv = arch.weight_var, arch.input_var
    W0 = rng.standard_normal((m, d))
    XX = X @ X.T
    hidden = np.zeros((N, N))
    if isinstance(arch, MLP):
        L = arch.depth
        Ws = [rng.standard_normal((m, m)) for _ in range(L - 1)]
        v = rng.standard_normal(m)
        s = np.sqrt(c / m)
        g = [np.sqrt(iv) * X @ W0.T]
        for W in Ws:
            g.append(s * _relu(g[-1]) @ W.T)
        aL = _relu(g[-1])
        readout = (c / m) * aL @ aL.T
        delta = s * v[None, :] * (g[-1] > 0)  # df/dg_L
        for h in range(L - 1, 0, -1):  # W_h maps relu(g_h) -> g_{h+1}
            a = _relu(g[h - 1])
            hidden += (c / m) * (delta @ delta.T) * (a @ a.T)
            delta = s * (delta @ Ws[h - 1]) * (g[h - 1] > 0)
        inp = iv * (delta @ delta.T) * XX
        nngp = readout
    elif isinstance(arch, ResNet):
        params = init_resnet(arch, d, m, rng, W0=W0)   # the same draws, in the same order, as before
        _, factors, _ = resnet_factors(arch, params, X)
        for name, s2, delta, a in factors:
            part = s2 * (delta @ delta.T) * (a @ a.T)
            if name == "input":
                inp = part
            elif name == "readout":
                readout = part
            else:
                hidden += part
        nngp = readout
    else:
        raise TypeError(f"finite-width networks exist for MLP and ResNet, got {type(arch).__name__}")
    parts = {"input": inp, "hidden": hidden, "readout": readout}
    ntk = hidden if arch.trained == "hidden" else inp + hidden + readout
    return {"nngp": nngp, "ntk": ntk, "parts": parts}


def init_resnet(arch, d: int, width: int, rng: np.random.Generator, W0=None) -> dict:
    """N(0, 1) parameters of the finite ResNet above: W0 (m, d), W_l, V_l (m, m), v (m,)
    (drawn in this order; ``W0`` may be given, already drawn)."""
    m = int(width)
    W0 = rng.standard_normal((m, d)) if W0 is None else W0
    Ws = [rng.standard_normal((m, m)) for _ in arch.alphas()]
    Vs = [rng.standard_normal((m, m)) for _ in arch.alphas()]
    return {"W0": W0, "W": Ws, "V": Vs, "v": rng.standard_normal(m)}


def resnet_factors(arch, params: dict, X: np.ndarray):
    """Outputs f (N,) and the per-tensor gradient factors of the finite ResNet.

    For every parameter tensor P, df(x_i)/dP = sqrt(s2) delta_i a_i^T (a row of ``delta`` and of
    ``a``), so its NTK part is s2 (delta delta^T) o (a a^T) and the gradient of
    sum_i r_i f(x_i) is sqrt(s2) delta^T diag(r) a.  Returns (f, [(name, s2, delta, a, key)]) with
    name in {"input", "hidden", "readout"} and key locating the tensor in ``params``.
    """
    c, iv = arch.weight_var, arch.input_var
    W0, Ws, Vs, v = params["W0"], params["W"], params["V"], params["v"]
    m = W0.shape[0]
    N = X.shape[0]
    s = np.sqrt(c / m)
    hs = [np.sqrt(iv) * X @ W0.T]
    pres, acts = [], []
    for al, W, V in zip(arch.alphas(), Ws, Vs):
        pre = s * hs[-1] @ W.T
        act = _relu(pre)
        pres.append(pre)
        acts.append(act)
        hs.append(hs[-1] + (al / np.sqrt(m)) * act @ V.T)
    f = hs[-1] @ v / np.sqrt(m)
    factors = [("readout", 1.0 / m, np.ones((N, 1)), hs[-1], ("v", None))]
    gamma = np.broadcast_to(v[None, :] / np.sqrt(m), (N, m))     # df/dh_l
    for l in range(len(Ws) - 1, -1, -1):
        al = arch.alphas()[l]
        factors.append(("hidden", al * al / m, gamma, acts[l], ("V", l)))
        eps = (al / np.sqrt(m)) * (gamma @ Vs[l]) * (pres[l] > 0)   # df/d(pre_l) / s
        factors.append(("hidden", c / m, eps, hs[l], ("W", l)))
        gamma = gamma + s * eps @ Ws[l]
    factors.append(("input", iv, gamma, X, ("W0", None)))
    return f, [(name, s2, delta, a) for name, s2, delta, a, _ in factors], \
        [key for *_, key in factors]


def ntk_from_factors(factors, trained: str) -> np.ndarray:
    """The empirical NTK of the trained tensors (all, or hidden only)."""
    K = 0.0
    for name, s2, delta, a in factors:
        if trained == "all" or name == "hidden":
            K = K + s2 * (delta @ delta.T) * (a @ a.T)
    return K


def kernel_montecarlo(arch, X, kind: str = "ntk", *, width: int = 512, n_seeds: int = 16,
                      seed: int = 0, part: str | None = None):
    """Mean and standard error of the empirical kernel over ``n_seeds`` initialisations.

    Works for every spec (conv specs use :mod:`numerics.montecarlo_conv`).
    Returns ``(mean, se, samples)`` with ``samples`` of shape (n_seeds, N, N);
    ``part`` selects one NTK part ("input", "hidden", "readout") instead of ``kind``.
    """
    check_kind(kind)
    if n_seeds < 2:
        raise ValueError("n_seeds must be >= 2 to estimate a standard error")
    if isinstance(arch, (CNN, ResCNN)):
        from .montecarlo_conv import empirical_conv_kernels as one_draw
    else:
        one_draw = empirical_kernels
    samples = []
    for i in range(n_seeds):
        ek = one_draw(arch, X, width, np.random.default_rng([seed, i]))
        samples.append(ek["parts"][part] if part else ek[kind])
    S = np.stack(samples)
    return S.mean(0), S.std(0, ddof=1) / np.sqrt(n_seeds), S

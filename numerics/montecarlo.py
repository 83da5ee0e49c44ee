"""Finite-width networks in numpy with hand-written backpropagation, built from the kernel program.

A finite network of width m realises each kernel map of a fully connected program
(:func:`theory.layers.kernel_maps`) with N(0, 1) weights in the NTK parameterisation:

=============  =======================================================================================
map            forward (h: (N, m) activations)                       parameters
=============  =======================================================================================
Stem           h = sqrt(input_var) X W0^T                            W0 (m, d)
Nonlinear      h' = sqrt(c/m) phi(h) W^T   (a hidden layer), or       W (m, m), or v (m,)
               f = sqrt(c/m) phi(h) . v    (before the readout)
Block          h' = h + (alpha/sqrt m) phi(sqrt(c/m) h W^T) V^T       W, V (m, m)
Linear         f = h . v / sqrt(m)         (the residual readout)     v (m,)
=============  =======================================================================================

so MLP(L) is g_1 = sqrt(input_var) X W_0^T, g_{h+1} = sqrt(c/m) relu(g_h) W_h^T,
f = sqrt(c/m) relu(g_L) . v, and ResNet(L, alpha) is h_l = h_{l-1} + (alpha_l/sqrt m)
relu(sqrt(c/m) h_{l-1} W_l^T) V_l^T, f = h_L . v / sqrt(m).  Parameters are drawn map by map in
one fixed order: the first weight of every map (input layer, hidden layers, the first weight of each
block), then the second weight of every block, then the readout.

The empirical NTK is the sum over trained tensors of <df/dp(x), df/dp(z)>; for a dense layer
y = s a W^T this is s^2 (delta delta^T) o (a a^T), with delta the backpropagated signal at y --
never forming a Jacobian.  Each map has one forward and one backward rule (:data:`RULES`); the
backward rules return these *factors* (s^2, delta, a) per tensor, which also give gradients
(:mod:`numerics.training`).  The empirical NNGP is the readout-layer kernel (the readout Gaussian
integrated out analytically).

As m -> infinity both converge to :func:`numerics.gram` (Jacot et al. 2018); the fluctuations
of one draw shrink like m^(-1/2) and the bias of the mean like m^(-1).  For MLP(depth=1) both
empirical kernels are *unbiased* at every width.
"""
from __future__ import annotations

import numpy as np

from reskernels.theory import layers as _L
from reskernels.theory.arch import check_kind

from .mc_stats import seed_average
from .montecarlo_conv import empirical_conv_kernels


def _program(arch):
    """The kernel maps without the final Pool, and whether the network is fully connected."""
    maps = arch.kernel_maps()
    if arch.is_conv:
        raise TypeError(f"this finite-width engine builds fully connected networks; got {arch.slug} "
                        "(conv specs: numerics.montecarlo_conv)")
    if not isinstance(maps[-1], _L.Pool) or maps[-1].pooling != "dense":
        raise NotImplementedError("a fully connected program ends with a dense readout")
    return maps[:-1]


def init_params(arch, d: int, width: int, rng: np.random.Generator) -> list:
    """N(0, 1) parameters: ``params[i]`` is the list of tensors of kernel map i (module doc), drawn
    in the fixed order first weights, second weights, readout."""
    maps = _program(arch)
    m = int(width)
    params = [[] for _ in maps]
    last = len(maps) - 1
    for i, mp in enumerate(maps[:-1]):
        params[i].append(rng.standard_normal((m, d) if isinstance(mp, _L.Stem) else (m, m)))
    for i, mp in enumerate(maps[:-1]):
        if isinstance(mp, _L.Block):
            params[i].append(rng.standard_normal((m, m)))
    params[last].append(rng.standard_normal(m))
    return params


# ---- forward rules: (map, h, tensors, ctx) -> (h', cache) -------------------------------------

def _fwd_stem(mp, X, P, ctx):
    return np.sqrt(mp.input_var) * X @ P[0].T, X


def _fwd_nonlinear(mp, h, P, ctx):
    s = np.sqrt(mp.weight_var / ctx["m"])
    a = mp.activation.fn(h, np)
    if P[0].ndim == 1:                      # the readout: f = s a . v
        return s * a @ P[0], (h, a)
    return s * a @ P[0].T, (h, a)


def _fwd_block(mp, h, P, ctx):
    m = ctx["m"]
    s = np.sqrt(mp.weight_var / m)
    pre = s * h @ P[0].T
    act = mp.activation.fn(pre, np)
    return h + (mp.alpha / np.sqrt(m)) * act @ P[1].T, (h, pre, act)


def _fwd_linear(mp, h, P, ctx):
    if mp.weight_var != 1.0:
        raise NotImplementedError("finite-width readouts of weight variance 1 only")
    return h @ P[0] / np.sqrt(ctx["m"]), h


# ---- backward rules: (map, i, grad, cache, tensors, ctx) -> (grad at the input, factors) -------
# A factor is (name, s2, delta, a, key, part): its NTK part is s2 (delta delta^T) o (a a^T) (``part``,
# when not None, is that matrix computed in another operation order, as the readouts do).

def _bwd_stem(mp, i, delta, X, P, ctx):
    return None, [("input", mp.input_var, delta, X, (i, 0), None)]


def _bwd_nonlinear(mp, i, delta, cache, P, ctx):
    h, a = cache
    c, m = mp.weight_var, ctx["m"]
    s = np.sqrt(c / m)
    mask = mp.activation.derivative(h, np)
    if P[0].ndim == 1:                      # the readout layer starts the backward pass
        part = (c / m) * a @ a.T
        return s * P[0][None, :] * mask, [("readout", c / m, np.ones((len(a), 1)), a, (i, 0), part)]
    return s * (delta @ P[0]) * mask, [("hidden", c / m, delta, a, (i, 0), None)]


def _bwd_block(mp, i, gamma, cache, P, ctx):
    h, pre, act = cache
    m, al = ctx["m"], mp.alpha
    s = np.sqrt(mp.weight_var / m)
    out = [("hidden", al * al / m, gamma, act, (i, 1), None)]
    eps = (al / np.sqrt(m)) * (gamma @ P[1]) * mp.activation.derivative(pre, np)   # df/d(pre) / s
    out.append(("hidden", mp.weight_var / m, eps, h, (i, 0), None))
    return gamma + s * eps @ P[0], out


def _bwd_linear(mp, i, _, h, P, ctx):
    m, N = ctx["m"], h.shape[0]
    gamma = np.broadcast_to(P[0][None, :] / np.sqrt(m), (N, m))     # df/dh
    return gamma, [("readout", 1.0 / m, np.ones((N, 1)), h, (i, 0), None)]


#: one (forward, backward) pair per kernel-map type
RULES = {_L.Stem: (_fwd_stem, _bwd_stem), _L.Nonlinear: (_fwd_nonlinear, _bwd_nonlinear),
         _L.Block: (_fwd_block, _bwd_block), _L.Linear: (_fwd_linear, _bwd_linear)}


def gradient_factors(arch, params: list, X: np.ndarray):
    """Outputs f (N,) and the per-tensor gradient factors of the finite network.

    For every parameter tensor P, df(x_i)/dP = sqrt(s2) delta_i a_i^T (a row of ``delta`` and of
    ``a``), so its NTK part is s2 (delta delta^T) o (a a^T) and the gradient of
    sum_i r_i f(x_i) is sqrt(s2) delta^T diag(r) a.  Returns (f, [(name, s2, delta, a)], [key])
    with name in {"input", "hidden", "readout"} and key = (map index, tensor index) locating the
    tensor in ``params``.
    """
    f, factors = _run(arch, params, X)
    return f, [fa[:4] for fa in factors], [fa[4] for fa in factors]


def _run(arch, params, X):
    maps = _program(arch)
    ctx = {"m": params[0][0].shape[0]}
    h, caches = X, []
    for mp, P in zip(maps, params):
        h, cache = RULES[type(mp)][0](mp, h, P, ctx)
        caches.append(cache)
    f = h
    grad, factors = None, []
    for i in range(len(maps) - 1, -1, -1):
        mp = maps[i]
        grad, out = RULES[type(mp)][1](mp, i, grad, caches[i], params[i], ctx)
        factors += out
    return f, factors


def ntk_from_factors(factors, trained: str) -> np.ndarray:
    """The empirical NTK of the trained tensors (all, or hidden only)."""
    K = 0.0
    for name, s2, delta, a in factors:
        if trained == "all" or name == "hidden":
            K = K + s2 * (delta @ delta.T) * (a @ a.T)
    return K


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
    N = X.shape[0]
    params = init_params(arch, X.shape[1], int(width), rng)
    _, factors = _run(arch, params, X)
    hidden = np.zeros((N, N))
    for name, s2, delta, a, _, part in factors:
        if part is None:
            part = s2 * (delta @ delta.T) * (a @ a.T)
        if name == "input":
            inp = part
        elif name == "readout":
            readout = part
        else:
            hidden += part
    parts = {"input": inp, "hidden": hidden, "readout": readout}
    ntk = hidden if arch.trained == "hidden" else inp + hidden + readout
    return {"nngp": readout, "ntk": ntk, "parts": parts}


def kernel_montecarlo(arch, X, kind: str = "ntk", *, width: int = 512, n_seeds: int = 16,
                      seed: int = 0, part: str | None = None):
    """Mean and standard error of the empirical kernel over ``n_seeds`` initialisations.

    Works for every spec (conv specs use :mod:`numerics.montecarlo_conv`).
    Returns ``(mean, se, samples)`` with ``samples`` of shape (n_seeds, N, N);
    ``part`` selects one NTK part ("input", "hidden", "readout") instead of ``kind``.
    """
    check_kind(kind)
    one_draw = empirical_conv_kernels if arch.is_conv else empirical_kernels
    return seed_average(one_draw, arch, X, kind, width, n_seeds, seed, part)

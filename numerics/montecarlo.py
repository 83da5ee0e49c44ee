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
from .montecarlo_conv import empirical_conv_kernels, n_weights
from .variance import NumpyContext

_XP = NumpyContext()   # the activations' finite-width functions on float64 arrays


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
    """N(0, 1) parameters: ``params[i]`` is the list of tensors of kernel map i (module doc): its
    weights, then its biases when the map has bias_var > 0.  Drawn in one fixed order: the first
    weight of every map (a DenseNet's L layers W_l of shape (m, l m)), the second weight of every
    block, the readout, then the biases map by map (so bias-free networks draw what they always did)."""
    maps = _program(arch)
    m = int(width)
    params = [[] for _ in maps]
    last = len(maps) - 1
    for i, mp in enumerate(maps[:-1]):
        if isinstance(mp, _L.Concat):
            params[i] += [rng.standard_normal((m, l * m)) for l in range(1, mp.depth + 1)]
        else:
            params[i].append(rng.standard_normal((m, d) if isinstance(mp, _L.Stem) else (m, m)))
    for i, mp in enumerate(maps[:-1]):
        if isinstance(mp, _L.Block):
            params[i].append(rng.standard_normal((m, m)))
    width_in = (maps[last - 1].depth + 1) * m if last >= 1 and isinstance(maps[last - 1], _L.Concat) else m
    params[last].append(rng.standard_normal(width_in))
    for i, mp in enumerate(maps):
        if mp.bias_var > 0:
            params[i] += [rng.standard_normal(1 if i == last else m) for _ in range(n_weights(mp))]
    return params


def _bias(mp, P, j):
    """sqrt(b) times the j-th bias vector of the map (0.0 without biases)."""
    return np.sqrt(mp.bias_var) * P[n_weights(mp) + j] if mp.bias_var > 0 else 0.0


def _bias_factors(mp, i, deltas, name):
    """NTK factors of the map's biases: df/d(beta_j) = sqrt(b) delta_j, part b (delta delta^T)."""
    if mp.bias_var <= 0:
        return []
    nw = n_weights(mp)
    return [(name, mp.bias_var, dl, np.ones((len(dl), 1)), (i, nw + j), None) for j, dl in enumerate(deltas)]


# ---- forward rules: (map, h, tensors, ctx) -> (h', cache) -------------------------------------

def _fwd_stem(mp, X, P, ctx):
    h = np.sqrt(mp.input_var) * X @ P[0].T
    return (h + _bias(mp, P, 0) if mp.bias_var > 0 else h), X


def _fwd_nonlinear(mp, h, P, ctx):
    s = np.sqrt(mp.weight_var / ctx["m"])
    a = mp.activation.fn(h, _XP)
    out = s * a @ P[0] if P[0].ndim == 1 else s * a @ P[0].T     # the readout: f = s a . v
    return (out + _bias(mp, P, 0) if mp.bias_var > 0 else out), (h, a)


def _fwd_block(mp, h, P, ctx):
    m = ctx["m"]
    s = np.sqrt(mp.weight_var / m)
    pre = s * h @ P[0].T
    if mp.bias_var > 0:
        pre = pre + _bias(mp, P, 0)
    act = mp.activation.fn(pre, _XP)
    out = h + (mp.alpha / np.sqrt(m)) * act @ P[1].T
    return (out + _bias(mp, P, 1) if mp.bias_var > 0 else out), (h, pre, act)


def _fwd_linear(mp, h, P, ctx):
    if mp.weight_var == 1.0:
        f = h @ P[0] / np.sqrt(ctx["m"])
    else:
        f = np.sqrt(mp.weight_var / ctx["m"]) * h @ P[0]
    return (f + _bias(mp, P, 0) if mp.bias_var > 0 else f), h


def _fwd_concat(mp, h0, P, ctx):
    """h_l = sqrt(c / (l m)) [phi(h_0), ..., phi(h_{l-1})] W_l^T + sqrt(b) beta_l; the output is the
    concatenation of all L + 1 activations, scaled by 1/sqrt(L + 1) (the readout's share)."""
    m, c = ctx["m"], mp.weight_var
    hs, acts = [h0], [mp.activation.fn(h0, _XP)]
    for l in range(1, mp.depth + 1):
        h = np.sqrt(c / (l * m)) * np.concatenate(acts, axis=1) @ P[l - 1].T
        if mp.bias_var > 0:
            h = h + _bias(mp, P, l - 1)
        hs.append(h)
        acts.append(mp.activation.fn(h, _XP))
    return np.concatenate(acts, axis=1) / np.sqrt(mp.depth + 1), (hs, acts)


# ---- backward rules: (map, i, grad, cache, tensors, ctx) -> (grad at the input, factors) -------
# A factor is (name, s2, delta, a, key, part): its NTK part is s2 (delta delta^T) o (a a^T) (``part``,
# when not None, is that matrix computed in another operation order, as the readouts do).

def _bwd_stem(mp, i, delta, X, P, ctx):
    return None, [("input", mp.input_var, delta, X, (i, 0), None)] + _bias_factors(mp, i, [delta], "input")


def _bwd_nonlinear(mp, i, delta, cache, P, ctx):
    h, a = cache
    c, m = mp.weight_var, ctx["m"]
    s = np.sqrt(c / m)
    mask = mp.activation.derivative(h, _XP)
    if P[0].ndim == 1:                      # the readout layer starts the backward pass
        part = (c / m) * a @ a.T
        ones = np.ones((len(a), 1))
        out = [("readout", c / m, ones, a, (i, 0), part)] + _bias_factors(mp, i, [ones], "readout")
        return s * P[0][None, :] * mask, out
    out = [("hidden", c / m, delta, a, (i, 0), None)] + _bias_factors(mp, i, [delta], "hidden")
    return s * (delta @ P[0]) * mask, out


def _bwd_block(mp, i, gamma, cache, P, ctx):
    h, pre, act = cache
    m, al = ctx["m"], mp.alpha
    s = np.sqrt(mp.weight_var / m)
    out = [("hidden", al * al / m, gamma, act, (i, 1), None)]
    eps = (al / np.sqrt(m)) * (gamma @ P[1]) * mp.activation.derivative(pre, _XP)   # df/d(pre) / s
    out.append(("hidden", mp.weight_var / m, eps, h, (i, 0), None))
    out += _bias_factors(mp, i, [eps, gamma], "hidden")
    return gamma + s * eps @ P[0], out


def _bwd_linear(mp, i, _, h, P, ctx):
    m, N, c = ctx["m"], h.shape[0], mp.weight_var
    if c == 1.0:
        gamma = np.broadcast_to(P[0][None, :] / np.sqrt(m), h.shape)     # df/dh
    else:
        gamma = np.broadcast_to(np.sqrt(c / m) * P[0][None, :], h.shape)
    ones = np.ones((N, 1))
    return gamma, [("readout", c / m, ones, h, (i, 0), None)] + _bias_factors(mp, i, [ones], "readout")


def _bwd_concat(mp, i, grad, cache, P, ctx):
    hs, acts = cache
    m, c, L = ctx["m"], mp.weight_var, mp.depth
    # gradient on each activation phi(h_j) from the output's concatenation
    gacts = [g / np.sqrt(L + 1) for g in np.split(grad, L + 1, axis=1)]
    out, deltas = [], []
    for l in range(L, 0, -1):
        delta = gacts[l] * mp.activation.derivative(hs[l], _XP)         # df/dh_l
        s = np.sqrt(c / (l * m))
        out.append(("hidden", c / (l * m), delta, np.concatenate(acts[:l], axis=1), (i, l - 1), None))
        deltas.append((l - 1, delta))
        back = np.split(s * delta @ P[l - 1], l, axis=1)
        for j in range(l):
            gacts[j] = gacts[j] + back[j]
    if mp.bias_var > 0:
        nw = n_weights(mp)
        out += [("hidden", mp.bias_var, d, np.ones((len(d), 1)), (i, nw + j), None) for j, d in deltas]
    return gacts[0] * mp.activation.derivative(hs[0], _XP), out


#: one (forward, backward) pair per kernel-map type
RULES = {_L.Stem: (_fwd_stem, _bwd_stem), _L.Nonlinear: (_fwd_nonlinear, _bwd_nonlinear),
         _L.Block: (_fwd_block, _bwd_block), _L.Linear: (_fwd_linear, _bwd_linear),
         _L.Concat: (_fwd_concat, _bwd_concat)}


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
    inp = readout = None
    for name, s2, delta, a, _, part in factors:
        if part is None:
            part = s2 * (delta @ delta.T) * (a @ a.T)
        if name == "input":
            inp = part if inp is None else inp + part
        elif name == "readout":
            readout = part if readout is None else readout + part
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

"""Finite-width circular conv nets (CNN, ResCNN) in numpy with hand-written backpropagation.

They realise docs/conventions.md's conv conventions at finite width m (channels), N(0, 1) weights:

* stem (s taps): g_i = sqrt(input_var / s) sum_d W0_d x_{i+d};
* CNN: g_{l+1} = sqrt(c / (q m)) sum_d W_d relu(g_l)_{i+d}; readout on relu(g_L) with
  weight sqrt(c/m) (center: pixel 0; gap: the mean over pixels) or sqrt(c/(m P)) (flatten:
  one weight vector per pixel);
* ResCNN: h_l = h_{l-1} + alpha sqrt(1/(q m)) conv2(relu(sqrt(c/(q m)) conv1(h_{l-1}))), linear
  readout with weight sqrt(1/m) (center, gap) or sqrt(1/(m P)) (flatten).

A convolution y_i = s sum_d W_d a_{i+d} has df/dW_d = s sum_i dy_i a_{i+d}^T, so its NTK part
is sum_d <G_d(x), G_d(z)> with the per-input gradient matrices G_d -- formed explicitly.
The empirical NNGP is the readout kernel (readout weights integrated out analytically).
"""
from __future__ import annotations

import numpy as np

from reskernels.theory import layers as _L

from .mc_stats import seed_average
from .variance import NumpyContext

_XP = NumpyContext()   # the activations' finite-width functions on float64 arrays


def _taps(q, one_d):
    h = (q - 1) // 2
    return [(0, d) for d in range(-h, h + 1)] if one_d else \
        [(a, b) for a in range(-h, h + 1) for b in range(-h, h + 1)]


def _shift(a, t):
    """a_{i + t} at position i (circular)."""
    return np.roll(a, (-t[0], -t[1]), axis=(1, 2))


def _conv(a, W, taps, s):
    """y_i = s sum_t a_{i+t} W_t^T; a: (N, H, W, Ci), W: (T, Co, Ci)."""
    return s * sum(_shift(a, t) @ W[k].T for k, t in enumerate(taps))


def _conv_back(dy, a, W, taps, s):
    """(per-input gradients G (N, T, Co, Ci), da) for y = _conv(a, W, taps, s)."""
    G = s * np.stack([np.einsum("nhwo,nhwi->noi", dy, _shift(a, t)) for t in taps], axis=1)
    da = s * sum(np.roll(dy @ W[k], (t[0], t[1]), axis=(1, 2)) for k, t in enumerate(taps))
    return G, da


def _gram_of(G):
    F = G.reshape(len(G), -1)
    return F @ F.T


def _readout_vector(pooling, H, W, m, rng):
    return rng.standard_normal((H, W, m)) if pooling == "flatten" else rng.standard_normal(m)


def _readout(pooling, feat, v, scale):
    """f and df/dfeat for the readout on features (N, H, W, m)."""
    N, H, W, m = feat.shape
    if pooling == "center":
        f = scale * feat[:, 0, 0] @ v
        df = np.zeros_like(feat)
        df[:, 0, 0] = scale * v
    elif pooling == "gap":
        f = scale * feat.mean(axis=(1, 2)) @ v
        df = np.broadcast_to(scale * v / (H * W), feat.shape).copy()
    else:
        s = scale / np.sqrt(H * W)
        f = s * np.einsum("nhwc,hwc->n", feat, v)
        df = np.broadcast_to(s * v, feat.shape).copy()
    return f, df


def _readout_kernel(pooling, feat, scale):
    N, H, W, m = feat.shape
    if pooling == "center":
        F = feat[:, 0, 0]
        return scale ** 2 * F @ F.T
    if pooling == "gap":
        F = feat.mean(axis=(1, 2))
        return scale ** 2 * F @ F.T
    F = feat.reshape(N, -1)
    return scale ** 2 / (H * W) * F @ F.T


# ---- one (forward, backward) rule per kernel map -------------------------------------------------
# forward: (map, g, tensors, ctx) -> (g', cache); backward: (map, dg, cache, tensors, ctx) ->
# (gradient at the map's input, NTK part or None).  ctx: width m, taps, pooling, readout flag.

def n_weights(mp) -> int:
    """Weight tensors of a kernel map in a finite network: a block 2, densely connected layers one
    per layer, every other map 1 (biases follow them in the map's parameter list)."""
    return mp.depth if isinstance(mp, _L.Concat) else (2 if isinstance(mp, _L.Block) else 1)


def _b(mp, P, j):
    """sqrt(b) beta_j (per output channel, broadcast over positions), or 0 without biases."""
    return np.sqrt(mp.bias_var) * P[n_weights(mp) + j] if mp.bias_var > 0 else 0.0


def _bias_parts(mp, name, grads):
    """NTK parts of the biases: df/dbeta = sqrt(b) sum over positions of dy, part b (g g^T)."""
    if mp.bias_var <= 0:
        return []
    out = []
    for dy in grads:
        g = dy.sum(axis=(1, 2))
        out.append((name, mp.bias_var * (g @ g.T)))
    return out


def _fwd_stem(mp, Xg, P, ctx):
    ts = ctx["taps"](mp.stem_size)
    s0 = np.sqrt(mp.input_var / len(ts))
    g = _conv(Xg, P[0], ts, s0)
    return (g + _b(mp, P, 0) if mp.bias_var > 0 else g), Xg


def _bwd_stem(mp, dg, Xg, P, ctx):
    ts = ctx["taps"](mp.stem_size)
    G0, _ = _conv_back(dg, Xg, P[0], ts, np.sqrt(mp.input_var / len(ts)))
    return None, [("input", _gram_of(G0))] + _bias_parts(mp, "input", [dg])


def _fwd_nonlinear(mp, g, P, ctx):
    feat = mp.activation.fn(g, _XP)
    if ctx["readout"]:
        return feat, g
    tq = ctx["taps"](mp.filter_size)
    y = _conv(feat, P[0], tq, np.sqrt(mp.weight_var / (len(tq) * ctx["m"])))
    return (y + _b(mp, P, 0) if mp.bias_var > 0 else y), g


def _readout_bias(mp, N):
    return [("readout", mp.bias_var * np.ones((N, N)))] if mp.bias_var > 0 else []


def _bwd_nonlinear(mp, dg, g, P, ctx):
    mask = mp.activation.derivative(g, _XP)
    if ctx["readout"]:
        feat = mp.activation.fn(g, _XP)
        rscale = np.sqrt(mp.weight_var / ctx["m"])
        _, dfeat = _readout(ctx["pooling"], feat, P[0], rscale)
        parts = [("readout", _readout_kernel(ctx["pooling"], feat, rscale))] + _readout_bias(mp, len(g))
        return dfeat * mask, parts
    tq = ctx["taps"](mp.filter_size)
    G, da = _conv_back(dg, mp.activation.fn(g, _XP), P[0], tq, np.sqrt(mp.weight_var / (len(tq) * ctx["m"])))
    return da * mask, [("hidden", _gram_of(G))] + _bias_parts(mp, "hidden", [dg])


def _fwd_block(mp, h, P, ctx):
    tq = ctx["taps"](mp.filter_size)
    sq1 = np.sqrt(mp.weight_var / (len(tq) * ctx["m"]))
    sq2 = np.sqrt(1.0 / (len(tq) * ctx["m"]))
    u = _conv(h, P[0], tq, sq1)
    if mp.bias_var > 0:
        u = u + _b(mp, P, 0)
    out = h + _conv(mp.activation.fn(u, _XP), P[1], tq, mp.alpha * sq2)
    return (out + _b(mp, P, 1) if mp.bias_var > 0 else out), (h, u)


def _bwd_block(mp, dh, cache, P, ctx):
    h, u = cache
    tq = ctx["taps"](mp.filter_size)
    sq1 = np.sqrt(mp.weight_var / (len(tq) * ctx["m"]))
    sq2 = np.sqrt(1.0 / (len(tq) * ctx["m"]))
    G2, da = _conv_back(dh, mp.activation.fn(u, _XP), P[1], tq, mp.alpha * sq2)
    du = da * mp.activation.derivative(u, _XP)
    G1, dhb = _conv_back(du, h, P[0], tq, sq1)
    return dh + dhb, [("hidden", _gram_of(G2) + _gram_of(G1))] + _bias_parts(mp, "hidden", [du, dh])


def _fwd_linear(mp, h, P, ctx):
    if mp.weight_var != 1.0:
        raise NotImplementedError("finite-width readouts of weight variance 1 only")
    return h, h


def _bwd_linear(mp, _, h, P, ctx):
    rscale = np.sqrt(mp.weight_var / ctx["m"])
    _, dh = _readout(ctx["pooling"], h, P[0], rscale)
    return dh, [("readout", _readout_kernel(ctx["pooling"], h, rscale))] + _readout_bias(mp, len(h))


RULES = {_L.Stem: (_fwd_stem, _bwd_stem), _L.Nonlinear: (_fwd_nonlinear, _bwd_nonlinear),
         _L.Block: (_fwd_block, _bwd_block), _L.Linear: (_fwd_linear, _bwd_linear)}


def init_conv_params(arch, C0: int, H: int, W: int, width: int, one_d: bool, rng) -> list:
    """N(0, 1) tensors per kernel map, drawn as in :func:`numerics.montecarlo.init_params`: the
    first weight of every map, then the second weight of every block, then the readout
    ((H, W, m) for flatten, (m,) otherwise), then the biases map by map (bias_var > 0 only; one
    vector per output channel, the readout's a scalar).  Conv weights have shape (taps, C_out, C_in)."""
    maps = arch.kernel_maps()
    body, pooling = maps[:-1], maps[-1].pooling
    m = int(width)
    params = [[] for _ in body]
    for i, mp in enumerate(body[:-1]):
        if isinstance(mp, _L.Stem):
            params[i].append(rng.standard_normal((len(_taps(mp.stem_size, one_d)), m, C0)))
        else:
            params[i].append(rng.standard_normal((len(_taps(mp.filter_size, one_d)), m, m)))
    for i, mp in enumerate(body[:-1]):
        if isinstance(mp, _L.Block):
            params[i].append(rng.standard_normal((len(_taps(mp.filter_size, one_d)), m, m)))
    params[-1].append(_readout_vector(pooling, H, W, m, rng))
    last = len(body) - 1
    for i, mp in enumerate(body):
        if mp.bias_var > 0:
            params[i] += [rng.standard_normal(1 if i == last else m) for _ in range(n_weights(mp))]
    return params


def empirical_conv_kernels(arch, X, width: int, rng: np.random.Generator) -> dict:
    """One initialisation: {"nngp", "ntk", "parts": {"input", "hidden", "readout"}} as (N, N)."""
    X = np.asarray(X, dtype=np.float64)
    if not arch.is_conv:
        raise TypeError(f"finite-width conv nets exist for conv specs (CNN, ResCNN), got {arch.slug}")
    one_d = X.ndim == 3
    Xg = X[:, None] if one_d else X
    N, H, W, C0 = Xg.shape
    maps = arch.kernel_maps()
    body = maps[:-1]
    params = init_conv_params(arch, C0, H, W, width, one_d, rng)
    ctx = {"m": int(width), "taps": lambda q: _taps(q, one_d), "pooling": maps[-1].pooling, "readout": False}
    g, caches = Xg, []
    for i, (mp, P) in enumerate(zip(body, params)):
        ctx["readout"] = i == len(body) - 1
        g, cache = RULES[type(mp)][0](mp, g, P, ctx)
        caches.append(cache)
    hidden = np.zeros((N, N))
    grad = inp = readout = None
    for i in range(len(body) - 1, -1, -1):
        ctx["readout"] = i == len(body) - 1
        grad, parts = RULES[type(body[i])][1](body[i], grad, caches[i], params[i], ctx)
        for name, part in parts:
            if name == "hidden":
                hidden += part
            elif name == "readout":
                readout = part if readout is None else readout + part
            else:
                inp = part if inp is None else inp + part
    ntk = hidden if arch.trained == "hidden" else inp + hidden + readout
    return {"nngp": readout, "ntk": ntk, "parts": {"input": inp, "hidden": hidden, "readout": readout}}


def conv_kernel_montecarlo(arch, X, kind: str = "ntk", *, width: int = 128, n_seeds: int = 8, seed: int = 0):
    """Mean and standard error over ``n_seeds`` initialisations (as
    :func:`numerics.montecarlo.kernel_montecarlo`, which dispatches here for conv specs)."""
    from reskernels.theory.arch import check_kind
    check_kind(kind)
    return seed_average(empirical_conv_kernels, arch, X, kind, width, n_seeds, seed)

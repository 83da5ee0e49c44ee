"""Finite-width circular conv nets (CNN, ResCNN) in numpy with hand-written backpropagation.

They realise contract.md's conv conventions at finite width m (channels), N(0, 1) weights:

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

from reskernels.theory.arch import CNN, ResCNN


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


def _readout_vector(arch, H, W, m, rng):
    return rng.standard_normal((H, W, m)) if arch.readout == "flatten" else rng.standard_normal(m)


def _readout(arch, feat, v, scale):
    """f and df/dfeat for the readout on features (N, H, W, m)."""
    N, H, W, m = feat.shape
    if arch.readout == "center":
        f = scale * feat[:, 0, 0] @ v
        df = np.zeros_like(feat)
        df[:, 0, 0] = scale * v
    elif arch.readout == "gap":
        f = scale * feat.mean(axis=(1, 2)) @ v
        df = np.broadcast_to(scale * v / (H * W), feat.shape).copy()
    else:
        s = scale / np.sqrt(H * W)
        f = s * np.einsum("nhwc,hwc->n", feat, v)
        df = np.broadcast_to(s * v, feat.shape).copy()
    return f, df


def _readout_kernel(arch, feat, scale):
    N, H, W, m = feat.shape
    if arch.readout == "center":
        F = feat[:, 0, 0]
        return scale ** 2 * F @ F.T
    if arch.readout == "gap":
        F = feat.mean(axis=(1, 2))
        return scale ** 2 * F @ F.T
    F = feat.reshape(N, -1)
    return scale ** 2 / (H * W) * F @ F.T


def empirical_conv_kernels(arch, X, width: int, rng: np.random.Generator) -> dict:
    """One initialisation: {"nngp", "ntk", "parts": {"input", "hidden", "readout"}} as (N, N)."""
    X = np.asarray(X, dtype=np.float64)
    one_d = X.ndim == 3
    Xg = X[:, None] if one_d else X
    N, H, W, C0 = Xg.shape
    m, c = int(width), arch.weight_var
    ts, tq = _taps(arch.stem_size, one_d), _taps(arch.filter_size, one_d)
    W0 = rng.standard_normal((len(ts), m, C0))
    s0 = np.sqrt(arch.input_var / len(ts))
    g0 = _conv(Xg, W0, ts, s0)
    hidden = np.zeros((N, N))
    if isinstance(arch, CNN):
        Ws = [rng.standard_normal((len(tq), m, m)) for _ in range(arch.depth - 1)]
        sq = np.sqrt(c / (len(tq) * m))
        gs = [g0]
        for Wl in Ws:
            gs.append(_conv(np.maximum(gs[-1], 0), Wl, tq, sq))
        feat = np.maximum(gs[-1], 0)
        rscale = np.sqrt(c / m)
        v = _readout_vector(arch, H, W, m, rng)
        _, dfeat = _readout(arch, feat, v, rscale)
        readout = _readout_kernel(arch, feat, rscale)
        dg = dfeat * (gs[-1] > 0)
        for l in range(len(Ws) - 1, -1, -1):
            G, da = _conv_back(dg, np.maximum(gs[l], 0), Ws[l], tq, sq)
            hidden += _gram_of(G)
            dg = da * (gs[l] > 0)
    elif isinstance(arch, ResCNN):
        alphas = arch.alphas()
        sq1 = np.sqrt(c / (len(tq) * m))
        sq2 = np.sqrt(1.0 / (len(tq) * m))
        W1 = [rng.standard_normal((len(tq), m, m)) for _ in alphas]
        W2 = [rng.standard_normal((len(tq), m, m)) for _ in alphas]
        hs, us = [g0], []
        for al, A, B in zip(alphas, W1, W2):
            u = _conv(hs[-1], A, tq, sq1)
            us.append(u)
            hs.append(hs[-1] + _conv(np.maximum(u, 0), B, tq, al * sq2))
        rscale = np.sqrt(1.0 / m)
        v = _readout_vector(arch, H, W, m, rng)
        _, dh = _readout(arch, hs[-1], v, rscale)
        readout = _readout_kernel(arch, hs[-1], rscale)
        for l in range(len(alphas) - 1, -1, -1):
            G2, da = _conv_back(dh, np.maximum(us[l], 0), W2[l], tq, alphas[l] * sq2)
            du = da * (us[l] > 0)
            G1, dhb = _conv_back(du, hs[l], W1[l], tq, sq1)
            hidden += _gram_of(G2) + _gram_of(G1)
            dh = dh + dhb
        dg = dh
    else:
        raise TypeError(f"finite-width conv nets exist for CNN and ResCNN, got {type(arch).__name__}")
    G0, _ = _conv_back(dg, Xg, W0, ts, s0)
    inp = _gram_of(G0)
    ntk = hidden if arch.trained == "hidden" else inp + hidden + readout
    return {"nngp": readout, "ntk": ntk, "parts": {"input": inp, "hidden": hidden, "readout": readout}}


def conv_kernel_montecarlo(arch, X, kind: str = "ntk", *, width: int = 128, n_seeds: int = 8, seed: int = 0):
    """Mean and standard error over ``n_seeds`` initialisations (see
    :func:`numerics.montecarlo.kernel_montecarlo`, which dispatches here by spec)."""
    from .montecarlo import kernel_montecarlo
    return kernel_montecarlo(arch, X, kind, width=width, n_seeds=n_seeds, seed=seed)

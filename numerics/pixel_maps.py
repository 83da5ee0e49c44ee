"""The kernel maps on pixel-pair tensors: the numpy / CuPy interpreter of conv programs.

A conv program (:func:`theory.layers.kernel_maps` of a CNN / ResCNN spec) acts on the
per-position covariances M_ij(x, z).  In coordinates (i, r = j - i) the patch operator
[P M]_ij = mean_taps M_{i+d, j+d} keeps r and is a circular convolution along i, and every dual
activation acts entrywise, so this module works on arrays whose last two axes are the positions
(H, W) of a fixed offset r, with any leading axes (pairs, offsets).

State: (K, T), the NNGP and NTK covariances divided by the layer scale as they go (a Nonlinear map
divides by its gain c m2, a block by 1 + a), so that depth never overflows; the plan multiplies
the scale back at the end.  One function per map type (:data:`MAP_RULES`):

* Stem:      K = input_var P_stem <x_i, z_j>  (given), T = K if trained else 0;
* Nonlinear: K' = P Phi1(K) / g, T' = P([trained] Phi1(K) + Phi0(K) T) / g, g = c m2;
* Block:     K' = (K + (a/g) P Phi1(P K)) / (1 + a),
             T' = (T + (a/g) [P Phi1(P K) + P(Phi0(P K) (.) P(T + K))]) / (1 + a);
* Linear:    T' = T + [trained] K  (weight variance 1: the residual readout);
* Pool:      left to the caller (the plan reads out gap / flatten / center).

**Pixel variances by the same interpreter.**  Phi needs the variances S_x(i), S_z(j) of each
dual activation's argument.  :func:`diagonal_variances` runs *these same rules* on the diagonal
state (a pair (x, x) at offset 0, whose variances are its own values) and records each dual's
argument; for the same pixel of the same input the pair run then performs bitwise the same
operations on bitwise the same values, so rho = 1 holds by construction and diagonals are exact.

Near rho = +-1 (docs/conventions.md, "Numerics"): at the first dual activation, correlations with
|rho| > 1 - 1e-4 take theta from half angles of the input vectors (``exact_theta``); deeper ones
within a few ulps of +-1 are taken as +-1 (``snap``).
"""
from __future__ import annotations

import numpy as np

from reskernels.theory import layers as _L

# |rho| above 1 - NEAR_PARALLEL at the first layer: theta from half angles of the input vectors.
# Elsewhere theta = arccos(rho) with rho good to a few ulps has absolute error <= ~4 eps / sin(theta)
# <= 3e-14 (sin(theta) >= sqrt(2 * 1e-4)), i.e. kappa0 to ~1e-14.
NEAR_PARALLEL = 1e-4
# after the first layer, |rho| within SNAP_ULPS * (layer + 1) ulps of 1 is taken as +-1 (see phi)
SNAP_ULPS = 8


def taps(q, spatial_dims, axis_len):
    """Tap offsets per axis; along a 1-D signal's dummy axis (length 1) only 0."""
    h = (q - 1) // 2
    return [0] if axis_len == 1 and spatial_dims == 1 else list(range(-h, h + 1))


def _mean_shifts(M, taps, axis):
    """mean over d in taps of M shifted by d along ``axis`` (circular).

    out_i = (1/q) sum_d M_{i+d}: the centre tap is a copy, every other tap is added in place
    as two slices (the body and the wrapped edge) -- no padded copy."""
    if len(taps) == 1:
        return M
    n = M.shape[axis]
    out = M.copy()

    def sl(a, b):
        idx = [slice(None)] * M.ndim
        idx[axis] = slice(a, b)
        return tuple(idx)

    for d in taps:
        if d == 0:
            continue
        k = d % n  # out[i] += M[(i + k) mod n]
        out[sl(0, n - k)] += M[sl(k, n)]
        out[sl(n - k, n)] += M[sl(0, k)]
    out *= 1.0 / len(taps)
    return out


def patch(M, th, tw):
    """[P M]_i = mean over the q x q taps of M_{i + d}, circular along the last two axes.

    The tap set is a product, so P is separable: one mean of shifted views per axis.  On a GPU
    (CuPy array) one fused kernel reads the q x q neighbourhood instead (one memory pass)."""
    if type(M).__module__.startswith("cupy"):
        return _patch_gpu(M, th, tw)
    return _mean_shifts(_mean_shifts(M, th, M.ndim - 2), tw, M.ndim - 1)


_GPU_KERNELS = {}


def _patch_gpu(M, th, tw, add=None, mul=None):
    """mul * P(M + add) in one pass on the GPU (``add`` / ``mul`` optional, same shape as M)."""
    import cupy
    if len(th) == 1 and len(tw) == 1:
        out = M if add is None else M + add
        return out if mul is None else mul * out
    H, W = M.shape[-2], M.shape[-1]
    rh, rw = (len(th) - 1) // 2, (len(tw) - 1) // 2
    key = ("patch", rh, rw, add is not None, mul is not None)
    kern = _GPU_KERNELS.get(key)
    if kern is None:
        term = "(M[j] + A[j])" if add is not None else "M[j]"
        kern = cupy.ElementwiseKernel(
            "raw float64 M, raw float64 A, raw float64 B, int64 H, int64 W", "float64 out",
            f"""
            long long w = i % W;
            long long h = (i / W) % H;
            long long base = i - h * W - w;
            double acc = 0.0;
            for (int a = -{rh}; a <= {rh}; ++a) {{
                long long hh = (h + a + H) % H;
                double row = 0.0;
                for (int b = -{rw}; b <= {rw}; ++b) {{
                    long long j = base + hh * W + (w + b + W) % W;
                    row += {term};
                }}
                acc += row * (1.0 / {2 * rw + 1});
            }}
            out = acc * (1.0 / {2 * rh + 1}){" * B[i]" if mul is not None else ""};
            """, "reskernels_patch_%d_%d_%d_%d" % key[1:])
        _GPU_KERNELS[key] = kern
    M = cupy.ascontiguousarray(M)
    A = cupy.ascontiguousarray(add) if add is not None else M
    B = cupy.ascontiguousarray(cupy.broadcast_to(mul, M.shape)) if mul is not None else M
    out = cupy.empty_like(M)
    kern(M, A, B, H, W, out)
    return out


def _res_update_gpu(T, K, Pp1, Q, alpha2, a):
    """T' = (T + alpha2 (Pp1 + Q)) / (1 + a), K' = (K + alpha2 Pp1) / (1 + a): one GPU pass."""
    import cupy
    kern = _GPU_KERNELS.get("res")
    if kern is None:
        kern = cupy.ElementwiseKernel(
            "float64 T, float64 K, float64 P, float64 Q, float64 al, float64 den", "float64 To, float64 Ko",
            "To = (T + al * (P + Q)) / den; Ko = (K + al * P) / den;", "reskernels_res_update")
        _GPU_KERNELS["res"] = kern
    return kern(T, K, Pp1, Q, alpha2, 1 + a)


#: CUDA source of each activation's dual in the fused GPU kernel (by ``Activation.engine_id``):
#: from rho and theta = acos(rho) it sets k = pi kappa1(rho) and p = pi - theta, in the operation
#: order of ``Activation.from_rho``.
CUDA_DUALS = {
    0: """
            double theta = acos(rho);
            double p = M_PI - theta;
            double k = sqrt(1.0 - rho * rho);
            k += p * rho;
    """,
}


def _phi_fused(M, Sx, Sz, c, m2, act, xp, snap=0.0):
    """:func:`phi` as one fused CuPy elementwise kernel (the same operations in the same order,
    so the GPU path does one memory pass instead of fifteen)."""
    key = ("phi", act.engine_id)
    kern = _GPU_KERNELS.get(key)
    if kern is None:
        kern = xp.ElementwiseKernel(
            "float64 M, float64 Sx, float64 Sz, float64 h, float64 snap", "float64 k1, float64 pt",
            """
            double g = sqrt(Sx * Sz);
            double rho = g > 0 ? M / g : 0.0;
            rho = rho > 1.0 ? 1.0 : (rho < -1.0 ? -1.0 : rho);
            if (snap > 0.0 && fabs(rho) > 1.0 - snap) rho = rho > 0.0 ? 1.0 : -1.0;
            """ + CUDA_DUALS[act.engine_id] + """
            k /= M_PI;
            k *= g;
            k *= h;
            k1 = k;
            pt = p * (h / M_PI);
            """, "reskernels_phi_%d" % act.engine_id)
        _GPU_KERNELS[key] = kern
    return kern(M, Sx, Sz, c * m2, snap)


def phi(M, Sx, Sz, c, act, xp=np, exact_theta=None, snap=0.0):
    """(Phi1(M), Phi0(M)) entrywise for the activation ``act``; Sx, Sz broadcast to M's shape.

    Phi1 = c m2 g kappa1(rho), Phi0 = c m2 kappa0(rho) with g = sqrt(Sx Sz), rho = M / g.
    For the same pixel of the same input M and S hold bitwise equal values and sqrt(S * S) == S
    in IEEE arithmetic, so rho = 1 exactly (no sqrt(eps) loss).  A zero-variance pixel gets
    rho := 0 (its Phi1 is 0 and its Phi0 never matters).

    kappa0(rho) = 1 - arccos(rho)/pi has an infinite slope at rho = +-1, so a rho rounded by
    a few ulps near there (parallel or antiparallel pixels of *different* inputs, every pixel of a
    one-channel signal) would cost ~sqrt(eps) ~ 1e-8.  At the first layer M is an inner product
    of input vectors, and ``exact_theta(mask)`` returns theta from their half angles for the
    entries with |rho| > 1 - NEAR_PARALLEL (see :func:`_fix_near_parallel`).  Deeper layers
    have no input vectors; there ``snap`` > 0 sets |rho| > 1 - snap to +-1.  At working precision a
    rho within snap of 1 cannot be told from 1 (its own rounding is that large: <= 6 ulps measured
    at depth 20 for inputs whose exact rho is 1, such as x and 3x, or one-channel signals with
    filter_size 1); taking it as 1 makes such exactly parallel pairs exact, and costs a pair whose
    exact angle is below sqrt(2 snap) at most the error that arccos of the rounded rho would have."""
    m2 = act.second_moment_float
    if xp is not np:
        k1, pt = _phi_fused(M, Sx, Sz, c, m2, act, xp, snap)
        if exact_theta is not None:
            g = xp.sqrt(Sx * Sz)
            rho = xp.where(g > 0, M / xp.where(g > 0, g, 1.0), 0.0)
            _fix_near_parallel(k1, pt, rho, g, c, m2, act, xp, exact_theta)
        return k1, pt
    g = xp.sqrt(Sx * Sz)
    pos = g > 0
    rho = xp.where(pos, M / xp.where(pos, g, 1.0), 0.0)
    xp.clip(rho, -1.0, 1.0, out=rho)
    if snap > 0:
        np.copysign(1.0, rho, out=rho, where=np.abs(rho) > 1.0 - snap)
    # rho = 1 gives theta = 0, kappa0 = kappa1 = 1 exactly
    k1, pt = act.from_rho(rho, xp, np.pi)
    k1 /= np.pi                 # kappa1: exactly 1 at rho = 1
    k1 *= g                     # then g, then c m2: the same operations on the diagonal state
    k1 *= c * m2
    pt *= (c * m2) / np.pi
    if exact_theta is not None:
        _fix_near_parallel(k1, pt, rho, xp.broadcast_to(g, rho.shape), c, m2, act, xp, exact_theta)
    return k1, pt


def _fix_near_parallel(k1, pt, rho, g, c, m2, act, xp, exact_theta):
    """Overwrite Phi1, Phi0 where |rho| > 1 - NEAR_PARALLEL with theta = exact_theta(mask):
    Phi1 = g c m2 pi kappa1(cos theta) / pi, Phi0 = c m2 (pi - theta) / pi
    (at theta = 0 the same operations as :func:`phi`, so rho = 1 entries keep their exact values)."""
    mask = (xp.abs(rho) > 1.0 - NEAR_PARALLEL) & (g > 0)
    if not bool(mask.any()):
        return
    theta = exact_theta(mask)
    k, p = act.from_theta(theta, xp, np.pi)
    k /= np.pi
    k *= g[mask]
    k *= c * m2
    k1[mask] = k
    pt[mask] = p * ((c * m2) / np.pi)


class Context:
    """What the map rules read besides the state: the dual variances, the array module, the
    first-layer half-angle thetas, and which kind is wanted.

    ``variances``: None on the diagonal run (each dual's variance is its own argument, recorded
    in ``recorded``), else a sequence of (Vx, Vz) pairs, one per dual activation in program
    order, broadcastable to the state."""

    def __init__(self, taps_of, xp=np, variances=None, exact_theta=None, want_ntk=True):
        self.taps_of, self.xp, self.variances = taps_of, xp, variances
        self.exact_theta, self.want_ntk = exact_theta, want_ntk
        self.dual = 0            # number of dual activations applied so far
        self.recorded = []

    def phi(self, M, c, act):
        """Phi1, Phi0 of the next dual activation (its variances, first-layer thetas or snap)."""
        self.dual += 1
        layer = self.dual
        if self.variances is None:
            self.recorded.append(M)
            Vx = Vz = M
        else:
            Vx, Vz = self.variances[layer - 1]
        if layer == 1 and self.exact_theta is not None:
            return phi(M, Vx, Vz, c, act, self.xp, self.exact_theta, 0.0)
        return phi(M, Vx, Vz, c, act, self.xp, None, SNAP_ULPS * np.finfo(float).eps * (layer + 1))


def _stem(m, K, T, ctx):
    return K, (K.copy() if m.trained else ctx.xp.zeros_like(K))


def _nonlinear(m, K, T, ctx):
    th, tw = ctx.taps_of(m.filter_size)
    g = m.gain
    p1, p0 = ctx.phi(K, m.weight_var, m.activation)
    if ctx.want_ntk:
        T = (p1 + p0 * T) if m.trained else (p0 * T)
        T = patch(T, th, tw)
    # normalise by the gain c m2 per layer (the diagonal run is normalised alike)
    K = patch(p1, th, tw)
    K = K / g
    if ctx.want_ntk:
        T = T / g
    return K, T


def _block(m, K, T, ctx):
    th, tw = ctx.taps_of(m.filter_size)
    xp, a = ctx.xp, m.gain
    PK = patch(K, th, tw)
    p1, p0 = ctx.phi(PK, m.weight_var, m.activation)
    alpha2 = a / (m.weight_var * m.activation.second_moment_float)
    Pp1 = patch(p1, th, tw)
    if ctx.want_ntk and xp is not np:     # the same update, fused into three GPU passes
        Q = _patch_gpu(_patch_gpu(T, th, tw, add=K, mul=p0), th, tw)
        return _res_update_gpu(T, K, Pp1, Q, alpha2, a)[::-1]
    if ctx.want_ntk:
        T = (T + alpha2 * (Pp1 + patch(p0 * patch(T + K, th, tw), th, tw))) / (1 + a)
    K = (K + alpha2 * Pp1) / (1 + a)
    return K, T


def _linear(m, K, T, ctx):
    if m.weight_var != 1.0:
        raise NotImplementedError("the pixel engine supports a Linear map of weight variance 1 only")
    if ctx.want_ntk and m.trained:
        T = T + K
    return K, T


def _pool(m, K, T, ctx):
    return K, T


#: one function per kernel-map type (the numpy / CuPy pixel-pair interpreter)
MAP_RULES = {_L.Stem: _stem, _L.Nonlinear: _nonlinear, _L.Block: _block, _L.Linear: _linear,
             _L.Pool: _pool}


def run(maps, G, ctx: Context):
    """Interpret ``maps`` on the stem covariance G (already input_var P_stem <x, z>); returns
    (K, T) before the readout, both divided by the layer scale."""
    K, T = G, None
    for m in maps:
        K, T = MAP_RULES[type(m)](m, K, T, ctx)
    return K, T


def diagonal_variances(maps, S0, taps_of, xp=np):
    """The variances of every dual activation's argument, one array per dual in program order,
    computed by :func:`run` on the diagonal state S0 = input_var P_stem |x_i|^2 (module doc)."""
    ctx = Context(taps_of, xp, variances=None, want_ntk=False)
    run(maps, S0, ctx)
    return ctx.recorded


def first_dual_taps(maps, tsh, tsw, taps_of):
    """Offsets (dh, dw) and weights w of the first dual activation's argument as one inner product:
    M_ij = input_var sum_t w_t <x_{i+t}, z_{j+t}> -- the stem's mean over its taps, followed for a
    program that starts with a block by the block's patch operator (the convolution of the two)."""
    tap_w = {(a, b): 1.0 / (len(tsh) * len(tsw)) for a in tsh for b in tsw}
    if isinstance(maps[1], _L.Block):
        th, tw = taps_of(maps[1].filter_size)
        conv = {}
        for (a, b), w in tap_w.items():
            for e in th:
                for f in tw:
                    key = (a + e, b + f)
                    conv[key] = conv.get(key, 0.0) + w / (len(th) * len(tw))
        tap_w = conv
    keys = sorted(tap_w)
    return (np.array([k[0] for k in keys]), np.array([k[1] for k in keys]),
            np.array([tap_w[k] for k in keys]))

"""Convolutional kernels (CNN, ResCNN) on circular 1-D signals and 2-D tori.

Per-position covariances M_ij(x, z) between pixel i of x and pixel j of z obey the
contract's recursions (contract.md "CNN and ResCNN").  Write them in the coordinates
(i, r) with r = j - i (mod the grid):

* the patch operator [P M]_ij = mean_taps M_{i+d, j+d} shifts i and j together, so it
  keeps r and is a circular convolution along i alone;
* Phi0, Phi1 act entrywise, with the pixel variances S_x(i) and S_z(i + r).

Hence **every offset r evolves independently**: the flatten and center readouts need
only r = 0 (cost O(n m P depth q^2)), and gap = mean over all r and i needs the P
offsets (cost O(n m P^2 depth q^2)), computed in independent chunks of offsets.  The
pixel variances follow their own closed recursions (CNN: S <- (c/2) P S; ResCNN:
S <- S + a P P S), so a pair (same input, same pixel) has rho = 1 *exactly* and the
diagonal is exact.  Correlations of distinct pixels are formed as M / sqrt(S S'); where that
is within 1e-4 of +-1 at the first layer (parallel pixels of different inputs, one-channel
signals) theta comes from half angles of the input vectors instead of arccos, and deeper layers
take a rho within a few ulps of +-1 as +-1 (exactly parallel pairs such as x and 3x), see _phi.
What remains is the conditioning of arccos at deeper layers for pairs whose angle there is
small but not zero: an error ~ eps / theta.

Large depth: K and Theta are divided by the layer scale s_l ((c/2)^l for CNN,
prod (1 + alpha^2 c/2) for ResCNN) as they go and multiplied back at the end
(OverflowError when that overflows; ``normalize=True`` avoids it).

Backends: "numpy" runs each layer as vectorised passes over a tile's (pairs x offsets x positions)
tensor; "numba" (:mod:`numerics.conv_fused`, the default via "auto" when numba is installed) runs
the same operations as one compiled loop per pair and offset; "cupy" fuses them into GPU kernels.

Inputs are channels-last: (n, P, C) for 1-D signals, (n, H, W, C) for 2-D images.
``progress=True`` prints a tile counter on stderr (default: on for >= 200 tiles on a terminal).
"""
from __future__ import annotations

import math
import os

import numpy as np

from theory.arch import CNN, ResCNN, check_kind

from .gram import as_float_array
from .tiles import PlanBase, array_module, execute, mirror_upper, resolve_backend, to_host

_TEMPS = 20  # float64 temporaries per tensor entry inside one tile (upper bound)
_TILE_ENTRIES = 2 ** 17  # entries per tensor in one tile: keeps a tile's working set in cache


def is_conv(arch) -> bool:
    return isinstance(arch, (CNN, ResCNN))


def _as_grid(A, name):
    """Validate and reshape to (n, H, W, C); a 1-D signal becomes H = 1."""
    A = as_float_array(A, name, (3, 4))
    if A.ndim == 3:
        return A[:, None, :, :], 1
    return A, 2


def _taps(q, spatial_dims, axis_len):
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


def _patch(M, th, tw):
    """[P M]_i = mean over the q x q taps of M_{i + d}, circular along the last two axes.

    The tap set is a product, so P is separable: one mean of shifted views per axis.  On a GPU
    (CuPy array) one fused kernel reads the q x q neighbourhood instead (one memory pass)."""
    if type(M).__module__.startswith("cupy"):
        return _patch_gpu(M, th, tw)
    return _mean_shifts(_mean_shifts(M, th, M.ndim - 2), tw, M.ndim - 1)


_PATCH_KERNELS = {}


def _patch_gpu(M, th, tw, add=None, mul=None):
    """mul * P(M + add) in one pass on the GPU (``add`` / ``mul`` optional, same shape as M)."""
    import cupy
    if len(th) == 1 and len(tw) == 1:
        out = M if add is None else M + add
        return out if mul is None else mul * out
    H, W = M.shape[-2], M.shape[-1]
    rh, rw = (len(th) - 1) // 2, (len(tw) - 1) // 2
    key = (rh, rw, add is not None, mul is not None)
    kern = _PATCH_KERNELS.get(key)
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
            """, "reskernels_patch_%d_%d_%d_%d" % key)
        _PATCH_KERNELS[key] = kern
    M = cupy.ascontiguousarray(M)
    A = cupy.ascontiguousarray(add) if add is not None else M
    B = cupy.ascontiguousarray(cupy.broadcast_to(mul, M.shape)) if mul is not None else M
    out = cupy.empty_like(M)
    kern(M, A, B, H, W, out)
    return out


def _res_update_gpu(T, K, Pp1, Q, alpha2, a):
    """T' = (T + alpha2 (Pp1 + Q)) / (1 + a), K' = (K + alpha2 Pp1) / (1 + a): one GPU pass."""
    import cupy
    kern = _PATCH_KERNELS.get("res")
    if kern is None:
        kern = cupy.ElementwiseKernel(
            "float64 T, float64 K, float64 P, float64 Q, float64 al, float64 den", "float64 To, float64 Ko",
            "To = (T + al * (P + Q)) / den; Ko = (K + al * P) / den;", "reskernels_res_update")
        _PATCH_KERNELS["res"] = kern
    return kern(T, K, Pp1, Q, alpha2, 1 + a)


_PHI_KERNELS = {}


def _phi_fused(M, Sx, Sz, c, xp, snap=0.0):
    """:func:`_phi` as one fused CuPy elementwise kernel (the same operations in the same order,
    so the GPU path does one memory pass instead of fifteen)."""
    kern = _PHI_KERNELS.get("phi_snap")
    if kern is None:
        kern = xp.ElementwiseKernel(
            "float64 M, float64 Sx, float64 Sz, float64 h, float64 snap", "float64 k1, float64 pt",
            """
            double g = sqrt(Sx * Sz);
            double rho = g > 0 ? M / g : 0.0;
            rho = rho > 1.0 ? 1.0 : (rho < -1.0 ? -1.0 : rho);
            if (snap > 0.0 && fabs(rho) > 1.0 - snap) rho = rho > 0.0 ? 1.0 : -1.0;
            double theta = acos(rho);
            double p = M_PI - theta;
            double k = sqrt(1.0 - rho * rho);
            k += p * rho;
            k /= M_PI;
            k *= g;
            k *= h;
            k1 = k;
            pt = p * (h / M_PI);
            """, "reskernels_phi_snap")
        _PHI_KERNELS["phi_snap"] = kern
    return kern(M, Sx, Sz, c / 2, snap)


# |rho| above 1 - _NEAR_PARALLEL at the first layer: theta from half angles of the input vectors.
# Elsewhere theta = arccos(rho) with rho good to a few ulps has absolute error <= ~4 eps / sin(theta)
# <= 3e-14 (sin(theta) >= sqrt(2 * 1e-4)), i.e. kappa0 to ~1e-14.
_NEAR_PARALLEL = 1e-4
# after the first layer, |rho| within _SNAP_ULPS * (layer + 1) ulps of 1 is taken as +-1 (see _phi)
_SNAP_ULPS = 8


def _phi(M, Sx, Sz, c, xp=np, exact_theta=None, snap=0.0):
    """(Phi1(M), Phi0(M)) entrywise; Sx, Sz broadcast to M's shape (pixel variances).

    rho = M / sqrt(Sx Sz): for the same pixel of the same input M and S hold bitwise equal
    values and sqrt(S * S) == S in IEEE arithmetic, so rho = 1 exactly (no sqrt(eps) loss).
    A zero-variance pixel gets rho := 0 (its Phi1 is 0 and its Phi0 never matters).

    kappa0(rho) = 1 - arccos(rho)/pi has an infinite slope at rho = +-1, so a rho rounded by
    a few ulps near there (parallel or antiparallel pixels of *different* inputs, every pixel of a
    one-channel signal) would cost ~sqrt(eps) ~ 1e-8.  At the first layer M is an inner product
    of input vectors, and ``exact_theta(mask)`` returns theta from their half angles for the
    entries with |rho| > 1 - _NEAR_PARALLEL (see :func:`_fix_near_parallel`).  Deeper layers
    have no input vectors; there ``snap`` > 0 sets |rho| > 1 - snap to +-1.  At working precision a
    rho within snap of 1 cannot be told from 1 (its own rounding is that large: <= 6 ulps measured
    at depth 20 for inputs whose exact rho is 1, such as x and 3x, or one-channel signals with
    filter_size 1); taking it as 1 makes such exactly parallel pairs exact, and costs a pair whose
    exact angle is below sqrt(2 snap) at most the error that arccos of the rounded rho would have."""
    if xp is not np:
        k1, pt = _phi_fused(M, Sx, Sz, c, xp, snap)
        if exact_theta is not None:
            g = xp.sqrt(Sx * Sz)
            rho = xp.where(g > 0, M / xp.where(g > 0, g, 1.0), 0.0)
            _fix_near_parallel(k1, pt, rho, g, c, xp, exact_theta)
        return k1, pt
    g = xp.sqrt(Sx * Sz)
    pos = g > 0
    rho = xp.where(pos, M / xp.where(pos, g, 1.0), 0.0)
    xp.clip(rho, -1.0, 1.0, out=rho)
    if snap > 0:
        np.copysign(1.0, rho, out=rho, where=np.abs(rho) > 1.0 - snap)
    # rho = 1 gives theta = 0, kappa0 = kappa1 = 1 exactly
    theta = xp.arccos(rho)
    pt = np.pi - theta
    k1 = xp.sqrt(1.0 - rho * rho)
    k1 += pt * rho
    k1 /= np.pi                 # kappa1: exactly 1 at rho = 1
    k1 *= g                     # then g, then c/2: the same operations as _variances
    k1 *= c / 2
    pt *= (c / 2) / np.pi
    if exact_theta is not None:
        _fix_near_parallel(k1, pt, rho, xp.broadcast_to(g, rho.shape), c, xp, exact_theta)
    return k1, pt


def _fix_near_parallel(k1, pt, rho, g, c, xp, exact_theta):
    """Overwrite Phi1, Phi0 where |rho| > 1 - _NEAR_PARALLEL with theta = exact_theta(mask):
    Phi1 = g (c/2) (sin theta + (pi - theta) cos theta) / pi, Phi0 = (c/2) (pi - theta) / pi
    (at theta = 0 the same operations as :func:`_phi`, so rho = 1 entries keep their exact values)."""
    mask = (xp.abs(rho) > 1.0 - _NEAR_PARALLEL) & (g > 0)
    if not bool(mask.any()):
        return
    theta = exact_theta(mask)
    p = np.pi - theta
    k = xp.sin(theta) + p * xp.cos(theta)
    k /= np.pi
    k *= g[mask]
    k *= c / 2
    k1[mask] = k
    pt[mask] = p * ((c / 2) / np.pi)


def _variances(arch, G0, th, tw, ts_h, ts_w):
    """Per-input pixel variances at every stage (list), from the input's own pixel norms G0.

    They repeat, operation for operation, what :func:`_recursion` does to an entry with rho = 1
    (Phi1 = (S * 1) * (c/2), the same patches and the same normalising divisions), so that the
    same pixel of the same input holds bitwise equal values in both and rho = 1 exactly."""
    c = arch.weight_var
    S = arch.input_var * _patch(G0, ts_h, ts_w)
    out = [S]
    if isinstance(arch, CNN):
        for _ in range(arch.depth - 1):
            S = _patch(S * (c / 2), th, tw) / (c / 2)
            out.append(S)
        return out
    for a in arch.block_gains():
        alpha2 = a / (c / 2)
        p1 = _patch(S, th, tw) * (c / 2)
        S = (S + alpha2 * _patch(p1, th, tw)) / (1 + a)
        out.append(S)
    return out


def _first_or_snap(layer, exact_theta):
    """(exact_theta, snap) for the dual activation of ``layer``: half angles at the first layer
    (when given), snapping |rho| ~ 1 after it (:func:`_phi`)."""
    if layer == 1 and exact_theta is not None:
        return exact_theta, 0.0
    return None, _SNAP_ULPS * np.finfo(float).eps * (layer + 1)


def _recursion(arch, G, Sx_list, Sz_list, th, tw, want_ntk, xp=np, exact_theta=None):
    """Run the normalised recursion on a tile; returns (K, Theta) before the readout.

    G: stem inner products (..., H, W) already averaged over stem taps and times input_var.
    Sx_list / Sz_list: the pixel variances of each stage, broadcastable to G.
    exact_theta: half-angle thetas for the first dual activation (:func:`_phi`).
    """
    c = arch.weight_var
    hidden = arch.trained == "hidden"
    K = G
    T = xp.zeros_like(K) if hidden else K.copy()
    if isinstance(arch, CNN):
        L = arch.depth
        for l in range(1, L + 1):
            p1, p0 = _phi(K, Sx_list[l - 1], Sz_list[l - 1], c, xp, *_first_or_snap(l, exact_theta))
            last = l == L
            if want_ntk:
                T = (p0 * T) if (hidden and last) else (p1 + p0 * T)
                T = T if last else _patch(T, th, tw)
            # normalise by c/2 per layer (the pixel-variance lists are normalised alike)
            K = p1 if last else _patch(p1, th, tw)
            K = K / (c / 2)
            T = T / (c / 2)
        return K, T
    for l, a in enumerate(arch.block_gains(), start=1):
        S_x, S_z = Sx_list[l - 1], Sz_list[l - 1]
        PK = _patch(K, th, tw)
        p1, p0 = _phi(PK, _patch(S_x, th, tw), _patch(S_z, th, tw), c, xp, *_first_or_snap(l, exact_theta))
        alpha2 = a / (c / 2)
        Pp1 = _patch(p1, th, tw)
        if want_ntk and xp is not np:     # the same update, fused into three GPU passes
            Q = _patch_gpu(_patch_gpu(T, th, tw, add=K, mul=p0), th, tw)
            T, K = _res_update_gpu(T, K, Pp1, Q, alpha2, a)
            continue
        if want_ntk:
            T = (T + alpha2 * (Pp1 + _patch(p0 * _patch(T + K, th, tw), th, tw))) / (1 + a)
        K = (K + alpha2 * Pp1) / (1 + a)
    if want_ntk and not hidden:
        T = T + K
    return K, T


def _offset_index(offs, H, W, xp):
    """Index arrays (R, H, W) with A[:, ih, iw][:, r, i] = A[:, i + offset_r] (circular): all the
    rolled copies of a chunk of offsets in one gather (equal to stacking np.roll(A, -offset))."""
    rh = np.array([o[0] for o in offs])[:, None, None]
    rw = np.array([o[1] for o in offs])[:, None, None]
    ih = (np.arange(H)[None, :, None] + rh) % H
    iw = (np.arange(W)[None, None, :] + rw) % W
    ih, iw = np.broadcast_arrays(ih, iw)
    return xp.asarray(ih), xp.asarray(iw)


def _first_layer_taps(arch, tsh, tsw, th, tw):
    """Offsets (dh, dw) and weights w of the first dual activation's argument as one inner product:
    M_ij = input_var sum_t w_t <x_{i+t}, z_{j+t}> -- the stem's mean over its taps, followed for a
    ResCNN by the block's patch operator (the convolution of the two tap means)."""
    taps = {(a, b): 1.0 / (len(tsh) * len(tsw)) for a in tsh for b in tsw}
    if isinstance(arch, ResCNN):
        conv = {}
        for (a, b), w in taps.items():
            for e in th:
                for f in tw:
                    key = (a + e, b + f)
                    conv[key] = conv.get(key, 0.0) + w / (len(th) * len(tw))
        taps = conv
    keys = sorted(taps)
    return (np.array([k[0] for k in keys]), np.array([k[1] for k in keys]),
            np.array([taps[k] for k in keys]))


def _half_angle_theta(xs, zs, offs, taps, H, W, xp):
    """exact_theta for :func:`_phi` on a tile: for the masked entries (ia, jb, r, h, w) of the
    (a, b, R, H, W) tensor, the angle between the stacked, tap-weighted vectors u = (sqrt(w_t)
    x_{p+t})_t and v = (sqrt(w_t) z_{p+o_r+t})_t, theta = 2 atan2(|u^ - v^|, |u^ + v^|) (unit
    vectors u^, v^): accurate to a few ulps at theta = 0 and pi, where arccos is not."""
    dh, dw, wt = (xp.asarray(a) for a in taps)
    oh = xp.asarray(np.array([o[0] for o in offs]))
    ow = xp.asarray(np.array([o[1] for o in offs]))
    sw = xp.sqrt(wt)[None, :, None]

    def exact_theta(mask):
        ia, jb, r, h, w = xp.nonzero(mask)
        hx, wx = (h[:, None] + dh) % H, (w[:, None] + dw) % W
        hz, wz = (h[:, None] + oh[r][:, None] + dh) % H, (w[:, None] + ow[r][:, None] + dw) % W
        U = xs[ia[:, None], hx, wx] * sw            # (N, T, C)
        V = zs[jb[:, None], hz, wz] * sw
        U = U / xp.sqrt((U * U).sum(axis=(1, 2)))[:, None, None]
        V = V / xp.sqrt((V * V).sum(axis=(1, 2)))[:, None, None]
        d = xp.sqrt(((U - V) ** 2).sum(axis=(1, 2)))
        s = xp.sqrt(((U + V) ** 2).sum(axis=(1, 2)))
        return 2.0 * xp.arctan2(d, s)
    return exact_theta


def _channel_dot(A, B, xp):
    """sum_c A[..., c] B[..., c] (broadcasting), one product per channel accumulated in channel
    order: the same operations for pair covariances and pixel variances on every backend."""
    out = A[..., 0] * B[..., 0]
    for ch in range(1, A.shape[-1]):
        out += A[..., ch] * B[..., ch]
    return out


def _readout(M, readout):
    """M: (a, b, R, H, W) -> (a, b) for the readout (R = offsets in this chunk)."""
    if readout == "center":
        return M[:, :, 0, 0, 0]
    return M.mean(axis=(2, 3, 4)) if readout == "flatten" else M.sum(axis=(2, 3, 4))


class ConvGramPlan(PlanBase):
    """A conv Gram matrix as a grid of independent tiles (the one code path of every executor).

    ``plan.tiles`` lists (i0, i1, j0, j1); ``plan.block(tile)`` returns that tile's values
    (before the layer scale, as a host float64 array) and depends on nothing but the plan and the
    tile, so it may run in this process, in a thread, on a Dask worker or on a GPU (``backend``)
    with identical results for the same backend; ``plan.finish(out)`` mirrors the upper triangle
    and applies the normalisation or the layer scale.  See :mod:`numerics.tiles` for executors.
    """

    def __init__(self, arch, X, Z=None, kind: str = "ntk", *, normalize: bool = False,
                 memory_budget: int = 256 * 2**20, n_threads: int | None = None, backend: str = "auto",
                 _unscaled: bool = False):
        check_kind(kind)
        backend = resolve_backend(backend, conv=True)
        Xg, dims = _as_grid(X, "X")
        symmetric = Z is None
        if symmetric:
            Zg = Xg
        else:
            Zg, dz = _as_grid(Z, "Z")
            if dz != dims:
                raise ValueError(f"X and Z must both be 1-D signals or both 2-D images, got ranks "
                                 f"{np.ndim(X)} and {np.ndim(Z)}")
            if Zg.shape[1:] != Xg.shape[1:]:
                raise ValueError(f"X and Z must have the same spatial shape and channels, got "
                                 f"{Xg.shape[1:]} and {Zg.shape[1:]}")
        n, H, W, C = Xg.shape
        q, s = arch.filter_size, arch.stem_size
        for name, size in (("filter_size", q), ("stem_size", s)):
            if size > W or (dims == 2 and size > H):
                raise ValueError(f"{name}={size} is larger than the signal ({H}x{W} positions)"
                                 if dims == 2 else f"{name}={size} is larger than the signal ({W} positions)")
        self.arch, self.kind, self.backend = arch, kind, backend
        self.xp = array_module(backend)
        self.X, self.Z = X, Z
        self.Xg, self.Zg, self.symmetric = Xg, Zg, symmetric
        self.n, self.m = n, Zg.shape[0]
        self.H, self.W = H, W
        self.th, self.tw = _taps(q, dims, H), _taps(q, dims, W)
        self.tsh, self.tsw = _taps(s, dims, H), _taps(s, dims, W)
        self.first_taps = _first_layer_taps(arch, self.tsh, self.tsw, self.th, self.tw)
        scale_log = arch.log_diag_scale() - math.log(arch.input_var)  # input_var is already in the stem
        if _unscaled:
            normalize, scale_log = False, 0.0
        if not normalize and scale_log > 700:
            raise OverflowError(f"the unnormalised kernel of {arch.slug} has scale exp({scale_log:.0f}); "
                                "use normalize=True")
        self.normalize = normalize
        self.scale = 1.0 if normalize else math.exp(scale_log)
        xp = self.xp
        # pixel variances with the very operations the tiles use (same array module, same channel
        # products, same patch kernels), so that the same pixel of the same input has rho = 1 exactly
        Gx = _channel_dot(xp.asarray(Xg), xp.asarray(Xg), xp)
        Gz = Gx if symmetric else _channel_dot(xp.asarray(Zg), xp.asarray(Zg), xp)
        self.Sx_all = _variances(arch, Gx, self.th, self.tw, self.tsh, self.tsw)
        self.Sz_all = self.Sx_all if symmetric else _variances(arch, Gz, self.th, self.tw, self.tsh, self.tsw)
        self.offsets = ([(0, 0)] if arch.readout in ("flatten", "center")
                        else [(rh, rw) for rh in range(H) for rw in range(W)])
        threads = 1 if backend == "cupy" else (n_threads or os.cpu_count() or 1)
        P = H * W
        # tile = (pairs) x (offsets) x (positions): at most _TILE_ENTRIES entries per tensor (on the
        # CPU; a GPU takes what the budget allows) and within the memory budget (_TEMPS tensors per thread)
        # (numba holds no tile-sized temporaries: larger tiles, fewer tasks for an executor to schedule)
        cap = (memory_budget // (_TEMPS * 8) if backend == "cupy" else
               _TILE_ENTRIES * (4 if backend == "numba" else 1))
        temps = 1 if backend == "numba" else _TEMPS     # numba: less than one float64 per entry
        entries = max(P, min(cap, memory_budget // (threads * temps * 8)))
        self.r_chunk = max(1, min(len(self.offsets), entries // (16 * P)))
        side = max(1, int(math.isqrt(max(1, entries // (self.r_chunk * P)))))
        self.tiles = [(i0, min(i0 + side, n), j0, min(j0 + side, self.m))
                      for i0 in range(0, n, side) for j0 in range(i0 if symmetric else 0, self.m, side)]
        self.threads = threads
        if backend == "numba":
            # the first-layer..last-layer variances each dual activation reads (patched for ResCNN)
            L = arch.depth
            prep = ((lambda S: _patch(S, self.th, self.tw)) if isinstance(arch, ResCNN) else (lambda S: S))
            self.VX = np.stack([prep(S) for S in self.Sx_all[:L]])
            self.VZ = self.VX if symmetric else np.stack([prep(S) for S in self.Sz_all[:L]])

    def _block_fused(self, tile) -> np.ndarray:
        """:meth:`block` by the compiled loop of :mod:`numerics.conv_fused` (all offsets at once)."""
        from .conv_fused import READOUT_CODES, fused_block
        arch = self.arch
        i0, i1, j0, j1 = tile
        out = np.zeros((i1 - i0, j1 - j0))
        fdh, fdw, wt = self.first_taps
        fused_block()(
            np.ascontiguousarray(self.Xg[i0:i1]), np.ascontiguousarray(self.Zg[j0:j1]),
            np.array([o[0] for o in self.offsets], dtype=np.int64),
            np.array([o[1] for o in self.offsets], dtype=np.int64),
            np.ascontiguousarray(self.VX[:, i0:i1]), np.ascontiguousarray(self.VZ[:, j0:j1]),
            *(np.array(t, dtype=np.int64) for t in (self.th, self.tw, self.tsh, self.tsw)),
            fdh.astype(np.int64), fdw.astype(np.int64), np.sqrt(wt),
            np.array(arch.block_gains() if isinstance(arch, ResCNN) else (), dtype=np.float64),
            isinstance(arch, ResCNN), arch.depth, float(arch.weight_var), float(arch.input_var),
            arch.trained == "hidden", self.kind == "ntk", READOUT_CODES[arch.readout],
            _SNAP_ULPS * np.finfo(float).eps, _NEAR_PARALLEL, self.symmetric and i0 == j0, out)
        if arch.readout == "gap":
            out /= (self.H * self.W) ** 2
        return out

    def block(self, tile) -> np.ndarray:
        """The tile's kernel values before the layer scale (host float64 array)."""
        if self.backend == "numba":
            return self._block_fused(tile)
        xp, arch = self.xp, self.arch
        i0, i1, j0, j1 = tile
        xs, zs = xp.asarray(self.Xg[i0:i1]), xp.asarray(self.Zg[j0:j1])
        Sx = [S[i0:i1, None, None] for S in self.Sx_all]
        Sz_host = [S[j0:j1] for S in self.Sz_all]
        acc = xp.zeros((i1 - i0, j1 - j0))
        want_ntk = self.kind == "ntk"
        for k0 in range(0, len(self.offsets), self.r_chunk):
            offs = self.offsets[k0:k0 + self.r_chunk]
            # z rolled so that position i holds pixel i + r: (b, R, H, W, C)
            ih, iw = _offset_index(offs, self.H, self.W, xp)
            zr = zs[:, ih, iw]
            G = arch.input_var * _patch(_channel_dot(xs[:, None, None], zr[None], xp), self.tsh, self.tsw)
            Sz = [S[:, ih, iw][None] for S in Sz_host]
            exact = _half_angle_theta(xs, zs, offs, self.first_taps, self.H, self.W, xp)
            K, T = _recursion(arch, G, Sx, Sz, self.th, self.tw, want_ntk, xp, exact)
            acc += _readout(T if want_ntk else K, arch.readout)
        if arch.readout == "gap":
            acc /= (self.H * self.W) ** 2
        return to_host(acc)

    def finish(self, out: np.ndarray) -> np.ndarray:
        """Mirror (symmetric case), then normalise or scale; ``out`` holds every tile's block."""
        if self.symmetric:   # mirror the upper triangle: exact symmetry
            mirror_upper(out, self.tiles)
        if self.normalize:
            if self.symmetric:
                dx = dz = np.diag(out).copy()
            else:
                one = lambda A: gram_conv(self.arch, A, None, self.kind, n_threads=1, progress=False,
                                          backend=self.backend, _unscaled=True)[0, 0]
                dx = np.array([one(self.X[i:i + 1]) for i in range(self.n)])
                dz = np.array([one(self.Z[i:i + 1]) for i in range(self.m)])
            if np.any(dx <= 0) or np.any(dz <= 0):
                raise ValueError("normalize=True is undefined for inputs with K(x,x) = 0")
            return out / np.sqrt(np.outer(dx, dz))   # sqrt(d * d) == d: an exact unit diagonal
        out *= self.scale
        if not np.all(np.isfinite(out)):
            raise FloatingPointError("non-finite kernel values: rescale the inputs or use normalize=True")
        return out


def gram_conv(arch, X, Z=None, kind: str = "ntk", *, normalize: bool = False,
              memory_budget: int = 256 * 2**20, n_threads: int | None = None,
              progress: bool | None = None, backend: str = "auto", client=None, store=None,
              _unscaled: bool = False) -> np.ndarray:
    """Gram matrix of a CNN / ResCNN kernel (see the module docstring and :func:`numerics.gram`).

    ``backend``: "numpy" (threads) or "cupy" (one GPU, float64); ``client``: a dask.distributed
    Client to run the tiles on; ``store``: a directory where finished tiles are kept, so that an
    interrupted job resumes (:func:`numerics.tiles.execute`).
    ``_unscaled`` (internal) returns the kernel divided by its layer scale, finite at any depth."""
    plan = ConvGramPlan(arch, X, Z, kind, normalize=normalize, memory_budget=memory_budget,
                        n_threads=n_threads, backend=backend, _unscaled=_unscaled)
    out = execute(plan, client=client, store=store, progress=progress, label=f"gram {arch.slug}")
    return plan.finish(out)

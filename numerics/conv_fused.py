"""The conv recursion of :mod:`numerics.conv` as one compiled loop (numba; optional accelerator).

The numpy path runs each layer as ~20 whole-tensor passes over (pairs x offsets x positions),
memory-bound.  Here one compiled function takes a pair of inputs and an offset r and carries the
H x W grids K, Theta through every layer while they sit in L1 cache, then accumulates the readout:
the same kernel maps, lowered to opcode and parameter arrays (:func:`lower`), operation for
operation as the numpy interpreter :mod:`numerics.pixel_maps` (the patch operator's tap order, the
dual activation's operation order, the same dual variances from its diagonal run), so

* the same pixel of the same input still gets rho = 1 *exactly* (exact diagonals);
* first-layer correlations with |rho| > 1 - 1e-4 take theta from half angles of the tap-weighted
  input vectors, deeper ones within a few ulps of +-1 are taken as +-1 (:func:`numerics.pixel_maps.phi`);
* results agree with the numpy path to a few ulps (only libm's acos vs numpy's arccos differ).

The function releases the GIL, so the thread pool of :func:`numerics.tiles.execute` runs tiles in
parallel.  numba is optional (``pip install "reskernels[fast]"``); without it ``backend="auto"``
falls back to numpy.  Compiled code is cached on disk after the first call (a few seconds).
"""
from __future__ import annotations

import math

import numpy as np

try:  # optional dependency
    import numba
except ImportError:  # pragma: no cover - exercised where numba is absent
    numba = None

READOUT_CODES = {"gap": 0, "flatten": 1, "center": 2}


def available() -> bool:
    """Whether numba can be imported (the fused CPU path is usable)."""
    return numba is not None


def _jit(fn):
    """numba.njit with an on-disk cache, the GIL released and strict IEEE arithmetic (no fastmath,
    no contraction into FMAs): the operation order below is the numpy path's."""
    if numba is None:
        return fn
    return numba.njit(cache=True, nogil=True, fastmath=False, error_model="numpy")(fn)


@_jit
def wrap(i, n):
    """i mod n for -n <= i < 2n (tap and offset sums), without an integer division."""
    if i >= n:
        return i - n
    if i < 0:
        return i + n
    return i


@_jit
def mean_shifts(src, dst, taps, H, W, along_h):
    """dst = mean over taps of src shifted along h (``along_h``) or w, rounded as numpy's
    _mean_shifts: ((src + src_{d1}) + src_{d2} + ...) * (1/q), the centre first, then the taps in
    order (whole-grid passes, which the compiler vectorises)."""
    for h in range(H):
        for w in range(W):
            dst[h, w] = src[h, w]
    for d in taps:
        if d == 0:
            continue
        for h in range(H):
            if along_h:
                hh = wrap(h + d, H)
                for w in range(W):
                    dst[h, w] += src[hh, w]
            else:
                for w in range(W):
                    dst[h, w] += src[h, wrap(w + d, W)]
    inv = 1.0 / taps.shape[0]
    for h in range(H):
        for w in range(W):
            dst[h, w] *= inv


@_jit
def patch(src, dst, tmp, th, tw, H, W):
    """dst = P src (separable: along h, then along w; a single tap is a copy)."""
    if th.shape[0] == 1 and tw.shape[0] == 1:
        dst[:, :] = src
    elif th.shape[0] == 1:
        mean_shifts(src, dst, tw, H, W, False)
    elif tw.shape[0] == 1:
        mean_shifts(src, dst, th, H, W, True)
    else:
        mean_shifts(src, tmp, th, H, W, True)
        mean_shifts(tmp, dst, tw, H, W, False)


@_jit
def half_angle_theta(xs, zs, ia, jb, h, w, oh, ow, fdh, fdw, fsw, H, W):
    """theta between the tap-weighted stacked vectors u of x at (h, w) and v of z at (h+oh, w+ow):
    a first sweep gets |u|, |v|, a second 2 atan2(|u^ - v^|, |u^ + v^|) of the unit vectors."""
    C = xs.shape[3]
    nu = 1.0
    nv = 1.0
    a1 = 0.0
    a2 = 0.0
    for sweep in range(2):
        a1 = 0.0
        a2 = 0.0
        for t in range(fdh.shape[0]):
            # |tap offset| < H, W (filter and stem fit the signal), so one wrap suffices
            hx, wx = wrap(h + fdh[t], H), wrap(w + fdw[t], W)
            hz, wz = wrap(wrap(h + oh, H) + fdh[t], H), wrap(wrap(w + ow, W) + fdw[t], W)
            for ch in range(C):
                u = fsw[t] * xs[ia, hx, wx, ch] / nu
                v = fsw[t] * zs[jb, hz, wz, ch] / nv
                if sweep == 0:
                    a1 += u * u
                    a2 += v * v
                else:
                    a1 += (u - v) * (u - v)
                    a2 += (u + v) * (u + v)
        if sweep == 0:
            nu = math.sqrt(a1)
            nv = math.sqrt(a2)
    return 2.0 * math.atan2(math.sqrt(a1), math.sqrt(a2))


@_jit
def phi(M, VXl, VZl, ia, jb, oh, ow, H, W, half, snap, first, near, xs, zs, fdh, fdw, fsw, p1, p0):
    """(Phi1, Phi0) of the grid M for ReLU (engine id 0), as numerics.pixel_maps.phi (same
    operation order); ``half`` = c m2 is the gain of the dual activation's weight layer."""
    for h in range(H):
        hz = wrap(h + oh, H)
        for w in range(W):
            wz = wrap(w + ow, W)
            g = math.sqrt(VXl[ia, h, w] * VZl[jb, hz, wz])
            rho = M[h, w] / g if g > 0 else 0.0
            if rho > 1.0:
                rho = 1.0
            elif rho < -1.0:
                rho = -1.0
            if first and g > 0 and abs(rho) > 1.0 - near:
                th = half_angle_theta(xs, zs, ia, jb, h, w, oh, ow, fdh, fdw, fsw, H, W)
                p = math.pi - th
                k = math.sin(th) + p * math.cos(th)
                k /= math.pi
                k *= g
                k *= half
                p1[h, w] = k
                p0[h, w] = p * (half / math.pi)
                continue
            if snap > 0 and abs(rho) > 1.0 - snap:
                rho = 1.0 if rho > 0 else -1.0
            pt = math.pi - math.acos(rho)
            k = math.sqrt(1.0 - rho * rho)
            k += pt * rho
            k /= math.pi
            k *= g
            k *= half
            p1[h, w] = k
            p0[h, w] = pt * (half / math.pi)


# opcodes of the lowered program (one per kernel-map type of theory.layers)
OP_STEM, OP_NONLINEAR, OP_BLOCK, OP_LINEAR, OP_POOL = 0, 1, 2, 3, 4


@_jit
def block(xs, zs, OH, OW, VX, VZ, ops, params, taps_h, taps_w, fdh, fdw, fsw, want_ntk, readout,
          snap_unit, near, upper, out):
    """out[ia, jb] += readout of the program for every pair of (xs, zs) and every offset
    (``upper``: only jb >= ia, for a diagonal tile of a symmetric Gram matrix).

    ``ops[o]`` = (opcode, activation id, trained, h-taps start, h-taps count, w-taps start,
    w-taps count) and ``params[o]`` = (input_var or weight_var c, gain, c m2) of the o-th kernel map
    (:func:`lower`); each opcode is interpreted by one branch below."""
    a, H, W, C = xs.shape
    b = zs.shape[0]
    G0 = np.empty((H, W))
    K = np.empty((H, W))
    T = np.empty((H, W))
    A = np.empty((H, W))
    B = np.empty((H, W))
    p1 = np.empty((H, W))
    p0 = np.empty((H, W))
    tmp = np.empty((H, W))
    n_ops = ops.shape[0]
    for ia in range(a):
        for jb in range(ia if upper else 0, b):
            acc = 0.0
            for r in range(OH.shape[0]):
                oh, ow = OH[r], OW[r]
                dual = 0
                for o in range(n_ops):
                    code = ops[o, 0]
                    trained = ops[o, 2] != 0
                    th = taps_h[ops[o, 3]:ops[o, 3] + ops[o, 4]]
                    tw = taps_w[ops[o, 5]:ops[o, 5] + ops[o, 6]]
                    if code == OP_STEM:
                        # iv * P_stem <x_p, z_{p+o}>, channels accumulated in order
                        for h in range(H):
                            for w in range(W):
                                hz, wz = wrap(h + oh, H), wrap(w + ow, W)
                                s = xs[ia, h, w, 0] * zs[jb, hz, wz, 0]
                                for ch in range(1, C):
                                    s += xs[ia, h, w, ch] * zs[jb, hz, wz, ch]
                                A[h, w] = s
                        patch(A, G0, tmp, th, tw, H, W)
                        iv = params[o, 0]
                        for h in range(H):
                            for w in range(W):
                                K[h, w] = iv * G0[h, w]
                                T[h, w] = K[h, w] if trained else 0.0
                    elif code == OP_NONLINEAR:
                        dual += 1
                        half = params[o, 1]
                        snap = 0.0 if dual == 1 else snap_unit * (dual + 1)
                        phi(K, VX[dual - 1], VZ[dual - 1], ia, jb, oh, ow, H, W, half, snap, dual == 1,
                            near, xs, zs, fdh, fdw, fsw, p1, p0)
                        if want_ntk:
                            for h in range(H):
                                for w in range(W):
                                    if trained:
                                        A[h, w] = p1[h, w] + p0[h, w] * T[h, w]
                                    else:
                                        A[h, w] = p0[h, w] * T[h, w]
                            patch(A, T, tmp, th, tw, H, W)
                        patch(p1, K, tmp, th, tw, H, W)
                        for h in range(H):
                            for w in range(W):
                                K[h, w] = K[h, w] / half
                                T[h, w] = T[h, w] / half
                    elif code == OP_BLOCK:
                        dual += 1
                        g = params[o, 1]
                        half = params[o, 2]
                        alpha2 = g / half
                        snap = 0.0 if dual == 1 else snap_unit * (dual + 1)
                        patch(K, A, tmp, th, tw, H, W)                   # A = P K
                        phi(A, VX[dual - 1], VZ[dual - 1], ia, jb, oh, ow, H, W, half, snap, dual == 1,
                            near, xs, zs, fdh, fdw, fsw, p1, p0)
                        patch(p1, B, tmp, th, tw, H, W)                  # B = P p1
                        if want_ntk:
                            for h in range(H):
                                for w in range(W):
                                    A[h, w] = T[h, w] + K[h, w]
                            patch(A, p1, tmp, th, tw, H, W)              # p1 := P (T + K)
                            for h in range(H):
                                for w in range(W):
                                    A[h, w] = p0[h, w] * p1[h, w]
                            patch(A, p1, tmp, th, tw, H, W)              # p1 := P (p0 P (T + K))
                            for h in range(H):
                                for w in range(W):
                                    T[h, w] = (T[h, w] + alpha2 * (B[h, w] + p1[h, w])) / (1 + g)
                        for h in range(H):
                            for w in range(W):
                                K[h, w] = (K[h, w] + alpha2 * B[h, w]) / (1 + g)
                    elif code == OP_LINEAR:
                        if want_ntk and trained:
                            for h in range(H):
                                for w in range(W):
                                    T[h, w] = T[h, w] + K[h, w]
                V = T if want_ntk else K
                if readout == 2:
                    acc += V[0, 0]
                elif readout == 1:
                    acc += V.sum() / (H * W)
                else:
                    acc += V.sum()
            out[ia, jb] += acc


class Program:
    """A conv program lowered to arrays for :func:`block`: ``ops`` (n, 7) int64, ``params`` (n, 3)
    float64 and the concatenated tap offsets ``taps_h``, ``taps_w`` (int64)."""

    def __init__(self, ops, params, taps_h, taps_w):
        self.ops, self.params, self.taps_h, self.taps_w = ops, params, taps_h, taps_w


def lower(maps, taps_of) -> Program:
    """Lower kernel maps (:mod:`theory.layers`) to the opcode and parameter arrays of :func:`block`.

    ``taps_of(q)`` gives the (h, w) tap offsets of a q-tap filter on the plan's grid.  Activations
    other than ReLU (engine id 0) raise NotImplementedError (the numpy backend serves them)."""
    from reskernels.theory import layers as _L
    codes = {_L.Stem: OP_STEM, _L.Nonlinear: OP_NONLINEAR, _L.Block: OP_BLOCK, _L.Linear: OP_LINEAR,
             _L.Pool: OP_POOL}
    ops, params, th_all, tw_all = [], [], [], []
    for m in maps:
        code = codes[type(m)]
        act = getattr(m, "activation", None)
        if act is not None and act.engine_id != 0:
            raise NotImplementedError(f"the numba engine has no compiled dual for {act!r}; "
                                      "use backend='numpy'")
        if isinstance(m, _L.Linear) and m.weight_var != 1.0:
            raise NotImplementedError("the numba engine supports a Linear map of weight variance 1 only")
        q = m.stem_size if isinstance(m, _L.Stem) else getattr(m, "filter_size", 1)
        th, tw = taps_of(q)
        trained = int(getattr(m, "trained", True))
        ops.append((code, 0 if act is None else act.engine_id, trained,
                    len(th_all), len(th), len(tw_all), len(tw)))
        th_all += list(th)
        tw_all += list(tw)
        if isinstance(m, _L.Stem):
            params.append((m.input_var, 1.0, 0.0))
        elif isinstance(m, _L.Nonlinear):
            params.append((m.weight_var, m.gain, 0.0))
        elif isinstance(m, _L.Block):
            params.append((m.weight_var, m.gain, m.weight_var * m.activation.second_moment_float))
        else:
            params.append((getattr(m, "weight_var", 1.0), 1.0, 0.0))
    return Program(np.array(ops, dtype=np.int64).reshape(-1, 7), np.array(params, dtype=np.float64).reshape(-1, 3),
                   np.array(th_all, dtype=np.int64), np.array(tw_all, dtype=np.int64))


def fused_block():
    """The compiled block function (compiled, or loaded from numba's cache, on first call)."""
    if numba is None:
        raise ImportError("backend='numba' needs numba (pip install \"reskernels[fast]\" or pip install numba)")
    return block

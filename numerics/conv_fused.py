"""The conv recursion of :mod:`numerics.conv` as one compiled loop (numba; optional accelerator).

The numpy path runs each layer as ~20 whole-tensor passes over (pairs x offsets x positions),
memory-bound.  Here one compiled function carries the H x W grids K, Theta of many (pair, offset)
problems at once through every layer while they sit in cache -- as (H, W, lanes) grids, one
problem per lane, so that every elementwise pass, every tap of the patch operator and the dual
activation itself are contiguous SIMD loops -- then accumulates the readout: the same kernel
maps, lowered to opcode and parameter arrays (:func:`lower`), operation for operation as the numpy
interpreter :mod:`numerics.pixel_maps` (the patch operator's tap order, the dual activation's
operation order, the same dual variances from its diagonal run), so

* the same pixel of the same input still gets rho = 1 *exactly* (exact diagonals);
* first-layer correlations with |rho| > 1 - 1e-4 take theta from half angles of the tap-weighted
  input vectors, deeper ones within a few ulps of +-1 are taken as +-1 (:func:`numerics.pixel_maps.phi`);
* results agree with the numpy path to a few ulps: theta = arccos(rho) comes from the branch-free
  polynomial of :mod:`numerics.fastmath` (<= 1.5 ulps, on SIMD lanes; ``acos="poly"``, the
  default) or from libm's scalar acos (``acos="libm"``, <= 1 ulp, about twice the run time;
  :data:`ACOS`).  Only the arccos differs between the two; arccos(+-1) is exact in both.

The function releases the GIL, so the thread pool of :func:`numerics.tiles.execute` runs tiles in
parallel.  numba is optional (``pip install "reskernels[fast]"``); without it ``backend="auto"``
falls back to numpy.  Compiled code is cached on disk after the first call (a few seconds).
"""
from __future__ import annotations

import math
import os

import numpy as np

from . import fastmath as _fm

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


def _inline(fn):
    """numba.njit inlined at numba's IR level into every caller (no call, no array reference counts
    per entry; a literal argument folds its branch), cached, strict IEEE as :func:`_jit`."""
    if numba is None:
        return fn
    return numba.njit(cache=True, nogil=True, fastmath=False, error_model="numpy", inline="always")(fn)


@_inline
def assign_lanes(ia, t, a, b, upper, R, OH, OW, li, lj, lr, lh, lw, zidx):
    """Lanes from task t of row ia on, continuing into the next rows when a row's tasks run out (row
    ia' has (b - ia') R tasks if ``upper``, else b R; task t = column j0 + t // R, offset t % R), so
    that short rows (one offset: flatten and centre readouts) fill whole lane grids; the padding
    lanes repeat the last task.  Fills the lanes' rows li, columns lj, offset indices lr and offsets
    (lh, lw), and for every entry of the (H, W, NL) grid the flat (column, pixel) index of its z pixel
    (zidx); returns (nl, the row and task where the next chunk starts).  ``a = ia + 1`` keeps the
    chunk within row ia."""
    H, W, NL = zidx.shape
    nl = 0
    while nl < NL and ia < a:
        j0 = ia if upper else 0
        if t >= (b - j0) * R:
            ia += 1
            t = 0
            continue
        li[nl] = ia
        lj[nl] = j0 + t // R
        lr[nl] = t % R
        lh[nl] = OH[t % R]
        lw[nl] = OW[t % R]
        nl += 1
        t += 1
    for l in range(nl, NL):
        li[l], lj[l], lr[l], lh[l], lw[l] = li[nl - 1], lj[nl - 1], lr[nl - 1], lh[nl - 1], lw[nl - 1]
    for h in range(H):
        for w in range(W):
            for l in range(NL):
                zidx[h, w, l] = (lj[l] * H + wrap(h + lh[l], H)) * W + wrap(w + lw[l], W)
    return nl, ia, t


@_inline
def readout_accumulate(V, readout, vals, P, nl, lr, lj, R, out, li, acc):
    """The readout of the first ``nl`` lanes of the (H, W, NL) grid ``V`` into ``out[li[l], lj[l]]``
    (lane l holds a pair of row li[l]): per lane
    the centre value (readout 2) or the sum over positions in position order (as V.sum() of one grid;
    divided by P for flatten, readout 1); then the R offsets of each pair (lane l holds offset lr[l]
    of column lj[l]) accumulated in offset order, as the one-problem loop does.  ``acc`` carries a
    pair's partial sum across lane chunks; returns it."""
    H, W, NL = V.shape
    if readout == 2:
        for l in range(NL):
            vals[l] = V[0, 0, l]
    else:
        for l in range(NL):
            vals[l] = 0.0
        for h in range(H):
            for w in range(W):
                for l in range(NL):
                    vals[l] += V[h, w, l]
        if readout == 1:
            for l in range(NL):
                vals[l] = vals[l] / P
    for l in range(nl):
        if lr[l] == 0:
            acc = 0.0
        acc += vals[l]
        if lr[l] == R - 1:
            out[li[l], lj[l]] += acc
    return acc


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
    """dst = mean over taps of src shifted along h (``along_h``) or w, on every lane at once,
    rounded as numpy's _mean_shifts: ((src + src_{d1}) + src_{d2} + ...) * (1/q), the centre
    first, then the taps in order.  The innermost axis is the lane axis: each output row of lanes
    is finished while it sits in L1, every tap a contiguous SIMD loop without index wrapping."""
    NL = src.shape[2]
    inv = 1.0 / taps.shape[0]
    for h in range(H):
        for w in range(W):
            for l in range(NL):
                dst[h, w, l] = src[h, w, l]
            for d in taps:
                if d == 0:
                    continue
                hh = wrap(h + d, H) if along_h else h
                ww = w if along_h else wrap(w + d, W)
                for l in range(NL):
                    dst[h, w, l] += src[hh, ww, l]
            for l in range(NL):
                dst[h, w, l] *= inv


@_jit
def patch(src, dst, tmp, th, tw, H, W):
    """dst = P src (separable: along h, then along w; a single tap is a copy)."""
    if th.shape[0] == 1 and tw.shape[0] == 1:
        dst[:, :, :] = src
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


@_inline
def snap_width(dual, snap_unit):
    """How close to +-1 the dual-th dual layer's rho snaps to +-1: not at the first (its near-parallel
    entries take half angles instead), (dual + 1) snap_unit after it (rounding grows with depth).
    Shared by the CPU loop and the CUDA kernel (numerics.conv_cuda)."""
    return 0.0 if dual == 1 else snap_unit * (dual + 1)


@_inline
def relu_family(sn, c, pt, g, half, leaky, wl, tl, dl):
    """(p1, p0) of one entry of ReLU, or of leaky ReLU / abs (``leaky``; (wl, tl, dl) = (w, 2 s,
    1 + s^2)), from sn = sin theta, c = cos theta = rho and pt = pi - theta: pi kappa1 = sn + pt c,
    leaky (w pi kappa1 + 2 s pi c) / (1 + s^2) and (w pt + 2 s pi) / (1 + s^2); p1 = half g kappa1,
    p0 = half pt / pi (numerics.pixel_maps.phi's operations in its order).  Shared by the CPU loop
    (:func:`phi`) and the CUDA kernel (numerics.conv_cuda)."""
    k = sn
    k += pt * c
    if leaky:
        k = (k * wl + tl * math.pi * c) / dl
        pt = (pt * wl + tl * math.pi) / dl
    k /= math.pi
    k *= g
    k *= half
    return k, pt * (half / math.pi)


@_jit
def phi(M, VXl, VZl, li, lj, lh, lw, zidx, nl, H, W, half, snap, first, near, xs, zs, fdh, fdw, fsw, p1, p0, G,
        poly, eid, ap):
    """(Phi1, Phi0) of the lane grids M for ReLU (engine id 0) or leaky ReLU / abs (engine id 1,
    ``ap`` = (w, 2 s, 1 + s^2): pi kappa1 = (w k + 2 s pi rho) / (1 + s^2), pi - theta' =
    (w (pi - theta) + 2 s pi) / (1 + s^2) from ReLU's k = sqrt(1 - rho^2) + (pi - theta) rho, as its
    ``from_rho`` / ``from_theta`` hooks), as numerics.pixel_maps.phi (same operation order per entry);
    ``half`` = c m2 is the gain of the dual activation's weight layer;
    lane l is the pair (li[l], lj[l]) at offset (lh[l], lw[l]), lanes >= nl are padding; ``zidx``
    holds the flat index into VZl of the pixel paired with each entry.

    Three passes: the variance products of each lane's pixels (a gather along the offset), then
    one branch-free loop over all entries that the compiler runs on SIMD lanes -- theta by
    :func:`numerics.fastmath.acos` (``poly``) or by libm's scalar acos (``poly`` False: the
    bits of the numpy path's operations with libm) -- and, at the first layer only, a pass that
    overwrites the near-parallel entries by their half-angle theta."""
    NL = M.shape[2]
    vz = VZl.reshape(VZl.size)
    if li[0] == li[NL - 1]:                # one row (lanes are in row order): x's variance broadcast
        for h in range(H):
            for w in range(W):
                vx = VXl[li[0], h, w]
                for l in range(NL):
                    G[h, w, l] = vx * vz[zidx[h, w, l]]
    else:
        for h in range(H):
            for w in range(W):
                for l in range(NL):
                    G[h, w, l] = VXl[li[l], h, w] * vz[zidx[h, w, l]]
    n = H * W * NL
    Mf = M.reshape(n)
    Gf = G.reshape(n)
    k1f = p1.reshape(n)
    k0f = p0.reshape(n)
    snapping = snap > 0
    lim = 1.0 - snap
    far = 1.0 - near if first else 2.0     # first layer: count the near-parallel entries
    near_count = 0
    leaky = eid == 1
    wl, tl, dl = (ap[0], ap[1], ap[2]) if leaky else (1.0, 0.0, 1.0)
    if poly:
        for i in range(n):
            g = math.sqrt(Gf[i])
            rho = Mf[i] / g if g > 0 else 0.0
            rho = 1.0 if rho > 1.0 else rho
            rho = -1.0 if rho < -1.0 else rho
            near_count += 1 if (g > 0 and abs(rho) > far) else 0
            rho = math.copysign(1.0, rho) if snapping and abs(rho) > lim else rho
            k1f[i], k0f[i] = relu_family(math.sqrt(1.0 - rho * rho), rho, math.pi - _fm.acos(rho), g, half,
                                         leaky, wl, tl, dl)
    else:
        for i in range(n):
            g = math.sqrt(Gf[i])
            rho = Mf[i] / g if g > 0 else 0.0
            rho = 1.0 if rho > 1.0 else rho
            rho = -1.0 if rho < -1.0 else rho
            near_count += 1 if (g > 0 and abs(rho) > far) else 0
            rho = math.copysign(1.0, rho) if snapping and abs(rho) > lim else rho
            k1f[i], k0f[i] = relu_family(math.sqrt(1.0 - rho * rho), rho, math.pi - math.acos(rho), g, half,
                                         leaky, wl, tl, dl)
    if near_count == 0:
        return
    for h in range(H):
        for w in range(W):
            for l in range(nl):
                g = math.sqrt(G[h, w, l])
                if not g > 0:
                    continue
                rho = M[h, w, l] / g
                rho = 1.0 if rho > 1.0 else rho
                rho = -1.0 if rho < -1.0 else rho
                if abs(rho) > 1.0 - near:
                    th = half_angle_theta(xs, zs, li[l], lj[l], h, w, lh[l], lw[l], fdh, fdw, fsw, H, W)
                    p1[h, w, l], p0[h, w, l] = relu_family(math.sin(th), math.cos(th), math.pi - th, g, half,
                                                           leaky, wl, tl, dl)


# opcodes of the lowered program (one per kernel-map type of theory.layers)
OP_STEM, OP_NONLINEAR, OP_BLOCK, OP_LINEAR, OP_POOL = 0, 1, 2, 3, 4

#: entries (positions x lanes) of one lane grid: nine of them stay in L2 (8 x 8 images: 64 lanes)
LANE_ENTRIES = 4096


@_jit
def block(xs, zs, OH, OW, VX, VZ, ops, params, taps_h, taps_w, fdh, fdw, fsw, want_ntk, readout,
          snap_unit, near, upper, out, aparams, poly):
    """out[ia, jb] += readout of the program for every pair of (xs, zs) and every offset
    (``upper``: only jb >= ia, for a diagonal tile of a symmetric Gram matrix).

    ``ops[o]`` = (opcode, activation id, trained, h-taps start, h-taps count, w-taps start,
    w-taps count) and ``params[o]`` = (input_var or weight_var c, gain, c m2) of the o-th kernel map,
    ``aparams[o]`` its activation's engine_params (:func:`lower`); each opcode is interpreted by one branch below.  ``poly``: theta by the
    polynomial arccos of :mod:`numerics.fastmath` (SIMD), else by libm's acos (see :func:`fused_block`).

    The grids are (H, W, lanes): for one ia, the (jb, offset) problems are taken in order, up to
    NL at a time, one per lane, so that every elementwise pass and every tap of the patch operator
    is a contiguous loop over lanes.  Where a row's problems run out, the chunk continues into the
    next rows (:func:`assign_lanes`) and the x side is gathered per lane (a chunk within one row
    broadcasts it), so that short rows do not leave lanes idle (flatten and centre readouts have one
    offset a pair: at n = 256 a quarter of the lanes had been padding).  Each entry sees the
    operations of the one-problem loop in the same order, and the readout sums each lane's grid in
    position order and the offsets of a pair in offset order, so the lane layout changes no bit."""
    a, H, W, C = xs.shape
    b = zs.shape[0]
    R = OH.shape[0]
    P = H * W
    NL = max(1, min(LANE_ENTRIES // P, 64, b * R))
    if NL >= 8:
        NL -= NL % 8
    G0 = np.empty((H, W, NL))
    K = np.empty((H, W, NL))
    T = np.empty((H, W, NL))
    A = np.empty((H, W, NL))
    B = np.empty((H, W, NL))
    p1 = np.empty((H, W, NL))
    p0 = np.empty((H, W, NL))
    tmp = np.empty((H, W, NL))
    Gv = np.empty((H, W, NL))
    Kf, Tf, Af, Bf, G0f = K.reshape(-1), T.reshape(-1), A.reshape(-1), B.reshape(-1), G0.reshape(-1)
    p1f, p0f = p1.reshape(-1), p0.reshape(-1)
    n = P * NL
    li = np.zeros(NL, dtype=np.int64)
    lj = np.zeros(NL, dtype=np.int64)
    lr = np.zeros(NL, dtype=np.int64)
    lh = np.zeros(NL, dtype=np.int64)
    lw = np.zeros(NL, dtype=np.int64)
    vals = np.empty(NL)
    zidx = np.empty((H, W, NL), dtype=np.int64)     # flat (jb, pixel) index of each entry's z pixel
    zflat = zs.reshape(zs.size)
    xflat = xs.reshape(xs.size)
    n_ops = ops.shape[0]
    ia, t0 = 0, 0
    acc = 0.0
    while ia < a:
        # the next NL problems in row order (a chunk crosses into the next row where one runs out)
        nl, ia_next, t_next = assign_lanes(ia, t0, a, b, upper, R, OH, OW, li, lj, lr, lh, lw, zidx)
        if nl == 0:
            break
        one_row = li[0] == li[NL - 1]
        dual = 0
        for o in range(n_ops):
            code = ops[o, 0]
            trained = ops[o, 2] != 0
            th = taps_h[ops[o, 3]:ops[o, 3] + ops[o, 4]]
            tw = taps_w[ops[o, 5]:ops[o, 5] + ops[o, 6]]
            if code == OP_STEM:
                # iv * P_stem <x_p, z_{p+o}>, channels accumulated in order
                if one_row:
                    ix = li[0]
                    for h in range(H):
                        for w in range(W):
                            for l in range(NL):
                                q = zidx[h, w, l] * C
                                s = xs[ix, h, w, 0] * zflat[q]
                                for ch in range(1, C):
                                    s += xs[ix, h, w, ch] * zflat[q + ch]
                                A[h, w, l] = s
                else:
                    for h in range(H):
                        for w in range(W):
                            for l in range(NL):
                                q = zidx[h, w, l] * C
                                qx = ((li[l] * H + h) * W + w) * C
                                s = xflat[qx] * zflat[q]
                                for ch in range(1, C):
                                    s += xflat[qx + ch] * zflat[q + ch]
                                A[h, w, l] = s
                patch(A, G0, tmp, th, tw, H, W)
                iv = params[o, 0]
                for i in range(n):
                    Kf[i] = iv * G0f[i]
                    Tf[i] = Kf[i] if trained else 0.0
            elif code == OP_NONLINEAR:
                dual += 1
                half = params[o, 1]
                snap = snap_width(dual, snap_unit)
                phi(K, VX[dual - 1], VZ[dual - 1], li, lj, lh, lw, zidx, nl, H, W, half, snap, dual == 1,
                    near, xs, zs, fdh, fdw, fsw, p1, p0, Gv, poly, ops[o, 1], aparams[o])
                if want_ntk:
                    if trained:
                        for i in range(n):
                            Af[i] = p1f[i] + p0f[i] * Tf[i]
                    else:
                        for i in range(n):
                            Af[i] = p0f[i] * Tf[i]
                    patch(A, T, tmp, th, tw, H, W)
                patch(p1, K, tmp, th, tw, H, W)
                for i in range(n):
                    Kf[i] = Kf[i] / half
                    Tf[i] = Tf[i] / half
            elif code == OP_BLOCK:
                dual += 1
                g = params[o, 1]
                half = params[o, 2]
                alpha2 = g / half
                snap = snap_width(dual, snap_unit)
                patch(K, A, tmp, th, tw, H, W)                   # A = P K
                phi(A, VX[dual - 1], VZ[dual - 1], li, lj, lh, lw, zidx, nl, H, W, half, snap, dual == 1,
                    near, xs, zs, fdh, fdw, fsw, p1, p0, Gv, poly, ops[o, 1], aparams[o])
                patch(p1, B, tmp, th, tw, H, W)                  # B = P p1
                if want_ntk:
                    for i in range(n):
                        Af[i] = Tf[i] + Kf[i]
                    patch(A, p1, tmp, th, tw, H, W)              # p1 := P (T + K)
                    for i in range(n):
                        Af[i] = p0f[i] * p1f[i]
                    patch(A, p1, tmp, th, tw, H, W)              # p1 := P (p0 P (T + K))
                    for i in range(n):
                        Tf[i] = (Tf[i] + alpha2 * (Bf[i] + p1f[i])) / (1 + g)
                for i in range(n):
                    Kf[i] = (Kf[i] + alpha2 * Bf[i]) / (1 + g)
            elif code == OP_LINEAR:
                if want_ntk and trained:
                    for i in range(n):
                        Tf[i] = Tf[i] + Kf[i]
        acc = readout_accumulate(T if want_ntk else K, readout, vals, P, nl, lr, lj, R, out, li, acc)
        ia, t0 = ia_next, t_next


class Program:
    """A conv program lowered to arrays for :func:`block`: ``ops`` (n, 7) int64, ``params`` (n, 3)
    float64, ``aparams`` (n, 5) float64 (each map's activation's engine_params, zero-padded) and the
    concatenated tap offsets ``taps_h``, ``taps_w`` (int64)."""

    def __init__(self, ops, params, taps_h, taps_w, aparams=None):
        self.ops, self.params, self.taps_h, self.taps_w = ops, params, taps_h, taps_w
        self.aparams = np.zeros((ops.shape[0], APARAMS)) if aparams is None else aparams


#: columns of Program.aparams: the longest engine_params of theory.activations.ENGINE_IDS
APARAMS = 5
#: engine ids of the normalised loop (:func:`phi`): ReLU and leaky ReLU / abs
NORMALISED_IDS = frozenset((0, 1))


def lower(maps, taps_of) -> Program:
    """Lower kernel maps (:mod:`theory.layers`) to the opcode and parameter arrays of :func:`block`.

    ``taps_of(q)`` gives the (h, w) tap offsets of a q-tap filter on the plan's grid.  Activations
    other than ReLU and leaky ReLU (engine ids 0, 1) raise NotImplementedError (the variance-carrying
    loop of :mod:`numerics.conv_fused_general` or the numpy backend serves them)."""
    from reskernels.theory import layers as _L
    codes = {_L.Stem: OP_STEM, _L.Nonlinear: OP_NONLINEAR, _L.Block: OP_BLOCK, _L.Linear: OP_LINEAR,
             _L.Pool: OP_POOL}
    ops, params, th_all, tw_all, aparams = [], [], [], [], []
    for m in maps:
        code = codes[type(m)]
        act = getattr(m, "activation", None)
        if act is not None and act.engine_id not in NORMALISED_IDS:
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
        ep = () if act is None else act.engine_params
        aparams.append(tuple(ep) + (0.0,) * (APARAMS - len(ep)))
        if isinstance(m, _L.Stem):
            params.append((m.input_var, 1.0, 0.0))
        elif isinstance(m, _L.Nonlinear):
            params.append((m.weight_var, m.gain, 0.0))
        elif isinstance(m, _L.Block):
            params.append((m.weight_var, m.gain, m.weight_var * m.activation.second_moment_float))
        else:
            params.append((getattr(m, "weight_var", 1.0), 1.0, 0.0))
    return Program(np.array(ops, dtype=np.int64).reshape(-1, 7), np.array(params, dtype=np.float64).reshape(-1, 3),
                   np.array(th_all, dtype=np.int64), np.array(tw_all, dtype=np.int64),
                   np.array(aparams, dtype=np.float64).reshape(-1, APARAMS))


#: theta in the compiled loop: "poly" (:func:`numerics.fastmath.acos` on SIMD lanes, <= 1.5 ulps;
#: the default) or "libm" (scalar libm acos, <= 1 ulp: the bits of the numba data in
#: tests/golden).  The same switch picks the other activations' transcendentals in the loops of
#: :mod:`numerics.conv_fused_general` and :mod:`numerics.fc_fused` (arcsin for erf, expm1 for sin
#: and cos: numerics.fastmath's polynomials, or libm's).  The environment variable RESKERNELS_ACOS sets it per process.
ACOS = os.environ.get("RESKERNELS_ACOS", "poly")


def fused_block(acos: str | None = None):
    """The compiled block function (compiled, or loaded from numba's cache, on first call), with
    theta by ``acos`` ("poly" or "libm"; default :data:`ACOS`) bound as its last argument."""
    if numba is None:
        raise ImportError("backend='numba' needs numba (pip install \"reskernels[fast]\" or pip install numba)")
    mode = ACOS if acos is None else acos
    if mode not in ("poly", "libm"):
        raise ValueError(f"acos must be 'poly' or 'libm', got {mode!r}")
    poly = mode == "poly"

    def run(*args):
        return block(*args, poly)
    return run

"""The conv recursion of :mod:`numerics.conv` as one compiled loop (numba; optional accelerator).

The numpy path runs each layer as ~20 whole-tensor passes over (pairs x offsets x positions),
memory-bound.  Here one compiled function takes a pair of inputs and an offset r and carries the
H x W grids K, Theta through every layer while they sit in L1 cache, then accumulates the readout:
the same recursion, operation for operation (the patch operator's tap order, the dual activation's
operation order, the same pixel variances from :func:`numerics.conv._variances`), so

* the same pixel of the same input still gets rho = 1 *exactly* (exact diagonals);
* first-layer correlations with |rho| > 1 - 1e-4 take theta from half angles of the tap-weighted
  input vectors, deeper ones within a few ulps of +-1 are taken as +-1 (:func:`numerics.conv._phi`);
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
def phi(M, VXl, VZl, ia, jb, oh, ow, H, W, c, snap, first, near, xs, zs, fdh, fdw, fsw, p1, p0):
    """(Phi1, Phi0) of the grid M, as numerics.conv._phi (same operation order)."""
    half = c / 2
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

@_jit
def block(xs, zs, OH, OW, VX, VZ, th, tw, tsh, tsw, fdh, fdw, fsw, gains, is_res, depth, c, iv,
          hidden, want_ntk, readout, snap_unit, near, upper, out):
    """out[ia, jb] += readout of the recursion for every pair of (xs, zs) and every offset
    (``upper``: only jb >= ia, for a diagonal tile of a symmetric Gram matrix)."""
    a, H, W, C = xs.shape
    b = zs.shape[0]
    half = c / 2
    G0 = np.empty((H, W))
    K = np.empty((H, W))
    T = np.empty((H, W))
    A = np.empty((H, W))
    B = np.empty((H, W))
    p1 = np.empty((H, W))
    p0 = np.empty((H, W))
    tmp = np.empty((H, W))
    for ia in range(a):
        for jb in range(ia if upper else 0, b):
            acc = 0.0
            for r in range(OH.shape[0]):
                oh, ow = OH[r], OW[r]
                # stem: iv * P_stem <x_p, z_{p+o}>, channels accumulated in order
                for h in range(H):
                    for w in range(W):
                        hz, wz = wrap(h + oh, H), wrap(w + ow, W)
                        s = xs[ia, h, w, 0] * zs[jb, hz, wz, 0]
                        for ch in range(1, C):
                            s += xs[ia, h, w, ch] * zs[jb, hz, wz, ch]
                        A[h, w] = s
                patch(A, G0, tmp, tsh, tsw, H, W)
                for h in range(H):
                    for w in range(W):
                        K[h, w] = iv * G0[h, w]
                        T[h, w] = 0.0 if hidden else K[h, w]
                if not is_res:
                    for l in range(1, depth + 1):
                        snap = 0.0 if l == 1 else snap_unit * (l + 1)
                        phi(K, VX[l - 1], VZ[l - 1], ia, jb, oh, ow, H, W, c, snap, l == 1, near,
                            xs, zs, fdh, fdw, fsw, p1, p0)
                        last = l == depth
                        if want_ntk:
                            for h in range(H):
                                for w in range(W):
                                    if hidden and last:
                                        A[h, w] = p0[h, w] * T[h, w]
                                    else:
                                        A[h, w] = p1[h, w] + p0[h, w] * T[h, w]
                            if last:
                                T[:, :] = A
                            else:
                                patch(A, T, tmp, th, tw, H, W)
                        if last:
                            K[:, :] = p1
                        else:
                            patch(p1, K, tmp, th, tw, H, W)
                        for h in range(H):
                            for w in range(W):
                                K[h, w] = K[h, w] / half
                                T[h, w] = T[h, w] / half
                else:
                    for l in range(1, depth + 1):
                        snap = 0.0 if l == 1 else snap_unit * (l + 1)
                        patch(K, A, tmp, th, tw, H, W)                   # A = P K
                        phi(A, VX[l - 1], VZ[l - 1], ia, jb, oh, ow, H, W, c, snap, l == 1, near,
                            xs, zs, fdh, fdw, fsw, p1, p0)
                        g = gains[l - 1]
                        alpha2 = g / half
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
                    if want_ntk and not hidden:
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



def fused_block():
    """The compiled block function (compiled, or loaded from numba's cache, on first call)."""
    if numba is None:
        raise ImportError("backend='numba' needs numba (pip install \"reskernels[fast]\" or pip install numba)")
    return block

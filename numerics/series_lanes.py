"""Hermite-series duals on SIMD lanes: the per-entry rule of :func:`numerics.hermite.series` for the
compiled loops.

An entry (qx, qz, S) of a dual without a closed form (tanh, GELU, user functions) is

    E[f(u) f(v)] = sum_k a_k(qx) a_k(qz) rho^k,   rho = S / sqrt(qx qz)  (Mehler),

summed by Horner's rule to the least degree K with |rho|^(K+1) sqrt(T_K(qx)) sqrt(T_K(qz)) <=
2^-53 sqrt(m2(qx) m2(qz)) (T_K the tail of the squared coefficients past K, m2 = E[f^2]; a zero
bound ends the series there); the pairs (x, x), S = qx = qz bit for bit, take the one-dimensional
second moment, and an entry without such a degree among the tabled ones is flagged (its value nan).
The coefficient tables come from :class:`numerics.fc_series.Tables` (flat ``a`` and ``tail``, one
row per distinct variance: ``off``, ``kc``, ``m2``, ``diag``).

Two drivers share the rule and its lane helpers: :func:`series_dual`, the FC loop's
(:func:`numerics.fc_fused.general_block`: one row against 64 columns whose coefficients lie on
contiguous lanes, :func:`numerics.fc_series.column_tables`), and :func:`series_dual_gathered`, the
conv loop's (:func:`numerics.conv_fused_general.block`: one pixel of one row against 64 lanes of
other inputs' pixels, their coefficients gathered from the flat tables per degree).  The search and
the sums are :func:`numerics.hermite.degree_step` and :func:`numerics.hermite.horner_step`, the
interpreter's own lanes: per entry the same operations, so the same bits on the same tables.

The compiled loops compile these helpers in (and :func:`numerics.rho_tables.series_rest` calls
:func:`series_dual_gathered`); numba's on-disk cache keys each function on its own file, so after
editing this module change those modules' contents too (numerics/fc_fused.py,
numerics/conv_fused_general.py, numerics/rho_tables.py).
"""
from __future__ import annotations

import math

from . import hermite as _hermite
from .conv_fused import _inline, _jit
from .hermite import degree_step, horner_step

_TAIL_RTOL = _hermite.TAIL_RTOL

#: most degrees a table row keeps (entries whose least degree is larger are flagged: the
#: interpreter recomputes their pairs); the interpreter's entries needed at most 121 on FC
#: ResNet(10, 0.5) tanh, n = 1000 (numerics/hermite.py)
STORE_DEGREES = 160

#: degrees the lanes of :func:`series_dual` hold per column (:func:`numerics.fc_series.column_tables`): every stored one
LANE_DEGREES = STORE_DEGREES + 1


@_inline
def series_start(qx, QZ, S, rho, ar, kind, n):
    """Per lane l < n: rho = S / sqrt(qx qz) clipped to [-1, 1], ar = |rho|, and the entry's kind,
    shared by both functions: -3 the pair (x, x) (S == qx == qz), -2 nothing certifiable (qx qz
    overflows, or S is nan: a lane whose pair an earlier dual flagged), -1 searching."""
    for l in range(n):
        qz = QZ[l]
        pq = qx * qz
        g = math.sqrt(pq)
        r = S[l] / g if g > 0.0 else 0.0
        rho[l] = min(max(r, -1.0), 1.0)
        ar[l] = abs(rho[l])
        same = (S[l] == qx) & (qx == qz)
        kind[l] = -3.0 if same else (-1.0 if (pq < math.inf) & (S[l] == S[l]) else -2.0)


@_inline
def series_targets(m2x, m2f, RZ, thr, p, ar, kind, kf, n):
    """Per lane: the truncation target thr = 2^-53 sqrt(m2(qx) m2(qz)) (``m2f`` the function's row of
    second moments, RZ the lanes' table rows), p = |rho| (|rho|^(k+1) at k = 0), and the lane's
    degree kf: its kind, or -2 where the target overflows (it certifies nothing: the interpreter's
    rule, numerics/hermite.py)."""
    for l in range(n):
        t = _TAIL_RTOL * math.sqrt(m2x * m2f[RZ[l]])
        thr[l] = t
        p[l] = ar[l]
        k0 = kind[l]
        kf[l] = k0 if k0 != -1.0 else (-1.0 if (t >= 0.0) & (t < math.inf) else -2.0)


@_inline
def horner_start(kf, acc, n):
    """Zero the lanes' Horner sums; returns the largest degree a lane found (where the sums start)."""
    kmax = -1.0
    for l in range(n):
        kmax = max(kmax, kf[l])
        acc[l] = 0.0
    return kmax


@_inline
def series_store(kf, acc, E, flag, dx, n):
    """E[l] = the lane's Horner sum where it found a degree, the row's second moment ``dx`` on the
    pairs (x, x), else nan with flag[l] = 1."""
    for l in range(n):
        kl = kf[l]
        if kl >= 0.0:
            E[l] = acc[l]
        elif kl == -3.0:
            E[l] = dx
        else:
            E[l] = math.nan
            flag[l] = 1


@_jit
def series_dual(rx, RZ, qx, QZ, S, E1, E0, flag, want_ntk, off, kc, m2, diag, a, tail, ZA, ZT, s0, jz,
                rho, thr, p, kf, acc, kind, ar):
    """E1[l], E0[l] of the SERIES dual at the entries (qx, QZ[l], S[l]) whose variances have table rows
    rx and RZ[l] (the module's rule; the derivative's series for the NTK, else E0 = 0), the columns'
    coefficients and bounds on contiguous lanes ZA[s0 + f, k, jz + l], ZT[s0 + f, k, jz + l]
    (:func:`numerics.fc_series.column_tables`).  flag[l] = 1 where an entry is not certified (then
    nan).  ``rho``, ``thr``, ``p``, ``kf``, ``acc``, ``kind``, ``ar``: scratch lanes."""
    n = S.shape[0]
    W = ZA.shape[1]
    series_start(qx, QZ, S, rho, ar, kind, n)
    for f in range(2 if want_ntk else 1):
        E = E1 if f == 0 else E0
        sf = s0 + f
        ox = off[f, rx]
        kx = kc[f, rx]
        series_targets(m2[f, rx], m2[f], RZ, thr, p, ar, kind, kf, n)
        for k in range(W):
            ti = tail[ox + k] if k <= kx else math.inf
            if not degree_step(ti, float(k), ZT[sf, k, jz:jz + n], thr, p, ar, kf, n):
                break
        kmax = horner_start(kf, acc, n)
        for k in range(int(kmax), -1, -1):
            horner_step(a[ox + k] if k <= kx else 0.0, float(k), ZA[sf, k, jz:jz + n], rho, acc, kf, n)
        series_store(kf, acc, E, flag, diag[f, rx], n)
    if not want_ntk:
        E0[:n] = 0.0


@_jit
def series_dual_gathered(rx, RZ, qx, QZ, S, E1, E0, flag, want_ntk, off, kc, m2, diag, a, tail, W,
                         oz, kz, tz, rho, thr, p, kf, acc, kind, ar):
    """:func:`series_dual` with each lane's coefficients and bounds read from the flat tables (``a``,
    ``tail`` at ``off[f, RZ[l]] + k``, past ``kc[f, RZ[l]]`` 0 and an infinite bound) into the
    scratch lane ``tz`` one degree at a time, degrees k < ``W``: the conv loop's lanes hold other
    inputs' pixels, not columns with tables of their own.  ``oz``, ``kz``: int64 scratch lanes."""
    n = S.shape[0]
    series_start(qx, QZ, S, rho, ar, kind, n)
    for f in range(2 if want_ntk else 1):
        E = E1 if f == 0 else E0
        ox = off[f, rx]
        kx = kc[f, rx]
        for l in range(n):
            oz[l] = off[f, RZ[l]]
            kz[l] = kc[f, RZ[l]]
        series_targets(m2[f, rx], m2[f], RZ, thr, p, ar, kind, kf, n)
        for k in range(W):
            ti = tail[ox + k] if k <= kx else math.inf
            for l in range(n):
                tz[l] = tail[oz[l] + k] if k <= kz[l] else math.inf
            if not degree_step(ti, float(k), tz, thr, p, ar, kf, n):
                break
        kmax = horner_start(kf, acc, n)
        for k in range(int(kmax), -1, -1):
            for l in range(n):
                tz[l] = a[oz[l] + k] if k <= kz[l] else 0.0
            horner_step(a[ox + k] if k <= kx else 0.0, float(k), tz, rho, acc, kf, n)
        series_store(kf, acc, E, flag, diag[f, rx], n)
    if not want_ntk:
        E0[:n] = 0.0

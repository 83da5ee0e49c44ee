"""Hermite-series duals tabulated in rho where a dual's variances are equal (issue 15).

Where every input meets a dual with the same variance q -- inputs on a sphere, the papers' setting,
or images whose pixels all lie on the sphere of their channels (the multi-sphere) -- an entry of a SERIES dual (tanh, GELU, user functions) is a function of the correlation alone,

    P(rho) = sum_{k <= K} c_k rho^k + R_K(rho),   c_k = a_k(q)^2 >= 0,   |R_K| <= |rho|^(K+1) T_K

(Mehler; a_k, K and the tail bound sqrt(T_K) the row's coefficient table,
:class:`numerics.fc_series.Tables`, or its rows past the stored degrees, below).  The per-entry series of :mod:`numerics.series_lanes` sums a
degree chosen per entry, and a 64-entry lane block runs to its largest degree (up to 160 near
|rho| = 1); here the polynomial is re-expanded once per Gram matrix on :data:`RHO_PANELS` panels of
[-1, 1] of half width t = 1 / RHO_PANELS, centres c_p = -1 + (2 p + 1) t,

    P(rho) = sum_{j <= M} d_j(c_p) (rho - c_p)^j + rem,   d_j(x) = sum_k c_k binom(k, j) x^(k - j),

M_p <= :data:`RHO_DEGREE` per panel (the least that certifies it; its coefficients past M_p are zero),
so that an entry costs one panel index and M + 1 Horner steps, M the largest M_p among the lanes of
its block -- the zeros leave each lane's value that of its own panel's degree, bit for bit, so the
value does not depend on the block (the tiles).  Since 2026-12-03; before, every panel of a table
took the table's degree, the least that certifies as many panels as the largest (:data:`PER_PANEL`
False: the same bits as then).  tanh at input_var = 1 on the sphere: mostly 5 per panel, 6-8 near
|rho| = 1, against 6-8 per table.
The remainder is bounded by Taylor's theorem on the nonnegative coefficients: |d_j(c)| <= d_j(|c|),
and sum_{j > M} d_j(|c|) t^j <= d_{M+1}(|c| + t) t^(M+1) (d_{M+1} is nondecreasing on [0, 1]).  A panel is *certified* when

    d_{M+1}(|c_p| + t) t^(M+1) + (|c_p| + t)^(K+1) T_K <= 2^-53 m2

-- the per-entry series' own target (:data:`numerics.hermite.TAIL_RTOL` sqrt(m2(q) m2(q))) with
the re-expansion's remainder added.  Lane by lane: a lane whose column reads other tables, in an
uncertified panel (near |rho| = 1 at large variances) or with a nan S runs the per-entry series,
compacted (:func:`series_rest`: :func:`numerics.series_lanes.series_dual_gathered`, per entry the
same bits as the FC driver), which flags what it cannot certify -- so an entry's route depends on
its own pair only, not on its block; a block with no lane for the tables runs the per-entry series
whole; the pairs (x, x) (S == q bit for bit) take the row's one-dimensional second moment, as there.

The coefficients d_j come from repeated synthetic division (Horner's Taylor shift, M + 2 passes of
K multiply-adds per centre); at c >= 0 every term is nonnegative.  Rounding: d_j(c) within ~K eps
d_j(|c|), the Horner steps in |rho - c| <= t within ~eps of d_0; so an entry is within a few eps
of m2 of the per-entry series where that series is certified (tests/numerics/test_rho_tables.py
measures it), not bit for bit.

The series keeps :data:`numerics.series_lanes.STORE_DEGREES` = 160 degrees, and at large variances
(tanh at q ~ 2-5) their tail (|c| + t)^(K+1) T_K alone exceeds the target on the panels of
|rho| >~ 0.9.  There the uncertified panels are expanded again from every degree the coefficient
ladder resolved (up to 480, kept for such rows in :attr:`numerics.fc_series.Tables.full`), each at
its own least degree up to :data:`RHO_DEGREE` (paid only by the lane blocks that reach such a panel;
with :data:`PER_PANEL` False, at no higher a degree than the table's, which every entry pays), and
take those coefficients where that certifies them: tanh at q ~ 2-5 from 86-94% of the panels to
97-100% (93-100% at the table's degree).  Such a panel's entries are within the target of the polynomial of
the higher degree, not of the 160-degree series, which does not certify them.  The other panels,
and tables the stored degrees certify whole, keep their coefficients bit for bit.

Inputs normalised in floating point have |x|^2 = 1 only within a few ulps, so their variances are
distinct numbers: variances within :data:`CLUSTER_RTOL` of each other share the table of the
middle one when every pair's coefficient products stay within :data:`DEVIATION_RTOL` m2 of its
squares, sum_k |a_k(x) a_k(z) - a_k(q)^2| (:func:`_deviation`: the most an entry can move at any
|rho| <= 1; measured 0.02-7 eps on ResNet(10) tanh on the sphere -- the Hermite coefficients'
own rounding, not the variance).  So an entry of the table's own variance is within the series'
target of its truncated series, and an entry of another variance of the run within the target plus
that deviation, at most (1 + 32) 2^-53 m2.  A dual with more than :data:`RHO_ROWS` such runs gets
no tables.

Read by the FC loop (:func:`numerics.fc_fused.general_block`, per 64-pair lane block) and the conv
loop (:func:`numerics.conv_fused_general.series_pixels`, per pixel of a row against 64 lanes); both
compile :func:`rho_dual` in: after editing it, change those modules' contents too (numba's cache is
keyed on each file's own contents).
"""
from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

from . import hermite as _hermite
from .conv_fused import _inline, _jit
from .series_lanes import series_dual_gathered

#: panels of [-1, 1] (a power of two: the centres -1 + (2 p + 1) / RHO_PANELS are exact)
RHO_PANELS = 512
#: largest degree of a table's polynomials in rho - c_p (each panel uses its own least certifying one)
RHO_DEGREE = 8
#: each panel at its own least certifying degree (a lane block runs Horner's rule to its lanes' largest);
#: False: every panel of a table at the table's degree (the tables until 2026-12-03; kept for comparison)
PER_PANEL = True


def table_format():
    """What a stored job's block format says of the tables (numerics.tiles: a store written with other
    tables is refused, not mixed): their values differ by a few ulps between the two kinds."""
    return ", a degree per panel" if PER_PANEL else ""


#: most tables (runs of :func:`clusters`) per dual and function (one table: 512 x 9 floats)
RHO_ROWS = 8
#: variances within this relative distance share a table (inputs normalised in floating point:
#: |x|^2 = 1 within a few ulps) ...
CLUSTER_RTOL = 16 * 2.0 ** -52
#: ... when their coefficient rows stay within this many m2 of the table's (:func:`_deviation`)
DEVIATION_RTOL = 32 * 2.0 ** -53

_TAIL_RTOL = _hermite.TAIL_RTOL


@_jit
def taylor_coefficients(c, x, J, out):
    """out[j, p] = d_j(x[p]) = sum_k c[k] binom(k, j) x[p]^(k - j), j < J (the Taylor coefficients of
    the polynomial c at the points x), by J passes of synthetic division, all points at once (the
    inner loop over points is a SIMD loop; per point, one pass is a serial recurrence)."""
    K = c.shape[0] - 1
    n = x.shape[0]
    b = np.empty((K + 1, n))
    for k in range(K + 1):
        for p in range(n):
            b[k, p] = c[k]
    for j in range(J):
        for k in range(K - 1, j - 1, -1):
            for p in range(n):
                b[k, p] = b[k, p] + x[p] * b[k + 1, p]
        for p in range(n):
            out[j, p] = b[j, p] if j <= K else 0.0


@_jit
def build_row(c, tail_K, thr, coef, ok, per_panel):
    """Panels of the polynomial with nonnegative coefficients ``c`` (degree K = c.size - 1, tail bound
    ``tail_K`` = T_K): coef[p, j] = d_j(c_p), j <= coef.shape[1] - 1, and ok[p] = M_p + 1 where the
    panel's remainder and tail bounds at degree M_p sum to at most ``thr`` (the module's certificate),
    else 0.  ``per_panel``: M_p is the panel's own least certifying degree and its coefficients past
    M_p are zero (Horner's steps through them leave a lane's value unchanged, bit for bit, so a block
    of lanes may run to its largest M_p); else every certified panel takes the table's degree M, the
    least that certifies as many panels as the largest does (the tables until 2026-12-03).  Returns
    the largest M_p of a certified panel (per_panel), else M."""
    N, M1 = coef.shape
    K = c.shape[0] - 1
    t = 1.0 / N
    cp = np.empty(N)
    e = np.empty(N)
    for p in range(N):
        cp[p] = -1.0 + (2 * p + 1) * t
        e[p] = min(abs(cp[p]) + t, 1.0)
    D = np.empty((M1, N))
    taylor_coefficients(c, cp, M1, D)
    for p in range(N):
        for j in range(M1):
            coef[p, j] = D[j, p]
    De = np.empty((M1 + 1, N))
    taylor_coefficients(c, e, M1 + 1, De)
    # 1e-9: the rounding of these positive sums (relative ~K eps) and of a lane's |rho - c_p|
    best, deg = -1, M1 - 1
    for M in range(M1 - 1, 0 if not per_panel else M1 - 1, -1):      # the table's degree (not per panel)
        count = 0
        for p in range(N):
            count += 1 if (De[M + 1, p] * t ** (M + 1) + e[p] ** (K + 1) * tail_K) * (1.0 + 1e-9) <= thr else 0
        if count >= best:
            best, deg = count, M
    top = 0
    for p in range(N):
        tail = e[p] ** (K + 1) * tail_K
        m = 0
        for M in range(1 if per_panel else deg, (M1 if per_panel else deg + 1)):
            if (De[M + 1, p] * t ** (M + 1) + tail) * (1.0 + 1e-9) <= thr:
                m = M
                break
        ok[p] = m + 1 if m > 0 else 0
        if per_panel and m > 0:
            for j in range(m + 1, M1):
                coef[p, j] = 0.0
        top = max(top, m)
    return top if per_panel else deg


def empty(rows=1):
    """(rix, rtab, rok, rdeg) without tables for ``rows`` coefficient-table rows: rix[f, r] = -1."""
    return (np.full((2, rows), -1, dtype=np.int64), np.zeros((1, RHO_PANELS, RHO_DEGREE + 1)),
            np.zeros((1, RHO_PANELS), dtype=np.uint8), np.zeros(1, dtype=np.int64))


def clusters(q):
    """Runs of the sorted distinct variances ``q`` within a relative :data:`CLUSTER_RTOL` of each
    run's first: (start, stop) index pairs, at most :data:`RHO_ROWS` + 1 of them (the scan stops
    there: more runs than RHO_ROWS get no tables)."""
    out, s = [], 0
    for i in range(1, len(q) + 1):
        if i == len(q) or not abs(q[i] - q[s]) <= CLUSTER_RTOL * abs(q[s]):
            out.append((s, i))
            s = i
            if len(out) > RHO_ROWS:
                return out
    return out


def one_cluster(v):
    """Whether the values ``v`` (> 0: the inputs' squared norms) all lie within :data:`CLUSTER_RTOL`
    of their least."""
    lo = float(np.min(v)) if len(v) else 0.0
    return lo > 0 and float(np.max(v)) - lo <= CLUSTER_RTOL * lo


def _rows(arrays, f, rows, full=None):
    """(A, T): the coefficient rows a_k (k <= K) of function f at the table rows ``rows``, A of shape
    (len(rows), K + 1) with K the least resolved degree among them, and T = max_r sqrt(T_K(r)) their
    largest tail bound there; from the stored degrees (``arrays``, :meth:`numerics.fc_series.Tables.arrays`)
    or, given ``full``, from the rows past them (:attr:`numerics.fc_series.Tables.full`, keyed (f, row)).
    (None, nan) where a row has none."""
    if full is None:
        off, kc, _, _, a, tail = arrays
        K = min(kc[f, r] for r in rows)
        src = [(a[off[f, r]:off[f, r] + K + 1], tail[off[f, r]:off[f, r] + K + 1]) for r in rows] if K >= 0 else []
    else:
        src = [full[f, r] for r in rows if (f, r) in full]
        K = min(x.size for x, _ in src) - 1 if len(src) == len(rows) else -1
    if K < 0:
        return None, math.nan
    return np.array([x[:K + 1] for x, _ in src]), max(float(t[K]) for _, t in src)


def _deviation(A, i):
    """The max over pairs (x, z) of the rows of ``A`` (:func:`_rows`) of sum_k |a_k(x) a_k(z) - a_k(i)^2|:
    how far an entry's series at variances (x, z), truncated at K, may be from the table's (the
    variance of row i) at any |rho| <= 1."""
    ar = A[i]
    return max(float(np.abs(A[j][None, :] * A - ar * ar).sum(axis=1).max()) for j in range(len(A)))


def _table(c, tail_K, thr, cap=RHO_DEGREE):
    """(coef, ok, degree) of :func:`build_row` on fresh arrays (:data:`PER_PANEL`), at degrees <= ``cap``
    (the coefficients past it zero: Horner's steps through them leave the value unchanged, bit for bit).
    Kept by :func:`_table_kept` per exact argument: a dual's variance on inputs of one norm depends on
    that norm alone, so the next Gram matrix on the sphere (a test set against a training set, the
    next call of a sweep) asks for the same tables and copies them instead of building them again."""
    coef, ok, deg = _table_kept(np.ascontiguousarray(c, dtype=np.float64).tobytes(), float(tail_K),
                                float(thr), int(cap), RHO_PANELS, RHO_DEGREE, bool(PER_PANEL))
    return coef.copy(), ok.copy(), deg


#: tables :func:`_table_kept` keeps (least recently used first out; one table: 512 x 9 floats, 37 kB)
TABLES_KEPT = 256


@lru_cache(maxsize=TABLES_KEPT)
def _table_kept(c_bytes, tail_K, thr, cap, panels, degree, per_panel):
    """:func:`_table` on the coefficients ``c_bytes`` (float64 bytes) with ``panels`` panels and room for
    ``degree`` (the module's settings, part of the key, as is ``per_panel``): build_row is a deterministic
    function of its arguments, so a kept table is the same bits as a new one (tested)."""
    coef = np.zeros((panels, degree + 1))
    ok = np.empty(panels, dtype=np.uint8)
    part = np.empty((panels, cap + 1))
    deg = build_row(np.frombuffer(c_bytes, dtype=np.float64), tail_K, thr, part, ok, per_panel)
    coef[:, :cap + 1] = part
    coef.setflags(write=False)          # kept: read-only, so that no caller can change them
    ok.setflags(write=False)
    return coef, ok, deg


def build(arrays, groups, want_ntk, full=None):
    """(rix, rtab, rok, rdeg) for the coefficient tables ``arrays`` (:meth:`numerics.fc_series.Tables.arrays`)
    and ``groups``: per dual, (rows, q) its table rows (increasing) and their variances (increasing).
    rix[f, r] is the index of the table of function f (0 the activation, 1 its derivative) that row r
    reads in rtab (n, RHO_PANELS, RHO_DEGREE + 1), rok (n, RHO_PANELS) and rdeg (n,) (its degree,
    :func:`build_row`), -1 without one.  The rows
    of one :func:`clusters` run share the table of its middle row when their coefficients stay within
    :data:`DEVIATION_RTOL` m2 of it (:func:`_deviation`, on :func:`_rows`); a dual with more than :data:`RHO_ROWS` runs
    gets none (unequal variances: the lanes of a block would rarely share one), nor does a row whose
    second moment or target is not finite, or whose q^2 overflows (the per-entry series flags those).
    A table is built from the stored degrees (:data:`numerics.series_lanes.STORE_DEGREES`) and, where
    their tail (|c| + t)^(K+1) T_K leaves panels uncertified (near |rho| = 1 at large variances) and
    ``full`` (:attr:`numerics.fc_series.Tables.full`) holds every member's coefficients to a higher
    degree K' (its deviation within the same budget), again from those -- per panel up to
    :data:`RHO_DEGREE` (:data:`PER_PANEL`), else at no higher a degree in rho - c than the first; the
    panels certified only so take those coefficients, the others keep theirs bit for bit (each
    panel's certificate is its own).  The per-entry series of the lanes left to the series still
    reads the stored degrees."""
    kc, m2 = arrays[1], arrays[2]
    rix = np.full(kc.shape, -1, dtype=np.int64)
    tabs, oks, degs = [], [], []
    runs = []
    for rows, q in groups:
        c = clusters(q)
        if len(c) <= RHO_ROWS:
            runs += [(rows, q, s, e) for s, e in c]
    for rows, q, s, e in runs:
        members = [int(r) for r in rows[s:e]]
        rep = members[(e - s - 1) // 2]
        i = (e - s - 1) // 2
        for f in range(2 if want_ntk else 1):
            A, T = _rows(arrays, f, members)
            thr = _TAIL_RTOL * math.sqrt(m2[f, rep] * m2[f, rep]) if A is not None else math.nan
            if not (math.isfinite(thr) and math.isfinite(q[e - 1] * q[e - 1])
                    and _deviation(A, i) <= DEVIATION_RTOL * m2[f, rep]):
                continue
            coef, ok, deg = _table(A[i] ** 2, T ** 2, thr)
            if not ok.all() and full:
                A, T = _rows(arrays, f, members, full)
                if A is not None and _deviation(A, i) <= DEVIATION_RTOL * m2[f, rep]:
                    # per panel: up to RHO_DEGREE (a panel's degree is paid only by the lane blocks
                    # that reach it); a table's degree for all: no higher than the first's
                    fc, fok, _ = _table(A[i] ** 2, T ** 2, thr, RHO_DEGREE if PER_PANEL else deg)
                    gain = (fok != 0) & (ok == 0)
                    # the panels certified only so take the full rows' Taylor coefficients (zero past the
                    # panel's degree, or past the table's); the others keep theirs, bit for bit
                    coef[gain] = fc[gain]
                    ok[gain] = fok[gain] if PER_PANEL else deg + 1
                    if PER_PANEL and gain.any():
                        deg = max(deg, int(fok[gain].max()) - 1)
            degs.append(deg)
            rix[f, members] = len(tabs)
            tabs.append(coef)
            oks.append(ok)
    if not tabs:
        return empty(kc.shape[1])
    return rix, np.stack(tabs), np.stack(oks), np.array(degs, dtype=np.int64)


def tables_for(calls, arrays, VX, VZ, RX, RZ, want_ntk, full=None):
    """(rix, rtab, rok, rdeg) of :func:`build` for the table rows of every SERIES dual d (``calls[d]``
    not None): RX[d], RZ[d] the rows of the variances VX[d], VZ[d] (per input, or per input and pixel)
    of both sides of a Gram matrix.  Where the variances are equal (or within a few ulps), the lanes
    of a block share one table.  ``full``: :attr:`numerics.fc_series.Tables.full`."""
    groups = []
    for d, call in enumerate(calls):
        if call is not None:
            r, k = np.unique(np.concatenate([RX[d].ravel(), RZ[d].ravel()]), return_index=True)
            groups.append((r, np.concatenate([VX[d].ravel(), VZ[d].ravel()])[k]))
    return build(arrays, groups, want_ntk, full)


@_inline
def rho_dual(qx, QZ, S, E1, E0, want_ntk, t1, t0, rtab, rok, rdeg, d1, d0, rho, ix, bad, n):
    """E1[l], E0[l] of a SERIES dual for n lanes (qx, QZ[l], S[l]) whose variances all read the tables
    t1 (the activation) and t0 (its derivative, read only for the NTK; else E0 = 0) of rtab / rok, at
    rho = S / sqrt(qx qz) as :func:`numerics.series_lanes.series_start` has it; the pairs (x, x),
    S == qx == qz, take the row's one-dimensional second moments d1, d0.  bad[l] = 1 on entry marks a
    lane the caller keeps for the per-entry series (a column of another table); on return bad[l] = 1
    (and E1[l], E0[l] not meaningful) there and where S[l] is nan or falls in a panel not certified.  Returns the number of such lanes.  The lanes run Horner's rule to the
    largest degree of their certified panels (``rok`` - 1; ``rdeg``, each table's largest, is not read):
    a lane's value is its own panel's polynomial whatever lanes share its block (:func:`build_row`), so
    it does not depend on the tiles.  ``rho``: float scratch lanes, ``ix``: int64 scratch lanes."""
    N = rtab.shape[1]
    hN = 0.5 * N
    t = 1.0 / N
    nbad = 0
    M = 0
    for l in range(n):
        s = S[l]
        qz = QZ[l]
        g = math.sqrt(qx * qz)
        r = s / g if g > 0.0 else 0.0
        r = min(max(r, -1.0), 1.0) if r == r else 0.0
        p = min(max(int((r + 1.0) * hN), 0), N - 1)
        rho[l] = r - (-1.0 + (2 * p + 1) * t)
        ix[l] = p
        same = (s == qx) & (qx == qz)
        k1 = rok[t1, p]
        k0 = rok[t0, p] if want_ntk else k1
        fine = (bad[l] == 0) & (s == s) & (same | ((k1 != 0) & (k0 != 0)))
        bad[l] = 0 if fine else 1
        nbad += 0 if fine else 1
        # the block's degree: its certified lanes' largest (rok = a panel's degree + 1; past its
        # degree a panel's coefficients are zero, or its own Taylor coefficients: see build_row)
        mk = max(int(k1), int(k0)) - 1
        M = max(M, mk if (fine and not same) else 0)
    if want_ntk:
        for l in range(n):
            p = ix[l]
            x = rho[l]
            e1 = rtab[t1, p, M]
            e0 = rtab[t0, p, M]
            for j in range(M - 1, -1, -1):
                e1 = e1 * x + rtab[t1, p, j]
                e0 = e0 * x + rtab[t0, p, j]
            same = (S[l] == qx) & (qx == QZ[l])
            E1[l] = d1 if same else e1
            E0[l] = d0 if same else e0
    else:
        for l in range(n):
            p = ix[l]
            x = rho[l]
            e1 = rtab[t1, p, M]
            for j in range(M - 1, -1, -1):
                e1 = e1 * x + rtab[t1, p, j]
            E1[l] = d1 if (S[l] == qx) & (qx == QZ[l]) else e1
            E0[l] = 0.0
    return nbad



@_inline
def mark_other_tables(srix, t1, t0, RZl, bad, want_ntk, n):
    """bad[l] = 1 where lane l's table row RZl[l] reads other tables than (t1, t0) (t0 only for the
    NTK), else 0: those lanes take the per-entry series, so that an entry's route depends on its own
    pair only, not on the lanes it shares a block with (tiles)."""
    for l in range(n):
        r = RZl[l]
        bad[l] = 0 if (srix[0, r] == t1) & ((srix[1, r] == t0) | (not want_ntk)) else 1


@_jit
def series_rest(rx, RZl, qx, QZ, S, E1, E0, FL, bad, want_ntk, soff, skc, sm2, sdiag, sa, stail, W, Ci, Cw, CF,
                Ws):
    """The lanes l < n = bad.size with bad[l] = 1 by the per-entry series,
    :func:`numerics.series_lanes.series_dual_gathered` on those lanes compacted (per entry the same
    bits as on the whole block): E1[l], E0[l] written, FL[l] |= their flags.  ``Ci`` (4, NL) int64,
    ``Cw`` (4, NL), ``CF`` (NL,) uint8 and ``Ws`` (8, NL): scratch."""
    m = 0
    for l in range(bad.shape[0]):
        if bad[l]:
            Ci[0, m] = l
            Ci[1, m] = RZl[l]
            Cw[0, m] = S[l]
            Cw[1, m] = QZ[l]
            CF[m] = 0
            m += 1
    series_dual_gathered(rx, Ci[1, :m], qx, Cw[1, :m], Cw[0, :m], Cw[2, :m], Cw[3, :m], CF[:m], want_ntk, soff, skc,
                         sm2, sdiag, sa, stail, W, Ci[2], Ci[3], Ws[0], Ws[1], Ws[2], Ws[3], Ws[4], Ws[5], Ws[6], Ws[7])
    for c in range(m):
        l = Ci[0, c]
        E1[l] = Cw[2, c]
        E0[l] = Cw[3, c]
        FL[l] |= CF[c]

"""The half-angle recursion of fully connected kernels (:mod:`numerics.fc`) as one compiled loop.

:func:`numerics.fc.half_angle_recursion` runs each kernel map as ~20 whole-array numpy passes over
a tile (sqrt, arcsin, the half-angle algebra), so a ResNet(10) Gram matrix makes ~200 passes over
memory per entry, and that, not the arithmetic, was its time.  :func:`fc_block` carries the state
(su, sv, T) of 64 pairs at once in registers-sized lane arrays through *all* maps: per map and
lane the same operations as :mod:`numerics.fc` in the same order, with theta/2 = arcsin(min(su, sv))
from the branch-free polynomial of :mod:`numerics.fastmath` (<= 2.5 ulps; numpy's arcsin is
within 1 ulp), so the lane loop is a SIMD loop.  The half angles of the input pairs come from
:func:`numerics.gram.half_angles` as before (one product, explicit differences near rho = +-1).

Exactness kept: a pair with su = 0 (the same input twice) has arcsin(0) = 0 exactly, so theta = 0,
kappa0 = kappa1 = rho = 1 and the diagonal is exact, as in numpy; agreement with the numpy path is
within a few ulps of the largest value per layer (tests/numerics/test_fc_fused.py), and
``gram(..., backend="numpy")`` keeps the numpy path bit for bit.

Programs: Stem, Nonlinear, Block, Linear and a dense Pool with the ReLU family's half-angle duals
(ReLU, leaky ReLU, abs: engine ids 0 and 1 of :mod:`theory.activations`); anything else raises
NotImplementedError and ``gram`` keeps numpy.

Variance-carrying programs (biases, the other activations) run :func:`general_block`: the maps of
:mod:`theory.general` on (S, T) lanes with the conv engine's per-entry closed-form duals, and the
duals without a closed form (tanh, GELU, user functions without kinks) by their Hermite series on
the same lanes (:mod:`numerics.fc_series`; variances and coefficient tables per Gram matrix from
:func:`record_variances`), or, where the inputs share a variance (inputs on a sphere), by tables
in rho (:mod:`numerics.rho_tables`: one panel index and a few Horner steps per entry).

numba's on-disk cache keys a compiled function on its own file only: :func:`general_block` compiles in
:mod:`numerics.series_lanes` (``series_dual``), :mod:`numerics.fc_series` (``column_tables``), :mod:`numerics.hermite`
(``degree_step``, ``horner_step``), :mod:`numerics.rho_tables` (``rho_dual``) and
:mod:`numerics.conv_fused_general` (``dual_grid``), so after
editing those change this module's contents too (a stale cache runs the old code).
"""
from __future__ import annotations

import math

import numpy as np

from reskernels.theory import activations as _act
from reskernels.theory import layers as _L

from . import fastmath as _fm
from .conv_fused import OP_BLOCK, OP_LINEAR, OP_NONLINEAR, OP_STEM, _jit
from .conv_fused_general import COS, SIN, SERIES, dual_factors, dual_grid
from .fc_series import LANE_DEGREES, Tables, column_tables, record_tables
from . import rho_tables as _rt
from .rho_tables import mark_other_tables, rho_dual, series_rest
from .series_lanes import series_dual

_HALF_PI = math.pi / 2
_TWO_OVER_PI = 2 / math.pi
# the Taylor coefficients of su sv - h rho (theory.activations.HALF_F_SERIES), as compile-time constants:
# numba's on-disk cache does not see a change there (module docstring), so change this module with them
_G1, _G2, _G3, _G4, _G5, _G6, _G7, _G8 = _act.HALF_F_SERIES


def lower(maps):
    """(ops, params) of a normalisable FC program: ops[o] = (code, trained), params[o] = (gain a,
    w, 2 s, 1 + s^2, leaky, h_series) -- the leaky ReLU's constants (:func:`theory.activations.leaky_relu`),
    leaky = 0 for ReLU (whose half-angle duals take none of them), and h_series =
    :data:`theory.activations.SMALL_ANGLE_H` when the program is lowered (below it su sv - h rho comes from
    its Taylor series; 0: never).  NotImplementedError otherwise."""
    ops, params = [], []
    for m in maps:
        row = [0.0, 1.0, 0.0, 1.0, 0.0, float(_act.SMALL_ANGLE_H)]
        if isinstance(m, _L.Stem):
            code = OP_STEM
        elif isinstance(m, (_L.Nonlinear, _L.Block)):
            code = OP_NONLINEAR if isinstance(m, _L.Nonlinear) else OP_BLOCK
            if getattr(m, "filter_size", 1) != 1:
                raise NotImplementedError("fc_fused: fully connected maps only")
            act = m.activation
            if act.engine_id == 0:
                pass
            elif act.engine_id == 1:
                row[1:4] = [float(v) for v in act.engine_params]
                row[4] = 1.0
            else:
                raise NotImplementedError(f"fc_fused: no compiled half-angle dual for {act.name!r}")
            if code == OP_BLOCK:
                row[0] = float(m.gain)
        elif isinstance(m, _L.Linear):
            code = OP_LINEAR
        elif isinstance(m, _L.Pool) and m.pooling == "dense":
            continue
        else:
            raise NotImplementedError(f"fc_fused: no compiled rule for {type(m).__name__}")
        ops.append((code, int(bool(getattr(m, "trained", True)))))
        params.append(row)
    return np.array(ops, dtype=np.int64).reshape(-1, 2), np.array(params, dtype=np.float64).reshape(-1, 6)


@_jit
def fc_block(su, sv, ops, params, want_ntk, out):
    """out[i, j] = rho_L (NNGP) or T_L (NTK) of the normalised half-angle recursion for the pair whose
    input half angles are (su[i, j], sv[i, j]); the maps of :mod:`numerics.fc` (module docstring).

    Per map lane loops without branches inside (so that LLVM vectorises them): the duals and the new
    half angles, the leaky ReLU's kappa0 (ReLU skips that division), then the NTK update.  ReLU's f is
    multiplied by w / (1 + s^2) = 1.0 exactly (the same bits); the Nonlinear map's f/2 is f * 0.5 (a
    power of two: the same bits)."""
    ni, nj = su.shape
    NL = 64
    U = np.empty(NL)
    V = np.empty(NL)
    T = np.zeros(NL)
    K0 = np.empty(NL)
    F = np.empty(NL)
    R = np.empty(NL)
    for i in range(ni):
        for j0 in range(0, nj, NL):
            nl = min(NL, nj - j0)
            for l in range(nl):
                U[l] = su[i, j0 + l]
                V[l] = sv[i, j0 + l]
                T[l] = 0.0
            for o in range(ops.shape[0]):
                code = ops[o, 0]
                trained = ops[o, 1] != 0
                if code == OP_STEM:
                    for l in range(nl):
                        rho0 = (V[l] - U[l]) * (V[l] + U[l])
                        T[l] = rho0 if trained else rho0 * 0
                elif code == OP_LINEAR:
                    if trained and want_ntk:
                        for l in range(nl):
                            T[l] = T[l] + (V[l] - U[l]) * (V[l] + U[l])
                else:
                    a = params[o, 0]
                    wf = params[o, 1]
                    tw = params[o, 2]
                    den = params[o, 3]
                    inv = 1 / (1 + a)
                    ai = a * inv
                    c = 0.5 if code == OP_NONLINEAR else ai / 2
                    wd = wf / den
                    leaky = params[o, 4] != 0.0
                    hs = params[o, 5]
                    for l in range(nl):
                        s_u = U[l]
                        s_v = V[l]
                        u2 = s_u * s_u
                        v2 = s_v * s_v
                        rho = v2 - u2
                        m = _fm.asin(min(s_u, s_v))
                        h = m if s_u <= s_v else _HALF_PI - m
                        K0[l] = 1 - h * _TWO_OVER_PI
                        # g = su sv - h rho, or its Taylor series (theory.activations.half_f_series) where
                        # h < hs: both computed, one selected (no branch in the lane loop)
                        h2 = h * h
                        gs = h * h2 * (_G1 + h2 * (_G2 + h2 * (_G3 + h2 * (_G4 + h2 * (
                            _G5 + h2 * (_G6 + h2 * (_G7 + h2 * _G8)))))))
                        g = gs if h < hs else s_u * s_v - h * rho
                        f = g * _TWO_OVER_PI * wd     # wd = 1.0 exactly for ReLU
                        F[l] = f
                        R[l] = rho
                        df = f * c
                        U[l] = math.sqrt(max(u2 - df, 0.0))
                        V[l] = math.sqrt(v2 + df)
                    if leaky:       # the leaky ReLU's kappa0: (k0 w + 2 s) / (1 + s^2) (a division: not for ReLU)
                        for l in range(nl):
                            K0[l] = (K0[l] * wf + tw) / den
                    if want_ntk:
                        if code == OP_BLOCK:
                            for l in range(nl):
                                T[l] = T[l] * inv + (K0[l] * (T[l] + R[l]) + (R[l] + F[l])) * ai
                        elif trained:
                            for l in range(nl):
                                T[l] = (R[l] + F[l]) + K0[l] * T[l]
                        else:
                            for l in range(nl):
                                T[l] = K0[l] * T[l]
            for l in range(nl):
                out[i, j0 + l] = T[l] if want_ntk else (V[l] - U[l]) * (V[l] + U[l])


@_jit
def general_block(xs, zs, VX, VZ, EXx, EXz, ops, params, aparams, coef, want_ntk, upper, out, poly,
                  RX, RZ, soff, skc, sm2, sdiag, sa, stail, srix, srtab, srok, srdeg, flag, rec, stop):
    """out[i, j] = the NNGP (S) or NTK (T) of a variance-carrying FC program for the pair (xs[i], zs[j]):
    the maps of :mod:`theory.general` with filter size 1, as the conv engine's compiled loop
    (:func:`numerics.conv_fused_general.block`) runs them on one pixel -- the same per-entry duals
    (:func:`numerics.conv_fused_general.dual_grid`, on 64-pair lanes), the same operations in the same
    order -- without its patch passes.  ``ops``, ``params``, ``aparams``, ``coef``: the program of
    :func:`numerics.conv_fused_general.lower`; VX[d, i] the variance of dual d's argument for input i
    (:func:`numerics.conv_fused_general.diagonal` on 1 x 1 inputs), EXx the factors sin and cos read
    (:func:`numerics.conv_fused_general.dual_factors`: exp(-q / 2), or -q above
    HALF_EXP_MAX_VARIANCE, which their duals take apart since 2026-12-02).  On the pair (x, x) every S equals the recorded
    variance bit for bit (the same operations), so rho = 1 there and diagonals are exact.
    ``upper``: 1 only j >= i (a diagonal tile of a symmetric matrix), 2 only the pairs (xs[i], zs[i]),
    written to out[i, 0] (zs is xs: the diagonal), 0 every pair.

    Duals without a closed form (engine id :data:`numerics.conv_fused_general.SERIES`: tanh, GELU, user
    functions) by their Hermite series, :func:`numerics.series_lanes.series_dual`: RX[d, i], RZ[d, j] the
    table rows of the variances VX[d, i], VZ[d, j] in the tables (soff, skc, sm2, sdiag, sa, stail) of
    :class:`numerics.fc_series.Tables`; flag[i, j] = 1 where an entry of the pair is not certified
    (its value is then nan).  Where row i's variance has tables in rho (``srix``, ``srtab``, ``srok``,
    ``srdeg``: :func:`numerics.rho_tables.build`, inputs of equal variance),
    :func:`numerics.rho_tables.rho_dual` takes the lanes whose columns read the same tables and whose
    panels are certified (each panel at its own degree), and :func:`numerics.rho_tables.series_rest` the others (not in the
    diagonal mode: its pairs are (x, x)).  ``rec`` (n_duals, a), unless it has no columns (then ignored): rec[d, i] =
    the argument's S at dual d of row i's pair in the diagonal mode (upper == 2), where it is the
    variance (:func:`record_variances`); ``stop`` >= 0: no map after dual ``stop`` runs (out is then
    not the kernel: for recording), -1: all maps."""
    a, C = xs.shape
    nb = zs.shape[0]
    NL = 64
    S = np.empty(NL)
    T = np.empty(NL)
    A = np.empty(NL)
    E1 = np.empty(NL)
    E0 = np.empty(NL)
    QX = np.empty(NL)
    QZ = np.empty(NL)
    Wk = np.empty((4, NL))
    FL = np.zeros(NL, dtype=np.uint8)
    # tables in rho: panel indices, lanes for the per-entry series and their scratch
    IX, Ci = np.empty(NL, dtype=np.int64), np.empty((4, NL), dtype=np.int64)
    BAD, CF = np.zeros(NL, dtype=np.uint8), np.zeros(NL, dtype=np.uint8)
    Cw, Ws = np.empty((4, NL)), np.empty((8, NL))
    Wr, Wt, Wp, Wf, Wa, Wn, War = (np.empty(NL), np.empty(NL), np.empty(NL), np.empty(NL), np.empty(NL), np.empty(NL),
                                   np.empty(NL))
    recording = rec.shape[1] > 0
    # the columns' series coefficients on lanes, as many degrees as the tables hold (none without a
    # SERIES dual); the diagonal mode's pairs (x, x) take the tables' one-dimensional second moments
    # (S = qx = qz), or are not certifiable (a variance not recorded yet): no series there, zero lanes
    series = False
    for o in range(ops.shape[0]):
        series |= ops[o, 1] == SERIES
    W = min(LANE_DEGREES, max(1, skc.max() + 1)) if series else 1
    ZA = np.zeros((2 * RZ.shape[0] if series else 0, W, 1 if upper == 2 else nb))
    ZT = np.full(ZA.shape, np.inf)
    if series and upper != 2:
        column_tables(ops, RZ, soff, skc, sa, stail, want_ntk, ZA, ZT)
    for i in range(a):
        jstart = i if upper else 0
        jend = i + 1 if upper == 2 else nb
        jz0 = i if upper == 2 else 0
        for j0 in range(jstart, jend, NL):
            nl = min(NL, jend - j0)
            d = 0
            for l in range(nl):
                FL[l] = 0
            for o in range(ops.shape[0]):
                if d > stop >= 0:
                    break
                code, eid = ops[o, 0], ops[o, 1]
                trained = ops[o, 2] != 0
                cf = coef[ops[o, 7]:ops[o, 7] + ops[o, 8]]
                ap = aparams[o]
                c, bv, a2 = params[o, 0], params[o, 1], params[o, 2]
                if code == OP_STEM:
                    for l in range(nl):
                        s = xs[i, 0] * zs[j0 + l, 0]
                        for ch in range(1, C):
                            s += xs[i, ch] * zs[j0 + l, ch]
                        S[l] = c * s + bv
                        T[l] = S[l] if trained else 0.0
                elif code == OP_NONLINEAR or code == OP_BLOCK:
                    sc = eid == SIN or eid == COS
                    qx = EXx[d, i] if sc else VX[d, i]
                    for l in range(nl):
                        QX[l] = qx
                        QZ[l] = EXz[d, j0 + l] if sc else VZ[d, j0 + l]
                    if code == OP_BLOCK:
                        for l in range(nl):
                            A[l] = c * S[l] + bv                                    # Sa
                    arg = S if code == OP_NONLINEAR else A                          # the dual's S
                    if recording:
                        rec[d, i] = arg[0]
                    tab = False
                    if eid == SERIES and upper != 2:
                        rr = RX[d, i]
                        t1, t0 = srix[0, rr], srix[1, rr]
                        tab = t1 >= 0 and (not want_ntk or t0 >= 0)
                        if tab:
                            RZl = RZ[d, j0:j0 + nl]
                            mark_other_tables(srix, t1, t0, RZl, BAD, want_ntk, nl)
                            nbad = rho_dual(qx, QZ[:nl], arg[:nl], E1, E0, want_ntk, t1, t0, srtab, srok, srdeg,
                                            sdiag[0, rr], sdiag[1, rr], Wr, IX, BAD, nl)
                            if nbad == nl:
                                tab = False
                            elif nbad > 0:
                                series_rest(rr, RZl, qx, QZ[:nl], arg[:nl], E1, E0, FL, BAD[:nl], want_ntk, soff, skc,
                                            sm2, sdiag, sa, stail, W, Ci, Cw, CF, Ws)
                    if eid == SERIES:
                        if not tab:
                            series_dual(RX[d, i], RZ[d, j0:j0 + nl], qx, QZ[:nl], arg[:nl], E1[:nl], E0[:nl],
                                        FL[:nl], want_ntk, soff, skc, sm2, sdiag, sa, stail, ZA, ZT, 2 * d, j0 - jz0,
                                        Wr, Wt, Wp, Wf, Wa, Wn, War)
                    else:
                        dual_grid(eid, ap, cf, QX[:nl], QZ[:nl], arg[:nl], E1[:nl], E0[:nl], Wk[:, :nl], poly)
                    if code == OP_NONLINEAR:
                        for l in range(nl):
                            sn = c * E1[l] + bv
                            if want_ntk:
                                tt = c * E0[l] * T[l]
                                T[l] = tt + sn if trained else tt
                            S[l] = sn
                    else:
                        for l in range(nl):
                            sc_ = a2 * E1[l] + bv                                   # Sc
                            if want_ntk:
                                T[l] = T[l] + (a2 * (E0[l] * (c * T[l] + A[l])) + sc_)
                            S[l] = S[l] + sc_
                    d += 1
                elif code == OP_LINEAR:
                    for l in range(nl):
                        sn = c * S[l] + bv
                        if want_ntk:
                            tt = c * T[l]
                            T[l] = tt + sn if trained else tt
                        S[l] = sn
            for l in range(nl):
                oc = 0 if upper == 2 else j0 + l
                out[i, oc] = T[l] if want_ntk else S[l]
                flag[i, oc] = FL[l]


@_jit
def general_diagonal(xs, VX, EXx, ops, params, aparams, coef, want_ntk, out, poly,
                     RX, soff, skc, sm2, sdiag, sa, stail, srix, srtab, srok, srdeg, rec, stop):
    """out[i] = the kernel of the pair (xs[i], xs[i]) by :func:`general_block` (the same loop, so the
    normalised diagonal divides each entry by exactly what the loop gives on (x, x)); ``rec`` as
    there (rec[d, i]: the variance of dual d's argument for input i), and ``stop``."""
    n = xs.shape[0]
    col = np.empty((n, 1))
    general_block(xs, xs, VX, VX, EXx, EXx, ops, params, aparams, coef, want_ntk, 2, col, poly, RX, RX,
                  soff, skc, sm2, sdiag, sa, stail, srix, srtab, srok, srdeg, np.zeros((n, 1), dtype=np.uint8), rec, stop)
    for i in range(n):
        out[i] = col[i, 0]


def record_variances(prog, calls, xs, zs, want_ntk, poly, rho=True):
    """(VX, VZ, RX, RZ, tables) of a lowered FC program with SERIES duals on the inputs ``xs`` (n, C)
    and ``zs`` (``zs is xs`` for a symmetric Gram matrix): VX[d, i] the variance of dual d's argument
    for input i, recorded by :func:`general_diagonal` on (x_i, x_i) -- one dual at a
    time, each run with the tables of the duals before it, so that the pair (x, x) meets exactly
    these values in :func:`general_block` --, RX[d, i] its row in the tables
    (:class:`numerics.fc_series.Tables`, one row per distinct variance of a SERIES dual, built
    here), as :meth:`numerics.fc_series.Tables.arrays` followed by the tables in rho of the SERIES duals
    (:func:`numerics.rho_tables.tables_for`; none unless ``rho``).
    NotImplementedError where a variance is not finite (the interpreter reports it) or the tables would
    exceed :data:`numerics.fc_series.TABLE_FLOATS`."""
    from .variance import NumpyContext

    def record(v, V, R, tables, d):
        rec = np.full(V.shape, np.nan)
        general_diagonal(v, V, dual_factors(prog.ops, V), prog.ops, prog.params, prog.aparams, prog.coef,
                         want_ntk, np.empty(v.shape[0]), poly, R, *tables.arrays(), *_rt.empty(tables.rows), rec, d)
        return rec[d]
    sides, tables = record_tables(calls, [xs] if zs is xs else [xs, zs], prog.n_duals, record,
                                  NumpyContext(want_ntk), want_ntk)
    (VX, RX), (VZ, RZ) = sides[0], sides[-1]
    arrays = tables.arrays()
    return VX, VZ, RX, RZ, arrays + (_rt.tables_for(calls, arrays, VX, VZ, RX, RZ, want_ntk, tables.full) if rho else
                                     _rt.empty(arrays[0].shape[1]))


def tables_certify_all(calls, recorded, want_ntk):
    """Whether the tables in rho of :func:`record_variances`' result ``recorded`` certify every entry:
    each SERIES dual (and function) has one table that all its rows read and every panel of it is
    certified -- then no entry of the loop can be flagged (nor meet a nan S), and ``gram`` skips
    its sample."""
    _, _, RX, RZ, arrays = recorded
    rix, rok = arrays[6], arrays[8]
    for d, call in enumerate(calls):
        if call is None:
            continue
        rows = np.unique(np.concatenate([RX[d], RZ[d]]))
        for f in range(2 if want_ntk else 1):
            t = np.unique(rix[f, rows])
            if t.size != 1 or t[0] < 0 or not rok[t[0]].all():
                return False
    return True


def empty_tables(prog, n, m):
    """(RX, RZ, tables) for a program without SERIES duals (nothing is read from them)."""
    return (np.zeros((prog.n_duals, n), dtype=np.int64), np.zeros((prog.n_duals, m), dtype=np.int64),
            Tables().arrays() + _rt.empty())


def flagged_fraction(prog, calls, xs, zs, want_ntk, poly, recorded=None, ix=None, iz=None):
    """The fraction of the pairs (xs[i], zs[j]) with an entry whose Hermite series is not certified
    (:func:`general_block`'s flags): what ``gram`` asks of a sample before it takes the loop for a
    program with SERIES duals (numerics/gram.py).  On tables built for these inputs alone, without the
    tables in rho (they flag nothing the per-entry series would not: a certified panel certifies the
    series at its largest degree); or, where ``recorded`` (:func:`record_variances` of all the inputs,
    of which ``xs`` and ``zs`` are the rows ``ix`` and ``iz``) is given, on its variances and tables,
    the tables in rho included -- the flags the whole Gram matrix's loop will raise on these pairs."""
    if recorded is None:
        VX, VZ, RX, RZ, arrays = record_variances(prog, calls, xs, zs, want_ntk, poly, rho=False)
    else:
        VXa, VZa, RXa, RZa, arrays = recorded
        VX, RX = VXa[:, ix], RXa[:, ix]
        VZ, RZ = (VX, RX) if zs is xs else (VZa[:, iz], RZa[:, iz])
    out = np.empty((xs.shape[0], zs.shape[0]))
    flag = np.zeros(out.shape, dtype=np.uint8)
    general_block(xs, zs, VX, VZ, dual_factors(prog.ops, VX), dual_factors(prog.ops, VZ), prog.ops, prog.params,
                  prog.aparams, prog.coef, want_ntk, 0, out, poly, RX, RZ, *arrays, flag, np.empty((prog.n_duals, 0)), -1)
    return float(flag.mean())

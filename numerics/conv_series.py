"""Conv programs with duals without a closed form (tanh, GELU, user functions without kinks) in the
compiled variance-carrying loop, :func:`numerics.conv_fused_general.block` (engine id SERIES): the
per-pixel variances and coefficient tables a Gram plan builds before its tiles
(:func:`record_series_variances`), and the sample it runs first (:func:`flagged_fraction`).  The
per-entry rule is :mod:`numerics.series_lanes`; the tables :class:`numerics.fc_series.Tables`.
"""
from __future__ import annotations

import numpy as np

from .conv_fused import READOUT_CODES
from .conv_fused_general import _poly, block, diagonal
from .fc_series import record_tables
from .rho_tables import tables_for
from .variance import NumpyContext


def record_series_variances(program, calls, xs, zs, want_ntk, acos=None):
    """(VX, VZ, series) of a lowered conv program with SERIES duals on the inputs ``xs`` (n, H, W, C)
    and ``zs`` (None for a symmetric Gram matrix, then VZ is VX): VX[d, i, h, w] the variance of dual d's
    argument, recorded by :func:`numerics.conv_fused_general.diagonal` one dual at a time, each run
    with the tables of the duals before it (a dual's variance needs the previous duals' second moments), and ``series`` = (RX, RZ,
    soff, skc, sm2, sdiag, sa, stail, srix, srtab, srok, srdeg) the variances' table rows, the tables of
    :class:`numerics.fc_series.Tables` (one row per distinct variance of a SERIES dual) and the tables
    in rho of the duals whose pixel variances are equal (:func:`numerics.rho_tables.tables_for`) as
    :func:`numerics.conv_fused_general.block` reads them.  ``calls``: :func:`numerics.fc_series.calls_of`
    of the program's maps.
    NotImplementedError where a variance is not finite (the interpreter reports it) or the tables
    would exceed :data:`numerics.fc_series.TABLE_FLOATS`."""
    poly = _poly(acos)
    pr = program

    def record(v, V, R, tables, d):
        rec = np.full(V.shape, np.nan)
        diagonal(v, pr.ops, pr.params, pr.aparams, pr.coef, pr.taps_h, pr.taps_w, rec, poly, R, tables.diag, d)
        return rec[d]
    sides, tables = record_tables(calls, [xs] if zs is None else [xs, zs], pr.n_duals, record,
                                  NumpyContext(want_ntk), want_ntk)
    (VX, RX), (VZ, RZ) = sides[0], sides[-1]
    arrays = tables.arrays()
    return VX, VZ, (RX, RZ) + arrays + tables_for(calls, arrays, VX, VZ, RX, RZ, want_ntk, tables.full)


def flagged_fraction(program, calls, xs, zs, want_ntk, OH, OW, readout, acos=None):
    """The fraction of the pairs (xs[i], zs[j]) (``zs is xs``: symmetric, the upper triangle) with an
    entry whose Hermite series is not certified (:func:`numerics.conv_fused_general.block`'s flags), on
    tables built for these inputs alone: what a conv Gram plan asks of a sample before it takes the loop for a program with
    SERIES duals (numerics/conv.py)."""
    sym = zs is xs
    VX, VZ, series = record_series_variances(program, calls, xs, None if sym else zs, want_ntk, acos)
    out = np.zeros((xs.shape[0], (xs if sym else zs).shape[0]))
    flag = np.zeros(out.shape, dtype=np.uint8)
    pr = program
    block(xs, xs if sym else zs, OH, OW, VX, VZ, pr.ops, pr.params, pr.aparams, pr.coef, pr.taps_h, pr.taps_w,
          want_ntk, READOUT_CODES[readout], sym, out, _poly(acos), *series, flag)
    pairs = out.shape[0] * (out.shape[0] + 1) // 2 if sym else out.size
    return float(flag.sum()) / pairs

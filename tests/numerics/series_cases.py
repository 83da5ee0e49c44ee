"""Shared inputs of the per-entry series tests (test_fc_series.py, test_conv_series.py): tanh and its
derivative tabled at variances 0.05..60 by numerics.fc_series.Tables, and the FC loop's lanes of one
row's entries (the columns' coefficients laid out by column_tables)."""
import numpy as np

from reskernels.numerics import fc_series
from reskernels.numerics.variance import NumpyContext

Q = np.array([0.05, 0.3, 1.0, 2.5, 20.0, 60.0])
F = lambda x, xp: xp.tanh(x)                # noqa: E731
G = lambda x, xp: 1 - xp.tanh(x) ** 2       # noqa: E731
OPS = np.array([[1, fc_series.SERIES, 1, 0, 0, 0, 0, 0, 0]], dtype=np.int64)    # one SERIES dual


def tanh_tables():
    """(first row, (off, kc, m2, diag, a, tail)) of tanh and tanh' at the variances Q."""
    tables = fc_series.Tables()
    first = tables.add(((F, {}), (G, {})), Q, NumpyContext(True), True)
    return first, tables.arrays()


def correlations(rng, uniform, near_ends):
    """``uniform`` correlations uniform on [-1, 1], then ``near_ends`` each at 1 - 1e-6 .. 1 - 1e-1 and
    -1 + 1e-6 .. -1 + 1e-1 (where entries need many degrees or none certifies)."""
    return np.concatenate([rng.uniform(-1, 1, uniform), 1 - np.logspace(-6, -1, near_ends),
                           -1 + np.logspace(-6, -1, near_ends)])


def entry_sets(rng, first, rho):
    """Per row variance Q[u]: (u, RZ, QZ, S), the table rows (of ``tanh_tables``, first row ``first``)
    drawn at random, their variances and the arguments S of correlations ``rho`` against Q[u]."""
    for u in range(Q.size):
        RZ = first + rng.integers(0, Q.size, rho.size)
        QZ = Q[RZ - first]
        yield u, RZ, QZ, rho * np.sqrt(Q[u] * QZ)


def fc_lanes(first, u, RZ, QZ, S, arrays, lane=64):
    """(E1, E0, flag) of the FC loop's driver (numerics.series_lanes.series_dual) for row variance Q[u]
    against the entries (QZ, S) of table rows RZ, on lanes of ``lane`` entries."""
    off, kc, m2, diag, a, tail = arrays
    n = S.size
    ZA, ZT = np.zeros((2, fc_series.LANE_DEGREES, n)), np.full((2, fc_series.LANE_DEGREES, n), np.inf)
    fc_series.column_tables(OPS, RZ[None, :], off, kc, a, tail, True, ZA, ZT)
    E1, E0, flag = np.empty(n), np.empty(n), np.zeros(n, dtype=np.uint8)
    for l0 in range(0, n, lane):
        sl = slice(l0, min(n, l0 + lane))
        fc_series.series_dual(first + u, RZ[sl], Q[u], QZ[sl], S[sl], E1[sl], E0[sl], flag[sl], True, off, kc,
                              m2, diag, a, tail, ZA, ZT, 0, l0, *(np.empty(lane) for _ in range(7)))
    return E1, E0, flag

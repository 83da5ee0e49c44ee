"""Duals without a closed form (tanh, GELU, user functions) inside the compiled FC loop.

The numpy interpreter evaluates the Hermite (Mehler) duals of :mod:`numerics.hermite` per Gram
tile and per map: each call finds its distinct variances, replays the coefficient ladder, gathers
coefficient rows and runs ~20 numpy passes over the tile before its compiled series loop, and that
bookkeeping, not the series, was two thirds of the time (FC ResNet(10, 0.5) tanh NTK, n = 1000:
0.40 s of series in ~1.5 s).  Here the series is one more dual of
:func:`numerics.fc_fused.general_block`, with engine id :data:`SERIES`:

* the variances of every dual's argument are recorded per input by the loop itself on the pairs
  (x, x), one dual at a time (:func:`numerics.fc_fused.record_variances`: a dual's variance needs the
  previous duals' second moments), so that the pair (x, x) meets S = qx = qz bit for bit, as in the numpy
  interpreter;
* per dual and function (the activation, and for the NTK its derivative), the coefficients
  a_k(q) of every distinct variance q come once per Gram matrix from
  :func:`numerics.hermite.coefficients`, certified for every correlation where the ladder can
  (``rho_need`` = 1: the largest |rho| of an entry is not known before the loop runs), and the
  second moment E[f(sqrt(q) Z)^2] of the pairs (x, x) from the numpy context's one-dimensional
  rule (:meth:`numerics.variance.NumpyContext.gaussian_expectation` on S = qx = qz, the same rule as
  the interpreter's);
* per entry :func:`numerics.series_lanes.series_dual` does what :func:`numerics.hermite.series` does: the least degree K
  with |rho|^(K+1) sqrt(T_K(qx) T_K(qz)) <= 2^-53 sqrt(E[f(u)^2] E[f(v)^2]), then Horner;
* an entry the series does not certify (near-parallel pairs at large variances, a degree past the
  :data:`STORE_DEGREES` a table keeps, variances or second moments whose product overflows) flags its
  pair, and ``gram`` computes the flagged pairs again by the numpy interpreter (quadrature rules of
  numerics/variance.py);
* above 4 :data:`SAMPLE`^2 pairs ``gram`` first runs the loop on a sample of the inputs and keeps the
  interpreter where more than :data:`FLAGGED_MAX` of its pairs are flagged (GELU at variances ~100:
  a flagged pair costs both routes).

The values are those of the interpreter's route within the stated bound, not bit for bit: the
interpreter climbs the ladder per tile only to its largest |rho|, so its coefficients may come from
a coarser rule (they agree within the ladder's refinement check), and its one-dimensional second
moments take their step from a tile's variances instead of all of them.  Activations given with
``kinks`` take Gauss-Legendre panels, not the series: their programs keep the interpreter.

:func:`numerics.fc_fused.general_block` compiles this module's loops in: after editing them, change
that module's contents too (numba's cache is keyed on each file's own contents).
"""
from __future__ import annotations

import numpy as np

from . import hermite as _hermite
from . import rho_tables as _rt
from .conv_fused import _jit
from .conv_fused_general import GENERAL_IDS, SERIES
from .series_lanes import LANE_DEGREES, STORE_DEGREES, series_dual  # noqa: F401  (re-exported)

#: most floats the coefficient tables of one Gram matrix may hold (128 MiB); beyond, the interpreter
TABLE_FLOATS = 1 << 24
#: most distinct variances of one dual the tables take (the ladder holds arrays of variances x up to
#: 481 degrees before the tables' size is known: 2^16 rows, 250 MB; a conv dual has up to n H W
#: pixel variances); beyond, the interpreter
TABLE_VARIANCES = 1 << 16
#: inputs of the sample ``gram`` runs first (rows, and columns of a cross Gram matrix, evenly spaced) ...
SAMPLE = 64
#: ... and the most of its pairs that may be flagged for the loop to be taken: a flagged pair costs
#: the loop's work and the interpreter's (FC ResNet(10) GELU on standard-normal inputs in R^16,
#: n = 1000: 5% of the pairs flagged, 45 s against the interpreter's 7 s, measured)
FLAGGED_MAX = 0.01


class _Probe:
    """A number context that records the ``gaussian_expectation`` calls of an activation's ``dual``
    hook instead of computing them: (fn, keywords) of E1 and, for the NTK, E0, whether each call got
    the hook's own (qx, qz, S), and the arrays it returned."""

    def __init__(self, qx, qz, S):
        self.args, self.calls, self.results = (qx, qz, S), [], []

    def gaussian_expectation(self, fn, qx, qz, S, **kw):
        self.calls.append((fn, kw, qx is self.args[0] and qz is self.args[1] and S is self.args[2]))
        self.results.append(np.zeros(np.shape(S)))
        return self.results[-1]


def probe(act, ntk=True):
    """((fn, kw), (derivative, kw')) -- only the first for the NNGP (``ntk`` False) -- of a quadrature
    activation whose dual is exactly Hermite-route ``gaussian_expectation`` calls on its own (qx, qz, S),
    returned unchanged (:func:`theory.activations._numeric_dual` without ``kinks``), or None (closed
    forms, kinked activations, hooks that do more; an NTK hook without a derivative, which the
    interpreter reports)."""
    if act.closed_form or act.engine_id >= 0:
        return None
    qx, qz, S = np.ones(1), np.ones(1), np.full(1, 0.5)
    p = _Probe(qx, qz, S)
    try:
        E1, E0 = act.dual(qx, qz, S, p, ntk)
    except Exception:       # a hook that needs more of a context than gaussian_expectation
        return None
    want = 2 if ntk else 1
    if (len(p.calls) != want or not all(same for _, _, same in p.calls)
            or any("kinks" in kw for _, kw, _ in p.calls)
            or E1 is not p.results[0] or (ntk and E0 is not p.results[1])):
        return None
    return tuple((fn, kw) for fn, kw, _ in p.calls)


def _coefficients(fn, q, ctx):
    """:func:`numerics.hermite.coefficients` of ``fn`` at the variances ``q`` certified for every
    correlation, with every variance's resolved degrees reaching the largest degree any of them needs
    alone at |rho| = 1 (up to :data:`STORE_DEGREES`): an entry (qx, qz) needs at most the larger of its
    two variances' own degrees (Cauchy-Schwarz on its bound), and a degree past one variance's
    resolved ones has no bound; so a variance with fewer climbs the ladder, as the interpreter's
    retries do (numerics/hermite.py, ``gaussian_expectation_hermite``)."""
    low = np.zeros(q.size, dtype=int)
    while True:
        C = _hermite.coefficients(fn, q, ctx, np.ones(q.size), low)
        with np.errstate(invalid="ignore"):
            alone = C.tail * C.tail <= _hermite.TAIL_RTOL * C.m2[:, None]
        own = np.where(alone.any(axis=1), alone.argmax(axis=1), C.kc)
        resolved = C.kc >= 0
        target = min(STORE_DEGREES, int(own[resolved].max(initial=0)))
        # (a variance the ladder could not lift to the rule asked for stays where it is)
        short = (resolved & (C.kc < target) & (C.level < len(_hermite.STEPS)) & (C.level >= low))
        if not short.any():
            return C
        low[short] = C.level[short] + 1


class Tables:
    """Coefficient tables of the SERIES duals of one Gram matrix: for function f = 0 (the activation)
    and 1 (its derivative) and table row r (one distinct variance of one dual), ``off[f, r]`` the
    start of its coefficients a_k and bounds sqrt(T_k) (k <= ``kc[f, r]``) in the flat ``a`` and
    ``tail``, ``m2[f, r]`` the rule's E[f^2] (the truncation target's scale; nan where nothing is
    resolved) and ``diag[f, r]`` E[f^2] by the one-dimensional rule (the pairs (x, x)).  Row 0 is
    a placeholder of nan (duals whose tables are not built yet)."""

    def __init__(self):
        self.off = np.zeros((2, 1), dtype=np.int64)
        self.kc = np.full((2, 1), -1, dtype=np.int64)
        self.m2 = np.full((2, 1), np.nan)
        self.diag = np.full((2, 1), np.nan)
        self._a, self._tail, self.used = np.zeros(0), np.zeros(0), 0
        #: (f, row) -> (a_k, sqrt(T_k)) for every resolved degree k, past STORE_DEGREES, of the rows of
        #: duals whose variances could share tables in rho (:func:`numerics.rho_tables.clusters`):
        #: those tables are built once, where the stored degrees' tail leaves panels near |rho| = 1
        #: uncertified (:func:`numerics.rho_tables.build`); the per-entry series reads ``a`` only
        self.full = {}

    @property
    def rows(self) -> int:
        return self.off.shape[1]

    @property
    def a(self):
        return self._a[:self.used]

    @property
    def tail(self):
        return self._tail[:self.used]

    def _append(self, a, tail):
        """Append to the flat buffers (capacity doubling: the tables grow dual by dual)."""
        need = self.used + a.size
        if need > self._a.size:
            cap = max(need, min(2 * self._a.size, TABLE_FLOATS // 2), 1024)      # two buffers: TABLE_FLOATS
            self._a = np.concatenate([self._a[:self.used], np.empty(cap - self.used)])
            self._tail = np.concatenate([self._tail[:self.used], np.empty(cap - self.used)])
        self._a[self.used:need] = a
        self._tail[self.used:need] = tail
        self.used = need

    def add(self, calls, q, ctx, want_ntk):
        """Rows for the distinct variances ``q`` of one dual whose ``gaussian_expectation`` calls are
        ``calls``; returns the first row.  NotImplementedError beyond :data:`TABLE_VARIANCES` (before
        the ladder runs) or :data:`TABLE_FLOATS`."""
        if q.size > TABLE_VARIANCES:
            raise NotImplementedError(f"{q.size} distinct variances of one dual exceed TABLE_VARIANCES")
        first = self.rows
        off = np.zeros((2, q.size), dtype=np.int64)
        kc = np.full((2, q.size), -1, dtype=np.int64)
        m2 = np.full((2, q.size), np.nan)
        diag = np.full((2, q.size), np.nan)
        few = len(_rt.clusters(q)) <= _rt.RHO_ROWS
        for f, (fn, kw) in enumerate(calls[:2 if want_ntk else 1]):
            C = _coefficients(fn, q, ctx)
            kcs = np.minimum(C.kc, STORE_DEGREES)
            for i in np.flatnonzero(C.kc > STORE_DEGREES) if few else ():
                self.full[f, first + int(i)] = (C.a[i, :C.kc[i] + 1].copy(), C.tail[i, :C.kc[i] + 1].copy())
            keep = np.arange(C.a.shape[1])[None, :] <= kcs[:, None]
            if 2 * (self.used + keep.sum()) > TABLE_FLOATS:
                raise NotImplementedError("the coefficient tables would exceed TABLE_FLOATS")
            off[f] = self.used + np.concatenate([[0], np.cumsum(kcs + 1)[:-1]])
            self._append(C.a[keep], C.tail[keep])
            kc[f], m2[f] = kcs, C.m2
            with np.errstate(all="ignore"):
                diag[f] = ctx.gaussian_expectation(fn, q, q, q, **kw)
        self.off = np.concatenate([self.off, off], axis=1)
        self.kc = np.concatenate([self.kc, kc], axis=1)
        self.m2 = np.concatenate([self.m2, m2], axis=1)
        self.diag = np.concatenate([self.diag, diag], axis=1)
        return first

    def arrays(self):
        """(off, kc, m2, diag, a, tail) as the arrays :mod:`numerics.series_lanes` reads."""
        return self.off, self.kc, self.m2, self.diag, self.a, self.tail





@_jit
def column_tables(ops, RZ, off, kc, a, tail, want_ntk, ZA, ZT):
    """Fill ZA, ZT, (2 n_duals, W <= LANE_DEGREES, m), zeros and inf on entry, with the coefficients a_k
    and bounds of the columns' variances, ZA[2 d + f, k, j] = a_k of function f at RZ[d, j], k < W (0
    past its resolved degrees, bound inf), for the SERIES duals d (untouched elsewhere): read on
    contiguous lanes by :func:`numerics.series_lanes.series_dual`."""
    m = RZ.shape[1]
    W = ZA.shape[1]
    d = 0
    for o in range(ops.shape[0]):
        if ops[o, 1] < 0:
            continue
        if ops[o, 1] == SERIES:
            for f in range(2 if want_ntk else 1):
                for j in range(m):
                    r = RZ[d, j]
                    oz = off[f, r]
                    for k in range(min(W, kc[f, r] + 1)):
                        ZA[2 * d + f, k, j] = a[oz + k]
                        ZT[2 * d + f, k, j] = tail[oz + k]
        d += 1


def sample_indices(n, m, symmetric, size):
    """The rows (and, for a cross Gram matrix, columns) of the sample ``gram`` runs first: ``size``
    evenly spaced indices of n (and of m); the columns are the rows when ``symmetric``."""
    ix = np.unique(np.linspace(0, n - 1, size).astype(int))
    return ix, ix if symmetric else np.unique(np.linspace(0, m - 1, size).astype(int))


def record_tables(calls, inputs, n_duals, record, ctx, want_ntk):
    """The variances of every dual's argument per input (and pixel) and the coefficient tables of the
    SERIES duals, one dual at a time: a dual's variance needs the previous duals' second moments, so
    ``record(v, V, R, tables, d)`` runs the loop's own diagonal maps on the inputs ``v`` up to dual d
    with the tables built so far (V, R: the variances and table rows recorded before) and returns
    dual d's variances, shape v.shape[:-1]; then one table row per distinct variance of a SERIES
    dual (``calls[d]`` not None) over all ``inputs``.  Returns ([(V, R) per input array], tables):
    V (n_duals,) + v.shape[:-1] float64, R the same shape int64.  NotImplementedError where a variance
    is not finite (the interpreter reports it) or :meth:`Tables.add` refuses."""
    sides = [(v, np.full((n_duals,) + v.shape[:-1], np.nan), np.zeros((n_duals,) + v.shape[:-1], dtype=np.int64))
             for v in inputs]
    tables = Tables()
    for d in range(n_duals):
        for v, V, R in sides:
            V[d] = record(v, V, R, tables, d)
            if not np.all(np.isfinite(V[d])):
                raise NotImplementedError("a variance is not finite")
        if calls[d] is not None:
            q = np.unique(np.concatenate([V[d].ravel() for _, V, _ in sides]))
            first = tables.add(calls[d], q, ctx, want_ntk)
            for _, V, R in sides:
                R[d] = first + np.searchsorted(q, V[d])
    return [(V, R) for _, V, R in sides], tables


def calls_of(maps, ntk=True):
    """Per dual activation of ``maps`` (in order): its :func:`probe` where it is not a closed form
    the compiled loop evaluates, else None."""
    out = []
    for m in maps:
        act = getattr(m, "activation", None)
        if act is not None:
            out.append(None if act.engine_id in GENERAL_IDS else probe(act, ntk))
    return out

"""Float64 duals without a closed form by the Hermite (Mehler) expansion, with a computed bound
on the truncation error.

Let (u, v) ~ N(0, [[qx, S], [S, qz]]), rho = S / sqrt(qx qz) and h_k = He_k / sqrt(k!) the
orthonormal (probabilists') Hermite polynomials.  Mehler's formula gives (O'Donnell, *Analysis
of Boolean Functions*, ch. 11; Daniely et al. 2016, section 4 for its use on dual activations)

    E[f(u) f(v)] = sum_k a_k(qx) a_k(qz) rho^k,   a_k(q) = E[f(sqrt(q) Z) h_k(Z)],

and the coefficients depend on one variance only, so a Gram block needs them once per *distinct*
variance and then one K-term polynomial in rho per entry.  Since |rho| <= 1, Cauchy-Schwarz
bounds the truncation after degree K by

    |sum_{k>K} a_k(qx) a_k(qz) rho^k| <= |rho|^(K+1) sqrt(T_K(qx) T_K(qz)),
    T_K(q) = sum_{k>K} a_k(q)^2 = E[f(sqrt(q) Z)^2] - sum_{k<=K} a_k(q)^2.

Coefficients (:func:`coefficients`).  The trapezoid rule with step h (nodes x_i = h i, weights
w_i = h phi(x_i), phi the standard normal density) on [-R, R] with R = 2 sqrt(K) + 8 makes the rows
V_ki = sqrt(w_i) h_k(x_i), k <= K, orthonormal to rounding as long as sqrt(K) <= pi / h - 4.5 (the
rule's error on h_j h_k phi, entire, is about exp(-(2 pi / h - 2 sqrt(K))^2 / 2) <= e^-40; measured:
|V V^T - I| <= 3 eps sqrt(nodes) on every rule, tested).  With F_i = sqrt(w_i) f(sqrt(q) x_i)
(zero for |x_i| > 13, where sqrt(w_i) < 5e-19 sqrt(h), unless f puts mass near |x| = 13:
``EDGE_RTOL``) the discrete coefficients a^h = V F satisfy
Parseval with the projection residual, ||F||^2 = sum_k (a^h_k)^2 + ||F - V^T a^h||^2, so the discrete
tail T^h_K = sum_{K<k<=K_max} (a^h_k)^2 + ||F - V^T a^h||^2 is a sum of squares (no cancellation),
which is what makes the bound computable in float64 down to 1e-16 of E[f^2].  Unlike Gauss-Hermite,
whose error for a function analytic in the strip |Im x| < d only falls like exp(-d sqrt(2 n)) in
the nodes n (tanh at q = 2.5: the 182- and 273-point rules still differ by 2e-9), the trapezoid
rule converges like exp(-2 pi d / h) (Trefethen & Weideman 2014), so the coefficients of tanh at
the variances of deep layers (q ~ 2.5, d ~ 1) agree to rounding from h ~ 0.12.  h climbs the ladder
:data:`STEPS` (ratio 2/3) with K_max = min(:data:`K_CAP`, (pi / h - 4.5)^2) degrees; a variance is
*certified* at rule j when (i) its discrete tail falls below ``TAIL_RTOL`` E[f^2] at a degree
K <= K_max(h_(j-1)) and (ii) the coefficients of rules j - 1 and j agree to ``AGREE_ATOL``
sqrt(E[f^2]) for k <= K (the convergence check by refinement).  The bound kept for the entries adds
that disagreement d to the tail: T_K <= (sqrt(T^h_K) + d)^2.

Where a variance is not certified by the last level (kinks, step-like functions: algebraic decay;
functions with a narrow strip of analyticity at large variances)
or an entry's bound is not below ``TAIL_RTOL`` sqrt(E[f(u)^2] E[f(v)^2]) at any stored degree,
:func:`gaussian_expectation_hermite` reports those entries, and the caller takes them by its
quadrature (numerics/variance.py).  Entries with S == qx == qz exactly (an input with itself)
are left to the caller's one-dimensional second moment E[f^2], the diagonal exact to rounding.

The ladder climbs per variance only as far as its entries need: to the largest |rho| among them
(``rho_need``), and one rule further where a partner variance needs more resolved degrees.
Unnormalised inputs give variances of 10-100 (R^16, standard normal), where x -> tanh(sqrt(q) x)
has its poles at +-i pi / (2 sqrt(q)) and rules with h >= 0.053 cannot resolve it; the fine rules
j >= ``FINE`` (h down to 0.0104) resolve it to q ~ 150 (|rho| <= 0.93 certified there), and are
climbed only by variances whose disagreement falls geometrically (``CLIMB_GAIN``).
Each rule's refinement check is cached per (function, variance, rule) (the discrete coefficients
only for the rest of a call: the next rule's check needs them), and the ladder is
replayed on every call, so a call's result depends on its arguments only (not on earlier calls);
the tiles of one Gram matrix share the variances of their rows and columns.  That needs a
variance's coefficients to be the same bits whichever batch of variances computes them: the
projection a^h = V F runs row by row in a fixed order (:func:`_project_loop`), because a BLAS
product rounds a row differently with the batch's size (OpenBLAS: ~1e-16, measured; with BLAS a
Gram matrix computed after another that met the same variances first, or on two threads whose
tiles raced to compute shared variances, differed from a fresh one-thread one by 1e-17 to 3e-17 of
its scale); without numba the projection is BLAS's and this holds only for one thread and a fresh
cache.  Where the rule a variance stops at depends on the |rho| of the entries in the
same call, different tilings may take an entry from different rules: they agree within the
stated bound, not bit for bit.

Per entry (:func:`series`): the least degree K whose bound meets the target, then Horner.  A
Gram tile (rows' variances x columns' variances) runs a row's entries side by side
(:func:`_series_tile_loop`, the same operations per entry); the coefficient rows are gathered only
up to the largest least degree the call's variances need at their largest |rho| (by
Cauchy-Schwarz no entry needs more than the larger of its two variances' own), and entries that
still find no degree there are retried on all resolved degrees, so the values are those of the
untrimmed rows bit for bit (FC ResNet(10, 0.5) tanh NTK, n = 1000, one thread, warm: 2.2 -> 1.5 s).
"""
from __future__ import annotations

import math
import threading
from functools import lru_cache

import numpy as np
import scipy.special

try:  # optional dependency: the per-entry series loop
    import numba
except ImportError:  # pragma: no cover - exercised where numba is absent
    numba = None

#: trapezoid ladder: steps h (ratio 2/3)
STEPS = tuple(0.4 * (2 / 3) ** j for j in range(10))
#: the fine rules j >= FINE (h <= 0.035) are climbed only by a variance whose refinement
#: disagreement fell at least ``CLIMB_GAIN``-fold over the last two levels (an analytic f with a
#: narrow strip: tanh at q >~ 10, whose error exp(-2 pi d / h) falls geometrically in 1 / h), not
#: by one that converges algebraically (a kink: h^2, 2.25-fold a level) and would only pay for
#: more rules before its entries fall back anyway
FINE = 6
CLIMB_GAIN = 10.0
#: most degrees a rule carries (the rules from h = 0.119 on carry this many)
K_CAP = 480
#: f is evaluated on |x| <= F_RADIUS (sqrt(phi(13)) = 4.5e-19 / 2 pi^(1/4)) ...
F_RADIUS = 13.0
#: ... unless the rule's E[f^2] has more than this fraction on F_RADIUS - 1 <= |x| <= F_RADIUS (a
#: fast-growing f, e.g. exp(x) at q >~ 4): then on every node of the rule, |x| <= 2 sqrt(K) + 8, whose
#: radius grows along the ladder, so the refinement check sees a truncation that still matters
EDGE_RTOL = 2.0 ** -100
#: truncation target, relative to sqrt(E[f(u)^2] E[f(v)^2]) (the dual's scale)
TAIL_RTOL = 2.0 ** -53
#: refinement check: successive levels agree to this many sqrt(E[f^2]) on the used coefficients
AGREE_ATOL = 64 * 2.0 ** -53
#: cached floats (the check tables of every rule and function) before the cache is cleared
_CACHE_FLOATS = 32_000_000


def degrees(h: float) -> int:
    """K_max of the rule with step h: min(K_CAP, floor((pi / h - 4.5)^2)) (module docstring)."""
    return min(K_CAP, int((math.pi / h - 4.5) ** 2))


@lru_cache(maxsize=2)
def trapezoid_rule(j: int):
    """(x, s, V, inner) of ladder rule j (step h = STEPS[j], K = degrees(h)): nodes x = h i on
    [-R, R], R = 2 sqrt(K) + 8; s_i = sqrt(h phi(x_i)); V_ki = s_i h_k(x_i), k <= K, rows orthonormal
    to rounding; ``inner`` the boolean mask |x| <= F_RADIUS where f is evaluated.  Overflow-free: the
    recurrence runs on the Hermite functions g_k = exp(-x^2/4) h_k, and V = g sqrt(h / sqrt(2 pi)).

    >>> x, s, V, inner = trapezoid_rule(3)
    >>> V.shape, bool(np.abs(V @ V.T - np.eye(V.shape[0])).max() < 1e-13), bool(abs(s @ s - 1) < 1e-14)
    ((481, 875), True, True)
    """
    if not 0 <= j < len(STEPS):
        raise ValueError(f"j must be a rule of the ladder, 0 <= j < {len(STEPS)}, got {j}")
    h = STEPS[j]
    K = degrees(h)
    k = int((2 * math.sqrt(K) + 8) / h)
    x = h * np.arange(-k, k + 1)
    c = math.sqrt(h / math.sqrt(2 * math.pi))
    V = _hermite_functions(x, K + 1) * c
    s = np.exp(-x * x / 4) * c
    return x, s, V, np.abs(x) <= F_RADIUS


@lru_cache(maxsize=None)
def _split_rule(j: int):
    """Rule j as :func:`_discrete` uses it: (x, s, V) on the nodes |x| <= F_RADIUS and an upper
    triangular R with R^T R = V_off V_off^T for the other nodes (QR of V_off^T), so that the residual
    there, ||V_off^T a||^2 = ||R a||^2, costs (K + 1)^2 instead of (K + 1) x nodes (the fine rules
    carry up to 1e4 nodes, most of them outside)."""
    x, s, V, inner = trapezoid_rule(j)
    return (x[inner], s[inner], np.ascontiguousarray(V[:, inner]),
            np.linalg.qr(V[:, ~inner].T, mode="r"))


def _hermite_functions(x, n):
    """g_k(x) = exp(-x^2/4) h_k(x), k < n, by the normalised three-term recurrence
    h_(k+1) = (x h_k - sqrt(k) h_(k-1)) / sqrt(k + 1)."""
    G = np.empty((n, x.size))
    G[0] = np.exp(-x * x / 4)
    if n > 1:
        G[1] = x * G[0]
    for k in range(1, n - 1):
        G[k + 1] = (x * G[k] - math.sqrt(k) * G[k - 1]) / math.sqrt(k + 1)
    return G


class Coefficients:
    """Certified Hermite data of distinct variances (u indexes them).

    ``a``: (nu, W) coefficients a_k(q_u), k <= Kc(u) (zero past them); ``tail``: (nu, W)
    bounds sqrt(T_k(q_u)) for k <= Kc(u), inf past them; ``kc``: (nu,) Kc(u), the resolved
    degrees (-1 where none); ``m2``: (nu,) the rule's
    E[f(sqrt(q) Z)^2] (nan where no coefficient is resolved); ``rho_cert``: (nu,) the largest
    |rho| at which the variance meets the target on its own, |rho|^(K+1) tail_K^2 <= ``TAIL_RTOL``
    m2 for some K <= Kc (1: certified for every correlation); ``level``: (nu,) 1 + the index of
    the rule in :data:`STEPS` the data come from (0 where nothing is resolved).  W = max Kc + 1
    (:attr:`width`), or fewer columns where :func:`coefficients` was asked to ``trim``: then :meth:`widened` gives
    all of them."""

    __slots__ = ("a", "tail", "kc", "m2", "rho_cert", "level", "_picks")

    def __init__(self, a, tail, kc, m2, rho_cert, level, picks=()):
        self.a, self.tail, self.kc, self.m2, self.rho_cert, self.level = a, tail, kc, m2, rho_cert, level
        self._picks = picks

    @property
    def width(self) -> int:
        """max Kc + 1: the columns that hold every resolved degree."""
        return _full_width(self.kc)

    @property
    def trimmed(self) -> bool:
        """Whether ``a`` and ``tail`` hold fewer columns than the resolved degrees."""
        return self.a.shape[1] < self.width

    def widened(self):
        """(a, tail) with every resolved degree (max Kc + 1 columns)."""
        if not self.trimmed:
            return self.a, self.tail
        return _assemble(self._picks, self.a.shape[0], self.width)


def _full_width(kc) -> int:
    """max Kc + 1 over the variances (1 where none is resolved)."""
    return max(int(kc.max(initial=-1)), 0) + 1


_cache: dict = {}          # (fn, rule, "check") -> _CheckTable
_cache_lock = threading.Lock()


def cached_floats() -> int:
    """Floats the check tables of :data:`_cache` hold (what ``_CACHE_FLOATS`` caps)."""
    return sum(t.size() for t in list(_cache.values()))


def coefficients(fn, q, ctx, rho_need=None, min_level=None, trim=False) -> Coefficients:
    """Hermite coefficients of x -> fn(sqrt(q) x) for each (distinct, >= 0) variance in ``q``,
    certified by the trapezoid ladder of the module docstring; ``fn(x, ctx)`` is evaluated
    on float64 arrays.  ``rho_need`` (per variance, default 1): the ladder climbs only until the
    variance meets the target at that |rho| (the largest correlation its entries have), or to its
    last rule; ``min_level`` (per variance, 1 + rule index): not below that rule (a partner variance
    needs more degrees).  Each rule's refinement check is cached per (fn, variance, rule), and the
    ladder is replayed (by cached per-rule checks) from its first rule on every call, so the result
    depends on the arguments only, never on what earlier calls computed (module docstring).  ``trim``: keep only the columns up to the largest least degree the variances
    need at ``rho_need`` (with numba; the entries of :func:`series` that find no degree in them are
    retried on :meth:`Coefficients.widened`)."""
    q = np.asarray(q, dtype=float).ravel()
    if np.any(~np.isfinite(q)) or np.any(q < 0):
        raise ValueError("q must hold finite variances >= 0")
    need = np.ones(q.size) if rho_need is None else np.asarray(rho_need, dtype=float).ravel()
    low = np.zeros(q.size, dtype=int) if min_level is None else np.asarray(min_level, dtype=int).ravel()
    picks = _ladder(fn, q, need, low, ctx)
    kc = np.full(q.size, -1, dtype=np.int64)
    for t, u, pos in picks:
        kc[u] = t.kc[pos]
    width = _full_width(kc)
    if trim and _least_degree_compiled is not None:
        # every entry's least K is at most the larger of its two variances' least K at their rho_need
        # (Cauchy-Schwarz on the two factors of the entry's bound); the caller widens where not
        width = min(width, 1 + max([int(_least_degree(t, pos, need[u]).max()) for t, u, pos in picks],
                                   default=0))
    a, tail = _assemble(picks, q.size, width)
    m2 = np.full(q.size, np.nan)
    level = np.zeros(q.size, dtype=int)
    rho_cert = np.zeros(q.size)
    for t, u, pos in picks:
        m2[u], level[u], rho_cert[u] = t.m2[pos], t.j + 1, t.rho_cert[pos]
    return Coefficients(a, tail, kc, m2, rho_cert, level, picks)


def _assemble(picks, nu, width):
    """(a, tail), (nu, width): the picked rows, zero and inf past each row's resolved degrees."""
    a = np.zeros((nu, width))
    tail = np.full((nu, width), np.inf)
    for t, u, pos in picks:
        if _gather_compiled is not None:
            _gather_compiled(t.a, t.bound, t.off, t.kc, pos.astype(np.int64), u.astype(np.int64), a, tail)
        else:  # pragma: no cover - numba absent
            a[u], tail[u] = t.rows(pos, width, np.inf)
    return a, tail


def _least_degree(table, pos, need):
    """Per row ``pos`` of a :class:`_CheckTable`: the least K <= kc with
    need^(K+1) bound_K^2 <= TAIL_RTOL m2 (kc where there is none)."""
    out = np.empty(pos.size, dtype=np.int64)
    _least_degree_compiled(table.bound, table.off, table.kc, table.m2, np.asarray(need, dtype=float),
                           pos.astype(np.int64), TAIL_RTOL, out)
    return out


def _least_degree_loop(bound, off, kc, m2, need, pos, rtol, out):
    for r in range(pos.size):
        p = pos[r]
        o = off[p]
        c = kc[p]
        target = rtol * m2[p]
        x = need[r]
        pw = x
        K = c
        for k in range(c + 1):
            b = bound[o + k]
            if b == 0.0 or pw * b * b <= target:
                K = k
                break
            pw *= x
        out[r] = K


def _gather_loop(flat_a, flat_bound, off, kc, pos, rows, a, tail):
    """a[rows[r], k], tail[rows[r], k] = the table's row pos[r], k <= kc (and within the width)."""
    width = a.shape[1]
    for r in range(pos.size):
        p = pos[r]
        o = off[p]
        u = rows[r]
        for k in range(min(kc[p] + 1, width)):
            a[u, k] = flat_a[o + k]
            tail[u, k] = flat_bound[o + k]


def _values(fn, q, x, s, ctx):
    """F_ui = s_i fn(sqrt(q_u) x_i) (rows: variances)."""
    return np.broadcast_to(fn(np.sqrt(q)[:, None] * x[None, :], ctx), (q.size, x.size)) * s[None, :]


def _project(F, V_on, R_off, VT=None, RT=None):
    """(a, ||F||^2, ||F - V^T a||^2) for F given on the nodes of ``V_on`` (zero on the others, whose
    Gram matrix is R_off^T R_off): a = V_on F, and the residual on both sets of nodes, a sum of
    squares.  Each row by the same operations in the same order whatever rows come with it
    (:func:`_project_loop`, compiled; ``VT``, ``RT``: V_on^T and R_off^T contiguous, made here when
    not given), so that a variance's coefficients do not depend on the batch that computes them (a
    BLAS product rounds a row differently with the batch's size: ~1e-16, measured); without numba,
    BLAS."""
    if _project_compiled is None:  # pragma: no cover - numba absent
        A = F @ V_on.T
        r_on = F - A @ V_on
        r_off = A @ R_off.T
        return (A, np.einsum("ui,ui->u", F, F),
                np.einsum("ui,ui->u", r_on, r_on) + np.einsum("ui,ui->u", r_off, r_off))
    nu = F.shape[0]
    A, m2, res = np.empty((nu, V_on.shape[0])), np.empty(nu), np.empty(nu)
    VT = np.ascontiguousarray(V_on.T) if VT is None else VT
    RT = np.ascontiguousarray(R_off.T) if RT is None else RT
    _project_compiled(np.ascontiguousarray(F), VT, V_on, RT, A, m2, res)
    return A, m2, res


@lru_cache(maxsize=None)
def _split_rule_transposed(j: int):
    """(V^T, R^T) of :func:`_split_rule` (j), contiguous: what :func:`_project_loop` streams by rows."""
    _, _, V, R = _split_rule(j)
    return np.ascontiguousarray(V.T), np.ascontiguousarray(R.T)


#: rows of F a pass of :func:`_project_loop` takes together (each streamed matrix row serves them)
_PROJECT_ROWS = 8


def _project_loop(F, VT, V, RT, A, m2, res):
    """:func:`_project` row by row: A[u] = sum_i F[u, i] V[:, i] (i ascending), r = F[u] - sum_k
    A[u, k] V[k] (k ascending), m2[u] = sum_i F[u, i]^2, res[u] = sum_i r_i^2 + ||R_off A[u]||^2;
    rows in blocks of :data:`_PROJECT_ROWS` so that each row of VT, V, RT is loaded once a block,
    the arithmetic of a row the same in any block."""
    nu, n = F.shape
    K1 = VT.shape[1]
    mo = RT.shape[1]
    B = _PROJECT_ROWS
    acc = np.empty((B, K1))
    r = np.empty((B, n))
    ro = np.empty((B, mo))
    for u0 in range(0, nu, B):
        b = min(B, nu - u0)
        acc[:b] = 0.0
        for i in range(n):
            row = VT[i]
            for t in range(b):
                f = F[u0 + t, i]
                at = acc[t]
                for k in range(K1):
                    at[k] += f * row[k]
        r[:b] = 0.0
        ro[:b] = 0.0
        for k in range(K1):
            vk = V[k]
            rk = RT[k]
            for t in range(b):
                a = acc[t, k]
                rt = r[t]
                for i in range(n):
                    rt[i] += a * vk[i]
                ot = ro[t]
                for m in range(mo):
                    ot[m] += a * rk[m]
        for t in range(b):
            u = u0 + t
            s_f = 0.0
            s_on = 0.0
            for i in range(n):
                f = F[u, i]
                d = f - r[t, i]
                s_f += f * f
                s_on += d * d
            s_off = 0.0
            for m in range(mo):
                s_off += ro[t, m] * ro[t, m]
            for k in range(K1):
                A[u, k] = acc[t, k]
            m2[u] = s_f
            res[u] = s_on + s_off


def _discrete(fn, q, j, ctx, memo):
    """(A, m2, res): rule j's discrete coefficients (rows: variances), E[f^2] and projection
    residual ||F - V^T a||^2 (module docstring), kept in ``memo`` for the rest of the ladder's call
    (the next rule's check needs them again; later calls need only the checks)."""
    A = np.empty((q.size, degrees(STEPS[j]) + 1))
    m2 = np.empty(q.size)
    res = np.empty(q.size)
    miss = []
    for u, qu in enumerate(q.tolist()):
        hit = memo.get((qu, j))
        if hit is None:
            miss.append(u)
        else:
            A[u], m2[u], res[u] = hit
    if miss:
        x, s, V, R = _split_rule(j)
        qm = q[miss]
        with np.errstate(all="ignore"):
            F = _values(fn, qm, x, s, ctx)
            Am, mm, rm = _project(F, V, R, *_split_rule_transposed(j))
            # f that grows fast enough to put mass near |x| = F_RADIUS (exp(x) at q >~ 4): every node
            edge = np.abs(x) >= F_RADIUS - 1
            wide = ~(np.einsum("ui,ui->u", F[:, edge], F[:, edge]) <= EDGE_RTOL * mm)
            if np.any(wide):
                xa, sa, Va, _ = trapezoid_rule(j)
                Am[wide], mm[wide], rm[wide] = _project(_values(fn, qm[wide], xa, sa, ctx), Va, R[:0])
            A[miss] = Am
            m2[miss] = mm
            res[miss] = rm
        for u in miss:
            memo[(float(q[u]), j)] = (A[u], float(m2[u]), float(res[u]))
    return A, m2, res


class _CheckTable:
    """Rule j's refinement checks of the variances computed so far, a row per variance in the
    order they were added: ``kc`` (the agreement prefix 0..kc, -1 where not even a_0 agrees),
    ``m2``, ``rho_cert`` (as in :class:`Coefficients`), ``climb`` (whether the variance may go on
    to rule j + 1 >= FINE), and the agreeing coefficients and their bounds, k <= kc, kept end to
    end in the flat buffers ``a`` and ``bound`` from ``off``; an index (variances sorted, their
    rows) finds them.  Rows are only appended, never changed (storage doubles when full), and the
    index is replaced as a whole, so a reader's rows stay valid while another thread adds."""

    _ROWS = ("kc", "m2", "rho_cert", "climb", "off")

    def __init__(self, j):
        self.j, self.used = j, 0
        self.index = (np.empty(0), np.empty(0, dtype=np.int64))
        self.kc, self.off = np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
        self.m2, self.rho_cert = np.empty(0), np.empty(0)
        self.climb = np.empty(0, dtype=bool)
        self.a, self.bound = np.empty(0), np.empty(0)

    @property
    def n(self) -> int:
        """Rows held (those the index lists)."""
        return self.index[1].size

    def find(self, q):
        """Row of each variance in ``q`` (-1 where it has none)."""
        keys, rows = self.index
        if keys.size == 0:
            return np.full(q.size, -1, dtype=np.int64)
        pos = np.minimum(np.searchsorted(keys, q), keys.size - 1)
        return np.where(keys[pos] == q, rows[pos], -1)

    def rows(self, pos, width, fill):
        """(a, bound) of rows ``pos`` as (len(pos), width) arrays, zero and ``fill`` past kc."""
        cols = np.arange(width)[None, :]
        valid = cols <= self.kc[pos][:, None]
        idx = np.where(valid, self.off[pos][:, None] + cols, 0)
        return np.where(valid, self.a[idx], 0.0), np.where(valid, self.bound[idx], fill)

    @staticmethod
    def _grow(arr, need):
        if need <= arr.shape[0]:
            return arr
        new = np.empty(max(2 * arr.shape[0], need, 64), dtype=arr.dtype)
        new[:arr.shape[0]] = arr
        return new

    def add(self, q, kc, a, bound, m2, rho_cert, climb):
        """Append rows for the variances ``q`` (not yet in the table; caller holds the lock); ``a``,
        ``bound``: (len(q), width) arrays of which the first kc + 1 columns are kept."""
        m, n = q.size, self.n
        keep = np.arange(a.shape[1])[None, :] <= kc[:, None]
        size = int(keep.sum())
        off = self.used + np.concatenate([[0], np.cumsum(kc + 1)[:-1]]).astype(np.int64)
        for f, v in zip(self._ROWS, (kc, m2, rho_cert, climb, off)):
            arr = self._grow(getattr(self, f), n + m)
            arr[n:n + m] = v
            setattr(self, f, arr)
        for f, v in (("a", a), ("bound", bound)):
            arr = self._grow(getattr(self, f), self.used + size)
            arr[self.used:self.used + size] = v[keep]
            setattr(self, f, arr)
        keys, rows = self.index
        keys = np.concatenate([keys, q])
        rows = np.concatenate([rows, np.arange(n, n + m)])
        order = np.argsort(keys, kind="stable")
        self.used += size
        self.index = (keys[order], rows[order])

    def size(self):
        """Floats held: the coefficients and bounds, five numbers a row."""
        return 2 * self.used + 5 * self.n


def _checks(fn, q, j, ctx, memo):
    """Level j's refinement check (j >= 1) of every variance in ``q``: the rule's
    :class:`_CheckTable` and the row of each variance in it, the agreeing coefficients a_k
    (k <= kc), their bounds (module docstring) and the |rho| they certify.  It depends on
    (fn, variance, j) only (rules j - 1 and j, and j - 2 for ``climb``), so it is cached: a call
    replays the ladder by vectorised lookups instead of recomputing every level's tails; ``memo``
    holds the call's discrete coefficients."""
    key = (fn, j, "check")
    kr = degrees(STEPS[j - 1])                                          # degrees the last rule carries
    table = _cache.get(key)
    if table is None:
        with _cache_lock:
            table = _cache.setdefault(key, _CheckTable(j))
    pos = table.find(q)
    if np.all(pos >= 0):
        return table, pos
    qm = q[pos < 0]                  # in the order asked (a batch's rounding in _discrete follows it)
    A, m2, rsd = _discrete(fn, qm, j, ctx, memo)                        # (u, k): discrete coefficients
    prev = _discrete(fn, qm, j - 1, ctx, memo)[0]
    sq = A * A
    T = np.cumsum(sq[:, ::-1], axis=1)[:, ::-1]                         # T[:, k] = sum_{k' >= k}
    # T[:, K] = sum_{K < k <= K_max} + the projection residual
    T = np.concatenate([T[:, 1:], np.zeros((qm.size, 1))], axis=1) + rsd[:, None]
    valid = np.isfinite(m2) & np.isfinite(rsd) & np.all(np.isfinite(A), axis=1)
    scale = np.sqrt(np.where(valid, m2, 0.0))
    d = A[:, :kr + 1] - prev[:, :kr + 1]
    bad = ~(np.abs(d) <= AGREE_ATOL * scale[:, None])
    kc = np.where(bad.any(axis=1), np.argmax(bad, axis=1) - 1, kr)     # agreement prefix 0..kc
    kc = np.where(valid, kc, -1)
    # bound[K] = sqrt(T_K) + ||d_(K, kr]||
    D = np.cumsum((d * d)[:, ::-1], axis=1)[:, ::-1]
    D = np.concatenate([D[:, 1:], np.zeros((qm.size, 1))], axis=1)
    cols = np.arange(kr + 1)[None, :]
    with np.errstate(all="ignore"):
        bound = np.where(cols <= kc[:, None], np.sqrt(T[:, :kr + 1]) + np.sqrt(D), np.inf)
        # the largest |rho| with |rho|^(K+1) bound_K^2 <= TAIL_RTOL m2 for some K <= kc
        ratio = TAIL_RTOL * m2[:, None] / (bound * bound)
        rk = np.where(ratio >= 1, 1.0, ratio ** (1.0 / (cols + 1)))
    rho_cert = np.where(kc >= 0, np.max(np.where(np.isnan(rk), 0.0, rk), axis=1), 0.0)
    climb = np.full(qm.size, j + 1 < FINE)
    if FINE <= j + 1 < len(STEPS):       # disagreement still above the check's and falling fast
        k2 = degrees(STEPS[j - 2])
        prev2 = _discrete(fn, qm, j - 2, ctx, memo)[0]
        with np.errstate(all="ignore"):
            dis = np.max(np.abs(d), axis=1)
            dis_prev = np.max(np.abs(prev[:, :k2 + 1] - prev2), axis=1)
            climb = valid & (dis > AGREE_ATOL * scale) & (CLIMB_GAIN * dis <= dis_prev)
    with _cache_lock:
        if cached_floats() > _CACHE_FLOATS:
            _cache.clear()
        # one row per variance (the last of repeats, as a per-variance dict would keep), none that
        # another thread added meanwhile; the rows go into this call's table, which stays (or
        # becomes) the cached one unless another thread has put a new one in its place
        fresh = np.zeros(qm.size, dtype=bool)
        fresh[qm.size - 1 - np.unique(qm[::-1], return_index=True)[1]] = True
        fresh &= table.find(qm) < 0
        table.add(qm[fresh], kc[fresh], A[fresh, :kr + 1], bound[fresh], m2[fresh], rho_cert[fresh],
                  climb[fresh])
        if _cache.get(key) is None and table.size() <= _CACHE_FLOATS // 4:
            # (back) into a cleared cache, unless the table alone would fill it: then the next call
            # starts a fresh one, so that no table grows without bound or clears the others each time
            _cache[key] = table
    return table, table.find(q)


def _ladder(fn, q, need, low, ctx):
    """Where each variance's data come from: a list of (table, u, rows), the variances ``u`` taken
    from those rows of a level's :class:`_CheckTable` -- the first level that certifies ``need``
    (and is at least rule ``low`` - 1), or the last level the variance may reach (the last rule, or
    FINE - 1 and above where its check does not ``climb``; then also below rule ``low`` - 1); a
    variance in no entry has not even a_0 resolved."""
    picks = []
    left = np.arange(q.size)
    last = len(STEPS) - 1
    climb = np.ones(q.size, dtype=bool)
    memo = {}
    for j in range(1, len(STEPS)):
        # a variance is examined from rule low - 1 on, and from FINE - 1 on always (its climb flag)
        act = left if j >= FINE - 1 else left[low[left] <= j + 1]
        if j >= FINE:
            act = act[climb[act]]
        if act.size == 0:
            continue
        table, pos = _checks(fn, q[act], j, ctx, memo)
        kc, rc = table.kc[pos], table.rho_cert[pos]
        climb[act] = table.climb[pos]
        final = ~table.climb[pos] if j >= FINE - 1 else np.zeros(act.size, dtype=bool)
        final |= j == last
        done = (kc >= 0) & (((rc >= need[act]) & (low[act] <= j + 1)) | final)
        if np.any(done):
            picks.append((table, act[done], pos[done]))
        left = np.setdiff1d(left, act[done | final], assume_unique=True)
        if left.size == 0:
            break
    return picks


def gaussian_expectation_hermite(fn, qx, qz, S, ctx):
    """E[fn(u) fn(v)] by the Hermite expansion (module docstring) on broadcastable float64 arrays.

    Returns (out, fallback): ``out`` the values (nan where not taken), ``fallback`` a boolean array
    of the entries the expansion did not certify (the caller takes them by quadrature).  Entries
    with S == qx == qz (an input with itself) are not taken here: they are all in ``fallback``,
    for the caller's one-dimensional second moment."""
    qx0, qz0, S0 = (np.asarray(a, dtype=float) for a in (qx, qz, S))
    shape = np.broadcast_shapes(qx0.shape, qz0.shape, S0.shape)
    qx1 = np.broadcast_to(qx0, shape).ravel()
    qz1 = np.broadcast_to(qz0, shape).ravel()
    S1 = np.broadcast_to(S0, shape).ravel()
    out = np.full(S1.size, np.nan)
    fallback = (S1 == qx1) & (qx1 == qz1)
    if np.all(fallback):
        return out.reshape(shape), fallback.reshape(shape)
    ux, ix = np.unique(qx0, return_inverse=True)
    same = qz0 is qx0 or (qz0.shape == qx0.shape and np.array_equal(qz0, qx0))
    if same:
        uz, iz = ux, ix
    else:
        uz, iz = np.unique(qz0, return_inverse=True)
    q_all = ux if same else np.concatenate([ux, uz])
    iz = iz.reshape(qz0.shape) + (0 if same else ux.size)
    # a tile (rows' variances x columns' variances): the series runs a row's entries side by side
    tile = ((ix.reshape(-1), iz.reshape(-1)) if len(shape) == 2 and qx0.shape == (shape[0], 1)
            and qz0.shape == (1, shape[1]) else None)
    ix = np.broadcast_to(ix.reshape(qx0.shape), shape).ravel()
    iz = np.broadcast_to(iz, shape).ravel()
    with np.errstate(over="ignore"):     # qx qz beyond float64: the caller makes those entries nan
        g = np.sqrt(qx1 * qz1)
    pos = g > 0
    rho = np.clip(np.where(pos, S1 / np.where(pos, g, 1.0), 0.0), -1.0, 1.0)
    off = ~fallback
    need = np.zeros(q_all.size)
    if tile is not None:        # the rows' and the columns' largest |rho| (0 where not asked: need >= 0)
        ar = np.where(off, np.abs(rho), 0.0).reshape(shape)
        np.maximum.at(need, tile[0], ar.max(axis=1))
        np.maximum.at(need, tile[1], ar.max(axis=0))
    else:
        np.maximum.at(need, ix[off], np.abs(rho[off]))
        np.maximum.at(need, iz[off], np.abs(rho[off]))
    low = np.zeros(q_all.size, dtype=int)
    todo = off
    while True:
        C = coefficients(fn, q_all, ctx, need, low, trim=True)
        with np.errstate(invalid="ignore", over="ignore"):      # inf: not certifiable (below)
            thr = TAIL_RTOL * np.sqrt(C.m2[ix] * C.m2[iz])
        fallback[todo] = ~np.isfinite(thr[todo])     # a variance with no resolved coefficient
        thr = np.where(np.isfinite(thr) & todo, thr, -1.0)
        series(rho, ix, iz, C.a, C.tail, thr, out, fallback, tile)
        if C.trimmed:
            # entries that found no degree among the trimmed columns but may among all of them (a
            # degree past both variances' Kc has an infinite bound: only those below one of them)
            miss = fallback & (thr >= 0) & (np.maximum(C.kc[ix], C.kc[iz]) >= C.a.shape[1])
            if np.any(miss):
                fallback[miss] = False
                series(rho, ix, iz, *C.widened(), np.where(miss, thr, -1.0), out, fallback, tile)
        # entries whose two variances meet the target apart but not together (one has too few
        # resolved degrees for its partner): the next rule for the variance with fewer degrees
        todo = fallback & off
        if not np.any(todo):
            break
        kc = C.kc
        short = np.where(kc[ix[todo]] <= kc[iz[todo]], ix[todo], iz[todo])
        # (a variance the ladder could not lift to the rule asked for stays where it is)
        short = np.unique(short[(C.level[short] > 0) & (C.level[short] < len(STEPS))
                                & (C.level[short] >= low[short])])
        if short.size == 0:
            break
        low[short] = C.level[short] + 1                                   # strictly up the ladder
    return out.reshape(shape), fallback.reshape(shape)


def _series_loop(rho, ix, iz, a, tail, thr, out, fallback):
    """Per entry e: the least K with |rho|^(K+1) tail[ix, K] tail[iz, K] <= thr (else fallback),
    then sum_{k<=K} a[ix, k] a[iz, k] rho^k by Horner."""
    n_k = a.shape[1]
    for e in range(rho.size):
        r = rho[e]
        ar = abs(r)
        i = ix[e]
        j = iz[e]
        t = thr[e]
        if t < 0.0:                    # not asked for
            continue
        p = ar
        K = -1
        for k in range(n_k):
            ti = tail[i, k]
            tj = tail[j, k]
            if ti == 0.0 or tj == 0.0 or p * ti * tj <= t:
                K = k
                break
            p *= ar
        if K < 0:
            fallback[e] = True
            continue
        acc = 0.0
        for k in range(K, -1, -1):
            acc = acc * r + a[i, k] * a[j, k]
        out[e] = acc


def _series_tile_loop(rho, ir, jc, a, tail, thr, out, fallback):
    """:func:`_series_loop` on a tile: entry (r, c) pairs variance ir[r] with jc[c] (rho, thr, out,
    fallback: (R, C) arrays).  The same operations per entry in the same order (the same values),
    but a row's entries run side by side over the columns -- the columns' coefficients and bounds
    transposed to (degree, column), selects instead of branches, the degree found kept as a float
    (-1: still searching, -2: not asked for) -- so that the compiler puts them on SIMD lanes."""
    R, C = rho.shape
    W = a.shape[1]
    At = np.empty((W, C))
    Tt = np.empty((W, C))
    for c in range(C):
        for k in range(W):
            At[k, c] = a[jc[c], k]
            Tt[k, c] = tail[jc[c], k]
    Kf = np.empty(C)
    p = np.empty(C)
    ar = np.empty(C)
    acc = np.empty(C)
    for r in range(R):
        i = ir[r]
        rr = rho[r]
        tr = thr[r]
        for c in range(C):
            Kf[c] = -2.0 if tr[c] < 0.0 else -1.0           # as _series_loop: nan is asked for
            ar[c] = abs(rr[c])
            p[c] = ar[c]
        for k in range(W):
            if not degree_step(tail[i, k], float(k), Tt[k], tr, p, ar, Kf, C):
                break
        kmax = -1.0
        for c in range(C):
            kmax = max(kmax, Kf[c])
            acc[c] = 0.0
        for k in range(int(kmax), -1, -1):
            horner_step(a[i, k], float(k), At[k], rr, acc, Kf, C)
        for c in range(C):
            if Kf[c] >= 0.0:
                out[r, c] = acc[c]
            elif Kf[c] == -1.0:
                fallback[r, c] = True


def degree_step(ti, fk, tz, thr, p, ar, kf, n):
    """Degree k = ``fk`` of the least-degree search of :func:`_series_tile_loop` on lanes c < n: the row's
    bound ti, the lanes' bounds tz[c] and targets thr[c], p[c] = |rho_c|^(k+1), ar[c] = |rho_c|, kf[c]
    the degree found (-1: still searching; anything else is left alone).  Selects instead of branches
    (SIMD lanes).  Returns whether a lane is still searching.  Compiled into the FC and conv loops
    (:mod:`numerics.series_lanes`): numba's cache keys them on their own files, so after editing this
    or :func:`horner_step` change :mod:`numerics.fc_fused` and :mod:`numerics.conv_fused_general` too."""
    tiz = ti == 0.0
    left = 0
    for c in range(n):
        tj = tz[c]
        pc = p[c]
        kc = kf[c]
        hit = tiz | (tj == 0.0) | (pc * ti * tj <= thr[c])
        live = kc == -1.0
        kf[c] = fk if (live & hit) else kc
        p[c] = pc * ar[c] if (live & ~hit) else pc
        left |= live & ~hit
    return left


def horner_step(ai, fk, az, rho, acc, kf, n):
    """Degree k = ``fk`` of the Horner sums of :func:`_series_tile_loop` on lanes c < n: acc[c] = acc[c] rho[c] +
    ai az[c] where k <= kf[c] (the lane's degree), else unchanged."""
    for c in range(n):
        v = acc[c] * rho[c] + ai * az[c]
        acc[c] = v if fk <= kf[c] else acc[c]


def _series_numpy(rho, ix, iz, a, tail, thr, out, fallback):
    """:func:`_series_loop` in numpy (numba absent): the same K per entry, Horner to the largest
    K of the call (further terms are below the bound)."""
    ar = np.abs(rho)
    p = ar.copy()
    K = np.full(rho.size, -1)
    for k in range(a.shape[1]):
        ti, tj = tail[ix, k], tail[iz, k]
        with np.errstate(invalid="ignore"):
            hit = (K < 0) & (thr >= 0) & ((ti == 0) | (tj == 0) | (p * ti * tj <= thr))
        K[hit] = k
        p *= ar
    good = K >= 0
    fallback[~good & (thr >= 0)] = True
    if not np.any(good):
        return
    r, i, j = rho[good], ix[good], iz[good]
    acc = np.zeros(r.size)
    for k in range(int(K.max()), -1, -1):
        acc = acc * r + a[i, k] * a[j, k]
    out[good] = acc


if numba is not None:
    _inline = numba.njit(cache=True, nogil=True, fastmath=False, error_model="numpy", inline="always")
    degree_step = _inline(degree_step)
    horner_step = _inline(horner_step)
    _jit = numba.njit(cache=True, nogil=True, fastmath=False, error_model="numpy")
    _series_compiled = _jit(_series_loop)
    _series_tile_compiled = _jit(_series_tile_loop)
    _least_degree_compiled = _jit(_least_degree_loop)
    _gather_compiled = _jit(_gather_loop)
    _project_compiled = _jit(_project_loop)
else:  # pragma: no cover
    _series_compiled = _series_tile_compiled = _least_degree_compiled = _gather_compiled = None
    _project_compiled = None


def series(rho, ix, iz, a, tail, thr, out, fallback, tile=None):
    """Evaluate the truncated Mehler series entrywise (compiled loop when numba is available).
    ``tile``: (ir, jc) where the flat entries are an (R, C) tile whose entry (r, c) has
    ix = ir[r], iz = jc[c] (then :func:`_series_tile_loop`, the same values)."""
    if tile is not None and _series_tile_compiled is not None:
        ir, jc = tile
        shape = (ir.size, jc.size)
        _series_tile_compiled(rho.reshape(shape), ir.astype(np.int64), jc.astype(np.int64), a, tail,
                              thr.reshape(shape), out.reshape(shape), fallback.reshape(shape))
    elif _series_compiled is not None:
        _series_compiled(rho, ix.astype(np.int64), iz.astype(np.int64), a, tail, thr, out, fallback)
    else:  # pragma: no cover
        _series_numpy(rho, ix, iz, a, tail, thr, out, fallback)

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

Coefficients (:func:`coefficients`).  With the N-point Gauss-Hermite rule (nodes x_i, weights w_i of
the standard normal) the matrix V_ki = sqrt(w_i) h_k(x_i), k, i < N, is orthogonal, so the
discrete coefficients a^N = V (sqrt(w) f(sqrt(q) x)) satisfy Parseval exactly:
sum_k (a^N_k)^2 = sum_i w_i f^2 = the rule's E[f^2].  The discrete tail T^N_K = sum_{K<k<N} (a^N_k)^2
is therefore a sum of squares (no cancellation), which is what makes the bound computable in
float64 down to 1e-16 of E[f^2].  N climbs the ladder :data:`LEVELS` (ratio 1.5); a variance is
*certified* at level N_j when (i) its discrete tail falls below ``TAIL_RTOL`` E[f^2] at a degree
K <= N_(j-1) / 1.6 (the rule before it then has >= 1.6 K nodes, enough to resolve those degrees:
measured for tanh, 1.6 K nodes give the coefficients to ~1e-15) and (ii) the coefficients of
levels j - 1 and j agree to ``AGREE_ATOL`` sqrt(E[f^2]) for k <= K (the convergence check by
refinement).  The bound kept for the entries adds that disagreement d to the tail:
T_K <= (sqrt(T^N_K) + d)^2.

Where a variance is not certified by the last level (kinks, step-like functions: algebraic decay;
tanh with sqrt(q) >~ 1.3: the strip of analyticity pi / (2 sqrt(q)) is too narrow for the ladder)
or an entry's bound is not below ``TAIL_RTOL`` sqrt(E[f(u)^2] E[f(v)^2]) at any stored degree,
:func:`gaussian_expectation_hermite` reports those entries, and the caller takes them by its
quadrature (numerics/variance.py).  Entries with S == qx == qz exactly (an input with itself)
are left to the caller's one-dimensional second moment E[f^2], the diagonal exact to rounding.

The ladder climbs per variance only as far as its entries need: to the largest |rho| among them
(``rho_need``), and one rule further where a partner variance needs more resolved degrees.
Each rule's discrete coefficients are cached per (function, variance, nodes), and the ladder is
replayed on every call, so a call's result depends on its arguments only (not on earlier calls);
the tiles of one Gram matrix share the variances of their rows and columns.  Where the rule a
variance stops at depends on the |rho| of the entries in the same call, different tilings may
take an entry from different rules: they agree within the stated bound, not bit for bit.
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

#: Gauss-Hermite ladder (ratio 1.5; the largest keeps the scaled Hermite functions in range)
LEVELS = (24, 36, 54, 81, 122, 182, 273, 410, 615)
#: truncation target, relative to sqrt(E[f(u)^2] E[f(v)^2]) (the dual's scale)
TAIL_RTOL = 2.0 ** -53
#: refinement check: successive levels agree to this many sqrt(E[f^2]) on the used coefficients
AGREE_ATOL = 64 * 2.0 ** -53
#: nodes per used degree in the level before the accepting one
NODES_PER_DEGREE = 1.6
#: cached floats (discrete coefficients over all rules and variances) before the cache is cleared
_CACHE_FLOATS = 32_000_000


@lru_cache(maxsize=None)
def hermite_rule(n: int):
    """(x, s, V): the n-point Gauss-Hermite rule of the standard normal, s_i = sqrt(w_i), and the
    orthogonal matrix V_ki = s_i h_k(x_i) (k, i < n).

    Nodes from scipy (``roots_hermitenorm``), refined by two Newton steps on h_n with
    h_n' = sqrt(n) h_(n-1); the weights by Christoffel-Darboux, w_i = 1 / sum_k h_k(x_i)^2, which
    makes V orthogonal to rounding.  Overflow-free: the recurrence runs on the Hermite functions
    g_k = exp(-x^2/4) h_k, and V_k = g_k / ||g||, s = exp(-x^2/4) / ||g||.

    >>> x, s, V = hermite_rule(30)
    >>> bool(np.abs(V @ V.T - np.eye(30)).max() < 1e-14), bool(abs(s @ s - 1) < 1e-14)
    (True, True)
    """
    if n < 2:
        raise ValueError(f"n must be >= 2, got {n}")
    x = scipy.special.roots_hermitenorm(n)[0]
    for _ in range(2):
        G = _hermite_functions(x, n + 1)
        x = x - G[n] / (math.sqrt(n) * G[n - 1])
    G = _hermite_functions(x, n)
    norm = np.sqrt(np.einsum("ki,ki->i", G, G))
    V = G / norm
    s = np.exp(-x * x / 4) / norm
    return x, s, V


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

    ``a``: (nu, K + 1) coefficients a_k(q_u), k <= Kc(u) (zero past them); ``tail``: (nu, K + 1)
    bounds sqrt(T_k(q_u)) for k <= Kc(u), inf past them; ``m2``: (nu,) the rule's
    E[f(sqrt(q) Z)^2] (nan where no coefficient is resolved); ``rho_cert``: (nu,) the largest
    |rho| at which the variance meets the target on its own, |rho|^(K+1) tail_K^2 <= ``TAIL_RTOL``
    m2 for some K <= Kc (1: certified for every correlation); ``level``: (nu,) nodes of the rule
    the data come from (0 where nothing is resolved)."""

    __slots__ = ("a", "tail", "m2", "rho_cert", "level")

    def __init__(self, a, tail, m2, rho_cert, level):
        self.a, self.tail, self.m2, self.rho_cert, self.level = a, tail, m2, rho_cert, level


_cache: dict = {}          # (fn, variance, nodes) -> (discrete coefficients, rule's E[f^2])
_cache_size = [0]
_cache_lock = threading.Lock()


def coefficients(fn, q, ctx, rho_need=None, min_level=None) -> Coefficients:
    """Hermite coefficients of x -> fn(sqrt(q) x) for each (distinct, >= 0) variance in ``q``,
    certified by the Gauss-Hermite ladder of the module docstring; ``fn(x, ctx)`` is evaluated
    on float64 arrays.  ``rho_need`` (per variance, default 1): the ladder climbs only until the
    variance meets the target at that |rho| (the largest correlation its entries have), or to its
    last level; ``min_level`` (per variance, nodes): not below that rule (a partner variance needs
    more degrees).  Each rule's discrete coefficients are cached per (fn, variance, nodes), and the
    ladder is replayed from its first rule on every call, so the result depends on the arguments
    only, never on what earlier calls computed."""
    q = np.asarray(q, dtype=float).ravel()
    if np.any(~np.isfinite(q)) or np.any(q < 0):
        raise ValueError("q must hold finite variances >= 0")
    need = np.ones(q.size) if rho_need is None else np.asarray(rho_need, dtype=float).ravel()
    low = np.zeros(q.size, dtype=int) if min_level is None else np.asarray(min_level, dtype=int).ravel()
    rows = _ladder(fn, q, need, low, ctx)
    K = max([len(r[0]) for r in rows if r[0] is not None], default=1) - 1
    a = np.zeros((q.size, K + 1))
    tail = np.full((q.size, K + 1), np.inf)
    m2 = np.full(q.size, np.nan)
    level = np.zeros(q.size, dtype=int)
    rho_cert = np.zeros(q.size)
    for u, (au, tu, mu, nu, rc) in enumerate(rows):
        if au is not None:
            a[u, :au.size] = au
            tail[u, :tu.size] = tu           # inf past the resolved degrees
            m2[u], level[u], rho_cert[u] = mu, nu, rc
    return Coefficients(a, tail, m2, rho_cert, level)


def _discrete(fn, q, n, ctx):
    """(A, m2): the n-point rule's discrete coefficients (rows: variances) and E[f^2], cached."""
    A = np.empty((q.size, n))
    m2 = np.empty(q.size)
    miss = []
    for u, qu in enumerate(q.tolist()):
        hit = _cache.get((fn, qu, n))
        if hit is None:
            miss.append(u)
        else:
            A[u], m2[u] = hit
    if miss:
        x, s, V = hermite_rule(n)
        with np.errstate(all="ignore"):
            F = np.broadcast_to(fn(np.sqrt(q[miss])[:, None] * x[None, :], ctx), (len(miss), n)) * s[None, :]
            A[miss] = F @ V.T
            m2[miss] = np.einsum("ui,ui->u", F, F)
        with _cache_lock:
            if _cache_size[0] > _CACHE_FLOATS:
                _cache.clear()
                _cache_size[0] = 0
            for u in miss:
                _cache[(fn, float(q[u]), n)] = (A[u].copy(), float(m2[u]))
            _cache_size[0] += len(miss) * n
    return A, m2


def _ladder(fn, q, need, low, ctx):
    """(a, bound, m2, nodes, rho_cert) per variance: coefficients a_k, k <= Kc, bounds
    bound[K] >= sqrt(T_K) for K <= Kc and the |rho| they certify, from the first level that
    certifies ``need`` (and has at least ``low`` nodes) or from the last level (module docstring);
    (None, None, nan, -1, 0) where not even a_0 is resolved."""
    out = [(None, None, np.nan, -1, 0.0)] * q.size
    left = np.arange(q.size)
    prev = None
    start = max(0, int(np.searchsorted(LEVELS, low.min())) - 1)
    for j, n in enumerate(LEVELS):
        if j < start:
            continue
        A, m2 = _discrete(fn, q[left], n, ctx)                           # (u, k): discrete coefficients
        sq = A * A
        T = np.cumsum(sq[:, ::-1], axis=1)[:, ::-1]                       # T[:, k] = sum_{k' >= k}
        T = np.concatenate([T[:, 1:], np.zeros((left.size, 1))], axis=1)  # T[:, K] = sum_{k > K}
        if j > start:
            kr = int(LEVELS[j - 1] / NODES_PER_DEGREE)                    # degrees the last rule resolves
            last = j == len(LEVELS) - 1
            valid = np.isfinite(m2) & np.all(np.isfinite(A), axis=1)
            scale = np.sqrt(np.where(valid, m2, 0.0))
            d = A[:, :kr + 1] - prev[:, :kr + 1]
            bad = ~(np.abs(d) <= AGREE_ATOL * scale[:, None])
            kc = np.where(bad.any(axis=1), np.argmax(bad, axis=1) - 1, kr)   # agreement prefix 0..kc
            kc = np.where(valid, kc, -1)
            # bound[K] = sqrt(T_K) + ||d_(K, kr]||
            D = np.cumsum((d * d)[:, ::-1], axis=1)[:, ::-1]
            D = np.concatenate([D[:, 1:], np.zeros((left.size, 1))], axis=1)
            cols = np.arange(kr + 1)[None, :]
            with np.errstate(all="ignore"):
                bound = np.where(cols <= kc[:, None], np.sqrt(T[:, :kr + 1]) + np.sqrt(D), np.inf)
                # the largest |rho| with |rho|^(K+1) bound_K^2 <= TAIL_RTOL m2 for some K <= kc
                ratio = TAIL_RTOL * m2[:, None] / (bound * bound)
                rk = np.where(ratio >= 1, 1.0, ratio ** (1.0 / (cols + 1)))
            rho_cert = np.where(kc >= 0, np.max(np.where(np.isnan(rk), 0.0, rk), axis=1), 0.0)
            done = (rho_cert >= need[left]) & (kc >= 0) & (n >= low[left]) | (last & (kc >= 0))
            for r in np.nonzero(done)[0]:
                k = int(kc[r])
                out[left[r]] = (A[r, :k + 1].copy(), bound[r, :k + 1].copy(), float(m2[r]), n,
                                float(rho_cert[r]))
            left, A = left[~done], A[~done]
            if left.size == 0:
                break
        prev = A
    return out


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
    ix = np.broadcast_to(ix.reshape(qx0.shape), shape).ravel()
    iz = np.broadcast_to(iz.reshape(qz0.shape) + (0 if same else ux.size), shape).ravel()
    g = np.sqrt(qx1 * qz1)
    pos = g > 0
    rho = np.clip(np.where(pos, S1 / np.where(pos, g, 1.0), 0.0), -1.0, 1.0)
    off = ~fallback
    need = np.zeros(q_all.size)
    np.maximum.at(need, ix[off], np.abs(rho[off]))
    np.maximum.at(need, iz[off], np.abs(rho[off]))
    low = np.zeros(q_all.size, dtype=int)
    todo = off
    while True:
        C = coefficients(fn, q_all, ctx, need, low)
        with np.errstate(invalid="ignore"):
            thr = TAIL_RTOL * np.sqrt(C.m2[ix] * C.m2[iz])
        fallback[todo] = ~np.isfinite(thr[todo])     # a variance with no resolved coefficient
        thr = np.where(np.isfinite(thr) & todo, thr, -1.0)
        series(rho, ix, iz, C.a, C.tail, thr, out, fallback)
        # entries whose two variances meet the target apart but not together (one has too few
        # resolved degrees for its partner): the next rule for the variance with fewer degrees
        todo = fallback & off
        if not np.any(todo):
            break
        kc = np.isfinite(C.tail).sum(axis=1) - 1
        short = np.where(kc[ix[todo]] <= kc[iz[todo]], ix[todo], iz[todo])
        short = np.unique(short[(C.level[short] > 0) & (C.level[short] < LEVELS[-1])])
        if short.size == 0:
            break
        low[short] = [LEVELS[LEVELS.index(int(v)) + 1] for v in C.level[short]]   # strictly up the ladder
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
    _series_compiled = numba.njit(cache=True, nogil=True, fastmath=False, error_model="numpy")(_series_loop)
else:  # pragma: no cover
    _series_compiled = None


def series(rho, ix, iz, a, tail, thr, out, fallback):
    """Evaluate the truncated Mehler series entrywise (compiled loop when numba is available)."""
    if _series_compiled is not None:
        _series_compiled(rho, ix.astype(np.int64), iz.astype(np.int64), a, tail, thr, out, fallback)
    else:  # pragma: no cover
        _series_numpy(rho, ix, iz, a, tail, thr, out, fallback)

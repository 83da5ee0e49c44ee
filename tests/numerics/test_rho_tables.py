"""Hermite-series duals tabulated in rho where a dual's variances are equal (numerics/rho_tables.py).

Independent routes: exact rational Taylor coefficients (fractions); the closed-form dual of
f = sin(x) + x^2/5 (tests/numerics/test_hermite_dual.py) and the exact polynomial in 40-digit
mpmath per entry; at the Gram level the numpy interpreter (per-tile series and quadrature) and the
per-entry series route (tables switched off), on inputs normalised to the unit sphere.

Tolerances.  Per entry a certified panel is within its certificate of the polynomial, rem + tail
<= TAIL_RTOL m2, plus the rounding of the re-expansion and of Horner's steps, bounded by 8 eps of
sum_k c_k |rho|^k (d_j(c) within ~K eps d_j(|c|) at worst, Horner in |rho - c| <= t within a few
eps of d_0).  Against the per-entry series one dual may move by both truncations (2 TAIL_RTOL),
the coefficient deviation a table allows its rows (DEVIATION_RTOL) and both roundings (16 eps),
all in units of its scale m2 -- so the kernel by that much per dual, relative to max |K|.
"""
import importlib
import math
from fractions import Fraction

import mpmath
import numpy as np
import pytest

from reskernels import CNN, MLP, ResCNN, ResNet, activations, gram
from reskernels.numerics import fc_fused, fc_series, hermite, rho_tables
from reskernels.numerics.conv import ConvGramPlan
from reskernels.numerics.variance import NumpyContext

from .test_hermite_dual import _dsinpoly, _sinpoly, _sinpoly_closed

pytest.importorskip("numba")
Plan = importlib.import_module("reskernels.numerics.gram").FCGramPlan
EPS = np.finfo(float).eps
TANH = lambda x, xp: xp.tanh(x)                 # noqa: E731
DTANH = lambda x, xp: 1 - xp.tanh(x) ** 2       # noqa: E731
USER = activations.from_function(np.tanh, lambda x: 1 - np.tanh(x) ** 2, name="user_tanh")


@pytest.fixture(autouse=True)
def _no_kept_tables():
    """Every test builds its own tables in rho (a plant in their construction cannot be masked by a
    table an earlier test kept), and leaves none behind."""
    rho_tables._table_kept.cache_clear()
    yield
    rho_tables._table_kept.cache_clear()


def _sphere(n, d, seed):
    X = np.random.default_rng(seed).standard_normal((n, d))
    return X / np.linalg.norm(X, axis=1, keepdims=True)


def _duals(arch):
    return sum(getattr(m, "activation", None) is not None for m in arch.kernel_maps())


def _tol_series(arch):
    """Per dual 2 TAIL_RTOL + DEVIATION_RTOL + 16 eps of its scale (module docstring), relative to max |K|."""
    return _duals(arch) * (2 * hermite.TAIL_RTOL + rho_tables.DEVIATION_RTOL + 16 * EPS)


def _rel(A, B):
    return float(np.abs(A - B).max() / np.abs(B).max())


def _tables_full(fns, q, full=True):
    """(arrays, rows, tables, (rix, rtab, rok, rdeg)) of ``fns`` = (f, f') tabled at the variances q (one
    group): the coefficient Tables and the tables in rho built from them, with the rows past the stored
    degrees (``Tables.full``) as the plans hand them to build, or without (``full=False``)."""
    tables = fc_series.Tables()
    first = tables.add(tuple((f, {}) for f in fns), np.asarray(q, dtype=float), NumpyContext(True), True)
    arrays = tables.arrays()
    rows = np.arange(first, first + len(q))
    return arrays, rows, tables, rho_tables.build(arrays, [(rows, np.asarray(q, dtype=float))], True,
                                                  tables.full if full else None)


def _tables(fns, q):
    """(arrays, rows, (rix, rtab, rok, rdeg)) of :func:`_tables_full` from the stored degrees alone."""
    arrays, rows, _, built = _tables_full(fns, q, full=False)
    return arrays, rows, built


def _lanes(q, qz, S, rix, rtab, rok, rdeg, r, diag):
    """rho_dual on lanes of 64: (E1, E0, bad)."""
    n = S.size
    E1, E0, bad = np.empty(n), np.empty(n), np.zeros(n, dtype=np.uint8)
    for l0 in range(0, n, 64):
        sl = slice(l0, min(n, l0 + 64))
        m = sl.stop - l0
        rho_tables.rho_dual(q, np.full(m, qz), S[sl], E1[sl], E0[sl], True, rix[0, r], rix[1, r], rtab, rok, rdeg,
                            diag[0, r], diag[1, r], np.empty(64), np.empty(64, dtype=np.int64), bad[sl], m)
    return E1, E0, bad


def _plant_shifted_tables(monkeypatch):
    """Every table in rho built from here on reads its neighbour panel's coefficients."""
    build = rho_tables.build

    def shifted(*args):
        rix, rtab, rok, rdeg = build(*args)
        return rix, np.roll(rtab, 1, axis=1), rok, rdeg
    monkeypatch.setattr(rho_tables, "build", shifted)


def test_taylor_coefficients_are_the_exact_ones():
    """d_j(x) = sum_k c_k binom(k, j) x^(k - j) against exact rationals, at points of both signs."""
    rng = np.random.default_rng(0)
    c = rng.uniform(0, 1, 40) * 0.7 ** np.arange(40)
    x = np.array([-0.999, -0.5, -0.01, 0.0, 0.3, 0.77, 1.0])
    J = 8
    out = np.empty((J, x.size))
    rho_tables.taylor_coefficients(c, x, J, out)
    for p, xp in enumerate(x):
        X = Fraction(xp)
        for j in range(J):
            terms = [Fraction(c[k]) * math.comb(k, j) * X ** (k - j) for k in range(j, c.size)]
            want = sum(terms)
            scale = sum(abs(t) for t in terms)
            assert abs(Fraction(out[j, p]) - want) <= 4 * c.size * EPS * scale, (j, xp)


@pytest.mark.mp
@pytest.mark.parametrize("q", [0.05, 1.0, 2.5])
def test_tables_agree_with_the_closed_form_and_the_exact_polynomial(q):
    """f = sin(x) + x^2/5 at equal variances q: the table's value at correlations across [-1, 1]
    (panel edges, centres, +-1, 1 - 1e-9) against the closed form of E[f(u) f(v)] and E[f'(u) f'(v)]
    and against the same degree-K polynomial summed in 40-digit mpmath; every panel certified."""
    arrays, rows, (rix, rtab, rok, rdeg) = _tables((_sinpoly, _dsinpoly), [q])
    off, kc, m2, diag, a, tail = arrays
    r = rows[0]
    assert rix[0, r] >= 0 and rix[1, r] >= 0 and rok.all()
    N = rho_tables.RHO_PANELS
    edges = -1 + 2 * np.arange(N + 1) / N
    rng = np.random.default_rng(1)
    rho = np.concatenate([edges, edges[:-1] + 1 / N, rng.uniform(-1, 1, 300), [1 - 1e-9, -1 + 1e-9]])
    S = rho * q
    E1, E0, bad = _lanes(q, q, S, rix, rtab, rok, rdeg, r, diag)
    assert not bad.any()
    for f, E in ((0, E1), (1, E0)):
        K = kc[f, r]
        c = a[off[f, r]:off[f, r] + K + 1] ** 2
        thr = hermite.TAIL_RTOL * m2[f, r]
        worst = 0.0
        for i in range(0, rho.size, 7):
            want_closed = _sinpoly_closed(q, q, S[i])[f]
            with mpmath.workdps(40):
                poly = float(mpmath.fsum(mpmath.mpf(ck) * mpmath.mpf(rho[i]) ** k for k, ck in enumerate(c)))
            terms = float(np.sum(c * np.abs(rho[i]) ** np.arange(K + 1)))
            tol = thr + 8 * EPS * terms
            # the polynomial: certificate (rem) + rounding; the closed form: + the series' tail + its own rounding
            assert abs(E[i] - poly) <= tol, (f, rho[i], E[i], poly)
            assert abs(E[i] - want_closed) <= tol + thr + 4 * EPS * abs(want_closed), (f, rho[i], E[i], want_closed)
            worst = max(worst, abs(E[i] - poly) / m2[f, r])
        # measured: within 0.9 eps of the scale of the polynomial it tabulates (the closed form is
        # farther, by the error of the Hermite coefficients themselves: up to 4.5 eps at q = 1)
        assert worst <= 2 * EPS


@pytest.mark.mp
def test_degrees_past_the_stored_ones_certify_more_panels_and_agree():
    """f = sin(x) + x^2/5 at q = 300 needs more than the 160 stored degrees near |rho| = 1: there the
    stored degrees' tail leaves panels uncertified, and all 481 resolved degrees certify more of them
    (each at its own least degree, up to RHO_DEGREE).  In the panels certified only so, entries agree with the closed form and
    with the 481-degree polynomial in 40-digit mpmath within the certificate and rounding; the other
    panels keep the stored degrees' coefficients bit for bit; planted, a certificate that forgets the
    truncation (the degrees past 160 zeroed and their tail bounds too) certifies panels whose entries
    miss the closed form by more than ten times that tolerance."""
    q = 300.0
    fns = (_sinpoly, _dsinpoly)
    arrays, rows, tables, (rix, rtab, rok, rdeg) = _tables_full(fns, [q])
    off, kc, m2, diag, a, tail = arrays
    r = int(rows[0])
    assert kc[0, r] == fc_series.STORE_DEGREES and tables.full[0, r][0].size > kc[0, r] + 100
    _, rtab_stored, rok_stored, rdeg_stored = rho_tables.build(arrays, [(rows, np.array([q]))], True)
    assert np.all(rdeg >= rdeg_stored)             # the gained panels' own degrees (up to RHO_DEGREE)
    assert np.array_equal(rtab[rok_stored != 0], rtab_stored[rok_stored != 0])
    N = rho_tables.RHO_PANELS
    rng = np.random.default_rng(5)
    for f, E_of in ((0, 0), (1, 1)):
        t, other = rix[f, r], rix[1 - f, r]
        # panels certified only by the full rows (for f), where the other function's panel is certified
        # too (an NTK lane reads both)
        new = np.flatnonzero((rok[t] != 0) & (rok_stored[t] == 0) & (rok[other] != 0))
        assert new.size >= 20, (f, new.size)         # 28 and 42
        cp = -1 + (2 * new + 1) / N
        rho = np.concatenate([cp, cp + rng.uniform(-1, 1, cp.size) / N])
        S = rho * q
        lanes = _lanes(q, q, S, rix, rtab, rok, rdeg, r, diag)
        assert not lanes[2].any()                      # every lane in a certified panel
        E = lanes[E_of]
        c = tables.full[f, r][0] ** 2
        thr = hermite.TAIL_RTOL * m2[f, r]
        worst, tols = 0.0, []
        for i in range(rho.size):
            want_closed = _sinpoly_closed(q, q, S[i])[f]
            with mpmath.workdps(40):
                poly = float(mpmath.fsum(mpmath.mpf(ck) * mpmath.mpf(rho[i]) ** k for k, ck in enumerate(c)))
            terms = float(np.sum(c * np.abs(rho[i]) ** np.arange(c.size)))
            tol = thr + 8 * EPS * terms
            tols.append(tol + thr + 4 * EPS * abs(want_closed))
            assert abs(E[i] - poly) <= tol, (f, rho[i], E[i], poly)
            assert abs(E[i] - want_closed) <= tols[-1], (f, rho[i], E[i], want_closed)
            worst = max(worst, abs(E[i] - poly) / m2[f, r])
        # measured: within 0.5 eps of the scale of the polynomial it tabulates (the closed form is
        # farther, by the error of the Hermite coefficients themselves: up to 5 eps here)
        assert worst <= 2 * EPS, worst / EPS
        # planted: the full rows' coefficients past the stored degrees lost and their tail bounds zero (a
        # certificate that forgets the truncation): the panels it certifies beyond the stored ones miss
        K = kc[f, r]
        lost = {key: (np.where(np.arange(v[0].size) <= K, v[0], 0.0), np.zeros_like(v[1]))
                for key, v in tables.full.items()}
        rix2, rtab2, rok2, rdeg2 = rho_tables.build(arrays, [(rows, np.array([q]))], True, lost)
        wrong = np.flatnonzero((rok2[rix2[f, r]] != 0) & (rok_stored[t] == 0) & (rok2[rix2[1 - f, r]] != 0))
        rho2 = -1 + (2 * wrong + 1) / N
        E2 = _lanes(q, q, rho2 * q, rix2, rtab2, rok2, rdeg2, r, diag)[E_of]
        miss = [abs(E2[i] - _sinpoly_closed(q, q, rho2[i] * q)[f]) for i in range(rho2.size)]
        tol2 = [thr + 8 * EPS * float(np.sum(c * np.abs(x) ** np.arange(c.size))) + thr
                + 4 * EPS * abs(_sinpoly_closed(q, q, x * q)[f]) for x in rho2]
        assert max(m / t_ for m, t_ in zip(miss, tol2)) > 10, f      # measured 9e9 and 2e12


def test_planted_table_errors_are_caught():
    """A panel's coefficients read one panel off, or its degree-1 coefficient dropped, move entries by far
    more than the tolerance of the test above: the comparison can fail."""
    q = 1.0
    arrays, rows, (rix, rtab, rok, rdeg) = _tables((_sinpoly, _dsinpoly), [q])
    diag = arrays[3]
    r = rows[0]
    rho = np.random.default_rng(2).uniform(-0.99, 0.99, 200)
    S = rho * q
    want = np.array([_sinpoly_closed(q, q, s)[0] for s in S])
    m2 = arrays[2][0, r]
    E1, _, _ = _lanes(q, q, S, rix, rtab, rok, rdeg, r, diag)
    assert np.abs(E1 - want).max() <= 8 * EPS * m2
    shifted = rtab.copy()
    shifted[:, 1:] = rtab[:, :-1]
    E1s, _, _ = _lanes(q, q, S, rix, shifted, rok, rdeg, r, diag)
    assert np.abs(E1s - want).max() > 1e6 * EPS * m2
    dropped = rtab.copy()
    dropped[:, :, 1] = 0.0
    E1d, _, _ = _lanes(q, q, S, rix, dropped, rok, rdeg, r, diag)
    assert np.abs(E1d - want).max() > 1e3 * EPS * m2


def test_each_panel_takes_its_own_least_degree_and_a_lane_does_not_see_its_block(monkeypatch):
    """Per panel (PER_PANEL): a certified panel's degree M_p (rok - 1) is the least that certifies it
    (M_p - 1 does not), its coefficients past M_p are zero and those up to M_p are the table-wide
    degree's bit for bit; a lane's value is the same alone as in a block whose other lanes reach
    higher degrees (the tiles cannot change it); and it is within the certificate of the table-wide
    degree's value.  Planted: panels cut one degree below their lanes' miss."""
    q = 10.0                                            # degrees 5-7 per panel, 6 for the table
    fns = (_sinpoly, _dsinpoly)
    arrays, rows, (rix, rtab, rok, rdeg) = _tables(fns, [q])
    monkeypatch.setattr(rho_tables, "PER_PANEL", False)
    _, _, (_, utab, uok, udeg) = _tables(fns, [q])
    monkeypatch.undo()
    off, kc, m2, diag, a, tail = arrays
    r = int(rows[0])
    N, t = rho_tables.RHO_PANELS, 1.0 / rho_tables.RHO_PANELS
    for f in (0, 1):
        tb = rix[f, r]
        deg = rok[tb].astype(int) - 1
        assert (uok[tb] != 0).sum() <= (rok[tb] != 0).sum() and np.all(deg[uok[tb] != 0] <= udeg[tb])
        assert len(set(deg[rok[tb] != 0])) >= 2            # the degrees differ between panels
        for p in range(N):
            if rok[tb, p] == 0:
                continue
            assert not rtab[tb, p, deg[p] + 1:].any()
            assert np.array_equal(rtab[tb, p, :deg[p] + 1], utab[tb, p, :deg[p] + 1])
        # least: one degree fewer leaves the panel uncertified (build_row's own bound, recomputed)
        K = kc[f, r]
        c = a[off[f, r]:off[f, r] + K + 1] ** 2
        cp = -1 + (2 * np.arange(N) + 1) * t
        e = np.minimum(np.abs(cp) + t, 1.0)
        thr = hermite.TAIL_RTOL * m2[f, r]
        for p in np.flatnonzero(deg >= 2)[::7]:
            M = deg[p] - 1
            with mpmath.workdps(30):
                dM = mpmath.fsum(mpmath.mpf(ck) * mpmath.binomial(k, M + 1) * mpmath.mpf(e[p]) ** (k - M - 1)
                                 for k, ck in enumerate(c) if k > M)
            bound = float(dM) * t ** (M + 1) + e[p] ** (K + 1) * tail[off[f, r] + K] ** 2
            assert bound * (1 + 1e-9) > thr * (1 - 1e-12), (f, p, M)
    # a lane alone and in a block with a high-degree lane: the same bits
    rng = np.random.default_rng(3)
    both = np.maximum(rok[rix[0, r]], rok[rix[1, r]]).astype(int)
    low = np.flatnonzero(both == both[both > 0].min())            # panels of the least degree
    pick = rng.choice(low, 40)
    rho = -1 + (2 * pick + rng.uniform(0.1, 1.9, 40)) * t
    hi = int(np.argmax(both))
    rho_hi = -1 + (2 * hi + 1) * t
    S = np.concatenate([[rho_hi], rho]) * q
    E1b, E0b, badb = _lanes(q, q, S, rix, rtab, rok, rdeg, r, diag)
    lane_deg = [max(int(rok[rix[0, r], p]), int(rok[rix[1, r], p])) for p in ((S / q + 1) * N / 2).astype(int)]
    assert not badb.any() and lane_deg[0] > max(lane_deg[1:])   # the first lane sets the block's degree
    for i in range(1, S.size):
        E1a, E0a, _ = _lanes(q, q, S[i:i + 1], rix, rtab, rok, rdeg, r, diag)
        assert E1a[0] == E1b[i] and E0a[0] == E0b[i]
    E1u, E0u, _ = _lanes(q, q, S, rix, utab, uok, udeg, r, diag)
    for f, (Ep, Eu) in enumerate(((E1b, E1u), (E0b, E0u))):
        assert np.max(np.abs(Ep - Eu)) <= 2 * hermite.TAIL_RTOL * m2[f, r] + 8 * EPS * m2[f, r]
    # planted: every panel cut one degree below its lanes' least (a block that stopped short of its
    # lanes' degrees) misses the certified values
    mlow = min(int(rok[rix[0, r], int((x + 1) * N / 2)]) for x in rho) - 1
    cut = rtab.copy()
    cut[:, :, mlow:] = 0.0
    E1c, _, _ = _lanes(q, q, S, rix, cut, rok, rdeg, r, diag)
    ratio = np.max(np.abs(E1c - E1b)) / (hermite.TAIL_RTOL * m2[0, r])
    assert ratio > 4, ratio                                      # a target: certificate + rounding


def test_the_certificate_refuses_panels_it_cannot_bound():
    """A polynomial whose high degrees dominate near |rho| = 1 (c_k = 1, k <= 160) leaves the end panels
    uncertified and the middle certified; in an uncertified panel the re-expansion at the table's
    degree really misses by more than the target (the certificate is not vacuous); and a tail bound T_K uncertifies
    exactly the panels where (|c| + t)^(K+1) T_K exceeds the target."""
    K = 160
    c = np.ones(K + 1)
    N, M = rho_tables.RHO_PANELS, rho_tables.RHO_DEGREE
    coef, ok = np.empty((N, M + 1)), np.empty(N, dtype=np.uint8)
    thr = hermite.TAIL_RTOL * (K + 1)
    deg = rho_tables.build_row(c, 0.0, thr, coef, ok, True)
    assert ok[N // 2] != 0 and ok[0] == 0 and ok[-1] == 0
    p = int(np.flatnonzero(ok == 0)[-1])          # an uncertified panel near rho = 1
    cp = -1 + (2 * p + 1) / N
    x = cp + 1.0 / N
    with mpmath.workdps(40):
        exact = mpmath.fsum(mpmath.mpf(x) ** k for k in range(K + 1))
        table = mpmath.fsum(mpmath.mpf(coef[p, j]) * (mpmath.mpf(x) - mpmath.mpf(cp)) ** j for j in range(deg + 1))
        assert abs(exact - table) > thr
    # a fast-decaying polynomial certifies every panel, until its tail bound is 10 times the target
    c = 0.5 ** np.arange(K + 1)
    rho_tables.build_row(c, 0.0, thr, coef, ok, True)
    assert ok.all()
    rho_tables.build_row(c, 10 * thr, thr, coef, ok, True)
    e = np.minimum(np.abs(-1 + (2 * np.arange(N) + 1) / N) + 1 / N, 1)
    assert np.array_equal(ok != 0, e ** (K + 1) * 10 * thr * (1 + 1e-9) <= thr) and not ok.all()


def test_lanes_outside_certified_panels_and_the_diagonal():
    """rho_dual marks nan S and uncertified panels bad (the caller's per-entry series takes them) and
    gives the pairs (x, x), S == qx == qz, the row's one-dimensional second moments bit for bit."""
    q = 1.0
    arrays, rows, (rix, rtab, rok, rdeg) = _tables((_sinpoly, _dsinpoly), [q])
    diag = arrays[3]
    r = rows[0]
    rok = rok.copy()
    rok[rix[0, r], 100] = 0                        # plant an uncertified panel of f
    N = rho_tables.RHO_PANELS
    S = np.array([0.3, np.nan, q, -1 + (2 * 100 + 1) / N, 0.9])
    E1, E0, bad = _lanes(q, q, S, rix, rtab, rok, rdeg, r, diag)
    assert bad.tolist() == [0, 1, 0, 1, 0]
    assert E1[2] == diag[0, r] and E0[2] == diag[1, r]


def test_clusters_share_a_table_within_a_few_ulps():
    """Variances a few ulps apart (inputs normalised in floating point) read one table; variances
    farther apart get their own; more than RHO_ROWS runs in a dual get none; and rows whose
    coefficients deviate by more than DEVIATION_RTOL share nothing (planted: DEVIATION_RTOL = 0)."""
    q0 = 0.7
    q = [q0, np.nextafter(q0, 1), q0 * (1 + 4 * EPS), 1.3]
    arrays, rows, (rix, _, _, _) = _tables((TANH, DTANH), q)
    assert rix[0, rows[0]] == rix[0, rows[1]] == rix[0, rows[2]] != rix[0, rows[3]]
    assert rho_tables.clusters(np.array(q)) == [(0, 3), (3, 4)]
    many = np.linspace(0.5, 2.0, rho_tables.RHO_ROWS + 1)
    _, _, (rix2, _, _, _) = _tables((TANH, DTANH), many)
    assert np.all(rix2 == -1)


def test_a_zero_deviation_budget_keeps_clusters_apart(monkeypatch):
    monkeypatch.setattr(rho_tables, "DEVIATION_RTOL", 0.0)
    q0 = 0.7
    q = [q0, np.nextafter(q0, 1), q0 * (1 + 4 * EPS)]
    arrays, rows, (rix, _, _, _) = _tables((TANH, DTANH), q)
    dev = rho_tables._deviation(rho_tables._rows(arrays, 0, list(rows))[0], 1)
    assert dev > 0                                         # coefficients of ulp-apart variances differ
    assert np.all(rix[0, rows] == -1)


CASES = [
    (ResNet(4, 0.5, input_var=0.01, activation="tanh"), 0),
    (ResNet(4, 0.5, input_var=1.0, activation="tanh"), 1),
    (ResNet(3, 0.5, input_var=1.0, activation="gelu", bias_var=0.1), 2),
    (MLP(3, activation=USER), 3),
]


@pytest.mark.parametrize("arch,seed", CASES, ids=[a.slug for a, _ in CASES])
@pytest.mark.parametrize("kind", ["ntk", "nngp"])
def test_sphere_inputs_take_the_tables_and_agree(arch, seed, kind, monkeypatch):
    """Inputs on the unit sphere (|x|^2 = 1 within ulps): the plan builds tables for every SERIES dual,
    the Gram matrix agrees with the numpy interpreter (test_fc_series.py's tolerance) and with the
    per-entry series route (tables off) within _tol_series; exact symmetry; a duplicated input gives
    the diagonal's bits; normalised, the diagonal is 1 exactly."""
    X = _sphere(80, 12, seed)
    X[5] = X[1]
    X[6] = X[0] + 1e-9 * X[2]
    X[6] /= np.linalg.norm(X[6])
    plan = Plan(arch, X, kind=kind)
    rix = plan.series_tables[6]
    for d, call in enumerate(fc_series.calls_of(arch.kernel_maps(), kind == "ntk")):
        if call is not None:
            assert np.all(rix[0, plan.RX[d]] >= 0) and (kind == "nngp" or np.all(rix[1, plan.RX[d]] >= 0)), d
    assert "tabulated in rho" in plan.block_format
    K = gram(arch, X, kind=kind)
    from .test_fc_series import _tol
    assert _rel(K, gram(arch, X, kind=kind, backend="numpy")) <= _tol(arch)
    monkeypatch.setattr(rho_tables, "RHO_ROWS", 0)
    Ks = gram(arch, X, kind=kind)
    assert "tabulated" not in Plan(arch, X, kind=kind).block_format
    assert _rel(K, Ks) <= _tol_series(arch)
    monkeypatch.undo()
    assert np.array_equal(K, K.T)
    assert K[5, 5] == K[1, 1] == K[1, 5]
    N = gram(arch, X, kind=kind, normalize=True)
    assert np.all(np.diag(N) == 1.0)


def test_planted_table_error_fails_the_gram_agreement(monkeypatch):
    """Tables read one panel off (planted in build) move a sphere Gram matrix far beyond _tol_series."""
    arch = ResNet(3, 0.5, input_var=1.0, activation="tanh")
    X = _sphere(60, 10, 4)
    K = gram(arch, X)
    _plant_shifted_tables(monkeypatch)
    assert _rel(gram(arch, X), K) > 1e3 * _tol_series(arch)


def test_unequal_variances_build_no_tables():
    """Standard-normal inputs (a variance per input) keep the per-entry series: no table, the block
    format unchanged."""
    arch = ResNet(3, 0.5, activation="tanh", input_var=0.01)
    X = np.random.default_rng(3).standard_normal((60, 8))
    plan = Plan(arch, X)
    assert np.all(plan.series_tables[6] == -1)
    assert plan.block_format == "compiled variance-carrying loop"


def test_uncertified_lanes_take_the_series_bit_for_bit_in_mixed_blocks(monkeypatch):
    """MLP(1, tanh) at input_var = 4 (one dual: what precedes it is the same on both routes): the end
    panels are not certified, and 64-lane blocks mix entries inside and outside them.  The entries in
    uncertified panels are bit for bit the per-entry series route's (tables off), those elsewhere the
    tables' own; planted, tables claiming every panel certified change the former's bits.  The Gram
    matrix agrees with the interpreter."""
    from .test_fc_series import _tol
    arch = MLP(1, activation="tanh", input_var=4.0)
    n = 70
    X = _sphere(n, 3, 7)                  # few dimensions: many near-parallel pairs
    plan = Plan(arch, X)
    rix, rok = plan.series_tables[6], plan.series_tables[8]
    t1, t0 = rix[0, plan.RX[0, 0]], rix[1, plan.RX[0, 0]]
    assert t1 >= 0 and t0 >= 0 and np.all(rix[0, plan.RX[0]] == t1)
    N = rho_tables.RHO_PANELS
    frac = (np.clip(X @ X.T, -1, 1) + 1) * N / 2
    p = np.minimum(frac.astype(int), N - 1)
    clear = (np.abs(frac - np.round(frac)) > 1e-9) & ~np.eye(n, dtype=bool)    # not on a panel edge
    unc = clear & ((rok[t1][p] == 0) | (rok[t0][p] == 0))
    cert = clear & (rok[t1][p] != 0) & (rok[t0][p] != 0)
    assert unc.any() and any(unc[i, :64].any() and cert[i, :64].any() for i in range(n))
    K = gram(arch, X)
    assert _rel(K, gram(arch, X, backend="numpy")) <= _tol(arch)
    monkeypatch.setattr(rho_tables, "RHO_ROWS", 0)
    Ks = gram(arch, X)
    monkeypatch.undo()
    assert np.array_equal(K[unc], Ks[unc])
    assert not np.array_equal(K[cert], Ks[cert])
    build = rho_tables.build

    def all_certified(*args):
        rix_, rtab, rok_, rdeg = build(*args)
        return rix_, rtab, np.where(rok_ == 0, rho_tables.RHO_DEGREE + 1, rok_), rdeg   # every panel "certified"
    monkeypatch.setattr(rho_tables, "build", all_certified)
    assert not np.array_equal(gram(arch, X)[unc], Ks[unc])


def test_panels_certified_past_the_stored_degrees_agree_with_the_interpreter(monkeypatch):
    """MLP(1, tanh) at input_var = 4 on the sphere of R^3 (many near-parallel pairs; the dual's rho is
    the inputs' cosine): the plan's tables certify panels that the 160 stored degrees leave to the
    per-entry series, and the entries there agree with the numpy interpreter (2-D quadrature where its
    series does not certify) within test_fc_series' tolerance; planted, the degrees past the stored
    ones zeroed (their tail bound kept) move those entries beyond it."""
    from .test_fc_series import _tol
    arch = MLP(1, activation="tanh", input_var=4.0)
    n = 70
    X = _sphere(n, 3, 7)
    built = []
    build = rho_tables.build

    def spy(arrays, groups, want_ntk, full=None):
        built.append(build(arrays, groups, want_ntk)[2])          # the stored degrees only
        return build(arrays, groups, want_ntk, full)
    monkeypatch.setattr(rho_tables, "build", spy)
    plan = Plan(arch, X)
    rix, rok = plan.series_tables[6], plan.series_tables[8]
    t1, t0 = rix[0, plan.RX[0, 0]], rix[1, plan.RX[0, 0]]
    stored = built[-1]
    N = rho_tables.RHO_PANELS
    frac = (np.clip(X @ X.T, -1, 1) + 1) * N / 2
    p = np.minimum(frac.astype(int), N - 1)
    clear = (np.abs(frac - np.round(frac)) > 1e-9) & ~np.eye(n, dtype=bool)
    both = lambda ok: (ok[t1][p] != 0) & (ok[t0][p] != 0)           # noqa: E731
    new = clear & both(rok) & ~both(stored)
    assert new.sum() >= 20, new.sum()
    K = gram(arch, X)
    K0 = gram(arch, X, backend="numpy")
    scale = np.abs(K0).max()
    assert np.abs(K - K0)[new].max() <= _tol(arch) * scale             # measured 0.0017 of it (406 entries)
    add = fc_series.Tables.add

    def lost(self, *args):
        first = add(self, *args)
        for key, (a, tail) in self.full.items():
            a[fc_series.STORE_DEGREES + 1:] = 0.0
        return first
    monkeypatch.setattr(fc_series.Tables, "add", lost)
    Kp = gram(arch, X)
    assert np.abs(Kp - K0)[new].max() > 2 * _tol(arch) * scale         # measured 8.7


def test_a_run_of_variances_too_far_apart_would_fail():
    """The deviation gate matters: two norms 1e-6 apart joined into one run (CLUSTER_RTOL raised) and
    let through (DEVIATION_RTOL = inf) move the Gram matrix far beyond the interpreter's tolerance;
    the gate alone (DEVIATION_RTOL as shipped) keeps them apart and the values right."""
    from .test_fc_series import _tol
    arch = ResNet(2, 0.5, activation="tanh", input_var=0.5)
    X = _sphere(40, 6, 14)
    X[::2] *= 1 + 1e-6
    K0 = gram(arch, X, backend="numpy")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(rho_tables, "CLUSTER_RTOL", 1e-5)
        assert _rel(gram(arch, X), K0) <= _tol(arch)
        mp.setattr(rho_tables, "DEVIATION_RTOL", math.inf)
        assert _rel(gram(arch, X), K0) > 100 * _tol(arch)


def test_two_norms_give_the_same_bits_with_any_tiling():
    """Inputs of two norms (two tables per dual): a pair whose columns read another table than its row
    takes the per-entry series lane by lane, so an entry's value depends on its own pair only -- one
    thread or two, any tile size, the same bits; and it agrees with the interpreter."""
    arch = ResNet(3, 0.5, activation="tanh", input_var=0.1)
    X = _sphere(90, 7, 9)
    X[45:] *= 2.0          # grouped: some 64-lane blocks hold one norm only, others both
    plan = Plan(arch, X)
    rix = plan.series_tables[6]
    assert len(set(rix[0, plan.RX[0]].tolist())) == 2
    from reskernels.numerics.tiles import execute
    K = plan.finish(execute(plan))
    assert sum(plan.series_recomputed) == 0          # (the interpreter's pairs round per tile)
    assert np.array_equal(K, gram(arch, X, n_threads=1, tile=16))
    assert np.array_equal(K, gram(arch, X, n_threads=2, tile=16))
    assert np.array_equal(K, gram(arch, X, n_threads=2, tile=40, memory_budget=2 ** 16))
    from .test_fc_series import _tol
    assert _rel(K, gram(arch, X, backend="numpy")) <= _tol(arch)


def test_the_sample_is_skipped_only_where_the_tables_certify_every_entry(monkeypatch):
    """Above 4 SAMPLE^2 pairs gram runs a sample first (numerics/gram.py), unless the inputs share one
    norm and the tables in rho then certify every entry of every SERIES dual (nothing can be flagged):
    skipped on the sphere at input_var = 0.01, kept on standard-normal inputs and on the sphere at
    input_var = 4 (end panels uncertified); the values agree with the interpreter either way.  A sample
    of inputs of one norm runs on the variances and tables recorded for all of them (one recording);
    other inputs record the sample's own first (two)."""
    calls, records = [], []
    flagged, record = fc_fused.flagged_fraction, fc_fused.record_variances

    def counting(*args):
        calls.append(1)
        return flagged(*args)

    def recording(*args, **kw):
        records.append(1)
        return record(*args, **kw)
    monkeypatch.setattr(fc_fused, "flagged_fraction", counting)
    monkeypatch.setattr(fc_fused, "record_variances", recording)
    n = 2 * fc_series.SAMPLE + 1
    for arch, X, sampled in ((ResNet(2, 0.5, input_var=0.01, activation="tanh"), _sphere(n, 6, 11), False),
                             (ResNet(2, 0.5, input_var=0.01, activation="tanh"),
                              np.random.default_rng(12).standard_normal((n, 6)), True),
                             (MLP(2, activation="tanh", input_var=4.0), _sphere(n, 3, 13), True)):
        calls.clear()
        records.clear()
        plan = Plan(arch, X)
        assert bool(calls) == sampled, arch
        assert len(records) == (2 if sampled and np.ptp(np.sum(X * X, axis=1)) > 1e-12 else 1), arch
        if plan.general_program is None:          # the sample kept the interpreter
            continue
        if not sampled:                           # skipped: nothing is flagged, nothing recomputed
            from reskernels.numerics.tiles import execute
            plan.finish(execute(plan))
            assert sum(plan.series_recomputed) == 0
        assert fc_fused.tables_certify_all(fc_series.calls_of(arch.kernel_maps(), True),
                                           (plan.VX, plan.VZ, plan.RX, plan.RZ, plan.series_tables), True) != sampled
    from .test_fc_series import _tol
    arch = ResNet(2, 0.5, input_var=0.01, activation="tanh")
    X = _sphere(n, 6, 11)
    assert _rel(gram(arch, X), gram(arch, X, backend="numpy")) <= _tol(arch)
    # a cross Gram matrix of inputs of one norm with end panels uncertified (input_var = 4): the sample
    # runs on the rows and columns of the one recording
    arch = MLP(1, activation="tanh", input_var=4.0)
    X, Z = _sphere(n + 10, 6, 14), _sphere(n, 6, 15)                 # above 4 SAMPLE^2 pairs
    calls.clear()
    records.clear()
    plan = Plan(arch, X, Z)
    assert calls and len(records) == 1 and plan.general_program is not None
    K = gram(arch, X, Z)
    assert _rel(K, gram(arch, X, Z, backend="numpy")) <= _tol(arch)


def _multisphere(n, shape, seed):
    """Images whose every pixel lies on the unit sphere of its channels (the multi-sphere)."""
    X = np.random.default_rng(seed).standard_normal((n,) + shape)
    return X / np.linalg.norm(X, axis=-1, keepdims=True)


CONV_CASES = [
    (ResCNN(2, 0.5, input_var=0.1, activation="tanh"), (5, 4, 3)),
    (CNN(2, activation="gelu", readout="flatten", input_var=0.5), (6, 3)),
    (ResCNN(1, 0.7, activation=USER, readout="center", input_var=0.3), (5, 5, 2)),
]


@pytest.mark.parametrize("arch,shape", CONV_CASES, ids=[a.slug for a, _ in CONV_CASES])
@pytest.mark.parametrize("kind", ["ntk", "nngp"])
def test_conv_multisphere_takes_the_tables_and_agrees(arch, shape, kind, monkeypatch):
    """Conv programs on multi-sphere images (every pixel of every input the same variance): the plan
    builds tables for its SERIES duals; the Gram matrix agrees with the numpy interpreter
    (test_conv_series.py's tolerance) and with the per-entry series (tables off) within
    _tol_series; symmetric; a duplicated image gives the diagonal's bits; the same bits on two
    threads and small tiles."""
    from .test_conv_series import _tol
    X = _multisphere(9, shape, 21)
    X[5] = X[1]
    plan = ConvGramPlan(arch, X, kind=kind)
    assert plan.series is not None and (plan.series[8][0] >= 0).any()
    assert plan.block_format == "Hermite duals tabulated in rho, a degree per panel"   # a store names the route
    monkeypatch.setattr(rho_tables, "PER_PANEL", False)                # other tables: another name
    assert ConvGramPlan(arch, X, kind=kind).block_format == "Hermite duals tabulated in rho"
    monkeypatch.undo()
    K = gram(arch, X, kind=kind)
    assert _rel(K, gram(arch, X, kind=kind, backend="numpy")) <= _tol(arch)
    assert np.array_equal(K, K.T) and K[5, 5] == K[1, 1] == K[1, 5]
    assert np.array_equal(K, gram(arch, X, kind=kind, n_threads=2, tile=4))
    monkeypatch.setattr(rho_tables, "RHO_ROWS", 0)
    assert not (ConvGramPlan(arch, X, kind=kind).series[8] >= 0).any()
    assert _rel(K, gram(arch, X, kind=kind)) <= _tol_series(arch)


def test_conv_tables_past_the_stored_degrees(monkeypatch):
    """CNN(1, tanh) at input_var = 4 on multi-sphere images of two channels (pixels on the circle: many
    near-parallel pixel pairs): the degrees past the 160 stored ones certify more panels, the panels the
    stored degrees certify keep their coefficients bit for bit, and the Gram matrix agrees with the
    numpy interpreter.  (A planted loss of those degrees moves this Gram matrix by 0.6 of the
    interpreter tolerance only -- the gained panels lie next to the certified ones, where the lost
    tail is a few eps of m2 --, so it is caught at the unit level against the closed form,
    test_degrees_past_the_stored_ones_certify_more_panels_and_agree.)"""
    from .test_conv_series import _tol
    arch = CNN(1, activation="tanh", input_var=4.0)
    X = _multisphere(12, (6, 2), 3)
    stored = []
    build = rho_tables.build

    def spy(arrays, groups, want_ntk, full=None):
        stored.append(build(arrays, groups, want_ntk))
        return build(arrays, groups, want_ntk, full)
    monkeypatch.setattr(rho_tables, "build", spy)
    plan = ConvGramPlan(arch, X)
    _, stab, sok, sdeg = stored[-1]
    rtab, rok, rdeg = plan.series[9:12]
    assert np.all(rok.sum(axis=1) >= sok.sum(axis=1) + 16)          # 458 / 446 -> 480 / 490
    assert np.all(rdeg >= sdeg) and np.array_equal(rtab[sok != 0], stab[sok != 0])  # gained panels' own degrees
    assert _rel(gram(arch, X), gram(arch, X, backend="numpy")) <= _tol(arch)


def test_conv_images_build_no_tables_and_a_planted_conv_table_error_is_caught(monkeypatch):
    """Standard-normal images (a variance per pixel) get no table; on multi-sphere images tables read
    one panel off move the conv Gram matrix far beyond _tol_series."""
    arch = ResCNN(2, 0.5, input_var=0.1, activation="tanh")
    X = np.random.default_rng(22).standard_normal((6, 5, 4, 3))
    plan = ConvGramPlan(arch, X)
    assert not (plan.series[8] >= 0).any() and plan.block_format is None
    X = _multisphere(6, (5, 4, 3), 23)
    K = gram(arch, X)
    _plant_shifted_tables(monkeypatch)
    assert _rel(gram(arch, X), K) > 1e3 * _tol_series(arch)


def test_kept_tables_are_the_same_bits_and_callers_get_copies():
    """Gram matrices on the sphere (other inputs, the same variances) read the tables kept from an
    earlier one (rho_tables._table_kept): the same bits as with the kept tables emptied before each,
    and a caller that writes into a returned table (build merges panels so) does not change the kept
    one."""
    arch = ResNet(3, 0.5, activation="tanh", input_var=4.0)
    X, Z = _sphere(40, 5, 11), _sphere(30, 5, 12)
    fresh = []
    for args in ((X,), (Z, X)):
        rho_tables._table_kept.cache_clear()
        fresh.append(gram(arch, *args, kind="ntk"))
        assert rho_tables._table_kept.cache_info().misses > 0      # built its tables
    misses = rho_tables._table_kept.cache_info().misses
    kept = [gram(arch, X, kind="ntk"), gram(arch, Z, X, kind="ntk")]
    info = rho_tables._table_kept.cache_info()
    assert info.misses == misses and info.hits > 0, info           # the second pair built no table
    assert all(np.array_equal(a, b) for a, b in zip(fresh, kept))
    arrays, rows, _ = _tables((TANH, DTANH), [3.0])
    c, T = arrays[4][arrays[0][0, rows[0]]:][:int(arrays[1][0, rows[0]]) + 1] ** 2, 1e-30
    first = rho_tables._table(c, T, 1e-12)
    first[0][:] = np.nan
    first[1][:] = 7
    again = rho_tables._table(c, T, 1e-12)
    rho_tables._table_kept.cache_clear()
    new = rho_tables._table(c, T, 1e-12)
    assert all(np.array_equal(a, b) for a, b in zip(again, new)) and np.isfinite(again[0]).all()
    # the key tells the arguments apart: a lower degree cap, a stricter threshold give other tables
    capped = rho_tables._table(c, T, 1e-12, 3)
    assert not capped[0][:, 4:].any() and capped[0][:, 4:].shape == new[0][:, 4:].shape and new[0][:, 4:].any()
    strict = rho_tables._table(c, T, 1e-40)
    assert (strict[1] != 0).sum() < (new[1] != 0).sum()
    with pytest.raises(ValueError):
        rho_tables._table_kept(c.tobytes(), T, 1e-12, 8, rho_tables.RHO_PANELS, rho_tables.RHO_DEGREE, True)[0][0, 0] = 1.0

"""The float64 Hermite (Mehler) duals of numerics/hermite.py against independent routes: the
mpmath trapezoid dual (numerics/variance.py, certified by recomputation), closed forms of
activations that have them (sin(x) + x^2/5, ReLU written as a user function), and its own
truncation bound against the measured truncation error."""
import math

import mpmath
import numpy as np
import pytest

from reskernels.numerics import hermite as H
from reskernels.numerics.variance import MpmathContext, NumpyContext, second_moment_trapezoid
from reskernels.theory import activations as A

EPS = np.finfo(float).eps
TANH = A.tanh()
F_TANH, DF_TANH = TANH.fn, TANH.derivative


def _sinpoly(x, xp):
    return xp.sin(x) + x * x / 5


def _dsinpoly(x, xp):
    return xp.cos(x) + 2 * x / 5


def _sinpoly_closed(qx, qz, S):
    """E[f(u) f(v)] and E[f'(u) f'(v)] of f = sin + x^2/5: the cross terms E[sin(u) v^2] and
    E[cos(u) v] vanish by the symmetry (u, v) -> (-u, -v); E[sin u sin v] = exp(-(qx+qz)/2) sinh S,
    E[cos u cos v] = exp(-(qx+qz)/2) cosh S (activations.sin / cos), E[u^2 v^2] = qx qz + 2 S^2."""
    e = math.exp(-(qx + qz) / 2)
    return e * math.sinh(S) + (qx * qz + 2 * S * S) / 25, e * math.cosh(S) + 4 * S / 25


def _terms(fn, qx, qz, S):
    """(sum_k |a_k(qx) a_k(qz) rho^k| over the degrees the entry uses, scale sqrt(m2x m2z))."""
    C = H.coefficients(fn, np.array([qx, qz]), NumpyContext())
    rho = S / math.sqrt(qx * qz)
    k = np.isfinite(C.tail).all(axis=0).sum()
    t = np.abs(C.a[0, :k] * C.a[1, :k] * rho ** np.arange(k)).sum()
    return t, math.sqrt(C.m2[0] * C.m2[1])


def _tol(fn, qx, qz, S):
    """8 eps times the sum of |terms| (Horner's rounding and the refined coefficients) plus twice
    the truncation target (TAIL_RTOL of the scale)."""
    t, scale = _terms(fn, qx, qz, S)
    return 8 * EPS * t + 2 * H.TAIL_RTOL * scale


def _hermite(fn, qx, qz, S):
    out, fb = H.gaussian_expectation_hermite(fn, np.array(qx), np.array(qz), np.array(S), NumpyContext())
    return float(out), bool(fb)


_REF = {}


def _mp_ref(fn, qx, qz, S, dps=30):
    key = (fn, qx, qz, S, dps)
    if key not in _REF:
        with mpmath.workdps(dps):
            _REF[key] = MpmathContext().gaussian_expectation(fn, qx, qz, S)
    return _REF[key]


def test_trapezoid_rules_are_orthonormal():
    """V V^T = I and sum w = 1 to rounding on every rule of the ladder (the degrees K_max(h) of the
    module docstring), and well past the bound (60 degrees at the coarsest step, K_max 11) the rows
    are not orthonormal: the check can fail."""
    for j in range(len(H.STEPS)):
        x, s, V, inner = H.trapezoid_rule(j)
        n = x.size
        assert V.shape[0] == H.degrees(H.STEPS[j]) + 1
        assert np.abs(V @ V.T - np.eye(V.shape[0])).max() <= 8 * EPS * math.sqrt(n), j
        assert abs(s @ s - 1) <= 8 * EPS * math.sqrt(n)
        # the rule integrates He_2 = x^2 - 1 to 0 and x^4 to 3
        assert abs((s * s) @ (x * x) - 1) <= 64 * EPS and abs((s * s) @ x ** 4 - 3) <= 256 * EPS
        assert np.all(np.abs(x[inner]) <= H.F_RADIUS) and not np.any(np.abs(x[~inner]) <= H.F_RADIUS)
    # well past the bound at the coarsest step the rows stop being orthonormal
    h = H.STEPS[0]
    x = h * np.arange(-200, 201)
    G = H._hermite_functions(x, 60) * math.sqrt(h / math.sqrt(2 * math.pi))
    assert np.abs(G @ G.T - np.eye(60)).max() > 1e-6


# generic entries, near rho = +1 and -1, small variances, a large one (q = 2 needs the top of the ladder)
TANH_CASES = [(0.5, 0.8, 0.3), (1.2, 0.9, -0.7), (0.3, 0.3, 0.3 * (1 - 1e-9)), (0.6, 0.6, -0.6 * (1 - 1e-7)),
              (1e-3, 2e-3, 1e-3), (2.0, 1.5, 0.4)]


@pytest.mark.mp
@pytest.mark.parametrize("qx, qz, S", TANH_CASES)
def test_tanh_dual_agrees_with_30_digit_mpmath(qx, qz, S):
    got, fb = _hermite(F_TANH, qx, qz, S)
    assert not fb, "the expansion certifies these entries"
    ref = float(_mp_ref(F_TANH, qx, qz, S))
    err = abs(got - ref)
    assert err <= _tol(F_TANH, qx, qz, S), (qx, qz, S, got, ref, err / abs(ref))
    assert err <= 1.5e-15 * abs(ref)          # the relative accuracy measured (max 8.7e-16)


@pytest.mark.mp
@pytest.mark.parametrize("qx, qz, S", [(0.5, 0.8, 0.3), (0.9, 0.9, 0.9 * (1 - 1e-8))])
def test_tanh_derivative_dual_agrees_with_mpmath(qx, qz, S):
    got, fb = _hermite(DF_TANH, qx, qz, S)
    assert not fb
    ref = float(_mp_ref(DF_TANH, qx, qz, S, dps=20))
    assert abs(got - ref) <= _tol(DF_TANH, qx, qz, S), (got, ref)


@pytest.mark.parametrize("qx, qz", [(0.04, 0.09), (1.0, 0.7), (4.0, 2.5), (9.0, 6.0), (2.0, 2.0), (9.0, 9.0)])
def test_smooth_user_function_against_its_closed_form(qx, qz):
    """sin(x) + x^2/5 (an entire function: the series certifies even q = 9; equal variances at rho = 1 are the
    diagonal, the one-dimensional trapezoid rule) at correlations across
    [-1, 1], both duals, against the closed form."""
    fn = A.from_function(lambda x: np.sin(x) + x * x / 5, lambda x: np.cos(x) + 2 * x / 5, name="sinpoly")
    g = math.sqrt(qx * qz)
    for rho in (-1.0, -0.999999, -0.6, 0.0, 0.35, 0.9, 1 - 1e-10, 1.0):
        S = rho * g
        E1, E0 = fn.dual(np.float64(qx), np.float64(qz), np.float64(S), NumpyContext(), True)
        W1, W0 = _sinpoly_closed(qx, qz, S)
        for got, want, f in ((E1, W1, _sinpoly), (E0, W0, _dsinpoly)):
            tol = _tol(f, qx, qz, S) + 4 * EPS * abs(want)      # the closed form's own rounding
            assert abs(got - want) <= tol, (qx, qz, rho, got, want)


def test_diagonal_is_the_one_dimensional_second_moment():
    """S == qx == qz: E[f^2] by the one-dimensional rule, bit for bit, and equal to mpmath."""
    ctx = NumpyContext()
    q = np.array([0.01, 0.5, 1.3, 3.0])
    got = ctx.gaussian_expectation(F_TANH, q, q, q)
    assert np.array_equal(got, second_moment_trapezoid(F_TANH, q, ctx))
    with mpmath.workdps(30):
        for qi, gi in zip(q, got):
            want = mpmath.quad(lambda x: mpmath.tanh(mpmath.sqrt(qi) * x) ** 2 * mpmath.npdf(x), [-mpmath.inf, 0, mpmath.inf])
            assert abs(gi - float(want)) <= 4 * EPS * float(want), (qi, gi, want)


@pytest.mark.mp
def test_mpmath_route_on_the_diagonal_and_antiparallel_states():
    """The mpmath trapezoid dual at rho = +-1 (its inner sum reduced to the weights' sum, one
    dimension) against mpmath.quad of the one-dimensional second moment at 30 digits: E[f(u)^2] on
    (q, q, q), and on (q, q, -q) E[f(u) f(-u)] = -E[f^2] for tanh (odd), +E[f'^2] for tanh' (even):
    a reduction that lost the sign of rho misses tanh's antiparallel value by twice its size."""
    for q in (0.5, 3.0):
        for fn, parity in ((F_TANH, -1), (DF_TANH, 1)):
            with mpmath.workdps(30):
                want = mpmath.quad(lambda x: fn(mpmath.sqrt(q) * x, mpmath) ** 2 * mpmath.npdf(x),
                                   [-mpmath.inf, 0, mpmath.inf])
                for S, sign in ((q, 1), (-q, parity)):
                    got = MpmathContext().gaussian_expectation(fn, q, q, S)
                    assert abs(got - sign * want) <= mpmath.mpf(10) ** -28 * want, (q, S, got, want)


def test_kinked_user_function_takes_the_fallback_and_stays_accurate():
    """relu as a user function: the coefficient rules converge only algebraically on a kink, so
    the refinement check certifies no coefficient and every off-diagonal entry falls back to the
    trapezoid rule; against the arc-cosine closed form sqrt(qx qz) (sqrt(1 - rho^2) + (pi - arccos
    rho) rho) / (2 pi) it stays within 1e-3 of the scale sqrt(E[f(u)^2] E[f(v)^2]) = sqrt(qx qz) / 2
    (measured 5e-4: the rule converges like h^2 on a kink; no bound is claimed for kinks)."""
    fn = lambda x, xp: np.maximum(x, 0.0)
    ctx = NumpyContext()
    q = np.array([0.5, 1.0, 2.0])
    rho = np.array([-0.999, -0.3, 0.05, 0.4, 0.97, 0.9999])
    qx, qz = q[:, None, None], q[None, :, None]
    S = rho[None, None, :] * np.sqrt(qx * qz)
    out, fb = H.gaussian_expectation_hermite(fn, qx, qz, S, ctx)
    assert fb.all() and np.isnan(out).all()
    full = ctx.gaussian_expectation(fn, qx, qz, S)
    r = np.broadcast_to(rho, S.shape)
    want = np.sqrt(qx * qz) * (np.sqrt(1 - r * r) + (np.pi - np.arccos(r)) * r) / (2 * np.pi)
    assert np.array_equal(full, ctx.gaussian_expectation_trapezoid(fn, qx, qz, S))
    scale = np.broadcast_to(np.sqrt(qx * qz) / 2, S.shape)
    assert np.all(np.abs(full - want) <= 1e-3 * scale), (np.abs(full - want) / scale).max()


def test_truncation_bound_bounds_the_measured_truncation_error():
    """|E - sum_{k<=K} a_k(qx) a_k(qz) rho^k| <= |rho|^(K+1) tail_K(qx) tail_K(qz) for every stored
    K: sin(x) + x^2/5 against its closed form on a grid of rho, tanh against mpmath at two
    correlations (rounding allowance: 8 eps times the sum of |terms|)."""
    ctx = NumpyContext()
    checked = 0
    for fn, qx, qz, rhos, ref in (
            (_sinpoly, 2.0, 3.0, np.linspace(-1, 1, 41), lambda S: _sinpoly_closed(2.0, 3.0, S)[0]),
            (F_TANH, 0.7, 1.1, np.array([0.93, -0.8]), lambda S: float(_mp_ref(F_TANH, 0.7, 1.1, S, dps=20)))):
        C = H.coefficients(fn, np.array([qx, qz]), ctx)
        kc = int(np.isfinite(C.tail).all(axis=0).sum())
        g = math.sqrt(qx * qz)
        for rho in rhos:
            E = ref(rho * g)
            terms = C.a[0, :kc] * C.a[1, :kc] * rho ** np.arange(kc)
            partial = np.cumsum(terms)
            bound = abs(rho) ** (np.arange(kc) + 1) * C.tail[0, :kc] * C.tail[1, :kc]
            slack = 8 * EPS * np.abs(terms).sum() + 4 * EPS * abs(E)
            assert np.all(np.abs(E - partial) <= bound + slack), (fn, rho)
            checked += kc
    assert checked > 500


def test_compiled_and_numpy_series_agree():
    """The numba loop and its numpy twin pick the same entries and agree to rounding."""
    if H._series_compiled is None:
        pytest.skip("numba is not installed")
    ctx = NumpyContext()
    rng = np.random.default_rng(4)
    q = rng.uniform(0.1, 2.5, 40)
    C = H.coefficients(F_TANH, q, ctx)
    ix, iz = rng.integers(0, 40, 3000), rng.integers(0, 40, 3000)
    rho = rng.uniform(-1, 1, 3000)
    thr = H.TAIL_RTOL * np.sqrt(C.m2[ix] * C.m2[iz])
    o1, f1 = np.full(3000, np.nan), np.zeros(3000, bool)
    o2, f2 = np.full(3000, np.nan), np.zeros(3000, bool)
    H.series(rho, ix, iz, C.a, C.tail, thr, o1, f1)
    H._series_numpy(rho, ix, iz, C.a, C.tail, thr, o2, f2)
    assert np.array_equal(f1, f2) and f1.any() and not f1.all()
    assert np.all(np.abs(o1[~f1] - o2[~f1]) <= 64 * EPS * np.sqrt(C.m2[ix] * C.m2[iz])[~f1])


def test_bad_variances_are_refused_by_name():
    with pytest.raises(ValueError, match="q must"):
        H.coefficients(F_TANH, np.array([0.5, -1.0]), NumpyContext())
    with pytest.raises(ValueError, match="j must"):
        H.trapezoid_rule(len(H.STEPS))


def test_results_do_not_depend_on_earlier_calls():
    """The ladder is replayed from its first rule on every call (each rule's coefficients and its
    refinement check are cached per variance, never a call's accepted rows), so a call after others that climbed further returns bit for bit what it returned on an
    empty cache (it returned a value from a higher rule, 1 ulp off, when whole rows were cached)."""
    from reskernels import CNN, MLP, gram
    from reskernels.numerics import hermite
    X = np.random.default_rng(1).standard_normal((2, 4, 1))
    Y = np.random.default_rng(2).standard_normal((6, 5))
    for arch, data in ((CNN(2, activation="tanh", bias_var=0.1), X), (MLP(3, activation="tanh"), Y)):
        hermite._cache.clear()
        first = gram(arch, data[:2], backend="numpy")
        gram(arch, data, backend="numpy")                       # more entries, other |rho|, more rules
        gram(arch, 3.0 * data, backend="numpy")
        assert np.array_equal(gram(arch, data[:2], backend="numpy"), first)


def test_fallback_step_follows_the_narrow_direction():
    """The 2-D fallback with tanh's strip (pi / 2): the step in y comes from that direction's own
    strip pi / (2 s), s = sqrt(qz (1 - rho^2)) (``analytic_step``), coarser where s is small, and
    the values stay within 4 eps of 20-digit mpmath, at |rho| near 1 (the entries that fall back)
    and at a generic rho; a strip claimed far too wide (40, a planted error) makes the step too
    coarse at the generic rho and the error shows (2e-3)."""
    from reskernels.numerics.variance import analytic_step
    ctx = NumpyContext()
    dtanh = lambda x, xp: 1 - xp.tanh(x) ** 2
    for q in (5.0,):      # 20-digit references (4 eps is 1e-15): 2-D mpmath rules, kept short
        for rho in (0.999, 1 - 1e-6, -0.9999, 0.3):
            S = rho * q
            with mpmath.workdps(20):
                ref = float(MpmathContext().gaussian_expectation(dtanh, q, q, S))
            args = (np.array([q]), np.array([q]), np.array([S]))
            got = ctx.gaussian_expectation_trapezoid(dtanh, *args, strip=math.pi / 2)[0]
            assert abs(got - ref) <= 4 * EPS * abs(ref), (q, rho, got, ref)
            wrong = ctx.gaussian_expectation_trapezoid(dtanh, *args, strip=40.0)[0]
            if q == 5.0 and rho == 0.3:
                assert abs(wrong - ref) > 1e-4 * abs(ref)
    # near rho = 1 the narrow direction takes the coarsest step (0.5 against 0.2 / sqrt(5) in x)
    s = math.sqrt(5.0 * (1 - 0.999 ** 2))
    assert analytic_step(math.pi / 2 / s) == 0.5
    with pytest.raises(ValueError, match="D must"):
        analytic_step(0.0)


def test_fallback_step_at_a_nearly_degenerate_pair():
    """rho = 1 - 1e-15 (s = 1e-7: a strip of 2e7 in y): the step stays 0.5 (it was taken from
    d = D, 3e-7, and the rule asked for 389 GiB on a conv tanh Gram matrix of 16 images at the
    default input_var), the value within 4 eps of mpmath, and that Gram matrix is finite."""
    from reskernels import ResCNN, gram
    from reskernels.numerics.variance import analytic_step
    assert analytic_step(4.2e7) == 0.5 and analytic_step(math.sqrt(92)) == 0.5
    q, rho = 5.0, 1 - 1e-15
    with mpmath.workdps(30):
        ref = float(MpmathContext().gaussian_expectation(F_TANH, q, q, mpmath.mpf(q) * rho))
    got = NumpyContext().gaussian_expectation_trapezoid(F_TANH, np.array([q]), np.array([q]), np.array([q * rho]),
                                                          strip=math.pi / 2)[0]
    assert abs(got - ref) <= 4 * EPS * abs(ref), (got, ref)
    rng = np.random.default_rng(0)
    rng.standard_normal((1000, 16))
    X = rng.standard_normal((16, 6, 6, 3))          # the benchmark's images, a pair at rho ~ 1 - 1e-16
    with np.errstate(all="ignore"):
        K = gram(ResCNN(2, 0.5, activation="tanh"), X, backend="numpy")
    assert np.all(np.isfinite(K))


def test_tanh_certified_at_deep_variances():
    """The trapezoid ladder certifies tanh's coefficients at the variances of deep layers at every
    correlation (the Gauss-Hermite ladder it replaced stopped at rho_cert 0.70 for q = 2.5 and sent
    those entries to the 2-D fallback), and the series there agrees with 30-digit mpmath."""
    C = H.coefficients(F_TANH, np.array([1.0, 2.0, 2.5]), NumpyContext())
    assert np.all(C.rho_cert == 1.0), C.rho_cert
    out, fb = H.gaussian_expectation_hermite(F_TANH, 2.5, 2.5, 2.5 * (1 - 1e-9), NumpyContext())
    assert not fb
    with mpmath.workdps(30):
        ref = float(MpmathContext().gaussian_expectation(F_TANH, 2.5, 2.5, 2.5 * (1 - 1e-9)))
    assert abs(float(out) - ref) <= 4 * EPS * abs(ref)


def test_fast_growing_function_is_not_truncated(monkeypatch):
    """f = exp: E[e^u e^v] = exp((qx + qz) / 2 + S) exactly.  At q = 4 and 9 the integrand's mass
    reaches |x| = 13, where the rules stop evaluating bounded functions: the edge check moves those
    variances to every node of the rule (values within 1e-14 of the closed form); with the check
    disabled (a planted error) the truncation shows (1e-6 at q = 4, 3e-3 at q = 9, rho = 0.95)."""
    fexp = lambda x, xp: xp.exp(x)

    def rel(q, rho):
        got = NumpyContext().gaussian_expectation(fexp, np.array([q]), np.array([q]), np.array([rho * q]))[0]
        return abs(got / math.exp(q + rho * q) - 1)

    for q in (4.0, 9.0):
        assert rel(q, 0.95) <= 1e-14, q
    H._cache.clear()
    monkeypatch.setattr(H, "EDGE_RTOL", math.inf)
    try:
        assert rel(4.0, 0.95) > 1e-8 and rel(9.0, 0.95) > 1e-4
    finally:
        H._cache.clear()


@pytest.mark.parametrize("q, rho", [(10.0, 0.9), (30.0, 0.5), (56.0, -0.8), (150.0, 0.3)])
def test_tanh_at_large_variances_takes_the_fine_rules(q, rho):
    """Unnormalised inputs give variances of 10-60 from the first layer (R^16, standard normal),
    where x -> tanh(sqrt(q) x) has its poles at +-i pi / (2 sqrt(q)) and the coarse rules (h >= 0.053)
    cannot resolve its coefficients (every entry fell back to the 2-D rule: 19 s for a 20-input
    ResNet(6)).  Its disagreement falls geometrically along the ladder, so the variance climbs the
    fine rules (h down to 0.0104) and the series certifies |rho| <= 0.93 up to q = 150; the values
    agree with the strip-aware 2-D trapezoid rule (itself within 4 eps of mpmath,
    test_fallback_step_follows_the_narrow_direction) for both duals.  Planted: without the climb
    (CLIMB_GAIN = inf) these entries are not certified."""
    ctx = NumpyContext()
    args = (np.array([q]), np.array([1.1 * q]), np.array([rho * q * math.sqrt(1.1)]))
    for f in (F_TANH, DF_TANH):
        out, fb = H.gaussian_expectation_hermite(f, *args, ctx)
        assert not fb.any(), (q, rho)
        ref = ctx.gaussian_expectation_trapezoid(f, *args, strip=math.pi / 2)
        assert abs(out[0] - ref[0]) <= 8 * EPS * math.sqrt(H.coefficients(f, args[0], ctx).m2[0]
                                                           * H.coefficients(f, args[1], ctx).m2[0]), (f, out, ref)
        assert H.coefficients(f, args[0], ctx).level[0] > H.FINE      # from a fine rule


def test_fine_rules_need_the_climb(monkeypatch):
    """The planted error for the test above: with the climb disabled the variance stops at the
    last coarse rule and its entries go to the fallback."""
    H._cache.clear()
    monkeypatch.setattr(H, "CLIMB_GAIN", math.inf)
    try:
        out, fb = H.gaussian_expectation_hermite(F_TANH, np.array([30.0]), np.array([33.0]),
                                                 np.array([0.5 * 30.0 * math.sqrt(1.1)]), NumpyContext())
        assert fb.all()
    finally:
        H._cache.clear()


def test_kinks_do_not_climb_the_fine_rules():
    """A kink converges only algebraically (h^2: 2.25-fold a level), so relu written as a user
    function stops at the last coarse rule (its entries fall back) instead of paying for the fine
    rules; tanh at the same variances climbs."""
    relu = lambda x, xp: np.maximum(x, 0.0)
    q = np.array([0.5, 2.0, 30.0])
    C = H.coefficients(relu, q, NumpyContext())
    assert np.all(C.level <= H.FINE), C.level
    assert np.all(H.coefficients(F_TANH, np.array([30.0]), NumpyContext()).level > H.FINE)


@pytest.mark.mp
@pytest.mark.slow
def test_tanh_at_a_large_variance_agrees_with_30_digit_mpmath():
    """The fine rules' value at q = 30 against 30-digit mpmath (77 s: slow; measured error 0)."""
    q, S = 30.0, 0.5 * 30.0
    out, fb = H.gaussian_expectation_hermite(F_TANH, q, 1.1 * q, S, NumpyContext())
    assert not fb
    ref = float(_mp_ref(F_TANH, q, 1.1 * q, S))
    assert abs(float(out) - ref) <= _tol(F_TANH, q, 1.1 * q, S)


def test_check_cache_stays_bounded(monkeypatch):
    """A function whose checks all stop at one rule keeps adding rows to that rule's table: once the
    cache passes its cap it is cleared, and a table that alone would hold a quarter of the cap is not
    put back (it grew without bound, and cleared every other table on each call, before)."""
    monkeypatch.setattr(H, "_CACHE_FLOATS", 2000)
    H._cache.clear()
    rng = np.random.default_rng(0)
    f = lambda x, c: x * x + x
    try:
        for _ in range(8):
            H.coefficients(f, 0.5 + rng.random(100), NumpyContext())
            assert H.cached_floats() <= 2 * 2000
            assert sum(t.n for t in H._cache.values()) <= 200
    finally:
        H._cache.clear()


def _tile_data(seed, R=24, C=40):
    """A tile of tanh series inputs where every branch of the entry loop is taken: entries not asked
    for (thr < 0; nan, -0.0 and 0.0 are asked for), |rho| = 1, 0 and mixed signs, variances with few resolved degrees (inf bounds
    past them) and partners that never meet the target together (fallback)."""
    rng = np.random.default_rng(seed)
    q = np.concatenate([rng.uniform(0.1, 2.5, 30), [40.0, 90.0]])
    C_ = H.coefficients(F_TANH, q, NumpyContext())
    ir, jc = rng.integers(0, q.size, R), rng.integers(0, q.size, C)
    ir[:2] = [30, 31]
    rho = rng.uniform(-1, 1, (R, C))
    rho[0, :4] = [1.0, -1.0, 0.0, 0.999999]
    thr = H.TAIL_RTOL * np.sqrt(C_.m2[ir][:, None] * C_.m2[jc][None, :])
    thr[rng.random((R, C)) < 0.1] = -1.0
    thr[1, :3] = (np.nan, -0.0, 0.0)                  # nan is asked for, as -0.0 and 0.0 are
    return C_, ir, jc, rho, thr


def test_tile_series_is_the_entry_series_bit_for_bit():
    """_series_tile_loop (a row's entries side by side on SIMD lanes) returns exactly the values and
    fallback flags of _series_loop, entry by entry."""
    if H._series_tile_compiled is None:
        pytest.skip("numba is not installed")
    for seed in range(4):
        C_, ir, jc, rho, thr = _tile_data(seed)
        R, Cn = rho.shape
        o1, f1 = np.full((R, Cn), np.nan), np.zeros((R, Cn), bool)
        o2, f2 = np.full(R * Cn, np.nan), np.zeros(R * Cn, bool)
        H._series_tile_compiled(rho, ir, jc, C_.a, C_.tail, thr, o1, f1)
        ix = np.repeat(ir, Cn)
        iz = np.tile(jc, R)
        H._series_compiled(rho.ravel(), ix, iz, C_.a, C_.tail, thr.ravel(), o2, f2)
        assert f1.any() and np.isfinite(o1).any()
        assert np.array_equal(f1.ravel(), f2) and np.array_equal(o1.ravel(), o2, equal_nan=True)


def test_trimmed_coefficients_give_the_same_values(monkeypatch):
    """gaussian_expectation_hermite keeps only the degrees the variances need at their largest |rho|
    (coefficients(trim=True)) and retries on all of them where an entry finds none: the same bits
    as with every resolved degree, also when the trimmed width is planted far too small (then the
    retry must carry the whole tile, and does)."""
    if H._least_degree_compiled is None:
        pytest.skip("numba is not installed")
    rng = np.random.default_rng(7)
    qx = rng.uniform(0.2, 3.0, (30, 1))
    qz = rng.uniform(0.2, 3.0, (1, 50))
    S = rng.uniform(-0.999, 0.999, (30, 50)) * np.sqrt(qx * qz)
    ctx = NumpyContext()
    trimmed = H.gaussian_expectation_hermite(F_TANH, qx, qz, S, ctx)
    C_ = H.coefficients(F_TANH, np.concatenate([qx.ravel(), qz.ravel()]), ctx, trim=True,
                        rho_need=np.full(80, 0.5))
    assert C_.trimmed and C_.a.shape[1] < C_.widened()[0].shape[1]
    full_a, full_t = C_.widened()
    w = C_.a.shape[1]
    assert np.array_equal(C_.a, full_a[:, :w]) and np.array_equal(C_.tail, full_t[:, :w])
    calls = []
    series = H.series
    monkeypatch.setattr(H, "series", lambda *a: calls.append(a[3].shape[1]) or series(*a))
    with monkeypatch.context() as m:
        m.setattr(H, "_least_degree_compiled", None)              # no trimming
        untrimmed = H.gaussian_expectation_hermite(F_TANH, qx, qz, S, ctx)
    with monkeypatch.context() as m:                              # planted: one column only
        m.setattr(H, "_least_degree", lambda t, pos, need: np.zeros(pos.size, dtype=np.int64))
        calls.clear()
        tiny = H.gaussian_expectation_hermite(F_TANH, qx, qz, S, ctx)
        assert calls[0] == 1 and calls[1] > 1                     # the retry ran on all degrees
    for got in (trimmed, tiny):
        assert np.array_equal(got[0], untrimmed[0], equal_nan=True) and np.array_equal(got[1], untrimmed[1])


def test_projection_rows_do_not_depend_on_their_batch():
    """A variance's discrete coefficients, E[f^2] and projection residual are the same bits
    whatever batch computes them (a BLAS product rounds a row differently with the batch's size),
    and agree with BLAS to rounding."""
    if H._project_compiled is None:
        pytest.skip("numba is not installed")
    rng = np.random.default_rng(11)
    for j in (1, 4, 7):
        x, s, V, R = H._split_rule(j)
        F = rng.standard_normal((60, V.shape[1])) * s
        A, m2, res = H._project(F, V, R)
        for nu in (1, 2, 5, 9, 33):
            idx = rng.choice(60, nu, replace=False)
            got = H._project(F[idx], V, R)
            assert all(np.array_equal(g, w[idx]) for g, w in zip(got, (A, m2, res)))
        Ab = F @ V.T
        assert np.max(np.abs(A - Ab)) <= 1e3 * EPS * np.max(np.abs(Ab))
        assert np.allclose(m2, np.einsum("ui,ui->u", F, F), rtol=1e3 * EPS, atol=0)


def test_gram_does_not_depend_on_threads_or_earlier_calls():
    """tanh Gram matrices with one and two threads (whose tiles race to compute the variances they
    share) and after a larger call that met the same variances first: the same bits (with BLAS
    projections they differed by 1e-17 to 3e-17 of the scale)."""
    if H._project_compiled is None:
        pytest.skip("numba is not installed")
    from reskernels import ResNet, gram
    X = np.random.default_rng(1).standard_normal((150, 6))
    arch = ResNet(4, 0.5, activation="tanh")
    H._cache.clear()
    one = gram(arch, X, n_threads=1, tile=32)
    H._cache.clear()
    two = gram(arch, X, n_threads=2, tile=32)
    assert np.array_equal(one, two)
    # batches of 20 and of 128 variances (numpy's OpenBLAS rounded them apart: measured)
    Y = np.random.default_rng(2).standard_normal((200, 5))
    H._cache.clear()
    small = gram(arch, Y[:20], n_threads=1)
    H._cache.clear()
    gram(arch, Y, n_threads=1)
    after = gram(arch, Y[:20], n_threads=1)
    H._cache.clear()
    assert np.array_equal(after, small)

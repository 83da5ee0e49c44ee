"""tanh and GELU at large variances by the separable series of numerics/saturating.py (tanh = sign + g,
sech^2 localised, gelu = relu + g, gelu' = step + g): against nested QUADPACK, against the graded
panels of the kinked rule and GELU's one-dimensional smoothed rule on random entries, the mask of
where it holds, and planted errors (the g g series dropped, truncated)."""
import math

import numpy as np
import pytest

from reskernels import MLP, gram
from reskernels.numerics import saturating as Sat
from reskernels.numerics import variance as V
from reskernels.numerics.variance import NumpyContext
from reskernels.theory import activations as A

from .test_kinked_duals import TOL, _quadpack

TANH = A.tanh()
GELU = A.gelu()
#: (name, the activation's function, its saturating description, a scalar form for QUADPACK)
PARTS = [("tanh", TANH.fn, ("sign", 1.0, A._tanh_minus_sign, 1), math.tanh),
         ("sech2", TANH.derivative, ("sign", 0.0, A._sech2, 0), lambda t: 1 - math.tanh(t) ** 2),
         ("gelu", GELU.fn, ("relu", 1.0, A._gelu_minus_relu, 0), lambda t: t * (1 + math.erf(t / math.sqrt(2))) / 2),
         ("gelu'", GELU.derivative, ("step", 1.0, A._gelu_prime_minus_step, 1),
          lambda t: (1 + math.erf(t / math.sqrt(2))) / 2 + t * math.exp(-t * t / 2) / math.sqrt(2 * math.pi))]
#: the independent float64 rule per part: the kinked rule's panels graded towards 0 (tanh's poles at
#: distance pi/2; GELU's transition over a unit of u)
GRADE = {"tanh": math.pi / 2, "sech2": math.pi / 2, "gelu": 1.0, "gelu'": 1.0}
CTX = NumpyContext()


def _scale(fv, qx, qz):
    """sqrt(E[f(u)^2] E[f(v)^2]): the dual's Cauchy-Schwarz scale."""
    m = V.second_moment_trapezoid(fv, np.array([qx, qz], float), CTX)
    return math.sqrt(m[0] * m[1])


@pytest.mark.filterwarnings("ignore::scipy.integrate.IntegrationWarning")
@pytest.mark.parametrize("q, rhos", [(400.0, (-0.95, 0.01, 0.5)), (3072.0, (-0.95, 0.3, 0.99))])
def test_series_against_quadpack(q, rhos):
    """Within 16 eps of the scale of nested QUADPACK (an algorithm independent of the series) at the
    variances of unnormalised inputs in R^400 and R^3072; the g g series is large enough there that
    leaving it out would miss by orders of magnitude."""
    for name, fv, sat, f in PARTS:
        scale = _scale(fv, q, q)
        for rho in rhos:
            ref = _quadpack(f, q, rho)
            args = (np.array([q]), np.array([q]), np.array([rho * q]), CTX)
            val, ok = Sat.expectation(*sat, *args)
            assert ok[0], (name, q, rho)
            assert abs(val[0] - ref) <= TOL * scale, (name, q, rho, val[0], ref)
            if sat[1] != 0.0:         # E[g g] is large enough here that leaving it out would show
                gg = Sat.expectation(sat[0], 0.0, sat[2], sat[3], *args)[0][0]
                assert abs((val[0] - gg) - ref) > 1e3 * TOL * scale, (name, q, rho, gg)


@pytest.mark.filterwarnings("ignore::scipy.integrate.IntegrationWarning")
def test_series_stopping_rule():
    """At rho = 0.99, q = 3072 (b = 0.016) the sech^2 series needs several terms: the least kmax at
    which it flags itself converged agrees with QUADPACK within 16 eps of the scale; two degrees
    fewer it flags itself unconverged, and the series cut after one term (planted) misses QUADPACK
    by far more than the tolerance."""
    q, rho = 3072.0, 0.99
    ref = _quadpack(lambda t: 1 - math.tanh(t) ** 2, q, rho)
    scale = _scale(TANH.derivative, q, q)
    u, w = Sat.half_rule()
    gw = A._sech2(u, CTX) * w
    D = q * q * (1 - rho) * (1 + rho)
    a, b = np.array([q / D]), np.array([rho * q / D])
    norm = 2 * math.pi * math.sqrt(D)
    kmin = next(k for k in range(0, Sat.K_MAX + 1, 2) if Sat.series(gw, u, a, a, b, 0, kmax=k)[1][0])
    assert kmin >= 6, kmin
    val, ok = Sat.series(gw, u, a, a, b, 0, kmax=kmin)
    assert abs(val[0] / norm - ref) <= TOL * scale
    assert not Sat.series(gw, u, a, a, b, 0, kmax=kmin - 2)[1][0]
    short, ok1 = Sat.series(gw, u, a, a, b, 0, kmax=0)
    assert not ok1[0] and abs(short[0] / norm - ref) > 1e3 * TOL * scale


def test_series_against_graded_panels_on_random_entries():
    """400 random entries, larger variance 25..1e5 (log-uniform), the other 0.2..5 times it, rho
    uniform on (-1, 1): where the series holds (mask) it agrees with the graded Gauss-Legendre panels
    of the kinked rule within 16 eps of the scale (measured <= 2.2 eps), GELU's also with its
    one-dimensional smoothed rule (the series switched off; measured <= 4.1 eps); the mask is
    exactly the stated conditions, and holds for most of the entries."""
    rng = np.random.default_rng(7)
    n = 400
    qx = np.exp(rng.uniform(math.log(25.0), math.log(1e5), n))
    qz = qx * np.exp(rng.uniform(math.log(0.2), math.log(5.0), n))
    rho = rng.uniform(-1, 1, n)
    S = rho * np.sqrt(qx * qz)
    for name, fv, sat, _ in PARTS:
        val, ok = Sat.expectation(*sat, qx, qz, S, CTX)
        D = qx * qz * (1 - rho * rho)
        want = (qz / D <= Sat.A_MAX) & (qx / D <= Sat.A_MAX) & (np.abs(S / D) <= Sat.B_MAX)
        sure = np.abs(np.abs(S / D) - Sat.B_MAX) > 1e-9      # away from the boundary's rounding
        assert np.array_equal(ok[sure], want[sure]), name
        assert ok.mean() > 0.6, ok.mean()
        ref = V.gaussian_expectation_kinked(fv, qx[ok], qz[ok], S[ok], (0.0,), CTX, soft=GRADE[name])
        m = V.second_moment_trapezoid(fv, np.concatenate([qx[ok], qz[ok]]), CTX)
        scale = np.sqrt(m[:ok.sum()] * m[ok.sum():])
        err = np.abs(val[ok] - ref) / scale
        assert np.max(err) <= TOL, (name, np.max(err) / np.finfo(float).eps)
        if name.startswith("gelu"):
            with pytest.MonkeyPatch.context() as mp:
                mp.setattr(Sat, "B_MAX", -1.0)
                smoothed = GELU.dual(qx[ok], qz[ok], S[ok], CTX, True)[0 if name == "gelu" else 1]
            assert np.max(np.abs(val[ok] - smoothed) / scale) <= TOL, name


@pytest.mark.parametrize("act", ["tanh", "gelu"])
def test_gram_at_large_variances_takes_the_series(monkeypatch, act):
    """MLP(2, tanh / gelu) on standard-normal inputs in R^784 (first-layer variances ~784) with one
    near-parallel pair: the series takes the generic pairs, the previous rule the near-parallel one,
    and the Gram matrix agrees with the previous rules alone (the series switched off) within 1e-14
    of max |K|."""
    X = np.random.default_rng(3).standard_normal((6, 784))
    X[1] = X[0] + 0.01 * X[2]
    arch = MLP(2, activation=act)
    calls = []
    series = Sat.expectation
    monkeypatch.setattr(Sat, "expectation", lambda *a: calls.append(a) or series(*a))
    for kind in ("ntk", "nngp"):
        calls.clear()
        K = gram(arch, X, kind=kind, backend="numpy", n_threads=1)
        # 14 generic pairs (the 15th is near-parallel), E1 and, for the NTK, E0
        assert sum(int(np.sum(series(*c)[1])) for c in calls) >= (28 if kind == "ntk" else 14)
        with monkeypatch.context() as m:
            m.setattr(Sat, "B_MAX", -1.0)                  # the series holds nowhere: panels only
            ref = gram(arch, X, kind=kind, backend="numpy", n_threads=1)
        assert np.max(np.abs(K - ref)) <= 1e-14 * np.max(np.abs(ref))


def _edge_rho(qx, qz):
    """The largest rho with |b| = |S| / D <= B_MAX at these variances (bisection on the module's D)."""
    g = math.sqrt(qx * qz)
    lo, hi = 0.0, 1.0
    for _ in range(200):
        mid = (lo + hi) / 2
        D = Sat.determinant(np.array(qx), np.array(qz), np.array(mid * g))
        lo, hi = (mid, hi) if abs(mid * g / D) <= Sat.B_MAX else (lo, mid)
    return lo


def _gelu_mpmath(derivative, qx, qz, S):
    """E[f(u) f(v)] for f = gelu or gelu' at 30 digits on the exact float arguments, by the
    one-dimensional form E_x[f(sqrt(qx) x) E[f(v) | u]] with the Gaussian smoothings in closed
    form (mean S u / qx, variance D / qx; Stein's lemma, as theory.activations.gelu states them),
    breakpoints at f's transition (1 / sqrt(qx)) and the smoothing's."""
    import mpmath
    with mpmath.workdps(30):
        qx, qz, S = mpmath.mpf(qx), mpmath.mpf(qz), mpmath.mpf(S)
        s2 = (qx * qz - S * S) / qx
        r = mpmath.sqrt(1 + s2)
        if derivative:
            f = lambda t: mpmath.ncdf(t) + t * mpmath.npdf(t)
            sm = lambda m: mpmath.ncdf(m / r) + m * mpmath.npdf(m / r) / r ** 3
        else:
            f = lambda t: t * mpmath.ncdf(t)
            sm = lambda m: m * mpmath.ncdf(m / r) + s2 / r * mpmath.npdf(m / r)
        sx = mpmath.sqrt(qx)
        widths = (1 / sx, r / abs(S / sx))
        pts = sorted({mpmath.mpf(0)} | {s * k * w for w in widths for k in (0.25, 1, 4, 16) for s in (-1, 1)
                                         if k * w < 12} | {mpmath.mpf(-12), mpmath.mpf(12)})
        return float(mpmath.quad(lambda x: f(sx * x) * sm(S / qx * sx * x) * mpmath.npdf(x), pts))


@pytest.mark.parametrize("qx, qz", [(1e5, 1e6), (1e7, 1e8), (3e7, 1e7)])
def test_series_at_its_boundary_for_huge_variances_against_mpmath(qx, qz):
    """GELU and GELU' just inside |b| = B_MAX, where rho is within 1e-6 of 1 at these variances:
    within 16 eps of the scale of a 30-digit one-dimensional quadrature.  D = qx qz - S^2 there is
    taken by exact products (with (sqrt(qx qz) - S)(sqrt(qx qz) + S), as first written, gelu' erred
    by ~200 eps) and the base's angle by atan2(S, sqrt D) (arcsin of the rounded rho: ~370 eps for
    tanh at 1e7 / 1e8, measured by a review against long-double panels)."""
    g = math.sqrt(qx * qz)
    lo = _edge_rho(qx, qz)
    for name, fv, sat, _ in PARTS[2:]:
        m = V.second_moment_trapezoid(fv, np.array([qx, qz]), CTX)
        scale = math.sqrt(m[0] * m[1])
        for rho in (lo * (1 - 1e-12), -lo * (1 - 1e-12), 0.5 * lo):
            S = rho * g
            val, ok = Sat.expectation(*sat, np.array([qx]), np.array([qz]), np.array([S]), CTX)
            ref = _gelu_mpmath(name == "gelu'", qx, qz, S)
            assert ok[0] and abs(val[0] - ref) <= TOL * scale, (name, rho, val[0], ref,
                                                                (val[0] - ref) / scale / np.finfo(float).eps)



def _nested_mpmath(f, qx, qz, S, dps=20):
    """E[f(u) f(v)] by nested mpmath Gauss-Legendre at ``dps`` digits on the exact float arguments:
    u = sqrt(qx) x, v = k x + s z (k = S / sqrt(qx), s = sqrt(D / qx), D exact), breakpoints at the
    transitions u = 0 (x ~ 1 / sqrt(qx)), v = 0 in z, and the inner integral's in x (s / |k|)."""
    import mpmath
    with mpmath.workdps(dps):
        qx, qz, S = mpmath.mpf(qx), mpmath.mpf(qz), mpmath.mpf(S)
        sx = mpmath.sqrt(qx)
        s, k = mpmath.sqrt((qx * qz - S * S) / qx), S / sx
        edge = {mpmath.mpf(-12), mpmath.mpf(12)}

        def inner(x):
            c = -k * x / s
            pts = sorted(p for p in {c + d / s for d in (-16, -4, -1, 0, 1, 4, 16)} | edge if -12 <= p <= 12)
            return mpmath.quad(lambda z: f(k * x + s * z) * mpmath.npdf(z), pts)
        pts = sorted({mpmath.mpf(0)} | {sg * c * w for w in (1 / sx, s / abs(k)) for c in (0.25, 1, 4, 16)
                                        for sg in (-1, 1) if c * w < 12} | edge)
        return float(mpmath.quad(lambda x: f(sx * x) * inner(x) * mpmath.npdf(x), pts))


@pytest.mark.slow
@pytest.mark.parametrize("qx, qz", [(1e5, 1e6), (1e7, 1e8)])
def test_tanh_series_at_its_boundary_for_huge_variances_against_mpmath(qx, qz):
    """tanh and sech^2 just inside |b| = B_MAX (rho within 1e-5 of 1), where the first version erred by
    up to 8e4 eps: within 16 eps of the scale of nested 20-digit quadrature (measured <= 0.5 eps;
    about a minute a point, hence slow)."""
    import mpmath
    g = math.sqrt(qx * qz)
    lo = _edge_rho(qx, qz)
    S = lo * (1 - 1e-12) * g
    for (name, fv, sat, _), fm in zip(PARTS[:2], (mpmath.tanh, lambda t: mpmath.sech(t) ** 2)):
        m = V.second_moment_trapezoid(fv, np.array([qx, qz]), CTX)
        val, ok = Sat.expectation(*sat, np.array([qx]), np.array([qz]), np.array([S]), CTX)
        ref = _nested_mpmath(fm, qx, qz, S)
        assert ok[0] and abs(val[0] - ref) <= TOL * math.sqrt(m[0] * m[1]), (name, val[0], ref)


def test_variances_whose_product_overflows_give_nan_not_a_wrong_value():
    """qx qz beyond float64 (variances ~1.3e154, inputs |x| ~ 1e77): every float64 rule takes
    rho = S / sqrt(qx qz) = 0 there, and tanh's dual returned a finite wrong value (1.4e-34 instead of
    ~0.06, found by a review); it is NaN now, which gram turns into its InputRangeError."""
    import warnings
    q = np.array([1.3e154, 2e154])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        E1, E0 = TANH.dual(q, q[::-1], 0.3 * np.sqrt(q[0]) * np.sqrt(q[1]) * np.ones(2), CTX, True)
    assert np.all(np.isnan(E1)) and np.all(np.isnan(E0))

"""User activations with known kinks (``from_function(..., kinks=...)``): the float64 duals by
Gauss-Legendre panels split at the kinks (numerics/variance.py, gaussian_expectation_kinked)
against independent routes -- the arc-cosine closed form in 40-digit mpmath (relu), the library's
closed-form duals (leaky relu, abs), a one-dimensional mpmath quadrature with breakpoints (a hard
tanh's second moment) -- and planted errors: kinks at the wrong place, no kinks."""
import math

import mpmath
import numpy as np
import pytest

from reskernels import MLP, ResCNN, ResNet, gram
from reskernels.numerics import variance as V
from reskernels.numerics.variance import NumpyContext
from reskernels.theory import activations as A

EPS = np.finfo(float).eps
RELU = A.from_function(lambda x: np.maximum(x, 0.0), lambda x: (x > 0) * 1.0, name="relu", kinks=[0.0])


#: rounding of the panel sums: two reductions over ~10^2-10^3 nodes each, terms bounded by the
#: scale, ~log2(nodes) eps apiece
TOL = 16 * EPS


def _pairs(n=120, seed=0):
    """Variances 0.05-60, correlations across [-1, 1] with 50 within 1e-1..1e-16 of +-1 and +-1, 0."""
    rng = np.random.default_rng(seed)
    qx, qz = rng.uniform(0.05, 60, n), rng.uniform(0.05, 60, n)
    rho = rng.uniform(-1, 1, n)
    rho[:30] = 1 - 10.0 ** -rng.uniform(1, 16, 30)
    rho[30:50] = -rho[:20]
    rho[50:53] = (1.0, -1.0, 0.0)
    return qx, qz, rho * np.sqrt(qx * qz)


def test_relu_with_kinks_agrees_with_the_arccos_closed_form_at_40_digits():
    """Both duals within 4 eps of the scale (E[f(u)^2] E[f(v)^2])^(1/2) at every correlation,
    |rho| -> 1 included (the reference is the closed form at the same float64 rho the rule uses:
    the rounding of rho itself is the caller's, not the rule's)."""
    qx, qz, S = _pairs()
    E1, E0 = RELU.dual(qx, qz, S, NumpyContext(), True)
    rho_f = np.clip(S / np.sqrt(qx * qz), -1, 1)
    worst = 0.0
    with mpmath.workdps(40):
        for i in range(S.size):
            g = mpmath.sqrt(mpmath.mpf(qx[i]) * mpmath.mpf(qz[i]))
            r = mpmath.mpf(rho_f[i])
            th = mpmath.acos(r)
            k1 = g * (mpmath.sin(th) + (mpmath.pi - th) * r) / (2 * mpmath.pi)
            k0 = (mpmath.pi - th) / (2 * mpmath.pi)
            e = max(float(abs(E1[i] - k1) / (g / 2)), float(abs(E0[i] - k0) / mpmath.mpf(0.5)))
            worst = max(worst, e)
    assert worst <= TOL, worst                # measured 1.2e-15 (5.4 eps)


@pytest.mark.parametrize("name, user, ref", [
    ("leaky", A.from_function(lambda x: np.where(x > 0, x, 0.1 * x), lambda x: np.where(x > 0, 1.0, 0.1), kinks=[0.0]),
     A.leaky_relu(0.1)),
    ("abs", A.from_function(np.abs, np.sign, kinks=0.0), A.get("abs"))])
def test_kinked_user_functions_agree_with_closed_forms(name, user, ref):
    """leaky relu and abs as user functions against their closed-form duals at |rho| <= 0.999 (nearer
    1 the closed forms' arccos of a rounded rho is the larger error)."""
    qx, qz, S = _pairs(seed=1)
    rho = S / np.sqrt(qx * qz)
    keep = np.abs(rho) <= 0.999
    qx, qz, S = qx[keep], qz[keep], S[keep]
    ctx = NumpyContext()
    got, want = user.dual(qx, qz, S, ctx, True), ref.dual(qx, qz, S, ctx, True)
    for k in range(2):
        scale = np.sqrt(user.dual(qx, qx, qx, ctx, True)[k] * user.dual(qz, qz, qz, ctx, True)[k])
        assert np.all(np.abs(got[k] - want[k]) <= TOL * scale), (name, k, np.max(np.abs(got[k] - want[k]) / scale))


def test_hard_tanh_second_moment_against_mpmath():
    """The diagonal of a function with two kinks (clip to [-1, 1]): panels split at +-1 / sqrt(q)
    against mpmath's quadrature with the same breakpoints, 30 digits."""
    fn = lambda x, xp: np.clip(x, -1.0, 1.0)
    q = np.array([0.01, 0.7, 3.0, 50.0])
    got = V.second_moment_kinked(fn, q, (-1.0, 1.0), NumpyContext())
    with mpmath.workdps(30):
        for qi, gi in zip(q, got):
            s = mpmath.sqrt(qi)
            f = lambda x: min(mpmath.mpf(1), max(mpmath.mpf(-1), s * x)) ** 2 * mpmath.npdf(x)
            want = mpmath.quad(f, [-mpmath.inf, -1 / s, 0, 1 / s, mpmath.inf])
            assert abs(gi - float(want)) <= TOL * float(want), (qi, gi, want)


def test_kinks_at_the_wrong_place_show():
    """Planted errors: relu with its kink declared at 0.3 instead of 0, and relu without kinks (the
    Hermite series and the trapezoid rule), are visibly off the closed form; the true kink is not."""
    qx, qz, S = np.array([0.8, 2.0]), np.array([1.1, 2.0]), np.array([0.4, 1.7])
    ctx = NumpyContext()
    want = A.get("relu").dual(qx, qz, S, ctx, True)[0]
    wrong = A.from_function(lambda x: np.maximum(x, 0.0), lambda x: (x > 0) * 1.0, kinks=[0.3])
    none = A.from_function(lambda x: np.maximum(x, 0.0), lambda x: (x > 0) * 1.0)
    scale = np.sqrt(qx * qz) / 2
    assert np.max(np.abs(wrong.dual(qx, qz, S, ctx, True)[0] - want) / scale) > 1e-8
    assert np.max(np.abs(none.dual(qx, qz, S, ctx, True)[0] - want) / scale) > 1e-7
    assert np.max(np.abs(RELU.dual(qx, qz, S, ctx, True)[0] - want) / scale) <= TOL


@pytest.mark.parametrize("arch, shape", [(ResNet(3, 0.5), (12, 7)), (MLP(2), (10, 4)),
                                         (ResCNN(1, 0.5), (3, 4, 4, 1))])
def test_gram_with_a_kinked_user_relu_matches_relu(arch, shape):
    """Whole Gram matrices (FC, conv) of relu given as a user function with its kink against the
    closed-form relu programs: within 1e-13 of the scale sqrt(K(x, x) K(z, z)) (the interpreter's
    other steps add their own rounding; a residual network's entries cross zero)."""
    from dataclasses import replace
    X = np.random.default_rng(3).standard_normal(shape)
    user = replace(arch, activation=RELU)
    for kind in ("nngp", "ntk"):
        got = gram(user, X, kind=kind, backend="numpy")
        want = gram(arch, X, kind=kind, backend="numpy")
        scale = np.sqrt(np.outer(np.diag(want), np.diag(want)))
        assert np.max(np.abs(got - want) / scale) <= 1e-13, (kind, np.max(np.abs(got - want) / scale))


def test_panel_rule_integrates_polynomials_split_anywhere():
    """Moments E[X^k 1(X > c)] for split points anywhere in [-R, R] (and outside: clipped), against
    mpmath; the rule is exact for g piecewise polynomial up to phi's own resolution."""
    pts = np.array([[-9.0], [-1.3], [0.0], [0.77], [5.0], [np.nan]])
    x, w = V.kink_panel_rule(pts, V.TRAPEZOID_RADIUS)
    with mpmath.workdps(30):
        for row, c in enumerate([-9.0, -1.3, 0.0, 0.77, 5.0]):
            for k in (0, 1, 2, 5):
                got = float((w[row] * (x[row] > c)) @ x[row] ** k)
                lo = max(c, -V.TRAPEZOID_RADIUS)
                want = float(mpmath.quad(lambda t: t ** k * mpmath.npdf(t), [lo, V.TRAPEZOID_RADIUS]))
                assert abs(got - want) <= 64 * EPS * max(1.0, abs(want)), (c, k, got, want)


@pytest.mark.parametrize("bad", [[], [float("nan")], ["a"], list(range(17))])
def test_bad_kinks_are_refused_by_name(bad):
    with pytest.raises(ValueError, match="kinks"):
        A.from_function(np.abs, np.sign, kinks=bad)


def test_mpmath_route_with_kinks_is_certified():
    """The mpmath dual of a kinked user function with its kinks: nested Gauss-Legendre split at
    them, certified by recomputation at 10 more digits, equal to the arc-cosine closed form to the
    working precision (20 digits here); near rho = 1 (a smoothed kink of width 1e-4 in the outer
    integral) too.  Without kinks the same function is refused (PrecisionError), not returned."""
    from reskernels.numerics.variance import MpmathContext, PrecisionError
    relu = lambda x, xp: x if x > 0 else x * 0
    ctx = MpmathContext()
    with mpmath.workdps(20):
        for q1, q2, rho in ((0.8, 1.3, mpmath.mpf("0.4")), (2.0, 2.0, 1 - mpmath.mpf(10) ** -8)):
            g = mpmath.sqrt(mpmath.mpf(q1) * q2)
            got = ctx.gaussian_expectation(relu, q1, q2, rho * g, kinks=(0.0,))
            th = mpmath.acos(rho)
            want = g * (mpmath.sin(th) + (mpmath.pi - th) * rho) / (2 * mpmath.pi)
            assert abs(got - want) <= mpmath.mpf(10) ** -19 * abs(want), (q1, q2, rho, got, want)
    with mpmath.workdps(12), pytest.raises(PrecisionError):
        ctx.gaussian_expectation(relu, 0.8, 1.3, mpmath.mpf("0.4") * mpmath.sqrt(mpmath.mpf(0.8) * 1.3))


def test_mpmath_route_with_kinks_at_zero_variance():
    """A zero variance (an input of norm 0 without biases): E[fn(u) fn(0)] = fn(0) E[fn(u)], here 0
    for relu, without a division by sqrt(qz) = 0 (it raised ZeroDivisionError)."""
    from reskernels.numerics.variance import MpmathContext
    relu = lambda x, xp: x if x > 0 else x * 0
    with mpmath.workdps(10):
        for args in ((1, 0, 0), (0, 0, 0), (0, 1, 0)):
            assert MpmathContext().gaussian_expectation(relu, *args, kinks=(0.0,)) == 0


# ---------------------------------------------------------------------------------------------
# tanh at large variances: panels graded towards the nearby poles (soft kinks)
# ---------------------------------------------------------------------------------------------

TANH = A.tanh()


def _quadpack(f, q, rho):
    """E[f(u) f(v)], u = sqrt(q) x, v = sqrt(q) (rho x + r y), by nested adaptive Gauss-Kronrod
    (scipy.integrate.quad, QUADPACK: an algorithm independent of the panels), with breakpoints
    at the transitions x = 0 and y = -rho x / r."""
    import scipy.integrate as si
    s, r = math.sqrt(q), math.sqrt((1 - rho) * (1 + rho))
    phi = lambda t: math.exp(-t * t / 2) / math.sqrt(2 * math.pi)

    def inner(x):
        yc, w = -rho * x / r, 40.0 / (s * r)
        pts = sorted({max(-12.0, min(12.0, yc + d)) for d in (-w, -w / 8, 0.0, w / 8, w)})
        return si.quad(lambda y: f(s * (rho * x + r * y)) * phi(y), -12, 12, points=pts,
                       epsabs=1e-17, epsrel=1e-14, limit=400)[0]
    w = 40.0 / s
    return si.quad(lambda x: f(s * x) * phi(x) * inner(x), -12, 12, points=[-w, -w / 8, 0.0, w / 8, w],
                   epsabs=1e-17, epsrel=1e-14, limit=400)[0]


@pytest.mark.filterwarnings("ignore::scipy.integrate.IntegrationWarning")
@pytest.mark.parametrize("q", [400.0, 3072.0])
def test_tanh_soft_kink_panels_against_quadpack(q):
    """tanh and sech^2 at variances 400 and 3072 (unnormalised inputs in R^400, R^3072), where the
    trapezoid rule needs (86 sqrt(q))^2 nodes an entry: the graded panels agree with QUADPACK
    within 16 eps of the dual's scale sqrt(E[f(u)^2] E[f(v)^2]) (measured <= 4 eps); without the
    grading (a hard split at 0) they miss it by orders of magnitude."""
    ctx = NumpyContext()
    for name, f, fv in (("tanh", math.tanh, TANH.fn), ("sech2", lambda t: 1 - math.tanh(t) ** 2, TANH.derivative)):
        scale = float(V.second_moment_trapezoid(fv, np.array([q]), ctx)[0])
        for rho in (-0.95, 0.99):
            ref = _quadpack(f, q, rho)
            args = (fv, np.array([q]), np.array([q]), np.array([rho * q]), (0.0,), ctx)
            got = V.gaussian_expectation_kinked(*args, soft=math.pi / 2)[0]
            assert abs(got - ref) <= TOL * scale, (name, rho, got, ref)
            planted = V.gaussian_expectation_kinked(*args)[0]            # no grading towards the poles
            assert abs(planted - ref) > 1e3 * TOL * scale, (name, rho, planted, ref)


def test_tanh_gram_at_large_variances_takes_the_graded_panels(monkeypatch):
    """MLP(2, tanh) on standard-normal inputs in R^784 (variances ~784 at the first layer): the
    entries the Hermite series leaves take the graded panels, and agree with the trapezoid route
    (SOFT_KINK_VARIANCE raised past every variance) within 1e-14 of max |K|.  (The separable series
    of numerics/saturating.py, which takes such entries first, is switched off here:
    tests/numerics/test_saturating.py.)"""
    from reskernels.numerics import saturating
    monkeypatch.setattr(saturating, "B_MAX", -1.0)
    X = np.random.default_rng(3).standard_normal((5, 784))
    arch = MLP(2, activation="tanh")
    calls = []
    kinked = V.gaussian_expectation_kinked
    monkeypatch.setattr(V, "gaussian_expectation_kinked", lambda *a, **k: calls.append(k) or kinked(*a, **k))
    for kind in ("ntk", "nngp"):
        calls.clear()
        K = gram(arch, X, kind=kind, backend="numpy", n_threads=1)
        assert calls and all(k.get("soft") == math.pi / 2 for k in calls)
        with monkeypatch.context() as m:
            m.setattr(V, "SOFT_KINK_VARIANCE", math.inf)
            calls.clear()
            ref = gram(arch, X, kind=kind, backend="numpy", n_threads=1)
            assert not calls
        assert np.max(np.abs(K - ref)) <= 1e-14 * np.max(np.abs(ref))

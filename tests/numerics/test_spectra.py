"""Certified eigenvalues against exact oracles, identities, and the Gram-matrix spectrum."""
import time

import mpmath
import numpy as np
import pytest
import sympy as sp

from reskernels.numerics import gram
from reskernels.numerics.decay import compare_decay, distance_power_mu, fit_decay, predicted_law
from reskernels.numerics.gramspec import (aliasing_eigenvalue, circle_points, circulant_eigenvalues,
                               condition_number, double_constant_cond, double_constant_lower_bound,
                               hypercube_eigenvalues, hypercube_points)
from reskernels.numerics.pointwise import zonal
from reskernels.numerics.spectra import PrecisionError, cost_estimate, eigenvalues, eigenvalues_float64
from reskernels.numerics.tolerances import digits_agree, half_unit_decimal
from reskernels.theory import MLP, ResNet
from reskernels.theory.harmonics import mu_arccos, mu_mlp1_ntk, multiplicity

pytestmark = pytest.mark.mp


def agree(a, b, dps):
    """Relative agreement to dps digits, evaluated (and strings parsed) at dps + 10 digits;
    an exact zero must be returned as exactly 0."""
    with mpmath.workdps(dps + 10):
        return digits_agree(a, b, dps)


def kappa0_mp(x):
    return (mpmath.pi - mpmath.acos(x)) / mpmath.pi


def kappa1_mp(x):
    return (mpmath.sqrt(1 - x * x) + (mpmath.pi - mpmath.acos(x)) * x) / mpmath.pi


@pytest.mark.parametrize("d", [2, 3, 4, 6])
def test_quadrature_matches_exact_arccos_and_mlp1(d):
    ks = list(range(0, 25))
    dps = 30
    mu_k0 = eigenvalues(kappa0_mp, d=d, ks=ks, dps=dps)
    mu_n = eigenvalues(MLP(1), "ntk", d=d, ks=ks, dps=dps)
    with mpmath.workdps(dps + 10):
        for k, a, b in zip(ks, mu_k0, mu_n):
            assert agree(a, str(sp.N(mu_arccos(0, k, d), dps + 10)), dps), (d, k)
            assert agree(b, str(sp.N(mu_mlp1_ntk(k, d), dps + 10)), dps), (d, k)


def test_large_k_reference_values_spectral_md():
    mu = eigenvalues(MLP(1), "ntk", d=3, ks=[50, 100, 200], dps=22)
    want = ["2.479473740486272405861e-6", "3.138349421085605855408e-7", "3.949978871314888645133e-8"]
    for a, w in zip(mu, want):
        assert agree(a, w, 21)
    (k1,) = eigenvalues(kappa1_mp, d=3, ks=[200], dps=20)
    assert agree(k1, "2.9474521475337443875e-12", 19)


def test_deep_fc_reference_values():
    mu = eigenvalues(MLP(2), "nngp", d=3, ks=range(7), dps=20)
    want = ["0.54412868833572671501", "0.10749089373906172303", "0.021086600393585332142",
            "0.0022414651087716966006", "0.00079541978747872229451", "0.00016394566163198757025",
            "0.00011403489169761170741"]
    assert all(agree(a, w, 19) for a, w in zip(mu, want))
    big = eigenvalues(MLP(3), "ntk", d=3, ks=[200], dps=15)[0]
    assert agree(big, "1.24454172627e-7", 11)


@pytest.mark.parametrize("d", [3, 5])
def test_exponential_kernel_bessel_closed_form(d):
    """exp(t): mu_k = Gamma(d/2) 2^(d/2-1) I_{k+d/2-1}(1) (docs/spectral.md §3)."""
    mu = eigenvalues(lambda x: mpmath.exp(x), d=d, ks=range(8), dps=30)
    with mpmath.workdps(45):
        for k, a in enumerate(mu):
            ref = mpmath.gamma(mpmath.mpf(d) / 2) * 2 ** (mpmath.mpf(d) / 2 - 1) * mpmath.besseli(k + mpmath.mpf(d) / 2 - 1, 1)
            assert agree(a, ref, 30)


def test_poisson_kernel_and_distance_power():
    d = 5
    mu = eigenvalues(lambda x: (1 - mpmath.mpf("0.36")) / (1 - mpmath.mpf("1.2") * x + mpmath.mpf("0.36")) ** (mpmath.mpf(d) / 2),
                     d=d, ks=range(10), dps=25)
    assert all(agree(a, f"{6 ** k}e-{k}", 25) for k, a in enumerate(mu))  # mu_k = 0.6^k exactly
    mu = eigenvalues(lambda x: mpmath.sqrt(1 - x), d=3, ks=range(0, 30), dps=25)
    with mpmath.workdps(35):
        assert all(agree(a, distance_power_mu(k, mpmath.mpf(1) / 2, 3), 25) for k, a in enumerate(mu))


def test_parity_zeros_and_positivity():
    mu1 = eigenvalues(ResNet(1, 0.7), "nngp", d=3, ks=range(0, 41), dps=20)
    assert all(m == 0 for k, m in enumerate(mu1) if k % 2 == 1 and k >= 3)
    assert all(m > 0 for k, m in enumerate(mu1) if k % 2 == 0 or k == 1)
    mu2 = eigenvalues(MLP(2), "ntk", d=3, ks=range(0, 41), dps=20)
    assert all(m > 0 for m in mu2)


def test_t_recurrence_identity_numeric():
    """mu_j(t kappa0) = ((j+d-2) mu_{j+1} + j mu_{j-1}) / (2j+d-2) with mu from quadrature."""
    d = 4
    a = eigenvalues(kappa0_mp, d=d, ks=range(0, 12), dps=25)
    b = eigenvalues(lambda x: x * kappa0_mp(x), d=d, ks=range(0, 11), dps=25)
    with mpmath.workdps(30):
        for j in range(1, 10):
            pred = ((j + d - 2) * a[j + 1] + j * a[j - 1]) / (2 * j + d - 2)
            assert abs(pred - b[j]) <= mpmath.mpf(10) ** -24 * max(abs(b[j]), mpmath.mpf(10) ** -20)


def test_trace_identity_with_asymptotic_tail():
    """sum_k N(d,k) mu_k + tail = K(1) (docs/spectral.md §10.1), MLP(2).nngp on S^2: the tail beyond
    K = 200 from the decay law up to k = 4000, the rest ~ 4000^-3 negligible."""
    arch, d, K = MLP(2), 3, 200
    mu = eigenvalues(arch, "nngp", d=d, ks=range(0, K + 1), dps=20)
    law = predicted_law(arch, "nngp", d)
    with mpmath.workdps(25):
        partial = mpmath.fsum(multiplicity(d, k) * m for k, m in enumerate(mu))
        tail = mpmath.fsum(multiplicity(d, k) * law.mu(k) for k in range(K + 1, 4000))
        total = partial + tail
    # the tail (~8e-8) is needed, and with it the identity closes ~1000x better
    assert abs(total - 1) < 1e-10 and abs(partial - 1) > 1e3 * abs(total - 1)


def test_self_consistency_dps_and_double():
    a = eigenvalues(ResNet(3, 0.5, trained="hidden"), "ntk", d=4, ks=range(0, 60, 7), dps=20)
    b = eigenvalues(ResNet(3, 0.5, trained="hidden"), "ntk", d=4, ks=range(0, 60, 7), dps=40)
    assert all(agree(x, y, 20) for x, y in zip(a, b))


def test_unreachable_accuracy_raises():
    """(1 - t)^0.3 has a theta^0.6 singularity: Gauss-Legendre converges algebraically."""
    with pytest.raises(PrecisionError):
        eigenvalues(lambda x: (1 - x) ** mpmath.mpf("0.3"), d=3, ks=range(0, 30), dps=25, max_retries=1)


def test_bad_arguments():
    with pytest.raises(ValueError, match="d"):
        eigenvalues(MLP(1), d=1, ks=[0])
    with pytest.raises(ValueError, match="ks"):
        eigenvalues(MLP(1), d=3, ks=[-1])
    with pytest.raises(TypeError):
        eigenvalues("kernel", d=3, ks=[0])


@pytest.mark.parametrize("ks", [[2.7], [0, 1, 2.5], "12", b"12", 5, np.int64(5), 5.0, [-1], [3, -2], [],
                                [True], [None], ["3"], np.array(4), [float("nan")], None])
def test_ks_must_be_a_collection_of_integer_degrees(ks):
    """No silent truncation (2.7 -> 2), no iterating a string's characters, no bare number."""
    with pytest.raises(ValueError, match="ks"):
        eigenvalues(MLP(1), "ntk", d=3, ks=ks, dps=10)


def test_ks_accepts_lists_ranges_arrays_and_integral_floats():
    want = eigenvalues(MLP(1), "ntk", d=3, ks=[0, 2], dps=10)
    for ks in ([0, 2], range(0, 3, 2), np.array([0, 2]), (k for k in (0, 2)), [0.0, 2.0], [np.int32(0), 2]):
        assert eigenvalues(MLP(1), "ntk", d=3, ks=ks, dps=10) == want
    with pytest.raises(ValueError, match=r"ks=\[5\]"):          # the message says what to write
        eigenvalues(MLP(1), "ntk", d=3, ks=5, dps=10)


@pytest.mark.parametrize("kw,name", [
    (dict(kind="bogus"), "kind"), (dict(f=kappa0_mp, kind="bogus"), "kind"),
    (dict(max_retries=-1), "max_retries"), (dict(max_retries=1.5), "max_retries"),
    (dict(max_retries="2"), "max_retries"),
    (dict(dps=0), "dps"), (dict(dps=-3), "dps"), (dict(dps=4), "dps"), (dict(dps=12.5), "dps"),
    (dict(dps="30"), "dps"), (dict(dps=float("nan")), "dps"), (dict(dps=float("inf")), "dps"), (dict(dps=None), "dps"),
    (dict(d=2.5), "d"), (dict(d="3"), "d"), (dict(d=float("nan")), "d"), (dict(d=None), "d"), (dict(d=True), "d"),
    (dict(d=0), "d"), (dict(variable="x"), "variable"), (dict(f=kappa0_mp, variable="cos"), "variable"),
    (dict(max_seconds=0), "max_seconds"), (dict(max_memory=-1), "max_memory"),
])
def test_argument_checks_name_the_argument(kw, name):
    args = dict(f=MLP(1), kind="ntk", d=3, ks=[0, 1], dps=10)
    args.update(kw)
    with pytest.raises(ValueError, match=name):
        eigenvalues(args.pop("f"), **args)


def test_integral_floats_for_d_and_dps_are_accepted():
    assert eigenvalues(MLP(1), "ntk", d=3.0, ks=[1], dps=10.0) == eigenvalues(MLP(1), "ntk", d=3, ks=[1], dps=10)
    assert eigenvalues(kappa0_mp, d=3, ks=[1], dps=10, max_retries=0) == eigenvalues(kappa0_mp, d=3, ks=[1], dps=10)


def nan_kernel(x):
    return mpmath.nan if x < mpmath.mpf("-0.5") else 1 + x


@pytest.mark.parametrize("f,variable,where", [
    (nan_kernel, "t", "t = cos(theta) = -"),
    (lambda th: mpmath.inf if th > 3 else mpmath.cos(th), "theta", "theta = 3."),
    (lambda x: float("nan"), "t", "t = cos(theta) = "),
])
def test_non_finite_kernel_values_name_the_kernel_and_the_point(f, variable, where):
    with pytest.raises(ValueError) as ei:
        eigenvalues(f, d=3, ks=[0, 1], dps=10, variable=variable)
    msg = str(ei.value)
    name = "nan_kernel" if f is nan_kernel else "lambda"
    assert name in msg and where in msg and ("nan" in msg or "+inf" in msg), msg


def test_complex_and_non_numeric_kernel_values_are_refused():
    with pytest.raises(ValueError, match="complex"):
        eigenvalues(lambda x: mpmath.sqrt(x), d=3, ks=[0], dps=10)       # sqrt of t < 0
    with pytest.raises(TypeError, match="not a number"):
        eigenvalues(lambda x: None, d=3, ks=[0], dps=10)


@pytest.mark.parametrize("kw,what", [
    (dict(ks=[100000], dps=30), "GiB of memory"),
    (dict(ks=range(201), dps=5000), "hours of computation"),
    (dict(ks=[30000], dps=10), "max_memory"),
])
def test_absurd_sizes_are_refused_up_front_with_an_estimate(kw, what):
    t0 = time.perf_counter()
    with pytest.raises(ValueError, match=what) as ei:
        eigenvalues(MLP(1), "ntk", d=3, **kw)
    assert time.perf_counter() - t0 < 1.0               # refused before any work
    assert "None" in str(ei.value)                       # and says how to run it anyway


def test_cost_estimate_and_limits():
    est = cost_estimate(range(201), 40, 3)
    assert est["nodes"] == (480, 632) and est["work_dps"] == (60, 70)
    assert est["bytes"] < 2**30 and est["seconds"] < 60
    big = cost_estimate([100000], 30, 3)
    assert big["bytes"] > 100 * 2**30 and big["seconds"] > 3600
    # the limits are the caller's: a tight one refuses a small job, None lifts them
    with pytest.raises(ValueError, match="max_seconds"):
        eigenvalues(MLP(1), "ntk", d=3, ks=range(201), dps=20, max_seconds=1e-6)
    with pytest.raises(ValueError, match="max_memory"):
        eigenvalues(MLP(1), "ntk", d=3, ks=[3], dps=10, max_memory=1000)
    assert eigenvalues(MLP(1), "ntk", d=3, ks=[3], dps=10, max_memory=None, max_seconds=None) == [0]


def test_float64_route_loses_digits_like_eps_over_mu():
    ks = [10, 50, 100]
    exact = [mpmath.mpf(sp.N(mu_mlp1_ntk(k, 3), 30)) for k in ks]
    f64 = eigenvalues_float64(MLP(1), "ntk", d=3, ks=ks, n=400)
    rel = [abs(a - float(b)) / float(b) for a, b in zip(f64, exact)]
    assert rel[0] < 1e-10 and rel[-1] > 1e-12  # digits lost grow with k


# --- decay laws -------------------------------------------------------------------------

def test_decay_law_ratio_within_ten_over_k_squared():
    arch = MLP(3)
    ks = [50, 51, 100, 101, 150, 151]
    mu = dict(zip(ks, eigenvalues(arch, "nngp", d=3, ks=ks, dps=20)))
    res = compare_decay(mu, predicted_law(arch, "nngp", 3))
    assert res["all_ok"], res
    wrong = predicted_law(arch, "nngp", 3)
    wrong.c_plus *= mpmath.mpf("1.01")  # a 1% wrong constant must be caught
    assert not compare_decay(mu, wrong)["all_ok"]


def test_fit_decay_recovers_exponent():
    ks = list(range(100, 201, 10))
    mu = eigenvalues(MLP(2), "ntk", d=4, ks=ks, dps=20)
    fit = fit_decay(ks, mu)
    # a pure power fit at k = 100..200 carries an O(1/k) bias: docs/papers.md allows -d +- 0.03
    assert abs(fit.exponent - (-4)) < 0.03 and fit.exponent_se < 0.01


# --- Gram matrices ----------------------------------------------------------------------

def test_circulant_aliasing_with_tail():
    """Equispaced points on S^1: Gram eigenvalues = n sum_{l = m mod n} mu_|l| (+ tail)."""
    n, lmax = 9, 400
    arch = MLP(1)
    lam_exact = circulant_eigenvalues(zonal(arch, "nngp"), n)
    lam_num = np.sort(np.linalg.eigvalsh(gram(arch, circle_points(n), kind="nngp")))
    np.testing.assert_allclose(np.sort(lam_exact), lam_num, rtol=1e-12, atol=1e-13)
    mu = eigenvalues(arch, "nngp", d=2, ks=range(0, lmax + 1), dps=18)
    law = predicted_law(arch, "nngp", 2)
    tail = lambda m, n, L: float(sum(law.mu(abs(l)) for l in range(-20000, 20001)
                                     if abs(l) > L and (l - m) % n == 0))
    lam_alias = np.array([aliasing_eigenvalue(mu, m, n, lmax, tail) for m in range(n)])
    np.testing.assert_allclose(lam_alias, lam_exact, rtol=1e-9, atol=1e-12)


def test_antipodal_sets_are_exactly_singular_for_depth_one():
    X = circle_points(8)
    lam = np.sort(np.linalg.eigvalsh(gram(MLP(1), X)))
    assert np.all(np.abs(lam[:2]) < 1e-13) and lam[2] > 0.1
    lam2 = np.sort(np.linalg.eigvalsh(gram(MLP(2), X)))
    np.testing.assert_allclose(lam2, [0.547829, 0.547829, 0.565515, 1.946893, 1.946893, 4.815551,
                                      4.815551, 8.813940], atol=half_unit_decimal(6))


def test_hypercube_krawtchouk_oracle():
    f = zonal(MLP(1), "nngp")
    lam = hypercube_eigenvalues(lambda x: float(f(x)), 4)
    np.testing.assert_allclose(lam, [5.7818416, 2.0, 0.36338023, 0.0, 0.037877069],
                               atol=half_unit_decimal(7))   # the coarsest printed value, 5.7818416
    num = np.sort(np.linalg.eigvalsh(gram(MLP(1), hypercube_points(4), kind="nngp")))
    want = np.sort(np.repeat(lam, [1, 4, 6, 4, 1]))
    np.testing.assert_allclose(num, want, atol=1e-13)


def test_double_constant_algebra():
    n, a, b = 50, 2.0, 0.7
    K = np.full((n, n), b) + (a - b) * np.eye(n)
    assert abs(condition_number(K) / double_constant_cond(a, b, n) - 1) < 1e-12
    assert abs(double_constant_lower_bound(0.25, 100) - 103 / 3) < 1e-12


def test_gram_spectrum_of_uniform_points_matches_mu0():
    """Eigenvalues of K_n/n approach mu_k (Koltchinskii-Gine): the top one is mu_0."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((1500, 3))
    X /= np.linalg.norm(X, axis=1)[:, None]
    lam = np.sort(np.linalg.eigvalsh(gram(MLP(1), X)))[::-1] / len(X)
    mu = eigenvalues(MLP(1), "ntk", d=3, ks=[0, 1], dps=10)
    assert abs(lam[0] - 0.5) < 0.05 and np.all(np.abs(lam[1:4] - float(mu[1])) < 0.05)

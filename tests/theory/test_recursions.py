"""Exact (sympy) kernels: identities, reductions, diagonals, Taylor and endpoint coefficients."""
import mpmath
import pytest
import sympy as sp

from reskernels.theory import MLP, ResNet, endpoint_coefficients, kernel_expr, t, taylor_coefficients
from reskernels.theory.duals import kappa0, kappa1, kappa0_taylor, kappa1_taylor


def _num(expr, x, dps=40):
    f = sp.lambdify(t, expr, "mpmath", cse=True)
    with mpmath.workdps(dps):
        return f(mpmath.mpf(x))


def test_mlp_depth1_ntk_is_t_kappa0_plus_kappa1():
    assert sp.simplify(kernel_expr(MLP(1), "ntk") - (t * kappa0(t) + kappa1(t))) == 0
    assert sp.simplify(kernel_expr(MLP(1), "nngp") - kappa1(t)) == 0


def test_kappa1_derivative_is_kappa0():
    r = sp.Symbol("r")
    assert sp.simplify(sp.diff(kappa1(r), r) - kappa0(r)) == 0


@pytest.mark.parametrize("iv", [1.0, 0.5])
def test_resnet_alpha_zero_is_linear(iv):
    arch = ResNet(3, 0.0, input_var=iv)
    assert sp.simplify(kernel_expr(arch, "nngp") - sp.Rational(repr(iv)) * t) == 0
    assert sp.simplify(kernel_expr(arch, "ntk") - 2 * sp.Rational(repr(iv)) * t) == 0


@pytest.mark.parametrize("arch, nngp, ntk", [
    (MLP(3), 1, 4), (MLP(3, trained="hidden"), 1, 2), (MLP(2, weight_var=1.0), sp.Rational(1, 4), sp.Rational(3, 4)),
    (ResNet(2, 0.5), sp.Rational(25, 16), 2 * sp.Rational(25, 16) + 2 * 2 * sp.Rational(1, 4) * sp.Rational(5, 4)),
    (ResNet(2, 0.5, trained="hidden"), sp.Rational(25, 16), 2 * 2 * sp.Rational(1, 4) * sp.Rational(5, 4)),
])
def test_diagonal_closed_forms_exact(arch, nngp, ntk):
    assert sp.simplify(kernel_expr(arch, "nngp").subs(t, 1) - nngp) == 0
    assert sp.simplify(kernel_expr(arch, "ntk").subs(t, 1) - ntk) == 0


def test_mlp_weight_var_one_is_power_of_two_scaling():
    for kind in ("ntk", "nngp"):
        diff = kernel_expr(MLP(2, weight_var=1.0), kind) - kernel_expr(MLP(2), kind) / 4
        assert sp.simplify(diff) == 0


def test_kappa_taylor_coefficients_match_sympy_series():
    r = sp.Symbol("r")
    s0 = sp.series(kappa0(r), r, 0, 9).removeO()
    s1 = sp.series(kappa1(r), r, 0, 9).removeO()
    for n in range(9):
        assert sp.simplify(s0.coeff(r, n) - kappa0_taylor(n)) == 0
        assert sp.simplify(s1.coeff(r, n) - kappa1_taylor(n)) == 0


def test_taylor_coefficients_mlp1_exact():
    b = taylor_coefficients(MLP(1), "ntk", 7)
    expected = [1 / sp.pi, 1, 3 / (2 * sp.pi), 0, 5 / (24 * sp.pi), 0, 7 / (80 * sp.pi)]
    assert all(sp.simplify(x - y) == 0 for x, y in zip(b, expected))


@pytest.mark.parametrize("arch, kind", [(MLP(2), "ntk"), (ResNet(2, 0.5, trained="hidden"), "ntk"),
                                        (ResNet(2, 0.7), "nngp")])
def test_taylor_coefficients_against_mpmath_differentiation(arch, kind):
    """Exact series coefficients vs numerical Taylor expansion (mpmath.taylor) of the
    half-angle recursion -- two independent routes."""
    from reskernels.numerics import kernel_mp
    b = taylor_coefficients(arch, kind, 5)
    with mpmath.workdps(40):
        # evaluate at whatever precision mpmath.taylor raises the context to
        num = mpmath.taylor(lambda x: kernel_mp(arch, x, kind, dps=mpmath.mp.dps), 0, 4)
        for exact, approx in zip(b, num):
            ev = sp.N(exact, 40)
            assert ev >= 0
            assert abs(mpmath.mpf(str(ev)) - approx) <= mpmath.mpf(10) ** -20 * max(1, abs(approx))


P_TABLE = {1: 1, 2: sp.Rational(1, 2), 3: 0.301557624214, 4: 0.200345020818}


@pytest.mark.parametrize("depth", [1, 2, 3])
def test_mlp_endpoint_coefficients_match_spectral_table(depth):
    """docs/spectral.md §5.2: MLP(D).ntk has c+ = -(sqrt2/pi) D(D+1)/2, c- = -(sqrt2/pi) p(D);
    MLP(D).nngp has nu = 3/2, c+ = D (2 sqrt2/(3 pi)), c- = p(D) (2 sqrt2/(3 pi))."""
    h, th = sp.Rational(1, 2), sp.Rational(3, 2)
    c = endpoint_coefficients(MLP(depth), "ntk")
    assert c["nu"] == h
    assert sp.simplify(c["c_plus"][h] + sp.sqrt(2) / sp.pi * depth * (depth + 1) / 2) == 0
    assert abs(sp.N(c["c_minus"][h] + sp.sqrt(2) / sp.pi * P_TABLE[depth], 30)) < 1e-11
    g = endpoint_coefficients(MLP(depth), "nngp")
    assert g["nu"] == th and g["c_plus"][h] == 0 and g["c_minus"][h] == 0
    assert sp.simplify(g["c_plus"][th] - depth * 2 * sp.sqrt(2) / (3 * sp.pi)) == 0
    assert abs(sp.N(g["c_minus"][th] - P_TABLE[depth] * 2 * sp.sqrt(2) / (3 * sp.pi), 30)) < 1e-11


@pytest.mark.parametrize("L, alpha", [(2, 0.5), (3, 1.0)])
def test_resntk_endpoint_slope_closed_form(L, alpha):
    """Normalised hidden ResNTK: c_plus = -sqrt2 c(L, alpha), c = 1/(2pi) + (L-1)a/(2pi(1+a))
    (docs/papers.md BELFER-SLOPE)."""
    arch = ResNet(L, alpha, trained="hidden")
    a = sp.Rational(repr(alpha)) ** 2
    diag = 2 * L * a * (1 + a) ** (L - 1)
    c = endpoint_coefficients(arch, "ntk")["c_plus"][sp.Rational(1, 2)] / diag
    slope = 1 / (2 * sp.pi) + (L - 1) * a / (2 * sp.pi * (1 + a))
    assert sp.simplify(c + sp.sqrt(2) * slope) == 0


def test_endpoint_coefficient_against_difference_quotient():
    """Independent numeric route: (K(1-u) - K(1) - K1 u) / u^(1/2) -> c_plus as u -> 0."""
    from reskernels.numerics import kernel_mp
    arch = ResNet(3, 0.8)
    c = endpoint_coefficients(arch, "ntk")
    from reskernels.theory.endpoints import endpoint_expansion
    ex = endpoint_expansion(arch, "ntk", side=1, order=4)
    with mpmath.workdps(50):
        u = mpmath.mpf(10) ** -24
        k = kernel_mp(arch, 1 - u, "ntk", dps=50)
        est = (k - mpmath.mpf(str(sp.N(ex[0], 60))) - mpmath.mpf(str(sp.N(ex[1], 60))) * u) / mpmath.sqrt(u)
        exact = mpmath.mpf(str(sp.N(c["c_plus"][sp.Rational(1, 2)], 60)))
        assert abs(est - exact) < mpmath.mpf(10) ** -10 * abs(exact)

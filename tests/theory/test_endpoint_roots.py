"""Endpoint (Puiseux) expansions with guard terms and finer roots of u (theory/endpoints.py).

Checked against independent routes: the kernel's closed form evaluated in mpmath near t = +-1,
expansions at a higher truncation order, and eigenvalues from tanh-sinh quadrature (not the
Gauss-Legendre rule of numerics/spectra.py)."""
import mpmath
import pytest
import sympy as sp

from reskernels import MLP, ResNet, kernel_expr
from reskernels.numerics.decay import distance_power_mu
from reskernels.theory.endpoints import endpoint_coefficients, endpoint_expansion


def _closed_form(arch, kind):
    expr = kernel_expr(arch, kind)
    return sp.lambdify(list(expr.free_symbols), expr, "mpmath")


def _value(expansion, u):
    return sum(mpmath.mpf(str(sp.N(c, 40))) * u ** (mpmath.mpf(p.p) / p.q) for p, c in expansion.items())


@pytest.mark.parametrize("arch", [MLP(2), ResNet(2, 0.5)], ids=["MLP2", "ResNet2"])
def test_every_returned_coefficient_is_exact(arch):
    """Every coefficient, the top one included, equals the one of a longer expansion (without the
    guard term the u^2 coefficient of these NTKs came out wrong by 7e-3 and 5e-4)."""
    short = endpoint_expansion(arch, "ntk", order=5)
    long = endpoint_expansion(arch, "ntk", order=8)
    assert set(short) == {sp.Rational(j, 2) for j in range(5)}
    for p, c in short.items():
        assert sp.simplify(c - long[p]) == 0, p


@pytest.mark.parametrize("depth, root", [(2, 4), (3, 8)])
def test_step_chains_expand_in_finer_roots(depth, root):
    """A step after a step: 1 - kappa0(1 - u) ~ (sqrt 2 / pi) u^(1/2), so MLP(2, step) has a
    u^(1/4) term and MLP(3, step) a u^(1/8) term.  The expansion agrees with the closed form at
    u = 1e-8 on both sides to the size of the first omitted power (u^2), and its leading
    coefficient is the hand-derived -(2 sqrt 2 / pi)^(1/2) / pi for depth 2."""
    arch = MLP(depth, activation="step")
    f = _closed_form(arch, "nngp")
    mpmath.mp.dps = 40
    u = mpmath.mpf("1e-8")
    for side in (1, -1):
        e = endpoint_expansion(arch, "nngp", side=side, order=4)
        assert all(p.q <= root for p in e) and any(p.q == root for p in e if e[p] != 0) == (side == 1)
        err = abs(f(side * (1 - u)) - _value(e, u))
        assert err <= 10 * u ** 2, (side, err)
    if depth == 2:
        lead = endpoint_coefficients(arch, "nngp")
        assert lead["nu"] == sp.Rational(1, 4)
        want = -sp.sqrt(2 * sp.sqrt(2) / sp.pi) / sp.pi
        assert abs(sp.N(lead["c_plus"][sp.Rational(1, 4)] - want, 30)) < 1e-25


def _mu_tanh_sinh(f, k):
    """mu_k on S^2 (uniform probability measure), tanh-sinh on 2k + 2 pieces of [0, pi]."""
    pts = mpmath.linspace(0, mpmath.pi, 2 * k + 2)
    return mpmath.quad(lambda th: f(mpmath.cos(th)) * mpmath.legendre(k, mpmath.cos(th)) * mpmath.sin(th), pts) / 2


def test_step_chain_eigenvalues_follow_both_endpoints_laws():
    """MLP(2, step) NNGP on S^2: mu_k = sum_p (c_plus,p + (-1)^k c_minus,p) M_k(p) over the
    non-integer powers p < 2 at both ends, up to the first omitted power's relative size ~k^-4
    (9/4 at t = 1 against the leading 1/4).  The leading term alone is off by 17% at k = 20 (the
    (1 + t)^(1/2) term at t = -1, from the interior layer, corrects it by k^-1/2): a wrong or
    missing coefficient shows."""
    arch = MLP(2, activation="step")
    f = _closed_form(arch, "nngp")
    c = endpoint_coefficients(arch, "nngp")
    mpmath.mp.dps = 25
    for k in (20, 21):
        mu = _mu_tanh_sinh(f, k)
        s = 1 if k % 2 == 0 else -1
        law = sum(mpmath.mpf(str(sp.N(c["c_plus"][p] + s * c["c_minus"][p], 30)))
                  * distance_power_mu(k, mpmath.mpf(p.p) / p.q, 3) for p in c["c_plus"])
        assert abs(mu / law - 1) <= mpmath.mpf(k) ** -4, (k, mu / law - 1)
        lead = c["c_plus"][c["nu"]] * distance_power_mu(k, mpmath.mpf("0.25"), 3)
        assert abs(mu / mpmath.mpf(str(sp.N(lead, 30))) - 1) > 0.1

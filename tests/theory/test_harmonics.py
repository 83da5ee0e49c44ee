"""Exact harmonic oracles: checked against each other and against sympy integration."""
import pytest
import sympy as sp

from reskernels.theory.harmonics import (density_constant, legendre_polynomial, mu_arccos, mu_mlp1_ntk,
                              mu_monomial, multiplicity, t)


@pytest.mark.parametrize("d", [2, 3, 4, 5])
def test_multiplicity_cumulative_identity(d):
    """sum_{j<=K} N(d, j) = N(d+1, K)."""
    for K in range(8):
        assert sum(multiplicity(d, j) for j in range(K + 1)) == multiplicity(d + 1, K)


@pytest.mark.parametrize("d", [3, 5])  # odd d: polynomial weight, fast exact integrals
def test_monomial_eigenvalues_by_symbolic_integration(d):
    """mu_k(t^n) = c_d int t^n P_k (1-t^2)^((d-3)/2) dt, by sympy integration."""
    w = (1 - t ** 2) ** sp.Rational(d - 3, 2)
    for n in range(5):
        for k in range(n + 1):
            direct = density_constant(d) * sp.integrate(t ** n * legendre_polynomial(d, k) * w, (t, -1, 1))
            assert sp.simplify(direct - mu_monomial(n, k, d)) == 0


def test_monomial_table_d3_d4():
    vals3 = [mu_monomial(n, k, 3) for n, k in [(0, 0), (1, 1), (2, 0), (2, 2), (3, 1), (3, 3), (4, 0), (4, 2), (4, 4)]]
    assert vals3 == [1, sp.Rational(1, 3), sp.Rational(1, 3), sp.Rational(2, 15), sp.Rational(1, 5),
                     sp.Rational(2, 35), sp.Rational(1, 5), sp.Rational(4, 35), sp.Rational(8, 315)]
    vals4 = [mu_monomial(n, k, 4) for n, k in [(0, 0), (1, 1), (2, 0), (2, 2), (3, 1), (3, 3), (4, 0), (4, 2), (4, 4)]]
    assert vals4 == [1, sp.Rational(1, 4), sp.Rational(1, 4), sp.Rational(1, 12), sp.Rational(1, 8),
                     sp.Rational(1, 32), sp.Rational(1, 8), sp.Rational(1, 16), sp.Rational(1, 80)]


@pytest.mark.parametrize("d", [2, 3, 4])
def test_arccos_closed_forms_match_spectral_table(d):
    pi = sp.pi
    table = {
        3: ([sp.Rational(1, 2), sp.Rational(1, 8), 0, sp.Rational(1, 128), 0, sp.Rational(1, 512), 0, sp.Rational(25, 32768), 0],
            [sp.Rational(3, 8), sp.Rational(1, 6), sp.Rational(3, 128), 0, sp.Rational(1, 1536), 0, sp.Rational(3, 32768), 0, sp.Rational(3, 131072)]),
        2: ([sp.Rational(1, 2), 2 / pi**2, 0, 2 / (9 * pi**2), 0, 2 / (25 * pi**2), 0, 2 / (49 * pi**2), 0],
            [4 / pi**2, sp.Rational(1, 4), 4 / (9 * pi**2), 0, 4 / (225 * pi**2), 0, 4 / (1225 * pi**2), 0, 4 / (3969 * pi**2)]),
        4: ([sp.Rational(1, 2), 8 / (9 * pi**2), 0, 8 / (225 * pi**2), 0, 8 / (1225 * pi**2), 0, 8 / (3969 * pi**2), 0],
            [32 / (9 * pi**2), sp.Rational(1, 8), 32 / (225 * pi**2), 0, 32 / (11025 * pi**2), 0, 32 / (99225 * pi**2), 0, 32 / (480249 * pi**2)]),
    }
    k0, k1 = table[d]
    for k in range(9):
        assert sp.simplify(mu_arccos(0, k, d) - k0[k]) == 0
        assert sp.simplify(mu_arccos(1, k, d) - k1[k]) == 0


def test_mlp1_ntk_closed_form_d3():
    want = [sp.Rational(1, 2), sp.Rational(1, 3), sp.Rational(5, 64), 0, sp.Rational(1, 192), 0,
            sp.Rational(23, 16384), 0, sp.Rational(19, 32768)]
    assert [mu_mlp1_ntk(k, 3) for k in range(9)] == want
    assert mu_mlp1_ntk(10, 3) == sp.Rational(931, 3145728)


def test_arccos_kappa1_by_symbolic_integration_d3():
    from reskernels.theory.duals import kappa1
    for k in range(4):
        direct = sp.Rational(1, 2) * sp.integrate(kappa1(t) * legendre_polynomial(3, k), (t, -1, 1))
        assert sp.simplify(direct - mu_arccos(1, k, 3)) == 0

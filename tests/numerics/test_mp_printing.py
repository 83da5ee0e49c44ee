"""mpmath results print the digits they were computed to (numerics.pointwise.MpfDigits), whatever the
global mpmath precision, while staying mpf values, bit for bit."""
import pickle

import mpmath
import pytest

from reskernels import MLP, ResNet, eigenvalues
from reskernels.numerics import kernel_mp, kernel_theta_mp
from reskernels.numerics.pointwise import MpfDigits

pytestmark = pytest.mark.mp


def _significant_digits(s: str) -> int:
    mant = s.lstrip("-").split("e")[0].replace(".", "").lstrip("0")
    return len(mant)


def _mlp2_nngp_ntk(t):
    """MLP(2) NTK on the unit sphere, recomputed here from the contract's recursion (docs/conventions.md
    "MLP") with kappa0, kappa1 written out, at the current precision."""
    pi = mpmath.pi

    def k0(r):
        return (pi - mpmath.acos(r)) / pi

    def k1(r):
        return (mpmath.sqrt(1 - r * r) + (pi - mpmath.acos(r)) * r) / pi

    s0 = th0 = mpmath.mpf(t)
    s1 = k1(s0)
    th1 = s1 + k0(s0) * th0
    s2 = k1(s1)
    return s2 + k0(s1) * th1


def test_kernel_mp_prints_fifty_digits_equal_to_a_recomputation():
    assert mpmath.mp.dps == 15                      # the autouse fixture's global precision
    x = kernel_mp(MLP(2), 0.5, dps=50)
    printed = str(x)
    assert 49 <= _significant_digits(printed) <= 50, printed
    assert repr(x) == f"mpf('{printed}')"
    with mpmath.workdps(80):
        ref = _mlp2_nngp_ntk(mpmath.mpf("0.5"))
        assert abs(mpmath.mpf(printed) - ref) <= mpmath.mpf(10) ** -49 * abs(ref)
        assert mpmath.nstr(ref, 50) == printed


def test_printing_does_not_change_value_or_type():
    x = kernel_mp(ResNet(3, 0.5), "0.25", kind="ntk", dps=40)
    assert isinstance(x, mpmath.mpf) and x.dps == 40
    with mpmath.workdps(60):
        plain = +x                                   # the same number as a plain mpf, exactly
        assert abs(x - mpmath.mpf(str(x))) < mpmath.mpf(10) ** -39 * x
    assert type(plain) is mpmath.mpf and type(x * 2) is mpmath.mpf
    assert plain._mpf_ == x._mpf_
    assert x == plain and hash(x) == hash(plain) and x < x + 1 and x > 0
    assert float(x) == float(plain)
    y = pickle.loads(pickle.dumps(x))
    assert type(y) is MpfDigits and y._mpf_ == x._mpf_ and str(y) == str(x)
    assert mpmath.nstr(x, 10) == mpmath.nstr(plain, 10)


def test_mpf_digits_keeps_bits_exactly():
    with mpmath.workdps(60):
        v = mpmath.sqrt(2)
        w = MpfDigits.of(v, 60)
    assert w._mpf_ == v._mpf_                        # not rounded to the (lower) global precision
    assert _significant_digits(str(w)) == 60
    with pytest.raises(ValueError, match="dps"):
        MpfDigits.of(v, 0)


def test_eigenvalues_print_requested_digits():
    mu = eigenvalues(ResNet(2, 0.5), "ntk", d=3, ks=[0, 1, 2], dps=40)
    for m in mu:
        assert isinstance(m, mpmath.mpf)
        assert 39 <= _significant_digits(str(m)) <= 40, str(m)
    assert "mpf('" in repr(mu) and len(repr(mu[0])) > 40


def test_eigenvalue_exact_zero_prints_zero():
    mu = eigenvalues(MLP(1), "ntk", d=3, ks=[3], dps=20)
    assert mu[0] == 0 and str(mu[0]) == "0.0"


def test_kernel_theta_mp_prints_the_precision_of_the_call():
    with mpmath.workdps(35):
        v = kernel_theta_mp(MLP(1), mpmath.pi / 3, "nngp")
        ref = mpmath.nstr(v, 35)
    assert str(v) == ref and _significant_digits(str(v)) >= 33

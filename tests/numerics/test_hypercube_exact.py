"""hypercube_eigenvalues at d = 30 with mpmath kernels: exact rational points, no float rounding of t."""
import math

import mpmath
import numpy as np
import pytest

from reskernels.numerics import gram, kernel_mp
from reskernels.numerics.gramspec import hypercube_eigenvalues, hypercube_points
from reskernels.theory import MLP


def test_product_kernel_closed_form_at_d30():
    """exp(c <x, z>) = prod_i (cosh(c/d) + x_i z_i sinh(c/d)) on {+-1}^d/sqrt(d): the Gram matrix
    has lambda_s = 2^d cosh(c/d)^(d-s) sinh(c/d)^s, an independent route to every Walsh eigenvalue.
    At 30 digits the Krawtchouk sums keep full precision while lambda_s >= ~1e-14 max f (s <= 15);
    a float (d - 2j)/d kept 7 digits at s = 10."""
    d = 30
    with mpmath.workdps(30):
        lam = hypercube_eigenvalues(mpmath.exp, d)
    with mpmath.workdps(60):
        a, b = mpmath.cosh(mpmath.mpf(1) / d), mpmath.sinh(mpmath.mpf(1) / d)
        for s in range(16):
            want = mpmath.mpf(2) ** d * a ** (d - s) * b ** s
            assert abs(lam[s] / want - 1) < mpmath.mpf("1e-28"), (s, lam[s], want)


def test_mp_kernel_trace_identity_at_d30():
    """sum_s C(d, s) lambda_s = 2^d f(1) (the trace) for MLP(2).ntk by kernel_mp at 30 digits."""
    d = 30
    f = lambda t: mpmath.mpf(kernel_mp(MLP(2), t, "ntk", dps=40))
    with mpmath.workdps(30):
        lam = hypercube_eigenvalues(f, d)
        assert all(isinstance(x, mpmath.mpf) for x in lam)
        tr = mpmath.fsum(math.comb(d, s) * lam[s] for s in range(d + 1))
        assert abs(tr / (mpmath.mpf(2) ** d * 3) - 1) < mpmath.mpf("1e-27")
        assert min(lam) > 0


@pytest.mark.parametrize("d", [3, 5])
def test_float_kernel_matches_the_gram_spectrum(d):
    """A float kernel still returns floats, equal to the eigenvalues of the explicit Gram matrix."""
    X = hypercube_points(d)
    K = gram(MLP(1), X, kind="nngp")
    f = lambda t: float(gram(MLP(1), np.array([[1.0, 0.0]]), np.array([[t, math.sqrt(max(0.0, 1 - t * t))]]),
                             kind="nngp")[0, 0])
    lam = hypercube_eigenvalues(f, d)
    assert all(isinstance(x, float) for x in lam)
    want = np.sort(np.concatenate([[lam[s]] * math.comb(d, s) for s in range(d + 1)]))
    assert np.allclose(np.linalg.eigvalsh(K), want, rtol=0, atol=1e-12 * np.abs(want).max())

"""Bitwise golden tests: every engine's output on the fixed grid of ``cases.py`` must equal, with
``np.array_equal``, the output of the code before the kernel-step refactor (``data/golden.pickle``,
written by ``capture.py`` at the commit it records).  mpmath values are compared as exact binary
``_mpf_`` tuples and sympy values as ``srepr`` strings, so "equal" means equal to the last bit.

numba and CuPy are compared like numpy where they run (the compiled loop performs the same
operations in the same order); the numba cases skip without numba.
"""
import os
import pickle
import types

import numpy as np
import pytest

import reskernels
from reskernels.numerics import kernel_mp, kernel_theta_mp, zonal
from reskernels.numerics.conv_fused import available as numba_available
from reskernels.numerics.montecarlo import empirical_kernels
from reskernels.numerics.montecarlo_conv import empirical_conv_kernels
from reskernels.numerics.multisphere import multi_dot_kernel
from reskernels.theory import endpoint_expansion, taylor_coefficients

from .cases import cases

with open(os.path.join(os.path.dirname(__file__), "data", "golden.pickle"), "rb") as fh:
    GOLDEN = pickle.load(fh)

API = types.SimpleNamespace(
    MLP=reskernels.MLP, ResNet=reskernels.ResNet, CNN=reskernels.CNN, ResCNN=reskernels.ResCNN,
    gram=reskernels.gram, eigenvalues=reskernels.eigenvalues, kernel_expr=reskernels.kernel_expr,
    kernel_mp=kernel_mp, kernel_theta_mp=kernel_theta_mp, zonal=zonal,
    taylor_coefficients=taylor_coefficients, endpoint_expansion=endpoint_expansion,
    empirical_kernels=empirical_kernels, empirical_conv_kernels=empirical_conv_kernels,
    multi_dot_kernel=multi_dot_kernel)

CASES = cases()


def test_golden_grid_is_complete():
    """The stored data cover exactly the current grid (a changed grid needs a new capture)."""
    assert sorted(name for name, _ in CASES) == sorted(GOLDEN["cases"])
    assert len(CASES) > 500


@pytest.mark.parametrize("name, fn", CASES, ids=[name for name, _ in CASES])
def test_bitwise_equal_to_pre_refactor_output(name, fn):
    if name.startswith("conv-numba") and not numba_available():
        pytest.skip("numba is not installed")
    want = GOLDEN["cases"][name]
    got = fn(API)
    if want.dtype == object:
        assert got.shape == want.shape and all(g == w for g, w in zip(got.ravel(), want.ravel())), name
    else:
        assert got.dtype == want.dtype and np.array_equal(got, want), (
            f"{name}: max |diff| = {np.nanmax(np.abs(got - want)) if got.shape == want.shape else 'shape'}")

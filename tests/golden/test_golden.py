"""Bitwise golden tests: every engine's output on the fixed grid of ``cases.py`` must equal, with
``np.array_equal``, the output of the code before the kernel-step refactor (``data/golden.pickle``,
written by ``capture.py`` at the commit it records).  mpmath values are compared as exact binary
``_mpf_`` tuples and sympy values as ``srepr`` strings, so "equal" means equal to the last bit.

numba and CuPy are compared like numpy where they run (the compiled loop performs the same
operations in the same order); the numba cases skip without numba.

Exception, by design (issue 15, "speed to the transcendental limit"): the compiled conv loop now
takes theta from the branch-free polynomial arccos of :mod:`numerics.fastmath` (<= 1.5 ulps,
evaluated on SIMD lanes) by default, where the stored data used libm's acos (<= 1 ulp).  So the
``conv-numba`` cases are checked twice: with ``acos="libm"`` bit for bit (the loop's new lane
layout changes no rounding), and with the default within POLY_ULPS ulps of the matrix's largest
value (measured: 3.0) with flatten/center diagonals still bit for bit (rho = 1 on every pixel
pair there, and arccos(1) = 0 exactly).  Agreement of the default with the mpmath conv oracle is
tests/numerics/test_conv.py and test_conv_fused.py.  The data were not re-captured.

Likewise for the fully connected ReLU-family programs: with numba, ``gram`` runs their half-angle
recursion as one compiled loop (numerics/fc_fused.py: the polynomial arcsin, <= 2.5 ulps, instead of
numpy's).  The ``fc[...]`` cases are checked bit for bit on the numpy path (the data's) and, with the
compiled loop, within FC_ULPS (depth + 1) ulps of the largest value with exact diagonals.

And the ReLU half-angle duals on float64 take su sv - h rho from its Taylor series where h = theta/2 <
1/4 (:data:`theory.activations.SMALL_ANGLE_H`, since 2026-12-03: the difference cancelled, and the deep
recursion carried that into 1 - kappa1 layer after layer; MLP(10^4)'s NTK at t = 0 went from 1.4e-9 to
3.6e-15 of mpmath, tests/numerics/test_fc_small_angle.py).  The bitwise test sets SMALL_ANGLE_H = 0 (the
data's difference everywhere); with the series, the ``fc[...]`` and ``zonal[...]`` float64 cases are
checked within FC_ULPS (depth + 1) ulps of the largest value with exact diagonals, on the numpy path as
on the compiled one.
"""
import os
import pickle
import types

import numpy as np
import pytest

import reskernels
import reskernels.theory.activations as activations
from reskernels.numerics import kernel_mp, kernel_theta_mp, zonal
import reskernels.numerics.conv_fused as conv_fused
from reskernels.numerics.conv_fused import available as numba_available
from reskernels.numerics.montecarlo import empirical_kernels
from reskernels.numerics.montecarlo_conv import empirical_conv_kernels
from reskernels.numerics.multisphere import multi_dot_kernel
from reskernels.theory import endpoint_expansion, taylor_coefficients

from .cases import cases, conv_specs

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
NUMBA_CASES = [(name, fn) for name, fn in CASES if name.startswith("conv-numba")]
# bound of the polynomial-arccos conv-numba outputs against the libm data, in ulps of the matrix's
# largest |value|: theta differs by <= 2.5 ulps per dual (1.5 + 1), contracted by the later
# layers; measured maximum 3.0 over the grid, so 8 leaves headroom for other libms
POLY_ULPS = 8
# bound of the compiled FC loop against the numpy-made data, in ulps of the matrix's largest |value| per
# layer: arcsin differs by <= 2.5 + 1 ulps per layer and the kappas carry it into T additively;
# measured maximum over the grid in tests/numerics/test_fc_fused.py
FC_ULPS = 4
FC_CASES = [(name, fn) for name, fn in CASES if name.startswith("fc[")]


def test_golden_grid_is_complete():
    """The stored data cover exactly the current grid (a changed grid needs a new capture)."""
    assert sorted(name for name, _ in CASES) == sorted(GOLDEN["cases"])
    assert len(CASES) > 500


@pytest.mark.parametrize("name, fn", CASES, ids=[name for name, _ in CASES])
def test_bitwise_equal_to_pre_refactor_output(name, fn, monkeypatch):
    monkeypatch.setattr(activations, "SMALL_ANGLE_H", 0.0)       # the data's difference (module doc)
    if name.startswith("conv-numba"):
        if not numba_available():
            pytest.skip("numba is not installed")
        monkeypatch.setattr(conv_fused, "ACOS", "libm")      # the data's arccos (module doc)
    if name.startswith("fc["):
        _numpy_fc(monkeypatch)                                 # the data's numpy arcsin (module doc)
    want = GOLDEN["cases"][name]
    got = fn(API)
    if name.endswith("-endpoint"):
        # the stored expansions (order 5) end with a wrong u^2 coefficient for depth >= 2: the
        # square root of the series left its top coefficient unknown and it was returned; fixed
        # with a guard term (theory/endpoints.py; tests/theory/test_endpoint_roots.py checks it
        # against order 8).  Every other coefficient must still be bitwise the stored one.
        assert got.shape == want.shape, name
        top = [g.startswith("Integer(2):") for g in got.ravel()]
        assert [w.startswith("Integer(2):") for w in want.ravel()] == top, name
        assert all(g == w for g, w, t in zip(got.ravel(), want.ravel(), top) if not t), name
    elif want.dtype == object:
        assert got.shape == want.shape and all(g == w for g, w in zip(got.ravel(), want.ravel())), name
    else:
        assert got.dtype == want.dtype and np.array_equal(got, want), (
            f"{name}: max |diff| = {np.nanmax(np.abs(got - want)) if got.shape == want.shape else 'shape'}")


@pytest.mark.parametrize("name, fn", NUMBA_CASES, ids=[name for name, _ in NUMBA_CASES])
def test_numba_polynomial_arccos_within_ulps_of_pre_refactor_output(name, fn, monkeypatch):
    """The default compiled loop (polynomial arccos): within POLY_ULPS ulps of the largest value of
    the libm-made data, and flatten/center diagonals bit for bit (module doc)."""
    if not numba_available():
        pytest.skip("numba is not installed")
    monkeypatch.setattr(conv_fused, "ACOS", "poly")
    want = GOLDEN["cases"][name]
    got = fn(API)
    assert got.shape == want.shape and got.dtype == want.dtype
    scale = np.spacing(np.max(np.abs(want)))
    err = np.max(np.abs(got - want)) / scale
    assert err <= POLY_ULPS, f"{name}: {err} ulps of max |K|"
    arch = conv_specs(API)[int(name.split("[")[1].split("]")[0])]
    if arch.readout != "gap" and not name.endswith("cross"):
        assert np.array_equal(np.diag(got), np.diag(want)), name


def _numpy_fc(monkeypatch):
    import reskernels.numerics.fc_fused as fc_fused

    def refuse(maps):
        raise NotImplementedError("the golden data's numpy path")
    monkeypatch.setattr(fc_fused, "lower", refuse)


def _within_fc_ulps(name, got, want):
    from .cases import fc_specs
    assert got.shape == want.shape and got.dtype == want.dtype
    arch = fc_specs(API)[int(name.split("[")[1].split("]")[0])]
    err = np.max(np.abs(got - want)) / np.spacing(np.max(np.abs(want)))
    assert err <= FC_ULPS * (arch.depth + 1), f"{name}: {err} ulps of max |K|"
    if name.startswith("fc[") and not name.endswith("cross"):
        assert np.array_equal(np.diag(got), np.diag(want)), name
    return err


SERIES_CASES = FC_CASES + [(name, fn) for name, fn in CASES if name.startswith("zonal[")]


@pytest.mark.parametrize("name, fn", SERIES_CASES, ids=[name for name, _ in SERIES_CASES])
def test_small_angle_series_within_ulps_of_pre_refactor_output(name, fn, monkeypatch):
    """The default numpy FC path (the Taylor series of su sv - h rho below SMALL_ANGLE_H): within FC_ULPS
    (depth + 1) ulps of the largest value of the data, diagonals bit for bit (h = 0 there: the series
    and the difference are both exactly 0)."""
    _numpy_fc(monkeypatch)
    assert activations.SMALL_ANGLE_H > 0
    _within_fc_ulps(name, fn(API), GOLDEN["cases"][name])


def test_small_angle_series_changes_a_case(monkeypatch):
    """The series runs on the grid: fc[12]-ntk-cross (X against Z: pairs at small angles) differs from
    the data with it and equals the data without it."""
    _numpy_fc(monkeypatch)
    name, fn = next((n, f) for n, f in FC_CASES if n == "fc[12]-ntk-cross")
    want = GOLDEN["cases"][name]
    assert not np.array_equal(fn(API), want)
    monkeypatch.setattr(activations, "SMALL_ANGLE_H", 0.0)
    assert np.array_equal(fn(API), want)


@pytest.mark.parametrize("name, fn", FC_CASES, ids=[name for name, _ in FC_CASES])
def test_compiled_fc_loop_within_ulps_of_pre_refactor_output(name, fn):
    """The default FC path with numba (numerics.fc_fused): within FC_ULPS (depth + 1) ulps of the largest
    value of the numpy-made data; diagonals (symmetric and normalised modes) bit for bit."""
    if not numba_available():
        pytest.skip("numba is not installed")
    _within_fc_ulps(name, fn(API), GOLDEN["cases"][name])

"""The fused numba loop (backend="numba") against the vectorised numpy path, and its fallbacks."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import reskernels.numerics.conv_fused as conv_fused
from reskernels.numerics import gram
from reskernels.numerics.conv import ConvGramPlan
from reskernels.numerics.tolerances import EPS, float64_kernel_rtol
from reskernels.theory import CNN, ResCNN

from .test_conv import conv_archs

numba = pytest.importorskip("numba")


@settings(max_examples=25)
@given(arch=conv_archs, two_d=st.booleans(), channels=st.sampled_from([1, 3]), seed=st.integers(0, 99),
       kind=st.sampled_from(["ntk", "nngp"]), cross=st.booleans())
def test_fused_loop_matches_numpy_path(arch, two_d, channels, seed, kind, cross):
    """Same recursion, same operation order: only libm's acos vs numpy's arccos (<= 1 ulp each) differ,
    so the two agree to a few ulps per layer relative to sqrt(K(x,x) K(z,z))."""
    rng = np.random.default_rng(seed)
    shape = (4, 5, 4, channels) if two_d else (4, 6, channels)
    X = rng.standard_normal(shape)
    X[3] = -2.5 * X[1]                     # exactly (anti)parallel pairs: half angles and snapping
    Z = rng.standard_normal((3,) + shape[1:]) if cross else None
    a = gram(arch, X, Z, kind=kind, backend="numpy")
    b = gram(arch, X, Z, kind=kind, backend="numba")
    # scale of the summed terms: a gap value is a mean of pixel-pair kernels that may cancel, each
    # bounded by sqrt(K_ii(x) K_jj(z)); Cauchy-Schwarz bounds their mean by the flatten diagonals
    sa = arch.replace(readout="flatten") if arch.readout == "gap" else arch
    dx = np.diag(gram(sa, X, kind=kind, backend="numpy"))
    dz = dx if Z is None else np.diag(gram(sa, Z, kind=kind, backend="numpy"))
    scale = np.sqrt(np.abs(np.outer(dx, dz)))
    tol = float64_kernel_rtol(arch.depth + 2, per_layer=32)   # override: same operations, libm ulps only
    assert np.all(np.abs(a - b) <= tol * np.where(scale > 0, scale, 1))
    if Z is None:
        assert np.array_equal(b, b.T)


def test_fused_diagonal_is_exact_on_the_multisphere():
    """Unit pixels: closed-form center/flatten diagonals (test_conv) to a few ulps -- rho = 1 exactly in
    the compiled loop too (a sqrt(eps) loss there would show as ~1e-8)."""
    X = np.random.default_rng(0).standard_normal((3, 5, 5, 2))
    X /= np.linalg.norm(X, axis=-1, keepdims=True)
    for readout in ("flatten", "center"):
        np.testing.assert_allclose(np.diag(gram(CNN(5, readout=readout), X, backend="numba")), 6.0, rtol=8 * EPS)
        np.testing.assert_allclose(np.diag(gram(ResCNN(4, 0.6, readout=readout), X, backend="numba")),
                                   14.0865536, rtol=8 * EPS)
        np.testing.assert_allclose(np.diag(gram(ResCNN(4, 0.6, readout=readout), X, kind="nngp", backend="numba")),
                                   3.42102016, rtol=8 * EPS)


def test_auto_backend_picks_numba_for_conv_only_and_falls_back(monkeypatch):
    X = np.ones((2, 4, 2))
    assert ConvGramPlan(CNN(2), X).backend == "numba"
    monkeypatch.setattr(conv_fused, "numba", None)
    assert ConvGramPlan(CNN(2), X).backend == "numpy"
    with pytest.raises(ImportError, match="numba"):
        gram(CNN(2), X, backend="numba")

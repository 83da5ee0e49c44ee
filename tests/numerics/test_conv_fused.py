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
    """Same recursion, same operation order: only the compiled loop's arccos (numerics.fastmath's
    polynomial, <= 1.5 ulps) vs numpy's arccos (<= 1 ulp) differ, so the two agree to a few ulps per
    layer relative to sqrt(K(x,x) K(z,z))."""
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
    tol = float64_kernel_rtol(arch.depth + 2, per_layer=32)   # override: same operations, arccos ulps only
    assert np.all(np.abs(a - b) <= tol * np.where(scale > 0, scale, 1))
    if Z is None:
        assert np.array_equal(b, b.T)


@pytest.mark.parametrize("readout", ["flatten", "center", "gap"])
def test_lane_layout_changes_no_bit(readout):
    """Entries of one Gram matrix computed in different lane layouts are equal bit for bit: the
    symmetric matrix (flatten / centre: chunks that continue into the next rows, numerics.conv_fused.
    assign_lanes; x gathered per lane) against each row alone as a cross Gram matrix (one row: x
    broadcast), on the upper triangle, where both take x = X[i], z = X[j]; near-duplicate rows make the
    first layer's half-angle pass run on lanes of several rows."""
    rng = np.random.default_rng(7)
    X = rng.standard_normal((75, 5, 4, 2))
    X[9] = X[8] + 1e-9 * rng.standard_normal(X[8].shape)
    arch = ResCNN(2, 0.5, readout=readout)
    for kind in ("ntk", "nngp"):
        full = gram(arch, X, kind=kind, backend="numba", n_threads=1)
        for i in (0, 8, 9, 40, 74):
            row = gram(arch, X[i:i + 1], X, kind=kind, backend="numba", n_threads=1)[0]
            assert np.array_equal(full[i, i:], row[i:]), (kind, i)


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


@pytest.mark.parametrize("arch", [CNN(3), ResCNN(2, (0.3, 0.9), stem_size=3), CNN(2, readout="flatten"),
                                  ResCNN(3, 0.5, readout="center", trained="hidden")], ids=str)
@pytest.mark.parametrize("kind", ["ntk", "nngp"])
def test_polynomial_arccos_agrees_with_libm_and_keeps_exact_values(arch, kind, monkeypatch):
    """acos="poly" (default) vs "libm": within 8 ulps of the largest value (theta differs by <= 2.5
    ulps per dual); rho = 1 entries take arccos(1) = 0 exactly in both, so flatten/center diagonals
    and x vs 3x pairs agree bit for bit.  Enough pairs for several lane batches, padding included."""
    rng = np.random.default_rng(3)
    X = rng.standard_normal((11, 6, 6, 2))
    X[4] = 3.0 * X[1]
    out = {}
    for mode in ("libm", "poly"):
        monkeypatch.setattr(conv_fused, "ACOS", mode)
        out[mode] = gram(arch, X, kind=kind, backend="numba")
    a, b = out["libm"], out["poly"]
    assert np.max(np.abs(a - b)) <= 8 * np.spacing(np.max(np.abs(a)))
    if arch.readout != "gap":
        assert np.array_equal(np.diag(a), np.diag(b))
        assert b[1, 4] == a[1, 4]


def test_polynomial_arccos_matches_mpmath_oracle():
    """The default compiled loop against the independent mpmath conv oracle (dps 30), at the bound
    of test_conv (which cannot hide a sqrt(eps) loss)."""
    from .conv_oracle import kernel_pair
    rng = np.random.default_rng(8)
    X = rng.standard_normal((3, 3, 3, 2))
    X[2] = -1.7 * X[0]
    for arch in (ResCNN(2, 0.7), CNN(2, readout="flatten")):
        K = gram(arch, X, backend="numba")
        R = np.array([[float(kernel_pair(arch, X[i].tolist(), X[j].tolist(), "ntk")) for j in range(3)]
                      for i in range(3)])
        d = np.diag(gram(arch.replace(readout="flatten"), X)) if arch.readout == "gap" else np.diag(R)
        tol = float64_kernel_rtol(arch.depth + 2, per_layer=100)   # override: as test_conv's oracle check
        assert np.all(np.abs(K - R) <= tol * np.sqrt(np.outer(d, d)))


def test_fused_block_refuses_an_unknown_arccos():
    with pytest.raises(ValueError, match="acos"):
        conv_fused.fused_block("fast")

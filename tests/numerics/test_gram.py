"""float64 Gram matrices against the exact route, invariants, stability and bad input."""
import math

import mpmath
import numpy as np
import pytest
from hypothesis import example, given, note, settings, target
from hypothesis import strategies as st

from reskernels.numerics import gram, kernel_mp, zonal
from reskernels.numerics.fc import normalized_diagonal
from reskernels.numerics.reference import arch_from_dict, load, parse_values
from reskernels.numerics.tolerances import (DIAGONAL_RTOL, EPS, PSD_RTOL, float64_kernel_rtol,
                                            half_unit_decimal)
from reskernels.theory import MLP, ResNet

from ..strategies import fc_archs, point_sets
from .oracles import gram_reference


def _scale(K_diag_x, K_diag_z):
    return np.sqrt(np.outer(np.abs(K_diag_x), np.abs(K_diag_z)))


@settings(max_examples=40)
@given(arch=fc_archs(max_depth=4), X=point_sets(max_n=6, max_d=5), kind=st.sampled_from(["ntk", "nngp"]))
@example(arch=MLP(1), X=np.array([[1.0, 0.0], [-1.0, 0.0], [0.6, 0.8]]), kind="ntk")
@example(arch=ResNet(2, 0.0, trained="hidden"), X=np.eye(3), kind="ntk")
def test_gram_matches_exact_expression(arch, X, kind):
    """Entry by entry against kernel_expr at 50 digits; error measured on the scale
    sqrt(K(x,x) K(z,z)) (docs/development.md §4: rtol 50 eps depth, here 100 eps (depth + 2))."""
    K = gram(arch, X, kind=kind)
    R = gram_reference(arch, X, kind=kind)
    scale = _scale(np.diag(R), np.diag(R))
    err = np.abs(K - R) / np.where(scale > 0, scale, 1.0)
    note(f"max scaled error {err.max():.3e}")
    target(float(err.max()))
    tol = float64_kernel_rtol(arch.depth + 2, per_layer=100)   # override: input and readout counted, 2x headroom
    assert np.all(err <= tol), (arch, np.argwhere(err > tol))


@pytest.mark.parametrize("case", range(9))
def test_reference_table_values(case):
    """docs/papers.md tables [derived], to half a unit in the 8th printed decimal."""
    data = load("kernel_values__papers_tables")
    c = data["cases"][case]
    arch = arch_from_dict(c["arch"])
    ts = np.array([float(x) for x in data["ts"]])
    got = zonal(arch, c["kind"], normalized=c["normalized"])(ts)
    if c["normalized"]:
        got = got / normalized_diagonal(arch, c["kind"])
    want = np.array([float(v) for v in parse_values(c["values"])])
    assert np.all(np.abs(got - want) <= half_unit_decimal(8) + 4 * EPS * np.abs(want)), (got, want)


@given(arch=fc_archs(), X=point_sets())
def test_gram_symmetric_psd_and_equal_to_gram_x_x(arch, X):
    K = gram(arch, X)
    assert np.array_equal(K, K.T)
    np.testing.assert_allclose(gram(arch, X, X), K, rtol=1e-13, atol=1e-13 * np.abs(K).max())
    lam = np.linalg.eigvalsh(K)
    assert lam.min() >= -PSD_RTOL * max(1.0, np.abs(lam).max())


@given(arch=fc_archs(), X=point_sets(), c=st.floats(1e-3, 1e3), seed=st.integers(0, 1000))
def test_homogeneity_and_rotation_invariance(arch, X, c, seed):
    K = gram(arch, X)
    tol = 1e-12 * max(1e-300, np.abs(K).max())
    np.testing.assert_allclose(gram(arch, c * X), c * c * K, rtol=1e-12, atol=tol * c * c)
    Q, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((X.shape[1],) * 2))
    np.testing.assert_allclose(gram(arch, X @ Q), K, rtol=1e-12, atol=tol)


@given(arch=fc_archs(), kind=st.sampled_from(["ntk", "nngp"]))
def test_diagonal_closed_form(arch, kind):
    """Diagonals on the sphere (docs/spectral.md §10.12) to 1e-14 relative: no sqrt(eps) loss."""
    X = np.random.default_rng(0).standard_normal((5, 4))
    X /= np.linalg.norm(X, axis=1)[:, None]
    d = np.diag(gram(arch, X, kind=kind))
    if kind == "nngp":
        want = arch.input_var * (math.prod(1 + a for a in arch.block_gains())
                                 if isinstance(arch, ResNet) else (arch.weight_var / 2) ** arch.depth)
    elif isinstance(arch, MLP):
        want = arch.input_var * (arch.weight_var / 2) ** arch.depth * (
            arch.depth + 1 if arch.trained == "all" else arch.depth - 1)
    else:
        g = arch.block_gains()
        sL = arch.input_var * math.prod(1 + a for a in g)
        want = sL * (sum(2 * a / (1 + a) for a in g) + (2 if arch.trained == "all" else 0))
    np.testing.assert_allclose(d, want, rtol=DIAGONAL_RTOL, atol=1e-300)


def test_mlp_diagonal_is_exact_integer():
    """rho = 1 gives kappa(1) exactly: the normalised recursion's diagonal is the integer
    L + 1 with no rounding, on rows of exactly unit norm and on arbitrary rows."""
    X = np.vstack([np.eye(3), [[0.0, 0.6, 0.8], [-0.8, 0.0, 0.6], [0.0, 0.0, -1.0]]])
    assert np.all(np.diag(gram(MLP(5), X)) == 6.0)
    Y = np.random.default_rng(1).standard_normal((50, 7))
    assert np.all(np.diag(gram(MLP(5), Y, normalize=True)) == 1.0)


def test_near_duplicate_keeps_full_accuracy():
    """Angle 1e-9 between inputs: a naive recursion loses ~8 digits (docs/papers.md NUM-RHO1)."""
    arch = MLP(4)
    theta = 1e-9
    X = np.array([[1.0, 0.0], [math.cos(theta), math.sin(theta)]])
    K = gram(arch, X)
    with mpmath.workdps(40):
        ref = kernel_mp(arch, mpmath.cos(mpmath.mpf(theta)), "ntk", dps=40)
    assert abs(K[0, 1] - float(ref)) <= 8 * EPS * float(ref)


def test_zero_vector_gives_zero_kernel():
    X = np.array([[0.0, 0.0, 0.0], [1.0, 2.0, 3.0]])
    for arch in (MLP(2), ResNet(3, 0.5, trained="hidden")):
        K = gram(arch, X)
        assert np.all(K[0] == 0) and np.all(K[:, 0] == 0) and K[1, 1] > 0


def test_cross_gram_shape_and_values():
    rng = np.random.default_rng(2)
    X, Z = rng.standard_normal((4, 3)), rng.standard_normal((6, 3))
    arch = ResNet(3, 0.7)
    np.testing.assert_allclose(gram(arch, X, Z), gram(arch, np.vstack([X, Z]))[:4, 4:], rtol=1e-14)


def test_tiling_and_threads_do_not_change_results():
    X = np.random.default_rng(3).standard_normal((300, 5))
    arch = ResNet(4, 0.5)
    ref = gram(arch, X, n_threads=1)
    np.testing.assert_array_equal(gram(arch, X, n_threads=2), ref)
    np.testing.assert_allclose(gram(arch, X, memory_budget=2**16, tile=32), ref, rtol=2e-15)


def test_deep_resnet_overflow_raises_and_normalized_is_finite():
    arch = ResNet(1100, 1.0)
    X = np.random.default_rng(4).standard_normal((3, 4))
    with pytest.raises(OverflowError, match="normalize=True"):
        gram(arch, X)
    K = gram(arch, X, normalize=True)
    assert np.all(np.isfinite(K)) and np.allclose(np.diag(K), 1.0, rtol=1e-12)


def test_very_deep_depth_scaled_resnet_matches_mpmath():
    """docs/papers.md NUM-DEEP: alpha = L^-1/2 keeps the diagonal bounded; L = 10^4 steps."""
    arch = ResNet.with_gamma(10_000, 0.5, trained="hidden")
    X = np.array([[1.0, 0.0], [0.0, 1.0], [-0.6, 0.8]])
    K = gram(arch, X)
    ref = [float(kernel_mp(arch, t, "ntk", dps=20)) for t in (0.0, -0.6, 0.8)]
    got = [K[0, 1], K[0, 2], K[1, 2]]
    np.testing.assert_allclose(got, ref, rtol=1e-10)


@settings(max_examples=30)
@given(arch=fc_archs(max_depth=5), tval=st.floats(-1, 1))
def test_zonal_float64_vs_mpmath(arch, tval):
    f = zonal(arch, "ntk")
    ref = kernel_mp(arch, tval, "ntk", dps=30)
    scale = float(kernel_mp(arch, 1, "ntk", dps=30))
    tol = float64_kernel_rtol(arch.depth + 2, per_layer=100)   # as test_gram_matches_exact_expression
    assert abs(float(f(tval)) - float(ref)) <= tol * max(abs(scale), 1e-300)


# --- bad input -----------------------------------------------------------------------

@pytest.mark.parametrize("X, word", [
    (np.array([[np.nan, 1.0]]), "non-finite"), (np.array([[np.inf, 1.0]]), "non-finite"),
    (np.ones(3), "rank"), (np.ones((2, 2, 2)), "rank"), (np.array([["a", "b"]]), "numeric"),
    (np.array([[1 + 1j, 0]]), "real"),
])
def test_bad_inputs_raise_clear_errors(X, word):
    with pytest.raises(ValueError, match=word):
        gram(MLP(2), X)


def test_mismatched_feature_dimension():
    with pytest.raises(ValueError, match="feature dimension"):
        gram(MLP(2), np.ones((2, 3)), np.ones((2, 4)))


def test_unknown_kind_and_arch():
    with pytest.raises(ValueError, match="kind"):
        gram(MLP(2), np.ones((2, 3)), kind="gp")
    with pytest.raises(TypeError, match="architecture"):
        gram("MLP", np.ones((2, 3)))


def test_normalize_rejects_zero_vectors():
    with pytest.raises(ValueError, match="zero input"):
        gram(MLP(2), np.array([[0.0, 0.0], [1.0, 0.0]]), normalize=True)


@pytest.mark.parametrize("kwargs, word", [
    (dict(memory_budget=0), "memory_budget"), (dict(memory_budget=-5), "memory_budget"),
    (dict(memory_budget=float("nan")), "memory_budget"), (dict(memory_budget="1GB"), "memory_budget"),
    (dict(tile=0), "tile"), (dict(n_threads=0), "n_threads"), (dict(n_threads=-1), "n_threads"),
    (dict(n_threads=1.5), "n_threads"), (dict(normalize="no"), "normalize")])
def test_gram_options_are_validated_by_name(kwargs, word):
    from reskernels.theory import MLP
    with pytest.raises(ValueError, match=word):
        gram(MLP(2), np.ones((2, 3)), **kwargs)


def test_masked_and_featureless_inputs_are_refused():
    from reskernels.theory import MLP
    X = np.ma.masked_array(np.ones((2, 3)), mask=[[0, 1, 0], [0, 0, 0]])
    with pytest.raises(ValueError, match="masked"):
        gram(MLP(2), X)
    with pytest.raises(ValueError, match="no features"):
        gram(MLP(2), np.ones((5, 0)))


def test_kernel_mp_refuses_a_bad_precision():
    from reskernels.numerics import kernel_mp
    from reskernels.theory import MLP
    for dps in (-20, 0, 2.5):
        with pytest.raises(ValueError, match="dps"):
            kernel_mp(MLP(2), 0.5, dps=dps)


@pytest.mark.parametrize("act, bias", [("erf", 0.0), ("step", 0.1), ("sin", 0.0), ("cos", 0.2), ("relu", 0.3),
                                       ("abs", 0.1), ("monomial2", 0.0), ("rect2", 0.0), ("rect3", 0.1),
                                       ("leaky", 0.2)])
def test_fc_compiled_duals_agree_with_numpy(act, bias, monkeypatch):
    """FC programs with closed-form duals run compiled under backend 'auto' when numba is installed:
    the whole program as one loop (numerics.fc_fused.general_block, the default), and, where that loop
    has no rule (concatenations), the variance-carrying interpreter with its duals from the compiled
    per-entry functions (numerics.variance.CompiledDualContext); backend='numpy' keeps the numpy
    formulas.  Each compiled route agrees with numpy to 16 eps of the scale sqrt(K(x, x) K(z, z)) times
    n^depth for the degree-n activations (a relative error of a layer's variance is multiplied by n in
    the next: q -> ~q^n).  On the interpreter route the compiled duals are what ran (counted), except
    for erf, sin and cos, which stay on numpy there: bit for bit the numpy backend's values."""
    import importlib
    from reskernels.numerics import variance as V
    from reskernels.numerics.conv_fused import available
    from reskernels.theory import activations as A
    if not available():
        pytest.skip("numba is not installed")
    a = {"monomial2": A.monomial(2), "rect2": A.rectified_monomial(2), "rect3": A.rectified_monomial(3),
         "leaky": A.leaky_relu(0.2)}.get(act, act)
    arch = ResNet(4, 0.5, activation=a, bias_var=bias, input_var=0.1)
    X = np.random.default_rng(5).standard_normal((40, 6))
    compiled = []
    inner = V.CompiledDualContext.compiled_dual

    def counted(self, *args):
        out = inner(self, *args)
        compiled.append(out is not None)
        return out
    monkeypatch.setattr(V.CompiledDualContext, "compiled_dual", counted)
    growth = {"monomial2": 2, "rect2": 2, "rect3": 3}.get(act, 1) ** arch.depth
    for kind in ("nngp", "ntk"):
        fast, ref = gram(arch, X, kind=kind), gram(arch, X, kind=kind, backend="numpy")
        scale = np.sqrt(np.outer(np.diag(ref), np.diag(ref)))
        assert np.max(np.abs(fast - ref) / scale) <= 16 * growth * np.finfo(float).eps, (act, kind)
    assert not compiled                           # the whole-program loop ran, not the interpreter
    plan = importlib.import_module("reskernels.numerics.gram").FCGramPlan
    monkeypatch.setattr(plan, "_init_general_compiled", lambda self, *args: None)     # the interpreter route
    for kind in ("nngp", "ntk"):
        fast, ref = gram(arch, X, kind=kind), gram(arch, X, kind=kind, backend="numpy")
        scale = np.sqrt(np.outer(np.diag(ref), np.diag(ref)))
        assert np.max(np.abs(fast - ref) / scale) <= 16 * growth * np.finfo(float).eps, (act, kind)
        if act in ("erf", "sin", "cos"):
            assert np.array_equal(fast, ref)
    assert compiled and all(compiled) == (act not in ("erf", "sin", "cos")) and any(compiled) == all(compiled)


@pytest.mark.parametrize("arch", [MLP(2, activation="tanh"), ResNet(1, 0.5, activation="gelu", bias_var=0.1)],
                         ids=lambda a: a.slug)
def test_variance_carrying_diagonal_is_the_input_alone_above_the_deterministic_width(arch):
    """Inputs of 200 features (above the 64 up to which tiles take einsum, below BLAS): a tile's
    diagonal pairs get the input's own variance as their covariance, so K(x, x) in a Gram matrix is
    gram of x alone within 4 eps -- before, BLAS's rounding of <x, x> in the tile (one ulp, checked
    here to differ) moved the tanh NTK diagonal at |x|^2 ~ 3200 by 1.8e-12 through the dual's
    sensitivity to S near rho = 1 (NNGP 2.3e-14).  Not bit for bit: the one-dimensional second
    moment takes its step from the largest variance of its batch (measured <= 5e-16)."""
    from reskernels.numerics.gram import _row_dots
    X = np.random.default_rng(2).standard_normal((40, 200)) * (4.0 if arch.activation.name == "tanh" else 0.3)
    assert np.any(np.diag(X @ X.T) != _row_dots(X))          # the inputs where the two differ
    for kind in ("ntk", "nngp"):
        K = gram(arch, X, kind=kind, backend="numpy", tile=16)
        alone = np.array([gram(arch, X[i:i + 1], kind=kind, backend="numpy")[0, 0] for i in range(len(X))])
        assert np.max(np.abs(np.diag(K) - alone) / np.abs(alone)) <= 4 * EPS

"""The compiled half-angle loop of fully connected kernels (numerics/fc_fused.py) against the numpy
half-angle recursion (numerics/fc.py), which is itself checked against closed forms and mpmath
(test_gram.py, the golden data).  The loop differs from numpy only in arcsin (the polynomial of
numerics/fastmath.py, <= 2.5 ulps, against numpy's <= 1 ulp), so entries agree within a few ulps of
the matrix's largest value per layer, and diagonals (su = 0: arcsin(0) = 0 exactly) bit for bit."""
import numpy as np
import pytest

from reskernels import MLP, ResNet, activations, gram
from reskernels.numerics import fc_fused

pytest.importorskip("numba")

EPS = np.finfo(float).eps
SPECS = [MLP(1), MLP(10), MLP(4, trained="hidden"), ResNet(10, 0.5), ResNet(3, 1.0, trained="hidden"),
         ResNet(50, 0.2), ResNet(2, (0.3, 1.5)), MLP(3, activation=activations.leaky_relu(0.2)),
         ResNet(4, 0.5, activation="abs"), MLP(2, weight_var=1.0, input_var=0.5)]


def _inputs(n=60, d=7, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    X[1] = X[0] * 3.0                                           # parallel (rho = 1 exactly after scaling)
    X[2] = -X[0]                                                # antiparallel
    X[3] = X[0] + 1e-9 * rng.standard_normal(d)                 # nearly parallel
    X[4] = -X[0] + 1e-7 * rng.standard_normal(d)                # nearly antiparallel
    return X


@pytest.mark.parametrize("arch", SPECS, ids=lambda a: a.slug)
@pytest.mark.parametrize("kind", ["ntk", "nngp"])
@pytest.mark.parametrize("normalize", [False, True])
def test_compiled_loop_within_ulps_of_numpy(arch, kind, normalize):
    X = _inputs()
    Z = _inputs(9, seed=1)
    for args in ((X,), (X, Z)):
        a = gram(arch, *args, kind=kind, normalize=normalize, backend="numpy")
        b = gram(arch, *args, kind=kind, normalize=normalize)
        scale = np.max(np.abs(a))
        depth = len(arch.kernel_maps())
        assert np.max(np.abs(a - b)) <= 4 * depth * EPS * scale, np.max(np.abs(a - b)) / (EPS * scale)
        if len(args) == 1:
            assert np.array_equal(np.diag(a), np.diag(b))


def test_the_compiled_loop_runs_and_is_deterministic():
    """The default backend takes the loop (a planted refusal changes the bits of some entry) and its
    result does not depend on the tile size or the threads."""
    X = _inputs(300, 16)
    arch = ResNet(10, 0.5)
    b = gram(arch, X)
    assert np.array_equal(b, gram(arch, X, n_threads=1, tile=32))
    a = gram(arch, X, backend="numpy")
    assert not np.array_equal(a, b)


def test_near_parallel_pairs_keep_their_digits():
    """1 - rho of nearly parallel pairs (su ~ 1e-9) is carried relative to its size: the loop's and numpy's
    1 - K / K(x, x) agree to a few ulps of 1 - K itself, not of K."""
    rng = np.random.default_rng(2)
    x = rng.standard_normal(8)
    X = np.stack([x] + [x + 10.0 ** -e * rng.standard_normal(8) for e in (4, 6, 8, 10)])
    for kind in ("ntk", "nngp"):
        a = gram(ResNet(6, 0.5), X, kind=kind, normalize=True, backend="numpy")[0, 1:]
        b = gram(ResNet(6, 0.5), X, kind=kind, normalize=True)[0, 1:]
        assert np.all(np.abs(a - b) <= 64 * EPS * np.abs(1 - a)), (a, b)


def test_programs_without_a_compiled_rule_are_refused():
    with pytest.raises(NotImplementedError):
        fc_fused.lower(MLP(2, activation="erf").kernel_maps())
    ops, params = fc_fused.lower(ResNet(3, 0.5).kernel_maps())
    assert list(ops[:, 0]) == [fc_fused.OP_STEM] + [fc_fused.OP_BLOCK] * 3 + [fc_fused.OP_LINEAR]


GENERAL = [ResNet(6, 0.5, activation="erf", input_var=0.3), MLP(4, activation="sin"), MLP(3, activation="cos", bias_var=0.2),
           ResNet(4, 0.7, bias_var=0.1), MLP(5, activation="step", trained="hidden"),
           ResNet(3, 0.5, activation=activations.monomial(2), input_var=0.05),
           MLP(3, activation=activations.rectified_monomial(2), input_var=0.5, bias_var=0.05),
           ResNet(3, 0.4, activation=activations.leaky_relu(0.3), bias_var=0.5, trained="hidden")]


@pytest.mark.parametrize("arch", GENERAL, ids=lambda a: a.slug)
@pytest.mark.parametrize("kind", ["ntk", "nngp"])
def test_compiled_variance_carrying_loop_within_ulps_of_numpy(arch, kind):
    """Programs with biases or non-homogeneous closed-form activations: the compiled loop
    (fc_fused.general_block, the conv engine's per-entry duals) against the numpy interpreter
    (theory.general on numpy, itself checked against mpmath and Monte Carlo in test_activations.py):
    within a few ulps of max |K| per layer (the duals' transcendental functions differ: polynomial
    arccos / libm against numpy's); normalised diagonals exactly 1, unnormalised ones equal to the
    loop's own variances (rho = 1 exactly).  Nearly parallel pairs are left out of the comparison: the
    two routes round the input inner product differently (numpy's einsum against the loop's sequential
    sum), this route has no half angles, and arccos carries a rounding of rho into theta with the
    condition number 1 / sqrt(1 - rho^2) per layer -- compounded by depth for steps (MLP(5, step): a
    pair 1e-9 apart gives 1.0 on one route and 0.93 on the other, both within the conditioning)."""
    X = _inputs(40, 5) * 0.7
    Z = _inputs(7, 5, seed=3)
    depth = len(arch.kernel_maps())
    st = arch.kernel_maps()[0]
    for args in ((X,), (X, Z)):
        a = gram(arch, *args, kind=kind, backend="numpy")
        b = gram(arch, *args, kind=kind)
        Y = args[-1]
        S0 = st.input_var * (X @ Y.T) + st.bias_var
        q0x = st.input_var * np.sum(X * X, axis=1) + st.bias_var
        q0y = st.input_var * np.sum(Y * Y, axis=1) + st.bias_var
        rho = np.clip(S0 / np.sqrt(np.outer(q0x, q0y)), -1, 1)
        far = np.abs(rho) < 0.99                # away from rho = +-1: a few ulps of max |K| per layer
        assert far.sum() > 0.9 * far.size
        if not np.any(a):                    # the step's NTK with frozen ends is 0 on both routes
            assert not np.any(b)
            continue
        err = np.max(np.abs(a - b)[far]) / (EPS * np.max(np.abs(a)))
        assert err <= 8 * depth, err
    if np.all(np.diag(gram(arch, X, kind=kind)) > 0):      # (the step's NTK with frozen ends is 0)
        assert np.all(np.diag(gram(arch, X, kind=kind, normalize=True)) == 1.0)


def test_general_loop_runs_and_densenet_keeps_the_interpreter():
    """The default route takes the compiled loop for a biased ResNet (bits differ from numpy somewhere)
    and keeps the interpreter for a DenseNet (concatenations have no compiled rule) and for a user
    function given with kinks (Gauss-Legendre panels, not a series); tanh takes the loop with its
    Hermite series (numerics/fc_series.py; tests/numerics/test_fc_series.py)."""
    import importlib
    from reskernels import DenseNet
    plan = importlib.import_module("reskernels.numerics.gram").FCGramPlan
    X = _inputs(50, 6)
    arch = ResNet(5, 0.5, bias_var=0.1)
    assert plan(arch, X).general_program is not None and plan(arch, X, compiled_duals=False).general_program is None
    assert not np.array_equal(gram(arch, X), gram(arch, X, backend="numpy"))
    assert plan(DenseNet(3), X).general_program is None
    hard_tanh = activations.from_function(lambda x: np.clip(x, -1, 1), lambda x: (abs(x) < 1) * 1.0, kinks=[-1, 1])
    assert plan(MLP(2, activation=hard_tanh), X).general_program is None
    assert plan(MLP(2, activation="tanh"), X).general_program is not None


@pytest.mark.parametrize("backend", ["numpy", "auto"])
def test_normalised_kernel_survives_huge_diagonals(backend):
    """A depth-10 monomial(2) ResNet reaches K(x, x) ~ 1e68 here and up to ~1e200 on larger inputs:
    the product K(x, x) K(z, z) overflowed, the normalised entries became 0 (diagonals included).
    Now the diagonal is 1 exactly and every entry finite, with |K| <= 1 (Cauchy-Schwarz)."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((200, 16))
    arch = ResNet(10, 0.5, activation=activations.monomial(2), input_var=0.01)
    raw = np.diag(gram(arch, X, kind="nngp", backend=backend))
    assert np.max(raw) ** 2 > np.finfo(float).max        # the product overflows
    K = gram(arch, X, kind="nngp", normalize=True, backend=backend)
    assert np.all(np.isfinite(K)) and np.all(np.diag(K) == 1.0) and np.max(np.abs(K)) <= 1 + 1e-12

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

"""Duals without a closed form inside the compiled conv loop (numerics/series_lanes.py,
numerics/conv_fused_general.py: ``block`` with SERIES duals).

Independent route: the numpy interpreter (``backend="numpy"``: per-tile Hermite series with its own
coefficient ladder, numerics/hermite.py, and its quadrature fallbacks).  The two differ by where
the ladder stops (the loop asks every variance for all correlations, the interpreter for its tile's
largest |rho|): successive rules' coefficients agree within AGREE_ATOL sqrt(E[f^2]) each, so a dual's
entry may move by 2 AGREE_ATOL sqrt(K + 1) of its scale (Cauchy-Schwarz over K + 1 <= 481 terms),
and the kernel, a readout of such entries, by that much per dual relative to max |K|.  Inputs with
more pixels than filter taps, a nearly duplicated and a duplicated image.
"""
import numpy as np
import pytest

from reskernels import CNN, ResCNN, activations, gram
from reskernels.numerics import conv_fused_general, hermite
from reskernels.numerics.conv import ConvGramPlan

from . import series_cases

pytest.importorskip("numba")
USER = activations.from_function(np.tanh, lambda x: 1 - np.tanh(x) ** 2, name="user_tanh")


def _tol(arch):
    """2 AGREE_ATOL sqrt(K_CAP + 1) per dual (module docstring), relative to max |K|."""
    duals = sum(getattr(m, "activation", None) is not None for m in arch.kernel_maps())
    return duals * 2 * hermite.AGREE_ATOL * np.sqrt(hermite.K_CAP + 1)


def _images(n, shape=(5, 4, 2), seed=0):
    """Standard-normal images with a nearly duplicated (1e-9) and a duplicated one."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n,) + shape)
    X[3] = X[0] + 1e-9 * rng.standard_normal(shape)
    X[5] = X[1]
    return X


def _rel(A, B):
    return float(np.abs(A - B).max() / np.abs(B).max())


CASES = [
    (ResCNN(2, 0.5, input_var=0.01, activation="tanh"), (5, 4, 2)),
    (CNN(2, activation="gelu", readout="flatten"), (5, 4, 2)),
    (ResCNN(1, 0.7, activation=USER, bias_var=0.2, readout="center"), (6, 5, 1)),
    (CNN(2, filter_size=5, activation="tanh", trained="hidden", input_var=0.1), (9, 2)),
]


@pytest.mark.parametrize("arch,shape", CASES, ids=[a.slug for a, _ in CASES])
@pytest.mark.parametrize("kind", ["ntk", "nngp"])
def test_series_loop_agrees_with_the_interpreter(arch, shape, kind):
    """The compiled loop (the default route, its program lowered with a SERIES dual) against the
    numpy interpreter; exact symmetry; a duplicated image meets the pair (x, x) bit for bit.  Most
    pairs are the loop's own (few recomputed by the interpreter: else this compares the interpreter
    with itself)."""
    X = _images(8, shape)
    plan = ConvGramPlan(arch, X, kind=kind)
    assert plan.backend == "numba" and plan.series is not None
    assert conv_fused_general.SERIES in plan.program.ops[:, 1]
    for tile in plan.tiles:
        plan.block(tile)
    assert sum(plan.series_recomputed) <= 0.15 * 36
    K = gram(arch, X, kind=kind)
    K0 = gram(arch, X, kind=kind, backend="numpy")
    assert _rel(K, K0) <= _tol(arch)
    assert np.array_equal(K, K.T)
    assert K[5, 5] == K[1, 1] == K[1, 5]


def test_cross_gram_normalised_and_tilings():
    """A cross Gram matrix (X, Z) agrees with the interpreter; normalised, the diagonal is 1 exactly;
    one thread or two and any tiling give the same bits (tables are built before the tiles)."""
    arch = ResCNN(2, 0.5, activation="tanh", bias_var=0.1)
    X, Z = _images(9, seed=1), _images(6, seed=2)
    K = gram(arch, X, Z)
    assert _rel(K, gram(arch, X, Z, backend="numpy")) <= _tol(arch)
    N = gram(arch, X, X, normalize=True)             # a cross matrix: diagonals computed apart
    assert np.all(np.diag(N) == 1.0)
    one = gram(arch, X, n_threads=1)
    small = gram(arch, X, n_threads=2, memory_budget=20_000)
    assert ConvGramPlan(arch, X, memory_budget=20_000).tiles != ConvGramPlan(arch, X).tiles
    assert np.array_equal(one, small)


def test_uncertified_pairs_are_recomputed_by_the_interpreter():
    """Planted: one variance's tables unresolved (kc = -1, so no degree is certified); every pair with
    an entry at that variance is flagged and computed again by the interpreter: those pairs are the
    interpreter's bits, the others unchanged, and the plan counts them."""
    arch = ResCNN(1, 0.5, activation="tanh")
    X = np.random.default_rng(4).standard_normal((6, 5, 4, 2))
    plan = ConvGramPlan(arch, X)
    tile = (0, 6, 0, 6)
    clean = plan._block_fused_general(tile)
    assert plan.series_recomputed == []
    RX, RZ, off, kc, m2, diag, a, tail, *rho = plan.series      # (no tables in rho: a pixel variance each)
    row = RX[0, 2, 1, 1]                           # image 2, pixel (1, 1), the first dual
    kc = kc.copy()
    kc[:, row] = -1
    plan.series = (RX, RZ, off, kc, m2, diag, a, tail, *rho)
    planted = plan._block_fused_general(tile)
    touched = np.zeros((6, 6), dtype=bool)
    touched[2, 2:] = True                          # row 2's pairs (upper triangle of the diagonal tile)
    touched[:3, 2] = True                          # and the pairs whose column is image 2
    assert sum(plan.series_recomputed) == touched.sum()
    ii, jj = np.nonzero(touched)
    assert np.array_equal(planted[touched], [plan._pair_general(i, j) for i, j in zip(ii, jj)])
    assert np.array_equal(planted[~touched & np.triu(np.ones((6, 6), bool))],
                          clean[~touched & np.triu(np.ones((6, 6), bool))])


def test_sample_bails_out_to_the_interpreter(monkeypatch):
    """GELU at variances ~100: more than FLAGGED_MAX of a sample's pairs are not certified, so auto
    keeps the interpreter (bit for bit backend="numpy"; a cross Gram matrix too) and an explicit
    numba refuses.  A sample of 4 inputs (SERIES_SAMPLE lowered from 16) keeps the interpreter's Gram
    matrices small: 7 images, 49 pairs > 4^2, so the sample runs."""
    from reskernels.numerics import conv
    monkeypatch.setattr(conv, "SERIES_SAMPLE", 4)
    arch = CNN(2, activation="gelu", input_var=200.0)
    X = _images(7, seed=3)
    plan = ConvGramPlan(arch, X)
    assert plan.backend == "numpy" and plan.series is None
    assert np.array_equal(gram(arch, X), gram(arch, X, backend="numpy"))
    assert ConvGramPlan(arch, X, _images(8, seed=4)).backend == "numpy"
    with pytest.raises(NotImplementedError, match="uncertified"):
        ConvGramPlan(arch, X, backend="numba")


def test_too_many_variances_keep_the_interpreter(monkeypatch):
    """More distinct pixel variances than TABLE_VARIANCES (checked before the coefficient ladder
    runs) keep the interpreter: auto bit for bit backend="numpy", an explicit numba refuses."""
    from reskernels.numerics import fc_series
    arch = ResCNN(1, 0.5, activation="tanh")
    X = _images(6)
    monkeypatch.setattr(fc_series, "TABLE_VARIANCES", 50)      # 5 distinct images x 20 pixels: 100
    assert ConvGramPlan(arch, X).backend == "numpy"
    assert np.array_equal(gram(arch, X), gram(arch, X, backend="numpy"))
    with pytest.raises(NotImplementedError, match="TABLE_VARIANCES"):
        ConvGramPlan(arch, X, backend="numba")


def test_gathered_lanes_are_the_fc_lanes_bit_for_bit():
    """The conv loop's series (coefficients gathered from the flat tables per lane) against the FC
    loop's (the columns' coefficients on contiguous lanes; itself the interpreter's series bit for
    bit, tests/numerics/test_fc_series.py) on the same tables: the same values and flags at
    correlations up to 1 - 1e-6 and variances up to 60, lanes in shuffled order."""
    from reskernels.numerics import fc_series, series_lanes
    q = series_cases.Q
    first, arrays = series_cases.tanh_tables()
    off, kc, m2, diag, a, tail = arrays
    rng = np.random.default_rng(1)
    rho = series_cases.correlations(rng, 36, 14)
    n = rho.size
    flagged = 0
    for u, RZ, QZ, S in series_cases.entry_sets(rng, first, rho):
        S[:3] = q[u]                                    # three pairs (x, x) where QZ == q[u]
        QZ[:3], RZ[:3] = q[u], first + u
        E1, E0, flag = series_cases.fc_lanes(first, u, RZ, QZ, S, arrays, lane=n)
        perm = rng.permutation(n)
        G1, G0, gflag = np.empty(n), np.empty(n), np.zeros(n, dtype=np.uint8)
        series_lanes.series_dual_gathered(first + u, RZ[perm], q[u], QZ[perm], S[perm], G1, G0, gflag, True, off,
                                          kc, m2, diag, a, tail, fc_series.LANE_DEGREES,
                                          *(np.zeros(n, dtype=np.int64) for _ in range(2)),
                                          *(np.empty(n) for _ in range(8)))
        for E, G in ((E1, G1), (E0, G0)):
            assert np.array_equal(E[perm], G, equal_nan=True)
        assert np.array_equal(flag[perm], gflag)
        assert np.all(E1[:3] == diag[0, first + u])
        flagged += int(flag.sum())
    assert flagged > 0                  # some entries are not certified (nan, flagged) on both


@pytest.mark.parametrize("plant", ["derivative tables", "rows shifted", "diagonals swapped"])
def test_planted_table_errors_fail_the_agreement(plant):
    """The agreement test can fail: the activation's and its derivative's tables swapped, every
    variance reading its neighbour's row, or the one-dimensional second moments of the smallest and the largest variance swapped
    each move the Gram matrix far beyond the tolerance."""
    arch = ResCNN(2, 0.5, activation="tanh")
    X = _images(6)
    K0 = gram(arch, X, backend="numpy")
    plan = ConvGramPlan(arch, X)
    RX, RZ, off, kc, m2, diag, a, tail, *rho = plan.series      # (no tables in rho: a pixel variance each)
    if plant == "derivative tables":
        off, kc, m2, diag = off[::-1].copy(), kc[::-1].copy(), m2[::-1].copy(), diag[::-1].copy()
    elif plant == "rows shifted":
        RX = np.where(RX > 1, RX - 1, RX)
        RZ = RX
    else:
        diag = diag.copy()
        diag[:, [1, -1]] = diag[:, [-1, 1]]
    plan.series = (RX, RZ, off, kc, m2, diag, a, tail, *rho)
    K = plan._block_fused_general((0, 6, 0, 6))
    iu = np.triu_indices(6)
    assert _rel(K[iu], K0[iu]) > 100 * _tol(arch)

"""Duals without a closed form inside the compiled FC loop (numerics/fc_series.py).

Independent routes: the numpy interpreter (``backend="numpy"``: per-tile Hermite series with its
own ladder, numerics/hermite.py, and its quadrature fallbacks), and, per entry, the interpreter's
series function itself on the same coefficient tables (bit for bit).  The two Gram routes differ
by where the coefficient ladder stops (the loop asks every variance for all correlations, the
interpreter for its tile's largest |rho|): coefficients of successive rules agree within the
ladder's check, AGREE_ATOL sqrt(E[f^2]) each, so an entry of a dual may move by
2 AGREE_ATOL sqrt(K + 1) of its scale (Cauchy-Schwarz over K + 1 <= 481 terms), and the kernel by
that much per dual; the one-dimensional second moments of the pairs (x, x) by the rule's batch
step (a few eps).
"""
import importlib

import numpy as np
import pytest

from reskernels import MLP, ResNet, activations, gram
from reskernels.numerics import fc_fused, fc_series, hermite
from reskernels.numerics.conv import InputRangeError
from reskernels.numerics.variance import NumpyContext

from . import series_cases

pytest.importorskip("numba")
Plan = importlib.import_module("reskernels.numerics.gram").FCGramPlan
EPS = np.finfo(float).eps
USER = activations.from_function(np.tanh, lambda x: 1 - np.tanh(x) ** 2, name="user_tanh")


def _tol(arch):
    """2 AGREE_ATOL sqrt(K_CAP + 1) per dual (module docstring), relative to max |K|."""
    duals = sum(getattr(m, "activation", None) is not None for m in arch.kernel_maps())
    return duals * 2 * hermite.AGREE_ATOL * np.sqrt(hermite.K_CAP + 1)


def _inputs(n, d, seed=0):
    """Standard-normal rows with a nearly parallel, a nearly antiparallel and a duplicated row."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    X[3] = X[0] + 1e-9 * rng.standard_normal(d)
    X[4] = -X[0] + 1e-7 * rng.standard_normal(d)
    X[5] = X[1]
    return X


def _rel(A, B):
    return float(np.abs(A - B).max() / np.abs(B).max())


CASES = [
    (ResNet(4, 0.5, input_var=0.01, activation="tanh"), 0),
    (ResNet(3, 0.5, input_var=1.0, activation="tanh", bias_var=0.1), 1),
    (MLP(3, activation="gelu"), 2),
    (ResNet(3, 0.5, activation=USER), 3),
    (MLP(2, activation="tanh", trained="hidden"), 4),
]


@pytest.mark.parametrize("arch,seed", CASES, ids=[a.slug for a, _ in CASES])
@pytest.mark.parametrize("kind", ["ntk", "nngp"])
def test_series_loop_agrees_with_the_interpreter(arch, seed, kind):
    """The compiled loop (default route) against the numpy interpreter on generic, nearly parallel,
    antiparallel and duplicated inputs; the loop is the route taken (its program lowered with the
    SERIES dual)."""
    X = _inputs(70, 16, seed)
    plan = Plan(arch, X, kind=kind)
    assert plan.general_program is not None
    assert fc_series.SERIES in plan.general_program.ops[:, 1]
    K = gram(arch, X, kind=kind)
    K0 = gram(arch, X, kind=kind, backend="numpy")
    assert _rel(K, K0) <= _tol(arch)
    assert np.array_equal(K, K.T)
    # the duplicated row meets the pair (x, x) rules: its entries are the diagonal's bits
    assert K[5, 5] == K[1, 1] == K[1, 5]


def test_cross_gram_and_normalised_diagonal():
    """A cross Gram matrix (X, Z) agrees with the interpreter and with the rows of the symmetric one;
    normalised, the diagonal is 1 exactly (the loop divides by what it gives on (x, x))."""
    arch = ResNet(3, 0.5, activation="tanh", bias_var=0.2)
    X = _inputs(40, 9, 5)
    Z = np.concatenate([X[:7], np.random.default_rng(6).standard_normal((20, 9))])
    K = gram(arch, X, Z)
    assert _rel(K, gram(arch, X, Z, backend="numpy")) <= _tol(arch)
    assert _rel(K[:, :7], gram(arch, X)[:, :7]) <= 8 * EPS
    N = gram(arch, X, normalize=True)
    assert np.all(np.diag(N) == 1.0)


def test_entry_series_is_the_interpreters_bit_for_bit():
    """Per entry the loop's least degree and Horner sum are those of numerics.hermite.series on the
    same coefficients kept to STORE_DEGREES: at correlations up to 1 - 1e-6 and variances up to 60,
    where entries need every stored degree, and where nothing certifies (nan, flagged); the entries
    that would need more degrees than stored are flagged (the interpreter's full rows take them)."""
    f, g, q = series_cases.F, series_cases.G, series_cases.Q
    ctx = NumpyContext(True)
    first, arrays = series_cases.tanh_tables()
    W = fc_series.STORE_DEGREES + 1
    rng = np.random.default_rng(0)
    rho = series_cases.correlations(rng, 40, 12)
    n = rho.size
    capped = 0
    for u, RZ, QZ, S in series_cases.entry_sets(rng, first, rho):
        E1, E0, flag = series_cases.fc_lanes(first, u, RZ, QZ, S, arrays)
        r = np.clip(S / np.sqrt(q[u] * QZ), -1, 1)
        for fn, E in ((f, E1), (g, E0)):
            C = fc_series._coefficients(fn, q, ctx)
            thr = hermite.TAIL_RTOL * np.sqrt(C.m2[u] * C.m2[RZ - first])
            ref, fb = np.full(n, np.nan), np.zeros(n, dtype=bool)
            hermite.series(r, np.full(n, u), RZ - first, np.ascontiguousarray(C.a[:, :W]),
                           np.ascontiguousarray(C.tail[:, :W]), thr, ref, fb)
            assert np.array_equal(np.isnan(E), fb)
            assert np.array_equal(E[~fb], ref[~fb])
            full, fb_full = np.full(n, np.nan), np.zeros(n, dtype=bool)
            hermite.series(r, np.full(n, u), RZ - first, C.a, C.tail, thr, full, fb_full)
            capped += int(np.sum(fb & ~fb_full))
        assert np.array_equal(flag.astype(bool), np.isnan(E1) | np.isnan(E0))
    assert capped > 0                   # some entries need more than the stored degrees


def test_every_variance_carries_the_degrees_its_partners_need():
    """The tables' coefficients: certified for every correlation where the ladder can, and every
    variance resolved up to the largest degree any variance of the dual needs alone at rho = 1 (capped
    at STORE_DEGREES), unless the ladder cannot lift it further; without that climb a small variance
    (kc = 11 at q ~ 0.002) left its pairs with a larger partner uncertified (27 pairs of a 90-input
    Gram matrix recomputed by the interpreter, measured)."""
    f = lambda x, xp: xp.tanh(x)
    q = np.array([0.002, 0.05, 0.3, 2.0])
    ctx = NumpyContext(True)
    plain = hermite.coefficients(f, q, ctx, np.ones(q.size))
    C = fc_series._coefficients(f, q, ctx)
    assert plain.kc[0] < fc_series.STORE_DEGREES and plain.kc.max() >= fc_series.STORE_DEGREES
    at_end = C.level >= len(hermite.STEPS)
    assert np.all((C.kc >= fc_series.STORE_DEGREES) | at_end)
    assert np.all(C.rho_cert[~at_end] >= plain.rho_cert[~at_end])


def test_uncertified_pairs_are_recomputed_by_the_interpreter():
    """Inputs in R^784 at input_var = 1 (variances ~800): the series certifies few entries, the
    loop flags their pairs and the interpreter's quadrature rules recompute them."""
    rng = np.random.default_rng(3)
    X = rng.standard_normal((12, 784))
    X[1] = X[0] + 1e-3 * rng.standard_normal(784)
    arch = MLP(2, activation="tanh")
    plan = Plan(arch, X)
    from reskernels.numerics.tiles import execute
    K = plan.finish(execute(plan))
    assert sum(plan.series_recomputed) > 0
    assert _rel(K, gram(arch, X, backend="numpy")) <= _tol(arch)


def test_table_budget_keeps_the_interpreter(monkeypatch):
    """Coefficient tables beyond TABLE_FLOATS: the interpreter runs, the same bits as backend='numpy'."""
    monkeypatch.setattr(fc_series, "TABLE_FLOATS", 100)
    arch = ResNet(2, 0.5, activation="tanh")
    X = _inputs(20, 5)
    assert Plan(arch, X).general_program is None
    assert np.array_equal(gram(arch, X), gram(arch, X, backend="numpy"))


def test_kinked_and_closed_forms_are_not_series():
    """probe: a closed form and a function given with kinks have no series dual; tanh, GELU, a user
    function without kinks have two calls (the activation and its derivative)."""
    hard = activations.from_function(lambda x: np.clip(x, -1, 1), lambda x: (abs(x) < 1) * 1.0, kinks=[-1, 1])
    assert fc_series.probe(activations.get("relu")) is None
    assert fc_series.probe(activations.get("erf")) is None
    assert fc_series.probe(hard) is None
    for act in (activations.get("tanh"), activations.get("gelu"), USER):
        calls = fc_series.probe(act)
        assert len(calls) == 2 and all(callable(fn) for fn, _ in calls)


@pytest.mark.parametrize("plant", ["derivative as activation", "rows shifted", "diagonals swapped"])
def test_planted_errors_fail_the_agreement(plant, monkeypatch):
    """The agreement test fails when the loop's inputs are wrong: the derivative's tables replaced by
    the activation's, the columns' table rows shifted by one variance, the pairs (x, x) given the
    derivative's second moment for the activation's and the other way round."""
    arch = ResNet(3, 0.5, activation="tanh", bias_var=0.1)
    X = _inputs(50, 8, 2)
    K0 = gram(arch, X, backend="numpy")
    if plant == "derivative as activation":
        calls_of = fc_series.calls_of
        monkeypatch.setattr(fc_series, "calls_of", lambda maps, ntk: [None if c is None else (c[0], c[0])
                                                                      for c in calls_of(maps, ntk)])
    elif plant == "rows shifted":
        record = fc_fused.record_variances

        def shifted(*args):
            VX, VZ, RX, RZ, arrays = record(*args)
            return VX, VZ, RX, np.maximum(RZ - 1, 1), arrays
        monkeypatch.setattr(fc_fused, "record_variances", shifted)
    else:
        arrays = fc_series.Tables.arrays

        def swapped(self):
            off, kc, m2, diag, a, tail = arrays(self)
            return off, kc, m2, diag[::-1].copy(), a, tail
        monkeypatch.setattr(fc_series.Tables, "arrays", swapped)
    assert _rel(gram(arch, X), K0) > _tol(arch)


@pytest.mark.parametrize("backend", ["auto", "numpy"])
@pytest.mark.parametrize("act", ["tanh", "gelu"])
def test_huge_inputs_raise_the_input_range_error(act, backend):
    """Variances that would ask a trapezoid rule for more than TRAPEZOID_MAX_NODES nodes (|x|^2 ~ 1e160
    here; the one-dimensional second moment's step is 0.2 / sqrt(q)): gram raises InputRangeError
    saying what to do, on both routes (numpy had raised "Maximum allowed size exceeded", naming no
    input)."""
    X = _inputs(8, 4) * 1e80
    with pytest.raises(InputRangeError, match="rescale X"):
        gram(MLP(2, activation=act), X, backend=backend)


def test_threads_and_tiles_do_not_change_the_bits():
    """The tables are built once per Gram matrix (before the tiles), so one thread or two and any
    tile size give the same bits where no pair is recomputed (generic inputs; a nearly parallel pair,
    which the interpreter recomputes with its per-tile rules, may differ at rounding level)."""
    arch = ResNet(3, 0.5, activation="tanh", bias_var=0.01, input_var=0.01)
    X = np.random.default_rng(8).standard_normal((90, 7))
    plan = Plan(arch, X)
    from reskernels.numerics.tiles import execute
    K = plan.finish(execute(plan))                   # one tile
    assert sum(plan.series_recomputed) == 0
    assert np.array_equal(K, gram(arch, X, n_threads=1, tile=16))
    assert np.array_equal(K, gram(arch, X, n_threads=2, tile=16))
    assert np.array_equal(K, gram(arch, X, n_threads=2, tile=40, memory_budget=2 ** 16))


def test_a_sample_with_many_uncertified_pairs_keeps_the_interpreter():
    """Above 4 SAMPLE^2 pairs gram first runs the loop on a sample of the inputs: a ResNet(10) GELU at
    input_var = 1 (variances growing to ~100) leaves more than FLAGGED_MAX of its pairs uncertified
    (its coefficients need more degrees than a rule carries at |rho| >~ 0.9), so the interpreter takes
    the Gram matrix (the same bits as backend='numpy'); tanh at input_var = 0.01 keeps the loop."""
    X = np.random.default_rng(0).standard_normal((2 * fc_series.SAMPLE + 1, 16))
    gelu = ResNet(10, 0.5, activation="gelu")
    ix = np.unique(np.linspace(0, X.shape[0] - 1, fc_series.SAMPLE).astype(int))
    xs = np.ascontiguousarray(X[ix])
    prog = Plan(gelu, X[:8]).general_program
    frac = fc_fused.flagged_fraction(prog, fc_series.calls_of(gelu.kernel_maps(), True), xs, xs, True, True)
    assert frac > fc_series.FLAGGED_MAX
    assert Plan(gelu, X).general_program is None
    assert np.array_equal(gram(gelu, X), gram(gelu, X, backend="numpy"))
    assert Plan(gelu, X, X[::-1].copy()).general_program is None            # a cross Gram matrix's sample
    tanh = ResNet(10, 0.5, activation="tanh", input_var=0.01)
    assert Plan(tanh, X).general_program is not None


def test_a_threshold_that_overflows_certifies_nothing():
    """A user function with E[f^2] ~ 1e160 (1e80 tanh): the truncation target 2^-53 sqrt(E[f(u)^2] E[f(v)^2])
    overflows to inf, which every degree would meet (the series would stop at a_0(qx) a_0(qz) = 0 for an
    odd f, whatever rho: found by a review); such entries are flagged and the interpreter's quadrature
    takes them, as there."""
    big = activations.from_function(lambda x: 1e80 * np.tanh(x), lambda x: 1e80 * (1 - np.tanh(x) ** 2), name="big")
    X = _inputs(8, 3, 9)
    for kind in ("nngp", "ntk"):
        K = gram(MLP(1, activation=big), X, kind=kind)
        K0 = gram(MLP(1, activation=big), X, kind=kind, backend="numpy")
        assert _rel(K, K0) <= _tol(MLP(1, activation=big))


def test_probe_takes_only_plain_hermite_hooks():
    """An NNGP needs no derivative (a user function without one takes the loop for the NNGP and leaves
    the NTK's error to the interpreter); a hook that rescales what gaussian_expectation returns, or asks
    at other arguments, is not a plain Hermite dual and keeps the interpreter."""
    from dataclasses import replace
    bare = activations.from_function(np.tanh, name="bare")
    assert fc_series.probe(bare, ntk=False) is not None and fc_series.probe(bare, ntk=True) is None
    tanh = activations.get("tanh")
    scaled = replace(tanh, key=("scaled",), dual=lambda qx, qz, S, xp, ntk=True: tuple(
        None if e is None else 2 * e for e in tanh.dual(qx, qz, S, xp, ntk)))
    moved = replace(tanh, key=("moved",), dual=lambda qx, qz, S, xp, ntk=True: tanh.dual(qx + 1, qz + 1, S, xp, ntk))
    assert fc_series.probe(scaled) is None and fc_series.probe(moved) is None
    X = _inputs(10, 4)
    assert np.array_equal(gram(MLP(2, activation=scaled), X), gram(MLP(2, activation=scaled), X, backend="numpy"))

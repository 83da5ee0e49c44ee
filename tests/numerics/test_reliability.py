"""Reliability at the edges (issue 16, items 3 and 8): extreme input scales, the memory budget,
certified digits, eigenvalues at large d and for large jobs, compile notices, timeouts.

Each test states the behaviour it pins down and fails on the behaviour found before the fix."""
from __future__ import annotations

import math
import tracemalloc
import warnings

import mpmath
import numpy as np
import pytest

from reskernels import CNN, MLP, ResCNN, ResNet, gram
from reskernels.numerics import conv as conv_mod
from reskernels.numerics.conv_fused import available as numba_available
from reskernels.numerics.pointwise import kernel_mp

EPS = np.finfo(float).eps

CPU_BACKENDS = ["numpy"] + (["numba"] if numba_available() else [])
HOMOGENEOUS_CONV = [CNN(2), ResCNN(2, 0.5), CNN(2, readout="flatten"), CNN(3, readout="center", stem_size=3)]


def _images(n=3, seed=0):
    return np.random.default_rng(seed).standard_normal((n, 4, 4, 2))


def _rel(a, b):
    return float(np.max(np.abs(a - b) / np.abs(b)))


# ---- 1. conv kernels at extreme input scales ------------------------------------------------------

@pytest.mark.parametrize("backend", CPU_BACKENDS)
@pytest.mark.parametrize("arch", HOMOGENEOUS_CONV, ids=lambda a: a.slug)
@pytest.mark.parametrize("scale", [1e77, 1e155, 1e200, 1e-80, 1e-100, 1e-150, 1e-160])
def test_conv_normalized_is_scale_invariant(arch, backend, scale):
    """ReLU without biases is positively homogeneous: the normalised kernel of s X equals that of X.
    Before: 1e77..1e200 gave all-NaN, 1e-100..1e-160 inf/-inf, 1e-80 errors of 1e-4.  Rounding s X
    perturbs each entry by <= eps/2, a few eps in the kernel: 1e-13 leaves room for depth."""
    X, Z = _images(), _images(2, 5)
    for Zs in (None, Z):
        want = gram(arch, X, Zs, normalize=True, backend=backend)
        got = gram(arch, X * scale, None if Zs is None else Zs * scale, normalize=True, backend=backend)
        assert np.all(np.isfinite(got))
        assert _rel(got, want) < 1e-13


def test_store_of_unscaled_conv_blocks_is_refused(tmp_path):
    """Conv blocks are now those of rescaled inputs: a store written before (its meta.json names the
    bare spec) is refused as a different job rather than resumed with blocks of another scale."""
    import json
    X = _images() * 8.0
    gram(CNN(2), X, backend="numpy", store=tmp_path / "s")
    meta = tmp_path / "s" / "meta.json"
    ident = json.loads(meta.read_text())
    assert "powers of two" in ident["spec"]
    ident["spec"] = repr(CNN(2))                # what the previous version wrote
    meta.write_text(json.dumps(ident))
    with pytest.raises(ValueError, match="different job"):
        gram(CNN(2), X, backend="numpy", store=tmp_path / "s")


@pytest.mark.parametrize("backend", CPU_BACKENDS)
@pytest.mark.parametrize("arch", HOMOGENEOUS_CONV, ids=lambda a: a.slug)
@pytest.mark.parametrize("scale", [1e77, 1e-80, 1e-100, 1e-150])
def test_conv_unnormalized_is_homogeneous(arch, backend, scale):
    """K(s x, s z) = s^2 K(x, z) wherever s^2 K is a normal float64 (before: 1e-100..1e-150 lost every
    digit, 1e77 overflowed)."""
    X, Z = _images(3, 1), _images(2, 2)
    want = gram(arch, X, Z, backend=backend) * scale * scale
    got = gram(arch, X * scale, Z * scale, backend=backend)
    assert _rel(got, want) < 1e-13


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_conv_power_of_two_scaling_is_bitwise(backend):
    """Scaling by powers of two is exact, so the rescaled engine returns K(2^a X, 2^b Z) = 2^(a+b) K
    bit for bit (the layer scale and the input exponents are applied apart, never rounded twice)."""
    X, Z = _images(3, 3), _images(2, 4)
    base = gram(ResCNN(2, 0.5), X, Z, backend=backend)
    got = gram(ResCNN(2, 0.5), X * 2.0 ** 600, Z * 2.0 ** -1000, backend=backend)
    assert np.array_equal(got, base * 2.0 ** -400)


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_conv_true_overflow_raises(backend):
    """s^2 K beyond float64 (s = 1e155) is an error naming the cause, never inf or NaN."""
    with np.errstate(all="ignore"), pytest.raises(FloatingPointError, match="exceeds float64"):
        gram(CNN(2), _images() * 1e155, backend=backend)


@pytest.mark.parametrize("arch", [CNN(2, bias_var=0.1), CNN(2, activation="erf"),
                                  MLP(2, bias_var=0.1), MLP(2, activation="erf")], ids=lambda a: a.slug)
@pytest.mark.parametrize("normalize", [False, True])
def test_non_homogeneous_overflow_names_x(arch, normalize):
    """Biases or a non-homogeneous activation forbid rescaling: inputs too large for float64 raise a
    ValueError naming X (and the reason), never a silent NaN."""
    X = _images() if arch.is_conv else np.random.default_rng(0).standard_normal((3, 5))
    with np.errstate(all="ignore"), pytest.raises(ValueError, match=r"X too large.*not positively homogeneous"):
        gram(arch, X * 1e200, normalize=normalize)


@pytest.mark.parametrize("arch", [CNN(2, activation="erf"), MLP(2, activation="erf")], ids=lambda a: a.slug)
def test_non_homogeneous_underflow_names_x(arch):
    """normalize=True where K(x, x) underflows (erf, |x| ~ 1e-200) names X[0], not 'a zero input'."""
    X = _images() if arch.is_conv else np.random.default_rng(0).standard_normal((3, 5))
    with pytest.raises(ValueError, match=r"X\[0\] underflows"):
        gram(arch, X * 1e-200, normalize=True)


def test_fc_tiny_scale_times_large_norms():
    """MLP(1080, weight_var=1) has diagonal scale 2^-1080 (below float64) but on inputs of norm 5e149
    the kernel (~1e-23) is representable: before, all zeros.  Reference: kernel_mp times the norms;
    tolerance the contract's 50 eps depth."""
    arch = MLP(1080, weight_var=1.0)
    X = np.array([[3e149, 4e149], [4e149, -3e149]])
    for kind in ("ntk", "nngp"):
        K = gram(arch, X, kind=kind)
        with mpmath.workdps(30):
            for i, j in ((0, 0), (0, 1)):
                t = (1, 0)[i != j]            # the rows are orthogonal, of norm 5e149 each
                want = kernel_mp(arch, t, kind=kind, dps=20) * mpmath.mpf(5e149) ** 2
                assert abs(K[i, j] - want) <= 50 * EPS * 1080 * abs(want), (kind, i, j, K[i, j], want)


# ---- 2. the memory budget ------------------------------------------------------------------------

def _traced_beyond_output(fn):
    fn()                                  # warm-up: lazy imports are not the tiles' memory
    tracemalloc.start()
    try:
        K = fn()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return peak - K.nbytes


@pytest.mark.parametrize("use_store", [False, True])
def test_fc_memory_budget_is_kept(tmp_path, use_store):
    """Beyond the output, a Gram job allocates at most memory_budget (+ 1 MiB for the inputs' copies
    and bookkeeping).  Before, every finished tile stayed referenced by its future until the end: a
    second copy of the output (n = 1200: 11 MiB over a 4 MiB budget)."""
    X = np.random.default_rng(0).standard_normal((1200, 10))
    budget = 4 * 2**20
    counter = iter(range(100))

    def run():
        kw = {"store": str(tmp_path / f"s{next(counter)}")} if use_store else {}
        return gram(ResNet(10, 0.5), X, memory_budget=budget, n_threads=2, **kw)
    beyond = _traced_beyond_output(run)
    assert beyond <= budget + 2**20, beyond / 2**20


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_conv_memory_budget_is_kept(backend):
    """The conv plan sizes its tiles from the budget too (numpy: ~20 tensor temporaries per entry);
    normalisation and the final scaling run a block of rows at a time (no n x m temporaries)."""
    X = np.random.default_rng(1).standard_normal((300, 4, 4, 2))
    budget = 4 * 2**20
    for normalize in (False, True):
        beyond = _traced_beyond_output(lambda: gram(CNN(2), X, normalize=normalize, backend=backend,
                                                    memory_budget=budget, n_threads=2))
        assert beyond <= budget + 2**20, (normalize, beyond / 2**20)


# ---- 6. conform: a kernel call that never returns --------------------------------------------------

def test_conform_abandons_a_kernel_call_that_never_returns():
    """max_seconds is checked between calls; call_timeout (default: max_seconds) bounds one call.
    Before, a kernel that never returns hung conform forever."""
    import threading
    import time

    from reskernels.proofs_check.conformance import conform
    release = threading.Event()
    calls = []

    def hangs(X, Z):
        calls.append(1)
        release.wait(60)                       # "never" returns (released when the test ends)
        return np.zeros((len(X), len(Z)))
    t0 = time.perf_counter()
    try:
        report = conform(hangs, MLP(2), properties=["symmetric", "agrees_with_gram"], max_seconds=0.5,
                         max_examples=5)
    finally:
        release.set()
    assert time.perf_counter() - t0 < 10
    text = str(report)
    assert "did not return within call_timeout=0.5 s" in text, text
    assert len(calls) == 1                     # the kernel is not called again after a hang
    with pytest.raises(ValueError, match="call_timeout"):
        conform(hangs, MLP(2), call_timeout=0)


# ---- 3. certified digits --------------------------------------------------------------------------

@pytest.mark.parametrize("dps", [-20, 0, 2.5, True])
def test_kernel_mp_refuses_bad_dps(dps):
    with pytest.raises(ValueError, match="dps"):
        kernel_mp(MLP(2), 0.5, dps=dps)


def _step_kernel(t):
    """exp(t) plus a unit step on t > 1 - 1e-9 (theta < 4.5e-5): narrower than every Gauss-Legendre
    node spacing at the end of [0, pi]."""
    return mpmath.exp(t) + (1 if t > 1 - mpmath.mpf("1e-9") else 0)


def test_eigenvalues_refuses_a_feature_between_the_nodes():
    """Both Gauss-Legendre passes step over the step and agree; before, mu_k came back 'certified' with
    relative error 7e-9.  The independent tanh-sinh value of mu_0 differs by ~5e-10 -> PrecisionError."""
    from reskernels.numerics.spectra import PrecisionError, eigenvalues
    with pytest.raises(PrecisionError, match="narrower than the quadrature nodes"):
        eigenvalues(_step_kernel, d=3, ks=range(0, 6), dps=20)


@pytest.mark.parametrize("d", [3, 7])
def test_eigenvalues_independent_check_passes_analytic_callables(d):
    """The check must not refuse kernels in the certified class (analytic in theta): exp(t) has the
    closed form mu_k = Gamma(d/2) (2/1)^(d/2-1) I_(k+d/2-1)(1) (Funk-Hecke of e^t on S^(d-1))."""
    from reskernels.numerics.spectra import eigenvalues
    mu = eigenvalues(mpmath.exp, d=d, ks=range(0, 12), dps=25)
    with mpmath.workdps(40):
        nu = mpmath.mpf(d) / 2 - 1
        for k, m in enumerate(mu):
            want = mpmath.gamma(nu + 1) * 2 ** nu * mpmath.besseli(k + nu, 1)
            assert abs(m - want) <= mpmath.mpf(10) ** -25 * abs(want), (k, m, want)


def test_unnormalized_deep_diagonal_error_bound():
    """What README states: the diagonal is the closed form times the scale s = exp(log_diag_scale),
    whose float64 evaluation costs relative error <= (|ln s| + depth + 4) eps (6.9e-14 measured at
    |ln s| = 693; exp turns the argument's absolute rounding into relative error)."""
    x = np.array([[0.6, 0.8]])
    for arch in (ResNet(1000, 1.0), MLP(1000, weight_var=1.0), ResNet(300, 1.3, weight_var=1.7)):
        bound = (abs(arch.log_diag_scale()) + arch.depth + 4) * EPS
        for kind in ("ntk", "nngp"):
            got = gram(arch, x, kind=kind)[0, 0]
            want = kernel_mp(arch, 1, kind=kind, dps=30)
            assert abs((mpmath.mpf(got) - want) / want) <= bound, (arch.slug, kind)


# ---- 4. eigenvalues at the edges ------------------------------------------------------------------

def _mu_by_mpmath_quad(f, d, k, dps):
    """mu_k = c_d int_-1^1 f(t) P_k(t) (1 - t^2)^((d-3)/2) dt by plain tanh-sinh in t (an independent
    route: no Gauss-Legendre, the Gegenbauer polynomial from mpmath), split where the weight lives."""
    with mpmath.workdps(dps + 10):
        lam = mpmath.mpf(d - 2) / 2
        cd = mpmath.gamma(mpmath.mpf(d) / 2) / (mpmath.sqrt(mpmath.pi) * mpmath.gamma(mpmath.mpf(d - 1) / 2))
        norm = mpmath.gegenbauer(k, lam, 1)
        w = 8 / mpmath.sqrt(d)
        return cd * mpmath.quad(lambda t: f(t) * mpmath.gegenbauer(k, lam, t) / norm * (1 - t * t) ** ((d - 3) / mpmath.mpf(2)),
                                [-1, -w, 0, w, 1])


def test_eigenvalues_large_dimension():
    """d = 1000, k <= 2, 20 digits: the weight sin^998 is a Gaussian of width ~0.03 about pi/2.  Before:
    780 working digits (the k^-(d+2) rule) and a node count blind to d -> PrecisionError after 69 s.
    Now the node count grows like sqrt(d work) and the digits follow N(d, k): first pass certifies."""
    from reskernels.numerics.spectra import cost_estimate, eigenvalues
    est = cost_estimate(range(0, 3), dps=20, d=1000)
    assert est["work_dps"][0] < 60
    mu, info = eigenvalues(mpmath.exp, d=1000, ks=range(0, 3), dps=20, return_info=True)
    assert info.retries == 0
    for k, m in enumerate(mu):
        want = _mu_by_mpmath_quad(mpmath.exp, 1000, k, 20)
        assert abs(m - want) <= mpmath.mpf(10) ** -20 * abs(want), (k, m, want)


@pytest.mark.parametrize("kw, what", [(dict(ks=range(0, 100001), dps=20), "GiB of memory"),
                                      (dict(ks=range(0, 11), dps=5000), "hours of computation")])
def test_eigenvalues_refuses_absurd_jobs_up_front(kw, what):
    """k up to 1e5 (525 GiB estimated) and dps = 5000 (17 hours estimated) are refused before any work
    (the defaults max_memory = 8 GiB, max_seconds = 3600), the estimate in the message."""
    import time

    from reskernels.numerics.spectra import eigenvalues
    t0 = time.perf_counter()
    with pytest.raises(ValueError, match=what):
        eigenvalues(MLP(2), **kw)
    assert time.perf_counter() - t0 < 5


# ---- 5. compile notices ---------------------------------------------------------------------------

def test_compile_notice_appears_once(monkeypatch):
    """A CompileNotice (a UserWarning, silenceable by category) precedes a numba compile, once per
    process however many gram calls (and threads) follow; here the compile is simulated."""
    from reskernels.numerics import tiles
    if not numba_available():
        pytest.skip("numba is not installed")
    monkeypatch.setattr(tiles, "_NOTICED", set())
    monkeypatch.setattr(conv_mod, "numba_will_compile", lambda: True)
    X = _images(4)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(3):
            gram(CNN(2), X, backend="numba")
    notices = [w for w in caught if issubclass(w.category, tiles.CompileNotice)]
    assert len(notices) == 1 and "compiling the numba conv kernel" in str(notices[0].message)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warnings.filterwarnings("ignore", category=tiles.CompileNotice)
        monkeypatch.setattr(tiles, "_NOTICED", set())
        gram(CNN(2), X, backend="numba")           # silenced: no error raised


def test_numba_compile_is_detected(tmp_path):
    """numba_will_compile: True in a process whose numba cache directory is empty (nothing compiled
    yet, nothing on disk), False here once the loop has run."""
    import subprocess
    import sys
    if not numba_available():
        pytest.skip("numba is not installed")
    gram(CNN(2), _images(2), backend="numba")
    assert not conv_mod.numba_will_compile()
    env = dict(__import__("os").environ, NUMBA_CACHE_DIR=str(tmp_path))
    code = "from reskernels.numerics.conv import numba_will_compile as w; print(w())"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120,
                         cwd=str(__import__("pathlib").Path(__file__).resolve().parents[2]))
    assert out.stdout.strip() == "True", out.stderr


def test_eigenvalues_node_notice_once(monkeypatch):
    """The first eigenvalues call that builds a large node rule says so once (CompileNotice)."""
    from reskernels.numerics import spectra, tiles
    from reskernels.numerics.spectra import eigenvalues
    monkeypatch.setattr(tiles, "_NOTICED", set())
    monkeypatch.setattr(spectra, "_RULES_BUILT", set())
    monkeypatch.setattr(spectra, "_NOTICE_NODES", 100)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        eigenvalues(MLP(1), d=3, ks=range(0, 4), dps=10)
        eigenvalues(MLP(1), d=3, ks=range(0, 8), dps=12)
    notices = [w for w in caught if issubclass(w.category, tiles.CompileNotice)]
    assert len(notices) == 1 and "Gauss-Legendre rule" in str(notices[0].message)


def test_conv_normalised_kernel_survives_huge_diagonals():
    """A monomial(2) CNN(6) with input_var 200 has K(x, x) ~ 1e199: dx * dz overflowed and the
    normalised row became 0 (numerics.tiles.norm_scale takes sqrt(dx) sqrt(dz) there); the diagonal
    stays 1 exactly and |K| <= 1."""
    import warnings
    from reskernels import activations as A
    X = np.random.default_rng(0).standard_normal((12, 4, 4, 2))
    arch = CNN(6, activation=A.monomial(2), input_var=100.0, readout="flatten")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        raw = np.diag(gram(arch, X, kind="nngp"))
        K = gram(arch, X, kind="nngp", normalize=True)
    assert np.max(raw) ** 2 == np.inf
    assert np.all(np.isfinite(K)) and np.all(np.diag(K) == 1.0) and np.max(np.abs(K)) <= 1 + 1e-12

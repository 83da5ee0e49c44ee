"""Bugs planted in the *computation* change verdicts.

``test_claims_can_fail.py`` feeds wrong expected values to correct computations.  Here the
expectations are the defaults and a bug is planted in the engine (by monkeypatch, undone after
each test): a wrong tap set in the conv patch operator, a skipped patch step in the compiled
backend only, a wrong constant in a dual activation, a wrong Funk-Hecke constant in the spectral
engine, a wrong multiplicity, the near-parallel snap threshold raised a thousandfold.  For each,
the listed claims must change their verdict (from their default, ``DEFAULT``).

Table (bug -> claims whose verdict changes; the numbers are in each test's comment):

* wrong tap set (dilated taps -2, 0, 2)        -> BARZILAI-DIAG, BARZILAI-COND-NTK: inconclusive
  (engine vs numerics.reference off by ~1e13 x the 16 (depth+1) eps tolerance)
* the same, in the spectra's route only        -> BARZILAI-LOCAL, GEIFMAN-LOCALITY: inconclusive
  (multi_dot_kernel vs numerics.reference; before, their tables read it as "fails")
* skipped patch step, numba backend only       -> BARZILAI-DIAG: inconclusive (engine vs reference
  and numpy vs numba)
* Phi0 of the numpy dual x (1 + 1e-9)          -> BARZILAI-DIAG: inconclusive (numpy vs numba ~1e5 x tol)
* Funk-Hecke constant off by 1e-6 (relative)   -> BIETTI-PARITY, BIETTI-ENDPOINT, BIETTI-DEEP-SHALLOW:
  fails (absolute checks: 1.0e-6 against 1e-18 / 1e-18 / ~5e-11)
* multiplicity N(d, 7) off by one              -> BIETTI-ENDPOINT, BIETTI-DEEP-SHALLOW: fails
  (the addition theorem misses by 5.7e-5 against ~6e-11)
* snap threshold x 1000 (8 -> 8000 ulps)       -> NUM-RHO1: fails (near-duplicate error 1.3e-6 against
  256 eps / theta_min = 8.6e-8)
* the exact kernel 20% off under the finite-width Monte Carlo claims -> LITTWIN-DENSENET,
  LITTWIN-CV-RESNET: inconclusive (their sample means of Theta(x, x) miss it)
"""
import inspect

import pytest

from reskernels.proofs_check.registry import load_all

REG = load_all()

# the verdicts with the defaults and a correct engine (test_claims_can_fail.py checks them)
DEFAULT = {"BARZILAI-DIAG": "holds-in-scope", "BARZILAI-COND-NTK": "fails", "BIETTI-PARITY": "holds",
           "BIETTI-ENDPOINT": "holds", "BIETTI-DEEP-SHALLOW": "holds", "NUM-RHO1": "holds",
           "BARZILAI-LOCAL": "holds-in-scope", "GEIFMAN-LOCALITY": "holds"}


def changed(cids):
    """{claim: (default, planted)} for every claim whose verdict differs from its default."""
    out = {}
    for cid in cids:
        v = REG[cid].run("quick")
        if v.status != DEFAULT[cid]:
            out[cid] = (DEFAULT[cid], v.status)
    return out


@pytest.fixture
def fresh_spectra(monkeypatch):
    """The claim helpers cache spectra per process: start each planted run from an empty cache."""
    from reskernels.proofs_check import common
    monkeypatch.setattr(common, "_SPECTRA", {})
    monkeypatch.setattr(common, "_TORI", {})


def test_wrong_tap_set(monkeypatch):
    """The patch operator averages over dilated taps (-2, 0, 2) instead of (-1, 0, 1), both backends.
    The multi-sphere diagonals cannot see it; the engine-vs-reference check on 8-pixel signals can."""
    from reskernels.numerics import pixel_maps
    right = pixel_maps.taps

    def dilated(q, spatial_dims, axis_len):
        return [2 * d for d in right(q, spatial_dims, axis_len)]

    monkeypatch.setattr(pixel_maps, "taps", dilated)
    got = changed(["BARZILAI-DIAG", "BARZILAI-COND-NTK"])
    assert set(got) == {"BARZILAI-DIAG", "BARZILAI-COND-NTK"}, got
    assert all(new == "inconclusive" for _, new in got.values()), got


def test_wrong_tap_set_in_the_spectra_route_only(monkeypatch, fresh_spectra):
    """The pixel interpreter behind numerics.multisphere.multi_dot_kernel (the F(t_1, ..., t_P) that the
    torus and ray spectra integrate) takes dilated taps, while ``gram`` stays right.  Before the
    engine check compared that route too, BARZILAI-LOCAL and GEIFMAN-LOCALITY read the planted spectra
    as the paper's claim failing; now they distrust them."""
    import types

    from reskernels.numerics import multisphere, pixel_maps
    shim = types.SimpleNamespace(**vars(pixel_maps))
    shim.taps = lambda q, spatial_dims, axis_len: [2 * d for d in pixel_maps.taps(q, spatial_dims, axis_len)]
    real = multisphere._compiled_multi_dot.__wrapped__

    def planted(arch, P, kind, acos):
        multisphere._px = shim
        try:
            return real(arch, P, kind, acos)
        finally:
            multisphere._px = pixel_maps
    monkeypatch.setattr(multisphere, "_compiled_multi_dot", planted)
    got = changed(["BARZILAI-LOCAL", "GEIFMAN-LOCALITY"])
    assert got == {"BARZILAI-LOCAL": ("holds-in-scope", "inconclusive"),
                   "GEIFMAN-LOCALITY": ("holds", "inconclusive")}, got


def _planted_numba_block():
    """The compiled block of numerics.conv_fused with the block's ``B = P p1`` patch replaced by a copy."""
    numba = pytest.importorskip("numba")
    from reskernels.numerics import conv_fused
    src = inspect.getsource(conv_fused.block.py_func).replace("@_jit\n", "")
    line = "patch(p1, B, tmp, th, tw, H, W)"
    assert src.count(line) == 1, "the planted line moved; update the test"
    src = src.replace(line, "B[:, :] = p1")
    ns = dict(vars(conv_fused))
    exec(compile(src, "<planted conv_fused.block>", "exec"), ns)
    return numba.njit(nogil=True, fastmath=False, error_model="numpy")(ns["block"])


def test_skipped_patch_step_in_the_numba_backend(monkeypatch):
    """Only the compiled backend (the default) skips the patch of Phi1 in every residual block; the
    numpy backend stays right."""
    from reskernels.numerics import conv_fused
    monkeypatch.setattr(conv_fused, "block", _planted_numba_block())
    got = changed(["BARZILAI-DIAG"])
    assert got == {"BARZILAI-DIAG": ("holds-in-scope", "inconclusive")}, got


def test_wrong_constant_in_a_dual(monkeypatch):
    """Phi0 of the numpy interpreter's dual activation scaled by 1 + 1e-9 (the pixel variances, which
    every backend takes from that interpreter, use Phi1 only and stay right): the numpy backend's NTK
    entries move by ~1e-9, the compiled backend's do not."""
    from reskernels.numerics import pixel_maps
    right = pixel_maps.phi

    def wrong(*a, **k):
        p1, p0 = right(*a, **k)
        return p1, p0 * (1 + 1e-9)

    monkeypatch.setattr(pixel_maps, "phi", wrong)
    pytest.importorskip("numba")          # the numpy-vs-numba comparison is what sees it
    got = changed(["BARZILAI-DIAG"])
    assert got == {"BARZILAI-DIAG": ("holds-in-scope", "inconclusive")}, got


def test_wrong_funk_hecke_constant(monkeypatch, fresh_spectra):
    """Every eigenvalue of the certified engine scaled by 1 + 1e-6 (a wrong c_d): slopes and ratios at
    the 1e-3 level cannot see it, the absolute checks can."""
    from reskernels.numerics import spectra
    right = spectra._one_pass
    monkeypatch.setattr(spectra, "_one_pass", lambda *a: [m * (1 + 1e-6) for m in right(*a)])
    got = changed(["BIETTI-PARITY", "BIETTI-ENDPOINT", "BIETTI-DEEP-SHALLOW"])
    assert set(got) == {"BIETTI-PARITY", "BIETTI-ENDPOINT", "BIETTI-DEEP-SHALLOW"}, got


def test_wrong_multiplicity(monkeypatch, fresh_spectra):
    """N(d, 7) off by one: the addition theorem sum_k N(d,k) mu_k = K(1) no longer closes."""
    from reskernels.theory import harmonics
    right = harmonics.multiplicity
    monkeypatch.setattr(harmonics, "multiplicity", lambda d, k: right(d, k) + (1 if k == 7 else 0))
    got = changed(["BIETTI-ENDPOINT", "BIETTI-DEEP-SHALLOW"])
    assert set(got) == {"BIETTI-ENDPOINT", "BIETTI-DEEP-SHALLOW"}, got


def test_snap_threshold_raised_a_thousandfold(monkeypatch):
    """rho within 8000 (layer + 1) ulps of 1 taken as 1 (instead of 8): near-duplicate conv pairs at
    pixel noise 1e-6 go from ~3e-11 to ~1e-6 relative error."""
    from reskernels.numerics import conv, pixel_maps
    monkeypatch.setattr(pixel_maps, "SNAP_ULPS", pixel_maps.SNAP_ULPS * 1000)
    monkeypatch.setattr(conv, "_SNAP_ULPS", conv._SNAP_ULPS * 1000)
    got = changed(["NUM-RHO1"])
    assert got == {"NUM-RHO1": ("holds", "fails")}, got


def test_barzilai_decay_has_a_fail_path():
    """BARZILAI-DECAY fails (not merely 'inconclusive') when the residual kernel's eigenvalues are
    claimed to decay like the other law: the polynomial-decay part decides on rays with >= 5 points."""
    v = REG["BARZILAI-DECAY"].run("quick", expect=dict(model="exponential"))
    assert v.status == "fails", (v.status, v.summary)


def test_wrong_exact_kernel_under_the_finite_width_claims(monkeypatch):
    """The exact NTK behind the finite-width claims 20% too large (a wrong constant in the engine's
    kernel): their sample means of Theta(x, x) miss it, and the four finite-width claims no longer trust
    their CV^2 comparisons (inconclusive, not a finding about the paper)."""
    from reskernels.proofs_check.claims import littwin
    real = littwin.gram
    monkeypatch.setattr(littwin, "gram", lambda *a, **k: 1.2 * real(*a, **k))
    for cid in ("LITTWIN-DENSENET", "LITTWIN-CV-RESNET", "LITTWIN-MLP-DEPTH", "LITTWIN-DENSENET-PARAMS"):
        v = REG[cid].run("quick")
        assert v.status == "inconclusive" and "mean NTK disagrees" in v.summary, (cid, v.status, v.summary)


def test_wrong_deep_limit_n2(monkeypatch):
    """N2 replaced by the normalised MLP(2) NTK (a wrong limit, as from a wrong dual constant in the
    engine's N2): HUANG-RESNET-STABLE's closed-form check of N2 and its rate check both miss, and the
    claim no longer holds."""
    from reskernels.numerics import limits
    from reskernels.proofs_check.claims import huang
    from reskernels.theory import MLP
    wrong = limits.normalized_kernel(MLP(2))
    monkeypatch.setattr(huang, "n2", wrong)
    monkeypatch.setattr(limits, "n2", wrong)
    v = REG["HUANG-RESNET-STABLE"].run("quick")
    missed = [m.name for m in v.measurements if not m.passed]
    assert v.status == "fails" and any("closed form" in n for n in missed), (v.status, missed)


@pytest.mark.parametrize("cid,module,name,scale", [
    ("TIRER-NTK-FORMULA", "tirer", "gram", 1 + 1e-9),            # inside the 8-decimal table's tolerance
    ("ARORA-FC-NTK", "background", "gram", 1 + 1e-9),            # the other rows are sympy only
    ("HUANG-FFNET-DEGENERATE", "huang", "normalized_kernel", None)])
def test_tiny_engine_error_seen_only_by_the_independent_route(monkeypatch, cid, module, name, scale):
    """An engine error far below a frozen table's printed digits (1e-9 relative; 1e-7 absolute at t = 0 for the
    normalised deep FC-NTK, inside the table's 5e-6): the table rows pass, the comparison with an independent
    route (the conv reference with filter_size 1; the sympy kernel; the mpmath reference) fails, and the claim
    with it."""
    import importlib
    mod = importlib.import_module(f"reskernels.proofs_check.claims.{module}")
    real = getattr(mod, name)
    if scale is not None:
        monkeypatch.setattr(mod, name, lambda *a, **k: scale * real(*a, **k))
    else:
        monkeypatch.setattr(mod, name, lambda arch, *a, **k: (lambda f: (lambda t: f(t) + 1e-7))(real(arch, *a, **k)))
    v = REG[cid].run("quick")
    failed = [m.name for m in v.measurements if not m.passed]
    assert v.status == "fails" and len(failed) == 1, (v.status, failed)
    assert any(w in failed[0] for w in ("reference", "sympy kernel", "mpmath")), failed


def test_belfer_decay_sees_a_wrong_rate_in_the_spectrum(monkeypatch):
    """BELFER-DECAY's wrong expectation (a shifted exponent) only meets the exact law; here the computed
    spectrum decays faster by k^-0.1 (a planted error in the eigenvalues): the certified slopes leave the
    law's and the claim fails on that row."""
    import mpmath

    from reskernels.proofs_check import common
    real = common.spectrum
    monkeypatch.setattr(common, "spectrum", lambda *a, **k: [m * mpmath.mpf(max(i, 1)) ** mpmath.mpf("-0.1")
                                                            for i, m in enumerate(real(*a, **k))])
    v = REG["BELFER-DECAY"].run("quick")
    failed = [m.name for m in v.measurements if not m.passed]
    assert v.status == "fails" and any(n.startswith("log-log slopes") for n in failed), (v.status, failed)


def test_window_rounding_gate_refuses_a_proxy_above_its_bound():
    """GEIFMAN-DECAY's and BARZILAI-DECAY's shared gate (proofs_check.common.window_rounding_gate) records one
    row per case and returns False, with that row failed, when the rounding proxy exceeds at_most (a bound
    of 1e-9 eps lambda_0, below any float64 sum), True under the claims' own bound."""
    pytest.importorskip("numba")
    from reskernels.proofs_check.common import window_rounding_gate
    from reskernels.theory import CNN

    class Rows:
        def __init__(self):
            self.rows = []

        def add(self, *row):
            self.rows.append(row)
    arch = CNN(3, readout="center")
    for at_most, want in ((1e-9, False), (1e-3, True)):
        v = Rows()
        got = window_rounding_gate(v, [("ntk w", arch, "ntk"), ("nngp w", arch, "nngp")],
                                   dict(N=12, kmax=4, at_most=at_most), 0.01, P=5)
        assert got is want and [r[3] for r in v.rows] == [want, want], (at_most, v.rows)
        assert all(0 < r[1] for r in v.rows) and v.rows[0][0].startswith("ntk w: rounding")

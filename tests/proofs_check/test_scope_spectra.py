"""Scope maps of Barzilai's spectral claims (proofs_check/scopes/spectra.py): each map evaluated at a
cheap point against numbers computed here by another route, and a planted error in what the map
calls that flips the sign of its margin."""
from __future__ import annotations

import math

import numpy as np
import pytest

from reskernels.numerics.reference import conv_kernel_reference
from reskernels.numerics.samplers import multisphere
from reskernels.numerics.tolerances import DIAGONAL_RTOL, EPS
from reskernels.proofs_check import scope
from reskernels.proofs_check.scopes import spectra
from reskernels.theory import CNN, ResCNN


def _at(cid, **kw):
    smap = scope.get(cid)
    at = {a.name: a.default for a in smap.axes}
    at.update(kw)
    return smap, at


def test_maps_are_registered_with_cheap_quick_sweeps():
    maps = scope.load_all()
    for cid in ("BARZILAI-EIGFUN", "BARZILAI-DIAG", "BARZILAI-DOUBLE-CONSTANT", "BARZILAI-DECAY"):
        smap = maps[cid]
        assert smap.check_over and smap.margin_doc and smap.criterion
        for a in smap.axes:
            assert a.default in a.full and set(a.values("quick")) <= set(a.full), (cid, a.name)


# --------------------------------------------------------------------------- DIAG

def _scalar_ntk_diagonal(L, a, trained):
    """On MS every pixel pair has rho = 1, so per block K -> (1 + a^2) K and, with Phi1(K) = K and
    Phi0 = 1 at rho = 1 (He ReLU), Theta -> (1 + a^2) Theta + 2 a^2 K; the stem gives K0 = Theta0 = 1
    (trained="hidden": Theta0 = 0) and a trained readout adds K_L."""
    K, T = 1.0, (1.0 if trained == "all" else 0.0)
    for _ in range(L):
        K, T = (1 + a * a) * K, (1 + a * a) * T + 2 * a * a * K
    return T + (K if trained == "all" else 0.0)


@pytest.mark.parametrize("trained", ["all", "hidden"])
def test_diag_map_against_the_reference_route(trained):
    smap, at = _at("BARZILAI-DIAG", trained=trained, depth=4, alpha="0.5", kind="ntk", network="ResCNN")
    m, detail = smap.evaluate(at)
    arch = ResCNN(4, 0.5, readout="center", trained=trained)
    ref = np.diag(conv_kernel_reference(arch, multisphere(6, 8, 3, 2), kind="ntk"))
    scalar = _scalar_ntk_diagonal(4, 0.5, trained)
    assert np.allclose(ref, scalar, rtol=DIAGONAL_RTOL, atol=0)
    stated = 1.25 ** 4 * (2 + 2 * 4 * 0.25 / 1.25)
    assert detail["stated"] == pytest.approx(stated, rel=1e-15)
    dev = float(np.abs(ref / stated - 1).max())
    assert detail["relative deviation"] == pytest.approx(dev, rel=1e-12, abs=4 * EPS)
    if trained == "all":
        assert m > 0 and dev <= DIAGONAL_RTOL
    else:   # the stated form counts the stem and readout terms: off by 2 (1 + a^2)^L / Theta
        assert m < 0 and math.isclose(m, math.log10(DIAGONAL_RTOL / dev), rel_tol=1e-9)
        assert detail["measured (max)"] == pytest.approx(2 * 4 * 0.25 * 1.25 ** 3, rel=1e-14)


def test_diag_map_flips_under_a_planted_error(monkeypatch):
    smap, at = _at("BARZILAI-DIAG", trained="all", kind="ntk")
    assert smap.evaluate(at)[0] > 0
    real = spectra.gram
    monkeypatch.setattr(spectra, "gram", lambda *a, **k: real(*a, **k) * (1 + 1e-12))
    assert smap.evaluate(at)[0] < 0


# --------------------------------------------------------------------------- EIGFUN

def test_eigfun_map_against_the_reference_route():
    smap, at = _at("BARZILAI-EIGFUN", readout="center", kind="ntk", trained="hidden", stem_size=3)
    m, detail = smap.evaluate(at)
    assert m > 0
    arch = ResCNN(2, 0.6, readout="center", trained="hidden", stem_size=3)
    X = multisphere(5, 6, 3, 1)
    XR = spectra._rotated(X, 0)
    R, RR = conv_kernel_reference(arch, X), conv_kernel_reference(arch, XR)
    # the independent route sees the same invariance (to its own rounding) and agrees with the engine
    assert float(np.abs(RR - R).max() / np.abs(R).max()) <= detail["tol"]
    assert math.isclose(m, math.log10(detail["tol"] / max(detail["per-pixel rotation change"], EPS)), rel_tol=1e-12)
    # gap is not a multi-dot-product kernel: the rotation change is large on the reference route too
    g = ResCNN(2, 0.6, readout="gap", trained="hidden", stem_size=3)
    mg, dg = smap.evaluate(dict(at, readout="gap"))
    Rg, RRg = conv_kernel_reference(g, X), conv_kernel_reference(g, XR)
    change = float(np.abs(RRg - Rg).max() / np.abs(Rg).max())
    assert change > 1e-3 and dg["per-pixel rotation change (must exceed 1e-3)"] == pytest.approx(change, rel=1e-9)
    assert mg > 0


def test_eigfun_map_flips_under_a_planted_error(monkeypatch):
    """A cross-pixel term <x_0, z_1> added to the kernel is not invariant under per-pixel rotations."""
    smap, at = _at("BARZILAI-EIGFUN", readout="flatten")
    assert smap.evaluate(at)[0] > 0
    real = spectra.gram

    def planted(arch, X, Z=None, **k):
        Z = X if Z is None else Z
        return real(arch, X, Z, **k) + 1e-9 * X[:, 0] @ Z[:, 1].T
    monkeypatch.setattr(spectra, "gram", planted)
    m, detail = smap.evaluate(at)
    assert m < 0 and detail["per-pixel rotation change"] > detail["tol"]


# --------------------------------------------------------------------------- DOUBLE-CONSTANT

def _limit_by_lstsq(Ls, B):
    """b from an exact fit of B(L) = b + c log(L)/L + e/L through three depths (lstsq, other basis order)."""
    A = np.array([[1.0 / L, math.log(L) / L, 1.0] for L in Ls])
    return np.linalg.lstsq(A, B, rcond=None)[0][2]


def test_double_constant_map_recomputed():
    from reskernels.numerics import gram
    smap, at = _at("BARZILAI-DOUBLE-CONSTANT", network="CNN", readout="center", depth=40)
    m, detail = smap.evaluate(at)
    X = multisphere(5, 8, 3, 3)
    iu = np.triu_indices(5, 1)
    Ls = [40, 80, 160, 320]
    B = np.array([gram(CNN(L, readout="center"), X, normalize=True)[iu] for L in Ls])
    e1, e2 = _limit_by_lstsq(Ls[:3], B[:3]), _limit_by_lstsq(Ls[1:], B[1:])
    want = math.log10(2 * np.abs(e2 - e1).max() / np.abs(e2 - 0.25).max())
    assert m > 0 and math.isclose(m, want, rel_tol=1e-6)
    # alpha = 1/sqrt(L): the normalised NTK keeps a depth-independent, input-dependent limit
    m2, d2 = smap.evaluate(dict(at, network="ResCNN a=L^-1/2"))
    Kf = [gram(ResCNN(L, L ** -0.5, readout="center"), X, normalize=True)[iu] for L in (320, 640)]
    assert np.abs(Kf[1] - Kf[0]).max() < 1e-3 < np.abs(Kf[1] - 0.25).max()
    assert m2 < 0 and d2["extrapolated (min, max)"][1] - d2["extrapolated (min, max)"][0] > 0.1


def test_double_constant_map_flips_under_a_planted_error(monkeypatch):
    """Normalised off-diagonals scaled by 0.9 (a kernel leaking towards the identity): limit 0.225."""
    smap, at = _at("BARZILAI-DOUBLE-CONSTANT", network="CNN", readout="center", depth=40)
    assert smap.evaluate(at)[0] > 0
    real = spectra.gram

    def planted(*a, **k):
        K = real(*a, **k)
        return 0.9 * K + 0.1 * np.diag(np.diag(K))
    monkeypatch.setattr(spectra, "gram", planted)
    spectra._offdiag.cache_clear()
    try:
        assert smap.evaluate(at)[0] < 0
    finally:
        spectra._offdiag.cache_clear()


# --------------------------------------------------------------------------- DECAY

def test_decay_map_arora_baseline_and_planted_swap(monkeypatch):
    """With a stem of three pixels the plain CNN's first ReLU sees three pixels, as every ReLU of
    ResCNN(1) does: both single-pixel NNGP rays decay like k^-(2 nu + 3), nu = 3/2 (kappa_1 at
    rho -> 1), and the map holds.  Planted: the Arora baseline measured as the linear-stem CNN(3)
    (one pixel: k^-(2 nu + 1)) -> the slopes differ by ~2 and the margin turns negative."""
    monkeypatch.setattr(spectra, "_RAYS", {})
    smap, at = _at("BARZILAI-DECAY", baseline="CNN(2, stem_size=3)")
    m, d = smap.evaluate(at)
    nu = 1.5
    for s, b in ((d["slope residual"], d["bound residual"]), (d["slope plain"], d["bound plain"])):
        assert abs(s + (2 * nu + 3)) <= b
    assert d["basis"].startswith("predicted") and m == 0.1 and d["margin error"] == 0.0   # equal exponents, each confirmed
    assert m > d["margin error"]
    real = spectra.measure_ray

    def swapped(arch, *a, **k):
        if isinstance(arch, CNN) and arch.stem_size == 3:
            arch = CNN(3, readout="center", trained=arch.trained)
        return real(arch, *a, **k)
    monkeypatch.setattr(spectra, "measure_ray", swapped)
    monkeypatch.setattr(spectra, "_RAYS", {k: v for k, v in spectra._RAYS.items() if isinstance(k[0], ResCNN)})
    m2, d2 = smap.evaluate(at)
    assert abs(d2["slope plain"] + (2 * nu + 1)) <= d2["bound plain"]
    assert m2 < -d2["margin error"]


def test_rate_margin_decides_by_confirmed_exponents_else_by_the_measurement():
    """rate_margin: exponents confirmed by their slopes (bound < 1/2) decide exactly; otherwise the measured
    slopes decide only beyond their bounds (a wide bound gives a tie, not a 'holds' by overlap)."""
    from reskernels.numerics.ray_spectra import RaySlope

    def ray(slope, bound, predicted):
        return RaySlope("e0", "nngp", (0,), np.arange(6), np.ones(6), np.zeros(6), slope, bound, predicted, 64, 0.0)
    m, e, basis = spectra.rate_margin(ray(-6.02, 0.09, 6.0), ray(-3.99, 0.05, 4.0))
    assert (m, e) == (pytest.approx(-1.9), 0.0) and basis.startswith("predicted")
    m, e, _ = spectra.rate_margin(ray(-6.02, 0.09, 6.0), ray(-5.97, 0.12, 6.0))
    assert m == pytest.approx(0.1) and e == 0.0
    # slopes 0.05 apart but bounds 0.6 (cannot single out an exponent): a tie, where the old rule
    # (|difference| <= tol + bounds) said holds
    m, e, basis = spectra.rate_margin(ray(-6.0, 0.6, 6.0), ray(-5.95, 0.6, 6.0))
    assert basis.startswith("measured") and abs(m) <= e
    # a slope off its prediction: the measurement alone; far apart -> fails beyond the bounds
    m, e, _ = spectra.rate_margin(ray(-6.0, 0.1, 4.0), ray(-4.0, 0.1, 4.0))
    assert m < -e and e == pytest.approx(0.2)

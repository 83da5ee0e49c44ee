"""Planted errors in the computation (not in the expectations) change the verdicts of the
spectral, outside-the-papers and DenseNet checks: a wrong Funk-Hecke constant, a wrong
multiplicity, a wrong endpoint constant, a bias lost on its way, an activation ignored, a
depth-dependent error in the finite-width engine."""
import numpy as np
import pytest

from reskernels.proofs_check import common
from reskernels.proofs_check.claims import belfer, littwin, tirer
from reskernels.proofs_check.registry import load_all

REG = load_all()


@pytest.fixture
def fresh(monkeypatch):
    """Empty the per-process caches so that a planted error reaches every spectrum."""
    monkeypatch.setattr(common, "_SPECTRA", {})
    monkeypatch.setattr(belfer, "_ENDPOINTS", {})
    return monkeypatch


def _wrong_funk_hecke(monkeypatch, factor=1 + 1e-6):
    import reskernels.numerics.spectra as spectra
    real = spectra.eigenvalues
    monkeypatch.setattr(spectra, "eigenvalues", lambda *a, **k: [m * factor for m in real(*a, **k)])


@pytest.mark.parametrize("cid", ["BELFER-DECAY", "BELFER-RKHS", "BELFER-PARITY"])
def test_wrong_funk_hecke_constant_is_seen(fresh, cid):
    """A factor 1 + 1e-6 in every eigenvalue leaves slopes and ratios unchanged; the absolute checks fail."""
    _wrong_funk_hecke(fresh)
    v = REG[cid].run("quick")
    assert v.status == "fails", (v.status, v.summary)
    bad = [m.name for m in v.measurements if not m.passed]
    assert bad and all(("closed form" in n) or ("quadrature" in n) or ("trace identity" in n) for n in bad), bad


def test_wrong_multiplicity_is_seen(fresh):
    """N(3, k) = 2k + 2 instead of 2k + 1: only the trace identity can see it."""
    from reskernels.theory import harmonics
    real = harmonics.multiplicity
    fresh.setattr(harmonics, "multiplicity", lambda d, k: real(d, k) + (1 if d == 3 and k > 0 else 0))
    v = REG["BELFER-DECAY"].run("quick")
    assert v.status == "fails"
    assert [m.name for m in v.measurements if not m.passed] == [
        m.name for m in v.measurements if m.name.startswith("trace identity")]


def test_wrong_endpoint_constant_is_seen(fresh):
    """c_plus 2% too large in the exact endpoint expansion: the decay-law ratios leave 10/k^2."""
    import sympy as sp

    import reskernels.numerics.decay as decay
    real = decay.endpoint_coefficients

    def planted(arch, kind="ntk"):
        c = real(arch, kind)
        c["c_plus"] = {p: x * sp.Rational(51, 50) for p, x in c["c_plus"].items()}
        return c
    fresh.setattr(decay, "endpoint_coefficients", planted)
    v = REG["BELFER-DECAY-ACTIVATIONS"].run("quick")
    assert v.status == "fails", (v.status, v.summary)


def test_bias_lost_in_the_endpoint_expansion_is_seen(fresh):
    """An endpoint expansion that drops the bias keeps c_minus != 0: the parity verdict changes."""
    real = belfer.endpoint_coefficients
    fresh.setattr(belfer, "endpoint_coefficients", lambda arch, kind="ntk": real(arch.replace(bias_var=0.0), kind))
    v = REG["BELFER-PARITY-BIAS"].run("quick")
    assert v.status == "fails", (v.status, v.summary)


def test_activation_ignored_by_the_kernel_is_seen(monkeypatch):
    """A Gram engine that always uses ReLU makes erf/GELU look like ReLU: the scoped verdict changes."""
    real = tirer.gram
    monkeypatch.setattr(tirer, "gram", lambda arch, *a: real(arch.replace(activation="relu"), *a))
    v = REG["TIRER-SMOOTHER-ACTIVATIONS"].run("quick")
    assert v.status == "fails", (v.status, v.summary)


def test_depth_dependent_engine_error_is_seen(monkeypatch):
    """A finite-width DenseNet whose NTK picks up a log-normal error of variance 0.05 L: CV^2 grows with L."""
    real = littwin.empirical_kernels

    def planted(arch, x, width, rng):
        out = real(arch, x, width, rng)
        if type(arch).__name__ == "DenseNet":
            out = dict(out)
            out["ntk"] = out["ntk"] * np.exp(np.sqrt(0.05 * arch.depth) * rng.standard_normal())
        return out
    monkeypatch.setattr(littwin, "empirical_kernels", planted)
    v = REG["LITTWIN-DENSENET-PARAMS"].run("quick")
    assert v.status == "fails", (v.status, v.summary)

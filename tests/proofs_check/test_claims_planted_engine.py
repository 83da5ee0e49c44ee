"""A planted error in the computation changes the verdict of every claim not covered elsewhere.

``test_claims_planted.py`` and ``test_claims_planted_outside.py`` plant bugs in the engine's internals
(taps, duals, Funk-Hecke constants, multiplicities, snap threshold); ``test_claims_experiments.py`` in
the experiment pipeline (leaked splits, doubled gradients, shuffled labels).  Here each remaining claim
gets a bug in the numeric route it computes with, planted where its module looks the route up
(monkeypatch, undone after each test), small enough to look plausible:

* a kernel distorted entrywise, K + 1e-3 K^2 (a wrong constant deep in a recursion does this);
* the normalised FC kernel shifted by 1e-4 t (1 - t);
* the mpmath kernel off by 1e-6 t relative; the certified eigenvalues off by 1e-6 k relative;
* the Monte Carlo mean 20% off; a kernel blind to alpha; a conv kernel with a term that is not a
  function of the pixel cosines; the finite-width trainer run at one width whatever it is asked.

The expected status is what the claim's own logic makes of it: *fails* where a table, a closed form or
an independent route disagrees, *inconclusive* where the conv claims' engine check distrusts the
engine.
"""
from __future__ import annotations

import importlib

import mpmath
import numpy as np
import pytest

from reskernels.proofs_check import common
from reskernels.proofs_check.registry import load_all

REG = load_all()


def _distorted(real):
    return lambda *a, **k: (lambda K: K + 1e-3 * K * K)(real(*a, **k))


def _shifted_normalised(real):
    return lambda *a, **k: (lambda f: (lambda t: f(t) + 1e-4 * np.asarray(t) * (1 - np.asarray(t))))(real(*a, **k))


def _mp_off(real):
    return lambda arch, t, *a, **k: real(arch, t, *a, **k) * (1 + mpmath.mpf("1e-6") * mpmath.mpf(t))


def _spectrum_off(real):
    return lambda *a, **k: [m * (1 + mpmath.mpf("1e-6") * i) for i, m in enumerate(real(*a, **k))]


def _mc_biased(real):
    return lambda *a, **k: (lambda r: (1.2 * r[0],) + tuple(r[1:]))(real(*a, **k))


def _alpha_blind(real):
    return lambda arch, *a, **k: real(arch.replace(alpha=1.0) if hasattr(arch, "alpha") else arch, *a, **k)


def _not_multi_dot(real):
    """Adds 1e-3 x the product of the pixels' first channels: unchanged by nothing but the identity
    rotation, so the kernel is no longer a function of the pixel cosines."""
    def gram(arch, X, Z=None, *a, **k):
        K = real(arch, X, Z, *a, **k)
        Zc = X[..., 0] if Z is None else Z[..., 0]
        return K + 1e-3 * (X[..., 0] @ Zc.T)
    return gram


def _one_width(real):
    return lambda arch, X, y, m, steps, rng: real(arch, X, y, 256, steps, rng)


CASES = [   # claim, module (None: proofs_check.common), attribute, plant, status under the plant
    ("BELFER-SPIKY", "belfer", "normalized_kernel", _shifted_normalised, "fails"),
    ("BELFER-SLOPE", "belfer", "kernel_mp", _mp_off, "fails"),
    ("BELFER-EIGFUN", None, "spectrum", _spectrum_off, "fails"),
    ("HUANG-TRAINED-SET", "huang", "gram", _distorted, "fails"),
    ("HUANG-KERNEL-REGIME", "huang", "kernel_montecarlo", _mc_biased, "fails"),
    ("TIRER-SMOOTHER", "tirer", "gram", _distorted, "fails"),
    ("TIRER-ATTENUATION", "tirer", "gram", _alpha_blind, "fails"),
    ("BARZILAI-EIGFUN", "barzilai", "gram", _distorted, "inconclusive"),
    ("BARZILAI-DOUBLE-CONSTANT", "barzilai", "gram", _distorted, "inconclusive"),
    ("BARZILAI-COND-GPK", "barzilai", "gram", _distorted, "inconclusive"),
    ("ARORA-CNTK", "background", "gram", _distorted, "fails"),
    ("GEIFMAN-EIGFUN", "background", "gram", _not_multi_dot, "fails"),
    ("NUM-DEEP", "background", "gram", _distorted, "fails"),
    ("NUM-PSD", "background", "gram", _distorted, "fails"),
]


@pytest.mark.parametrize("cid,module,attr,plant,status", CASES, ids=[c[0] for c in CASES])
def test_planted_error_changes_the_verdict(monkeypatch, cid, module, attr, plant, status):
    base = REG[cid].run("quick").status
    mod = common if module is None else importlib.import_module(f"reskernels.proofs_check.claims.{module}")
    monkeypatch.setattr(mod, attr, plant(getattr(mod, attr)))
    if module is None:
        monkeypatch.setattr(common, "_SPECTRA", {})   # the planted spectra, not the cached true ones
    v = REG[cid].run("quick")
    assert base != status and v.status == status, (base, v.status, v.summary)


def test_trainer_blind_to_width_breaks_the_stable_training_claim(monkeypatch):
    """TIRER-STABLE-TRAINING: the trainer run at width 256 whatever width it is asked for, so the drift
    cannot shrink with the width (its memo of runs keys on the function, so the plant runs afresh)."""
    from reskernels.numerics import training
    base = REG["TIRER-STABLE-TRAINING"].run("quick").status
    monkeypatch.setattr(training, "gd_ntk_drift", _one_width(training.gd_ntk_drift))
    v = REG["TIRER-STABLE-TRAINING"].run("quick")
    assert base in ("holds", "holds-in-scope") and v.status in ("fails", "inconclusive"), (v.status, v.summary)


def test_every_checked_claim_has_a_planted_computation_test():
    """Each checked claim is named in at least one planted-computation test (this file, the other planted
    files, the experiments' plants, or the ray spectra's plants for the decay claims)."""
    import pathlib
    here = pathlib.Path(__file__).parent
    files = [here / "test_claims_planted.py", here / "test_claims_planted_outside.py", here / __file__.split("/")[-1],
             here / "test_claims_experiments.py", here.parent / "numerics" / "test_ray_spectra.py"]
    text = "".join(f.read_text() for f in files)
    checked = [cid for cid, c in REG.items() if c.check is not None]
    assert [cid for cid in checked if f'"{cid}"' not in text] == []

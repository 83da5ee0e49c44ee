"""The experiment claims on stand-in data (proofs_check/claims/experiments.py): a bug planted in the
computation (by monkeypatch, undone after each test) changes each verdict.

Table (planted bug -> verdict, default in brackets):

* test digits drawn from the training set (a split leak)        -> HUANG-EXPERIMENTS: fails [holds]
  (every kernel interpolates its test points: accuracy 1 at every depth, no degradation left)
* GD gradients doubled in the finite-width trainer              -> BARZILAI-EXPERIMENTS: fails [holds]
  (the network no longer follows the linearised model: the distance stops shrinking with width)
* labels shuffled against the images in the loader              -> ARORA-BENCHMARKS: inconclusive [fails]
  (every kernel classifies at chance: the chance-level guard withholds the verdict)
* rows of the random-gradient-feature Gram shifted by one point -> LITTWIN-RGF-EXPERIMENTS: inconclusive
  [holds] (features out of step with the labels)

Also: the helpers the claims share (data scaling, width for a parameter budget, slope and its s.e.).
"""
import numpy as np
import pytest

pytest.importorskip("sklearn")

from reskernels.proofs_check.registry import load_all  # noqa: E402

REG = load_all()
DEFAULT = {"HUANG-EXPERIMENTS": "holds-in-scope", "BARZILAI-EXPERIMENTS": "holds-in-scope", "ARORA-BENCHMARKS": "fails",
           "LITTWIN-RGF-EXPERIMENTS": "holds-in-scope"}   # their scope maps hold only in part


def run(cid):
    v = REG[cid].run("quick")
    assert v.status != "error", v.extra.get("traceback")
    return v


def test_split_leak_removes_the_depth_degradation(monkeypatch):
    from reskernels.numerics import kernel_regression as kr
    right = kr.stratified_splits

    def leaky(labels, n_train, n_test, n_splits, seed=0):
        return [(tr, tr[:n_test]) for tr, _ in right(labels, n_train, n_test, n_splits, seed)]

    monkeypatch.setattr(kr, "stratified_splits", leaky)
    v = run("HUANG-EXPERIMENTS")
    assert v.status == "fails", (v.status, v.summary)


def test_doubled_gradients_break_the_kernel_regime(monkeypatch):
    from reskernels.numerics import training
    right = training.loss_gradients

    def doubled(arch, params, X, y):
        loss, grads, f, factors = right(arch, params, X, y)
        return loss, {k: 2.0 * g for k, g in grads.items()}, f, factors

    monkeypatch.setattr(training, "loss_gradients", doubled)
    v = run("BARZILAI-EXPERIMENTS")
    assert v.status == "fails", (v.status, v.summary)
    trained = [m for m in v.measurements if m.name.startswith("trained")]
    assert len(trained) == 1 and not trained[0].passed


def test_shuffled_labels_make_the_verdict_inconclusive(monkeypatch):
    from reskernels.numerics import datasets
    right = datasets.digits

    def shuffled(n=None, *, seed=0, classes=None):
        images, labels = right(n, seed=seed, classes=classes)
        return images, np.random.default_rng(99).permutation(labels)

    monkeypatch.setattr(datasets, "digits", shuffled)
    v = run("ARORA-BENCHMARKS")
    assert v.status == "inconclusive", (v.status, v.summary)


def test_misaligned_gradient_features_make_the_verdict_inconclusive(monkeypatch):
    from reskernels.numerics import montecarlo
    right = montecarlo.empirical_kernels

    def shifted(arch, X, width, rng):
        out = right(arch, X, width, rng)
        out["ntk"] = np.roll(out["ntk"], 1, axis=(0, 1))
        return out

    monkeypatch.setattr(montecarlo, "empirical_kernels", shifted)
    v = run("LITTWIN-RGF-EXPERIMENTS")
    assert v.status == "inconclusive", (v.status, v.summary)


# ---- helpers -----------------------------------------------------------------------------------------

def test_stand_in_inputs_are_scaled_as_documented():
    from reskernels.proofs_check.claims.experiments import flat_digits, signal_digits
    X, y = flat_digits(20, seed=1)
    assert X.shape == (20, 64) and np.allclose(np.linalg.norm(X, axis=1), 1.0)
    S, z = signal_digits(20, seed=1)
    assert S.shape == (20, 8, 8) and np.allclose(np.linalg.norm(S.reshape(20, -1), axis=1), 1.0)
    assert np.array_equal(y, z)
    assert np.allclose(S.reshape(20, -1), X)     # the same centred digits, flattened row by row


def test_width_for_a_parameter_budget():
    from reskernels.proofs_check.claims.experiments import n_params, width_for
    from reskernels.theory import DenseNet, MLP, ResNet
    d = 64
    assert n_params(MLP(3), d, 10) == 10 * d + 2 * 10 * 10 + 10
    assert n_params(ResNet(2, 0.5), d, 10) == 10 * d + 4 * 100 + 10
    assert n_params(DenseNet(2), d, 10) == 10 * d + 100 + 200 + 30
    for arch in (MLP(8), ResNet(8, 1.0), DenseNet(8)):
        w = width_for(arch, d, 20_000)
        assert n_params(arch, d, w) <= 20_000 < n_params(arch, d, w + 1)


def test_width_slope_recovers_a_power_law():
    from reskernels.proofs_check.claims.experiments import width_slope
    widths = [64, 256, 1024]
    dists = [[w ** -0.5 * (1 + e) for e in (-0.01, 0.01)] for w in widths]
    slope, se, _ = width_slope(widths, dists)
    assert slope == pytest.approx(-0.5, abs=1e-12) and 0 < se < 0.02


def test_distinct_photograph_rows():
    pytest.importorskip("skimage")
    from reskernels.proofs_check.claims.experiments import distinct_photo_rows
    X = distinct_photo_rows(30, seed=2)
    assert X.shape == (30, 8, 3) and np.allclose(np.linalg.norm(X, axis=-1), 1.0)
    F = X.reshape(30, -1) / np.sqrt(8)
    D = np.linalg.norm(F[:, None] - F[None], axis=-1) + np.eye(30)
    assert D.min() > 0.5

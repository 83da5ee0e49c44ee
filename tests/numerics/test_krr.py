"""numerics.kernel_regression against scikit-learn's KernelRidge (precomputed kernel), and the split
and statistics helpers."""
import numpy as np
import pytest

from reskernels.numerics import gram
from reskernels.numerics.kernel_regression import (condition_number, decide, evaluate, krr_predict, mean_se,
                                                   one_vs_rest_targets, paired, ridge_value, stratified_splits)
from reskernels.theory import MLP, ResNet


def _data(n=60, d=5, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    return X / np.linalg.norm(X, axis=1, keepdims=True), rng


@pytest.mark.parametrize("arch", [MLP(3), ResNet(4, 0.5)], ids=lambda a: a.slug)
@pytest.mark.parametrize("ridge", [1e-3, 0.7])
def test_agrees_with_sklearn_kernel_ridge(arch, ridge):
    kr = pytest.importorskip("sklearn.kernel_ridge")
    X, rng = _data()
    K = gram(arch, X)
    Y = rng.standard_normal((40, 3))
    ours = krr_predict(K[:40, :40], Y, K[40:, :40], ridge)
    ref = kr.KernelRidge(alpha=ridge, kernel="precomputed").fit(K[:40, :40], Y).predict(K[40:, :40])
    assert np.max(np.abs(ours - ref)) <= 1e-10 * max(1.0, np.max(np.abs(ref)))


def test_evaluate_agrees_with_sklearn_classifier_pipeline():
    kr = pytest.importorskip("sklearn.kernel_ridge")
    X, rng = _data(90)
    labels = rng.integers(0, 3, 90)
    K = gram(MLP(2), X)
    splits = stratified_splits(labels, 45, 30, 3, seed=1)
    res = evaluate(K, labels, splits, relative_ridge=1e-2)
    Y, classes = one_vs_rest_targets(labels)
    for s, (tr, te) in enumerate(splits):
        lam = 1e-2 * np.mean(np.diag(K)[tr])
        pred = kr.KernelRidge(alpha=lam, kernel="precomputed").fit(K[np.ix_(tr, tr)], Y[tr]).predict(K[np.ix_(te, tr)])
        assert res["accuracy"][s] == np.mean(classes[np.argmax(pred, 1)] == labels[te])
        assert abs(res["mse"][s] - np.mean((pred - Y[te]) ** 2)) <= 1e-10


def test_binary_targets_and_decision():
    Y, classes = one_vs_rest_targets(np.array([3, 5, 5, 3]))
    assert Y[:, 0].tolist() == [-1, 1, 1, -1] and classes.tolist() == [3, 5]
    assert decide(np.array([[0.2], [-0.1]]), classes).tolist() == [5, 3]
    with pytest.raises(ValueError):
        one_vs_rest_targets(np.array([1, 1]))


def test_stratified_splits_keep_class_shares_and_are_disjoint():
    labels = np.repeat([0, 1, 2], [50, 30, 20])
    for tr, te in stratified_splits(labels, 40, 30, 4, seed=3):
        assert not set(tr) & set(te)
        assert np.bincount(labels[tr]).tolist() == [20, 12, 8]
        assert np.bincount(labels[te]).tolist() == [15, 9, 6]
    a = stratified_splits(labels, 40, 30, 2, seed=3)
    b = stratified_splits(labels, 40, 30, 2, seed=3)
    assert all(np.array_equal(x[0], y[0]) for x, y in zip(a, b))
    with pytest.raises(ValueError):
        stratified_splits(labels, 90, 20, 1)


def test_statistics_and_ridge():
    assert mean_se([1.0, 3.0]) == (2.0, 1.0)
    assert paired([1.0, 2.0, 4.0], [1.0, 1.0, 1.0])[0] == pytest.approx(4 / 3)
    K = np.diag([2.0, 4.0])
    assert ridge_value(K, relative_ridge=0.5) == 1.5 and ridge_value(K, ridge=0.1) == 0.1
    with pytest.raises(ValueError):
        ridge_value(K)
    assert condition_number(K) == pytest.approx(1.0)
    assert condition_number(K, normalize=False) == pytest.approx(2.0)
    assert condition_number(np.ones((2, 2))) == float("inf")


def test_stratified_splits_use_every_point_when_asked():
    labels = np.repeat([0, 1, 2], [31, 33, 36])
    for tr, te in stratified_splits(labels, 50, 50, 3, seed=0):
        assert len(tr) == 50 and len(te) == 50 and not set(tr) & set(te)
        assert all(np.sum(labels[te] == c) >= 1 for c in range(3))

"""Kernel ridge regression and classification from a precomputed Gram matrix, with split statistics.

    from reskernels.numerics import gram
    from reskernels.numerics.kernel_regression import evaluate, stratified_splits
    K = gram(MLP(4), X)                                  # all n points, computed once
    splits = stratified_splits(labels, n_train=100, n_test=200, n_splits=5, seed=0)
    res = evaluate(K, labels, splits, ridge=1e-6)        # accuracy / MSE per split

The estimator is the kernel ridge regression of the training targets Y (n_train, k):
alpha = (K_tr + lambda I)^{-1} Y (Cholesky; scikit-learn's ``KernelRidge(alpha=lambda,
kernel="precomputed")`` solves the same system), predictions K_te,tr alpha.  The ridge is stated in
one of two ways: an absolute lambda (``ridge=...``), or relative to the mean of the training Gram
diagonal (``relative_ridge=r``: lambda = r mean diag K_tr, invariant to the kernel's scale, which
grows with depth for NTKs).  Classification is one-vs-rest on +-1 targets (two classes: one column,
the sign decides; more: one column per class, the arg max decides); the MSE is that of the +-1 target
matrix, averaged over test points and columns.

Splits are drawn stratified (every class keeps its share of the training and test sets) and
independently per split; statistics over splits are the mean and its standard error
s / sqrt(n_splits).  Paired comparisons (two kernels on the same splits) should use the standard
error of the per-split differences (:func:`paired`), which removes the split-to-split variation
the two kernels share.
"""
from __future__ import annotations

import numpy as np
from scipy.linalg import cho_factor, cho_solve, eigvalsh


def ridge_value(K_train, ridge: float | None = None, relative_ridge: float | None = None) -> float:
    """The absolute ridge lambda: ``ridge`` itself, or ``relative_ridge`` x mean diag(K_train)."""
    if (ridge is None) == (relative_ridge is None):
        raise ValueError("give exactly one of ridge= (absolute) and relative_ridge= (x mean diagonal)")
    lam = float(ridge) if ridge is not None else float(relative_ridge) * float(np.mean(np.diag(K_train)))
    if not np.isfinite(lam) or lam < 0:
        raise ValueError(f"the ridge must be finite and >= 0, got {lam!r}")
    return lam


def krr_fit(K_train, Y, ridge: float) -> np.ndarray:
    """Dual coefficients (K_train + ridge I)^{-1} Y by a Cholesky factorisation (Y: (n,) or (n, k))."""
    K_train = np.asarray(K_train, dtype=np.float64)
    n = K_train.shape[0]
    if K_train.shape != (n, n):
        raise ValueError(f"K_train must be square, got {K_train.shape}")
    Y = np.asarray(Y, dtype=np.float64)
    if Y.shape[0] != n:
        raise ValueError(f"Y has {Y.shape[0]} rows for a {n} x {n} Gram matrix")
    A = K_train + float(ridge) * np.eye(n)
    return cho_solve(cho_factor(A, lower=True, check_finite=True), Y)


def krr_predict(K_train, Y, K_test_train, ridge: float) -> np.ndarray:
    """Predictions K_test_train (K_train + ridge I)^{-1} Y."""
    return np.asarray(K_test_train, dtype=np.float64) @ krr_fit(K_train, Y, ridge)


def one_vs_rest_targets(labels, classes=None) -> tuple[np.ndarray, np.ndarray]:
    """(+-1 target matrix, classes): one column for two classes (+1 = the second class), else one
    column per class."""
    labels = np.asarray(labels)
    classes = np.unique(labels) if classes is None else np.asarray(classes)
    if len(classes) < 2:
        raise ValueError(f"classification needs >= 2 classes, got {classes.tolist()}")
    if len(classes) == 2:
        return np.where(labels == classes[1], 1.0, -1.0)[:, None], classes
    return np.where(labels[:, None] == classes[None, :], 1.0, -1.0), classes


def decide(scores, classes) -> np.ndarray:
    """Predicted labels from one-vs-rest scores (sign for one column, arg max otherwise)."""
    scores = np.atleast_2d(np.asarray(scores).T).T
    if scores.shape[1] == 1:
        return np.where(scores[:, 0] > 0, classes[1], classes[0])
    return np.asarray(classes)[np.argmax(scores, axis=1)]


def stratified_splits(labels, n_train: int, n_test: int, n_splits: int, seed: int = 0) -> list:
    """``n_splits`` random disjoint (train, test) index pairs, each class keeping its share.

    Class c gets round(n_train n_c / n) training points (the rounding remainder goes to the largest
    fractional parts), likewise for the test set; drawn without replacement, independently per split,
    deterministically for ``seed``."""
    labels = np.asarray(labels)
    n = len(labels)
    if n_train < 1 or n_test < 1 or n_train + n_test > n:
        raise ValueError(f"need 1 <= n_train, n_test and n_train + n_test <= {n}, got {n_train}, {n_test}")
    classes, counts = np.unique(labels, return_counts=True)

    def shares(total, caps):
        raw = total * counts / n
        out = np.minimum(np.floor(raw).astype(int), caps)
        for c in np.argsort(out - raw, kind="stable"):    # largest fractional parts first
            if out.sum() == total:
                break
            if out[c] < caps[c]:
                out[c] += 1
        while out.sum() < total:                            # caps forced a deficit: fill where room is left
            out[np.argmax(caps - out)] += 1
        return out

    tr = shares(n_train, counts - 1 if n_test >= len(classes) else counts)
    te = shares(n_test, counts - tr)
    rng = np.random.default_rng(seed)
    splits = []
    for _ in range(int(n_splits)):
        train, test = [], []
        for c, a, b in zip(classes, tr, te):
            idx = rng.permutation(np.flatnonzero(labels == c))
            train.append(idx[:a])
            test.append(idx[a:a + b])
        splits.append((np.sort(np.concatenate(train)), np.sort(np.concatenate(test))))
    return splits


def mean_se(values) -> tuple[float, float]:
    """(mean, standard error of the mean) over the first axis; s.e. 0 for one value."""
    x = np.asarray(values, dtype=np.float64)
    if len(x) < 2:
        return float(x.mean()), 0.0
    return float(x.mean()), float(x.std(ddof=1) / np.sqrt(len(x)))


def paired(a, b) -> tuple[float, float]:
    """(mean, s.e.) of the per-split differences a - b (two kernels evaluated on the same splits)."""
    return mean_se(np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64))


def evaluate(K, labels, splits, *, ridge: float | None = None, relative_ridge: float | None = None) -> dict:
    """Per-split test accuracy and MSE of one-vs-rest kernel ridge classification on the Gram ``K``
    of all points; ``{"accuracy": (n_splits,), "mse": (n_splits,), "ridge": [lambda per split]}``."""
    K = np.asarray(K, dtype=np.float64)
    labels = np.asarray(labels)
    Y, classes = one_vs_rest_targets(labels)
    acc, mse, lams = [], [], []
    for train, test in splits:
        Ktr = K[np.ix_(train, train)]
        lam = ridge_value(Ktr, ridge, relative_ridge)
        pred = krr_predict(Ktr, Y[train], K[np.ix_(test, train)], lam)
        acc.append(float(np.mean(decide(pred, classes) == labels[test])))
        mse.append(float(np.mean((pred - Y[test]) ** 2)))
        lams.append(lam)
    return {"accuracy": np.array(acc), "mse": np.array(mse), "ridge": lams}


def condition_number(K, normalize: bool = True) -> float:
    """lambda_max / lambda_min of a symmetric Gram matrix (``normalize``: of D^-1/2 K D^-1/2 with
    D = diag K first, so that depth-dependent diagonal scales drop out); inf when lambda_min <= 0."""
    K = np.asarray(K, dtype=np.float64)
    if normalize:
        d = 1.0 / np.sqrt(np.diag(K))
        K = K * d[:, None] * d[None, :]
    w = eigvalsh((K + K.T) / 2)
    return float(w[-1] / w[0]) if w[0] > 0 else float("inf")

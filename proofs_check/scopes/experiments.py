"""Scope maps of the experiment claims on stand-in data (proofs_check/claims/experiments.py):
HUANG-EXPERIMENTS, BARZILAI-EXPERIMENTS, ARORA-BENCHMARKS and LITTWIN-RGF-EXPERIMENTS.

The papers' classes, sizes, depths, data and preprocessing are [unknown] (docs/papers.md), so each
map sweeps them: the data set and its layout, the task (all classes or one pair), the training-set
size, the depths compared, the residual scaling, the ridge and (BARZILAI) both networks' readout.

Every point is decided by paired accuracies: kernel ridge classification
(:mod:`reskernels.numerics.kernel_regression`, one-vs-rest on +-1 targets, ridge = ``ridge`` x mean
diag K_train) of two kernels on the same ``N_SPLITS`` random stratified splits of one pool of
``n_train + N_TEST`` points; the margin is the mean of the per-split accuracy differences (in
accuracy units, positive where the claim's direction holds) and its error twice their standard
error, the claims' own "better" threshold (``_better`` in claims/experiments.py).  A difference
within two standard errors is therefore a tie, not a verdict.

Stand-in data (no download; every input scaled to unit total norm after centring):

* ``digits``: scikit-learn's 8 x 8 digits minus the data set's mean image, flattened (S^63);
* ``digit-rows`` / ``digit-columns``: the same digits as circular 1-D signals of 8 pixels with 8
  channels, the pixels being the rows (as in the claims) or the columns;
* ``shifted-digit-rows``: digit rows, each image circularly shifted by a random number of rows
  (translation as a nuisance: the gap readout is exactly invariant to circular shifts);
* ``digit-images``: the digits as 2-D images on the 8 x 8 torus, one channel;
* ``photos`` / ``photo-patches``: 8 x 8 RGB patches of scikit-image's four photographs (astronaut,
  coffee, chelsea, rocket) labelled by their photograph, centred by the photographs' mean colour
  (as :func:`reskernels.numerics.images.natural_patches` centres them), flattened (S^191) or 2-D;
* ``photo-rows``: the first row of such patches, 8 pixels x 3 channels.

Task ``pair``: digits 3 vs 8, photographs coffee vs chelsea; ``all``: 10 digit classes, 4 photographs.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

from reskernels.numerics import gram
from reskernels.numerics import kernel_regression as kr
from reskernels.theory import CNN, MLP, DenseNet, ResCNN, ResNet

from ..scope import Axis, scope_map
from .data import ALPHA_SCALINGS

N_TEST = 100          # test points per split
N_SPLITS = 10         # random stratified splits per point
DATA_SEED, SPLIT_SEED = 0, 1
DIGIT_PAIR = (3, 8)
PHOTO_PAIR = ("coffee", "chelsea")
PHOTOS = ("astronaut", "coffee", "chelsea", "rocket")
FC_DATA = ("digits", "photos")
CONV_DATA = ("digit-rows", "digit-columns", "shifted-digit-rows", "photo-rows", "digit-images", "photo-patches")


# --------------------------------------------------------------------------- stand-in data

def _unit(X):
    return X / np.linalg.norm(X.reshape(len(X), -1), axis=1).reshape((-1,) + (1,) * (X.ndim - 1))


def _digits(n, seed, classes):
    from reskernels.numerics.datasets import digit_signals
    return digit_signals(n, seed=seed, classes=classes)


def _photos(n, seed, names, rows):
    """``n`` distinct 8 x 8 RGB patches (or their first rows), as equal a share per photograph as
    ``n`` allows, labelled by the photograph's index in ``names``; centred by the mean colour of all
    four photographs."""
    from reskernels.numerics import images
    mean = np.mean([im.reshape(-1, 3).mean(axis=0) for im in images._load(PHOTOS)], axis=0)
    shares = [n // len(names) + (c < n % len(names)) for c in range(len(names))]
    Xs, ys = [], []
    for c, (name, m) in enumerate(zip(names, shares)):
        P = images.natural_patches(3 * m, 8, seed=1000 * seed + PHOTOS.index(name), images=(name,),
                                   center=False, normalize_pixels=False) - mean
        P = P[:, 0] if rows else P
        flat = P.reshape(len(P), -1)
        norms = np.linalg.norm(flat, axis=1)
        # flat regions repeat themselves; a repeated or zero input would make every Gram singular
        _, first = np.unique(np.round(flat / np.maximum(norms, 1e-300)[:, None], 9), axis=0, return_index=True)
        keep = [i for i in np.sort(first) if norms[i] > 1e-6][:m]
        if len(keep) < m:
            raise ValueError(f"photograph {name!r} gave only {len(keep)} distinct patches of {3 * m}")
        Xs.append(P[keep])
        ys.append(np.full(m, c))
    return np.concatenate(Xs), np.concatenate(ys)


def _engines():
    """The functions the cached results depend on, by identity: a replaced one (a test's planted
    error, say) misses the caches instead of reading results made without it, or leaving results
    made with it behind."""
    from reskernels.numerics import datasets, images
    return (id(datasets.digits), id(datasets.digit_signals), id(images.natural_patches), id(images._load),
            id(gram), id(kr.stratified_splits))


def stand_in(data: str, task: str, n: int, seed: int = DATA_SEED):
    """``(X, labels)``: ``n`` inputs of the stand-in data set ``data`` (see the module docstring) for
    ``task`` in {"all", "pair"}, unit total norm; X is (n, d) for the fully connected data sets,
    (n, 8, C) for 1-D signals and (n, 8, 8, C) for 2-D images.  Deterministic for ``seed``."""
    return _stand_in(data, task, n, seed, _engines())


@lru_cache(maxsize=64)
def _stand_in(data, task, n, seed, engines):
    if task not in ("all", "pair"):
        raise ValueError(f"task must be 'all' or 'pair', got {task!r}")
    if data in ("digits", "digit-rows", "digit-columns", "shifted-digit-rows", "digit-images"):
        X, y = _digits(n, seed, DIGIT_PAIR if task == "pair" else None)
        if data == "digits":
            X = X.reshape(n, -1)
        elif data == "digit-columns":
            X = X.transpose(0, 2, 1)
        elif data == "shifted-digit-rows":
            shifts = np.random.default_rng([seed, 8]).integers(0, 8, size=n)
            X = np.stack([np.roll(x, s, axis=0) for x, s in zip(X, shifts)])
        elif data == "digit-images":
            X = X[..., None]
    elif data in ("photos", "photo-rows", "photo-patches"):
        names = PHOTO_PAIR if task == "pair" else PHOTOS
        X, y = _photos(n, seed, names, rows=data == "photo-rows")
        if data == "photos":
            X = X.reshape(n, -1)
    else:
        raise ValueError(f"data must be one of {FC_DATA + CONV_DATA}, got {data!r}")
    return np.ascontiguousarray(_unit(X)), y


# --------------------------------------------------------------------------- paired accuracies

def _gram(arch, data, task, n):
    return _gram_cached(arch, data, task, n, _engines())


@lru_cache(maxsize=512)
def _gram_cached(arch, data, task, n, engines):
    return gram(arch, stand_in(data, task, n)[0])


def _splits(data, task, n_train):
    return _splits_cached(data, task, n_train, _engines())


@lru_cache(maxsize=64)
def _splits_cached(data, task, n_train, engines):
    y = stand_in(data, task, n_train + N_TEST)[1]
    return kr.stratified_splits(y, n_train, N_TEST, N_SPLITS, seed=SPLIT_SEED)


def clear_caches():
    """Forget every cached data set, Gram matrix and split."""
    for f in (_stand_in, _gram_cached, _splits_cached):
        f.cache_clear()


def accuracy(arch, at) -> np.ndarray:
    """Per-split test accuracy of kernel ridge classification with ``arch``'s NTK at the point ``at``
    (keys data, task, n_train, ridge)."""
    n = at["n_train"] + N_TEST
    K = _gram(arch, at["data"], at["task"], n)
    y = stand_in(at["data"], at["task"], n)[1]
    return kr.evaluate(K, y, _splits(at["data"], at["task"], at["n_train"]), relative_ridge=at["ridge"])["accuracy"]


def _paired(a, b):
    """(mean of a - b, its error 2 s.e.)."""
    d, se = kr.paired(a, b)
    return d, 2.0 * se


def _weakest(parts):
    """The deciding part of a conjunction of (margin, error) parts: the most negative margin among the
    parts that fail beyond their error, else the part with the least margin - error (the whole holds
    iff that part holds)."""
    failing = [p for p in parts if p[0] < -p[1]]
    return min(failing) if failing else min(parts, key=lambda p: p[0] - p[1])


def _summary(acc: dict) -> dict:
    return {name: [round(m, 4), round(s, 4)] for name, (m, s) in ((k, kr.mean_se(a)) for k, a in acc.items())}


def _one_blas_thread(fn):
    """Evaluate a point with a single-threaded BLAS: its products are small (<= 300 x 300), where a
    threaded BLAS mostly spins on a shared machine, and one thread keeps the roundings fixed (as the
    claims' own checks do)."""
    import functools

    @functools.wraps(fn)
    def wrapper(at):
        from threadpoolctl import threadpool_limits
        with threadpool_limits(limits=1, user_api="blas"):
            return fn(at)
    return wrapper


def _axes_common(data_axis, n_default):
    return (data_axis,
            Axis("task", ("all", "pair"), "all", f"all classes (10 digits / 4 photographs) or one pair "
                 f"(digits {DIGIT_PAIR[0]} vs {DIGIT_PAIR[1]}, photographs {PHOTO_PAIR[0]} vs {PHOTO_PAIR[1]})"),
            Axis("n_train", (50, 100, 200), n_default, f"training points per split ({N_TEST} test points)",
                 quick=(n_default,), ordered=True),
            Axis("ridge", (1e-6, 1e-2), 1e-6, "ridge relative to the mean training diagonal "
                 "(1e-6: near-interpolation, the claims' setting)", ordered=True))


_MARGIN_TAIL = (f"; error 2 s.e. of the per-split differences ({N_SPLITS} splits, {N_TEST} test points): within it "
                "a tie")
_FIXED = (f"one-vs-rest kernel ridge classification on +-1 targets; {N_SPLITS} random stratified splits (seed "
          f"{SPLIT_SEED}) of a pool of n_train + {N_TEST} points (data seed {DATA_SEED}); inputs centred, unit norm")


# --------------------------------------------------------------------------- HUANG-EXPERIMENTS

@scope_map("HUANG-EXPERIMENTS", _axes_common(
    Axis("data", FC_DATA, "digits", "flattened digits (S^63) or photograph patches (S^191)"), 200) + (
    Axis("depth", (8, 32), 32, "the deep depth L compared with L = 1", ordered=True),
    Axis("alpha", ("L^-1", "L^-1/2"), "L^-1", "the ResNet's branch scale (Huang: 1/L)"),
    Axis("trained", ("hidden", "all"), "hidden", "the ResNet's trained layers (Huang's ResNTK: hidden)"),
), "min(FFNet drop, FFNet drop - ResNet drop), drop = accuracy at L = 1 minus at the deep L, in accuracy "
   "units; > 0 where the FFNet-NTK degrades with depth and more than the ResNet-NTK" + _MARGIN_TAIL,
   "the FFNet-NTK MLP(L)'s accuracy drops from L = 1 to the deep L, and drops by more than the ResNet-NTK's "
   "('stays roughly flat', read relative to the FFNet's drop)",
   _FIXED + "; MLP(L) all layers trained; ReLU, weight_var = 2", check_over=("data", "task"))
@_one_blas_thread
def huang(at):
    L, a = at["depth"], ALPHA_SCALINGS[at["alpha"]]
    acc = {"MLP(1)": accuracy(MLP(1), at), f"MLP({L})": accuracy(MLP(L), at),
           "ResNet(1)": accuracy(ResNet(1, a(1), trained=at["trained"]), at),
           f"ResNet({L})": accuracy(ResNet(L, a(L), trained=at["trained"]), at)}
    drop_mlp = acc["MLP(1)"] - acc[f"MLP({L})"]
    drop_res = acc["ResNet(1)"] - acc[f"ResNet({L})"]
    parts = [_paired(drop_mlp, 0 * drop_mlp), _paired(drop_mlp, drop_res)]
    margin, err = _weakest(parts)
    return margin, {"accuracy (mean, s.e.)": _summary(acc), "FFNet drop": list(parts[0]),
                    "ResNet drop": list(_paired(drop_res, 0 * drop_res)), "margin error": err}


# --------------------------------------------------------------------------- BARZILAI-EXPERIMENTS

@scope_map("BARZILAI-EXPERIMENTS", _axes_common(
    Axis("data", CONV_DATA, "digit-rows", "8-pixel circular signals or 8 x 8 tori (see the module docstring)",
         quick=("digit-rows", "digit-columns", "photo-rows")), 100) + (
    Axis("depth", (1, 4, 16), 16, "residual blocks L (CNN(L + 1) compared)", quick=(16,), ordered=True),
    Axis("alpha", tuple(ALPHA_SCALINGS), "L^-1/2", "residual scaling as a function of L"),
    Axis("readout", ("gap", "flatten"), "gap", "readout of both networks"),
), "accuracy of ResCNN(L, alpha) minus CNN(L + 1), paired over splits; > 0 where the residual kernel "
   "classifies better" + _MARGIN_TAIL,
   "the ResCNTK classifies better than the CNTK of the same depth",
   _FIXED + "; filter_size 3, stem_size 1, trained='all', ReLU, weight_var = 2", check_over=("alpha", "data"))
@_one_blas_thread
def barzilai(at):
    L = at["depth"]
    kw = dict(readout=at["readout"])
    res = ResCNN(L, ALPHA_SCALINGS[at["alpha"]](L), **kw)
    acc = {"ResCNN": accuracy(res, at), f"CNN({L + 1})": accuracy(CNN(L + 1, **kw), at)}
    margin, err = _paired(acc["ResCNN"], acc[f"CNN({L + 1})"])
    return margin, {"accuracy (mean, s.e.)": _summary(acc), "margin error": err}


# --------------------------------------------------------------------------- ARORA-BENCHMARKS

@scope_map("ARORA-BENCHMARKS", _axes_common(
    Axis("data", CONV_DATA, "digit-rows", "8-pixel circular signals or 8 x 8 tori (see the module docstring)",
         quick=("digit-rows", "digit-columns", "shifted-digit-rows", "photo-rows")), 100) + (
    Axis("depth", (2, 4, 8), 4, "CNN depth L", quick=(4,), ordered=True),
), "accuracy of CNN(L) with the gap readout minus the flatten readout, paired over splits; > 0 where global "
   "average pooling helps" + _MARGIN_TAIL,
   "global average pooling improves the CNTK over the vanilla (flatten) CNTK",
   _FIXED + "; circular padding, filter_size 3, stem_size 1, trained='all', ReLU, weight_var = 2",
   check_over=("data", "task"))
@_one_blas_thread
def arora(at):
    L = at["depth"]
    acc = {"gap": accuracy(CNN(L, readout="gap"), at), "flatten": accuracy(CNN(L, readout="flatten"), at)}
    margin, err = _paired(acc["gap"], acc["flatten"])
    return margin, {"accuracy (mean, s.e.)": _summary(acc), "margin error": err}


# --------------------------------------------------------------------------- LITTWIN-RGF-EXPERIMENTS

def _rgf_accuracy(arch, at, width):
    """Per-split accuracy of regression on the random gradient features of one fresh N(0, 1)
    initialisation per split (their Gram is the finite-width empirical NTK)."""
    from reskernels.numerics.montecarlo import empirical_kernels
    n = at["n_train"] + N_TEST
    X, y = stand_in(at["data"], at["task"], n)
    out = []
    for s, split in enumerate(_splits(at["data"], at["task"], at["n_train"])):
        K = empirical_kernels(arch, X, width, np.random.default_rng([17, arch.depth, s]))["ntk"]
        out.append(kr.evaluate(K, y, [split], relative_ridge=at["ridge"])["accuracy"][0])
    return np.array(out)


@scope_map("LITTWIN-RGF-EXPERIMENTS", _axes_common(
    Axis("data", FC_DATA, "digits", "flattened digits (S^63) or photograph patches (S^191)"), 100) + (
    Axis("depth", (4, 8, 16), 8, "layers / blocks L", quick=(8,), ordered=True),
    Axis("params", (5_000, 20_000, 80_000), 20_000, "parameter budget of every network (widths chosen to fit)",
         quick=(20_000,), ordered=True),
    Axis("alpha", ("L^-1/2", "1"), "L^-1/2", "the ResNet's branch scale"),
), "min over ResNet and DenseNet of (its accuracy minus the MLP's), paired over splits; > 0 where both beat "
   "the MLP at equal parameter count" + _MARGIN_TAIL,
   "regression on random gradient features favours deep ResNets and DenseNets over the deep MLP",
   _FIXED + "; features df/dtheta at one N(0, 1) initialisation per split (seeded by depth and split), all "
   "tensors trained; ReLU, weight_var = 2", check_over=("data", "task"))
@_one_blas_thread
def littwin(at):
    from ..claims.experiments import n_params, width_for
    L = at["depth"]
    d = stand_in(at["data"], at["task"], at["n_train"] + N_TEST)[0].shape[1]
    models = {"MLP": MLP(L), "ResNet": ResNet(L, ALPHA_SCALINGS[at["alpha"]](L)), "DenseNet": DenseNet(L)}
    acc, sizes = {}, {}
    for name, arch in models.items():
        w = width_for(arch, d, at["params"])
        sizes[name] = [w, n_params(arch, d, w)]
        acc[name] = _rgf_accuracy(arch, at, w)
    parts = {name: _paired(acc[name], acc["MLP"]) for name in ("ResNet", "DenseNet")}
    worst = next(k for k in parts if parts[k] == _weakest(list(parts.values())))
    margin, err = parts[worst]
    return margin, {"accuracy (mean, s.e.)": _summary(acc), "[width, parameters]": sizes,
                    "worse of the two": worst, "margin error": err}

"""Scope map of LITTWIN-CV-RESNET: the coefficient of variation of the finite-width NTK at
initialisation, MLP vs ResNets at three alpha scalings, over depth, width and sample size."""
from __future__ import annotations

from functools import lru_cache

import numpy as np

from reskernels.theory import MLP, ResNet

from ..scope import Axis, scope_map


# --------------------------------------------------------------------------- Littwin: CV^2 ordering

@lru_cache(maxsize=256)
def _theta_diag(arch, width, n_init, seed):
    from reskernels.numerics.montecarlo import empirical_kernels
    x = np.zeros((1, 8))
    x[0, 0] = 1.0
    return np.array([empirical_kernels(arch, x, width, np.random.default_rng([seed, i]))["ntk"][0, 0]
                     for i in range(n_init)])


def _cv2(s):
    return s.var(ddof=1) / s.mean() ** 2


@scope_map("LITTWIN-CV-RESNET", (
    Axis("depth", (2, 8, 16), 8, "number of layers / blocks L", quick=(2, 8), ordered=True),
    Axis("width", (32, 64, 128), 64, "hidden width n", quick=(32, 64), ordered=True),
    Axis("n_init", (100, 200, 400), 200, "initialisations per network (CV^2 is heavy-tailed: small samples "
         "underestimate it, the MLP's most)", quick=(200,), ordered=True),
), "bootstrap median of log(CV^2 a / CV^2 b) for the least resolved adjacent pair, error = median minus "
   "its 5% quantile; holds where every pair of the order MLP > ResNet(1) > ResNet(L^-1/2) > ResNet(L^-1) holds "
   "with 95% bootstrap confidence, a tie where a pair is not resolved",
   "CV^2 = Var Theta(x,x) / (E Theta(x,x))^2 of the finite-width NTK is ordered MLP > ResNet(alpha=1) > "
   "ResNet(L^-1/2) > ResNet(L^-1)",
   "N(0,1) weights in the NTK parameterisation, trained='all', d = 8, one unit input; bootstrap 500 replicates",
   check_over=("width",))
def littwin_cv(at):
    L, w, m = at["depth"], at["width"], at["n_init"]
    models = {"MLP": MLP(L), "ResNet a=1": ResNet(L, 1.0), "ResNet a=L^-1/2": ResNet.with_gamma(L, 0.5),
              "ResNet a=L^-1": ResNet.with_gamma(L, 1.0)}
    samples = {nm: _theta_diag(arch, w, m, 1000 + 7 * i + L) for i, (nm, arch) in enumerate(models.items())}
    names = list(models)
    rng = np.random.default_rng(3)
    pairs = []
    for a, b in zip(names, names[1:]):
        idx = rng.integers(0, m, size=(500, m))
        ra = np.array([_cv2(samples[a][i]) for i in idx])
        rb = np.array([_cv2(samples[b][i]) for i in idx])
        q5, q50 = np.quantile(np.log(ra / rb), [0.05, 0.5])
        pairs.append((float(q5), float(q50)))
    q5, q50 = min(pairs)     # the least resolved pair
    # margin = its bootstrap median, error = median - 5% quantile: holds iff the 5% quantile is > 0,
    # a tie when the interval reaches 0 (the order is not resolved), fails when it is reversed
    return q50, {nm: _cv2(s) for nm, s in samples.items()} | {
        "pairs (5%, 50%) of log CV^2 ratio": [list(p) for p in pairs], "margin error": q50 - q5}

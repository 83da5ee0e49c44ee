"""Scope maps of the conditioning claims: BARZILAI-COND-NTK / -GPK (ResCNN vs CNN Gram condition
numbers over trained set, alpha scaling, baseline depth, readout, data, n) and HUANG-RESNET-STABLE
(the rate at which the normalised ResNTK approaches its deep limit N2, over gamma, depth and trained set)."""
from __future__ import annotations

import math
from functools import lru_cache

from reskernels.numerics import gram
from reskernels.numerics.gramspec import condition_number
from reskernels.numerics.limits import sup_distance_to_n2
from reskernels.theory import CNN, ResCNN

from ..scope import Axis, scope_map
from .data import ALPHA_SCALINGS, conv_data


@lru_cache(maxsize=4096)
def _cond(arch, kind, data, n, seed):
    return condition_number(gram(arch, conv_data(data, n, seed), kind=kind, normalize=True))


# --------------------------------------------------------------------------- Barzilai: conditioning

def _cond_axes():
    return (
        Axis("depth", (1, 4, 16, 64), 16, "number of residual blocks L of the ResCNN", quick=(4, 16), ordered=True),
        Axis("alpha", tuple(ALPHA_SCALINGS), "0.5", "residual scaling as a function of L"),
        Axis("trained", ("all", "hidden"), "all", "layers in the NTK (stem and readout trained or fixed)"),
        Axis("baseline", ("L+1", "2L+1"), "L+1", "depth of the plain CNN compared: L+1 (one conv per block, "
             "the suite's default) or 2L+1 (as many conv layers as the ResCNN)"),
        Axis("readout", ("center", "flatten", "gap"), "center", "readout of both networks"),
        Axis("data", ("multisphere", "image-rows", "digits"), "multisphere",
             "inputs (n points, 8-pixel circular signals): uniform MS(3, 8), photograph rows, digits",
             quick=("multisphere", "image-rows", "digits")),
        Axis("n", (50, 100, 200), 100, "number of points", quick=(100,), ordered=True),
    )


def _cond_point(kind, at, draws=(10, 11)):
    L = at["depth"]
    a = ALPHA_SCALINGS[at["alpha"]](L)
    Lb = L + 1 if at["baseline"] == "L+1" else 2 * L + 1
    res = ResCNN(L, a, readout=at["readout"], trained=at["trained"])
    base = CNN(Lb, readout=at["readout"], trained=at["trained"])
    cr = [_cond(res, kind, at["data"], at["n"], s) for s in draws]
    cb = [_cond(base, kind, at["data"], at["n"], s) for s in draws]
    margin = min(math.log10(b / r) for r, b in zip(cr, cb))
    return margin, {"cond ResCNN": cr, f"cond CNN({Lb})": cb}


_COND_FIXED = ("ResCNN(L, alpha, filter_size=3, stem_size=1, input_var=1, weight_var=2) vs CNN(baseline, same "
               "fields); diagonal-normalised Gram matrices without jitter; draws with seeds 10, 11")
_COND_MARGIN = ("log10(cond plain / cond residual), worst of 2 draws; > 0 where the residual kernel is better "
                "conditioned in every draw")


@scope_map("BARZILAI-COND-NTK", _cond_axes(), _COND_MARGIN,
           "the ResCNTK Gram matrix has a smaller condition number than the plain CNTK's in every draw", _COND_FIXED,
           check_over=("alpha", "data"))
def cond_ntk(at):
    return _cond_point("ntk", at)


@scope_map("BARZILAI-COND-GPK", _cond_axes(), _COND_MARGIN,
           "the ResCGPK Gram matrix has a smaller condition number than the plain CGPK's in every draw", _COND_FIXED,
           check_over=("alpha", "data"))
def cond_gpk(at):
    return _cond_point("nngp", at)


# --------------------------------------------------------------------------- Huang: the deep limit N2

@scope_map("HUANG-RESNET-STABLE", (
    Axis("gamma", (0.5, 0.75, 1.0, 1.5), 1.0, "alpha = L^-gamma (the statement: gamma > 1/2; 0.5 in the full "
         "sweep, the boundary)", quick=(0.75, 1.0), ordered=True),
    Axis("depth", (100, 1000, 10000), 1000, "number of blocks L (the rate is measured from L / 10 to L)",
         ordered=True),
    Axis("trained", ("all", "hidden"), "hidden", "layers in the NTK"),
), "-s - max((gamma - 1/2) / 2, 0.05), s the local slope of log sup_t |K_L - N2| on log L from L / 10 to L "
   "(K the normalised ResNTK); > 0 where the distance to N2 shrinks at least at half the predicted rate "
   "L^(1/2 - gamma), and at least like L^-0.05",
   "the normalised ResNTK tends to N2 as L grows (the statement; rate O(L^(1/2 - gamma)), docs/papers.md "
   "BELFER-SPIKY)",
   "sup over 2001 equispaced t in [-1, 1]; ReLU, weight_var = 2; N2 = the normalised MLP(1) NTK",
   check_over=("gamma", "trained"))
def huang_stable(at):
    L, g = at["depth"], at["gamma"]
    sups = [sup_distance_to_n2(D, g, at["trained"]) for D in (L // 10, L)]
    s = math.log10(sups[1] / sups[0])
    return -s - max((g - 0.5) / 2, 0.05), {"sup |K_L/10 - N2|": sups[0], "sup |K_L - N2|": sups[1],
                                           "local slope": s, "predicted": 0.5 - g}

"""Scope map of BARZILAI-LOCAL: single-pixel eigenvalue ratios of ResCNN(1, alpha) vs CNN(3) over
alpha, kernel, channels per pixel and trained set."""
from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

from reskernels.numerics.gramspec import walsh_spectrum
from reskernels.theory import CNN, ResCNN

from ..scope import Axis, scope_map


# --------------------------------------------------------------------------- Barzilai: locality

@lru_cache(maxsize=512)
def _single_pixel_ratios(arch, kind, C0, n_torus=16):
    """lambda(e_r) / lambda(e_0), r = 1, 2: degree-1 single-pixel eigenvalues relative to the centre."""
    if C0 == 1:   # finite Walsh sums: rounding only
        lam = walsh_spectrum(arch, kind, 7)
        return tuple(lam[frozenset({r})] / lam[frozenset({0})] for r in (1, 2)), 1e-12
    from ..common import torus
    S = torus(arch, kind, n_torus)
    lam, err = S.ray([(1, 0, 0, 0, 0), (0, 1, 0, 0, 0), (0, 0, 1, 0, 0)])
    rel = float(np.max(err / np.abs(lam)))   # the rule's doubling change, relative
    return (float(lam[1] / lam[0]), float(lam[2] / lam[0])), 2 * rel


@scope_map("BARZILAI-LOCAL", (
    Axis("alpha", (1.0, 0.5, 0.25, 0.125), 0.5, "residual scaling of ResCNN(1, alpha)", quick=(1.0, 0.5, 0.25),
         ordered=True),
    Axis("kind", ("nngp", "ntk"), "ntk", "kernel"),
    Axis("C0", (1, 2), 2, "channels per pixel: 1 (hypercube, Walsh eigenvalues) or 2 (products of circles, "
         "torus quadrature)"),
    Axis("trained", ("all", "hidden"), "all", "layers in the NTK (equal for the NNGP)"),
), "min over r = 1, 2 of log10(ratio plain / ratio residual), ratio = lambda(e_r) / lambda(e_0); > 0 where the "
   "residual kernel gives farther pixels relatively smaller eigenvalues",
   "ResCNN(1, alpha) single-pixel degree-1 eigenvalue ratios lie below CNN(3)'s (same receptive field)",
   "center readout, filter_size=3, stem_size=1, weight_var=2; C0 = 2 torus rule with 16 and 32 points per axis",
   check_over=("kind", "C0", "trained"))
def local(at):
    kw = dict(readout="center", trained=at["trained"])
    plain, e1 = _single_pixel_ratios(CNN(3, **kw), at["kind"], at["C0"])
    res, e2 = _single_pixel_ratios(ResCNN(1, at["alpha"], **kw), at["kind"], at["C0"])
    margin = min(math.log10(p / r) for p, r in zip(plain, res))
    # each ratio's relative error is at most twice the rule's relative change; log10(1 + e) <= e / ln 10
    return margin, {"ratios ResCNN": list(res), "ratios CNN(3)": list(plain), "margin error": (e1 + e2) / math.log(10)}

"""Bietti & Bach 2021 (arXiv 2009.14397): endpoint expansions fix the decay; deep equals shallow.

Contract mapping: their L-layer kernels are ``MLP(depth=L-1)`` (docs/papers.md §1, §8.3).
"""
from __future__ import annotations

from reskernels.numerics.decay import compare_decay, predicted_law
from reskernels.numerics.tolerances import ASYMPTOTIC_FACTOR
from reskernels.theory import MLP, ResNet
from reskernels.theory.harmonics import mu_mlp1_ntk

from ..registry import claim

CONV = "bias-free ReLU, input_var=1, weight_var=2, uniform measure on S^(d-1); certified mpmath eigenvalues"
KS = [50, 51, 100, 101, 150, 151, 200, 201]


@claim("BIETTI-ENDPOINT", "background", "§8.3 claim 1",
       "mu_k ~ (c_plus + (-1)^k c_minus) C(d, nu) k^(-d-2nu+1), with the endpoint coefficients of the "
       "kernel at t = +-1; the ratio to (c_plus +- c_minus) M_k(nu) is 1 + O(1/k^2).",
       "[recalled] statement; explicit constants [derived]", CONV, quick_seconds=15.0, factor=ASYMPTOTIC_FACTOR,
       constant_scale=1.0)
def endpoint(v, level, p):
    from ..common import spectrum
    cases = [(MLP(1), "ntk"), (MLP(2), "ntk"), (MLP(3), "ntk"), (MLP(2), "nngp"), (MLP(3), "nngp"),
             (ResNet(2, 1.0), "nngp")]
    for d in ((3,) if level == "quick" else (2, 3, 4)):
        for arch, kind in cases:
            mu = spectrum(arch, kind, d, 201, 20)
            law = predicted_law(arch, kind, d)
            law.c_plus *= p["constant_scale"]
            law.c_minus *= p["constant_scale"]
            res = compare_decay({k: mu[k] for k in KS}, law, kmin=50, factor=p["factor"])
            v.add(f"{arch.slug} {kind}, d={d}: ratio at k={[r[0] for r in res['rows']]}",
                  [round(r[1], 8) for r in res["rows"]], f"within {p['factor']}/k^2 of 1", res["all_ok"],
                  "|ratio - 1| <= 10/k^2", "the next singular term gives O(1/k^2) (docs/spectral.md §5.1)", "asymptotic")


@claim("BIETTI-DEEP-SHALLOW", "background", "§8.3 claim 2",
       "Deep ReLU NTKs and NNGPs decay with the shallow exponents (k^-d and k^-d-2) at every depth.",
       "[recalled]", CONV, quick_seconds=10.0, exponent_offset=0.0, slope_tol=0.03)
def deep_shallow(v, level, p):
    from ..common import local_slope, spectrum
    depths = [2, 3, 4] if level == "quick" else [2, 3, 4, 6, 8]
    d = 3
    out = {}
    ok = True
    for L in depths:
        for kind, s in (("ntk", d), ("nngp", d + 2)):
            mu = spectrum(MLP(L), kind, d, 201, 20)
            se, so = local_slope(mu, 100, 200), local_slope(mu, 101, 201)
            out[f"MLP({L}) {kind}"] = (se, so)
            want = -s + p["exponent_offset"]
            ok &= abs(se - want) <= p["slope_tol"] and abs(so - want) <= p["slope_tol"]
    v.add(f"log-log slopes k=100->200 (even), 101->201 (odd), d={d}", out, "-d (NTK), -d-2 (NNGP)", ok,
          f"+- {p['slope_tol']}", "O(1/k) corrections at k ~ 150", "mp")


@claim("BIETTI-PARITY", "background", "§8.3 claim 3",
       "The two-layer bias-free NTK (MLP(1)) has mu_k = 0 for odd k >= 3; from MLP(2) on all mu_k > 0.",
       "[derived]", CONV, quick_seconds=3.0, depth_positive=2)
def parity(v, level, p):
    from ..common import spectrum
    exact = [mu_mlp1_ntk(k, d) for d in (2, 3, 4) for k in range(3, 30, 2)]
    v.add("exact (sympy) mu_k of MLP(1).ntk, odd 3 <= k < 30, d = 2, 3, 4", sorted(set(map(str, exact))), ["0"],
          all(e == 0 for e in exact), "exactly 0", "closed form (docs/spectral.md §4.3)", "exact")
    mu1 = spectrum(MLP(1), "ntk", 3, 201, 20)
    v.add("numeric engine returns exact 0 for the same zeros (k <= 201, d = 3)", None, "0",
          all(mu1[k] == 0 for k in range(3, 202, 2)), "returned as exact 0 (below the stated floor)", "", "mp")
    mu2 = spectrum(MLP(p["depth_positive"]), "ntk", 3, 201, 20)
    v.add(f"MLP({p['depth_positive']}).ntk: every mu_k > 0, k <= 201", float(min(mu2)), "> 0", min(mu2) > 0,
          "strictly positive", "", "mp")

"""Bietti & Bach 2021 (arXiv 2009.14397): endpoint expansions fix the decay; deep equals shallow.

Contract mapping: their L-layer kernels are ``MLP(depth=L-1)`` (docs/papers.md §1, §8.3).
"""
from __future__ import annotations

import mpmath

from reskernels.numerics import kernel_mp
from reskernels.numerics.decay import compare_decay, predicted_law
from reskernels.numerics.tolerances import ASYMPTOTIC_FACTOR
from reskernels.theory import MLP, ResNet, harmonics
from reskernels.theory.harmonics import mu_mlp1_ntk

from ..registry import claim

CONV = "bias-free ReLU, input_var=1, weight_var=2, uniform measure on S^(d-1); certified mpmath eigenvalues"
KS = [50, 51, 100, 101, 150, 151, 200, 201]


def direct_mu(arch, kind, d, k, dps=25):
    """mu_k by an independent route: tanh-sinh quadrature in t (not Gauss-Legendre in theta) of
    c_d K(t) P_k(t) (1 - t^2)^((d-3)/2) over [-1, 1] split at -1/2, 0, 1/2, with c_d =
    Gamma(d/2)/(sqrt(pi) Gamma((d-1)/2)) and P_k = C_k^lambda / C_k^lambda(1), lambda = (d-2)/2
    (Legendre for d = 3; docs/spectral.md §0).  Returns (mu_k, the quadrature's error estimate)."""
    with mpmath.workdps(dps + 10):
        lam = mpmath.mpf(d - 2) / 2
        cd = mpmath.gamma(mpmath.mpf(d) / 2) / (mpmath.sqrt(mpmath.pi) * mpmath.gamma(mpmath.mpf(d - 1) / 2))
        if d == 3:
            pk = lambda t: mpmath.legendre(k, t)
        elif d == 2:
            pk = lambda t: mpmath.chebyt(k, t)
        else:
            pk = lambda t: mpmath.gegenbauer(k, lam, t) / mpmath.gegenbauer(k, lam, 1)
        f = lambda t: mpmath.mpf(kernel_mp(arch, t, kind, dps=dps + 5)) * pk(t) * (1 - t * t) ** ((d - 3) / mpmath.mpf(2))
        val, err = mpmath.quad(f, [-1, -0.5, 0, 0.5, 1], error=True)
        return cd * val, cd * err


def absolute_mu_check(v, arch, kind, d, ks, mu, dps=20):
    """One absolute check: the engine's mu_k (certified to dps digits) against :func:`direct_mu`."""
    worst = 0.0
    for k in ks:
        ref, qerr = direct_mu(arch, kind, d, k)
        with mpmath.workdps(dps + 10):
            tol = max(mpmath.mpf(10) ** (2 - dps), 10 * qerr / abs(ref))
            worst = max(worst, float(abs(mpmath.mpf(mu[k]) / ref - 1) / tol))
    v.add(f"absolute: {arch.slug.split('-iv')[0]} {kind}, d={d}, mu_k for k={list(ks)} vs tanh-sinh quadrature "
          "against the Legendre polynomial", float(f"{worst:.2e}"), "<= 1 (units of the tolerance)", worst <= 1,
          f"relative 1e-{dps - 2} or 10 x the quadrature's error estimate",
          "engine certified to dps digits; an independent quadrature (catches a wrong Funk-Hecke constant)", "mp")


def completeness_check(v, arch, kind, d, mu, kmax):
    """sum_k N(d,k) mu_k = K(1) (the addition theorem at t = 1), k > kmax from the endpoint law:
    catches a wrong multiplicity or normalisation that slopes and ratios cannot see."""
    law = predicted_law(arch, kind, d)
    with mpmath.workdps(30):
        head = mpmath.fsum(harmonics.multiplicity(d, k) * mu[k] for k in range(kmax + 1))
        K2 = 20 * kmax
        tail = mpmath.fsum(harmonics.multiplicity(d, k) * law.mu(k) for k in range(kmax + 1, K2))
        k1 = mpmath.mpf(kernel_mp(arch, 1, kind, dps=25))
        # law error O(1/k^2) relative (factor 10 / kmax^2) on the tail; terms past K2 ~ k^(exponent + d - 2)
        s = -law.exponent - d + 2
        rest = abs(harmonics.multiplicity(d, K2) * law.mu(K2)) * K2 / (s - 1)
        tol = ASYMPTOTIC_FACTOR / kmax ** 2 * abs(tail) + 2 * rest + mpmath.mpf(10) ** -15 * abs(k1)
        err = abs(head + tail - k1)
    v.add(f"absolute: sum_k N({d},k) mu_k of {arch.slug.split('-iv')[0]} {kind} = K(1) (k <= {kmax} from the "
          f"engine, the tail from the endpoint law)", float(err / abs(k1)), f"<= {float(tol / abs(k1)):.1e}",
          err <= tol, "the law's O(1/k^2) error on the tail + the truncated rest + 1e-15",
          "addition theorem at t = 1 (docs/spectral.md §1); catches a wrong multiplicity", "mp")


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
    absolute_mu_check(v, MLP(2), "ntk", 3, (2, 5), spectrum(MLP(2), "ntk", 3, 201, 20))
    completeness_check(v, MLP(2), "nngp", 3, spectrum(MLP(2), "nngp", 3, 201, 20), 201)


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
    absolute_mu_check(v, MLP(3), "ntk", d, (1, 4), spectrum(MLP(3), "ntk", d, 201, 20))
    completeness_check(v, MLP(3), "nngp", d, spectrum(MLP(3), "nngp", d, 201, 20), 201)
    v.scope = f"d = {d}, depths {depths} ({level} mode), slopes between k = 100 and 201: not every depth"


@claim("BIETTI-PARITY", "background", "§8.3 claim 3",
       "The two-layer bias-free NTK (MLP(1)) has mu_k = 0 for odd k >= 3; from MLP(2) on all mu_k > 0.",
       "[derived]", CONV, quick_seconds=3.0, depth_positive=2)
def parity(v, level, p):
    from ..common import spectrum
    sp_n = lambda e: __import__("sympy").N(e, 30)
    exact = [mu_mlp1_ntk(k, d) for d in (2, 3, 4) for k in range(3, 30, 2)]
    v.add("exact (sympy) mu_k of MLP(1).ntk, odd 3 <= k < 30, d = 2, 3, 4", sorted(set(map(str, exact))), ["0"],
          all(e == 0 for e in exact), "exactly 0", "closed form (docs/spectral.md §4.3)", "exact")
    mu1 = spectrum(MLP(1), "ntk", 3, 201, 20)
    v.add("numeric engine returns exact 0 for the same zeros (k <= 201, d = 3)", None, "0",
          all(mu1[k] == 0 for k in range(3, 202, 2)), "returned as exact 0 (below the stated floor)", "", "mp")
    depths = sorted({p["depth_positive"], 2, 3, 4})
    low = {L: float(min(spectrum(MLP(L), "ntk", 3, 201, 20))) for L in depths}
    v.add(f"MLP(L).ntk, L = {', '.join(map(str, depths))}: every mu_k > 0, k <= 201 (d = 3)", low, "> 0",
          all(x > 0 for x in low.values()), "strictly positive (min over k per depth)", "", "mp")
    v.scope = (f"zeros: exact (sympy) for d = 2, 3, 4, odd k < 30, and the engine's for d = 3, k <= 201; positivity: "
               f"certified mu_k, d = 3, k <= 201, depths {depths} (not every depth or d)")
    # absolute: the engine's even mu_k of MLP(1).ntk against the exact closed form (an independent route)
    exact_even = {k: mu_mlp1_ntk(k, 3) for k in range(0, 21, 2)}
    with mpmath.workdps(30):
        rel = max(float(abs(mu1[k] / mpmath.mpf(str(sp_n(e))) - 1)) for k, e in exact_even.items())
    v.add("absolute: engine mu_k of MLP(1).ntk, even k <= 20, d = 3, vs the exact closed form", rel, "<= 1e-18",
          rel <= 1e-18, "relative 1e-18", "engine certified to 20 digits; catches a wrong Funk-Hecke constant", "mp")

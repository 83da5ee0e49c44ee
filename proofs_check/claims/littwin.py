"""Littwin, Galanti, Wolf (UAI 2021, arXiv 2001.10460): finite-width fluctuations of the NTK.

CV^2 = Var Theta(x,x) / (E Theta(x,x))^2 over random initialisations of the finite
network (numerics.montecarlo), d = 8, unit input, every layer trained (docs/papers.md §6).
Point values of CV^2 are heavy-tailed, so the checks assert orderings through
bootstrap intervals, never point values.
"""
from __future__ import annotations

import zlib

import numpy as np

from reskernels.numerics import gram
from reskernels.numerics.montecarlo import empirical_kernels
from reskernels.numerics.tolerances import montecarlo_tol
from reskernels.theory import DenseNet, MLP, ResNet

from ..common import bootstrap
from ..registry import claim, record

CONV = "finite-width NTK parameterisation, N(0,1) weights, trained='all', d=8, one unit input"


def theta_diag_samples(arch, width, n_init, seed):
    x = np.zeros((1, 8))
    x[0, 0] = 1.0
    out = np.empty(n_init)
    for i in range(n_init):
        out[i] = empirical_kernels(arch, x, width, np.random.default_rng([seed, i]))["ntk"][0, 0]
    return out


def cv2(s):
    return s.var(ddof=1) / s.mean() ** 2


def _models(L):
    return {"MLP": MLP(L), "ResNet a=1": ResNet(L, 1.0), "ResNet a=1/sqrt(L)": ResNet.with_gamma(L, 0.5),
            "ResNet a=1/L": ResNet.with_gamma(L, 1.0)}


def _ordered(boot_a, boot_b, q):
    """Fraction of paired bootstrap replicates with a > b is at least q."""
    return float(np.mean(boot_a > boot_b)) >= q


@claim("LITTWIN-CV-RESNET", "littwin", "§6 claim 1",
       "The finite-width NTK's coefficient of variation at fixed depth is smallest for ResNets with "
       "proper (depth-scaled) initialisation: MLP > ResNet(1) > ResNet(1/sqrt L) > ResNet(1/L) at L >= 8, "
       "and CV^2 ~ 4/n for alpha = 1/sqrt(L) independently of L.",
       "[abstract]; quantitative form [derived]", CONV, quick_seconds=14.0, order_quantile=0.95, order=None,
       scaling_constant=4.0, scaling_margin=1.3, scaling_samples=3200)
def cv_resnet(v, level, p):
    """(a) The ordering at L = 8 by paired bootstrap replicates (>= 95%).  (b) "CV^2 ~ 4/n for alpha =
    1/sqrt(L), independently of L" as two equivalence tests on a larger sample of that column
    (scaling_samples initialisations at L = 2 and 8, twice as many in full mode; ~3 CPU s): the 90%
    bootstrap interval of CV^2 n / 4 at each L, and of the ratio CV^2(8) / CV^2(2), must lie within
    [1 / 1.3, 1.3] ("about", "independent": within 30%, docs/papers.md).  An interval outside fails; one
    straddling an end is undecided (inconclusive, reason stated).  Until 2026-12-03 (b) asked the 95%
    intervals of 200 draws to meet [0.7, 1.3], which fewer samples pass more easily."""
    width, n_init = 64, (200 if level == "quick" else 400)
    res = {}
    for L in (2, 8):
        for name, arch in _models(L).items():
            v.progress(len(res) + 1, 8, f"{name}, L={L}, {n_init} initialisations")
            s = theta_diag_samples(arch, width, n_init, seed=zlib.crc32(f'{name}-{L}'.encode()))
            res[(name, L)] = (s, cv2(s))
            _mean_row(v, arch, s, width, f"{name}, L={L}")
    names = list(p["order"] or _models(8))
    boots = {nm: bootstrap(res[(nm, 8)][0], cv2, 500, seed=i) for i, nm in enumerate(names)}
    v.extra["cv2_ci"] = {nm: np.quantile(b, [0.025, 0.975]).tolist() for nm, b in boots.items()}  # figure
    ok = all(_ordered(boots[a], boots[b], p["order_quantile"]) for a, b in zip(names, names[1:]))
    v.add("CV^2 ordering at L=8, n=64: " + " > ".join(names), [res[(nm, 8)][1] for nm in names],
          "decreasing", ok, f"each adjacent pair ordered in >= {p['order_quantile']:.0%} of bootstrap replicates",
          "CV^2 is heavy-tailed: orderings by bootstrap, never point values", "montecarlo")
    m, c = p["scaling_margin"], p["scaling_constant"]
    n_big = p["scaling_samples"] * (2 if level == "full" else 1)
    big = {}
    for L in (2, 8):
        arch = _models(L)["ResNet a=1/sqrt(L)"]
        s = theta_diag_samples(arch, width, n_big, seed=zlib.crc32(f"scaling-{L}".encode()))
        _mean_row(v, arch, s, width, f"ResNet a=1/sqrt(L), L={L}, {n_big} initialisations")
        big[L] = bootstrap(s, cv2, 1000, seed=10 + L) * width / c
    one = np.ones_like(big[2])
    decisions = {}
    for what, (a, b) in ((f"CV^2 n/{c:g} at L=2", (big[2], one)), (f"CV^2 n/{c:g} at L=8", (big[8], one)),
                         ("CV^2(L=8) / CV^2(L=2)", (big[8], big[2]))):
        decisions[what] = _ratio_within(a, b, m)
    v.extra["cv2_scaling"] = {w: {"decision": d, "90% interval": list(iv)} for w, (d, iv) in decisions.items()}
    v.add(f"alpha = 1/sqrt(L): CV^2 ~ {c:g}/n and independent of L ({n_big} initialisations, 90% bootstrap "
          "intervals)", {w: [round(x, 3) for x in iv] for w, (_, iv) in decisions.items()},
          f"each within [1/{m:g}, {m:g}]", all(d == "inside" for d, _ in decisions.values()),
          "equivalence: the interval inside the margin (" + ", ".join(f"{w}: {d}" for w, (d, _) in decisions.items())
          + ")", "docs/papers.md: ~4/n, independent of L within 30%", "montecarlo")
    straddle = [w for w, (d, _) in decisions.items() if d == "undecided"]
    if straddle and not any(d == "outside" for d, _ in decisions.values()) and all(
            mm.passed for mm in v.measurements[:-1]):
        v.status = "inconclusive"
        v.summary = (f"the 90% interval of {', '.join(straddle)} straddles the {m:g}x margin: more "
                     "initialisations (scaling_samples) would decide it")
    _distrust_if_means_disagree(v)


@claim("LITTWIN-MLP-DEPTH", "littwin", "§6 claim 2",
       "For MLPs convergence to the NTK needs depth fixed while width grows: CV^2 grows with L/n.",
       "[abstract]", CONV, quick_seconds=8.0, order_quantile=0.95, grows_with_depth=True)
def mlp_depth(v, level, p):
    n_init = 200 if level == "quick" else 400
    samples = {(L, n): theta_diag_samples(MLP(L), n, n_init, seed=L * 1000 + n)
               for L, n in [(2, 64), (8, 64), (32, 64), (8, 256)]}
    for (L, n), s in samples.items():
        _mean_row(v, MLP(L), s, n)
    boots = {k: bootstrap(s, cv2, 500, seed=k[0] + k[1]) for k, s in samples.items()}
    vals = {f"L={k[0]}, n={k[1]}": cv2(s) for k, s in samples.items()}
    v.extra["cv2_ci"] = {f"L={k[0]}, n={k[1]}": np.quantile(b, [0.025, 0.975]).tolist() for k, b in boots.items()}
    q = p["order_quantile"]
    a, b, c = (boots[(2, 64)], boots[(8, 64)], boots[(32, 64)])
    if not p["grows_with_depth"]:
        a, c = c, a
    v.add("CV^2 increases with L at n=64 (L = 2, 8, 32)", vals, "increasing" if p["grows_with_depth"] else "decreasing",
          _ordered(b, a, q) and _ordered(c, b, q),
          f"ordered in >= {q:.0%} of bootstrap replicates", "bootstrap over initialisations", "montecarlo")
    v.add("CV^2 decreases with n at L=8 (n = 64, 256)", vals, "decreasing",
          _ordered(boots[(8, 64)], boots[(8, 256)], q), f"ordered in >= {q:.0%} of bootstrap replicates",
          "bootstrap over initialisations", "montecarlo")
    # the spec's reference table gives CV^2 = 2.20 for MLP(32) at n = 64 from 200 initialisations; this
    # check's own 200 draws give another value: CV^2 is heavy-tailed (Theta ~ log-normal, Var log Theta ~ 2)
    v.extra["mlp32_n64"] = {"cv2_200": vals["L=32, n=64"], "spec_reference_200": 2.20,
                            "hanin_nica_exp(5L/n)-1": float(np.expm1(5 * 32 / 64)),
                            "note": "10^4 initialisations: 6.2, 95% bootstrap CI [4.4, 8.5]; 200-sample values "
                                    "scatter over [1.9, 11.6] (5-95%), median 3.7 (docs/papers.md LITTWIN-MLP-DEPTH)"}
    if level == "full":
        s = np.concatenate([samples[(32, 64)], theta_diag_samples(MLP(32), 64, 4000, seed=32064)])
        bb = bootstrap(s, cv2, 1000, seed=5)
        lo, hi = (float(x) for x in np.quantile(bb, [0.025, 0.975]))
        v.add(f"CV^2 of MLP(32), n = 64, from {len(s)} initialisations (95% bootstrap CI [{lo:.2f}, {hi:.2f}]) "
              "vs the spec's 200-initialisation reference 2.20", float(cv2(s)), "CI above 2.20",
              lo > 2.20, "the reference lies below the interval",
              "a 200-sample CV^2 of a heavy-tailed variable is usually low (median 3.7 of 50 disjoint subsets); "
              "Hanin-Nica exp(5L/n) - 1 = 11.2 fixes the order only", "montecarlo")
    _distrust_if_means_disagree(v)


def _increasing(boots, q) -> bool:
    return all(_ordered(b, a, q) for a, b in zip(boots, boots[1:]))


def _mean_row(v, arch, s, width, what=""):
    """Record E Theta(x, x) of the samples against the exact kernel (4 s.e.): the row that
    :func:`_distrust_if_means_disagree` reads."""
    exact = gram(arch, np.eye(8)[:1])[0, 0]
    se = s.std(ddof=1) / np.sqrt(len(s))
    v.add(f"E Theta(x,x), {what or arch.slug}, n={width}", float(s.mean()), float(exact),
          abs(s.mean() - exact) <= montecarlo_tol(se), "|mean - exact| <= 4 s.e.", f"{len(s)} initialisations",
          "montecarlo")
    v.measurements[-1].se = float(se)  # the s.e. the criterion uses, shown in the report


def _distrust_if_means_disagree(v):
    """A sample mean of Theta(x, x) off the exact kernel (the 'E Theta(x,x)' rows) means the sampler or
    the engine is wrong: then the CV^2 comparisons are not trusted (inconclusive), as the conv claims
    treat an engine disagreement (barzilai.ENGINE_DISAGREES)."""
    bad = [m.name for m in v.measurements if m.name.startswith("E Theta(x,x)") and not m.passed]
    if bad:
        v.status = "inconclusive"
        v.summary = ("the finite networks' mean NTK disagrees with the exact kernel (" + "; ".join(bad)
                     + "): the sampler or the engine is wrong, so the CV^2 comparisons are not trusted")
    return not bad


def _ratio_within(boot_a, boot_b, factor):
    """Equivalence of two independent bootstrap distributions of CV^2 n: the 90% interval of the ratio
    a / b (replicate by replicate) against [1 / factor, factor].  Returns (decision, interval):
    "inside" (the interval lies within: independent to that factor), "outside" (disjoint from it: a
    dependence larger than the factor) or "undecided" (it straddles an end: the sample cannot tell)."""
    lo, hi = (float(x) for x in np.quantile(boot_a / boot_b, [0.05, 0.95]))
    if 1 / factor <= lo and hi <= factor:
        return "inside", (lo, hi)
    if hi < 1 / factor or lo > factor:
        return "outside", (lo, hi)
    return "undecided", (lo, hi)


@claim("LITTWIN-DENSENET", "littwin", "§6 claim 3",
       "DenseNets converge at a rate independent of depth and weight scale.", "[abstract]",
       CONV + "; DenseNet of docs/conventions.md (concatenation of all earlier ReLU activations)",
       quick_seconds=12.0, order_quantile=0.95, depth_independent=True, scale_independent=True, factor=2.0)
def densenet(v, level, p):
    """CV^2 n of the finite-width DenseNet NTK at initialisation (n = 64) across depth (L = 2, 8, 32 at
    weight_var 2) and weight scale (weight_var 1, 2, 4 at L = 8).  'Independent' is an equivalence
    test, not a failure to find a difference: the 90% bootstrap interval of each ratio to the first
    case (CV^2 n(L) / CV^2 n(2), CV^2 n(c) / CV^2 n(1)) must lie within [1/factor, factor] (factor 2
    over a 16-fold depth range, where an MLP of this width changes by ~60x: Hanin-Nica exp(5 L / n) - 1,
    LITTWIN-MLP-DEPTH); an interval outside it is a dependence beyond the factor, one straddling an end
    is undecided at the factor -- a dependence all the same where it excludes 1.  Verdict: both parts
    inside -> holds; one inside and the other a dependence -> holds-in-scope (the scope names both);
    none inside and one outside -> fails; otherwise inconclusive (reason stated).  The expectation of each sample mean is
    checked against the kernel (4 s.e.) first, so the verdict rests on the engine being right.  (Until
    2026-12-03 'independent' meant that the 95% intervals of CV^2 n intersect, which fewer samples pass
    more easily: 200 initialisations said holds, 400 fails.)"""
    width, n_init, q = 64, (200 if level == "quick" else 400), p["order_quantile"]
    cases = {("L", L): DenseNet(L) for L in (2, 8, 32)}
    cases.update({("c", c): DenseNet(8, weight_var=c) for c in (1.0, 4.0)})
    cases[("c", 2.0)] = cases[("L", 8)]
    samples, boots, ivals = {}, {}, {}
    for key, arch in cases.items():
        if arch in samples:
            continue
        v.progress(len(samples) + 1, 5, f"{arch.slug}, {n_init} initialisations")
        s = theta_diag_samples(arch, width, n_init, seed=zlib.crc32(arch.slug.encode()))
        samples[arch] = s
        boots[arch] = bootstrap(s, cv2, 500, seed=zlib.crc32(arch.slug.encode()) % 1000) * width
        ivals[arch] = tuple(float(x) for x in np.quantile(boots[arch], [0.025, 0.975]))
        exact = gram(arch, np.eye(8)[:1])[0, 0]
        se = s.std(ddof=1) / np.sqrt(n_init)
        v.add(f"E Theta(x,x), {arch.slug}, n={width}", float(s.mean()), float(exact),
              abs(s.mean() - exact) <= montecarlo_tol(se) + 0.02 * exact,
              "|mean - exact| <= 4 s.e. + 2% (the O(L/n) bias of a finite DenseNet)",
              f"{n_init} initialisations", "montecarlo")
        v.measurements[-1].se = float(se)  # the s.e. the criterion uses, shown in the report
    depth = [cases[("L", L)] for L in (2, 8, 32)]
    scale = [cases[("c", c)] for c in (1.0, 2.0, 4.0)]
    f = p["factor"]
    parts, spans = {}, {}
    for part, label, archs, indep in (("depth", "depth L = 2, 8, 32 (weight_var 2)", depth, p["depth_independent"]),
                                      ("scale", "weight_var = 1, 2, 4 (L = 8)", scale, p["scale_independent"])):
        iv = [ivals[a] for a in archs]
        v.extra[f"CV^2 n across {label}: 95% bootstrap intervals"] = [list(x) for x in iv]
        if indep:
            got = [_ratio_within(boots[a], boots[archs[0]], f) for a in archs[1:]]
            decisions = [d for d, _ in got]
            parts[part] = ("outside" if "outside" in decisions else
                           "undecided" if "undecided" in decisions else "inside")
            spans[part] = (min(lo for _, (lo, _) in got), max(hi for _, (_, hi) in got))
            v.add(f"CV^2 n across {label}: 90% bootstrap intervals of the ratios to the first",
                  [[round(lo, 3), round(hi, 3)] for _, (lo, hi) in got], f"within [1/{f:g}, {f:g}]",
                  parts[part] == "inside", f"each ratio's 90% interval inside [1/{f:g}, {f:g}] (equivalence)",
                  "CV^2 is heavy-tailed: bootstrap intervals, never point values; 95% intervals of CV^2 n "
                  f"{[[round(x, 3) for x in i] for i in iv]}", "montecarlo")
        else:
            passed = _increasing([boots[a] for a in archs], q)
            parts[part] = "inside" if passed else "outside"
            v.add(f"CV^2 n across {label}: 95% bootstrap intervals", [list(x) for x in iv], "increasing", passed,
                  f"each step ordered in >= {q:.0%} of bootstrap replicates",
                  "CV^2 is heavy-tailed: bootstrap intervals, never point values", "montecarlo")
    if not _distrust_if_means_disagree(v) or not (p["depth_independent"] and p["scale_independent"]):
        return                                      # decided by the measurements (a wrong expectation)

    def reading(part):
        lo, hi = spans[part]
        if parts[part] == "inside":
            return f"independent to a factor {f:g} (ratios {lo:.2f}..{hi:.2f})"
        if parts[part] == "outside":
            return f"dependent beyond a factor {f:g} (ratios {lo:.2f}..{hi:.2f})"
        dep = "a dependence (the ratios' intervals exclude 1)" if (lo > 1 or hi < 1) else "no dependence shown"
        return f"{dep}, within a factor {f:g} undecided (ratios {lo:.2f}..{hi:.2f})"
    v.scope = (f"width n = 64, {n_init} initialisations; depth L = 2..32 at weight_var 2: {reading('depth')}; "
               f"weight_var 1..4 at L = 8: {reading('scale')}")
    dependent = {k for k in parts if parts[k] == "outside"
                 or (parts[k] == "undecided" and (spans[k][0] > 1 or spans[k][1] < 1))}
    inside = [k for k in parts if parts[k] == "inside"]
    if len(inside) == 2:
        v.status = "holds"
    elif len(inside) == 1 and dependent:
        v.status = "holds-in-scope"
        v.summary = f"holds for the {inside[0]}; {v.scope}"
    elif not inside and "outside" in parts.values():
        v.status = "fails"
        v.summary = v.scope
    else:
        v.status = "inconclusive"
        v.summary = (f"the bootstrap intervals of CV^2 n ratios straddle the equivalence margin [1/{f:g}, {f:g}] "
                     f"without showing a dependence ({v.scope}); `--full` doubles the initialisations")


def n_params(arch, width: int, d: int = 8) -> int:
    """Number of trainable scalars of the finite network (numerics.montecarlo.init_params)."""
    from reskernels.numerics.montecarlo import init_params
    return sum(t.size for ps in init_params(arch, d, width, np.random.default_rng(0)) for t in ps)


def width_for_params(arch, target: int) -> int:
    """The width whose parameter count is closest to ``target`` (the count is a quadratic in the width:
    fitted exactly from widths 1, 2, 3)."""
    y = [n_params(arch, m) for m in (1, 2, 3)]
    a = (y[2] - 2 * y[1] + y[0]) / 2
    b = y[1] - y[0] - 3 * a
    c = y[0] - a - b
    m = (-b + np.sqrt(b * b - 4 * a * (c - target))) / (2 * a) if a else (target - c) / b
    return int(min((max(1, int(np.floor(m))), int(np.ceil(m))), key=lambda w: abs(n_params(arch, w) - target)))


@claim("LITTWIN-DENSENET-PARAMS", "littwin", "§6 claim 3, against ResNets and MLPs",
       "DenseNets converge at a rate independent of depth: compared at equal parameter count with MLPs and "
       "ResNets (alpha = 1, 1/sqrt(L), 1/L), what 'independent of depth' means in numbers.", "[abstract]; numbers [derived]",
       CONV + "; DenseNet(L) at width 64, the others at the width with the same number of parameters (+-1%)",
       quick_seconds=2.0, order_quantile=0.95, densenet_depth_independent=True)
def densenet_params(v, level, p):
    """CV^2 of Theta(x, x) at L = 2 and 8 (full: also 32) for the five families at the parameter count
    of DenseNet(L, width 64).  Asserted, from bootstrap replicates: the DenseNet's CV^2 grows less from
    the smallest to the largest L than the MLP's and the alpha = 1 ResNet's; MLP and alpha = 1 ResNet
    CV^2 grow from L = 2 to 8; alpha = 1/L shrinks.  Reported: the DenseNet's own depth dependence as
    LITTWIN-DENSENET reads it (the 90% bootstrap interval of its CV^2 ratio against a factor 2), every
    CV^2 with its interval, widths and parameter counts."""
    n_init = 100 if level == "quick" else 400
    Ls = (2, 8) if level == "quick" else (2, 8, 32)
    fams = {"DenseNet": lambda L: DenseNet(L), "MLP": lambda L: MLP(L), "ResNet a=1": lambda L: ResNet(L, 1.0),
            "ResNet a=1/sqrt(L)": lambda L: ResNet.with_gamma(L, 0.5), "ResNet a=1/L": lambda L: ResNet.with_gamma(L, 1.0)}
    boots, table = {}, {}
    for L in Ls:
        target = n_params(DenseNet(L), 64)
        for name, mk in fams.items():
            arch = mk(L)
            w = 64 if name == "DenseNet" else width_for_params(arch, target)
            s = theta_diag_samples(arch, w, n_init, seed=zlib.crc32(f"{name}-{L}-params".encode()))
            _mean_row(v, arch, s, w, f"{name}, L={L}")
            b = bootstrap(s, cv2, 500, seed=zlib.crc32(f"{name}-{L}".encode()) % 1000)
            boots[(name, L)] = b
            lo, hi = (float(x) for x in np.quantile(b, [0.025, 0.975]))
            table[f"{name}, L={L}"] = {"width": w, "params": n_params(arch, w), "cv2": round(float(cv2(s)), 4),
                                       "ci": [round(lo, 4), round(hi, 4)]}
    q = p["order_quantile"]
    iv = [tuple(table[f"DenseNet, L={L}"]["ci"]) for L in Ls]
    lo_L, hi_L = Ls[0], Ls[-1]
    # the DenseNet's own depth dependence, read as in LITTWIN-DENSENET (reported): the 90% interval of
    # CV^2(L_max) / CV^2(L_min) against a factor 2
    same_order, span = _ratio_within(boots[("DenseNet", hi_L)], boots[("DenseNet", lo_L)], 2.0)
    growth = {nm: boots[(nm, hi_L)] / boots[(nm, lo_L)] for nm in ("DenseNet", "MLP", "ResNet a=1")}
    point = {nm: table[f"{nm}, L={hi_L}"]["cv2"] / table[f"{nm}, L={lo_L}"]["cv2"] for nm in growth}
    rivals = ("MLP",) if level == "quick" else ("MLP", "ResNet a=1")   # 100 draws cannot order the ResNet's
    slower = all(_ordered(growth[nm], growth["DenseNet"], q) for nm in rivals)
    want = p["densenet_depth_independent"]
    v.add(f"growth of CV^2 from L = {lo_L} to {hi_L} at equal parameter count: DenseNet vs {' and '.join(rivals)}",
          {k: round(x, 3) for k, x in point.items()}, "DenseNet's growth smallest" if want else "DenseNet's not smallest",
          slower == want, f"ordered in >= {q:.0%} of bootstrap replicates (ratios of independent replicates)",
          f"{n_init} initialisations per case; DenseNet 95% intervals across L "
          + f"{[list(x) for x in iv]}; its ratio L = {hi_L} / {lo_L}: 90% interval {span[0]:.2f}..{span[1]:.2f}",
          "montecarlo")
    for name, grows in (("MLP", True), ("ResNet a=1", True), ("ResNet a=1/L", False)):
        a, b = boots[(name, Ls[0])], boots[(name, Ls[1])]
        ok = _ordered(b, a, q) if grows else _ordered(a, b, q)
        v.add(f"{name} at the DenseNet's parameter count: CV^2 {'grows' if grows else 'shrinks'} from L = {Ls[0]} to {Ls[1]}",
              [table[f"{name}, L={L}"]["cv2"] for L in Ls], "increasing" if grows else "decreasing", ok,
              f"ordered in >= {q:.0%} of bootstrap replicates", "bootstrap over initialisations", "montecarlo")
    v.extra["table"] = table
    if v.all_passed and p["densenet_depth_independent"]:
        d = [table[f"DenseNet, L={L}"]["cv2"] for L in Ls]
        r = [table[f"ResNet a=1/sqrt(L), L={L}"]["cv2"] for L in Ls]
        m = [table[f"MLP, L={L}"]["cv2"] for L in Ls]
        v.status = "holds-in-scope"
        rl = [table[f"ResNet a=1/L, L={L}"]["cv2"] for L in Ls]
        slope = float(np.log(point["DenseNet"]) / np.log(hi_L / lo_L))
        reading = {"inside": "depth-independent to a factor 2", "outside": "depth-dependent beyond a factor 2",
                   "undecided": "depth dependence within a factor 2 undecided"}[same_order]
        v.scope = (f"the DenseNet's CV^2 is {reading} from L = {lo_L} to {hi_L} (ratio's 90% bootstrap interval "
                   f"{span[0]:.2f}..{span[1]:.2f}; log-log slope {slope:.2f}"
                   + f"; CV^2 {d} at width 64), far less than the MLP's at the same parameter count ({m}); the ResNet "
                   f"with alpha = 1/L at the same count shrinks with L ({rl}, tested); reported, not tested: alpha = "
                   f"1/sqrt(L) {r}" + ("; at the largest L the point values put a depth-scaled ResNet below the "
                                       "DenseNet (not the most stable per parameter; not tested)"
                                       if min(r[-1], rl[-1]) < d[-1] else ""))
    _distrust_if_means_disagree(v)

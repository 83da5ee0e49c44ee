"""Barzilai, Geifman, Galun, Basri (ICLR 2023, arXiv 2211.14810): kernels of convolutional ResNets.

ResCGPK / ResCNTK = ``ResCNN(L, alpha, filter_size=q, stem_size=1)`` nngp / ntk with readout
center (EqNet), flatten (trace) or gap; baseline ``CNN(L + 1)`` (docs/papers.md §7; whether the
paper trains stem and readout is [unknown], here trained="all").  Inputs on the multi-sphere
MS(C0, P): every pixel a unit vector of C0 channels.
"""
from __future__ import annotations

import numpy as np

from reskernels.numerics import gram
from reskernels.numerics.gramspec import condition_number, double_constant_cond, double_constant_lower_bound
from reskernels.numerics.reference import conv_kernel_reference
from reskernels.numerics.samplers import multisphere
from reskernels.numerics.tolerances import DIAGONAL_RTOL, EPS, half_unit
from reskernels.theory import CNN, ResCNN

from ..registry import claim, record

CONV = ("circular 1-D signals, multi-sphere MS(C0=3, P) inputs, filter_size=3, stem_size=1, "
        "input_var=1, weight_var=2, trained='all'; baseline CNN(L+1)")


def engine_check(v, archs, kinds=("ntk", "nngp"), normalize=False, n=6, P=8, seed=21, X=None, what=None):
    """The engine against an independent route where its errors would show: ``gram`` (the default
    backend) vs :func:`numerics.reference.conv_kernel_reference` (full P x P pixel-pair matrices,
    explicit tap arithmetic, plain arccos) on n generic MS(3, P) points, P = 8 pixels > 3 taps,
    every entry (off-diagonal ones see the patch operator, diagonals on MS do not); the numpy
    backend vs the compiled one on the same points; and, for center and flatten readouts, the route of
    the spectra (:func:`numerics.multisphere.multi_dot_kernel`, F(t_1, ..., t_P) of the pixel cosines,
    which the torus and ray spectra integrate; numpy and numba backends) against the same reference at
    those points' cosines.  Every route rounds a few times per layer and arccos amplifies by
    1/sin(theta) (generic pairs): tolerance 16 (depth + 1) eps relative to max|K|.  ``X`` (with ``what``,
    its description): the claim's own inputs instead (pixels of unequal norms, such as digit signals:
    then the variance-carrying path; no spectra's route, which takes unit pixels)."""
    from reskernels.numerics import conv_fused
    from reskernels.numerics.multisphere import multi_dot_kernel
    own = X is not None
    if not own:
        X = multisphere(n, P, 3, seed)
        what = f"{n} MS(3, {P}) points"
    n = len(X)
    T = np.clip(np.einsum("ipc,jpc->ijp", X, X), -1.0, 1.0)      # the pairs' pixel cosines (unit pixels)
    T[np.arange(n), np.arange(n)] = 1.0      # a pair (x, x): exactly 1 (the dot products round to 1 - 2^-52,
    # another input, where F's sqrt(1 - t) term moves the kernel by ~1e-8)
    md_backends = ("numpy", "numba") if conv_fused.available() else ("numpy",)
    worst, worst_be, worst_md, md_names = 0.0, 0.0, 0.0, []
    for arch in archs:
        tol = 16 * (arch.depth + 1) * EPS
        spectral = arch.readout in ("center", "flatten") and not own
        if spectral:
            md_names.append(arch.slug.split("-iv")[0])
        for kind in kinds:
            R = conv_kernel_reference(arch, X, kind=kind, normalize=normalize)
            K = gram(arch, X, kind=kind, normalize=normalize)
            scale = float(np.abs(R).max())
            worst = max(worst, float(np.abs(K - R).max()) / scale / tol)
            if conv_fused.available():
                Kp = gram(arch, X, kind=kind, normalize=normalize, backend="numpy")
                Kb = gram(arch, X, kind=kind, normalize=normalize, backend="numba")
                worst_be = max(worst_be, float(np.abs(Kp - Kb).max()) / scale / tol)
            if spectral:
                for be in md_backends:
                    F = multi_dot_kernel(arch, T, kind, normalize=normalize, backend=be)
                    worst_md = max(worst_md, float(np.abs(F - R).max()) / scale / tol)
    names = ", ".join(a.slug.split("-iv")[0] for a in archs)
    v.add(f"engine vs independent route (numerics.reference), {what}, every entry, "
          f"{'/'.join(kinds)}: {names}", round(worst, 3), "<= 1 (units of 16 (depth+1) eps)", worst <= 1,
          "max |gram - reference| / max|reference| <= 16 (depth + 1) eps",
          "two float64 routes, a few roundings per layer; P > taps, so a wrong tap set or a skipped "
          "patch step moves entries by >= 1e-3", "float64")
    if conv_fused.available():
        v.add(f"numpy backend vs numba backend on the same points: {names}", round(worst_be, 3),
              "<= 1 (units of 16 (depth+1) eps)", worst_be <= 1,
              "max |numpy - numba| / max|K| <= 16 (depth + 1) eps", "the same operations up to libm's acos",
              "float64")
    if md_names:
        v.add(f"the spectra's route F(t_1, ..., t_P) (numerics.multisphere.multi_dot_kernel, {'/'.join(md_backends)}) "
              f"vs the independent route at the same points' pixel cosines: {', '.join(md_names)}",
              round(worst_md, 3), "<= 1 (units of 16 (depth+1) eps)", worst_md <= 1,
              "max |F - reference| / max|reference| <= 16 (depth + 1) eps",
              "the torus and ray spectra integrate this F; P > taps, so its own tap set or layer count shows",
              "float64")
    ok = worst <= 1 and worst_be <= 1 and worst_md <= 1
    if not ok:
        v.status = "inconclusive"
        v.summary = ENGINE_DISAGREES
    return ok


ENGINE_DISAGREES = ("the engine disagrees with the independent route (numerics.reference) or across backends: "
                    "the kernel values behind this verdict cannot be trusted")


@claim("BARZILAI-EIGFUN", "barzilai", "§7 claim 1",
       "Center and flatten kernels are multi-dot-product kernels on MS (eigenfunctions: products of "
       "spherical harmonics over pixels); gap is the shift-symmetrised flatten kernel.",
       "[abstract] gist; [derived] form", CONV + "; (c) C0 = 2 product grid 8^3", quick_seconds=2.0, rtol=1e-13,
       spec_rtol=1e-12, invariant=("center", "flatten"))
def eigfun(v, level, p):
    rng = np.random.default_rng(0)
    P, C = 6, 3
    X = multisphere(5, P, C, 1)
    Q = [np.linalg.qr(rng.standard_normal((C, C)))[0] for _ in range(P)]
    XR = np.stack([X[:, i] @ Q[i] for i in range(P)], axis=1)
    for r in ("center", "flatten", "gap"):
        arch = ResCNN(2, 0.6, readout=r)
        K, KR = gram(arch, X), gram(arch, XR)
        err = float(np.abs(KR - K).max() / np.abs(K).max())
        if r not in p["invariant"]:
            v.add(f"{r} changes under per-pixel rotations (negative control)", err, "> 1e-3", err > 1e-3,
                  "relative change > 1e-3", "gap involves <x_i, z_j> for i != j")
        else:
            v.add(f"{r}: invariant under independent per-pixel rotations", err, f"<= {p['rtol']}",
                  err <= p["rtol"], f"relative {p['rtol']}", "float64 rounding")
    arch_c, arch_f, arch_g = (ResCNN(2, 0.6, readout=r) for r in ("center", "flatten", "gap"))
    flat = gram(arch_f, X)
    via_center = np.mean([gram(arch_c, np.roll(X, s, axis=1)) for s in range(P)], axis=0)
    e1 = float(np.abs(flat - via_center).max() / np.abs(flat).max())
    gap = gram(arch_g, X)
    via_flat = np.mean([gram(arch_f, X, np.roll(X, s, axis=1)) for s in range(P)], axis=0)
    e2 = float(np.abs(gap - via_flat).max() / np.abs(gap).max())
    v.add("flatten(x,z) = (1/P) sum_s center(t_s x, t_s z)", e1, f"<= {p['rtol']}", e1 <= p["rtol"],
          f"relative {p['rtol']}", "exact identity; rounding only")
    v.add("gap(x,z) = (1/P) sum_s flatten(x, t_s z)", e2, f"<= {p['rtol']}", e2 <= p["rtol"],
          f"relative {p['rtol']}", "exact identity; rounding only")
    _torus_gram_spectra(v, p)
    engine_check(v, [ResCNN(2, 0.6, readout=r) for r in ("center", "flatten", "gap")])


def _torus_gram_spectra(v, p):
    """(c) C0 = 2: on the product grid of n^P points (pixel angles 2 pi j / n) the Gram matrix is
    multilevel circulant, so K / n^P has exactly the torus-rule eigenvalues lambda_k, k in Z_n^P
    (flatten), and for gap one lambda^flatten per orbit of cyclic shifts, the rest 0."""
    import itertools

    from reskernels.numerics.multisphere import torus_spectrum
    P, n = 3, 8
    freqs = list(itertools.product(range(n), repeat=P))
    grid = np.array(freqs, dtype=float) * (2 * np.pi / n)
    X = np.stack([np.cos(grid), np.sin(grid)], axis=-1)
    fold = lambda k: tuple(min(x, n - x) for x in k)
    for kind in ("nngp", "ntk"):
        flat = torus_spectrum(ResCNN(2, 0.6, readout="flatten"), kind, n, P=P, normalize=False)
        want_f = np.sort([flat[fold(k)] for k in freqs])
        orbits = {min(tuple(np.roll(k, s_)) for s_ in range(P)) for k in freqs}
        want_g = np.sort([flat[fold(k)] for k in orbits] + [0.0] * (len(freqs) - len(orbits)))
        for r, want in (("flatten", want_f), ("gap", want_g)):
            K = gram(ResCNN(2, 0.6, readout=r), X, kind=kind) / len(freqs)
            got = np.linalg.eigvalsh(K)
            err = float(np.abs(got - want).max() / want.max())
            v.add(f"C0 = 2, {r} {kind}: Gram spectrum of the {n}^{P} grid vs torus eigenvalues "
                  f"({'one per shift orbit, else 0' if r == 'gap' else 'every frequency'})", err,
                  f"<= {p['spec_rtol']}", err <= p["spec_rtol"], f"relative {p['spec_rtol']}",
                  "exact on the grid; symmetric eigensolver rounding ~ N eps", "float64")


@claim("BARZILAI-DIAG", "barzilai", "§7 claim 7",
       "Closed-form diagonals on MS: ResCNN pixel NNGP (1+a^2)^L, center/flatten NTK "
       "(1+a^2)^L (2 + 2 L a^2/(1+a^2)); CNN(L) center/flatten NTK L + 1, NNGP 1.",
       "[derived]", CONV, quick_seconds=0.5, rescnn=(3.42102016, 14.0865536), cnn_ntk=lambda L: L + 1.0)
def diag(v, level, p):
    X = multisphere(6, 8, 3, 2)
    for r in ("center", "flatten"):
        got_g = np.diag(gram(ResCNN(4, 0.6, readout=r), X, kind="nngp"))
        got_t = np.diag(gram(ResCNN(4, 0.6, readout=r), X))
        want_g, want_t = p["rescnn"]
        ok = (np.allclose(got_g, want_g, rtol=DIAGONAL_RTOL, atol=0)
              and np.allclose(got_t, want_t, rtol=DIAGONAL_RTOL, atol=0))
        v.add(f"ResCNN(4, 0.6, {r}) diagonal NNGP / NTK", [float(got_g.max()), float(got_t.max())],
              [want_g, want_t], ok, "rtol 1e-14", "rho = 1 is exact for the same pixel (docs/papers.md NUM-RHO1)", "exact")
        got_c = np.diag(gram(CNN(5, readout=r), X))
        v.add(f"CNN(5, {r}) NTK diagonal", float(got_c.max()), p["cnn_ntk"](5),
              np.allclose(got_c, p["cnn_ntk"](5), rtol=DIAGONAL_RTOL, atol=0), "rtol 1e-14", "", "exact")
    g = np.diag(gram(ResCNN(2, 0.6, readout="gap"), X))
    v.add("gap diagonal depends on x (cross-pixel correlations)", float(g.std() / g.mean()), "> 0",
          g.std() > 1e-6 * g.mean(), "varies over inputs", "normalise gap Gram matrices by their diagonal")
    # the diagonals on MS cannot see the patch operator (every pixel pair has rho = 1): the same
    # kernels off the diagonal against the independent route
    engine_check(v, [ResCNN(4, 0.6, readout=r) for r in ("center", "flatten")]
                 + [CNN(5, readout=r) for r in ("center", "flatten")] + [ResCNN(2, 0.6, readout="gap")])


@claim("BARZILAI-DOUBLE-CONSTANT", "barzilai", "§7 claim 6",
       "Deep normalised NTKs tend to double-constant kernels (b = 1/4 for center/flatten, P/(P+3) for gap), "
       "whose condition number is (a + (n-1) b)/(a - b).", "[derived]", CONV, quick_seconds=3.0,
       b_local=0.25, b_gap=lambda P: P / (P + 3))
def double_constant(v, level, p):
    n = 100
    K = np.full((n, n), 0.3) + 0.7 * np.eye(n)
    e = abs(condition_number(K) / double_constant_cond(1.0, 0.3, n) - 1)
    v.add("cond of a synthetic double-constant matrix vs (a+(n-1)b)/(a-b)", e, "<= 1e-12", e <= 1e-12,
          "relative 1e-12", "exact algebra", "exact")
    v.add("comparison bound at beta_min = 1/4, n = 100", double_constant_lower_bound(0.25, n), 103 / 3,
          abs(double_constant_lower_bound(0.25, n) - 103 / 3) < 1e-12, "exact", "", "exact")
    # every off-diagonal entry of the normalised Gram matrix of 5 MS(3, 8) points, at four depths
    # L, 2L, 4L, 8L; b(L) = b + (c log L + e)/L fitted through three consecutive depths (the
    # deviation shrinks like log L / L: 0.0171, 0.0096, 0.0053, 0.0029 for CNN at L = 150..1200)
    # gives two extrapolations; the claimed limit must lie within twice their difference of the
    # later one (the extrapolation error shrinks geometrically, ~3x per doubling)
    X = multisphere(5, 8, 3, 3)
    iu = np.triu_indices(len(X), 1)

    def extrapolate(Ls, B):
        A = np.array([[1.0, np.log(L) / L, 1.0 / L] for L in Ls])
        return np.linalg.solve(A, B)[0]

    rows = {}
    for make, L0, want, name in [(lambda L: CNN(L, readout="center"), 150, p["b_local"], "CNN(L) center"),
                                 (lambda L: ResCNN(L, 0.5, readout="flatten"), 500, p["b_local"],
                                  "ResCNN(L, 0.5) flatten"),
                                 (lambda L: ResCNN(L, 0.5, readout="gap"), 250, p["b_gap"](8),
                                  "ResCNN(L, 0.5) gap, P=8")]:
        Ls = [L0, 2 * L0, 4 * L0, 8 * L0]
        B = np.array([gram(make(L), X, normalize=True)[iu] for L in Ls])
        e1, e2 = extrapolate(Ls[:3], B[:3]), extrapolate(Ls[1:], B[1:])
        dev = float(np.abs(e2 - want).max())
        change = float(np.abs(e2 - e1).max())
        rows[name] = {"L": Ls, "mean off-diagonal": B.mean(axis=1).round(5).tolist(),
                      "extrapolated (min, max)": [float(e2.min()), float(e2.max())]}
        v.add(f"{name}: normalised NTK off-diagonal ({len(iu[0])} pairs) at L = {Ls}, extrapolated in L",
              [round(float(e2.min()), 5), round(float(e2.max()), 5)], want, dev <= 2 * change and change <= 1e-2,
              "|extrapolated - limit| <= 2 |change between the two extrapolations| for every pair, that change "
              "<= 1e-2 (converging extrapolations; measured 1.5e-4 to 1e-3)",
              f"extrapolation change {change:.1e}; raw deviation at L = {Ls[-1]}: "
              f"{float(np.abs(B[-1] - want).max()):.1e}", "float64")
    v.extra["double_constant"] = rows
    engine_check(v, [CNN(150, readout="center"), ResCNN(500, 0.5, readout="flatten"),
                     ResCNN(250, 0.5, readout="gap")], kinds=("ntk",), normalize=True)


def _cond_setup(level):
    return [1, 4, 16] + ([64] if level == "full" else []), ["center", "flatten"] + (["gap"] if level == "full" else [])


def _cond_engine(v, kind, level):
    """Every kernel of the condition-number table against the independent route (normalised)."""
    Ls, readouts = _cond_setup(level)
    archs = [a for L in Ls for r in readouts
             for a in [CNN(L + 1, readout=r)] + [ResCNN(L, al, readout=r) for al in (0.5, 1.0, L ** -0.5)]]
    return engine_check(v, archs, kinds=(kind,), normalize=True)


def _cond_table(kind, level):
    Ls, readouts = _cond_setup(level)
    draws = [multisphere(100, 8, 3, seed) for seed in (10, 11, 12)]
    rows = {}
    for L in Ls:
        for r in readouts:
            base = [condition_number(gram(CNN(L + 1, readout=r), X, kind=kind, normalize=True)) for X in draws]
            for a_name, a in (("0.5", 0.5), ("1", 1.0), ("1/sqrt(L)", L ** -0.5)):
                res = [condition_number(gram(ResCNN(L, a, readout=r), X, kind=kind, normalize=True)) for X in draws]
                rows[(L, r, a_name)] = (base, res)
    return rows


@claim("BARZILAI-COND-GPK", "barzilai", "§7 claim 4",
       "The residual GPK (NNGP) is better conditioned than the non-residual one at finite depth.",
       "[abstract] gist; scope [derived]", CONV + "; n = 100 uniform MS(3, 8) points, 3 draws, "
       "diagonal-normalised Gram matrices, no jitter", quick_seconds=8.0, from_depth=16, residual_better=True)
def cond_gpk(v, level, p):
    rows = _cond_table("nngp", level)
    ordered_at = {}
    for (L, r, a), (base, res) in sorted(rows.items()):
        ordered = all((x < y) == p["residual_better"] for x, y in zip(res, base))
        ordered_at.setdefault((r, a), []).append((L, ordered))
        if L >= p["from_depth"]:
            v.add(f"L={L}, {r}, alpha={a}: cond ResCNN vs CNN(L+1) (3 draws)",
                  [[round(x) for x in res], [round(y) for y in base]], "residual < plain", ordered,
                  "in every draw", "condition numbers of exact kernels; no jitter", "float64")
    # per (readout, alpha): the smallest tested L from which the ordering holds at every larger tested L
    smallest = {}
    for (r, a), seq in ordered_at.items():
        tail = [L for i, (L, _) in enumerate(seq) if all(ok for _, ok in seq[i:])]
        smallest[f"{r}, alpha={a}"] = tail[0] if tail else None
    v.extra["smallest_depth_with_ordering"] = smallest
    small = {k: f"{[round(x) for x in b[1]]} vs {[round(x) for x in b[0]]}" for k, b in rows.items() if k[0] < p["from_depth"]}
    v.extra["small_depth_rows"] = {str(k): s for k, s in small.items()}
    if not _cond_engine(v, "nngp", level):
        return
    v.status = "holds-in-scope" if v.all_passed else "fails"
    checked = "center, flatten and gap" if level == "full" else "center and flatten (gap in --full)"
    v.scope = (f"holds for L >= {p['from_depth']} at the tested depths (readouts checked: {checked}; alpha = 0.5, "
               "1, 1/sqrt(L)); at small L the residual GPK can be worse conditioned (close to the centre "
               "pixel's linear kernel)")


@claim("BARZILAI-COND-NTK", "barzilai", "§7 claim 5",
       "The residual NTK is better conditioned than the non-residual one at finite depth.",
       "[abstract] gist", CONV + "; n = 100 uniform MS(3, 8) points, 3 draws", quick_seconds=8.0,
       residual_better=True)
def cond_ntk(v, level, p):
    rows = _cond_table("ntk", level)
    for (L, r, a), (base, res) in sorted(rows.items()):
        if L < 4 or a == "1/sqrt(L)" and L == 1:
            continue
        ordered = all((x < y) == p["residual_better"] for x, y in zip(res, base))
        v.add(f"L={L}, {r}, alpha={a}: cond ResCNN vs CNN(L+1) (3 draws)",
              [[round(x, 1) for x in res], [round(y, 1) for y in base]],
              "residual < plain" if p["residual_better"] else "plain < residual", ordered, "in every draw",
              "condition numbers of exact kernels; no jitter", "float64")
    if not _cond_engine(v, "ntk", level):
        return
    checked = [m for m in v.measurements if m.name.startswith("L=")]
    plain_smaller = [m for m in checked if all(y < x for x, y in zip(*m.value))]
    if checked and len(plain_smaller) == len(checked):
        found = ("the plain CNN NTK has the smaller condition number at every depth >= 4 tested (every draw): both "
                 "tend to double-constant kernels and the plain one gets there faster; a small NTK condition number "
                 "at depth signals degeneration")
    else:
        res_smaller = [m for m in checked if all(x < y for x, y in zip(*m.value))]
        found = (f"the residual NTK is the better conditioned one in every draw at {len(res_smaller)} and the plain "
                 f"one at {len(plain_smaller)} of {len(checked)} (depth, readout, alpha) points tested (depth >= 4; "
                 "the draws disagree at the others)")
    v.scope = (f"under the contract conventions on uniform multi-sphere data {found}. The paper's statement may "
               "concern bounds, real data, another baseline or other trained layers [unknown].")
    v.summary = "does not hold for the NTK under these conventions (the GPK version does: BARZILAI-COND-GPK)" \
        if not v.all_passed and p["residual_better"] else ""


@claim("BARZILAI-LOCAL", "barzilai", "§7 claim 3",
       "Residual kernels are more locally biased: relative to the centre pixel, farther single pixels get "
       "smaller eigenvalues than for the plain CNN of the same receptive field, the more so the smaller alpha.",
       "[abstract] gist; [derived] form", "center readout, receptive radius 2: ResCNN(1, alpha, q=3) vs CNN(3, q=3); "
       "normalised kernels; (a) C0 = 2: products of circles, trapezoid rule on the 5-torus (n and 2n points per "
       "axis); (b) C0 = 1: hypercube {+-1}^7, Walsh eigenvalues of single-pixel characters", quick_seconds=3.0,
       alphas=(1.0, 0.5, 0.25), n=16,
       plain_table={"nngp": (0.667, 0.333), "ntk": (0.667, 0.333)},
       table={("nngp", 1.0): (0.095, 0.048), ("ntk", 1.0): (0.167, 0.083), ("nngp", 0.5): (0.027, 0.013),
              ("ntk", 0.5): (0.051, 0.026), ("nngp", 0.25): (0.0069, 0.0034), ("ntk", 0.25): (0.0136, 0.0068)})
def local(v, level, p):
    from reskernels.numerics.gramspec import walsh_spectrum

    from ..common import torus
    single = [(1, 0, 0, 0, 0), (0, 1, 0, 0, 0), (0, 0, 1, 0, 0)]   # e_0, e_1, e_2 at degree 1

    def torus_ratios(arch, kind):
        S = torus(arch, kind, p["n"])
        lam, err = S.ray(single)
        rel = float(np.max(err / lam))
        return [lam[1] / lam[0], lam[2] / lam[0]], rel

    rows, worst_rel = {}, 0.0
    for kind in ("nngp", "ntk"):
        plain, rel = torus_ratios(CNN(3, readout="center"), kind)
        worst_rel = max(worst_rel, rel)
        rows[f"C0=2 CNN(3) {kind}"] = plain
        want = p["plain_table"][kind]
        v.add(f"{kind}: C0 = 2, CNN(3) ratios vs docs/papers.md table", plain, list(want),
              all(abs(x - w) <= max(0.02 * w, half_unit(w)) for x, w in zip(plain, want)),
              "within 2% or half a unit of the last printed digit", "table printed to 3 digits", "quadrature")
        prev = None
        for a in p["alphas"]:
            res, rel = torus_ratios(ResCNN(1, a, readout="center"), kind)
            worst_rel = max(worst_rel, rel)
            rows[f"C0=2 ResCNN(1, {a}) {kind}"] = res
            want = p["table"].get((kind, a))
            if want is not None:
                v.add(f"{kind}: C0 = 2, ResCNN(1, {a}) ratios vs docs/papers.md table", res, list(want),
                      all(abs(x - w) <= max(0.02 * w, half_unit(w)) for x, w in zip(res, want)),
                      "within 2% or half a unit of the last printed digit", "table printed to 2 digits", "quadrature")
            v.add(f"{kind}: C0 = 2, lambda(e_r)/lambda(e_0), r = 1, 2: ResCNN(1, {a}) below CNN(3)", res, plain,
                  all(x < y for x, y in zip(res, plain)), "entrywise smaller", "locality ordering", "quadrature")
            if prev is not None:
                v.add(f"{kind}: C0 = 2, ratios decrease with alpha ({prev[0]} -> {a})", res, prev[1],
                      all(x < y for x, y in zip(res, prev[1])), "entrywise smaller", "", "quadrature")
            prev = (a, res)
    v.add("torus rule converged for the degree-1 single-pixel eigenvalues (max relative doubling change)",
          worst_rel, "<= 1e-3", worst_rel <= 1e-3, "rule n vs 2n", "the ratios are compared at 2%", "quadrature")
    # (b) hypercube: finite Walsh sums
    P = 7
    for kind in ("nngp", "ntk"):
        lam = walsh_spectrum(CNN(3, readout="center"), kind, P)
        plain = [lam[frozenset({r})] / lam[frozenset({0})] for r in (1, 2)]
        rows[f"C0=1 CNN(3) {kind}"] = plain
        for a in p["alphas"]:
            lr = walsh_spectrum(ResCNN(1, a, readout="center"), kind, P)
            res = [lr[frozenset({r})] / lr[frozenset({0})] for r in (1, 2)]
            rows[f"C0=1 ResCNN(1, {a}) {kind}"] = res
            v.add(f"{kind}: C0 = 1, ResCNN(1, {a}) below CNN(3)", res, plain,
                  all(x < y for x, y in zip(res, plain)), "entrywise smaller", "locality ordering", "float64")
    v.extra["ratios"] = rows
    engine_check(v, [CNN(3, readout="center")] + [ResCNN(1, a, readout="center") for a in p["alphas"]])
    v.scope = ("single-pixel degree-1 eigenvalues, C0 = 2 (trapezoid on the 5-torus) and C0 = 1 (hypercube); "
               "the ResCNN(1) ratios do not depend on C0, the CNN(3) ones do (2/3, 1/3 for C0 = 2)")


@claim("BARZILAI-DECAY", "barzilai", "§7 claim 2",
       "ResCGPK / ResCNTK eigenvalues decay polynomially at a rate similar to CGPK / CNTK.", "[abstract]",
       "C0 = 2 (products of circles), center readout, receptive radius 2: ResCNN(1, alpha, q=3) vs CNN(3, q=3), "
       "normalised kernels; single-pixel rays by numerics.ray_spectra (uniform DCT in the active angle, graded "
       "rule in the inactive ones, error from two rules each); points with estimated error <= rel_err; slopes "
       "with bounds (quadrature + model) and the exponents predicted from the singular windows of the pixel "
       "recursion",
       quick_seconds=20.0, tol=0.1, rel_err=0.01, min_points=6, model="power",
       residual=ResCNN(1, 0.5, readout="center"), plain=CNN(3, readout="center"),
       kinds=("nngp",), full_kinds=("nngp", "ntk"), full_alphas=(0.5, 1.0), full_depths=(2, 3), P=5,
       plain_rules=dict(kmax=64, n=6, n2=8), residual_rules=dict(kmax=32, M=256, n=14, n2=18, r=6),
       full_residual_rules={"nngp": dict(kmax=64, window=True, g=10), "ntk": dict(kmax=64, window=True, g=8)},
       full_pair_rays=(("e0+e2", (0, 2)),), pair_rules={"nngp": dict(kmax=64, g=10, n=6), "ntk": dict(kmax=64, g=8, n=6)},
       full_c0_rays=(("e0, C0 = 3", (0,), 3),), c0_kinds=("ntk",), full_c0_depths=(2,),
       c0_plain_rules=dict(kmax=64, n=6, n2=8), c0_residual_rules=dict(kmax=64, window=True, g=10),
       full_c0_pair_rays=(("e0+e2, C0 = 3", (0, 2), 3),), c0_pair_rules=dict(kmax=64, g=12, n=8),
       full_window_ray=("full window (k,k,k,k,k)", (-2, -1, 0, 1, 2)), full_window_depth=2,
       full_window_rules={"nngp": dict(kmax=32, N2=72, N=80, floor_eps=0.01),
                          "ntk": dict(kmax=32, N2=68, N=76, floor_eps=0.01)},
       full_window_rounding=dict(N=32, kmax=16, at_most=1e-3))
def decay(v, level, p):
    """Single-pixel rays (pixel 0), residual against plain; full mode adds the pair ray e0+e2 (both inside a
    3-pixel window of both kernels: k^-6 NNGP, k^-4 NTK predicted for both) by window_ray_spectrum, takes the
    residual's one-pixel rays by the window rule (its four near pixels on the corner rule, summed over
    mirror orbits) to k = 64 instead of the DCT rule's ~k = 30, adds deeper residual kernels ResCNN(L, alpha)
    (L in full_depths) on the same circular signal of P = 5 pixels (their receptive fields wrap, so every
    inactive pixel shares a 3-pixel window with pixel 0 and is a near pixel of the window rule: no far
    pixels, whose graded rule made the 9-pixel ResCNN(2) ray cost ~1e11 evaluations), adds the one-pixel
    NTK ray on C0 = 3 (plain: sphere rule, k^-3; residual ResCNN(1, alpha) and ResCNN(L, alpha), L in
    full_c0_depths, on the same circular signal: window rule with Legendre sums, k^-7) and the NTK
    pair e0+e2 on C0 = 3 (window rule, plain and residual: k^-7 predicted for both), and the
    full window (k, ..., k) of ResCNN(full_window_depth, alpha) on the same circular signal against
    CNN(3)'s (ResCNN(1)'s vanishes; ResCNN(2)'s second block sees all five pixels, as CNN(3)'s last ReLU:
    k^-8 NNGP, k^-6 NTK for both), by the streamed compiled sums (numba; without it the ray is left out and
    the scope says so), points down to floor_eps eps lambda_0 once a proxy for the sums' rounding (the
    compiled loop's two arccos on the same N^5 nodes) stays below full_window_rounding's at_most, else
    *inconclusive*.

    (a) Polynomial decay of the residual kernel: on its converged points the power-law fit of log lambda
    must leave a smaller residual than the exponential one; an exponential winner makes the verdict *fails*.
    (b) Each measured slope is compared with its predicted exponent 2 nu + |A| (numerics.ray_spectra:
    the smallest window A of pixels one ReLU sees containing the ray): a disagreement means the numerics or
    the prediction is wrong -> *inconclusive* with the ray named.  (c) Similar rate (scopes.spectra.rate_margin):
    the exponents within tol -> *holds*, apart by more -> *fails*; the exponents are the predicted ones where
    each slope agrees with its own with a bound < 1/2 (it singles it out: the candidates are >= 1 apart; this
    basis rests on the window theory, which the slopes confirm), else the measured slopes, which must show
    |difference| + bounds < tol to hold and |difference| - bounds > tol to fail (between: *inconclusive*); a
    ray with fewer than min_points converged points -> *inconclusive*.
    Under the package's conventions the CNN(3) stem is linear and its first ReLU sees one pixel (|A| = 1:
    k^-4 NNGP, k^-2 NTK) while every ReLU of ResCNN(1) sees three pixels (k^-6, k^-4)."""
    from reskernels.numerics.ray_spectra import measure_ray
    from reskernels.proofs_check.claims.background import fit_residuals
    from reskernels.proofs_check.scopes.spectra import rate_margin

    from ..common import WINDOW_ROUNDING_SUMMARY, counted, window_rounding_gate
    full = level == "full"
    kinds = p["full_kinds"] if full else p["kinds"]

    def deeper(depths):
        """ResCNN(L, alpha) of the first residual's alpha for each L in depths other than its own."""
        return [ResCNN(d, p["residual"].alpha, readout="center") for d in depths if d != p["residual"].depth]
    residuals = [p["residual"]]
    if full:
        residuals += [ResCNN(p["residual"].depth, a, readout="center") for a in p["full_alphas"]
                      if a != p["residual"].alpha]
        residuals += deeper(p["full_depths"])
    # the full window (k, ..., k): ResCNN(1)'s vanishes (its F is a sum of 3-pixel-window terms), so the
    # residual kernels of this ray are ResCNN(full_window_depth, alpha) on the circular P-pixel signal
    window_res = ([ResCNN(p["full_window_depth"], a, readout="center")
                   for a in dict.fromkeys((p["residual"].alpha,) + tuple(p["full_alphas"]))] if full else [])
    # the C0 = 3 one-pixel ray's residual kernels: the first and ResCNN(L, alpha), L in full_c0_depths, on
    # the same circular signal
    c0_res = [p["residual"]] + deeper(p["full_c0_depths"]) if full else []
    rrules = p["full_residual_rules"] if full else p["residual_rules"]
    engine_ok = engine_check(v, list(dict.fromkeys(residuals + window_res + c0_res)) + [p["plain"]])
    other = "exponential" if p["model"] == "power" else "power"
    rules_of = {id(p["plain"]): p["plain_rules"]}
    # (kind, ray name): the rays compared, each on the plain kernel and on the residual ones it is measured for
    rays = [(kind, "e0") for kind in kinds]
    ray_res = {"e0": residuals}          # the residual kernels of each ray (default: the first residual only)
    window_note, rounding_ok = "", True
    # full mode: the residual's one-pixel rays by the window rule (its four near pixels on the corner rule: every
    # ReLU of ResCNN(1) sees three pixels, so the DCT rule's fixed inactive nodes stalled at k ~ 30)
    jobs = [(kind, a, "e0", (0,), dict(rules_of.get(id(a), rrules.get(kind, rrules) if full else rrules)))
            for kind in kinds for a in [p["plain"]] + residuals]
    if full:   # pair rays (numerics.ray_spectra.window_ray_spectrum), plain and the first residual only
        jobs += [(kind, a, name, sup, dict(p["pair_rules"][kind])) for kind in kinds for name, sup in p["full_pair_rays"]
                 for a in (p["plain"], p["residual"])]
        rays += [(kind, name) for kind in kinds for name, _ in p["full_pair_rays"]]
        # C0 = 3: plain by the sphere rule, residual by the window rule (Legendre sums); NTK only: the residual
        # NNGP's k^-9 falls below 10 eps lambda_0 by k ~ 26 (as the CNN(3) NNGP pairs on C0 = 3, GEIFMAN-DECAY)
        # and ResCNN(L, alpha), L in full_c0_depths, on the same circular signal (ResCNN(2): 619 s CPU to k = 56)
        jobs += [(kind, a, name, sup, dict(p["c0_plain_rules"] if a is p["plain"] else p["c0_residual_rules"], C0=c0))
                 for kind in p["c0_kinds"] for name, sup, c0 in p["full_c0_rays"] for a in [p["plain"]] + c0_res]
        rays += [(kind, name) for kind in p["c0_kinds"] for name, _, _ in p["full_c0_rays"]]
        ray_res.update({name: c0_res for name, _, _ in p["full_c0_rays"]})
        # the pair e0+e2 on C0 = 3 (inside a 3-pixel window of both kernels: k^-7 NTK predicted for both), plain
        # and the first residual by the window rule with Legendre sums; g = 12, n = 8 (g = 10, n = 6 leaves
        # ResCNN(1)'s estimate at 1-2% of lambda, dominated by the inactive rule); NTK only, as the one-pixel
        # ray: the CNN(3) NNGP pair's points alternate with the parity of k, so its slope bound stays > 1
        jobs += [(kind, a, name, sup, dict(p["c0_pair_rules"], C0=c0)) for kind in p["c0_kinds"]
                 for name, sup, c0 in p["full_c0_pair_rays"] for a in (p["plain"], p["residual"])]
        rays += [(kind, name) for kind in p["c0_kinds"] for name, _, _ in p["full_c0_pair_rays"]]
        # the full window: every pixel active, N^5 nodes on mirror orbits by the streamed compiled sums (numba;
        # numerics.conv_fused_general.window_sums), no inactive rule (the estimate is the active rules' change),
        # points down to floor_eps eps lambda_0 once a proxy for the sums' rounding (the compiled loop's two
        # arccos on the same nodes, at a coarser N, where it is larger) stays below full_window_rounding's at_most
        wname, wsup = p["full_window_ray"]
        floor = min(r["floor_eps"] for r in p["full_window_rules"].values())
        try:
            rounding_ok = window_rounding_gate(v, [(f"{kind} {a.slug} {wname}", a, kind) for a in [p["plain"]] + window_res
                                                   for kind in kinds], p["full_window_rounding"], floor, P=p["P"])
        except ImportError:
            window_note = " (not measured here: the streamed sums need numba, pip install \"reskernels[fast]\")"
        else:
            jobs += [(kind, a, wname, wsup, dict(p["full_window_rules"][kind])) for kind in kinds
                     for a in [p["plain"]] + window_res]
            rays += [(kind, wname) for kind in kinds]
            ray_res[wname] = window_res
    run = counted(measure_ray, len(jobs), "ray")
    meas, rows = {}, {}
    for kind, a, name, sup, rules in jobs:
        r = run(a, kind, sup, name, rel_err=p["rel_err"], min_points=p["min_points"], P=p["P"], **rules)
        meas[(kind, a, name)] = r
        rows[f"{kind} {a.slug}" + ("" if name == "e0" else f" {name}")] = {
            "k converged": [int(k) for k in r.ks], "kmax": r.kmax, "cpu s": round(r.seconds, 1), "predicted": r.predicted,
            "slope": None if r.slope is None else round(r.slope, 4), "bound": None if r.bound is None else round(r.bound, 4)}
    poly_ok, mismatch, undecided, diffs, seen, labels = [], [], [], [], set(), []
    for kind, name in rays:
        rp = meas[(kind, p["plain"], name)]
        for a in ray_res.get(name, [p["residual"]]):
            rr = meas[(kind, a, name)]
            for r, who in ((rr, a.slug), (rp, p["plain"].slug)):
                if r.decided and r.predicted is not None and (kind, who, name) not in seen:
                    seen.add((kind, who, name))      # the plain ray once, not once for each residual
                    ok = r.agrees()
                    v.add(f"{kind} {who} {name}: slope vs predicted -(2 nu + |A|), k = {r.ks[0]}..{r.ks[-1]} "
                          f"({len(r.ks)} points)", round(r.slope, 4), -r.predicted, ok,
                          f"|difference| <= {r.bound:.3f}", "singular windows of the pixel recursion", "quadrature")
                    if not ok:
                        mismatch.append((kind, who, name))
            if rr.decided:
                res = fit_residuals(rr.ks, rr.values)
                poly_ok.append(res[p["model"]] < res[other])
                v.add(f"{kind} {a.slug} {name}: rms residual of the {p['model']} fit vs {other}",
                      round(res[p["model"]], 4), round(res[other], 4), poly_ok[-1], "smaller",
                      "the same points and the same number of parameters", "quadrature")
            if not (rr.decided and rp.decided):
                undecided.append(f"{kind} {a.slug if not rr.decided else p['plain'].slug} {name}")
                continue
            margin, error, basis = rate_margin(rr, rp, p["tol"])
            diffs.append((margin, error))
            labels.append(f"{kind} {name} {a.slug.split('-q')[0]}")
            v.add(f"{kind} {name}: rate of {a.slug} vs {p['plain'].slug} (slopes; predicted -exponents)",
                  {"slopes": [round(rr.slope, 4), round(rp.slope, 4)], "predicted": [None if r.predicted is None else -r.predicted for r in (rr, rp)]},
                  f"|exponent difference| <= {p['tol']}", margin > error,
                  f"margin tol - |difference| = {margin:+.3f} beyond its error {error:.3f} ({basis})",
                  "docs/papers.md BARZILAI-DECAY: similar = exponents within 0.1; a slope with bound < 1/2 that "
                  "agrees with its predicted exponent singles it out (candidates >= 1 apart)", "quadrature")
    v.extra["rays"] = rows
    from ..common import torus
    for kind in kinds:
        # the full-window diagonal (k,k,k,k,k): no ReLU of ResCNN(1) sees pixels -2 and +2 together, so its
        # eigenvalues vanish; CNN(3)'s do not (torus rule, n = 12 and 24 per axis: k <= 3 only)
        Sr, Sp = torus(p["residual"], kind, 12), torus(p["plain"], kind, 12)
        v.extra[f"{kind} full-window diagonal (k,k,k,k,k), k=1..3"] = {
            "residual": [abs(float(Sr[(k,) * 5])) for k in (1, 2, 3)], "plain": [float(Sp[(k,) * 5]) for k in (1, 2, 3)],
            "doubling error plain": [float(Sp.error[(k,) * 5]) for k in (1, 2, 3)]}
    v.extra["slopes"] = {}
    for kind, name in rays:
        for a in ray_res.get(name, [p["residual"]]):
            rr, rp = meas[(kind, a, name)], meas[(kind, p["plain"], name)]
            v.extra["slopes"][f"{kind} {name} ({a.slug})"] = (
                {"residual": round(rr.slope, 3), "plain": round(rp.slope, 3)} if rr.decided and rp.decided
                else f"{len(rr.ks)} / {len(rp.ks)} points <= {p['rel_err']:.0%}")
    pairs = (f"; pair rays {', '.join(n for n, _ in p['full_pair_rays'])} to k = {p['pair_rules']['nngp']['kmax']} "
             f"(NNGP) / {p['pair_rules']['ntk']['kmax']} (NTK), {p['plain'].slug} and {p['residual'].slug}" if full
             else "; pair rays in full mode only")
    rkmax = (rrules[kinds[0]] if full else rrules)["kmax"]
    c0 = (f"; C0 = 3 e0 ({', '.join(p['c0_kinds'])}) to k = {p['c0_residual_rules']['kmax']}, window rule for the "
          f"residual ({', '.join(a.slug for a in c0_res)}), and the pair rays "
          f"{', '.join(n for n, _, _ in p['full_c0_pair_rays'])} to k = "
          f"{p['c0_pair_rules']['kmax']}, {p['plain'].slug} and {p['residual'].slug}" if full
          else "; C0 = 3 in full mode only")
    v.scope = (f"C0 = 2, single-pixel ray e0 to k = {p['plain_rules']['kmax']} (plain) / {rkmax} (residual"
               f"{', window rule' if full else ''}), {', '.join(kinds)}; {', '.join(a.slug for a in residuals)}{pairs}"
               f"{c0}; the full window (k, ..., k): ResCNN(1)'s vanishes (its F is a sum of 3-pixel-window terms; "
               "tested)"
               + (f", ResCNN({p['full_window_depth']}, alpha) ({', '.join(a.slug for a in window_res)}) on the "
                  f"circular {p['P']}-pixel signal against {p['plain'].slug} to k = "
                  f"{p['full_window_rules']['nngp']['kmax']} (NNGP) / {p['full_window_rules']['ntk']['kmax']} (NTK), "
                  f"points above {min(r['floor_eps'] for r in p['full_window_rules'].values()):g} eps lambda_0, "
                  f"streamed sums{window_note}" if full else
                  f", ResCNN({p['full_window_depth']}, alpha)'s against the plain kernel's in full mode only")
               + "; deeper ResCNN on their unwrapped receptive fields (ResCNN(2): 9 pixels, four near and four far, "
               "~1e11 kernel evaluations a ray) are not measured to large k"
               + (f"; ResCNN({', '.join(str(d) for d in p['full_depths'])}, {p['residual'].alpha}) on the same "
                  f"circular {p['P']}-pixel signal (receptive fields wrap), window rule" if full else "")
               + " (docs/papers.md BARZILAI-DECAY)")
    if not engine_ok:
        v.status, v.summary = "inconclusive", ENGINE_DISAGREES
    elif not rounding_ok:
        v.status, v.summary = "inconclusive", WINDOW_ROUNDING_SUMMARY
    elif not all(poly_ok):
        v.status = "fails"
        v.summary = (f"the residual kernel's eigenvalues fit an {other} law better than a {p['model']} law on "
                     f"{poly_ok.count(False)} of {len(poly_ok)} rays")
    elif mismatch:
        v.status = "inconclusive"
        v.summary = ("measured slope and predicted exponent disagree on " + ", ".join(f"{k} {w} {n}" for k, w, n in mismatch)
                     + ": the measurement or the prediction is wrong, so the comparison is not trusted")
    elif undecided or not diffs:
        v.status = "inconclusive"
        v.summary = (f"fewer than {p['min_points']} points with error <= {p['rel_err']:.0%} on: " + ", ".join(undecided)
                     + " (the inactive-angle rule does not reach the bound; raise its n / n2)")
    elif all(m > e for m, e in diffs):
        v.status = "holds"
        v.summary = "; ".join(f"{k}: {r['slope']} +- {r['bound']}" for k, r in rows.items())
    elif not any(m < -e for m, e in diffs):
        v.status = "inconclusive"
        v.summary = ("the measured slopes neither show the rates within 0.1 nor apart by more (their bounds are "
                     "too wide, and a slope does not single out its predicted exponent): " + "; ".join(
                         f"{k}: {r['slope']} +- {r['bound']}" for k, r in rows.items()))
    else:
        v.status = "fails"
        apart = [lab for lab, (m, e) in zip(labels, diffs) if m < -e]
        similar = [lab for lab, (m, e) in zip(labels, diffs) if m > e]
        v.summary = (f"residual and plain rays decay at different rates on {len(apart)} of {len(diffs)} comparisons ("
                     + ", ".join(apart) + ")" + (f"; similar on {len(similar)} (" + ", ".join(similar) + ")" if similar else "")
                     + ": " + "; ".join(
            f"{k} slope {r['slope']} +- {r['bound']} (predicted -{r['predicted']:g})" for k, r in rows.items()))

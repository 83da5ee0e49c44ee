"""One figure per claim whose measurement is a curve, a table over depth or width, or a spectrum
(matplotlib, Agg).

Each figure is registered with :func:`figure` under its claim id, with a title and a caption for
the report.  Its function takes the claim's verdict and returns a matplotlib ``Figure``: it draws
from the verdict's recorded measurements (``v.measurements``, ``v.extra``) or recomputes cheap
curves through the public API.  :meth:`FigureSpec.draw` checks the figure before saving it
(:func:`figure_problems`: every axes titled and labelled, no internal spec slugs in legends, data
drawn) and saves it with constrained layout, so labels are not clipped.  Statistical numbers
(Monte Carlo) are drawn with their standard errors or bootstrap intervals.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable

import numpy as np

FIGURES: dict[str, "FigureSpec"] = {}

_SLUG = re.compile(r"\b(MLP|ResNet|CNN|ResCNN|DenseNet)-L(\d+)(?:-a([0-9.e-]+))?-iv([0-9.]+)-wv([0-9.]+)-(all|hidden)\b")


def pretty(text: str) -> str:
    """Spec slugs (``MLP-L1-iv1-wv2-all``) -> readable names (``MLP(1)``; non-default variances and
    the hidden-trained setting are kept)."""
    def repl(mo):
        name, L, a, iv, wv, tr = mo.groups()
        args = [L] + ([f"a={a}"] if a else [])
        if iv not in ("1", "1.0"):
            args.append(f"input_var={iv}")
        if wv not in ("2", "2.0"):
            args.append(f"weight_var={wv}")
        if tr == "hidden":
            args.append("hidden")
        return f"{name}({', '.join(args)})"
    return _SLUG.sub(repl, text)


@dataclass
class FigureSpec:
    claim_id: str
    title: str
    caption: str
    fn: Callable

    def make(self, v):
        """The checked matplotlib Figure for verdict ``v`` (not saved)."""
        fig = self.fn(v)
        if fig._suptitle is None:
            fig.suptitle(self.title, fontsize=11)
        return fig

    def draw(self, v, path, dpi: int = 110):
        """Draw, check (:func:`figure_problems`) and save to ``path``; ValueError if the check fails."""
        plt = _plt()
        fig = self.make(v)
        try:
            problems = figure_problems(fig)
            if problems:
                raise ValueError(f"figure {self.claim_id}: " + "; ".join(problems))
            fig.savefig(path, dpi=dpi)
        finally:
            plt.close(fig)
        return path


def figure(claim_id: str, title: str, caption: str):
    def deco(fn):
        FIGURES[claim_id] = FigureSpec(claim_id, title, caption, fn)
        return fn
    return deco


def figure_problems(fig) -> list[str]:
    """What makes ``fig`` unfit for the report: an axes without a title, x or y label, or
    without data; a legend entry with an internal spec slug; a figure without a title."""
    out = []
    if fig._suptitle is None or not fig._suptitle.get_text().strip():
        out.append("no figure title")
    axes = [ax for ax in fig.axes if ax.get_visible() and ax.get_label() != "<colorbar>"]
    if not axes:
        out.append("no axes")
    for i, ax in enumerate(axes):
        if not ax.get_title().strip():
            out.append(f"axes {i}: no title")
        if not ax.get_xlabel().strip():
            out.append(f"axes {i}: no x label")
        if not ax.get_ylabel().strip() and not any(o.get_ylabel().strip()
                                                   for o in ax.get_shared_y_axes().get_siblings(ax)):
            out.append(f"axes {i}: no y label")  # (an axes sharing y with a labelled one needs none)
        if not (ax.lines or ax.collections or ax.patches or ax.images or ax.containers):
            out.append(f"axes {i}: nothing drawn")
        leg = ax.get_legend()
        if leg is not None:
            for t in leg.get_texts():
                if _SLUG.search(t.get_text()):
                    out.append(f"axes {i}: legend entry with a spec slug: {t.get_text()!r}")
    return out


def _plt():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _subplots(nrows=1, ncols=1, figsize=(6.5, 4.2), **kw):
    return _plt().subplots(nrows, ncols, figsize=figsize, layout="constrained", **kw)


def _measure(v, prefix):
    """The first measurement whose name starts with ``prefix`` (KeyError naming it otherwise)."""
    for m in v.measurements:
        if m.name.startswith(prefix):
            return m
    raise KeyError(f"{v.claim_id}: no measurement starting with {prefix!r}")


def _measures(v, prefix):
    return [m for m in v.measurements if m.name.startswith(prefix)]


def _decorate(ax, title, xlabel, ylabel, legend=None):
    """Title and axis labels of one panel, and a legend at ``legend`` points when given."""
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if legend is not None:
        ax.legend(fontsize=legend)

# ------------------------------------------------------------------------------------------------
# Belfer et al.
# ------------------------------------------------------------------------------------------------

@figure("BELFER-SPIKY", "Normalised ResNTK (hidden) against the angle, alpha = L^-gamma",
        "The normalised hidden-trained ResNTK as a function of the angle between inputs for depths 10, 100, "
        "1000 and three scalings alpha = L^-gamma, with the derived limits: the constant 1/4 off the "
        "diagonal (gamma = 0, the spike), the ODE limit (gamma = 1/2) and N2 (gamma = 1).")
def _spiky(v):
    from reskernels.numerics.limits import n2, normalized_kernel, ode_kernel
    from reskernels.theory import ResNet
    th = np.linspace(0, np.pi, 400)
    t = np.cos(th)
    fig, axes = _subplots(1, 3, figsize=(13, 4.2), sharey=True)
    for ax, gamma in zip(axes, (0.0, 0.5, 1.0)):
        for L in (10, 100, 1000):
            ax.plot(np.degrees(th), normalized_kernel(ResNet.with_gamma(L, gamma, trained="hidden"))(t),
                    label=f"L = {L}")
        if gamma == 1.0:
            ax.plot(np.degrees(th), n2(t), "k--", label="N2 (limit)")
        if gamma == 0.5:
            ax.plot(np.degrees(th[::8]), ode_kernel(t[::8]), "k--", label="ODE limit")
        if gamma == 0.0:
            ax.axhline(0.25, color="k", ls="--", label="1/4 (limit off the diagonal)")
        _decorate(ax, f"gamma = {gamma:g} (alpha = {'1' if gamma == 0 else f'L^-{gamma:g}'})", "angle between inputs (degrees)", "normalised ResNTK", legend=8)
    return fig


@figure("BELFER-DECAY", "Eigenvalues mu_k of the ResNTK on S^2 decay like k^-d",
        "Funk-Hecke eigenvalues (d = 3, uniform measure) of the hidden-trained ResNTK at L = 5 for two "
        "alpha and of the Laplace kernel, even and odd k drawn as separate series; the dashed line has "
        "slope -d.")
def _decay(v):
    from reskernels.theory import ResNet
    from .common import laplace_spectrum, spectrum
    fig, ax = _subplots(figsize=(7, 4.8))
    ks = np.arange(1, 202)
    d = 3
    curves = {"ResNTK L=5, alpha=0.5": spectrum(ResNet(5, 0.5, trained="hidden"), "ntk", d, 201, 20),
              "ResNTK L=5, alpha=1/sqrt(5)": spectrum(ResNet(5, 5 ** -0.5, trained="hidden"), "ntk", d, 201, 20),
              "Laplace c=1": laplace_spectrum(1, d, 201, 20)}
    for i, (name, mu) in enumerate(curves.items()):
        vals = np.array([float(mu[k]) for k in ks])
        col = f"C{i}"
        ax.loglog(ks[ks % 2 == 0], vals[ks % 2 == 0], "-", color=col, label=f"{name}, even k")
        ax.loglog(ks[ks % 2 == 1], vals[ks % 2 == 1], ":", color=col, label=f"{name}, odd k")
    ref = float(curves["Laplace c=1"][100]) * (ks / 100.0) ** (-d)
    ax.loglog(ks, ref, "k--", lw=1, label="slope -d")
    _decorate(ax, "d = 3", "frequency k", "eigenvalue mu_k", legend=7)
    return fig


# ------------------------------------------------------------------------------------------------
# Huang et al.
# ------------------------------------------------------------------------------------------------

@figure("HUANG-FFNET-DEGENERATE", "Deep fully connected NTKs degenerate",
        "The normalised FC-NTK of MLP(L) against t = <x, z> for L = 1 to 10^4: off the diagonal it tends "
        "to the constant 1/4, so deep feedforward kernels lose the input geometry.")
def _ffnet(v):
    from reskernels.numerics.limits import normalized_kernel
    from reskernels.theory import MLP
    t = np.linspace(-1, 1, 401)
    fig, ax = _subplots()
    for L in (1, 10, 100, 1000, 10000):
        ax.plot(t, normalized_kernel(MLP(L))(t), label=f"MLP({L})")
    ax.axhline(0.25, color="k", ls="--", lw=1, label="1/4 (limit)")
    _decorate(ax, "normalised FC-NTK, L ReLU layers", "t = <x, z>", "normalised NTK", legend=8)
    return fig


# ------------------------------------------------------------------------------------------------
# Tirer et al.
# ------------------------------------------------------------------------------------------------

@figure("TIRER-SMOOTHER", "Kernel interpolants of sin 4x + cos(x)/2 from 6 points",
        "Minimum-norm interpolants of the toy target on the circle with the NTKs of an MLP and of ResNets "
        "with several alpha (Tirer et al.'s parameterisation); the ResNet interpolants are smoother.")
def _tirer(v):
    from reskernels.numerics import gram
    from reskernels.numerics.samplers import circle_points_at
    from .claims.tirer import _models
    xtr = 2 * np.pi * np.linspace(0, 1, 6) - np.pi
    x = np.linspace(-np.pi, np.pi, 800, endpoint=False)
    target = 0.5 * np.cos(x) + np.sin(4 * x)
    fig, ax = _subplots(figsize=(7.5, 4.5))
    ax.plot(x, target, "k", lw=2, alpha=0.4, label="target")
    for name, arch in _models().items():
        K = gram(arch, circle_points_at(xtr)) + 1e-10 * np.eye(6)
        c = np.linalg.solve(K, 0.5 * np.cos(xtr) + np.sin(4 * xtr))
        ax.plot(x, gram(arch, circle_points_at(x), circle_points_at(xtr)) @ c, label=pretty(name))
    ax.plot(xtr, 0.5 * np.cos(xtr) + np.sin(4 * xtr), "ko", label="training points")
    _decorate(ax, "interpolants on the circle", "x (angle on the circle)", "f(x)")
    ax.legend(fontsize=7, ncol=2)
    return fig


# ------------------------------------------------------------------------------------------------
# Littwin et al.
# ------------------------------------------------------------------------------------------------

@figure("LITTWIN-CV-RESNET", "Finite-width NTK fluctuations (CV^2 of Theta(x,x)) at L = 8, n = 64",
        "Squared coefficient of variation of the finite-width NTK diagonal over random initialisations, "
        "by architecture; error bars are 95% bootstrap intervals where the check recorded them, else the "
        "point estimate alone.")
def _littwin(v):
    m = _measure(v, "CV^2 ordering")
    names = m.name.split(": ", 1)[1].split(" > ")
    vals = np.asarray(m.value, dtype=float)
    fig, ax = _subplots(figsize=(6.5, 4.2))
    ci = v.extra.get("cv2_ci")
    if ci:
        lo = np.array([ci[n][0] for n in names])
        hi = np.array([ci[n][1] for n in names])
        ax.bar(range(len(names)), vals, yerr=[vals - lo, hi - vals], capsize=4, color="C0")
    else:
        ax.bar(range(len(names)), vals, color="C0")
    ax.set_xticks(range(len(names)))
    ax.set_xticklabels(names, fontsize=8, rotation=15)
    _decorate(ax, "95% bootstrap intervals" if ci else "point estimates (no intervals recorded)", "architecture", "CV^2 of Theta(x, x)")
    return fig


# ------------------------------------------------------------------------------------------------
# Bietti & Bach
# ------------------------------------------------------------------------------------------------

@figure("BIETTI-ENDPOINT", "Endpoint law: mu_k / predicted -> 1",
        "Relative error of the eigenvalues against the endpoint-expansion law, even and odd k drawn as "
        "separate series (the law differs by parity); the dashed line is the tolerance 10/k^2.")
def _endpoint(v):
    fig, ax = _subplots(figsize=(7.5, 4.8))
    for i, m in enumerate(m for m in v.measurements if "ratio at k=[" in m.name):
        ks = np.array(_list_after(m.name, "ratio at k="), dtype=int)
        r = np.maximum(np.abs(np.array(m.value, dtype=float) - 1), 1e-16)
        label = pretty(m.name.split(":")[0])
        for par, style in ((0, "o-"), (1, "s:")):
            sel = ks % 2 == par
            if sel.any():
                ax.loglog(ks[sel], r[sel], style, color=f"C{i}", ms=4,
                          label=f"{label}, {'even' if par == 0 else 'odd'} k")
    kk = np.array([50, 201])
    ax.loglog(kk, 10 / kk ** 2, "k--", label="10/k^2 (tolerance)")
    _decorate(ax, "relative error of the asymptotic law", "frequency k", "|mu_k / predicted - 1|")
    ax.legend(fontsize=6, ncol=2, loc="lower left")
    return fig


# ------------------------------------------------------------------------------------------------
# helpers for figures drawn from recorded measurements
# ------------------------------------------------------------------------------------------------

def _list_after(name: str, key: str) -> list[float]:
    """The bracketed list after ``key`` in a measurement name: ``'L=[10, 100]'`` -> [10.0, 100.0]."""
    mo = re.search(re.escape(key) + r"\s*\[([^\]]*)\]", name)
    if mo is None:
        raise KeyError(f"no list after {key!r} in {name!r}")
    return [float(x) for x in mo.group(1).split(",")]


def _ci_errorbar(ax, x, intervals, **kw):
    """Intervals (lo, hi) drawn as error bars around their midpoints."""
    iv = np.asarray(intervals, dtype=float)
    mid = iv.mean(axis=1)
    return ax.errorbar(x, mid, yerr=[mid - iv[:, 0], iv[:, 1] - mid], fmt="o", capsize=4, **kw)


# ------------------------------------------------------------------------------------------------
# Belfer et al., Huang et al.: tables over depth and spectra
# ------------------------------------------------------------------------------------------------

@figure("BELFER-PARITY", "Parity ratio mu_(k+1)/mu_k of the ResNTK, L = 50",
        "Ratio of consecutive odd/even eigenvalues against k for alpha = 1/L and alpha = 1/sqrt(L): the "
        "odd eigenvalues catch up with the even ones as k grows, much later for alpha = 1/L.")
def _belfer_parity(v):
    fig, ax = _subplots()
    for m in _measures(v, "mu_(k+1)/mu_k"):
        ks = _list_after(m.name, "k=")
        label = m.name.split(", ", 1)[1].split(", k=")[0]
        ax.semilogx(ks, np.asarray(m.value, dtype=float), "o-", label=label)
    _decorate(ax, "d = 2 (the circle), hidden-trained ResNTK", "frequency k (even)", "mu_(k+1) / mu_k", legend=8)
    return fig


@figure("BELFER-RKHS", "ResNTK / Laplace eigenvalue ratios stay bounded",
        "For each case the range [min, max] over k of mu_k(ResNTK)/mu_k(Laplace), even and odd k "
        "separately: bounded away from 0 and infinity with no trend, i.e. the same RKHS.")
def _belfer_rkhs(v):
    fig, ax = _subplots(figsize=(7.5, 4.2))
    ms = _measures(v, "mu(")
    labels = []
    for i, m in enumerate(ms):
        labels.append(m.name.split(":")[0].replace("mu(", "").replace(")/mu(Laplace)", ""))
        for j, par in enumerate(("even", "odd")):
            lo, hi = m.value[par][0], m.value[par][1]
            ax.vlines(i + (j - 0.5) * 0.25, lo, hi, color=f"C{j}", lw=6,
                      label=f"{par} k" if i == 0 else None)
    ax.set_xticks(range(len(ms)))
    ax.set_xticklabels(labels, fontsize=7, rotation=20)
    ax.set_yscale("log")
    _decorate(ax, "range over k of the ratio (bars: min to max)", "kernel, dimension", "mu_k(ResNTK) / mu_k(Laplace)", legend=8)
    return fig


@figure("HUANG-RESNET-STABLE", "The ResNTK with alpha = L^-gamma tends to N2; the deep FC-NTK degenerates",
        "Left: sup over t of |ResNTK_L - N2| against depth. Then, on 40 points of S^2 with normalised Gram "
        "matrices of the deep ResNTK, N2 and the deep FC-NTK: the off-diagonal spread (a degenerate kernel "
        "has none) and the condition numbers.")
def _huang_stable(v):
    m = _measure(v, "sup |ResNTK_L - N2|")
    Ls = _list_after(m.name, "L=")
    panels = []
    spread = _measures(v, "off-diagonal spread")
    if spread:
        panels.append(("off-diagonal spread of the Gram", "std of the off-diagonal entries", spread[0].value, False))
    cond = next((x for k, x in v.extra.items() if k.startswith("cond [")), None)
    if cond is None and _measures(v, "cond of normalised Gram"):
        cond = _measure(v, "cond of normalised Gram").value
    if cond is not None:
        panels.append(("condition numbers", "condition number", cond, True))
    fig, axes = _subplots(1, 1 + len(panels), figsize=(4.6 * (1 + len(panels)), 4.2), squeeze=False)
    a1 = axes[0][0]
    a1.loglog(Ls, m.value, "o-")
    _decorate(a1, m.name.split(", L=")[0].replace("sup ", "sup_t "), "depth L", "sup_t |ResNTK_L(t) - N2(t)|")
    names = [f"ResNTK L={int(max(Ls))}", "N2", f"MLP({int(max(Ls))})"]
    for ax, (title, ylabel, vals, log) in zip(axes[0][1:], panels):
        ax.bar(range(3), vals, color=["C0", "C1", "C3"])
        ax.set_xticks(range(3))
        ax.set_xticklabels(names)
        if log:
            ax.set_yscale("log")
        _decorate(ax, title, "kernel (normalised Gram, 40 points)", ylabel)
    return fig


# ------------------------------------------------------------------------------------------------
# Bietti & Bach, Geifman, Barzilai: spectra
# ------------------------------------------------------------------------------------------------

@figure("BIETTI-DEEP-SHALLOW", "Deep ReLU kernels keep the shallow decay exponents",
        "Local log-log slopes of mu_k (k = 100 to 200 even, 101 to 201 odd; d = 3) against depth, minus the "
        "shallow exponent (-d for the NTK, -d-2 for the NNGP); the grey band is the tolerance +- 0.03.")
def _bietti_deep(v):
    m = v.measurements[0]
    fig, ax = _subplots()
    d = 3
    ax.axhspan(-0.03, 0.03, color="0.85", label="tolerance +- 0.03")
    ax.axhline(0, color="k", lw=0.8)
    Ls = []
    for j, (kind, s) in enumerate((("ntk", d), ("nngp", d + 2))):
        rows = sorted((int(re.search(r"MLP\((\d+)\)", k).group(1)), val) for k, val in m.value.items()
                      if k.endswith(kind))
        Ls = [r[0] for r in rows]
        ax.plot(Ls, [r[1][0] + s for r in rows], "o-", color=f"C{j}", label=f"{kind.upper()} (vs -{s}), even k")
        ax.plot(Ls, [r[1][1] + s for r in rows], "s:", color=f"C{j}", label=f"{kind.upper()} (vs -{s}), odd k")
    ax.set_xticks(Ls)
    _decorate(ax, "slope minus the shallow exponent", "depth L of MLP(L)", "slope of log mu_k + exponent", legend=8)
    return fig


def _ray_slope_bars(ax, slopes, series, title):
    names = [k for k, s in slopes.items() if isinstance(s, dict)]
    w = 0.8 / len(series)
    for j, (key, label) in enumerate(series):
        ax.bar(np.arange(len(names)) + (j - (len(series) - 1) / 2) * w, [slopes[n][key] for n in names], w,
               label=label)
    ax.set_xticks(range(len(names)))
    ax.set_xticklabels(names, fontsize=7, rotation=25, ha="right")
    _decorate(ax, title, "kernel and ray through the frequency lattice", "log-log slope of lambda_k", legend=8)
    skipped = [n for n, s in slopes.items() if not isinstance(s, dict)]
    return skipped


@figure("GEIFMAN-DECAY", "CNN(3) eigenvalue decay along rays of the frequency lattice",
        "Least-squares log-log slopes of the torus eigenvalues of CNN(3, q=3, center), C0 = 2, along rays "
        "through single pixels and pixel pairs (converged points only); reported, not compared with a formula.")
def _geifman_decay(v):
    slopes = {k: ({"slope": s["slope"]} if isinstance(s, dict) else s) for k, s in v.extra["slopes"].items()}
    fig, ax = _subplots(figsize=(10, 4.4))
    skipped = _ray_slope_bars(ax, slopes, [("slope", "slope over the converged k")], "CNN(3), C0 = 2")
    if skipped:
        ax.text(0.01, 0.02, "no slope (too few converged points): " + "; ".join(skipped), fontsize=6,
                transform=ax.transAxes)
    return fig


@figure("BARZILAI-DECAY", "ResCNN against CNN(3): eigenvalue decay along rays",
        "Left: log-log slopes along rays of the C0 = 2 frequency lattice for each residual kernel (named in "
        "the row: ResCNN(1) at each alpha; full mode also ResCNN(2), ResCNN(3) on the wrapped 5-pixel "
        "signal) and the plain one, over the points with estimated error <= 1%. Right: eigenvalues on the full-window diagonal ray (k, k, k, k, k); "
        "the residual kernel's are zero to rounding.")
def _barzilai_decay(v):
    fig, (a1, a2) = _subplots(1, 2, figsize=(13, 4.6), gridspec_kw={"width_ratios": [2, 1]})
    _ray_slope_bars(a1, v.extra["slopes"], [("plain", "CNN(3)"), ("residual", "ResCNN (the row's)")], "slopes")
    for j, kind in enumerate(("nngp", "ntk")):
        key = next((k for k in v.extra if k.startswith(f"{kind} full-window")), None)
        if key is None:
            continue
        for style, (name, label) in zip(("o-", "s:"), (("plain", "CNN(3)"), ("residual", "ResCNN(1)"))):
            vals = np.maximum(np.abs(np.asarray(v.extra[key][name], dtype=float)), 1e-30)
            a2.semilogy(np.arange(1, len(vals) + 1), vals, style, color=f"C{j}", label=f"{label}, {kind.upper()}")
            a2.set_xticks(np.arange(1, len(vals) + 1))
    _decorate(a2, "full-window diagonal ray", "k (frequency (k, k, k, k, k))", "|lambda_k| (floored at 1e-30)", legend=7)
    return fig


@figure("BARZILAI-LOCAL", "Locality: eigenvalue of a neighbouring pixel relative to the centre pixel",
        "lambda(e_r)/lambda(e_0) for the degree-1 eigenfunction of the pixel at distance r from the output "
        "(C0 = 2, torus quadrature): the residual kernels are far more local than CNN(3), more so for "
        "smaller alpha.")
def _barzilai_local(v):
    ratios = v.extra["ratios"]
    fig, axes = _subplots(1, 2, figsize=(10, 4.2), sharey=True)
    for ax, kind in zip(axes, ("nngp", "ntk")):
        for name, vals in ratios.items():
            if name.startswith("C0=2") and name.endswith(kind):
                label = name[len("C0=2 "):-len(kind) - 1]
                ax.semilogy([1, 2], vals, "o-", label=label)
        ax.set_title(kind.upper())
        ax.set_xticks([1, 2])
        ax.set_xlabel("distance r of the pixel from the output (pixels)")
        ax.set_ylabel("lambda(e_r) / lambda(e_0)")
        ax.legend(fontsize=8)
    return fig


_COND = re.compile(r"L=(\d+), (\w+), alpha=([^:]+): cond")


def _cond_rows(v):
    """{(readout, alpha): {L: (residual draws, plain draws)}} from the measurements and the extra rows."""
    rows = {}
    for m in v.measurements:
        mo = _COND.match(m.name)
        if mo:
            rows.setdefault((mo.group(2), mo.group(3)), {})[int(mo.group(1))] = (m.value[0], m.value[1])
    for key, text in v.extra.get("small_depth_rows", {}).items():
        mo = re.match(r"\((\d+), '(\w+)', '([^']+)'\)", key)
        res, plain = (json_list(x) for x in text.split(" vs "))
        rows.setdefault((mo.group(2), mo.group(3)), {})[int(mo.group(1))] = (res, plain)
    return rows


def json_list(text):
    return [float(x) for x in text.strip().strip("[]").split(",")]


def _cond_figure(v, what):
    rows = _cond_rows(v)
    readouts = sorted({k[0] for k in rows})
    fig, axes = _subplots(1, len(readouts), figsize=(5.2 * len(readouts), 4.4), sharey=True, squeeze=False)
    for ax, ro in zip(axes[0], readouts):
        plain_drawn = False
        for j, key in enumerate(sorted(k for k in rows if k[0] == ro)):
            Ls = sorted(rows[key])
            for which, style, label in ((0, "o-", f"ResCNN, alpha={key[1]}"), (1, "s--", "CNN(L+1) (plain)")):
                if which == 1 and plain_drawn:
                    continue
                d = np.array([rows[key][L][which] for L in Ls], dtype=float)
                mean = d.mean(axis=1)
                ax.errorbar(Ls, mean, yerr=[mean - d.min(axis=1), d.max(axis=1) - mean], fmt=style, capsize=3,
                            color=None if which == 0 else "k", label=label)
                plain_drawn |= which == 1
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        Ls = sorted({L for k in rows if k[0] == ro for L in rows[k]})
        ax.set_xticks(Ls)
        ax.set_xticklabels([str(L) for L in Ls])
        _decorate(ax, f"{what}, {ro} readout", "depth L", "condition number of the Gram matrix", legend=7)
    return fig


@figure("BARZILAI-COND-GPK", "Condition numbers of GPK Gram matrices: ResCNN against CNN",
        "Condition numbers of normalised GPK Gram matrices on multi-sphere data, mean over 3 input draws "
        "with the range (min to max) as bars, against depth: the residual kernel is better conditioned from "
        "depth 16 on.")
def _cond_gpk(v):
    return _cond_figure(v, "GPK")


@figure("BARZILAI-COND-NTK", "Condition numbers of NTK Gram matrices: ResCNN against CNN",
        "As for the GPK: mean over 3 input draws, range as bars. Under these conventions the residual NTK "
        "is not the better conditioned one.")
def _cond_ntk(v):
    return _cond_figure(v, "NTK")


# ------------------------------------------------------------------------------------------------
# Littwin et al., Tirer et al.: Monte Carlo over depth and width
# ------------------------------------------------------------------------------------------------

@figure("LITTWIN-MLP-DEPTH", "MLP NTK fluctuations grow with depth and shrink with width",
        "CV^2 of the finite-width NTK diagonal of MLP(L) over random initialisations; bars are 95% bootstrap "
        "intervals where the check recorded them.")
def _littwin_mlp(v):
    vals = next(m.value for m in v.measurements if m.name.startswith("CV^2 increases with L"))
    ci = v.extra.get("cv2_ci", {})
    fig, ax = _subplots()
    for n, style in ((64, "o-"), (256, "s")):
        keys = sorted((k for k in vals if k.endswith(f"n={n}")), key=lambda k: int(k.split(",")[0][2:]))
        Ls = [int(k.split(",")[0][2:]) for k in keys]
        y = np.array([vals[k] for k in keys], dtype=float)
        if all(k in ci for k in keys):
            lo = np.array([ci[k][0] for k in keys])
            hi = np.array([ci[k][1] for k in keys])
            ax.errorbar(Ls, y, yerr=[y - lo, hi - y], fmt=style, capsize=4, label=f"width n = {n}")
        else:
            ax.plot(Ls, y, style, label=f"width n = {n} (no intervals recorded)")
    ax.set_xscale("log", base=2)
    _decorate(ax, "MLP(L), trained='all', d = 8", "depth L", "CV^2 of Theta(x, x)", legend=8)
    return fig


@figure("LITTWIN-DENSENET", "DenseNet NTK fluctuations: CV^2 n across depth and weight scale",
        "95% bootstrap intervals of CV^2 n (n = 64) of the finite-width DenseNet NTK diagonal across depth and "
        "weight_var; the verdict tests the ratios to the first case against a factor 2 (equivalence).")
def _littwin_dense(v):
    fig, (a1, a2) = _subplots(1, 2, figsize=(10, 4.2), sharey=True)
    for ax, prefix, xs, xlabel in ((a1, "CV^2 n across depth", [2, 8, 32], "depth L (weight_var 2)"),
                                   (a2, "CV^2 n across weight_var", [1, 2, 4], "weight_var (L = 8)")):
        iv = next(x for k, x in v.extra.items() if k.startswith(prefix))
        _ci_errorbar(ax, xs, iv, color="C0")
        ax.set_xscale("log", base=2)
        ax.set_xticks(xs)
        ax.set_xticklabels([str(x) for x in xs])
        _decorate(ax, prefix.replace("CV^2 n across ", "across "), xlabel, "CV^2 n (95% bootstrap interval)")
    return fig


@figure("TIRER-ATTENUATION", "Attenuating the residual branch smooths the interpolant",
        "Left: RMS second derivative of the kernel interpolant of the toy target against alpha. Right: the "
        "kernel's slope at theta = 0 (BELFER-SLOPE closed form) against alpha.")
def _tirer_att(v):
    m = _measure(v, "RMS f''")
    alphas = _list_after(m.name, "alpha=")
    c = next(x for k, x in v.extra.items() if k.startswith("kernel slope"))
    fig, (a1, a2) = _subplots(1, 2, figsize=(10, 4.2))
    a1.loglog(alphas, m.value, "o-")
    _decorate(a1, "roughness of the interpolant", "alpha (Tirer et al.)", "RMS f''")
    a2.semilogx(alphas, c, "s-", color="C1")
    _decorate(a2, "kernel slope at theta = 0", "alpha (Tirer et al.)", "c(5, alpha/sqrt 2)")
    return fig


@figure("TIRER-STABLE-TRAINING", "NTK drift during training shrinks with width",
        "Mean relative NTK drift ||Theta_T - Theta_0||_F / ||Theta_0||_F after full-batch GD against width, "
        "with standard errors over initialisations where recorded; the dashed line is the m^-1/2 rate "
        "through the first point.")
def _tirer_drift(v):
    md = v.extra["mean_drift"]
    ms = sorted(md, key=float)
    x = np.array([float(m) for m in ms])
    y = np.array([md[m] for m in ms])
    se = v.extra.get("drift_se")
    fig, ax = _subplots()
    if se:
        ax.errorbar(x, y, yerr=[se[m] for m in ms], fmt="o-", capsize=4, label="mean drift +- s.e.")
    else:
        ax.plot(x, y, "o-", label="mean drift (no s.e. recorded)")
    ax.plot(x, y[0] * (x / x[0]) ** -0.5, "k--", label="m^-1/2 through the first point")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xticks(x)
    ax.set_xticklabels([f"{int(m)}" for m in x])
    ex = v.extra.get("drift_exponent")
    ci = v.extra.get("drift_exponent_ci")
    ax.set_title(f"fitted exponent {ex:.2f}" + (f" (95% CI [{ci[0]:.2f}, {ci[1]:.2f}])" if ci else "")
                 if ex is not None else "drift")
    ax.set_xlabel("width m")
    ax.set_ylabel("relative NTK drift")
    ax.legend(fontsize=8)
    return fig


@figure("TIRER-NTK-FORMULA", "Tirer et al.'s NTKs as specs: K(x0, x) against the angle",
        "The NTK in Tirer et al.'s parameterisation for the MLP and two ResNets, at the angles of the "
        "reference table (markers: computed; crosses: the docs/papers.md table).")
def _tirer_formula(v):
    fig, ax = _subplots()
    angles = [0, 45, 90, 180]
    for i, m in enumerate(_measures(v, "")):
        if "K(x0, .)" not in m.name:
            continue
        label = pretty(m.name.split(":")[0])
        ax.plot(angles, m.value, "o-", color=f"C{i}", label=label)
        ax.plot(angles, m.expected, "x", color="k", ms=8)
    _decorate(ax, "markers: computed; black crosses: reference table", "angle between x0 and x (degrees)", "K(x0, x)")
    ax.set_xticks(angles)
    ax.legend(fontsize=7)
    return fig


# ------------------------------------------------------------------------------------------------
# Arora et al., suite numerics
# ------------------------------------------------------------------------------------------------

@figure("ARORA-FC-NTK", "The FC-NTK of MLP(2) against t",
        "The NTK of MLP(2) (Arora et al.'s two hidden layers, c_sigma = 2, no bias) on the unit circle as a "
        "curve in t = <x, z>, with the values the check compares with the reference table.")
def _arora_fc(v):
    from reskernels.numerics import gram
    from reskernels.theory import MLP
    m = _measure(v, "MLP(2).ntk at t")
    ts = [float(x) for x in m.name.split("t = ")[1].split(",")]
    t = np.linspace(-1, 1, 401)
    X = np.stack([t, np.sqrt(np.clip(1 - t ** 2, 0, None))], axis=1)
    K = gram(MLP(2), np.array([[1.0, 0.0]]), X)[0]
    fig, ax = _subplots()
    ax.plot(t, K, label="MLP(2).ntk (recursion)")
    ax.plot(ts, m.value, "o", label="checked values")
    ax.plot(ts, m.expected, "kx", ms=8, label="reference table")
    _decorate(ax, "unit inputs, NTK(x, x) = 3", "t = <x, z>", "NTK(x, z)", legend=8)
    return fig


@figure("NUM-PSD", "Gram spectrum of MLP(2).ntk on 8 equispaced points of the circle",
        "Eigenvalues of the Gram matrix, computed (bars) and from the aliasing sums of docs/spectral.md "
        "(crosses): all positive, whereas MLP(1).ntk has two exact zeros on the same points.")
def _num_psd(v):
    m = _measure(v, "MLP(2).ntk on the same points")
    vals = np.asarray(m.value, dtype=float)
    fig, ax = _subplots()
    ax.bar(np.arange(1, len(vals) + 1), vals, color="C0", label="computed")
    ax.plot(np.arange(1, len(vals) + 1), m.expected, "kx", ms=8, label="expected")
    _decorate(ax, "sorted eigenvalues", "index (ascending)", "eigenvalue", legend=8)
    return fig

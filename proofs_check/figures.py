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
        if not ax.get_ylabel().strip():
            out.append(f"axes {i}: no y label")
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
        ax.set_title(f"gamma = {gamma:g} (alpha = L^-{gamma:g})")
        ax.set_xlabel("angle between inputs (degrees)")
        ax.set_ylabel("normalised ResNTK")
        ax.legend(fontsize=8)
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
    ax.set_title("d = 3")
    ax.set_xlabel("frequency k")
    ax.set_ylabel("eigenvalue mu_k")
    ax.legend(fontsize=7)
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
    ax.set_title("normalised FC-NTK, L ReLU layers")
    ax.set_xlabel("t = <x, z>")
    ax.set_ylabel("normalised NTK")
    ax.legend(fontsize=8)
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
    ax.set_title("interpolants on the circle")
    ax.set_xlabel("x (angle on the circle)")
    ax.set_ylabel("f(x)")
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
    ax.set_title("95% bootstrap intervals" if ci else "point estimates (no intervals recorded)")
    ax.set_xlabel("architecture")
    ax.set_ylabel("CV^2 of Theta(x, x)")
    return fig


# ------------------------------------------------------------------------------------------------
# Bietti & Bach
# ------------------------------------------------------------------------------------------------

@figure("BIETTI-ENDPOINT", "Endpoint law: mu_k / predicted -> 1",
        "Relative error of the eigenvalues against the endpoint-expansion law, even and odd k drawn as "
        "separate series (the law differs by parity); the dashed line is the tolerance 10/k^2.")
def _endpoint(v):
    fig, ax = _subplots(figsize=(7.5, 4.8))
    for i, m in enumerate(v.measurements):
        ks = np.array([int(x) for x in m.name.split("k=")[1].strip("[]:").split(",")])
        r = np.maximum(np.abs(np.array(m.value, dtype=float) - 1), 1e-16)
        label = pretty(m.name.split(":")[0])
        for par, style in ((0, "o-"), (1, "s:")):
            sel = ks % 2 == par
            if sel.any():
                ax.loglog(ks[sel], r[sel], style, color=f"C{i}", ms=4,
                          label=f"{label}, {'even' if par == 0 else 'odd'} k")
    kk = np.array([50, 201])
    ax.loglog(kk, 10 / kk ** 2, "k--", label="10/k^2 (tolerance)")
    ax.set_title("relative error of the asymptotic law")
    ax.set_xlabel("frequency k")
    ax.set_ylabel("|mu_k / predicted - 1|")
    ax.legend(fontsize=6, ncol=2)
    return fig

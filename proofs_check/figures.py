"""One figure per claim where a picture says more than a table (matplotlib, Agg).

Each function takes the claim's verdict and an output path; it draws from the
verdict's recorded numbers or recomputes cheap curves through the public API.
"""
from __future__ import annotations

import numpy as np

FIGURES = {}


def figure(claim_id):
    def deco(fn):
        FIGURES[claim_id] = fn
        return fn
    return deco


def _plt():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _save(fig, path):
    import matplotlib.pyplot as plt
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


@figure("BELFER-SPIKY")
def _spiky(v, path):
    from reskernels.theory import ResNet
    from reskernels.numerics.limits import n2, normalized_kernel, ode_kernel
    plt = _plt()
    th = np.linspace(0, np.pi, 400)
    t = np.cos(th)
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8), sharey=True)
    for ax, gamma in zip(axes, (0.0, 0.5, 1.0)):
        for L in (10, 100, 1000):
            ax.plot(np.degrees(th), normalized_kernel(ResNet.with_gamma(L, gamma, trained="hidden"))(t),
                    label=f"L={L}")
        ref = ode_kernel(t[::8]) if gamma == 0.5 else None
        if gamma == 1.0:
            ax.plot(np.degrees(th), n2(t), "k--", label="N2 (limit)")
        if ref is not None:
            ax.plot(np.degrees(th[::8]), ref, "k--", label="ODE limit")
        if gamma == 0.0:
            ax.axhline(0.25, color="k", ls="--", label="1/4 (limit off the diagonal)")
        ax.set_title(f"alpha = L^-{gamma}")
        ax.set_xlabel("angle (degrees)")
        ax.legend(fontsize=8)
    axes[0].set_ylabel("normalised ResNTK (hidden)")
    _save(fig, path)


@figure("HUANG-FFNET-DEGENERATE")
def _ffnet(v, path):
    from reskernels.theory import MLP
    from reskernels.numerics.limits import normalized_kernel
    plt = _plt()
    t = np.linspace(-1, 1, 401)
    fig, ax = plt.subplots(figsize=(6, 4))
    for L in (1, 10, 100, 1000, 10000):
        ax.plot(t, normalized_kernel(MLP(L))(t), label=f"MLP({L})")
    ax.axhline(0.25, color="k", ls="--", lw=1, label="1/4")
    ax.set_xlabel("t = <x, z>")
    ax.set_ylabel("normalised FC-NTK")
    ax.legend(fontsize=8)
    _save(fig, path)


@figure("TIRER-SMOOTHER")
def _tirer(v, path):
    from reskernels.numerics import gram
    from reskernels.numerics.samplers import circle_points_at
    from .claims.tirer import _models
    plt = _plt()
    xtr = 2 * np.pi * np.linspace(0, 1, 6) - np.pi
    x = np.linspace(-np.pi, np.pi, 800, endpoint=False)
    target = 0.5 * np.cos(x) + np.sin(4 * x)
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(x, target, "k", lw=2, alpha=0.4, label="target")
    for name, arch in _models().items():
        K = gram(arch, circle_points_at(xtr)) + 1e-10 * np.eye(6)
        c = np.linalg.solve(K, 0.5 * np.cos(xtr) + np.sin(4 * xtr))
        ax.plot(x, gram(arch, circle_points_at(x), circle_points_at(xtr)) @ c, label=name)
    ax.plot(xtr, 0.5 * np.cos(xtr) + np.sin(4 * xtr), "ko")
    ax.set_xlabel("x")
    ax.legend(fontsize=7, ncol=2)
    _save(fig, path)


@figure("LITTWIN-CV-RESNET")
def _littwin(v, path):
    plt = _plt()
    m = [mm for mm in v.measurements if mm.name.startswith("CV^2 ordering")][0]
    names = m.name.split(": ", 1)[1].split(" > ")
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.bar(range(len(names)), m.value)
    ax.set_xticks(range(len(names)))
    ax.set_xticklabels(names, fontsize=8)
    ax.set_ylabel("CV^2 of Theta(x,x), L=8, n=64")
    _save(fig, path)


@figure("BELFER-DECAY")
def _decay(v, path):
    from reskernels.theory import ResNet
    from .common import laplace_spectrum, spectrum
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    ks = np.arange(1, 202)
    d = 3
    curves = {"ResNTK L=5, a=0.5": spectrum(ResNet(5, 0.5, trained="hidden"), "ntk", d, 201, 20),
              "ResNTK L=5, a=1/sqrt5": spectrum(ResNet(5, 5 ** -0.5, trained="hidden"), "ntk", d, 201, 20),
              "Laplace c=1": laplace_spectrum(1, d, 201, 20)}
    for name, mu in curves.items():
        vals = np.array([float(mu[k]) for k in ks])
        ax.loglog(ks[ks % 2 == 0], vals[ks % 2 == 0], "-", label=f"{name} (even k)")
        ax.loglog(ks[ks % 2 == 1], vals[ks % 2 == 1], ":", label=f"{name} (odd k)")
    ref = float(curves["Laplace c=1"][100]) * (ks / 100.0) ** (-d)
    ax.loglog(ks, ref, "k--", lw=1, label="slope -d")
    ax.set_xlabel("k")
    ax.set_ylabel("mu_k (S^2)")
    ax.legend(fontsize=7)
    _save(fig, path)


@figure("BIETTI-ENDPOINT")
def _endpoint(v, path):
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for m in v.measurements:
        ks = [int(x) for x in m.name.split("k=")[1].strip("[]:").split(",")]
        r = np.abs(np.array(m.value, dtype=float) - 1)
        ax.loglog(ks, np.maximum(r, 1e-12), "o-", ms=3, label=m.name.split(":")[0])
    kk = np.array([50, 201])
    ax.loglog(kk, 10 / kk ** 2, "k--", label="10/k^2 (tolerance)")
    ax.set_xlabel("k")
    ax.set_ylabel("|mu_k / predicted - 1|")
    ax.legend(fontsize=6)
    _save(fig, path)

# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#   kernelspec:
#     name: python3
#     display_name: Python 3
# ---

# %% [markdown]
# # What survives outside the papers' setting
#
# The five papers work with bias-free ReLU networks.  The specs take `activation=` and
# `bias_var=`, so each spectral or smoothness statement can be re-measured with biases and with
# other activations.  Findings (claims BELFER-DECAY-ACTIVATIONS, BELFER-PARITY-BIAS,
# TIRER-SMOOTHER-ACTIVATIONS, LITTWIN-DENSENET-PARAMS):
#
# - the k^-d decay is a property of the kink (endpoint exponent nu = 1/2): it survives biases and
#   other kinked activations, and fails for analytic ones (erf, tanh, GELU decay geometrically);
# - the odd-frequency suppression is a bias-free artefact; abs and erf suppress other parities;
# - the ResNet-over-MLP smoothness gain is a ReLU statement;
# - DenseNet fluctuations are flat in depth, but depth-scaled ResNets with as many parameters
#   fluctuate less.

# %%
import matplotlib.pyplot as plt
import mpmath
import numpy as np

from reskernels.numerics import eigenvalues
from reskernels.proofs_check import run_claims
from reskernels.proofs_check.notebook import QUICK, savefig
from reskernels.theory import ResNet

KMAX, DPS = (40, 15) if QUICK else (120, 25)

# %% [markdown]
# ## Spectra on the circle for several activations, without and with a bias
# `ResNet(2, 0.5, trained="hidden").ntk`, certified eigenvalues mu_k (uniform probability measure
# on S^1).  Kinked activations keep a straight line on log-log axes (slope -2 = -d); erf bends down
# (faster than any power).  Hollow markers: odd k.

# %%
fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
spectra = {}
for ax, b in zip(axes, (0.0, 0.5)):
    for act, colour in (("relu", "C0"), ("abs", "C1"), ("erf", "C2")):
        arch = ResNet(2, 0.5, trained="hidden", activation=act, bias_var=b)
        mu = eigenvalues(arch, "ntk", d=2, ks=range(KMAX + 1), dps=DPS)
        spectra[(act, b)] = mu
        for par, marker in ((0, "o"), (1, "o")):
            k = np.array([i for i in range(1, KMAX + 1) if i % 2 == par and mu[i] > 0])
            ax.loglog(k, [float(mu[i]) for i in k], marker, ms=3, color=colour,
                      mfc=colour if par == 0 else "none", label=f"{act} ({'even' if par == 0 else 'odd'} k)")
    ax.set_title(f"ResNet(2, 0.5) NTK spectrum, bias_var = {b}")
    ax.set_xlabel("degree k")
axes[0].set_ylabel("mu_k on S^1")
axes[0].legend(fontsize=7)
savefig(fig, "outside_spectra", title="Certified NTK spectra on S^1: kinked activations keep k^-2, erf does not")

# %% [markdown]
# ## Decay laws: local log-log slopes
# d log mu_k / d log k between k and k + 2 (one parity): a power law gives a constant (-2 on the
# circle), a geometric decay a slope growing linearly in k.

# %%
fig, ax = plt.subplots(figsize=(6, 4))
for (act, b), mu in spectra.items():
    par = 1 if mu[2] == 0 else 0
    k = [i for i in range(2, KMAX - 1) if i % 2 == par and mu[i] > 0 and mu[i + 2] > 0]
    s = [float(mpmath.log(mu[i + 2] / mu[i]) / mpmath.log(mpmath.mpf(i + 2) / i)) for i in k]
    ax.plot(k, s, "-", label=f"{act}, bias_var={b}")
ax.axhline(-2, color="k", lw=0.6, ls=":")
ax.set_xlabel("degree k")
ax.set_ylabel("local log-log slope")
ax.set_title("Power law (kinked) vs faster than any power (erf)")
ax.legend(fontsize=7)
savefig(fig, "outside_decay_laws", title="Decay laws")

# %% [markdown]
# ## Parity: the odd/even ratio with biases
# mu_(k+1)/mu_k for even k of `ResNet(L, 1/L, trained="hidden")` (L = 10 in quick mode, 50 in
# full mode): without a bias the odd frequencies are strongly suppressed at small k; any bias lifts
# them (the t = -1 endpoint of the kernel becomes analytic: c_minus = 0).

# %%
L, km = (10, 21) if QUICK else (50, 101)
fig, ax = plt.subplots(figsize=(6, 4))
for b in (0.0, 0.01, 0.1, 1.0):
    mu = eigenvalues(ResNet(L, 1 / L, trained="hidden", bias_var=b), "ntk", d=2, ks=range(km + 1), dps=15)
    k = np.arange(2, km, 2)
    ax.plot(k, [float(mu[i + 1] / mu[i]) for i in k], "o-", ms=3, label=f"bias_var = {b}")
ax.set_xlabel("even degree k")
ax.set_ylabel("mu_(k+1) / mu_k")
ax.set_title(f"Odd-frequency suppression, ResNet({L}, 1/{L}) NTK on S^1")
ax.legend(fontsize=7)
savefig(fig, "outside_parity", title="Biases bring the odd frequencies back")

# %% [markdown]
# ## DenseNet fluctuations against ResNets and MLPs with as many parameters
# CV^2 = Var Theta(x, x) / E[Theta(x, x)]^2 at initialisation, from the claim's Monte Carlo
# (bootstrap 95% intervals as error bars).

# %%
(v,) = run_claims(["LITTWIN-DENSENET-PARAMS"], level="quick" if QUICK else "full")
tab = v.extra["table"]
fig, ax = plt.subplots(figsize=(6, 4))
for fam in ("DenseNet", "MLP", "ResNet a=1", "ResNet a=1/sqrt(L)", "ResNet a=1/L"):
    rows = sorted((int(key.split("L=")[1]), r) for key, r in tab.items() if key.split(",")[0] == fam)
    Ls = [L_ for L_, _ in rows]
    cv = np.array([r["cv2"] for _, r in rows])
    ci = np.array([r["ci"] for _, r in rows]).T
    ax.errorbar(Ls, cv, yerr=[cv - ci[0], ci[1] - cv], marker="o", capsize=3, label=fam)
ax.set_xscale("log")
ax.set_yscale("log")
ax.set_xlabel("depth L")
ax.set_ylabel("CV^2 of Theta(x, x)")
ax.set_title("Equal parameter count (DenseNet at width 64)")
ax.legend(fontsize=7)
savefig(fig, "outside_densenet_cv", title="Finite-width NTK fluctuations at equal parameter count")

# %% [markdown]
# ## The verdicts

# %%
ids = ["BELFER-PARITY-BIAS", "TIRER-SMOOTHER-ACTIVATIONS"] + ([] if QUICK else ["BELFER-DECAY-ACTIVATIONS"])
for w in run_claims(ids, level="quick" if QUICK else "full") + [v]:
    print(f"{w.claim_id:<28} {w.status:<15} {w.scope}")

# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#   kernelspec:
#     name: python3
#     display_name: Python 3
# ---

# %% [markdown]
# # Belfer et al. 2021: the spectrum of the residual NTK
#
# ResNTK = `ResNet(L, alpha, trained="hidden").ntk`, normalised to 1 on the diagonal,
# alpha = L^-gamma.  Claims: spherical-harmonic eigenfunctions, k^-d decay (both parities
# from L = 2), the RKHS of the Laplace kernel, spiky (gamma < 1/2) vs stable (gamma >= 1/2)
# shape, and the odd-frequency suppression for 1/2 < gamma <= 1.

# %%

import matplotlib.pyplot as plt
import numpy as np
from reskernels.proofs_check.notebook import QUICK, savefig

from reskernels.numerics import eigenvalues
from reskernels.numerics.decay import predicted_law
from reskernels.numerics.limits import normalized_kernel
from reskernels.proofs_check import run_claims
from reskernels.theory import ResNet, endpoint_coefficients

# %% [markdown]
# ## The kernel's slope at theta = 0 from its exact endpoint expansion
# ResNTK(cos theta) = 1 - c theta + ..., with c(L, alpha) = 1/(2 pi) + (L-1) alpha^2/(2 pi (1+alpha^2)).

# %%
arch = ResNet(3, 0.5, trained="hidden")
c = endpoint_coefficients(arch, "ntk")
c["c_plus"], c["c_minus"]

# %% [markdown]
# ## Shape over depth for three schedules

# %%
th = np.linspace(0, np.pi, 300)
fig, axes = plt.subplots(1, 3, figsize=(12, 3.5), sharey=True)
for ax, gamma in zip(axes, (0.0, 0.5, 1.0)):
    for L in (2, 10, 100, 1000):
        ax.plot(th, normalized_kernel(ResNet.with_gamma(L, gamma, trained="hidden"))(np.cos(th)), label=f"L={L}")
    ax.set_title(f"gamma = {gamma}")
    ax.set_xlabel("theta")
axes[0].set_ylabel("normalised ResNTK(cos theta)")
axes[0].legend()
savefig(fig, "belfer_shape")

# %% [markdown]
# ## Spectrum on the circle with the predicted decay law (odd k suppressed for alpha = 1/L)

# %%
L = 50
kmax = 101
fig, ax = plt.subplots(figsize=(6, 4))
for a, name in ((1 / L, "alpha = 1/L"), (L ** -0.5, "alpha = 1/sqrt(L)")):
    arch = ResNet(L, a, trained="hidden")
    mu = eigenvalues(arch, "ntk", d=2, ks=range(kmax + 1), dps=20)
    law = predicted_law(arch, "ntk", 2)
    k = np.arange(2, kmax + 1)
    ax.loglog(k, [float(mu[i]) for i in k], ".", label=name)
    ax.loglog(k, [float(law.mu(i)) for i in k], "-", lw=0.8, label=name + " (endpoint law)")
ax.set_xlabel("k")
ax.set_ylabel("mu_k on S^1")
ax.set_title("ResNTK eigenvalues and their endpoint laws")
ax.legend(fontsize=7)
savefig(fig, "belfer_spectrum")

# %% [markdown]
# ## The paper's claims, from the registry

# %%
ids = ["BELFER-SLOPE", "BELFER-SPIKY", "BELFER-EIGFUN"] + ([] if QUICK else ["BELFER-DECAY", "BELFER-RKHS", "BELFER-PARITY"])
verdicts = run_claims(ids)
for v in verdicts:
    print(f"{v.claim_id:<14} {v.status:<15} {v.scope}")
assert all(v.status in ("holds", "holds-in-scope") for v in verdicts)

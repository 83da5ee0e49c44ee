# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#   kernelspec:
#     name: python3
#     display_name: Python 3
# ---

# %% [markdown]
# # Huang et al. 2020: deep FC-NTKs degenerate, ResNTKs do not
#
# The deep FC-NTK tends to 1/4 + (3/4) 1[x = z]; the hidden-trained ResNTK with alpha = L^-gamma,
# gamma > 1/2, tends to the two-layer kernel N2.  Which parameters are trained matters: with
# trained="all" and alpha = 1/L the limit is the linear kernel t.

# %%

import matplotlib.pyplot as plt
import numpy as np
from reskernels.proofs_check.notebook import QUICK, savefig

from reskernels.numerics import gram
from reskernels.numerics.gramspec import condition_number
from reskernels.numerics.limits import n2, normalized_kernel
from reskernels.proofs_check import run_claims
from reskernels.theory import MLP, ResNet

# %%
t = np.linspace(-1, 1, 401)
fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
for L in (1, 10, 100, 1000):
    axes[0].plot(t, normalized_kernel(MLP(L))(t), label=f"MLP({L})")
    axes[1].plot(t, normalized_kernel(ResNet(L, 1 / L, trained="hidden"))(t), label=f"ResNet({L}, 1/L)")
axes[1].plot(t, n2(t), "k--", label="N2")
axes[0].set_title("MLP NTK: degenerates with depth")
axes[1].set_title("ResNet NTK, alpha = 1/L: tends to N2")
axes[0].set_ylabel("normalised NTK at t = cos theta")
for ax in axes:
    ax.legend(fontsize=8)
    ax.set_xlabel("t")
savefig(fig, "huang_limits")

# %% [markdown]
# ## Condition numbers of the normalised Gram matrices on fixed points

# %%
X = np.random.default_rng(0).standard_normal((60, 4))
for L in (2, 10, 100, 1000):
    print(L, condition_number(gram(MLP(L), X, normalize=True)),
          condition_number(gram(ResNet(L, 1 / L, trained="hidden"), X, normalize=True)))

# %%
verdicts = run_claims(["HUANG-FFNET-DEGENERATE", "HUANG-TRAINED-SET", "HUANG-RESNET-STABLE"]
                      + ([] if QUICK else ["HUANG-KERNEL-REGIME"]))
for v in verdicts:
    print(v.claim_id, v.status)
assert all(v.status in ("holds", "holds-in-scope") for v in verdicts)   # scopes printed above

# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#   kernelspec:
#     name: python3
#     display_name: Python 3
# ---

# %% [markdown]
# # A tour of reskernels
#
# Kernels of infinitely wide ReLU networks, exactly: symbolic expressions (sympy), float64 Gram
# matrices with exact diagonals, eigenvalues with certified digits (mpmath), finite-width
# networks that converge to them, and claim checks with verdicts.

# %%

import matplotlib.pyplot as plt
import mpmath
import numpy as np
import sympy as sp
from reskernels.proofs_check.notebook import QUICK, savefig

from reskernels.numerics import eigenvalues, gram, kernel_mp
from reskernels.numerics.montecarlo import kernel_montecarlo
from reskernels.proofs_check import run_claims
from reskernels.theory import MLP, ResNet, kernel_expr

# %% [markdown]
# ## 1. The two-layer NTK, symbolically: MLP(depth=1).ntk = t kappa0(t) + kappa1(t)

# %%
expr = kernel_expr(MLP(depth=1), kind="ntk")
print(sp.latex(expr))
expr

# %% [markdown]
# ## 2. A Gram matrix, and the same kernel at 40 digits

# %%
rng = np.random.default_rng(0)
X = rng.standard_normal((200, 8))
arch = ResNet(depth=10, alpha=0.5, trained="hidden")
K = gram(arch, X, kind="ntk")
x0 = X[:2] / np.linalg.norm(X[:2], axis=1)[:, None]
print(K.shape, float(gram(arch, x0)[0, 1]), mpmath.nstr(kernel_mp(arch, float(x0[0] @ x0[1]), "ntk", dps=40), 40))

# %% [markdown]
# ## 3. The spectrum on S^2 with certified digits

# %%
ks = list(range(0, 101))
mu = eigenvalues(arch, kind="ntk", d=3, ks=ks, dps=30)
fig, ax = plt.subplots(figsize=(6, 4))
ax.loglog(ks[1::2], [float(m) for m in mu[1::2]], ".", label="odd k")
ax.loglog(ks[2::2], [float(m) for m in mu[2::2]], ".", label="even k")
ax.loglog(ks[10:], float(mu[50]) * (np.array(ks[10:]) / 50.0) ** -3, "k--", label="k^-3")
ax.set_xlabel("k")
ax.set_ylabel("mu_k")
ax.set_title("ResNet(10, 0.5) NTK eigenvalues on S^2")
ax.legend()
savefig(fig, "tour")

# %% [markdown]
# ## 4. A finite network converges to the kernel

# %%
Xs = X[:4] / np.linalg.norm(X[:4], axis=1)[:, None]
mean, se, _ = kernel_montecarlo(ResNet(4, 0.6), Xs, width=256 if QUICK else 1024, n_seeds=8)
exact = gram(ResNet(4, 0.6), Xs)
print("max |mean - exact| / s.e. =", float(np.max(np.abs(mean - exact) / se)))

# %% [markdown]
# ## 5. A claim check

# %%
(v,) = run_claims(["ARORA-FC-NTK"])
print(v.status, [m.name for m in v.measurements])
assert v.status == "holds"

# %% [markdown]
# ## 6. Testing your own kernel implementation (conformance kit)
#
# `conform(fn, spec)` runs the suite's property battery against any `(X, Z) -> Gram` function and
# returns one line per property with the worst error and, on failure, the smallest counterexample
# hypothesis found.  Below, a kernel that forgot the He factor 2 (weight_var = 1) is caught; in a
# test suite, `conform(...).raise_if_failed()` is the whole test.

# %%
from reskernels.proofs_check.conformance import conform

spec = ResNet(4, 0.5)
print(conform(lambda X, Z: gram(spec, X, Z), spec, max_examples=10))
buggy = conform(lambda X, Z: gram(spec.replace(weight_var=1.0), X, Z), spec, max_examples=10)
print(buggy)
assert not buggy.passed and buggy.failures[0].counterexample is not None

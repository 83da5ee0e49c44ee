# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#   kernelspec:
#     name: python3
#     display_name: Python 3
# ---

# %% [markdown]
# # Tirer, Bruna, Giryes: ResNet NTK interpolants are smoother
#
# Their model: `ResNet(5, alpha, weight_var=1, input_var=1/2)` vs `MLP(5, weight_var=1, input_var=1/2)`
# on the circle (d = 2), interpolating 0.5 cos x + sin 4x from 6 points.

# %%

import matplotlib.pyplot as plt
from reskernels.proofs_check.notebook import savefig

from reskernels.proofs_check import run_claims
from reskernels.proofs_check.claims.tirer import _models, toy_experiment

# %%
rows = {name: toy_experiment(arch) for name, arch in _models().items()}
for name, r in rows.items():
    print(f"{name:<14} RMS f'' {r['rms_f2']:6.2f}  K^(90) {r['k90']:+.3f}  K^(180) {r['k180']:+.3f}  RMSE {r['rmse']:.2f}")
fig, ax = plt.subplots(figsize=(6, 3.5))
ax.bar(range(len(rows)), [r["rms_f2"] for r in rows.values()])
ax.set_xticks(range(len(rows)))
ax.set_xticklabels(list(rows), rotation=30, fontsize=8)
ax.set_ylabel("RMS f'' of the interpolant")
ax.set_xlabel("kernel of the interpolant")
ax.set_title("smoothness of NTK interpolants (smaller is smoother)")
fig.tight_layout()
savefig(fig, "tirer_smoothness")

# %%
verdicts = run_claims(["TIRER-NTK-FORMULA", "TIRER-SMOOTHER", "TIRER-ATTENUATION"])
for v in verdicts:
    print(v.claim_id, v.status, v.scope)
assert all(v.status in ("holds", "holds-in-scope") for v in verdicts)   # scopes printed above

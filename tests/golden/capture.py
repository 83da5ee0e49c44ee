"""Write ``data/golden.npz``: the outputs of every case of ``cases.py`` computed by the code
*before* the kernel-step refactor (run once, at commit 0bd2f16, from the repository root:
``python tests/golden/capture.py``; about a minute on one core with numba installed).

Values are stored exactly: float64 arrays as they are, mpmath values as ``_mpf_`` tuples
(sign, mantissa, exponent, bits), sympy values as ``srepr`` strings.  Kept for provenance: running
it again after the refactor would compare the new code with itself.
"""
import os
import pickle
import subprocess
import sys
import types

sys.path.insert(0, os.getcwd())   # the pre-refactor layout: top-level packages theory, numerics

from theory import CNN, MLP, ResCNN, ResNet, kernel_expr, taylor_coefficients  # noqa: E402
from theory.endpoints import endpoint_expansion  # noqa: E402
from numerics import eigenvalues, gram, kernel_mp, kernel_theta_mp, zonal  # noqa: E402
from numerics.montecarlo import empirical_kernels  # noqa: E402
from numerics.montecarlo_conv import empirical_conv_kernels  # noqa: E402
from numerics.multisphere import multi_dot_kernel  # noqa: E402

sys.path.insert(0, os.path.dirname(__file__))
from cases import cases  # noqa: E402

api = types.SimpleNamespace(**{k: v for k, v in globals().items() if not k.startswith("_")})
out = {}
for name, fn in cases():
    out[name] = fn(api)
commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
path = os.path.join(os.path.dirname(__file__), "data", "golden.pickle")
os.makedirs(os.path.dirname(path), exist_ok=True)
with open(path, "wb") as fh:
    pickle.dump({"commit": commit, "cases": out}, fh, protocol=4)
print(f"{len(out)} cases written to {path} at commit {commit}")

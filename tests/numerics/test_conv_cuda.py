"""The fused CUDA kernel (backend="cuda", numerics/conv_cuda.py) against the compiled CPU loop.

CPU machines run the kernel under numba's CUDA simulator (every thread of a block a Python thread,
the barriers real), in a subprocess: NUMBA_ENABLE_CUDASIM must be set before numba is imported.
The simulator executes the kernel's own code -- indexing, the shared-memory patch passes, the
barriers, the tree reduction, the problem decoding -- with Python's float64 arithmetic, so a wrong
tap, a missing barrier or a mixed-up offset shows; the device's libdevice functions and fused
multiply-adds are not simulated (on a GPU they move results by a few ulps, within the same bound).
"""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from reskernels import MLP, CNN, gram
from reskernels.numerics.tolerances import float64_kernel_rtol

pytest.importorskip("numba.cuda")     # numba's CUDA target, or its simulator
HERE = os.path.dirname(os.path.abspath(__file__))


def _real_device():
    """True when numba's CUDA target has a real GPU in this process (not the simulator)."""
    from reskernels.numerics import conv_cuda
    return conv_cuda.available() and os.environ.get("NUMBA_ENABLE_CUDASIM", "0") != "1"


@pytest.fixture(scope="module", params=["simulator", "device"])
def simulated(request):
    """The cases' results under numba's CUDA simulator (every machine) or on a GPU (skipped without)."""
    if request.param == "device":
        if not _real_device():
            pytest.skip("no CUDA device (the simulator runs the same cases)")
        from .cuda_sim_cases import collect    # pragma: no cover - machines with a GPU
        return dict(collect(large=True), _runner="device")  # pragma: no cover
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1")
    root = os.path.dirname(os.path.dirname(HERE))
    env["PYTHONPATH"] = os.pathsep.join([root] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    res = subprocess.run([sys.executable, os.path.join(HERE, "cuda_sim_cases.py")], env=env,
                         capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, res.stderr[-3000:]
    return json.loads(res.stdout)


def test_simulated_kernel_matches_the_cpu_loop(simulated):
    """Every case, both kinds: within 32 eps a layer of the Cauchy-Schwarz scale sqrt(K(x,x) K(z,z))
    of the numba loop (the bound of the CPU loop against numpy; on a GPU, libdevice's acos and fused
    multiply-adds stay within it), symmetric results symmetric."""
    cases = {k: v for k, v in simulated.items() if not k.startswith("_")}
    assert len(cases) == (10 if simulated.get("_runner") != "device" else 14)
    for name, r in cases.items():
        a, b = np.array(r["cuda"]), np.array(r["numba"])
        assert a.shape == b.shape and np.all(np.isfinite(a)), name
        tol = float64_kernel_rtol(r["depth"] + 2, per_layer=32)
        if r["symmetric"]:
            d = np.abs(np.diag(b))
            scale = np.sqrt(np.outer(d, d))
            assert np.array_equal(a, a.T), name
        else:
            scale = np.max(np.abs(b))
        assert np.all(np.abs(a - b) <= tol * scale), (name, np.max(np.abs(a - b) / scale))


def test_simulated_kernel_keeps_the_hard_entries(simulated):
    """Near-parallel inputs (the first layer's half angles) and antiparallel ones: each within a
    few ulps of the CPU loop relative to the entry itself; a mistake there (arccos of a rounded rho)
    would cost ~1e-8 relative."""
    for name in ("rescnn_flatten/ntk", "rescnn_flatten/nngp"):
        a, b = np.array(simulated[name]["cuda"]), np.array(simulated[name]["numba"])
        assert abs(a[0, 2] - b[0, 2]) <= 16 * np.finfo(float).eps * abs(b[0, 2]), name
    for name in ("rescnn_gap_1d/ntk", "rescnn_gap_1d/nngp"):
        a, b = np.array(simulated[name]["cuda"]), np.array(simulated[name]["numba"])
        assert abs(a[0, 1] - b[0, 1]) <= 64 * np.finfo(float).eps * np.max(np.abs(b)), name


def test_simulated_kernel_diagonal_is_exact_on_the_multisphere(simulated):
    """Unit pixels, 16 positions: CNN(3) flatten NTK = 4 and NNGP = 1 on the diagonal (rho = 1 exactly
    at every position, acos(1) = 0 in every libm; a tree over 16 equal values doubles exactly): bit for
    bit as the CPU loop under the simulator; a GPU may contract p1 + p0 T into one fused multiply-add,
    so there within 8 eps as the CPU loop's own test (test_conv_fused)."""
    exact = simulated.get("_runner") != "device"
    for name, want in (("cnn3_flatten_sphere/ntk", 4.0), ("cnn3_flatten_sphere/nngp", 1.0)):
        d = np.diag(simulated[name]["cuda"])
        if exact:
            assert np.array_equal(d, [want, want]), name
        else:  # pragma: no cover - machines with a GPU
            np.testing.assert_allclose(d, want, rtol=8 * np.finfo(float).eps)


def test_cuda_backend_errors_name_the_problem():
    """FC specs, activations without a fused dual and (without a device) the missing CUDA target are
    refused with a message, never silently run elsewhere."""
    X = np.random.default_rng(0).standard_normal((2, 4, 4, 2))
    with pytest.raises(NotImplementedError, match="fused conv kernel"):
        gram(MLP(2), X.reshape(2, -1), backend="cuda")
    from reskernels.numerics import conv_cuda
    if not conv_cuda.available():
        with pytest.raises(ImportError, match="CUDA"):
            gram(CNN(2), X, backend="cuda")
    else:  # pragma: no cover - machines with a GPU
        with pytest.raises(NotImplementedError, match="cuda"):
            gram(CNN(2, activation="tanh"), X, backend="cuda")
        with pytest.raises(NotImplementedError, match="1024 positions"):
            gram(CNN(2), np.zeros((1, 40, 40, 1)), backend="cuda")

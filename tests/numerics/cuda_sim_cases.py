"""Cases for tests/numerics/test_conv_cuda.py: the fused CUDA kernel (backend="cuda") and the compiled
CPU loop (backend="numba") on the same inputs.  Run as a script (with NUMBA_ENABLE_CUDASIM=1: numba's
CUDA simulator must be chosen before numba is imported) it prints one JSON object; on a machine with
a GPU the test calls :func:`collect` in its own process."""
import json
import sys

import numpy as np

from reskernels import CNN, ResCNN, gram
from reskernels.theory.activations import leaky_relu


def cases(large=False):
    """The cases; ``large`` adds images of 289 and 1024 positions (512 and 1024 threads a block: the
    register limit of a real device; far too slow for the simulator)."""
    rng = np.random.default_rng(11)
    X = rng.standard_normal((3, 4, 4, 2))
    X[2] = X[0] + 1e-9 * rng.standard_normal(X[0].shape)      # near-parallel: the half-angle pass
    S = rng.standard_normal((3, 5, 2))                          # 1-D signals, 5 positions
    S[1] = -2.5 * S[0]                                          # exactly antiparallel
    Z = rng.standard_normal((2, 5, 2))
    U = rng.standard_normal((2, 4, 4, 3))
    U /= np.linalg.norm(U, axis=-1, keepdims=True)              # unit pixels: the multi-sphere
    yield "rescnn_flatten", ResCNN(2, 0.5, readout="flatten"), X, None
    yield "cnn_center_leaky", CNN(2, readout="center", activation=leaky_relu(0.1)), X, None
    yield "rescnn_gap_1d", ResCNN(1, 0.5), S, None
    yield "cnn_gap_cross", CNN(2, trained="hidden"), S, Z
    yield "cnn3_flatten_sphere", CNN(3, readout="flatten"), U, None
    if large:
        yield "cnn_gap_17x17", CNN(2), rng.standard_normal((2, 17, 17, 3)), None
        yield "rescnn_flatten_32x32", ResCNN(3, 0.5, readout="flatten"), rng.standard_normal((3, 32, 32, 3)), None


def collect(large=False):
    """{case/kind: {depth, cuda, numba, symmetric}} for every case and kind (``large``: see cases)."""
    out = {}
    for name, arch, A, B in cases(large):
        for kind in ("ntk", "nngp"):
            gpu = gram(arch, A, B, kind=kind, backend="cuda")
            cpu = gram(arch, A, B, kind=kind, backend="numba")
            out[f"{name}/{kind}"] = {"depth": arch.depth, "cuda": gpu.tolist(), "numba": cpu.tolist(),
                                     "symmetric": B is None}
    return out


def main():
    json.dump(collect(), sys.stdout)


if __name__ == "__main__":
    main()

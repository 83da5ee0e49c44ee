"""Reference data files: read them with their provenance (docs/development.md §5).

Every file in ``numerics/data`` is JSON with the quantity, the method, the source,
the provenance tag and the precision; values are decimal strings, parsed with
mpmath at extra precision, never as floats.
"""
from __future__ import annotations

import json
from importlib import resources

import mpmath

from reskernels.theory.arch import spec_from_dict


def load(name: str) -> dict:
    """Load ``numerics/data/<name>.json``."""
    with resources.files("reskernels.numerics").joinpath("data", f"{name}.json").open() as fh:
        return json.load(fh)


def arch_from_dict(d: dict):
    """Build a spec from its JSON description {"class": ..., fields...} (the spec registry)."""
    return spec_from_dict(d)


def parse_values(values, dps: int = 50):
    """Decimal strings -> mpf, read at ``dps + 8`` digits."""
    with mpmath.workdps(dps + 8):
        return [mpmath.mpf(v) for v in values]


# ---------------------------------------------------------------------------------------------
# An independent route to the conv kernels (CNN, ResCNN): the contract's recursions on full
# P x P matrices of pixel-pair covariances, one matrix per pair of inputs.  It shares no code with
# numerics.conv / conv_fused / pixel_maps: positions are flattened, the patch operator is explicit
# index arithmetic over the tap list [P M]_ij = mean_d M_{i+d, j+d} (both pixels shifted), theta is
# plain arccos (no half angles, no snapping), no layer scaling.  Cost O(pairs P^2 q depth): meant
# for a few hundred pairs of small signals, as a check of the engine where its errors would show
# (more pixels than taps, generic off-diagonal entries).  ``dps=None`` runs in float64 (generic
# pairs: error ~ eps / sin theta); ``dps`` = an integer runs in mpmath at that many digits (object
# arrays; for near-parallel pairs, slow).
# ---------------------------------------------------------------------------------------------

import math as _math

import numpy as _np


def conv_taps(q: int, H: int, W: int) -> list:
    """The (dh, dw) offsets of a q-tap filter: (0, -r..r) on a 1-D signal (H = 1), the q x q
    square on an image, r = (q - 1) / 2."""
    if q % 2 != 1 or q < 1:
        raise ValueError(f"filter and stem sizes are odd positive integers, got {q}")
    r = (q - 1) // 2
    hs = [0] if H == 1 else list(range(-r, r + 1))
    return [(a, b) for a in hs for b in range(-r, r + 1)]


class _Arith:
    """float64 (numpy) or mpmath (object arrays) elementwise arithmetic for the reference."""

    def __init__(self, dps):
        self.dps = dps
        if dps is None:
            self.acos, self.sqrt, self.pi = _np.arccos, _np.sqrt, _np.pi
            self.num = lambda v: float(v)
            self.arr = lambda A: _np.asarray(A, dtype=float)
        else:
            self.acos = _np.frompyfunc(mpmath.acos, 1, 1)
            self.sqrt = _np.frompyfunc(mpmath.sqrt, 1, 1)
            self.pi = mpmath.pi
            self.num = lambda v: mpmath.mpf(repr(float(v)) if not isinstance(v, str) else v)
            self.arr = lambda A: _np.vectorize(lambda v: mpmath.mpf(repr(float(v))), otypes=[object])(
                _np.asarray(A, dtype=float))

    def clip1(self, R):
        if self.dps is None:
            return _np.clip(R, -1.0, 1.0)
        one = mpmath.mpf(1)
        return _np.frompyfunc(lambda v: max(-one, min(one, v)), 1, 1)(R)


def conv_kernel_reference(arch, X, Z=None, kind: str = "ntk", *, normalize: bool = False, dps=None):
    """Gram matrix (n, m) of a bias-free ReLU ``CNN`` / ``ResCNN`` spec by the independent route above.

    X, Z: (n, P, C) circular 1-D signals or (n, H, W, C) images (channels last), as for ``gram``.
    Returns float64 when ``dps`` is None, else an object array of mpf (at ``dps`` digits)."""
    from reskernels.theory import CNN, ResCNN
    if not isinstance(arch, (CNN, ResCNN)):
        raise TypeError(f"conv_kernel_reference takes CNN or ResCNN specs, got {type(arch).__name__}")
    act = arch.activation if isinstance(arch.activation, str) else getattr(arch.activation, "name", "?")
    if act != "relu" or arch.bias_var != 0:
        raise NotImplementedError("the reference covers bias-free ReLU conv specs only")
    if kind not in ("ntk", "nngp"):
        raise ValueError(f"kind must be 'ntk' or 'nngp', got {kind!r}")
    X = _np.asarray(X, dtype=float)
    Zs = X if Z is None else _np.asarray(Z, dtype=float)
    if X.ndim == 3:
        X, Zs = X[:, None], Zs[:, None]
    n, H, W, C = X.shape
    m, P = Zs.shape[0], H * W
    ar = _Arith(dps)
    ctx = mpmath.workdps(dps) if dps is not None else _nullcontext()
    with ctx:
        # inputs: x_0..x_{n-1}, z_0..z_{m-1}; pairs: every (x_a, z_b), then every input with itself
        U = _np.concatenate([X, Zs]).reshape(n + m, P, C)
        pa = [a for a in range(n) for b in range(m)] + list(range(n + m))
        pb = [n + b for a in range(n) for b in range(m)] + list(range(n + m))
        pa, pb = _np.array(pa), _np.array(pb)
        n_cross = n * m
        selfs = slice(n_cross, n_cross + n + m)
        Ua = ar.arr(U)
        # stem: input_var <x_i, z_j> for every position pair, as a float64 / mpf sum over channels
        G = sum(Ua[pa][:, :, None, c] * Ua[pb][:, None, :, c] for c in range(C)) * ar.num(arch.input_var)
        index = {}

        def shift_index(taps):
            key = tuple(taps)
            if key not in index:
                pos = [(h, w) for h in range(H) for w in range(W)]
                index[key] = [_np.array([((h + dh) % H) * W + (w + dw) % W for h, w in pos]) for dh, dw in taps]
            return index[key]

        def patch(M, q):
            sh = shift_index(conv_taps(q, H, W))
            acc = M[:, sh[0][:, None], sh[0][None, :]]
            for s in sh[1:]:
                acc = acc + M[:, s[:, None], s[None, :]]
            return acc / len(sh)

        c_half = ar.num(arch.weight_var) / 2
        diag = _np.arange(P)

        def phi(M):
            S = M[selfs][:, diag, diag]                          # (n + m, P): pixel variances
            g = ar.sqrt(S[pa][:, :, None] * S[pb][:, None, :])
            R = ar.clip1(M / g)
            th = ar.acos(R)
            p0 = c_half * (ar.pi - th) / ar.pi
            p1 = c_half * g * (ar.sqrt(1 - R * R) + (ar.pi - th) * R) / ar.pi
            return p1, p0

        K = patch(G, arch.stem_size)
        hidden = arch.trained == "hidden"
        T = K * 0 if hidden else K
        q = arch.filter_size
        if isinstance(arch, CNN):
            for layer in range(1, arch.depth + 1):
                p1, p0 = phi(K)
                if layer < arch.depth:
                    T = patch(p1 + p0 * T, q)
                    K = patch(p1, q)
                else:
                    T = p0 * T if hidden else p1 + p0 * T
                    K = p1
        else:
            for al in arch.alphas():
                a2 = ar.num(al) ** 2
                PK = patch(K, q)
                p1, p0 = phi(PK)
                Pp1 = patch(p1, q)
                T = T + a2 * (Pp1 + patch(p0 * patch(T + K, q), q))
                K = K + a2 * Pp1
            if not hidden:
                T = T + K
        M = T if kind == "ntk" else K
        if arch.readout == "center":
            out = M[:, 0, 0]
        elif arch.readout == "flatten":
            out = M[:, diag, diag].sum(axis=1) / P
        else:
            out = M.sum(axis=(1, 2)) / P ** 2
        cross, own = out[:n_cross].reshape(n, m), out[n_cross:]
        if normalize:
            cross = cross / ar.sqrt(_np.outer(own[:n], own[n:]))
        if dps is None and not _np.all(_np.isfinite(cross)):
            raise OverflowError("the reference overflowed float64 (it does not rescale by layer); use dps")
        return cross


class _nullcontext:
    def __enter__(self):
        return self

    def __exit__(self, *a):
        return False

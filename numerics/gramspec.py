"""Gram-matrix spectra and conditioning, with the exact oracles of docs/spectral.md §8."""
from __future__ import annotations

import math

import numpy as np


def gram_eigenvalues(K) -> np.ndarray:
    """Eigenvalues of a symmetric Gram matrix, ascending (symmetric solver, no jitter)."""
    K = np.asarray(K, dtype=np.float64)
    if K.ndim != 2 or K.shape[0] != K.shape[1]:
        raise ValueError(f"K must be a square matrix, got shape {K.shape}")
    if not np.allclose(K, K.T, rtol=1e-12, atol=1e-14 * np.abs(K).max()):
        raise ValueError("K must be symmetric")
    return np.linalg.eigvalsh(K)


def condition_number(K) -> float:
    """lambda_max / lambda_min of a PSD Gram matrix (inf when lambda_min <= 0). No jitter."""
    lam = gram_eigenvalues(K)
    return float(lam[-1] / lam[0]) if lam[0] > 0 else math.inf


def double_constant_cond(a: float, b: float, n: int) -> float:
    """cond of the n x n matrix with a on the diagonal and b off it: (a + (n-1) b)/(a - b)."""
    return (a + (n - 1) * b) / (a - b)


def double_constant_lower_bound(beta_min: float, n: int) -> float:
    """A PSD unit-diagonal matrix with off-diagonal entries >= beta_min has
    cond >= (1 + (n-1) beta_min)/(1 - beta_min)."""
    return (1 + (n - 1) * beta_min) / (1 - beta_min)


def circle_points(n: int) -> np.ndarray:
    """n equispaced points on S^1 (angles 2 pi j / n)."""
    a = 2 * np.pi * np.arange(n) / n
    return np.stack([np.cos(a), np.sin(a)], axis=1)


def circulant_eigenvalues(f, n: int) -> np.ndarray:
    """Exact eigenvalues lambda_m = sum_j f(cos(2 pi j/n)) cos(2 pi j m/n) of the circulant
    Gram matrix of n equispaced points on the circle, m = 0..n-1 (docs/spectral.md §8.2)."""
    j = np.arange(n)
    vals = f(np.cos(2 * np.pi * j / n))
    return np.array([float(np.dot(vals, np.cos(2 * np.pi * j * m / n))) for m in range(n)])


def aliasing_eigenvalue(mu, m: int, n: int, lmax: int, tail=None) -> float:
    """``n sum_{l in Z, l = m (mod n)} mu_|l|`` with |l| <= lmax, plus ``tail(m, n, lmax)``
    for the truncated remainder (docs/spectral.md §8.2; d = 2 eigenvalues mu)."""
    total = 0.0
    for l in range(-lmax, lmax + 1):
        if (l - m) % n == 0:
            total += float(mu[abs(l)])
    if tail is not None:
        total += tail(m, n, lmax)
    return n * total


def krawtchouk(j: int, s: int, d: int) -> int:
    """K_j(s) = sum_i (-1)^i C(s, i) C(d-s, j-i)."""
    return sum((-1) ** i * math.comb(s, i) * math.comb(d - s, j - i) for i in range(0, j + 1))


def hypercube_eigenvalues(f, d: int) -> list:
    """Eigenvalues of f(<x,z>) on the 2^d vertices {+-1}^d/sqrt(d): for characters of size s,
    lambda_s = sum_j f((d - 2j)/d) K_j(s), multiplicity C(d, s) (docs/spectral.md §8.4).

    The points are passed as mpmath numbers: the exact rational (d - 2j)/d rounded at the working
    precision plus ceil(d log10 2) + 10 guard digits (the Krawtchouk sums cancel up to 2^d), and
    the sums are exact-integer-weighted mpmath fsums, so an mpmath kernel keeps the working
    precision (a float (d - 2j)/d kept only 7-9 digits at d = 30).  The result is mpf at the working
    precision when f returns mpmath numbers, float when f returns floats (then float64 rounding of f
    limits the accuracy; a kernel that refuses mpmath arguments gets the float points).  Kernels whose lambda_s is far below max|f| 2^d lose a further
    log10(max|f| 2^d / |lambda_s|) digits; raise mpmath's precision for those."""
    import mpmath
    guard = math.ceil(d * math.log10(2)) + 10
    with mpmath.workdps(mpmath.mp.dps + guard):
        try:
            vals = [f(mpmath.mpf(d - 2 * j) / d) for j in range(d + 1)]
        except (TypeError, ValueError):        # a float-only kernel: float points
            vals = [f((d - 2 * j) / d) for j in range(d + 1)]
        as_mp = all(isinstance(v, (mpmath.mpf, mpmath.mpc)) for v in vals)
        if not as_mp:
            vals = [mpmath.mpf(float(v)) for v in vals]
        lam = [mpmath.fsum(vals[j] * krawtchouk(j, s, d) for j in range(d + 1)) for s in range(d + 1)]
    return [+x for x in lam] if as_mp else [float(x) for x in lam]


def hypercube_points(d: int) -> np.ndarray:
    grid = np.array(np.meshgrid(*[[-1.0, 1.0]] * d, indexing="ij")).reshape(d, -1).T
    return grid / np.sqrt(d)


def walsh_spectrum(arch, kind: str, P: int) -> dict:
    """Eigenvalues of a multi-dot-product conv kernel (center / flatten readout) on the hypercube
    {+-1}^P (one channel per pixel, circular signal): lambda_S = 2^-P sum_u F(u) prod_{i in S} u_i,
    with F(u) = K(1, u) (docs/spectral.md §6.2, C0 = 1).  Returns {frozenset(S): lambda_S} for all 2^P sets."""
    import itertools
    from reskernels.numerics import gram
    U = np.array(list(itertools.product([1.0, -1.0], repeat=P)))
    F = gram(arch, np.ones((1, P, 1)), U[:, :, None], kind=kind)[0]
    out = {}
    for r in range(P + 1):
        for S in itertools.combinations(range(P), r):
            chi = np.prod(U[:, list(S)], axis=1) if S else np.ones(len(U))
            out[frozenset(S)] = float(np.dot(F, chi)) / len(U)
    return out

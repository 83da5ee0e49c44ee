"""Spectra of convolutional kernels on products of spheres MS(C0, P) = (S^(C0-1))^P.

The "center" and "flatten" readouts of CNN / ResCNN are multi-dot-product kernels
K(x, z) = F(t_1, ..., t_P), t_i = <x_i, z_i> for unit pixels (docs/spectral.md §6.1).  Their
eigenfunctions are products of spherical harmonics Prod_i Y_{k_i}(x_i), indexed by the
frequency vector k in N^P, with multiplicity Prod_i N(C0, k_i), and

    lambda_k = c_{C0}^P int_{[-1,1]^P} F(t) Prod_i P_{k_i}(t_i) (1 - t_i^2)^((C0-3)/2) dt

(multivariate Funk-Hecke, uniform probability measure on MS).  Routes:

* :func:`multi_dot_kernel` evaluates F on an array of pixel cosines by the pixel-diagonal
  slice (r = 0) of the convolutional recursion of :mod:`numerics.conv` -- the same code path
  as :func:`numerics.gram`, without building input vectors.
* :func:`torus_spectrum` (C0 = 2, pixels on circles, docs/spectral.md §6.5): t_i = cos(delta_i) and
  lambda_k = E_delta[F(cos delta) Prod_i cos(k_i delta_i)] is a P-dimensional Fourier
  coefficient.  The periodic trapezoid rule with n points per axis gives *all* k with
  k_i <= n/2 from one DCT-I of F on the half grid delta = 2 pi j / n, j = 0..n/2 (F is even
  in every delta_i).  Its error is aliasing, sum over m != 0 of lambda_{k + m n}: spectrally
  small away from the kink at t = (1, ..., 1), algebraic near it, so
  :func:`torus_spectrum_converged` repeats the rule with 2n points per axis and reports the
  difference as the error estimate.
* :func:`product_sphere_eigenvalues` (any C0 >= 2, few pixels): tensor Gauss-Legendre rule in
  the angles theta_i, for a user-supplied vectorised F (docs/spectral.md §6.5: a 600^2 rule gives
  about 13 digits for C0 = 3, two pixels).
* :func:`shift_average`: the flatten eigenvalue of k is the mean of the center eigenvalues
  over the cyclic shifts of k (docs/spectral.md §6.3); the gap readout keeps those values on
  shift-symmetrised eigenfunctions and maps every other function to 0.

Exact oracles for these routes (polynomial and factorisable F, the hypercube C0 = 1) are in
:mod:`theory.harmonics` and :func:`numerics.gramspec.walsh_spectrum`; the tests tie them together.

Axis convention: axis i of a returned array is pixel i of a circular signal of P pixels
(pixel 0 is the one read by "center"; pixel offset -1 is axis P - 1).
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
import scipy.fft
import scipy.special

from reskernels.theory import layers as _L
from reskernels.theory.arch import check_kind

from . import pixel_maps as _px

_CHUNK_ROWS = 2 ** 15  # grid points per evaluation chunk (P <= 9 pixels: < 40 MiB of temporaries)


def receptive_radius(arch) -> int:
    """Receptive radius of the "center" readout (docs/spectral.md §6.3):
    (L-1)(q-1)/2 + (s-1)/2 for CNN(L), L(q-1) + (s-1)/2 for ResCNN(L)."""
    if not getattr(arch, "is_conv", False):
        raise TypeError(f"receptive_radius needs a CNN or ResCNN spec, got {arch!r}")
    return _L.patch_radius(arch.kernel_maps())


def _multi_dot_arch(arch):
    if not getattr(arch, "is_conv", False):
        raise TypeError(f"multi-dot-product kernels are CNN / ResCNN specs, got {arch!r}")
    if arch.kernel_maps()[-1].pooling == "gap":
        raise ValueError("the gap readout is not a multi-dot-product kernel (it couples pixels i != j, "
                         "docs/spectral.md §6.1); use readout='flatten' and project onto shift-invariant "
                         "functions (shift_average)")


def multi_dot_kernel(arch, T, kind: str = "ntk", *, normalize: bool = True, backend: str = "numpy") -> np.ndarray:
    """F(t_1, ..., t_P) of a center / flatten conv kernel for unit pixels.

    T: array (..., P) of pixel cosines t_i = <x_i, z_i> in [-1, 1] (a circular 1-D signal of P
    pixels).  Returns an array of shape T.shape[:-1].  ``normalize=True`` (default) divides by
    F(1, ..., 1) = K(x, x), which is then exactly 1; otherwise the contract's unnormalised
    kernel for unit pixels (equal to ``gram`` on any inputs with those pixel cosines).

    backend: "numpy" (default: the pixel interpreter :mod:`numerics.pixel_maps`; positively
    homogeneous activations without biases), "numba" (the compiled variance-carrying loop
    :func:`numerics.conv_fused_general.multi_dot_block`: the maps of the conv engine's compiled loop on
    the readout's receptive cone only, bit for bit that loop; every closed-form activation and biases;
    within a few ulps of numpy, 3-5x faster (CNN(3) 80 vs 255 ns an evaluation, ResCNN(1) 37 vs 197
    ns, P = 5, one core); ImportError without numba, NotImplementedError for an activation without a
    compiled dual, OverflowError where the unnormalised scale overflows) or "auto" (numba when
    installed and the program lowers, else numpy).
    """
    check_kind(kind)
    if backend not in ("numpy", "numba", "auto"):
        raise ValueError(f"backend must be 'numpy', 'numba' or 'auto', got {backend!r}")
    _multi_dot_arch(arch)
    T = np.asarray(T, dtype=np.float64)
    if T.ndim < 1 or T.shape[-1] < 1:
        raise ValueError(f"T must have a last axis of P >= 1 pixel cosines, got shape {T.shape}")
    if not np.all(np.isfinite(T)):
        raise ValueError("T contains non-finite values")
    if np.any(np.abs(T) > 1 + 1e-12):
        raise ValueError("pixel cosines must lie in [-1, 1]")
    P = T.shape[-1]
    maps = arch.kernel_maps()
    sizes = [("stem_size", maps[0].stem_size)] + [
        ("filter_size", m.filter_size) for m in maps if getattr(m, "filter_size", 1) > 1]
    for name, size in sizes:
        if size > P:
            raise ValueError(f"{name}={size} is larger than the signal ({P} pixels)")
    lead = T.shape[:-1]
    rows = np.clip(T.reshape(-1, P), -1.0, 1.0)
    if backend != "numpy":
        try:
            from . import conv_fused
            compiled = _compiled_multi_dot(arch, P, kind, conv_fused.ACOS)
        except (ImportError, NotImplementedError):
            if backend == "numba":
                raise
            compiled = None
        if compiled is not None:
            return compiled(rows, normalize).reshape(lead)
    if not _L.is_normalizable(maps):
        raise NotImplementedError(f"{arch.slug}: the numpy pixel interpreter evaluates positively homogeneous "
                                  "activations without biases; backend='numba' (or 'auto' with numba installed) "
                                  "runs the closed-form activations (relu family, step, monomials, erf, sin, cos) "
                                  "and biases; tanh, gelu and user activations have no multi-dot route")

    def taps_of(q):
        return [0], _px.taps(q, 1, P)

    tsh, tsw = taps_of(maps[0].stem_size)
    iv = maps[0].input_var
    V = _px.diagonal_variances(maps, iv * _px.patch(np.ones((1, P)), tsh, tsw), taps_of)
    variances = [(v, v) for v in V]
    want_ntk = kind == "ntk"
    pooling = maps[-1].pooling

    def evaluate(R):
        G = iv * _px.patch(R[:, None, :], tsh, tsw)
        K, Th = _px.run(maps, G, _px.Context(taps_of, np, variances, None, want_ntk))
        M = (Th if want_ntk else K)[:, 0, :]
        return M[:, 0] if pooling == "center" else M.mean(axis=1)

    out = np.empty(len(rows))
    for a in range(0, len(rows), _CHUNK_ROWS):
        out[a:a + _CHUNK_ROWS] = evaluate(rows[a:a + _CHUNK_ROWS])
    diag = evaluate(np.ones((1, P)))[0]
    if normalize:
        if not diag > 0:
            raise ValueError(f"normalize=True is undefined: the {kind} of {arch.slug} has K(x, x) = 0")
        out /= diag
    else:
        scale_log = _L.log_diag_scale(maps) - math.log(iv)
        if scale_log > 700:
            raise OverflowError(f"the unnormalised kernel of {arch.slug} has scale exp({scale_log:.0f}); "
                                "use normalize=True")
        out *= math.exp(scale_log)
    return out.reshape(lead)


@functools.lru_cache(maxsize=16)
def _compiled_multi_dot(arch, P, kind, acos):
    """F by the compiled loop of :mod:`numerics.conv_fused_general` (``multi_dot_kernel(backend=...)``):
    a function (rows, normalize) -> F (kept per spec, P, kind and arccos mode); ImportError without
    numba, NotImplementedError when an activation has no compiled dual.

    :func:`conv_fused_general.multi_dot_block`: the maps of the compiled loop on the pairs (unit signal,
    signal whose pixel i has cosine t_i with it), one channel; the variances of every dual's argument are
    those of the unit signal, recorded once by :func:`conv_fused_general.diagonal` and read for both sides
    (the kernel of unit pixels, whatever |t_i|); a center readout computes only its receptive cone.
    Normalisation divides by the same loop's value at t = 1, computed with the same operations as a row
    of ones: F(1, ..., 1) = 1 exactly."""
    from . import conv_fused_general as _fg
    maps = arch.kernel_maps()
    prog = _fg.lower(maps, lambda q: (np.zeros(1, dtype=np.int64), np.array(_px.taps(q, 1, P), dtype=np.int64)))
    poly = _fg._poly(acos)
    VX = np.ascontiguousarray(_fg.diagonal_variances(prog, np.ones((1, 1, P, 1)))[:, 0, 0, :])
    pooling = maps[-1].pooling
    need, mid = _fg.cone_masks(prog, P, pooling)
    readout = {"center": 2, "flatten": 1}[pooling]

    args = (prog.ops, prog.params, prog.aparams, prog.coef, prog.taps_w, need, mid, VX, kind == "ntk", readout)

    def block(rows):
        out = np.empty(len(rows))
        _fg.multi_dot_block(np.ascontiguousarray(rows), *args, out, poly)
        return out

    diag = block(np.ones((1, P)))[0]
    if not np.isfinite(diag):
        raise OverflowError(f"the compiled multi-dot loop overflows on {arch.slug} (K(x, x) = {diag}); use "
                            "backend='numpy', which carries the layer scale separately")

    def evaluate(rows, normalize):
        out = block(rows)                    # no temporaries beyond (P, 64) rows
        if normalize:
            if not diag > 0:
                raise ValueError(f"normalize=True is undefined: the {kind} of {arch.slug} has K(x, x) = 0")
            out /= diag
        return out
    # for loops that call multi_dot_block themselves (numerics.ray_spectra's window rule,
    # conv_fused_general.tensor_sums): the program's arguments, the arccos mode, the unnormalised diagonal
    evaluate.kernel_args, evaluate.poly, evaluate.diag = args, poly, diag
    return evaluate


def _grid_sizes(n, P):
    ns = (n,) * P if np.ndim(n) == 0 else tuple(n)
    if len(ns) != P:
        raise ValueError(f"n must be an int or one size per pixel ({P}), got {n!r}")
    for v in ns:
        if int(v) != v or v < 2 or v % 2:
            raise ValueError(f"grid sizes must be even integers >= 2, got {n!r}")
    return tuple(int(v) for v in ns)


def _evaluator(F, kind, P, normalize, backend="numpy"):
    """(callable T -> F(T), P) for a conv spec (:func:`multi_dot_kernel` with ``backend``) or a user
    function of (N, P) cosines."""
    if P is not None and (isinstance(P, bool) or int(P) != P or P < 1):
        raise ValueError(f"P must be a positive integer, got {P!r}")
    if callable(F) and not callable(getattr(F, "kernel_maps", None)):
        if P is None:
            raise ValueError("a callable multi-dot-product kernel needs P (number of pixels)")
        return F, int(P)
    _multi_dot_arch(F)
    if P is None:
        if F.readout != "center":
            raise ValueError("the flatten readout depends on every pixel: pass P (signal length)")
        P = 2 * receptive_radius(F) + 1

    def f(T):
        return multi_dot_kernel(F, T, kind, normalize=normalize, backend=backend)
    f.compiled = None           # the compiled loop's handle (kernel_args, poly, diag) when the backend uses it
    if backend != "numpy":
        f(np.ones((1, int(P))))                  # validates the spec against P (filter sizes) first
        try:
            from . import conv_fused
            f.compiled = _compiled_multi_dot(F, int(P), kind, conv_fused.ACOS)
        except (ImportError, NotImplementedError):
            if backend == "numba":
                raise
    f.normalize = normalize
    return f, P


def torus_spectrum(F, kind: str = "ntk", n=32, *, P: int | None = None,
                   normalize: bool = True) -> np.ndarray:
    """Eigenvalues lambda_k on (S^1)^P (C0 = 2) by the periodic trapezoid rule and one DCT-I.

    F: a CNN / ResCNN spec (center or flatten readout), or a callable taking an (N, P) array of
    pixel cosines.  n: points per axis on [0, 2 pi) (even; an int or one per pixel).  P: pixels
    of the circular signal; default, for the center readout, the receptive window 2 r + 1
    (docs/spectral.md §6.5: a signal of exactly the receptive pixels gives the same kernel).

    Returns an array of shape (n_0/2 + 1, ..., n_{P-1}/2 + 1): entry k is lambda_k for the
    product harmonic of frequency |k_i| on pixel i (multiplicity Prod_i N(2, k_i)).  The
    discrete sum rule sum_k w_k lambda_k = F(1, ..., 1) holds to rounding with the weights of
    :func:`torus_multiplicity` (``trapezoid=True``: the Nyquist frequency n/2 counted once).
    """
    f, P = _evaluator(F, kind, P, normalize)
    ns = _grid_sizes(n, P)
    axes = [np.cos(2 * np.pi * np.arange(v // 2 + 1) / v) for v in ns]
    shape = tuple(len(a) for a in axes)
    total = math.prod(shape)
    vals = np.empty(total)
    for a in range(0, total, _CHUNK_ROWS):
        idx = np.unravel_index(np.arange(a, min(a + _CHUNK_ROWS, total)), shape)
        T = np.stack([axes[i][idx[i]] for i in range(P)], axis=-1)
        out = np.asarray(f(T), dtype=np.float64)
        if out.shape != (len(T),) or not np.all(np.isfinite(out)):
            raise ValueError("the kernel must return finite values of shape (N,) for (N, P) cosines")
        vals[a:a + len(T)] = out
    lam = scipy.fft.dctn(vals.reshape(shape), type=1)
    lam /= math.prod(ns)
    return lam


@dataclass
class TorusSpectrum:
    """lambda_k from the 2n rule, restricted to k_i <= n_i/2, with the doubling error estimate."""

    values: np.ndarray
    error: np.ndarray
    n: tuple
    P: int

    def __getitem__(self, k):
        return self.values[tuple(k)]

    def ray(self, ks):
        """(lambda, error) along a list of frequency vectors."""
        return (np.array([self.values[tuple(k)] for k in ks]),
                np.array([self.error[tuple(k)] for k in ks]))


def torus_spectrum_converged(F, kind: str = "ntk", n=32, *, P: int | None = None,
                             normalize: bool = True) -> TorusSpectrum:
    """:func:`torus_spectrum` at n and 2n per axis; values from 2n, error = |lambda_2n - lambda_n|
    on the common frequencies k_i <= n_i/2 (aliasing at n is a multiple of that at 2n, so the
    difference bounds the error of the 2n values whenever aliasing decreases with n)."""
    _, P = _evaluator(F, kind, P, normalize)
    ns = _grid_sizes(n, P)
    lo = torus_spectrum(F, kind, ns, P=P, normalize=normalize)
    hi = torus_spectrum(F, kind, tuple(2 * v for v in ns), P=P, normalize=normalize)
    hi = hi[tuple(slice(0, v // 2 + 1) for v in ns)]
    return TorusSpectrum(values=hi, error=np.abs(hi - lo), n=tuple(2 * v for v in ns), P=P)


def torus_multiplicity(shape, *, trapezoid: bool = False) -> np.ndarray:
    """Prod_i N(2, k_i) on a grid of frequency vectors (N(2,0) = 1, else 2).

    ``trapezoid=True``: the weights of the discrete Fourier sum of an n-point rule, where the
    last frequency n/2 (Nyquist) appears once, not twice."""
    m = np.ones(shape)
    for ax, size in enumerate(shape):
        w = np.full(size, 2.0)
        w[0] = 1.0
        if trapezoid and size > 1:
            w[-1] = 1.0
        m = m * w.reshape([-1 if i == ax else 1 for i in range(len(shape))])
    return m


def shift_average(center: np.ndarray) -> np.ndarray:
    """Flatten eigenvalues from center eigenvalues on the same P-pixel signal:
    lambda^flatten_k = (1/P) sum_s lambda^center_{tau_s k} (docs/spectral.md §6.3).

    ``center`` is a full frequency grid with equal sizes on every axis (as from
    :func:`torus_spectrum` with P given); the cyclic shift permutes the axes."""
    P = center.ndim
    if len(set(center.shape)) != 1:
        raise ValueError("shift_average needs the same number of frequencies on every axis")
    acc = np.zeros_like(center)
    for s in range(P):
        acc += np.transpose(center, [(i - s) % P for i in range(P)])
    return acc / P


def _gegenbauer_normalised(k, C0, t):
    """P_k of dimension C0 (P_k(1) = 1) at t: Chebyshev T_k for C0 = 2, Legendre for C0 = 3."""
    if C0 == 2:
        return scipy.special.eval_chebyt(k, t)
    lam = (C0 - 2) / 2
    return scipy.special.eval_gegenbauer(k, lam, t) / scipy.special.eval_gegenbauer(k, lam, 1.0)


def product_sphere_eigenvalues(F, C0: int, m: int, ks, nodes: int = 200) -> np.ndarray:
    """lambda_k of a multi-dot-product kernel F(t_1..t_m) on (S^(C0-1))^m by the tensor
    Gauss-Legendre rule in theta_i in [0, pi] (``nodes`` per axis, float64).

    lambda_k = Prod_i [c_{C0} int_0^pi d theta_i sin^(C0-2) theta_i P_{k_i}(cos theta_i)] F(cos theta)
    (docs/spectral.md §6.1).  F must accept an array (N, m) of cosines and return (N,).
    ``ks``: sequence of frequency vectors of length m.  Memory: nodes^m grid values.
    """
    if int(C0) != C0 or C0 < 2:
        raise ValueError(f"C0 must be an integer >= 2, got {C0!r}")
    if int(m) != m or m < 1:
        raise ValueError(f"m (pixels) must be a positive integer, got {m!r}")
    if nodes ** m > 5e7:
        raise ValueError(f"nodes^m = {nodes}^{m} grid points is too many (limit 5e7)")
    ks = [tuple(int(v) for v in k) for k in ks]
    for k in ks:
        if len(k) != m or min(k) < 0:
            raise ValueError(f"frequency vectors must have {m} non-negative entries, got {k}")
    x, w = np.polynomial.legendre.leggauss(nodes)
    theta = (x + 1) * (np.pi / 2)
    w = w * (np.pi / 2) * np.sin(theta) ** (C0 - 2)
    w = w / w.sum()          # c_{C0} int_0^pi sin^(C0-2) = 1 exactly in the rule
    ct = np.cos(theta)
    grids = np.meshgrid(*([ct] * m), indexing="ij")
    vals = np.asarray(F(np.stack([g.ravel() for g in grids], axis=-1)), dtype=np.float64)
    if vals.shape != (nodes ** m,) or not np.all(np.isfinite(vals)):
        raise ValueError("F must return finite values of shape (N,) for an (N, m) array of cosines")
    vals = vals.reshape((nodes,) * m)
    kmax = max(max(k) for k in ks)
    basis = np.stack([w * _gegenbauer_normalised(j, C0, ct) for j in range(kmax + 1)])  # (kmax+1, nodes)
    out = []
    for k in ks:
        v = vals
        for i in range(m):
            v = np.tensordot(basis[k[i]], v, axes=([0], [0]))
        out.append(float(v))
    return np.array(out)

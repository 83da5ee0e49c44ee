"""Float64 Gram matrices: validation, pair geometry, tiling, threads.

``gram(arch, X, Z=None, kind="ntk")`` returns the n x m matrix of kernel values.
Fully connected kernels are positively homogeneous, K(x, z) = |x| |z| K(x^, z^),
and zonal, so each entry needs only the half angle between x^ and z^:

* sin^2(theta/2) = |x^ - z^|^2 / 4 and cos^2(theta/2) = |x^ + z^|^2 / 4.

They are taken from one BLAS product t = X^ Z^T, and recomputed from explicit
differences (sums) wherever |t| > 0.9, where 1 -+ t would lose relative accuracy.
Identical rows therefore give sin(theta/2) = 0 exactly and the diagonal is exact.

Work is split into square tiles of output entries whose size follows
``memory_budget`` (bytes of temporaries, default 256 MiB); tiles run on a thread
pool (numpy ufuncs release the GIL).  With ``Z=None`` only tiles on or above the
block diagonal are computed and mirrored, so K is exactly symmetric.

Input scales: the kernels are positively homogeneous, so inputs are reduced to unit rows (FC) or scaled
by a power of two per input (conv; exact) and the norms applied at the end: any finite input scale
keeps full accuracy.  Specs with biases or non-homogeneous activations cannot be rescaled; inputs too
large (or, with ``normalize=True``, too small) for float64 there raise :class:`InputRangeError`
(a ValueError) naming X or Z, never NaN.

Overflow: the unnormalised kernel carries the diagonal scale
input_var (c/2)^L (MLP) or input_var prod (1 + alpha_l^2 c/2) (ResNet), which
overflows float64 for e.g. ResNet(depth=1100, alpha=1).  ``gram`` then raises
:class:`OverflowError`; ``normalize=True`` returns K(x,z)/sqrt(K(x,x) K(z,z)),
which is computed without the scale and is finite at any depth.
"""
from __future__ import annotations

import math
import os

import numpy as np

from reskernels.theory import layers as _L
from reskernels.theory.arch import check_kind

from .backends import NUMPY  # noqa: F401  (re-exported for callers of numerics.gram)
from .conv import (InputRangeError, _not_finite_error, _zero_diagonal_error, all_finite, gram_conv,
                   split_scale)
from .fc import half_angle_recursion, normalized_diagonal
from .inputs import as_float_array, check_gram_options
from .variance import CompiledDualContext, NumpyContext, fc_kernel
from .tiles import PlanBase, array_module, execute, mirror_upper, norm_scale, resolve_backend, to_host

#: float64 temporaries alive per output entry inside one tile (measured upper bound)
_TEMPS_PER_ENTRY = 24
_NEAR = 0.9
_DETERMINISTIC_D = 64


def _unit_rows(A):
    # rescale first to avoid overflow of the squared norm for huge entries
    scale = np.max(np.abs(A), axis=1)
    safe = np.where(scale > 0, scale, 1.0)
    As = A / safe[:, None]
    n2 = np.sqrt(np.einsum("ij,ij->i", As, As))
    norms = n2 * scale
    unit = np.where(n2[:, None] > 0, As / np.where(n2 > 0, n2, 1.0)[:, None], 0.0)
    return unit, norms


def half_angles(Xu, Zu, xp=np):
    """(sin(theta/2), cos(theta/2)) for all pairs of unit (or zero) rows (numpy or CuPy arrays).

    The cosines come from one product.  Up to _DETERMINISTIC_D features numpy's own einsum loop
    forms it (the same rounding for an entry whatever the tile shape, thread or process); above,
    BLAS (held single-threaded by the executor; a BLAS that ignores the limit, e.g. an OpenMP build
    called from worker threads, may then round the last bit differently between executors)."""
    if xp is np and Xu.shape[1] <= _DETERMINISTIC_D:
        t = np.einsum("ik,jk->ij", Xu, Zu)
    else:
        t = Xu @ Zu.T
    xp.clip(t, -1.0, 1.0, out=t)
    su2 = (1.0 - t) * 0.5
    sv2 = (1.0 + t) * 0.5
    for sign, target, other in ((-1.0, su2, sv2), (1.0, sv2, su2)):
        mask = (t > _NEAR) if sign < 0 else (t < -_NEAR)
        ii, jj = xp.nonzero(mask)
        step = max(1, (1 << 20) // max(1, Xu.shape[1]))
        for s in range(0, int(ii.size), step):
            i, j = ii[s:s + step], jj[s:s + step]
            diff = Xu[i] + sign * Zu[j]
            val = xp.einsum("ij,ij->i", diff, diff) * 0.25
            target[i, j] = val
            other[i, j] = 1.0 - val
    return xp.sqrt(su2), xp.sqrt(sv2)


class FCGramPlan(PlanBase):
    """A fully connected Gram matrix as a grid of independent tiles (see :mod:`numerics.tiles`).

    ``block(tile)`` computes the half angles of the tile's pairs from one matrix product (corrected
    by explicit differences where |t| > 0.9), runs the half-angle recursion and scales by
    exp(log_diag_scale) |x| |z| (or divides by the normalised diagonal).  ``compiled_duals`` (default:
    numba is installed, as ``gram``'s backend="auto") runs the recursion of ReLU-family programs as one
    compiled loop (:mod:`numerics.fc_fused`, 3x faster, within a few ulps, exact diagonals) and the
    closed-form duals of variance-carrying programs compiled; False keeps numpy throughout."""

    def __init__(self, arch, X, Z=None, kind: str = "ntk", *, normalize: bool = False,
                 memory_budget: int = 256 * 2**20, tile: int = 128, n_threads: int | None = None,
                 backend: str = "numpy", compiled_duals: bool | None = None):
        check_kind(kind)
        if compiled_duals is None:    # as gram's default backend: the compiled loops when numba is installed
            from .conv_fused import available
            compiled_duals = available()
        X = as_float_array(X, "X", 2)
        symmetric = Z is None
        Zm = X if symmetric else as_float_array(Z, "Z", 2)
        if Zm.shape[1] != X.shape[1]:
            raise ValueError(f"X and Z must have the same feature dimension, got X with "
                             f"{X.shape[1]} and Z with {Zm.shape[1]} columns")
        self.arch, self.kind, self.normalize, self.backend = arch, kind, normalize, backend
        self.xp = array_module(backend)
        self.compiled_duals = compiled_duals
        self.X, self.Z = X, (None if symmetric else Zm)
        self.n, self.m, self.symmetric = X.shape[0], Zm.shape[0], symmetric
        self.maps = arch.kernel_maps()
        self.general = not _L.is_normalizable(self.maps)
        self.fc_program = None        # (ops, params) of numerics.fc_fused when its compiled loop runs
        if self.general:
            # the interpreter's diagonals only where the compiled loop does not take the program
            prog = self._general_program() if compiled_duals and backend == "numpy" else None
            self._init_general(X, Zm, symmetric, normalize and prog is None, backend)
        else:
            self._init_normalized(arch, X, Zm, symmetric, normalize, kind)
            if compiled_duals and backend == "numpy":
                from . import fc_fused
                try:
                    self.fc_program = fc_fused.lower(self.maps)
                except NotImplementedError:
                    self.fc_program = None
        self.general_program = None   # conv_fused_general's Program when its compiled loop runs
        self.series_recomputed = []   # per tile: pairs whose Hermite series was not certified (numpy again)
        if self.general and prog is not None:
            try:
                self._init_general_compiled(prog, X, Zm, symmetric)
            except NotImplementedError:       # series tables too large, a variance not finite: numpy
                self.general_program = None
                if normalize:
                    self._init_general(X, Zm, symmetric, normalize, backend)
        # a store names the route its blocks come from: the compiled loops round differently from numpy
        # (a few ulps), so a job stored by one is refused by the other instead of mixed with its blocks
        from .rho_tables import table_format
        self.block_format = ("compiled half-angle loop" if self.fc_program is not None
                             else ("compiled variance-carrying loop" + (", Hermite duals tabulated in rho"
                                   + table_format() if np.any(self.series_tables[6] >= 0) else ""))
                             if self.general_program is not None
                             else "compiled duals" if self.general and compiled_duals else None)
        if not self.general:
            # the ReLU half-angle duals' small-angle series (2026-12-03) moved the blocks of deep programs by up to
            # ~1e-9 relative: a store written without it is refused, not mixed (tests/numerics/test_tiles.py)
            from reskernels.theory.activations import SMALL_ANGLE_H
            if SMALL_ANGLE_H > 0:
                series = f"kappa1 - rho by its series below h = {SMALL_ANGLE_H:g}"
                self.block_format = series if self.block_format is None else f"{self.block_format}, {series}"
        self.threads = 1 if backend != "numpy" else (n_threads or os.cpu_count() or 1)
        if backend == "numpy":
            per_thread = max(1, memory_budget // (self.threads * _TEMPS_PER_ENTRY * 8))
            block = max(16, min(tile, int(math.isqrt(per_thread))))
        else:   # one GPU: tiles as large as the budget allows
            block = max(16, int(math.isqrt(max(1, memory_budget // (_TEMPS_PER_ENTRY * 8)))))
        self.tiles = list(_tiles(self.n, self.m, block, symmetric))

    def _init_general(self, X, Zm, symmetric, normalize, backend):
        """Variance-carrying programs (any activation, biases, DenseNet): raw inner products, the
        pair state (|x|^2, |z|^2, <x, z>) through :mod:`theory.general` (numerics.variance)."""
        if backend != "numpy":
            raise NotImplementedError(f"backend={backend!r} runs normalisable programs only (homogeneous "
                                      "activations without biases); use backend='numpy'")
        self.Xr = X
        self.Zr = X if symmetric else Zm
        self.gx = _row_dots(X)
        self.gz = self.gx if symmetric else _row_dots(Zm)
        self.dx = self.dz = None
        if normalize:
            want = self.kind == "ntk"
            self.dx = fc_kernel(self.maps, self.gx, self.gx, self.gx, want, self._context(want))
            self.dz = self.dx if symmetric else fc_kernel(self.maps, self.gz, self.gz, self.gz, want,
                                                          self._context(want))
            if not (np.all(np.isfinite(self.dx)) and np.all(np.isfinite(self.dz))):
                raise _not_finite_error(self.arch, self.X, self.Z, self.kind)
            if np.any(self.dx <= 0) or np.any(self.dz <= 0):
                raise _zero_diagonal_error(self.arch, self.X, self.Z, self.dx, self.dz)

    def _general_program(self):
        """This variance-carrying FC program lowered by :func:`numerics.conv_fused_general.lower` (filter
        size 1; duals without a closed form by their Hermite series, :mod:`numerics.fc_series`), or
        None where it has no compiled rule (kinked user functions, concatenations)."""
        from . import conv_fused_general as _fg
        from . import fc_series
        zero = np.zeros(1, dtype=np.int64)
        try:
            return _fg.lower(self.maps, lambda q: (zero, zero),
                             series=lambda act: fc_series.probe(act, self.kind == "ntk") is not None)
        except NotImplementedError:
            return None

    def _init_general_compiled(self, prog, X, Zm, symmetric):
        """A variance-carrying FC program (biases, closed-form activations) as one compiled loop,
        :func:`numerics.fc_fused.general_block`: every map of theory.general per 64-pair lane block, the
        conv engine's per-entry duals on SIMD lanes; the per-input variances by the conv engine's compiled
        maps on 1 x 1 inputs (:func:`numerics.conv_fused_general.diagonal`, the same operations, so rho = 1
        exactly on the pairs (x, x)), and for ``normalize`` the diagonals by the loop itself, so that
        normalised diagonals are 1 exactly.  Duals without a closed form (tanh, GELU, user functions
        without kinks) by their Hermite series on the same lanes (:mod:`numerics.fc_series`: variances
        recorded by the loop itself, :func:`numerics.fc_fused.record_variances`; pairs with an entry the
        series does not certify again by the interpreter).  Programs it cannot lower (kinked user
        functions, concatenations) keep the numpy interpreter, and so do series programs whose
        coefficient tables would exceed :data:`numerics.fc_series.TABLE_FLOATS` (NotImplementedError)."""
        from . import conv_fused, fc_fused, fc_series, rho_tables
        from . import conv_fused_general as _fg
        self.Xg = np.ascontiguousarray(X.reshape(X.shape[0], 1, 1, X.shape[1]))
        self.Zg = self.Xg if symmetric else np.ascontiguousarray(Zm.reshape(Zm.shape[0], 1, 1, Zm.shape[1]))
        calls = fc_series.calls_of(self.maps, self.kind == "ntk")
        if any(c is not None for c in calls):
            # duals by their Hermite series: variances recorded by the loop itself, tables per dual
            self.Xg = self.Xg[:, 0, 0, :]
            self.Zg = self.Xg if symmetric else self.Zg[:, 0, 0, :]
            want, poly = self.kind == "ntk", _fg._poly(conv_fused.ACOS)
            n, m = self.Xg.shape[0], self.Zg.shape[0]
            recorded = None
            sq = np.concatenate([np.einsum("ij,ij->i", self.Xg, self.Xg), np.einsum("ij,ij->i", self.Zg, self.Zg)])
            if rho_tables.one_cluster(sq):
                # inputs of one norm (within ulps): every dual's variances are one run, so recording all
                # inputs costs what the sample's recording does; where the tables in rho then certify
                # every entry, nothing can be flagged and the sample is skipped
                recorded = fc_fused.record_variances(prog, calls, self.Xg, self.Zg, want, poly)
            if n * m > 4 * fc_series.SAMPLE ** 2 and not (
                    recorded is not None and fc_fused.tables_certify_all(calls, recorded, want)):
                # a sample of the inputs first: where the series leaves many pairs uncertified (GELU at
                # large variances) the interpreter's tiles are cheaper than the loop plus its recomputations
                ix, iz = fc_series.sample_indices(n, m, symmetric, fc_series.SAMPLE)
                xs = np.ascontiguousarray(self.Xg[ix])
                zs = xs if symmetric else np.ascontiguousarray(self.Zg[iz])
                # (inputs of one norm: on the tables just recorded, whose tables in rho the loop reads)
                if fc_fused.flagged_fraction(prog, calls, xs, zs, want, poly, recorded, ix, iz) > fc_series.FLAGGED_MAX:
                    raise NotImplementedError("the Hermite series leaves too many pairs of a sample uncertified")
            if recorded is None:
                recorded = fc_fused.record_variances(prog, calls, self.Xg, self.Zg, want, poly)
            self.VX, self.VZ, self.RX, self.RZ, self.series_tables = recorded
        else:
            self.VX = _fg.diagonal_variances(prog, self.Xg)[:, :, 0, 0].copy()
            self.VZ = self.VX if symmetric else _fg.diagonal_variances(prog, self.Zg)[:, :, 0, 0].copy()
            self.Xg, self.Zg = self.Xg[:, 0, 0, :], self.Zg[:, 0, 0, :]
            self.RX, self.RZ, self.series_tables = fc_fused.empty_tables(prog, self.Xg.shape[0], self.Zg.shape[0])
            if symmetric:
                self.RZ = self.RX
        self.EX = _fg.dual_factors(prog.ops, self.VX)
        self.EZ = self.EX if symmetric else _fg.dual_factors(prog.ops, self.VZ)
        self.general_program = prog
        if not self.normalize:
            return
        self.dx = self._compiled_diagonal(self.Xg, self.VX)
        self.dz = self.dx if symmetric else self._compiled_diagonal(self.Zg, self.VZ)
        if not (np.all(np.isfinite(self.dx)) and np.all(np.isfinite(self.dz))):
            raise _not_finite_error(self.arch, self.X, self.Z, self.kind)
        if np.any(self.dx <= 0) or np.any(self.dz <= 0):
            raise _zero_diagonal_error(self.arch, self.X, self.Z, self.dx, self.dz)

    def _compiled_general(self, i0, i1, j0, j1, upper):
        """out[i, j] by :func:`numerics.fc_fused.general_block` for rows i0:i1 of X and j0:j1 of Z; the
        pairs with an entry that a Hermite series does not certify (:mod:`numerics.fc_series`) again by
        the numpy interpreter."""
        from . import conv_fused
        from .conv_fused_general import _poly
        from .fc_fused import general_block
        pr = self.general_program
        xs, vx, ex = self.Xg[i0:i1], self.VX[:, i0:i1], self.EX[:, i0:i1]
        zs, vz, ez = self.Zg[j0:j1], self.VZ[:, j0:j1], self.EZ[:, j0:j1]
        out = np.zeros((xs.shape[0], zs.shape[0]))
        flag = np.zeros(out.shape, dtype=np.uint8)
        c = np.ascontiguousarray
        want = self.kind == "ntk"
        general_block(c(xs), c(zs), c(vx), c(vz), c(ex), c(ez), pr.ops, pr.params, pr.aparams, pr.coef,
                      want, upper, out, _poly(conv_fused.ACOS), c(self.RX[:, i0:i1]), c(self.RZ[:, j0:j1]),
                      *self.series_tables, flag, np.empty((pr.n_duals, 0)), -1)
        if flag.any():
            ii, jj = np.nonzero(flag)
            self.series_recomputed.append(ii.size)
            G = np.einsum("ij,ij->i", self.Xr[i0 + ii], self.Zr[j0 + jj])
            out[ii, jj] = fc_kernel(self.maps, G, self.gx[i0 + ii], self.gz[j0 + jj], want, self._context(want))
        return out

    def _compiled_diagonal(self, G, V):
        from . import conv_fused
        from .conv_fused_general import _poly
        from .fc_fused import general_diagonal
        E = self.EX if G is self.Xg else self.EZ
        pr = self.general_program
        out = np.empty(G.shape[0])
        general_diagonal(np.ascontiguousarray(G), V, E, pr.ops, pr.params, pr.aparams, pr.coef, self.kind == "ntk", out,
                         _poly(conv_fused.ACOS), self.RX if G is self.Xg else self.RZ, *self.series_tables,
                         np.empty((pr.n_duals, 0)), -1)
        return out

    def _context(self, want_ntk):
        """The number context of the variance-carrying program: closed-form duals compiled (numba)
        where ``compiled_duals``, else numpy throughout."""
        return (CompiledDualContext if self.compiled_duals else NumpyContext)(want_ntk)

    def _init_normalized(self, arch, X, Zm, symmetric, normalize, kind):
        self.Xu, self.nx = _unit_rows(X)
        self.Zu, self.nz = (self.Xu, self.nx) if symmetric else _unit_rows(Zm)
        if normalize and (np.any(self.nx == 0) or np.any(self.nz == 0)):
            raise ValueError("normalize=True is undefined for zero input vectors (K(x,x) = 0)")
        self.diag = normalized_diagonal(arch, kind)
        if normalize and self.diag == 0:
            raise ValueError(f"normalize=True is undefined: {arch} has K(x,x) = 0 for kind={kind!r}")
        self.scale, self.scale_exp = 1.0, 0
        if not normalize:
            logscale = arch.log_diag_scale()
            if logscale > 700:
                raise OverflowError(
                    f"the unnormalised kernel of {arch.slug} has diagonal scale exp({logscale:.1f}), "
                    "beyond float64; use gram(..., normalize=True) for the normalised kernel")
            # below ~1e-304 (e.g. MLP(1080, weight_var=1)) the scale is kept as m 2^e: times large
            # input norms the kernel is representable again (block() then applies the exponents apart)
            self.scale, self.scale_exp = split_scale(logscale)

    def _block_general(self, tile) -> np.ndarray:
        i0, i1, j0, j1 = tile
        if self.general_program is not None:
            val = self._compiled_general(i0, i1, j0, j1, int(self.symmetric and i0 == j0))
            if self.normalize:
                val = val / norm_scale(self.dx[i0:i1], self.dz[j0:j1])
            return val
        G = _dots(self.Xr[i0:i1], self.Zr[j0:j1])
        if self.symmetric and i0 == j0:
            # the pairs (x, x): their covariance is the variance, bit for bit (BLAS, above
            # _DETERMINISTIC_D features, rounds a tile's entry otherwise than the row's own dot product)
            np.fill_diagonal(G, self.gx[i0:i1])
        val = fc_kernel(self.maps, G, self.gx[i0:i1, None], self.gz[None, j0:j1], self.kind == "ntk",
                        self._context(self.kind == "ntk"))
        if self.normalize:
            val = val / norm_scale(self.dx[i0:i1], self.dz[j0:j1])
        return np.asarray(val, dtype=np.float64)

    def block(self, tile) -> np.ndarray:
        if self.general:
            return self._block_general(tile)
        from .backends import backend_for
        xp = self.xp
        i0, i1, j0, j1 = tile
        su, sv = half_angles(xp.asarray(self.Xu[i0:i1]), xp.asarray(self.Zu[j0:j1]), xp)
        if self.fc_program is not None:      # all maps in one compiled loop (numerics.fc_fused)
            from .fc_fused import fc_block
            val = np.empty(su.shape)
            fc_block(su, sv, *self.fc_program, self.kind == "ntk", val)
        else:
            rho, T = half_angle_recursion(self.arch, su, sv, backend_for(self.backend),
                                          want_ntk=self.kind == "ntk")
            val = T if self.kind == "ntk" else rho
        if self.normalize:
            val = val / self.diag
        elif self.scale_exp == 0:
            val = val * self.scale * xp.outer(xp.asarray(self.nx[i0:i1]), xp.asarray(self.nz[j0:j1]))
        else:       # a scale below the normal range: mantissas first, then all powers of two at once
            fx, ex = np.frexp(self.nx[i0:i1])
            fz, ez = np.frexp(self.nz[j0:j1])
            val = val * self.scale * xp.outer(xp.asarray(fx), xp.asarray(fz))
            val = xp.ldexp(val, xp.asarray(ex[:, None] + ez[None, :] + self.scale_exp))
        return to_host(val)

    def finish(self, out: np.ndarray) -> np.ndarray:
        if self.symmetric:   # mirror the upper triangle: exact symmetry
            mirror_upper(out, self.tiles)
        if not all_finite(out):
            if self.general:
                raise _not_finite_error(self.arch, self.X, self.Z, self.kind)
            raise InputRangeError(
                f"non-finite kernel values: the inputs' norms times the diagonal scale of {self.arch.slug} "
                "overflow float64; rescale X (and Z) or use normalize=True")
        return out


def _dots(A, B):
    """<a_i, b_j> for rows of A and B: numpy's einsum loop up to _DETERMINISTIC_D features (the
    rounding of an entry does not depend on the block it is computed in), BLAS above."""
    if A.shape[1] <= _DETERMINISTIC_D:
        return np.einsum("ik,jk->ij", A, B)
    return A @ B.T


def _row_dots(A):
    """|a_i|^2 by the same operation as :func:`_dots` on the pair (a_i, a_i), so that the variance
    of an input equals its covariance with itself bit for bit."""
    return np.array([_dots(A[i:i + 1], A[i:i + 1])[0, 0] for i in range(A.shape[0])], dtype=np.float64)


def _tiles(n, m, block, symmetric):
    for i0 in range(0, n, block):
        for j0 in range(i0 if symmetric else 0, m, block):
            yield i0, min(i0 + block, n), j0, min(j0 + block, m)


def gram(arch, X, Z=None, kind: str = "ntk", *, normalize: bool = False,
         memory_budget: int = 256 * 2**20, tile: int = 128, n_threads: int | None = None,
         progress: bool | None = None, backend: str = "auto", client=None, store=None) -> np.ndarray:
    """Exact float64 Gram matrix of an infinite-width kernel.

    Parameters
    ----------
    arch : MLP, ResNet, CNN or ResCNN (conv inputs: (n, P, C) or (n, H, W, C), see :mod:`numerics.conv`)
    X : array (n, d)
    Z : array (m, d) or None (then Z = X, exact symmetry)
    kind : "ntk" or "nngp"
    normalize : return K(x,z) / sqrt(K(x,x) K(z,z)) (finite at any depth)
    memory_budget : bytes of the tiles' temporaries summed over threads (bounds the tile size); not
        counted: the output itself (n m float64; with ``store=`` the memory-mapped ``gram.npy`` plus the
        returned in-memory copy), copies of the inputs (O(n d)) and per-input diagonals.  A finished
        block is released as soon as it is written, and the whole-matrix passes at the end run a block
        of rows at a time, so the peak beyond the output stays within the budget plus about 1 MiB
        (measured with tracemalloc: FC and conv, numpy and numba, tests/numerics/test_reliability.py)
    tile : largest tile edge; 128 keeps a tile's temporaries in cache
    n_threads : worker threads (default: the number of CPUs)
    progress : print a tile counter on stderr (default: on for >= 200 tiles on a terminal)
    backend : "auto" (default: "numba" for conv kernels when numba is installed, else "numpy"; FC
        programs then run compiled where numba is installed: the half-angle recursion of ReLU-family
        programs as one loop over SIMD lanes (numerics.fc_fused), and the closed-form duals of
        programs with biases or non-homogeneous activations per entry; within a few ulps of
        backend="numpy", exact diagonals),
        "numpy" (float64, vectorised, threads), "numba" (float64, conv recursion compiled into one
        loop per pair, threads; optional dependency), "cupy" (float64 on one CUDA GPU; optional) or
        "cuda" (conv ReLU-family programs as one fused CUDA kernel, numerics.conv_cuda; numba-cuda)
    client : a ``dask.distributed.Client``: run the tiles on its workers (optional dependency)
    store : a directory keeping finished tiles on disk; the same call resumes an interrupted job

    Notes
    -----
    All executors compute the same tiles with the same function (:mod:`numerics.tiles`), so the
    result does not depend on threads, workers or interruptions (bit for bit, per backend).

    Returns
    -------
    ndarray float64 of shape (n, m).

    Examples
    --------
    >>> import numpy as np
    >>> from reskernels import MLP
    >>> x = np.array([[0.6, 0.8]])
    >>> float(gram(MLP(depth=3), x)[0, 0])          # NTK(x,x) = L + 1 on the sphere
    4.0
    """
    check_kind(kind)
    check_gram_options(normalize, memory_budget, tile, n_threads)
    if not callable(getattr(arch, "kernel_maps", None)):
        raise TypeError(f"gram expects an architecture spec (MLP, ResNet, CNN, ResCNN), "
                        f"got {type(arch).__name__}")
    if arch.is_conv:
        return gram_conv(arch, X, Z, kind, normalize=normalize, memory_budget=memory_budget,
                         n_threads=n_threads, progress=progress, backend=backend, client=client,
                         store=store)
    asked = backend
    backend = resolve_backend(backend, conv=False)
    from .conv_fused import available
    plan = FCGramPlan(arch, X, Z, kind, normalize=normalize, memory_budget=memory_budget, tile=tile,
                      n_threads=n_threads, backend=backend,
                      compiled_duals=asked in ("auto", "numba") and available())
    if plan.n == 0 or plan.m == 0:
        return np.empty((plan.n, plan.m))
    out = execute(plan, client=client, store=store, progress=progress, label=f"gram {arch.slug}")
    return plan.finish(out)

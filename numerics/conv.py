"""Convolutional kernels (CNN, ResCNN) on circular 1-D signals and 2-D tori.

Per-position covariances M_ij(x, z) between pixel i of x and pixel j of z obey the
contract's recursions (docs/conventions.md "CNN and ResCNN").  Write them in the coordinates
(i, r) with r = j - i (mod the grid):

* the patch operator [P M]_ij = mean_taps M_{i+d, j+d} shifts i and j together, so it
  keeps r and is a circular convolution along i alone;
* Phi0, Phi1 act entrywise, with the pixel variances S_x(i) and S_z(i + r).

Hence **every offset r evolves independently**: the flatten and center readouts need
only r = 0 (cost O(n m P depth q^2)), and gap = mean over all r and i needs the P
offsets (cost O(n m P^2 depth q^2)), computed in independent chunks of offsets. The kernel
maps are interpreted by :mod:`numerics.pixel_maps` (one rule per map type); the pixel variances
come from the same interpreter run on the diagonal state, so a pair (same input, same pixel)
has rho = 1 *exactly* and the diagonal is exact.  Correlations of distinct pixels are formed as M / sqrt(S S'); where that
is within 1e-4 of +-1 at the first layer (parallel pixels of different inputs, one-channel
signals) theta comes from half angles of the input vectors instead of arccos, and deeper layers
take a rho within a few ulps of +-1 as +-1 (exactly parallel pairs such as x and 3x), see
:func:`numerics.pixel_maps.phi`.
What remains is the conditioning of arccos at deeper layers for pairs whose angle there is
small but not zero: an error ~ eps / theta.

Large depth: K and Theta are divided by the layer scale s_l ((c/2)^l for CNN,
prod (1 + alpha^2 c/2) for ResCNN) as they go and multiplied back at the end
(OverflowError when that overflows; ``normalize=True`` avoids it).

Backends: "numpy" runs each layer as vectorised passes over a tile's (pairs x offsets x positions)
tensor; "numba" (:mod:`numerics.conv_fused`, the default via "auto" when numba is installed) runs
the same operations as one compiled loop per pair and offset -- ReLU and leaky ReLU / abs without
biases on the normalised loop, every other closed-form activation and any bias on the
variance-carrying one (:mod:`numerics.conv_fused_general`), and, since 2026-12-02, the duals
without a closed form (tanh, GELU, user functions without kinks) by their Hermite series on the
variance-carrying loop's lanes (:mod:`numerics.series_lanes`; coefficient tables per Gram matrix for
every distinct pixel variance, pairs with an entry the series does not certify again by the
interpreter, the interpreter throughout where a sample of the inputs leaves more than 1% of its
pairs uncertified); kinked user functions stay on numpy; "cupy" fuses ReLU programs without biases into elementwise GPU kernels;
"cuda" (:mod:`numerics.conv_cuda`) runs ReLU-family programs without biases as one CUDA kernel.

Inputs are channels-last: (n, P, C) for 1-D signals, (n, H, W, C) for 2-D images.
``progress=True`` prints a tile counter on stderr (default: on for >= 200 tiles on a terminal).
"""
from __future__ import annotations

import math
import os

import numpy as np

from reskernels.theory import layers as _L
from reskernels.theory.arch import check_kind

from reskernels.theory import general as _G

from . import pixel_maps as _px
from .inputs import InputRangeError, as_float_array
from .variance import NumpyContext, stem_state
from .tiles import PlanBase, array_module, compile_notice, execute, mirror_upper, norm_scale, resolve_backend, to_host

_TEMPS = 20  # float64 temporaries per tensor entry inside one tile (upper bound)
_TILE_ENTRIES = 2 ** 17  # entries per tensor in one tile: keeps a tile's working set in cache
#: inputs of the sample a series program runs first (rows, and columns of a cross Gram matrix,
#: evenly spaced; above SERIES_SAMPLE^2 pairs): see ConvGramPlan._init_series
SERIES_SAMPLE = 16
#: entries (offsets x positions) per interpreter call when a flagged pair is computed again: fixed,
#: so that its value depends on the image size only, not on the plan's tiles or memory budget
_PAIR_ENTRIES = 2 ** 16
# re-exported: the near-parallel threshold and snap width (defined with the dual activations)
_NEAR_PARALLEL, _SNAP_ULPS = _px.NEAR_PARALLEL, _px.SNAP_ULPS


def _as_grid(A, name):
    """Validate and reshape to (n, H, W, C); a 1-D signal becomes H = 1."""
    A = as_float_array(A, name, (3, 4))
    if A.ndim == 3:
        return A[:, None, :, :], 1
    return A, 2


def pow2_exponents(A) -> np.ndarray:
    """Per input (first axis), the binary exponent e of its largest |entry| (max |A[i]| = f 2^e with
    f in [0.5, 1); 0 for an all-zero input), int64."""
    if A.shape[0] == 0:
        return np.zeros(0, dtype=np.int64)
    peak = np.max(np.abs(A.reshape(A.shape[0], -1)), axis=1)
    return np.frexp(peak)[1].astype(np.int64)


def split_scale(log_scale: float):
    """exp(log_scale) as (m, e) with m 2^e = exp(log_scale): m = exp(log_scale) itself (e = 0) while
    that is a normal float64, else m in [0.5, 1) and the power of two apart (a scale below 1e-308, e.g.
    MLP(1080, weight_var=1), which times large input norms is still representable)."""
    if -700.0 < log_scale < 700.0:
        return math.exp(log_scale), 0
    e = math.floor(log_scale / math.log(2.0))
    return math.exp(log_scale - e * math.log(2.0)), int(e)


#: entries per row block of the whole-matrix passes in finish() (their temporaries: <= 2 MiB)
_PASS_ENTRIES = 2 ** 18


def _rows(out) -> int:
    return max(1, _PASS_ENTRIES // max(1, out.shape[1]))


def scale_rows_pow2(out, ex, ez, extra: int = 0):
    """``out[i, j] *= 2^(ex[i] + ez[j] + extra)`` in place, a block of rows at a time (no n x m
    temporaries); exact wherever the result is a normal float64."""
    rows = _rows(out)
    for i0 in range(0, out.shape[0], rows):
        blk = out[i0:i0 + rows]
        np.ldexp(blk, ex[i0:i0 + rows, None] + ez[None, :] + extra, out=blk)
    return out


def all_finite(out) -> bool:
    """np.isfinite(out).all(), a block of rows at a time (no n x m boolean temporary)."""
    rows = _rows(out)
    return all(bool(np.isfinite(out[i0:i0 + rows]).all()) for i0 in range(0, out.shape[0], rows))


def _not_finite_error(arch, X, Z, kind):
    """ValueError naming the inputs whose kernel values are not finite in float64 (programs that
    are not positively homogeneous, or carry biases, cannot be rescaled)."""
    def peak(A):
        A = np.asarray(A, dtype=np.float64)
        return float(np.max(np.abs(A))) if A.size else 0.0
    names = "X" if Z is None else "X or Z"
    big = peak(X) if Z is None else max(peak(X), peak(Z))
    return InputRangeError(
        f"the {kind} kernel of {arch.slug} is not finite in float64 for these inputs: {names} too large "
        f"(max |entry| {big:.3g}); this spec is not positively homogeneous (its activation or bias_var > 0), "
        "so gram cannot rescale the inputs: rescale X (and Z) yourself or use the mpmath routes")


def _zero_diagonal_error(arch, X, Z, dx, dz):
    """ValueError for normalize=True with K(x, x) = 0: a zero input, or (programs that cannot be
    rescaled) an input so small that K(x, x) underflows float64 -- the message names which."""
    for name, A, d in (("X", X, dx), ("Z", Z, dz)):
        if A is None:
            continue
        A = np.asarray(A, dtype=np.float64)
        for i in np.flatnonzero(d <= 0):
            if np.any(A[i] != 0):
                return InputRangeError(
                    f"normalize=True: K(x, x) of {name}[{i}] underflows float64 (max |entry| "
                    f"{float(np.max(np.abs(A[i]))):.3g}) for {arch.slug}, which is not positively "
                    f"homogeneous and so cannot be rescaled; rescale {name} yourself")
    return ValueError("normalize=True is undefined for inputs with K(x,x) = 0 (a zero input)")


def _offset_index(offs, H, W, xp):
    """Index arrays (R, H, W) with A[:, ih, iw][:, r, i] = A[:, i + offset_r] (circular): all the
    rolled copies of a chunk of offsets in one gather (equal to stacking np.roll(A, -offset))."""
    rh = np.array([o[0] for o in offs])[:, None, None]
    rw = np.array([o[1] for o in offs])[:, None, None]
    ih = (np.arange(H)[None, :, None] + rh) % H
    iw = (np.arange(W)[None, None, :] + rw) % W
    ih, iw = np.broadcast_arrays(ih, iw)
    return xp.asarray(ih), xp.asarray(iw)


def _half_angle_theta(xs, zs, offs, taps, H, W, xp):
    """exact_theta for :func:`_phi` on a tile: for the masked entries (ia, jb, r, h, w) of the
    (a, b, R, H, W) tensor, the angle between the stacked, tap-weighted vectors u = (sqrt(w_t)
    x_{p+t})_t and v = (sqrt(w_t) z_{p+o_r+t})_t, theta = 2 atan2(|u^ - v^|, |u^ + v^|) (unit
    vectors u^, v^): accurate to a few ulps at theta = 0 and pi, where arccos is not."""
    dh, dw, wt = (xp.asarray(a) for a in taps)
    oh = xp.asarray(np.array([o[0] for o in offs]))
    ow = xp.asarray(np.array([o[1] for o in offs]))
    sw = xp.sqrt(wt)[None, :, None]

    def exact_theta(mask):
        ia, jb, r, h, w = xp.nonzero(mask)
        hx, wx = (h[:, None] + dh) % H, (w[:, None] + dw) % W
        hz, wz = (h[:, None] + oh[r][:, None] + dh) % H, (w[:, None] + ow[r][:, None] + dw) % W
        U = xs[ia[:, None], hx, wx] * sw            # (N, T, C)
        V = zs[jb[:, None], hz, wz] * sw
        U = U / xp.sqrt((U * U).sum(axis=(1, 2)))[:, None, None]
        V = V / xp.sqrt((V * V).sum(axis=(1, 2)))[:, None, None]
        d = xp.sqrt(((U - V) ** 2).sum(axis=(1, 2)))
        s = xp.sqrt(((U + V) ** 2).sum(axis=(1, 2)))
        return 2.0 * xp.arctan2(d, s)
    return exact_theta


def _channel_dot(A, B, xp):
    """sum_c A[..., c] B[..., c] (broadcasting), one product per channel accumulated in channel
    order: the same operations for pair covariances and pixel variances on every backend."""
    out = A[..., 0] * B[..., 0]
    for ch in range(1, A.shape[-1]):
        out += A[..., ch] * B[..., ch]
    return out


def _readout(M, readout):
    """M: (a, b, R, H, W) -> (a, b) for the readout (R = offsets in this chunk)."""
    if readout == "center":
        return M[:, :, 0, 0, 0]
    return M.mean(axis=(2, 3, 4)) if readout == "flatten" else M.sum(axis=(2, 3, 4))


class ConvGramPlan(PlanBase):
    """A conv Gram matrix as a grid of independent tiles (the one code path of every executor).

    ``plan.tiles`` lists (i0, i1, j0, j1); ``plan.block(tile)`` returns that tile's values
    (before the layer scale, as a host float64 array) and depends on nothing but the plan and the
    tile, so it may run in this process, in a thread, on a Dask worker or on a GPU (``backend``)
    with identical results for the same backend; ``plan.finish(out)`` mirrors the upper triangle
    and applies the normalisation or the layer scale.  See :mod:`numerics.tiles` for executors.
    """

    def __init__(self, arch, X, Z=None, kind: str = "ntk", *, normalize: bool = False,
                 memory_budget: int = 256 * 2**20, n_threads: int | None = None, backend: str = "auto",
                 _unscaled: bool = False):
        check_kind(kind)
        requested = backend
        backend = resolve_backend(backend, conv=True)
        Xg, dims = _as_grid(X, "X")
        symmetric = Z is None
        if symmetric:
            Zg = Xg
        else:
            Zg, dz = _as_grid(Z, "Z")
            if dz != dims:
                raise ValueError(f"X and Z must both be 1-D signals or both 2-D images, got ranks "
                                 f"{np.ndim(X)} and {np.ndim(Z)}")
            if Zg.shape[1:] != Xg.shape[1:]:
                raise ValueError(f"X and Z must have the same spatial shape and channels, got "
                                 f"{Xg.shape[1:]} and {Zg.shape[1:]}")
        n, H, W, C = Xg.shape
        maps = arch.kernel_maps()
        self.general = not _L.is_normalizable(maps)
        from .conv_fused import NORMALISED_IDS
        from .conv_fused_general import GENERAL_IDS
        ids = {m.activation.engine_id for m in maps if getattr(m, "activation", None) is not None}
        # duals without a closed form that the variance-carrying loop takes by their Hermite series
        # (tanh, GELU, user functions without kinks: numerics.series_lanes); None where it cannot
        self.series_calls = None
        if self.general and backend == "numba" and not ids <= GENERAL_IDS:
            from .fc_series import calls_of
            calls = calls_of(maps, kind == "ntk")
            duals = [m.activation for m in maps if getattr(m, "activation", None) is not None]
            if all(c is not None or a.engine_id in GENERAL_IDS for c, a in zip(calls, duals)):
                self.series_calls = calls
        # the compiled loops: the normalised one (conv_fused) for ReLU and leaky ReLU without biases,
        # the variance-carrying one (conv_fused_general) for every closed-form dual and biases, and
        # for the series duals; CuPy has ReLU's dual only
        compiled = ((ids <= (NORMALISED_IDS if not self.general else GENERAL_IDS) or self.series_calls is not None)
                    and (backend != "cupy" or (not self.general and ids <= {0}))
                    and (backend != "cuda" or not self.general))
        if backend in ("numba", "cupy", "cuda") and not compiled:
            if requested == "auto":
                backend = "numpy"
            else:
                raise NotImplementedError(
                    f"backend={backend!r} has no compiled dual for the activation of {arch.slug} "
                    "(numba: closed-form duals and Hermite series of activations without kinks; cupy: ReLU without biases; cuda: ReLU, leaky ReLU and abs "
                    "without biases); use backend='numpy'")
        if any(isinstance(m, _L.Concat) for m in maps):
            raise NotImplementedError("concatenations (DenseNet) are fully connected only")
        sizes = [("stem_size", maps[0].stem_size)] + [
            ("filter_size", m.filter_size) for m in maps if getattr(m, "filter_size", 1) > 1]
        for name, size in sizes:
            if size > W or (dims == 2 and size > H):
                raise ValueError(f"{name}={size} is larger than the signal ({H}x{W} positions)"
                                 if dims == 2 else f"{name}={size} is larger than the signal ({W} positions)")
        self.arch, self.kind, self.backend, self.maps = arch, kind, backend, maps
        self.pooling = maps[-1].pooling
        self.input_var = maps[0].input_var
        self.xp = array_module(backend)
        self.X, self.Z = X, Z
        self.Xg, self.Zg, self.symmetric = Xg, Zg, symmetric
        self.n, self.m = n, Zg.shape[0]
        self.H, self.W, self.dims = H, W, dims
        self.tsh, self.tsw = self.taps_of(maps[0].stem_size)
        self.first_taps = _px.first_dual_taps(maps, self.tsh, self.tsw, self.taps_of)
        # input_var is already in the stem; variance-carrying programs are not rescaled
        scale_log = 0.0 if self.general else _L.log_diag_scale(maps) - math.log(self.input_var)
        self.unscaled = _unscaled
        if _unscaled:
            normalize, scale_log = False, 0.0
        if not normalize and scale_log > 700:
            raise OverflowError(f"the unnormalised kernel of {arch.slug} has scale exp({scale_log:.0f}); "
                                "use normalize=True")
        self.normalize = normalize
        # exp(scale_log) = scale 2^scale_exp (scale_exp != 0 only below the normal range)
        self.scale, self.scale_exp = (1.0, 0) if normalize else split_scale(scale_log)
        # positively homogeneous programs without biases: K(a x, b z) = a b K(x, z) for a, b > 0, so
        # every input is scaled by a power of two to max |entry| in [0.5, 1) (exact; bit for bit the
        # same kernel wherever nothing under- or overflows) and the factor goes back in finish():
        # inputs of any magnitude (1e-300 .. 1e300) keep full accuracy
        self.ex = self.ez = None
        self.block_format = None if self.general else "blocks of inputs scaled by powers of two"
        if not self.general:
            self.ex = pow2_exponents(Xg)
            self.ez = self.ex if symmetric else pow2_exponents(Zg)
            Xg = np.ldexp(Xg, -self.ex[:, None, None, None])
            Zg = Xg if symmetric else np.ldexp(Zg, -self.ez[:, None, None, None])
            self.Xg, self.Zg = Xg, Zg
        xp = self.xp
        # pixel variances of every dual activation's argument, by the same interpreter on the
        # diagonal state with the tiles' own operations (same array module, channel products and
        # patch kernels): the same pixel of the same input has rho = 1 exactly
        Gx = _channel_dot(xp.asarray(Xg), xp.asarray(Xg), xp)
        Gz = Gx if symmetric else _channel_dot(xp.asarray(Zg), xp.asarray(Zg), xp)
        if self.general:      # the stem's per-pixel inner products; the variances travel in the state
            self.GX = _px.patch(Gx, self.tsh, self.tsw)
            self.GZ = self.GX if symmetric else _px.patch(Gz, self.tsh, self.tsw)
            self.VX_all = self.VZ_all = []
        else:
            self.VX_all = self._dual_variances(Gx)
            self.VZ_all = self.VX_all if symmetric else self._dual_variances(Gz)
        self.offsets = ([(0, 0)] if self.pooling in ("flatten", "center")
                        else [(rh, rw) for rh in range(H) for rw in range(W)])
        # the offsets' two axes as the compiled loops take them
        self.OH = np.array([o[0] for o in self.offsets], dtype=np.int64)
        self.OW = np.array([o[1] for o in self.offsets], dtype=np.int64)
        self.series = None                  # the series arguments of conv_fused_general.block
        self.series_recomputed = []         # per tile: pairs whose Hermite series was not certified
        if backend == "numba" and self.general and self.series_calls is not None:
            self._init_series(maps, Xg, Zg, symmetric, requested)
            if self.series is not None and np.any(self.series[8] >= 0):
                # blocks that read the tables in rho round differently from the per-entry series'
                from .rho_tables import table_format
                self.block_format = "Hermite duals tabulated in rho" + table_format()
            backend = self.backend
        threads = 1 if backend in ("cupy", "cuda") else (n_threads or os.cpu_count() or 1)
        P = H * W
        # tile = (pairs) x (offsets) x (positions): at most _TILE_ENTRIES entries per tensor (on the
        # CPU; a GPU takes what the budget allows) and within the memory budget (_TEMPS tensors per thread)
        # (numba holds no tile-sized temporaries: larger tiles, fewer tasks for an executor to schedule)
        cap = (memory_budget // (_TEMPS * 8) if backend == "cupy" else
               _TILE_ENTRIES * (4 if backend == "numba" else 1))
        temps = 1 if backend == "numba" else _TEMPS     # numba: less than one float64 per entry
        entries = max(P, min(cap, memory_budget // (threads * temps * 8)))
        self.r_chunk = max(1, min(len(self.offsets), entries // (16 * P)))
        side = max(1, int(math.isqrt(max(1, entries // (self.r_chunk * P)))))
        # at least 4 row blocks (10 tiles for a symmetric grid, 16 across: a symmetric grid's diagonal
        # tiles carry half the work, and with 6 tiles on 2 threads one waited; ResCNN(3) flatten n = 256,
        # 2 threads: 0.068 -> 0.047 s), never below 16 rows; not tied to the thread count, so that a
        # stored job resumes with any n_threads (the tiles are part of its identity); the values do not
        # depend on the tiles (each pair's lane computes alone)
        side = min(side, max(16, -(-max(n, self.m) // 4)))
        if backend == "cuda":        # one kernel launch a tile: few, large tiles (8 B a problem on the GPU)
            from .conv_cuda import LAUNCH_PROBLEMS, MAX_POSITIONS
            if P > MAX_POSITIONS:
                raise NotImplementedError(f"backend='cuda' takes at most {MAX_POSITIONS} positions per image "
                                          f"(one thread each), got {H}x{W}; use backend='cupy' or 'numba'")
            side = max(1, math.isqrt(4 * LAUNCH_PROBLEMS // len(self.offsets)))
        self.tiles = [(i0, min(i0 + side, n), j0, min(j0 + side, self.m))
                      for i0 in range(0, n, side) for j0 in range(i0 if symmetric else 0, self.m, side)]
        self.threads = threads
        if backend == "numba" and self.general and self.series_calls is not None:
            pass                            # _init_series: the program, variances and tables
        elif backend == "numba" and self.general:
            # the variance-carrying loop: its own variances by its own compiled maps (exact diagonals)
            from . import conv_fused_general as _fg
            self.program = _fg.lower(maps, self.taps_of)
            self.VX = _fg.diagonal_variances(self.program, Xg)
            self.VZ = self.VX if symmetric else _fg.diagonal_variances(self.program, Zg)
        elif backend in ("numba", "cuda"):
            from .conv_fused import lower
            self.program = lower(maps, self.taps_of)
            self.VX = np.stack(self.VX_all)
            self.VZ = self.VX if symmetric else np.stack(self.VZ_all)

    def _init_series(self, maps, Xg, Zg, symmetric, requested):
        """A program with duals without a closed form in the variance-carrying compiled loop: their
        Hermite series per entry (:mod:`numerics.series_lanes`; variances recorded by the loop's own
        diagonal maps one dual at a time and coefficient tables per Gram matrix,
        :func:`numerics.conv_series.record_series_variances`); the pairs with an entry the
        series does not certify again by the interpreter.  Above SAMPLE^2 pairs a sample of the
        inputs first: where more than FLAGGED_MAX of its pairs are flagged (GELU at large variances),
        or where the tables would exceed TABLE_FLOATS, the interpreter takes the whole matrix
        (``backend="auto"``; an explicit ``backend="numba"`` then raises NotImplementedError)."""
        from . import conv_fused_general as _fg
        from .conv_series import flagged_fraction, record_series_variances
        from .fc_series import FLAGGED_MAX, sample_indices
        want = self.kind == "ntk"
        self.program = _fg.lower(maps, self.taps_of, series=lambda act: True)
        try:
            n, m = Xg.shape[0], Zg.shape[0]
            if n * m > SERIES_SAMPLE ** 2:
                ix, iz = sample_indices(n, m, symmetric, SERIES_SAMPLE)
                xs = np.ascontiguousarray(Xg[ix])
                zs = xs if symmetric else np.ascontiguousarray(Zg[iz])
                if flagged_fraction(self.program, self.series_calls, xs, zs, want, self.OH, self.OW,
                                        self.pooling) > FLAGGED_MAX:
                    raise NotImplementedError("the Hermite series leaves too many pairs of a sample of the inputs "
                                              "uncertified (near-parallel pixel pairs); use backend='numpy'")
            self.VX, self.VZ, tables = record_series_variances(
                self.program, self.series_calls, np.ascontiguousarray(Xg),
                None if symmetric else np.ascontiguousarray(Zg), want)
        except NotImplementedError:
            if requested != "auto":
                raise
            self.backend, self.xp, self.series_calls, self.program = "numpy", array_module("numpy"), None, None
            return
        self.series = tables

    def taps_of(self, q):
        """(taps along h, taps along w) of a q-tap filter on this plan's grid."""
        return _px.taps(q, self.dims, self.H), _px.taps(q, self.dims, self.W)

    def _dual_variances(self, G0):
        """Per-input variances of each dual activation's argument (list, program order)."""
        S0 = self.input_var * _px.patch(G0, self.tsh, self.tsw)
        return _px.diagonal_variances(self.maps, S0, self.taps_of, self.xp)

    def _block_fused(self, tile) -> np.ndarray:
        """:meth:`block` by the compiled loop of :mod:`numerics.conv_fused` (all offsets at once)."""
        from .conv_fused import READOUT_CODES, fused_block
        i0, i1, j0, j1 = tile
        out = np.zeros((i1 - i0, j1 - j0))
        fdh, fdw, wt = self.first_taps
        fused_block()(
            np.ascontiguousarray(self.Xg[i0:i1]), np.ascontiguousarray(self.Zg[j0:j1]),
            self.OH, self.OW,
            np.ascontiguousarray(self.VX[:, i0:i1]), np.ascontiguousarray(self.VZ[:, j0:j1]),
            self.program.ops, self.program.params, self.program.taps_h, self.program.taps_w,
            fdh.astype(np.int64), fdw.astype(np.int64), np.sqrt(wt), self.kind == "ntk",
            READOUT_CODES[self.pooling], _SNAP_ULPS * np.finfo(float).eps, _NEAR_PARALLEL,
            self.symmetric and i0 == j0, out, self.program.aparams)
        if self.pooling == "gap":
            out /= (self.H * self.W) ** 2
        return out

    def _block_cuda(self, tile) -> np.ndarray:
        """:meth:`block` by the fused CUDA kernel of :mod:`numerics.conv_cuda` (the numba loop's program)."""
        from .conv_cuda import block
        from .conv_fused import READOUT_CODES
        i0, i1, j0, j1 = tile
        fdh, fdw, wt = self.first_taps
        out = block(self.Xg[i0:i1], self.Zg[j0:j1], self.OH, self.OW, self.VX[:, i0:i1], self.VZ[:, j0:j1],
                    self.program, fdh.astype(np.int64), fdw.astype(np.int64), np.sqrt(wt), self.kind == "ntk",
                    READOUT_CODES[self.pooling], _SNAP_ULPS * np.finfo(float).eps, _NEAR_PARALLEL,
                    self.symmetric and i0 == j0)
        if self.pooling == "gap":
            out /= (self.H * self.W) ** 2
        return out

    def _block_fused_general(self, tile) -> np.ndarray:
        """:meth:`block` of a variance-carrying program by :mod:`numerics.conv_fused_general`."""
        from .conv_fused import READOUT_CODES
        from .conv_fused_general import fused_block
        i0, i1, j0, j1 = tile
        out = np.zeros((i1 - i0, j1 - j0))
        pr = self.program
        series = flag = None
        if self.series is not None:
            c = np.ascontiguousarray
            RX, RZ = self.series[:2]
            flag = np.zeros(out.shape, dtype=np.uint8)
            series = (c(RX[:, i0:i1]), c(RZ[:, j0:j1])) + tuple(self.series[2:]) + (flag,)
        fused_block()(
            np.ascontiguousarray(self.Xg[i0:i1]), np.ascontiguousarray(self.Zg[j0:j1]),
            self.OH, self.OW,
            np.ascontiguousarray(self.VX[:, i0:i1]), np.ascontiguousarray(self.VZ[:, j0:j1]),
            pr.ops, pr.params, pr.aparams, pr.coef, pr.taps_h, pr.taps_w, self.kind == "ntk",
            READOUT_CODES[self.pooling], self.symmetric and i0 == j0, out, series=series)
        if self.pooling == "gap":
            out /= (self.H * self.W) ** 2
        if flag is not None and flag.any():
            # pairs with an entry the series does not certify: the interpreter's rules (numerics.variance)
            ii, jj = np.nonzero(flag)
            self.series_recomputed.append(ii.size)
            for i, j in zip(ii, jj):
                out[i, j] = self._pair_general(i0 + i, j0 + j)
        return out

    def _pair_general(self, i, j) -> float:
        """K(X[i], Z[j]) by the numpy interpreter in chunks of offsets fixed by the image size (its
        Hermite ladder climbs per call to the call's largest |rho|, so the value does not depend on
        the plan's tiles or memory budget; a chunk's tensors hold _PAIR_ENTRIES entries)."""
        r_chunk = max(1, min(len(self.offsets), _PAIR_ENTRIES // (self.H * self.W)))
        return float(self._block_general((i, i + 1, j, j + 1), r_chunk=r_chunk)[0, 0])

    def block(self, tile) -> np.ndarray:
        """The tile's kernel values before the layer scale (host float64 array)."""
        if self.backend == "numba" and self.general:
            return self._block_fused_general(tile)
        if self.backend == "numba":
            return self._block_fused(tile)
        if self.backend == "cuda":
            return self._block_cuda(tile)
        if self.general:
            return self._block_general(tile)
        xp = self.xp
        i0, i1, j0, j1 = tile
        xs, zs = xp.asarray(self.Xg[i0:i1]), xp.asarray(self.Zg[j0:j1])
        Vx = [V[i0:i1, None, None] for V in self.VX_all]
        Vz_host = [V[j0:j1] for V in self.VZ_all]
        acc = xp.zeros((i1 - i0, j1 - j0))
        want_ntk = self.kind == "ntk"
        for k0 in range(0, len(self.offsets), self.r_chunk):
            offs = self.offsets[k0:k0 + self.r_chunk]
            # z rolled so that position i holds pixel i + r: (b, R, H, W, C)
            ih, iw = _offset_index(offs, self.H, self.W, xp)
            zr = zs[:, ih, iw]
            G = self.input_var * _px.patch(_channel_dot(xs[:, None, None], zr[None], xp), self.tsh, self.tsw)
            Vz = [V[:, ih, iw][None] for V in Vz_host]
            exact = _half_angle_theta(xs, zs, offs, self.first_taps, self.H, self.W, xp)
            ctx = _px.Context(self.taps_of, xp, list(zip(Vx, Vz)), exact, want_ntk)
            K, T = _px.run(self.maps, G, ctx)
            acc += _readout(T if want_ntk else K, self.pooling)
        if self.pooling == "gap":
            acc /= (self.H * self.W) ** 2
        return to_host(acc)

    def _block_general(self, tile, r_chunk=None) -> np.ndarray:
        """A tile of a variance-carrying program (any activation, biases) on numpy: the state
        (qx, qz, S, T) per pixel pair through :mod:`theory.general` (numerics.variance)."""
        i0, i1, j0, j1 = tile
        xs, zs = self.Xg[i0:i1], self.Zg[j0:j1]
        Gx = self.GX[i0:i1, None, None]
        GZ = self.GZ[j0:j1]
        acc = np.zeros((i1 - i0, j1 - j0))
        want_ntk = self.kind == "ntk"
        ctx = NumpyContext(want_ntk, patch=lambda M, q: _px.patch(M, *self.taps_of(q)))
        r_chunk = r_chunk or self.r_chunk
        for k0 in range(0, len(self.offsets), r_chunk):
            offs = self.offsets[k0:k0 + r_chunk]
            ih, iw = _offset_index(offs, self.H, self.W, np)
            G = _px.patch(_channel_dot(xs[:, None, None], zs[:, ih, iw][None], np), self.tsh, self.tsw)
            st = stem_state(self.maps[0], G, Gx, GZ[:, ih, iw][None], lambda S: S * 0)
            st = _G.run(self.maps, st, ctx)
            acc += _readout(st.T if want_ntk else st.S, self.pooling)
        if self.pooling == "gap":
            acc /= (self.H * self.W) ** 2
        return acc

    def finish(self, out: np.ndarray) -> np.ndarray:
        """Mirror (symmetric case), then normalise or scale; ``out`` holds every tile's block."""
        if self.symmetric:   # mirror the upper triangle: exact symmetry
            mirror_upper(out, self.tiles)
        if self.normalize:
            if self.symmetric:
                dx = dz = np.diag(out).copy()
            else:
                one = lambda A: gram_conv(self.arch, A, None, self.kind, n_threads=1, progress=False,
                                          backend=self.backend, _unscaled=True)[0, 0]
                dx = np.array([one(self.X[i:i + 1]) for i in range(self.n)])
                dz = np.array([one(self.Z[i:i + 1]) for i in range(self.m)])
            if not (np.all(np.isfinite(dx)) and np.all(np.isfinite(dz)) and all_finite(out)):
                raise _not_finite_error(self.arch, self.X, self.Z, self.kind)
            if np.any(dx <= 0) or np.any(dz <= 0):
                raise _zero_diagonal_error(self.arch, self.X, self.Z, dx, dz)
            # row by row: sqrt(d * d) == d, an exact unit diagonal; no n x m temporaries (norm_scale: the
            # same bits wherever d d is a normal float64, sqrt(dx) sqrt(dz) where it is not)
            for i in range(out.shape[0]):
                out[i] /= norm_scale(dx[i:i + 1], dz)[0]
            return out
        if self.general:
            if not all_finite(out):
                raise _not_finite_error(self.arch, self.X, self.Z, self.kind)
            out *= self.scale
            return out
        out *= self.scale
        if not self.unscaled:
            scale_rows_pow2(out, self.ex, self.ez, self.scale_exp)
        if not all_finite(out):
            raise FloatingPointError(
                f"non-finite kernel values: the {self.kind} kernel of {self.arch.slug} at these inputs "
                "exceeds float64 (|x| |z| times the layer scale); rescale X (and Z) or use normalize=True")
        return out


def numba_will_compile(general: bool = False) -> bool:
    """Whether the next call of the fused numba loop (``general``: the variance-carrying one) compiles
    it: nothing compiled in this process yet and numba's on-disk cache holds no entry for this CPU (or
    cannot be read)."""
    from . import conv_fused, conv_fused_general
    fn = getattr(conv_fused_general if general else conv_fused, "block", None)   # the numba dispatcher
    if not conv_fused.available() or not hasattr(fn, "signatures"):
        return False
    if fn.signatures:
        return False
    try:        # numba internals: the cache index, keyed by (signature, (target triple, cpu, features))
        magic = fn.targetctx.codegen().magic_tuple()
        return not any(key[1] == magic for key in fn._cache._cache_file._load_index())
    except Exception:       # another numba version: assume a compile
        return True


def _compile_notice_numba(general: bool = False):
    """One :class:`numerics.tiles.CompileNotice` before numba compiles the conv loop (the first conv
    gram otherwise sits silent for ~30 s)."""
    if numba_will_compile(True) if general else numba_will_compile():
        compile_notice("numba-conv-general" if general else "numba-conv",
                       "reskernels: compiling the numba conv kernel (first use on this machine: "
                       "about 30 s, cached on disk afterwards; backend='numpy' needs no compile)", stacklevel=5)


def gram_conv(arch, X, Z=None, kind: str = "ntk", *, normalize: bool = False,
              memory_budget: int = 256 * 2**20, n_threads: int | None = None,
              progress: bool | None = None, backend: str = "auto", client=None, store=None,
              _unscaled: bool = False) -> np.ndarray:
    """Gram matrix of a CNN / ResCNN kernel (see the module docstring and :func:`numerics.gram`).

    ``backend``: "numpy" (threads) or "cupy" (one GPU, float64); ``client``: a dask.distributed
    Client to run the tiles on; ``store``: a directory where finished tiles are kept, so that an
    interrupted job resumes (:func:`numerics.tiles.execute`).
    ``_unscaled`` (internal) returns the kernel divided by its layer scale, finite at any depth, of the
    inputs scaled to max |entry| in [0.5, 1) (homogeneous programs; see ``ConvGramPlan``)."""
    plan = ConvGramPlan(arch, X, Z, kind, normalize=normalize, memory_budget=memory_budget,
                        n_threads=n_threads, backend=backend, _unscaled=_unscaled)
    if plan.backend == "numba" and client is None and plan.tiles:
        _compile_notice_numba(plan.general)
    out = execute(plan, client=client, store=store, progress=progress, label=f"gram {arch.slug}")
    return plan.finish(out)

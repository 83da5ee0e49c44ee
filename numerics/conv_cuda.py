"""The conv recursion of ReLU-family programs as one fused CUDA kernel (``backend="cuda"``).

The CuPy backend runs a conv program as a sequence of whole-tensor kernels (one per patch pass,
dual and update), each reading and writing every (pair, offset, position) entry in GPU memory.
This module runs the program of :func:`numerics.conv_fused.lower` -- the same opcodes and
parameters as the compiled CPU loop -- as **one kernel**: one thread block per (pair, offset)
problem and one thread per position (P = H W <= 1024), each thread holding its position's state
(K, T and the dual's p1, p0) in registers through all layers.  The patch operator, the only step
that reads other positions, goes through two shared-memory grids (the h pass into one, the w pass
out of it, as :func:`numerics.conv_fused.patch`: the centre first, then the taps in order, times
1/q).  The readout sums the positions by a fixed binary tree in shared memory (deterministic:
the same bits on every run), and the host sums each pair's offsets in offset order.

Per entry the operations are those of :func:`numerics.conv_fused.block` in the same order, with
the device's ``acos``, ``sqrt``, ``atan2`` (CUDA's libdevice: acos, atan2 within 2 ulps, sqrt
correctly rounded).  What differs from the CPU loop: the transcendental functions' last bits,
multiply-adds that the device compiler contracts into fused multiply-adds (rounded once instead
of twice), and the order of the position sum; so a Gram matrix agrees with the CPU loop to a few
ulps per layer of the Cauchy-Schwarz scale (tests: under numba's CUDA simulator, 32 eps per layer
as for the CPU loop against numpy).  What does not differ: rho = 1 gives theta = 0 and kappa = 1
exactly (acos(1) = 0 and sqrt(0) = 0 in every libm), so no diagonal problem (x, x) loses digits
to arccos at rho = 1; on the multi-sphere (unit pixels, every position alike) flatten and centre
diagonals are the closed forms bit for bit where P is a power of two (a binary tree of equal values
doubles exactly) when multiply-adds are rounded twice (the simulator; the CPU loop); a GPU that
contracts p1 + p0 T into one fused multiply-add may move them by an ulp.  The first dual layer's
near-parallel entries (|rho| > 1 - 1e-4) take theta from the half angle of the tap-weighted input
vectors, and deeper layers snap |rho| within a few ulps of 1, as on the CPU.  The half-angle path
lives in a second kernel (:func:`_make_kernel`): the fast one flags the problems that meet such an
entry and :func:`block` recomputes just those, which keeps the kernel that runs nearly every
problem at 76 registers a thread instead of 138.

The kernel is written with numba-cuda (``numba.cuda.jit``), so CPU-only machines test it under
numba's CUDA simulator (``NUMBA_ENABLE_CUDASIM=1`` in the environment before numba is imported;
tests/numerics/test_conv_cuda.py runs it in a subprocess).  Its speed is measured by
``benchmarks/bench_gpu.py --backends cuda`` on a GPU machine.
"""
from __future__ import annotations

import math
import types

import numpy as np

from .conv_fused import OP_BLOCK, OP_LINEAR, OP_NONLINEAR, OP_STEM

#: the most positions a problem may have (threads of one block)
MAX_POSITIONS = 1024
#: registers a thread may use: a multiprocessor's 64K registers shared by MAX_POSITIONS threads
MAX_REGISTERS = 65536 // MAX_POSITIONS
#: problems (pair, offset) per kernel launch (bounds the per-problem output buffer: 8 B each)
LAUNCH_PROBLEMS = 1 << 22


try:  # optional dependency (numba's CUDA target; or its simulator under NUMBA_ENABLE_CUDASIM=1)
    from numba import config as numba_config
    from numba import cuda, float64
except ImportError:  # pragma: no cover - exercised where numba is absent
    cuda = None


def available() -> bool:
    """True when numba's CUDA target (or its simulator) has a usable device."""
    if cuda is None:
        return False
    try:
        return bool(cuda.is_available())
    except Exception:  # pragma: no cover - driver errors
        return False


def kernels():
    """(fast, exact): the fused kernel without and with the first layer's half-angle path
    (:func:`_make_kernel`; numba.cuda compiles each for the device on its first launch)."""
    if cuda is None:
        raise ImportError("backend='cuda' needs numba with its CUDA target (pip install \"reskernels[cuda]\", "
                          "i.e. numba-cuda)")
    return _fused, _fused_exact


def _device(fn, **names):
    """The Python source of the CPU loop's scalar function ``fn`` (a numba dispatcher) compiled as a
    CUDA device function, its global names ``names`` bound to device functions: one definition of
    the arithmetic for both targets."""
    f = fn.py_func
    g = dict(f.__globals__)
    g.update(names)
    return cuda.jit(device=True)(types.FunctionType(f.__code__, g, f.__name__, f.__defaults__, f.__closure__))


if cuda is not None:
    from . import conv_fused as _cf

    wrap = cuda.jit(device=True)(_cf.wrap.py_func)
    #: numerics.conv_fused.half_angle_theta: 2 atan2(|u^ - v^|, |u^ + v^|) of the tap-weighted vectors
    half_angle_theta = _device(_cf.half_angle_theta, wrap=wrap)
    #: numerics.conv_fused.relu_family: (p1, p0) from sin theta, cos theta and pi - theta
    relu_family = _device(_cf.relu_family)
    #: numerics.conv_fused.snap_width: how close to +-1 a layer's rho snaps
    snap_width = _device(_cf.snap_width)

    @cuda.jit(device=True)
    def mean_axis(src, h, w, H, W, taps, along_h):
        """The mean over taps of the grid ``src`` (flat, H x W) shifted along h or w at (h, w), rounded
        as numerics.conv_fused.mean_shifts: the centre first, then the taps in order, times 1/q."""
        s = src[h * W + w]
        for t in range(taps.shape[0]):
            d = taps[t]
            if d != 0:
                s += src[wrap(h + d, H) * W + w] if along_h else src[h * W + wrap(w + d, W)]
        return s * (1.0 / taps.shape[0])

    @cuda.jit(device=True)
    def patch(v, buf, tmp, p, h, w, H, W, P, th, tw):
        """P v at this thread's position, as numerics.conv_fused.patch (along h, then along w); every
        thread of the block calls it (barriers inside)."""
        nh = th.shape[0]
        nw = tw.shape[0]
        if nh == 1 and nw == 1:
            return v
        if p < P:
            buf[p] = v
        cuda.syncthreads()
        r = 0.0
        if nh > 1 and nw > 1:
            if p < P:
                tmp[p] = mean_axis(buf, h, w, H, W, th, True)
            cuda.syncthreads()
            if p < P:
                r = mean_axis(tmp, h, w, H, W, tw, False)
        elif p < P:
            r = mean_axis(buf, h, w, H, W, th if nh > 1 else tw, nh > 1)
        cuda.syncthreads()            # buf and tmp are free for the next patch
        return r


def _make_kernel(EXACT):
    """The fused kernel: ``EXACT`` (a compile-time constant) with the first layer's half-angle theta
    for near-parallel entries, else without it -- the fast kernel, which only flags the problems that
    have such entries (``flags[q] = 1``) for :func:`block` to recompute with the exact one.  The
    half-angle path costs the kernel ~60 registers a thread (ptxas, sm_90: 138 with it, 76 without),
    and 1024 threads a block leave 64: the fast kernel, which runs nearly every problem, spills far
    less (ptxas at 64 registers: 48 / 136 B of spill stores / loads a thread against 308 / 744 B).
    Both run the same operations on every problem they are given, so the result is the same as one
    kernel with the half-angle path (bit for bit under the simulator)."""
    @cuda.jit(device=True)
    def phi(m, gg, half, snap, first, near, leaky, wl, tl, dl, xs, zs, ia, jb, h, w, oh, ow, fdh, fdw, fsw, H, W):
        """(p1, p0, near-parallel) of one entry: numerics.conv_fused.phi's operations (g^2 = gg the
        variance product); the first layer's near-parallel entries take the half-angle theta in the
        exact kernel and are only reported (third value) in the fast one."""
        g = math.sqrt(gg)
        rho = m / g if g > 0 else 0.0
        rho = 1.0 if rho > 1.0 else rho
        rho = -1.0 if rho < -1.0 else rho
        near_parallel = first and g > 0 and abs(rho) > 1.0 - near
        if snap > 0 and abs(rho) > 1.0 - snap:
            rho = math.copysign(1.0, rho)
        if EXACT and near_parallel:
            th = half_angle_theta(xs, zs, ia, jb, h, w, oh, ow, fdh, fdw, fsw, H, W)
            p1, p0 = relu_family(math.sin(th), math.cos(th), math.pi - th, g, half, leaky, wl, tl, dl)
            return p1, p0, near_parallel
        p1, p0 = relu_family(math.sqrt(1.0 - rho * rho), rho, math.pi - math.acos(rho), g, half, leaky, wl, tl, dl)
        return p1, p0, near_parallel

    @cuda.jit(**_OPTIONS)
    def fused(xs, zs, OH, OW, VX, VZ, ops, params, aparams, taps_h, taps_w, fdh, fdw, fsw, want_ntk,
              readout, snap_unit, near, pair_i, pair_j, first_problem, n_problems, pids, part, flags):
        buf = cuda.shared.array(MAX_POSITIONS, float64)
        tmp = cuda.shared.array(MAX_POSITIONS, float64)
        q = cuda.blockIdx.x
        if q >= n_problems:
            return
        _, H, W, C = xs.shape
        P = H * W
        R = OH.shape[0]
        pid = first_problem + q if pids.shape[0] == 0 else pids[q]
        ia = pair_i[pid // R]
        jb = pair_j[pid // R]
        r = pid % R
        oh = OH[r]
        ow = OW[r]
        p = cuda.threadIdx.x
        h = p // W if p < P else 0
        w = p - h * W if p < P else 0
        hz = wrap(h + oh, H)
        wz = wrap(w + ow, W)
        K = 0.0
        T = 0.0
        dual = 0
        for o in range(ops.shape[0]):
            code = ops[o, 0]
            trained = ops[o, 2] != 0
            th = taps_h[ops[o, 3]:ops[o, 3] + ops[o, 4]]
            tw = taps_w[ops[o, 5]:ops[o, 5] + ops[o, 6]]
            leaky = ops[o, 1] == 1
            wl = aparams[o, 0] if leaky else 1.0
            tl = aparams[o, 1] if leaky else 0.0
            dl = aparams[o, 2] if leaky else 1.0
            if code == OP_STEM:
                s = xs[ia, h, w, 0] * zs[jb, hz, wz, 0]
                for ch in range(1, C):
                    s += xs[ia, h, w, ch] * zs[jb, hz, wz, ch]
                K = params[o, 0] * patch(s, buf, tmp, p, h, w, H, W, P, th, tw)
                T = K if trained else 0.0
            elif code == OP_NONLINEAR:
                dual += 1
                half = params[o, 1]
                snap = snap_width(dual, snap_unit)
                gg = VX[dual - 1, ia, h, w] * VZ[dual - 1, jb, hz, wz]
                p1, p0, np_ = phi(K, gg, half, snap, dual == 1, near, leaky, wl, tl, dl, xs, zs, ia, jb, h, w,
                                  oh, ow, fdh, fdw, fsw, H, W)
                if np_ and p < P:
                    flags[q] = 1
                if want_ntk:
                    a = p1 + p0 * T if trained else p0 * T
                    T = patch(a, buf, tmp, p, h, w, H, W, P, th, tw)
                K = patch(p1, buf, tmp, p, h, w, H, W, P, th, tw)
                K = K / half
                T = T / half
            elif code == OP_BLOCK:
                dual += 1
                g = params[o, 1]
                half = params[o, 2]
                alpha2 = g / half
                snap = snap_width(dual, snap_unit)
                a = patch(K, buf, tmp, p, h, w, H, W, P, th, tw)
                gg = VX[dual - 1, ia, h, w] * VZ[dual - 1, jb, hz, wz]
                p1, p0, np_ = phi(a, gg, half, snap, dual == 1, near, leaky, wl, tl, dl, xs, zs, ia, jb, h, w,
                                  oh, ow, fdh, fdw, fsw, H, W)
                if np_ and p < P:
                    flags[q] = 1
                B = patch(p1, buf, tmp, p, h, w, H, W, P, th, tw)
                if want_ntk:
                    u = patch(T + K, buf, tmp, p, h, w, H, W, P, th, tw)
                    u = patch(p0 * u, buf, tmp, p, h, w, H, W, P, th, tw)
                    T = (T + alpha2 * (B + u)) / (1 + g)
                K = (K + alpha2 * B) / (1 + g)
            elif code == OP_LINEAR:
                if want_ntk and trained:
                    T = T + K
        v = T if want_ntk else K
        # readout: 2 = the centre position, else the sum over positions (flatten: / P), by a fixed tree
        if readout == 2:
            if p == 0:
                part[q] = v
            return
        buf[p] = v if p < P else 0.0
        cuda.syncthreads()
        s = cuda.blockDim.x // 2
        while s > 0:
            if p < s:
                buf[p] += buf[p + s]
            cuda.syncthreads()
            s //= 2
        if p == 0:
            part[q] = buf[0] / P if readout == 1 else buf[0]

    return fused


if cuda is not None:
    # 1024 threads a block need <= 64 registers a thread (64K a multiprocessor); the simulator takes
    # no such option
    _OPTIONS = {} if numba_config.ENABLE_CUDASIM else {"max_registers": MAX_REGISTERS}
    _fused = _make_kernel(False)
    _fused_exact = _make_kernel(True)


def block(xs, zs, OH, OW, VX, VZ, program, fdh, fdw, fsw, want_ntk, readout, snap_unit, near, upper):
    """out[i, j] = the program's readout summed over the offsets (OH, OW) for x = xs[i], z = zs[j]
    (``upper``: only j >= i), as :func:`numerics.conv_fused.block` (host float64 arrays in and out)."""
    a, H, W, C = xs.shape
    b = zs.shape[0]
    P = H * W
    if P > MAX_POSITIONS:
        raise ValueError(f"at most {MAX_POSITIONS} positions per image (one thread each), got {H}x{W}")
    R = OH.shape[0]
    ii, jj = np.triu_indices(a, 0, b) if upper else np.divmod(np.arange(a * b), b)
    pair_i, pair_j = ii.astype(np.int32), jj.astype(np.int32)
    n_pairs = pair_i.size
    out = np.zeros((a, b))
    if n_pairs == 0:
        return out
    threads = 32
    while threads < P:
        threads *= 2
    fast, exact = kernels()
    d = [cuda.to_device(np.ascontiguousarray(v)) for v in
         (xs, zs, OH, OW, VX, VZ, program.ops, program.params, program.aparams, program.taps_h, program.taps_w,
          fdh, fdw, fsw, pair_i, pair_j)]
    args = d[:14] + [bool(want_ntk), int(readout), float(snap_unit), float(near)] + d[14:]
    none = cuda.to_device(np.zeros(0, dtype=np.int64))
    total = n_pairs * R
    vals = np.empty(total)
    for first in range(0, total, LAUNCH_PROBLEMS):
        n = min(LAUNCH_PROBLEMS, total - first)
        part = cuda.device_array(n, dtype=np.float64)
        flags = cuda.to_device(np.zeros(n, dtype=np.int32))
        fast[n, threads](*args, first, n, none, part, flags)
        vals[first:first + n] = part.copy_to_host()
        # problems with near-parallel first-layer entries (the diagonal's own offset 0, near-duplicate
        # inputs): again by the exact kernel, in place of the fast kernel's values
        redo = first + np.flatnonzero(flags.copy_to_host())
        if redo.size:
            part = cuda.device_array(redo.size, dtype=np.float64)
            exact[redo.size, threads](*args, 0, redo.size, cuda.to_device(redo.astype(np.int64)), part,
                                      cuda.to_device(np.zeros(redo.size, dtype=np.int32)))
            vals[redo] = part.copy_to_host()
    # each pair's offsets in offset order (as the CPU loop's readout)
    per = vals.reshape(n_pairs, R)
    acc = per[:, 0].copy()
    for r in range(1, R):
        acc += per[:, r]
    out[pair_i, pair_j] = acc
    return out

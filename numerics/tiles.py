"""Executors for tiled Gram matrices: threads in this process, a Dask cluster, a GPU -- one code path.

A *plan* (:class:`numerics.conv.ConvGramPlan`, :class:`numerics.gram.FCGramPlan`) splits the n x m
Gram matrix into tiles ``(i0, i1, j0, j1)`` and computes any tile alone with ``plan.block(tile)``
(a pure function of the plan and the tile).  :func:`execute` only decides *where* blocks are
computed; every executor writes the same blocks into the same places, so the in-process, the
distributed and the resumed results are identical to the last bit for the same backend.

* in process: a thread pool (numpy releases the GIL), or sequentially on a GPU;
* ``client=`` a ``dask.distributed.Client`` (optional dependency, ``pip install reskernels[distributed]``):
  the plan is scattered to the workers once and each tile is one task; a lost worker's tasks are
  recomputed by the scheduler (the tasks are pure), so no tile is lost and no number changes;
* ``store=`` a directory: ``gram.npy`` (a memory-mapped n x m array), ``done.npy`` (one uint64 per
  tile: 0 while the tile is not written, else a 64-bit BLAKE2b checksum of the tile's coordinates and
  stored bytes, flushed after the block itself), ``meta.json`` (the job's identity: spec, kind,
  shapes, a hash of the inputs, the tile grid; written atomically, last) and ``lock``.  Re-running
  the same call with the same store computes only the tiles not yet done; a store of a different job
  raises ``ValueError``.

  - One job at a time: a job holds an exclusive lock on ``lock`` (``flock``; the kernel drops it
    when the process dies) from opening the store to returning.  A second job on the same store, in
    this or another process, is refused at once with :class:`StoreBusyError` naming the store (it
    does not wait).
  - Damage: on opening, the .npy headers and file sizes are checked and every finished tile is
    checked against its checksum.  A damaged or truncated ``gram.npy`` or ``done.npy`` is repaired by
    recomputing the tiles it lost, with a :class:`StoreRepairWarning` naming the file; an unreadable
    ``meta.json`` raises :class:`StoreDamagedError` naming it (the store can no longer be identified).
    Stores written before the checksums (a boolean ``done.npy``) are recomputed the same way.
  - Interrupts: Ctrl-C (or an error in ``on_tile``) cancels the tiles not started, waits for the
    ones running (at most one per thread; on a cluster the pending tasks are cancelled) and
    re-raises; the tiles already written stay done, so the same call resumes.

Backends: "numpy" (float64 on the CPU, vectorised passes), "numba" (float64 on the CPU, the conv
recursion as one compiled loop per pair: :mod:`numerics.conv_fused`, optional dependency),
"cupy" (float64 on a CUDA GPU) and "cuda" (conv programs as one fused CUDA kernel:
:mod:`numerics.conv_cuda`, numba-cuda); ``ImportError`` with an explanation when the library or the
GPU is missing.  "auto" (the default of :func:`numerics.gram`) picks numba for conv kernels when installed.
"""
from __future__ import annotations

import hashlib
import json
import os
import socket
import sys
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor, as_completed

import numpy as np

BACKENDS = ("numpy", "numba", "cupy", "cuda")


def resolve_backend(backend: str, conv: bool) -> str:
    """The backend a Gram plan runs on.  "auto": the fused numba loop for conv kernels when numba is
    installed, else numpy.  FC plans run on "numpy" tiles under "auto" and "numba" alike, and ``gram``
    asks them for their compiled parts there (``FCGramPlan(compiled_duals=True)``: the half-angle loop
    of numerics.fc_fused for ReLU-family programs, the closed-form duals of variance-carrying programs
    by numerics.variance.CompiledDualContext)."""
    if backend not in BACKENDS + ("auto",):
        raise ValueError(f"unknown backend {backend!r}; expected 'auto' or one of {BACKENDS}")
    if backend == "auto":
        from .conv_fused import available
        return "numba" if conv and available() else "numpy"
    if backend == "numba":
        from .conv_fused import fused_block
        fused_block()     # ImportError with the install hint when numba is missing
        return backend if conv else "numpy"
    if backend == "cuda":
        if not conv:
            raise NotImplementedError("backend='cuda' is the fused conv kernel (numerics.conv_cuda); fully "
                                      "connected kernels run on 'numpy', 'numba' or 'cupy'")
        from .conv_cuda import available
        if not available():
            raise ImportError("backend='cuda' needs numba's CUDA target and a CUDA device (pip install "
                              "\"reskernels[cuda]\", i.e. numba-cuda; or NUMBA_ENABLE_CUDASIM=1 for numba's simulator)")
    return backend


def array_module(backend: str):
    """The array namespace of a backend name ("numba" runs compiled loops over numpy arrays)."""
    if backend in ("numpy", "numba", "cuda"):      # cuda: host arrays in, the kernel moves them
        return np
    if backend == "cupy":
        try:
            import cupy
        except ImportError as exc:
            raise ImportError("backend='cupy' needs CuPy (pip install cupy-cuda12x or cupy-cuda13x, "
                              "matching your CUDA driver)") from exc
        try:
            n = cupy.cuda.runtime.getDeviceCount()
        except Exception as exc:  # no driver / no device
            raise ImportError(f"backend='cupy': no usable CUDA device ({exc})") from None
        if n < 1:
            raise ImportError("backend='cupy': no CUDA device found")
        return cupy
    raise ValueError(f"unknown backend {backend!r}; expected one of {BACKENDS}")


class CompileNotice(UserWarning):
    """A one-time delay ahead: compiling the numba conv loop (~30 s on first use, then cached on disk) or
    building a large Gauss-Legendre rule for :func:`numerics.eigenvalues` (cached in the process).

    Shown once per kind of delay and process, like any warning; silence it with
    ``warnings.filterwarnings("ignore", category=reskernels.numerics.tiles.CompileNotice)``."""


_NOTICED: set = set()
_NOTICE_LOCK = threading.Lock()


def compile_notice(key, message: str, stacklevel: int = 3) -> bool:
    """Issue ``message`` as a :class:`CompileNotice` the first time ``key`` is seen in this process
    (thread-safe); returns whether it was issued."""
    with _NOTICE_LOCK:
        if key in _NOTICED:
            return False
        _NOTICED.add(key)
    warnings.warn(message, CompileNotice, stacklevel=stacklevel)
    return True


class PlanBase:
    """Shared by the Gram plans: a plan pickles without its array module (workers re-import the
    backend named by ``self.backend``)."""

    def __getstate__(self):
        state = dict(self.__dict__)
        state.pop("xp", None)
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self.xp = array_module(self.backend)


def norm_scale(dx, dz):
    """sqrt(K(x, x) K(z, z)) for the normalised kernel: sqrt of the product (exact, sqrt(d d) = d, on
    equal diagonals) where the product is a normal float64, else sqrt(dx) sqrt(dz) (deep monomial
    kernels reach K(x, x) ~ 1e200: the product overflowed to inf and the normalised value became 0)."""
    with np.errstate(over="ignore", under="ignore"):
        prod = np.outer(dx, dz)
    den = np.sqrt(prod)
    bad = ~np.isfinite(prod) | (prod < np.finfo(float).tiny)
    if np.any(bad):
        alt = np.outer(np.sqrt(dx), np.sqrt(dz))
        alt = np.where(np.equal.outer(dx, dz), np.broadcast_to(np.asarray(dx)[:, None], alt.shape), alt)
        den = np.where(bad, alt, den)
    return den


def to_host(a) -> np.ndarray:
    """A float64 numpy array from a numpy or CuPy array."""
    get = getattr(a, "get", None)
    return np.asarray(get() if get is not None else a, dtype=np.float64)


def mirror_upper(out, tiles):
    """Fill the lower triangle from the upper one, tile by tile (exact symmetry; the tiles of a
    symmetric plan cover i0 <= j0, and a diagonal tile's own lower half is overwritten too)."""
    for i0, i1, j0, j1 in tiles:
        if j0 == i0:
            blk = out[i0:i1, j0:j1]
            out[i0:i1, j0:j1] = np.triu(blk) + np.triu(blk, 1).T
        else:
            out[j0:j1, i0:i1] = out[i0:i1, j0:j1].T
    return out


def _job_identity(plan) -> dict:
    h = hashlib.sha256()
    for A in (plan.X, plan.Z):
        if A is not None:
            A = np.ascontiguousarray(np.asarray(A, dtype=np.float64))
            h.update(str(A.shape).encode())
            h.update(A.tobytes())
    # a plan whose blocks changed meaning between versions names that in the spec, so that a store
    # written by an older version is refused ("holds a different job") instead of mixed with new blocks
    note = getattr(plan, "block_format", None)
    return {"spec": repr(plan.arch) + (f" [{note}]" if note else ""), "kind": plan.kind, "normalize": bool(plan.normalize),
            "backend": plan.backend, "shape": [plan.n, plan.m], "inputs_sha256": h.hexdigest(),
            "tiles": [list(t) for t in plan.tiles]}


class StoreBusyError(RuntimeError):
    """Another job (this or another process) holds the store's lock."""

    def __init__(self, message, store=None):
        super().__init__(message)
        self.store = store

    def __reduce__(self):
        return type(self), (str(self), self.store)


class StoreDamagedError(ValueError):
    """A store file is damaged beyond what recomputing tiles can repair (``path``: the file)."""

    def __init__(self, message, path=None):
        super().__init__(message)
        self.path = path

    def __reduce__(self):
        return type(self), (str(self), self.path)


class StoreRepairWarning(UserWarning):
    """A store was found damaged (the message names the file) and its damaged tiles are recomputed."""


_UNSET = 0      # a done.npy entry of a tile not (validly) written


def _tile_checksum(tile, region) -> np.uint64:
    """64-bit BLAKE2b of a tile's coordinates and its stored float64 bytes (never 0: 0 marks a tile
    not done)."""
    h = hashlib.blake2b(digest_size=8)
    h.update(np.asarray(tile, dtype=np.int64).tobytes())
    h.update(np.ascontiguousarray(region, dtype=np.float64).tobytes())
    return np.uint64(int.from_bytes(h.digest(), "little") or 1)


def _lock_store(path):
    """An exclusive lock on ``path/lock`` held until :meth:`TileStore.close` (the file descriptor).

    ``flock`` on POSIX (released by the kernel when the process dies, so a killed job leaves no stale
    lock); ``msvcrt.locking`` on Windows.  Never blocks: a held lock raises :class:`StoreBusyError`."""
    lock_path = os.path.join(path, "lock")
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            import fcntl
        except ImportError:     # pragma: no cover - Windows
            import msvcrt
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
            holder = ""
        else:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            os.ftruncate(fd, 0)
            os.write(fd, f"pid {os.getpid()} on {socket.gethostname()}\n".encode())
    except OSError:
        try:
            with open(lock_path, "rb") as f:
                holder = f.read(200).decode(errors="replace").strip()
        except OSError:   # pragma: no cover - a Windows lock also blocks reading
            holder = ""
        os.close(fd)
        who = f" ({holder})" if holder else ""
        raise StoreBusyError(f"store {path!r} is in use by another job{who}: a store serves one job at a "
                             "time; wait until that job ends or use another directory", path) from None
    except BaseException:
        os.close(fd)
        raise
    return fd


def _npy_layout(file_path):
    """(shape, dtype, fortran_order, data offset) from an .npy header; ValueError saying what is
    wrong when the header is missing or unreadable."""
    with open(file_path, "rb") as f:
        try:
            version = np.lib.format.read_magic(f)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
            elif version == (2, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
            else:
                raise ValueError(f"unsupported .npy format version {version}")
        except Exception as exc:        # numpy raises ValueError, EOFError, SyntaxError, ... here
            raise ValueError(f"unreadable .npy header ({type(exc).__name__}: {exc})") from None
        return shape, dtype, fortran, f.tell()


def _open_npy(file_path, shape, dtype, legacy_dtype=None):
    """Open an existing .npy array of the given layout read-write.

    Returns (memmap or None, problem or None, legacy): None when the file is missing or its header is
    not the expected one (the caller recreates it); a file of the wrong size is cut or zero-extended
    to the size its header implies (the checksums then find the tiles it lost).  ``legacy``: the
    header names ``legacy_dtype`` instead (a store of an older version)."""
    name = os.path.basename(file_path)
    if not os.path.exists(file_path):
        return None, f"{name} is missing", False
    try:
        got_shape, got_dtype, fortran, offset = _npy_layout(file_path)
    except ValueError as exc:
        return None, f"{name} is damaged: {exc}", False
    if legacy_dtype is not None and got_shape == shape and got_dtype == np.dtype(legacy_dtype):
        return None, None, True
    if got_shape != shape or got_dtype != np.dtype(dtype) or fortran:
        return None, (f"{name} is damaged: its header describes a {got_dtype} array of shape {got_shape}"
                      f"{' (Fortran order)' if fortran else ''}, expected {np.dtype(dtype)} {shape}"), False
    want = offset + int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize
    size = os.path.getsize(file_path)
    problem = None
    if size != want:
        problem = f"{name} has {size} bytes, expected {want} ({'truncated' if size < want else 'trailing bytes'})"
        os.truncate(file_path, want)        # zero-extends a truncated file: its lost tiles fail their checksum
    return np.lib.format.open_memmap(file_path, mode="r+"), problem, False


class TileStore:
    """On-disk tiles of one Gram job (see the module docstring).

    Holds the store's lock from construction to :meth:`close`.  Opening an existing store checks its
    files: ``meta.json`` must parse (else :class:`StoreDamagedError` naming it); ``gram.npy`` and
    ``done.npy`` must have the expected .npy header and size (else they are recreated or resized);
    every tile marked done must match the checksum stored with it in ``done.npy``.  Tiles that fail
    are recomputed, with a :class:`StoreRepairWarning` naming the damaged file; a damaged store never
    returns a wrong entry."""

    def __init__(self, path, plan):
        self.path = os.fspath(path)
        os.makedirs(self.path, exist_ok=True)
        self._lock_fd = _lock_store(self.path)
        try:
            self._open(plan)
        except BaseException:
            self.close()
            raise
        self._lock = threading.Lock()

    def _open(self, plan):
        meta_path = os.path.join(self.path, "meta.json")
        ident = _job_identity(plan)
        self.tiles = [tuple(t) for t in plan.tiles]
        gram_path = os.path.join(self.path, "gram.npy")
        done_path = os.path.join(self.path, "done.npy")
        gshape, dshape = (plan.n, plan.m), (len(plan.tiles),)
        if not os.path.exists(meta_path):       # meta is written last: a store without it is not a store
            self.out = np.lib.format.open_memmap(gram_path, mode="w+", dtype=np.float64, shape=gshape)
            self.done = np.lib.format.open_memmap(done_path, mode="w+", dtype=np.uint64, shape=dshape)
            self.done[:] = _UNSET
            self.out.flush()
            self.done.flush()
            _write_atomic(meta_path, json.dumps(ident).encode())
            return
        old = _read_meta(meta_path, ident)
        if old != ident:
            diff = sorted(k for k in ident if old.get(k) != ident[k])
            hint = (" (the tile grid follows memory_budget, n_threads and backend: resume with the same "
                    "arguments)") if diff == ["tiles"] else ""
            raise ValueError(f"store {self.path!r} holds a different job (differs in {diff}){hint}; "
                             "use another directory")
        problems = []
        self.out, problem, _ = _open_npy(gram_path, gshape, np.float64)
        gram_lost = self.out is None
        if gram_lost:
            self.out = np.lib.format.open_memmap(gram_path, mode="w+", dtype=np.float64, shape=gshape)
            self.out.flush()
        if problem:
            problems.append(problem + ("; all tiles are recomputed" if gram_lost else ""))
        self.done, problem, legacy = _open_npy(done_path, dshape, np.uint64, legacy_dtype=np.bool_)
        if legacy:
            problem = ("done.npy holds no tile checksums (a store of an older reskernels): its tiles "
                       "cannot be verified and are recomputed")
        if self.done is None:
            self.done = np.lib.format.open_memmap(done_path, mode="w+", dtype=np.uint64, shape=dshape)
            self.done[:] = _UNSET
            self.done.flush()
            if problem and not legacy:
                problem += "; all tiles are recomputed"
        if problem:
            problems.append(problem)
        if gram_lost:      # the checksums describe blocks that are gone
            self.done[:] = _UNSET
            self.done.flush()
        bad = [k for k, t in enumerate(self.tiles) if self.done[k] != _UNSET
               and self.done[k] != _tile_checksum(t, self.out[t[0]:t[1], t[2]:t[3]])]
        if bad:
            self.done[bad] = _UNSET
            self.done.flush()
            problems.append(f"{len(bad)} of {len(self.tiles)} tiles failed their checksum (damaged blocks in "
                            "gram.npy or damaged checksums in done.npy); they are recomputed")
        if problems:
            warnings.warn(f"store {self.path!r} was damaged: " + "; ".join(problems),
                          StoreRepairWarning, stacklevel=4)

    def pending(self):
        return [k for k in range(len(self.done)) if self.done[k] == _UNSET]

    def write(self, k, tile, block):
        i0, i1, j0, j1 = tile
        with self._lock:
            self.out[i0:i1, j0:j1] = block
            self.out.flush()          # the block reaches the file before its checksum does
            self.done[k] = _tile_checksum(tile, self.out[i0:i1, j0:j1])
            self.done.flush()

    def close(self):
        """Release the store's lock (the arrays stay readable until dropped)."""
        if self._lock_fd is not None:
            os.close(self._lock_fd)    # closing the descriptor releases flock / msvcrt locks
            self._lock_fd = None


def _read_meta(meta_path, ident) -> dict:
    try:
        with open(meta_path, "rb") as f:
            raw = f.read()
        old = json.loads(raw.decode("utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise StoreDamagedError(
            f"store {os.path.dirname(meta_path)!r}: meta.json is damaged ({type(exc).__name__}: {exc}); "
            "the store cannot be identified: delete the directory to start the job over", meta_path) from None
    missing = sorted(set(ident) - set(old)) if isinstance(old, dict) else sorted(ident)
    if missing:
        raise StoreDamagedError(
            f"store {os.path.dirname(meta_path)!r}: meta.json is damaged (not a job description: lacks "
            f"{missing}); delete the directory to start the job over", meta_path)
    return old


def _write_atomic(file_path, data: bytes):
    """Write a file so that readers see either nothing or all of it (temp file, fsync, os.replace)."""
    tmp = f"{file_path}.{os.getpid()}.{threading.get_ident()}.tmp"
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, file_path)


def execute(plan, *, client=None, store=None, progress: bool | None = None, label: str = "gram",
            on_tile=None) -> np.ndarray:
    """Compute every tile of ``plan`` and return the assembled (n, m) array of blocks.

    ``on_tile(k)`` (optional) is called after tile k is written -- a hook for progress bars and for
    the interruption tests.  The caller applies ``plan.finish``.

    BLAS runs single-threaded inside tiles (threadpoolctl): a multi-threaded BLAS may pick other
    kernels, hence other roundings, for the same product depending on how it is called, which would
    make the result depend on the executor.  Parallelism comes from the tiles instead."""
    with _blas_controller().limit(limits=1, user_api="blas"):
        return _execute(plan, client, store, progress, label, on_tile)


_CONTROLLER = []


def _blas_controller():
    """One threadpoolctl controller per process (library discovery is the slow part)."""
    if not _CONTROLLER:
        from threadpoolctl import ThreadpoolController
        _CONTROLLER.append(ThreadpoolController())
    return _CONTROLLER[0]


def _execute(plan, client, store, progress, label, on_tile):
    st = TileStore(store, plan) if store is not None else None
    try:
        return _run(plan, client, st, progress, label, on_tile)
    finally:
        if st is not None:
            st.close()


def _run(plan, client, st, progress, label, on_tile):
    tiles = plan.tiles
    out = st.out if st is not None else np.zeros((plan.n, plan.m))
    todo = st.pending() if st is not None else list(range(len(tiles)))
    show = progress if progress is not None else (len(todo) >= 200 and sys.stderr.isatty())
    done = [len(tiles) - len(todo)]

    def write(k, block):
        i0, i1, j0, j1 = tiles[k]
        if st is not None:
            st.write(k, tiles[k], block)
        else:
            out[i0:i1, j0:j1] = block
        done[0] += 1
        if show:
            print(f"\r{label}: {done[0]}/{len(tiles)} tiles", end="", file=sys.stderr, flush=True)
        if on_tile is not None:
            on_tile(k)

    if client is not None:
        _execute_dask(plan, client, todo, write)
    elif getattr(plan, "threads", 1) > 1 and len(todo) > 1:
        pool = ThreadPoolExecutor(max_workers=plan.threads)
        try:
            futures = {pool.submit(plan.block, tiles[k]): k for k in todo}
            # written as they finish and then dropped: finished blocks wait for the writer only
            # while it writes another (holding every block's future until the end kept a second
            # copy of the whole output alive)
            for fut in as_completed(futures):
                write(futures.pop(fut), fut.result())
        except BaseException:
            futures.clear()
            # Ctrl-C (or an error): drop the tiles not started, wait only for those running (at most
            # one per thread); the tiles written so far stay in the store for a rerun
            pool.shutdown(wait=True, cancel_futures=True)
            raise
        pool.shutdown(wait=True)
    else:
        for k in todo:
            write(k, plan.block(tiles[k]))
    if show:
        print(file=sys.stderr)
    return np.array(out) if st is not None else out


def _block_task(plan, tile):
    with _blas_controller().limit(limits=1, user_api="blas"):   # as in process (see execute)
        return plan.block(tile)


def _execute_dask(plan, client, todo, write):
    try:
        from distributed import as_completed
    except ImportError as exc:  # pragma: no cover - exercised only without the extra
        raise ImportError("client= needs dask.distributed (pip install reskernels[distributed])") from exc
    # hash=False: a key of this job's own (a content-hashed key is shared with a rerun of the same
    # plan, which an interrupted job's late release would then take away from it)
    remote = client.scatter(plan, broadcast=True, hash=False)
    futures = {client.submit(_block_task, remote, plan.tiles[k], pure=False, retries=2): k for k in todo}
    try:
        for fut in as_completed(futures):
            write(futures[fut], fut.result())
    except BaseException:
        client.cancel(list(futures) + [remote])   # Ctrl-C or an error: the cluster drops the job's tasks
        raise

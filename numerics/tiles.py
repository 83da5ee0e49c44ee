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
* ``store=`` a directory: ``gram.npy`` (a memory-mapped n x m array), ``done.npy`` (one flag per
  tile, flushed after each block is written) and ``meta.json`` (the job's identity: spec, kind,
  shapes, a hash of the inputs, the tile grid).  Re-running the same call with the same store
  computes only the tiles not yet done; a store of a different job raises ``ValueError``.

Backends: "numpy" (float64 on the CPU, vectorised passes), "numba" (float64 on the CPU, the conv
recursion as one compiled loop per pair: :mod:`numerics.conv_fused`, optional dependency) and
"cupy" (float64 on a CUDA GPU); ``ImportError`` with an explanation when the library or the GPU is
missing.  "auto" (the default of :func:`numerics.gram`) picks numba for conv kernels when installed.
"""
from __future__ import annotations

import hashlib
import json
import os
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np

BACKENDS = ("numpy", "numba", "cupy")


def resolve_backend(backend: str, conv: bool) -> str:
    """The backend a Gram plan runs on.  "auto": the fused numba loop for conv kernels when numba is
    installed, else numpy (the FC path is one BLAS product plus ~30 vectorised passes per tile, which
    numba would not speed up, so "numba" means numpy there)."""
    if backend not in BACKENDS + ("auto",):
        raise ValueError(f"unknown backend {backend!r}; expected 'auto' or one of {BACKENDS}")
    if backend == "auto":
        from .conv_fused import available
        return "numba" if conv and available() else "numpy"
    if backend == "numba":
        from .conv_fused import fused_block
        fused_block()     # ImportError with the install hint when numba is missing
        return backend if conv else "numpy"
    return backend


def array_module(backend: str):
    """The array namespace of a backend name ("numba" runs compiled loops over numpy arrays)."""
    if backend in ("numpy", "numba"):
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
    return {"spec": repr(plan.arch), "kind": plan.kind, "normalize": bool(plan.normalize),
            "backend": plan.backend, "shape": [plan.n, plan.m], "inputs_sha256": h.hexdigest(),
            "tiles": [list(t) for t in plan.tiles]}


class TileStore:
    """On-disk tiles of one Gram job (see the module docstring)."""

    def __init__(self, path, plan):
        self.path = os.fspath(path)
        os.makedirs(self.path, exist_ok=True)
        meta_path = os.path.join(self.path, "meta.json")
        ident = _job_identity(plan)
        gram_path = os.path.join(self.path, "gram.npy")
        done_path = os.path.join(self.path, "done.npy")
        if os.path.exists(meta_path):
            with open(meta_path) as f:
                old = json.load(f)
            if old != ident:
                diff = sorted(k for k in ident if old.get(k) != ident[k])
                hint = (" (the tile grid follows memory_budget, n_threads and backend: resume with the same "
                        "arguments)") if diff == ["tiles"] else ""
                raise ValueError(f"store {self.path!r} holds a different job (differs in {diff}){hint}; "
                                 "use another directory")
            self.out = np.lib.format.open_memmap(gram_path, mode="r+")
            self.done = np.lib.format.open_memmap(done_path, mode="r+")
        else:
            self.out = np.lib.format.open_memmap(gram_path, mode="w+", dtype=np.float64, shape=(plan.n, plan.m))
            self.done = np.lib.format.open_memmap(done_path, mode="w+", dtype=np.bool_, shape=(len(plan.tiles),))
            self.done[:] = False
            self.done.flush()
            with open(meta_path + ".tmp", "w") as f:
                json.dump(ident, f)
            os.replace(meta_path + ".tmp", meta_path)   # meta last: a store without it is not a store
        self._lock = threading.Lock()

    def pending(self):
        return [k for k in range(len(self.done)) if not self.done[k]]

    def write(self, k, tile, block):
        i0, i1, j0, j1 = tile
        with self._lock:
            self.out[i0:i1, j0:j1] = block
            self.out.flush()          # the block reaches the file before its flag does
            self.done[k] = True
            self.done.flush()


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
    tiles = plan.tiles
    st = TileStore(store, plan) if store is not None else None
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
        with ThreadPoolExecutor(max_workers=plan.threads) as pool:
            futures = {k: pool.submit(plan.block, tiles[k]) for k in todo}
            for k in todo:
                write(k, futures[k].result())
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
    remote = client.scatter(plan, broadcast=True)
    futures = {client.submit(_block_task, remote, plan.tiles[k], pure=False, retries=2): k for k in todo}
    for fut in as_completed(futures):
        write(futures[fut], fut.result())

"""One tile function, several executors: threads, an on-disk store with resume, a Dask cluster
(with a worker killed mid-job) and a GPU -- all giving the in-process matrix bit for bit."""
import os
import signal
import time

import numpy as np
import pytest

from reskernels.numerics import gram
from reskernels.numerics.conv import ConvGramPlan
from reskernels.numerics.gram import FCGramPlan
from reskernels.numerics.tiles import execute
from reskernels.numerics.tolerances import float64_kernel_rtol
from reskernels.theory import CNN, MLP, ResCNN, ResNet


def _images(n, seed=0):
    return np.random.default_rng(seed).standard_normal((n, 4, 4, 3))


CASES = [
    (ResCNN(2, 0.5, readout="gap"), lambda: _images(12), dict(memory_budget=2**16)),   # numba when installed
    (ResCNN(2, 0.5, readout="gap"), lambda: _images(12), dict(memory_budget=2**16, backend="numpy")),
    (ResNet(3, 0.5), lambda: np.random.default_rng(1).standard_normal((70, 5)), dict(memory_budget=2**16)),
]


def _plan(arch, X, **kw):
    cls = ConvGramPlan if isinstance(arch, (CNN, ResCNN)) else FCGramPlan
    return cls(arch, X, **kw)


@pytest.mark.parametrize("arch,data,kw", CASES)
def test_single_threaded_and_threaded_paths_agree_bitwise(arch, data, kw):
    X = data()
    one = gram(arch, X, n_threads=1, **kw)
    two = gram(arch, X, n_threads=2, **kw)
    assert len(_plan(arch, X, **kw).tiles) > 4
    assert np.array_equal(one, two)
    assert np.array_equal(one, one.T)


class _Interrupt(Exception):
    pass


@pytest.mark.parametrize("arch,data,kw", CASES)
def test_store_resumes_and_recomputes_only_missing_tiles(arch, data, kw, tmp_path):
    X = data()
    plan = _plan(arch, X, **kw)
    total = len(plan.tiles)
    seen = []

    def stop_after_three(k):
        seen.append(k)
        if len(seen) == 3:
            raise _Interrupt

    with pytest.raises(_Interrupt):
        execute(plan, store=tmp_path / "job", on_tile=stop_after_three)
    again = []
    out = execute(_plan(arch, X, **kw), store=tmp_path / "job", on_tile=again.append)
    assert len(again) == total - 3 and not set(again) & set(seen)
    assert np.array_equal(plan.finish(out), gram(arch, X, **kw))
    # a finished store recomputes nothing, and gram(..., store=) reads it
    none = []
    execute(_plan(arch, X, **kw), store=tmp_path / "job", on_tile=none.append)
    assert none == []
    assert np.array_equal(gram(arch, X, store=tmp_path / "job", **kw), gram(arch, X, **kw))


def test_store_of_another_job_is_refused(tmp_path):
    arch = ResNet(2, 0.5)
    X = np.random.default_rng(0).standard_normal((10, 3))
    gram(arch, X, store=tmp_path / "s")
    with pytest.raises(ValueError, match="different job"):
        gram(arch, X + 1.0, store=tmp_path / "s")
    with pytest.raises(ValueError, match="different job"):
        gram(arch, X, kind="nngp", store=tmp_path / "s")


def test_store_made_without_the_small_angle_series_is_refused(tmp_path, monkeypatch):
    """The small-angle series (theory.activations.SMALL_ANGLE_H) changed the blocks of FC programs: a store
    written without it (the threshold 0: the code before) holds a different job, on either route."""
    import reskernels.theory.activations as activations
    arch = MLP(30)
    X = np.random.default_rng(0).standard_normal((10, 3))
    for backend in ("numpy", "auto"):
        store = tmp_path / backend
        monkeypatch.setattr(activations, "SMALL_ANGLE_H", 0.0)
        old = gram(arch, X, store=store, backend=backend)
        monkeypatch.setattr(activations, "SMALL_ANGLE_H", 0.25)
        with pytest.raises(ValueError, match="different job"):
            gram(arch, X, store=store, backend=backend)
        assert not np.array_equal(old, gram(arch, X, backend=backend))      # the blocks did change


def test_unknown_and_missing_backends():
    X = np.ones((2, 3))
    with pytest.raises(ValueError, match="backend"):
        gram(ResNet(2, 0.5), X, backend="torch")
    try:
        import cupy  # noqa: F401
        has_cupy = True
    except ImportError:
        has_cupy = False
    if not has_cupy:
        with pytest.raises(ImportError, match="CuPy"):
            gram(ResNet(2, 0.5), X, backend="cupy")
        with pytest.raises(ImportError, match="CuPy"):
            gram(CNN(2), np.ones((2, 4, 2)), backend="cupy")


@pytest.fixture(scope="module")
def cluster():
    distributed = pytest.importorskip("distributed")
    cl = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None, host="127.0.0.1", silence_logs=40)
    client = distributed.Client(cl)
    yield client
    client.close()
    cl.close()


@pytest.mark.parametrize("arch,data,kw", CASES)
def test_dask_cluster_gives_the_in_process_matrix(cluster, arch, data, kw):
    X = data()
    assert np.array_equal(gram(arch, X, client=cluster, **kw), gram(arch, X, **kw))
    Z = data()[:5] * 1.3
    assert np.array_equal(gram(arch, X, Z, client=cluster, **kw), gram(arch, X, Z, **kw))


def test_dask_worker_killed_mid_job_loses_no_tile(cluster, tmp_path):
    arch, X, kw = ResCNN(2, 0.5, readout="gap"), _images(16, seed=3), dict(memory_budget=2**15)
    plan = _plan(arch, X, **kw)
    pids = cluster.run(os.getpid)
    victim = sorted(pids.values())[0]
    killed = []

    def kill_once(k):
        if not killed:
            os.kill(victim, signal.SIGKILL)       # a worker process dies while tasks are in flight
            killed.append(k)

    out = execute(plan, client=cluster, store=tmp_path / "job", on_tile=kill_once)
    assert killed
    assert np.array_equal(plan.finish(out), gram(arch, X, **kw))
    cluster.wait_for_workers(2, timeout=60)        # the nanny restarts the worker


def _job_tasks(client):
    return client.run_on_scheduler(
        lambda dask_scheduler: sum(str(k).startswith("_block_task") for k in dask_scheduler.tasks))


def test_dask_interrupt_cancels_the_pending_tasks_and_resumes(cluster, tmp_path):
    arch, X, kw = ResNet(3, 0.5), np.random.default_rng(2).standard_normal((120, 5)), dict(memory_budget=2**14)
    plan = _plan(arch, X, **kw)
    seen = []

    def stop_after_two(k):
        seen.append(k)
        if len(seen) == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt) as ei:
        execute(plan, client=cluster, store=tmp_path / "job", on_tile=stop_after_two)
    # the job's futures are still referenced (by the traceback): only a cancel releases their tasks
    deadline = time.monotonic() + 20
    while _job_tasks(cluster) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _job_tasks(cluster) == 0
    del ei
    again = []
    out = execute(_plan(arch, X, **kw), client=cluster, store=tmp_path / "job", on_tile=again.append)
    assert sorted(again + seen) == list(range(len(plan.tiles)))
    assert np.array_equal(plan.finish(out), gram(arch, X, **kw))


@pytest.mark.parametrize("arch,data,kw", CASES)
def test_cupy_backend_matches_numpy(arch, data, kw):
    cupy = pytest.importorskip("cupy")
    try:
        if cupy.cuda.runtime.getDeviceCount() < 1:
            pytest.skip("no CUDA device")
    except Exception:
        pytest.skip("no CUDA device")
    X = data()
    kw = {k: v for k, v in kw.items() if k != "backend"}
    K_gpu = gram(arch, X, backend="cupy", **kw)
    K_cpu = gram(arch, X, backend="numpy", **kw)
    scale = np.sqrt(np.outer(np.diag(K_cpu), np.diag(K_cpu)))
    # different libm (arccos, sqrt) on the GPU: a few ulps per operation (near-parallel first-layer
    # pixels take half angles on both, see test_conv)
    err = np.max(np.abs(K_gpu - K_cpu) / scale)
    assert err <= float64_kernel_rtol(arch.depth + 2, per_layer=100), err
    assert np.array_equal(K_gpu, gram(arch, X, backend="cupy", **kw))       # deterministic
    assert np.array_equal(K_gpu, K_gpu.T)


def test_a_stored_conv_job_resumes_with_another_thread_count(tmp_path):
    """The tile grid is part of a store's identity, so it must not depend on n_threads (a job started on
    2 threads resumes on 4, or under the default on another machine)."""
    X = np.random.default_rng(0).standard_normal((200, 4, 4, 2))
    arch = ResCNN(1, 0.5, readout="flatten")
    a = gram(arch, X, store=tmp_path / "job", n_threads=2)
    b = gram(arch, X, store=tmp_path / "job", n_threads=4)
    assert np.array_equal(a, b)
    assert len(_plan(arch, X, n_threads=1).tiles) == len(_plan(arch, X, n_threads=8).tiles) >= 10

"""The on-disk tile store under abuse: damaged files, two jobs on one store, interrupts.

A damaged store must give either the correct matrix (its damaged tiles recomputed, with a
StoreRepairWarning naming the file) or an error naming the file -- never a wrong entry."""
import json
import multiprocessing
import os
import signal
import threading
import time
import warnings

import numpy as np
import pytest

from reskernels.numerics import gram
from reskernels.numerics.gram import FCGramPlan
from reskernels.numerics.tiles import (StoreBusyError, StoreDamagedError, StoreRepairWarning, _tile_checksum,
                                       execute)
from reskernels.theory import ResNet

ARCH = ResNet(3, 0.5)
KW = dict(memory_budget=2**14, n_threads=1)      # 16 x 16 tiles: 10 tiles for 50 inputs


def _X(seed=0, n=50):
    return np.random.default_rng(seed).standard_normal((n, 5))


@pytest.fixture(scope="module")
def reference():
    return gram(ARCH, _X(), **KW)


def _finished_store(path):
    out = gram(ARCH, _X(), store=path, **KW)
    assert len(FCGramPlan(ARCH, _X(), **KW).tiles) == 10
    return out


def _data_offset(path):
    with open(path, "rb") as f:
        version = np.lib.format.read_magic(f)
        np.lib.format.read_array_header_1_0(f) if version == (1, 0) else np.lib.format.read_array_header_2_0(f)
        return f.tell()


def _truncate_half(p):
    os.truncate(p, os.path.getsize(p) // 2)


def _empty(p):
    os.truncate(p, 0)


def _garble_header(p):
    with open(p, "r+b") as f:
        f.write(b"\x00garbage{not a header")


def _garble_data(p):
    off = _data_offset(p)
    size = os.path.getsize(p)
    with open(p, "r+b") as f:
        f.seek(off)
        f.write(np.random.default_rng(5).integers(0, 256, size - off, dtype=np.uint8).tobytes())


def _flip_one_byte(p):
    off = _data_offset(p)
    with open(p, "r+b") as f:
        f.seek(off + (os.path.getsize(p) - off) // 3)
        b = f.read(1)
        f.seek(-1, 1)
        f.write(bytes([b[0] ^ 0x10]))


def _zero_one_block(p):
    """A finished tile's block set to 0 in gram.npy, its done entry left as it was."""
    plan = FCGramPlan(ARCH, _X(), **KW)
    i0, i1, j0, j1 = plan.tiles[4]
    a = np.lib.format.open_memmap(p, mode="r+")
    a[i0:i1, j0:j1] = 0.0
    a.flush()
    del a


def _append(p):
    with open(p, "ab") as f:
        f.write(b"\x01" * 100)


def _remove(p):
    os.remove(p)


def _legacy_done(p):
    """A store of the previous format (boolean done flags, no checksums) with a zeroed block."""
    np.save(p, np.ones(10, dtype=np.bool_))
    _zero_one_block(os.path.join(os.path.dirname(p), "gram.npy"))


REPAIRABLE = [
    ("gram.npy", _truncate_half), ("gram.npy", _empty), ("gram.npy", _garble_header),
    ("gram.npy", _zero_one_block), ("gram.npy", _flip_one_byte), ("gram.npy", _append),
    ("gram.npy", _remove), ("gram.npy", _garble_data),
    ("done.npy", _truncate_half), ("done.npy", _empty), ("done.npy", _garble_header),
    ("done.npy", _garble_data), ("done.npy", _append), ("done.npy", _remove), ("done.npy", _legacy_done),
]


@pytest.mark.parametrize("name,damage", REPAIRABLE, ids=[f"{n}-{d.__name__[1:]}" for n, d in REPAIRABLE])
def test_damaged_arrays_are_detected_named_and_recomputed(name, damage, reference, tmp_path):
    store = tmp_path / "job"
    assert np.array_equal(_finished_store(store), reference)
    damage(str(store / name))
    with pytest.warns(StoreRepairWarning) as rec:
        out = gram(ARCH, _X(), store=store, **KW)
    assert np.array_equal(out, reference)
    msg = " ".join(str(w.message) for w in rec)
    assert str(store) in msg
    if damage in (_zero_one_block, _flip_one_byte, _garble_data):
        assert "checksum" in msg      # the header and size are intact: the checksums find the block
    else:
        assert name in msg
    # repaired: the next run recomputes nothing and warns about nothing
    again = []
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = execute(FCGramPlan(ARCH, _X(), **KW), store=store, on_tile=again.append)
    assert again == [] and np.array_equal(FCGramPlan(ARCH, _X(), **KW).finish(out), reference)


def test_a_zeroed_block_costs_only_its_tile(reference, tmp_path):
    store = tmp_path / "job"
    _finished_store(store)
    _zero_one_block(str(store / "gram.npy"))
    redone = []
    with pytest.warns(StoreRepairWarning, match="1 of 10 tiles failed their checksum"):
        out = execute(FCGramPlan(ARCH, _X(), **KW), store=store, on_tile=redone.append)
    assert redone == [4]
    assert np.array_equal(FCGramPlan(ARCH, _X(), **KW).finish(out), reference)


def test_checksums_are_written_with_the_tiles(tmp_path):
    store = tmp_path / "job"
    _finished_store(store)
    plan = FCGramPlan(ARCH, _X(), **KW)
    done = np.load(store / "done.npy")
    out = np.load(store / "gram.npy")
    assert done.dtype == np.uint64
    assert all(done[k] == _tile_checksum(t, out[t[0]:t[1], t[2]:t[3]]) for k, t in enumerate(plan.tiles))


META_DAMAGE = {
    "garbage": lambda p: p.write_bytes(b"\x89PNG not json at all"),
    "truncated": lambda p: p.write_bytes(p.read_bytes()[: len(p.read_bytes()) // 2]),
    "empty": lambda p: p.write_bytes(b""),
    "not-an-object": lambda p: p.write_text("[1, 2, 3]"),
    "no-job-keys": lambda p: p.write_text(json.dumps({"hello": 1})),
}


@pytest.mark.parametrize("how", sorted(META_DAMAGE))
def test_damaged_meta_json_is_refused_naming_it(how, tmp_path):
    store = tmp_path / "job"
    _finished_store(store)
    META_DAMAGE[how](store / "meta.json")
    with pytest.raises(StoreDamagedError, match="meta.json") as ei:
        gram(ARCH, _X(), store=store, **KW)
    assert ei.value.path == os.path.join(str(store), "meta.json")
    assert isinstance(ei.value, ValueError) and str(store) in str(ei.value)


def test_missing_meta_json_starts_the_job_over(reference, tmp_path):
    store = tmp_path / "job"
    _finished_store(store)
    os.remove(store / "meta.json")         # meta is written last: without it the store is new
    assert np.array_equal(gram(ARCH, _X(), store=store, **KW), reference)


# --- one job per store ------------------------------------------------------------------

def test_second_job_on_a_busy_store_is_refused_naming_it(reference, tmp_path):
    store = tmp_path / "job"
    inside, release, result = threading.Event(), threading.Event(), {}

    def pause(k):
        if not inside.is_set():
            inside.set()
            assert release.wait(30)

    def first():
        result["out"] = execute(FCGramPlan(ARCH, _X(), **KW), store=store, on_tile=pause)

    t = threading.Thread(target=first)
    t.start()
    try:
        assert inside.wait(30)
        for X in (_X(), _X(1)):            # the same job and another one: both refused while it runs
            with pytest.raises(StoreBusyError, match="in use by another job") as ei:
                gram(ARCH, X, store=store, **KW)
            assert str(store) in str(ei.value) and ei.value.store == str(store)
            assert f"pid {os.getpid()}" in str(ei.value)
    finally:
        release.set()
        t.join(60)
    assert np.array_equal(FCGramPlan(ARCH, _X(), **KW).finish(result["out"]), reference)
    # the lock goes with the job: the store is free again
    assert np.array_equal(gram(ARCH, _X(), store=store, **KW), reference)


def _racer(store, seed, barrier, queue):
    try:
        barrier.wait(30)
        out = gram(ARCH, _X(seed, 120), store=store, **KW)
        queue.put((seed, "ok", out))
    except (StoreBusyError, ValueError) as exc:
        queue.put((seed, type(exc).__name__, str(exc)))
    except BaseException as exc:  # pragma: no cover - reported to the parent
        queue.put((seed, "unexpected", repr(exc)))


@pytest.mark.skipif("fork" not in multiprocessing.get_all_start_methods(), reason="needs fork")
def test_two_processes_racing_on_a_fresh_store_never_mix(tmp_path):
    ctx = multiprocessing.get_context("fork")
    refs = {s: gram(ARCH, _X(s, 120), **KW) for s in (1, 2)}
    for rnd in range(6):
        store = str(tmp_path / f"race{rnd}")
        barrier, queue = ctx.Barrier(2), ctx.Queue()
        procs = [ctx.Process(target=_racer, args=(store, s, barrier, queue)) for s in (1, 2)]
        for p in procs:
            p.start()
        got = [queue.get(timeout=120) for _ in procs]
        for p in procs:
            p.join(60)
        oks = [g for g in got if g[1] == "ok"]
        assert oks, got
        for seed, status, payload in got:
            if status == "ok":
                assert np.array_equal(payload, refs[seed]), (rnd, seed)
            else:
                assert status in ("StoreBusyError", "ValueError"), payload
                assert store in payload and ("in use by another job" in payload or "different job" in payload)
        winner = oks[0][0]     # the store holds the winner's job, complete and unmixed
        assert np.array_equal(gram(ARCH, _X(winner, 120), store=store, **KW), refs[winner])


# --- interrupts ---------------------------------------------------------------------------

class _SlowPlan(FCGramPlan):
    """A plan whose blocks take a while, counting the blocks started."""
    delay = 0.05

    def __init__(self, *a, on_start=None, **kw):
        super().__init__(*a, **kw)
        self.started = []
        self.on_start = on_start
        self._count = threading.Lock()

    def block(self, tile):
        with self._count:
            self.started.append(tile)
            n = len(self.started)
        if self.on_start is not None:
            self.on_start(n)
        time.sleep(self.delay)
        return super().block(tile)


SLOW_KW = dict(memory_budget=2**15, n_threads=2)     # 2 threads, 16 x 16 tiles: 36 tiles for 120 inputs


def test_interrupt_of_a_threaded_store_job_stops_promptly_and_resumes(tmp_path):
    X = _X(3, 120)
    plan = _SlowPlan(ARCH, X, **SLOW_KW)
    total = len(plan.tiles)
    assert plan.threads == 2 and total == 36
    written = []

    def interrupt_after_three(k):
        written.append(k)
        if len(written) == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        execute(plan, store=tmp_path / "job", on_tile=interrupt_after_three)
    # stopped: the blocks not started were cancelled (at most one running per thread finishes);
    # before, all 36 blocks ran before the interrupt came through
    assert len(plan.started) <= 3 + 2 * plan.threads, len(plan.started)
    again = []
    out = execute(FCGramPlan(ARCH, X, **SLOW_KW), store=tmp_path / "job", on_tile=again.append)
    assert len(again) == total - 3 and not set(again) & set(written)
    assert np.array_equal(plan.finish(out), gram(ARCH, X, **SLOW_KW))


@pytest.mark.skipif(not hasattr(signal, "SIGINT") or os.name != "posix", reason="POSIX signals")
def test_ctrl_c_while_waiting_for_threads_stops_promptly(tmp_path):
    """A real SIGINT arriving while the main thread waits for a tile (the Ctrl-C of the finding)."""
    if signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        pytest.skip("SIGINT is handled by someone else here")
    X = _X(4, 120)

    def ctrl_c_at_the_fifth_block(n):
        if n == 5:
            os.kill(os.getpid(), signal.SIGINT)

    plan = _SlowPlan(ARCH, X, on_start=ctrl_c_at_the_fifth_block, **SLOW_KW)
    plan.delay = 0.2                     # the whole job: 36 x 0.2 s / 2 threads = 3.6 s
    written = []
    t0 = time.perf_counter()
    with pytest.raises(KeyboardInterrupt):
        execute(plan, store=tmp_path / "job", on_tile=written.append)
    assert time.perf_counter() - t0 < 3.0
    assert len(plan.started) <= 5 + 2 * plan.threads, len(plan.started)
    again = []
    out = execute(FCGramPlan(ARCH, X, **SLOW_KW), store=tmp_path / "job", on_tile=again.append)
    assert sorted(again + written) == list(range(len(plan.tiles)))
    assert np.array_equal(plan.finish(out), gram(ARCH, X, **SLOW_KW))

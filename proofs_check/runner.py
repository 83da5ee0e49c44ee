"""Run claims: selection, progress display, deterministic order.

The live line of a running claim shows its elapsed time against the measured estimate
(``proofs_check/data/timings.json``) and the latest progress report of the check
(:meth:`Verdict.progress <reskernels.proofs_check.verdict.Verdict.progress>`), refreshed every
second on a terminal.  Off a terminal (a log file, a pipe) only the finished lines are written.
"""
from __future__ import annotations

import sys
import threading
import time

from .registry import REGISTRY, load_all, resolve_papers, timings


def select(only=None, papers=None):
    """Claims by id (``only``) and/or paper name (any case; ``background`` is a group), in registry order."""
    load_all()
    ids = list(REGISTRY)
    if only:
        unknown = [i for i in only if i not in REGISTRY]
        if unknown:
            raise ValueError(f"unknown claim id(s): {', '.join(unknown)}; see `reskernels list`")
        ids = [i for i in ids if i in set(only)]
    if papers:
        keys = resolve_papers(papers)
        ids = [i for i in ids if REGISTRY[i].paper in keys]
    return [REGISTRY[i] for i in ids]


def estimate_total(claims, level: str):
    """(seconds, all measured): the summed single-claim estimates of ``claims`` at ``level``
    (None when some claim has no estimate at that level)."""
    total, measured = 0.0, True
    for c in claims:
        s, m = c.estimate(level)
        if s is None:
            return None, False
        total += s
        measured &= m
    return total, measured


def _fmt_s(s):
    if s is None:
        return "?"
    if s < 10:
        return f"{s:.1f} s"
    return f"{s:.0f} s" if s < 120 else f"{s / 60:.1f} min"


class _LiveLine:
    """One claim's status line: elapsed time, estimate and the check's latest progress report."""

    def __init__(self, stream, prefix, estimate, tty):
        self.stream, self.prefix, self.estimate, self.tty = stream, prefix, estimate, tty
        self.t0 = time.perf_counter()
        self.what = "running"
        self.width = 0
        self.lock = threading.Lock()
        self.done = threading.Event()

    def text(self):
        el = time.perf_counter() - self.t0
        est = "" if self.estimate is None else f" of ~{_fmt_s(self.estimate)}"
        return f"{self.prefix} {self.what} ... {el:5.0f} s{est}"

    def draw(self):
        if not self.tty:
            return
        with self.lock:
            t = self.text()
            self.stream.write("\r" + t.ljust(self.width))
            self.width = len(t)
            self.stream.flush()

    def progress(self, step, total, what):
        frac = f"{step}/{total}" if total else f"{step}"
        self.what = f"step {frac}" + (f" ({what})" if what else "")
        self.draw()

    def ticker(self):
        while not self.done.wait(1.0):
            self.draw()

    def finish(self, text):
        self.done.set()
        with self.lock:
            if self.tty:
                self.stream.write("\r" + text.ljust(self.width) + "\n")
            else:
                self.stream.write(text + "\n")
            self.stream.flush()


def run(claims, level: str = "quick", progress: bool = True, stream=None):
    """Run ``claims`` and return their verdicts; with ``progress``, one live line per claim."""
    stream = stream or sys.stderr
    tty = bool(getattr(stream, "isatty", lambda: False)())
    out = []
    t0 = time.perf_counter()
    n = len(claims)
    if progress:
        total, measured = estimate_total(claims, level)
        how = "CPU time of each claim run alone, measured" if measured else "partly unmeasured guesses"
        head = f"reskernels check: {n} claim(s) in {level} mode"
        if total is not None:
            head += f", estimated ~{_fmt_s(total)} ({how})"
        whole = timings().get("check", {}).get(level)
        if whole and n == len(REGISTRY):
            head += (f"; the whole check took {_fmt_s(whole['cpu_s'])} CPU, {_fmt_s(whole['wall_s'])} wall "
                     "when measured on a shared machine")
        print(head, file=stream, flush=True)
    for i, c in enumerate(claims, 1):
        est, _ = c.estimate(level)
        line = None
        if progress:
            line = _LiveLine(stream, f"[{i:>2}/{n}] {c.id:<28}", est, tty)
            line.draw()
            if tty:
                threading.Thread(target=line.ticker, daemon=True).start()
        v = c.run(level, on_progress=line.progress if line else None)
        out.append(v)
        if line:
            line.finish(f"[{i:>2}/{n}] {c.id:<28} {v.status:<15} {v.runtime_s:6.1f} s ({v.cpu_s:5.1f} s CPU)"
                        f"   (elapsed {time.perf_counter() - t0:6.1f} s)")
    return out

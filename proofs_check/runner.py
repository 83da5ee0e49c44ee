"""Run claims: selection, progress display, deterministic order."""
from __future__ import annotations

import sys
import time

from .registry import REGISTRY, load_all


def select(only=None, papers=None):
    """Claims by id (``only``) and/or paper name, in registry order."""
    load_all()
    ids = list(REGISTRY)
    if only:
        unknown = [i for i in only if i not in REGISTRY]
        if unknown:
            raise ValueError(f"unknown claim id(s): {', '.join(unknown)}; see `reskernels list`")
        ids = [i for i in ids if i in set(only)]
    if papers:
        papers = [p.lower() for p in papers]
        bad = [p for p in papers if p not in {c.paper for c in REGISTRY.values()}]
        if bad:
            raise ValueError(f"unknown paper(s): {', '.join(bad)}; known: "
                             f"{', '.join(sorted({c.paper for c in REGISTRY.values()}))}")
        ids = [i for i in ids if REGISTRY[i].paper in papers]
    return [REGISTRY[i] for i in ids]


def run(claims, level: str = "quick", progress: bool = True, stream=None):
    """Run ``claims`` and return their verdicts; prints one live line per claim."""
    stream = stream or sys.stderr
    out = []
    t0 = time.perf_counter()
    n = len(claims)
    for i, c in enumerate(claims, 1):
        if progress:
            print(f"[{i:>2}/{n}] {c.id:<28} running ...", end="\r", file=stream, flush=True)
        v = c.run(level)
        out.append(v)
        if progress:
            print(f"[{i:>2}/{n}] {c.id:<28} {v.status:<15} {v.runtime_s:6.1f} s"
                  f"   (elapsed {time.perf_counter() - t0:6.1f} s)", file=stream, flush=True)
    return out

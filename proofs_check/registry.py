"""The claim registry: claim id -> metadata and check function.

A check is a function ``check(v: Verdict, level: str, expect: dict) -> None`` that
fills ``v`` with measurements (and, where the claim is scoped, sets status/scope).
``expect`` holds the expected quantities (exponents, constants, tables) with the
claim's defaults; tests pass deliberately wrong values there to show that every
check can fail.
"""
from __future__ import annotations

import time
import traceback
from dataclasses import dataclass, field
from typing import Callable

from .verdict import Verdict

PAPERS = {
    "belfer": "Belfer, Geifman, Galun, Basri 2021 -- Spectral analysis of the NTK for deep residual networks (arXiv 2104.03093)",
    "huang": "Huang, Wang, Tao, Zhao 2020 -- Why do deep residual networks generalize better than deep feedforward networks? (arXiv 2002.06262)",
    "tirer": "Tirer, Bruna, Giryes -- Kernel-based smoothness analysis of residual networks (arXiv 2009.10008)",
    "littwin": "Littwin et al. -- finite-width corrections of ResNet kernels",
    "barzilai": "Barzilai et al. 2023 -- Kernels of convolutional residual networks (ICLR 2023)",
    "background": "Background: Arora et al. 2019, Bietti & Bach 2021, Geifman et al. 2020/2022; suite-level numerics",
}


@dataclass
class Claim:
    id: str
    paper: str
    section: str
    statement: str
    provenance: str
    conventions: str
    check: Callable | None
    defaults: dict = field(default_factory=dict)
    quick_seconds: float = 1.0  # rough cost in quick mode, for the progress display

    def run(self, level: str = "quick", expect: dict | None = None) -> Verdict:
        v = Verdict(self.id, self.paper, self.statement, self.provenance, self.conventions,
                    level=level)
        t0 = time.perf_counter()
        if self.check is None:
            v.status = "not-checkable"
            v.summary = self.defaults.get("reason", "no numerical content under the contract")
        else:
            params = dict(self.defaults)
            params.update(expect or {})
            try:
                self.check(v, level, params)
                v.decide()
            except Exception as exc:  # a bug in a check is reported, not hidden
                v.status = "error"
                v.summary = f"{type(exc).__name__}: {exc}"
                v.extra["traceback"] = traceback.format_exc()
        v.runtime_s = time.perf_counter() - t0
        return v


REGISTRY: dict[str, Claim] = {}


def claim(id: str, paper: str, section: str, statement: str, provenance: str,
          conventions: str, quick_seconds: float = 1.0, **defaults):
    """Decorator registering a check function under a claim id."""
    if paper not in PAPERS:
        raise ValueError(f"unknown paper {paper!r}; known: {sorted(PAPERS)}")

    def deco(fn):
        if id in REGISTRY:
            raise ValueError(f"claim {id} registered twice")
        REGISTRY[id] = Claim(id, paper, section, statement, provenance, conventions, fn,
                             defaults, quick_seconds)
        return fn

    return deco


def record(id: str, paper: str, section: str, statement: str, provenance: str, reason: str):
    """Register a claim that is recorded but not numerically checkable."""
    REGISTRY[id] = Claim(id, paper, section, statement, provenance, "-", None, {"reason": reason}, 0.0)


def load_all():
    """Import every claim module (they register themselves)."""
    from . import claims  # noqa: F401
    return REGISTRY

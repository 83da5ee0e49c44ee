"""The claim registry: claim id -> metadata and check function.

A check is a function ``check(v: Verdict, level: str, expect: dict) -> None`` that
fills ``v`` with measurements (and, where the claim is scoped, sets status/scope).
``expect`` holds the expected quantities (exponents, constants, tables) with the
claim's defaults; tests pass deliberately wrong values there to show that every
check can fail.

Papers (:data:`PAPERS`) are cited by title, arXiv id and the section of ``docs/papers.md`` that
reads them; the bibliographic records are those of ``docs/papers.md`` ("The papers at a glance").
A claim's paper is the prefix of its id (``BIETTI-ENDPOINT`` -> ``bietti``); ``background`` is a
group name for the background papers and the suite-level numerics (``docs/papers.md`` §8, §9).
"""
from __future__ import annotations

import time
import traceback
from dataclasses import dataclass, field
from typing import Callable

from .verdict import Verdict


@dataclass(frozen=True)
class Paper:
    """A paper as the report cites it (``docs/papers.md`` holds the team's reading of it)."""

    key: str
    authors: str
    year: str
    title: str
    venue: str
    arxiv: str | None
    section: str  # the section of docs/papers.md

    def citation(self) -> str:
        """``Authors (year), "Title", venue, arXiv:id -- docs/papers.md §n``."""
        if self.arxiv is None:
            return f"{self.title} -- docs/papers.md {self.section}"
        return (f'{self.authors} ({self.year}), "{self.title}", {self.venue}, arXiv:{self.arxiv} '
                f"-- docs/papers.md {self.section}")

    def __str__(self) -> str:
        return self.citation()


PAPERS: dict[str, Paper] = {p.key: p for p in (
    Paper("belfer", "Belfer, Geifman, Galun, Basri", "2021",
          "Spectral Analysis of the Neural Tangent Kernel for Deep Residual Networks",
          "arXiv preprint", "2104.03093", "§3"),
    Paper("huang", "Huang, Wang, Tao, Zhao", "2020",
          "Why Do Deep Residual Networks Generalize Better than Deep Feedforward Networks? "
          "-- A Neural Tangent Kernel Perspective", "NeurIPS 2020", "2002.06262", "§4"),
    Paper("tirer", "Tirer, Bruna, Giryes", "2020/2021", "Kernel-Based Smoothness Analysis of Residual Networks",
          "MSML 2021 (PMLR 145)", "2009.10008", "§5"),
    Paper("littwin", "Littwin, Galanti, Wolf", "2020/2021",
          "On Random Kernels of Residual Architectures (earlier arXiv versions: Residual Tangent Kernels)",
          "UAI 2021 (venue recalled, not verified)", "2001.10460", "§6"),
    Paper("barzilai", "Barzilai, Geifman, Galun, Basri", "2022/2023",
          "A Kernel Perspective of Skip Connections in Convolutional Networks", "ICLR 2023", "2211.14810", "§7"),
    Paper("arora", "Arora, Du, Hu, Li, Salakhutdinov, Wang", "2019",
          "On Exact Computation with an Infinitely Wide Neural Net", "NeurIPS 2019", "1904.11955", "§8.1"),
    Paper("geifman", "Geifman, Galun, Jacobs, Basri", "2022",
          "On the Spectral Bias of Convolutional Neural Tangent and Gaussian Process Kernels", "NeurIPS 2022",
          "2203.09255", "§8.2"),
    Paper("bietti", "Bietti, Bach", "2021", "Deep Equals Shallow for ReLU Networks in Kernel Regimes", "ICLR 2021",
          "2009.14397", "§8.3"),
    Paper("num", "-", "-", "Suite-level numerical claims of reskernels (no paper)", "-", None, "§9"),
)}

#: group names accepted by ``--paper``: each selects several papers
PAPER_GROUPS = {"background": ("arora", "geifman", "bietti", "num")}
#: other spellings accepted by ``--paper`` (case-insensitive)
PAPER_ALIASES = {"geifman22": "geifman", "numerics": "num", "suite": "num"}


def paper_of(claim_id: str, declared: str) -> str:
    """The paper key of a claim: the prefix of its id when that names a paper, else ``declared``."""
    prefix = claim_id.split("-", 1)[0].lower()
    if prefix in PAPERS:
        return prefix
    if declared in PAPERS:
        return declared
    raise ValueError(f"claim {claim_id}: unknown paper {declared!r}; known: {sorted(PAPERS)}")


def resolve_papers(names) -> set[str]:
    """``--paper`` names (any case; groups and aliases) -> paper keys; ValueError naming the known ones."""
    out, bad = set(), []
    for n in names:
        k = n.strip().lower()
        k = PAPER_ALIASES.get(k, k)
        if k in PAPER_GROUPS:
            out.update(PAPER_GROUPS[k])
        elif k in PAPERS:
            out.add(k)
        else:
            bad.append(n)
    if bad:
        known = ", ".join(list(PAPERS) + [f"{g} (= {' + '.join(m)})" for g, m in PAPER_GROUPS.items()])
        raise ValueError(f"unknown paper(s): {', '.join(bad)}; known: {known}")
    return out


_TIMINGS = None


def timings() -> dict:
    """The measured run times (``proofs_check/data/timings.json``, written by
    ``benchmarks/claim_timings.py``); ``{}`` when the table is missing or unreadable."""
    global _TIMINGS
    if _TIMINGS is None:
        import json
        import os
        path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "timings.json")
        try:
            with open(path) as fh:
                _TIMINGS = json.load(fh)
        except (OSError, ValueError):
            _TIMINGS = {}
    return _TIMINGS


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
    quick_seconds: float = 1.0  # the author's guess; measured times (timings()) take precedence

    def estimate(self, level: str = "quick") -> tuple[float | None, bool]:
        """(seconds, measured): the CPU seconds of this claim run alone at ``level`` from the timing
        table (measured = True; about the wall time on an otherwise idle machine, more when the cores
        are shared), else the declared guess for quick mode (measured = False; None for full)."""
        if self.check is None:
            return 0.0, True
        row = timings().get("claims", {}).get(self.id, {}).get(level)
        if row and row.get("cpu_s") is not None:
            return max(float(row["cpu_s"]), 0.1), True
        return (float(self.quick_seconds) if level == "quick" else None), False

    @property
    def citation(self) -> str:
        return f"{PAPERS[self.paper].citation()}, {self.id}"

    def run(self, level: str = "quick", expect: dict | None = None, on_progress=None) -> Verdict:
        """Run the check; ``on_progress(step, total, what)`` receives the check's progress reports."""
        from . import common
        v = Verdict(self.id, self.paper, self.statement, self.provenance, self.conventions,
                    level=level, section=self.section)
        v._on_progress = on_progress
        t0, c0 = time.perf_counter(), time.process_time()
        if self.check is None:
            v.status = "not-checkable"
            v.summary = self.defaults.get("reason", "no numerical content under the conventions")
        else:
            params = dict(self.defaults)
            params.update(expect or {})
            previous, common._CURRENT = common._CURRENT, v
            try:
                self.check(v, level, params)
                if not expect:   # the claim's own conventions: map where it holds over the open ones
                    from .scope import attach
                    attach(v, level)
                v.decide()
            except Exception as exc:  # a bug in a check is reported, not hidden
                v.status = "error"
                v.summary = f"{type(exc).__name__}: {exc}"
                v.extra["traceback"] = traceback.format_exc()
            finally:
                common._CURRENT = previous
        v._on_progress = None
        v.runtime_s = time.perf_counter() - t0
        v.cpu_s = time.process_time() - c0
        return v


REGISTRY: dict[str, Claim] = {}


def claim(id: str, paper: str, section: str, statement: str, provenance: str,
          conventions: str, quick_seconds: float = 1.0, **defaults):
    """Decorator registering a check function under a claim id (its paper: see :func:`paper_of`)."""
    paper = paper_of(id, paper)

    def deco(fn):
        if id in REGISTRY:
            raise ValueError(f"claim {id} registered twice")
        REGISTRY[id] = Claim(id, paper, section, statement, provenance, conventions, fn,
                             defaults, quick_seconds)
        return fn

    return deco


def record(id: str, paper: str, section: str, statement: str, provenance: str, reason: str):
    """Register a claim that is recorded but not numerically checkable."""
    REGISTRY[id] = Claim(id, paper_of(id, paper), section, statement, provenance, "-", None, {"reason": reason}, 0.0)


def load_all():
    """Import every claim module (they register themselves)."""
    from . import claims  # noqa: F401
    return REGISTRY

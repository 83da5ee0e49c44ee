"""Structured verdicts: what a claim check found, under which conventions, with the numbers.

Status values:

* ``holds``          -- every measurement passed its criterion;
* ``holds-in-scope`` -- the claim holds in a stated scope and fails (as a finding) outside it;
* ``fails``          -- a measurement contradicts the claim as formulated under our conventions;
* ``inconclusive``   -- the numbers cannot decide (e.g. precision self-consistency lost);
* ``not-checkable``  -- recorded only (no numerical content under the conventions of docs/conventions.md);
* ``error``          -- the check itself raised (a bug, not a finding).
"""
from __future__ import annotations

import math

import numpy as np
from dataclasses import asdict, dataclass, field
from typing import Any

STATUSES = ("holds", "holds-in-scope", "fails", "inconclusive", "not-checkable", "error")


def _jsonable(x):
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (bool, int, str)) or x is None:
        return x
    try:
        f = float(x)
    except (TypeError, ValueError):
        return str(x)
    return f if math.isfinite(f) else str(f)


@dataclass
class Measurement:
    """One quantity: what was measured, what was expected, and the criterion."""

    name: str
    value: Any
    expected: Any
    passed: bool
    criterion: str  # e.g. "|x - e| <= 5e-4"
    tolerance_reason: str = ""
    kind: str = "float64"  # exact | mp | float64 | quadrature | asymptotic | montecarlo | table
    se: Any = None  # Monte Carlo: the standard error(s) the criterion uses (a number, or the largest of several)

    def to_dict(self):
        d = asdict(self)
        d["value"] = _jsonable(self.value)
        d["expected"] = _jsonable(self.expected)
        return d


@dataclass
class Verdict:
    claim_id: str
    paper: str
    statement: str
    provenance: str
    conventions: str
    status: str | None = None  # None until decided; a check may set it explicitly
    scope: str = ""
    summary: str = ""
    measurements: list[Measurement] = field(default_factory=list)
    runtime_s: float = 0.0
    level: str = "quick"
    figure: str | None = None
    extra: dict = field(default_factory=dict)
    section: str = ""  # where docs/papers.md states the claim, e.g. "§8.3 claim 1"
    cpu_s: float = 0.0  # CPU seconds of the process (all threads) while the check ran

    _on_progress = None  # set by the runner while the check runs (not a field: never serialised)

    def add(self, name, value, expected, passed, criterion, tolerance_reason="", kind="float64", se=None):
        """Record one measurement; ``se`` is the Monte Carlo standard error the criterion uses."""
        if se is not None:
            se = float(se) if np.ndim(se) == 0 else float(np.max(se))
        m = Measurement(name, value, expected, bool(passed), criterion, tolerance_reason, kind, se)
        self.measurements.append(m)
        return m

    def progress(self, step, total=None, what: str = "") -> None:
        """Report progress inside a long check (step ``step`` of ``total``, doing ``what``); the runner
        shows it on the claim's live line.  Cheap, and a no-op when nobody listens."""
        cb = self._on_progress
        if cb is not None:
            try:
                cb(step, total, what)
            except Exception:  # a display problem must never break a check
                pass

    @property
    def all_passed(self) -> bool:
        return all(m.passed for m in self.measurements) and bool(self.measurements)

    def decide(self) -> "Verdict":
        """Unless the check set a status itself: ``holds`` when every measurement
        passed, ``fails`` when one did not, ``inconclusive`` when there are none."""
        if self.status is None:
            if not self.measurements:
                self.status = "inconclusive"
            else:
                self.status = "holds" if self.all_passed else "fails"
        if self.status not in STATUSES:
            raise ValueError(f"unknown status {self.status!r}")
        return self

    def to_dict(self):
        d = asdict(self)
        d["measurements"] = [m.to_dict() for m in self.measurements]
        d["extra"] = _jsonable(self.extra)
        return d

"""Reports: terminal summary table, JSON verdicts, Markdown report with figures."""
from __future__ import annotations

import datetime
import json
import os
import platform

from .figures import FIGURES


def versions() -> dict:
    import matplotlib
    import mpmath
    import numpy
    import scipy
    import sympy
    from importlib.metadata import PackageNotFoundError, version
    try:
        own = version("reskernels")
    except PackageNotFoundError:  # running from a checkout
        own = "checkout"
    return {"reskernels": own, "python": platform.python_version(), "numpy": numpy.__version__,
            "scipy": scipy.__version__, "sympy": sympy.__version__, "mpmath": mpmath.__version__,
            "matplotlib": matplotlib.__version__}


def summary_table(verdicts) -> str:
    rows = [("claim", "paper", "status", "time", "finding")]
    for v in verdicts:
        finding = v.summary or v.scope or (
            "; ".join(m.name for m in v.measurements if not m.passed)[:70] if v.status == "fails" else "")
        rows.append((v.claim_id, v.paper, v.status, f"{v.runtime_s:.1f}s", finding[:70]))
    w = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = ["  ".join(r[i].ljust(w[i]) for i in range(4)) + "  " + r[4] for r in rows]
    lines.insert(1, "-" * (sum(w) + 8 + 20))
    counts = {}
    for v in verdicts:
        counts[v.status] = counts.get(v.status, 0) + 1
    lines.append("")
    lines.append("  ".join(f"{k}: {n}" for k, n in sorted(counts.items())))
    return "\n".join(lines)


def write_json(verdicts, path, level, meta=None):
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    doc = {"level": level, "created": datetime.datetime.now(datetime.timezone.utc).isoformat(),
           "versions": versions(), "meta": meta or {}, "verdicts": [v.to_dict() for v in verdicts]}
    with open(path, "w") as fh:
        json.dump(doc, fh, indent=1)
    return path


def _fmt(x, n=8):
    if isinstance(x, float):
        return f"{x:.{n}g}"
    if isinstance(x, (list, tuple)):
        inner = ", ".join(_fmt(y, 6) for y in x[:8])
        return "[" + inner + (", ..." if len(x) > 8 else "") + "]"
    if isinstance(x, dict):
        return "{" + ", ".join(f"{k}: {_fmt(y, 5)}" for k, y in list(x.items())[:6]) + "}"
    return str(x)


def write_markdown(verdicts, outdir, level, figures: bool = True):
    os.makedirs(outdir, exist_ok=True)
    figdir = os.path.join(outdir, "figures")
    lines = ["# reskernels claim report", "",
             f"Level: `{level}`. Created {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M UTC}.",
             "", "Versions: " + ", ".join(f"{k} {v}" for k, v in versions().items()), "",
             "Conventions (docs/conventions.md): bias-free ReLU networks in the NTK parameterisation, width -> inf; "
             "input_var = 1 and weight_var = 2 unless a claim says otherwise. Seeds are fixed in each check, "
             "so verdicts are deterministic.", "",
             "Status: `holds` (every measurement passed), `holds-in-scope` (holds where stated), "
             "`fails` (a finding, not an error), `inconclusive`, `not-checkable`, `error` (a bug).", "",
             "## Summary", "", "| claim | paper | status | time | finding |", "|---|---|---|---|---|"]
    for v in verdicts:
        lines.append(f"| [{v.claim_id}](#{v.claim_id.lower()}) | {v.paper} | **{v.status}** | "
                     f"{v.runtime_s:.1f} s | {(v.summary or v.scope)[:120]} |")
    for v in verdicts:
        lines += ["", f"## {v.claim_id}", "", f"**{v.status}** -- {v.statement}", "",
                  f"- paper: {v.paper}; provenance: {v.provenance}",
                  f"- conventions: {v.conventions}"]
        if v.scope:
            lines.append(f"- scope: {v.scope}")
        if v.summary:
            lines.append(f"- finding: {v.summary}")
        if v.measurements:
            lines += ["", "| measurement | value | expected | criterion | why this tolerance | kind | pass |",
                      "|---|---|---|---|---|---|---|"]
            for m in v.measurements:
                lines.append(f"| {m.name} | {_fmt(m.value)} | {_fmt(m.expected)} | {m.criterion} | "
                             f"{m.tolerance_reason} | {m.kind} | {'yes' if m.passed else '**no**'} |")
        if figures and v.claim_id in FIGURES and v.status != "error":
            os.makedirs(figdir, exist_ok=True)
            path = os.path.join(figdir, f"{v.claim_id.lower()}.png")
            try:
                FIGURES[v.claim_id](v, path)
                v.figure = os.path.relpath(path, outdir)
                lines += ["", f"![{v.claim_id}]({v.figure})"]
            except Exception as exc:  # a figure must never hide a verdict
                lines += ["", f"(figure failed: {type(exc).__name__}: {exc})"]
    path = os.path.join(outdir, "report.md")
    with open(path, "w") as fh:
        fh.write("\n".join(lines) + "\n")
    return path

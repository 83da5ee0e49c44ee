"""Reports: terminal summary table, JSON verdicts, Markdown report with figures.

A run of every claim writes ``DIR/report.md``, ``DIR/verdicts.json`` and ``DIR/figures/``; a run of
some claims only (``--only``, ``--paper``) writes the same files under ``DIR/partial/`` and leaves the
full report alone (:func:`output_dir`).  Figures a run does not produce are removed from its figure
folder, so no figure outlives the run that made it.
"""
from __future__ import annotations

import datetime
import glob
import json
import os
import platform
import re
import shutil

from .figures import FIGURES, FigureSpec
from .registry import PAPERS

#: the provenance tags of docs/papers.md ("Provenance tags"), as the report defines them
TAGS = {
    "abstract": "the gist is stated in the paper's abstract; the precise form checked is the team's",
    "derived": "derived by the team and checked numerically by at least two independent routes; correct "
               "for the stated conventions, not confirmed to be the paper's notation",
    "recalled": "recalled from the paper or a secondary source and not checked against the text; never a "
                "pass/fail target on its own",
    "unknown": "not established; the check only records what the suite computes",
}

#: what the ``kind`` of a measurement says about its numbers
KINDS = {
    "exact": "exact (rational or symbolic) arithmetic",
    "mp": "mpmath at the stated precision",
    "float64": "double precision",
    "quadrature": "numerical quadrature (rule refined until it agrees with its doubling)",
    "asymptotic": "an asymptotic law compared at finite k (error term stated)",
    "montecarlo": "finite-width random networks: statistical, with the standard error or bootstrap "
                  "interval the criterion uses (a row over several kernel entries shows the largest entry's "
                  "s.e.)",
    "table": "compared with a reference table of docs/papers.md",
}

STATUS_TEXT = ("`holds` (every measurement passed), `holds-in-scope` (holds where the scope line says, "
               "fails as a finding outside it), `fails` (a finding under the stated conventions, not an "
               "error), `inconclusive` (the numbers cannot decide), `not-checkable` (recorded only, with "
               "the reason), `error` (the check itself raised: a bug).")


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


def shorten(text: str, width: int) -> str:
    """``text`` cut at a word boundary to at most ``width`` characters, '...' marking a cut."""
    text = " ".join(str(text).split())
    if len(text) <= width:
        return text
    cut = text[:width - 3]
    if " " in cut and not text[width - 3].isspace():
        cut = cut[:cut.rfind(" ")]
    return cut.rstrip(" ,;:") + "..."


def _finding(v) -> str:
    if v.summary or v.scope:
        return v.summary or v.scope
    if v.status == "fails":
        return "failed: " + "; ".join(m.name for m in v.measurements if not m.passed)
    return ""


def level_line(level: str) -> str:
    if level == "full":
        return "Level: full (the larger grids, precisions and sample counts)."
    return "Level: quick (the default; `--full` runs the larger grids, precisions and sample counts)."


def summary_table(verdicts, level: str | None = None, width: int = 60) -> str:
    """The terminal table: one row per claim, the finding cut at a word boundary."""
    rows = [("claim", "paper", "status", "time", "finding")]
    for v in verdicts:
        rows.append((v.claim_id, v.paper, v.status, f"{v.runtime_s:.1f}s", shorten(_finding(v), width)))
    w = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = ["  ".join(r[i].ljust(w[i]) for i in range(4)) + "  " + r[4] for r in rows]
    lines.insert(1, "-" * (sum(w) + 8 + min(width, max(len(r[4]) for r in rows))))
    counts = {}
    for v in verdicts:
        counts[v.status] = counts.get(v.status, 0) + 1
    lines.append("")
    lines.append("  ".join(f"{k}: {n}" for k, n in sorted(counts.items())))
    if level:
        lines.insert(0, level_line(level))
        lines.insert(1, "")
    return "\n".join(lines)


def output_dir(outdir: str, partial: bool) -> str:
    """Where a run writes: ``outdir`` for a run of every claim, ``outdir/partial`` otherwise."""
    return os.path.join(outdir, "partial") if partial else outdir


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
        return "{" + ", ".join(f"{k}: {_fmt(y, 5)}" for k, y in list(x.items())[:6]) + \
            (", ..." if len(x) > 6 else "") + "}"
    return str(x)


def _cell(x) -> str:
    return str(x).replace("|", "\\|").replace("\n", " ")


def _se_text(m) -> str:
    """The statistical part of a Monte Carlo row: the standard error its criterion uses."""
    if m.kind != "montecarlo":
        return ""
    if m.se is not None:
        return f"s.e. = {m.se:.3g}"
    if "s.e." in m.criterion:
        return "s.e. not recorded by the check"
    return "no s.e.: the criterion uses bootstrap replicates (interval or fraction shown)"


def _tags(provenance: str) -> str:
    """The provenance with each [tag] linked to its definition in the report's header."""
    def link(mo):
        words = [w.strip() for w in re.split(r"[,+]", mo.group(1))]
        if all(w in TAGS for w in words):
            return "[" + ", ".join(f"[{w}](#tag-{w})" for w in words) + "]"
        return mo.group(0)
    return re.sub(r"\[([a-z ,+]+)\]", link, provenance)


def _anchor(text: str) -> str:
    return re.sub(r"[^a-z0-9 -]", "", text.lower()).replace(" ", "-")


def _source_line(v) -> str:
    p = PAPERS.get(v.paper)
    if p is None:
        return f"- source: {v.paper}"
    where = f"docs/papers.md {p.section}, heading {v.claim_id}" + (f" ({v.section})" if v.section else "")
    if p.arxiv is None:
        return f"- source: {p.title}; {where}"
    return f"- source: {p.authors} ({p.year}), *{p.title}*, {p.venue}, arXiv:{p.arxiv}; {where}"


def _header(verdicts, level, partial_note):
    lines = ["# reskernels claim report", ""]
    if partial_note:
        lines += [f"> **Partial run.** {partial_note}", ""]
    lines += [f"{level_line(level)} Created {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M UTC}.", "",
              "Versions: " + ", ".join(f"{k} {v}" for k, v in versions().items()), "",
              "Conventions (docs/conventions.md): bias-free ReLU networks in the NTK parameterisation, width -> inf; "
              "input_var = 1 and weight_var = 2 unless a claim says otherwise. Seeds are fixed in each check, "
              "so verdicts are deterministic. The claims, their sources and the team's reading of each paper "
              "are in docs/papers.md (one heading per claim id).", "",
              "Status: " + STATUS_TEXT, "",
              "### Provenance tags", "",
              "Each claim's statement carries tags saying where it comes from (docs/papers.md, \"Provenance "
              "tags\"). The full texts of the papers were not available to the team, so a check establishes "
              "the scope of a statement under the conventions above rather than the paper's exact wording.", ""]
    for t, meaning in TAGS.items():
        lines.append(f'- <a id="tag-{t}"></a>**[{t}]**: {meaning}.')
    lines += ["", "Tags combine (\"[abstract] gist, [derived] form\"); only [derived] and exact values gate tests.", "",
              "### Measurements", "",
              "Each measurement row gives the value, the expected value, the criterion, why that tolerance, and its "
              "kind: " + "; ".join(f"`{k}` {d}" for k, d in KINDS.items()) + ".", "",
              "### Papers", "", "| key | paper | arXiv | docs/papers.md | claims here |", "|---|---|---|---|---|"]
    present = {}
    for v in verdicts:
        present[v.paper] = present.get(v.paper, 0) + 1
    for key, p in PAPERS.items():
        if key in present:
            title = p.title if p.arxiv is None else f"{p.authors} ({p.year}), *{p.title}*, {p.venue}"
            lines.append(f"| {key} | {title} | {p.arxiv or '-'} | {p.section} | {present[key]} |")
    return lines


def write_markdown(verdicts, outdir, level, figures: bool = True, partial_note: str | None = None):
    """Write ``outdir/report.md`` and ``outdir/figures/*.png``; PNGs this run does not draw are removed."""
    os.makedirs(outdir, exist_ok=True)
    figdir = os.path.join(outdir, "figures")
    lines = _header(verdicts, level, partial_note)
    lines += ["", "## Summary", "", "| claim | paper | status | time | finding |", "|---|---|---|---|---|"]
    for v in verdicts:
        lines.append(f"| [{v.claim_id}](#{v.claim_id.lower()}) | {v.paper} | **{v.status}** | "
                     f"{v.runtime_s:.1f} s | {_cell(shorten(_finding(v), 160))} |")
    written, nfig = set(), 0
    for v in verdicts:
        lines += ["", f"## {v.claim_id}", "", f"**{v.status}** -- {v.statement}", "",
                  _source_line(v),
                  f"- provenance: {_tags(v.provenance)}",
                  f"- conventions: {v.conventions}",
                  f"- run time: {v.runtime_s:.1f} s wall, {v.cpu_s:.1f} s CPU ({v.level} mode)"]
        if v.scope:
            lines.append(f"- scope: {v.scope}")
        if v.summary:
            lines.append(f"- finding: {v.summary}")
        if v.measurements:
            lines += ["", "| measurement | value | expected | criterion | why this tolerance | kind | pass |",
                      "|---|---|---|---|---|---|---|"]
            for m in v.measurements:
                crit = m.criterion + (f"; {_se_text(m)}" if m.kind == "montecarlo" else "")
                lines.append(f"| {_cell(m.name)} | {_cell(_fmt(m.value))} | {_cell(_fmt(m.expected))} | "
                             f"{_cell(crit)} | {_cell(m.tolerance_reason)} | {m.kind} | "
                             f"{'yes' if m.passed else '**no**'} |")
        spec: FigureSpec | None = FIGURES.get(v.claim_id)
        if figures and spec is not None and v.status != "error":
            os.makedirs(figdir, exist_ok=True)
            path = os.path.join(figdir, f"{v.claim_id.lower()}.png")
            try:
                spec.draw(v, path)
                written.add(os.path.abspath(path))
                nfig += 1
                v.figure = os.path.relpath(path, outdir)
                lines += ["", f"![{v.claim_id}: {spec.title}]({v.figure})", "",
                          f"*Figure {nfig} ({v.claim_id}).* {spec.caption}"]
            except Exception as exc:  # a figure must never hide a verdict
                lines += ["", f"(figure failed: {type(exc).__name__}: {exc})"]
        smap = v.extra.get("scope_map") if isinstance(v.extra, dict) else None
        if smap and v.status != "error":   # the claim's scope map: table (scope/) and heat map (figures/)
            from . import scope as _scope
            try:
                res = _scope.from_dict(smap)
                mapdir = os.path.join(outdir, "scope")
                os.makedirs(mapdir, exist_ok=True)
                md = os.path.join(mapdir, f"scope_{v.claim_id.lower()}.md")
                with open(md, "w") as fh:
                    fh.write(_scope.markdown(res))
                written.add(os.path.abspath(md))
                lines += ["", f"Scope map: {res.n_holds} of {len(res.points)} convention points hold "
                              f"([table]({os.path.relpath(md, outdir)}); `reskernels scope {v.claim_id}` "
                              "sweeps more)."]
                if figures:
                    os.makedirs(figdir, exist_ok=True)
                    png = os.path.join(figdir, f"scope_{v.claim_id.lower()}.png")
                    _scope.figure(res, png)
                    written.add(os.path.abspath(png))
                    nfig += 1
                    lines += ["", f"![{v.claim_id}: scope map]({os.path.relpath(png, outdir)})", "",
                              f"*Figure {nfig} ({v.claim_id}, scope map).* Margin ({res.margin_doc}) at each "
                              "convention point swept; a tick where the claim holds, a cross where it fails, "
                              "≈ for a tie within the margin's error."]
            except Exception as exc:  # a map must never hide a verdict
                lines += ["", f"(scope map failed: {type(exc).__name__}: {exc})"]
    for old in glob.glob(os.path.join(figdir, "*.png")) + glob.glob(os.path.join(outdir, "scope", "*.md")):
        if os.path.abspath(old) not in written:   # no figure or map outlives the run that drew it
            os.remove(old)
    path = os.path.join(outdir, "report.md")
    with open(path, "w") as fh:
        fh.write("\n".join(lines) + "\n")
    return path


def remove_report(outdir: str) -> None:
    """Remove the files a run writes into ``outdir`` (report.md, verdicts.json, ``figures/*.png``)."""
    for name in ("report.md", "verdicts.json"):
        p = os.path.join(outdir, name)
        if os.path.isfile(p):
            os.remove(p)
    figdir = os.path.join(outdir, "figures")
    for old in glob.glob(os.path.join(figdir, "*.png")):
        os.remove(old)
    for d in (figdir, outdir):
        if os.path.isdir(d) and not os.listdir(d):
            shutil.rmtree(d)

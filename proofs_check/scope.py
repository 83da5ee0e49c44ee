"""Scope maps: where a claim holds over the conventions its paper leaves open.

A paper's statement is checked at one point of a convention space (which layers are trained, how
alpha scales with depth, the baseline's depth, the readout, the data, ...).  A :class:`ScopeMap`
declares that space as :class:`Axis` objects with candidate values and a function that decides the
claim at one point, returning a signed *margin* (positive: the claim holds there) in units the map
states.  :func:`sweep` evaluates the product of the axes chosen (the others stay at their
defaults), :func:`describe_region` turns the table into a sentence ("holds wherever readout =
center; fails wherever ..."), and :func:`write` stores the table as Markdown and JSON and the map as
a PNG figure.  The maps themselves live in :mod:`reskernels.proofs_check.scopes`; the command is
``reskernels scope CLAIM [--over NAME ...] [--report DIR] [--full]``.
"""
from __future__ import annotations

import itertools
import json
import math
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

SCOPE_MAPS: dict[str, "ScopeMap"] = {}


@dataclass(frozen=True)
class Axis:
    """One open convention: its candidate values (``full``), the subset swept by default
    (``quick``) and the value used when the axis is not swept (``default``)."""

    name: str
    full: tuple
    default: Any
    doc: str
    quick: tuple | None = None
    ordered: bool = False   # numeric values with a meaningful order (regions use >= / <=)

    def values(self, level: str) -> tuple:
        return tuple(self.quick if (level == "quick" and self.quick is not None) else self.full)


@dataclass
class Point:
    """The claim decided at one convention point."""

    at: dict
    holds: bool
    margin: float
    detail: dict = field(default_factory=dict)
    seconds: float = 0.0
    error: float = 0.0

    @property
    def tie(self) -> bool:
        return abs(self.margin) <= self.error

    def to_dict(self):
        from .verdict import _jsonable
        return {"at": _jsonable(self.at), "holds": bool(self.holds), "margin": _jsonable(self.margin),
                "detail": _jsonable(self.detail), "seconds": round(self.seconds, 3),
                "margin_error": _jsonable(self.error), "tie": self.tie}


@dataclass
class ScopeMap:
    """A claim's convention space and its decision at one point.

    ``evaluate(at: dict) -> (margin, detail)``; the claim holds at ``at`` when ``margin`` exceeds its
    error: ``detail["margin error"]`` when the evaluation states one (a quadrature's convergence,
    say), else 0.  A point with ``|margin| <=`` its error is a *tie*: it does not count as holding,
    and the table and figure mark it.
    ``margin_doc`` states the margin's definition and units; ``criterion`` the claim as decided.
    """

    claim_id: str
    axes: tuple[Axis, ...]
    evaluate: Callable[[dict], tuple[float, dict]]
    margin_doc: str
    criterion: str
    fixed: str = ""          # conventions held fixed (not axes), for the table header
    check_over: tuple = ()   # the axes `reskernels check` sweeps in quick mode (full: every axis)
    full_over: tuple = ()    # the axes `reskernels check --full` sweeps (empty: every axis)

    def axis(self, name: str) -> Axis:
        for a in self.axes:
            if a.name == name:
                return a
        raise ValueError(f"{self.claim_id} has no convention axis {name!r}; axes: "
                         f"{', '.join(a.name for a in self.axes)}")

    def grid(self, over=None, level: str = "quick", fix: dict | None = None) -> list[dict]:
        """The convention points swept: the product of the values of the axes in ``over``
        (default: every axis), the other axes at their defaults (or at ``fix``)."""
        fix = dict(fix or {})
        for name in fix:
            self.axis(name)
        names = [a.name for a in self.axes] if not over else list(dict.fromkeys(over))
        for name in names:
            self.axis(name)
            if name in fix:
                raise ValueError(f"axis {name!r} is both swept (--over) and fixed (--set)")
        choices = []
        for a in self.axes:
            if a.name in fix:
                choices.append((fix[a.name],))
            elif a.name in names:
                choices.append(a.values(level))
            else:
                choices.append((a.default,))
        return [dict(zip([a.name for a in self.axes], combo)) for combo in itertools.product(*choices)]


def scope_map(claim_id: str, axes, margin_doc: str, criterion: str, fixed: str = "", check_over=(),
              full_over=()):
    """Decorator registering ``evaluate`` as the scope map of ``claim_id``; ``check_over`` names the
    axes that ``reskernels check`` sweeps in quick mode, ``full_over`` those that ``check --full``
    sweeps (default every axis; a map whose points cost minutes names fewer, and ``reskernels
    scope ID`` still sweeps them all)."""
    def deco(fn):
        if claim_id in SCOPE_MAPS:
            raise ValueError(f"scope map {claim_id} registered twice")
        axes_t = tuple(axes)
        names = {a.name for a in axes_t}
        bad = [c for c in tuple(check_over) + tuple(full_over) if c not in names]
        if bad:
            raise ValueError(f"check_over / full_over name unknown axes {bad}")
        SCOPE_MAPS[claim_id] = ScopeMap(claim_id, axes_t, fn, margin_doc, criterion, fixed, tuple(check_over),
                                        tuple(full_over))
        return fn
    return deco


def load_all() -> dict[str, ScopeMap]:
    from . import scopes  # noqa: F401  (registers the maps)
    return SCOPE_MAPS


def get(claim_id: str) -> ScopeMap:
    load_all()
    key = claim_id.upper()
    if key not in SCOPE_MAPS:
        raise ValueError(f"no scope map for {claim_id!r}; claims with one: {', '.join(sorted(SCOPE_MAPS))}")
    return SCOPE_MAPS[key]


@dataclass
class ScopeResult:
    claim_id: str
    level: str
    swept: list[str]
    points: list[Point]
    margin_doc: str
    criterion: str
    fixed: str
    seconds: float = 0.0

    @property
    def n_holds(self) -> int:
        return sum(p.holds for p in self.points)

    @property
    def status(self) -> str:
        """holds (every point), fails (none holds and some fail), inconclusive (every point a tie), else
        holds-in-scope (holds somewhere; fails or is undecided elsewhere)."""
        if self.n_holds == len(self.points):
            return "holds"
        if self.n_holds == 0:
            return "inconclusive" if all(p.tie for p in self.points) else "fails"
        return "holds-in-scope"

    def region(self) -> str:
        return describe_region(self)

    def to_dict(self):
        return {"claim_id": self.claim_id, "level": self.level, "swept": self.swept, "status": self.status,
                "region": self.region(), "margin": self.margin_doc, "criterion": self.criterion,
                "fixed": self.fixed, "seconds": round(self.seconds, 2),
                "points": [p.to_dict() for p in self.points]}


def sweep(smap: ScopeMap, over=None, level: str = "quick", fix: dict | None = None,
          progress: bool = True, stream=None) -> ScopeResult:
    """Evaluate ``smap`` on its grid (see :meth:`ScopeMap.grid`); one live progress line."""
    if level not in ("quick", "full"):
        raise ValueError(f"level must be 'quick' or 'full', got {level!r}")
    stream = stream or sys.stderr
    grid = smap.grid(over, level, fix)
    swept = [a.name for a in smap.axes if len({str(g[a.name]) for g in grid}) > 1]
    points, t0 = [], time.perf_counter()
    for i, at in enumerate(grid, 1):
        t = time.perf_counter()
        margin, detail = smap.evaluate(dict(at))
        margin = float(margin)
        if math.isnan(margin):
            raise ValueError(f"{smap.claim_id}: the margin at {at} is NaN")
        err = abs(float(detail.get("margin error", 0.0)))
        points.append(Point(at, margin > err, margin, detail, time.perf_counter() - t, err))
        if progress:
            el = time.perf_counter() - t0
            eta = el / i * (len(grid) - i)
            print(f"scope {smap.claim_id}: {i}/{len(grid)} points, {el:5.1f} s elapsed, ~{eta:5.1f} s left",
                  end="\r" if i < len(grid) else "\n", file=stream, flush=True)
    return ScopeResult(smap.claim_id, level, swept, points, smap.margin_doc, smap.criterion, smap.fixed,
                       time.perf_counter() - t0)


def attach(v, level: str, progress=None) -> ScopeResult | None:
    """Sweep the scope map of ``v``'s claim (if it has one) and record it in the verdict: the map in
    ``v.extra["scope_map"]`` (the report writes its table and figure) and the region sentence
    appended to ``v.scope``; a claim that holds at its own conventions but not at every point of the
    map becomes ``holds-in-scope``.  Quick mode sweeps the map's ``check_over`` axes; full mode its
    ``full_over`` axes, by default every axis (at the quick candidate values: ``reskernels scope ID
    --full`` sweeps all candidates)."""
    smaps = load_all()
    smap = smaps.get(v.claim_id)
    if smap is None:
        return None
    over = smap.check_over if level == "quick" else smap.full_over
    res = sweep(smap, over=over or None, level="quick", progress=False)
    v.extra["scope_map"] = res.to_dict()
    sentence = (f"Scope map over {', '.join(res.swept) or 'the default point'} ({len(res.points)} points; "
                f"`reskernels scope {v.claim_id}` sweeps more): {res.region()}.")
    # the map at the claim's own conventions (every swept axis at its default) against the claim itself:
    # they may differ in samples or rules, and a disagreement is said, not hidden
    own = [q for q in res.points if all(q.at[a.name] == a.default for a in smap.axes if a.name in res.swept)]
    claim_holds = v.status in ("holds", "holds-in-scope") or (v.status is None and v.all_passed)
    if own and v.measurements and claim_holds != own[0].holds:
        sentence += (f" At the claim's own conventions the map's point "
                     f"{'holds' if own[0].holds else ('is a tie' if own[0].tie else 'fails')}"
                     f" (margin {own[0].margin:+.3g}"
                     + (f" +- {own[0].error:.2g}" if own[0].error else "")
                     + f") while the claim's check {'holds' if claim_holds else 'does not'}: the map recomputes "
                     "that point with its own samples and rules.")
    v.scope = (v.scope.rstrip().rstrip(".") + ". " if v.scope else "") + sentence
    # a claim that holds at its own conventions but not over the whole map (failing or undecided points)
    # holds in a scope: where the map shows it
    if res.status != "holds" and (v.status == "holds" or (v.status is None and v.all_passed)):
        v.status = "holds-in-scope"
    return res


# --------------------------------------------------------------------------- region descriptions

def _fmt(v):
    return f"{v:g}" if isinstance(v, float) else str(v)


def _conditions(res: ScopeResult):
    """Candidate conditions on the swept axes: ('name', op, value, predicate)."""
    smap = get(res.claim_id)
    out = []
    for name in res.swept:
        ax = smap.axis(name)
        vals = list(dict.fromkeys(p.at[name] for p in res.points))
        for v in vals:
            out.append((f"{name} = {_fmt(v)}", (lambda at, n=name, v=v: at[n] == v)))
        if ax.ordered and len(vals) > 2:
            s = sorted(vals)
            for v in s[1:-1]:
                out.append((f"{name} >= {_fmt(v)}", (lambda at, n=name, v=v: at[n] >= v)))
                out.append((f"{name} <= {_fmt(v)}", (lambda at, n=name, v=v: at[n] <= v)))
    return out


def _category(p) -> str:
    """'holds', 'fails' or 'undecided' (a tie: |margin| within its error)."""
    return "holds" if p.holds else ("undecided" if p.tie else "fails")


def _cover(points, target: str, conds, max_rules: int = 4):
    """Greedy cover of the points of category ``target`` (:func:`_category`) by conjunctions (one to
    three conditions) that contain no point of another category."""
    pts = list(range(len(points)))
    want = {i for i in pts if _category(points[i]) == target}
    cands = [((a,), f) for a, f in conds]
    for r in (2, 3):
        for combo in itertools.combinations(conds, r):
            if len({a.split()[0] for a, _ in combo}) < r:
                continue
            cands.append((tuple(a for a, _ in combo), (lambda at, fs=tuple(f for _, f in combo): all(f(at) for f in fs))))
    pure = []
    for names, f in cands:
        members = {i for i in pts if f(points[i].at)}
        if members and members <= want:
            pure.append((names, members))
    chosen, left = [], set(want)
    while left and len(chosen) < max_rules:
        best = max(pure, key=lambda c: (len(c[1] & left), -len(c[0])), default=None)
        if best is None or not best[1] & left:
            break
        chosen.append(best)
        left -= best[1]
    return [" and ".join(n) + f" ({len(m)})" for n, m in chosen], len(left)


def describe_region(res: ScopeResult) -> str:
    """One sentence: where the claim holds and where it fails, by the simplest conditions on the
    swept axes that separate them (conjunctions of at most three conditions, found greedily; at most
    four per kind, each with the number of points it covers).  Ties (``|margin| <=`` its error) do
    not count as holding; they are a third kind, "undecided", described by their own conditions
    rather than as failures."""
    n, h = len(res.points), res.n_holds
    margins = [p.margin for p in res.points]
    span = f"margin {min(margins):+.3g} .. {max(margins):+.3g} ({res.margin_doc.split(';')[0]})"
    counts = {c: sum(_category(p) == c for p in res.points) for c in ("holds", "fails", "undecided")}
    if h == n:
        return f"holds at every one of the {n} convention points swept ({span})"
    for c, word in (("fails", "fails"), ("undecided", "is undecided (ties within the margin's error)")):
        if counts[c] == n:
            return f"{word} at every one of the {n} convention points swept ({span})"
    conds = _conditions(res)
    parts = []
    for target, word in (("holds", "holds"), ("fails", "fails"),
                         ("undecided", "is undecided (a tie within the margin's error)")):
        count = counts[target]
        if not count:
            continue
        rules, rest = _cover(res.points, target, conds)
        text = f"{word} at {count} of {n} points"
        if rules:
            text += ": wherever " + "; wherever ".join(rules)
        if rest:
            text += f" (and {rest} further point{'s' if rest > 1 else ''}: see the table)"
        parts.append(text)
    return "; ".join(parts) + f" ({span})"


# --------------------------------------------------------------------------- output

def from_dict(d: dict) -> ScopeResult:
    """A :class:`ScopeResult` back from :meth:`ScopeResult.to_dict` (a verdict's JSON)."""
    pts = [Point(p["at"], p["holds"], float(p["margin"]), p["detail"], p["seconds"],
                 float(p.get("margin_error", 0.0))) for p in d["points"]]
    return ScopeResult(d["claim_id"], d["level"], d["swept"], pts, d["margin"], d["criterion"], d["fixed"],
                       d["seconds"])


def markdown(res: ScopeResult) -> str:
    smap = get(res.claim_id)
    axes = [a.name for a in smap.axes]
    lines = [f"# Scope map: {res.claim_id} ({res.level})", "",
             f"**Criterion.** {res.criterion}", "", f"**Margin.** {res.margin_doc}", ""]
    if res.fixed:
        lines += [f"**Fixed conventions.** {res.fixed}", ""]
    lines += ["**Axes.**", ""]
    for a in smap.axes:
        state = "swept" if a.name in res.swept else f"fixed at {_fmt(res.points[0].at[a.name])}"
        lines.append(f"- `{a.name}` ({state}; candidates {', '.join(map(_fmt, a.full))}): {a.doc}")
    lines += ["", f"**Region.** {res.region()}", "", "**Holding fraction by axis value.**", ""]
    for name in res.swept:
        vals = list(dict.fromkeys(p.at[name] for p in res.points))
        cells = []
        for v in vals:
            sel = [p for p in res.points if p.at[name] == v]
            cells.append(f"{_fmt(v)}: {sum(p.holds for p in sel)}/{len(sel)}")
        lines.append(f"- `{name}`: " + ", ".join(cells))
    lines += ["",
              f"{res.n_holds} of {len(res.points)} points hold; {res.seconds:.1f} s.", "",
              "| " + " | ".join(axes) + " | holds | margin | detail |",
              "|" + "---|" * (len(axes) + 3)]
    for p in res.points:
        det = "; ".join(f"{k}: {_short(v)}" for k, v in p.detail.items() if k != "margin error")
        lines.append("| " + " | ".join(_fmt(p.at[a]) for a in axes)
                     + f" | {'yes' if p.holds else ('tie' if p.tie else 'no')} | {p.margin:+.3g}"
                     + (f" ± {p.error:.2g}" if p.error else "") + f" | {det} |")
    return "\n".join(lines) + "\n"


def _short(v):
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_short(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k}: {_short(x)}" for k, x in v.items()) + "}"
    if isinstance(v, np.floating):
        return _short(float(v))
    return str(v)


def figure(res: ScopeResult, path):
    """Heat map of the margin: the two swept axes with the most values as columns and rows, one
    panel per combination of the others (at most 12; beyond that the worst margin over the
    remaining axes is shown and the panel title says so).  Cells: margin, with a tick or cross."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    smap = get(res.claim_id)
    swept = sorted(res.swept, key=lambda nm: -len(smap.axis(nm).full))
    vals = {nm: list(dict.fromkeys(p.at[nm] for p in res.points)) for nm in swept}
    xa = swept[0] if swept else None
    ya = swept[1] if len(swept) > 1 else None
    rest = swept[2:]
    combos = list(itertools.product(*[vals[r] for r in rest])) or [()]
    collapsed = []
    while len(combos) > 12 and rest:
        collapsed.append(rest.pop())
        combos = list(itertools.product(*[vals[r] for r in rest])) or [()]
    xs = vals[xa] if xa else [None]
    ys = vals[ya] if ya else [None]
    lim = max(1e-12, max(abs(p.margin) for p in res.points))
    ncol = min(4, len(combos))
    nrow = math.ceil(len(combos) / ncol)
    fig, axs = plt.subplots(nrow, ncol, figsize=(1.2 + 0.9 * len(xs) * ncol + 0.6, 1.0 + 0.55 * len(ys) * nrow + 0.8),
                            squeeze=False, layout="constrained")
    im = None
    for k, combo in enumerate(combos):
        ax = axs[k // ncol][k % ncol]
        M = np.full((len(ys), len(xs)), np.nan)
        H = np.full((len(ys), len(xs)), "", dtype=object)
        for p in res.points:
            if any(p.at[r] != c for r, c in zip(rest, combo)):
                continue
            i = ys.index(p.at[ya]) if ya else 0
            j = xs.index(p.at[xa]) if xa else 0
            if np.isnan(M[i, j]) or p.margin < M[i, j]:
                M[i, j], H[i, j] = p.margin, ("✓" if p.holds else "≈" if p.tie else "✗")
        im = ax.imshow(M, cmap="RdBu", vmin=-lim, vmax=lim, aspect="auto")
        for i in range(len(ys)):
            for j in range(len(xs)):
                if not np.isnan(M[i, j]):
                    ax.text(j, i, f"{H[i, j]}\n{M[i, j]:+.2g}", ha="center", va="center", fontsize=7)
        ax.set_xticks(range(len(xs)), [_fmt(x) for x in xs] if xa else [""], fontsize=7,
                      rotation=30 if xa and max(len(_fmt(x)) for x in xs) > 4 else 0)
        ax.set_yticks(range(len(ys)), [_fmt(y) for y in ys] if ya else [""], fontsize=7)
        ax.set_xlabel(xa or "", fontsize=8)
        ax.set_ylabel(ya or "", fontsize=8)
        title = "\n".join(f"{r}={_fmt(c)}" for r, c in zip(rest, combo))
        if collapsed:
            title = (title + "\n" if title else "") + "worst over " + ", ".join(collapsed)
        ax.set_title(title, fontsize=8)
    for k in range(len(combos), nrow * ncol):
        axs[k // ncol][k % ncol].axis("off")
    if im is not None:
        cb = fig.colorbar(im, ax=axs, shrink=0.8)
        cb.set_label("margin (> 0: claim holds; ≈: tie within its error)", fontsize=8)
    fig.suptitle(f"Scope map of {res.claim_id}: {res.n_holds}/{len(res.points)} convention points hold\n"
                 f"margin = {res.margin_doc.split(';')[0]}", fontsize=9)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write(res: ScopeResult, out_dir) -> dict:
    """Write ``<ID>.md``, ``<ID>.json`` and ``<ID>.png`` into ``out_dir``; return their paths."""
    from pathlib import Path
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--report {out_dir} is a file, not a directory")
    out.mkdir(parents=True, exist_ok=True)
    stem = res.claim_id.lower()
    paths = {"markdown": out / f"scope_{stem}.md", "json": out / f"scope_{stem}.json",
             "figure": out / f"scope_{stem}.png"}
    paths["markdown"].write_text(markdown(res))
    paths["json"].write_text(json.dumps(res.to_dict(), indent=1))
    figure(res, paths["figure"])
    return {k: str(v) for k, v in paths.items()}


# --------------------------------------------------------------------------- the `scope` command

def parse_set(smap: ScopeMap, items) -> dict:
    """``["name=value", ...]`` -> {name: candidate}; the value must spell one of the axis's candidates."""
    out = {}
    for item in items or ():
        name, sep, text = item.partition("=")
        if not sep:
            raise ValueError(f"--set expects NAME=VALUE, got {item!r}")
        ax = smap.axis(name.strip())
        match = [v for v in ax.full if _fmt(v) == text.strip() or str(v) == text.strip()]
        if not match:
            raise ValueError(f"--set {ax.name}: {text!r} is not a candidate; candidates: "
                             f"{', '.join(map(_fmt, ax.full))}")
        out[ax.name] = match[0]
    return out


def add_parser(sub):
    """Register ``reskernels scope`` on an argparse sub-parser collection."""
    s = sub.add_parser(
        "scope", help="map where a claim holds over the conventions its paper leaves open",
        description="Sweep the conventions a paper leaves open (trained layers, alpha scaling, baseline "
                    "depth, readout, data, ...) and map where the claim holds, fails, and by what margin. "
                    "Writes scope_<id>.md (table), .json and .png (heat map) into --report.")
    s.add_argument("claim", nargs="?", metavar="CLAIM", help="claim id (any case); omit with --list")
    s.add_argument("--list", action="store_true", help="the claims with a scope map and their axes")
    s.add_argument("--over", nargs="+", metavar="NAME", help="axes to sweep (default: every axis)")
    s.add_argument("--set", nargs="+", metavar="NAME=VALUE", help="hold axes at these candidates")
    s.add_argument("--full", action="store_true", help="every candidate value (default: the quick subset)")
    s.add_argument("--report", metavar="DIR", default="reskernels-scope", help="output folder (default: reskernels-scope)")
    s.add_argument("--quiet", action="store_true", help="no progress line")
    s.set_defaults(fn=run_command)
    return s


def run_command(args) -> int:
    maps = load_all()
    if args.list:
        for cid, smap in sorted(maps.items()):
            print(f"{cid}: {smap.criterion}")
            for a in smap.axes:
                q = f" (quick: {', '.join(map(_fmt, a.values('quick')))})" if a.quick is not None else ""
                print(f"    {a.name:<11} {', '.join(map(_fmt, a.full))}{q}; default {_fmt(a.default)}")
        return 0
    try:
        if not args.claim:
            raise ValueError("name a claim (see `reskernels scope --list`)")
        smap = get(args.claim)
        fix = parse_set(smap, args.set)
        level = "full" if args.full else "quick"
        n = len(smap.grid(args.over, level, fix))
        from pathlib import Path
        out = Path(args.report)
        if out.exists() and not out.is_dir():
            raise ValueError(f"--report {args.report} is a file, not a directory")
    except ValueError as exc:
        print(f"reskernels scope: {exc}", file=sys.stderr)
        return 2
    print(f"scope {smap.claim_id}: {n} convention points ({level})", file=sys.stderr)
    res = sweep(smap, args.over, level, fix, progress=not args.quiet)
    paths = write(res, args.report)
    print(f"{smap.claim_id}: {res.status} -- {res.region()}")
    print("wrote " + ", ".join(paths.values()))
    return 0

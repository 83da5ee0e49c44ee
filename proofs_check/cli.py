"""The ``reskernels`` command (also ``python -m reskernels``).

    reskernels check [--only ID ...] [--paper NAME ...] [--full] [--json PATH] [--report DIR]
    reskernels list [--paper NAME]
    reskernels conform MODULE:FUNCTION --spec SPEC [--kind ntk|nngp] [--rtol R] [--pass-spec] ...
    reskernels info
    reskernels --version

``check`` exits 1 when a check *errors* (a bug) and 0 otherwise: a claim that fails
is a finding, recorded in the report, not an error of the program.  ``conform`` exits 0 when
every property passes, 1 when one fails, 3 when one could not be checked.  A usage error
(unknown claim, paper, module, property; a bad number) prints one line on stderr and exits 2.
"""
from __future__ import annotations

import argparse
import math
import os
import sys
import time


def _spec_signature(cls) -> str:
    """``ResNet(depth, alpha, *, input_var=1.0, ...)``: a spec class's fields, the required ones
    (no default, or the placeholder default None) first."""
    import dataclasses
    required, optional = [], []
    for f in dataclasses.fields(cls):
        if f.default is dataclasses.MISSING or f.default is None:
            required.append(f.name)
        else:
            optional.append(f"{f.name}={f.default!r}")
    return f"{cls.__name__}({', '.join(required + (['*'] + optional if optional else []))})"


def _info(args):
    from reskernels.theory import KIND_VALUES, READOUT_VALUES, SPECS, TRAINED_VALUES
    from .report import versions
    print("reskernels -- infinite-width kernels of residual networks")
    for k, v in versions().items():
        print(f"  {k:<11} {v}")
    print("architectures:")
    for cls in SPECS.values():
        print(f"  {_spec_signature(cls)}")
    print(f"kinds: {KIND_VALUES}; trained: {TRAINED_VALUES}; readouts (conv): {READOUT_VALUES}")
    return 0


def _canonical_ids(only):
    """Claim ids as typed (any case) -> the registry's spelling; unknown ones stay as typed."""
    if not only:
        return only
    from .registry import load_all
    by_lower = {k.lower(): k for k in load_all()}
    return [by_lower.get(i.lower(), i) for i in only]


def _list(args):
    from .registry import PAPERS, timings
    from .runner import _fmt_s, estimate_total, select
    try:
        claims = select(papers=args.paper)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if not claims:
        print("no claims")
        return 0

    def est(c, level):
        if c.check is None:
            return "record"
        s, measured = c.estimate(level)
        return "?" if s is None else (_fmt_s(s) if measured else f"{_fmt_s(s)}?")

    w = max(len(c.id) for c in claims)
    print(f"{'claim':<{w}}  {'paper':<9} {'quick':>8} {'full':>8}  statement   (times: CPU seconds, see below)")
    for c in claims:
        print(f"{c.id:<{w}}  {c.paper:<9} {est(c, 'quick'):>8} {est(c, 'full'):>8}  {c.statement[:80]}")
    print(f"\n{len(claims)} claims")
    tab = timings()
    for level in ("quick", "full"):
        total, measured = estimate_total(claims, level)
        info = tab.get("measured", {}).get(level)
        whole = tab.get("check", {}).get(level)
        if total is None:
            have = sum(1 for c in claims if c.check is not None and c.estimate(level)[0] is not None)
            print(f"{level}: measured for {have} of {sum(1 for c in claims if c.check is not None)} checks "
                  "('?': not measured; see benchmarks/claim_timings.py)")
            continue
        line = f"{level}: ~{_fmt_s(total)} summed over these claims, each run alone"
        if whole and len(claims) == sum(1 for _ in select()):
            line += (f"; the whole `reskernels check{' --full' if level == 'full' else ''}` took "
                     f"{_fmt_s(whole['wall_s'])} wall, {_fmt_s(whole['cpu_s'])} CPU")
        if info:
            line += f" (measured {info['date']} on {info['cpus']} CPUs"
            if info.get("load_avg_1min"):
                lo, hi = info["load_avg_1min"]
                line += f", 1-minute load average {lo:g} to {hi:g})"
            else:
                line += ")"
        if not measured:
            line += "; '?' marks an unmeasured guess"
        print(line)
    print("times: CPU seconds of each claim run alone (cold caches), about its wall time on an idle machine; "
          "longer when the cores are shared.\npapers: " + ", ".join(PAPERS)
          + " (any case; --paper background = arora, geifman, bietti, num)")
    return 0


def _check(args):
    from .registry import REGISTRY
    from .report import output_dir, remove_report, summary_table, write_json, write_markdown
    from .runner import run, select
    level = "full" if args.full else "quick"
    try:
        claims = select(_canonical_ids(args.only), args.paper)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    partial = len(claims) < len(REGISTRY)
    t0 = time.perf_counter()
    verdicts = run(claims, level, progress=not args.quiet)
    seconds = time.perf_counter() - t0
    print()
    print(summary_table(verdicts, level))
    print(f"\n{level} mode: {len(verdicts)} claim(s) in {seconds:.1f} s")
    base = args.report
    json_path = args.json
    if base:
        outdir = output_dir(base, partial)
        note = None
        if partial:
            sel = " ".join(f"--only {' '.join(args.only)}".split()) if args.only else ""
            sel += (" " if sel else "") + (f"--paper {' '.join(args.paper)}" if args.paper else "")
            note = (f"{len(verdicts)} of {len(REGISTRY)} claims ({sel.strip()}). The report of the last run of "
                    f"every claim, if any, is ../report.md; it was not changed by this run.")
        else:
            remove_report(output_dir(base, True))  # a run of every claim supersedes the last partial one
        path = write_markdown(verdicts, outdir, level, figures=not args.no_figures, partial_note=note)
        json_path = json_path or os.path.join(outdir, "verdicts.json")
        if partial:
            print(f"\npartial run ({len(verdicts)} of {len(REGISTRY)} claims): report {path}; "
                  f"the full report {os.path.join(base, 'report.md')} is left as it was")
        else:
            print(f"\nreport: {path}")
    if json_path:
        write_json(verdicts, json_path, level, {"argv": sys.argv[1:], "seconds": seconds, "partial": partial})
        print(f"verdicts: {json_path}")
    errors = [v.claim_id for v in verdicts if v.status == "error"]
    if errors:
        print(f"\n{len(errors)} check(s) raised an error: {', '.join(errors)}", file=sys.stderr)
        return 1
    return 0


class UsageError(Exception):
    """A mistake on the command line: one line on stderr, exit status 2."""


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr (not the usage block), exit status 2."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _load_callable(target: str):
    """'package.module:function' (or 'path/to/file.py:function') -> the callable."""
    import importlib
    import importlib.util
    if ":" not in target:
        raise UsageError(f"expected MODULE:FUNCTION or path/to/file.py:FUNCTION, got {target!r}")
    mod_name, fn_name = target.rsplit(":", 1)
    if not mod_name or not fn_name:
        raise UsageError(f"expected MODULE:FUNCTION or path/to/file.py:FUNCTION, got {target!r}")
    if mod_name.endswith(".py"):
        if not os.path.isfile(mod_name):
            raise UsageError(f"no such file: {mod_name}")
        path = os.path.abspath(mod_name)
        name = "_reskernels_user_" + os.path.splitext(os.path.basename(path))[0]
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            raise UsageError(f"cannot load {mod_name} as a Python module")
        module = importlib.util.module_from_spec(spec)
        sys.path.insert(0, os.path.dirname(path))      # the file's own imports of its neighbours
        sys.modules[name] = module
        try:
            spec.loader.exec_module(module)
        except BaseException as e:                       # noqa: BLE001 -- the user's module, any failure
            sys.modules.pop(name, None)
            if isinstance(e, KeyboardInterrupt):
                raise
            raise UsageError(f"importing {mod_name} raised {type(e).__name__}: {e}") from None
    else:
        if os.getcwd() not in sys.path:
            sys.path.insert(0, os.getcwd())
        try:
            module = importlib.import_module(mod_name)
        except ModuleNotFoundError as e:
            if e.name and (mod_name == e.name or mod_name.startswith(e.name + ".")):
                raise UsageError(f"no module named {e.name!r} (searched the current directory and sys.path; "
                                 "for a file give path/to/file.py:FUNCTION)") from None
            raise UsageError(f"importing {mod_name} raised ModuleNotFoundError: {e}") from None
        except BaseException as e:                       # noqa: BLE001
            if isinstance(e, KeyboardInterrupt):
                raise
            raise UsageError(f"importing {mod_name} raised {type(e).__name__}: {e}") from None
    fn = getattr(module, fn_name, None)
    if fn is None:
        names = sorted(n for n, v in vars(module).items() if callable(v) and not n.startswith("_")
                       and getattr(v, "__module__", None) == module.__name__)
        raise UsageError(f"{mod_name} has no {fn_name!r}"
                         + (f"; functions there: {', '.join(names[:12])}" if names else ""))
    if not callable(fn):
        raise UsageError(f"{fn_name!r} in {mod_name} is not callable (a {type(fn).__name__})")
    return fn


def _conform(args):
    from .conformance import PROPERTIES, available_properties, bind_spec, conform, parse_spec
    try:
        spec = parse_spec(args.spec)
    except (ValueError, TypeError) as e:
        raise UsageError(str(e)) from None
    props = None
    if args.properties:
        avail = available_properties(spec)
        props = []
        for p in args.properties:
            q = p.strip().lower()
            if q not in avail:
                raise UsageError(f"unknown property {p!r}; known: {', '.join(PROPERTIES)}")
            if avail[q] is not None:
                raise UsageError(f"property {q} does not apply to {args.spec}: {avail[q]}")
            props.append(q)
    fn = _load_callable(args.target)
    kernel = fn
    if args.pass_spec:
        try:
            kernel, passed, not_passed = bind_spec(fn, spec, args.kind, args.pass_spec)
        except ValueError as e:
            raise UsageError(str(e)) from None
        call = ", ".join(f"{k}={v!r}" for k, v in passed.items())
        note = f"reskernels conform: calling {getattr(fn, '__name__', 'the function')}(X, Z, {call})"
        if not_passed:
            note += ("; not passed (it has no such parameter, so its own value is used): "
                     + ", ".join(f"{k}={v!r}" for k, v in not_passed.items()))
        print(note, file=sys.stderr)
    report = conform(kernel, spec, args.kind, rtol=args.rtol, atol=args.atol, math_rtol=args.math_rtol,
                     max_examples=args.max_examples, seed=args.seed, dim=args.dim, pixels=args.pixels,
                     channels=args.channels, properties=props, max_seconds=args.max_seconds,
                     progress=not args.quiet)
    print(report)
    if report.failures:
        return 1
    return 3 if report.errors else 0


def _number(kind, lo, strict, integer=False):
    """An argparse type: a finite number >= lo (> lo when strict)."""
    def parse(text):
        try:
            v = int(text) if integer else float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {'an integer' if integer else 'a number'}, got {text!r}") \
                from None
        if not math.isfinite(v) or (v <= lo if strict else v < lo):
            raise argparse.ArgumentTypeError(f"must be {kind}, got {text!r}")
        return v
    return parse


_DESCRIPTION = """\
reskernels: infinite-width NNGP and NTK kernels of residual networks (MLP, ResNet, CNN, ResCNN).

  check    run the numerical checks of the papers' claims (Belfer, Huang, Tirer, Littwin,
           Barzilai, ...) against the suite's kernels and write a Markdown / JSON report
  list     show the registry of claims
  conform  test your own kernel implementation against the suite's reference kernels
           (agreement with gram, symmetry, PSD, invariances, closed forms, spectrum)
  info     versions and the architecture specs

Run 'reskernels COMMAND --help' for a command's options."""

_CONFORM_EPILOG = """\
your function:
  FUNCTION(X, Z) gets float64 arrays of inputs -- (n, d) for MLP / ResNet, (n, P, C) for
  CNN / ResCNN -- and returns the n x m Gram matrix (anything numpy.asarray converts).

passing the spec to your function:
  --pass-spec         call FUNCTION(X, Z, depth=..., alpha=..., ...): the fields of --spec that
                      FUNCTION has parameters for (all of them if it takes **kwargs), plus
                      kind=... if it has a 'kind' parameter.  One function then serves every
                      spec, so a failure can be narrowed down, e.g. to depth 1:
                        reskernels conform my.py:resntk --spec "ResNet(depth=1, alpha=0.5)" --pass-spec
                      The call is printed on stderr, with the fields FUNCTION has no parameter for.
  --pass-spec-object  call FUNCTION(X, Z, spec=SPEC) with the spec object (a frozen dataclass:
                      spec.depth, spec.alpha, spec.weight_var, ...).

two tiers:
  every check is judged at --rtol (the numerics tier) and at --math-rtol (the mathematics
  tier, default 1e-6, which a correct float64 implementation written with plain arccos
  passes).  Failing only the numerics tier means right formulas and lost digits; failing the
  mathematics tier means a wrong formula.  Errors are given in units of the tier's tolerance;
  the report says where the failures sit (zero, nearly parallel or antiparallel inputs).

slow kernels:
  progress goes to stderr (--quiet: none); --max-seconds S stops each property after S
  seconds with what it found so far.  Warnings your kernel emits are counted in the report.

exit status:
  0 every property passes at --rtol; 1 a property fails (or the kernel raised or returned
  NaN); 2 usage error; 3 a property could not be checked (the reference gram or the kit
  raised -- not your kernel)."""


def build_parser():
    from reskernels import __version__
    p = _Parser(prog="reskernels", description=_DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--version", action="version", version=f"reskernels {__version__}")
    sub = p.add_subparsers(dest="cmd", metavar="COMMAND")
    c = sub.add_parser("check", help="run the claim checks and write a report",
                       description="Run the numerical checks of the papers' claims and write a report. "
                                   "Exit status 1 only when a check raises an error (a bug); a claim that "
                                   "does not hold is a finding, recorded in the report.")
    c.add_argument("--only", nargs="+", metavar="ID", help="claim ids to run (case-insensitive; see 'reskernels list')")
    c.add_argument("--paper", nargs="+", metavar="NAME",
                   help="papers to run, any case: belfer, huang, tirer, littwin, barzilai, arora, geifman, bietti, "
                        "num (suite numerics); background = arora + geifman + bietti + num")
    c.add_argument("--full", action="store_true", help="larger grids and higher precision")
    c.add_argument("--json", metavar="PATH", help="write machine-readable verdicts")
    c.add_argument("--report", metavar="DIR", default="reskernels-report",
                   help="write report.md, verdicts.json and figures here (default: reskernels-report; '' to "
                        "skip); a run of some claims only (--only, --paper) writes to DIR/partial/ instead")
    c.add_argument("--no-figures", action="store_true", help="skip figures in the report")
    c.add_argument("--quiet", action="store_true", help="no live progress lines")
    c.set_defaults(fn=_check)
    ls = sub.add_parser("list", help="show the claim registry", description="Show the registry of claims.")
    ls.add_argument("--paper", nargs="+", metavar="NAME", help="only these papers (belfer, huang, ...; any case)")
    ls.set_defaults(fn=_list)
    cf = sub.add_parser("conform", help="test your own kernel function against the suite's kernels",
                        description="Run the suite's property battery (hypothesis, with shrunk counterexamples)\n"
                                    "against your own kernel function, and report where and why it fails.",
                        epilog=_CONFORM_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    cf.add_argument("target", metavar="MODULE:FUNCTION",
                    help="a callable (X, Z) -> Gram matrix, e.g. mypkg.kernels:resntk or path/file.py:fn")
    cf.add_argument("--spec", required=True, help='the spec it implements, e.g. "ResNet(depth=4, alpha=0.5)"')
    cf.add_argument("--kind", default="ntk", choices=("ntk", "nngp"))
    cf.add_argument("--rtol", type=_number("a finite number >= 0", 0.0, False), default=1e-10,
                    help="relative tolerance of the numerics tier (default 1e-10)")
    cf.add_argument("--math-rtol", type=_number("a finite number >= 0", 0.0, False), default=1e-6,
                    help="relative tolerance of the mathematics tier (default 1e-6)")
    cf.add_argument("--atol", type=_number("a finite number >= 0", 0.0, False), default=0.0,
                    help="absolute tolerance, both tiers (default 0)")
    cf.add_argument("--max-examples", type=_number("an integer >= 1", 1, False, integer=True), default=40,
                    help="hypothesis examples per property (default 40)")
    cf.add_argument("--max-seconds", type=_number("a number > 0", 0.0, True), default=None, metavar="S",
                    help="time budget of each property in seconds (default: none)")
    cf.add_argument("--seed", type=int, default=0)
    cf.add_argument("--dim", type=_number("an integer >= 2", 2, False, integer=True), default=4,
                    help="input dimension for MLP / ResNet (default 4)")
    cf.add_argument("--pixels", type=_number("an integer >= 1", 1, False, integer=True), default=5,
                    help="signal length for CNN / ResCNN (default 5)")
    cf.add_argument("--channels", type=_number("an integer >= 1", 1, False, integer=True), default=2,
                    help="channels per pixel for CNN / ResCNN (default 2)")
    cf.add_argument("--properties", nargs="+", metavar="NAME",
                    help="run only these properties (case-insensitive): agrees_with_gram, symmetric, psd, "
                         "homogeneous, rotation_invariant, per_pixel_rotation, shift_invariant, "
                         "diagonal_closed_form, depth1_identity, funk_hecke_spectrum")
    ps = cf.add_mutually_exclusive_group()
    ps.add_argument("--pass-spec", dest="pass_spec", action="store_const", const="fields",
                    help="call FUNCTION(X, Z, depth=..., alpha=..., ...) with the spec's fields (see below)")
    ps.add_argument("--pass-spec-object", dest="pass_spec", action="store_const", const="object",
                    help="call FUNCTION(X, Z, spec=SPEC) with the spec object")
    cf.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    cf.set_defaults(fn=_conform)
    from .scope import add_parser as _add_scope_parser
    _add_scope_parser(sub)
    i = sub.add_parser("info", help="versions and architectures", description="Versions and the architecture specs.")
    i.set_defaults(fn=_info)
    return p


def main(argv=None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:      # --help, --version (0) or a usage error already printed (2)
        return exc.code if isinstance(exc.code, int) else 2
    if not getattr(args, "fn", None):
        parser.print_help()
        return 0
    try:
        return args.fn(args)
    except UsageError as exc:
        print(f"reskernels {args.cmd}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

"""The ``reskernels`` command (also ``python -m proofs_check``).

    reskernels check [--only ID ...] [--paper NAME ...] [--full] [--json PATH] [--report DIR]
    reskernels list [--paper NAME]
    reskernels info

``check`` exits 1 when a check *errors* (a bug) and 0 otherwise: a claim that fails
is a finding, recorded in the report, not an error of the program.
"""
from __future__ import annotations

import argparse
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


def _list(args):
    from .runner import select
    claims = select(papers=args.paper)
    w = max(len(c.id) for c in claims)
    for c in claims:
        kind = "record" if c.check is None else f"~{c.quick_seconds:.0f}s"
        print(f"{c.id:<{w}}  {c.paper:<10} {kind:>7}  {c.statement[:90]}")
    print(f"\n{len(claims)} claims")
    return 0


def _check(args):
    from .report import summary_table, write_json, write_markdown
    from .runner import run, select
    level = "full" if args.full else "quick"
    try:
        claims = select(args.only, args.paper)
    except ValueError as exc:
        print(f"reskernels: {exc}", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    verdicts = run(claims, level, progress=not args.quiet)
    print()
    print(summary_table(verdicts))
    outdir = args.report
    if outdir:
        path = write_markdown(verdicts, outdir, level, figures=not args.no_figures)
        print(f"\nreport: {path}")
    json_path = args.json or (os.path.join(outdir, "verdicts.json") if outdir else None)
    if json_path:
        write_json(verdicts, json_path, level, {"argv": sys.argv[1:], "seconds": time.perf_counter() - t0})
        print(f"verdicts: {json_path}")
    errors = [v.claim_id for v in verdicts if v.status == "error"]
    if errors:
        print(f"\n{len(errors)} check(s) raised an error: {', '.join(errors)}", file=sys.stderr)
        return 1
    return 0


def _load_callable(target: str):
    """'package.module:function' (or 'path/to/file.py:function') -> the callable."""
    import importlib
    import importlib.util
    import os
    if ":" not in target:
        raise SystemExit(f"reskernels conform: expected MODULE:FUNCTION, got {target!r}")
    mod_name, fn_name = target.rsplit(":", 1)
    if mod_name.endswith(".py"):
        spec = importlib.util.spec_from_file_location(os.path.splitext(os.path.basename(mod_name))[0], mod_name)
        if spec is None:
            raise SystemExit(f"reskernels conform: cannot load {mod_name}")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    else:
        sys.path.insert(0, os.getcwd())
        module = importlib.import_module(mod_name)
    fn = getattr(module, fn_name, None)
    if not callable(fn):
        raise SystemExit(f"reskernels conform: {fn_name!r} in {mod_name} is not a callable")
    return fn


def _conform(args):
    from .conformance import conform, parse_spec
    try:
        spec = parse_spec(args.spec)
    except (ValueError, TypeError) as e:
        raise SystemExit(f"reskernels conform: {e}") from None
    fn = _load_callable(args.target)
    report = conform(fn, spec, args.kind, rtol=args.rtol, atol=args.atol, max_examples=args.max_examples,
                     seed=args.seed, dim=args.dim, pixels=args.pixels, channels=args.channels,
                     properties=args.properties)
    print(report)
    return 0 if report.passed else 1


def build_parser():
    p = argparse.ArgumentParser(prog="reskernels", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd")
    c = sub.add_parser("check", help="run the claim checks and write a report")
    c.add_argument("--only", nargs="+", metavar="ID", help="claim ids to run")
    c.add_argument("--paper", nargs="+", metavar="NAME", help="papers to run (belfer, huang, ...)")
    c.add_argument("--full", action="store_true", help="larger grids and higher precision")
    c.add_argument("--json", metavar="PATH", help="write machine-readable verdicts")
    c.add_argument("--report", metavar="DIR", default="reskernels-report",
                   help="write report.md and figures here (default: reskernels-report; '' to skip)")
    c.add_argument("--no-figures", action="store_true", help="skip figures in the report")
    c.add_argument("--quiet", action="store_true", help="no live progress lines")
    c.set_defaults(fn=_check)
    ls = sub.add_parser("list", help="show the claim registry")
    ls.add_argument("--paper", nargs="+", metavar="NAME")
    ls.set_defaults(fn=_list)
    cf = sub.add_parser("conform", help="run the property battery against your own kernel function")
    cf.add_argument("target", metavar="MODULE:FUNCTION",
                    help="a callable (X, Z) -> Gram matrix, e.g. mypkg.kernels:resntk or path/file.py:fn")
    cf.add_argument("--spec", required=True, help='the spec it implements, e.g. "ResNet(depth=4, alpha=0.5)"')
    cf.add_argument("--kind", default="ntk", choices=("ntk", "nngp"))
    cf.add_argument("--rtol", type=float, default=1e-10, help="relative tolerance (default 1e-10)")
    cf.add_argument("--atol", type=float, default=0.0)
    cf.add_argument("--max-examples", type=int, default=40, help="hypothesis examples per property")
    cf.add_argument("--seed", type=int, default=0)
    cf.add_argument("--dim", type=int, default=4, help="input dimension for MLP / ResNet")
    cf.add_argument("--pixels", type=int, default=5, help="signal length for CNN / ResCNN")
    cf.add_argument("--channels", type=int, default=2, help="channels per pixel for CNN / ResCNN")
    cf.add_argument("--properties", nargs="+", metavar="NAME", help="run only these properties")
    cf.set_defaults(fn=_conform)
    i = sub.add_parser("info", help="versions and architectures")
    i.set_defaults(fn=_info)
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if not getattr(args, "fn", None):
        build_parser().print_help()
        return 0
    return args.fn(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

"""Measure how long each claim check takes, and write the table that `reskernels list`, the live
progress line and the report read (``proofs_check/data/timings.json``).

    python benchmarks/claim_timings.py                     # quick and full, every claim
    python benchmarks/claim_timings.py --levels quick      # one level (the other level's rows are kept)
    python benchmarks/claim_timings.py --only TIRER-STABLE-TRAINING --levels full

Each claim runs alone in a fresh Python process (cold caches: what ``reskernels check --only ID``
costs; in a full run a claim can be faster because an earlier one filled a shared spectrum cache).
Wall time and CPU time (all threads) of the check itself are recorded; the import of the package is
not.  The estimates shown to users are the CPU seconds: on a machine whose cores are shared the wall
time is longer (the table keeps both, and the range of the 1-minute load average while it ran).  With ``--total`` (the default for quick) the whole ``reskernels check`` is also timed in one
process, wall and CPU (the children's rusage).  The table says when, on how many CPUs and at which
commit it was measured; re-run it after a change that moves a claim's cost.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import resource
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "proofs_check", "data", "timings.json")

_ONE = """
import json, sys, time
from reskernels.proofs_check.registry import load_all
c = load_all()[sys.argv[1]]
w0, c0 = time.perf_counter(), time.process_time()
v = c.run(sys.argv[2])
print(json.dumps({"wall_s": time.perf_counter() - w0, "cpu_s": time.process_time() - c0, "status": v.status}))
"""


def _git_commit():
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                              text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def time_claim(cid: str, level: str) -> dict:
    r = subprocess.run([sys.executable, "-c", _ONE, cid, level], cwd=ROOT, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"{cid} ({level}) exited {r.returncode}: {r.stderr[-2000:]}")
    row = json.loads(r.stdout.strip().splitlines()[-1])
    return {k: (round(x, 2) if isinstance(x, float) else x) for k, x in row.items()}


def time_check(level: str) -> dict:
    """The whole ``reskernels check`` in one process: wall and CPU seconds (imports included)."""
    argv = [sys.executable, "-m", "reskernels", "check", "--quiet", "--report", ""]
    if level == "full":
        argv.append("--full")
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    r = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, check=False)
    if r.returncode != 0:
        raise RuntimeError(f"reskernels check ({level}) exited {r.returncode}: {r.stderr[-2000:]}")
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"wall_s": round(wall, 1), "cpu_s": round(cpu, 1)}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--levels", nargs="+", default=["quick", "full"], choices=["quick", "full"])
    p.add_argument("--only", nargs="+", metavar="ID", help="time only these claims (the others' rows are kept)")
    p.add_argument("--total", choices=["auto", "yes", "no"], default="auto",
                   help="also time the whole `reskernels check` (auto: for quick only, and not with --only)")
    p.add_argument("--out", default=OUT)
    args = p.parse_args(argv)

    sys.path.insert(0, ROOT)
    from reskernels.proofs_check.registry import load_all
    claims = [c for c in load_all().values() if c.check is not None]
    if args.only:
        claims = [c for c in claims if c.id in set(args.only)]

    try:
        with open(args.out) as fh:
            table = json.load(fh)
    except (OSError, ValueError):
        table = {}
    table.setdefault("claims", {})
    table.setdefault("check", {})
    table.setdefault("measured", {})
    table["about"] = ("Run time of each claim check alone in a fresh process (cold caches), wall and CPU "
                      "seconds, per level; 'check' is the whole `reskernels check` in one process. "
                      "Written by benchmarks/claim_timings.py.")
    for level in args.levels:
        load = os.getloadavg()[0]
        started = datetime.datetime.now(datetime.timezone.utc)
        loads = [load]
        table["measured"][level] = {
            "date": started.strftime("%Y-%m-%d %H:%M UTC"), "host": platform.node(),
            "cpus": os.cpu_count(), "python": platform.python_version(), "commit": _git_commit(),
            "claims": "all" if not args.only else sorted(args.only)}
        for i, c in enumerate(claims, 1):
            row = time_claim(c.id, level)
            # each row keeps its own provenance: a run of a few claims rewrites 'measured' below
            row.update(commit=table["measured"][level]["commit"], date=table["measured"][level]["date"])
            loads.append(os.getloadavg()[0])
            table["claims"].setdefault(c.id, {})[level] = row
            table["measured"][level]["load_avg_1min"] = [round(min(loads), 1), round(max(loads), 1)]
            _write(table, args.out)  # after every claim: an interrupted run keeps what it measured
            print(f"[{level} {i:>2}/{len(claims)}] {c.id:<28} {row['wall_s']:7.1f} s wall "
                  f"{row['cpu_s']:7.1f} s CPU  {row['status']}", flush=True)
        if args.total == "yes" or (args.total == "auto" and level == "quick" and not args.only):
            table["check"][level] = time_check(level)
            _write(table, args.out)
            print(f"[{level}] reskernels check: {table['check'][level]}", flush=True)
    print(f"wrote {args.out}")


def _write(table, path):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w") as fh:
        json.dump(table, fh, indent=1, sort_keys=True)
        fh.write("\n")
    os.replace(tmp, path)


if __name__ == "__main__":
    main()

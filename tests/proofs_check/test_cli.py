import json

import pytest

import reskernels
from reskernels.proofs_check.cli import main


def test_list_and_info(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "BELFER-SPIKY" in out and "claims" in out
    assert main(["info"]) == 0
    assert "ResNet(depth, alpha" in capsys.readouterr().out


def test_check_writes_json_and_report(tmp_path, capsys):
    rc = main(["check", "--only", "ARORA-FC-NTK", "HUANG-GPK", "--report", str(tmp_path), "--quiet"])
    assert rc == 0
    part = tmp_path / "partial"          # a run of some claims only never writes the full report
    assert not (tmp_path / "report.md").exists() and not (tmp_path / "verdicts.json").exists()
    doc = json.loads((part / "verdicts.json").read_text())
    status = {v["claim_id"]: v["status"] for v in doc["verdicts"]}
    assert status == {"ARORA-FC-NTK": "holds", "HUANG-GPK": "not-checkable"}
    assert "numpy" in doc["versions"] and doc["meta"]["partial"] is True
    text = (part / "report.md").read_text()
    from reskernels.proofs_check.registry import REGISTRY
    assert "## ARORA-FC-NTK" in text and "Partial run" in text and f"2 of {len(REGISTRY)} claims" in text


def test_check_figure_is_written(tmp_path):
    assert main(["check", "--only", "HUANG-FFNET-DEGENERATE", "--report", str(tmp_path), "--quiet"]) == 0
    assert (tmp_path / "partial" / "figures" / "huang-ffnet-degenerate.png").stat().st_size > 10000


def test_partial_run_leaves_the_full_report_and_removes_stale_figures(tmp_path, capsys):
    full = tmp_path / "report.md"
    full.write_text("# the last full report\n")
    stale = tmp_path / "partial" / "figures" / "belfer-spiky.png"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"old")
    assert main(["check", "--only", "HUANG-FFNET-DEGENERATE", "--report", str(tmp_path), "--quiet"]) == 0
    assert full.read_text() == "# the last full report\n"
    assert not stale.exists()                       # not drawn by this run: removed
    assert sorted(p.name for p in stale.parent.iterdir()) == ["huang-ffnet-degenerate.png"]
    out = capsys.readouterr().out
    from reskernels.proofs_check.registry import REGISTRY
    assert f"partial run (1 of {len(REGISTRY)} claims)" in out and "left as it was" in out


def test_terminal_says_the_level(capsys):
    assert main(["check", "--only", "ARORA-FC-NTK", "--report", "", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert out.lstrip().startswith("Level: quick") and "quick mode: 1 claim(s)" in out


@pytest.mark.parametrize("names,want", [(["bietti"], {"bietti"}), (["BIETTI"], {"bietti"}),
                                        (["Arora", "geifman"], {"arora", "geifman"}),
                                        (["background"], {"arora", "geifman", "bietti", "num"})])
def test_paper_names_follow_the_claim_prefixes(names, want):
    from reskernels.proofs_check.runner import select
    claims = select(papers=names)
    assert {c.paper for c in claims} == want
    for c in claims:
        assert c.id.split("-")[0].lower() == c.paper


def test_list_shows_measured_times_and_the_background_group(capsys):
    assert main(["list", "--paper", "background"]) == 0
    out = capsys.readouterr().out
    assert "BIETTI-ENDPOINT" in out and "ARORA-FC-NTK" in out and "BELFER-SPIKY" not in out
    assert "quick" in out and "full" in out and "each run alone" in out


def test_unknown_claim_is_a_usage_error(capsys):
    assert main(["check", "--only", "NO-SUCH-CLAIM", "--report", ""]) == 2
    assert "unknown claim" in capsys.readouterr().err


def test_erroring_check_gives_nonzero_exit(tmp_path, monkeypatch):
    from reskernels.proofs_check.registry import REGISTRY

    def boom(v, level, p):
        raise RuntimeError("bug")
    monkeypatch.setattr(REGISTRY["ARORA-FC-NTK"], "check", boom)
    assert main(["check", "--only", "ARORA-FC-NTK", "--report", str(tmp_path), "--quiet"]) == 1


# ---------------------------------------------------------------------------------------------
# usage errors: one line on stderr, exit status 2, no traceback
# ---------------------------------------------------------------------------------------------

KERNELS = '''
import numpy as np
from reskernels import ResNet, gram

def exact(X, Z):
    return gram(ResNet(2, 0.5), X, Z)

def resntk(X, Z, depth=3, alpha=0.5, kind="ntk"):
    """one function for every ResNet depth"""
    return gram(ResNet(depth, alpha), X, Z, kind=kind)

def by_spec(X, Z, spec):
    return gram(spec, X, Z)
'''


@pytest.fixture
def kernels(tmp_path):
    path = tmp_path / "userkernels.py"
    path.write_text(KERNELS)
    return str(path)


def _usage_error(capsys, argv, *needles):
    assert main(argv) == 2
    cap = capsys.readouterr()
    lines = cap.err.strip().splitlines()
    assert len(lines) == 1, cap.err
    assert "Traceback" not in cap.err and not cap.out
    for n in needles:
        assert n in lines[0], lines[0]
    return lines[0]


def test_list_unknown_paper_names_the_known_ones(capsys):
    _usage_error(capsys, ["list", "--paper", "nope"], "unknown paper(s): nope", "known:", "belfer", "huang")


@pytest.mark.parametrize("target,needle", [
    ("no_such_module:f", "no module named 'no_such_module'"),
    ("/missing.py:f", "no such file: /missing.py"),
    ("no_colon", "expected MODULE:FUNCTION"),
])
def test_conform_cannot_load_the_kernel(capsys, target, needle):
    _usage_error(capsys, ["conform", target, "--spec", "ResNet(2, 0.5)"], needle)


def test_conform_module_that_fails_to_import(capsys, tmp_path):
    bad = tmp_path / "broken.py"
    bad.write_text("import numpy\nraise RuntimeError('half-written module')\n")
    _usage_error(capsys, ["conform", f"{bad}:f", "--spec", "ResNet(2, 0.5)"],
                 "importing", "raised RuntimeError: half-written module")


@pytest.mark.parametrize("extra,needle", [
    (["--rtol", "-1"], "argument --rtol: must be a finite number >= 0, got '-1'"),
    (["--rtol", "nan"], "argument --rtol: must be a finite number >= 0, got 'nan'"),
    (["--rtol", "abc"], "argument --rtol: expected a number"),
    (["--max-examples", "0"], "argument --max-examples: must be an integer >= 1"),
    (["--max-seconds", "0"], "argument --max-seconds: must be a number > 0"),
    (["--properties", "nope"], "unknown property 'nope'; known: agrees_with_gram"),
    (["--properties", "depth1_identity"], "does not apply"),
    (["--kind", "cntk"], "argument --kind: invalid choice"),
])
def test_conform_bad_arguments(capsys, kernels, extra, needle):
    _usage_error(capsys, ["conform", f"{kernels}:exact", "--spec", "ResNet(2, 0.5)", *extra], needle)


@pytest.mark.parametrize("spec,needle", [("ResNet(depth=0, alpha=0.5)", "depth must be an integer >= 1"),
                                         ("Foo(1)", "spec must be a call of one of"),
                                         ("ResNet(2, 0.5, colour=1)", "colour")])
def test_conform_bad_spec(capsys, kernels, spec, needle):
    _usage_error(capsys, ["conform", f"{kernels}:exact", "--spec", spec], needle)


def test_pass_spec_needs_a_parameter(capsys, kernels):
    _usage_error(capsys, ["conform", f"{kernels}:exact", "--spec", "ResNet(2, 0.5)", "--pass-spec"],
                 "no parameter named after a spec field")


def test_help_and_version(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "infinite-width NNGP and NTK kernels" in out
    for cmd in ("check", "list", "conform", "info"):
        assert cmd in out
    assert main(["conform", "--help"]) == 0
    out = capsys.readouterr().out
    assert "--pass-spec" in out and "FUNCTION(X, Z, depth=..., alpha=..., ...)" in out
    assert "mathematics tier" in out and "exit status" in out and "--max-seconds" in out
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"reskernels {reskernels.__version__}"


def test_check_only_is_case_insensitive(capsys):
    assert main(["check", "--only", "huang-gpk", "--report", "", "--quiet"]) == 0
    assert "HUANG-GPK" in capsys.readouterr().out


def test_conform_pass_spec_narrows_to_depth_1(capsys, kernels):
    args = ["--spec", "ResNet(depth=1, alpha=0.5)", "--max-examples", "4", "--properties", "agrees_with_gram",
            "depth1_identity"]
    # resntk's own default depth is 3: called plainly it is the wrong kernel for depth 1
    assert main(["conform", f"{kernels}:resntk", *args, "--quiet"]) == 1
    assert "fails the mathematics tier" in capsys.readouterr().out
    assert main(["conform", f"{kernels}:resntk", *args, "--pass-spec"]) == 0
    cap = capsys.readouterr()
    assert "PASS" in cap.out
    assert "calling resntk(X, Z, depth=1, alpha=0.5, kind='ntk')" in cap.err
    assert "not passed" in cap.err and "input_var=1.0" in cap.err
    assert "[1/2] agrees_with_gram" in cap.err and "[2/2] depth1_identity" in cap.err     # progress
    assert main(["conform", f"{kernels}:by_spec", *args, "--pass-spec-object", "--quiet"]) == 0
    assert "calling by_spec(X, Z, spec=ResNet(depth=1" in capsys.readouterr().err


def test_conform_exit_3_when_the_reference_cannot_be_computed(capsys, kernels):
    rc = main(["conform", f"{kernels}:exact", "--spec", "ResNet(depth=2000, alpha=1.0)", "--max-examples", "2",
               "--properties", "agrees_with_gram", "--quiet"])
    out = capsys.readouterr().out
    assert rc == 3, out
    assert "reference gram(spec) raised OverflowError" in out and "not your kernel" in out
    assert "the kernel raised" not in out


class _Tty:
    def __init__(self):
        self.parts = []

    def write(self, s):
        self.parts.append(s)

    def flush(self):
        pass

    def isatty(self):
        return True


def test_live_line_shows_progress_from_inside_a_check(monkeypatch):
    from reskernels.proofs_check import common
    from reskernels.proofs_check.registry import REGISTRY
    from reskernels.proofs_check.runner import run

    def slow(v, level, p):
        v.progress(1, 2, "first half")
        common.progress(2, 2, "second half")       # the same, for helpers without the verdict
        v.add("x", 1.0, 1.0, True, "equal")
    monkeypatch.setattr(REGISTRY["ARORA-FC-NTK"], "check", slow)
    tty = _Tty()
    (v,) = run([REGISTRY["ARORA-FC-NTK"]], "quick", progress=True, stream=tty)
    text = "".join(tty.parts)
    assert v.status == "holds"
    assert "1 claim(s) in quick mode" in text
    assert "step 1/2 (first half)" in text and "step 2/2 (second half)" in text
    assert "ARORA-FC-NTK" in text and "holds" in text.splitlines()[-1]
    common.progress(1, 1, "outside a check: nothing happens")


def test_progress_off_a_terminal_writes_finished_lines_only(monkeypatch):
    import io

    from reskernels.proofs_check.registry import REGISTRY
    from reskernels.proofs_check.runner import run
    buf = io.StringIO()
    run([REGISTRY["ARORA-FC-NTK"]], "full", progress=True, stream=buf)
    text = buf.getvalue()
    assert "\r" not in text and "in full mode" in text
    assert len(text.strip().splitlines()) == 2


def test_estimates_come_from_the_timing_table(monkeypatch):
    from reskernels.proofs_check import registry
    monkeypatch.setattr(registry, "_TIMINGS", {"claims": {"TIRER-STABLE-TRAINING": {"quick": {"wall_s": 80.0,
                                                                                           "cpu_s": 57.0}}}})
    c = registry.load_all()["TIRER-STABLE-TRAINING"]
    assert c.estimate("quick") == (57.0, True)
    assert c.estimate("full") == (None, False)
    assert registry.load_all()["HUANG-GPK"].estimate("quick") == (0.0, True)

import json

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
    doc = json.loads((tmp_path / "verdicts.json").read_text())
    status = {v["claim_id"]: v["status"] for v in doc["verdicts"]}
    assert status == {"ARORA-FC-NTK": "holds", "HUANG-GPK": "not-checkable"}
    assert "numpy" in doc["versions"]
    assert "## ARORA-FC-NTK" in (tmp_path / "report.md").read_text()


def test_check_figure_is_written(tmp_path):
    assert main(["check", "--only", "HUANG-FFNET-DEGENERATE", "--report", str(tmp_path), "--quiet"]) == 0
    assert (tmp_path / "figures" / "huang-ffnet-degenerate.png").stat().st_size > 1000


def test_unknown_claim_is_a_usage_error(capsys):
    assert main(["check", "--only", "NO-SUCH-CLAIM", "--report", ""]) == 2
    assert "unknown claim" in capsys.readouterr().err


def test_erroring_check_gives_nonzero_exit(tmp_path, monkeypatch):
    from reskernels.proofs_check.registry import REGISTRY

    def boom(v, level, p):
        raise RuntimeError("bug")
    monkeypatch.setattr(REGISTRY["ARORA-FC-NTK"], "check", boom)
    assert main(["check", "--only", "ARORA-FC-NTK", "--report", str(tmp_path), "--quiet"]) == 1

"""The report a paper reader can trace: papers cited by title, arXiv id and docs/papers.md section,
provenance tags defined, Monte Carlo rows with their standard errors, no cut words, no citations of
files that are not in the repository, no stale figures."""
import glob
import os
import re

import pytest

from reskernels.proofs_check.registry import PAPERS, load_all
from reskernels.proofs_check.report import TAGS, shorten, summary_table, write_markdown
from reskernels.proofs_check.verdict import Verdict

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
REG = load_all()


def _verdict(cid="LITTWIN-CV-RESNET", **kw):
    c = REG[cid]
    v = Verdict(c.id, c.paper, c.statement, c.provenance, c.conventions, section=c.section, **kw)
    return v


@pytest.mark.parametrize("text,width", [
    ("drift 0.0213 at m=256, 0.00689 at m=1024: exponent -0.82 (m^-1/2 predicts -0.5; reported)", 60),
    ("independent of depth (L = 2..32 at weight_var 2: CV^2 n intervals intersect); not of the weight", 40),
    ("short", 40),
])
def test_shorten_cuts_at_word_boundaries(text, width):
    out = shorten(text, width)
    assert len(out) <= width
    if out != text:
        assert out.endswith("...")
        stem = out[:-3]
        assert text.startswith(stem)
        assert text[len(stem)] in " ,;:", f"cut inside a word: {out!r}"


def test_summary_table_says_the_level_and_keeps_whole_words():
    v = _verdict(status="holds-in-scope", runtime_s=1.0)
    v.scope = "independent of depth (L = 2..32 at weight_var 2: CV^2 n intervals intersect); " * 3
    out = summary_table([v], "full")
    assert out.startswith("Level: full")
    row = [ln for ln in out.splitlines() if ln.startswith("LITTWIN-CV-RESNET")][0]
    finding = row.split("s  ", 1)[1]
    assert finding.endswith("...")
    words = set(v.scope.split())
    assert all(w in words or w.rstrip(".") in words or w.endswith("...") for w in finding[:-3].split())


def test_every_paper_entry_has_title_and_arxiv_id_and_a_section_that_exists():
    doc = open(os.path.join(ROOT, "docs", "papers.md")).read()
    for key, p in PAPERS.items():
        num = p.section.lstrip("§")
        assert re.search(rf"^## {re.escape(num)}[. ]", doc, re.M), (key, p.section)
        if key == "num":
            continue
        assert p.title and p.arxiv and re.fullmatch(r"\d{4}\.\d{5}", p.arxiv), key
        assert p.arxiv in doc, f"{key}: arXiv id {p.arxiv} is not the one docs/papers.md states"
    assert PAPERS["littwin"].arxiv == "2001.10460" and PAPERS["barzilai"].arxiv == "2211.14810"


def test_every_claim_has_a_heading_in_docs_papers_md_and_its_papers_section():
    doc = open(os.path.join(ROOT, "docs", "papers.md")).read()
    for cid, c in REG.items():
        assert f"### {cid}" in doc, cid
        assert c.paper in PAPERS
        if c.paper != "num":
            assert cid.split("-")[0].lower() == c.paper


def test_background_is_split_into_its_papers():
    papers = {REG[i].paper for i in ("ARORA-FC-NTK", "GEIFMAN-DECAY", "BIETTI-ENDPOINT", "NUM-PSD")}
    assert papers == {"arora", "geifman", "bietti", "num"}
    assert "background" not in {c.paper for c in REG.values()}


def _report(tmp_path, verdicts, **kw):
    path = write_markdown(verdicts, str(tmp_path), "quick", figures=False, **kw)
    return open(path).read()


def test_report_defines_tags_and_cites_papers_by_title_arxiv_and_section(tmp_path):
    vs = [_verdict("LITTWIN-CV-RESNET", status="holds"), _verdict("BARZILAI-DIAG", status="holds"),
          _verdict("BIETTI-ENDPOINT", status="holds"), _verdict("NUM-PSD", status="holds")]
    text = _report(tmp_path, vs)
    for tag in TAGS:
        assert f'<a id="tag-{tag}"></a>**[{tag}]**' in text
    # every tag used in a provenance line links to a definition
    for line in text.splitlines():
        if line.startswith("- provenance:"):
            for tag in re.findall(r"\[([a-z]+)\]\(#tag-", line):
                assert tag in TAGS
    for key in ("littwin", "barzilai", "bietti"):
        p = PAPERS[key]
        assert f"arXiv:{p.arxiv}; docs/papers.md {p.section}" in text
        assert p.title in text
    assert "docs/papers.md §9, heading NUM-PSD" in text
    assert "| littwin |" in text and "| bietti |" in text and "background" not in text.split("## Summary")[0]


def test_montecarlo_rows_print_their_standard_error(tmp_path):
    v = _verdict(status="holds")
    v.add("E Theta(x,x), MLP, L=2, n=64", 3.01, 3.0, True, "|mean - exact| <= 4 s.e.", "200 inits", "montecarlo",
          se=0.0123)
    v.add("CV^2 ordering", [1.0, 0.5], "decreasing", True, "ordered in >= 95% of bootstrap replicates", "", "montecarlo")
    v.add("mean vs exact, s.e. forgotten", 1.0, 1.0, True, "|mean - exact| <= 4 s.e.", "", "montecarlo")
    text = _report(tmp_path, [v])
    rows = [ln for ln in text.splitlines() if ln.startswith("| ") and "montecarlo" in ln]
    assert "s.e. = 0.0123" in rows[0]
    assert "bootstrap" in rows[1] and "no s.e." in rows[1]
    assert "s.e. not recorded" in rows[2]


def test_partial_report_says_so(tmp_path):
    text = _report(tmp_path, [_verdict(status="holds")], partial_note="1 of 40 claims (--only LITTWIN-CV-RESNET).")
    assert "**Partial run.** 1 of 40 claims" in text.split("## Summary")[0]


def test_write_markdown_removes_figures_it_did_not_draw(tmp_path):
    figdir = tmp_path / "figures"
    figdir.mkdir()
    (figdir / "belfer-spiky.png").write_bytes(b"stale")
    _report(tmp_path, [_verdict(status="holds")])
    assert not (figdir / "belfer-spiky.png").exists()


def test_code_and_report_cite_only_files_in_the_repository(tmp_path):
    """Every `*.md` path named in proofs_check/ (docstrings, reasons, report text) exists in the repo."""
    missing = []
    for path in glob.glob(os.path.join(ROOT, "proofs_check", "**", "*.py"), recursive=True):
        for name in re.findall(r"[\w./-]+\.md\b", open(path).read()):
            if name in ("report.md",) or name.endswith("/report.md"):
                continue
            if not os.path.isfile(os.path.join(ROOT, name)):
                missing.append(f"{os.path.relpath(path, ROOT)}: {name}")
    assert not missing, missing
    text = _report(tmp_path, [_verdict(c, status="holds") for c in REG])
    for name in set(re.findall(r"[\w./-]+\.md\b", text)):
        assert os.path.isfile(os.path.join(ROOT, name)), name

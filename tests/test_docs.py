"""The documentation: the Sphinx build (API reference from the docstrings, the Markdown pages of docs/)
and the files that make it up.

The full build runs in ``.ci/run`` after the tests pass (``pip install ".[docs]"`` then
``sphinx-build -W --keep-going``); here it is marked ``slow`` (about half a minute) and skipped without
Sphinx and MyST, so ``pytest -m "not slow"`` stays fast.  The other tests need neither."""
import importlib.util
import os
import re
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCS = os.path.join(ROOT, "docs")


def _conf():
    spec = importlib.util.spec_from_file_location("reskernels_docs_conf", os.path.join(DOCS, "conf.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _toctree_entries() -> set:
    with open(os.path.join(DOCS, "index.md")) as fh:
        text = fh.read()
    entries = set()
    for block in re.findall(r"```\{toctree\}\n(.*?)```", text, re.S):
        entries |= {line.strip() for line in block.splitlines() if line.strip() and not line.startswith(":")}
    return entries


def test_every_docs_page_is_in_the_index():
    pages = {f[:-3] for f in os.listdir(DOCS) if f.endswith(".md") and f != "index.md"}
    assert {"conventions", "spectral", "papers", "development", "neural_tangents"} <= pages
    assert pages <= _toctree_entries(), pages - _toctree_entries()
    for api_page in _conf().API_PAGES:
        assert api_page in _toctree_entries()
        assert os.path.isfile(os.path.join(DOCS, api_page + ".rst"))


def test_api_pages_cover_every_module():
    conf = _conf()
    found = {m for pkg in conf.API_PAGES.values() for m in conf.api_modules(pkg)}
    for name in ("reskernels.theory.latex", "reskernels.theory.arch", "reskernels.numerics.pointwise",
                 "reskernels.numerics.spectra", "reskernels.proofs_check.conformance",
                 "reskernels.proofs_check.claims.belfer"):
        assert name in found
    # every source file of the three folders is a documented module
    for folder, package in (("theory", "reskernels.theory"), ("numerics", "reskernels.numerics"),
                            ("proofs_check", "reskernels.proofs_check")):
        for dirpath, _, files in os.walk(os.path.join(ROOT, folder)):
            rel = os.path.relpath(dirpath, os.path.join(ROOT, folder))
            if "__pycache__" in rel:
                continue
            prefix = package if rel == "." else package + "." + rel.replace(os.sep, ".")
            for f in files:
                if f.endswith(".py") and not f.startswith("_"):
                    assert f"{prefix}.{f[:-3]}" in found, f"{prefix}.{f[:-3]}"


def test_citation_and_license():
    import reskernels
    with open(os.path.join(ROOT, "CITATION.cff")) as fh:
        cff = fh.read()
    assert re.search(r"^cff-version: 1\.2\.0$", cff, re.M)
    assert re.search(rf'^version: "?{re.escape(reskernels.__version__)}"?$', cff, re.M)
    for key in ("message", "title", "authors", "abstract", "license"):
        assert re.search(rf"^{key}:", cff, re.M), key
    assert "doi:" not in cff.lower()
    with open(os.path.join(ROOT, "LICENSE")) as fh:
        text = fh.read()
    assert text.startswith("MIT License") and "the reskernels developers" in text


@pytest.mark.slow
def test_sphinx_build_has_no_warnings(tmp_path):
    pytest.importorskip("sphinx")
    pytest.importorskip("myst_parser")
    out = subprocess.run([sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html",
                          DOCS, str(tmp_path / "html")], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-4000:]
    html = (tmp_path / "html" / "api" / "theory.html").read_text()
    assert "kernel_latex" in html and "kernel_expr" in html       # autodoc ran on the docstrings
    assert (tmp_path / "html" / "neural_tangents.html").is_file()

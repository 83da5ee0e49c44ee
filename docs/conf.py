"""Sphinx configuration: the API reference from the docstrings (autodoc, numpy style via napoleon)
and the Markdown pages of docs/ (MyST).  Build (no make needed, from the repository root):

    pip install ".[docs]" && sphinx-build -W --keep-going -b html docs docs/_build/html

The API pages list every module of the installed package, found at build time
(:func:`api_modules`), so a new module is documented without editing these files.
"""
import os
import pkgutil
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)          # a checkout imports uninstalled (reskernels/__init__.py extends __path__)

import reskernels  # noqa: E402

project = "reskernels"
author = "the reskernels developers"
copyright = "the reskernels developers"
release = version = reskernels.__version__

extensions = ["sphinx.ext.autodoc", "sphinx.ext.napoleon", "sphinx.ext.mathjax", "myst_parser"]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build"]
myst_heading_anchors = 3
suppress_warnings = ["myst.header"]        # the spec pages start at ## under one # title

# ignore-module-all: a package's __all__ re-exports names documented in their own modules; document
# each object once, where it is defined.
autodoc_default_options = {"members": True, "show-inheritance": True, "ignore-module-all": True}
autodoc_member_order = "bysource"
autodoc_typehints = "description"
napoleon_numpy_docstring = True
napoleon_google_docstring = False
napoleon_use_rtype = False

html_theme = "alabaster"
html_title = f"reskernels {release}"

#: api/<page>.rst -> the subpackage whose modules it documents
API_PAGES = {"api/theory": "reskernels.theory", "api/numerics": "reskernels.numerics",
             "api/proofs_check": "reskernels.proofs_check"}
MARKER = ".. api-modules::"


def api_modules(package: str) -> list:
    """Every module of ``package`` (recursively), sorted, the package itself first."""
    pkg = __import__(package, fromlist=["_"])
    names = [package]
    for info in pkgutil.walk_packages(pkg.__path__, prefix=package + "."):
        if not info.name.rsplit(".", 1)[-1].startswith("_"):
            names.append(info.name)
    return sorted(set(names), key=lambda n: (n != package, n))


# Docstrings here are read as plain text too (``help()``), and write absolute values and norms as
# |x|, |x - z| -- in reStructuredText a substitution reference.  No docstring defines a
# substitution, so a bar outside literals and roles is a literal bar: escaped, or, inside a simple
# table (whose columns must keep their widths), the same-width sign U+2223.
_LITERAL = re.compile(r"(``.+?``|:[a-z:]+:`[^`]*`|`[^`]*`)")
_TABLE_BORDER = re.compile(r"^\s*=+( +=+)+\s*$")


def _literal_bars(app, what, name, obj, options, lines):
    borders = [i for i, line in enumerate(lines) if _TABLE_BORDER.match(line)]
    for i, line in enumerate(lines):
        if "|" not in line:
            continue
        in_table = sum(b < i for b in borders) % 3 != 0     # a simple table has 3 border lines
        bar = "\u2223" if in_table else "\\|"
        parts = _LITERAL.split(line)
        lines[i] = "".join(p if k % 2 else p.replace("|", bar) for k, p in enumerate(parts))


def _fill_api_page(app, docname, source):
    package = API_PAGES.get(docname)
    if package is None or MARKER not in source[0]:
        return
    blocks = []
    for name in api_modules(package):
        title = f"``{name}``"
        blocks.append(f"{title}\n{'-' * len(title)}\n\n.. automodule:: {name}\n")
    source[0] = source[0].replace(MARKER, "\n".join(blocks))


def setup(app):
    app.connect("source-read", _fill_api_page)
    app.connect("autodoc-process-docstring", _literal_bars)

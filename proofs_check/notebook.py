"""Notebook set-up: quick or full parameter sets and where figures go.

``QUICK`` is true unless ``RESKERNELS_QUICK=0`` (read when a notebook imports this module);
:func:`savefig` writes ``<stem>.png`` into ``RESKERNELS_FIGDIR`` (default ``build/figures``), read
at each call so that every notebook run in one process honours its own setting."""
import os

QUICK = os.environ.get("RESKERNELS_QUICK", "1") == "1"


def figdir() -> str:
    """The figure directory (``RESKERNELS_FIGDIR``, default build/figures), created if missing."""
    path = os.environ.get("RESKERNELS_FIGDIR", os.path.join("build", "figures"))
    os.makedirs(path, exist_ok=True)
    return path


def savefig(fig, stem):
    """Save ``fig`` as ``<figdir>/<stem>.png`` (110 dpi) and return the path."""
    path = os.path.join(figdir(), f"{stem}.png")
    fig.savefig(path, dpi=110)
    return path

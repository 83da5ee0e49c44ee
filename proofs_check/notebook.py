"""Notebook set-up: quick or full parameter sets (RESKERNELS_QUICK) and the figure directory
(RESKERNELS_FIGDIR, default build/figures)."""
import os

QUICK = os.environ.get("RESKERNELS_QUICK", "1") == "1"
FIGDIR = os.environ.get("RESKERNELS_FIGDIR", os.path.join("build", "figures"))
os.makedirs(FIGDIR, exist_ok=True)


def savefig(fig, stem):
    path = os.path.join(FIGDIR, f"{stem}.png")
    fig.savefig(path, dpi=110)
    return path

"""Shared notebook set-up: quick/full sizes and the figure directory."""
import os

QUICK = os.environ.get("RESKERNELS_QUICK", "1") == "1"
FIGDIR = os.environ.get("RESKERNELS_FIGDIR", os.path.join("build", "figures"))
os.makedirs(FIGDIR, exist_ok=True)


def savefig(fig, stem):
    path = os.path.join(FIGDIR, f"{stem}.png")
    fig.savefig(path, dpi=110)
    return path

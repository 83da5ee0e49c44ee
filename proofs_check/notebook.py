"""Notebook set-up: quick or full parameter sets and where figures go.

``QUICK`` is true unless ``RESKERNELS_QUICK=0`` (read when a notebook imports this module);
:func:`savefig` writes ``<stem>.png`` into ``RESKERNELS_FIGDIR`` (default ``build/figures``), read
at each call so that every notebook run in one process honours its own setting.  It lays the figure
out so that no label is clipped, gives it a title when it has none, and warns (:class:`FigureWarning`)
about axes without a title or axis labels or with internal spec slugs in a legend."""
import os
import warnings

QUICK = os.environ.get("RESKERNELS_QUICK", "1") == "1"


class FigureWarning(UserWarning):
    """A notebook figure is missing a title or an axis label."""


def figdir() -> str:
    """The figure directory (``RESKERNELS_FIGDIR``, default build/figures), created if missing."""
    path = os.environ.get("RESKERNELS_FIGDIR", os.path.join("build", "figures"))
    os.makedirs(path, exist_ok=True)
    return path


def savefig(fig, stem, title: str | None = None):
    """Save ``fig`` as ``<figdir>/<stem>.png`` (110 dpi) and return the path.

    ``title`` becomes the figure's title when it has none (default: the stem in words).  The figure is
    laid out with matplotlib's constrained layout when it has no layout engine, and saved with a tight
    bounding box, so axis labels and legends are never cut off."""
    from .figures import figure_problems
    if fig._suptitle is None:
        fig.suptitle(title or stem.replace("_", " "), fontsize=11)
    if fig.get_layout_engine() is None:
        try:
            fig.set_layout_engine("constrained")
        except RuntimeError:  # colorbars or a layout already computed: keep what there is
            pass
    problems = [p for p in figure_problems(fig) if "no figure title" not in p]
    if problems:
        warnings.warn(f"figure {stem}: " + "; ".join(problems), FigureWarning, stacklevel=2)
    path = os.path.join(figdir(), f"{stem}.png")
    fig.savefig(path, dpi=110, bbox_inches="tight")
    return path

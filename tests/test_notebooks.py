"""Every notebook script runs top to bottom (quick parameters, Agg backend) and writes its figures,
each titled and with labelled axes (a FigureWarning of ``proofs_check.notebook.savefig`` is an error)."""
import pathlib
import runpy
import warnings

import pytest

NB = sorted((pathlib.Path(__file__).parent.parent / "notebooks").glob("*.py"))


@pytest.mark.notebook
@pytest.mark.parametrize("path", NB, ids=[p.stem for p in NB])
def test_notebook_runs(path, tmp_path, monkeypatch):
    import matplotlib
    matplotlib.use("Agg")
    monkeypatch.setenv("RESKERNELS_QUICK", "1")
    monkeypatch.setenv("RESKERNELS_FIGDIR", str(tmp_path))
    from reskernels.proofs_check.notebook import FigureWarning
    with warnings.catch_warnings():
        warnings.simplefilter("error", FigureWarning)     # a figure without title or axis labels fails
        runpy.run_path(str(path), run_name="__main__")
    pngs = [f for f in tmp_path.iterdir() if f.suffix == ".png"]
    assert pngs and all(f.stat().st_size > 1000 for f in pngs)
    import matplotlib.pyplot as plt
    plt.close("all")

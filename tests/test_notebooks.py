"""Every notebook script runs top to bottom (quick parameters, Agg backend) and writes its figure."""
import pathlib
import runpy

import pytest

NB = sorted((pathlib.Path(__file__).parent.parent / "notebooks").glob("*.py"))


@pytest.mark.notebook
@pytest.mark.parametrize("path", NB, ids=[p.stem for p in NB])
def test_notebook_runs(path, tmp_path, monkeypatch):
    import matplotlib
    matplotlib.use("Agg")
    monkeypatch.setenv("RESKERNELS_QUICK", "1")
    monkeypatch.setenv("RESKERNELS_FIGDIR", str(tmp_path))
    runpy.run_path(str(path), run_name="__main__")
    assert any(f.suffix == ".png" and f.stat().st_size > 1000 for f in tmp_path.iterdir())
    import matplotlib.pyplot as plt
    plt.close("all")

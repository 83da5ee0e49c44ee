"""Every figure is written, titled, labelled and legible: checked on the matplotlib Figure before it
is saved (titles, axis labels, data drawn, no internal spec slugs in legends), then on the PNG file."""
import struct

import numpy as np
import pytest

from reskernels.proofs_check.figures import FIGURES, figure_problems, pretty
from reskernels.proofs_check.registry import load_all

REG = load_all()

# claims cheap enough to run in the fast suite (well under a few CPU seconds each in quick mode)
FAST = ["ARORA-FC-NTK", "NUM-PSD", "HUANG-FFNET-DEGENERATE", "HUANG-RESNET-STABLE", "TIRER-NTK-FORMULA",
        "TIRER-SMOOTHER", "TIRER-ATTENUATION", "BELFER-SPIKY", "LITTWIN-CV-RESNET", "BARZILAI-COND-GPK"]
SLOW = sorted(set(FIGURES) - set(FAST))

_VERDICTS = {}


def verdict(cid):
    if cid not in _VERDICTS:
        _VERDICTS[cid] = REG[cid].run("quick")
    v = _VERDICTS[cid]
    assert v.status != "error", v.summary
    return v


def png_size(path):
    with open(path, "rb") as fh:
        head = fh.read(24)
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", head[16:24])


def check_figure(cid, tmp_path):
    import matplotlib.pyplot as plt
    spec = FIGURES[cid]
    v = verdict(cid)
    fig = spec.make(v)
    try:
        assert figure_problems(fig) == []
        assert fig._suptitle.get_text() == spec.title
        for ax in fig.axes:
            assert ax.get_title() and ax.get_xlabel() and ax.get_ylabel()
            leg = ax.get_legend()
            for t in (leg.get_texts() if leg else []):
                assert "-iv" not in t.get_text() and "-wv" not in t.get_text()
    finally:
        plt.close(fig)
    path = tmp_path / f"{cid.lower()}.png"
    spec.draw(v, str(path))
    assert path.stat().st_size > 15000
    w, h = png_size(path)
    assert 500 <= w <= 2000 and 300 <= h <= 1200
    assert len(spec.caption) > 40
    return v


@pytest.mark.parametrize("cid", FAST)
def test_figure_of_a_cheap_claim(cid, tmp_path):
    check_figure(cid, tmp_path)


@pytest.mark.parametrize("cid", SLOW)
def test_figure_of_a_slow_claim(cid, tmp_path):
    """The other claims' figures (1-13 s each here; in CI since the suite runs on two workers)."""
    check_figure(cid, tmp_path)


def test_figures_cover_the_curves_tables_over_depth_and_spectra():
    want = {"BELFER-SPIKY", "BELFER-DECAY", "BELFER-RKHS", "BELFER-PARITY", "HUANG-FFNET-DEGENERATE",
            "HUANG-RESNET-STABLE", "TIRER-NTK-FORMULA", "TIRER-SMOOTHER", "TIRER-ATTENUATION",
            "TIRER-STABLE-TRAINING", "LITTWIN-CV-RESNET", "LITTWIN-MLP-DEPTH", "LITTWIN-DENSENET",
            "BARZILAI-LOCAL", "BARZILAI-DECAY", "BARZILAI-COND-GPK", "BARZILAI-COND-NTK", "ARORA-FC-NTK",
            "GEIFMAN-DECAY", "BIETTI-ENDPOINT", "BIETTI-DEEP-SHALLOW", "NUM-PSD"}
    assert want <= set(FIGURES)
    assert set(FIGURES) <= set(REG)


def test_monte_carlo_bars_carry_intervals(tmp_path):
    import matplotlib.pyplot as plt
    fig = FIGURES["LITTWIN-CV-RESNET"].make(verdict("LITTWIN-CV-RESNET"))
    try:
        (ax,) = fig.axes
        bars = [c for c in ax.containers if hasattr(c, "errorbar")]
        assert bars and bars[0].errorbar is not None
    finally:
        plt.close(fig)


def test_bietti_endpoint_draws_even_and_odd_k_as_separate_series():
    import matplotlib.pyplot as plt
    fig = FIGURES["BIETTI-ENDPOINT"].make(verdict("BIETTI-ENDPOINT"))
    try:
        for line in fig.axes[0].lines:
            ks = np.asarray(line.get_xdata())
            if line.get_label().endswith("tolerance)"):
                continue
            assert len(set(ks.astype(int) % 2)) == 1, line.get_label()
    finally:
        plt.close(fig)


def test_figure_problems_catches_missing_labels_and_slugs(tmp_path):
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots()
    ax.plot([1, 2], [3, 4], label="MLP-L1-iv1-wv2-all")
    ax.legend()
    problems = figure_problems(fig)
    assert "no figure title" in problems
    assert any("no x label" in p for p in problems) and any("no title" in p for p in problems)
    assert any("slug" in p for p in problems)
    plt.close(fig)
    fig, ax = plt.subplots()
    ax.set_title("t")
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    fig.suptitle("s")
    assert figure_problems(fig) == ["axes 0: nothing drawn"]
    plt.close(fig)


def test_a_figure_that_fails_its_check_is_not_written(tmp_path):
    from reskernels.proofs_check.figures import FigureSpec

    def bad(v):
        import matplotlib.pyplot as plt
        fig, ax = plt.subplots()
        ax.plot([0, 1], [0, 1])
        return fig
    with pytest.raises(ValueError, match="no x label"):
        FigureSpec("X", "a title", "a caption", bad).draw(None, str(tmp_path / "x.png"))
    assert not (tmp_path / "x.png").exists()


def test_pretty_names_replace_slugs():
    assert pretty("MLP-L1-iv1-wv2-all ntk, d=3") == "MLP(1) ntk, d=3"
    assert pretty("ResNet-L2-a1-iv1-wv2-all nngp") == "ResNet(2, a=1) nngp"
    assert pretty("ResNet-L5-a0.1-iv0.5-wv1-all") == "ResNet(5, a=0.1, input_var=0.5, weight_var=1)"


def test_notebook_savefig_titles_lays_out_and_warns(tmp_path, monkeypatch):
    import matplotlib.pyplot as plt

    from reskernels.proofs_check.notebook import FigureWarning, savefig
    monkeypatch.setenv("RESKERNELS_FIGDIR", str(tmp_path))
    fig, axes = plt.subplots(1, 2, sharey=True)
    for ax in axes:
        ax.plot([1, 2], [1, 2])
        ax.set_title("t")
        ax.set_xlabel("x")
    axes[0].set_ylabel("y")                      # the shared y needs one label only
    assert not [w for w in _warnings(lambda: savefig(fig, "good_one"))]
    assert fig._suptitle.get_text() == "good one" and fig.get_layout_engine() is not None
    assert (tmp_path / "good_one.png").stat().st_size > 5000
    fig2, ax2 = plt.subplots()
    ax2.plot([1, 2], [1, 2])
    ws = _warnings(lambda: savefig(fig2, "bad"))
    assert any(issubclass(w.category, FigureWarning) and "no x label" in str(w.message) for w in ws)
    plt.close("all")


def _warnings(fn):
    import warnings
    with warnings.catch_warnings(record=True) as ws:
        warnings.simplefilter("always")
        fn()
    return ws

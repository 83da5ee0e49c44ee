"""Scope maps: the grid, the region sentence, the outputs, and maps that can fail."""
from __future__ import annotations

import json

import numpy as np
import pytest

from reskernels.proofs_check import scope
from reskernels.proofs_check.scope import Axis, ScopeMap


@pytest.fixture
def toy_map():
    """A map with a known region: the claim holds where a >= 2 and b = 'x' (margin a - 1.5 or -1)."""
    def evaluate(at):
        m = at["a"] - 1.5 if at["b"] == "x" else -1.0
        return m, {"a*10": at["a"] * 10}
    smap = ScopeMap("TOY-CLAIM", (Axis("a", (1, 2, 3), 2, "an ordered axis", ordered=True),
                                  Axis("b", ("x", "y"), "x", "a categorical axis"),
                                  Axis("c", (0.0, 1.0), 0.0, "never swept here")),
                    evaluate, "a - 1.5 where b = x, else -1", "toy criterion", "nothing")
    scope.load_all()
    scope.SCOPE_MAPS["TOY-CLAIM"] = smap
    yield smap
    del scope.SCOPE_MAPS["TOY-CLAIM"]


def test_grid_sweeps_chosen_axes_and_fixes_the_rest(toy_map):
    g = toy_map.grid(["a"])
    assert [p["a"] for p in g] == [1, 2, 3] and all(p["b"] == "x" and p["c"] == 0.0 for p in g)
    assert len(toy_map.grid()) == 12
    g = toy_map.grid(["a"], fix={"b": "y"})
    assert all(p["b"] == "y" for p in g)
    with pytest.raises(ValueError, match="no convention axis 'zz'"):
        toy_map.grid(["zz"])
    with pytest.raises(ValueError, match="both swept"):
        toy_map.grid(["a"], fix={"a": 1})


def test_region_sentence_names_the_separating_conditions(toy_map):
    res = scope.sweep(toy_map, over=["a", "b"], progress=False)
    assert res.status == "holds-in-scope" and res.n_holds == 2 and res.swept == ["a", "b"]
    text = res.region()
    assert "holds at 2 of 6 points: wherever a >= 2 and b = x (2)" in text
    assert "fails at 4 of 6 points" in text and "b = y" in text and "a = 1" in text


def test_all_or_nothing_and_ties(toy_map):
    res = scope.sweep(toy_map, over=["a"], fix={"b": "y"}, progress=False)
    assert res.status == "fails" and res.region().startswith("fails at every one of the 3")
    res = scope.sweep(toy_map, over=["c"], fix={"a": 3}, progress=False)
    assert res.status == "holds" and "holds at every one of the 2" in res.region()
    # a point whose margin is within its stated error is a tie, not a hold
    tie_map = ScopeMap("TOY-CLAIM", toy_map.axes, lambda at: (1e-9, {"margin error": 1e-6}), "m", "c")
    scope.SCOPE_MAPS["TOY-CLAIM"] = tie_map
    res = scope.sweep(tie_map, over=["a"], progress=False)
    assert res.n_holds == 0 and all(p.tie for p in res.points) and "ties" in res.region()
    assert res.status == "inconclusive" and res.region().startswith("is undecided (ties within the margin's error) "
                                                                    "at every one of the 3")


def test_region_names_holds_fails_and_ties_apart(toy_map):
    """Three kinds of point: a = 1 fails, a = 2 is a tie (margin within its error), a = 3 holds.  The
    sentence describes each kind by its own condition (a tie is not called a failure), the map holds in
    scope, and the claim's own point (a = 2, b = x: the defaults) is named where it disagrees."""
    from reskernels.proofs_check.verdict import Verdict

    def evaluate(at):
        return {1: -1.0, 2: 0.01, 3: 1.0}[at["a"]], {"margin error": 0.1}
    mixed = ScopeMap("TOY-CLAIM", toy_map.axes, evaluate, "m", "c", check_over=("a",))
    scope.SCOPE_MAPS["TOY-CLAIM"] = mixed
    res = scope.sweep(mixed, over=["a"], progress=False)
    text = res.region()
    assert res.status == "holds-in-scope"
    assert "holds at 1 of 3 points: wherever a = 3 (1)" in text or "holds at 1 of 3 points: wherever a >= 3" in text
    assert "fails at 1 of 3 points: wherever a = 1 (1)" in text
    assert "is undecided (a tie within the margin's error) at 1 of 3 points: wherever a = 2 (1)" in text
    v = Verdict("TOY-CLAIM", "p", "s", "[derived]", "c")
    v.add("m", 1, 1, True, "==")
    scope.attach(v, "quick")
    assert v.status == "holds-in-scope"
    assert "At the claim's own conventions the map's point is a tie (margin +0.01 +- 0.1) while the claim's " \
           "check holds" in v.scope
    # where they agree nothing is added
    agree = ScopeMap("TOY-CLAIM", toy_map.axes, lambda at: (at["a"] - 1.5, {}), "m", "c", check_over=("a",))
    scope.SCOPE_MAPS["TOY-CLAIM"] = agree
    v2 = Verdict("TOY-CLAIM", "p", "s", "[derived]", "c")
    v2.add("m", 1, 1, True, "==")
    scope.attach(v2, "quick")
    assert "own conventions" not in v2.scope


def test_nan_margin_raises(toy_map):
    bad = ScopeMap("TOY-CLAIM", toy_map.axes, lambda at: (float("nan"), {}), "m", "c")
    with pytest.raises(ValueError, match="NaN"):
        scope.sweep(bad, over=["a"], progress=False)


def test_outputs_written_and_round_trip(toy_map, tmp_path):
    import matplotlib
    matplotlib.use("Agg")
    res = scope.sweep(toy_map, progress=False)
    paths = scope.write(res, tmp_path / "maps")
    md = open(paths["markdown"]).read()
    assert "| a | b | c | holds | margin | detail |" in md and md.count("\n| ") == 1 + 12
    data = json.load(open(paths["json"]))
    assert data["status"] == "holds-in-scope" and len(data["points"]) == 12
    back = scope.from_dict(data)
    assert back.region() == res.region()
    from pathlib import Path
    assert Path(paths["figure"]).stat().st_size > 5000
    f = tmp_path / "afile"
    f.write_text("x")
    with pytest.raises(ValueError, match="is a file"):
        scope.write(res, f)


def test_every_registered_map_is_well_formed():
    maps = scope.load_all()
    for cid in ("BARZILAI-COND-NTK", "BARZILAI-COND-GPK", "BARZILAI-LOCAL", "HUANG-RESNET-STABLE",
                "LITTWIN-CV-RESNET", "TIRER-SMOOTHER"):
        smap = maps[cid]
        assert smap.check_over and smap.margin_doc and smap.criterion
        for a in smap.axes:
            assert a.default in a.full and set(a.values("quick")) <= set(a.full), (cid, a.name)
    from reskernels.proofs_check.registry import REGISTRY, load_all
    load_all()
    assert set(maps) <= set(REGISTRY)


def test_huang_map_decides_from_the_engine_and_can_flip(monkeypatch):
    """The real HUANG-RESNET-STABLE map: at gamma = 1, trained="hidden", depth 1000 the distance to N2
    shrinks like L^-0.49 (predicted L^-1/2), the margin is -s - (gamma - 1/2) / 2 > 0; with every layer
    trained the limit is the linear kernel, not N2, and the margin is negative.  A planted wrong limit
    (N2 replaced by the normalised MLP(2) NTK) flips the hidden point's sign."""
    from reskernels.numerics import limits
    from reskernels.numerics.limits import normalized_kernel
    from reskernels.theory import MLP
    smap = scope.get("huang-resnet-stable")
    m, detail = smap.evaluate({"gamma": 1.0, "depth": 1000, "trained": "hidden"})
    assert m > 0.2 and abs(detail["local slope"] + 0.5) < 0.02
    assert np.isclose(m, -np.log10(detail["sup |K_L - N2|"] / detail["sup |K_L/10 - N2|"]) - 0.25, rtol=1e-12)
    m_all, _ = smap.evaluate({"gamma": 1.0, "depth": 1000, "trained": "all"})
    assert m_all < 0
    monkeypatch.setattr(limits, "n2", normalized_kernel(MLP(2)))
    m2, _ = smap.evaluate({"gamma": 1.0, "depth": 1000, "trained": "hidden"})
    assert m2 < 0


def test_conv_data_are_distinct():
    pytest.importorskip("skimage")
    from reskernels.proofs_check.scopes import conv_data
    X = conv_data("image-rows", 60, 10)
    flat = X.reshape(60, -1)
    assert X.shape == (60, 8, 3)
    assert len(np.unique(np.round(flat / np.linalg.norm(flat, axis=1, keepdims=True), 9), axis=0)) == 60


def test_attach_records_the_map_in_a_verdict(toy_map):
    from reskernels.proofs_check.verdict import Verdict
    toy_map.check_over = ("a",)
    v = Verdict("TOY-CLAIM", "p", "s", "[derived]", "c")
    v.scope = "under the contract"
    res = scope.attach(v, "quick")
    assert res is not None and len(res.points) == 3
    assert v.scope.startswith("under the contract. Scope map over a (3 points")
    assert v.extra["scope_map"]["status"] == "holds-in-scope"
    assert v.status is None   # no measurement passed: the map does not decide the claim
    v2 = Verdict("TOY-CLAIM", "p", "s", "[derived]", "c")
    v2.add("m", 1, 1, True, "==")
    scope.attach(v2, "quick")
    assert v2.status == "holds-in-scope"
    v3 = Verdict("TOY-CLAIM", "p", "s", "[derived]", "c")
    v3.add("m", 1, 2, False, "==")
    scope.attach(v3, "quick")
    assert v3.decide().status == "fails"
    assert scope.attach(Verdict("NO-MAP", "p", "s", "", ""), "quick") is None


def test_scope_command(tmp_path, capsys):
    from reskernels.proofs_check.cli import main
    assert main(["scope", "--list"]) == 0
    out = capsys.readouterr().out
    assert "BARZILAI-COND-NTK" in out and "baseline" in out
    rc = main(["scope", "huang-resnet-stable", "--over", "gamma", "--set", "depth=100", "trained=all",
               "--report", str(tmp_path / "m"), "--quiet"])
    assert rc == 0
    out = capsys.readouterr().out
    assert "HUANG-RESNET-STABLE: fails -- fails at every one of the 2 convention points" in out
    assert (tmp_path / "m" / "scope_huang-resnet-stable.png").stat().st_size > 5000
    for argv, msg in ((["scope", "NOPE"], "no scope map"), (["scope", "tirer-smoother", "--over", "zz"], "no convention axis"),
                      (["scope", "tirer-smoother", "--set", "alpha=7"], "not a candidate"),
                      (["scope", "tirer-smoother", "--set", "alpha"], "NAME=VALUE"), (["scope"], "name a claim")):
        assert main(argv) == 2
        assert msg in capsys.readouterr().err


def test_report_writes_the_scope_map(tmp_path):
    """A verdict carrying a scope map gets its table and heat map in the report; a later run without
    the map removes them."""
    from reskernels.proofs_check.registry import REGISTRY, load_all
    from reskernels.proofs_check.report import write_markdown
    load_all()
    v = REGISTRY["HUANG-RESNET-STABLE"].run("quick")
    assert "scope_map" in v.extra and "Scope map over" in v.scope
    write_markdown([v], str(tmp_path), "quick")
    md = (tmp_path / "scope" / "scope_huang-resnet-stable.md").read_text()
    assert "| gamma | depth | trained | holds | margin | detail |" in md
    assert (tmp_path / "figures" / "scope_huang-resnet-stable.png").stat().st_size > 5000
    report = (tmp_path / "report.md").read_text()
    assert "scope/scope_huang-resnet-stable.md" in report and "figures/scope_huang-resnet-stable.png" in report
    del v.extra["scope_map"]
    write_markdown([v], str(tmp_path), "quick")
    assert not (tmp_path / "scope" / "scope_huang-resnet-stable.md").exists()
    assert not (tmp_path / "figures" / "scope_huang-resnet-stable.png").exists()


def test_table_cells_shorten_nested_numbers():
    """Detail cells print 4 significant digits at any nesting (dicts of lists of numpy floats)."""
    from reskernels.proofs_check.scope import _short
    cell = _short({"a": [np.float64(0.123456789), 2.0], "b": {"c": 1.23456789e-7}})
    assert cell == "{a: [0.1235, 2], b: {c: 1.235e-07}}"


def test_full_check_sweeps_full_over_only(toy_map):
    """`check --full` sweeps a map's full_over axes when it names them (every axis otherwise)."""
    from reskernels.proofs_check.verdict import Verdict
    toy_map.check_over = ("a",)
    every = scope.attach(Verdict("TOY-CLAIM", "p", "s", "[derived]", "c"), "full")
    toy_map.full_over = ("a",)
    some = scope.attach(Verdict("TOY-CLAIM", "p", "s", "[derived]", "c"), "full")
    assert len(some.points) == 3 < len(every.points)

"""Scope maps of the finite-width claims (proofs_check/scopes/finite_width.py): each map evaluated at
a cheap point against numbers computed here by another route, and a planted error in the engine it
calls that flips the margin's sign."""
from __future__ import annotations

import functools

import numpy as np
import pytest

from reskernels.proofs_check import scope
from reskernels.proofs_check.scopes import finite_width as fw
from reskernels.theory import DenseNet, MLP, ResNet

IDS = ("LITTWIN-MLP-DEPTH", "LITTWIN-DENSENET", "LITTWIN-DENSENET-PARAMS", "HUANG-KERNEL-REGIME",
       "TIRER-STABLE-TRAINING")
X1 = np.eye(8)[:1]


def _cv2(s):
    return s.var(ddof=1) / s.mean() ** 2


def test_maps_are_well_formed_and_attached_to_their_claims():
    from reskernels.proofs_check.registry import REGISTRY, load_all
    load_all()
    for cid in IDS:
        smap = scope.get(cid)
        assert cid in REGISTRY and smap.check_over and smap.margin_doc and smap.criterion
        for a in smap.axes:
            assert a.default in a.full and set(a.values("quick")) <= set(a.full), (cid, a.name)


@pytest.mark.parametrize("arch", [MLP(3), ResNet(3, 0.5), DenseNet(3)], ids=lambda a: a.slug)
def test_theta_variants_match_empirical_kernels(arch):
    """The one-pass sampler against :func:`empirical_kernels` (another operation order, the parts
    summed there) at the same generators; the standard parameterisation of an MLP's hidden layers,
    which all have s2 = c / m, is exactly (m / c) times their NTK-parameterised part."""
    from reskernels.numerics.montecarlo import empirical_kernels
    m, seed = 16, 5
    var = fw.theta_diag_variants(arch, m, 3, seed)
    for i in range(3):
        ek = empirical_kernels(arch, X1, m, np.random.default_rng([seed, i]))
        assert np.isclose(var[("ntk", "all")][i], ek["ntk"][0, 0], rtol=1e-12)
        assert np.isclose(var[("ntk", "hidden")][i], ek["parts"]["hidden"][0, 0], rtol=1e-12)
        if isinstance(arch, MLP):
            c = arch.weight_var
            assert np.isclose(var[("standard", "hidden")][i], m / c * ek["parts"]["hidden"][0, 0], rtol=1e-12)
            want = ek["parts"]["input"][0, 0] / arch.input_var + m / c * (ek["parts"]["hidden"][0, 0]
                                                                         + ek["parts"]["readout"][0, 0])
            assert np.isclose(var[("standard", "all")][i], want, rtol=1e-12)
        else:   # layers of different s2: the standard NTK is not a multiple of the NTK-parameterised one
            r = var[("standard", "all")] / var[("ntk", "all")]
            assert r.std() > 1e-3 * r.mean()


def test_worst_of_a_conjunction():
    """A resolved failure decides even when another test is less resolved; without one, the least
    resolved test decides."""
    assert fw.worst({"a": -0.2, "b": 0.1}, {"a": 0.1, "b": 0.5}) == "a"
    assert fw.worst({"a": 0.3, "b": 0.1}, {"a": 0.1, "b": 0.5}) == "b"
    assert fw.worst({"a": 0.3, "b": 0.4}, {"a": 0.1, "b": 0.05}) == "a"


def test_signed_margin_reads_the_bootstrap_interval():
    m, e, q = fw.signed(np.linspace(0.1, 1.1, 1001))    # interval above 0: holds
    assert m > e and np.isclose(m - e, q[0])
    m, e, q = fw.signed(np.linspace(-1.1, -0.1, 1001))  # below 0: resolved failure
    assert m < -e and np.isclose(m + e, q[2])
    m, e, _ = fw.signed(np.linspace(-0.5, 1.0, 1001))   # straddles 0: a tie
    assert abs(m) <= e


def test_mlp_depth_map_against_the_claims_sampler(monkeypatch):
    """CV^2 in the map's detail equals CV^2 of littwin.theta_diag_samples (empirical_kernels) at the
    same seeds; the margin is the bootstrap median of the least resolved log ratio, within its error
    of the plug-in log ratio.  Planted error: every network gets the depth and width of the other end
    of its comparison -> the margin turns negative."""
    from reskernels.proofs_check.claims.littwin import theta_diag_samples
    smap = scope.get("LITTWIN-MLP-DEPTH")
    at = dict(parameterisation="ntk", trained="all", depth=2, width=32)
    m, det = smap.evaluate(at)
    cv = {}
    for L, n in ((2, 32), (8, 32), (2, 128)):
        s = theta_diag_samples(MLP(L), n, fw.N_INIT, fw._seed(f"{MLP(L).slug}-{n}-mlp"))
        cv[(L, n)] = _cv2(s)
        assert np.isclose(det[f"CV^2 L={L}, n={n}"], cv[(L, n)], rtol=1e-9)
    plug = {"L=8 over L=2": np.log(cv[(8, 32)] / cv[(2, 32)]), "n=32 over n=128": np.log(cv[(2, 32)] / cv[(2, 128)])}
    assert m > det["margin error"] > 0                       # holds, resolved
    assert abs(m - plug[det["least resolved"]]) <= det["margin error"]
    assert m <= max(plug.values()) + det["margin error"]
    real = fw.theta_diag_variants

    def swapped(arch, width, n_init, seed):   # the planted error
        return real(MLP({2: 8, 8: 2}[arch.depth]), {32: 128, 128: 32}[width], n_init, seed)
    monkeypatch.setattr(fw, "theta_diag_variants", swapped)
    m2, det2 = smap.evaluate(at)
    assert m2 < -det2["margin error"]


def test_densenet_map_against_the_claims_sampler(monkeypatch):
    """weight_var 1 -> 4 at width 32, standard parameterisation, tolerance 3: the margin is
    log 3 - |median log ratio| and agrees with the plug-in ratio of samples drawn here (NTK
    parameterisation: the claim's sampler) within its error.  Planted error: the weight_var = 4
    network run at width 4 -> CV^2 changes by far more than 3x, the margin turns negative."""
    from reskernels.proofs_check.claims.littwin import theta_diag_samples
    smap = scope.get("LITTWIN-DENSENET")
    at = dict(varied="weight_var", parameterisation="ntk", trained="all", width=32, tolerance=3.0)
    m, det = smap.evaluate(at)
    a, b = DenseNet(8, weight_var=1.0), DenseNet(8, weight_var=4.0)
    sa, sb = (theta_diag_samples(x, 32, fw.N_INIT, fw._seed(f"{x.slug}-32-dense")) for x in (a, b))
    assert np.isclose(det["CV^2 L=8, weight_var=1"], _cv2(sa), rtol=1e-9)
    assert np.isclose(det["CV^2 L=8, weight_var=4"], _cv2(sb), rtol=1e-9)
    plug = np.log(3.0) - abs(np.log(_cv2(sb) / _cv2(sa)))
    assert abs(m - plug) <= det["margin error"] and m > det["margin error"]
    real = fw.theta_diag_variants

    def narrow(arch, width, n_init, seed):   # the planted error: one network at a tiny width
        return real(arch, 4 if arch.weight_var == 4.0 else width, n_init, seed)
    monkeypatch.setattr(fw, "theta_diag_variants", narrow)
    m2, det2 = smap.evaluate(at)
    assert m2 < -det2["margin error"]


def test_densenet_params_map(monkeypatch):
    """The rival runs at the width with the DenseNet's parameter count; the margin is the median log
    ratio of the CV^2 growths L = 2 -> 8, near the plug-in value.  Planted error: the rival's depths
    swapped (its CV^2 then shrinks with L) -> negative margin."""
    from reskernels.proofs_check.claims.littwin import n_params
    smap = scope.get("LITTWIN-DENSENET-PARAMS")
    at = dict(rival="MLP", parameterisation="ntk", trained="all", width=32)
    m, det = smap.evaluate(at)
    widths = {L: int(k.split("width ")[1].rstrip(")")) for k in det if k.startswith("CV^2 MLP")
              for L in [int(k.split("L=")[1].split()[0])]}
    for L, w in widths.items():
        assert abs(n_params(MLP(L), w) - n_params(DenseNet(L), 32)) <= 0.02 * n_params(DenseNet(L), 32)
    g = {who: np.log(det[f"CV^2 {who}, L=8 (width {w8})"] / det[f"CV^2 {who}, L=2 (width {w2})"])
         for who, w2, w8 in (("DenseNet", 32, 32), ("MLP", widths[2], widths[8]))}
    assert abs(m - (g["MLP"] - g["DenseNet"])) <= det["margin error"] and m > det["margin error"]
    real = fw.theta_diag_variants

    def swapped(arch, width, n_init, seed):   # the planted error: the rival's depths exchanged
        if isinstance(arch, MLP):
            arch = MLP(10 - arch.depth)
        return real(arch, width, n_init, seed)
    monkeypatch.setattr(fw, "theta_diag_variants", swapped)
    m2, det2 = smap.evaluate(at)
    assert m2 < -det2["margin error"]


def test_huang_map_against_kernel_montecarlo(monkeypatch):
    """alpha = 1/L, L = 4, width 256: the mean relative distances of the detail equal those computed
    here from kernel_montecarlo's samples (seeded as the claim) and the exact Gram matrices.
    Planted error: the limit taken at alpha = 1 -> distances far above the tolerance."""
    import reskernels.numerics as numerics
    from reskernels.numerics.montecarlo import kernel_montecarlo
    from reskernels.numerics.samplers import sphere
    smap = scope.get("HUANG-KERNEL-REGIME")
    at = dict(alpha="L^-1", depth=4, width=256, tolerance=0.2)
    m, det = smap.evaluate(at)
    arch, X = ResNet(4, 0.25), sphere(4, 3, seed=11)
    full = numerics.gram(arch, X)
    _, _, S = kernel_montecarlo(arch, X, width=256, n_seeds=fw.HUANG_SEEDS, seed=12)
    d_total = np.mean([np.linalg.norm(s - full) / np.linalg.norm(full) for s in S])
    assert np.isclose(det["mean relative distance"]["total"], d_total, rtol=1e-10)
    ro = numerics.gram(arch, X, kind="nngp")
    _, _, S = kernel_montecarlo(arch, X, width=256, n_seeds=fw.HUANG_SEEDS, seed=12, part="readout")
    d_ro = np.mean([np.linalg.norm(s - ro) / np.linalg.norm(ro) for s in S])
    assert np.isclose(det["mean relative distance"]["readout"], d_ro, rtol=1e-10)
    worst = det["worst part"]
    assert np.isclose(m, 0.2 - det["mean relative distance"][worst], rtol=1e-12)
    slack = {k: 0.2 - d - det["error by part"][k] for k, d in det["mean relative distance"].items()}
    assert m > det["margin error"] and worst == min(slack, key=slack.get)   # every part resolved: the least
    real = numerics.gram

    def wrong_limit(a, *args, **kw):   # the planted error: the limit of the alpha = 1 network
        return real(a.replace(alpha=1.0), *args, **kw)
    monkeypatch.setattr(numerics, "gram", wrong_limit)
    m2, det2 = smap.evaluate(at)
    assert m2 < -det2["margin error"]


def test_tirer_map_against_gd_runs(monkeypatch):
    """Widths 64/256 (cheap): the mean drifts equal those of gd_ntk_drift called here with the
    claim's generators; the margin is the bootstrap median of the log drift ratio, within its error
    of the plug-in value.  Planted error: the two widths exchanged inside the engine -> the drift
    grows with the width, the margin turns negative."""
    from reskernels.numerics import training
    from reskernels.numerics.samplers import circle_points_at
    smap = scope.get("TIRER-STABLE-TRAINING")
    at = dict(alpha="0.5", depth=4, trained="all", widths="64/256")
    m, det = smap.evaluate(at)
    theta = np.linspace(0, 2 * np.pi, 6, endpoint=False)
    X, y = circle_points_at(theta), np.sin(4 * theta)
    arch = ResNet(4, 0.5, weight_var=1.0, input_var=0.5)
    d = {w: np.mean([training.gd_ntk_drift(arch, X, y, w, 20, np.random.default_rng([w, s]))["drift"]
                     for s in range(6)]) for w in (64, 256)}
    assert np.isclose(det["mean drift"]["64"], d[64], rtol=1e-12)
    assert np.isclose(det["mean drift"]["256"], d[256], rtol=1e-12)
    assert abs(m - np.log(d[64] / d[256])) <= det["margin error"] and m > det["margin error"]
    assert np.isclose(det["drift exponent"], -np.log(d[64] / d[256]) / np.log(4), rtol=1e-12)
    real = training.gd_ntk_drift

    def swapped(arch, X, y, width, steps, rng, **kw):   # the planted error
        return real(arch, X, y, {64: 256, 256: 64}[width], steps, rng, **kw)
    monkeypatch.setattr(training, "gd_ntk_drift", swapped)
    m2, det2 = smap.evaluate(at)
    assert m2 < -det2["margin error"]


def test_tirer_check_records_the_map_at_the_claims_own_point(monkeypatch):
    """`reskernels check` sweeps one point, the claim's own conventions, and reads the claim's GD runs
    (memoised under the same key) instead of repeating them: runs stored under the claim's key by a
    stand-in are what the map evaluates."""
    from reskernels.numerics import training
    from reskernels.numerics.samplers import circle_points_at
    from reskernels.proofs_check.claims import tirer
    from reskernels.proofs_check.registry import REGISTRY, load_all
    load_all()
    p = REGISTRY["TIRER-STABLE-TRAINING"].defaults
    smap = scope.get("TIRER-STABLE-TRAINING")
    grid = smap.grid(smap.check_over, "quick")
    assert grid == [{"alpha": "0.5", "depth": 4, "trained": "all", "widths": "/".join(map(str, p["widths"]))}]
    assert (p["seeds"], p["steps"]) == (6, 20)
    monkeypatch.setattr(tirer, "_DRIFT_RUNS", {})
    fake = {256: 0.04, 1024: 0.01}

    @functools.wraps(training.gd_ntk_drift)   # as the claim's progress wrapper: same key
    def stand_in(arch, X, y, width, steps, rng):
        return {"drift": fake[width] * (1 + 0.01 * rng.standard_normal()), "loss0": 1.0, "loss": 0.5, "lr": 1.0}
    theta = np.linspace(0, 2 * np.pi, 6, endpoint=False)
    tirer.drift_runs(ResNet(4, 0.5, weight_var=1.0, input_var=0.5), circle_points_at(theta), np.sin(4 * theta),
                     p["widths"], p["seeds"], p["steps"], stand_in)
    m, det = smap.evaluate(dict(grid[0]))
    assert np.isclose(m, np.log(4.0), atol=0.03) and np.isclose(det["drift exponent"], -1.0, atol=0.03)

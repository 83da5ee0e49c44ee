"""The conformance kit passes correct independent implementations and catches the classic bugs,
each with a shrunk counterexample."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reskernels.numerics import gram
from reskernels.proofs_check.cli import main
from reskernels.proofs_check.conformance import conform, diagonal_closed_form, parse_spec
from reskernels.theory import CNN, MLP, ResCNN, ResNet

from ..numerics.conv_oracle import kernel_pair
from ..numerics.oracles import gram_reference

EX = 15   # hypothesis examples per property: enough to find every bug below, fast in CI


def _failed(report):
    return {r.name for r in report.results if r.status == "fail"}


def _small_counterexample(report, name):
    r = next(r for r in report.results if r.name == name)
    assert r.status == "fail" and r.counterexample is not None and "X" in r.counterexample
    assert len(r.counterexample["X"]) <= 2, r.counterexample     # shrunk to one or two points
    assert name in str(report) and "X =" in str(report)


@pytest.mark.parametrize("spec,kind", [(ResNet(3, 0.5), "ntk"), (ResNet(2, 0.7, trained="hidden"), "ntk"),
                                       (MLP(1), "ntk"), (ResNet(1, 0.6), "nngp"),
                                       (ResNet(1, 0.6), "ntk"), (ResNet(1, 0.6, trained="hidden"), "ntk")])
def test_correct_independent_fc_implementation_passes(spec, kind):
    """The 30-digit mpmath evaluation of the sympy closed form shares no code with gram."""
    report = conform(lambda X, Z: gram_reference(spec, X, Z, kind, dps=30), spec, kind, max_examples=EX)
    assert report.passed, str(report)
    names = {r.name for r in report.results if r.status == "pass"}
    assert {"agrees_with_gram", "psd", "homogeneous", "rotation_invariant", "diagonal_closed_form",
            "funk_hecke_spectrum"} <= names
    assert ("depth1_identity" in names) == (spec.depth == 1)


@pytest.mark.parametrize("spec", [CNN(2, readout="flatten"), ResCNN(1, 0.5, readout="center"),
                                  ResCNN(1, 0.5, readout="gap")])
def test_correct_independent_conv_implementation_passes(spec):
    def oracle(X, Z):
        return np.array([[float(kernel_pair(spec, x[None].tolist(), z[None].tolist(), "ntk")) for z in Z] for x in X])
    # rtol 1e-10 as for the FC path: the conv path takes first-layer angles from half angles of the
    # input vectors and snaps rounded +-1 correlations later (numerics.pixel_maps.phi); at rtol 1e-7 it once
    # had to run, because parallel pixels of different inputs lost ~sqrt(eps) (3e-9) in arccos
    report = conform(oracle, spec, "ntk", max_examples=6, pixels=4, channels=2, rtol=1e-10)
    assert report.passed, str(report)
    ran = {r.name for r in report.results if r.status == "pass"}
    assert ("per_pixel_rotation" in ran) == (spec.readout != "gap")
    assert ("shift_invariant" in ran) == (spec.readout != "center")


def test_catches_a_missing_he_factor():
    spec = ResNet(3, 0.5)
    report = conform(lambda X, Z: gram(spec.replace(weight_var=1.0), X, Z), spec, max_examples=EX)
    assert {"agrees_with_gram", "diagonal_closed_form", "funk_hecke_spectrum"} <= _failed(report)
    _small_counterexample(report, "agrees_with_gram")


def test_catches_a_wrong_alpha_placement():
    """alpha multiplying the block instead of alpha^2 entering the kernel: ResNet(alpha = sqrt(0.5))."""
    spec = ResNet(3, 0.5)
    report = conform(lambda X, Z: gram(ResNet(3, 0.5 ** 0.5), X, Z), spec, max_examples=EX)
    assert {"agrees_with_gram", "diagonal_closed_form"} <= _failed(report)
    _small_counterexample(report, "agrees_with_gram")


def test_catches_a_flatten_diagonal_rounded_at_1e_9():
    """The flatten-readout NTK diagonal off by ~1e-9 relative, as one public library computes it."""
    spec = CNN(2, readout="flatten")

    def jax_like(X, Z):
        K = gram(spec, X, Z)
        same = np.all(X[:, None] == Z[None, :], axis=(2, 3))
        return np.where(same, K * (1 + 1e-9), K)
    report = conform(jax_like, spec, max_examples=EX, pixels=4)
    assert {"agrees_with_gram", "diagonal_closed_form"} <= _failed(report)
    _small_counterexample(report, "diagonal_closed_form")
    # at a tolerance above its error the same kernel passes: the kit measures, it does not guess
    assert conform(jax_like, spec, max_examples=EX, pixels=4, rtol=1e-8).passed


def test_catches_a_first_layer_trained_when_frozen():
    spec = ResNet(2, 0.5, trained="hidden")
    all_trained = spec.replace(trained="all")
    # hidden + input-layer parts = the all-trained NTK minus the readout part (the NNGP)
    buggy = lambda X, Z: gram(all_trained, X, Z) - gram(all_trained, X, Z, kind="nngp")
    report = conform(buggy, spec, max_examples=EX)
    assert {"agrees_with_gram", "diagonal_closed_form"} <= _failed(report)
    _small_counterexample(report, "agrees_with_gram")


def test_catches_float32_arithmetic():
    spec = ResNet(3, 0.5)
    f32 = lambda X, Z: gram(spec, X.astype(np.float32), Z.astype(np.float32)).astype(np.float32)
    report = conform(f32, spec, max_examples=EX)
    assert "agrees_with_gram" in _failed(report)
    _small_counterexample(report, "agrees_with_gram")
    assert conform(f32, spec, max_examples=EX, rtol=1e-5).passed     # float32 is fine at float32 tolerance


def test_a_raising_kernel_is_reported_not_propagated():
    def broken(X, Z):
        if len(X) > 1:
            raise RuntimeError("batching not supported")
        return gram(ResNet(2, 0.5), X, Z)
    report = conform(broken, ResNet(2, 0.5), max_examples=EX, properties=["agrees_with_gram"])
    (r,) = report.results[:1]
    assert r.status == "fail" and "RuntimeError" in r.message
    with pytest.raises(AssertionError, match="agrees_with_gram"):
        report.raise_if_failed()


@settings(max_examples=30)
@given(cls=st.sampled_from(["MLP", "ResNet", "CNN", "ResCNN"]), depth=st.integers(1, 5),
       alpha=st.floats(0, 2), wv=st.sampled_from([1.0, 2.0, 3.0]), iv=st.sampled_from([0.5, 1.0]),
       trained=st.sampled_from(["all", "hidden"]), kind=st.sampled_from(["ntk", "nngp"]))
def test_diagonal_closed_form_matches_gram(cls, depth, alpha, wv, iv, trained, kind):
    kw = dict(weight_var=wv, input_var=iv, trained=trained if (depth > 1 or cls.startswith("Res")) else "all")
    spec = {"MLP": lambda: MLP(depth, **kw), "ResNet": lambda: ResNet(depth, alpha, **kw),
            "CNN": lambda: CNN(depth, readout="center", **kw),
            "ResCNN": lambda: ResCNN(depth, alpha, readout="flatten", **kw)}[cls]()
    x = np.random.default_rng(depth).standard_normal((1, 3, 2) if cls.endswith("CNN") else (1, 5))
    x /= np.linalg.norm(x, axis=-1, keepdims=True)
    want = diagonal_closed_form(spec, kind)
    assert abs(gram(spec, x, kind=kind)[0, 0] - want) <= 1e-13 * max(1.0, abs(want))


def test_parse_spec():
    assert parse_spec("ResNet(depth=4, alpha=0.5)") == ResNet(4, 0.5)
    assert parse_spec(" CNN(2, readout='gap') ") == CNN(2, readout="gap")
    for bad in ("os.system('x')", "ResNet(depth=4, alpha=__import__('os'))", "ResNet(", "Foo(1)"):
        with pytest.raises(ValueError):
            parse_spec(bad)
    with pytest.raises(ValueError, match="depth"):
        parse_spec("ResNet(depth=0, alpha=0.5)")


def test_cli_conform(tmp_path, capsys):
    mod = tmp_path / "userkernels.py"
    mod.write_text("from reskernels import ResNet, gram\n\n"
                   "def good(X, Z):\n    return gram(ResNet(2, 0.5), X, Z)\n"
                   "def bad(X, Z):\n    return 2 * gram(ResNet(2, 0.5), X, Z)\n")
    args = ["conform", "--spec", "ResNet(depth=2, alpha=0.5)", "--max-examples", "8"]
    assert main([*args[:1], f"{mod}:good", *args[1:]]) == 0
    assert "PASS" in capsys.readouterr().out
    assert main([*args[:1], f"{mod}:bad", *args[1:]]) == 1
    out = capsys.readouterr().out
    assert "FAIL" in out and "agrees_with_gram" in out and "X =" in out
    assert main(["conform", f"{mod}:missing", "--spec", "ResNet(2, 0.5)"]) == 2
    err = capsys.readouterr().err
    assert "has no 'missing'" in err and "good" in err and "Traceback" not in err

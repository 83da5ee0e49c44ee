"""The conformance kit diagnoses: two tiers, where failures sit (near-parallel / zero inputs), the
kernel's value next to the expected one, NaN in one line, captured warnings, a time budget, and
exceptions of the reference or the kit not blamed on the kernel."""
import time
import warnings

import numpy as np
import pytest

from reskernels.numerics import gram
from reskernels.proofs_check import conformance
from reskernels.proofs_check.conformance import (GENERIC, PARALLEL, ZERO, ANTIPARALLEL, _classify, bind_spec,
                                                 conform)
from reskernels.theory import ResNet

EX = 10


def textbook_resnet_ntk(X, Z, depth=3, alpha=0.5, input_var=1.0, weight_var=2.0, trained="all", kind="ntk"):
    """A textbook float64 ResNet NTK (docs/conventions.md, ResNet) with plain arccos of the rounded
    correlation: right formulas, ~sqrt(eps) lost where |cos| is close to 1."""
    X, Z = np.asarray(X, float), np.asarray(Z, float)
    K = input_var * X @ Z.T
    kx, kz = input_var * np.sum(X * X, axis=1), input_var * np.sum(Z * Z, axis=1)
    alphas = alpha if isinstance(alpha, tuple) else (alpha,) * depth
    Ks, phis = [], []
    for a in alphas:
        N = np.sqrt(np.outer(kx, kz))
        r = np.clip(np.divide(K, N, out=np.zeros_like(K), where=N > 0), -1, 1)
        th = np.arccos(r)
        k0 = (np.pi - th) / np.pi
        k1 = (np.sqrt(1 - r * r) + (np.pi - th) * r) / np.pi
        phi1, phi0 = weight_var / 2 * N * k1, weight_var / 2 * k0
        Ks.append(K)
        phis.append((phi1, phi0))
        K = K + a * a * phi1
        kx, kz = kx * (1 + a * a * weight_var / 2), kz * (1 + a * a * weight_var / 2)
    if kind == "nngp":
        return K
    B, ntk = np.ones_like(K), np.zeros_like(K)
    for l in reversed(range(len(alphas))):
        a = alphas[l]
        phi1, phi0 = phis[l]
        ntk += a * a * B * (phi1 + Ks[l] * phi0)
        B = B * (1 + a * a * phi0)
    return ntk + (K + B * Ks[0] if trained == "all" else 0.0)


SPEC = ResNet(3, 0.5)
FAILING_AT_PARALLEL = ["agrees_with_gram", "rotation_invariant", "diagonal_closed_form"]


def test_textbook_kernel_is_right_to_about_sqrt_eps():
    X = np.random.default_rng(1).standard_normal((6, 4))
    X[1] = 3 * X[0]                                      # a parallel pair
    K, G = textbook_resnet_ntk(X, X), gram(SPEC, X)
    err = np.abs(K - G) / np.sqrt(np.outer(np.diag(G), np.diag(G)))
    assert 1e-12 < err.max() < 1e-7                      # the textbook kernel loses digits, not formulas


def test_textbook_arccos_kernel_fails_numerics_at_parallel_inputs_and_passes_mathematics():
    report = conform(textbook_resnet_ntk, SPEC, max_examples=EX, properties=FAILING_AT_PARALLEL)
    text = str(report)
    assert not report.passed and report.passed_mathematics, text
    assert ("fails the numerics tier (rtol 1e-10) at nearly parallel inputs; "
            "passes the mathematics tier (rtol 1e-6)") in text
    assert "half angles" in text and "numerics issue, not a mathematics one" in text
    failed = report.failures
    assert failed
    for r in failed:
        assert r.numerics_failed and not r.math_failed
        assert r.fail_categories == {PARALLEL}
        assert f"worst {r.error:.1e} x tolerance" in text
        assert r.values and " vs " in r.values[0] and "x tolerance" in r.values[0]
        if r.name != "diagonal_closed_form":     # generic inputs (incl. a few random ones afterwards) pass
            assert any("only at nearly parallel inputs" in w and "entries at generic inputs pass" in w
                       for w in r.where), r.where
    # the value next to the reference at the counterexample (agreement needs a longer search to fail)
    (agree,) = conform(textbook_resnet_ntk, SPEC, max_examples=40, properties=["agrees_with_gram"]).results
    assert agree.status == "fail" and agree.fail_categories == {PARALLEL}
    line = agree.values[0]
    assert line.startswith("K(X[") and ": kernel " in line and " vs gram(spec) " in line
    # the same kernel at the mathematics tier's tolerance passes outright (one tier)
    loose = conform(textbook_resnet_ntk, SPEC, max_examples=EX, properties=FAILING_AT_PARALLEL, rtol=1e-6)
    assert loose.passed and loose.single_tier and "one tier" in str(loose)


def test_a_wrong_formula_fails_the_mathematics_tier_at_generic_inputs():
    wrong = lambda X, Z: gram(SPEC.replace(weight_var=1.0), X, Z)       # the He factor forgotten
    report = conform(wrong, SPEC, max_examples=EX, properties=["agrees_with_gram", "diagonal_closed_form"])
    text = str(report)
    assert not report.passed and not report.passed_mathematics
    assert "fails the mathematics tier (rtol 1e-6) at generic inputs" in text
    assert "numerics issue" not in text and "half angles" not in text
    r = report.results[0]
    assert r.math_failed and GENERIC in r.math_fail_categories and r.math_counterexample is not None
    assert "counterexample (mathematics tier)" in text and "vs gram(spec)" in text


def test_nan_is_one_clear_line():
    def divides_by_the_norm(X, Z):
        N = np.outer(np.linalg.norm(X, axis=1), np.linalg.norm(Z, axis=1))
        return gram(SPEC, X, Z) / N * N                  # 0/0 at a zero input
    with warnings.catch_warnings():
        warnings.simplefilter("error")                    # the kernel's own RuntimeWarnings are captured
        report = conform(divides_by_the_norm, SPEC, max_examples=EX,
                         properties=["agrees_with_gram", "symmetric", "homogeneous"])
    text = str(report)
    head = text.split("\n\n")[0]
    assert head.count("the kernel returned NaN for x = ") == 1, head
    assert "(a zero input)" in head and "found by 3 properties" in head
    assert "nan x tolerance" not in text.lower() and "worst nan" not in text.lower()
    assert all(r.status == "fail" and r.nonfinite for r in report.results)
    assert not report.passed_mathematics
    assert "K(0, z) = 0" in head                                      # the hint for zero inputs
    assert sum(n for (cat, *_), n in report.warnings.items() if cat == "RuntimeWarning") > 0


def test_the_kernels_warnings_are_counted_not_shown():
    calls = [0]

    def chatty(X, Z):
        calls[0] += 1
        warnings.warn("falling back to the slow path", UserWarning)
        return gram(SPEC, X, Z)
    with warnings.catch_warnings(record=True) as leaked:
        warnings.simplefilter("always")
        report = conform(chatty, SPEC, max_examples=5, properties=["agrees_with_gram", "psd"])
    assert report.passed
    assert not [w for w in leaked if "slow path" in str(w.message)]
    ((key, n),) = report.warnings.items()
    assert key[0] == "UserWarning" and key[1] == "falling back to the slow path" and n == calls[0] > 0
    assert f"the kernel emitted {n} warnings" in str(report) and f"{n} x UserWarning" in str(report)


def test_time_budget_stops_each_property_and_reports_what_it_found(capsys):
    def slow_and_wrong(X, Z):
        time.sleep(0.03)
        return 2 * gram(SPEC, X, Z)
    gram(SPEC, np.eye(3))                                 # compile (or load) before the clock starts
    t0 = time.perf_counter()
    report = conform(slow_and_wrong, SPEC, max_examples=500, max_seconds=0.3, progress=True,
                     properties=["agrees_with_gram", "symmetric"])
    took = time.perf_counter() - t0
    assert took < 5, took                                 # 500 examples x 2 properties would take > 30 s
    agree, sym = report.results
    assert agree.status == "fail" and agree.stopped and agree.counterexample is not None
    assert sym.status == "pass" and sym.stopped and sym.examples < 500
    assert "stopped by the time budget (max_seconds=0.3)" in str(report)
    err = capsys.readouterr().err                         # progress: property name and examples done
    assert "[1/2] agrees_with_gram" in err and "[2/2] symmetric" in err and "examples" in err


def test_reference_and_kit_exceptions_are_not_blamed_on_the_kernel(monkeypatch):
    deep = ResNet(2000, 1.0)                              # gram overflows float64 (docs/conventions.md)
    report = conform(lambda X, Z: np.zeros((len(X), len(Z))), deep, max_examples=3,
                     properties=["agrees_with_gram"])
    (r,) = report.results
    assert r.status == "error" and "reference gram(spec) raised OverflowError" in r.message
    assert "not your kernel" in r.message and "kernel raised" not in str(report)
    assert not report.passed and report.errors == [r] and not report.failures

    def broken(*a, **k):
        raise ZeroDivisionError("kit bug")
    monkeypatch.setattr(conformance, "_classify", broken)
    report = conform(lambda X, Z: gram(SPEC, X, Z), SPEC, max_examples=3, properties=["agrees_with_gram"])
    (r,) = report.results
    assert r.status == "error" and "conformance kit raised ZeroDivisionError: kit bug" in r.message
    assert "kernel raised" not in str(report)


def test_kernel_output_problems_are_the_kernels():
    report = conform(lambda X, Z: np.zeros(len(X)), SPEC, max_examples=3, properties=["agrees_with_gram"])
    (r,) = report.results
    assert r.status == "fail" and "the kernel returned shape" in r.message


def test_bind_spec_narrows_a_multi_spec_function_to_depth_1():
    spec1 = ResNet(1, 0.5)
    kernel, passed, not_passed = bind_spec(textbook_resnet_ntk, spec1, "ntk")
    assert passed["depth"] == 1 and passed["alpha"] == 0.5 and passed["kind"] == "ntk"
    assert "activation" in not_passed                     # the function has no such parameter
    X = np.random.default_rng(0).standard_normal((3, 4))
    assert np.allclose(kernel(X, X), gram(spec1, X), rtol=1e-7)
    props = ["agrees_with_gram"]
    # unbound, the function computes its default depth 3: a mathematics failure at generic inputs
    assert not conform(textbook_resnet_ntk, spec1, max_examples=5, properties=props).passed_mathematics
    assert conform(textbook_resnet_ntk, spec1, max_examples=5, properties=props, pass_spec="fields").passed_mathematics

    def takes_spec(X, Z, spec):
        return gram(spec, X, Z)
    kernel, passed, _ = bind_spec(takes_spec, spec1, mode="object")
    assert passed == {"spec": spec1} and np.allclose(kernel(X, X), gram(spec1, X))
    with pytest.raises(ValueError, match="no parameter named"):
        bind_spec(lambda X, Z: X @ Z.T, spec1)
    with pytest.raises(ValueError, match="'spec'"):
        bind_spec(textbook_resnet_ntk, spec1, mode="object")


def test_input_pairs_are_classified():
    X = np.array([[1.0, 0, 0], [0, 0, 0], [1.0, 1.0, 0]])
    Z = np.array([[2.0, 1e-9, 0], [-1.0, 0, 0], [0, 1.0, 0]])
    c = _classify(X, Z, conv=False)
    assert c[0].tolist() == [PARALLEL, ANTIPARALLEL, GENERIC]
    assert c[1].tolist() == [ZERO, ZERO, ZERO]
    assert c[2].tolist() == [GENERIC, GENERIC, GENERIC]
    # conv: by pixels (a zero pixel; a parallel pixel pair anywhere)
    A = np.array([[[1.0, 0.0], [0.0, 1.0]]])
    B = np.array([[[0.0, 3.0], [1.0, 1.0]], [[1.0, 1.0], [1.0, -1.0]], [[0.0, 0.0], [1.0, 2.0]]])
    assert _classify(A, B, conv=True)[0].tolist() == [PARALLEL, GENERIC, ZERO]


def test_argument_checks():
    ok = lambda X, Z: gram(SPEC, X, Z)
    assert [r.name for r in conform(ok, SPEC, max_examples=2, properties=["PSD", " Symmetric"]).results] == \
        ["psd", "symmetric"]                              # case-insensitive
    with pytest.raises(ValueError, match="unknown property nope"):
        conform(ok, SPEC, properties=["nope"])
    with pytest.raises(ValueError, match="not applicable.*depth1_identity"):
        conform(ok, SPEC, properties=["depth1_identity"])
    for bad in (dict(max_examples=0), dict(rtol=float("nan")), dict(rtol=-1.0), dict(max_seconds=0),
                dict(dim=1)):
        with pytest.raises(ValueError):
            conform(ok, SPEC, **bad)

"""Per-layer equation systems of kernels (theory.latex): they are the kernel (substituted at
numbers they equal kernel_expr), and they stay short (linear in depth)."""
import mpmath
import pytest
import sympy as sp

from reskernels.theory import (CNN, DenseNet, MLP, ResNet, activations, kernel_expr, kernel_latex,
                               kernel_system, t)

SPECS = [
    MLP(1), MLP(3), MLP(2, trained="hidden"), ResNet(2, 0.5), ResNet(3, 0.3, trained="hidden"),
    ResNet(2, [0.5, 0.2], input_var=0.5), MLP(2, activation=activations.leaky_relu(0.2)),
    MLP(2, activation="erf"), ResNet(2, 0.5, bias_var=0.1), DenseNet(2), DenseNet(2, bias_var=0.1),
]
TS = ["-0.83", "-0.1", "0.37", "0.9"]


def _numbers_through_equations(system, tv):
    """Evaluate the system at t = tv by hand: each equation's right side with the earlier symbols
    replaced by their (50-digit) values and the named maps by their definitions."""
    values = {t: sp.Rational(tv)}
    for sym, rhs in system.equations:
        e = rhs.xreplace(values)
        for fr, body in system.maps:
            e = e.replace(fr.func, sp.Lambda(fr.args[0], body))
        v = sp.N(e, 50)
        assert v.free_symbols == set(), (sym, v)
        values[sym] = v
    return values[system.kernel]


@pytest.mark.parametrize("arch", SPECS, ids=lambda a: a.slug)
@pytest.mark.parametrize("kind", ["ntk", "nngp"])
def test_equations_equal_kernel_expr_at_numbers(arch, kind):
    system = kernel_system(arch, kind)
    closed = sp.lambdify(t, kernel_expr(arch, kind), "mpmath")    # the one closed expression
    for tv in TS:
        got = _numbers_through_equations(system, tv)
        with mpmath.workdps(40):
            want = sp.Float(closed(mpmath.mpf(tv)), 40)
        assert abs(got - want) <= 1e-14 * abs(want), (tv, got, want)
        assert abs(system.evaluate(sp.Rational(tv), 30) - want) <= 1e-25 * abs(want)


def test_negative_control_nngp_system_is_not_the_ntk():
    system = kernel_system(ResNet(2, 0.5), "nngp")
    want = sp.N(kernel_expr(ResNet(2, 0.5), "ntk").subs(t, sp.Rational("0.37")), 30)
    assert abs(_numbers_through_equations(system, "0.37") - want) > 1e-3 * abs(want)


def test_expr_is_kernel_expr_exactly():
    for arch in (MLP(2), ResNet(2, 0.5, trained="hidden")):
        assert sp.simplify(kernel_system(arch, "ntk").expr() - kernel_expr(arch, "ntk")) == 0


def test_latex_is_one_aligned_line_per_equation_and_map():
    system = kernel_system(ResNet(3, 0.5), "ntk")
    text = kernel_latex(ResNet(3, 0.5), "ntk")
    assert text.startswith("\\begin{aligned}\n") and text.endswith("\n\\end{aligned}")
    body = text.split("\n")[1:-1]
    assert len(body) == len(system.maps) + len(system.equations)
    assert all(line.count("&=") == 1 for line in body)
    assert "\\kappa_{0}" in text and "\\hat{\\Theta}_{3}" in text and "\\rho_{3}" in text
    assert "acos" not in "".join(body[len(system.maps):])   # the layers apply the named maps


@pytest.mark.parametrize("make", [lambda L: ResNet(L, 0.5), lambda L: MLP(L), lambda L: DenseNet(L),
                                  lambda L: ResNet(L, 0.5, bias_var=0.1)],
                         ids=["ResNet", "MLP", "DenseNet", "ResNet-bias"])
def test_length_grows_linearly_with_depth(make):
    n = {L: len(kernel_latex(make(L), "ntk")) for L in (4, 8, 16)}
    # linear: doubling the depth adds twice the previous increment (two-digit indices add a little)
    ratio = (n[16] - n[8]) / (n[8] - n[4])
    assert 1.8 <= ratio <= 2.4, n
    eqs = {L: len(kernel_system(make(L), "ntk").equations) for L in (4, 8, 12)}
    assert eqs[12] - eqs[8] == eqs[8] - eqs[4] > 0, eqs      # a fixed number of equations per layer


def test_closed_form_grows_exponentially_where_the_system_does_not():
    closed = [len(sp.latex(kernel_expr(ResNet(L, 0.5)))) for L in (2, 3)]
    system = [len(kernel_latex(ResNet(L, 0.5))) for L in (2, 3)]
    assert closed[1] > 3 * closed[0]
    assert system[1] < 1.5 * system[0]


def test_bad_arguments():
    with pytest.raises(TypeError, match="fully connected"):
        kernel_system(CNN(2), "ntk")
    with pytest.raises(ValueError, match="kind"):
        kernel_latex(MLP(2), "gp")
    with pytest.raises(NotImplementedError, match="closed-form dual"):
        kernel_system(MLP(2, activation="tanh"), "ntk")


def test_two_activations_get_numbered_duals():
    from dataclasses import dataclass

    from reskernels.theory.arch import Spec
    from reskernels.theory.layers import Dense, Dual, Input, Readout, Residual

    @dataclass(frozen=True)
    class LeakyStemResNet(Spec):
        """A leaky-ReLU layer, then one ReLU residual block (a program with two activations)."""
        depth: int = 1

        @property
        def slug(self):
            return "LeakyStemResNet"

        def layers(self):
            return (Input(1.0), Dual(activations.leaky_relu(0.2)), Dense(2.0),
                    Residual(0.5, (Dense(2.0), Dual(activations.relu()), Dense(1.0))), Readout("dense", 1.0))

    arch = LeakyStemResNet()
    system = kernel_system(arch, "ntk")
    assert {str(fr.func) for fr, _ in system.maps} == {"kappa_0__(1)", "kappa_1__(1)", "kappa_0__(2)",
                                                        "kappa_1__(2)"}
    assert "\\kappa^{(2)}_{1}" in system.latex()
    closed = sp.lambdify(t, kernel_expr(arch, "ntk"), "mpmath")
    for tv in TS:
        with mpmath.workdps(40):
            want = sp.Float(closed(mpmath.mpf(tv)), 40)
        assert abs(_numbers_through_equations(system, tv) - want) <= 1e-14 * abs(want)

"""Kernel steps, their lowering to kernel maps, and the activation hooks."""
import math

import mpmath
import numpy as np
import pytest
import sympy as sp
from scipy import integrate

from reskernels.numerics.backends import NUMPY
from reskernels.theory import CNN, MLP, ResCNN, ResNet, activations
from reskernels.theory import layers as L
from reskernels.theory.recursions import exact_diag_scale

relu = activations.relu()


def test_mlp_program_is_input_then_dual_dense_pairs_then_readout():
    assert MLP(2, weight_var=1.5, trained="hidden").layers() == (
        L.Input(1.0, 1, False), L.Dual(relu), L.Dense(1.5), L.Dual(relu), L.Readout("dense", 1.5, False))


def test_resnet_program_is_residual_blocks_with_a_unit_readout():
    branch = (L.Dense(2.0), L.Dual(relu), L.Dense(1.0))
    assert ResNet(2, (0.1, 0.2), input_var=0.5).layers() == (
        L.Input(0.5, 1, True), L.Residual(0.1, branch), L.Residual(0.2, branch), L.Readout("dense", 1.0, True))


def test_conv_programs_carry_filters_stems_and_readouts():
    assert CNN(2, filter_size=5, stem_size=3, readout="center").layers() == (
        L.Input(1.0, 3, True), L.Dual(relu), L.Conv(2.0, 5), L.Dual(relu), L.Readout("center", 2.0, True))
    branch = (L.Conv(2.0, 3), L.Dual(relu), L.Conv(1.0, 3))
    assert ResCNN(1, 0.5, readout="flatten").layers() == (
        L.Input(1.0, 1, True), L.Residual(0.5, branch), L.Readout("flatten", 1.0, True))


def test_lowering_pairs_each_dual_with_its_weight_layer():
    maps = MLP(3, trained="hidden").kernel_maps()
    assert [type(m).__name__ for m in maps] == ["Stem", "Nonlinear", "Nonlinear", "Nonlinear", "Pool"]
    assert [m.trained for m in maps[1:4]] == [True, True, False]   # the readout is frozen
    maps = ResCNN(2, 0.5, filter_size=3).kernel_maps()
    assert [type(m).__name__ for m in maps] == ["Stem", "Block", "Block", "Linear", "Pool"]
    assert maps[1] == L.Block(0.5, relu, 2.0, 3) and maps[-1] == L.Pool("gap")


@pytest.mark.parametrize("program, word", [
    ((L.Dual(relu), L.Readout("dense", 1.0)), "Input"),
    ((L.Input(1.0), L.Dual(relu)), "Readout"),
    ((L.Input(1.0), L.Dual(relu), L.Dual(relu), L.Readout("dense", 1.0)), "weight layer"),
    ((L.Input(1.0), L.Residual(0.5, (L.Dense(2.0), L.Dual(relu))), L.Readout("dense", 1.0)), "branch"),
    ((L.Input(1.0), L.Conv(2.0, 3), L.Readout("dense", 1.0)), "convolution"),
])
def test_programs_the_engines_cannot_interpret_are_refused_by_name(program, word):
    with pytest.raises(NotImplementedError, match=word):
        L.kernel_maps(program)


@pytest.mark.parametrize("arch", [MLP(4, weight_var=1.3, input_var=0.7), ResNet(3, (0.2, 0.5, 1.1), weight_var=1.5),
                                  CNN(3, weight_var=3.0), ResCNN(2, 0.4, input_var=2.0)])
def test_log_diag_scale_is_the_closed_form(arch):
    """input_var (c/2)^L (MLP/CNN) or input_var prod (1 + alpha_l^2 c/2) (ResNet/ResCNN), against the
    exact rational product of theory.recursions."""
    if arch.has_alpha:
        want = arch.input_var * math.prod(1 + a * a * arch.weight_var / 2 for a in arch.alphas())
    else:
        want = arch.input_var * (arch.weight_var / 2) ** arch.depth
    assert math.isclose(math.exp(arch.log_diag_scale()), want, rel_tol=1e-14)
    assert math.isclose(float(exact_diag_scale(arch)), want, rel_tol=1e-14)


@pytest.mark.parametrize("arch, want", [
    (MLP(5), 6.0), (MLP(5, trained="hidden"), 4.0),
    (ResNet(2, (0.5, 1.0)), 2 + 2 * 0.25 / 1.25 + 2 * 1.0 / 2.0),
    (ResNet(2, 1.0, trained="hidden"), 2.0), (CNN(3), 4.0), (ResCNN(1, 1.0, readout="center"), 3.0)])
def test_normalized_ntk_diagonal_counts_trained_layers(arch, want):
    assert math.isclose(L.normalized_ntk_diagonal(arch.kernel_maps()), want, rel_tol=1e-15)


def test_receptive_radius_of_programs():
    assert L.patch_radius(CNN(4, filter_size=3, stem_size=3).kernel_maps()) == 3 + 1
    assert L.patch_radius(ResCNN(2, 0.5, filter_size=5).kernel_maps()) == 8


# ---- the activation and its hooks ---------------------------------------------------------------

def test_activation_lookup_and_equality():
    assert activations.get("relu") is relu and activations.get(relu) is relu
    assert MLP(2) == MLP(2, activation=relu) and hash(MLP(2)) == hash(MLP(2, activation="relu"))
    with pytest.raises(ValueError, match="activation must be one of"):
        MLP(2, activation="swish")


def test_relu_symbolic_hooks_satisfy_their_identities():
    r = sp.Symbol("r")
    assert sp.simplify(sp.diff(relu.kappa1(r), r) - relu.kappa0(r)) == 0
    assert relu.kappa0(sp.Integer(1)) == 1 and relu.kappa1(sp.Integer(1)) == 1
    assert relu.kappa0(sp.Integer(-1)) == 0 and relu.kappa1(sp.Integer(-1)) == 0


@pytest.mark.parametrize("rho", [-0.9, -0.3, 0.0, 0.41, 0.87])
def test_relu_duals_are_gaussian_expectations(rho):
    """m2 kappa1(rho) = E[relu(u) relu(v)] and m2 kappa0(rho) = E[relu'(u) relu'(v)] for unit-variance
    Gaussians of correlation rho, by adaptive quadrature of the density (an independent route)."""
    det = 1 - rho * rho

    def density(u, v):
        return math.exp(-(u * u - 2 * rho * u * v + v * v) / (2 * det)) / (2 * math.pi * math.sqrt(det))

    big = 12.0
    e11, _ = integrate.dblquad(lambda v, u: u * v * density(u, v), 0, big, 0, big, epsabs=1e-12)
    e00, _ = integrate.dblquad(lambda v, u: density(u, v), 0, big, 0, big, epsabs=1e-12)
    m2 = float(relu.second_moment)
    assert math.isclose(m2 * float(relu.kappa1(sp.Float(rho, 30))), e11, rel_tol=1e-8, abs_tol=1e-10)
    assert math.isclose(m2 * float(relu.kappa0(sp.Float(rho, 30))), e00, rel_tol=1e-8, abs_tol=1e-10)


def test_relu_float_forms_agree_with_each_other_and_the_exact_duals():
    """half_angle (FC engine), from_rho and from_theta (conv engines) against sympy at 30 digits."""
    rho = np.array([-1.0, -0.999, -0.5, 0.0, 0.3, 0.9, 1 - 1e-9, 1.0])
    theta = np.arccos(rho)
    rt, ct = np.sin(theta / 2), np.cos(theta / 2)
    r_, k0, k1, dk, u2, v2 = relu.half_angle(rt, ct, NUMPY)
    kr, pr = relu.from_rho(rho.copy(), np, np.pi)
    kt, pt = relu.from_theta(theta, np, np.pi)
    for i, x in enumerate(rho):
        e0 = float(relu.kappa0(sp.Float(float(x), 30)))
        e1 = float(relu.kappa1(sp.Float(float(x), 30)))
        assert abs(k0[i] - e0) <= 1e-15 and abs(k1[i] - e1) <= 4e-16
        # the rho form inherits arccos's conditioning: an error of a few eps / sin(theta)
        # (why the engines switch to half angles near +-1); exact at rho = +-1
        tol = 8 * np.finfo(float).eps / max(np.sin(theta[i]), 1e-6) if abs(x) < 1 else 0.0
        assert abs(pr[i] / np.pi - e0) <= tol + 1e-16 and abs(kr[i] / np.pi - e1) <= tol + 1e-16
        assert abs(pt[i] / np.pi - e0) <= 1e-15 and abs(kt[i] / np.pi - e1) <= 1e-15
    assert np.all(dk >= 0) and k0[-1] == 1.0 and k1[-1] == 1.0 and kr[-1] / np.pi == 1.0
    # dk = kappa1 - rho relative to its own size (what 1 - kappa1 = 2 su^2 - dk needs near rho = 1): at the
    # half angle h = arcsin(su) of the float state, (2/pi)(sin 2h - 2h cos 2h)/2 at 40 digits; rho = 0.9
    # (h = 0.225) and 1 - 1e-9 (h = 2.2e-5) take the small-angle series, within a few eps (arcsin's ulp,
    # tripled by g ~ h^3); the difference would be ~20 eps and 1e9 eps off there
    with mpmath.workdps(40):
        for i in range(len(rho)):
            if rt[i] <= ct[i] and 0 < rt[i]:
                h = mpmath.asin(mpmath.mpf(float(rt[i])))
                want = 2 / mpmath.pi * (mpmath.sin(2 * h) - 2 * h * mpmath.cos(2 * h)) / 2
                assert abs(dk[i] / want - 1) <= 8 * np.finfo(float).eps, (rho[i], float(dk[i] / want - 1))


def test_relu_finite_width_hooks():
    x = np.array([-2.0, -0.0, 0.0, 1e-300, 3.0])
    assert np.array_equal(relu.fn(x, np), [0.0, 0.0, 0.0, 1e-300, 3.0])
    assert np.array_equal(relu.derivative(x, np), [False, False, False, True, True])

"""Conv kernels on products of spheres: F(t) against gram, the torus rule against exact oracles
(Bessel, multinomial Taylor route, closed-form rationals, spec reference values), locality
zeros, interaction range, and the shift-averaging relations between center, flatten and gap."""
import itertools
import math

import numpy as np
import pytest
import scipy.special
from hypothesis import given, settings
from hypothesis import strategies as st

from reskernels.numerics import gram
from reskernels.numerics.multisphere import (multi_dot_kernel, product_sphere_eigenvalues, receptive_radius,
                                  shift_average, torus_multiplicity, torus_spectrum,
                                  torus_spectrum_converged)
from reskernels.numerics.tolerances import EPS, float64_kernel_rtol, half_unit_decimal, half_unit_significant
from reskernels.theory import CNN, MLP, ResCNN
from reskernels.theory import layers as _L
from reskernels.theory.activations import leaky_relu
from reskernels.theory.harmonics import mu_monomial

from .test_conv import conv_archs


def _circle_inputs(delta):
    """Pixels (cos delta_i, sin delta_i); the reference input has every pixel (1, 0)."""
    Z = np.stack([np.cos(delta), np.sin(delta)], axis=-1)
    X = np.zeros((1,) + Z.shape[1:])
    X[..., 0] = 1.0
    return X, Z


def _unit_pixel_tol(arch, T):
    """Relative tolerance per row of F(T) against gram: a few ulps a layer, plus arccos's condition
    number eps / sin(theta) at the row's most nearly parallel (or antiparallel) pixel pair, once a layer."""
    cond = EPS / np.sqrt(np.clip(1 - np.asarray(T) ** 2, EPS, None)).min(axis=1)
    return float64_kernel_rtol(arch.depth + 2, per_layer=16) + 4 * (arch.depth + 1) * cond


@settings(max_examples=15)
@given(arch=conv_archs.filter(lambda a: a.readout != "gap"), seed=st.integers(0, 99),
       kind=st.sampled_from(["ntk", "nngp"]), C0=st.sampled_from([2, 3]))
def test_multi_dot_kernel_is_gram_on_unit_pixels(arch, seed, kind, C0):
    rng = np.random.default_rng(seed)
    P = 5
    X = rng.standard_normal((1, P, C0))
    Z = rng.standard_normal((40, P, C0))
    X /= np.linalg.norm(X, axis=-1, keepdims=True)
    Z /= np.linalg.norm(Z, axis=-1, keepdims=True)
    T = np.einsum("pc,npc->np", X[0], Z)
    K = gram(arch, X, Z, kind=kind)[0]
    F = multi_dot_kernel(arch, T, kind, normalize=False)
    diag = gram(arch, X, kind=kind)[0, 0]
    # same operations up to the order of the stem's sums: rounding of a few ulps per layer, plus
    # arccos's condition number at the rounded cosine of a nearly parallel pixel pair (gram takes
    # those angles from the input vectors' half angles)
    assert np.all(np.abs(K - F) <= _unit_pixel_tol(arch, T) * diag)
    if diag == 0:       # e.g. the hidden-layer NTK of ResCNN with alpha = 0
        with pytest.raises(ValueError, match="undefined"):
            multi_dot_kernel(arch, T, kind)
        return
    Fn = multi_dot_kernel(arch, np.vstack([np.ones(P), T]), kind)
    assert Fn[0] == 1.0                                   # exactly 1 on the diagonal
    assert np.max(np.abs(Fn[1:] - F / diag)) <= float64_kernel_rtol(arch.depth + 2, per_layer=16)


def test_multi_dot_kernel_rejects_bad_input():
    with pytest.raises(ValueError, match="gap"):
        multi_dot_kernel(CNN(2, readout="gap"), np.ones((2, 5)))
    with pytest.raises(TypeError):
        multi_dot_kernel(MLP(2), np.ones((2, 5)))
    with pytest.raises(ValueError, match="non-finite"):
        multi_dot_kernel(CNN(2, readout="center"), np.array([[np.nan, 0, 0]]))
    with pytest.raises(ValueError, match=r"\[-1, 1\]"):
        multi_dot_kernel(CNN(2, readout="center"), np.array([[1.5, 0, 0]]))
    with pytest.raises(ValueError, match="larger than the signal"):
        multi_dot_kernel(CNN(2, filter_size=5, readout="center"), np.ones((1, 3)))
    with pytest.raises(ValueError, match="even"):
        torus_spectrum(CNN(2, readout="center"), "ntk", 7)
    with pytest.raises(ValueError, match="pass P"):
        torus_spectrum(CNN(2, readout="flatten"), "ntk", 8)
    with pytest.raises(ValueError, match="P"):
        torus_spectrum(lambda T: T[:, 0], "ntk", 8)


def test_torus_rule_is_exact_for_factorisable_kernels():
    """exp(a cos d1) exp(b cos d2): lambda_k = I_k1(a) I_k2(b) (modified Bessel functions);
    the trapezoid rule is spectrally accurate for this entire function."""
    a, b = 0.5, 0.8
    lam = torus_spectrum(lambda T: np.exp(a * T[:, 0] + b * T[:, 1]), n=32, P=2)
    k = np.arange(lam.shape[0])
    exact = np.outer(scipy.special.iv(k, a), scipy.special.iv(k, b))
    assert np.max(np.abs(lam - exact)) <= 8 * EPS * np.exp(a + b)


def test_torus_rule_matches_the_exact_taylor_route_for_a_polynomial():
    """F = ((t1 + t2 + t3)/3)^4: lambda_k = 3^-4 sum_|a|=4 multinom(4; a) prod_i mu_{k_i}(t^{a_i})
    (docs/spectral.md §6.1, exact rationals); the trapezoid rule with n > 4 is exact for it."""
    lam = torus_spectrum(lambda T: T.mean(axis=1) ** 4, n=12, P=3)
    worst = 0.0
    for k in itertools.product(range(5), repeat=3):
        exact = 0
        for a in itertools.product(range(5), repeat=3):
            if sum(a) == 4:
                coef = math.factorial(4) // math.prod(math.factorial(x) for x in a)
                exact += coef * math.prod(mu_monomial(ai, ki, 2) for ai, ki in zip(a, k))
        worst = max(worst, abs(lam[k] - float(exact) / 81))
    assert worst <= 16 * EPS


@pytest.mark.parametrize("kind", ["ntk", "nngp"])
def test_torus_sum_rule(kind):
    lam = torus_spectrum(ResCNN(1, 0.7, readout="center"), kind, 12)
    total = float(np.sum(torus_multiplicity(lam.shape, trapezoid=True) * lam))
    assert abs(total - 1.0) <= 64 * EPS      # F(1..1) = 1 for the normalised kernel


@pytest.mark.parametrize("alpha", [0.25, 0.5, 1.0])
def test_rescnn_single_pixel_degree_one_closed_form(alpha):
    """Normalised ResCNN(1, alpha, q=3, center) NNGP: only kappa1's linear term s/2 reaches a
    degree-1 single-pixel harmonic, so lambda(e_0) = (1 + alpha^2/6) / (2 (1 + alpha^2)),
    lambda(e_+-1) = (alpha^2/9) / (2 (1 + alpha^2)), lambda(e_+-2) = (alpha^2/18) / (2 (1 + alpha^2))."""
    lam = torus_spectrum(ResCNN(1, alpha, readout="center"), "nngp", 16)
    den = 2 * (1 + alpha ** 2)
    want = {(1, 0, 0, 0, 0): (1 + alpha ** 2 / 6) / den, (0, 1, 0, 0, 0): alpha ** 2 / 9 / den,
            (0, 0, 0, 0, 1): alpha ** 2 / 9 / den, (0, 0, 1, 0, 0): alpha ** 2 / 18 / den,
            (0, 0, 0, 1, 0): alpha ** 2 / 18 / den}
    for k, w in want.items():
        assert abs(lam[k] - w) <= 64 * EPS, k


def test_cnn3_single_pixel_values_match_spec_reference():
    """docs/spectral.md §6.5 (trapezoid n = 20, printed to 4 digits): the 3:2:1 triangular profile."""
    for kind, want in (("nngp", (3.722e-2, 2.481e-2, 1.239e-2)), ("ntk", (4.694e-2, 3.130e-2, 1.562e-2))):
        lam = torus_spectrum(CNN(3, readout="center"), kind, 20)
        got = (lam[1, 0, 0, 0, 0], lam[0, 1, 0, 0, 0], lam[0, 0, 1, 0, 0])
        for g, w in zip(got, want):
            assert abs(g - w) <= half_unit_decimal(5), (kind, got)   # half a unit in the 4th digit


def test_locality_zeros_and_interaction_range():
    """CNN(2) (radius 1) on 5 pixels: every frequency touching pixel +-2 has eigenvalue 0.
    ResCNN(1, q=3): pixels -2 and +2 never meet inside one ReLU, so lambda_{e_-2 + e_2} = 0,
    while CNN(3) (same radius) couples them (docs/spectral.md §6.3)."""
    for kind in ("ntk", "nngp"):
        lam = torus_spectrum(CNN(2, readout="center"), kind, 12, P=5)
        far = np.zeros(lam.shape, bool)
        far[:, :, 1:, :, :] = True
        far[:, :, :, 1:, :] = True
        assert np.max(np.abs(lam[far])) <= 16 * EPS
        assert np.min(lam[~far][:4]) > 1e-6
        res = torus_spectrum(ResCNN(1, 0.5, readout="center"), kind, 12)
        plain = torus_spectrum(CNN(3, readout="center"), kind, 12)
        for k in range(1, 5):
            assert abs(res[0, 0, k, k, 0]) <= 16 * EPS
            assert plain[0, 0, k, k, 0] > 1e3 * EPS


def test_receptive_radius():
    assert receptive_radius(CNN(3, filter_size=3)) == 2
    assert receptive_radius(CNN(2, filter_size=5, stem_size=3)) == 3
    assert receptive_radius(ResCNN(1, 0.5, filter_size=3)) == 2
    with pytest.raises(TypeError):
        receptive_radius(MLP(2))


@pytest.mark.parametrize("kind", ["ntk", "nngp"])
def test_flatten_spectrum_is_the_shift_average_of_center(kind):
    P = 5
    center = torus_spectrum(ResCNN(1, 0.6, readout="center"), kind, 8, P=P)
    flatten = torus_spectrum(ResCNN(1, 0.6, readout="flatten"), kind, 8, P=P)
    assert np.max(np.abs(flatten - shift_average(center))) <= 64 * EPS


def test_gap_eigenfunctions_are_shift_symmetrised_with_flatten_eigenvalues():
    """On the discrete torus grid (n points per circle) the gap kernel maps the shift-symmetrised
    harmonic f(z) = (1/P) sum_s cos(k . phi(tau_s z)) to lambda^flatten_k f(x), and a
    non-invariant combination cos(k . phi) - cos(tau k . phi) to 0: exact identities of the
    discrete Fourier transform, so they hold to rounding."""
    P, n = 3, 8
    arch = CNN(2, readout="gap")
    flat = torus_spectrum(CNN(2, readout="flatten"), "ntk", n, P=P, normalize=False)
    grid = np.array(list(itertools.product(range(n), repeat=P))) * (2 * np.pi / n)
    X, Z = _circle_inputs(grid)
    x = Z[[5, 77, 300]]                                    # points of the grid
    K = gram(arch, x, Z, kind="ntk") / len(grid)           # quadrature weights 1/n^P
    phi_x = grid[[5, 77, 300]]
    for k in [(1, 0, 0), (1, 1, 0), (2, 1, 0), (1, 0, 2)]:
        k = np.array(k)
        shifts = [np.roll(k, s) for s in range(P)]
        f_inv = lambda phi: np.mean([np.cos(phi @ ks) for ks in shifts], axis=0)
        lam = flat[tuple(np.abs(k))]
        assert np.max(np.abs(K @ f_inv(grid) - lam * f_inv(phi_x))) <= 1e3 * EPS * K.sum(1).max()
        f_non = lambda phi: np.cos(phi @ k) - np.cos(phi @ shifts[1])
        assert np.max(np.abs(K @ f_non(grid))) <= 1e3 * EPS * K.sum(1).max()


def test_product_sphere_rule_reproduces_c0_3_two_pixel_reference():
    """docs/spectral.md §6.5: F = kappa1((t1 + t2)/2) on S^2 x S^2, reference values computed by a
    tanh-sinh reduction to one dimension (15 digits printed); lambda_{1,0} = 1/12 exactly."""
    k1 = lambda s: (np.sqrt(1 - s * s) + (np.pi - np.arccos(s)) * s) / np.pi
    ref = {(0, 0): 0.345931136403602, (1, 0): 1 / 12, (1, 1): 0.00941784542097426,
           (2, 2): 0.000140585739765893}
    got = product_sphere_eigenvalues(lambda T: k1(np.clip(T.mean(axis=1), -1, 1)), 3, 2, list(ref), 200)
    for g, (k, w) in zip(got, ref.items()):
        # reference printed to 15 significant digits; rounding of the 200^2-term sum ~ 1e-14
        assert abs(g - w) <= max(half_unit_significant(w, 15), 1e-14), (k, g, w)


def test_product_sphere_rule_agrees_with_the_torus_rule_for_c0_2():
    F = lambda T: multi_dot_kernel(ResCNN(1, 0.5, readout="flatten"), T, "nngp")
    ks = [(0, 0, 0), (1, 0, 0), (1, 1, 0), (2, 0, 2)]
    tor = torus_spectrum_converged(F, n=64, P=3)
    quad = product_sphere_eigenvalues(F, 2, 3, ks, 160)
    for k, q in zip(ks, quad):
        assert abs(tor[k] - q) <= max(2 * tor.error[k], 1e-13), (k, tor[k], q)


@pytest.mark.parametrize("arch", [CNN(3, readout="center"), ResCNN(2, 0.5, readout="flatten"),
                                  CNN(2, stem_size=3, trained="hidden", readout="center"),
                                  CNN(2, readout="center", activation="erf"),
                                  CNN(2, readout="center", activation="sin"),
                                  ResCNN(1, 0.5, readout="center", activation="cos"),
                                  ResCNN(1, 0.5, readout="center", bias_var=0.3, activation=leaky_relu(0.2))],
                         ids=lambda a: a.slug)
@pytest.mark.parametrize("kind", ["ntk", "nngp"])
def test_multi_dot_kernel_compiled_route(arch, kind):
    """backend="numba" (the compiled variance-carrying loop) against gram by the numpy engine on C0 = 3
    unit pixels with generic cosines (7 pixels: more than the 3 taps) and near-parallel pixels; the
    normalised value at t = 1 is exactly 1; against the numpy multi-dot route where that one runs."""
    pytest.importorskip("numba")
    rng = np.random.default_rng(7)
    P = 7
    X = rng.standard_normal((1, P, 3))
    Z = rng.standard_normal((30, P, 3))
    Z[:5] = X + 1e-5 * Z[:5]                                # near-parallel pixels
    X /= np.linalg.norm(X, axis=-1, keepdims=True)
    Z /= np.linalg.norm(Z, axis=-1, keepdims=True)
    T = np.einsum("pc,npc->np", X[0], Z)
    K = gram(arch, X, Z, kind=kind, backend="numpy")[0]
    F = multi_dot_kernel(arch, T, kind, normalize=False, backend="numba")
    diag = gram(arch, X, kind=kind, backend="numpy")[0, 0]
    # gram takes near-parallel angles from the input vectors' half angles, F only has the rounded
    # cosine: arccos's condition number eps / sin(theta) (up to 1e-11 here; the NTK's kappa0 feels it)
    tol = _unit_pixel_tol(arch, T) * diag
    assert np.all(np.abs(K - F) <= tol)
    assert np.max(np.abs(K - F)[5:]) <= float64_kernel_rtol(arch.depth + 2, per_layer=16) * diag
    Fn = multi_dot_kernel(arch, np.vstack([np.ones(P), T]), kind, backend="numba")
    assert Fn[0] == 1.0
    assert np.max(np.abs(Fn[1:] - F / diag)) <= float64_kernel_rtol(arch.depth + 2, per_layer=16)
    assert np.array_equal(multi_dot_kernel(arch, T, kind, backend="auto"), Fn[1:])
    if _L.is_normalizable(arch.kernel_maps()):
        Fp = multi_dot_kernel(arch, T, kind)
        assert np.all(np.abs(Fp - Fn[1:]) <= tol / diag)
        assert np.max(np.abs(Fp - Fn[1:])[5:]) <= float64_kernel_rtol(arch.depth + 2, per_layer=16)
    else:
        with pytest.raises(NotImplementedError, match="backend='numba'"):
            multi_dot_kernel(arch, T, kind)


def test_multi_dot_kernel_backend_errors():
    with pytest.raises(ValueError, match="backend"):
        multi_dot_kernel(CNN(2, readout="center"), np.ones((1, 5)), backend="jax")
    with pytest.raises(NotImplementedError, match="tanh"):     # numpy route: homogeneous only
        multi_dot_kernel(CNN(2, readout="center", activation="tanh"), np.ones((1, 5)))


@pytest.mark.parametrize("arch", [CNN(3, readout="center"), ResCNN(2, 0.5, readout="center"),
                                  CNN(2, readout="flatten", activation="erf"),
                                  CNN(2, readout="center", activation="cos"),
                                  ResCNN(1, 0.5, readout="flatten", activation="sin"),
                                  ResCNN(1, 0.5, readout="center", bias_var=0.3, activation=leaky_relu(0.2)),
                                  CNN(2, stem_size=3, filter_size=5, trained="hidden", readout="center")],
                         ids=lambda a: a.slug)
def test_multi_dot_cone_loop_is_the_conv_loop_bit_for_bit(arch):
    """multi_dot_block (rows of cosines, only the readout's receptive cone) against the conv engine's
    compiled loop conv_fused_general.block on the same pairs (a unit signal of one channel against signals
    whose pixels are the cosines, every pixel computed): the same values bit for bit, both kinds, P = 9
    and 13 (more pixels than the cone, so pruning is exercised), including the row of ones."""
    pytest.importorskip("numba")
    from reskernels.numerics import conv_fused_general as fg
    from reskernels.numerics import pixel_maps as px
    from reskernels.numerics.conv_fused import READOUT_CODES
    rng = np.random.default_rng(11)
    for P in (9, 13):
        T = np.cos(rng.uniform(0, np.pi, (150, P)))
        T[0] = 1.0
        T[1, :4] = 1.0
        prog = fg.lower(arch.kernel_maps(), lambda q: (np.zeros(1, dtype=np.int64), np.array(px.taps(q, 1, P))))
        ones = np.ones((1, 1, P, 1))
        VX = fg.diagonal_variances(prog, ones)
        VZ = np.ascontiguousarray(np.broadcast_to(VX, (VX.shape[0], len(T), 1, P)))
        for kind in ("nngp", "ntk"):
            ref = np.zeros((1, len(T)))
            fg.fused_block()(ones, np.ascontiguousarray(T.reshape(len(T), 1, P, 1)), np.zeros(1, dtype=np.int64),
                             np.zeros(1, dtype=np.int64), VX, VZ, prog.ops, prog.params, prog.aparams, prog.coef,
                             prog.taps_h, prog.taps_w, kind == "ntk", READOUT_CODES[arch.readout], False, ref)
            got = multi_dot_kernel(arch, T, kind, normalize=False, backend="numba")
            assert np.array_equal(got, ref[0]), (P, kind, np.max(np.abs(got - ref[0])))
    need, mid = fg.cone_masks(prog, 13, arch.readout)
    if arch.readout == "center":                 # the cone (before the stem's own taps) is narrower than the signal
        assert need[0].sum() == 2 * (receptive_radius(arch) - (arch.stem_size - 1) // 2) + 1 < 13


def test_planted_narrow_cone_is_caught(monkeypatch):
    """Planted error: a cone that drops one pixel of a Block's input (needed twice widened) leaves stale
    values in the pruned loop; the bit-for-bit comparison with the conv engine's loop then fails."""
    pytest.importorskip("numba")
    from reskernels.numerics import conv_fused_general as fg
    from reskernels.numerics import multisphere as ms
    arch = ResCNN(1, 0.5, readout="center")
    T = np.cos(np.random.default_rng(5).uniform(0, np.pi, (50, 9)))
    good = multi_dot_kernel(arch, T, "ntk", backend="numba")
    real = fg.cone_masks

    def narrow(program, P, readout):
        need, mid = real(program, P, readout)
        need = need.copy()
        need[1, 2] = False                      # the Block's input at pixel 2 (two taps from the centre)
        return need, mid
    monkeypatch.setattr(fg, "cone_masks", narrow)
    ms._compiled_multi_dot.cache_clear()
    try:
        bad = multi_dot_kernel(arch, T, "ntk", backend="numba")
    finally:
        ms._compiled_multi_dot.cache_clear()
    assert not np.allclose(bad, good, rtol=1e-6, atol=0)

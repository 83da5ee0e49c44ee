"""Conv kernels: independent oracle, reductions, shift identities, locality, invariances, bad input."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reskernels.numerics import gram
from reskernels.theory import CNN, MLP, ResCNN, ResNet

from reskernels.numerics.conv_fused import available as numba_available
from reskernels.numerics.tolerances import DIAGONAL_RTOL, PSD_RTOL, float64_kernel_rtol

from .conv_oracle import kernel_pair

CPU_BACKENDS = ["numpy", "numba"] if numba_available() else ["numpy"]


def _ms(rng, n, P, C, two_d=False):
    """Points on the multi-sphere: every pixel a unit vector."""
    shape = (n, P, P, C) if two_d else (n, P, C)
    X = rng.standard_normal(shape)
    return X / np.linalg.norm(X, axis=-1, keepdims=True)


conv_archs = st.builds(
    lambda cls, depth, q, s, readout, alpha, trained, wv: (
        CNN(depth, filter_size=q, stem_size=s, readout=readout, trained=trained if depth > 1 else "all",
            weight_var=wv) if cls == "CNN" else
        ResCNN(depth, alpha, filter_size=q, stem_size=s, readout=readout, trained=trained, weight_var=wv)),
    st.sampled_from(["CNN", "ResCNN"]), st.integers(1, 3), st.sampled_from([1, 3]), st.sampled_from([1, 3]),
    st.sampled_from(["gap", "flatten", "center"]), st.floats(0, 1.5), st.sampled_from(["all", "hidden"]),
    st.sampled_from([1.0, 2.0]))


@settings(max_examples=20)
@given(arch=conv_archs, two_d=st.booleans(), seed=st.integers(0, 99), kind=st.sampled_from(["ntk", "nngp"]),
       channels=st.sampled_from([1, 2]), factor=st.sampled_from([-1.7, 0.3, 3.0]),
       backend=st.sampled_from(CPU_BACKENDS))
def test_conv_gram_matches_independent_oracle(arch, two_d, seed, kind, channels, factor, backend):
    """Against the mpmath oracle at a bound that cannot hide a sqrt(eps) loss (~1e-8): inputs include
    one-channel signals (every pixel pair parallel or antiparallel at the first layer) and a scaled
    copy x3 = factor x1 (exactly parallel at every layer), where arccos(rho) alone loses ~1e-9."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((3, 3, 3, channels) if two_d else (3, 4, channels))
    X[2] = factor * X[0]
    K = gram(arch, X, kind=kind, backend=backend)
    to_list = (lambda x: x.tolist()) if two_d else (lambda x: x[None].tolist())
    R = np.array([[float(kernel_pair(arch, to_list(X[i]), to_list(X[j]), kind)) for j in range(3)] for i in range(3)])
    # scale of the summed terms (gap: a mean of pixel-pair kernels that may cancel, bounded by the
    # flatten diagonals via Cauchy-Schwarz)
    d = np.diag(gram(arch.replace(readout="flatten"), X, kind=kind)) if arch.readout == "gap" else np.diag(R)
    scale = np.sqrt(np.abs(np.outer(d, d)))
    tol = float64_kernel_rtol(arch.depth + 2, per_layer=100)   # override: stem and readout counted, 2x headroom
    assert np.all(np.abs(K - R) <= tol * np.where(scale > 0, scale, 1))


@pytest.mark.parametrize("trained", ["all", "hidden"])
@pytest.mark.parametrize("readout", ["gap", "flatten", "center"])
def test_one_pixel_reduces_to_fully_connected(trained, readout):
    rng = np.random.default_rng(1)
    X = rng.standard_normal((6, 4))
    for conv, fc in [(CNN(3, filter_size=1, readout=readout, trained=trained), MLP(3, trained=trained)),
                     (ResCNN(3, 0.7, filter_size=1, readout=readout, trained=trained), ResNet(3, 0.7, trained=trained))]:
        for kind in ("ntk", "nngp"):
            np.testing.assert_allclose(gram(conv, X[:, None, :], kind=kind), gram(fc, X, kind=kind), rtol=1e-14, atol=1e-15)


def test_shift_identities_between_readouts():
    """flatten(x,z) = mean_s center(t_s x, t_s z);  gap(x,z) = mean_s flatten(x, t_s z)  (docs/spectral.md §6.3)."""
    rng = np.random.default_rng(2)
    P = 5
    X = rng.standard_normal((3, P, 2))
    for make in (lambda r: CNN(2, readout=r), lambda r: ResCNN(2, 0.6, readout=r)):
        flat = gram(make("flatten"), X)
        cen = np.mean([gram(make("center"), np.roll(X, s, axis=1)) for s in range(P)], axis=0)
        np.testing.assert_allclose(flat, cen, rtol=1e-13)
        gap = gram(make("gap"), X)
        fl = np.mean([gram(make("flatten"), X, np.roll(X, s, axis=1)) for s in range(P)], axis=0)
        np.testing.assert_allclose(gap, fl, rtol=1e-13)


def test_center_kernel_is_local_to_the_receptive_field():
    """ResCNN(L) center reaches radius L(q-1); CNN(L) reaches (L-1)(q-1)/2 (stem_size 1)."""
    rng = np.random.default_rng(3)
    P = 13
    X = rng.standard_normal((2, P, 2))
    for arch, radius in [(ResCNN(2, 0.5, readout="center"), 4), (CNN(3, readout="center"), 2)]:
        K = gram(arch, X)
        Y = X.copy()
        Y[:, radius + 1:P - radius] = rng.standard_normal(Y[:, radius + 1:P - radius].shape)
        np.testing.assert_array_equal(gram(arch, Y)[0, 1], K[0, 1])   # outside: no effect at all
        Y2 = X.copy()
        Y2[:, radius] += 0.5
        assert abs(gram(arch, Y2)[0, 1] - K[0, 1]) > 1e-6              # on the boundary: an effect


def test_invariances_per_pixel_rotation_and_circular_shift():
    rng = np.random.default_rng(4)
    X = _ms(rng, 4, 6, 3)
    Q = [np.linalg.qr(rng.standard_normal((3, 3)))[0] for _ in range(6)]
    XR = np.stack([X[:, i] @ Q[i] for i in range(6)], axis=1)
    for r in ("center", "flatten"):
        arch = ResCNN(2, 0.5, readout=r)
        np.testing.assert_allclose(gram(arch, XR), gram(arch, X), rtol=1e-13)
    arch = CNN(3, readout="gap")
    np.testing.assert_allclose(gram(arch, np.roll(X, 2, axis=1), X), gram(arch, X), rtol=1e-13)


def test_closed_form_diagonals_on_the_multisphere():
    """ResCNN center/flatten NTK = (1+a^2)^L (2 + 2 L a^2/(1+a^2)), NNGP pixel diagonal (1+a^2)^L;
    CNN center/flatten NTK = L + 1 (docs/papers.md BARZILAI-DIAG), to 1e-14 with exact rho = 1."""
    rng = np.random.default_rng(5)
    for two_d in (False, True):
        X = _ms(rng, 3, 4, 3, two_d)
        for r in ("center", "flatten"):
            d = np.diag(gram(ResCNN(4, 0.6, readout=r), X))
            np.testing.assert_allclose(d, 14.0865536, rtol=DIAGONAL_RTOL)
            np.testing.assert_allclose(np.diag(gram(ResCNN(4, 0.6, readout=r), X, kind="nngp")), 3.42102016,
                                       rtol=DIAGONAL_RTOL)
            np.testing.assert_allclose(np.diag(gram(CNN(5, readout=r), X)), 6.0, rtol=DIAGONAL_RTOL)
            # weight_var != 2: exact diagonals need the variance and kernel paths to round alike
            for arch in (CNN(4, readout=r, weight_var=1.3), ResCNN(3, 0.7, readout=r, weight_var=1.7)):
                K = gram(arch, X, normalize=True)
                assert np.all(np.diag(K) == 1.0)
                d = np.diag(gram(arch, X))
                R = gram(arch.replace(filter_size=1), X[:, :1])[0, 0]  # one pixel on MS: same diagonal
                np.testing.assert_allclose(d, R, rtol=DIAGONAL_RTOL)


def test_psd_and_symmetry():
    rng = np.random.default_rng(6)
    X = rng.standard_normal((12, 3, 3, 2))
    for arch in (CNN(2, readout="gap"), ResCNN(2, 1.0, readout="flatten")):
        K = gram(arch, X)
        assert np.array_equal(K, K.T)
        assert np.linalg.eigvalsh(K).min() >= -PSD_RTOL * np.abs(K).max()


def test_tiling_does_not_change_results():
    rng = np.random.default_rng(7)
    X = rng.standard_normal((9, 4, 4, 2))
    arch = ResCNN(2, 0.5, readout="gap")
    ref = gram(arch, X, n_threads=1)
    np.testing.assert_allclose(gram(arch, X, memory_budget=2**16), ref, rtol=1e-14)
    np.testing.assert_array_equal(gram(arch, X, n_threads=2), ref)


def test_normalize_and_deep_overflow():
    rng = np.random.default_rng(8)
    X = _ms(rng, 3, 5, 2)
    arch = ResCNN(1200, 1.0, readout="flatten")
    with pytest.raises(OverflowError):
        gram(arch, X)
    K = gram(ResCNN(30, 1.0, readout="flatten"), X, normalize=True)
    np.testing.assert_allclose(np.diag(K), 1.0, rtol=DIAGONAL_RTOL)
    Kd = gram(arch, X, normalize=True)                     # depth 1200: finite when normalised
    Kx = gram(arch, X[:2], X, normalize=True)              # cross Gram: diagonals computed unscaled
    np.testing.assert_allclose(Kx, Kd[:2], rtol=1e-12)


@pytest.mark.parametrize("kwargs, word", [(dict(filter_size=2), "filter_size"), (dict(stem_size=0), "stem_size"),
                                          (dict(readout="max"), "readout")])
def test_bad_specs(kwargs, word):
    with pytest.raises(ValueError, match=word):
        CNN(2, **kwargs)
    with pytest.raises(ValueError, match=word):
        ResCNN(2, 0.5, **kwargs)


def test_bad_inputs():
    X = np.ones((2, 4, 3))
    with pytest.raises(ValueError, match="larger than the signal"):
        gram(CNN(2, filter_size=5), X)
    with pytest.raises(ValueError, match="channels"):
        gram(CNN(2), X, np.ones((2, 4, 2)))
    with pytest.raises(ValueError, match="rank"):
        gram(CNN(2), np.ones((2, 4)))
    with pytest.raises(ValueError, match="1-D signals or both 2-D"):
        gram(CNN(2), X, np.ones((2, 4, 4, 3)))
    Xn = X.copy()
    Xn[0, 1, 2] = np.nan
    with pytest.raises(ValueError, match="non-finite"):
        gram(CNN(2), Xn)

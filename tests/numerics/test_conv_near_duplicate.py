"""Conv kernels at near-duplicate inputs against 30-digit mpmath on the independent route
(numerics.reference): the accuracy the README states.

x uniform on MS(3, 5), z = x with every pixel perturbed by delta N(0, I) and renormalised.  After
the first layer theta comes from arccos of a rounded rho, an error ~ N eps / theta for a rho good to
N ulps; the bound asserted is 256 eps / theta_min (theta_min: the smallest first-layer pixel angle).
Measured over 8 seeds (max relative error, max N = err theta_min / eps): CNN(6) 7.7e-10 (N = 138) at
delta = 1e-4, 2.4e-11 at 1e-5, 2.5e-10 (N = 1) at 1e-6; ResCNN(4, 0.6) 1.9e-11, 3.5e-12, 2.2e-11.
The snap threshold raised a thousandfold gives 1.3e-6 for CNN(6) at delta = 1e-6 (seed 0).
"""
import pytest

from reskernels.numerics import conv_fused
from reskernels.numerics.tolerances import EPS
from reskernels.proofs_check.claims.background import near_duplicate_error
from reskernels.theory import CNN, ResCNN

ARCHS = [CNN(6, readout="flatten"), CNN(6, readout="center"), ResCNN(4, 0.6, readout="flatten"),
         ResCNN(3, 0.6, readout="gap")]
BACKENDS = ["numpy"] + (["numba"] if conv_fused.available() else [])


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("delta", [1e-4, 1e-5, 1e-6])
@pytest.mark.parametrize("arch", ARCHS, ids=lambda a: a.slug.split("-iv")[0])
def test_near_duplicate_accuracy(arch, delta, backend):
    for seed in (0, 1):
        err, theta = near_duplicate_error(arch, delta, seed=seed, backend=backend)
        assert err <= 256 * EPS / theta, (err, theta)


@pytest.mark.parametrize("factor", [1000])
def test_raised_snap_threshold_is_caught(monkeypatch, factor):
    from reskernels.numerics import conv, pixel_maps
    monkeypatch.setattr(pixel_maps, "SNAP_ULPS", pixel_maps.SNAP_ULPS * factor)
    monkeypatch.setattr(conv, "_SNAP_ULPS", conv._SNAP_ULPS * factor)
    err, theta = near_duplicate_error(CNN(6, readout="flatten"), 1e-6)
    assert err > 256 * EPS / theta, (err, theta)

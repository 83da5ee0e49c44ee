"""The ReLU half-angle dual at small angles (theory.activations.SMALL_ANGLE_H) and the deep FC recursion it
feeds, against mpmath.

g(h) = su sv - h rho = (sin 2h - 2h cos 2h)/2 with h = theta/2 is ~4h^3/3 while both terms of the
difference are ~h: in float64 the difference errs by ~1.5 eps / h^2 relative.  1 - kappa1 = 2 su^2 - dk
carries that into the next layer's half angle as ~0.6 eps / h, and the deep recursion, whose angles
shrink like 1/l, added it layer after layer (MLP(10^4)'s NTK at t = 0 was 1.4e-9 off).  The Taylor
series below h = 1/4 removes it; the mpmath route keeps the difference at 40 digits (no formula shared).
"""
import mpmath as mp
import numpy as np
import pytest

import reskernels.theory.activations as activations
from reskernels import MLP, ResNet
from reskernels.numerics.backends import MPMATH, NUMPY
from reskernels.numerics.fc import MAP_RULES

EPS = np.finfo(float).eps
TS = (-0.5, 0.0, 0.5, 0.9, 0.99, 0.9999)


def _g_mp(h):
    with mp.workdps(50):
        h = mp.mpf(h)
        return (mp.sin(2 * h) - 2 * h * mp.cos(2 * h)) / 2


def test_series_is_within_a_few_ulps_on_the_whole_range():
    """half_f_series on (0, 1/4] within 4 ulps of g (measured 2.6: h^3's own rounding and Horner), and the
    difference it replaces worse than 100 ulps at h = 0.01 (the cancellation this fixes)."""
    hs = np.concatenate([np.geomspace(1e-8, 0.25, 200), np.linspace(0.2, 0.25, 50)])
    got = activations.half_f_series(hs)
    ref = np.array([float(_g_mp(h)) for h in hs])
    assert np.max(np.abs(got / ref - 1)) <= 4 * EPS
    h = 0.01
    direct = np.sin(h) * np.cos(h) - h * (np.cos(h) ** 2 - np.sin(h) ** 2)
    assert abs(direct / float(_g_mp(h)) - 1) > 100 * EPS
    assert activations.HALF_F_SERIES[0] == 4 / 3 and activations.HALF_F_SERIES[1] == -8 / 15


def _run(arch, su, sv, xp):
    st = (su, sv, None)
    for m in arch.kernel_maps():
        st = MAP_RULES[type(m)](m, st, xp, True)
    return st


def _reference(arch):
    out = []
    with mp.workdps(40):
        for t in TS:
            h = mp.acos(mp.mpf(t)) / 2
            out.append(_run(arch, mp.sin(h), mp.cos(h), MPMATH))
    return out


@pytest.mark.parametrize("arch", [MLP(2000), ResNet(1000, 0.5), ResNet(500, 1 / np.sqrt(500), trained="hidden")],
                         ids=lambda a: a.slug)
def test_deep_recursion_within_depth_eps_of_mpmath(arch, monkeypatch):
    """The last half angle su and the normalised NTK T of the float64 recursion within depth x eps
    (relative) of the same recursion in mpmath at 40 digits -- each layer's rounding (arcsin, sqrt, the
    series) is a few eps relative and is not amplified.  With the difference (SMALL_ANGLE_H = 0, the code
    before 2026-12-03) MLP(2000) misses that bound by orders of magnitude (a planted regression)."""
    th = np.arccos(TS) / 2
    ref = _reference(arch)
    depth = len(arch.kernel_maps())

    def errors():
        su, sv, T = _run(arch, np.sin(th), np.cos(th), NUMPY)
        e_su = max(abs(float(su[i] / r[0]) - 1) for i, r in enumerate(ref))
        e_T = max(abs(float(T[i] / r[2]) - 1) for i, r in enumerate(ref))
        return e_su, e_T

    e_su, e_T = errors()
    assert e_su <= depth * EPS and e_T <= depth * EPS, (e_su / EPS, e_T / EPS)
    if arch.slug.startswith("MLP"):
        monkeypatch.setattr(activations, "SMALL_ANGLE_H", 0.0)
        e_su, e_T = errors()
        assert e_su > 100 * depth * EPS and e_T > 10 * depth * EPS, (e_su / EPS, e_T / EPS)


def test_compiled_loop_takes_the_series_too():
    """gram's compiled FC loop (numerics.fc_fused) reads SMALL_ANGLE_H when it lowers the program: MLP(2000)'s
    NTK through it within depth x eps of mpmath at the same inputs, and far off with the threshold 0."""
    pytest.importorskip("numba")
    from reskernels.numerics import fc_fused
    arch = MLP(2000)
    th = np.arccos(TS) / 2
    su, sv = np.sin(th)[None, :], np.cos(th)[None, :]
    ref = _reference(arch)
    depth = len(arch.kernel_maps())

    def rel_error():
        out = np.empty((1, len(TS)))
        fc_fused.fc_block(su, sv, *fc_fused.lower(arch.kernel_maps()), True, out)
        return max(abs(float(out[0, i] / r[2]) - 1) for i, r in enumerate(ref))

    assert rel_error() <= depth * EPS
    old = activations.SMALL_ANGLE_H
    try:
        activations.SMALL_ANGLE_H = 0.0
        assert rel_error() > 10 * depth * EPS
    finally:
        activations.SMALL_ANGLE_H = old

"""The ReLU half-angle dual at small angles (theory.activations.SMALL_ANGLE_H) and the deep FC recursion it
feeds, against mpmath.

g(h) = su sv - h rho = (sin 2h - 2h cos 2h)/2 with h = theta/2 is ~4h^3/3 while both terms of the
difference are ~h: in float64 the difference errs by ~1.5 eps / h^2 relative.  1 - kappa1 = 2 su^2 - dk
carries that into the next layer's half angle as ~0.6 eps / h, and the deep recursion, whose angles
shrink like 1/l, added it layer after layer (MLP(10^4)'s NTK at t = 0 was 1.4e-9 off).  The Taylor
series below h = 1/4 removes it; the mpmath route keeps the difference at 40 digits (no formula shared).
"""
import math
from fractions import Fraction

import mpmath as mp
import numpy as np
import pytest

import reskernels.theory.activations as activations
from reskernels import MLP, ResNet
from reskernels.numerics.backends import MPMATH, NUMPY
from reskernels.numerics.fc import half_angle_state

EPS = np.finfo(float).eps
TS = (-0.5, 0.0, 0.5, 0.9, 0.99, 0.9999)


def _g_mp(h):
    with mp.workdps(50):
        h = mp.mpf(h)
        return (mp.sin(2 * h) - 2 * h * mp.cos(2 * h)) / 2


def test_series_is_within_a_few_eps_on_the_whole_range():
    """half_f_series on (0, 1/4] within 4 eps of g, relative (measured 1.9: h^3's own rounding and Horner),
    its coefficients the correctly rounded (-1)^(n+1) n 2^(2n+1) / (2n+1)!, and the difference it replaces
    worse than 100 eps at h = 0.01 (the cancellation this fixes)."""
    hs = np.concatenate([np.geomspace(1e-8, 0.25, 200), np.linspace(0.2, 0.25, 50)])
    got = activations.half_f_series(hs)
    ref = np.array([float(_g_mp(h)) for h in hs])
    assert np.max(np.abs(got / ref - 1)) <= 4 * EPS
    h = 0.01
    direct = np.sin(h) * np.cos(h) - h * (np.cos(h) ** 2 - np.sin(h) ** 2)
    assert abs(direct / float(_g_mp(h)) - 1) > 100 * EPS
    exact = [Fraction((-1) ** (n + 1) * n * 2 ** (2 * n + 1), math.factorial(2 * n + 1)) for n in range(1, 9)]
    assert activations.HALF_F_SERIES == tuple(float(c) for c in exact)
    assert [float(c) for c in exact[:3]] == [4 / 3, -8 / 15, 8 / 105]


def _reference(arch):
    out = []
    with mp.workdps(40):
        for t in TS:
            h = mp.acos(mp.mpf(t)) / 2
            out.append(half_angle_state(arch, mp.sin(h), mp.cos(h), MPMATH))
    return out


@pytest.mark.parametrize("arch", [MLP(2000), ResNet(1000, 0.5), ResNet(300, 1.0, trained="hidden")],
                         ids=lambda a: a.slug)
def test_deep_recursion_within_a_random_walk_of_mpmath(arch, monkeypatch):
    """The last half angle su and the normalised NTK T of the float64 recursion within 4 sqrt(depth) eps
    (relative) of the same recursion in mpmath at 40 digits: each layer's rounding (arcsin, sqrt, the
    series) is a few eps relative, not amplified, and adds up like a random walk (measured 4-12 eps on su,
    20-90 on T; depth 300-2000).  Planted regressions fail it: the difference everywhere (SMALL_ANGLE_H = 0,
    the code before 2026-12-03: 764-375601 eps) and the series only below h = 0.02 (203-2261 eps)."""
    th = np.arccos(TS) / 2
    ref = _reference(arch)
    bound = 4 * np.sqrt(len(arch.kernel_maps())) * EPS

    def worst():
        su, sv, T = half_angle_state(arch, np.sin(th), np.cos(th), NUMPY)
        return max(max(abs(float(su[i] / r[0]) - 1), abs(float(T[i] / r[2]) - 1)) for i, r in enumerate(ref))

    assert worst() <= bound, worst() / EPS
    for planted in (0.0, 0.02):
        monkeypatch.setattr(activations, "SMALL_ANGLE_H", planted)
        assert worst() > bound, (planted, worst() / EPS)


def test_compiled_loop_takes_the_series_too():
    """gram's compiled FC loop (numerics.fc_fused) reads SMALL_ANGLE_H when it lowers the program: MLP(2000)'s
    NTK through it within 4 sqrt(depth) eps of mpmath at the same inputs (as the numpy recursion above),
    and over 100 times that with the threshold 0."""
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

    bound = 4 * np.sqrt(depth) * EPS
    assert rel_error() <= bound
    old = activations.SMALL_ANGLE_H
    try:
        activations.SMALL_ANGLE_H = 0.0
        assert rel_error() > 100 * bound
    finally:
        activations.SMALL_ANGLE_H = old

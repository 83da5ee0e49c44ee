"""The suite's one tolerance table (docs/development.md §4): every check and test takes its tolerance here.

One function or constant per kind of ground truth; a check that needs a different number says so
next to the call (an *override*, with its reason).

==================  ===========================================================  ==================
kind                criterion                                                    here
==================  ===========================================================  ==================
exact               sympy ``simplify(a - b) == 0``                               (no tolerance)
mp                  |a - b| <= 10^-(dps-3) max(|a|, |b|)                         :func:`mp_rtol`,
                                                                                 :func:`mp_close`
digits              |got - want| <= 10^-digits |want| (agreement to N digits)    :func:`digits_agree`
self-consistency    dps and 2 dps agree to >= dps - 5 digits                     :func:`self_consistency_digits`
float64 kernel      rtol 50 eps depth                                            :func:`float64_kernel_rtol`
float64 diagonal    closed-form diagonals to 1e-14 relative                      :data:`DIAGONAL_RTOL`
PSD                 min eig >= -1e-12 ||K||                                      :data:`PSD_RTOL`
external oracle     rtol 1e-12; 1e-8 on flatten-readout NTK diagonals            :data:`ORACLE_RTOL`, ...
quadrature          never tighter than 1e-16 / mu_k                              :func:`quadrature_rtol_floor`
asymptotic          ratio to (c+ +- c-) M_k(nu) within 10 / k^2                  :func:`asymptotic_tol`
table values        half a unit in the last printed digit                        :func:`half_unit`, ...
Monte Carlo         |mean - exact| <= 4 s.e. + atol                              :func:`montecarlo_tol`
==================  ===========================================================  ==================

Each function returns the same float the suite computed inline before (same operations, same
order), so moving a check onto this table changes no number.

References
----------
docs/development.md §4 (tolerance policy); docs/spectral.md §7.4 (float64 accuracy near rho = +-1).
"""
from __future__ import annotations

import math
from decimal import Decimal

import mpmath
import numpy as np

#: float64 machine epsilon, 2^-52 (a numpy float64, as ``np.finfo(float).eps``).
EPS = np.finfo(np.float64).eps

#: float64 kernels: exact closed-form diagonals (rho = 1 carried exactly) to this relative error.
DIAGONAL_RTOL = 1e-14

#: PSD: the smallest eigenvalue of a Gram matrix may be as low as -PSD_RTOL ||K|| (eigensolver
#: backward error).
PSD_RTOL = 1e-12

#: external oracle (neural-tangents goldens): general relative tolerance ...
ORACLE_RTOL = 1e-12
#: ... and the looser one for flatten-readout NTK diagonals.
ORACLE_FLATTEN_NTK_DIAG_RTOL = 1e-8

#: asymptotic: |mu_k / prediction - 1| <= ASYMPTOTIC_FACTOR / k^2.
ASYMPTOTIC_FACTOR = 10.0

#: Monte Carlo: standard errors allowed between a sample mean and the exact value.
MC_SIGMAS = 4

#: self-consistency: digits that may be lost between working precision dps and 2 dps.
SELF_CONSISTENCY_LOSS = 5

#: mp: digits of the working precision not asserted (10^-(dps - MP_GUARD_DIGITS)).
MP_GUARD_DIGITS = 3


def float64_kernel_rtol(depth: int, per_layer: float = 50) -> float:
    """Relative tolerance of a float64 kernel value: ``per_layer * eps * depth``.

    Let :math:`L` denote ``depth``; the policy is :math:`50\\,\\varepsilon L` for
    :math:`|\\rho| \\le 1 - 10^{-6}`, relative to :math:`\\sqrt{K(x,x) K(z,z)}`.  A check that needs
    more headroom passes its own ``per_layer`` and counts extra steps in ``depth`` (e.g. the
    input and readout layers: ``float64_kernel_rtol(depth + 2, per_layer=100)``), with a comment.

    Examples
    --------
    >>> bool(float64_kernel_rtol(4) == 200 * EPS)
    True
    """
    return per_layer * EPS * depth


def mp_rtol(dps: int) -> mpmath.mpf:
    """The mp tolerance at working precision ``dps``: :math:`10^{-(\\mathrm{dps} - 3)}` (relative).

    Examples
    --------
    >>> mp_rtol(30) == mpmath.mpf(10) ** -27
    True
    """
    return mpmath.mpf(10) ** -(dps - MP_GUARD_DIGITS)


def mp_close(a, b, dps: int) -> bool:
    """|a - b| <= 10^-(dps-3) max(|a|, |b|), evaluated at ``dps + 10`` digits (docs/development.md §4, "mp")."""
    with mpmath.workdps(dps + 10):
        a, b = mpmath.mpf(a), mpmath.mpf(b)
        return bool(abs(a - b) <= mp_rtol(dps) * max(abs(a), abs(b)))


def digits_agree(got, want, digits: int) -> bool:
    """Agreement to ``digits`` significant digits: |got - want| <= 10^-digits |want|.

    Evaluated at the caller's working precision (wrap it in ``mpmath.workdps``); ``want`` is the
    reference.  An exact zero reference needs an exact zero (no relative scale exists).
    """
    want = mpmath.mpf(want)
    if want == 0:
        return got == 0
    return abs(got - want) <= mpmath.mpf(10) ** (-digits) * abs(want)


def self_consistency_digits(dps: int) -> int:
    """Digits that a result at ``dps`` must share with the same result at ``2 dps``: dps - 5;
    fewer makes the check ``inconclusive`` (docs/development.md §4)."""
    return dps - SELF_CONSISTENCY_LOSS


def quadrature_rtol_floor(mu: float) -> float:
    """The tightest relative tolerance a float64 quadrature of mu_k may claim: 1e-16 / |mu_k|
    (docs/spectral.md §7.2: the float64 route loses digits like 1e-16 / mu_k)."""
    return 1e-16 / abs(mu)


def asymptotic_tol(k: int, factor: float = ASYMPTOTIC_FACTOR) -> float:
    """|ratio - 1| allowed at degree k between mu_k and its endpoint prediction: factor / k^2
    (the next singular term is O(1/k^2), docs/spectral.md §5.1)."""
    return factor / k ** 2


def half_unit(printed) -> float:
    """Half a unit in the last printed digit of a table value: 0.5 * 10^(exponent of the last digit).

    ``printed`` is the value as printed (a string) or the float whose ``repr`` is the printed
    form: ``half_unit(0.0069) == 5e-05``, ``half_unit("1.50") == 0.005``.

    Examples
    --------
    >>> half_unit(0.333), half_unit("2.0"), half_unit(3.722e-2)
    (0.0005, 0.05, 5e-06)
    """
    text = printed if isinstance(printed, str) else repr(float(printed))
    return half_unit_decimal(-Decimal(text).as_tuple().exponent)


def half_unit_decimal(decimals: int) -> float:
    """Half a unit in the ``decimals``-th decimal: 0.5 * 10^-decimals (a table printed to that
    many decimals); equals the literal ``5e-(decimals+1)``.

    Examples
    --------
    >>> half_unit_decimal(4) == 5e-5 and half_unit_decimal(8) == 5e-9
    True
    """
    return 0.5 * 10.0 ** -decimals


def half_unit_significant(value: float, digits: int) -> float:
    """Half a unit in the ``digits``-th significant digit of ``value``:
    0.5e-(digits) * 10^ceil(log10 |value|)."""
    return 0.5 * 10.0 ** -digits * 10 ** math.ceil(math.log10(abs(value)))


def montecarlo_tol(se, atol=0.0):
    """Monte Carlo: ``4 s.e. + atol`` (elementwise for arrays), the allowed |mean - exact|.

    ``atol`` carries what is not sampling noise, e.g. the O(depth / width) finite-width bias;
    variances and CV^2 are never compared by point value (bootstrap intervals instead).
    """
    return MC_SIGMAS * se + atol


def within_montecarlo(mean, exact, se, atol=0.0) -> bool:
    """All of |mean - exact| <= 4 s.e. + atol (:func:`montecarlo_tol`)."""
    return bool(np.all(np.abs(mean - exact) <= montecarlo_tol(se, atol)))

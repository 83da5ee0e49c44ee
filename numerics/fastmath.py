"""arccos, arcsin and expm1 as branch-free polynomials, for whole SIMD lanes (the dual activations).

The arc-cosine duals need theta = arccos(rho) once per pixel pair per layer.  libm's ``acos`` is
a scalar call (~20 ns here) that stops a compiled loop from being vectorised; this module
evaluates the same function with multiplications, additions, one square root and selects only,
so that a compiled loop (numba / LLVM, no fastmath) runs it on 4 or 8 lanes at once.

**Reduction (identities, no tables).**  With a = |x|:

* a <= 1/2:  arcsin(a) = a + a z P(z) with z = a^2 in [0, 1/4];
* a > 1/2:   arcsin(a) = pi/2 - 2 arcsin(s),  s = sqrt(z),  z = (1 - a)/2 in [0, 1/4);

and arccos(x) = pi/2 - arcsin(x) for |x| <= 1/2, 2 arcsin(s) for x > 1/2, pi - 2 arcsin(s) for
x < -1/2.  (1 - a)/2 is exact for a in [1/2, 1] (Sterbenz), so the only roundings of the
argument are the square root's (half an ulp) and a^2's.  pi and pi/2 enter as hi + lo pairs.

**The polynomial.**  P(z) = (arcsin(sqrt z) - sqrt z) / z^(3/2) is analytic on [0, 1/4] (its
nearest singularity is z = 1); :data:`ASIN_COEFFS` are its degree-12 Chebyshev approximation
on [0, 1/4] (:func:`fit_asin_coefficients`, computed with mpmath at 40 digits; max |error| of
the fit 1.5e-17, i.e. a relative error <= 4e-18 of arcsin after the factor s z <= s/4), rounded
to float64.  The correction a z P(z) is at most 4.7 % of the result, so the roundings of
Horner's rule in P cost < 0.1 ulp; the final sum s + (s z) P costs half an ulp.

**Error bound.**  Measured against extended-precision ``np.arccos(longdouble)`` on a dense grid
(every float64 within 2^16 ulps of 0, +-1/2, +-1, plus a uniform grid of 2^22 points and
subnormals; tests/numerics/test_fastmath.py) and against 50-digit mpmath on random points:
max error <= :data:`ACOS_MAX_ULPS` = 1.5 ulps of the result for arccos, :data:`ASIN_MAX_ULPS` = 2.5
for arcsin (measured 1.13 and 2.16).  Special values are
exact: arccos(1) = 0, arccos(-1) = pi (the float64 of ``math.pi``), arccos(0) = pi/2, arcsin(0) =
0 with sign, arcsin(+-1) = +-pi/2; NaN and |x| > 1 give NaN.

Every function exists twice with the same operations in the same order: a scalar form for numba
(:func:`acos`, :func:`asin`, inlined into compiled loops) and a numpy form on arrays
(:func:`arccos_array`, :func:`arcsin_array`).  Without FMA contraction (numba's default,
``fastmath=False``) both round alike, so they agree bit for bit.

**expm1** (the sin and cos duals' sinh and cosh, one per pixel pair and layer; libm's ``expm1``
is again a scalar call, ~8 ns here).  Reduction x = k ln 2 + r, k = floor(x / ln 2 + 1/2), |r| <=
ln(2)/2 (+ rounding), by Cody and Waite: r = (x - k LN2_HI) - k LN2_LO, where LN2_HI is ln 2 cut to
32 bits so that k LN2_HI is exact for |k| <= 2^21 and x - k LN2_HI is exact (Sterbenz) -- the
reduction's only rounding is k LN2_LO's, about 1e-23 absolute.  Then expm1(r) = r + r^2 Q(r) with
Q(r) = (expm1(r) - r)/r^2 (analytic; :data:`EXPM1_COEFFS`: its degree-10 Chebyshev fit on
[-0.35, 0.35], mpmath at 40 digits, fit error 1.6e-18 of Q ~ 1/2, :func:`fit_expm1_coefficients`),
and expm1(x) = 2^k (1 + p) - 1 = 2 (t p + (t - 1/2)) with t = 2^(k-1) built from its exponent bits
(an integer shift, so the loop stays on lanes); t - 1/2 is exact for k <= 54, the factor 2 is
exact below overflow, and k = 0 returns p itself (so that subnormal x come back unchanged).
Arguments are clamped to [-45, 710]: below -45 the result rounds to -1, above 709.78 it overflows
to inf as libm's does.  Measured against long-double ``np.expm1`` on a dense grid (every float64
within 2^16 ulps of 0, +-ln(2)/2, +-ln 2, +-3 ln(2)/2 and the clamps, a log-spaced grid of 2^22
points on each side; tests/numerics/test_fastmath.py) and 50-digit mpmath: max error <=
:data:`EXPM1_MAX_ULPS` ulps of the result.  (The sign of a zero result is not kept: expm1(-0) = +0.)

numba's on-disk cache keys a compiled function on its own file only: after editing this module,
touch :mod:`numerics.conv_fused` (or clear its ``__pycache__``) so that the loop that inlines
:func:`acos` is recompiled.
"""
from __future__ import annotations

import math

import numpy as np

try:  # optional dependency
    import numba
except ImportError:  # pragma: no cover - exercised where numba is absent
    numba = None

#: P(z) = (arcsin(sqrt z) - sqrt z) / z^(3/2) ~ sum_k ASIN_COEFFS[k] z^k on [0, 1/4]
#: (degree-12 Chebyshev fit, :func:`fit_asin_coefficients`)
ASIN_COEFFS = (
    0.16666666666666669,
    0.07499999999998433,
    0.04464285714635543,
    0.030381944138531247,
    0.02237217294214989,
    0.017352392720869973,
    0.013971212973552933,
    0.011479177415184906,
    0.01032281435018578,
    0.005457506718640358,
    0.01740087944269402,
    -0.014851887071247204,
    0.028757851367421566,
)
C0, C1, C2, C3, C4, C5, C6, C7, C8, C9, C10, C11, C12 = ASIN_COEFFS

# pi and pi/2 as hi + lo (hi = the float64 nearest, lo = the rest rounded to float64)
PI_HI = 3.141592653589793
PI_LO = 1.2246467991473532e-16
PIO2_HI = 1.5707963267948966
PIO2_LO = 6.123233995736766e-17

#: error bounds in ulps of the result (measured maxima 1.13 and 2.16 on the grid of the tests,
#: rounded up; arcsin's larger error is the cancellation pi/2 - 2 arcsin(s) just above |x| = 1/2)
ACOS_MAX_ULPS = 1.5
ASIN_MAX_ULPS = 2.5


#: Q(r) = (expm1(r) - r)/r^2 ~ sum_k EXPM1_COEFFS[k] r^k on [-0.35, 0.35] (degree-10 Chebyshev fit,
#: :func:`fit_expm1_coefficients`)
EXPM1_COEFFS = (
    0.5,
    0.1666666666666667,
    0.04166666666666667,
    0.008333333333325551,
    0.0013888888888883332,
    0.00019841269876840357,
    2.480158732699005e-05,
    2.755725286336732e-06,
    2.755727183153613e-07,
    2.5106262550879078e-08,
    2.0915433598076003e-09,
)
Q0, Q1, Q2, Q3, Q4, Q5, Q6, Q7, Q8, Q9, Q10 = EXPM1_COEFFS

# ln 2 = LN2_HI + LN2_LO with LN2_HI cut to 32 bits (k LN2_HI exact for |k| < 2^21), and 1/ln 2
LN2_HI = 0.6931471803691238
LN2_LO = 1.9082149292705877e-10
INV_LN2 = 1.4426950408889634
#: expm1's argument clamps: below EXPM1_LOW the float64 result is -1, above EXPM1_HIGH inf
EXPM1_LOW = -45.0
EXPM1_HIGH = 710.0
#: expm1's error bound in ulps of the result (measured maximum 1.97 on the grid of the tests, just above
#: ln(2)/2 where k = 1: 2^k (1 + p) - 1 = 2 p + 1 with p ~ -0.29 doubles p's error; rounded up)
EXPM1_MAX_ULPS = 2.5


def fit_expm1_coefficients(degree: int = 10, dps: int = 40):
    """:data:`EXPM1_COEFFS` recomputed (mpmath's Chebyshev fit of (expm1(r) - r)/r^2 on [-0.35,
    0.35], lowest degree first), the fit's max error, and (LN2_HI, LN2_LO, INV_LN2)."""
    import mpmath

    def Q(r):
        return mpmath.mpf(1) / 2 if r == 0 else (mpmath.expm1(r) - r) / (r * r)

    with mpmath.workdps(dps):
        coeffs, err = mpmath.chebyfit(Q, [-mpmath.mpf("0.35"), mpmath.mpf("0.35")], degree + 1, error=True)
        ln2 = mpmath.log(2)
        hi = mpmath.ldexp(mpmath.floor(mpmath.ldexp(ln2, 32)), -32)
        consts = (float(hi), float(ln2 - hi), float(1 / ln2))
    return tuple(float(c) for c in coeffs[::-1]), float(err), consts


def fit_asin_coefficients(degree: int = 12, dps: int = 40):
    """The coefficients of :data:`ASIN_COEFFS` recomputed: mpmath's Chebyshev fit of
    P(z) = (arcsin(sqrt z) - sqrt z)/z^(3/2) on [0, 1/4], lowest degree first, and the fit's max
    error.  (How the table was made; the tests check that it reproduces the table.)"""
    import mpmath

    def P(z):
        if z == 0:
            return mpmath.mpf(1) / 6
        s = mpmath.sqrt(z)
        return (mpmath.asin(s) - s) / (z * s)

    with mpmath.workdps(dps):
        coeffs, err = mpmath.chebyfit(P, [0, mpmath.mpf(1) / 4], degree + 1, error=True)
    return tuple(float(c) for c in coeffs[::-1]), float(err)


def _jit(fn):
    if numba is None:
        return fn
    return numba.njit(cache=True, nogil=True, fastmath=False, error_model="numpy", inline="always")(fn)


@_jit
def _poly(z):
    p = C12
    p = p * z + C11
    p = p * z + C10
    p = p * z + C9
    p = p * z + C8
    p = p * z + C7
    p = p * z + C6
    p = p * z + C5
    p = p * z + C4
    p = p * z + C3
    p = p * z + C2
    p = p * z + C1
    p = p * z + C0
    return p


@_jit
def acos(x):
    """arccos(x) for a float64 x, branch-free (selects only), within ACOS_MAX_ULPS ulps."""
    a = abs(x)
    big = a > 0.5
    zb = (1.0 - a) * 0.5
    zs = a * a
    z = zb if big else zs
    sb = math.sqrt(zb)                             # NaN for |x| > 1
    s = sb if big else a
    r = s + (s * z) * _poly(z)                     # arcsin(s)
    r2 = r + r
    big_pos = 0.0 + r2                             # x > 1/2:  2 arcsin(s)
    big_neg = PI_HI - (r2 - PI_LO)                 # x < -1/2: pi - 2 arcsin(s)
    rs = math.copysign(r, x)
    small = PIO2_HI - (rs - PIO2_LO)               # |x| <= 1/2: pi/2 - arcsin(x)
    out = (big_pos if x > 0.0 else big_neg) if big else small
    return out if x == x else x


@_jit
def asin(x):
    """arcsin(x) for a float64 x, branch-free (selects only), within ASIN_MAX_ULPS ulps."""
    a = abs(x)
    big = a > 0.5
    zb = (1.0 - a) * 0.5
    zs = a * a
    z = zb if big else zs
    sb = math.sqrt(zb)
    s = sb if big else a
    r = s + (s * z) * _poly(z)
    big_r = PIO2_HI - ((r + r) - PIO2_LO)          # pi/2 - 2 arcsin(s)
    m = big_r if big else r
    return math.copysign(m, x) if x == x else x


@_jit
def _qpoly(r):
    q = Q10
    q = q * r + Q9
    q = q * r + Q8
    q = q * r + Q7
    q = q * r + Q6
    q = q * r + Q5
    q = q * r + Q4
    q = q * r + Q3
    q = q * r + Q2
    q = q * r + Q1
    q = q * r + Q0
    return q


@_jit
def expm1(x):
    """e^x - 1 for a float64 x, branch-free (selects, one integer shift), within EXPM1_MAX_ULPS ulps."""
    xc = x if x < EXPM1_HIGH else EXPM1_HIGH
    xc = xc if xc > EXPM1_LOW else EXPM1_LOW
    kf = math.floor(xc * INV_LN2 + 0.5)
    r = (xc - kf * LN2_HI) - kf * LN2_LO
    p = r + (r * r) * _qpoly(r)                    # expm1(r)
    t = np.int64((np.int64(kf) + 1022) << 52).view(np.float64)     # 2^(k - 1)
    y = (t * p + (t - 0.5)) * 2.0
    y = p if kf == 0.0 else y
    return y if x == x else x


if numba is not None:
    @numba.njit(cache=True, nogil=True, fastmath=False, error_model="numpy")
    def _expm1_loop(x, out):
        for i in range(x.shape[0]):
            out[i] = expm1(x[i])

    @numba.njit(cache=True, nogil=True, fastmath=False, error_model="numpy")
    def _acos_loop(x, out):
        for i in range(x.shape[0]):
            out[i] = acos(x[i])

    @numba.njit(cache=True, nogil=True, fastmath=False, error_model="numpy")
    def _asin_loop(x, out):
        for i in range(x.shape[0]):
            out[i] = asin(x[i])


def _numpy_core(x):
    """(a, big, s, z, r = arcsin(s)) on arrays: the operations of :func:`acos` in the same order."""
    a = np.abs(x)
    big = a > 0.5
    zb = (1.0 - a) * 0.5
    with np.errstate(invalid="ignore"):
        sb = np.sqrt(zb)
    z = np.where(big, zb, a * a)
    s = np.where(big, sb, a)
    p = np.full_like(z, C12)
    for c in ASIN_COEFFS[-2::-1]:
        p *= z
        p += c
    r = s + (s * z) * p
    return big, r


def _elementwise(x, out, compiled, loop_name, numpy_form):
    """A function of this module on a float64 array: its numba loop (``loop_name``, a module global
    defined where numba is installed) when ``compiled``, else ``numpy_form`` (numpy passes with the
    same operations in the same order: the same bits); into ``out`` when given."""
    x = np.asarray(x, dtype=np.float64)
    if compiled and numba is not None:
        xf = np.ascontiguousarray(x).reshape(-1)
        o = np.empty_like(xf)
        globals()[loop_name](xf, o)
        o = o.reshape(x.shape)
    else:
        o = numpy_form(x)
    if out is not None:
        out[...] = o
        return out
    return o


def _arccos_numpy(x):
    big, r = _numpy_core(x)
    r2 = r + r
    rs = np.copysign(r, x)
    o = np.where(big, np.where(x > 0.0, 0.0 + r2, PI_HI - (r2 - PI_LO)), PIO2_HI - (rs - PIO2_LO))
    return np.where(np.isnan(x), x, o)


def _arcsin_numpy(x):
    big, r = _numpy_core(x)
    m = np.where(big, PIO2_HI - ((r + r) - PIO2_LO), r)
    o = np.copysign(m, x)
    return np.where(np.isnan(x), x, o)


def _expm1_numpy(x):
    xc = np.where(x < EXPM1_HIGH, x, EXPM1_HIGH)
    xc = np.where(xc > EXPM1_LOW, xc, EXPM1_LOW)
    kf = np.floor(xc * INV_LN2 + 0.5)
    r = (xc - kf * LN2_HI) - kf * LN2_LO
    q = np.full_like(r, Q10)
    for c in EXPM1_COEFFS[-2::-1]:
        q *= r
        q += c
    p = r + (r * r) * q
    t = ((kf.astype(np.int64) + 1022) << 52).view(np.float64)
    with np.errstate(over="ignore"):
        y = (t * p + (t - 0.5)) * 2.0
    o = np.where(kf == 0.0, p, y)
    return np.where(np.isnan(x), x, o)


def arccos_array(x, out=None, compiled: bool = True):
    """arccos of a float64 array by the polynomial of this module (numba loop when available and
    ``compiled``, else numpy passes; the same bits either way)."""
    return _elementwise(x, out, compiled, "_acos_loop", _arccos_numpy)


def arcsin_array(x, out=None, compiled: bool = True):
    """arcsin of a float64 array by the polynomial of this module (see :func:`arccos_array`)."""
    return _elementwise(x, out, compiled, "_asin_loop", _arcsin_numpy)


def expm1_array(x, out=None, compiled: bool = True):
    """expm1 of a float64 array by the polynomial of this module (see :func:`arccos_array`)."""
    return _elementwise(x, out, compiled, "_expm1_loop", _expm1_numpy)

"""The polynomial arccos / arcsin / expm1 of numerics.fastmath: error bounds on a dense grid, special values,
the compiled and numpy forms bit for bit, and the coefficient table reproduced by its fit."""
import math

import mpmath
import numpy as np
import pytest

from reskernels.numerics import fastmath as fm


def _dense_grid():
    """Every float64 within 2^17 ulps of 0.5, 1, 0.25, 1/sqrt 2, 2^-26 and 1e-300 (both signs),
    the first 2^17 subnormals, and a uniform grid of 2^23 + 1 points on [-1, 1] (endpoints,
    +-1/2 and 0 included): the regions where the reduction switches or the result is tiny."""
    pts = []
    for c in (0.5, 1.0, 0.25, 0.7071067811865476, 2.0 ** -26, 1e-300):
        b = np.float64(c).view(np.int64)
        v = (b + np.arange(-2 ** 17, 2 ** 17)).view(np.float64)
        v = v[(v >= 0) & (v <= 1)]
        pts += [v, -v]
    pts.append(np.arange(0, 2 ** 17).view(np.float64))
    pts.append(np.linspace(-1.0, 1.0, 2 ** 23 + 1))
    return np.concatenate(pts)


GRID = _dense_grid()


def _ulps(got, ref):
    """|got - ref| in ulps of the float64 result (ref in extended precision)."""
    den = np.spacing(np.abs(ref.astype(np.float64)))
    out = np.zeros(got.shape)
    nz = ref != 0
    out[nz] = np.abs((got[nz].astype(np.longdouble) - ref[nz]) / den[nz]).astype(np.float64)
    out[~nz] = np.where(got[~nz] == 0, 0.0, np.inf)
    return out


needs_longdouble = pytest.mark.skipif(np.finfo(np.longdouble).nmant < 63,
                                      reason="the dense-grid oracle needs 80-bit long double")


@needs_longdouble
@pytest.mark.parametrize("name", ["arccos", "arcsin"])
def test_error_bound_on_the_dense_grid(name):
    """Against numpy's long-double arccos / arcsin (64-bit mantissa: 2^-11 ulp of float64)."""
    f, ref_fn, bound = ((fm.arccos_array, np.arccos, fm.ACOS_MAX_ULPS) if name == "arccos"
                        else (fm.arcsin_array, np.arcsin, fm.ASIN_MAX_ULPS))
    err = _ulps(f(GRID), ref_fn(GRID.astype(np.longdouble)))
    worst = int(np.argmax(err))
    assert err[worst] <= bound, f"{name}({GRID[worst]!r}): {err[worst]} ulps > {bound}"


@pytest.mark.parametrize("name", ["arccos", "arcsin"])
def test_error_bound_against_mpmath(name):
    """50-digit mpmath on 3000 random points, the reduction's breakpoints and the endpoints."""
    rng = np.random.default_rng(5)
    x = np.concatenate([rng.uniform(-1, 1, 2000), rng.uniform(0.49, 0.51, 500) * rng.choice([-1, 1], 500),
                        1 - rng.uniform(0, 1e-6, 500), [1.0, -1.0, 0.5, -0.5, np.nextafter(1.0, 0), 5e-324]])
    f, mf, bound = ((fm.arccos_array, mpmath.acos, fm.ACOS_MAX_ULPS) if name == "arccos"
                    else (fm.arcsin_array, mpmath.asin, fm.ASIN_MAX_ULPS))
    got = f(x)
    with mpmath.workdps(50):
        for xi, gi in zip(x, got):
            want = mf(mpmath.mpf(float(xi)))
            ulp = math.ulp(float(want)) if want != 0 else 0.0
            err = abs(mpmath.mpf(float(gi)) - want)
            assert (err == 0) if ulp == 0 else err <= bound * ulp, (name, xi, gi, want)


def test_special_values_are_exact():
    x = np.array([1.0, -1.0, 0.0, -0.0, np.nan, 1.5, -1.0000000000000002])
    a = fm.arccos_array(x)
    assert a[0] == 0.0 and a[1] == math.pi and a[2] == a[3] == math.pi / 2
    assert np.isnan(a[4:]).all()
    s = fm.arcsin_array(x)
    assert s[0] == math.pi / 2 and s[1] == -math.pi / 2
    assert s[2] == 0.0 and math.copysign(1.0, s[3]) == -1.0     # arcsin(-0) = -0
    assert np.isnan(s[4:]).all()
    tiny = np.array([5e-324, -5e-324, 1e-300])
    np.testing.assert_array_equal(fm.arcsin_array(tiny), tiny)     # arcsin(x) = x below 2^-26
    assert (fm.arccos_array(tiny) == math.pi / 2).all()


def test_compiled_and_numpy_forms_agree_bitwise():
    """The numba loop and the numpy passes perform the same roundings (no FMA contraction)."""
    pytest.importorskip("numba")
    x = GRID[::7]
    assert np.array_equal(fm.arccos_array(x), fm.arccos_array(x, compiled=False))
    assert np.array_equal(fm.arcsin_array(x), fm.arcsin_array(x, compiled=False))
    assert fm.acos(0.3) == fm.arccos_array(np.array([0.3]))[0]


def test_arccos_is_monotone_on_the_grid():
    """kappa0 = 1 - arccos/pi must not increase with rho by rounding: arccos non-increasing."""
    x = np.sort(GRID)
    assert np.all(np.diff(fm.arccos_array(x)) <= 0)


def test_coefficient_table_is_its_fit():
    """ASIN_COEFFS are mpmath's degree-12 Chebyshev fit of (arcsin(sqrt z) - sqrt z)/z^(3/2) on
    [0, 1/4], rounded to float64, with a fit error below 2e-17 (<= 0.05 ulp of arcsin)."""
    coeffs, err = fm.fit_asin_coefficients()
    assert coeffs == fm.ASIN_COEFFS
    assert err < 2e-17


# ---- expm1 ------------------------------------------------------------------------------------------

def _expm1_grid():
    """Every float64 within 2^16 ulps of 0, +-ln(2)/2, +-ln 2, +-3 ln(2)/2 (where k changes), 1.0,
    the clamps -45 and 709.78 (the largest finite result), log-spaced grids of 2^22 points on
    [1e-300, 709.7] and [-45, -1e-300], subnormals, and a uniform grid on [-50, 720]."""
    ln2 = math.log(2)
    pts = []
    for c in (0.0, ln2 / 2, ln2, 1.5 * ln2, 1.0, 45.0, 709.782712893384):
        b = np.float64(c).view(np.int64)
        v = (b + np.arange(-2 ** 16, 2 ** 16)).view(np.float64)
        v = v[np.isfinite(v) & (v >= 0)]
        pts += [v, -v]
    pts += [np.geomspace(1e-300, 709.7, 2 ** 22), -np.geomspace(1e-300, 45, 2 ** 22),
            np.arange(0, 2 ** 16).view(np.float64), np.linspace(-50, 720, 2 ** 20)]
    return np.concatenate(pts)


@needs_longdouble
def test_expm1_error_bound_on_the_dense_grid():
    """Against numpy's long-double expm1 where the float64 result is finite; overflow (inf) and the
    -1 plateau where libm has them."""
    x = _expm1_grid()
    got = fm.expm1_array(x)
    with np.errstate(over="ignore"):
        ref = np.expm1(x.astype(np.longdouble))
        ref64 = ref.astype(np.float64)
    fin = np.isfinite(ref64)
    assert np.array_equal(np.isinf(got), ~fin)
    err = _ulps(got[fin], ref[fin])
    worst = int(np.argmax(err))
    assert err[worst] <= fm.EXPM1_MAX_ULPS, f"expm1({x[fin][worst]!r}): {err[worst]} ulps"
    assert err[worst] > 1.0          # the bound is not loose by more than a factor 2.5


def test_expm1_error_bound_against_mpmath():
    """50-digit mpmath on random points, the reduction's breakpoints, tiny and large arguments."""
    rng = np.random.default_rng(6)
    ln2 = math.log(2)
    x = np.concatenate([rng.uniform(-40, 700, 1000), rng.uniform(-1, 1, 1000),
                        (rng.integers(-60, 1020, 500) + 0.5) * ln2 + rng.uniform(-1e-9, 1e-9, 500),
                        [5e-324, -5e-324, 1e-300, 1e-9, -1e-9, 709.78, -44.9, ln2 / 2, -ln2 / 2]])
    got = fm.expm1_array(x)
    with mpmath.workdps(50):
        for xi, gi in zip(x, got):
            want = mpmath.expm1(mpmath.mpf(float(xi)))
            err = abs(mpmath.mpf(float(gi)) - want)
            assert err <= fm.EXPM1_MAX_ULPS * math.ulp(float(want)), (xi, gi, want)


def test_expm1_special_values():
    x = np.array([0.0, 5e-324, -5e-324, np.nan, np.inf, -np.inf, 710.0, 1e300, -46.0, -1e300])
    y = fm.expm1_array(x)
    assert y[0] == 0.0 and y[1] == 5e-324 and y[2] == -5e-324      # expm1(x) = x for tiny x
    assert np.isnan(y[3]) and y[4] == np.inf and y[6] == y[7] == np.inf
    assert y[5] == -1.0 and y[8] == y[9] == -1.0


def test_expm1_compiled_and_numpy_forms_agree_bitwise():
    pytest.importorskip("numba")
    x = _expm1_grid()[::5]
    assert np.array_equal(fm.expm1_array(x), fm.expm1_array(x, compiled=False), equal_nan=True)
    assert fm.expm1(0.3) == fm.expm1_array(np.array([0.3]))[0]


def test_expm1_coefficient_table_is_its_fit():
    """EXPM1_COEFFS: mpmath's degree-10 Chebyshev fit of (expm1(r) - r)/r^2 on [-0.35, 0.35] (fit error
    < 2e-18, i.e. < 0.02 ulp of Q ~ 1/2), and the ln 2 split: LN2_HI has 32 significant bits at most,
    LN2_HI + LN2_LO = ln 2 to 1e-26."""
    coeffs, err, consts = fm.fit_expm1_coefficients()
    assert coeffs == fm.EXPM1_COEFFS and consts == (fm.LN2_HI, fm.LN2_LO, fm.INV_LN2)
    assert err < 2e-18
    assert float(fm.LN2_HI * 2 ** 32).is_integer()
    assert abs(mpmath.mpf(fm.LN2_HI) + mpmath.mpf(fm.LN2_LO) - mpmath.log(2)) < 1e-26

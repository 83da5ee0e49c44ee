"""The variance-carrying conv program as one compiled loop (numba): every closed-form activation, biases.

Programs that the normalised loop of :mod:`numerics.conv_fused` cannot run (a bias, or an
activation that is not positively homogeneous of degree 1: step, rectified monomials, erf, sin,
cos, monomials) are the maps of :mod:`theory.general` on the per-pixel-pair state (qx, qz, S, T)
(docs there; numpy: ``ConvGramPlan._block_general``).  Their pixel variances qx, qz depend on one
input and one pixel only, so they are not carried per pair: :func:`diagonal` runs the variance
maps once per input (qx' = P(c E1(qx, qx, qx) + b), ...) and records the variance of every dual
activation's argument, and :func:`block` carries (S, T) of many (pair, offset) problems at once in
(H, W, lanes) grids, as the normalised loop does, reading the recorded variances.  Both use the
same compiled dual and patch operator with the same operations in the same order, so the pair
(x, x) at one pixel holds S = qx = qz bit for bit: rho = 1 exactly, exact diagonals.

The duals (:func:`dual`) evaluate one entry of the ``dual`` hook of :mod:`theory.activations` --
E1 = E[phi(u) phi(v)], E0 = E[phi'(u) phi'(v)] for (u, v) ~ N(0, [[qx, S], [S, qz]]) -- with the
formula of that hook and the operations of the numpy context
(:class:`numerics.variance.NumpyContext`) in the same order, so the loop agrees with the numpy
interpreter to a few ulps: only the transcendental functions differ (libm, or the polynomial
arccos / arcsin / expm1 of :mod:`numerics.fastmath` with ``acos="poly"``, against numpy's own; sinh
and cosh from one expm1), by at most a few ulps each.

========================  =============  =================================================================
activation                engine id      E1, E0 (g = sqrt(qx qz), rho = S / g clipped, theta = arccos rho)
========================  =============  =================================================================
relu                      0              g kappa1 / 2, kappa0 / 2
leaky_relu(s), abs        1              g (w kappa1 + 2 s rho) / 2, (w kappa0 + 2 s) / 2, w = (1 - s)^2
step                      2              [g > 0] kappa0 / 2, 0
rectified_monomial(n)     3              g^n (A_n(rho) sin(theta)/pi + B_n(rho) kappa0) / 2, n^2 (the same at n-1)
erf                       4              (2/pi) arcsin(2 S / sqrt(d)), (4/pi) / sqrt(d - 4 S^2), d = (1+2qx)(1+2qz)
sin                       5              exp(-(qx+qz)/2) sinh S, exp(-(qx+qz)/2) cosh S (sinh, cosh: one expm1;
                                         the exponential as exp(-qx/2) exp(-qz/2), per pixel; a variance
                                         above 708: exp(|S| - (qx+qz)/2) (1 -+ exp(-2|S|)) / 2)
cos                       6              exp(-(qx+qz)/2) cosh S, exp(-(qx+qz)/2) sinh S
monomial(n)               7              sum_k c_k S^k (qx qz)^((n-k)/2), n^2 (the same at n-1)
========================  =============  =================================================================

with kappa0 = (pi - theta)/pi, kappa1 = (sqrt(1 - rho^2) + (pi - theta) rho)/pi (Cho & Saul 2009),
A_n, B_n the polynomials of :func:`theory.activations._arccos_kernel_parts` and c_k Mehler's
coefficients (:func:`theory.activations._hermite_moment_coefficients`), read from the activation's
``engine_params`` and ``engine_coefs`` (:data:`theory.activations.ENGINE_IDS`).

References
----------
Cho & Saul, "Kernel methods for deep learning", NeurIPS 2009 (arc-cosine kernels); Williams,
"Computing with infinite networks", NeurIPS 1997 (erf); the formulas as stated in
:mod:`theory.activations`; the maps with biases: docs/conventions.md and :mod:`theory.general`.

Duals without a closed form (engine id :data:`SERIES`: tanh, GELU, user functions without kinks) run
their Hermite series on the same lanes (:func:`series_pixels`, :mod:`numerics.series_lanes`; tables
and variances from :mod:`numerics.conv_series`), or, where the pixel variances are equal
(multi-sphere inputs), their tables in rho (:mod:`numerics.rho_tables`).

numba's on-disk cache keys a compiled function on its own file's contents only: after editing
:mod:`numerics.conv_fused` (``patch``), :mod:`numerics.fastmath`, :mod:`numerics.series_lanes`,
:mod:`numerics.rho_tables` or
:mod:`numerics.hermite` (``degree_step``, ``horner_step``), change this module's contents too,
and after editing a function here that :mod:`numerics.fc_fused` compiles in (``dual_grid``), change
that module's (touching a file is not enough; a stale cache returns the old code's numbers).
"""
from __future__ import annotations

import math

import numpy as np

from . import fastmath as _fm
from .conv_fused import (LANE_ENTRIES, OP_BLOCK, OP_LINEAR, OP_NONLINEAR, OP_STEM, _inline, _jit, assign_lanes,
                         numba, patch, readout_accumulate)
from .rho_tables import mark_other_tables, rho_dual, series_rest
from .series_lanes import LANE_DEGREES, series_dual_gathered


RELU, LEAKY, STEP, RECT_MONOMIAL, ERF, SIN, COS, MONOMIAL = range(8)
#: engine ids the compiled variance-carrying loop evaluates
GENERAL_IDS = frozenset(range(8))
#: engine id of a dual without a closed form taken by its Hermite series (:mod:`numerics.series_lanes`)
#: in the FC loop and in :func:`block`
SERIES = 100


@_inline
def ipow(x, k):
    """x^k for an integer k >= 0 as numpy's ``x ** k``: k = 0, 1, 2 exactly (1, x, x x), else pow."""
    if k == 0:
        return 1.0
    if k == 1:
        return x
    if k == 2:
        return x * x
    return math.pow(x, k)


@_inline
def horner(coef, start, count, x):
    """sum_i coef[start + i] x^i by Horner's rule from the highest power (theory.activations._poly)."""
    out = 0.0
    for i in range(count - 1, -1, -1):
        out = out * x + coef[start + i]
    return out


@_inline
def moment(coef, start, count, n, qx, qz, S):
    """E[u^n v^n] = sum_k c_k S^k (qx qz)^((n-k)/2), k = n mod 2, n mod 2 + 2, ... (Mehler)."""
    tot = 0.0
    p = qx * qz
    for i in range(count):
        k = n % 2 + 2 * i
        tot = tot + coef[start + i] * ipow(S, k) * ipow(p, (n - k) // 2)
    return tot


@_inline
def angle(qx, qz, S, poly):
    """(g, rho, k0, pt) with g = sqrt(qx qz), rho = S / g clipped to [-1, 1] (0 where g = 0),
    pt = pi - arccos(rho), k0 = kappa0 = pt / pi (NumpyContext: safe_div, clip1, kappa0)."""
    g = math.sqrt(qx * qz)
    rho = S / g if g > 0 else 0.0
    rho = 1.0 if rho > 1.0 else rho
    rho = -1.0 if rho < -1.0 else rho
    th = _fm.acos(rho) if poly else math.acos(rho)
    pt = math.pi - th
    return g, rho, pt / math.pi, pt


@_inline
def relu_dual(qx, qz, S, poly):
    """relu: (g kappa1 / 2, kappa0 / 2), kappa1 = (sqrt(1 - rho^2) + (pi - theta) rho) / pi."""
    g, rho, k0, pt = angle(qx, qz, S, poly)
    k1 = (math.sqrt(1.0 - rho * rho) + pt * rho) / math.pi
    return g * k1 / 2, k0 / 2


@_inline
def leaky_dual(ap, qx, qz, S, poly):
    """leaky_relu(s): (g (w kappa1 + 2 s rho) / 2, (w kappa0 + 2 s) / 2), ap = (w, 2 s, .)."""
    g, rho, k0, pt = angle(qx, qz, S, poly)
    k1 = (math.sqrt(1.0 - rho * rho) + pt * rho) / math.pi
    return g * (ap[0] * k1 + ap[1] * rho) / 2, (ap[0] * k0 + ap[1]) / 2


@_inline
def step_dual(qx, qz, S, poly):
    """step: ([g > 0] kappa0 / 2, 0)."""
    g, rho, k0, pt = angle(qx, qz, S, poly)
    return (1.0 if g > 0 else 0.0) * k0 / 2, 0.0


@_inline
def rect_angle(qx, qz, S, poly):
    """(g, rho, kappa0, sin_pi = kappa1 - rho kappa0) for :func:`rect_dual`."""
    g, rho, k0, pt = angle(qx, qz, S, poly)
    k1 = (math.sqrt(1.0 - rho * rho) + pt * rho) / math.pi
    return g, rho, k0, k1 - rho * k0


@_inline
def rect_dual(ap, coef, qx, qz, S, poly):
    """rectified_monomial(n): (g^n J_n / (2 pi), n^2 g^(n-1) J_(n-1) / (2 pi)), ap = (n, lengths):
    g^n (A_n(rho) sin_pi + B_n(rho) kappa0) / 2 (theory.activations._arccos_kernel)."""
    g, rho, k0, sin_pi = rect_angle(qx, qz, S, poly)
    n = int(ap[0])
    la, lb, la0, lb0 = int(ap[1]), int(ap[2]), int(ap[3]), int(ap[4])
    a1, b1 = horner(coef, 0, la, rho), horner(coef, la, lb, rho)
    a0, b0 = horner(coef, la + lb, la0, rho), horner(coef, la + lb + la0, lb0, rho)
    return rect_combine(n, g, k0, sin_pi, a1, b1, a0, b0)


#: rectified monomials of degree 1 <= n <= RECT_FUSED_DEGREE: :func:`dual_grid` evaluates them in one
#: pass per entry (:func:`rect_dual_short`); A_n, B_n have at most n + 1 coefficients, the three of
#: :func:`horner3` (which fixes the degree)
RECT_FUSED_DEGREE = 2


@_inline
def rect_padded(ap, coef):
    """The four polynomials of a rectified monomial of degree <= 2 as a 12-tuple, polynomial k's
    coefficient of x^j at 3 k + j, zeros above each polynomial's length (``ap[1:5]``): scalars that
    the loop keeps in registers."""
    cp = np.zeros(12)
    start = 0
    for k in range(4):
        count = int(ap[1 + k])
        for j in range(count):
            cp[3 * k + j] = coef[start + j]
        start += count
    return (cp[0], cp[1], cp[2], cp[3], cp[4], cp[5], cp[6], cp[7], cp[8], cp[9], cp[10], cp[11])


@_inline
def horner3(c0, c1, c2, x):
    """Horner's rule on (c0, c1, c2) from the highest power, starting at 0 as :func:`horner` does: its
    bits on the unpadded polynomial for a finite x (0 x + 0 = 0 in the padded steps)."""
    out = 0.0
    out = out * x + c2
    out = out * x + c1
    out = out * x + c0
    return out


@_inline
def rect_dual_short(m, c, qx, qz, S, poly):
    """:func:`rect_dual` for degree m = 1 or 2 with the polynomials of :func:`rect_padded`: the same
    operations (g^m and g^(m-1) by selects instead of :func:`ipow`'s branches, the same values), so
    that the loop stays on SIMD lanes."""
    g, rho, k0, sin_pi = rect_angle(qx, qz, S, poly)
    a1 = horner3(c[0], c[1], c[2], rho)
    b1 = horner3(c[3], c[4], c[5], rho)
    a0 = horner3(c[6], c[7], c[8], rho)
    b0 = horner3(c[9], c[10], c[11], rho)
    gm = g * g if m == 2 else g
    gm1 = g if m == 2 else 1.0
    return gm * (a1 * sin_pi + b1 * k0) / 2, (m * m) * (gm1 * (a0 * sin_pi + b0 * k0) / 2)


@_inline
def rect_combine(n, g, k0, sin_pi, a1, b1, a0, b0):
    """(g^n (a1 sin_pi + b1 k0) / 2, n^2 (g^(n-1) (a0 sin_pi + b0 k0) / 2)) from the polynomial values."""
    return ipow(g, n) * (a1 * sin_pi + b1 * k0) / 2, (n * n) * (ipow(g, n - 1) * (a0 * sin_pi + b0 * k0) / 2)


@_inline
def erf_dual(qx, qz, S, poly):
    """erf: ((2/pi) arcsin(2 S / sqrt(d)), (4/pi) / sqrt(d - 4 S^2)), d = (1 + 2 qx)(1 + 2 qz)."""
    d = (1 + 2 * qx) * (1 + 2 * qz)
    r = 2 * S / math.sqrt(d)
    return (2 / math.pi) * (_fm.asin(r) if poly else math.asin(r)), (4 / math.pi) / math.sqrt(d - 4 * S * S)


@_inline
def sinh_cosh(x, poly):
    """(sinh x, cosh x) from one expm1 of |x| (m = e^|x| - 1): sinh = sign(x) (m + m / (m + 1)) / 2
    (no cancellation near 0), cosh = ((m + 1) + 1 / (m + 1)) / 2; each within ~3 ulps of libm's.
    ``poly``: expm1 by :func:`numerics.fastmath.expm1` (<= 2.5 ulps, SIMD lanes), else libm's."""
    m = _fm.expm1(abs(x)) if poly else math.expm1(abs(x))
    u = m + 1.0
    return math.copysign((m + m / u) * 0.5, x), (u + 1.0 / u) * 0.5


#: the largest variance whose factor exp(-q / 2) sin and cos read (:func:`half_exp`); above it the
#: factor array holds -q and the entry takes :func:`sin_dual_large`.  A literal, not read from
#: :data:`theory.activations.HALF_EXP_MAX_VARIANCE` (a test holds them equal): numba freezes globals into
#: its on-disk cache, which is keyed on this file's contents only
HALF_EXP_MAX_VARIANCE = 708.0


@_inline
def sin_dual_fast(ex, ez, S, poly):
    """sin: (e sinh S, e cosh S) with e = exp(-(qx + qz)/2) = ex ez, ex = exp(-qx / 2), ez = exp(-qz / 2)
    (per pixel: :func:`half_exp`), sinh and cosh by :func:`sinh_cosh`; for both variances at most
    :data:`HALF_EXP_MAX_VARIANCE` (the factors positive).  Branch-free, for SIMD lanes."""
    e = ex * ez
    sh, ch = sinh_cosh(S, poly)
    return e * sh, e * ch


@_inline
def sin_dual_large(ex, ez, S):
    """sin's dual when a variance exceeds :data:`HALF_EXP_MAX_VARIANCE` (its factor holds -q):
    e sinh S = sign(S) t (1 - exp(-2|S|)) / 2, e cosh S = t (1 + exp(-2|S|)) / 2 with
    t = exp(|S| - (qx + qz)/2) <= 1 (|S| <= sqrt(qx qz)), so that neither e underflows nor sinh S
    overflows.  With h = q / 2 (exact): t = ex exp(|S| - hz) when only z is large (the exponent is at
    most hx <= 354), else t = exp((|S| - h1) - h2), h1 = max(hx, hz): both differences are exact
    (Sterbenz) for near-parallel pairs, |S| ~ h1 + h2, where t ~ 1 needs them."""
    s = abs(S)
    r = math.expm1(-2.0 * s)                    # exp(-2|S|) - 1 in (-1, 0]
    if ex > 0.0:
        t = ex * math.exp(s - (-ez) / 2)
    elif ez > 0.0:
        t = ez * math.exp(s - (-ex) / 2)
    else:
        hx, hz = (-ex) / 2, (-ez) / 2
        h1, h2 = max(hx, hz), min(hx, hz)
        t = math.exp((s - h1) - h2)
    return math.copysign(t * (-r) * 0.5, S), t * (2.0 + r) * 0.5


@_inline
def sin_dual(ex, ez, S, poly):
    """sin: (exp(-(qx+qz)/2) sinh S, exp(-(qx+qz)/2) cosh S) from the factors of :func:`half_exp`:
    :func:`sin_dual_fast` when both are positive (variances <= :data:`HALF_EXP_MAX_VARIANCE`), else
    :func:`sin_dual_large`."""
    if ex > 0.0 and ez > 0.0:
        return sin_dual_fast(ex, ez, S, poly)
    return sin_dual_large(ex, ez, S)


@_inline
def half_exp_one(v):
    """exp(-v / 2) for v <= :data:`HALF_EXP_MAX_VARIANCE`, else -v (a flag: the variance itself,
    which :func:`sin_dual_large` reads; v >= 0 always)."""
    return math.exp(-v / 2) if v <= HALF_EXP_MAX_VARIANCE else -v


@_jit
def half_exp(V):
    """The factors sin's and cos's duals read, one per input and pixel: exp(-V / 2) elementwise,
    -V where V > :data:`HALF_EXP_MAX_VARIANCE` (:func:`half_exp_one`)."""
    out = np.empty_like(V)
    vf, of = V.reshape(-1), out.reshape(-1)
    for i in range(vf.shape[0]):
        of[i] = half_exp_one(vf[i])
    return out


@_jit
def dual_factors(ops, V):
    """What the duals read for the recorded variances V: the factors of :func:`half_exp` when the
    program has a sin or cos dual (their duals take the factors, :func:`sin_dual`), else V itself;
    a dual with engine id SIN or COS reads this array, every other dual V."""
    for o in range(ops.shape[0]):
        if ops[o, 1] == SIN or ops[o, 1] == COS:
            return half_exp(V)
    return V


@_inline
def monomial_dual(ap, coef, qx, qz, S):
    """monomial(n): (E[u^n v^n], n^2 E[u^(n-1) v^(n-1)]) (Mehler), ap = (n, count, count')."""
    n = int(ap[0])
    c1, c0 = int(ap[1]), int(ap[2])
    E1 = moment(coef, 0, c1, n, qx, qz, S) + S * 0
    E0 = (n * n) * moment(coef, c1, c0, n - 1, qx, qz, S) if n >= 1 else S * 0
    return E1, E0


@_inline
def dual(eid, ap, coef, qx, qz, S, poly):
    """(E1, E0) of the activation with engine id ``eid`` (module table) at one entry; ``ap`` its
    engine_params, ``coef`` its engine_coefs; ``poly``: arccos, arcsin and expm1 by numerics.fastmath
    (else libm)."""
    if eid == RELU:
        return relu_dual(qx, qz, S, poly)
    if eid == LEAKY:
        return leaky_dual(ap, qx, qz, S, poly)
    if eid == STEP:
        return step_dual(qx, qz, S, poly)
    if eid == RECT_MONOMIAL:
        return rect_dual(ap, coef, qx, qz, S, poly)
    if eid == ERF:
        return erf_dual(qx, qz, S, poly)
    if eid == SIN:
        return sin_dual(half_exp_one(qx), half_exp_one(qz), S, poly)
    if eid == COS:
        E1, E0 = sin_dual(half_exp_one(qx), half_exp_one(qz), S, poly)
        return E0, E1
    return monomial_dual(ap, coef, qx, qz, S)


@_jit
def dual_grid(eid, ap, coef, QX, QZ, S, E1, E0, W, poly):
    """E1[i], E0[i] = dual(eid, ..., QX[i], QZ[i], S[i]) over flat arrays: the same per-entry functions
    as :func:`dual`, one loop per activation and arccos (the branches outside the loops, so that the
    compiler can run the bodies on SIMD lanes).  QX, QZ and W (4, n) are scratch."""
    n = S.shape[0]
    if eid == RELU and poly:
        for i in range(n):
            E1[i], E0[i] = relu_dual(QX[i], QZ[i], S[i], True)
    elif eid == RELU:
        for i in range(n):
            E1[i], E0[i] = relu_dual(QX[i], QZ[i], S[i], False)
    elif eid == LEAKY and poly:
        for i in range(n):
            E1[i], E0[i] = leaky_dual(ap, QX[i], QZ[i], S[i], True)
    elif eid == LEAKY:
        for i in range(n):
            E1[i], E0[i] = leaky_dual(ap, QX[i], QZ[i], S[i], False)
    elif eid == STEP and poly:
        for i in range(n):
            E1[i], E0[i] = step_dual(QX[i], QZ[i], S[i], True)
    elif eid == STEP:
        for i in range(n):
            E1[i], E0[i] = step_dual(QX[i], QZ[i], S[i], False)
    elif (eid == RECT_MONOMIAL and 1 <= ap[0] <= RECT_FUSED_DEGREE
          and max(ap[1], ap[2], ap[3], ap[4]) <= RECT_FUSED_DEGREE + 1):
        # rect_dual per entry in one pass (the four short polynomials padded with zeros above their
        # degree, g^m by selects), on SIMD lanes
        c = rect_padded(ap, coef)
        m = int(ap[0])
        if poly:
            for i in range(n):
                E1[i], E0[i] = rect_dual_short(m, c, QX[i], QZ[i], S[i], True)
        else:
            for i in range(n):
                E1[i], E0[i] = rect_dual_short(m, c, QX[i], QZ[i], S[i], False)
    elif eid == RECT_MONOMIAL:
        # passes over all entries with the operations of rect_dual, each on SIMD lanes: the angles
        # (g, rho, kappa0, sin_pi in QX, QZ, E1, E0), the four polynomials by Horner's rule, one
        # coefficient at a time (W[0..3]), then the combination
        if poly:
            for i in range(n):
                QX[i], QZ[i], E1[i], E0[i] = rect_angle(QX[i], QZ[i], S[i], True)
        else:
            for i in range(n):
                QX[i], QZ[i], E1[i], E0[i] = rect_angle(QX[i], QZ[i], S[i], False)
        start = 0
        for k in range(4):
            count = int(ap[1 + k])
            for i in range(n):
                W[k, i] = 0.0
            for j in range(count - 1, -1, -1):
                cj = coef[start + j]
                for i in range(n):
                    W[k, i] = W[k, i] * QZ[i] + cj
            start += count
        m = int(ap[0])
        for i in range(n):
            E1[i], E0[i] = rect_combine(m, QX[i], E1[i], E0[i], W[0, i], W[1, i], W[2, i], W[3, i])
    elif eid == ERF and poly:
        for i in range(n):
            E1[i], E0[i] = erf_dual(QX[i], QZ[i], S[i], True)
    elif eid == ERF:
        for i in range(n):
            E1[i], E0[i] = erf_dual(QX[i], QZ[i], S[i], False)
    elif eid == SIN or eid == COS:
        # QX, QZ hold the factors of half_exp: the branch-free form on every entry (SIMD lanes), then,
        # where a factor is <= 0 (a variance above HALF_EXP_MAX_VARIANCE; counted on lanes first), those
        # entries again; cos's pair is sin's swapped
        if eid == SIN and poly:
            for i in range(n):
                E1[i], E0[i] = sin_dual_fast(QX[i], QZ[i], S[i], True)
        elif eid == SIN:
            for i in range(n):
                E1[i], E0[i] = sin_dual_fast(QX[i], QZ[i], S[i], False)
        elif poly:
            for i in range(n):
                E0[i], E1[i] = sin_dual_fast(QX[i], QZ[i], S[i], True)
        else:
            for i in range(n):
                E0[i], E1[i] = sin_dual_fast(QX[i], QZ[i], S[i], False)
        flagged = 0
        for i in range(n):
            flagged += (QX[i] <= 0.0) | (QZ[i] <= 0.0)
        if flagged:
            for i in range(n):
                if QX[i] <= 0.0 or QZ[i] <= 0.0:
                    if eid == SIN:
                        E1[i], E0[i] = sin_dual_large(QX[i], QZ[i], S[i])
                    else:
                        E0[i], E1[i] = sin_dual_large(QX[i], QZ[i], S[i])
    else:
        # monomial_dual's sums, one term at a time over all entries (SIMD lanes)
        m = int(ap[0])
        c1, c0 = int(ap[1]), int(ap[2])
        for i in range(n):
            QX[i] = QX[i] * QZ[i]                       # p = qx qz
            E1[i] = 0.0
            E0[i] = 0.0
        for t in range(c1):
            k = m % 2 + 2 * t
            c = coef[t]
            for i in range(n):
                E1[i] = E1[i] + c * ipow(S[i], k) * ipow(QX[i], (m - k) // 2)
        for t in range(c0):
            k = (m - 1) % 2 + 2 * t
            c = coef[c1 + t]
            for i in range(n):
                E0[i] = E0[i] + c * ipow(S[i], k) * ipow(QX[i], (m - 1 - k) // 2)
        for i in range(n):
            E1[i] = E1[i] + S[i] * 0
            E0[i] = (m * m) * E0[i] if m >= 1 else S[i] * 0


@_jit
def diagonal(xs, ops, params, aparams, coef, taps_h, taps_w, VX, poly, RX, sdiag, stop):
    """VX[d, i] = the variance (H, W) of the d-th dual activation's argument for input i: the maps of
    :func:`block` on the diagonal state q = qx = qz = S of each input (:mod:`theory.general`:
    Stem q = input_var P_stem |x_p|^2 + b; Nonlinear q' = P(c E1(q, q, q) + b); Block
    qa = c P q + b, q' = q + (alpha^2 P E1(qa, qa, qa) + b); Linear q' = c q + b).  A SERIES dual's
    E1(q, q, q) is its table's one-dimensional second moment sdiag[0, RX[d, i, h, w]]
    (:class:`numerics.fc_series.Tables`; :func:`numerics.conv_series.record_series_variances`); ``stop`` >= 0: no map
    after dual ``stop`` runs (its variances recorded, the later ones not), -1: all maps."""
    a, H, W, C = xs.shape
    q = np.empty((H, W, 1))
    A = np.empty((H, W, 1))
    B = np.empty((H, W, 1))
    tmp = np.empty((H, W, 1))
    for i in range(a):
        d = 0
        for o in range(ops.shape[0]):
            code, eid = ops[o, 0], ops[o, 1]
            th = taps_h[ops[o, 3]:ops[o, 3] + ops[o, 4]]
            tw = taps_w[ops[o, 5]:ops[o, 5] + ops[o, 6]]
            cf = coef[ops[o, 7]:ops[o, 7] + ops[o, 8]]
            c, b, a2 = params[o, 0], params[o, 1], params[o, 2]
            if code == OP_STEM:
                for h in range(H):
                    for w in range(W):
                        s = xs[i, h, w, 0] * xs[i, h, w, 0]
                        for ch in range(1, C):
                            s += xs[i, h, w, ch] * xs[i, h, w, ch]
                        A[h, w, 0] = s
                patch(A, B, tmp, th, tw, H, W)
                for h in range(H):
                    for w in range(W):
                        q[h, w, 0] = c * B[h, w, 0] + b
            elif code == OP_NONLINEAR:
                for h in range(H):
                    for w in range(W):
                        v = q[h, w, 0]
                        VX[d, i, h, w] = v
                        e1 = sdiag[0, RX[d, i, h, w]] if eid == SERIES else dual(eid, aparams[o], cf, v, v, v, poly)[0]
                        A[h, w, 0] = c * e1 + b
                d += 1
                if d > stop >= 0:
                    break
                patch(A, q, tmp, th, tw, H, W)
            elif code == OP_BLOCK:
                patch(q, A, tmp, th, tw, H, W)
                for h in range(H):
                    for w in range(W):
                        v = c * A[h, w, 0] + b
                        VX[d, i, h, w] = v
                        A[h, w, 0] = sdiag[0, RX[d, i, h, w]] if eid == SERIES else dual(eid, aparams[o], cf, v, v, v, poly)[0]
                d += 1
                if d > stop >= 0:
                    break
                patch(A, B, tmp, th, tw, H, W)
                for h in range(H):
                    for w in range(W):
                        q[h, w, 0] = q[h, w, 0] + (a2 * B[h, w, 0] + b)
            elif code == OP_LINEAR:
                for h in range(H):
                    for w in range(W):
                        q[h, w, 0] = c * q[h, w, 0] + b


@_jit
def gather(VXd, VZd, ia, zidx, QX, QZ):
    """QX[h, w, l] = VXd[ia, h, w] and QZ[h, w, l] = VZd at the z pixel of lane l (flat index zidx)."""
    H, W, NL = QX.shape
    vz = VZd.reshape(VZd.size)
    for h in range(H):
        for w in range(W):
            qx = VXd[ia, h, w]
            for l in range(NL):
                QX[h, w, l] = qx
                QZ[h, w, l] = vz[zidx[h, w, l]]


@_inline
def series_pixels(RXd, RZd, ia, zidx, QX, QZ, S, E1, E0, FL, want_ntk, soff, skc, sm2, sdiag, sa, stail, Wser,
                  Iw, Ws, srix, srtab, srok, srdeg, Bw, Wc):
    """E1[h, w, l], E0[h, w, l] of a SERIES dual on the (H, W, NL) lane grid of row ``ia``: per pixel, the
    row's variance QX[h, w, 0] (table row RXd[ia, h, w]) against the lanes' pixels (table rows of the
    flat z pixels zidx[h, w, l] in RZd), :func:`numerics.series_lanes.series_dual_gathered`; FL[l] = 1
    where an entry of lane l is not certified.  Where the row's pixel has tables in rho (``srix``,
    ``srtab``, ``srok``, ``srdeg``: :func:`numerics.rho_tables.build`, pixels of equal variance), the
    lanes reading the same tables take :func:`numerics.rho_tables.rho_dual` (each panel at its own degree) and the others (other
    tables, uncertified panels) the series, compacted -- per entry the same bits as without tables.
    ``Iw`` (8, NL) int64, ``Bw`` (2, NL) uint8, ``Ws`` (8, NL) and ``Wc`` (4, NL): scratch."""
    H, W, NL = S.shape
    RZl, oz, kz, IX = Iw[0], Iw[1], Iw[2], Iw[3]
    Ci = Iw[4:]
    BAD, CF = Bw[0], Bw[1]
    rz = RZd.reshape(RZd.size)
    for h in range(H):
        for w in range(W):
            for l in range(NL):
                RZl[l] = rz[zidx[h, w, l]]
            rr = RXd[ia, h, w]
            t1, t0 = srix[0, rr], srix[1, rr]
            nbad = NL
            if (t1 >= 0) & ((t0 >= 0) | (not want_ntk)):
                mark_other_tables(srix, t1, t0, RZl, BAD, want_ntk, NL)
                nbad = rho_dual(QX[h, w, 0], QZ[h, w], S[h, w], E1[h, w], E0[h, w], want_ntk, t1, t0, srtab, srok,
                                srdeg, sdiag[0, rr], sdiag[1, rr], Ws[0], IX, BAD, NL)
            if nbad == NL:
                series_dual_gathered(rr, RZl, QX[h, w, 0], QZ[h, w], S[h, w], E1[h, w], E0[h, w], FL,
                                     want_ntk, soff, skc, sm2, sdiag, sa, stail, Wser, oz, kz, Ws[0], Ws[1], Ws[2],
                                     Ws[3], Ws[4], Ws[5], Ws[6], Ws[7])
            elif nbad > 0:
                series_rest(rr, RZl, QX[h, w, 0], QZ[h, w], S[h, w], E1[h, w], E0[h, w], FL, BAD, want_ntk, soff,
                            skc, sm2, sdiag, sa, stail, Wser, Ci, Wc, CF, Ws)


@_jit
def block(xs, zs, OH, OW, VX, VZ, ops, params, aparams, coef, taps_h, taps_w, want_ntk, readout, upper, out,
          poly, RX, RZ, soff, skc, sm2, sdiag, sa, stail, srix, srtab, srok, srdeg, flag):
    """out[ia, jb] += readout of the variance-carrying program for every pair of (xs, zs) and every
    offset (``upper``: only jb >= ia), the lane layout of :func:`numerics.conv_fused.block`.

    ``ops[o]`` = (opcode, engine id, trained, h-taps start, count, w-taps start, count, coefficients
    start, count), ``params[o]`` = (input_var or weight_var c, bias_var b, alpha^2),
    ``aparams[o]`` / ``coef`` the activation's engine_params / engine_coefs (:func:`lower`), and
    VX, VZ the recorded variances of :func:`diagonal`.  Per entry, as theory.general:

    * Stem: S = c P_stem <x_p, z_p+o> + b, T = S if trained else 0;
    * Nonlinear: (E1, E0) = dual(qx, qz, S), T' = P(c E0 T + [trained] (c E1 + b)), S' = P(c E1 + b);
    * Block: Sa = c P S + b, (E1, E0) = dual(qax, qaz, Sa), Sc = alpha^2 P E1 + b,
      T' = T + (alpha^2 P(E0 (c P T + Sa)) + Sc), S' = S + Sc;
    * Linear: S' = c S + b, T' = c T + [trained] S'.

    Duals without a closed form (engine id :data:`SERIES`) by their Hermite series,
    :func:`numerics.series_lanes.series_dual_gathered` per pixel of row ``ia`` against the lanes'
    pixels: RX[d, i, h, w], RZ[d, j, h, w] the table rows of the variances VX, VZ in the tables
    (soff, skc, sm2, sdiag, sa, stail) of :class:`numerics.fc_series.Tables`
    (:func:`numerics.conv_series.record_series_variances`); flag[i, j] = 1 where an entry of the pair is not certified
    (the pair's value is then nan).  Programs without a SERIES dual read none of these."""
    a, H, W, C = xs.shape
    b_ = zs.shape[0]
    R = OH.shape[0]
    P = H * W
    NL = max(1, min(LANE_ENTRIES // P, 64, b_ * R))
    if NL >= 8:
        NL -= NL % 8
    S = np.empty((H, W, NL))
    T = np.empty((H, W, NL))
    A = np.empty((H, W, NL))
    B = np.empty((H, W, NL))
    p1 = np.empty((H, W, NL))
    p0 = np.empty((H, W, NL))
    tmp = np.empty((H, W, NL))
    QX = np.empty((H, W, NL))
    QZ = np.empty((H, W, NL))
    QXf, QZf = QX.reshape(-1), QZ.reshape(-1)
    Wk = np.empty((4, P * NL))
    n = P * NL
    Sf, Tf, Af, Bf, p1f, p0f = S.reshape(-1), T.reshape(-1), A.reshape(-1), B.reshape(-1), p1.reshape(-1), p0.reshape(-1)
    lj = np.zeros(NL, dtype=np.int64)
    lr = np.zeros(NL, dtype=np.int64)
    lh = np.zeros(NL, dtype=np.int64)
    lw = np.zeros(NL, dtype=np.int64)
    vals = np.empty(NL)
    EX = dual_factors(ops, VX)              # sin / cos: their per-pixel exponential factors
    EZ = dual_factors(ops, VZ)
    zidx = np.empty((H, W, NL), dtype=np.int64)
    zflat = zs.reshape(zs.size)
    li = np.zeros(NL, dtype=np.int64)              # every lane's row: ia (readout_accumulate)
    # SERIES duals: their lanes' flags, table rows and scratch (the tables' degrees at most)
    FL = np.zeros(NL, dtype=np.uint8)
    Wser = min(LANE_DEGREES, max(1, skc.max() + 1))
    Iw = np.zeros((8, NL), dtype=np.int64)
    Bw = np.zeros((2, NL), dtype=np.uint8)
    Ws = np.empty((8, NL))
    Wc = np.empty((4, NL))
    for ia in range(a):
        j0 = ia if upper else 0
        n_tasks = (b_ - j0) * R
        acc = 0.0
        for t0 in range(0, n_tasks, NL):
            # the chunk from task t0 of row ia, within that row (rows ia + 1.. are out of its reach)
            nl, _, _ = assign_lanes(ia, t0, ia + 1, b_, upper, R, OH, OW, li, lj, lr, lh, lw, zidx)
            d = 0
            for l in range(NL):
                FL[l] = 0
            for o in range(ops.shape[0]):
                code, eid = ops[o, 0], ops[o, 1]
                trained = ops[o, 2] != 0
                th = taps_h[ops[o, 3]:ops[o, 3] + ops[o, 4]]
                tw = taps_w[ops[o, 5]:ops[o, 5] + ops[o, 6]]
                cf = coef[ops[o, 7]:ops[o, 7] + ops[o, 8]]
                ap = aparams[o]
                c, bv, a2 = params[o, 0], params[o, 1], params[o, 2]
                if code == OP_STEM:
                    for h in range(H):
                        for w in range(W):
                            for l in range(NL):
                                qi = zidx[h, w, l] * C
                                s = xs[ia, h, w, 0] * zflat[qi]
                                for ch in range(1, C):
                                    s += xs[ia, h, w, ch] * zflat[qi + ch]
                                A[h, w, l] = s
                    patch(A, B, tmp, th, tw, H, W)
                    for i in range(n):
                        Sf[i] = c * Bf[i] + bv
                        Tf[i] = Sf[i] if trained else 0.0
                elif code == OP_NONLINEAR:
                    if eid == SIN or eid == COS:          # the exponential factors of the variances
                        gather(EX[d], EZ[d], ia, zidx, QX, QZ)
                    else:
                        gather(VX[d], VZ[d], ia, zidx, QX, QZ)
                    if eid == SERIES:
                        series_pixels(RX[d], RZ[d], ia, zidx, QX, QZ, S, p1, p0, FL, want_ntk, soff, skc, sm2, sdiag,
                                      sa, stail, Wser, Iw, Ws, srix, srtab, srok, srdeg, Bw, Wc)
                    else:
                        dual_grid(eid, ap, cf, QXf, QZf, Sf, p1f, p0f, Wk, poly)
                    for i in range(n):
                        p1f[i] = c * p1f[i] + bv
                    if want_ntk:
                        for i in range(n):
                            tt = c * p0f[i] * Tf[i]
                            Af[i] = tt + p1f[i] if trained else tt
                    d += 1
                    if want_ntk:
                        patch(A, T, tmp, th, tw, H, W)
                    patch(p1, S, tmp, th, tw, H, W)
                elif code == OP_BLOCK:
                    patch(S, A, tmp, th, tw, H, W)                   # A = P S
                    for i in range(n):
                        Af[i] = c * Af[i] + bv                        # Sa
                    if eid == SIN or eid == COS:          # the exponential factors of the variances
                        gather(EX[d], EZ[d], ia, zidx, QX, QZ)
                    else:
                        gather(VX[d], VZ[d], ia, zidx, QX, QZ)
                    if eid == SERIES:
                        series_pixels(RX[d], RZ[d], ia, zidx, QX, QZ, A, p1, p0, FL, want_ntk, soff, skc, sm2, sdiag,
                                      sa, stail, Wser, Iw, Ws, srix, srtab, srok, srdeg, Bw, Wc)
                    else:
                        dual_grid(eid, ap, cf, QXf, QZf, Af, p1f, p0f, Wk, poly)
                    d += 1
                    patch(p1, B, tmp, th, tw, H, W)                  # B = P E1
                    for i in range(n):
                        Bf[i] = a2 * Bf[i] + bv                       # Sc
                    if want_ntk:
                        patch(T, p1, tmp, th, tw, H, W)              # p1 := P T
                        for i in range(n):
                            p0f[i] = p0f[i] * (c * p1f[i] + Af[i])    # E0 Ta
                        patch(p0, p1, tmp, th, tw, H, W)             # p1 := P(E0 Ta)
                        for i in range(n):
                            Tf[i] = Tf[i] + (a2 * p1f[i] + Bf[i])
                    for i in range(n):
                        Sf[i] = Sf[i] + Bf[i]
                elif code == OP_LINEAR:
                    for i in range(n):
                        sn = c * Sf[i] + bv
                        if want_ntk:
                            tt = c * Tf[i]
                            Tf[i] = tt + sn if trained else tt
                        Sf[i] = sn
            for l in range(nl):
                if FL[l]:
                    flag[ia, lj[l]] = 1
            acc = readout_accumulate(T if want_ntk else S, readout, vals, P, nl, lr, lj, R, out, li, acc)


@_jit
def patch_rows(src, dst, taps, mask):
    """dst[p] = mean over taps of src[p + d] (circular) for the pixels p with mask[p], on every lane at
    once (rows (P, NL)), rounded as :func:`numerics.conv_fused.mean_shifts`: the centre first, then the
    taps in order, times 1/q."""
    P = src.shape[0]
    inv = 1.0 / taps.shape[0]
    for p in range(P):
        if not mask[p]:
            continue
        dst[p, :] = src[p, :]
        if taps.shape[0] == 1:
            continue
        for d in taps:
            if d != 0:
                pp = (p + d) % P
                for l in range(src.shape[1]):
                    dst[p, l] += src[pp, l]
        for l in range(src.shape[1]):
            dst[p, l] *= inv


@_jit
def multi_dot_block(ts, ops, params, aparams, coef, taps_w, need, mid, VX, want_ntk, readout, out, poly):
    """out[i] = the center (readout 2) or flatten (1) value of the variance-carrying program for the pair
    (unit 1-D signal, signal whose pixel i has cosine ts[i, p] with it), one channel: the kernel of unit
    pixels at the cosines ts (multi-dot-product kernel, numerics.multisphere).

    The maps and their operations are those of :func:`block` (same per-entry duals, patch rounding and
    order), on (P, lanes) rows of 64 inputs, but each map computes only the pixels its output needs
    (``need[o + 1]``, the receptive cone of the readout, :func:`cone_masks`; a dual at ``mid[o]``), so a
    center readout evaluates 9 duals of CNN(3) on 5 pixels instead of 15.  VX[d, p] holds the variances of
    the unit signal (:func:`diagonal`); sin and cos read their factors (:func:`dual_factors`), as in
    :func:`block`."""
    N, P = ts.shape
    NL = 64
    S = np.zeros((P, NL))
    T = np.zeros((P, NL))
    A = np.zeros((P, NL))
    B = np.zeros((P, NL))
    p1 = np.zeros((P, NL))
    p0 = np.zeros((P, NL))
    QX = np.empty(NL)
    QZ = np.empty(NL)
    Wk = np.empty((4, NL))
    EX = dual_factors(ops, VX)              # sin / cos: their per-pixel exponential factors
    for r0 in range(0, N, NL):
        nl = min(NL, N - r0)
        d = 0
        for o in range(ops.shape[0]):
            code, eid = ops[o, 0], ops[o, 1]
            trained = ops[o, 2] != 0
            tw = taps_w[ops[o, 5]:ops[o, 5] + ops[o, 6]]
            cf = coef[ops[o, 7]:ops[o, 7] + ops[o, 8]]
            ap = aparams[o]
            c, bv, a2 = params[o, 0], params[o, 1], params[o, 2]
            m_in, m_out = need[o], need[o + 1]
            if code == OP_STEM:
                for p in range(P):
                    for l in range(nl):
                        A[p, l] = 1.0 * ts[r0 + l, p]
                    for l in range(nl, NL):
                        A[p, l] = 1.0
                patch_rows(A, B, tw, m_out)
                for p in range(P):
                    if m_out[p]:
                        for l in range(NL):
                            S[p, l] = c * B[p, l] + bv
                            T[p, l] = S[p, l] if trained else 0.0
            elif code == OP_NONLINEAR:
                for p in range(P):
                    if m_in[p]:
                        q = EX[d, p] if eid == SIN or eid == COS else VX[d, p]
                        QX[:] = q
                        QZ[:] = q
                        dual_grid(eid, ap, cf, QX, QZ, S[p], p1[p], p0[p], Wk, poly)
                        for l in range(NL):
                            p1[p, l] = c * p1[p, l] + bv
                        if want_ntk:
                            for l in range(NL):
                                tt = c * p0[p, l] * T[p, l]
                                A[p, l] = tt + p1[p, l] if trained else tt
                d += 1
                if want_ntk:
                    patch_rows(A, T, tw, m_out)
                patch_rows(p1, S, tw, m_out)
            elif code == OP_BLOCK:
                m_mid = mid[o]                                               # the dual's pixels
                patch_rows(S, A, tw, m_mid)                                  # A = P S
                for p in range(P):
                    if m_mid[p]:
                        for l in range(NL):
                            A[p, l] = c * A[p, l] + bv                       # Sa
                        q = EX[d, p] if eid == SIN or eid == COS else VX[d, p]
                        QX[:] = q
                        QZ[:] = q
                        dual_grid(eid, ap, cf, QX, QZ, A[p], p1[p], p0[p], Wk, poly)
                d += 1
                patch_rows(p1, B, tw, m_out)                                 # B = P E1
                for p in range(P):
                    if m_out[p]:
                        for l in range(NL):
                            B[p, l] = a2 * B[p, l] + bv                      # Sc
                if want_ntk:
                    patch_rows(T, p1, tw, m_mid)                             # p1 := P T
                    for p in range(P):
                        if m_mid[p]:
                            for l in range(NL):
                                p0[p, l] = p0[p, l] * (c * p1[p, l] + A[p, l])
                    patch_rows(p0, p1, tw, m_out)                            # p1 := P(E0 Ta)
                    for p in range(P):
                        if m_out[p]:
                            for l in range(NL):
                                T[p, l] = T[p, l] + (a2 * p1[p, l] + B[p, l])
                for p in range(P):
                    if m_out[p]:
                        for l in range(NL):
                            S[p, l] = S[p, l] + B[p, l]
            elif code == OP_LINEAR:
                for p in range(P):
                    if m_out[p]:
                        for l in range(NL):
                            sn = c * S[p, l] + bv
                            if want_ntk:
                                tt = c * T[p, l]
                                T[p, l] = tt + sn if trained else tt
                            S[p, l] = sn
        V = T if want_ntk else S
        for l in range(nl):
            if readout == 2:
                out[r0 + l] = V[0, l]
            else:
                acc = 0.0
                for p in range(P):
                    acc += V[p, l]
                out[r0 + l] = acc / P if readout == 1 else acc


@_inline
def neumaier_add(acc, comp, i, x):
    """acc[i] += x with Neumaier's compensation: the rounding of the addition goes into comp[i]."""
    t = acc[i] + x
    if abs(acc[i]) >= abs(x):
        comp[i] += (acc[i] - t) + x
    else:
        comp[i] += (x - t) + acc[i]
    acc[i] = t


@_jit
def _flush_sums(buf, wbuf, obuf, owner, fill, ops, params, aparams, coef, taps_w, need, mid, VX, want_ntk, readout,
                poly, G, comp):
    """F on the first ``fill`` buffered rows, G[owner] += weight F with Neumaier's compensation in comp."""
    multi_dot_block(buf[:fill], ops, params, aparams, coef, taps_w, need, mid, VX, want_ntk, readout, obuf[:fill],
                    poly)
    for b in range(fill):
        neumaier_add(G, comp, owner[b], wbuf[b] * obuf[b])


@_jit
def tensor_sums(base, near_axes, XC, XW, XL, far_axes, DF, WF, mirror, ops, params, aparams, coef, taps_w, need,
                mid, VX, want_ntk, readout, poly, G):
    """G[i] = sum over the tensor grid of point i of the product of its weights times F at that grid point,
    F by :func:`multi_dot_block` (the unnormalised value; the same loop, the same bits per point).

    Point i: the row base[i] (its active pixels' cosines), near pixels ``near_axes`` on point i's own 1-D
    rule (cosines XC[i, :XL[i]], weights XW[i, :XL[i]], the same rule on every near axis: XL[i]^m nodes),
    far pixels ``far_axes`` on the fixed tensor rule (rows DF, weights WF).  The grid is generated in
    blocks of 1024 rows (no (points x grid x P) array: the window rule of numerics.ray_spectra had spent
    3/4 of its time building one), each block's products summed with Neumaier's compensation into G[i]
    (rounding of the sum ~ eps |sum of |terms||, independent of the grid's size).

    mirror (empty, or one entry per near axis: the near axis it becomes under a symmetry of F that
    fixes base and the far rule, e.g. the reflection p -> -p of a center readout on a one-pixel ray at
    pixel 0 without far pixels; it must be an involution, mirror[mirror] = identity, so that orbits
    have one or two nodes -- the caller checks): each orbit {node, mirrored node} of the near grid is
    evaluated once, with weight 2 for an orbit of two nodes (the grid rule is the same on every near
    axis, so weights are invariant)."""
    n_act, P = base.shape
    m = near_axes.shape[0]
    nf = DF.shape[0]
    NB = 1024
    buf = np.empty((NB, P))
    wbuf = np.empty(NB)
    obuf = np.empty(NB)
    owner = np.empty(NB, dtype=np.int64)
    comp = np.zeros(n_act)
    idx = np.zeros(max(m, 1), dtype=np.int64)
    sym = mirror.shape[0] == m and m > 0
    for i in range(n_act):
        G[i] = 0.0
    fill = 0
    for i in range(n_act):
        L = XL[i]
        total = 1
        for a in range(m):
            total *= L
        for lin in range(total):
            r = lin
            for a in range(m - 1, -1, -1):
                idx[a] = r % L
                r //= L
            mult = 1.0
            if sym:
                lm = 0
                for a in range(m):
                    lm = lm * L + idx[mirror[a]]
                if lm < lin:
                    continue
                if lm > lin:
                    mult = 2.0
            wn = mult
            for a in range(m):
                wn *= XW[i, idx[a]]
            for f in range(nf):
                for p in range(P):
                    buf[fill, p] = base[i, p]
                for a in range(m):
                    buf[fill, near_axes[a]] = XC[i, idx[a]]
                for a in range(far_axes.shape[0]):
                    buf[fill, far_axes[a]] = DF[f, a]
                wbuf[fill] = wn * WF[f]
                owner[fill] = i
                fill += 1
                if fill == NB:
                    _flush_sums(buf, wbuf, obuf, owner, fill, ops, params, aparams, coef, taps_w, need, mid, VX,
                                want_ntk, readout, poly, G, comp)
                    fill = 0
    if fill > 0:
        _flush_sums(buf, wbuf, obuf, owner, fill, ops, params, aparams, coef, taps_w, need, mid, VX, want_ntk,
                    readout, poly, G, comp)
    for i in range(n_act):
        G[i] += comp[i]

@_jit
def _flush_window(buf, obuf, nt, tidx, tmult, W, C, r, ops, params, aparams, coef, taps_w, need, mid, VX, want_ntk,
                  readout, poly, out, comp):
    """F on the buffered rows of nt outer tuples (N rows each) and their contribution to out / comp
    (:func:`window_sums`); returns the number of rows."""
    N, K = C.shape
    P = buf.shape[1]
    rows = nt * N
    multi_dot_block(buf[:rows], ops, params, aparams, coef, taps_w, need, mid, VX, want_ntk, readout, obuf[:rows],
                    poly)
    for b in range(nt):
        for k in range(K):
            r[k] = 0.0
        for i0 in range(N):
            wf = W[i0] * obuf[b * N + i0]
            for k in range(K):
                r[k] += wf * C[i0, k]
        for k in range(K):
            x = r[k] * tmult[b]
            for a in range(1, P):
                x *= W[tidx[b, a]] * C[tidx[b, a], k]
            neumaier_add(out, comp, k, x)
    return rows


@_jit
def window_sums(xc, W, C, sigma, part, nparts, ops, params, aparams, coef, taps_w, need, mid, VX, want_ntk,
                readout, poly, out, comp):
    """Part ``part`` of ``nparts`` of the full-window ray sums on the tensor rule of N nodes a pixel:
    out[k] + comp[k] = sum over idx in N^P of Prod_p W[idx_p] C[idx_p, k] times F(xc[idx_0], ..., xc[idx_(P-1)]),
    F by :func:`multi_dot_block` (unnormalised; the same loop and bits per point as every other route).

    Streamed, no grid in memory: the outer tuples (idx_1, ..., idx_(P-1)) with linear index lin = part mod
    nparts are taken in turn, each with its N rows idx_0 = 0..N-1 (buffered ~1024 rows to a call of the
    kernel loop); a tuple's rows are contracted first, r[k] = sum_(idx_0) W C F, then r[k] times the
    tuple's product of outer weights goes into out[k] with Neumaier's compensation in comp[k].

    sigma (empty, or a permutation of the P pixels with sigma[0] = 0 and sigma[sigma] = identity): F is
    invariant under t -> t o sigma (the reflection p -> -p of a conv spec); each orbit {tuple, mirrored
    tuple} of the outer tuples is evaluated once, with weight 2 for an orbit of two (the rule is the
    same on every axis, so the weights are invariant).  Returns the number of kernel evaluations."""
    N, K = C.shape
    P = need.shape[1]
    m = P - 1
    total = 1
    for a in range(m):
        total *= N
    per = max(1, 1024 // N)
    buf = np.empty((per * N, P))
    obuf = np.empty(per * N)
    tidx = np.zeros((per, P), dtype=np.int64)
    tmult = np.empty(per)
    idx = np.zeros(P, dtype=np.int64)
    r = np.empty(K)
    sym = sigma.shape[0] == P
    nt = 0
    evals = 0
    for lin in range(part, total, nparts):
        v = lin
        for a in range(P - 1, 0, -1):
            idx[a] = v % N
            v //= N
        mult = 1.0
        if sym:
            lm = 0
            for a in range(1, P):
                lm = lm * N + idx[sigma[a]]
            if lm < lin:
                continue
            if lm > lin:
                mult = 2.0
        for a in range(P):
            tidx[nt, a] = idx[a]
        tmult[nt] = mult
        for i0 in range(N):
            row = nt * N + i0
            buf[row, 0] = xc[i0]
            for a in range(1, P):
                buf[row, a] = xc[idx[a]]
        nt += 1
        if nt == per:
            evals += _flush_window(buf, obuf, nt, tidx, tmult, W, C, r, ops, params, aparams, coef, taps_w, need, mid,
                                   VX, want_ntk, readout, poly, out, comp)
            nt = 0
    if nt > 0:
        evals += _flush_window(buf, obuf, nt, tidx, tmult, W, C, r, ops, params, aparams, coef, taps_w, need, mid,
                               VX, want_ntk, readout, poly, out, comp)
    return evals


def cone_masks(program, P: int, readout: str):
    """(need, mid) for :func:`multi_dot_block`: need[o] (n_ops + 1, P) bool, the pixels of the state before
    map o that the readout needs (need[n_ops]: after the last map; the center pixel 0 for 'center', every
    pixel for 'flatten'), backwards through the maps; mid[o] (n_ops, P), the pixels of map o's dual.  A
    Nonlinear map's dual and input are needed on its output's pixels widened by the filter's taps; a
    Block's dual on the output's pixels widened once (P E1), its input widened twice (E1(P S)) and where
    the output is (the skip); a Linear or Pool map's input where its output is."""
    n = program.ops.shape[0]
    need = np.zeros((n + 1, P), dtype=np.bool_)
    mid = np.zeros((n, P), dtype=np.bool_)
    if readout == "center":
        need[n, 0] = True
    else:
        need[n, :] = True

    def widen(m, taps):
        w = np.zeros(P, dtype=np.bool_)
        for d in taps:
            w |= np.roll(m, int(d))           # patch_rows reads p + d for p in m: w[q] = m[q - d]
        return w
    for o in range(n - 1, -1, -1):
        code = program.ops[o, 0]
        tw = program.taps_w[program.ops[o, 5]:program.ops[o, 5] + program.ops[o, 6]]
        if code == OP_NONLINEAR:
            need[o] = mid[o] = widen(need[o + 1], tw)
        elif code == OP_BLOCK:
            mid[o] = widen(need[o + 1], tw)
            need[o] = widen(mid[o], tw) | need[o + 1]
        else:
            need[o] = need[o + 1]
    return need, mid


class Program:
    """A variance-carrying conv program lowered for :func:`block` and :func:`diagonal`: ``ops``
    (n, 9) int64, ``params`` (n, 3), ``aparams`` (n, 5) and ``coef`` float64, tap offsets int64,
    ``n_duals`` the number of dual activations."""

    def __init__(self, ops, params, aparams, coef, taps_h, taps_w, n_duals):
        self.ops, self.params, self.aparams, self.coef = ops, params, aparams, coef
        self.taps_h, self.taps_w, self.n_duals = taps_h, taps_w, n_duals


def lower(maps, taps_of, series=None) -> Program:
    """Lower kernel maps (:mod:`theory.layers`) to the arrays of :func:`block`; NotImplementedError for
    an activation without a compiled dual (engine id not in :data:`GENERAL_IDS`) or a concatenation.
    ``series(act)``: whether the loop takes ``act``'s dual by its Hermite series (then engine id
    :data:`SERIES`; :func:`block` and the FC loop read its tables, the ray loops have no such dual)."""
    from reskernels.theory import layers as _L
    from .conv_fused import APARAMS
    codes = {_L.Stem: OP_STEM, _L.Nonlinear: OP_NONLINEAR, _L.Block: OP_BLOCK, _L.Linear: OP_LINEAR,
             _L.Pool: 4}
    ops, params, aparams, coef, th_all, tw_all = [], [], [], [], [], []
    n_duals = 0
    for m in maps:
        if type(m) not in codes:
            raise NotImplementedError(f"the compiled conv loop has no rule for {type(m).__name__}")
        act = getattr(m, "activation", None)
        eid = -1 if act is None else act.engine_id
        if act is not None and eid not in GENERAL_IDS:
            if series is None or not series(act):
                raise NotImplementedError(f"the numba engine has no compiled dual for {act!r}; use backend='numpy'")
            eid = SERIES
        n_duals += act is not None
        q = m.stem_size if isinstance(m, _L.Stem) else getattr(m, "filter_size", 1)
        th, tw = taps_of(q)
        cf = () if act is None else act.engine_coefs
        ops.append((codes[type(m)], eid, int(getattr(m, "trained", True)),
                    len(th_all), len(th), len(tw_all), len(tw), len(coef), len(cf)))
        th_all += list(th)
        tw_all += list(tw)
        coef += list(cf)
        ep = () if act is None else act.engine_params
        aparams.append(tuple(ep) + (0.0,) * (APARAMS - len(ep)))
        c = m.input_var if isinstance(m, _L.Stem) else getattr(m, "weight_var", 1.0)
        # alpha^2 as theory.general reads it (number(alpha) ** 2)
        a2 = float(m.alpha) ** 2 if isinstance(m, _L.Block) else 0.0
        params.append((c, getattr(m, "bias_var", 0.0), a2))
    return Program(np.array(ops, dtype=np.int64).reshape(-1, 9), np.array(params, dtype=np.float64).reshape(-1, 3),
                   np.array(aparams, dtype=np.float64).reshape(-1, APARAMS), np.array(coef, dtype=np.float64),
                   np.array(th_all, dtype=np.int64), np.array(tw_all, dtype=np.int64), n_duals)


def diagonal_variances(program, xs, acos=None) -> np.ndarray:
    """(n_duals, n, H, W): the recorded variances of :func:`diagonal` for the inputs ``xs`` (n, H, W, C)
    of a program without SERIES duals."""
    VX = np.empty((program.n_duals,) + xs.shape[:3])
    diagonal(np.ascontiguousarray(xs), program.ops, program.params, program.aparams, program.coef,
             program.taps_h, program.taps_w, VX, _poly(acos), np.zeros((program.n_duals, 0, 0, 0), dtype=np.int64),
             np.zeros((2, 1)), -1)
    return VX


def no_series(n_duals):
    """The series arguments of :func:`block` (RX, RZ, soff, skc, sm2, sdiag, sa, stail, srix, srtab,
    srok, srdeg, flag) for a program without SERIES duals: empty tables as
    :class:`numerics.fc_series.Tables` starts them (row 0, a placeholder) and no tables in rho,
    nothing is read from them."""
    from .rho_tables import empty
    rows = np.zeros((n_duals, 0, 0, 0), dtype=np.int64)
    return ((rows, rows, np.zeros((2, 1), dtype=np.int64), np.full((2, 1), -1, dtype=np.int64),
             np.full((2, 1), np.nan), np.full((2, 1), np.nan), np.zeros(0), np.zeros(0)) + empty()
            + (np.zeros((0, 0), dtype=np.uint8),))


def _poly(acos):
    from . import conv_fused
    if numba is None:
        raise ImportError("backend='numba' needs numba (pip install \"reskernels[fast]\" or pip install numba)")
    mode = conv_fused.ACOS if acos is None else acos
    if mode not in ("poly", "libm"):
        raise ValueError(f"acos must be 'poly' or 'libm', got {mode!r}")
    return mode == "poly"


def fused_block(acos: str | None = None):
    """:func:`block` with theta by ``acos`` ("poly" or "libm"; default :data:`numerics.conv_fused.ACOS`)
    bound as its last argument."""
    poly = _poly(acos)

    def run(*args, series=None):
        """``series``: (RX, RZ, soff, skc, sm2, sdiag, sa, stail, srix, srtab, srok, srdeg, flag) of a
        program with SERIES duals."""
        if series is None:
            series = no_series(args[4].shape[0])
        return block(*args, poly, *series)
    return run

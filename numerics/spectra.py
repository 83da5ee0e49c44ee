"""Funk-Hecke eigenvalues of zonal kernels on S^(d-1) at any number of correct digits.

mu_k = c_d int_0^pi f(cos theta) P_k(cos theta) sin^(d-2)(theta) d theta     (docs/spectral.md §1)

with respect to the uniform probability measure (so sum_k N(d,k) mu_k = f(1)).

Method (docs/spectral.md §7.1-7.2):

* Gauss-Legendre in theta on [0, pi]: every contract FC kernel is analytic in theta
  (the (1 - t)^(1/2) endpoint singularity becomes theta/sqrt 2), so the rule converges
  geometrically; n = 1.5 k_max + 2 dps + 100 nodes, and at least 1.5 k_max + sqrt(3 d work) + 32
  (for large d the weight sin^(d-2) is a Gaussian of width ~1/sqrt(d) about pi/2).
* All k in one pass: the normalised Gegenbauer polynomials P_0..P_kmax are run by the
  three-term recurrence at every node, in fixed-point integer arithmetic (``wp`` bits)
  vectorised over nodes -- no per-k restart, no monomial expansion.
* Working precision ``work``: dps + 8 + ceil(min((d + 2) log10(k_max + 2),
  log10 N(d, k_max) + 4 log10(k_max + 2) + 4)) digits, since mu_k ~ k^-s comes out of an integrand
  of size f(1) (s = d for NTKs, d + 2 for NNGPs) and a PSD kernel has mu_k <= f(1)/N(d, k); the
  second term is the smaller only from d ~ 10 on (d = 1000, k_max = 4: 18 digits, not 780).
* Verification: a second pass with more nodes (n + n/4 + 32) and 10 more digits.  A value
  is returned only when both passes agree to dps + 1 digits; otherwise the precision and
  node count are raised (up to ``max_retries`` times) and then :class:`PrecisionError`
  is raised -- never wrong digits.
* What is certified: the two passes agree for kernels analytic in theta on [0, pi] (every FC spec,
  the Laplace kernel, (1 - t)^(1/2)); a callable with a feature narrower than the node spacing
  (a step, spike or kink within ~pi^2/n^2 of theta = 0 or pi) can fool both alike.  For a callable
  an independent tanh-sinh value of mu_0 (:func:`_independent_check`) must also agree to the
  accuracy every requested mu_k needs, else :class:`PrecisionError`: it catches such features when
  they move mu_0 by more than that (a feature near t = +-1 moves every mu_k by about as much).
* Exact zeros: a value whose magnitude is below the absolute floor
  max|f| 10^-work in both passes is returned as exactly 0
  (max|f| over 17 equispaced angles; it is f(1) for every PSD kernel)
  (e.g. the odd k >= 3 of MLP(depth=1)).  Kernels whose true eigenvalues fall below this
  floor (analytic kernels decay faster than any power) also get 0 there.
"""
from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from functools import lru_cache
from typing import Iterable

import mpmath
import numpy as np

from reskernels.theory.arch import check_kind

from .pointwise import MpfDigits, kernel_theta_mp
from .tiles import compile_notice


class PrecisionError(ArithmeticError):
    """The requested digits could not be certified."""


@dataclass
class SpectrumInfo:
    """How a spectrum was computed (recorded with every result)."""

    d: int
    ks: list
    dps: int
    nodes: tuple
    work_dps: tuple
    floor: mpmath.mpf
    retries: int
    zeros: list


def _fixed(x, wp):
    """mpf -> integer round(x 2^wp)."""
    return int(mpmath.nint(mpmath.ldexp(x, wp)))


def _legendre_fixed(X, n, wp):
    """(P_n(x), P_{n-1}(x)) for an object array of fixed-point x (O(n) vectorised steps)."""
    one = 1 << wp
    p0 = np.array([one] * len(X), dtype=object)
    p1 = X.copy()
    for j in range(1, n):
        p0, p1 = p1, ((2 * j + 1) * ((X * p1) >> wp) - j * p0) // (j + 1)
    return p1, p0


@lru_cache(maxsize=16)
def gauss_legendre_fixed(n: int, wp: int):
    """Gauss-Legendre nodes x_i and weights w_i on [-1, 1] with ``wp``-bit accuracy.

    float64 starting values (numpy) refined by Newton's method on P_n in fixed-point
    integer arithmetic (the O(n^2) recurrence vectorised over nodes).  Newton converges
    quadratically, so once the largest update is below 2^(-wp/2 - 8) the next update
    leaves an error below 2^(-wp - 16); the weights 2 / ((1 - x^2) P_n'(x)^2) use P_n'
    from one more recurrence pass at the final nodes.  Returns (x, w) as tuples of mpf.
    """
    x0, _ = np.polynomial.legendre.leggauss(n)
    half = x0[n // 2:]  # the non-negative half (with the middle node 0 when n is odd)
    one = 1 << wp
    X = np.array([int(round(float(v) * 2.0 ** 53)) << (wp - 53) for v in half], dtype=object)
    fine = 1 << max(0, wp // 2 - 8)

    def newton_parts(X):
        p1, p0 = _legendre_fixed(X, n, wp)
        x2m1 = ((X * X) >> wp) - one                       # x^2 - 1 < 0 for interior nodes
        dp = (n * (((X * p1) >> wp) - p0) << wp) // x2m1    # P_n' = n (x P_n - P_{n-1}) / (x^2 - 1)
        return p1, dp

    for it in range(12):
        p1, dp = newton_parts(X)
        step = (p1 << wp) // dp
        X = X - step
        if max(abs(int(v)) for v in step) < fine:
            break
    else:  # pragma: no cover - Newton converges from float64 starts
        raise PrecisionError("Gauss-Legendre Newton iteration did not converge")
    _, dp = newton_parts(X)
    with mpmath.workprec(wp):
        xs = [mpmath.ldexp(mpmath.mpf(int(v)), -wp) for v in X]
        ws = [2 / ((1 - xv * xv) * mpmath.ldexp(mpmath.mpf(int(q)), -wp) ** 2) for xv, q in zip(xs, dp)]
    skip = 1 if n % 2 == 1 else 0  # the middle node appears once
    full_x = [-v for v in reversed(xs[skip:])] + xs
    full_w = list(reversed(ws[skip:])) + ws
    return tuple(full_x), tuple(full_w)


def _is_spec(f) -> bool:
    return callable(getattr(f, "kernel_maps", None))


def _kernel_theta(f, kind, normalized, variable="t"):
    if _is_spec(f):
        if f.is_conv:
            raise TypeError(f"eigenvalues on the sphere need a fully connected (zonal) spec, got {f.slug}; "
                            "conv kernels: reskernels.numerics.multisphere")
        check_kind(kind)
        return _checked(lambda th: kernel_theta_mp(f, th, kind, normalized=normalized), f, "theta")
    if callable(f):
        if variable == "theta":
            return _checked(f, f, "theta")
        if variable != "t":
            raise ValueError(f"variable must be 't' or 'theta', got {variable!r}")
        return _checked(lambda th: f(mpmath.cos(th)), f, "t")
    raise TypeError(f"eigenvalues needs an FC architecture spec or a callable t -> K(t), got {f!r}")


def _kernel_name(f) -> str:
    if _is_spec(f):
        return repr(f)
    qual = getattr(f, "__qualname__", None)
    if qual and "<lambda>" not in qual:
        return f"{getattr(f, '__module__', None) or '?'}.{qual}"
    return repr(f)


def _checked(kth, f, variable):
    """``kth`` (theta -> K) refusing non-finite or non-real values with an error naming the kernel and
    the point (the value itself is passed on unchanged)."""
    def where(th):
        return (f"t = cos(theta) = {mpmath.nstr(mpmath.cos(th), 17)}"
                + (f" (theta = {mpmath.nstr(th, 17)})" if variable == "theta" else ""))

    def at(th):
        v = kth(th)
        try:
            bad = mpmath.isnan(v) or mpmath.isinf(v)
            imag = mpmath.im(v)
        except (TypeError, ValueError):
            raise TypeError(f"kernel {_kernel_name(f)} returned {v!r} at {where(th)}, not a number") from None
        if bad:
            raise ValueError(f"kernel {_kernel_name(f)} returned {v} at {where(th)}; eigenvalues needs finite "
                             "values on [-1, 1]")
        if imag != 0:
            raise ValueError(f"kernel {_kernel_name(f)} returned the complex value {v} at {where(th)}; "
                             "eigenvalues needs real values on [-1, 1]")
        return v
    return at


#: (nodes, bits) of the rules built in this process; from _NOTICE_NODES nodes on a first build takes
#: seconds (numpy's O(n^3) starting nodes, then Newton in fixed point) and is announced once
_RULES_BUILT: set = set()
_NOTICE_NODES = 200


def _one_pass(kth, d: int, kmax: int, n: int, dps_work: int):
    """mu_0..mu_kmax by n-node theta-Gauss-Legendre at dps_work digits (mpf list)."""
    wp = int(dps_work * 3.33) + 16
    if (n, wp) not in _RULES_BUILT and n >= _NOTICE_NODES:
        compile_notice("eigenvalues-nodes", f"reskernels: building the {n}-node Gauss-Legendre rule at {wp} bits "
                       "for eigenvalues (first use of this size in this process: seconds to a minute, then "
                       "cached)", stacklevel=4)
    _RULES_BUILT.add((n, wp))
    with mpmath.workprec(wp):
        x, w = gauss_legendre_fixed(n, wp)
        pi = mpmath.pi
        cd = mpmath.gamma(mpmath.mpf(d) / 2) / (mpmath.sqrt(pi) * mpmath.gamma(mpmath.mpf(d - 1) / 2))
        T, W = [], []
        for xi, wi in zip(x, w):
            th = pi * (xi + 1) / 2
            s = mpmath.sin(th)
            weight = cd * (pi / 2) * wi * kth(th) * (s ** (d - 2) if d > 2 else 1)
            T.append(_fixed(mpmath.cos(th), wp))
            W.append(_fixed(weight, wp))
        one = 1 << wp
        Tv = np.array(T, dtype=object)
        Wv = np.array(W, dtype=object)
        acc = [sum(W)]
        p0 = np.array([one] * n, dtype=object)
        p1 = Tv.copy()
        if kmax >= 1:
            acc.append(int(((Wv * p1) >> wp).sum()))
        for k in range(1, kmax):
            p0, p1 = p1, ((2 * k + d - 2) * ((Tv * p1) >> wp) - k * p0) // (k + d - 2)
            acc.append(int(((Wv * p1) >> wp).sum()))
        return [mpmath.ldexp(mpmath.mpf(a), -wp) for a in acc]


def _integer(name: str, value, minimum: int) -> int:
    """An integer argument >= minimum (integral floats such as 3.0 are accepted; bools, strings,
    non-integral and non-finite numbers are not)."""
    ok = not isinstance(value, bool) and isinstance(value, numbers.Real)
    if ok and not isinstance(value, numbers.Integral):
        fv = float(value)
        ok = math.isfinite(fv) and fv.is_integer()
    if not ok or int(value) < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _degrees(ks) -> list:
    """ks as a non-empty list of integers >= 0 (a single number or a string is refused, not
    iterated or truncated)."""
    if isinstance(ks, numbers.Number) or (isinstance(ks, np.ndarray) and ks.ndim == 0):
        raise ValueError(f"ks must be a collection of degrees, got the number {ks!r}: use ks=[{ks!r}] for "
                         f"that degree alone or ks=range(...) for all degrees up to it")
    if isinstance(ks, (str, bytes)) or not isinstance(ks, Iterable):
        raise ValueError(f"ks must be a collection of integers >= 0 (a list, range or 1-d array), got {ks!r}")
    out = []
    for i, k in enumerate(ks):
        try:
            out.append(_integer("ks", k, 0))
        except ValueError:
            raise ValueError(f"ks must contain integers >= 0, got {k!r} at position {i}") from None
    if not out:
        raise ValueError(f"ks must be a non-empty collection of integers >= 0, got {ks!r}")
    return out


#: GiB-scale node counts: the float64 starting nodes come from numpy's leggauss, whose
#: eigenvalue problem holds two n x n float64 matrices (measured peak 16 n^2 bytes)
_LEGGAUSS_BYTES_PER_N2 = 16


def _op_seconds(wp: int) -> float:
    """Seconds per vectorised fixed-point operation on one node at ``wp`` bits (object arrays of
    Python integers; measured on one x86-64 core, Karatsuba growth above ~1000 bits)."""
    return 1e-6 * (0.4 + 1.7 * (wp / 1000) ** 1.6)


def _log10_multiplicity(d: int, k: int) -> float:
    """log10 N(d, k), the dimension of the degree-k spherical harmonics on S^(d-1)."""
    if k == 0:
        return 0.0
    if d == 2:
        return math.log10(2)
    return (math.log10(2 * k + d - 2) + (math.lgamma(k + d - 2) - math.lgamma(k + 1) - math.lgamma(d - 1))
            / math.log(10))


def _plan(kmax: int, dps: int, d: int):
    """(working digits, first-pass nodes) of :func:`eigenvalues` (module doc).

    Digits: dps + 8 + the expected cancellation log10(f(1)/mu_kmax), estimated as the smaller of
    (d + 2) log10(kmax + 2) (mu_k ~ k^-s, s <= d + 2) and log10 N(d, kmax) + 4 log10(kmax + 2) + 4
    (a PSD kernel has mu_k <= f(1)/N(d, k); the second is the smaller only from d ~ 10 on, e.g.
    d = 1000, k <= 4: 18 digits instead of 780).  Nodes: 1.5 kmax + 2 dps + 100, and at least
    1.5 kmax + sqrt(3 d work) + 32 -- the weight sin^(d-2) theta is a Gaussian of width ~1/sqrt(d)
    about pi/2, which n nodes resolve to ~10^(-0.34 n^2/d) (measured at d = 100, 1000)."""
    decay = min((d + 2) * math.log10(kmax + 2), _log10_multiplicity(d, kmax) + 4 * math.log10(kmax + 2) + 4)
    work = dps + math.ceil(decay) + 8
    n = max(int(1.5 * kmax) + 2 * dps + 100, int(1.5 * kmax) + math.ceil(math.sqrt(3 * d * work)) + 32)
    return work, n


def cost_estimate(ks, dps: int = 30, d: int = 3) -> dict:
    """Rough cost of :func:`eigenvalues` for these degrees and digits, without running it.

    Returns a dict with ``nodes`` (pass 1, pass 2), ``work_dps``, ``bytes`` (peak memory of the
    first attempt: numpy's float64 Gauss-Legendre start, 16 n^2 bytes, plus the fixed-point
    arrays) and ``seconds`` (the quadrature arithmetic of the first attempt -- node refinement
    ~1.5 n^2 and the Gegenbauer recurrence n k_max operations per pass -- without the kernel
    evaluations; good to a factor of a few).  A retry multiplies the node count by 1.5."""
    ks = _degrees(ks)
    dps, d = _integer("dps", dps, 1), _integer("d", d, 2)
    kmax = max(ks)
    work, n = _plan(kmax, dps, d)
    n2, work2 = n + n // 4 + 32, work + 10
    seconds, peak = 0.0, 0
    for nodes, w in ((n, work), (n2, work2)):
        wp = int(w * 3.33) + 16
        seconds += _op_seconds(wp) * (1.5 * nodes * nodes + nodes * kmax)
        big_int = wp // 8 + 64                    # one Python int (or mpf) of wp bits, with headers
        peak = max(peak, _LEGGAUSS_BYTES_PER_N2 * nodes * nodes, 12 * nodes * big_int + kmax * big_int)
    return {"nodes": (n, n2), "work_dps": (work, work2), "bytes": peak, "seconds": seconds}


def _check_cost(ks, dps, d, max_seconds, max_memory):
    if max_seconds is None and max_memory is None:
        return
    est = cost_estimate(ks, dps, d)
    what = (f"eigenvalues for k up to {max(ks)} at dps={dps} on S^{d - 1} needs {est['nodes'][1]} "
            f"Gauss-Legendre nodes at {est['work_dps'][1]} working digits")
    if max_memory is not None and est["bytes"] > max_memory:
        raise ValueError(f"{what}: about {est['bytes'] / 2**30:.3g} GiB of memory, over max_memory="
                         f"{max_memory / 2**30:.3g} GiB; lower max(ks) or dps, or pass max_memory=None "
                         "(or a larger value) to run it anyway")
    if max_seconds is not None and est["seconds"] > max_seconds:
        raise ValueError(f"{what}: roughly {_duration(est['seconds'])} of computation, over max_seconds="
                         f"{max_seconds:g}; lower max(ks) or dps, or pass max_seconds=None (or a larger "
                         "value) to run it anyway")


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} minutes"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.1f} hours"
    return f"{seconds / 86400:.0f} days"


def eigenvalues(f, kind: str = "ntk", d: int = 3, ks: Iterable[int] = range(0, 201), dps: int = 30,
                *, normalized: bool = False, variable: str = "t", max_retries: int = 3,
                return_info: bool = False, max_seconds: float | None = 3600,
                max_memory: float | None = 8 * 2**30):
    """Funk-Hecke eigenvalues mu_k (uniform probability measure on S^(d-1)), certified to
    ``dps`` significant digits.

    Parameters
    ----------
    f : MLP or ResNet spec, or a callable t -> K(t) accepting mpf (any zonal kernel); a callable
        must return finite real values on [-1, 1] (else ValueError naming it and the point)
    kind : "ntk" or "nngp" (checked always; it only matters for a spec)
    d : ambient dimension, an integer >= 2 (d = 3 is the ordinary sphere S^2)
    ks : a collection (list, range, 1-d array) of integer degrees k >= 0, all computed in one pass;
        a single number is refused (ValueError: write ks=[5] for mu_5 alone), so is a string
    dps : significant digits guaranteed in every returned value, an integer >= 5 (exact zeros: see
        module doc), for kernels analytic in theta on [0, pi] (every FC spec); a callable is also
        checked by an independent tanh-sinh rule for mu_0 (module doc, "What is certified")
    normalized : use the kernel divided by its diagonal scale (FC specs)
    variable : for a callable, whether it takes t = cos(theta) ("t") or the angle ("theta");
        the angle form avoids the cancellation of 1 - t near t = 1 (e.g. the Laplace kernel)
    max_retries : an integer >= 0: how often the precision and nodes may be raised
    return_info : also return a :class:`SpectrumInfo` describing nodes, precisions and zeros
    max_seconds, max_memory : refuse up front (ValueError with the estimate) a job whose first
        attempt is estimated (:func:`cost_estimate`) to take longer than ``max_seconds`` or more than
        ``max_memory`` bytes -- k in the tens of thousands, dps in the thousands; None: no limit

    Returns
    -------
    list of mpmath.mpf, one per k in ``ks``: :class:`~reskernels.numerics.pointwise.MpfDigits`
    values, which print ``dps`` significant digits whatever the global ``mpmath.mp.dps``.

    Examples
    --------
    >>> from reskernels.theory import MLP
    >>> mu = eigenvalues(MLP(depth=1), "ntk", d=3, ks=[0, 1, 2, 3], dps=20)
    >>> [mpmath.nstr(m, 12) for m in mu]     # 1/2, 1/3, 5/64, exact 0
    ['0.5', '0.333333333333', '0.078125', '0.0']
    """
    ks = _degrees(ks)
    d = _integer("d (ambient dimension)", d, 2)
    dps = _integer("dps", dps, 5)
    max_retries = _integer("max_retries", max_retries, 0)
    check_kind(kind)
    if variable not in ("t", "theta"):
        raise ValueError(f"variable must be 't' or 'theta', got {variable!r}")
    for name, lim in (("max_seconds", max_seconds), ("max_memory", max_memory)):
        if lim is not None and (isinstance(lim, bool) or not isinstance(lim, numbers.Real) or not lim > 0):
            raise ValueError(f"{name} must be a positive number or None, got {lim!r}")
    _check_cost(ks, dps, d, max_seconds, max_memory)
    kmax = max(ks)
    kth = _kernel_theta(f, kind, normalized, variable)
    work, n = _plan(kmax, dps, d)
    with mpmath.workdps(work + 5):
        # the scale of the integrand: max |K| on a theta grid (= K(1) for PSD kernels, but
        # also right for kernels that vanish at t = 1 such as (1 - t)^nu)
        fmax = max(abs(kth(mpmath.pi * j / 16)) for j in range(17))
        floor = fmax * mpmath.mpf(10) ** (-work)
    for attempt in range(max_retries + 1):
        n2, work2 = n + n // 4 + 32, work + 10
        a = _one_pass(kth, d, kmax, n, work)
        b = _one_pass(kth, d, kmax, n2, work2)
        out, zeros, short = [], [], 0
        with mpmath.workdps(work2):
            for k in ks:
                x, y = a[k], b[k]
                if abs(x) <= floor and abs(y) <= floor:
                    out.append(mpmath.mpf(0))
                    zeros.append(k)
                    continue
                rel = abs(x - y) / abs(y) if y != 0 else mpmath.inf
                if rel > mpmath.mpf(10) ** (-(dps + 1)):
                    lost = (dps + 1) + (mpmath.log10(rel) if rel != mpmath.inf else work)
                    short = max(short, int(mpmath.ceil(lost)))
                out.append(y)
        if short == 0 and not _is_spec(f):
            _independent_check(kth, d, b[0], [v for k, v in zip(ks, out) if k not in zeros], floor, dps, work2)
        if short == 0:
            with mpmath.workdps(dps + 5):
                res = [MpfDigits.of(+v, dps) for v in out]
            if return_info:
                return res, SpectrumInfo(d, ks, dps, (n, n2), (work, work2), floor, attempt, zeros)
            return res
        work += short + 5
        n = int(n * 1.5)
    raise PrecisionError(f"could not certify {dps} digits for k up to {kmax} on S^{d - 1} "
                         f"after {max_retries} retries (last shortfall {short} digits)")


def _independent_check(kth, d, mu0, nonzero, floor, dps, work):
    """For a user callable: mu_0 by tanh-sinh in theta (mpmath.quad, nodes clustered doubly
    exponentially at theta = 0 and pi, none shared with the Gauss-Legendre rules) must agree with the
    Gauss-Legendre mu_0 to 10^-(dps+1) min |mu_k| (the accuracy every requested mu_k needs), else
    PrecisionError.  It catches a feature that both Gauss-Legendre rules step over -- a step, spike or
    kink narrower than their node spacing (~pi^2/n^2 at the ends) -- whenever it moves mu_0 by that
    much; such a feature near t = 1 moves every mu_k by about as much as mu_0 (P_k(1) = 1)."""
    with mpmath.workdps(work + 10):
        cd = mpmath.gamma(mpmath.mpf(d) / 2) / (mpmath.sqrt(mpmath.pi) * mpmath.gamma(mpmath.mpf(d - 1) / 2))

        def integrand(th):
            return kth(th) * (mpmath.sin(th) ** (d - 2) if d > 2 else 1)
        ts = cd * mpmath.quad(integrand, [0, mpmath.pi / 2, mpmath.pi], method="tanh-sinh")
        need = min([abs(v) for v in nonzero] or [floor]) * mpmath.mpf(10) ** (-(dps + 1))
        tol = max(need, floor)
        if abs(ts - mu0) > tol:
            raise PrecisionError(
                f"the kernel's mu_0 by Gauss-Legendre ({mpmath.nstr(mu0, dps)}) and by an independent "
                f"tanh-sinh rule ({mpmath.nstr(ts, dps)}) differ by {mpmath.nstr(abs(ts - mu0), 3)}, more than "
                f"the {mpmath.nstr(tol, 3)} that {dps} digits of every requested mu_k need: the kernel has a "
                "feature (step, spike, kink) narrower than the quadrature nodes; eigenvalues certifies kernels "
                "analytic in theta on [0, pi] (docs/spectral.md, certification)")


def eigenvalues_float64(f, kind: str = "ntk", d: int = 3, ks=range(0, 201), n: int = 400):
    """The float64 theta-Gauss-Legendre route (what most public code does), for comparison.

    Loses digits like 1e-16 / mu_k (docs/spectral.md §7.2): use :func:`eigenvalues` for digits.
    """
    from scipy.special import gamma
    from .pointwise import zonal
    g = zonal(f, kind) if _is_spec(f) else f
    x, w = np.polynomial.legendre.leggauss(n)
    th = np.pi * (x + 1) / 2
    cd = gamma(d / 2) / (np.sqrt(np.pi) * gamma((d - 1) / 2))
    W = cd * (np.pi / 2) * w * g(np.cos(th)) * np.sin(th) ** (d - 2)
    ks = list(ks)
    kmax = max(ks)
    t = np.cos(th)
    P = [np.ones_like(t), t]
    for k in range(1, kmax):
        P.append(((2 * k + d - 2) * t * P[k] - k * P[k - 1]) / (k + d - 2))
    return np.array([float(np.dot(W, P[k])) for k in ks])


def laplace_theta(c=1):
    """The Laplace kernel exp(-c |x - z|) on the sphere as a function of the angle:
    |x - z| = 2 sin(theta/2) (docs/spectral.md §5.3); mu_k ~ c 2^(d-2) Gamma(d/2)^2/pi k^-d."""
    def f(theta):
        return mpmath.exp(-2 * mpmath.mpf(c) * mpmath.sin(theta / 2))
    return f

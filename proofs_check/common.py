"""Helpers shared by the claim checks: bootstrap, table measurements, cached spectra, rays.

The normalised kernels and their deep limits live in :mod:`reskernels.numerics.limits`, the input
samplers in :mod:`reskernels.numerics.samplers`, the tolerances in
:mod:`reskernels.numerics.tolerances`.
"""
from __future__ import annotations

import numpy as np

_CURRENT = None  # the verdict of the check now running (set by Claim.run)


def progress(step, total=None, what: str = "") -> None:
    """Report progress from inside a long check: ``progress(3, 10, "L = 8")``.  Forwards to the running
    claim's :meth:`Verdict.progress <reskernels.proofs_check.verdict.Verdict.progress>`, which the
    runner shows on the live line; a no-op outside a check."""
    v = _CURRENT
    if v is not None:
        v.progress(step, total, what)


def counted(fn, total: int, what: str):
    """``fn`` wrapped to report progress before each call: step i of ``total``, ``what``.  For a
    check whose slow calls sit in a comprehension: ``run = counted(run, 12, "GD run")``."""
    import functools
    calls = [0]

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        calls[0] += 1
        progress(calls[0], total, what)
        return fn(*args, **kwargs)
    return wrapper


def bootstrap(samples, stat, n_boot: int = 1000, seed: int = 0):
    """Bootstrap replicates of ``stat`` over the first axis of ``samples``."""
    rng = np.random.default_rng(seed)
    samples = np.asarray(samples)
    idx = rng.integers(0, len(samples), size=(n_boot, len(samples)))
    return np.array([stat(samples[i]) for i in idx])


def table_check(v, name, got, want, atol, reason, kind="table"):
    """Add one measurement comparing arrays entrywise within ``atol``."""
    got = np.asarray(got, dtype=float)
    want = np.asarray(want, dtype=float)
    err = np.abs(got - want)
    return v.add(name, np.round(got, 10).tolist(), want.tolist(), bool(np.all(err <= atol)),
                 f"max |got - want| = {err.max():.2e} <= {atol:g}", reason, kind)


_SPECTRA = {}


def spectrum(f, kind: str, d: int, kmax: int, dps: int, normalized: bool = False, key=None):
    """mu_0..mu_kmax (mpf list), cached per process: checks and their tests share spectra.

    ``f`` is an FC spec (hashable) or a callable of theta with an explicit ``key``.
    """
    from reskernels.numerics.spectra import eigenvalues
    k = (key or f, kind, d, kmax, dps, normalized)
    if k not in _SPECTRA:
        if key is None:
            _SPECTRA[k] = eigenvalues(f, kind, d=d, ks=range(kmax + 1), dps=dps, normalized=normalized)
        else:
            _SPECTRA[k] = eigenvalues(f, d=d, ks=range(kmax + 1), dps=dps, variable="theta")
    return _SPECTRA[k]


def laplace_spectrum(c, d, kmax, dps):
    from reskernels.numerics.spectra import laplace_theta
    return spectrum(laplace_theta(c), "ntk", d, kmax, dps, key=("laplace", str(c)))


def local_slope(mus, k1, k2):
    """log(mu_k2/mu_k1)/log(k2/k1)."""
    import mpmath
    return float(mpmath.log(mus[k2] / mus[k1]) / mpmath.log(mpmath.mpf(k2) / k1))


_TORI = {}


def torus(arch, kind: str, n: int):
    """Converged torus spectrum (rules n and 2n per axis) of a conv spec, cached per process."""
    from reskernels.numerics.multisphere import torus_spectrum_converged
    key = (arch, kind, n)
    if key not in _TORI:
        _TORI[key] = torus_spectrum_converged(arch, kind, n)
    return _TORI[key]


#: rays through the frequency lattice of a 5-pixel receptive window (axis i = pixel i mod 5)
RAYS5 = {
    "e0 (centre pixel, even k)": (lambda k: (k, 0, 0, 0, 0), 2),
    "e2 (edge pixel, even k)": (lambda k: (0, 0, k, 0, 0), 2),
    "e0+e1 (adjacent pair)": (lambda k: (k, k, 0, 0, 0), 1),
    "e-1+e1 (pair at distance 2)": (lambda k: (0, k, 0, 0, k), 1),
    "e0+e2 (pair at distance 2)": (lambda k: (k, 0, k, 0, 0), 1),
}


def ray_points(S, ray, rel_err: float, floor: float):
    """(k, lambda) along a ray where the doubling error is <= rel_err lambda and lambda > floor
    (k >= 2; single-pixel rays use even k: odd ones can vanish by parity)."""
    vec, step = ray
    kmax = min(S.values.shape)
    ks = np.arange(2, kmax, step)
    lam, err = S.ray([vec(k) for k in ks])
    ok = (lam > floor) & (err <= rel_err * lam)
    return ks[ok], lam[ok]


def loglog_slope(ks, lam):
    """Least-squares slope of log lambda against log k."""
    return float(np.polyfit(np.log(ks), np.log(lam), 1)[0])



#: the verdict's summary when a full window's rounding proxy exceeds its bound (GEIFMAN-DECAY, BARZILAI-DECAY)
WINDOW_ROUNDING_SUMMARY = ("the full window's sums round above full_window_rounding's bound, so its points below "
                           "10 eps lambda_0 are not trusted")


def window_rounding_gate(v, cases, wr: dict, floor: float, P: int) -> bool:
    """Record, for each (label, arch, kind) in ``cases``, the proxy for the rounding of the full window's
    streamed sums on P pixels (:func:`numerics.ray_spectra.window_rounding`: the compiled loop's two arccos
    on the same wr["N"]^P nodes, k = 1..wr["kmax"], in eps lambda_0) against wr["at_most"]; return whether
    every case stays at or below it (the rays' points go down to ``floor`` eps lambda_0 only then).  Raises
    ImportError without numba (the streamed sums need it)."""
    from reskernels.numerics.ray_spectra import window_rounding
    ok = True
    for label, arch, kind in cases:
        worst = float(np.max(window_rounding(arch, kind, wr["N"], wr["kmax"], P=P)[1:]))
        ok = ok and worst <= wr["at_most"]
        v.add(f"{label}: rounding of the streamed sums, max over k = 1..{wr['kmax']} of |poly - libm| arccos on the "
              f"same {wr['N']}^{P} nodes, in eps lambda_0", worst, wr["at_most"], bool(worst <= wr["at_most"]),
              f"<= at_most, {floor / wr['at_most']:g}x below the rays' floor of {floor:g} eps lambda_0",
              f"the kernel values' rounding, a random walk of N^{P} terms (smaller at the rays' larger N)",
              "float64")
    return ok

"""Eigenvalue decay laws: predicted from endpoint expansions, measured by fits.

Bietti & Bach 2021 [recalled], constants [derived] (docs/spectral.md §5): if
kappa(1 - u) = poly + c_plus u^nu + ..., kappa(-1 + u) = poly + c_minus u^nu + ..., then

    mu_k ~ (c_plus + (-1)^k c_minus) C(d, nu) k^(-d - 2 nu + 1),
    C(d, nu) = 2^(nu+d-2) Gamma(d/2) Gamma(nu + (d-1)/2) / (sqrt(pi) Gamma(-nu)),

and the sharper form replaces C(d,nu) k^(...) by the exact M_k(nu) = mu_k((1 - t)^nu),
with relative error O(1/k^2) instead of O(1/k).
"""
from __future__ import annotations

from dataclasses import dataclass

import mpmath
import numpy as np
import sympy as sp

from reskernels.theory import endpoint_coefficients


def distance_power_mu(k: int, nu, d: int):
    """M_k(nu) = mu_k((1 - t)^nu) exactly (docs/spectral.md §3), at the current mpmath precision:
    2^(nu+d-2) Gamma(d/2) Gamma(nu+(d-1)/2) Gamma(k-nu) / (sqrt(pi) Gamma(-nu) Gamma(k+nu+d-1))."""
    nu = mpmath.mpf(nu)
    return (mpmath.mpf(2) ** (nu + d - 2) * mpmath.gamma(mpmath.mpf(d) / 2)
            * mpmath.gamma(nu + mpmath.mpf(d - 1) / 2) * mpmath.gamma(k - nu)
            * mpmath.rgamma(-nu) * mpmath.rgamma(k + nu + d - 1) / mpmath.sqrt(mpmath.pi))


def decay_constant(d: int, nu):
    """C(d, nu) of the pure power law."""
    nu = mpmath.mpf(nu)
    return (mpmath.mpf(2) ** (nu + d - 2) * mpmath.gamma(mpmath.mpf(d) / 2)
            * mpmath.gamma(nu + mpmath.mpf(d - 1) / 2) * mpmath.rgamma(-nu) / mpmath.sqrt(mpmath.pi))


@dataclass
class DecayLaw:
    """mu_k ~ (c_plus + (-1)^k c_minus) M_k(nu) ~ (c_plus +- c_minus) C(d,nu) k^exponent."""

    nu: object
    c_plus: object
    c_minus: object
    d: int

    @property
    def exponent(self) -> float:
        return -self.d - 2 * float(self.nu) + 1

    def constant(self, parity: int):
        """(c_plus + (-1)^parity c_minus) C(d, nu): the k^exponent prefactor."""
        s = 1 if parity % 2 == 0 else -1
        return (mpmath.mpf(self.c_plus) + s * mpmath.mpf(self.c_minus)) * decay_constant(self.d, self.nu)

    def mu(self, k: int):
        """The O(1/k^2)-accurate prediction (c_plus + (-1)^k c_minus) M_k(nu)."""
        s = 1 if k % 2 == 0 else -1
        return (mpmath.mpf(self.c_plus) + s * mpmath.mpf(self.c_minus)) * distance_power_mu(k, self.nu, self.d)


def predicted_law(arch, kind: str, d: int, dps: int = 30) -> DecayLaw:
    """The decay law of an FC kernel from its exact endpoint coefficients."""
    c = endpoint_coefficients(arch, kind)
    nu = c["nu"]
    with mpmath.workdps(dps):
        cp = mpmath.mpf(str(sp.N(c["c_plus"][nu], dps + 5)))
        cm = mpmath.mpf(str(sp.N(c["c_minus"][nu], dps + 5)))
    return DecayLaw(mpmath.mpf(str(nu)), cp, cm, d)


@dataclass
class DecayFit:
    exponent: float
    exponent_se: float
    constant: float
    constant_rel_se: float
    local_slopes: list
    ks: list


def fit_decay(ks, mus) -> DecayFit:
    """Least-squares fit log mu_k = log C + s log k over the given (positive) values.

    Standard errors come from the regression residuals; ``local_slopes`` are the
    slopes between consecutive points, whose spread shows how far the asymptotic
    regime has been reached.  Fit one parity at a time when the parities differ.
    """
    ks = np.asarray(list(ks), dtype=float)
    y = np.array([float(mpmath.log(m)) if m > 0 else np.nan for m in mus])
    if np.any(~np.isfinite(y)) or len(ks) < 3:
        raise ValueError("fit_decay needs >= 3 positive eigenvalues")
    x = np.log(ks)
    A = np.vstack([np.ones_like(x), x]).T
    coef, res, *_ = np.linalg.lstsq(A, y, rcond=None)
    dof = max(1, len(ks) - 2)
    sigma2 = float(np.sum((y - A @ coef) ** 2)) / dof
    cov = sigma2 * np.linalg.inv(A.T @ A)
    slopes = list(np.diff(y) / np.diff(x))
    return DecayFit(float(coef[1]), float(np.sqrt(cov[1, 1])), float(np.exp(coef[0])),
                    float(np.sqrt(cov[0, 0])), slopes, ks.tolist())


def compare_decay(mus: dict, law: DecayLaw, kmin: int = 50, factor: float = 10.0) -> dict:
    """Ratios mu_k / [(c_plus + (-1)^k c_minus) M_k(nu)] for k >= kmin and whether each lies
    within factor/k^2 of 1 (docs/spectral.md §5.1); reports the first k from which all agree."""
    rows, first_ok = [], None
    for k in sorted(mus):
        if k < kmin:
            continue
        pred = law.mu(k)
        if pred == 0:
            continue
        r = float(mus[k] / pred)
        ok = abs(r - 1) <= factor / k ** 2
        rows.append((k, r, ok))
    for i in range(len(rows)):
        if all(ok for _, _, ok in rows[i:]):
            first_ok = rows[i][0]
            break
    return {"rows": rows, "all_ok": bool(rows) and all(ok for *_, ok in rows), "agrees_from_k": first_ok}


def residue_class_tail(law: DecayLaw, r: int, n: int, lstart: int, explicit: int = 400):
    """sum_{l >= lstart, l = r (mod n)} of the predicted mu_l.

    The first ``explicit`` terms use the O(1/l^2)-accurate (c_plus +- c_minus) M_l(nu); the
    rest the pure power law summed exactly by the Hurwitz zeta function, one parity at a
    time: sum_j (l0 + 2 n j)^e = (2n)^e zeta(-e, l0 / (2n)).
    """
    l = lstart + ((r - lstart) % n)
    total = mpmath.mpf(0)
    for _ in range(explicit):
        total += law.mu(l)
        l += n
    e = mpmath.mpf(law.exponent)
    for l0 in (l, l + n):  # the two parities of the class continue with step 2n
        total += law.constant(l0 % 2) * (2 * n) ** e * mpmath.zeta(-e, mpmath.mpf(l0) / (2 * n))
    return total


def aliasing_tail(law: DecayLaw, m: int, n: int, lmax: int):
    """The part of n-point aliasing sums beyond |l| > lmax, for l = m (mod n) (both signs of l)."""
    return residue_class_tail(law, m % n, n, lmax + 1) + residue_class_tail(law, (-m) % n, n, lmax + 1)

"""Normalised zonal kernels and the deep-network limits they tend to (float64).

* :func:`normalized_kernel` -- t -> K(t) / K(1) on the unit sphere, any depth (normalised recursion);
* :func:`n2` -- N2 = (kappa1 + t kappa0) / 2, the limit for alpha = L^-gamma, gamma > 1/2;
* :func:`sup_distance_to_n2` -- sup_t |ResNTK_L - N2|, how far depth L is from that limit;
* :func:`ode_kernel` -- the gamma = 1/2 limit, solved as an ODE in the depth variable s in [0, 1];
* :func:`slope_closed_form` -- c(L, alpha) in ResNTK(cos theta) = 1 - c theta + O(theta^2).

References
----------
docs/papers.md §3 (BELFER-SPIKY, BELFER-SLOPE; Belfer, Geifman, Galun, Basri, arXiv 2104.03093) and §4
(Huang et al., arXiv 2002.06262); docs/conventions.md (ResNet recursions).
"""
from __future__ import annotations

import numpy as np
from scipy.integrate import solve_ivp

from reskernels.theory import MLP, ResNet

from .fc import normalized_diagonal
from .pointwise import zonal


def normalized_kernel(arch, kind: str = "ntk"):
    """The normalised zonal kernel :math:`t \\mapsto K(t) / K(1)` of an FC spec, as a float64 function.

    Let :math:`K` denote the ``kind`` kernel of ``arch`` on the unit sphere and :math:`t = \\langle
    x, z \\rangle`.  Evaluated by the normalised recursion (no overflow at any depth) divided by its
    closed-form diagonal (:func:`numerics.fc.normalized_diagonal`), so the value at t = 1 is 1 (up to
    rounding).

    Parameters
    ----------
    arch : MLP or ResNet
    kind : {"ntk", "nngp"}

    Returns
    -------
    callable
        Vectorised ``t -> K(t) / K(1)`` for t in [-1, 1] (array in, array out).

    Examples
    --------
    >>> from reskernels.theory import ResNet
    >>> bool(abs(normalized_kernel(ResNet(4, 0.5))(1.0) - 1) < 1e-14)
    True

    References
    ----------
    docs/papers.md §3-§4 (every "normalised ResNTK" there), docs/spectral.md §10.12 (diagonals).
    """
    f = zonal(arch, kind, normalized=True)
    d = normalized_diagonal(arch, kind)
    return lambda t: f(t) / d


def n2(t):
    """N2(t) = (kappa1(t) + t kappa0(t)) / 2 = ``MLP(depth=1)`` NTK / 2, the normalised two-layer NTK.

    The deep limit of the normalised hidden-trained ResNTK for alpha = L^-gamma, gamma > 1/2
    (uniformly in t, at rate O(L^(1/2 - gamma))), and of the trained="hidden" kernel at alpha = 1/L.

    Examples
    --------
    >>> float(n2(1.0)), round(float(n2(0.0)), 12) == round(1 / (2 * np.pi), 12)
    (1.0, True)

    References
    ----------
    docs/papers.md §3 BELFER-SPIKY [derived], §4 HUANG-TRAINED-SET.
    """
    return normalized_kernel(MLP(1))(t)


def sup_distance_to_n2(L, gamma, trained="hidden", t=None):
    """sup_t |ResNTK_L(t) - N2(t)| of the normalised NTK of ``ResNet.with_gamma(L, gamma, trained=trained)``
    over ``t`` (default 2001 equispaced points of [-1, 1]): O(L^(1/2 - gamma)) for the hidden-trained
    kernel at gamma > 1/2; it tends to a positive constant at gamma = 1/2 (the ODE kernel) and with every
    layer trained (the linear kernel t).

    References
    ----------
    docs/papers.md §3 BELFER-SPIKY, §4 HUANG-RESNET-STABLE, HUANG-TRAINED-SET.
    """
    t = np.linspace(-1, 1, 2001) if t is None else np.asarray(t, dtype=np.float64)
    return float(np.abs(normalized_kernel(ResNet.with_gamma(L, gamma, trained=trained))(t) - n2(t)).max())


def ode_kernel(t, rtol=1e-10):
    """The gamma = 1/2 limit of the normalised hidden-trained ResNTK, by an ODE in the depth variable.

    With :math:`\\rho(0) = t` and :math:`\\rho'(s) = \\kappa_1(\\rho) - \\rho` on :math:`s \\in [0, 1]`,

    .. math::
        \\hat\\Theta(t) = \\tfrac12 \\int_0^1 \\exp\\Big(-\\int_s^1 (1 - \\kappa_0(\\rho(u)))\\,du\\Big)
        \\,[\\kappa_1 + \\rho \\kappa_0](\\rho(s))\\,ds .

    Integrated as one augmented ODE, :math:`A' = 1 - \\kappa_0`, :math:`J' = e^{A} (\\kappa_1 + \\rho
    \\kappa_0)`, so that :math:`\\hat\\Theta = e^{-A(1)} J(1) / 2` (DOP853, ``rtol``, atol 1e-13).

    Parameters
    ----------
    t : float or array_like in [-1, 1]
    rtol : float
        Relative tolerance of the integrator.

    Returns
    -------
    ndarray, shape (t.size,)

    Examples
    --------
    >>> round(float(ode_kernel(0.0)[0]), 5)    # docs/papers.md table value 0.19285
    0.19285

    References
    ----------
    docs/papers.md §3 BELFER-SPIKY, "The gamma = 1/2 limit" [derived] (finite depth L = 10^4 and 2 10^4
    agree with it to 1e-5); Belfer et al., arXiv 2104.03093.
    """
    t = np.atleast_1d(np.asarray(t, dtype=float))
    n = t.size

    def k01(r):
        r = np.clip(r, -1, 1)
        th = np.arccos(r)
        return 1 - th / np.pi, (np.sqrt(np.maximum(1 - r * r, 0)) + (np.pi - th) * r) / np.pi

    def rhs(_, y):
        r, A = y[:n], y[n:2 * n]
        k0, k1 = k01(r)
        return np.concatenate([k1 - r, 1 - k0, np.exp(A) * (k1 + r * k0)])

    sol = solve_ivp(rhs, (0, 1), np.concatenate([t, np.zeros(n), np.zeros(n)]),
                    method="DOP853", rtol=rtol, atol=1e-13)
    y = sol.y[:, -1]
    return 0.5 * np.exp(-y[n:2 * n]) * y[2 * n:]


def slope_closed_form(L, alpha):
    """c(L, alpha) = 1/(2 pi) + (L - 1) alpha^2 / (2 pi (1 + alpha^2)).

    Let :math:`L` denote ``L`` (depth) and :math:`\\alpha` ``alpha``: the normalised hidden-trained
    ResNTK has :math:`\\mathrm{ResNTK}(\\cos\\theta) = 1 - c\\,\\theta + O(\\theta^2)` with this
    :math:`c` (for weight_var = 2; the FC-NTK ``MLP(L)`` has :math:`c = L / (2\\pi)`).

    Examples
    --------
    >>> round(slope_closed_form(5, 0.5), 6)     # docs/papers.md example value
    0.286479

    References
    ----------
    docs/papers.md §3 BELFER-SLOPE [derived]; equivalently c = -c_1 / (sqrt 2 K(1)) from the endpoint
    coefficient c_1 (docs/spectral.md §5).
    """
    a = alpha * alpha
    return 1 / (2 * np.pi) + (L - 1) * a / (2 * np.pi * (1 + a))

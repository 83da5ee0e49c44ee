"""Activations and everything the engines need to know about them, as named hooks.

An activation phi enters a kernel only through two Gaussian expectations, its *dual
activations* (Cho & Saul 2009; Daniely et al. 2016): for a centred Gaussian pair (u, v) with
variances Sxx, Szz and covariance S,

    E[phi(u) phi(v)]    (the NNGP through the activation),
    E[phi'(u) phi'(v)]  (the derivative factor of the NTK).

Each :class:`Activation` carries these as hooks, the way a sympy function carries its special
values, derivatives and series:

``second_moment``
    m2 = E[phi(g)^2] for g ~ N(0, 1), exact (sympy).  For a positively homogeneous activation
    E[phi(u) phi(v)] = m2 sqrt(Sxx Szz) kappa1(rho) and E[phi'(u) phi'(v)] = m2 kappa0(rho),
    with rho = S / sqrt(Sxx Szz) and the *normalised* duals kappa1(1) = kappa0(1) = 1 for ReLU.
``kappa0(x)``, ``kappa1(x)``
    the normalised duals of a sympy expression *or* of a truncated :class:`theory.series.Series`
    (Taylor at an interior point, Puiseux expansion at rho = +-1): exact kernels, Taylor and
    endpoint coefficients all come from these two hooks.
``half_angle(su, sv, xp)``
    the float64 / mpmath form on the half-angle state (su, sv) = (sin, cos)(theta/2):
    returns (rho, kappa0, kappa1, dk, u2, v2) with kappa1 = rho + dk, dk computed without
    cancellation, so that 1 -+ kappa1 stay accurate relative to their size near rho = +-1.
``from_rho(rho, xp)``, ``from_theta(theta, xp)``
    (pi kappa1, pi - theta) from a correlation or from an angle, the conv engines' forms.
``fn(x, xp)``, ``derivative(x, xp)``
    the finite-width function and its (a.e.) derivative for Monte Carlo networks.
``engine_id``
    the activation's code in the compiled (numba) and CUDA engines.

``homogeneous`` marks positive homogeneity of degree 1 (phi(c x) = c phi(x), c > 0): the kernel
then depends on the input norms only through the diagonal scale, and an engine may carry the
normalised half-angle state alone.  ReLU is the only entry so far; a new activation is one more
instance of :class:`Activation` registered in :data:`ACTIVATIONS`.

References
----------
Cho & Saul, "Kernel methods for deep learning", NeurIPS 2009 (arc-cosine kernels);
docs/conventions.md ("Architectures") for the kernel maps the engines build from these hooks.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import sympy as sp

from . import duals as _duals
from . import series as _series


@dataclass(frozen=True, eq=False)
class Activation:
    """An activation with its dual-activation hooks (see the module docstring).

    Two activations are equal when their ``key`` is: a name plus parameters, so that specs
    built with ``"relu"`` and with ``relu()`` compare and hash equal."""

    name: str
    key: tuple
    homogeneous: bool
    second_moment: sp.Expr
    kappa0: Callable
    kappa1: Callable
    half_angle: Callable
    from_rho: Callable
    from_theta: Callable
    fn: Callable
    derivative: Callable
    engine_id: int

    def __post_init__(self):
        object.__setattr__(self, "_m2", float(self.second_moment))

    def __eq__(self, other):
        return isinstance(other, Activation) and self.key == other.key

    def __hash__(self):
        return hash(self.key)

    def __repr__(self):
        return self.name

    @property
    def second_moment_float(self) -> float:
        """m2 as a float (computed once)."""
        return self._m2


# ---------------------------------------------------------------------------------------------
# ReLU: kappa0(r) = (pi - arccos r)/pi, kappa1(r) = (sqrt(1 - r^2) + (pi - arccos r) r)/pi, m2 = 1/2
# ---------------------------------------------------------------------------------------------

def _relu_half_angle(su, sv, xp):
    """(rho, kappa0, kappa1, dk, su^2, sv^2) of ReLU from the half-angle state.

    With h = theta/2: rho = sv^2 - su^2, kappa0 = 1 - 2h/pi and
    dk = (sin theta - theta cos theta)/pi = (2/pi)(su sv - h rho) >= 0, so that
    kappa1 = rho + dk, 1 - kappa1 = 2 su^2 - dk, 1 + kappa1 = 2 sv^2 + dk (no cancellation).
    One arcsin of min(su, sv), reflected to pi/2 - m when su > sv.
    """
    pi = xp.pi
    u2 = su * su
    v2 = sv * sv
    rho = v2 - u2
    m = xp.arcsin(xp.minimum(su, sv))
    h = xp.where(su <= sv, m, pi / 2 - m)
    k0 = 1 - h * (2 / pi)
    f_pi = (su * sv - h * rho) * (2 / pi)
    k1 = rho + f_pi
    return rho, k0, k1, f_pi, u2, v2


def _relu_from_rho(rho, xp, pi):
    """(pi kappa1(rho), pi - arccos(rho)) in the operation order of every float64 conv engine:
    sqrt(1 - rho^2) + (pi - theta) rho.  At rho = 1 exactly: (pi, pi)."""
    pt = pi - xp.arccos(rho)
    k = xp.sqrt(1.0 - rho * rho)
    k += pt * rho
    return k, pt


def _relu_from_theta(theta, xp, pi):
    """(pi kappa1, pi - theta) from an angle known more accurately than its cosine:
    sin theta + (pi - theta) cos theta."""
    p = pi - theta
    return xp.sin(theta) + p * xp.cos(theta), p


def _relu_fn(x, xp):
    return xp.maximum(x, 0.0)


def _relu_derivative(x, xp):
    return x > 0


RELU = Activation(
    name="relu", key=("relu",), homogeneous=True, second_moment=sp.Rational(1, 2),
    kappa0=_series.kappa0, kappa1=_series.kappa1, half_angle=_relu_half_angle,
    from_rho=_relu_from_rho, from_theta=_relu_from_theta, fn=_relu_fn,
    derivative=_relu_derivative, engine_id=0)
"""ReLU, max(x, 0): kappa0(r) = (pi - arccos r)/pi, kappa1(r) = (sqrt(1 - r^2) + (pi - arccos r) r)/pi
(arc-cosine kernels of degree 0 and 1, Cho & Saul 2009), m2 = 1/2, so that
E[relu(u) relu(v)] = sqrt(Sxx Szz) kappa1(rho)/2 and E[relu'(u) relu'(v)] = kappa0(rho)/2."""


def relu() -> Activation:
    """ReLU, max(x, 0) (the activation of the five papers).

    >>> import sympy as sp
    >>> r = sp.Symbol("r")
    >>> act = relu()
    >>> sp.simplify(sp.diff(act.kappa1(r), r) - act.kappa0(r))    # kappa1' = kappa0
    0
    >>> act.kappa0(sp.Integer(1)), act.kappa1(sp.Integer(1)), act.second_moment
    (1, 1, 1/2)
    """
    return RELU


#: name -> constructor of the parameter-free activations (``activation="relu"`` in a spec)
ACTIVATIONS = {"relu": relu}


def get(activation) -> Activation:
    """The :class:`Activation` for a name or an Activation; ValueError naming the allowed names."""
    if isinstance(activation, Activation):
        return activation
    if isinstance(activation, str) and activation in ACTIVATIONS:
        return ACTIVATIONS[activation]()
    raise ValueError(f"activation must be one of {tuple(ACTIVATIONS)} or an Activation object, "
                     f"got {activation!r}")


# the exact coefficient formulas of ReLU's duals, kept next to the object that uses them
kappa0_taylor = _duals.kappa0_taylor
kappa1_taylor = _duals.kappa1_taylor

"""Kernel steps: an architecture as a program of small frozen step objects.

An architecture spec (:mod:`theory.arch`) means exactly the program its ``layers()`` returns;
every engine (sympy, float64, mpmath, numpy/numba/CuPy conv, Monte Carlo) interprets the program
and never asks which spec class it came from.  Each step is a map of the pair state
(Sigma, Theta) -- the NNGP covariance and the NTK -- of a pair of inputs (x, z), the
infinite-width limit of one layer of a neural-tangents ``stax`` network (docs/conventions.md):

========================================  ============================================================
step                                      map (Sigma, Theta) -> (Sigma', Theta')
========================================  ============================================================
``Input(input_var, stem_size, trained)``  Sigma0 = input_var mean_{stem taps d} <x_{i+d}, z_{j+d}>,
                                          Theta0 = Sigma0 if trained else 0
``Dense(weight_var, trained)``            Sigma' = c Sigma, Theta' = c (Theta + [trained] Sigma)
``Conv(weight_var, filter_size, ...)``    the same with the patch operator P (mean over q taps)
``Dual(activation)``                      Sigma' = E[phi(u) phi(v)], Theta' = E[phi'(u) phi'(v)] Theta
``Residual(alpha, branch)``               Sigma' = Sigma + alpha^2 Sigma_b, Theta' = Theta + alpha^2 Theta_b
``Readout(pooling, weight_var, ...)``     Sigma' = c pool(Sigma), Theta' = c pool(Theta + [trained] Sigma)
========================================  ============================================================

with (Sigma_b, Theta_b) the branch program applied to (Sigma, Theta), (u, v) ~ N(0, Sigma) and
pool the readout's pooling (``"dense"``: none; ``"gap"``: mean over all position pairs (i, j);
``"flatten"``: mean over i of (i, i); ``"center"``: the entry (0, 0)).  "trained" states whether
the layer's weights enter the NTK (``trained="hidden"`` freezes the input layer and the readout).

Engines do not interpret these fine steps one by one: :func:`kernel_maps` lowers a program once
into the contract's *kernel maps* -- the units in which the recursions of docs/conventions.md
are written and in which every engine is exact (normalised states, half angles, exact
diagonals) -- and each engine has one function per map type:

* :class:`Stem` -- the input layer;
* :class:`Nonlinear` -- ``Dual(act)`` followed by the weight layer after it (Dense, Conv or the
  readout's weights): Sigma' = P Phi1(Sigma), Theta' = P([trained] Phi1(Sigma) + Phi0(Sigma) Theta)
  with Phi1 = c E[phi phi], Phi0 = c E[phi' phi'];
* :class:`Block` -- ``Residual(alpha, (Conv(c), Dual(act), Conv(1)))``:
  Sigma' = Sigma + alpha^2 P Phi1(P Sigma),
  Theta' = Theta + alpha^2 [P Phi1(P Sigma) + P(Phi0(P Sigma) (.) P(Theta + Sigma))];
* :class:`Linear` -- a weight layer that follows no activation (the ResNet readout);
* :class:`Concat` -- densely connected layers (DenseNet);
* :class:`Pool` -- the readout's pooling.

Every weight layer may carry a bias of variance ``bias_var`` (b): Dense and Conv then map
Sigma' = c Sigma + b and Theta' = c Theta + [trained] Sigma' (the bias is trained with its layer).

A program that does not lower raises :class:`NotImplementedError` naming the unsupported step
sequence; a new architecture either reuses these maps or adds one map type (and one function per
engine).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Union

from .activations import Activation

POOLINGS = ("dense", "gap", "flatten", "center")


# ---------------------------------------------------------------------------------------------
# The fine steps (what a spec's layers() returns)
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Input:
    """Input layer (stem): Sigma0_ij = input_var mean_{d in stem taps} <x_{i+d}, z_{j+d}>,
    Theta0 = Sigma0 when ``trained`` else 0 (docs/conventions.md, "MLP" and "CNN and ResCNN").
    ``stem_size`` = 1 for fully connected inputs."""

    input_var: float
    stem_size: int = 1
    trained: bool = True
    bias_var: float = 0.0


@dataclass(frozen=True)
class Dense:
    """Fully connected layer with weight variance c: Sigma' = c Sigma,
    Theta' = c (Theta + Sigma) if ``trained`` else c Theta (Jacot et al. 2018, NTK parameterisation)."""

    weight_var: float
    trained: bool = True
    bias_var: float = 0.0


@dataclass(frozen=True)
class Conv:
    """Circular convolution with ``filter_size`` taps per spatial axis and weight variance c:
    Sigma' = c P Sigma, Theta' = c P (Theta + [trained] Sigma), [P M]_ij = mean_d M_{i+d, j+d}
    (Arora et al. 2019, CNTK; docs/conventions.md "CNN and ResCNN")."""

    weight_var: float
    filter_size: int
    trained: bool = True
    bias_var: float = 0.0


@dataclass(frozen=True)
class Dual:
    """Activation: Sigma' = E[phi(u) phi(v)], Theta' = E[phi'(u) phi'(v)] Theta for
    (u, v) ~ N(0, [[Sxx, S], [S, Szz]]) -- the dual activation of :mod:`theory.activations`."""

    activation: Activation


@dataclass(frozen=True)
class Residual:
    """Residual connection h' = h + alpha branch(h): Sigma' = Sigma + alpha^2 Sigma_b,
    Theta' = Theta + alpha^2 Theta_b, where (Sigma_b, Theta_b) is ``branch`` applied to
    (Sigma, Theta) (the branch's weights are independent of the identity path)."""

    alpha: float
    branch: tuple


@dataclass(frozen=True)
class Readout:
    """Readout layer with weight variance c after ``pooling``: Sigma_out = c pool(Sigma),
    Theta_out = c pool(Theta + [trained] Sigma)."""

    pooling: str
    weight_var: float
    trained: bool = True
    bias_var: float = 0.0


@dataclass(frozen=True)
class DenseConnect:
    """``depth`` densely connected layers (Huang et al. 2017; Littwin et al.): layer l sees the
    concatenation of phi(h_0), ..., phi(h_{l-1}) with equal widths, a concatenation averaging the
    covariances by channel share:
    K_l = c (1/l) sum_{j<l} E[phi phi](K_j) + b,  Theta_l = c (1/l) sum_{j<l} E[phi' phi'](K_j) Theta_j + K_l;
    the step's output is the concatenation of all depth + 1 activations, (1/(L+1)) sum_j of the
    same expectations, for the readout that follows (docs/conventions.md, "DenseNet")."""

    depth: int
    activation: Activation
    weight_var: float
    bias_var: float = 0.0


Step = Union[Input, Dense, Conv, Dual, Residual, Readout, DenseConnect]


# ---------------------------------------------------------------------------------------------
# The kernel maps every engine implements (the lowered program)
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Stem:
    """The input layer (see :class:`Input`)."""

    input_var: float
    stem_size: int
    trained: bool
    bias_var: float = 0.0


@dataclass(frozen=True)
class Nonlinear:
    """``Dual(activation)`` then a weight layer of variance c (``filter_size`` 1: Dense or readout):
    Sigma' = P Phi1(Sigma), Theta' = P(Phi1(Sigma) [trained] + Phi0(Sigma) Theta) with
    Phi1 = c E[phi(u) phi(v)] = c m2 sqrt(Sxx Szz) kappa1(rho), Phi0 = c m2 kappa0(rho)."""

    activation: Activation
    weight_var: float
    filter_size: int
    trained: bool
    bias_var: float = 0.0

    @property
    def gain(self) -> float:
        """c m2: the factor by which the layer multiplies the pair's diagonal scale."""
        return self.weight_var * self.activation.second_moment_float


@dataclass(frozen=True)
class Block:
    """Residual block Residual(alpha, (Conv(c, q), Dual(act), Conv(1, q))):
    Sigma' = Sigma + alpha^2 P Phi1(P Sigma),
    Theta' = Theta + alpha^2 [P Phi1(P Sigma) + P(Phi0(P Sigma) (.) P(Theta + Sigma))];
    a = alpha^2 c m2 is the block's gain: the diagonal scale grows by 1 + a."""

    alpha: float
    activation: Activation
    weight_var: float
    filter_size: int
    bias_var: float = 0.0

    @property
    def gain(self) -> float:
        """a = alpha^2 c m2 (alpha^2 c / 2 for ReLU)."""
        return self.alpha * self.alpha * self.weight_var * self.activation.second_moment_float


@dataclass(frozen=True)
class Linear:
    """A weight layer that follows no activation: Sigma' = c Sigma, Theta' = c (Theta + [trained] Sigma)."""

    weight_var: float
    trained: bool
    bias_var: float = 0.0


@dataclass(frozen=True)
class Concat:
    """The densely connected layers of :class:`DenseConnect` (the same maps; the state carries every
    earlier layer's (K_j, Theta_j))."""

    depth: int
    activation: Activation
    weight_var: float
    bias_var: float = 0.0


@dataclass(frozen=True)
class Pool:
    """The readout's pooling (``"dense"``, ``"gap"``, ``"flatten"``, ``"center"``)."""

    pooling: str


def _weight_step(step):
    """(weight_var, filter_size, trained, bias_var) of a Dense / Conv / Readout step, else None."""
    if isinstance(step, Dense):
        return step.weight_var, 1, step.trained, step.bias_var
    if isinstance(step, Conv):
        return step.weight_var, step.filter_size, step.trained, step.bias_var
    if isinstance(step, Readout):
        return step.weight_var, 1, step.trained, step.bias_var
    return None


def _block(step: Residual) -> Block:
    b = step.branch
    if (len(b) == 3 and isinstance(b[1], Dual) and all(isinstance(s, (Dense, Conv)) for s in (b[0], b[2]))
            and type(b[0]) is type(b[2]) and b[0].trained and b[2].trained and b[2].weight_var == 1.0
            and _weight_step(b[0])[1] == _weight_step(b[2])[1] and b[0].bias_var == b[2].bias_var):
        c, q, _, bias = _weight_step(b[0])
        return Block(step.alpha, b[1].activation, c, q, bias)
    raise NotImplementedError(
        f"a residual branch must be (Dense|Conv(c, q), Dual(act), Dense|Conv(1, q)), trained; got {b!r}")


def kernel_maps(steps) -> tuple:
    """Lower a program of steps into the kernel maps the engines implement (module docstring).

    >>> from reskernels import MLP
    >>> [type(m).__name__ for m in kernel_maps(MLP(depth=2).layers())]
    ['Stem', 'Nonlinear', 'Nonlinear', 'Pool']
    """
    steps = tuple(steps)
    if not steps or not isinstance(steps[0], Input):
        raise NotImplementedError("a program starts with an Input step")
    if not isinstance(steps[-1], Readout):
        raise NotImplementedError("a program ends with a Readout step")
    first = steps[0]
    out = [Stem(first.input_var, first.stem_size, first.trained, first.bias_var)]
    i = 1
    while i < len(steps):
        s = steps[i]
        if isinstance(s, Dual):
            nxt = steps[i + 1] if i + 1 < len(steps) else None
            w = _weight_step(nxt)
            if w is None:
                raise NotImplementedError(f"Dual must be followed by a weight layer, got {nxt!r}")
            out.append(Nonlinear(s.activation, w[0], w[1], w[2], w[3]))
            if isinstance(nxt, Readout):
                out.append(Pool(nxt.pooling))
            i += 2
            continue
        if isinstance(s, Residual):
            out.append(_block(s))
        elif isinstance(s, DenseConnect):
            out.append(Concat(s.depth, s.activation, s.weight_var, s.bias_var))
        elif isinstance(s, Readout):
            out.append(Linear(s.weight_var, s.trained, s.bias_var))
            out.append(Pool(s.pooling))
        elif isinstance(s, (Dense, Conv)):
            w = _weight_step(s)
            if w[1] != 1:
                raise NotImplementedError("a convolution that follows no activation is not supported")
            out.append(Linear(w[0], w[2], w[3]))
        else:
            raise NotImplementedError(f"step {s!r} cannot start a kernel map")
        i += 1
    return tuple(out)


def is_normalizable(maps) -> bool:
    """Whether the normalised engines apply: every activation positively homogeneous (degree 1),
    no bias anywhere and no concatenation.  Their kernels factor as |x| |z| s_L k(angle), which the
    half-angle (FC) and layer-scaled (conv) engines exploit for exact diagonals at any depth;
    every other program runs on the variance-carrying engines (:mod:`theory.general`)."""
    for m in maps:
        if isinstance(m, Concat) or getattr(m, "bias_var", 0.0) != 0.0:
            return False
        act = getattr(m, "activation", None)
        if act is not None and not act.homogeneous:
            return False
    return True


def log_diag_scale(maps) -> float:
    """log of the NNGP diagonal on the unit sphere (the pixel diagonal for conv programs) for
    homogeneous activations: log(input_var) + sum of log(gain) over Nonlinear maps,
    log1p(a) over blocks and log(c) over Linear maps (summed with math.fsum)."""
    stem = maps[0]
    terms = []
    for m in maps[1:]:
        if isinstance(m, Nonlinear):
            terms.append(math.log(m.gain))
        elif isinstance(m, Block):
            terms.append(math.log1p(m.gain))
        elif isinstance(m, Linear):
            terms.append(math.log(m.weight_var))
    return math.log(stem.input_var) + math.fsum(terms)


def normalized_ntk_diagonal(maps) -> float:
    """NTK(x, x) divided by the NNGP diagonal scale: every dual is 1 at rho = 1, so each map adds
    a constant -- 1 per trained Stem / Nonlinear / Linear map, 2a/(1+a) per block
    (docs/conventions.md; e.g. MLP(L): L + 1, ResNet: sum_l 2 a_l/(1 + a_l) + 2)."""
    count = 0
    frac = []
    for m in maps:
        if isinstance(m, (Stem, Nonlinear, Linear)):
            count += int(m.trained)
        elif isinstance(m, Block):
            frac.append(2 * m.gain / (1 + m.gain))
    return math.fsum(frac) + float(count)


def patch_radius(maps) -> int:
    """Receptive radius of the center readout: (stem_size - 1)/2 plus, per map, (q - 1)/2 for a
    Nonlinear map and q - 1 for a block (two convolutions)."""
    r = (maps[0].stem_size - 1) // 2
    for m in maps[1:]:
        if isinstance(m, Nonlinear):
            r += (m.filter_size - 1) // 2
        elif isinstance(m, Block):
            r += m.filter_size - 1
    return r

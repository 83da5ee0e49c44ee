"""Frozen architecture specs: the single object that flows from symbolic
derivation to numeric evaluation to verdict.

The conventions (the recursions that *define* each kernel) are those of the
project contract, ``docs/conventions.md``: bias-free ReLU networks in the NTK
parameterisation, width -> infinity, with

* ``input_var``  -- variance of the input layer, K0 = input_var <x, z>;
* ``weight_var`` -- c, the variance of every layer that follows a ReLU
  (c = 2 is the He value that keeps the diagonal fixed);
* ``trained``    -- ``"all"`` (every weight matrix enters the NTK) or
  ``"hidden"`` (input layer / stem and readout frozen: the Huang et al. 2020 /
  Belfer et al. 2021 ResNTK).

Every spec validates itself at construction and raises :class:`ValueError`
naming the offending argument and the allowed values.
"""
from __future__ import annotations

import functools
import hashlib
import math
import numbers
from dataclasses import dataclass, field, replace
from typing import Literal, Sequence

from . import layers as _L
from .activations import Activation, get as _activation

Trained = Literal["all", "hidden"]
Readout = Literal["gap", "flatten", "center"]
Kind = Literal["ntk", "nngp"]

TRAINED_VALUES = ("all", "hidden")
READOUT_VALUES = ("gap", "flatten", "center")
KIND_VALUES = ("ntk", "nngp")


def check_kind(kind: str) -> str:
    """Validate a kernel kind (``"ntk"`` or ``"nngp"``) and return it."""
    if kind not in KIND_VALUES:
        raise ValueError(f"kind must be one of {KIND_VALUES}, got {kind!r}")
    return kind


def _real(name: str, value, *, positive: bool = False, nonnegative: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a real number, got {value!r}")
    v = float(value)
    if not math.isfinite(v):
        raise ValueError(f"{name} must be finite, got {value!r}")
    if positive and not v > 0:
        raise ValueError(f"{name} must be > 0, got {value!r}")
    if nonnegative and not v >= 0:
        raise ValueError(f"{name} must be >= 0, got {value!r}")
    return v


def _depth(value) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"depth must be an integer >= 1, got {value!r}")
    if value < 1:
        raise ValueError(f"depth must be an integer >= 1, got {value!r}")
    return int(value)


def _choice(name: str, value, allowed: tuple) -> str:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {allowed}, got {value!r}")
    return value


def _alpha(value, depth: int):
    """A float, or a tuple of ``depth`` floats (one per residual block)."""
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return _real("alpha", value)
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        try:
            seq = list(value)
        except TypeError:
            raise ValueError(
                f"alpha must be a real number or a sequence of {depth} reals, got {value!r}"
            ) from None
    else:
        seq = list(value)
    if len(seq) != depth:
        raise ValueError(f"alpha sequence must have length depth={depth}, got length {len(seq)}")
    return tuple(_real(f"alpha[{i}]", a) for i, a in enumerate(seq))


def _fmt(x: float) -> str:
    return format(x, ".6g")


class Spec:
    """Shared behaviour of the architecture dataclasses: the program and what follows from it."""

    def replace(self, **changes):
        """Return a copy with some fields changed (validated again)."""
        return replace(self, **changes)

    def layers(self) -> tuple:
        """The kernel program: a tuple of :mod:`theory.layers` steps (the spec's meaning)."""
        raise NotImplementedError

    def kernel_maps(self) -> tuple:
        """The program lowered to the kernel maps every engine implements
        (:func:`theory.layers.kernel_maps`; cached per spec)."""
        return _maps_of(self)

    @property
    def is_conv(self) -> bool:
        """Whether the spec acts on images / signals (pixel-pair kernels) rather than vectors."""
        return False

    @classmethod
    def examples(cls) -> tuple:
        """Small instances covering the class's options (the registry's contract tests and
        ``reskernels info`` use them)."""
        raise NotImplementedError

    @property
    def has_alpha(self) -> bool:
        return hasattr(self, "alpha")

    def alphas(self) -> tuple[float, ...]:
        """Per-block branch scales alpha_1..alpha_L (residual specs only)."""
        a = self.alpha  # type: ignore[attr-defined]
        return a if isinstance(a, tuple) else (a,) * self.depth  # type: ignore[attr-defined]

    def block_gains(self) -> tuple[float, ...]:
        """a_l = alpha_l^2 * weight_var * m2 (alpha_l^2 c / 2 for ReLU): the gain of each
        residual block of the program (empty for specs without blocks)."""
        return tuple(m.gain for m in self.kernel_maps() if isinstance(m, _L.Block))

    def log_diag_scale(self) -> float:
        """log of the NNGP diagonal on the unit sphere (pixel diagonal for conv), from the program
        (:func:`theory.layers.log_diag_scale`): MLP/CNN input_var (c/2)^L,
        ResNet/ResCNN input_var prod_l (1 + a_l)."""
        return _L.log_diag_scale(self.kernel_maps())


@functools.lru_cache(maxsize=512)
def _maps_of(spec) -> tuple:
    return _L.kernel_maps(spec.layers())


def _act(spec):
    """Validate ``activation`` (a registered name or an Activation) and ``bias_var`` (>= 0)."""
    object.__setattr__(spec, "activation", _activation(spec.activation))
    object.__setattr__(spec, "bias_var", _real("bias_var", spec.bias_var, nonnegative=True))


def _validate_common(spec):
    """The fields every spec has: input_var, weight_var (> 0), trained, activation, bias_var."""
    object.__setattr__(spec, "input_var", _real("input_var", spec.input_var, positive=True))
    object.__setattr__(spec, "weight_var", _real("weight_var", spec.weight_var, positive=True))
    _choice("trained", spec.trained, TRAINED_VALUES)
    _act(spec)


def _act_slug(spec) -> str:
    """Slug suffix for a non-default activation and a bias (empty for the papers' defaults)."""
    out = "" if spec.activation.key == ("relu",) else f"-{spec.activation.name}"
    return out + (f"-b{_fmt(spec.bias_var)}" if spec.bias_var else "")


@dataclass(frozen=True)
class MLP(Spec):
    """Bias-free ReLU MLP with ``depth`` ReLU layers (``depth + 1`` weight layers).

    Sigma_0 = input_var <x,z>, Theta_0 = Sigma_0, and for h = 1..L
    Sigma_h = Phi1(Sigma_{h-1}), Theta_h = Sigma_h + Phi0(Sigma_{h-1}) Theta_{h-1}
    (docs/conventions.md, "MLP").  On the unit sphere with defaults NNGP(x,x) = 1 and
    NTK(x,x) = L + 1.  ``trained="hidden"`` drops the input-layer term Theta_0 and
    the readout term Sigma_L; it needs ``depth >= 2``.
    """

    depth: int
    input_var: float = 1.0
    weight_var: float = 2.0
    trained: Trained = "all"
    activation: str | Activation = "relu"
    bias_var: float = 0.0

    def __post_init__(self):
        object.__setattr__(self, "depth", _depth(self.depth))
        _validate_common(self)
        if self.trained == "hidden" and self.depth == 1:
            raise ValueError(
                "trained='hidden' needs depth >= 2 for MLP: depth=1 has no hidden layer "
                "(allowed for depth=1: trained='all')"
            )

    @classmethod
    def examples(cls) -> tuple:
        return (cls(1), cls(3, weight_var=1.0, input_var=0.5), cls(2, trained="hidden"))

    def layers(self) -> tuple:
        """Input(input_var), then L x [Dual(act), Dense(c)], the last Dense being the readout.

        >>> MLP(depth=2).layers()     # doctest: +NORMALIZE_WHITESPACE
        (Input(input_var=1.0, stem_size=1, trained=True, bias_var=0.0), Dual(activation=relu),
         Dense(weight_var=2.0, trained=True, bias_var=0.0), Dual(activation=relu),
         Readout(pooling='dense', weight_var=2.0, trained=True, bias_var=0.0))
        """
        tr, b = self.trained == "all", self.bias_var
        dual = _L.Dual(self.activation)
        hidden = (dual, _L.Dense(self.weight_var, True, b)) * (self.depth - 1)
        return (_L.Input(self.input_var, 1, tr, b), *hidden, dual, _L.Readout("dense", self.weight_var, tr, b))

    @property
    def slug(self) -> str:
        return (f"MLP-L{self.depth}-iv{_fmt(self.input_var)}-wv{_fmt(self.weight_var)}"
                f"-{self.trained}{_act_slug(self)}")


@dataclass(frozen=True)
class ResNet(Spec):
    """Fully connected bias-free ReLU ResNet, blocks h_l = h_{l-1} + alpha V relu(W h_{l-1}).

    K_0 = input_var <x,z>, K_l = K_{l-1} + alpha_l^2 Phi1(K_{l-1});
    B_{L+1} = 1, B_l = B_{l+1} (1 + alpha_l^2 Phi0(K_{l-1}));
    NTK(hidden) = sum_l alpha_l^2 B_{l+1} [Phi1(K_{l-1}) + K_{l-1} Phi0(K_{l-1})],
    NTK(all) = NTK(hidden) + K_L + B_1 K_0 (docs/conventions.md, "ResNet").
    ``alpha`` is a float or a sequence of ``depth`` floats; see :meth:`with_gamma`
    for the schedule alpha = depth^(-gamma) of Belfer et al. / Huang et al.
    """

    depth: int
    alpha: float | tuple[float, ...] = field(default=None)  # type: ignore[assignment]
    input_var: float = 1.0
    weight_var: float = 2.0
    trained: Trained = "all"
    activation: str | Activation = "relu"
    bias_var: float = 0.0

    def __post_init__(self):
        object.__setattr__(self, "depth", _depth(self.depth))
        if self.alpha is None:
            raise ValueError("alpha is required for ResNet (a float or one float per block)")
        object.__setattr__(self, "alpha", _alpha(self.alpha, self.depth))
        _validate_common(self)

    @classmethod
    def examples(cls) -> tuple:
        return (cls(1, 0.5), cls(3, (0.2, 1.0, 0.6), weight_var=1.0, input_var=0.5),
                cls(2, 0.8, trained="hidden"), cls(2, 0.0))

    def layers(self) -> tuple:
        """Input(input_var), L x Residual(alpha_l, (Dense(c), Dual(act), Dense(1))), Readout(1).

        >>> ResNet(depth=1, alpha=0.5).layers()     # doctest: +NORMALIZE_WHITESPACE
        (Input(input_var=1.0, stem_size=1, trained=True, bias_var=0.0),
         Residual(alpha=0.5, branch=(Dense(weight_var=2.0, trained=True, bias_var=0.0), Dual(activation=relu),
                                     Dense(weight_var=1.0, trained=True, bias_var=0.0))),
         Readout(pooling='dense', weight_var=1.0, trained=True, bias_var=0.0))
        """
        tr, b = self.trained == "all", self.bias_var
        branch = (_L.Dense(self.weight_var, True, b), _L.Dual(self.activation), _L.Dense(1.0, True, b))
        blocks = tuple(_L.Residual(a, branch) for a in self.alphas())
        return (_L.Input(self.input_var, 1, tr, b), *blocks, _L.Readout("dense", 1.0, tr, b))

    @classmethod
    def with_gamma(cls, depth: int, gamma: float, **kwargs) -> "ResNet":
        """ResNet with the depth-scaled branch alpha = depth^(-gamma)."""
        depth = _depth(depth)
        gamma = _real("gamma", gamma)
        return cls(depth, float(depth) ** (-gamma), **kwargs)

    @property
    def slug(self) -> str:
        a = self.alpha
        astr = _fmt(a) if not isinstance(a, tuple) else "seq" + hashlib.sha1(repr(a).encode()).hexdigest()[:8]
        return (f"ResNet-L{self.depth}-a{astr}-iv{_fmt(self.input_var)}"
                f"-wv{_fmt(self.weight_var)}-{self.trained}{_act_slug(self)}")


FC_SPECS = (MLP, ResNet)


def _odd(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1 or value % 2 == 0:
        raise ValueError(f"{name} must be an odd integer >= 1, got {value!r}")
    return int(value)


def _validate_conv(spec):
    """Fields shared by CNN and ResCNN: odd filter and stem sizes, readout, variances, trained."""
    object.__setattr__(spec, "filter_size", _odd("filter_size", spec.filter_size))
    object.__setattr__(spec, "stem_size", _odd("stem_size", spec.stem_size))
    _choice("readout", spec.readout, READOUT_VALUES)
    _validate_common(spec)


def _conv_slug_tail(spec) -> str:
    """The slug fields CNN and ResCNN share (filter, stem, readout, variances, trained set)."""
    return (f"q{spec.filter_size}-s{spec.stem_size}-{spec.readout}"
            f"-iv{_fmt(spec.input_var)}-wv{_fmt(spec.weight_var)}-{spec.trained}{_act_slug(spec)}")


@dataclass(frozen=True)
class CNN(Spec):
    """Arora-style CNN with ``depth`` ReLU layers on circular 1-D signals or 2-D tori.

    Stem M0_ij = input_var mean_{stem taps} <x_{i+d}, z_{j+d}>; for l = 1..L-1
    K_l = P Phi1(K_{l-1}), Theta_l = P(Phi1(K_{l-1}) + Phi0(K_{l-1}) Theta_{l-1}); before the
    readout K = Phi1(K_{L-1}), Theta = Phi1(K_{L-1}) + Phi0(K_{L-1}) Theta_{L-1}
    (docs/conventions.md "CNN and ResCNN"); readout gap / flatten / center.
    """

    depth: int
    filter_size: int = 3
    readout: Readout = "gap"
    stem_size: int = 1
    input_var: float = 1.0
    weight_var: float = 2.0
    trained: Trained = "all"
    activation: str | Activation = "relu"
    bias_var: float = 0.0

    def __post_init__(self):
        object.__setattr__(self, "depth", _depth(self.depth))
        _validate_conv(self)
        if self.trained == "hidden" and self.depth == 1:
            raise ValueError("trained='hidden' needs depth >= 2 for CNN: depth=1 has no hidden layer "
                             "(allowed for depth=1: trained='all')")

    @property
    def is_conv(self) -> bool:
        return True

    @classmethod
    def examples(cls) -> tuple:
        return (cls(1), cls(2, readout="flatten", stem_size=3, weight_var=1.0),
                cls(3, readout="center", trained="hidden", input_var=0.5))

    def layers(self) -> tuple:
        """Input(input_var, stem_size), (L-1) x [Dual(act), Conv(c, q)], Dual(act), Readout(readout, c)."""
        tr, b = self.trained == "all", self.bias_var
        dual = _L.Dual(self.activation)
        hidden = (dual, _L.Conv(self.weight_var, self.filter_size, True, b)) * (self.depth - 1)
        return (_L.Input(self.input_var, self.stem_size, tr, b), *hidden, dual,
                _L.Readout(self.readout, self.weight_var, tr, b))

    @property
    def slug(self) -> str:
        return f"CNN-L{self.depth}-{_conv_slug_tail(self)}"


@dataclass(frozen=True)
class ResCNN(Spec):
    """Convolutional ResNet: blocks g_l = g_{l-1} + alpha conv(relu(conv(g_{l-1}))), linear readout.

    K_l = K_{l-1} + alpha^2 P Phi1(P K_{l-1}),
    Theta_l = Theta_{l-1} + alpha^2 [P Phi1(P K_{l-1}) + P(Phi0(P K_{l-1}) o P(Theta_{l-1} + K_{l-1}))]
    (docs/conventions.md); trained="hidden" drops the stem's K0 from Theta0 and the readout term.
    """

    depth: int
    alpha: float | tuple[float, ...] = field(default=None)  # type: ignore[assignment]
    filter_size: int = 3
    readout: Readout = "gap"
    stem_size: int = 1
    input_var: float = 1.0
    weight_var: float = 2.0
    trained: Trained = "all"
    activation: str | Activation = "relu"
    bias_var: float = 0.0

    def __post_init__(self):
        object.__setattr__(self, "depth", _depth(self.depth))
        if self.alpha is None:
            raise ValueError("alpha is required for ResCNN (a float or one float per block)")
        object.__setattr__(self, "alpha", _alpha(self.alpha, self.depth))
        _validate_conv(self)

    @property
    def is_conv(self) -> bool:
        return True

    @classmethod
    def examples(cls) -> tuple:
        return (cls(1, 0.5), cls(2, (0.3, 0.9), readout="flatten", weight_var=1.0),
                cls(2, 0.7, readout="center", stem_size=3, trained="hidden"), cls(1, 0.0, readout="flatten"))

    def layers(self) -> tuple:
        """Input(input_var, stem_size), L x Residual(alpha_l, (Conv(c, q), Dual(act), Conv(1, q))),
        Readout(readout, 1)."""
        tr, q, b = self.trained == "all", self.filter_size, self.bias_var
        branch = (_L.Conv(self.weight_var, q, True, b), _L.Dual(self.activation), _L.Conv(1.0, q, True, b))
        blocks = tuple(_L.Residual(a, branch) for a in self.alphas())
        return (_L.Input(self.input_var, self.stem_size, tr, b), *blocks, _L.Readout(self.readout, 1.0, tr, b))

    @property
    def slug(self) -> str:
        a = self.alpha
        astr = _fmt(a) if not isinstance(a, tuple) else "seq" + hashlib.sha1(repr(a).encode()).hexdigest()[:8]
        return f"ResCNN-L{self.depth}-a{astr}-{_conv_slug_tail(self)}"


CONV_SPECS = (CNN, ResCNN)


@dataclass(frozen=True)
class DenseNet(Spec):
    """Fully connected DenseNet with ``depth`` densely connected layers (docs/conventions.md, "DenseNet").

    Input layer Dense(sqrt(input_var d)); layer l sees the concatenation of phi(h_0..h_{l-1}) (equal
    widths); the readout Dense(sqrt(c)) sees all L + 1 activations.  With Phi1 = c E[phi phi] + b,
    Phi0 = c E[phi' phi']:  K_0 = input_var <x, z> + b, K_l = (1/l) sum_{j<l} Phi1(K_j),
    Theta_l = K_l + (1/l) sum_{j<l} Phi0(K_j) Theta_j; NNGP = (1/(L+1)) sum_{j<=L} Phi1(K_j),
    NTK = NNGP + (1/(L+1)) sum_j Phi0(K_j) Theta_j.  ``trained="hidden"``: Theta_0 = 0 and the
    readout's own term dropped.  The exact DenseNet of Littwin et al. is not known; their claim is
    checked on this model.
    """

    depth: int
    input_var: float = 1.0
    weight_var: float = 2.0
    trained: Trained = "all"
    activation: str | Activation = "relu"
    bias_var: float = 0.0

    def __post_init__(self):
        object.__setattr__(self, "depth", _depth(self.depth))
        _validate_common(self)

    @classmethod
    def examples(cls) -> tuple:
        return (cls(1), cls(3, weight_var=1.0, input_var=0.5, bias_var=0.2), cls(2, trained="hidden"))

    def layers(self) -> tuple:
        """Input(input_var), DenseConnect(L, act, c), Readout(dense, c)."""
        tr, b = self.trained == "all", self.bias_var
        return (_L.Input(self.input_var, 1, tr, b), _L.DenseConnect(self.depth, self.activation, self.weight_var, b),
                _L.Readout("dense", self.weight_var, tr, b))

    @property
    def slug(self) -> str:
        return (f"DenseNet-L{self.depth}-iv{_fmt(self.input_var)}-wv{_fmt(self.weight_var)}"
                f"-{self.trained}{_act_slug(self)}")


#: The registry of spec classes (CLI ``info``, ``parse_spec``, reference data, contract tests):
#: a new architecture is one more frozen dataclass with ``layers()`` added here.
SPECS = {cls.__name__: cls for cls in (MLP, ResNet, CNN, ResCNN, DenseNet)}


def spec_from_dict(d: dict):
    """Rebuild a spec from ``{"class": name, **fields}`` (reference files, verdict JSON)."""
    d = dict(d)
    name = d.pop("class")
    if name not in SPECS:
        raise ValueError(f"unknown spec class {name!r}; known: {tuple(SPECS)}")
    if isinstance(d.get("alpha"), list):
        d["alpha"] = tuple(d["alpha"])
    return SPECS[name](**d)

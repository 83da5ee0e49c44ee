"""Conformance kit: the suite's property tests, pointed at anyone's kernel implementation.

    from reskernels.proofs_check.conformance import conform
    report = conform(my_kernel, ResNet(depth=4, alpha=0.5), kind="ntk", rtol=1e-10)
    print(report)              # a summary, then one block per property: both tiers, where it fails, values
    report.raise_if_failed()   # inside a pytest test: an AssertionError with the counterexamples

``my_kernel(X, Z)`` takes float64 numpy arrays of inputs -- (n, d) for MLP / ResNet, (n, P, C)
or (n, H, W, C) for CNN / ResCNN -- and returns the n x m Gram matrix in any array type that
``numpy.asarray`` converts (JAX, PyTorch on CPU, CuPy via ``.get()`` in the wrapper, lists).
A kernel written for several specs (``fn(X, Z, depth=..., alpha=...)``) is bound to one with
:func:`bind_spec` (the CLI's ``--pass-spec``).

Every property is run by hypothesis (derandomised, no example database), which searches the input
space and *shrinks* a failure to a small counterexample; the report keeps that counterexample, the
kernel's value next to the expected one, and the observed error.  Properties (with ``scale`` =
sqrt(K(x,x) K(z,z)) of the reference kernel):

* ``agrees_with_gram``  |K_user - gram(spec)| <= atol + rtol scale, entrywise, random inputs
  (including Z = X, so diagonals and exact duplicates are covered);
* ``symmetric``         K(X, X) = K(X, X)^T within rtol scale;
* ``psd``               min eig K(X, X) >= -rtol n max diag;
* ``homogeneous``       K(a x, b z) = a b K(x, z), a, b > 0 (positive homogeneity of bias-free ReLU nets);
* ``rotation_invariant`` K(x Q, z Q) = K(x, z) for orthogonal Q (for conv specs Q acts on channels,
  the same Q at every pixel);
* ``per_pixel_rotation`` (conv center / flatten) an independent Q_i per pixel leaves K unchanged
  (multi-dot-product kernels, docs/spectral.md §6.1);
* ``shift_invariant``   (conv flatten / gap) K(tau x, tau z) = K(x, z) for circular shifts; for gap
  also K(tau_a x, tau_b z) = K(x, z);
* ``diagonal_closed_form`` K(x, x) |x|^-2 on unit inputs (unit pixels for conv) equals the closed form
  of :func:`diagonal_closed_form`, exact arithmetic, no recursion;
* ``depth1_identity``   (depth-1 FC specs) the arc-cosine closed forms
  MLP(1): NNGP = iv c/2 |x||z| kappa1(t), NTK = iv c/2 |x||z| (kappa1(t) + t kappa0(t));
  ResNet(1, alpha), a = alpha^2 c / 2: NNGP = iv (<x,z> + a |x||z| kappa1(t)), hidden NTK =
  a iv |x||z| (kappa1 + t kappa0), all-trained NTK = hidden + NNGP + (1 + a kappa0) iv <x,z>;
* ``funk_hecke_spectrum`` (FC specs) the Funk-Hecke eigenvalues of the user's kernel on S^(d-1)
  (Gauss-Legendre quadrature in the angle, 256 nodes) match :func:`numerics.eigenvalues` for
  k <= 8 within rtol K(1) + quadrature error, and are >= -rtol K(1) (Mercer / Schoenberg).

**Two tiers.**  Every evaluation is judged twice: by the *numerics tier* (the user's ``rtol``) and by
the *mathematics tier* (``math_rtol``, default 1e-6, loose enough that a correct float64
implementation written with plain ``arccos`` passes).  Failing only the numerics tier means the
formula is right and the arithmetic loses digits; failing the mathematics tier means a wrong
formula.  Errors are reported in units of the tier's tolerance ("worst 3.1e+01 x tolerance").

**Where it fails.**  Every kernel entry that was checked is classified by its input pair: a zero
input, nearly parallel or nearly antiparallel inputs (|cos| > 1 - 1e-6; for conv specs: any such pixel
pair), or generic.  When the failures of a property all sit at such inputs (and a few random generic
inputs, evaluated after the search, pass) the report says so and what it usually means: arccos of a
rounded correlation loses ~sqrt(eps) near |cos| = 1 -- use half angles.

**Non-finite values, exceptions, warnings, time.**  A kernel returning NaN or inf is reported in one
line with the input pair; an exception raised by the kernel is reported as such, while one raised by
the reference (``gram``, ``eigenvalues``) or the kit marks the property ``error`` ("not your kernel").
Warnings the kernel emits are captured, counted and summarised in the report.  ``max_seconds`` bounds
each property (the search, and then the shrinking, stop and the property reports what it found);
``progress`` writes one live line per property to stderr.  A single kernel call is not interrupted by
``max_seconds`` (it is checked between calls); ``call_timeout`` (default: ``max_seconds``) runs each call in
a worker thread and abandons one that has not returned by then: the property reports "did not return
within ..." with the inputs' shapes, and no further call is made (a Python thread cannot be killed:
the abandoned call runs on in the background until the process exits).  Without either, a kernel
that never returns hangs the run.

The tolerance is the user's: pick ``rtol`` from the arithmetic the implementation claims
(1e-10 is a safe float64 target for a careful implementation; float32 needs ~1e-5).
"""
from __future__ import annotations

import ast
import collections
import dataclasses
import inspect
import math
import os
import sys
import threading
import time
import warnings
from dataclasses import dataclass, field

import numpy as np

from reskernels.theory import SPECS, check_kind

#: every property the kit knows, in the order they run
PROPERTIES = ("agrees_with_gram", "symmetric", "psd", "homogeneous", "rotation_invariant", "per_pixel_rotation",
              "shift_invariant", "diagonal_closed_form", "depth1_identity", "funk_hecke_spectrum")

#: |cos| > 1 - NEAR_PARALLEL counts as nearly parallel / antiparallel
NEAR_PARALLEL = 1e-6
#: the default rtol of the mathematics tier
MATH_RTOL = 1e-6

# categories of a checked kernel entry (by its input pair)
GENERIC, ZERO, PARALLEL, ANTIPARALLEL, AGGREGATE = 0, 1, 2, 3, 4
_DEGENERATE = (ZERO, PARALLEL, ANTIPARALLEL)


def _category_label(code: int, conv: bool) -> str:
    what = "pixels" if conv else "inputs"
    return {GENERIC: f"generic {what}", ZERO: f"zero {what}", PARALLEL: f"nearly parallel {what}",
            ANTIPARALLEL: f"nearly antiparallel {what}", AGGREGATE: "aggregate quantities"}[code]


def parse_spec(text: str):
    """``"ResNet(depth=4, alpha=0.5)"`` -> the spec.  Only the spec classes of the registry
    :data:`reskernels.theory.SPECS` and literal arguments are accepted (no evaluation of arbitrary
    code)."""
    try:
        node = ast.parse(text.strip(), mode="eval").body
    except SyntaxError as e:
        raise ValueError(f"cannot parse spec {text!r}: {e.msg}") from None
    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in SPECS):
        raise ValueError(f"spec must be a call of one of {sorted(SPECS)}, got {text!r}")
    try:
        args = [ast.literal_eval(a) for a in node.args]
        kwargs = {k.arg: ast.literal_eval(k.value) for k in node.keywords}
    except ValueError:
        raise ValueError(f"spec arguments must be literals, got {text!r}") from None
    try:
        return SPECS[node.func.id](*args, **kwargs)
    except TypeError as e:        # an unknown keyword or a missing argument: a usage error, say which
        raise ValueError(f"{text!r}: {e}") from None


def diagonal_closed_form(arch, kind: str) -> float:
    """K(x, x) for a unit input (unit pixels for center / flatten conv readouts), in closed form.

    With a_l = alpha_l^2 c / 2 and iv = input_var, c = weight_var (docs/conventions.md recursions at rho = 1,
    where Phi1(S) = (c/2) S and Phi0 = c/2):

    * MLP(L):    NNGP iv (c/2)^L;  NTK iv (c/2)^L (L + 1) (all trained), iv (c/2)^L (L - 1) (hidden);
    * ResNet(L): NNGP iv prod_l (1 + a_l);  NTK iv sum_l 2 a_l prod_{j != l} (1 + a_j) (hidden),
      plus 2 iv prod_l (1 + a_l) when all layers are trained;
    * CNN / ResCNN with center or flatten readout: the same as MLP / ResNet of the same depth
      (every pixel sees the same variances; docs/papers.md BARZILAI-DIAG).  gap has no pixel-free form.

    The spec is read through its properties only: ``is_conv`` and ``readout`` (gap), ``has_alpha``
    (residual: the product over ``block_gains()``; otherwise (c/2)^L), ``trained``.
    """
    check_kind(kind)
    if arch.is_conv and arch.readout == "gap":
        raise ValueError("the gap readout's diagonal depends on the input's pixel correlations")
    iv, c = arch.input_var, arch.weight_var
    if not arch.has_alpha:
        L = arch.depth
        base = iv * (c / 2) ** L
        if kind == "nngp":
            return base
        return base * ((L + 1) if arch.trained == "all" else (L - 1))
    gains = arch.block_gains()
    prod = iv * math.prod(1 + a for a in gains)
    if kind == "nngp":
        return prod
    hidden = iv * sum(2 * a * math.prod(1 + b for j, b in enumerate(gains) if j != l) for l, a in enumerate(gains))
    return hidden + (2 * prod if arch.trained == "all" else 0.0)


# ---------------------------------------------------------------------------------------------
# which properties apply to a spec
# ---------------------------------------------------------------------------------------------

# the architectures the closed forms (diagonal, depth 1) are written for; read by name, not by class
_CLOSED_FORM_ARCHS = ("MLP", "ResNet", "CNN", "ResCNN")


def _relu_bias_free(spec) -> bool:
    act = getattr(spec, "activation", "relu")
    key = getattr(act, "key", None)
    name = getattr(act, "name", act)
    return (key is None or tuple(key) == ("relu",)) and name == "relu" and not getattr(spec, "bias_var", 0)


def _homogeneous_net(spec) -> bool:
    act = getattr(spec, "activation", "relu")
    homog = getattr(act, "homogeneous", act == "relu")
    return bool(homog) and not getattr(spec, "bias_var", 0)


def available_properties(spec) -> dict:
    """``{property name: None if it applies to spec, else the reason it does not}``, in run order."""
    conv = spec.is_conv
    readout = getattr(spec, "readout", None)
    closed = type(spec).__name__ in _CLOSED_FORM_ARCHS and _relu_bias_free(spec)
    why = {
        "homogeneous": None if _homogeneous_net(spec) else "needs a positively homogeneous activation and no bias",
        "per_pixel_rotation": None if conv and readout in ("center", "flatten") else
        "conv specs with a center or flatten readout only",
        "shift_invariant": None if conv and readout in ("flatten", "gap") else
        "conv specs with a flatten or gap readout only",
        "diagonal_closed_form": None if closed and not (conv and readout == "gap") else
        ("the gap readout's diagonal has no pixel-free closed form" if closed else
         "closed form for bias-free ReLU MLP / ResNet / CNN / ResCNN only"),
        "depth1_identity": None if closed and not conv and spec.depth == 1 else
        "depth-1 bias-free ReLU MLP / ResNet only",
        "funk_hecke_spectrum": None if not conv else "fully connected specs only",
    }
    return {name: why.get(name) for name in PROPERTIES}


# ---------------------------------------------------------------------------------------------
# binding a multi-spec kernel function to one spec (the CLI's --pass-spec)
# ---------------------------------------------------------------------------------------------

def spec_fields(spec) -> dict:
    """The spec's dataclass fields as ``{name: value}`` (the activation by its name when it has one)."""
    out = {}
    for f in dataclasses.fields(spec):
        v = getattr(spec, f.name)
        out[f.name] = getattr(v, "name", v) if f.name == "activation" else v
    return out


def bind_spec(fn, spec, kind: str = "ntk", mode: str = "fields"):
    """Bind ``fn`` to ``spec``: returns ``(kernel, passed, not_passed)``.

    * ``mode="fields"``: ``kernel(X, Z) = fn(X, Z, **fields)`` with the spec's fields (``depth``,
      ``alpha``, ``input_var``, ``weight_var``, ``trained``, ``activation`` (its name), ...) that ``fn``
      has a parameter of that name for (all of them if it takes ``**kwargs``);
    * ``mode="object"``: ``kernel(X, Z) = fn(X, Z, spec=spec)`` (``fn`` needs a ``spec`` parameter or
      ``**kwargs``).

    In both modes ``kind=kind`` is passed too when ``fn`` has a ``kind`` parameter.  ``passed`` is the
    dict of keyword arguments given to ``fn``; ``not_passed`` the spec fields ``fn`` takes no
    parameter for (your function then uses its own value for them).  Raises ``ValueError`` when
    ``fn`` accepts none of them.
    """
    if mode not in ("fields", "object"):
        raise ValueError(f"mode must be 'fields' or 'object', got {mode!r}")
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        raise ValueError(f"cannot read the signature of {fn!r} to pass it the spec") from None
    var_kw = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    named = {n for n, p in params.items()
             if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)}

    def takes(name):
        return var_kw or name in named

    fname = getattr(fn, "__name__", repr(fn))
    if mode == "object":
        if not takes("spec"):
            raise ValueError(f"{fname} has no parameter named 'spec' (needed to pass the spec object)")
        passed, not_passed = {"spec": spec}, {}
    else:
        fields = spec_fields(spec)
        passed = {k: v for k, v in fields.items() if takes(k)}
        not_passed = {k: v for k, v in fields.items() if not takes(k)}
        if not passed:
            raise ValueError(f"{fname} has no parameter named after a spec field "
                             f"({', '.join(fields)}); give it e.g. depth=..., alpha=... keyword parameters")
    if takes("kind") and "kind" not in passed:
        passed["kind"] = kind

    def kernel(X, Z):
        return fn(X, Z, **passed)
    kernel.__name__ = fname
    return kernel, dict(passed), not_passed


# ---------------------------------------------------------------------------------------------
# results and report
# ---------------------------------------------------------------------------------------------

def _g(x: float) -> str:
    """1e-06 -> '1e-6'."""
    s = f"{x:g}"
    if "e" in s:
        mant, exp = s.split("e")
        s = f"{mant}e{int(exp)}"
    return s


def _one_line(v) -> str:
    if isinstance(v, np.ndarray):
        return np.array2string(v, precision=17, separator=", ", max_line_width=10 ** 6).replace("\n", "")
    return repr(v)


def _short(v):
    if isinstance(v, np.ndarray):
        return np.array2string(v, precision=17, threshold=64, max_line_width=100)
    return repr(v)


@dataclass
class PropertyResult:
    """One property's outcome.  ``status`` is the overall verdict at the user's rtol:

    * ``"pass"`` / ``"fail"``: the numerics tier (and any NaN / exception of the kernel) decides;
    * ``"error"``: the reference (gram, eigenvalues) or the kit raised -- the property could not be
      checked, which says nothing about the kernel;
    * ``"skipped"``: not applicable to the spec.

    ``error`` is the worst observed error of the numerics tier in units of its tolerance (> 1
    fails), ``math_status`` / ``math_error`` the same at the mathematics tier."""
    name: str
    status: str                  # "pass" | "fail" | "error" | "skipped"
    error: float | None = None   # numerics tier: worst observed error, in units of the tolerance
    criterion: str = ""
    counterexample: dict | None = None
    message: str = ""
    math_status: str | None = None
    math_error: float | None = None
    math_counterexample: dict | None = None
    values: list = field(default_factory=list)        # "kernel ... vs expected ..." at the counterexample
    math_values: list = field(default_factory=list)
    where: list = field(default_factory=list)         # where the failures are, per tier
    fail_categories: frozenset = frozenset()          # categories of the numerics tier's failing entries
    math_fail_categories: frozenset = frozenset()
    nonfinite: str | None = None                      # "the kernel returned NaN for ..."
    raised: str | None = None                         # "the kernel raised ..."
    examples: int = 0
    seconds: float = 0.0
    stopped: bool = False                             # cut short by max_seconds
    single_tier: bool = False

    @property
    def numerics_failed(self) -> bool:
        return self.error is not None and not self.error <= 1.0

    @property
    def math_failed(self) -> bool:
        return self.math_error is not None and not self.math_error <= 1.0

    def _tier(self, err, failed, label):
        if err is None:
            return f"{label}not measured"
        return f"{label}{'FAIL' if failed else 'pass'}, worst {err:.1e} x tolerance"

    def __str__(self):
        s = f"{self.name:<22} {self.status:<8}"
        if self.status == "skipped":
            return s + (f" {self.message}" if self.message else "")
        if self.single_tier:
            s += " " + self._tier(self.error, self.numerics_failed, "")
        else:
            s += (" " + self._tier(self.error, self.numerics_failed, "numerics: ") + "; "
                  + self._tier(self.math_error, self.math_failed, "mathematics: "))
        s += f"  [{self.examples} example{'s' if self.examples != 1 else ''}, {self.seconds:.1f} s]"
        if self.criterion:
            s += f"\n    criterion: {self.criterion}"
        if self.nonfinite:
            s += f"\n    {self.nonfinite.split(' -- ')[0]}"
        if self.message:
            s += f"\n    {self.message}"
        for w in self.where:
            s += f"\n    {w}"
        for title, cex, vals in (("mathematics tier", self.math_counterexample, self.math_values),
                                 ("numerics tier" if not self.single_tier else "", self.counterexample, self.values)):
            if not cex and not vals:
                continue
            if cex is self.math_counterexample and title.startswith("numerics"):
                continue
            s += f"\n    counterexample{f' ({title})' if title else ''}:"
            for k, v in (cex or {}).items():
                s += f"\n    {k} = " + _short(v).replace("\n", "\n" + " " * (7 + len(k)))
            for line in vals:
                s += f"\n    {line}"
        return s


_HINT_ANGLE = ("arccos of a rounded correlation loses ~sqrt(eps) (about 1e-8 relative) where |cos| is "
               "close to 1: compute angles from half angles, theta = 2 atan2(|u - v|, |u + v|) for unit u, v, "
               "and carry 1 - rho (or the angle) through the layers")
_HINT_ZERO = ("at a zero input every entry is 0 (K(0, z) = 0 by positive homogeneity): guard the division by "
              "the norm (take the correlation as 0 there) rather than returning 0/0 or adding an epsilon")


@dataclass
class ConformanceReport:
    spec: object
    kind: str
    rtol: float
    atol: float
    results: list = field(default_factory=list)
    math_rtol: float = MATH_RTOL
    warnings: collections.Counter = field(default_factory=collections.Counter)
    max_seconds: float | None = None

    @property
    def single_tier(self) -> bool:
        return self.math_rtol <= self.rtol

    @property
    def passed(self) -> bool:
        """Every property passes the numerics tier (the user's rtol) and none errored."""
        return all(r.status not in ("fail", "error") for r in self.results)

    @property
    def passed_mathematics(self) -> bool:
        """Every property passes the mathematics tier (no NaN, no exception of the kernel either)."""
        return all(not (r.math_failed or r.nonfinite or r.raised) and r.status != "error" for r in self.results)

    @property
    def failures(self):
        return [r for r in self.results if r.status == "fail"]

    @property
    def errors(self):
        return [r for r in self.results if r.status == "error"]

    def _where(self, results, attr) -> str:
        cats = set()
        for r in results:
            cats |= set(getattr(r, attr))
        cats.discard(AGGREGATE)
        if not cats:
            return ""
        if GENERIC in cats:
            return " at generic inputs"
        conv = self.spec.is_conv
        return " at " + " and ".join(_category_label(c, conv) for c in sorted(cats))

    def summary(self) -> list:
        """The report's head: one sentence on the tiers, then NaN / exception / error lines and hints."""
        lines = []
        nonfinite = [r for r in self.results if r.nonfinite]
        if nonfinite:
            names = ", ".join(r.name for r in nonfinite)
            first = min(nonfinite, key=lambda r: len(r.nonfinite))
            lines.append(f"{first.nonfinite.split(' -- ')[0]} (found by {len(nonfinite)} "
                         f"propert{'y' if len(nonfinite) == 1 else 'ies'}: {names})")
        raised = [r for r in self.results if r.raised]
        if raised:
            lines.append(f"{raised[0].raised} (in {', '.join(r.name for r in raised)})")
        num = [r for r in self.results if r.numerics_failed]
        mth = [r for r in self.results if r.math_failed]
        qual = " (counting only the inputs where the kernel returned finite values)" if (nonfinite or raised) else ""
        if self.single_tier:
            lines.append(f"{'fails' if num else 'passes'} at rtol {_g(self.rtol)}{self._where(num, 'fail_categories')}"
                         f"{qual} (one tier: your rtol is not below the mathematics tier's {_g(self.math_rtol)})")
        else:
            lines.append(f"{'fails' if num else 'passes'} the numerics tier (rtol {_g(self.rtol)})"
                         f"{self._where(num, 'fail_categories')}; "
                         f"{'fails' if mth else 'passes'} the mathematics tier (rtol {_g(self.math_rtol)})"
                         f"{self._where(mth, 'math_fail_categories')}{qual}")
        errs = self.errors
        if errs:
            lines.append(f"could not check {', '.join(r.name for r in errs)}: {errs[0].message}")
        # hints, from the categories where the failures sit (none when something fails at generic inputs)
        cats = set()
        for r in num:
            cats |= set(r.fail_categories)
        if GENERIC in cats:
            cats = set()
        if cats & {PARALLEL, ANTIPARALLEL}:
            tail = (": this is a numerics issue, not a mathematics one (the mathematics tier passes)"
                    if not mth and not self.single_tier else "")
            lines.append(f"{'why' if tail else 'possible cause'}: {_HINT_ANGLE}{tail}")
        if ZERO in cats or any("zero input" in (r.nonfinite or "") or "zero pixel" in (r.nonfinite or "")
                               for r in nonfinite):
            lines.append(f"why: {_HINT_ZERO}")
        stopped = [r.name for r in self.results if r.stopped]
        if stopped:
            lines.append(f"stopped by the time budget (max_seconds={_g(self.max_seconds)}): {', '.join(stopped)}")
        if self.warnings:
            total = sum(self.warnings.values())
            lines.append(f"the kernel emitted {total} warning{'s' if total != 1 else ''} (captured, not shown "
                         f"while running):")
            top = self.warnings.most_common(5)
            for (cat, msg, where), n in top:
                lines.append(f"    {n} x {cat}: {msg}  ({where})")
            if len(self.warnings) > len(top):
                lines.append(f"    ... and {len(self.warnings) - len(top)} more kinds")
        return lines

    def __str__(self):
        head = f"conformance of an {self.kind.upper()} kernel to {self.spec!r}: {'PASS' if self.passed else 'FAIL'}"
        tiers = (f"tolerance: rtol={_g(self.rtol)}, atol={_g(self.atol)}" if self.single_tier else
                 f"tiers: numerics rtol={_g(self.rtol)}, mathematics rtol={_g(self.math_rtol)}; atol={_g(self.atol)}")
        lines = [head] + [f"  {s}" for s in self.summary()] + [f"  {tiers}; errors in units of the tier's tolerance"]
        return "\n".join(lines + [""] + [str(r) for r in self.results])

    def raise_if_failed(self):
        if not self.passed:
            raise AssertionError(str(self))


# ---------------------------------------------------------------------------------------------
# measurements
# ---------------------------------------------------------------------------------------------

@dataclass
class _Measure:
    """Checked quantities of one evaluation: ``got`` vs ``want`` entrywise, tolerance
    ``atol + (max(rtol, rtol_floor) + rtol_extra) * scale``; ``one_sided``: only got < want fails."""
    got: np.ndarray
    want: np.ndarray
    scale: np.ndarray
    cats: np.ndarray
    entry: object                   # callable(flat index) -> str
    got_label: str = "kernel"
    want_label: str = "expected"
    one_sided: bool = False
    rtol_floor: float = 0.0
    rtol_extra: float = 0.0

    def __post_init__(self):
        self.got, self.want, self.scale = (np.asarray(a, dtype=np.float64) for a in (self.got, self.want, self.scale))
        self.cats = np.broadcast_to(np.asarray(self.cats), self.got.shape)

    def dev(self):
        return np.maximum(self.want - self.got, 0.0) if self.one_sided else np.abs(self.got - self.want)

    def tol(self, rtol, atol):
        return atol + (max(rtol, self.rtol_floor) + self.rtol_extra) * self.scale

    def errors(self, rtol, atol):
        return (self.dev() / (self.tol(rtol, atol) + 1e-300)).ravel()


def _worst(ms, rtol, atol):
    """(worst error, measure, flat index); NaN counts as the worst."""
    best = (-1.0, None, None)
    for m in ms:
        e = m.errors(rtol, atol)
        if not e.size:
            continue
        e = np.where(np.isnan(e), np.inf, e)
        k = int(np.argmax(e))
        if e[k] > best[0]:
            best = (float(e[k]), m, k)
    return best


def _value_lines(ms, rtol, atol):
    err, m, k = _worst(ms, rtol, atol)
    if m is None:
        return []
    got, want = m.got.ravel()[k], m.want.ravel()[k]
    dev, tol = m.dev().ravel()[k], np.broadcast_to(m.tol(rtol, atol), m.got.shape).ravel()[k]
    if m.one_sided:
        return [f"{m.entry(k)}: {m.got_label} {got:.17g} vs {m.want_label} >= {want:.17g}; "
                f"shortfall {dev:.2e} {'>' if dev > tol else '<='} tolerance {tol:.2e} ({err:.1e} x tolerance)"]
    return [f"{m.entry(k)}: {m.got_label} {got:.17g} vs {m.want_label} {want:.17g}; "
            f"|diff| {dev:.2e} {'>' if dev > tol else '<='} tolerance {tol:.2e} ({err:.1e} x tolerance)"]


def _classify(A, B, conv):
    """Category code per pair (A[i], B[j]): zero > nearly parallel > nearly antiparallel > generic.
    Conv inputs are judged by their pixels (any zero pixel; any nearly (anti)parallel pixel pair)."""
    n, m = len(A), len(B)
    if conv:
        a = A.reshape(n, -1, A.shape[-1])
        b = B.reshape(m, -1, B.shape[-1])
        na, nb = np.linalg.norm(a, axis=-1), np.linalg.norm(b, axis=-1)          # (n, p), (m, p)
        zero = (na == 0).any(axis=1)[:, None] | (nb == 0).any(axis=1)[None, :]
        ua = a / np.where(na > 0, na, 1.0)[..., None]
        ub = b / np.where(nb > 0, nb, 1.0)[..., None]
        cos = np.einsum("ipc,jqc->ijpq", ua, ub)
        live = (na > 0)[:, None, :, None] & (nb > 0)[None, :, None, :]
        par = ((cos > 1 - NEAR_PARALLEL) & live).any(axis=(2, 3))
        anti = ((cos < -1 + NEAR_PARALLEL) & live).any(axis=(2, 3))
    else:
        na, nb = np.linalg.norm(A, axis=1), np.linalg.norm(B, axis=1)
        zero = (na == 0)[:, None] | (nb == 0)[None, :]
        N = np.outer(na, nb)
        cos = np.divide(A @ B.T, N, out=np.zeros((n, m)), where=N > 0)
        par, anti = cos > 1 - NEAR_PARALLEL, cos < -1 + NEAR_PARALLEL
    out = np.full((n, m), GENERIC, dtype=np.int8)
    out[anti] = ANTIPARALLEL
    out[par] = PARALLEL
    out[zero] = ZERO
    return out


def _set_category(X, conv):
    """One category for a whole point set (psd): the most degenerate pair of distinct points."""
    if len(X) == 1:
        return ZERO if not np.any(X) else PARALLEL
    c = _classify(X, X, conv)
    off = c[~np.eye(len(X), dtype=bool)]
    for code in _DEGENERATE:
        if (off == code).any():
            return code
    return GENERIC


# ---------------------------------------------------------------------------------------------
# running one property
# ---------------------------------------------------------------------------------------------

class _KernelProblem(Exception):
    """Raised by the wrapper around the user's kernel: hypothesis shrinks these like failures."""
    example = None


class _KernelRaised(_KernelProblem):
    pass


class _KernelNonFinite(_KernelProblem):
    def __init__(self, text):
        super().__init__(text)
        self.text = text


class _Failed(AssertionError):
    def __init__(self, tier, err):
        super().__init__(f"{tier} tier: error {err:.3e} x tolerance")
        self.tier, self.err = tier, err
        self.finding = None


class _MathFail(_Failed):
    pass


class _NumFail(_Failed):
    pass


class _Abort(BaseException):
    """Not an Exception: hypothesis lets it through at once (no shrinking of the kit's own errors)."""


class _OutOfTime(_Abort):
    pass


class _ReferenceRaised(_Abort):
    def __init__(self, what, exc):
        super().__init__(f"{what} raised {type(exc).__name__}: {exc}")
        self.what, self.exc = what, exc


class _KitRaised(_Abort):
    def __init__(self, exc):
        super().__init__(f"{type(exc).__name__}: {exc}")
        self.exc = exc


def _size_key(example):
    arrs = []

    def walk(e):
        if isinstance(e, np.ndarray):
            arrs.append(e)
        elif isinstance(e, (tuple, list)):
            for x in e:
                walk(x)
        elif isinstance(e, (int, float)):
            arrs.append(np.array([e], dtype=float))
    walk(example)
    rows = sum(len(a) if a.ndim else 1 for a in arrs)
    return (rows, sum(int(np.count_nonzero(a)) for a in arrs), float(sum(np.abs(a).sum() for a in arrs)))


class _Progress:
    """One live line per property on ``stream``: rewritten in place on a terminal, otherwise a line
    at the start, one every 10 s and one at the end."""

    def __init__(self, enabled, stream=None):
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.last = 0.0

    def start(self, i, n, name, planned):
        self.i, self.n, self.name, self.planned = i, n, name, planned
        self.t0 = self.last = time.perf_counter()
        if self.enabled and not self.tty:
            self._print(f"[{i}/{n}] {name}: running ({planned} example{'s' if planned != 1 else ''} planned)")

    def update(self, count, failing):
        if not self.enabled:
            return
        now = time.perf_counter()
        if now - self.last < (0.2 if self.tty else 10.0):
            return
        self.last = now
        text = (f"[{self.i}/{self.n}] {self.name}: {count} examples done"
                f"{f', {failing} failing (shrinking)' if failing else ''}, {now - self.t0:.1f} s")
        if self.tty:
            print("\r" + text.ljust(100), end="", file=self.stream, flush=True)
        else:
            self._print(text)

    def done(self, res):
        if not self.enabled:
            return
        text = (f"[{self.i}/{self.n}] {self.name}: {res.status}, {res.examples} example"
                f"{'s' if res.examples != 1 else ''}, {res.seconds:.1f} s"
                f"{' (stopped by the time budget)' if res.stopped else ''}")
        if self.tty:
            print("\r" + text.ljust(100), file=self.stream, flush=True)
        else:
            self._print(text)

    def _print(self, text):
        print(text, file=self.stream, flush=True)


def _collect(exc, out):
    """Our exceptions inside what hypothesis raised (a single one or an ExceptionGroup)."""
    if isinstance(exc, (_Failed, _KernelProblem)):
        out.append(exc)
    for sub in getattr(exc, "exceptions", ()) or ():
        _collect(sub, out)
    return out


def _run_property(name, criterion, strategy, body, max_examples, seed, *, rtol, math_rtol, atol, conv,
                  labels=(), probe=None, inherent=None, max_seconds=None, progress=None):
    """Run ``body(example) -> [_Measure]`` under hypothesis, judged at both tiers; shrink the
    failures of each tier and of the kernel (exceptions, NaN) separately; return a PropertyResult."""
    from hypothesis import HealthCheck, Phase, Verbosity, given, settings
    from hypothesis import seed as hseed

    t0 = time.perf_counter()
    state = {"count": 0, "failing": 0}
    # category code -> [entries, failing (numerics), failing (mathematics), worst numerics, worst mathematics]
    stats = collections.defaultdict(lambda: [0, 0, 0, 0.0, 0.0])
    best = {}                                                       # kind -> (size key, exception)

    def keep(kind, exc, example):
        k = _size_key(example)
        if kind not in best or k <= best[kind][0]:
            best[kind] = (k, exc)

    def measure(example):
        try:
            return body(example)
        except (_KernelProblem, _Abort):
            raise
        except Exception as e:                 # neither the kernel (wrapped) nor the reference (wrapped)
            raise _KitRaised(e) from e

    def record(ms):
        for m in ms:
            en, em = m.errors(rtol, atol), m.errors(math_rtol, atol)
            cats = m.cats.ravel()
            for code in np.unique(cats):
                sel = cats == code
                s = stats[int(code)]
                s[0] += int(sel.sum())
                s[1] += int((~(en[sel] <= 1.0)).sum())
                s[2] += int((~(em[sel] <= 1.0)).sum())
                s[3] = max(s[3], float(np.nanmax(np.where(np.isnan(en[sel]), np.inf, en[sel]))))
                s[4] = max(s[4], float(np.nanmax(np.where(np.isnan(em[sel]), np.inf, em[sel]))))

    @hseed(seed)
    @settings(max_examples=max_examples, deadline=None, database=None, derandomize=False,
              suppress_health_check=list(HealthCheck), report_multiple_bugs=True, verbosity=Verbosity.quiet,
              phases=[Phase.explicit, Phase.generate, Phase.shrink])
    @given(strategy)
    def prop(example):
        if max_seconds is not None and time.perf_counter() - t0 > max_seconds:
            raise _OutOfTime()
        state["count"] += 1
        if progress:
            progress.update(state["count"], state["failing"])
        try:
            ms = measure(example)
        except _KernelProblem as e:
            e.example = example
            keep(type(e).__name__, e, example)
            state["failing"] += 1
            raise
        record(ms)
        wm, wn = _worst(ms, math_rtol, atol)[0], _worst(ms, rtol, atol)[0]
        if not wm <= 1.0:
            state["failing"] += 1
            exc = _MathFail("mathematics", wm)
            exc.finding = (example, ms)
            keep("math", exc, example)
            raise exc
        if not wn <= 1.0:
            state["failing"] += 1
            exc = _NumFail("numerics", wn)
            exc.finding = (example, ms)
            keep("num", exc, example)
            raise exc

    res = PropertyResult(name, "pass", criterion=criterion, single_tier=math_rtol <= rtol)
    found, notes = None, []
    try:
        prop()
    except _OutOfTime:
        # cut short: the search (fewer examples than planned) or the shrinking of a failure
        res.stopped = state["count"] < max_examples or (bool(best) and max_examples > 1)
    except _ReferenceRaised as e:
        res.status, res.message = "error", f"the reference {e} -- not your kernel; this property could not be checked"
    except _KitRaised as e:
        res.status, res.message = "error", (f"the conformance kit raised {e} -- a bug in "
                                            "reskernels.proofs_check.conformance, not in your kernel")
    except Exception as e:                     # noqa: BLE001 -- what hypothesis raised at the end
        found = _collect(e, [])
        if any("Flaky" in type(x).__name__ for x in [e, *getattr(e, "exceptions", ())]):
            notes.append("hypothesis could not reproduce a failure when replaying it: is the kernel deterministic?")
        if not found and not best:
            res.status, res.message = "error", f"hypothesis raised {type(e).__name__}: {e}"
    # the shrunk examples hypothesis re-raised, else (time budget) the smallest failing ones we saw
    final = {}
    for exc in found or ():
        kind = {"_MathFail": "math", "_NumFail": "num"}.get(type(exc).__name__, type(exc).__name__)
        final[kind] = exc
    for kind, (_, exc) in best.items():
        final.setdefault(kind, exc)

    # the tiers, from every evaluation
    def tier_worst(i):
        vals = [s[i] for s in stats.values() if s[0]]
        return max(vals) if vals else None
    res.error, res.math_error = tier_worst(3), tier_worst(4)
    res.fail_categories = frozenset(c for c, s in stats.items() if s[1])
    res.math_fail_categories = frozenset(c for c, s in stats.items() if s[2])
    if res.status != "error":
        res.math_status = "fail" if res.math_failed else ("pass" if res.math_error is not None else None)

    labels = labels or ()
    if "math" in final:
        example, ms = final["math"].finding
        res.math_counterexample = _describe(example, labels) if example is not None else None
        res.math_values = _value_lines(ms, math_rtol, atol)
    if "num" in final:
        example, ms = final["num"].finding
        res.counterexample = _describe(example, labels) if example is not None else None
        res.values = _value_lines(ms, rtol, atol)
    elif "math" in final:                      # a mathematics failure is a numerics failure too
        res.counterexample, res.values = res.math_counterexample, _value_lines(final["math"].finding[1], rtol, atol)
    if "_KernelNonFinite" in final:
        e = final["_KernelNonFinite"]
        res.nonfinite = e.text
        if res.counterexample is None and e.example is not None:
            res.counterexample = _describe(e.example, labels)
    if "_KernelRaised" in final:
        e = final["_KernelRaised"]
        res.raised = res.message = str(e)
        if res.counterexample is None and e.example is not None:
            res.counterexample = _describe(e.example, labels)
    if res.status != "error" and (res.numerics_failed or res.nonfinite or res.raised or res.message):
        res.status = "fail"

    # where the failures sit; a few generic inputs confirm that they pass
    if res.status == "fail" and res.fail_categories and AGGREGATE not in res.fail_categories:
        degenerate_only = GENERIC not in res.fail_categories
        if degenerate_only and probe is not None and inherent is None and not (
                max_seconds is not None and time.perf_counter() - t0 > max_seconds):
            rng = np.random.default_rng(seed + 7919)
            for _ in range(4):
                try:
                    record(measure(probe(rng)))
                except (_KernelProblem, _Abort):
                    break
            res.error, res.math_error = tier_worst(3), tier_worst(4)
            res.fail_categories = frozenset(c for c, s in stats.items() if s[1])
            res.math_fail_categories = frozenset(c for c, s in stats.items() if s[2])
            res.math_status = "fail" if res.math_failed else res.math_status
        res.where = _where_lines(stats, res, conv, inherent)
    if res.stopped:
        notes.append(f"stopped by the time budget (max_seconds={_g(max_seconds)}) after {state['count']} examples"
                     + ("; shrinking was cut short, the counterexample may not be minimal" if final else ""))
    if notes:
        res.message = "; ".join(([res.message] if res.message else []) + notes)
    res.examples = state["count"]
    res.seconds = time.perf_counter() - t0
    return res


def _where_lines(stats, res, conv, inherent):
    lines = []
    tiers = [("numerics", 1, 3, res.fail_categories)]
    if not res.single_tier and res.math_fail_categories:
        tiers.append(("mathematics", 2, 4, res.math_fail_categories))
    for tier, fi, wi, cats in tiers:
        if not cats:
            continue
        nfail = sum(s[fi] for s in stats.values())
        label = f"{tier}-tier failures" if not res.single_tier else "failures"
        if GENERIC not in cats:
            where = " and ".join(_category_label(c, conv) for c in sorted(cats))
            line = f"{label} only at {where}: all {nfail} failing entries"
            g = stats.get(GENERIC)
            if inherent is not None:
                line += f" (this property only checks {inherent})"
            elif g and g[0]:
                line += f"; {g[0]} entries at generic inputs pass (worst {g[wi]:.1e} x tolerance)"
            else:
                line += "; no generic inputs were checked"
        else:
            g = stats[GENERIC]
            line = (f"{label} at generic inputs: {g[fi]} of {nfail} failing entries "
                    f"(worst {g[wi]:.1e} x tolerance there)")
        lines.append(line)
    return lines


def _describe(example, labels=()):
    """A counterexample as named values: X, Z for the input pair, then the labelled extras."""
    if isinstance(example, np.ndarray):
        return {"X": example}
    if not isinstance(example, tuple):
        return {"example": example}
    if labels and labels[0] == "pair":
        (X, Z), rest = example[0], example[1:]
        return {"X": X, "Z": Z, **dict(zip(labels[1:], rest))}
    if len(example) == 2 and all(isinstance(e, np.ndarray) for e in example):
        return {"X": example[0], "Z": example[1]}
    return {f"arg{i}": e for i, e in enumerate(example)}


# ---------------------------------------------------------------------------------------------
# the battery
# ---------------------------------------------------------------------------------------------

def conform(kernel, spec, kind: str = "ntk", *, rtol: float = 1e-10, atol: float = 0.0,
            math_rtol: float = MATH_RTOL, max_examples: int = 40, seed: int = 0, dim: int = 4, pixels: int = 5,
            channels: int = 2, properties=None, max_seconds: float | None = None, progress: bool | None = None,
            pass_spec: str | None = None, call_timeout: float | None = None) -> ConformanceReport:
    """Run the property battery against ``kernel(X, Z) -> Gram`` claimed to implement ``spec``.

    ``spec``: an MLP / ResNet / CNN / ResCNN (or its string form, see :func:`parse_spec`).
    ``rtol``: the numerics tier; ``math_rtol``: the mathematics tier (a single tier when
    ``math_rtol <= rtol``).  ``dim``: input dimension (FC); ``pixels`` x ``channels``: 1-D conv
    signal shape.  ``properties``: names to run (default all applicable; case-insensitive).
    ``max_seconds``: time budget of *each* property (None: unlimited): when it is spent the search or
    the shrinking stops and the property reports what it found so far.  ``progress``: live progress
    lines on stderr (default: when stderr is a terminal).  ``pass_spec``: ``"fields"`` or
    ``"object"`` to call ``kernel`` with the spec (see :func:`bind_spec`).
    ``call_timeout``: seconds one kernel call may take (default ``max_seconds``; None with
    ``max_seconds=None``: unlimited); a call past it is abandoned and reported, and the kernel is not
    called again (see the module docstring).
    Returns a :class:`ConformanceReport`.
    """
    from hypothesis import strategies as st
    from hypothesis.extra.numpy import arrays

    from reskernels.numerics import gram

    if isinstance(spec, str):
        spec = parse_spec(spec)
    if isinstance(spec, type) or not callable(getattr(spec, "kernel_maps", None)):
        raise TypeError(f"spec must be an architecture spec (one of {sorted(SPECS)}), got {type(spec).__name__}")
    check_kind(kind)
    for nm, val in (("rtol", rtol), ("atol", atol), ("math_rtol", math_rtol)):
        if isinstance(val, bool) or not isinstance(val, (int, float)) or not (math.isfinite(val) and val >= 0):
            raise ValueError(f"{nm} must be a finite non-negative number, got {val!r}")
    if isinstance(max_examples, bool) or not isinstance(max_examples, int) or max_examples < 1:
        raise ValueError(f"max_examples must be an integer >= 1, got {max_examples!r}")
    if max_seconds is not None and not (isinstance(max_seconds, (int, float)) and max_seconds > 0):
        raise ValueError(f"max_seconds must be a positive number or None, got {max_seconds!r}")
    if call_timeout is None:
        call_timeout = max_seconds
    elif isinstance(call_timeout, bool) or not isinstance(call_timeout, (int, float)) or not call_timeout > 0:
        raise ValueError(f"call_timeout must be a positive number or None, got {call_timeout!r}")
    for nm, val, lo in (("dim", dim, 2), ("pixels", pixels, 1), ("channels", channels, 1)):
        if isinstance(val, bool) or not isinstance(val, int) or val < lo:
            raise ValueError(f"{nm} must be an integer >= {lo}, got {val!r}")
    if pass_spec is not None:
        kernel = bind_spec(kernel, spec, kind, pass_spec)[0]
    applicable = available_properties(spec)
    if properties:
        names = [str(p).strip().lower() for p in properties]
        unknown = [p for p in names if p not in applicable]
        if unknown:
            raise ValueError(f"unknown propert{'y' if len(unknown) == 1 else 'ies'} {', '.join(unknown)}; "
                             f"known: {', '.join(PROPERTIES)}")
        na = [p for p in names if applicable[p] is not None]
        if na:
            raise ValueError("not applicable to this spec: " + "; ".join(f"{p} ({applicable[p]})" for p in na))
    else:
        names = [p for p, why in applicable.items() if why is None]
    math_rtol_run = max(math_rtol, rtol)
    conv = spec.is_conv
    shape = (pixels, channels) if conv else (dim,)
    report = ConformanceReport(spec, kind, rtol, atol, math_rtol=math_rtol, max_seconds=max_seconds)
    prog = _Progress(sys.stderr.isatty() if progress is None else bool(progress))

    hung = []

    def call(X, Z):
        """kernel(X, Z), abandoned after call_timeout seconds (then no further call is made)."""
        if call_timeout is None:
            return kernel(X, Z)
        if hung:
            raise _KernelRaised(f"not called: an earlier call did not return within call_timeout="
                                f"{_g(call_timeout)} s ({hung[0]})")
        box = {}

        def target():
            try:
                box["out"] = kernel(X, Z)
            except BaseException as e:       # handed to the caller's thread
                box["exc"] = e
        worker = threading.Thread(target=target, name="conform-kernel-call", daemon=True)
        worker.start()
        worker.join(call_timeout)
        if worker.is_alive():
            hung.append(f"X of shape {np.shape(X)}, Z of shape {np.shape(Z)}")
            raise _KernelRaised(f"the kernel did not return within call_timeout={_g(call_timeout)} s for "
                                f"{hung[0]}; the call was abandoned (it runs on in a background thread) "
                                "and the kernel is not called again")
        if "exc" in box:
            raise box["exc"]
        return box["out"]

    def user(X, Z):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                out = call(X, Z)
            except _KernelProblem:
                raise
            except Exception as e:
                raise _KernelRaised(f"the kernel raised {type(e).__name__}: {e}") from e
            finally:
                for w in caught:
                    report.warnings[(w.category.__name__, str(w.message).split("\n")[0],
                                     f"{os.path.basename(w.filename)}:{w.lineno}")] += 1
        try:
            K = np.asarray(out, dtype=np.float64)
        except Exception as e:
            raise _KernelRaised(f"the kernel returned a {type(out).__name__}, which numpy cannot convert to a "
                                f"float64 array ({type(e).__name__}: {e})") from e
        if K.shape != (len(X), len(Z)):
            raise _KernelRaised(f"the kernel returned shape {K.shape} for {len(X)} x {len(Z)} inputs; "
                                f"expected {(len(X), len(Z))}")
        bad = ~np.isfinite(K)
        if bad.any():
            i, j = (int(v) for v in np.argwhere(bad)[0])
            what = "NaN" if np.isnan(K[i, j]) else ("inf" if K[i, j] > 0 else "-inf")
            cat = int(_classify(X[i:i + 1], Z[j:j + 1], conv)[0, 0])
            note = {ZERO: "a zero input", PARALLEL: "nearly parallel inputs",
                    ANTIPARALLEL: "nearly antiparallel inputs"}.get(cat)
            if conv and note:
                note = note.replace("input", "pixel")
            raise _KernelNonFinite(f"the kernel returned {what} for x = {_one_line(X[i])}, z = {_one_line(Z[j])}"
                                   f"{f' ({note})' if note else ''} -- {int(bad.sum())} of {K.size} entries")
        return K

    def ref(X, Z=None):
        try:
            K = gram(spec, X, Z, kind=kind)
        except Exception as e:
            raise _ReferenceRaised("gram(spec)", e) from e
        if not np.all(np.isfinite(K)):
            raise _ReferenceRaised("gram(spec)", FloatingPointError("returned non-finite values"))
        return K

    def scale(X, Z):
        dx = np.abs(np.diag(ref(X)))
        dz = np.abs(np.diag(ref(Z)))
        return np.sqrt(np.outer(dx, dz))

    elements = st.floats(-3, 3, allow_nan=False, allow_infinity=False, width=64).map(
        lambda v: 0.0 if abs(v) < 1e-3 else v)
    point_sets = st.integers(1, 4).flatmap(lambda n: arrays(np.float64, (n,) + shape, elements=elements))
    pairs = st.tuples(point_sets, point_sets, st.booleans()).map(lambda a: (a[0], a[0] if a[2] else a[1]))

    def g_points(rng, n=3):
        return rng.standard_normal((n,) + shape)

    def g_pair(rng):
        return (g_points(rng, 3), g_points(rng, 2))

    def pair_entry(fmt="K(X[{i}], Z[{j}])"):
        def f(shape_):
            return lambda k: fmt.format(i=np.unravel_index(k, shape_)[0], j=np.unravel_index(k, shape_)[1])
        return f

    def unit(X):
        """Unit vectors (FC) or unit pixels (conv); zero vectors / pixels stay zero."""
        nrm = np.linalg.norm(X, axis=-1, keepdims=True)
        return X / np.where(nrm > 0, nrm, 1.0)

    def orth(seed_, n):
        q, r = np.linalg.qr(np.random.default_rng(seed_).standard_normal((n, n)))
        return q * np.sign(np.diag(r))

    tests = {}

    def agrees(ex):
        X, Z = ex
        K = user(X, Z)
        return [_Measure(K, ref(X, Z), scale(X, Z), _classify(X, Z, conv), pair_entry()(K.shape),
                         "kernel", "gram(spec)")]
    tests["agrees_with_gram"] = dict(crit="|K - gram| <= atol + rtol sqrt(Kxx Kzz)", strat=pairs, body=agrees,
                                     probe=g_pair)

    def symmetric(X):
        K = user(X, X)
        return [_Measure(K, K.T, scale(X, X), _classify(X, X, conv), pair_entry("K(X[{i}], X[{j}])")(K.shape),
                         "kernel", "K(X[j], X[i])")]
    tests["symmetric"] = dict(crit="|K - K^T| <= atol + rtol sqrt(Kxx Kzz)", strat=point_sets, body=symmetric,
                              probe=g_points)

    def psd(X):
        K = user(X, X)
        lam = np.linalg.eigvalsh((K + K.T) / 2).min()
        sc = len(X) * max(np.abs(np.diag(ref(X))).max(), 1e-300)
        return [_Measure([lam], [0.0], [sc], [_set_category(X, conv)], lambda k: "min eigenvalue of K(X, X)",
                         "kernel", "", one_sided=True)]
    tests["psd"] = dict(crit="min eig >= -(atol + rtol n max diag)", strat=point_sets, body=psd, probe=g_points)

    factors = st.floats(0.25, 4.0)

    def homogeneous(ex):
        (X, Z), a, b = ex
        K = user(a * X, b * Z)
        return [_Measure(K, a * b * user(X, Z), a * b * scale(X, Z), _classify(X, Z, conv),
                         pair_entry("(X[{i}], Z[{j}])")(K.shape), "K(a x, b z)", "a b K(x, z)")]
    tests["homogeneous"] = dict(crit="K(a x, b z) = a b K(x, z) within rtol", strat=st.tuples(pairs, factors, factors),
                                body=homogeneous, labels=("pair", "a", "b"),
                                probe=lambda rng: (g_pair(rng), rng.uniform(0.25, 4), rng.uniform(0.25, 4)))

    def rotation(ex):
        (X, Z), s = ex
        Q = orth(s, shape[-1])
        K = user(X @ Q, Z @ Q)
        return [_Measure(K, user(X, Z), scale(X, Z), _classify(X, Z, conv), pair_entry("(X[{i}], Z[{j}])")(K.shape),
                         "K(xQ, zQ)", "K(x, z)")]
    tests["rotation_invariant"] = dict(crit="K(xQ, zQ) = K(x, z) within rtol",
                                       strat=st.tuples(pairs, st.integers(0, 10**6)), body=rotation,
                                       labels=("pair", "Q seed"),
                                       probe=lambda rng: (g_pair(rng), int(rng.integers(0, 10**6))))

    def per_pixel(ex):
        (X, Z), s = ex
        Qs = [orth(s + i, channels) for i in range(pixels)]
        XR = np.stack([X[:, i] @ Qs[i] for i in range(pixels)], axis=1)
        ZR = np.stack([Z[:, i] @ Qs[i] for i in range(pixels)], axis=1)
        K = user(XR, ZR)
        return [_Measure(K, user(X, Z), scale(X, Z), _classify(X, Z, conv), pair_entry("(X[{i}], Z[{j}])")(K.shape),
                         "K(x Q_pixel, z Q_pixel)", "K(x, z)")]
    tests["per_pixel_rotation"] = dict(crit="independent Q_i per pixel leave K unchanged within rtol",
                                       strat=st.tuples(pairs, st.integers(0, 10**6)), body=per_pixel,
                                       labels=("pair", "Q seed"),
                                       probe=lambda rng: (g_pair(rng), int(rng.integers(0, 10**6))))

    def shifts(ex):
        (X, Z), a, b = ex
        b = b if spec.readout == "gap" else a
        K = user(np.roll(X, a, axis=1), np.roll(Z, b, axis=1))
        return [_Measure(K, user(X, Z), scale(X, Z), _classify(X, Z, conv), pair_entry("(X[{i}], Z[{j}])")(K.shape),
                         "K(tau_a x, tau_b z)", "K(x, z)")]
    tests["shift_invariant"] = dict(crit="K(tau_a x, tau_b z) = K(x, z) (a = b for flatten) within rtol",
                                    strat=st.tuples(pairs, st.integers(0, pixels - 1), st.integers(0, pixels - 1)),
                                    body=shifts, labels=("pair", "shift of x", "shift of z"),
                                    probe=lambda rng: (g_pair(rng), int(rng.integers(pixels)),
                                                       int(rng.integers(pixels))))

    if "diagonal_closed_form" in names:
        want = diagonal_closed_form(spec, kind)

        def diagonal(X):
            U = unit(X)
            ok = np.flatnonzero(np.linalg.norm(U.reshape(len(U), -1, shape[-1]), axis=-1).min(axis=1) > 0.5)
            U = U[ok]
            if not len(U):
                return []
            d = np.diag(user(U, U))
            what = "unit pixels of X" if conv else "X"
            return [_Measure(d, np.full(d.shape, want), np.full(d.shape, abs(want)), PARALLEL,
                             lambda k: f"K(u, u), u = {what}[{ok[k]}] / |{what}[{ok[k]}]|", "kernel", "closed form")]
        tests["diagonal_closed_form"] = dict(crit=f"K(x, x) = {want:.15g} on unit inputs within rtol",
                                             strat=point_sets, body=diagonal,
                                             inherent="K(x, x): identical inputs, cos = 1")
    if "depth1_identity" in names:
        iv, c = spec.input_var, spec.weight_var

        def depth1(ex):
            X, Z = ex
            nx, nz = np.linalg.norm(X, axis=1), np.linalg.norm(Z, axis=1)
            N = np.outer(nx, nz)
            G = X @ Z.T
            t = np.clip(np.divide(G, N, out=np.zeros_like(G), where=N > 0), -1, 1)
            th = np.arccos(t)
            k0 = (np.pi - th) / np.pi
            k1 = (np.sqrt(1 - t * t) + (np.pi - th) * t) / np.pi
            if not spec.has_alpha:
                nngp = iv * c / 2 * N * k1
                want_ = nngp if kind == "nngp" else nngp + iv * c / 2 * G * k0
            else:
                a = spec.block_gains()[0]
                nngp = iv * (G + a * N * k1)
                hid = a * iv * N * (k1 + t * k0)
                want_ = nngp if kind == "nngp" else \
                    hid + (nngp + (1 + a * k0) * iv * G if spec.trained == "all" else 0.0)
            K = user(X, Z)
            # the closed form's own float64 error near t = +-1 is ~ sqrt(eps) relative (arccos), hence
            # the floor 3e-8 on the tolerance
            return [_Measure(K, want_, N, _classify(X, Z, conv), pair_entry()(K.shape), "kernel",
                             "arc-cosine closed form", rtol_floor=3e-8)]
        tests["depth1_identity"] = dict(crit="arc-cosine closed form within max(rtol, 3e-8) |x||z|", strat=pairs,
                                        body=depth1, probe=g_pair)
    if "funk_hecke_spectrum" in names:
        tests["funk_hecke_spectrum"] = dict(
            crit="mu_k(user) = mu_k(spec), k <= 8, within rtol K(1) + 1e-12 K(1); mu_k >= -rtol K(1)",
            strat=st.just(None), body=_funk_hecke_check(user, spec, kind, dim))

    for i, name in enumerate(names, 1):
        t = tests[name]
        n_ex = 1 if name == "funk_hecke_spectrum" else max_examples
        prog.start(i, len(names), name, n_ex)
        res = _run_property(name, t["crit"], t["strat"], t["body"], n_ex, seed, rtol=rtol, math_rtol=math_rtol_run,
                            atol=atol, conv=conv, labels=t.get("labels", ()), probe=t.get("probe"),
                            inherent=t.get("inherent"), max_seconds=max_seconds, progress=prog)
        prog.done(res)
        report.results.append(res)
    if not properties:
        for name, why in applicable.items():
            if why is not None:
                report.results.append(PropertyResult(name, "skipped", message=f"not applicable: {why}"))
    return report


def _funk_hecke_check(user, spec, kind, d):
    """Funk-Hecke eigenvalues of the user's kernel on S^(d-1) by Gauss-Legendre in theta."""
    def body(_):
        import scipy.special

        from reskernels.numerics import eigenvalues
        n = 256
        x, w = np.polynomial.legendre.leggauss(n)
        theta = (x + 1) * np.pi / 2
        w = w * np.sin(theta) ** (d - 2)
        w = w / w.sum()
        t = np.cos(theta)
        e1 = np.zeros((1, d))
        e1[0, 0] = 1.0
        Z = np.zeros((n, d))
        Z[:, 0], Z[:, 1] = t, np.sin(theta)
        f = user(e1, Z)[0]
        k1 = user(e1, e1)[0, 0]
        lam = (d - 2) / 2
        try:
            ref = [float(m) for m in eigenvalues(spec, kind, d=d, ks=range(9), dps=16)]
        except Exception as e:
            raise _ReferenceRaised("eigenvalues(spec)", e) from e
        if not all(math.isfinite(m) for m in ref):
            raise _ReferenceRaised("eigenvalues(spec)", FloatingPointError(f"returned non-finite values {ref}"))
        mu = []
        for k in range(9):
            Pk = scipy.special.eval_chebyt(k, t) if d == 2 else \
                scipy.special.eval_gegenbauer(k, lam, t) / scipy.special.eval_gegenbauer(k, lam, 1.0)
            mu.append(float(np.sum(w * f * Pk)))
        mu = np.array(mu)
        sc = np.full(9, abs(k1))
        return [_Measure(mu, ref, sc, AGGREGATE, lambda k: f"mu_{k}", "kernel's Funk-Hecke eigenvalue",
                         "eigenvalues(spec)", rtol_extra=1e-12),
                _Measure(mu, np.zeros(9), sc, AGGREGATE, lambda k: f"mu_{k} (Mercer: mu_k >= 0)",
                         "kernel's Funk-Hecke eigenvalue", "", one_sided=True, rtol_extra=1e-12)]
    return body

"""Conformance kit: the suite's property tests, pointed at anyone's kernel implementation.

    from reskernels.proofs_check.conformance import conform
    report = conform(my_kernel, ResNet(depth=4, alpha=0.5), kind="ntk", rtol=1e-10)
    print(report)              # one line per property: pass / fail / skipped, observed error
    report.raise_if_failed()   # inside a pytest test: an AssertionError with the counterexamples

``my_kernel(X, Z)`` takes float64 numpy arrays of inputs -- (n, d) for MLP / ResNet, (n, P, C)
or (n, H, W, C) for CNN / ResCNN -- and returns the n x m Gram matrix in any array type that
``numpy.asarray`` converts (JAX, PyTorch on CPU, CuPy via ``.get()`` in the wrapper, lists).

Every property is run by hypothesis (derandomised, no example database), which searches the input
space and *shrinks* a failure to a small counterexample; the report keeps that counterexample and
the observed error.  Properties (with ``scale`` = sqrt(K(x,x) K(z,z)) of the reference kernel):

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

The tolerance is the user's: pick ``rtol`` from the arithmetic the implementation claims
(1e-10 is a safe float64 target for a careful implementation; float32 needs ~1e-5).
"""
from __future__ import annotations

import ast
import math
from dataclasses import dataclass, field

import numpy as np

from reskernels.theory import SPECS, check_kind


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
    return SPECS[node.func.id](*args, **kwargs)


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


@dataclass
class PropertyResult:
    name: str
    status: str                  # "pass" | "fail" | "skipped"
    error: float | None = None   # worst observed error, in units of the criterion's scale
    criterion: str = ""
    counterexample: dict | None = None
    message: str = ""

    def __str__(self):
        s = f"{self.name:<22} {self.status:<8}"
        if self.error is not None:
            s += f" worst {self.error:.2e}"
        if self.criterion:
            s += f"  ({self.criterion})"
        if self.message:
            s += f"\n    {self.message}"
        if self.counterexample:
            for k, v in self.counterexample.items():
                s += f"\n    {k} = {_short(v)}"
        return s


def _short(v):
    if isinstance(v, np.ndarray):
        return np.array2string(v, precision=17, threshold=64, max_line_width=100)
    return repr(v)


@dataclass
class ConformanceReport:
    spec: object
    kind: str
    rtol: float
    atol: float
    results: list = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(r.status != "fail" for r in self.results)

    @property
    def failures(self):
        return [r for r in self.results if r.status == "fail"]

    def __str__(self):
        head = (f"conformance of a {self.kind} kernel to {self.spec!r}  (rtol={self.rtol:g}, atol={self.atol:g}): "
                f"{'PASS' if self.passed else 'FAIL'}")
        return "\n".join([head] + [str(r) for r in self.results])

    def raise_if_failed(self):
        if not self.passed:
            raise AssertionError(str(self))


class _Fail(AssertionError):
    def __init__(self, error, example):
        super().__init__(f"error {error:.3e}")
        self.error, self.example = error, example


def _run_property(name, criterion, strategy, body, max_examples, seed):
    """Run ``body(example)`` (returns the worst normalised error; > 1 is a failure) under hypothesis;
    return a PropertyResult with the shrunk counterexample of a failure."""
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import seed as hseed
    worst = [0.0]
    last = [None]
    cur = [None]

    @hseed(seed)
    @settings(max_examples=max_examples, deadline=None, database=None, derandomize=False,
              suppress_health_check=list(HealthCheck),
              phases=[Phase.explicit, Phase.generate, Phase.shrink])
    @given(strategy)
    def prop(example):
        cur[0] = example
        err = float(body(example))
        if not err <= 1.0:          # NaN fails too
            last[0] = (err, example)
            raise _Fail(err, example)
        worst[0] = max(worst[0], err)

    try:
        prop()
    except _Fail:
        err, example = last[0]
        return PropertyResult(name, "fail", err, criterion, example)
    except Exception as e:   # the user's kernel raised (hypothesis re-raises it on the shrunk example)
        return PropertyResult(name, "fail", None, criterion, cur[0],
                              message=f"the kernel raised {type(e).__name__}: {e}")
    return PropertyResult(name, "pass", worst[0], criterion)


def conform(kernel, spec, kind: str = "ntk", *, rtol: float = 1e-10, atol: float = 0.0,
            max_examples: int = 40, seed: int = 0, dim: int = 4, pixels: int = 5, channels: int = 2,
            properties=None) -> ConformanceReport:
    """Run the property battery against ``kernel(X, Z) -> Gram`` claimed to implement ``spec``.

    ``spec``: an MLP / ResNet / CNN / ResCNN (or its string form, see :func:`parse_spec`).
    ``dim``: input dimension (FC); ``pixels`` x ``channels``: 1-D conv signal shape.
    ``properties``: names to run (default all applicable).  Returns a :class:`ConformanceReport`.
    """
    from hypothesis import strategies as st
    from hypothesis.extra.numpy import arrays

    from reskernels.numerics import gram

    if isinstance(spec, str):
        spec = parse_spec(spec)
    if isinstance(spec, type) or not callable(getattr(spec, "kernel_maps", None)):
        raise TypeError(f"spec must be an architecture spec (one of {sorted(SPECS)}), got {type(spec).__name__}")
    check_kind(kind)
    for nm, val in (("rtol", rtol), ("atol", atol)):
        if not (math.isfinite(val) and val >= 0):
            raise ValueError(f"{nm} must be a finite non-negative number, got {val!r}")
    conv = spec.is_conv
    shape = (pixels, channels) if conv else (dim,)
    report = ConformanceReport(spec, kind, rtol, atol)

    def user(X, Z):
        K = np.asarray(kernel(X, Z), dtype=np.float64)
        if K.shape != (len(X), len(Z)):
            raise ValueError(f"kernel returned shape {K.shape}, expected {(len(X), len(Z))}")
        return K

    def ref(X, Z=None):
        return gram(spec, X, Z, kind=kind)

    def scale(X, Z):
        dx = np.abs(np.diag(ref(X)))
        dz = np.abs(np.diag(ref(Z)))
        return np.sqrt(np.outer(dx, dz))

    elements = st.floats(-3, 3, allow_nan=False, allow_infinity=False, width=64).map(
        lambda v: 0.0 if abs(v) < 1e-3 else v)
    point_sets = st.integers(1, 4).flatmap(lambda n: arrays(np.float64, (n,) + shape, elements=elements))
    pairs = st.tuples(point_sets, point_sets, st.booleans()).map(lambda a: (a[0], a[0] if a[2] else a[1]))

    def rel_err(A, B, S):
        return float(np.max(np.abs(A - B) / (atol + rtol * S + 1e-300))) if A.size else 0.0

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
        return rel_err(user(X, Z), ref(X, Z), scale(X, Z))
    tests["agrees_with_gram"] = ("|K - gram| <= atol + rtol sqrt(Kxx Kzz)", pairs, agrees)

    def symmetric(X):
        K = user(X, X)
        return rel_err(K, K.T, scale(X, X))
    tests["symmetric"] = ("|K - K^T| <= atol + rtol sqrt(Kxx Kzz)", point_sets, symmetric)

    def psd(X):
        K = user(X, X)
        lam = np.linalg.eigvalsh((K + K.T) / 2).min()
        tol = atol + rtol * len(X) * max(np.abs(np.diag(ref(X))).max(), 1e-300)
        return max(0.0, -lam) / tol
    tests["psd"] = ("min eig >= -(atol + rtol n max diag)", point_sets, psd)

    factors = st.floats(0.25, 4.0)

    def homogeneous(ex):
        (X, Z), a, b = ex
        return rel_err(user(a * X, b * Z), a * b * user(X, Z), a * b * scale(X, Z))
    tests["homogeneous"] = ("K(a x, b z) = a b K(x, z) within rtol", st.tuples(pairs, factors, factors), homogeneous,
                            ("pair", "a", "b"))

    def rotation(ex):
        (X, Z), s = ex
        Q = orth(s, shape[-1])
        return rel_err(user(X @ Q, Z @ Q), user(X, Z), scale(X, Z))
    tests["rotation_invariant"] = ("K(xQ, zQ) = K(x, z) within rtol", st.tuples(pairs, st.integers(0, 10**6)),
                                   rotation, ("pair", "Q seed"))

    if conv and spec.readout in ("center", "flatten"):
        def per_pixel(ex):
            (X, Z), s = ex
            Qs = [orth(s + i, channels) for i in range(pixels)]
            XR = np.stack([X[:, i] @ Qs[i] for i in range(pixels)], axis=1)
            ZR = np.stack([Z[:, i] @ Qs[i] for i in range(pixels)], axis=1)
            return rel_err(user(XR, ZR), user(X, Z), scale(X, Z))
        tests["per_pixel_rotation"] = ("independent Q_i per pixel leave K unchanged within rtol",
                                       st.tuples(pairs, st.integers(0, 10**6)), per_pixel, ("pair", "Q seed"))
    if conv and spec.readout in ("flatten", "gap"):
        def shifts(ex):
            (X, Z), a, b = ex
            b = b if spec.readout == "gap" else a
            return rel_err(user(np.roll(X, a, axis=1), np.roll(Z, b, axis=1)), user(X, Z), scale(X, Z))
        tests["shift_invariant"] = ("K(tau_a x, tau_b z) = K(x, z) (a = b for flatten) within rtol",
                                    st.tuples(pairs, st.integers(0, pixels - 1), st.integers(0, pixels - 1)), shifts,
                                    ("pair", "shift of x", "shift of z"))
    if not (conv and spec.readout == "gap"):
        want = diagonal_closed_form(spec, kind)

        def diagonal(X):
            U = unit(X)
            ok = np.linalg.norm(U.reshape(len(U), -1, shape[-1]), axis=-1).min(axis=1) > 0.5
            U = U[ok]
            if not len(U):
                return 0.0
            d = np.diag(user(U, U))
            return float(np.max(np.abs(d - want)) / (atol + rtol * abs(want) + 1e-300))
        tests["diagonal_closed_form"] = (f"K(x, x) = {want:.15g} on unit inputs within rtol", point_sets, diagonal)
    if not conv and spec.depth == 1:
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
                want_ = nngp if kind == "nngp" else hid + (nngp + (1 + a * k0) * iv * G if spec.trained == "all" else 0.0)
            # the closed form's own float64 error near t = +-1 is ~ sqrt(eps) relative (arccos), hence
            # the floor 3e-8 on the tolerance
            return float(np.max(np.abs(user(X, Z) - want_) / (atol + max(rtol, 3e-8) * N + 1e-300)))
        tests["depth1_identity"] = ("arc-cosine closed form within max(rtol, 3e-8) |x||z|", pairs, depth1)
    if not conv:
        tests["funk_hecke_spectrum"] = ("mu_k(user) = mu_k(spec), k <= 8, within rtol K(1) + 1e-12 K(1)",
                                        st.just(None), _funk_hecke_check(user, spec, kind, dim, rtol, atol))

    names = properties or list(tests)
    unknown = set(names) - set(tests)
    if unknown:
        raise ValueError(f"unknown or inapplicable properties {sorted(unknown)}; available: {sorted(tests)}")
    for name in names:
        crit, strat, body, *labels = tests[name]
        n_ex = 1 if name == "funk_hecke_spectrum" else max_examples
        res = _run_property(name, crit, strat, body, n_ex, seed)
        if res.counterexample is not None:
            res.counterexample = _describe(res.counterexample, labels[0] if labels else ())
        report.results.append(res)
    for name in ("per_pixel_rotation", "shift_invariant", "depth1_identity", "diagonal_closed_form"):
        if name not in tests:
            report.results.append(PropertyResult(name, "skipped", message="not applicable to this spec"))
    return report


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


def _funk_hecke_check(user, spec, kind, d, rtol, atol):
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
        worst, neg = 0.0, 0.0
        ref = [float(m) for m in eigenvalues(spec, kind, d=d, ks=range(9), dps=16)]
        for k in range(9):
            Pk = scipy.special.eval_chebyt(k, t) if d == 2 else \
                scipy.special.eval_gegenbauer(k, lam, t) / scipy.special.eval_gegenbauer(k, lam, 1.0)
            mu = float(np.sum(w * f * Pk))
            tol = atol + (rtol + 1e-12) * abs(k1)
            worst = max(worst, abs(mu - ref[k]) / tol)
            neg = max(neg, -mu / tol)
        return max(worst, neg)
    return body

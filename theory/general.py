"""The variance-carrying interpreter: kernels of any activation, with biases and concatenations.

Programs that the normalised engines cannot run (:func:`theory.layers.is_normalizable` is False:
a non-homogeneous activation, a bias, a DenseNet concatenation) depend on the input norms, not
only on the angle, so the state of a pair carries the two variances with the covariance:

    (qx, qz, S, T) = (Sigma(x, x), Sigma(z, z), Sigma(x, z), Theta(x, z)).

One rule per kernel map, written once against a number context ``ctx`` (mpmath's idea): its
``xp`` supplies the functions an activation's ``dual`` hook calls (sqrt, arcsin, exp, kappa0, ...)
and ``number`` reads spec floats into the number system; ``patch(M, q)`` is the patch operator of
a q-tap convolution (the identity for fully connected programs).  The same rules run on sympy
expressions and truncated series here (``kernel_expr``, Taylor and endpoint coefficients), and on
float64 arrays and mpmath numbers in :mod:`numerics` -- the variances evolve by the same
operations as the covariances, so the pair (x, x) keeps S = qx = qz bit for bit.

With c = ``weight_var``, b = ``bias_var``, (E1, E0) = (E[phi(u) phi(v)], E[phi'(u) phi'(v)]) of
(u, v) ~ N(0, [[qx, S], [S, qz]]) (the activation's dual), the maps are those of
docs/conventions.md with biases:

* Nonlinear: S' = P(c E1 + b), T' = P(c E0 T + [trained] (c E1 + b));
* Block (branch Conv(c, b) -> phi -> Conv(alpha^2, b)): Sa = c P S + b, Ta = c P T + Sa,
  S' = S + alpha^2 P E1(Sa) + b, T' = T + alpha^2 P(E0(Sa) Ta) + (alpha^2 P E1(Sa) + b);
* Linear: S' = c S + b, T' = c T + [trained] (c S + b);
* Concat (DenseNet, depth L): K_l = c mean_{j<l} E1(K_j) + b, Theta_l = c mean_{j<l} E0(K_j)
  Theta_j + K_l, then the concatenation of all L + 1 activations, mean_j E1(K_j) and
  mean_j E0(K_j) Theta_j, for the readout.
"""
from __future__ import annotations

import sympy as sp

from . import layers as _L
from . import series as _series


class State:
    """(qx, qz, S, T): variances of the two inputs, their covariance and their NTK."""

    __slots__ = ("qx", "qz", "S", "T")

    def __init__(self, qx, qz, S, T):
        self.qx, self.qz, self.S, self.T = qx, qz, S, T


def dual(act, qx, qz, S, ctx, want_ntk):
    """(E1, E0) of ``act`` at the pair state (qx, qz, S): the context's compiled evaluation where it
    has one for this activation (``ctx.compiled_dual``: float64 with numba, numerics/variance.py),
    else the activation's own ``dual`` hook in the context's number system."""
    hook = getattr(ctx, "compiled_dual", None)
    if hook is not None:
        out = hook(act, qx, qz, S, want_ntk)
        if out is not None:
            return out
    return act.dual(qx, qz, S, ctx.xp, want_ntk)


def _var(act, q, ctx):
    """E[phi(u)^2] for u ~ N(0, q): the dual on the diagonal state (q, q, q)."""
    return dual(act, q, q, q, ctx, False)[0]


def _nonlinear(m, st, ctx):
    P = lambda M: ctx.patch(M, m.filter_size)
    c, b = ctx.number(m.weight_var), ctx.number(m.bias_var)
    E1, E0 = dual(m.activation, st.qx, st.qz, st.S, ctx, ctx.want_ntk)
    Sn = c * E1 + b
    T = None
    if ctx.want_ntk:
        T = c * E0 * st.T
        if m.trained:
            T = T + Sn
        T = P(T)
    qx = P(c * _var(m.activation, st.qx, ctx) + b)
    qz = qx if st.qz is st.qx else P(c * _var(m.activation, st.qz, ctx) + b)
    return State(qx, qz, P(Sn), T)


def _block(m, st, ctx):
    P = lambda M: ctx.patch(M, m.filter_size)
    c, b = ctx.number(m.weight_var), ctx.number(m.bias_var)
    a2 = ctx.number(m.alpha) ** 2
    Sa = c * P(st.S) + b
    qax = c * P(st.qx) + b
    qaz = qax if st.qz is st.qx else c * P(st.qz) + b
    E1, E0 = dual(m.activation, qax, qaz, Sa, ctx, ctx.want_ntk)
    Sc = a2 * P(E1) + b
    T = None
    if ctx.want_ntk:
        Ta = c * P(st.T) + Sa
        T = st.T + (a2 * P(E0 * Ta) + Sc)
    qx = st.qx + (a2 * P(_var(m.activation, qax, ctx)) + b)
    qz = qx if st.qz is st.qx else st.qz + (a2 * P(_var(m.activation, qaz, ctx)) + b)
    return State(qx, qz, st.S + Sc, T)


def _linear(m, st, ctx):
    c, b = ctx.number(m.weight_var), ctx.number(m.bias_var)
    Sn = c * st.S + b
    T = None
    if ctx.want_ntk:
        T = c * st.T
        if m.trained:
            T = T + Sn
    qx = c * st.qx + b
    qz = qx if st.qz is st.qx else c * st.qz + b
    return State(qx, qz, Sn, T)


def _concat(m, st, ctx):
    c, b = ctx.number(m.weight_var), ctx.number(m.bias_var)
    act = m.activation
    layers = [st]
    duals = []            # (E1, E0 T, E1(qx), E1(qz)) of each layer, computed once

    def dual_of(s):
        E1, E0 = dual(act, s.qx, s.qz, s.S, ctx, ctx.want_ntk)
        vx = _var(act, s.qx, ctx)
        vz = vx if s.qz is s.qx else _var(act, s.qz, ctx)
        return E1, (E0 * s.T if ctx.want_ntk else None), vx, vz

    def mean(values):
        out = values[0]
        for v in values[1:]:
            out = out + v
        return out / len(values)

    for _ in range(m.depth):
        duals.append(dual_of(layers[-1]))
        S = c * mean([d[0] for d in duals]) + b
        qx = c * mean([d[2] for d in duals]) + b
        qz = qx if st.qz is st.qx else c * mean([d[3] for d in duals]) + b
        T = (c * mean([d[1] for d in duals]) + S) if ctx.want_ntk else None
        layers.append(State(qx, qz, S, T))
    duals.append(dual_of(layers[-1]))
    qx = mean([d[2] for d in duals])
    return State(qx, qx if st.qz is st.qx else mean([d[3] for d in duals]), mean([d[0] for d in duals]),
                 mean([d[1] for d in duals]) if ctx.want_ntk else None)


def _pool(m, st, ctx):
    return st


#: one function per kernel-map type (the variance-carrying interpreter)
MAP_RULES = {_L.Nonlinear: _nonlinear, _L.Block: _block, _L.Linear: _linear, _L.Concat: _concat,
             _L.Pool: _pool}


def run(maps, st: State, ctx) -> State:
    """Interpret the maps after the Stem on the stem state ``st`` (the caller builds it:
    qx = input_var |x|^2 + b etc., T = S if the stem is trained else 0)."""
    for m in maps[1:]:
        rule = MAP_RULES.get(type(m))
        if rule is None:
            raise NotImplementedError(f"the variance-carrying engine has no rule for {type(m).__name__}")
        st = rule(m, st, ctx)
    return st


# ---------------------------------------------------------------------------------------------
# the sympy / Series number context
# ---------------------------------------------------------------------------------------------

def _apply(fun, x):
    """fun(x) for a sympy expression, or the Taylor composition of fun at x's constant term for a
    truncated :class:`theory.series.Series` (fun analytic there)."""
    if not isinstance(x, _series.Series):
        return fun(x)
    y = sp.Symbol("y")
    c0 = x[0]
    f = fun(y)
    coeffs = []
    d = f
    for j in range(x.order):
        coeffs.append(sp.simplify(d.subs(y, c0)) / sp.factorial(j))
        d = sp.diff(d, y)
    return (x - c0).compose_power(coeffs)


class SympyContext:
    """Exact arithmetic: spec floats as the rationals of their shortest repr, pi symbolic."""

    pi = sp.pi

    def __init__(self, want_ntk=True):
        self.want_ntk = want_ntk
        self.xp = self

    @staticmethod
    def number(x):
        return sp.Rational(repr(float(x)))

    @staticmethod
    def patch(M, q):
        if q != 1:
            raise TypeError("exact kernels (kernel_expr) are for fully connected programs")
        return M

    sqrt = staticmethod(lambda x: _apply(sp.sqrt, x))
    arcsin = staticmethod(lambda x: _apply(sp.asin, x))
    exp = staticmethod(lambda x: _apply(sp.exp, x))
    sinh = staticmethod(lambda x: _apply(sp.sinh, x))
    cosh = staticmethod(lambda x: _apply(sp.cosh, x))
    erf = staticmethod(lambda x: _apply(sp.erf, x))
    erfc = staticmethod(lambda x: _apply(sp.erfc, x))
    kappa0 = staticmethod(_series.kappa0)

    def damped_sinh_cosh(self, qx, qz, S):
        """(exp(-(qx + qz)/2) sinh S, exp(-(qx + qz)/2) cosh S): sin's and cos's duals."""
        e = self.exp(-(qx + qz) / 2)
        return e * self.sinh(S), e * self.cosh(S)
    kappa1 = staticmethod(_series.kappa1)

    @staticmethod
    def clip1(x):
        return x

    @staticmethod
    def safe_div(a, b):
        return a / b

    @staticmethod
    def positive(g):
        return 1

    @staticmethod
    def gaussian_expectation(fn, qx, qz, S, smoothed=None, strip=None, kinks=None, soft=None, saturating=None):
        raise NotImplementedError("this activation has no closed-form dual: exact kernels (kernel_expr, "
                                  "Taylor and endpoint coefficients) need one; use numerics.kernel_mp")


def sphere_state(maps, t, ctx) -> State:
    """The stem state of two unit inputs with <x, z> = t: q = input_var + b, S = input_var t + b."""
    stem = maps[0]
    iv, b = ctx.number(stem.input_var), ctx.number(stem.bias_var)
    q = iv + b
    S = iv * t + b
    return State(q, q, S, S if stem.trained else S * 0)

"""Kernels as short systems of per-layer equations, for reading and for LaTeX.

:func:`~reskernels.theory.recursions.kernel_expr` returns one closed expression in t, which nests
one ``acos`` per layer *inside every later layer*: at depth 2 its LaTeX is already about 1,300
characters, and its size grows exponentially with depth.  The same kernel written as the program's
recursion -- one equation per kernel map, each in terms of the previous layer's symbols -- grows
linearly.  :func:`kernel_system` builds that system by running the engines' own per-map rules on
*symbols* instead of numbers, and :func:`kernel_latex` prints it as a LaTeX ``aligned`` block.

Two forms, chosen like ``kernel_expr`` chooses its interpreter (:func:`theory.layers.is_normalizable`):

* Positively homogeneous activations without biases (ReLU, leaky ReLU, abs): the normalised
  recursion of :mod:`theory.recursions` (docs/conventions.md, "Kernel conventions") in the
  correlation rho_l = Sigma_l / s_l and the normalised NTK hat Theta_l = Theta_l / s_l, with the
  activation's normalised duals kappa_0, kappa_1 kept as named maps and defined once:

      rho_l = kappa_1(rho_{l-1}),  hat Theta_l = kappa_1(rho_{l-1}) + kappa_0(rho_{l-1}) hat Theta_{l-1}
      (a Nonlinear map),  rho_l = (rho_{l-1} + a_l kappa_1(rho_{l-1})) / (1 + a_l), ... (a Block),

  and the kernel K = s_L rho_L (NNGP) or s_L hat Theta_L (NTK), s_L the exact diagonal scale.
* Every other program (other activations, biases, DenseNet): the variance-carrying rules of
  :mod:`theory.general` on the unit-sphere state (q_l, Sigma_l, Theta_l) -- q_l the variance of
  either input, Sigma_l their covariance, Theta_l their NTK -- with the activation's closed-form
  dual written out.  A DenseNet block is written with running sums A_l = sum_{j<l} of the
  earlier layers' dual expectations, so it too stays linear in depth.

Layer indices count kernel maps (index 0 is the input layer); a map that leaves a quantity
unchanged (the readout leaves rho unchanged) introduces no new symbol for it.  Substituting the
equations into each other in order gives ``kernel_expr(arch, kind)`` exactly (tested).
"""
from __future__ import annotations

from dataclasses import dataclass

import sympy as sp

from . import general as _G
from . import layers as _L
from .arch import check_kind
from .recursions import MAP_RULES, exact_diag_scale, exact_gain, t


@dataclass(frozen=True)
class KernelSystem:
    """A kernel as ordered equations ``symbol = expression``.

    ``equations``: ``(symbol, expr)`` pairs; each ``expr`` is in ``t`` and the symbols defined
    before it; the last symbol is the kernel ``K``.  ``maps``: ``(f(r), expr in r)`` pairs defining
    the named dual maps (``kappa_0``, ``kappa_1``) the equations apply, empty when the duals are
    written out.  ``kind``: ``"ntk"`` or ``"nngp"``.
    """

    equations: tuple
    maps: tuple
    kind: str

    @property
    def kernel(self) -> sp.Symbol:
        """The symbol of the kernel (the left side of the last equation)."""
        return self.equations[-1][0]

    def expr(self) -> sp.Expr:
        """The kernel as one expression in ``t``: the equations substituted into each other and the
        named maps replaced by their definitions (equal to ``kernel_expr``; exponentially long)."""
        values = {}
        for sym, rhs in self.equations:
            values[sym] = self._expand(rhs.xreplace(values))
        return values[self.kernel]

    def _expand(self, e):
        for fr, body in self.maps:
            f, r = fr.func, fr.args[0]
            e = e.replace(f, sp.Lambda(r, body))
        return e

    def evaluate(self, t_value, dps: int = 30):
        """K at ``t = t_value`` by evaluating the equations in order at ``dps`` digits (a sympy
        Float); ``t_value`` is read exactly (a float by its shortest repr)."""
        tv = sp.Rational(repr(float(t_value))) if isinstance(t_value, float) else sp.sympify(t_value)
        values = {t: tv}
        for sym, rhs in self.equations:
            values[sym] = sp.N(self._expand(rhs.xreplace(values)), dps + 10)
        return sp.N(values[self.kernel], dps)

    def latex(self) -> str:
        """The system as a LaTeX ``aligned`` block: the named maps' definitions, then one line per
        equation (``\\\\`` separated, ``&=`` aligned)."""
        lines = [f"{sp.latex(fr)} &= {sp.latex(body)}" for fr, body in self.maps]
        lines += [f"{sp.latex(sym)} &= {sp.latex(rhs)}" for sym, rhs in self.equations]
        return "\\begin{aligned}\n" + " \\\\\n".join(lines) + "\n\\end{aligned}"

    def __str__(self):
        rows = [f"{fr} = {body}" for fr, body in self.maps] + [f"{s} = {e}" for s, e in self.equations]
        return "\n".join(rows)


def _fc_maps(arch):
    if getattr(arch, "is_conv", True):
        raise TypeError(f"kernel_system / kernel_latex need a fully connected spec (a zonal kernel in t), "
                        f"got {arch!r}")
    return arch.kernel_maps()


def _is_atom(e) -> bool:
    return isinstance(e, sp.Basic) and (e.is_Atom)


def kernel_system(arch, kind: str = "ntk") -> KernelSystem:
    """The kernel of a fully connected spec on the unit sphere as per-layer equations.

    Let rho_l and hat Theta_l be the correlation and the normalised NTK after kernel map l (or, for
    programs with biases or non-homogeneous activations, q_l, Sigma_l, Theta_l: the variance,
    covariance and NTK; module doc).  Each equation is the rule of one kernel map
    (docs/conventions.md, "Kernel steps" and "Lowering to kernel maps") applied to the symbols of
    the previous map, so the system has O(depth) symbols and its size is linear in depth.

    Parameters
    ----------
    arch : a fully connected spec (MLP, ResNet, DenseNet or any program of the same maps)
    kind : ``"ntk"`` or ``"nngp"``

    Returns
    -------
    KernelSystem: ``equations`` [(symbol, expr)], ``maps`` [(kappa_i(r), expr)], ``latex()``,
    ``expr()`` (= ``kernel_expr(arch, kind)``), ``evaluate(t)``.

    Examples
    --------
    >>> from reskernels.theory import MLP, kernel_expr
    >>> system = kernel_system(MLP(depth=2), "nngp")
    >>> [str(s) for s, _ in system.equations]
    ['rho_1', 'rho_2', 'K']
    >>> system.equations[1][1]
    kappa_1(rho_1)
    >>> sp.simplify(system.expr() - kernel_expr(MLP(depth=2), "nngp"))
    0
    """
    check_kind(kind)
    maps = _fc_maps(arch)
    if _L.is_normalizable(maps):
        return _normalized_system(arch, maps, kind)
    return _general_system(maps, kind)


def kernel_latex(arch, kind: str = "ntk") -> str:
    r"""LaTeX of :func:`kernel_system`: an ``aligned`` block, one line per kernel map.

    Its length grows linearly with depth (about 300 characters per ResNet block for the NTK), where
    ``sympy.latex(kernel_expr(arch))`` grows about fourfold per block (ResNet depth 4: 1,426
    against 21,719 characters).

    Examples
    --------
    >>> from reskernels.theory import ResNet
    >>> print(kernel_latex(ResNet(depth=1, alpha=0.5), "nngp"))
    \begin{aligned}
    \kappa_{1}{\left(r \right)} &= \frac{r \left(\pi - \operatorname{acos}{\left(r \right)}\right) + \sqrt{1 - r^{2}}}{\pi} \\
    \rho_{1} &= \frac{4 t}{5} + \frac{\kappa_{1}{\left(t \right)}}{5} \\
    K &= \frac{5 \rho_{1}}{4}
    \end{aligned}
    """
    return kernel_system(arch, kind).latex()


# ---------------------------------------------------------------------------------------------
# homogeneous activations, no biases: the normalised recursion with named duals
# ---------------------------------------------------------------------------------------------

def _named_duals(maps):
    """One pair of sympy Functions (kappa_0, kappa_1) per distinct activation, with definitions;
    with several activations they are numbered in order of appearance, kappa^(1)_0, kappa^(2)_0, ..."""
    acts = []
    for m in maps:
        a = getattr(m, "activation", None)
        if a is not None and a not in acts:
            acts.append(a)
    r = sp.Symbol("r")
    funs, defs = {}, []
    for i, a in enumerate(acts):
        tag = "" if len(acts) == 1 else f"__({i + 1})"     # kappa^{(i)}_0: the i-th activation
        k0, k1 = sp.Function(f"kappa_0{tag}"), sp.Function(f"kappa_1{tag}")
        funs[a] = (k0, k1)
        defs.append(((k0(r), a.kappa0(r)), (k1(r), a.kappa1(r))))
    return funs, defs


def _normalized_system(arch, maps, kind):
    funs, defs = _named_duals(maps)
    want_ntk = kind == "ntk"

    def duals(act):
        return funs[act]            # the rules call kappa_0(rho), kappa_1(rho): named, unevaluated

    eqs = []
    rho, T = t, t
    for l, m in enumerate(maps):
        rho_n, T_n = MAP_RULES[type(m)](m, rho, T, exact_gain, duals)
        rho_n, T_n = sp.expand(rho_n), sp.expand(T_n)
        rho, T = _bind(eqs, "rho", l, rho, rho_n), (_bind(eqs, "Thetahat", l, T, T_n) if want_ntk else T_n)
        if not want_ntk:
            T = t          # the NTK part is not part of an NNGP system; keep its expressions small
    K = sp.Symbol("K")
    eqs.append((K, exact_diag_scale(arch) * (T if want_ntk else rho)))
    needed = _needed(eqs)
    fdefs = tuple(d for pair in defs for d in pair if d[0].func in needed)
    return KernelSystem(tuple(eqs), fdefs, kind)


def _bind(eqs, name, index, old, new, **assumptions):
    """Record ``name_index = new`` unless ``new`` is an atom (t, 0, or the unchanged old symbol)."""
    new = sp.sympify(new)
    if new == old or _is_atom(new):
        return new
    sym = sp.Symbol(f"{name}_{index}", **assumptions)
    eqs.append((sym, new))
    return sym


def _needed(eqs):
    """The function classes that appear in the equations."""
    out = set()
    for _, rhs in eqs:
        out |= {f.func for f in rhs.atoms(sp.core.function.AppliedUndef)}
    return out


# ---------------------------------------------------------------------------------------------
# every other program: the variance-carrying rules on symbols
# ---------------------------------------------------------------------------------------------

def _general_system(maps, kind):
    ctx = _G.SympyContext(want_ntk=kind == "ntk")
    eqs = []
    st = _G.sphere_state(maps, t, ctx)
    st = _G.State(*_bind_state(eqs, 0, st, ctx.want_ntk))
    for l, m in enumerate(maps[1:], start=1):
        if isinstance(m, _L.Concat):
            st = _concat_system(eqs, l, m, st, ctx)
            continue
        rule = _G.MAP_RULES.get(type(m))
        if rule is None:
            raise NotImplementedError(f"no rule for {type(m).__name__}")
        st = _G.State(*_bind_state(eqs, l, rule(m, st, ctx), ctx.want_ntk))
    K = sp.Symbol("K")
    eqs.append((K, st.T if ctx.want_ntk else st.S))
    return KernelSystem(tuple(eqs), (), kind)


def _bind_state(eqs, l, st, want_ntk, suffix=""):
    q = _bind(eqs, "q" + suffix, l, None, st.qx, positive=True)   # a variance: sqrt(q^2) = q
    S = _bind(eqs, "Sigma" + suffix, l, None, st.S)
    if not want_ntk:
        T = None
    elif st.T == st.S:
        T = S
    else:
        T = _bind(eqs, "Theta" + suffix, l, None, st.T)
    return q, q, S, T


def _concat_system(eqs, l, m, st, ctx):
    """The DenseNet block (theory.general ``_concat``) with running sums of the earlier layers' dual
    expectations: A_j = sum_{i<j} E1(q_i, Sigma_i), B_j = sum E0 Theta_i, V_j = sum E[phi^2](q_i);
    layer j: Sigma = c A_j / j + b, q = c V_j / j + b, Theta = c B_j / j + Sigma; the block's output
    is the mean over all depth + 1 layers."""
    c, b, act = ctx.number(m.weight_var), ctx.number(m.bias_var), m.activation
    A = B = V = sp.Integer(0)
    tag = f"{l},"
    for j in range(1, m.depth + 2):
        E1, E0 = act.dual(st.qx, st.qz, st.S, ctx.xp, ctx.want_ntk)
        A = _bind(eqs, "A", f"{tag}{j}", None, A + E1)
        V = _bind(eqs, "V", f"{tag}{j}", None, V + _G._var(act, st.qx, ctx), positive=True)
        if ctx.want_ntk:
            B = _bind(eqs, "B", f"{tag}{j}", None, B + E0 * st.T)
        if j == m.depth + 1:
            break
        S = c * A / j + b
        T = (c * B / j + S) if ctx.want_ntk else None
        st = _G.State(*_bind_state(eqs, f"{tag}{j}", _G.State(c * V / j + b, None, S, T), ctx.want_ntk))
    n = m.depth + 1
    out = _G.State(V / n, None, A / n, (B / n) if ctx.want_ntk else None)
    return _G.State(*_bind_state(eqs, l, out, ctx.want_ntk))

"""Eigenvalues of convolutional kernels on MS(C0, P) along rays of the frequency lattice, to large k.

A ray is a support S (pixels) and a frequency k on every pixel of S, the others 0: lambda(k e_S).  On
C0 = 2 (docs/spectral.md §6.5) lambda_k = E_delta[F(cos delta) Prod_i cos(k_i delta_i)] over the
P-torus; the inactive angles are averaged (frequency 0), not fixed.  The full torus rule needs n >> k
points on every axis; here only the active axes are uniform (docs/spectral.md §6.6):

* :func:`active_grid_spectrum` / :func:`ray_spectrum`: active axes on the periodic trapezoid grid of M
  points (half grid, F is even in every delta_i) and one DCT-I, giving every k <= M/2.  Its error is
  aliasing, lambda at k + M: relative (k / (M - k))^p on a ray decaying like k^-p.  Inactive axes: the
  midpoint rule after the graded substitution delta = pi psi_r(s), psi_r' ~ sin^r(pi s) (Sidi), which
  clusters nodes at delta = 0 and pi, where F has its kinks: a kink |delta|^a becomes
  s^((r+1) a + r), and the near-singular scale 1/k of the active ray becomes s ~ k^(-1/(r+1)).
* :func:`sphere_ray_spectrum`: one active pixel on any C0 (graded theta rule on every axis, Gegenbauer
  sum on the active one).
* :func:`window_ray_spectrum`: two or more active pixels (pairs, the full window), or one pixel whose
  near pixels need the corner rule; any C0 (Legendre / Gegenbauer sums, the sphere density, an r = 4
  active rule on C0 > 2).  On the folded cube
  [0, pi]^P F(cos delta) is analytic except at the corners delta_A = 0 (and delta_A = pi) of the
  windows A of more than one pixel (one-pixel dual terms kappa(cos delta) are analytic in delta); a
  window A containing S carries (mean_A (1 - t_i))^nu, which, for an active point at distance
  eps from the corner, is near-singular at scale eps in the inactive angles of A.  A rule that is
  fixed in those angles resolves eps only down to its own node spacing, and its error then varies
  with the active point on the scale 1/k that decides lambda(k e_S).  So: active axes on the graded
  rule (r = 2, stretching delta by at most 2: N > 2 kmax resolves cos(k delta)) with direct cosine
  sums; the *near* inactive pixels (those of the smallest windows containing S, :func:`near_pixels`)
  on :func:`corner_rule`, a composite Gauss rule graded towards the nearer corner at the scale eps of
  each active point, converged at every eps (or, ``corner="both"``, on :func:`two_sided_corner_rule`,
  graded towards both corners and continuous in the active point: a rule that jumps with the active
  point adds ~jump / k to every lambda(k e_S), which stopped the pairs that only the full window
  contains); the other inactive pixels on the fixed graded rule
  (their windows with S are larger: terms one or more orders smaller).  Error estimate: the change
  from N to N2 = 3 N / 4 active nodes plus the change from (g, n2) to (g - 1, n) inactive nodes.

Error estimate: two active rules (M and M/2, the subgrid) and two inactive rules (n2 and n nodes); the
reported error is the sum of the two differences, each the change from the coarser to the finer rule
(conservative whenever the rules converge monotonically; the tests check it against a finer rule).
What the methods do not reach (deep ResCNN on their unwrapped receptive fields, rays below the float64
floor) is listed in docs/spectral.md §6.6.

Kernel values: a conv spec is evaluated by :func:`numerics.multisphere.multi_dot_kernel` with the
functions' ``backend`` (default "auto": the compiled loop when numba is installed, 3-5x faster than the
numpy interpreter and within a few ulps of it; "numpy" for the interpreter).

Exponents (:func:`predicted_exponent`): the singular terms of F at t -> 1 come from the ReLU
duals kappa applied to patch means (docs/spectral.md §6.6): a window A of pixels seen together by
one ReLU carries (mean_{i in A} (1 - t_i))^nu with nu = 3/2 (NNGP, kappa_1) or 1/2 (NTK, kappa_0),
that is a homogeneous function of degree 2 nu of |A| (C0 - 1) local coordinates, whose Fourier
transform decays like |xi|^-(2 nu + |A| (C0 - 1)).  A ray on S is dominated by the smallest
singular window containing S: lambda(k e_S) ~ k^-(2 nu + |A| (C0 - 1)).
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field

import numpy as np
import scipy.fft

from .multisphere import _evaluator, receptive_radius
from .variance import _gauss_legendre

_CHUNK = 2 ** 16


def _tensor_rule(x, w, k: int):
    """The k-fold tensor product of the angle rule (x, w): cosines (N^k, k) and weights (N^k,);
    k = 0 gives the empty point with weight 1."""
    if k == 0:
        return np.zeros((1, 0)), np.ones(1)
    grids = np.meshgrid(*([x] * k), indexing="ij")
    D = np.cos(np.stack([g.ravel() for g in grids], axis=-1))
    W = np.ones(1)
    for _ in range(k):
        W = np.multiply.outer(W, w).ravel()
    return D, W

def graded_rule(n: int, r: int = 2):
    """Nodes in (0, pi) and weights (summing to 1) for the mean over [0, pi] of a function with
    endpoint singularities: midpoint rule in s after delta = pi psi_r(s), psi_r' proportional to
    sin^r(pi s), r in {0, 2, 4, 6} (r = 0: the plain midpoint rule), or r = 'de' (tanh-sinh)."""
    if int(n) != n or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    s = (np.arange(n) + 0.5) / n
    x = 2 * np.pi * s
    if r == "de":
        # double exponential (tanh-sinh): x = (1 + tanh(pi/2 sinh t)) / 2, step h = 2 t_max / n
        t_max = 3.0   # weights at the ends ~1e-18: truncation below rounding
        h = 2 * t_max / n
        t = -t_max + h * (np.arange(n) + 0.5)
        u = np.pi / 2 * np.sinh(t)
        psi = (1 + np.tanh(u)) / 2
        dpsi = h * np.pi / 4 * np.cosh(t) / np.cosh(u) ** 2 * n
        return np.pi * psi, dpsi / n / dpsi.sum() * n
    if r == 0:
        psi, dpsi = s, np.ones(n)
    elif r == 2:
        psi, dpsi = s - np.sin(x) / (2 * np.pi), 1 - np.cos(x)
    elif r == 4:
        psi = s - (2 / 3) * np.sin(x) / np.pi + np.sin(2 * x) / (12 * np.pi)
        dpsi = (8 / 3) * np.sin(np.pi * s) ** 4
    elif r == 6:
        psi = s + (-15 * np.sin(x) / (2 * np.pi) + 6 * np.sin(2 * x) / (4 * np.pi) - np.sin(3 * x) / (6 * np.pi)) / 10
        dpsi = 3.2 * np.sin(np.pi * s) ** 6
    else:
        raise ValueError(f"r must be 0, 2, 4, 6 or 'de', got {r!r}")
    return np.pi * psi, dpsi / n


def active_grid_spectrum(f, P: int, support, M: int, n: int, r=4) -> np.ndarray:
    """lambda_k for every frequency vector on the active pixels S (k_i <= M/2, the other pixels 0).

    Active axes: the periodic trapezoid rule with M points per axis (F is even in every delta_i: the
    half grid delta = 2 pi j / M, j = 0..M/2, and one DCT-I); inactive axes: :func:`graded_rule` with
    n nodes (mean over the folded period [0, pi]).  Returns an array of shape (M/2 + 1,) * |S|."""
    S = [int(i) % P for i in support]
    if len(set(S)) != len(S) or not S:
        raise ValueError(f"support must be distinct pixels, got {support!r}")
    if int(M) != M or M < 2 or M % 2:
        raise ValueError(f"M must be an even integer >= 2, got {M!r}")
    inactive = [i for i in range(P) if i not in S]
    x, w = graded_rule(n, r)
    DI, WI = _tensor_rule(x, w, len(inactive))
    half = M // 2 + 1
    ca = np.cos(2 * np.pi * np.arange(half) / M)
    shape = (half,) * len(S)
    total = math.prod(shape)
    g = np.empty(total)
    compiled = getattr(f, "compiled", None)
    # one compiled loop over the inactive grid (conv_fused_general.tensor_sums) takes _CHUNK active points a
    # call; the numpy route as many as keep one (points x inactive grid x P) array within _CHUNK rows
    per = _CHUNK if compiled is not None else max(1, _CHUNK // len(DI))
    empty = (np.zeros(0), np.zeros(0))
    for a in range(0, total, per):
        idx = np.unravel_index(np.arange(a, min(a + per, total)), shape)
        if compiled is not None:
            CA = np.stack([ca[idx[j]] for j in range(len(S))], axis=1)
            g[a:a + len(CA)], _ = _compiled_corner_sums(compiled, f.normalize, P, S, CA, [], [empty] * len(CA),
                                                        inactive, DI, WI)
            continue
        T = np.empty((len(idx[0]), len(DI), P))
        T[:, :, inactive] = DI[None]
        for j, i in enumerate(S):
            T[:, :, i] = ca[idx[j]][:, None]
        vals = np.asarray(f(T.reshape(-1, P)), dtype=float).reshape(len(idx[0]), len(DI))
        g[a:a + len(idx[0])] = vals @ WI
    g = g.reshape(shape)
    return scipy.fft.dctn(g, type=1) / M ** len(S), g


@dataclass
class RaySpectrum:
    """lambda(k e_S) for k = 0..kmax with the error estimate and its parts."""

    support: tuple
    values: np.ndarray
    error: np.ndarray
    parts: dict = field(default_factory=dict)

    def points(self, ks):
        ks = np.asarray(ks, dtype=int)
        return self.values[ks], self.error[ks]

    def converged(self, rel_err: float = 0.01, kmin: int = 2, step: int = 1, floor: float = 0.0):
        """(k, lambda, error) where the estimated error is <= rel_err |lambda| and |lambda| > floor."""
        ks = np.arange(kmin, len(self.values), step)
        lam, err = self.values[ks], self.error[ks]
        ok = (np.abs(lam) > floor) & (err <= rel_err * np.abs(lam))
        return ks[ok], lam[ok], err[ok]


def ray_spectrum(F, support, kmax: int = 64, kind: str = "ntk", *, P: int | None = None, n: int = 6,
                 n2: int | None = None, M: int | None = None, r=4, normalize: bool = True,
                 backend: str = "auto") -> RaySpectrum:
    """lambda(k e_S), k = 0..kmax (every pixel of S at frequency k), of a conv spec (or a callable of
    (N, P) cosines with P given) on MS(2, P).

    Rules (module docstring): active axes uniform with M (default 48 kmax for one pixel -- the
    M/2 rule's aliasing at kmax for a k^-2 ray is then about (1/23)^2 + (1/25)^2 = 0.35% --, 8 kmax for two,
    4 kmax otherwise) points per period and its M/2 subgrid; inactive axes graded with
    n2 (default n + 2) and n nodes.  Values from (M, n2).  Error estimate = |(M, n2) - (M/2, n2)| +
    |(M/2, n2) - (M/2, n)|: each term the change from a coarser to the finer rule."""
    f, P = _evaluator(F, kind, P, normalize, backend)
    if int(kmax) != kmax or kmax < 1:
        raise ValueError(f"kmax must be a positive integer, got {kmax!r}")
    m = len(support)
    M = int(M or (48 * kmax if m == 1 else 8 * kmax if m == 2 else 4 * kmax))
    if M % 4 or M < 4 * kmax:
        raise ValueError(f"M must be a multiple of 4 and >= 4 kmax (the M/2 rule must reach kmax), got {M}")
    n2 = int(n2 or n + 2)
    diag = (np.arange(kmax + 1),) * m
    lam_fine, g_fine = active_grid_spectrum(f, P, support, M, n2, r)
    sub = (slice(None, None, 2),) * m
    lam_half = scipy.fft.dctn(g_fine[sub], type=1) / (M // 2) ** m
    lam_coarse, _ = active_grid_spectrum(f, P, support, M // 2, n, r)
    lam = lam_fine[diag]
    active_err = np.abs(lam - lam_half[diag])
    rest_err = np.abs(lam_half[diag] - lam_coarse[diag])
    return RaySpectrum(support=tuple(support), values=lam, error=active_err + rest_err,
                       parts={"active": active_err, "inactive": rest_err, "rules": {"n": n, "n2": n2, "M": M, "r": r}})


def corner_rule(eps: float, g: int = 8, q: float = 4.0, top: float = 0.7):
    """Nodes in (0, pi) and weights (summing to 1) for the mean over [0, pi] of a function with a
    near-singularity at distance ~eps from delta = 0 (a window term (eps^2 + delta^2)^nu): composite
    Gauss-Legendre, g nodes a panel, on the geometric mesh [0, eps], [eps, q eps], ...,
    [eps q^(c-1), pi], c = 1 + floor(log(top pi / eps) / log q) (eps clipped to [1e-300, pi / 2]).  Each
    panel's distance from the singularity is comparable to its length, so every panel converges
    geometrically in g at every eps (the hp-graded mesh of corner singularities, Schwab 1998 §4.4)."""
    _check_panels(g, q)
    eps = float(min(max(eps, 1e-300), np.pi / 2))
    c = 1 + int(np.floor(np.log(top * np.pi / eps) / np.log(q))) if eps < top * np.pi else 1
    return _composite_gauss(np.concatenate([[0.0], eps * q ** np.arange(c), [np.pi]]), g)


def _check_panels(g, q):
    if int(g) != g or g < 1:
        raise ValueError(f"g must be a positive integer, got {g!r}")
    if not q > 1:
        raise ValueError(f"q must be > 1, got {q!r}")


def _composite_gauss(edges, g: int):
    """Nodes and weights (summing to 1, the mean over [0, pi]) of g-point Gauss-Legendre on each panel
    between consecutive (increasing) edges."""
    gx, gw = _gauss_legendre(int(g))
    a, b = edges[:-1, None], edges[1:, None]
    return ((a + b) / 2 + (b - a) / 2 * gx).ravel(), ((b - a) / 2 * gw).ravel() / np.pi


# corner="both": the scale of each end is eps = r / (1 + r / CORNER_SATURATION), ~r near the corner and below
# CORNER_SATURATION < pi / 2 everywhere, so that no scale is clipped (a clip is a kink of the rule in the
# active point)
CORNER_SATURATION = 1.0


def _half_edges(eps: float, q: float):
    """Panel edges 0, eps, eps q, eps q^2, ... (those below pi / 2), pi / 2."""
    eps = float(min(max(eps, 1e-300), np.pi / 2))
    c = int(np.floor(np.log(np.pi / 2 / eps) / np.log(q))) + 1 if eps < np.pi / 2 else 0
    inner = eps * q ** np.arange(c)
    return np.concatenate([[0.0], inner[inner < np.pi / 2], [np.pi / 2]])


def two_sided_corner_rule(e0: float, epi: float, g: int = 8, q: float = 4.0):
    """Nodes in (0, pi) and weights (summing to 1) for the mean over [0, pi] of a function with
    near-singularities at distance ~e0 from delta = 0 and ~epi from delta = pi: composite Gauss-Legendre,
    g nodes a panel, on [0, pi/2] with the edges 0, e0, e0 q, ... (below pi/2) and on [pi/2, pi] with the
    mirrored edges pi - epi q^j.

    Unlike :func:`corner_rule` it chooses no corner and clips no panel: its sum is a continuous, piecewise
    smooth function of (e0, epi), because a panel whose edge e0 q^j reaches pi/2 shrinks to zero length
    before it disappears (a Gauss sum over a panel of length h of a smooth function is O(h); the slope of
    the sum has a small jump there, measured 5e-9 at g = 8).  A rule that follows the active point therefore
    adds to G(delta_S) an error that is continuous in delta_S, whose Fourier coefficients decay like k^-2
    or faster along a ray; a rule that jumps along a surface (corner_rule's switch between 0 and pi on the
    plane sum_S cos delta_i = 0, perpendicular to the ray (k, ..., k), or its panel count) adds ~jump / k
    to every lambda(k e_S), the error plateau of docs/spectral.md §6.6."""
    _check_panels(g, q)
    for name, e in (("e0", e0), ("epi", epi)):
        if not (np.isfinite(e) and e > 0):
            raise ValueError(f"{name} must be a positive finite scale, got {e!r}")
    edges = np.concatenate([_half_edges(e0, q), np.pi - _half_edges(epi, q)[-2::-1]])
    return _composite_gauss(edges[np.concatenate([[True], np.diff(edges) > 0])], g)   # no empty panel


def near_pixels(arch, support, P: int | None = None) -> list:
    """The inactive pixels of the smallest singular windows containing the support S (the union of
    A minus S over those A): the axes on which the dominant corner term (mean_{i in A} (1 - t_i))^nu
    is near-singular when the active angles are small (module docstring)."""
    P = P or 2 * receptive_radius(arch) + 1
    S = frozenset(int(i) % P for i in support)
    wins = [A for A in singular_windows(arch, P) if S <= A]
    if not wins:
        return []
    m = min(len(A) for A in wins)
    return sorted(set().union(*[A for A in wins if len(A) == m]) - S)


@functools.lru_cache(maxsize=None)
def _pi_density_constant(C0: int) -> float:
    """pi c_C0, c_d of :func:`theory.harmonics.density_constant` (t = cos theta has density
    c_d (1 - t^2)^((d-3)/2), so theta has c_d sin^(d-2) theta on [0, pi])."""
    from reskernels.theory.harmonics import density_constant
    return float(np.pi * density_constant(C0))


def _sphere_weight(x, C0: int):
    """pi c_C0 sin^(C0-2)(x): the density of the angle theta_i between two uniform points of S^(C0-1)
    relative to the uniform mean on [0, pi] (1 for C0 = 2)."""
    if C0 == 2:
        return np.ones_like(x)
    return _pi_density_constant(C0) * np.sin(x) ** (C0 - 2)


def corner_grid_values(f, P: int, support, near, kmax: int, N: int, g: int, n: int, *, q: float = 4.0,
                       r_active: int = 2, r_far: int = 4, floor: float = 1e-5, C0: int = 2,
                       corner: str = "nearer", mirror: bool = False):
    """lambda(k e_S), k = 0..kmax, by one tensor rule on the folded cube [0, pi]^P (module docstring,
    'multi-pixel rays'); the mean over [0, pi]^P of F(cos delta) Prod_{i in S} cos(k delta_i).

    C0 > 2 (pixels on S^(C0-1)): delta_i is the angle theta_i between the pixels, every axis's weights carry
    its density sin^(C0-2) theta (:func:`_sphere_weight`) and cos(k delta) becomes the normalised
    Gegenbauer P_k(cos theta) (P_k(1) = 1; docs/spectral.md §6.1), the same nodes otherwise.

    Every pixel active (the full window, no near or far pixel) and a compiled evaluator: the same rule by
    :func:`_compiled_window_sums`, streamed (no (N^P, kmax) arrays; mirror orbits), the same values up to
    the order of the sums.

    Active axes: :func:`graded_rule` (r_active) with N nodes each; near inactive axes: :func:`corner_rule`
    (g nodes a panel, panel ratio q), graded towards the corner (0 or pi) nearer to the active point at
    the scale eps = max(floor, min(|2 - 2 cos delta_S|, |2 + 2 cos delta_S|)^(1/2)) (the distance of
    the complex singularity of (mean_A (1 - t_i))^nu from the real axis); far inactive axes:
    :func:`graded_rule` (r_far) with n nodes.

    corner: "nearer" grades the near axes by :func:`corner_rule` towards the nearer corner, as above;
    "both" by :func:`two_sided_corner_rule` towards 0 at the scale r0 / (1 + r0 / CORNER_SATURATION) and
    towards pi at rp / (1 + rp / CORNER_SATURATION) (r0, rp the active point's distances from the corners,
    floored as above): a rule continuous in the active point, whose error does not plateau in k (the pairs
    that only the full window contains; ~5x the nodes a point).  mirror: F is invariant under the reflection
    p -> -p of the pixels (a conv spec); where S, the near and the far pixels each map onto themselves, G is
    computed on one active point of each mirror orbit.  Returns (values, number of kernel evaluations)."""
    S = [int(i) % P for i in support]
    near = [int(i) % P for i in near]
    if len(set(S)) != len(S) or not S:
        raise ValueError(f"support must be distinct pixels, got {support!r}")
    if set(near) & set(S) or len(set(near)) != len(near):
        raise ValueError(f"near must be distinct inactive pixels, got {near!r}")
    if int(C0) != C0 or C0 < 2:
        raise ValueError(f"C0 must be an integer >= 2, got {C0!r}")
    if corner not in ("nearer", "both"):
        raise ValueError(f"corner must be 'nearer' or 'both', got {corner!r}")
    far = [i for i in range(P) if i not in S and i not in near]
    xa, wa = graded_rule(N, r_active)
    wa = wa * _sphere_weight(xa, C0)
    compiled = getattr(f, "compiled", None)
    if compiled is not None and not near and not far:
        # every pixel active (the full window): streamed, N^P nodes never held in memory
        C1 = _axis_characters(xa, kmax, C0)
        return _compiled_window_sums(compiled, f.normalize, P, S, xa, wa, C1)
    if N ** len(S) > MAX_ACTIVE_POINTS:
        raise ValueError(f"{N}^{len(S)} active points exceed MAX_ACTIVE_POINTS = {MAX_ACTIVE_POINTS:.0e} of the grid "
                         "route (~450 bytes each); every pixel active with a conv spec and numba installed takes the "
                         "streamed route instead (pip install \"reskernels[fast]\")")
    grids = np.meshgrid(*([xa] * len(S)), indexing="ij")
    A = np.stack([v.ravel() for v in grids], axis=-1)
    WA = np.ones(1)
    for _ in S:
        WA = np.multiply.outer(WA, wa).ravel()
    xf, wf = graded_rule(n, r_far)
    DF, WF = _tensor_rule(xf, wf * _sphere_weight(xf, C0), len(far))
    CA = np.cos(A)
    # mirror orbits of the active points: the reflection maps pixel S[j] to S[sigma[j]]
    orbit = None
    if mirror and _mirror_invariant(S, P) and _mirror_invariant(near, P) and len(S) > 1:   # then far maps too
        sigma = [S.index((-i) % P) for i in S]
        # the active points in C order of their node indices; the mirror image of point idx is the point
        # idx' with idx'[sigma[j]] = idx[j], i.e. the code grid transposed by sigma (an involution)
        codes = np.arange(N ** len(S)).reshape((N,) * len(S))
        canon = np.minimum(codes.ravel(), codes.transpose(sigma).ravel())
        _, first, orbit = np.unique(canon, return_index=True, return_inverse=True)
        A_all = A
        A, CA = A[first], CA[first]
    r0 = np.sqrt(np.sum(2 - 2 * CA, axis=1))
    rp = np.sqrt(np.sum(2 + 2 * CA, axis=1))
    eps = np.maximum(np.minimum(r0, rp), floor)
    G = np.empty(len(A))
    evals = 0
    rules = []
    sat = lambda r: r / (1 + r / CORNER_SATURATION)     # noqa: E731
    if not near:      # one shared empty rule (the full window has 22^5 points: no tuple a point)
        empty = (np.zeros(0), np.zeros(0))
        rules = [empty] * len(A)
    for i in range(len(A) if near else 0):
        if corner == "both":
            x, w = two_sided_corner_rule(sat(max(r0[i], floor)), sat(max(rp[i], floor)), g, q)
            rules.append((x, w * _sphere_weight(x, C0)))
            continue
        x, w = corner_rule(eps[i], g, q)
        w = w * _sphere_weight(x, C0)
        rules.append((np.pi - x if rp[i] < r0[i] else x, w))
    groups = {}             # the numpy route: points grouped by the size of their near rule
    if compiled is not None:
        G, evals = _compiled_corner_sums(compiled, f.normalize, P, S, CA, near, rules, far, DF, WF)
    else:
        for i, (x, w) in enumerate(rules):
            groups.setdefault(len(x), []).append((i, x, w))
    for L, items in groups.items():
        idx = (np.stack(np.meshgrid(*([np.arange(L)] * len(near)), indexing="ij"), axis=-1).reshape(-1, len(near))
               if near else np.zeros((1, 0), dtype=int))
        per = max(1, _CHUNK // (len(idx) * len(DF)))
        # one point's near grid beyond the chunk (three or four near pixels): blocks of its rows, summed
        step = max(1, _CHUNK // len(DF))
        for a in range(0, len(items), per):
            chunk = items[a:a + per]
            rows = np.array([c[0] for c in chunk])
            X = np.stack([c[1] for c in chunk]).reshape(len(chunk), L)
            W = np.stack([c[2] for c in chunk]).reshape(len(chunk), L)
            CX = np.cos(X)                      # L cosines a point, gathered to L^|near| below
            acc = np.zeros(len(chunk))
            for b in range(0, len(idx), step):     # (the far grid itself is not split: n^|far| rows)
                ib = idx[b:b + step]
                T = np.empty((len(chunk), len(ib), len(DF), P))
                T[..., far] = DF[None, None]
                T[..., near] = CX[:, ib][:, :, None, :]
                T[..., S] = CA[rows][:, None, None, :]
                vals = np.asarray(f(T.reshape(-1, P)), dtype=float).reshape(len(chunk), len(ib), len(DF)) @ WF
                acc += np.sum(vals * np.prod(W[:, ib], axis=-1), axis=1)
                evals += T.size // P
            G[rows] = acc
    if orbit is not None:
        G, A = G[orbit.ravel()], A_all
    C1 = _axis_characters(xa, kmax, C0)
    C = np.ones((len(A), kmax + 1))
    for ij in np.indices((N,) * len(S)).reshape(len(S), -1):     # the node index of each point on axis j
        C *= C1[ij]
    return (WA * G) @ C, evals


def _axis_characters(x, kmax: int, C0: int) -> np.ndarray:
    """(len(x), kmax + 1): cos(k x) on C0 = 2, the normalised Gegenbauer P_k(cos x) on C0 > 2 (the
    factors of Prod_i cos(k delta_i) in :func:`corner_grid_values`, one axis)."""
    ks = np.arange(kmax + 1)
    if C0 == 2:
        return np.cos(np.outer(x, ks))
    from .multisphere import _gegenbauer_normalised
    return np.stack([_gegenbauer_normalised(k, C0, np.cos(x)) for k in ks], axis=1)


#: the most active points :func:`corner_grid_values` holds as arrays (~450 bytes a point: the full window at
#: N = 22, 5.2e6 points, peaked at 2.3 GB)
MAX_ACTIVE_POINTS = 6 * 10 ** 6

#: the full window's sum is split into this many interleaved parts (each a compensated sum, combined by
#: math.fsum), run on the threads this process may use: the parts, and so the bits, do not depend on the machine
WINDOW_PARTS = 8


def _compiled_window_sums(compiled, normalize, P, S, x, w, C1):
    """:func:`corner_grid_values` with every pixel active (the full window) by the streamed compiled loop
    :func:`numerics.conv_fused_general.window_sums`: the same rule (x, w) on every axis, characters C1
    (:func:`_axis_characters`), F by the same compiled loop as the evaluator; on mirror orbits (a conv
    spec's F is invariant under the reflection p -> -p; every spec the compiled route evaluates is one).
    Memory O(kmax + 1024 P) a thread instead of the (N^P, kmax + 1) arrays of the grid route.  Returns
    (values, number of kernel evaluations)."""
    import os
    from concurrent.futures import ThreadPoolExecutor
    from . import conv_fused_general as _fg
    if sorted(S) != list(range(P)):
        raise ValueError(f"the streamed window sums need every pixel active, got {S!r} on P = {P}")
    sigma = np.array([(-p) % P for p in range(P)], dtype=np.int64)
    xc = np.cos(x)
    outs = np.zeros((WINDOW_PARTS, C1.shape[1]))
    comps = np.zeros_like(outs)
    C1 = np.ascontiguousarray(C1, dtype=float)
    w = np.ascontiguousarray(w, dtype=float)

    def run(part):
        return _fg.window_sums(xc, w, C1, sigma, part, WINDOW_PARTS, *compiled.kernel_args, compiled.poly,
                               outs[part], comps[part])
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=min(WINDOW_PARTS, cpus)) as pool:
        evals = sum(pool.map(run, range(WINDOW_PARTS)))
    values = np.array([math.fsum(np.concatenate([outs[:, k], comps[:, k]])) for k in range(C1.shape[1])])
    if normalize:
        if not compiled.diag > 0:
            raise ValueError("normalize=True is undefined: K(x, x) = 0")
        values /= compiled.diag
    return values, int(evals)


def window_rounding(arch, kind: str, N: int, kmax: int, *, P: int | None = None, C0: int = 2) -> np.ndarray:
    """A proxy for the rounding of the full window's sums: |lambda_poly(k) - lambda_libm(k)| / (eps lambda_0),
    k = 0..kmax, the same N nodes a pixel (:func:`corner_grid_values`, streamed) summed twice with the
    compiled loop's two arccos (:data:`numerics.conv_fused.ACOS` "poly" and "libm": a different rounding
    of every kernel value's angles, the same sum).  What both share -- the nodes' cosines, the loop's
    other operations, the summation (compensated: ~eps |lambda|) -- it does not see; the error estimate
    of :func:`window_ray_spectrum` does, in part: its two rules sum different nodes.  The kernel values'
    rounding enters the sum as a random walk of N^P terms of weight ~N^-P, ~eps F N^(-P/2): measured on
    CNN(3) (P = 5) at N = 64, k >= 8: <= 2.3e-5 (NTK) and 4.7e-5 (NNGP) eps lambda_0 (docs/spectral.md
    §6.6), so the full window can be measured far below the 10 eps lambda_0 that :func:`measure_ray` asks
    of other window rays.  Needs numba (ImportError)."""
    from .multisphere import _compiled_multi_dot
    if int(N) != N or N < 2:
        raise ValueError(f"N must be an integer >= 2, got {N!r}")
    if int(kmax) != kmax or kmax < 1:
        raise ValueError(f"kmax must be a positive integer, got {kmax!r}")
    f, P = _evaluator(arch, kind, P, True, "numba")      # checks the spec, kind and P; ImportError without numba
    if getattr(f, "compiled", None) is None:
        raise ValueError(f"window_rounding needs a conv spec (the compiled loop), got {arch!r}")
    x, w = graded_rule(int(N), 2 if C0 == 2 else 4)
    w = w * _sphere_weight(x, C0)
    C1 = _axis_characters(x, kmax, C0)
    vals = [_compiled_window_sums(_compiled_multi_dot(arch, P, kind, acos), True, P, list(range(P)), x, w, C1)[0]
            for acos in ("poly", "libm")]
    return np.abs(vals[0] - vals[1]) / (np.finfo(float).eps * abs(vals[0][0]))


def _mirror_invariant(pixels, P: int) -> bool:
    """Whether the reflection p -> -p (mod P) maps the set of pixels onto itself."""
    return sorted((-p) % P for p in pixels) == sorted(pixels)


def _compiled_corner_sums(compiled, normalize, P, S, CA, near, rules, far, DF, WF):
    """G of :func:`corner_grid_values` by one compiled loop, :func:`numerics.conv_fused_general.tensor_sums`
    (the grid generated in blocks, compensated sums; F by the same compiled loop as the evaluator, so each
    value is the same bits, only the order of the sum differs).  Returns (G, number of evaluations)."""
    from . import conv_fused_general as _fg
    base = np.zeros((len(CA), P))
    base[:, S] = CA
    Lmax = max(1, max(len(x) for x, _ in rules))
    XC, XW = np.zeros((len(CA), Lmax)), np.zeros((len(CA), Lmax))
    XL = np.zeros(len(CA), dtype=np.int64)
    for i, (x, w) in enumerate(rules):
        XC[i, :len(x)], XW[i, :len(x)], XL[i] = np.cos(x), w, len(x)
    if not near:
        XL[:] = 1          # no near axis: one (empty) node of weight 1
    # a conv spec's F is invariant under the reflection p -> -p of the pixels (odd filters, taps -h..h with
    # equal weights): on a one-pixel ray at pixel 0 without far pixels the near grid is summed over orbits
    mirror = np.zeros(0, dtype=np.int64)
    if list(S) == [0] and not far and _mirror_invariant(near, P):
        mirror = np.array([near.index((-p) % P) for p in near], dtype=np.int64)
        # tensor_sums folds orbits of one or two nodes: the permutation must be an involution
        assert np.array_equal(mirror[mirror], np.arange(len(mirror))), mirror
    G = np.empty(len(CA))
    _fg.tensor_sums(base, np.array(near, dtype=np.int64), XC, XW, XL, np.array(far, dtype=np.int64),
                    np.ascontiguousarray(DF, dtype=float), np.ascontiguousarray(WF, dtype=float), mirror,
                    *compiled.kernel_args, compiled.poly, G)
    if normalize:
        if not compiled.diag > 0:
            raise ValueError("normalize=True is undefined: K(x, x) = 0")
        G /= compiled.diag
    evals = int(np.sum(XL.astype(float) ** len(near))) * len(DF)
    if len(mirror):     # orbits: (L^m + L^c) / 2 nodes a point, c the cycles of mirror (L^c nodes it fixes)
        c = len({frozenset((a, int(b))) for a, b in enumerate(mirror)})
        evals = int(np.sum((XL.astype(float) ** len(near) + XL.astype(float) ** c) / 2))
    return G, evals


def window_ray_spectrum(F, support, kmax: int = 32, kind: str = "ntk", *, P: int | None = None, near=None,
                        N: int | None = None, N2: int | None = None, g: int = 8, q: float = 4.0, n: int = 6,
                        n2: int | None = None, normalize: bool = True, backend: str = "auto",
                        C0: int = 2, r_active: int | None = None, corner: str = "nearer") -> RaySpectrum:
    """lambda(k e_S), k = 0..kmax, for a support of two or more pixels (pairs, the full window) on MS(C0, P),
    or of one pixel whose near pixels need the corner rule that :func:`ray_spectrum` and
    :func:`sphere_ray_spectrum` lack (ResCNN: every ReLU sees three pixels).

    Rules (module docstring, 'multi-pixel rays'): :func:`corner_grid_values` with N active nodes a pixel,
    near inactive pixels (default :func:`near_pixels` for a spec, every inactive pixel for a callable) on
    :func:`corner_rule` (g, q) and far ones on the graded rule.  Values from (N, g, n2); error estimate
    |(N, g, n2) - (N2, g, n2)| + |(N2, g, n2) - (N2, g - 1, n)|, each term the change from a coarser to
    the finer rule, and at each k the largest of that sum at k - 1, k and k + 1 (a difference can cross
    zero at one k: the C0 = 3 product-kernel pair ray at k = 10 had 9e-15 against an error of 4e-14).
    Defaults: r_active = 2 on C0 = 2 (the graded active rule stretches delta by up to 2, so N > 2 k
    resolves cos(k delta)) and 4 on C0 > 2 (the density sin^(C0-2) theta is odd at theta = 0; r = 4
    stretches by up to 8/3); N2 = 5 kmax / 2 + 8 for r = 2 (measured on CNN(3) pairs: N2 = 2.75 kmax
    changes lambda(kmax) by < 1e-3), ceil(1.25 stretch kmax) + 8 otherwise; N = N2 + 24, n2 = n + 2.
    C0: pixels on S^(C0-1) (Legendre / Gegenbauer sums and the sphere density on every axis, see
    :func:`corner_grid_values`); backend: the kernel evaluator of a spec (module docstring).
    corner: the near pixels' rule, "nearer" (:func:`corner_rule` towards the corner nearer to the active
    point) or "both" (:func:`two_sided_corner_rule`, continuous in the active point: ~5x the evaluations,
    and the rule for the pairs that only the full window contains, whose lambda falls below the ~1e-13
    plateau that "nearer"'s switch between the corners leaves, docs/spectral.md §6.6).  With "both", a
    spec (invariant under the reflection p -> -p of the pixels) on a support that the reflection maps
    onto itself has G computed on one active point of each mirror orbit, half the points ("nearer" keeps
    every point, so its results are those measured before the option existed, bit for bit -- except the
    full window with a compiled evaluator, which every corner setting sums streamed on mirror orbits).

    Measured (CNN(3) center, benchmarks/bench_ray_spectra.py, points k >= 8 with estimated error <= 1%,
    slope as in :func:`slope_with_error`; docs/spectral.md §6.6): e0+e1 / e0+e2 to k = 64, 57 of 57
    points each, NNGP (g = 10) -5.977 / -5.978 (predicted -6), NTK (g = 8) -3.988 / -3.989 (predicted
    -4), 32 / 11 / 22 / 10 s CPU with the compiled evaluator; on C0 = 3 the NTK pairs (g = 10) -6.91 /
    -6.93 (predicted -7).  Full window (k, ..., k), every pixel active: no inactive rule (the estimate is the
    active rules' change), and with the compiled evaluator the streamed sums of :func:`corner_grid_values`
    (mirror orbits, ~90 ns a node on 2 threads): NNGP to k = 20 (2.2e9 nodes, 175 s CPU), NTK to k = 24
    (4.0e9, 359 s), every k estimated within 1e-5 of lambda; slopes -7.92 +- 0.17 (k = 8..16, above
    10 eps lambda_0) and -5.96 +- 0.08 (k = 8..24), predicted -8 and -6.  Pairs at distance 3 / 4 (corner="both", g = 10, even k): NTK every k = 8..64 within
    1%, -5.997 / -5.985 (predicted -6), 772 / 401 s CPU (the latter on mirror orbits)."""
    f, P = _evaluator(F, kind, P, normalize, backend)
    if int(kmax) != kmax or kmax < 1:
        raise ValueError(f"kmax must be a positive integer, got {kmax!r}")
    S = [int(i) % P for i in support]
    if not S:
        raise ValueError(f"support must hold one or more pixels, got {support!r}")
    if near is None:
        near = near_pixels(F, S, P) if callable(getattr(F, "kernel_maps", None)) else [i for i in range(P) if i not in S]
    # the active rule: r = 2 on C0 = 2; on C0 > 2 the density sin^(C0-2) theta is odd at theta = 0, and
    # r = 2 leaves the integrand ~ s^3 there (an error ~ N^-4 common to every k: 3e-12 on ResCNN(1)
    # e0, C0 = 3, N = 84); r = 4 makes it s^5 and stretches delta by up to 8/3
    stretches = {0: 1.0, 2: 2.0, 4: 8 / 3, 6: 3.2}      # max psi_r' of graded_rule
    r_active = (2 if C0 == 2 else 4) if r_active is None else r_active
    if r_active not in stretches or isinstance(r_active, bool):
        raise ValueError(f"r_active must be 0, 2, 4 or 6, got {r_active!r}")
    stretch = stretches[r_active]
    N2 = int(N2 or (5 * kmax // 2 + 8 if r_active == 2 else math.ceil(1.25 * stretch * kmax) + 8))
    N = int(N or N2 + 24)
    n2 = int(n2 or n + 2)
    if N2 >= N or N2 <= stretch * kmax:
        raise ValueError(f"N2 must lie in ({stretch:g} kmax, N) so that both active rules resolve kmax (the graded "
                         f"rule r = {r_active} stretches delta by up to {stretch:g}), got N={N}, N2={N2}")
    if g < 3:
        raise ValueError(f"g must be >= 3 (the coarse rule uses g - 1), got {g!r}")
    rules = dict(q=q, C0=C0, r_active=r_active, corner=corner,      # corner: checked by corner_grid_values
                 mirror=corner == "both" and callable(getattr(F, "kernel_maps", None)))
    fine, e1 = corner_grid_values(f, P, S, near, kmax, N, g, n2, **rules)
    act, e2 = corner_grid_values(f, P, S, near, kmax, N2, g, n2, **rules)
    if near or len(S) < P:
        inact, e3 = corner_grid_values(f, P, S, near, kmax, N2, g - 1, n, **rules)
    else:           # no inactive pixel (the full window): the inactive rules do not enter, the same bits
        inact, e3 = act, 0
    active_err, rest_err = np.abs(fine - act), np.abs(act - inact)
    # a difference of two rules can cross zero at one k while both rules still err there: each k takes
    # the largest estimate of k - 1, k, k + 1 (the rules' errors vary smoothly with k)
    raw = active_err + rest_err
    error = raw.copy()
    error[1:] = np.maximum(error[1:], raw[:-1])
    error[:-1] = np.maximum(error[:-1], raw[1:])
    return RaySpectrum(support=tuple(support), values=fine, error=error,
                       parts={"active": active_err, "inactive": rest_err, "evals": e1 + e2 + e3,
                              "rules": {"N": N, "N2": N2, "g": g, "q": q, "n": n, "n2": n2, "near": list(near),
                                        "C0": C0, "r_active": r_active, "corner": corner}})


def singular_windows(arch, P: int | None = None) -> list:
    """The pixel windows (frozensets of axes mod P) on which a ReLU of the center readout sees its
    input: the dual activation of every Nonlinear / Block map at every position that reaches pixel 0.
    Each window A carries a term (mean_{i in A} (1 - t_i))^nu of F (module docstring)."""
    P = P or 2 * receptive_radius(arch) + 1
    return sorted({A for A, _ in _dual_windows(arch, P)}, key=lambda s: (len(s), sorted(s)))


def _dual_windows(arch, P) -> list:
    """(window, ntk) for every dual activation and position of :func:`singular_windows`; ``ntk`` says
    whether the NTK reaching that dual is nonzero: the derivative dual (power nu_NTK, 1/2 for ReLU)
    multiplies the NTK of the dual's input, which is 0 when nothing before the dual is trained (a
    fixed stem before the first Nonlinear; a Block's branch starts with its own trained conv), and
    then that dual's NTK term has only the NNGP dual's power."""
    from reskernels.theory import layers as _L
    maps = arch.kernel_maps()
    if getattr(maps[-1], "pooling", None) != "center":
        raise ValueError("singular_windows: center readout only (flatten = shift average of center)")
    w = (maps[0].stem_size - 1) // 2
    duals = []                                   # (radius of the dual's input window, map index)
    for j, m in enumerate(maps[1:], 1):
        if isinstance(m, _L.Nonlinear):
            duals.append((w, j))
            w += (m.filter_size - 1) // 2
        elif isinstance(m, _L.Block):
            duals.append((w + (m.filter_size - 1) // 2, j))
            w += m.filter_size - 1
    C = {0}
    centers = {}
    for j in range(len(maps) - 1, 0, -1):
        m = maps[j]
        q = getattr(m, "filter_size", 1)
        h = (q - 1) // 2
        taps = range(-h, h + 1)
        if isinstance(m, _L.Nonlinear):
            C = {c + d for c in C for d in taps}
            centers[j] = C
        elif isinstance(m, _L.Block):
            out = {c + d for c in C for d in taps}
            centers[j] = out
            C = C | {c + d for c in out for d in taps}

    def ntk_reaches(j):
        if isinstance(maps[j], _L.Block) or getattr(maps[0], "trained", True):
            return True
        return any(isinstance(m, _L.Block) or getattr(m, "trained", False) for m in maps[1:j])
    return sorted({(frozenset((c + d) % P for d in range(-rad, rad + 1)), ntk_reaches(j))
                   for rad, j in duals for c in centers[j]}, key=lambda x: (len(x[0]), sorted(x[0]), x[1]))


def dual_endpoint_power(arch, kind: str):
    """nu of the activation's dual at rho -> 1, from the exact endpoint expansion (sympy,
    :func:`theory.endpoints.endpoint_coefficients`) of the one-layer FC kernel with the same
    activation: 3/2 for the ReLU NNGP (kappa_1), 1/2 for the NTK (kappa_0)."""
    from reskernels.theory import MLP
    from reskernels.theory.endpoints import endpoint_coefficients
    act = getattr(arch, "activation", None)
    fc = MLP(depth=1) if act is None else MLP(depth=1, activation=act)
    return endpoint_coefficients(fc, kind)["nu"]


def predicted_exponent(arch, kind: str, support, C0: int = 2, P: int | None = None):
    """p with lambda(k e_S) ~ k^-p along the ray on S: min over the singular windows A containing S of
    2 nu + |A| (C0 - 1) (module docstring), where nu is the NTK dual's power only for duals that some
    trained parameter precedes (else the NNGP dual's: :func:`_dual_windows`); None when no single window
    contains S (then only products of window terms reach the ray, or it vanishes)."""
    P = P or 2 * receptive_radius(arch) + 1
    S = frozenset(int(i) % P for i in support)
    nu = dual_endpoint_power(arch, kind)
    nu_nngp = dual_endpoint_power(arch, "nngp")
    windows = set(singular_windows(arch, P))
    cands = [2 * (nu if (kind == "nngp" or ntk) else nu_nngp) + len(A) * (C0 - 1)
             for A, ntk in _dual_windows(arch, P) if S <= A and A in windows]
    if not cands:
        return None
    return float(min(cands))


def _slope_coefficients(ks, powers=(2,)):
    """Row of the least-squares solution giving the exponent in log|lambda| = a - p log k + sum_j b_j / k^j
    (j in ``powers``)."""
    k = np.asarray(ks, dtype=float)
    A = np.stack([np.ones_like(k), np.log(k)] + [k ** -float(j) for j in powers], axis=1)
    return np.linalg.pinv(A)[1]


def slope_with_error(ks, lam, err):
    """Asymptotic log-log slope of a ray with an error bound.

    Model log|lambda| = a + s log k + b / k^2, least squares on all points.  Bound = quadrature part
    (each log|lambda_i| moved by up to err_i / |lambda_i|, propagated linearly through the fit) + model
    part: what the pre-asymptotic terms left out of the model still move, the larger of the change of s
    when the same model is fitted to the upper half of the points only and twice the change when a term
    c / k joins the model (a relative k^-1 correction, e.g. from a singular term one degree higher; the
    change estimates the omitted term's bias to first order only -- 0.99 of it for a pure
    k^-6 (1 + 1.6 / k) law on k = 8..64, hence the factor 2).  The CNN(2) NNGP pair ray (local exponents
    falling from 6.33 at k = 8 to 6.03 at k = 64) had -5.981 +- 0.017 with the upper-half change alone,
    off the predicted -6; tests/numerics/test_ray_spectra.py.  Needs >= 6 points.  Returns (s, bound)."""
    ks = np.asarray(ks, dtype=float)
    if len(ks) < 6:
        raise ValueError(f"slope_with_error needs >= 6 points, got {len(ks)}")
    y = np.log(np.abs(lam))
    rel = np.asarray(err, dtype=float) / np.abs(lam)
    c = _slope_coefficients(ks)
    slope = float(c @ y)
    quad = float(np.abs(c) @ rel)
    h = len(ks) // 2
    cu = _slope_coefficients(ks[h:])
    c1 = _slope_coefficients(ks, (1, 2))
    model = max(abs(float(cu @ y[h:]) - slope), 2 * abs(float(c1 @ y) - slope))
    quad = max(quad, float(np.abs(cu) @ rel[h:]))
    return slope, quad + model


@dataclass
class RaySlope:
    """One ray measured: converged points, slope with its bound, predicted exponent."""

    name: str
    kind: str
    support: tuple
    ks: np.ndarray
    values: np.ndarray
    errors: np.ndarray
    slope: float | None
    bound: float | None
    predicted: float | None
    kmax: int
    seconds: float

    @property
    def decided(self) -> bool:
        return self.slope is not None

    def agrees(self, offset: float = 0.0) -> bool:
        """|slope + (predicted + offset)| <= bound."""
        return self.decided and self.predicted is not None and abs(self.slope + self.predicted + offset) <= self.bound


def measure_ray(arch, kind: str, support, name: str = "", *, kmax: int = 64, rel_err: float = 0.01, kmin: int = 8,
                step: int | None = None, min_points: int = 6, C0: int = 2, floor_eps: float | None = None,
                window: bool | None = None, P: int | None = None, **rules) -> RaySlope:
    """:func:`ray_spectrum` (C0 = 2, one pixel), :func:`window_ray_spectrum` (two or more pixels, any C0; or
    ``window=True``: one pixel with the corner rule) or :func:`sphere_ray_spectrum` (C0 > 2, one pixel) on
    one ray, its
    points with estimated error <= rel_err (k >= kmin; even k on single-pixel rays, where the t = -1
    endpoint adds (-1)^k terms) and |lambda| > floor_eps eps lambda_0, and :func:`slope_with_error` when at
    least ``min_points`` qualify.

    floor_eps (default 1e3 for the one-pixel rules, 10 for the window rule): a point must stand this far
    above float64's rounding of lambda_0.  The window rule sums G Prod cos(k delta_i) directly: the
    kernel's rounding was measured with two evaluators (compiled and numpy: different arccos and
    operation order), 2e-5 of lambda apart on the CNN(3) pair e0+e2 (NNGP, k = 64, lambda = 86 eps
    lambda_0; a benchmark run) and within 1e-3 of lambda on the CNN(2) pair (0, 1) to k = 64 (tested,
    tests/numerics/test_ray_spectra.py); the summation's rounding is not in that comparison (both share
    it) but in the error estimate, whose rules sum different nodes.  The one-pixel rules go through a
    DCT / Gegenbauer sum of O(1) values, for which no such measurement is made.

    P: pixels of the circular signal (default the receptive field, 2 radius + 1); a smaller P wraps the
    receptive field (ResCNN(2) on 5 pixels: every inactive pixel shares a 3-pixel window with pixel 0,
    so all are near pixels of the window rule), and the prediction is made on the same P."""
    import time
    t0 = time.process_time()
    window = len(support) >= 2 if window is None else bool(window)
    if window:
        R = window_ray_spectrum(arch, support, kmax, kind, C0=C0, P=P, **rules)
    elif len(support) >= 2:
        raise ValueError("window=False: one pixel only (two or more pixels take window_ray_spectrum)")
    elif C0 == 2:
        R = ray_spectrum(arch, support, kmax, kind, P=P, **rules)
    else:
        R = sphere_ray_spectrum(arch, support[0], kmax, kind, C0=C0, P=P, **rules)
    step = step or (2 if len(support) == 1 else 1)
    floor_eps = (10.0 if window else 1e3) if floor_eps is None else float(floor_eps)
    ks, lam, err = R.converged(rel_err, kmin=kmin, step=step, floor=floor_eps * np.finfo(float).eps * abs(R.values[0]))
    slope = bound = None
    if len(ks) >= max(min_points, 6):
        slope, bound = slope_with_error(ks, lam, err)
    return RaySlope(name=name, kind=kind, support=tuple(support), ks=ks, values=lam, errors=err, slope=slope,
                    bound=bound, predicted=predicted_exponent(arch, kind, support, C0=C0, P=P), kmax=kmax,
                    seconds=time.process_time() - t0)


def sphere_ray_spectrum(F, pixel: int = 0, kmax: int = 64, kind: str = "ntk", *, C0: int = 3, P: int | None = None,
                        n: int = 6, n2: int | None = None, N: int | None = None, r=4,
                        normalize: bool = True, backend: str = "auto") -> RaySpectrum:
    """lambda(k e_i), k = 0..kmax, for one active pixel on MS(C0, P), any C0 >= 2.

    lambda = E[F(t) P_k(t_i)] with every t_j = cos(theta_j) distributed as c_C0 sin^(C0-2) theta d theta
    (docs/spectral.md §6.1).  All axes use :func:`graded_rule` in theta (the kink sits at theta = 0 and pi
    on every axis, and there is no periodic structure to exploit in the Gegenbauer weight); the active
    axis with N nodes (default 16 kmax), summed against the normalised Gegenbauer P_k (P_k(1) = 1).
    Error estimate: |(N, n2) - (N/2, n2)| + |(N, n2) - (N, n)|."""
    from .multisphere import _gegenbauer_normalised
    f, P = _evaluator(F, kind, P, normalize, backend)
    if int(C0) != C0 or C0 < 2:
        raise ValueError(f"C0 must be an integer >= 2, got {C0!r}")
    N = int(N or 16 * kmax)
    n2 = int(n2 or n + 2)
    i0 = int(pixel) % P
    inactive = [j for j in range(P) if j != i0]

    def axis(m):
        x, w = graded_rule(m, r)
        w = w * np.sin(x) ** (C0 - 2)
        return x, w / w.sum()           # the rule's own normalisation (error O(the rule's error))

    def run(Na, ni):
        xa, wa = axis(Na)
        xi, wi = axis(ni)
        DI, WI = _tensor_rule(xi, wi, len(inactive))
        ta = np.cos(xa)
        g = np.empty(Na)
        per = max(1, _CHUNK // len(DI))
        for a in range(0, Na, per):
            b = min(a + per, Na)
            T = np.empty((b - a, len(DI), P))
            T[:, :, inactive] = DI[None]
            T[:, :, i0] = ta[a:b, None]
            g[a:b] = np.asarray(f(T.reshape(-1, P)), dtype=float).reshape(b - a, len(DI)) @ WI
        basis = np.stack([_gegenbauer_normalised(k, C0, ta) for k in range(kmax + 1)])
        return basis @ (wa * g)

    fine = run(N, n2)
    half = run(N // 2, n2)
    coarse = run(N, n)
    active_err, rest_err = np.abs(fine - half), np.abs(fine - coarse)
    return RaySpectrum(support=(pixel,), values=fine, error=active_err + rest_err,
                       parts={"active": active_err, "inactive": rest_err,
                              "rules": {"n": n, "n2": n2, "N": N, "r": r, "C0": C0}})

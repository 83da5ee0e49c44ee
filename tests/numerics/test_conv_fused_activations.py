"""The compiled conv loops for every closed-form activation and for biases (issues 13 and 15).

Ground truths: the numpy interpreters (same formulas, same operation order: agreement to a few ulps
per layer), the fully connected engines on unit pixels (exact diagonals), and an independent mpmath
route written here on full (input, pixel) covariance matrices that interprets the spec's fine steps
(Input, Conv, Dual, Residual, Readout) with the activations' ``dual`` hooks -- no kernel maps, no
offsets, no recorded variances."""
import mpmath
import numpy as np
import pytest

from reskernels.numerics import gram
from reskernels.numerics.conv import ConvGramPlan
from reskernels.numerics.tolerances import EPS, float64_kernel_rtol
from reskernels.numerics.variance import MpmathContext, NumpyContext
from reskernels.theory import CNN, MLP, ResCNN, ResNet
from reskernels.theory import activations as A_
from reskernels.theory import layers as _L
from reskernels.theory.activations import (ENGINE_IDS, abs_, cos, erf, leaky_relu, monomial, rectified_monomial,
                                           relu, sin, step)

numba = pytest.importorskip("numba")
from reskernels.numerics import conv_fused_general as _fg  # noqa: E402  (needs numba)

ACTS = [leaky_relu(0.1), abs_(), leaky_relu(-0.6), step(), erf(), sin(), cos(), monomial(2), monomial(3),
        rectified_monomial(2), rectified_monomial(3), relu()]
ids = [repr(a) for a in ACTS]


def _points():
    """(qx, qz, S): generic correlations, near-parallel and near-antiparallel ones, exact diagonals."""
    rng = np.random.default_rng(4)
    qx = rng.uniform(0.2, 3.0, 400)
    qz = rng.uniform(0.2, 3.0, 400)
    rho = np.concatenate([rng.uniform(-0.99, 0.99, 300), 1 - 10.0 ** -rng.uniform(3, 15, 40),
                          -1 + 10.0 ** -rng.uniform(3, 15, 40), np.ones(20)])
    S = rho * np.sqrt(qx * qz)
    S[-20:] = qx[-20:]
    qz[-20:] = qx[-20:]
    return qx, qz, S


def _engine_arrays(act):
    ap = np.zeros(5)
    ap[:len(act.engine_params)] = act.engine_params
    return ap, np.array(act.engine_coefs, dtype=np.float64)


@pytest.mark.parametrize("act", ACTS, ids=ids)
@pytest.mark.parametrize("acos", ["poly", "libm"])
def test_compiled_duals_agree_with_the_dual_hooks(act, acos):
    """dual_grid (the pair loop) and dual (the diagonal run) vs the hook on the numpy context: a few
    ulps of the Cauchy-Schwarz scale sqrt(E(qx, qx, qx) E(qz, qz, qz)) (transcendentals differ by
    <= 3 ulps each); the two compiled forms agree bit for bit; E(q, q, q) gives kappa0 = kappa1 = 1."""
    qx, qz, S = _points()
    ap, cf = _engine_arrays(act)
    poly = acos == "poly"
    E1, E0, W = np.empty_like(S), np.empty_like(S), np.empty((4, S.size))
    # sin, cos: the pair loop reads the per-pixel factors exp(-q / 2) (half_exp)
    ex, ez = (_fg.half_exp(qx), _fg.half_exp(qz)) if act.engine_id in (5, 6) else (qx, qz)
    _fg.dual_grid(act.engine_id, ap, cf, ex.copy(), ez.copy(), S, E1, E0, W, poly)
    one = np.array([_fg.dual(act.engine_id, ap, cf, a, b, s, poly) for a, b, s in zip(qx, qz, S)])
    assert np.array_equal(one[:, 0], E1) and np.array_equal(one[:, 1], E0)
    ctx = NumpyContext()
    W1, W0 = act.dual(qx, qz, S, ctx)
    D1x, D0x = act.dual(qx, qx, qx, ctx)
    D1z, D0z = act.dual(qz, qz, qz, ctx)
    for got, want, sx, sz in ((E1, W1, D1x, D1z), (E0, W0, D0x, D0z)):
        scale = np.sqrt(np.abs(sx * sz))
        bad = np.abs(got - want) > 8 * EPS * np.where(scale > 0, scale, 1)
        assert not bad.any(), list(zip(qx[bad], qz[bad], S[bad], got[bad], want[bad]))[:5]


@pytest.mark.parametrize("act", ACTS, ids=ids)
def test_compiled_duals_agree_with_mpmath(act):
    """The compiled dual at generic correlations (|rho| <= 0.99: arccos amplifies the rounding of rho
    by <= 7) against the hook in 30-digit mpmath: 64 eps of the Cauchy-Schwarz scale."""
    qx, qz, S = (a[:300] for a in _points())
    ap, cf = _engine_arrays(act)
    ctx = MpmathContext()
    for a, b, s in zip(qx[::7], qz[::7], S[::7]):
        got = _fg.dual(act.engine_id, ap, cf, a, b, s, True)
        with mpmath.workdps(30):
            want = act.dual(mpmath.mpf(a), mpmath.mpf(b), mpmath.mpf(s), ctx)
            dx = act.dual(mpmath.mpf(a), mpmath.mpf(a), mpmath.mpf(a), ctx)
            dz = act.dual(mpmath.mpf(b), mpmath.mpf(b), mpmath.mpf(b), ctx)
            for k in range(2):
                scale = mpmath.sqrt(abs(dx[k] * dz[k]))
                assert abs(got[k] - want[k]) <= 64 * EPS * max(scale, mpmath.mpf(1e-300)), (act, a, b, s, k)


def test_engine_ids_are_unique_and_all_compiled():
    """Every family of ENGINE_IDS has one id, and the variance-carrying loop knows all of them."""
    assert len(set(ENGINE_IDS.values())) == len(ENGINE_IDS)
    assert set(ENGINE_IDS.values()) == set(_fg.GENERAL_IDS)
    assert {a.engine_id for a in ACTS} == set(ENGINE_IDS.values())


# ---- whole programs: numba vs the numpy interpreters ---------------------------------------------

def _archs(act):
    yield ResCNN(2, 0.6, activation=act, filter_size=3, stem_size=3, bias_var=0.1)
    yield CNN(2, activation=act, filter_size=3, readout="flatten", weight_var=1.0)
    yield ResCNN(2, 0.9, activation=act, readout="center", trained="hidden", bias_var=0.2)
    yield CNN(3, activation=act, readout="gap", trained="hidden", filter_size=3)


@pytest.mark.parametrize("act", ACTS, ids=ids)
@pytest.mark.parametrize("kind", ["ntk", "nngp"])
def test_compiled_loop_matches_numpy_interpreter(act, kind):
    """Same maps, same operation order: agreement to a few ulps per layer of sqrt(K(x,x) K(z,z))
    (flatten diagonals, the Cauchy-Schwarz bound of every pixel-pair term), on 5 x 4 images with more
    pixels than taps, (anti)parallel pairs (x, -2.5 x) and a cross block; the symmetric Gram matrix
    is exactly symmetric.  Positively homogeneous activations without biases run on the normalised
    loop, all others on the variance-carrying one."""
    rng = np.random.default_rng(11)
    X = 0.7 * rng.standard_normal((5, 5, 4, 2))
    X[3] = -2.5 * X[1]
    Z = 0.7 * rng.standard_normal((3, 5, 4, 2))
    for arch in _archs(act):
        plan = ConvGramPlan(arch, X, kind=kind)
        assert plan.backend == "numba", arch.slug
        sa = arch.replace(readout="flatten") if arch.readout == "gap" else arch
        dx = np.diag(gram(sa, X, kind=kind, backend="numpy"))
        dz = np.diag(gram(sa, Z, kind=kind, backend="numpy"))
        tol = float64_kernel_rtol(arch.depth + 2, per_layer=32)   # override: as test_conv_fused
        for Zs, dd in ((None, dx), (Z, dz)):
            a = gram(arch, X, Zs, kind=kind, backend="numpy")
            b = gram(arch, X, Zs, kind=kind, backend="numba")
            scale = np.sqrt(np.abs(np.outer(dx, dd)))
            assert np.all(np.abs(a - b) <= tol * np.where(scale > 0, scale, 1)), (arch.slug, np.max(np.abs(a - b) / scale))
            if Zs is None:
                assert np.array_equal(b, b.T)


@pytest.mark.parametrize("act", ACTS, ids=ids)
@pytest.mark.parametrize("bias", [0.0, 0.3])
def test_unit_pixel_diagonals_are_the_fully_connected_diagonals(act, bias):
    """Unit pixels: every pixel pair (x_p, x_p) is the FC kernel at t = 1 (the FC engines: half angles or
    the variance-carrying interpreter), so flatten and center diagonals equal gram(MLP / ResNet) of a
    unit vector to a few ulps -- rho = 1 exactly in the compiled loops (a rounded rho would cost
    ~sqrt(eps) for the kinked duals).  A (rectified) monomial of degree n maps a relative error of the
    variance to n times it, so the bound is 16 eps n^depth (depth 3: 27 x for n = 3, ~1e-13)."""
    X = np.random.default_rng(0).standard_normal((3, 4, 5, 2))
    X /= np.linalg.norm(X, axis=-1, keepdims=True)
    u = np.array([[0.6, 0.8]])
    for conv, fc in ((CNN(3, activation=act, bias_var=bias, filter_size=3), MLP(3, activation=act, bias_var=bias)),
                     (ResCNN(3, 0.7, activation=act, bias_var=bias, filter_size=3),
                      ResNet(3, 0.7, activation=act, bias_var=bias))):
        for kind in ("ntk", "nngp"):
            want = gram(fc, u, kind=kind)[0, 0]
            for readout in ("flatten", "center"):
                got = np.diag(gram(conv.replace(readout=readout), X, kind=kind, backend="numba"))
                np.testing.assert_allclose(got, want, rtol=16 * EPS * _degree(act) ** 3, atol=0)


def _degree(act):
    """The degree of positive homogeneity of a (rectified) monomial, else 1."""
    return max(1, int(act.engine_params[0])) if act.engine_id in (3, 7) else 1


def test_programs_without_a_compiled_dual_stay_on_numpy():
    """A kinked user function (Gauss-Legendre panels, no Hermite series): auto takes numpy, an
    explicit numba raises naming the alternative; tanh (its Hermite series) takes the loop."""
    from reskernels.theory.activations import from_function
    hard_tanh = from_function(lambda x: np.clip(x, -1.0, 1.0), lambda x: (np.abs(x) < 1) * 1.0,
                              name="hard_tanh", kinks=[-1.0, 1.0])
    X = np.random.default_rng(1).standard_normal((2, 4, 1))
    assert ConvGramPlan(CNN(2, activation=hard_tanh), X).backend == "numpy"
    assert ConvGramPlan(CNN(2, activation="tanh"), X).backend == "numba"
    with pytest.raises(NotImplementedError, match="numpy"):
        gram(CNN(2, activation=hard_tanh), X, backend="numba")
    with pytest.raises(NotImplementedError, match="cupy|numpy"):
        ConvGramPlan(CNN(2, activation=step()), X, backend="cupy")


@pytest.mark.parametrize("act", [step(), leaky_relu(0.1), erf(), rectified_monomial(2), monomial(2), sin(), cos()],
                         ids=repr)
def test_libm_and_polynomial_arccos_agree(act, monkeypatch):
    """acos / asin / expm1 by numerics.fastmath (default) vs libm in the compiled loops: a few ulps of
    the largest value; flatten diagonals bit for bit (rho = 1: arccos(1) = 0 in both)."""
    from reskernels.numerics import conv_fused
    X = np.random.default_rng(3).standard_normal((6, 5, 5, 2))
    out = {}
    for mode in ("libm", "poly"):
        monkeypatch.setattr(conv_fused, "ACOS", mode)
        out[mode] = [gram(a, X, backend="numba") for a in
                     (ResCNN(2, 0.5, activation=act, bias_var=0.1), CNN(2, activation=act, readout="flatten"))]
    for a, b in zip(out["libm"], out["poly"]):
        assert np.max(np.abs(a - b)) <= 16 * np.spacing(np.max(np.abs(a)))
    if act.engine_id not in (4, 5, 6):        # erf: arcsin of a rho below 1; sin, cos: expm1(q)
        assert np.array_equal(np.diag(out["libm"][1]), np.diag(out["poly"][1]))


# ---- the independent mpmath route -----------------------------------------------------------------

def _taps(q, H, W):
    r = (q - 1) // 2
    return [(a, b) for a in ([0] if H == 1 else range(-r, r + 1)) for b in range(-r, r + 1)]


def reference_mp(arch, X, kind, dps=30):
    """Gram matrix by the spec's fine steps on the joint covariance of all (input, pixel) units:
    M[(a, i), (b, j)], the patch operator by explicit index arithmetic, Dual by the hook in mpmath
    (variances read off M's diagonal), Residual's last Conv scaled by alpha^2 with its bias kept
    (docs/conventions.md, "Biases and other activations")."""
    n, H, W, C = X.shape
    P = H * W
    N = n * P
    unit = [(a, h, w) for a in range(n) for h in range(H) for w in range(W)]
    index = {u: k for k, u in enumerate(unit)}
    ctx = MpmathContext(want_ntk=True)

    def num(v):
        return mpmath.mpf(repr(float(v)))

    def patch(M, q):
        taps = _taps(q, H, W)
        out = [[None] * N for _ in range(N)]
        for k1, (a, h1, w1) in enumerate(unit):
            for k2, (b, h2, w2) in enumerate(unit):
                tot = mpmath.mpf(0)
                for dh, dw in taps:
                    tot += M[index[(a, (h1 + dh) % H, (w1 + dw) % W)]][index[(b, (h2 + dh) % H, (w2 + dw) % W)]]
                out[k1][k2] = tot / len(taps)
        return out

    def lin(M, c, b):
        return [[c * v + b for v in row] for row in M]

    def add(A, B):
        return [[x + y for x, y in zip(r, s)] for r, s in zip(A, B)]

    def conv(step, S, T, scale=1):
        c, b = num(step.weight_var) * scale, num(step.bias_var)
        Sn = lin(patch(S, step.filter_size), c, b)
        Tn = lin(patch(T, step.filter_size), c, 0)
        return Sn, (add(Tn, Sn) if step.trained else Tn)

    def dual(act, S, T):
        E1 = [[None] * N for _ in range(N)]
        E0 = [[None] * N for _ in range(N)]
        for i in range(N):
            for j in range(N):
                e1, e0 = act.dual(S[i][i], S[j][j], S[i][j], ctx)
                E1[i][j], E0[i][j] = e1, e0 * T[i][j]
        return E1, E0

    def run(steps, S, T):
        for st in steps:
            if isinstance(st, _L.Conv):
                S, T = conv(st, S, T)
            elif isinstance(st, _L.Dual):
                S, T = dual(st.activation, S, T)
            elif isinstance(st, _L.Residual):
                first, act, last = st.branch
                Sb, Tb = conv(first, S, T)
                Sb, Tb = dual(act.activation, Sb, Tb)
                Sb, Tb = conv(last, Sb, Tb, scale=num(st.alpha) ** 2)
                S, T = add(S, Sb), add(T, Tb)
            else:
                raise TypeError(type(st).__name__)
        return S, T

    with mpmath.workdps(dps):
        steps = arch.layers()
        inp, body, ro = steps[0], steps[1:-1], steps[-1]
        dots = [[mpmath.fsum(num(X[a, h1, w1, ch]) * num(X[b, h2, w2, ch]) for ch in range(C))
                 for (b, h2, w2) in unit] for (a, h1, w1) in unit]
        S = lin(patch(dots, inp.stem_size), num(inp.input_var), num(inp.bias_var))
        T = S if inp.trained else [[mpmath.mpf(0)] * N for _ in range(N)]
        S, T = run(body, S, T)
        out = np.empty((n, n), dtype=object)
        for a in range(n):
            for b in range(n):
                ks = [(index[(a, h, w)], index[(b, h, w)]) for h in range(H) for w in range(W)]
                if ro.pooling == "center":
                    pairs = [(index[(a, 0, 0)], index[(b, 0, 0)])]
                elif ro.pooling == "flatten":
                    pairs = ks
                else:
                    pairs = [(i, j) for i, _ in ks for _, j in ks]
                pool = lambda M: mpmath.fsum(M[i][j] for i, j in pairs) / len(pairs)
                c, bv = num(ro.weight_var), num(ro.bias_var)
                Sk = c * pool(S) + bv
                Tk = c * pool(T) + (Sk if ro.trained else 0)
                out[a, b] = Tk if kind == "ntk" else Sk
        return out


@pytest.mark.mp
@pytest.mark.parametrize("act", [leaky_relu(0.2), step(), erf(), sin(), monomial(2), rectified_monomial(2)], ids=repr)
def test_compiled_loop_matches_independent_mpmath_route(act):
    """numba vs :func:`reference_mp` (dps 30) on 1-D signals of 5 pixels with 3-tap filters and a
    near-parallel pair: float64_kernel_rtol(depth + 2, 100) of the Cauchy-Schwarz scale (as
    test_conv's oracle check), for a ResCNN with biases and a CNN without."""
    rng = np.random.default_rng(5)
    X = 0.8 * rng.standard_normal((3, 5, 2))
    X[2] = X[0] + 1e-3 * rng.standard_normal((5, 2))
    for arch in (ResCNN(2, 0.7, activation=act, bias_var=0.2, filter_size=3, trained="hidden"),
                 CNN(2, activation=act, filter_size=3, stem_size=3, readout="gap", weight_var=1.5)):
        for kind in ("ntk", "nngp"):
            got = gram(arch, X, kind=kind, backend="numba")
            want = reference_mp(arch, X[:, None], kind)
            sa = arch.replace(readout="flatten")
            d = np.diag(reference_mp(sa, X[:, None], kind).astype(float))
            scale = np.sqrt(np.abs(np.outer(d, d)))
            tol = float64_kernel_rtol(arch.depth + 2, per_layer=100)   # override: as test_conv's oracle check
            err = np.abs(got - want.astype(float))
            assert np.all(err <= tol * scale), (arch.slug, kind, np.max(err / scale))


@pytest.mark.parametrize("name", ["sin", "cos"])
def test_compiled_sin_cos_duals_at_large_variances_within_4_eps_of_mpmath(name):
    """The compiled duals as the loops call them -- dual_grid on the factors of half_exp (variances
    above HALF_EXP_MAX_VARIANCE flagged, taken by sin_dual_large after the branch-free pass), and the
    scalar dual of the diagonal run -- against mpmath on the same arguments (the cases of
    test_activations), within 4 eps of the scale (measured 0.5 eps); the flag is planted away
    (the factor exp(-q/2) underflowing to 0 as before) as a negative control."""
    from .test_activations import sin_cos_large_variance_cases
    act = {"sin": sin, "cos": cos}[name]()
    ap, cf = np.asarray(act.engine_params, float), np.asarray(act.engine_coefs, float)
    eps = np.finfo(float).eps
    cases = sin_cos_large_variance_cases(act)
    QX = _fg.half_exp(np.array([c[0] for c in cases]))
    QZ = _fg.half_exp(np.array([c[1] for c in cases]))
    assert np.sum(QX <= 0) >= 30                           # flagged: the variance itself, negated
    S = np.array([c[2] for c in cases])
    for poly in (True, False):
        E1, E0 = np.empty(S.size), np.empty(S.size)
        _fg.dual_grid(act.engine_id, ap, cf, QX.copy(), QZ.copy(), S, E1, E0, np.empty((4, S.size)), poly)
        for i, (qx, qz, s, E, scale) in enumerate(cases):
            one = _fg.dual(act.engine_id, ap, cf, qx, qz, s, poly)
            for k, got in ((0, E1[i]), (1, E0[i]), (0, one[0]), (1, one[1])):
                assert abs(got - E[k]) <= 4 * eps * scale[k], (qx, qz, s, k, got, E[k], poly)
    with np.errstate(all="ignore"):                          # planted: no flag, exp(-q/2) as before
        PX = np.exp(-np.array([c[0] for c in cases]) / 2)
        PZ = np.exp(-np.array([c[1] for c in cases]) / 2)
    E1, E0 = np.empty(S.size), np.empty(S.size)
    _fg.dual_grid(act.engine_id, ap, cf, PX, PZ, S, E1, E0, np.empty((4, S.size)), True)
    ok = [abs(E1[i] - c[3][0]) <= 4 * eps * c[4][0] for i, c in enumerate(cases)]
    assert sum(ok) < len(cases) - 20


def test_the_compiled_threshold_is_the_documented_one():
    """numba freezes HALF_EXP_MAX_VARIANCE into the cached loops, so the compiled module keeps it as a
    literal: it must equal theory.activations' (the numpy route's)."""
    assert _fg.HALF_EXP_MAX_VARIANCE == A_.HALF_EXP_MAX_VARIANCE == 708.0

"""Independent conv-kernel reference: the contract's formulas on full P x P matrices in
mpmath (dps 30), positions flattened, circular taps by explicit index arithmetic.
Shares no code with numerics.conv (no (i, r) coordinates, no rolls, no half angles)."""
import mpmath

from reskernels.theory import CNN


def _positions(H, W):
    return [(h, w) for h in range(H) for w in range(W)]


def _taps(q, H, W, one_d):
    r = (q - 1) // 2
    hs = [0] if one_d else range(-r, r + 1)
    return [(a, b) for a in hs for b in range(-r, r + 1)]


def kernel_pair(arch, x, z, kind):
    """x, z: nested lists (H, W, C) of floats; returns the kernel value as mpf."""
    one_d = len(x) == 1
    H, W = len(x), len(x[0])
    pos = _positions(H, W)
    idx = {p: i for i, p in enumerate(pos)}
    c = mpmath.mpf(repr(arch.weight_var))
    iv = mpmath.mpf(repr(arch.input_var))

    def shift(p, d):
        return ((p[0] + d[0]) % H, (p[1] + d[1]) % W)

    def patch(M, q):
        taps = _taps(q, H, W, one_d)
        return [[mpmath.fsum(M[idx[shift(pi, d)]][idx[shift(pj, d)]] for d in taps) / len(taps)
                 for pj in pos] for pi in pos]

    def dot(u, v):
        return mpmath.fsum(mpmath.mpf(a) * mpmath.mpf(b) for a, b in zip(u, v))

    def stem(u, v):
        return [[iv * dot(u[pi[0]][pi[1]], v[pj[0]][pj[1]]) for pj in pos] for pi in pos]

    def phi(Mxz, Mxx, Mzz):
        P1, P0 = [], []
        for i in range(len(pos)):
            r1, r0 = [], []
            for j in range(len(pos)):
                g = mpmath.sqrt(Mxx[i][i] * Mzz[j][j])
                rho = Mxz[i][j] / g if g != 0 else mpmath.mpf(0)
                rho = max(mpmath.mpf(-1), min(mpmath.mpf(1), rho))
                th = mpmath.acos(rho)
                r0.append(c / 2 * (mpmath.pi - th) / mpmath.pi)
                r1.append(c / 2 * g * (mpmath.sqrt(1 - rho ** 2) + (mpmath.pi - th) * rho) / mpmath.pi)
            P1.append(r1)
            P0.append(r0)
        return P1, P0

    add = lambda A, B: [[a + b for a, b in zip(ra, rb)] for ra, rb in zip(A, B)]
    mul = lambda A, B: [[a * b for a, b in zip(ra, rb)] for ra, rb in zip(A, B)]
    scl = lambda s, A: [[s * a for a in ra] for ra in A]

    q, s = arch.filter_size, arch.stem_size
    with mpmath.workdps(30):
        K = {k: patch(stem(u, v), s) for k, (u, v) in {"xz": (x, z), "xx": (x, x), "zz": (z, z)}.items()}
        hidden = arch.trained == "hidden"
        zero = scl(0, K["xz"])
        T = zero if hidden else K["xz"]
        if isinstance(arch, CNN):
            L = arch.depth
            for l in range(1, L + 1):
                p1, p0 = phi(K["xz"], K["xx"], K["zz"])
                newK = {k: phi(K[k], K[k[0] * 2], K[k[1] * 2])[0] for k in K}
                if l < L:
                    T = patch(add(p1, mul(p0, T)), q)
                    K = {k: patch(v, q) for k, v in newK.items()}
                else:
                    T = mul(p0, T) if hidden else add(p1, mul(p0, T))
                    K = newK
        else:
            for al in arch.alphas():
                a2 = mpmath.mpf(repr(al)) ** 2
                PK = {k: patch(v, q) for k, v in K.items()}
                p1, p0 = phi(PK["xz"], PK["xx"], PK["zz"])
                Pp1 = patch(p1, q)
                T = add(T, scl(a2, add(Pp1, patch(mul(p0, patch(add(T, K["xz"]), q)), q))))
                K = {k: add(K[k], scl(a2, patch(phi(PK[k], PK[k[0] * 2], PK[k[1] * 2])[0], q))) for k in K}
            if not hidden:
                T = add(T, K["xz"])
        M = T if kind == "ntk" else K["xz"]
        if arch.readout == "center":
            return M[0][0]
        if arch.readout == "flatten":
            return mpmath.fsum(M[i][i] for i in range(len(pos))) / len(pos)
        return mpmath.fsum(v for row in M for v in row) / len(pos) ** 2

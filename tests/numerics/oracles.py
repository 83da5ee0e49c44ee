"""Independent reference: the sympy kernel_expr evaluated by mpmath (cse) at 50 digits,
with cosines formed from the inputs in mpmath.  Shares no code with numerics.fc."""
import mpmath
import numpy as np
import sympy as sp

from reskernels.theory import kernel_expr, t

_cache = {}


def expr_function(arch, kind):
    key = (arch, kind)
    if key not in _cache:
        _cache[key] = sp.lambdify(t, kernel_expr(arch, kind), "mpmath", cse=True)
    return _cache[key]


def gram_reference(arch, X, Z=None, kind="ntk", dps=50):
    f = expr_function(arch, kind)
    Z = X if Z is None else Z
    out = np.empty((len(X), len(Z)))
    with mpmath.workdps(dps):
        xs = [[mpmath.mpf(float(v)) for v in row] for row in X]
        zs = [[mpmath.mpf(float(v)) for v in row] for row in Z]
        nx = [mpmath.sqrt(mpmath.fsum(v * v for v in r)) for r in xs]
        nz = [mpmath.sqrt(mpmath.fsum(v * v for v in r)) for r in zs]
        for i, (xr, a) in enumerate(zip(xs, nx)):
            for j, (zr, b) in enumerate(zip(zs, nz)):
                if a == 0 or b == 0:
                    out[i, j] = 0.0
                    continue
                c = mpmath.fsum(p * q for p, q in zip(xr, zr)) / (a * b)
                c = max(mpmath.mpf(-1), min(mpmath.mpf(1), c))
                out[i, j] = float(mpmath.re(f(c)) * a * b)
    return out

"""The public names and call forms of contract.md, exactly as external checks use them."""
import mpmath
import numpy as np
import sympy as sp


def test_contract_imports_and_call_forms():
    from reskernels.numerics import eigenvalues, gram
    from reskernels.theory import MLP, ResNet, kernel_expr
    X = np.random.default_rng(0).standard_normal((4, 3))
    K = gram(ResNet(depth=50, alpha=1 / 50, trained="hidden"), X, kind="ntk")
    assert K.shape == (4, 4) and K.dtype == np.float64
    assert gram(MLP(2), X, None, "nngp").shape == (4, 4)
    e = kernel_expr(MLP(depth=2), kind="ntk")
    assert e.free_symbols == {sp.Symbol("t")}            # a plain Symbol('t'), no assumptions
    mu = eigenvalues(MLP(2), kind="ntk", d=3, ks=range(0, 3), dps=20)
    assert len(mu) == 3 and all(isinstance(m, mpmath.mpf) for m in mu)
    mu = eigenvalues(lambda x: mpmath.exp(x), d=3, ks=[0, 1, 2], dps=20)
    with mpmath.workdps(30):
        assert abs(mu[0] - mpmath.sinh(1)) < mpmath.mpf(10) ** -19


def test_python_m_reskernels_is_the_cli():
    import subprocess
    import sys
    out = subprocess.run([sys.executable, "-m", "reskernels", "list"], capture_output=True, text=True)
    assert out.returncode == 0 and "BELFER-DECAY" in out.stdout

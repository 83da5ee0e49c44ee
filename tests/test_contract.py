"""The public names and call forms of the contract, exactly as external checks use them, and the
generic invariants every registered architecture must satisfy (parametrised over
``reskernels.theory.SPECS``: a new spec class opts into all of them by being registered)."""
import os
import subprocess
import sys

import mpmath
import numpy as np
import pytest
import sympy as sp

import reskernels
from reskernels.theory import SPECS, spec_from_dict

EPS = np.finfo(float).eps
EXAMPLES = [arch for cls in SPECS.values() for arch in cls.examples()]
IDS = [arch.slug for arch in EXAMPLES]


def test_contract_imports_and_call_forms():
    from reskernels import MLP, ResNet, eigenvalues, gram, kernel_expr
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


def test_contract_names_are_also_importable_from_the_subpackages():
    from reskernels.numerics import eigenvalues, gram
    from reskernels.theory import CNN, MLP, ResCNN, ResNet, kernel_expr
    assert (gram, eigenvalues) == (reskernels.gram, reskernels.eigenvalues)
    assert (MLP, ResNet, CNN, ResCNN, kernel_expr) == (reskernels.MLP, reskernels.ResNet, reskernels.CNN,
                                                     reskernels.ResCNN, reskernels.kernel_expr)
    assert reskernels.activations.relu() == reskernels.activations.get("relu")


def test_python_m_reskernels_is_the_cli():
    out = subprocess.run([sys.executable, "-m", "reskernels", "list"], capture_output=True, text=True)
    assert out.returncode == 0 and "BELFER-DECAY" in out.stdout


def test_the_folders_are_not_top_level_packages(tmp_path):
    """``import theory`` (numerics, proofs_check) fails even where the folders are on sys.path: they
    are the subpackages reskernels.theory, ... only."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    for name in ("theory", "numerics", "proofs_check"):
        out = subprocess.run([sys.executable, "-c", f"import reskernels; import {name}"], cwd=tmp_path,
                             capture_output=True, text=True, env={**os.environ, "PYTHONPATH": root})
        assert out.returncode != 0 and "ImportError" in out.stderr, (name, out.stderr[-500:])


def test_the_installed_distribution_has_one_top_level_package():
    """Where reskernels is installed (pip install .), it installs exactly one top-level package."""
    import sysconfig
    from importlib import metadata
    # look in site-packages only: a source checkout may hold a build's reskernels.egg-info, whose
    # SOURCES.txt lists the repository's files, not what was installed
    site = [sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]]
    dists = [d for d in metadata.distributions(path=site) if d.metadata["Name"] == "reskernels"]
    if not dists:
        pytest.skip("reskernels is not installed in this environment")
    dist = dists[0]
    tops = {str(f).split("/")[0] for f in (dist.files or []) if str(f).endswith(".py")}
    tops = {t for t in tops if not t.endswith(".dist-info") and t != ".."}
    if any(t.startswith("__editable__") for t in tops):
        pytest.skip("an editable install has no package files of its own")
    assert tops == {"reskernels"}, tops


# ---- generic invariants over the registry -------------------------------------------------------

def _inputs(arch, n=5, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 5, 2) if arch.is_conv else (n, 4))
    X[-1] = -0.5 * X[0]                         # an antiparallel scaled copy
    return X


def _scale(K):
    d = np.sqrt(np.abs(np.diag(K)))
    return np.outer(d, d)


def test_registry_is_every_spec_class():
    assert set(SPECS) == {"MLP", "ResNet", "CNN", "ResCNN", "DenseNet"}
    for arch in EXAMPLES:
        d = {k: getattr(arch, k) for k in arch.__dataclass_fields__}
        d["activation"] = d["activation"].name
        assert spec_from_dict({"class": type(arch).__name__, **d}) == arch


@pytest.mark.parametrize("arch", EXAMPLES, ids=IDS)
@pytest.mark.parametrize("kind", ["ntk", "nngp"])
def test_gram_is_symmetric_psd_and_equal_to_the_cross_gram(arch, kind):
    X = _inputs(arch)
    K = reskernels.gram(arch, X, kind=kind)
    assert np.array_equal(K, K.T)
    w = np.linalg.eigvalsh(K)
    assert w.min() >= -1e-12 * np.abs(w).max()
    K2 = reskernels.gram(arch, X, X, kind=kind)
    # the cross Gram matrix computes (j, i) separately: the same value up to summation order
    assert np.all(np.abs(K - K2) <= 64 * EPS * (arch.depth + 2) * _scale(K))


@pytest.mark.parametrize("arch", [a for a in EXAMPLES if a.activation.homogeneous and not a.bias_var],
                         ids=lambda a: a.slug)
def test_homogeneous_activation_gives_a_homogeneous_kernel(arch):
    """K(c x, z) = c K(x, z) for c > 0: bitwise for c = 2 (every intermediate scales by a power of
    two), to rounding for c = 3."""
    X = _inputs(arch)
    Z = _inputs(arch, 3, seed=1)
    K = reskernels.gram(arch, X, Z)
    assert np.array_equal(reskernels.gram(arch, 2 * X, Z), 2 * K)
    assert np.all(np.abs(reskernels.gram(arch, 3 * X, Z) - 3 * K)
                  <= 64 * EPS * (arch.depth + 2) * 3 * np.sqrt(np.outer(np.diag(reskernels.gram(arch, X)),
                                                                       np.diag(reskernels.gram(arch, Z)))))


def _fc_counterpart(conv_arch):
    """The registered fully connected spec whose program equals the conv spec's on one pixel with
    filter_size = stem_size = 1 (found through the registry, not by name)."""
    one = conv_arch.replace(filter_size=1, stem_size=1)
    from reskernels.theory import layers as _L
    target = [m if not isinstance(m, _L.Pool) else _L.Pool("dense") for m in one.kernel_maps()]
    common = {k: getattr(one, k) for k in ("depth", "alpha", "input_var", "weight_var", "trained", "activation")
              if hasattr(one, k)}
    for cls in SPECS.values():
        try:
            cand = cls(**common)
        except TypeError:
            continue
        if not cand.is_conv and list(cand.kernel_maps()) == target:
            return one, cand
    raise AssertionError(f"no fully connected counterpart of {conv_arch.slug}")


@pytest.mark.parametrize("arch", [a for a in EXAMPLES if a.is_conv], ids=lambda a: a.slug)
@pytest.mark.parametrize("kind", ["ntk", "nngp"])
def test_conv_spec_on_one_pixel_is_its_fully_connected_program(arch, kind):
    one, fc = _fc_counterpart(arch)
    X = np.random.default_rng(2).standard_normal((4, 3))
    Kc = reskernels.gram(one, X[:, None, :], kind=kind)
    Kf = reskernels.gram(fc, X, kind=kind)
    assert np.all(np.abs(Kc - Kf) <= 64 * EPS * (arch.depth + 2) * _scale(Kf))


@pytest.mark.parametrize("arch", [a for a in EXAMPLES if a.has_alpha], ids=lambda a: a.slug)
def test_alpha_zero_is_the_linear_kernel(arch):
    """alpha = 0: every block is the identity, NNGP = input_var pool(<x_i, z_j>) and the NTK is
    twice that (input layer + readout) when all layers are trained, else 0."""
    a0 = arch.replace(alpha=0.0, stem_size=1) if arch.is_conv else arch.replace(alpha=0.0)
    X = _inputs(a0)
    if a0.is_conv:
        G = np.einsum("ipc,jqc->ijpq", X, X)
        lin = {"gap": G.mean(axis=(2, 3)), "flatten": np.einsum("ijpp->ij", G) / X.shape[1],
               "center": G[:, :, 0, 0]}[a0.readout]
    else:
        lin = X @ X.T
    lin = a0.input_var * lin
    tol = 16 * EPS * _scale(lin)
    assert np.all(np.abs(reskernels.gram(a0, X, kind="nngp") - lin) <= tol)
    want_ntk = 2 * lin if a0.trained == "all" else 0 * lin
    assert np.all(np.abs(reskernels.gram(a0, X, kind="ntk") - want_ntk) <= 2 * tol)

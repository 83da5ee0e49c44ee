"""The golden grid: every engine's output on fixed inputs, compared *bitwise* with the outputs of
the code before the kernel-step refactor (``capture.py`` wrote ``data/*.npz`` at that commit).

Each case is ``(name, fn)`` where ``fn(api)`` returns a float64 ndarray, or an object array for
mpmath / sympy values (mpmath values as their exact binary ``_mpf_`` tuples, sympy values as
``srepr`` strings).  ``api`` is a namespace holding the library's functions, so the same cases
run against the old module layout (capture) and the new package (tests).
"""
from __future__ import annotations

import numpy as np


def fc_inputs():
    rng = np.random.default_rng(20261130)
    X = rng.standard_normal((10, 5))
    X[3] = X[0]                                  # duplicate: exact diagonal-like entry
    X[4] = 3.0 * X[1]                            # scaled copy: rho = 1 between different rows
    X[5] = -X[2]                                 # antiparallel
    X[6] = X[0] + 1e-9 * rng.standard_normal(5)  # near-parallel
    X[7] = 0.0                                   # zero vector
    X[8] *= 1e-150                               # tiny scale
    Z = rng.standard_normal((6, 5))
    Z[0] = X[1]
    return X, Z


def conv_inputs():
    rng = np.random.default_rng(7)
    S1 = rng.standard_normal((5, 7, 2))          # 1-D signals, 7 pixels, 2 channels
    S1[1] = 2.5 * S1[0]
    S1c = rng.standard_normal((4, 6, 1))         # one-channel signals: every first-layer pair is +-1
    I2 = rng.standard_normal((4, 5, 5, 3))       # 2-D images
    I2[2] = -0.5 * I2[0]
    Z2 = rng.standard_normal((3, 5, 5, 3))
    return S1, S1c, I2, Z2


def fc_specs(api):
    MLP, ResNet = api.MLP, api.ResNet
    out = []
    for L in (1, 2, 4):
        for wv in (2.0, 1.0):
            out.append(MLP(L, weight_var=wv))
            out.append(MLP(L, input_var=0.7, weight_var=wv))
            if L >= 2:
                out.append(MLP(L, weight_var=wv, trained="hidden"))
    for L, a in ((1, 0.3), (2, 1.0), (5, 0.5), (3, (0.2, 0.5, 1.5))):
        for wv in (2.0, 1.0):
            out.append(ResNet(L, a, weight_var=wv))
            out.append(ResNet(L, a, input_var=0.7, weight_var=wv, trained="hidden"))
    out.append(ResNet(200, 0.1))
    out.append(ResNet(1, 0.0))
    return out


def conv_specs(api):
    CNN, ResCNN = api.CNN, api.ResCNN
    out = []
    for readout in ("gap", "flatten", "center"):
        out += [CNN(1, readout=readout), CNN(3, readout=readout),
                CNN(2, filter_size=1, readout=readout, stem_size=3, weight_var=1.0),
                CNN(3, readout=readout, trained="hidden", input_var=0.7),
                ResCNN(1, 0.5, readout=readout), ResCNN(2, (0.3, 0.7), readout=readout, stem_size=3),
                ResCNN(2, 1.0, filter_size=1, readout=readout, weight_var=1.0, trained="hidden")]
    return out


def cases():
    X, Z = fc_inputs()
    S1, S1c, I2, Z2 = conv_inputs()
    T = np.array([-1.0, -0.7, -1e-3, 0.0, 0.3, 0.5, 0.9, 1 - 1e-9, 1.0])

    def mp_tuple(v):
        return tuple(v._mpf_)

    out = []
    # ---- FC float64 --------------------------------------------------------------------------
    def fc(i, kind, mode):
        def f(api):
            arch = fc_specs(api)[i]
            if mode == "sym":
                return api.gram(arch, X, kind=kind)
            if mode == "cross":
                return api.gram(arch, X[:7], Z, kind=kind)
            return api.gram(arch, np.delete(X, 7, axis=0), kind=kind, normalize=True)
        return f
    n_fc = 30
    for i in range(n_fc):
        for kind in ("ntk", "nngp"):
            for mode in ("sym", "cross", "norm"):
                out.append((f"fc[{i}]-{kind}-{mode}", fc(i, kind, mode)))
    # ---- zonal float64 and mpmath -------------------------------------------------------------
    def zon(i, kind):
        return lambda api: api.zonal(fc_specs(api)[i], kind)(T)

    def mp(i, kind):
        def f(api):
            arch = fc_specs(api)[i]
            vals = [api.kernel_mp(arch, repr(float(t)), kind=kind, dps=30) for t in T]
            vals += [api.kernel_theta_mp(arch, th, kind=kind) for th in ("0.001", "1.5", "3.1")]
            return np.array([mp_tuple(v) for v in vals], dtype=object)
        return f
    for i in range(0, n_fc, 3):
        for kind in ("ntk", "nngp"):
            out.append((f"zonal[{i}]-{kind}", zon(i, kind)))
            out.append((f"mp[{i}]-{kind}", mp(i, kind)))

    def eig(api):
        mus = api.eigenvalues(api.ResNet(2, 0.5), kind="ntk", d=3, ks=range(0, 8), dps=20)
        mus += api.eigenvalues(api.MLP(2), kind="nngp", d=5, ks=[0, 1, 2, 5], dps=20)
        return np.array([mp_tuple(m) for m in mus], dtype=object)
    out.append(("eigenvalues", eig))
    # ---- sympy -----------------------------------------------------------------------------------
    def sym(make, what):
        def f(api):
            import sympy as sp
            arch = make(api)
            res = []
            for kind in ("ntk", "nngp"):
                if what == "expr":
                    res.append(sp.srepr(api.kernel_expr(arch, kind)))
                elif what == "taylor":
                    res += [sp.srepr(c) for c in api.taylor_coefficients(arch, kind, order=5)]
                else:
                    for side in (1, -1):
                        e = api.endpoint_expansion(arch, kind, side=side, order=5)
                        res += [sp.srepr(k) + ":" + sp.srepr(v) for k, v in sorted(e.items())]
            return np.array(res, dtype=object)
        return f
    sym_specs = {
        "MLP1": lambda api: api.MLP(1), "MLP2h": lambda api: api.MLP(2, trained="hidden"),
        "MLP2wv1": lambda api: api.MLP(2, weight_var=1.0, input_var=0.5),
        "ResNet1": lambda api: api.ResNet(1, 0.5), "ResNet2h": lambda api: api.ResNet(2, 0.3, trained="hidden"),
        "ResNet2seq": lambda api: api.ResNet(2, (0.5, 1.0), weight_var=1.0),
    }
    for nm, mk in sym_specs.items():
        for what in ("expr", "taylor", "endpoint"):
            out.append((f"sympy-{nm}-{what}", sym(mk, what)))
    # ---- Monte Carlo (same draws) -------------------------------------------------------------
    def mc(make, conv):
        def f(api):
            arch = make(api)
            if conv:
                ek = api.empirical_conv_kernels(arch, I2[:3, :4, :4, :2] if arch.readout != "flatten"
                                                else S1[:3], 5, np.random.default_rng(11))
            else:
                ek = api.empirical_kernels(arch, X[:6], 9, np.random.default_rng(11))
            return np.stack([ek["nngp"], ek["ntk"], ek["parts"]["input"], ek["parts"]["hidden"],
                             ek["parts"]["readout"]])
        return f
    mc_specs = [
        ("MLP1", lambda api: api.MLP(1), False), ("MLP3", lambda api: api.MLP(3, weight_var=1.0), False),
        ("MLP3h", lambda api: api.MLP(3, trained="hidden", input_var=0.5), False),
        ("ResNet1", lambda api: api.ResNet(1, 0.5), False),
        ("ResNet3", lambda api: api.ResNet(3, (0.2, 0.5, 1.0), weight_var=1.0, trained="hidden"), False),
        ("CNN2", lambda api: api.CNN(2), True), ("CNN3flat", lambda api: api.CNN(3, readout="flatten", stem_size=3), True),
        ("CNN2center", lambda api: api.CNN(2, readout="center", trained="hidden"), True),
        ("ResCNN2", lambda api: api.ResCNN(2, 0.5), True),
        ("ResCNN1flat", lambda api: api.ResCNN(1, 0.7, readout="flatten", weight_var=1.0), True),
    ]
    for nm, mk, conv in mc_specs:
        out.append((f"mc-{nm}", mc(mk, conv)))
    # ---- conv numpy and numba -----------------------------------------------------------------
    def cv(i, kind, data, backend):
        def f(api):
            arch = conv_specs(api)[i]
            if data == "sig":
                return api.gram(arch, S1, kind=kind, backend=backend)
            if data == "onech":
                return api.gram(arch, S1c, kind=kind, backend=backend)
            if data == "img":
                return api.gram(arch, I2, kind=kind, backend=backend)
            if data == "cross":
                return api.gram(arch, I2, Z2, kind=kind, backend=backend)
            return api.gram(arch, S1, kind=kind, backend=backend, normalize=True)
        return f
    for backend in ("numpy", "numba"):
        for i in range(21):
            for kind in ("ntk", "nngp"):
                for data in ("sig", "onech", "img", "cross", "norm"):
                    if kind == "nngp" and data in ("onech", "norm"):
                        continue
                    out.append((f"conv-{backend}[{i}]-{kind}-{data}", cv(i, kind, data, backend)))
    # ---- multi-dot kernels --------------------------------------------------------------------
    def md(make, kind):
        def f(api):
            rng = np.random.default_rng(3)
            Tm = np.clip(rng.uniform(-1, 1, (40, 5)), -1, 1)
            Tm[0] = 1.0
            Tm[1, 2] = -1.0
            return api.multi_dot_kernel(make(api), Tm, kind)
        return f
    for nm, mk in (("CNN3c", lambda api: api.CNN(3, readout="center")),
                   ("ResCNN1f", lambda api: api.ResCNN(1, 0.5, readout="flatten")),
                   ("ResCNN2c", lambda api: api.ResCNN(2, (0.4, 0.9), readout="center", weight_var=1.0))):
        for kind in ("ntk", "nngp"):
            out.append((f"multidot-{nm}-{kind}", md(mk, kind)))
    return out

"""Shared hypothesis strategies (docs/development.md §6)."""
import numpy as np
from hypothesis import strategies as st

from reskernels.theory import MLP, ResNet

alphas = st.floats(0.0, 2.0, allow_nan=False)


@st.composite
def fc_archs(draw, max_depth: int = 6):
    depth = draw(st.integers(1, max_depth))
    weight_var = draw(st.sampled_from([1.0, 2.0]))
    input_var = draw(st.sampled_from([1.0, 0.5, 2.0]))
    if draw(st.booleans()):
        trained = "all" if depth == 1 else draw(st.sampled_from(["all", "hidden"]))
        return MLP(depth, input_var=input_var, weight_var=weight_var, trained=trained)
    alpha = draw(st.one_of(alphas, st.lists(alphas, min_size=depth, max_size=depth)))
    trained = draw(st.sampled_from(["all", "hidden"]))
    return ResNet(depth, alpha, input_var=input_var, weight_var=weight_var, trained=trained)


cosines = st.one_of(st.sampled_from([-1.0, 0.0, 1.0, 1 - 1e-12, -1 + 1e-12]),
                    st.floats(-1.0, 1.0, allow_nan=False))


@st.composite
def point_sets(draw, max_n: int = 8, max_d: int = 6):
    n = draw(st.integers(1, max_n))
    d = draw(st.integers(2, max_d))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    scale = draw(st.sampled_from([1.0, 1e-3, 1e3]))
    X = rng.standard_normal((n, d)) * scale
    if n >= 2 and draw(st.booleans()):
        X[-1] = X[0] * draw(st.sampled_from([1.0, -1.0, 2.5]))  # duplicate / antipode
    return X

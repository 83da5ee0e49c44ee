import math

import pytest

from reskernels.theory import MLP, ResNet


@pytest.mark.parametrize("kwargs, word", [
    (dict(depth=0), "depth"), (dict(depth=2.5), "depth"), (dict(depth=True), "depth"),
    (dict(depth=2, input_var=-1.0), "input_var"), (dict(depth=2, weight_var=0.0), "weight_var"),
    (dict(depth=2, weight_var=float("nan")), "weight_var"), (dict(depth=2, trained="some"), "trained"),
    (dict(depth=1, trained="hidden"), "trained"),
])
def test_mlp_rejects_bad_arguments_naming_them(kwargs, word):
    with pytest.raises(ValueError, match=word):
        MLP(**kwargs)


@pytest.mark.parametrize("kwargs, word", [
    (dict(depth=3, alpha=[0.1, 0.2]), "length"), (dict(depth=2, alpha="x"), "alpha"),
    (dict(depth=2, alpha=float("inf")), "alpha"), (dict(depth=2), "alpha"),
    (dict(depth=2, alpha=0.5, input_var=-2), "input_var"),
    (dict(depth=2, alpha=0.5, trained="readout"), "trained"),
])
def test_resnet_rejects_bad_arguments_naming_them(kwargs, word):
    with pytest.raises(ValueError, match=word):
        ResNet(**kwargs)


def test_specs_are_frozen_and_hashable():
    a = ResNet(3, [0.1, 0.2, 0.3])
    with pytest.raises(Exception):
        a.depth = 4  # type: ignore[misc]
    assert a.alpha == (0.1, 0.2, 0.3)
    assert hash(a) == hash(ResNet(3, (0.1, 0.2, 0.3)))
    assert a.replace(trained="hidden").trained == "hidden"


def test_with_gamma_sets_alpha_to_depth_power():
    a = ResNet.with_gamma(50, 0.5, trained="hidden")
    assert math.isclose(a.alpha, 50 ** -0.5, rel_tol=1e-15)
    assert a.block_gains() == (a.alpha ** 2,) * 50


def test_slug_is_stable_and_distinguishes_specs():
    assert MLP(2).slug == "MLP-L2-iv1-wv2-all"
    assert ResNet(5, 0.5, trained="hidden").slug == "ResNet-L5-a0.5-iv1-wv2-hidden"
    assert ResNet(2, [0.1, 0.2]).slug != ResNet(2, [0.2, 0.1]).slug

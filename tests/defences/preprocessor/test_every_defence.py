# SPDX-License-Identifier: MIT
# Copyright (c) 2026 art_purify developers
"""Patterns every defence of the package must follow, run over one list of all of them (a new defence joins the list):
channels-last input with a channels-last classifier, all-or-nothing ``set_params``, the output dtype, networks left
as they were."""

import copy

import numpy as np
import pytest
import torch

from art_purify.defences.preprocessor import StraightThroughPyTorch
from art_purify.models import as_art_classifier
from tests.helpers import hetero_defence, image_batch, tiny_classifier, uniform_defence

STAGES = ["stage1", "stage2", "stage3", "stage4"]


class ToChannelsFirst(torch.nn.Module):
    """(N, H, W, C) -> (N, C, H, W): turns a channels-first model into a channels-last one. A copy in the standard
    layout, so that the convolutions see the memory layout of the channels-first run (oneDNN picks other kernels for
    other strides, which changes the last bits; the thresholded saliency mask can amplify them)."""

    def forward(self, x):
        return x.permute(0, 3, 1, 2).clone(memory_format=torch.contiguous_format)


def _uniform(model, channels_first, stage_prefix):
    return uniform_defence(dtype=torch.float32, channels_first=channels_first)


def _hetero(model, channels_first, stage_prefix):
    from art_purify.defences.preprocessor import HeterogeneousDiffusionPurificationPyTorch
    from tests.helpers import tiny_unet

    return HeterogeneousDiffusionPurificationPyTorch(
        tiny_unet(torch.float32),
        model,
        t_high=200,
        t_low=100,
        jump=10,
        defence_grid=50,
        seed=0,
        stage_names=[stage_prefix + s for s in STAGES],
        channels_first=channels_first,
        device_type="cpu",
    )


def _search(model, channels_first, stage_prefix):
    from art_purify.defences.preprocessor import ReconstructionSearchPyTorch
    from tests.helpers import tiny_unet

    return ReconstructionSearchPyTorch(
        tiny_unet(torch.float32), max_iter=2, nb_noise=2, channels_first=channels_first, device_type="cpu"
    )


def _bpda(model, channels_first, stage_prefix):
    return StraightThroughPyTorch(_hetero(model, channels_first, stage_prefix), nb_eot=2)


def _masking(model, channels_first, stage_prefix):
    from art_purify.defences.preprocessor import RandomMaskingPyTorch

    return RandomMaskingPyTorch.preset("rt2", seed=0, nb_eot=2, channels_first=channels_first, device_type="cpu")


def _atop(model, channels_first, stage_prefix):
    from art_purify.defences.preprocessor import AToPPurificationPyTorch, RandomMaskingPyTorch
    from art_purify.models import InpaintingGenerator

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        generator = InpaintingGenerator(1, width=4)
    transform = RandomMaskingPyTorch.preset("rt3")
    return AToPPurificationPyTorch(
        generator, transform, seed=0, nb_eot=2, channels_first=channels_first, device_type="cpu"
    )


#: Every defence of the package: name -> factory(classifier model, channels_first, stage-name prefix).
DEFENCES = {
    "uniform": _uniform,
    "heterogeneous": _hetero,
    "straight-through": _bpda,
    "reconstruction-search": _search,
    "random-masking": _masking,
    "atop": _atop,
}


def _reset(defence):
    inner = getattr(defence, "defence", defence)
    getattr(inner, "reset_generator", lambda: None)()  # a deterministic defence has no noise stream


@pytest.mark.parametrize("name", sorted(DEFENCES))
def test_channels_last_input_and_classifier_give_the_channels_first_results(name):
    model = tiny_classifier(torch.float32)
    cl_model = torch.nn.Sequential(ToChannelsFirst(), model)  # the same weights, channels-last input
    cf_defence = DEFENCES[name](model, True, "")
    cl_defence = DEFENCES[name](cl_model, False, "1.")
    cf = as_art_classifier(model, (1, 8, 8), 10, device="cpu", preprocessing_defences=[cf_defence])
    cl = as_art_classifier(
        cl_model, (8, 8, 1), 10, device="cpu", preprocessing_defences=[cl_defence], channels_first=False
    )
    x = image_batch(3, torch.float32).numpy()
    x_cl = np.ascontiguousarray(x.transpose(0, 2, 3, 1))
    y = np.eye(10, dtype=np.float32)[[1, 4, 7]]
    results = {}
    for key, classifier, defence, inputs in (("cf", cf, cf_defence, x), ("cl", cl, cl_defence, x_cl)):
        _reset(defence)
        predicted = classifier.predict(inputs)
        _reset(defence)
        loss_grad = classifier.loss_gradient(inputs, y)
        _reset(defence)
        class_grad = classifier.class_gradient(inputs, label=[1, 4, 7])
        results[key] = (predicted, loss_grad, class_grad)
    to_cf = lambda a: a.transpose(0, 3, 1, 2) if a.ndim == 4 else a.transpose(0, 1, 4, 2, 3)  # noqa: E731
    assert np.allclose(results["cl"][0], results["cf"][0], atol=1e-6)
    assert np.allclose(to_cf(results["cl"][1]), results["cf"][1], atol=1e-6)
    assert np.allclose(to_cf(results["cl"][2]), results["cf"][2], atol=1e-6)
    assert np.abs(results["cf"][1]).sum() > 0


#: A value each validation rejects, per defence and parameter.
INVALID = {
    "uniform": {"t_star": 0, "nb_eot": 0, "sampler": "euler", "defence_grid": 3, "gradient": "adjoint", "noise": "x"},
    "heterogeneous": {"t_high": 0, "t_low": 150, "mask_threshold": 2.0, "jump": -1, "batch_size": 0, "noise": "none"},
    "straight-through": {"nb_eot": 0},
    "reconstruction-search": {"sigma": 0.0, "radius": -1.0, "norm": "1", "nb_noise": 0, "gradient": "surrogate"},
    "random-masking": {
        "mask_fraction": 1.0,
        "nb_masks": 5,
        "block_size": 0,
        "noise_std": -1.0,
        "seed": 0.5,
        "noise": 1,
    },
    "atop": {"nb_eot": 0, "batch_size": 0, "clip_values": (0.0, 2.0), "seed": "a", "noise": "fixed"},
}


@pytest.mark.parametrize("name", sorted(DEFENCES))
def test_a_failing_set_params_changes_nothing(name):
    defence = DEFENCES[name](tiny_classifier(torch.float32), True, "")
    assert set(INVALID[name]) <= set(defence.params)
    for key, bad in INVALID[name].items():
        before = {p: getattr(defence, p) for p in defence.params}
        valid_other = {p: before[p] for p in defence.params if p != key}
        with pytest.raises(ValueError):
            defence.set_params(**valid_other, **{key: bad})  # one bad value among valid ones: all-or-nothing
        assert {p: getattr(defence, p) for p in defence.params} == before, key
    if name == "heterogeneous":
        assert defence.saliency.threshold == defence.mask_threshold  # derived state back in step too
    with pytest.raises(ValueError, match="is not a parameter"):
        defence.set_params(colour="blue")


@pytest.mark.parametrize("name", sorted(DEFENCES))
def test_float64_data_reaches_a_float32_classifier_as_float32(name):
    model = tiny_classifier(torch.float32)
    defence = DEFENCES[name](model, True, "")
    classifier = as_art_classifier(model, (1, 8, 8), 10, device="cpu", preprocessing_defences=[defence])
    x64 = image_batch(2, torch.float64).numpy()
    assert classifier.predict(x64).shape == (2, 10)  # ART alone would hand a float64 tensor to the float32 model
    grad = classifier.loss_gradient(x64, np.eye(10, dtype=np.float32)[[0, 1]])
    assert grad.dtype == np.float64 and np.isfinite(grad).all()
    out, _ = defence.forward(torch.from_numpy(x64))
    assert out.dtype == torch.float32


class Dropping(torch.nn.Module):
    """A network followed by dropout, so that its output depends on its mode (and train mode draws from the global
    RNG): ``(x, t) -> noise`` around a UNet, ``(x, mask) -> (coarse, refined)`` around a generator."""

    def __init__(self, net):
        super().__init__()
        self.net, self.drop = net, torch.nn.Dropout(0.5)

    def forward(self, *args):
        out = self.net(*args)
        if isinstance(out, tuple):
            return tuple(self.drop(o) for o in out)
        return self.drop(getattr(out, "sample", out))


def _unet():
    from tests.helpers import tiny_unet

    return Dropping(tiny_unet(torch.float32))


def _generator():
    from art_purify.models import InpaintingGenerator

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return Dropping(InpaintingGenerator(1, width=4))


def _still_training(net):
    """``net`` as a module still being trained may be: in train mode with one submodule in eval mode, and one
    parameter frozen among trainable ones (mixed flags)."""
    net.train().requires_grad_(True)
    next(m for m in net.modules() if m is not net and m is not net.net).eval()
    next(net.parameters()).requires_grad_(False)
    return net


def _uniform_on(net, model):
    from art_purify.defences.preprocessor import DiffusionPurificationPyTorch

    return DiffusionPurificationPyTorch(net, t_star=100, defence_grid=50, seed=0, device_type="cpu")


def _hetero_on(net, model):
    from art_purify.defences.preprocessor import HeterogeneousDiffusionPurificationPyTorch

    return HeterogeneousDiffusionPurificationPyTorch(
        net, model, t_high=200, t_low=100, jump=10, defence_grid=50, seed=0, device_type="cpu"
    )


def _search_on(net, model):
    from art_purify.defences.preprocessor import ReconstructionSearchPyTorch

    return ReconstructionSearchPyTorch(net, max_iter=2, nb_noise=2, device_type="cpu")


def _atop_on(net, model):
    from art_purify.defences.preprocessor import AToPPurificationPyTorch, RandomMaskingPyTorch

    return AToPPurificationPyTorch(net, RandomMaskingPyTorch.preset("rt3"), seed=0, device_type="cpu")


#: The defences with networks of their own (exact gradients, checkpointed where the defence checkpoints): name ->
#: (network factory, defence factory(network, classifier model)).
NETWORKED = {
    "uniform": (_unet, _uniform_on),
    "heterogeneous": (_unet, _hetero_on),
    "reconstruction-search": (_unet, _search_on),
    "atop": (_generator, _atop_on),
}


def _state(module):
    """Every submodule's mode, every parameter's ``requires_grad`` and ``.grad``, and every buffer and weight."""
    return (
        [m.training for m in module.modules()],
        [(p.requires_grad, p.grad) for p in module.parameters()],
        {k: v.clone() for k, v in module.state_dict().items()},
    )


def _assert_same_state(before, after):
    assert after[0] == before[0], "a submodule's training flag changed"
    assert [g for g, _ in after[1]] == [g for g, _ in before[1]], "a parameter's requires_grad changed"
    assert all(grad is None for _, grad in after[1]), "a gradient reached the network's parameters"
    assert after[2].keys() == before[2].keys()
    assert all(torch.equal(after[2][k], v) for k, v in before[2].items()), "a buffer or weight changed"


@pytest.mark.parametrize("name", sorted(NETWORKED))
def test_a_defence_leaves_a_network_still_being_trained_as_it_was(name):
    make_network, make_defence = NETWORKED[name]
    net = _still_training(make_network())
    model = tiny_classifier(torch.float32).train()  # with BatchNorm: the saliency pass must not move its statistics
    model.stage2.eval()
    before = (_state(net), _state(model))
    defence = make_defence(net, model)
    _assert_same_state(before[0], _state(net))
    _assert_same_state(before[1], _state(model))
    x = image_batch(3, torch.float32)
    weights = torch.linspace(-1.0, 1.0, x.numel()).view(x.shape)
    rng = torch.random.get_rng_state()
    xg = x.clone().requires_grad_(True)
    out, _ = defence.forward(xg)
    (out * weights).sum().backward()  # the checkpointed calls are recomputed here, after forward has returned
    assert torch.equal(torch.random.get_rng_state(), rng)  # no dropout draw from the global RNG
    _assert_same_state(before[0], _state(net))
    _assert_same_state(before[1], _state(model))
    # the output and the gradient are those of the same networks in eval mode with frozen parameters
    reference = make_defence(
        copy.deepcopy(net).eval().requires_grad_(False), copy.deepcopy(model).eval().requires_grad_(False)
    )
    xr = x.clone().requires_grad_(True)
    out_ref, _ = reference.forward(xr)
    (out_ref * weights).sum().backward()
    assert torch.equal(out, out_ref) and torch.equal(xg.grad, xr.grad) and xg.grad.abs().sum() > 0

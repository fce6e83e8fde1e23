# SPDX-License-Identifier: MIT
# Copyright (c) 2026 art_purify developers
"""What both diffusion purifiers inherit from BaseDiffusionPurifierPyTorch: gradients through ART, seeding, EOT,
layouts and validation."""

import numpy as np
import pytest
import torch

from art_purify.defences.preprocessor import (
    HeterogeneousDiffusionPurificationPyTorch,
)
from art_purify.evaluation import as_art_classifier
from tests.helpers import (
    fixed_mask,
    hetero_defence,
    image_batch,
    tiny_classifier,
    tiny_unet,
    uniform_defence,
)


@pytest.mark.parametrize("make", [uniform_defence, lambda **kw: hetero_defence(fixed_mask(), **kw)])
def test_checkpointing_does_not_change_the_gradient(make):
    x = image_batch()
    grads = []
    for ckpt in (True, False):
        defence = make(gradient="exact", gradient_checkpointing=ckpt)
        xg = x.clone().requires_grad_(True)
        defence.forward(xg)[0].pow(2).sum().backward()
        grads.append(xg.grad)
    assert torch.allclose(grads[0], grads[1], atol=1e-6, rtol=0)
    assert grads[0].abs().sum() > 0


def _art_setup(defence_factory, gradient, dtype=torch.float32):
    model = tiny_classifier(dtype)
    defence = defence_factory(gradient=gradient, dtype=dtype)
    classifier = as_art_classifier(
        model, input_shape=(1, 8, 8), nb_classes=10, device="cpu", preprocessing_defences=[defence]
    )
    return model, defence, classifier


@pytest.mark.parametrize("gradient", ["exact", "surrogate"])
@pytest.mark.parametrize("kind", ["uniform", "heterogeneous"])
def test_art_loss_gradient_is_the_autograd_gradient_through_the_defence(kind, gradient):
    factory = uniform_defence if kind == "uniform" else hetero_defence
    model, defence, classifier = _art_setup(factory, gradient)
    x = image_batch(3, torch.float32).numpy()
    y = np.eye(10, dtype=np.float32)[[1, 4, 7]]
    defence.reset_generator()
    art_grad = classifier.loss_gradient(x, y)
    defence.reset_generator()
    xg = torch.from_numpy(x).requires_grad_(True)
    out, _ = defence.forward(xg)
    loss = torch.nn.functional.cross_entropy(model(out), torch.tensor([1, 4, 7]))
    (direct,) = torch.autograd.grad(loss, xg)
    assert np.allclose(art_grad, direct.numpy(), atol=1e-6, rtol=1e-4)
    assert np.abs(art_grad).sum() > 0
    assert all(p.grad is None for p in defence.unet.parameters())


def test_surrogate_keeps_the_defence_output_value():
    x = image_batch(2, torch.float32)
    full = uniform_defence(gradient="exact", dtype=torch.float32)(x.numpy())[0]
    sur_defence = uniform_defence(gradient="surrogate", dtype=torch.float32)
    out, _ = sur_defence.forward(x.clone().requires_grad_(True))
    assert np.allclose(out.detach().numpy(), full, atol=1e-6)


def test_seeded_stream_is_reproducible_and_fresh_per_call():
    x = image_batch(2, torch.float32).numpy()
    a, b = uniform_defence(dtype=torch.float32, seed=3), uniform_defence(dtype=torch.float32, seed=3)
    first, again = a(x)[0], b(x)[0]
    assert np.array_equal(first, again)
    assert not np.allclose(a(x)[0], first)  # the next call draws fresh noise
    state = torch.get_rng_state()
    uniform_defence(dtype=torch.float32, seed=None)(x)[0]
    assert torch.equal(state, torch.get_rng_state())


def test_eot_expands_gradient_calls_only():
    defence = uniform_defence(dtype=torch.float32, nb_eot=4)
    x = image_batch(3, torch.float32)
    y = torch.eye(10)[[0, 1, 2]]
    out, y_out = defence.forward(x.clone().requires_grad_(True), y)
    assert out.shape[0] == 12 and y_out.shape[0] == 12 and torch.equal(y_out[:4], y[[0, 0, 0, 0]])
    with torch.no_grad():
        out, y_out = defence.forward(x, y)
    assert out.shape[0] == 3
    out, y_none = defence.forward(x.clone().requires_grad_(True), None)
    assert out.shape[0] == 3 and y_none is None


def test_output_dtype_is_the_networks_channels_last_and_batching():
    defence = uniform_defence(dtype=torch.float32, channels_first=False, batch_size=2)
    x = image_batch(5, torch.float64).permute(0, 2, 3, 1)
    out, _ = defence.forward(x)
    assert out.shape == x.shape and out.dtype == torch.float32  # the UNet's dtype, ready for a float32 classifier
    whole = uniform_defence(dtype=torch.float32, channels_first=False, batch_size=8).forward(x)[0]
    assert torch.allclose(out, whole, atol=1e-6)  # internal batching does not change the result
    out64, _ = uniform_defence(dtype=torch.float64).forward(image_batch(2, torch.float64))
    assert out64.dtype == torch.float64  # a float64 UNet keeps float64 end to end


@pytest.mark.parametrize(
    "x, message",
    [
        (torch.full((1, 1, 8, 8), float("nan")), "NaN or inf"),
        (torch.full((1, 1, 8, 8), 1.5), "outside clip_values"),
        (torch.rand(1, 3, 8, 8), "3 channels"),
        (torch.rand(1, 1, 7, 7), "multiples of 2"),
        (torch.rand(0, 1, 8, 8), "empty batch"),
        (torch.rand(1, 8, 8), "4 dimensions"),
        (torch.zeros(1, 1, 8, 8, dtype=torch.long), "floating-point"),
    ],
)
def test_bad_input_is_rejected(x, message):
    with pytest.raises(ValueError, match=message):
        uniform_defence(dtype=torch.float32).forward(x)


def test_bad_parameters_are_rejected():
    with pytest.raises(ValueError, match="must not exceed t_high"):
        HeterogeneousDiffusionPurificationPyTorch(
            tiny_unet(torch.float32), tiny_classifier(torch.float32), t_high=100, t_low=200
        )
    with pytest.raises(ValueError, match="gradient must be one of"):
        uniform_defence(gradient="adjoint")
    with pytest.raises(ValueError, match="gradient must be one of"):  # BPDA is StraightThroughPyTorch now
        uniform_defence(gradient="bpda")
    with pytest.raises(ValueError, match="not on a grid"):
        uniform_defence(defence_grid=3)
    with pytest.raises(ValueError, match="sampler"):
        uniform_defence(sampler="euler")
    defence = uniform_defence(dtype=torch.float32)
    with pytest.raises(ValueError, match="nb_eot must be a positive integer"):
        defence.set_params(nb_eot=0)
    defence.set_params(nb_eot=2)
    assert defence.nb_eot == 2
    with pytest.raises(ValueError, match="stage_names is required"):
        HeterogeneousDiffusionPurificationPyTorch(tiny_unet(), torch.nn.Conv2d(1, 1, 3))

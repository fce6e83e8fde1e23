# SPDX-License-Identifier: MIT
# Copyright (c) 2026 art_purify developers
"""
The diffusion purifiers' speed options against float32: bfloat16 / float16 autocast of the UNet calls,
channels-last inputs, ``torch.compile``.

The tolerance of bfloat16 on the shipped models (8 bits of mantissa, relative rounding 2^-9 per operation, through
20 to 40 UNet calls) is judged against what the defence does anyway: the purified images must stay within one
8-bit grey level (1/255) of float32's everywhere, where another noise draw of the same defence moves pixels by
two thirds of the range; and each image's attack gradient must keep a cosine of at least 0.98 with float32's, where
two noise draws give cosines of 0.33 to 0.42 (the EOT average exists because of that spread). Measured on 16 images
(docs/scale.md): at most 0.0022 per pixel, cosines of 0.991 and more.
"""

import numpy as np
import pytest
import torch

from art_purify.evaluation import as_art_classifier, build_defence
from art_purify.models.accelerated import AcceleratedNoiseModel
from tests import helpers

GREY_LEVEL = 1.0 / 255


def _cosines(a, b):
    a, b = a.reshape(len(a), -1), b.reshape(len(b), -1)
    return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


def _run(kind, unet, scheduler, net, x, y, gradient, seed=0, **options):
    """Purified images, loss gradients and predictions of one defence setting, each from the seed's first draws."""
    defence = build_defence(kind, unet, scheduler, net, gradient=gradient, seed=seed, **options)
    classifier = as_art_classifier(net, input_shape=x.shape[1:], nb_classes=10, preprocessing_defences=[defence])
    with torch.no_grad():
        defence.reset_generator()
        purified = defence.forward(torch.as_tensor(x))[0].numpy()
    defence.reset_generator()
    gradient_ = classifier.loss_gradient(x, np.eye(10, dtype=np.float32)[y])
    defence.reset_generator()
    return purified, gradient_, classifier.predict(x).argmax(1)


@pytest.mark.slow
@pytest.mark.parametrize("kind, gradient", [("heterogeneous", "surrogate")])  # exact gradients: the tiny-model test
def test_bfloat16_stays_within_the_justified_tolerance_on_the_shipped_models(kind, gradient):
    from art_purify.datasets import load_dataset
    from art_purify.zoo import load_classifier, load_diffusion

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        unet, scheduler = load_diffusion("fashion-mnist", device="cpu")
        net = load_classifier("fashion-mnist", device="cpu")
        x, y = load_dataset("embedded", "test")
        x, y = x[:8], y[:8]
        full = _run(kind, unet, scheduler, net, x, y, gradient)
        low = _run(kind, unet, scheduler, net, x, y, gradient, precision="bfloat16")
        other_draw = _run(kind, unet, scheduler, net, x, y, gradient, seed=1)
    finally:
        torch.set_num_threads(threads)
    assert not np.array_equal(low[0], full[0]), "bfloat16 must change something, or the test tests nothing"
    assert np.abs(low[0] - full[0]).max() < GREY_LEVEL
    assert np.abs(other_draw[0] - full[0]).max() > 100 * np.abs(low[0] - full[0]).max()
    assert _cosines(low[1], full[1]).min() >= 0.98
    assert _cosines(other_draw[1], full[1]).mean() < 0.8  # the spread the tolerance is judged against
    assert low[1].dtype == np.float32 and np.isfinite(low[1]).all()
    assert (low[2] == full[2]).mean() >= 7 / 8


def _tiny(**options):
    net = helpers.tiny_classifier()
    return build_defence("heterogeneous", helpers.tiny_unet(), None, net, gradient="exact", seed=0, **options), net


def _purify_and_gradient(defence, x):
    defence.reset_generator()
    x = x.clone().requires_grad_(True)
    out = defence.forward(x)[0]
    (grad,) = torch.autograd.grad((out * torch.linspace(-1, 1, out.numel()).reshape(out.shape)).sum(), x)
    return out.detach(), grad


@pytest.mark.parametrize(
    "options, tolerance",
    [({"channels_last": True}, 1e-6), ({"precision": "float16"}, 2e-3), ({"precision": "bfloat16"}, 1e-2)],
)
def test_each_option_against_float32_on_the_tiny_models(options, tolerance):
    x = helpers.image_batch(3, dtype=torch.float32)
    reference = _purify_and_gradient(_tiny()[0], x)
    defence = _tiny(**options)[0]
    out, grad = _purify_and_gradient(defence, x)
    assert out.dtype == torch.float32 and grad.dtype == torch.float32
    assert (out - reference[0]).abs().max() <= tolerance
    assert (grad - reference[1]).norm() <= tolerance * 10 * reference[1].norm()
    assert defence.precision == options.get("precision", "float32")


def test_channels_last_reaches_the_unet():
    """On 3 channels (a 1-channel tensor is contiguous in both layouts): the UNet sees channels-last inputs."""
    from diffusers import UNet2DModel

    from art_purify.defences.preprocessor import DiffusionPurificationPyTorch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        unet = UNet2DModel(**{**helpers.TINY_UNET, "in_channels": 3, "out_channels": 3}).eval()
    x = torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    results = {}
    for flag in (False, True):
        layouts = []
        hook = unet.register_forward_pre_hook(
            lambda module, args: layouts.append(
                (args[0].is_contiguous(), args[0].is_contiguous(memory_format=torch.channels_last))
            )
        )
        try:
            defence = DiffusionPurificationPyTorch(unet, defence_grid=50, seed=0, channels_last=flag)
            results[flag] = _purify_and_gradient(defence, x)
        finally:
            hook.remove()
        assert layouts and set(layouts) == {(False, True) if flag else (True, False)}
    assert torch.allclose(results[True][0], results[False][0], atol=1e-6)
    assert torch.allclose(results[True][1], results[False][1], atol=1e-6, rtol=1e-5)


def test_compile_unet_runs_the_compiled_unet(monkeypatch):
    """``compile_unet`` goes through ``torch.compile`` (here with the aot_eager backend: inductor compiles for 90 s on
    a CPU; its outputs were checked once, 1.6e-6 from eager's, see docs/scale.md)."""
    calls = []
    real = torch.compile

    def compile_(model, **kwargs):
        calls.append(model)
        return real(model, **{**kwargs, "backend": "aot_eager"})

    monkeypatch.setattr(torch, "compile", compile_)
    x = helpers.image_batch(2, dtype=torch.float32)
    reference = _purify_and_gradient(_tiny()[0], x)
    defence, _ = _tiny(compile_unet=True)
    out, grad = _purify_and_gradient(defence, x)
    out2, _ = _purify_and_gradient(defence, x)
    assert len(calls) == 1 and calls[0] is defence.unet  # compiled once, reused
    assert torch.allclose(out, reference[0], atol=1e-5) and torch.allclose(out2, out)
    assert torch.allclose(grad, reference[1], atol=1e-5, rtol=1e-4)


def test_speed_options_leave_the_unet_alone_and_reject_bad_values():
    defence, _ = _tiny(precision="bfloat16", channels_last=True)
    before = {k: v.clone() for k, v in defence.unet.state_dict().items()}
    _purify_and_gradient(defence, helpers.image_batch(2, dtype=torch.float32))
    assert all(torch.equal(before[k], v) for k, v in defence.unet.state_dict().items())
    assert all(p.grad is None for p in defence.unet.parameters())
    assert next(defence.unet.parameters()).dtype == torch.float32
    for bad, message in (
        ({"precision": "int8"}, "precision must be one of"),
        ({"precision": ["bfloat16"]}, "precision must be one of"),
        ({"channels_last": "yes"}, "channels_last must be True or False"),
        ({"compile_unet": 1}, "compile_unet must be True or False"),
    ):
        with pytest.raises(ValueError, match=message):
            defence.set_params(**bad)
        assert defence.precision == "bfloat16" and defence.channels_last is True  # all or nothing
    with pytest.raises(ValueError, match="precision must be one of"):
        AcceleratedNoiseModel(defence.unet, precision="half")
    with pytest.raises(ValueError, match="precision must be one of"):
        _tiny(precision="float64")
    assert _tiny()[0].precision == "float32"

# SPDX-License-Identifier: MIT
# Copyright (c) 2026 art_purify developers
"""AToP's purifier as an ART preprocessor: exact gradients (finite differences, ART against direct autograd with the
draw fixed), EOT, RT3 combination, layouts and input checks."""

import numpy as np
import pytest
import torch

from art_purify.defences.preprocessor import AToPPurificationPyTorch, RandomMaskingPyTorch
from art_purify.models import InpaintingGenerator, as_art_classifier
from tests.helpers import image_batch, tiny_classifier


def _generator(dtype=torch.float32, seed=0):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return InpaintingGenerator(1, width=4).to(dtype)


def _purifier(dtype=torch.float32, preset="rt2", **kw):
    kw.setdefault("seed", 0)
    return AToPPurificationPyTorch(_generator(dtype), RandomMaskingPyTorch.preset(preset), device_type="cpu", **kw)


def test_art_loss_gradient_equals_direct_autograd_with_the_draw_fixed():
    model = tiny_classifier(torch.float32)
    purifier = _purifier()
    classifier = as_art_classifier(model, (1, 8, 8), 10, device="cpu", preprocessing_defences=[purifier])
    x = image_batch(3, torch.float32)
    y = np.eye(10, dtype=np.float32)[[1, 5, 9]]
    purifier.reset_generator()
    art_grad = classifier.loss_gradient(x.numpy(), y)
    purifier.reset_generator()
    xg = x.clone().requires_grad_(True)
    out, _ = purifier.forward(xg, torch.from_numpy(y))
    loss = torch.nn.functional.cross_entropy(model(out), torch.tensor([1, 5, 9]))
    (direct,) = torch.autograd.grad(loss, xg)
    assert np.abs(art_grad).sum() > 0
    np.testing.assert_allclose(art_grad, direct.numpy(), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("preset", ["rt2", "rt3"])
def test_gradient_matches_central_finite_differences_in_float64(preset):
    purifier = _purifier(torch.float64, preset)
    x = image_batch(2, torch.float64).requires_grad_(True)
    weights = torch.randn(2, 1, 8, 8, generator=torch.Generator().manual_seed(1), dtype=torch.float64)

    def objective(inp):
        purifier.reset_generator()  # the same draw every evaluation
        return (purifier.forward(inp)[0] * weights).sum()

    (grad,) = torch.autograd.grad(objective(x), x)
    direction = torch.randn(x.shape, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    h = 1e-6
    with torch.no_grad():
        numeric = (objective(x + h * direction) - objective(x - h * direction)) / (2 * h)
    analytic = (grad * direction).sum()
    assert abs(float(numeric - analytic)) <= 1e-6 * max(1.0, abs(float(analytic)))
    assert abs(float(analytic)) > 1e-3


def test_eot_predict_gives_one_row_per_input_and_loss_gradients_average_draws():
    model = tiny_classifier(torch.float32)
    purifier = _purifier(nb_eot=4)
    classifier = as_art_classifier(model, (1, 8, 8), 10, device="cpu", preprocessing_defences=[purifier])
    x = image_batch(3, torch.float32).numpy()
    assert classifier.predict(x).shape == (3, 10)
    grad = classifier.loss_gradient(x, np.eye(10, dtype=np.float32)[[0, 1, 2]])
    assert grad.shape == x.shape
    out, y = purifier.forward(torch.from_numpy(x).requires_grad_(True), torch.eye(10)[[0, 1, 2]])
    assert out.shape[0] == 12 and y.shape[0] == 12


def test_rt3_combines_the_completions_of_its_masks_and_output_stays_in_range():
    purifier = _purifier(preset="rt3")
    x = image_batch(2, torch.float32)
    with torch.no_grad():
        out, _ = purifier.forward(x)
    assert out.shape == x.shape and out.min() >= 0 and out.max() <= 1
    # by hand: the same draw, every mask's completion, combined
    gen = torch.Generator().manual_seed(0)
    images, masks = purifier.transform.sample(x, gen)
    with torch.no_grad():
        refined = purifier.generator(images.flatten(0, 1) * 2 - 1, masks.flatten(0, 1))[1]
    completions = ((refined + 1) / 2).clamp(0, 1).view(images.shape)
    assert torch.allclose(out, RandomMaskingPyTorch.combine(completions, masks), atol=1e-6)


def test_seeded_draws_replay_and_fresh_draws_differ():
    purifier = _purifier()
    x = image_batch(2, torch.float32)
    with torch.no_grad():
        first, second = purifier.forward(x)[0], purifier.forward(x)[0]
        purifier.reset_generator()
        again = purifier.forward(x)[0]
    assert not torch.equal(first, second) and torch.equal(first, again)


def test_bad_input_and_bad_generators_get_clear_errors_and_draw_nothing():
    purifier = _purifier()
    with pytest.raises(ValueError, match="generator takes 1"):
        purifier.forward(torch.rand(1, 3, 8, 8))
    with pytest.raises(ValueError, match="outside clip_values"):
        purifier.forward(torch.full((1, 1, 8, 8), 2.0))

    class Shrinking(torch.nn.Module):
        def forward(self, x, mask):
            return x[..., :-1, :-1]

    wrong = AToPPurificationPyTorch(Shrinking(), RandomMaskingPyTorch(), seed=0)
    stream_before = wrong._generator(torch.device("cpu")).get_state()
    with pytest.raises(ValueError, match="output has shape"):
        wrong.forward(torch.rand(1, 1, 8, 8))
    assert torch.equal(wrong._generator(torch.device("cpu")).get_state(), stream_before)
    with pytest.raises(TypeError, match="torch.nn.Module"):
        AToPPurificationPyTorch("generator")
    with pytest.raises(ValueError, match="differ from the transform"):
        AToPPurificationPyTorch(_generator(), RandomMaskingPyTorch(), clip_values=(0.0, 255.0))
    with pytest.raises(ValueError, match="batch_size"):
        _purifier(batch_size=0)


def test_the_generator_keeps_its_own_mode_and_gradients():
    purifier = _purifier()  # a generator straight from its constructor: train mode, trainable parameters
    generator = purifier.generator
    assert generator.training and all(p.requires_grad for p in generator.parameters())
    out, _ = purifier.forward(image_batch(2, torch.float32).requires_grad_(True))
    out.sum().backward()
    assert generator.training and all(p.requires_grad and p.grad is None for p in generator.parameters())

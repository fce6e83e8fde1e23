# SPDX-License-Identifier: MIT
# Copyright (c) 2026 art_purify developers
"""AToP's random transforms: the masks (fraction, blocks, non-overlap), noise, seeding, EOT, the combination of
completions, exact gradients and input checks."""

import numpy as np
import pytest
import torch

from art_purify.defences.preprocessor import RT_PRESETS, RandomMaskingPyTorch
from art_purify.models import as_art_classifier
from tests.helpers import linear_model


def _x(n=4, side=28, seed=0, dtype=torch.float32):
    gen = torch.Generator().manual_seed(seed)
    return (0.2 + 0.6 * torch.rand(n, 1, side, side, generator=gen)).to(dtype)


def test_each_mask_hides_the_fraction_of_blocks_and_masks_never_overlap():
    rt = RandomMaskingPyTorch.preset("rt3", seed=0)  # 4 masks of 25 % of the 7 x 7 blocks
    images, masks = rt.sample(_x(), torch.Generator().manual_seed(0))
    assert images.shape == (4, 4, 1, 28, 28) and masks.shape == (4, 4, 1, 28, 28)
    blocks = masks[..., ::4, ::4]  # one value per 4 x 4 block
    assert torch.equal(masks, blocks.repeat_interleave(4, -2).repeat_interleave(4, -1))  # whole blocks
    assert torch.all(blocks.sum(dim=(2, 3, 4)) == 12)  # round(0.25 * 49) blocks per mask and image
    assert masks.sum(0).max() == 1  # no pixel hidden twice
    assert not torch.equal(masks[0, 0], masks[0, 1])  # a different mask per image
    mid = 0.5
    assert torch.all(images[masks.expand_as(images) == 1] == mid)


def test_rt1_keeps_visible_pixels_and_rt2_adds_clipped_noise_first():
    x = _x()
    out1, _ = RandomMaskingPyTorch.preset("rt1", seed=3).forward(x)
    visible = out1 != 0.5
    assert torch.equal(out1[visible], x[visible])
    rt2 = RandomMaskingPyTorch.preset("rt2", seed=3)
    images, masks = rt2.sample(x, torch.Generator().manual_seed(3))
    keep = masks[0] == 0
    noise = (images[0] - x)[keep.expand_as(x)]
    assert 0.2 < float(noise.std()) < 0.3  # std 0.25 of the [0, 1] range, a little less after clipping
    assert images.min() >= 0 and images.max() <= 1


def test_blocks_that_do_not_divide_the_image_and_the_smallest_fraction():
    rt = RandomMaskingPyTorch(block_size=5, mask_fraction=0.01, seed=0)
    assert rt.blocks_per_mask(28, 28) == (36, 1)  # 6 x 6 blocks (the last ones 3 pixels wide), at least one hidden
    images, masks = rt.sample(_x(2), torch.Generator().manual_seed(0))
    assert masks.shape == (1, 2, 1, 28, 28) and set(masks.sum(dim=(2, 3, 4)).tolist()[0]) <= {9.0, 15.0, 25.0}


def test_seeded_draws_replay_fresh_draws_per_call_and_the_global_rng_is_untouched():
    x = _x()
    state = torch.get_rng_state()
    rt = RandomMaskingPyTorch.preset("rt2", seed=5)
    first, second = rt.forward(x)[0], rt.forward(x)[0]
    assert not torch.equal(first, second)  # fresh draws per call
    rt.reset_generator()
    assert torch.equal(rt.forward(x)[0], first)
    assert torch.equal(RandomMaskingPyTorch.preset("rt2", seed=5).forward(x)[0], first)
    rt.set_params(noise_std=0.1)  # a successful set_params restarts the stream
    assert torch.equal(torch.get_rng_state(), state)


def test_combine_takes_the_completion_of_the_mask_that_hid_a_pixel():
    masks = torch.zeros(2, 1, 1, 1, 3)
    masks[0, ..., 0] = 1
    masks[1, ..., 1] = 1
    completions = torch.stack([torch.full((1, 1, 1, 3), 1.0), torch.full((1, 1, 1, 3), 3.0)])
    out = RandomMaskingPyTorch.combine(completions, masks)
    assert out.flatten().tolist() == [1.0, 3.0, 2.0]  # hidden by mask 0, by mask 1, by none (the mean)
    assert torch.equal(RandomMaskingPyTorch.combine(completions[:1], masks[:1]), completions[0])


def test_eot_expands_loss_gradient_calls_only_and_the_gradient_is_the_mask():
    rt = RandomMaskingPyTorch.preset("rt1", nb_eot=3, seed=0, dtype=None)
    x = _x(2).requires_grad_(True)
    y = torch.eye(10)[[1, 2]]
    out, y_out = rt.forward(x, y)
    assert out.shape[0] == 6 and torch.equal(y_out, y.repeat_interleave(3, 0))
    with torch.no_grad():
        assert rt.forward(x, y)[0].shape[0] == 2
    (grad,) = torch.autograd.grad(out.sum(), x)
    rt.reset_generator()
    _, masks = rt.sample(x.detach().repeat_interleave(3, 0), rt._generator(x.device))
    expected = (1 - masks[0]).view(2, 3, 1, 28, 28).sum(1)
    assert torch.equal(grad, expected)


def test_through_art_predict_gives_one_row_per_input_and_float64_reaches_float32():
    rt = RandomMaskingPyTorch.preset("rt2", nb_eot=4, seed=0)
    classifier = as_art_classifier(linear_model(), (1, 28, 28), 10, device="cpu", preprocessing_defences=[rt])
    x64 = _x(3, dtype=torch.float64).numpy()
    assert classifier.predict(x64).shape == (3, 10)
    grad = classifier.loss_gradient(x64, np.eye(10, dtype=np.float32)[[0, 1, 2]])
    assert grad.shape == x64.shape and grad.dtype == np.float64 and np.abs(grad).sum() > 0


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"mask_fraction": 0.0}, "mask_fraction must lie in"),
        ({"mask_fraction": 1.0}, "mask_fraction must lie in"),
        ({"mask_fraction": "a"}, "mask_fraction must be a number"),
        ({"nb_masks": 5}, "must not exceed 1"),
        ({"block_size": 0}, "block_size must be a positive integer"),
        ({"noise_std": -0.1}, "noise_std must be a finite non-negative"),
        ({"nb_eot": 0}, "nb_eot must be a positive integer"),
        ({"seed": 1.5}, "seed must be an integer"),
        ({"clip_values": (1.0, 0.0)}, "clip_values"),
        ({"dtype": torch.int64}, "dtype"),
    ],
)
def test_bad_parameters_are_refused_with_their_name(kwargs, match):
    with pytest.raises(ValueError, match=match):
        RandomMaskingPyTorch(**kwargs)


def test_bad_input_is_refused_and_draws_nothing():
    rt = RandomMaskingPyTorch(block_size=8, mask_fraction=0.5, nb_masks=2, seed=0)
    reference = RandomMaskingPyTorch(block_size=8, mask_fraction=0.5, nb_masks=2, seed=0).forward(_x(1, 16))[0]
    bad = _x(1, 16).clone()
    bad[0, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        rt.forward(bad)
    with pytest.raises(ValueError, match="outside clip_values"):
        rt.forward(_x(1, 16) + 1.0)
    with pytest.raises(ValueError, match="do not fit"):
        rt.forward(_x(1, 4))  # one block: two masks of one block cannot both fit
    with pytest.raises(ValueError, match="empty batch"):
        rt.forward(torch.zeros(0, 1, 16, 16))
    assert torch.equal(rt.forward(_x(1, 16))[0], reference)  # the failed calls drew nothing


def test_presets():
    assert set(RT_PRESETS) == {"rt1", "rt2", "rt3"}
    assert RandomMaskingPyTorch.preset("rt3", mask_fraction=0.2).nb_masks == 4
    with pytest.raises(ValueError, match="unknown random transform"):
        RandomMaskingPyTorch.preset("rt4")

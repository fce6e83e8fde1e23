# SPDX-License-Identifier: MIT
# Copyright (c) 2026 art_purify developers
"""AToP's networks: shapes, the refine switch, the size check, the discriminator and the hinge losses."""

import pytest
import torch

from art_purify.models import (
    InpaintingGenerator,
    PatchDiscriminator,
    generator_input,
    hinge_discriminator_loss,
    hinge_generator_loss,
)


def _seeded(builder, seed=0):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return builder()


@pytest.mark.parametrize("channels,side", [(1, 28), (3, 32)])
def test_generator_returns_coarse_and_refined_images_of_the_input_shape_in_range(channels, side):
    generator = _seeded(lambda: InpaintingGenerator(channels, width=4))
    x = torch.rand(2, channels, side, side) * 2 - 1
    mask = (torch.rand(2, 1, side, side) < 0.3).float()
    coarse, refined = generator(x * (1 - mask), mask)
    assert coarse.shape == refined.shape == x.shape
    assert coarse.abs().max() <= 1 and refined.abs().max() <= 1
    assert not torch.equal(coarse, refined)  # two stages


def test_refined_stage_sees_the_coarse_result_only_where_pixels_are_missing():
    generator = _seeded(lambda: InpaintingGenerator(1, width=4)).eval()
    x = torch.rand(1, 1, 8, 8) * 2 - 1
    none_missing = torch.zeros(1, 1, 8, 8)
    with torch.no_grad():
        coarse, refined = generator(x, none_missing)
        # with nothing missing the refinement stage starts from the input itself, whatever the coarse stage says
        generator.coarse[-2].bias.add_(5.0)
        coarse2, refined2 = generator(x, none_missing)
    assert not torch.allclose(coarse, coarse2)
    assert torch.equal(refined, refined2)


def test_generator_without_refinement_is_one_gated_auto_encoder():
    generator = _seeded(lambda: InpaintingGenerator(1, width=4, refine=False))
    coarse, refined = generator(torch.zeros(1, 1, 8, 8), torch.ones(1, 1, 8, 8))
    assert refined is coarse and generator.config["refine"] is False


def test_generator_refuses_sizes_its_stages_cannot_take_and_bad_settings():
    generator = InpaintingGenerator(1, width=4)
    with pytest.raises(ValueError, match="multiples of 4"):
        generator(torch.zeros(1, 1, 10, 8), torch.zeros(1, 1, 10, 8))
    with pytest.raises(ValueError, match="width"):
        InpaintingGenerator(1, width=1)
    with pytest.raises(ValueError, match="in_channels"):
        InpaintingGenerator(0)
    with pytest.raises(ValueError, match="dilations"):
        InpaintingGenerator(1, dilations=(2, 0))
    with pytest.raises(ValueError, match="nb_layers"):
        PatchDiscriminator(1, nb_layers=0)


def test_generator_input_and_discriminator_shapes():
    x, mask = torch.zeros(3, 1, 28, 28), torch.ones(3, 1, 28, 28)
    assert generator_input(x, mask).shape == (3, 3, 28, 28)
    assert torch.equal(generator_input(x, mask)[:, 1:], torch.ones(3, 2, 28, 28))
    discriminator = _seeded(lambda: PatchDiscriminator(1, width=4))
    assert discriminator(x, mask).shape == (3, 16 * 2 * 2)  # 4 stride-2 layers: 28 -> 2, 4 * width channels
    # spectral normalisation: every convolution's weight has unit largest singular value (after power iterations)
    discriminator.train()
    for _ in range(30):
        discriminator(x, mask)
    conv = discriminator.net[0]
    with torch.no_grad():
        sigma = torch.linalg.matrix_norm(conv.weight.flatten(1), ord=2)
    assert abs(float(sigma) - 1.0) < 0.05


def test_hinge_losses():
    real, fake = torch.tensor([2.0, 0.5]), torch.tensor([-2.0, 0.0])
    assert float(hinge_discriminator_loss(real, fake)) == pytest.approx(0.5 * 0.25 + 0.5 * 0.5)
    assert float(hinge_generator_loss(fake)) == pytest.approx(1.0)

# SPDX-License-Identifier: MIT
# Copyright (c) 2026 art_purify developers
"""The shared diffusion math: conversions, DDIM, the grid convention, seeded round trips."""

import pytest
import torch

from art_purify.diffusion import (
    DiffusionSchedule,
    ddim_denoise,
    diffuse,
    diffuse_and_denoise,
    from_model_space,
    grid_timesteps,
    strided_timesteps,
    to_model_space,
)


def test_space_conversions_are_inverse():
    x = torch.rand(2, 1, 5, 5)
    assert torch.allclose(from_model_space(to_model_space(x)), x)
    assert to_model_space(torch.zeros(1)).item() == -1 and to_model_space(torch.ones(1)).item() == 1


def test_ddim_with_an_oracle_noise_model_recovers_the_clean_image():
    """If the model predicts the exact noise that was added, DDIM (eta = 0) returns x_0 up to rounding."""
    schedule = DiffusionSchedule()
    gen = torch.Generator().manual_seed(0)
    x0 = torch.rand(4, 1, 6, 6, generator=gen, dtype=torch.float64) * 2 - 1
    noise = torch.randn(x0.shape, generator=gen, dtype=torch.float64)
    xt = diffuse(x0, 100, schedule, noise)

    def oracle(x, t):
        ab = schedule.alpha_bar(t, x)
        return (x - ab.sqrt() * x0) / (1 - ab).sqrt()

    out = ddim_denoise(oracle, xt, strided_timesteps(100, 10), schedule)
    ab0 = schedule.alpha_bar(0, x0)
    # DDIM ends at t = 0, where x_0 still carries sqrt(1 - ab_0) of the noise.
    assert torch.allclose(out, ab0.sqrt() * x0 + (1 - ab0).sqrt() * noise, atol=1e-10)


def test_one_grid_convention():
    assert strided_timesteps(100, 25) == [100, 75, 50, 25, 0]
    assert grid_timesteps(200, 50) == strided_timesteps(200, 20)  # the papers' grid K: stride T // K
    with pytest.raises(ValueError, match="not a multiple of the stride"):
        strided_timesteps(100, 30)
    with pytest.raises(ValueError, match="not on a grid"):
        grid_timesteps(100, 3)
    with pytest.raises(ValueError, match="positive divisor"):
        diffuse_and_denoise(torch.nn.Identity(), torch.zeros(1, 1, 8, 8), 100, 7)


def test_diffuse_and_denoise_is_seeded_and_in_range(tiny_unet):
    x = torch.rand(3, 1, 8, 8)
    a = diffuse_and_denoise(tiny_unet, x, 50, 5, generator=torch.Generator().manual_seed(1), batch_size=2)
    b = diffuse_and_denoise(tiny_unet, x, 50, 5, generator=torch.Generator().manual_seed(1))
    c = diffuse_and_denoise(tiny_unet, x, 50, 5, generator=torch.Generator().manual_seed(2))
    assert a.shape == x.shape and 0 <= a.min() and a.max() <= 1
    assert torch.allclose(a, b, atol=1e-6) and not torch.allclose(a, c)


def test_global_rng_untouched(tiny_unet):
    x = torch.rand(2, 1, 8, 8)
    state = torch.get_rng_state()
    diffuse_and_denoise(tiny_unet, x, 50, 5, generator=torch.Generator().manual_seed(1))
    assert torch.equal(state, torch.get_rng_state())

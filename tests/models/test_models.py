# SPDX-License-Identifier: MIT
# Copyright (c) 2026 art_purify developers
"""The SmallResNet classifier, the Fashion-MNIST UNet configuration and the DDPM schedule."""

import pytest
import torch

from art_purify.diffusion import (
    DiffusionSchedule,
)
from art_purify.models import DDPM_SCHEDULE, SmallResNet, build_scheduler, build_unet, fashion_mnist_unet_config


def test_small_resnet_shapes_and_named_stages():
    model = SmallResNet().eval()
    shapes = {}
    hooks = [
        getattr(model, name).register_forward_hook(lambda m, i, o, name=name: shapes.__setitem__(name, o.shape))
        for name in model.stage_names
    ]
    out = model(torch.rand(3, 1, 28, 28))
    for hook in hooks:
        hook.remove()
    assert out.shape == (3, 10)
    assert [shapes[n][-1] for n in model.stage_names] == [28, 14, 7, 4]
    with pytest.raises(ValueError, match="4 entries"):
        SmallResNet(widths=(8, 16))


def test_fashion_unet_config_runs_on_28x28():
    unet = build_unet(fashion_mnist_unet_config()).eval()
    with torch.no_grad():
        out = unet(torch.randn(2, 1, 28, 28), torch.tensor([0, 250])).sample
    assert out.shape == (2, 1, 28, 28)


def test_scheduler_is_ddpm_linear():
    scheduler = build_scheduler()
    assert scheduler.config.num_train_timesteps == 1000
    betas = torch.linspace(1e-4, 0.02, 1000, dtype=torch.float64)
    schedule = DiffusionSchedule(scheduler)
    assert torch.allclose(schedule.alphas_cumprod, torch.cumprod(1 - betas, 0), rtol=1e-5)
    assert DDPM_SCHEDULE["beta_schedule"] == "linear"
    x = torch.zeros(2, 1, 4, 4, dtype=torch.float64)
    assert schedule.alpha_bar(100, x).item() == pytest.approx(float(torch.cumprod(1 - betas, 0)[100]), rel=1e-6)
    assert schedule.alpha_bar(torch.tensor([0, 5]), x).shape == (2, 1, 1, 1)
    with pytest.raises(ValueError, match="outside"):
        schedule.alpha_bar(1000, x)
    t = schedule.timestep_for_sigma(schedule.sigma(150))
    assert t == 150

# SPDX-License-Identifier: MIT
# Copyright (c) 2026 art_purify developers
"""Tiny seeded models, data and checks shared by the tests (the one place they are built)."""

import gzip
import struct

import numpy as np
import torch

#: A diffusers UNet2DModel small enough for float64 finite differences: 8x8, one channel, two resolutions.
TINY_UNET = {
    "sample_size": 8,
    "in_channels": 1,
    "out_channels": 1,
    "layers_per_block": 1,
    "block_out_channels": [8, 16],
    "down_block_types": ["DownBlock2D", "DownBlock2D"],
    "up_block_types": ["UpBlock2D", "UpBlock2D"],
    "norm_num_groups": 4,
}


def tiny_unet(dtype=torch.float32, seed=0):
    """The tiny UNet with weights drawn from ``seed`` (the global RNG is left alone), in eval mode."""
    from diffusers import UNet2DModel

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return UNet2DModel(**TINY_UNET).to(dtype).eval()


def tiny_classifier(dtype=torch.float32, seed=1):
    """A SmallResNet with four narrow named stages (for the saliency hooks), 1x8x8 or 1x28x28 input."""
    from art_purify.models import SmallResNet

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return SmallResNet(widths=(4, 4, 8, 8)).to(dtype).eval()


def linear_model(side=28, seed=0):
    """Any logits module: flatten and one linear layer, 10 classes."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(side * side, 10))


def image_batch(n=2, dtype=torch.float64, seed=0, side=8):
    """``(n, 1, side, side)`` images in [0.2, 0.8] (away from the clip boundaries, for finite differences)."""
    gen = torch.Generator().manual_seed(seed)
    return (0.2 + 0.6 * torch.rand(n, 1, side, side, generator=gen)).to(dtype)


def uniform_defence(**kw):
    """DiffusionPurificationPyTorch on the tiny UNet: t* = 100, grid 50 (stride 20, 5 UNet calls), seed 0."""
    from art_purify.defences.preprocessor import DiffusionPurificationPyTorch

    kw.setdefault("defence_grid", 50)
    kw.setdefault("seed", 0)
    unet = tiny_unet(kw.pop("dtype", torch.float64))
    return DiffusionPurificationPyTorch(unet, t_star=100, device_type=kw.pop("device_type", "cpu"), **kw)


def hetero_defence(mask=None, **kw):
    """HeterogeneousDiffusionPurificationPyTorch on the tiny models: 200 -> 100 -> 0 on grid 50 (10 UNet calls),
    jump 10, seed 0; ``mask`` replaces the saliency mask by a constant one."""
    from art_purify.defences.preprocessor import HeterogeneousDiffusionPurificationPyTorch

    kw.setdefault("defence_grid", 50)
    kw.setdefault("seed", 0)
    kw.setdefault("jump", 10)
    dtype = kw.pop("dtype", torch.float64)
    defence = HeterogeneousDiffusionPurificationPyTorch(
        tiny_unet(dtype), tiny_classifier(dtype), t_high=200, t_low=100, device_type=kw.pop("device_type", "cpu"), **kw
    )
    if mask is not None:
        defence._prepare = lambda x: mask.to(device=x.device, dtype=x.dtype)
    return defence


def fixed_mask(n=2):
    """A constant saliency mask: the central 4x4 block of an 8x8 image is salient."""
    mask = torch.zeros(n, 1, 8, 8, dtype=torch.float64)
    mask[:, :, 2:6, 2:6] = 1.0
    return mask


def directional_check(defence, x, n_dirs=3):
    """Autograd gradient of a random linear functional of ``defence.forward`` against central finite differences in
    random directions (the same noise on every evaluation); relative error below 1e-4. Returns the gradient."""
    gen = torch.Generator(device=x.device).manual_seed(5)
    weights = torch.randn(x.shape, generator=gen, dtype=x.dtype, device=x.device)

    def loss(z):
        getattr(defence, "reset_generator", lambda: None)()  # a random defence replays the same noise
        return (defence.forward(z)[0] * weights).sum()

    xg = x.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(loss(xg), xg)
    h = 1e-6
    for _ in range(n_dirs):
        v = torch.randn(x.shape, generator=gen, dtype=x.dtype, device=x.device)
        with torch.no_grad():
            fd = (loss(x + h * v) - loss(x - h * v)) / (2 * h)
        analytic = (grad * v).sum()
        assert abs(fd - analytic) / abs(fd).clamp_min(1e-12) < 1e-4, (fd.item(), analytic.item())
    return grad


def write_idx(path, array: np.ndarray) -> None:
    """Write ``array`` (uint8) as a gzip-compressed IDX file."""
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(">" + "I" * array.ndim, *array.shape)
    with gzip.open(path, "wb") as handle:
        handle.write(header + array.astype(np.uint8).tobytes())

# SPDX-License-Identifier: MIT
# Copyright (c) 2026 art_purify developers
"""The diffusers UNet configuration and DDPM schedule used for Fashion-MNIST purification."""

from __future__ import annotations

from typing import Any, Dict, Optional, Sequence, cast

import torch

#: DDPM linear schedule shared by every model of the package (Ho et al., 2020).
DDPM_SCHEDULE: Dict[str, Any] = {
    "num_train_timesteps": 1000,
    "beta_start": 1e-4,
    "beta_end": 0.02,
    "beta_schedule": "linear",
    "prediction_type": "epsilon",
    "clip_sample": False,
}


def fashion_mnist_unet_config() -> Dict[str, Any]:
    """
    Keyword arguments of :class:`diffusers.UNet2DModel` for 1x28x28 images (about 1.9 M parameters).

    Three resolutions (28, 14, 7), one ResNet layer per block, self-attention only at 7x7.
    """
    return {
        "sample_size": 28,
        "in_channels": 1,
        "out_channels": 1,
        "layers_per_block": 1,
        "block_out_channels": [32, 64, 64],
        "down_block_types": ["DownBlock2D", "DownBlock2D", "AttnDownBlock2D"],
        "up_block_types": ["AttnUpBlock2D", "UpBlock2D", "UpBlock2D"],
        "norm_num_groups": 8,
        "attention_head_dim": 32,
    }


def unet_config_for(shape: Sequence[int]) -> Dict[str, Any]:
    """
    The Fashion-MNIST UNet's configuration (:func:`fashion_mnist_unet_config`) for images of ``shape``
    ``(C, H, W)``: the same blocks with ``C`` input and output channels and ``sample_size`` ``(H, W)``. ``H`` and
    ``W`` must be multiples of 4 (two down-samplings); for 32x32 colour images this is a small (1.9 M) CIFAR-sized
    denoiser, for larger data give your own configuration.
    """
    if len(shape) != 3:
        raise ValueError(f"image shape must be (C, H, W), got {tuple(shape)}.")
    channels, height, width = (int(v) for v in shape)
    if height % 4 or width % 4 or height <= 0 or width <= 0:
        raise ValueError(f"the default UNet needs height and width that are multiples of 4, got {height}x{width}.")
    config = fashion_mnist_unet_config()
    config.update(
        in_channels=channels, out_channels=channels, sample_size=height if height == width else [height, width]
    )
    return config


def check_unet_fits(unet: Any, shape: Sequence[int], origin: Any = "the UNet") -> None:
    """
    Raise ``ValueError`` when a UNet (a diffusers ``UNet2DModel``, or its configuration as a dict) was built for
    other images than ``shape`` ``(C, H, W)``; a module without such a configuration is not checked.
    """
    config = unet if isinstance(unet, dict) else getattr(unet, "config", None)
    if config is None:
        return
    channels, size = config.get("in_channels"), config.get("sample_size")
    sizes = tuple(size) if isinstance(size, (list, tuple)) else (size, size)
    if (channels is not None and channels != shape[0]) or (size is not None and sizes != tuple(shape[1:])):
        raise ValueError(
            f"{origin} is for {channels}x{sizes[0]}x{sizes[1]} images, the data is {'x'.join(map(str, shape))}."
        )


def build_unet(config: Optional[Dict[str, Any]] = None) -> torch.nn.Module:
    """Build a :class:`diffusers.UNet2DModel` from ``config`` (the Fashion-MNIST one by default)."""
    from diffusers import UNet2DModel

    return cast(torch.nn.Module, UNet2DModel(**(config if config is not None else fashion_mnist_unet_config())))


def build_scheduler(config: Optional[Dict[str, Any]] = None) -> Any:
    """Build the :class:`diffusers.DDPMScheduler` with the DDPM linear schedule (T = 1000, beta 1e-4 to 0.02)."""
    from diffusers import DDPMScheduler

    return DDPMScheduler(**(config if config is not None else DDPM_SCHEDULE))

# SPDX-License-Identifier: MIT
# Copyright (c) 2026 art_purify developers
"""Input checks every image defence of the package applies, in one place: type, dtype, shape, layout, what the
network can take, finiteness and ``clip_values``."""

from __future__ import annotations

from typing import Optional, Tuple

import numpy as np
import torch


def network_in_channels(module: torch.nn.Module) -> Optional[int]:
    """The input channels a diffusers-style network declares in its ``config`` (``None`` when it declares none)."""
    config = getattr(module, "config", None)
    return getattr(config, "in_channels", None) if config is not None else None


def network_size_multiple(module: torch.nn.Module) -> int:
    """Height and width a diffusers UNet can take are multiples of this (2 ** (resolutions - 1)); 1 if unknown."""
    config = getattr(module, "config", None)
    blocks = getattr(config, "block_out_channels", None) if config is not None else None
    return 2 ** (len(blocks) - 1) if blocks else 1


def validate_images(
    x: torch.Tensor,
    clip_values: Tuple[float, float],
    channels_first: bool,
    network: Optional[torch.nn.Module] = None,
    owner: str = "the defence",
) -> torch.Tensor:
    """
    Check a batch of images and return it channels-first (a copy in the standard memory layout when it was
    channels-last, so that the numerics do not depend on strides; gradients kept).

    :param x: ``(N, C, H, W)``, or ``(N, H, W, C)`` with ``channels_first=False``.
    :param clip_values: ``(min, max)``; values outside (beyond a 1e-5 tolerance of the range) are rejected.
    :param network: The network the images go through (its declared channels and resolutions are checked).
    :param owner: Who checks, for the messages.
    :raises TypeError: If ``x`` is not a tensor.
    :raises ValueError: Naming the problem: dtype, dimensions, empty batch, channels, size, NaN/inf, range.
    """
    if not torch.is_tensor(x):
        raise TypeError(f"{owner} expects a torch.Tensor, got {type(x).__name__}.")
    if not torch.is_floating_point(x):
        raise ValueError(f"input must be a floating-point tensor, got dtype {x.dtype}.")
    if x.ndim != 4:
        raise ValueError(f"input must have 4 dimensions (N, C, H, W), got shape {tuple(x.shape)}.")
    if x.shape[0] == 0:
        raise ValueError("input is an empty batch.")
    if not channels_first:
        x = x.permute(0, 3, 1, 2).clone(memory_format=torch.contiguous_format)
    if network is not None:
        channels = network_in_channels(network)
        if channels is not None and x.shape[1] != channels:
            layout = "channels_first" if channels_first else "channels_last"
            raise ValueError(
                f"input has {x.shape[1]} channels ({layout}, shape {tuple(x.shape)}) but the network takes {channels}."
            )
        multiple = network_size_multiple(network)
        if x.shape[2] % multiple or x.shape[3] % multiple:
            raise ValueError(
                f"image size {tuple(x.shape[2:])} cannot go through the network: height and width must be multiples "
                f"of {multiple} (its {int(np.log2(multiple)) + 1} resolutions)."
            )
    with torch.no_grad():
        if not torch.isfinite(x).all():
            raise ValueError("input contains NaN or inf.")
        lo, hi = clip_values
        tol = 1e-5 * (hi - lo)
        x_min, x_max = float(x.min()), float(x.max())
        if x_min < lo - tol or x_max > hi + tol:
            raise ValueError(f"input values lie in [{x_min:.4g}, {x_max:.4g}], outside clip_values [{lo}, {hi}].")
    return x

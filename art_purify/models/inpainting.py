# SPDX-License-Identifier: MIT
# Copyright (c) 2026 art_purify developers
"""
The AToP purifier's networks: a DeepFill-style inpainting generator (gated convolutions, a coarse and a refined
stage) and a spectral-normalised patch discriminator, with the hinge GAN losses they are trained with.

| Paper link (gated convolutions, SN-PatchGAN): https://arxiv.org/abs/1806.03589
| Paper link (AToP): https://arxiv.org/abs/2401.16352

Conventions, shared by every user of these networks (the trainer, the purifier):

- images are in the model space [-1, 1] (:func:`art_purify.diffusion.sampling.to_model_space` maps
  ``clip_values`` to it); a mask is ``(N, 1, H, W)`` with 1 where a pixel is missing;
- the generator's input is the transformed image (missing pixels set to 0, the middle of the range), a ones channel
  and the mask (:func:`generator_input`); it returns ``(coarse, refined)``, each ``(N, C, H, W)`` in [-1, 1], and
  the purified image is the refined output over the whole image (not only the missing pixels: the visible pixels
  carry the perturbation, which the purifier is trained to remove).
"""

from __future__ import annotations

from typing import Dict, List, Sequence, Tuple

import torch
from torch import nn
from torch.nn import functional as F


def generator_input(x_masked: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The generator's input: ``[image, ones, mask]`` along channels (``C + 2`` channels)."""
    return torch.cat([x_masked, torch.ones_like(mask), mask], dim=1)


def hinge_discriminator_loss(real_scores: torch.Tensor, fake_scores: torch.Tensor) -> torch.Tensor:
    """The discriminator's hinge loss: ``mean(relu(1 - D(real))) / 2 + mean(relu(1 + D(fake))) / 2``."""
    return 0.5 * torch.relu(1.0 - real_scores).mean() + 0.5 * torch.relu(1.0 + fake_scores).mean()


def hinge_generator_loss(fake_scores: torch.Tensor) -> torch.Tensor:
    """The generator's hinge loss: ``-mean(D(fake))``."""
    return -fake_scores.mean()


class GatedConv2d(nn.Module):
    """
    A gated convolution: one convolution gives features and gates, ``out = elu(features) * sigmoid(gates)``, so that
    the network learns per pixel and channel how much of each feature to let through (what a missing pixel needs).
    """

    def __init__(  # pylint: disable=too-many-arguments
        self, in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1, dilation: int = 1
    ):
        super().__init__()
        padding = dilation * (kernel_size - 1) // 2
        self.out_channels = out_channels
        self.conv = nn.Conv2d(in_channels, 2 * out_channels, kernel_size, stride, padding, dilation)
        # He initialisation, the features' half doubled to make up for the gate (sigmoid(0) = 0.5): the signal keeps
        # its scale through the ~15 layers of a stage (PyTorch's default init lets it fade by 100x, so that an
        # untrained generator is nearly constant and its input gradient nearly zero)
        nn.init.kaiming_uniform_(self.conv.weight, nonlinearity="relu")
        if self.conv.bias is not None:
            nn.init.zeros_(self.conv.bias)
        with torch.no_grad():
            self.conv.weight[:out_channels].mul_(2.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features, gates = torch.split(self.conv(x), self.out_channels, dim=1)
        return F.elu(features) * torch.sigmoid(gates)


class _GatedStage(nn.Sequential):
    """One encoder-decoder stage: two stride-2 gated convolutions down, dilated ones at the bottom, two up."""

    def __init__(self, in_channels: int, out_channels: int, width: int, dilations: Sequence[int]):
        half = max(1, width // 2)
        layers: List[nn.Module] = [
            GatedConv2d(in_channels, half, 5),
            GatedConv2d(half, width, 3, stride=2),
            GatedConv2d(width, width),
            GatedConv2d(width, 2 * width, 3, stride=2),
            GatedConv2d(2 * width, 2 * width),
        ]
        layers += [GatedConv2d(2 * width, 2 * width, 3, dilation=int(d)) for d in dilations]
        layers += [
            GatedConv2d(2 * width, 2 * width),
            nn.Upsample(scale_factor=2, mode="nearest"),
            GatedConv2d(2 * width, width),
            GatedConv2d(width, width),
            nn.Upsample(scale_factor=2, mode="nearest"),
            GatedConv2d(width, half),
            nn.Conv2d(half, out_channels, 3, padding=1),
            nn.Tanh(),
        ]
        super().__init__(*layers)


class InpaintingGenerator(nn.Module):
    """
    A DeepFill-style inpainting generator: a coarse gated encoder-decoder, then (with ``refine=True``) a second one
    that starts from the coarse result in the missing pixels and the input elsewhere.

    Input ``(x_masked, mask)``: ``(N, C, H, W)`` in [-1, 1] (missing pixels 0) and ``(N, 1, H, W)`` (1 = missing);
    ``H`` and ``W`` multiples of 4 (two stride-2 stages). Output ``(coarse, refined)`` in [-1, 1]; with
    ``refine=False`` both are the coarse stage's output (a gated auto-encoder, the simpler purifier of the
    literature, from the same code).

    :param in_channels: Image channels (1 for Fashion-MNIST, 3 for CIFAR-10).
    :param width: Channels of the first resolution (doubled at the bottom); DeepFill v2 uses 48 at 256 x 256, 16
                  trains on a 2-core CPU for 28 x 28 images.
    :param dilations: Dilation rates of the bottom layers (DeepFill: 2, 4, 8, 16 at 64 x 64 features).
    :param refine: Whether to add the refinement stage.
    """

    def __init__(
        self, in_channels: int = 1, width: int = 16, dilations: Sequence[int] = (2, 4), refine: bool = True
    ) -> None:
        super().__init__()
        if isinstance(in_channels, bool) or not isinstance(in_channels, int) or in_channels <= 0:
            raise ValueError(f"in_channels must be a positive integer, got {in_channels!r}.")
        if isinstance(width, bool) or not isinstance(width, int) or width < 2:
            raise ValueError(f"width must be an integer >= 2, got {width!r}.")
        if any(isinstance(d, bool) or not isinstance(d, int) or d <= 0 for d in dilations):
            raise ValueError(f"dilations must be positive integers, got {dilations!r}.")
        self.config: Dict[str, object] = {
            "in_channels": int(in_channels),
            "width": int(width),
            "dilations": [int(d) for d in dilations],
            "refine": bool(refine),
        }
        self.in_channels = int(in_channels)
        self.coarse = _GatedStage(in_channels + 2, in_channels, width, dilations)
        self.refined = _GatedStage(in_channels + 2, in_channels, width, dilations) if refine else None

    def forward(self, x_masked: torch.Tensor, mask: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        if x_masked.shape[-2] % 4 or x_masked.shape[-1] % 4:
            raise ValueError(
                f"image size {tuple(x_masked.shape[-2:])} cannot go through the generator: height and width must be "
                "multiples of 4 (two stride-2 stages)."
            )
        coarse = self.coarse(generator_input(x_masked, mask))
        if self.refined is None:
            return coarse, coarse
        start = coarse * mask + x_masked * (1.0 - mask)
        return coarse, self.refined(generator_input(start, mask))


class PatchDiscriminator(nn.Module):
    """
    A spectral-normalised patch discriminator (SN-PatchGAN): stride-2 5x5 convolutions with leaky ReLU; one score
    per patch of the image, flattened to ``(N, patches)``; trained with the hinge loss.

    Input ``(image, mask)``: ``(N, C, H, W)`` in [-1, 1] and ``(N, 1, H, W)``.

    :param in_channels: Image channels (the mask adds one).
    :param width: Channels of the first layer (doubled, up to 4x, in the next ones); DeepFill v2 uses 64.
    :param nb_layers: Number of stride-2 layers (4 gives 2 x 2 patches on 28 x 28 images).
    """

    def __init__(self, in_channels: int = 1, width: int = 16, nb_layers: int = 4) -> None:
        super().__init__()
        if isinstance(nb_layers, bool) or not isinstance(nb_layers, int) or nb_layers <= 0:
            raise ValueError(f"nb_layers must be a positive integer, got {nb_layers!r}.")
        if isinstance(width, bool) or not isinstance(width, int) or width <= 0:
            raise ValueError(f"width must be a positive integer, got {width!r}.")
        self.config: Dict[str, object] = {"in_channels": int(in_channels), "width": int(width), "nb_layers": nb_layers}
        layers: List[nn.Module] = []
        channels = in_channels + 1
        for i in range(nb_layers):
            out = width * min(2**i, 4)
            layers.append(nn.utils.parametrizations.spectral_norm(nn.Conv2d(channels, out, 5, 2, 2)))
            if i < nb_layers - 1:
                layers.append(nn.LeakyReLU(0.2))
            channels = out
        self.net = nn.Sequential(*layers)

    def forward(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([image, mask], dim=1)).flatten(1)

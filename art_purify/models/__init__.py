# SPDX-License-Identifier: MIT
# Copyright (c) 2026 art_purify developers
"""Models: the small ResNet classifier and the diffusers UNet / DDPM schedule configuration."""

from art_purify.models.classifier import BasicBlock, SmallResNet
from art_purify.models.wrapping import as_art_classifier
from art_purify.models.unet import DDPM_SCHEDULE, build_scheduler, build_unet, fashion_mnist_unet_config

__all__ = [
    "BasicBlock",
    "DDPM_SCHEDULE",
    "SmallResNet",
    "as_art_classifier",
    "build_scheduler",
    "build_unet",
    "fashion_mnist_unet_config",
]

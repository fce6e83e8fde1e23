# SPDX-License-Identifier: MIT
# Copyright (c) 2026 art_purify developers
"""Models: the small ResNet classifier, the diffusers UNet / DDPM schedule configuration and AToP's inpainting
generator and patch discriminator."""

from art_purify.models.accelerated import PRECISIONS, AcceleratedNoiseModel
from art_purify.models.classifier import BasicBlock, SmallResNet
from art_purify.models.inpainting import (
    GatedConv2d,
    InpaintingGenerator,
    PatchDiscriminator,
    generator_input,
    hinge_discriminator_loss,
    hinge_generator_loss,
)
from art_purify.models.wrapping import as_art_classifier
from art_purify.models.unet import (
    DDPM_SCHEDULE,
    build_scheduler,
    build_unet,
    check_unet_fits,
    fashion_mnist_unet_config,
    unet_config_for,
)

__all__ = [
    "AcceleratedNoiseModel",
    "BasicBlock",
    "DDPM_SCHEDULE",
    "GatedConv2d",
    "InpaintingGenerator",
    "PatchDiscriminator",
    "PRECISIONS",
    "SmallResNet",
    "as_art_classifier",
    "build_scheduler",
    "build_unet",
    "check_unet_fits",
    "fashion_mnist_unet_config",
    "unet_config_for",
    "generator_input",
    "hinge_discriminator_loss",
    "hinge_generator_loss",
]

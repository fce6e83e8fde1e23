# SPDX-License-Identifier: MIT
# Copyright (c) 2026 art_purify developers
"""Default models shipped in the package (safetensors only) and loaders for users' own models."""

from art_purify.zoo.loading import (
    ZOO,
    ZooError,
    export_run,
    load_atop,
    load_atop_weights,
    load_classifier,
    load_classifier_weights,
    load_diffusion,
    load_diffusion_dir,
    load_safetensors,
    load_unet_weights,
)

__all__ = [
    "ZOO",
    "ZooError",
    "export_run",
    "load_atop",
    "load_atop_weights",
    "load_classifier",
    "load_classifier_weights",
    "load_diffusion",
    "load_diffusion_dir",
    "load_safetensors",
    "load_unet_weights",
]

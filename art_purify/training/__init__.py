# SPDX-License-Identifier: MIT
# Copyright (c) 2026 art_purify developers
"""Training of the default models, with atomic checkpoints and exact resume."""

from art_purify.training.atop import AToPTrainConfig, build_atop_networks, train_atop
from art_purify.training.classifier import ClassifierTrainConfig, train_classifier
from art_purify.training.diffusion import DiffusionTrainConfig, train_diffusion

__all__ = [
    "AToPTrainConfig",
    "ClassifierTrainConfig",
    "DiffusionTrainConfig",
    "build_atop_networks",
    "train_atop",
    "train_classifier",
    "train_diffusion",
]

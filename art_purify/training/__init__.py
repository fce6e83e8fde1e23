# SPDX-License-Identifier: MIT
# Copyright (c) 2026 art_purify developers
"""Training of the default models, with atomic checkpoints and exact resume."""

from art_purify.training.classifier import ClassifierTrainConfig, train_classifier
from art_purify.training.diffusion import DiffusionTrainConfig, train_diffusion

__all__ = ["ClassifierTrainConfig", "DiffusionTrainConfig", "train_classifier", "train_diffusion"]

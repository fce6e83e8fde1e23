# SPDX-License-Identifier: MIT
# Copyright (c) 2026 art_purify developers
"""ART ``Trainer`` classes: AToP's purifier trainer and the sharpness-aware long-tailed trainer."""

from art_purify.defences.trainer.adversarial_trainer_atop_pytorch import AdversarialTrainerAToPPyTorch
from art_purify.defences.trainer.sharpness_aware_trainer_pytorch import SharpnessAwareTrainerPyTorch, shot_groups

__all__ = ["AdversarialTrainerAToPPyTorch", "SharpnessAwareTrainerPyTorch", "shot_groups"]

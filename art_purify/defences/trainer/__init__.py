# SPDX-License-Identifier: MIT
# Copyright (c) 2026 art_purify developers
"""ART ``Trainer`` classes: the sharpness-aware long-tailed trainer (AToP arrives here)."""

from art_purify.defences.trainer.sharpness_aware_trainer_pytorch import SharpnessAwareTrainerPyTorch, shot_groups

__all__ = ["SharpnessAwareTrainerPyTorch", "shot_groups"]

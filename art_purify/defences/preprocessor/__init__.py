# SPDX-License-Identifier: MIT
# Copyright (c) 2026 art_purify developers
"""ART ``PreprocessorPyTorch`` defences."""

from art_purify.defences.preprocessor.atop_purification_pytorch import AToPPurificationPyTorch
from art_purify.defences.preprocessor.base_diffusion_purifier_pytorch import (
    GRADIENT_MODES,
    BaseDiffusionPurifierPyTorch,
)
from art_purify.defences.preprocessor.diffusion_purification_pytorch import DiffusionPurificationPyTorch
from art_purify.defences.preprocessor.eot import NOISE_MODES, FixedNoiseMixin, expand_for_eot
from art_purify.defences.preprocessor.heterogeneous_diffusion_purification_pytorch import (
    HeterogeneousDiffusionPurificationPyTorch,
)
from art_purify.defences.preprocessor.random_masking_pytorch import RT_PRESETS, RandomMaskingPyTorch
from art_purify.defences.preprocessor.reconstruction_search_pytorch import (
    SEARCH_GRADIENT_MODES,
    ReconstructionSearchPyTorch,
)
from art_purify.defences.preprocessor.saliency import ActivationSaliency
from art_purify.defences.preprocessor.straight_through_pytorch import StraightThroughPyTorch

__all__ = [
    "AToPPurificationPyTorch",
    "GRADIENT_MODES",
    "ActivationSaliency",
    "BaseDiffusionPurifierPyTorch",
    "DiffusionPurificationPyTorch",
    "FixedNoiseMixin",
    "HeterogeneousDiffusionPurificationPyTorch",
    "NOISE_MODES",
    "RT_PRESETS",
    "RandomMaskingPyTorch",
    "ReconstructionSearchPyTorch",
    "SEARCH_GRADIENT_MODES",
    "StraightThroughPyTorch",
    "expand_for_eot",
]

"""ART ``PreprocessorPyTorch`` defences."""
from art_purify.defences.preprocessor._diffusion_base import GRADIENT_MODES, DiffusionPurifierPyTorch
from art_purify.defences.preprocessor.diffusion_purification_pytorch import DiffusionPurificationPyTorch
from art_purify.defences.preprocessor.heterogeneous_diffusion_purification_pytorch import (
    HeterogeneousDiffusionPurificationPyTorch,
)
from art_purify.defences.preprocessor.saliency import ActivationSaliency
from art_purify.defences.preprocessor.straight_through_pytorch import StraightThroughPyTorch

__all__ = [
    "GRADIENT_MODES",
    "ActivationSaliency",
    "DiffusionPurificationPyTorch",
    "DiffusionPurifierPyTorch",
    "HeterogeneousDiffusionPurificationPyTorch",
    "StraightThroughPyTorch",
]

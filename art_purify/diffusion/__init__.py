"""Diffusion schedules and samplers shared by the purification defences."""
from art_purify.diffusion.sampling import (
    ddim_denoise,
    ddim_grid,
    ddim_step,
    diffuse,
    diffuse_and_denoise,
    from_model_space,
    predict_noise,
    to_model_space,
)
from art_purify.diffusion.schedule import DiffusionSchedule

__all__ = [
    "DiffusionSchedule",
    "ddim_denoise",
    "ddim_grid",
    "ddim_step",
    "diffuse",
    "diffuse_and_denoise",
    "from_model_space",
    "predict_noise",
    "to_model_space",
]

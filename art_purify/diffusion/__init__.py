# SPDX-License-Identifier: MIT
# Copyright (c) 2026 art_purify developers
"""Diffusion schedules and samplers shared by the purification defences and the trainers."""

from art_purify.diffusion.sampling import (
    ddim_denoise,
    ddim_step,
    diffuse,
    diffuse_and_denoise,
    from_model_space,
    grid_timesteps,
    predict_noise,
    predict_x0,
    strided_timesteps,
    to_model_space,
)
from art_purify.diffusion.schedule import DiffusionSchedule

__all__ = [
    "DiffusionSchedule",
    "ddim_denoise",
    "ddim_step",
    "diffuse",
    "diffuse_and_denoise",
    "from_model_space",
    "grid_timesteps",
    "predict_noise",
    "predict_x0",
    "strided_timesteps",
    "to_model_space",
]

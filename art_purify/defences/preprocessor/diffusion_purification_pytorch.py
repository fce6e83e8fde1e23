# SPDX-License-Identifier: MIT
# Copyright (c) 2026 art_purify developers
"""Uniform (DiffPure-style) diffusion purification as an ART preprocessing defence."""

from __future__ import annotations

from typing import Any, Optional, Tuple, Union

import numpy as np
import torch

from art_purify.defences.preprocessor.base_diffusion_purifier_pytorch import BaseDiffusionPurifierPyTorch
from art_purify.diffusion.sampling import grid_timesteps
from art_purify.diffusion.purification import uniform_purify


class DiffusionPurificationPyTorch(BaseDiffusionPurifierPyTorch):
    """
    Uniform diffusion purification: diffuse the input to ``t_star`` with Gaussian noise, then reverse to 0 with a
    DDIM (``sampler="ddim"``, deterministic steps) or DDPM-like (``sampler="ddpm"``, stochastic steps) sampler over a
    grid of ``defence_grid`` (``T // defence_grid`` timesteps per UNet call).

    | Paper link (DiffPure, Nie et al., ICML 2022): https://arxiv.org/abs/2205.07460

    Threat model and gradients: see :class:`BaseDiffusionPurifierPyTorch`. ``gradient="exact"`` differentiates the
    whole defence; ``"surrogate"`` differentiates the same process on the coarse ``attack_grid``;
    :class:`~art_purify.defences.preprocessor.StraightThroughPyTorch` around it gives the BPDA reference. The defence
    is random: evaluate it with EOT (``nb_eot``) and majority voting.

    Shape: ``(N, C, H, W)`` (or ``(N, H, W, C)`` with ``channels_first=False``), values in ``clip_values``;
    ``C`` must match the UNet, ``H`` and ``W`` must pass through it.

    Example::

        unet, scheduler = art_purify.zoo.load_diffusion("fashion-mnist")
        defence = DiffusionPurificationPyTorch(unet, scheduler, t_star=100, gradient="exact", nb_eot=4, seed=0)
        classifier = PyTorchClassifier(model, loss, input_shape=(1, 28, 28), nb_classes=10, clip_values=(0, 1),
                                       preprocessing_defences=[defence])

    :param unet: A diffusers ``UNet2DModel`` or any module mapping ``(x_t, t)`` to predicted noise, in [-1, 1]. Run
                 in eval mode without parameter gradients, its own modes and ``requires_grad`` flags left as they are.
    :param scheduler: The diffusers scheduler the model was trained with (default: DDPM linear, T = 1000).
    :param t_star: Diffusion timestep the input is noised to (DiffPure: 100 of 1000).
    :param sampler: ``"ddim"`` or ``"ddpm"``.
    :param defence_grid: Grid of the defence's reverse process (200: ``t_star / 5`` UNet calls).
    :param attack_grid: Grid of the surrogate process (10: one UNet call from ``t_star = 100``).
    :param gradient: ``"exact"`` or ``"surrogate"`` (for BPDA wrap the defence in ``StraightThroughPyTorch``).
    :param gradient_checkpointing: Recompute UNet activations in the backward pass (exact and surrogate modes).
    :param nb_eot: EOT samples per input for loss gradients.
    :param seed: Seed of the noise stream (``None``: fresh OS entropy).
    :param batch_size: Images purified at once.
    :param clip_values: Data range; inputs outside it are rejected.
    :param channels_first: Layout of the input.
    :param apply_fit: Apply in ``fit`` (default False).
    :param apply_predict: Apply in ``predict`` (default True).
    :param device_type: ``"gpu"`` or ``"cpu"`` for numpy calls (``forward`` follows the input's device).
    :param verbose: Progress bar over internal batches.
    :param noise: ``"fresh"`` (new noise every call) or ``"fixed"`` (per-example noise fixed by ``seed`` and the keys
                  of :meth:`set_noise_keys`: the deterministic white-box mode; needs a seed and ``nb_eot=1``).
    """

    params = [
        "t_star",
        "sampler",
        "defence_grid",
        "attack_grid",
        "gradient",
        "gradient_checkpointing",
        "nb_eot",
        "seed",
        "batch_size",
        "clip_values",
        "channels_first",
        "verbose",
        "precision",
        "channels_last",
        "compile_unet",
        "noise",
    ]

    def __init__(
        self,
        unet: torch.nn.Module,
        scheduler: Any = None,
        t_star: int = 100,
        sampler: str = "ddim",
        defence_grid: int = 200,
        attack_grid: int = 10,
        gradient: str = "exact",
        gradient_checkpointing: bool = True,
        nb_eot: int = 1,
        seed: Optional[int] = None,
        batch_size: int = 64,
        clip_values: Tuple[float, float] = (0.0, 1.0),
        channels_first: bool = True,
        apply_fit: bool = False,
        apply_predict: bool = True,
        device_type: str = "gpu",
        verbose: bool = False,
        precision: str = "float32",
        channels_last: bool = False,
        compile_unet: bool = False,
        noise: str = "fresh",
    ):
        super().__init__(
            unet,
            scheduler,
            defence_grid=defence_grid,
            attack_grid=attack_grid,
            gradient=gradient,
            gradient_checkpointing=gradient_checkpointing,
            nb_eot=nb_eot,
            seed=seed,
            batch_size=batch_size,
            clip_values=clip_values,
            channels_first=channels_first,
            apply_fit=apply_fit,
            apply_predict=apply_predict,
            device_type=device_type,
            verbose=verbose,
            precision=precision,
            channels_last=channels_last,
            compile_unet=compile_unet,
            noise=noise,
        )
        self.t_star = t_star
        self.sampler = sampler
        self._check_params()

    def _check_params(self) -> None:
        super()._check_params()
        if self.sampler not in ("ddim", "ddpm"):
            raise ValueError(f"sampler must be 'ddim' or 'ddpm', got {self.sampler!r}.")
        if (
            isinstance(self.t_star, bool)
            or not isinstance(self.t_star, (int, np.integer))
            or not 0 < self.t_star < self.schedule.num_train_timesteps
        ):
            raise ValueError(f"t_star must be an integer in [1, {self.schedule.num_train_timesteps - 1}].")
        for grid in (self.defence_grid, self.attack_grid):
            grid_timesteps(self.t_star, grid, self.schedule.num_train_timesteps)

    def _purify_model_space(self, xd, grid, state, generator, gradient_checkpointing):
        eta = 1.0 if self.sampler == "ddpm" else 0.0
        return uniform_purify(
            self._noise_model(), xd, self.schedule, self.t_star, grid, generator, eta, gradient_checkpointing
        )

    def noise_level_map(self, x: Union[np.ndarray, torch.Tensor]) -> Union[np.ndarray, torch.Tensor]:
        """Per-pixel diffusion timestep: ``t_star`` everywhere, shape ``(N, 1, H, W)`` (numpy in, numpy out)."""
        xt = self._validate(torch.as_tensor(x))
        levels = torch.full((xt.shape[0], 1, *xt.shape[2:]), float(self.t_star))
        return levels.numpy() if isinstance(x, np.ndarray) else levels

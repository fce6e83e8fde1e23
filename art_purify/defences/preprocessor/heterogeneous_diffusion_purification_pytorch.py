# SPDX-License-Identifier: MIT
# Copyright (c) 2026 art_purify developers
"""Heterogeneous (saliency-guided two-level) diffusion purification as an ART preprocessing defence."""

from __future__ import annotations

from typing import Any, Optional, Sequence, Tuple, Union

import numpy as np
import torch

from art_purify.defences.preprocessor.base_diffusion_purifier_pytorch import BaseDiffusionPurifierPyTorch
from art_purify.defences.preprocessor.saliency import ActivationSaliency
from art_purify.diffusion.purification import heterogeneous_purify
from art_purify.diffusion.sampling import grid_timesteps
from art_purify.utils import module_dtype


class HeterogeneousDiffusionPurificationPyTorch(BaseDiffusionPurifierPyTorch):
    """
    Heterogeneous diffusion purification ("Divide and Conquer", CVPR 2025): the classifier's stage activations
    decide which pixels are salient; salient pixels are diffused to ``t_high`` and inpainted, the others keep the low
    level ``t_low``; a sampler with single-step resampling (one forward jump of ``jump`` steps, then one DDIM move)
    removes both, and plain DDIM finishes below ``t_low``.

    | Paper link: https://arxiv.org/abs/2503.01407

    The saliency mask is recomputed on every call from the (possibly adversarial) input and is a CONSTANT for the
    gradient, as in the paper: an attacker differentiates the purification given the mask. ``gradient="surrogate"``
    is the paper's attack process: the same heterogeneous sampler on ``attack_grid`` (10: timesteps 200, 100, 0, two
    UNet calls) with the same mask and jump. See :class:`BaseDiffusionPurifierPyTorch` for EOT and the other modes.

    Shape: ``(N, C, H, W)`` (or channels last), values in ``clip_values``.

    Example::

        unet, scheduler = art_purify.zoo.load_diffusion("fashion-mnist")
        model = art_purify.zoo.load_classifier("fashion-mnist")
        defence = HeterogeneousDiffusionPurificationPyTorch(unet, model, scheduler, gradient="surrogate", seed=0)

    :param unet: Noise model (diffusers ``UNet2DModel`` or a module mapping ``(x_t, t)`` to noise) on [-1, 1] data.
                 Run in eval mode without parameter gradients, its own modes and ``requires_grad`` flags left as they
                 are.
    :param classifier: The classifier whose stages give the saliency (``torch.nn.Module`` on the defence's input, or
                       an ART ``PyTorchClassifier``); the saliency pass runs it in eval mode and restores its modes.
    :param scheduler: The diffusers scheduler the UNet was trained with (default DDPM linear, T = 1000).
    :param stage_names: Modules to hook (default ``classifier.stage_names``).
    :param mask_threshold: Saliency threshold of salient pixels (paper: 0.85 on CIFAR-10).
    :param mask_top_fraction: Instead keep this fraction of pixels per image (paper: 0.15 on ImageNet).
    :param t_high: Noise level of salient pixels (paper: 200).
    :param t_low: Noise level of the others, where stage 2 starts (paper: 100).
    :param jump: Single-step resampling jump ``U`` (paper: 10; 0 disables).
    :param defence_grid: Grid of the defence (paper: 200, i.e. 40 UNet calls from 200).
    :param attack_grid: Grid of the surrogate (paper: 10, two UNet calls).
    :param noise: ``"fresh"`` (new noise every call) or ``"fixed"`` (per-example noise fixed by ``seed`` and the keys
                  of :meth:`set_noise_keys`: the deterministic white-box mode; needs a seed and ``nb_eot=1``). The
                  saliency mask is deterministic in both.
    """

    params = [
        "mask_threshold",
        "mask_top_fraction",
        "t_high",
        "t_low",
        "jump",
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
        classifier: Any,
        scheduler: Any = None,
        stage_names: Optional[Sequence[str]] = None,
        mask_threshold: float = 0.85,
        mask_top_fraction: Optional[float] = None,
        t_high: int = 200,
        t_low: int = 100,
        jump: int = 10,
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
        # the defence sits in the classifier's preprocessing chain: the classifier takes the defence's layout
        self.saliency = ActivationSaliency(
            classifier, stage_names, mask_threshold, mask_top_fraction, channels_first=channels_first
        )
        self.mask_threshold = mask_threshold
        self.mask_top_fraction = mask_top_fraction
        self.t_high = t_high
        self.t_low = t_low
        self.jump = jump
        self._check_params()

    def _check_params(self) -> None:
        super()._check_params()
        T = self.schedule.num_train_timesteps
        for name in ("t_high", "t_low", "jump"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
                raise ValueError(f"{name} must be a non-negative integer, got {value!r}.")
        if self.t_low > self.t_high:
            raise ValueError(f"t_low ({self.t_low}) must not exceed t_high ({self.t_high}).")
        if self.t_low <= 0:
            raise ValueError(f"t_low must be positive, got {self.t_low}.")
        if self.t_high + self.jump >= T:
            raise ValueError(f"t_high + jump must stay below {T}, got {self.t_high + self.jump}.")
        for grid in (self.defence_grid, self.attack_grid):
            steps = grid_timesteps(self.t_high, grid, T)
            if self.t_low not in steps:
                raise ValueError(f"t_low={self.t_low} is not on the grid of {grid} from t_high={self.t_high}.")
        if hasattr(self, "saliency"):  # keep the mask in step with set_params
            self.saliency.configure(self.mask_threshold, self.mask_top_fraction)
            self.saliency.channels_first = bool(self.channels_first)

    def _prepare(self, x: torch.Tensor) -> torch.Tensor:
        """The saliency mask of a channels-first chunk, from the classifier called in ITS layout."""
        x_in = x if self.channels_first else x.permute(0, 2, 3, 1).clone(memory_format=torch.contiguous_format)
        return self.saliency.mask(x_in.to(module_dtype(self.saliency.model))).to(x.dtype)

    def _purify_model_space(self, xd, grid, state, generator, gradient_checkpointing):
        return heterogeneous_purify(
            self._noise_model(),
            xd,
            state,
            self.schedule,
            self.t_high,
            self.t_low,
            grid,
            self.jump,
            generator,
            gradient_checkpointing,
        )

    def saliency_mask(self, x: Union[np.ndarray, torch.Tensor]) -> Union[np.ndarray, torch.Tensor]:
        """
        The binary mask (1 = salient, HIGH noise) the defence uses for ``x``, shape ``(N, 1, H, W)``.

        :param x: Inputs as ``forward`` takes them; numpy in gives numpy out (ART's non-PyTorch path), a tensor in
                  gives a CPU tensor out.
        """
        xt = self._validate(torch.as_tensor(x, device=self.device))
        mask = self._prepare(xt.detach().to(self._model_dtype())).cpu()
        return mask.numpy() if isinstance(x, np.ndarray) else mask

    def noise_level_map(self, x: Union[np.ndarray, torch.Tensor]) -> Union[np.ndarray, torch.Tensor]:
        """Per-pixel diffusion timestep: ``t_high`` on salient pixels, ``t_low`` elsewhere, ``(N, 1, H, W)`` (numpy in,
        numpy out)."""
        mask = self.saliency_mask(x)
        return mask * self.t_high + (1.0 - mask) * self.t_low

# SPDX-License-Identifier: MIT
# Copyright (c) 2026 art_purify developers
"""
AToP's random transforms (RT1, RT2, RT3) as one ART preprocessor: random block masks, optionally after Gaussian
noise, optionally several non-overlapping masks whose completions are combined.

| Paper link: https://arxiv.org/abs/2401.16352
"""

from __future__ import annotations

import math
from typing import Any, Dict, Optional, Tuple

import numpy as np
import torch
from art.defences.preprocessor.preprocessor import PreprocessorPyTorch

from art_purify.defences.preprocessor.eot import FixedNoiseMixin, expand_for_eot
from art_purify.defences.preprocessor.validation import validate_images
from art_purify.utils import AtomicParamsMixin, random_normal, random_uniform

#: AToP's three transforms as parameters of :class:`RandomMaskingPyTorch` (block size and fraction as the paper's
#: 32-pixel blocks, 25 % missing, at 256 x 256, scaled to 4-pixel blocks at 28 x 28).
RT_PRESETS: Dict[str, Dict[str, Any]] = {
    "rt1": {"noise_std": 0.0, "nb_masks": 1},
    "rt2": {"noise_std": 0.25, "nb_masks": 1},
    "rt3": {"noise_std": 0.25, "nb_masks": 4},
}


def _is_int(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, (int, np.integer))


class RandomMaskingPyTorch(FixedNoiseMixin, AtomicParamsMixin, PreprocessorPyTorch):
    """
    Random block masking, AToP's perturbation-destroying transform (RT), with exact gradients.

    Each image is cut into ``block_size`` x ``block_size`` blocks (the last row and column of blocks may be
    narrower); ``mask_fraction`` of them, chosen at random per image, are missing and set to the middle of
    ``clip_values``. The paper's three transforms are parameter choices (:data:`RT_PRESETS`, :meth:`preset`):

    - RT1, ``noise_std=0``: one block mask;
    - RT2, ``noise_std > 0``: Gaussian noise of standard deviation ``noise_std`` (in units of the ``clip_values``
      range), clipped to ``clip_values``, then one block mask;
    - RT3, ``nb_masks = K > 1``: K masks that never share a block (one random order of the blocks per image, cut
      into K runs of ``mask_fraction`` of them; ``K * mask_fraction <= 1``), each with its own noise; the K
      completions are combined by :meth:`combine`: a pixel takes the mean of the completions of the masks that
      hide it, and the mean of all K where no mask hides it.

    On its own (this class's ``forward``) the "completion" of a draw is the transformed image itself, so RT1 and RT2
    give the masked image and RT3 gives the input with the union of its masks missing. With a purifier network, see
    :class:`~art_purify.defences.preprocessor.AToPPurificationPyTorch`.

    Randomness: fresh draws on every call, from the defence's own ``torch.Generator`` seeded by ``seed`` (see
    :class:`~art_purify.defences.preprocessor.eot.SeededStreamMixin`); the global RNG is not used. With
    ``noise="fixed"`` each example's draws are fixed by ``seed`` and its key instead (DW-box, see
    :class:`~art_purify.defences.preprocessor.eot.FixedNoiseMixin`). EOT: with
    ``nb_eot > 1`` a loss-gradient call expands every input into ``nb_eot`` draws (see
    :func:`~art_purify.defences.preprocessor.eot.expand_for_eot`); ``predict`` gets one row per input.

    Gradient an attacker gets: the exact one (noise is additive, the mask multiplies by 0 or 1, the clip is the
    real clip), for the draw made in that call.

    :param block_size: Side of a block in pixels.
    :param mask_fraction: Fraction of the blocks each mask hides, in (0, 1).
    :param noise_std: Standard deviation of the Gaussian noise before masking (0: none).
    :param nb_masks: Number of non-overlapping masks (RT3); ``nb_masks * mask_fraction`` must not exceed 1.
    :param nb_eot: Draws per input in loss-gradient calls.
    :param seed: Seed of the defence's draws (``None``: a fresh random seed).
    :param clip_values: ``(min, max)`` of the inputs.
    :param channels_first: ``(N, C, H, W)`` if True, else ``(N, H, W, C)``.
    :param noise: ``"fresh"`` (new draws every call) or ``"fixed"`` (each example's mask and noise fixed by ``seed``
                  and its key, see :meth:`set_noise_keys`: the deterministic white-box mode; needs a seed and
                  ``nb_eot=1``).
    :param dtype: The output's dtype (float32 by default, what classifiers take: ART hands float64 numpy data to
                  ``forward`` as float64; the gradient still reaches the float64 input); ``None`` keeps the input's.
    """

    params = [
        "block_size",
        "mask_fraction",
        "noise_std",
        "nb_masks",
        "nb_eot",
        "seed",
        "clip_values",
        "channels_first",
        "noise",
    ]
    #: Random: the evaluation suite votes over draws and reseeds it per phase.
    stochastic = True

    def __init__(  # pylint: disable=too-many-arguments
        self,
        block_size: int = 4,
        mask_fraction: float = 0.25,
        noise_std: float = 0.0,
        nb_masks: int = 1,
        nb_eot: int = 1,
        seed: Optional[int] = None,
        clip_values: Tuple[float, float] = (0.0, 1.0),
        channels_first: bool = True,
        dtype: Optional[torch.dtype] = torch.float32,
        apply_fit: bool = False,
        apply_predict: bool = True,
        device_type: str = "gpu",
        verbose: bool = False,
        noise: str = "fresh",
    ):
        super().__init__(device_type=device_type, is_fitted=True, apply_fit=apply_fit, apply_predict=apply_predict)
        if dtype is not None and not (isinstance(dtype, torch.dtype) and dtype.is_floating_point):
            raise ValueError(f"dtype must be a floating-point torch.dtype or None, got {dtype!r}.")
        self.dtype = dtype
        self.block_size = block_size
        self.mask_fraction = mask_fraction
        self.noise_std = noise_std
        self.nb_masks = nb_masks
        self.nb_eot = nb_eot
        self.seed = seed
        self.clip_values = clip_values
        self.channels_first = channels_first
        self.verbose = verbose
        self.noise = noise
        self._generators = {}
        self._check_params()

    @classmethod
    def preset(cls, name: str, **kwargs: Any) -> "RandomMaskingPyTorch":
        """AToP's ``"rt1"``, ``"rt2"`` or ``"rt3"`` (:data:`RT_PRESETS`), with any parameter overridden."""
        if name not in RT_PRESETS:
            raise ValueError(f"unknown random transform {name!r}: use one of {sorted(RT_PRESETS)}.")
        return cls(**{**RT_PRESETS[name], **kwargs})

    def _check_params(self) -> None:
        for name in ("block_size", "nb_masks", "nb_eot"):
            value = getattr(self, name)
            if not _is_int(value) or value <= 0:
                raise ValueError(f"{name} must be a positive integer, got {value!r}.")
        if isinstance(self.mask_fraction, bool) or not isinstance(self.mask_fraction, (int, float, np.floating)):
            raise ValueError(f"mask_fraction must be a number in (0, 1), got {self.mask_fraction!r}.")
        if not 0.0 < float(self.mask_fraction) < 1.0:
            raise ValueError(f"mask_fraction must lie in (0, 1), got {self.mask_fraction!r}.")
        if self.nb_masks * float(self.mask_fraction) > 1.0 + 1e-9:
            raise ValueError(
                f"nb_masks * mask_fraction must not exceed 1 (the masks do not overlap), got {self.nb_masks} * "
                f"{self.mask_fraction}."
            )
        if isinstance(self.noise_std, bool) or not isinstance(self.noise_std, (int, float, np.floating)):
            raise ValueError(f"noise_std must be a non-negative number, got {self.noise_std!r}.")
        if not math.isfinite(float(self.noise_std)) or float(self.noise_std) < 0:
            raise ValueError(f"noise_std must be a finite non-negative number, got {self.noise_std!r}.")
        if self.seed is not None and not _is_int(self.seed):
            raise ValueError(f"seed must be an integer or None, got {self.seed!r}.")
        if len(self.clip_values) != 2 or not self.clip_values[0] < self.clip_values[1]:
            raise ValueError(f"clip_values must be (min, max) with min < max, got {self.clip_values!r}.")
        if not isinstance(self.channels_first, bool):
            raise ValueError(f"channels_first must be a bool, got {self.channels_first!r}.")
        self._check_noise()

    # ------------------------------------------------------------------ the transform
    def blocks_per_mask(self, height: int, width: int) -> Tuple[int, int]:
        """``(blocks of an image, blocks each mask hides)`` for images of this size (at least one hidden)."""
        blocks = math.ceil(height / self.block_size) * math.ceil(width / self.block_size)
        hidden = max(1, int(round(float(self.mask_fraction) * blocks)))
        if hidden * self.nb_masks > blocks:
            raise ValueError(
                f"{self.nb_masks} masks of {hidden} blocks do not fit in the {blocks} blocks of a {height} x {width} "
                f"image (block_size {self.block_size}): lower nb_masks, mask_fraction or block_size."
            )
        return blocks, hidden

    def sample(self, x: torch.Tensor, generator: Any) -> Tuple[torch.Tensor, torch.Tensor]:
        """
        Draw the transform for channels-first images ``x`` (values in ``clip_values``), differentiably in ``x``.

        Draw order (fixed, so that a seed replays): one uniform number per block and image (the blocks' random
        order), then, with ``noise_std > 0``, the noise of every mask. ``generator``: a ``torch.Generator`` or
        per-example :class:`~art_purify.utils.KeyedStreams` (fixed noise).

        :return: ``(transformed, masks)``: ``(nb_masks, N, C, H, W)`` images in ``clip_values`` with the missing
                 pixels at the middle of the range, and ``(nb_masks, N, 1, H, W)`` masks in ``x``'s dtype, 1 where a
                 pixel is missing.
        """
        n, _, height, width = x.shape
        size = int(self.block_size)
        rows, cols = math.ceil(height / size), math.ceil(width / size)
        blocks, hidden = self.blocks_per_mask(height, width)
        rank = random_uniform((n, blocks), generator, x.device).argsort(1).argsort(1)
        first = torch.arange(self.nb_masks, device=x.device).view(-1, 1, 1) * hidden
        grid = ((rank.unsqueeze(0) >= first) & (rank.unsqueeze(0) < first + hidden)).to(x.dtype)
        grid = grid.view(self.nb_masks, n, 1, rows, cols)
        masks = grid.repeat_interleave(size, dim=3).repeat_interleave(size, dim=4)[..., :height, :width]
        lo, hi = float(self.clip_values[0]), float(self.clip_values[1])
        images = x.unsqueeze(0).expand(self.nb_masks, *x.shape)
        if float(self.noise_std) > 0:
            noise = random_normal(images.shape, generator, x.device, x.dtype, row_dim=1)
            images = torch.clamp(images + float(self.noise_std) * (hi - lo) * noise, lo, hi)
        return images * (1.0 - masks) + 0.5 * (lo + hi) * masks, masks

    @staticmethod
    def combine(completions: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        """
        One image per input from the completions of its ``K`` draws, ``(K, N, C, H, W)`` with masks
        ``(K, N, 1, H, W)``: a pixel takes the mean of the completions of the draws that hid it, and the mean of
        all ``K`` where none did. ``K = 1`` returns the completion.
        """
        if completions.shape[0] == 1:
            return completions[0]
        hidden = masks.sum(0)
        where_hidden = (completions * masks).sum(0) / hidden.clamp(min=1.0)
        return torch.where(hidden > 0, where_hidden, completions.mean(0))

    def forward(self, x: torch.Tensor, y: Optional[torch.Tensor] = None) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        """
        Transform ``x`` (values in ``clip_values``), a fresh draw per call.

        :return: ``(transformed, y)``, in ``dtype``; with EOT expansion ``nb_eot`` rows per input and ``y``
                 repeated to match.
        """
        x_cf = validate_images(x, self.clip_values, self.channels_first, None, f"{type(self).__name__}.forward")
        x_cf, y = expand_for_eot(x_cf, y, self.nb_eot)
        self.blocks_per_mask(x_cf.shape[2], x_cf.shape[3])  # before any draw: a size that does not fit changes nothing
        work = x_cf if self.dtype is None else x_cf.to(self.dtype)
        out = self.combine(*self.sample(work, self._noise_source(x_cf, x.device)))
        if not self.channels_first:
            out = out.permute(0, 2, 3, 1)
        return out, y

    def estimate_forward(self, x: torch.Tensor, y: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Same as ``forward`` (ART calls it only through ``estimate_gradient`` for mixed numpy/torch chains)."""
        return self.forward(x, y)[0]

# SPDX-License-Identifier: MIT
# Copyright (c) 2026 art_purify developers
"""DDPM schedule tables taken from a diffusers scheduler, moved to the data's device and dtype at the point of use."""

from __future__ import annotations

from typing import Any, Optional, Union

import torch


class DiffusionSchedule:
    """
    ``alpha_t`` and ``alpha_bar_t`` of a DDPM schedule, indexed ``0 .. T-1`` exactly as diffusers indexes them.

    ``x_t = sqrt(alpha_bar_t) * x_0 + sqrt(1 - alpha_bar_t) * eps`` is the marginal the noise model was trained on.
    Tables are kept in float64 and cast to the caller's tensor on use.

    :param scheduler: Any diffusers scheduler with ``alphas`` and ``alphas_cumprod`` (default: the package's DDPM
                      linear schedule, T = 1000, beta 1e-4 to 0.02).
    """

    def __init__(self, scheduler: Any = None) -> None:
        if scheduler is None:
            from art_purify.models import build_scheduler

            scheduler = build_scheduler()
        for name in ("alphas", "alphas_cumprod"):
            if not hasattr(scheduler, name):
                raise ValueError(f"scheduler {type(scheduler).__name__} has no `{name}` table (use a DDPM/DDIM one).")
        self.alphas = torch.as_tensor(scheduler.alphas, dtype=torch.float64)
        self.alphas_cumprod = torch.as_tensor(scheduler.alphas_cumprod, dtype=torch.float64)
        self.num_train_timesteps = int(self.alphas_cumprod.numel())
        #: ``sigma_t = sqrt((1 - ab_t) / ab_t)`` for every timestep (looked up by :meth:`timestep_for_sigma`).
        self.sigmas = ((1.0 - self.alphas_cumprod) / self.alphas_cumprod).sqrt()

    def _take(self, table: torch.Tensor, t: Union[int, torch.Tensor], like: torch.Tensor) -> torch.Tensor:
        t = torch.as_tensor(t, dtype=torch.long).cpu()  # the tables live on the CPU
        if t.min() < 0 or t.max() >= self.num_train_timesteps:
            raise ValueError(f"timestep {t.tolist()} is outside [0, {self.num_train_timesteps - 1}].")
        values = table[t].to(device=like.device, dtype=like.dtype)
        return values.view(-1, *([1] * (like.ndim - 1))) if values.ndim == 1 else values

    def alpha_bar(self, t: Union[int, torch.Tensor], like: torch.Tensor) -> torch.Tensor:
        """``alpha_bar_t`` as a scalar (int ``t``) or ``(N, 1, 1, 1)`` tensor on ``like``'s device and dtype."""
        return self._take(self.alphas_cumprod, t, like)

    def alpha(self, t: Union[int, torch.Tensor], like: torch.Tensor) -> torch.Tensor:
        """``alpha_t = 1 - beta_t``, like :meth:`alpha_bar`."""
        return self._take(self.alphas, t, like)

    def sigma(self, t: int) -> float:
        """Equivalent ``sigma`` of ``x + sigma * eps``: ``sqrt((1 - alpha_bar_t) / alpha_bar_t)``."""
        ab = self.alphas_cumprod[t]
        return float(((1.0 - ab) / ab).sqrt())

    def timestep_for_sigma(self, sigma: float, device: Optional[torch.device] = None) -> int:
        """The timestep whose :meth:`sigma` is closest to ``sigma``."""
        return int((self.sigmas - float(sigma)).abs().argmin())

# SPDX-License-Identifier: MIT
# Copyright (c) 2026 art_purify developers
"""
The diffusion math every sampler and trainer of the package shares: conversions to model space, the forward
marginal, noise prediction, the clean-image (Tweedie) estimate, one DDIM step, and the timestep grids.

One grid convention: a process starting at ``t_start`` moves in equal strides ``s`` to 0 (``t_start, t_start - s,
..., 0``, one noise-model call per move). The purification papers give the stride as a grid ``K`` over the ``T``
training steps, ``s = T // K`` (:func:`grid_timesteps`).
"""

from __future__ import annotations

from typing import List, Optional, Sequence, Tuple, Union

import torch

from art_purify.diffusion.schedule import DiffusionSchedule

Timestep = Union[int, torch.Tensor]


def to_model_space(x: torch.Tensor, clip_values: Tuple[float, float] = (0.0, 1.0)) -> torch.Tensor:
    """Images in ``clip_values`` (ART's side) to [-1, 1] (the diffusion model's side)."""
    lo, hi = clip_values
    return (x - lo) / (hi - lo) * 2.0 - 1.0


def from_model_space(
    xd: torch.Tensor, clip_values: Tuple[float, float] = (0.0, 1.0), clamp: bool = False
) -> torch.Tensor:
    """[-1, 1] model space back to ``clip_values`` (clamped to that range when ``clamp``)."""
    lo, hi = clip_values
    unit = (xd + 1.0) / 2.0
    if clamp:
        unit = unit.clamp(0.0, 1.0)
    return unit * (hi - lo) + lo


def predict_noise(model: torch.nn.Module, xt: torch.Tensor, t: Timestep) -> torch.Tensor:
    """
    Call a noise model at timestep ``t`` (an int, or a ``(N,)`` long tensor of per-image timesteps): a diffusers
    ``UNet2DModel`` (its ``.sample`` is taken) or any module mapping ``(x_t, t)`` with ``t`` a ``(N,)`` long tensor
    to predicted noise of ``x_t``'s shape.
    """
    if torch.is_tensor(t):
        timesteps = t.to(device=xt.device, dtype=torch.long)
    else:
        timesteps = torch.full((xt.shape[0],), int(t), device=xt.device, dtype=torch.long)
    out = model(xt, timesteps)
    out = getattr(out, "sample", out)
    if out.shape != xt.shape:
        raise ValueError(f"noise model returned shape {tuple(out.shape)} for input {tuple(xt.shape)}.")
    return out


def diffuse(x0: torch.Tensor, t: Timestep, schedule: DiffusionSchedule, noise: torch.Tensor) -> torch.Tensor:
    """Sample the forward marginal ``x_t = sqrt(ab_t) x_0 + sqrt(1 - ab_t) noise`` (model space; ``t`` an int or a
    ``(N,)`` tensor)."""
    ab = schedule.alpha_bar(t, x0)
    return ab.sqrt() * x0 + (1.0 - ab).sqrt() * noise


def predict_x0(xt: torch.Tensor, eps: torch.Tensor, t: Timestep, schedule: DiffusionSchedule) -> torch.Tensor:
    """The clean-image estimate of ``x_t`` given its predicted noise (Tweedie): ``(x_t - sqrt(1 - ab_t) eps) /
    sqrt(ab_t)``."""
    ab = schedule.alpha_bar(t, xt)
    return (xt - (1.0 - ab).sqrt() * eps) / ab.sqrt()


def ddim_step(  # pylint: disable=too-many-arguments
    model: torch.nn.Module,
    xt: torch.Tensor,
    t: int,
    t_next: int,
    schedule: DiffusionSchedule,
    eta: float = 0.0,
    noise: Optional[torch.Tensor] = None,
) -> torch.Tensor:
    """
    One DDIM move from ``t`` to ``t_next < t`` (any stride).

    :param eta: 0 for the deterministic DDIM step; 1 for the DDPM-like ancestral step, which needs ``noise``.
    """
    eps = predict_noise(model, xt, t)
    ab, ab_next = schedule.alpha_bar(t, xt), schedule.alpha_bar(t_next, xt)
    x0 = predict_x0(xt, eps, t, schedule)
    if eta == 0.0:
        return ab_next.sqrt() * x0 + (1.0 - ab_next).sqrt() * eps
    if noise is None:
        raise ValueError("a stochastic step (eta > 0) needs noise.")
    sigma = eta * ((1.0 - ab_next) / (1.0 - ab) * (1.0 - ab / ab_next)).sqrt()
    return ab_next.sqrt() * x0 + (1.0 - ab_next - sigma**2).clamp(min=0).sqrt() * eps + sigma * noise


def strided_timesteps(t_start: int, stride: int) -> List[int]:
    """
    Timesteps ``t_start, t_start - stride, ..., 0``: ``t_start // stride`` moves.

    :raises ValueError: If ``stride`` is not positive or ``t_start`` is not a multiple of it (the process would not
                        start where asked).
    """
    if stride <= 0:
        raise ValueError(f"the stride must be positive, got {stride}.")
    if t_start % stride != 0:
        raise ValueError(f"t={t_start} is not a multiple of the stride {stride}; pick t a multiple of {stride}.")
    return list(range(t_start, -1, -stride))


def grid_timesteps(t_start: int, grid: int, num_train_timesteps: int = 1000) -> List[int]:
    """
    The papers' grids: :func:`strided_timesteps` with stride ``num_train_timesteps // grid``.

    :raises ValueError: If ``grid`` is outside ``[1, num_train_timesteps]`` or ``t_start`` is not on the grid.
    """
    if grid <= 0 or grid > num_train_timesteps:
        raise ValueError(f"grid must lie in [1, {num_train_timesteps}], got {grid}.")
    stride = num_train_timesteps // grid
    if t_start % stride != 0:
        raise ValueError(f"t={t_start} is not on a grid of {grid} (stride {stride}); pick t a multiple of {stride}.")
    return strided_timesteps(t_start, stride)


def ddim_denoise(
    model: torch.nn.Module, xt: torch.Tensor, timesteps: Sequence[int], schedule: DiffusionSchedule
) -> torch.Tensor:
    """Deterministic DDIM reverse over ``timesteps`` (decreasing, ending at 0), model space in and out."""
    for t, t_next in zip(timesteps[:-1], timesteps[1:]):
        xt = ddim_step(model, xt, t, t_next, schedule)
    return xt


@torch.no_grad()
def diffuse_and_denoise(  # pylint: disable=too-many-arguments
    model: torch.nn.Module,
    x: torch.Tensor,
    t_star: int = 100,
    steps: int = 10,
    schedule: Optional[DiffusionSchedule] = None,
    generator: Optional[torch.Generator] = None,
    batch_size: int = 256,
) -> torch.Tensor:
    """
    DiffPure-style round trip without gradients: diffuse ``x`` (in [0, 1]) to ``t_star`` and DDIM-denoise it back in
    ``steps`` equal strides (``t_star`` must be a multiple of ``steps``).

    :param generator: Source of the forward noise (on ``x``'s device); the global RNG is not used.
    :return: Purified images in [0, 1], same shape and dtype as ``x``.
    """
    if steps <= 0 or t_star % steps != 0:
        raise ValueError(f"steps must be a positive divisor of t_star={t_star}, got {steps}.")
    timesteps = strided_timesteps(t_star, t_star // steps)
    schedule = schedule or DiffusionSchedule()
    out = torch.empty_like(x)
    for i in range(0, x.shape[0], batch_size):
        xb = to_model_space(x[i : i + batch_size])
        noise = torch.randn(xb.shape, generator=generator, device=xb.device, dtype=xb.dtype)
        xt = diffuse(xb, t_star, schedule, noise)
        out[i : i + batch_size] = from_model_space(ddim_denoise(model, xt, timesteps, schedule), clamp=True)
    return out

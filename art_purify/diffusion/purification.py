# SPDX-License-Identifier: MIT
# Copyright (c) 2026 art_purify developers
"""Purification samplers: uniform (DiffPure-style) and heterogeneous (saliency-guided two-level noise).

Both work in model space ([-1, 1]), take every random draw from an explicit ``torch.Generator`` (or per-example
:class:`~art_purify.utils.KeyedStreams`, the fixed-noise mode of the defences), and are plain
differentiable torch code: with ``gradient_checkpointing=True`` each UNet call is wrapped in ``torch.utils.checkpoint``
so that
the memory of an exact backward pass does not grow with the number of steps (the noise of a step is drawn before
its checkpointed region and passed in, so recomputation sees the same values).

The noise model runs frozen (:func:`~art_purify.utils.frozen`: eval mode, no parameter gradients), during the
sampler and during the backward pass's recomputation alike, and gets its own modes and ``requires_grad`` flags back
afterwards: purifying neither changes a model that is still being trained nor sends gradients into its parameters.

Grids follow the papers' convention (:func:`~art_purify.diffusion.sampling.grid_timesteps`): a grid of ``K``
divides the ``T`` training steps into strides ``s = T // K``; a process starting at ``t`` visits ``t, t - s, ..., 0``
and makes one UNet call per move.
"""

from __future__ import annotations

import contextlib
from typing import Any, Callable, ContextManager

import torch
from torch.utils.checkpoint import checkpoint as _checkpoint

from art_purify.diffusion.sampling import ddim_step, diffuse, grid_timesteps
from art_purify.diffusion.schedule import DiffusionSchedule
from art_purify.utils import frozen, random_normal


def _randn_like(x: torch.Tensor, generator: Any) -> torch.Tensor:
    """Noise like ``x`` from a ``torch.Generator`` or per-example :class:`~art_purify.utils.KeyedStreams`."""
    return random_normal(x.shape, generator, x.device, x.dtype)


def _run(fn: Callable, block: ContextManager, gradient_checkpointing: bool, *args):
    """``fn(*args)``, checkpointed when asked and a graph is being built; the recomputation in the backward pass
    runs inside ``block`` (the sampler's :func:`~art_purify.utils.frozen` block, entered again), as the forward
    did."""
    if gradient_checkpointing and torch.is_grad_enabled() and any(a.requires_grad for a in args if torch.is_tensor(a)):

        def contexts():  # the forward runs inside the block already
            return contextlib.nullcontext(), block

        return _checkpoint(fn, *args, use_reentrant=False, context_fn=contexts)
    return fn(*args)


def uniform_purify(
    model: torch.nn.Module,
    xd: torch.Tensor,
    schedule: DiffusionSchedule,
    t_star: int,
    grid: int,
    generator: Any = None,
    eta: float = 0.0,
    gradient_checkpointing: bool = False,
) -> torch.Tensor:
    """
    DiffPure-style purification: diffuse ``xd`` to ``t_star``, reverse over the grid to 0.

    :param xd: Images in model space ``[-1, 1]``.
    :param eta: 0 for deterministic DDIM reverse steps, 1 for DDPM-like stochastic steps.
    :return: Purified images in model space (not clipped).
    """
    timesteps = grid_timesteps(t_star, grid, schedule.num_train_timesteps)
    xt = diffuse(xd, t_star, schedule, _randn_like(xd, generator))
    block = frozen(model)
    with block:
        for t, t_next in zip(timesteps[:-1], timesteps[1:]):
            z = _randn_like(xd, generator) if eta > 0 else None

            def step(x_in, z_in=None, t=t, t_next=t_next):
                return ddim_step(model, x_in, t, t_next, schedule, eta, z_in)

            args = (xt,) if z is None else (xt, z)
            xt = _run(step, block, gradient_checkpointing, *args)
    return xt


def heterogeneous_purify(
    model: torch.nn.Module,
    xd: torch.Tensor,
    mask: torch.Tensor,
    schedule: DiffusionSchedule,
    t_high: int,
    t_low: int,
    grid: int,
    jump: int,
    generator: Any = None,
    gradient_checkpointing: bool = False,
) -> torch.Tensor:
    """
    Heterogeneous purification (Divide and Conquer, CVPR 2025, arXiv 2503.01407), single-step resampling variant.

    Stage 1, from ``t_high`` down to ``t_low``: the whole image starts at ``t_high``; before each move the
    non-salient pixels (``mask == 0``) are re-anchored to the input diffused to the current level, so the salient
    region is inpainted from strong noise while the rest keeps low noise; the combined image then jumps forward
    ``jump`` steps in one Gaussian draw (``prod_{i=1..U} alpha_{t+i} = ab_{t+U} / ab_t``) and one DDIM move takes
    it from ``t + jump`` to the next grid point. Stage 2, below ``t_low``: plain DDIM on the whole image.

    :param xd: Images in model space ``[-1, 1]``.
    :param mask: ``(N, 1, H, W)`` (or broadcastable) with 1 on salient pixels (HIGH noise), 0 elsewhere; treated as
                 a constant (it should carry no gradient).
    :param jump: Resampling jump ``U`` (0 disables resampling).
    :return: Purified images in model space (not clipped).
    """
    timesteps = grid_timesteps(t_high, grid, schedule.num_train_timesteps)
    if t_low not in timesteps:
        raise ValueError(f"t_low={t_low} is not on the grid {timesteps[:3]}...; choose t_low a multiple of the stride.")
    if t_high + jump >= schedule.num_train_timesteps:
        raise ValueError(
            f"t_high + jump = {t_high + jump} exceeds the schedule's {schedule.num_train_timesteps} steps."
        )
    mask = mask.to(dtype=xd.dtype).detach()
    xt = diffuse(xd, t_high, schedule, _randn_like(xd, generator))
    block = frozen(model)
    with block:
        for t, t_next in zip(timesteps[:-1], timesteps[1:]):
            if t_next >= t_low:
                n_known = _randn_like(xd, generator)
                n_jump = _randn_like(xd, generator) if jump > 0 else None

                def stage1(x_in, x_ref, nk, nj=None, t=t, t_next=t_next):
                    x_in = mask * x_in + (1.0 - mask) * diffuse(x_ref, t, schedule, nk)
                    t_from = t
                    if nj is not None:
                        ratio = schedule.alpha_bar(t + jump, x_ref) / schedule.alpha_bar(t, x_ref)
                        x_in = ratio.sqrt() * x_in + (1.0 - ratio).sqrt() * nj
                        t_from = t + jump
                    return ddim_step(model, x_in, t_from, t_next, schedule)

                args = (xt, xd, n_known) if n_jump is None else (xt, xd, n_known, n_jump)
                xt = _run(stage1, block, gradient_checkpointing, *args)
            else:

                def stage2(x_in, t=t, t_next=t_next):
                    return ddim_step(model, x_in, t, t_next, schedule)

                xt = _run(stage2, block, gradient_checkpointing, xt)
    return xt

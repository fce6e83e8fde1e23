"""Building blocks of diffusion purification: conversions, the forward marginal, DDIM steps."""
from __future__ import annotations

from typing import List, Optional

import torch

from art_purify.diffusion.schedule import DiffusionSchedule


def to_model_space(x: torch.Tensor) -> torch.Tensor:
    """[0, 1] images (ART's side) to [-1, 1] (the diffusion model's side)."""
    return x * 2.0 - 1.0


def from_model_space(xd: torch.Tensor) -> torch.Tensor:
    """[-1, 1] model space back to [0, 1] images (not clipped)."""
    return (xd + 1.0) / 2.0


def predict_noise(model: torch.nn.Module, xt: torch.Tensor, t: int) -> torch.Tensor:
    """
    Call a noise model at integer timestep ``t``: a diffusers ``UNet2DModel`` (its ``.sample`` is taken) or any module
    mapping ``(x_t, t)`` with ``t`` a ``(N,)`` long tensor to predicted noise of ``x_t``'s shape.
    """
    timesteps = torch.full((xt.shape[0],), int(t), device=xt.device, dtype=torch.long)
    out = model(xt, timesteps)
    out = getattr(out, "sample", out)
    if out.shape != xt.shape:
        raise ValueError(f"noise model returned shape {tuple(out.shape)} for input {tuple(xt.shape)}.")
    return out


def diffuse(x0: torch.Tensor, t: int, schedule: DiffusionSchedule, noise: torch.Tensor) -> torch.Tensor:
    """Sample the forward marginal ``x_t = sqrt(ab_t) x_0 + sqrt(1 - ab_t) noise`` (model space)."""
    ab = schedule.alpha_bar(t, x0)
    return ab.sqrt() * x0 + (1.0 - ab).sqrt() * noise


def ddim_step(
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
    x0 = (xt - (1.0 - ab).sqrt() * eps) / ab.sqrt()
    if eta == 0.0:
        return ab_next.sqrt() * x0 + (1.0 - ab_next).sqrt() * eps
    if noise is None:
        raise ValueError("a stochastic step (eta > 0) needs noise.")
    sigma = eta * ((1.0 - ab_next) / (1.0 - ab) * (1.0 - ab / ab_next)).sqrt()
    return ab_next.sqrt() * x0 + (1.0 - ab_next - sigma**2).clamp(min=0).sqrt() * eps + sigma * noise


def ddim_grid(t_start: int, steps: int) -> List[int]:
    """``steps + 1`` decreasing integer timesteps from ``t_start`` to 0, evenly spaced (``steps`` model calls)."""
    if steps <= 0 or steps > t_start:
        raise ValueError(f"steps must lie in [1, t_start={t_start}], got {steps}.")
    return [round(t_start * (steps - k) / steps) for k in range(steps + 1)]


def ddim_denoise(
    model: torch.nn.Module, xt: torch.Tensor, t_start: int, steps: int, schedule: DiffusionSchedule
) -> torch.Tensor:
    """Deterministic DDIM reverse from ``t_start`` to 0 over :func:`ddim_grid` (model space in and out)."""
    grid = ddim_grid(t_start, steps)
    for t, t_next in zip(grid[:-1], grid[1:]):
        xt = ddim_step(model, xt, t, t_next, schedule)
    return xt


@torch.no_grad()
def diffuse_and_denoise(
    model: torch.nn.Module,
    x: torch.Tensor,
    t_star: int = 100,
    steps: int = 10,
    schedule: Optional[DiffusionSchedule] = None,
    generator: Optional[torch.Generator] = None,
    batch_size: int = 256,
) -> torch.Tensor:
    """
    DiffPure-style round trip without gradients: diffuse ``x`` (in [0, 1]) to ``t_star`` and DDIM-denoise it back.

    :param generator: Source of the forward noise (on ``x``'s device); the global RNG is not used.
    :return: Purified images in [0, 1], same shape and dtype as ``x``.
    """
    schedule = schedule or DiffusionSchedule()
    out = torch.empty_like(x)
    for i in range(0, x.shape[0], batch_size):
        xb = to_model_space(x[i : i + batch_size])
        noise = torch.randn(xb.shape, generator=generator, device=xb.device, dtype=xb.dtype)
        xt = diffuse(xb, t_star, schedule, noise)
        out[i : i + batch_size] = from_model_space(ddim_denoise(model, xt, t_star, steps, schedule)).clamp(0.0, 1.0)
    return out

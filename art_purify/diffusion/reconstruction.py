# SPDX-License-Identifier: MIT
# Copyright (c) 2026 art_purify developers
"""
The math of the deterministic reconstruction search (PurSAMERE, arXiv 2602.06269): a Tweedie denoiser from a DDPM
noise model, the expected reconstruction error (ERE) over fixed noise draws, one sharpness-aware (SAM) search step
and the projection onto the search ball. Model space is [-1, 1]; the search itself runs in the data's units.

One search step from ``z`` (per image; ``x`` is the input the search started from)::

    g  = grad ERE(z)                         e = rho * g / ||g||_2
    g2 = grad ERE(z + e)                     (rho = 0: g2 = g, plain ERE descent)
    z  = clip(project_{||z - x|| <= radius}(z - step_size * g2 / rms(g2)))

``rms(g2) = ||g2||_2 / sqrt(d)``: a normalised step moves a pixel by ``step_size`` on average, and, unlike a sign step,
keeps the Jacobian that an attacker differentiates.
"""

from __future__ import annotations

import contextlib
from typing import Any, Callable, Iterator, Tuple

import torch

from art_purify.diffusion.sampling import predict_noise, predict_x0
from art_purify.diffusion.schedule import DiffusionSchedule

#: Norms of the search ball.
NORMS = ("inf", "2")


class TweedieDenoiser(torch.nn.Module):
    """
    ``D(x_noisy, sigma) -> x_hat`` from a DDPM noise model by Tweedie's formula, in model space ([-1, 1]).

    ``x_noisy = x + sigma * eps`` is the variance-exploding view of the DDPM marginal at the timestep ``t`` whose
    ``sigma_t = sqrt((1 - ab_t) / ab_t)`` is nearest to ``sigma``: ``x_t = sqrt(ab_t) * x_noisy`` and
    ``D = (x_t - sqrt(1 - ab_t) eps_model(x_t, t)) / sqrt(ab_t)``. A DDPM's training loss is a weighted expected
    reconstruction error, so this is the denoiser the ERE objective asks for.

    :param unet: Noise model (diffusers ``UNet2DModel`` or a module mapping ``(x_t, t)`` to noise).
    :param scheduler: The diffusers scheduler it was trained with (default DDPM linear, T = 1000).
    """

    def __init__(self, unet: torch.nn.Module, scheduler: Any = None) -> None:
        super().__init__()
        self.unet = unet
        self.schedule = DiffusionSchedule(scheduler)

    def timestep(self, sigma: float) -> int:
        """The DDPM timestep used for ``sigma``."""
        return self.schedule.timestep_for_sigma(sigma)

    def effective_sigma(self, sigma: float) -> float:
        """The noise level actually matched: ``sigma_t`` of :meth:`timestep`."""
        return self.schedule.sigma(self.timestep(sigma))

    def forward(self, x_noisy: torch.Tensor, sigma: float) -> torch.Tensor:  # pylint: disable=arguments-differ
        """The denoised estimate of ``x_noisy`` (model space)."""
        t = self.timestep(sigma)
        xt = self.schedule.alpha_bar(t, x_noisy).sqrt() * x_noisy
        return predict_x0(xt, predict_noise(self.unet, xt, t), t, self.schedule)


def expected_reconstruction_error(
    denoiser: Callable[[torch.Tensor, float], torch.Tensor], u: torch.Tensor, noises: torch.Tensor, sigma: float
) -> torch.Tensor:
    """
    ``ERE(u) = mean_n || D(u + sigma * noise_n, sigma) - u ||^2`` per image, all draws in one denoiser call.

    :param u: ``(B, C, H, W)`` images in model space.
    :param noises: ``(N, C, H, W)`` fixed draws, the same for every image.
    :return: ``(B,)``.
    """
    n, b = noises.shape[0], u.shape[0]
    noisy = (u.unsqueeze(0) + sigma * noises.unsqueeze(1)).reshape(n * b, *u.shape[1:])
    recon = denoiser(noisy, sigma).reshape(n, b, *u.shape[1:])
    return (recon - u.unsqueeze(0)).pow(2).flatten(2).sum(2).mean(0)


def _per_image_norm(v: torch.Tensor) -> torch.Tensor:
    return v.flatten(1).norm(dim=1).view(-1, *([1] * (v.ndim - 1)))


def project(
    z: torch.Tensor, x: torch.Tensor, radius: float, norm: str, clip_values: Tuple[float, float]
) -> torch.Tensor:
    """``z`` projected onto the ``norm`` ball of ``radius`` around ``x`` (per image), then onto ``clip_values``."""
    delta = z - x
    if norm == "inf":
        delta = delta.clamp(-radius, radius)
    else:
        delta = delta * (radius / _per_image_norm(delta).clamp_min(1e-12)).clamp(max=1.0)
    return (x + delta).clamp(*clip_values)


def sam_search_step(  # pylint: disable=too-many-arguments
    ere: Callable[[torch.Tensor], torch.Tensor],
    z: torch.Tensor,
    x: torch.Tensor,
    rho: float,
    step_size: float,
    radius: float,
    norm: str,
    clip_values: Tuple[float, float],
    create_graph: bool,
) -> torch.Tensor:
    """
    One sharpness-aware search step (module docstring). ``ere`` maps ``(B, ...)`` images in the data's units to
    ``(B,)``. With ``create_graph`` the result is a twice-differentiable function of ``z`` and ``x`` (the attacker's
    exact gradient); otherwise it is detached.
    """
    with torch.enable_grad():  # ART calls forward under no_grad in predict
        if not create_graph:
            z = z.detach().requires_grad_(True)
        (g,) = torch.autograd.grad(ere(z).sum(), z, create_graph=create_graph)
        if rho > 0:
            w = z + rho * g / _per_image_norm(g).clamp_min(1e-12)
            if not create_graph:
                w = w.detach().requires_grad_(True)
            (g2,) = torch.autograd.grad(ere(w).sum(), w, create_graph=create_graph)
        else:
            g2 = g
        rms = _per_image_norm(g2) / float(g2[0].numel()) ** 0.5
        z_next = project(z - step_size * g2 / rms.clamp_min(1e-12), x, radius, norm, clip_values)
    return z_next if create_graph else z_next.detach()


@contextlib.contextmanager
def twice_differentiable_attention(module: torch.nn.Module) -> Iterator[None]:
    """
    Within the block, every diffusers ``Attention`` of ``module`` uses the classic processor, which autograd can
    differentiate twice (the fused scaled-dot-product kernels have no double backward); the processors are put back
    afterwards.
    """
    saved = []
    try:
        from diffusers.models.attention_processor import Attention, AttnProcessor
    except ImportError:  # pragma: no cover - diffusers is a dependency
        yield
        return
    try:
        for sub in module.modules():
            if isinstance(sub, Attention):
                saved.append((sub, sub.processor))
                sub.set_processor(AttnProcessor())
        yield
    finally:
        for sub, processor in saved:
            sub.set_processor(processor)


class _RecomputedStep(torch.autograd.Function):  # pylint: disable=abstract-method
    """One search step whose backward recomputes it (gradient checkpointing by hand): the forward keeps only the
    step's inputs; the backward rebuilds the step's second-order graph and takes the vector-Jacobian product."""

    @staticmethod
    def forward(ctx, z, x, step, context):  # pylint: disable=arguments-differ
        ctx.step, ctx.context = step, context
        ctx.save_for_backward(z, x)
        return step(z.detach(), x.detach(), False)  # first order only: the fused attention kernels will do

    @staticmethod
    def backward(ctx, grad_out):  # pylint: disable=arguments-differ
        z, x = ctx.saved_tensors
        with torch.enable_grad(), ctx.context():
            z_in, x_in = z.detach().requires_grad_(True), x.detach().requires_grad_(True)
            out = ctx.step(z_in, x_in, True)
            grad_z, grad_x = torch.autograd.grad(out, (z_in, x_in), grad_out, allow_unused=True)
        return grad_z, grad_x, None, None


def recomputed_step(
    step: Callable[[torch.Tensor, torch.Tensor, bool], torch.Tensor],
    z: torch.Tensor,
    x: torch.Tensor,
    context: Callable[[], Any] = contextlib.nullcontext,
) -> torch.Tensor:
    """
    ``step(z, x, create_graph)`` with its graph rebuilt in the backward pass, so that the memory of an unrolled
    search's gradient does not grow with the number of steps. First-order only (an attacker's gradient); ``context``
    is entered around the backward's recomputation, the one place that differentiates twice (e.g.
    :func:`twice_differentiable_attention`).
    """
    return _RecomputedStep.apply(z, x, step, context)


def fixed_noises(
    nb_noise: int, shape: Tuple[int, ...], seed: int, device: torch.device, dtype: torch.dtype
) -> torch.Tensor:
    """``(nb_noise, *shape)`` standard normal draws from a CPU ``torch.Generator`` seeded with ``seed`` (so CPU and
    CUDA get the same numbers; the global RNG is not used)."""
    generator = torch.Generator().manual_seed(int(seed))
    return torch.randn((nb_noise, *shape), generator=generator, dtype=torch.float64).to(device=device, dtype=dtype)

# SPDX-License-Identifier: MIT
# Copyright (c) 2026 art_purify developers
"""Training of the diffusers UNet as a DDPM noise predictor, on a restricted timestep range, with EMA weights."""

from __future__ import annotations

import copy
import logging
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Dict, Optional, Union

import numpy as np
import torch
import torch.nn.functional as F

from art_purify.diffusion import DiffusionSchedule, diffuse, predict_noise, to_model_space
from art_purify.models import DDPM_SCHEDULE, build_scheduler, build_unet, check_unet_fits, unet_config_for
from art_purify.engine.checkpoint import artefact_mode, write_json
from art_purify.engine.loop import CHECKPOINT_NAME, check_out_dir, cosine_lr, run_loop
from art_purify.utils import machine_description, resolve_device

logger = logging.getLogger(__name__)


@dataclass
class DiffusionTrainConfig:
    """
    Hyperparameters of :func:`train_diffusion`.

    ``t_max``: timesteps are drawn uniformly from ``[0, t_max)``. Purification only ever runs the model at
    ``t <= t_high + U`` (200 + 10 in the heterogeneous defence, 100 for DiffPure-style), so spending the whole
    capacity of a small model there denoises better than training on all 1000 steps. The model is not a generator.
    """

    steps: int = 5000
    batch_size: int = 64
    lr: float = 5e-4
    warmup_steps: int = 200
    weight_decay: float = 0.0
    ema_decay: float = 0.999
    t_max: int = 300
    seed: int = 0
    checkpoint_every: int = 250
    #: Random horizontal flips of the training images (off for digits, text and other data without mirror symmetry).
    hflip: bool = True

    def validate(self) -> None:
        for name in ("steps", "batch_size", "checkpoint_every", "t_max"):
            if int(getattr(self, name)) != getattr(self, name) or getattr(self, name) <= 0:
                raise ValueError(f"{name} must be a positive integer, got {getattr(self, name)!r}.")
        if self.t_max > DDPM_SCHEDULE["num_train_timesteps"]:
            raise ValueError(f"t_max must be at most {DDPM_SCHEDULE['num_train_timesteps']}, got {self.t_max}.")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ValueError(f"ema_decay must lie in [0, 1), got {self.ema_decay!r}.")
        if not self.lr > 0:
            raise ValueError(f"lr must be positive, got {self.lr!r}.")


def save_diffusers_dir(unet: torch.nn.Module, scheduler: Any, out_dir: Union[str, Path]) -> Path:
    """Write ``unet`` and ``scheduler`` in diffusers' pipeline layout (``unet/``, ``scheduler/``; safetensors only)
    under ``out_dir``; each sub-folder is written next to its final place and renamed into it, so a crash leaves the
    new sub-folder or the previous one (in the moment between the two renames, the previous one as ``.NAME-old``)."""
    import shutil
    import tempfile

    out_dir = Path(out_dir)
    for name, obj in (("unet", unet), ("scheduler", scheduler)):
        tmp = Path(tempfile.mkdtemp(dir=out_dir, prefix=f".{name}-"))
        save: Any = getattr(obj, "save_pretrained")
        try:
            os.chmod(tmp, artefact_mode(directory=True))  # mkdtemp makes it 0700
            if name == "unet":
                save(str(tmp), safe_serialization=True)
            else:
                save(str(tmp))
            old = out_dir / f".{name}-old"
            if (out_dir / name).exists():
                shutil.rmtree(old, ignore_errors=True)
                os.replace(out_dir / name, old)
            os.replace(tmp, out_dir / name)
            shutil.rmtree(old, ignore_errors=True)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return out_dir


def train_diffusion(  # pylint: disable=too-many-arguments,too-many-positional-arguments,too-many-locals
    x_train: np.ndarray,
    out_dir: Union[str, Path],
    config: Optional[DiffusionTrainConfig] = None,
    unet_config: Optional[Dict] = None,
    device: Optional[str] = None,
    resume: bool = False,
    stop_after: Optional[int] = None,
    command: Optional[str] = None,
    verbose: bool = True,
) -> Dict:
    """
    Train a :class:`diffusers.UNet2DModel` to predict DDPM noise and write a diffusers directory to ``out_dir``:
    ``unet/`` (``config.json`` and ``diffusion_pytorch_model.safetensors``, the EMA weights in float32) and
    ``scheduler/scheduler_config.json``, the layout of ``save_pretrained``, so that
    :func:`~art_purify.zoo.load_diffusion_dir` and ``UNet2DModel.from_pretrained(out_dir, subfolder="unet")`` both
    read it; ``model_card.json`` beside them.

    :param x_train: ``(N, C, H, W)`` float32 in [0, 1]; the model sees ``2x - 1``.
    :param stop_after: Stop after this many steps, as an interruption would (for tests).
    :return: The model card; ``{"interrupted_at": step}`` when stopped early.
    """
    config = config or DiffusionTrainConfig()
    config.validate()
    if x_train.ndim != 4:
        raise ValueError(f"x_train must be (N, C, H, W), got shape {x_train.shape}.")
    unet_config = dict(unet_config or unet_config_for(x_train.shape[1:]))
    out_dir = Path(out_dir)
    check_out_dir(out_dir, resume)
    dev = resolve_device(device)
    # diffusers initialises with the global RNG: fork it so that the caller's RNG state is left untouched.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        try:
            unet = build_unet(unet_config)
        except (TypeError, ValueError) as err:
            raise ValueError(f"the UNet configuration cannot build a diffusers UNet2DModel: {err}") from err
    check_unet_fits(unet, x_train.shape[1:], "the UNet configuration")
    unet.to(dev)
    ema = copy.deepcopy(unet).requires_grad_(False).eval()
    schedule = DiffusionSchedule(build_scheduler())
    optimizer = torch.optim.AdamW(unet.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    xt = torch.from_numpy(np.ascontiguousarray(x_train))

    def train_step(step: int, idx: torch.Tensor, gen: torch.Generator) -> float:
        unet.train()
        lr = cosine_lr(step, config.steps, config.lr, config.warmup_steps)
        for group in optimizer.param_groups:
            group["lr"] = lr
        x0 = to_model_space(xt[idx])
        if config.hflip:
            flips = torch.rand(len(idx), generator=gen) < 0.5
            x0[flips] = x0[flips].flip(-1)
        t = torch.randint(0, config.t_max, (len(idx),), generator=gen)
        noise = torch.randn(x0.shape, generator=gen)
        x0, t, noise = x0.to(dev), t.to(dev), noise.to(dev)
        loss = F.mse_loss(predict_noise(unet, diffuse(x0, t, schedule, noise), t), noise)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(unet.parameters(), 1.0)
        optimizer.step()
        with torch.no_grad():
            decay = min(config.ema_decay, (1.0 + step) / (10.0 + step))
            for p_ema, p in zip(ema.parameters(), unet.parameters()):
                p_ema.lerp_(p, 1.0 - decay)
        return float(loss.detach())

    def get_state() -> Dict:
        return {"model": unet.state_dict(), "ema": ema.state_dict(), "optimizer": optimizer.state_dict()}

    def set_state(state: Dict) -> None:
        unet.load_state_dict(state["model"])
        ema.load_state_dict(state["ema"])
        optimizer.load_state_dict(state["optimizer"])

    t0 = time.time()
    summary = run_loop(
        total_steps=config.steps,
        n_train=len(x_train),
        batch_size=config.batch_size,
        seed=config.seed,
        checkpoint_path=out_dir / CHECKPOINT_NAME,
        resume=resume,
        checkpoint_every=config.checkpoint_every,
        train_step=train_step,
        get_state=get_state,
        set_state=set_state,
        stop_after=stop_after,
        verbose=verbose,
        desc="train-diffusion",
        kind="train-diffusion",
        config={**asdict(config), "n_train": int(len(x_train)), "unet_config": unet_config},
        command=command,
    )
    if summary["steps_done"] < config.steps:
        return {"interrupted_at": summary["steps_done"]}
    save_diffusers_dir(ema, build_scheduler(), out_dir)
    card = {
        "model": "diffusers UNet2DModel, DDPM noise prediction (EMA weights, float32, diffusers layout)",
        "command": summary["commands"][0],
        "resumed": summary["commands"][1:],
        "train_config": asdict(config),
        "unet_config": unet_config,
        "schedule": dict(DDPM_SCHEDULE),
        "augmentation": {"hflip": config.hflip},
        "train_examples": int(len(x_train)),
        "parameters": sum(p.numel() for p in unet.parameters()),
        "metrics": {"final_train_loss_mean_last_100": summary["mean_loss_last_100"]},
        "wall_time_s": summary["wall_time_s"],
        "wall_time_this_session_s": time.time() - t0,
        "machine": machine_description(),
        "device": str(dev),
    }
    write_json(card, out_dir / "model_card.json")
    return card

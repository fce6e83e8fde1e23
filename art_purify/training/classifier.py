# SPDX-License-Identifier: MIT
# Copyright (c) 2026 art_purify developers
"""Training of the small ResNet classifier (SGD with Nesterov momentum, cosine schedule, crop + flip)."""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple, Union

import numpy as np
import torch
import torch.nn.functional as F

from art_purify.models import SmallResNet
from art_purify.engine.checkpoint import save_weights, write_json
from art_purify.engine.loop import CHECKPOINT_NAME, check_out_dir, cosine_lr, run_loop
from art_purify.utils import machine_description, resolve_device

logger = logging.getLogger(__name__)


@dataclass
class ClassifierTrainConfig:
    """Hyperparameters of :func:`train_classifier`."""

    epochs: int = 15
    batch_size: int = 128
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 5e-4
    warmup_steps: int = 200
    seed: int = 0
    checkpoint_every: int = 200
    widths: List[int] = field(default_factory=lambda: [16, 32, 64, 128])
    blocks: List[int] = field(default_factory=lambda: [1, 1, 1, 1])
    #: Random crop and flip (off: neither, whatever ``crop_pad`` and ``hflip`` say).
    augment: bool = True
    #: Random crop with this much zero padding on each side (0: no crop).
    crop_pad: int = 2
    #: Random horizontal flips (wrong for digits, text and other data without mirror symmetry).
    hflip: bool = True
    #: Fraction of training images shown as a diffuse-and-denoise copy (purification-aware training; 0 disables).
    diffusion_augment: float = 0.0
    #: Range of timesteps of those copies (one-step Tweedie denoising from ``t``, ``t`` uniform in the range).
    diffusion_t_min: int = 50
    diffusion_t_max: int = 200

    def validate(self) -> None:
        for name in ("epochs", "batch_size", "checkpoint_every"):
            if int(getattr(self, name)) != getattr(self, name) or getattr(self, name) <= 0:
                raise ValueError(f"{name} must be a positive integer, got {getattr(self, name)!r}.")
        if not self.lr > 0:
            raise ValueError(f"lr must be positive, got {self.lr!r}.")
        if isinstance(self.crop_pad, bool) or int(self.crop_pad) != self.crop_pad or self.crop_pad < 0:
            raise ValueError(f"crop_pad must be a non-negative integer, got {self.crop_pad!r}.")
        if not 0.0 <= self.diffusion_augment <= 1.0:
            raise ValueError(f"diffusion_augment must lie in [0, 1], got {self.diffusion_augment!r}.")
        if not 0 <= self.diffusion_t_min <= self.diffusion_t_max < 1000:
            raise ValueError("diffusion_t_min <= diffusion_t_max must lie in [0, 999].")


@torch.no_grad()
def denoised_copies(
    unet: torch.nn.Module,
    scheduler: Any,
    x: np.ndarray,
    t_min: int,
    t_max: int,
    seed: int,
    batch_size: int = 500,
    device: Optional[torch.device] = None,
    verbose: bool = True,
) -> np.ndarray:
    """
    One diffuse-and-denoise copy of every image: ``t`` uniform in ``[t_min, t_max]``, forward noise, then the
    one-step (Tweedie) estimate ``x0 = (x_t - sqrt(1 - ab_t) eps(x_t, t)) / sqrt(ab_t)``, clipped to [0, 1].
    Every draw comes from a ``torch.Generator`` seeded with ``seed``.
    """
    from tqdm.auto import tqdm

    from art_purify.diffusion import DiffusionSchedule, diffuse, from_model_space, predict_noise, predict_x0
    from art_purify.diffusion import to_model_space

    device = device or torch.device("cpu")
    schedule = DiffusionSchedule(scheduler)
    gen = torch.Generator().manual_seed(int(seed))
    out = np.empty_like(x)
    for i in tqdm(range(0, len(x), batch_size), desc="denoised copies", disable=not verbose):
        xb = to_model_space(torch.from_numpy(x[i : i + batch_size]))
        t = torch.randint(t_min, t_max + 1, (len(xb),), generator=gen)
        noise = torch.randn(xb.shape, generator=gen)
        xt = diffuse(xb, t, schedule, noise).to(device)
        x0 = predict_x0(xt, predict_noise(unet, xt, t), t, schedule)
        out[i : i + batch_size] = from_model_space(x0, clamp=True).cpu().numpy()
    return out


def augment_batch(x: torch.Tensor, generator: torch.Generator, pad: int = 2, hflip: bool = True) -> torch.Tensor:
    """Random crop (zero padding ``pad``; 0: none) and horizontal flip (unless ``hflip=False``), each image drawn from
    ``generator``; the same draws are taken whatever the options, so they change nothing else of a run."""
    n, _, h, w = x.shape
    offsets = torch.randint(0, 2 * pad + 1, (n, 2), generator=generator)
    flips = torch.rand(n, generator=generator) < 0.5
    padded = F.pad(x, (pad, pad, pad, pad))
    out = torch.empty_like(x)
    for i in range(n):
        dy, dx = int(offsets[i, 0]), int(offsets[i, 1])
        out[i] = padded[i, :, dy : dy + h, dx : dx + w]
    if hflip:
        out[flips] = out[flips].flip(-1)
    return out


@torch.no_grad()
def accuracy(
    model: torch.nn.Module, x: np.ndarray, y: np.ndarray, device: torch.device, batch_size: int = 500
) -> float:
    """Top-1 accuracy of ``model`` (put in eval mode) on numpy data."""
    model.eval()
    correct = 0
    for i in range(0, len(x), batch_size):
        xb = torch.from_numpy(x[i : i + batch_size]).to(device)
        correct += (model(xb).argmax(1).cpu() == torch.from_numpy(y[i : i + batch_size])).sum().item()
    return correct / len(x)


def train_classifier(
    x_train: np.ndarray,
    y_train: np.ndarray,
    out_dir: Union[str, Path],
    config: Optional[ClassifierTrainConfig] = None,
    x_test: Optional[np.ndarray] = None,
    y_test: Optional[np.ndarray] = None,
    device: Optional[str] = None,
    resume: bool = False,
    stop_after: Optional[int] = None,
    command: Optional[str] = None,
    verbose: bool = True,
    diffusion: Optional[Tuple[torch.nn.Module, Any]] = None,
) -> Dict:
    """
    Train :class:`~art_purify.models.SmallResNet` and write ``classifier.safetensors``, ``config.json`` and
    ``model_card.json`` to ``out_dir`` (plus ``checkpoint.pt`` every ``checkpoint_every`` steps).

    :param x_train: ``(N, C, H, W)`` float32 in [0, 1] (Fashion-MNIST: ``(N, 1, 28, 28)``).
    :param y_train: ``(N,)`` integer labels.
    :param stop_after: Stop after this many steps, as an interruption would (for tests); no artefacts are written.
    :param diffusion: ``(unet, scheduler)`` for purification-aware training (``config.diffusion_augment > 0``): a
                      fraction of each batch is replaced by denoised copies made once by :func:`denoised_copies` and
                      cached in ``out_dir/denoised_train.npy`` (so ``--resume`` reuses them).
    :return: The model card (a dict); ``{"interrupted_at": step}`` when stopped early.
    """
    config = config or ClassifierTrainConfig()
    config.validate()
    out_dir = Path(out_dir)
    check_out_dir(out_dir, resume)
    dev = resolve_device(device)
    init_gen = torch.Generator().manual_seed(config.seed)
    with torch.random.fork_rng(devices=[]):  # the modules' default init draws from the global RNG: isolate it
        model = SmallResNet(
            in_channels=x_train.shape[1], num_classes=int(y_train.max()) + 1, widths=config.widths, blocks=config.blocks
        )
    with torch.no_grad():  # seeded initialisation independent of the global RNG
        for module in model.modules():
            if isinstance(module, (torch.nn.Conv2d, torch.nn.Linear)):
                fan_in = module.weight[0].numel()
                module.weight.copy_(torch.randn(module.weight.shape, generator=init_gen) * (2.0 / fan_in) ** 0.5)
                if module.bias is not None:
                    module.bias.zero_()
    model.to(dev)
    decay = [p for n, p in model.named_parameters() if p.ndim > 1]
    no_decay = [p for n, p in model.named_parameters() if p.ndim <= 1]
    optimizer = torch.optim.SGD(
        [{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=config.lr,
        momentum=config.momentum,
        nesterov=True,
    )
    steps_per_epoch = len(x_train) // config.batch_size
    total = config.epochs * steps_per_epoch
    xt = torch.from_numpy(np.ascontiguousarray(x_train))
    yt = torch.from_numpy(np.asarray(y_train, dtype=np.int64))
    x_denoised = None
    if config.diffusion_augment > 0:
        if diffusion is None:
            raise ValueError("diffusion_augment > 0 needs a diffusion model: pass diffusion=(unet, scheduler).")
        cache = out_dir / "denoised_train.npy"
        if resume and cache.is_file():
            x_denoised = torch.from_numpy(np.load(cache))
        else:
            copies = denoised_copies(
                diffusion[0],
                diffusion[1],
                np.ascontiguousarray(x_train),
                config.diffusion_t_min,
                config.diffusion_t_max,
                seed=config.seed + 1,
                device=dev,
                verbose=verbose,
            )
            out_dir.mkdir(parents=True, exist_ok=True)
            np.save(cache, copies)
            x_denoised = torch.from_numpy(copies)

    def train_step(step: int, idx: torch.Tensor, gen: torch.Generator) -> float:
        model.train()
        lr = cosine_lr(step, total, config.lr, config.warmup_steps)
        for group in optimizer.param_groups:
            group["lr"] = lr
        xb = xt[idx]
        if x_denoised is not None:
            use = torch.rand(len(idx), generator=gen) < config.diffusion_augment
            xb = torch.where(use.view(-1, 1, 1, 1), x_denoised[idx], xb)
        if config.augment:
            xb = augment_batch(xb, gen, pad=config.crop_pad, hflip=config.hflip)
        loss = F.cross_entropy(model(xb.to(dev)), yt[idx].to(dev))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return float(loss.detach())

    def get_state() -> Dict:
        return {"model": model.state_dict(), "optimizer": optimizer.state_dict()}

    def set_state(state: Dict) -> None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])

    t0 = time.time()
    summary = run_loop(
        total_steps=total,
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
        desc="train-classifier",
        kind="train-classifier",
        config={**asdict(config), "n_train": int(len(x_train)), "diffusion": diffusion is not None},
        command=command,
    )
    if summary["steps_done"] < total:
        return {"interrupted_at": summary["steps_done"]}
    metrics = {"final_train_loss_mean_last_100": summary["mean_loss_last_100"]}
    if x_test is not None and y_test is not None:
        metrics["test_accuracy"] = accuracy(model, x_test, y_test, dev)
        metrics["test_examples"] = int(len(x_test))
    model.eval()
    save_weights(model.state_dict(), out_dir / "classifier.safetensors")
    write_json({"architecture": "SmallResNet", **model.config}, out_dir / "config.json")
    card = {
        "model": "SmallResNet classifier",
        "command": summary["commands"][0],
        "resumed": summary["commands"][1:],
        "train_config": asdict(config),
        "train_examples": int(len(x_train)),
        "steps": total,
        "metrics": metrics,
        "wall_time_s": summary["wall_time_s"],
        "wall_time_this_session_s": time.time() - t0,
        "machine": machine_description(),
        "device": str(dev),
    }
    write_json(card, out_dir / "model_card.json")
    logger.info("Classifier trained: %s", metrics)
    return card

# SPDX-License-Identifier: MIT
# Copyright (c) 2026 art_purify developers
"""Long-tailed training of the shipped classifier architecture with SGD, SAM, ImbSAM or SSE-SAM
(``art-purify train-long-tailed``)."""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional

import numpy as np
import torch

from art_purify.models import SmallResNet
from art_purify.engine.checkpoint import save_weights, write_json
from art_purify.engine.loop import check_out_dir
from art_purify.utils import machine_description, resolve_device

logger = logging.getLogger(__name__)

OPTIMIZERS = ("sgd", "sam", "imbsam", "ssesam")


@dataclass
class LongTailedTrainConfig:
    """Hyperparameters of :func:`train_long_tailed`. ``eta=None`` puts the tail threshold at 20 % of the largest
    class (CIFAR-100-LT's eta = 100 for a largest class of 500; 1,200 for Fashion-MNIST-LT)."""

    optimizer: str = "ssesam"
    epochs: int = 10
    batch_size: int = 128
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 5e-4
    imbalance_factor: float = 100.0
    rho: float = 0.05
    rho_head: float = 0.05
    rho_tail: float = 0.1
    gamma: float = 0.7
    eta: Optional[float] = None
    #: How grouped passes treat BatchNorm: "auto" (exact: whole-batch passes when the model has BatchNorm), "batch"
    #: or "group" (fast, each group normalised with its own statistics); see art_purify.optim.make_closure.
    batchnorm: str = "auto"
    seed: int = 0
    augment: bool = True
    widths: List[int] = field(default_factory=lambda: [16, 32, 64, 128])
    blocks: List[int] = field(default_factory=lambda: [1, 1, 1, 1])

    def validate(self) -> None:
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"unknown optimizer {self.optimizer!r}; choose one of {', '.join(OPTIMIZERS)}.")
        for name in ("epochs", "batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"{name} must be a positive integer, got {value!r}.")
        if not self.lr > 0:
            raise ValueError(f"lr must be positive, got {self.lr!r}.")
        if not self.imbalance_factor >= 1:
            raise ValueError(f"imbalance_factor must be >= 1, got {self.imbalance_factor!r}.")
        for name in ("rho", "rho_head", "rho_tail"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
                raise ValueError(f"{name} must be a non-negative number, got {value!r}.")
        if not 0.0 <= self.gamma <= 1.0:
            raise ValueError(f"gamma must lie in [0, 1], got {self.gamma!r}.")
        if self.eta is not None and not self.eta > 0:
            raise ValueError(f"eta must be positive, got {self.eta!r}.")


def build_optimizer(
    name: str, params: Any, config: LongTailedTrainConfig, class_counts: np.ndarray
) -> torch.optim.Optimizer:
    """The optimiser ``name`` over ``params``: every one steps with SGD (Nesterov momentum, weight decay)."""
    from art_purify.optim import SAM, SSESAM, ImbSAM

    sgd: Dict[str, Any] = dict(lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay, nesterov=True)
    eta = 0.2 * float(np.max(class_counts)) if config.eta is None else config.eta
    if name == "sgd":
        return torch.optim.SGD(params, **sgd)
    if name == "sam":
        return SAM(params, torch.optim.SGD, rho=config.rho, **sgd)
    if name == "imbsam":
        return ImbSAM(params, torch.optim.SGD, class_counts=class_counts, eta=eta, rho=config.rho_tail, **sgd)
    if name == "ssesam":
        return SSESAM(
            params,
            torch.optim.SGD,
            class_counts=class_counts,
            eta=eta,
            rho_head=config.rho_head,
            rho_tail=config.rho_tail,
            gamma=config.gamma,
            epochs=config.epochs,
            **sgd,
        )
    raise ValueError(f"unknown optimizer {name!r}; choose one of {', '.join(OPTIMIZERS)}.")


def train_long_tailed(
    x: np.ndarray,
    y: np.ndarray,
    out_dir: Path,
    config: LongTailedTrainConfig,
    x_test: Optional[np.ndarray] = None,
    y_test: Optional[np.ndarray] = None,
    device: Optional[str] = None,
    resume: bool = False,
    verbose: bool = True,
    command: Optional[str] = None,
    stop_after: Optional[int] = None,
) -> Dict:
    """
    Subsample ``(x, y)`` to a long-tailed set (``config.imbalance_factor``), train ``SmallResNet`` on it with the
    chosen optimiser through :class:`~art_purify.defences.trainer.SharpnessAwareTrainerPyTorch`, and write
    ``classifier.safetensors`` and ``model_card.json`` (per-epoch history, test accuracy overall / many / medium / few,
    class counts, the command, wall time, machine) to ``out_dir``; ``checkpoint.pt`` after every epoch.
    """
    from art_purify.datasets import long_tailed
    from art_purify.defences.trainer import SharpnessAwareTrainerPyTorch, shot_groups
    from art_purify.models import as_art_classifier
    from art_purify.training.classifier import augment_batch

    config.validate()
    out_dir = Path(out_dir)
    check_out_dir(out_dir, resume)
    out_dir.mkdir(parents=True, exist_ok=True)
    x_lt, y_lt, counts = long_tailed(x, y, imbalance_factor=config.imbalance_factor, seed=config.seed)
    dev = resolve_device(device)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        model = SmallResNet(in_channels=x.shape[1], num_classes=len(counts), widths=config.widths, blocks=config.blocks)
    classifier = as_art_classifier(model, input_shape=x.shape[1:], nb_classes=len(counts), device=dev)
    model.requires_grad_(True)
    optimizer = build_optimizer(config.optimizer, model.parameters(), config, counts)
    trainer = SharpnessAwareTrainerPyTorch(
        classifier,
        optimizer,
        class_counts=counts,
        scheduler="cosine",
        augment=augment_batch if config.augment else None,
        seed=config.seed,
        checkpoint_dir=out_dir,
        batchnorm=config.batchnorm,
        verbose=verbose,
    )
    t0 = time.time()
    history = trainer.fit(
        x_lt,
        y_lt,
        nb_epochs=config.epochs,
        batch_size=config.batch_size,
        resume=resume,
        stop_after=stop_after,
        run_config={**asdict(config), "n_train": int(len(x))},
        command=command,
        kind="train-long-tailed",
    )
    if len(history) < config.epochs:
        return {"interrupted_at": len(history)}
    model.requires_grad_(False)
    metrics: Dict = {
        "train_examples": int(len(y_lt)),
        "class_counts": counts.tolist(),
        "shot_groups": shot_groups(counts),
    }
    if hasattr(optimizer, "tail_classes"):
        metrics["tail_classes"] = optimizer.tail_classes
        metrics["eta"] = getattr(optimizer, "eta")
    if x_test is not None and y_test is not None:
        metrics["test"] = trainer.group_accuracy(x_test, y_test)
    card = {
        "config": asdict(config),
        "history": history,
        "metrics": metrics,
        "command": trainer.commands[0],
        "resumed": trainer.commands[1:],
        "wall_time_s": sum(h["time_s"] for h in history),
        "session_time_s": time.time() - t0,
        "machine": machine_description(),
        "torch": torch.__version__,
    }
    save_weights(model.state_dict(), out_dir / "classifier.safetensors")
    write_json(card, out_dir / "model_card.json")
    return card

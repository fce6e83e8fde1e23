# SPDX-License-Identifier: MIT
# Copyright (c) 2026 art_purify developers
"""Training of AToP's purifier for a classifier (``art-purify train-atop``): pre-training, then adversarial
fine-tuning, with per-epoch checkpoints, exact resume, safetensors export and a model card."""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple, Union

import numpy as np
import torch

from art_purify.defences.preprocessor.random_masking_pytorch import RT_PRESETS, RandomMaskingPyTorch
from art_purify.defences.trainer.adversarial_trainer_atop_pytorch import AdversarialTrainerAToPPyTorch
from art_purify.engine.checkpoint import has_checkpoint, load_latest_checkpoint, save_weights, write_json
from art_purify.engine.loop import CHECKPOINT_NAME, check_out_dir
from art_purify.models import InpaintingGenerator, PatchDiscriminator, as_art_classifier
from art_purify.utils import machine_description, resolve_device
from art_purify.zoo.user import classes_of

logger = logging.getLogger(__name__)

#: Attacks that can make the fine-tuning's adversarial examples (against the classifier alone).
TRAIN_ATTACKS = ("fgsm", "pgd")


@dataclass
class AToPTrainConfig:  # pylint: disable=too-many-instance-attributes
    """Hyperparameters of :func:`train_atop` (the paper's where they transfer; see docs/atop.md)."""

    pretrain_epochs: int = 2
    epochs: int = 6
    #: Fine-tuning sees the first this many training images per epoch (the paper's epochs are 5,000 images).
    finetune_examples: int = 10000
    batch_size: int = 64
    pretrain_lr: float = 1e-3
    lr: float = 1e-4
    betas: Tuple[float, float] = (0.5, 0.999)
    ce_weight: float = 0.05
    ce_start_epoch: int = 2
    l1_weight: float = 1.0
    gan_weight: float = 1.0
    attack: str = "fgsm"
    eps: float = 0.1
    pgd_iter: int = 10
    transform: str = "rt2"
    block_size: int = 4
    mask_fraction: float = 0.25
    width: int = 16
    dilations: List[int] = field(default_factory=lambda: [2, 4])
    discriminator_width: int = 16
    seed: int = 0

    def validate(self) -> None:
        for name in (
            "pretrain_epochs",
            "epochs",
            "finetune_examples",
            "batch_size",
            "width",
            "discriminator_width",
            "pgd_iter",
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or int(value) != value or value <= 0:
                raise ValueError(f"{name} must be a positive integer, got {value!r}.")
        for name in ("pretrain_lr", "lr", "eps"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)!r}.")
        if self.attack not in TRAIN_ATTACKS:
            raise ValueError(f"attack must be one of {TRAIN_ATTACKS}, got {self.attack!r}.")
        if self.transform not in RT_PRESETS:
            raise ValueError(f"transform must be one of {sorted(RT_PRESETS)}, got {self.transform!r}.")
        self.build_transform()  # checks block_size and mask_fraction

    def build_transform(self, clip_values: Tuple[float, float] = (0.0, 1.0)) -> RandomMaskingPyTorch:
        """The training transform."""
        return RandomMaskingPyTorch.preset(
            self.transform, block_size=self.block_size, mask_fraction=self.mask_fraction, clip_values=clip_values
        )


def build_atop_networks(
    config: AToPTrainConfig, in_channels: int = 1
) -> Tuple[InpaintingGenerator, PatchDiscriminator]:
    """Generator and discriminator initialised from ``config.seed`` alone (the global RNG is left as it was)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        generator = InpaintingGenerator(in_channels, config.width, config.dilations)
        discriminator = PatchDiscriminator(in_channels, config.discriminator_width)
    return generator, discriminator


def _attack(classifier: Any, config: AToPTrainConfig) -> Any:
    from art.attacks.evasion import FastGradientMethod, ProjectedGradientDescent

    if config.attack == "fgsm":
        return FastGradientMethod(classifier, norm=np.inf, eps=config.eps, batch_size=config.batch_size)
    return ProjectedGradientDescent(
        classifier,
        norm=np.inf,
        eps=config.eps,
        eps_step=2.5 * config.eps / config.pgd_iter,
        max_iter=config.pgd_iter,
        num_random_init=0,  # deterministic: exact resume, and the global numpy RNG is not used
        batch_size=config.batch_size,
        verbose=False,
    )


def _phase_done(out_dir: Path, phase: str) -> Optional[int]:
    """Steps a phase's checkpoint holds (``None`` without one; the previous one when the newest cannot be read)."""
    path = out_dir / phase / CHECKPOINT_NAME
    return int(load_latest_checkpoint(path)[0]["step"]) if has_checkpoint(path) else None


def train_atop(  # pylint: disable=too-many-arguments,too-many-locals
    x_train: np.ndarray,
    y_train: np.ndarray,
    out_dir: Union[str, Path],
    classifier_model: torch.nn.Module,
    config: Optional[AToPTrainConfig] = None,
    x_test: Optional[np.ndarray] = None,
    y_test: Optional[np.ndarray] = None,
    device: Optional[str] = None,
    resume: bool = False,
    stop_after: Optional[int] = None,
    command: Optional[str] = None,
    verbose: bool = True,
) -> Dict[str, Any]:
    """
    Pre-train and fine-tune an AToP purifier for ``classifier_model`` and export it.

    Writes ``out_dir/pretrain/checkpoint.pt`` and ``out_dir/finetune/checkpoint.pt`` (after every epoch),
    ``generator_pretrained.safetensors`` (the pre-trained-only purifier, for comparisons), ``generator.safetensors``
    (the fine-tuned one), ``config.json`` and ``model_card.json``.

    :param stop_after: Stop once this many epochs of the whole run (pre-training epochs first) are done, as an
                       interruption would; no artefacts are written then.
    :param resume: Continue the run in ``out_dir`` (a finished pre-training is not repeated).
    :return: The model card; ``{"interrupted_at_epoch": e}`` when stopped early.
    """
    config = config or AToPTrainConfig()
    config.validate()
    out_dir = Path(out_dir)
    check_out_dir(out_dir / "pretrain", resume)  # the run is known by its first phase's checkpoint
    dev = resolve_device(device)
    classifier_model = classifier_model.to(dev)
    nb_classes = classes_of(classifier_model, x_train, y_train, dev, origin="the training data")
    classifier = as_art_classifier(classifier_model, input_shape=x_train.shape[1:], nb_classes=nb_classes, device=dev)
    generator, discriminator = build_atop_networks(config, in_channels=int(x_train.shape[1]))
    trainer = AdversarialTrainerAToPPyTorch(
        classifier,
        generator,
        discriminator,
        transform=config.build_transform(),
        attack=_attack(classifier, config),
        eps=config.eps,
        ce_weight=config.ce_weight,
        ce_start_epoch=config.ce_start_epoch,
        l1_weight=config.l1_weight,
        gan_weight=config.gan_weight,
        lr=config.lr,
        betas=config.betas,
        batch_size=config.batch_size,
        seed=config.seed,
        checkpoint_dir=out_dir,
        verbose=verbose,
    )
    t0 = time.time()
    pre_left = None if stop_after is None else min(int(stop_after), config.pretrain_epochs)
    trainer.pretrain(
        x_train, config.pretrain_epochs, lr=config.pretrain_lr, resume=resume, stop_after=pre_left, command=command
    )
    steps_per_epoch = len(x_train) // config.batch_size
    if _phase_done(out_dir, "pretrain") != config.pretrain_epochs * steps_per_epoch:
        return {"interrupted_at_epoch": int(stop_after or 0)}
    save_weights(generator.state_dict(), out_dir / "generator_pretrained.safetensors")
    fine_left = None if stop_after is None else int(stop_after) - config.pretrain_epochs
    if fine_left is not None and fine_left <= 0:
        return {"interrupted_at_epoch": int(stop_after or 0)}
    fine_resume = resume and has_checkpoint(out_dir / "finetune" / CHECKPOINT_NAME)
    n_fine = min(config.finetune_examples, len(x_train))
    x_fine, y_fine = x_train[:n_fine], y_train[:n_fine]
    trainer.fit(x_fine, y_fine, config.epochs, resume=fine_resume, stop_after=fine_left, command=command)
    if _phase_done(out_dir, "finetune") != config.epochs * (n_fine // config.batch_size):
        return {"interrupted_at_epoch": int(stop_after or 0)}
    metrics: Dict[str, Any] = {}
    if x_test is not None and y_test is not None:
        purified = trainer.get_classifier(seed=config.seed)
        metrics["test_accuracy_purified"] = float((purified.predict(x_test).argmax(1) == y_test).mean())
        metrics["test_examples"] = int(len(x_test))
    save_weights(generator.state_dict(), out_dir / "generator.safetensors")
    write_json({"architecture": "InpaintingGenerator", **generator.config}, out_dir / "config.json")
    phases = {phase: load_latest_checkpoint(out_dir / phase / CHECKPOINT_NAME)[0] for phase in ("pretrain", "finetune")}
    commands = {phase: list(state.get("commands", [])) for phase, state in phases.items()}
    card = {
        "model": "AToP purifier (InpaintingGenerator)",
        "command": (commands["pretrain"] or [command])[0],
        "commands": commands,
        "wall_time_s": {phase: float(state.get("wall_time_s", 0.0)) for phase, state in phases.items()},
        "train_config": asdict(config),
        "transform": {
            k: getattr(trainer.transform, k) for k in ("block_size", "mask_fraction", "noise_std", "nb_masks")
        },
        "train_examples": int(len(x_train)),
        "history": trainer.history,
        "metrics": metrics,
        "wall_time_this_session_s": time.time() - t0,
        "machine": machine_description(),
        "device": str(dev),
    }
    write_json(card, out_dir / "model_card.json")
    logger.info("AToP purifier trained: %s", metrics)
    return card

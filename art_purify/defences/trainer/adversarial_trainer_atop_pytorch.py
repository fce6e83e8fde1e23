# SPDX-License-Identifier: MIT
# Copyright (c) 2026 art_purify developers
"""
AToP (adversarial training on purification) as an ART ``Trainer``: pre-train an inpainting purifier to restore
randomly transformed clean images, then fine-tune it so that the frozen classifier classifies its restorations of
adversarial images correctly.

| Paper link: https://arxiv.org/abs/2401.16352
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple, Union

import numpy as np
import torch
import torch.nn.functional as F
from art.defences.trainer.trainer import Trainer

from art_purify.defences.preprocessor.atop_purification_pytorch import AToPPurificationPyTorch, inpaint
from art_purify.defences.preprocessor.random_masking_pytorch import RandomMaskingPyTorch
from art_purify.diffusion.sampling import from_model_space, to_model_space
from art_purify.models.inpainting import hinge_discriminator_loss, hinge_generator_loss

logger = logging.getLogger(__name__)

#: The two phases, each with its own checkpoint directory under ``checkpoint_dir`` and its own checkpoint kind.
PHASES = ("pretrain", "finetune")


def _positive(value: Any, name: str, integer: bool = False) -> None:
    kinds = (int, np.integer) if integer else (int, float, np.integer, np.floating)
    if isinstance(value, bool) or not isinstance(value, kinds) or not value > 0:
        raise ValueError(f"{name} must be a positive {'integer' if integer else 'number'}, got {value!r}.")


class AdversarialTrainerAToPPyTorch(Trainer):
    """
    Train AToP's purifier for a frozen ART ``PyTorchClassifier``.

    - :meth:`pretrain`: the generator restores ``transform(x)`` to ``x`` on clean images, with the hinge GAN loss of
      the patch discriminator and L1 losses on the coarse and the refined output (``gan_weight``, ``l1_weight``).
    - :meth:`fit`: the same losses with the transform applied to adversarial examples ``x_adv`` (the L1 target stays
      the clean image: the purifier learns to restore ``x`` from ``transform(x_adv)``), plus
      ``ce_weight * CE(classifier(generator(transform(x_adv))), y)`` from epoch ``ce_start_epoch`` on (the paper:
      0.05 from the third epoch). ``x_adv`` is made by ``attack`` against the classifier ALONE (as in the paper;
      cheap), by default ART's FGSM with ``eps``; any ART evasion attack on this classifier may be given (for
      exact resume it must be deterministic, e.g. PGD with ``num_random_init=0``).

    Both phases use Adam (``lr``, ``betas``; the paper: 1e-4, (0.5, 0.999)) for generator and discriminator, fresh
    per phase; every random draw of a step (the transform) comes from ``step_generator(seed, step)`` and the data
    order from the seed, and each phase writes ``checkpoint_dir/<phase>/checkpoint.pt`` after every epoch, so that
    ``resume=True`` ends with the weights an uninterrupted run ends with. The classifier is never updated.

    :meth:`get_classifier` returns a new ART classifier around the same model with the purifier
    (:class:`~art_purify.defences.preprocessor.AToPPurificationPyTorch`) as its preprocessing defence.

    :param classifier: An ART ``PyTorchClassifier`` without preprocessing defences (its mean/std standardisation is
                       kept); frozen during training.
    :param generator: The purifier network (e.g. :class:`~art_purify.models.InpaintingGenerator`), trained in place.
    :param discriminator: The patch discriminator (e.g. :class:`~art_purify.models.PatchDiscriminator`), trained in
                          place.
    :param transform: The random transform used in training (default RT2, ``RandomMaskingPyTorch.preset("rt2")``).
    :param attack: The ART evasion attack making the training adversarial examples (default: FGSM, ``eps``).
    :param eps: l_inf budget of the default attack, in input units.
    :param ce_weight: Weight of the classification loss in :meth:`fit` (lambda).
    :param ce_start_epoch: First epoch (counted from 0) of :meth:`fit` with the classification loss.
    :param seed: Seed of the draws and the data order.
    :param checkpoint_dir: Where each phase writes its checkpoint (``None``: no checkpoints, no resume).
    """

    def __init__(  # pylint: disable=too-many-arguments,too-many-locals
        self,
        classifier: Any,
        generator: torch.nn.Module,
        discriminator: torch.nn.Module,
        transform: Optional[RandomMaskingPyTorch] = None,
        attack: Any = None,
        eps: float = 0.1,
        ce_weight: float = 0.05,
        ce_start_epoch: int = 2,
        l1_weight: float = 1.0,
        gan_weight: float = 1.0,
        lr: float = 1e-4,
        betas: Tuple[float, float] = (0.5, 0.999),
        batch_size: int = 64,
        seed: int = 0,
        checkpoint_dir: Optional[Union[str, Path]] = None,
        verbose: bool = True,
    ) -> None:
        super().__init__(classifier)
        from art.estimators.classification import PyTorchClassifier

        if not isinstance(classifier, PyTorchClassifier):
            raise TypeError(f"classifier must be an ART PyTorchClassifier, got {type(classifier).__name__}.")
        if classifier.preprocessing_defences:
            raise ValueError(
                "the classifier already has preprocessing defences: give the trainer the bare classifier (its "
                "purifier is attached by get_classifier)."
            )
        if classifier.clip_values is None:
            raise ValueError("the classifier needs clip_values (the purifier's input range).")
        for name, module in (("generator", generator), ("discriminator", discriminator)):
            if not isinstance(module, torch.nn.Module):
                raise TypeError(f"{name} must be a torch.nn.Module, got {type(module).__name__}.")
        transform = (
            RandomMaskingPyTorch.preset("rt2", clip_values=tuple(classifier.clip_values))
            if transform is None
            else transform
        )
        if not isinstance(transform, RandomMaskingPyTorch):
            raise TypeError(f"transform must be a RandomMaskingPyTorch, got {type(transform).__name__}.")
        if tuple(map(float, transform.clip_values)) != tuple(map(float, classifier.clip_values)):
            raise ValueError(
                f"the transform's clip_values {tuple(transform.clip_values)} differ from the classifier's "
                f"{tuple(classifier.clip_values)}."
            )
        for name, value in (("eps", eps), ("lr", lr), ("l1_weight", l1_weight)):
            _positive(value, name)
        _positive(batch_size, "batch_size", integer=True)
        for name, value in (("ce_weight", ce_weight), ("gan_weight", gan_weight)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise ValueError(f"{name} must be a non-negative number, got {value!r}.")
        if isinstance(ce_start_epoch, bool) or not isinstance(ce_start_epoch, int) or ce_start_epoch < 0:
            raise ValueError(f"ce_start_epoch must be a non-negative integer, got {ce_start_epoch!r}.")
        if len(betas) != 2 or not all(0.0 <= b < 1.0 for b in betas):
            raise ValueError(f"betas must be two numbers in [0, 1), got {betas!r}.")
        self.generator = generator.to(classifier.device)
        self.discriminator = discriminator.to(classifier.device)
        self.transform = transform
        self.eps = float(eps)
        self.attack = attack if attack is not None else self._default_attack(classifier, self.eps, batch_size)
        self.ce_weight = float(ce_weight)
        self.ce_start_epoch = int(ce_start_epoch)
        self.l1_weight = float(l1_weight)
        self.gan_weight = float(gan_weight)
        self.lr = float(lr)
        self.betas = (float(betas[0]), float(betas[1]))
        self.batch_size = int(batch_size)
        self.seed = int(seed)
        self.checkpoint_dir = None if checkpoint_dir is None else Path(checkpoint_dir)
        self.verbose = verbose
        #: One record per epoch of every phase run so far (phase, epoch, mean losses, time).
        self.history: List[Dict[str, Any]] = []
        #: The command of the first session of the last phase and of every resume.
        self.commands: List[Optional[str]] = []

    @staticmethod
    def _default_attack(classifier: Any, eps: float, batch_size: int) -> Any:
        from art.attacks.evasion import FastGradientMethod

        return FastGradientMethod(classifier, norm=np.inf, eps=eps, batch_size=batch_size)

    # ------------------------------------------------------------------ data and model helpers
    def _check_x(self, x: np.ndarray, y: Optional[np.ndarray]) -> Tuple[np.ndarray, Optional[np.ndarray]]:
        classifier = self._classifier
        x = np.asarray(x)
        if x.ndim == 0 or len(x) == 0:
            raise ValueError("x is empty.")
        if not np.issubdtype(x.dtype, np.floating) or not np.isfinite(x).all():
            raise ValueError("x must be finite floating-point images.")
        if tuple(x.shape[1:]) != tuple(classifier.input_shape):
            raise ValueError(f"x has shape {x.shape[1:]} per image, the classifier expects {classifier.input_shape}.")
        lo, hi = map(float, classifier.clip_values)
        if x.min() < lo - 1e-5 * (hi - lo) or x.max() > hi + 1e-5 * (hi - lo):
            raise ValueError(f"x lies in [{x.min():.4g}, {x.max():.4g}], outside clip_values [{lo}, {hi}].")
        if y is not None:
            y = np.asarray(y)
            if y.ndim == 2 and y.shape[1] == classifier.nb_classes:
                y = y.argmax(1)
            if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer) or len(y) != len(x):
                raise ValueError(f"y must hold one integer label (or one-hot row) per image, got shape {y.shape}.")
            if y.min() < 0 or y.max() >= classifier.nb_classes:
                raise ValueError(f"labels must lie in [0, {classifier.nb_classes}).")
        return x.astype(np.float32, copy=False), y

    def _channels_first(self, x: torch.Tensor) -> torch.Tensor:
        return x if self._classifier.channels_first else x.permute(0, 3, 1, 2)

    def _logits(self, x_cf: torch.Tensor) -> torch.Tensor:
        """The frozen classifier's logits of channels-first images, differentiable in the images."""
        classifier = self._classifier
        x_in = x_cf if classifier.channels_first else x_cf.permute(0, 2, 3, 1)
        x_pre, _ = classifier._apply_preprocessing(  # pylint: disable=protected-access
            x_in, y=None, fit=False, no_grad=False  # ART detaches by default: the CE term would train nothing
        )
        return classifier.model(x_pre)

    def get_purifier(self, transform: Optional[RandomMaskingPyTorch] = None, **kwargs: Any) -> AToPPurificationPyTorch:
        """The trained purifier (the trainer's generator, frozen) with ``transform`` (default: the training one)."""
        return AToPPurificationPyTorch(
            self.generator,
            transform or self.transform,
            channels_first=self._classifier.channels_first,
            device_type="gpu" if self._classifier.device.type == "cuda" else "cpu",
            **kwargs,
        )

    def get_classifier(self, transform: Optional[RandomMaskingPyTorch] = None, **kwargs: Any) -> Any:
        """
        A new ART classifier around the same (frozen) model with the purifier as its preprocessing defence.

        :param transform: The purifier's transform (default: the training one; AToP evaluates with RT3 too).
        :param kwargs: More arguments of :class:`~art_purify.defences.preprocessor.AToPPurificationPyTorch`
                       (``nb_eot``, ``seed``, ``batch_size``).
        """
        from art.estimators.classification import PyTorchClassifier

        classifier = self._classifier
        standardise = classifier.preprocessing
        return PyTorchClassifier(
            model=classifier.model,
            loss=classifier._loss,  # pylint: disable=protected-access
            input_shape=classifier.input_shape,
            nb_classes=classifier.nb_classes,
            clip_values=classifier.clip_values,
            channels_first=classifier.channels_first,
            preprocessing=(standardise.mean, standardise.std) if standardise is not None else None,
            preprocessing_defences=[self.get_purifier(transform, **kwargs)],
            device_type="gpu" if classifier.device.type == "cuda" else "cpu",
        )

    # ------------------------------------------------------------------ training
    def pretrain(
        self,
        x: np.ndarray,
        nb_epochs: int = 2,
        lr: Optional[float] = None,
        resume: bool = False,
        stop_after: Optional[int] = None,
        command: Optional[str] = None,
    ) -> List[Dict[str, Any]]:
        """
        Pre-train the purifier on clean images: GAN + L1 reconstruction of ``x`` from ``transform(x)``.

        :param lr: Adam's learning rate in this phase (default: the trainer's ``lr``; a network trained from
                   scratch on a small budget wants a larger one than the paper's fine-tuning rate).
        :param resume: Continue from ``checkpoint_dir/pretrain/checkpoint.pt``.
        :param stop_after: Stop once this many epochs are done (after checkpointing), as an interruption would.
        :return: This phase's per-epoch records (also appended to :attr:`history`).
        """
        x, _ = self._check_x(x, None)
        return self._phase("pretrain", x, None, nb_epochs, lr, resume, stop_after, command)

    def fit(  # pylint: disable=arguments-differ,too-many-arguments
        self,
        x: np.ndarray,
        y: np.ndarray,
        nb_epochs: int = 4,
        lr: Optional[float] = None,
        resume: bool = False,
        stop_after: Optional[int] = None,
        command: Optional[str] = None,
        **kwargs: Any,
    ) -> List[Dict[str, Any]]:
        """
        Fine-tune the purifier with the adversarial loss (see the class docstring).

        :param y: Integer labels or one-hot rows.
        :param lr: Adam's learning rate in this phase (default: the trainer's ``lr``).
        :param resume: Continue from ``checkpoint_dir/finetune/checkpoint.pt``.
        :param stop_after: Stop once this many epochs are done (after checkpointing), as an interruption would.
        :return: This phase's per-epoch records (also appended to :attr:`history`).
        """
        x, labels = self._check_x(x, y)
        return self._phase("finetune", x, labels, nb_epochs, lr, resume, stop_after, command)

    def _phase(  # pylint: disable=too-many-arguments,too-many-locals,too-many-statements
        self,
        phase: str,
        x: np.ndarray,
        y: Optional[np.ndarray],
        nb_epochs: int,
        lr: Optional[float],
        resume: bool,
        stop_after: Optional[int],
        command: Optional[str],
    ) -> List[Dict[str, Any]]:
        from art_purify.engine.loop import CHECKPOINT_NAME, run_loop

        _positive(nb_epochs, "nb_epochs", integer=True)
        lr = self.lr if lr is None else lr
        _positive(lr, "lr")
        if stop_after is not None:
            _positive(stop_after, "stop_after", integer=True)
        if self.batch_size > len(x):
            raise ValueError(f"batch_size={self.batch_size} is larger than the {len(x)} training examples.")
        classifier, generator, discriminator = self._classifier, self.generator, self.discriminator
        device = classifier.device
        clip = (float(classifier.clip_values[0]), float(classifier.clip_values[1]))
        opt_g = torch.optim.Adam(generator.parameters(), lr=lr, betas=self.betas)
        opt_d = torch.optim.Adam(discriminator.parameters(), lr=lr, betas=self.betas)
        steps = len(x) // self.batch_size
        records: List[Dict[str, Any]] = []
        sums: Dict[str, float] = {}
        clock = {"t0": time.time()}
        y_t = None if y is None else torch.as_tensor(y, dtype=torch.long)
        one_hot = np.eye(classifier.nb_classes, dtype=np.float32)

        def train_step(step: int, idx: torch.Tensor, draws: torch.Generator) -> float:
            epoch = step // steps
            if step % steps == 0:
                sums.clear()
                clock["t0"] = time.time()
            idx_np = idx.numpy()
            clean = torch.as_tensor(x[idx_np], device=device)
            if y_t is None:
                source = clean
            else:
                labels = one_hot[y_t[idx].numpy()]
                source = torch.as_tensor(self.attack.generate(x=x[idx_np], y=labels), device=device)
            clean_cf, source_cf = self._channels_first(clean), self._channels_first(source).to(clean.dtype)
            transformed, masks = self.transform.sample(source_cf, draws)
            k = transformed.shape[0]
            masks = masks.flatten(0, 1)
            target = to_model_space(clean_cf, clip).repeat(k, 1, 1, 1)
            generator.train()
            discriminator.train()
            coarse, refined = inpaint(generator, to_model_space(transformed.flatten(0, 1), clip), masks)
            # the discriminator's step, on the refined output (the purified image) against the clean image
            d_loss = hinge_discriminator_loss(discriminator(target, masks), discriminator(refined.detach(), masks))
            opt_d.zero_grad(set_to_none=True)
            d_loss.backward()
            opt_d.step()
            # the generator's step
            gan = hinge_generator_loss(discriminator(refined, masks))
            l1 = (coarse - target).abs().mean() + (refined - target).abs().mean()
            loss = self.gan_weight * gan + self.l1_weight * l1
            ce = torch.zeros((), device=device)
            if y_t is not None and epoch >= self.ce_start_epoch and self.ce_weight > 0:
                purified = from_model_space(refined, clip, clamp=True)
                ce = F.cross_entropy(self._logits(purified), y_t[idx].to(device).repeat(k))
                loss = loss + self.ce_weight * ce
            opt_g.zero_grad(set_to_none=True)
            loss.backward()
            opt_g.step()
            for name, value in (("d_loss", d_loss), ("g_gan", gan), ("l1", l1), ("ce", ce), ("loss", loss)):
                sums[name] = sums.get(name, 0.0) + float(value.detach())
            return float(loss.detach())

        def after_step(done: int) -> None:
            if done % steps:
                return
            record: Dict[str, Any] = {"phase": phase, "epoch": done // steps - 1}
            record.update({name: total / steps for name, total in sums.items()})
            record["ce_on"] = bool(y is not None and record["epoch"] >= self.ce_start_epoch and self.ce_weight > 0)
            record["time_s"] = time.time() - clock["t0"]
            records.append(record)
            logger.info("%s epoch %d: %s", phase, record["epoch"], record)

        def get_state() -> Dict[str, Any]:
            return {
                "model": {"generator": generator.state_dict(), "discriminator": discriminator.state_dict()},
                "optimizer": {"generator": opt_g.state_dict(), "discriminator": opt_d.state_dict()},
                "history": list(records),
            }

        def set_state(state: Dict[str, Any]) -> None:
            generator.load_state_dict(state["model"]["generator"])
            discriminator.load_state_dict(state["model"]["discriminator"])
            opt_g.load_state_dict(state["optimizer"]["generator"])
            opt_d.load_state_dict(state["optimizer"]["discriminator"])
            records[:] = list(state["history"])

        ckpt = None if self.checkpoint_dir is None else self.checkpoint_dir / phase / CHECKPOINT_NAME
        model = classifier.model
        frozen = [p.requires_grad for p in model.parameters()]
        was_training = model.training
        model.eval().requires_grad_(False)
        generator.requires_grad_(True)
        discriminator.requires_grad_(True)
        try:
            summary = run_loop(
                total_steps=nb_epochs * steps,
                n_train=len(x),
                batch_size=self.batch_size,
                seed=self.seed + PHASES.index(phase),
                checkpoint_path=ckpt,
                resume=resume,
                checkpoint_every=steps,
                train_step=train_step,
                get_state=get_state,
                set_state=set_state,
                after_step=after_step,
                stop_after=None if stop_after is None else int(stop_after) * steps,
                verbose=self.verbose,
                desc=f"AToP {phase}",
                kind=f"atop-{phase}",
                config=self._run_config(phase, nb_epochs, len(x), lr),
                command=command,
            )
        finally:
            for p, flag in zip(model.parameters(), frozen):
                p.requires_grad_(flag)
            model.train(was_training)
            generator.eval().requires_grad_(False)
            discriminator.eval().requires_grad_(False)
        self.commands = summary["commands"]
        self.history.extend(records)
        return records

    def _run_config(self, phase: str, nb_epochs: int, n: int, lr: float) -> Dict[str, Any]:
        """Every setting that decides a phase's run (a resume with another value is refused)."""
        transform = {
            name: getattr(self.transform, name) for name in ("block_size", "mask_fraction", "noise_std", "nb_masks")
        }
        config: Dict[str, Any] = {
            "phase": phase,
            "nb_epochs": nb_epochs,
            "batch_size": self.batch_size,
            "seed": self.seed,
            "n_examples": int(n),
            "lr": float(lr),
            "betas": list(self.betas),
            "l1_weight": self.l1_weight,
            "gan_weight": self.gan_weight,
            "transform": transform,
            "generator": getattr(self.generator, "config", type(self.generator).__name__),
            "discriminator": getattr(self.discriminator, "config", type(self.discriminator).__name__),
        }
        if phase == "finetune":
            config.update(
                ce_weight=self.ce_weight,
                ce_start_epoch=self.ce_start_epoch,
                attack={"class": type(self.attack).__name__, "eps": getattr(self.attack, "eps", None)},
            )
        return config

# SPDX-License-Identifier: MIT
# Copyright (c) 2026 art_purify developers
"""
An ART ``Trainer`` that fits a ``PyTorchClassifier`` with SAM, ImbSAM, SSE-SAM or any plain torch optimiser, on
(possibly long-tailed) data, with per-group accuracy.

ART's ``PyTorchClassifier.fit`` calls ``optimizer.step()`` without a closure, which a sharpness-aware optimiser
cannot use; this trainer supplies the closure (and the batch labels that ImbSAM and SSE-SAM split by).
"""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from art.defences.trainer.trainer import Trainer

from art_purify.optim.sam import SAM, SSESAM, make_closure

logger = logging.getLogger(__name__)


def steps_of(n: int, batch_size: int) -> int:
    """Batches per epoch (the last incomplete batch is dropped)."""
    return n // batch_size


def shot_groups(
    class_counts: Union[Sequence[int], np.ndarray], many_shot: Optional[float] = None, few_shot: Optional[float] = None
) -> Dict[str, List[int]]:
    """
    Classes by training count: ``many`` (count > ``many_shot``), ``few`` (count < ``few_shot``), ``medium`` (the
    rest). Defaults: 20 % and 4 % of the largest class, which are the usual 100 and 20 samples of CIFAR-LT (largest
    class 500); for Fashion-MNIST-LT (largest class 6,000) they are 1,200 and 240.
    """
    counts = np.asarray(class_counts)
    many_shot = 0.2 * counts.max() if many_shot is None else float(many_shot)
    few_shot = 0.04 * counts.max() if few_shot is None else float(few_shot)
    if few_shot > many_shot:
        raise ValueError(f"few_shot ({few_shot}) must not exceed many_shot ({many_shot}).")
    return {
        "many": np.flatnonzero(counts > many_shot).tolist(),
        "medium": np.flatnonzero((counts <= many_shot) & (counts >= few_shot)).tolist(),
        "few": np.flatnonzero(counts < few_shot).tolist(),
    }


class SharpnessAwareTrainerPyTorch(Trainer):
    """
    Fit an ART ``PyTorchClassifier`` with a sharpness-aware optimiser (:class:`~art_purify.optim.SAM`,
    :class:`~art_purify.optim.ImbSAM`, :class:`~art_purify.optim.SSESAM`) or a plain torch optimiser.

    :param classifier: The ART classifier; its model is trained in place with the classifier's loss.
    :param optimizer: An optimiser over ``classifier.model.parameters()``.
    :param class_counts: Training samples per class, for the per-group accuracy (many / medium / few shot, see
                         :func:`shot_groups`); by default counted from the labels given to :meth:`fit`.
    :param scheduler: ``"cosine"`` (per-epoch cosine decay of every group's initial learning rate to 0), ``None``
                      (constant), or a torch LR scheduler stepped once per epoch.
    :param augment: Optional ``augment(x, generator) -> x`` applied to every training batch.
    :param seed: Seed of the data order (epoch ``e`` uses ``step_generator(seed, -1 - e)``) and of ``augment``.
    :param batchnorm: ``"auto"``, ``"batch"`` or ``"group"``: how the grouped passes treat BatchNorm (see
                      :func:`art_purify.optim.make_closure`; ``"auto"`` is exact for every model).
    :param checkpoint_dir: Where to write ``checkpoint.pt`` after every epoch (atomic); ``fit(resume=True)`` continues
                           from it and ends where an uninterrupted run would.
    """

    def __init__(
        self,
        classifier: Any,
        optimizer: torch.optim.Optimizer,
        class_counts: Optional[Union[Sequence[int], np.ndarray]] = None,
        scheduler: Any = "cosine",
        augment: Optional[Callable[[torch.Tensor, torch.Generator], torch.Tensor]] = None,
        seed: int = 0,
        checkpoint_dir: Optional[Union[str, Path]] = None,
        many_shot: Optional[float] = None,
        few_shot: Optional[float] = None,
        batchnorm: str = "auto",
        verbose: bool = True,
    ) -> None:
        super().__init__(classifier)
        if not isinstance(optimizer, torch.optim.Optimizer):
            raise ValueError(f"optimizer must be a torch.optim.Optimizer, got {type(optimizer).__name__}.")
        model_params = {id(p) for p in classifier.model.parameters()}
        if not any(id(p) in model_params for g in optimizer.param_groups for p in g["params"]):
            raise ValueError("the optimiser holds none of the classifier model's parameters.")
        if not (scheduler is None or scheduler == "cosine" or hasattr(scheduler, "step")):
            raise ValueError(f"scheduler must be 'cosine', None or a torch LR scheduler, got {scheduler!r}.")
        if class_counts is not None and len(class_counts) != classifier.nb_classes:
            raise ValueError(
                f"class_counts has {len(class_counts)} entries but the classifier has "
                f"{classifier.nb_classes} classes."
            )
        from art_purify.optim.sam import BATCHNORM_MODES

        if batchnorm not in BATCHNORM_MODES:
            raise ValueError(f"batchnorm must be one of {BATCHNORM_MODES}, got {batchnorm!r}.")
        self.batchnorm = batchnorm
        self.optimizer = optimizer
        self.class_counts = None if class_counts is None else np.asarray(class_counts, dtype=np.int64)
        self.scheduler = scheduler
        self.augment = augment
        self.seed = int(seed)
        self.checkpoint_dir = None if checkpoint_dir is None else Path(checkpoint_dir)
        self.many_shot, self.few_shot = many_shot, few_shot
        self.verbose = verbose
        self.history: List[Dict] = []
        #: The command of the first session of the last fit and of every resume.
        self.commands: List[Optional[str]] = []
        self._base_lrs = [g["lr"] for g in optimizer.param_groups]

    # ------------------------------------------------------------------ helpers
    def _check_data(self, x: np.ndarray, y: np.ndarray, name: str) -> Tuple[np.ndarray, np.ndarray]:
        x = np.asarray(x)
        if len(x) == 0:
            raise ValueError(f"{name} is empty.")
        if not np.issubdtype(x.dtype, np.floating) or not np.isfinite(x).all():
            raise ValueError(f"{name} must be finite floating-point inputs.")
        if tuple(x.shape[1:]) != tuple(self._classifier.input_shape):
            raise ValueError(
                f"{name} has shape {x.shape[1:]} per example, the classifier expects "
                f"{self._classifier.input_shape}."
            )
        y = np.asarray(y)
        if y.ndim == 2 and y.shape[1] == self._classifier.nb_classes:
            y = y.argmax(1)  # one-hot labels
        if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
            raise ValueError(f"labels of {name} must be integer class indices or one-hot rows, got shape {y.shape}.")
        if y.min() < 0 or y.max() >= self._classifier.nb_classes:
            raise ValueError(f"labels of {name} must lie in [0, {self._classifier.nb_classes}).")
        if len(y) != len(x):
            raise ValueError(f"{name} has {len(x)} examples but {len(y)} labels.")
        return x, y

    def _set_epoch_lr(self, epoch: int, nb_epochs: int) -> None:
        if self.scheduler == "cosine":
            factor = 0.5 * (1.0 + math.cos(math.pi * epoch / nb_epochs))
            for group, base in zip(self.optimizer.param_groups, self._base_lrs):
                group["lr"] = base * factor

    def _state(self) -> Dict:
        state = {
            "model": self._classifier.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "history": self.history,
        }
        if self.scheduler is not None and self.scheduler != "cosine":
            state["scheduler"] = self.scheduler.state_dict()
        return state

    def _set_state(self, state: Dict) -> None:
        self._classifier.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if "scheduler" in state:
            self.scheduler.load_state_dict(state["scheduler"])
        self.history = list(state["history"])

    # ------------------------------------------------------------------ training
    def fit(
        self,
        x: np.ndarray,
        y: np.ndarray,
        nb_epochs: int = 20,
        batch_size: int = 128,
        validation_data: Optional[Tuple[np.ndarray, np.ndarray]] = None,
        resume: bool = False,
        stop_after: Optional[int] = None,
        run_config: Optional[Dict[str, Any]] = None,
        command: Optional[str] = None,
        kind: Optional[str] = None,
        **kwargs: Any,
    ) -> List[Dict]:
        """
        Train for ``nb_epochs`` epochs (the last incomplete batch of an epoch is dropped).

        :param y: Integer labels or one-hot labels.
        :param validation_data: ``(x_val, y_val)`` evaluated after every epoch (overall and per-group accuracy).
        :param resume: Continue from ``checkpoint_dir/checkpoint.pt``.
        :param stop_after: Stop once this many epochs are done (after checkpointing), as an interruption would.
        :param run_config: More settings that decide the run (JSON values), kept in the checkpoint with
                           ``nb_epochs``, ``batch_size``, ``seed`` and ``n_examples``: ``resume=True`` with any of
                           them changed is refused, naming each one.
        :param command: The command line of this session (kept with those of earlier sessions in
                        :attr:`commands`).
        :param kind: What the checkpoint says wrote it (default: this class's name); a resume by another is refused.
        :return: One dict per epoch: train loss, learning rate, phase (SSE-SAM), time, validation accuracies.
        """
        from art_purify.engine.loop import CHECKPOINT_NAME

        if isinstance(nb_epochs, bool) or not isinstance(nb_epochs, int) or nb_epochs <= 0:
            raise ValueError(f"nb_epochs must be a positive integer, got {nb_epochs!r}.")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size <= 0:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}.")
        x, y = self._check_data(x, y, "x")
        if batch_size > len(x):
            raise ValueError(f"batch_size={batch_size} is larger than the {len(x)} training examples.")
        if validation_data is not None:
            validation_data = self._check_data(*validation_data, name="validation data")
        if isinstance(self.optimizer, SSESAM) and self.optimizer.param_groups[0]["epochs"] != nb_epochs:
            raise ValueError(
                f"the SSESAM optimiser was built for epochs={self.optimizer.param_groups[0]['epochs']} "
                f"but fit runs {nb_epochs}: its phase switch would fall at the wrong epoch."
            )
        if self.class_counts is None:
            self.class_counts = np.bincount(y, minlength=self._classifier.nb_classes)
        ckpt = None if self.checkpoint_dir is None else self.checkpoint_dir / CHECKPOINT_NAME

        classifier = self._classifier
        model = classifier.model
        x_pre, _ = classifier._apply_preprocessing(x, y=None, fit=True)  # pylint: disable=protected-access
        x_t = torch.as_tensor(np.asarray(x_pre, dtype=np.float32))
        y_t = torch.as_tensor(y, dtype=torch.long)
        trained = [p for g in self.optimizer.param_groups for p in g["params"]]
        flags = [p.requires_grad for p in trained]
        for p in trained:  # as_art_classifier freezes the model for attacks: train the optimiser's parameters
            p.requires_grad_(True)
        try:
            settings = {
                **(run_config or {}),
                "nb_epochs": nb_epochs,
                "batch_size": batch_size,
                "seed": self.seed,
                "n_examples": int(len(x)),
            }
            run = {"config": settings, "command": command, "kind": kind or type(self).__name__}
            self._run(x_t, y_t, nb_epochs, batch_size, validation_data, ckpt, resume, stop_after, run)
        finally:
            for p, flag in zip(trained, flags):
                p.requires_grad_(flag)
            model.eval()
        return self.history

    def _run(  # pylint: disable=too-many-arguments,too-many-locals
        self, x_t, y_t, nb_epochs, batch_size, validation_data, ckpt, resume, stop_after, run
    ) -> None:
        from art_purify.engine.loop import run_loop

        classifier = self._classifier
        model, device, loss_fn = (
            classifier.model,
            classifier.device,
            classifier._loss,
        )  # pylint: disable=protected-access
        steps = steps_of(len(x_t), batch_size)
        sharpness_aware = isinstance(self.optimizer, SAM)
        epoch_loss = {"total": 0.0, "seen": 0, "t0": time.time()}

        def train_step(step: int, idx: torch.Tensor, generator: torch.Generator) -> float:
            epoch = step // steps
            if step % steps == 0:  # an epoch starts
                self._set_epoch_lr(epoch, nb_epochs)
                epoch_loss.update(total=0.0, seen=0, t0=time.time())
            model.train()
            xb = x_t[idx]
            if self.augment is not None:
                xb = self.augment(xb, generator)
            xb, yb = xb.to(device), y_t[idx].to(device)
            if sharpness_aware:
                closure = make_closure(model, loss_fn, xb, yb, batchnorm=self.batchnorm)
                loss = self.optimizer.step(closure, targets=yb)  # type: ignore[call-overload]
            else:
                self.optimizer.zero_grad(set_to_none=True)
                loss = loss_fn(model(xb), yb)
                loss.backward()
                self.optimizer.step()
            value = float(loss.detach())
            epoch_loss["total"] += value * len(idx)
            epoch_loss["seen"] += len(idx)
            return value

        def after_step(done: int) -> None:
            if done % steps:
                return
            record = {
                "epoch": done // steps,
                "train_loss": epoch_loss["total"] / epoch_loss["seen"],
                "lr": self.optimizer.param_groups[0]["lr"],
                "time_s": time.time() - epoch_loss["t0"],
            }
            if isinstance(self.optimizer, SSESAM):
                record["phase"] = self.optimizer.phase
                self.optimizer.epoch_end()
            if self.scheduler is not None and self.scheduler != "cosine":
                self.scheduler.step()
            model.eval()
            if validation_data is not None:
                record.update({f"val_{k}": v for k, v in self.group_accuracy(*validation_data).items()})
            self.history.append(record)
            logger.info("epoch %d: %s", record["epoch"], record)

        def set_state(state: Dict) -> None:
            self._set_state(state)
            if isinstance(self.optimizer, SSESAM) and self.optimizer.param_groups[0]["epochs"] != nb_epochs:
                raise ValueError(
                    f"the checkpoint's SSESAM optimiser was built for "
                    f"epochs={self.optimizer.param_groups[0]['epochs']} but fit runs {nb_epochs}."
                )

        if ckpt is not None:
            ckpt.parent.mkdir(parents=True, exist_ok=True)
        summary = run_loop(
            total_steps=nb_epochs * steps,
            n_train=len(x_t),
            batch_size=batch_size,
            seed=self.seed,
            checkpoint_path=ckpt,
            resume=resume,
            checkpoint_every=steps,
            train_step=train_step,
            get_state=self._state,
            set_state=set_state,
            after_step=after_step,
            stop_after=None if stop_after is None else int(stop_after) * steps,
            verbose=self.verbose,
            desc=f"fit {nb_epochs} epochs",
            **run,
        )
        self.commands = summary["commands"]

    def group_accuracy(self, x: np.ndarray, y: np.ndarray, batch_size: int = 500) -> Dict[str, float]:
        """Accuracy overall and on the many-, medium- and few-shot classes (``nan`` for an empty group)."""
        x, y = self._check_data(x, y, "x")
        if self.class_counts is None:
            raise ValueError("class_counts is unknown: pass it to the trainer or call fit first.")
        prediction = self._classifier.predict(x, batch_size=batch_size).argmax(1)
        correct = prediction == y
        out = {"accuracy": float(correct.mean())}
        for name, classes in shot_groups(self.class_counts, self.many_shot, self.few_shot).items():
            rows = np.isin(y, classes)
            out[f"{name}_accuracy"] = float(correct[rows].mean()) if rows.any() else float("nan")
        return out

    def get_classifier(self) -> Any:
        """The ART classifier, trained in place."""
        return self._classifier

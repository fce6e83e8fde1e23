# SPDX-License-Identifier: MIT
# Copyright (c) 2026 art_purify developers
"""A defence-aware attack on the reconstruction search: l_inf PGD that also lowers the ERE of its adversarial input."""

from __future__ import annotations

from typing import Any, Optional, Tuple

import numpy as np
import torch
from art.attacks.attack import EvasionAttack
from art.estimators.classification.classifier import ClassifierMixin
from art.estimators.estimator import BaseEstimator, LossGradientsMixin
from tqdm.auto import trange


def ere_defence_of(classifier: Any) -> Optional[Any]:
    """The first preprocessing defence of ``classifier`` with an ``ere`` method (the reconstruction search), or
    ``None``."""
    steps = getattr(classifier, "preprocessing_operations", None) or []
    return next((d for d in steps if callable(getattr(d, "ere", None))), None)


def _unit(v: np.ndarray) -> np.ndarray:
    norms = np.sqrt((v.reshape(len(v), -1).astype(np.float64) ** 2).sum(1)).reshape(-1, *([1] * (v.ndim - 1)))
    return v / np.maximum(norms, 1e-12)


class ReconstructionAwarePGD(EvasionAttack):
    """
    l_inf PGD against a classifier defended by :class:`~art_purify.defences.preprocessor.ReconstructionSearchPyTorch`
    that also lowers the expected reconstruction error (ERE) of its adversarial input, so that the search, which
    moves inputs towards low ERE, leaves the perturbation where the attacker put it.

    Each step moves ``x_adv`` by ``eps_step * sign(d)`` with, per image,
    ``d = g_loss / ||g_loss||_2 - ere_weight * [ERE(x_adv) > ERE(x)] * g_ere / ||g_ere||_2``: ``g_loss`` is ART's
    ``loss_gradient`` of the defended classifier (the exact gradient through the search, whatever the defence's
    ``gradient`` mode gives) and ``g_ere`` the gradient of the search's :meth:`ere` at ``x_adv``. The ERE term acts
    only while the adversarial input's ERE is above the clean input's, so the attack keeps ``x_adv`` as "clean-looking"
    to the denoiser as ``x`` and spends the rest of its budget on the loss. It starts at ``x``, projects onto the eps
    ball and ``clip_values``, and stops for an image as soon as the defended classifier misclassifies it (the defence
    is deterministic, so that iterate stays adversarial; an image misclassified at ``x`` is returned as it is).
    ``ere_weight = 0`` is exact-gradient PGD with early stopping.

    The ERE is taken at the classifier's input, so the search should be the first preprocessing defence.
    """

    attack_params = EvasionAttack.attack_params + ["eps", "eps_step", "max_iter", "ere_weight", "batch_size", "verbose"]
    _estimator_requirements = (BaseEstimator, LossGradientsMixin, ClassifierMixin)

    def __init__(  # pylint: disable=too-many-arguments
        self,
        estimator: Any,
        eps: float = 0.1,
        eps_step: float = 0.025,
        max_iter: int = 20,
        ere_weight: float = 0.5,
        batch_size: int = 64,
        verbose: bool = False,
    ) -> None:
        super().__init__(estimator=estimator)
        self.eps = eps
        self.eps_step = eps_step
        self.max_iter = max_iter
        self.ere_weight = ere_weight
        self.batch_size = batch_size
        self.verbose = verbose
        self._check_params()
        defence = ere_defence_of(estimator)
        if defence is None:
            raise ValueError(
                "the reconstruction-aware attack needs a preprocessing defence with an ere() method "
                "(ReconstructionSearchPyTorch); this classifier has none."
            )
        self.defence: Any = defence

    def _check_params(self) -> None:
        for name in ("eps", "eps_step"):
            value = getattr(self, name)
            if not np.isfinite(value) or value <= 0:
                raise ValueError(f"{name} must be a positive number, got {value!r}.")
        if not np.isfinite(self.ere_weight) or self.ere_weight < 0:
            raise ValueError(f"ere_weight must be a non-negative number, got {self.ere_weight!r}.")
        for name in ("max_iter", "batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
                raise ValueError(f"{name} must be a positive integer, got {value!r}.")

    def _device(self) -> torch.device:
        return getattr(self.estimator, "device", torch.device("cpu"))

    def _ere(self, x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return self.defence.ere(torch.from_numpy(x).to(self._device())).cpu().numpy()

    def _ere_and_gradient(self, x: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        z = torch.from_numpy(x).to(self._device()).requires_grad_(True)
        ere = self.defence.ere(z)
        (g,) = torch.autograd.grad(ere.sum(), z)
        return ere.detach().cpu().numpy(), g.detach().cpu().numpy().astype(x.dtype)

    def generate(self, x: np.ndarray, y: Optional[np.ndarray] = None, **kwargs: Any) -> np.ndarray:
        """
        :param x: Clean inputs (the classifier's layout and ``clip_values``).
        :param y: Integer labels or one-hot (default: the classifier's predictions).
        :return: Adversarial examples within ``eps`` (l_inf) of ``x``.
        """
        x = np.asarray(x, dtype=np.float32)
        if y is None:
            labels = np.argmax(self.estimator.predict(x, batch_size=self.batch_size), axis=1)
        else:
            y = np.asarray(y)
            labels = np.argmax(y, axis=1) if y.ndim == 2 else y.astype(np.int64)
        lo, hi = (float(v) for v in self.estimator.clip_values) if self.estimator.clip_values is not None else (0, 1)
        x_adv = x.copy()
        for start in trange(0, len(x), self.batch_size, desc="ReconstructionAwarePGD", disable=not self.verbose):
            sl = slice(start, start + self.batch_size)
            x_adv[sl] = self._attack_batch(x[sl], labels[sl], lo, hi)
        return x_adv

    def _attack_batch(self, x: np.ndarray, labels: np.ndarray, lo: float, hi: float) -> np.ndarray:
        nb_classes = self.estimator.nb_classes
        x_adv = x.copy()
        active = np.argmax(self.estimator.predict(x, batch_size=self.batch_size), axis=1) == labels
        clean_ere = self._ere(x) if self.ere_weight > 0 else None
        for _ in range(int(self.max_iter)):
            idx = np.flatnonzero(active)
            if idx.size == 0:
                break
            xa = x_adv[idx]
            onehot = np.eye(nb_classes, dtype=np.float32)[labels[idx]]
            direction = _unit(self.estimator.loss_gradient(xa, onehot))
            if clean_ere is not None:
                ere, g_ere = self._ere_and_gradient(xa)
                above = (ere > clean_ere[idx]).reshape(-1, *([1] * (xa.ndim - 1)))
                direction = direction - self.ere_weight * above * _unit(g_ere)
            step = xa + self.eps_step * np.sign(direction)
            xa = np.clip(np.clip(step, x[idx] - self.eps, x[idx] + self.eps), lo, hi).astype(np.float32)
            x_adv[idx] = xa
            predicted = np.argmax(self.estimator.predict(xa, batch_size=self.batch_size), axis=1)
            active[idx[predicted != labels[idx]]] = False
        return x_adv

# SPDX-License-Identifier: MIT
# Copyright (c) 2026 art_purify developers
"""A resubmission-aware attack on random defences: l_inf PGD whose loss over the EOT draws rewards the draws that
are closest to breaking, and that keeps the iterate that breaks the most draws."""

from __future__ import annotations

import math
from typing import Any, Optional, Tuple

import numpy as np
import torch
from art.attacks.attack import EvasionAttack
from art.estimators.classification.classifier import ClassifierMixin
from art.estimators.estimator import BaseEstimator, LossGradientsMixin
from tqdm.auto import trange


class ResubmissionPGD(EvasionAttack):
    """
    l_inf PGD for the resubmission threat model of DiffHammer (Wang et al., NeurIPS 2024): an attacker who may submit
    an adversarial input again breaks an example as soon as ONE of N independent purifications misclassifies it, so
    the figure to lower is the fraction of examples correct in ALL N purifications, not the majority vote.

    PGD-EOT maximises the mean loss over the ``K`` draws of a gradient call (the defences' ``nb_eot``), so the draws
    that resist (low loss) pull the step as much as those about to break. Two changes aim it at the N-evaluation
    figure, at the same number of gradient evaluations (``max_iter`` calls of ``K`` draws):

    1. **Soft maximum over the draws.** The loss of an example is ``T * logsumexp(l_k / T) - T log K`` over its
       ``K`` draws' cross-entropies ``l_k``: its gradient weighs each draw by ``softmax(l / T)``, so the step follows
       the purifications the attack is closest to breaking, the vulnerability those draws share (DiffHammer's
       EM-style selection of the draws to attack, made soft). ``T -> inf`` is PGD-EOT; ``T -> 0`` attacks the single
       weakest draw.
    2. **Best iterate by broken draws.** Each gradient call already classifies the ``K`` draws of the current
       iterate; the attack returns, per example, the iterate that the most draws misclassified (ties: the later
       one), not the last one, after one more classification of the final iterate (a forward pass, no gradient).
       ``select="last"`` returns the last iterate instead, as PGD does.

    It needs an ART ``PyTorchClassifier`` whose PyTorch preprocessing defences expand a loss-gradient call into
    ``K`` consecutive draws per input (:func:`~art_purify.defences.preprocessor.expand_for_eot`; the suite sets
    ``nb_eot``); a deterministic classifier gives ``K = 1`` and plain PGD with best-iterate selection. The gradient
    is the defences' own (exact or surrogate, as their ``gradient`` parameter says). It starts at ``x`` when
    ``num_random_init`` is 0; otherwise it makes ``num_random_init`` runs from uniform random points of the eps-ball
    (drawn from a ``torch.Generator`` seeded with ``seed``) and keeps, per example, the run whose result the most
    draws misclassified: ``max(1, num_random_init) * max_iter`` gradient calls, as ART's PGD makes.
    """

    attack_params = EvasionAttack.attack_params + [
        "eps",
        "eps_step",
        "max_iter",
        "temperature",
        "select",
        "num_random_init",
        "seed",
        "batch_size",
        "verbose",
    ]
    _estimator_requirements = (BaseEstimator, LossGradientsMixin, ClassifierMixin)

    def __init__(  # pylint: disable=too-many-arguments,too-many-positional-arguments
        self,
        estimator: Any,
        eps: float = 0.1,
        eps_step: float = 0.025,
        max_iter: int = 20,
        temperature: float = 1.0,
        batch_size: int = 64,
        verbose: bool = False,
        select: str = "broken",
        num_random_init: int = 0,
        seed: int = 0,
    ) -> None:
        super().__init__(estimator=estimator)
        self.eps = eps
        self.eps_step = eps_step
        self.max_iter = max_iter
        self.temperature = temperature
        self.select = select
        self.num_random_init = num_random_init
        self.seed = seed
        self.batch_size = batch_size
        self.verbose = verbose
        self._check_params()
        if not getattr(estimator, "all_framework_preprocessing", False):
            raise ValueError(
                "the resubmission attack needs a PyTorchClassifier whose preprocessing steps are all PyTorch "
                "(it reads the loss of every EOT draw)."
            )

    def _check_params(self) -> None:
        for name in ("eps", "eps_step", "temperature"):
            value = getattr(self, name)
            if not np.isfinite(value) or value <= 0:
                raise ValueError(f"{name} must be a positive number, got {value!r}.")
        if self.select not in ("broken", "last"):
            raise ValueError(f"select must be 'broken' or 'last', got {self.select!r}.")
        for name, least in (("max_iter", 1), ("batch_size", 1), ("num_random_init", 0), ("seed", 0)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < least:
                kind = "positive" if least else "non-negative"
                raise ValueError(f"{name} must be a {kind} integer, got {value!r}.")

    def draws_and_gradient(
        self, x: np.ndarray, labels: np.ndarray, with_gradient: bool = True
    ) -> Tuple[np.ndarray, Optional[np.ndarray]]:
        """
        One call of ``K`` draws per input: ``(broken, gradient)``, the number of draws of each input that the
        classifier gets wrong, and the gradient of the soft-maximum loss (see the class docstring) with respect to
        ``x`` (``None`` when ``with_gradient`` is False: the draws are made as for a gradient, no backward pass).
        """
        est = self.estimator
        device = getattr(est, "device", torch.device("cpu"))
        x_grad = torch.from_numpy(x).to(device).requires_grad_(True)
        onehot = torch.from_numpy(np.eye(est.nb_classes, dtype=np.float32)[labels]).to(device)
        est._model.train(mode=False)  # pylint: disable=protected-access
        inputs, y_pre = est._apply_preprocessing(x_grad, y=onehot, fit=False, no_grad=False)  # pylint: disable=W0212
        logits = est._model(inputs)[-1]  # pylint: disable=protected-access
        n = len(x)
        if logits.shape[0] % n:
            raise ValueError(f"the defences returned {logits.shape[0]} rows for {n} inputs (not a multiple).")
        draws = logits.shape[0] // n
        target = y_pre.argmax(1) if y_pre.ndim == 2 else y_pre
        per_draw = torch.nn.functional.cross_entropy(logits.float(), target.long(), reduction="none").view(n, draws)
        broken = (logits.argmax(1).view(n, draws) != target.view(n, draws)).sum(1).cpu().numpy()
        if not with_gradient:
            return broken, None
        t = float(self.temperature)
        loss = t * (torch.logsumexp(per_draw / t, dim=1) - math.log(draws))
        (grad,) = torch.autograd.grad(loss.sum(), x_grad)
        return broken, grad.detach().cpu().numpy().astype(x.dtype)

    def generate(self, x: np.ndarray, y: Optional[np.ndarray] = None, **kwargs: Any) -> np.ndarray:
        """
        :param x: Clean inputs (the classifier's layout and ``clip_values``).
        :param y: Integer labels or one-hot (default: the classifier's predictions).
        :return: Adversarial examples within ``eps`` (l_inf) of ``x``.
        """
        x = np.asarray(x)
        x = x if x.dtype == np.float64 else x.astype(np.float32)  # float64 models keep float64
        if y is None:
            labels = np.argmax(self.estimator.predict(x, batch_size=self.batch_size), axis=1)
        else:
            y = np.asarray(y)
            labels = np.argmax(y, axis=1) if y.ndim == 2 else y.astype(np.int64)
        clip = self.estimator.clip_values
        lo, hi = (float(v) for v in clip) if clip is not None else (0.0, 1.0)
        x_adv = x.copy()
        generator = torch.Generator().manual_seed(int(self.seed))
        runs = max(1, int(self.num_random_init))
        for start in trange(0, len(x), self.batch_size, desc="ResubmissionPGD", disable=not self.verbose):
            rows = slice(start, start + self.batch_size)
            best_broken = np.full(len(x[rows]), -1)
            for _ in range(runs):
                begin = x[rows]
                if self.num_random_init:
                    noise = torch.rand(begin.shape, generator=generator, dtype=torch.float64).numpy()
                    begin = np.clip(begin + self.eps * (2.0 * noise - 1.0), lo, hi).astype(x.dtype)
                self._attack_batch(x[rows], begin, labels[rows], (lo, hi), x_adv[rows], best_broken, runs > 1)
        return x_adv

    def _attack_batch(  # pylint: disable=too-many-arguments
        self,
        x: np.ndarray,
        begin: np.ndarray,
        labels: np.ndarray,
        clip: Tuple[float, float],
        best: np.ndarray,
        best_broken: np.ndarray,
        score: bool,
    ) -> None:
        """
        One run from ``begin``, keeping in ``best`` (in place) per example the candidate that the most draws
        misclassified (``best_broken``; ties: the later one): every iterate for ``select="broken"``, the last one for
        ``select="last"``, which is classified only when runs compete (``score``).
        """
        current = begin.copy()
        for i in range(int(self.max_iter) + 1):
            last = i == self.max_iter  # the final iterate is classified, not differentiated
            if last and self.select == "last" and not score:
                best[:] = current
                return
            broken, grad = self.draws_and_gradient(current, labels, with_gradient=not last)
            if last or self.select == "broken":
                better = broken >= best_broken
                best[better], best_broken[better] = current[better], broken[better]
            if grad is None:
                return
            step = current + self.eps_step * np.sign(grad)
            current = np.clip(np.clip(step, x - self.eps, x + self.eps), *clip).astype(x.dtype)

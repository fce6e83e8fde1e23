# SPDX-License-Identifier: MIT
# Copyright (c) 2026 art_purify developers
"""Running ART attacks and majority votes with an evaluation's seeds, EOT and votes."""

from __future__ import annotations

import dataclasses
from typing import Any, List, Optional, Sequence, Tuple

import numpy as np

from art_purify.evaluation.attacks import (
    DW_BOX,
    TRANSFER,
    WHITE_BOX,
    AttackSettings,
    build_attack,
    straight_through_classifier,
    undefended_classifier,
)
from art_purify.evaluation.seeding import fixed_noise, seeded_phase
from art_purify.evaluation.voting import majority_vote


class AttackRunner:
    """
    Runs attacks and majority votes on one ART classifier; every call is a named phase (see
    :mod:`art_purify.evaluation.seeding`), so its random draws depend on ``(seed, key)`` alone.

    :param classifier: The (defended) ART classifier.
    :param settings: Budgets of the attacks.
    :param eot: EOT samples per gradient (set on every defence declaring ``nb_eot`` during an attack).
    :param votes: Predictions per majority vote.
    :param seed: The evaluation's seed.
    :param verbose: Progress bars of ART's attacks and of the votes.
    """

    def __init__(  # pylint: disable=too-many-arguments
        self, classifier: Any, settings: AttackSettings, eot: int, votes: int, seed: int, verbose: bool
    ) -> None:
        self.classifier = classifier
        self.settings = settings
        self.eot = eot
        self.votes = votes
        self.seed = seed
        self.verbose = verbose

    def vote(self, x: np.ndarray, key: str) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Majority-vote prediction, vote margin and ``(N, nb_classes)`` vote counts of ``x`` in phase ``key``."""
        with seeded_phase(self.classifier, self.seed, key):
            return majority_vote(self.classifier, x, self.votes, self.settings.batch_size, self.verbose)

    def fixed_noise_prediction(self, x: np.ndarray, x_clean: np.ndarray, keys: np.ndarray) -> np.ndarray:
        """The prediction of ``x`` with every random defence's noise fixed per example (the DW-box function the
        DW-box attacks differentiate): ``x[i]`` takes the noise of ``keys[i]``, the index of its clean example
        ``x_clean[i]``."""
        with fixed_noise(self.classifier, self.seed, x_clean, keys, self.settings.eps):
            return self.classifier.predict(x, batch_size=self.settings.batch_size).argmax(1)

    def attack(  # pylint: disable=too-many-arguments
        self,
        name: str,
        x: np.ndarray,
        y: np.ndarray,
        key: str,
        settings: Optional[AttackSettings] = None,
        keys: Optional[np.ndarray] = None,
    ) -> np.ndarray:
        """
        Adversarial examples of attack ``name`` in phase ``key``. ``"bpda"`` attacks a copy of the classifier whose
        defences are wrapped in :class:`~art_purify.defences.preprocessor.StraightThroughPyTorch` (same model and
        defence objects), the transfer attacks a copy without its defences; the classifier itself is not changed.
        The DW-box attacks (:data:`~art_purify.evaluation.attacks.DW_BOX`) run with the defences' noise fixed per
        example, ``keys`` being the examples' indices in the evaluation (default ``0 .. len(x) - 1``), and no EOT.
        """
        settings = settings or self.settings
        if name in DW_BOX:
            keys = np.arange(len(x)) if keys is None else np.asarray(keys)
            with seeded_phase(self.classifier, self.seed, key):
                # built before the noise is fixed: ART's APGD probes the classifier with an image of ones
                attack = build_attack(name, self.classifier, settings, verbose=self.verbose)
                with fixed_noise(self.classifier, self.seed, x, keys, settings.eps):
                    return attack.generate(x, y=y).astype(x.dtype)
        with seeded_phase(self.classifier, self.seed, key, nb_eot=self.eot):
            if name == "bpda":
                target = straight_through_classifier(self.classifier, self.eot)
            elif name in TRANSFER:
                target = undefended_classifier(self.classifier)
            else:
                target = self.classifier
            attack = build_attack(name, target, settings, verbose=self.verbose)
            return attack.generate(x, y=y).astype(x.dtype)


def tolerance(random: bool, m: int) -> float:
    """How much two accuracies on ``m`` examples may differ by chance: voting noise of random defences, or one
    example for deterministic ones (ART's attacks return their last iterate, which can flip back)."""
    return max(0.03, 2.0 / m) if random else 1.0 / m


def replace_settings(settings: AttackSettings, eps: float, max_iter: Optional[int] = None) -> AttackSettings:
    """The same settings at another l_inf eps (step scaled in proportion) and optionally another iteration count."""
    assert settings.eps_step is not None  # set by AttackSettings.__post_init__
    ratio = settings.eps_step / settings.eps
    return dataclasses.replace(
        settings,
        eps=float(eps),
        eps_step=float(eps) * ratio,
        max_iter=settings.max_iter if max_iter is None else int(max_iter),
    )


def primary_gradient_attack(names: Sequence[str]) -> str:
    """The gradient used by the sanity runs: the real gradient (``pgd``) when the run has a white-box attack,
    ``bpda`` when it only has BPDA, otherwise ``pgd``."""
    if any(n in WHITE_BOX for n in names) or "bpda" not in names:
        return "pgd"
    return "bpda"


def cascade_order(names: Sequence[str]) -> List[str]:
    """The order in which ``cascade`` runs the attacks: real-gradient attacks first (in the given order), then BPDA,
    then the transfer attacks, then the black-box Square attack."""
    rank = {"bpda": 1, "transfer-fgsm": 1, "transfer-pgd": 1, "square": 2}
    return sorted(names, key=lambda n: rank.get(n, 0))

# SPDX-License-Identifier: MIT
# Copyright (c) 2026 art_purify developers
"""The attack set of the evaluation suite: ART's attacks by name, with EOT and BPDA through the preprocessing chain."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Dict, List, Optional, Sequence, Union

import numpy as np
from art.defences.preprocessor.preprocessor import PreprocessorPyTorch

from art_purify.evaluation.reconstruction_aware_pgd import ReconstructionAwarePGD, ere_defence_of
from art_purify.evaluation.resubmission_pgd import ResubmissionPGD

#: Attack names understood by :func:`build_attack`, in the order the suite runs them.
ATTACKS = (
    "pgd",
    "pgd-l2",
    "apgd-ce",
    "apgd-dlr",
    "autoattack",
    "pgd-dw",
    "apgd-dw",
    "resubmission",
    "reconstruction-aware",
    "bpda",
    "transfer-fgsm",
    "transfer-pgd",
    "square",
)
#: Other spellings accepted on the command line.
ALIASES = {
    "pgd-eot": "pgd",
    "pgd-linf": "pgd",
    "pgd-l2-eot": "pgd-l2",
    "bpda-eot": "bpda",
    "aa": "autoattack",
    "aware": "reconstruction-aware",
    "fgsm-transfer": "transfer-fgsm",
    "pgd-transfer": "transfer-pgd",
    "dw-pgd": "pgd-dw",
    "dw-apgd": "apgd-dw",
    "apgd-ce-dw": "apgd-dw",
    "resubmission-pgd": "resubmission",
}
#: Attacks that follow the true gradient of the defended classifier (EOT-averaged for random defences).
WHITE_BOX = (
    "pgd",
    "pgd-l2",
    "apgd-ce",
    "apgd-dlr",
    "autoattack",
    "pgd-dw",
    "apgd-dw",
    "resubmission",
    "reconstruction-aware",
)
#: Deterministic white-box attacks: run with every random defence's noise FIXED per example (``noise="fixed"``) and
#: known to the attacker, no EOT; their success is also judged with that fixed noise (Liu et al., ICLR 2025).
DW_BOX = ("pgd-dw", "apgd-dw")
#: Attacks made against the classifier WITHOUT its defences and then fed through them (references, never robustness:
#: AToP's training attack, and what its paper's notebooks print as "BPDA").
TRANSFER = ("transfer-fgsm", "transfer-pgd")
#: Attacks that need a defence with an ``ere`` method (the reconstruction search).
NEEDS_ERE = ("reconstruction-aware",)
#: Human-readable names for tables and figures.
LABELS = {
    "pgd": "PGD l_inf",
    "pgd-l2": "PGD l_2",
    "apgd-ce": "APGD-CE",
    "apgd-dlr": "APGD-DLR",
    "autoattack": "AutoAttack",
    "pgd-dw": "DW-box PGD (noise fixed and known)",
    "apgd-dw": "DW-box APGD-CE (noise fixed and known)",
    "resubmission": "Resubmission-aware PGD",
    "reconstruction-aware": "Reconstruction-aware PGD",
    "bpda": "BPDA (reference only)",
    "transfer-fgsm": "FGSM transfer from the undefended classifier (reference only)",
    "transfer-pgd": "PGD transfer from the undefended classifier (reference only)",
    "square": "Square (black-box)",
}


@dataclass
class AttackSettings:
    """
    Budgets shared by the attacks of one evaluation.

    :param eps: l_inf budget (input units).
    :param eps_step: l_inf step size (default ``eps / 4``).
    :param max_iter: Iterations of every gradient attack.
    :param restarts: Random restarts: PGD starts at the clean input when 0; APGD always makes at least one run.
    :param eps_l2: l_2 budget of ``pgd-l2``.
    :param eps_step_l2: l_2 step (default ``eps_l2 / 4``).
    :param square_queries: Queries (iterations) of the black-box Square attack.
    :param batch_size: Attack batch size.
    :param ere_weight: Weight of the ERE term of the ``reconstruction-aware`` attack
                       (:class:`~art_purify.evaluation.ReconstructionAwarePGD`).
    :param temperature: Temperature of the ``resubmission`` attack's soft maximum over draws
                        (:class:`~art_purify.evaluation.ResubmissionPGD`).
    """

    eps: float = 0.1
    eps_step: Optional[float] = None
    max_iter: int = 20
    restarts: int = 0
    eps_l2: float = 1.5
    eps_step_l2: Optional[float] = None
    square_queries: int = 100
    batch_size: int = 64
    ere_weight: float = 0.5
    temperature: float = 1.0

    def __post_init__(self) -> None:
        if self.eps_step is None:
            self.eps_step = self.eps / 4.0
        if self.eps_step_l2 is None:
            self.eps_step_l2 = self.eps_l2 / 4.0
        for name in ("max_iter", "square_queries", "batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
                raise ValueError(f"{name} must be a positive integer, got {value!r}.")
        if isinstance(self.restarts, bool) or not isinstance(self.restarts, (int, np.integer)) or self.restarts < 0:
            raise ValueError(f"restarts must be a non-negative integer, got {self.restarts!r}.")
        for name in ("eps", "eps_step", "eps_l2", "eps_step_l2"):
            value = getattr(self, name)
            if not np.isfinite(value) or value <= 0:
                raise ValueError(f"{name} must be a positive number, got {value!r}.")
        if not np.isfinite(self.ere_weight) or self.ere_weight < 0:
            raise ValueError(f"ere_weight must be a non-negative number, got {self.ere_weight!r}.")
        if not np.isfinite(self.temperature) or self.temperature <= 0:
            raise ValueError(f"temperature must be a positive number, got {self.temperature!r}.")

    def to_json(self) -> Dict:
        return asdict(self)


def parse_attacks(names: Union[str, Sequence[str]]) -> List[str]:
    """Canonical attack names from a comma-separated string or a list (aliases resolved, duplicates dropped, suite
    order kept). Raises ``ValueError`` naming any unknown attack."""
    if isinstance(names, str):
        names = [names]
    wanted = []
    for item in names:
        for name in str(item).split(","):
            name = name.strip().lower()
            if not name:
                continue
            name = ALIASES.get(name, name)
            if name not in ATTACKS:
                raise ValueError(
                    f"unknown attack {name!r}; choose from {', '.join(ATTACKS)} " f"(aliases: {', '.join(ALIASES)})."
                )
            wanted.append(name)
    if not wanted:
        raise ValueError("no attack given.")
    return [name for name in ATTACKS if name in wanted]


def check_attacks_apply(names: Sequence[str], classifier: Any) -> None:
    """Raise ``ValueError`` before any work when an attack of ``names`` cannot run on ``classifier`` (the
    reconstruction-aware attack without a reconstruction search)."""
    needing = [n for n in names if n in NEEDS_ERE]
    if needing and ere_defence_of(classifier) is None:
        raise ValueError(
            f"attack {needing[0]!r} needs the reconstruction-search defence (a preprocessing defence with ere()); "
            "this classifier has none."
        )


def _apgd(classifier, settings: AttackSettings, loss_type: str, verbose: bool):
    from art.attacks.evasion import AutoProjectedGradientDescent

    return AutoProjectedGradientDescent(
        classifier,
        norm=np.inf,
        eps=settings.eps,
        eps_step=settings.eps_step,
        max_iter=settings.max_iter,
        nb_random_init=max(1, settings.restarts),
        batch_size=settings.batch_size,
        loss_type=loss_type,
        verbose=verbose,
    )


def _square(classifier, settings: AttackSettings, verbose: bool):
    from art.attacks.evasion import SquareAttack

    return SquareAttack(
        memoised_if_deterministic(classifier),  # ART's repeated queries answered from memory when that is exact
        norm=np.inf,
        eps=settings.eps,
        max_iter=settings.square_queries,
        p_init=0.8,
        nb_restarts=1,
        batch_size=settings.batch_size,
        verbose=verbose,
    )


def _pgd(classifier, settings: AttackSettings, norm, verbose: bool, eps=None, eps_step=None, max_iter=None):
    from art.attacks.evasion import ProjectedGradientDescent

    if norm == 2:
        eps, eps_step = settings.eps_l2, settings.eps_step_l2
    return ProjectedGradientDescent(
        classifier,
        norm=norm,
        eps=settings.eps if eps is None else eps,
        eps_step=settings.eps_step if eps_step is None else eps_step,
        max_iter=settings.max_iter if max_iter is None else max_iter,
        num_random_init=settings.restarts,
        batch_size=settings.batch_size,
        verbose=verbose,
    )


def build_attack(name: str, classifier: Any, settings: AttackSettings, verbose: bool = False) -> Any:
    """
    ART's attack for ``name`` on ``classifier``. ``"bpda"`` is ART's PGD; build it on
    :func:`straight_through_classifier` so that the defences' gradients are the identity. ``"transfer-fgsm"`` and
    ``"transfer-pgd"`` are ART's FGSM and PGD; build them on :func:`undefended_classifier`. ``"autoattack"`` is ART's
    :class:`AutoAttack` over
    APGD-CE, APGD-DLR and Square with these settings (ART's default set adds DeepFool; the original AutoAttack uses
    targeted APGD and FAB, which ART does not offer for PyTorch preprocessors).
    """
    name = parse_attacks(name)[0]
    if name in ("pgd", "bpda", "transfer-pgd", "pgd-dw"):
        return _pgd(classifier, settings, np.inf, verbose)
    if name == "transfer-fgsm":
        from art.attacks.evasion import FastGradientMethod

        return FastGradientMethod(classifier, norm=np.inf, eps=settings.eps, batch_size=settings.batch_size)
    if name == "pgd-l2":
        return _pgd(classifier, settings, 2, verbose)
    if name in ("apgd-ce", "apgd-dw"):
        return _apgd(classifier, settings, "cross_entropy", verbose)
    if name == "apgd-dlr":
        return _apgd(classifier, settings, "difference_logits_ratio", verbose)
    if name == "square":
        return _square(classifier, settings, verbose)
    if name == "resubmission":
        assert settings.eps_step is not None  # set by AttackSettings.__post_init__
        return ResubmissionPGD(
            classifier,
            eps=settings.eps,
            eps_step=settings.eps_step,
            max_iter=settings.max_iter,
            temperature=settings.temperature,
            num_random_init=settings.restarts,
            batch_size=settings.batch_size,
            verbose=verbose,
        )
    if name == "reconstruction-aware":
        assert settings.eps_step is not None  # set by AttackSettings.__post_init__
        return ReconstructionAwarePGD(
            classifier,
            eps=settings.eps,
            eps_step=settings.eps_step,
            max_iter=settings.max_iter,
            ere_weight=settings.ere_weight,
            batch_size=settings.batch_size,
            verbose=verbose,
        )
    from art.attacks.evasion import AutoAttack

    return AutoAttack(
        classifier,
        norm=np.inf,
        eps=settings.eps,
        eps_step=settings.eps_step,
        batch_size=settings.batch_size,
        attacks=[
            _apgd(classifier, settings, "cross_entropy", False),
            _apgd(classifier, settings, "difference_logits_ratio", False),
            _square(classifier, settings, False),
        ],
    )


def is_defence(step: Any) -> bool:
    """Whether a preprocessing step of an ART estimator is a defence (not ART's own standardisation step)."""
    from art.preprocessing.standardisation_mean_std import StandardisationMeanStd, StandardisationMeanStdPyTorch

    return not isinstance(step, (StandardisationMeanStd, StandardisationMeanStdPyTorch))


def defences_of(classifier: Any) -> List[Any]:
    """The preprocessing defences of an ART estimator (its standardisation step excluded)."""
    return [p for p in (classifier.preprocessing_operations or []) if is_defence(p)]


def is_deterministic(classifier: Any) -> bool:
    """Whether every preprocessing defence of ``classifier`` declares ``stochastic = False`` (a defence that does not
    say is taken as random)."""
    return all(getattr(defence, "stochastic", True) is False for defence in defences_of(classifier))


def memoised_if_deterministic(classifier: Any) -> Any:
    """``classifier``, or its :class:`~art_purify.evaluation.memoised_classifier.MemoisedPyTorchClassifier` copy when
    it is a deterministic ``PyTorchClassifier`` (for a random defence a repeated query is a fresh draw)."""
    from art.estimators.classification import PyTorchClassifier

    from art_purify.evaluation.memoised_classifier import memoised_copy

    if isinstance(classifier, PyTorchClassifier) and is_deterministic(classifier):
        return memoised_copy(classifier)
    return classifier


def undefended_classifier(classifier: Any) -> Any:
    """A copy of the ART ``PyTorchClassifier`` ``classifier`` without its preprocessing defences (same model, loss,
    input shape, clip values and standardisation): the target of the transfer attacks."""
    from art.estimators.classification import PyTorchClassifier

    params = classifier.get_params()
    params["preprocessing_defences"] = None
    return PyTorchClassifier(**params)


def straight_through_classifier(classifier: Any, nb_eot: int = 1) -> Any:
    """
    A copy of the ART ``PyTorchClassifier`` ``classifier`` whose preprocessing defences are wrapped in
    :class:`~art_purify.defences.preprocessor.StraightThroughPyTorch` (BPDA, with ``nb_eot`` EOT samples).

    The copy shares the model and the defence objects (their seeds and parameters act on both) and has the same
    loss, input shape, clip values and standardisation; ``classifier`` itself is left as it was.

    :raises ValueError: If a defence is not a PyTorch preprocessor (BPDA needs to call it inside the graph).
    """
    from art.estimators.classification import PyTorchClassifier

    from art_purify.defences.preprocessor import StraightThroughPyTorch

    wrapped = []
    for defence in defences_of(classifier):
        if not isinstance(defence, PreprocessorPyTorch):
            raise ValueError(f"BPDA needs PyTorch preprocessing defences; {type(defence).__name__} is not one.")
        wrapped.append(StraightThroughPyTorch(defence, nb_eot))
    params = classifier.get_params()
    params["preprocessing_defences"] = wrapped or None
    return PyTorchClassifier(**params)

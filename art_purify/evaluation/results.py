# SPDX-License-Identifier: MIT
# Copyright (c) 2026 art_purify developers
"""What an evaluation measured: per-attack outcomes, sanity checks and the whole report (JSON-ready)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Dict, List, Optional

import numpy as np


@dataclass
class AttackOutcome:
    """One attack's result: majority-vote predictions on its adversarial examples, per example."""

    name: str
    label: str
    prediction: List[int]
    vote_margin: List[float]
    robust: List[bool]
    robust_accuracy: float
    time_s: float
    #: With ``cascade``, the examples this attack was run on (those every earlier attack failed on); ``None`` when
    #: it ran on every example. Examples it did not attack have prediction -1 and a NaN margin.
    attacked: Optional[List[bool]] = None


@dataclass
class SanityCheck:
    """One sanity check: ``passed`` is ``None`` when the check does not apply to this run."""

    name: str
    passed: Optional[bool]
    detail: str


@dataclass
class EvaluationReport:  # pylint: disable=too-many-instance-attributes
    """Everything one evaluation measured; :meth:`to_json` gives the JSON report (adversarial images excluded)."""

    n: int
    labels: List[int]
    settings: Dict[str, Any]
    random_defence: bool
    clean_prediction: List[int]
    clean_vote_margin: List[float]
    clean_correct: List[bool]
    clean_accuracy: float
    attacks: Dict[str, AttackOutcome]
    robust: List[bool]
    robust_accuracy: float
    checks: List[SanityCheck] = field(default_factory=list)
    eps_curve: List[Dict[str, Any]] = field(default_factory=list)
    time_s: float = 0.0
    x_adv: Dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    @property
    def warnings(self) -> List[SanityCheck]:
        """The sanity checks that failed."""
        return [c for c in self.checks if c.passed is False]

    def to_json(self) -> Dict[str, Any]:
        """The report as JSON-ready values, with a ``per_example`` list (adversarial images left out)."""
        data = asdict(self)
        data.pop("x_adv")
        data["per_example"] = [
            {
                "index": i,
                "label": self.labels[i],
                "clean_prediction": self.clean_prediction[i],
                "clean_vote_margin": self.clean_vote_margin[i],
                "robust": self.robust[i],
                "attacks": {
                    name: {
                        "prediction": o.prediction[i],
                        "vote_margin": o.vote_margin[i],
                        "robust": o.robust[i],
                        **({} if o.attacked is None else {"attacked": o.attacked[i]}),
                    }
                    for name, o in self.attacks.items()
                },
            }
            for i in range(self.n)
        ]
        return data

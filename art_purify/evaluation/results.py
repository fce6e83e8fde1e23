# SPDX-License-Identifier: MIT
# Copyright (c) 2026 art_purify developers
"""What an evaluation measured: per-attack outcomes, sanity checks and the whole report (JSON-ready)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Dict, List, Optional

import numpy as np


@dataclass
class AttackOutcome:  # pylint: disable=too-many-instance-attributes
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
    #: Per example, the votes of the majority vote per class (``votes`` purifications; zeros where not attacked).
    vote_counts: List[List[int]] = field(default_factory=list)
    #: N-evaluation (resubmission): robust only if clean-correct and correct in EVERY one of the votes'
    #: purifications, clean and adversarial; never above ``robust``.
    all_votes_robust: List[bool] = field(default_factory=list)
    all_votes_accuracy: float = 0.0
    #: DW-box attacks only: the prediction with the defences' noise fixed per example (the function the attack
    #: differentiated), and robustness judged by it.
    fixed_noise_prediction: Optional[List[int]] = None
    fixed_noise_robust: Optional[List[bool]] = None
    fixed_noise_accuracy: Optional[float] = None


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
    #: Per example, the clean votes per class.
    clean_vote_counts: List[List[int]] = field(default_factory=list)
    #: N-evaluation of the clean inputs: every vote on the true class.
    clean_all_votes_correct: List[bool] = field(default_factory=list)
    clean_all_votes_accuracy: float = 0.0
    #: The worst case under N-evaluation: clean and every attack correct in all the votes' purifications.
    robust_all_votes: List[bool] = field(default_factory=list)
    robust_all_votes_accuracy: float = 0.0

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
                "clean_vote_counts": self.clean_vote_counts[i] if self.clean_vote_counts else None,
                "robust": self.robust[i],
                "robust_all_votes": self.robust_all_votes[i] if self.robust_all_votes else None,
                "attacks": {
                    name: {
                        "prediction": o.prediction[i],
                        "vote_margin": o.vote_margin[i],
                        "robust": o.robust[i],
                        **({"vote_counts": o.vote_counts[i]} if o.vote_counts else {}),
                        **({"all_votes_robust": o.all_votes_robust[i]} if o.all_votes_robust else {}),
                        **({} if o.attacked is None else {"attacked": o.attacked[i]}),
                        **(
                            {}
                            if o.fixed_noise_prediction is None or o.fixed_noise_robust is None
                            else {
                                "fixed_noise_prediction": o.fixed_noise_prediction[i],
                                "fixed_noise_robust": o.fixed_noise_robust[i],
                            }
                        ),
                    }
                    for name, o in self.attacks.items()
                },
            }
            for i in range(self.n)
        ]
        return data

# SPDX-License-Identifier: MIT
# Copyright (c) 2026 art_purify developers
"""Majority-vote prediction over several runs of a stochastic defence (the heterogeneous paper's protocol)."""

from __future__ import annotations

from typing import Any, Tuple

import numpy as np
from tqdm.auto import trange


def majority_vote(
    classifier: Any, x: np.ndarray, n_votes: int = 20, batch_size: int = 128, verbose: bool = False
) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """
    Predict ``n_votes`` times (each ``predict`` re-runs a random defence) and take the most frequent class.

    :param classifier: An ART classifier, usually with a random preprocessing defence.
    :param x: Inputs.
    :param n_votes: Number of independent predictions.
    :param verbose: Show a progress bar over the votes.
    :return: ``(prediction, margin, counts)``: the voted class (ties go to the lower class index), the vote margin
             ``(top - runner_up) / n_votes`` in [0, 1], and the ``(N, nb_classes)`` vote counts.
    """
    if isinstance(n_votes, bool) or not isinstance(n_votes, (int, np.integer)) or n_votes <= 0:
        raise ValueError(f"n_votes must be a positive integer, got {n_votes!r}.")
    counts = np.zeros((len(x), classifier.nb_classes), dtype=np.int64)
    rows = np.arange(len(x))
    for _ in trange(n_votes, desc="votes", disable=not verbose or n_votes == 1, leave=False):
        counts[rows, classifier.predict(x, batch_size=batch_size).argmax(1)] += 1
    prediction = counts.argmax(1)
    top2 = np.sort(counts, axis=1)[:, -2:]
    margin = (top2[:, 1] - top2[:, 0]) / n_votes
    return prediction, margin, counts

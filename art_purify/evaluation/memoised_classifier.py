# SPDX-License-Identifier: MIT
# Copyright (c) 2026 art_purify developers
"""An ART classifier that answers repeated queries from memory, for black-box attacks on deterministic defences.

ART's :class:`~art.attacks.evasion.SquareAttack` asks the classifier three times per iteration: for the current
points of every example (to find those still robust), for the same points again (their loss) and for the new
candidates. Only the candidates are new. With a deterministic classifier (every defence declares
``stochastic = False``, such as the reconstruction search, whose output for an image depends on that image alone),
the two repeated answers are the ones already computed, so they can come from memory: the attack does exactly what
it did, with about a third of the defence calls. For a random defence a repeated query is a fresh draw, part of
what the attack sees, so the attack set (``art_purify.evaluation.attacks``) memoises only a classifier that
:func:`~art_purify.evaluation.attacks.is_deterministic` accepts.
"""

from __future__ import annotations

import hashlib
from typing import Any, Dict, List

import numpy as np
from art.estimators.classification.pytorch import PyTorchClassifier


class MemoisedPyTorchClassifier(PyTorchClassifier):
    """
    A ``PyTorchClassifier`` whose ``predict`` (in inference mode) returns the stored output for an input row it has
    already answered, keyed by a digest of the row's bytes, dtype and shape; other methods are ART's. Only for a
    deterministic classifier; build it with :func:`memoised_copy`.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._memo: Dict[bytes, np.ndarray] = {}
        #: Rows answered by the network, and rows answered from memory (for tests and logs).
        self.computed_rows = 0
        self.memo_rows = 0

    @staticmethod
    def _key(row: np.ndarray) -> bytes:
        digest = hashlib.blake2b(np.ascontiguousarray(row).tobytes(), digest_size=20)
        digest.update(f"{row.dtype.str}{row.shape}".encode())
        return digest.digest()

    def predict(  # pylint: disable=arguments-differ
        self, x: np.ndarray, batch_size: int = 128, training_mode: bool = False, **kwargs: Any
    ) -> np.ndarray:
        if training_mode or not isinstance(x, np.ndarray) or len(x) == 0:
            return super().predict(x, batch_size=batch_size, training_mode=training_mode, **kwargs)
        keys = [self._key(row) for row in x]
        new: Dict[bytes, int] = {}
        for i, key in enumerate(keys):
            if key not in self._memo and key not in new:
                new[key] = i
        if new:
            rows: List[int] = list(new.values())
            out = super().predict(x[rows], batch_size=batch_size, training_mode=False, **kwargs)
            for key, value in zip(new, out):
                self._memo[key] = value
            self.computed_rows += len(rows)
        self.memo_rows += len(keys) - len(new)
        return np.stack([self._memo[key] for key in keys])  # a new array: the memory is not shared with the caller


def memoised_copy(classifier: PyTorchClassifier) -> MemoisedPyTorchClassifier:
    """A :class:`MemoisedPyTorchClassifier` copy of the ART ``PyTorchClassifier`` ``classifier`` (same model, defence
    objects, loss, input shape, clip values and standardisation). The memory lives as long as the copy: one attack."""
    return MemoisedPyTorchClassifier(**classifier.get_params())

# SPDX-License-Identifier: MIT
# Copyright (c) 2026 art_purify developers
"""Square's repeated queries answered from memory, for deterministic defences only."""

import numpy as np
import pytest
import torch

from art_purify.defences.preprocessor import ReconstructionSearchPyTorch
from art_purify.evaluation import AttackSettings, as_art_classifier, build_attack
from art_purify.evaluation.attacks import is_deterministic, memoised_if_deterministic
from art_purify.evaluation.memoised_classifier import MemoisedPyTorchClassifier
from art_purify.evaluation.seeding import seeded_phase
from tests import helpers


def _searched():
    defence = ReconstructionSearchPyTorch(
        helpers.tiny_unet(), max_iter=2, nb_noise=1, step_size=0.02, radius=0.2, device_type="cpu"
    )
    return as_art_classifier(
        helpers.tiny_classifier(), input_shape=(1, 8, 8), device="cpu", preprocessing_defences=[defence]
    )


def test_repeated_rows_come_from_memory_with_the_same_answers():
    classifier = _searched()
    memo = memoised_if_deterministic(classifier)
    assert (
        isinstance(memo, MemoisedPyTorchClassifier)
        and memo.preprocessing_operations[0] is classifier.preprocessing_operations[0]
    )
    x = helpers.image_batch(4, dtype=torch.float32, seed=3).numpy()
    first = memo.predict(x)
    assert memo.computed_rows == 4 and memo.memo_rows == 0
    again = memo.predict(np.concatenate([x[2:], x[:1], x[1:2] + 0.01]))  # three seen rows, one new
    assert memo.computed_rows == 5 and memo.memo_rows == 3
    np.testing.assert_array_equal(again[:3], first[[2, 3, 0]])
    np.testing.assert_allclose(first, classifier.predict(x), atol=1e-5)
    again[0] += 1.0  # the caller's copy: the memory is not changed through it
    np.testing.assert_array_equal(memo.predict(x[2:3]), first[2:3])
    with pytest.raises(ValueError, match="empty batch"):  # passed on to the defence, which refuses it
        memo.predict(x[:0])


def test_random_and_unknown_defences_are_not_memoised():
    uniform = as_art_classifier(
        helpers.tiny_classifier(), input_shape=(1, 8, 8), device="cpu",
        preprocessing_defences=[helpers.uniform_defence(dtype=torch.float32)],
    )  # fmt: skip
    assert not is_deterministic(uniform) and memoised_if_deterministic(uniform) is uniform
    plain = as_art_classifier(helpers.linear_model(side=8), input_shape=(1, 8, 8), device="cpu")
    assert is_deterministic(plain) and is_deterministic(_searched())


def test_square_on_the_memoised_copy_is_the_same_attack():
    classifier = _searched()
    x = helpers.image_batch(3, dtype=torch.float32, seed=4).numpy()
    y = classifier.predict(x).argmax(1)
    settings = AttackSettings(eps=0.1, square_queries=15, batch_size=8)
    from art.attacks.evasion import SquareAttack

    with seeded_phase(classifier, 0, "square"):
        plain = SquareAttack(classifier, norm=np.inf, eps=0.1, max_iter=15, p_init=0.8, batch_size=8).generate(x, y=y)
    with seeded_phase(classifier, 0, "square"):
        attack = build_attack("square", classifier, settings)
        memo = attack.estimator
        fast = attack.generate(x, y=y)
    assert isinstance(memo, MemoisedPyTorchClassifier) and memo.memo_rows > memo.computed_rows
    np.testing.assert_allclose(fast, plain, atol=1e-6)

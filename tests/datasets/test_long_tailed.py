# SPDX-License-Identifier: MIT
# Copyright (c) 2026 art_purify developers
"""Long-tailed subsampling."""

import numpy as np
import pytest

from art_purify.datasets import load_fashion_mnist, long_tailed, long_tailed_counts


def test_long_tailed_counts_profile():
    counts = long_tailed_counts(6000, 10, 100)
    assert counts[0] == 6000 and counts[-1] == 60
    assert np.all(np.diff(counts) <= 0)
    assert counts[5] == int(6000 * 100 ** (-5 / 9))


def test_long_tailed_subsample_is_seeded_and_exact():
    x, y = load_fashion_mnist()
    x_lt, y_lt, counts = long_tailed(x, y, imbalance_factor=10, n_max=80, seed=3)
    assert np.array_equal(np.bincount(y_lt, minlength=10), counts)
    assert counts[0] == 80 and counts[-1] == 8
    x2, y2, _ = long_tailed(x, y, imbalance_factor=10, n_max=80, seed=3)
    assert np.array_equal(x_lt, x2) and np.array_equal(y_lt, y2)
    x3, _, _ = long_tailed(x, y, imbalance_factor=10, n_max=80, seed=4)
    assert not np.array_equal(x_lt, x3)
    order = np.arange(10)[::-1]
    _, _, counts_rev = long_tailed(x, y, imbalance_factor=10, n_max=80, class_order=order)
    assert counts_rev[9] == 80 and counts_rev[0] == 8


def test_long_tailed_errors():
    x, y = load_fashion_mnist()
    with pytest.raises(ValueError, match="imbalance_factor"):
        long_tailed(x, y, imbalance_factor=0.5)
    with pytest.raises(ValueError, match="only .* are available"):
        long_tailed(x, y, imbalance_factor=10, n_max=5000)
    with pytest.raises(ValueError, match="permutation"):
        long_tailed(x, y, class_order=[0, 0, 1, 2, 3, 4, 5, 6, 7, 8])

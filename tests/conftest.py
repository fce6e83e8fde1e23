# SPDX-License-Identifier: MIT
# Copyright (c) 2026 art_purify developers
"""Shared fixtures: tiny seeded models and tiny IDX datasets (built by :mod:`tests.helpers`)."""

import numpy as np
import pytest

from tests import helpers


@pytest.fixture
def idx_dir(tmp_path):
    """A directory with tiny Fashion-MNIST-shaped IDX files: 256 train and 64 test images."""
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 256), ("t10k", 64)):
        labels = np.arange(n) % 10
        images = rng.integers(0, 60, size=(n, 28, 28))
        for c in range(10):  # a learnable signal: a bright bar whose row depends on the class
            images[labels == c, 2 + 2 * c : 4 + 2 * c, 4:24] = 250
        helpers.write_idx(tmp_path / f"{prefix}-images-idx3-ubyte.gz", images)
        helpers.write_idx(tmp_path / f"{prefix}-labels-idx1-ubyte.gz", labels)
    return tmp_path


@pytest.fixture
def tiny_unet():
    return helpers.tiny_unet()

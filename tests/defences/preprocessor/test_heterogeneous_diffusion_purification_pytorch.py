# SPDX-License-Identifier: MIT
# Copyright (c) 2026 art_purify developers
"""Heterogeneous diffusion purification: exact gradients, the saliency mask and the noise-level map."""

import torch

from tests.helpers import directional_check, fixed_mask, hetero_defence, image_batch


def test_heterogeneous_exact_gradient_matches_finite_differences():
    directional_check(hetero_defence(fixed_mask(), gradient="exact"), image_batch())


def test_noise_level_map_and_mask_are_exposed():
    defence = hetero_defence(dtype=torch.float32)
    x = image_batch(2, torch.float32)
    mask = defence.saliency_mask(x)
    levels = defence.noise_level_map(x)
    assert mask.shape == (2, 1, 8, 8) and set(mask.unique().tolist()) <= {0.0, 1.0}
    assert 0 < mask.mean() < 1
    assert set(levels.unique().tolist()) == {100.0, 200.0}

# SPDX-License-Identifier: MIT
# Copyright (c) 2026 art_purify developers
"""Uniform (DiffPure-style) diffusion purification: exact gradients against finite differences."""

import pytest

from tests.helpers import (
    directional_check,
    image_batch,
    uniform_defence,
)


@pytest.mark.parametrize("sampler", ["ddim", "ddpm"])
def test_uniform_exact_gradient_matches_finite_differences(sampler):
    directional_check(uniform_defence(sampler=sampler, gradient="exact"), image_batch())

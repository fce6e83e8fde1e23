# SPDX-License-Identifier: MIT
# Copyright (c) 2026 art_purify developers
"""The heterogeneous sampler: both noise levels reach the output."""

import pytest
import torch

from art_purify.diffusion import DiffusionSchedule
from art_purify.diffusion.purification import heterogeneous_purify


def _region_stds(grid, n=400):
    """Final noise std of the salient (left) and other (right) halves under a noise model that removes nothing."""
    schedule = DiffusionSchedule()
    zero_model = lambda x, t: torch.zeros_like(x)  # noqa: E731
    xd = torch.zeros(n, 1, 8, 8, dtype=torch.float64)
    mask = torch.zeros(1, 1, 8, 8, dtype=torch.float64)
    mask[..., :, :4] = 1.0
    out = heterogeneous_purify(zero_model, xd, mask, schedule, 200, 100, grid, 10, torch.Generator().manual_seed(0))
    return out[..., :, :4].std().item(), out[..., :, 4:].std().item()


@pytest.mark.parametrize("grid", [200, 50, 20])
def test_both_noise_levels_reach_the_output(grid):
    """The salient region must carry the HIGH level and the rest a clearly lower one (the official code once shipped
    a defence that silently used one level). Holds on the defence grid and on any attack grid whose stage 1 has more
    than one step."""
    salient, other = _region_stds(grid)
    assert other < 0.7 * salient
    assert other > 0.0


def test_attack_grid_10_has_a_single_stage1_step_where_both_regions_share_the_level():
    """Documented property of the paper's two-call surrogate (200 -> 100 -> 0): its one stage-1 step re-anchors the
    non-salient pixels at t = 200, the level of the salient ones, so the two regions are noised alike there."""
    salient, other = _region_stds(10, n=2000)
    assert other == pytest.approx(salient, rel=0.05)

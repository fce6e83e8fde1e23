# SPDX-License-Identifier: MIT
# Copyright (c) 2026 art_purify developers
"""Expectation over transformation (EOT) for random ART preprocessors: one expansion rule for every defence."""

from __future__ import annotations

from typing import Optional, Tuple

import torch


def is_loss_gradient_call(x: torch.Tensor, y: Optional[torch.Tensor]) -> bool:
    """
    Whether ART is calling ``forward`` for a loss gradient: gradients on, ``x`` requiring them, labels given.

    ``predict`` and ``compute_loss`` run without gradients and ``class_gradient`` passes no labels: those calls keep
    one output row per input.
    """
    return y is not None and torch.is_grad_enabled() and x.requires_grad


def expand_for_eot(
    x: torch.Tensor, y: Optional[torch.Tensor], nb_eot: int
) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
    """
    Repeat every input (and its label) ``nb_eot`` times, consecutively, for a loss-gradient call.

    ART's loss is the mean over the rows, so the gradient it returns for an input is the mean of the ``nb_eot``
    single-sample gradients: the EOT gradient. Other calls (see :func:`is_loss_gradient_call`) and ``nb_eot == 1``
    return ``x`` and ``y`` unchanged.

    :param x: ``(N, ...)`` inputs.
    :param y: ``(N, ...)`` labels or ``None``.
    :param nb_eot: Samples per input.
    :return: ``(x, y)``, ``(N * nb_eot, ...)`` each when expanded.
    """
    if nb_eot > 1 and y is not None and is_loss_gradient_call(x, y):
        return x.repeat_interleave(nb_eot, dim=0), y.repeat_interleave(nb_eot, dim=0)
    return x, y

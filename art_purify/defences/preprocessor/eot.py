# SPDX-License-Identifier: MIT
# Copyright (c) 2026 art_purify developers
"""Randomness of the random ART preprocessors, in one place: the seeded noise stream of a defence and the expansion
rule of expectation over transformation (EOT)."""

from __future__ import annotations

import secrets
from typing import Dict, Optional, Tuple

import torch


class SeededStreamMixin:
    """
    The random stream of a stochastic defence: one ``torch.Generator`` per device, seeded from the defence's ``seed``
    (a fresh random seed when it is ``None``), so that with a seed the calls after construction (or after
    :meth:`reset_generator`) replay the same draws, and the global RNG is never touched. A successful ``set_params``
    restarts the stream (with :class:`~art_purify.utils.AtomicParamsMixin`).
    """

    seed: Optional[int] = None
    _generators: Dict[str, torch.Generator]

    def reset_generator(self) -> None:
        """Restart the noise stream: with a ``seed`` the next calls replay the same noise as after construction."""
        self._generators = {}

    def _generator(self, device: torch.device) -> torch.Generator:
        if not hasattr(self, "_generators"):
            self._generators = {}
        key = str(device)
        if key not in self._generators:
            generator = torch.Generator(device=device)
            generator.manual_seed(int(self.seed) if self.seed is not None else secrets.randbits(63))
            self._generators[key] = generator
        return self._generators[key]

    def _after_set_params(self) -> None:
        """A successful ``set_params`` restarts the noise stream (see :meth:`reset_generator`)."""
        self.reset_generator()


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

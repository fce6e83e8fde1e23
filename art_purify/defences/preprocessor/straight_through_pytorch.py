# SPDX-License-Identifier: MIT
# Copyright (c) 2026 art_purify developers
"""Straight-through (BPDA) gradients for any ART PyTorch preprocessor: the reference attack on a defence."""

from __future__ import annotations

from typing import Optional, Tuple

import numpy as np
import torch
from art.defences.preprocessor.preprocessor import PreprocessorPyTorch

from art_purify.defences.preprocessor.eot import expand_for_eot
from art_purify.utils import AtomicParamsMixin


def straight_through(x: torch.Tensor, purified: torch.Tensor) -> torch.Tensor:
    """
    BPDA's one formula: the value of ``purified``, the gradient of the identity, ``x + (purified - x).detach()``, in
    ``purified``'s dtype (the defence decides the output dtype). Every BPDA of the package goes through it.
    """
    x = x.to(purified.dtype)
    return x + (purified - x).detach()


class StraightThroughPyTorch(AtomicParamsMixin, PreprocessorPyTorch):
    """
    BPDA (Athalye et al., 2018) around any ART PyTorch preprocessor: the output VALUE is the wrapped defence's
    output, the GRADIENT is the identity, ``out = x + (defence(x) - x).detach()``.

    | Paper link: https://arxiv.org/abs/1802.00420

    An attacker that differentiates this preprocessor gets the gradient of the undefended classifier at the purified
    point. That is a reference attack only: a defence must be judged by its real gradient (or a documented surrogate);
    a BPDA attack that beats the real gradient points at masked gradients.

    With ``nb_eot > 1`` a loss-gradient call (gradients on, labels given) purifies every input ``nb_eot`` times
    (:func:`~art_purify.defences.preprocessor.eot.expand_for_eot`), so the attack follows the mean identity
    gradient over purified samples (BPDA-EOT). The wrapped defence is always called without gradients and with one
    row per input.

    Shape: whatever the wrapped defence takes; the output has the wrapped defence's output dtype.

    Example::

        bpda = StraightThroughPyTorch(defence, nb_eot=4)
        classifier = PyTorchClassifier(model, loss, input_shape, nb_classes, preprocessing_defences=[bpda])

    :param defence: The ART ``PreprocessorPyTorch`` whose gradient is replaced.
    :param nb_eot: Purifications per input in a loss-gradient call.
    :param apply_fit: Apply in ``fit`` (default: as the wrapped defence).
    :param apply_predict: Apply in ``predict`` (default: as the wrapped defence).
    :param device_type: ``"gpu"`` or ``"cpu"`` for numpy calls (default: the wrapped defence's device).
    """

    params = ["nb_eot"]

    def __init__(
        self,
        defence: PreprocessorPyTorch,
        nb_eot: int = 1,
        apply_fit: Optional[bool] = None,
        apply_predict: Optional[bool] = None,
        device_type: Optional[str] = None,
    ) -> None:
        if not isinstance(defence, PreprocessorPyTorch):
            raise TypeError(f"defence must be an ART PreprocessorPyTorch, got {type(defence).__name__}.")
        if device_type is None:
            device_type = "gpu" if defence.device.type == "cuda" else "cpu"
        super().__init__(
            device_type=device_type,
            is_fitted=True,
            apply_fit=defence.apply_fit if apply_fit is None else apply_fit,
            apply_predict=defence.apply_predict if apply_predict is None else apply_predict,
        )
        self.defence = defence
        self.nb_eot = nb_eot
        self._check_params()

    def _check_params(self) -> None:
        if isinstance(self.nb_eot, bool) or not isinstance(self.nb_eot, (int, np.integer)) or self.nb_eot <= 0:
            raise ValueError(f"nb_eot must be a positive integer, got {self.nb_eot!r}.")

    def forward(self, x: torch.Tensor, y: Optional[torch.Tensor] = None) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        """
        The wrapped defence's output with an identity gradient.

        :param x: Inputs as the wrapped defence takes them.
        :param y: Labels or ``None``; repeated with ``x`` in an EOT-expanded call.
        :return: ``(purified, y)``.
        """
        x, y = expand_for_eot(x, y, self.nb_eot)
        with torch.no_grad():
            purified, _ = self.defence.forward(x.detach(), None)
        return straight_through(x, purified), y

# SPDX-License-Identifier: MIT
# Copyright (c) 2026 art_purify developers
"""Wrapping any torch classifier (ours or a user's) in ART's PyTorchClassifier: below training and evaluation."""

from __future__ import annotations

from typing import Any, Optional, Sequence, Tuple, Union

import torch

from art_purify.utils import resolve_device


def as_art_classifier(
    model: torch.nn.Module,
    input_shape: Sequence[int] = (1, 28, 28),
    nb_classes: int = 10,
    clip_values: Tuple[float, float] = (0.0, 1.0),
    device: Optional[Union[str, torch.device]] = None,
    preprocessing_defences: Optional[Sequence[Any]] = None,
    channels_first: bool = True,
) -> Any:
    """
    Wrap a logits-returning ``torch.nn.Module`` in :class:`art.estimators.classification.PyTorchClassifier`.

    The model is put in eval mode with its parameters' gradients off (ART's attacks only need input gradients).

    :param device: ``None``/``"auto"`` (CUDA if available), ``"cpu"`` or ``"cuda[:N]"``.
    :param preprocessing_defences: ART preprocessing defences, e.g. art_purify's purifiers (built with the same
                                   ``channels_first``).
    :param channels_first: Whether ``model`` takes ``(N, C, H, W)`` (default) or ``(N, H, W, C)``; ``input_shape``
                           is given in that layout.
    :return: An ART ``PyTorchClassifier`` with cross-entropy loss.
    """
    from art.estimators.classification import PyTorchClassifier

    dev = resolve_device(None if device is None else str(device))
    model.eval().requires_grad_(False)
    return PyTorchClassifier(
        model=model,
        loss=torch.nn.CrossEntropyLoss(),
        input_shape=tuple(input_shape),
        nb_classes=int(nb_classes),
        clip_values=tuple(clip_values),
        preprocessing_defences=preprocessing_defences,
        channels_first=channels_first,
        device_type="gpu" if dev.type == "cuda" else "cpu",
    )

# SPDX-License-Identifier: MIT
# Copyright (c) 2026 art_purify developers
"""A user's classifier as a user writes it (no art_purify base class, no ``stage_names`` attribute): the factory
that the command-line tests import with ``--classifier tests.own_models:TinyLeNet``."""

import torch
from torch import nn


class TinyLeNet(nn.Module):
    """A LeNet-5-shaped net for ``(N, in_channels, side, side)`` inputs, side a multiple of 4."""

    def __init__(self, in_channels: int = 1, num_classes: int = 10, side: int = 8, width: int = 4) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, width, 3, padding=1),
            nn.BatchNorm2d(width),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(width, 2 * width, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )
        self.head = nn.Linear(2 * width * (side // 4) ** 2, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).flatten(1))

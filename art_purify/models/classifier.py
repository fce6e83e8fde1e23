# SPDX-License-Identifier: MIT
# Copyright (c) 2026 art_purify developers
"""A small pre-activation-free ResNet for 1x28x28 images whose four stages are named modules."""

from __future__ import annotations

from typing import Dict, Sequence, Tuple

import torch
from torch import nn


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with batch norm and an identity (or 1x1) shortcut."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False), nn.BatchNorm2d(out_channels)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return torch.relu(out + self.shortcut(x))


class SmallResNet(nn.Module):
    """
    ResNet-style classifier for small grey-scale images (Fashion-MNIST by default).

    The four stages are the named modules ``stage1`` .. ``stage4`` (28, 14, 7 and 4 pixels wide for 28x28 input),
    listed in :attr:`stage_names`, so that saliency methods can hook their outputs as they hook the last block of
    each stage of a WRN or ResNet-50. Input: ``(N, in_channels, H, W)`` in [0, 1]; output: logits ``(N, classes)``.

    :param in_channels: Number of input channels.
    :param num_classes: Number of classes.
    :param widths: Channels of the four stages.
    :param blocks: Residual blocks per stage.
    """

    stage_names: Tuple[str, ...] = ("stage1", "stage2", "stage3", "stage4")

    def __init__(
        self,
        in_channels: int = 1,
        num_classes: int = 10,
        widths: Sequence[int] = (16, 32, 64, 128),
        blocks: Sequence[int] = (1, 1, 1, 1),
    ):
        super().__init__()
        if len(widths) != 4 or len(blocks) != 4:
            raise ValueError("widths and blocks must each have 4 entries (one per stage).")
        self.config: Dict[str, object] = {
            "in_channels": int(in_channels),
            "num_classes": int(num_classes),
            "widths": [int(w) for w in widths],
            "blocks": [int(b) for b in blocks],
        }
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, widths[0], 3, padding=1, bias=False), nn.BatchNorm2d(widths[0]), nn.ReLU()
        )
        channels = widths[0]
        for i, (width, count) in enumerate(zip(widths, blocks)):
            layers = []
            for j in range(count):
                layers.append(BasicBlock(channels, width, stride=2 if (i > 0 and j == 0) else 1))
                channels = width
            setattr(self, self.stage_names[i], nn.Sequential(*layers))
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.stem(x)
        for name in self.stage_names:
            out = getattr(self, name)(out)
        return self.head(out)

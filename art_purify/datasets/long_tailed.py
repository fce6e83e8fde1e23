# SPDX-License-Identifier: MIT
# Copyright (c) 2026 art_purify developers
"""Long-tailed subsampling (the exponential profile used for CIFAR-10-LT / CIFAR-100-LT)."""

from __future__ import annotations

from typing import Optional, Tuple

import numpy as np
import torch


def long_tailed_counts(n_max: int, num_classes: int, imbalance_factor: float) -> np.ndarray:
    """
    Per-class sample counts ``n_i = floor(n_max * imbalance_factor ** (-i / (num_classes - 1)))``.

    Class 0 keeps ``n_max`` samples and the last class ``n_max / imbalance_factor`` (Cui et al., 2019; Cao et al.,
    2019).

    :param n_max: Samples kept for the most frequent class.
    :param num_classes: Number of classes.
    :param imbalance_factor: Ratio between the largest and the smallest class, at least 1.
    :return: int64 array of counts, non-increasing.
    """
    if int(n_max) != n_max or n_max <= 0:
        raise ValueError(f"n_max must be a positive integer, got {n_max!r}.")
    if int(num_classes) != num_classes or num_classes < 2:
        raise ValueError(f"num_classes must be an integer of at least 2, got {num_classes!r}.")
    if not np.isfinite(imbalance_factor) or imbalance_factor < 1:
        raise ValueError(f"imbalance_factor must be a finite number >= 1, got {imbalance_factor!r}.")
    exponents = np.arange(num_classes) / (num_classes - 1)
    return np.floor(n_max * float(imbalance_factor) ** (-exponents)).astype(np.int64)


def long_tailed(
    x: np.ndarray,
    y: np.ndarray,
    imbalance_factor: float = 100.0,
    n_max: Optional[int] = None,
    class_order: Optional[np.ndarray] = None,
    seed: int = 0,
) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """
    Subsample a balanced dataset into a long-tailed one with exponentially decaying class sizes.

    :param x: Inputs, first axis indexed like ``y``.
    :param y: Integer labels in ``0 .. C-1``.
    :param imbalance_factor: Largest over smallest class size (100 for the usual "-LT" benchmarks).
    :param n_max: Size of the largest class; by default the size of the smallest class in ``y``.
    :param class_order: Classes from most to least frequent; by default ``0, 1, ..., C-1``.
    :param seed: Seed of the ``torch.Generator`` that picks which samples of each class are kept.
    :return: ``(x_lt, y_lt, counts)`` where ``counts[c]`` is the number of samples kept for class ``c``.
    """
    y = np.asarray(y)
    if len(x) != len(y):
        raise ValueError(f"x has {len(x)} examples but y has {len(y)}.")
    if y.ndim != 1 or y.size == 0 or not np.issubdtype(y.dtype, np.integer) or y.min() < 0:
        raise ValueError("y must be a non-empty 1-D array of non-negative integer labels.")
    num_classes = int(y.max()) + 1
    available = np.bincount(y, minlength=num_classes)
    if class_order is None:
        class_order = np.arange(num_classes)
    class_order = np.asarray(class_order)
    if sorted(class_order.tolist()) != list(range(num_classes)):
        raise ValueError(f"class_order must be a permutation of 0..{num_classes - 1}.")
    if n_max is None:
        n_max = int(available.min())
    per_rank = long_tailed_counts(n_max, num_classes, imbalance_factor)
    counts = np.zeros(num_classes, dtype=np.int64)
    counts[class_order] = per_rank
    short = np.nonzero(counts > available)[0]
    if short.size:
        c = int(short[0])
        raise ValueError(f"class {c} needs {counts[c]} samples but only {available[c]} are available; lower n_max.")
    generator = torch.Generator().manual_seed(int(seed))
    keep = []
    for c in range(num_classes):
        idx = np.nonzero(y == c)[0]
        order = torch.randperm(len(idx), generator=generator).numpy()
        keep.append(np.sort(idx[order[: counts[c]]]))
    keep_idx = np.sort(np.concatenate(keep))
    return x[keep_idx], y[keep_idx], counts

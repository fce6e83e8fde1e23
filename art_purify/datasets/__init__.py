# SPDX-License-Identifier: MIT
# Copyright (c) 2026 art_purify developers
"""Datasets: Fashion-MNIST (embedded subset, IDX files, or explicit download), a user's own data (``.npz``, IDX
files, image folders) and long-tailed subsampling."""

from art_purify.datasets.fashion_mnist import (
    CLASSES,
    DEBIAN_DIR,
    DatasetError,
    default_source,
    load_fashion_mnist,
    read_idx,
)
from art_purify.datasets.files import check_range, has_split, load_dataset, load_idx_dir, load_image_folder, load_npz
from art_purify.datasets.long_tailed import long_tailed, long_tailed_counts

__all__ = [
    "CLASSES",
    "DEBIAN_DIR",
    "DatasetError",
    "check_range",
    "default_source",
    "has_split",
    "load_dataset",
    "load_fashion_mnist",
    "load_idx_dir",
    "load_image_folder",
    "load_npz",
    "long_tailed",
    "long_tailed_counts",
    "read_idx",
]

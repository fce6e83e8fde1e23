# SPDX-License-Identifier: MIT
# Copyright (c) 2026 art_purify developers
"""Fashion-MNIST loading: an embedded test subset, the original IDX files, or torchvision's download.

Fashion-MNIST (Xiao, Rasul and Vollgraf, 2017, https://github.com/zalandoresearch/fashion-mnist) is
(c) Zalando SE and released under the MIT licence. The package ships the first 1,000 test images
(see ``docs/data.md``).
"""

from __future__ import annotations

import gzip
import logging
import os
import struct
from importlib import resources
from pathlib import Path
from typing import Any, Dict, Optional, Tuple, Union

import numpy as np

logger = logging.getLogger(__name__)

#: Where Debian's ``dataset-fashion-mnist`` package puts the original IDX files.
DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")

#: Name of the compressed subset shipped inside the package.
EMBEDDED_FILE = "fashion_mnist_test_first1000.npz"

#: Number of test images shipped inside the package.
EMBEDDED_SIZE = 1000

CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)

_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}

_HOW_TO_GET = (
    "Install the original IDX files with `apt-get install dataset-fashion-mnist` (Debian puts them in "
    f"{DEBIAN_DIR}), or pass source='download' to fetch them with torchvision explicitly."
)

# IDX type codes (the third byte of the magic number) and the numpy dtypes they stand for.
_IDX_TYPES: Dict[int, Any] = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


class DatasetError(ValueError):
    """A data file is missing, truncated or not what it claims to be."""


def read_idx(path: Union[str, os.PathLike]) -> np.ndarray:
    """
    Read one IDX file (optionally gzip-compressed) into a numpy array, validating header and size.

    :param path: Path to an IDX file, plain or ``.gz``.
    :return: The array with the shape stated in the file header.
    :raises DatasetError: If the file is missing, truncated, corrupt or not an IDX file.
    """
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"IDX file {path} does not exist. {_HOW_TO_GET}")
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as handle:
                raw = handle.read()
        else:
            raw = path.read_bytes()
    except (OSError, EOFError, gzip.BadGzipFile) as err:
        raise DatasetError(f"IDX file {path} is corrupt or truncated (could not decompress: {err}).") from err
    if len(raw) < 4:
        raise DatasetError(f"IDX file {path} is truncated: {len(raw)} bytes, not even a header.")
    zero1, zero2, type_code, ndim = struct.unpack(">BBBB", raw[:4])
    if zero1 != 0 or zero2 != 0 or type_code not in _IDX_TYPES or ndim == 0:
        raise DatasetError(f"{path} is not an IDX file (bad magic number {raw[:4].hex()}).")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DatasetError(f"IDX file {path} is truncated inside its header.")
    shape = struct.unpack(">" + "I" * ndim, raw[4:header])
    dtype = np.dtype(_IDX_TYPES[type_code])
    expected = int(np.prod(shape)) * dtype.itemsize
    body = len(raw) - header
    if body != expected:
        state = "truncated" if body < expected else "longer than its header says"
        raise DatasetError(
            f"IDX file {path} is {state}: header announces shape {shape} ({expected} bytes), found {body} bytes."
        )
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)


def first_n(x: np.ndarray, y: np.ndarray, n: Optional[int], source: Any) -> Tuple[np.ndarray, np.ndarray]:
    """The first ``n`` examples (all when ``n`` is ``None``); ``ValueError`` on a bad ``n`` or one above the count."""
    if n is None:
        return x, y
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n <= 0:
        raise ValueError(f"n must be a positive integer, got {n!r}.")
    if n > len(y):
        raise ValueError(f"n={n} is larger than the {len(y)} examples available from source {str(source)!r}.")
    return x[:n], y[:n]


def _find(directory: Path, stem: str) -> Path:
    for name in (stem + ".gz", stem, stem.replace("-idx", ".idx")):
        candidate = directory / name
        if candidate.is_file():
            return candidate
    raise DatasetError(f"{directory} has no {stem}.gz (nor {stem}). {_HOW_TO_GET}")


def _load_idx_dir(directory: Path, split: str) -> Tuple[np.ndarray, np.ndarray]:
    if not directory.is_dir():
        raise DatasetError(f"Fashion-MNIST directory {directory} does not exist. {_HOW_TO_GET}")
    images = read_idx(_find(directory, _FILES[split][0]))
    labels = read_idx(_find(directory, _FILES[split][1]))
    if images.ndim != 3 or images.shape[1:] != (28, 28) or images.dtype != np.uint8:
        raise DatasetError(
            f"{directory}: images have shape {images.shape} and dtype {images.dtype}, not Nx28x28 uint8."
        )
    if labels.ndim != 1 or labels.shape[0] != images.shape[0]:
        raise DatasetError(f"{directory}: {labels.shape} labels for {images.shape[0]} images.")
    if labels.size and labels.max() >= len(CLASSES):
        raise DatasetError(f"{directory}: label {int(labels.max())} is not a Fashion-MNIST class (0-9).")
    return images, labels


def _load_embedded(split: str) -> Tuple[np.ndarray, np.ndarray]:
    if split != "test":
        raise DatasetError(
            "The embedded Fashion-MNIST subset holds only test images (the first "
            f"{EMBEDDED_SIZE}); for split='{split}' pass source=<directory of IDX files>. {_HOW_TO_GET}"
        )
    with resources.files("art_purify.datasets").joinpath("data", EMBEDDED_FILE).open("rb") as handle:
        with np.load(handle, allow_pickle=False) as data:
            return data["images"], data["labels"]


def _load_download(split: str, root: Path) -> Tuple[np.ndarray, np.ndarray]:
    from torchvision.datasets import FashionMNIST  # imported here: only on explicit request

    dataset = FashionMNIST(str(root), train=(split == "train"), download=True)
    return dataset.data.numpy(), dataset.targets.numpy()


def default_source() -> str:
    """Return Debian's IDX directory when it holds the data, else ``"embedded"``."""
    if (DEBIAN_DIR / (_FILES["test"][0] + ".gz")).is_file():
        return str(DEBIAN_DIR)
    return "embedded"


def load_fashion_mnist(
    split: str = "test",
    source: Optional[Union[str, os.PathLike]] = "embedded",
    n: Optional[int] = None,
    download_root: Union[str, os.PathLike] = "~/.cache/art_purify",
) -> Tuple[np.ndarray, np.ndarray]:
    """
    Load Fashion-MNIST as float32 images in [0, 1], channels first, and int64 labels.

    :param split: ``"test"`` or ``"train"``.
    :param source: ``"embedded"`` (the first 1,000 test images shipped in the package, the default), a directory
                   holding the original IDX files (``.gz`` or not; Debian's ``dataset-fashion-mnist`` puts them in
                   ``/usr/share/datasets/fashion-mnist``), ``"auto"`` (that directory when present, else embedded), or
                   ``"download"`` (torchvision's downloader into ``download_root``; the only source that touches
                   the network, and only when asked).
    :param n: Keep only the first ``n`` examples (in dataset order).
    :param download_root: Where ``source="download"`` stores the files.
    :return: ``(x, y)``: ``x`` of shape ``(N, 1, 28, 28)``, float32 in [0, 1]; ``y`` of shape ``(N,)``, int64.
    :raises ValueError: On an unknown split or a bad ``n``; :class:`DatasetError` (a ``ValueError``) on missing or
                        corrupt files.
    """
    if split not in _FILES:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}.")
    if source is None or source == "auto":
        source = default_source()
    if source == "embedded":
        images, labels = _load_embedded(split)
    elif source == "download":
        images, labels = _load_download(split, Path(download_root).expanduser())
    else:
        images, labels = _load_idx_dir(Path(source).expanduser(), split)
    images, labels = first_n(images, labels, n, source)
    x = (images.astype(np.float32) / 255.0)[:, None, :, :]
    y = labels.astype(np.int64)
    logger.debug("Loaded Fashion-MNIST %s from %s: %d examples", split, source, len(y))
    return x, y

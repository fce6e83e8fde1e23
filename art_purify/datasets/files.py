# SPDX-License-Identifier: MIT
# Copyright (c) 2026 art_purify developers
"""A user's own image data: an ``.npz`` of arrays, a directory of IDX files (MNIST-style) or an image folder with
one sub-folder per class, each returned as float32 ``(N, C, H, W)`` images and int64 labels.

:func:`load_dataset` takes any of them, and the Fashion-MNIST sources of
:func:`~art_purify.datasets.load_fashion_mnist` (``"embedded"``, ``"auto"``, ``"download"``, Debian's directory), so
that every command of the package reads the same ``--data`` values.
"""

from __future__ import annotations

import os
import warnings
import zipfile
import zlib
from pathlib import Path
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np

from art_purify.datasets.fashion_mnist import (
    _FILES,
    _HOW_TO_GET,
    DatasetError,
    _find,
    first_n,
    load_fashion_mnist,
    read_idx,
)

PathLike = Union[str, os.PathLike]

#: File name prefixes of the IDX files of each split (MNIST and Fashion-MNIST use ``train`` and ``t10k``).
IDX_PREFIXES = {"train": ("train",), "test": ("t10k", "test")}
#: Keys of an ``.npz`` file, in the order they are looked for: per split first, then the split-free names.
NPZ_KEYS = {
    "train": (("x_train", "y_train"), ("x", "y"), ("images", "labels")),
    "test": (("x_test", "y_test"), ("x", "y"), ("images", "labels")),
}
#: Suffixes read as images in an image folder.
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")


def _to_float_nchw(images: np.ndarray, origin: str) -> np.ndarray:
    """uint8 ``(N, H, W)``, ``(N, H, W, C)`` or ``(N, C, H, W)`` -> float32 in [0, 1]; float arrays keep their values
    (checked against ``clip_values`` by the caller) and are only brought to channels first."""
    if images.ndim == 3:
        images = images[:, None]
    if images.ndim != 4:
        raise DatasetError(
            f"{origin}: images have shape {images.shape}; expected (N, H, W), (N, C, H, W) or (N, H, W, C)."
        )
    if images.shape[1] not in (1, 3, 4) and images.shape[-1] in (1, 3, 4):
        images = images.transpose(0, 3, 1, 2)  # channels last -> first
    elif images.shape[1] not in (1, 3, 4):
        raise DatasetError(f"{origin}: cannot tell the channel axis of shape {images.shape} (1, 3 or 4 channels).")
    if images.dtype == np.uint8:
        return np.ascontiguousarray(images, dtype=np.float32) / np.float32(255.0)
    if not np.issubdtype(images.dtype, np.floating):
        raise DatasetError(f"{origin}: images have dtype {images.dtype}; expected uint8 (0-255) or float.")
    images = np.ascontiguousarray(images, dtype=np.float32)
    if not np.isfinite(images).all():
        raise DatasetError(f"{origin}: images contain NaN or infinite values.")
    return images


def _labels(labels: np.ndarray, n: int, origin: str) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.ndim == 2 and labels.shape[1] > 1:  # one-hot, as ART uses
        labels = labels.argmax(1)
    labels = labels.reshape(-1) if labels.ndim == 2 and labels.shape[1] == 1 else labels
    if labels.ndim != 1 or len(labels) != n:
        raise DatasetError(f"{origin}: labels have shape {labels.shape} for {n} images.")
    if not (np.issubdtype(labels.dtype, np.integer) or np.issubdtype(labels.dtype, np.floating)):
        raise DatasetError(f"{origin}: labels must be integers, got dtype {labels.dtype}.")
    if not np.issubdtype(labels.dtype, np.integer):
        if not np.all(np.isfinite(labels)) or not np.all(np.equal(np.mod(labels, 1), 0)):
            raise DatasetError(f"{origin}: labels must be integers, got dtype {labels.dtype}.")
    labels = labels.astype(np.int64)
    if n and labels.min() < 0:
        raise DatasetError(f"{origin}: negative label {int(labels.min())}.")
    return labels


def load_npz(path: PathLike, split: str = "test") -> Tuple[np.ndarray, np.ndarray]:
    """Images and labels of an ``.npz`` file: keys ``x_<split>``/``y_<split>``, ``x``/``y`` or ``images``/``labels``
    (read without pickle)."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"data file {path} does not exist.")
    try:
        loaded = np.load(path, allow_pickle=False)
        if not isinstance(loaded, np.lib.npyio.NpzFile):
            raise DatasetError(f"{path} holds one array (.npy), not the images and labels of an .npz (np.savez).")
        with loaded as data:
            keys = set(data.files)
            for x_key, y_key in NPZ_KEYS[split]:
                if x_key in keys and y_key in keys:
                    x, y = data[x_key], data[y_key]
                    break
            else:
                wanted = " or ".join(f"{a}/{b}" for a, b in NPZ_KEYS[split])
                raise DatasetError(f"{path} holds the arrays {sorted(keys)}; expected {wanted}.")
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as err:
        if isinstance(err, DatasetError):
            raise
        raise DatasetError(f"{path} is not a readable .npz file without pickled objects: {err}") from err
    x = _to_float_nchw(x, str(path))
    return x, _labels(y, len(x), str(path))


def _idx_file(directory: Path, prefixes: Sequence[str], kind: str) -> Optional[Path]:
    for prefix in prefixes:
        try:  # the Fashion-MNIST loader's name variants: .gz, plain, ".idx"
            return _find(directory, f"{prefix}-{kind}-idx{'3' if kind == 'images' else '1'}-ubyte")
        except DatasetError:
            continue
    return None


def is_idx_dir(directory: PathLike, split: str = "test") -> bool:
    """Whether ``directory`` holds the IDX images of ``split`` (``<prefix>-images-idx3-ubyte[.gz]``)."""
    return _idx_file(Path(directory), IDX_PREFIXES[split], "images") is not None


def load_idx_dir(directory: PathLike, split: str = "test") -> Tuple[np.ndarray, np.ndarray]:
    """Images and labels from MNIST-style IDX files (``train-*`` or ``t10k-*``/``test-*``, ``.gz`` or not), of any
    image size."""
    directory = Path(directory)
    images_path = _idx_file(directory, IDX_PREFIXES[split], "images")
    labels_path = _idx_file(directory, IDX_PREFIXES[split], "labels")
    if images_path is None or labels_path is None:
        names = " or ".join(f"{p}-images-idx3-ubyte[.gz] and {p}-labels-idx1-ubyte[.gz]" for p in IDX_PREFIXES[split])
        raise DatasetError(f"{directory} has no IDX files of the {split} split ({names}).")
    images = read_idx(images_path)
    x = _to_float_nchw(images, str(images_path))
    return x, _labels(read_idx(labels_path), len(x), str(labels_path))


def load_image_folder(directory: PathLike) -> Tuple[np.ndarray, np.ndarray, List[str]]:
    """
    An image folder with one sub-folder per class (torchvision's ``ImageFolder`` layout): class ``k`` is the ``k``-th
    sub-folder in sorted (string) order, as torchvision numbers them (folders ``0``..``10`` sort as ``0, 1, 10, 2``;
    a warning says so). All images must have one size; greyscale folders give one channel, others RGB; 16-bit
    images are refused. The examples come in a fixed shuffled order (``numpy`` generator seeded with 0), so that the
    first ``n`` of them cover the classes.

    :return: ``(x, y, class_names)``.
    """
    from PIL import Image

    directory = Path(directory)
    classes = sorted(p.name for p in directory.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise DatasetError(f"{directory} has no class sub-folders (expected one folder of images per class).")
    if all(name.isdigit() for name in classes) and classes != sorted(classes, key=int):
        warnings.warn(
            f"{directory}: class folders are numbered in sorted string order as torchvision does "
            f"({', '.join(f'{name} -> {k}' for k, name in enumerate(classes[:4]))}, ...), not by their numbers.",
            stacklevel=2,
        )
    files = [
        (f, k)
        for k, name in enumerate(classes)
        for f in sorted((directory / name).iterdir())
        if f.suffix.lower() in IMAGE_SUFFIXES
    ]
    if not files:
        raise DatasetError(f"{directory}: its class folders hold no images ({', '.join(IMAGE_SUFFIXES)}).")
    arrays = []
    for path, _ in files:
        try:
            with Image.open(path) as image:
                if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
                    raise DatasetError(f"{path}: {image.mode} images (16-bit or float) are not read; save 8-bit.")
                arrays.append(
                    np.asarray(image.convert("L") if image.mode in ("L", "1", "I;16") else image.convert("RGB"))
                )
        except OSError as err:
            raise DatasetError(f"{path} is not a readable image: {err}") from err
    if any(a.ndim != arrays[0].ndim for a in arrays):  # a mix of greyscale and colour: colour for all
        arrays = [np.repeat(a[..., None], 3, -1) if a.ndim == 2 else a for a in arrays]
    shapes = {a.shape for a in arrays}
    if len(shapes) > 1:
        raise DatasetError(
            f"{directory}: the images have different sizes {sorted(shapes)[:4]}; resize them to one size."
        )
    images = np.stack(arrays)
    images = images.transpose(0, 3, 1, 2) if images.ndim == 4 else images[:, None]
    x = np.ascontiguousarray(images, dtype=np.float32) / np.float32(255.0)
    y = np.array([k for _, k in files], dtype=np.int64)
    order = np.random.default_rng(0).permutation(len(y))  # fixed: the first n examples cover the classes
    return x[order], y[order], classes


def load_dataset(
    source: Optional[PathLike] = "embedded", split: str = "test", n: Optional[int] = None
) -> Tuple[np.ndarray, np.ndarray]:
    """
    Load images and labels from any data source the package's commands accept.

    :param source: ``"embedded"``, ``"auto"``, ``"download"`` or a Fashion-MNIST IDX directory (as
                   :func:`~art_purify.datasets.load_fashion_mnist`); an ``.npz`` file (keys ``x``/``y``, or
                   ``x_train``/``y_train`` and ``x_test``/``y_test``; uint8 images are scaled to [0, 1], float images
                   kept as they are; channels first or last); a directory of MNIST-style IDX files of any size; or an
                   image folder with one sub-folder per class.
    :param split: ``"test"`` or ``"train"`` (the IDX prefix or ``.npz`` key; an image folder is one split).
    :param n: Keep only the first ``n`` examples.
    :return: ``(x, y)``: float32 ``(N, C, H, W)`` and int64 ``(N,)``.
    :raises DatasetError: (a ``ValueError``) on a missing, unreadable or malformed source, naming it.
    """
    if split not in _FILES:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}.")
    if source is None or str(source) in ("embedded", "auto", "download"):
        return load_fashion_mnist(split, source=source, n=n)
    path = Path(source).expanduser()
    if path.suffix == ".npz" or path.is_file():
        x, y = load_npz(path, split)
    elif not path.is_dir():
        raise DatasetError(
            f"data source {path} does not exist (expected an .npz file, a directory of IDX files, an image folder, "
            f"or 'embedded'). For Fashion-MNIST: {_HOW_TO_GET}"
        )
    elif is_idx_dir(path, split):
        x, y = load_idx_dir(path, split)
    elif any(p.is_dir() for p in path.iterdir()):
        x, y, _ = load_image_folder(path)
    else:
        x, y = load_fashion_mnist(split, source=path)  # its message names the missing Fashion-MNIST files
    if len(x) == 0:
        raise DatasetError(f"data source {path} holds no examples.")
    return first_n(x, y, n, source)


def has_split(source: Optional[PathLike], split: str) -> bool:
    """Whether ``source`` holds a split of its own named ``split``: IDX files with its prefix, or ``x_<split>`` in an
    ``.npz`` (an ``.npz`` of plain ``x``/``y`` and an image folder are one undivided set: no)."""
    if source is None or str(source) in ("auto", "download"):
        return True
    if str(source) == "embedded":
        return split == "test"
    path = Path(source).expanduser()
    if path.is_file():
        try:
            loaded = np.load(path, allow_pickle=False)
            if not isinstance(loaded, np.lib.npyio.NpzFile):
                return False
            with loaded as data:
                return f"x_{split}" in data.files and f"y_{split}" in data.files
        except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error, AttributeError, TypeError):
            return False
    return path.is_dir() and is_idx_dir(path, split)


def check_range(x: np.ndarray, clip_values: Tuple[float, float], origin: str = "data") -> None:
    """Raise ``DatasetError`` when ``x`` leaves ``clip_values`` (naming the range found and the fix)."""
    lo, hi = float(x.min()), float(x.max())
    if lo < clip_values[0] or hi > clip_values[1]:
        raise DatasetError(
            f"{origin}: values lie in [{lo:g}, {hi:g}], outside clip_values {tuple(clip_values)}; scale the images "
            "(uint8 arrays are divided by 255) or give the classifier's --clip-values."
        )

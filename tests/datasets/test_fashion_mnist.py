# SPDX-License-Identifier: MIT
# Copyright (c) 2026 art_purify developers
"""Fashion-MNIST loading: embedded subset, IDX directories, clear errors on bad files."""

import gzip

import numpy as np
import pytest

from art_purify.datasets import DatasetError, load_fashion_mnist, read_idx
from tests.helpers import write_idx


def test_embedded_default_shape_dtype_range():
    x, y = load_fashion_mnist()
    assert x.shape == (1000, 1, 28, 28) and x.dtype == np.float32
    assert y.shape == (1000,) and y.dtype == np.int64
    assert 0.0 <= x.min() and x.max() <= 1.0 and x.max() > 0.99
    assert set(np.unique(y)) == set(range(10))
    # The first Fashion-MNIST test labels are well known: ankle boot, pullover, trouser, trouser, shirt.
    assert y[:5].tolist() == [9, 2, 1, 1, 6]


def test_n_keeps_first_examples_and_rejects_bad_values():
    x, y = load_fashion_mnist(n=10)
    x_all, y_all = load_fashion_mnist()
    assert np.array_equal(x, x_all[:10]) and np.array_equal(y, y_all[:10])
    with pytest.raises(ValueError, match="larger than the 1000 examples"):
        load_fashion_mnist(n=1001)
    with pytest.raises(ValueError, match="positive integer"):
        load_fashion_mnist(n=0)


def test_embedded_has_no_train_split():
    with pytest.raises(DatasetError, match="only test images"):
        load_fashion_mnist("train")
    with pytest.raises(ValueError, match="split must be"):
        load_fashion_mnist("validation")


def test_idx_directory(idx_dir):
    x, y = load_fashion_mnist("train", source=idx_dir)
    assert x.shape == (256, 1, 28, 28) and y.shape == (256,)
    assert np.array_equal(y, np.arange(256) % 10)
    x_test, _ = load_fashion_mnist("test", source=str(idx_dir))
    assert x_test.shape == (64, 1, 28, 28)


def test_missing_directory_says_how_to_get_the_data(tmp_path):
    with pytest.raises(DatasetError, match="apt-get install dataset-fashion-mnist"):
        load_fashion_mnist("test", source=tmp_path / "nowhere")
    with pytest.raises(DatasetError, match="t10k-images-idx3-ubyte"):
        load_fashion_mnist("test", source=tmp_path)


def test_truncated_idx_file(idx_dir):
    path = idx_dir / "t10k-images-idx3-ubyte.gz"
    raw = gzip.decompress(path.read_bytes())
    path.write_bytes(gzip.compress(raw[:-100]))
    with pytest.raises(DatasetError, match="truncated"):
        load_fashion_mnist("test", source=idx_dir)


def test_corrupt_gzip(idx_dir):
    path = idx_dir / "t10k-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])
    with pytest.raises(DatasetError, match="corrupt or truncated"):
        load_fashion_mnist("test", source=idx_dir)


def test_not_an_idx_file(tmp_path):
    path = tmp_path / "file.gz"
    path.write_bytes(gzip.compress(b"<html>not found</html>"))
    with pytest.raises(DatasetError, match="not an IDX file"):
        read_idx(path)


def test_label_count_mismatch(idx_dir):
    write_idx(idx_dir / "t10k-labels-idx1-ubyte.gz", np.zeros(10))
    with pytest.raises(DatasetError, match="10 labels for 64 images|labels for 64 images"):
        load_fashion_mnist("test", source=idx_dir)

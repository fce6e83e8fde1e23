# SPDX-License-Identifier: MIT
# Copyright (c) 2026 art_purify developers
"""A user's data files: .npz, MNIST-style IDX directories of any size, image folders, and their errors."""

import numpy as np
import pytest

from art_purify.datasets import DatasetError, check_range, has_split, load_dataset, load_fashion_mnist
from tests.helpers import write_idx


def test_npz_layouts_and_dtypes_give_float_channels_first(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (5, 6, 8, 3), dtype=np.uint8)  # channels last, uint8
    np.savez(tmp_path / "a.npz", x=images, y=np.arange(5))
    x, y = load_dataset(tmp_path / "a.npz")
    assert x.shape == (5, 3, 6, 8) and x.dtype == np.float32 and y.dtype == np.int64
    np.testing.assert_array_equal(x, images.transpose(0, 3, 1, 2) / np.float32(255.0))
    np.savez(tmp_path / "b.npz", x_train=x, y_train=np.eye(5)[y], x_test=x[:2], y_test=y[:2])  # one-hot labels
    xt, yt = load_dataset(tmp_path / "b.npz", "train")
    np.testing.assert_array_equal(xt, x)
    np.testing.assert_array_equal(yt, y)
    assert load_dataset(tmp_path / "b.npz", "test")[0].shape[0] == 2
    assert has_split(tmp_path / "b.npz", "test") and not has_split(tmp_path / "a.npz", "test")
    assert load_dataset(tmp_path / "a.npz", n=3)[0].shape[0] == 3


def test_npz_errors_name_the_problem(tmp_path):
    with pytest.raises(DatasetError, match="does not exist"):
        load_dataset(tmp_path / "missing.npz")
    np.savez(tmp_path / "keys.npz", pictures=np.zeros((2, 4, 4)))
    with pytest.raises(DatasetError, match=r"holds the arrays \['pictures'\]; expected x_test/y_test or x/y"):
        load_dataset(tmp_path / "keys.npz")
    np.savez(tmp_path / "nan.npz", x=np.full((2, 1, 4, 4), np.nan, np.float32), y=[0, 1])
    with pytest.raises(DatasetError, match="NaN"):
        load_dataset(tmp_path / "nan.npz")
    np.savez(tmp_path / "count.npz", x=np.zeros((2, 1, 4, 4), np.float32), y=[0, 1, 2])
    with pytest.raises(DatasetError, match=r"labels have shape \(3,\) for 2 images"):
        load_dataset(tmp_path / "count.npz")
    np.savez(tmp_path / "obj.npz", x=np.array([None, 1], dtype=object), y=[0, 1])
    with pytest.raises(DatasetError, match="not a readable .npz file without pickled objects"):
        load_dataset(tmp_path / "obj.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(DatasetError, match="junk.npz"):
        load_dataset(tmp_path / "junk.npz")
    with pytest.raises(DatasetError, match=r"values lie in \[0, 2\], outside clip_values \(0.0, 1.0\)"):
        check_range(np.array([0.0, 2.0]), (0.0, 1.0))


def test_idx_directory_of_any_size_and_the_fashion_mnist_sources(tmp_path, idx_dir):
    tmp_path = tmp_path / "mine"
    tmp_path.mkdir()
    rng = np.random.default_rng(0)
    write_idx(tmp_path / "train-images-idx3-ubyte.gz", rng.integers(0, 256, (7, 12, 12), dtype=np.uint8))
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", (np.arange(7) % 3).astype(np.uint8))
    x, y = load_dataset(tmp_path, "train")
    assert x.shape == (7, 1, 12, 12) and list(y) == [0, 1, 2, 0, 1, 2, 0]
    assert not has_split(tmp_path, "test")
    with pytest.raises(DatasetError, match="no IDX files of the test split"):
        from art_purify.datasets import load_idx_dir

        load_idx_dir(tmp_path, "test")
    ours, theirs = load_dataset(idx_dir, "test"), load_fashion_mnist("test", source=idx_dir)
    np.testing.assert_array_equal(ours[0], theirs[0])
    np.testing.assert_array_equal(ours[1], theirs[1])
    assert load_dataset("embedded", n=4)[0].shape == (4, 1, 28, 28)


def test_image_folder_with_one_folder_per_class(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    for k, name in enumerate(("cat", "dog")):
        (tmp_path / name).mkdir()
        for i in range(2):
            Image.fromarray(rng.integers(0, 256, (6, 6, 3), dtype=np.uint8)).save(tmp_path / name / f"{i}.png")
    x, y = load_dataset(tmp_path)
    assert x.shape == (4, 3, 6, 6) and sorted(y) == [0, 0, 1, 1] and 0.0 <= x.min() and x.max() <= 1.0
    first_cat = np.asarray(Image.open(tmp_path / "cat" / "0.png")).transpose(2, 0, 1) / np.float32(255.0)
    assert y[[np.allclose(xi, first_cat) for xi in x].index(True)] == 0  # shuffled, but each image keeps its label
    Image.fromarray(np.zeros((5, 5, 3), np.uint8)).save(tmp_path / "dog" / "odd.png")
    with pytest.raises(DatasetError, match="different sizes"):
        load_dataset(tmp_path)
    (tmp_path / "dog" / "odd.png").write_bytes(b"broken")
    with pytest.raises(DatasetError, match="odd.png is not a readable image"):
        load_dataset(tmp_path)
    with pytest.raises(DatasetError, match="does not exist"):
        load_dataset(tmp_path / "nowhere")


def test_image_folder_refuses_16_bit_and_warns_about_numbered_folders(tmp_path):
    from PIL import Image

    for name in ("1", "2", "10"):
        (tmp_path / name).mkdir()
        Image.fromarray(np.zeros((4, 4), np.uint8)).save(tmp_path / name / "a.png")
    with pytest.warns(UserWarning, match="sorted string order as torchvision does"):
        _, y = load_dataset(tmp_path)
    assert sorted(y) == [0, 1, 2]
    Image.fromarray(np.full((4, 4), 3000, np.uint16)).save(tmp_path / "1" / "deep.png")
    with pytest.raises(DatasetError, match="16-bit or float"), pytest.warns(UserWarning):
        load_dataset(tmp_path)


def test_files_that_are_not_npz_archives_and_string_labels(tmp_path):
    np.save(tmp_path / "one.npy", np.zeros((2, 4, 4)))
    with pytest.raises(DatasetError, match="holds one array"):
        load_dataset(tmp_path / "one.npy")
    np.savez(tmp_path / "good.npz", x=np.zeros((2, 1, 4, 4), np.float32), y=[0, 1])
    (tmp_path / "cut.npz").write_bytes((tmp_path / "good.npz").read_bytes()[:200])
    with pytest.raises(DatasetError, match="cut.npz"):
        load_dataset(tmp_path / "cut.npz")
    np.savez(tmp_path / "words.npz", x=np.zeros((2, 1, 4, 4), np.float32), y=np.array(["cat", "dog"]))
    with pytest.raises(DatasetError, match="labels must be integers"):
        load_dataset(tmp_path / "words.npz")

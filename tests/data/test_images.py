"""Reading what ``predict`` classifies: pictures made MNIST-like, IDX image files, ``.npy``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from softmax_lab.data.idx import read_idx, write_idx
from softmax_lab.data.images import mnist_style, read_inputs
from softmax_lab.errors import InputError


def _centre_of_mass(image: np.ndarray) -> tuple[float, float]:
    ys, xs = np.indices(image.shape)
    return (ys * image).sum() / image.sum(), (xs * image).sum() / image.sum()


def test_a_dark_digit_on_light_paper_becomes_a_centred_bright_digit_in_a_20px_box() -> None:
    paper = np.full((300, 200), 240, np.uint8)
    paper[40:200, 120:150] = 10  # a tall dark bar off to the right: a "1"
    row = mnist_style(Image.fromarray(paper).convert("RGB"))
    image = row.reshape(28, 28)
    assert row.dtype == np.float32 and image.max() == 1 and image.min() == 0
    ink_rows, ink_cols = np.nonzero(image > 0.5)
    assert ink_rows.max() - ink_rows.min() + 1 == 20  # the longer side fitted to 20 pixels
    assert ink_cols.max() - ink_cols.min() + 1 <= 5  # aspect kept: 30/160 of 20
    cy, cx = _centre_of_mass(image)
    assert abs(cy - 13.5) <= 0.5 and abs(cx - 13.5) <= 0.5
    assert image[0].max() == 0 and image[:, 0].max() == 0  # a black border, as MNIST's


def test_an_mnist_digit_scaled_up_and_inverted_converts_close_to_itself(digits_dir: Path) -> None:
    digit = read_idx(digits_dir / "t10k-images-idx3-ubyte.gz")[3]
    direct = mnist_style(Image.fromarray(digit))
    big = Image.fromarray(255 - digit).resize((280, 280), Image.Resampling.BICUBIC)
    assert np.abs(mnist_style(big) - direct).mean() < 0.05
    # and the conversion of an MNIST digit stays near the digit itself
    assert np.abs(direct - digit.reshape(-1) / 255).mean() < 0.1


def test_a_transparent_png_counts_its_background_as_white(tmp_path: Path) -> None:
    rgba = np.zeros((64, 64, 4), np.uint8)  # fully transparent
    rgba[10:50, 30:36] = (0, 0, 0, 255)  # opaque black ink
    path = tmp_path / "ink.png"
    Image.fromarray(rgba, "RGBA").save(path)
    X, names = read_inputs([path])
    assert names == ["ink.png"] and X.shape == (1, 784)
    assert X.reshape(28, 28)[0].max() == 0 and X.max() == 1  # bright ink on black


@pytest.mark.parametrize(
    ("array", "rows"),
    [
        (np.zeros(784, np.float32), 1),
        (np.zeros((28, 28), np.uint8), 1),
        (np.zeros((3, 784), np.float64), 3),
        (np.zeros((2, 28, 28), np.uint8), 2),
    ],
)
def test_npy_arrays_of_each_accepted_shape_become_rows(
    tmp_path: Path, array: np.ndarray, rows: int
) -> None:
    np.save(tmp_path / "a.npy", array)
    X, names = read_inputs([tmp_path / "a.npy"])
    assert X.shape == (rows, 784) and X.dtype == np.float32
    assert names == (["a.npy"] if rows == 1 else [f"a.npy[{i}]" for i in range(rows)])


def test_idx_images_are_scaled_like_the_training_data(tmp_path: Path) -> None:
    images = np.arange(2 * 784, dtype=np.int64).reshape(2, 28, 28).astype(np.uint8)
    write_idx(tmp_path / "some-images.gz", images)
    X, names = read_inputs([tmp_path / "some-images.gz"])
    np.testing.assert_array_equal(X, images.reshape(2, 784).astype(np.float32) / 255)
    assert names == ["some-images.gz[0]", "some-images.gz[1]"]


@pytest.mark.parametrize(
    ("write", "match"),
    [
        (lambda p: np.save(p.with_suffix(".npy"), np.zeros((2, 27, 27))), r"got \(2, 27, 27\)"),
        (lambda p: np.save(p.with_suffix(".npy"), np.array([1, 2])), r"got \(2,\)"),
        (lambda p: np.save(p.with_suffix(".npy"), np.zeros(784, np.int32)), "uint8 pixels"),
        (lambda p: np.save(p.with_suffix(".npy"), np.full(784, np.nan)), r"in \[0, 1\]"),
        (lambda p: p.with_suffix(".npy").write_bytes(b"\x93NUMPY garbage"), "not a readable"),
        (lambda p: write_idx(p.with_suffix(".gz"), np.zeros(5, np.uint8)), "a labels file"),
        (lambda p: p.with_suffix(".gz").write_bytes(b"\x1f\x8b\x08broken"), "not an IDX"),
        (lambda p: p.with_suffix(".jpg").write_bytes(b"\xff\xd8\xff\xe0 cut"), "image"),
        (lambda p: Image.new("RGB", (9, 9), "white").save(p.with_suffix(".png")), "flat grey"),
    ],
)
def test_unusable_input_is_an_input_error_naming_the_file(
    tmp_path: Path, write, match: str
) -> None:
    write(tmp_path / "bad")
    (path,) = tmp_path.iterdir()
    with pytest.raises(InputError, match=match) as caught:
        read_inputs([path])
    assert str(caught.value).startswith(str(path))


def test_no_inputs_is_an_input_error() -> None:
    with pytest.raises(InputError, match="no input files"):
        read_inputs([])

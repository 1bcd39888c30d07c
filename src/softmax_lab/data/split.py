"""Seeded, stratified splits of a labelled set: mnist_5k's train/test split, the validation split.

:func:`stratified_split` draws a given number of rows of every class; :func:`proportional_counts`
says how many of each class make a held-out part of a given size in the classes' proportions.
:func:`hold_out` makes a :class:`~softmax_lab.data.dataset.Dataset`'s validation part
(``dataset.val_size``) from its training rows with the two.
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np
from numpy.typing import NDArray

from softmax_lab.data.dataset import Dataset
from softmax_lab.errors import DatasetError

__all__ = ["hold_out", "proportional_counts", "stratified_split", "val_params"]


def stratified_split(
    y: NDArray[np.integer], held: NDArray[np.integer], rng: np.random.Generator
) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
    """Draw ``held[i]`` rows of the i-th class present in ``y`` (``np.unique`` order).

    Parameters
    ----------
    y : ndarray of shape (m,), integer
        Class labels.
    held : ndarray of shape (c,), integer
        How many rows of each of the c classes present in ``y`` to hold out.
    rng : numpy.random.Generator
        Draws one permutation of each class's rows, in class order (and nothing else).

    Returns
    -------
    kept, held_rows : ndarray of shape (m - held.sum(),) and (held.sum(),), intp
        Row indices, grouped by class in class order, each class in its drawn order; shuffle
        or sort them as the caller needs.
    """
    kept, out = [], []
    for c, n_held in zip(np.unique(y), held, strict=True):  # per class: a seeded draw
        members = rng.permutation(np.flatnonzero(y == c))
        out.append(members[: int(n_held)])
        kept.append(members[int(n_held) :])
    empty = np.zeros(0, dtype=np.intp)
    return np.concatenate([empty, *kept]), np.concatenate([empty, *out])


def proportional_counts(y: NDArray[np.integer], total: int) -> NDArray[np.int64]:
    """Per class present in ``y`` (``np.unique`` order), how many of ``total`` rows it gives.

    Each class gives its share ``total * count / m`` rounded down, and the rows left go to the
    classes with the largest remainders (ties: the smaller class label), so the counts sum to
    ``total`` exactly and no class gives more rows than it has.

    Returns
    -------
    ndarray of shape (c,), int64
    """
    _, counts = np.unique(y, return_counts=True)
    exact = counts * total / len(y)  # (c,)
    base = np.floor(exact).astype(np.int64)
    order = np.argsort(-(exact - base), kind="stable")  # largest remainder first
    base[order[: total - int(base.sum())]] += 1
    return base


def val_params(val_size: int, split_seed: int) -> str:
    """The validation split's parameters as a string, hashed into the split set's fingerprint."""
    return f"val_size={val_size} val_split_seed={split_seed}"


def hold_out(data: Dataset, *, val_size: int, split_seed: int) -> Dataset:
    """``data`` with ``val_size`` of its training rows held out as its validation part.

    The rows are drawn per class in proportion to the classes of ``y_train``
    (:func:`proportional_counts`), by a generator of ``split_seed`` of its own (seeded with
    ``(split_seed, 1)``, so it draws independently of mnist_5k's test split from the same
    seed). Both parts keep the rows' original order: in-order SGD sees the rest of the training
    set as it saw the whole. The fingerprint becomes the SHA-256 of the original one and
    :func:`val_params`: the training rows are other rows.

    Parameters
    ----------
    data : Dataset
        Without a validation part.
    val_size : int
        0 <= val_size < ``len(data.y_train)``; 0 returns ``data`` itself.
    split_seed : int
        >= 0.

    Returns
    -------
    Dataset
        ``X_train`` (m - val_size, n), ``X_val`` (val_size, n), float32, read-only, new
        copies; the test part is ``data``'s own arrays.

    Raises
    ------
    DatasetError
        ``val_size`` not smaller than the training set, naming the key and both sizes.
    """
    m = len(data.y_train)
    if val_size == 0:
        return data
    if not 0 < val_size < m:
        raise DatasetError(
            f"dataset.val_size must be smaller than the training set of {data.name} "
            f"({m} examples), got {val_size}"
        )
    rng = np.random.default_rng((split_seed, 1))
    kept, held = stratified_split(data.y_train, proportional_counts(data.y_train, val_size), rng)
    kept.sort()
    held.sort()
    arrays: dict[str, Any] = {
        "X_train": data.X_train[kept],
        "y_train": data.y_train[kept],
        "X_val": data.X_train[held],
        "y_val": data.y_train[held],
    }
    for array in arrays.values():
        array.flags.writeable = False  # shared by every caller through the memo
    fingerprint = hashlib.sha256(
        f"{data.fingerprint}\n{val_params(val_size, split_seed)}".encode()
    ).hexdigest()
    return Dataset(
        data.name,
        arrays["X_train"],
        arrays["y_train"],
        data.X_test,
        data.y_test,
        fingerprint=fingerprint,
        source=data.source,
        n_classes=data.n_classes,
        X_val=arrays["X_val"],
        y_val=arrays["y_val"],
    )

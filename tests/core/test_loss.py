from __future__ import annotations

import numpy as np
import pytest

from softmax_lab.core.loss import (
    classification_error,
    confusion_matrix,
    softmax_grad_,
    softmax_loss,
)


def test_softmax_loss_of_zero_logits_is_log_k() -> None:
    for k in (2, 10, 37):
        H = np.zeros((5, k), dtype=np.float32)
        assert softmax_loss(H, np.arange(5) % k) == pytest.approx(np.log(k), rel=1e-7)


def test_softmax_loss_of_zero_logits_matches_reference_value() -> None:
    H = np.zeros((100, 10), dtype=np.float32)
    assert softmax_loss(H, np.zeros(100, dtype=np.uint8)) == pytest.approx(2.3025850, abs=1e-7)


def test_error_of_perfect_logits_is_zero() -> None:
    y = np.array([3, 0, 9, 9, 1])
    H = np.eye(10, dtype=np.float32)[y] * 5.0
    assert classification_error(H, y) == 0.0
    assert classification_error(H, (y + 1) % 10) == 1.0


def test_softmax_loss_is_stable_for_huge_logits() -> None:
    H = np.array([[1e4, 0.0, -1e4], [0.0, 1e4, 0.0]], dtype=np.float32)
    y = np.array([0, 0])
    assert softmax_loss(H, y) == pytest.approx(1e4 / 2, rel=1e-6)


def test_softmax_loss_matches_direct_formula() -> None:
    rng = np.random.default_rng(1)
    H = rng.standard_normal((50, 10))
    y = rng.integers(0, 10, 50)
    direct = np.mean(-H[np.arange(50), y] + np.log(np.exp(H).sum(axis=1)))
    assert softmax_loss(H, y) == pytest.approx(direct, rel=1e-12)


def test_softmax_grad_is_softmax_minus_one_hot_in_place() -> None:
    rng = np.random.default_rng(2)
    H = rng.standard_normal((20, 10)).astype(np.float32)
    y = rng.integers(0, 10, 20)
    Z = np.exp(H) / np.exp(H).sum(axis=1, keepdims=True)
    expected = Z - np.eye(10)[y]
    out = softmax_grad_(H, y)
    assert out is H
    np.testing.assert_allclose(H, expected, atol=1e-6)


def test_softmax_grad_of_stacked_models_treats_each_slice_independently() -> None:
    rng = np.random.default_rng(3)
    H = rng.standard_normal((8, 3, 10)).astype(np.float32)
    y = rng.integers(0, 10, 8)
    expected = [softmax_grad_(H[:, j].copy(), y) for j in range(3)]
    softmax_grad_(H, y)
    for j in range(3):
        np.testing.assert_allclose(H[:, j], expected[j], atol=1e-7)


def test_softmax_loss_rejects_mismatched_labels() -> None:
    with pytest.raises(ValueError, match=r"labels y must have shape \(4,\)"):
        softmax_loss(np.zeros((4, 10)), np.zeros(3, dtype=int))


def test_softmax_loss_rejects_one_dimensional_logits() -> None:
    with pytest.raises(ValueError, match=r"shape \(m, k\), got shape \(10,\)"):
        softmax_loss(np.zeros(10), np.zeros(10, dtype=int))


# ---------------------------------------------------------------------------------------------
# confusion matrix


def test_confusion_matrix_equals_a_hand_count() -> None:
    y_true = np.array([0, 0, 1, 2, 2, 2, 1])
    y_pred = np.array([0, 1, 1, 2, 0, 2, 1])
    cm = confusion_matrix(y_true, y_pred, 3)
    np.testing.assert_array_equal(cm, [[1, 1, 0], [0, 2, 0], [1, 0, 2]])
    assert cm.dtype == np.int64


def test_confusion_matrix_of_uint8_labels_does_not_overflow() -> None:
    y = np.array([29, 29, 3], dtype=np.uint8)  # 29·30 + 29 = 899 > 255
    cm = confusion_matrix(y, y, 30)
    assert cm[29, 29] == 2 and cm[3, 3] == 1 and cm.sum() == 3


def test_confusion_matrix_of_no_examples_is_zeros() -> None:
    np.testing.assert_array_equal(confusion_matrix([], [], 4), np.zeros((4, 4)))


@pytest.mark.parametrize(
    ("y_true", "y_pred", "k", "message"),
    [
        ([0, 1], [0, 3], 3, r"y_pred has labels outside 0..2: min 0, max 3"),
        ([-1, 1], [0, 1], 3, r"y_true has labels outside 0..2: min -1"),
        ([0, 1, 2], [0, 1], 3, r"must be 1-D of equal length; got shapes \(3,\) and \(2,\)"),
        ([0.0, 1.0], [0, 1], 3, "y_true must hold integer class labels, got dtype float64"),
        ([0], [0], 0, "k must be >= 1, got 0"),
    ],
)
def test_confusion_matrix_rejects_bad_input(y_true, y_pred, k: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        confusion_matrix(np.asarray(y_true), np.asarray(y_pred), k)

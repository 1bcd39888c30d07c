from __future__ import annotations

import numpy as np
import pytest

from softmax_lab.core.loss import classification_error, softmax_grad_, softmax_loss


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

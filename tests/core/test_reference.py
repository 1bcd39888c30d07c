"""The trainer against reference numbers on real data, and against the textbook algorithm."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from softmax_lab.core.model import SoftmaxRegression, TwoLayerNet
from softmax_lab.core.textbook import evaluate as textbook_evaluate
from softmax_lab.core.textbook import softmax_epoch
from softmax_lab.core.training import seeded_rngs, train
from softmax_lab.data import dataset, idx_sets, sources

FASHION = Path(idx_sets.FASHION_MNIST_SYSTEM_DIR)
needs_fashion = pytest.mark.skipif(
    not FASHION.is_dir(), reason="needs Debian's dataset-fashion-mnist (CI installs it)"
)


@pytest.fixture(scope="module")
def fashion() -> dataset.Dataset:
    return sources.load_dataset("fashion_mnist", download=False)


@pytest.mark.slow
@needs_fashion
def test_fashion_mnist_reference_config_matches_measured_table(fashion) -> None:
    """DATASETS.md: α = 0.2, B = 100, 10 epochs, no shuffle → 0.2255 then 0.1832, loss 0.50359."""
    d = fashion
    result = train(
        SoftmaxRegression(d.n_features, 10),
        d.X_train,
        d.y_train,
        d.X_test,
        d.y_test,
        lr=0.2,
        batch_size=100,
        epochs=10,
    )
    assert result.history[0].test_error == pytest.approx(0.2255, abs=5e-5)
    assert result.history[-1].test_error == pytest.approx(0.1832, abs=5e-5)
    assert result.history[-1].train_loss == pytest.approx(0.50359, abs=5e-6)


@pytest.mark.slow
@needs_fashion
def test_fashion_mnist_trainer_equals_textbook_epoch_by_epoch(fashion) -> None:
    d = fashion
    X64, Xt64 = d.X_train.astype(np.float64), d.X_test.astype(np.float64)
    theta = np.zeros((d.n_features, 10))
    result = train(
        SoftmaxRegression(d.n_features, 10),
        d.X_train,
        d.y_train,
        d.X_test,
        d.y_test,
        lr=0.2,
        batch_size=100,
        epochs=3,
    )
    for record in result.history:
        softmax_epoch(X64, d.y_train, theta, lr=0.2, batch=100)
        train_loss, train_err = textbook_evaluate(X64, d.y_train, theta)
        test_loss, test_err = textbook_evaluate(Xt64, d.y_test, theta)
        assert record.train_loss == pytest.approx(train_loss, abs=2e-5)
        assert record.test_loss == pytest.approx(test_loss, abs=2e-5)
        # float32 vs float64 may flip an example or two sitting on a decision boundary
        assert record.train_error == pytest.approx(train_err, abs=3 / 60000)
        assert record.test_error == pytest.approx(test_err, abs=3 / 10000)
    np.testing.assert_allclose(result.params["theta"], theta, atol=2e-4)


def test_mnist_5k_end_to_end_reaches_below_15_percent() -> None:
    d = sources.load_dataset("mnist_5k")
    result = train(
        SoftmaxRegression(d.n_features, d.n_classes),
        d.X_train,
        d.y_train,
        d.X_test,
        d.y_test,
        lr=0.2,
        batch_size=100,
        epochs=5,
    )
    assert result.history[-1].test_error < 0.15
    assert result.history[-1].train_loss < result.history[0].train_loss


def test_mlp_beats_softmax_regression_on_mnist_5k_for_same_epochs() -> None:
    d = sources.load_dataset("mnist_5k")
    split = (d.X_train, d.y_train, d.X_test, d.y_test)
    softmax = train(SoftmaxRegression(784, 10), *split, lr=0.2, batch_size=100, epochs=5)
    init_rng, _ = seeded_rngs(0)
    mlp = train(
        TwoLayerNet(784, 10, hidden_dim=100, rng=init_rng),
        *split,
        lr=0.2,
        batch_size=100,
        epochs=5,
    )
    assert mlp.history[-1].test_error < softmax.history[-1].test_error

"""Fused training equals separate runs to float32 rounding, and is bitwise repeatable."""

from __future__ import annotations

import numpy as np
import pytest

from softmax_lab.core.model import SoftmaxRegression
from softmax_lab.core.training import DivergenceError, EpochMetrics, seeded_rngs, train
from softmax_lab.data.dataset import Dataset
from softmax_lab.data.sources import load_dataset
from softmax_lab.fusion.stacked import plan_fused, replay_plan, train_group


@pytest.fixture(scope="module")
def digits() -> Dataset:
    d = load_dataset("mnist_5k")
    return Dataset(
        "mnist_5k", d.X_train[:1500], d.y_train[:1500], d.X_test[:500], d.y_test[:500], "", ""
    )


def _separate(digits: Dataset, lr: float, epochs: int, *, shuffle: bool = False, seed: int = 0):
    _, shuffle_rng = seeded_rngs(seed)
    return train(
        SoftmaxRegression(784, 10),
        digits.X_train,
        digits.y_train,
        digits.X_test,
        digits.y_test,
        lr=lr,
        batch_size=50,
        epochs=epochs,
        shuffle=shuffle,
        rng=shuffle_rng,
    )


def _fused(digits: Dataset, lrs, epochs, *, shuffle: bool = False, seed: int = 0):
    return train_group(digits, plan_fused(lrs, epochs), batch_size=50, shuffle=shuffle, seed=seed)


def _strip(history: list[EpochMetrics]) -> list[tuple[float, ...]]:
    """Everything but the wall time."""
    return [(m.epoch, m.train_loss, m.train_error, m.test_loss, m.test_error) for m in history]


def test_plan_groups_equal_step_sizes_into_one_block() -> None:
    plan = plan_fused([0.2, 0.05, 0.2, 0.1], [3, 5, 10, 5])
    assert plan.lrs == (0.05, 0.1, 0.2)
    assert plan.column == (2, 0, 2, 1)
    assert plan.epochs == (5, 5, 10)
    assert plan.describe(0) == "column=2 lrs=0.05,0.1,0.2 epochs=5,5,10"


def test_plan_rejects_mismatched_lengths() -> None:
    with pytest.raises(ValueError, match="need one epochs per lr"):
        plan_fused([0.1, 0.2], [3])


@pytest.mark.parametrize("shuffle", [False, True])
def test_fused_jobs_match_separate_runs(digits, shuffle: bool) -> None:
    lrs, epochs = [0.05, 0.2, 0.5], [4, 4, 4]
    fused = _fused(digits, lrs, epochs, shuffle=shuffle, seed=7)
    for lr, e, got in zip(lrs, epochs, fused, strict=True):
        alone = _separate(digits, lr, e, shuffle=shuffle, seed=7)
        assert got.error is None and "theta" in got.params
        np.testing.assert_allclose(got.params["theta"], alone.params["theta"], atol=1e-5)
        for a, b in zip(got.history, alone.history, strict=True):
            assert a.epoch == b.epoch
            assert a.train_loss == pytest.approx(b.train_loss, abs=1e-6)
            assert a.test_loss == pytest.approx(b.test_loss, abs=1e-6)
            assert abs(a.test_error - b.test_error) <= 1 / 500 + 1e-12


def test_fused_jobs_with_a_validation_split_match_separate_runs(digits) -> None:
    # the last 300 training rows held out, as dataset.val_size does
    val = Dataset(
        "mnist_5k",
        np.ascontiguousarray(digits.X_train[:1200]),
        np.ascontiguousarray(digits.y_train[:1200]),
        digits.X_test,
        digits.y_test,
        "",
        "",
        X_val=np.ascontiguousarray(digits.X_train[1200:]),
        y_val=np.ascontiguousarray(digits.y_train[1200:]),
    )
    lrs, epochs = [0.05, 0.2, 0.2], [3, 3, 2]
    fused = _fused(val, lrs, epochs, shuffle=True, seed=7)
    for lr, e, got in zip(lrs, epochs, fused, strict=True):
        alone = train(
            SoftmaxRegression(784, 10),
            val.X_train,
            val.y_train,
            val.X_test,
            val.y_test,
            lr=lr,
            batch_size=50,
            epochs=e,
            shuffle=True,
            rng=seeded_rngs(7)[1],
            X_val=val.X_val,
            y_val=val.y_val,
        )
        np.testing.assert_allclose(got.params["theta"], alone.params["theta"], atol=1e-5)
        assert len(got.history) == len(alone.history) == e
        for a, b in zip(got.history, alone.history, strict=True):
            assert a.val_loss is not None and b.val_loss is not None
            assert a.val_loss == pytest.approx(b.val_loss, abs=1e-6)
            assert a.val_error is not None and b.val_error is not None
            assert abs(a.val_error - b.val_error) <= 1 / 300 + 1e-12
            assert a.train_loss == pytest.approx(b.train_loss, abs=1e-6)
    # and bitwise repeatable, val metrics included
    again = _fused(val, lrs, epochs, shuffle=True, seed=7)
    assert [[m.as_dict() | {"seconds": 0} for m in r.history] for r in fused] == [
        [m.as_dict() | {"seconds": 0} for m in r.history] for r in again
    ]


def test_mixed_epochs_give_each_job_only_its_own_epochs(digits) -> None:
    lrs, epochs = [0.1, 0.1, 0.3, 0.3], [2, 5, 3, 1]
    fused = _fused(digits, lrs, epochs)
    assert [len(r.history) for r in fused] == epochs
    # same step size, fewer epochs: exactly the prefix of the longer job
    assert fused[0].history == fused[1].history[:2]
    # each job's θ is its own epoch count's θ
    theta_2 = _separate(digits, 0.1, 2).params["theta"]
    np.testing.assert_allclose(fused[0].params["theta"], theta_2, atol=1e-5)
    theta_3 = _separate(digits, 0.3, 3).params["theta"]
    np.testing.assert_allclose(fused[2].params["theta"], theta_3, atol=1e-5)
    # and its test confusion matrix is its own last epoch's: consistent with its test error
    y_test = digits.y_test
    for r in fused:
        assert r.test_confusion is not None
        np.testing.assert_array_equal(
            r.test_confusion.sum(axis=1), np.bincount(y_test, minlength=10)
        )
        assert 1 - np.trace(r.test_confusion) / len(y_test) == pytest.approx(
            r.history[-1].test_error, abs=1e-12
        )
    assert not np.array_equal(fused[0].test_confusion, fused[1].test_confusion)  # 2 vs 5 epochs


def test_a_diverging_job_fails_alone(digits) -> None:
    # large inputs make lr=1e30 overflow at once
    big = Dataset("big", digits.X_train * 1e4, digits.y_train, digits.X_test, digits.y_test, "", "")
    fused = _fused(big, [1e-9, 1e30, 1e-8], [3, 3, 3])
    assert isinstance(fused[1].error, DivergenceError)
    assert "lr=1e+30" in str(fused[1].error)
    for ok in (fused[0], fused[2]):
        assert ok.error is None and len(ok.history) == 3 and "theta" in ok.params
        assert np.isfinite(ok.params["theta"]).all()


def test_fused_training_is_bitwise_repeatable(digits) -> None:
    a = _fused(digits, [0.05, 0.2, 0.5], [2, 3, 4], shuffle=True, seed=3)
    b = _fused(digits, [0.05, 0.2, 0.5], [2, 3, 4], shuffle=True, seed=3)
    for ra, rb in zip(a, b, strict=True):
        assert "theta" in ra.params and "theta" in rb.params
        assert ra.params["theta"].tobytes() == rb.params["theta"].tobytes()
        strip = lambda h: [(m.train_loss, m.test_loss, m.test_error) for m in h]  # noqa: E731
        assert strip(ra.history) == strip(rb.history)


def test_on_epoch_reports_every_job_epoch(digits) -> None:
    seen: list[tuple[int, int]] = []
    train_group(
        digits,
        plan_fused([0.1, 0.2], [1, 2]),
        batch_size=100,
        shuffle=False,
        seed=0,
        on_epoch=lambda j, m: seen.append((j, m.epoch)),
    )
    assert sorted(seen) == [(0, 1), (1, 1), (1, 2)]


def test_replay_plan_repeats_a_job_bit_for_bit(digits) -> None:
    lrs, epochs = [0.05, 0.2, 0.5, 0.2], [2, 3, 1, 1]
    original = _fused(digits, lrs, epochs, shuffle=True, seed=1)
    plan = plan_fused(lrs, epochs)
    for j in range(len(lrs)):
        replay, me = replay_plan(plan.describe(j), epochs[j])
        again = train_group(digits, replay, batch_size=50, shuffle=True, seed=1)
        assert again[me].params["theta"].tobytes() == original[j].params["theta"].tobytes()
        assert again[me].history == [
            type(m)(m.epoch, m.train_loss, m.train_error, m.test_loss, m.test_error, h.seconds)
            for m, h in zip(original[j].history, again[me].history, strict=True)
        ]


def test_replay_plan_rejects_a_foreign_description() -> None:
    with pytest.raises(ValueError, match="not a fused-group description"):
        replay_plan("group abc", 3)
    with pytest.raises(ValueError, match="inconsistent fused-group description"):
        replay_plan("column=0 lrs=0.1 epochs=2", 5)


@pytest.mark.parametrize("shuffle", [False, True])
def test_a_group_of_one_step_size_equals_separate_runs_bit_for_bit(digits, shuffle: bool) -> None:
    """One block (the stack a group of one step size makes, or what a stack narrows to) trains
    exactly as a job alone does: same θ bytes, same metrics, same confusion matrix."""
    fused = _fused(digits, [0.2, 0.2], [3, 1], shuffle=shuffle, seed=5)
    for e, got in zip([3, 1], fused, strict=True):
        alone = _separate(digits, 0.2, e, shuffle=shuffle, seed=5)
        assert got.params["theta"].tobytes() == alone.params["theta"].tobytes()
        assert _strip(got.history) == _strip(alone.history)
        assert got.test_confusion is not None and alone.test_confusion is not None
        np.testing.assert_array_equal(got.test_confusion, alone.test_confusion)

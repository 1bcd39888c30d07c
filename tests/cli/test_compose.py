"""Every config group option and every experiment composes into a valid Config."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra import compose
from hydra.errors import ConfigCompositionException

from softmax_lab.cli.convert import to_config
from softmax_lab.cli.hydra_app import CONF_DIR, experiment_choices
from softmax_lab.config.schema import Config, validate
from softmax_lab.errors import ConfigError

EXPERIMENTS = sorted(p.stem for p in (CONF_DIR / "experiment").glob("*.yaml"))


pytestmark = pytest.mark.usefixtures("hydra_conf")


def _compose(*overrides: str) -> Config:
    return to_config(compose(config_name="config", overrides=list(overrides)))


def test_default_config_is_the_reference_optimiser_on_mnist_5k() -> None:
    cfg = validate(_compose())
    assert (cfg.optim.lr, cfg.optim.batch_size, cfg.optim.epochs) == (0.2, 100, 10)
    assert not cfg.optim.shuffle and cfg.dataset.name == "mnist_5k" and cfg.model.name == "softmax"


@pytest.mark.parametrize("name", ["mnist", "fashion_mnist", "mnist_5k"])
def test_dataset_options_compose(name: str) -> None:
    assert validate(_compose(f"dataset={name}")).dataset.name == name


def test_idx_dataset_composes_with_a_path(tmp_path: Path) -> None:
    cfg = validate(_compose("dataset=idx", f"dataset.path={tmp_path}"))
    assert (cfg.dataset.name, cfg.dataset.path) == ("idx", str(tmp_path))


def test_idx_dataset_without_path_fails_validation() -> None:
    with pytest.raises(ConfigError, match=r"dataset\.path must be set for dataset=idx"):
        validate(_compose("dataset=idx"))


@pytest.mark.parametrize("name", ["softmax", "mlp"])
def test_model_options_compose(name: str) -> None:
    cfg = validate(_compose(f"model={name}"))
    assert cfg.model.name == name and cfg.model.hidden_dim == 400


def test_optim_and_tracking_options_compose() -> None:
    cfg = validate(_compose("optim=sgd", "tracking=default", "optim.shuffle=true"))
    assert cfg.optim.shuffle and cfg.tracking.experiment == "softmax-lab"


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_every_experiment_composes_and_validates(name: str) -> None:
    # as `softmax-lab train` composes it: the sweeper or launcher the experiment chooses first
    args = [f"+experiment={name}"]
    cfg = validate(_compose(*experiment_choices(args), *args))
    assert cfg.tracking.experiment != "softmax-lab", "experiments log to their own experiment"


def test_an_experiment_that_switches_the_sweeper_gets_it_unless_the_command_line_chooses() -> None:
    assert experiment_choices(["+experiment=search_lr_batch"]) == [
        "hydra/sweeper=optuna",
        "hydra/sweeper/sampler=tpe",
        "hydra/sweeper/pruner=successive_halving",
    ]
    own = ["+experiment=search_lr_batch", "hydra/sweeper=softmax_lab"]
    assert experiment_choices(own) == []  # the user's sweeper: the experiment's sampler goes too
    assert experiment_choices(["+experiment=lr_batch_grid"]) == []
    assert experiment_choices(["+experiment=nothing_by_this_name"]) == []
    sweeper = compose(
        config_name="config",
        overrides=[*experiment_choices(["+experiment=search_mlp"]), "+experiment=search_mlp"],
        return_hydra_config=True,
    ).hydra.sweeper
    assert sweeper._target_ == "hydra_plugins.softmax_lab.OptunaSweeper"
    assert sweeper.objective == "val/error" and "model.hidden_dim" in sweeper.params
    assert sweeper.pruner._target_ == "optuna.pruners.SuccessiveHalvingPruner"


def test_experiment_files_start_with_package_global_and_say_their_question() -> None:
    for path in (CONF_DIR / "experiment").glob("*.yaml"):
        lines = path.read_text().splitlines()
        assert lines[0] == "# @package _global_", path.name
        assert any(line.startswith("# Question:") for line in lines), path.name


def test_seed_table_is_the_reference_config() -> None:
    cfg = _compose("+experiment=seed_table")
    assert (cfg.dataset.name, cfg.model.name) == ("mnist", "softmax")
    assert (cfg.optim.lr, cfg.optim.batch_size, cfg.optim.epochs, cfg.optim.shuffle) == (
        0.2,
        100,
        10,
        False,
    )


def test_typo_in_a_key_fails_at_composition_naming_the_schema() -> None:
    with pytest.raises(ConfigCompositionException, match=r"Could not override 'optim\.lrr'"):
        _compose("optim.lrr=0.1")


def test_wrong_type_fails_at_composition() -> None:
    with pytest.raises(ConfigCompositionException, match=r"optim\.batch_size"):
        _compose("optim.batch_size=big")


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("optim.lr=-0.1", r"optim\.lr must be > 0 and finite, got -0\.1"),
        ("optim.lr=0", r"optim\.lr must be > 0 and finite, got 0\.0"),
        ("optim.batch_size=0", r"optim\.batch_size must be >= 1, got 0"),
        ("optim.epochs=0", r"optim\.epochs must be >= 1, got 0"),
        ("model.hidden_dim=0", r"model\.hidden_dim must be >= 1, got 0"),
        ("seed=-1", r"seed must be >= 0, got -1"),
        ("dataset.name=cifar", r"dataset\.name must be one of mnist, .*, got 'cifar'"),
        ("model.name=cnn", r"model\.name must be one of softmax, mlp, got 'cnn'"),
        ("dataset.split_seed=-2", r"dataset\.split_seed must be >= 0, got -2"),
    ],
)
def test_each_range_rule_names_key_rule_and_value(override: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        validate(_compose(override))


def test_idx_path_that_does_not_exist_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    with pytest.raises(
        ConfigError, match=r"dataset\.path must be an existing directory, got '.*nope'"
    ):
        validate(_compose("dataset=idx", f"dataset.path={missing}"))


def test_all_problems_are_reported_at_once() -> None:
    with pytest.raises(ConfigError) as info:
        validate(_compose("optim.lr=-1", "optim.epochs=0"))
    assert "optim.lr" in str(info.value) and "optim.epochs" in str(info.value)


@pytest.mark.parametrize("pruner", ["none", "median", "successive_halving", "hyperband"])
def test_a_search_experiment_takes_any_pruner_from_the_command_line(pruner: str) -> None:
    args = ["+experiment=search_lr_batch", f"hydra/sweeper/pruner={pruner}"]
    sweeper = compose(
        config_name="config",
        overrides=[*experiment_choices(args), *args],
        return_hydra_config=True,
    ).hydra.sweeper
    target = sweeper.pruner._target_.lower()
    assert target.endswith(pruner.replace("_", "") + "pruner") or (
        pruner == "none" and target == "optuna.pruners.noppruner"
    )
    assert sweeper.sampler._target_ == "optuna.samplers.TPESampler"


@pytest.mark.parametrize("sampler", ["tpe", "random"])
def test_the_optuna_sweeper_takes_either_sampler(sampler: str) -> None:
    args = ["hydra/sweeper=optuna", f"hydra/sweeper/sampler={sampler}"]
    sweeper = compose(config_name="config", overrides=args, return_hydra_config=True).hydra.sweeper
    assert sweeper.sampler._target_.lower().endswith(f"{sampler}sampler")
    assert sweeper.pruner._target_ == "optuna.pruners.MedianPruner"  # the default


def test_an_experiment_may_choose_the_searchs_sampler_and_pruner(tmp_path: Path) -> None:
    (tmp_path / "mine.yaml").write_text(
        "# @package _global_\n# Question: does hyperband help?\ndefaults:\n"
        "  - override /hydra/sweeper: optuna\n"
        "  - override /hydra/sweeper/sampler: random\n"
        "  - override /hydra/sweeper/pruner: hyperband\n"
    )
    assert experiment_choices(["+experiment=mine"], str(tmp_path)) == [
        "hydra/sweeper=optuna",
        "hydra/sweeper/sampler=random",
        "hydra/sweeper/pruner=hyperband",
    ]
    chosen = ["+experiment=mine", "hydra/sweeper/pruner=none"]  # the command line wins
    assert experiment_choices(chosen, str(tmp_path))[-1] == "hydra/sweeper/sampler=random"
    assert "hydra/sweeper/pruner=hyperband" not in experiment_choices(chosen, str(tmp_path))

"""Where ``+experiment=NAME`` is found: the user's directory first, then the packaged experiments.

The user's directory is ``--experiments-dir``, else ``$SOFTMAX_LAB_EXPERIMENTS``, else
``./experiments`` when the working directory has one. Composed in-process exactly as
``softmax-lab train`` composes (``CONF_DIR`` with Hydra's search-path plugins), from a working
directory with no ``conf/``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers.cli import cli
from hydra import compose, initialize_config_dir
from hydra._internal.utils import create_config_search_path
from hydra.core.global_hydra import GlobalHydra
from hydra.errors import ConfigCompositionException

from softmax_lab.cli import EXPERIMENTS_ENV, split_experiments_dir
from softmax_lab.cli.hydra_app import (
    CONF_DIR,
    experiments_dir,
    experiments_option,
    register_configs,
)
from softmax_lab.errors import InputError


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """An empty working directory, no experiments directory named in the environment."""
    project = tmp_path / "project"
    project.mkdir()
    monkeypatch.chdir(project)
    monkeypatch.delenv(EXPERIMENTS_ENV, raising=False)
    yield project
    experiments_option[0] = None


def write_experiment(directory: Path, name: str, experiment: str) -> None:
    """``directory/name.yaml``: an experiment that logs to the MLflow experiment ``experiment``."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"{name}.yaml").write_text(
        f"# @package _global_\n# Question: which file was found?\ntracking:\n"
        f"  experiment: {experiment}\n"
    )


def logged_to(name: str, *, option: str | None = None) -> str:
    """``tracking.experiment`` of ``+experiment=NAME``, composed as ``train`` composes it
    (``option``: its ``--experiments-dir``)."""
    register_configs()
    GlobalHydra.instance().clear()
    experiments_option[0] = option
    try:
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            return str(compose("config", overrides=[f"+experiment={name}"]).tracking.experiment)
    finally:
        GlobalHydra.instance().clear()


def test_packaged_experiments_are_found_from_a_directory_without_conf(project: Path) -> None:
    assert experiments_dir() is None
    assert logged_to("demo") == "demo"
    assert logged_to("seed_table") == "seed-table"


def test_local_experiments_shadow_a_packaged_name_and_add_new_names(project: Path) -> None:
    write_experiment(project / "experiments", "demo", "my-demo")
    write_experiment(project / "experiments", "mine", "mine")
    assert experiments_dir() == (project / "experiments").resolve()
    assert logged_to("demo") == "my-demo"
    assert logged_to("mine") == "mine"
    assert logged_to("seed_table") == "seed-table"  # the packaged ones are still there


def test_option_comes_before_the_variable_which_comes_before_the_local_directory(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for where in ("experiments", "from-env", "from-option"):
        write_experiment(project / where, "demo", where)
    write_experiment(project / "experiments", "local_only", "local-only")
    assert logged_to("demo") == "experiments"
    monkeypatch.setenv(EXPERIMENTS_ENV, "from-env")
    assert logged_to("demo") == "from-env"
    assert logged_to("demo", option="from-option") == "from-option"
    # a directory named explicitly replaces ./experiments, it does not add to it
    with pytest.raises(ConfigCompositionException, match="Could not find 'experiment/local_only'"):
        logged_to("local_only")
    monkeypatch.setenv(EXPERIMENTS_ENV, "")  # empty: as if unset
    assert logged_to("local_only") == "local-only"


@pytest.mark.parametrize(
    ("option", "env", "message"),
    [
        ("nope", None, r"experiments directory nope \(from --experiments-dir\) does not exist"),
        (None, "nope", r"experiments directory nope \(from \$SOFTMAX_LAB_EXPERIMENTS\) does not"),
        (None, "file.yaml", r"file.yaml \(from \$SOFTMAX_LAB_EXPERIMENTS\) is not a directory"),
    ],
)
def test_a_named_directory_that_is_not_one_is_an_error_naming_it(
    project: Path,
    monkeypatch: pytest.MonkeyPatch,
    option: str | None,
    env: str | None,
    message: str,
) -> None:
    (project / "file.yaml").touch()
    if env is not None:
        monkeypatch.setenv(EXPERIMENTS_ENV, env)
    with pytest.raises(InputError, match=message):
        experiments_dir(option)


def test_search_path_plugin_leaves_other_hydra_apps_alone(project: Path) -> None:
    write_experiment(project / "experiments", "demo", "my-demo")
    other = project / "other_app_conf"
    other.mkdir()
    providers = [e.provider for e in create_config_search_path(str(other)).get_path()]
    assert providers == ["hydra", "main", "schema"]
    ours = [e.provider for e in create_config_search_path(str(CONF_DIR)).get_path()]
    assert ours == ["hydra", "softmax-lab experiments", "main", "schema"]


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["-m", "optim.lr=0.1"], (None, ["-m", "optim.lr=0.1"])),
        (["--experiments-dir", "d", "-m", "+experiment=x"], ("d", ["-m", "+experiment=x"])),
        (
            ["+experiment=x", "--experiments-dir=d", "--cfg", "job"],
            ("d", ["+experiment=x", "--cfg", "job"]),
        ),
        (["--experiments-dir=a", "--experiments-dir", "b"], ("b", [])),
    ],
)
def test_split_experiments_dir_takes_the_option_out_of_hydras_arguments(
    argv: list[str], expected: tuple[str | None, list[str]]
) -> None:
    assert split_experiments_dir(argv) == expected


def test_split_experiments_dir_without_a_directory_is_an_error() -> None:
    with pytest.raises(InputError, match="--experiments-dir needs a directory after it"):
        split_experiments_dir(["+experiment=x", "--experiments-dir"])


def test_train_uses_the_option_and_lists_the_users_experiments(tmp_path: Path) -> None:
    write_experiment(tmp_path / "experiments", "mine", "mine")
    write_experiment(tmp_path / "elsewhere", "demo", "elsewhere-demo")
    no_env = {EXPERIMENTS_ENV: ""}
    help_text = cli("train", "--help", cwd=tmp_path, env=no_env).stdout
    assert (
        "experiment: demo, lr_batch_grid, mine, mlp_400, search_lr_batch, search_mlp, seed_table"
    ) in help_text
    job = cli(
        "train",
        "--experiments-dir",
        str(tmp_path / "elsewhere"),
        "+experiment=demo",
        "--cfg",
        "job",
        cwd=tmp_path,
        env=no_env,
    ).stdout
    assert "experiment: elsewhere-demo" in job


def test_train_with_a_missing_experiments_dir_is_one_line_and_exit_2(tmp_path: Path) -> None:
    proc = cli("train", "--experiments-dir", "nope", "+experiment=demo", cwd=tmp_path, check=False)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.splitlines() == [
        "softmax-lab: experiments directory nope (from --experiments-dir) does not exist; "
        "give a directory of NAME.yaml experiment files; nothing was run"
    ]

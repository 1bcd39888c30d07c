"""softmax-lab installed from its wheel, as a new user installs it, works from any directory.

The module builds the wheel from a copy of the checkout (``pip wheel``, as ``pip install .``
builds it), installs it into a fresh virtualenv (``python -m venv``; the dependencies come from
the package registry) and runs the installed ``softmax-lab`` from temporary directories that have
no ``conf/``: a 2-job sweep on the offline ``mnist_5k`` into a SQLite store, ``compare``,
``rerun``, ``ui``, and the user's own ``./experiments`` ahead of the packaged ones.
"""

from __future__ import annotations

import csv
import glob
import io
import os
import shutil
import stat
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest
from helpers.cli import run_command
from helpers.servers import clean_env, free_port, stop_group, wait_until_healthy

from softmax_lab.tracking import reading

pytestmark = pytest.mark.slow

# what a checkout holds beside the sources: not part of what pip builds from
NOT_SOURCES = shutil.ignore_patterns(
    ".git",
    ".venv",
    "build",
    "dist",
    "outputs",
    "multirun",
    "*.egg-info",
    "__pycache__",
    ".*_cache",
)


@dataclass(frozen=True)
class Installed:
    """The wheel built from the checkout and the virtualenv it is installed in."""

    wheel: Path
    venv: Path

    def run(self, *args: str, cwd: Path, check: bool = True) -> subprocess.CompletedProcess[str]:
        """The installed ``softmax-lab ARGS`` in ``cwd``, with nothing of the checkout in reach."""
        argv = [str(self.venv / "bin" / "softmax-lab"), *args]
        return run_command(argv, cwd=cwd, env=installed_env(), check=check)


def installed_env() -> dict[str, str]:
    """No tracking URI, no experiments directory and no import path from the environment."""
    drop = ("PYTHONPATH", "SOFTMAX_LAB_EXPERIMENTS", "VIRTUAL_ENV")
    return {k: v for k, v in clean_env().items() if k not in drop}


def call(*cmd: str | Path, cwd: Path | None = None) -> str:
    proc = subprocess.run(
        [str(c) for c in cmd], cwd=cwd, env=installed_env(), capture_output=True, text=True
    )
    if proc.returncode != 0:
        raise AssertionError(f"{cmd} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc.stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config) -> Installed:
    """``pip wheel`` on a copy of the checkout, then ``pip install`` of the wheel in a new venv."""
    root = tmp_path_factory.mktemp("packaging")
    source = root / "source"  # a copy: the build's build/ and egg-info stay out of the checkout
    shutil.copytree(pytestconfig.rootpath, source, symlinks=True, ignore=NOT_SOURCES)
    call(sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", root / "dist", source)
    (wheel,) = (root / "dist").glob("softmax_lab-*.whl")
    venv = root / "venv"
    call(sys.executable, "-m", "venv", venv)
    call(venv / "bin" / "python", "-m", "pip", "install", "-q", wheel)
    return Installed(wheel=wheel, venv=venv)


def test_wheel_holds_the_checkouts_conf_and_experiments_as_files(
    installed: Installed, pytestconfig: pytest.Config
) -> None:
    conf = pytestconfig.rootpath / "conf"  # its experiment/ links to the top-level experiments/
    expected = {  # glob's ** follows links to directories, as setuptools' package-data does
        f"softmax_lab/conf/{name}": (conf / name).read_bytes()
        for name in glob.glob("**/*.yaml", root_dir=conf, recursive=True)
    }
    experiments = pytestconfig.rootpath / "experiments"
    assert {k for k in expected if "/experiment/" in k} == {
        f"softmax_lab/conf/experiment/{p.name}" for p in experiments.glob("*.yaml")
    }
    with zipfile.ZipFile(installed.wheel) as wheel:
        shipped = {n for n in wheel.namelist() if n.startswith("softmax_lab/conf/")}
        assert shipped == set(expected)
        for name in shipped:
            mode = wheel.getinfo(name).external_attr >> 16
            assert not stat.S_ISLNK(mode), f"{name} is a symlink in the wheel"
            assert wheel.read(name) == expected[name], name


def test_installed_package_is_the_venvs_not_the_checkouts(
    installed: Installed, tmp_path: Path
) -> None:
    where = call(
        installed.venv / "bin" / "python",
        "-c",
        "import softmax_lab, hydra_plugins.softmax_lab as p\n"
        "print(softmax_lab.__file__, p.__file__)",
        cwd=tmp_path,
    )
    site = (installed.venv / "lib").resolve()
    assert all(Path(f).resolve().is_relative_to(site) for f in where.split()), where


def test_installed_sweep_compare_and_rerun_from_a_directory_without_conf(
    installed: Installed, tmp_path: Path
) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    work = tmp_path / "work"
    work.mkdir()
    installed.run(
        "train",
        "-m",
        "dataset=mnist_5k",
        "optim.epochs=1,2",
        f"tracking.uri={uri}",
        "tracking.experiment=installed",
        cwd=work,
    )
    runs = reading.runs_frame(uri, "installed")
    jobs = runs[runs["tags.sl.role"] != "sweep"]
    assert sorted(jobs["params.optim.epochs"]) == ["1", "2"]
    assert set(jobs["status"]) == {"FINISHED"}
    table = installed.run(
        "compare", "--tracking-uri", uri, "--experiment", "installed", "--format", "csv", cwd=work
    ).stdout
    rows = list(csv.DictReader(io.StringIO(table)))
    assert sorted(r["optim.epochs"] for r in rows) == ["1", "2"]
    rerun = installed.run("rerun", jobs["run_id"].iloc[0], "--tracking-uri", uri, cwd=work)
    assert rerun.stdout.rstrip().endswith("reproduced exactly"), rerun.stdout


def test_installed_ui_serves_the_store(installed: Installed, tmp_path: Path) -> None:
    port = free_port()
    log_path = tmp_path / "ui.log"
    cmd = [str(installed.venv / "bin" / "softmax-lab"), "ui", "--port", str(port)]
    cmd += ["--tracking-uri", f"sqlite:///{tmp_path / 'mlflow.db'}"]
    with log_path.open("wb") as log:
        server = subprocess.Popen(
            cmd,
            cwd=tmp_path,
            env=installed_env(),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # the server and its workers form one group, ended together
        )
        try:
            wait_until_healthy(f"http://127.0.0.1:{port}", server, log_path.read_text, timeout=120)
        finally:
            stop_group(server)


def test_installed_train_finds_the_users_experiments_first(
    installed: Installed, tmp_path: Path
) -> None:
    mine = tmp_path / "experiments"
    mine.mkdir()
    for name in ("demo", "mine"):  # demo shadows the packaged demo; mine is new
        (mine / f"{name}.yaml").write_text(
            f"# @package _global_\n# Question: is ./experiments/{name}.yaml found first?\n"
            f"tracking:\n  experiment: my-{name}\n"
        )
    logged_to = {
        name: installed.run("train", f"+experiment={name}", "--cfg", "job", cwd=tmp_path).stdout
        for name in ("demo", "mine", "seed_table")
    }
    assert "experiment: my-demo" in logged_to["demo"]
    assert "experiment: my-mine" in logged_to["mine"]
    assert "experiment: seed-table" in logged_to["seed_table"]  # packaged, still found
    groups = installed.run("train", "--help", cwd=tmp_path).stdout
    assert (
        "experiment: demo, lr_batch_grid, mine, mlp_400, search_lr_batch, search_mlp, seed_table"
    ) in groups
    missing = installed.run(
        "train", "--experiments-dir", "nope", "+experiment=mine", cwd=tmp_path, check=False
    )
    assert missing.returncode == 2 and "experiments directory nope" in missing.stderr
    assert os.listdir(tmp_path) == ["experiments"]  # --cfg job and the error wrote nothing

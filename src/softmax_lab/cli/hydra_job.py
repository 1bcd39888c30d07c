"""Hydra's ``run_job`` for the jobs the fused launcher opens, without its deep copies.

``hydra.core.utils.run_job`` deep-copies a job's whole config (with Hydra's own large node)
four times and writes it as YAML with OmegaConf's pure-Python dumper: about 25 ms a job, a
quarter of a second every ten jobs, for a task that itself takes a few milliseconds. This does
what ``run_job`` does for our jobs — the output directory with ``.hydra/config.yaml``,
``hydra.yaml`` and ``overrides.yaml``, the job's log file, ``HydraConfig`` set while the task
runs, a ``JobReturn`` — in about a third of that. Anything it does not handle the same way
(``hydra.job.chdir=true``, ``hydra.job.env_set``, a user's Hydra callbacks) goes to Hydra's own
``run_job``.

The job's files are written atomically, here and (through ``save_config``, which replaces
Hydra's ``_save_config`` once ``install_save_config`` ran) in Hydra's ``run_job``: a full disk
leaves no 0-byte or truncated ``.hydra/*.yaml``. A job whose files cannot be written still
runs its task, whose run then fails at once with the cause (``state.output_problems``), so the
job's run says "No space left on device" and names the file.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import hydra.core.utils
import yaml
from hydra.core.hydra_config import HydraConfig
from hydra.core.utils import JobReturn, JobStatus, configure_log, run_job
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf, open_dict, read_write

from softmax_lab.cli import state
from softmax_lab.cli.run_check import CheckRunFirst
from softmax_lab.data.files import write_atomically

__all__ = [
    "HYDRA_FILES",
    "can_run_light",
    "install_save_config",
    "run_job_light",
    "save_config",
    "save_job_files",
]

HYDRA_FILES = ("config.yaml", "hydra.yaml", "overrides.yaml")  # in <job dir>/<output_subdir>


def save_job_files(job_dir: str, files_dir: Path, files: Sequence[tuple[str, str]]) -> bool:
    """Write a job's Hydra files (name, text) into ``files_dir``, each atomically; return
    whether all were written.

    If one cannot be written (e.g. no space left on device), the ones written before it are
    removed too (a job directory holds all of them or none) and the problem is kept in
    ``state.output_problems[job_dir]``, for the job's run to fail with.
    """
    if job_dir in state.output_problems:  # an earlier file of this job failed: no more
        return False
    try:
        files_dir.mkdir(parents=True, exist_ok=True)
        for name, text in files:
            write_atomically(files_dir / name, text.encode("utf-8"))
    except OSError as err:
        for name in HYDRA_FILES:
            (files_dir / name).unlink(missing_ok=True)
        state.output_problems[job_dir] = f"cannot write the job's Hydra files: {err}"
        return False
    return True


def save_config(cfg: Any, filename: str, output_dir: Path) -> None:
    """Hydra's ``_save_config``, atomic, and recording a failure for the job instead of
    raising it (Hydra's writes with ``open(…, "w")``: a full disk leaves a 0-byte file and a
    traceback, before the job's run exists)."""
    job_dir = str(HydraConfig.get().runtime.output_dir)
    save_job_files(job_dir, Path(output_dir), [(filename, OmegaConf.to_yaml(cfg))])


def install_save_config() -> None:
    """Make Hydra's ``run_job`` (single runs, ``hydra/launcher=basic``, the fused launcher's
    lone jobs) write a job's files with ``save_config``. Hydra looks ``_save_config`` up in its
    module when it writes them; it is the one place those writes happen."""
    if hasattr(hydra.core.utils, "_save_config"):
        hydra.core.utils._save_config = save_config


def can_run_light(config: DictConfig, hydra_context: HydraContext) -> bool:
    """Whether ``run_job_light`` does all Hydra's ``run_job`` would for this job: not with
    ``chdir``, ``env_set`` or callbacks other than our own ``run_check`` (run mode only)."""
    job = config.hydra.job
    others = [c for c in hydra_context.callbacks.callbacks if not isinstance(c, CheckRunFirst)]
    return not job.chdir and not job.env_set and not others


def _dump(container: Any) -> str:
    """YAML as Hydra writes it (block style, keys in order), with libyaml's fast dumper."""
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    return yaml.dump(
        container, Dumper=dumper, sort_keys=False, allow_unicode=True, default_flow_style=False
    )


def run_job_light(
    hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig
) -> JobReturn:
    """Run ``task_function`` as one job of a sweep, like Hydra's ``run_job`` with
    ``job_dir_key="hydra.sweep.dir"`` and ``job_subdir_key="hydra.sweep.subdir"``."""
    if not can_run_light(config, hydra_context):
        return run_job(
            hydra_context=hydra_context,
            task_function=task_function,
            config=config,
            job_dir_key="hydra.sweep.dir",
            job_subdir_key="hydra.sweep.subdir",
        )
    hydra_config = HydraConfig.instance()
    previous = hydra_config.cfg
    sweep_dirs = OmegaConf.to_container(config.hydra.sweep, resolve=False)
    if "${hydra:" in str(sweep_dirs):  # resolving them needs this job's HydraConfig (~5 ms)
        hydra_config.set_config(config)
    output_dir = os.path.abspath(
        os.path.join(str(config.hydra.sweep.dir), str(config.hydra.sweep.subdir))
    )
    with read_write(config.hydra.runtime), open_dict(config.hydra.runtime):
        config.hydra.runtime.output_dir = output_dir
    hydra_config.set_config(config)
    try:
        task_cfg = OmegaConf.masked_copy(config, [str(k) for k in config if k != "hydra"])
        ret = JobReturn()
        ret.cfg = task_cfg
        ret.hydra_cfg = hydra_config.cfg  # type: ignore[assignment]
        overrides = OmegaConf.to_container(config.hydra.overrides.task)
        assert isinstance(overrides, list)
        ret.overrides = overrides
        ret.working_dir = os.getcwd()
        try:
            Path(output_dir).mkdir(parents=True, exist_ok=True)
        except OSError as err:  # the job's run fails with it
            state.output_problems[output_dir] = f"cannot make the job's directory: {err}"
        configure_log(config.hydra.job_logging, config.hydra.verbose)
        if config.hydra.output_subdir is not None:
            hydra_yaml = {"hydra": OmegaConf.to_container(config.hydra, enum_to_str=True)}
            contents = (
                OmegaConf.to_container(task_cfg, enum_to_str=True),
                hydra_yaml,
                overrides,
            )
            save_job_files(
                output_dir,
                Path(output_dir) / str(config.hydra.output_subdir),
                [(name, _dump(c)) for name, c in zip(HYDRA_FILES, contents, strict=True)],
            )
        try:
            ret.return_value = task_function(task_cfg)
            ret.status = JobStatus.COMPLETED
        except Exception as e:
            ret.return_value = e
            ret.status = JobStatus.FAILED
        ret.task_name = str(config.hydra.job.name)
        return ret
    finally:
        hydra_config.cfg = previous

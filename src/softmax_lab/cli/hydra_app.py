"""``softmax-lab train``: Hydra composes the config, the task function runs one job.

Where Hydra finds the config: the package's ``conf/`` (``CONF_DIR``; in a checkout a link to
the top-level ``conf/``, whose ``experiment/`` links to ``experiments/``; in a wheel the same
files, copied). ``+experiment=NAME`` looks first in the user's experiments directory
(``experiments_dir``: ``--experiments-dir``, else ``$SOFTMAX_LAB_EXPERIMENTS``, else
``./experiments``), then in the packaged experiments: ``ExperimentsSearchPath`` puts an
``ExperimentsSource`` over that directory ahead of ``CONF_DIR`` on Hydra's search path (both
registered in ``hydra_plugins.softmax_lab``).
"""

from __future__ import annotations

import builtins
import os
import sys
from dataclasses import replace
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

import hydra
from hydra.core.config_search_path import ConfigSearchPath, SearchPathQuery
from hydra.core.config_store import ConfigStore
from hydra.core.hydra_config import HydraConfig
from hydra.core.object_type import ObjectType
from hydra.plugins.config_source import ConfigLoadError, ConfigResult, ConfigSource
from hydra.plugins.search_path_plugin import SearchPathPlugin
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from softmax_lab.cli import EXPERIMENTS_ENV, EXPERIMENTS_OPTION, hydra_job, state
from softmax_lab.cli.console import EpochTable, report_input_error
from softmax_lab.cli.convert import to_config
from softmax_lab.config.schema import Config, validate
from softmax_lab.errors import InputError
from softmax_lab.runs import timings

if TYPE_CHECKING:
    from softmax_lab.runs.job import JobContext, JobOutcome

__all__ = [
    "CONF_DIR",
    "ExperimentsSearchPath",
    "ExperimentsSource",
    "experiment_choices",
    "experiments_dir",
    "experiments_option",
    "run_train",
]

# The package is installed as files (from a wheel, or editable), never zipped: Hydra reads a
# directory. In a checkout src/softmax_lab/conf is a link to the top-level conf/.
CONF_DIR = Path(str(resources.files("softmax_lab") / "conf"))
EXPERIMENT_GROUP = "experiment"
INTERNAL_OVERRIDES = ("tracking.parent_run_id=", "tracking.sweep_id=")
# --experiments-dir of the `train` command running in this process, for ExperimentsSearchPath
experiments_option: list[str | None] = [None]


def experiments_dir(option: str | None = None) -> Path | None:
    """The user's experiments directory, searched by ``+experiment=NAME`` before the packaged
    experiments: ``option`` (``--experiments-dir``), else ``$SOFTMAX_LAB_EXPERIMENTS``, else
    ``./experiments`` if the working directory has one; None when there is none.

    Raises
    ------
    InputError
        The directory named by ``option`` or the environment variable is not a directory.
    """
    named = ((option, EXPERIMENTS_OPTION), (os.environ.get(EXPERIMENTS_ENV), "$" + EXPERIMENTS_ENV))
    for given, source in named:
        if given:
            path = Path(given).expanduser().resolve()
            if not path.is_dir():
                problem = "is not a directory" if path.exists() else "does not exist"
                raise InputError(
                    f"experiments directory {given} (from {source}) {problem}; "
                    "give a directory of NAME.yaml experiment files"
                )
            return path
    local = Path("experiments").resolve()
    return local if local.is_dir() else None


class ExperimentsSource(ConfigSource):
    """A plain directory of experiment files as Hydra's ``experiment`` group: the config
    ``experiment/NAME`` is the file ``DIR/NAME.yaml``. It holds nothing else, so on the search
    path ahead of ``CONF_DIR`` it shadows packaged experiments and nothing more."""

    @staticmethod
    def scheme() -> str:
        return "softmax-lab-experiments"

    def _in_dir(self, config_path: str) -> Path | None:
        """``config_path`` (``experiment/...``) in the directory; None outside the group."""
        group, _, rest = config_path.strip("/").partition("/")
        return Path(self.path, rest) if group == EXPERIMENT_GROUP else None

    def load_config(self, config_path: str) -> ConfigResult:
        file = self._in_dir(self._normalize_file_name(config_path))
        if file is None or not file.is_file():
            raise ConfigLoadError(f"Config not found : {file or config_path}")
        return ConfigResult(
            config=OmegaConf.load(file),
            path=self.full_path(),
            provider=self.provider,
            header=self._get_header_dict(file.read_text(encoding="utf-8")),
        )

    def available(self) -> bool:
        return Path(self.path).is_dir()

    def is_group(self, config_path: str) -> bool:
        if not config_path.strip("/"):
            return True
        directory = self._in_dir(config_path)
        return directory is not None and directory.is_dir()

    def is_config(self, config_path: str) -> bool:
        file = self._in_dir(self._normalize_file_name(config_path))
        return file is not None and file.is_file()

    def list(self, config_path: str, results_filter: ObjectType | None) -> builtins.list[str]:
        if not config_path.strip("/"):
            return [EXPERIMENT_GROUP] if results_filter in (None, ObjectType.GROUP) else []
        directory = self._in_dir(config_path)
        if directory is None or not directory.is_dir():
            return []
        found: builtins.list[str] = []
        for entry in directory.iterdir():
            path = f"{config_path.strip('/')}/{entry.name}"
            self._list_add_result(
                files=found, file_path=path, file_name=entry.name, results_filter=results_filter
            )
        return sorted(set(found))


class ExperimentsSearchPath(SearchPathPlugin):
    """Puts the user's experiments directory (``experiments_dir``) just ahead of ``CONF_DIR``.

    Hydra runs every installed search-path plugin for every app, so this one acts only on a
    search path whose primary config directory is softmax-lab's.
    """

    def manipulate_search_path(self, search_path: ConfigSearchPath) -> None:
        ours = os.path.realpath(CONF_DIR)
        mains = [e for e in search_path.get_path() if e.provider == "main"]
        if not any(os.path.realpath(e.path.removeprefix("file://")) == ours for e in mains):
            return
        directory = experiments_dir(experiments_option[0])
        if directory is not None:
            search_path.prepend(
                provider="softmax-lab experiments",
                path=f"{ExperimentsSource.scheme()}://{directory}",
                anchor=SearchPathQuery(provider="main"),
            )


# Hydra groups an experiment may switch that Hydra would not let it. Hydra keeps the first
# override of a group it meets, which for these is conf/config.yaml's own: an experiment's
# ``override /hydra/sweeper: optuna`` would be ignored (and its sweeper keys refused); and the
# Optuna sweeper's sampler and pruner are not in the defaults list yet when the experiment's
# is read. So ``run_train`` passes them on as command-line choices (``experiment_choices``).
EXPERIMENT_SWITCHES = (
    "hydra/sweeper",
    "hydra/launcher",
    "hydra/sweeper/sampler",
    "hydra/sweeper/pruner",
)


def experiment_choices(argv: list[str], experiments: str | None = None) -> list[str]:
    """``GROUP=OPTION`` for each group of ``EXPERIMENT_SWITCHES`` that the experiment named by
    ``+experiment=NAME`` in ``argv`` overrides in its defaults list and the command line does
    not choose itself; found where Hydra finds the experiment (``experiments_dir``, then the
    packaged ones). Empty for no experiment, several of them (``+experiment=a,b``), or one not
    found (Hydra then says so)."""
    named = [a.split("=", 1)[1] for a in argv if a.lstrip("+").startswith("experiment=")]
    if len(named) != 1 or "," in named[0]:
        return []
    chosen = {a.split("=", 1)[0].lstrip("+~") for a in argv if "=" in a}
    directory = experiments_dir(experiments)
    candidates = [] if directory is None else [directory / f"{named[0]}.yaml"]
    candidates.append(CONF_DIR / EXPERIMENT_GROUP / f"{named[0]}.yaml")
    found = next((c for c in candidates if c.is_file()), None)
    if found is None:
        return []
    try:
        content = OmegaConf.to_container(OmegaConf.load(found))
    except Exception:  # a broken file: Hydra reports it when it loads the experiment
        return []
    defaults = content.get("defaults") if isinstance(content, dict) else None
    choices = []
    for entry in defaults if isinstance(defaults, list) else []:
        for key, option in entry.items() if isinstance(entry, dict) else ():
            group = str(key).removeprefix("override").strip().lstrip("/")
            overridden = str(key).startswith("override") and group in EXPERIMENT_SWITCHES
            # the command line's own choice of the group, or of the sweeper it belongs to, wins
            if overridden and not any(group == c or group.startswith(c + "/") for c in chosen):
                choices.append(f"{group}={option}")
    return choices


def register_configs() -> None:
    """The schema of the primary config (our sweeper registers in ``hydra_plugins``)."""
    ConfigStore.instance().store(name="base_config", node=Config)


def user_overrides(overrides: list[str]) -> list[str]:
    """The command-line overrides without those the sweeper adds for bookkeeping."""
    return [o for o in overrides if not o.startswith(INTERNAL_OVERRIDES)]


def job_context(config: Config) -> JobContext:
    """The running job's context (output dir, job number, overrides) from Hydra, the
    experiment id when the sweep already prepared the job's store, why the job's Hydra
    files could not be written, if they could not, and in a multirun the job's judge
    (``state.judges``, set by a sweeper that stops jobs early), if it has one."""
    from softmax_lab.runs.job import JobContext
    from softmax_lab.tracking import store

    hc = HydraConfig.get()
    sweep = state.current[0] if state.current else None
    where = (store.resolve_uri(config.tracking.uri), config.tracking.experiment)
    job_num = hc.job.num if hc.mode == RunMode.MULTIRUN else None
    return JobContext(
        output_dir=Path(hc.runtime.output_dir),
        output_problem=state.output_problems.pop(str(hc.runtime.output_dir), None),
        job_num=job_num,
        judge=None if job_num is None else state.judges.get(job_num),
        overrides=user_overrides(list(hc.overrides.task)),
        experiment_id=(sweep.experiment_ids if sweep is not None else state.prepared).get(where),
    )


def report_outcome(outcome: JobOutcome) -> None:
    """One line per finished job, and the sweep bar's tick."""
    line = f"run {outcome.run_id}: {outcome.status}" + (
        f" ({outcome.reason})" if outcome.reason else ""
    )
    if outcome.stopped_at is not None:
        line += f" (pruned after epoch {outcome.stopped_at})"
    sweep = state.current[0] if state.current else None
    if sweep is not None and sweep.progress is not None:
        sweep.progress.write(line)  # above the sweep's bar, not through it
    else:
        print(line, flush=True)
    if sweep is not None:
        if sweep.progress is not None:
            sweep.progress.finish(outcome.status)
    elif outcome.status != "FINISHED":
        state.last_exit_code[0] = 1


def task(cfg: DictConfig) -> JobOutcome | None:
    """Hydra's task function: one job, reported on the terminal and tracked in MLflow.

    A single run's config is validated and its store prepared first: a bad value or an
    unusable ``tracking.uri`` is one line on stderr and exit code 2, before anything is printed
    or created (a sweep's sweeper does the same for all its jobs at once).
    """
    from softmax_lab.errors import StoreFullError
    from softmax_lab.runs.job import JobOutcome, run_job, run_name
    from softmax_lab.tracking import store

    sweep = state.current[0] if state.current else None
    try:
        config = validate(to_config(cfg))
        ctx = job_context(config)
        if ctx.experiment_id is None:
            experiment_id = store.prepare_store(config.tracking.uri, config.tracking.experiment)
            ctx = replace(ctx, experiment_id=experiment_id)
    except InputError as e:
        if sweep is not None:
            raise  # the sweeper checked its jobs: this is not a user's single run
        state.last_exit_code[0] = report_input_error(e, suffix="; nothing was run")
        return None
    label = run_name(config, ctx.overrides)
    if sweep is not None and sweep.progress is not None:
        sweep.progress.start(label)
    table = EpochTable(
        config.optim.epochs,
        title="" if sweep else f"run: {label}",
        val=config.dataset.val_size > 0,
    )
    try:
        outcome = run_job(config, replace(ctx, on_epoch=table))
    except StoreFullError as e:  # its run could not even be created: one line, no traceback
        outcome = JobOutcome("FAILED", None, f"{type(e).__name__}: {e}")
    except InputError as e:  # its run was refused (a server denying this user EDIT)
        if sweep is not None:
            outcome = JobOutcome("FAILED", None, f"{type(e).__name__}: {e}")
        else:
            state.last_exit_code[0] = report_input_error(e, suffix="; nothing was run")
            return None
    finally:
        table.close()
    report_outcome(outcome)
    return outcome


def run_train(argv: list[str], *, experiments: str | None = None) -> int:
    """Run ``softmax-lab train ARGV`` through Hydra; the exit code says if any job failed.

    ``experiments``: the ``--experiments-dir`` option, where ``+experiment=NAME`` looks first.
    """
    if not (CONF_DIR / "config.yaml").is_file():
        print(
            f"softmax-lab: config directory {CONF_DIR} not found; the installation is "
            "incomplete: reinstall softmax-lab (its wheel ships conf/)",
            file=sys.stderr,
        )
        return 2
    try:
        experiments_dir(experiments)  # a directory named but missing: say so before Hydra starts
    except InputError as e:
        return report_input_error(e, suffix="; nothing was run")
    register_configs()
    hydra_job.install_save_config()  # Hydra's own run_job writes a job's files atomically
    state.last_exit_code[0] = 0
    experiments_option[0] = experiments
    # the experiment's own choices go among the overrides (argparse wants them in one run)
    at = next((i for i, a in enumerate(argv) if "=" in a and not a.startswith("-")), len(argv))
    sys.argv = ["softmax-lab", *argv[:at], *experiment_choices(argv, experiments), *argv[at:]]
    try:
        hydra.main(config_path=str(CONF_DIR), config_name="config", version_base="1.3")(task)()
    except InputError as e:
        return report_input_error(e)
    except KeyboardInterrupt:
        print("softmax-lab: interrupted; the open runs were closed as KILLED", file=sys.stderr)
        return 130
    finally:
        experiments_option[0] = None
        timings.dump()
    return state.last_exit_code[0]

"""``hydra/sweeper=optuna``: adaptive search with pruning, on current Optuna, tracked in MLflow.

The published hydra-optuna-sweeper pins ``optuna<3`` and has no pruning; this sweeper keeps its
config interface where it applies (``direction``, ``n_trials``, ``n_jobs``, ``sampler`` with
``seed``, ``study_name``, ``storage``, ``params`` in Hydra's override grammar:
``softmax_lab.cli.search_space``) and adds ``objective`` (a metric every epoch logs, by default
``val/error``: searching on the test set is what the validation split exists to avoid) and
``pruner`` (``none``, ``median``, ``successive_halving``, ``hyperband``).

How a study runs:

- Before any work, the search space is parsed and its corners (each parameter at its lowest and
  highest value, or each choice) are composed and validated like a grid's jobs, and the
  objective is checked against the metrics the runs will log: a bad space is one line per
  problem and exit code 2.
- Trials are asked in batches of ``n_jobs`` and launched through the configured launcher, each
  as a job whose Hydra number is its trial number (its output directory ``<sweep dir>/<n>``):
  under ``fused`` (and ``ray``) the trials of a batch that share everything but step size and
  epochs train side by side. Each epoch a trial logs is reported to Optuna and judged by the
  pruner (``softmax_lab.cli.state.judges``); a pruned trial's column leaves its fused block at
  once while the others go on.
- Every trial is an MLflow child run of the study's parent run, tagged ``sl.trial_number``,
  ``sl.trial_state`` (COMPLETE, PRUNED or FAIL) and ``sl.study_name``; a pruned run keeps the
  epochs it trained (FINISHED, ``sl.pruned=true``). A diverging trial (a non-finite loss, or
  one that exploded: ``optim.max_train_loss``) is FAIL and the study goes on. The outcomes of
  a batch are told to Optuna when the whole batch has ended, so the pruners that compare with
  finished trials (median) judge a batch's trials the same whatever order they report in: a
  seeded study repeats its trials and numbers.
- The study's trials live in its own database next to the MLflow store
  (``tracking.study_storage``). A study without ``study_name`` is new on each command, named
  after its sweep; ``resume=true`` finds the newest study of the same command and continues it.
  Processes that run one named study cooperate: together they run ``n_trials`` trials. A trial
  whose process was stopped (Ctrl-C, SIGTERM) or died on this host (SIGKILL) is FAIL, marked
  ``sl.interrupted``, and queued again with the same parameters; it does not count.
- At the end the parent run records the study: the best trial's parameters (tags
  ``best.<key>``), its objective and its test error (metrics ``best/<objective>``,
  ``best/test/error``, read once, from the best trial's run), and three pictures under
  ``study/``: the optimisation history, parallel coordinates and parameter importances.
"""

from __future__ import annotations

import json
import math
import sys
import threading
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from omegaconf import MISSING, OmegaConf

from softmax_lab.cli import state
from softmax_lab.cli.console import INPUT_ERROR_EXIT, SweepProgress, report_input_error
from softmax_lab.cli.search_space import (
    SearchSpace,
    describe,
    format_value,
    parse_search_space,
    trial_overrides,
)
from softmax_lab.cli.sweeper import (
    SoftmaxLabSweeper,
    bookkeeping_overrides,
    finish_parent,
    sweep_signature,
)
from softmax_lab.config.schema import Config
from softmax_lab.core.training import EpochMetrics
from softmax_lab.data.files import write_atomically
from softmax_lab.errors import ConfigError, InputError

if TYPE_CHECKING:
    import optuna
    from optuna.distributions import BaseDistribution
    from optuna.trial import FrozenTrial

__all__ = [
    "DIRECTIONS",
    "HyperbandPrunerConf",
    "MedianPrunerConf",
    "NopPrunerConf",
    "OptunaSweeper",
    "OptunaSweeperConf",
    "RandomSamplerConf",
    "SuccessiveHalvingPrunerConf",
    "TPESamplerConf",
    "corner_values",
    "objective_value",
]

DIRECTIONS = ("minimize", "maximize")
OWNER_ATTR = "sl.owner"  # the process that runs a trial (host, pid, start): who may reap it
INTERRUPTED_ATTR = "sl.interrupted"  # a FAIL trial whose process was stopped: does not count
RUN_ATTR = "sl.run_id"  # the trial's MLflow run


# --- the config ------------------------------------------------------------------------------


@dataclass
class TPESamplerConf:
    """``hydra/sweeper/sampler=tpe`` (the default): Optuna's TPESampler."""

    _target_: str = "optuna.samplers.TPESampler"
    seed: int | None = None
    n_startup_trials: int = 10
    n_ei_candidates: int = 24
    multivariate: bool = False
    constant_liar: bool = False


@dataclass
class RandomSamplerConf:
    """``hydra/sweeper/sampler=random``."""

    _target_: str = "optuna.samplers.RandomSampler"
    seed: int | None = None


@dataclass
class NopPrunerConf:
    """``hydra/sweeper/pruner=none``: every trial trains all its epochs."""

    _target_: str = "optuna.pruners.NopPruner"


@dataclass
class MedianPrunerConf:
    """``hydra/sweeper/pruner=median`` (the default): stop a trial whose objective at an
    epoch is worse than the median of the finished trials' at that epoch."""

    _target_: str = "optuna.pruners.MedianPruner"
    n_startup_trials: int = 5
    n_warmup_steps: int = 0
    interval_steps: int = 1
    n_min_trials: int = 1


@dataclass
class SuccessiveHalvingPrunerConf:
    """``hydra/sweeper/pruner=successive_halving`` (asynchronous successive halving)."""

    _target_: str = "optuna.pruners.SuccessiveHalvingPruner"
    min_resource: Any = "auto"
    reduction_factor: int = 4
    min_early_stopping_rate: int = 0
    bootstrap_count: int = 0


@dataclass
class HyperbandPrunerConf:
    """``hydra/sweeper/pruner=hyperband``."""

    _target_: str = "optuna.pruners.HyperbandPruner"
    min_resource: int = 1
    max_resource: Any = "auto"
    reduction_factor: int = 3
    bootstrap_count: int = 0


@dataclass
class OptunaSweeperConf:
    """``hydra/sweeper=optuna``."""

    _target_: str = "hydra_plugins.softmax_lab.OptunaSweeper"
    defaults: list[Any] = field(default_factory=lambda: [{"sampler": "tpe"}, {"pruner": "median"}])
    sampler: Any = MISSING
    pruner: Any = MISSING
    direction: str = "minimize"  # or maximize
    objective: str = "val/error"  # a metric every epoch logs
    study_name: str | None = None  # None: a new study per command, found again by resume=true
    storage: str | None = None  # None: beside a SQLite store (tracking.study_storage)
    n_trials: int = 20  # trials in the study, all processes together
    n_jobs: int = 2  # trials per batch, launched together
    params: dict[str, Any] | None = None  # key → override-grammar string, e.g. interval(0, 1)


# --- what a trial is worth -------------------------------------------------------------------

# the per-epoch metrics of a run (tracking.recorder.METRIC_KEYS) → EpochMetrics' fields
_FIELDS = {
    "train/loss": "train_loss",
    "train/error": "train_error",
    "val/loss": "val_loss",
    "val/error": "val_error",
    "test/loss": "test_loss",
    "test/error": "test_error",
}


def objective_value(m: EpochMetrics, objective: str) -> float | None:
    """The objective's value in one epoch's metrics (None: not measured, e.g. no split)."""
    value = getattr(m, _FIELDS[objective])
    return None if value is None else float(value)


def _check_objective(sweeper: OptunaSweeper, cfg: Config) -> None:
    """The objective is a metric every trial logs, the direction is known, counts are >= 1."""
    problems = []
    if sweeper.objective not in _FIELDS:
        problems.append(
            f"hydra.sweeper.objective must be a metric every epoch logs, one of "
            f"{', '.join(_FIELDS)}; got {sweeper.objective!r}"
        )
    elif sweeper.objective.startswith("val/") and cfg.dataset.val_size <= 0:
        problems.append(
            f"hydra.sweeper.objective={sweeper.objective} needs a validation split, but "
            f"dataset.val_size is {cfg.dataset.val_size}: set dataset.val_size (e.g. 10000) "
            "or choose another objective"
        )
    if sweeper.direction not in DIRECTIONS:
        problems.append(
            f"hydra.sweeper.direction must be minimize or maximize, got {sweeper.direction!r}"
        )
    for key in ("n_trials", "n_jobs"):
        value = getattr(sweeper, key)
        if not isinstance(value, int) or value < 1:
            problems.append(f"hydra.sweeper.{key} must be an int >= 1, got {value!r}")
    if problems:
        raise ConfigError.broken(problems)


def corner_values(distribution: BaseDistribution) -> list[Any]:
    """The values of a distribution a study could reach first and last: both ends of a range,
    every choice. Validating each (the others at their first) finds a bad space before any
    trial runs."""
    from optuna.distributions import CategoricalDistribution

    if isinstance(distribution, CategoricalDistribution):
        return list(distribution.choices)
    low, high = distribution.low, distribution.high  # type: ignore[attr-defined]
    return [low] if low == high else [low, high]


# --- the sweeper -----------------------------------------------------------------------------


@dataclass
class _Study:
    """An open study: Optuna's side and MLflow's."""

    study: optuna.Study
    storage: optuna.storages.RDBStorage  # the study's, for the trials of other processes
    storage_url: str
    uri: str
    experiment: str
    experiment_ids: dict[tuple[str, str], str]
    parent: str
    sweep_id: str
    resumed: bool


@dataclass
class _Told:
    """One trial's outcome, as told to Optuna and tagged on its run."""

    state: str  # COMPLETE, PRUNED, FAIL
    value: float | None
    run_id: str | None
    reason: str | None = None
    interrupted: bool = False


class OptunaSweeper(SoftmaxLabSweeper):
    """Optuna's search over a Hydra search space, each trial a tracked (and maybe fused) job."""

    def __init__(
        self,
        sampler: Any,
        pruner: Any,
        direction: str = "minimize",
        objective: str = "val/error",
        study_name: str | None = None,
        storage: str | None = None,
        n_trials: int = 20,
        n_jobs: int = 2,
        params: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(max_batch_size=None, params=None)
        self.sampler_conf, self.pruner_conf = sampler, pruner
        self.direction, self.objective = direction, objective
        self.study_name, self.storage = study_name, storage
        self.n_trials, self.n_jobs = n_trials, n_jobs
        self.search_params = dict(params or {})
        self._judge_lock = threading.Lock()

    # --- before any work ----------------------------------------------------------------

    def _space(self, arguments: list[str]) -> tuple[SearchSpace, Config]:
        """The search space, its corners validated, and the config of its first corner."""
        assert self.config is not None
        base = OmegaConf.to_container(self.config, resolve=False)
        assert isinstance(base, dict)
        known = {"model", "dataset", "optim", "tracking", "seed", "resume"}
        for group, values in base.items():
            if isinstance(values, dict) and group != "hydra":
                known.update(f"{group!s}.{k!s}" for k in values)
        space = parse_search_space(self.search_params, arguments, known_keys=known)
        if not space.distributions:
            raise ConfigError.broken(
                [
                    "hydra.sweeper.params: nothing to search; give at least one parameter as an "
                    "interval(...), range(...) or choice(...) (in the experiment or on the "
                    "command line)"
                ]
            )
        first = {k: corner_values(d)[0] for k, d in space.distributions.items()}
        jobs = [trial_overrides(space, first)]
        for key, distribution in space.distributions.items():
            for value in corner_values(distribution)[1:]:
                jobs.append(trial_overrides(space, {**first, key: value}))
        _, configs, problems = self.compose_configs(jobs)
        if problems:
            raise ConfigError.broken(
                [f"the search space reaches a config that breaks a rule: {p}" for p in problems]
            )
        cfg = configs[0]
        assert cfg is not None
        return space, cfg

    def sweep(self, arguments: list[str]) -> Any:
        assert self.config is not None and self.launcher is not None
        try:
            space, cfg = self._space(arguments)
            _check_objective(self, cfg)
        except ConfigError as e:
            print(
                "softmax-lab: the search cannot start; nothing was run:\n  "
                + "\n  ".join(e.problems),
                file=sys.stderr,
            )
            raise SystemExit(INPUT_ERROR_EXIT) from e
        try:
            study = self._open_study(arguments, space, cfg)
        except InputError as e:  # e.g. no server at tracking.uri, a study database it cannot open
            raise SystemExit(report_input_error(e, suffix="; nothing was run")) from e
        sweep_dir = Path(self.config.hydra.sweep.dir)
        sweep_dir.mkdir(parents=True, exist_ok=True)
        write_atomically(sweep_dir / "multirun.yaml", OmegaConf.to_yaml(self.config).encode())
        self._announce(study, space)
        status, reason, failed, closed = "KILLED", None, [], True
        progress = SweepProgress(self.n_trials)
        state.current[:] = [
            state.SweepState(study.sweep_id, self.n_trials, progress, study.experiment_ids)
        ]
        try:
            failed = self._run_trials(study, space, arguments)
            status = "FINISHED"
        except Exception as e:  # not an interruption: the parent run FAILED, with the cause
            status, reason = "FAILED", f"{type(e).__name__}: {e}"
            raise
        finally:
            progress.close()
            state.current.clear()
            state.judges.clear()
            # the last process of a study records it and closes its parent run
            if not self._others_running(study):
                self._record_study(study, space, sweep_dir / "report")
                closed = finish_parent(
                    study.uri, study.experiment, study.sweep_id, study.parent, status, reason
                )
            else:
                print(f"study {study.study.study_name}: other processes still run its trials")
        self._summarise(study, failed, sweep_dir / "report", cfg)
        state.last_exit_code[0] = 0 if closed else 1
        return []

    def _open_study(self, arguments: list[str], space: SearchSpace, cfg: Config) -> _Study:
        """The MLflow store and experiment, the study's database and the study, and its parent
        run: found again (``resume=true``, or a named study another process started) or new."""
        import optuna

        from softmax_lab.tracking import provenance, reading, run_writes, store, study_storage

        optuna.logging.set_verbosity(optuna.logging.WARNING)  # the CLI prints what happens

        uri = store.resolve_uri(cfg.tracking.uri)
        url = study_storage.study_storage_url(uri, self.storage)  # before anything is made
        experiment_id = store.prepare_store(uri, cfg.tracking.experiment)
        storage = study_storage.open_study_storage(url)
        signature = sweep_signature(arguments)
        name, resumed = self.study_name, False
        if name is None and cfg.resume:
            found = reading.find_sweep_run(uri, cfg.tracking.experiment, signature)
            if found is not None:
                tags = reading.run_tags(uri, found[0])
                name = tags.get("sl.study_name")
        if name is None:
            name = f"{cfg.tracking.experiment}/{signature}/{uuid.uuid4().hex[:8]}"
        sampler = _instantiate(self.sampler_conf, "hydra.sweeper.sampler")
        pruner = _instantiate(self.pruner_conf, "hydra.sweeper.pruner")
        study = optuna.create_study(
            storage=storage,
            study_name=name,
            sampler=sampler,
            pruner=pruner,
            direction="maximize" if self.direction == "maximize" else "minimize",
            load_if_exists=True,
        )
        if study.direction.name.lower() != self.direction:
            raise InputError(
                f"hydra.sweeper.direction={self.direction}, but study {name!r} in "
                f"{study_storage.redact(url)} was made with direction "
                f"{study.direction.name.lower()}"
            )
        # one parent run per study: processes starting it at once take turns here
        with study_storage.asking(storage, url, name):
            attrs = study.user_attrs
            parent, sweep_id = attrs.get("sl.parent_run_id"), attrs.get("sl.sweep_id")
            if parent is None or sweep_id is None:
                sweep_id = uuid.uuid4().hex[:8]
                parent = run_writes.start_sweep_run(
                    uri,
                    experiment_id,
                    sweep_id=sweep_id,
                    run_name=f"study {name.rsplit('/', 1)[-1]}: {' '.join(arguments)}"[:250],
                    tags={
                        "sl.overrides": " ".join(arguments),
                        "sl.sweep_signature": signature,
                        "sl.search": "optuna",
                        "sl.study_name": name,
                        "sl.study_storage": study_storage.redact(url),
                        "sl.objective": self.objective,
                        "sl.direction": self.direction,
                        "sl.n_trials": str(self.n_trials),
                        **{f"search.{line.split(':', 1)[0]}": line for line in describe(space)},
                        **provenance.environment_tags(),
                    },
                )
                study.set_user_attr("sl.parent_run_id", parent)
                study.set_user_attr("sl.sweep_id", sweep_id)
            else:
                resumed = True
                run_writes.reopen_run(uri, parent)
        return _Study(
            study,
            storage,
            url,
            uri,
            cfg.tracking.experiment,
            {(uri, cfg.tracking.experiment): experiment_id},
            parent,
            sweep_id,
            resumed,
        )

    def _announce(self, study: _Study, space: SearchSpace) -> None:
        from softmax_lab.tracking.study_storage import redact

        trials = study.study.get_trials(deepcopy=False)
        print(
            f"study {study.study.study_name}: {self.n_trials} trials, {self.n_jobs} at a time, "
            f"{self.direction} {self.objective}; sweep {study.sweep_id} tracked in {study.uri} "
            f"(parent run {study.parent}), trials in {redact(study.storage_url)}"
        )
        for line in describe(space):
            print(f"  {line}")
        if trials:
            print(f"resume: the study has {len(trials)} trials already")

    # --- the trials -----------------------------------------------------------------------

    def _counted(self, study: optuna.Study) -> int:
        """Trials that count towards ``n_trials``: ended (interrupted ones aside) or running."""
        from optuna.trial import TrialState

        return sum(
            1
            for t in study.get_trials(deepcopy=False)
            if t.state in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING)
            or (t.state == TrialState.FAIL and not t.user_attrs.get(INTERRUPTED_ATTR))
        )

    def _others_running(self, study: _Study) -> bool:
        """Whether another live process still runs trials of this study."""
        from optuna.trial import TrialState

        from softmax_lab.tracking.sweep_lock import Holder

        me = Holder.this_process()
        for t in study.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            owner = Holder.from_tags(t.user_attrs.get(OWNER_ATTR, {}))
            if owner is None:
                return True  # not ours to judge
            if (owner.host, owner.pid) != (me.host, me.pid) and not owner.is_dead():
                return True
        return False

    def _reap_dead(self, study: _Study) -> None:
        """Trials RUNNING in a process that died on this host (e.g. SIGKILL): FAIL, marked
        interrupted, queued again with the same parameters; their runs closed as KILLED."""
        from optuna.trial import TrialState

        from softmax_lab.tracking import reading, run_writes
        from softmax_lab.tracking.sweep_lock import Holder

        dead = {}  # trial number → why its run is closed
        for t in study.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            owner = Holder.from_tags(t.user_attrs.get(OWNER_ATTR, {}))
            if owner is not None and owner.is_dead():
                dead[t.number] = (
                    f"its sweep process ({owner.describe()}) died; trial {t.number} queued "
                    f"again by pid {Holder.this_process().pid}"
                )
        if not dead:
            return
        # the study's RUNNING runs, read once for all the dead trials: each by its job number
        experiment_ids = sorted(set(study.experiment_ids.values()))
        running = {
            reading.run_tags(study.uri, run_id).get("sl.hydra_job_num"): run_id
            for run_id in reading.find_child_runs(
                study.uri, experiment_ids, study.parent, status="RUNNING"
            )
        }
        for number, reason in dead.items():
            self._fail_interrupted(study, number, reason)
            if (run_id := running.get(str(number))) is not None:
                run_writes.finish_run(study.uri, run_id, "KILLED", reason)
            print(f"resume: trial {number} was left RUNNING by a dead process: {reason}")

    @staticmethod
    def _fail_interrupted(study: _Study, number: int, reason: str) -> None:
        """Mark a RUNNING trial interrupted, FAIL it and queue its parameters again."""
        from optuna.trial import TrialState

        storage = study.storage
        study_id = storage.get_study_id_from_name(study.study.study_name)
        trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, number)
        trial = storage.get_trial(trial_id)
        if trial.state.is_finished():
            return
        storage.set_trial_user_attr(trial_id, INTERRUPTED_ATTR, reason)
        study.study.tell(number, state=TrialState.FAIL)
        study.study.enqueue_trial(dict(trial.params), user_attrs={"sl.retry_of": number})

    def _run_trials(self, study: _Study, space: SearchSpace, arguments: list[str]) -> list[str]:
        """Ask, launch and tell batches until the study holds ``n_trials`` trials; return one
        line per failed trial."""
        from softmax_lab.tracking.study_storage import asking
        from softmax_lab.tracking.sweep_lock import Holder

        owner = Holder.this_process().tags()
        extra = bookkeeping_overrides(study.parent, study.sweep_id)
        failed: list[str] = []
        while True:
            self._reap_dead(study)
            # other processes of the study count and ask in turn: exactly n_trials start
            with asking(study.storage, study.storage_url, study.study.study_name):
                n = min(self.n_jobs, self.n_trials - self._counted(study.study))
                trials = [study.study.ask(dict(space.distributions)) for _ in range(max(n, 0))]
                for t in trials:
                    t.set_user_attr(OWNER_ATTR, owner)
            if not trials:
                return failed
            try:
                told = self._run_batch(study, space, trials, extra)
            except BaseException as e:  # Ctrl-C, SIGTERM or a crash: the batch's trials
                for t in trials:
                    self._fail_interrupted(study, t.number, f"interrupted ({type(e).__name__})")
                raise
            for t, outcome in zip(trials, told, strict=True):
                self._tell(study, t, outcome)
                if outcome.state == "FAIL":
                    failed.append(f"trial {t.number}: {outcome.reason}")

    def _run_batch(
        self,
        study: _Study,
        space: SearchSpace,
        trials: Sequence[optuna.Trial],
        extra: list[str],
    ) -> list[_Told]:
        """Launch a batch of trials as jobs (each judged by the pruner after every epoch) and
        return their outcomes, told to Optuna by the caller once the batch has ended."""
        nums = [t.number for t in trials]
        jobs = [trial_overrides(space, t.params) for t in trials]
        composed, configs, problems = self.compose_configs(jobs, nums)
        told: dict[int, _Told] = {}
        for k, cfg in enumerate(configs):
            if cfg is None:  # a combination the corners did not reach: FAIL, the study goes on
                told[k] = _Told("FAIL", None, None, problems.pop(0))
        run = [k for k in range(len(trials)) if k not in told]
        if run:
            state.judges.clear()
            state.judges.update({nums[k]: self._judge(trials[k]) for k in run})
            run_jobs = [jobs[k] + extra for k in run]
            self.hand_over(
                [nums[k] for k in run],
                run_jobs,
                study.parent,
                study.sweep_id,
                composed=[composed[k] for k in run],
            )
            results = self.launch_jobs(run_jobs, [nums[k] for k in run])
            for k, ret in zip(run, results, strict=True):
                told[k] = self._outcome(ret)
        return [told[k] for k in range(len(trials))]

    def _judge(self, trial: optuna.Trial) -> Any:
        """After each logged epoch of the trial's job: report the objective, ask the pruner."""
        objective = self.objective

        def judge(m: EpochMetrics) -> bool:
            value = objective_value(m, objective)
            if value is None or not math.isfinite(value):
                return False  # a diverging epoch fails the trial by itself
            with self._judge_lock:  # the fused groups' threads report one at a time
                trial.report(value, m.epoch)
                return bool(trial.should_prune())

        return judge

    def _outcome(self, ret: Any) -> _Told:
        """What a job's outcome makes of its trial."""
        try:
            outcome = ret.return_value
        except Exception as e:  # a job that raised past run_job
            return _Told("FAIL", None, None, f"{type(e).__name__}: {e}")
        status = getattr(outcome, "status", "FAILED")
        run_id = getattr(outcome, "run_id", None)
        history = getattr(outcome, "history", [])
        if status != "FINISHED" or not history:
            return _Told("FAIL", None, run_id, getattr(outcome, "reason", None) or status)
        if getattr(outcome, "reason", None):  # FINISHED but exploded: it diverged all the same
            return _Told("FAIL", None, run_id, outcome.reason)
        value = objective_value(history[-1], self.objective)
        if value is None or not math.isfinite(value):
            return _Told("FAIL", None, run_id, f"{self.objective} is {value}")
        if getattr(outcome, "stopped_at", None) is not None:
            return _Told("PRUNED", value, run_id)
        return _Told("COMPLETE", value, run_id)

    def _tell(self, study: _Study, trial: optuna.Trial, told: _Told) -> None:
        """Tell Optuna, and tag the trial's run with its number and state."""
        from optuna.trial import TrialState

        from softmax_lab.tracking import run_writes

        if told.run_id is not None:
            trial.set_user_attr(RUN_ATTR, told.run_id)
        if told.reason is not None:
            trial.set_user_attr("sl.reason", told.reason[:500])
        states = {"COMPLETE": TrialState.COMPLETE, "PRUNED": TrialState.PRUNED}
        if told.state == "COMPLETE":
            study.study.tell(trial, told.value)
        else:
            study.study.tell(trial, state=states.get(told.state, TrialState.FAIL))
        if told.run_id is not None:
            searched = " ".join(f"{k}={format_value(v)}" for k, v in trial.params.items())
            state_note = "" if told.state == "COMPLETE" else f" [{told.state}]"
            run_writes.set_run_tags(
                study.uri,
                told.run_id,
                {
                    "sl.trial_number": str(trial.number),
                    "sl.trial_state": told.state,
                    "sl.study_name": study.study.study_name,
                    # the UI's run name: which trial, how it ended, what it tried
                    "mlflow.runName": f"trial {trial.number}{state_note}: {searched}"[:250],
                },
            )

    # --- the end --------------------------------------------------------------------------

    def _record_study(self, study: _Study, space: SearchSpace, report_dir: Path) -> None:
        """The study on its parent run: best trial's parameters, objective and test error,
        and the study's pictures. A failure here is a warning: the trials stand."""
        try:
            self._record_best(study)
            self._record_pictures(study, space, report_dir)
        except Exception as err:  # the pictures and summary are extra
            print(
                f"softmax-lab: could not record the study on its parent run: "
                f"{type(err).__name__}: {err}",
                file=sys.stderr,
            )

    def _best(self, study: optuna.Study) -> FrozenTrial | None:
        from optuna.trial import TrialState

        done = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        return study.best_trial if done else None

    def _record_best(self, study: _Study) -> None:
        from softmax_lab.tracking import reading, run_writes

        best = self._best(study.study)
        if best is None:
            return
        run_id = best.user_attrs.get(RUN_ATTR)
        test_error = None
        if run_id is not None:
            history = reading.metric_history(study.uri, run_id, "test/error")
            test_error = history[-1][1] if history else None
        n = len(study.study.get_trials(deepcopy=False))
        metrics = {f"best/{self.objective}": float(best.value or math.nan)}
        if test_error is not None:
            metrics["best/test/error"] = float(test_error)
        run_writes.log_metrics(study.uri, study.parent, metrics, step=n)
        run_writes.set_run_tags(
            study.uri,
            study.parent,
            {
                "sl.best_trial": str(best.number),
                "sl.best_run_id": str(run_id),
                "sl.best_params": json.dumps(best.params, sort_keys=True),
                **{f"best.{k}": str(v) for k, v in best.params.items()},
            },
        )

    def _record_pictures(self, study: _Study, space: SearchSpace, report_dir: Path) -> None:
        from optuna.distributions import (
            CategoricalDistribution,
            FloatDistribution,
            IntDistribution,
        )
        from optuna.trial import TrialState

        from softmax_lab.pictures.study import TrialPoint, draw_study_pictures
        from softmax_lab.tracking import run_writes

        points = []
        for t in study.study.get_trials(deepcopy=False):
            if t.state == TrialState.COMPLETE:
                value = t.value
            elif t.state == TrialState.PRUNED and t.intermediate_values:
                value = t.intermediate_values[max(t.intermediate_values)]
            elif t.state == TrialState.FAIL and not t.user_attrs.get(INTERRUPTED_ATTR):
                value = None
            else:
                continue  # running elsewhere, queued, or interrupted and queued again
            points.append(
                TrialPoint(
                    number=t.number,
                    state=t.state.name,
                    value=value,
                    params=dict(t.params),
                    epochs=max(t.intermediate_values, default=0),
                )
            )
        if not points:
            return
        log_params = [
            k
            for k, d in space.distributions.items()
            if isinstance(d, (FloatDistribution, IntDistribution)) and d.log
        ]
        paths = draw_study_pictures(
            report_dir / "study",
            points,
            objective=self.objective,
            direction=self.direction,
            importances=_importances(study.study),
            log_params=log_params,
            categorical_params=[
                k for k, d in space.distributions.items() if isinstance(d, CategoricalDistribution)
            ],
        )
        run_writes.log_files(study.uri, study.parent, paths, "study")
        names = ", ".join(p.name for p in paths)
        print(
            f"\nstudy pictures: {report_dir / 'study'}/ ({names}; on the parent run under study/)"
        )

    def _summarise(self, study: _Study, failed: list[str], report_dir: Path, cfg: Config) -> None:
        """The study's lines on the terminal, then the sweep's table of its trials."""
        from collections import Counter

        from softmax_lab.cli.summary import summarise_sweep

        trials = study.study.get_trials(deepcopy=False)
        counts = Counter(
            "interrupted" if t.user_attrs.get(INTERRUPTED_ATTR) else t.state.name.lower()
            for t in trials
        )
        print(
            f"\nstudy {study.study.study_name}: {len(trials)} trials ("
            + ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
            + ")"
        )
        best = self._best(study.study)
        if best is not None:
            params = " ".join(f"{k}={v}" for k, v in best.params.items())
            print(
                f"best trial {best.number}: {self.objective} {best.value:.4f} with {params} "
                f"(run {str(best.user_attrs.get(RUN_ATTR, '?'))[:8]}; its test error is on the "
                "parent run as best/test/error)"
            )
        summarise_sweep(
            study.uri,
            study.experiment,
            study.sweep_id,
            len(trials),
            failed,
            study.parent,
            report_dir,
            log_best_model=cfg.tracking.log_model == "single",
        )


def _instantiate(conf: Any, key: str) -> Any:
    """A sampler or pruner: Hydra made it already when it made this sweeper (its config is
    instantiated recursively); from its ``_target_`` config otherwise. A bad one names ``key``."""
    from hydra.utils import instantiate
    from omegaconf import DictConfig

    if not isinstance(conf, (DictConfig, dict)):
        return conf
    try:
        return instantiate(conf)
    except Exception as err:
        raise InputError(f"{key}: cannot make it from {conf!r}: {err}") from err


def _importances(study: optuna.Study) -> dict[str, float] | None:
    """fANOVA importances of the searched parameters (seeded), or None with fewer than two
    finished trials or a parameter the evaluator cannot use."""
    import optuna
    from optuna.trial import TrialState

    done = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if len(done) < 2:
        return None
    try:
        return optuna.importance.get_param_importances(
            study, evaluator=optuna.importance.FanovaImportanceEvaluator(seed=0)
        )
    except Exception:  # e.g. every trial has the same value: nothing to attribute
        return None

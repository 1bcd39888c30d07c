"""Everything MLflow: where runs are stored, how a job's run is recorded, and reading runs back.

This package is the only place that imports mlflow. It talks to stores through ``MlflowClient``
(no global active run), so several runs can be open in one process. Its modules:

- ``store``: tracking URIs, creating stores and experiments (``prepare_store``), lock retries
  (``retry_locked``);
- ``reachable``: is an MLflow server answering at an ``http(s)://`` URI (one request, 5 s)?
- ``sqlite_file``: SQLite store files, created from a pre-migrated template, in WAL mode;
- ``recorder``: ``RunRecorder``, one job's run, and the metric keys;
- ``run_inputs``: a run's data as MLflow dataset inputs (``dataset_inputs``: one per part,
  training, validation, test; the dataset fingerprint as digest, no pass over the arrays);
- ``run_writes``: writes to any run by id (a sweep's parent run, tags after the fact, closing
  the runs a dead sweep left RUNNING);
- ``study_storage``: where an Optuna study keeps its trials, beside the MLflow store (a SQLite
  file, or the team store's PostgreSQL), and the lock its processes ask for trials under;
- ``sweep_lock``: a sweep's lock in its store (``acquire_sweep_lock``), so one process at a
  time runs a sweep;
- ``provenance``: ``environment_tags``, the version, git commit and BLAS a run ran with;
- ``reading``: reading runs back (``runs_frame``, ``metric_history``, the lookups of resume);
- ``run_lookup``: one run by its id or a prefix of it (``run_info``, text artifacts, downloads);
- ``postgres``: a PostgreSQL cluster of our own (``initdb``, ``pg_ctl``, run as ``postgres``
  when we are root), password-only on TCP;
- ``team_server``: ``TeamStore``, ``mlflow server`` with basic auth and proxied artifacts over
  such a cluster, all in one directory, started and stopped by PID file;
- ``models``: a run's hypothesis as an MLflow pyfunc model (``runs:/<id>/model``): the wrapper,
  logging it at a job's end or after the fact, loading it for ``predict``;
- ``registry``: a run's model as a registered model version with an alias (``register_run``);
- ``push``: an experiment's runs copied into another store once each (``push_experiment``), e.g.
  from one's own SQLite store into the team store.

May import: ``softmax_lab.errors``, ``core`` (for ``EpochMetrics``), ``config``, NumPy, pandas,
MLflow, Optuna's storage and psycopg; nothing above it (``runs``, ``review``, ``cli``) and not
``fusion`` or ``pictures``.
Import each name from its module, e.g. ``from softmax_lab.tracking.store import prepare_store``.

Names other modules code against:

- metrics, one point per epoch at ``step = epoch`` (1-based): ``train/loss``, ``train/error``,
  ``val/loss`` and ``val/error`` (only with a validation split, ``dataset.val_size`` > 0),
  ``test/loss``, ``test/error``, ``epoch_seconds``;
- params: ``config.schema.flatten(cfg)`` with values stringified (``None`` as ``"None"``);
- tags: ``sl.role`` (``"job"`` | ``"sweep"``), ``sl.sweep_id``, ``sl.config_hash``, … (see
  ``environment_tags``), plus MLflow's ``mlflow.parentRunId`` and ``mlflow.runName``;
- inputs: ``<dataset>/train``, ``<dataset>/validation``, ``<dataset>/test`` with contexts
  ``training``, ``validation``, ``test`` and the digest ``run_inputs.dataset_digest``;
- artifacts: ``params/<name>.npy``, ``config.yaml``, ``overrides.yaml``, ``plots/…``;
- models: the logged model ``model`` of a run (``runs:/<id>/model``; ``tracking.log_model``).

SQLite stores get three things plain MLflow does not give them (see ``prepare_store``): creation
from a pre-migrated template (fast, and atomic, so parallel jobs never race through the schema
migrations), WAL journal mode (readers and the writer stop blocking each other), and a retry with
backoff around writes that still meet ``database is locked``.
"""

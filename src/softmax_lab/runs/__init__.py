"""Runs: one job end to end — open its MLflow run, train, record, draw, close.

- ``job``: a job's context and run: ``open_job`` (validated config, data, model, the run with
  its params, tags and dataset inputs), ``close_job`` (θ, config files, pictures, the
  explosion flag, the pruning tags of a job a judge stopped early, the final status), and
  ``run_job`` for a job trained alone;
- ``fused_job``: the jobs of a fused group, recorded as their epochs arrive from the group's
  worker (or trained in this process when no worker could start), each closed as soon as its
  own epochs are done; and a fused run's replay for ``rerun``;
- ``timings``: phase timers and timing marks that the sweep benchmark reads
  (``SOFTMAX_LAB_TIMINGS``).

May import: ``fusion``, ``tracking``, ``pictures``, ``config``, ``data``, ``core``,
``errors``, NumPy, PyYAML; not ``review`` or ``cli``, no Hydra.
"""

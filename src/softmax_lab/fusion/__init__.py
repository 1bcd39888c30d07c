"""Fusion: training the jobs of a sweep that differ only in step size and epochs as one stack.

- ``groups``: which jobs fuse (every flattened config key but ``optim.lr``, ``optim.epochs`` and
  ``resume`` equal, softmax regression only), a group's plan, starting its worker;
- ``stacked``: a group's plan from its jobs (``plan_fused``), from a run's tag
  (``replay_plan``), and training it on a data set (``train_group``) through the one training
  loop, ``core.training.train_stack``;
- ``worker``: a group trained in a forked child process that streams each job's epochs and
  result back to the sweep process (in lockstep, waiting after each epoch for which jobs to
  stop early);
- ``remote``: a unit of a sweep (a fused group, or a job alone) trained from its configs on
  whichever machine runs it, as a stream of events: the body of a Ray task
  (``hydra/launcher=ray``), which loads the data on its node and checks their fingerprint.

May import: ``config``, ``data``, ``core``, ``errors``, NumPy and the standard library; not
``tracking`` or ``pictures`` (its siblings), nothing above it, no MLflow or Hydra. ``remote``
alone may import Ray, inside its task body only: that body runs on the cluster's workers,
which should import what trains (this layer), not the command line's Hydra app.
"""

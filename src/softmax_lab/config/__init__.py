"""Config: what one job is, as plain dataclasses, and the rules its values must keep.

- ``schema``: the dataclasses (``Config`` and one per group: dataset, model, optim, tracking)
  that Hydra's structured configs are built on and the layers below the CLI take;
  ``DatasetConfig.load()``, ``validate``, ``flatten``, ``config_hash``, ``config_from_dict``;
- ``rules``: the range rules as one declarative table (key, constraint, condition) that
  ``validate`` walks; the constraints themselves are ``softmax_lab.core.constraints``.

May import: ``data``, ``core``, ``errors`` and the standard library; no MLflow, Hydra or
OmegaConf (the CLI converts a ``DictConfig`` into these dataclasses at its boundary).
"""

"""Compose a sweep's job configs, running Hydra's composition once per family of jobs.

Hydra composes every job from scratch (defaults tree, YAML, schema merge: 0.06–0.18 s a job), yet
in a grid most jobs differ only in plain values such as ``optim.lr=0.1`` vs ``optim.lr=0.2``.
Hydra applies such value overrides *after* composing the defaults, so jobs that share their
other overrides (config-group choices, ``+``/``~`` overrides of groups, ``hydra`` overrides)
share everything composed before that step. ``compose_jobs`` composes that shared part once
per family with Hydra itself (``load_sweep_config`` on the family's other overrides), then
gives each job a deep copy with its value overrides applied by Hydra's own code
(``ConfigLoaderImpl._apply_overrides_to_config``, so the structured schema type-checks and a
wrong type raises ``ConfigCompositionException`` naming the key) and the per-job fields Hydra
sets after that step, exactly as ``ConfigLoaderImpl._load_configuration_impl`` sets them:
``hydra.overrides.task`` and ``hydra.job.override_dirname``. Every other field it sets
(``hydra.runtime.choices``, ``config_sources``, ``hydra.overrides.hydra``, ``hydra.job.name``,
…) depends only on what the family shares. Jobs with anything else (``+key=``/``++key=``/
``~key`` on a value, a dict value, a sweep value, ``hydra.searchpath`` or ``hydra.overrides``)
are composed by Hydra alone, as before.

The Hydra internals used here are those of hydra-core 1.3 (pinned ``<1.4`` in pyproject).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass

from hydra._internal.config_loader_impl import ConfigLoaderImpl, get_overrides_dirname
from hydra.core.config_loader import ConfigLoader
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override, OverrideType, ValueType
from omegaconf import DictConfig, OmegaConf

__all__ = ["JobPlan", "compose_jobs", "plan_job"]

# overrides of these change where groups are found, or lists Hydra appends to per job
_HYDRA_OWN = ("hydra.searchpath", "hydra.overrides")


@dataclass(frozen=True)
class JobPlan:
    """How one job is composed from its family's template.

    ``shared``: the job's overrides that shape the composition (group choices, ``hydra``
    overrides), in their order, the family's key. ``values``: its plain value overrides, in
    their order. ``parsed``: all its overrides, parsed.
    """

    shared: tuple[str, ...]
    values: tuple[Override, ...]
    parsed: tuple[Override, ...]


def _is_plain_value(override: Override) -> bool:
    """``key=value`` with no prefix, package, sweep or dict value, outside ``hydra``.

    (Whether ``key`` is a config group is asked separately.) A dict is left out because it
    merges into the node rather than replacing it, and Hydra applies it in order with the rest.
    """
    return (
        override.type == OverrideType.CHANGE
        and override.package is None
        and override.value_type == ValueType.ELEMENT
        and not override.is_hydra_override()
        and override.key_or_group != "hydra"
        and not isinstance(override.value(), dict)
    )


def plan_job(
    loader: ConfigLoaderImpl,
    parser: OverridesParser,
    job: Sequence[str],
    is_group: dict[str, bool] | None = None,
) -> JobPlan | None:
    """Split a job's overrides into its family's shared part and its plain value overrides.

    ``None`` when the job must be composed by Hydra on its own: a non-group override with a
    ``+``/``++``/``~`` prefix or a dict value, a sweep, or a ``hydra.searchpath`` override
    (which changes where groups are looked up) or of ``hydra.overrides`` (which Hydra extends
    per job). ``is_group`` caches Hydra's group lookups.
    """
    parsed = tuple(parser.parse_overrides(list(job)))
    groups = {} if is_group is None else is_group
    shared: list[str] = []
    values: list[Override] = []
    for override, line in zip(parsed, job, strict=True):
        key = override.key_or_group
        if override.is_sweep_override() or key.startswith(_HYDRA_OWN):
            return None
        if key not in groups:  # Hydra's own test (hydra._internal.defaults_list.Overrides)
            groups[key] = loader.repository.group_exists(key)
        if isinstance(override.value(), dict) and not override.is_hydra_override():
            return None  # Hydra merges a dict in order with the values, even on a group
        if override.is_hydra_override() or groups[key]:
            # group choices and hydra.* touch no value key, so the template may apply them
            # before the job's values: the order does not change the result
            shared.append(line)
        elif _is_plain_value(override):
            values.append(override)
        else:
            return None
    return JobPlan(tuple(shared), tuple(values), parsed)


def _from_template(template: DictConfig, plan: JobPlan, master_config: DictConfig) -> DictConfig:
    """The template with the job's value overrides and per-job Hydra fields, as Hydra sets them."""
    cfg = copy.deepcopy(template)
    # Hydra's own step: struct mode and the schema type-check each value
    ConfigLoaderImpl._apply_overrides_to_config(list(plan.values), cfg)
    task = [o for o in plan.parsed if not o.is_hydra_override()]
    cfg.hydra.overrides.task = [o.input_line for o in task]
    dirname = cfg.hydra.job.config.override_dirname
    cfg.hydra.job.override_dirname = get_overrides_dirname(
        overrides=task,
        kv_sep=dirname.kv_sep,
        item_sep=dirname.item_sep,
        exclude_keys=dirname.exclude_keys,
    )
    OmegaConf.copy_cache(from_config=master_config, to_config=cfg)  # as load_sweep_config
    return cfg


def compose_jobs(
    loader: ConfigLoader, master_config: DictConfig, jobs: Sequence[Sequence[str]]
) -> list[DictConfig]:
    """Each job's composed config, equal to ``loader.load_sweep_config(master_config, job)``.

    Composes with Hydra once per family of jobs that differ only in plain value overrides
    (plus once per job that fits no family), in job order, so the first bad job raises first.

    Raises
    ------
    hydra.errors.ConfigCompositionException
        As Hydra would, e.g. ``Error merging override optim.batch_size=big``.
    """
    if not isinstance(loader, ConfigLoaderImpl):  # another loader: no template to share
        return [loader.load_sweep_config(master_config, list(job)) for job in jobs]
    parser = OverridesParser.create()
    is_group: dict[str, bool] = {}
    searchpath = OmegaConf.select(master_config, "hydra.searchpath", default=None)
    templates: dict[tuple[str, ...], DictConfig] = {}
    configs: list[DictConfig] = []
    for job in jobs:
        # extra search paths may hold groups that loader.repository does not see
        plan = None if searchpath else plan_job(loader, parser, job, is_group)
        if plan is None:
            configs.append(loader.load_sweep_config(master_config, list(job)))
            continue
        if plan.shared not in templates:
            templates[plan.shared] = loader.load_sweep_config(master_config, list(plan.shared))
        configs.append(_from_template(templates[plan.shared], plan, master_config))
    return configs

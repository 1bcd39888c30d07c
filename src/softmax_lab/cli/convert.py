"""The CLI boundary: DictConfig in, ``softmax_lab.config.schema.Config`` dataclass out."""

from __future__ import annotations

from typing import Any

from omegaconf import DictConfig, OmegaConf

from softmax_lab.config.schema import Config, config_from_dict

__all__ = ["to_config"]


def to_config(cfg: DictConfig) -> Config:
    """Resolve every group but ``hydra`` and build the plain dataclass the job takes."""
    plain: dict[str, Any] = {}
    for key in cfg:
        if key == "hydra":
            continue
        value = cfg[key]
        plain[str(key)] = (
            OmegaConf.to_container(value, resolve=True) if OmegaConf.is_config(value) else value
        )
    return config_from_dict(plain)

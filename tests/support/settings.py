"""The environment variables a settings class reads, for checks that deployment files (the Helm
chart, docker-compose.yml) name only settings that exist."""

from __future__ import annotations

from pydantic import BaseModel
from pydantic_settings import BaseSettings


def env_names(settings: type[BaseSettings]) -> set[str]:
    """Every variable ``settings`` reads: its prefix, nested groups joined by ``__``."""
    prefix = str(settings.model_config.get("env_prefix", ""))
    return {prefix + name for name in _names(settings)}


def _names(model: type[BaseModel]) -> set[str]:
    out = set()
    for name, field in model.model_fields.items():
        kind = field.annotation
        if isinstance(kind, type) and issubclass(kind, BaseModel):
            out |= {f"{name.upper()}__{sub}" for sub in _names(kind)}
        else:
            out.add(name.upper())
    return out

"""Typed ComponentResources of the app stack.

A generated project holds only the components its answers deploy (aistarter vendors the library trimmed), so
ModelServer, Queue, Telemetry and VectorStore are imported when first used, never when the package is.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from ..config import ConfigError
from .addons import Addons
from .api import ApiService
from .network import NetworkPolicies

# Optional component -> (its module, the stack config key that asks for it).
OPTIONAL = {"ModelServer": ("model_server", "model_server"), "Queue": ("queue", "queue"),
            "Telemetry": ("telemetry", "telemetry"), "VectorStore": ("vector_store", "vector_store")}

__all__ = ["Addons", "ApiService", "NetworkPolicies", "load", *OPTIONAL]


def load(name: str) -> Any:
    """An optional component's class; a ConfigError (one line) when this copy of the library was vendored without
    it, i.e. the stack config asks for something the project's answers left out."""
    module, key = OPTIONAL[name]
    try:
        return getattr(import_module(f".{module}", __name__), name)
    except ModuleNotFoundError as exc:
        if exc.name != f"{__name__}.{module}":
            raise
        raise ConfigError(f"{key} is set in the stack config but this project's infra library has no "
                          f"components/{module}.py (it was generated without {key}): re-render it with the answer "
                          f"that adds it (aistarter update --set ...) or copy the file from aistarter's "
                          f"infra/aistarter_infra") from None


def __getattr__(name: str) -> Any:
    if name in OPTIONAL:
        return load(name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

"""Typed ComponentResources of the app stack."""

from .addons import Addons
from .api import ApiService
from .model_server import ModelServer
from .network import NetworkPolicies
from .queue import Queue
from .telemetry import Telemetry
from .vector_store import VectorStore

__all__ = ["Addons", "ApiService", "ModelServer", "NetworkPolicies", "Queue", "Telemetry", "VectorStore"]

"""The app stack program: the generated `infra/app/__main__.py` calls `build_app_stack(load_app_config(...))`.

The optional components are loaded only when the config asks for them: a project's copy of the library holds
only the ones its answers deploy.
"""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from . import kube
from .cluster import make_provider, platform_outputs
from .components import Addons, ApiService, NetworkPolicies, load
from .components.api import app_env
from .components.database import SECRET as DATABASE_SECRET
from .components.database import Database, MigrationJob
from .config import AppStackConfig, load_app_config


def build_app_stack(cfg: AppStackConfig) -> dict[str, Any]:
    """Create every resource for the blueprint; returns the values to export."""
    platform = platform_outputs(cfg)
    provider = make_provider(platform)
    with_provider = pulumi.ResourceOptions(providers=[provider])

    ns = k8s.core.v1.Namespace(
        "namespace",
        metadata={"name": cfg.namespace, "labels": {
            **kube.labels(cfg.project, "namespace"),
            # Every workload here meets the restricted Pod Security Standard; let the API server enforce it.
            "pod-security.kubernetes.io/enforce": "restricted",
            "pod-security.kubernetes.io/enforce-version": "latest",
        }},
        opts=pulumi.ResourceOptions(provider=provider),
    )
    namespace = ns.metadata["name"]

    addons = Addons("addons", cfg, platform, opts=with_provider)
    NetworkPolicies("network", cfg, namespace, opts=with_provider)
    if cfg.telemetry is not None:
        load("Telemetry")("telemetry", cfg, namespace, opts=with_provider)
    vector_service = None
    if cfg.vector_store is not None and cfg.vector_store.kind == "qdrant":
        store = load("VectorStore")("vector-store", cfg, namespace, platform, opts=with_provider)
        vector_service = store.service_name
    database = Database("database", cfg, namespace, platform, opts=with_provider)
    migrations = [MigrationJob("migrate", cfg, namespace, app_env(cfg, f"{cfg.project}-migrate"),
                               depends_on=[database.secret, *database.ready], opts=with_provider).job]
    if cfg.queue is not None:
        load("Queue")("queue", cfg, namespace, platform, keda_deps=addons.keda_deps,
                      monitoring_deps=addons.monitoring_deps, migrations=migrations, opts=with_provider)
    ApiService("api", cfg, namespace, monitoring_deps=addons.monitoring_deps,
               monitor_labels=platform.monitor_labels, migrations=migrations, opts=with_provider)
    if cfg.model_server is not None:
        load("ModelServer")("model-server", cfg, namespace, platform, keda_deps=addons.keda_deps,
                            monitoring_deps=addons.monitoring_deps, opts=with_provider)

    return {
        "namespace": namespace,
        "api_service": "api",
        "model_server_service": "model-server" if cfg.model_server is not None else None,
        "vector_store_service": vector_service,
        "redis_service": "redis" if cfg.queue is not None else None,
        "database_secret": DATABASE_SECRET,
        # Every idle timeout on the way in (Ingress, load balancer) must be longer than this.
        "api_longest_hold_s": cfg.api.longest_hold_s,
    }


def main(project: str) -> None:
    """Entry point for `infra/app/__main__.py`: read stack config, build, export."""
    # Kubernetes names and labels are DNS labels; the project slug may be a Python identifier.
    cfg = load_app_config(pulumi.Config(), project.lower().replace("_", "-"))
    for key, value in build_app_stack(cfg).items():
        if value is not None:
            pulumi.export(key, value)

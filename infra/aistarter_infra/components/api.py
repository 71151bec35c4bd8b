"""ApiService: the generated FastAPI backend (Deployment, Service, PDB, HPA v2, Ingress, ServiceMonitor)."""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from .. import kube
from ..config import AppStackConfig, provider_secret_keys
from .database import database_url_env
from .ingress import expose_api

COMPONENT = "api"
NAME = "api"
PROVIDER_SECRET = "provider-keys"

# The environment contract with the generated backend (app/settings.py reads these names).
ENV_CONTRACT = {
    "OPENAI_API_KEY": "secret provider-keys/openai_api_key (provider openai)",
    "ANTHROPIC_API_KEY": "secret provider-keys/anthropic_api_key (provider anthropic)",
    "GEMINI_API_KEY": "secret provider-keys/gemini_api_key (provider gemini)",
    "AISTARTER_API_KEYS": "secret provider-keys/api_keys (auth=api_key; comma-separated client keys)",
    "LOCAL_MODEL_BASE_URL": "http://model-server:8000/v1 (self_hosted); without a model server, secret "
                            "provider-keys/local_model_base_url (provider local)",
    "LOCAL_MODEL_NAME": "served model name (self_hosted)",
    "MODEL_COLD_START_WAIT_MS": "how long to hold a request while the model server wakes, then 503 + Retry-After",
    "QDRANT_URL / QDRANT_API_KEY": "vector_store=qdrant",
    "DATABASE_URL": "secret database/url: the shared PostgreSQL (components/database.py)",
    "AUTO_MIGRATE": "false: the migrate Job runs migrations once per deploy",
    "METRICS_PORT": "internal port serving /metrics and /internal/* (api.metrics_port, queue.worker_metrics_port)",
    "REDIS_URL": "redis://:<password>@redis:6379/0 (task_queue arq|celery)",
    "OTEL_EXPORTER_OTLP_ENDPOINT / OTEL_SERVICE_NAME": "observability != none",
}


def app_env(cfg: AppStackConfig, service_name: str) -> list[dict[str, Any]]:
    """Environment shared by the API, the worker and the migration Job: the same settings module runs in all."""
    env: list[dict[str, Any]] = [{"name": "APP_ENV", "value": "production"}, database_url_env(),
                                 {"name": "AUTO_MIGRATE", "value": "false"}]
    for provider in cfg.external_providers:
        env.append(kube.secret_env(f"{provider.upper()}_API_KEY", PROVIDER_SECRET, f"{provider}_api_key"))
    if cfg.api.auth == "api_key":
        env.append(kube.secret_env("AISTARTER_API_KEYS", PROVIDER_SECRET, "api_keys"))
    if cfg.local_endpoint_is_external:
        env.append(kube.secret_env("LOCAL_MODEL_BASE_URL", PROVIDER_SECRET, "local_model_base_url"))
    ms = cfg.model_server
    if ms is not None:
        env += [
            {"name": "LOCAL_MODEL_BASE_URL", "value": f"http://{ms.name}:{ms.port}/v1"},
            {"name": "LOCAL_MODEL_NAME", "value": ms.model},
            {"name": "MODEL_COLD_START_WAIT_MS", "value": str(cfg.api.latency_budget_ms)},
        ]
    vs = cfg.vector_store
    if vs is not None and vs.kind == "qdrant":
        env += [{"name": "QDRANT_URL", "value": "http://qdrant:6333"},
                kube.secret_env("QDRANT_API_KEY", "qdrant", "api-key")]
    if cfg.queue is not None:
        env += [kube.secret_env("REDIS_PASSWORD", "redis", "password"),
                {"name": "REDIS_URL", "value": "redis://:$(REDIS_PASSWORD)@redis:6379/0"}]
    if cfg.telemetry is not None:
        env += [{"name": "OTEL_EXPORTER_OTLP_ENDPOINT", "value": "http://otel-collector:4318"},
                {"name": "OTEL_SERVICE_NAME", "value": service_name}]
    return env


def service_monitor(name: str, namespace: pulumi.Input[str], project: str, component: str, port: str,
                    path: str, parent: pulumi.Resource, depends_on: list[pulumi.Resource],
                    monitor_labels: pulumi.Input[dict[str, str]] | None = None) -> None:
    # The platform's Prometheus selects ServiceMonitors by these labels (its `monitor_labels` output).
    labels = pulumi.Output.from_input({} if monitor_labels is None else monitor_labels).apply(
        lambda extra: {**kube.labels(project, component), **(extra or {})})
    k8s.apiextensions.CustomResource(
        f"{name}-monitor",
        api_version="monitoring.coreos.com/v1",
        kind="ServiceMonitor",
        metadata={"name": name, "namespace": namespace, "labels": labels},
        spec={
            "selector": {"matchLabels": kube.selector(project, component)},
            "endpoints": [{"port": port, "path": path, "interval": "15s"}],
        },
        opts=kube.opts(parent, depends_on),
    )


class ApiService(pulumi.ComponentResource):
    """The API Deployment behind a Service and Ingress, scaled by HPA v2 on CPU within the blueprint's bounds."""

    def __init__(self, name: str, cfg: AppStackConfig, namespace: pulumi.Input[str],
                 monitoring_deps: list[pulumi.Resource] | None = None,
                 monitor_labels: pulumi.Input[dict[str, str]] | None = None,
                 migrations: list[pulumi.Resource] | None = None,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("aistarter:app:ApiService", name, None, opts)
        api = cfg.api
        p = cfg.project

        def meta(n: str) -> dict[str, Any]:
            return kube.metadata(n, namespace, p, COMPONENT)

        pcfg = pulumi.Config()
        secret_data: dict[str, pulumi.Input[str]] = {key: pcfg.require_secret(key) for key in provider_secret_keys(cfg)}
        if secret_data:
            k8s.core.v1.Secret(f"{name}-provider-keys", metadata=meta(PROVIDER_SECRET), type="Opaque",
                               string_data=secret_data, opts=kube.opts(self))

        k8s.core.v1.ServiceAccount(f"{name}-sa", metadata=meta(NAME), automount_service_account_token=False,
                                   opts=kube.opts(self))

        container = {
            "name": "api",
            "image": api.image,
            "imagePullPolicy": kube.PULL_POLICY,
            "ports": [{"name": "http", "containerPort": api.port, "protocol": "TCP"},
                      {"name": "metrics", "containerPort": api.metrics_port, "protocol": "TCP"}],
            "env": [*app_env(cfg, f"{p}-api"), {"name": "METRICS_PORT", "value": str(api.metrics_port)}],
            "resources": api.resources.as_k8s(),
            "securityContext": kube.container_security_context(),
            # Startup gives slow imports room without making liveness lax afterwards.
            "startupProbe": kube.http_probe("/healthz", "http", period=5, failures=24),
            "livenessProbe": kube.http_probe("/healthz", "http", period=10, failures=3),
            "readinessProbe": kube.http_probe("/readyz", "http", period=5, failures=3),
            "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
        }
        self.deployment = k8s.apps.v1.Deployment(
            f"{name}-deployment",
            metadata=meta(NAME),
            spec={
                # No "replicas": the HPA owns the count (a value here would be re-applied on every update).
                "revisionHistoryLimit": 5,
                "selector": {"matchLabels": kube.selector(p, COMPONENT)},
                "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
                "template": {
                    "metadata": {"labels": kube.labels(p, COMPONENT)},
                    "spec": {
                        "serviceAccountName": NAME,
                        "automountServiceAccountToken": False,
                        "securityContext": kube.pod_security_context(),
                        "terminationGracePeriodSeconds": 30,
                        "topologySpreadConstraints": [{
                            "maxSkew": 1, "topologyKey": "kubernetes.io/hostname",
                            "whenUnsatisfiable": "ScheduleAnyway",
                            "labelSelector": {"matchLabels": kube.selector(p, COMPONENT)},
                        }],
                        "containers": [container],
                        "volumes": [kube.empty_dir("tmp")],
                    },
                },
            },
            # Rolls only after the migrate Job finished: new code never meets an old schema.
            opts=kube.opts(self, migrations),
        )
        self.service = k8s.core.v1.Service(
            f"{name}-service",
            metadata=meta(NAME),
            spec={"type": "ClusterIP", "selector": kube.selector(p, COMPONENT),
                  "ports": [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}]},
            opts=kube.opts(self),
        )
        # The Service above (what the Ingress targets) has only "http"; the internal endpoints get their own
        # headless Service, for Prometheus, which the NetworkPolicy admits from the monitoring namespace only.
        k8s.core.v1.Service(
            f"{name}-metrics-service", metadata=meta(f"{NAME}-metrics"),
            spec={"clusterIP": "None", "selector": kube.selector(p, COMPONENT),
                  "ports": [{"name": "metrics", "port": api.metrics_port, "targetPort": "metrics",
                             "protocol": "TCP"}]},
            opts=kube.opts(self),
        )
        # maxUnavailable 1, not minAvailable 1: with a single replica the latter allows 0 disruptions and
        # blocks every node drain and cluster upgrade.
        k8s.policy.v1.PodDisruptionBudget(
            f"{name}-pdb", metadata=meta(NAME),
            spec={"maxUnavailable": 1, "selector": {"matchLabels": kube.selector(p, COMPONENT)}},
            opts=kube.opts(self),
        )
        k8s.autoscaling.v2.HorizontalPodAutoscaler(
            f"{name}-hpa", metadata=meta(NAME),
            spec={
                "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": NAME},
                "minReplicas": api.min_replicas,
                "maxReplicas": api.max_replicas,
                "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {
                    "type": "Utilization", "averageUtilization": api.target_cpu_utilization}}}],
                "behavior": {"scaleDown": {"stabilizationWindowSeconds": 300}},
            },
            opts=kube.opts(self),
        )
        expose_api(cfg, meta, self)  # Ingress or Gateway API per cloud: components/ingress.py
        if cfg.uses_prometheus:
            service_monitor(NAME, namespace, p, COMPONENT, "metrics", "/metrics", self, monitoring_deps or [],
                            monitor_labels)
        self.register_outputs({"service": NAME})

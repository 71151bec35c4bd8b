"""Telemetry: an OpenTelemetry Collector that receives OTLP from the API and worker and forwards it."""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_kubernetes as k8s
import yaml

from .. import kube
from ..config import AppStackConfig

COMPONENT = "otel-collector"
NAME = "otel-collector"
# Span attributes that carry prompt or completion text (OpenTelemetry GenAI and OpenInference conventions).
CONTENT_ATTRIBUTES = ("gen_ai.prompt", "gen_ai.completion", "gen_ai.input.messages", "gen_ai.output.messages",
                      "gen_ai.system_instructions", "llm.input_messages", "llm.output_messages", "input.value",
                      "output.value")


def collector_config(cfg: AppStackConfig, with_auth: bool) -> dict[str, Any]:
    t = cfg.telemetry
    assert t is not None
    exporters: dict[str, Any] = {"debug": {"verbosity": "basic"}}
    if t.exporter_endpoint:
        exporter: dict[str, Any] = {"endpoint": t.exporter_endpoint}
        if with_auth:
            # Expanded by the collector from the Secret-backed env var; the value never sits in the ConfigMap.
            exporter["headers"] = {"authorization": "${env:OTEL_EXPORTER_AUTHORIZATION}"}
        exporters[t.exporter_protocol] = exporter
        out = [t.exporter_protocol]
    else:
        out = ["debug"]
    processors: dict[str, Any] = {"memory_limiter": {"check_interval": "1s", "limit_percentage": 80,
                                                     "spike_limit_percentage": 20},
                                  "batch": {}}
    chain = ["memory_limiter"]
    if t.drop_content_attributes:
        processors["attributes/drop-content"] = {
            "actions": [{"key": key, "action": "delete"} for key in CONTENT_ATTRIBUTES]}
        chain.append("attributes/drop-content")
    chain.append("batch")
    pipeline = {"receivers": ["otlp"], "processors": chain, "exporters": out}
    return {
        "receivers": {"otlp": {"protocols": {"grpc": {"endpoint": "0.0.0.0:4317"},
                                             "http": {"endpoint": "0.0.0.0:4318"}}}},
        "processors": processors,
        "exporters": exporters,
        "extensions": {"health_check": {"endpoint": "0.0.0.0:13133"}},
        "service": {"extensions": ["health_check"],
                    "pipelines": {"traces": pipeline, "metrics": pipeline, "logs": pipeline}},
    }


class Telemetry(pulumi.ComponentResource):
    """OTel Collector Deployment + Service; its only egress is the configured exporter endpoint."""

    def __init__(self, name: str, cfg: AppStackConfig, namespace: pulumi.Input[str],
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("aistarter:app:Telemetry", name, None, opts)
        t = cfg.telemetry
        assert t is not None, "Telemetry needs cfg.telemetry"
        p = cfg.project

        def meta(n: str) -> dict[str, Any]:
            return kube.metadata(n, namespace, p, COMPONENT)
        auth = pulumi.Config().get_secret("otel_exporter_authorization")
        env: list[dict[str, Any]] = []
        if auth is not None:
            k8s.core.v1.Secret(f"{name}-exporter-auth", metadata=meta("otel-exporter-auth"), type="Opaque",
                               string_data={"authorization": auth}, opts=kube.opts(self))
            env.append(kube.secret_env("OTEL_EXPORTER_AUTHORIZATION", "otel-exporter-auth", "authorization"))
        config_text = yaml.safe_dump(collector_config(cfg, auth is not None), sort_keys=False)
        k8s.core.v1.ConfigMap(f"{name}-config", metadata=meta(NAME), data={"config.yaml": config_text},
                              opts=kube.opts(self))
        container = {
            "name": "otel-collector",
            "image": t.collector_image,
            "imagePullPolicy": kube.PULL_POLICY,
            "args": ["--config=/etc/otelcol/config.yaml"],
            "env": env,
            "ports": [{"name": "otlp-grpc", "containerPort": 4317, "protocol": "TCP"},
                      {"name": "otlp-http", "containerPort": 4318, "protocol": "TCP"},
                      {"name": "health", "containerPort": 13133, "protocol": "TCP"}],
            "resources": t.resources.as_k8s(),
            "securityContext": kube.container_security_context(),
            "readinessProbe": kube.http_probe("/", "health", period=10),
            "livenessProbe": kube.http_probe("/", "health", period=15),
            "volumeMounts": [{"name": "config", "mountPath": "/etc/otelcol", "readOnly": True}],
        }
        k8s.apps.v1.Deployment(
            f"{name}-deployment", metadata=meta(NAME),
            spec={
                "replicas": 1,
                "selector": {"matchLabels": kube.selector(p, COMPONENT)},
                "template": {
                    "metadata": {"labels": kube.labels(p, COMPONENT)},
                    "spec": {"automountServiceAccountToken": False,
                             "securityContext": kube.pod_security_context(),
                             "containers": [container],
                             "volumes": [{"name": "config", "configMap": {"name": NAME}}]},
                },
            },
            opts=kube.opts(self))
        k8s.core.v1.Service(
            f"{name}-service", metadata=meta(NAME),
            spec={"type": "ClusterIP", "selector": kube.selector(p, COMPONENT),
                  "ports": [{"name": "otlp-grpc", "port": 4317, "targetPort": "otlp-grpc"},
                            {"name": "otlp-http", "port": 4318, "targetPort": "otlp-http"}]},
            opts=kube.opts(self))
        self.register_outputs({"service": NAME})

"""Cluster-wide add-ons the platform stack installs once per cluster, so every app stack on it shares them.

KEDA (ScaledObjects), kube-prometheus-stack (Prometheus Operator: ServiceMonitors and PrometheusRules), and
on GPU clusters the NVIDIA device plugin (where the cloud does not run it) and the DCGM exporter. Each cloud
module adds what only it has (EKS: metrics-server add-on, cluster-autoscaler, Load Balancer Controller). The
app stack installs none of these on aws, gcp and azure; it only checks that the CRDs it uses exist.
Only pulumi and pulumi_kubernetes are imported, and only when called.
"""

from __future__ import annotations

import json
from typing import Any

from .. import versions
from .spec import PlatformConfig

KEDA_NAMESPACE = "keda"
MONITORING_NAMESPACE = "monitoring"
DEVICE_PLUGIN_NAMESPACE = "nvidia-device-plugin"
PROMETHEUS_RELEASE = "kube-prometheus-stack"


def _gpu_scheduling(cfg: PlatformConfig, extra_tolerations: list[dict[str, str]]) -> dict[str, Any]:
    """Pin a GPU DaemonSet to the GPU pool by its label and let it past the pool's taints."""
    gpu = cfg.gpu_pool
    assert gpu is not None
    return {
        "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
            {"matchExpressions": [{"key": gpu.label_key, "operator": "In", "values": [gpu.label_value]}]}]}}},
        "tolerations": [{"key": gpu.taint.key, "operator": "Equal", "value": gpu.taint.value,
                         "effect": gpu.taint.effect}, *extra_tolerations],
    }


def prometheus_values(cfg: PlatformConfig) -> dict[str, Any]:
    system = {"nodeSelector": dict(cfg.system_label)}
    return {
        # Prometheus selects ServiceMonitors, PodMonitors and PrometheusRules carrying these labels: the same
        # labels the stack exports as `monitor_labels`, which the app stack puts on its monitors.
        "prometheus": {"prometheusSpec": {
            "serviceMonitorSelector": {"matchLabels": dict(cfg.monitor_labels)},
            "podMonitorSelector": {"matchLabels": dict(cfg.monitor_labels)},
            "ruleSelector": {"matchLabels": dict(cfg.monitor_labels)},
            "serviceMonitorNamespaceSelector": {}, "podMonitorNamespaceSelector": {},
            "ruleNamespaceSelector": {},
            "retention": "7d",
            "resources": {"requests": {"cpu": "200m", "memory": "1Gi"}, "limits": {"memory": "2Gi"}},
            **system,
        }},
        "grafana": {"enabled": True, **system,
                    # Dashboards arrive as ConfigMaps labelled grafana_dashboard=1 from any namespace.
                    "sidecar": {"dashboards": {"enabled": True, "label": "grafana_dashboard",
                                               "searchNamespace": "ALL"}}},
        "alertmanager": {"alertmanagerSpec": system},
        "prometheusOperator": system,
        # Node pool labels as kube_node_labels series: the GPU-pool-at-max rule and the cost panel count them.
        "kube-state-metrics": {**system, "metricLabelsAllowlist": [
            f"nodes=[{cfg.gpu_pool.label_key if cfg.gpu_pool else 'aistarter.dev/pool'}]"]},
    }


def _pool_label(cfg: PlatformConfig) -> str:
    key = cfg.gpu_pool.label_key if cfg.gpu_pool else "aistarter.dev/pool"
    return "label_" + "".join(c if c.isalnum() else "_" for c in key)


def alert_rules(cfg: PlatformConfig) -> list[dict[str, Any]]:
    """PrometheusRule groups: breaker open, metering outbox backlog and dead letters, GPU pool at max, model asleep
    while asked."""
    rules: list[dict[str, Any]] = [
        {"alert": "ProviderCircuitOpen", "expr": "max by (provider) (aistarter_circuit_open) == 1", "for": "5m",
         "labels": {"severity": "warning"},
         "annotations": {"summary": "Circuit breaker for {{ $labels.provider }} open for 5 minutes",
                         "description": "Requests fail over or fail fast; check the provider's status and keys."}},
        {"alert": "MeteringOutboxBacklog", "expr": "max(aistarter_metering_outbox_pending) > 1000", "for": "15m",
         "labels": {"severity": "warning"},
         "annotations": {"summary": "Metering outbox holds over 1000 unsent usage records for 15 minutes",
                         "description": "Billing is falling behind; check the worker and the billing sink."}},
        # Each dead-lettered event is usage Stripe will not bill unless someone acts, so any increase alerts.
        {"alert": "MeterEventsDeadLettered",
         "expr": "sum(increase(aistarter_meter_events_dead_lettered_total[1h])) > 0",
         "labels": {"severity": "critical"},
         "annotations": {"summary": "Meter events were dead-lettered: that usage is not billed in Stripe",
                         "description": "Stripe did not take these events before they aged out of its 35-day "
                                        "window; `python -m app.cli meter requeue` sends back any still inside "
                                        "it, invoice the rest directly."}},
    ]
    gpu = cfg.gpu_pool
    if gpu is not None:
        label = _pool_label(cfg)
        rules += [
            {"alert": "GpuPoolAtMaxNodes",
             "expr": f'count(kube_node_labels{{{label}="{gpu.label_value}"}}) >= {gpu.max_nodes}', "for": "15m",
             "labels": {"severity": "warning"},
             "annotations": {"summary": f"GPU pool at its maximum of {gpu.max_nodes} nodes for 15 minutes",
                             "description": "Requests may queue past the latency budget; raise gpuPool.maxNodes "
                                            "or the policy's budget cap."}},
            {"alert": "ModelAsleepWhileRequestsPending",
             "expr": ("sum(aistarter_model_pending_requests) > 0 and on() "
                      '(sum(kube_deployment_status_replicas_available{deployment="model-server"}) == 0 or on() '
                      'absent(kube_deployment_status_replicas_available{deployment="model-server"}))'),
             "for": "10m", "labels": {"severity": "critical"},
             "annotations": {"summary": "Requests pending for 10 minutes while the model server has no ready "
                                        "replica",
                             "description": "The wake path is broken: check the ScaledObject (KEDA), the GPU pool "
                                            "(autoscaler, quota, spot capacity) and the device plugin."}},
        ]
    return [{"name": "aistarter", "rules": rules}]


def dashboard(cfg: PlatformConfig) -> dict[str, Any]:
    """Grafana dashboard: time to first token, pending requests, GPU utilisation and GPU cost per hour."""
    gpu = cfg.gpu_pool
    label = _pool_label(cfg)
    price = gpu.hourly_price_usd if gpu else 0.0
    pool = f'{label}="{gpu.label_value}"' if gpu else f'{label}="gpu"'

    def panel(i: int, title: str, expr: str, unit: str) -> dict[str, Any]:
        return {"id": i, "type": "timeseries", "title": title, "datasource": {"type": "prometheus"},
                "gridPos": {"h": 8, "w": 12, "x": 12 * (i % 2), "y": 8 * (i // 2)},
                "fieldConfig": {"defaults": {"unit": unit}},
                "targets": [{"expr": expr, "refId": "A"}]}

    return {"title": f"aistarter: {cfg.cluster_name}", "uid": f"aistarter-{cfg.cluster_name}"[:40],
            "schemaVersion": 39, "time": {"from": "now-6h", "to": "now"}, "panels": [
                panel(0, "Time to first token (p50, p95)",
                      "histogram_quantile(0.95, sum by (le, model) "
                      "(rate(aistarter_time_to_first_token_seconds_bucket[5m])))", "s"),
                panel(1, "Pending requests per model", "sum by (model) (aistarter_model_pending_requests)", "short"),
                panel(2, "GPU utilisation", "avg by (Hostname) (DCGM_FI_DEV_GPU_UTIL)", "percent"),
                panel(3, f"GPU cost per hour (USD, {price} per node-hour)",
                      f"count(kube_node_labels{{{pool}}}) * {price}", "currencyUSD"),
            ]}


def install(cfg: PlatformConfig, provider: Any, *, device_plugin: bool, dcgm: bool,
            gpu_tolerations: list[dict[str, str]] | None = None, depends_on: list[Any] | None = None) -> list[Any]:
    """The shared add-ons as Helm releases on `provider`; returns them (KEDA first)."""
    import pulumi
    import pulumi_kubernetes as k8s

    name = cfg.cluster_name
    opts = pulumi.ResourceOptions(provider=provider, depends_on=depends_on or [])

    def release(key: str, chart: versions.Chart, namespace: str, values: Any, release_name: str = "") -> Any:
        return k8s.helm.v3.Release(
            f"{name}-{key}", name=release_name or chart.chart, chart=chart.chart, version=chart.version,
            repository_opts={"repo": chart.repo}, namespace=namespace, create_namespace=True, values=values,
            opts=opts)

    system = {"nodeSelector": dict(cfg.system_label)}
    out = [
        release("keda", versions.KEDA, KEDA_NAMESPACE, {
            **system,
            "resources": {"operator": {"requests": {"cpu": "100m", "memory": "128Mi"},
                                       "limits": {"cpu": "1", "memory": "1000Mi"}}},
        }),
        release("kube-prometheus-stack", versions.KUBE_PROMETHEUS_STACK, MONITORING_NAMESPACE,
                prometheus_values(cfg), PROMETHEUS_RELEASE),
    ]
    prometheus = out[1]
    after = pulumi.ResourceOptions(provider=provider, depends_on=[prometheus])
    k8s.apiextensions.CustomResource(
        f"{name}-alerts", api_version="monitoring.coreos.com/v1", kind="PrometheusRule",
        metadata={"name": "aistarter", "namespace": MONITORING_NAMESPACE, "labels": dict(cfg.monitor_labels)},
        spec={"groups": alert_rules(cfg)}, opts=after)
    k8s.core.v1.ConfigMap(
        f"{name}-dashboard", metadata={"name": "aistarter-dashboard", "namespace": MONITORING_NAMESPACE,
                                       "labels": {"grafana_dashboard": "1"}},
        data={"aistarter.json": json.dumps(dashboard(cfg), sort_keys=True)}, opts=after)
    if cfg.gpu_pool is not None:
        extra = list(gpu_tolerations or [])
        if device_plugin:
            out.append(release("nvidia-device-plugin", versions.NVIDIA_DEVICE_PLUGIN, DEVICE_PLUGIN_NAMESPACE, {
                **_gpu_scheduling(cfg, extra), "priorityClassName": "system-node-critical"}))
        if dcgm:
            out.append(release("dcgm-exporter", versions.DCGM_EXPORTER, MONITORING_NAMESPACE, {
                **_gpu_scheduling(cfg, extra),
                "serviceMonitor": {"enabled": True, "additionalLabels": dict(cfg.monitor_labels)},
            }))
    return out

"""Cluster-wide add-ons the platform stack installs once per cluster, so every app stack on it shares them.

KEDA (ScaledObjects), kube-prometheus-stack (Prometheus Operator: ServiceMonitors and PrometheusRules), and
on GPU clusters the NVIDIA device plugin (where the cloud does not run it) and the DCGM exporter. Each cloud
module adds what only it has (EKS: metrics-server add-on, cluster-autoscaler, Load Balancer Controller). The
app stack installs none of these on aws, gcp and azure; it only checks that the CRDs it uses exist.
Only pulumi and pulumi_kubernetes are imported, and only when called.
"""

from __future__ import annotations

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
        "kube-state-metrics": system,
    }


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

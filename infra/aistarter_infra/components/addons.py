"""Addons: what the app needs from the cluster (KEDA, the NVIDIA device plugin, the Prometheus Operator).

On aws, gcp and azure the platform stack installs them once per cluster (aistarter_infra/platform/addons.py),
so a second app on the same cluster does not collide with the first. On `cloud=existing` each one is a config
switch (`addons.install_*`), off when the cluster already has it. Either way, when the app does not install
an add-on it reads the add-on's CRD first, so `pulumi preview` stops with the CRD's name instead of failing
later on a ScaledObject or ServiceMonitor the API server cannot map.
"""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from ..cluster import PlatformOutputs
from ..config import AppStackConfig

KEDA_REPO = "https://kedacore.github.io/charts"
NVIDIA_REPO = "https://nvidia.github.io/k8s-device-plugin"
PROMETHEUS_REPO = "https://prometheus-community.github.io/helm-charts"


def device_plugin_values(platform: PlatformOutputs,
                         extra_tolerations: list[dict[str, str]]) -> pulumi.Output[dict[str, Any]]:
    def build(v: list[str]) -> dict[str, Any]:
        key, value, taint_key, taint_value, effect = v
        return {
            # The chart's default affinity wants NFD/GFD labels (nvidia.com/gpu.present, pci-10de) that a plain
            # node pool does not carry: pin the DaemonSet to the pool label the platform sets instead.
            "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                {"matchExpressions": [{"key": key, "operator": "In", "values": [value]}]}]}}},
            "tolerations": [{"key": taint_key, "operator": "Equal", "value": taint_value, "effect": effect},
                            {"key": "CriticalAddonsOnly", "operator": "Exists"}, *extra_tolerations],
            "priorityClassName": "system-node-critical",
        }

    return pulumi.Output.all(platform.gpu_pool_label_key, platform.gpu_pool_label_value, platform.gpu_taint_key,
                             platform.gpu_taint_value, platform.gpu_taint_effect).apply(build)


class Addons(pulumi.ComponentResource):
    """Helm releases, each pinned to a chart version from stack config; rendered as release + values."""

    def __init__(self, name: str, cfg: AppStackConfig, platform: PlatformOutputs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("aistarter:app:Addons", name, None, opts)
        a = cfg.addons
        child = pulumi.ResourceOptions(parent=self)
        self.keda: k8s.helm.v3.Release | None = None
        self.prometheus: k8s.helm.v3.Release | None = None
        self.device_plugin: k8s.helm.v3.Release | None = None
        self.crd_checks: dict[str, pulumi.Resource] = {}
        needs_keda = cfg.model_server is not None or cfg.queue is not None
        # Cloud stacks get every cluster-wide add-on from the platform stack; only `existing` installs here.
        own = cfg.cloud == "existing"
        if own and a.install_keda and needs_keda:
            self.keda = k8s.helm.v3.Release(
                f"{name}-keda", name="keda", chart="keda", version=a.keda_chart_version,
                repository_opts={"repo": KEDA_REPO}, namespace=a.keda_namespace, create_namespace=True,
                values={"resources": {"operator": {"requests": {"cpu": "100m", "memory": "128Mi"},
                                                   "limits": {"cpu": "1", "memory": "1000Mi"}}}},
                opts=child)
        if own and a.install_prometheus and cfg.uses_prometheus:
            self.prometheus = k8s.helm.v3.Release(
                f"{name}-prometheus", name="kube-prometheus-stack", chart="kube-prometheus-stack",
                version=a.prometheus_chart_version, repository_opts={"repo": PROMETHEUS_REPO},
                namespace=a.prometheus_namespace, create_namespace=True,
                values={
                    "grafana": {"enabled": False},
                    "alertmanager": {"enabled": False},
                    # Select every ServiceMonitor, not just the chart's own: ours carry no release label.
                    "prometheus": {"prometheusSpec": {"serviceMonitorSelectorNilUsesHelmValues": False,
                                                      "podMonitorSelectorNilUsesHelmValues": False,
                                                      "retention": "7d"}},
                },
                opts=child)
        if own and a.install_device_plugin and cfg.model_server is not None:
            self.device_plugin = k8s.helm.v3.Release(
                f"{name}-nvidia-device-plugin", name="nvidia-device-plugin", chart="nvidia-device-plugin",
                version=a.device_plugin_chart_version, repository_opts={"repo": NVIDIA_REPO},
                namespace="nvidia-device-plugin", create_namespace=True,
                values=device_plugin_values(platform, cfg.gpu_extra_tolerations), opts=child)
        if needs_keda and self.keda is None:
            self.crd_checks["keda"] = require_crd(f"{name}-crd-keda", KEDA_CRD, KEDA_FIX, child)
        if cfg.uses_prometheus and self.prometheus is None:
            self.crd_checks["prometheus"] = require_crd(f"{name}-crd-servicemonitors", SERVICE_MONITOR_CRD,
                                                        PROMETHEUS_FIX, child)
        self.register_outputs({})

    @property
    def keda_deps(self) -> list[pulumi.Resource]:
        if self.keda is not None:
            return [self.keda]
        return [self.crd_checks["keda"]] if "keda" in self.crd_checks else []

    @property
    def monitoring_deps(self) -> list[pulumi.Resource]:
        if self.prometheus is not None:
            return [self.prometheus]
        return [self.crd_checks["prometheus"]] if "prometheus" in self.crd_checks else []


KEDA_CRD = "scaledobjects.keda.sh"
SERVICE_MONITOR_CRD = "servicemonitors.monitoring.coreos.com"
KEDA_FIX = "install KEDA (platform stack, or addons.install_keda=true on an existing cluster)"
PROMETHEUS_FIX = ("install the Prometheus Operator (platform stack, or addons.install_prometheus=true on an "
                  "existing cluster)")


def require_crd(name: str, crd: str, fix: str, opts: pulumi.ResourceOptions) -> pulumi.Resource:
    """Read the CRD the app's custom resources need; a missing one fails `pulumi preview` naming it and the fix.

    A read, not a create: the app stack never owns cluster-scoped objects. The logical name carries the fix
    because Pulumi prints it with the "not found" error.
    """
    logical = f"{name}: {crd} must exist; {fix}"
    return k8s.apiextensions.v1.CustomResourceDefinition.get(logical, crd, opts=opts)

"""Cluster-wide add-ons live in the platform stack; the app stack keeps namespaced resources only.

Checked on `resources.json` as `aistarter infra render --out` writes it: for aws, gcp and azure the platform
holds KEDA, kube-prometheus-stack, metrics-server (EKS add-on; GKE and AKS run their own), the node autoscaler
(cluster-autoscaler on EKS; GKE's and AKS's built-in one), the device plugin where the cloud does not run it,
and the managed PostgreSQL. An `existing` app stack with every add-on off renders only namespaced objects and
reads (never creates) the CRDs it needs.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from aistarter_infra.render import write_resources  # noqa: E402
from test_platform_render import rendered  # noqa: E402

HELM = "kubernetes:helm.sh/v3:Release"
DB = {"aws": "aws:rds/instance:Instance", "gcp": "gcp:sql/databaseInstance:DatabaseInstance",
      "azure": "azure-native:dbforpostgresql:Server"}
CRD = "kubernetes:apiextensions.k8s.io/v1:CustomResourceDefinition"
CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition", "StorageClass",
                  "PriorityClass", "IngressClass", "GatewayClass", "ValidatingWebhookConfiguration",
                  "MutatingWebhookConfiguration", "APIService", "PersistentVolume"}


def resources_json(cloud: str, size: str, tmp_path: Path, cost: str = "cost") -> list[dict[str, Any]]:
    _, result = rendered(cloud, size, cost)
    path = write_resources(result.resources, tmp_path / cloud / "platform" / "resources.json")
    return json.loads(path.read_text(encoding="utf-8"))


def releases(resources: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {r["inputs"]["name"]: r["inputs"] for r in resources if r["type"] == HELM}


@pytest.mark.parametrize("cloud", ["aws", "gcp", "azure"])
def test_platform_holds_every_shared_addon(cloud: str, tmp_path: Path) -> None:
    resources = resources_json(cloud, "small", tmp_path)
    found = releases(resources)
    assert {"keda", "kube-prometheus-stack"} <= set(found)
    assert len([r for r in resources if r["type"] == DB[cloud]]) == 1
    addons = {r["inputs"].get("addonName") for r in resources if r["type"] == "aws:eks/addon:Addon"}
    if cloud == "aws":
        assert "metrics-server" in addons, "EKS has no metrics-server of its own: the API's CPU HPA needs it"
        assert "cluster-autoscaler" in found and "nvidia-device-plugin" in found
    else:
        # GKE and AKS run metrics-server and their own node autoscaler; GKE also runs the device plugin.
        assert "cluster-autoscaler" not in found
        assert ("nvidia-device-plugin" in found) is (cloud == "azure")
    prom = found["kube-prometheus-stack"]["values"]["prometheus"]["prometheusSpec"]
    assert prom["serviceMonitorSelector"] == {"matchLabels": {"release": "kube-prometheus-stack"}}
    assert prom["ruleSelector"] == prom["serviceMonitorSelector"]


@pytest.mark.parametrize("cloud", ["aws", "azure"])
def test_gpu_daemonsets_land_on_the_gpu_pool_only(cloud: str, tmp_path: Path) -> None:
    found = releases(resources_json(cloud, "small", tmp_path))
    for name in ("nvidia-device-plugin", "dcgm-exporter"):
        values = found[name]["values"]
        term = values["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
        assert term["nodeSelectorTerms"][0]["matchExpressions"] == [
            {"key": "aistarter.dev/pool", "operator": "In", "values": ["gpu"]}]
        assert {"key": "nvidia.com/gpu", "operator": "Equal", "value": "present", "effect": "NoSchedule"} in \
            values["tolerations"]
    assert found["dcgm-exporter"]["values"]["serviceMonitor"]["additionalLabels"] == {
        "release": "kube-prometheus-stack"}
    if cloud == "azure":  # a spot GPU pool (the blueprint's choice) carries the taint AKS adds itself
        spot = any(p.spot for p in rendered(cloud, "small", "cost")[1].pool_views() if p.is_gpu)
        assert spot is any(t["key"] == "kubernetes.azure.com/scalesetpriority"
                           for t in found["nvidia-device-plugin"]["values"]["tolerations"])


def test_no_gpu_addons_without_a_gpu_pool(tmp_path: Path) -> None:
    found = releases(resources_json("aws", "none", tmp_path))
    assert "nvidia-device-plugin" not in found and "dcgm-exporter" not in found
    assert {"keda", "kube-prometheus-stack", "cluster-autoscaler"} <= set(found)


def test_gke_collects_gpu_metrics_and_serves_gateway_api(tmp_path: Path) -> None:
    resources = resources_json("gcp", "small", tmp_path)
    (cluster,) = [r["inputs"] for r in resources if r["type"] == "gcp:container/cluster:Cluster"]
    assert "DCGM" in cluster["monitoringConfig"]["enableComponents"]
    assert cluster["gatewayApiConfig"] == {"channel": "CHANNEL_STANDARD"}


@pytest.mark.parametrize("cloud", ["aws", "gcp", "azure"])
def test_every_chart_is_pinned_from_versions(cloud: str, tmp_path: Path) -> None:
    from aistarter_infra import versions

    pins = {c.chart: c.version for c in versions.HELM_CHARTS}
    for release in releases(resources_json(cloud, "small", tmp_path)).values():
        chart = release["chart"].rsplit("/", 1)[-1]  # OCI charts are addressed by their full reference
        assert release["version"] == pins[chart], chart


def _app(tmp_path: Path, stack: dict[str, Any], overrides: dict[str, Any] | None = None) -> Any:
    from aistarter_infra.render import render_program
    from stacks import write_program

    return render_program(write_program(tmp_path, stack, overrides=overrides))


def test_existing_app_with_every_addon_off_is_namespaced_only(tmp_path: Path) -> None:
    from stacks import MATRIX

    stack = MATRIX["rag-small-existing"]  # a model server, so KEDA, monitors and the device plugin matter
    off = {"addons": {"install_keda": False, "install_device_plugin": False, "install_prometheus": False}}
    app = _app(tmp_path, stack, off)
    assert app.helm_releases == []
    cluster_scoped = [f"{m['kind']}/{m['metadata']['name']}" for m in app.manifests
                      if m["kind"] in CLUSTER_SCOPED and m["kind"] != "Namespace"]
    assert cluster_scoped == []
    assert all(m["metadata"].get("namespace") for m in app.manifests if m["kind"] != "Namespace")
    # The CRDs it uses are read, never created, and the read names the fix.
    reads = [o["name"] for o in app.other if o["type"] == CRD]
    assert any("scaledobjects.keda.sh must exist" in n and "install_keda" in n for n in reads), reads
    assert any("servicemonitors.monitoring.coreos.com must exist" in n for n in reads), reads


def test_cloud_app_stack_installs_no_cluster_addon(tmp_path: Path) -> None:
    from stacks import MATRIX

    app = _app(tmp_path, MATRIX["rag-aws-warm-gpu"])
    assert app.helm_releases == []
    assert [o for o in app.other if o["type"] == CRD], "the app must check the CRDs the platform provides"


def test_keda_query_does_not_read_a_missing_scrape_as_idle(tmp_path: Path) -> None:
    from stacks import MATRIX

    app = _app(tmp_path, MATRIX["rag-small-existing"])
    (scaled,) = [m for m in app.manifests if m["kind"] == "ScaledObject" and m["metadata"]["name"] == "model-server"]
    trigger = scaled["spec"]["triggers"][0]["metadata"]
    assert "vector(0)" not in trigger["query"]
    assert trigger["ignoreNullValues"] == "false"
    assert 'up{namespace="' in trigger["query"] and "== 1" in trigger["query"]
    assert scaled["spec"]["fallback"]["replicas"] >= 1


@pytest.mark.parametrize("cloud", ["aws", "gcp", "azure"])
def test_alerts_and_dashboard_ship_with_the_platform(cloud: str, tmp_path: Path) -> None:
    resources = resources_json(cloud, "small", tmp_path)
    (rule,) = [r["inputs"] for r in resources if r["type"] == "kubernetes:monitoring.coreos.com/v1:PrometheusRule"]
    assert rule["metadata"]["labels"] == {"release": "kube-prometheus-stack"}, "Prometheus must select the rules"
    alerts = {a["alert"]: a for g in rule["spec"]["groups"] for a in g["rules"]}
    assert set(alerts) == {"ProviderCircuitOpen", "MeteringOutboxBacklog", "MeterEventsDeadLettered",
                           "GpuPoolAtMaxNodes", "ModelAsleepWhileRequestsPending"}
    assert "increase(aistarter_meter_events_dead_lettered_total[" in alerts["MeterEventsDeadLettered"]["expr"]
    _, result = rendered(cloud, "small")
    gpu_max = [p.max_nodes for p in result.pool_views() if p.is_gpu][0]
    assert alerts["GpuPoolAtMaxNodes"]["expr"].endswith(f">= {gpu_max}")
    (board,) = [r["inputs"] for r in resources if r["type"] == "kubernetes:core/v1:ConfigMap"
                and r["inputs"]["metadata"]["name"] == "aistarter-dashboard"]
    assert board["metadata"]["labels"] == {"grafana_dashboard": "1"}
    panels = json.loads(board["data"]["aistarter.json"])["panels"]
    titles = " | ".join(p["title"] for p in panels)
    for words in ("Time to first token", "Pending requests", "GPU utilisation", "GPU cost per hour"):
        assert words in titles
    cost = next(p for p in panels if p["title"].startswith("GPU cost"))
    assert cost["targets"][0]["expr"].endswith(f"* {result_price(cloud)}")



def result_price(cloud: str) -> float:
    """The GPU node's hourly list price as the blueprint states it (what the platform config carries)."""
    from aistarter_infra.platform.spec import config_from_stack, parse_platform_config
    from test_platform_render import blueprint_stack

    cfg = parse_platform_config(config_from_stack(blueprint_stack(cloud, "small"), cluster_name="demo"))
    assert cfg.gpu_pool is not None and cfg.gpu_pool.hourly_price_usd > 0
    return cfg.gpu_pool.hourly_price_usd

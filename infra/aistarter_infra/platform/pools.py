"""Read node pools back out of Pulumi resource inputs, whatever the cloud.

The platform programs, the mocks render and the policy pack all see a node pool as (resource type, inputs).
This module turns those inputs into one neutral `PoolView`, so the GPU consistency check and the policies
judge EKS node groups, GKE node pools and AKS agent pools by the same rules. Inputs use the provider
schema's camelCase names (what `pulumi.runtime.set_mocks` and CrossGuard both receive).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

EKS_MANAGED_NODE_GROUP = "eks:index:ManagedNodeGroup"
AWS_NODE_GROUP = "aws:eks/nodeGroup:NodeGroup"
GKE_NODE_POOL = "gcp:container/nodePool:NodePool"
AKS_AGENT_POOL = "azure-native:containerservice:AgentPool"
AKS_MANAGED_CLUSTER = "azure-native:containerservice:ManagedCluster"
POOL_TYPES = (EKS_MANAGED_NODE_GROUP, AWS_NODE_GROUP, GKE_NODE_POOL, AKS_AGENT_POOL, AKS_MANAGED_CLUSTER)

# Tag/label the platform programs set so the GPU count per node travels with the pool on clouds whose node
# pool API only knows the instance type (EKS, AKS); GKE states it in guestAccelerators.
GPUS_PER_NODE_TAG = "aistarter.dev/gpus-per-node"
ACCELERATOR_TAG = "aistarter.dev/accelerator"
# Azure tag names may not contain '/', so AKS pools carry the same facts under dash-only names.
AZURE_GPUS_PER_NODE_TAG = "aistarter-gpus-per-node"
AZURE_ACCELERATOR_TAG = "aistarter-accelerator"
# AKS puts this taint on every spot node itself; pods that must run there have to tolerate it.
AKS_SPOT_TAINT = {"key": "kubernetes.azure.com/scalesetpriority", "value": "spot", "effect": "NoSchedule"}

_EFFECTS = {"NO_SCHEDULE": "NoSchedule", "PREFER_NO_SCHEDULE": "PreferNoSchedule", "NO_EXECUTE": "NoExecute"}
# Instance families with NVIDIA GPUs: EC2 accelerated-computing families and Azure N-series.
_EC2_GPU = re.compile(r"^(g4dn|g5|g5g|g6|g6e|g6f|gr6|p3|p3dn|p4d|p4de|p5|p5e|p5en|p6-b200)\.", re.IGNORECASE)
_AZURE_GPU = re.compile(r"^Standard_N[CDVG]", re.IGNORECASE)


@dataclass(frozen=True)
class PoolView:
    name: str
    resource_type: str
    labels: dict[str, str]
    taints: list[dict[str, str]]
    min_nodes: int | None
    max_nodes: int | None
    spot: bool
    gpus_per_node: int
    is_gpu: bool
    instance_type: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def as_check_pool(self) -> dict[str, Any]:
        """The pool dict `aistarter_infra.validate.check_gpu_consistency` takes."""
        return {"name": self.name, "labels": dict(self.labels), "taints": [dict(t) for t in self.taints],
                "gpus_per_node": self.gpus_per_node}


def normalize_effect(effect: Any) -> str:
    text = str(effect or "")
    return _EFFECTS.get(text.upper(), text)


def _int_or_none(value: Any) -> int | None:
    if value is None or value == "":
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _str_map(value: Any) -> dict[str, str]:
    return {str(k): str(v) for k, v in value.items()} if isinstance(value, Mapping) else {}


def _taint_dicts(raw: Any) -> list[dict[str, str]]:
    out: list[dict[str, str]] = []
    for taint in raw or []:
        if isinstance(taint, Mapping):
            out.append({"key": str(taint.get("key", "")), "value": str(taint.get("value", "") or ""),
                        "effect": normalize_effect(taint.get("effect"))})
        elif isinstance(taint, str):
            out.append(parse_taint_string(taint))
    return out


def parse_taint_string(text: str) -> dict[str, str]:
    """`key=value:Effect` (the AKS and kubectl form) as a taint dict."""
    head, _, effect = text.partition(":")
    key, _, value = head.partition("=")
    return {"key": key, "value": value, "effect": normalize_effect(effect)}


def _eks(name: str, rtype: str, props: Mapping[str, Any]) -> PoolView:
    scaling = props.get("scalingConfig") or {}
    tags = _str_map(props.get("tags"))
    types = [str(t) for t in props.get("instanceTypes") or []]
    ami = str(props.get("amiType") or "")
    tagged = _int_or_none(tags.get(GPUS_PER_NODE_TAG)) or 0
    is_gpu = "NVIDIA" in ami.upper() or bool(props.get("gpu")) or tagged > 0 or any(_EC2_GPU.match(t) for t in types)
    return PoolView(name=str(props.get("nodeGroupName") or name), resource_type=rtype,
                    labels=_str_map(props.get("labels")), taints=_taint_dicts(props.get("taints")),
                    min_nodes=_int_or_none(scaling.get("minSize")), max_nodes=_int_or_none(scaling.get("maxSize")),
                    spot=str(props.get("capacityType") or "").upper() == "SPOT",
                    gpus_per_node=tagged if is_gpu else 0, is_gpu=is_gpu,
                    instance_type=types[0] if types else None, extra={"amiType": ami})


def _gke(name: str, props: Mapping[str, Any]) -> PoolView:
    node = props.get("nodeConfig") or {}
    auto = props.get("autoscaling") or {}
    accels = node.get("guestAccelerators") or []
    gpus = sum(_int_or_none(a.get("count")) or 0 for a in accels if isinstance(a, Mapping))
    # total* bounds cover the whole pool; the per-zone ones multiply by the zone count, so prefer total.
    low = _int_or_none(auto.get("totalMinNodeCount"))
    high = _int_or_none(auto.get("totalMaxNodeCount"))
    if low is None and high is None:
        low, high = _int_or_none(auto.get("minNodeCount")), _int_or_none(auto.get("maxNodeCount"))
    if not auto:
        low = high = _int_or_none(props.get("nodeCount"))
    return PoolView(name=str(props.get("name") or name), resource_type=GKE_NODE_POOL,
                    labels=_str_map(node.get("labels")), taints=_taint_dicts(node.get("taints")),
                    min_nodes=low, max_nodes=high, spot=bool(node.get("spot") or node.get("preemptible")),
                    gpus_per_node=gpus, is_gpu=gpus > 0, instance_type=node.get("machineType"),
                    extra={"accelerators": [a.get("type") for a in accels if isinstance(a, Mapping)],
                           "locationPolicy": auto.get("locationPolicy")})


def _aks(name: str, rtype: str, props: Mapping[str, Any]) -> PoolView:
    tags = _str_map(props.get("tags"))
    vm = str(props.get("vmSize") or "")
    tagged = _int_or_none(tags.get(AZURE_GPUS_PER_NODE_TAG)) or 0
    is_gpu = tagged > 0 or bool(_AZURE_GPU.match(vm)) or bool(props.get("gpuProfile"))
    spot = str(props.get("scaleSetPriority") or "").lower() == "spot"
    taints = _taint_dicts(props.get("nodeTaints"))
    if spot and not any(t["key"] == AKS_SPOT_TAINT["key"] for t in taints):
        taints.append(dict(AKS_SPOT_TAINT))  # AKS adds it whether or not the program lists it
    autoscaled = bool(props.get("enableAutoScaling"))
    count = _int_or_none(props.get("count"))
    return PoolView(name=str(props.get("agentPoolName") or props.get("name") or name), resource_type=rtype,
                    labels=_str_map(props.get("nodeLabels")), taints=taints,
                    min_nodes=_int_or_none(props.get("minCount")) if autoscaled else count,
                    max_nodes=_int_or_none(props.get("maxCount")) if autoscaled else count,
                    spot=spot, gpus_per_node=tagged if is_gpu else 0, is_gpu=is_gpu, instance_type=vm or None,
                    extra={"mode": props.get("mode"), "enableAutoScaling": autoscaled})


def pools_from_resource(resource_type: str, name: str, props: Mapping[str, Any]) -> list[PoolView]:
    """Every node pool a resource declares; empty for resources that are not node pools."""
    if resource_type in (EKS_MANAGED_NODE_GROUP, AWS_NODE_GROUP):
        return [_eks(name, resource_type, props)]
    if resource_type == GKE_NODE_POOL:
        return [_gke(name, props)]
    if resource_type == AKS_AGENT_POOL:
        return [_aks(name, resource_type, props)]
    if resource_type == AKS_MANAGED_CLUSTER:
        return [_aks(str(p.get("name") or name), resource_type, p) for p in props.get("agentPoolProfiles") or []
                if isinstance(p, Mapping)]
    return []


def pools_from_resources(resources: Iterable[Mapping[str, Any]]) -> list[PoolView]:
    """Pools from rendered resources, each given as {"type", "name", "inputs"}."""
    out: list[PoolView] = []
    for res in resources:
        out.extend(pools_from_resource(str(res["type"]), str(res["name"]), res.get("inputs") or {}))
    return out


# ---------------------------------------------------------------- GPU capacity (docs/decisions/0009-gpu-pool.md)

# EKS managed node groups take several instance types: the first is the catalog's choice, the others carry the
# same GPU model and count (or a strictly larger one), so the model fits on whichever one EC2 has capacity for.
# Cluster Autoscaler sizes the group from the first type, so it never assumes more than the catalog's node.
EKS_GPU_ALTERNATIVES: dict[str, tuple[str, ...]] = {
    "g6.xlarge": ("g6.xlarge", "g6.2xlarge", "g6.4xlarge"),  # 1x L4 24 GB
    "g6.12xlarge": ("g6.12xlarge", "g6.24xlarge"),  # 4x L4
    "g5.xlarge": ("g5.xlarge", "g5.2xlarge", "g5.4xlarge"),  # 1x A10G 24 GB
    "g5.12xlarge": ("g5.12xlarge", "g5.24xlarge"),  # 4x A10G
    # 8x A100 40 GB; p4de has 8x A100 80 GB and p5 8x H100 80 GB: scarce p4d capacity is not the only way in.
    "p4d.24xlarge": ("p4d.24xlarge", "p4de.24xlarge", "p5.48xlarge"),
}

# Zones that offer each accelerator (GKE accelerator names), per region: a regional GKE pool without
# node_locations asks every zone of the region and fails where the GPU does not exist.
# Source: cloud.google.com/compute/docs/gpus/gpu-regions-zones (2026-12-02).
GKE_ACCELERATOR_ZONES: dict[tuple[str, str], tuple[str, ...]] = {
    ("us-central1", "nvidia-l4"): ("us-central1-a", "us-central1-b", "us-central1-c"),
    ("us-central1", "nvidia-tesla-t4"): ("us-central1-a", "us-central1-b", "us-central1-c", "us-central1-f"),
    ("us-central1", "nvidia-tesla-a100"): ("us-central1-a", "us-central1-b", "us-central1-c", "us-central1-f"),
    ("us-central1", "nvidia-a100-80gb"): ("us-central1-a", "us-central1-c"),
    ("us-central1", "nvidia-h100-80gb"): ("us-central1-a", "us-central1-c"),
}


def eks_instance_types(primary: str) -> list[str]:
    """The catalog's instance type first, then the alternatives with the same (or larger) GPUs."""
    return list(EKS_GPU_ALTERNATIVES.get(primary, (primary,)))


def gke_zones(region: str, accelerator: str) -> tuple[str, ...]:
    """Zones of `region` with `accelerator` (a GKE accelerator name); empty when the table does not know."""
    return GKE_ACCELERATOR_ZONES.get((region, accelerator), ())

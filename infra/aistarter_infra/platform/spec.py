"""Cloud-neutral description of the platform stack: the cluster, its CPU system pool and its GPU pool.

The values arrive as Pulumi stack config (`Pulumi.<stack>.yaml`, rendered from the blueprint's STACK.gpu), so
every tunable is visible and editable in one file; `config_from_stack` builds the same mapping from a STACK
dict so aistarter's tests and the template cannot drift apart. Nothing here imports a cloud SDK.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from .. import versions
from . import database as db

Cloud = Literal["aws", "gcp", "azure"]
CLOUDS: tuple[Cloud, ...] = ("aws", "gcp", "azure")
EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")

# The CPU pool that runs the API, the system add-ons and the cluster autoscaler. Sized for a few API replicas;
# the API's HPA max_replicas decides how far max_nodes must reach, so it is config, not a constant.
SYSTEM_POOL_DEFAULTS: dict[Cloud, dict[str, Any]] = {
    "aws": {"instanceType": "m6i.large", "minNodes": 2, "maxNodes": 4, "diskSizeGb": 50},
    "gcp": {"instanceType": "e2-standard-4", "minNodes": 2, "maxNodes": 4, "diskSizeGb": 50},
    "azure": {"instanceType": "Standard_D4s_v5", "minNodes": 2, "maxNodes": 4, "diskSizeGb": 64},
}
# Each cloud's CSI-backed class: gp3 is created by the aws program (EKS ships none that is default since 1.30),
# GKE and AKS ship these as their defaults.
STORAGE_CLASS: dict[Cloud, str] = {"aws": "gp3", "gcp": "standard-rwo", "azure": "managed-csi"}
# How each cloud's maintained load-balancer integration is addressed (docs/decisions/0011-ingress.md):
# aws: the AWS Load Balancer Controller's IngressClass; gcp: a GKE Gateway class (Gateway API, GA);
# azure: Application Gateway for Containers' Gateway class (Gateway API, GA).
INGRESS_CLASS: dict[Cloud, str] = {"aws": "alb", "gcp": "gke-l7-global-external-managed",
                                   "azure": "azure-alb-external"}
# Where each integration's load balancer reaches pods from (pod-IP targets), for the API's NetworkPolicy:
# aws: the ALB's subnets inside the VPC (the default vpc.cidr; change it with the VPC); gcp: Google's proxy and
# health-check ranges; azure: the subnet delegated to Application Gateway for Containers.
LB_SOURCE_CIDRS: dict[Cloud, list[str]] = {"aws": ["10.0.0.0/16"], "gcp": ["35.191.0.0/16", "130.211.0.0/22"],
                                           "azure": ["10.225.16.0/24"]}
REGION_DEFAULTS: dict[Cloud, str] = {"aws": "us-east-1", "gcp": "us-central1", "azure": "eastus"}
# GPU images (drivers, CUDA, vLLM) are large; a small root disk fills up on the first pull.
GPU_DISK_GB = 200
# One pin for every cloud, with its support end and chart pairings: aistarter_infra/versions.py.
KUBERNETES_VERSION = versions.KUBERNETES
# The cluster-autoscaler chart and image built for that minor (versions.CLUSTER_AUTOSCALER says why).
CLUSTER_AUTOSCALER = {"chartVersion": versions.CLUSTER_AUTOSCALER.version,
                      "imageTag": versions.CLUSTER_AUTOSCALER.image_tag}

# kube-prometheus-stack selects monitors carrying its release label (serviceMonitorSelector: release=<name>).
MONITOR_LABELS = {"release": "kube-prometheus-stack"}

_NAME = re.compile(r"^[a-z][a-z0-9-]{1,38}[a-z0-9]$")


class PlatformConfigError(ValueError):
    """A platform stack setting is missing or wrong; the message names the key and the fix."""


@dataclass(frozen=True)
class Taint:
    key: str
    value: str
    effect: str = "NoSchedule"

    def as_dict(self) -> dict[str, str]:
        return {"key": self.key, "value": self.value, "effect": self.effect}

    def as_string(self) -> str:
        return f"{self.key}={self.value}:{self.effect}"


@dataclass(frozen=True)
class SystemPool:
    instance_type: str
    min_nodes: int
    max_nodes: int
    disk_size_gb: int


@dataclass(frozen=True)
class GpuPool:
    accelerator: str
    gpu_memory_gb: int
    gpus_per_node: int
    instance_type: str
    min_nodes: int
    max_nodes: int
    spot: bool
    label_key: str
    label_value: str
    taint: Taint
    disk_size_gb: int = GPU_DISK_GB
    # GPU offers exist in some zones only; empty means "let the cloud choose within the region".
    zones: tuple[str, ...] = ()
    # List price of one node per hour (the blueprint's cost estimate); the dashboard's GPU cost panel uses it.
    hourly_price_usd: float = 0.0

    @property
    def scales_to_zero(self) -> bool:
        return self.min_nodes == 0

    @property
    def labels(self) -> dict[str, str]:
        return {self.label_key: self.label_value}


@dataclass(frozen=True)
class PlatformConfig:
    cloud: Cloud
    cluster_name: str
    region: str
    kubernetes_version: str
    system_pool: SystemPool
    gpu_pool: GpuPool | None
    storage_class: str
    deletion_protection: bool = False
    # aws: an existing VPC (config `vpc`: id, publicSubnetIds, privateSubnetIds) instead of a new one (`vpc.cidr`).
    vpc_id: str | None = None
    public_subnet_ids: tuple[str, ...] = ()
    private_subnet_ids: tuple[str, ...] = ()
    vpc_cidr: str = "10.0.0.0/16"
    cluster_autoscaler: Mapping[str, str] = field(default_factory=lambda: dict(CLUSTER_AUTOSCALER))
    # gcp: the project that holds the cluster (also the workload identity pool).
    gcp_project: str | None = None
    # azure: resource group to create the cluster in (created by the program).
    resource_group: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)
    database: db.DatabaseSpec = field(default_factory=lambda: db.DatabaseSpec(tier="", storage_gb=20))
    # aws: IAM principals (role or user ARNs) of the app team, granted admin inside app_namespace only.
    app_principals: tuple[str, ...] = ()
    app_namespace: str = ""
    # Labels the installed Prometheus selects ServiceMonitors and PrometheusRules by (exported to the app).
    monitor_labels: Mapping[str, str] = field(default_factory=lambda: dict(MONITOR_LABELS))

    @property
    def system_label(self) -> dict[str, str]:
        key = self.gpu_pool.label_key if self.gpu_pool else "aistarter.dev/pool"
        return {key: "system"}


def capacity_pools(gpu: GpuPool | None) -> list[tuple[str, GpuPool]]:
    """(name suffix, pool) per GPU pool to create: the warm floor always runs on on-demand capacity.

    A spot pool with a floor above zero becomes two pools with the same label and taint: an on-demand pool
    fixed at the floor, and a spot pool from zero for the bursts above it (docs/decisions/0009-gpu-pool.md).
    """
    if gpu is None:
        return []
    if gpu.spot and gpu.min_nodes > 0:
        burst = gpu.max_nodes - gpu.min_nodes
        if burst <= 0:  # nothing above the floor to burst into: one on-demand pool, never more than planned
            return [("", replace(gpu, spot=False))]
        return [("-floor", replace(gpu, spot=False, max_nodes=gpu.min_nodes)),
                ("", replace(gpu, min_nodes=0, max_nodes=burst))]
    return [("", gpu)]


def _require(mapping: Mapping[str, Any], key: str, where: str) -> Any:
    if key not in mapping or mapping[key] in (None, ""):
        raise PlatformConfigError(f"{where}{key} is missing: set it in Pulumi.<stack>.yaml "
                                  f"(pulumi config set {where}{key} VALUE)")
    return mapping[key]


def _int(mapping: Mapping[str, Any], key: str, where: str, minimum: int = 0) -> int:
    raw = _require(mapping, key, where)
    try:
        value = int(raw)
    except (TypeError, ValueError):
        raise PlatformConfigError(f"{where}{key} must be a whole number, got {raw!r}") from None
    if value < minimum:
        raise PlatformConfigError(f"{where}{key} must be at least {minimum}, got {value}")
    return value


def _bool(raw: Any, key: str) -> bool:
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, str) and raw.lower() in ("true", "false"):
        return raw.lower() == "true"
    raise PlatformConfigError(f"{key} must be true or false, got {raw!r}")


def _parse_taint(raw: Any, where: str) -> Taint:
    if not isinstance(raw, Mapping):
        raise PlatformConfigError(f"{where}taint must be a mapping with key, value and effect, got {raw!r}")
    effect = str(raw.get("effect", "NoSchedule"))
    if effect not in EFFECTS:
        raise PlatformConfigError(f"{where}taint.effect must be one of {', '.join(EFFECTS)}, got {effect!r}")
    return Taint(key=str(_require(raw, "key", f"{where}taint.")), value=str(_require(raw, "value", f"{where}taint.")),
                 effect=effect)


def _system_pool(raw: Mapping[str, Any], cloud: Cloud) -> SystemPool:
    merged = {**SYSTEM_POOL_DEFAULTS[cloud], **raw}
    where = "systemPool."
    pool = SystemPool(instance_type=str(_require(merged, "instanceType", where)),
                      min_nodes=_int(merged, "minNodes", where, 1), max_nodes=_int(merged, "maxNodes", where, 1),
                      disk_size_gb=_int(merged, "diskSizeGb", where, 20))
    if pool.max_nodes < pool.min_nodes:
        raise PlatformConfigError(f"systemPool.maxNodes ({pool.max_nodes}) is below minNodes ({pool.min_nodes}); "
                                  "raise maxNodes")
    return pool


def _price(raw: Any) -> float:
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise PlatformConfigError(f"gpuPool.hourlyPriceUsd must be a number, got {raw!r}") from None
    if value < 0:
        raise PlatformConfigError(f"gpuPool.hourlyPriceUsd must not be negative, got {value}")
    return value


def _gpu_pool(raw: Mapping[str, Any]) -> GpuPool:
    where = "gpuPool."
    pool = GpuPool(
        accelerator=str(_require(raw, "accelerator", where)),
        gpu_memory_gb=_int(raw, "gpuMemoryGb", where, 1),
        gpus_per_node=_int(raw, "gpusPerNode", where, 1),
        instance_type=str(_require(raw, "instanceType", where)),
        min_nodes=_int(raw, "minNodes", where, 0),
        max_nodes=_int(raw, "maxNodes", where, 1),
        spot=_bool(raw.get("spot", False), f"{where}spot"),
        label_key=str(_require(raw, "labelKey", where)),
        label_value=str(_require(raw, "labelValue", where)),
        taint=_parse_taint(_require(raw, "taint", where), where),
        disk_size_gb=_int({"diskSizeGb": raw.get("diskSizeGb", GPU_DISK_GB)}, "diskSizeGb", where, 50),
        zones=tuple(str(z) for z in raw.get("zones") or ()),
        hourly_price_usd=_price(raw.get("hourlyPriceUsd", 0)),
    )
    if pool.max_nodes < pool.min_nodes:
        raise PlatformConfigError(f"gpuPool.maxNodes ({pool.max_nodes}) is below minNodes ({pool.min_nodes}); "
                                  "raise maxNodes or lower minNodes")
    return pool


def parse_platform_config(values: Mapping[str, Any]) -> PlatformConfig:
    """Build the typed config from stack config values (keys without the `project:` prefix, objects parsed)."""
    cloud = values.get("cloud")
    if cloud not in CLOUDS:
        raise PlatformConfigError(f"cloud must be one of {', '.join(CLOUDS)}, got {cloud!r}; with an existing "
                                  "cluster there is no platform stack (use infra/app with cloud=existing)")
    name = str(_require(values, "clusterName", ""))
    if not _NAME.match(name):
        raise PlatformConfigError(f"clusterName {name!r} must be 3-40 lowercase letters, digits or '-', starting "
                                  "with a letter (clouds reject other names)")
    gpu_raw = values.get("gpuPool")
    if gpu_raw is not None and not isinstance(gpu_raw, Mapping):
        raise PlatformConfigError(f"gpuPool must be a mapping (or absent for no GPU pool), got {gpu_raw!r}")
    system_raw = values.get("systemPool") or {}
    if not isinstance(system_raw, Mapping):
        raise PlatformConfigError(f"systemPool must be a mapping, got {system_raw!r}")
    vpc_raw = values.get("vpc") or {}
    if not isinstance(vpc_raw, Mapping):
        raise PlatformConfigError(f"vpc must be a mapping (cidr, or id with publicSubnetIds and privateSubnetIds), "
                                  f"got {vpc_raw!r}")
    cidr = str(vpc_raw.get("cidr") or "10.0.0.0/16")
    try:
        network = ipaddress.ip_network(cidr)
    except ValueError:
        raise PlatformConfigError(f"vpc.cidr {cidr!r} is not a network such as 10.0.0.0/16") from None
    if network.version != 4 or network.prefixlen > 20:
        raise PlatformConfigError(f"vpc.cidr {cidr} is too small: use an IPv4 /16 to /20 (pods take VPC addresses)")
    autoscaler = {**CLUSTER_AUTOSCALER, **(values.get("clusterAutoscaler") or {})}
    k8s_version = str(values.get("kubernetesVersion") or KUBERNETES_VERSION)
    if cloud == "aws" and versions.minor(autoscaler["imageTag"]) != versions.minor(k8s_version):
        raise PlatformConfigError(
            f"clusterAutoscaler.imageTag {autoscaler['imageTag']} does not match kubernetesVersion {k8s_version}: "
            "each autoscaler minor embeds the scheduler of the same Kubernetes minor; use "
            f"v{versions.minor(k8s_version)}.x with a chart built for it")
    return PlatformConfig(
        cloud=cloud,
        cluster_name=name,
        region=str(values.get("region") or REGION_DEFAULTS[cloud]),
        kubernetes_version=k8s_version,
        system_pool=_system_pool(system_raw, cloud),
        gpu_pool=_gpu_pool(gpu_raw) if gpu_raw else None,
        storage_class=str(values.get("storageClass") or STORAGE_CLASS[cloud]),
        deletion_protection=_bool(values.get("deletionProtection", False), "deletionProtection"),
        vpc_id=vpc_raw.get("id") or None,
        public_subnet_ids=tuple(vpc_raw.get("publicSubnetIds") or ()),
        private_subnet_ids=tuple(vpc_raw.get("privateSubnetIds") or ()),
        vpc_cidr=cidr,
        cluster_autoscaler={k: str(v) for k, v in autoscaler.items()},
        gcp_project=values.get("gcpProject") or None,
        resource_group=values.get("resourceGroup") or None,
        tags={str(k): str(v) for k, v in (values.get("tags") or {}).items()},
        database=db.parse(_mapping(values.get("database"), "database"), cloud, PlatformConfigError),
        monitor_labels=_labels(values.get("monitorLabels")),
        **_app_team(values.get("appTeam")),
    )


def _app_team(raw: Any) -> dict[str, Any]:
    team = _mapping(raw, "appTeam")
    principals = team.get("principals") or []
    if not isinstance(principals, list) or not all(isinstance(p, str) and p.startswith("arn:") for p in principals):
        raise PlatformConfigError("appTeam.principals must be a list of IAM role or user ARNs (arn:aws:iam::...)")
    namespace = str(team.get("namespace") or "")
    if principals and not re.fullmatch(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?", namespace):
        raise PlatformConfigError("appTeam.namespace must be the app's namespace (a DNS label) when "
                                  "appTeam.principals is set")
    return {"app_principals": tuple(principals), "app_namespace": namespace}


def _mapping(raw: Any, key: str) -> Mapping[str, Any]:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise PlatformConfigError(f"{key} must be a mapping, got {raw!r}")
    return raw


def _labels(raw: Any) -> dict[str, str]:
    if raw is None:
        return dict(MONITOR_LABELS)
    if not isinstance(raw, Mapping):
        raise PlatformConfigError(f"monitorLabels must be a mapping such as {{release: kube-prometheus-stack}}, "
                                  f"got {raw!r}")
    return {str(k): str(v) for k, v in raw.items()}


def config_from_stack(stack: Mapping[str, Any], *, cluster_name: str, region: str | None = None,
                      gcp_project: str | None = None) -> dict[str, Any]:
    """The platform stack config a blueprint's STACK implies: what the template writes to Pulumi.dev.yaml."""
    cloud = stack.get("cloud")
    if cloud not in CLOUDS:
        raise PlatformConfigError(f"STACK.cloud {cloud!r} has no platform stack; only {', '.join(CLOUDS)} do")
    values: dict[str, Any] = {
        "cloud": cloud,
        "clusterName": cluster_name,
        "region": region or REGION_DEFAULTS[cloud],
        "kubernetesVersion": KUBERNETES_VERSION,
        "storageClass": STORAGE_CLASS[cloud],
        "deletionProtection": False,
        "systemPool": dict(SYSTEM_POOL_DEFAULTS[cloud]),
        "database": db.config_for(cloud, stack.get("vector_store")),
        "monitorLabels": dict(MONITOR_LABELS),
    }
    if cloud == "aws":
        values["clusterAutoscaler"] = dict(CLUSTER_AUTOSCALER)
        values["vpc"] = {"cidr": "10.0.0.0/16"}
    if cloud == "gcp":
        values["gcpProject"] = gcp_project or "change-me"
    if cloud == "azure":
        values["resourceGroup"] = f"{cluster_name}-rg"
    gpu = stack.get("gpu")
    if gpu:
        if not gpu.get("instance_type"):
            raise PlatformConfigError("STACK.gpu.instance_type is empty; the decision engine sets it for aws, gcp "
                                      "and azure (fix the catalog entry for this cloud)")
        values["gpuPool"] = {
            "accelerator": gpu["accelerator"],
            "gpuMemoryGb": gpu["gpu_memory_gb"],
            "gpusPerNode": gpu["gpus_per_node"],
            "instanceType": gpu["instance_type"],
            "minNodes": gpu["min_nodes"],
            "maxNodes": gpu["max_nodes"],
            "spot": gpu["spot"],
            "labelKey": gpu["pool_label_key"],
            "labelValue": gpu["pool_label_value"],
            "taint": dict(gpu["taint"]),
            "diskSizeGb": GPU_DISK_GB,
            "zones": [],
        }
        cost = stack.get("cost") or {}
        if cost.get("hourly_node_price"):
            values["gpuPool"]["hourlyPriceUsd"] = cost["hourly_node_price"]
    return values


@dataclass(frozen=True)
class ClusterResult:
    """What every cloud program hands back: the values the app stack reads through a StackReference."""

    kubeconfig: Any  # pulumi.Output[str]; typed loosely so this module never imports pulumi
    storage_class: str
    database_host: Any = None  # pulumi.Output[str]: the private address of the managed PostgreSQL
    ingress_class: str = ""

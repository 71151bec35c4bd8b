"""GKE: a VPC-native cluster with Dataplane V2 (so NetworkPolicies are enforced), a CPU system pool and a
GPU pool with guest accelerators and GKE-managed NVIDIA drivers that autoscales down to zero nodes.

GKE's own cluster autoscaler scales node pools; nothing extra to install. Only this module imports pulumi_gcp.
"""

from __future__ import annotations

from typing import Any

from . import addons as shared_addons
from .pools import gke_zones
from .spec import INGRESS_CLASS, ClusterResult, PlatformConfig, PlatformConfigError, capacity_pools

# Catalog accelerator names that differ from GKE's accelerator type names; the rest are already GKE names
# (nvidia-l4, nvidia-tesla-t4, nvidia-a100-80gb, nvidia-h100-80gb).
GKE_ACCELERATOR = {"nvidia-a100-40gb": "nvidia-tesla-a100", "nvidia-t4": "nvidia-tesla-t4"}
NODE_ROLES = ("roles/logging.logWriter", "roles/monitoring.metricWriter", "roles/monitoring.viewer",
              "roles/stackdriver.resourceMetadata.writer", "roles/artifactregistry.reader")
# The cluster's own VPC: nodes, pods and Services in one regional subnet and its two secondary ranges.
GKE_RANGES = {"nodes": "10.10.0.0/20", "pods": "10.16.0.0/14", "services": "10.20.0.0/20"}
OAUTH_SCOPES = ["https://www.googleapis.com/auth/cloud-platform"]  # access is governed by IAM roles, not scopes

KUBECONFIG = """apiVersion: v1
kind: Config
clusters:
- name: {name}
  cluster:
    certificate-authority-data: {ca}
    server: https://{endpoint}
contexts:
- name: {name}
  context:
    cluster: {name}
    user: {name}
current-context: {name}
users:
- name: {name}
  user:
    exec:
      apiVersion: client.authentication.k8s.io/v1beta1
      command: gke-gcloud-auth-plugin
      installHint: Install gke-gcloud-auth-plugin (gcloud components install gke-gcloud-auth-plugin)
      provideClusterInfo: true
"""


def gke_accelerator(accelerator: str) -> str:
    return GKE_ACCELERATOR.get(accelerator, accelerator)


def initial_per_zone(total_min: int, zones: int) -> int:
    """GKE counts initial nodes per zone: start near the total floor, never a full floor in every zone."""
    if total_min == 0:
        return 0
    return max(1, -(-total_min // zones)) if zones else 1


def kubeconfig(name: str, endpoint: str, ca: str) -> str:
    return KUBECONFIG.format(name=name, endpoint=endpoint, ca=ca)


def _node_config(cfg: PlatformConfig, service_account: Any, machine_type: str, disk_gb: int,
                 labels: dict[str, str], **extra: Any) -> dict[str, Any]:
    return {
        "machine_type": machine_type,
        "disk_size_gb": disk_gb,
        "disk_type": "pd-balanced",
        "service_account": service_account.email,
        "oauth_scopes": OAUTH_SCOPES,
        "labels": labels,
        "resource_labels": {"aistarter-cluster": cfg.cluster_name},
        "workload_metadata_config": {"mode": "GKE_METADATA"},  # pods get workload identity, not the node SA
        "shielded_instance_config": {"enable_secure_boot": True, "enable_integrity_monitoring": True},
        **extra,
    }


def _network(cfg: PlatformConfig, gcp: Any, opts: Any) -> tuple[Any, Any]:
    """The cluster's own VPC: one subnet with secondary ranges for pods and Services (VPC-native), Cloud NAT for
    private nodes' egress, and a peering range for private services (Cloud SQL's private IP)."""
    name = cfg.cluster_name
    network = gcp.compute.Network(f"{name}-vpc", name=f"{name}-vpc", auto_create_subnetworks=False,
                                  routing_mode="REGIONAL", opts=opts)
    subnet = gcp.compute.Subnetwork(
        f"{name}-nodes", name=f"{name}-nodes", network=network.id, region=cfg.region,
        ip_cidr_range=GKE_RANGES["nodes"], private_ip_google_access=True,
        secondary_ip_ranges=[{"range_name": "pods", "ip_cidr_range": GKE_RANGES["pods"]},
                             {"range_name": "services", "ip_cidr_range": GKE_RANGES["services"]}],
        opts=opts)
    router = gcp.compute.Router(f"{name}-router", name=f"{name}-router", network=network.id, region=cfg.region,
                                opts=opts)
    gcp.compute.RouterNat(f"{name}-nat", name=f"{name}-nat", router=router.name, region=cfg.region,
                          nat_ip_allocate_option="AUTO_ONLY",
                          source_subnetwork_ip_ranges_to_nat="ALL_SUBNETWORKS_ALL_IP_RANGES", opts=opts)
    return network, subnet


def _database(cfg: PlatformConfig, gcp: Any, network: Any, password: Any, opts: Any) -> Any:
    """Cloud SQL for PostgreSQL with a private IP only, in the cluster's VPC (private services access).

    pgvector is part of Cloud SQL for PostgreSQL: `CREATE EXTENSION vector` needs no database flag or
    allow-list, only the engine version. Cloud SQL always encrypts data at rest (Google-managed keys).
    """
    import pulumi

    name = cfg.cluster_name
    spec = cfg.database
    peering = gcp.compute.GlobalAddress(f"{name}-services", name=f"{name}-services", purpose="VPC_PEERING",
                                        address_type="INTERNAL", prefix_length=20, network=network.id, opts=opts)
    connection = gcp.servicenetworking.Connection(f"{name}-services", network=network.id,
                                                  service="servicenetworking.googleapis.com",
                                                  reserved_peering_ranges=[peering.name], opts=opts)
    instance = gcp.sql.DatabaseInstance(
        f"{name}-db",
        name=f"{name}-db",
        region=cfg.region,
        database_version=f"POSTGRES_{spec.engine_version.split('.')[0]}",
        deletion_protection=spec.deletion_protection,  # Pulumi refuses to delete it
        settings={
            "tier": spec.tier,
            "edition": spec.edition or "ENTERPRISE",
            "availability_type": "REGIONAL" if spec.high_availability else "ZONAL",
            "disk_type": "PD_SSD",
            "disk_size": spec.storage_gb,
            "disk_autoresize": True,
            "deletion_protection_enabled": spec.deletion_protection,  # the Cloud SQL API refuses too
            "ip_configuration": {"ipv4_enabled": False, "private_network": network.id,
                                 "ssl_mode": "ENCRYPTED_ONLY"},
            "backup_configuration": {"enabled": True, "point_in_time_recovery_enabled": True,
                                     "backup_retention_settings": {"retained_backups": spec.backup_retention_days,
                                                                   "retention_unit": "COUNT"}},
            "user_labels": {"aistarter-cluster": name},
        },
        opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(depends_on=[connection])),
    )
    gcp.sql.Database(f"{name}-db-{spec.name}", name=spec.name, instance=instance.name, opts=opts)
    gcp.sql.User(f"{name}-db-{spec.user}", name=spec.user, instance=instance.name, password=password, opts=opts)
    return instance.private_ip_address


def build(cfg: PlatformConfig, db_password: Any) -> ClusterResult:
    import pulumi
    import pulumi_gcp as gcp

    if not cfg.gcp_project:
        raise PlatformConfigError("gcpProject is missing: set it in Pulumi.<stack>.yaml "
                         "(pulumi config set gcpProject YOUR_PROJECT_ID)")
    name = cfg.cluster_name
    provider = gcp.Provider(f"{name}-gcp", project=cfg.gcp_project, region=cfg.region)
    opts = pulumi.ResourceOptions(provider=provider)

    # A dedicated, minimal node identity instead of the broad Compute Engine default service account.
    account = gcp.serviceaccount.Account(f"{name}-nodes", account_id=f"{name[:24]}-nodes",
                                         display_name=f"GKE nodes of {name}", opts=opts)
    for role in NODE_ROLES:
        gcp.projects.IAMMember(f"{name}-nodes-{role.split('/')[-1]}", project=cfg.gcp_project, role=role,
                               member=account.email.apply(lambda e: f"serviceAccount:{e}"), opts=opts)

    network, subnet = _network(cfg, gcp, opts)
    cluster = gcp.container.Cluster(
        name,
        name=name,
        location=cfg.region,
        remove_default_node_pool=True,  # the pools below are managed separately so they can change alone
        initial_node_count=1,
        min_master_version=cfg.kubernetes_version,
        release_channel={"channel": "REGULAR"},
        network=network.id,
        subnetwork=subnet.id,
        networking_mode="VPC_NATIVE",
        ip_allocation_policy={"cluster_secondary_range_name": "pods", "services_secondary_range_name": "services"},
        # Nodes get private addresses only; egress goes through Cloud NAT.
        private_cluster_config={"enable_private_nodes": True, "enable_private_endpoint": False},
        datapath_provider="ADVANCED_DATAPATH",  # Dataplane V2 enforces the app stack's NetworkPolicies
        workload_identity_config={"workload_pool": f"{cfg.gcp_project}.svc.id.goog"},
        addons_config={"gce_persistent_disk_csi_driver_config": {"enabled": True}},
        # GKE Gateway controller (Gateway API, GA): the app's HTTPRoute binds to a gke-l7 GatewayClass.
        gateway_api_config={"channel": "CHANNEL_STANDARD"},
        # GPU metrics (DCGM) are collected by GKE itself into Managed Service for Prometheus.
        monitoring_config={"enable_components": ["SYSTEM_COMPONENTS", "DCGM"],
                           "managed_prometheus": {"enabled": True}},
        deletion_protection=cfg.deletion_protection,
        resource_labels={"aistarter-cluster": name},
        opts=opts,
    )
    system = cfg.system_pool
    system_pool = gcp.container.NodePool(
        f"{name}-system",
        name="system",
        cluster=cluster.name,
        location=cfg.region,
        initial_node_count=1,
        autoscaling={"total_min_node_count": system.min_nodes, "total_max_node_count": system.max_nodes,
                     "location_policy": "BALANCED"},
        management={"auto_repair": True, "auto_upgrade": True},
        node_config=_node_config(cfg, account, system.instance_type, system.disk_size_gb, cfg.system_label),
        opts=opts,
    )
    for suffix, gpu in capacity_pools(cfg.gpu_pool):
        # Only zones that have this accelerator: config first, else the known table for the region.
        zones = gpu.zones or gke_zones(cfg.region, gke_accelerator(gpu.accelerator))
        gcp.container.NodePool(
            f"{name}-gpu{suffix}",
            name=f"gpu{suffix}",
            cluster=cluster.name,
            location=cfg.region,
            node_locations=list(zones) or None,
            initial_node_count=initial_per_zone(gpu.min_nodes, len(zones)),
            # total_* bounds count nodes across zones (per-zone bounds would multiply by the zone count);
            # ANY lets the autoscaler take whichever zone has the GPUs (or spot capacity) right now.
            autoscaling={"total_min_node_count": gpu.min_nodes, "total_max_node_count": gpu.max_nodes,
                         "location_policy": "ANY"},
            management={"auto_repair": True, "auto_upgrade": True},
            node_config=_node_config(
                cfg, account, gpu.instance_type, gpu.disk_size_gb, gpu.labels,
                guest_accelerators=[{
                    "type": gke_accelerator(gpu.accelerator),
                    "count": gpu.gpus_per_node,
                    "gpu_driver_installation_config": {"gpu_driver_version": "LATEST"},  # GKE installs the driver
                }],
                # GKE adds this taint to GPU pools itself; stating it keeps the pool and the policy in agreement.
                taints=[{"key": gpu.taint.key, "value": gpu.taint.value, "effect": _gke_effect(gpu.taint.effect)}],
                spot=gpu.spot,
            ),
            opts=opts,
        )
    config = pulumi.Output.all(cluster.name, cluster.endpoint, cluster.master_auth.cluster_ca_certificate).apply(
        lambda args: kubeconfig(args[0], args[1], args[2]))
    import pulumi_kubernetes as k8s

    k8s_provider = k8s.Provider(f"{name}-k8s", kubeconfig=config, enable_server_side_apply=True)
    # GKE runs the NVIDIA device plugin and the driver installer on GPU nodes itself, and DCGM (above).
    shared_addons.install(cfg, k8s_provider, device_plugin=False, dcgm=False, depends_on=[system_pool])
    db_host = _database(cfg, gcp, network, db_password, opts)
    return ClusterResult(kubeconfig=config, storage_class=cfg.storage_class, database_host=db_host,
                         ingress_class=INGRESS_CLASS["gcp"])


def _gke_effect(effect: str) -> str:
    return {"NoSchedule": "NO_SCHEDULE", "PreferNoSchedule": "PREFER_NO_SCHEDULE", "NoExecute": "NO_EXECUTE"}[effect]

"""AKS: a managed cluster with Azure CNI overlay and Cilium (so NetworkPolicies are enforced), a CPU system
pool and a GPU user pool (NC/ND series) that autoscales down to zero nodes, on spot priority when chosen.

AKS does not taint GPU pools by itself (Azure/AKS#1449), so the program sets nvidia.com/gpu explicitly.
AKS's built-in cluster autoscaler scales the pools; nothing extra to install. Only this module imports
pulumi_azure_native.
"""

from __future__ import annotations

import base64
from typing import Any

from . import addons as shared_addons
from .pools import AKS_SPOT_TAINT, AZURE_ACCELERATOR_TAG, AZURE_GPUS_PER_NODE_TAG
from .spec import ClusterResult, PlatformConfig

SYSTEM_POOL = "system"
GPU_POOL = "gpu"  # Linux agent pool names: lowercase letters and digits, at most 12 characters
VNET_RANGES = {"vnet": "10.224.0.0/12", "nodes": "10.224.0.0/16", "db": "10.225.0.0/24"}
NETWORK_CONTRIBUTOR = "4d97b98b-1d4f-4787-a291-c67834d212e7"  # built-in role id
INGRESS_CLASS = "webapprouting.kubernetes.azure.com"


def decode_kubeconfig(value: str) -> str:
    return base64.b64decode(value).decode("utf-8")


def _network(cfg: PlatformConfig, azure: Any, group: Any, tags: dict[str, str]) -> tuple[Any, Any, Any]:
    """The cluster's VNet: a node subnet (pods use the overlay range) and a subnet delegated to PostgreSQL."""
    import pulumi

    name = cfg.cluster_name
    vnet = azure.network.VirtualNetwork(f"{name}-vnet", virtual_network_name=f"{name}-vnet",
                                        resource_group_name=group.name, location=cfg.region,
                                        address_space={"address_prefixes": [VNET_RANGES["vnet"]]}, tags=tags)
    nodes = azure.network.Subnet(f"{name}-nodes", subnet_name="nodes", resource_group_name=group.name,
                                 virtual_network_name=vnet.name, address_prefix=VNET_RANGES["nodes"])
    db_subnet = azure.network.Subnet(
        f"{name}-db", subnet_name="postgres", resource_group_name=group.name, virtual_network_name=vnet.name,
        address_prefix=VNET_RANGES["db"],
        delegations=[{"name": "postgres", "service_name": "Microsoft.DBforPostgreSQL/flexibleServers"}],
        opts=pulumi.ResourceOptions(depends_on=[nodes]))  # subnets of one VNet: one at a time
    return vnet, nodes, db_subnet


def _database(cfg: PlatformConfig, azure: Any, group: Any, vnet: Any, subnet: Any, password: Any,
              tags: dict[str, str]) -> Any:
    """Azure Database for PostgreSQL flexible server, VNet-integrated (no public access), with a private DNS
    zone linked to the cluster's VNet. Data at rest is always encrypted (service-managed keys)."""
    import pulumi

    name = cfg.cluster_name
    spec = cfg.database
    zone = azure.privatedns.PrivateZone(f"{name}-db", private_zone_name=f"{name}.private.postgres.database.azure.com",
                                        resource_group_name=group.name, location="Global", tags=tags)
    link = azure.privatedns.VirtualNetworkLink(f"{name}-db", virtual_network_link_name=f"{name}-vnet",
                                               private_zone_name=zone.name, resource_group_name=group.name,
                                               location="Global", registration_enabled=False,
                                               virtual_network={"id": vnet.id})
    server = azure.dbforpostgresql.Server(
        f"{name}-db",
        server_name=f"{name}-db",
        resource_group_name=group.name,
        location=cfg.region,
        version=spec.engine_version.split(".")[0],
        sku={"name": spec.tier, "tier": spec.edition or "Burstable"},
        storage={"storage_size_gb": spec.storage_gb, "auto_grow": "Enabled"},
        backup={"backup_retention_days": spec.backup_retention_days, "geo_redundant_backup": "Disabled"},
        high_availability={"mode": "ZoneRedundant" if spec.high_availability else "Disabled"},
        network={"delegated_subnet_resource_id": subnet.id, "private_dns_zone_arm_resource_id": zone.id,
                 "public_network_access": "Disabled"},
        administrator_login=spec.user,
        administrator_login_password=password,
        tags=tags,
        # The flexible server has no deletion-protection flag: Pulumi's protect plus a CanNotDelete lock stand in.
        opts=pulumi.ResourceOptions(depends_on=[link], protect=spec.deletion_protection),
    )
    if spec.deletion_protection:
        azure.authorization.ManagementLockAtResourceLevel(
            f"{name}-db", lock_name=f"{name}-db-no-delete", level="CanNotDelete", resource_group_name=group.name,
            resource_provider_namespace="Microsoft.DBforPostgreSQL", parent_resource_path="",
            resource_type="flexibleServers", resource_name_=server.name, api_version="2024-08-01",
            notes="deletionProtection in the platform stack's database config")
    if spec.pgvector:
        # Azure allow-lists extensions per server: without this, CREATE EXTENSION vector is refused.
        azure.dbforpostgresql.Configuration(f"{name}-db-extensions", configuration_name="azure.extensions",
                                            resource_group_name=group.name, server_name=server.name,
                                            value="VECTOR", source="user-override")
    azure.dbforpostgresql.Database(f"{name}-db-{spec.name}", database_name=spec.name, resource_group_name=group.name,
                                   server_name=server.name, charset="UTF8", collation="en_US.utf8")
    return server.fully_qualified_domain_name


def build(cfg: PlatformConfig, db_password: Any) -> ClusterResult:
    import pulumi
    import pulumi_azure_native as azure

    name = cfg.cluster_name
    tags = {"aistarter-cluster": name, **cfg.tags}
    group = azure.resources.ResourceGroup(f"{name}-rg", resource_group_name=cfg.resource_group or f"{name}-rg",
                                          location=cfg.region, tags=tags)
    vnet, nodes, db_subnet = _network(cfg, azure, group, tags)
    system = cfg.system_pool
    cluster = azure.containerservice.ManagedCluster(
        name,
        resource_name_=name,
        resource_group_name=group.name,
        location=cfg.region,
        dns_prefix=name,
        kubernetes_version=cfg.kubernetes_version,
        identity={"type": "SystemAssigned"},
        agent_pool_profiles=[{
            "name": SYSTEM_POOL,
            "mode": "System",
            "vm_size": system.instance_type,
            "os_type": "Linux",
            "os_sku": "AzureLinux",
            "os_disk_size_gb": system.disk_size_gb,
            "type": "VirtualMachineScaleSets",
            "count": system.min_nodes,
            "enable_auto_scaling": True,
            "min_count": system.min_nodes,
            "max_count": system.max_nodes,
            "node_labels": cfg.system_label,
            "vnet_subnet_id": nodes.id,
        }],
        network_profile={
            "network_plugin": "azure",
            "network_plugin_mode": "overlay",
            "network_dataplane": "cilium",
            "network_policy": "cilium",  # enforces the app stack's NetworkPolicies
        },
        oidc_issuer_profile={"enabled": True},
        security_profile={"workload_identity": {"enabled": True}},
        # GPU nodes cost dollars per hour: give up an idle one after 10 minutes.
        auto_scaler_profile={"expander": "least-waste", "scale_down_unneeded_time": "10m"},
        auto_upgrade_profile={"upgrade_channel": "patch"},
        tags=tags,
    )
    if cfg.gpu_pool is not None:
        gpu = cfg.gpu_pool
        taints = [gpu.taint.as_string()]
        spot: dict[str, object] = {}
        if gpu.spot:
            # AKS adds the spot taint on its own; listing it keeps Pulumi from seeing drift on every refresh.
            taints.append(f"{AKS_SPOT_TAINT['key']}={AKS_SPOT_TAINT['value']}:{AKS_SPOT_TAINT['effect']}")
            # -1: pay up to the on-demand price, so eviction happens only when Azure needs the capacity back.
            spot = {"scale_set_priority": "Spot", "scale_set_eviction_policy": "Delete", "spot_max_price": -1}
        azure.containerservice.AgentPool(
            f"{name}-gpu",
            agent_pool_name=GPU_POOL,
            resource_group_name=group.name,
            resource_name_=cluster.name,
            mode="User",
            vm_size=gpu.instance_type,
            os_type="Linux",
            os_sku="Ubuntu",
            os_disk_size_gb=gpu.disk_size_gb,
            type="VirtualMachineScaleSets",
            count=gpu.min_nodes,
            enable_auto_scaling=True,
            min_count=gpu.min_nodes,
            max_count=gpu.max_nodes,
            availability_zones=list(gpu.zones) or None,
            vnet_subnet_id=nodes.id,
            node_labels=gpu.labels,
            node_taints=taints,
            gpu_profile={"driver": "Install"},  # AKS installs the NVIDIA driver on the node image
            tags={**tags, AZURE_GPUS_PER_NODE_TAG: str(gpu.gpus_per_node), AZURE_ACCELERATOR_TAG: gpu.accelerator},
            **spot,
        )
    # With a VNet of its own, the cluster identity must manage load balancers and IPs in the node subnet.
    azure.authorization.RoleAssignment(
        f"{name}-network", principal_id=cluster.identity.apply(lambda i: i.principal_id if i else ""),
        principal_type="ServicePrincipal", scope=nodes.id,
        role_definition_id=f"/providers/Microsoft.Authorization/roleDefinitions/{NETWORK_CONTRIBUTOR}")
    db_host = _database(cfg, azure, group, vnet, db_subnet, db_password, tags)
    creds = azure.containerservice.list_managed_cluster_user_credentials_output(
        resource_group_name=group.name, resource_name=cluster.name)
    config = creds.kubeconfigs.apply(lambda items: decode_kubeconfig(items[0].value))
    import pulumi_kubernetes as k8s

    k8s_provider = k8s.Provider(f"{name}-k8s", kubeconfig=pulumi.Output.secret(config),
                                enable_server_side_apply=True)
    spot_toleration = [{**AKS_SPOT_TAINT, "operator": "Equal"}] if cfg.gpu_pool and cfg.gpu_pool.spot else []
    # AKS installs the GPU driver (gpuProfile) but not the device plugin: the chart advertises nvidia.com/gpu.
    shared_addons.install(cfg, k8s_provider, device_plugin=True, dcgm=True, gpu_tolerations=spot_toleration,
                          depends_on=[cluster])
    return ClusterResult(kubeconfig=pulumi.Output.secret(config), storage_class=cfg.storage_class,
                         database_host=db_host, ingress_class=INGRESS_CLASS)

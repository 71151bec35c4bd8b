"""AKS: a managed cluster with Azure CNI overlay and Cilium (so NetworkPolicies are enforced), a CPU system
pool and a GPU user pool (NC/ND series) that autoscales down to zero nodes, on spot priority when chosen.

AKS does not taint GPU pools by itself (Azure/AKS#1449), so the program sets nvidia.com/gpu explicitly.
AKS's built-in cluster autoscaler scales the pools; nothing extra to install. Only this module imports
pulumi_azure_native.
"""

from __future__ import annotations

import base64
from typing import Any

from .. import versions
from . import addons as shared_addons
from .pools import AKS_SPOT_TAINT, AZURE_ACCELERATOR_TAG, AZURE_GPUS_PER_NODE_TAG
from .spec import INGRESS_CLASS, ClusterResult, PlatformConfig, capacity_pools

SYSTEM_POOL = "system"
GPU_POOL = "gpu"  # Linux agent pool names: lowercase letters and digits, at most 12 characters
VNET_RANGES = {"vnet": "10.224.0.0/12", "nodes": "10.224.0.0/16", "db": "10.225.0.0/24", "alb": "10.225.16.0/24"}
# Built-in role definition ids.
NETWORK_CONTRIBUTOR = "4d97b98b-1d4f-4787-a291-c67834d212e7"
READER = "acdd72a7-3385-48ef-bd42-f606fba81ae7"
AGC_CONFIGURATION_MANAGER = "fbc52c3f-28ad-4303-a892-8a056630b8f1"  # AppGw for Containers Configuration Manager
ALB_SA = ("azure-alb-system", "alb-controller-sa")
ALB_INFRA_NAMESPACE, ALB_NAME = "alb-infra", "alb"  # components/ingress.py binds Gateways to this


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
    alb_subnet = azure.network.Subnet(
        f"{name}-alb", subnet_name="alb", resource_group_name=group.name, virtual_network_name=vnet.name,
        address_prefix=VNET_RANGES["alb"],
        delegations=[{"name": "alb", "service_name": "Microsoft.ServiceNetworking/trafficControllers"}],
        opts=pulumi.ResourceOptions(depends_on=[db_subnet]))
    return vnet, nodes, db_subnet, alb_subnet


def _role(azure: Any, name: str, principal: Any, scope: Any, role_id: str) -> Any:
    return azure.authorization.RoleAssignment(
        name, principal_id=principal, principal_type="ServicePrincipal", scope=scope,
        role_definition_id=f"/providers/Microsoft.Authorization/roleDefinitions/{role_id}")


def _application_gateway_for_containers(cfg: PlatformConfig, azure: Any, group: Any, cluster: Any, subnet: Any,
                                        provider: Any, tags: dict[str, str]) -> None:
    """ALB controller (workload identity) plus a managed ApplicationLoadBalancer in its own delegated subnet:
    the app's Gateway (class azure-alb-external) becomes an Application Gateway for Containers frontend."""
    import pulumi
    import pulumi_kubernetes as k8s

    name = cfg.cluster_name
    identity = azure.managedidentity.UserAssignedIdentity(f"{name}-alb", resource_name_=f"{name}-alb",
                                                         resource_group_name=group.name, location=cfg.region,
                                                         tags=tags)
    azure.managedidentity.FederatedIdentityCredential(
        f"{name}-alb", federated_identity_credential_resource_name="alb-controller",
        resource_group_name=group.name, resource_name_=identity.name,
        issuer=cluster.oidc_issuer_profile.apply(lambda p: p.issuer_url if p else ""),
        subject=f"system:serviceaccount:{ALB_SA[0]}:{ALB_SA[1]}", audiences=["api://AzureADTokenExchange"])
    client = azure.authorization.get_client_config_output()
    node_group = pulumi.Output.all(client.subscription_id, cluster.node_resource_group).apply(
        lambda a: f"/subscriptions/{a[0]}/resourceGroups/{a[1]}")
    grants = [_role(azure, f"{name}-alb-config", identity.principal_id, node_group, AGC_CONFIGURATION_MANAGER),
              _role(azure, f"{name}-alb-reader", identity.principal_id, node_group, READER),
              _role(azure, f"{name}-alb-subnet", identity.principal_id, subnet.id, NETWORK_CONTRIBUTOR)]
    chart = versions.AZURE_ALB_CONTROLLER
    controller = k8s.helm.v3.Release(
        f"{name}-alb-controller", name=chart.chart, chart=f"{chart.repo}/{chart.chart}", version=chart.version,
        namespace=ALB_SA[0], create_namespace=True,
        values={"albController": {"namespace": ALB_SA[0], "podIdentity": {"clientID": identity.client_id},
                                  "nodeSelector": cfg.system_label}},
        opts=pulumi.ResourceOptions(provider=provider, depends_on=grants))
    namespace = k8s.core.v1.Namespace(f"{name}-alb-infra", metadata={"name": ALB_INFRA_NAMESPACE},
                                      opts=pulumi.ResourceOptions(provider=provider))
    k8s.apiextensions.CustomResource(
        f"{name}-alb", api_version="alb.networking.azure.io/v1", kind="ApplicationLoadBalancer",
        metadata={"name": ALB_NAME, "namespace": ALB_INFRA_NAMESPACE}, spec={"associations": [subnet.id]},
        opts=pulumi.ResourceOptions(provider=provider, depends_on=[controller, namespace]))


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
    vnet, nodes, db_subnet, alb_subnet = _network(cfg, azure, group, tags)
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
        # The autoscaler owns the system pool's node count (and the patch channel the version's patch).
        opts=pulumi.ResourceOptions(ignore_changes=["agentPoolProfiles[0].count", "kubernetesVersion"]),
    )
    for suffix, gpu in capacity_pools(cfg.gpu_pool):
        taints = [gpu.taint.as_string()]
        spot: dict[str, object] = {}
        if gpu.spot:
            # AKS adds the spot taint on its own; listing it keeps Pulumi from seeing drift on every refresh.
            taints.append(f"{AKS_SPOT_TAINT['key']}={AKS_SPOT_TAINT['value']}:{AKS_SPOT_TAINT['effect']}")
            # -1: pay up to the on-demand price, so eviction happens only when Azure needs the capacity back.
            spot = {"scale_set_priority": "Spot", "scale_set_eviction_policy": "Delete", "spot_max_price": -1}
        azure.containerservice.AgentPool(
            f"{name}-gpu{suffix}",
            agent_pool_name=GPU_POOL + suffix.replace("-", ""),
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
            # The cluster autoscaler owns the node count between min and max; Pulumi must not drift it back.
            opts=pulumi.ResourceOptions(ignore_changes=["count"]),
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
    _application_gateway_for_containers(cfg, azure, group, cluster, alb_subnet, k8s_provider, tags)
    return ClusterResult(kubeconfig=pulumi.Output.secret(config), storage_class=cfg.storage_class,
                         database_host=db_host, ingress_class=INGRESS_CLASS["azure"])

"""AKS: a managed cluster with Azure CNI overlay and Cilium (so NetworkPolicies are enforced), a CPU system
pool and a GPU user pool (NC/ND series) that autoscales down to zero nodes, on spot priority when chosen.

AKS does not taint GPU pools by itself (Azure/AKS#1449), so the program sets nvidia.com/gpu explicitly.
AKS's built-in cluster autoscaler scales the pools; nothing extra to install. Only this module imports
pulumi_azure_native.
"""

from __future__ import annotations

import base64

from .pools import AKS_SPOT_TAINT, AZURE_ACCELERATOR_TAG, AZURE_GPUS_PER_NODE_TAG
from .spec import ClusterResult, PlatformConfig

SYSTEM_POOL = "system"
GPU_POOL = "gpu"  # Linux agent pool names: lowercase letters and digits, at most 12 characters


def decode_kubeconfig(value: str) -> str:
    return base64.b64decode(value).decode("utf-8")


def build(cfg: PlatformConfig) -> ClusterResult:
    import pulumi
    import pulumi_azure_native as azure

    name = cfg.cluster_name
    tags = {"aistarter-cluster": name, **cfg.tags}
    group = azure.resources.ResourceGroup(f"{name}-rg", resource_group_name=cfg.resource_group or f"{name}-rg",
                                          location=cfg.region, tags=tags)
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
            node_labels=gpu.labels,
            node_taints=taints,
            gpu_profile={"driver": "Install"},  # AKS installs the NVIDIA driver on the node image
            tags={**tags, AZURE_GPUS_PER_NODE_TAG: str(gpu.gpus_per_node), AZURE_ACCELERATOR_TAG: gpu.accelerator},
            **spot,
        )
    creds = azure.containerservice.list_managed_cluster_user_credentials_output(
        resource_group_name=group.name, resource_name=cluster.name)
    config = creds.kubeconfigs.apply(lambda items: decode_kubeconfig(items[0].value))
    return ClusterResult(kubeconfig=pulumi.Output.secret(config), storage_class=cfg.storage_class)

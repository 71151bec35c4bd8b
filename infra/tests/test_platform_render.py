"""The platform stack per cloud under Pulumi mocks, built from real decision-engine blueprints.

For aws, gcp and azure with self_hosted small and large: the GPU pool has the blueprint's taint, label,
min/max, spot and GPU count; a CPU system pool exists; the StackReference outputs are exported (kubeconfig
as a secret); and a fresh interpreter rendering one cloud imports no other cloud's SDK.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

INFRA = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(INFRA))

from aistarter_infra.platform import pools as pool_types  # noqa: E402
from aistarter_infra.platform.program import OUTPUT_NAMES  # noqa: E402
from aistarter_infra.platform.render import PlatformRender, render_platform  # noqa: E402
from aistarter_infra.platform.spec import PlatformConfigError, config_from_stack, parse_platform_config  # noqa: E402

SDKS = {"aws": ("pulumi_aws", "pulumi_eks"), "gcp": ("pulumi_gcp",), "azure": ("pulumi_azure_native",)}
ALL_SDKS = {m for mods in SDKS.values() for m in mods}


def require_sdk(cloud: str) -> None:
    missing = [m for m in SDKS[cloud] if importlib.util.find_spec(m) is None]
    if missing:
        message = f"{', '.join(missing)} not installed (pip install -r the generated infra/platform/requirements.txt)"
        if os.environ.get("AISTARTER_REQUIRE_SERVICES") == "1":
            pytest.fail(message)
        pytest.skip(message)


def blueprint_stack(cloud: str, size: str, cost: str = "cost", **extra: Any) -> dict[str, Any]:
    from aistarter.decide import decide
    from aistarter.questions import Answers

    providers = ["openai", "local"] if size != "none" else ["openai"]
    # cost + a generous budget: scale to zero and spot; latency: warm on-demand nodes.
    budget = 600_000 if cost == "cost" else 1_000
    answers = Answers(project_name="demo", use_case="chat", self_hosted=size, cloud=cloud, providers=providers,
                      cost_priority=cost, traffic="spiky", latency_budget_ms=budget, **extra)
    return decide(answers).stack.model_dump(mode="json")


_CACHE: dict[tuple[str, str, str], tuple[dict[str, Any], PlatformRender]] = {}


def rendered(cloud: str, size: str, cost: str = "cost") -> tuple[dict[str, Any], PlatformRender]:
    require_sdk(cloud)
    key = (cloud, size, cost)
    if key not in _CACHE:
        stack = blueprint_stack(cloud, size, cost)
        _CACHE[key] = stack, render_platform(config_from_stack(stack, cluster_name="demo"), project="demo-platform")
    return _CACHE[key]


CASES = [(c, s, p) for c in ("aws", "gcp", "azure") for s in ("small", "large") for p in ("cost", "latency")]


@pytest.mark.parametrize(("cloud", "size", "cost"), CASES)
def test_gpu_pool_matches_blueprint(cloud: str, size: str, cost: str) -> None:
    stack, result = rendered(cloud, size, cost)
    gpu = stack["gpu"]
    views = result.pool_views()
    gpu_pools = [p for p in views if p.is_gpu]
    assert len(gpu_pools) == 1, [p.name for p in views]
    pool = gpu_pools[0]
    assert {"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"} in pool.taints
    extra = {"k8s.amazonaws.com/accelerator": gpu["accelerator"]} if cloud == "aws" else {}
    assert pool.labels == {gpu["pool_label_key"]: gpu["pool_label_value"], **extra}
    assert (pool.min_nodes, pool.max_nodes) == (gpu["min_nodes"], gpu["max_nodes"])
    assert pool.spot is gpu["spot"]
    assert pool.gpus_per_node == gpu["gpus_per_node"]
    assert pool.instance_type == gpu["instance_type"]
    if cost == "cost":
        # issue 14: spot only when nothing is warm; the warm floor never runs on spot
        assert pool.spot is (pool.min_nodes == 0), "cost priority: spot exactly when the plan scales to zero"
    else:
        assert pool.min_nodes > 0 and not pool.spot


@pytest.mark.parametrize("cloud", ["aws", "gcp", "azure"])
def test_system_pool_is_cpu_and_untainted(cloud: str) -> None:
    _, result = rendered(cloud, "small")
    system = [p for p in result.pool_views() if not p.is_gpu]
    assert len(system) == 1
    assert system[0].taints == [] and system[0].labels == {"aistarter.dev/pool": "system"}
    assert system[0].min_nodes == 2 and system[0].max_nodes == 4


@pytest.mark.parametrize("cloud", ["aws", "gcp", "azure"])
def test_outputs_exported_for_the_app_stack(cloud: str) -> None:
    stack, result = rendered(cloud, "small")
    assert result.exported == sorted(OUTPUT_NAMES)
    assert result.secret_outputs == {"kubeconfig", "database_url"}
    taint = stack["gpu"]["taint"]
    assert result.outputs["gpu_pool_label_key"] == stack["gpu"]["pool_label_key"]
    assert result.outputs["gpu_pool_label_value"] == stack["gpu"]["pool_label_value"]
    assert (result.outputs["gpu_taint_key"], result.outputs["gpu_taint_value"],
            result.outputs["gpu_taint_effect"]) == (taint["key"], taint["value"], taint["effect"])
    assert result.outputs["storage_class"] == {"aws": "gp3", "gcp": "standard-rwo", "azure": "managed-csi"}[cloud]
    assert "apiVersion" in result.outputs["kubeconfig"]


def _one(result: PlatformRender, rtype: str, name: str) -> dict[str, Any]:
    matches = [r["inputs"] for r in result.of_type(rtype) if r["name"] == name]
    assert len(matches) == 1, f"{rtype} {name}: {[r['name'] for r in result.of_type(rtype)]}"
    return matches[0]


def test_aws_specifics() -> None:
    stack, result = rendered("aws", "large")
    plan = stack["gpu"]
    gpu = _one(result, pool_types.EKS_MANAGED_NODE_GROUP, "demo-gpu")
    assert gpu["amiType"] == "AL2023_x86_64_NVIDIA"
    assert gpu["capacityType"] == ("SPOT" if plan["spot"] else "ON_DEMAND")
    # Several types where EKS allows it; the blueprint's type stays first.
    assert gpu["instanceTypes"][0] == plan["instance_type"] and len(set(gpu["instanceTypes"])) == len(
        gpu["instanceTypes"])
    assert gpu["taints"] == [{"key": "nvidia.com/gpu", "value": "present", "effect": "NO_SCHEDULE"}]
    assert gpu["ignoreScalingChanges"] is True
    assert gpu["labels"]["k8s.amazonaws.com/accelerator"] == plan["accelerator"]  # Cluster Autoscaler's GPU label
    cluster = _one(result, "eks:index:Cluster", "demo")
    assert cluster["skipDefaultNodeGroup"] is True and cluster["createOidcProvider"] is True
    assert cluster["vpcCniOptions"]["enableNetworkPolicy"] is True
    autoscaler = _one(result, "kubernetes:helm.sh/v3:Release", "demo-cluster-autoscaler")
    assert autoscaler["chart"] == "cluster-autoscaler" and autoscaler["version"] == "9.59.0"
    assert autoscaler["values"]["image"] == {"tag": "v1.35.0"}
    assert autoscaler["values"]["autoDiscovery"] == {"clusterName": "demo"}
    policy = json.loads(_one(result, "aws:iam/rolePolicy:RolePolicy", "demo-cluster-autoscaler")["policy"])
    actions = {a for stmt in policy["Statement"] for a in stmt["Action"]}
    assert "eks:DescribeNodegroup" in actions, "scale from zero reads labels/taints from the node group API"
    sc = _one(result, "kubernetes:storage.k8s.io/v1:StorageClass", "demo-gp3")
    assert sc["provisioner"] == "ebs.csi.aws.com" and sc["volumeBindingMode"] == "WaitForFirstConsumer"
    assert _one(result, "aws:eks/addon:Addon", "demo-ebs-csi")["addonName"] == "aws-ebs-csi-driver"


def test_aws_on_demand_when_latency_first() -> None:
    stack, result = rendered("aws", "small", "latency")
    plan = stack["gpu"]
    assert plan["min_nodes"] > 0 and not plan["spot"]
    gpu = _one(result, pool_types.EKS_MANAGED_NODE_GROUP, "demo-gpu")
    assert gpu["capacityType"] == "ON_DEMAND"
    assert gpu["scalingConfig"] == {"minSize": plan["min_nodes"], "maxSize": plan["max_nodes"],
                                    "desiredSize": plan["min_nodes"]}


def test_gcp_specifics() -> None:
    from aistarter_infra.platform.gcp import gke_accelerator, initial_per_zone

    stack, result = rendered("gcp", "large")
    plan = stack["gpu"]
    gpu = _one(result, pool_types.GKE_NODE_POOL, "demo-gpu")
    accel = gpu["nodeConfig"]["guestAccelerators"]
    assert accel == [{"type": gke_accelerator(plan["accelerator"]), "count": plan["gpus_per_node"],
                      "gpuDriverInstallationConfig": {"gpuDriverVersion": "LATEST"}}]
    assert gpu["nodeConfig"]["machineType"] == plan["instance_type"]
    assert bool(gpu["nodeConfig"].get("spot")) is plan["spot"]
    assert gpu["autoscaling"] == {"totalMinNodeCount": plan["min_nodes"], "totalMaxNodeCount": plan["max_nodes"],
                                  "locationPolicy": "ANY"}
    assert gpu["initialNodeCount"] == initial_per_zone(plan["min_nodes"], len(gpu.get("nodeLocations") or []))
    cluster = _one(result, "gcp:container/cluster:Cluster", "demo")
    assert cluster["datapathProvider"] == "ADVANCED_DATAPATH"
    assert cluster["removeDefaultNodePool"] is True


def test_gcp_catalog_name_maps_to_gke_accelerator() -> None:
    from aistarter_infra.platform.gcp import gke_accelerator

    assert gke_accelerator("nvidia-a100-40gb") == "nvidia-tesla-a100"
    assert gke_accelerator("nvidia-l4") == "nvidia-l4"


def test_azure_specifics() -> None:
    stack, result = rendered("azure", "small")
    plan = stack["gpu"]
    gpu = _one(result, pool_types.AKS_AGENT_POOL, "demo-gpu")
    if plan["spot"]:
        assert gpu["nodeTaints"] == ["nvidia.com/gpu=present:NoSchedule",
                                     "kubernetes.azure.com/scalesetpriority=spot:NoSchedule"]
        assert gpu["scaleSetPriority"] == "Spot" and gpu["scaleSetEvictionPolicy"] == "Delete"
    else:
        assert gpu["nodeTaints"] == ["nvidia.com/gpu=present:NoSchedule"] and "scaleSetPriority" not in gpu
    assert gpu["vmSize"] == plan["instance_type"] and gpu["mode"] == "User"
    assert gpu["enableAutoScaling"] is True and (gpu["minCount"], gpu["maxCount"]) == (
        plan["min_nodes"], plan["max_nodes"])
    assert gpu["gpuProfile"] == {"driver": "Install"}
    cluster = _one(result, pool_types.AKS_MANAGED_CLUSTER, "demo")
    assert cluster["networkProfile"]["networkPolicy"] == "cilium"
    assert cluster["agentPoolProfiles"][0]["mode"] == "System"


def test_azure_on_demand_has_no_spot_taint() -> None:
    _, result = rendered("azure", "large", "latency")
    gpu = _one(result, pool_types.AKS_AGENT_POOL, "demo-gpu")
    assert gpu["nodeTaints"] == ["nvidia.com/gpu=present:NoSchedule"]
    assert "scaleSetPriority" not in gpu


@pytest.mark.parametrize("cloud", ["aws", "gcp", "azure"])
def test_no_gpu_pool_without_self_hosting(cloud: str) -> None:
    require_sdk(cloud)
    stack = blueprint_stack(cloud, "none")
    result = render_platform(config_from_stack(stack, cluster_name="demo"), project="demo-platform")
    assert [p.is_gpu for p in result.pool_views()] == [False]
    assert result.outputs["gpu_taint_key"] == "" and result.exported == sorted(OUTPUT_NAMES)


@pytest.mark.parametrize("cloud", ["aws", "gcp", "azure"])
def test_only_the_chosen_clouds_sdk_is_imported(cloud: str, tmp_path: Path) -> None:
    require_sdk(cloud)
    stack = blueprint_stack(cloud, "small")
    config = tmp_path / "config.json"
    config.write_text(json.dumps(config_from_stack(stack, cluster_name="demo")), encoding="utf-8")
    script = (
        "import json, sys; sys.path.insert(0, sys.argv[1])\n"
        "from aistarter_infra.platform.render import render_platform\n"
        "render_platform(json.load(open(sys.argv[2])), project='demo-platform')\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0].startswith('pulumi_'))))\n"
    )
    out = subprocess.run([sys.executable, "-c", script, str(INFRA), str(config)], capture_output=True, text=True,
                         check=True, timeout=300)
    loaded = {m.split(".")[0] for m in json.loads(out.stdout.strip().splitlines()[-1])}
    assert set(SDKS[cloud]) <= loaded
    assert not (loaded & (ALL_SDKS - set(SDKS[cloud]))), loaded


def test_importing_the_platform_package_loads_no_sdk() -> None:
    script = ("import sys; sys.path.insert(0, sys.argv[1]); import aistarter_infra.platform, "
              "aistarter_infra.policy; print(sorted(m for m in sys.modules if m.startswith('pulumi')))")
    out = subprocess.run([sys.executable, "-c", script, str(INFRA)], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize(("change", "message"), [
    ({"cloud": "existing"}, "cloud must be one of aws, gcp, azure"),
    ({"clusterName": "Bad_Name"}, "clusterName 'Bad_Name'"),
    ({"gpuPool": {"maxNodes": 0}}, "gpuPool.maxNodes must be at least 1"),
    ({"gpuPool": {"minNodes": 4, "maxNodes": 2}}, "gpuPool.maxNodes (2) is below minNodes (4)"),
    ({"gpuPool": {"spot": "sometimes"}}, "gpuPool.spot must be true or false"),
    ({"gpuPool": {"taint": {"key": "k", "value": "v", "effect": "Never"}}}, "gpuPool.taint.effect must be one of"),
    ({"systemPool": {"minNodes": "two"}}, "systemPool.minNodes must be a whole number"),
])
def test_bad_config_names_the_key_and_fix(change: dict[str, Any], message: str) -> None:
    values = config_from_stack(blueprint_stack("aws", "small"), cluster_name="demo")
    for key, value in change.items():
        values[key] = {**values[key], **value} if isinstance(value, dict) and key in values else value
    with pytest.raises(PlatformConfigError) as err:
        parse_platform_config(values)
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_missing_gpu_field_is_named() -> None:
    values = config_from_stack(blueprint_stack("gcp", "small"), cluster_name="demo")
    del values["gpuPool"]["instanceType"]
    with pytest.raises(PlatformConfigError, match=r"gpuPool\.instanceType is missing"):
        parse_platform_config(values)


def test_existing_cloud_has_no_platform_config() -> None:
    with pytest.raises(PlatformConfigError, match="has no platform stack"):
        config_from_stack(blueprint_stack("existing", "small"), cluster_name="demo")


def test_gcp_initial_nodes_are_per_zone() -> None:
    from aistarter_infra.platform.gcp import initial_per_zone

    assert [initial_per_zone(0, 3), initial_per_zone(2, 0), initial_per_zone(2, 2), initial_per_zone(3, 2)] == [
        0, 1, 1, 2]
    stack, result = rendered("gcp", "small", "latency")
    floor = stack["gpu"]["min_nodes"]
    gpu = _one(result, pool_types.GKE_NODE_POOL, "demo-gpu")
    zones = len(gpu.get("nodeLocations") or [])
    # A regional pool multiplies the initial count by its zones: the floor spread over them, not the floor in each.
    assert gpu["autoscaling"]["totalMinNodeCount"] == floor
    assert gpu["initialNodeCount"] == initial_per_zone(floor, zones) and gpu["initialNodeCount"] * max(zones, 1) < (
        floor + max(zones, 1))


def test_aws_existing_vpc_is_used_instead_of_a_new_one() -> None:
    require_sdk("aws")
    values = config_from_stack(blueprint_stack("aws", "small"), cluster_name="demo")
    values["vpc"] = {"id": "vpc-0abc", "publicSubnetIds": ["subnet-p1", "subnet-p2"],
                     "privateSubnetIds": ["subnet-a", "subnet-b"]}
    result = render_platform(values, project="demo-platform")
    created = {r["type"] for r in result.resources if r["type"].startswith("aws:ec2/")}
    assert created == {"aws:ec2/securityGroup:SecurityGroup"}, "only the database's security group, no network"
    cluster = _one(result, "eks:index:Cluster", "demo")
    assert cluster["vpcId"] == "vpc-0abc" and cluster["privateSubnetIds"] == ["subnet-a", "subnet-b"]
    assert _one(result, pool_types.EKS_MANAGED_NODE_GROUP, "demo-gpu")["subnetIds"] == ["subnet-a", "subnet-b"]


def test_aws_new_vpc_keeps_nodes_private() -> None:
    _, result = rendered("aws", "small")
    subnets = {r["name"]: r["inputs"] for r in result.of_type("aws:ec2/subnet:Subnet")}
    assert sorted(subnets) == ["demo-private-0", "demo-private-1", "demo-public-0", "demo-public-1"]
    assert {s["cidrBlock"] for n, s in subnets.items() if "private" in n} == {"10.0.128.0/18", "10.0.192.0/18"}
    assert all(not s.get("mapPublicIpOnLaunch") for s in subnets.values())
    assert _one(result, "eks:index:Cluster", "demo")["nodeAssociatePublicIpAddress"] is False


@pytest.mark.parametrize(("vpc", "message"), [
    ({"cidr": "10.0.0.0/24"}, "vpc.cidr 10.0.0.0/24 is too small"),
    ({"cidr": "ten"}, "vpc.cidr 'ten' is not a network"),
    ("vpc-123", "vpc must be a mapping"),
])
def test_bad_vpc_config(vpc: Any, message: str) -> None:
    values = config_from_stack(blueprint_stack("aws", "small"), cluster_name="demo")
    values["vpc"] = vpc
    with pytest.raises(PlatformConfigError, match=message):
        parse_platform_config(values)


def test_aks_pools_leave_autoscaled_counts_to_the_autoscaler() -> None:
    _, result = rendered("azure", "small")
    assert result.ignore_changes["demo-gpu"] == ["count"]
    assert "agentPoolProfiles[0].count" in result.ignore_changes["demo"]


def test_gke_gpu_pool_only_asks_zones_that_have_the_accelerator() -> None:
    from aistarter_infra.platform.pools import gke_zones

    _, result = rendered("gcp", "large")
    gpu = _one(result, pool_types.GKE_NODE_POOL, "demo-gpu")
    assert gpu["nodeLocations"] == list(gke_zones("us-central1", "nvidia-a100-80gb"))
    assert gpu["nodeLocations"] == ["us-central1-a", "us-central1-c"]


def test_eks_small_pool_offers_several_instance_types() -> None:
    _, result = rendered("aws", "small")
    gpu = _one(result, pool_types.EKS_MANAGED_NODE_GROUP, "demo-gpu")
    assert gpu["instanceTypes"][0] == "g6.xlarge" and len(gpu["instanceTypes"]) > 1
    assert all(t.startswith("g6.") for t in gpu["instanceTypes"]), "same L4 GPU on every type"


def test_eks_grants_the_app_team_its_namespace_only() -> None:
    require_sdk("aws")
    values = config_from_stack(blueprint_stack("aws", "none"), cluster_name="demo")
    values["appTeam"] = {"principals": ["arn:aws:iam::123456789012:role/app-team"], "namespace": "demo"}
    result = render_platform(values, project="demo-platform")
    (entry,) = result.of_type("aws:eks/accessEntry:AccessEntry")
    assert entry["inputs"]["principalArn"] == "arn:aws:iam::123456789012:role/app-team"
    (assoc,) = result.of_type("aws:eks/accessPolicyAssociation:AccessPolicyAssociation")
    assert assoc["inputs"]["accessScope"] == {"type": "namespace", "namespaces": ["demo"]}
    assert assoc["inputs"]["policyArn"].endswith("cluster-access-policy/AmazonEKSAdminPolicy")
    values["appTeam"] = {"principals": ["app-team"]}
    with pytest.raises(PlatformConfigError, match="appTeam.principals must be a list of IAM"):
        parse_platform_config(values)


@pytest.mark.parametrize("cloud", ["aws", "gcp", "azure"])
def test_warm_floor_runs_on_demand_and_bursts_on_spot(cloud: str) -> None:
    """Cost priority with a budget too short for a cold start keeps warm nodes: they must not be spot."""
    require_sdk(cloud)
    stack = blueprint_stack(cloud, "small", "latency")
    floor = stack["gpu"]["min_nodes"]
    assert floor > 0
    # the engine keeps latency plans on-demand; a hand-edited spot plan with room above the floor must split
    peak = floor + 2
    stack["gpu"] = {**stack["gpu"], "spot": True, "max_nodes": peak}
    result = render_platform(config_from_stack(stack, cluster_name="demo"), project="demo-platform")
    gpu = sorted((p for p in result.pool_views() if p.is_gpu), key=lambda p: p.spot)
    assert [(p.spot, p.min_nodes, p.max_nodes) for p in gpu] == [(False, floor, floor), (True, 0, peak - floor)]
    assert gpu[0].labels == gpu[1].labels and gpu[0].taints[0] == gpu[1].taints[0]
    # with no room above the floor there is nothing to burst: one on-demand pool, no extra spot node
    stack["gpu"] = {**stack["gpu"], "max_nodes": floor}
    result = render_platform(config_from_stack(stack, cluster_name="demo"), project="demo-platform")
    assert [(p.spot, p.min_nodes, p.max_nodes) for p in result.pool_views() if p.is_gpu] == [(False, floor, floor)]

"""The policy pack's validate functions on constructed resource inputs, then through CrossGuard's own
ResourceValidationArgs, then on whole platform renders."""

from __future__ import annotations

import copy
import importlib.util
import os
import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aistarter_infra.platform import pools as pool_types  # noqa: E402
from aistarter_infra.policy import pack, rules  # noqa: E402
from aistarter_infra.policy.rules import PolicySettings  # noqa: E402

S = PolicySettings(gpu_max_nodes_cap=3, scale_to_zero=True)
GPU_TAINT = {"key": "nvidia.com/gpu", "value": "present", "effect": "NO_SCHEDULE"}
LABEL = {"aistarter.dev/pool": "gpu"}


def eks_pool(**over: Any) -> dict[str, Any]:
    props = {"nodeGroupName": "demo-gpu", "amiType": "AL2023_x86_64_NVIDIA", "instanceTypes": ["g6.xlarge"],
             "labels": dict(LABEL), "taints": [dict(GPU_TAINT)], "capacityType": "SPOT",
             "scalingConfig": {"minSize": 0, "maxSize": 3, "desiredSize": 0},
             "tags": {pool_types.GPUS_PER_NODE_TAG: "1"}}
    props.update(over)
    return props


def gke_pool(**node: Any) -> dict[str, Any]:
    config = {"machineType": "g2-standard-8", "labels": dict(LABEL), "taints": [dict(GPU_TAINT)],
              "guestAccelerators": [{"type": "nvidia-l4", "count": 1}]}
    config.update(node)
    return {"name": "gpu", "nodeConfig": config, "autoscaling": {"totalMinNodeCount": 0, "totalMaxNodeCount": 3}}


def aks_pool(**over: Any) -> dict[str, Any]:
    props = {"agentPoolName": "gpu", "vmSize": "Standard_NC4as_T4_v3", "nodeLabels": dict(LABEL),
             "nodeTaints": ["nvidia.com/gpu=present:NoSchedule"], "enableAutoScaling": True, "minCount": 0,
             "maxCount": 3, "mode": "User"}
    props.update(over)
    return props


POOLS = [(pool_types.EKS_MANAGED_NODE_GROUP, eks_pool), (pool_types.AWS_NODE_GROUP, eks_pool),
         (pool_types.AKS_AGENT_POOL, aks_pool)]


def gpu_deployment(**spec_over: Any) -> dict[str, Any]:
    spec = {
        "nodeSelector": dict(LABEL),
        "tolerations": [{"key": "nvidia.com/gpu", "operator": "Equal", "value": "present", "effect": "NoSchedule"}],
        "containers": [{"name": "vllm", "image": "vllm/vllm-openai:v0.11.0",
                        "resources": {"requests": {"nvidia.com/gpu": "1"}, "limits": {"nvidia.com/gpu": "1"}}}],
    }
    spec.update(spec_over)
    return {"metadata": {"name": "model-server", "labels": {"app.kubernetes.io/component": "model-server"}},
            "spec": {"template": {"metadata": {"labels": {"app.kubernetes.io/component": "model-server"}},
                                  "spec": spec}}}


def api_deployment(container_ctx: dict[str, Any] | None = None, pod_ctx: dict[str, Any] | None = None,
                   image: str = "ghcr.io/acme/api:1.2.3") -> dict[str, Any]:
    ctx = {"runAsNonRoot": True, "runAsUser": 10001, "allowPrivilegeEscalation": False,
           "capabilities": {"drop": ["ALL"]}} if container_ctx is None else container_ctx
    return {"metadata": {"name": "api", "labels": {"app.kubernetes.io/component": "api"}},
            "spec": {"template": {"metadata": {"labels": {"app.kubernetes.io/component": "api"}},
                                  "spec": {"securityContext": pod_ctx or {},
                                           "containers": [{"name": "api", "image": image, "securityContext": ctx}]}}}}


DEPLOYMENT = "kubernetes:apps/v1:Deployment"


# --- gpu-pool-taint-and-label ----------------------------------------------------------------------------

@pytest.mark.parametrize(("rtype", "make"), POOLS)
def test_compliant_gpu_pools_pass(rtype: str, make: Any) -> None:
    assert rules.check_gpu_pool_taint_and_label(rtype, "p", make(), S) == []
    assert rules.check_gpu_pool_budget(rtype, "p", make(), S) == []
    assert rules.check_gpu_scale_to_zero(rtype, "p", make(), S) == []


def test_gke_pool_compliant_and_untainted() -> None:
    assert rules.check_gpu_pool_taint_and_label(pool_types.GKE_NODE_POOL, "p", gke_pool(), S) == []
    problems = rules.check_gpu_pool_taint_and_label(pool_types.GKE_NODE_POOL, "p", gke_pool(taints=[]), S)
    assert len(problems) == 1 and "lacks the taint nvidia.com/gpu=present:NoSchedule" in problems[0]


@pytest.mark.parametrize(("rtype", "props"), [
    (pool_types.EKS_MANAGED_NODE_GROUP, eks_pool(taints=[])),
    (pool_types.EKS_MANAGED_NODE_GROUP, eks_pool(taints=[{**GPU_TAINT, "effect": "PREFER_NO_SCHEDULE"}])),
    (pool_types.AKS_AGENT_POOL, aks_pool(nodeTaints=[])),
    (pool_types.AKS_AGENT_POOL, aks_pool(nodeTaints=["nvidia.com/gpu=yes:NoSchedule"])),
])
def test_gpu_pool_without_the_taint_fails(rtype: str, props: dict[str, Any]) -> None:
    problems = rules.check_gpu_pool_taint_and_label(rtype, "p", props, S)
    assert problems and all("lacks the taint" in p for p in problems)


@pytest.mark.parametrize(("rtype", "props"), [
    (pool_types.EKS_MANAGED_NODE_GROUP, eks_pool(labels={})),
    (pool_types.GKE_NODE_POOL, gke_pool(labels={"aistarter.dev/pool": "gpus"})),
    (pool_types.AKS_AGENT_POOL, aks_pool(nodeLabels=None)),
])
def test_gpu_pool_without_the_label_fails(rtype: str, props: dict[str, Any]) -> None:
    problems = rules.check_gpu_pool_taint_and_label(rtype, "p", props, S)
    assert len(problems) == 1 and "lacks the label aistarter.dev/pool=gpu" in problems[0]


def test_cpu_pools_need_no_gpu_taint() -> None:
    cpu = {"instanceTypes": ["m6i.large"], "amiType": "AL2023_x86_64_STANDARD", "labels": {}, "taints": [],
           "scalingConfig": {"minSize": 2, "maxSize": 50}}
    assert rules.check_gpu_pool_taint_and_label(pool_types.EKS_MANAGED_NODE_GROUP, "sys", cpu, S) == []
    assert rules.check_gpu_pool_budget(pool_types.EKS_MANAGED_NODE_GROUP, "sys", cpu, S) == []


def test_gpu_pool_found_inside_an_aks_managed_cluster() -> None:
    cluster = {"agentPoolProfiles": [{"name": "system", "vmSize": "Standard_D4s_v5", "mode": "System"},
                                     aks_pool(name="gpu", nodeTaints=[])]}
    problems = rules.check_gpu_pool_taint_and_label(pool_types.AKS_MANAGED_CLUSTER, "c", cluster, S)
    assert len(problems) == 1 and "'gpu'" in problems[0]


def test_gpu_detected_by_instance_family_without_nvidia_ami() -> None:
    props = eks_pool(amiType="CUSTOM", tags={}, taints=[], instanceTypes=["p5.48xlarge"])
    assert rules.check_gpu_pool_taint_and_label(pool_types.AWS_NODE_GROUP, "p", props, S)


# --- gpu-pool-budget-cap ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("rtype", "props"), [
    (pool_types.EKS_MANAGED_NODE_GROUP, eks_pool(scalingConfig={"minSize": 0, "maxSize": 4})),
    (pool_types.GKE_NODE_POOL, {**gke_pool(), "autoscaling": {"totalMinNodeCount": 0, "totalMaxNodeCount": 9}}),
    (pool_types.AKS_AGENT_POOL, aks_pool(maxCount=10)),
])
def test_gpu_pool_over_budget_fails(rtype: str, props: dict[str, Any]) -> None:
    problems = rules.check_gpu_pool_budget(rtype, "p", props, S)
    assert len(problems) == 1 and "over the budget cap of 3" in problems[0]


def test_settings_parse_string_values_from_config() -> None:
    merged = S.merged({"scaleToZero": "false", "gpuMaxNodesCap": "7", "gpu_label_value": "gpu-b"})
    assert (merged.scale_to_zero, merged.gpu_max_nodes_cap, merged.gpu_label_value) == (False, 7, "gpu-b")
    assert S.merged({"scaleToZero": "true", "unknownKey": 1}).scale_to_zero is True


def test_budget_cap_is_configurable() -> None:
    props = aks_pool(maxCount=10)
    assert rules.check_gpu_pool_budget(pool_types.AKS_AGENT_POOL, "p", props, S.merged({"gpuMaxNodesCap": 10})) == []


def test_gpu_pool_without_maximum_fails_budget() -> None:
    props = {**gke_pool(), "autoscaling": None}
    problems = rules.check_gpu_pool_budget(pool_types.GKE_NODE_POOL, "p", props, S)
    assert problems and "no node maximum" in problems[0]


# --- gpu-scale-to-zero (advisory) -------------------------------------------------------------------------

def test_warm_gpu_nodes_flagged_only_when_blueprint_chose_zero() -> None:
    warm = eks_pool(scalingConfig={"minSize": 1, "maxSize": 3})
    problems = rules.check_gpu_scale_to_zero(pool_types.EKS_MANAGED_NODE_GROUP, "p", warm, S)
    assert len(problems) == 1 and "keeps 1 warm node" in problems[0]
    no_zero = S.merged({"scaleToZero": False})
    assert rules.check_gpu_scale_to_zero(pool_types.EKS_MANAGED_NODE_GROUP, "p", warm, no_zero) == []


def test_model_server_scaled_object_must_idle_at_zero() -> None:
    meta = {"labels": {"app.kubernetes.io/component": "model-server"}}
    good = {"metadata": meta, "spec": {"idleReplicaCount": 0, "minReplicaCount": 1}}
    bad = {"metadata": meta, "spec": {"minReplicaCount": 1}}
    other = {"metadata": {"labels": {"app.kubernetes.io/component": "worker"}}, "spec": {"minReplicaCount": 1}}
    assert rules.check_gpu_scale_to_zero(rules.SCALED_OBJECT, "ms", good, S) == []
    assert rules.check_gpu_scale_to_zero(rules.SCALED_OBJECT, "w", other, S) == []
    assert "idleReplicaCount: 0" in rules.check_gpu_scale_to_zero(rules.SCALED_OBJECT, "ms", bad, S)[0]


# --- gpu-pods-tolerate-and-select -------------------------------------------------------------------------

def test_gpu_pod_compliant() -> None:
    assert rules.check_gpu_pod_scheduling(DEPLOYMENT, "ms", gpu_deployment(), S) == []


def test_gpu_pod_exists_toleration_and_affinity_pass() -> None:
    affinity = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {"matchExpressions": [{"key": "aistarter.dev/pool", "operator": "In", "values": ["gpu"]}]}]}}}
    props = gpu_deployment(nodeSelector=None, affinity=affinity,
                           tolerations=[{"key": "nvidia.com/gpu", "operator": "Exists"}])
    assert rules.check_gpu_pod_scheduling(DEPLOYMENT, "ms", props, S) == []


@pytest.mark.parametrize(("over", "expect"), [
    ({"tolerations": []}, "does not tolerate nvidia.com/gpu=present:NoSchedule"),
    ({"tolerations": [{"key": "nvidia.com/gpu", "operator": "Equal", "value": "true"}]}, "does not tolerate"),
    ({"tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoExecute"}]}, "does not tolerate"),
    ({"nodeSelector": {}}, "does not select the GPU pool"),
    ({"nodeSelector": {"aistarter.dev/pool": "system"}}, "does not select the GPU pool"),
])
def test_gpu_pod_misconfigured_fails(over: dict[str, Any], expect: str) -> None:
    problems = rules.check_gpu_pod_scheduling(DEPLOYMENT, "ms", gpu_deployment(**over), S)
    assert len(problems) == 1 and expect in problems[0]


def test_gpu_request_must_equal_limit() -> None:
    props = gpu_deployment()
    props["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"]["nvidia.com/gpu"] = "2"
    problems = rules.check_gpu_pod_scheduling(DEPLOYMENT, "ms", props, S)
    assert len(problems) == 1 and "differs from limit" in problems[0]


def test_cpu_pod_is_not_judged_and_cronjob_path_is_read() -> None:
    plain = gpu_deployment(tolerations=[], nodeSelector={})
    plain["spec"]["template"]["spec"]["containers"][0]["resources"] = {"limits": {"cpu": "1"}}
    assert rules.check_gpu_pod_scheduling(DEPLOYMENT, "web", plain, S) == []
    cron = {"spec": {"jobTemplate": {"spec": gpu_deployment(tolerations=[])["spec"]}}}
    assert rules.check_gpu_pod_scheduling("kubernetes:batch/v1:CronJob", "batch", cron, S)


# --- api-not-root ------------------------------------------------------------------------------------------

def test_api_non_root_passes() -> None:
    assert rules.check_api_not_root(DEPLOYMENT, "api", api_deployment(), S) == []
    pod_level = api_deployment(container_ctx={"allowPrivilegeEscalation": False},
                               pod_ctx={"runAsNonRoot": True, "runAsUser": 1000})
    assert rules.check_api_not_root(DEPLOYMENT, "api", pod_level, S) == []


@pytest.mark.parametrize(("ctx", "pod_ctx", "expect"), [
    ({"runAsUser": 0, "allowPrivilegeEscalation": False}, None, "runs as UID 0"),
    ({"allowPrivilegeEscalation": False}, None, "may run as root"),
    ({"runAsNonRoot": False, "allowPrivilegeEscalation": False}, {"runAsNonRoot": True}, "may run as root"),
    ({"runAsNonRoot": True, "runAsUser": 1, "privileged": True, "allowPrivilegeEscalation": False}, None,
     "is privileged"),
    ({"runAsNonRoot": True, "runAsUser": 1}, None, "allows privilege escalation"),
])
def test_api_root_fails(ctx: dict[str, Any], pod_ctx: dict[str, Any] | None, expect: str) -> None:
    problems = rules.check_api_not_root(DEPLOYMENT, "api", api_deployment(ctx, pod_ctx), S)
    assert len(problems) == 1 and expect in problems[0]


def test_non_api_workloads_are_not_judged_as_api() -> None:
    root_worker = api_deployment({"runAsUser": 0})
    root_worker["spec"]["template"]["metadata"]["labels"] = {"app.kubernetes.io/component": "worker"}
    root_worker["metadata"]["labels"] = {"app.kubernetes.io/component": "worker"}
    assert rules.check_api_not_root(DEPLOYMENT, "worker", root_worker, S) == []


# --- no-latest-image-tags ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("image", "ok"), [
    ("vllm/vllm-openai:v0.11.0", True),
    ("ghcr.io/acme/api@sha256:" + "a" * 64, True),
    ("registry.local:5000/acme/api:1.0", True),
    ("vllm/vllm-openai:latest", False),
    ("vllm/vllm-openai", False),
    ("registry.local:5000/acme/api", False),
    ("redis:LATEST", False),
])
def test_image_pinning(image: str, ok: bool) -> None:
    problems = rules.check_no_latest_images(DEPLOYMENT, "api", api_deployment(image=image), S)
    assert (problems == []) is ok, problems


def test_init_containers_are_checked_too() -> None:
    props = api_deployment()
    props["spec"]["template"]["spec"]["initContainers"] = [{"name": "migrate", "image": "busybox"}]
    assert "api/migrate" in rules.check_no_latest_images(DEPLOYMENT, "api", props, S)[0]


# --- settings and the CrossGuard wrappers -----------------------------------------------------------------

def test_settings_from_stack_and_pack_config_round_trip() -> None:
    stack = {"gpu": {"pool_label_key": "team/pool", "pool_label_value": "gpu-a", "max_nodes": 7,
                     "taint": {"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}},
             "model_server": {"scale_to_zero": True}}
    settings = pack.settings_from_stack(stack)
    assert (settings.gpu_label_key, settings.gpu_max_nodes_cap, settings.scale_to_zero) == ("team/pool", 7, True)
    config = pack.pack_config(settings)
    assert config["gpu-pool-budget-cap"] == {"enforcementLevel": "mandatory", "gpuMaxNodesCap": 7}
    assert config["gpu-scale-to-zero"]["enforcementLevel"] == "advisory"
    assert pack.settings_from_pack_config(config) == settings
    assert pack.settings_from_stack({"gpu": None}) == PolicySettings(gpu_max_nodes_cap=0)


def _require_pulumi_policy() -> None:
    if importlib.util.find_spec("pulumi_policy") is None:
        message = "pulumi-policy not installed (pip install -r the generated infra/policy/requirements.txt)"
        if os.environ.get("AISTARTER_REQUIRE_SERVICES") == "1":
            pytest.fail(message)
        pytest.skip(message)


def test_policies_build_with_levels_and_config_schema() -> None:
    _require_pulumi_policy()
    from pulumi_policy import EnforcementLevel

    policies = pack.build_policies(S)
    by_name = {p.name: p for p in policies}
    assert set(by_name) == set(rules.RULES)
    assert by_name["gpu-scale-to-zero"].enforcement_level == EnforcementLevel.ADVISORY
    mandatory = [p for n, p in by_name.items() if n != "gpu-scale-to-zero"]
    assert all(p.enforcement_level == EnforcementLevel.MANDATORY for p in mandatory)
    assert by_name["gpu-pool-budget-cap"].config_schema.properties == {"gpuMaxNodesCap": {"type": "integer",
                                                                                          "default": 3}}


def test_validator_reports_through_crossguard_args() -> None:
    _require_pulumi_policy()
    from pulumi_policy import PolicyResourceOptions, ResourceValidationArgs

    def run(rule: str, rtype: str, props: dict[str, Any], config: dict[str, Any] | None = None) -> list[str]:
        reported: list[str] = []
        opts = PolicyResourceOptions(protect=False, ignore_changes=[], delete_before_replace=None, aliases=[],
                                     additional_secret_outputs=[], custom_timeouts=None, parent=None)
        args = ResourceValidationArgs(rtype, props, f"urn:pulumi:dev::demo::{rtype}::x", "x", opts, None, config)
        pack.make_validator(rule, S)(args, lambda message, urn=None: reported.append(message))
        return reported

    over = eks_pool(scalingConfig={"minSize": 0, "maxSize": 5})
    assert len(run("gpu-pool-budget-cap", pool_types.EKS_MANAGED_NODE_GROUP, over)) == 1
    assert run("gpu-pool-budget-cap", pool_types.EKS_MANAGED_NODE_GROUP, over, {"gpuMaxNodesCap": 5}) == []
    assert run("no-latest-image-tags", DEPLOYMENT, api_deployment(image="nginx")) != []


def test_rules_do_not_mutate_inputs() -> None:
    props = gpu_deployment()
    before = copy.deepcopy(props)
    rules.evaluate([{"type": DEPLOYMENT, "name": "ms", "inputs": props}], S)
    assert props == before

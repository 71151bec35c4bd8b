"""Platform and app stacks together: the app consumes the platform's StackReference outputs, the GPU
consistency check runs on the app's pods against the platform's real pools, and the policy pack finds no
mandatory violation across both stacks."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from aistarter_infra.platform.render import PlatformRender, render_platform  # noqa: E402
from aistarter_infra.platform.spec import config_from_stack  # noqa: E402
from aistarter_infra.policy.pack import settings_from_stack  # noqa: E402
from aistarter_infra.policy.rules import ADVISORY, evaluate, resources_from_manifests  # noqa: E402
from test_platform_render import blueprint_stack, rendered, require_sdk  # noqa: E402

CASES = [(c, s, p) for c in ("aws", "gcp", "azure") for s in ("small", "large") for p in ("cost", "latency")]


def app_render(stack: dict[str, Any], platform: PlatformRender, tmp_path: Path) -> Any:
    from aistarter_infra.render import render_program
    from stacks import write_program

    # database_url: a platform stack older than the shared-database output still renders the app here; the
    # platform's own tests check that it exports one.
    outputs = {"database_url": "postgresql://app:x@db.internal:5432/app", **platform.outputs}
    return render_program(write_program(tmp_path, stack), platform_outputs=outputs)


def check_gpu_consistency() -> Any:
    from aistarter_infra.validate import check_gpu_consistency as check

    return check


@pytest.mark.parametrize(("cloud", "size", "cost"), CASES)
def test_app_reads_platform_outputs(cloud: str, size: str, cost: str, tmp_path: Path) -> None:
    stack, platform = rendered(cloud, size, cost)
    app = app_render(stack, platform, tmp_path)
    refs = [r for r in app.other if r["type"] == "pulumi:pulumi:StackReference"]
    assert len(refs) == 1, "the app stack must read the platform through one StackReference"
    (workload,) = app.find("Deployment", "model-server") + app.find("StatefulSet", "model-server")
    server = workload["spec"]["template"]["spec"]
    out = platform.outputs
    assert server["nodeSelector"] == {out["gpu_pool_label_key"]: out["gpu_pool_label_value"]}
    assert {"key": out["gpu_taint_key"], "operator": "Equal", "value": out["gpu_taint_value"],
            "effect": out["gpu_taint_effect"]} in server["tolerations"]


@pytest.mark.parametrize(("cloud", "size", "cost"), CASES)
def test_policy_pack_passes_on_platform_and_app(cloud: str, size: str, cost: str, tmp_path: Path) -> None:
    stack, platform = rendered(cloud, size, cost)
    app = app_render(stack, platform, tmp_path)
    found = evaluate(platform.resources + resources_from_manifests(app.manifests), settings_from_stack(stack))
    mandatory = {rule: problems for rule, problems in found.items() if problems and rule not in ADVISORY}
    assert mandatory == {}
    assert found["gpu-scale-to-zero"] == []


def test_policy_pack_catches_a_pool_over_budget() -> None:
    stack, platform = rendered("gcp", "small")
    tight = settings_from_stack(stack, budget_cap=stack["gpu"]["max_nodes"] - 1)
    problems = evaluate(platform.resources, tight)["gpu-pool-budget-cap"]
    assert len(problems) == 1 and "over the budget cap" in problems[0]


@pytest.mark.parametrize(("cloud", "size", "cost"), CASES)
def test_gpu_consistency_across_platform_and_app(cloud: str, size: str, cost: str, tmp_path: Path) -> None:
    check = check_gpu_consistency()
    stack, platform = rendered(cloud, size, cost)
    app = app_render(stack, platform, tmp_path)
    assert check(app.manifests, platform.pools()) == []
    if cloud == "azure" and stack["gpu"]["spot"]:  # the blueprint, not the cost priority, decides spot
        # AKS taints every spot node kubernetes.azure.com/scalesetpriority=spot:NoSchedule by itself; the pool
        # dict carries that taint, so the check above proves the model server tolerates it.
        gpu_pool = next(p for p in platform.pools() if p["gpus_per_node"])
        assert {"key": "kubernetes.azure.com/scalesetpriority", "value": "spot", "effect": "NoSchedule"} in \
            gpu_pool["taints"]


def test_gpu_consistency_catches_a_platform_app_mismatch(tmp_path: Path) -> None:
    check = check_gpu_consistency()
    stack, platform = rendered("aws", "small")
    app = app_render(stack, platform, tmp_path)
    pools = platform.pools()
    for pool in pools:
        pool["labels"] = {k: f"{v}-renamed" for k, v in pool["labels"].items()}
    assert check(app.manifests, pools), "a renamed pool label must leave the GPU pods unschedulable"


def test_self_hosting_none_has_no_gpu_pods(tmp_path: Path) -> None:
    stack = blueprint_stack("aws", "none")
    _, platform = rendered("aws", "small")
    app = app_render(stack, platform, tmp_path)
    assert not app.find("Deployment", "model-server") and not app.find("StatefulSet", "model-server")


def test_scale_to_zero_rule_sees_the_real_model_server_scaled_object(tmp_path: Path) -> None:
    # Engine v2 scales to zero only when the idle gap between requests outlasts cooldown + scale-down + cold start:
    # a request every ~83 minutes on average.
    stack = blueprint_stack("gcp", "small", "cost", avg_rps=0.0002, peak_rps=1)
    assert stack["model_server"]["scale_to_zero"] is True
    require_sdk("gcp")
    platform = render_platform(config_from_stack(stack, cluster_name="demo"), project="demo-platform")
    app = app_render(stack, platform, tmp_path)
    scaled = [m for m in app.manifests if m["kind"] == "ScaledObject"
              and m["metadata"]["labels"].get("app.kubernetes.io/component") == "model-server"]
    assert len(scaled) == 1
    warm = {**scaled[0], "spec": {k: v for k, v in scaled[0]["spec"].items() if k != "idleReplicaCount"}}
    problems = evaluate(resources_from_manifests([warm]), settings_from_stack(stack))["gpu-scale-to-zero"]
    assert len(problems) == 1 and "idleReplicaCount: 0" in problems[0]

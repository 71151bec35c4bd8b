"""The app stack (infra/app) rendered under Pulumi mocks: the blueprint's decisions hold on the resources it
would create, and those resources pass schema validation, checkov and the GPU scheduling check.

The expected values are the blueprint aistarter recorded when it generated this project. If you change a
decision in Pulumi.dev.yaml on purpose, change it here too (or re-run `aistarter update` with new answers).
"""
{%- set s = cookiecutter._blueprint.stack %}

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from aistarter_infra.config import config_from_mapping
from aistarter_infra.render import (
    SECRET_PLACEHOLDER,
    RenderResult,
    default_platform_outputs,
    read_program,
    render_program,
)
from aistarter_infra.validate import check_gpu_consistency, pools_from_app_config, run_checkov, validate_schemas

INFRA = Path(__file__).resolve().parents[1]

# The blueprint's stack decision, as generated.
STACK: dict[str, Any] = {
    "cloud": "{{ s.cloud }}",
    "vector_store": "{{ s.vector_store }}",
    "task_queue": "{{ s.task_queue }}",
    "observability": "{{ s.observability }}",
    "api": {
        "min_replicas": {{ s.api.min_replicas }},
        "max_replicas": {{ s.api.max_replicas }},
        "target_cpu_utilization": {{ s.api.target_cpu_utilization }},
    },
{%- if s.model_server %}
    "model_server": {
        "model": "{{ s.model_server.model }}",
        "min_replicas": {{ s.model_server.min_replicas }},
        "max_replicas": {{ s.model_server.max_replicas }},
        "tensor_parallel": {{ s.model_server.tensor_parallel }},
        "scale_to_zero": {{ 'True' if s.model_server.scale_to_zero else 'False' }},
        "target_pending_per_replica": {{ s.model_server.target_pending_per_replica }},
    },
    "gpu": {
        "gpus_per_node": {{ s.gpu.gpus_per_node }},
        "pool_label_key": "{{ s.gpu.pool_label_key }}",
        "pool_label_value": "{{ s.gpu.pool_label_value }}",
        "taint": {
            "key": "{{ s.gpu.taint.key }}",
            "value": "{{ s.gpu.taint.value }}",
            "effect": "{{ s.gpu.taint.effect }}",
        },
    },
{%- else %}
    "model_server": None,
    "gpu": None,
{%- endif %}
}
APP = INFRA / "app"


def platform_outputs() -> dict[str, str] | None:
    """What the platform stack exports (the StackReference the app reads); None for cloud=existing."""
    if STACK["cloud"] == "existing":
        return None
    outputs = default_platform_outputs(STACK["cloud"])
    if STACK["gpu"]:
        gpu = STACK["gpu"]
        outputs.update(gpu_pool_label_key=gpu["pool_label_key"], gpu_pool_label_value=gpu["pool_label_value"],
                       gpu_taint_key=gpu["taint"]["key"], gpu_taint_value=gpu["taint"]["value"],
                       gpu_taint_effect=gpu["taint"]["effect"])
    return outputs


@functools.cache
def app() -> RenderResult:
    return render_program(APP, "dev", platform_outputs=platform_outputs())


def gpu_pools() -> list[dict[str, Any]]:
    if not STACK["gpu"]:
        return []
    if STACK["cloud"] == "existing":
        project, raw = read_program(APP, "dev")
        prefix = project + ":"
        values = {k[len(prefix):]: v for k, v in raw.items() if k.startswith(prefix)}
        values["project"] = "{{ cookiecutter.project_slug | lower | replace('_', '-') }}"
        return pools_from_app_config(config_from_mapping(values))
    gpu = STACK["gpu"]
    return [{"name": "gpu", "labels": {gpu["pool_label_key"]: gpu["pool_label_value"]},
             "taints": [gpu["taint"]], "gpus_per_node": gpu["gpus_per_node"]}]


def pods() -> list[tuple[str, dict[str, Any]]]:
    return [(f"{m['kind']}/{m['metadata']['name']}", m["spec"]["template"]["spec"])
            for m in app().manifests if m["kind"] in ("Deployment", "StatefulSet", "Job")]


def test_resources_follow_the_blueprint() -> None:
    names = {(m["kind"], m["metadata"]["name"]) for m in app().manifests}
    assert {("Deployment", "api"), ("Service", "api"), ("HorizontalPodAutoscaler", "api"),
            ("PodDisruptionBudget", "api"), ("NetworkPolicy", "default-deny-all")} <= names
    model_server = {kind for kind, name in names if name == "model-server" and kind in ("Deployment", "StatefulSet")}
    assert bool(model_server) == bool(STACK["model_server"])
    assert (("StatefulSet", "qdrant") in names) == (STACK["vector_store"] == "qdrant")
    # The shared PostgreSQL (pgvector included) is reached through the `database` Secret; migrations run in a Job.
    assert {("Secret", "database"), ("Job", "migrate")} <= names
    assert (("Deployment", "worker") in names) == (STACK["task_queue"] != "none")
    assert (("Deployment", "otel-collector") in names) == (STACK["observability"] != "none")


def test_api_hpa_bounds() -> None:
    hpa = app().get("HorizontalPodAutoscaler", "api")["spec"]
    assert hpa["minReplicas"] == STACK["api"]["min_replicas"]
    assert hpa["maxReplicas"] == STACK["api"]["max_replicas"]
    assert hpa["metrics"][0]["resource"]["target"]["averageUtilization"] == STACK["api"]["target_cpu_utilization"]


def test_every_pod_runs_locked_down() -> None:
    for where, pod in pods():
        assert pod["securityContext"]["runAsNonRoot"] is True, where
        assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault", where
        for c in pod["containers"]:
            sc = c["securityContext"]
            assert sc["readOnlyRootFilesystem"] and not sc["allowPrivilegeEscalation"] and not sc["privileged"], where
            assert sc["capabilities"]["drop"] == ["ALL"], where
            assert {"cpu", "memory"} <= set(c["resources"]["requests"]) & set(c["resources"]["limits"]), where
            assert not c["image"].endswith(":latest") and (":" in c["image"] or "@sha256:" in c["image"]), where


def test_network_is_default_deny() -> None:
    deny = app().get("NetworkPolicy", "default-deny-all")["spec"]
    assert deny == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    assert app().get("NetworkPolicy", "allow-dns")


def test_secrets_are_not_in_the_rendered_config() -> None:
    for secret in app().find("Secret"):
        assert set(secret.get("stringData", {}).values()) <= {SECRET_PLACEHOLDER}, secret["metadata"]["name"]
{%- if s.model_server %}


def test_model_server_scaling_follows_the_blueprint() -> None:
    ms = STACK["model_server"]
    so = app().get("ScaledObject", "model-server")["spec"]
    assert so["maxReplicaCount"] == ms["max_replicas"]
    if ms["scale_to_zero"]:
        # Idle at zero GPUs; any pending request (activationThreshold 0) wakes it to at least one replica.
        assert so["idleReplicaCount"] == 0 and so["minReplicaCount"] == 1
    else:
        assert "idleReplicaCount" not in so and so["minReplicaCount"] == max(1, ms["min_replicas"])
    (trigger,) = so["triggers"]
    assert trigger["type"] == "prometheus"
    assert "aistarter_model_pending_requests" in trigger["metadata"]["query"]
    assert ms["model"] in trigger["metadata"]["query"]
    assert trigger["metadata"]["threshold"] == str(ms["target_pending_per_replica"])
    assert trigger["metadata"]["activationThreshold"] == "0"


def test_model_server_sits_on_the_gpu_pool() -> None:
    ms, gpu = STACK["model_server"], STACK["gpu"]
    (workload,) = app().find("Deployment", "model-server") + app().find("StatefulSet", "model-server")
    pod = workload["spec"]["template"]["spec"]
    limits = pod["containers"][0]["resources"]["limits"]
    assert limits["nvidia.com/gpu"] == str(ms["tensor_parallel"])
    assert pod["nodeSelector"] == {gpu["pool_label_key"]: gpu["pool_label_value"]}
    assert any(t["key"] == gpu["taint"]["key"] and t["effect"] == gpu["taint"]["effect"] for t in pod["tolerations"])
    assert pod["terminationGracePeriodSeconds"] >= 120

{%- endif %}


def test_gpu_scheduling_is_consistent() -> None:
    # Without self-hosting there is no pool, so any pod asking for a GPU would be reported here.
    assert check_gpu_consistency(app().manifests, gpu_pools()) == []
{%- if s.task_queue != 'none' %}


def test_worker_scales_on_queue_length() -> None:
    (trigger,) = app().get("ScaledObject", "worker")["spec"]["triggers"]
    assert trigger["type"] == "redis" and trigger["metadata"]["listName"]
{%- endif %}


def test_manifests_match_kubernetes_and_crd_schemas() -> None:
    assert validate_schemas(app().manifests) == []


def test_checkov_passes_with_only_documented_skips(checkov_exe: str) -> None:
    report = run_checkov(app().manifests, checkov_exe)
    assert report.failed == [], report.summary()

"""Validation without a cluster: schemas (k8s + shipped CRDs), checkov with documented skips, and the GPU
scheduling consistency check; each one shown to catch the mistake it exists for."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from aistarter_infra.render import RenderResult
from aistarter_infra.stack_config import gpu_pools_from_stack
from aistarter_infra.validate import (
    SCHEMA_DIR,
    check_gpu_consistency,
    load_skips,
    run_checkov,
    validate_manifests,
    validate_schemas,
)
from stacks import HELD_IN, MATRIX


def model_server(r: RenderResult) -> dict[str, Any]:
    (workload,) = r.find("Deployment", "model-server") + r.find("StatefulSet", "model-server")
    return copy.deepcopy(workload)


# ------------------------------------------------------------------ schemas


@pytest.mark.parametrize("name", sorted(MATRIX))
def test_matrix_passes_schema_validation(name: str, rendered: Any) -> None:
    assert validate_schemas(rendered(name).manifests) == []


@pytest.mark.parametrize("version", ["1.31", "1.37"])
def test_held_in_examples_validate_across_kubernetes_versions(version: str, rendered: Any) -> None:
    for name in HELD_IN:
        assert validate_schemas(rendered(name).manifests, version) == [], name


def test_every_custom_kind_has_a_shipped_schema_with_a_source(rendered: Any) -> None:
    sources = (SCHEMA_DIR / "SOURCES.md").read_text()
    crd_group = lambda g: "." in g and (not g.endswith("k8s.io") or g == "gateway.networking.k8s.io")  # noqa: E731
    kinds = {(m["apiVersion"], m["kind"]) for name in MATRIX for m in rendered(name).manifests
             if crd_group(m["apiVersion"].split("/")[0])}
    assert kinds == {("keda.sh/v1alpha1", "ScaledObject"), ("monitoring.coreos.com/v1", "ServiceMonitor"),
                     ("gateway.networking.k8s.io/v1", "Gateway"), ("gateway.networking.k8s.io/v1", "HTTPRoute"),
                     ("networking.gke.io/v1", "GCPBackendPolicy"), ("networking.gke.io/v1", "HealthCheckPolicy"),
                     ("alb.networking.azure.io/v1", "RoutePolicy"), ("alb.networking.azure.io/v1", "HealthCheckPolicy")}
    for api_version, kind in kinds:
        group, version = api_version.split("/")
        path = SCHEMA_DIR / group / f"{kind.lower()}_{version}.json"
        assert json.loads(path.read_text())["properties"]["spec"]["type"] == "object"
        assert f"{group}/{kind.lower()}_{version}.json" in sources


def test_schema_validation_catches_a_misspelled_field(rendered: Any) -> None:
    dep = model_server(rendered("rag-small-existing"))
    dep["spec"]["template"]["spec"]["containers"][0]["resource"] = {}
    problems = validate_schemas([dep])
    assert len(problems) == 1 and "resource" in problems[0] and "Deployment/demo/model-server" in problems[0]


def test_schema_validation_catches_a_bad_scaled_object(rendered: Any) -> None:
    so = copy.deepcopy(rendered("rag-small-existing").get("ScaledObject", "model-server"))
    so["spec"]["minReplicas"] = 0  # KEDA calls it minReplicaCount
    so["spec"]["triggers"] = []
    problems = validate_schemas([so])
    assert any("minReplicas" in p for p in problems) and any("triggers" in p for p in problems)


def test_schema_validation_catches_a_wrong_type(rendered: Any) -> None:
    hpa = copy.deepcopy(rendered("chat").get("HorizontalPodAutoscaler", "api"))
    hpa["spec"]["maxReplicas"] = "three"
    assert validate_schemas([hpa]) != []


def test_unknown_custom_kind_fails_instead_of_passing_silently() -> None:
    manifest = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": {}}
    (problem,) = validate_schemas([manifest])
    assert "no CRD schema for example.com/v1 Widget" in problem


# ------------------------------------------------------------------ GPU consistency


@pytest.mark.parametrize("name", sorted(MATRIX))
def test_matrix_is_gpu_consistent(name: str, rendered: Any) -> None:
    assert check_gpu_consistency(rendered(name).manifests, gpu_pools_from_stack(MATRIX[name])) == []


def pools(name: str) -> list[dict[str, Any]]:
    return gpu_pools_from_stack(MATRIX[name])


def test_gpu_check_catches_a_missing_toleration(rendered: Any) -> None:
    dep = model_server(rendered("rag-small-existing"))
    dep["spec"]["template"]["spec"]["tolerations"] = []
    (problem,) = check_gpu_consistency([dep], pools("rag-small-existing"))
    assert "no toleration for taint nvidia.com/gpu=present:NoSchedule" in problem


def test_gpu_check_catches_a_label_mismatch(rendered: Any) -> None:
    dep = model_server(rendered("rag-small-existing"))
    dep["spec"]["template"]["spec"]["nodeSelector"] = {"aistarter.dev/pool": "gpu-l4"}
    (problem,) = check_gpu_consistency([dep], pools("rag-small-existing"))
    assert "matches no GPU pool" in problem


def test_gpu_check_requires_a_node_selector(rendered: Any) -> None:
    dep = model_server(rendered("rag-small-existing"))
    del dep["spec"]["template"]["spec"]["nodeSelector"]
    (problem,) = check_gpu_consistency([dep], pools("rag-small-existing"))
    assert "without a nodeSelector" in problem


def test_gpu_check_catches_request_limit_mismatch(rendered: Any) -> None:
    dep = model_server(rendered("batch-large"))
    dep["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"]["nvidia.com/gpu"] = "2"
    problems = check_gpu_consistency([dep], pools("batch-large"))
    assert any("request 2 != limit 4" in p for p in problems)


def test_gpu_check_catches_tensor_parallel_beyond_the_node(rendered: Any) -> None:
    # batch-large asks for 4 GPUs in one pod; a pool of 2-GPU nodes can never hold it.
    small_nodes = [dict(p, gpus_per_node=2) for p in pools("batch-large")]
    (problem,) = check_gpu_consistency(rendered("batch-large").manifests, small_nodes)
    assert "needs 4 GPUs on one node, nodes have 2" in problem


def test_gpu_check_catches_tensor_parallel_arg_drift(rendered: Any) -> None:
    dep = model_server(rendered("batch-large"))
    args = dep["spec"]["template"]["spec"]["containers"][0]["args"]
    args[args.index("--tensor-parallel-size") + 1] = "2"
    (problem,) = check_gpu_consistency([dep], pools("batch-large"))
    assert "--tensor-parallel-size 2 but nvidia.com/gpu=4" in problem


def test_gpu_check_without_any_pool(rendered: Any) -> None:
    (problem,) = check_gpu_consistency([model_server(rendered("rag-small-existing"))], [])
    assert "no GPU pool" in problem


def test_gpu_check_accepts_exists_tolerations_and_ignores_cpu_pods(rendered: Any) -> None:
    dep = model_server(rendered("rag-small-existing"))
    dep["spec"]["template"]["spec"]["tolerations"] = [{"key": "nvidia.com/gpu", "operator": "Exists"}]
    manifests = [dep, *rendered("chat").manifests]
    assert check_gpu_consistency(manifests, pools("rag-small-existing")) == []


# ------------------------------------------------------------------ checkov


def test_skip_file_documents_every_skip() -> None:
    skips = load_skips()
    assert {s["id"] for s in skips} == {"CKV_K8S_43", "CKV_K8S_35", "CKV_K8S_15"}
    assert all(len(s["reason"].split()) >= 15 for s in skips)


@pytest.mark.parametrize("name", sorted(HELD_IN))
def test_held_in_examples_pass_checkov(name: str, rendered: Any, checkov_exe: str) -> None:
    report = run_checkov(rendered(name).manifests, checkov_exe)
    assert report.failed == [], report.summary()
    assert report.passed > 50
    assert {s["check_id"] for s in report.skipped} <= {"CKV_K8S_43", "CKV_K8S_35", "CKV_K8S_15"}


def test_checkov_failures_outside_the_skip_list_are_reported(rendered: Any, checkov_exe: str) -> None:
    dep = model_server(rendered("rag-small-existing"))
    c = dep["spec"]["template"]["spec"]["containers"][0]
    c["securityContext"]["privileged"] = True
    c["securityContext"]["allowPrivilegeEscalation"] = True
    report = run_checkov([dep], checkov_exe)
    failed = {f["check_id"] for f in report.failed}
    assert {"CKV_K8S_16", "CKV_K8S_20"} <= failed, report.summary()


def test_validate_manifests_combines_all_three(rendered: Any, checkov_exe: str, monkeypatch: Any) -> None:
    monkeypatch.setenv("AISTARTER_CHECKOV", checkov_exe)
    r = rendered("rag-small-existing")
    report = validate_manifests(r.manifests, pools("rag-small-existing"))
    assert report.ok, report.summary()
    assert report.checkov is not None and "skipped with a documented reason" in report.summary()


def test_missing_checkov_is_reported_not_hidden(rendered: Any, monkeypatch: Any, tmp_path: Path) -> None:
    monkeypatch.setenv("AISTARTER_CHECKOV", str(tmp_path / "no-checkov"))
    report = validate_manifests(rendered("chat").manifests, [])
    assert report.checkov is None and "checkov not found" in report.checkov_missing

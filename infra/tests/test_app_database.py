"""The shared PostgreSQL, the migration Job and the internal metrics port, as rendered."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from aistarter_infra.components.database import cnpg_url
from aistarter_infra.render import render_program
from stacks import MATRIX, RAG_SMALL_EXISTING, write_program


def _containers(r: Any, kind: str, name: str) -> list[dict[str, Any]]:
    return r.get(kind, name)["spec"]["template"]["spec"]["containers"]


def _env(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}


@pytest.mark.parametrize("name", sorted(MATRIX))
def test_every_database_client_reads_the_url_from_the_secret(name: str, rendered: Any) -> None:
    stack, r = MATRIX[name], rendered(name)
    clients = [("Deployment", "api"), ("Job", "migrate")] + (
        [("Deployment", "worker")] if stack["task_queue"] != "none" else [])
    for kind, wname in clients:
        env = _env(_containers(r, kind, wname)[0])
        assert env["DATABASE_URL"] == {"secretKeyRef": {"name": "database", "key": "url"}}, wname
        assert env["APP_ENV"] == "production" and env["AUTO_MIGRATE"] == "false", wname
    assert set(r.get("Secret", "database")["stringData"]) == {"url"}


def test_migrations_run_once_in_a_job_with_the_app_image(rendered: Any) -> None:
    r = rendered("agents-azure-pgvector-arq")
    job = r.get("Job", "migrate")["spec"]
    (c,) = job["template"]["spec"]["containers"]
    assert c["command"] == ["python", "-m", "app.db.migrate"]
    assert c["image"] == _containers(r, "Deployment", "api")[0]["image"]
    assert job["template"]["spec"]["restartPolicy"] == "Never" and job["backoffLimit"] >= 1
    assert c["securityContext"]["readOnlyRootFilesystem"] is True


def test_internal_endpoints_are_not_on_the_service_the_ingress_targets(rendered: Any) -> None:
    r = rendered("rag-small-existing")
    (api,) = _containers(r, "Deployment", "api")
    ports = {p["name"]: p["containerPort"] for p in api["ports"]}
    assert _env(api)["METRICS_PORT"] == str(ports["metrics"]) and ports["metrics"] != ports["http"]
    assert [p["name"] for p in r.get("Service", "api")["spec"]["ports"]] == ["http"]
    assert [p["name"] for p in r.get("Service", "api-metrics")["spec"]["ports"]] == ["metrics"]
    rules = r.get("NetworkPolicy", "api-ingress")["spec"]["ingress"]
    by_ns = {peer["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]: rule["ports"]
             for rule in rules for peer in rule["from"] if "namespaceSelector" in peer}
    assert by_ns["ingress-nginx"] == [{"port": ports["http"], "protocol": "TCP"}]
    assert by_ns["monitoring"] == [{"port": ports["metrics"], "protocol": "TCP"}]


def test_every_pinned_image_is_pulled_only_when_missing(rendered: Any) -> None:
    r = rendered("batch-large")
    for m in r.manifests:
        if m["kind"] in ("Deployment", "StatefulSet", "Job"):
            for c in m["spec"]["template"]["spec"]["containers"]:
                assert c["imagePullPolicy"] == "IfNotPresent", m["metadata"]["name"]


@pytest.mark.parametrize("name", sorted(MATRIX))
def test_no_disruption_budget_blocks_a_drain(name: str, rendered: Any) -> None:
    for pdb in rendered(name).find("PodDisruptionBudget"):
        assert pdb["spec"].get("maxUnavailable", 0) >= 1, pdb["metadata"]["name"]


def test_clients_reach_the_managed_database_on_clouds(rendered: Any) -> None:
    egress = rendered("chat").get("NetworkPolicy", "api-egress")["spec"]["egress"]
    assert any(rule["ports"] == [{"port": 5432, "protocol": "TCP"}] for rule in egress)


def test_cloudnativepg_makes_the_database_on_existing_clusters(tmp_path: Path) -> None:
    program = write_program(tmp_path, MATRIX["agents-azure-pgvector-arq"] | {
        "cloud": "existing", "gateway": RAG_SMALL_EXISTING["gateway"]},
        overrides={"database": {"cloudnativepg": True}})
    r = render_program(program)
    cluster = r.get("Cluster", "app-db")["spec"]
    assert cluster["bootstrap"]["initdb"]["postInitApplicationSQL"] == ["CREATE EXTENSION IF NOT EXISTS vector"]
    assert cluster["bootstrap"]["initdb"]["secret"] == {"name": "database-credentials"}
    assert [h["name"] for h in r.helm_releases if h["name"] == "cnpg"] == ["cnpg"]
    peers = r.get("NetworkPolicy", "api-egress")["spec"]["egress"][0]["to"]
    assert peers == [{"podSelector": {"matchLabels": {"cnpg.io/cluster": "app-db"}}}]
    assert r.get("NetworkPolicy", "database-ingress")


def test_cnpg_url_encodes_the_password() -> None:
    assert cnpg_url("app", "p@ss:w/rd", "app-db-rw", "app") == "postgresql://app:p%40ss%3Aw%2Frd@app-db-rw:5432/app"


def test_cloudnativepg_cluster_passes_schema_validation(tmp_path: Path) -> None:
    from aistarter_infra.validate import validate_schemas

    program = write_program(tmp_path, RAG_SMALL_EXISTING, overrides={"database": {"cloudnativepg": True}})
    r = render_program(program)
    assert validate_schemas(r.manifests) == []
    broken = [dict(m, spec={**m["spec"], "instance": 1}) for m in r.find("Cluster")]
    assert validate_schemas(broken) != []

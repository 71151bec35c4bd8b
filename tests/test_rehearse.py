"""The rehearsal (`aistarter infra rehearse`): generated projects' own workloads, run as their manifests declare.

Each planted defect edits the rendered manifests (or the project) before the rehearsal runs them and must turn
the rehearsal red at the step that would have caught it in a cluster.
"""

from __future__ import annotations

import importlib
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

# One worker runs the rehearsals in order: they share the module's generated projects, and each starts a
# cluster's worth of sandboxes and a Prometheus that would race a second rehearsal for the two cores.
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("rehearsal")]

REQUIRE_SERVICES = os.environ.get("AISTARTER_REQUIRE_SERVICES") == "1"
RAG = ["use_case=rag", "providers=openai,local", "self_hosted=small", "task_queue=arq", "vector_store=pgvector"]
TOOLS = ("bwrap", "setpriv", "nsenter", "nft", "prometheus", "psql")


def _need_tools() -> None:
    missing = [t for t in TOOLS if shutil.which(t) is None]
    if missing:
        reason = f"the rehearsal needs {', '.join(missing)} (apt-get install -y bubblewrap nftables prometheus)"
        if REQUIRE_SERVICES:
            pytest.fail(reason)
        pytest.skip(reason)


def _generate(root: Path, name: str, sets: list[str]) -> Path:
    project = root / name
    args = [sys.executable, "-m", "aistarter", "new", str(project), "--no-input"]
    for s in sets:
        args += ["--set", s]
    done = subprocess.run(args, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return project


def _rehearse(project: Path, plant: Callable[[list[dict[str, Any]]], None] | None = None) -> Any:
    """The project's own vendored rehearsal (what `python -m aistarter_infra rehearse` runs), imported in place
    of the repository's copy for this call only."""
    infra = str(project / "infra")
    saved = {m: sys.modules.pop(m) for m in list(sys.modules)
             if m == "aistarter_infra" or m.startswith("aistarter_infra.")}
    sys.path.insert(0, infra)
    try:
        library = importlib.import_module("aistarter_infra.rehearse")
        assert Path(library.__file__).is_relative_to(project), library.__file__
        report = library.rehearse(project / "infra" / "app", plant=plant)
    finally:
        sys.path.remove(infra)
        for m in [m for m in sys.modules if m == "aistarter_infra" or m.startswith("aistarter_infra.")]:
            del sys.modules[m]
        sys.modules.update(saved)
    print(report.as_table())
    return report


@pytest.fixture(scope="module")
def default_project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    _need_tools()
    yield _generate(tmp_path_factory.mktemp("rehearse"), "default-app", [])


@pytest.fixture(scope="module")
def rag_project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    _need_tools()
    yield _generate(tmp_path_factory.mktemp("rehearse"), "rag-app", RAG)


def _containers(manifests: list[dict[str, Any]], kind: str, name: str) -> list[dict[str, Any]]:
    return [c for m in manifests if m["kind"] == kind and m["metadata"]["name"] == name
            for c in m["spec"]["template"]["spec"]["containers"]]


def _failed(report: Any, prefix: str) -> str:
    steps = [s for s in report.failed() if s.name.startswith(prefix)]
    assert steps, f"expected a failed step starting with {prefix!r}: {[(s.name, s.status) for s in report.steps]}"
    return steps[0].detail


# ------------------------------------------------------------------------------------------------ whole projects


def test_default_project_passes_the_rehearsal(default_project: Path) -> None:
    report = _rehearse(default_project)
    assert report.ok, report.as_table()
    assert any(s.name == "Deployment/api readinessProbe" and s.status == "ok" for s in report.steps)


def test_rag_selfhosted_arq_project_passes_the_rehearsal_with_a_wake_from_zero(rag_project: Path) -> None:
    report = _rehearse(rag_project)
    assert report.ok, report.as_table()
    names = {s.name: s.status for s in report.steps}
    for step in ("wake: ScaledObject query crosses its activation threshold", "wake: the held chat request completes",
                 "wake: the queued job completes", "wake: usage and interaction recorded",
                 "prometheus scrapes the ServiceMonitors"):
        assert names.get(step) == "ok", report.as_table()
    assert any("double" in n and "only stand-in" in n for n in report.notes)


def test_cli_runs_the_projects_own_rehearsal_and_prints_json(default_project: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "aistarter", "infra", "rehearse", str(default_project), "--format",
                           "json"], capture_output=True, text=True, timeout=600)
    import json

    data = json.loads(done.stdout)
    assert done.returncode == (0 if data["ok"] else 1)
    assert {s["status"] for s in data["steps"]} <= {"ok", "failed", "not rehearsed"}


# ----------------------------------------------------------------------------------------------- planted defects


def test_planted_database_url_removed_fails_the_api_start(default_project: Path) -> None:
    def plant(manifests: list[dict[str, Any]]) -> None:
        for c in _containers(manifests, "Deployment", "api"):
            c["env"] = [e for e in c.get("env", []) if e["name"] != "DATABASE_URL"]

    detail = _failed(_rehearse(default_project, plant), "Deployment/api")
    assert any(w in detail.lower() for w in ("database", "sqlite")), detail


def test_planted_probe_path_changed_fails_its_probe(default_project: Path) -> None:
    def plant(manifests: list[dict[str, Any]]) -> None:
        for c in _containers(manifests, "Deployment", "api"):
            c["readinessProbe"]["httpGet"]["path"] = "/readyz-moved"

    detail = _failed(_rehearse(default_project, plant), "Deployment/api readinessProbe")
    assert "GET /readyz-moved" in detail and "HTTP 404" in detail, detail


def test_planted_read_only_path_written_fails(default_project: Path) -> None:
    # The app is pointed at a database file under the image's WORKDIR, which the pod mounts read-only. As a
    # development process: in production it would refuse SQLite before ever writing the file.
    def plant(manifests: list[dict[str, Any]]) -> None:
        for c in _containers(manifests, "Deployment", "api"):
            c["env"] = [e for e in c.get("env", []) if e["name"] not in ("DATABASE_URL", "APP_ENV")] + [
                {"name": "DATABASE_URL", "value": "sqlite:////srv/rehearsal-planted.db"},
                {"name": "APP_ENV", "value": "development"}]

    detail = _failed(_rehearse(default_project, plant), "Deployment/api")
    assert "unable to open database file" in detail or "read-only" in detail.lower(), detail


def test_planted_scaledobject_metric_renamed_never_wakes_the_model(rag_project: Path) -> None:
    def plant(manifests: list[dict[str, Any]]) -> None:
        for m in manifests:
            if m["kind"] == "ScaledObject":
                for t in m["spec"]["triggers"]:
                    if t["type"] == "prometheus":
                        t["metadata"]["query"] = t["metadata"]["query"].replace(
                            "aistarter_model_pending_requests", "aistarter_model_pending_renamed")

    detail = _failed(_rehearse(rag_project, plant), "wake: ScaledObject query")
    assert "aistarter_model_pending_renamed" in detail


def test_planted_worker_metrics_port_dropped_is_not_scraped(rag_project: Path) -> None:
    def plant(manifests: list[dict[str, Any]]) -> None:
        for c in _containers(manifests, "Deployment", "worker"):
            c.pop("ports", None)

    detail = _failed(_rehearse(rag_project, plant), "prometheus scrapes")
    assert "worker" in detail, detail


# ------------------------------------------------------------------------------- manifest reading, no processes


def _manifests_module() -> Any:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "infra"))
    try:
        return importlib.import_module("aistarter_infra.rehearse.manifests")
    finally:
        sys.path.pop(0)


def test_env_is_built_as_the_kubelet_does_and_a_missing_secret_key_is_named() -> None:
    mod = _manifests_module()
    secret = {"kind": "Secret", "metadata": {"name": "db"}, "data": {"password": "cC93L2Q="}}  # base64 "p/w/d"
    config = {"kind": "ConfigMap", "metadata": {"name": "cfg"}, "data": {"mode": "fast"}}
    pod = {"spec": {"containers": []}}
    spec = {"name": "api", "env": [
        {"name": "PW", "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}},
        {"name": "URL", "value": "postgresql://app:$(PW)@db/app?x=$$(PW)&y=$(UNSET)"},
        {"name": "MODE", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "mode"}}},
        {"name": "OPT", "valueFrom": {"secretKeyRef": {"name": "db", "key": "nope", "optional": True}}},
    ]}
    c = mod.Container("Deployment/api", "Deployment", "api", spec, pod, 1)
    env = mod.resolve_env(c, [secret, config], "ns", "127.0.0.5")
    assert env == {"PW": "p/w/d", "URL": "postgresql://app:p/w/d@db/app?x=$(PW)&y=$(UNSET)", "MODE": "fast"}
    spec["env"].append({"name": "BAD", "valueFrom": {"secretKeyRef": {"name": "db", "key": "missing"}}})
    with pytest.raises(mod.ManifestError, match="env BAD refers to Secret 'db' has no key 'missing'"):
        mod.resolve_env(c, [secret, config], "ns", "127.0.0.5")


def test_dockerfile_final_stage_gives_the_image_stand_in(tmp_path: Path) -> None:
    mod = _manifests_module()
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text('FROM python AS build\nRUN pip install ".[postgres]" && true\nFROM python\n'
                          "COPY --from=build /opt/venv /opt/venv\nWORKDIR /srv\nCOPY alembic.ini ./\n"
                          "ENV PATH=/opt/venv/bin:$PATH A=1\nUSER 10001:10001\n"
                          'CMD ["uvicorn", "app.main:app"]\n')
    image = mod.parse_dockerfile(dockerfile)
    assert image.pip_target == ".[postgres]" and image.venv_copies == ["/opt/venv"]
    assert image.workdir == "/srv" and image.copies == [(["alembic.ini"], "./")] and image.user == "10001:10001"
    # Dependencies from pyproject.toml in a layer of their own, then the app with --no-deps: the extra still counts.
    dockerfile.write_text("FROM python AS build\nRUN python -c \"import tomllib; p = tomllib.load(f)['project']; "
                          "install(*p['dependencies'], *p['optional-dependencies']['postgres'])\"\n"
                          "RUN pip install --no-deps . && true\nFROM python\nCMD [\"x\"]\n")
    assert mod.parse_dockerfile(dockerfile).pip_target == ".[postgres]"
    # The generated Dockerfile: the lock in a layer of its own, then the app, both with --no-deps.
    dockerfile.write_text("FROM python AS build\nCOPY requirements.lock ./\n"
                          "RUN pip install --no-deps -r requirements.lock\n"
                          "RUN pip install --no-deps . && python -m compileall -q /opt/venv\n"
                          "FROM python\nCMD [\"x\"]\n")
    locked = mod.parse_dockerfile(dockerfile)
    assert locked.requirements == ["requirements.lock"] and locked.pip_target == "."
    assert image.env["PATH"].startswith("/opt/venv/bin:/usr/local/sbin") and image.env["A"] == "1"
    c = mod.Container("Deployment/w", "Deployment", "w", {"args": ["--x"]}, {"spec": {}}, 1)
    assert mod.argv(c, image) == ["--x"]  # args replace CMD; no ENTRYPOINT
    c.spec = {"command": ["arq", "app.jobs.worker.WorkerSettings"]}
    assert mod.argv(c, image) == ["arq", "app.jobs.worker.WorkerSettings"]

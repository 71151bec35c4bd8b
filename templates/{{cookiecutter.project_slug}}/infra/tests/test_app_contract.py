"""Contract between the app stack's manifests and the app's code, checked cheaply (no processes): what the app
needs in production is supplied, what the manifests probe and scrape exists in the app, and every metric an
autoscaler reads is exported by the workload it targets. Each side is read from its own source: the rendered
manifests, and the app's files (parsed, not imported, so these tests run in the infra environment)."""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any

from test_app_stack import app

PROJECT = Path(__file__).resolve().parents[2]
APP = PROJECT / "app"


def required_in_production() -> set[str]:
    """What APP_ENV=production refuses to start without: REQUIRED_IN_PRODUCTION's own entries in app/settings.py,
    plus the `secret` of each PROVIDERS entry (which REQUIRED_IN_PRODUCTION adds with a comprehension)."""
    values = {node.target.id: node.value for node in ast.parse((APP / "settings.py").read_text()).body
              if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value is not None}
    assert "REQUIRED_IN_PRODUCTION" in values and "PROVIDERS" in values, "app/settings.py must define both"
    required = values["REQUIRED_IN_PRODUCTION"]
    assert isinstance(required, ast.Dict)
    names = {ast.literal_eval(key) for key in required.keys if key is not None}
    return names | {entry["secret"] for entry in ast.literal_eval(values["PROVIDERS"]).values()}


def routes() -> dict[str, set[str]]:
    """Paths per router variable (`router`: the public app, `internal_router`: METRICS_PORT)."""
    found: dict[str, set[str]] = {}
    for path in (APP / "api").glob("*.py"):
        for var, route in re.findall(r'@(\w+)\.(?:get|post|put|delete)\(\s*"([^"]+)"', path.read_text()):
            found.setdefault(var, set()).add(route)
    return found


def exported_metric_names() -> set[str]:
    names: set[str] = set()
    for path in APP.rglob("*.py"):
        names |= set(re.findall(r'(?:Gauge|Counter|Histogram|GaugeMetricFamily)\(\s*"(\w+)"', path.read_text()))
    return names


def workloads() -> list[dict[str, Any]]:
    return [m for m in app().manifests if m["kind"] in ("Deployment", "StatefulSet", "Job")]


def app_containers() -> list[tuple[str, dict[str, Any]]]:
    """Containers running this project's image (the API, the worker, the migration Job)."""
    image = app().get("Deployment", "api")["spec"]["template"]["spec"]["containers"][0]["image"]
    return [(m["metadata"]["name"], c) for m in workloads() for c in m["spec"]["template"]["spec"]["containers"]
            if c["image"] == image]


def env_of(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in container.get("env", [])}


def secret_keys() -> dict[str, set[str]]:
    return {s["metadata"]["name"]: set(s.get("stringData", {})) | set(s.get("data", {}))
            for s in app().find("Secret")}


def test_every_setting_production_requires_is_supplied() -> None:
    required = required_in_production()
    assert "DATABASE_URL" in required
    secrets = secret_keys()
    for name, container in app_containers():
        env = env_of(container)
        assert env.get("APP_ENV", {}).get("value") == "production", name
        for var in required:
            assert var in env, f"{name}: {var} is required in production but not set"
            ref = env[var].get("valueFrom", {}).get("secretKeyRef")
            if ref is None:
                assert env[var].get("value"), f"{name}: {var} is empty"
            else:
                assert ref["key"] in secrets.get(ref["name"], set()), f"{name}: {var} -> missing Secret {ref}"
                assert not ref.get("optional"), f"{name}: {var} must not be optional"


def test_every_probe_path_and_port_exists_in_the_app() -> None:
    paths = routes()
    dockerfile = (PROJECT / "Dockerfile").read_text()
    (serve_port,) = re.findall(r'"--port",\s*"(\d+)"', dockerfile)
    (api,) = app().get("Deployment", "api")["spec"]["template"]["spec"]["containers"]
    ports = {p["name"]: p["containerPort"] for p in api["ports"]}
    assert ports["http"] == int(serve_port), "the http port must be the one the image serves on"
    for kind in ("startupProbe", "livenessProbe", "readinessProbe"):
        get = api[kind]["httpGet"]
        assert get["path"] in paths["router"], f"{kind} {get['path']} is not a route of the public app"
        assert get["port"] in ports or get["port"] in ports.values(), f"{kind} port {get['port']}"
    assert env_of(api)["METRICS_PORT"]["value"] == str(ports["metrics"])
    for _, container in app_containers():
        for kind in ("livenessProbe", "readinessProbe", "startupProbe"):
            command = container.get(kind, {}).get("exec", {}).get("command")
            if command:
                assert_module_exists(" ".join(command))
        if container.get("command"):
            assert_module_exists(" ".join(container["command"]))


def assert_module_exists(command: str) -> None:
    for dotted in re.findall(r"\bapp(?:\.\w+)+", command):
        parts = dotted.split(".")
        for cut in range(len(parts), 0, -1):
            module = PROJECT.joinpath(*parts[:cut])
            if module.with_suffix(".py").exists() or (module / "__init__.py").exists():
                attrs = parts[cut:]
                if attrs:
                    source = module.with_suffix(".py").read_text()
                    assert re.search(rf"^(class|def|\w+\s*=)?\s*{attrs[0]}\b", source, re.M), f"{dotted} in {command}"
                break
        else:
            raise AssertionError(f"{command!r} names {dotted}, which is not in app/")


def scraped_workloads() -> dict[str, set[str]]:
    """Workload name -> paths Prometheus scrapes on it, following ServiceMonitor -> Service -> pod port."""
    scraped: dict[str, set[str]] = {}
    services = app().find("Service")
    for monitor in app().find("ServiceMonitor"):
        wanted = monitor["spec"]["selector"]["matchLabels"]
        for endpoint in monitor["spec"]["endpoints"]:
            for svc in services:
                labels = svc["metadata"].get("labels", {})
                svc_port = next((p for p in svc["spec"]["ports"] if p["name"] == endpoint["port"]), None)
                if svc_port is None or any(labels.get(k) != v for k, v in wanted.items()):
                    continue
                for w in workloads():
                    pod_labels = w["spec"]["template"]["metadata"]["labels"]
                    if any(pod_labels.get(k) != v for k, v in svc["spec"]["selector"].items()):
                        continue
                    for c in w["spec"]["template"]["spec"]["containers"]:
                        if any(p["name"] == svc_port["targetPort"] for p in c.get("ports", [])):
                            scraped.setdefault(w["metadata"]["name"], set()).add(endpoint["path"])
    return scraped


def test_every_autoscaler_metric_is_exported_by_what_it_scales_on() -> None:
    exported = exported_metric_names()
    internal_paths = routes().get("internal_router", set())
    scraped = scraped_workloads()
    for so in app().find("ScaledObject"):
        for trigger in so["spec"]["triggers"]:
            meta = trigger["metadata"]
            if trigger["type"] == "prometheus":
                names = set(re.findall(r"\b(aistarter_\w+)", meta["query"]))
                assert names and names <= exported, f"{so['metadata']['name']}: {names - exported} not exported"
                # The API exports the gauge, and so does the worker (jobs for the model): both must be scraped.
                exporters = {"api"} | ({"worker"} if app().find("Deployment", "worker") else set())
                for workload in exporters:
                    assert "/metrics" in scraped.get(workload, set()), f"{workload} is not scraped"
                assert "/metrics" in internal_paths
            elif trigger["type"] == "redis":
                config = next(APP.glob("*jobs*/*config.py")).read_text()
                (queue_name,) = re.findall(r'job_queue_name: str = "([^"]+)"', config)
                assert meta["listName"] == queue_name
                worker = app().get("Deployment", so["spec"]["scaleTargetRef"]["name"])
                assert meta["passwordFromEnv"] in env_of(worker["spec"]["template"]["spec"]["containers"][0])
            else:
                raise AssertionError(f"no contract check for a {trigger['type']} trigger")
    for hpa in app().find("HorizontalPodAutoscaler"):
        for metric in hpa["spec"]["metrics"]:
            assert metric["type"] == "Resource", "only resource metrics are always available to an HPA"


def test_worker_serves_metrics_where_it_is_scraped() -> None:
    worker = app().find("Deployment", "worker")
    if not worker or not app().find("ServiceMonitor", "worker"):
        return
    (container,) = worker[0]["spec"]["template"]["spec"]["containers"]
    port = next(p["containerPort"] for p in container["ports"] if p["name"] == "metrics")
    assert env_of(container)["METRICS_PORT"]["value"] == str(port)
    source = next(APP.glob("*jobs*/*worker.py")).read_text()
    assert "metrics_port" in source and "serve_internal" in source, "the worker must serve METRICS_PORT"

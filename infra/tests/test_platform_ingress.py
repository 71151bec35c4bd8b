"""The API's exposure per cloud (components/ingress.py): the maintained integration's object, only /v1 routed,
and timeouts at least the longest hold (api.latency_budget_ms) so held requests are not cut."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from stacks import CHAT_NO_GPU, make_stack  # noqa: E402

BUDGET_MS = 200_000  # a 200 s hold: longer than every load balancer's default idle timeout


def _app(tmp_path: Path, cloud: str, **overrides: Any) -> Any:
    from aistarter_infra.render import render_program
    from stacks import write_program

    stack = make_stack(cloud=cloud, gateway=CHAT_NO_GPU["gateway"])
    return render_program(write_program(tmp_path, stack, latency_budget_ms=BUDGET_MS, overrides=overrides or None))


def _kinds(app: Any) -> set[str]:
    return {m["kind"] for m in app.manifests}


def test_aws_alb_ingress_outlasts_the_hold(tmp_path: Path) -> None:
    app = _app(tmp_path, "aws")
    ingress = app.get("Ingress", "api")
    assert ingress["spec"]["ingressClassName"] == "alb"
    notes = ingress["metadata"]["annotations"]
    assert notes["alb.ingress.kubernetes.io/target-type"] == "ip"
    seconds = int(notes["alb.ingress.kubernetes.io/load-balancer-attributes"].split("=")[1])
    assert seconds >= BUDGET_MS / 1000
    assert [p["path"] for p in ingress["spec"]["rules"][0]["http"]["paths"]] == ["/v1"]


def test_gcp_uses_a_gke_gateway_with_a_long_backend_timeout(tmp_path: Path) -> None:
    app = _app(tmp_path, "gcp")
    assert "Ingress" not in _kinds(app)
    gateway = app.get("Gateway", "api")
    assert gateway["spec"]["gatewayClassName"] == "gke-l7-global-external-managed"
    route = app.get("HTTPRoute", "api")
    assert route["spec"]["rules"][0]["matches"] == [{"path": {"type": "PathPrefix", "value": "/v1"}}]
    policy = app.get("GCPBackendPolicy", "api")
    assert policy["spec"]["default"]["timeoutSec"] >= BUDGET_MS / 1000
    assert app.get("HealthCheckPolicy", "api")["spec"]["default"]["config"]["httpHealthCheck"]["requestPath"] == \
        "/readyz"


def test_azure_uses_application_gateway_for_containers(tmp_path: Path) -> None:
    app = _app(tmp_path, "azure")
    gateway = app.get("Gateway", "api")
    assert gateway["spec"]["gatewayClassName"] == "azure-alb-external"
    assert gateway["metadata"]["annotations"]["alb.networking.azure.io/alb-name"] == "alb"
    timeout = app.get("RoutePolicy", "api")["spec"]["default"]["timeouts"]["routeTimeout"]
    assert int(timeout.rstrip("s")) >= BUDGET_MS / 1000


def test_existing_uses_the_configured_class_and_installs_nothing(tmp_path: Path) -> None:
    from aistarter_infra.stack_config import stack_to_config

    api = stack_to_config(make_stack(cloud="existing"), "demo", BUDGET_MS)["api"]
    api["ingress"] = {**api["ingress"], "class_name": "traefik", "controller_namespace": "traefik"}
    app = _app(tmp_path, "existing", api=api)
    assert app.get("Ingress", "api")["spec"]["ingressClassName"] == "traefik"
    assert app.helm_releases == [] or all(r["name"] != "ingress-nginx" for r in app.helm_releases)


@pytest.mark.parametrize("cloud", ["aws", "gcp", "azure"])
def test_exposure_objects_pass_schema_validation(cloud: str, tmp_path: Path) -> None:
    from aistarter_infra.validate import validate_schemas

    app = _app(tmp_path, cloud)
    exposure = [m for m in app.manifests if m["kind"] in {"Ingress", "Gateway", "HTTPRoute", "GCPBackendPolicy",
                                                            "HealthCheckPolicy", "RoutePolicy"}]
    assert exposure and validate_schemas(exposure) == []


@pytest.mark.parametrize("cloud", ["aws", "gcp", "azure"])
def test_platform_installs_the_integration(cloud: str) -> None:
    from test_platform_render import rendered

    _, result = rendered(cloud, "small")
    releases = {r["inputs"]["name"] for r in result.of_type("kubernetes:helm.sh/v3:Release")}
    if cloud == "aws":
        assert "aws-load-balancer-controller" in releases
        policy = [r for r in result.of_type("aws:iam/rolePolicy:RolePolicy") if r["name"] == "demo-lb-controller"]
        assert policy, "the controller needs its own IRSA role"
    elif cloud == "gcp":
        (cluster,) = result.of_type("gcp:container/cluster:Cluster")
        assert cluster["inputs"]["gatewayApiConfig"] == {"channel": "CHANNEL_STANDARD"}
    else:
        assert "alb-controller" in releases
        alb_type = "kubernetes:alb.networking.azure.io/v1:ApplicationLoadBalancer"
        albs = [r for r in result.resources if r["type"] == alb_type]
        assert len(albs) == 1
        (subnet,) = [r for r in result.of_type("azure-native:network:Subnet") if r["name"] == "demo-alb"]
        assert subnet["inputs"]["delegations"][0]["serviceName"] == "Microsoft.ServiceNetworking/trafficControllers"
    assert result.outputs["ingress_class"] == {"aws": "alb", "gcp": "gke-l7-global-external-managed",
                                               "azure": "azure-alb-external"}[cloud]

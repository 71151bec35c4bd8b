"""The API's exposure object, per cloud: what each cloud's maintained load-balancer integration reads.

- aws: an Ingress for the AWS Load Balancer Controller (class `alb`, pod-IP targets, ALB idle timeout).
- gcp: a GKE Gateway (Gateway API) with an HTTPRoute, a GCPBackendPolicy for the backend timeout and a
  HealthCheckPolicy pointing the load balancer at /readyz.
- azure: an Application Gateway for Containers Gateway (Gateway API) with an HTTPRoute and a RoutePolicy
  for the request timeout, bound to the ApplicationLoadBalancer the platform stack creates.
- existing: an Ingress of the class named in config; nothing is installed.

Only /v1 (the OpenAI-compatible API) is routed: /metrics and /internal/* stay inside the cluster.
Timeouts are at least the longest hold (api.latency_budget_ms) plus a minute of response time, so a request
held while a model wakes is never cut by the load balancer (docs/decisions/0011-ingress.md).
"""

from __future__ import annotations

import math
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from .. import kube
from ..config import AppStackConfig
from ..platform.spec import INGRESS_CLASS

PUBLIC_PREFIX = "/v1"
NAME = "api"
# The platform stack's ApplicationLoadBalancer (Application Gateway for Containers, managed by ALB controller).
AZURE_ALB = {"namespace": "alb-infra", "name": "alb"}
# GCP's backend service timeout bounds a whole response, so SSE streams need room beyond the hold itself.
GCP_MIN_BACKEND_TIMEOUT_S = 3600


def idle_timeout_s(cfg: AppStackConfig) -> int:
    """Longest silence a request may see: the hold (latency budget) plus 60 s, never under 120 s."""
    hold = math.ceil(cfg.api.latency_budget_ms / 1000)
    return max(120, hold + 60)


def _ingress(cfg: AppStackConfig, class_name: str, annotations: dict[str, str], meta: Any,
             parent: pulumi.Resource) -> Any:
    api = cfg.api
    rule: dict[str, Any] = {"http": {"paths": [{
        "path": PUBLIC_PREFIX, "pathType": "Prefix",
        "backend": {"service": {"name": NAME, "port": {"name": "http"}}}}]}}
    if api.ingress.host:
        rule["host"] = api.ingress.host
    spec: dict[str, Any] = {"ingressClassName": class_name, "rules": [rule]}
    if api.ingress.tls_secret and api.ingress.host:
        spec["tls"] = [{"hosts": [api.ingress.host], "secretName": api.ingress.tls_secret}]
    metadata = meta(NAME)
    if annotations:
        metadata = {**metadata, "annotations": annotations}
    return k8s.networking.v1.Ingress(f"{NAME}-ingress", metadata=metadata, spec=spec, opts=kube.opts(parent))


def _gateway(cfg: AppStackConfig, class_name: str, meta: Any, parent: pulumi.Resource,
             annotations: dict[str, str] | None = None) -> list[Any]:
    api = cfg.api
    metadata = meta(NAME)
    if annotations:
        metadata = {**metadata, "annotations": annotations}
    listener: dict[str, Any] = {"name": "http", "protocol": "HTTP", "port": 80,
                                "allowedRoutes": {"namespaces": {"from": "Same"}}}
    if api.ingress.host:
        listener["hostname"] = api.ingress.host
    listeners = [listener]
    if api.ingress.tls_secret and api.ingress.host:
        listeners.append({"name": "https", "protocol": "HTTPS", "port": 443, "hostname": api.ingress.host,
                          "tls": {"mode": "Terminate", "certificateRefs": [{"name": api.ingress.tls_secret}]},
                          "allowedRoutes": {"namespaces": {"from": "Same"}}})
    gateway = k8s.apiextensions.CustomResource(
        f"{NAME}-gateway", api_version="gateway.networking.k8s.io/v1", kind="Gateway", metadata=metadata,
        spec={"gatewayClassName": class_name, "listeners": listeners}, opts=kube.opts(parent))
    route_spec: dict[str, Any] = {
        "parentRefs": [{"name": NAME}],
        "rules": [{"matches": [{"path": {"type": "PathPrefix", "value": PUBLIC_PREFIX}}],
                   "backendRefs": [{"name": NAME, "port": api.port}]}],
    }
    if api.ingress.host:
        route_spec["hostnames"] = [api.ingress.host]
    route = k8s.apiextensions.CustomResource(
        f"{NAME}-route", api_version="gateway.networking.k8s.io/v1", kind="HTTPRoute", metadata=meta(NAME),
        spec=route_spec, opts=kube.opts(parent, [gateway]))
    return [gateway, route]


def expose_api(cfg: AppStackConfig, meta: Any, parent: pulumi.Resource) -> list[Any]:
    """Create the API's exposure objects for cfg.cloud; returns them (empty when api.ingress is off)."""
    if not cfg.api.ingress.enabled:
        return []
    timeout = idle_timeout_s(cfg)
    if cfg.cloud == "aws":
        return [_ingress(cfg, INGRESS_CLASS["aws"], {
            "alb.ingress.kubernetes.io/scheme": "internet-facing",
            "alb.ingress.kubernetes.io/target-type": "ip",
            "alb.ingress.kubernetes.io/healthcheck-path": "/readyz",
            "alb.ingress.kubernetes.io/load-balancer-attributes": f"idle_timeout.timeout_seconds={timeout}",
        }, meta, parent)]
    if cfg.cloud == "gcp":
        objects = _gateway(cfg, INGRESS_CLASS["gcp"], meta, parent)
        target = {"group": "", "kind": "Service", "name": NAME}
        objects.append(k8s.apiextensions.CustomResource(
            f"{NAME}-backend-policy", api_version="networking.gke.io/v1", kind="GCPBackendPolicy",
            metadata=meta(NAME), spec={"default": {"timeoutSec": max(GCP_MIN_BACKEND_TIMEOUT_S, timeout)},
                                       "targetRef": target}, opts=kube.opts(parent)))
        objects.append(k8s.apiextensions.CustomResource(
            f"{NAME}-health-check", api_version="networking.gke.io/v1", kind="HealthCheckPolicy",
            metadata=meta(NAME), spec={"default": {"config": {"type": "HTTP", "httpHealthCheck": {
                "port": cfg.api.port, "requestPath": "/readyz"}}}, "targetRef": target}, opts=kube.opts(parent)))
        return objects
    if cfg.cloud == "azure":
        objects = _gateway(cfg, INGRESS_CLASS["azure"], meta, parent, {
            "alb.networking.azure.io/alb-namespace": AZURE_ALB["namespace"],
            "alb.networking.azure.io/alb-name": AZURE_ALB["name"]})
        objects.append(k8s.apiextensions.CustomResource(
            f"{NAME}-route-policy", api_version="alb.networking.azure.io/v1", kind="RoutePolicy",
            metadata=meta(NAME), spec={
                "targetRef": {"group": "gateway.networking.k8s.io", "kind": "HTTPRoute", "name": NAME},
                "default": {"timeouts": {"routeTimeout": f"{timeout}s"}}}, opts=kube.opts(parent)))
        objects.append(k8s.apiextensions.CustomResource(
            f"{NAME}-health-check", api_version="alb.networking.azure.io/v1", kind="HealthCheckPolicy",
            metadata=meta(NAME), spec={
                "targetRef": {"group": "", "kind": "Service", "name": NAME},
                "default": {"interval": "10s", "timeout": "5s", "healthyThreshold": 1, "unhealthyThreshold": 3,
                            "http": {"path": "/readyz", "match": {"statusCodes": [{"start": 200, "end": 299}]}}}},
            opts=kube.opts(parent)))
        return objects
    # existing: the class named in config; the controller is the cluster owner's.
    return [_ingress(cfg, cfg.api.ingress.class_name, {}, meta, parent)]

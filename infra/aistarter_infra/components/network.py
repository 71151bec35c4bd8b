"""NetworkPolicies: default-deny for the namespace, then one explicit allow per edge of the app graph."""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from .. import kube
from ..config import AppStackConfig
from .database import CNPG_INSTANCE_PORT

COMPONENT = "network"
# Provider APIs and the model hub are public: allow HTTPS out, but not into private ranges, so a compromised
# pod cannot use port 443 to reach other in-cluster or VPC services.
PRIVATE_RANGES = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16", "100.64.0.0/10"]


def _ns(name: str) -> dict[str, Any]:
    return {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": name}}}


def _pods(project: str, component: str) -> dict[str, Any]:
    return {"podSelector": {"matchLabels": kube.selector(project, component)}}


def _ports(*ports: int, protocol: str = "TCP") -> list[dict[str, Any]]:
    return [{"port": port, "protocol": protocol} for port in ports]


def _internet(*ports: int) -> dict[str, Any]:
    return {"to": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": PRIVATE_RANGES}}], "ports": _ports(*ports)}


class NetworkPolicies(pulumi.ComponentResource):
    """Deny all ingress and egress in the app namespace; allow DNS and the edges the blueprint needs."""

    def __init__(self, name: str, cfg: AppStackConfig, namespace: pulumi.Input[str],
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("aistarter:app:NetworkPolicies", name, None, opts)
        p = cfg.project
        self.names: list[str] = []

        def policy(pname: str, spec: dict[str, Any]) -> None:
            self.names.append(pname)
            k8s.networking.v1.NetworkPolicy(f"{name}-{pname}", metadata=kube.metadata(pname, namespace, p, COMPONENT),
                                            spec=spec, opts=kube.opts(self))

        policy("default-deny-all", {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]})
        policy("allow-dns", {
            "podSelector": {},
            "policyTypes": ["Egress"],
            "egress": [{"to": [_ns("kube-system")], "ports": _ports(53, protocol="UDP") + _ports(53)},
                       # NodeLocal DNSCache listens on a link-local address outside kube-system's pods.
                       {"to": [{"ipBlock": {"cidr": "169.254.20.10/32"}}],
                        "ports": _ports(53, protocol="UDP") + _ports(53)}],
        })

        monitoring_ns = cfg.addons.prometheus_namespace
        api_port = cfg.api.port
        api_from: list[dict[str, Any]] = []
        if cfg.api.ingress.enabled:
            api_from.append({"from": [_ns(cfg.api.ingress.controller_namespace)], "ports": _ports(api_port)})
            if cfg.api.ingress.allow_cidrs:
                api_from.append({"from": [{"ipBlock": {"cidr": c}} for c in cfg.api.ingress.allow_cidrs],
                                 "ports": _ports(api_port)})
        if cfg.uses_prometheus:
            # Prometheus reaches only the internal port (/metrics); the ingress controller only the public one.
            api_from.append({"from": [_ns(monitoring_ns)], "ports": _ports(cfg.api.metrics_port)})
        if api_from:
            policy("api-ingress", {"podSelector": _pods(p, "api")["podSelector"], "policyTypes": ["Ingress"],
                                   "ingress": api_from})

        # Egress shared by the API, the worker and the migrate Job: they run the same code.
        clients = ["api", "migrate"] + (["worker"] if cfg.queue is not None else [])
        backend_egress: list[dict[str, Any]] = [self._database_egress(cfg)]
        if cfg.model_server is not None:
            backend_egress.append({"to": [_pods(p, "model-server")], "ports": _ports(cfg.model_server.port)})
        qdrant = cfg.vector_store is not None and cfg.vector_store.kind == "qdrant"
        if qdrant:
            backend_egress.append({"to": [_pods(p, "vector-store")], "ports": _ports(6333, 6334)})
        if cfg.queue is not None:
            backend_egress.append({"to": [_pods(p, "redis")], "ports": _ports(6379)})
        if cfg.telemetry is not None:
            backend_egress.append({"to": [_pods(p, "otel-collector")], "ports": _ports(4317, 4318)})
        if cfg.external_providers:
            backend_egress.append(_internet(443))
        for client in clients:
            if backend_egress:
                policy(f"{client}-egress", {"podSelector": _pods(p, client)["podSelector"],
                                            "policyTypes": ["Egress"], "egress": backend_egress})

        client_peers = [_pods(p, c) for c in clients]
        if cfg.model_server is not None:
            ms_from: list[dict[str, Any]] = [{"from": client_peers, "ports": _ports(cfg.model_server.port)}]
            if cfg.uses_prometheus:
                ms_from.append({"from": [_ns(monitoring_ns)], "ports": _ports(cfg.model_server.port)})
            policy("model-server-ingress", {"podSelector": _pods(p, "model-server")["podSelector"],
                                            "policyTypes": ["Ingress"], "ingress": ms_from})
            # Weights come from the model hub over HTTPS on first start.
            policy("model-server-egress", {"podSelector": _pods(p, "model-server")["podSelector"],
                                           "policyTypes": ["Egress"], "egress": [_internet(443)]})
        if qdrant:
            policy("vector-store-ingress", {"podSelector": _pods(p, "vector-store")["podSelector"],
                                            "policyTypes": ["Ingress"],
                                            "ingress": [{"from": client_peers, "ports": _ports(6333, 6334)}]})
        if cfg.cloud == "existing" and cfg.database.cloudnativepg:
            db_pods = {"podSelector": {"matchLabels": cnpg_selector(cfg)}}
            policy("database-ingress", {"podSelector": db_pods["podSelector"], "policyTypes": ["Ingress"],
                                        "ingress": [{"from": [*client_peers, db_pods], "ports": _ports(5432)},
                                                    # The operator polls each instance's manager for status.
                                                    {"from": [_ns(cfg.database.operator_namespace)],
                                                     "ports": _ports(CNPG_INSTANCE_PORT, 5432)}]})
            # Instances watch their Cluster through the Kubernetes API and replicate from each other.
            policy("database-egress", {"podSelector": db_pods["podSelector"], "policyTypes": ["Egress"],
                                       "egress": [{"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}],
                                                   "ports": _ports(443, 6443)},
                                                  {"to": [db_pods], "ports": _ports(5432, CNPG_INSTANCE_PORT)}]})
        if cfg.queue is not None and cfg.uses_prometheus:
            policy("worker-ingress", {"podSelector": _pods(p, "worker")["podSelector"], "policyTypes": ["Ingress"],
                                      "ingress": [{"from": [_ns(monitoring_ns)],
                                                   "ports": _ports(cfg.queue.worker_metrics_port)}]})
        if cfg.queue is not None:
            # KEDA's operator polls the queue length from its own namespace.
            policy("redis-ingress", {"podSelector": _pods(p, "redis")["podSelector"], "policyTypes": ["Ingress"],
                                     "ingress": [{"from": [*client_peers, _ns(cfg.addons.keda_namespace)],
                                                  "ports": _ports(6379)}]})
        if cfg.telemetry is not None:
            policy("otel-collector-ingress", {"podSelector": _pods(p, "otel-collector")["podSelector"],
                                              "policyTypes": ["Ingress"],
                                              "ingress": [{"from": client_peers, "ports": _ports(4317, 4318)}]})
            # The exporter endpoint may be a SaaS or an in-cluster backend (Phoenix, Langfuse): allow OTLP ports
            # anywhere, and nothing else.
            policy("otel-collector-egress", {"podSelector": _pods(p, "otel-collector")["podSelector"],
                                             "policyTypes": ["Egress"],
                                             "egress": [{"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}],
                                                         "ports": _ports(443, 4317, 4318)}]})
        self.register_outputs({"policies": self.names})

    @staticmethod
    def _database_egress(cfg: AppStackConfig) -> dict[str, Any]:
        if cfg.cloud != "existing":
            # The platform's managed database has a private VPC address.
            return {"to": [{"ipBlock": {"cidr": c}} for c in PRIVATE_RANGES[:3]], "ports": _ports(5432)}
        if cfg.database.cloudnativepg:
            return {"to": [{"podSelector": {"matchLabels": cnpg_selector(cfg)}}], "ports": _ports(5432)}
        # An external database named only by a secret URL: its address is unknown here, its port is not.
        return {"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}], "ports": _ports(5432)}


def cnpg_selector(cfg: AppStackConfig) -> dict[str, str]:
    return {"cnpg.io/cluster": cfg.database.cluster_name}

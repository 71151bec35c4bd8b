"""VectorStore: Qdrant as a single-replica StatefulSet with a PVC, Secret and PDB.

pgvector has no workload of its own: it is an extension in the shared PostgreSQL (components/database.py).
"""

from __future__ import annotations

import json
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from .. import kube
from ..cluster import PlatformOutputs
from ..config import AppStackConfig

COMPONENT = "vector-store"


class VectorStore(pulumi.ComponentResource):
    """A StatefulSet (requests = limits, Guaranteed QoS) reachable only from the API and the worker."""

    def __init__(self, name: str, cfg: AppStackConfig, namespace: pulumi.Input[str], platform: PlatformOutputs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("aistarter:app:VectorStore", name, None, opts)
        vs = cfg.vector_store
        assert vs is not None, "VectorStore needs cfg.vector_store"
        p = cfg.project
        pcfg = pulumi.Config()
        assert vs.kind == "qdrant", "pgvector lives in the shared database, not in a VectorStore"
        svc_name, ports, secret_key, secret_field = "qdrant", [("http", 6333), ("grpc", 6334)], \
            "qdrant_api_key", "api-key"
        self.service_name = svc_name

        def meta(n: str) -> dict[str, Any]:
            return kube.metadata(n, namespace, p, COMPONENT)

        secret_value = pcfg.require_secret(secret_key)
        data: dict[str, pulumi.Input[str]] = {secret_field: secret_value}
        # Qdrant reads the key from a mounted config file (JSON strings are valid YAML scalars), so the
        # database pod carries no secret in its environment.
        data["config.yaml"] = pulumi.Output.secret(secret_value).apply(
            lambda key: f"service:\n  api_key: {json.dumps(key)}\n")
        k8s.core.v1.Secret(f"{name}-secret", metadata=meta(svc_name), type="Opaque", string_data=data,
                           opts=kube.opts(self))

        container = self._qdrant_container(cfg)
        data_path = "/qdrant/storage"
        extra_volumes = [kube.empty_dir("snapshots", "4Gi"), kube.empty_dir("tmp", "1Gi"),
                         kube.secret_volume("secret-config", "qdrant", ["config.yaml"])]
        container["volumeMounts"].insert(0, {"name": "data", "mountPath": data_path})

        k8s.core.v1.Service(
            f"{name}-headless", metadata=meta(f"{svc_name}-headless"),
            spec={"clusterIP": "None", "selector": kube.selector(p, COMPONENT),
                  "ports": [{"name": n, "port": port, "targetPort": n} for n, port in ports]},
            opts=kube.opts(self))
        k8s.core.v1.Service(
            f"{name}-service", metadata=meta(svc_name),
            spec={"type": "ClusterIP", "selector": kube.selector(p, COMPONENT),
                  "ports": [{"name": n, "port": port, "targetPort": n} for n, port in ports]},
            opts=kube.opts(self))
        k8s.apps.v1.StatefulSet(
            f"{name}-statefulset", metadata=meta(svc_name),
            spec={
                "serviceName": f"{svc_name}-headless",
                "replicas": 1,
                "selector": {"matchLabels": kube.selector(p, COMPONENT)},
                "persistentVolumeClaimRetentionPolicy": {"whenDeleted": "Retain", "whenScaled": "Retain"},
                "template": {
                    "metadata": {"labels": kube.labels(p, COMPONENT)},
                    "spec": {
                        "automountServiceAccountToken": False,
                        "securityContext": kube.pod_security_context(),
                        "terminationGracePeriodSeconds": 60,
                        "containers": [container],
                        "volumes": extra_volumes,
                    },
                },
                "volumeClaimTemplates": [{
                    "metadata": {"name": "data", "labels": kube.labels(p, COMPONENT)},
                    "spec": {"accessModes": ["ReadWriteOnce"],
                             "storageClassName": kube.storage_class_name(platform.storage_class),
                             "resources": {"requests": {"storage": vs.storage_size}}},
                }],
            },
            opts=kube.opts(self))
        # Single replica: minAvailable 1 would allow 0 disruptions and block every node drain and cluster
        # upgrade. maxUnavailable 1 lets a drain move it (a short outage of the store) while still stopping
        # evictions from taking it down together with anything else matching this selector.
        k8s.policy.v1.PodDisruptionBudget(
            f"{name}-pdb", metadata=meta(svc_name),
            spec={"maxUnavailable": 1, "selector": {"matchLabels": kube.selector(p, COMPONENT)}},
            opts=kube.opts(self))
        self.register_outputs({"service": svc_name})

    @staticmethod
    def _qdrant_container(cfg: AppStackConfig) -> dict[str, Any]:
        vs = cfg.vector_store
        assert vs is not None
        return {
            "name": "qdrant",
            "image": vs.image,
            "imagePullPolicy": kube.PULL_POLICY,
            # The binary directly (the image's entrypoint script only adds OOM restart handling the kubelet does).
            "command": ["/qdrant/qdrant"],
            "args": ["--config-path", "/qdrant/secret-config/config.yaml"],
            "env": [
                {"name": "QDRANT__STORAGE__STORAGE_PATH", "value": "/qdrant/storage"},
                {"name": "QDRANT__STORAGE__SNAPSHOTS_PATH", "value": "/qdrant/snapshots"},
                {"name": "QDRANT__STORAGE__TEMP_PATH", "value": "/tmp"},
                # The first-start marker is written to the working dir by default; keep it off the read-only root.
                {"name": "QDRANT_INIT_FILE_PATH", "value": "/qdrant/storage/.qdrant-initialized"},
                {"name": "QDRANT__TELEMETRY_DISABLED", "value": "true"},
            ],
            "ports": [{"name": "http", "containerPort": 6333, "protocol": "TCP"},
                      {"name": "grpc", "containerPort": 6334, "protocol": "TCP"}],
            "resources": vs.resources.as_k8s(),
            "securityContext": kube.container_security_context(),
            "startupProbe": kube.http_probe("/readyz", "http", period=5, failures=60),
            "readinessProbe": kube.http_probe("/readyz", "http", period=5),
            "livenessProbe": kube.http_probe("/livez", "http", period=10),
            "volumeMounts": [{"name": "snapshots", "mountPath": "/qdrant/snapshots"},
                             {"name": "tmp", "mountPath": "/tmp"},
                             {"name": "secret-config", "mountPath": "/qdrant/secret-config", "readOnly": True}],
        }

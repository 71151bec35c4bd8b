"""Queue: Redis (password from a Secret, persisted) and the job worker, scaled by KEDA on queue length."""

from __future__ import annotations

import json
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from .. import kube
from ..cluster import PlatformOutputs
from ..config import AppStackConfig
from .api import app_env, service_monitor

REDIS_COMPONENT = "redis"
WORKER_COMPONENT = "worker"


class Queue(pulumi.ComponentResource):
    """Redis StatefulSet + worker Deployment + KEDA ScaledObject on the queue key's length."""

    def __init__(self, name: str, cfg: AppStackConfig, namespace: pulumi.Input[str], platform: PlatformOutputs,
                 keda_deps: list[pulumi.Resource] | None = None,
                 monitoring_deps: list[pulumi.Resource] | None = None,
                 migrations: list[pulumi.Resource] | None = None,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("aistarter:app:Queue", name, None, opts)
        q = cfg.queue
        assert q is not None, "Queue needs cfg.queue"
        p = cfg.project

        def rmeta(n: str) -> dict[str, Any]:
            return kube.metadata(n, namespace, p, REDIS_COMPONENT)

        def wmeta(n: str) -> dict[str, Any]:
            return kube.metadata(n, namespace, p, WORKER_COMPONENT)

        password = pulumi.Config().require_secret("redis_password")
        # redis.conf carries requirepass so the Redis pod reads it from a file, not its environment.
        conf = pulumi.Output.secret(password).apply(lambda pw: f"requirepass {json.dumps(pw)}\n")
        k8s.core.v1.Secret(f"{name}-redis-secret", metadata=rmeta("redis"), type="Opaque",
                           string_data={"password": password, "redis.conf": conf}, opts=kube.opts(self))
        k8s.core.v1.Service(
            f"{name}-redis-headless", metadata=rmeta("redis-headless"),
            spec={"clusterIP": "None", "selector": kube.selector(p, REDIS_COMPONENT),
                  "ports": [{"name": "redis", "port": 6379, "targetPort": "redis"}]},
            opts=kube.opts(self))
        k8s.core.v1.Service(
            f"{name}-redis-service", metadata=rmeta("redis"),
            spec={"type": "ClusterIP", "selector": kube.selector(p, REDIS_COMPONENT),
                  "ports": [{"name": "redis", "port": 6379, "targetPort": "redis"}]},
            opts=kube.opts(self))
        redis_container = {
            "name": "redis",
            "image": q.redis_image,
            "imagePullPolicy": kube.PULL_POLICY,
            "command": ["redis-server"],
            # Jobs must survive a restart (appendonly) and never be evicted to make room (noeviction).
            "args": ["/etc/redis/redis.conf", "--appendonly", "yes", "--dir", "/data",
                     "--maxmemory-policy", "noeviction"],
            "ports": [{"name": "redis", "containerPort": 6379, "protocol": "TCP"}],
            "resources": q.redis_resources.as_k8s(),
            "securityContext": kube.container_security_context(),
            "readinessProbe": kube.tcp_probe("redis", period=5),
            "livenessProbe": kube.tcp_probe("redis", period=10, failures=6),
            "volumeMounts": [{"name": "data", "mountPath": "/data"}, {"name": "tmp", "mountPath": "/tmp"},
                             {"name": "config", "mountPath": "/etc/redis", "readOnly": True}],
        }
        k8s.apps.v1.StatefulSet(
            f"{name}-redis", metadata=rmeta("redis"),
            spec={
                "serviceName": "redis-headless",
                "replicas": 1,
                "selector": {"matchLabels": kube.selector(p, REDIS_COMPONENT)},
                "template": {
                    "metadata": {"labels": kube.labels(p, REDIS_COMPONENT)},
                    "spec": {"automountServiceAccountToken": False,
                             "securityContext": kube.pod_security_context(),
                             "containers": [redis_container],
                             "volumes": [kube.empty_dir("tmp", "64Mi"),
                                         kube.secret_volume("config", "redis", ["redis.conf"])]},
                },
                "volumeClaimTemplates": [{
                    "metadata": {"name": "data", "labels": kube.labels(p, REDIS_COMPONENT)},
                    "spec": {"accessModes": ["ReadWriteOnce"],
                             "storageClassName": kube.storage_class_name(platform.storage_class),
                             "resources": {"requests": {"storage": q.redis_storage_size}}},
                }],
            },
            opts=kube.opts(self))

        probe = kube.exec_probe(q.effective_probe_command, period=30, failures=3, timeout=10)
        worker_env = app_env(cfg, f"{p}-worker")
        worker_ports: list[dict[str, Any]] = []
        if cfg.uses_prometheus:
            worker_env.append({"name": "METRICS_PORT", "value": str(q.worker_metrics_port)})
            worker_ports.append({"name": "metrics", "containerPort": q.worker_metrics_port, "protocol": "TCP"})
        worker_container = {
            "name": "worker",
            "image": cfg.api.image,
            "imagePullPolicy": kube.PULL_POLICY,
            "command": q.effective_worker_command,
            "env": worker_env,
            "resources": q.worker_resources.as_k8s(),
            "securityContext": kube.container_security_context(),
            "readinessProbe": probe,
            "livenessProbe": probe,
            "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
        }
        if worker_ports:
            worker_container["ports"] = worker_ports
        k8s.apps.v1.Deployment(
            f"{name}-worker", metadata=wmeta("worker"),
            spec={
                # No "replicas": KEDA owns the count (see ModelServer for why).
                "selector": {"matchLabels": kube.selector(p, WORKER_COMPONENT)},
                "template": {
                    "metadata": {"labels": kube.labels(p, WORKER_COMPONENT)},
                    "spec": {"automountServiceAccountToken": False,
                             "securityContext": kube.pod_security_context(),
                             # Long enough for a job in flight to finish after SIGTERM.
                             "terminationGracePeriodSeconds": 120,
                             "containers": [worker_container],
                             "volumes": [kube.empty_dir("tmp")]},
                },
            },
            opts=kube.opts(self, migrations))

        if cfg.uses_prometheus:
            # Jobs that call the self-hosted model count in the same pending gauge as the API's requests, so
            # queued work wakes the model server too; Prometheus finds the worker pods through this Service.
            k8s.core.v1.Service(
                f"{name}-worker-metrics", metadata=wmeta("worker-metrics"),
                spec={"clusterIP": "None", "selector": kube.selector(p, WORKER_COMPONENT),
                      "ports": [{"name": "metrics", "port": q.worker_metrics_port, "targetPort": "metrics"}]},
                opts=kube.opts(self))
            service_monitor("worker", namespace, p, WORKER_COMPONENT, "metrics", "/metrics", self,
                            monitoring_deps or [], platform.monitor_labels)
        address = pulumi.Output.from_input(namespace).apply(lambda ns: f"redis.{ns}.svc.cluster.local:6379")
        spec = {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "worker"},
            "minReplicaCount": q.worker_min_replicas,
            "maxReplicaCount": q.worker_max_replicas,
            "pollingInterval": 10,
            "cooldownPeriod": 300,
            "triggers": [{
                "type": "redis",
                "name": "queue-length",
                "metadata": {
                    "address": address,
                    # arq keeps its queue in a sorted set, celery in a list; KEDA's redis scaler reads the
                    # length of list, set, hash and zset keys alike (kedacore/keda#1013, KEDA 2.0+).
                    "listName": q.effective_queue_name,
                    "listLength": str(q.jobs_per_worker),
                    "activationListLength": "0",
                    "databaseIndex": "0",
                    # Resolved by KEDA from the worker container's env (a secretKeyRef), so no TriggerAuthentication.
                    "passwordFromEnv": "REDIS_PASSWORD",
                },
            }],
        }
        k8s.apiextensions.CustomResource(
            f"{name}-worker-scaledobject", api_version="keda.sh/v1alpha1", kind="ScaledObject",
            metadata=wmeta("worker"), spec=spec, opts=kube.opts(self, keda_deps))
        self.register_outputs({"redis": "redis", "worker": "worker"})

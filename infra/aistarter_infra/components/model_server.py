"""ModelServer: vLLM on the GPU pool, scaled by KEDA on the API's pending-request gauge (wakes from zero)."""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from .. import kube
from ..cluster import PlatformOutputs
from ..config import AppStackConfig
from .api import service_monitor

COMPONENT = "model-server"
NAME = "model-server"
# The API's gauge (one series per model) that the ScaledObject reads; vLLM's own metrics vanish at zero replicas.
PENDING_METRIC = "aistarter_model_pending_requests"
PRESTOP_SLEEP_S = 10
# preStop sleep (endpoints drain) + up to two minutes for in-flight generations to finish.
TERMINATION_GRACE_S = 130


def pending_query(model: str, namespace: str = "", service: str = "api") -> str:
    """sum() across API replicas and workers: each reports only the requests it holds.

    Before the first request for a model its gauge does not exist yet. That reads as 0 only while Prometheus
    is scraping the API successfully (`up == 1`); with no scrape at all (a ServiceMonitor Prometheus does not
    select, a down target) the query is empty, KEDA reports an error (ignoreNullValues false) and the
    ScaledObject's fallback keeps one replica, instead of `or vector(0)` reading a blind spot as "idle".
    """
    escaped = model.replace("\\", "\\\\").replace('"', '\\"')
    scope = f'namespace="{namespace}",service="{service}"' if namespace else f'service="{service}"'
    return f'sum({PENDING_METRIC}{{model="{escaped}"}}) or (0 * (max(up{{{scope}}}) == 1))'


class ModelServer(pulumi.ComponentResource):
    """vLLM Deployment + Service + KEDA ScaledObject (idle at 0 replicas when scale_to_zero)."""

    def __init__(self, name: str, cfg: AppStackConfig, namespace: pulumi.Input[str], platform: PlatformOutputs,
                 keda_deps: list[pulumi.Resource] | None = None,
                 monitoring_deps: list[pulumi.Resource] | None = None,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("aistarter:app:ModelServer", name, None, opts)
        ms = cfg.model_server
        assert ms is not None, "ModelServer needs cfg.model_server"
        p = cfg.project

        def meta(n: str) -> dict[str, Any]:
            return kube.metadata(n, namespace, p, COMPONENT)
        gpus = str(ms.tensor_parallel)

        pcfg = pulumi.Config()
        hf_token = pcfg.get_secret("hf_token")
        if hf_token is not None:
            k8s.core.v1.Secret(f"{name}-hf-token", metadata=meta("hf-token"), type="Opaque",
                               string_data={"token": hf_token}, opts=kube.opts(self))

        storage_class = kube.storage_class_name(ms.cache_storage_class or platform.storage_class)
        claim_templates: list[dict[str, Any]] = []
        if ms.cache_mode == "shared":
            # One ReadWriteMany claim shared by every replica: the model downloads once for the whole fleet.
            k8s.core.v1.PersistentVolumeClaim(
                f"{name}-cache", metadata=meta(f"{NAME}-cache"),
                spec={"accessModes": ["ReadWriteMany"], "storageClassName": storage_class,
                      "resources": {"requests": {"storage": ms.cache_size}}},
                opts=kube.opts(self))
            cache_volume: dict[str, Any] | None = {"name": "model-cache",
                                            "persistentVolumeClaim": {"claimName": f"{NAME}-cache"}}
        elif ms.cache_mode == "per-replica":
            # A StatefulSet claim per replica: it outlives scale to zero, so a wake loads the weights from disk
            # instead of downloading them again (~145 GB for the large model).
            claim_templates = [{
                "metadata": {"name": "model-cache", "labels": kube.labels(p, COMPONENT)},
                "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": storage_class,
                         "resources": {"requests": {"storage": ms.cache_size}}}}]
            cache_volume = None
        else:
            # A claim per pod (generic ephemeral volume): works with any ReadWriteOnce block class and any replica
            # count, at the price of a fresh download on each cold start (counted in cold_start_s).
            cache_volume = {"name": "model-cache", "ephemeral": {"volumeClaimTemplate": {
                "metadata": {"labels": kube.labels(p, COMPONENT)},
                "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": storage_class,
                         "resources": {"requests": {"storage": ms.cache_size}}}}}}

        args = ["--model", ms.model, "--served-model-name", ms.model, "--host", "0.0.0.0",
                "--port", str(ms.port), "--tensor-parallel-size", gpus, "--download-dir", "/models",
                "--gpu-memory-utilization", f"{ms.gpu_memory_utilization:.2f}"]
        if ms.max_model_len:
            args += ["--max-model-len", str(ms.max_model_len)]
        if ms.max_num_seqs:
            args += ["--max-num-seqs", str(ms.max_num_seqs)]
        env: list[dict[str, Any]] = [
            # Read-only root FS: every cache vLLM, HF, torch and triton write goes to mounted volumes.
            {"name": "HOME", "value": "/tmp/home"},
            # The UID has no passwd entry; torch/triton call getpass.getuser(), which reads USER first.
            {"name": "USER", "value": "vllm"},
            {"name": "TORCHINDUCTOR_CACHE_DIR", "value": "/tmp/cache/inductor"},
            {"name": "NUMBA_CACHE_DIR", "value": "/tmp/cache/numba"},
            {"name": "HF_HOME", "value": "/models/hf"},
            {"name": "XDG_CACHE_HOME", "value": "/tmp/cache"},
            {"name": "VLLM_CACHE_ROOT", "value": "/tmp/cache/vllm"},
            {"name": "TRITON_CACHE_DIR", "value": "/tmp/cache/triton"},
            {"name": "VLLM_NO_USAGE_STATS", "value": "1"},
            {"name": "DO_NOT_TRACK", "value": "1"},
        ]
        if hf_token is not None:
            env.append(kube.secret_env("HF_TOKEN", "hf-token", "token"))
        # Allow twice the planned cold start (node boot + image pull + download + load) before giving up.
        startup_failures = max(30, (2 * ms.cold_start_s) // 10)
        container = {
            "name": "vllm",
            "image": ms.image,
            "imagePullPolicy": kube.PULL_POLICY,
            "args": args,
            "env": env,
            "ports": [{"name": "http", "containerPort": ms.port, "protocol": "TCP"}],
            "resources": ms.resources.as_k8s({"nvidia.com/gpu": gpus}),
            "securityContext": kube.container_security_context(),
            "startupProbe": kube.http_probe("/health", "http", period=10, failures=startup_failures, timeout=5),
            "readinessProbe": kube.http_probe("/health", "http", period=5, failures=3, timeout=5),
            "livenessProbe": kube.http_probe("/health", "http", period=15, failures=4, timeout=10),
            "lifecycle": {"preStop": {"sleep": {"seconds": PRESTOP_SLEEP_S}}},
            "volumeMounts": [
                {"name": "dshm", "mountPath": "/dev/shm"},
                {"name": "model-cache", "mountPath": "/models"},
                {"name": "tmp", "mountPath": "/tmp"},
            ],
        }
        taint_key = platform.gpu_taint_key
        toleration = {"key": taint_key, "operator": "Equal", "value": platform.gpu_taint_value,
                      "effect": platform.gpu_taint_effect}
        node_selector = pulumi.Output.all(platform.gpu_pool_label_key, platform.gpu_pool_label_value).apply(
            lambda kv: {kv[0]: kv[1]})
        volumes = [
            # Tensor-parallel workers exchange tensors through shared memory (NCCL).
            kube.empty_dir("dshm", ms.shm_size, medium="Memory"),
            *([cache_volume] if cache_volume is not None else []),
            kube.empty_dir("tmp", "4Gi"),
        ]
        # Pulumi waits for ready replicas, by default 10 minutes. A warm floor needs a GPU node, the ~10 GB image
        # and the weights first: wait as long as the startup probe allows (twice the planned cold start) plus
        # node provisioning. At zero nothing becomes ready on purpose (KEDA wakes it on demand), so skip the wait.
        wait_min = 10 + (2 * ms.cold_start_s + 59) // 60
        if ms.scale_to_zero:
            annotations = {"pulumi.com/skipAwait": "true"}
            timeouts = None
        else:
            annotations = {}
            timeouts = pulumi.CustomTimeouts(create=f"{wait_min}m", update=f"{wait_min}m")
        workload_opts = pulumi.ResourceOptions(parent=self, custom_timeouts=timeouts)
        spec: dict[str, Any] = {
            # No "replicas": KEDA's HPA owns the count. With server-side apply a value here would be
            # re-applied by every `pulumi up` and reset a scaled-up (or scaled-to-zero) fleet.
            "revisionHistoryLimit": 3,
            "selector": {"matchLabels": kube.selector(p, COMPONENT)},
        }
        if claim_templates:
            # A StatefulSet rolls one replica at a time and cannot surge; for a large model a surge is not possible
            # anyway: it would need a second whole multi-GPU node, and the claim is ReadWriteOnce.
            spec.update({"serviceName": f"{NAME}-headless", "podManagementPolicy": "Parallel",
                         "updateStrategy": {"type": "RollingUpdate"},
                         "persistentVolumeClaimRetentionPolicy": {"whenDeleted": "Retain", "whenScaled": "Retain"},
                         "volumeClaimTemplates": claim_templates})
        else:
            # Surge one replica, never drop one: a warm single replica stays serving until its successor is
            # Ready (the GPU pool's autoscaler adds a node for the surge, then removes it).
            spec["strategy"] = {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}}
        spec["template"] = {
                    "metadata": {"labels": kube.labels(p, COMPONENT)},
                    "spec": {
                        "automountServiceAccountToken": False,
                        "securityContext": kube.pod_security_context(),
                        "terminationGracePeriodSeconds": TERMINATION_GRACE_S,
                        "nodeSelector": node_selector,
                        "tolerations": [toleration, *cfg.gpu_extra_tolerations],
                        "containers": [container],
                        "volumes": volumes,
                    },
                }
        self.kind = "StatefulSet" if claim_templates else "Deployment"
        if claim_templates:
            k8s.core.v1.Service(
                f"{name}-headless", metadata=meta(f"{NAME}-headless"),
                spec={"clusterIP": "None", "selector": kube.selector(p, COMPONENT),
                      "ports": [{"name": "http", "port": ms.port, "targetPort": "http", "protocol": "TCP"}]},
                opts=kube.opts(self))
            self.workload: pulumi.Resource = k8s.apps.v1.StatefulSet(
                f"{name}-statefulset", metadata=kube.metadata(NAME, namespace, p, COMPONENT, annotations),
                spec=spec, opts=workload_opts)
        else:
            self.workload = k8s.apps.v1.Deployment(
                f"{name}-deployment", metadata=kube.metadata(NAME, namespace, p, COMPONENT, annotations),
                spec=spec, opts=workload_opts)
        self.service = k8s.core.v1.Service(
            f"{name}-service", metadata=meta(NAME),
            spec={"type": "ClusterIP", "selector": kube.selector(p, COMPONENT),
                  "ports": [{"name": "http", "port": ms.port, "targetPort": "http", "protocol": "TCP"}]},
            opts=kube.opts(self),
        )
        scaled_spec: dict[str, Any] = {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": self.kind, "name": NAME},
            "minReplicaCount": ms.keda_min_replicas,
            "maxReplicaCount": ms.max_replicas,
            "pollingInterval": 15,
            "cooldownPeriod": ms.cooldown_s,
            "advanced": {"horizontalPodAutoscalerConfig": {"behavior": {
                "scaleDown": {"stabilizationWindowSeconds": 300,
                              "policies": [{"type": "Pods", "value": 1, "periodSeconds": 120}]}}}},
            "triggers": [{
                "type": "prometheus",
                "name": "pending-requests",
                "metricType": "AverageValue",
                "metadata": {
                    "serverAddress": ms.prometheus_url,
                    "query": pending_query(ms.model, cfg.namespace),
                    "threshold": str(ms.target_pending_per_replica),
                    # Any held request (> 0) activates the scaler and wakes the deployment from zero.
                    "activationThreshold": "0",
                    # An empty result is an error, not 0: see pending_query.
                    "ignoreNullValues": "false",
                },
            }],
            # While Prometheus cannot answer, keep one replica up rather than leave held requests asleep.
            "fallback": {"failureThreshold": 3, "replicas": max(1, ms.keda_min_replicas)},
        }
        if ms.scale_to_zero:
            scaled_spec["idleReplicaCount"] = 0
        self.scaled_object = k8s.apiextensions.CustomResource(
            f"{name}-scaledobject",
            api_version="keda.sh/v1alpha1",
            kind="ScaledObject",
            metadata=meta(NAME),
            spec=scaled_spec,
            opts=kube.opts(self, keda_deps),
        )
        if cfg.uses_prometheus:
            service_monitor(NAME, namespace, p, COMPONENT, "http", "/metrics", self, monitoring_deps or [],
                            platform.monitor_labels)
        self.register_outputs({"service": NAME})

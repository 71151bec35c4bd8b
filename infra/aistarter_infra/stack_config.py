"""STACK (the decision engine's JSON) -> the app stack's Pulumi config values.

The generated `infra/app/Pulumi.dev.yaml` is rendered by the template from the same STACK; aistarter's tests
compare the two so the template and this mapping cannot drift. Defaults that STACK does not decide (images of
data stores, sizes, chart versions) are here, each a tunable in the stack file.
"""

from __future__ import annotations

from typing import Any

from .config import (
    AddonsConfig,
    ApiConfig,
    IngressConfig,
    ModelServerConfig,
    QueueConfig,
    Resources,
    TelemetryConfig,
    VectorStoreConfig,
)
from .platform.spec import INGRESS_CLASS, LB_SOURCE_CIDRS

QDRANT_IMAGE = "qdrant/qdrant:v1.15.4-unprivileged"
API_IMAGE = "ghcr.io/your-org/{slug}:0.1.0"
KUBE_CONTEXT_PLACEHOLDER = "change-me"
AKS_SPOT_TOLERATION = {"key": "kubernetes.azure.com/scalesetpriority", "operator": "Equal", "value": "spot",
                       "effect": "NoSchedule"}


def _defaults(model: Any) -> dict[str, Any]:
    return model.model_dump(mode="json")


def _pick(values: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {k: values[k] for k in keys}


# Defaults the blueprint does not decide, written out so every tunable is visible in Pulumi.<stack>.yaml.
MS_DEFAULTS = {k: f.default for k, f in ModelServerConfig.model_fields.items()}
ADDON_DEFAULTS = _defaults(AddonsConfig())
VS_DEFAULTS = {"storage_size": VectorStoreConfig.model_fields["storage_size"].default}
Q_DEFAULTS = _defaults(QueueConfig(kind="arq"))
T_DEFAULTS = _defaults(TelemetryConfig())


def dns_label(slug: str) -> str:
    return slug.lower().replace("_", "-")


def model_server_resources(tensor_parallel: int) -> dict[str, str]:
    """Sized to fit the catalog's GPU nodes: a 1-GPU node (e.g. g6.xlarge: 4 vCPU, 16 GiB) or a multi-GPU one."""
    if tensor_parallel == 1:
        return {"cpu_request": "3", "cpu_limit": "4", "memory_request": "12Gi", "memory_limit": "12Gi"}
    return {"cpu_request": str(4 * tensor_parallel), "cpu_limit": str(6 * tensor_parallel),
            "memory_request": f"{24 * tensor_parallel}Gi", "memory_limit": f"{24 * tensor_parallel}Gi"}


def stack_to_config(stack: dict[str, Any], project_slug: str, latency_budget_ms: int = 2000,
                    platform_stack_env: str = "dev") -> dict[str, Any]:
    """Un-namespaced Pulumi config for the app stack (object values are dicts)."""
    slug = dns_label(project_slug)
    cloud = stack["cloud"]
    api = stack["api"]
    gateway = stack.get("gateway") or {}
    cfg: dict[str, Any] = {
        "namespace": slug,
        "cloud": cloud,
        "providers": list(gateway.get("providers") or ["openai"]),
        "api": {
            "image": API_IMAGE.format(slug=slug),
            "min_replicas": api["min_replicas"],
            "max_replicas": api["max_replicas"],
            "target_cpu_utilization": api.get("target_cpu_utilization", 70),
            "latency_budget_ms": latency_budget_ms,
            "auth": stack.get("auth", "api_key"),
            "metrics_port": ApiConfig.model_fields["metrics_port"].default,
            # One uvicorn worker per pod: the core it was measured on is requested whole (engine: api.cpu_cores).
            "resources": {**_defaults(Resources()), "cpu_request": str(api["cpu_cores"]),
                          "cpu_limit": str(api["cpu_cores"])},
            "ingress": {k: v for k, v in _defaults(IngressConfig()).items() if k != "allow_cidrs"},
        },
    }
    if cloud in INGRESS_CLASS:
        # The platform's load-balancer integration (components/ingress.py); its traffic comes from these ranges.
        cfg["api"]["ingress"].update(class_name=INGRESS_CLASS[cloud], allow_cidrs=list(LB_SOURCE_CIDRS[cloud]))
    ms = stack.get("model_server")
    gpu = stack.get("gpu")
    if gpu:
        cfg["gpu"] = {"accelerator": gpu["accelerator"], "gpus_per_node": gpu["gpus_per_node"]}
        if cloud == "azure" and gpu.get("spot"):
            # AKS taints every spot node by itself; without this toleration GPU pods stay Pending there.
            cfg["gpu"]["extra_tolerations"] = [AKS_SPOT_TOLERATION]
    if ms:
        tp = ms["tensor_parallel"]
        cfg["model_server"] = {
            "image": ms["image"],
            "model": ms["model"],
            "min_replicas": ms["min_replicas"],
            "max_replicas": ms["max_replicas"],
            "tensor_parallel": tp,
            "scale_to_zero": ms["scale_to_zero"],
            "target_pending_per_replica": ms["target_pending_per_replica"],
            "cold_start_s": ms["cold_start_s"],
            "max_model_len": ms.get("max_model_len", MS_DEFAULTS["max_model_len"]),
            "max_num_seqs": ms.get("max_num_seqs", MS_DEFAULTS["max_num_seqs"]),
            "gpu_memory_utilization": ms.get("gpu_memory_utilization", MS_DEFAULTS["gpu_memory_utilization"]),
            "shm_size": "2Gi" if tp == 1 else "8Gi",
            "resources": model_server_resources(tp),
            **_pick(MS_DEFAULTS, "cooldown_s", "prometheus_url"),
            "cache_size": f"{ms['cache_gi']}Gi",
            # large (sharded) models keep their weights on a claim per replica across scale to zero.
            "cache_mode": "per-pod" if tp == 1 else "per-replica",
        }
    if stack.get("vector_store", "none") != "none":
        kind = stack["vector_store"]
        # pgvector is an extension in the shared database: no store of its own.
        cfg["vector_store"] = ({"kind": kind, "image": QDRANT_IMAGE, "storage_size": VS_DEFAULTS["storage_size"]}
                               if kind == "qdrant" else {"kind": kind})
    if stack.get("task_queue", "none") != "none":
        cfg["queue"] = {"kind": stack["task_queue"],
                        **_pick(Q_DEFAULTS, "redis_image", "worker_min_replicas", "worker_max_replicas",
                                "jobs_per_worker")}
        if stack.get("queue"):  # sized by the decision engine to fill the model's batch
            cfg["queue"].update(worker_max_replicas=stack["queue"]["worker_max_replicas"],
                                jobs_per_worker=stack["queue"]["jobs_per_worker"])
    if stack.get("observability", "none") != "none":
        cfg["telemetry"] = {"backend": stack["observability"],
                            "drop_content_attributes": stack.get("trace_content") == "metadata",
                            **_pick(T_DEFAULTS, "collector_image", "exporter_endpoint")}
    cfg["prometheus_monitors"] = bool(ms)
    if cloud == "existing":
        platform: dict[str, Any] = {"kube_context": KUBE_CONTEXT_PLACEHOLDER, "storage_class": ""}
        if gpu:
            platform.update({
                "gpu_pool_label_key": gpu["pool_label_key"],
                "gpu_pool_label_value": gpu["pool_label_value"],
                "gpu_taint": dict(gpu["taint"]),
            })
        cfg["platform"] = platform
        # false: an external PostgreSQL named by the secret database_url; true: CloudNativePG makes one here.
        cfg["database"] = {"cloudnativepg": False}
    else:
        # The platform program is the Pulumi project "<project_slug>-platform" (infra/platform/Pulumi.yaml).
        cfg["platform"] = {"stack": f"organization/{project_slug}-platform/{platform_stack_env}"}
    # On aws, gcp and azure the platform stack installs every cluster-wide add-on; on an existing cluster each
    # is a switch (an existing cluster usually has Prometheus: point model_server.prometheus_url at it).
    existing = cloud == "existing"
    cfg["addons"] = {
        "install_keda": existing and (bool(ms) or stack.get("task_queue", "none") != "none"),
        "install_device_plugin": existing and bool(ms),
        "install_prometheus": False,
        **_pick(ADDON_DEFAULTS, "keda_chart_version", "device_plugin_chart_version", "prometheus_chart_version"),
    }
    return cfg


def gpu_pools_from_stack(stack: dict[str, Any], name: str = "gpu") -> list[dict[str, Any]]:
    """The GPU pool STACK describes, in the shape `validate.check_gpu_consistency` takes."""
    gpu = stack.get("gpu")
    if not gpu:
        return []
    taints = [dict(gpu["taint"])]
    if stack["cloud"] == "azure" and gpu.get("spot"):
        taints.append({k: AKS_SPOT_TOLERATION[k] for k in ("key", "value", "effect")})
    return [{"name": name, "labels": {gpu["pool_label_key"]: gpu["pool_label_value"]},
             "taints": taints, "gpus_per_node": gpu["gpus_per_node"]}]

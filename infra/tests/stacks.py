"""STACK fixtures in the decision engine's JSON shape (common.md contract), and a program-dir builder."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml
from aistarter_infra.stack_config import stack_to_config

INFRA_DIR = Path(__file__).resolve().parents[1]

_BASE: dict[str, Any] = {
    "framework": "fastapi",
    "streaming": "sse",
    "gateway": {"providers": ["openai"], "fallback": [], "retries": 2, "timeout_s": 30.0},
    "vector_store": "none",
    "task_queue": "none",
    "observability": "otel",
    "trace_content": "redacted",
    "usage_billing": "none",
    "auth": "api_key",
    "cloud": "aws",
    "api": {"min_replicas": 2, "max_replicas": 3, "autoscaler": "hpa", "metric": "cpu",
            "target_cpu_utilization": 70, "capacity_rps_per_replica": 82, "cpu_cores": 1,
            "burst_streams_per_replica": 128},
    "gpu": None,
    "model_server": None,
    "cost": None,
}


def _gpu(accelerator: str, gpus_per_node: int, instance_type: str | None, min_nodes: int = 0) -> dict[str, Any]:
    return {"accelerator": accelerator, "gpu_memory_gb": 24, "gpus_per_node": gpus_per_node,
            "instance_type": instance_type, "min_nodes": min_nodes, "max_nodes": 3, "spot": False,
            "pool_label_key": "aistarter.dev/pool", "pool_label_value": "gpu",
            "taint": {"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}}


def _model_server(tensor_parallel: int, scale_to_zero: bool = True, min_replicas: int = 0) -> dict[str, Any]:
    return {"engine": "vllm", "image": "vllm/vllm-openai:v0.11.0", "model": "Qwen/Qwen2.5-7B-Instruct",
            "min_replicas": min_replicas, "max_replicas": 3, "tensor_parallel": tensor_parallel,
            "scale_to_zero": scale_to_zero, "autoscaler": "keda", "metric": "aistarter_model_pending_requests",
            "target_pending_per_replica": 8, "cold_start_s": 300, "cache_gi": 20}


def make_stack(**changes: Any) -> dict[str, Any]:
    stack = copy.deepcopy(_BASE)
    stack.update(changes)
    return stack


# The three held-in examples of issue 5.
CHAT_NO_GPU = make_stack(streaming="sse", cloud="aws",
                         gateway={"providers": ["openai", "anthropic"], "fallback": ["openai", "anthropic"],
                                  "retries": 2, "timeout_s": 30.0})
RAG_SMALL_EXISTING = make_stack(
    cloud="existing", vector_store="qdrant",
    gateway={"providers": ["openai", "local"], "fallback": ["openai", "local"], "retries": 2, "timeout_s": 30.0},
    gpu=_gpu("nvidia-l4", 1, None), model_server=_model_server(1))
BATCH_LARGE = make_stack(
    streaming="none", cloud="gcp", task_queue="celery", observability="langfuse",
    gateway={"providers": ["local"], "fallback": [], "retries": 2, "timeout_s": 30.0},
    api={"min_replicas": 2, "max_replicas": 4, "autoscaler": "hpa", "metric": "cpu", "target_cpu_utilization": 70,
         "capacity_rps_per_replica": 82, "cpu_cores": 1, "burst_streams_per_replica": 128},
    gpu=_gpu("nvidia-l4", 4, "g2-standard-48"), model_server=_model_server(4))

HELD_IN = {"chat": CHAT_NO_GPU, "rag-small-existing": RAG_SMALL_EXISTING, "batch-large": BATCH_LARGE}

# Together with HELD_IN: every cloud, self_hosted none/small/large, vector store none/qdrant/pgvector and task
# queue none/arq/celery appear at least once; plus warm GPUs (no scale to zero) and no observability.
MATRIX = {
    **HELD_IN,
    "agents-azure-pgvector-arq": make_stack(
        cloud="azure", vector_store="pgvector", task_queue="arq", observability="phoenix", trace_content="metadata",
        gateway={"providers": ["anthropic", "local"], "fallback": ["anthropic", "local"], "retries": 2,
                 "timeout_s": 30.0},
        gpu=_gpu("nvidia-a10", 1, "Standard_NV36ads_A10_v5"), model_server=_model_server(1)),
    "rag-aws-warm-gpu": make_stack(
        cloud="aws", vector_store="pgvector", observability="none", auth="none",
        gateway={"providers": ["local"], "fallback": [], "retries": 2, "timeout_s": 30.0},
        gpu=_gpu("nvidia-l4", 4, "g6.12xlarge", min_nodes=1), model_server=_model_server(2, False, 1)),
    "chat-existing-no-gpu": make_stack(cloud="existing", observability="none",
                                       gateway={"providers": ["gemini"], "fallback": [], "retries": 2,
                                                "timeout_s": 30.0}),
}

APP_MAIN = '''"""Generated app stack (test copy)."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from aistarter_infra.program import main  # noqa: E402

main("{slug}")
'''


def write_program(root: Path, stack: dict[str, Any], slug: str = "demo", latency_budget_ms: int = 2000,
                  overrides: dict[str, Any] | None = None) -> Path:
    """A minimal infra/app program dir under root/infra/app that imports the library from this repo."""
    infra = root / "infra"
    app = infra / "app"
    app.mkdir(parents=True, exist_ok=True)
    lib = infra / "aistarter_infra"
    if not lib.exists():
        lib.symlink_to(INFRA_DIR / "aistarter_infra", target_is_directory=True)
    (app / "Pulumi.yaml").write_text(yaml.safe_dump({"name": f"{slug}-app", "runtime": "python",
                                                     "description": "test app stack"}))
    (app / "__main__.py").write_text(APP_MAIN.format(slug=slug))
    values = stack_to_config(stack, slug, latency_budget_ms)
    values.update(overrides or {})
    config = {f"{slug}-app:{k}": v for k, v in values.items()}
    (app / "Pulumi.dev.yaml").write_text(yaml.safe_dump({"config": config}, sort_keys=False))
    return app

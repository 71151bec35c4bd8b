"""The Blueprint: resolved answers, the chosen stack and the reason for every choice.

Its JSON form (`aistarter recommend --format json`) is a public contract: the template, the infra
library and portal integrations read it, so fields are only ever added, never renamed.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from .questions import Answers, Provider


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Decision(_Strict):
    criterion: str
    decision: str
    reason: str
    context: str
    rejected: list[str] = Field(default_factory=list, description="Alternatives considered, each with why not.")


class GatewayPlan(_Strict):
    providers: list[Provider]
    fallback: list[Provider] = Field(description="Ordered providers to try; empty when there is only one.")
    retries: int
    timeout_s: float = Field(description="Per-attempt time allowed until the first token.")


class ApiPlan(_Strict):
    min_replicas: int
    max_replicas: int
    autoscaler: Literal["hpa"] = "hpa"
    metric: Literal["cpu"] = "cpu"
    target_cpu_utilization: int
    capacity_rps_per_replica: int


class Taint(_Strict):
    key: str
    value: str
    effect: Literal["NoSchedule"]


class GpuPlan(_Strict):
    accelerator: str
    gpu_memory_gb: int
    gpus_per_node: int
    instance_type: str | None = Field(description="None on cloud=existing: the pool is already there.")
    min_nodes: int
    max_nodes: int
    spot: bool
    pool_label_key: str
    pool_label_value: str
    taint: Taint


class ModelServerPlan(_Strict):
    engine: Literal["vllm"] = "vllm"
    image: str
    model: str
    min_replicas: int
    max_replicas: int
    tensor_parallel: int
    scale_to_zero: bool
    autoscaler: Literal["keda"] = "keda"
    metric: str
    target_pending_per_replica: int
    cold_start_s: int
    # Model cache volume in GiB: the weights plus headroom (decide/scaling.py: model_cache_gi).
    cache_gi: int


class CostEstimate(_Strict):
    currency: Literal["USD"] = "USD"
    hourly_node_price: float
    planned_monthly: float
    always_on_monthly: float
    assumptions: str
    source: str
    as_of: str


class Stack(_Strict):
    framework: Literal["fastapi"] = "fastapi"
    streaming: Literal["sse", "websocket", "none"]
    gateway: GatewayPlan
    vector_store: Literal["none", "qdrant", "pgvector"]
    task_queue: Literal["none", "arq", "celery"]
    observability: Literal["otel", "langfuse", "phoenix", "none"]
    trace_content: Literal["full", "redacted", "metadata"]
    usage_billing: Literal["none", "metering", "stripe"]
    auth: Literal["api_key", "none"]
    cloud: Literal["aws", "gcp", "azure", "existing"]
    api: ApiPlan
    gpu: GpuPlan | None
    model_server: ModelServerPlan | None
    cost: CostEstimate | None


class Blueprint(_Strict):
    answers: Answers = Field(description="Every answer, with 'auto' resolved to the engine's choice.")
    stack: Stack
    rationale: list[Decision]

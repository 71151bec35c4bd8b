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
    consequences: list[str] = Field(default_factory=list, description="What follows from the decision, with numbers.")


class GatewayPlan(_Strict):
    providers: list[Provider]
    fallback: list[Provider] = Field(description="Ordered providers to try; empty when there is only one.")
    retries: int
    timeout_s: float = Field(description="Per-attempt time allowed until the first token.")
    ttft_p95_s: float = Field(0.0, description="Slowest first-token p95 class among the providers tried.")
    worst_case_s: float = Field(0.0, description="Every attempt timing out, with retries and their longest backoff.")


class ApiPlan(_Strict):
    min_replicas: int
    max_replicas: int
    autoscaler: Literal["hpa"] = "hpa"
    metric: Literal["cpu"] = "cpu"
    target_cpu_utilization: int
    capacity_rps_per_replica: int
    cpu_cores: int  # the pod's CPU request and limit: one uvicorn worker
    burst_streams_per_replica: int  # streams arriving at once that one replica answers within 1 s


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


class MemoryFit(_Strict):
    gpu_memory_gb: float
    usable_gb_per_gpu: float = Field(description="gpu_memory_utilization x GPU memory.")
    runtime_overhead_gb_per_gpu: float
    weights_gb: float
    kv_bytes_per_token: int
    kv_room_gb: float = Field(description="Across the shard group, after weights and overhead.")
    kv_tokens: int
    needed_kv_tokens: int = Field(description="One max_model_len request plus the rest of the batch at p50 length.")


class Throughput(_Strict):
    prompt_tokens: int
    output_tokens: int
    batch: int
    limited_by: Literal["kv", "latency", "cap"]
    rps_per_replica: float
    output_tokens_per_s_per_replica: float
    tpot_ms: float
    ttft_idle_ms: float
    ttft_loaded_ms: float
    band: float = Field(description="Relative error band from the calibration table (0.25 = ±25%).")


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
    catalog_model: str = ""
    precision: str = ""
    max_model_len: int = 0
    max_num_seqs: int = 256
    gpu_memory_utilization: float = 0.9
    cache_gi: int = 100
    memory: MemoryFit | None = None
    throughput: Throughput | None = None


class CostEstimate(_Strict):
    currency: Literal["USD"] = "USD"
    hourly_node_price: float
    planned_monthly: float
    always_on_monthly: float
    assumptions: str
    source: str
    as_of: str
    gpu_monthly: float = 0.0
    gpu_warm_monthly: float = 0.0
    gpu_burst_monthly: float = 0.0
    database_monthly: float = 0.0
    load_balancer_monthly: float = 0.0
    hosted_tokens_monthly: float = Field(0.0, description="Token cost at avg_rps on the primary hosted provider.")
    hosted_model: str = ""
    monthly_tokens_m: float = Field(0.0, description="Millions of tokens (prompt + output) a month at avg_rps.")
    usd_per_1m_tokens: float | None = Field(None, description="Self-hosted: planned GPU cost / tokens served.")
    usd_per_1m_tokens_at_capacity: float | None = None
    break_even_utilization: float | None = Field(
        None, description="Self-hosted: GPU utilisation at which it costs the same as the cheapest hosted model of "
        "its class (above 1 means never).")
    break_even_against: str = ""
    band: float = 0.0


class FeasibilityWarning(_Strict):
    check: Literal["latency", "context", "memory", "node-cap", "timeouts"]
    message: str = Field(description="What fails and by how much.")
    fixes: list[str] = Field(description="Ranked: the first is the cheapest fix that works.")


class QueuePlan(_Strict):
    in_flight: int = Field(description="Jobs the workers run at once: enough to fill the model's batch.")
    worker_concurrency: int = Field(description="Jobs one worker process runs at once (async I/O).")
    worker_max_replicas: int
    jobs_per_worker: int = Field(description="Queued jobs per worker replica before KEDA adds one.")


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
    queue: QueuePlan | None = None


class Blueprint(_Strict):
    answers: Answers = Field(description="Every answer, with 'auto' resolved to the engine's choice.")
    stack: Stack
    rationale: list[Decision]
    warnings: list[FeasibilityWarning] = Field(default_factory=list,
                                               description="Feasibility problems; --strict exits 2.")

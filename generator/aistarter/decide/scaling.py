"""Criterion 4, scaling: spiky GPU demand; pay for power only when needed.

The rules are small on purpose and hold three monotonicity properties (tested with hypothesis):
more peak_rps never lowers capacity, a tighter latency budget never lowers warm GPU capacity,
and moving toward `cost` never raises warm GPU capacity.
"""

from __future__ import annotations

import math

from .. import catalog
from ..blueprint import ApiPlan, CostEstimate, Decision, GpuPlan, ModelServerPlan, Taint
from ..questions import Answers

API_MIN_REPLICAS = 2  # two keep a rolling update or a node drain from dropping open streams
HEADROOM = {"steady": 1.5, "spiky": 2.0}
WARM_MODEL_REPLICAS = {"latency": 2, "balanced": 1, "cost": 1}
PENDING_PER_REPLICA = 8  # waiting requests per vLLM replica before KEDA adds one


def api_plan(answers: Answers) -> ApiPlan:
    needed = math.ceil(answers.peak_rps * HEADROOM[answers.traffic] / catalog.API_REPLICA_RPS)
    return ApiPlan(
        min_replicas=API_MIN_REPLICAS,
        max_replicas=max(API_MIN_REPLICAS + 1, needed),
        target_cpu_utilization=catalog.API_TARGET_CPU,
        capacity_rps_per_replica=catalog.API_REPLICA_RPS,
    )


def cold_start_s(answers: Answers) -> int:
    if answers.self_hosted == "none":
        return 0
    return catalog.NODE_BOOT_S + catalog.IMAGE_PULL_S + catalog.MODEL_LOAD_S[answers.self_hosted]


def cost_wants_zero(answers: Answers) -> bool:
    return answers.cost_priority == "cost" or (answers.cost_priority == "balanced" and answers.traffic == "spiky")


def scale_to_zero(answers: Answers) -> bool:
    return cost_wants_zero(answers) and answers.latency_budget_ms >= cold_start_s(answers) * 1000


def model_server_plan(answers: Answers) -> ModelServerPlan | None:
    if answers.self_hosted == "none":
        return None
    size = answers.self_hosted
    offer = catalog.GPU_OFFERS[(answers.cloud, size)]
    zero = scale_to_zero(answers)
    warm = 0 if zero else WARM_MODEL_REPLICAS[answers.cost_priority]
    peak = math.ceil(answers.peak_rps * HEADROOM[answers.traffic] / catalog.MODEL_REPLICA_RPS[size])
    return ModelServerPlan(
        image=catalog.VLLM_IMAGE,
        model=catalog.MODELS[size],
        min_replicas=warm,
        max_replicas=max(1, warm, peak),
        # small fits one GPU; large shards across every GPU of one node so tensor-parallel traffic stays on NVLink
        tensor_parallel=1 if size == "small" else offer.gpus_per_node,
        scale_to_zero=zero,
        # vLLM's own metrics vanish at zero replicas, so the gateway's pending-request gauge is the wake signal
        metric="aistarter_model_pending_requests",
        target_pending_per_replica=PENDING_PER_REPLICA,
        cold_start_s=cold_start_s(answers),
        cache_gi=model_cache_gi(size),
    )


def model_cache_gi(size: catalog.Size) -> int:
    """Weights plus a quarter for the hub's temporary download files and tokenizer/config, plus 10 GiB for
    vLLM's compile caches; rounded up to 10 GiB so volume sizes stay readable."""
    gib = catalog.MODEL_WEIGHTS_GB[size] * 1e9 / 2**30
    return int(math.ceil((gib * 1.25 + 10) / 10) * 10)


def gpu_plan(answers: Answers, server: ModelServerPlan | None) -> GpuPlan | None:
    if server is None or answers.self_hosted == "none":
        return None
    offer = catalog.GPU_OFFERS[(answers.cloud, answers.self_hosted)]
    replicas_per_node = offer.gpus_per_node // server.tensor_parallel
    key, value, effect = catalog.GPU_TAINT
    return GpuPlan(
        accelerator=offer.accelerator,
        gpu_memory_gb=offer.gpu_memory_gb,
        gpus_per_node=offer.gpus_per_node,
        instance_type=offer.instance_type,
        min_nodes=math.ceil(server.min_replicas / replicas_per_node),
        max_nodes=math.ceil(server.max_replicas / replicas_per_node),
        spot=answers.cost_priority == "cost",
        pool_label_key=catalog.GPU_POOL_LABEL[0],
        pool_label_value=catalog.GPU_POOL_LABEL[1],
        taint=Taint(key=key, value=value, effect=effect),  # type: ignore[arg-type]
    )


def cost_estimate(answers: Answers, gpu: GpuPlan | None) -> CostEstimate | None:
    if gpu is None:
        return None
    offer = catalog.GPU_OFFERS[(answers.cloud, answers.self_hosted)]  # type: ignore[index]
    if offer.hourly_usd is None:
        return None
    price = offer.hourly_usd * (catalog.SPOT_PRICE_FRACTION if gpu.spot else 1.0)
    busy = catalog.BUSY_FRACTION[answers.traffic]
    hours = catalog.HOURS_PER_MONTH
    planned = price * (gpu.min_nodes * hours + (gpu.max_nodes - gpu.min_nodes) * hours * busy)
    spot = f"spot at {catalog.SPOT_PRICE_FRACTION:.0%} of list; " if gpu.spot else ""
    always_on = offer.hourly_usd * gpu.max_nodes * hours
    return CostEstimate(
        hourly_node_price=round(price, 3),
        # whole dollars: estimates carry no cents, and every renderer (Jinja, nunjucks) prints an integer the same way
        planned_monthly=float(math.floor(planned + 0.5)),
        always_on_monthly=float(math.floor(always_on + 0.5)),
        assumptions=f"{gpu.min_nodes} warm node(s) all month; nodes above that busy {busy:.0%} of hours "
        f"({answers.traffic} traffic); {spot}"
        f"always-on = {gpu.max_nodes} on-demand node(s) sized for peak, never scaled down",
        source=catalog.PRICE_SOURCE,
        as_of=catalog.PRICE_AS_OF,
    )


def decide(answers: Answers, api: ApiPlan, server: ModelServerPlan | None, gpu: GpuPlan | None,
           cost: CostEstimate | None) -> Decision:
    api_text = (
        f"API: HPA on CPU at {api.target_cpu_utilization}%, {api.min_replicas}-{api.max_replicas} replicas "
        f"(peak {answers.peak_rps} rps x {HEADROOM[answers.traffic]} headroom / {api.capacity_rps_per_replica} rps "
        f"per replica)"
    )
    if server is None or gpu is None:
        return Decision(
            criterion="scaling",
            decision=api_text + "; no GPUs (models are called through hosted APIs)",
            reason="Without self-hosted models the backend is I/O-bound, so cheap CPU replicas scale with traffic "
            "and GPU spend is the provider's per-token price.",
            context=f"peak_rps={answers.peak_rps}, traffic={answers.traffic}, self_hosted=none",
            rejected=["a GPU pool: nothing to run on it"],
        )
    cold = server.cold_start_s
    if server.scale_to_zero:
        zero = (f"vLLM and its GPU nodes scale to zero; the gateway's pending-request gauge wakes them through KEDA, "
                f"and requests wait up to the {answers.latency_budget_ms} ms budget (cold start ~{cold} s)")
    elif cost_wants_zero(answers):
        zero = (f"scale to zero refused: a cold start (~{cold} s: node boot {catalog.NODE_BOOT_S} s + image pull "
                f"{catalog.IMAGE_PULL_S} s + model load {catalog.MODEL_LOAD_S[answers.self_hosted]} s) exceeds the "
                f"{answers.latency_budget_ms} ms budget, so {server.min_replicas} warm replica(s) stay")
    else:
        zero = f"{server.min_replicas} warm replica(s) stay up (cost_priority={answers.cost_priority})"
    cost_text = (
        f"; estimated GPU cost ${cost.planned_monthly:,.0f}/month vs ${cost.always_on_monthly:,.0f}/month always-on"
        if cost else ""
    )
    where = gpu.instance_type or "your existing GPU pool"
    return Decision(
        criterion="scaling",
        decision=(
            f"{api_text}; GPU pool of {where} ({gpu.gpus_per_node}x {gpu.accelerator}, {gpu.gpu_memory_gb} GB each), "
            f"{gpu.min_nodes}-{gpu.max_nodes} nodes{', spot' if gpu.spot else ''}, tainted "
            f"{gpu.taint.key}={gpu.taint.value}:{gpu.taint.effect}; vLLM {server.model} with tensor_parallel "
            f"{server.tensor_parallel}, {server.min_replicas}-{server.max_replicas} replicas scaled by KEDA on waiting "
            f"requests ({server.target_pending_per_replica} per replica); {zero}{cost_text}"
        ),
        reason="GPU demand is spiky and GPUs are the bill: queue depth says when a replica is needed before "
        "utilisation does, and nodes only run while replicas need them.",
        context=f"self_hosted={answers.self_hosted}, cost_priority={answers.cost_priority}, traffic={answers.traffic}, "
        f"latency_budget_ms={answers.latency_budget_ms}, cloud={answers.cloud}",
        rejected=[
            "scaling vLLM on GPU utilisation: a saturated GPU looks the same at 1 and 100 waiting requests",
            "always-on GPU nodes sized for peak: pays for idle power",
        ],
    )

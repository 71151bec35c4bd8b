"""Criterion 4, scaling: spiky GPU demand; pay for power only when needed.

Sizing (decide/sizing.py) gives each node type's memory fit and per-replica capacity; this module picks the
cheapest node type that fits, then sizes the warm floor, the burst ceiling, the autoscaler target and the cost.
Properties (tested with hypothesis): more traffic or more tokens never lower capacity, a tighter latency budget
never lowers warm GPUs, moving toward `cost` never raises them, and a plan never exceeds GPU memory.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .. import catalog
from ..blueprint import (
    ApiPlan,
    CostEstimate,
    Decision,
    GpuPlan,
    MemoryFit,
    ModelServerPlan,
    QueuePlan,
    Taint,
    Throughput,
)
from ..catalog import Gpu, Instance, Model
from ..questions import Answers
from . import sizing

API_MIN_REPLICAS = 2  # two keep a rolling update or a node drain from dropping open streams
HEADROOM = {"steady": 1.5, "spiky": 2.0}  # API only: CPU replicas are cheap, and HPA reacts in seconds
TARGET_UTILIZATION = 0.8  # model replicas are planned at 80% of their sustained rate: queues stay short
# How fast load can move from average to peak: a diurnal ramp for steady traffic, a minute for spiky.
RAMP_S = {"steady": 3600, "spiky": 60}
# Scale-out events a month that each bill a node's minimum run (planning figure: one a day vs one an hour).
BURSTS_PER_MONTH = {"steady": 30, "spiky": 720}
COOLDOWN_S = 600  # KEDA cooldown before scaling a replica away (infra ModelServerConfig.cooldown_s)
NODE_CAP = 100  # more GPU nodes than this for one model is a plan to rethink, not to apply
TOKENS_BY_USE_CASE = {"chat": (800, 300), "rag": (3000, 300), "agents": (4000, 500), "batch": (1500, 500)}
SECONDS_PER_MONTH = catalog.HOURS_PER_MONTH * 3600


def tokens(answers: Answers) -> tuple[int, int]:
    prompt, output = TOKENS_BY_USE_CASE[answers.use_case]
    p = prompt if answers.prompt_tokens_p50 == "auto" else int(answers.prompt_tokens_p50)
    o = output if answers.output_tokens_p50 == "auto" else int(answers.output_tokens_p50)
    return p, o


def avg_rps(answers: Answers) -> float:
    if answers.avg_rps != "auto":
        return float(answers.avg_rps)
    return answers.peak_rps * (0.5 if answers.traffic == "steady" else 0.1)


def wanted_context(answers: Answers) -> int:
    """max_context_tokens, or auto: room for 2x the typical request, at least 8k, in powers of two."""
    if answers.max_context_tokens != "auto":
        return int(answers.max_context_tokens)
    prompt, output = tokens(answers)
    return max(8192, 2 ** math.ceil(math.log2(2 * (prompt + output))))


def api_plan(answers: Answers) -> ApiPlan:
    needed = math.ceil(answers.peak_rps * HEADROOM[answers.traffic] / catalog.API_REPLICA_RPS)
    return ApiPlan(
        min_replicas=API_MIN_REPLICAS,
        max_replicas=max(API_MIN_REPLICAS + 1, needed),
        target_cpu_utilization=catalog.API_TARGET_CPU,
        capacity_rps_per_replica=catalog.API_REPLICA_RPS,
        cpu_cores=catalog.API_CPU_CORES,
        burst_streams_per_replica=catalog.GATEWAY_BURST_STREAMS,
    )


# --- node choice ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Option:
    """One node type sized for the answers."""

    instance: Instance
    gpu: Gpu
    fit: sizing.Fit
    cap: sizing.Capacity
    replicas_per_node: int
    peak_replicas: int
    peak_nodes: int
    fits: bool

    @property
    def node_rps(self) -> float:
        return self.cap.rps * self.replicas_per_node

    @property
    def peak_monthly(self) -> float:
        return self.peak_nodes * self.instance.on_demand_usd * catalog.HOURS_PER_MONTH


def model_of(answers: Answers) -> tuple[Model, str]:
    size = answers.self_hosted if answers.self_hosted != "none" else "small"
    model = catalog.model_for(answers.model, size)
    return model, catalog.precision_for(model, answers.precision)


def max_model_len(answers: Answers, model: Model) -> int:
    return min(wanted_context(answers), model.native_context)


def existing_instance(answers: Answers) -> Instance:
    # auto: what the first engine assumed an existing cluster has for each size
    auto = ("nvidia-a100-80gb", 4) if answers.self_hosted == "large" else ("nvidia-l4", 1)
    gpu, count = auto if answers.existing_gpus == "auto" else answers.existing_gpus.split(":")
    return Instance(cloud="existing", region="", instance_type="", gpu=gpu, gpus_per_node=int(count),
                    on_demand_usd=0.0, source="your cluster", as_of="", kind="measured")


def size_option(answers: Answers, instance: Instance, model: Model, precision: str, peak: float | None = None
                ) -> Option:
    """The shard group (tensor-parallel degree) that serves peak on the fewest nodes, then the smallest.

    Not simply the smallest that fits: that one can leave too little KV room for a useful batch (a 72B model at
    tp=2 on 94 GB GPUs batches a quarter of what tp=8 on 40 GB GPUs does), and then a bigger GPU needed more nodes.
    """
    gpu = catalog.gpus()[instance.gpu]
    prompt, output = tokens(answers)
    length = max_model_len(answers, model)
    fits = sizing.memory_fits(model, precision, gpu, instance.gpus_per_node, length, prompt + output)
    if not fits:  # the largest shard group the node allows, so the plan still says how far off it is
        tp = max(t for t in sizing.TP_DEGREES if t <= instance.gpus_per_node and model.kv_heads % t == 0)
        return _sized(answers, instance, gpu, model, precision, sizing.fit_at(model, precision, gpu, tp, length,
                                                                               prompt + output), False, peak)
    sized = [_sized(answers, instance, gpu, model, precision, fit, True, peak) for fit in fits]
    return min(sized, key=lambda o: (o.peak_nodes, o.fit.tp))


def _sized(answers: Answers, instance: Instance, gpu: Gpu, model: Model, precision: str, fit: sizing.Fit,
           fits: bool, peak: float | None) -> Option:
    prompt, output = tokens(answers)
    length = max_model_len(answers, model)
    cap = sizing.capacity(model, precision, gpu, fit.tp, prompt, output, max(fit.kv_tokens, length), length,
                          sizing.tpot_target_s(answers.use_case))
    per_node = instance.gpus_per_node // fit.tp
    rate = answers.peak_rps if peak is None else peak
    replicas = max(1, math.ceil(rate / (cap.rps * TARGET_UTILIZATION)))
    return Option(instance=instance, gpu=gpu, fit=fit, cap=cap, replicas_per_node=per_node,
                  peak_replicas=replicas, peak_nodes=math.ceil(replicas / per_node), fits=fits)


def options(answers: Answers, model: Model, precision: str) -> list[Option]:
    if answers.cloud == "existing":
        return [size_option(answers, existing_instance(answers), model, precision)]
    region = None if answers.region == "auto" else answers.region
    return [size_option(answers, i, model, precision) for i in catalog.offers(answers.cloud, region)
            if precision in model.weights]


def choose(answers: Answers) -> Option | None:
    """The node type that serves peak for the least money (then fewest GPUs); one that fits beats one that doesn't."""
    if answers.self_hosted == "none":
        return None
    model, precision = model_of(answers)
    found = options(answers, model, precision)
    return min(found, key=lambda o: (not o.fits, o.peak_monthly, o.peak_nodes * o.instance.gpus_per_node,
                                     -o.gpu.memory_gb))


# --- warm floor, scale to zero ----------------------------------------------------------------------------------


def cold_start_s(answers: Answers) -> int:
    if answers.self_hosted == "none":
        return 0
    model, precision = model_of(answers)
    return sum(sizing.cold_start_parts(model, precision).values())


def cost_wants_zero(answers: Answers) -> bool:
    return answers.cost_priority == "cost" or (answers.cost_priority == "balanced" and answers.traffic == "spiky")


def idle_gap_s(answers: Answers) -> float:
    """Expected gap between requests at the average rate (Poisson arrivals)."""
    rate = avg_rps(answers)
    return math.inf if rate <= 0 else 1 / rate


def zero_needs_s(answers: Answers) -> float:
    return COOLDOWN_S + catalog.NODE_SCALE_DOWN_S + cold_start_s(answers)


def scale_to_zero(answers: Answers) -> bool:
    return (cost_wants_zero(answers) and answers.latency_budget_ms >= cold_start_s(answers) * 1000
            and idle_gap_s(answers) > zero_needs_s(answers))


def hosted_fallback(answers: Answers) -> bool:
    return any(p != "local" for p in answers.providers)


def load_within_cold_start(answers: Answers) -> float:
    """The rate the warm floor must carry: load can climb from average toward peak during one cold start."""
    avg = avg_rps(answers)
    return avg + (answers.peak_rps - avg) * min(1.0, cold_start_s(answers) / RAMP_S[answers.traffic])


def floor_rps(answers: Answers) -> float:
    if answers.cost_priority == "latency":
        return answers.peak_rps
    if answers.cost_priority == "cost" and hosted_fallback(answers):
        return avg_rps(answers)  # a burst spills to the hosted fallback while nodes start
    return load_within_cold_start(answers)


def model_server_plan(answers: Answers, option: Option | None = None) -> ModelServerPlan | None:
    option = option or choose(answers)
    if option is None:
        return None
    model, precision = model_of(answers)
    cap, fit = option.cap, option.fit
    zero = scale_to_zero(answers)
    per_replica = cap.rps * TARGET_UTILIZATION
    warm = 0 if zero else max(1, math.ceil(floor_rps(answers) / per_replica))
    band = sizing.calibration_band()
    prompt, output = tokens(answers)
    return ModelServerPlan(
        image=catalog.VLLM_IMAGE,
        model=model.weights[precision].repo,
        min_replicas=warm,
        max_replicas=max(1, warm, option.peak_replicas),
        tensor_parallel=fit.tp,
        scale_to_zero=zero,
        # vLLM's own metrics vanish at zero replicas, so the gateway's pending-request gauge is the wake signal
        metric="aistarter_model_pending_requests",
        # Little's law: a replica at its planned rate holds rate x latency = batch x utilisation requests
        target_pending_per_replica=max(1, math.floor(cap.batch * TARGET_UTILIZATION)),
        cold_start_s=cold_start_s(answers),
        catalog_model=model.name,
        precision=precision,
        max_model_len=max_model_len(answers, model),
        max_num_seqs=cap.batch,
        gpu_memory_utilization=sizing.GPU_MEMORY_UTILIZATION,
        cache_gi=sizing.cache_gi(model, precision),
        memory=MemoryFit(
            gpu_memory_gb=option.gpu.memory_gb, usable_gb_per_gpu=round(fit.usable_gb_per_gpu, 2),
            runtime_overhead_gb_per_gpu=sizing.RUNTIME_OVERHEAD_GB, weights_gb=fit.weights_gb,
            kv_bytes_per_token=model.kv_bytes_per_token, kv_room_gb=round(fit.kv_room_gb, 2),
            kv_tokens=fit.kv_tokens, needed_kv_tokens=fit.needed_tokens,
        ),
        throughput=Throughput(
            prompt_tokens=prompt, output_tokens=output, batch=cap.batch,
            limited_by=cap.limited_by,  # type: ignore[arg-type]
            rps_per_replica=round(cap.rps, 3), output_tokens_per_s_per_replica=round(cap.output_tok_s, 1),
            tpot_ms=round(cap.tpot_s * 1000, 1), ttft_idle_ms=round(cap.ttft_idle_s * 1000),
            ttft_loaded_ms=round(cap.ttft_s * 1000), band=band,
        ),
    )


def gpu_plan(answers: Answers, server: ModelServerPlan | None, option: Option | None = None) -> GpuPlan | None:
    option = option or choose(answers)
    if server is None or option is None:
        return None
    key, value, effect = catalog.GPU_TAINT
    per_node = option.replicas_per_node
    return GpuPlan(
        accelerator=option.instance.gpu,
        gpu_memory_gb=int(option.gpu.memory_gb),
        gpus_per_node=option.instance.gpus_per_node,
        instance_type=option.instance.instance_type or None,
        min_nodes=math.ceil(server.min_replicas / per_node),
        max_nodes=math.ceil(server.max_replicas / per_node),
        # one pool: spot only when nothing is warm, so the warm floor never runs on spot
        spot=answers.cost_priority == "cost" and server.min_replicas == 0,
        pool_label_key=catalog.GPU_POOL_LABEL[0],
        pool_label_value=catalog.GPU_POOL_LABEL[1],
        taint=Taint(key=key, value=value, effect=effect),  # type: ignore[arg-type]
    )


# --- queue workers -------------------------------------------------------------------------------------------------

MAX_WORKER_CONCURRENCY = 32  # async jobs per worker process before one CPU core becomes the limit
HOSTED_TPOT_S = 0.02  # planning figure for a hosted model's per-token time (50 tokens/s)


def queue_plan(answers: Answers, task_queue: str, server: ModelServerPlan | None) -> QueuePlan | None:
    """Workers keep the model busy: self-hosted, every replica's batch (max_num_seqs x max_replicas); hosted,
    Little's law on peak x request time. Fewer jobs in flight leave GPUs idle; more only queue inside vLLM."""
    if task_queue == "none":
        return None
    if server is not None:
        in_flight = server.max_num_seqs * server.max_replicas
    else:
        prompt, output = tokens(answers)
        in_flight = math.ceil(answers.peak_rps * (1.0 + output * HOSTED_TPOT_S))
    in_flight = max(1, in_flight)
    per_worker = min(MAX_WORKER_CONCURRENCY, in_flight)
    return QueuePlan(in_flight=in_flight, worker_concurrency=per_worker,
                     worker_max_replicas=max(1, math.ceil(in_flight / per_worker)), jobs_per_worker=per_worker)


# --- cost ----------------------------------------------------------------------------------------------------------


def _service_hourly(group: str, cloud: str) -> float:
    row = catalog.services()[group].get(cloud)
    return float(row["hourly_usd"]) if row else 0.0


def uses_database(answers: Answers) -> bool:
    return answers.usage_billing != "none" or answers.vector_store == "pgvector"


def cheapest_hosted(size_class: str) -> catalog.HostedModel:
    return min((h for h in catalog.hosted_models() if h.size_class == size_class),
               key=lambda h: h.input_per_m + h.output_per_m)


def primary_hosted(answers: Answers) -> catalog.HostedModel | None:
    hosted = [p for p in answers.providers if p != "local"]
    if not hosted:
        return None
    size = "large" if answers.self_hosted == "large" else "small"
    return next(h for h in catalog.hosted_models() if h.provider == hosted[0] and h.size_class == size)


def request_usd(h: catalog.HostedModel, prompt: int, output: int) -> float:
    return (prompt * h.input_per_m + output * h.output_per_m) / 1e6


def cost_estimate(answers: Answers, gpu: GpuPlan | None, server: ModelServerPlan | None = None,
                  option: Option | None = None) -> CostEstimate | None:
    hours = catalog.HOURS_PER_MONTH
    prompt, output = tokens(answers)
    avg = avg_rps(answers)
    monthly_tokens_m = avg * SECONDS_PER_MONTH * (prompt + output) / 1e6
    cloud = answers.cloud
    db = _service_hourly("database", cloud) * hours if uses_database(answers) else 0.0
    lb = _service_hourly("load_balancer", cloud) * hours
    primary = primary_hosted(answers)
    # hosted tokens: what the primary hosted provider costs for the traffic it serves (all of it without a GPU)
    hosted_share = 1.0 if gpu is None else 0.0
    hosted = request_usd(primary, prompt, output) * avg * SECONDS_PER_MONTH * hosted_share if primary else 0.0
    sources = "catalog_data/services.yaml, providers.yaml"
    if cloud == "existing" and gpu is not None:
        return None  # your own GPUs: no list price to plan with
    if gpu is None or server is None or option is None:
        if cloud == "existing" and not hosted:
            return None
        # the total is the sum of the rounded parts, so the ADR's addition checks out to the dollar
        planned = _whole(db) + _whole(lb) + _whole(hosted)
        return CostEstimate(
            hourly_node_price=0.0, planned_monthly=planned, always_on_monthly=planned,
            assumptions=f"no GPUs; {avg:g} rps average x {prompt}+{output} tokens = {monthly_tokens_m:,.0f}M "
            f"tokens/month on {primary.provider + ' ' + primary.model if primary else 'no hosted model'}"
            f"{'; database ' + _db_tier(cloud) if db else ''}; one load balancer",
            source=sources, as_of=_oldest(primary), database_monthly=_whole(db), load_balancer_monthly=_whole(lb),
            hosted_tokens_monthly=_whole(hosted), hosted_model=f"{primary.provider}/{primary.model}" if primary else "",
            monthly_tokens_m=round(monthly_tokens_m, 1),
        )
    inst = option.instance
    on_demand = inst.on_demand_usd
    price = inst.spot_usd if gpu.spot else on_demand
    node_rps = option.node_rps * TARGET_UTILIZATION
    # nodes the average load keeps busy, never fewer than the warm floor
    avg_nodes = max(float(gpu.min_nodes), min(float(gpu.max_nodes), avg / node_rps))
    burst_nodes = gpu.max_nodes - gpu.min_nodes
    # every scale-out bills at least cold start + cooldown + node scale-down (or the cloud's billed minimum)
    min_run_h = max(catalog.services()["billed_minimum_s"][cloud]["value"],
                    server.cold_start_s + COOLDOWN_S + catalog.NODE_SCALE_DOWN_S) / 3600
    burst_hours = min(burst_nodes * hours, BURSTS_PER_MONTH[answers.traffic] * burst_nodes * min_run_h) \
        if burst_nodes else 0.0
    warm_cost = gpu.min_nodes * hours * price
    burst_cost = ((avg_nodes - gpu.min_nodes) * hours + burst_hours) * price
    burst_cost = min(burst_cost, burst_nodes * hours * price)
    gpu_monthly = warm_cost + burst_cost
    always_on = on_demand * gpu.max_nodes * hours
    planned = _whole(warm_cost) + _whole(burst_cost) + _whole(db) + _whole(lb)
    cap_tokens_h = option.node_rps * (prompt + output) * 3600
    usd_per_1m = gpu_monthly / monthly_tokens_m if monthly_tokens_m else None
    rival = cheapest_hosted(option_class(answers))
    node_requests_h = option.node_rps * 3600
    break_even = price / (node_requests_h * request_usd(rival, prompt, output))
    spot = f"spot at {catalog.SPOT_PRICE_FRACTION:.0%} of ${on_demand}/h; " if gpu.spot else ""
    if answers.region not in ("auto", inst.region):
        spot = f"{inst.region} list prices (the catalog has none for {answers.region}: verify there); " + spot
    return CostEstimate(
        hourly_node_price=round(price, 3),
        # whole dollars: estimates carry no cents, and every renderer (Jinja, nunjucks) prints an integer the same way
        planned_monthly=planned,
        always_on_monthly=_whole(always_on) + _whole(db) + _whole(lb),
        assumptions=f"{spot}{gpu.min_nodes} warm node(s) x {hours} h; average load {avg:g} rps keeps "
        f"{avg_nodes:.2f} node(s) busy; {BURSTS_PER_MONTH[answers.traffic]} scale-outs a month "
        f"({answers.traffic}) of up to {burst_nodes} node(s), each billed at least {min_run_h * 60:.0f} min "
        f"(cold start + {COOLDOWN_S} s cooldown + {catalog.NODE_SCALE_DOWN_S} s node scale-down)"
        f"{'; database ' + _db_tier(cloud) if db else ''}; one load balancer; always-on = {gpu.max_nodes} "
        f"on-demand node(s) sized for peak",
        source=f"{inst.source} ({inst.instance_type}); {sources}",
        as_of=inst.as_of,
        gpu_monthly=_whole(warm_cost) + _whole(burst_cost), gpu_warm_monthly=_whole(warm_cost),
        gpu_burst_monthly=_whole(burst_cost),
        database_monthly=_whole(db), load_balancer_monthly=_whole(lb),
        hosted_tokens_monthly=_whole(hosted), hosted_model=f"{rival.provider}/{rival.model}",
        monthly_tokens_m=round(monthly_tokens_m, 1),
        usd_per_1m_tokens=round(usd_per_1m, 3) if usd_per_1m is not None else None,
        usd_per_1m_tokens_at_capacity=round(price / (cap_tokens_h / 1e6), 3),
        break_even_utilization=round(break_even, 3),
        break_even_against=f"{rival.provider}/{rival.model} at ${rival.input_per_m}/${rival.output_per_m} per 1M "
        f"input/output tokens ({rival.as_of})",
        band=sizing.calibration_band(),
    )


def option_class(answers: Answers) -> str:
    model, _ = model_of(answers)
    return model.size_class


def _whole(value: float) -> float:
    return float(math.floor(value + 0.5))


def _db_tier(cloud: str) -> str:
    row = catalog.services()["database"][cloud]
    return f"{row['tier']} ${row['hourly_usd']}/h"


def _oldest(primary: catalog.HostedModel | None) -> str:
    return primary.as_of if primary else catalog.services()["load_balancer"]["aws"]["as_of"]


# --- rationale -----------------------------------------------------------------------------------------------------


def _api_text(answers: Answers, api: ApiPlan) -> str:
    return (f"API: {api.cpu_cores} CPU per replica (one uvicorn worker), HPA on CPU at {api.target_cpu_utilization}%, "
            f"{api.min_replicas}-{api.max_replicas} replicas (peak {answers.peak_rps:g} rps x "
            f"{HEADROOM[answers.traffic]} headroom / {api.capacity_rps_per_replica} rps per replica = "
            f"{api.target_cpu_utilization}% of {api.cpu_cores} core / {catalog.GATEWAY_CPU_MS_PER_STREAM:g} ms CPU per "
            f"stream, measured by bench/; a replica also absorbs {api.burst_streams_per_replica} streams arriving at "
            f"once within 1 s)")


def _tp_text(answers: Answers, option: Option, model: Model, precision: str) -> str:
    fit = option.fit
    if not option.fits:
        return f"tp={fit.tp} is the largest degree the node allows (it does NOT fit: see the memory warning)."
    prompt, output = tokens(answers)
    smallest = sizing.memory_fit(model, precision, option.gpu, option.instance.gpus_per_node,
                                 max_model_len(answers, model), prompt + output)
    assert smallest is not None  # option.fits
    if smallest.tp == fit.tp:
        return (f"tp={fit.tp} is the smallest degree dividing {model.kv_heads} KV heads where that fits, and no "
                "larger one serves peak on fewer nodes.")
    other = _sized(answers, option.instance, option.gpu, model, precision, smallest, True, None)
    return (f"tp={fit.tp}, not the smallest fitting tp={smallest.tp}: its {smallest.kv_room_gb:.1f} GB of KV room "
            f"batches {other.cap.batch} sequences per replica against {option.cap.batch}, so peak would need "
            f"{other.peak_nodes} node(s) against {option.peak_nodes}.")


def _idle_at_average(answers: Answers, api: ApiPlan) -> int:
    """Replicas a peak-sized fixed fleet would keep idle at the average rate."""
    at_average = math.ceil(avg_rps(answers) * HEADROOM[answers.traffic] / api.capacity_rps_per_replica)
    needed = max(api.min_replicas, at_average)
    return max(0, api.max_replicas - needed)


def _zero_text(answers: Answers, server: ModelServerPlan) -> str:
    cold, gap, need = server.cold_start_s, idle_gap_s(answers), zero_needs_s(answers)
    gap_text = "no traffic" if math.isinf(gap) else f"{gap:,.0f} s"
    if server.scale_to_zero:
        return (f"vLLM and its GPU nodes scale to zero: the {answers.latency_budget_ms} ms budget covers a "
                f"~{cold} s cold start and the expected idle gap ({gap_text} at {avg_rps(answers):g} rps average) "
                f"exceeds cooldown {COOLDOWN_S} s + node scale-down {catalog.NODE_SCALE_DOWN_S} s + cold start "
                f"{cold} s = {need:,.0f} s; the gateway's pending-request gauge wakes them through KEDA")
    if not cost_wants_zero(answers):
        return (f"scale to zero not wanted (cost_priority={answers.cost_priority}, traffic={answers.traffic}); "
                f"{server.min_replicas} warm replica(s)")
    if answers.latency_budget_ms < cold * 1000:
        return (f"scale to zero refused: a cold start (~{cold} s) exceeds the {answers.latency_budget_ms} ms "
                f"budget, so {server.min_replicas} warm replica(s) stay")
    return (f"scale to zero refused: the expected idle gap ({gap_text} at {avg_rps(answers):g} rps) is shorter "
            f"than cooldown + node scale-down + cold start = {need:,.0f} s, so nodes would never get to sleep; "
            f"{server.min_replicas} warm replica(s) stay")


def _floor_text(answers: Answers, server: ModelServerPlan, per_replica: float) -> str:
    if server.scale_to_zero:
        return "warm floor 0 (scale to zero)"
    avg, cold = avg_rps(answers), server.cold_start_s
    if answers.cost_priority == "latency":
        rate = f"peak {answers.peak_rps:g} rps (cost_priority=latency keeps peak warm)"
    elif answers.cost_priority == "cost" and hosted_fallback(answers):
        rate = (f"average {avg:g} rps (cost_priority=cost: load above it spills to the hosted fallback during the "
                f"~{cold} s cold start)")
    else:
        rate = (f"the load that can arrive within one cold start: {avg:g} + ({answers.peak_rps:g} - {avg:g}) x "
                f"min(1, {cold} s / {RAMP_S[answers.traffic]} s {answers.traffic} ramp) = "
                f"{load_within_cold_start(answers):.3g} rps")
    return (f"warm floor = ceil({rate} / {per_replica:.3g} rps per replica) = {server.min_replicas} "
            f"(at least 1)")


def decide(answers: Answers, api: ApiPlan, server: ModelServerPlan | None, gpu: GpuPlan | None,
           cost: CostEstimate | None, option: Option | None = None) -> Decision:
    api_text = _api_text(answers, api)
    prompt, output = tokens(answers)
    if server is None or gpu is None or option is None:
        cost_text = ""
        if cost:
            cost_text = (f"; estimated ${cost.planned_monthly:,.0f}/month: tokens ${cost.hosted_tokens_monthly:,.0f} "
                         f"({cost.hosted_model}, {cost.monthly_tokens_m:,.0f}M tokens), database "
                         f"${cost.database_monthly:,.0f}, load balancer ${cost.load_balancer_monthly:,.0f}")
        return Decision(
            criterion="scaling",
            decision=api_text + "; no GPUs (models are called through hosted APIs)" + cost_text,
            reason="Without self-hosted models the backend is I/O-bound: cheap CPU replicas scale with traffic and the "
            f"model bill is per token. At {avg_rps(answers):g} rps average x ({prompt} prompt + {output} output "
            f"tokens) x {SECONDS_PER_MONTH:,} s/month the traffic is "
            f"{avg_rps(answers) * SECONDS_PER_MONTH * (prompt + output) / 1e6:,.0f}M tokens a month.",
            context=f"peak_rps={answers.peak_rps:g}, avg_rps={avg_rps(answers):g}, traffic={answers.traffic}, "
            f"prompt/output tokens={prompt}/{output}, self_hosted=none, cloud={answers.cloud}",
            rejected=[
                "a GPU pool: nothing to run on it",
                f"a fixed {api.max_replicas} replicas sized for peak: {_idle_at_average(answers, api)} of them idle "
                f"at the {avg_rps(answers):g} rps average, and still no room for a burst beyond peak",
            ],
            consequences=[
                f"The HPA looks every 15 s (its default sync period) and adds replicas once CPU passes "
                f"{api.target_cpu_utilization}%; until they are ready, the {api.min_replicas} warm replicas absorb a "
                f"burst of {api.min_replicas * api.burst_streams_per_replica} streams arriving at once "
                f"({api.burst_streams_per_replica} each within 1 s, measured by bench/).",
                "The model bill follows tokens, not replicas: a cheaper model or shorter prompts cut it, more "
                "replicas do not.",
            ],
        )
    model, precision = model_of(answers)
    fit, cap, g = option.fit, option.cap, option.gpu
    mem = server.memory
    thr = server.throughput
    assert mem and thr
    band = thr.band
    per_replica = cap.rps * TARGET_UTILIZATION
    ctx = prompt + output / 2
    t_mem, t_cmp = sizing.decode_parts(model, precision, g, fit.tp, cap.batch, ctx)
    where = gpu.instance_type or "your existing GPU pool"
    limit = {"kv": "limited by KV room", "cap": "vLLM's cap",
             "latency": f"limited by the {sizing.tpot_target_s(answers.use_case) * 1000:.0f} ms decode-step target"
             }[cap.limited_by]
    memory = (
        f"Memory fit: each {g.name} has {g.memory_gb:g} GB x {sizing.GPU_MEMORY_UTILIZATION} = "
        f"{mem.usable_gb_per_gpu:g} GB usable, minus {sizing.RUNTIME_OVERHEAD_GB:g} GB runtime overhead; at "
        f"tensor_parallel={fit.tp} that is {fit.tp} x {mem.usable_gb_per_gpu - sizing.RUNTIME_OVERHEAD_GB:.2f} = "
        f"{fit.tp * (mem.usable_gb_per_gpu - sizing.RUNTIME_OVERHEAD_GB):.1f} GB. The {precision} weights take "
        f"{mem.weights_gb:g} GB, leaving {mem.kv_room_gb:g} GB of KV cache = {mem.kv_tokens:,} tokens at "
        f"{mem.kv_bytes_per_token:,} B/token (2 x {model.layers} layers x {model.kv_heads} KV heads x "
        f"{model.head_dim} dims x 2 B). The plan needs {mem.needed_kv_tokens:,} tokens (one "
        f"{server.max_model_len:,}-token request + {sizing.MIN_BATCH - 1} more at {prompt}+{output}); "
        + _tp_text(answers, option, model, precision)
    )
    throughput = (
        f"Throughput per replica (±{band:.0%}, the calibration band): a decode step with {cap.batch} sequences of "
        f"~{ctx:.0f} tokens reads {mem.weights_gb:g} GB of weights + {cap.batch} x {ctx:.0f} x "
        f"{mem.kv_bytes_per_token:,} B of KV at {fit.tp} x {g.bandwidth_gbs:g} GB/s x {sizing.BW_EFFICIENCY} = "
        f"{t_mem * 1000:.1f} ms (compute {t_cmp * 1000:.1f} ms); each request also needs a {prompt}-token prefill "
        f"at {fit.tp} x {sizing.tflops(g, precision):g} TFLOPS x {sizing.COMPUTE_EFFICIENCY}. Batch "
        f"--max-num-seqs={cap.batch} ({limit}) "
        f"gives {cap.rps:.3g} requests/s ({cap.output_tok_s:,.0f} output tokens/s), {thr.tpot_ms:g} ms per "
        f"token with other requests' prefills interleaved, first token ~{thr.ttft_idle_ms:g} ms idle / "
        f"~{thr.ttft_loaded_ms:g} ms loaded."
    )
    replicas = (
        f"Replicas: peak {answers.peak_rps:g} rps / ({cap.rps:.3g} x {TARGET_UTILIZATION} target utilisation) = "
        f"{option.peak_replicas} replica(s) max; {_floor_text(answers, server, per_replica)}. "
        f"{option.replicas_per_node} replica(s) per {gpu.gpus_per_node}-GPU node -> {gpu.min_nodes}-"
        f"{gpu.max_nodes} nodes. KEDA target {server.target_pending_per_replica} pending per replica = "
        f"Little's law: {cap.rps:.3g} req/s x {cap.batch / cap.rps:.1f} s per request x {TARGET_UTILIZATION}."
    )
    cost_text = ""
    if cost:
        cost_text = (
            f" Cost: warm ${cost.gpu_warm_monthly:,.0f} + bursts ${cost.gpu_burst_monthly:,.0f} + database "
            f"${cost.database_monthly:,.0f} + load balancer ${cost.load_balancer_monthly:,.0f} = "
            f"${cost.planned_monthly:,.0f}/month (±{band:.0%}) at ${cost.hourly_node_price}/node-hour; "
            f"${cost.usd_per_1m_tokens}/1M tokens at {avg_rps(answers):g} rps average "
            f"(${cost.usd_per_1m_tokens_at_capacity}/1M at full use). Break-even against {cost.break_even_against}: "
            f"{cost.break_even_utilization:.0%} GPU utilisation"
            + (" (never: hosted is cheaper even at full use)." if (cost.break_even_utilization or 0) > 1 else ".")
        )
    others = sorted((o for o in options(answers, model, precision) if o.instance != option.instance),
                    key=lambda o: (not o.fits, o.peak_monthly))[:3]
    rejected = [
        f"{o.instance.instance_type} ({o.instance.gpus_per_node}x {o.gpu.name}): "
        + (f"tp={o.fit.tp}, {o.cap.rps:.3g} req/s per replica, {o.peak_nodes} node(s) at peak = "
           f"${o.peak_monthly:,.0f}/month" if o.fits else "the model and its KV cache do not fit")
        for o in others
    ]
    rejected += [
        "scaling vLLM on GPU utilisation: a saturated GPU looks the same at 1 and 100 waiting requests",
        "vLLM's own num_requests_waiting metric: it vanishes with the last replica, so it cannot wake a pool from "
        "zero; the gateway's gauge counts the same requests one hop earlier",
    ]
    return Decision(
        criterion="scaling",
        decision=(
            f"{api_text}; GPU pool of {where} ({gpu.gpus_per_node}x {gpu.accelerator}, {gpu.gpu_memory_gb} GB each), "
            f"{gpu.min_nodes}-{gpu.max_nodes} nodes{', spot' if gpu.spot else ', on-demand'}, tainted "
            f"{gpu.taint.key}={gpu.taint.value}:{gpu.taint.effect}; vLLM {server.model} ({precision}) with "
            f"--tensor-parallel-size {server.tensor_parallel} --max-model-len {server.max_model_len} "
            f"--max-num-seqs {server.max_num_seqs} --gpu-memory-utilization {server.gpu_memory_utilization}, "
            f"{server.min_replicas}-{server.max_replicas} replicas scaled by KEDA on waiting requests "
            f"({server.target_pending_per_replica} per replica), {server.cache_gi} Gi model cache; "
            f"{_zero_text(answers, server)}"
        ),
        reason="\n".join([memory, throughput, replicas + cost_text]),
        consequences=[
            "A cold start takes ~" + " + ".join(f"{v} s {k}" for k, v in
                                               sizing.cold_start_parts(model, precision).items())
            + f" = {server.cold_start_s} s; requests arriving meanwhile wait up to the "
            f"{answers.latency_budget_ms} ms budget, then get 503 + Retry-After"
            + (" or go to the hosted fallback." if hosted_fallback(answers) else "."),
            f"Every figure above is an estimate with a ±{band:.0%} band from the calibration table "
            "(catalog_data/calibration.yaml); measure your own TTFT and tokens/s with `bench/` and adjust "
            "max_num_seqs and the replica counts in Pulumi.dev.yaml.",
            "The warm floor runs on-demand capacity: spot reclaims would drop the requests it exists to serve"
            + ("; this plan has no warm floor, so the whole pool may use spot." if gpu.spot else "."),
            f"Prices are list prices as of {option.instance.as_of or 'n/a'}; `aistarter catalog check` fails once "
            "they are older than 180 days.",
        ],
        context=f"model={model.name} ({model.params_b:g}B params, {model.active_params_b:g}B active, "
        f"{model.native_context:,}-token native context, {model.license}), precision={precision}, "
        f"prompt/output tokens p50={prompt}/{output}, max_context_tokens={server.max_model_len}, "
        f"peak_rps={answers.peak_rps:g}, avg_rps={avg_rps(answers):g}, traffic={answers.traffic}, "
        f"cost_priority={answers.cost_priority}, latency_budget_ms={answers.latency_budget_ms}, "
        f"cloud={answers.cloud}{'/' + option.instance.region if option.instance.region else ''}",
        rejected=rejected,
    )

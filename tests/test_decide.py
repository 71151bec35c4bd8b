"""The decision engine: the article's principles as unit tests and hypothesis properties."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aistarter import catalog
from aistarter.decide import decide
from aistarter.questions import CRITERIA, Answers


def bp(**values: Any):
    return decide(Answers(**values))


def test_rationale_covers_all_seven_criteria_in_order() -> None:
    blueprint = bp()
    assert [d.criterion for d in blueprint.rationale] == list(CRITERIA)
    for d in blueprint.rationale:
        assert d.decision and d.reason and d.context and d.rejected


@pytest.mark.parametrize(("use_case", "streaming"), [("chat", "sse"), ("rag", "sse"), ("agents", "sse"),
                                                     ("batch", "none")])
def test_auto_streaming_follows_the_use_case(use_case: str, streaming: str) -> None:
    assert bp(use_case=use_case).stack.streaming == streaming


def test_explicit_streaming_wins_over_auto() -> None:
    assert bp(use_case="chat", streaming="websocket").stack.streaming == "websocket"
    assert bp(use_case="batch", streaming="sse").stack.streaming == "sse"


@pytest.mark.parametrize(("use_case", "store", "queue"), [("chat", "none", "none"), ("rag", "qdrant", "none"),
                                                          ("agents", "qdrant", "arq"), ("batch", "none", "arq")])
def test_memory_and_queue_follow_the_use_case(use_case: str, store: str, queue: str) -> None:
    stack = bp(use_case=use_case).stack
    assert (stack.vector_store, stack.task_queue) == (store, queue)


def test_resolved_answers_carry_no_auto() -> None:
    answers = bp(use_case="rag").answers
    assert "auto" not in (answers.streaming, answers.vector_store, answers.task_queue)


def test_fallback_is_ordered_across_several_providers_and_absent_for_one() -> None:
    assert bp(providers=["anthropic", "openai", "gemini"]).stack.gateway.fallback == ["anthropic", "openai", "gemini"]
    assert bp(providers=["openai"]).stack.gateway.fallback == []


def test_no_self_hosting_means_no_gpu_but_a_token_bill() -> None:
    stack = bp().stack
    assert stack.gpu is None and stack.model_server is None
    assert stack.cost is not None and stack.cost.hourly_node_price == 0 and stack.cost.hosted_tokens_monthly > 0
    # 5 rps average (half the default peak) x 1100 tokens x 730 h on gpt-4o-mini at $0.15/$0.60 per 1M
    per_request = (800 * 0.15 + 300 * 0.60) / 1e6
    assert stack.cost.hosted_tokens_monthly == round(per_request * 5 * 730 * 3600)


def test_small_model_uses_one_gpu_and_large_shards_within_a_node() -> None:
    small = bp(self_hosted="small", providers=["local"]).stack
    assert small.model_server and small.gpu
    assert small.model_server.tensor_parallel == 1 and small.model_server.engine == "vllm"
    for cloud in ("aws", "gcp", "azure", "existing"):
        large = bp(self_hosted="large", providers=["local"], cloud=cloud).stack
        assert large.model_server and large.gpu
        assert large.model_server.tensor_parallel >= 2
        assert large.gpu.gpus_per_node >= large.model_server.tensor_parallel
        assert large.gpu.gpus_per_node % large.model_server.tensor_parallel == 0


def test_gpu_pool_is_tainted_and_labelled() -> None:
    gpu = bp(self_hosted="small", providers=["local"]).stack.gpu
    assert gpu and (gpu.taint.key, gpu.taint.value, gpu.taint.effect) == ("nvidia.com/gpu", "present", "NoSchedule")
    assert gpu.pool_label_key and gpu.pool_label_value


def test_scale_to_zero_when_cost_matters_the_budget_allows_a_cold_start_and_idle_gaps_are_long() -> None:
    rare = {"avg_rps": 0.0002, "peak_rps": 1}  # a request every ~83 min on average
    stack = bp(self_hosted="small", providers=["local"], cost_priority="cost", latency_budget_ms=600_000,
               **rare).stack
    assert stack.model_server and stack.gpu
    assert stack.model_server.scale_to_zero and stack.model_server.min_replicas == 0 and stack.gpu.min_nodes == 0
    spiky = bp(self_hosted="small", providers=["local"], cost_priority="balanced", traffic="spiky",
               latency_budget_ms=600_000, **rare).stack.model_server
    assert spiky and spiky.scale_to_zero


def test_scale_to_zero_refused_when_requests_arrive_faster_than_nodes_can_sleep() -> None:
    blueprint = bp(self_hosted="small", providers=["local"], cost_priority="cost", latency_budget_ms=600_000,
                   avg_rps=0.01, peak_rps=1)
    server = blueprint.stack.model_server
    assert server and not server.scale_to_zero and server.min_replicas == 1
    scaling = next(d for d in blueprint.rationale if d.criterion == "scaling")
    assert "expected idle gap (100 s at 0.01 rps)" in scaling.decision


def test_scale_to_zero_refused_below_a_cold_start_and_says_why() -> None:
    blueprint = bp(self_hosted="small", providers=["local"], cost_priority="cost", latency_budget_ms=1000)
    server, gpu = blueprint.stack.model_server, blueprint.stack.gpu
    assert server and gpu and not server.scale_to_zero
    assert server.min_replicas >= 1 and gpu.min_nodes >= 1
    scaling = next(d for d in blueprint.rationale if d.criterion == "scaling")
    assert "scale to zero refused" in scaling.decision and f"~{server.cold_start_s} s" in scaling.decision


def test_model_server_scales_on_its_queue_not_utilisation() -> None:
    server = bp(self_hosted="small", providers=["local"]).stack.model_server
    assert server and server.autoscaler == "keda" and server.metric == "aistarter_model_pending_requests"


def test_api_keeps_two_replicas_and_sizes_max_from_peak() -> None:
    api = bp(peak_rps=1000, traffic="steady").stack.api
    assert api.min_replicas >= 2
    assert api.max_replicas == -(-1000 * 1.5 // catalog.API_REPLICA_RPS)


def test_cost_estimate_shows_always_on_next_to_plan() -> None:
    cost = bp(self_hosted="small", providers=["local"], cost_priority="cost", traffic="spiky",
              latency_budget_ms=600_000, avg_rps=0.0002, peak_rps=5).stack.cost
    assert cost is not None
    assert 0 < cost.planned_monthly < cost.always_on_monthly
    assert cost.source and cost.as_of
    assert cost.planned_monthly == cost.gpu_monthly + cost.database_monthly + cost.load_balancer_monthly


def test_existing_cloud_has_no_instance_type_or_price() -> None:
    stack = bp(self_hosted="small", providers=["local"], cloud="existing").stack
    assert stack.gpu and stack.gpu.instance_type is None and stack.cost is None


# --- properties -------------------------------------------------------------------------------------------------

answers_st = st.builds(
    dict,
    use_case=st.sampled_from(["chat", "rag", "agents", "batch"]),
    latency_budget_ms=st.integers(50, 600_000),
    peak_rps=st.integers(1, 100_000),
    traffic=st.sampled_from(["steady", "spiky"]),
    self_hosted=st.sampled_from(["none", "small", "large"]),
    cost_priority=st.sampled_from(["latency", "balanced", "cost"]),
    cloud=st.sampled_from(["aws", "gcp", "azure", "existing"]),
    providers=st.just(["openai", "local"]),
)
COST_ORDER = ["latency", "balanced", "cost"]


def warm_gpus(values: dict[str, Any]) -> int:
    stack = bp(**values).stack
    if stack.gpu is None or stack.model_server is None:
        return 0
    return stack.model_server.min_replicas * stack.model_server.tensor_parallel


def peak_gpu_need(stack: Any) -> float:
    """What serving peak takes: the always-on price where nodes have one, else GPUs (existing clusters)."""
    if stack.gpu is None or stack.model_server is None:
        return 0
    if stack.cost is not None:
        return stack.cost.always_on_monthly - stack.cost.database_monthly - stack.cost.load_balancer_monthly
    return stack.model_server.max_replicas * stack.model_server.tensor_parallel


@settings(max_examples=200, deadline=None)
@given(answers_st, st.integers(1, 100_000))
def test_more_traffic_never_shrinks_capacity(values: dict[str, Any], more: int) -> None:
    # The node type may change with load (the cheapest at peak), so replicas of different nodes are not comparable;
    # what peak costs (or, on an existing cluster, how many GPUs it takes) is.
    low = bp(**values).stack
    high = bp(**{**values, "peak_rps": min(100_000, values["peak_rps"] + more)}).stack
    assert high.api.max_replicas >= low.api.max_replicas
    assert peak_gpu_need(high) >= peak_gpu_need(low)
    if high.model_server and high.model_server.throughput:
        assert high.model_server.max_replicas * high.model_server.throughput.rps_per_replica >= \
            min(100_000, values["peak_rps"] + more) * 0.999


@settings(max_examples=200, deadline=None)
@given(answers_st, st.integers(50, 600_000))
def test_tighter_latency_budget_never_lowers_warm_gpus(values: dict[str, Any], other: int) -> None:
    tight, loose = sorted([values["latency_budget_ms"], other])
    assert warm_gpus({**values, "latency_budget_ms": tight}) >= warm_gpus({**values, "latency_budget_ms": loose})


@settings(max_examples=200, deadline=None)
@given(answers_st)
def test_moving_toward_cost_never_raises_warm_gpus(values: dict[str, Any]) -> None:
    warm = [warm_gpus({**values, "cost_priority": p}) for p in COST_ORDER]
    assert warm == sorted(warm, reverse=True)


@settings(max_examples=200, deadline=None)
@given(answers_st)
def test_plans_are_internally_consistent(values: dict[str, Any]) -> None:
    stack = bp(**values).stack
    assert stack.api.min_replicas >= 2 and stack.api.max_replicas > stack.api.min_replicas
    if stack.model_server and stack.gpu:
        ms, gpu = stack.model_server, stack.gpu
        assert 0 <= ms.min_replicas <= ms.max_replicas and ms.max_replicas >= 1
        assert gpu.min_nodes <= gpu.max_nodes
        assert gpu.max_nodes * gpu.gpus_per_node >= ms.max_replicas * ms.tensor_parallel
        assert gpu.min_nodes * gpu.gpus_per_node >= ms.min_replicas * ms.tensor_parallel
        assert ms.scale_to_zero == (ms.min_replicas == 0) == (gpu.min_nodes == 0)
        if ms.scale_to_zero:
            assert values["latency_budget_ms"] >= ms.cold_start_s * 1000

"""The decision engine: a pure function from Answers to a Blueprint, one module per article criterion."""

from __future__ import annotations

from ..blueprint import Blueprint, Stack
from ..questions import Answers
from . import ecosystem, iteration, latency, observability, plugin, scaling, workload

__all__ = ["decide"]


def decide(answers: Answers) -> Blueprint:
    resolved = answers.model_copy(update={
        "streaming": workload.resolve_streaming(answers),
        "vector_store": workload.resolve_vector_store(answers),
        "task_queue": workload.resolve_task_queue(answers),
    })
    api = scaling.api_plan(answers)
    server = scaling.model_server_plan(answers)
    gpu = scaling.gpu_plan(answers, server)
    cost = scaling.cost_estimate(answers, gpu)
    stack = Stack(
        streaming=resolved.streaming,  # type: ignore[arg-type]
        gateway=plugin.gateway_plan(answers),
        vector_store=resolved.vector_store,  # type: ignore[arg-type]
        task_queue=resolved.task_queue,  # type: ignore[arg-type]
        observability=answers.observability,
        trace_content=answers.trace_content,
        usage_billing=answers.usage_billing,
        auth=answers.auth,
        cloud=answers.cloud,
        api=api,
        gpu=gpu,
        model_server=server,
        cost=cost,
    )
    rationale = [
        workload.decide(answers),
        latency.decide(answers),
        iteration.decide(answers),
        scaling.decide(answers, api, server, gpu, cost),
        observability.decide(answers),
        plugin.decide(answers),
        ecosystem.decide(answers),
    ]
    return Blueprint(answers=resolved, stack=stack, rationale=rationale)

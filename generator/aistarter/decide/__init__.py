"""The decision engine: a pure function from Answers to a Blueprint, one module per article criterion."""

from __future__ import annotations

from ..blueprint import Blueprint, Stack
from ..questions import Answers
from . import ecosystem, feasibility, iteration, latency, observability, plugin, scaling, workload

__all__ = ["decide"]


def decide(answers: Answers) -> Blueprint:
    option = scaling.choose(answers)
    api = scaling.api_plan(answers)
    server = scaling.model_server_plan(answers, option)
    gpu = scaling.gpu_plan(answers, server, option)
    cost = scaling.cost_estimate(answers, gpu, server, option)
    timeouts = latency.timeout_plan(answers, option.cap.ttft_s if option else None)
    prompt, output = scaling.tokens(answers)
    resolved = answers.model_copy(update={
        "streaming": workload.resolve_streaming(answers),
        "vector_store": workload.resolve_vector_store(answers),
        "task_queue": workload.resolve_task_queue(answers),
        "prompt_tokens_p50": prompt,
        "output_tokens_p50": output,
        "avg_rps": round(scaling.avg_rps(answers), 6),
        **({"model": server.catalog_model, "precision": server.precision,
            "max_context_tokens": scaling.wanted_context(answers)} if server else {}),
        **({"region": option.instance.region} if option and answers.cloud != "existing" and answers.region == "auto"
           else {}),
    })
    stack = Stack(
        streaming=resolved.streaming,  # type: ignore[arg-type]
        gateway=plugin.gateway_plan(answers, timeouts),
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
        queue=scaling.queue_plan(answers, resolved.task_queue, server),
    )
    rationale = [
        workload.decide(answers),
        latency.decide(answers, timeouts),
        iteration.decide(answers),
        scaling.decide(answers, api, server, gpu, cost, option),
        observability.decide(answers),
        plugin.decide(answers),
        ecosystem.decide(answers),
    ]
    warnings = feasibility.check(answers, option, gpu, timeouts)
    return Blueprint(answers=resolved, stack=stack, rationale=rationale, warnings=warnings)

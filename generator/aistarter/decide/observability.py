"""Criterion 5, observability: every answer traceable to its prompt, data source and model version."""

from __future__ import annotations

from ..blueprint import Decision
from ..questions import Answers

BACKENDS = {
    "otel": "OpenTelemetry GenAI spans over OTLP/HTTP to any collector",
    "langfuse": "OpenTelemetry GenAI spans exported to Langfuse's OTLP endpoint, with prompt links",
    "phoenix": "OpenTelemetry GenAI spans exported to Arize Phoenix's OTLP collector",
    "none": "no trace export (interaction records in the database remain)",
}
CONTENT = {
    "full": "full prompt and answer text",
    "redacted": "text with emails, phone and card numbers redacted",
    "metadata": "no text, only ids, versions, token counts and timings",
}


def decide(answers: Answers) -> Decision:
    return Decision(
        criterion="observability",
        decision=f"An interaction record for every request (prompt version, retrieved document ids, provider, "
        f"model version, usage); {BACKENDS[answers.observability]}; records and traces keep "
        f"{CONTENT[answers.trace_content]}",
        reason="When a model hallucinates, the fix starts from knowing which prompt, data and model produced "
        "the answer; records are kept in your own database even when no tracing backend is chosen.",
        context=f"observability={answers.observability}, trace_content={answers.trace_content}",
        rejected=[
            "vendor-specific tracing SDKs: OpenTelemetry's GenAI conventions reach every backend with one exporter",
            "logging full text by default: prompts carry personal data",
        ],
    )

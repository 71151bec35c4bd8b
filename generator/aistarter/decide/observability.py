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
        context=f"observability={answers.observability}, trace_content={answers.trace_content}, "
        f"peak_rps={answers.peak_rps:g}",
        consequences=_consequences(answers),
        rejected=[
            "vendor-specific tracing SDKs: OpenTelemetry's GenAI conventions reach every backend with one exporter",
            "logging full text by default: prompts carry personal data",
        ],
    )


SECONDS_PER_MONTH = 730 * 3600
RECORD_BYTES = {"full": 8_000, "redacted": 8_000, "metadata": 600}  # one interaction row with / without text


def _consequences(answers: Answers) -> list[str]:
    rate = answers.peak_rps * (0.5 if answers.traffic == "steady" else 0.1) if answers.avg_rps == "auto" \
        else float(answers.avg_rps)
    rows = rate * SECONDS_PER_MONTH
    size_gb = rows * RECORD_BYTES[answers.trace_content] / 1e9
    out = [f"~{rows:,.0f} interaction records a month at {rate:g} rps average, ~{size_gb:,.1f} GB at "
           f"~{RECORD_BYTES[answers.trace_content]:,} bytes each ({answers.trace_content} content): plan retention."]
    if answers.observability != "none":
        out.append(f"The same volume of model-call spans reaches {answers.observability}; sample in the collector "
                   "if its bill grows faster than traffic.")
    if answers.trace_content == "full":
        out.append("Full text in traces and records is personal data: access control and deletion requests apply.")
    return out

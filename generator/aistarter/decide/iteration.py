"""Criterion 3, iteration speed: prompts, providers and models change without code changes."""

from __future__ import annotations

from ..blueprint import Decision
from ..questions import Answers

# The iteration loop (issue 19). Self-contained so it survives a rewrite of the text around it.
LOOP = (
    "the loop is: edit a prompt file -> try it at /playground, which shows under every answer the prompt version, "
    "documents, model, tokens, cost, latency and trace id -> rate answers (POST /v1/interactions/{id}/feedback) -> "
    "`python -m app.evals export --from-feedback` turns rated answers into dataset rows -> CI runs "
    "`python -m app.evals compare` against the committed evals/baseline.json when prompts or the model map change "
    "and fails when a score drops"
)
LOOP_REJECTED = [
    "deepeval, ragas or inspect-ai as the eval engine: resolved with pip (2026-12) they pull in 66, 90 and 80 "
    "distributions (openai, grpcio, posthog; langchain, datasets, pandas, pyarrow; boto3, textual, numpy) next to "
    "the backend's 37; the scorers needed (contains, regex, JSON schema, tool called, retrieval hit rate and MRR, "
    "latency, cost, an optional LLM judge) are about 100 lines, and only jsonschema (6 distributions) is added, "
    "as a dev dependency",
    "a chat UI with a Node build (create-llama style): a second toolchain to install, audit and update; the "
    "playground is one HTML page, one CSS file and one JavaScript module served by the app",
]


def decide(answers: Answers) -> Decision:
    prompts = (
        "prompts live as versioned files in prompts/ and every answer records the exact version"
        if answers.prompt_versioning
        else "prompts live in code (prompt_versioning=false)"
    )
    return Decision(
        criterion="iteration",
        decision=f"{prompts}; the model is picked per request from a model-to-provider map in config; "
        f"embedded defaults (SQLite, in-process limiter, fake provider) run everything offline; {LOOP}",
        reason="Teams win by running more experiments: a prompt edit or a model swap should be a config or file "
        "change that ships in minutes, and a new engineer should run the whole backend with no keys or servers.",
        context=f"prompt_versioning={answers.prompt_versioning}, providers={','.join(answers.providers)}",
        consequences=[
            "A prompt change is a pull request to prompts/ and a deploy; the interaction record names the version "
            "that produced each answer, so a regression is traced to the edit." if answers.prompt_versioning else
            "Prompt changes are code changes: no per-answer version to trace a regression to.",
            f"Swapping a model is a config change on the model map (providers: {', '.join(answers.providers)}).",
            "Tests run offline on the fake provider: no keys, no network, seconds per run.",
        ],
        rejected=[
            "prompts in a hosted prompt registry: another service to run before the first experiment",
            "one hard-wired model: every model change becomes a deploy",
            *LOOP_REJECTED,
        ],
    )

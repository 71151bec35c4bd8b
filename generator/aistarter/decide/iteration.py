"""Criterion 3, iteration speed: prompts, providers and models change without code changes."""

from __future__ import annotations

from ..blueprint import Decision
from ..questions import Answers


def decide(answers: Answers) -> Decision:
    prompts = (
        "prompts live as versioned files in prompts/ and every answer records the exact version"
        if answers.prompt_versioning
        else "prompts live in code (prompt_versioning=false)"
    )
    return Decision(
        criterion="iteration",
        decision=f"{prompts}; the model is picked per request from a model-to-provider map in config; "
        "embedded defaults (SQLite, in-process limiter, fake provider) run everything offline",
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
        ],
    )

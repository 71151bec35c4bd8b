"""`export --from-feedback`: rated interactions become dataset rows, so production mistakes become eval cases.

The text comes from the interaction record, so it is exactly what TRACE_CONTENT kept: full, redacted, or
nothing (metadata: such interactions are counted and skipped). A thumbs-down row carries the comment that
says what was wrong; add `expected_facts` (or another expectation) to turn it into a regression case.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import select

from app.db import base as db
from app.db.models import Interaction
from app.evals.models import Feedback

# `input_text` is the model call rendered as "role: content" lines (ModelCall.text()).
TURN = re.compile(r"^(system|user|assistant): ", re.M)


def turns(input_text: str) -> list[dict[str, str]]:
    """The user and assistant turns of a recorded call; system turns (prompt, retrieved context) are
    dropped: the eval run adds the prompt version under test and retrieves again."""
    marks = list(TURN.finditer(input_text))
    out = []
    for mark, following in zip(marks, [*marks[1:], None], strict=True):
        end = following.start() - 1 if following else len(input_text)
        if mark.group(1) != "system":
            out.append({"role": mark.group(1), "content": input_text[mark.end():end]})
    return out


def from_feedback(*, rating: str = "all", tenant: str | None = None) -> tuple[list[dict[str, Any]], int]:
    """(rows, skipped): one row per rated interaction, using its latest rating."""
    with db.session_scope() as session:
        query = select(Feedback, Interaction).join(Interaction, Interaction.id == Feedback.interaction_id)
        if tenant:
            query = query.where(Feedback.tenant_id == tenant)
        latest: dict[str, tuple[Feedback, Interaction]] = {}
        for feedback, interaction in session.execute(query.order_by(Feedback.id)):
            latest[interaction.id] = (feedback, interaction)
    rows, skipped = [], 0
    for feedback, interaction in latest.values():
        label = "up" if feedback.rating > 0 else "down"
        if rating != "all" and label != rating:
            continue
        messages = turns(interaction.input_text) if interaction.input_text else []
        if not any(m["role"] == "user" for m in messages):
            skipped += 1
            continue
        meta: dict[str, Any] = {
            "source": "feedback", "interaction_id": interaction.id, "tenant": interaction.tenant_id,
            "rating": label, "comment": feedback.comment, "trace_content": interaction.trace_content,
            "prompt": {"name": interaction.prompt_name, "version": interaction.prompt_version},
            "model": interaction.model, "retrieved_document_ids": interaction.retrieved_document_ids or [],
        }
        if label == "up" and interaction.output_text:
            meta["reference"] = interaction.output_text
        rows.append({"id": f"feedback-{interaction.id[:12]}", "messages": messages, "meta": meta})
    return rows, skipped

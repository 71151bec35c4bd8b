"""The template works with the engines' own entry points: `copier copy` and `cookiecutter` on templates/ give the
project `aistarter new` gives, because aistarter's Jinja extension computes the blueprint inside the engine."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from aistarter.answers import validate
from aistarter.render import generate, template_dir

# Not the vendored infra library nor the first commit: those are the finishing steps `aistarter new` adds.
FINISHING = ("infra/aistarter_infra/", ".git/")

CASES: list[dict[str, Any]] = [
    {},
    {"use_case": "rag", "providers": ["local", "openai"], "self_hosted": "small", "cloud": "existing",
     "peak_rps": 10, "latency_budget_ms": 1500},
    {"use_case": "agents", "streaming": "websocket", "vector_store": "pgvector", "auth": "none",
     "usage_billing": "none", "observability": "langfuse", "cloud": "azure", "project_name": "Agent Smith 2.0",
     "avg_rps": "2.5", "prompt_versioning": False},
]


def tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and not p.relative_to(root).as_posix().startswith(FINISHING)}


def by_copier(answers: dict[str, Any], dest: Path) -> Path:
    import copier

    # What `copier copy --trust --defaults --data k=v ... templates DEST` does (text values, lists comma-separated).
    data = {k: ",".join(v) if isinstance(v, list) else v for k, v in answers.items()}
    copier.run_copy(str(template_dir()), str(dest), data=data, defaults=True, unsafe=True, quiet=True)
    return dest


def by_cookiecutter(answers: dict[str, Any], out: Path) -> Path:
    from cookiecutter.main import cookiecutter

    # What `cookiecutter --no-input -f templates k=v ...` does: text values, lists comma-separated. -f because a
    # folder whose name renders empty maps onto its parent, which already exists.
    context = {k: ",".join(v) if isinstance(v, list) else str(v) for k, v in answers.items()}
    return Path(cookiecutter(str(template_dir()), no_input=True, extra_context=context, output_dir=str(out),
                             overwrite_if_exists=True))


def case_id(answers: dict[str, Any]) -> str:
    return ",".join(answers) or "defaults"


@pytest.mark.parametrize("answers", CASES, ids=case_id)
def test_copier_and_cookiecutter_directly_give_the_project_aistarter_new_gives(tmp_path: Path, answers: dict) -> None:
    expected = tree(generate(validate(answers), tmp_path / "new").path)
    for engine, got in (("copier", tree(by_copier(answers, tmp_path / "copier"))),
                        ("cookiecutter", tree(by_cookiecutter(answers, tmp_path / "cookiecutter")))):
        assert sorted(got) == sorted(expected), (engine, sorted(set(got) ^ set(expected))[:10])
        assert [name for name in expected if got[name] != expected[name]] == [], engine


@pytest.mark.parametrize(
    ("answers", "message"),
    [
        ({"project_name": "../escape"}, "Validation error for question 'project_name': invalid value for project_name"),
        ({"latency_budget_ms": 10}, "invalid value for latency_budget_ms: 10 (allowed: an integer from 50"),
        ({"self_hosted": "small"}, "self_hosted needs 'local' in providers"),
        ({"providers": ["openai", "openai"]}, "lists a provider twice"),
        ({"providers": "openai,mistral"}, "invalid value for providers: 'mistral'"),
    ],
    ids=["name", "range", "cross-field", "duplicate", "unknown-provider"],
)
def test_copier_refuses_bad_answers_with_the_clis_message(tmp_path: Path, answers: dict, message: str) -> None:
    with pytest.raises(ValueError, match="Validation error") as exc:
        by_copier(answers, tmp_path / "p")
    assert message in str(exc.value) and "\n" not in str(exc.value)
    assert not (tmp_path / "p" / "README.md").exists()

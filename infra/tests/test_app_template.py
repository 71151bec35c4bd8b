"""The generated app stack (templates/.../infra/app) for the held-in examples, from real blueprints:
its Pulumi.dev.yaml says exactly what `stack_to_config` says, and what it renders passes every check."""

from __future__ import annotations

import functools
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from aistarter_infra.render import RenderResult, default_platform_outputs, render_program
from aistarter_infra.stack_config import gpu_pools_from_stack, stack_to_config
from aistarter_infra.validate import validate_manifests
from conftest import require

aistarter = pytest.importorskip("aistarter.render", reason="the aistarter generator package is not importable")

HELD_IN_ANSWERS: dict[str, dict[str, Any]] = {
    "chat": {"project_name": "chat-demo", "use_case": "chat", "self_hosted": "none", "cloud": "aws",
             "providers": ["openai", "anthropic"]},
    "rag-small-existing": {"project_name": "rag-demo", "use_case": "rag", "self_hosted": "small",
                           "cloud": "existing", "providers": ["openai", "local"], "cost_priority": "cost",
                           "latency_budget_ms": 600_000},
    "batch-large": {"project_name": "batch-demo", "use_case": "batch", "self_hosted": "large", "cloud": "gcp",
                    "providers": ["local"], "cost_priority": "cost"},
    "agents-azure": {"project_name": "agents_demo", "use_case": "agents", "self_hosted": "small",
                     "cloud": "azure", "providers": ["anthropic", "local"], "vector_store": "pgvector",
                     "task_queue": "arq", "observability": "phoenix", "cost_priority": "cost"},
}


@functools.cache
def generated(name: str, root: str) -> tuple[Path, dict[str, Any], dict[str, Any]]:
    from aistarter.decide import decide
    from aistarter.questions import Answers

    answers = Answers(**HELD_IN_ANSWERS[name])
    out = Path(root) / name
    out.mkdir(parents=True, exist_ok=True)
    project = aistarter.render_project(answers, out, "copier")
    stack = decide(answers).stack.model_dump(mode="json")
    return project, stack, answers.model_dump(mode="json")


@pytest.fixture(scope="module")
def project_of(tmp_path_factory: pytest.TempPathFactory) -> Any:
    root = str(tmp_path_factory.mktemp("generated"))
    return lambda name: generated(name, root)


def platform_outputs(stack: dict[str, Any]) -> dict[str, str] | None:
    if stack["cloud"] == "existing":
        return None
    return default_platform_outputs(stack["cloud"])


def render(project: Path, stack: dict[str, Any]) -> RenderResult:
    return render_program(project / "infra" / "app", "dev", platform_outputs=platform_outputs(stack))


@pytest.mark.parametrize("name", sorted(HELD_IN_ANSWERS))
def test_generated_stack_config_is_the_blueprint(name: str, project_of: Any) -> None:
    project, stack, answers = project_of(name)
    app = project / "infra" / "app"
    pulumi_project = yaml.safe_load((app / "Pulumi.yaml").read_text())["name"]
    slug = pulumi_project.removesuffix("-app")
    config = yaml.safe_load((app / "Pulumi.dev.yaml").read_text())["config"]
    written = {k.split(":", 1)[1]: v for k, v in config.items()}
    assert all(k.startswith(pulumi_project + ":") for k in config)
    assert written == stack_to_config(stack, slug, answers["latency_budget_ms"])


@pytest.mark.parametrize("name", sorted(HELD_IN_ANSWERS))
def test_generated_stack_renders_and_validates(name: str, project_of: Any) -> None:
    project, stack, _ = project_of(name)
    result = render(project, stack)
    report = validate_manifests(result.manifests, gpu_pools_from_stack(stack))
    assert report.schema_problems == [] and report.gpu_problems == []
    require(report.checkov is not None, report.checkov_missing)
    assert report.checkov is not None and report.checkov.ok, report.summary()
    workloads = result.find("Deployment") + result.find("StatefulSet")
    assert ("model-server" in {m["metadata"]["name"] for m in workloads}) == bool(stack["model_server"])


@pytest.mark.slow
@pytest.mark.parametrize("name", ["rag-small-existing", "batch-large"])
def test_generated_app_tests_pass(name: str, project_of: Any) -> None:
    project, _, _ = project_of(name)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           "infra/tests/test_app_stack.py"], cwd=project, env=env, capture_output=True, text=True,
                          timeout=600, check=False)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert " passed" in proc.stdout and " failed" not in proc.stdout

"""The template's platform and policy files agree with the library: the rendered Pulumi.dev.yaml is exactly
`config_from_stack(STACK)`, policy-config.json is exactly `pack_config(settings_from_stack(STACK))`, each cloud's
requirements list only its SDK, and conditional files appear only where they belong."""

from __future__ import annotations

import json
import sys
from functools import cache
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aistarter_infra.platform.render import load_stack_config, render_platform_dir  # noqa: E402
from aistarter_infra.platform.spec import config_from_stack  # noqa: E402
from aistarter_infra.policy.pack import load_pack_config, pack_config, settings_from_stack  # noqa: E402

SDK_REQUIREMENTS = {"aws": {"pulumi-aws", "pulumi-eks"}, "gcp": {"pulumi-gcp"},
                    "azure": {"pulumi-azure-native"}}
ALL_SDK_REQUIREMENTS = set().union(*SDK_REQUIREMENTS.values())


@cache
def generated(cloud: str, size: str, cost: str, root: Path) -> tuple[Path, dict[str, Any]]:
    from aistarter.decide import decide
    from aistarter.questions import Answers
    from aistarter.render import render_project

    providers = ["openai", "local"] if size != "none" else ["openai"]
    answers = Answers(project_name="demo", self_hosted=size, cloud=cloud, providers=providers, cost_priority=cost,
                      traffic="spiky", latency_budget_ms=600_000 if cost == "cost" else 1_000)
    out = root / f"{cloud}-{size}-{cost}"
    project = render_project(answers, out, "copier")
    return project, decide(answers).stack.model_dump(mode="json")


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("platform-template")


CASES = [("aws", "small", "cost"), ("aws", "large", "latency"), ("gcp", "small", "latency"),
         ("gcp", "large", "cost"), ("azure", "small", "cost"), ("azure", "none", "cost")]


@pytest.mark.parametrize(("cloud", "size", "cost"), CASES)
def test_stack_config_is_the_blueprint(cloud: str, size: str, cost: str, root: Path) -> None:
    project, stack = generated(cloud, size, cost, root)
    name, values = load_stack_config(project / "infra" / "platform", "dev")
    assert name == "demo-platform"
    assert values == config_from_stack(stack, cluster_name="demo")


@pytest.mark.parametrize(("cloud", "size", "cost"), CASES)
def test_policy_config_is_the_blueprint(cloud: str, size: str, cost: str, root: Path) -> None:
    project, stack = generated(cloud, size, cost, root)
    path = project / "infra" / "policy" / "policy-config.json"
    assert json.loads(path.read_text(encoding="utf-8")) == pack_config(settings_from_stack(stack))
    assert load_pack_config(path) == settings_from_stack(stack)


@pytest.mark.parametrize("cloud", ["aws", "gcp", "azure"])
def test_requirements_name_only_the_chosen_cloud(cloud: str, root: Path) -> None:
    project, _ = generated(cloud, "small", "cost" if cloud != "gcp" else "latency", root)
    lines = (project / "infra" / "platform" / "requirements.txt").read_text(encoding="utf-8").splitlines()
    names = {line.split("==")[0].split(">=")[0].strip() for line in lines if line and not line.startswith("#")}
    assert SDK_REQUIREMENTS[cloud] <= names
    assert not names & (ALL_SDK_REQUIREMENTS - SDK_REQUIREMENTS[cloud])


def test_generated_platform_folder_renders_under_mocks(root: Path) -> None:
    project, stack = generated("gcp", "large", "cost", root)
    result = render_platform_dir(project / "infra" / "platform")
    gpu = [p for p in result.pool_views() if p.is_gpu]
    assert len(gpu) == 1 and gpu[0].max_nodes == stack["gpu"]["max_nodes"]


def test_existing_cloud_gets_policy_but_no_platform(root: Path) -> None:
    project, _ = generated("existing", "small", "cost", root)
    assert not (project / "infra" / "platform").exists()
    assert (project / "infra" / "policy" / "PulumiPolicy.yaml").is_file()
    assert not (project / "infra" / "tests" / "test_platform_stack.py").exists()
    assert (project / "infra" / "tests" / "test_policy_pack.py").is_file()
    decisions = {p.name for p in (project / "docs" / "decisions").iterdir()}
    assert "0008-node-autoscaler.md" not in decisions and "0009-gpu-pool.md" not in decisions
    assert "0010-database.md" not in decisions


@pytest.mark.parametrize(("cloud", "size", "cost", "autoscaler_adr", "gpu_adr"), [
    ("aws", "small", "cost", True, True), ("gcp", "large", "cost", False, True),
    ("azure", "none", "cost", False, False)])
def test_decision_records(cloud: str, size: str, cost: str, autoscaler_adr: bool, gpu_adr: bool, root: Path) -> None:
    project, stack = generated(cloud, size, cost, root)
    decisions = project / "docs" / "decisions"
    assert (decisions / "0008-node-autoscaler.md").exists() is autoscaler_adr
    assert (decisions / "0009-gpu-pool.md").exists() is gpu_adr
    if gpu_adr:
        text = (decisions / "0009-gpu-pool.md").read_text(encoding="utf-8")
        gpu, cost_est = stack["gpu"], stack["cost"]
        assert gpu["instance_type"] in text and f"{gpu['min_nodes']} to {gpu['max_nodes']}" in text
        assert f"| chosen plan | {int(cost_est['planned_monthly'])} |" in text
        assert f"| always-on at peak size | {int(cost_est['always_on_monthly'])} |" in text
        assert cost_est["as_of"] in text


MINE = ("infra/platform", "infra/policy", "infra/tests/test_platform_stack.py", "infra/tests/test_policy_pack.py",
        "docs/decisions/0008-node-autoscaler.md", "docs/decisions/0009-gpu-pool.md",
        "docs/decisions/0010-database.md")


def _files(project: Path) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    for rel in MINE:
        path = project / rel
        for item in ([path] if path.is_file() else sorted(path.rglob("*")) if path.is_dir() else []):
            if item.is_file():
                out[item.relative_to(project).as_posix()] = item.read_bytes()
    return out


@pytest.mark.parametrize("cloud", ["aws", "existing"])
def test_both_engines_write_the_same_platform_and_policy_files(cloud: str, tmp_path: Path) -> None:
    from aistarter.questions import Answers
    from aistarter.render import render_project

    answers = Answers(project_name="demo", self_hosted="small", cloud=cloud, providers=["openai", "local"])
    copier = _files(render_project(answers, tmp_path / "copier", "copier"))
    cookiecutter = _files(render_project(answers, tmp_path / "cookiecutter", "cookiecutter"))
    assert copier == cookiecutter
    assert any(name.startswith("infra/platform/") for name in copier) is (cloud != "existing")
    assert not (tmp_path / "cookiecutter" / "demo" / "infra" / "Pulumi.yaml").exists()


def test_render_writes_resources_json_for_both_stacks(root: Path, tmp_path: Path) -> None:
    """`aistarter infra render` (python -m aistarter_infra ... --platform-dir) writes OUT/platform/resources.json
    and OUT/app/resources.json: lists of {type, name, inputs} with every secret masked."""
    from aistarter_infra.pipeline import main
    from aistarter_infra.render import SECRET_PLACEHOLDER

    project, _ = generated("azure", "small", "cost", root)
    infra = project / "infra"
    code = main([str(infra / "app"), "--out", str(tmp_path), "--no-checkov", "--platform-dir",
                 str(infra / "platform")])
    assert code == 0
    platform = json.loads((tmp_path / "platform" / "resources.json").read_text(encoding="utf-8"))
    app = json.loads((tmp_path / "app" / "resources.json").read_text(encoding="utf-8"))
    for resources in (platform, app):
        assert resources and all(set(r) == {"type", "name", "inputs"} for r in resources)
    (server,) = [r for r in platform if r["type"] == "azure-native:dbforpostgresql:Server"]
    assert server["inputs"]["administratorLoginPassword"] == SECRET_PLACEHOLDER
    text = (tmp_path / "platform" / "resources.json").read_text(encoding="utf-8")
    assert "apiVersion: v1" not in text, "no kubeconfig in the platform resources"
    outputs = json.loads((tmp_path / "platform" / "outputs.json").read_text(encoding="utf-8"))
    assert outputs["database_url"] == SECRET_PLACEHOLDER and outputs["kubeconfig"] == SECRET_PLACEHOLDER
    assert any(r["type"] == "pulumi:pulumi:StackReference" for r in app)


@pytest.mark.parametrize(("cloud", "size", "cost"), [("aws", "small", "cost"), ("gcp", "large", "cost"),
                                                      ("azure", "none", "cost")])
def test_database_adr_states_the_configured_tier_and_price(cloud: str, size: str, cost: str, root: Path) -> None:
    from aistarter_infra.platform.database import default_tier

    project, stack = generated(cloud, size, cost, root)
    text = (project / "docs" / "decisions" / "0010-database.md").read_text(encoding="utf-8")
    tier = default_tier(cloud, stack["vector_store"])
    _, values = load_stack_config(project / "infra" / "platform", "dev")
    assert values["database"]["tier"] == tier.name
    assert f"`{tier.name}`" in text and f"about {int(tier.monthly_usd)} USD" in text
    assert "databasePassword" in text and "Rejected alternatives" in text


@pytest.mark.parametrize(("cloud", "size", "cost", "title"), [
    ("aws", "small", "cost", "AWS Load Balancer Controller"), ("gcp", "large", "cost", "GKE Gateway"),
    ("azure", "none", "cost", "Application Gateway for Containers"), ("existing", "small", "cost", "named in config")])
def test_ingress_adr_names_the_integration_and_the_timeout(cloud: str, size: str, cost: str, title: str,
                                                          root: Path) -> None:
    from aistarter_infra.render import read_program

    project, _ = generated(cloud, size, cost, root)
    app_name, raw = read_program(project / "infra" / "app", "dev")
    api = raw[f"{app_name}:api"]
    text = (project / "docs" / "decisions" / "0011-ingress.md").read_text(encoding="utf-8")
    idle = max(120, -(-int(api["latency_budget_ms"]) // 1000) + 60)  # components/ingress.idle_timeout_s
    assert title in text.splitlines()[0]
    assert f"{idle} s" in text and "ingress-nginx" in text and "retired in March 2026" in text

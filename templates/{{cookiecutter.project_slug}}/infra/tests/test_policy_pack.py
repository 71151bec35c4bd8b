"""The policy pack (infra/policy): its settings are the blueprint's, it passes on this project's own stacks,
and each mandatory rule catches the mistake it exists for (checked on a broken copy of a real resource)."""
{%- set gpu = cookiecutter._blueprint.stack.gpu %}
{%- set server = cookiecutter._blueprint.stack.model_server %}

from __future__ import annotations

import copy
import functools
import importlib.util
import os
import sys
from pathlib import Path
from typing import Any

import pytest

INFRA = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(INFRA))

from aistarter_infra.policy import ADVISORY, RULES, evaluate, load_pack_config  # noqa: E402
from aistarter_infra.policy.rules import resources_from_manifests  # noqa: E402

CLOUD = "{{ cookiecutter.cloud }}"
SDKS = {"aws": ("pulumi_aws", "pulumi_eks"), "gcp": ("pulumi_gcp",), "azure": ("pulumi_azure_native",),
        "existing": ()}
SETTINGS = load_pack_config(INFRA / "policy" / "policy-config.json")
HAS_GPU = {{ 'True' if gpu else 'False' }}


def _require(modules: tuple[str, ...], why: str) -> None:
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        message = f"{', '.join(missing)} not installed ({why})"
        if os.environ.get("AISTARTER_REQUIRE_SERVICES") == "1":
            pytest.fail(message)
        pytest.skip(message)


@functools.cache
def _stacks() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(platform resources, app manifests) rendered under mocks from this project's dev stacks."""
    from aistarter_infra.render import render_program

    platform_resources: list[dict[str, Any]] = []
    outputs = None
    if CLOUD != "existing":
        from aistarter_infra.platform.render import render_platform_dir

        platform = render_platform_dir(INFRA / "platform", "dev")
        platform_resources, outputs = platform.resources, platform.outputs
    app = render_program(INFRA / "app", "dev", platform_outputs=outputs)
    return platform_resources, app.manifests


@pytest.fixture
def stacks() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    _require(SDKS[CLOUD], "pip install -r infra/platform/requirements.txt")
    return _stacks()


def _find(manifests: list[dict[str, Any]], kind: str, component: str) -> dict[str, Any]:
    for m in manifests:
        if m["kind"] == kind and m["metadata"].get("labels", {}).get("app.kubernetes.io/component") == component:
            return copy.deepcopy(m)
    raise AssertionError(f"no {kind} with component={component}")


def _violations(manifest: dict[str, Any]) -> dict[str, list[str]]:
    return {rule: found for rule, found in evaluate(resources_from_manifests([manifest]), SETTINGS).items() if found}


def test_settings_are_the_blueprints() -> None:
    assert SETTINGS.gpu_max_nodes_cap == {{ gpu.max_nodes if gpu else 0 }}
    assert SETTINGS.scale_to_zero is {{ 'True' if server and server.scale_to_zero else 'False' }}
{%- if gpu %}
    assert (SETTINGS.gpu_label_key, SETTINGS.gpu_label_value) == ("{{ gpu.pool_label_key }}", "{{ gpu.pool_label_value }}")
    assert (SETTINGS.gpu_taint_key, SETTINGS.gpu_taint_value, SETTINGS.gpu_taint_effect) == (
        "{{ gpu.taint.key }}", "{{ gpu.taint.value }}", "{{ gpu.taint.effect }}")
{%- endif %}


def test_pack_passes_on_this_projects_stacks(stacks: tuple[list[dict[str, Any]], list[dict[str, Any]]]) -> None:
    platform_resources, manifests = stacks
    found = evaluate(platform_resources + resources_from_manifests(manifests), SETTINGS)
    assert {rule: p for rule, p in found.items() if p and rule not in ADVISORY} == {}
    assert found["gpu-scale-to-zero"] == [], "advisory: scale to zero drifted from the blueprint"


def test_latest_image_is_caught(stacks: tuple[list[dict[str, Any]], list[dict[str, Any]]]) -> None:
    api = _find(stacks[1], "Deployment", "api")
    api["spec"]["template"]["spec"]["containers"][0]["image"] = "example/api:latest"
    assert list(_violations(api)) == ["no-latest-image-tags"]


def test_root_api_is_caught(stacks: tuple[list[dict[str, Any]], list[dict[str, Any]]]) -> None:
    api = _find(stacks[1], "Deployment", "api")
    api["spec"]["template"]["spec"]["containers"][0].setdefault("securityContext", {})["runAsUser"] = 0
    assert list(_violations(api)) == ["api-not-root"]
{%- if gpu %}


def test_gpu_pod_without_toleration_is_caught(stacks: tuple[list[dict[str, Any]], list[dict[str, Any]]]) -> None:
    server = _find(stacks[1], "Deployment", "model-server")
    server["spec"]["template"]["spec"]["tolerations"] = []
    assert list(_violations(server)) == ["gpu-pods-tolerate-and-select"]
{%- endif %}
{%- if gpu and cookiecutter.cloud != 'existing' %}


def test_gpu_pool_over_budget_is_caught(stacks: tuple[list[dict[str, Any]], list[dict[str, Any]]]) -> None:
    tighter = SETTINGS.merged({"gpuMaxNodesCap": SETTINGS.gpu_max_nodes_cap - 1})
    assert evaluate(stacks[0], tighter)["gpu-pool-budget-cap"]
{%- endif %}


def test_policy_pack_entry_point_builds_every_rule(monkeypatch: pytest.MonkeyPatch) -> None:
    """Runs infra/policy/__main__.py as the Pulumi CLI would, with the analyzer server swapped for a recorder."""
    _require(("pulumi_policy",), "pip install -r infra/policy/requirements.txt")
    import runpy

    import pulumi_policy

    captured: dict[str, Any] = {}
    monkeypatch.setattr(pulumi_policy, "PolicyPack", lambda **kwargs: captured.update(kwargs))
    runpy.run_path(str(INFRA / "policy" / "__main__.py"), run_name="__main__")
    assert captured["name"] == "{{ cookiecutter.project_slug | replace('_', '-') }}-policy"
    levels = {p.name: p.enforcement_level for p in captured["policies"]}
    assert sorted(levels) == sorted(RULES)
    assert levels["gpu-scale-to-zero"] == pulumi_policy.EnforcementLevel.ADVISORY

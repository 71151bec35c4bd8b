"""CrossGuard wrappers around the rules: one ResourceValidationPolicy per rule, configurable per stack.

`build_policies(settings)` returns the policies; the generated `infra/policy/__main__.py` hands them to
`pulumi_policy.PolicyPack` (whose constructor starts the analyzer server, so tests never call it).
Each policy's config schema carries the blueprint-derived defaults, so
`pulumi preview --policy-pack infra/policy --policy-pack-config infra/policy/policy-config.json` and a plain
`--policy-pack infra/policy` judge the same way.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from .rules import ADVISORY, RULES, PolicySettings

DESCRIPTIONS = {
    "gpu-pool-taint-and-label": "GPU node pools carry the GPU taint and the pool label.",
    "gpu-pods-tolerate-and-select": "Pods requesting nvidia.com/gpu tolerate the GPU taint and select the GPU pool.",
    "api-not-root": "The API runs as a non-root user, unprivileged, without privilege escalation.",
    "no-latest-image-tags": "Container images are pinned to an exact tag or digest, never latest.",
    "gpu-pool-budget-cap": "GPU pools cannot grow past the configured budget cap of nodes.",
    "gpu-scale-to-zero": "When the blueprint chose scale to zero, GPU pools and the model server keep a floor of 0.",
}
# The settings each rule reads; they become that policy's config properties.
RULE_SETTINGS: dict[str, tuple[str, ...]] = {
    "gpu-pool-taint-and-label": ("gpu_label_key", "gpu_label_value", "gpu_taint_key", "gpu_taint_value",
                                 "gpu_taint_effect"),
    "gpu-pods-tolerate-and-select": ("gpu_label_key", "gpu_label_value", "gpu_taint_key", "gpu_taint_value",
                                     "gpu_taint_effect"),
    "api-not-root": ("api_label_key", "api_label_value"),
    "no-latest-image-tags": (),
    "gpu-pool-budget-cap": ("gpu_max_nodes_cap",),
    "gpu-scale-to-zero": ("scale_to_zero", "api_label_key", "model_server_label_value"),
}


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def _schema_type(value: Any) -> str:
    return "boolean" if isinstance(value, bool) else "integer" if isinstance(value, int) else "string"


def config_properties(rule: str, settings: PolicySettings) -> dict[str, dict[str, Any]]:
    values = asdict(settings)
    return {_camel(k): {"type": _schema_type(values[k]), "default": values[k]} for k in RULE_SETTINGS[rule]}


def settings_from_pack_config(config: Mapping[str, Any], base: PolicySettings | None = None) -> PolicySettings:
    """Settings from a `--policy-pack-config` style mapping ({policy name: {setting: value}})."""
    settings = base or PolicySettings()
    for rule in RULES:
        entry = config.get(rule)
        if isinstance(entry, Mapping):
            settings = settings.merged({k: v for k, v in entry.items() if k != "enforcementLevel"})
    return settings


def load_pack_config(path: Path) -> PolicySettings:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"policy config {path} is unreadable ({exc}); regenerate it or fix the JSON") from exc
    return settings_from_pack_config(data)


def pack_config(settings: PolicySettings) -> dict[str, dict[str, Any]]:
    """The `--policy-pack-config` JSON for these settings: every rule's level and parameters."""
    out: dict[str, dict[str, Any]] = {}
    for rule in RULES:
        entry: dict[str, Any] = {"enforcementLevel": "advisory" if rule in ADVISORY else "mandatory"}
        entry.update({k: v["default"] for k, v in config_properties(rule, settings).items()})
        out[rule] = entry
    return out


def make_validator(rule: str, settings: PolicySettings) -> Callable[[Any, Any], None]:
    """A CrossGuard validate callback: (ResourceValidationArgs, report_violation)."""
    check = RULES[rule]

    def validate(args: Any, report_violation: Any) -> None:
        effective = settings.merged(args.get_config() or {})
        for message in check(args.resource_type, args.name, args.props or {}, effective):
            report_violation(message, None)

    return validate


def build_policies(settings: PolicySettings) -> list[Any]:
    from pulumi_policy import EnforcementLevel, PolicyConfigSchema, ResourceValidationPolicy

    policies = []
    for rule in RULES:
        props = config_properties(rule, settings)
        policies.append(ResourceValidationPolicy(
            name=rule,
            description=DESCRIPTIONS[rule],
            validate=make_validator(rule, settings),
            enforcement_level=EnforcementLevel.ADVISORY if rule in ADVISORY else EnforcementLevel.MANDATORY,
            config_schema=PolicyConfigSchema(properties=props) if props else None,
        ))
    return policies


def settings_from_stack(stack: Mapping[str, Any], budget_cap: int | None = None) -> PolicySettings:
    """Defaults from a blueprint STACK: its GPU label/taint, its max_nodes as the cap, its scale-to-zero choice."""
    gpu = stack.get("gpu") or {}
    server = stack.get("model_server") or {}
    base = PolicySettings()
    if not gpu:
        # No GPUs budgeted: a GPU pool added later trips the cap until someone raises it on purpose.
        return replace(base, gpu_max_nodes_cap=budget_cap or 0)
    taint = gpu.get("taint") or {}
    return PolicySettings(
        gpu_label_key=gpu.get("pool_label_key", base.gpu_label_key),
        gpu_label_value=gpu.get("pool_label_value", base.gpu_label_value),
        gpu_taint_key=taint.get("key", base.gpu_taint_key),
        gpu_taint_value=taint.get("value", base.gpu_taint_value),
        gpu_taint_effect=taint.get("effect", base.gpu_taint_effect),
        gpu_max_nodes_cap=budget_cap if budget_cap is not None else int(gpu.get("max_nodes", base.gpu_max_nodes_cap)),
        scale_to_zero=bool(server.get("scale_to_zero", False)),
    )

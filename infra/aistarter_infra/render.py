"""Render a Pulumi program to Kubernetes YAML without a cluster or the Pulumi CLI.

The program runs under `pulumi.runtime.set_mocks` with the stack's `Pulumi.<stack>.yaml` config. Every resource
registration is recorded: Kubernetes objects become manifests, Helm releases become release + values, other
resources (cloud SDKs, StackReferences) are kept as type + inputs for their own tests.
"""

from __future__ import annotations

import asyncio
import json
import runpy
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import yaml

SECRET_PLACEHOLDER = "rendered-secret-placeholder"
# Pulumi's marker for a secret value in serialized properties.
_SECRET_SIG_KEY = "4dabf18193072939515e22adb298388d"
_SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"
HELM_RELEASE = "kubernetes:helm.sh/v3:Release"
STACK_REFERENCE = "pulumi:pulumi:StackReference"
# Platform outputs that are Pulumi secrets (the platform program exports them so).
SECRET_OUTPUTS = ("kubeconfig", "database_url")

# Cluster facts a mocked platform StackReference returns when the caller gives none: the blueprint defaults.
DEFAULT_STORAGE_CLASS = {"aws": "gp3", "gcp": "standard-rwo", "azure": "managed-csi", "existing": ""}


def default_platform_outputs(cloud: str = "aws") -> dict[str, Any]:
    return {
        "kubeconfig": "apiVersion: v1\nkind: Config\n",
        "gpu_pool_label_key": "aistarter.dev/pool",
        "gpu_pool_label_value": "gpu",
        "gpu_taint_key": "nvidia.com/gpu",
        "gpu_taint_value": "present",
        "gpu_taint_effect": "NoSchedule",
        "storage_class": DEFAULT_STORAGE_CLASS.get(cloud, ""),
        # A secret output: the render shows only the placeholder in the `database` Secret.
        "database_url": "postgresql://app:rendered@database.platform.internal:5432/app?sslmode=require",
        "monitor_labels": {"release": "kube-prometheus-stack"},
        "ingress_class": "nginx",
    }


class RenderError(RuntimeError):
    """The program failed under mocks; the message says which stack and why."""


@dataclass
class RenderResult:
    program_dir: Path
    project: str
    stack: str
    manifests: list[dict[str, Any]] = field(default_factory=list)
    helm_releases: list[dict[str, Any]] = field(default_factory=list)
    other: list[dict[str, Any]] = field(default_factory=list)
    components: list[dict[str, str]] = field(default_factory=list)
    # Every custom resource as {type, name, inputs} with secrets masked: what `resources.json` holds.
    resources: list[dict[str, Any]] = field(default_factory=list)

    @property
    def resource_count(self) -> int:
        """Kubernetes objects plus Helm releases: what `pulumi up` would create in the cluster."""
        return len(self.manifests) + len(self.helm_releases)

    def kinds(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for m in self.manifests:
            counts[m["kind"]] = counts.get(m["kind"], 0) + 1
        if self.helm_releases:
            counts["HelmRelease"] = len(self.helm_releases)
        return dict(sorted(counts.items()))

    def find(self, kind: str, name: str | None = None) -> list[dict[str, Any]]:
        return [m for m in self.manifests
                if m["kind"] == kind and (name is None or m.get("metadata", {}).get("name") == name)]

    def get(self, kind: str, name: str) -> dict[str, Any]:
        found = self.find(kind, name)
        if len(found) != 1:
            raise KeyError(f"expected one {kind}/{name}, found {len(found)}")
        return found[0]

    def release(self, name: str) -> dict[str, Any] | None:
        return next((r for r in self.helm_releases if r["name"] == name), None)


def _clean(value: Any) -> Any:
    """Mock inputs back to plain YAML: ints stay ints, secrets become placeholders, unknowns/None vanish."""
    if isinstance(value, dict):
        if value.get(_SECRET_SIG_KEY) == _SECRET_SIG:
            return _redact(_clean(value.get("value")))
        return {k: _clean(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_clean(v) for v in value if v is not None]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _redact(value: Any) -> Any:
    # Keep a secret's shape (map keys) for schema validation, never its values.
    if isinstance(value, dict):
        return {k: _redact(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_redact(v) for v in value]
    return SECRET_PLACEHOLDER


class _RecordingMocks(pulumi.runtime.Mocks):
    def __init__(self, stack_outputs: dict[str, dict[str, Any]]) -> None:
        self.records: list[tuple[str, str, dict[str, Any], bool]] = []
        self.stack_outputs = stack_outputs

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str | None, dict[Any, Any]]:
        # A read of an existing object (Resource.get) has an id and counts as a custom resource, not a component.
        self.records.append((args.typ, args.name, dict(args.inputs), bool(args.custom) or bool(args.resource_id)))
        if args.typ == STACK_REFERENCE:
            ref = args.inputs.get("name", args.name)
            outputs = self.stack_outputs.get(ref, self.stack_outputs.get("*", {}))
            return f"{args.name}-id", {"name": ref, "outputs": outputs,
                                       "secretOutputNames": [n for n in SECRET_OUTPUTS if n in outputs]}
        return f"{args.name}-id", dict(args.inputs)

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[Any, Any], list[tuple[str, str]] | None]:
        return {}, None


def _config_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value)
    return str(value)


def read_program(program_dir: Path, stack: str) -> tuple[str, dict[str, Any]]:
    """Project name from Pulumi.yaml and the raw config map of Pulumi.<stack>.yaml."""
    project_file = program_dir / "Pulumi.yaml"
    if not project_file.is_file():
        raise RenderError(f"{project_file} not found: point at a Pulumi program directory (infra/app)")
    project = yaml.safe_load(project_file.read_text())["name"]
    stack_file = program_dir / f"Pulumi.{stack}.yaml"
    if not stack_file.is_file():
        raise RenderError(f"{stack_file} not found: create it or pass an existing stack name")
    config = (yaml.safe_load(stack_file.read_text()) or {}).get("config") or {}
    return project, config


def _app_secret_keys(project: str, config: dict[str, Any]) -> list[str]:
    """Secrets an app stack requires, so the render can supply placeholders instead of failing."""
    from .config import ConfigError, config_from_mapping, required_secret_keys

    prefix = f"{project}:"
    plain = {k[len(prefix):]: v for k, v in config.items() if k.startswith(prefix) and not _is_secure(v)}
    if "api" not in plain:
        return []
    plain.setdefault("project", "render")  # labels only; the secrets needed do not depend on it
    try:
        cfg = config_from_mapping(plain)
    except ConfigError:
        return []  # the program itself reports the bad value, with its key, when it runs
    return required_secret_keys(cfg)


def _is_secure(value: Any) -> bool:
    return isinstance(value, dict) and set(value) == {"secure"}


def render_program(program_dir: str | Path, stack: str = "dev",
                   platform_outputs: dict[str, Any] | None = None,
                   secret_keys: Iterable[str] | None = None,
                   config_overrides: dict[str, Any] | None = None) -> RenderResult:
    """Run the Pulumi program in `program_dir` for `stack` under mocks and collect every resource.

    `platform_outputs` answers any StackReference (default: blueprint defaults for the stack's cloud);
    `secret_keys` get placeholder values when unset (default: the app stack's required/optional secrets);
    `config_overrides` replace config keys (un-namespaced) for this render only.
    """
    program_dir = Path(program_dir).resolve()
    project, raw = read_program(program_dir, stack)
    prefix = f"{project}:"
    config: dict[str, str] = {}
    secret_names: list[str] = []
    for key, value in raw.items():
        full = key if ":" in key else prefix + key
        if _is_secure(value):
            config[full] = SECRET_PLACEHOLDER
            secret_names.append(full)
        else:
            config[full] = _config_value(value)
    for key, value in (config_overrides or {}).items():
        config[prefix + key] = _config_value(value)
    keys = list(secret_keys) if secret_keys is not None else _app_secret_keys(project, raw | {
        prefix + k: v for k, v in (config_overrides or {}).items()})
    for key in keys:
        full = prefix + key
        if full not in config:
            config[full] = SECRET_PLACEHOLDER
            secret_names.append(full)

    cloud = str(raw.get(prefix + "cloud", "aws"))
    mocks = _RecordingMocks({"*": platform_outputs or default_platform_outputs(cloud)})
    install_mocks(mocks, project=project, stack=stack)
    pulumi.runtime.set_all_config(config, secret_names)
    main_file = program_dir / "__main__.py"
    added = str(program_dir) not in sys.path
    try:
        pulumi.runtime.mocks.test(lambda: runpy.run_path(str(main_file), run_name="__main__"))()
    except Exception as exc:  # re-raised with the stack named
        raise RenderError(f"{program_dir.name} stack {stack!r}: {exc}") from exc
    finally:
        if added and str(program_dir) in sys.path:
            sys.path.remove(str(program_dir))
    return collect(mocks.records, program_dir, project, stack)


def install_mocks(mocks: pulumi.runtime.Mocks, *, project: str, stack: str, monitor: Any = None) -> None:
    """Start a render under Pulumi mocks on an event loop of its own.

    Pulumi creates its futures on the thread's current loop, and a caller that ran `asyncio.run` earlier in
    the same process (a test suite, an in-process check) leaves the main thread with none.
    """
    asyncio.set_event_loop(asyncio.new_event_loop())
    pulumi.runtime.set_mocks(mocks, project=project, stack=stack, preview=False, monitor=monitor)


def collect(records: list[tuple[str, str, dict[str, Any], bool]], program_dir: Path, project: str,
            stack: str) -> RenderResult:
    result = RenderResult(program_dir=program_dir, project=project, stack=stack)
    for typ, name, inputs, custom in records:
        clean = _clean(inputs)
        if custom or typ == STACK_REFERENCE:
            result.resources.append({"type": typ, "name": name, "inputs": clean})
        if not custom and typ != STACK_REFERENCE:
            result.components.append({"type": typ, "name": name})
        elif typ == HELM_RELEASE:
            result.helm_releases.append({
                "name": clean.get("name", name),
                "chart": clean.get("chart"),
                "version": clean.get("version"),
                "repository": (clean.get("repositoryOpts") or {}).get("repo"),
                "namespace": clean.get("namespace"),
                "createNamespace": clean.get("createNamespace", False),
                "values": clean.get("values", {}),
            })
        elif typ.startswith("kubernetes:") and "apiVersion" in clean and "kind" in clean:
            result.manifests.append(clean)
        else:
            result.other.append({"type": typ, "name": name, "inputs": clean})
    result.manifests.sort(key=lambda m: (m["kind"], m.get("metadata", {}).get("namespace", ""),
                                         m.get("metadata", {}).get("name", "")))
    result.helm_releases.sort(key=lambda r: r["name"])
    return result


def _sorted(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _sorted(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [_sorted(v) for v in value]
    return value


def _sorted_release(release: dict[str, Any]) -> dict[str, Any]:
    return {k: (_sorted(v) if k == "values" else v) for k, v in release.items()}


def canonical(manifest: dict[str, Any]) -> dict[str, Any]:
    """apiVersion, kind, metadata first, everything else sorted: stable, diffable YAML across renders."""
    body = _sorted(manifest)
    head = {k: body.pop(k) for k in ("apiVersion", "kind", "metadata") if k in body}
    return {**head, **body}


def write_render(result: RenderResult, out_dir: str | Path) -> Path:
    """Write `<out>/<stack>/manifests.yaml` (multi-document) and `<out>/<stack>/helm/<release>.yaml`."""
    target = Path(out_dir) / result.stack
    target.mkdir(parents=True, exist_ok=True)
    docs = [canonical(m) for m in result.manifests]
    (target / "manifests.yaml").write_text(yaml.safe_dump_all(docs, sort_keys=False))
    helm_dir = target / "helm"
    if result.helm_releases:
        helm_dir.mkdir(exist_ok=True)
        for release in result.helm_releases:
            (helm_dir / f"{release['name']}.yaml").write_text(yaml.safe_dump(_sorted_release(release), sort_keys=False))
    summary = {"project": result.project, "stack": result.stack, "resource_count": result.resource_count,
               "kinds": result.kinds(), "components": result.components,
               "other": [{"type": o["type"], "name": o["name"]} for o in result.other]}
    (target / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return target


def write_resources(resources: list[dict[str, Any]], path: str | Path) -> Path:
    """`resources.json`: a list of {type, name, inputs}, secrets masked, keys sorted so diffs stay small."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    body = [{"type": r["type"], "name": r["name"], "inputs": _sorted(mask_secrets(r.get("inputs") or {}))}
            for r in resources]
    target.write_text(json.dumps(body, indent=1) + "\n", encoding="utf-8")
    return target


def mask_secrets(value: Any) -> Any:
    """Inputs with every Pulumi secret replaced by the placeholder (the same rule the manifests follow)."""
    return _clean(value)


def stacks_of(program_dir: str | Path) -> list[str]:
    return sorted(p.name[len("Pulumi."):-len(".yaml")] for p in Path(program_dir).glob("Pulumi.*.yaml"))


def render_all(program_dir: str | Path, out_dir: str | Path | None = None,
               platform_outputs: dict[str, Any] | None = None) -> list[RenderResult]:
    """Render every `Pulumi.<stack>.yaml` of a program; write them under `out_dir` when given."""
    results = []
    for stack in stacks_of(program_dir):
        result = render_program(program_dir, stack, platform_outputs=platform_outputs)
        if out_dir is not None:
            write_render(result, out_dir)
        results.append(result)
    if not results:
        raise RenderError(f"no Pulumi.<stack>.yaml in {program_dir}")
    return results

"""Validation of rendered manifests without a cluster: schemas, checkov and GPU scheduling consistency."""

from __future__ import annotations

import fnmatch
import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import yaml

from . import versions

SCHEMA_DIR = Path(__file__).parent / "schemas"
CHECKOV_SKIPS = Path(__file__).parent / "checkov_skips.yaml"
# The cluster minor the platform pins (versions.py): manifests are validated against that API.
DEFAULT_K8S_VERSION = versions.KUBERNETES
GPU_RESOURCE = "nvidia.com/gpu"
POD_TEMPLATE_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "ReplicationController"}


# ---------------------------------------------------------------- schemas


@cache
def _custom_schema(api_version: str, kind: str) -> dict[str, Any] | None:
    group, _, version = api_version.rpartition("/")
    path = SCHEMA_DIR / group / f"{kind.lower()}_{version}.json"
    return json.loads(path.read_text()) if group and path.is_file() else None


# API groups under k8s.io that are CRDs installed separately, not part of the API server.
_CRD_GROUPS_UNDER_K8S_IO = {"gateway.networking.k8s.io"}


def _is_builtin(api_version: str) -> bool:
    group = api_version.rpartition("/")[0]
    if group in _CRD_GROUPS_UNDER_K8S_IO:
        return False
    return group == "" or "." not in group or group.endswith(".k8s.io")


def _name(manifest: dict[str, Any]) -> str:
    meta = manifest.get("metadata") or {}
    ns = meta.get("namespace")
    return f"{manifest.get('kind')}/{(ns + '/') if ns else ''}{meta.get('name')}"


def validate_schemas(manifests: list[dict[str, Any]], k8s_version: str = DEFAULT_K8S_VERSION) -> list[str]:
    """Strict Kubernetes OpenAPI validation for built-in kinds, shipped CRD schemas for custom ones."""
    problems: list[str] = []
    for m in manifests:
        api_version, kind = m.get("apiVersion", ""), m.get("kind", "")
        if not api_version or not kind:
            problems.append(f"{_name(m)}: missing apiVersion or kind")
            continue
        if _is_builtin(api_version):
            try:
                kubernetes_validate.validate(m, k8s_version, strict=True)
            except kubernetes_validate.ValidationError as exc:
                path = "/".join(str(p) for p in exc.path) if hasattr(exc, "path") else ""
                problems.append(f"{_name(m)}: {exc.message} (at {path or 'root'}, k8s {k8s_version})")
            except kubernetes_validate.SchemaNotFoundError:
                problems.append(f"{_name(m)}: {api_version} {kind} does not exist in Kubernetes {k8s_version}")
            continue
        schema = _custom_schema(api_version, kind)
        if schema is None:
            problems.append(f"{_name(m)}: no CRD schema for {api_version} {kind} in {SCHEMA_DIR} "
                            "(add it and a line to SOURCES.md)")
            continue
        validator = jsonschema.validators.validator_for(schema)(schema)
        for err in sorted(validator.iter_errors(m), key=lambda e: list(e.path)):
            path = "/".join(str(p) for p in err.path)
            problems.append(f"{_name(m)}: {err.message} (at {path or 'root'})")
        meta = m.get("metadata") or {}
        if not meta.get("name"):
            problems.append(f"{_name(m)}: metadata.name is missing")
    return problems


# ---------------------------------------------------------------- checkov


@dataclass
class CheckovReport:
    passed: int = 0
    failed: list[dict[str, str]] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)
    version: str = ""

    @property
    def ok(self) -> bool:
        return not self.failed

    def summary(self) -> str:
        lines = [(f"checkov {self.version}: {self.passed} passed, {len(self.failed)} failed, "
                  f"{len(self.skipped)} skipped with a documented reason")]
        lines += [f"  FAILED {f['check_id']} {f['resource']}: {f['check_name']}" for f in self.failed]
        return "\n".join(lines)


class CheckovMissing(RuntimeError):
    """checkov is not installed where we look; the message says how to install it."""


# checkov pins an old `packaging` that conflicts with pulumi, so it lives outside the project's environment.
CHECKOV_HINT = ("checkov not found: install it in its own environment (pipx install checkov, or python3 -m venv "
                ".venv-checkov && .venv-checkov/bin/pip install checkov) and put it on PATH or set "
                "AISTARTER_CHECKOV to the executable")


def find_checkov() -> str | None:
    """`AISTARTER_CHECKOV` (path to the executable in its own venv), else `checkov` on PATH."""
    env = os.environ.get("AISTARTER_CHECKOV")
    if env:
        return env if Path(env).is_file() and os.access(env, os.X_OK) else None
    return shutil.which("checkov")


def load_skips(path: Path = CHECKOV_SKIPS) -> list[dict[str, Any]]:
    skips = yaml.safe_load(path.read_text()) or []
    for s in skips:
        if not s.get("id") or not s.get("reason") or not s.get("resources"):
            raise ValueError(f"{path}: every skip needs id, resources and a reason (got {s!r})")
    return skips


def _skip_for(check_id: str, resource: str, skips: list[dict[str, Any]]) -> dict[str, Any] | None:
    # checkov names resources Kind.namespace.name; skips are namespace-independent (Kind.name).
    parts = resource.split(".")
    short = f"{parts[0]}.{parts[-1]}" if len(parts) >= 2 else resource
    for s in skips:
        if s["id"] == check_id and any(fnmatch.fnmatchcase(short, pat) for pat in s["resources"]):
            return s
    return None


def run_checkov(manifests: list[dict[str, Any]], checkov: str | None = None,
                skips_file: Path = CHECKOV_SKIPS, timeout_s: int = 600) -> CheckovReport:
    """Scan the manifests with checkov's kubernetes framework; only documented skips may fail."""
    exe = checkov or find_checkov()
    if not exe:
        raise CheckovMissing(CHECKOV_HINT)
    skips = load_skips(skips_file)
    with tempfile.TemporaryDirectory(prefix="aistarter-checkov-") as tmp:
        target = Path(tmp) / "manifests.yaml"
        target.write_text(yaml.safe_dump_all(manifests, sort_keys=False))
        proc = subprocess.run(
            [exe, "-f", str(target), "--framework", "kubernetes", "--skip-download", "-o", "json", "--quiet"],
            capture_output=True, text=True, timeout=timeout_s, check=False,
            # checkov may phone home for its guideline mappings; there is nothing to fetch offline.
            env={**os.environ, "BC_SKIP_MAPPING": "TRUE", "CHECKOV_RUN_SCA_PACKAGE_SCAN_V2": "false"},
        )
    if proc.returncode not in (0, 1) or not proc.stdout.strip():
        raise RuntimeError(f"checkov exited {proc.returncode}: {proc.stderr.strip()[-2000:]}")
    data = json.loads(proc.stdout)
    if isinstance(data, list):
        data = next((d for d in data if d.get("check_type") == "kubernetes"), data[0])
    report = CheckovReport(version=(data.get("summary") or {}).get("checkov_version", ""))
    if not data.get("results"):
        # `--quiet` with no failures prints only a summary.
        report.passed = (data.get("summary") or {}).get("passed", 0)
        return report
    results = data["results"]
    report.passed = len(results.get("passed_checks", [])) or (data.get("summary") or {}).get("passed", 0)
    for f in results.get("failed_checks", []):
        entry = {"check_id": f["check_id"], "check_name": f.get("check_name", ""), "resource": f["resource"]}
        skip = _skip_for(f["check_id"], f["resource"], skips)
        if skip is not None:
            report.skipped.append({**entry, "reason": " ".join(skip["reason"].split())})
        else:
            report.failed.append(entry)
    return report


# ---------------------------------------------------------------- GPU scheduling consistency


def _pod_spec(m: dict[str, Any]) -> dict[str, Any] | None:
    kind = m.get("kind")
    spec = m.get("spec") or {}
    if kind == "Pod":
        return spec
    if kind in POD_TEMPLATE_KINDS:
        return (spec.get("template") or {}).get("spec")
    if kind == "CronJob":
        return (((spec.get("jobTemplate") or {}).get("spec") or {}).get("template") or {}).get("spec")
    return None


def _gpu_count(value: Any) -> int | None:
    if value is None:
        return None
    try:
        return int(str(value))
    except ValueError:
        return -1


def _tolerates(tolerations: list[dict[str, Any]], taint: dict[str, Any]) -> bool:
    for t in tolerations:
        if t.get("effect") and t["effect"] != taint.get("effect"):
            continue
        op = t.get("operator", "Equal")
        if op == "Exists" and (not t.get("key") or t.get("key") == taint.get("key")):
            return True
        if op == "Equal" and t.get("key") == taint.get("key") and str(t.get("value", "")) == str(
                taint.get("value", "")):
            return True
    return False


def _tp_arg(args: list[str]) -> int | None:
    for i, a in enumerate(args):
        if a in ("--tensor-parallel-size", "-tp") and i + 1 < len(args):
            return _gpu_count(args[i + 1])
        if a.startswith("--tensor-parallel-size="):
            return _gpu_count(a.split("=", 1)[1])
    return None


def check_gpu_consistency(manifests: list[dict[str, Any]], pools: list[dict[str, Any]]) -> list[str]:
    """Problems that would leave GPU pods Pending or mis-sized (empty list = consistent).

    Every pod template requesting nvidia.com/gpu must: set GPU limit == request; select a pool through its
    nodeSelector (labels that pool sets); tolerate every NoSchedule/NoExecute taint of that pool; and need no
    more GPUs than the pool's gpus_per_node (a vLLM --tensor-parallel-size must equal the GPUs it requests).
    A pool is {"name", "labels", "taints": [{"key","value","effect"}], "gpus_per_node"}.
    """
    problems: list[str] = []
    for m in manifests:
        pod = _pod_spec(m)
        if not pod:
            continue
        where = _name(m)
        total = 0
        for c in (pod.get("containers") or []) + (pod.get("initContainers") or []):
            res = c.get("resources") or {}
            req = _gpu_count((res.get("requests") or {}).get(GPU_RESOURCE))
            lim = _gpu_count((res.get("limits") or {}).get(GPU_RESOURCE))
            if req is None and lim is None:
                continue
            cname = f"{where} container {c.get('name')}"
            if lim is None:
                problems.append(f"{cname}: requests {GPU_RESOURCE}={req} without a limit (extended resources "
                                "need limit == request)")
                continue
            if req is not None and req != lim:
                problems.append(f"{cname}: {GPU_RESOURCE} request {req} != limit {lim}")
            if lim < 1:
                problems.append(f"{cname}: {GPU_RESOURCE} limit {lim} is not a positive integer")
                continue
            tp = _tp_arg([str(a) for a in (c.get("args") or []) + (c.get("command") or [])])
            if tp is not None and tp != lim:
                problems.append(f"{cname}: --tensor-parallel-size {tp} but {GPU_RESOURCE}={lim}")
            if c in (pod.get("containers") or []):
                total += lim
        if total == 0:
            continue
        selector = pod.get("nodeSelector") or {}
        tolerations = pod.get("tolerations") or []
        if not pools:
            problems.append(f"{where}: requests {total} GPU(s) but the platform defines no GPU pool")
            continue
        if not selector:
            problems.append(f"{where}: requests {total} GPU(s) without a nodeSelector on a GPU pool label "
                            f"(pools: {', '.join(p['name'] for p in pools)})")
            continue
        matching = [p for p in pools
                    if all((p.get("labels") or {}).get(k) == v for k, v in selector.items())]
        if not matching:
            pool_labels = "; ".join(f"{p['name']}: {p.get('labels')}" for p in pools)
            problems.append(f"{where}: nodeSelector {selector} matches no GPU pool's labels ({pool_labels})")
            continue
        reasons: list[str] = []
        for p in matching:
            blocking = [t for t in (p.get("taints") or []) if t.get("effect") in ("NoSchedule", "NoExecute")
                        and not _tolerates(tolerations, t)]
            if blocking:
                reasons.append(f"pool {p['name']}: no toleration for taint "
                               + ", ".join(f"{t['key']}={t.get('value', '')}:{t['effect']}" for t in blocking))
            elif total > int(p.get("gpus_per_node", 0)):
                reasons.append(f"pool {p['name']}: needs {total} GPUs on one node, nodes have "
                               f"{p.get('gpus_per_node')}")
            else:
                reasons = []
                break
        if reasons:
            problems.append(f"{where}: cannot schedule on any selected pool ({'; '.join(reasons)})")
    return problems


# ---------------------------------------------------------------- all together


@dataclass
class ValidationReport:
    schema_problems: list[str]
    gpu_problems: list[str]
    checkov: CheckovReport | None
    checkov_missing: str = ""

    @property
    def ok(self) -> bool:
        return not self.schema_problems and not self.gpu_problems and (self.checkov is None or self.checkov.ok)

    def summary(self) -> str:
        lines = [f"schema: {len(self.schema_problems)} problem(s)", *[f"  {p}" for p in self.schema_problems],
                 f"gpu: {len(self.gpu_problems)} problem(s)", *[f"  {p}" for p in self.gpu_problems]]
        lines.append(self.checkov.summary() if self.checkov else f"checkov: not run ({self.checkov_missing})")
        return "\n".join(lines)


def validate_manifests(manifests: list[dict[str, Any]], pools: list[dict[str, Any]],
                       k8s_version: str = DEFAULT_K8S_VERSION, checkov: bool = True) -> ValidationReport:
    """Schema + GPU consistency always; checkov when installed (`checkov_missing` says why not)."""
    report = ValidationReport(validate_schemas(manifests, k8s_version), check_gpu_consistency(manifests, pools),
                              None)
    if checkov:
        try:
            report.checkov = run_checkov(manifests)
        except CheckovMissing as exc:
            report.checkov_missing = str(exc)
    return report


def pools_from_app_config(cfg: Any) -> list[dict[str, Any]]:
    """The GPU pool an app stack config declares for cloud=existing (labels/taint from `platform`)."""
    if cfg.gpu is None:
        return []
    p = cfg.platform
    return [{"name": "gpu", "labels": {p.gpu_pool_label_key: p.gpu_pool_label_value},
             "taints": [{"key": p.gpu_taint.key, "value": p.gpu_taint.value, "effect": p.gpu_taint.effect}],
             "gpus_per_node": cfg.gpu.gpus_per_node}]


def pools_from_platform_outputs(outputs: dict[str, Any], gpus_per_node: int,
                                name: str = "gpu") -> list[dict[str, Any]]:
    """The GPU pool as the platform stack exports it (the StackReference values the app stack reads)."""
    return [{"name": name, "labels": {outputs["gpu_pool_label_key"]: outputs["gpu_pool_label_value"]},
             "taints": [{"key": outputs["gpu_taint_key"], "value": outputs["gpu_taint_value"],
                         "effect": outputs["gpu_taint_effect"]}],
             "gpus_per_node": gpus_per_node}]

"""The policy pack's rules as plain functions of (resource type, inputs, settings) -> violation messages.

They import nothing from pulumi_policy, so they are unit-tested with constructed inputs and reused on the
mocks render; `pack.py` wraps them into CrossGuard policies. Inputs use the provider schema's camelCase
names, as CrossGuard passes them.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

from ..platform.pools import pools_from_resource

GPU_RESOURCE = "nvidia.com/gpu"
SCALED_OBJECT = "kubernetes:keda.sh/v1alpha1:ScaledObject"
# Workload kinds and where their pod template lives.
_POD_PATHS: dict[str, tuple[str, ...]] = {
    "kubernetes:core/v1:Pod": (),
    "kubernetes:apps/v1:Deployment": ("spec", "template"),
    "kubernetes:apps/v1:StatefulSet": ("spec", "template"),
    "kubernetes:apps/v1:DaemonSet": ("spec", "template"),
    "kubernetes:apps/v1:ReplicaSet": ("spec", "template"),
    "kubernetes:batch/v1:Job": ("spec", "template"),
    "kubernetes:batch/v1:CronJob": ("spec", "jobTemplate", "spec", "template"),
}


@dataclass(frozen=True)
class PolicySettings:
    """What the rules check against; defaults come from the blueprint via the generated policy config."""

    gpu_label_key: str = "aistarter.dev/pool"
    gpu_label_value: str = "gpu"
    gpu_taint_key: str = "nvidia.com/gpu"
    gpu_taint_value: str = "present"
    gpu_taint_effect: str = "NoSchedule"
    # The budget cap on GPU nodes per pool; the blueprint's max_nodes unless the team raises it on purpose.
    gpu_max_nodes_cap: int = 3
    # Whether the blueprint chose scale to zero (the advisory rule only speaks up when it did).
    scale_to_zero: bool = False
    api_label_key: str = "app.kubernetes.io/component"
    api_label_value: str = "api"
    model_server_label_value: str = "model-server"

    def merged(self, overrides: Mapping[str, Any]) -> PolicySettings:
        """These settings with values from a policy's config (camelCase or snake_case keys)."""
        known = {f.name: f for f in fields(self)}
        changes: dict[str, Any] = {}
        for key, value in overrides.items():
            name = _snake(key)
            if name in known and value is not None:
                current = getattr(self, name)
                if isinstance(current, bool):
                    changes[name] = value.strip().lower() == "true" if isinstance(value, str) else bool(value)
                else:
                    changes[name] = type(current)(value)
        return replace(self, **changes)


def _snake(key: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in key).lstrip("_")


def _get(data: Any, path: tuple[str, ...]) -> Any:
    for part in path:
        if not isinstance(data, Mapping):
            return None
        data = data.get(part)
    return data


def pod_template(resource_type: str, props: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The pod (metadata + spec) a workload runs, or None for non-workloads."""
    if resource_type not in _POD_PATHS:
        return None
    template = _get(props, _POD_PATHS[resource_type]) if _POD_PATHS[resource_type] else props
    return template if isinstance(template, Mapping) else None


def _containers(pod_spec: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    for key in ("initContainers", "containers"):
        for container in pod_spec.get(key) or []:
            if isinstance(container, Mapping):
                yield container


def _gpu_count(container: Mapping[str, Any]) -> int:
    resources = container.get("resources") or {}
    counts = [(resources.get(kind) or {}).get(GPU_RESOURCE) for kind in ("limits", "requests")]
    return max((int(str(c)) for c in counts if c not in (None, "")), default=0)


def requests_gpu(pod_spec: Mapping[str, Any]) -> bool:
    return any(_gpu_count(c) > 0 for c in _containers(pod_spec))


def _labels(resource_type: str, props: Mapping[str, Any]) -> dict[str, str]:
    labels = dict(_get(props, ("metadata", "labels")) or {})
    pod = pod_template(resource_type, props)
    if pod is not None:
        labels.update(_get(pod, ("metadata", "labels")) or {})
    return labels


# --- GPU pools -------------------------------------------------------------------------------------------

def check_gpu_pool_taint_and_label(resource_type: str, name: str, props: Mapping[str, Any],
                                   s: PolicySettings) -> list[str]:
    """MANDATORY: every GPU node pool carries the GPU taint and the pool label, so only GPU pods land there."""
    problems: list[str] = []
    want = {"key": s.gpu_taint_key, "value": s.gpu_taint_value, "effect": s.gpu_taint_effect}
    for pool in pools_from_resource(resource_type, name, props):
        if not pool.is_gpu:
            continue
        if want not in pool.taints:
            problems.append(f"GPU pool '{pool.name}' lacks the taint {s.gpu_taint_key}={s.gpu_taint_value}:"
                            f"{s.gpu_taint_effect}; add it so CPU pods cannot take the GPU nodes")
        if pool.labels.get(s.gpu_label_key) != s.gpu_label_value:
            problems.append(f"GPU pool '{pool.name}' lacks the label {s.gpu_label_key}={s.gpu_label_value}; add "
                            "it so GPU pods can select this pool")
    return problems


def check_gpu_pool_budget(resource_type: str, name: str, props: Mapping[str, Any], s: PolicySettings) -> list[str]:
    """MANDATORY: a GPU pool's max nodes stay within the budget cap."""
    problems: list[str] = []
    for pool in pools_from_resource(resource_type, name, props):
        if not pool.is_gpu:
            continue
        if pool.max_nodes is None:
            problems.append(f"GPU pool '{pool.name}' has no node maximum; set its autoscaling max to at most "
                            f"{s.gpu_max_nodes_cap} (gpuMaxNodesCap)")
        elif pool.max_nodes > s.gpu_max_nodes_cap:
            problems.append(f"GPU pool '{pool.name}' may grow to {pool.max_nodes} nodes, over the budget cap of "
                            f"{s.gpu_max_nodes_cap}; lower gpuPool.maxNodes or raise gpuMaxNodesCap deliberately")
    return problems


def check_gpu_scale_to_zero(resource_type: str, name: str, props: Mapping[str, Any], s: PolicySettings) -> list[str]:
    """ADVISORY: when the blueprint chose scale to zero, GPU pools keep min 0 and the model server idles at 0."""
    if not s.scale_to_zero:
        return []
    problems: list[str] = []
    for pool in pools_from_resource(resource_type, name, props):
        if pool.is_gpu and (pool.min_nodes or 0) > 0:
            problems.append(f"GPU pool '{pool.name}' keeps {pool.min_nodes} warm node(s) although the blueprint "
                            "chose scale to zero; set gpuPool.minNodes to 0 (or record why in an ADR)")
    if resource_type == SCALED_OBJECT:
        labels = _get(props, ("metadata", "labels")) or {}
        if labels.get(s.api_label_key) == s.model_server_label_value:
            spec = props.get("spec") or {}
            floor = spec.get("idleReplicaCount", spec.get("minReplicaCount"))
            if floor is None or int(floor) != 0:
                problems.append(f"model server ScaledObject '{name}' idles at {floor} replicas although the "
                                "blueprint chose scale to zero; set idleReplicaCount: 0")
    return problems


# --- GPU pods --------------------------------------------------------------------------------------------

def _tolerates(tolerations: Any, s: PolicySettings) -> bool:
    for tol in tolerations or []:
        if not isinstance(tol, Mapping):
            continue
        effect_ok = tol.get("effect") in (None, "", s.gpu_taint_effect)
        if tol.get("operator") == "Exists" and tol.get("key") in (None, "") and effect_ok:
            return True  # tolerates everything
        if tol.get("key") != s.gpu_taint_key or not effect_ok:
            continue
        if tol.get("operator") == "Exists" or tol.get("value") == s.gpu_taint_value:
            return True
    return False


def _selects(pod_spec: Mapping[str, Any], s: PolicySettings) -> bool:
    if (pod_spec.get("nodeSelector") or {}).get(s.gpu_label_key) == s.gpu_label_value:
        return True
    terms = _get(pod_spec, ("affinity", "nodeAffinity", "requiredDuringSchedulingIgnoredDuringExecution",
                            "nodeSelectorTerms")) or []
    # Every term is an alternative, so each one must pin the pool for the pod to be sure to land there.
    return bool(terms) and all(
        any(expr.get("key") == s.gpu_label_key and expr.get("operator") == "In"
            and expr.get("values") == [s.gpu_label_value] for expr in term.get("matchExpressions") or [])
        for term in terms if isinstance(term, Mapping))


def check_gpu_pod_scheduling(resource_type: str, name: str, props: Mapping[str, Any],
                             s: PolicySettings) -> list[str]:
    """MANDATORY: pods that request GPUs tolerate the GPU taint and select the GPU pool's label."""
    pod = pod_template(resource_type, props)
    spec = (pod or {}).get("spec") or {}
    if not requests_gpu(spec):
        return []
    problems: list[str] = []
    if not _tolerates(spec.get("tolerations"), s):
        problems.append(f"{name}: requests {GPU_RESOURCE} but does not tolerate {s.gpu_taint_key}="
                        f"{s.gpu_taint_value}:{s.gpu_taint_effect}; it would stay Pending (add the toleration)")
    if not _selects(spec, s):
        problems.append(f"{name}: requests {GPU_RESOURCE} but does not select the GPU pool; add nodeSelector "
                        f"{s.gpu_label_key}: {s.gpu_label_value}")
    for container in _containers(spec):
        res = container.get("resources") or {}
        limit = (res.get("limits") or {}).get(GPU_RESOURCE)
        request = (res.get("requests") or {}).get(GPU_RESOURCE)
        if request is not None and str(request) != str(limit):
            problems.append(f"{name}/{container.get('name')}: {GPU_RESOURCE} request {request} differs from limit "
                            f"{limit}; GPUs cannot be overcommitted, set both to the same count")
    return problems


# --- API security and images -----------------------------------------------------------------------------

def check_api_not_root(resource_type: str, name: str, props: Mapping[str, Any], s: PolicySettings) -> list[str]:
    """MANDATORY: the API's containers never run as root or privileged."""
    pod = pod_template(resource_type, props)
    if pod is None or _labels(resource_type, props).get(s.api_label_key) != s.api_label_value:
        return []
    spec = pod.get("spec") or {}
    pod_ctx = spec.get("securityContext") or {}
    problems: list[str] = []
    for container in _containers(spec):
        ctx = container.get("securityContext") or {}
        user = ctx.get("runAsUser", pod_ctx.get("runAsUser"))
        non_root = ctx.get("runAsNonRoot", pod_ctx.get("runAsNonRoot"))
        label = f"{name}/{container.get('name')}"
        if user is not None and int(user) == 0:
            problems.append(f"{label}: runs as UID 0; set runAsUser to a non-zero UID")
        elif non_root is not True and (user is None or int(user) == 0):
            problems.append(f"{label}: may run as root; set securityContext.runAsNonRoot: true (and a runAsUser)")
        if ctx.get("privileged") is True:
            problems.append(f"{label}: is privileged; remove securityContext.privileged")
        if ctx.get("allowPrivilegeEscalation") is not False:
            problems.append(f"{label}: allows privilege escalation; set allowPrivilegeEscalation: false")
    return problems


def image_problem(image: str) -> str | None:
    """Why an image reference is not pinned, or None when it is (exact tag or digest)."""
    if "@sha256:" in image:
        return None
    last = image.rsplit("/", 1)[-1]
    if ":" not in last:
        return f"image '{image}' has no tag, so it means :latest; pin an exact version tag or a digest"
    tag = last.rsplit(":", 1)[1]
    if tag.lower() == "latest":
        return f"image '{image}' uses :latest; pin an exact version tag or a digest"
    return None


def check_no_latest_images(resource_type: str, name: str, props: Mapping[str, Any], s: PolicySettings) -> list[str]:
    """MANDATORY: every container image is pinned (no `latest`, no missing tag)."""
    pod = pod_template(resource_type, props)
    if pod is None:
        return []
    problems: list[str] = []
    for container in _containers(pod.get("spec") or {}):
        image = container.get("image")
        if not image:
            continue
        why = image_problem(str(image))
        if why:
            problems.append(f"{name}/{container.get('name')}: {why}")
    return problems


RULES = {
    "gpu-pool-taint-and-label": check_gpu_pool_taint_and_label,
    "gpu-pods-tolerate-and-select": check_gpu_pod_scheduling,
    "api-not-root": check_api_not_root,
    "no-latest-image-tags": check_no_latest_images,
    "gpu-pool-budget-cap": check_gpu_pool_budget,
    "gpu-scale-to-zero": check_gpu_scale_to_zero,
}
ADVISORY = frozenset({"gpu-scale-to-zero"})


def evaluate(resources: list[Mapping[str, Any]], settings: PolicySettings) -> dict[str, list[str]]:
    """Run every rule on rendered resources ({"type", "name", "inputs"}); rule name -> violations."""
    found: dict[str, list[str]] = {rule: [] for rule in RULES}
    for res in resources:
        for rule, check in RULES.items():
            found[rule].extend(check(str(res["type"]), str(res["name"]), res.get("inputs") or {}, settings))
    return found


def manifest_type(manifest: Mapping[str, Any]) -> str:
    """The Pulumi type token of a plain Kubernetes manifest (apps/v1 Deployment -> kubernetes:apps/v1:Deployment)."""
    api_version = str(manifest.get("apiVersion", ""))
    group_version = api_version if "/" in api_version else f"core/{api_version}"
    return f"kubernetes:{group_version}:{manifest.get('kind', '')}"


def resources_from_manifests(manifests: list[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Rendered manifests in the {"type", "name", "inputs"} shape `evaluate` takes."""
    return [{"type": manifest_type(m), "name": str((m.get("metadata") or {}).get("name", "")), "inputs": m}
            for m in manifests]

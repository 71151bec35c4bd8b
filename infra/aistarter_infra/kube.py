"""Small builders for the Kubernetes fragments every component repeats (labels, security, probes)."""

from __future__ import annotations

from typing import Any

import pulumi

# One non-root UID for every workload we build images for or can run as any user: above 10000 so it never
# collides with a host user (checkov CKV_K8S_40). The generated Dockerfile creates this user.
APP_UID = 10001

# Every image is pinned to an exact tag or digest (config.check_image), so a node that has it never pulls again:
# faster starts, and a registry outage cannot stop a reschedule.
PULL_POLICY = "IfNotPresent"

PART_OF = "app.kubernetes.io/part-of"
COMPONENT = "app.kubernetes.io/component"
NAME = "app.kubernetes.io/name"


def labels(project: str, component: str) -> dict[str, str]:
    return {NAME: f"{project}-{component}", COMPONENT: component, PART_OF: project,
            "app.kubernetes.io/managed-by": "pulumi"}


def selector(project: str, component: str) -> dict[str, str]:
    # Selectors are immutable on Deployments/StatefulSets: keep them to the two labels that never change.
    return {NAME: f"{project}-{component}", COMPONENT: component}


def metadata(name: str, namespace: pulumi.Input[str], project: str, component: str,
             annotations: dict[str, str] | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": namespace, "labels": labels(project, component)}
    if annotations:
        meta["annotations"] = annotations
    return meta


def pod_security_context(uid: int = APP_UID, fs_group: int | None = None) -> dict[str, Any]:
    return {
        "runAsNonRoot": True,
        "runAsUser": uid,
        "runAsGroup": uid,
        "fsGroup": fs_group if fs_group is not None else uid,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def secret_volume(name: str, secret: str, keys: list[str]) -> dict[str, Any]:
    # 0440 + the pod's fsGroup: readable by the non-root user, by nobody else.
    return {"name": name, "secret": {"secretName": secret, "defaultMode": 0o440,
                                     "items": [{"key": k, "path": k} for k in keys]}}


def container_security_context(uid: int = APP_UID) -> dict[str, Any]:
    return {
        "runAsNonRoot": True,
        "runAsUser": uid,
        "runAsGroup": uid,
        "allowPrivilegeEscalation": False,
        "privileged": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def http_probe(path: str, port: str | int, period: int = 10, failures: int = 3, timeout: int = 3,
               initial_delay: int = 0) -> dict[str, Any]:
    probe: dict[str, Any] = {"httpGet": {"path": path, "port": port}, "periodSeconds": period,
                             "failureThreshold": failures, "timeoutSeconds": timeout}
    if initial_delay:
        probe["initialDelaySeconds"] = initial_delay
    return probe


def tcp_probe(port: str | int, period: int = 10, failures: int = 3) -> dict[str, Any]:
    return {"tcpSocket": {"port": port}, "periodSeconds": period, "failureThreshold": failures, "timeoutSeconds": 3}


def exec_probe(command: list[str], period: int = 30, failures: int = 3, timeout: int = 10) -> dict[str, Any]:
    return {"exec": {"command": command}, "periodSeconds": period, "failureThreshold": failures,
            "timeoutSeconds": timeout}


def empty_dir(name: str, size: str = "256Mi", medium: str | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"sizeLimit": size}
    if medium:
        spec["medium"] = medium
    return {"name": name, "emptyDir": spec}


def secret_env(name: str, secret: str, key: str, optional: bool = False) -> dict[str, Any]:
    ref: dict[str, Any] = {"name": secret, "key": key}
    if optional:
        ref["optional"] = True
    return {"name": name, "valueFrom": {"secretKeyRef": ref}}


def storage_class_name(storage_class: pulumi.Input[str]) -> pulumi.Output[str | None]:
    # Empty means "use the cluster default class": the field must then be absent, not "".
    return pulumi.Output.from_input(storage_class).apply(lambda s: s or None)


def opts(parent: pulumi.Resource, depends_on: list[pulumi.Resource] | None = None) -> pulumi.ResourceOptions:
    return pulumi.ResourceOptions(parent=parent, depends_on=depends_on or [])

"""The cluster facts the app stack needs, from the platform stack (clouds) or from app config (cloud=existing)."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from .config import AppStackConfig

# Exactly the names the platform program exports (aistarter_infra.platform); keep both sides in step.
PLATFORM_OUTPUT_NAMES = (
    "kubeconfig",
    "gpu_pool_label_key",
    "gpu_pool_label_value",
    "gpu_taint_key",
    "gpu_taint_value",
    "gpu_taint_effect",
    "storage_class",
    "database_url",
)
# Newer platform outputs, read with these defaults so an older platform stack still works.
OPTIONAL_PLATFORM_OUTPUTS: dict[str, object] = {
    "monitor_labels": {"release": "kube-prometheus-stack"},
    "ingress_class": "nginx",
}


@dataclass(frozen=True)
class PlatformOutputs:
    """GPU pool labels/taint and storage class; kubeconfig (clouds) or kube_context (existing) to reach the cluster."""

    gpu_pool_label_key: pulumi.Input[str]
    gpu_pool_label_value: pulumi.Input[str]
    gpu_taint_key: pulumi.Input[str]
    gpu_taint_value: pulumi.Input[str]
    gpu_taint_effect: pulumi.Input[str]
    storage_class: pulumi.Input[str]
    kubeconfig: pulumi.Input[str] | None = None
    kube_context: str | None = None
    # The shared PostgreSQL (secret, `postgresql://USER:PASS@HOST:5432/DB?sslmode=require`, password URL-encoded);
    # None on cloud=existing, where components/database.py makes the URL from app config.
    database_url: pulumi.Input[str] | None = None
    # Labels the platform's Prometheus selects ServiceMonitors by, and the ingress class it installs.
    monitor_labels: pulumi.Input[dict[str, str]] = None  # type: ignore[assignment]
    ingress_class: pulumi.Input[str] | None = None


def platform_outputs(cfg: AppStackConfig) -> PlatformOutputs:
    """One source for cluster facts: a StackReference to the platform stack, or app config for cloud=existing."""
    if cfg.cloud == "existing":
        p = cfg.platform
        return PlatformOutputs(
            gpu_pool_label_key=p.gpu_pool_label_key,
            gpu_pool_label_value=p.gpu_pool_label_value,
            gpu_taint_key=p.gpu_taint.key,
            gpu_taint_value=p.gpu_taint.value,
            gpu_taint_effect=p.gpu_taint.effect,
            # Empty means the cluster's default StorageClass (omitted from the PVCs).
            storage_class=p.storage_class,
            kube_context=p.kube_context,
            monitor_labels=dict(OPTIONAL_PLATFORM_OUTPUTS["monitor_labels"]),  # type: ignore[arg-type]
            ingress_class=cfg.api.ingress.class_name,
        )
    ref = pulumi.StackReference(cfg.platform.stack)

    def out(name: str) -> pulumi.Output[str]:
        return ref.require_output(name).apply(str)

    return PlatformOutputs(
        gpu_pool_label_key=out("gpu_pool_label_key"),
        gpu_pool_label_value=out("gpu_pool_label_value"),
        gpu_taint_key=out("gpu_taint_key"),
        gpu_taint_value=out("gpu_taint_value"),
        gpu_taint_effect=out("gpu_taint_effect"),
        storage_class=out("storage_class"),
        kubeconfig=pulumi.Output.secret(ref.require_output("kubeconfig")),
        database_url=pulumi.Output.secret(ref.require_output("database_url")).apply(str),
        monitor_labels=ref.get_output("monitor_labels").apply(
            lambda v: dict(v) if v else dict(OPTIONAL_PLATFORM_OUTPUTS["monitor_labels"])),  # type: ignore[arg-type]
        ingress_class=ref.get_output("ingress_class").apply(
            lambda v: str(v) if v else str(OPTIONAL_PLATFORM_OUTPUTS["ingress_class"])),
    )


def make_provider(outputs: PlatformOutputs, name: str = "k8s") -> k8s.Provider:
    """The Kubernetes provider every app resource is created with (never the ambient default context)."""
    if outputs.kubeconfig is not None:
        return k8s.Provider(name, kubeconfig=outputs.kubeconfig, enable_server_side_apply=True)
    return k8s.Provider(name, context=outputs.kube_context, enable_server_side_apply=True)

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
)


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
    )


def make_provider(outputs: PlatformOutputs, name: str = "k8s") -> k8s.Provider:
    """The Kubernetes provider every app resource is created with (never the ambient default context)."""
    if outputs.kubeconfig is not None:
        return k8s.Provider(name, kubeconfig=outputs.kubeconfig, enable_server_side_apply=True)
    return k8s.Provider(name, context=outputs.kube_context, enable_server_side_apply=True)

"""The platform stack program: read stack config, build the chosen cloud's cluster, export what the app reads.

The generated `infra/platform/__main__.py` is two lines around `build_platform_stack(load_platform_config())`.
The exported names are a fixed contract with the app stack's StackReference (see OUTPUT_NAMES).
"""

from __future__ import annotations

import importlib
from typing import Any

from .database import database_url
from .spec import PlatformConfig, PlatformConfigError, parse_platform_config

OUTPUT_NAMES = ("kubeconfig", "gpu_pool_label_key", "gpu_pool_label_value", "gpu_taint_key", "gpu_taint_value",
                "gpu_taint_effect", "storage_class", "database_url", "monitor_labels", "ingress_class")
# Outputs that are Pulumi secrets: the StackReference hands them to the app stack still encrypted.
SECRET_OUTPUT_NAMES = ("kubeconfig", "database_url")
_OBJECT_KEYS = ("systemPool", "gpuPool", "vpc", "clusterAutoscaler", "tags", "database", "monitorLabels",
                "appTeam")
_SCALAR_KEYS = ("cloud", "clusterName", "region", "kubernetesVersion", "storageClass", "deletionProtection",
                "gcpProject", "resourceGroup")


def load_platform_config(config: Any = None) -> PlatformConfig:
    """Typed platform config from the current stack's Pulumi config (Pulumi.<stack>.yaml)."""
    import pulumi

    cfg = config if config is not None else pulumi.Config()
    values: dict[str, Any] = {}
    for key in _SCALAR_KEYS:
        raw = cfg.get(key)
        if raw is not None:
            values[key] = raw
    for key in _OBJECT_KEYS:
        raw = cfg.get_object(key)
        if raw is not None:
            values[key] = raw
    return parse_platform_config(values)


def build_platform_stack(cfg: PlatformConfig) -> dict[str, Any]:
    """Create the cluster and pools for cfg.cloud and export the StackReference outputs; returns them."""
    import pulumi

    # Import the cloud module (and so its SDK) only for the chosen cloud: an aws project never loads
    # pulumi_gcp or pulumi_azure_native, and its requirements.txt does not list them. A project's copy of
    # the library holds only its own cloud's module.
    try:
        module = importlib.import_module(f"{__package__}.{cfg.cloud}")
    except ModuleNotFoundError as exc:
        if exc.name != f"{__package__}.{cfg.cloud}":
            raise
        raise PlatformConfigError(f"cloud={cfg.cloud} but this project's infra library has no platform/"
                                  f"{cfg.cloud}.py (it was generated for another cloud): re-render it with "
                                  f"aistarter update --set cloud={cfg.cloud}") from None
    password = database_password()
    result = module.build(cfg, password)
    gpu = cfg.gpu_pool
    spec = cfg.database
    url = pulumi.Output.all(result.database_host, password).apply(
        lambda args: database_url(spec.user, args[1], args[0], spec.name))
    # Without a GPU pool the GPU outputs are empty strings, so a StackReference lookup still finds every name.
    outputs: dict[str, Any] = {
        "kubeconfig": pulumi.Output.secret(result.kubeconfig),
        "gpu_pool_label_key": gpu.label_key if gpu else "",
        "gpu_pool_label_value": gpu.label_value if gpu else "",
        "gpu_taint_key": gpu.taint.key if gpu else "",
        "gpu_taint_value": gpu.taint.value if gpu else "",
        "gpu_taint_effect": gpu.taint.effect if gpu else "",
        "storage_class": result.storage_class,
        "database_url": pulumi.Output.secret(url),
        "monitor_labels": dict(cfg.monitor_labels),
        "ingress_class": result.ingress_class,
    }
    for name in OUTPUT_NAMES:
        pulumi.export(name, outputs[name])
    return outputs


def database_password() -> Any:
    """The database admin password: the stack's `databasePassword` secret (never in plain config)."""
    import pulumi

    secret = pulumi.Config().get_secret("databasePassword")
    if secret is None:
        raise PlatformConfigError("databasePassword is missing: set a long random one with "
                                  "`pulumi config set --secret databasePassword \"$(openssl rand -base64 30)\"`")
    return secret

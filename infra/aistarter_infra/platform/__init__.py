"""Platform stack: the Kubernetes cluster per cloud (EKS, GKE, AKS) with a CPU system pool and a GPU pool.

Importing this package loads no cloud SDK; `program.build_platform_stack` imports only the chosen cloud's.
"""

from .pools import PoolView, pools_from_resource, pools_from_resources
from .spec import (
    CLOUDS,
    GpuPool,
    PlatformConfig,
    PlatformConfigError,
    SystemPool,
    Taint,
    config_from_stack,
    parse_platform_config,
)

__all__ = [
    "CLOUDS",
    "GpuPool",
    "PlatformConfig",
    "PlatformConfigError",
    "PoolView",
    "SystemPool",
    "Taint",
    "config_from_stack",
    "parse_platform_config",
    "pools_from_resource",
    "pools_from_resources",
]

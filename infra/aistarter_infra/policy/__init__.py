"""The CrossGuard policy pack: GPU pool taints/labels, GPU pod scheduling, non-root API, pinned images,
a GPU node budget cap, and (advisory) scale to zero kept when the blueprint chose it.

`rules` holds plain functions (no pulumi_policy import); `pack` wraps them for `pulumi_policy.PolicyPack`.
"""

from .pack import build_policies, load_pack_config, pack_config, settings_from_pack_config, settings_from_stack
from .rules import ADVISORY, RULES, PolicySettings, evaluate, image_problem

__all__ = [
    "ADVISORY",
    "RULES",
    "PolicySettings",
    "build_policies",
    "evaluate",
    "image_problem",
    "load_pack_config",
    "pack_config",
    "settings_from_pack_config",
    "settings_from_stack",
]

"""Policy pack for both stacks: `pulumi preview --policy-pack infra/policy` (from infra/app or infra/platform).

Rule parameters come from policy-config.json next to this file (written from the aistarter blueprint); pass
the same file with `--policy-pack-config infra/policy/policy-config.json` to change them per run.
The rules themselves live in infra/aistarter_infra/policy/rules.py and are unit-tested in infra/tests.
"""

import sys
from pathlib import Path

from pulumi_policy import EnforcementLevel, PolicyPack

HERE = Path(__file__).resolve().parent
# The rules live in the vendored library next to this folder (infra/aistarter_infra).
sys.path.insert(0, str(HERE.parent))

from aistarter_infra.policy import build_policies, load_pack_config  # noqa: E402

PolicyPack(
    name="{{ cookiecutter.project_slug | replace('_', '-') }}-policy",
    enforcement_level=EnforcementLevel.MANDATORY,
    policies=build_policies(load_pack_config(HERE / "policy-config.json")),
)

"""Platform stack: the {{ cookiecutter.cloud }} cluster and its node pools. Settings live in Pulumi.<stack>.yaml.

The app stack (infra/app) reads this stack's outputs through a StackReference: set its `platform.stack`
to `<org>/{{ cookiecutter.project_slug }}-platform/<stack>`.
"""

import sys
from pathlib import Path

# The component library is vendored next to this folder (infra/aistarter_infra); no aistarter install needed.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from aistarter_infra.platform.program import build_platform_stack, load_platform_config  # noqa: E402

build_platform_stack(load_platform_config())

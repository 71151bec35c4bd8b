"""App stack: the workloads of {{ cookiecutter.project_name }}. Every setting lives in Pulumi.<stack>.yaml.

{% if cookiecutter.cloud == 'existing' -%}
The target cluster is the kubeconfig context in `platform.kube_context`.
{%- else -%}
The cluster comes from the platform stack (infra/platform) through a StackReference named in `platform.stack`.
{%- endif %}
Run `pytest infra/tests` to render this program under Pulumi mocks and validate what it would create.
"""

import sys
from pathlib import Path

# The component library is vendored next to this folder (infra/aistarter_infra); no aistarter install needed.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from aistarter_infra.program import main

main("{{ cookiecutter.project_slug }}")

"""aistarter's Pulumi component library for the generated Kubernetes infra.

The code lives once in the aistarter repository and is copied into every generated project
(`<project>/infra/aistarter_infra/`), without the parts its answers do not use (aistarter's vendoring.py), so it
must never import the `aistarter` CLI package and imports its optional modules only when the config needs them.

Modules owned here: `config` (typed stack config), `cluster` (platform outputs and the k8s provider),
`components` (ApiService, ModelServer, VectorStore, Queue, Telemetry, NetworkPolicies, Addons),
`program` (`build_app_stack`), `render` (run a program under Pulumi mocks and write YAML) and
`validate` (schemas, checkov, GPU scheduling consistency). `platform/` and `policy/` hold the cluster
stacks and the policy pack.
"""

__all__ = ["__version__"]

__version__ = "0.1.0"

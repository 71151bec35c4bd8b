"""Which parts of the infra library a project gets: the one table every way of generating reads.

A project receives its own copy of `infra/aistarter_infra`, but only what its answers use: its cloud's platform
module and CRD schemas, and the app components its stack deploys. The table lives here, not in the library,
because its conditions read the questionnaire's answers (resolved by the decision engine: `task_queue=auto` is
already `arq` or `none`), which the library never sees; `hooks.vendor_infra_library` applies it to a copy, and
`backstage.py` turns the same rows into `fs:delete` steps whose `if:` is each row's condition in nunjucks.
The library imports these files lazily (components.load, platform/program.py), so it works without them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

# One test of a resolved answer: (question key, "==" or "!=", value).
Clause = tuple[str, Literal["==", "!="], str]


@dataclass(frozen=True)
class Part:
    """Library paths (files or folders, relative to `aistarter_infra/`) a project keeps only when one of
    `used_when` holds for its resolved answers."""

    name: str
    paths: tuple[str, ...]
    used_when: tuple[Clause, ...]

    def used(self, answers: Mapping[str, Any]) -> bool:
        return any((str(answers[key]) == value) == (op == "==") for key, op, value in self.used_when)

    def unused_expression(self, values: str) -> str:
        """The Jinja/nunjucks expression that is true when the paths are unused; `values` names the answers."""
        flip = {"==": "!=", "!=": "=="}
        return " and ".join(f"{values}.{key} {flip[op]} '{value}'" for key, op, value in self.used_when)


# The conditions are the app and platform programs' own: the platform program imports only cfg.cloud's module;
# build_app_stack creates Queue when the stack has a task queue, VectorStore for qdrant only (pgvector lives in
# the shared database), Telemetry with observability, ModelServer when self-hosting. Each schema folder holds
# the CRDs of the manifests one of those emits (validate.validate_schemas looks a CRD up only when it is there).
PARTS: tuple[Part, ...] = (
    Part("aws", ("platform/aws.py",), (("cloud", "==", "aws"),)),
    Part("gcp", ("platform/gcp.py", "schemas/networking.gke.io"), (("cloud", "==", "gcp"),)),
    Part("azure", ("platform/azure.py", "schemas/alb.networking.azure.io"), (("cloud", "==", "azure"),)),
    # The platform stack's program and shared add-ons; spec, pools and database stay (the app stack's ingress
    # and the policy pack read their constants on every cloud).
    Part("platform-stack", ("platform/addons.py", "platform/program.py", "platform/render.py"),
             (("cloud", "!=", "existing"),)),
    # GKE Gateway and Application Gateway for Containers expose the API through Gateway API objects.
    Part("gateway-api", ("schemas/gateway.networking.k8s.io",), (("cloud", "==", "gcp"), ("cloud", "==", "azure"))),
    # CloudNativePG is the in-cluster database option of an existing cluster (clouds use the managed one).
    Part("cloudnativepg", ("schemas/postgresql.cnpg.io",), (("cloud", "==", "existing"),)),
    Part("queue", ("components/queue.py",), (("task_queue", "!=", "none"),)),
    Part("vector-store", ("components/vector_store.py",), (("vector_store", "==", "qdrant"),)),
    Part("telemetry", ("components/telemetry.py",), (("observability", "!=", "none"),)),
    Part("model-server", ("components/model_server.py",), (("self_hosted", "!=", "none"),)),
    # KEDA ScaledObjects: the worker's and the model server's.
    Part("keda", ("schemas/keda.sh",), (("task_queue", "!=", "none"), ("self_hosted", "!=", "none"))),
)


def unused_paths(answers: Mapping[str, Any]) -> list[str]:
    """The library paths a project with these resolved answers does not use (relative to `aistarter_infra/`)."""
    return sorted(path for row in PARTS if not row.used(answers) for path in row.paths)

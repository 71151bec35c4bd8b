"""Run the platform program under Pulumi mocks: no cloud, no Pulumi CLI, no credentials.

`render_platform` feeds stack config exactly as the Pulumi CLI would (JSON strings keyed `project:key`), runs
`build_platform_stack`, and records every resource's inputs plus the exported outputs. Tests and the GPU
consistency check (with the app stack's manifests) use the result; `pools()` gives the node pools in the dict
shape `aistarter_infra.validate.check_gpu_consistency` takes.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .pools import PoolView, pools_from_resources

MOCK_ACCOUNT = "123456789012"
SECRET_PLACEHOLDER = "rendered-secret-placeholder"
# Secret stack config the platform program reads (pulumi config set --secret KEY VALUE).
SECRET_CONFIG = ("databasePassword",)
MOCK_KUBECONFIG = json.dumps({"apiVersion": "v1", "kind": "Config", "clusters": [], "users": [], "contexts": []})


@dataclass
class PlatformRender:
    resources: list[dict[str, Any]]
    outputs: dict[str, Any]
    exported: list[str]
    secret_outputs: set[str] = field(default_factory=set)
    # Resource options the mocks do not see, recorded by a stack transformation: name -> ignore_changes.
    ignore_changes: dict[str, list[str]] = field(default_factory=dict)

    def of_type(self, resource_type: str) -> list[dict[str, Any]]:
        return [r for r in self.resources if r["type"] == resource_type]

    def pool_views(self) -> list[PoolView]:
        return pools_from_resources(self.resources)

    def pools(self) -> list[dict[str, Any]]:
        """Node pools as `check_gpu_consistency` pool dicts: name, labels, taints, gpus_per_node."""
        return [p.as_check_pool() for p in self.pool_views()]


def _plain(value: Any) -> Any:
    """Inputs without resource references: echoing a reference back makes the runtime rehydrate that resource
    on another event loop, which mocks cannot serve."""
    import pulumi

    if isinstance(value, pulumi.Resource):
        return None
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items() if not isinstance(v, pulumi.Resource)}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value if not isinstance(v, pulumi.Resource)]
    return value


def _mock_state(rtype: str, name: str, inputs: dict[str, Any], region: str) -> dict[str, Any]:
    """Plausible provider outputs for the few attributes the programs read back."""
    state = _plain(inputs)
    if rtype == "eks:index:Cluster":
        issuer = f"oidc.eks.{region}.amazonaws.com/id/MOCKOIDC"
        state.update(kubeconfigJson=MOCK_KUBECONFIG, kubeconfig=json.loads(MOCK_KUBECONFIG),
                     oidcProviderArn=f"arn:aws:iam::{MOCK_ACCOUNT}:oidc-provider/{issuer}",
                     oidcProviderUrl=f"https://{issuer}")
    elif rtype == "aws:rds/instance:Instance":
        state.update(address=f"{inputs.get('identifier', name)}.mock.{region}.rds.amazonaws.com",
                     arn=f"arn:aws:rds:{region}:{MOCK_ACCOUNT}:db:{name}")
    elif rtype.startswith("aws:") and "arn" not in state:
        state["arn"] = f"arn:aws:mock:{region}:{MOCK_ACCOUNT}:{name}"
        state.setdefault("name", name)
    elif rtype == "gcp:container/cluster:Cluster":
        state.update(endpoint="203.0.113.10",
                     masterAuth={"clusterCaCertificate": base64.b64encode(b"mock-ca").decode()})
    elif rtype == "gcp:sql/databaseInstance:DatabaseInstance":
        state["privateIpAddress"] = "10.30.0.3"
    elif rtype == "azure-native:containerservice:ManagedCluster":
        state.update(name=inputs.get("resourceName") or name, nodeResourceGroup=f"MC_{name}",
                     oidcIssuerProfile={"enabled": True, "issuerURL": f"https://{region}.oic.mock/{name}/"},
                     identity={"type": "SystemAssigned", "principalId": "00000000-0000-0000-0000-00000000c1a5"})
    elif rtype == "azure-native:managedidentity:UserAssignedIdentity":
        state.update(name=inputs.get("resourceName") or name, clientId="00000000-0000-0000-0000-0000000c11e7",
                     principalId="00000000-0000-0000-0000-00000000a1b0")
    elif rtype == "azure-native:dbforpostgresql:Server":
        state["fullyQualifiedDomainName"] = f"{inputs.get('serverName', name)}.private.postgres.database.azure.com"
    elif rtype == "gcp:serviceaccount/account:Account":
        state["email"] = f"{inputs.get('accountId', name)}@mock-project.iam.gserviceaccount.com"
    elif rtype.startswith("azure-native:"):
        state.setdefault("name", inputs.get("resourceName") or inputs.get("resourceGroupName") or name)
    return state


class RecordingMocks:
    """pulumi.runtime.Mocks that keeps every registered resource's inputs."""

    def __init__(self, region: str) -> None:
        self.region = region
        self.resources: list[dict[str, Any]] = []

    def new_resource(self, args: Any) -> tuple[str, dict[str, Any]]:
        from ..render import mask_secrets

        # Masked as they are recorded: tests and resources.json see what a reviewer may see, never a secret.
        self.resources.append({"type": args.typ, "name": args.name,
                               "inputs": mask_secrets(_plain(dict(args.inputs)))})
        return f"{args.name}-id", _mock_state(args.typ, args.name, dict(args.inputs), self.region)

    def call(self, args: Any) -> dict[str, Any]:
        token = args.token
        if token == "aws:index/getAvailabilityZones:getAvailabilityZones":
            zones = [f"{self.region}{z}" for z in "abc"]
            return {"names": zones, "zoneIds": [f"use1-az{i}" for i in range(1, 4)], "id": self.region}
        if token == "aws:ec2/getVpc:getVpc":
            return {"id": args.args.get("id", "vpc-mock"), "cidrBlock": "10.0.0.0/16"}
        if token == "aws:index/getPartition:getPartition":
            return {"partition": "aws", "dnsSuffix": "amazonaws.com", "id": "aws"}
        if token == "azure-native:authorization:getClientConfig":
            return {"clientId": "mock", "objectId": "mock", "subscriptionId": "00000000-0000-0000-0000-000000000000",
                    "tenantId": "00000000-0000-0000-0000-000000000001"}
        if token == "azure-native:containerservice:listManagedClusterUserCredentials":
            value = base64.b64encode(MOCK_KUBECONFIG.encode()).decode()
            return {"kubeconfigs": [{"name": "clusterUser", "value": value}]}
        return {}


def _monitor_without_resource_references(mocks: RecordingMocks) -> Any:
    """A MockMonitor that sends resources as IDs/URNs, not references.

    With references, the mock monitor rebuilds each referenced resource (e.g. the EKS cluster passed to a node
    group) on its own thread and event loop, which deadlocks the run; the IDs carry what the tests need.
    """
    from pulumi.runtime import mocks as pulumi_mocks
    from pulumi.runtime.proto import resource_pb2

    class Monitor(pulumi_mocks.MockMonitor):
        def GetDeploymentInfo(self, request: Any) -> Any:  # noqa: N802 (gRPC method name)
            info = super().GetDeploymentInfo(request)
            keep = [f for f in info.supportedFeatures
                    if f != resource_pb2.RESOURCE_MONITOR_FEATURE_RESOURCE_REFERENCES]
            return resource_pb2.DeploymentInfo(supportedFeatures=keep)

        def SupportsFeature(self, request: Any) -> Any:  # noqa: N802
            if request.id == "resourceReferences":
                return type("SupportsFeatureResponse", (object,), {"hasSupport": False})
            return super().SupportsFeature(request)

    return Monitor(mocks)


def _is_secure(value: Any) -> bool:
    return isinstance(value, Mapping) and set(value) == {"secure"}


def load_stack_config(program_dir: Path, stack: str = "dev") -> tuple[str, dict[str, Any]]:
    """(project name, config values without the project prefix) from Pulumi.yaml and Pulumi.<stack>.yaml."""
    project = yaml.safe_load((program_dir / "Pulumi.yaml").read_text(encoding="utf-8"))["name"]
    stack_file = program_dir / f"Pulumi.{stack}.yaml"
    if not stack_file.is_file():
        raise FileNotFoundError(f"{stack_file} is missing: create it with `pulumi stack init {stack}` and the "
                                "settings from the generated Pulumi.dev.yaml")
    raw = yaml.safe_load(stack_file.read_text(encoding="utf-8")) or {}
    values: dict[str, Any] = {}
    for key, value in (raw.get("config") or {}).items():
        scope, _, name = key.partition(":")
        if scope == project:
            values[name] = value
    return project, values


def render_platform(values: Mapping[str, Any], *, project: str = "platform", stack: str = "dev",
                    main_file: Path | None = None) -> PlatformRender:
    """Run the platform program for these config values under mocks and return what it declared.

    With `main_file` (a generated `infra/platform/__main__.py`) that entry point runs, exactly as `pulumi up`
    would start it; otherwise `build_platform_stack(load_platform_config())` does. Outputs are read back from
    the stack's exports either way, so an output that is built but not exported does not count.
    """
    import runpy

    import pulumi
    from pulumi.runtime.settings import SETTINGS, set_root_resource
    from pulumi.runtime.stack import run_pulumi_func
    from pulumi.runtime.sync_await import _sync_await

    from ..render import install_mocks
    from .program import build_platform_stack, load_platform_config

    region = str(values.get("region") or "us-east-1")
    mocks = RecordingMocks(region)
    monitor = _monitor_without_resource_references(mocks)
    config = {f"{project}:{k}": v if isinstance(v, str) else json.dumps(v) for k, v in values.items()
              if not _is_secure(v)}
    secret_keys = []
    for key in SECRET_CONFIG:
        # A stack file holds secrets encrypted (`secure:`); under mocks a placeholder stands in for them.
        if f"{project}:{key}" not in config:
            config[f"{project}:{key}"] = SECRET_PLACEHOLDER
            secret_keys.append(f"{project}:{key}")
    pulumi.runtime.set_all_config(config, secret_keys)
    set_root_resource(None)  # a fresh Stack per render, so exports from an earlier render do not leak in
    install_mocks(mocks, project=project, stack=stack, monitor=monitor)
    SETTINGS.rpc_manager.clear()
    resolved: dict[str, Any] = {}
    secrets: set[str] = set()

    ignored: dict[str, list[str]] = {}

    def record_options(args: Any) -> None:
        if args.opts is not None and args.opts.ignore_changes:
            ignored[args.name] = list(args.opts.ignore_changes)
        return None

    def program() -> None:
        pulumi.runtime.register_stack_transformation(record_options)
        if main_file is not None:
            runpy.run_path(str(main_file), run_name="__main__")
        else:
            build_platform_stack(load_platform_config())
        exports = dict(getattr(pulumi.runtime.get_root_resource(), "outputs", {}) or {})

        async def collect() -> None:
            for key, value in exports.items():
                out = pulumi.Output.from_input(value)
                resolved[key] = await out.future()
                if await out.is_secret():
                    secrets.add(key)

        # The same shape as pulumi.runtime.test: resolve inside the program, then let the runtime drain RPCs.
        _sync_await(collect())

    _sync_await(run_pulumi_func(program))
    return PlatformRender(resources=mocks.resources, outputs=resolved, exported=sorted(resolved),
                          secret_outputs=secrets, ignore_changes=ignored)


def render_platform_dir(program_dir: Path, stack: str = "dev") -> PlatformRender:
    """Render a generated `infra/platform` folder: its Pulumi.yaml, its stack config and its __main__.py."""
    project, values = load_stack_config(program_dir, stack)
    return render_platform(values, project=project, stack=stack, main_file=program_dir / "__main__.py")

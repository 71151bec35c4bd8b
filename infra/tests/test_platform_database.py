"""The managed PostgreSQL each cloud's platform stack creates, read from the rendered resources (masked as in
resources.json): private networking only, encryption at rest, backups kept as configured, deletion protection
on, pgvector allowed where chosen, and a `database_url` output that is a secret with the password encoded."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from aistarter_infra.platform import database as db  # noqa: E402
from aistarter_infra.platform.render import SECRET_PLACEHOLDER, render_platform  # noqa: E402
from aistarter_infra.platform.spec import PlatformConfigError, config_from_stack, parse_platform_config  # noqa: E402
from test_platform_render import blueprint_stack, rendered, require_sdk  # noqa: E402

DB_TYPES = {"aws": "aws:rds/instance:Instance", "gcp": "gcp:sql/databaseInstance:DatabaseInstance",
            "azure": "azure-native:dbforpostgresql:Server"}


def _db(result: Any, cloud: str) -> dict[str, Any]:
    found = result.of_type(DB_TYPES[cloud])
    assert len(found) == 1, [r["type"] for r in result.resources]
    return found[0]["inputs"]


def test_url_encodes_user_and_password() -> None:
    url = db.database_url("app user", "p@ss:w/rd?#%", "db.internal", "app")
    assert url == "postgresql://app%20user:p%40ss%3Aw%2Frd%3F%23%25@db.internal:5432/app?sslmode=require"
    parts = urlsplit(url)
    assert unquote(parts.password or "") == "p@ss:w/rd?#%" and parts.hostname == "db.internal"


def test_pgvector_gets_the_memory_tier() -> None:
    for cloud in ("aws", "gcp", "azure"):
        plain, vector = db.default_tier(cloud, "none"), db.default_tier(cloud, "pgvector")
        assert vector.memory_gb > plain.memory_gb and vector.monthly_usd > plain.monthly_usd


@pytest.mark.parametrize("cloud", ["aws", "gcp", "azure"])
def test_database_url_is_a_secret_output(cloud: str) -> None:
    _, result = rendered(cloud, "small")
    assert "database_url" in result.secret_outputs
    parts = urlsplit(result.outputs["database_url"])
    assert parts.scheme == "postgresql" and parts.port == 5432 and parts.query == "sslmode=require"
    assert parts.username == "aistarter" and parts.path == "/app" and parts.hostname
    assert result.outputs["monitor_labels"] == {"release": "kube-prometheus-stack"}
    assert result.outputs["ingress_class"]


def test_aws_rds_is_private_encrypted_backed_up_and_protected() -> None:
    _, result = rendered("aws", "small")
    inputs = _db(result, "aws")
    assert inputs["engine"] == "postgres" and inputs["engineVersion"] == db.ENGINE_VERSION
    assert inputs["publiclyAccessible"] is False and inputs["storageEncrypted"] is True
    assert inputs["backupRetentionPeriod"] == 7 and inputs["deletionProtection"] is True
    assert inputs["skipFinalSnapshot"] is False
    assert inputs["password"] == SECRET_PLACEHOLDER, "the password must stay a secret in the rendered inputs"
    (group,) = [r["inputs"] for r in result.of_type("aws:ec2/securityGroup:SecurityGroup") if r["name"] == "demo-db"]
    (rule,) = group["ingress"]
    assert (rule["fromPort"], rule["toPort"], rule["cidrBlocks"]) == (5432, 5432, ["10.0.0.0/16"])
    (subnets,) = result.of_type("aws:rds/subnetGroup:SubnetGroup")
    assert len(subnets["inputs"]["subnetIds"]) == 2  # the private subnets
    (params,) = result.of_type("aws:rds/parameterGroup:ParameterGroup")
    assert {"name": "rds.force_ssl", "value": "1"} in params["inputs"]["parameters"]


def test_gcp_cloud_sql_has_a_private_ip_only() -> None:
    _, result = rendered("gcp", "small")
    inputs = _db(result, "gcp")
    settings = inputs["settings"]
    assert settings["ipConfiguration"]["ipv4Enabled"] is False
    assert settings["ipConfiguration"]["sslMode"] == "ENCRYPTED_ONLY"
    assert settings["backupConfiguration"]["enabled"] is True
    assert settings["backupConfiguration"]["backupRetentionSettings"]["retainedBackups"] == 7
    assert inputs["deletionProtection"] is True and settings["deletionProtectionEnabled"] is True
    assert inputs["databaseVersion"] == f"POSTGRES_{db.ENGINE_VERSION}"
    assert result.of_type("gcp:servicenetworking/connection:Connection"), "private services access"
    (user,) = result.of_type("gcp:sql/user:User")
    assert user["inputs"]["password"] == SECRET_PLACEHOLDER


def test_gcp_has_its_own_vpc_not_default() -> None:
    _, result = rendered("gcp", "small")
    (cluster,) = result.of_type("gcp:container/cluster:Cluster")
    (network,) = result.of_type("gcp:compute/network:Network")
    assert network["inputs"]["autoCreateSubnetworks"] is False
    assert cluster["inputs"]["ipAllocationPolicy"] == {"clusterSecondaryRangeName": "pods",
                                                       "servicesSecondaryRangeName": "services"}
    assert cluster["inputs"]["privateClusterConfig"]["enablePrivateNodes"] is True
    assert result.of_type("gcp:compute/routerNat:RouterNat")


def test_azure_flexible_server_is_vnet_integrated_and_locked() -> None:
    _, result = rendered("azure", "small")
    inputs = _db(result, "azure")
    assert inputs["network"]["publicNetworkAccess"] == "Disabled"
    assert inputs["backup"]["backupRetentionDays"] == 7
    assert inputs["administratorLoginPassword"] == SECRET_PLACEHOLDER
    (subnet,) = [r["inputs"] for r in result.of_type("azure-native:network:Subnet") if r["name"] == "demo-db"]
    assert subnet["delegations"][0]["serviceName"] == "Microsoft.DBforPostgreSQL/flexibleServers"
    (lock,) = result.of_type("azure-native:authorization:ManagementLockAtResourceLevel")
    assert lock["inputs"]["level"] == "CanNotDelete"
    assert result.of_type("azure-native:privatedns:VirtualNetworkLink")
    # Both AKS pools sit in the VNet the database is reachable from.
    (cluster,) = result.of_type("azure-native:containerservice:ManagedCluster")
    assert "vnetSubnetID" in cluster["inputs"]["agentPoolProfiles"][0]


@pytest.mark.parametrize("cloud", ["aws", "gcp", "azure"])
def test_pgvector_is_allowed(cloud: str) -> None:
    require_sdk(cloud)
    stack = blueprint_stack(cloud, "none")
    stack["vector_store"] = "pgvector"
    values = config_from_stack(stack, cluster_name="demo")
    assert values["database"]["pgvector"] is True
    assert values["database"]["tier"] == db.default_tier(cloud, "pgvector").name
    result = render_platform(values, project="demo-platform")
    extensions = [r["inputs"] for r in result.of_type("azure-native:dbforpostgresql:Configuration")
                  if r["inputs"]["configurationName"] == "azure.extensions"]
    if cloud == "azure":
        assert [(e["value"], e["source"]) for e in extensions] == [("VECTOR", "user-override")]
    else:
        # RDS and Cloud SQL ship pgvector with PostgreSQL 17: CREATE EXTENSION needs no allow-list.
        assert extensions == []


def test_deletion_protection_can_be_turned_off_for_throwaway_stacks() -> None:
    require_sdk("aws")
    values = config_from_stack(blueprint_stack("aws", "none"), cluster_name="demo")
    values["database"] = {**values["database"], "deletionProtection": False, "backupRetentionDays": 14}
    inputs = _db(render_platform(values, project="demo-platform"), "aws")
    assert inputs["deletionProtection"] is False and inputs["skipFinalSnapshot"] is True
    assert inputs["backupRetentionPeriod"] == 14


@pytest.mark.parametrize(("change", "message"), [
    ({"backupRetentionDays": 3}, "database.backupRetentionDays must be between 7 and 35"),
    ({"deletionProtection": "maybe"}, "database.deletionProtection must be true or false"),
    ({"size": "big"}, "database.size is not a setting"),
])
def test_bad_database_config_names_the_key(change: dict[str, Any], message: str) -> None:
    values = config_from_stack(blueprint_stack("aws", "none"), cluster_name="demo")
    values["database"] = {**values["database"], **change}
    with pytest.raises(PlatformConfigError, match=message):
        parse_platform_config(values)


def test_missing_password_secret_says_how_to_set_it() -> None:
    require_sdk("aws")
    import json

    import pulumi
    from aistarter_infra.platform.program import database_password

    pulumi.runtime.set_all_config({"demo-platform:cloud": json.dumps("aws")}, [])
    with pytest.raises(PlatformConfigError, match="pulumi config set --secret databasePassword"):
        database_password()

"""The managed PostgreSQL the platform stack creates for the app: its size per cloud and its connection URL.

Cloud SDK calls live in each cloud module (aws.py, gcp.py, azure.py); this module holds the data and the pure
rules they share, so the ADR (docs/decisions/0010-database.md), the tests and the programs read one table.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

PORT = 5432
ENGINE_VERSION = "17"  # PostgreSQL major; RDS, Cloud SQL and Azure flexible server all offer 17 with pgvector.
DEFAULT_DB = "app"
DEFAULT_USER = "aistarter"
BACKUP_RETENTION_DAYS = 7


@dataclass(frozen=True)
class Tier:
    """One database size on one cloud, with the on-demand price it is estimated at (USD, 730 h per month)."""

    name: str
    vcpus: int
    memory_gb: float
    storage_gb: int
    monthly_usd: float  # compute + the storage_gb above, single zone, list price in the default region
    edition: str = ""  # azure: Burstable / GeneralPurpose; gcp: ENTERPRISE


# Why these sizes (docs/decisions/0010-database.md): the app's own tables (API keys, usage rows, provenance,
# the jobs table and the metering outbox) are small and write-light, so a 2 vCPU / 4 GiB burstable instance
# serves them; pgvector keeps its HNSW index in memory, so vector_store=pgvector takes 2 vCPU / 8 GiB of
# non-burstable capacity instead. Prices are list prices on 2026-12-02 (us-east-1, us-central1, eastus).
TIERS: dict[str, dict[str, Tier]] = {
    "aws": {
        "default": Tier("db.t4g.medium", 2, 4, 20, 49.0),  # 0.065 $/h + 20 GB gp3 at 0.115 $/GB-month
        "pgvector": Tier("db.m7g.large", 2, 8, 20, 126.0),  # 0.168 $/h + 20 GB gp3
    },
    "gcp": {
        "default": Tier("db-custom-2-4096", 2, 4, 20, 85.0, "ENTERPRISE"),  # 2x0.0413 + 4x0.007 $/h + SSD
        "pgvector": Tier("db-custom-2-8192", 2, 8, 20, 105.0, "ENTERPRISE"),
    },
    "azure": {
        "default": Tier("Standard_B2s", 2, 4, 32, 54.0, "Burstable"),  # 0.068 $/h + 32 GiB P4 storage
        "pgvector": Tier("Standard_D2ds_v5", 2, 8, 32, 134.0, "GeneralPurpose"),
    },
}


def default_tier(cloud: str, vector_store: str | None) -> Tier:
    """The blueprint's database size: pgvector needs memory for its index, everything else fits burstable."""
    return TIERS[cloud]["pgvector" if vector_store == "pgvector" else "default"]


def tier_by_name(cloud: str, name: str) -> Tier | None:
    return next((t for t in TIERS[cloud].values() if t.name == name), None)


@dataclass(frozen=True)
class DatabaseSpec:
    tier: str
    storage_gb: int
    engine_version: str = ENGINE_VERSION
    backup_retention_days: int = BACKUP_RETENTION_DAYS
    deletion_protection: bool = True
    high_availability: bool = False
    pgvector: bool = False
    name: str = DEFAULT_DB
    user: str = DEFAULT_USER
    edition: str = ""


def database_url(user: str, password: str, host: str, name: str = DEFAULT_DB) -> str:
    """postgresql://USER:PASS@HOST:5432/DB?sslmode=require with user and password percent-encoded."""
    return (f"postgresql://{quote(user, safe='')}:{quote(password, safe='')}@{host}:{PORT}/{name}"
            "?sslmode=require")


def config_for(cloud: str, vector_store: str | None) -> dict[str, Any]:
    """The `database` stack config a blueprint implies (what Pulumi.dev.yaml gets)."""
    tier = default_tier(cloud, vector_store)
    values: dict[str, Any] = {"tier": tier.name, "storageGb": tier.storage_gb, "engineVersion": ENGINE_VERSION,
                              "backupRetentionDays": BACKUP_RETENTION_DAYS, "deletionProtection": True,
                              "highAvailability": False, "pgvector": vector_store == "pgvector"}
    if tier.edition:
        values["edition"] = tier.edition
    return values


def parse(raw: Mapping[str, Any] | None, cloud: str, error: type[ValueError]) -> DatabaseSpec:
    """DatabaseSpec from the `database` stack config object; unknown keys are refused with the allowed ones."""
    raw = dict(raw or {})
    allowed = {"tier", "storageGb", "engineVersion", "backupRetentionDays", "deletionProtection",
               "highAvailability", "pgvector", "name", "user", "edition"}
    unknown = sorted(set(raw) - allowed)
    if unknown:
        raise error(f"database.{unknown[0]} is not a setting; use one of {', '.join(sorted(allowed))}")
    tier_default = TIERS[cloud]["default"]
    tier = str(raw.get("tier") or tier_default.name)
    known = tier_by_name(cloud, tier)

    def number(key: str, default: int, low: int, high: int) -> int:
        value = raw.get(key, default)
        try:
            out = int(value)
        except (TypeError, ValueError):
            raise error(f"database.{key} must be a whole number, got {value!r}") from None
        if not low <= out <= high:
            raise error(f"database.{key} must be between {low} and {high}, got {out}")
        return out

    def flag(key: str, default: bool) -> bool:
        value = raw.get(key, default)
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise error(f"database.{key} must be true or false, got {value!r}")

    # RDS keeps automated backups 1-35 days, Cloud SQL and Azure 7-35 (Azure's minimum is 7).
    retention = number("backupRetentionDays", BACKUP_RETENTION_DAYS, 7, 35)
    return DatabaseSpec(
        tier=tier,
        storage_gb=number("storageGb", known.storage_gb if known else tier_default.storage_gb, 20, 16384),
        engine_version=str(raw.get("engineVersion") or ENGINE_VERSION),
        backup_retention_days=retention,
        deletion_protection=flag("deletionProtection", True),
        high_availability=flag("highAvailability", False),
        pgvector=flag("pgvector", False),
        name=str(raw.get("name") or DEFAULT_DB),
        user=str(raw.get("user") or DEFAULT_USER),
        edition=str(raw.get("edition") or (known.edition if known else tier_default.edition)),
    )

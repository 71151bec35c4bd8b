"""Database: the shared PostgreSQL URL as a Secret, the migration Job, and (cloud=existing) CloudNativePG.

Every process that touches the database (API replicas, workers, the migration Job) reads DATABASE_URL from the
Secret `database`, key `url`. Where the URL comes from:
- aws/gcp/azure: the platform stack's managed database (its `database_url` output, already URL-encoded);
- existing + `database.cloudnativepg: false`: the secret config key `database_url` (an external database);
- existing + `database.cloudnativepg: true`: a CloudNativePG `Cluster` in the app namespace, owned by the user
  `database.user` whose password is the secret `database_password` (URL-encoded into the URL here).
Migrations run once per deploy in the Job `migrate`; the API and worker Deployments depend on it and never
migrate at startup (AUTO_MIGRATE=false), so replicas cannot race on the schema.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pulumi
import pulumi_kubernetes as k8s

from .. import kube
from ..cluster import PlatformOutputs
from ..config import AppStackConfig

COMPONENT = "database"
SECRET = "database"
URL_KEY = "url"
MIGRATE_COMPONENT = "migrate"
MIGRATE_JOB = "migrate"
# `alembic upgrade heads` through the app's own code (app/db/base.upgrade), with the image's alembic.ini.
MIGRATE_COMMAND = ["python", "-m", "app.db.migrate"]
CNPG_REPO = "https://cloudnative-pg.github.io/charts"
CNPG_INSTANCE_PORT = 8000


def database_url_env() -> dict[str, Any]:
    return kube.secret_env("DATABASE_URL", SECRET, URL_KEY)


def cnpg_url(user: str, password: str, host: str, database: str) -> str:
    # Passwords may hold '@', ':' or '/'; unencoded they would split the URL in the wrong place.
    return f"postgresql://{quote(user, safe='')}:{quote(password, safe='')}@{host}:5432/{quote(database, safe='')}"


class Database(pulumi.ComponentResource):
    """The `database` Secret (DATABASE_URL) and, with CloudNativePG, the operator release and its `Cluster`."""

    def __init__(self, name: str, cfg: AppStackConfig, namespace: pulumi.Input[str], platform: PlatformOutputs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("aistarter:app:Database", name, None, opts)
        db = cfg.database
        p = cfg.project
        pcfg = pulumi.Config()
        self.ready: list[pulumi.Resource] = []

        def meta(n: str) -> dict[str, Any]:
            return kube.metadata(n, namespace, p, COMPONENT)

        url: pulumi.Input[str]
        if cfg.cloud != "existing":
            assert platform.database_url is not None, "the platform stack exports database_url"
            url = platform.database_url
        elif not db.cloudnativepg:
            url = pcfg.require_secret("database_url")
        else:
            password = pcfg.require_secret("database_password")
            host = f"{db.cluster_name}-rw"
            url = pulumi.Output.secret(password).apply(lambda pw: cnpg_url(db.user, pw, host, db.name))
            self.ready.append(self._cloudnativepg(name, cfg, namespace, platform, password, meta))
        self.secret = k8s.core.v1.Secret(f"{name}-url", metadata=meta(SECRET), type="Opaque",
                                         string_data={URL_KEY: url}, opts=kube.opts(self))
        self.register_outputs({"secret": SECRET})

    def _cloudnativepg(self, name: str, cfg: AppStackConfig, namespace: pulumi.Input[str],
                       platform: PlatformOutputs, password: pulumi.Output[str], meta: Any) -> pulumi.Resource:
        db = cfg.database
        deps: list[pulumi.Resource] = []
        if db.install_operator:
            deps.append(k8s.helm.v3.Release(
                f"{name}-cnpg-operator", name="cnpg", chart="cloudnative-pg", version=db.operator_chart_version,
                repository_opts={"repo": CNPG_REPO}, namespace=db.operator_namespace, create_namespace=True,
                opts=kube.opts(self)))
        creds = k8s.core.v1.Secret(
            f"{name}-credentials", metadata=meta("database-credentials"), type="kubernetes.io/basic-auth",
            string_data={"username": db.user, "password": password}, opts=kube.opts(self))
        initdb: dict[str, Any] = {"database": db.name, "owner": db.user, "secret": {"name": "database-credentials"}}
        if cfg.vector_store is not None and cfg.vector_store.kind == "pgvector":
            # Created by the superuser at bootstrap: the app's owner role may not create extensions itself.
            initdb["postInitApplicationSQL"] = ["CREATE EXTENSION IF NOT EXISTS vector"]
        storage: dict[str, Any] = {"size": db.storage_size}
        storage_class = kube.storage_class_name(platform.storage_class)
        storage["storageClass"] = storage_class
        return k8s.apiextensions.CustomResource(
            f"{name}-cluster", api_version="postgresql.cnpg.io/v1", kind="Cluster",
            metadata=meta(db.cluster_name),
            spec={"instances": db.instances, "imageName": db.image, "bootstrap": {"initdb": initdb},
                  "storage": storage,
                  # One instance must stay drainable: CNPG's own PDB would block every node drain otherwise.
                  "enablePDB": db.instances > 1},
            opts=kube.opts(self, [creds, *deps]))


class MigrationJob(pulumi.ComponentResource):
    """`alembic upgrade heads` once per deploy, before the API and worker Deployments roll (they depend on it).

    The Job's pod template holds the image, so a new image replaces the Job and migrates again; an unchanged one
    leaves the finished Job alone. Pulumi waits for it to complete (up to the custom timeout below: a managed
    database that is still coming up, or a long migration, may exceed the default wait).
    """

    def __init__(self, name: str, cfg: AppStackConfig, namespace: pulumi.Input[str], env: list[dict[str, Any]],
                 depends_on: list[pulumi.Resource], opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("aistarter:app:MigrationJob", name, None, opts)
        p = cfg.project
        container = {
            "name": "migrate",
            "image": cfg.api.image,
            "imagePullPolicy": kube.PULL_POLICY,
            "command": MIGRATE_COMMAND,
            "env": env,
            "resources": cfg.api.resources.as_k8s(),
            "securityContext": kube.container_security_context(),
            "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
        }
        self.job = k8s.batch.v1.Job(
            f"{name}-job",
            metadata=kube.metadata(MIGRATE_JOB, namespace, p, MIGRATE_COMPONENT),
            spec={
                # Retries with back-off cover a database that is still starting (CloudNativePG bootstrap).
                "backoffLimit": 6,
                "activeDeadlineSeconds": 1200,
                "template": {
                    "metadata": {"labels": kube.labels(p, MIGRATE_COMPONENT)},
                    "spec": {
                        "restartPolicy": "Never",
                        "automountServiceAccountToken": False,
                        "securityContext": kube.pod_security_context(),
                        "containers": [container],
                        "volumes": [kube.empty_dir("tmp")],
                    },
                },
            },
            opts=pulumi.ResourceOptions(parent=self, depends_on=depends_on, delete_before_replace=True,
                                        custom_timeouts=pulumi.CustomTimeouts(create="20m", update="20m")),
        )
        self.register_outputs({"job": MIGRATE_JOB})

"""Typed configuration of the app stack, read from Pulumi stack config.

Every tunable lives in `Pulumi.<stack>.yaml` (rendered from the blueprint's STACK), grouped in a few structured
objects (`api`, `model_server`, `gpu`, `vector_store`, `queue`, `telemetry`, `platform`, `addons`). Secrets are
never in that file: they are separate keys set with `pulumi config set --secret <key> <value>` (see
`required_secret_keys`).
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, field_validator, model_validator

# Kubernetes quantity strings ("250m", "1", "8Gi"); checked so a typo fails at config time, not at apply time.
_QUANTITY = re.compile(r"^([0-9]+(\.[0-9]+)?)(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$")
# An image reference pinned by exact tag or digest: repo[:tag][@sha256:...] with at least one of them.
_IMAGE = re.compile(r"^(?P<repo>[a-z0-9][a-z0-9._/:-]*?)(?::(?P<tag>[A-Za-z0-9_][A-Za-z0-9._-]{0,127}))?"
                    r"(?:@(?P<digest>sha256:[a-f0-9]{64}))?$")
_FLOATING_TAGS = {"latest", "stable", "main", "master", "edge", "nightly"}

SECRET_HINT = "pulumi config set --secret {key} <value>"
# The image the generated Pulumi.<stack>.yaml names until the team builds and pushes its own.
PLACEHOLDER_IMAGE_PREFIX = "ghcr.io/your-org/"


class ConfigError(ValueError):
    """A stack config value is missing or wrong; the message names the key and the fix."""


def check_image(value: str, key: str = "image") -> str:
    m = _IMAGE.match(value or "")
    if not m or not (m.group("tag") or m.group("digest")):
        raise ValueError(f"{key}={value!r} is not pinned: use an exact tag (repo:1.2.3) or a digest (repo@sha256:...)")
    if m.group("tag") and m.group("tag").lower() in _FLOATING_TAGS and not m.group("digest"):
        raise ValueError(f"{key}={value!r} uses the floating tag {m.group('tag')!r}: pin an exact version or digest")
    return value


def check_quantity(value: str | float, key: str) -> str:
    text = str(value)
    if not _QUANTITY.match(text):
        raise ValueError(f"{key}={value!r} is not a Kubernetes quantity (examples: 250m, 1, 512Mi, 8Gi)")
    return text


class _Model(BaseModel):
    # Unknown keys are typos in Pulumi.<stack>.yaml; reject them instead of silently ignoring a tunable.
    model_config = ConfigDict(extra="forbid", frozen=True)


class Resources(_Model):
    cpu_request: str = "250m"
    cpu_limit: str = "1"
    memory_request: str = "512Mi"
    memory_limit: str = "1Gi"

    @field_validator("cpu_request", "cpu_limit", "memory_request", "memory_limit", mode="before")
    @classmethod
    def _quantity(cls, v: Any, info: Any) -> str:
        return check_quantity(v, info.field_name)

    def as_k8s(self, extra: dict[str, str] | None = None) -> dict[str, dict[str, str]]:
        requests = {"cpu": self.cpu_request, "memory": self.memory_request}
        limits = {"cpu": self.cpu_limit, "memory": self.memory_limit}
        for name, amount in (extra or {}).items():
            requests[name] = amount
            limits[name] = amount
        return {"requests": requests, "limits": limits}


class IngressConfig(_Model):
    enabled: bool = True
    class_name: str = "nginx"
    host: str = ""
    tls_secret: str = ""
    # Namespace of the ingress controller pods: the only source allowed to reach the API besides Prometheus.
    controller_namespace: str = "ingress-nginx"
    # Load balancers that send traffic straight to pod IPs (AWS ALB target-type ip, Azure AGIC) come from VPC
    # addresses, not from a namespace: list their subnets here.
    allow_cidrs: list[str] = []


class ApiConfig(_Model):
    image: str
    port: int = 8000
    min_replicas: int = Field(2, ge=1)
    max_replicas: int = Field(3, ge=1)
    target_cpu_utilization: int = Field(70, ge=10, le=100)
    resources: Resources = Resources()
    ingress: IngressConfig = IngressConfig()
    # Cold-start contract with the backend: how long the API holds a request while the model server wakes.
    latency_budget_ms: int = Field(2000, ge=1)
    auth: Literal["api_key", "none"] = "api_key"
    # /metrics and /internal/* are served here, never on `port`: the Service the Ingress targets cannot reach them.
    metrics_port: int = Field(9000, ge=1024, le=65535)

    @property
    def longest_hold_s(self) -> int:
        """Longest time the API holds a request with no answer yet (a cold self-hosted model): every proxy and
        load balancer idle timeout on the path must be longer. Streams send keep-alives meanwhile; non-streaming
        requests cannot."""
        return -(-self.latency_budget_ms // 1000)

    @field_validator("image")
    @classmethod
    def _pinned(cls, v: str) -> str:
        return check_image(v, "api.image")

    @model_validator(mode="after")
    def _bounds(self) -> ApiConfig:
        if self.min_replicas > self.max_replicas:
            raise ValueError(f"api.min_replicas={self.min_replicas} > api.max_replicas={self.max_replicas}: "
                             "raise max_replicas or lower min_replicas")
        if self.metrics_port == self.port:
            raise ValueError(f"api.metrics_port={self.metrics_port} equals api.port: the internal endpoints need "
                             "their own port")
        return self


class Toleration(_Model):
    key: str
    operator: Literal["Equal", "Exists"] = "Equal"
    value: str = ""
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute", ""] = "NoSchedule"

    def as_k8s(self) -> dict[str, str]:
        out = {"key": self.key, "operator": self.operator, "effect": self.effect}
        if self.operator == "Equal":
            out["value"] = self.value
        return {k: v for k, v in out.items() if v}


class GpuConfig(_Model):
    accelerator: str = "nvidia-l4"
    gpus_per_node: int = Field(1, ge=1)
    # Taints the cloud adds to GPU nodes on its own (AKS spot: kubernetes.azure.com/scalesetpriority=spot),
    # beyond the pool taint; GPU pods and the device plugin tolerate these too.
    extra_tolerations: list[Toleration] = []


class ModelServerConfig(_Model):
    engine: Literal["vllm"] = "vllm"
    image: str
    model: str
    port: int = 8000
    min_replicas: int = Field(0, ge=0)
    max_replicas: int = Field(3, ge=1)
    tensor_parallel: int = Field(1, ge=1)
    scale_to_zero: bool = True
    target_pending_per_replica: int = Field(8, ge=1)
    cold_start_s: int = Field(300, ge=30)
    # KEDA waits this long after the last pending request before taking the GPUs back to zero.
    cooldown_s: int = Field(600, ge=0)
    prometheus_url: str = "http://prometheus-operated.monitoring.svc:9090"
    # Weights plus headroom (the blueprint's cache_gi); a model larger than its cache crash-loops on download.
    cache_size: str = "100Gi"
    # per-pod: an ephemeral claim per pod, downloaded on each start (small models). per-replica: a StatefulSet
    # claim per replica that survives scale to zero, so a wake loads instead of downloading (large models).
    # shared: one ReadWriteMany claim for the whole fleet (needs cache_storage_class).
    cache_mode: Literal["per-pod", "per-replica", "shared"] = "per-pod"
    cache_storage_class: str = ""
    shm_size: str = "8Gi"
    max_model_len: int = Field(0, ge=0)
    # vLLM --max-num-seqs: the batch the KV cache and per-token latency target allow (0 = vLLM's default).
    max_num_seqs: int = Field(0, ge=0)
    gpu_memory_utilization: float = Field(0.90, gt=0.1, le=0.99)
    resources: Resources = Resources(cpu_request="4", cpu_limit="8", memory_request="32Gi", memory_limit="32Gi")

    @field_validator("image")
    @classmethod
    def _pinned(cls, v: str) -> str:
        return check_image(v, "model_server.image")

    @field_validator("cache_size", "shm_size", mode="before")
    @classmethod
    def _quantity(cls, v: Any, info: Any) -> str:
        return check_quantity(v, f"model_server.{info.field_name}")

    @model_validator(mode="after")
    def _bounds(self) -> ModelServerConfig:
        if self.min_replicas > self.max_replicas:
            raise ValueError(f"model_server.min_replicas={self.min_replicas} > max_replicas={self.max_replicas}")
        if not self.scale_to_zero and self.min_replicas < 1:
            raise ValueError("model_server.min_replicas is 0 but scale_to_zero is false: set min_replicas >= 1 "
                             "or scale_to_zero: true")
        if self.cache_mode == "shared" and not self.cache_storage_class:
            raise ValueError("model_server.cache_mode=shared needs cache_storage_class set to a ReadWriteMany class "
                             "(EFS, Filestore, Azure Files)")
        return self

    @property
    def keda_min_replicas(self) -> int:
        # KEDA's idleReplicaCount must be below minReplicaCount; with scale-to-zero the active floor is 1.
        return max(1, self.min_replicas)

    @property
    def name(self) -> str:
        return "model-server"


class VectorStoreConfig(_Model):
    kind: Literal["qdrant", "pgvector"]
    # qdrant: one replica, a plain StatefulSet has no replication (scale out with the Qdrant operator).
    # pgvector lives in the shared database (see DatabaseConfig); image and storage apply to qdrant only.
    image: str = ""
    storage_size: str = "20Gi"
    resources: Resources = Resources(cpu_request="1", cpu_limit="1", memory_request="2Gi", memory_limit="2Gi")
    database: str = "app"

    @field_validator("image")
    @classmethod
    def _pinned(cls, v: str) -> str:
        return check_image(v, "vector_store.image") if v else v

    @field_validator("storage_size", mode="before")
    @classmethod
    def _quantity(cls, v: Any) -> str:
        return check_quantity(v, "vector_store.storage_size")

    @model_validator(mode="after")
    def _requests_equal_limits(self) -> VectorStoreConfig:
        r = self.resources
        if r.cpu_request != r.cpu_limit or r.memory_request != r.memory_limit:
            raise ValueError("vector_store.resources: requests must equal limits (Guaranteed QoS keeps the database "
                             "from being evicted first under memory pressure)")
        if self.kind == "qdrant" and not self.image:
            raise ValueError("vector_store.image is empty: qdrant needs a pinned image (qdrant/qdrant:vX.Y.Z)")
        return self


class DatabaseConfig(_Model):
    """The shared PostgreSQL (keys, usage, provenance, jobs, pgvector) every API replica and worker uses.

    aws/gcp/azure: the platform stack's managed database (its `database_url` output); nothing to set here.
    existing: `cloudnativepg: false` takes the secret `database_url` (an external database); `true` creates a
    CloudNativePG cluster in the app namespace (its password: the secret `database_password`).
    """

    cloudnativepg: bool = False
    install_operator: bool = True
    operator_chart_version: str = "0.23.0"
    operator_namespace: str = "cnpg-system"
    # CloudNativePG's PostgreSQL images ship the pgvector extension.
    image: str = "ghcr.io/cloudnative-pg/postgresql:17.2"
    instances: int = Field(1, ge=1)
    storage_size: str = "20Gi"
    name: str = "app"
    user: str = "app"

    @field_validator("image")
    @classmethod
    def _pinned(cls, v: str) -> str:
        return check_image(v, "database.image")

    @field_validator("storage_size", mode="before")
    @classmethod
    def _quantity(cls, v: Any) -> str:
        return check_quantity(v, "database.storage_size")

    @property
    def cluster_name(self) -> str:
        return "app-db"


class QueueConfig(_Model):
    kind: Literal["arq", "celery"]
    redis_image: str = "redis:7.4.2-alpine"
    redis_storage_size: str = "2Gi"
    redis_resources: Resources = Resources(cpu_request="250m", cpu_limit="500m", memory_request="256Mi",
                                           memory_limit="512Mi")
    worker_min_replicas: int = Field(0, ge=0)
    worker_max_replicas: int = Field(5, ge=1)
    jobs_per_worker: int = Field(5, ge=1)
    queue_name: str = ""
    worker_command: list[str] = []
    worker_probe_command: list[str] = []
    worker_resources: Resources = Resources()
    # The worker serves Prometheus metrics here (prometheus_client's HTTP server): its share of
    # aistarter_model_pending_requests is what wakes the model server for queued work.
    worker_metrics_port: int = Field(9000, ge=1024, le=65535)

    @field_validator("redis_image")
    @classmethod
    def _pinned(cls, v: str) -> str:
        return check_image(v, "queue.redis_image")

    @model_validator(mode="after")
    def _bounds(self) -> QueueConfig:
        if self.worker_min_replicas > self.worker_max_replicas:
            raise ValueError("queue.worker_min_replicas > queue.worker_max_replicas")
        return self

    # Defaults follow the generated backend's worker module (app.jobs.worker); override in stack config.
    @property
    def effective_queue_name(self) -> str:
        return self.queue_name or ("arq:queue" if self.kind == "arq" else "celery")

    @property
    def effective_worker_command(self) -> list[str]:
        if self.worker_command:
            return list(self.worker_command)
        if self.kind == "arq":
            return ["arq", "app.jobs.worker.WorkerSettings"]
        # solo pool: one process per pod, so the metrics it serves (the pending gauge of the jobs it runs) are the
        # pod's; a prefork pool would keep them in child processes no scrape sees. KEDA adds pods instead.
        return ["celery", "-A", "app.jobs.worker", "worker", "--pool=solo", "--loglevel=INFO"]

    @property
    def effective_probe_command(self) -> list[str]:
        if self.worker_probe_command:
            return list(self.worker_probe_command)
        if self.kind == "arq":
            # arq --check reads the health key the worker refreshes in Redis; exit 1 when it is stale.
            return ["arq", "--check", "app.jobs.worker.WorkerSettings"]
        return ["sh", "-c", "celery -A app.jobs.worker inspect ping -d celery@$HOSTNAME --timeout 5"]


class TelemetryConfig(_Model):
    backend: Literal["otel", "langfuse", "phoenix"] = "otel"
    # contrib: the core distribution lacks the attributes processor used to drop content below.
    collector_image: str = "otel/opentelemetry-collector-contrib:0.119.0"
    # trace_content=metadata: strip prompt/completion attributes in the collector too (defence in depth; the
    # backend already leaves them out).
    drop_content_attributes: bool = False
    # Where the collector ships traces; empty keeps them in the collector's debug exporter (logs).
    exporter_endpoint: str = ""
    exporter_protocol: Literal["otlp", "otlphttp"] = "otlphttp"
    resources: Resources = Resources(cpu_request="100m", cpu_limit="500m", memory_request="256Mi",
                                     memory_limit="512Mi")

    @field_validator("collector_image")
    @classmethod
    def _pinned(cls, v: str) -> str:
        return check_image(v, "telemetry.collector_image")


class TaintConfig(_Model):
    key: str = "nvidia.com/gpu"
    value: str = "present"
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] = "NoSchedule"


class PlatformConfig(_Model):
    """Where the cluster facts come from: a platform StackReference (clouds) or this config (cloud=existing)."""

    stack: str = ""
    kube_context: str = ""
    gpu_pool_label_key: str = "aistarter.dev/pool"
    gpu_pool_label_value: str = "gpu"
    gpu_taint: TaintConfig = TaintConfig()
    storage_class: str = ""


class AddonsConfig(_Model):
    install_keda: bool = True
    keda_chart_version: str = "2.20.2"
    install_device_plugin: bool = True
    device_plugin_chart_version: str = "0.19.0"
    install_prometheus: bool = False
    prometheus_chart_version: str = "67.8.0"
    prometheus_namespace: str = "monitoring"
    keda_namespace: str = "keda"


class AppStackConfig(_Model):
    project: str
    namespace: str
    cloud: Literal["aws", "gcp", "azure", "existing"]
    # Any adapter the app has (app/settings.py PROVIDERS): each gets <NAME>_API_KEY from the secret <name>_api_key.
    providers: list[Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]*$")]] = ["openai"]
    api: ApiConfig
    gpu: GpuConfig | None = None
    model_server: ModelServerConfig | None = None
    vector_store: VectorStoreConfig | None = None
    queue: QueueConfig | None = None
    telemetry: TelemetryConfig | None = None
    database: DatabaseConfig = DatabaseConfig()
    prometheus_monitors: bool = True
    platform: PlatformConfig = PlatformConfig()
    addons: AddonsConfig = AddonsConfig()

    @field_validator("namespace", "project")
    @classmethod
    def _dns_label(cls, v: str, info: Any) -> str:
        if not re.fullmatch(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?", v):
            raise ValueError(f"{info.field_name}={v!r} must be a DNS label (lowercase letters, digits, '-')")
        return v

    @model_validator(mode="after")
    def _consistency(self) -> AppStackConfig:
        if self.model_server is not None:
            if self.gpu is None:
                raise ValueError("model_server is set but gpu is not: add a gpu object (accelerator, gpus_per_node)")
            if self.model_server.tensor_parallel > self.gpu.gpus_per_node:
                raise ValueError(f"model_server.tensor_parallel={self.model_server.tensor_parallel} exceeds "
                                 f"gpu.gpus_per_node={self.gpu.gpus_per_node}: vLLM shards one replica within a node")
        if self.cloud == "existing" and not self.platform.kube_context:
            raise ValueError("platform.kube_context is empty: with cloud=existing set it to your kubeconfig context "
                             "(pulumi config set --path platform.kube_context <name>)")
        if self.cloud != "existing" and self.database.cloudnativepg:
            raise ValueError(f"database.cloudnativepg is true on cloud={self.cloud}: the platform stack's managed "
                             "database is used there; set it to false")
        if self.cloud != "existing" and not self.platform.stack:
            raise ValueError("platform.stack is empty: set it to the platform stack, e.g. "
                             "pulumi config set --path platform.stack <org>/<project>-platform/<stack>")
        return self

    @property
    def external_providers(self) -> list[str]:
        return [p for p in self.providers if p != "local"]

    @property
    def local_endpoint_is_external(self) -> bool:
        """`local` without a model server here: an OpenAI-compatible server the team runs elsewhere, whose URL
        comes from the secret local_model_base_url."""
        return "local" in self.providers and self.model_server is None

    @property
    def gpu_extra_tolerations(self) -> list[dict[str, str]]:
        return [t.as_k8s() for t in self.gpu.extra_tolerations] if self.gpu is not None else []

    @property
    def uses_prometheus(self) -> bool:
        # The wake-from-zero trigger reads the API's pending gauge through Prometheus.
        return self.prometheus_monitors or self.model_server is not None


def provider_secret_keys(cfg: AppStackConfig) -> list[str]:
    """The keys of the app's provider-keys Secret: each hosted provider's API key, the URL of a `local` server run
    elsewhere, and the client API keys."""
    keys = [f"{p}_api_key" for p in cfg.external_providers]
    if cfg.local_endpoint_is_external:
        keys.append("local_model_base_url")
    if cfg.api.auth == "api_key":
        keys.append("api_keys")
    return keys


def required_secret_keys(cfg: AppStackConfig) -> list[str]:
    """Secret config keys the program requires (each set with `pulumi config set --secret`)."""
    keys = provider_secret_keys(cfg)
    if cfg.vector_store is not None and cfg.vector_store.kind == "qdrant":
        keys.append("qdrant_api_key")
    if cfg.cloud == "existing":
        keys.append("database_password" if cfg.database.cloudnativepg else "database_url")
    if cfg.queue is not None:
        keys.append("redis_password")
    return keys


OPTIONAL_SECRET_KEYS = ["hf_token", "otel_exporter_authorization"]

_OBJECT_KEYS = ("api", "gpu", "model_server", "vector_store", "queue", "telemetry", "database", "platform",
                "addons")


def _one_line(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"])
        msg = err["msg"].removeprefix("Value error, ")
        parts.append(f"{loc}: {msg}" if loc else msg)
    return "; ".join(parts)


def config_from_mapping(values: dict[str, Any]) -> AppStackConfig:
    """Build the typed config from plain values (object keys may be dicts or JSON strings)."""
    data: dict[str, Any] = {}
    for key, value in values.items():
        if (key in _OBJECT_KEYS or key == "providers") and isinstance(value, str):
            try:
                value = json.loads(value)
            except json.JSONDecodeError as exc:
                raise ConfigError(f"stack config {key!r} is not a valid JSON object: {exc}") from exc
        if key == "prometheus_monitors" and isinstance(value, str):
            value = value.lower() == "true"
        data[key] = value
    try:
        return AppStackConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"invalid app stack config: {_one_line(exc)}") from None


def load_app_config(config: Any, project: str) -> AppStackConfig:
    """Read the app stack config from a `pulumi.Config`; `project` is the generated project's slug."""
    values: dict[str, Any] = {"project": project}
    for key in ("namespace", "cloud", "prometheus_monitors"):
        v = config.get(key)
        if v is not None:
            values[key] = v
    for key in ("providers", *_OBJECT_KEYS):
        v = config.get_object(key)
        if v is not None:
            values[key] = v
    for key in ("namespace", "cloud", "api"):
        if key not in values:
            raise ConfigError(f"stack config {key!r} is missing: add it to Pulumi.<stack>.yaml")
    cfg = config_from_mapping(values)
    if cfg.api.image.startswith(PLACEHOLDER_IMAGE_PREFIX) and not _rendering():
        raise ConfigError(f"api.image={cfg.api.image!r} is the generated placeholder: build and push the app image "
                          "(see the Dockerfile), then pulumi config set --path api.image <registry>/<name>:<tag>")
    return cfg


def _rendering() -> bool:
    """True under `aistarter infra render` / the tests' mocks: there the placeholder image stands for "your
    image" and nothing is deployed, so a fresh project still renders; `pulumi up` never runs under mocks."""
    import pulumi
    from pulumi.runtime.mocks import MockMonitor

    return isinstance(pulumi.runtime.settings.SETTINGS.monitor, MockMonitor)

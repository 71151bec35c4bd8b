"""The catalog: GPUs, GPU nodes per cloud and region, open-weight models, hosted token prices, services and the
calibration rows, loaded from the YAML files in `catalog_data/` (shipped in the wheel).

Every row carries `source`, `as_of` and `kind` (published | measured | derived); `aistarter catalog check` fails
when a price is older than PRICE_MAX_AGE_DAYS. Change a figure in the data files, never here.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Literal

import yaml

DATA_DIR = Path(__file__).resolve().parent / "catalog_data"
PRICE_MAX_AGE_DAYS = 180
KINDS = frozenset({"published", "measured", "derived"})

Size = Literal["small", "large"]
Cloud = Literal["aws", "gcp", "azure", "existing"]
Precision = Literal["bf16", "fp8", "int4"]
BYTES_PER_KV_ELEMENT = 2  # vLLM keeps the KV cache in the activation dtype (bf16) unless told otherwise


def _load(name: str) -> Any:
    return yaml.safe_load((DATA_DIR / name).read_text(encoding="utf-8"))


@dataclass(frozen=True)
class Gpu:
    name: str
    memory_gb: float
    bandwidth_gbs: float
    bf16_tflops: float
    fp8_tflops: float | None
    source: str
    as_of: str
    kind: str


@dataclass(frozen=True)
class Instance:
    cloud: str
    region: str
    instance_type: str
    gpu: str
    gpus_per_node: int
    on_demand_usd: float
    source: str
    as_of: str
    kind: str

    @property
    def spot_usd(self) -> float:
        return round(self.on_demand_usd * SPOT_PRICE_FRACTION, 4)


@dataclass(frozen=True)
class Weights:
    repo: str
    gb: float


@dataclass(frozen=True)
class Model:
    name: str
    size_class: Size
    params_b: float
    active_params_b: float
    layers: int
    kv_heads: int
    head_dim: int
    native_context: int
    license: str
    default_precision: Precision
    weights: dict[str, Weights]
    source: str
    as_of: str
    kind: str

    @property
    def kv_bytes_per_token(self) -> int:
        """K and V, every layer, every KV head: 2 x layers x kv_heads x head_dim x bytes."""
        return 2 * self.layers * self.kv_heads * self.head_dim * BYTES_PER_KV_ELEMENT


@dataclass(frozen=True)
class HostedModel:
    provider: str
    model: str
    size_class: Size
    input_per_m: float
    output_per_m: float
    ttft_p95_ms: int
    source: str
    as_of: str
    kind: str


@cache
def gpus() -> dict[str, Gpu]:
    return {name: Gpu(name=name, **row) for name, row in _load("gpus.yaml").items()}


@cache
def instances() -> tuple[Instance, ...]:
    return tuple(Instance(**row) for row in _load("instances.yaml"))


@cache
def models() -> dict[str, Model]:
    out = {}
    for name, row in _load("models.yaml").items():
        weights = {p: Weights(**w) for p, w in row.pop("weights").items()}
        out[name] = Model(name=name, weights=weights, **row)
    return out


@cache
def hosted_models() -> tuple[HostedModel, ...]:
    return tuple(HostedModel(size_class=row.pop("class"), **row) for row in _load("providers.yaml"))


@cache
def services() -> dict[str, Any]:
    return _load("services.yaml")  # type: ignore[no-any-return]


@cache
def calibration() -> tuple[dict[str, Any], ...]:
    return tuple(_load("calibration.yaml"))


REGIONS: dict[str, tuple[str, ...]] = {
    # The first region of each cloud is the one prices are listed for; others reuse them (labelled derived).
    "aws": ("us-east-1", "us-west-2", "eu-west-1", "eu-central-1", "ap-northeast-1"),
    "gcp": ("us-central1", "us-east4", "europe-west4", "europe-west1", "asia-northeast1"),
    "azure": ("eastus", "westus3", "westeurope", "swedencentral", "japaneast"),
}
ALL_REGIONS: tuple[str, ...] = tuple(r for rs in REGIONS.values() for r in rs)


def offers(cloud: str, region: str | None = None) -> tuple[Instance, ...]:
    """GPU nodes sold on a cloud; prices are the reference region's when the region has no rows of its own."""
    rows = tuple(i for i in instances() if i.cloud == cloud)
    if region:
        own = tuple(i for i in rows if i.region == region)
        if own:
            return own
    return rows


def model_for(name: str, size: str) -> Model:
    if name == "auto":
        return models()[AUTO_MODEL[size]]
    return models()[name]


def precision_for(model: Model, precision: str) -> str:
    if precision == "auto":
        return model.default_precision
    return precision


# --- constants the engine uses, each read from services.yaml --------------------------------------------------


def _value(key: str) -> float:
    return float(services()[key]["value"])


SPOT_PRICE_FRACTION = _value("spot_fraction")
NODE_SCALE_DOWN_S = int(_value("node_scale_down_s"))
NODE_BOOT_S = int(services()["cold_start"]["node_boot_s"]["value"])
IMAGE_PULL_S = int(services()["cold_start"]["image_pull_s"]["value"])
WEIGHTS_LOAD_GBS = float(services()["cold_start"]["weights_gbs"]["value"])
ENGINE_INIT_S = int(services()["cold_start"]["engine_init_s"]["value"])

AUTO_MODEL: dict[str, str] = {"small": "qwen2.5-7b", "large": "qwen2.5-72b"}
VLLM_IMAGE = "vllm/vllm-openai:v0.11.0"

# Kept for callers of the first engine: the auto model of each size and its checkpoint.
MODELS: dict[Size, str] = {
    size: models()[name].weights[models()[name].default_precision].repo  # type: ignore[misc]
    for size, name in AUTO_MODEL.items()
}

PRICE_SOURCE = "catalog_data/instances.yaml (vendor on-demand list prices; source and as_of on every row)"
PRICE_AS_OF = min(i.as_of for i in instances())

# The generated gateway as measured by `python -m bench gateway` (bench/RESULTS.md, 2026-12-02, 2 cores): one
# uvicorn worker, metered configuration (API keys + usage metering + provenance), OpenAI-format streams of 20
# tokens. The bench report prints these next to the day's figures, so drift is visible.
GATEWAY_CPU_MS_PER_STREAM = 8.5  # CPU per stream at 16 concurrent streams (8.20 and 8.31 ms in two runs), rounded up
GATEWAY_BURST_STREAMS = 128  # most streams arriving at once with zero loss and p99 TTFT < 1 s (of 1/16/64/128/256)
# One worker is one thread: a request of one core guarantees the core those figures were measured on.
API_CPU_CORES = 1
API_TARGET_CPU = 70
# A replica's sustained rate when HPA holds it at the CPU target: what max_replicas is sized by.
API_REPLICA_RPS = int(API_CPU_CORES * 1000 * API_TARGET_CPU / 100 / GATEWAY_CPU_MS_PER_STREAM)
HOURS_PER_MONTH = 730

GPU_POOL_LABEL = ("aistarter.dev/pool", "gpu")
GPU_TAINT = ("nvidia.com/gpu", "present", "NoSchedule")


@dataclass(frozen=True)
class GpuOffer:
    """The first engine's view of a node type (kept: other modules and tests read it)."""

    accelerator: str
    gpu_memory_gb: int
    gpus_per_node: int
    instance_type: str | None
    hourly_usd: float | None


# --- catalog check ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Finding:
    where: str
    problem: str


def _rows_with_provenance() -> list[tuple[str, dict[str, Any], bool]]:
    """(where, row, is_price) for every row that carries numbers."""
    rows: list[tuple[str, dict[str, Any], bool]] = []
    rows += [(f"gpus.yaml:{n}", r, False) for n, r in _load("gpus.yaml").items()]
    rows += [(f"instances.yaml:{r['cloud']}/{r['instance_type']}", r, True) for r in _load("instances.yaml")]
    rows += [(f"models.yaml:{n}", r, False) for n, r in _load("models.yaml").items()]
    rows += [(f"providers.yaml:{r['provider']}/{r['model']}", r, True) for r in _load("providers.yaml")]
    rows += [(f"calibration.yaml:{r['id']}", r, False) for r in _load("calibration.yaml")]
    svc = _load("services.yaml")
    for group in ("database", "load_balancer", "billed_minimum_s"):
        rows += [(f"services.yaml:{group}/{c}", r, group != "billed_minimum_s") for c, r in svc[group].items()]
    rows += [(f"services.yaml:cold_start/{k}", r, False) for k, r in svc["cold_start"].items()]
    rows += [(f"services.yaml:{k}", svc[k], False) for k in ("spot_fraction", "node_scale_down_s")]
    return rows


def check(today: dt.date | None = None, max_age_days: int = PRICE_MAX_AGE_DAYS) -> list[Finding]:
    """Every row has source, as_of (ISO date) and kind; prices are at most max_age_days old."""
    today = today or dt.date.today()
    findings = []
    for where, row, is_price in _rows_with_provenance():
        missing = [k for k in ("source", "as_of", "kind") if not row.get(k)]
        if missing:
            findings.append(Finding(where, f"missing {', '.join(missing)}"))
            continue
        if row["kind"] not in KINDS:
            findings.append(Finding(where, f"kind '{row['kind']}' is not one of {', '.join(sorted(KINDS))}"))
        try:
            as_of = dt.date.fromisoformat(str(row["as_of"]))
        except ValueError:
            findings.append(Finding(where, f"as_of '{row['as_of']}' is not a YYYY-MM-DD date"))
            continue
        age = (today - as_of).days
        if is_price and age > max_age_days:
            findings.append(Finding(where, f"price is {age} days old (as_of {as_of}; limit {max_age_days}): "
                                           f"re-read {row['source']} and update the row"))
    return findings


def __getattr__(name: str) -> object:
    """The first engine's tables, derived from the catalog on first use (kept so old callers still import them)."""
    if name == "MODEL_LOAD_S":
        return {size: math.ceil(models()[m].weights[models()[m].default_precision].gb / WEIGHTS_LOAD_GBS)
                + ENGINE_INIT_S for size, m in AUTO_MODEL.items()}
    if name == "GPU_OFFERS":
        from .decide import scaling
        from .questions import Answers

        table = {}
        for cloud in ("aws", "gcp", "azure", "existing"):
            for size in ("small", "large"):
                option = scaling.choose(Answers(self_hosted=size, providers=["local"], cloud=cloud))
                assert option is not None
                i = option.instance
                table[(cloud, size)] = GpuOffer(i.gpu, int(option.gpu.memory_gb), i.gpus_per_node,
                                                i.instance_type or None, i.on_demand_usd or None)
        return table
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

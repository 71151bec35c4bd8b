"""GPU offers per cloud and model size, and the assumptions the scaling decision rests on.

Prices are on-demand list prices per node-hour for us-east-1 (AWS), us-central1 (GCP) and eastus (Azure)
as shown on each vendor's public pricing page; they drift, so every figure built on them is labelled an
estimate. Change them here and only here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

PRICE_SOURCE = (
    "Vendor on-demand list prices (aws.amazon.com/ec2/pricing, cloud.google.com/compute/gpus-pricing, "
    "azure.microsoft.com/pricing/details/virtual-machines); us-east-1 / us-central1 / eastus"
)
PRICE_AS_OF = "2025-10 snapshot; verify before budgeting"

Size = Literal["small", "large"]
Cloud = Literal["aws", "gcp", "azure", "existing"]


@dataclass(frozen=True)
class GpuOffer:
    accelerator: str
    gpu_memory_gb: int
    gpus_per_node: int
    instance_type: str | None
    hourly_usd: float | None


# small: a ~7B model (AWQ 4-bit, ~6 GB) on one GPU. large: a ~70B model in bf16 (~145 GB of weights plus
# KV cache) needs ~320 GB of GPU memory on one node, so the shard group never crosses a node boundary.
GPU_OFFERS: dict[tuple[Cloud, Size], GpuOffer] = {
    ("aws", "small"): GpuOffer("nvidia-l4", 24, 1, "g6.xlarge", 0.805),
    ("aws", "large"): GpuOffer("nvidia-a100-40gb", 40, 8, "p4d.24xlarge", 32.77),
    ("gcp", "small"): GpuOffer("nvidia-l4", 24, 1, "g2-standard-8", 0.854),
    ("gcp", "large"): GpuOffer("nvidia-a100-80gb", 80, 4, "a2-ultragpu-4g", 20.11),
    ("azure", "small"): GpuOffer("nvidia-tesla-t4", 16, 1, "Standard_NC4as_T4_v3", 0.526),
    ("azure", "large"): GpuOffer("nvidia-a100-80gb", 80, 4, "Standard_NC96ads_A100_v4", 14.69),
    ("existing", "small"): GpuOffer("nvidia-l4", 24, 1, None, None),
    ("existing", "large"): GpuOffer("nvidia-a100-80gb", 80, 4, None, None),
}

MODELS: dict[Size, str] = {
    "small": "Qwen/Qwen2.5-7B-Instruct-AWQ",
    "large": "Qwen/Qwen2.5-72B-Instruct",
}
VLLM_IMAGE = "vllm/vllm-openai:v0.11.0"
# Size of each model's weights on disk in GB (the Hugging Face repository's safetensors): the model cache is
# sized from it, so a 72B model never lands on a volume it cannot fit (Qwen2.5-7B-AWQ ~5.6 GB, 72B bf16 ~145 GB).
MODEL_WEIGHTS_GB: dict[Size, float] = {"small": 5.6, "large": 145.5}

# Cold start = GPU node boot with drivers and device plugin + vLLM image pull + weights load from the cache PVC.
NODE_BOOT_S = 180
IMAGE_PULL_S = 120
MODEL_LOAD_S: dict[Size, int] = {"small": 60, "large": 300}

# Sustained requests/s one model-server replica handles for chat-length generations (vLLM continuous batching).
MODEL_REPLICA_RPS: dict[Size, float] = {"small": 4.0, "large": 2.0}

# One async gateway replica (1 vCPU) proxying streams; conservative so HPA has room before saturation.
API_REPLICA_RPS = 25
API_TARGET_CPU = 70

SPOT_PRICE_FRACTION = 0.4  # spot GPUs typically cost 30-50% of on-demand; 40% is the planning figure
HOURS_PER_MONTH = 730
BUSY_FRACTION = {"steady": 0.5, "spiky": 0.15}  # share of hours the burst capacity above the warm floor runs

GPU_POOL_LABEL = ("aistarter.dev/pool", "gpu")
GPU_TAINT = ("nvidia.com/gpu", "present", "NoSchedule")

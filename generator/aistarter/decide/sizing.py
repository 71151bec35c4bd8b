"""Memory fit and throughput of one vLLM replica, from the model, the GPU and the token shape.

A roofline model, kept small enough to follow by hand in the scaling ADR:
- weights + KV cache + runtime overhead must fit in GPU_MEMORY_UTILIZATION of each GPU of the shard group;
- prefill is compute-bound: prompt_tokens x 2 x active params FLOPs at COMPUTE_EFFICIENCY of the dense peak;
- decode is bandwidth-bound: each step reads every weight once plus the KV cache of every running sequence,
  at BW_EFFICIENCY of the peak bandwidth; a step also pays STEP_OVERHEAD_S and, sharded, two all-reduces a layer;
- the batch is the largest that fits the KV room and keeps the per-token latency under the target.
The constants are checked against the calibration rows (catalog_data/calibration.yaml): tests fail past 25% error.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache
from typing import Any

from .. import catalog
from ..catalog import Gpu, Model

BW_EFFICIENCY = 0.77  # share of peak bandwidth decode reaches (measured: 75 tok/s of a 97 tok/s roofline, A100)
COMPUTE_EFFICIENCY = 0.5  # share of dense peak FLOPs prefill reaches (model FLOPs utilisation)
STEP_OVERHEAD_S = 0.0015  # scheduling, sampling and kernel launches per decode step
ALLREDUCE_S = 80e-6  # one tensor-parallel all-reduce of a step's activations over NVLink/PCIe
API_OVERHEAD_S = 0.02  # tokenisation, HTTP and the first chunk's trip through the gateway
GPU_MEMORY_UTILIZATION = 0.90  # vLLM's --gpu-memory-utilization: the share of each GPU it may use
RUNTIME_OVERHEAD_GB = 2.0  # per GPU: CUDA context, activations, CUDA graphs (vLLM's non-KV, non-weight memory)
MAX_NUM_SEQS = 256  # vLLM's default cap on running sequences
MIN_BATCH = 8  # a replica that cannot run this many typical sequences at once is not worth its GPUs
TP_DEGREES = (1, 2, 4, 8)
TPOT_TARGET_S = {"interactive": 0.060, "batch": 0.250}  # per-token latency: 60 ms outpaces reading; batch waits


def tpot_target_s(use_case: str) -> float:
    return TPOT_TARGET_S["batch" if use_case == "batch" else "interactive"]


def weights_gb(model: Model, precision: str) -> float:
    return model.weights[precision].gb


def tflops(gpu: Gpu, precision: str) -> float:
    """FP8 checkpoints run FP8 matmuls where the GPU has them; elsewhere (and for int4) the math is bf16."""
    if precision == "fp8" and gpu.fp8_tflops:
        return gpu.fp8_tflops
    return gpu.bf16_tflops


def kv_gb(model: Model, tokens: float) -> float:
    return model.kv_bytes_per_token * tokens / 1e9


@dataclass(frozen=True)
class Fit:
    tp: int
    weights_gb: float
    kv_room_gb: float  # across the shard group
    kv_tokens: int  # how many tokens of KV cache the room holds
    needed_tokens: int
    usable_gb_per_gpu: float


def needed_kv_tokens(max_model_len: int, seq_tokens: int, seqs: int) -> int:
    """One request at the full context plus the rest of the batch at the typical length."""
    return max_model_len + max(0, seqs - 1) * seq_tokens


def fit_at(model: Model, precision: str, gpu: Gpu, tp: int, max_model_len: int, seq_tokens: int,
           seqs: int = MIN_BATCH) -> Fit:
    usable = gpu.memory_gb * GPU_MEMORY_UTILIZATION
    w = weights_gb(model, precision)
    room = tp * (usable - RUNTIME_OVERHEAD_GB) - w
    tokens = int(room * 1e9 / model.kv_bytes_per_token) if room > 0 else 0
    return Fit(tp=tp, weights_gb=w, kv_room_gb=room, kv_tokens=tokens,
               needed_tokens=needed_kv_tokens(max_model_len, seq_tokens, seqs), usable_gb_per_gpu=usable)


def memory_fits(model: Model, precision: str, gpu: Gpu, gpus_per_node: int, max_model_len: int,
                seq_tokens: int) -> list[Fit]:
    """Every tensor-parallel degree (dividing the KV heads, within one node) where it all fits, smallest first."""
    fits = [fit_at(model, precision, gpu, tp, max_model_len, seq_tokens) for tp in TP_DEGREES
            if tp <= gpus_per_node and not model.kv_heads % tp]
    return [fit for fit in fits if fit.kv_tokens >= fit.needed_tokens]


def memory_fit(model: Model, precision: str, gpu: Gpu, gpus_per_node: int, max_model_len: int,
               seq_tokens: int) -> Fit | None:
    """The smallest tensor-parallel degree where it all fits."""
    return next(iter(memory_fits(model, precision, gpu, gpus_per_node, max_model_len, seq_tokens)), None)


def _comm_s(model: Model, tp: int) -> float:
    return 2 * model.layers * ALLREDUCE_S if tp > 1 else 0.0


def decode_parts(model: Model, precision: str, gpu: Gpu, tp: int, batch: float, ctx: float) -> tuple[float, float]:
    """(memory time, compute time) of one decode step with `batch` sequences of `ctx` tokens each."""
    read = weights_gb(model, precision) * 1e9 + batch * ctx * model.kv_bytes_per_token
    t_mem = read / (tp * gpu.bandwidth_gbs * 1e9 * BW_EFFICIENCY)
    t_cmp = batch * 2 * model.active_params_b * 1e9 / (tp * tflops(gpu, precision) * 1e12 * COMPUTE_EFFICIENCY)
    return t_mem, t_cmp


def decode_step_s(model: Model, precision: str, gpu: Gpu, tp: int, batch: float, ctx: float) -> float:
    t_mem, t_cmp = decode_parts(model, precision, gpu, tp, batch, ctx)
    return max(t_mem, t_cmp) + _comm_s(model, tp) + STEP_OVERHEAD_S


def prefill_compute_s(model: Model, precision: str, gpu: Gpu, tp: int, tokens: float) -> float:
    return tokens * 2 * model.active_params_b * 1e9 / (tp * tflops(gpu, precision) * 1e12 * COMPUTE_EFFICIENCY)


def prefill_s(model: Model, precision: str, gpu: Gpu, tp: int, tokens: float) -> float:
    """A prompt's prefill: compute-bound, but never faster than one pass over the weights."""
    t_mem, _ = decode_parts(model, precision, gpu, tp, 0, 0)
    return max(prefill_compute_s(model, precision, gpu, tp, tokens), t_mem) + _comm_s(model, tp)


def ttft_s(model: Model, precision: str, gpu: Gpu, tp: int, prompt: float, step_s: float) -> float:
    """Time to first token: gateway/API overhead + wait for the running step + the prompt's prefill."""
    return API_OVERHEAD_S + step_s + prefill_s(model, precision, gpu, tp, prompt)


def cycle_s(model: Model, precision: str, gpu: Gpu, tp: int, batch: float, prompt: float, output: float) -> float:
    """Steady state, `batch` sequences: the time for each to finish one request (its prefill and `output` steps).
    Chunked prefill shares steps with decode, so memory and compute time overlap (roofline max)."""
    ctx = prompt + output / 2
    t_mem, t_cmp = decode_parts(model, precision, gpu, tp, batch, ctx)
    compute = output * t_cmp + batch * prefill_compute_s(model, precision, gpu, tp, prompt)
    return max(output * t_mem, compute) + output * (_comm_s(model, tp) + STEP_OVERHEAD_S)


@dataclass(frozen=True)
class Capacity:
    batch: int  # max_num_seqs
    rps: float  # requests/s one replica sustains at that batch
    output_tok_s: float
    tpot_s: float
    ttft_s: float  # at full batch
    ttft_idle_s: float  # an idle replica
    limited_by: str  # "kv" | "latency" | "cap"


def capacity(model: Model, precision: str, gpu: Gpu, tp: int, prompt: int, output: int, kv_tokens: int,
             max_model_len: int, tpot_target: float) -> Capacity:
    """The largest batch that fits the KV room and meets the per-token latency target, and what it sustains."""
    seq = prompt + output
    by_kv = max(1, min(MAX_NUM_SEQS, 1 + (kv_tokens - max_model_len) // max(1, seq)))
    batch, limited = by_kv, "kv" if by_kv < MAX_NUM_SEQS else "cap"
    # The target bounds the decode step (inter-token time between prefill chunks): it only tightens as sequences
    # grow, so more tokens never buy a bigger batch. Prefill interference still slows the cycle below.
    while batch > 1 and decode_step_s(model, precision, gpu, tp, batch, prompt + output / 2) > tpot_target:
        batch, limited = batch - max(1, batch // 16), "latency"
    cyc = cycle_s(model, precision, gpu, tp, batch, prompt, output)
    step = decode_step_s(model, precision, gpu, tp, batch, prompt + output / 2)
    return Capacity(
        batch=batch, rps=batch / cyc, output_tok_s=batch * output / cyc, tpot_s=cyc / output,
        ttft_s=ttft_s(model, precision, gpu, tp, prompt, step),
        ttft_idle_s=ttft_s(model, precision, gpu, tp, prompt, 0.0), limited_by=limited,
    )


def cold_start_parts(model: Model, precision: str) -> dict[str, int]:
    return {
        "node boot": catalog.NODE_BOOT_S,
        "image pull": catalog.IMAGE_PULL_S,
        "weights load": math.ceil(weights_gb(model, precision) / catalog.WEIGHTS_LOAD_GBS),
        "engine init": catalog.ENGINE_INIT_S,
    }


def cache_gi(model: Model, precision: str) -> int:
    """The model cache volume: the checkpoint plus 20% for tokenizer files and a partial re-download, in GiB."""
    return max(10, math.ceil(weights_gb(model, precision) * 1e9 / 2**30 * 1.2))


# --- calibration replay -------------------------------------------------------------------------------------------


def replay(row: dict[str, Any]) -> dict[str, float]:
    """What the model predicts for one calibration row, replaying how that benchmark ran."""
    model, gpu = catalog.models()[row["model"]], catalog.gpus()[row["gpu"]]
    precision, tp = row["precision"], row["tp"]
    out: dict[str, float] = {}
    if row["mode"] == "burst":
        n, prompt, omax = row["requests"], row["prompt_tokens"], row["output_max"]
        mean_out = row["generated_tokens"] / n
        step = decode_step_s(model, precision, gpu, tp, n, prompt + mean_out / 2)
        duration = prefill_s(model, precision, gpu, tp, n * prompt) + omax * step
        out["output_tok_s"] = row["generated_tokens"] / duration
        out["tpot_ms"] = step * 1000
    elif row["mode"] == "sweep":
        c, prompt, output = row["concurrency"], row["prompt_tokens"], row["output_tokens"]
        if c == 1:  # one client: prefill and decode run back to back
            step = decode_step_s(model, precision, gpu, tp, 1, prompt + output / 2)
            latency = ttft_s(model, precision, gpu, tp, prompt, 0.0) + (output - 1) * step
            out["output_tok_s"] = output / latency
        else:
            out["output_tok_s"] = c * output / cycle_s(model, precision, gpu, tp, c, prompt, output)
    else:  # poisson: Little's law fixed point for the running batch at the offered rate
        qps, prompt, output = row["qps"], row["prompt_tokens"], row["output_tokens"]
        busy = qps * prefill_compute_s(model, precision, gpu, tp, prompt)
        running = 1.0
        for _ in range(50):
            step = decode_step_s(model, precision, gpu, tp, running, prompt + output / 2) / (1 - busy)
            first = ttft_s(model, precision, gpu, tp, prompt, step / 2)
            running = max(1.0, qps * (first + output * step))
        out["tpot_ms"] = step * 1000
        out["ttft_ms"] = first * 1000
    return out


def calibration_errors() -> list[dict[str, Any]]:
    """Every metric of every calibration row: measured, predicted and relative error."""
    rows = []
    for row in catalog.calibration():
        predicted = replay(row)
        for metric, value in predicted.items():
            if metric in row:
                rows.append({"id": row["id"], "metric": metric, "measured": row[metric], "predicted": value,
                             "error": (value - row[metric]) / row[metric], "source": row["source"],
                             "excluded": row.get("excluded", "")})
    return rows


@cache
def calibration_band() -> float:
    """The ± band on every estimate: the worst error over the rows used, rounded up to 5%."""
    worst = max(abs(r["error"]) for r in calibration_errors() if not r["excluded"])
    return math.ceil(worst * 20) / 20

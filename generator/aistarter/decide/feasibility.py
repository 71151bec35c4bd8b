"""Feasibility: when a plan cannot meet the budget or the context, or runs past a sane node count, say what fails,
by how much, and the fixes ranked (fixes that work first, cheapest first; relaxing a requirement last).

The plan is still produced; `recommend --strict` and `new --strict` turn any warning into exit code 2.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .. import catalog
from ..blueprint import FeasibilityWarning, GpuPlan
from ..questions import Answers
from . import scaling, sizing
from .latency import TimeoutPlan


@dataclass(frozen=True)
class Fix:
    works: bool
    relaxes_requirement: bool
    monthly_delta: float  # USD against the current plan; 0 when unknown or free
    text: str


def _rank(fixes: list[Fix]) -> list[str]:
    ordered = sorted(fixes, key=lambda f: (not f.works, f.relaxes_requirement, f.monthly_delta))
    return [f.text + ("" if f.works else " (not enough on its own)") for f in ordered]


def _money(delta: float) -> str:
    return f"{'+' if delta >= 0 else '-'}${abs(delta):,.0f}/month at peak"


def latency_fixes(answers: Answers, chosen: scaling.Option, budget_s: float) -> list[Fix]:
    model, precision = scaling.model_of(answers)
    prompt, _ = scaling.tokens(answers)
    base = chosen.peak_monthly
    fixes: list[Fix] = []
    if answers.cloud != "existing":
        faster = [o for o in scaling.options(answers, model, precision) if o.fits]
        meeting = [o for o in faster if o.cap.ttft_idle_s <= budget_s]
        best = min(meeting, key=lambda o: o.peak_monthly) if meeting else min(faster, key=lambda o: o.cap.ttft_idle_s)
        if best.instance != chosen.instance:
            fixes.append(Fix(bool(meeting), False, best.peak_monthly - base,
                             f"a faster GPU: {best.instance.instance_type} ({best.instance.gpus_per_node}x "
                             f"{best.gpu.name}, tp={best.fit.tp}) reaches the first token in "
                             f"~{best.cap.ttft_idle_s * 1000:.0f} ms, "
                             f"{_money(best.peak_monthly - base)}"))
        for other in ("fp8",):
            if other != precision and other in model.weights:
                alt = scaling.options(answers.model_copy(update={"precision": other}), model, other)
                ok = [o for o in alt if o.fits]
                if ok:
                    o = min(ok, key=lambda o: (o.cap.ttft_idle_s > budget_s, o.peak_monthly))
                    fixes.append(Fix(o.cap.ttft_idle_s <= budget_s, False, o.peak_monthly - base,
                                     f"FP8 weights ({model.weights['fp8'].repo}) on {o.instance.instance_type}: "
                                     f"~{o.cap.ttft_idle_s * 1000:.0f} ms, {_money(o.peak_monthly - base)}"))
    smaller = [m for m in catalog.models().values()
               if m.params_b < model.params_b and m.active_params_b < model.active_params_b]
    if smaller:
        pick = min(smaller, key=lambda m: abs(m.active_params_b - model.active_params_b / 4))
        p = pick.default_precision
        alt_answers = answers.model_copy(update={"model": pick.name, "precision": "auto"})
        alt = scaling.size_option(alt_answers, chosen.instance, pick, p)
        fixes.append(Fix(alt.cap.ttft_idle_s <= budget_s, False, alt.peak_monthly - base,
                         f"a smaller model: {pick.name} ({pick.active_params_b:g}B active, {p}) on the same node: "
                         f"~{alt.cap.ttft_idle_s * 1000:.0f} ms, {_money(alt.peak_monthly - base)}"))
    per_token = sizing.prefill_compute_s(model, precision, chosen.gpu, chosen.fit.tp, 1)
    room = budget_s - sizing.API_OVERHEAD_S - sizing.prefill_s(model, precision, chosen.gpu, chosen.fit.tp, 0)
    max_prompt = int(room / per_token) if room > 0 else 0
    fixes.append(Fix(max_prompt >= 64, True, 0.0,
                     f"shorter prompts: at most ~{max_prompt} prompt tokens fit the budget on this GPU "
                     f"(planned p50 {prompt})"))
    hosted = min((h for h in catalog.hosted_models()), key=lambda h: h.ttft_p95_ms)
    hosted_monthly = scaling.request_usd(hosted, prompt, scaling.tokens(answers)[1]) * scaling.avg_rps(answers) \
        * scaling.SECONDS_PER_MONTH
    fixes.append(Fix(hosted.ttft_p95_ms / 1000 <= budget_s, False, hosted_monthly - base,
                     f"a hosted provider: {hosted.provider} {hosted.model} has a first-token p95 of ~"
                     f"{hosted.ttft_p95_ms} ms (planning figure) and would cost ~${hosted_monthly:,.0f}/month in "
                     f"tokens at the average rate, {_money(hosted_monthly - base).replace(' at peak', '')} "
                     f"against this plan's peak-sized GPUs"))
    need_ms = math.ceil(chosen.cap.ttft_idle_s * (1 + sizing.calibration_band()) * 1000 / 50) * 50
    fixes.append(Fix(True, True, 0.0, f"a longer budget: latency_budget_ms={need_ms} covers the prefill with the "
                                      f"±{sizing.calibration_band():.0%} band"))
    return fixes


def check(answers: Answers, option: scaling.Option | None, gpu: GpuPlan | None,
          timeouts: TimeoutPlan) -> list[FeasibilityWarning]:
    warnings: list[FeasibilityWarning] = []
    budget_s = answers.latency_budget_ms / 1000
    band = sizing.calibration_band()
    if option is not None:
        model, precision = scaling.model_of(answers)
        prompt, output = scaling.tokens(answers)
        ttft = option.cap.ttft_idle_s
        if ttft > budget_s:
            prefill = sizing.prefill_s(model, precision, option.gpu, option.fit.tp, prompt)
            warnings.append(FeasibilityWarning(
                check="latency",
                message=f"the first token needs ~{ttft * 1000:.0f} ms ±{band:.0%} on an idle replica (prefill of "
                f"{prompt} tokens on {option.fit.tp}x {option.gpu.name} alone is ~{prefill * 1000:.0f} ms), "
                f"{ttft / budget_s:.2f}x the {answers.latency_budget_ms} ms budget",
                fixes=_rank(latency_fixes(answers, option, budget_s)),
            ))
        wanted = scaling.wanted_context(answers)
        if wanted > model.native_context or prompt + output > model.native_context:
            longer = sorted((m for m in catalog.models().values() if m.native_context >= max(wanted, prompt + output)),
                            key=lambda m: (m.size_class != model.size_class, m.active_params_b))
            fixes = [f"a model with a longer native context: {m.name} ({m.native_context:,} tokens, {m.license})"
                     for m in longer[:2]]
            fixes.append(f"chunk or summarise inputs so prompt + answer stay under {model.native_context:,} tokens")
            fixes.append("extend the context with the model's documented RoPE scaling (YaRN) and its quality cost; "
                         "aistarter does not set it for you")
            warnings.append(FeasibilityWarning(
                check="context",
                message=f"{model.name} stops at {model.native_context:,} tokens but the plan asks for "
                f"{max(wanted, prompt + output):,} ({max(wanted, prompt + output) / model.native_context:.1f}x); "
                f"--max-model-len is capped at {model.native_context:,}, so longer requests are rejected",
                fixes=fixes,
            ))
        if not option.fits:
            fit = option.fit
            short = (fit.needed_tokens - fit.kv_tokens) * model.kv_bytes_per_token / 1e9
            fits_elsewhere = [o for o in scaling.options(answers, model, precision) if o.fits]
            fixes = []
            if fits_elsewhere:
                o = min(fits_elsewhere, key=lambda o: o.peak_monthly)
                fixes.append(f"a bigger node: {o.instance.instance_type} ({o.instance.gpus_per_node}x {o.gpu.name}) "
                             f"fits at tp={o.fit.tp}")
            lighter = [p for p in model.weights if model.weights[p].gb < fit.weights_gb]
            if lighter:
                fixes.append(f"lighter weights: precision={lighter[0]} ({model.weights[lighter[0]].gb} GB)")
            fixes.append(f"a shorter max_context_tokens (now {scaling.max_model_len(answers, model):,})")
            fixes.append("a smaller model")
            warnings.append(FeasibilityWarning(
                check="memory",
                message=f"{model.name} {precision} ({fit.weights_gb} GB) plus KV for {fit.needed_tokens:,} tokens "
                f"does not fit {fit.tp}x {option.gpu.name} at {sizing.GPU_MEMORY_UTILIZATION:.0%}: short by "
                f"{short:.1f} GB",
                fixes=fixes,
            ))
        if gpu is not None and gpu.max_nodes > scaling.NODE_CAP:
            eight = [o for o in scaling.options(answers, model, precision)
                     if o.fits and o.instance.gpus_per_node == 8] if answers.cloud != "existing" else []
            fixes = []
            if eight:
                o = min(eight, key=lambda o: o.peak_nodes)
                fixes.append(f"bigger nodes: {o.peak_nodes} x {o.instance.instance_type}")
            fixes += [
                "FP8 or int4 weights: more sequences per GPU",
                f"a hosted provider for the bulk of the {answers.peak_rps:g} rps",
                "a per-key rate limit that caps peak_rps",
            ]
            warnings.append(FeasibilityWarning(
                check="node-cap",
                message=f"peak {answers.peak_rps:g} rps needs {gpu.max_nodes} GPU nodes, "
                f"{gpu.max_nodes / scaling.NODE_CAP:.1f}x the sane cap of {scaling.NODE_CAP}",
                fixes=fixes,
            ))
    if not timeouts.fits:
        fastest = min(catalog.hosted_models(), key=lambda h: h.ttft_p95_ms)
        fixes = []
        if len(answers.providers) > 1:
            fixes.append(f"fewer providers in the fallback chain: each needs ~{timeouts.ttft_p95_s:g} s")
        enough = len(answers.providers) * fastest.ttft_p95_ms / 1000 <= budget_s
        if fastest.ttft_p95_ms / 1000 < timeouts.ttft_p95_s:  # only a provider that is faster than today's
            fixes.append(f"a faster first provider: {fastest.provider} {fastest.model} "
                         f"(~{fastest.ttft_p95_ms} ms p95)" + ("" if enough else " (not enough on its own)"))
        need_ms = math.ceil(timeouts.ttft_p95_s * len(answers.providers) * 1000)
        fixes.append(f"a longer budget: latency_budget_ms={need_ms}")
        warnings.append(FeasibilityWarning(
            check="timeouts",
            message=f"{len(answers.providers)} provider(s) x first-token p95 {timeouts.ttft_p95_s:g} s = "
            f"{len(answers.providers) * timeouts.ttft_p95_s:g} s exceeds the {budget_s:g} s budget "
            f"({len(answers.providers) * timeouts.ttft_p95_s / budget_s:.1f}x): attempts are cut at "
            f"{timeouts.timeout_s:g} s and will often time out",
            fixes=fixes,
        ))
    return warnings

"""Render results.json as bench/RESULTS.md, and its summary into the top-level README between markers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aistarter import catalog

from .common import REPO_ROOT, RESULTS_MD

README = REPO_ROOT / "README.md"
# The README's benchmark tables live between these lines; everything between them is rewritten.
SUMMARY_START = "<!-- bench:summary:start (written by python -m bench) -->"
SUMMARY_END = "<!-- bench:summary:end -->"


def _f(value: Any, digits: int = 2, unit: str = "") -> str:
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.{digits}f}{unit}"
    return f"{value}{unit}"


def _cell(text: Any) -> str:
    """Free text (error messages) made safe for one Markdown table cell."""
    return " ".join(str(text).split()).replace("|", "/")


def _goal(met: bool | None) -> str:
    return "n/a" if met is None else ("met" if met else "**missed**")


def _machine(results: dict[str, Any]) -> list[str]:
    m = results.get("machine", {})
    line = (f"Machine: {m.get('cores')} cores ({m.get('cpu') or 'unknown CPU'}), {m.get('memory_gb')} GB RAM, "
            f"{m.get('implementation', 'CPython')} {m.get('python')}, {m.get('os')}.")
    parts = [line]
    stamps = [f"{name} {results[name]['finished_at']} (load average {results[name].get('loadavg_1m_start_end')})"
              for name in ("generation", "gateway", "footprint")
              if isinstance(results.get(name), dict) and results[name].get("finished_at")]
    if stamps:
        parts.append("Runs: " + ", ".join(stamps) + (f"; whole run {results['total_duration_s']} s."
                                                     if results.get("total_duration_s") else "."))
    return parts


def _generation(gen: dict[str, Any]) -> list[str]:
    out = ["## Generation: `aistarter new` vs the raw engines", "",
           f"Median of {gen.get('runs')} subprocess runs each (after {gen.get('warmup')} warm-up), same template, "
           "same context. aistarter also validates answers, decides the stack, vendors the infra library and makes "
           "the first git commit; the raw engines only render.", "",
           "| answers | aistarter (copier) | `copier copy` | ratio | aistarter (cookiecutter) | `cookiecutter` | ratio "
           "| same files |",
           "|---|---|---|---|---|---|---|---|"]
    for combo, row in gen.get("combinations", {}).items():
        m = row.get("median_s", {})
        same = all(row.get(f"same_output_{e}") for e in ("copier", "cookiecutter"))
        out.append(f"| {combo} | {_f(m.get('aistarter_copier'), 3, ' s')} | {_f(m.get('copier'), 3, ' s')} | "
                   f"{_f(row.get('ratio_copier'), 2, 'x')} | {_f(m.get('aistarter_cookiecutter'), 3, ' s')} | "
                   f"{_f(m.get('cookiecutter'), 3, ' s')} | {_f(row.get('ratio_cookiecutter'), 2, 'x')} | "
                   f"{_f(same)} |")
        for name, err in row.get("errors", {}).items():
            out.append(f"| {combo} | {name} failed: {_cell(err)} | | | | | | |")
    b = gen.get("breakdown", {})
    if b:
        out += ["", "Where the difference goes (medians): Python startup "
                f"{_f(b.get('python_startup_s'), 3, ' s')}; `import aistarter.cli` "
                f"{_f(b.get('import_aistarter_cli_s'), 3, ' s')}"
                f" vs `import copier` {_f(b.get('import_copier_s'), 3, ' s')} and `import cookiecutter.main` "
                f"{_f(b.get('import_cookiecutter_main_s'), 3, ' s')}; first git commit "
                f"{_f(b.get('first_git_commit_s'), 3, ' s')} (aistarter with git hidden from PATH: "
                f"{_f(b.get('aistarter_cookiecutter_default_without_git_s'), 3, ' s')} with cookiecutter)."]
    goals = gen.get("goals", {})
    if goals:
        out += ["", "Goals: " + "; ".join(f"{g.get('text', name)}: {_goal(g.get('met'))} ({g.get('detail', '')})"
                                          for name, g in goals.items()) + "."]
    return out


LEVEL_KEYS = ("ttft_p50_ms", "ttft_p99_ms", "added_ttft_p50_ms", "added_ttft_p99_ms", "added_gap_p50_ms",
              "added_gap_p99_ms")


def _gateway(gw: dict[str, Any]) -> list[str]:
    stub = gw.get("stub", {})
    out = ["## Gateway streaming overhead", "",
           f"Loopback stub upstream: OpenAI SSE, {stub.get('tokens')} tokens, "
           f"first after {stub.get('first_token_ms')} ms, "
           f"then every {stub.get('pace_ms')} ms. Load client: aiohttp in its own process; each level opens all its "
           "streams at once. *Added* = contender minus the direct stub at the same level and percentile. "
           f"LiteLLM proxy {gw.get('litellm_version', 'n/a')} runs in its own virtualenv.", ""]
    contenders = gw.get("contenders", {})
    out += ["| contender | added TTFT p50 c=1 | added TTFT p99 c=16 | added chunk gap p50 / p99 c=16 "
            "| CPU per stream c=16 | max streams, zero loss | RSS per idle stream |",
            "|---|---|---|---|---|---|---|"]
    for name, c in contenders.items():
        if c.get("status") != "ok":
            out.append(f"| {c.get('label', name)} | {_cell(c.get('status'))} | | | | | |")
            continue
        lv = c.get("levels", {})
        one, sixteen = lv.get("1", {}), lv.get("16", {})
        rss = c.get("rss", {}).get("per_stream_kb")
        out.append(f"| {c.get('label', name)} | {_f(one.get('added_ttft_p50_ms'), 2, ' ms')} | "
                   f"{_f(sixteen.get('added_ttft_p99_ms'), 2, ' ms')} | {_f(sixteen.get('added_gap_p50_ms'), 2)} / "
                   f"{_f(sixteen.get('added_gap_p99_ms'), 2, ' ms')} | "
                   f"{_f(sixteen.get('cpu_ms_per_stream'), 2, ' ms')} | {_f(c.get('max_zero_loss'))} | "
                   f"{_f(rss, 1, ' KB')} |")
    out += ["", "Per level (ms; CPU = the contender's own CPU time per stream, idle ticking subtracted; new upstream "
            "conns = TCP connections the stub accepted per stream, 1.00 = no connection reuse):", "",
            "| contender | c | TTFT p50 | TTFT p99 | added TTFT p50 | added TTFT p99 | added gap p50 | added gap p99 "
            "| CPU per stream | new upstream conns per stream | complete | lost chunks |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, c in contenders.items():
        for level, s in c.get("levels", {}).items():
            out.append(f"| {c.get('label', name)} | {level} | " + " | ".join(_f(s.get(k), 2) for k in LEVEL_KEYS)
                       + f" | {_f(s.get('cpu_ms_per_stream'), 2)} | {_f(s.get('upstream_connections_per_stream'), 2)}"
                       f" | {s.get('complete')}/{s.get('streams')} "
                       f"| {s.get('lost_chunks')} |")
    for name, c in contenders.items():
        for level, s in c.get("levels", {}).items():
            for err in s.get("errors", []):
                out.append(f"\n{c.get('label', name)} at c={level}, lost streams failed with: `{_cell(err)[:200]}`")
    notes = [c.get("note") for c in contenders.values() if c.get("note")]
    if notes:
        out += [""] + [f"- {n}" for n in notes]
    metered = contenders.get("metered", {})
    if metered.get("status") == "ok":
        cpu16 = metered.get("levels", {}).get("16", {}).get("cpu_ms_per_stream")
        burst = metered.get("streams_per_core")
        top = " (every level measured)" if burst == max(gw.get("levels") or [0]) else ""
        out += ["", "Capacity of one worker (metered; what the engine sizes the API with, "
                "generator/aistarter/catalog.py): streams per core at saturation, the most arriving at once with zero "
                f"loss and p99 TTFT <= {gw.get('burst_ttft_budget_ms', 1000):g} ms: **{_f(burst)}**{top} (catalog "
                f"GATEWAY_BURST_STREAMS = {catalog.GATEWAY_BURST_STREAMS}); CPU per stream at c=16: "
                f"**{_f(cpu16, 2, ' ms')}** (catalog GATEWAY_CPU_MS_PER_STREAM = "
                f"{catalog.GATEWAY_CPU_MS_PER_STREAM:g} ms, so {catalog.API_REPLICA_RPS} rps per replica at "
                f"{catalog.API_TARGET_CPU}% of {catalog.API_CPU_CORES} core)."]
    goals = gw.get("goals", {})
    if goals:
        configs = list(dict.fromkeys(name.split(".", 1)[0] for name in goals))
        keys = list(dict.fromkeys(name.split(".", 1)[1] for name in goals))
        out += ["", "Goals for the generated backend (2 cores):", "",
                "| goal | " + " | ".join(configs) + " |", "|---|" + "---|" * len(configs)]
        for key in keys:
            cells = []
            for config in configs:
                g = goals.get(f"{config}.{key}", {})
                cells.append(f"{_goal(g.get('met'))} ({g.get('detail', '').removeprefix('measured ')})" if g else "")
            text = next(g["text"] for n, g in goals.items() if n.endswith("." + key)).split(": ", 1)[1]
            out.append(f"| {text} | " + " | ".join(cells) + " |")
    return out


def _tls_rtt(tls: dict[str, Any]) -> list[str]:
    out = ["### Scenario tls-rtt: HTTPS upstream behind a round trip", "",
           f"The stub serves HTTPS (a certificate the benchmark makes) behind bench/tlsproxy.py, which adds a "
           f"{tls.get('rtt_ms')} ms round trip like a remote provider; a new connection also waits one round trip "
           "for its TCP handshake. The direct baseline is a pooled client whose TLS connections are already warm. "
           "Connections and TLS handshakes are counted at the proxy during the timed rounds only.", "",
           "| contender | c | TTFT p50 | TTFT p99 | added TTFT p50 | added TTFT p99 | new upstream conns per stream "
           "| TLS handshakes per stream | complete |",
           "|---|---|---|---|---|---|---|---|---|"]
    for name, c in tls.get("contenders", {}).items():
        if c.get("status") != "ok":
            out.append(f"| {c.get('label', name)} | {_cell(c.get('status'))} | | | | | | | |")
            continue
        for level, s in c.get("levels", {}).items():
            out.append(f"| {c.get('label', name)} | {level} | {_f(s.get('ttft_p50_ms'), 2)} | "
                       f"{_f(s.get('ttft_p99_ms'), 2)} | {_f(s.get('added_ttft_p50_ms'), 2)} | "
                       f"{_f(s.get('added_ttft_p99_ms'), 2)} | {_f(s.get('upstream_connections_per_stream'), 2)} | "
                       f"{_f(s.get('tls_handshakes_per_stream'), 2)} | {s.get('complete')}/{s.get('streams')} |")
    goals = tls.get("goals", {})
    if goals:
        out += ["", "Goals: " + "; ".join(f"{g.get('text', name)}: {_goal(g.get('met'))} ({g.get('detail', '')})"
                                          for name, g in goals.items()) + "."]
    return out


def _upstream(up: dict[str, Any]) -> list[str]:
    stub = up.get("stub", {})
    out = ["## Upstream clients: the gateway's HTTP client and pool", "",
           f"Each candidate alone in its own process (uvloop), streaming {stub.get('tokens')} tokens from the same "
           f"HTTPS stub ({stub.get('server')}); CPU = the client process's CPU time per stream over the timed rounds, "
           f"median of {up.get('repeats')} interleaved runs (each run's figure in brackets); new connections = "
           "what the stub accepted per stream during the timed rounds, after warm-up.", "",
           "| candidate | c | CPU per stream | TTFT p50 | TTFT p99 | new connections per stream | complete |",
           "|---|---|---|---|---|---|---|"]
    for c in up.get("candidates", {}).values():
        for level, s in c.get("levels", {}).items():
            runs = ", ".join(_f(v, 2) for v in s.get("cpu_ms_per_stream_runs", []))
            out.append(f"| {c.get('label')} | {level} | {_f(s.get('cpu_ms_per_stream'), 2, ' ms')} ({runs}) | "
                       f"{_f(s.get('ttft_p50_ms'), 2, ' ms')} | {_f(s.get('ttft_p99_ms'), 2, ' ms')} | "
                       f"{_f(s.get('new_connections_per_stream'), 2)} | {s.get('complete')}/{s.get('streams')} |")
    return out


def _footprint(fp: dict[str, Any]) -> list[str]:
    out = ["## Footprint", "",
           "| | installed distributions | `import` time | idle RSS per worker | install time (cold) |",
           "|---|---|---|---|---|"]
    for name, row in fp.get("targets", {}).items():
        if row.get("status") != "ok":
            out.append(f"| {row.get('label', name)} | {_cell(row.get('status'))} | | | |")
            continue
        out.append(f"| {row.get('label', name)} | {_f(row.get('distributions'))} | {_f(row.get('import_s'), 3, ' s')} "
                   f"(`{row.get('import_module')}`) | {_f(row.get('idle_rss_mb'), 1, ' MB')} | "
                   f"{_f(row.get('install_s'), 1, ' s')} |")
    return out


def render(results: dict[str, Any]) -> str:
    lines = ["# aistarter benchmarks", "", "Written by `python -m bench all` (see bench/README.md). Benchmarks, not "
             "tests: ratios and differences measured side by side in one run.", ""]
    lines += _machine(results)
    for key, fn in (("generation", _generation), ("gateway", _gateway), ("upstream", _upstream),
                    ("footprint", _footprint)):
        if isinstance(results.get(key), dict):
            lines += [""] + fn(results[key])
            if key == "gateway" and isinstance(results[key].get("tls_rtt"), dict):
                lines += [""] + _tls_rtt(results[key]["tls_rtt"])
    return "\n".join(lines) + "\n"


def summary(results: dict[str, Any]) -> str:
    """The README's share: machine, generation ratios, the gateway per contender in both scenarios, footprint."""
    out = [" ".join(_machine(results)) + " Full tables, per level, and the goals: `bench/RESULTS.md`; causes: "
           "`bench/README.md`.", ""]
    gen = results.get("generation") or {}
    if gen.get("combinations"):
        out += [f"| generation (median of {gen.get('runs')}) | aistarter | raw engine | ratio |", "|---|---|---|---|"]
        for combo, row in gen["combinations"].items():
            m = row.get("median_s", {})
            for engine in ("copier", "cookiecutter"):
                out.append(f"| {combo} answers, {engine} | {_f(m.get(f'aistarter_{engine}'), 3, ' s')} | "
                           f"{_f(m.get(engine), 3, ' s')} | {_f(row.get(f'ratio_{engine}'), 2, 'x')} |")
        out.append("")
    gw = results.get("gateway") or {}
    tls = (gw.get("tls_rtt") or {}).get("contenders", {})
    if gw.get("contenders"):
        out += ["| gateway (stub upstream, 20 tokens) | added TTFT p50 c=1 | added TTFT p99 c=16 | CPU per stream c=16 "
                "| streams per core at saturation | RSS per idle stream | tls-rtt: added TTFT p50 c=1 "
                "| tls-rtt: new upstream conns per stream c=1 / c=16 |", "|---|---|---|---|---|---|---|---|"]
        for name, c in gw["contenders"].items():
            if name == "direct" or c.get("status") != "ok":
                continue
            lv, t = c.get("levels", {}), tls.get(name, {}).get("levels", {})
            out.append(f"| {c.get('label', name)} | {_f(lv.get('1', {}).get('added_ttft_p50_ms'), 2, ' ms')} | "
                       f"{_f(lv.get('16', {}).get('added_ttft_p99_ms'), 2, ' ms')} | "
                       f"{_f(lv.get('16', {}).get('cpu_ms_per_stream'), 2, ' ms')} | {_f(c.get('streams_per_core'))} | "
                       f"{_f(c.get('rss', {}).get('per_stream_kb'), 1, ' KB')} | "
                       f"{_f(t.get('1', {}).get('added_ttft_p50_ms'), 2, ' ms')} | "
                       f"{_f(t.get('1', {}).get('upstream_connections_per_stream'), 2)} / "
                       f"{_f(t.get('16', {}).get('upstream_connections_per_stream'), 2)} |")
        out.append("")
    fp = (results.get("footprint") or {}).get("targets", {})
    if fp:
        out.append("Footprint: " + "; ".join(
            f"{row.get('label', name)}: {_f(row.get('distributions'))} distributions, `import` "
            f"{_f(row.get('import_s'), 2, ' s')}, {_f(row.get('idle_rss_mb'), 0, ' MB')} idle RSS per worker"
            for name, row in fp.items() if row.get("status") == "ok") + ".")
    return "\n".join(out).rstrip() + "\n"


def write_summary(results: dict[str, Any], readme: Path = README) -> bool:
    """Replace the README's summary block; False (and the README untouched) when it has no markers."""
    text = readme.read_text(encoding="utf-8")
    start, end = text.find(SUMMARY_START), text.find(SUMMARY_END)
    if start < 0 or end < start:
        return False
    head = text[:start + len(SUMMARY_START)]
    readme.write_text(f"{head}\n{summary(results)}{text[end:]}", encoding="utf-8")
    return True


def write_markdown(results: dict[str, Any]) -> None:
    RESULTS_MD.write_text(render(results), encoding="utf-8")
    write_summary(results)

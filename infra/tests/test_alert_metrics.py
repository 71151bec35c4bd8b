"""Every app metric the infra library queries (alert rules, dashboard, autoscaler triggers) is one the generated
app exports, read from the template's source so a rename on either side fails here instead of silencing an
alert. The metric names are the exposition names: prometheus_client adds `_total` to counters and
`_bucket`/`_sum`/`_count` to histograms."""

from __future__ import annotations

import re
from pathlib import Path

INFRA = Path(__file__).resolve().parents[1]
APP = INFRA.parent / "templates" / "{{cookiecutter.project_slug}}" / "app"
# A metric object constructed with its name as the first argument, as prometheus_client takes it.
DEFINED = re.compile(r"\b(Counter|Gauge|Histogram|Summary|(?:Counter|Gauge|Histogram|Summary)MetricFamily)"
                     r"\(\s*\"(aistarter_[a-z0-9_]+)\"")
QUERIED = re.compile(r"\baistarter_[a-z0-9_]+")
SUFFIXES = {"Counter": ("_total",), "Histogram": ("_bucket", "_sum", "_count"), "Summary": ("_sum", "_count"),
            "Gauge": ("",)}


def exported() -> set[str]:
    names: set[str] = set()
    # Optional modules' file names are Jinja conditions ending in `{% endif %}`, not in `.py`.
    for source in (p for p in APP.rglob("*") if p.is_file() and ".py" in p.name):
        for kind, name in DEFINED.findall(source.read_text(encoding="utf-8")):
            kind = kind.removesuffix("MetricFamily")
            base = name.removesuffix("_total") if kind == "Counter" else name
            names |= {base + suffix for suffix in SUFFIXES[kind]}
    return names


def queried() -> dict[str, set[str]]:
    """Metric name -> the library files that query it (the package's own name is not a metric)."""
    found: dict[str, set[str]] = {}
    for source in (INFRA / "aistarter_infra").rglob("*.py"):
        for name in set(QUERIED.findall(source.read_text(encoding="utf-8"))) - {"aistarter_infra"}:
            found.setdefault(name, set()).add(source.relative_to(INFRA).as_posix())
    return found


def test_the_app_exports_every_metric_the_infra_library_queries() -> None:
    app = exported()
    assert {"aistarter_metering_outbox_pending", "aistarter_meter_events_dead_lettered_total",
            "aistarter_circuit_open"} <= app, "the source scan no longer finds the app's metrics"
    used = queried()
    assert "aistarter_meter_events_dead_lettered_total" in used
    missing = {name: sorted(files) for name, files in used.items() if name not in app}
    assert not missing, f"queried by the infra library but not exported by the generated app: {missing}"


def test_every_alert_rule_queries_an_exported_metric() -> None:
    from aistarter_infra.platform.addons import alert_rules
    from aistarter_infra.platform.spec import config_from_stack, parse_platform_config
    from test_platform_render import blueprint_stack

    cfg = parse_platform_config(config_from_stack(blueprint_stack("aws", "small"), cluster_name="demo"))
    rules = {r["alert"]: r["expr"] for group in alert_rules(cfg) for r in group["rules"]}
    app = exported()
    for alert, expr in rules.items():
        for name in QUERIED.findall(expr):
            assert name in app, f"alert {alert} queries {name}, which the generated app does not export"
    assert "aistarter_meter_events_dead_lettered_total" in rules["MeterEventsDeadLettered"]
    assert "aistarter_metering_outbox_pending" in rules["MeteringOutboxBacklog"]

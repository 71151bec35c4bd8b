"""Queue depth and job counts for /metrics, read when Prometheus scrapes (the worker autoscaler's signal)."""

import logging
from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from app.jobs import queue, store
from app.jobs.config import get_job_settings
from app.metrics import REGISTRY

log = logging.getLogger("app.jobs")


def _families() -> tuple[GaugeMetricFamily, GaugeMetricFamily]:
    depth = GaugeMetricFamily(
        "aistarter_job_queue_depth", "Jobs waiting in the {{ cookiecutter.task_queue }} queue.", labels=["queue"]
    )
    jobs = GaugeMetricFamily(
        "aistarter_jobs", "Jobs by status (dead_letter: gave up after retries).", labels=["status"]
    )
    return depth, jobs


class JobCollector(Collector):
    def describe(self) -> Iterator[GaugeMetricFamily]:
        # Without describe(), registering would call collect() and so query Redis and the database at import.
        yield from _families()

    def collect(self) -> Iterator[GaugeMetricFamily]:
        depth, jobs = _families()
        try:
            depth.add_metric([get_job_settings().job_queue_name], queue.depth())
        except Exception as exc:  # noqa: BLE001 - a broker outage must not break the whole scrape
            log.warning("queue depth unavailable: %s", exc)
        yield depth
        try:
            counts = store.count_by_status()
            for status in ("queued", "running", "retrying", "succeeded", "failed", "dead_letter"):
                jobs.add_metric([status], counts.get(status, 0))
        except Exception as exc:  # noqa: BLE001
            log.warning("job counts unavailable: %s", exc)
        yield jobs


_collector = JobCollector()
REGISTRY.register(_collector)

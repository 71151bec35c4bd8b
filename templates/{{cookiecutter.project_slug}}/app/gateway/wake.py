"""Pending-request accounting for self-hosted models: the signal that wakes a model server from zero.

The gauge counts requests waiting for, or in flight to, each local model. A request that gave up while the
server was cold keeps the gauge at >= 1 for LOCAL_WAKE_HOLD_S, so an autoscaler polling every 30 s still
sees the demand after the client has been told to retry.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from app.metrics import MODEL_PENDING


class PendingTracker:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._inflight: dict[str, int] = {}
        self._hold_until: dict[str, float] = {}

    def _register(self, model: str) -> None:
        if model not in self._inflight:
            self._inflight[model] = 0
            MODEL_PENDING.labels(model).set_function(lambda: self.pending(model))

    def pending(self, model: str) -> int:
        count = self._inflight.get(model, 0)
        if count == 0 and self._hold_until.get(model, 0.0) > time.monotonic():
            return 1
        return count

    @contextmanager
    def track(self, model: str) -> Iterator[None]:
        with self._lock:
            self._register(model)
            self._inflight[model] += 1
        try:
            yield
        finally:
            with self._lock:
                self._inflight[model] -= 1

    def refused(self, model: str, hold_s: float) -> None:
        with self._lock:
            self._register(model)
            self._hold_until[model] = time.monotonic() + hold_s

    def served(self, model: str) -> None:
        """The server answered: it is awake, so the hold from an earlier refusal is no longer needed."""
        with self._lock:
            self._hold_until.pop(model, None)

    def snapshot(self) -> list[dict[str, object]]:
        with self._lock:
            models = sorted(self._inflight)
        return [{"model": m, "pending": self.pending(m)} for m in models]


PENDING = PendingTracker()

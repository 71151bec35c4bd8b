"""A per-provider circuit breaker: after N consecutive failures, skip the provider for a cool-down,
then let a single trial request through (half-open) before closing again.

Every trial must end in `success()`, `failure()` or `release()` (the trial said nothing about the
provider's health: a 4xx caused by the request, a cancelled client). A trial that never reports back
(a bug, a hung task) is given up after another cool-down, so the breaker can never wedge open."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from app.metrics import BREAKER_OPEN


@dataclass
class CircuitBreaker:
    provider: str
    failures_to_open: int = 5
    reset_after_s: float = 30.0
    _failures: int = 0
    _opened_at: float | None = None
    _trial_in_flight: bool = False
    _trial_started: float = 0.0
    _clock: object = field(default=time.monotonic, repr=False)

    @property
    def state(self) -> str:
        if self._opened_at is None:
            return "closed"
        if self._now() - self._opened_at >= self.reset_after_s:
            return "half-open"
        return "open"

    def _now(self) -> float:
        return self._clock()  # type: ignore[operator]

    def allow(self) -> bool:
        state = self.state
        if state == "closed":
            return True
        if state == "half-open" and (not self._trial_in_flight
                                     or self._now() - self._trial_started >= self.reset_after_s):
            self._trial_in_flight, self._trial_started = True, self._now()
            return True
        return False

    def release(self) -> None:
        """The request ended without a verdict on the provider: let the next request be the trial."""
        self._trial_in_flight = False

    def success(self) -> None:
        self._failures, self._opened_at, self._trial_in_flight = 0, None, False
        BREAKER_OPEN.labels(self.provider).set(0)

    def failure(self) -> None:
        self._trial_in_flight = False
        self._failures += 1
        if self._opened_at is not None or self._failures >= self.failures_to_open:
            self._opened_at = self._now()
            BREAKER_OPEN.labels(self.provider).set(1)

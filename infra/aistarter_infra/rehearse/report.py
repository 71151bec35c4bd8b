"""The rehearsal's outcome: one row per step, ok / failed / not rehearsed, as a table or JSON."""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field

OK = "ok"
FAILED = "failed"
NOT_REHEARSED = "not rehearsed"


@dataclass
class Step:
    name: str
    status: str
    detail: str = ""
    seconds: float = 0.0


@dataclass
class Report:
    project: str
    stack: str
    notes: list[str] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)
    seconds: float = 0.0

    def add(self, name: str, status: str, detail: str = "", since: float | None = None) -> Step:
        step = Step(name, status, detail.strip(), round(time.monotonic() - since, 1) if since is not None else 0.0)
        self.steps.append(step)
        return step

    @property
    def ok(self) -> bool:
        return bool(self.steps) and all(s.status != FAILED for s in self.steps)

    def failed(self) -> list[Step]:
        return [s for s in self.steps if s.status == FAILED]

    def as_json(self) -> str:
        return json.dumps({"project": self.project, "stack": self.stack, "ok": self.ok, "seconds": self.seconds,
                           "notes": self.notes, "steps": [asdict(s) for s in self.steps]}, indent=2)

    def as_table(self) -> str:
        width = max([len(s.name) for s in self.steps] + [4])
        lines = [f"rehearsal of {self.project} / {self.stack}"]
        lines += [f"  note: {n}" for n in self.notes]
        lines.append(f"  {'step':<{width}}  {'result':<13}  {'s':>6}  detail")
        for s in self.steps:
            detail = s.detail.replace("\n", " | ")
            lines.append(f"  {s.name:<{width}}  {s.status:<13}  {s.seconds:>6.1f}  {detail}")
        verdict = "PASSED" if self.ok else f"FAILED ({len(self.failed())} step(s))"
        lines.append(f"rehearsal {verdict} in {self.seconds:.0f} s")
        return "\n".join(lines)

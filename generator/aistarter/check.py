"""`aistarter check`: everything CI should prove about a generated repository, as one summary.

Steps: the app's tests, lint, the infra (render under mocks -> Kubernetes schemas -> checkov -> GPU
consistency -> policy pack, all inside the project's own infra/tests), and drift between the recorded
answers and the files present.

The steps run in the project's own environment, `.aistarter/venv` (made with uv when it is on PATH, else
venv + pip, and reused while the requirement files are unchanged), so `check` works on any machine with
nothing installed but aistarter. Results come from machine output (pytest's JUnit XML, ruff's JSON), and a
step whose tests were skipped says "skipped" and why: a skip is never reported as ok.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import venv
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from . import __version__
from .answers import AnswerError, validate
from .render import TEMPLATE_BRANCH, list_files, render_project
from .update import UpdateError, git, read_record

STEPS = ("tests", "lint", "infra", "drift")
ENV_DIR = Path(".aistarter/venv")
Status = Literal["ok", "skipped", "failed"]
Progress = Callable[[str], None]


class CheckError(RuntimeError):
    """The project's environment could not be made; the message says what failed."""


@dataclass(frozen=True)
class StepResult:
    step: str
    status: Status
    detail: str

    @property
    def ok(self) -> bool:
        """Nothing failed (a skipped step is not a failure, but it is never shown as ok)."""
        return self.status != "failed"


def _run(cmd: list[str], cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env={**os.environ, **(env or {})})


# ---------------------------------------------------------------- the project's environment


def requirement_files(project: Path) -> list[Path]:
    """What the environment holds: the app with its dev extra, and the infra programs' requirements (the policy
    pack keeps its own virtualenv: pulumi-policy pins protobuf)."""
    files = [project / "pyproject.toml"]
    files += [project / "infra" / name / "requirements.txt" for name in ("app", "platform")]
    return [f for f in files if f.is_file()]


def _env_python(env_dir: Path) -> Path:
    return env_dir / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def project_environment(project: Path, progress: Progress = lambda _: None) -> Path:
    """The interpreter of `.aistarter/venv`, created or refreshed when the requirement files changed."""
    env_dir = project / ENV_DIR
    python = _env_python(env_dir)
    files = requirement_files(project)
    stamp = hashlib.sha256(b"".join(f.read_bytes() for f in files)).hexdigest()
    stamp_file = env_dir / "aistarter-requirements.sha256"
    if python.exists() and stamp_file.is_file() and stamp_file.read_text().strip() == stamp:
        return python
    uv = shutil.which("uv")
    install = ["-e", ".[dev]", *[a for f in files[1:] for a in ("-r", str(f.relative_to(project)))]]
    if not python.exists():
        progress(f"creating {ENV_DIR} ({'uv' if uv else 'venv'})")
        if uv:
            made = _run([uv, "venv", "--quiet", "--python", sys.executable, str(env_dir)], project)
            if made.returncode != 0:
                raise CheckError(f"uv venv {env_dir} failed: {_last_line(made)}")
        else:
            venv.EnvBuilder(with_pip=True).create(env_dir)
    progress(f"installing the app's and the infra's requirements into {ENV_DIR}")
    cmd = ([uv, "pip", "install", "--quiet", "--python", str(python), *install] if uv else
           [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *install])
    done = _run(cmd, project)
    if done.returncode != 0:
        raise CheckError(f"installing the project's requirements into {ENV_DIR} failed: {_last_line(done)}")
    stamp_file.write_text(stamp + "\n")
    return python


def _last_line(done: subprocess.CompletedProcess[str]) -> str:
    lines = (done.stderr or done.stdout).strip().splitlines()
    return lines[-1] if lines else f"exit {done.returncode}"


# ---------------------------------------------------------------- steps


def node_id(classname: str, name: str) -> str:
    """pytest's own id (`infra/tests/test_app_stack.py::test_x`) from JUnit's dotted classname, so a failure reads
    like the path to open and the argument to rerun it with."""
    parts = [p for p in classname.split(".") if p]
    cls = [parts.pop()] if parts and parts[-1].startswith("Test") else []
    path = "/".join(parts) + ".py" if parts else ""
    return "::".join(filter(None, [path, *cls, name]))


def read_junit(path: Path) -> tuple[Counter[str], list[str], list[str]]:
    """(counts by outcome, failed test ids, skip reasons) from pytest's JUnit XML."""
    counts: Counter[str] = Counter()
    failed: list[str] = []
    reasons: list[str] = []
    for case in ET.parse(path).getroot().iter("testcase"):
        test_id = node_id(case.get("classname", ""), case.get("name", ""))
        outcome = next((child for child in case if child.tag in {"failure", "error", "skipped"}), None)
        if outcome is None:
            counts["passed"] += 1
        elif outcome.tag == "skipped":
            counts["skipped"] += 1
            reasons.append((outcome.get("message") or "").removeprefix("Skipped: ").strip() or "no reason given")
        else:
            counts["failed"] += 1
            failed.append(test_id)
    return counts, failed, reasons


def _pytest_step(name: str, project: Path, target: str, python: str) -> StepResult:
    if not (project / target).is_dir():
        return StepResult(name, "skipped", f"no {target}/ in this project")
    with tempfile.TemporaryDirectory(prefix="aistarter-junit-") as tmp:
        report = Path(tmp) / "junit.xml"
        done = _run([python, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={report}", target],
                    project)
        if not report.is_file():
            return StepResult(name, "failed", f"pytest did not run: {_last_line(done)}")
        counts, failed, reasons = read_junit(report)
    summary = ", ".join(f"{n} {outcome}" for outcome, n in counts.items())
    if done.returncode not in (0, 5) or failed:
        named = "; ".join(failed[:5]) if failed else _last_line(done)
        return StepResult(name, "failed", f"{summary}: {named}" if summary else named)
    if not counts["passed"]:
        return StepResult(name, "skipped", f"no test ran in {target}/" + (f": {reasons[0]}" if reasons else ""))
    if reasons:
        why = "; ".join(f"{n}x {r}" if n > 1 else r for r, n in Counter(reasons).most_common(3))
        return StepResult(name, "skipped", f"{summary}; skipped: {why}")
    return StepResult(name, "ok", summary)


def _lint_step(project: Path, python: str) -> StepResult:
    done = _run([python, "-m", "ruff", "check", "--no-cache", "--output-format", "json", "."], project)
    try:
        problems = json.loads(done.stdout)
    except json.JSONDecodeError:
        if "No module named ruff" in done.stderr:
            return StepResult("lint", "skipped", "ruff is not installed in the project's environment "
                                                 "(it is in the dev extra: pip install -e '.[dev]')")
        return StepResult("lint", "failed", f"ruff did not run: {_last_line(done)}")
    if not problems:
        return StepResult("lint", "ok", "ruff: all checks passed")
    shown = [f"{Path(p['filename']).resolve().relative_to(project).as_posix()}:{p['location']['row']}: "
             f"{p['code']} {p['message']}" for p in problems[:3]]
    return StepResult("lint", "failed", f"{len(problems)} ruff problem(s): " + "; ".join(shown))


def _deleted_on_purpose(project: Path, path: str) -> bool:
    return bool(git(project, "log", "--diff-filter=D", "--format=%H", "-1", "--", path, check=False).stdout.strip())


def _drift_step(project: Path) -> StepResult:
    try:
        version, recorded = read_record(project)
        answers = validate(recorded)
    except (UpdateError, AnswerError) as exc:
        return StepResult("drift", "failed", f"answers record: {exc}")
    if version != __version__:
        return StepResult("drift", "skipped", f"generated by aistarter {version}, installed {__version__}: run "
                                          "`aistarter update` (or install the recorded version) before checking drift")
    with tempfile.TemporaryDirectory(prefix="aistarter-check-") as tmp:
        expected = set(list_files(render_project(answers, Path(tmp))))
    present = set(list_files(project))
    missing = sorted(p for p in expected - present if not _deleted_on_purpose(project, p))
    problems = [f"missing (not deleted in a commit): {', '.join(missing[:5])}"] if missing else []
    pristine = git(project, "ls-tree", "-r", "--name-only", TEMPLATE_BRANCH, check=False)
    if pristine.returncode == 0:
        stale = sorted(p for p in set(pristine.stdout.split()) - expected if p in present)
        if stale:
            problems.append(f"present but not generated for the recorded answers (answers edited without "
                            f"`aistarter update`?): {', '.join(stale[:5])}")
    if problems:
        return StepResult("drift", "failed", "; ".join(problems))
    return StepResult("drift", "ok", f"{len(expected)} template files accounted for")


def check(project: Path, steps: tuple[str, ...] = STEPS, python: str | None = None,
          progress: Progress = lambda _: None, done: Callable[[StepResult], None] = lambda _: None,
          ) -> list[StepResult]:
    """Run the steps with `python`, by default the project's own environment (created on first use)."""
    project = project.resolve()
    if python is None and {"tests", "lint", "infra"} & set(steps):
        python = str(project_environment(project, progress))
    runners = {
        "tests": lambda: _pytest_step("tests", project, "tests", str(python)),
        "lint": lambda: _lint_step(project, str(python)),
        "infra": lambda: _pytest_step("infra", project, "infra/tests", str(python)),
        "drift": lambda: _drift_step(project),
    }
    results = []
    for step in steps:
        progress(f"{step}: running")
        results.append(runners[step]())
        done(results[-1])
    return results


def as_dicts(results: list[StepResult]) -> list[dict[str, object]]:
    return [{"step": r.step, "status": r.status, "ok": r.ok, "detail": r.detail} for r in results]

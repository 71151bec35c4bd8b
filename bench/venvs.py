"""Virtualenvs the benchmark builds for its contenders: never dependencies of aistarter itself.

Each venv lives in the bench cache (AISTARTER_BENCH_CACHE, default ~/.cache/aistarter-bench) under a name that
changes whenever what it holds would change, so a later run reuses it and a changed project gets a fresh one.
The cold install time is recorded next to it and reported.
"""

from __future__ import annotations

import hashlib
import json
import platform
import shutil
import subprocess
import sys
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path

from .common import BenchError, cache_dir, log

# LiteLLM proxy: the newest release whose `[proxy]` extra resolves from this machine's registry (1.108+ pins
# litellm-proxy/-extras builds not published there). Never 1.82.7/1.82.8 (compromised) nor 1.107.0 (flagged).
LITELLM_VERSION = "1.106.12"
BANNED_LITELLM = {"1.82.7", "1.82.8", "1.107.0"}
MARKER = ".bench-ready.json"


@dataclass(frozen=True)
class Venv:
    path: Path
    install_s: float
    reused: bool

    @property
    def python(self) -> Path:
        return self.path / "bin" / "python"

    def bin(self, name: str) -> Path:
        return self.path / "bin" / name

    def distributions(self) -> list[str]:
        """Installed distributions, without the installer itself (pip/setuptools come with every venv)."""
        proc = subprocess.run([str(self.python), "-m", "pip", "list", "--format", "json",
                               "--disable-pip-version-check"], capture_output=True, text=True, check=True)
        return sorted(d["name"] for d in json.loads(proc.stdout) if d["name"].lower() not in {"pip", "setuptools"})


def _ensure(name: str, requirements: list[str], no_deps: bool = False) -> Venv:
    path = cache_dir() / name
    marker = path / MARKER
    if marker.exists():
        info = json.loads(marker.read_text())
        if info.get("requirements") == requirements:
            return Venv(path, float(info.get("install_s", 0.0)), reused=True)
    shutil.rmtree(path, ignore_errors=True)
    log(f"creating venv {path} ({len(requirements)} requirements; first run only)")
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "venv", str(path)], check=True, capture_output=True)
    if requirements:
        proc = subprocess.run([str(path / "bin" / "python"), "-m", "pip", "install", "-q",
                               "--disable-pip-version-check", *(["--no-deps"] if no_deps else []), *requirements],
                              capture_output=True, text=True)
        if proc.returncode != 0:
            errors = [line for line in proc.stderr.splitlines() if line.startswith("ERROR")] or proc.stderr.splitlines()
            shutil.rmtree(path, ignore_errors=True)
            raise BenchError(f"pip could not install {', '.join(requirements)} into {path}: "
                             f"{(errors or ['(no output)'])[-1]}")
    elapsed = time.perf_counter() - start
    marker.write_text(json.dumps({"requirements": requirements, "install_s": round(elapsed, 1)}))
    return Venv(path, elapsed, reused=False)


def litellm_venv() -> Venv:
    if LITELLM_VERSION in BANNED_LITELLM:
        raise BenchError(f"LiteLLM {LITELLM_VERSION} is a compromised release; pin another version in bench/venvs.py")
    return _ensure(f"litellm-{LITELLM_VERSION}-py{platform.python_version()}", [f"litellm[proxy]=={LITELLM_VERSION}"])


def project_dependencies(project: Path) -> tuple[list[str], bool]:
    """What the project's image installs: its requirements.lock (exact pins, installed --no-deps, as the
    Dockerfile does), or for a project without one its declared dependencies. True when they are the lock."""
    lock = project / "requirements.lock"
    if lock.is_file():
        pins = [line.strip() for line in lock.read_text(encoding="utf-8").splitlines()
                if line.strip() and not line.lstrip().startswith("#")]
        return pins, True
    data = tomllib.loads((project / "pyproject.toml").read_text(encoding="utf-8"))
    return list(data.get("project", {}).get("dependencies", [])), False


def project_venv(project: Path) -> Venv:
    """A venv with exactly the generated project's runtime dependencies (the app itself runs from its folder)."""
    deps, locked = project_dependencies(project)
    key = hashlib.sha256("\n".join([platform.python_version(), *deps]).encode()).hexdigest()[:12]
    return _ensure(f"project-{key}", deps, no_deps=locked)

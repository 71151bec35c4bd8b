"""A project's copy of the library holds only what its answers use (aistarter's vendoring.py): without the
optional modules it still renders, and a config that asks for a missing one fails with one line naming it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from stacks import BATCH_LARGE, CHAT_NO_GPU, INFRA_DIR, write_program

OPTIONAL = ["components/model_server.py", "components/queue.py", "components/telemetry.py",
            "components/vector_store.py", "platform/gcp.py", "platform/azure.py"]


def trimmed_copy(root: Path, leave_out: list[str]) -> Path:
    library = root / "infra" / "aistarter_infra"
    shutil.copytree(INFRA_DIR / "aistarter_infra", library, ignore=shutil.ignore_patterns("__pycache__"))
    for path in leave_out:
        (library / path).unlink()
    return library


def run_in(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    # The copy alone: not the repository's library through PYTHONPATH.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return subprocess.run([sys.executable, *args], cwd=root / "infra", env=env, capture_output=True, text=True,
                          timeout=300, check=False)


def test_a_copy_without_the_optional_modules_renders_a_stack_that_needs_none(tmp_path: Path) -> None:
    trimmed_copy(tmp_path, OPTIONAL)
    write_program(tmp_path, {**CHAT_NO_GPU, "observability": "none"})
    done = run_in(tmp_path, "-m", "aistarter_infra", "app", "--no-checkov")
    assert done.returncode == 0, done.stdout + done.stderr


def test_a_config_asking_for_a_component_the_copy_lacks_is_a_one_line_error(tmp_path: Path) -> None:
    trimmed_copy(tmp_path, ["components/queue.py"])
    write_program(tmp_path, BATCH_LARGE)  # a celery queue
    done = run_in(tmp_path, "-m", "aistarter_infra", "app", "--no-checkov")
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert "queue is set in the stack config" in done.stderr and "components/queue.py" in done.stderr


def test_a_platform_stack_for_a_cloud_the_copy_lacks_is_a_one_line_error(tmp_path: Path) -> None:
    trimmed_copy(tmp_path, ["platform/gcp.py", "platform/azure.py"])
    script = ("from aistarter_infra.platform.program import build_platform_stack\n"
              "from aistarter_infra.platform.spec import PlatformConfigError, config_from_stack, "
              "parse_platform_config\n"
              f"stack = {dict(BATCH_LARGE)!r}\n"
              "try:\n"
              "    build_platform_stack(parse_platform_config(config_from_stack(stack, cluster_name='demo')))\n"
              "except PlatformConfigError as exc:\n"
              "    print(exc)\n")
    done = run_in(tmp_path, "-c", script)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("cloud=gcp but this project's infra library has no platform/gcp.py")

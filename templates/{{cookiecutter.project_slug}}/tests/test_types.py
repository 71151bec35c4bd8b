"""The app type-checks: `mypy`, configured by [tool.mypy] in pyproject.toml, finds no error. CI's lint step,
`make lint` and the pre-commit hook run the same check; here every test run proves it too."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import pytest

from tests.conftest import PROJECT, _unavailable


def test_the_app_type_checks() -> None:
    if importlib.util.find_spec("mypy") is None:
        _unavailable("mypy is not installed (it is in the dev extra: pip install -e '.[dev]')")
    # mypy's own cache (.mypy_cache, or MYPY_CACHE_DIR when set) is safe to reuse: it rechecks any file whose
    # content changed. Warm, the run takes about a second; cold, 10-20 s.
    done = subprocess.run([sys.executable, "-m", "mypy"], cwd=PROJECT, capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        pytest.fail(f"mypy found type errors:\n{done.stdout[-4000:]}{done.stderr[-2000:]}", pytrace=False)

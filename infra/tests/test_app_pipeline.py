"""`python -m aistarter_infra` / `render_and_validate`: the one call the CLI and CI use."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from aistarter_infra.pipeline import gpu_pools_for, main, render_and_validate
from stacks import BATCH_LARGE, CHAT_NO_GPU, INFRA_DIR, MATRIX, RAG_SMALL_EXISTING, write_program


def test_pools_come_from_app_config_on_existing_clusters(tmp_path: Path) -> None:
    (pool,) = gpu_pools_for(write_program(tmp_path, RAG_SMALL_EXISTING), "dev")
    assert pool["labels"] == {"aistarter.dev/pool": "gpu"}
    assert pool["taints"] == [{"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}]
    assert pool["gpus_per_node"] == 1


def test_pools_come_from_platform_outputs_on_clouds(tmp_path: Path) -> None:
    outputs = {"gpu_pool_label_key": "k", "gpu_pool_label_value": "v", "gpu_taint_key": "t",
               "gpu_taint_value": "x", "gpu_taint_effect": "NoExecute"}
    (pool,) = gpu_pools_for(write_program(tmp_path, BATCH_LARGE), "dev", outputs)
    assert pool == {"name": "gpu", "labels": {"k": "v"}, "taints": [{"key": "t", "value": "x",
                                                                     "effect": "NoExecute"}], "gpus_per_node": 4}
    assert gpu_pools_for(write_program(tmp_path / "chat", CHAT_NO_GPU), "dev") == []


def test_aks_spot_taint_is_part_of_the_pool(tmp_path: Path) -> None:
    stack = copy.deepcopy(MATRIX["agents-azure-pgvector-arq"])
    stack["gpu"]["spot"] = True
    (pool,) = gpu_pools_for(write_program(tmp_path, stack), "dev")
    assert {"key": "kubernetes.azure.com/scalesetpriority", "value": "spot", "effect": "NoSchedule"} in pool["taints"]


def test_render_and_validate_writes_every_stack(tmp_path: Path) -> None:
    app = write_program(tmp_path / "p", RAG_SMALL_EXISTING)
    (app / "Pulumi.prod.yaml").write_text((app / "Pulumi.dev.yaml").read_text())
    results = render_and_validate(app, tmp_path / "out", checkov=False)
    assert [r.stack for r, _ in results] == ["dev", "prod"]
    assert all(report.schema_problems == [] and report.gpu_problems == [] for _, report in results)
    for stack in ("dev", "prod"):
        assert (tmp_path / "out" / stack / "manifests.yaml").is_file()
        assert "gpu: 0 problem(s)" in (tmp_path / "out" / stack / "validation.txt").read_text()


def test_main_exit_codes(tmp_path: Path, capsys: Any, monkeypatch: Any) -> None:
    app = write_program(tmp_path / "ok", CHAT_NO_GPU)
    assert main([str(app), "--no-checkov"]) == 0
    assert "resources" in capsys.readouterr().out
    monkeypatch.setenv("AISTARTER_CHECKOV", str(tmp_path / "missing"))
    assert main([str(app)]) == 1, "a run that could not scan must not pass"
    bad = write_program(tmp_path / "bad", CHAT_NO_GPU, overrides={"api": {"image": "app"}})
    assert main([str(bad), "--no-checkov"]) == 2
    assert "api.image" in capsys.readouterr().err


def test_module_entry_point_with_platform_outputs(tmp_path: Path, checkov_exe: str) -> None:
    app = write_program(tmp_path, BATCH_LARGE)
    outputs = tmp_path / "platform.json"
    outputs.write_text(json.dumps({"kubeconfig": "x", "gpu_pool_label_key": "pool", "gpu_pool_label_value": "l4x4",
                                   "gpu_taint_key": "nvidia.com/gpu", "gpu_taint_value": "present",
                                   "gpu_taint_effect": "NoSchedule", "storage_class": "standard-rwo",
                                   "database_url": "postgresql://app:x@db:5432/app"}))
    env = {**os.environ, "AISTARTER_CHECKOV": checkov_exe}
    proc = subprocess.run([sys.executable, "-m", "aistarter_infra", str(app), "--platform-outputs", str(outputs),
                           "--out", str(tmp_path / "out")], cwd=INFRA_DIR, env=env, capture_output=True, text=True,
                          timeout=600, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "0 failed" in proc.stdout
    manifests = (tmp_path / "out" / "dev" / "manifests.yaml").read_text()
    assert "pool: l4x4" in manifests and "storageClassName: standard-rwo" in manifests


@pytest.mark.parametrize("name", sorted(MATRIX))
def test_matrix_passes_the_pipeline_without_checkov(name: str, tmp_path: Path) -> None:
    ((result, report),) = render_and_validate(write_program(tmp_path, MATRIX[name]), checkov=False)
    assert report.ok and report.schema_problems == [] and report.gpu_problems == [], report.summary()
    assert result.resource_count > 10

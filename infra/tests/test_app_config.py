"""The app stack's typed config: STACK -> config mapping, and one-line errors for bad values."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from aistarter_infra.config import ConfigError, check_image, config_from_mapping, required_secret_keys
from aistarter_infra.stack_config import stack_to_config
from stacks import BATCH_LARGE, CHAT_NO_GPU, MATRIX, RAG_SMALL_EXISTING


def cfg_of(stack: dict[str, Any], **changes: Any) -> Any:
    values = stack_to_config(stack, "demo") | {"project": "demo"}
    values.update(changes)
    return config_from_mapping(values)


@pytest.mark.parametrize("name", sorted(MATRIX))
def test_every_matrix_stack_maps_to_a_valid_config(name: str) -> None:
    stack = MATRIX[name]
    cfg = cfg_of(stack)
    assert cfg.cloud == stack["cloud"]
    assert (cfg.api.min_replicas, cfg.api.max_replicas) == (stack["api"]["min_replicas"], stack["api"]["max_replicas"])
    assert (cfg.model_server is None) == (stack["model_server"] is None)
    assert (cfg.vector_store.kind if cfg.vector_store else "none") == stack["vector_store"]
    assert (cfg.queue.kind if cfg.queue else "none") == stack["task_queue"]
    assert (cfg.telemetry is None) == (stack["observability"] == "none")
    if stack["model_server"]:
        ms = stack["model_server"]
        assert cfg.model_server.tensor_parallel == ms["tensor_parallel"]
        assert cfg.model_server.scale_to_zero == ms["scale_to_zero"]
        assert cfg.model_server.image == ms["image"]
        assert cfg.gpu.gpus_per_node == stack["gpu"]["gpus_per_node"]


def test_existing_cluster_takes_gpu_pool_from_config_and_clouds_from_platform_stack() -> None:
    existing = cfg_of(RAG_SMALL_EXISTING)
    taint = RAG_SMALL_EXISTING["gpu"]["taint"]
    assert existing.platform.kube_context and not existing.platform.stack
    assert (existing.platform.gpu_taint.key, existing.platform.gpu_taint.value) == (taint["key"], taint["value"])
    cloud = cfg_of(BATCH_LARGE)
    assert cloud.platform.stack == "organization/demo-platform/dev"


@pytest.mark.parametrize("image", ["repo/app:1.2.3", "ghcr.io/org/app:v0.11.0", "localhost:5000/app:2024.1",
                                   "app@sha256:" + "a" * 64, "app:1.0@sha256:" + "b" * 64])
def test_pinned_images_are_accepted(image: str) -> None:
    assert check_image(image) == image


@pytest.mark.parametrize(("image", "why"), [("repo/app", "not pinned"), ("repo/app:latest", "floating tag"),
                                            ("localhost:5000/app", "not pinned"), ("app:stable", "floating tag"),
                                            ("", "not pinned")])
def test_unpinned_images_are_rejected(image: str, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        check_image(image)


def test_errors_are_one_line_and_name_the_key() -> None:
    stack = copy.deepcopy(CHAT_NO_GPU)
    values = stack_to_config(stack, "demo") | {"project": "demo"}
    values["api"] = dict(values["api"], image="ghcr.io/org/app:latest")
    with pytest.raises(ConfigError) as err:
        config_from_mapping(values)
    assert "\n" not in str(err.value)
    assert "api.image" in str(err.value) and "latest" in str(err.value)


@pytest.mark.parametrize(("change", "needle"), [
    ({"api": {"image": "a:1", "min_replicas": 5, "max_replicas": 3}}, "api.min_replicas=5 > api.max_replicas=3"),
    ({"api": {"image": "a:1", "unknown_knob": 1}}, "unknown_knob"),
    ({"namespace": "Not_A_Label"}, "DNS label"),
    ({"providers": ["openai", "Mistral AI"]}, "providers.1"),
    ({"platform": {"kube_context": ""}}, "platform.kube_context is empty"),
    ({"api": {"image": "a:1", "resources": {"cpu_request": "lots"}}}, "cpu_request='lots' is not a Kubernetes"),
])
def test_bad_values_are_rejected_with_a_fix(change: dict[str, Any], needle: str) -> None:
    values = stack_to_config(CHAT_NO_GPU, "demo") | {"project": "demo", "cloud": "existing",
                                                     "platform": {"kube_context": "kind"}}
    values.update(change)
    with pytest.raises(ConfigError, match=None) as err:
        config_from_mapping(values)
    assert needle in str(err.value)


def test_tensor_parallel_must_fit_one_node() -> None:
    values = stack_to_config(RAG_SMALL_EXISTING, "demo") | {"project": "demo"}
    values["model_server"] = dict(values["model_server"], tensor_parallel=2)
    with pytest.raises(ConfigError, match="tensor_parallel=2 exceeds gpu.gpus_per_node=1"):
        config_from_mapping(values)


def test_warm_model_server_needs_a_replica() -> None:
    values = stack_to_config(RAG_SMALL_EXISTING, "demo") | {"project": "demo"}
    values["model_server"] = dict(values["model_server"], scale_to_zero=False, min_replicas=0)
    with pytest.raises(ConfigError, match="scale_to_zero is false"):
        config_from_mapping(values)


def test_data_store_requests_must_equal_limits() -> None:
    values = stack_to_config(RAG_SMALL_EXISTING, "demo") | {"project": "demo"}
    values["vector_store"] = dict(values["vector_store"], resources={"cpu_request": "500m", "cpu_limit": "1"})
    with pytest.raises(ConfigError, match="requests must equal limits"):
        config_from_mapping(values)


def test_required_secrets_follow_the_options() -> None:
    assert required_secret_keys(cfg_of(CHAT_NO_GPU)) == ["openai_api_key", "anthropic_api_key", "api_keys"]
    # existing cluster: the database comes from the secret URL (clouds: from the platform stack).
    assert required_secret_keys(cfg_of(RAG_SMALL_EXISTING)) == ["openai_api_key", "api_keys", "qdrant_api_key",
                                                                "database_url"]
    cnpg = cfg_of(RAG_SMALL_EXISTING, database={"cloudnativepg": True})
    assert required_secret_keys(cnpg)[-1] == "database_password"
    # local-only gateway: no provider key; celery: the Redis password.
    assert required_secret_keys(cfg_of(BATCH_LARGE)) == ["api_keys", "redis_password"]
    # pgvector is an extension in the shared database: no password of its own.
    assert required_secret_keys(cfg_of(MATRIX["agents-azure-pgvector-arq"])) == [
        "anthropic_api_key", "api_keys", "redis_password"]


class _Config:
    """The two methods of pulumi.Config the loader calls, over plain values."""

    def __init__(self, values: dict[str, Any]) -> None:
        self.values = values

    def get(self, key: str) -> Any:
        v = self.values.get(key)
        return None if v is None or isinstance(v, dict | list) else str(v)

    def get_object(self, key: str) -> Any:
        v = self.values.get(key)
        return v if isinstance(v, dict | list) else None


def test_loader_refuses_the_placeholder_image_and_says_how_to_set_it(monkeypatch: pytest.MonkeyPatch) -> None:
    import pulumi
    from aistarter_infra.config import load_app_config

    # As `pulumi up` runs it: an earlier render in this process left Pulumi's mock monitor installed.
    monkeypatch.setattr(pulumi.runtime.settings.SETTINGS, "monitor", None)

    values = stack_to_config(CHAT_NO_GPU, "demo")
    with pytest.raises(ConfigError) as err:
        load_app_config(_Config(values), "demo")
    message = str(err.value)
    assert "\n" not in message and "api.image" in message and "placeholder" in message
    assert "pulumi config set --path api.image" in message
    values["api"] = dict(values["api"], image="registry.example.com/demo:1.4.2")
    assert load_app_config(_Config(values), "demo").api.image == "registry.example.com/demo:1.4.2"


def test_cloudnativepg_only_on_existing_clusters() -> None:
    with pytest.raises(ConfigError, match="database.cloudnativepg is true on cloud=aws"):
        cfg_of(CHAT_NO_GPU, database={"cloudnativepg": True})


def test_longest_hold_is_the_latency_budget_rounded_up() -> None:
    assert cfg_of(CHAT_NO_GPU).api.longest_hold_s == 2
    values = stack_to_config(CHAT_NO_GPU, "demo", latency_budget_ms=120_001) | {"project": "demo"}
    assert config_from_mapping(values).api.longest_hold_s == 121


def test_model_cache_comes_from_the_blueprint_size() -> None:
    large = copy.deepcopy(BATCH_LARGE)
    large["model_server"]["cache_gi"] = 180
    ms = cfg_of(large).model_server
    assert ms.cache_size == "180Gi" and ms.cache_mode == "per-replica"
    assert cfg_of(RAG_SMALL_EXISTING).model_server.cache_mode == "per-pod"

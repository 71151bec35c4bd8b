"""The app stack rendered under Pulumi mocks across the option matrix: which resources exist for each option
and the blueprint's decisions on them (scale to zero, HPA bounds, GPU placement, security, networking)."""

from __future__ import annotations

import asyncio
import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from aistarter_infra.render import SECRET_PLACEHOLDER, RenderError, RenderResult, render_program, write_render
from stacks import BATCH_LARGE, CHAT_NO_GPU, HELD_IN, MATRIX, RAG_SMALL_EXISTING, make_stack, write_program


def pod_specs(r: RenderResult) -> list[tuple[str, dict[str, Any]]]:
    return [(f"{m['kind']}/{m['metadata']['name']}", m["spec"]["template"]["spec"])
            for m in r.manifests if m["kind"] in ("Deployment", "StatefulSet")]


def test_matrix_covers_every_option() -> None:
    stacks = MATRIX.values()
    assert {s["cloud"] for s in stacks} == {"aws", "gcp", "azure", "existing"}
    sizes = {"none" if not s["model_server"] else ("small" if s["model_server"]["tensor_parallel"] == 1 else "large")
             for s in stacks}
    assert sizes == {"none", "small", "large"}
    assert {s["vector_store"] for s in stacks} == {"none", "qdrant", "pgvector"}
    assert {s["task_queue"] for s in stacks} == {"none", "arq", "celery"}


def test_a_render_after_asyncio_run_gets_its_own_event_loop(tmp_path: Path) -> None:
    # asyncio.run leaves the main thread without a loop; Pulumi's mocks need one (CI ran every app render
    # after a test that had used asyncio.run, and all of them failed).
    asyncio.run(asyncio.sleep(0))
    result = render_program(write_program(tmp_path, MATRIX["chat"]))
    assert any(m["kind"] == "Deployment" for m in result.manifests)


@pytest.mark.parametrize("name", sorted(MATRIX))
def test_resources_exist_exactly_for_the_chosen_options(name: str, rendered: Any) -> None:
    stack, r = MATRIX[name], rendered(name)
    names = {(m["kind"], m["metadata"]["name"]) for m in r.manifests}
    assert {("Namespace", "demo"), ("Deployment", "api"), ("Service", "api"), ("HorizontalPodAutoscaler", "api"),
            ("PodDisruptionBudget", "api"), ("NetworkPolicy", "default-deny-all"),
            ("NetworkPolicy", "allow-dns")} <= names
    # The API's exposure per cloud (components/ingress.py): an ALB Ingress on aws and an Ingress of the configured
    # class on existing clusters; the Gateway API (GKE Gateway, Application Gateway for Containers) on gcp/azure.
    gateway_api = stack["cloud"] in ("gcp", "azure")
    assert (("Ingress", "api") in names) == (not gateway_api)
    assert (("HTTPRoute", "api") in names) == gateway_api
    has = lambda kind, n: (kind, n) in names  # noqa: E731
    large = bool(stack["model_server"]) and stack["model_server"]["tensor_parallel"] > 1
    assert has("Deployment", "model-server") == (bool(stack["model_server"]) and not large)
    assert has("StatefulSet", "model-server") == large
    assert has("ScaledObject", "model-server") == bool(stack["model_server"])
    assert has("StatefulSet", "qdrant") == (stack["vector_store"] == "qdrant")
    # pgvector lives in the shared database; every stack has its URL Secret and one migration Job.
    assert not has("StatefulSet", "postgres")
    assert has("Secret", "database") and has("Job", "migrate")
    assert has("PodDisruptionBudget", "qdrant") == (stack["vector_store"] == "qdrant")
    assert has("StatefulSet", "redis") == (stack["task_queue"] != "none")
    assert has("Deployment", "worker") == (stack["task_queue"] != "none")
    assert has("ScaledObject", "worker") == (stack["task_queue"] != "none")
    assert has("Deployment", "otel-collector") == (stack["observability"] != "none")
    assert has("ServiceMonitor", "api") == bool(stack["model_server"])
    assert has("ServiceMonitor", "worker") == bool(stack["model_server"] and stack["task_queue"] != "none")
    releases = {h["name"] for h in r.helm_releases}
    # Cluster-wide add-ons: the platform stack's on clouds, config switches on an existing cluster.
    existing = stack["cloud"] == "existing"
    assert ("keda" in releases) == (existing and bool(stack["model_server"] or stack["task_queue"] != "none"))
    assert ("nvidia-device-plugin" in releases) == (existing and bool(stack["model_server"]))
    assert "kube-prometheus-stack" not in releases
    # Only the StackReference (clouds) and CRD reads are non-Kubernetes-object resources; the provider is never
    # the ambient context.
    others = {o["type"] for o in r.other} - {"kubernetes:apiextensions.k8s.io/v1:CustomResourceDefinition"}
    assert others == ({"pulumi:providers:kubernetes"} | (
        set() if existing else {"pulumi:pulumi:StackReference"}))


@pytest.mark.parametrize("name", sorted(MATRIX))
def test_every_pod_is_locked_down(name: str, rendered: Any) -> None:
    for where, pod in pod_specs(rendered(name)):
        assert pod["securityContext"]["runAsNonRoot"] is True, where
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, where
        assert pod["automountServiceAccountToken"] is False, where
        assert not pod.get("hostNetwork") and not pod.get("hostPID"), where
        for c in pod["containers"]:
            sc = c["securityContext"]
            assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False, where
            assert sc["privileged"] is False and sc["capabilities"] == {"drop": ["ALL"]}, where
            assert sc["runAsUser"] >= 10000, where
            res = c["resources"]
            for key in ("cpu", "memory"):
                assert key in res["requests"] and key in res["limits"], f"{where} {key}"
            assert ":" in c["image"] and not c["image"].endswith(":latest"), where
            assert "livenessProbe" in c and "readinessProbe" in c, where


@pytest.mark.parametrize("name", sorted(MATRIX))
def test_hpa_uses_the_blueprint_bounds(name: str, rendered: Any) -> None:
    api = MATRIX[name]["api"]
    hpa = rendered(name).get("HorizontalPodAutoscaler", "api")["spec"]
    assert (hpa["minReplicas"], hpa["maxReplicas"]) == (api["min_replicas"], api["max_replicas"])
    assert hpa["metrics"] == [{"type": "Resource", "resource": {"name": "cpu", "target": {
        "type": "Utilization", "averageUtilization": api["target_cpu_utilization"]}}}]
    assert hpa["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "api"}
    # The HPA owns the replica count: the Deployment must not carry one that each `pulumi up` would re-apply.
    assert "replicas" not in rendered(name).get("Deployment", "api")["spec"]


def test_api_probes_and_disruption_budget(rendered: Any) -> None:
    r = rendered("chat")
    c = r.get("Deployment", "api")["spec"]["template"]["spec"]["containers"][0]
    assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert c["startupProbe"]["httpGet"]["path"] == "/healthz"
    # maxUnavailable: a budget that allows 0 disruptions for a single replica would block node drains.
    assert r.get("PodDisruptionBudget", "api")["spec"] == {
        "maxUnavailable": 1, "selector": {"matchLabels": r.get("Deployment", "api")["spec"]["selector"]["matchLabels"]}}


@pytest.mark.parametrize("name", ["rag-small-existing", "batch-large", "rag-aws-warm-gpu"])
def test_model_server_gpu_placement_and_lifecycle(name: str, rendered: Any) -> None:
    stack, r = MATRIX[name], rendered(name)
    tp = stack["model_server"]["tensor_parallel"]
    kind = "Deployment" if tp == 1 else "StatefulSet"
    workload = r.get(kind, "model-server")
    pod = workload["spec"]["template"]["spec"]
    c = pod["containers"][0]
    assert c["resources"]["requests"]["nvidia.com/gpu"] == c["resources"]["limits"]["nvidia.com/gpu"] == str(tp)
    assert c["args"][c["args"].index("--tensor-parallel-size") + 1] == str(tp)
    gpu = stack["gpu"]
    assert pod["nodeSelector"] == {gpu["pool_label_key"]: gpu["pool_label_value"]}
    assert {"key": gpu["taint"]["key"], "operator": "Equal", "value": gpu["taint"]["value"],
            "effect": gpu["taint"]["effect"]} in pod["tolerations"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["dshm"]["emptyDir"]["medium"] == "Memory"
    if tp == 1:
        assert "ephemeral" in volumes["model-cache"]
        # Rolls out without dropping the warm replica.
        assert workload["spec"]["strategy"]["rollingUpdate"] == {"maxUnavailable": 0, "maxSurge": 1}
    else:
        # The large model's weights stay on a claim per replica across scale to zero.
        (claim,) = workload["spec"]["volumeClaimTemplates"]
        assert claim["metadata"]["name"] == "model-cache" and "model-cache" not in volumes
        assert workload["spec"]["persistentVolumeClaimRetentionPolicy"]["whenScaled"] == "Retain"
    assert c["imagePullPolicy"] == "IfNotPresent"
    assert c["startupProbe"]["failureThreshold"] * c["startupProbe"]["periodSeconds"] >= \
        stack["model_server"]["cold_start_s"]
    assert c["lifecycle"]["preStop"]["sleep"]["seconds"] > 0
    assert 120 <= pod["terminationGracePeriodSeconds"] <= 140
    assert "replicas" not in workload["spec"]
    assert r.get("ScaledObject", "model-server")["spec"]["scaleTargetRef"]["kind"] == kind
    # At zero nothing is meant to be ready, so `pulumi up` must not wait for it (warm floors get a long timeout).
    annotations = workload["metadata"].get("annotations", {})
    assert (annotations.get("pulumi.com/skipAwait") == "true") == stack["model_server"]["scale_to_zero"]


@pytest.mark.parametrize("name", ["rag-small-existing", "batch-large"])
def test_scale_to_zero_wakes_on_the_api_pending_gauge(name: str, rendered: Any) -> None:
    stack, r = MATRIX[name], rendered(name)
    ms = stack["model_server"]
    so = r.get("ScaledObject", "model-server")["spec"]
    assert ms["scale_to_zero"] is True
    assert so["idleReplicaCount"] == 0 and so["minReplicaCount"] == 1
    assert so["maxReplicaCount"] == ms["max_replicas"]
    assert so["scaleTargetRef"]["name"] == "model-server"
    (trigger,) = so["triggers"]
    assert trigger["type"] == "prometheus"
    meta = trigger["metadata"]
    assert meta["query"].startswith(f'sum(aistarter_model_pending_requests{{model="{ms["model"]}"}})')
    assert meta["threshold"] == str(ms["target_pending_per_replica"])
    assert meta["activationThreshold"] == "0"
    # Prometheus must actually scrape the gauge: a ServiceMonitor on the API's metrics endpoint.
    sm = r.get("ServiceMonitor", "api")["spec"]
    assert sm["endpoints"][0] == {"port": "metrics", "path": "/metrics", "interval": "15s"}
    assert sm["selector"]["matchLabels"] == r.get("Service", "api-metrics")["spec"]["selector"]
    # The platform's Prometheus selects monitors by its release label.
    assert r.get("ServiceMonitor", "api")["metadata"]["labels"]["release"] == "kube-prometheus-stack"


def test_warm_gpu_keeps_replicas_when_the_blueprint_refuses_scale_to_zero(rendered: Any) -> None:
    so = rendered("rag-aws-warm-gpu").get("ScaledObject", "model-server")["spec"]
    assert "idleReplicaCount" not in so
    assert so["minReplicaCount"] == MATRIX["rag-aws-warm-gpu"]["model_server"]["min_replicas"] == 1


@pytest.mark.parametrize(("name", "queue_key"), [("batch-large", "celery"), ("agents-azure-pgvector-arq", "arq:queue")])
def test_worker_scales_on_queue_length(name: str, queue_key: str, rendered: Any) -> None:
    r = rendered(name)
    so = r.get("ScaledObject", "worker")["spec"]
    (trigger,) = so["triggers"]
    assert trigger["type"] == "redis"
    assert trigger["metadata"]["listName"] == queue_key
    assert trigger["metadata"]["address"] == "redis.demo.svc.cluster.local:6379"
    worker_env = {e["name"] for e in r.get("Deployment", "worker")["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert trigger["metadata"]["passwordFromEnv"] in worker_env
    assert so["minReplicaCount"] == 0


def _allows(policy: dict[str, Any], direction: str) -> list[dict[str, Any]]:
    return policy["spec"].get(direction, [])


@pytest.mark.parametrize("name", sorted(MATRIX))
def test_network_is_default_deny_with_explicit_allows(name: str, rendered: Any) -> None:
    stack, r = MATRIX[name], rendered(name)
    deny = r.get("NetworkPolicy", "default-deny-all")["spec"]
    assert deny == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    dns = r.get("NetworkPolicy", "allow-dns")["spec"]
    assert {"port": 53, "protocol": "UDP"} in dns["egress"][0]["ports"]
    api_in = r.get("NetworkPolicy", "api-ingress")
    sources = [peer["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
               for rule in _allows(api_in, "ingress") for peer in rule["from"] if "namespaceSelector" in peer]
    cidrs = [peer["ipBlock"]["cidr"] for rule in _allows(api_in, "ingress") for peer in rule["from"]
             if "ipBlock" in peer]
    if stack["cloud"] == "existing":
        assert "ingress-nginx" in sources
    else:
        # Cloud load balancers reach pod IPs from their own ranges (platform.spec.LB_SOURCE_CIDRS).
        from aistarter_infra.platform.spec import LB_SOURCE_CIDRS

        assert cidrs == LB_SOURCE_CIDRS[stack["cloud"]]
    api_out = r.get("NetworkPolicy", "api-egress")
    targets = [peer.get("podSelector", {}).get("matchLabels", {}).get("app.kubernetes.io/component")
               for rule in _allows(api_out, "egress") for peer in rule["to"]]
    assert ("model-server" in targets) == bool(stack["model_server"])
    assert ("vector-store" in targets) == (stack["vector_store"] == "qdrant")
    assert ("redis" in targets) == (stack["task_queue"] != "none")
    assert ("otel-collector" in targets) == (stack["observability"] != "none")
    if stack["model_server"]:
        ms_in = r.get("NetworkPolicy", "model-server-ingress")
        peers = [p for rule in _allows(ms_in, "ingress") for p in rule["from"]]
        assert {"podSelector": {"matchLabels": {"app.kubernetes.io/component": "api",
                                                "app.kubernetes.io/name": "demo-api"}}} in peers
    if stack["task_queue"] != "none":
        redis_in = r.get("NetworkPolicy", "redis-ingress")
        namespaces = [p["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
                      for rule in _allows(redis_in, "ingress") for p in rule["from"] if "namespaceSelector" in p]
        assert namespaces == ["keda"], "KEDA polls the queue length from its namespace"


@pytest.mark.parametrize("name", sorted(MATRIX))
def test_secrets_never_rendered_in_plain_text(name: str, rendered: Any) -> None:
    r = rendered(name)
    for secret in r.find("Secret"):
        for value in secret.get("stringData", {}).values():
            assert value == SECRET_PLACEHOLDER, secret["metadata"]["name"]
    text = json.dumps(r.manifests)
    assert "sk-" not in text


def test_device_plugin_targets_the_gpu_pool(rendered: Any) -> None:
    values = rendered("rag-small-existing").release("nvidia-device-plugin")["values"]
    gpu = RAG_SMALL_EXISTING["gpu"]
    term = values["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    assert term == [{"matchExpressions": [{"key": gpu["pool_label_key"], "operator": "In",
                                           "values": [gpu["pool_label_value"]]}]}]
    assert {"key": "nvidia.com/gpu", "operator": "Equal", "value": "present", "effect": "NoSchedule"} in \
        values["tolerations"]


def test_platform_outputs_drive_gpu_placement_on_clouds(tmp_path: Path) -> None:
    outputs = {"kubeconfig": "k", "gpu_pool_label_key": "example.com/pool", "gpu_pool_label_value": "l4",
               "gpu_taint_key": "example.com/gpu", "gpu_taint_value": "yes", "gpu_taint_effect": "NoExecute",
               "storage_class": "fast", "database_url": "postgresql://app:p%40ss@db.internal:5432/app",
               "monitor_labels": {"prometheus": "platform"}, "ingress_class": "alb"}
    r = render_program(write_program(tmp_path, BATCH_LARGE), platform_outputs=outputs)
    pod = r.get("StatefulSet", "model-server")["spec"]["template"]["spec"]
    assert pod["nodeSelector"] == {"example.com/pool": "l4"}
    assert pod["tolerations"] == [{"key": "example.com/gpu", "operator": "Equal", "value": "yes",
                                   "effect": "NoExecute"}]
    redis = r.get("StatefulSet", "redis")["spec"]["volumeClaimTemplates"][0]["spec"]
    assert redis["storageClassName"] == "fast"
    assert r.get("ServiceMonitor", "api")["metadata"]["labels"]["prometheus"] == "platform"
    (ref,) = [o for o in r.other if o["type"] == "pulumi:pulumi:StackReference"]
    assert ref["name"] == "organization/demo-platform/dev"


@pytest.mark.parametrize("name", sorted(HELD_IN))
def test_write_render_outputs_yaml_and_helm_values(name: str, rendered: Any, tmp_path: Path) -> None:
    r = rendered(name)
    target = write_render(r, tmp_path)
    docs = list(yaml.safe_load_all((target / "manifests.yaml").read_text()))
    assert len(docs) == len(r.manifests)
    assert all(list(d)[:3] == ["apiVersion", "kind", "metadata"] for d in docs)
    summary = json.loads((target / "summary.json").read_text())
    assert summary["resource_count"] == r.resource_count
    for release in r.helm_releases:
        saved = yaml.safe_load((target / "helm" / f"{release['name']}.yaml").read_text())
        assert saved["chart"] == release["chart"] and saved["version"] == release["version"]
        assert saved["repository"].startswith("https://")


def test_render_is_deterministic(tmp_path: Path) -> None:
    a = render_program(write_program(tmp_path / "a", CHAT_NO_GPU))
    b = render_program(write_program(tmp_path / "b", CHAT_NO_GPU))
    assert a.manifests == b.manifests and a.helm_releases == b.helm_releases


def test_bad_stack_config_fails_the_render_with_its_key(tmp_path: Path) -> None:
    app = write_program(tmp_path, CHAT_NO_GPU, overrides={"api": {"image": "ghcr.io/org/app:latest"}})
    with pytest.raises(RenderError, match=r"api\.image.*floating tag"):
        render_program(app)


def test_missing_program_dir_is_explained(tmp_path: Path) -> None:
    with pytest.raises(RenderError, match="Pulumi.yaml not found"):
        render_program(tmp_path)


def test_aks_spot_gpu_pool_is_tolerated(tmp_path: Path) -> None:
    from aistarter_infra.stack_config import gpu_pools_from_stack
    from aistarter_infra.validate import check_gpu_consistency

    stack = copy.deepcopy(MATRIX["agents-azure-pgvector-arq"])
    stack["gpu"]["spot"] = True
    r = render_program(write_program(tmp_path, stack))
    spot = {"key": "kubernetes.azure.com/scalesetpriority", "operator": "Equal", "value": "spot",
            "effect": "NoSchedule"}
    (workload,) = r.find("Deployment", "model-server") + r.find("StatefulSet", "model-server")
    assert spot in workload["spec"]["template"]["spec"]["tolerations"]
    pools = gpu_pools_from_stack(stack)
    assert len(pools[0]["taints"]) == 2
    assert check_gpu_consistency(r.manifests, pools) == []
    no_spot = copy.deepcopy(workload)
    no_spot["spec"]["template"]["spec"]["tolerations"].remove(spot)
    assert check_gpu_consistency([no_spot], pools) != []


@pytest.mark.parametrize(("name", "drops"), [("agents-azure-pgvector-arq", True), ("chat", False)])
def test_collector_drops_content_only_for_metadata_traces(name: str, drops: bool, rendered: Any) -> None:
    config = yaml.safe_load(rendered(name).get("ConfigMap", "otel-collector")["data"]["config.yaml"])
    chain = config["service"]["pipelines"]["traces"]["processors"]
    assert chain[0] == "memory_limiter" and chain[-1] == "batch"
    assert ("attributes/drop-content" in chain) == drops
    if drops:
        deleted = {a["key"] for a in config["processors"]["attributes/drop-content"]["actions"]}
        assert {"gen_ai.input.messages", "gen_ai.output.messages", "input.value"} <= deleted
    assert config["exporters"] == {"debug": {"verbosity": "basic"}}


def test_direct_to_pod_load_balancers_can_be_allowed_by_cidr(tmp_path: Path) -> None:
    values = {"api": {"image": "ghcr.io/org/demo:1.0.0", "ingress": {"allow_cidrs": ["10.0.0.0/16"]}}}
    r = render_program(write_program(tmp_path, CHAT_NO_GPU, overrides=values))
    rules = r.get("NetworkPolicy", "api-ingress")["spec"]["ingress"]
    assert {"from": [{"ipBlock": {"cidr": "10.0.0.0/16"}}], "ports": [{"port": 8000, "protocol": "TCP"}]} in rules
    assert validate_schemas_ok(r)


def validate_schemas_ok(r: RenderResult) -> bool:
    from aistarter_infra.validate import validate_schemas

    return validate_schemas(r.manifests) == []


def test_queued_jobs_wake_the_model_server_through_the_worker_metrics(rendered: Any, tmp_path: Path) -> None:
    r = rendered("batch-large")
    worker = r.get("Deployment", "worker")["spec"]["template"]["spec"]["containers"][0]
    assert {"name": "metrics", "containerPort": 9000, "protocol": "TCP"} in worker["ports"]
    assert {"name": "METRICS_PORT", "value": "9000"} in worker["env"]
    svc = r.get("Service", "worker-metrics")["spec"]
    monitor = r.get("ServiceMonitor", "worker")["spec"]
    assert monitor["selector"]["matchLabels"] == svc["selector"]
    assert monitor["endpoints"][0]["port"] == "metrics"
    allowed = r.get("NetworkPolicy", "worker-ingress")["spec"]["ingress"]
    assert allowed == [{"from": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}],
                        "ports": [{"port": 9000, "protocol": "TCP"}]}]
    # Without a self-hosted model nothing needs the worker's metrics.
    from stacks import make_stack

    plain = render_program(write_program(tmp_path, make_stack(task_queue="arq", use_case="batch")))
    assert not plain.find("ServiceMonitor") and not plain.find("Service", "worker-metrics")
    assert "ports" not in plain.get("Deployment", "worker")["spec"]["template"]["spec"]["containers"][0]


@pytest.mark.parametrize(("name", "key"), [("rag-small-existing", "context"), ("batch-large", "kubeconfig")])
def test_provider_targets_the_configured_cluster_never_the_ambient_one(name: str, key: str, rendered: Any) -> None:
    (provider,) = [o for o in rendered(name).other if o["type"] == "pulumi:providers:kubernetes"]
    inputs = provider["inputs"]
    if key == "context":
        assert inputs["context"] == "change-me" and "kubeconfig" not in inputs
    else:
        # The platform's kubeconfig output is a secret: it reaches the provider, redacted in the render.
        assert inputs["kubeconfig"] == SECRET_PLACEHOLDER and "context" not in inputs


def _api_env(r: RenderResult) -> dict[str, Any]:
    api = next(m for m in r.manifests if m["kind"] == "Deployment" and m["metadata"]["name"] == "api")
    return {e["name"]: e for e in api["spec"]["template"]["spec"]["containers"][0]["env"]}


def test_a_provider_added_to_the_app_gets_its_key_from_the_provider_secret(tmp_path: Path) -> None:
    # docs/extending.md: a new adapter plus one PROVIDERS entry in the app; the stack needs only its name.
    stack = make_stack(gateway={"providers": ["openai", "acme"], "fallback": [], "retries": 2, "timeout_s": 30.0})
    env = _api_env(render_program(write_program(tmp_path, stack)))
    assert env["ACME_API_KEY"]["valueFrom"]["secretKeyRef"] == {"name": "provider-keys", "key": "acme_api_key"}


def test_a_local_server_run_elsewhere_gets_its_url_from_the_provider_secret(tmp_path: Path) -> None:
    # providers include `local` but the stack runs no model server: production requires LOCAL_MODEL_BASE_URL.
    stack = make_stack(gateway={"providers": ["local"], "fallback": [], "retries": 2, "timeout_s": 30.0})
    env = _api_env(render_program(write_program(tmp_path, stack)))
    assert env["LOCAL_MODEL_BASE_URL"]["valueFrom"]["secretKeyRef"] == {"name": "provider-keys",
                                                                         "key": "local_model_base_url"}

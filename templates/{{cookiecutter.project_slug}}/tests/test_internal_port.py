"""With METRICS_PORT set (as the manifests do), /metrics and /internal/* answer only on that port: the public
port, which the Ingress reaches, does not serve them."""

from __future__ import annotations

from collections.abc import Callable

import httpx
from fastapi.testclient import TestClient

from app.main import create_app
from app.settings import Settings
from tests.servers import free_port


def test_internal_endpoints_move_to_their_own_port(make_settings: Callable[..., Settings]) -> None:
    port = free_port()
    settings = make_settings(metrics_port=port, metrics_host="127.0.0.1")
    with TestClient(create_app(settings)) as public:
        assert public.get("/healthz").status_code == 200
        assert public.get("/metrics").status_code == 404
        assert public.get("/internal/pending").status_code == 404
        internal = f"http://127.0.0.1:{port}"
        metrics = httpx.get(f"{internal}/metrics", timeout=5)
        assert metrics.status_code == 200 and "text/plain" in metrics.headers["content-type"]
        assert "# TYPE aistarter_model_pending_requests gauge" in metrics.text
        pending = httpx.get(f"{internal}/internal/pending", timeout=5)
        assert pending.status_code == 200 and isinstance(pending.json(), list)
        assert httpx.get(f"{internal}/chat", timeout=5).status_code == 404
    # Stopped with the app: the port is free again.
    with httpx.Client() as client:
        try:
            client.get(f"http://127.0.0.1:{port}/metrics", timeout=1)
            still_serving = True
        except httpx.TransportError:
            still_serving = False
    assert not still_serving


def test_without_metrics_port_the_app_serves_them_itself(client: TestClient) -> None:
    assert client.get("/metrics").status_code == 200
    assert client.get("/internal/pending").status_code == 200

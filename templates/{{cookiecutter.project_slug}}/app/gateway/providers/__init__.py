"""Provider adapters: each vendor's own HTTP API over httpx, normalised to `Event`s."""

from __future__ import annotations

import importlib
from typing import cast

import httpx

from app.gateway.base import Provider
from app.gateway.pool import ShardedTransport
from app.settings import Settings


def http_client(settings: Settings, provider: str) -> httpx.AsyncClient:
    # The gateway enforces the first-chunk timeout itself; httpx's read timeout bounds silence mid-stream.
    timeout = httpx.Timeout(connect=settings.timeout_for(provider) + 5.0, read=settings.stream_idle_timeout_s,
                            write=10.0, pool=10.0)
    return httpx.AsyncClient(timeout=timeout, transport=ShardedTransport())


def build(name: str, settings: Settings) -> Provider:
    """The adapter for one configured provider: the class `<Name>Provider` of app/gateway/providers/<name>.py
    (`my_vendor` -> `MyVendorProvider`), made with the settings and an HTTP client of its own."""
    if name == "fake":
        from app.gateway.providers.fake import FakeProvider

        return FakeProvider(settings)
    module = importlib.import_module(f"{__name__}.{name}")
    adapter = getattr(module, "".join(part.capitalize() for part in name.split("_")) + "Provider")
    return cast(Provider, adapter(settings, http_client(settings, name)))

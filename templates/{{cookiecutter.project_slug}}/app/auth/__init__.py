"""Who is calling: `current_tenant` is the one FastAPI dependency every protected route uses.
{%- if cookiecutter.auth == 'api_key' %}

API keys (`Authorization: Bearer <key>` or `X-API-Key`) are stored as sha256 hashes; each key has a
token-bucket rate limit (429 with Retry-After when empty). Manage keys with `python -m app.cli keys ...`.
{%- else %}

auth=none: every caller is the fixed tenant "anonymous". Put the API behind your own gateway or network
policy before exposing it.
{%- endif %}
"""

from __future__ import annotations

from fastapi import {% if cookiecutter.auth == 'api_key' %}HTTPException, {% endif %}Request
{%- if cookiecutter.streaming == 'websocket' %}
from starlette.websockets import WebSocket
{%- endif %}
{%- if cookiecutter.auth == 'api_key' %}

from app.auth.keys import authenticate, cached
from app.auth.ratelimit import FAILED_AUTH, LIMITER
from app.db.base import run_db
{%- endif %}

ANONYMOUS = "anonymous"
{%- if cookiecutter.auth == 'api_key' %}


def _presented_key(request: Request{% if cookiecutter.streaming == 'websocket' %} | WebSocket{% endif %}) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return request.headers.get("x-api-key") or None


async def current_tenant(request: Request) -> str:
    """The caller's tenant id; 401 without a valid key, 429 when the key's bucket is empty."""
    key = _presented_key(request)
    if key is None:
        raise HTTPException(401, "missing API key: send 'Authorization: Bearer <key>' (create one with "
                                 "`python -m app.cli keys create --tenant <name>`)",
                            headers={"WWW-Authenticate": "Bearer"})
    found = cached(key)
    if found is None:
        client = request.client.host if request.client else "unknown"
        if (blocked_s := FAILED_AUTH.wait(client)) > 0:
            raise HTTPException(429, f"too many invalid API keys from this address; retry in {blocked_s:.1f} s",
                                headers={"Retry-After": str(max(1, round(blocked_s + 0.49)))})
        found = await run_db(authenticate, key)
        if found is None:
            FAILED_AUTH.take(client)
            raise HTTPException(401, "invalid or revoked API key", headers={"WWW-Authenticate": "Bearer"})
    key_id, tenant = found
    wait_s = LIMITER.take(key_id)
    if wait_s > 0:
        raise HTTPException(429, f"rate limit exceeded for this API key; retry in {wait_s:.1f} s",
                            headers={"Retry-After": str(max(1, round(wait_s + 0.49)))})
    request.state.tenant = tenant
    request.state.api_key_id = key_id
    return tenant
{%- if cookiecutter.streaming == 'websocket' %}


def websocket_key(websocket: WebSocket) -> str | None:
    """The key from the upgrade request's headers. Never from the query string: URLs are logged (access
    logs, proxies); browsers, which cannot set headers, send it in the first message instead."""
    return _presented_key(websocket)


async def websocket_tenant(key: str | None) -> tuple[str, str] | str:
    """(tenant, key id), or the reason to refuse. Checked again before every request on the socket, so a
    revoked key stops working on an open connection too."""
    if key is None:
        return "missing API key: send an Authorization header or, first, {\"type\": \"auth\", \"api_key\": ...}"
    # Not the cache: a key revoked by the CLI or another replica must stop working on this socket now,
    # and one indexed lookup is small next to the model call it guards.
    found = await run_db(authenticate, key)
    if found is None:
        return "invalid or revoked API key"
    key_id, tenant = found
    return tenant, key_id


def rate_limited(key_id: str) -> float:
    return LIMITER.take(key_id)
{%- endif %}
{%- else %}


async def current_tenant(request: Request) -> str:
    request.state.tenant = ANONYMOUS
    request.state.api_key_id = None
    return ANONYMOUS
{%- if cookiecutter.streaming == 'websocket' %}


def websocket_key(websocket: WebSocket) -> str | None:
    return None


async def websocket_tenant(key: str | None) -> tuple[str, str | None] | str:
    return ANONYMOUS, None


def rate_limited(key_id: str | None) -> float:
    return 0.0
{%- endif %}
{%- endif %}

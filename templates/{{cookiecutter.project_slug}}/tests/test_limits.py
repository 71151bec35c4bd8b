"""Request body size limit (always on)."""

from __future__ import annotations

from typing import Any

import httpx


def test_oversized_body_is_a_413_with_the_fix(live: Any) -> None:
    big = {"messages": [{"role": "user", "content": "x" * 5000}]}
    with live(max_body_bytes=2000) as (url, headers):
        declared = httpx.post(f"{url}/v1/chat/completions", headers=headers, json=big, timeout=5)

        def chunks():  # no Content-Length: the limit must hold while the body streams in
            yield b'{"messages": [{"role": "user", "content": "'
            for _ in range(10):
                yield b"y" * 500
            yield b'"}]}'

        streamed = httpx.post(f"{url}/v1/chat/completions", content=chunks(), timeout=5,
                              headers={**headers, "content-type": "application/json"})
        small = httpx.post(f"{url}/v1/chat/completions", headers=headers, timeout=5,
                           json={"messages": [{"role": "user", "content": "fits"}]})
    for response in (declared, streamed):
        assert response.status_code == 413
        assert "MAX_BODY_BYTES" in response.json()["error"]["message"]
    assert small.status_code == 200

"""/playground: a chat page for trying prompts and models, showing why each answer happened.

Plain HTML, CSS and one JavaScript module shipped inside the package (no Node build). The page calls the
public API with a key the user types in (kept in sessionStorage, sent as a header, never in a URL), so it
has no powers of its own. Off when APP_ENV=production unless PLAYGROUND_ENABLED=true (see Settings).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request, Response

from app import prompts
from app.auth import current_tenant

STATIC = Path(__file__).with_name("static")
FILES = {"app.js": "text/javascript; charset=utf-8", "playground.css": "text/css; charset=utf-8"}

# No inline script or style anywhere, so the policy can forbid both; the page only talks to this origin.
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; "
       "base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}

router = APIRouter(tags=["playground"], include_in_schema=False)


def _file(name: str, media_type: str) -> Response:
    return Response((STATIC / name).read_bytes(), media_type=media_type, headers=SECURITY_HEADERS)


@router.get("/playground")
async def page() -> Response:
    return _file("index.html", "text/html; charset=utf-8")


@router.get("/playground/static/{name}")
async def static(name: str) -> Response:
    if name not in FILES:
        raise HTTPException(404, f"no playground file {name!r}")
    return _file(name, FILES[name])


@router.get("/playground/config")
async def config(request: Request, _: str = Depends(current_tenant)) -> dict[str, Any]:
    """What the page's pickers offer: prompt versions of the configured prompt, and the use case."""
    settings = request.app.state.settings
    return {
        "use_case": "{{ cookiecutter.use_case }}",
        "prompt_name": settings.prompt_name,
        "prompt_versions": prompts.versions(settings.prompts_dir, settings.prompt_name),
        "default_prompt_version": settings.prompt_version,
        "auth": "{{ cookiecutter.auth }}",
    }

"""`python -m app`: serve on the embedded defaults (SQLite; the fake provider unless keys are set)."""

import uvicorn

from app.settings import get_settings

settings = get_settings()
{%- if cookiecutter.auth == 'api_key' %}


def _first_key() -> None:
    # A fresh checkout has no API keys, so nothing could call the API: make one and show it once.
    from sqlalchemy import func, select

    from app.auth.keys import create_key
    from app.db import base as db
    from app.db.models import ApiKey

    db.configure(settings.database_url)
    db.upgrade(settings.database_url)
    with db.session_scope() as session:
        if session.scalar(select(func.count()).select_from(ApiKey)):
            return
    info, secret = create_key("dev", "created by `python -m app` on an empty database")
    print(f"\n  No API keys yet, so one was made for tenant 'dev' (id {info.id}). Use it as the bearer token:\n"
          f"  {secret}\n  Manage keys with `python -m app.cli keys --help`.\n", flush=True)


_first_key()
{%- endif %}
uvicorn.run("app.main:app", host=settings.host, port=settings.port, log_level=settings.log_level.lower())

"""`python -m app`: serve on the embedded defaults (SQLite, fake provider unless keys are set)."""

import uvicorn

from app.settings import get_settings

settings = get_settings()
uvicorn.run("app.main:app", host=settings.host, port=settings.port, log_level=settings.log_level.lower())

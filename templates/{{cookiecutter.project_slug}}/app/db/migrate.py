"""`python -m app.db.migrate`: apply every migration (`alembic upgrade heads`) once, then exit.

The deployment runs this as a Job before the API and worker roll out (they start with AUTO_MIGRATE=false), so
replicas never race on the schema.
"""

from __future__ import annotations

import sys

from app.db.base import configure, upgrade
from app.settings import get_settings


def main() -> int:
    settings = get_settings()
    configure(settings.database_url)
    try:
        upgrade(settings.database_url)
    except Exception as exc:  # one line for the Job's log; the Job retries with back-off
        print(f"migration failed: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}",
              file=sys.stderr, flush=True)
        return 1
    print("migrations applied", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

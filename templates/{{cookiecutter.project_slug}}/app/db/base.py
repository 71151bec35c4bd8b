"""Engine, sessions and the declarative base shared by every model module.

The app uses synchronous SQLAlchemy and runs database work in a worker thread (`run_db`): one short
transaction per request keeps that cheap, and it avoids a second (async) driver per database.
Other packages add their own models on `Base` and their own Alembic revisions off `0001_initial`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar, cast

import anyio.to_thread
from sqlalchemy import CursorResult, Engine, Result, create_engine, event
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

T = TypeVar("T")


class Base(DeclarativeBase):
    pass


def utcnow() -> datetime:
    return datetime.now(UTC)


def rowcount(result: Result[Any]) -> int:
    """The rows an UPDATE, DELETE or INSERT matched. `Session.execute` is typed to return a plain Result, but
    for these statements it returns a CursorResult, which carries the count."""
    return cast(CursorResult[Any], result).rowcount


_lock = threading.Lock()
_engine: Engine | None = None
_sessions: sessionmaker[Session] | None = None


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            # WAL lets readers run while the request path writes; foreign keys are off by default in SQLite.
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)


def configure(url: str) -> Engine:
    """Point the process at a database; calling it again with the same URL is a no-op."""
    global _engine, _sessions
    with _lock:
        if _engine is not None and _engine.url.render_as_string(hide_password=False) == url:
            return _engine
        if _engine is not None:
            _engine.dispose()
        _engine = make_engine(url)
        _sessions = sessionmaker(_engine, expire_on_commit=False)
        return _engine


def get_engine() -> Engine:
    if _engine is None:
        from app.settings import get_settings

        configure(get_settings().database_url)
    assert _engine is not None
    return _engine


@contextmanager
def session_scope() -> Iterator[Session]:
    """One transaction: commit on success, roll back on any exception."""
    get_engine()
    assert _sessions is not None
    session = _sessions()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


async def run_db(fn: Callable[..., T], *args: Any) -> T:
    """Run blocking database work off the event loop. Cancellation of the caller does not abort the commit."""
    return await anyio.to_thread.run_sync(fn, *args, abandon_on_cancel=False)


def upgrade(url: str | None = None) -> None:
    """`alembic upgrade heads` (plural: optional features add their own branches off 0001_initial)."""
    # Imported here: Alembic (and Mako) cost ~100 ms of import time that serving requests never needs.
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(Path(__file__).with_name("migrations")))
    target = url or get_engine().url.render_as_string(hide_password=False)
    # ConfigParser interpolates '%', which URL-encoded passwords contain.
    cfg.set_main_option("sqlalchemy.url", target.replace("%", "%%"))
    command.upgrade(cfg, "heads")

"""Storage: SQLAlchemy 2 models and Alembic migrations (SQLite embedded, PostgreSQL through DATABASE_URL)."""

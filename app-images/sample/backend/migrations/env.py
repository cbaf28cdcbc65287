"""Alembic environment of the TimeTracker sample backend.

The database URL comes from the app's own environment: DB_USER (default postgres),
DB_PASSWORD, DB_HOST (default localhost), DB_PORT (default 5432), DB_NAME (default DB_USER),
and is used with SQLAlchemy + psycopg2 (sync). The password is URL-quoted and never printed.

All pending revisions run in ONE transaction (PostgreSQL DDL is transactional): if any
revision fails, `alembic upgrade head` exits non-zero and nothing of that run is kept,
alembic_version included. A transaction-level advisory lock serialises concurrent runs
(two releases at once), so the second waits and then finds nothing to do.
"""
from __future__ import annotations

import os
from logging.config import fileConfig
from urllib.parse import quote_plus

from alembic import context
from sqlalchemy import create_engine, pool, text

config = context.config

if config.config_file_name is not None:
    fileConfig(config.config_file_name, disable_existing_loggers=False)

target_metadata = None  # the history is written by hand; no autogenerate
CONNECT_TIMEOUT_S = 10
# arbitrary constant: pg_advisory_xact_lock key held while migrations run
MIGRATION_LOCK_KEY = 7_202_501


def _env(name: str, default: str = "") -> str:
    value = os.environ.get(name)
    return default if value is None or value.strip() == "" else value.strip()


def database_url() -> str:
    user = _env("DB_USER", "postgres")
    password = _env("DB_PASSWORD")
    host = _env("DB_HOST", "localhost")
    port = _env("DB_PORT", "5432")
    name = _env("DB_NAME", user)
    auth = quote_plus(user) + (":" + quote_plus(password) if password else "")
    return f"postgresql+psycopg2://{auth}@{host}:{port}/{quote_plus(name)}"


def describe_target() -> str:
    """Where migrations run, for the log: never the password."""
    user = _env("DB_USER", "postgres")
    return (
        f"{user}@{_env('DB_HOST', 'localhost')}:{_env('DB_PORT', '5432')}/{_env('DB_NAME', user)} "
        f"(password {'set' if _env('DB_PASSWORD') else 'unset'})"
    )


def run_migrations_offline() -> None:
    """`alembic upgrade head --sql`: print the SQL instead of running it."""
    context.configure(
        url=database_url(),
        target_metadata=target_metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
        transaction_per_migration=False,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    context.config.print_stdout("migrating %s", describe_target())
    engine = create_engine(
        database_url(),
        poolclass=pool.NullPool,
        connect_args={"connect_timeout": CONNECT_TIMEOUT_S, "application_name": "alembic"},
    )
    try:
        with engine.connect() as connection:
            context.configure(
                connection=connection,
                target_metadata=target_metadata,
                transaction_per_migration=False,
            )
            with context.begin_transaction():
                connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
                context.run_migrations()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()

"""TimeTracker sample backend.

A small FastAPI app shaped like the real TimeTracker backend, used when no real app source is
configured. Importing this module needs no environment and no running database or Redis:
connections are made lazily, so the process starts (and /health answers) while they are down.

The app does not create or change its schema: the Alembic history in migrations/ owns it.
Run the release command `alembic upgrade head` (in /srv, same DB_* environment) before the
app serves a new schema; until the items table exists, the items endpoints answer 503
"database schema not migrated: run the release command (alembic upgrade head)".

Environment (all optional):
  DB_USER DB_PASSWORD DB_HOST DB_PORT DB_NAME      PostgreSQL (asyncpg; migrations: psycopg2)
  REDIS_HOST REDIS_PORT REDIS_PASSWORD             Redis
  ALLOWED_HOSTS   JSON list of Host header values accepted (TrustedHostMiddleware)
  CORS_ORIGINS    JSON list of allowed CORS origins
  SECRET_KEY ENVIRONMENT DEBUG
  TIMETRACKER_IMAGE           image reference reported by /api/version (default "unknown")
  SAMPLE_START_DELAY_SECONDS  seconds (float, default 0) to sleep in the startup hook, before
                              uvicorn binds its port: simulates a slow-starting app (the port
                              refuses connections meanwhile)

Files:
  app/build_id.txt            optional; its stripped contents are /api/version's "build"

Endpoints:
  GET  /health          liveness, no dependency checks -> {"status": "ok"}
  GET  /api/health      readiness: SELECT 1 on PostgreSQL and PING on Redis (200 or 503)
  GET  /api/version     {"image": .., "build": .. or null, "schema": alembic revision or null};
                        200 even while the database is down (schema is null then)
  GET  /api/items       items ordered by id (503 while the schema is not migrated)
  POST /api/items       {"name": "..."} -> 201 {"id": .., "name": ..}
  WS   /api/ws/echo     echoes every text message
"""
from __future__ import annotations

import asyncio
import json
import logging
import os
from pathlib import Path
from typing import Any, Dict, List, Optional

import asyncpg
import redis.asyncio as aioredis
from fastapi import FastAPI, HTTPException, WebSocket, WebSocketDisconnect
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.middleware.trustedhost import TrustedHostMiddleware

log = logging.getLogger("timetracker")

DEFAULT_ALLOWED_HOSTS = ["localhost", "127.0.0.1"]
CHECK_TIMEOUT_S = 5.0
BUILD_ID_FILE = Path(__file__).resolve().parent / "build_id.txt"
NOT_MIGRATED = "database schema not migrated: run the release command (alembic upgrade head)"


# --------------------------------------------------------------------------- settings
def _env(name: str, default: str = "") -> str:
    value = os.environ.get(name)
    return default if value is None or value.strip() == "" else value.strip()


def _env_int(name: str, default: int) -> int:
    raw = _env(name)
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        log.warning("%s=%r is not an integer; using %d", name, raw, default)
        return default


def _env_float(name: str, default: float) -> float:
    raw = _env(name)
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        log.warning("%s=%r is not a number; using %g", name, raw, default)
        return default
    if value != value or value < 0 or value == float("inf"):  # NaN, negative, infinite
        log.warning("%s=%r is not a finite number >= 0; using %g", name, raw, default)
        return default
    return value


def _env_bool(name: str, default: bool = False) -> bool:
    raw = _env(name).lower()
    if not raw:
        return default
    return raw in ("1", "true", "yes", "on")


def _env_list(name: str, default: List[str]) -> List[str]:
    """A JSON list of strings; a bare JSON string or a comma-separated value also works."""
    raw = _env(name)
    if not raw:
        return list(default)
    try:
        value: Any = json.loads(raw)
    except ValueError:
        value = [part for part in raw.split(",")]
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        log.warning("%s is not a JSON list; using the default", name)
        return list(default)
    items = [str(v).strip() for v in value if str(v).strip()]
    return items or list(default)


class Settings:
    def __init__(self) -> None:
        self.db_user = _env("DB_USER", "postgres")
        self.db_password = _env("DB_PASSWORD")
        self.db_host = _env("DB_HOST", "localhost")
        self.db_port = _env_int("DB_PORT", 5432)
        self.db_name = _env("DB_NAME", self.db_user)
        self.redis_host = _env("REDIS_HOST", "localhost")
        self.redis_port = _env_int("REDIS_PORT", 6379)
        self.redis_password = _env("REDIS_PASSWORD")
        self.secret_key = _env("SECRET_KEY")
        self.environment = _env("ENVIRONMENT", "development")
        self.debug = _env_bool("DEBUG")
        self.allowed_hosts = _env_list("ALLOWED_HOSTS", DEFAULT_ALLOWED_HOSTS)
        self.cors_origins = _env_list("CORS_ORIGINS", [])
        self.image = _env("TIMETRACKER_IMAGE", "unknown")
        self.start_delay_s = _env_float("SAMPLE_START_DELAY_SECONDS", 0.0)

    def secrets(self) -> List[str]:
        return [s for s in (self.db_password, self.redis_password, self.secret_key) if s]

    def describe(self) -> str:
        """Configuration summary for the log: never includes secret values."""
        return (
            f"environment={self.environment} debug={self.debug} "
            f"db={self.db_user}@{self.db_host}:{self.db_port}/{self.db_name} "
            f"db_password={'set' if self.db_password else 'unset'} "
            f"redis={self.redis_host}:{self.redis_port} "
            f"redis_password={'set' if self.redis_password else 'unset'} "
            f"secret_key={'set' if self.secret_key else 'unset'} "
            f"allowed_hosts={self.allowed_hosts} cors_origins={self.cors_origins} "
            f"image={self.image} start_delay={self.start_delay_s:g}s"
        )


settings = Settings()

logging.basicConfig(
    level=logging.DEBUG if settings.debug else logging.INFO,
    format="%(asctime)s %(levelname)s %(name)s: %(message)s",
)


def _reason(exc: BaseException) -> str:
    """A short, secret-free description of an error."""
    text = f"{type(exc).__name__}: {exc}".strip().rstrip(":")
    if isinstance(exc, asyncio.TimeoutError):
        text = "timed out"
    for secret in settings.secrets():
        text = text.replace(secret, "***")
    return text[:300]


# --------------------------------------------------------------------------- dependencies
class _State:
    pool: Optional[asyncpg.pool.Pool] = None
    pool_lock: Optional[asyncio.Lock] = None
    redis: Optional[aioredis.Redis] = None


state = _State()


def _read_build_id() -> Optional[str]:
    """The stripped contents of app/build_id.txt; None when it is absent, unreadable or empty."""
    try:
        text = BUILD_ID_FILE.read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return None
    return text or None


BUILD_ID = _read_build_id()


async def get_pool() -> asyncpg.pool.Pool:
    """The asyncpg pool, created on first use; a failed attempt is retried on the next call."""
    if state.pool is not None:
        return state.pool
    if state.pool_lock is None:
        state.pool_lock = asyncio.Lock()
    async with state.pool_lock:
        if state.pool is None:
            pool = asyncpg.create_pool(
                user=settings.db_user,
                password=settings.db_password or None,
                host=settings.db_host,
                port=settings.db_port,
                database=settings.db_name,
                min_size=1,
                max_size=5,
                timeout=CHECK_TIMEOUT_S,
                command_timeout=CHECK_TIMEOUT_S,
            )
            try:
                await asyncio.wait_for(pool, timeout=CHECK_TIMEOUT_S * 2)
            except BaseException:
                pool.terminate()
                raise
            state.pool = pool
            log.info("connected to PostgreSQL at %s:%s", settings.db_host, settings.db_port)
    return state.pool


def get_redis() -> aioredis.Redis:
    if state.redis is None:
        state.redis = aioredis.Redis(
            host=settings.redis_host,
            port=settings.redis_port,
            password=settings.redis_password or None,
            socket_connect_timeout=CHECK_TIMEOUT_S,
            socket_timeout=CHECK_TIMEOUT_S,
        )
    return state.redis


# --------------------------------------------------------------------------- app
app = FastAPI(title="TimeTracker sample backend", version="0.1.0", debug=settings.debug)

app.add_middleware(TrustedHostMiddleware, allowed_hosts=settings.allowed_hosts)
if settings.cors_origins:
    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.cors_origins,
        allow_credentials=True,
        allow_methods=["*"],
        allow_headers=["*"],
    )


@app.on_event("startup")
async def _startup() -> None:
    log.info("starting TimeTracker sample backend: %s", settings.describe())
    log.info("build=%s", BUILD_ID if BUILD_ID is not None else "none")
    if settings.start_delay_s > 0:
        # uvicorn runs the startup hooks before it binds the port: connections are refused
        # for the whole delay, like a real app that is slow to start
        log.info("start delay: %g s", settings.start_delay_s)
        await asyncio.sleep(settings.start_delay_s)
        log.info("start delay over; listening")


@app.on_event("shutdown")
async def _shutdown() -> None:
    if state.pool is not None:
        try:
            await asyncio.wait_for(state.pool.close(), timeout=CHECK_TIMEOUT_S)
        except Exception:  # noqa: BLE001
            state.pool.terminate()
        state.pool = None
    if state.redis is not None:
        try:
            await state.redis.close()
        except Exception:  # noqa: BLE001
            pass
        state.redis = None


@app.get("/")
async def root() -> Dict[str, str]:
    return {"service": "timetracker-backend", "docs": "/docs", "health": "/api/health"}


@app.get("/health")
async def health() -> Dict[str, str]:
    """Liveness only: answers while the process serves requests."""
    return {"status": "ok"}


async def _check_database() -> str:
    try:
        pool = await get_pool()
        value = await asyncio.wait_for(pool.fetchval("SELECT 1"), timeout=CHECK_TIMEOUT_S)
        if value != 1:
            return f"unhealthy: SELECT 1 returned {value!r}"
        return "healthy"
    except Exception as exc:  # noqa: BLE001
        return f"unhealthy: {_reason(exc)}"


async def _check_redis() -> str:
    try:
        pong = await asyncio.wait_for(get_redis().ping(), timeout=CHECK_TIMEOUT_S)
        return "healthy" if pong else "unhealthy: PING did not return PONG"
    except Exception as exc:  # noqa: BLE001
        return f"unhealthy: {_reason(exc)}"


async def _schema_revision() -> Optional[str]:
    """The Alembic revision the database is at; None when unknown (DB down, never migrated)."""
    try:
        pool = await asyncio.wait_for(get_pool(), timeout=CHECK_TIMEOUT_S)
        value = await asyncio.wait_for(
            pool.fetchval("SELECT version_num FROM alembic_version"), timeout=CHECK_TIMEOUT_S
        )
    except Exception as exc:  # noqa: BLE001
        log.debug("schema revision unavailable: %s", _reason(exc))
        return None
    return str(value) if value is not None else None


@app.get("/api/version")
async def api_version() -> Dict[str, Optional[str]]:
    return {"image": settings.image, "build": BUILD_ID, "schema": await _schema_revision()}


@app.get("/api/health")
async def api_health() -> JSONResponse:
    database, redis_status = await asyncio.gather(_check_database(), _check_redis())
    checks = {"database": database, "redis": redis_status}
    ok = all(v == "healthy" for v in checks.values())
    body = {
        "status": "healthy" if ok else "unhealthy",
        "environment": settings.environment,
        "checks": checks,
    }
    return JSONResponse(body, status_code=200 if ok else 503)


class ItemIn(BaseModel):
    name: str = Field(..., min_length=1, max_length=500)


async def _db_or_503() -> asyncpg.pool.Pool:
    try:
        return await get_pool()
    except Exception as exc:  # noqa: BLE001
        raise HTTPException(status_code=503, detail=f"database unavailable: {_reason(exc)}")


def _query_error(exc: Exception) -> HTTPException:
    if isinstance(exc, asyncpg.UndefinedTableError):
        log.warning("%s (%s)", NOT_MIGRATED, _reason(exc))
        return HTTPException(status_code=503, detail=NOT_MIGRATED)
    return HTTPException(status_code=503, detail=f"database error: {_reason(exc)}")


@app.post("/api/items", status_code=201)
async def create_item(item: ItemIn) -> Dict[str, Any]:
    pool = await _db_or_503()
    try:
        row = await pool.fetchrow("INSERT INTO items (name) VALUES ($1) RETURNING id, name", item.name)
    except Exception as exc:  # noqa: BLE001
        raise _query_error(exc)
    return {"id": row["id"], "name": row["name"]}


@app.get("/api/items")
async def list_items() -> List[Dict[str, Any]]:
    pool = await _db_or_503()
    try:
        rows = await pool.fetch("SELECT id, name, created_at FROM items ORDER BY id")
    except Exception as exc:  # noqa: BLE001
        raise _query_error(exc)
    return [
        {
            "id": r["id"],
            "name": r["name"],
            "created_at": r["created_at"].isoformat() if r["created_at"] else None,
        }
        for r in rows
    ]


@app.websocket("/api/ws/echo")
async def ws_echo(websocket: WebSocket) -> None:
    await websocket.accept()
    try:
        while True:
            message = await websocket.receive_text()
            await websocket.send_text(message)
    except WebSocketDisconnect:
        pass

"""One engine per process and URL; the schema is created and upgraded on first use.

Migrations are a numbered list of functions run in order inside one transaction; the version reached
is stored in ``cxnlp_schema``. SQLite gets WAL and a busy timeout so that several writers (threads or
processes) queue instead of failing, and real transactions: the driver's own transaction handling is
switched off and SQLAlchemy emits BEGIN itself (the driver's would let a SAVEPOINT commit rows on its
own and never start a transaction for reads). A connection opened with the execution option
``sqlite_begin="IMMEDIATE"`` takes the write lock at BEGIN, so what it reads next is what it updates.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import orjson
from sqlalchemy import Connection, Engine, create_engine, event, inspect, select, text
from sqlalchemy.orm import Session, sessionmaker

from cxnlp.errors import LedgerError
from cxnlp.ledger.models import Base, SchemaVersion

SCHEMA_VERSION = 2


def _v1(conn: Connection) -> None:
    Base.metadata.create_all(conn)


def _v2(conn: Connection) -> None:
    """The record version used for compare-and-set updates (tables created by ``_v1`` today have it)."""
    if "version" not in {c["name"] for c in inspect(conn).get_columns("feedback")}:
        conn.execute(text("ALTER TABLE feedback ADD COLUMN version INTEGER NOT NULL DEFAULT 1"))


MIGRATIONS: dict[int, Callable[[Connection], None]] = {1: _v1, 2: _v2}

_ENGINES: dict[str, Engine] = {}
_LOCK = threading.Lock()


def get_engine(url: str) -> Engine:
    """The process's engine for ``url``, with the schema brought up to date."""
    engine = _ENGINES.get(url)
    if engine is not None:
        return engine
    with _LOCK:
        if url not in _ENGINES:
            _ENGINES[url] = _create(url)
    return _ENGINES[url]


def _json_dumps(value: object) -> str:
    """JSON columns written with orjson (a ledger run writes five per record; the stdlib is the slow part)."""
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY).decode("utf-8")


def _create(url: str) -> Engine:
    try:
        if url.startswith("sqlite"):
            engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False},
                                   json_serializer=_json_dumps)

            @event.listens_for(engine, "connect")
            def _pragmas(dbapi_conn, _record) -> None:  # pragma: no cover - exercised via SQLite tests
                dbapi_conn.isolation_level = None  # SQLAlchemy begins transactions (below), not the driver
                cur = dbapi_conn.cursor()
                cur.execute("PRAGMA journal_mode=WAL")
                cur.execute("PRAGMA synchronous=NORMAL")
                cur.execute("PRAGMA foreign_keys=ON")
                cur.close()

            @event.listens_for(engine, "begin")
            def _begin(conn: Connection) -> None:  # pragma: no cover - exercised via SQLite tests
                mode = conn.get_execution_options().get("sqlite_begin", "")
                conn.exec_driver_sql(f"BEGIN {mode}" if mode in ("IMMEDIATE", "EXCLUSIVE") else "BEGIN")
        else:
            engine = create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20, json_serializer=_json_dumps)
        try:
            upgrade(engine)
        except Exception:  # noqa: BLE001 - another process may be creating the schema right now
            time.sleep(0.5)
            upgrade(engine)
    except LedgerError:
        raise
    except Exception as exc:  # noqa: BLE001 - driver errors vary; the user needs the URL and the reason
        raise LedgerError(f"cannot open the ledger at {_safe(url)}: {exc}") from exc
    return engine


def upgrade(engine: Engine) -> int:
    """Run the migrations the database has not seen yet; returns the schema version."""
    with engine.begin() as conn:
        if not inspect(conn).has_table(SchemaVersion.__tablename__):
            SchemaVersion.__table__.create(conn)
        row = conn.execute(select(SchemaVersion.version).where(SchemaVersion.id == 1)).scalar()
        current = row or 0
        if current > SCHEMA_VERSION:
            raise LedgerError(f"the ledger's schema version {current} is newer than this cxnlp ({SCHEMA_VERSION}): upgrade cxnlp")
        for version in range(current + 1, SCHEMA_VERSION + 1):
            MIGRATIONS[version](conn)
        if current == 0:
            conn.execute(SchemaVersion.__table__.insert().values(id=1, version=SCHEMA_VERSION))
        elif current < SCHEMA_VERSION:
            conn.execute(SchemaVersion.__table__.update().values(version=SCHEMA_VERSION))
    return SCHEMA_VERSION


def prepare(url: str) -> int:
    """Create or upgrade the schema with a short-lived engine (``cxnlp serve`` does this before it forks
    workers, so they never race to create tables)."""
    engine = _create(url)
    engine.dispose()
    return SCHEMA_VERSION


@contextmanager
def session_scope(url: str) -> Iterator[Session]:
    """A session that commits on success and rolls back on any error."""
    factory = sessionmaker(get_engine(url), expire_on_commit=False)
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def lock_for_write(session: Session) -> None:
    """On SQLite, take the database's write lock before this session reads what it will change.

    A SQLite transaction that reads first and writes later fails at once ("database is locked") when
    another process wrote in between; one that starts with ``BEGIN IMMEDIATE`` waits its turn instead
    and then reads the latest data. A session already inside a transaction takes the lock with its
    next statement, a write that changes nothing. PostgreSQL needs nothing here (row locks and
    ``ON CONFLICT`` do the work)."""
    if session.get_bind().dialect.name != "sqlite":
        return
    if not session.in_transaction():
        session.connection(execution_options={"sqlite_begin": "IMMEDIATE"})
    else:
        session.execute(text("UPDATE cxnlp_schema SET version = version WHERE id = -1"))


def _safe(url: str) -> str:
    """The URL without its password."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        return f"{scheme}://{creds.split(':')[0]}:***@{host}"
    return url

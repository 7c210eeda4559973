"""One engine per process and URL; the schema is created and upgraded on first use.

Migrations are Alembic revisions shipped in ``cxnlp/ledger/migrations``, run in one transaction when a
ledger is opened. A ledger of release 1.0.x (numbered schema in ``cxnlp_schema``, no Alembic table) is
stamped with the matching revision first and then upgraded in place. SQLite gets WAL and a busy timeout so that several writers (threads or
processes) queue instead of failing, and real transactions: the driver's own transaction handling is
switched off and SQLAlchemy emits BEGIN itself (the driver's would let a SAVEPOINT commit rows on its
own and never start a transaction for reads). A connection opened with the execution option
``sqlite_begin="IMMEDIATE"`` takes the write lock at BEGIN, so what it reads next is what it updates.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from importlib import resources
from contextlib import contextmanager

import orjson
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, inspect, select, text
from sqlalchemy.orm import Session, sessionmaker

from cxnlp.errors import LedgerBusyError, LedgerError
from cxnlp.ledger.models import SchemaVersion

# The Alembic revision each numbered schema version of releases 1.0.x corresponds to.
LEGACY_REVISIONS = {1: "0001", 2: "0002"}
# Seconds a SQLite statement waits for another writer's lock before it fails with LedgerBusyError.
SQLITE_BUSY_TIMEOUT = 30.0

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
            _make_folder(url)
            # Last in, first out: the connection just returned serves the next session, so only as many
            # connections as run at once warm a page cache (up to 2 MB each); first in, first out, every
            # pooled connection of a service worker filled its own as the ledger grew.
            engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT, "check_same_thread": False},
                                   json_serializer=_json_dumps, pool_use_lifo=True)

            @event.listens_for(engine, "handle_error")
            def _busy(context) -> None:  # pragma: no cover - exercised via SQLite tests
                if "database is locked" in str(context.original_exception):
                    raise LedgerBusyError(
                        f"the ledger {_safe(url)} is locked by another writer (waited {SQLITE_BUSY_TIMEOUT:g} s); "
                        "nothing was changed: try again when it has finished") from context.original_exception

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


def _alembic_config(conn: Connection) -> "Any":
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(resources.files("cxnlp.ledger") / "migrations"))
    config.attributes["connection"] = conn
    return config


def head_revision() -> str:
    from alembic.script import ScriptDirectory

    return ScriptDirectory(str(resources.files("cxnlp.ledger") / "migrations")).get_current_head()


def upgrade(engine: Engine) -> str:
    """Run the migrations the database has not seen yet; returns the revision reached."""
    from alembic import command
    from alembic.runtime.migration import MigrationContext

    head = head_revision()
    with engine.begin() as conn:
        current = MigrationContext.configure(conn).get_current_revision()
        config = _alembic_config(conn)
        if current is None and inspect(conn).has_table(SchemaVersion.__tablename__):
            legacy = conn.execute(select(SchemaVersion.version).where(SchemaVersion.id == 1)).scalar() or 0
            if legacy not in LEGACY_REVISIONS:
                raise LedgerError(f"the ledger's schema version {legacy} is unknown to this cxnlp: upgrade cxnlp")
            command.stamp(config, LEGACY_REVISIONS[legacy])
            current = LEGACY_REVISIONS[legacy]
        if current == head:
            return head
        try:
            command.upgrade(config, "head")
        except Exception as exc:  # noqa: BLE001 - alembic's "can't locate revision" for a newer ledger
            if "Can't locate revision" in str(exc):
                raise LedgerError(f"the ledger's schema {current} is newer than this cxnlp ({head}): upgrade cxnlp") from exc
            raise
    return head


def prepare(url: str) -> str:
    """Create or upgrade the schema with a short-lived engine (``cxnlp serve`` does this before it forks
    workers, so they never race to create tables)."""
    engine = _create(url)
    engine.dispose()
    return head_revision()


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


def limit_sqlite_heap(max_bytes: int) -> None:
    """Ask SQLite to keep the heap it uses in this process (the page caches of all its connections, up to
    2 MB each) within ``max_bytes``: past it, SQLite recycles cached pages instead of allocating more.

    A soft, process-wide limit (``PRAGMA soft_heap_limit``) that forked workers inherit: for a long-running
    service, whose pooled connections otherwise each fill their own cache as the ledger grows. Ledger
    queries scan more pages than a cache holds anyway, and the system's file cache serves the rest.
    0 lifts the limit."""
    import sqlite3
    from contextlib import closing

    with closing(sqlite3.connect(":memory:")) as conn:
        conn.execute(f"PRAGMA soft_heap_limit={int(max_bytes)}")


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


def _make_folder(url: str) -> None:
    """The folder of a SQLite file (the per-user data folder on first use)."""
    from sqlalchemy.engine import make_url

    database = make_url(url).database
    if database and database != ":memory:" and not database.startswith("file:"):
        from pathlib import Path

        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)


def describe(url: str) -> str:
    """Where a ledger is, for the line every ledger command prints (no password)."""
    return _safe(url)


def _safe(url: str) -> str:
    """The URL without its password."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        return f"{scheme}://{creds.split(':')[0]}:***@{host}"
    return url

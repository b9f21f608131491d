"""Engine and sessions.

SQLite: WAL, foreign keys, a busy timeout, and every write transaction starts with ``BEGIN IMMEDIATE`` so two
writers never both read a balance and then fight over the upgrade to a write lock (SQLite would fail one of
them with "database is locked" instead of waiting). Reads use a plain deferred ``BEGIN`` so they never block.
PostgreSQL runs through psycopg 3 under READ COMMITTED; its conditional UPDATEs need nothing more.
"""

from __future__ import annotations

import threading
import weakref
from collections import namedtuple
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, make_url, text
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.sql import ClauseElement

SQLITE_BUSY_TIMEOUT_MS = 15_000
_WRITE_OPTION = "studio_write"


class DatabaseUnavailable(RuntimeError):
    """The database cannot be reached; the message says which one (without its password)."""


def normalise_url(url: str) -> str:
    """Let people write ``postgresql://`` and still get psycopg 3 (SQLAlchemy would pick psycopg2)."""
    u = make_url(url)
    if u.drivername in ("postgresql", "postgres"):
        u = u.set(drivername="postgresql+psycopg")
    return u.render_as_string(hide_password=False)


def safe_url(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record):  # pragma: no cover - exercised by every test
        # Hand transaction control to SQLAlchemy's "begin" event below (pysqlite would otherwise
        # issue its own deferred BEGIN lazily).
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cur.execute("PRAGMA journal_mode = WAL")
        cur.execute("PRAGMA foreign_keys = ON")
        cur.execute("PRAGMA synchronous = NORMAL")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn):
        if conn.get_execution_options().get(_WRITE_OPTION):
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            conn.exec_driver_sql("BEGIN")


def create_db_engine(url: str, *, echo: bool = False) -> Engine:
    url = normalise_url(url)
    u = make_url(url)
    if u.get_backend_name() == "sqlite":
        if u.database and u.database != ":memory:":
            Path(u.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, echo=echo,
                               connect_args={"check_same_thread": False,
                                             "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})
        _configure_sqlite(engine)
        return engine
    connect_args = {}
    if u.get_backend_name() == "postgresql":
        connect_args = {"connect_timeout": 10,
                        # a deadlock or a stuck lock fails fast instead of hanging a page
                        "options": "-c lock_timeout=15000 -c statement_timeout=60000"}
    return create_engine(url, echo=echo, pool_pre_ping=True, pool_size=10, max_overflow=20,
                         connect_args=connect_args)


class Database:
    """The engine plus two session factories: ``read()`` and ``write()`` (IMMEDIATE on SQLite)."""

    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = normalise_url(url)
        self.engine = create_db_engine(self.url, echo=echo)
        self.is_sqlite = self.engine.dialect.name == "sqlite"
        self._read = sessionmaker(self.engine, expire_on_commit=False)
        self._write_engine = self.engine.execution_options(**{_WRITE_OPTION: True})
        self._write_lock = threading.RLock() if self.is_sqlite else None
        self._write = sessionmaker(self._write_engine, expire_on_commit=False)
        self._compiled: weakref.WeakKeyDictionary[ClauseElement, _Compiled] = weakref.WeakKeyDictionary()

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def read(self) -> Iterator[Session]:
        # Closing the session hands the connection back to the pool, which rolls the read transaction back.
        with self._read() as session:
            yield session

    @contextmanager
    def write(self) -> Iterator[Session]:
        """One write transaction: committed when the block ends, rolled back on any exception."""
        with self._writer_turn(), self._write() as session, session.begin():
            yield session

    @contextmanager
    def write_raw(self, *, one_statement: bool = False) -> Iterator[RawTransaction]:
        """A write transaction straight on the driver's connection, for the hottest money paths (the ledger's
        holds). Same pool, same connect-time settings, same BEGIN IMMEDIATE on SQLite and the same one-writer
        queue as write(); statements are still SQLAlchemy Core expressions, compiled once per dialect
        (``RawTransaction``). Committed when the block ends, rolled back on any exception.

        ``one_statement=True`` promises the block runs a single statement: PostgreSQL then runs it as its own
        transaction (autocommit), saving the BEGIN and COMMIT round trips; SQLite is unchanged."""
        autocommit = one_statement and not self.is_sqlite
        with self._writer_turn():
            fairy = self.engine.raw_connection()  # checkout: pre-ping on PostgreSQL, like engine.begin()
            cursor = None
            try:
                if autocommit:
                    fairy.dbapi_connection.autocommit = True
                cursor = fairy.cursor()
                if self.is_sqlite:
                    cursor.execute("BEGIN IMMEDIATE")
                tx = RawTransaction(cursor, self.engine.dialect, self._compiled, one_statement=one_statement)
                yield tx
                if not autocommit:
                    fairy.commit()
            except BaseException as exc:
                self._after_raw_error(fairy, cursor, exc)
                raise
            finally:
                if cursor is not None:
                    cursor.close()
                if autocommit and fairy.dbapi_connection is not None:
                    fairy.dbapi_connection.autocommit = False  # the pool hands out transactional connections
                fairy.close()  # back to the pool

    def _after_raw_error(self, fairy, cursor, exc: BaseException) -> None:
        orig = exc.orig if isinstance(exc, DBAPIError) else exc
        if isinstance(orig, self.engine.dialect.loaded_dbapi.Error) and self.engine.dialect.is_disconnect(
                orig, fairy.dbapi_connection, cursor):
            fairy.invalidate(orig)  # a dead connection never goes back to the pool
            return
        try:
            fairy.rollback()
        except self.engine.dialect.loaded_dbapi.Error:
            fairy.invalidate()

    def _writer_turn(self):
        """SQLite admits one writer at a time. Threads of this process queue on a lock for their turn instead
        of in SQLite's busy handler, which sleeps in growing steps (up to 100 ms) and so wastes most of the
        time under contention; other processes still wait through the busy timeout."""
        return self._write_lock if self._write_lock is not None else nullcontext()

    def serialize(self, session: Session | Connection, name: str) -> None:
        """Make concurrent write transactions that pass the same name run one after another, until commit.

        SQLite needs nothing (BEGIN IMMEDIATE already admits one writer); PostgreSQL takes a transaction-level
        advisory lock, for check-then-insert rules no constraint can express (e.g. "the first user is admin").
        """
        if not self.is_sqlite:
            session.execute(text("SELECT pg_advisory_xact_lock(hashtext(:name))"), {"name": name})

    def ping(self) -> None:
        try:
            with self.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except OperationalError as exc:
            raise DatabaseUnavailable(
                f"Cannot reach the database at {safe_url(self.url)}: {exc.orig or exc}") from None

    def dispose(self) -> None:
        self.engine.dispose()


# -- the raw write path ----------------------------------------------------------------------------------------
# SQLAlchemy's execution machinery (execution context, events, result wrapping) costs ~40 µs a statement, more
# than SQLite takes to run one of the ledger's. write_raw() keeps the statements as Core expressions but runs
# their compiled SQL on the DB-API cursor, applying the same bind and result processors SQLAlchemy would.
class _Compiled:
    __slots__ = ("sql", "order", "defaults", "bind_processors", "row_type", "result_processors")

    def __init__(self, statement: ClauseElement, dialect: Dialect) -> None:
        compiled = statement.compile(dialect=dialect)
        if compiled.insert_prefetch or compiled.update_prefetch:
            # Python-side column defaults are computed by SQLAlchemy's execution context, which this path skips.
            raise ValueError("write_raw() runs statements that give every defaulted column a value; this one "
                             f"leaves {[c.key for c in compiled.insert_prefetch + compiled.update_prefetch]}")
        self.sql = compiled.string
        required = {bp.key: None for bp in compiled.binds.values() if bp.required}
        # Values fixed in the statement (literals, Python values in WHERE clauses), by their rendered names.
        self.defaults = compiled.construct_params(required)
        self.order = tuple(compiled.positiontup) if compiled.positional else None
        self.bind_processors = {}
        for bp, name in compiled.bind_names.items():
            processor = bp.type.dialect_impl(dialect).bind_processor(dialect)
            if processor is not None:
                self.bind_processors[name] = processor
        columns = list(getattr(statement, "exported_columns", ()))
        self.row_type = namedtuple("RawRow", [c.key for c in columns], rename=True) if columns else None
        self.result_processors = [c.type.dialect_impl(dialect).result_processor(dialect, None) for c in columns]

    def parameters(self, params: Mapping[str, Any] | None) -> Any:
        values = {**self.defaults, **params} if params else dict(self.defaults)
        for name, processor in self.bind_processors.items():
            values[name] = processor(values[name])
        return values if self.order is None else [values[name] for name in self.order]

    def row(self, raw: tuple) -> tuple:
        return self.row_type._make(v if p is None else p(v) for v, p in zip(raw, self.result_processors,
                                                                              strict=True))


class RawResult:
    """The little of CursorResult the ledger uses: first(), all(), scalar(), scalar_one(), rowcount."""

    __slots__ = ("rows", "rowcount")

    def __init__(self, rows: list[tuple], rowcount: int) -> None:
        self.rows = rows
        self.rowcount = rowcount

    def first(self) -> tuple | None:
        return self.rows[0] if self.rows else None

    def all(self) -> list[tuple]:
        return self.rows

    def scalar(self) -> Any:
        return self.rows[0][0] if self.rows else None

    def scalar_one(self) -> Any:
        if len(self.rows) != 1:
            raise LookupError(f"expected exactly one row, got {len(self.rows)}")
        return self.rows[0][0]


class RawTransaction:
    """Runs Core statements on one DB-API cursor inside Database.write_raw(). Quacks like a Connection for
    ``execute(statement, params)`` and ``scalar(statement, params)``, so code written against one runs on both.
    Compiled forms are cached per statement object: module-level statements compile once, statements built
    per call compile per call (and leave the cache with their last reference)."""

    __slots__ = ("_cursor", "_dialect", "_cache", "_statements_left", "_bundle_begin")

    def __init__(self, cursor: Any, dialect: Dialect, cache: weakref.WeakKeyDictionary, *,
                 one_statement: bool = False) -> None:
        self._cursor = cursor
        self._dialect = dialect
        self._cache = cache
        self._statements_left = 1 if one_statement else -1
        self._bundle_begin = dialect.name == "postgresql" and not one_statement

    def execute(self, statement: ClauseElement, params: Mapping[str, Any] | None = None) -> RawResult:
        if self._statements_left == 0:
            raise RuntimeError("write_raw(one_statement=True) runs one statement; open a transaction for more")
        self._statements_left -= 1
        compiled = self._cache.get(statement)
        if compiled is None:
            compiled = self._cache[statement] = _Compiled(statement, self._dialect)
        parameters = compiled.parameters(params)
        cursor = self._cursor
        try:
            if self._bundle_begin:
                # psycopg sends BEGIN on its own round trip; in pipeline mode it travels with this statement
                self._bundle_begin = False
                with cursor.connection.pipeline() as pipeline:
                    cursor.execute(compiled.sql, parameters)
                    pipeline.sync()
            else:
                cursor.execute(compiled.sql, parameters)
            if compiled.row_type is None:
                # nothing asked for (on PostgreSQL an INSERT may still return its new id: implicit RETURNING)
                return RawResult([], cursor.rowcount)
            rows = [compiled.row(r) for r in cursor.fetchall()]
        except self._dialect.loaded_dbapi.Error as exc:
            # the same exception classes (IntegrityError, OperationalError, ...) the rest of the app catches
            raise DBAPIError.instance(compiled.sql, parameters, exc, self._dialect.loaded_dbapi.Error,
                                      dialect=self._dialect) from exc
        return RawResult(rows, len(rows))

    def scalar(self, statement: ClauseElement, params: Mapping[str, Any] | None = None) -> Any:
        return self.execute(statement, params).scalar()


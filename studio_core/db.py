"""Engine and sessions.

SQLite: WAL, foreign keys, a busy timeout, and every write transaction starts with ``BEGIN IMMEDIATE`` so two
writers never both read a balance and then fight over the upgrade to a write lock (SQLite would fail one of
them with "database is locked" instead of waiting). Reads use a plain deferred ``BEGIN`` so they never block.
PostgreSQL runs through psycopg 3 under READ COMMITTED; its conditional UPDATEs need nothing more.
"""

from __future__ import annotations

import re
import threading
import weakref
from collections import deque, namedtuple
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, create_engine, event, make_url, text
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.sql import ClauseElement

SQLITE_BUSY_TIMEOUT_MS = 15_000
T = TypeVar("T")
# The database did not answer (connection lost, server down, locked past the busy timeout): transient, unlike a
# constraint violation. A page says so and offers Try again; a generation job pauses and is resumed.
DATABASE_DOWN = (OperationalError, InterfaceError)
_WRITE_OPTION = "studio_write"


def _is_deadlock(exc: DBAPIError) -> bool:
    return getattr(exc.orig, "sqlstate", None) == "40P01"  # psycopg: deadlock_detected


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


_SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def create_db_engine(url: str, *, echo: bool = False, pre_ping: bool = True, pool_size: int = 10,
                     max_overflow: int = 20, schema: str | None = None) -> Engine:
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
        # a deadlock or a stuck lock fails fast instead of hanging a page
        options = "-c lock_timeout=15000 -c statement_timeout=60000"
        if schema is not None:
            if not _SCHEMA_NAME.match(schema):
                raise ValueError(f"not a plain schema name: {schema!r}")
            options += f" -c search_path={schema}"
        connect_args = {"connect_timeout": 10, "options": options}
    return create_engine(url, echo=echo, pool_pre_ping=pre_ping, pool_size=pool_size, max_overflow=max_overflow,
                         connect_args=connect_args)


class Database:
    """The engine plus two session factories: ``read()`` and ``write()`` (IMMEDIATE on SQLite)."""

    def __init__(self, url: str, *, echo: bool = False, schema: str | None = None) -> None:
        """``schema``: PostgreSQL only, a schema other than public for every connection (benchmarks use one)."""
        self.url = normalise_url(url)
        self.engine = create_db_engine(self.url, echo=echo, schema=schema)
        self.is_sqlite = self.engine.dialect.name == "sqlite"
        self._read = sessionmaker(self.engine, expire_on_commit=False)
        self._write_engine = self.engine.execution_options(**{_WRITE_OPTION: True})
        self._write_lock = threading.RLock() if self.is_sqlite else None
        self._write = sessionmaker(self._write_engine, expire_on_commit=False)
        self._compiled: weakref.WeakKeyDictionary[ClauseElement, _Compiled] = weakref.WeakKeyDictionary()
        self._writing = threading.local()  # SQLite: how deep this thread is in write() transactions
        self._raw_writer: Any = None  # SQLite: the raw writes' own connection (see _sqlite_writer)
        self._group_writer: _SqliteWriter | None = None  # SQLite: run_raw()'s group commit, made on first use
        # PostgreSQL: run_raw()'s own few connections (see _RawPool); it retries on a dead one.
        # (its engine only makes connections, which _RawPool detaches: the engine's own pool never fills)
        self._raw_pool = None if self.is_sqlite else _RawPool(create_db_engine(
            self.url, echo=echo, pre_ping=False, pool_size=1, max_overflow=-1, schema=schema))

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def read(self) -> Iterator[Session]:
        # Closing the session hands the connection back to the pool, which rolls the read transaction back.
        with self._read() as session:
            yield session

    @contextmanager
    def connection(self) -> Iterator[Connection]:
        """A read on a plain connection, for statements built once (the shell's reads on every run): about a
        third of what the same statement costs through an ORM session."""
        with self.engine.connect() as conn:
            yield conn

    @contextmanager
    def write(self) -> Iterator[Session]:
        """One write transaction: committed when the block ends, rolled back on any exception."""
        with self._writer_turn(), self._write() as session, session.begin():
            yield session

    def run_raw(self, work: Callable[[RawTransaction], T], *, one_statement: bool = False) -> T:
        """``work(tx)`` as one write transaction straight on the driver's connection, for the hottest money
        paths (the ledger's holds). Statements are still SQLAlchemy Core expressions, compiled once per dialect
        and run on the DB-API cursor (``RawTransaction``); an exception in ``work`` undoes everything it wrote.

        SQLite: ``work`` is batched with whatever other run_raw() calls are waiting, each under its own
        savepoint, in one BEGIN IMMEDIATE transaction (group commit, _SqliteWriter). PostgreSQL: in the calling
        thread, on a pool of its own; if the connection turns out dead (the database restarted, a pooled
        connection was closed while idle) or the transaction was picked as a deadlock victim, once more on a
        fresh one. Whatever happened to a first attempt, ``work`` must make a second one harmless:
        the ledger's operations are idempotent by their keys and hold ids. ``one_statement=True`` promises a
        single statement, which PostgreSQL then runs as its own transaction (no BEGIN and COMMIT round trips).
        """
        if self.is_sqlite:
            if getattr(self._writing, "depth", 0):
                # SQLite's write lock is this thread's already: a raw write would wait for it forever
                raise RuntimeError("run_raw() inside a write() transaction; finish that transaction first")
            return self._sqlite_group_writer().run(work, one_statement=one_statement)
        for attempt in (1, 2):
            try:
                with self._pg_raw_transaction(one_statement=one_statement) as tx:
                    return work(tx)
            except DBAPIError as exc:
                if attempt == 2 or not (exc.connection_invalidated or _is_deadlock(exc)):
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    def _sqlite_group_writer(self) -> _SqliteWriter:
        writer = self._group_writer
        if writer is None:
            with self._write_lock:  # type: ignore[union-attr]
                if self._group_writer is None:
                    self._group_writer = _SqliteWriter(self)
                writer = self._group_writer
        return writer

    @contextmanager
    def _pg_raw_transaction(self, *, one_statement: bool = False) -> Iterator[RawTransaction]:
        """One raw write transaction on PostgreSQL, in the calling thread (run_raw() is the way in)."""
        dialect = self.engine.dialect
        pool: _RawPool = self._raw_pool  # type: ignore[assignment]
        conn = pool.get()
        try:
            conn.autocommit = one_statement
            with conn.cursor() as cursor:
                yield RawTransaction(cursor, dialect, self._compiled, one_statement=one_statement)
            if not one_statement:
                conn.commit()
        except BaseException as exc:
            if isinstance(exc, DBAPIError) and exc.connection_invalidated:
                pool.drop_all(conn)  # after a restart every idle connection is dead too
            else:
                pool.put(conn, rollback=True)
            raise
        pool.put(conn)

    def _sqlite_writer(self) -> Any:
        """SQLite admits one writer at a time and this process already queues its writers on a lock, so
        run_raw()'s group commit keeps one connection rather than checking one out per transaction.
        It comes from the pool once (connect-time pragmas applied) and is then detached from it."""
        if self._raw_writer is None:
            fairy = self.engine.raw_connection()
            fairy.detach()
            self._raw_writer = fairy
        return self._raw_writer

    def _drop_sqlite_writer(self) -> None:
        writer, self._raw_writer = self._raw_writer, None
        if writer is not None:
            try:
                writer.close()
            except self.engine.dialect.loaded_dbapi.Error:
                pass

    @contextmanager
    def _writer_turn(self) -> Iterator[None]:
        """SQLite admits one writer at a time. Threads of this process queue on a lock for their turn instead
        of in SQLite's busy handler, which sleeps in growing steps (up to 100 ms) and so wastes most of the
        time under contention; other processes still wait through the busy timeout."""
        if self._write_lock is None:
            yield
            return
        with self._write_lock:
            self._writing.depth = getattr(self._writing, "depth", 0) + 1
            try:
                yield
            finally:
                self._writing.depth -= 1

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
        if self._write_lock is not None:
            with self._write_lock:
                self._drop_sqlite_writer()
        if self._raw_pool is not None:
            self._raw_pool.dispose()
        self.engine.dispose()


# -- the raw write path ----------------------------------------------------------------------------------------
class _RawJob:
    __slots__ = ("work", "one_statement", "wake", "finished", "result", "error")

    def __init__(self, work: Callable[[RawTransaction], Any], one_statement: bool, mutex: threading.Lock) -> None:
        self.work = work
        self.one_statement = one_statement
        self.wake = threading.Condition(mutex)
        self.finished = False
        self.result: Any = None
        self.error: BaseException | None = None


class _SqliteWriter:
    """Group commit for SQLite's raw writes (LevelDB's writer queue): a call joins a queue; the call at the front
    is the leader and runs every waiting call (up to ``MAX_BATCH``) in one BEGIN IMMEDIATE transaction, each
    under its own savepoint, while the others sleep until their result is there. A lone call leads its own
    batch of one at once, in its own thread.

    SQLite admits one writer at a time anyway. Queued on a lock, N threads pay N transactions -- a commit writes
    the WAL pages each one dirtied, the account's page and the index pages again and again -- and every
    statement hands the GIL to another thread and waits to get it back. Batched, they pay one commit, the pages
    are written once, and the waiting callers sleep instead of competing. Each call is still all or nothing (a
    failing one rolls back to its savepoint and gets its exception; the others go on), batched calls run one
    after another in arrival order, as if serially, and each returns only after the commit that made it durable.
    """

    MAX_BATCH = 32

    def __init__(self, db: Database) -> None:
        self._db = db
        self._mutex = threading.Lock()
        self._queue: deque[_RawJob] = deque()
        self._leader: threading.Thread | None = None

    def run(self, work: Callable[[RawTransaction], T], *, one_statement: bool = False) -> T:
        if self._leader is threading.current_thread():
            raise RuntimeError("run_raw() cannot be nested")
        job = _RawJob(work, one_statement, self._mutex)
        with self._mutex:
            self._queue.append(job)
            while not job.finished and job is not self._queue[0]:
                job.wake.wait()
            if not job.finished:  # at the front: lead a batch of everyone waiting now
                batch = [self._queue[i] for i in range(min(len(self._queue), self.MAX_BATCH))]
                self._leader = threading.current_thread()
        if not job.finished:
            try:
                self._run_batch(batch)
            except BaseException as exc:  # noqa: BLE001 - the batch failed as a whole; every caller hears it
                for member in batch:
                    if member.error is None:
                        member.result, member.error = None, exc
            finally:
                with self._mutex:
                    self._leader = None
                    for member in batch:
                        self._queue.popleft()
                        member.finished = True
                        member.wake.notify()
                    if self._queue:
                        self._queue[0].wake.notify()  # the next leader
        if job.error is not None:
            raise job.error
        return job.result

    def _run_batch(self, batch: list[_RawJob]) -> None:
        db = self._db
        dialect = db.engine.dialect
        with db._write_lock:  # type: ignore[union-attr]  # in turn with this process's write() sessions
            conn = db._sqlite_writer()
            cursor = conn.cursor()
            try:
                cursor.execute("BEGIN IMMEDIATE")
                if len(batch) == 1:  # alone: the transaction is the unit, no savepoint needed
                    job = batch[0]
                    job.result = job.work(RawTransaction(cursor, dialect, db._compiled,
                                                         one_statement=job.one_statement))
                else:
                    for job in batch:
                        cursor.execute("SAVEPOINT raw_call")
                        try:
                            job.result = job.work(RawTransaction(cursor, dialect, db._compiled,
                                                                 one_statement=job.one_statement))
                        except Exception as exc:  # noqa: BLE001 - this call's failure, handed to its caller
                            cursor.execute("ROLLBACK TO raw_call")
                            job.error = exc
                        cursor.execute("RELEASE raw_call")
                conn.commit()
            except BaseException:
                try:
                    conn.rollback()
                except dialect.loaded_dbapi.Error:
                    db._drop_sqlite_writer()  # unusable: the next batch opens a fresh one
                raise
            finally:
                cursor.close()


class _RawPool:
    """The PostgreSQL connections of run_raw(), handed out and back without SQLAlchemy's pool machinery: no
    ping on checkout (a round trip that costs as much as the statement it guards), no checkout events, no reset.
    Connections come from ``engine`` (so they get its connect-time settings) and are detached from it; at most
    ``keep`` wait idle, the rest are closed when given back. A dead connection empties the pool (run_raw()
    then retries on a new one)."""

    def __init__(self, engine: Engine, keep: int = 8) -> None:
        self._engine = engine
        self._keep = keep
        self._idle: deque[Any] = deque()

    def get(self) -> Any:
        try:
            return self._idle.pop()  # deque.pop and append are atomic: no lock needed
        except IndexError:
            fairy = self._engine.raw_connection()
            conn = fairy.dbapi_connection
            fairy.detach()
            return conn

    def put(self, conn: Any, *, rollback: bool = False) -> None:
        if rollback and not conn.closed:
            try:
                conn.rollback()
            except self._engine.dialect.loaded_dbapi.Error:
                conn.close()
        if conn.closed or len(self._idle) >= self._keep:
            conn.close()
        else:
            self._idle.append(conn)

    def drop_all(self, dead: Any) -> None:
        for conn in (dead, *self._take_idle()):
            conn.close()  # psycopg's close() never raises, also on a broken connection

    def _take_idle(self) -> list[Any]:
        taken = []
        while True:
            try:
                taken.append(self._idle.pop())
            except IndexError:
                return taken

    def dispose(self) -> None:
        for conn in self._take_idle():
            conn.close()
        self._engine.dispose()


# SQLAlchemy's execution machinery (execution context, events, result wrapping) costs ~40 µs a statement, more
# than SQLite takes to run one of the ledger's. run_raw() keeps the statements as Core expressions but runs
# their compiled SQL on the DB-API cursor, applying the same bind and result processors SQLAlchemy would.
class _Compiled:
    # Everything per execution is plain dict and list work: this runs for every statement on the hot path.
    __slots__ = ("sql", "order", "defaults", "bind_processors", "row_type", "result_processors")

    def __init__(self, statement: ClauseElement, dialect: Dialect) -> None:
        compiled = statement.compile(dialect=dialect)
        if compiled.insert_prefetch or compiled.update_prefetch:
            # Python-side column defaults are computed by SQLAlchemy's execution context, which this path skips.
            raise ValueError("run_raw() runs statements that give every defaulted column a value; this one "
                             f"leaves {[c.key for c in compiled.insert_prefetch + compiled.update_prefetch]}")
        self.sql = compiled.string
        required = {bp.key: None for bp in compiled.binds.values() if bp.required}
        # Values fixed in the statement (literals, Python values in WHERE clauses), by their rendered names.
        self.defaults = compiled.construct_params(required)
        self.order = tuple(compiled.positiontup) if compiled.positional else None
        processors = {}
        for bp, name in compiled.bind_names.items():
            processor = bp.type.dialect_impl(dialect).bind_processor(dialect)
            if processor is not None:
                processors[name] = processor
        self.bind_processors = tuple(processors.items())
        columns = list(getattr(statement, "exported_columns", ()))
        self.row_type = namedtuple("RawRow", [c.key for c in columns], rename=True) if columns else None
        self.result_processors = tuple(
            (i, p) for i, p in enumerate(c.type.dialect_impl(dialect).result_processor(dialect, None)
                                         for c in columns) if p is not None)

    def parameters(self, params: Mapping[str, Any] | None) -> Any:
        values = self.defaults.copy()
        if params:
            values.update(params)
        for name, processor in self.bind_processors:
            values[name] = processor(values[name])
        return values if self.order is None else [values[name] for name in self.order]

    def row(self, raw: tuple) -> tuple:
        if not self.result_processors:
            return self.row_type._make(raw)
        values = list(raw)
        for i, processor in self.result_processors:
            values[i] = processor(values[i])
        return self.row_type._make(values)


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
    """Runs Core statements on one DB-API cursor inside Database.run_raw(). Quacks like a Connection for
    ``execute(statement, params)`` and ``scalar(statement, params)``, so code written against one runs on both.
    Compiled forms are cached per statement object: module-level statements compile once, statements built
    per call compile per call (and leave the cache with their last reference)."""

    __slots__ = ("_cursor", "_dialect", "_cache", "_statements_left")

    def __init__(self, cursor: Any, dialect: Dialect, cache: weakref.WeakKeyDictionary, *,
                 one_statement: bool = False) -> None:
        self._cursor = cursor
        self._dialect = dialect
        self._cache = cache
        self._statements_left = 1 if one_statement else -1

    def execute(self, statement: ClauseElement, params: Mapping[str, Any] | None = None) -> RawResult:
        if self._statements_left == 0:
            raise RuntimeError("run_raw(one_statement=True) runs one statement; open a transaction for more")
        self._statements_left -= 1
        compiled = self._cache.get(statement)
        if compiled is None:
            compiled = self._cache[statement] = _Compiled(statement, self._dialect)
        parameters = compiled.parameters(params)
        cursor = self._cursor
        try:
            cursor.execute(compiled.sql, parameters)
            if compiled.row_type is None:
                # Nothing asked for, but an INSERT may still return its new key (implicit RETURNING): read it,
                # or SQLite cannot commit while the statement is "in progress".
                if cursor.description is not None:
                    cursor.fetchall()
                return RawResult([], cursor.rowcount)
            rows = [compiled.row(r) for r in cursor.fetchall()]
        except self._dialect.loaded_dbapi.Error as exc:
            # the same exception classes (IntegrityError, OperationalError, ...) the rest of the app catches
            dead = self._dialect.is_disconnect(exc, cursor.connection, cursor)
            raise DBAPIError.instance(compiled.sql, parameters, exc, self._dialect.loaded_dbapi.Error,
                                      connection_invalidated=dead, dialect=self._dialect) from exc
        return RawResult(rows, len(rows))

    def scalar(self, statement: ClauseElement, params: Mapping[str, Any] | None = None) -> Any:
        return self.execute(statement, params).scalar()


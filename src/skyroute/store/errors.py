"""Errors of the store, and the one place where database errors are classified.

    ServiceUnavailable (core)
    └── StoreUnavailable       the database cannot be reached or is overloaded right now;
                               nothing was written by the failing call, try again later

Every other database error (a constraint, a value PostgreSQL rejects, a value too large)
is a property of the data, not of the database: ``insert_usage`` quarantines such rows,
and the admin functions let it propagate as a SQLAlchemy error.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from skyroute.core.errors import ServiceUnavailable

# SQLSTATE classes that describe the server or the connection, never the row:
# 08 connection exception, 40 transaction rollback (deadlock, serialization),
# 53 insufficient resources ("too many clients"), 57 operator intervention
# (shutdown, "the database system is starting up"), 58 system error.
_UNAVAILABLE_SQLSTATE_CLASSES = frozenset({"08", "40", "53", "57", "58"})

# What a database call may raise. Besides SQLAlchemy's own tree, drivers raise plain
# Python errors for values they cannot encode before anything is sent (the sqlite3
# module: OverflowError for an int beyond 64 bits), and sockets raise OSError.
# SQLAlchemy's own usage errors (ArgumentError, a bad statement) are bugs, not data: they
# are not caught here, so they cannot quarantine good rows.
DB_ERRORS: tuple[type[Exception], ...] = (
    sa_exc.StatementError,  # DBAPIError and every driver error SQLAlchemy wraps
    sa_exc.TimeoutError,  # the pool's
    sa_exc.DisconnectionError,
    OSError,
    TimeoutError,
    ArithmeticError,
    ValueError,
    TypeError,
)


class StoreUnavailable(ServiceUnavailable):
    """The database is down, unreachable, locked or overloaded; retry later.

    ``message`` is safe for clients; ``detail`` names the underlying error for logs and
    never holds the database URL or password.
    """

    def __init__(self, detail: str) -> None:
        super().__init__("The database is temporarily unavailable.", retry_after=1.0)
        self.detail = detail


def is_unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` says the database, not the data, is at fault."""
    if isinstance(exc, OSError | TimeoutError | sa_exc.TimeoutError):
        return True
    if not isinstance(exc, sa_exc.DBAPIError):
        return False
    if exc.connection_invalidated:
        return True
    sqlstate = getattr(exc.orig, "sqlstate", None)
    if isinstance(sqlstate, str) and sqlstate:
        return sqlstate[:2] in _UNAVAILABLE_SQLSTATE_CLASSES
    # SQLite: "database is locked", "unable to open database file", "disk I/O error",
    # "no such table" (not migrated) are all OperationalError and none is about a row.
    return isinstance(exc, sa_exc.OperationalError)


def describe(exc: BaseException) -> str:
    """A short, single-line reason without SQL text or bound parameters."""
    inner = exc.orig if isinstance(exc, sa_exc.DBAPIError) and exc.orig is not None else exc
    cause = inner.__cause__ if inner.__cause__ is not None else inner
    text = f"{type(cause).__name__}: {cause}".replace("\x00", "\\x00")
    return " ".join(text.split())[:1000]


@asynccontextmanager
async def connect(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A connection; ``StoreUnavailable`` if none can be had or it breaks while in use.

    Any failure to get a connection means the database is unavailable, whatever its
    SQLSTATE ("not currently accepting connections" is 55000, say). Errors about data
    inside the block propagate unchanged.
    """
    try:
        conn = await engine.connect()
    except DB_ERRORS as exc:
        raise StoreUnavailable(describe(exc)) from exc
    try:
        yield conn
    except DB_ERRORS as exc:
        if is_unavailable(exc):
            raise StoreUnavailable(describe(exc)) from exc
        raise
    finally:
        await conn.close()


@asynccontextmanager
async def begin(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """Like ``connect``, inside a transaction committed when the block ends."""
    async with connect(engine) as conn, conn.begin():
        yield conn

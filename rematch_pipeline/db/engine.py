"""Engine creation and schema migration (Alembic) for the configured database."""

from __future__ import annotations

import errno
import threading
from functools import cache, lru_cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event, inspect, text

from rematch_pipeline.config import DEFAULT_SQLITE_BUSY_TIMEOUT_S

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def is_busy(exc: BaseException) -> bool:
    """Whether a database error means another run holds the database right now (SQLite locked past its busy timeout,
    a PostgreSQL lock timeout, deadlock or serialization failure): the same command succeeds once that run ended."""
    orig = getattr(exc, "orig", exc)
    if type(orig).__name__ == "OperationalError" and "locked" in str(orig).lower():  # sqlite3
        return True
    return getattr(orig, "sqlstate", None) in ("55P03", "40P01", "40001")


@lru_cache(maxsize=8)
def get_engine(url: str, busy_timeout_s: float = DEFAULT_SQLITE_BUSY_TIMEOUT_S) -> Engine:
    """The engine for `url`. Its errors never show bound parameters: they are the rows of a file, personal data."""
    if url.startswith("sqlite"):
        if "///" in url:
            folder = Path(url.split("///", 1)[-1]).parent
            if folder.exists() and not folder.is_dir():  # mkdir would say only "File exists"
                raise NotADirectoryError(errno.ENOTDIR, "this is a file, where REMATCH_HOME needs a folder",
                                         str(folder))
            folder.mkdir(parents=True, exist_ok=True)
        # How long a writer waits for another run's write to end before it gives up (then: exit 3, try again).
        engine = create_engine(url, connect_args={"timeout": busy_timeout_s}, hide_parameters=True)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):  # type: ignore[no-untyped-def]
            # SQLite ignores foreign keys unless asked; WAL lets the Airflow UI read while a task writes.
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA journal_mode=WAL")
            cur.close()

        return engine
    for alias in ("postgresql://", "postgres://"):
        if url.startswith(alias):
            url = "postgresql+psycopg://" + url[len(alias):]
    if not url.startswith("postgresql+psycopg://"):
        # Never the URL itself in the message: it may hold a password.
        raise ValueError("REMATCH_DATABASE_URL must name a PostgreSQL database (postgresql://user:password@host/db) "
                         "or an SQLite file (sqlite:///path); it names another kind")
    engine = create_engine(url, pool_pre_ping=True, hide_parameters=True)

    @event.listens_for(engine, "connect")
    def _utc_session(dbapi_conn, _record):  # type: ignore[no-untyped-def]
        # Instants are read back in UTC whatever the server's or the client's (PGTZ) time zone: outputs say +00:00
        # on both backends, and a timestamp cast to a date is the UTC date, as on SQLite. (Not in the URL's
        # `options`: those may carry the operator's own settings.)
        cur = dbapi_conn.cursor()
        cur.execute("SET TIME ZONE 'UTC'")
        cur.close()
        dbapi_conn.commit()

    return engine


def cannot_connect(exc: BaseException) -> bool:
    """Whether an error means the configured database cannot be reached or named (server down, unknown host or
    database, refused login, an unusable URL), as opposed to an error of a statement."""
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError, OperationalError

    if isinstance(exc, (ArgumentError, NoSuchModuleError)):
        return True
    if not isinstance(exc, OperationalError) or is_busy(exc):
        return False
    state = getattr(exc.orig, "sqlstate", None)
    if type(exc.orig).__module__.startswith("sqlite3"):
        return "unable to open database" in str(exc.orig)
    return state is None or state[:2] in ("08", "28", "3D")


_MIGRATING = threading.Lock()  # Alembic keeps its context in module globals: one upgrade at a time per process
# Across processes on PostgreSQL: two `rematch db upgrade` at once (an operator and airflow-init) take turns, and
# the second finds the schema current. The number only has to be the same in every process (it reads "REMATCH1").
MIGRATION_LOCK_KEY = 0x52454D4154434831


def migrate(url: str, revision: str = "head") -> None:
    """Bring the schema to `revision` with the versioned migrations (idempotent)."""
    engine = get_engine(url)
    cfg = alembic_config(url)
    with _MIGRATING, engine.begin() as connection:
        if connection.dialect.name == "postgresql":  # released when this transaction ends
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, revision)


UPGRADE_HINT = ("run `rematch db upgrade` once (make install does it for the embedded default; with Docker, the "
                "airflow-init service does)")


class SchemaNotReady(ValueError):
    """The database does not carry the schema this version of the software needs."""


@cache
def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
    assert head is not None
    return head


def require_schema(url: str) -> None:
    """Refuse to work on a database whose schema is missing or of another version, with what to do.

    Migrations run once, at init (`rematch db upgrade`): a task or command never changes the schema as a side effect,
    so concurrent tasks never race to migrate and an upgrade is a step an operator chooses. Nothing is created here,
    not even an empty SQLite file where a mistyped REMATCH_HOME points.
    """
    if url.startswith("sqlite") and "///" in url:
        path = url.split("///", 1)[1].split("?", 1)[0]
        if path not in ("", ":memory:") and not Path(path).is_file():
            # The file of the embedded default lies under REMATCH_HOME and holds no secret: naming it shows a typo.
            folder = Path(path).parent
            if folder.exists() and not folder.is_dir():
                raise SchemaNotReady(f"There can be no database at {path}: {folder} is a file, not a folder. Point "
                                     "REMATCH_HOME at a folder (it is created when missing).")
            raise SchemaNotReady(f"There is no database at {path} yet: if REMATCH_HOME should point at an existing "
                                 f"home (the default ./var is relative to this folder), set it; else {UPGRADE_HINT}.")
    with get_engine(url).connect() as connection:
        inspector = inspect(connection)
        if not inspector.has_table("alembic_version"):
            if inspector.has_table("households"):
                raise SchemaNotReady("The database holds Re:Match tables but no record of their schema version (it "
                                     "was changed by hand): restore it from a backup.")
            raise SchemaNotReady(f"The database has no Re:Match tables yet: {UPGRADE_HINT}.")
        # Read directly: Alembic's own reader logs two lines into every task that only checks.
        versions = sorted(connection.execute(text("SELECT version_num FROM alembic_version")).scalars())
    head = head_revision()
    if versions == [head]:
        return
    if len(versions) != 1:
        raise SchemaNotReady(f"The database records {len(versions)} schema versions ({', '.join(versions) or 'none'}) "
                             "instead of one (it was changed by hand): restore it from a backup.")
    current = versions[0]
    known = {s.revision for s in ScriptDirectory.from_config(alembic_config(url)).walk_revisions()}
    if current not in known:
        raise SchemaNotReady(f"The database schema is at revision {current}, which this version of Re:Match does not "
                             "know (a newer version wrote it): run that newer version.")
    raise SchemaNotReady(f"The database schema is at revision {current}, this version of Re:Match needs {head}: "
                         f"{UPGRADE_HINT}.")

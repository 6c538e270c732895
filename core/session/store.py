"""Writing session files: the tables through SQLModel, the file atomically.

A save writes a new SQLite database into a temporary file next to the target, fsyncs
it, renames it over the target (``os.replace``) and fsyncs the directory: whoever opens
the path sees the previous file or the complete new one, even if the saving process is
killed midway. The file is written once and never updated in place, so it needs no
journal while it is written (the rename is the commit) and is left in rollback-journal
mode, which read-only readers handle without side files.
"""

from __future__ import annotations

import os
import sqlite3
import tempfile
from dataclasses import dataclass, field

from sqlalchemy.pool import StaticPool
from sqlmodel import create_engine

from .errors import SessionError
from .layout import APPLICATION_ID, SCHEMA_VERSION
from .schema import (
    METADATA,
    CpuSample,
    EventChunk,
    ObjectLife,
    SessionMeta,
    StateSample,
    TraceChunk,
)

TEMP_SUFFIX = ".tmp"


@dataclass
class SessionContent:
    """Everything a session file holds, already encoded (codec.py): what a Recorder
    hands to the writer. Rows are dicts named after the schema's columns."""
    meta: dict
    samples: list[dict] = field(default_factory=list)
    objects: list[dict] = field(default_factory=list)
    trace_chunks: list[dict] = field(default_factory=list)
    event_chunks: list[dict] = field(default_factory=list)
    cpu_samples: list[dict] = field(default_factory=list)


def _insert(conn, table, rows: list[dict]) -> None:
    if rows:
        conn.execute(table.__table__.insert(), rows)


def write_content(dbapi_conn: sqlite3.Connection, content: SessionContent) -> None:
    """Create the session tables in an empty database and fill them."""
    engine = create_engine("sqlite://", creator=lambda: dbapi_conn, poolclass=StaticPool)
    try:
        METADATA.create_all(engine)
        with engine.begin() as conn:
            _insert(conn, SessionMeta, [dict(content.meta, id=1)])
            _insert(conn, StateSample, content.samples)
            _insert(conn, ObjectLife, content.objects)
            _insert(conn, TraceChunk, content.trace_chunks)
            _insert(conn, EventChunk, content.event_chunks)
            _insert(conn, CpuSample, content.cpu_samples)
    finally:
        engine.dispose(close=False)  # the connection is the caller's
    dbapi_conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    dbapi_conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
    dbapi_conn.commit()


def _fsync_path(path: str, directory: bool = False) -> None:
    fd = os.open(path, os.O_RDONLY | (getattr(os, "O_DIRECTORY", 0) if directory else 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _mode_for(path: str) -> int:
    """The mode a plain open() would give `path` (mkstemp makes 0600)."""
    try:
        return os.stat(path).st_mode & 0o7777
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def save_content(path: str | os.PathLike, content: SessionContent) -> None:
    """Write `content` as a session file at `path`, atomically (see the module doc)."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    try:
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{os.path.basename(path)}.",
                                   suffix=TEMP_SUFFIX)
        os.close(fd)
    except OSError as exc:
        raise SessionError(f"cannot write {path}: {exc.strerror or exc}") from None
    try:
        conn = sqlite3.connect(tmp)
        try:
            # A fresh file that only becomes the session when renamed: no journal needed
            conn.execute("PRAGMA journal_mode = OFF")
            conn.execute("PRAGMA synchronous = OFF")
            write_content(conn, content)
        finally:
            conn.close()
        _fsync_path(tmp)
        os.chmod(tmp, _mode_for(path))
        os.replace(tmp, path)
        try:
            _fsync_path(directory, directory=True)
        except OSError:
            pass  # some file systems cannot fsync a directory; the rename is done
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(exc, (OSError, sqlite3.Error)):
            raise SessionError(f"cannot write {path}: {getattr(exc, 'strerror', None) or exc}") from None
        raise

"""Opening session files of older schema versions.

A migration never touches the user's file: the reader copies the (read-only) database
into memory with SQLite's backup API and upgrades the copy, one version at a time.
``upgrade_file`` writes such an upgraded copy to a new path, atomically.
"""

from __future__ import annotations

import os
import sqlite3

from .errors import SessionError
from .layout import COLUMNS, SCHEMA_VERSION

# The columns each older version has (what the reader checks before migrating).
COLUMNS_BY_VERSION = {
    1: {**{t: c for t, c in COLUMNS.items() if t != "cpu_sample"},
        "session_meta": tuple(c for c in COLUMNS["session_meta"] if c != "arch")},
    SCHEMA_VERSION: COLUMNS,
}


def _v1_to_v2(conn: sqlite3.Connection) -> None:
    # Version 1 only knew x64 builds and kept no CPU samples.
    from sqlalchemy.pool import StaticPool
    from sqlmodel import create_engine

    from .schema import CpuSample

    conn.execute("ALTER TABLE session_meta ADD COLUMN arch VARCHAR NOT NULL DEFAULT 'x64'")
    engine = create_engine("sqlite://", creator=lambda: conn, poolclass=StaticPool)
    try:
        CpuSample.__table__.create(engine)
    finally:
        engine.dispose(close=False)


# version N -> the function that upgrades a database from N to N + 1
MIGRATIONS = {1: _v1_to_v2}


def migrate_copy(source: sqlite3.Connection, version: int, label: str) -> sqlite3.Connection:
    """An in-memory copy of `source` (schema `version`) upgraded to SCHEMA_VERSION."""
    memory = sqlite3.connect(":memory:", check_same_thread=False)
    try:
        source.backup(memory)
        memory.execute("PRAGMA trusted_schema = OFF")
        for v in range(version, SCHEMA_VERSION):
            MIGRATIONS[v](memory)
        memory.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        memory.commit()
    except sqlite3.Error as exc:
        memory.close()
        raise SessionError(f"{label}: cannot upgrade from session schema {version}: {exc}") from None
    return memory


def upgrade_file(source_path: str | os.PathLike, target_path: str | os.PathLike) -> int:
    """Write the session at `source_path`, upgraded to the current schema, to
    `target_path` (atomically; the source is only read). Returns the source's version."""
    from .reader import open_session
    from .store import _fsync_path, _mode_for, TEMP_SUFFIX

    import tempfile

    target_path = os.fspath(target_path)
    with open_session(source_path) as session:
        version = session.info().schema_version
        directory = os.path.dirname(os.path.abspath(target_path))
        try:
            fd, tmp = tempfile.mkstemp(dir=directory, suffix=TEMP_SUFFIX,
                                       prefix=f".{os.path.basename(target_path)}.")
            os.close(fd)
        except OSError as exc:
            raise SessionError(f"cannot write {target_path}: {exc.strerror or exc}") from None
        try:
            out = sqlite3.connect(tmp)
            try:
                session._conn.backup(out)
            finally:
                out.close()
            _fsync_path(tmp)
            os.chmod(tmp, _mode_for(target_path))
            os.replace(tmp, target_path)
        except BaseException as exc:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            if isinstance(exc, (OSError, sqlite3.Error)):
                raise SessionError(f"cannot write {target_path}: {exc}") from None
            raise
    return version

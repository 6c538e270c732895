"""Saved sessions (``.koi`` files): record a machine or a live source, save it
atomically, reopen it read-only, travel in time, compare (formats.md section 5,
docs/sessions.md).

    >>> rec = record_scenario(load_scenario("boosts.toml"))
    >>> rec.save("boosts.koi")
    >>> with open_session("boosts.koi") as s:
    ...     s.info(); s.state_at(150_000.0); s.trace_window(0, 1000); s.compare(0, 150_000)

Reading needs only sqlite3 and numpy; SQLModel (the schema, schema.py) is imported by
the writer when a session is saved.
"""

from .compare import Comparison, FieldChange, compare_states
from .errors import SessionError
from .layout import APPLICATION_ID, SCHEMA_VERSION
from .reader import Session, SessionInfo, compare_sessions, open_session
from .recorder import RecordedRun, Recorder, record_scenario, save_run

__all__ = [
    "APPLICATION_ID", "SCHEMA_VERSION", "Comparison", "FieldChange", "RecordedRun", "Recorder",
    "Session", "SessionError", "SessionInfo", "compare_sessions", "compare_states",
    "open_session", "record_scenario", "save_run",
]

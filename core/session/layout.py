"""What identifies a session file, without importing SQLModel: the reader checks files
against these (tests/test_session.py checks they match schema.py's tables)."""

from __future__ import annotations

# PRAGMA application_id: "KOIS". Tells a KOI session from any other SQLite database.
APPLICATION_ID = 0x4B4F4953
# PRAGMA user_version: the schema version this KOI writes (schema.py has the history).
SCHEMA_VERSION = 2

# Table -> columns, of the current schema.
COLUMNS = {
    "session_meta": ("id", "source", "build", "arch", "name", "description", "app_version",
                     "created", "cpus", "interval_us", "extra"),
    "state_sample": ("seq", "time_us", "keyframe", "data"),
    "object_life": ("id", "kind", "pid", "tid", "job", "name", "first_us", "last_us",
                    "gone_us"),
    "trace_chunk": ("id", "first_row", "count", "t_first", "t_last", "layout", "data"),
    "event_chunk": ("id", "count", "t_first_us", "t_last_us", "type_counts", "data"),
    "cpu_sample": ("seq", "time_us", "busy_us", "idle_us"),
}

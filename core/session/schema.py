"""The tables of a session file (``.koi``), as SQLModel classes.

One row of ``session_meta`` describes the recording; ``state_sample`` holds the object
states over time (keyframes plus deltas, see codec.py); ``object_life`` when each process,
thread and job was present; ``trace_chunk`` the context-switch trace in compressed
column chunks; ``event_chunk`` the event log in compressed JSON Lines chunks;
``cpu_sample`` per-CPU busy and idle time. docs/sessions.md is the reference.

The tables live in their own SQLAlchemy registry, so that other SQLModel tables a
process may define never end up in a session file.

Schema history (``PRAGMA user_version``):
  1  first format: no ``arch`` (x64 only), no ``cpu_sample`` table.
  2  ``session_meta.arch``; ``cpu_sample``.
"""

from __future__ import annotations

from sqlalchemy import LargeBinary
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel

from .layout import APPLICATION_ID, SCHEMA_VERSION  # noqa: F401 - re-exported

__all__ = ["APPLICATION_ID", "SCHEMA_VERSION", "TABLES", "SessionMeta", "StateSample",
           "ObjectLife", "TraceChunk", "EventChunk", "CpuSample"]


class _SessionTable(SQLModel, registry=registry()):
    """Base of the session tables: a metadata of their own."""


class SessionMeta(_SessionTable, table=True):
    """What was recorded, from where; exactly one row (id 1)."""
    __tablename__ = "session_meta"
    id: int = Field(primary_key=True)
    source: str  # "simulation" or "live" (later sources add their own kind)
    build: str  # Windows build id whose structure layouts the views use (core.layouts)
    arch: str  # "x64" or "x86"
    name: str  # the scenario's file name, or the host's name
    description: str  # the scenario's full text, or a description of the live host
    app_version: str  # core.__version__ of the KOI that wrote the file
    created: str  # ISO 8601 UTC, when the file was written
    cpus: int
    interval_us: float  # the sampling interval the recorder used (0: fed irregularly)
    extra: str  # JSON object: anything else the source wants kept (seed, until, host...)


class StateSample(_SessionTable, table=True):
    """One state document: a keyframe (complete document) or a delta from the sample
    before it. ``keyframe`` is the seq of the keyframe this sample is rebuilt from."""
    __tablename__ = "state_sample"
    seq: int = Field(primary_key=True)  # 0, 1, 2... in time order
    time_us: float
    keyframe: int
    data: bytes = Field(sa_type=LargeBinary)  # zlib(JSON): the document, or the delta


class ObjectLife(_SessionTable, table=True):
    """One object's presence: first and last sample it was seen in, and the first
    sample it was gone from (NULL: still there at the end)."""
    __tablename__ = "object_life"
    id: int = Field(primary_key=True)
    kind: str  # "process", "thread" or "job"
    pid: int | None = None  # the process (for a thread: its process)
    tid: int | None = None
    job: str | None = None
    name: str | None = None
    first_us: float
    last_us: float
    gone_us: float | None = None


class TraceChunk(_SessionTable, table=True):
    """Consecutive context switches, in the order the kernel recorded them."""
    __tablename__ = "trace_chunk"
    id: int = Field(primary_key=True)
    first_row: int  # index of the chunk's first switch in the whole trace
    count: int
    t_first: int = Field(index=True)  # cycles (core.kernel.constants.CYCLES_PER_NS per ns)
    t_last: int = Field(index=True)
    layout: str  # JSON: [[column, numpy dtype as stored], ...] in blob order
    data: bytes = Field(sa_type=LargeBinary)


class EventChunk(_SessionTable, table=True):
    """Consecutive events (formats.md section 3), as JSON Lines."""
    __tablename__ = "event_chunk"
    id: int = Field(primary_key=True)
    count: int
    t_first_us: float = Field(index=True)
    t_last_us: float = Field(index=True)
    type_counts: str  # JSON: {event type: count} within the chunk
    data: bytes = Field(sa_type=LargeBinary)


class CpuSample(_SessionTable, table=True):
    """Cumulative busy and idle time of every CPU at one instant."""
    __tablename__ = "cpu_sample"
    seq: int = Field(primary_key=True)
    time_us: float
    busy_us: bytes = Field(sa_type=LargeBinary)  # little-endian float64 per CPU
    idle_us: bytes = Field(sa_type=LargeBinary)


TABLES = (SessionMeta, StateSample, ObjectLife, TraceChunk, EventChunk, CpuSample)
METADATA = _SessionTable.metadata

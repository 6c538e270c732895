"""Reading session files: ``open_session(path)`` and the Session it returns.

A file is checked before SQLite is trusted with it: the header must be SQLite's, carry
KOI's application id and a schema version this KOI reads, and agree with the file's
size (a truncated copy is refused); then it is opened read-only (``mode=ro``,
``query_only``) with ``trusted_schema`` off, and refused if it carries triggers, views or
virtual tables of its own or lacks a table or column of its version. Nothing is ever
written to the file or beside it. Every refusal is a SessionError whose one-line message
starts with the file's path.

Older schema versions are upgraded in an in-memory copy (migrate.py). Plain sqlite3 and
numpy only: opening a session does not import SQLModel (schema.py defines the same
tables for the writer; the tests check the two agree).
"""

from __future__ import annotations

import bisect
import json
import math
import os
import sqlite3
import threading
import urllib.parse
from collections import Counter, OrderedDict
from dataclasses import asdict, dataclass

import numpy as np

from core.kernel.constants import CYCLES_PER_NS, NS_PER_US

from . import codec
from .compare import Comparison, compare_states
from .errors import SessionError
from .layout import APPLICATION_ID, SCHEMA_VERSION
from .migrate import COLUMNS_BY_VERSION, migrate_copy

SQLITE_MAGIC = b"SQLite format 3\x00"
TRACE_CACHE_CHUNKS = 8  # decoded trace chunks kept for scrolling back and forth


@dataclass(frozen=True)
class SessionInfo:
    """What `koi session info` prints."""
    path: str
    schema_version: int  # the file's own version (older ones are read through a migration)
    source: str
    build: str
    arch: str
    name: str
    description: str
    app_version: str
    created: str
    cpus: int
    interval_us: float
    extra: dict
    start_us: float | None  # first and last state sample (None: no states)
    end_us: float | None
    samples: int
    keyframes: int
    processes: int  # distinct processes seen over the whole session
    threads: int
    jobs: int
    switches: int
    trace_start_us: float | None
    trace_end_us: float | None
    events: int
    event_types: dict
    cpu_samples: int
    file_bytes: int | None

    def as_dict(self) -> dict:
        return asdict(self)


def _header_check(path: str) -> int:
    """Check the file's first 100 bytes and size; return its schema version."""
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            header = f.read(100)
    except IsADirectoryError:
        raise SessionError(f"{path}: is a directory, not a session file") from None
    except OSError as exc:
        raise SessionError(f"{path}: cannot read: {exc.strerror or exc}") from None
    if not header.startswith(SQLITE_MAGIC):
        if not header:
            raise SessionError(f"{path}: not a KOI session (the file is empty)")
        raise SessionError(f"{path}: not a KOI session (not an SQLite database)")
    if len(header) < 100:
        raise SessionError(f"{path}: truncated session file ({size} bytes)")
    page_size = int.from_bytes(header[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    if page_size < 512 or page_size & (page_size - 1):
        raise SessionError(f"{path}: damaged session file (page size {page_size})")
    if int.from_bytes(header[68:72], "big") != APPLICATION_ID:
        raise SessionError(f"{path}: not a KOI session (an SQLite database of another application)")
    if header[18] == 2 or header[19] == 2:
        raise SessionError(f"{path}: not a KOI session file as KOI writes them (WAL mode)")
    if header[18] > 2 or header[19] > 2:
        raise SessionError(f"{path}: damaged session file (file format {header[18]}.{header[19]})")
    version = int.from_bytes(header[60:64], "big", signed=True)
    if version > SCHEMA_VERSION:
        raise SessionError(f"{path}: written by a newer KOI (session schema {version}; this "
                           f"KOI reads versions 1 to {SCHEMA_VERSION})")
    if version not in COLUMNS_BY_VERSION:
        raise SessionError(f"{path}: not a KOI session (unknown schema version {version})")
    pages = int.from_bytes(header[28:32], "big")
    # The in-header page count is valid when "version-valid-for" matches the change counter
    if header[92:96] == header[24:28] and pages:
        expected = pages * page_size
        if size < expected:
            raise SessionError(f"{path}: truncated session file ({size} bytes of {expected})")
        if size != expected:
            raise SessionError(f"{path}: damaged session file ({size} bytes, header says {expected})")
    elif size % page_size:
        raise SessionError(f"{path}: truncated session file ({size} bytes)")
    return version


def _connect_read_only(path: str) -> sqlite3.Connection:
    uri = "file:" + urllib.parse.quote(os.path.abspath(path)) + "?mode=ro"
    try:
        conn = sqlite3.connect(uri, uri=True, check_same_thread=False)
    except sqlite3.Error as exc:
        raise SessionError(f"{path}: cannot open: {exc}") from None
    try:
        # Nothing in the file runs as code: no functions from its schema, no writes at all
        conn.execute("PRAGMA trusted_schema = OFF")
        conn.execute("PRAGMA query_only = ON")
        conn.execute("PRAGMA cell_size_check = ON")
    except sqlite3.Error as exc:
        conn.close()
        raise SessionError(f"{path}: cannot open: {exc}") from None
    return conn


def _schema_check(conn: sqlite3.Connection, path: str, version: int) -> None:
    rows = conn.execute("SELECT type, name, sql FROM sqlite_master").fetchall()
    for kind, name, sql in rows:
        if kind in ("trigger", "view"):
            raise SessionError(f"{path}: refused: the file carries a {kind} of its own "
                               f"({name!r}); KOI never runs code from a session file")
        if kind == "table" and (sql or "").lstrip().upper().startswith("CREATE VIRTUAL"):
            raise SessionError(f"{path}: refused: the file carries a virtual table ({name!r})")
    tables = {name for kind, name, _ in rows if kind == "table"}
    for table, columns in COLUMNS_BY_VERSION[version].items():
        if table not in tables:
            raise SessionError(f"{path}: damaged session file (no table {table!r})")
        have = {r[1] for r in conn.execute(f'PRAGMA table_info("{table}")')}
        missing = [c for c in columns if c not in have]
        if missing:
            raise SessionError(f"{path}: damaged session file (table {table!r} has no "
                               f"column {missing[0]!r})")
    result = conn.execute("PRAGMA quick_check(1)").fetchone()
    if not result or result[0] != "ok":
        raise SessionError(f"{path}: damaged session file ({result[0] if result else 'quick_check failed'})")


def open_session(path: str | os.PathLike) -> Session:
    """Open the session file at `path` read-only, or raise SessionError saying why not."""
    path = os.fspath(path)
    version = _header_check(path)
    conn = _connect_read_only(path)
    try:
        try:
            _schema_check(conn, path, version)
            if version < SCHEMA_VERSION:
                upgraded = migrate_copy(conn, version, path)
                conn.close()
                conn = upgraded
        except sqlite3.Error as exc:
            raise SessionError(f"{path}: damaged session file ({exc})") from None
        return Session._from_connection(conn, path, schema_version=version,
                                        file_bytes=os.path.getsize(path))
    except BaseException:
        conn.close()
        raise


class Session:
    """A session opened for reading. Times are microseconds of the recording's clock
    (simulated time for a simulation). Thread-safe: calls are serialised on one
    connection. Use as a context manager, or call close()."""

    def __init__(self) -> None:  # pragma: no cover - use open_session
        raise TypeError("use open_session(path)")

    @classmethod
    def _from_connection(cls, conn: sqlite3.Connection, label: str, *, schema_version: int = SCHEMA_VERSION,
                         file_bytes: int | None = None) -> Session:
        self = object.__new__(cls)
        self.path = label
        self._conn = conn
        self._lock = threading.RLock()
        self._closed = False
        self._schema_version = schema_version
        self._file_bytes = file_bytes
        self._state_cache: tuple | None = None  # (keyframe seq, seq, FlatState)
        self._trace_cache: OrderedDict = OrderedDict()
        try:
            self._load_index()
        except sqlite3.Error as exc:
            raise SessionError(f"{label}: damaged session file ({exc})") from None
        return self

    def _fail(self, what: str) -> SessionError:
        return SessionError(f"{self.path}: {what}")

    def _query(self, sql: str, args=()) -> list:
        with self._lock:
            if self._closed:
                raise self._fail("the session is closed")
            try:
                return self._conn.execute(sql, args).fetchall()
            except sqlite3.Error as exc:
                raise self._fail(f"damaged session file ({exc})") from None

    def _load_index(self) -> None:
        meta = self._conn.execute(
            "SELECT source, build, arch, name, description, app_version, created, cpus, "
            "interval_us, extra FROM session_meta WHERE id = 1").fetchone()
        if meta is None:
            raise self._fail("damaged session file (no session_meta row)")
        self._meta = dict(zip(("source", "build", "arch", "name", "description", "app_version",
                               "created", "cpus", "interval_us", "extra"), meta))
        try:
            extra = json.loads(self._meta["extra"] or "{}")
        except (TypeError, ValueError):
            raise self._fail("damaged session file (session_meta.extra is not JSON)") from None
        self._meta["extra"] = extra if isinstance(extra, dict) else {}

        rows = self._conn.execute("SELECT seq, time_us, keyframe FROM state_sample ORDER BY seq").fetchall()
        self._seqs = [r[0] for r in rows]
        self._times = [r[1] for r in rows]
        self._kf = [r[2] for r in rows]
        at = {seq: i for i, seq in enumerate(self._seqs)}
        for i, (seq, t, kf) in enumerate(rows):
            # each sample must rest on a keyframe at or before it, itself a keyframe
            j = at.get(kf)
            if (type(t) not in (int, float) or j is None or j > i or self._kf[j] != kf
                    or (i and t < self._times[i - 1])):
                raise self._fail(f"damaged session file (state sample {seq})")
        self._times_np = np.asarray(self._times, dtype=np.float64)

        chunks = self._conn.execute(
            "SELECT id, count, t_first, t_last FROM trace_chunk ORDER BY id").fetchall()
        self._trace_ids = [c[0] for c in chunks]
        self._trace_counts = [c[1] for c in chunks]
        self._trace_first = [c[2] for c in chunks]
        self._trace_last = [c[3] for c in chunks]

        ev = self._conn.execute(
            "SELECT id, count, t_first_us, t_last_us, type_counts FROM event_chunk ORDER BY id").fetchall()
        self._event_ids = [e[0] for e in ev]
        self._event_first = [e[2] for e in ev]
        self._event_last = [e[3] for e in ev]
        self._event_count = sum(e[1] for e in ev)
        types: Counter = Counter()
        for e in ev:
            try:
                counts = json.loads(e[4])
                types.update({str(k): int(v) for k, v in counts.items()})
            except (TypeError, ValueError, AttributeError):
                raise self._fail("damaged session file (event_chunk.type_counts)") from None
        self._event_types = dict(sorted(types.items(), key=lambda kv: (-kv[1], kv[0])))

    # ---- context manager -------------------------------------------------------------------
    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._conn.close()

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ---- what the session holds -----------------------------------------------------------
    def info(self) -> SessionInfo:
        counts = dict(self._query(
            "SELECT kind, COUNT(*) FROM object_life GROUP BY kind"))
        cpu_samples = self._query("SELECT COUNT(*) FROM cpu_sample")[0][0]
        m = self._meta
        to_us = CYCLES_PER_NS * NS_PER_US
        return SessionInfo(
            path=self.path, schema_version=self._schema_version, source=m["source"],
            build=m["build"], arch=m["arch"], name=m["name"], description=m["description"],
            app_version=m["app_version"], created=m["created"], cpus=m["cpus"],
            interval_us=m["interval_us"], extra=m["extra"],
            start_us=self._times[0] if self._times else None,
            end_us=self._times[-1] if self._times else None,
            samples=len(self._times), keyframes=len(set(self._kf)),
            processes=counts.get("process", 0), threads=counts.get("thread", 0),
            jobs=counts.get("job", 0), switches=sum(self._trace_counts),
            trace_start_us=round(min(self._trace_first) / to_us, 3) if self._trace_first else None,
            trace_end_us=round(max(self._trace_last) / to_us, 3) if self._trace_last else None,
            events=self._event_count, event_types=dict(self._event_types),
            cpu_samples=cpu_samples, file_bytes=self._file_bytes)

    def sample_times(self) -> np.ndarray:
        """The time of every state sample (what a time slider steps through)."""
        return self._times_np.copy()

    # ---- states ----------------------------------------------------------------------------
    def state_at(self, time_us: float) -> dict:
        """The state document of the last sample at or before `time_us`: equal to what
        the source's ``state()`` returned then. A fresh dict the caller may modify."""
        i = bisect.bisect_right(self._times, time_us) - 1
        if i < 0:
            if not self._times:
                raise self._fail("the session holds no states")
            raise self._fail(f"no state at {time_us} µs: the recording starts at "
                             f"{self._times[0]} µs")
        with self._lock:
            return codec.materialize(self._flat_at(i))

    def _flat_at(self, i: int) -> codec.FlatState:
        seq, kf = self._seqs[i], self._kf[i]
        cache = self._state_cache
        if cache is not None and cache[0] == kf and cache[1] <= seq:
            flat, start = cache[2], cache[1] + 1  # moving forward: apply the new deltas only
        else:
            flat, start = None, kf
        self._state_cache = None  # a failure halfway must not leave a half-applied cache
        rows = self._query("SELECT seq, data FROM state_sample WHERE seq >= ? AND seq <= ? "
                           "ORDER BY seq", (start, seq))
        if len(rows) != seq - start + 1:
            raise self._fail(f"damaged session file (state samples {start}..{seq} missing)")
        for s, blob in rows:
            if flat is None:
                doc = codec.decompress_json(blob, f"state sample {s}")
                flat = codec.flatten(doc)
            else:
                delta = codec.decompress_json(blob, f"state sample {s}")
                try:
                    codec.apply(flat, delta)
                except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
                    raise self._fail(f"damaged session file (state sample {s}: {exc!r})") from None
        self._state_cache = (kf, seq, flat)
        return flat

    def compare(self, time_a_us: float, time_b_us: float, other: Session | None = None) -> Comparison:
        """What changed from the state at `time_a_us` to the state at `time_b_us` (in
        `other` if given: comparing two sessions)."""
        a = self.state_at(time_a_us)
        b = (other or self).state_at(time_b_us)
        return compare_states(a, b)

    # ---- trace, events, CPU samples --------------------------------------------------------
    def _trace_chunk(self, k: int) -> dict:
        cid = self._trace_ids[k]
        cols = self._trace_cache.get(cid)
        if cols is not None:
            self._trace_cache.move_to_end(cid)
            return cols
        rows = self._query("SELECT count, t_first, layout, data FROM trace_chunk WHERE id = ?", (cid,))
        count, t_first, layout, blob = rows[0]
        try:
            cols = codec.decode_trace_chunk(t_first, count, layout, blob)
        except SessionError as exc:
            raise self._fail(str(exc)) from None
        self._trace_cache[cid] = cols
        if len(self._trace_cache) > TRACE_CACHE_CHUNKS:
            self._trace_cache.popitem(last=False)
        return cols

    def trace_window(self, t0_us: float, t1_us: float) -> dict[str, np.ndarray]:
        """The context switches whose time (to the ns, as the CSV prints it) lies in
        [t0_us, t1_us], in recorded order, as the columns ``ContextSwitchTrace.columns()``
        has (times in cycles). Only the chunks overlapping the window are read."""
        # switch at c cycles shows as (c + 1) // 3 ns: in [t0, t1] ns <=> 3*t0-1 <= c <= 3*t1+1
        lo = CYCLES_PER_NS * round(t0_us * NS_PER_US) - 1
        hi = CYCLES_PER_NS * round(t1_us * NS_PER_US) + 1
        parts = []
        with self._lock:
            for k in range(len(self._trace_ids)):
                if self._trace_last[k] < lo or self._trace_first[k] > hi:
                    continue
                cols = self._trace_chunk(k)
                t = cols["time"]
                keep = (t >= lo) & (t <= hi)
                parts.append({name: a[keep] for name, a in cols.items()})
        if not parts:
            return codec.empty_trace()
        return {name: np.concatenate([p[name] for p in parts]) for name in codec.TRACE_NAMES}

    def events(self, t0_us: float = -math.inf, t1_us: float = math.inf,
               types: set[str] | None = None) -> list[dict]:
        """The events with t0_us <= time_us <= t1_us (optionally of the given types), in
        time order."""
        out = []
        with self._lock:
            for k, cid in enumerate(self._event_ids):
                if self._event_last[k] < t0_us or self._event_first[k] > t1_us:
                    continue
                blob = self._query("SELECT data FROM event_chunk WHERE id = ?", (cid,))[0][0]
                try:
                    events = codec.decode_event_chunk(blob)
                except SessionError as exc:
                    raise self._fail(str(exc)) from None
                out.extend(e for e in events if t0_us <= e["time_us"] <= t1_us
                           and (types is None or e["type"] in types))
        if any(out[i]["time_us"] > out[i + 1]["time_us"] for i in range(len(out) - 1)):
            out.sort(key=lambda e: e["time_us"])
        return out

    def events_before(self, t1_us: float, limit: int, after_us: float = -math.inf) -> list[dict]:
        """The last `limit` events with after_us < time_us <= t1_us, in time order; only
        the chunks needed, newest first, are read (a replay's log at a moment)."""
        parts: list[list[dict]] = []  # newest chunk first
        found = 0
        with self._lock:
            for k in range(len(self._event_ids) - 1, -1, -1):
                if found >= limit or self._event_last[k] <= after_us:
                    break
                if self._event_first[k] > t1_us:
                    continue
                blob = self._query("SELECT data FROM event_chunk WHERE id = ?",
                                   (self._event_ids[k],))[0][0]
                try:
                    events = codec.decode_event_chunk(blob)
                except SessionError as exc:
                    raise self._fail(str(exc)) from None
                part = [e for e in events if after_us < e["time_us"] <= t1_us]
                parts.append(part)
                found += len(part)
        out = [e for part in reversed(parts) for e in part]
        return out[len(out) - limit:] if limit > 0 else []

    def cpu_samples(self, t0_us: float = -math.inf, t1_us: float = math.inf) -> dict[str, np.ndarray]:
        """Cumulative per-CPU busy and idle µs: ``time_us`` (n,), ``busy_us`` and
        ``idle_us`` (n, cpus); NaN where a sample had fewer CPUs."""
        rows = self._query("SELECT time_us, busy_us, idle_us FROM cpu_sample "
                           "WHERE time_us >= ? AND time_us <= ? ORDER BY seq",
                           (max(t0_us, -1e300), min(t1_us, 1e300)))
        try:
            busy = [codec.decode_floats(r[1]) for r in rows]
            idle = [codec.decode_floats(r[2]) for r in rows]
        except SessionError as exc:
            raise self._fail(str(exc)) from None
        width = max((len(b) for b in busy), default=0)

        def grid(arrays):
            g = np.full((len(arrays), width), np.nan)
            for i, a in enumerate(arrays):
                g[i, :len(a)] = a
            return g
        return {"time_us": np.array([r[0] for r in rows], dtype=np.float64),
                "busy_us": grid(busy), "idle_us": grid(idle)}

    def objects(self, kind: str | None = None) -> list[dict]:
        """Every process, thread and job lifetime: kind, pid, tid, job, name, first_us and
        last_us (first and last sample it was in) and gone_us (first sample it was not;
        None if it was there at the end)."""
        names = ("kind", "pid", "tid", "job", "name", "first_us", "last_us", "gone_us")
        sql = f"SELECT {', '.join(names)} FROM object_life"
        rows = self._query(sql + " WHERE kind = ? ORDER BY id", (kind,)) if kind else \
            self._query(sql + " ORDER BY id")
        return [dict(zip(names, r)) for r in rows]


def compare_sessions(a: Session, time_a_us: float, b: Session, time_b_us: float) -> Comparison:
    """What changed from session `a` at `time_a_us` to session `b` at `time_b_us`."""
    return a.compare(time_a_us, time_b_us, other=b)

"""How a session's data is encoded in its blobs: state documents as keyframes and
deltas, the context-switch trace as compressed column chunks, events as compressed
JSON Lines chunks, CPU samples as float64 arrays.

Plain Python and numpy; nothing here touches SQLite, so the recorder, the writer and the
reader share one definition of every byte. docs/sessions.md describes the formats.

A state document is what ``Machine.state()`` returns (the live source produces the same
shape): top-level fields, ``processes`` (each keyed by ``pid``, with ``threads`` keyed by
``tid``) and ``jobs`` (keyed by ``name``). It is *flattened* into one dict of fields per
object so that a delta holds only the objects and fields that changed. Anything that
does not have that shape (a key this code has never heard of, a list that is not a list
of keyed objects) is kept whole as a field value, so unknown sources round-trip too.
"""

from __future__ import annotations

import json
import zlib

import numpy as np

from core.kernel.trace import COLUMNS as TRACE_COLUMNS

from .errors import SessionError

# zlib levels: the trace is large and saved against a time budget; states and events
# are small per blob, where the better ratio costs little.
TRACE_LEVEL = 1
STATE_LEVEL = 6
EVENT_LEVEL = 6

_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
_loads = json.loads


def to_json(value) -> str:
    """Compact JSON text, or a SessionError if `value` is not JSON data."""
    try:
        return _dumps(value)
    except (TypeError, ValueError) as exc:
        raise SessionError(f"not JSON data: {exc}") from None


def compress_json(value, level: int = STATE_LEVEL) -> bytes:
    return zlib.compress(to_json(value).encode("utf-8"), level)


def decompress_json(blob: bytes, what: str):
    try:
        return _loads(zlib.decompress(blob))
    except (zlib.error, ValueError, UnicodeDecodeError) as exc:
        raise SessionError(f"damaged {what}: {exc}") from None


# ---- state documents ---------------------------------------------------------------------

def _keyed(items, key: str) -> list | None:
    """The keys of `items` if it is a list of dicts each holding a distinct int or str
    `key`, else None (the list is then stored whole)."""
    if type(items) is not list:
        return None
    keys = []
    for item in items:
        if type(item) is not dict:
            return None
        k = item.get(key)
        if type(k) not in (int, str):  # bool is not an identity
            return None
        keys.append(k)
    if len(set(keys)) != len(keys):
        return None
    return keys


class FlatState:
    """A state document as one field dict per object.

    top: top-level fields other than the decomposed ``processes`` and ``jobs``.
    procs: pid -> fields (without ``threads`` when those are decomposed).
    porder: pids in document order, or None when ``processes`` is not decomposed.
    threads / torder: pid -> {tid: fields} / pid -> tids in order, for the processes
    whose ``threads`` are decomposed.
    jobs / jorder: the same for jobs, keyed by ``name``.
    sources: pid -> the process dict of the document it was flattened from.
    """

    __slots__ = ("top", "procs", "porder", "threads", "torder", "jobs", "jorder", "sources")

    def __init__(self) -> None:
        self.top: dict = {}
        self.procs: dict = {}
        self.porder: list | None = None
        self.threads: dict = {}
        self.torder: dict = {}
        self.jobs: dict = {}
        self.jorder: list | None = None
        self.sources: dict = {}


def flatten(doc: dict, prev: FlatState | None = None) -> FlatState:
    """`doc` as a FlatState. `prev`, the flattening of the document before it: a process
    given as the very dict given then (a source that rebuilds only what changed, such as
    core.live's ViewStateBuilder, hands unchanged processes over again) is not looked at
    again; its fields and threads are prev's, the same objects, which is how `diff` and
    the recorder know it unchanged. Documents must therefore not be modified once
    flattened."""
    if type(doc) is not dict:
        raise SessionError(f"a state document is a dict, not {type(doc).__name__}")
    flat = FlatState()
    processes = doc.get("processes")
    pids = _keyed(processes, "pid")
    jobs = doc.get("jobs")
    names = _keyed(jobs, "name")
    for k, v in doc.items():
        if (k == "processes" and pids is not None) or (k == "jobs" and names is not None):
            continue
        flat.top[k] = v
    if pids is not None:
        flat.porder = pids
        same = prev.sources if prev is not None else {}
        sources = flat.sources
        for pid, p in zip(pids, processes):
            sources[pid] = p
            if same.get(pid) is p:
                flat.procs[pid] = prev.procs[pid]
                if pid in prev.torder:
                    flat.torder[pid], flat.threads[pid] = prev.torder[pid], prev.threads[pid]
                continue
            threads = p.get("threads")
            tids = _keyed(threads, "tid")
            if tids is None:
                flat.procs[pid] = p
                continue
            flat.procs[pid] = {k: v for k, v in p.items() if k != "threads"}
            flat.torder[pid] = tids
            flat.threads[pid] = dict(zip(tids, threads))
    if names is not None:
        flat.jorder = names
        flat.jobs = dict(zip(names, jobs))
    return flat


def differs(a, b) -> bool:
    # 1 == 1.0 == True in Python; a changed type is a change worth keeping
    return a is not b and (type(a) is not type(b) or a != b)


_NO_CHANGE: tuple = ({}, [])


def _field_diff(old: dict, new: dict) -> tuple[dict, list]:
    if old == new:
        # Fast path, C-speed: most objects do not change between two samples. (It takes
        # a field that changes only its type, 1 -> 1.0, while all others stay equal, for
        # no change; any other change to the object records the type too.)
        return _NO_CHANGE
    changed = {k: v for k, v in new.items() if k not in old or differs(old[k], v)}
    removed = [k for k in old if k not in new]
    return changed, removed


def _entry(key_parts: list, changed: dict, removed: list) -> list:
    return key_parts + ([changed, removed] if removed else [changed])


def _expected_order(old: list | None, removed: set, added: list) -> list | None:
    if old is None:
        return None
    return [k for k in old if k not in removed] + added


def diff(prev: FlatState, cur: FlatState) -> dict:
    """The delta that turns `prev` into `cur` (a JSON-able dict; empty parts omitted)."""
    delta: dict = {}
    changed, removed = _field_diff(prev.top, cur.top)
    if changed:
        delta["top"] = changed
    if removed:
        delta["top_x"] = removed

    # processes and their threads
    p_entries, t_entries, t_removed, t_orders = [], [], [], []
    for pid in cur.porder or ():
        fields = cur.procs[pid]
        old = prev.procs.get(pid)
        if old is fields and prev.threads.get(pid) is cur.threads.get(pid):
            continue  # the same objects (see flatten): nothing changed
        if old is None:
            p_entries.append([pid, fields])
        else:
            changed, removed = _field_diff(old, fields)
            if changed or removed:
                p_entries.append(_entry([pid], changed, removed))
        new_tids = cur.torder.get(pid)
        old_tids = prev.torder.get(pid) if old is not None else None
        if new_tids is None:
            if old_tids is not None:
                t_orders.append([pid, None])
            continue
        old_threads = prev.threads.get(pid, {}) if old_tids is not None else {}
        new_threads = cur.threads[pid]
        added = []
        for tid in new_tids:
            t = new_threads[tid]
            ot = old_threads.get(tid)
            if ot is t:
                continue
            if ot is None:
                added.append(tid)
                t_entries.append([pid, tid, t])
            else:
                changed, removed = _field_diff(ot, t)
                if changed or removed:
                    t_entries.append(_entry([pid, tid], changed, removed))
        gone = [tid for tid in old_threads if tid not in new_threads]
        t_removed.extend([pid, tid] for tid in gone)
        if _expected_order(old_tids, set(gone), added) != new_tids:
            t_orders.append([pid, new_tids])
    if p_entries:
        delta["p"] = p_entries
    gone_pids = [pid for pid in prev.procs if pid not in cur.procs]
    if gone_pids:
        delta["p_x"] = gone_pids
    added_pids = [pid for pid in cur.porder or () if pid not in prev.procs]
    if _expected_order(prev.porder, set(gone_pids), added_pids) != cur.porder:
        delta["p_o"] = cur.porder
    if t_entries:
        delta["t"] = t_entries
    if t_removed:
        delta["t_x"] = t_removed
    if t_orders:
        delta["t_o"] = t_orders

    # jobs
    j_entries = []
    for name in cur.jorder or ():
        old = prev.jobs.get(name)
        if old is None:
            j_entries.append([name, cur.jobs[name]])
        else:
            changed, removed = _field_diff(old, cur.jobs[name])
            if changed or removed:
                j_entries.append(_entry([name], changed, removed))
    if j_entries:
        delta["j"] = j_entries
    gone_jobs = [name for name in prev.jobs if name not in cur.jobs]
    if gone_jobs:
        delta["j_x"] = gone_jobs
    added_jobs = [name for name in cur.jorder or () if name not in prev.jobs]
    if _expected_order(prev.jorder, set(gone_jobs), added_jobs) != cur.jorder:
        delta["j_o"] = cur.jorder
    return delta


def _update(table: dict, key, entry: list, nkey: int) -> bool:
    """Apply one [key..., changed, removed?] entry; True if the object is new."""
    changed = entry[nkey]
    fields = table.get(key)
    if fields is None:
        table[key] = dict(changed)
        return True
    fields.update(changed)
    if len(entry) > nkey + 1:
        for k in entry[nkey + 1]:
            fields.pop(k, None)
    return False


def apply(flat: FlatState, delta: dict) -> None:
    """Apply `delta` to `flat` in place (the inverse of `diff`)."""
    top = flat.top
    top.update(delta.get("top", ()))
    for k in delta.get("top_x", ()):
        top.pop(k, None)

    gone = delta.get("p_x", ())
    for pid in gone:
        flat.procs.pop(pid, None)
        flat.threads.pop(pid, None)
        flat.torder.pop(pid, None)
    added = [entry[0] for entry in delta.get("p", ()) if _update(flat.procs, entry[0], entry, 1)]
    if "p_o" in delta:
        flat.porder = delta["p_o"]
        if flat.porder is None:
            flat.procs.clear()
            flat.threads.clear()
            flat.torder.clear()
    else:
        flat.porder = _expected_order(flat.porder, set(gone), added)

    new_tids: dict = {}
    for pid, order in delta.get("t_o", ()):
        if order is None:
            flat.threads.pop(pid, None)
            flat.torder.pop(pid, None)
        else:
            flat.threads.setdefault(pid, {})
            flat.torder[pid] = order
            new_tids[pid] = None  # order given: nothing to append
    gone_tids: dict = {}
    for pid, tid in delta.get("t_x", ()):
        flat.threads[pid].pop(tid, None)
        gone_tids.setdefault(pid, set()).add(tid)
    appended: dict = {}
    for entry in delta.get("t", ()):
        pid, tid = entry[0], entry[1]
        if _update(flat.threads[pid], tid, entry, 2):
            appended.setdefault(pid, []).append(tid)
    for pid in set(gone_tids) | set(appended):
        if pid in new_tids:
            continue
        flat.torder[pid] = _expected_order(flat.torder[pid], gone_tids.get(pid, set()),
                                           appended.get(pid, []))

    gone_jobs = delta.get("j_x", ())
    for name in gone_jobs:
        flat.jobs.pop(name, None)
    added_jobs = [e[0] for e in delta.get("j", ()) if _update(flat.jobs, e[0], e, 1)]
    if "j_o" in delta:
        flat.jorder = delta["j_o"]
        if flat.jorder is None:
            flat.jobs.clear()
    else:
        flat.jorder = _expected_order(flat.jorder, set(gone_jobs), added_jobs)


def _copy_value(v):
    # Containers are copied so that a caller editing a returned document cannot change
    # the reader's cached state; scalars are immutable.
    t = type(v)
    if t is list:
        return [_copy_value(x) for x in v]
    if t is dict:
        return {k: _copy_value(x) for k, x in v.items()}
    return v


def _copy_fields(fields: dict) -> dict:
    return {k: (v if type(v) not in (list, dict) else _copy_value(v)) for k, v in fields.items()}


def materialize(flat: FlatState) -> dict:
    """The state document `flat` stands for (fresh objects: the caller may edit it)."""
    doc = _copy_fields(flat.top)
    if flat.porder is not None:
        procs = []
        for pid in flat.porder:
            p = _copy_fields(flat.procs[pid])
            order = flat.torder.get(pid)
            if order is not None:
                threads = flat.threads[pid]
                p["threads"] = [_copy_fields(threads[tid]) for tid in order]
            procs.append(p)
        doc["processes"] = procs
    if flat.jorder is not None:
        doc["jobs"] = [_copy_fields(flat.jobs[name]) for name in flat.jorder]
    return doc


# ---- the context-switch trace ------------------------------------------------------------

TRACE_NAMES = tuple(name for name, _, _ in TRACE_COLUMNS)
TRACE_DTYPES = {name: np.dtype(dt) for name, _, dt in TRACE_COLUMNS}


def _shuffle(a: np.ndarray) -> bytes:
    """Bytes grouped by significance (all low bytes, then the next...): small integers
    leave long runs of zero bytes that zlib squeezes to almost nothing."""
    return np.ascontiguousarray(a).view(np.uint8).reshape(-1, a.dtype.itemsize).T.tobytes()


def _unshuffle(raw: bytes, dtype: np.dtype, n: int) -> np.ndarray:
    b = np.frombuffer(raw, np.uint8).reshape(dtype.itemsize, n)
    return np.ascontiguousarray(b.T).view(dtype).reshape(n)


def _narrowest(a: np.ndarray) -> np.dtype:
    if len(a) == 0:
        return np.dtype("<u1")
    lo, hi = int(a.min()), int(a.max())
    for dt in ("<u1", "<u2", "<u4") if lo >= 0 else ("<i1", "<i2", "<i4"):
        info = np.iinfo(dt)
        if info.min <= lo and hi <= info.max:
            return np.dtype(dt)
    return np.dtype("<i8")


def encode_trace_chunk(cols: dict, lo: int, hi: int) -> tuple[int, int, str, bytes]:
    """Rows lo..hi-1 of the trace columns -> (first time, last time, layout, blob).

    Times become differences from the chunk's first time; every column is stored in the
    narrowest integer type its values fit, byte-shuffled, and the whole chunk is one zlib
    stream. `layout` (JSON) names each column's stored type in blob order."""
    times = cols["time"][lo:hi]
    t_first, t_last = int(times[0]), int(times[-1])
    layout, parts = [], []
    for name in TRACE_NAMES:
        a = cols[name][lo:hi].astype(np.int64, copy=False)
        if name == "time":
            a = np.diff(a, prepend=a[:1])
        dt = _narrowest(a)
        layout.append([name, dt.str])
        parts.append(_shuffle(a.astype(dt)))
    return t_first, t_last, _dumps(layout), zlib.compress(b"".join(parts), TRACE_LEVEL)


def decode_trace_chunk(t_first: int, count: int, layout: str, blob: bytes) -> dict:
    try:
        raw = zlib.decompress(blob)
        spec = _loads(layout)
        out, at = {}, 0
        for name, dtype in spec:
            dt = np.dtype(dtype)
            size = dt.itemsize * count
            a = _unshuffle(raw[at:at + size], dt, count)
            at += size
            if name == "time":
                a = np.cumsum(a, dtype=np.int64) + t_first
            out[name] = a.astype(TRACE_DTYPES[name])
        if at != len(raw) or set(out) != set(TRACE_NAMES):
            raise ValueError("column sizes do not add up")
    except (zlib.error, ValueError, TypeError, KeyError) as exc:
        raise SessionError(f"damaged trace chunk: {exc}") from None
    return out


def empty_trace() -> dict:
    return {name: np.empty(0, TRACE_DTYPES[name]) for name in TRACE_NAMES}


# ---- events ------------------------------------------------------------------------------

def encode_event(event: dict) -> str:
    if type(event) is not dict:
        raise SessionError(f"an event is a dict, not {type(event).__name__}")
    t = event.get("time_us")
    if type(t) not in (int, float) or type(event.get("type")) is not str:
        raise SessionError(f"an event needs a numeric 'time_us' and a 'type' string: {event!r:.200}")
    try:
        return _dumps(event)
    except (TypeError, ValueError) as exc:
        raise SessionError(f"event is not JSON data: {exc}") from None


def encode_event_chunk(lines: list[str]) -> bytes:
    return zlib.compress("\n".join(lines).encode("utf-8"), EVENT_LEVEL)


def decode_event_chunk(blob: bytes) -> list[dict]:
    try:
        text = zlib.decompress(blob).decode("utf-8")
        # One parse for the chunk: an encoded event never holds a raw newline
        return _loads("[" + text.replace("\n", ",") + "]") if text else []
    except (zlib.error, ValueError, UnicodeDecodeError) as exc:
        raise SessionError(f"damaged event chunk: {exc}") from None


# ---- CPU samples -------------------------------------------------------------------------

def encode_floats(values) -> bytes:
    return np.asarray(values, dtype="<f8").tobytes()


def decode_floats(blob: bytes) -> np.ndarray:
    if len(blob) % 8:
        raise SessionError("damaged CPU sample")
    return np.frombuffer(blob, dtype="<f8")

"""What changed between two state documents: processes, threads and jobs created or
gone, and every field whose value differs (priorities, states, times, job accounting,
structure fields a source adds...).

An object is the same one in both documents when its key (pid, (pid, tid), job name)
matches and, where both carry ``create_time_us``, the creation time matches too: a pid
reused by a new process reads as one process gone and another created.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .codec import FlatState, differs, flatten


@dataclass(frozen=True)
class FieldChange:
    kind: str  # "system", "process", "thread" or "job"
    key: object  # None (system), pid, [pid, tid] or the job's name
    name: str | None  # the object's name, for display
    field: str
    before: object
    after: object


@dataclass
class Comparison:
    """`a` -> `b`: what appeared, what disappeared, what changed. Created/gone objects are
    their documents (a process without its threads; its threads are listed too)."""
    time_a_us: float | None
    time_b_us: float | None
    processes_created: list[dict] = field(default_factory=list)
    processes_gone: list[dict] = field(default_factory=list)
    threads_created: list[dict] = field(default_factory=list)
    threads_gone: list[dict] = field(default_factory=list)
    jobs_created: list[dict] = field(default_factory=list)
    jobs_gone: list[dict] = field(default_factory=list)
    changes: list[FieldChange] = field(default_factory=list)

    def changed_fields(self, kind: str, key) -> dict[str, tuple]:
        """field -> (before, after) for one object."""
        return {c.field: (c.before, c.after) for c in self.changes
                if c.kind == kind and c.key == key}

    def as_dict(self) -> dict:
        return {
            "time_a_us": self.time_a_us, "time_b_us": self.time_b_us,
            "processes_created": self.processes_created, "processes_gone": self.processes_gone,
            "threads_created": self.threads_created, "threads_gone": self.threads_gone,
            "jobs_created": self.jobs_created, "jobs_gone": self.jobs_gone,
            "changes": [{"kind": c.kind, "key": c.key, "name": c.name, "field": c.field,
                         "before": c.before, "after": c.after} for c in self.changes],
        }


def _same(a: dict, b: dict) -> bool:
    ca, cb = a.get("create_time_us"), b.get("create_time_us")
    return ca is None or cb is None or not differs(ca, cb)


def _name(fields: dict) -> str | None:
    name = fields.get("name")
    return name if isinstance(name, str) else None


def _fields(out: list, kind: str, key, a: dict, b: dict) -> None:
    name = _name(b) or _name(a)
    for k, v in b.items():
        if k not in a:
            out.append(FieldChange(kind, key, name, k, None, v))
        elif differs(a[k], v):
            out.append(FieldChange(kind, key, name, k, a[k], v))
    for k, v in a.items():
        if k not in b:
            out.append(FieldChange(kind, key, name, k, v, None))


def compare_states(a: dict, b: dict) -> Comparison:
    """Compare state documents `a` (before) and `b` (after)."""
    fa, fb = flatten(a), flatten(b)
    result = Comparison(a.get("time_us"), b.get("time_us"))
    _fields(result.changes, "system", None, fa.top, fb.top)

    def threads(flat: FlatState, pid) -> dict:
        return flat.threads.get(pid, {})

    for pid in fb.porder or ():
        pb = fb.procs[pid]
        pa = fa.procs.get(pid)
        if pa is None or not _same(pa, pb):
            result.processes_created.append(dict(pb))
            result.threads_created.extend(dict(t) for t in threads(fb, pid).values())
            if pa is not None:
                result.processes_gone.append(dict(pa))
                result.threads_gone.extend(dict(t) for t in threads(fa, pid).values())
            continue
        _fields(result.changes, "process", pid, pa, pb)
        ta, tb = threads(fa, pid), threads(fb, pid)
        for tid, t in tb.items():
            old = ta.get(tid)
            if old is None or not _same(old, t):
                result.threads_created.append(dict(t))
                if old is not None:
                    result.threads_gone.append(dict(old))
            else:
                _fields(result.changes, "thread", [pid, tid], old, t)
        result.threads_gone.extend(dict(t) for tid, t in ta.items() if tid not in tb)
    for pid in fa.porder or ():
        if pid not in fb.procs:
            result.processes_gone.append(dict(fa.procs[pid]))
            result.threads_gone.extend(dict(t) for t in threads(fa, pid).values())

    for name in fb.jorder or ():
        jb, ja = fb.jobs[name], fa.jobs.get(name)
        if ja is None:
            result.jobs_created.append(dict(jb))
        else:
            _fields(result.changes, "job", name, ja, jb)
    result.jobs_gone.extend(dict(fa.jobs[n]) for n in fa.jorder or () if n not in fb.jobs)
    return result

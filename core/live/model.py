"""What a live sample holds, and the two shapes it is shown in.

A `Snapshot` is one sample of the host: every process with its threads, the per-CPU
time counters and the Linux cgroups read as jobs. Sources fill in what their OS
really has and leave the rest None; nothing here invents a value.

Two projections:

* `to_json_document` - the ``koi live --once --json`` document (formats.md section 6),
  exactly its keys.
* `to_view_state` - the shape of the simulated kernel's ``Machine.state()``, so the
  inspector's views and the session recorder take a live host like a simulated one.
  OS-specific fields with no NT equivalent sit beside the NT ones under ``"native"``.

Per-interval figures (CPU %, context-switch deltas, per-CPU utilisation, the sampled
"who ran" strip, the processes and threads seen to come and go) are computed by `apply_deltas` from two consecutive snapshots and kept
on the snapshot, not on the process and thread records: a record that did not change
between two samples is shared by both (the sources rely on it to stay cheap), so
records are read-only once published.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from types import MappingProxyType
from typing import NamedTuple

from core.kernel.constants import CLASS_BASE_PRIORITY, STILL_ACTIVE

# Thread and process identity: (id, start stamp). The stamp is the OS's own exact
# integer for the creation time (Linux: clock ticks since boot; Windows: 100 ns units
# since 1601; psutil: microseconds since the epoch), so a recycled id never matches.
Key = tuple[int, int]


class LiveError(Exception):
    """The host cannot be sampled at all (no /proc, say); the message is one line."""


# The two records made for every process and thread of every sample are named tuples,
# as psutil's are: immutable, and about eight times cheaper to make than a frozen
# dataclass (0.4 against 3.8 us), which counts at 10,000 threads a sample.
NO_NATIVE: Mapping = MappingProxyType({})


class ThreadInfo(NamedTuple):
    """One thread as sampled. None means the OS does not have or did not give it.
    `key` is (tid, start_stamp)."""
    tid: int
    pid: int
    start_stamp: int
    name: str | None = None
    state: str | None = None          # a KTHREAD_STATE name
    wait_reason: str | None = None    # a KWAIT_REASON name when Waiting, "" otherwise
    priority: int | None = None       # NT scale 1..31
    base_priority: int | None = None
    user_time_s: float | None = None
    kernel_time_s: float | None = None
    run_time_ns: int | None = None    # precise total CPU time where the OS keeps one
    context_switches: int | None = None
    cpu: int | None = None            # the processor it last ran on
    affinity: tuple[int, ...] | None = None
    create_time: float | None = None  # seconds since the epoch
    create_time_us: float | None = None  # microseconds since boot (the view's time base)
    exit_code: int | None = None
    native: Mapping = NO_NATIVE

    @property
    def key(self) -> Key:
        return (self.tid, self.start_stamp)

    @property
    def cpu_time_ns(self) -> int | None:
        """Total CPU time, as precise as the OS has it."""
        if self.run_time_ns is not None:
            return self.run_time_ns
        if self.user_time_s is None or self.kernel_time_s is None:
            return None
        return round((self.user_time_s + self.kernel_time_s) * 1e9)


class ProcessInfo(NamedTuple):
    """One process as sampled, with its threads. `readable` is False when the OS
    refused some of it (access denied): what could be read is filled in."""
    pid: int
    start_stamp: int
    ppid: int | None = None
    name: str | None = None
    create_time: float | None = None
    create_time_us: float | None = None
    user_time_s: float | None = None
    kernel_time_s: float | None = None
    priority_class: str | None = None
    base_priority: int | None = None
    exited: bool = False
    exit_code: int | None = None
    affinity: tuple[int, ...] | None = None
    jobs: tuple[str, ...] = ()
    threads: tuple[ThreadInfo, ...] = ()
    readable: bool = True
    native: Mapping = NO_NATIVE

    @property
    def key(self) -> Key:
        return (self.pid, self.start_stamp)

    @property
    def cpu_time_ns(self) -> int | None:
        if self.user_time_s is None or self.kernel_time_s is None:
            return None
        return round((self.user_time_s + self.kernel_time_s) * 1e9)


@dataclass(frozen=True, slots=True)
class CpuTimes:
    """Cumulative time of one CPU, seconds, split the way the OS splits it."""
    cpu: int
    user_s: float
    kernel_s: float      # system, irq and softirq on Linux; kernel minus idle on Windows
    idle_s: float        # idle and iowait
    other_s: float = 0.0  # steal and guest on Linux
    native: dict = field(default_factory=dict)

    @property
    def total_s(self) -> float:
        return self.user_s + self.kernel_s + self.idle_s + self.other_s


@dataclass(frozen=True, slots=True)
class CpuUsage:
    """One CPU over one interval, percent of that CPU's time."""
    cpu: int
    busy_percent: float
    user_percent: float
    kernel_percent: float
    idle_percent: float


@dataclass(frozen=True, slots=True)
class JobInfo:
    """A job: on Linux, a cgroup read as one (see cgroups.py). `limits` uses the
    names of the scenario format's [job.limits] and [job.cpu_rate]; the raw
    controller files are in `native`."""
    name: str
    parent: str | None = None
    active_processes: int | None = None
    total_processes: int | None = None
    total_terminated_processes: int | None = None
    total_user_time_us: float | None = None
    total_kernel_time_us: float | None = None
    limits: dict = field(default_factory=dict)
    native: dict = field(default_factory=dict)


@dataclass(slots=True)
class Snapshot:
    """One sample of the whole host. The per-interval fields are None on a first
    sample (nothing to compare with) until `apply_deltas` fills them."""
    host: str                    # "linux", "windows", "darwin", ...
    source: str                  # "procfs", "ntquery", "psutil"
    wall_time: float             # seconds since the epoch
    uptime_s: float              # seconds since boot: the view state's time base
    monotonic: float             # for intervals (time.monotonic)
    cpus: int
    processes: list[ProcessInfo]
    cpu_times: list[CpuTimes]
    jobs: list[JobInfo] = field(default_factory=list)
    # what could not be sampled: {"vanished": n, "denied": n}
    skipped: dict = field(default_factory=dict)
    # ---- per interval (apply_deltas) ----
    interval_s: float | None = None
    cpu_usage: list[CpuUsage] | None = None
    process_cpu_percent: dict[Key, float] | None = None   # non-zero entries only
    thread_cpu_percent: dict[Key, float] | None = None    # non-zero entries only
    thread_switch_delta: dict[Key, int] | None = None     # non-zero entries only
    # per CPU: the threads seen on it, sampled (see who_ran_on)
    who_ran: list[list[tuple[int, int, float]]] | None = None
    # the processes and threads seen to come and go (see lifecycle_events)
    events: list[dict] | None = None

    def thread_count(self) -> int:
        return sum(len(p.threads) for p in self.processes)

    def find(self, pid: int) -> ProcessInfo | None:
        return next((p for p in self.processes if p.pid == pid), None)


# ---- NT-scale priorities from Linux scheduling parameters ---------------------------------

SCHED_POLICIES = {0: "SCHED_OTHER", 1: "SCHED_FIFO", 2: "SCHED_RR", 3: "SCHED_BATCH",
                  5: "SCHED_IDLE", 6: "SCHED_DEADLINE", 7: "SCHED_EXT"}
REALTIME_POLICIES = frozenset({1, 2})


def nt_priority(policy: int | None, nice: int | None, rt_priority: int | None) -> int | None:
    """A Linux thread's scheduling parameters on the NT priority scale (1..31).

    Time-sharing (OTHER, BATCH, EXT): nice -20..19 maps linearly onto 15..1, with nice 0
    at 8 (NORMAL) and nice -15, -5, 5 landing on the HIGH, ABOVE_NORMAL and
    BELOW_NORMAL class bases (13, 10, 6). SCHED_IDLE is 1, like THREAD_PRIORITY_IDLE.
    FIFO/RR rt_priority 1..99 maps onto the real-time range 16..31; DEADLINE, which
    Linux runs before any of them, is 31. docs/live.md has the table.
    """
    if policy is None:
        return None
    if policy in REALTIME_POLICIES:
        if rt_priority is None:
            return None
        rt = min(max(rt_priority, 1), 99)
        return 16 + math.floor((rt - 1) * 15 / 98 + 0.5)
    if policy == 6:
        return 31
    if policy == 5:
        return 1
    if nice is None:
        return None
    nice = min(max(nice, -20), 19)
    return max(1, min(15, math.floor(8 - nice * 7 / 20 + 0.5)))


def nt_priority_class(policy: int | None, nice: int | None) -> str | None:
    """The NT priority class a Linux process's main thread would have."""
    if policy is None:
        return None
    if policy in REALTIME_POLICIES or policy == 6:
        return "realtime"
    if policy == 5:
        return "idle"
    if nice is None:
        return None
    if nice <= -15:
        return "high"
    if nice <= -5:
        return "above_normal"
    if nice < 5:
        return "normal"
    if nice < 15:
        return "below_normal"
    return "idle"


def class_base_priority(priority_class: str | None) -> int | None:
    return None if priority_class is None else CLASS_BASE_PRIORITY[priority_class]


def priority_class_from_base(base: int | None) -> str | None:
    """The class whose base priority is `base` (Windows reports the process's base
    priority, not its class); None for a value no class has (the Idle process's 0)."""
    for name, value in CLASS_BASE_PRIORITY.items():
        if value == base:
            return name
    return None


# ---- deltas between two samples -----------------------------------------------------------

def cpu_usage(prev: list[CpuTimes], cur: list[CpuTimes]) -> list[CpuUsage]:
    """Per-CPU utilisation between two samples of the counters."""
    before = {c.cpu: c for c in prev}
    out = []
    for c in cur:
        p = before.get(c.cpu)
        if p is None:  # a CPU brought online between samples
            continue
        total = c.total_s - p.total_s
        if total <= 0:
            out.append(CpuUsage(c.cpu, 0.0, 0.0, 0.0, 100.0))
            continue
        user = max(0.0, c.user_s - p.user_s) / total * 100
        kernel = max(0.0, c.kernel_s - p.kernel_s) / total * 100
        idle = max(0.0, c.idle_s - p.idle_s) / total * 100
        busy = min(100.0, max(0.0, 100.0 - idle))
        out.append(CpuUsage(c.cpu, busy, user, kernel, idle))
    return out


def apply_deltas(prev: Snapshot | None, cur: Snapshot) -> Snapshot:
    """Fill `cur`'s per-interval fields from `prev` (the sample before it).

    CPU % is a share of the whole machine, as Process Explorer shows it (all CPUs
    busy = 100%). A thread's figure comes from its precise run time where the OS has
    one; a process's is its threads' sum or, when a thread ended during the interval,
    the change in its own total if that is larger (it holds the ended thread's time).
    """
    if prev is None or cur.monotonic <= prev.monotonic:
        return cur
    interval = cur.monotonic - prev.monotonic
    cur.interval_s = interval
    cur.cpu_usage = cpu_usage(prev.cpu_times, cur.cpu_times)
    capacity_ns = interval * 1e9 * max(cur.cpus, 1)

    old_procs = {p.key: p for p in prev.processes}
    since_ns = prev.uptime_s * 1e9

    thread_pct: dict[Key, float] = {}
    switches: dict[Key, int] = {}
    proc_pct: dict[Key, float] = {}
    ran: dict[int, list[tuple[float, int, int]]] = {}
    for p in cur.processes:
        old_p = old_procs.get(p.key)
        if old_p is p:  # the same record: nothing in it changed
            continue
        old_threads = {t.key: t for t in old_p.threads} if old_p is not None else {}
        threads_ns = 0
        for t in p.threads:
            old = old_threads.get(t.key)
            if old is t:
                continue
            now_ns = t.cpu_time_ns
            if now_ns is None:
                continue
            if old is not None:
                before_ns = old.cpu_time_ns
                if before_ns is None:
                    continue
                delta = now_ns - before_ns
                if old.context_switches is not None and t.context_switches is not None \
                        and t.context_switches > old.context_switches:
                    switches[t.key] = t.context_switches - old.context_switches
            elif t.create_time_us is not None and t.create_time_us * 1e3 >= since_ns:
                delta = now_ns  # born during the interval: all its time is in it
                if t.context_switches:
                    switches[t.key] = t.context_switches
            else:
                continue  # first seen now, but older than the previous sample
            if delta <= 0:
                continue
            threads_ns += delta
            pct = min(100.0, delta / capacity_ns * 100)
            thread_pct[t.key] = pct
            if t.cpu is not None:
                ran.setdefault(t.cpu, []).append((pct, p.pid, t.tid))
        # The process's own total also holds threads that ended in the interval, but
        # on Linux it is in 10 ms clock ticks: it is used only when a thread ended.
        own_ns = 0
        if old_p is not None:
            current = {t.key for t in p.threads}
            if any(k not in current for k in old_threads):
                a, b = p.cpu_time_ns, old_p.cpu_time_ns
                if a is not None and b is not None:
                    own_ns = a - b
        elif p.create_time_us is not None and p.create_time_us * 1e3 >= since_ns \
                and not p.threads:
            own_ns = p.cpu_time_ns or 0
        total_ns = max(threads_ns, own_ns)
        if total_ns > 0:
            proc_pct[p.key] = min(100.0, total_ns / capacity_ns * 100)
    cur.thread_cpu_percent = thread_pct
    cur.process_cpu_percent = proc_pct
    cur.thread_switch_delta = switches
    cur.events = lifecycle_events(prev, cur)
    cur.who_ran = [[(pid, tid, pct) for pct, pid, tid in sorted(ran.get(c, ()), reverse=True)]
                   for c in range(cur.cpus)]
    return cur


# ---- projections --------------------------------------------------------------------------

def lifecycle_events(prev: Snapshot | None, cur: Snapshot) -> list[dict]:
    """The processes and threads that came and went between two samples, as the
    formats.md section 3 events ``process_create``, ``thread_create``, ``thread_exit``
    and ``process_exit``, in time order, each marked ``"sampled": true``.

    Sampled, not traced: what came and went between two samples is not seen. A
    creation is dated by the object's own create time (not before the previous sample,
    so batches stay in order); an exit by the sample that first saw it exited (a zombie,
    whose exit code the OS still has) or gone (exit code null: reaped unseen). Nothing
    comes of a first sample, nor of an object first seen long after it began (one that
    could not be read before)."""
    if prev is None or cur.uptime_s <= prev.uptime_s:
        return []
    prev_us, now_us = prev.uptime_s * 1e6, cur.uptime_s * 1e6
    # A creation a tick before the previous sample is still new (Linux start times are
    # clock ticks); one an interval before it was there, but unread.
    born_after = prev_us - (now_us - prev_us)
    events: list[dict] = []

    def born(create_us: float | None) -> float | None:
        if create_us is None or create_us < born_after:
            return None
        return max(create_us, prev_us)

    old_procs = {p.key: p for p in prev.processes}
    seen = set()
    for p in cur.processes:
        seen.add(p.key)
        old = old_procs.get(p.key)
        if old is p:
            continue  # the same record: nothing in it changed
        if old is None:
            at = born(p.create_time_us)
            if at is not None:
                events.append({"time_us": at, "type": "process_create", "pid": p.pid,
                               "name": p.name, "parent_pid": p.ppid, "sampled": True})
        old_threads = {t.key: t for t in old.threads} if old is not None else {}
        current = set()
        for t in p.threads:
            current.add(t.key)
            ot = old_threads.get(t.key)
            if ot is None:
                at = born(t.create_time_us)
                if at is not None:
                    events.append({"time_us": at, "type": "thread_create", "pid": p.pid,
                                   "tid": t.tid, "name": t.name, "sampled": True})
            if t.state == "Terminated" and (ot is None or ot.state != "Terminated"):
                events.append(_thread_exit(p.pid, t, now_us, t.exit_code))
        for key, ot in old_threads.items():
            if key not in current and ot.state != "Terminated":
                events.append(_thread_exit(p.pid, ot, now_us, None))
        if p.exited and (old is None or not old.exited):
            events.append(_process_exit(p, now_us, p.exit_code))
    pids = {key[0] for key in seen}
    for key, old in old_procs.items():
        if key in seen or old.exited:
            continue  # a zombie's exit was told when it was first seen exited
        if not old.readable and old.pid in pids:
            continue  # not gone: only readable now, so known by its real start time
        for t in old.threads:
            if t.state != "Terminated":
                events.append(_thread_exit(old.pid, t, now_us, None))
        events.append(_process_exit(old, now_us, None))
    events.sort(key=lambda e: e["time_us"])  # stable: a process's create before its threads'
    return events


def _thread_exit(pid: int, t: ThreadInfo, at_us: float, code: int | None) -> dict:
    return {"time_us": at_us, "type": "thread_exit", "pid": pid, "tid": t.tid, "name": t.name,
            "exit_code": code, "sampled": True}


def _process_exit(p: ProcessInfo, at_us: float, code: int | None) -> dict:
    return {"time_us": at_us, "type": "process_exit", "pid": p.pid, "name": p.name,
            "exit_code": code, "sampled": True}


def iso_utc(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


def to_json_document(snap: Snapshot) -> dict:
    """The formats.md section 6 document: exactly its keys, null where unknown."""
    processes = []
    for p in snap.processes:
        processes.append({
            "pid": p.pid, "ppid": p.ppid, "name": p.name,
            "create_time": _round(p.create_time, 6),
            "user_time_s": _round(p.user_time_s, 6), "kernel_time_s": _round(p.kernel_time_s, 6),
            "threads": [{
                "tid": t.tid, "state": t.state, "priority": t.priority, "cpu": t.cpu,
                "user_time_s": _round(t.user_time_s, 6),
                "kernel_time_s": _round(t.kernel_time_s, 6),
                "context_switches": t.context_switches,
            } for t in p.threads],
        })
    return {"time": iso_utc(snap.wall_time), "host": snap.host, "cpus": snap.cpus,
            "processes": processes}


def _us(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1e6, 3)


def thread_view(t: ThreadInfo) -> dict:
    """A thread in the shape of Machine.state()'s thread entries."""
    return {
        "tid": t.tid, "pid": t.pid, "name": t.name, "state": t.state,
        "wait_reason": t.wait_reason, "priority": t.priority,
        "base_priority": t.base_priority,
        "user_time_us": _us(t.user_time_s), "kernel_time_us": _us(t.kernel_time_s),
        "context_switches": t.context_switches, "cpu": t.cpu,
        "ideal_cpu": None,  # no live source reads it (Windows keeps it in the KTHREAD only)
        "affinity": None if t.affinity is None else list(t.affinity),
        "suspend_count": t.native.get("suspend_count"),
        "fiber": None, "fibers": None,  # user-mode fibers are invisible from outside
        "create_time_us": t.create_time_us, "exit_code": t.exit_code,
        "native": t.native,
    }


def process_view(p: ProcessInfo, thread_views: list[dict] | None = None) -> dict:
    """A process in the shape of Machine.state()'s process entries."""
    return {
        "pid": p.pid, "name": p.name, "parent_pid": p.ppid,
        "priority_class": p.priority_class, "base_priority": p.base_priority,
        "exit_code": p.exit_code, "exited": p.exited, "jobs": list(p.jobs),
        "protection": p.native.get("protection"),
        "affinity": None if p.affinity is None else list(p.affinity),
        "foreground": None,  # no live source knows NT's foreground (focus) process
        "create_time_us": p.create_time_us, "exit_time_us": None,
        "user_time_us": _us(p.user_time_s), "kernel_time_us": _us(p.kernel_time_s),
        # Not sampled yet: committed bytes, handle counts, minimal/pico kinds
        "commit": None, "peak_commit": None, "handle_count": None, "minimal": None,
        "subsystem": None,
        "threads": [thread_view(t) for t in p.threads] if thread_views is None else thread_views,
        "readable": p.readable,
        "native": p.native,
    }


def job_view(j: JobInfo) -> dict:
    return {"name": j.name, "active_processes": j.active_processes,
            "total_processes": j.total_processes,
            "total_terminated_processes": j.total_terminated_processes,
            "total_user_time_us": j.total_user_time_us, "parent": j.parent,
            "limits": j.limits, "native": j.native}


def to_view_state(snap: Snapshot) -> dict:
    """The snapshot in Machine.state()'s shape, plus the live-only figures:
    ``source``, ``host``, ``interval_s``, ``cpu_usage`` (per CPU), ``cpu_percent``
    (by pid and by tid, non-zero only) and ``who_ran`` (per CPU, sampled)."""
    return _view_state(snap, [process_view(p) for p in
                              sorted(snap.processes, key=lambda p: p.pid)])


class ViewStateBuilder:
    """to_view_state for a stream of snapshots from one source. A process or thread
    record that did not change since the previous snapshot keeps the view dict built
    for it then, so an idle thread costs nothing; the dicts are shared between
    successive view states, so treat them as read-only."""

    def __init__(self) -> None:
        self._by_key: dict[Key, tuple[ProcessInfo, dict]] = {}

    def build(self, snap: Snapshot) -> dict:
        cache: dict[Key, tuple[ProcessInfo, dict]] = {}
        views = []
        for p in sorted(snap.processes, key=lambda p: p.pid):
            old = self._by_key.get(p.key)
            if old is not None and old[0] is p:
                view = old[1]
            else:
                # old[0] keeps its threads alive, so an id here is the same object
                known = {id(t): tv for t, tv in zip(old[0].threads, old[1]["threads"])} \
                    if old is not None else {}
                view = process_view(p, [known.get(id(t)) or thread_view(t) for t in p.threads])
            cache[p.key] = (p, view)
            views.append(view)
        self._by_key = cache
        return _view_state(snap, views)


def _view_state(snap: Snapshot, processes: list[dict]) -> dict:
    pct_p = snap.process_cpu_percent or {}
    pct_t = snap.thread_cpu_percent or {}
    return {
        "time_us": round(snap.uptime_s * 1e6, 3),
        "cpus": snap.cpus,
        "processes": processes,
        "jobs": [job_view(j) for j in snap.jobs],
        "source": "live", "host": snap.host, "sampler": snap.source,
        "wall_time": snap.wall_time,
        "interval_s": snap.interval_s,
        "cpu_usage": None if snap.cpu_usage is None else [
            {"cpu": u.cpu, "busy_percent": u.busy_percent, "user_percent": u.user_percent,
             "kernel_percent": u.kernel_percent, "idle_percent": u.idle_percent}
            for u in snap.cpu_usage],
        "cpu_percent": {"processes": {k[0]: v for k, v in pct_p.items()},
                        "threads": {k[0]: v for k, v in pct_t.items()}},
        "who_ran": snap.who_ran,
        "who_ran_is_sampled": True,
        "skipped": dict(snap.skipped),
    }


__all__ = [
    "CpuTimes", "CpuUsage", "JobInfo", "Key", "LiveError", "ProcessInfo", "Snapshot", "ThreadInfo",
    "STILL_ACTIVE", "SCHED_POLICIES", "apply_deltas", "class_base_priority", "cpu_usage",
    "iso_utc", "lifecycle_events", "nt_priority", "nt_priority_class", "priority_class_from_base",
    "ViewStateBuilder", "process_view", "thread_view", "to_json_document", "to_view_state",
]

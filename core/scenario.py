"""Scenario files: a simulated machine described in TOML, parsed into a typed model.

    >>> sc = parse_scenario('''
    ... [system]
    ... cpus = 2
    ... [[process]]
    ... name = "app.exe"
    ...   [[process.thread]]
    ...   name = "A"
    ...   program = ["cpu 10ms", "sleep 5ms", "repeat"]
    ... ''')
    >>> sc.thread("A").program
    (Cpu(duration_ns=10000000, kernel=False), Sleep(duration_ns=5000000), Repeat())

The format is the public contract of docs/scenarios.md (spec: formats.md §2).
Everything is checked before anything runs: types, ranges, unknown keys, names,
references and cycles. Any problem raises ScenarioError, whose str() is one
line, ``FILE:LINE: KEY: message``, with the line of the offending key or value.

All durations in the model are integer nanoseconds (fields named ``*_ns``),
all sizes integer bytes (``*_bytes``). Program steps and external actions are
small frozen dataclasses with __slots__, one class per kind, each with a class
constant ``op`` (its keyword) and a ``__str__`` giving its canonical text (by
default `op` and the field values, from their shared base).
"""

from __future__ import annotations

import difflib
import json
import re
import tomllib
from bisect import bisect_right
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import ClassVar, Union

from core.kernel.boot import BOOT_PROCESS_NAMES, BOOT_SETS
from core.kernel.constants import (
    JOB_OBJECT_CPU_RATE_CONTROL_ENABLE,
    JOB_OBJECT_CPU_RATE_CONTROL_HARD_CAP,
    JOB_OBJECT_CPU_RATE_CONTROL_MIN_MAX_RATE,
    JOB_OBJECT_CPU_RATE_CONTROL_WEIGHT_BASED,
    JOB_OBJECT_LIMIT_ACTIVE_PROCESS,
    JOB_OBJECT_LIMIT_AFFINITY,
    JOB_OBJECT_LIMIT_BREAKAWAY_OK,
    JOB_OBJECT_LIMIT_JOB_MEMORY,
    JOB_OBJECT_LIMIT_JOB_TIME,
    JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE,
    JOB_OBJECT_LIMIT_PRIORITY_CLASS,
    JOB_OBJECT_LIMIT_PROCESS_MEMORY,
    JOB_OBJECT_LIMIT_PROCESS_TIME,
    JOB_OBJECT_LIMIT_SCHEDULING_CLASS,
    JOB_OBJECT_LIMIT_SILENT_BREAKAWAY_OK,
)
from core.layouts import DEFAULT_BUILD, LayoutError, catalogue
from core.units import (UnitError, describe_type, format_duration, format_size, parse_duration,
                        parse_size)

# --- Windows facts the format refers to (reference: nt-facts §1, §4.2, §6) -------------------

MAX_CPUS = 64
DEFAULT_RUN_NS = 10_000_000_000  # a run's length when neither [system] until nor --until says

# Priority classes and their base priority (nt-facts §1.3).
PRIORITY_CLASSES = {"idle": 4, "below_normal": 6, "normal": 8, "above_normal": 10,
                    "high": 13, "realtime": 24}
# Relative thread priorities, THREAD_PRIORITY_* (nt-facts §1.4).
THREAD_PRIORITIES = {"idle": -15, "lowest": -2, "below_normal": -1, "normal": 0,
                     "above_normal": 1, "highest": 2, "time_critical": 15}
# SetThreadPriority accepts these only in a REALTIME_PRIORITY_CLASS process.
REALTIME_ONLY_PRIORITIES = frozenset({-7, -6, -5, -4, -3, 3, 4, 5, 6})
VALID_PRIORITIES = frozenset(THREAD_PRIORITIES.values()) | REALTIME_ONLY_PRIORITIES

PROTECTIONS = ("none", "pp-winsystem", "pp-wintcb", "ppl-wintcb", "ppl-windows", "ppl-lsa",
               "ppl-antimalware", "ppl-authenticode")

# I/O completion priority increments, IO_*_INCREMENT (nt-facts §4.2).
IO_INCREMENTS = {"disk": 1, "cdrom": 1, "parallel": 1, "video": 1, "mailslot": 2,
                 "namedpipe": 2, "network": 2, "serial": 2, "keyboard": 6, "mouse": 6,
                 "sound": 8}

# Win32PrioritySeparation for each `quantum` preset (nt-facts §2.4-2.5).
QUANTUM_PRESETS = {"client": 0x2, "server": 0x18}
EVENT_KINDS = ("notification", "synchronization")
END_OF_JOB_TIME_ACTIONS = ("terminate", "post")

MAX_DWORD = 0xFFFFFFFF
MAX_LONG = 0x7FFFFFFF


class ScenarioError(ValueError):
    """A scenario that cannot be run. ``str()`` is one line: ``FILE:LINE: KEY: message``.

    `line` is None only when no line applies (the file cannot be read); `key`
    is the dotted path of the offending key (``process[2].thread[0].priority``)
    or None.
    """

    def __init__(self, message: str, filename: str = "<string>", line: int | None = None,
                 key: str | None = None) -> None:
        super().__init__(message, filename, line, key)
        self.message = message
        self.filename = filename
        self.line = line
        self.key = key

    def __str__(self) -> str:
        where = self.filename if self.line is None else f"{self.filename}:{self.line}"
        text = ": ".join([where, *([self.key] if self.key else []), self.message])
        return text.replace("\r", "\\r").replace("\n", "\\n")


# --- Program steps ------------------------------------------------------------------------------

def _priority_text(level: int) -> str:
    names = {v: k for k, v in THREAD_PRIORITIES.items()}
    return names.get(level, str(level))


class _Op:
    """Base of every step and action: by default the canonical text is `op` followed by
    the fields' values in order. No fields and empty slots, so the frozen slotted
    dataclasses below can derive from it; a kind that prints otherwise has its own __str__."""
    __slots__ = ()
    op: ClassVar[str]

    def __str__(self) -> str:
        return " ".join([self.op, *(str(getattr(self, f.name)) for f in fields(self))])


@dataclass(frozen=True, slots=True)
class Cpu(_Op):
    """``cpu DUR`` / ``kcpu DUR``: use DUR of CPU time, counted as kernel time if `kernel`."""
    op: ClassVar[str] = "cpu"
    duration_ns: int
    kernel: bool = False

    def __str__(self) -> str:
        return f"{'kcpu' if self.kernel else 'cpu'} {format_duration(self.duration_ns)}"


@dataclass(frozen=True, slots=True)
class Wait(_Op):
    """``wait OBJ [DUR]``: WaitForSingleObject; `kind` says what `target` names
    (event, semaphore, mutex, process or thread); `timeout_ns` None is INFINITE."""
    op: ClassVar[str] = "wait"
    target: str
    kind: str
    timeout_ns: int | None = None

    def __str__(self) -> str:
        tail = "" if self.timeout_ns is None else f" {format_duration(self.timeout_ns)}"
        return f"wait {self.target}{tail}"


@dataclass(frozen=True, slots=True)
class Sleep(_Op):
    """``sleep DUR``: Sleep(DUR); 0 is Sleep(0)."""
    op: ClassVar[str] = "sleep"
    duration_ns: int

    def __str__(self) -> str:
        return f"sleep {format_duration(self.duration_ns)}"


@dataclass(frozen=True, slots=True)
class Yield(_Op):
    """``yield``: SwitchToThread()."""
    op: ClassVar[str] = "yield"


@dataclass(frozen=True, slots=True)
class Io(_Op):
    """``io DEVICE DUR``: an I/O that completes after DUR with the device's boost `increment`."""
    op: ClassVar[str] = "io"
    device: str
    duration_ns: int
    increment: int

    def __str__(self) -> str:
        return f"io {self.device} {format_duration(self.duration_ns)}"


@dataclass(frozen=True, slots=True)
class SetEvent(_Op):
    """``set EVENT`` (step) or ``set_event EVENT`` (external action): SetEvent."""
    op: ClassVar[str] = "set"
    event: str


@dataclass(frozen=True, slots=True)
class ResetEvent(_Op):
    """``reset EVENT``: ResetEvent."""
    op: ClassVar[str] = "reset"
    event: str


@dataclass(frozen=True, slots=True)
class PulseEvent(_Op):
    """``pulse EVENT``: PulseEvent."""
    op: ClassVar[str] = "pulse"
    event: str


@dataclass(frozen=True, slots=True)
class ReleaseSemaphore(_Op):
    """``release SEM [N]``: ReleaseSemaphore(SEM, N), N >= 1 (default 1)."""
    op: ClassVar[str] = "release"
    semaphore: str
    count: int = 1

    def __str__(self) -> str:
        return f"release {self.semaphore}" + ("" if self.count == 1 else f" {self.count}")


@dataclass(frozen=True, slots=True)
class ReleaseMutex(_Op):
    """``release_mutex MUTEX``: ReleaseMutex."""
    op: ClassVar[str] = "release_mutex"
    mutex: str


@dataclass(frozen=True, slots=True)
class Commit(_Op):
    """``commit SIZE`` / ``decommit SIZE``: commit (or release, if `release`) private memory."""
    op: ClassVar[str] = "commit"
    size_bytes: int
    release: bool = False

    def __str__(self) -> str:
        return f"{'decommit' if self.release else 'commit'} {format_size(self.size_bytes)}"


@dataclass(frozen=True, slots=True)
class SetPriority(_Op):
    """``set_priority LEVEL``: SetThreadPriority on itself; `priority` is the relative
    THREAD_PRIORITY_* value (-15, -7..6, 15). A REALTIME-only value in another class
    is left to the run, where it fails as SetThreadPriority does."""
    op: ClassVar[str] = "set_priority"
    priority: int

    def __str__(self) -> str:
        return f"set_priority {_priority_text(self.priority)}"


@dataclass(frozen=True, slots=True)
class Exit(_Op):
    """``exit CODE``: ExitThread(CODE); `code` as the DWORD Windows reports (-1 is 0xFFFFFFFF)."""
    op: ClassVar[str] = "exit"
    code: int


@dataclass(frozen=True, slots=True)
class Repeat(_Op):
    """``repeat``: start the program again from its first step."""
    op: ClassVar[str] = "repeat"


@dataclass(frozen=True, slots=True)
class FiberConvert(_Op):
    """``fiber_convert``: ConvertThreadToFiber; the new fiber is named after the thread."""
    op: ClassVar[str] = "fiber_convert"


@dataclass(frozen=True, slots=True)
class FiberCreate(_Op):
    """``fiber_create NAME PROGRAM``: CreateFiber running the [programs] entry `program`."""
    op: ClassVar[str] = "fiber_create"
    fiber: str
    program: str


@dataclass(frozen=True, slots=True)
class FiberSwitch(_Op):
    """``fiber_switch NAME``: SwitchToFiber."""
    op: ClassVar[str] = "fiber_switch"
    fiber: str


@dataclass(frozen=True, slots=True)
class FiberDelete(_Op):
    """``fiber_delete NAME``: DeleteFiber."""
    op: ClassVar[str] = "fiber_delete"
    fiber: str


@dataclass(frozen=True, slots=True)
class FiberToThread(_Op):
    """``fiber_to_thread``: ConvertFiberToThread."""
    op: ClassVar[str] = "fiber_to_thread"


@dataclass(frozen=True, slots=True)
class FlsAlloc(_Op):
    """``fls_alloc SLOT``: FlsAlloc; later steps refer to the index by the name `slot`."""
    op: ClassVar[str] = "fls_alloc"
    slot: str


@dataclass(frozen=True, slots=True)
class FlsSet(_Op):
    """``fls_set SLOT VALUE``: FlsSetValue with a pointer-sized integer."""
    op: ClassVar[str] = "fls_set"
    slot: str
    value: int


@dataclass(frozen=True, slots=True)
class FlsFree(_Op):
    """``fls_free SLOT``: FlsFree."""
    op: ClassVar[str] = "fls_free"
    slot: str


Step = Union[Cpu, Wait, Sleep, Yield, Io, SetEvent, ResetEvent, PulseEvent, ReleaseSemaphore,
             ReleaseMutex, Commit, SetPriority, Exit, Repeat, FiberConvert, FiberCreate,
             FiberSwitch, FiberDelete, FiberToThread, FlsAlloc, FlsSet, FlsFree]

STEP_USAGE = {
    "cpu": "cpu DUR", "kcpu": "kcpu DUR", "wait": "wait OBJ [DUR]", "sleep": "sleep DUR",
    "yield": "yield", "io": "io DEVICE DUR", "set": "set EVENT", "reset": "reset EVENT",
    "pulse": "pulse EVENT", "release": "release SEM [N]", "release_mutex": "release_mutex MUTEX",
    "commit": "commit SIZE", "decommit": "decommit SIZE", "set_priority": "set_priority LEVEL",
    "exit": "exit CODE", "repeat": "repeat", "fiber_convert": "fiber_convert",
    "fiber_create": "fiber_create NAME PROGRAM_NAME", "fiber_switch": "fiber_switch NAME",
    "fiber_delete": "fiber_delete NAME", "fiber_to_thread": "fiber_to_thread",
    "fls_alloc": "fls_alloc SLOT", "fls_set": "fls_set SLOT VALUE", "fls_free": "fls_free SLOT",
}


# --- External actions ([[at]] do = ...) ---------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Suspend(_Op):
    """``suspend T``: SuspendThread."""
    op: ClassVar[str] = "suspend"
    thread: str


@dataclass(frozen=True, slots=True)
class Resume(_Op):
    """``resume T``: ResumeThread."""
    op: ClassVar[str] = "resume"
    thread: str


@dataclass(frozen=True, slots=True)
class TerminateThread(_Op):
    """``terminate_thread T CODE``."""
    op: ClassVar[str] = "terminate_thread"
    thread: str
    code: int


@dataclass(frozen=True, slots=True)
class TerminateProcess(_Op):
    """``terminate_process P CODE``."""
    op: ClassVar[str] = "terminate_process"
    process: str
    code: int


@dataclass(frozen=True, slots=True)
class SetThreadPriority(_Op):
    """``set_priority T LEVEL``: SetThreadPriority from outside (relative value, as SetPriority)."""
    op: ClassVar[str] = "set_priority"
    thread: str
    priority: int

    def __str__(self) -> str:
        return f"set_priority {self.thread} {_priority_text(self.priority)}"


@dataclass(frozen=True, slots=True)
class SetPriorityClass(_Op):
    """``set_priority_class P CLASS``."""
    op: ClassVar[str] = "set_priority_class"
    process: str
    priority_class: str


@dataclass(frozen=True, slots=True)
class SetAffinity(_Op):
    """``set_affinity T CPUS``: SetThreadAffinityMask; `cpus` sorted CPU indexes."""
    op: ClassVar[str] = "set_affinity"
    thread: str
    cpus: tuple[int, ...]

    @property
    def mask(self) -> int:
        return sum(1 << c for c in self.cpus)

    def __str__(self) -> str:
        return f"set_affinity {self.thread} {','.join(map(str, self.cpus))}"


@dataclass(frozen=True, slots=True)
class SetForeground(_Op):
    """``set_foreground P``: P becomes the foreground process."""
    op: ClassVar[str] = "set_foreground"
    process: str


@dataclass(frozen=True, slots=True)
class SetPrioritySeparation(_Op):
    """``set_priority_separation 0xNN``: write Win32PrioritySeparation (0..0x3F), applied live."""
    op: ClassVar[str] = "set_priority_separation"
    value: int

    def __str__(self) -> str:
        return f"set_priority_separation 0x{self.value:02x}"


@dataclass(frozen=True, slots=True)
class Assign(_Op):
    """``assign P J``: AssignProcessToJobObject."""
    op: ClassVar[str] = "assign"
    process: str
    job: str


@dataclass(frozen=True, slots=True)
class TerminateJob(_Op):
    """``terminate_job J CODE``: TerminateJobObject."""
    op: ClassVar[str] = "terminate_job"
    job: str
    code: int


@dataclass(frozen=True, slots=True)
class CloseJobHandle(_Op):
    """``close_job_handle J``: close the scenario's handle to J (kill-on-close applies)."""
    op: ClassVar[str] = "close_job_handle"
    job: str


@dataclass(frozen=True, slots=True)
class OpenProcess(_Op):
    """``open_process CALLER TARGET ACCESS``: OpenProcess by process CALLER on TARGET."""
    op: ClassVar[str] = "open_process"
    caller: str
    target: str
    access: int

    def __str__(self) -> str:
        return f"open_process {self.caller} {self.target} 0x{self.access:x}"


@dataclass(frozen=True, slots=True)
class IoComplete(_Op):
    """``io_complete T DEVICE``: complete T's outstanding `io DEVICE` now."""
    op: ClassVar[str] = "io_complete"
    thread: str
    device: str


Action = Union[SetEvent, Suspend, Resume, TerminateThread, TerminateProcess, SetThreadPriority,
               SetPriorityClass, SetAffinity, SetForeground, SetPrioritySeparation, Assign,
               TerminateJob, CloseJobHandle, OpenProcess, IoComplete]

ACTION_USAGE = {
    "set_event": "set_event EVENT", "suspend": "suspend THREAD", "resume": "resume THREAD",
    "terminate_thread": "terminate_thread THREAD CODE",
    "terminate_process": "terminate_process PROCESS CODE",
    "set_priority": "set_priority THREAD LEVEL",
    "set_priority_class": "set_priority_class PROCESS CLASS",
    "set_affinity": "set_affinity THREAD CPUS", "set_foreground": "set_foreground PROCESS",
    "set_priority_separation": "set_priority_separation 0xNN", "assign": "assign PROCESS JOB",
    "terminate_job": "terminate_job JOB CODE", "close_job_handle": "close_job_handle JOB",
    "open_process": "open_process CALLER TARGET ACCESS",
    "io_complete": "io_complete THREAD DEVICE",
}


# --- The model ----------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class System:
    """``[system]``. `until_ns` None means the run's default (DEFAULT_RUN_NS)."""
    cpus: int = 1
    build: str = DEFAULT_BUILD
    quantum: str = "client"
    win32_priority_separation: int | None = None
    boot: str = "bare"
    until_ns: int | None = None
    seed: int = 0

    @property
    def priority_separation(self) -> int:
        """The Win32PrioritySeparation in force at boot: explicit, else the quantum preset's."""
        if self.win32_priority_separation is not None:
            return self.win32_priority_separation
        return QUANTUM_PRESETS[self.quantum]


@dataclass(frozen=True, slots=True)
class Event:
    """``[[event]]``: `kind` "notification" (manual reset) or "synchronization" (auto reset)."""
    name: str
    kind: str
    signaled: bool = False


@dataclass(frozen=True, slots=True)
class Semaphore:
    """``[[semaphore]]``: 0 <= initial <= maximum, maximum >= 1."""
    name: str
    initial: int
    maximum: int


@dataclass(frozen=True, slots=True)
class Mutex:
    """``[[mutex]]``: created unowned."""
    name: str


@dataclass(frozen=True, slots=True)
class JobLimits:
    """``[job.limits]``: None (or False) where the file does not set a limit."""
    active_process: int | None = None
    affinity: tuple[int, ...] | None = None
    priority_class: str | None = None
    scheduling_class: int | None = None
    per_process_user_time_ns: int | None = None
    per_job_user_time_ns: int | None = None
    end_of_job_time_action: str = "terminate"
    process_memory_bytes: int | None = None
    job_memory_bytes: int | None = None
    kill_on_job_close: bool = False
    breakaway_ok: bool = False
    silent_breakaway_ok: bool = False

    @property
    def limit_flags(self) -> int:
        """The JOB_OBJECT_LIMIT_* flags these limits set (LimitFlags)."""
        flags = 0
        for value, flag in ((self.per_process_user_time_ns, JOB_OBJECT_LIMIT_PROCESS_TIME),
                            (self.per_job_user_time_ns, JOB_OBJECT_LIMIT_JOB_TIME),
                            (self.active_process, JOB_OBJECT_LIMIT_ACTIVE_PROCESS),
                            (self.affinity, JOB_OBJECT_LIMIT_AFFINITY),
                            (self.priority_class, JOB_OBJECT_LIMIT_PRIORITY_CLASS),
                            (self.scheduling_class, JOB_OBJECT_LIMIT_SCHEDULING_CLASS),
                            (self.process_memory_bytes, JOB_OBJECT_LIMIT_PROCESS_MEMORY),
                            (self.job_memory_bytes, JOB_OBJECT_LIMIT_JOB_MEMORY)):
            if value is not None:
                flags |= flag
        for on, flag in ((self.breakaway_ok, JOB_OBJECT_LIMIT_BREAKAWAY_OK),
                         (self.silent_breakaway_ok, JOB_OBJECT_LIMIT_SILENT_BREAKAWAY_OK),
                         (self.kill_on_job_close, JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE)):
            if on:
                flags |= flag
        return flags


@dataclass(frozen=True, slots=True)
class CpuRate:
    """``[job.cpu_rate]``: exactly one of hard_cap, weight, or min_rate with max_rate."""
    hard_cap: int | None = None
    weight: int | None = None
    min_rate: int | None = None
    max_rate: int | None = None

    @property
    def control_flags(self) -> int:
        """JOBOBJECT_CPU_RATE_CONTROL_INFORMATION.ControlFlags."""
        if self.hard_cap is not None:
            mode = JOB_OBJECT_CPU_RATE_CONTROL_HARD_CAP
        elif self.weight is not None:
            mode = JOB_OBJECT_CPU_RATE_CONTROL_WEIGHT_BASED
        else:
            mode = JOB_OBJECT_CPU_RATE_CONTROL_MIN_MAX_RATE
        return JOB_OBJECT_CPU_RATE_CONTROL_ENABLE | mode


@dataclass(frozen=True, slots=True)
class Job:
    """``[[job]]``. Jobs are created at time 0 in file order; a parent comes before its children."""
    name: str
    parent: str | None = None
    completion_port: bool = False
    limits: JobLimits = JobLimits()
    cpu_rate: CpuRate | None = None


@dataclass(frozen=True, slots=True)
class Thread:
    """``[[process.thread]]``. `priority` is the relative THREAD_PRIORITY_* value;
    `start_ns` and `affinity` are resolved (defaults: the process's)."""
    name: str
    process: str
    priority: int = 0
    start_ns: int = 0
    affinity: tuple[int, ...] = (0,)
    ideal_cpu: int | None = None
    disable_boost: bool = False
    program: tuple[Step, ...] = ()
    affinity_given: bool = False  # False: the process's affinity, whatever it turns out to be
    program_name: str | None = None  # the [programs] entry `program` came from, if any


@dataclass(frozen=True, slots=True)
class Process:
    """``[[process]]``. `affinity` is resolved (default: every CPU); `threads[0]` is the
    initial thread."""
    name: str
    priority_class: str = "normal"
    foreground: bool = False
    start_ns: int = 0
    parent: str | None = None
    job: str | None = None
    breakaway: bool = False
    create_suspended: bool = False
    protection: str = "none"
    disable_boost: bool = False
    affinity: tuple[int, ...] = (0,)
    threads: tuple[Thread, ...] = ()
    # Not written in the file: the kernel applies inheritance from the parent (nt-facts §1.6)
    priority_class_given: bool = False
    affinity_given: bool = False


@dataclass(frozen=True, slots=True)
class At:
    """``[[at]]``: `action` done to the machine at `time_ns`."""
    time_ns: int
    action: Action


@dataclass(frozen=True, slots=True)
class Scenario:
    """A validated scenario. Lists keep file order; `programs` maps a name to its steps."""
    filename: str
    system: System
    events: tuple[Event, ...] = ()
    semaphores: tuple[Semaphore, ...] = ()
    mutexes: tuple[Mutex, ...] = ()
    jobs: tuple[Job, ...] = ()
    processes: tuple[Process, ...] = ()
    # A plain dict (read-only by convention) so that a Scenario pickles for worker processes.
    programs: Mapping[str, tuple[Step, ...]] = field(default_factory=dict)
    at: tuple[At, ...] = ()
    source: str = field(default="", repr=False, compare=False)
    _index: dict = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        index: dict[str, object] = {}
        for group in (self.events, self.semaphores, self.mutexes, self.jobs, self.processes):
            index.update((o.name, o) for o in group)
        index.update((t.name, t) for p in self.processes for t in p.threads)
        object.__setattr__(self, "_index", index)

    @property
    def until_ns(self) -> int:
        """The run length: [system] until, else DEFAULT_RUN_NS."""
        return DEFAULT_RUN_NS if self.system.until_ns is None else self.system.until_ns

    @property
    def threads(self) -> tuple[Thread, ...]:
        """Every thread, in file order."""
        return tuple(t for p in self.processes for t in p.threads)

    def kind_of(self, name: str) -> str | None:
        """What `name` is: event, semaphore, mutex, job, process or thread; None if unknown."""
        obj = self._index.get(name)
        return None if obj is None else _KIND_OF_TYPE[type(obj)]

    def _get(self, name: str, kind: type):
        obj = self._index.get(name)
        if not isinstance(obj, kind):
            raise KeyError(f"no {_KIND_OF_TYPE[kind]} named {name!r}")
        return obj

    def event(self, name: str) -> Event:
        return self._get(name, Event)

    def semaphore(self, name: str) -> Semaphore:
        return self._get(name, Semaphore)

    def mutex(self, name: str) -> Mutex:
        return self._get(name, Mutex)

    def job(self, name: str) -> Job:
        return self._get(name, Job)

    def process(self, name: str) -> Process:
        return self._get(name, Process)

    def thread(self, name: str) -> Thread:
        return self._get(name, Thread)


_KIND_OF_TYPE = {Event: "event", Semaphore: "semaphore", Mutex: "mutex", Job: "job",
                 Process: "process", Thread: "thread"}


# --- Public entry points ------------------------------------------------------------------------

def load_scenario(path: str | Path) -> Scenario:
    """Read and validate the scenario file at `path` (UTF-8 TOML)."""
    filename = str(path)
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ScenarioError(f"cannot read file: {exc.strerror or exc}", filename) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ScenarioError(f"not UTF-8 text (byte 0x{data[exc.start]:02x})", filename,
                            line) from None
    return parse_scenario(text, filename)


def parse_scenario(text: str, filename: str = "<string>") -> Scenario:
    """Validate scenario `text`; `filename` is only used in error messages."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise _syntax_error(text, filename, str(exc)) from None
    except RecursionError:
        raise ScenarioError("TOML syntax: arrays or tables nested too deeply", filename,
                            1) from None
    except ValueError:  # Python refuses int() of more than 4300 digits
        m = re.search(r"[0-9_]{4000,}", text)
        line = text.count("\n", 0, m.start()) + 1 if m else 1
        raise ScenarioError("TOML syntax: a number with thousands of digits", filename,
                            line) from None
    return _Validator(text, filename).scenario(raw)


# --- Source locations ---------------------------------------------------------------------------

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_TOML_MSG = re.compile(r"^(?P<msg>.*?)\s*\(at (?:line (?P<line>\d+), column (?P<col>\d+)|"
                       r"end of document)\)$", re.DOTALL)


def format_key(path: Iterable[str | int]) -> str:
    """A key path as errors print it: ``process[2].thread[0].priority``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            name = part if _BARE_KEY.fullmatch(part) else json.dumps(part)
            out += f".{name}" if out else name
    return out


def _syntax_error(text: str, filename: str, message: str) -> ScenarioError:
    m = _TOML_MSG.match(message)
    if m is None:
        return ScenarioError(f"TOML syntax: {message}", filename, 1)
    if m["line"] is None:
        line, detail = text.count("\n") + 1, f"{m['msg']} (at end of file)"
    else:
        line, detail = int(m["line"]), f"{m['msg']} (column {m['col']})"
    path = _Locator(text).path_at_line(line)
    return ScenarioError(f"TOML syntax: {detail}", filename, line,
                         format_key(path) if path else None)


class _Locator:
    """Where each key, table header and array element of a TOML text starts.

    tomllib keeps no positions, so this re-reads the text with a small scanner
    that only follows structure (headers, dotted and quoted keys, arrays, inline
    tables, strings, comments). Paths use tomllib's shape: ``("process", 2,
    "thread", 0, "program", 3)``. On text tomllib rejected it maps what it can.
    """

    def __init__(self, text: str) -> None:
        self.text = text
        self.line_starts = [0] + [i + 1 for i, c in enumerate(text) if c == "\n"]
        self.offsets: dict[tuple, int] = {}
        self.first_on_line: dict[int, tuple] = {}
        self.headers: list[tuple[int, tuple]] = []
        self._aot_counts: dict[tuple, int] = {}
        try:
            self._scan()
        except RecursionError:
            pass  # absurdly nested garbage: keep what was mapped

    def line(self, offset: int) -> int:
        return bisect_right(self.line_starts, offset)

    def line_of(self, path: tuple) -> int:
        """The line of `path`, else of its nearest mapped ancestor, else 1."""
        while path:
            if path in self.offsets:
                return self.line(self.offsets[path])
            path = path[:-1]
        return 1

    def path_at_line(self, line: int) -> tuple | None:
        """The key starting on `line`, else the table whose header is the last before it."""
        if line in self.first_on_line:
            return self.first_on_line[line]
        before = [path for ln, path in self.headers if ln <= line]
        return before[-1] if before else None

    def _mark(self, path: tuple, offset: int, overwrite: bool = True) -> None:
        if overwrite or path not in self.offsets:
            self.offsets[path] = offset
        self.first_on_line.setdefault(self.line(offset), path)

    # The scanner. Every helper returns an offset >= the one it was given, and the
    # loops advance or return, so garbage cannot make it spin.

    def _peek(self, i: int) -> str:
        return self.text[i] if i < len(self.text) else ""

    def _blank(self, i: int) -> int:
        while self._peek(i) in (" ", "\t"):
            i += 1
        return i

    def _eol(self, i: int) -> int:
        j = self.text.find("\n", i)
        return len(self.text) if j < 0 else j + 1

    def _space(self, i: int) -> int:
        """Skip blanks, newlines and comments (inside arrays and inline tables)."""
        while True:
            c = self._peek(i)
            if c in (" ", "\t", "\r", "\n"):
                i += 1
            elif c == "#":
                i = self._eol(i)
            else:
                return i

    def _string_end(self, i: int) -> int:
        t = self.text
        quote = t[i]
        if t.startswith(quote * 3, i):
            j = i + 3
            while j < len(t):
                if quote == '"' and t[j] == "\\":
                    j += 2
                elif t.startswith(quote * 3, j):
                    j += 3
                    while self._peek(j) == quote:  # up to two quotes may close the content
                        j += 1
                    return j
                else:
                    j += 1
            return len(t)
        j = i + 1
        while j < len(t) and t[j] != "\n":
            if quote == '"' and t[j] == "\\":
                j += 2
            elif t[j] == quote:
                return j + 1
            else:
                j += 1
        return j

    def _key(self, i: int) -> tuple[list[str], int]:
        parts: list[str] = []
        while True:
            i = self._blank(i)
            c = self._peek(i)
            if c in ('"', "'"):
                j = self._string_end(i)
                raw = self.text[i:j]
                try:
                    parts.append(tomllib.loads(f"k = {raw}")["k"])
                except (ValueError, KeyError, TypeError):
                    parts.append(raw[1:-1])
                i = j
            else:
                m = _BARE_KEY.match(self.text, i)
                if m is None:
                    return parts, i
                parts.append(m.group())
                i = m.end()
            i = self._blank(i)
            if self._peek(i) != ".":
                return parts, i
            i += 1

    def _resolve(self, parts: list[str]) -> tuple:
        """A header's dotted name as a path: arrays of tables mean their last element."""
        path: tuple = ()
        for part in parts:
            path += (part,)
            if path in self._aot_counts:
                path += (self._aot_counts[path] - 1,)
        return path

    def _scan(self) -> None:
        t, i, table = self.text, 0, ()
        while i < len(t):
            i = self._blank(i)
            c = self._peek(i)
            if c in ("\r", "\n"):
                i += 1
            elif c == "#":
                i = self._eol(i)
            elif c == "[":
                is_array = t.startswith("[[", i)
                parts, _ = self._key(i + (2 if is_array else 1))
                if parts:
                    table = self._header(parts, is_array, i)
                i = self._eol(i)
            else:
                parts, j = self._key(i)
                j = self._blank(j)
                if parts and self._peek(j) == "=":
                    path = table + tuple(parts)
                    for k in range(1, len(parts)):
                        self._mark(table + tuple(parts[:k]), i, overwrite=False)
                    self._mark(path, i)
                    j = self._value(self._blank(j + 1), path)
                i = self._eol(max(i, j))

    def _header(self, parts: list[str], is_array: bool, offset: int) -> tuple:
        if is_array:
            array = self._resolve(parts[:-1]) + (parts[-1],)
            index = self._aot_counts.get(array, 0)
            self._aot_counts[array] = index + 1
            self._mark(array, offset, overwrite=False)
            path = array + (index,)
        else:
            path = self._resolve(parts)
        for k in range(1, len(path)):
            self._mark(path[:k], offset, overwrite=False)
        self._mark(path, offset)
        self.first_on_line[self.line(offset)] = path  # the header's own table, not a prefix
        self.headers.append((self.line(offset), path))
        return path

    def _value(self, i: int, path: tuple) -> int:
        c = self._peek(i)
        if c in ('"', "'"):
            return self._string_end(i)
        if c == "[":
            i, index = self._space(i + 1), 0
            while self._peek(i) not in ("]", ""):
                self._mark(path + (index,), i)
                j = self._value(i, path + (index,))
                i, index = self._space(j), index + 1
                if self._peek(i) == ",":
                    i = self._space(i + 1)
                elif self._peek(i) != "]":
                    return i
            return i + 1 if self._peek(i) == "]" else i
        if c == "{":
            i = self._space(i + 1)
            while self._peek(i) not in ("}", ""):
                parts, j = self._key(i)
                j = self._blank(j)
                if not parts or self._peek(j) != "=":
                    return j
                for k in range(1, len(parts)):
                    self._mark(path + tuple(parts[:k]), i, overwrite=False)
                self._mark(path + tuple(parts), i)
                i = self._space(self._value(self._blank(j + 1), path + tuple(parts)))
                if self._peek(i) == ",":
                    i = self._space(i + 1)
                elif self._peek(i) != "}":
                    return i
            return i + 1 if self._peek(i) == "}" else i
        j = i
        while j < len(self.text) and self.text[j] not in ",]}#\r\n":
            j += 1
        return j


# --- Validation ---------------------------------------------------------------------------------

_TOP_KEYS = ("system", "event", "semaphore", "mutex", "job", "process", "programs", "at")
_SYSTEM_KEYS = ("cpus", "build", "quantum", "win32_priority_separation", "boot", "until", "seed")
_EVENT_KEYS = ("name", "kind", "signaled")
_SEMAPHORE_KEYS = ("name", "initial", "maximum")
_MUTEX_KEYS = ("name",)
_JOB_KEYS = ("name", "parent", "completion_port", "limits", "cpu_rate")
_LIMIT_KEYS = ("active_process", "affinity", "priority_class", "scheduling_class",
               "per_process_user_time", "per_job_user_time", "end_of_job_time_action",
               "process_memory", "job_memory", "kill_on_job_close", "breakaway_ok",
               "silent_breakaway_ok")
_CPU_RATE_KEYS = ("hard_cap", "weight", "min_rate", "max_rate")
_PROCESS_KEYS = ("name", "priority_class", "foreground", "start", "parent", "job", "breakaway",
                 "create_suspended", "protection", "disable_boost", "affinity", "thread")
_THREAD_KEYS = ("name", "priority", "start", "affinity", "ideal_cpu", "disable_boost", "program")
_AT_KEYS = ("time", "do")
_SECTIONS = ("event", "semaphore", "mutex", "job", "process")  # each key is also its kind
_INT_TOKEN = re.compile(r"[-+]?(?:0[xX][0-9a-fA-F]+|[0-9]+)")
_CPU_RANGE = re.compile(r"([0-9]+)(?:-([0-9]+))?")


class _Invalid(Exception):
    """Raised inside the validator; turned into a ScenarioError with a line."""

    def __init__(self, path: tuple, message: str) -> None:
        super().__init__(message)
        self.path = path
        self.message = message




def _article(noun: str) -> str:
    return f"{'an' if noun[:1] in 'aeiou' else 'a'} {noun}"


def _suggest(word: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def _int_token(token: str, what: str) -> int:
    if not _INT_TOKEN.fullmatch(token) or len(token) > 24:
        raise _Invalid((), f"{what} {token!r} is not an integer (decimal or 0x hex)")
    # base 0 reads 0x..; it refuses decimal with leading zeros, which base 10 reads.
    return int(token, 10) if re.fullmatch(r"[-+]?[0-9]+", token) else int(token, 0)


def _exit_code(token: str) -> int:
    code = _int_token(token, "exit code")
    if not -(1 << 31) <= code <= MAX_DWORD:
        raise _Invalid((), f"exit code {token} is outside -2147483648..0xFFFFFFFF")
    return code & MAX_DWORD


def _parse_cpus(text: str, cpus: int) -> tuple[int, ...]:
    """``0,1`` / ``[0, 1]`` / ``0-3`` / ``1``: sorted, no repeats, each < cpus."""
    body = text.strip()
    if body.startswith("[") and body.endswith("]"):
        body = body[1:-1]
    items = [p for p in re.split(r"[\s,]+", body.strip()) if p]
    if not items:
        raise _Invalid((), "an empty CPU list (write e.g. 0,1 or [0, 1] or 0-3)")
    found: list[int] = []
    for item in items:
        m = _CPU_RANGE.fullmatch(item)
        if m is None or len(item) > 10:
            raise _Invalid((), f"{item!r} is not a CPU index or range (write e.g. 0,1 or 0-3)")
        lo, hi = int(m[1]), int(m[2] or m[1])
        if hi < lo:
            raise _Invalid((), f"CPU range {item!r} runs backwards")
        if hi >= cpus:
            raise _Invalid((), f"CPU {hi} does not exist: [system] cpus = {cpus} "
                               f"(CPUs 0..{cpus - 1})")
        found.extend(range(lo, hi + 1))
    if len(set(found)) != len(found):
        raise _Invalid((), f"a CPU is listed twice in {text.strip()!r}")
    return tuple(sorted(found))


class _Validator:
    """Turns tomllib's dict into the model; every failure names its key path."""

    def __init__(self, text: str, filename: str) -> None:
        self.text = text
        self.filename = filename
        self._locator: _Locator | None = None
        self.cpus = 1
        self.boot = "bare"
        self.names: dict[str, tuple[str, tuple]] = {}   # name -> (kind, path of its name key)
        self.process_class: dict[str, str] = {}
        self.programs: dict[str, tuple[Step, ...]] = {}
        self.program_names: set[str] = set()
        self.fibers_created: set[str] = set()
        self.fls_allocated: set[str] = set()
        self.deferred: list[tuple[tuple, str, str, str]] = []  # (path, step text, kind, name)

    def error(self, path: tuple, message: str) -> ScenarioError:
        if self._locator is None:
            self._locator = _Locator(self.text)
        return ScenarioError(message, self.filename, self._locator.line_of(path),
                             format_key(path) or None)

    def scenario(self, raw: dict) -> Scenario:
        try:
            return self._scenario(raw)
        except _Invalid as exc:
            raise self.error(exc.path, exc.message) from None

    # Typed readers. Each takes the table, its path and the key.

    def _table(self, value: object, path: tuple, allowed: tuple[str, ...],
               required: tuple[str, ...] = ()) -> dict:
        if not isinstance(value, dict):
            raise _Invalid(path, f"expected a table, got {describe_type(value)}")
        for key in value:
            if key not in allowed:
                raise _Invalid(path + (key,), f"unknown key {key!r}{_suggest(key, allowed)}"
                               f" (allowed: {', '.join(allowed)})")
        for key in required:
            if key not in value:
                raise _Invalid(path + (key,), f"missing required key {key!r}")
        return value

    def _tables(self, d: dict, key: str, prefix: tuple = ()) -> list[dict]:
        value = d.get(key, [])
        header = ".".join([p for p in prefix if isinstance(p, str)] + [key])
        if not isinstance(value, list):
            raise _Invalid(prefix + (key,), f"expected an array of tables (write [[{header}]]), "
                                            f"got {describe_type(value)}")
        for i, item in enumerate(value):
            if not isinstance(item, dict):
                raise _Invalid(prefix + (key, i), f"expected a table, got {describe_type(item)}")
        return value

    def _int(self, d: dict, path: tuple, key: str, default, lo: int, hi: int,
             hex_range: bool = False):
        if key not in d:
            return default
        value = d[key]
        if isinstance(value, bool) or not isinstance(value, int):
            raise _Invalid(path + (key,), f"expected an integer, got {describe_type(value)}")
        if not lo <= value <= hi:
            shown = f"0x{lo:X}..0x{hi:X}" if hex_range else f"{lo}..{hi}"
            raise _Invalid(path + (key,), f"{value} is out of range ({shown})")
        return value

    def _bool(self, d: dict, path: tuple, key: str, default: bool = False) -> bool:
        value = d.get(key, default)
        if not isinstance(value, bool):
            raise _Invalid(path + (key,), f"expected true or false, got {describe_type(value)}")
        return value

    def _str(self, d: dict, path: tuple, key: str, default=None):
        value = d.get(key, default)
        if value is not None and not isinstance(value, str):
            raise _Invalid(path + (key,), f"expected a string, got {describe_type(value)}")
        return value

    def _choice(self, d: dict, path: tuple, key: str, choices: Iterable[str], what: str,
                default=None):
        value = self._str(d, path, key, default)
        choices = tuple(choices)
        if value is not None and value not in choices:
            raise _Invalid(path + (key,), f"unknown {what} {value!r}{_suggest(value, choices)}"
                                          f" (expected {', '.join(choices)})")
        return value

    def _duration(self, d: dict, path: tuple, key: str, default=None):
        if key not in d:
            return default
        try:
            return parse_duration(d[key])
        except UnitError as exc:
            raise _Invalid(path + (key,), str(exc)) from None

    def _size(self, d: dict, path: tuple, key: str):
        if key not in d:
            return None
        try:
            return parse_size(d[key])
        except UnitError as exc:
            raise _Invalid(path + (key,), str(exc)) from None

    def _affinity(self, d: dict, path: tuple, key: str):
        if key not in d:
            return None
        value = d[key]
        if not isinstance(value, list):
            raise _Invalid(path + (key,), f"expected an array of CPU indexes such as [0, 1], "
                                          f"got {describe_type(value)}")
        if not value:
            raise _Invalid(path + (key,), "an empty affinity: give at least one CPU")
        seen: set[int] = set()
        for i, cpu in enumerate(value):
            if isinstance(cpu, bool) or not isinstance(cpu, int):
                raise _Invalid(path + (key, i), f"expected a CPU index (an integer), "
                                                f"got {describe_type(cpu)}")
            if not 0 <= cpu < self.cpus:
                raise _Invalid(path + (key, i), f"CPU {cpu} does not exist: [system] cpus = "
                                                f"{self.cpus} (CPUs 0..{self.cpus - 1})")
            if cpu in seen:
                raise _Invalid(path + (key, i), f"CPU {cpu} is listed twice")
            seen.add(cpu)
        return tuple(sorted(seen))

    def _priority_value(self, value: object, path: tuple, priority_class: str | None) -> int:
        """A relative thread priority, by name or number; `priority_class` None skips
        the REALTIME-only check (the class may change before the call runs)."""
        expected = f"{', '.join(THREAD_PRIORITIES)} or an integer -15..15"
        if isinstance(value, str):
            if value in THREAD_PRIORITIES:
                return THREAD_PRIORITIES[value]
            if re.fullmatch(r"[-+]?[0-9]{1,6}", value):
                value = int(value, 10)
            else:
                raise _Invalid(path, f"unknown priority {value!r}"
                                     f"{_suggest(value, THREAD_PRIORITIES)} (expected {expected})")
        if isinstance(value, bool) or not isinstance(value, int):
            raise _Invalid(path, f"expected a priority ({expected}), got {describe_type(value)}")
        if value not in VALID_PRIORITIES:
            raise _Invalid(path, f"priority {value} is not a value SetThreadPriority accepts "
                                 f"(-15, -2..2, 15; also -7..-3 and 3..6 in a realtime process)")
        if (priority_class is not None and priority_class != "realtime"
                and value in REALTIME_ONLY_PRIORITIES):
            raise _Invalid(path, f"priority {value} is only valid in a realtime process; this "
                                 f"process is {priority_class} (use -15, -2..2 or 15)")
        return value

    def _name(self, d: dict, path: tuple, kind: str, register: bool = True) -> str:
        if "name" not in d:
            raise _Invalid(path + ("name",), f"missing required key 'name' (every {kind} "
                                             f"needs one)")
        name = d["name"]
        if not isinstance(name, str):
            raise _Invalid(path + ("name",), f"expected a string, got {describe_type(name)}")
        self._check_name(name, path + ("name",))
        if register:
            if name in self.names:
                other_kind, other = self.names[name]
                raise _Invalid(path + ("name",), f"name {name!r} is already used by the "
                                                 f"{other_kind} at {format_key(other[:-1])}")
            self.names[name] = (kind, path + ("name",))
        return name

    @staticmethod
    def _check_name(name: str, path: tuple) -> None:
        if not name:
            raise _Invalid(path, "a name cannot be empty")
        if any(c.isspace() or not c.isprintable() for c in name):
            raise _Invalid(path, f"name {name!r} contains whitespace or control characters "
                                 f"(program steps refer to names by words)")

    def _ref(self, name: object, path: tuple, kinds: tuple[str, ...], what: str) -> str:
        """`name` must be declared as one of `kinds`."""
        if not isinstance(name, str):
            raise _Invalid(path, f"expected the name of a {what}, got {describe_type(name)}")
        entry = self.names.get(name)
        if entry is None:
            candidates = [n for n, (k, _) in self.names.items() if k in kinds]
            raise _Invalid(path, f"no {what} named {name!r}{_suggest(name, candidates)}")
        if entry[0] not in kinds:
            raise _Invalid(path, f"{name!r} is {_article(entry[0])}, not {_article(what)}")
        return name

    # Sections, in file-independent order: names first, so references can be checked.

    def _scenario(self, raw: dict) -> Scenario:
        for key in raw:
            if key not in _TOP_KEYS:
                raise _Invalid((key,), f"unknown key {key!r}{_suggest(key, _TOP_KEYS)}"
                                       f" (allowed: {', '.join(_TOP_KEYS)})")
        system = self._system(raw.get("system", {}))
        sections = {key: self._tables(raw, key) for key in _SECTIONS}
        at = self._tables(raw, "at")
        for key in _SECTIONS:
            for i, d in enumerate(sections[key]):
                self._name(d, (key, i), key)
        for i, d in enumerate(sections["process"]):
            for j, t in enumerate(self._tables(d, "thread", ("process", i))):
                self._name(t, ("process", i, "thread", j), "thread")
        raw_programs = raw.get("programs", {})
        if not isinstance(raw_programs, dict):
            raise _Invalid(("programs",), f"expected a table of named step lists, "
                                          f"got {describe_type(raw_programs)}")
        for name in raw_programs:
            self._check_name(name, ("programs", name))
        self.program_names = set(raw_programs)

        events = tuple(self._event(d, ("event", i)) for i, d in enumerate(sections["event"]))
        semaphores = tuple(self._semaphore(d, ("semaphore", i))
                           for i, d in enumerate(sections["semaphore"]))
        mutexes = tuple(Mutex(self._name(self._table(d, ("mutex", i), _MUTEX_KEYS),
                                         ("mutex", i), "mutex", register=False))
                        for i, d in enumerate(sections["mutex"]))
        jobs = self._jobs(sections["job"])
        for i, d in enumerate(sections["process"]):  # classes first: threads check against them
            self.process_class[d["name"]] = self._choice(
                d, ("process", i), "priority_class", PRIORITY_CLASSES, "priority class", "normal")
        for name, steps in raw_programs.items():
            self.programs[name] = self._program(steps, ("programs", name))
        processes = self._processes(sections["process"])
        actions = tuple(self._at(d, ("at", i)) for i, d in enumerate(at))
        self._check_deferred()
        return Scenario(self.filename, system, events, semaphores, mutexes, jobs, processes,
                        dict(self.programs), actions, self.text)

    def _system(self, d: object) -> System:
        path = ("system",)
        d = self._table(d, path, _SYSTEM_KEYS)
        self.cpus = self._int(d, path, "cpus", 1, 1, MAX_CPUS)
        build = self._str(d, path, "build", DEFAULT_BUILD)
        if not build.strip():
            raise _Invalid(path + ("build",), "an empty build (default: " + DEFAULT_BUILD + ")")
        try:
            catalogue().find(build)
        except LayoutError as exc:
            raise _Invalid(path + ("build",), str(exc)) from None
        quantum = self._choice(d, path, "quantum", QUANTUM_PRESETS, "quantum preset", "client")
        separation = self._int(d, path, "win32_priority_separation", None, 0, 0x3F,
                               hex_range=True)
        boot = self._choice(d, path, "boot", BOOT_SETS, "boot set", "bare")
        self.boot = boot
        until = self._duration(d, path, "until")
        seed = self._int(d, path, "seed", 0, 0, 2**64 - 1)
        return System(self.cpus, build, quantum, separation, boot, until, seed)

    def _event(self, d: dict, path: tuple) -> Event:
        self._table(d, path, _EVENT_KEYS, required=("kind",))
        kind = self._choice(d, path, "kind", EVENT_KINDS, "event kind")
        return Event(d["name"], kind, self._bool(d, path, "signaled"))

    def _semaphore(self, d: dict, path: tuple) -> Semaphore:
        self._table(d, path, _SEMAPHORE_KEYS, required=("maximum",))
        maximum = self._int(d, path, "maximum", None, 1, MAX_LONG)
        initial = self._int(d, path, "initial", 0, 0, MAX_LONG)
        if initial > maximum:
            raise _Invalid(path + ("initial",), f"initial count {initial} exceeds maximum "
                                                f"{maximum}")
        return Semaphore(d["name"], initial, maximum)

    def _jobs(self, tables: list[dict]) -> tuple[Job, ...]:
        jobs = []
        for i, d in enumerate(tables):
            path = ("job", i)
            self._table(d, path, _JOB_KEYS)
            parent = d.get("parent")
            if parent is not None:
                self._ref(parent, path + ("parent",), ("job",), "job")
            limits = self._limits(d["limits"], path + ("limits",)) if "limits" in d else JobLimits()
            cpu_rate = self._cpu_rate(d["cpu_rate"], path + ("cpu_rate",)) if "cpu_rate" in d \
                else None
            jobs.append(Job(d["name"], parent, self._bool(d, path, "completion_port"), limits,
                            cpu_rate))
        order = {job.name: i for i, job in enumerate(jobs)}
        for i, job in enumerate(jobs):
            self._check_chain(job.name, {j.name: j.parent for j in jobs}, ("job", i, "parent"),
                              "job")
            if job.parent is not None and order[job.parent] > i:
                raise _Invalid(("job", i, "parent"), f"parent job {job.parent!r} must be "
                                                     f"declared before {job.name!r} (jobs are "
                                                     f"created at 0 in file order)")
        return tuple(jobs)

    @staticmethod
    def _check_chain(start: str, parents: dict[str, str | None], path: tuple, kind: str) -> None:
        chain, node = [start], parents.get(start)
        while node is not None:
            if node == start:
                raise _Invalid(path, f"{kind} parent cycle: {' -> '.join(chain + [start])}")
            if node in chain:
                return  # a cycle further up; it is reported at its own members
            chain.append(node)
            node = parents.get(node)

    def _limits(self, d: object, path: tuple) -> JobLimits:
        d = self._table(d, path, _LIMIT_KEYS)
        return JobLimits(
            active_process=self._int(d, path, "active_process", None, 1, MAX_DWORD),
            affinity=self._affinity(d, path, "affinity"),
            priority_class=self._choice(d, path, "priority_class", PRIORITY_CLASSES,
                                        "priority class"),
            scheduling_class=self._int(d, path, "scheduling_class", None, 0, 9),
            per_process_user_time_ns=self._duration(d, path, "per_process_user_time"),
            per_job_user_time_ns=self._duration(d, path, "per_job_user_time"),
            end_of_job_time_action=self._choice(d, path, "end_of_job_time_action",
                                                END_OF_JOB_TIME_ACTIONS, "end-of-job action",
                                                "terminate"),
            process_memory_bytes=self._size(d, path, "process_memory"),
            job_memory_bytes=self._size(d, path, "job_memory"),
            kill_on_job_close=self._bool(d, path, "kill_on_job_close"),
            breakaway_ok=self._bool(d, path, "breakaway_ok"),
            silent_breakaway_ok=self._bool(d, path, "silent_breakaway_ok"))

    def _cpu_rate(self, d: object, path: tuple) -> CpuRate:
        d = self._table(d, path, _CPU_RATE_KEYS)
        modes = [k for k in ("hard_cap", "weight") if k in d]
        if "min_rate" in d or "max_rate" in d:
            modes.append("min_rate/max_rate")
        if len(modes) != 1:
            raise _Invalid(path, "give exactly one of hard_cap, weight, or min_rate with "
                                 "max_rate" + (f" (found {' and '.join(modes)})" if modes else ""))
        rate = CpuRate(hard_cap=self._int(d, path, "hard_cap", None, 1, 10000),
                       weight=self._int(d, path, "weight", None, 1, 9),
                       min_rate=self._int(d, path, "min_rate", None, 0, 10000),
                       max_rate=self._int(d, path, "max_rate", None, 0, 10000))
        if modes == ["min_rate/max_rate"]:
            for key in ("min_rate", "max_rate"):
                if key not in d:
                    raise _Invalid(path + (key,), "min_rate and max_rate go together: "
                                                  f"missing {key!r}")
            if rate.min_rate > rate.max_rate:
                raise _Invalid(path + ("min_rate",), f"min_rate {rate.min_rate} exceeds "
                                                     f"max_rate {rate.max_rate}")
        return rate

    def _processes(self, tables: list[dict]) -> tuple[Process, ...]:
        processes = []
        foreground: str | None = None
        for i, d in enumerate(tables):
            path = ("process", i)
            self._table(d, path, _PROCESS_KEYS)
            name = d["name"]
            parent = d.get("parent")
            if parent is not None and not self._boot_parent(parent):
                if (isinstance(parent, str) and parent not in self.names
                        and parent in BOOT_PROCESS_NAMES["desktop"]):
                    raise _Invalid(path + ("parent",), f"{parent!r} is a process of the "
                                   f"desktop boot set, and this scenario boots "
                                   f"{self.boot!r} (set [system] boot = \"desktop\")")
                self._ref(parent, path + ("parent",), ("process",), "process")
                if parent == name:
                    raise _Invalid(path + ("parent",), f"process {name!r} cannot be its own "
                                                       f"parent")
            job = d.get("job")
            if job is not None:
                self._ref(job, path + ("job",), ("job",), "job")
            start = self._duration(d, path, "start", 0)
            affinity = self._affinity(d, path, "affinity") or tuple(range(self.cpus))
            is_foreground = self._bool(d, path, "foreground")
            if is_foreground:
                if foreground is not None:
                    raise _Invalid(path + ("foreground",), f"only one process can be in the "
                                                           f"foreground; {foreground!r} already is")
                foreground = name
            threads_raw = self._tables(d, "thread", path)
            if not threads_raw:
                raise _Invalid(path, f"process {name!r} has no [[process.thread]] (the first "
                                     f"one listed is its initial thread)")
            threads = tuple(self._thread(t, path + ("thread", j), name, start, affinity,
                                         initial=(j == 0))
                            for j, t in enumerate(threads_raw))
            processes.append(Process(
                name=name, priority_class=self.process_class[name], foreground=is_foreground,
                start_ns=start, parent=parent, job=job,
                breakaway=self._bool(d, path, "breakaway"),
                create_suspended=self._bool(d, path, "create_suspended"),
                protection=self._choice(d, path, "protection", PROTECTIONS, "protection",
                                        "none"),
                disable_boost=self._bool(d, path, "disable_boost"),
                affinity=affinity, threads=threads,
                priority_class_given="priority_class" in d, affinity_given="affinity" in d))
        self._check_process_parents(processes)
        return tuple(processes)

    def _boot_parent(self, name: object) -> bool:
        """`name` is a process of the boot set that no scenario process shadows."""
        return (isinstance(name, str) and name not in self.names
                and name in BOOT_PROCESS_NAMES[self.boot])

    def _check_process_parents(self, processes: list[Process]) -> None:
        parents = {p.name: p.parent for p in processes}
        order = {p.name: i for i, p in enumerate(processes)}
        for i, p in enumerate(processes):
            path = ("process", i, "parent")
            self._check_chain(p.name, parents, path, "process")
            if p.parent is None or p.parent not in order:
                continue  # no parent, or one of the boot set (there from time 0)
            creator = processes[order[p.parent]]
            if creator.start_ns > p.start_ns or (creator.start_ns == p.start_ns
                                                 and order[p.parent] > i):
                raise _Invalid(path, f"parent {p.parent!r} does not exist yet when {p.name!r} is "
                                     f"created at {format_duration(p.start_ns)} (parent starts at "
                                     f"{format_duration(creator.start_ns)}"
                                     + (", later in the file)" if creator.start_ns == p.start_ns
                                        else ")"))

    def _thread(self, d: dict, path: tuple, process: str, process_start: int,
                process_affinity: tuple[int, ...], initial: bool) -> Thread:
        self._table(d, path, _THREAD_KEYS)
        priority = (self._priority_value(d["priority"], path + ("priority",),
                                         self.process_class[process])
                    if "priority" in d else 0)
        start = self._duration(d, path, "start", process_start)
        if initial and start != process_start:
            raise _Invalid(path + ("start",), f"the first thread is the initial thread and "
                                              f"starts with its process "
                                              f"({format_duration(process_start)})")
        if start < process_start:
            raise _Invalid(path + ("start",), f"thread starts at {format_duration(start)}, "
                                              f"before its process "
                                              f"({format_duration(process_start)})")
        affinity = self._affinity(d, path, "affinity") or process_affinity
        outside = sorted(set(affinity) - set(process_affinity))
        if outside:
            raise _Invalid(path + ("affinity",), f"CPU {outside[0]} is not in the process "
                                                 f"affinity {list(process_affinity)} (a thread's "
                                                 f"affinity must be a subset)")
        ideal = self._int(d, path, "ideal_cpu", None, 0, self.cpus - 1)
        program: tuple[Step, ...] = ()
        program_name = None
        if "program" in d:
            value = d["program"]
            if isinstance(value, str):
                program_name = value
                if value not in self.program_names:
                    raise _Invalid(path + ("program",), f"no program named {value!r} in "
                                                        f"[programs]"
                                                        f"{_suggest(value, self.program_names)}"
                                                        f" (a program is an array of steps such "
                                                        f"as [\"cpu 10ms\"], or the name of a "
                                                        f"[programs] entry)")
                program = self.programs[value]
            else:
                program = self._program(value, path + ("program",))
        return Thread(d["name"], process, priority, start, affinity, ideal,
                      self._bool(d, path, "disable_boost"), program,
                      affinity_given="affinity" in d, program_name=program_name)

    def _program(self, value: object, path: tuple) -> tuple[Step, ...]:
        if not isinstance(value, list):
            raise _Invalid(path, f"expected an array of step strings such as "
                                 f"[\"cpu 10ms\", \"exit 0\"], got {describe_type(value)}")
        steps = []
        for i, text in enumerate(value):
            if steps and isinstance(steps[-1], (Exit, Repeat)):
                raise _Invalid(path + (i,), f"step {i} is never reached: it follows "
                                            f"'{steps[-1]}'")
            if not isinstance(text, str):
                raise _Invalid(path + (i,), f"expected a step string such as 'cpu 10ms', "
                                            f"got {describe_type(text)}")
            try:
                steps.append(self._step(text, path + (i,)))
            except _Invalid as exc:
                raise _Invalid(exc.path or path + (i,), f"{text.strip()!r}: {exc.message}") \
                    from None
        return tuple(steps)

    def _duration_arg(self, words: list[str]) -> int:
        try:
            return parse_duration(" ".join(words))
        except UnitError as exc:
            raise _Invalid((), str(exc)) from None

    def _object_ref(self, name: str, kinds: tuple[str, ...], what: str) -> str:
        try:
            return self._ref(name, (), kinds, what)
        except _Invalid as exc:
            raise _Invalid((), exc.message) from None

    def _named(self, kind: str):
        """A checker: the word names an object of `kind`."""
        return lambda word: self._object_ref(word, (kind,), kind)

    @staticmethod
    def _arity(op: str, args: list[str], low: int, high: int | None, usage: str) -> None:
        if len(args) < low or (high is not None and len(args) > high):
            raise _Invalid((), f"wrong arguments for {op!r} (usage: {usage})")

    def _step(self, text: str, path: tuple) -> Step:
        words = text.split()
        if not words:
            raise _Invalid((), "an empty step")
        op, args = words[0], words[1:]
        if op not in STEP_USAGE:
            raise _Invalid((), f"unknown step {op!r}{_suggest(op, STEP_USAGE)} "
                               f"(steps: {', '.join(STEP_USAGE)})")
        usage = STEP_USAGE[op]
        if op in ("cpu", "kcpu", "sleep"):
            self._arity(op, args, 1, None, usage)
            ns = self._duration_arg(args)
            return Sleep(ns) if op == "sleep" else Cpu(ns, kernel=(op == "kcpu"))
        if op == "wait":
            self._arity(op, args, 1, None, usage)
            kinds = ("event", "semaphore", "mutex", "process", "thread")
            target = self._object_ref(args[0], kinds, "event, semaphore, mutex, process or thread")
            timeout = self._duration_arg(args[1:]) if len(args) > 1 else None
            return Wait(target, self.names[target][0], timeout)
        if op == "io":
            self._arity(op, args, 2, None, usage)
            device = self._device(args[0])
            return Io(device, self._duration_arg(args[1:]), IO_INCREMENTS[device])
        if op in ("set", "reset", "pulse"):
            self._arity(op, args, 1, 1, usage)
            event = self._object_ref(args[0], ("event",), "event")
            return {"set": SetEvent, "reset": ResetEvent, "pulse": PulseEvent}[op](event)
        if op == "release":
            self._arity(op, args, 1, 2, usage)
            sem = self._object_ref(args[0], ("semaphore",), "semaphore")
            count = _int_token(args[1], "release count") if len(args) > 1 else 1
            if not 1 <= count <= MAX_LONG:
                raise _Invalid((), f"release count {count} is outside 1..{MAX_LONG}")
            return ReleaseSemaphore(sem, count)
        if op == "release_mutex":
            self._arity(op, args, 1, 1, usage)
            return ReleaseMutex(self._object_ref(args[0], ("mutex",), "mutex"))
        if op in ("commit", "decommit"):
            self._arity(op, args, 1, None, usage)
            try:
                size = parse_size(" ".join(args))
            except UnitError as exc:
                raise _Invalid((), str(exc)) from None
            return Commit(size, release=(op == "decommit"))
        if op == "set_priority":
            self._arity(op, args, 1, 1, usage)
            return SetPriority(self._priority_value(args[0], (), None))
        if op == "exit":
            self._arity(op, args, 1, 1, usage)
            return Exit(_exit_code(args[0]))
        if op in ("yield", "repeat", "fiber_convert", "fiber_to_thread"):
            self._arity(op, args, 0, 0, usage)
            return {"yield": Yield, "repeat": Repeat, "fiber_convert": FiberConvert,
                    "fiber_to_thread": FiberToThread}[op]()
        if op == "fiber_create":
            self._arity(op, args, 2, 2, usage)
            fiber, program = args
            if fiber in self.names and self.names[fiber][0] == "thread":
                raise _Invalid((), f"fiber name {fiber!r} is a thread's name (a converted "
                                   f"thread's own fiber is named after it)")
            if program not in self.program_names:
                raise _Invalid((), f"no program named {program!r} in [programs]"
                                   f"{_suggest(program, self.program_names)}")
            self.fibers_created.add(fiber)
            return FiberCreate(fiber, program)
        if op in ("fiber_switch", "fiber_delete"):
            self._arity(op, args, 1, 1, usage)
            self.deferred.append((path, text, "fiber", args[0]))
            return (FiberSwitch if op == "fiber_switch" else FiberDelete)(args[0])
        if op in ("fls_alloc", "fls_free"):
            self._arity(op, args, 1, 1, usage)
            if op == "fls_alloc":
                self.fls_allocated.add(args[0])
                return FlsAlloc(args[0])
            self.deferred.append((path, text, "FLS slot", args[0]))
            return FlsFree(args[0])
        # fls_set: the only op left
        self._arity(op, args, 2, 2, usage)
        value = _int_token(args[1], "FLS value")
        if not 0 <= value < 2**64:
            raise _Invalid((), f"FLS value {args[1]} is outside 0..0xFFFFFFFFFFFFFFFF")
        self.deferred.append((path, text, "FLS slot", args[0]))
        return FlsSet(args[0], value)

    @staticmethod
    def _device(word: str) -> str:
        if word not in IO_INCREMENTS:
            raise _Invalid((), f"unknown device {word!r}{_suggest(word, IO_INCREMENTS)} "
                               f"(devices: {', '.join(IO_INCREMENTS)})")
        return word

    def _check_deferred(self) -> None:
        """Fiber and FLS names may be used before the step creating them appears."""
        threads = {n for n, (k, _) in self.names.items() if k == "thread"}
        for path, text, kind, name in self.deferred:
            known = (self.fibers_created | threads) if kind == "fiber" else self.fls_allocated
            if name not in known:
                creator = "fiber_create" if kind == "fiber" else "fls_alloc"
                extra = " or thread" if kind == "fiber" else ""
                raise _Invalid(path, f"{text.strip()!r}: no {kind}{extra} named {name!r} "
                                     f"(no {creator} step makes it){_suggest(name, known)}")

    def _at(self, d: dict, path: tuple) -> At:
        self._table(d, path, _AT_KEYS, required=("time", "do"))
        time = self._duration(d, path, "time")
        text = d["do"]
        if not isinstance(text, str):
            raise _Invalid(path + ("do",), f"expected an action string such as "
                                           f"'set_event ev1', got {describe_type(text)}")
        try:
            action = self._action(text)
        except _Invalid as exc:
            raise _Invalid(path + ("do",), f"{text.strip()!r}: {exc.message}") from None
        return At(time, action)

    def _action(self, text: str) -> Action:
        words = text.split()
        if not words:
            raise _Invalid((), "an empty action")
        op, args = words[0], words[1:]
        if op not in ACTION_USAGE:
            raise _Invalid((), f"unknown action {op!r}{_suggest(op, ACTION_USAGE)} "
                               f"(actions: {', '.join(ACTION_USAGE)})")
        usage = ACTION_USAGE[op]
        thread, process, job = self._named("thread"), self._named("process"), self._named("job")
        if op == "set_affinity":
            self._arity(op, args, 2, None, usage)
            return SetAffinity(thread(args[0]), _parse_cpus(" ".join(args[1:]), self.cpus))
        arity = len(usage.split()) - 1
        self._arity(op, args, arity, arity, usage)
        if op == "set_event":
            return SetEvent(self._object_ref(args[0], ("event",), "event"))
        if op in ("suspend", "resume"):
            return (Suspend if op == "suspend" else Resume)(thread(args[0]))
        if op == "terminate_thread":
            return TerminateThread(thread(args[0]), _exit_code(args[1]))
        if op == "terminate_process":
            return TerminateProcess(process(args[0]), _exit_code(args[1]))
        if op == "set_priority":
            return SetThreadPriority(thread(args[0]), self._priority_value(args[1], (), None))
        if op == "set_priority_class":
            if args[1] not in PRIORITY_CLASSES:
                raise _Invalid((), f"unknown priority class {args[1]!r}"
                                   f"{_suggest(args[1], PRIORITY_CLASSES)} "
                                   f"(expected {', '.join(PRIORITY_CLASSES)})")
            return SetPriorityClass(process(args[0]), args[1])
        if op == "set_foreground":
            return SetForeground(process(args[0]))
        if op == "set_priority_separation":
            value = _int_token(args[0], "Win32PrioritySeparation")
            if not 0 <= value <= 0x3F:
                raise _Invalid((), f"Win32PrioritySeparation {args[0]} is outside 0x00..0x3F")
            return SetPrioritySeparation(value)
        if op == "assign":
            return Assign(process(args[0]), job(args[1]))
        if op == "terminate_job":
            return TerminateJob(job(args[0]), _exit_code(args[1]))
        if op == "close_job_handle":
            return CloseJobHandle(job(args[0]))
        if op == "open_process":
            if not re.fullmatch(r"0[xX][0-9a-fA-F]{1,8}", args[2]):
                raise _Invalid((), f"access mask {args[2]!r} must be hex, e.g. 0x1010")
            return OpenProcess(process(args[0]), process(args[1]), int(args[2], 16))
        # io_complete: the only op left
        return IoComplete(thread(args[0]), self._device(args[1]))

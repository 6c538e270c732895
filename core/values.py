"""Semantic values of kernel structure members, and how known members read.

A kernel object in KOI holds *values*, not bytes: ``{"UniqueProcessId": 4,
"ImageFileName": b"System", "Token": FastRef(token, 7)}``. Pointers are references
to other objects (`Ref`, or the `KObject` itself), so an object can be laid out
again for another build and its pointers follow their targets. core/memory.py
writes these values into bytes by a build's layout and reads bytes back.

The enum and time tables here are the one place that says how a known member is
shown (``_KTHREAD.State`` 2 is ``Running``); the GUI reuses them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

# --- enums -------------------------------------------------------------------

KOBJECTS = {
    0: "EventNotificationObject", 1: "EventSynchronizationObject", 2: "MutantObject",
    3: "ProcessObject", 4: "QueueObject", 5: "SemaphoreObject", 6: "ThreadObject",
    7: "GateObject", 8: "TimerNotificationObject", 9: "TimerSynchronizationObject",
    10: "Spare2Object", 11: "Spare3Object", 12: "Spare4Object", 13: "Spare5Object",
    14: "Spare6Object", 15: "Spare7Object", 16: "Spare8Object",
    17: "ProfileCallbackObject", 18: "ApcObject", 19: "DpcObject",
    20: "DeviceQueueObject", 21: "PriQueueObject", 22: "InterruptObject",
    23: "ProfileObject", 24: "Timer2NotificationObject",
    25: "Timer2SynchronizationObject", 26: "ThreadedDpcObject",
}

KTHREAD_STATE = {
    0: "Initialized", 1: "Ready", 2: "Running", 3: "Standby", 4: "Terminated",
    5: "Waiting", 6: "Transition", 7: "DeferredReady", 8: "GateWaitObsolete",
    9: "WaitingForProcessInSwap",
}

KWAIT_REASON = {
    0: "Executive", 1: "FreePage", 2: "PageIn", 3: "PoolAllocation",
    4: "DelayExecution", 5: "Suspended", 6: "UserRequest", 7: "WrExecutive",
    8: "WrFreePage", 9: "WrPageIn", 10: "WrPoolAllocation", 11: "WrDelayExecution",
    12: "WrSuspended", 13: "WrUserRequest", 14: "WrEventPair", 15: "WrQueue",
    16: "WrLpcReceive", 17: "WrLpcReply", 18: "WrVirtualMemory", 19: "WrPageOut",
    20: "WrRendezvous", 21: "WrKeyedEvent", 22: "WrTerminated",
    23: "WrProcessInSwap", 24: "WrCpuRateControl", 25: "WrCalloutStack",
    26: "WrKernel", 27: "WrResource", 28: "WrPushLock", 29: "WrMutex",
    30: "WrQuantumEnd", 31: "WrDispatchInt", 32: "WrPreempted",
    33: "WrYieldExecution", 34: "WrFastMutex", 35: "WrGuardedMutex",
    36: "WrRundown", 37: "WrAlertByThreadId", 38: "WrDeferredPreempt",
    39: "WrPhysicalFault", 40: "WrIoRing", 41: "WrMdlCache",
}

PS_PROTECTED_TYPE = {0: "PsProtectedTypeNone", 1: "PsProtectedTypeProtectedLight",
                     2: "PsProtectedTypeProtected"}

PS_PROTECTED_SIGNER = {
    0: "PsProtectedSignerNone", 1: "PsProtectedSignerAuthenticode",
    2: "PsProtectedSignerCodeGen", 3: "PsProtectedSignerAntimalware",
    4: "PsProtectedSignerLsa", 5: "PsProtectedSignerWindows",
    6: "PsProtectedSignerWinTcb", 7: "PsProtectedSignerWinSystem",
    8: "PsProtectedSignerApp",
}

KPROCESSOR_MODE = {0: "KernelMode", 1: "UserMode"}

# Named enums, so a GUI can list them; ENUM_MEMBERS says which member uses which.
ENUM_TYPES: dict[str, dict[int, str]] = {
    "KOBJECTS": KOBJECTS,
    "KTHREAD_STATE": KTHREAD_STATE,
    "KWAIT_REASON": KWAIT_REASON,
    "PS_PROTECTED_TYPE": PS_PROTECTED_TYPE,
    "PS_PROTECTED_SIGNER": PS_PROTECTED_SIGNER,
    "KPROCESSOR_MODE": KPROCESSOR_MODE,
}

# (declaring struct, member name as the layout names it) -> enum type name.
ENUM_MEMBERS: dict[tuple[str, str], str] = {
    ("_DISPATCHER_HEADER", "Type"): "KOBJECTS",
    ("_KTHREAD", "State"): "KTHREAD_STATE",
    ("_KTHREAD", "WaitReason"): "KWAIT_REASON",
    ("_KTHREAD", "WaitMode"): "KPROCESSOR_MODE",
    ("_KTHREAD", "PreviousMode"): "KPROCESSOR_MODE",
    ("_PS_PROTECTION", "Type"): "PS_PROTECTED_TYPE",
    ("_PS_PROTECTION", "Signer"): "PS_PROTECTED_SIGNER",
}

# Old names that still mean the same number (WinDbg shows either, by build).
_ENUM_ALIASES = {"KWAIT_REASON": {"WrSpare0": 14}}


def enum_of(struct: str, member: str) -> dict[int, str] | None:
    """The value -> name table of a known enum member, else None."""
    name = ENUM_MEMBERS.get((struct, member))
    return ENUM_TYPES[name] if name else None


def enum_value(struct: str, member: str, name: str) -> int | None:
    """The number of enum constant `name` for that member (None when unknown)."""
    enum = ENUM_MEMBERS.get((struct, member))
    if enum is None:
        return None
    for number, text in ENUM_TYPES[enum].items():
        if text == name:
            return number
    return _ENUM_ALIASES.get(enum, {}).get(name)


# --- times ---------------------------------------------------------------------

FILETIME_EPOCH = datetime(1601, 1, 1, tzinfo=timezone.utc)
TICK_100NS = 156_250  # the default clock interrupt, 15.625 ms, in 100 ns units

# How a time-like member reads: "date" (100 ns since 1601-01-01 UTC), "duration"
# (100 ns units), "ticks" (clock interrupts).
TIME_MEMBERS: dict[tuple[str, str], str] = {
    ("_EPROCESS", "CreateTime"): "date",
    ("_EPROCESS", "ExitTime"): "date",
    ("_ETHREAD", "CreateTime"): "date",
    ("_ETHREAD", "ExitTime"): "date",
    ("_EPROCESS", "CreateInterruptTime"): "duration",
    ("_EPROCESS", "CreateUnbiasedInterruptTime"): "duration",
    ("_KPROCESS", "KernelTime"): "ticks",
    ("_KPROCESS", "UserTime"): "ticks",
    ("_KPROCESS", "ReadyTime"): "ticks",
    ("_KTHREAD", "KernelTime"): "ticks",
    ("_KTHREAD", "UserTime"): "ticks",
    ("_EJOB", "TotalUserTime"): "duration",
    ("_EJOB", "TotalKernelTime"): "duration",
    ("_EJOB", "ThisPeriodTotalUserTime"): "duration",
    ("_EJOB", "ThisPeriodTotalKernelTime"): "duration",
    ("_EJOB", "PerProcessUserTimeLimit"): "duration",
    ("_EJOB", "PerJobUserTimeLimit"): "duration",
}


def to_filetime(when: datetime) -> int:
    """A datetime (naive means UTC) as 100 ns units since 1601-01-01 UTC."""
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    delta = when - FILETIME_EPOCH
    return (delta.days * 86_400 + delta.seconds) * 10_000_000 + delta.microseconds * 10


def from_filetime(value: int) -> datetime | None:
    """100 ns units since 1601 as an aware UTC datetime (None when out of range)."""
    try:
        return FILETIME_EPOCH + timedelta(microseconds=value // 10)
    except OverflowError:
        return None


def to_100ns(span: timedelta) -> int:
    return (span.days * 86_400 + span.seconds) * 10_000_000 + span.microseconds * 10


def from_100ns(value: int) -> timedelta | None:
    try:
        return timedelta(microseconds=value / 10)
    except OverflowError:
        return None


def format_filetime(value: int) -> str:
    """``2024-05-01 12:00:00.1234567 UTC``: full 100 ns precision, as KOI shows dates."""
    when = from_filetime(value)
    if when is None or value < 0:
        return "invalid time"
    return f"{when:%Y-%m-%d %H:%M:%S}.{value % 10_000_000:07d} UTC"


def format_duration(value: int) -> str:
    """``0:00:01.5000000``: hours:minutes:seconds with 100 ns precision."""
    sign = "-" if value < 0 else ""
    value = abs(value)
    seconds, frac = divmod(value, 10_000_000)
    minutes, sec = divmod(seconds, 60)
    hours, minute = divmod(minutes, 60)
    return f"{sign}{hours}:{minute:02d}:{sec:02d}.{frac:07d}"


# --- addresses -----------------------------------------------------------------

def format_address(address: int, arch: str) -> str:
    """An address as WinDbg prints it: ``0xffffb80c`4f200080`` on x64, ``0x89a00080`` on x86."""
    if arch == "x64":
        return f"0x{address >> 32:08x}`{address & 0xFFFFFFFF:08x}"
    return f"0x{address:08x}"


# --- semantic values -----------------------------------------------------------

@dataclass(frozen=True, eq=False)
class Ref:
    """A pointer to `target` (a KObject), or to its member `path`, plus `delta` bytes.

    The address is worked out when bytes are made, so it follows the target
    when the build (and with it every address) changes.
    """

    target: Any
    path: str = ""
    delta: int = 0

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, Ref) and other.target is self.target
                and other.path == self.path and other.delta == self.delta)

    def __hash__(self) -> int:
        return hash((id(self.target), self.path, self.delta))


@dataclass(frozen=True, eq=False)
class FastRef:
    """An ``_EX_FAST_REF``: an object pointer whose low bits hold a reference count
    (4 bits on x64, 3 on x86; a larger count is capped when written)."""

    target: Any  # KObject, Ref or None
    refcnt: int = 0

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, FastRef) and other.refcnt == self.refcnt
                and (other.target is self.target or (isinstance(self.target, Ref)
                                                     and self.target == other.target)))

    def __hash__(self) -> int:
        return hash((id(self.target), self.refcnt))


@dataclass(eq=False)
class UnicodeString:
    """A ``_UNICODE_STRING`` value: the text, whose UTF-16 bytes KOI places in an
    allocation of their own (pool for kernel objects, the process heap for user ones).

    `capacity` is MaximumLength in bytes; by default the text plus a terminating NUL.
    """

    text: str
    capacity: int | None = None
    _buffer: Any = field(default=None, repr=False)  # the Allocation once placed
    _owner: Any = field(default=None, repr=False)   # the KObject whose member it is

    @property
    def length(self) -> int:
        return len(self.text.encode("utf-16-le"))

    @property
    def maximum_length(self) -> int:
        return self.capacity if self.capacity is not None else self.length + 2

    def __eq__(self, other: object) -> bool:
        if isinstance(other, UnicodeString):
            return other.text == self.text and other.maximum_length == self.maximum_length
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self.text)


@dataclass(frozen=True, eq=False)
class ListLink:
    """The value of an entry's ``_LIST_ENTRY`` member: it is linked into `list`.
    Flink/Blink come from the entry's position in that list when bytes are made."""

    list: Any  # memory.ListHead

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ListLink) and other.list is self.list

    def __hash__(self) -> int:
        return id(self.list)


@dataclass(frozen=True)
class FastRefValue:
    """What a decoded ``_EX_FAST_REF`` means: the object pointer and the count."""

    object: int
    refcnt: int
    target: Any = None  # memory.Location of the object, when there is one

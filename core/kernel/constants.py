"""Numeric facts of the NT dispatcher: priority classes, the base-priority table,
KTHREAD_STATE, KWAIT_REASON, boost increments, quantum tables and time units.

Section numbers (§) refer to /work/shared/reference/nt-facts.md.
"""

from __future__ import annotations

# ---- Time -----------------------------------------------------------------------------
# Simulated time is an integer count of cycles of a virtual 3 GHz clock.  One ns is 3
# cycles, so a 15.625 ms tick (46,875,000 cycles) and a quantum unit of a third of a tick
# (15,625,000 cycles) are both integral (§2.2), and any whole-ns duration is exact.
CYCLES_PER_NS = 3
NS_PER_US = 1_000
NS_PER_MS = 1_000_000
NS_PER_S = 1_000_000_000
CYCLES_PER_S = CYCLES_PER_NS * NS_PER_S

DEFAULT_CLOCK_INTERVAL_NS = 15_625_000  # 64 Hz (§2.1)
QUANTUM_UNITS_PER_TICK = 3  # CLOCK_QUANTUM_DECREMENT (§2.2)
MAX_QUANTUM = 0x7F


def ns(value: float) -> int:
    return int(round(value))


def us(value: float) -> int:
    """Microseconds to integer ns."""
    return int(round(value * NS_PER_US))


def ms(value: float) -> int:
    """Milliseconds to integer ns."""
    return int(round(value * NS_PER_MS))


def sec(value: float) -> int:
    """Seconds to integer ns."""
    return int(round(value * NS_PER_S))


def cycles_to_us_text(cycles: int) -> str:
    """Microseconds with exactly three decimals (formats.md §3), from exact cycles."""
    nanos = (cycles + 1) // CYCLES_PER_NS  # round half up to the nearest ns
    return f"{nanos // 1000}.{nanos % 1000:03d}"


def cycles_to_us(cycles: int) -> float:
    return round(cycles / (CYCLES_PER_NS * NS_PER_US), 3)


# ---- Priorities (§1) ------------------------------------------------------------------
LOW_PRIORITY = 0
LOW_REALTIME_PRIORITY = 16
HIGH_PRIORITY = 31
MAXIMUM_PRIORITY = 32

# Priority classes: name -> (API value, class base priority) (§1.3)
IDLE_PRIORITY_CLASS = 0x00000040
BELOW_NORMAL_PRIORITY_CLASS = 0x00004000
NORMAL_PRIORITY_CLASS = 0x00000020
ABOVE_NORMAL_PRIORITY_CLASS = 0x00008000
HIGH_PRIORITY_CLASS = 0x00000080
REALTIME_PRIORITY_CLASS = 0x00000100

PRIORITY_CLASSES = ("idle", "below_normal", "normal", "above_normal", "high", "realtime")
PRIORITY_CLASS_VALUE = {
    "idle": IDLE_PRIORITY_CLASS,
    "below_normal": BELOW_NORMAL_PRIORITY_CLASS,
    "normal": NORMAL_PRIORITY_CLASS,
    "above_normal": ABOVE_NORMAL_PRIORITY_CLASS,
    "high": HIGH_PRIORITY_CLASS,
    "realtime": REALTIME_PRIORITY_CLASS,
}
PRIORITY_CLASS_BY_VALUE = {v: k for k, v in PRIORITY_CLASS_VALUE.items()}
CLASS_BASE_PRIORITY = {
    "idle": 4,
    "below_normal": 6,
    "normal": 8,
    "above_normal": 10,
    "high": 13,
    "realtime": 24,
}

# PROCESS_PRIORITY_CLASS_* numbers, as EPROCESS.PriorityClass and
# NtQueryInformationProcess(ProcessPriorityClass) give them (ntpsapi.h)
PRIORITY_CLASS_CODE = {"idle": 1, "normal": 2, "high": 3, "realtime": 4, "below_normal": 5,
                       "above_normal": 6}


def process_base_priority(pid: int, priority_class: str) -> int:
    """KPROCESS.BasePriority: its class's base, except the Idle process's 0."""
    return 0 if pid == 0 else CLASS_BASE_PRIORITY[priority_class]


# Relative thread priorities (SetThreadPriority) (§1.4)
THREAD_PRIORITY_IDLE = -15
THREAD_PRIORITY_LOWEST = -2
THREAD_PRIORITY_BELOW_NORMAL = -1
THREAD_PRIORITY_NORMAL = 0
THREAD_PRIORITY_ABOVE_NORMAL = 1
THREAD_PRIORITY_HIGHEST = 2
THREAD_PRIORITY_TIME_CRITICAL = 15

RELATIVE_PRIORITIES = {
    "idle": THREAD_PRIORITY_IDLE,
    "lowest": THREAD_PRIORITY_LOWEST,
    "below_normal": THREAD_PRIORITY_BELOW_NORMAL,
    "normal": THREAD_PRIORITY_NORMAL,
    "above_normal": THREAD_PRIORITY_ABOVE_NORMAL,
    "highest": THREAD_PRIORITY_HIGHEST,
    "time_critical": THREAD_PRIORITY_TIME_CRITICAL,
}


def parse_priority_class(value: str | int) -> str:
    """A class name from a name ("above_normal", "ABOVE_NORMAL_PRIORITY_CLASS") or API value."""
    if isinstance(value, int):
        try:
            return PRIORITY_CLASS_BY_VALUE[value]
        except KeyError:
            raise ValueError(f"unknown priority class value {value:#x}") from None
    key = value.strip().lower()
    if key.endswith("_priority_class"):
        key = key[: -len("_priority_class")]
    if key not in CLASS_BASE_PRIORITY:
        raise ValueError(f"unknown priority class {value!r}")
    return key


def parse_relative_priority(value: str | int) -> int:
    """A relative priority from a name ("highest", "THREAD_PRIORITY_HIGHEST") or an int."""
    if isinstance(value, int):
        return value
    key = value.strip().lower()
    if key.startswith("thread_priority_"):
        key = key[len("thread_priority_"):]
    try:
        return RELATIVE_PRIORITIES[key]
    except KeyError:
        try:
            return int(key, 0)
        except ValueError:
            raise ValueError(f"unknown thread priority {value!r}") from None


def base_priority(priority_class: str, relative: int) -> int | None:
    """The §1.5 table (plus the REALTIME extras of §1.4); None if `relative` is rejected.

    IDLE saturates to 1 (16 for REALTIME) and TIME_CRITICAL to 15 (31 for REALTIME).
    """
    cbase = CLASS_BASE_PRIORITY[priority_class]
    if priority_class == "realtime":
        if relative == THREAD_PRIORITY_IDLE:
            return 16
        if relative == THREAD_PRIORITY_TIME_CRITICAL:
            return 31
        if -7 <= relative <= 6:
            return cbase + relative
        return None
    if relative == THREAD_PRIORITY_IDLE:
        return 1
    if relative == THREAD_PRIORITY_TIME_CRITICAL:
        return 15
    if THREAD_PRIORITY_LOWEST <= relative <= THREAD_PRIORITY_HIGHEST:
        return min(cbase + relative, 15)
    return None


# ---- KTHREAD_STATE (§5.1) -------------------------------------------------------------
INITIALIZED = 0
READY = 1
RUNNING = 2
STANDBY = 3
TERMINATED = 4
WAITING = 5
TRANSITION = 6
DEFERRED_READY = 7
GATE_WAIT_OBSOLETE = 8
WAITING_FOR_PROCESS_IN_SWAP = 9

KTHREAD_STATE = (
    "Initialized", "Ready", "Running", "Standby", "Terminated", "Waiting", "Transition",
    "DeferredReady", "GateWaitObsolete", "WaitingForProcessInSwap",
)

# ---- KWAIT_REASON (§5.2, Windows 11 23H2) ---------------------------------------------
KWAIT_REASON = (
    "Executive", "FreePage", "PageIn", "PoolAllocation", "DelayExecution", "Suspended",
    "UserRequest", "WrExecutive", "WrFreePage", "WrPageIn", "WrPoolAllocation",
    "WrDelayExecution", "WrSuspended", "WrUserRequest", "WrSpare0", "WrQueue",
    "WrLpcReceive", "WrLpcReply", "WrVirtualMemory", "WrPageOut", "WrRendezvous",
    "WrKeyedEvent", "WrTerminated", "WrProcessInSwap", "WrCpuRateControl",
    "WrCalloutStack", "WrKernel", "WrResource", "WrPushLock", "WrMutex", "WrQuantumEnd",
    "WrDispatchInt", "WrPreempted", "WrYieldExecution", "WrFastMutex", "WrGuardedMutex",
    "WrRundown", "WrAlertByThreadId", "WrDeferredPreempt", "WrPhysicalFault", "WrIoRing",
    "WrMdlCache",
)
Executive = 0
DelayExecution = 4
WrExecutive = 7
WrUserRequest = 13
WrLpcReceive = 16
Suspended = 5
UserRequest = 6
WrQueue = 15
WrCpuRateControl = 24
WrMutex = 29
WrQuantumEnd = 30
WrPreempted = 32
WrYieldExecution = 33
NO_WAIT_REASON = -1  # trace/state: the column is empty

# ---- Boost increments (§4.2) ----------------------------------------------------------
IO_NO_INCREMENT = 0
IO_CD_ROM_INCREMENT = 1
IO_DISK_INCREMENT = 1
IO_PARALLEL_INCREMENT = 1
IO_VIDEO_INCREMENT = 1
IO_MAILSLOT_INCREMENT = 2
IO_NAMED_PIPE_INCREMENT = 2
IO_NETWORK_INCREMENT = 2
IO_SERIAL_INCREMENT = 2
IO_KEYBOARD_INCREMENT = 6
IO_MOUSE_INCREMENT = 6
IO_SOUND_INCREMENT = 8
EVENT_INCREMENT = 1
SEMAPHORE_INCREMENT = 1
MUTANT_INCREMENT = 1
TIMER_APC_INCREMENT = 0

DEVICE_INCREMENT = {
    "none": IO_NO_INCREMENT,
    "disk": IO_DISK_INCREMENT,
    "cdrom": IO_CD_ROM_INCREMENT,
    "network": IO_NETWORK_INCREMENT,
    "serial": IO_SERIAL_INCREMENT,
    "namedpipe": IO_NAMED_PIPE_INCREMENT,
    "mailslot": IO_MAILSLOT_INCREMENT,
    "keyboard": IO_KEYBOARD_INCREMENT,
    "mouse": IO_MOUSE_INCREMENT,
    "sound": IO_SOUND_INCREMENT,
    "video": IO_VIDEO_INCREMENT,
    "parallel": IO_PARALLEL_INCREMENT,
}

# ---- Quantum tables (§2.3) and Win32PrioritySeparation (§2.5) -------------------------
VARIABLE_SHORT = (6, 12, 18)
VARIABLE_LONG = (12, 24, 36)
FIXED_SHORT = (18, 18, 18)
FIXED_LONG = (36, 36, 36)
CLIENT_PRIORITY_SEPARATION = 0x2
SERVER_PRIORITY_SEPARATION = 0x18


def decode_priority_separation(value: int, server: bool = False) -> tuple[bool, bool, int]:
    """Decode Win32PrioritySeparation AABBCC (§2.5) to (long, variable, PsPrioritySeparation).

    AA/BB of 00 or 11 mean the product default: short+variable on a client,
    long+fixed on a server.
    """
    if not 0 <= value <= 0x3F:
        raise ValueError(f"Win32PrioritySeparation {value:#x} is outside 0x0..0x3F")
    aa, bb, cc = (value >> 4) & 3, (value >> 2) & 3, value & 3
    long_ = server if aa in (0, 3) else aa == 1
    variable = (not server) if bb in (0, 3) else bb == 1
    return long_, variable, min(cc, 2)


def quantum_table(value: int, server: bool = False) -> tuple[tuple[int, int, int], int]:
    """(PspForegroundQuantum table in units, PsPrioritySeparation) for a registry value."""
    long_, variable, sep = decode_priority_separation(value, server)
    if variable:
        table = VARIABLE_LONG if long_ else VARIABLE_SHORT
    else:
        table = FIXED_LONG if long_ else FIXED_SHORT
    return table, sep


# ---- Balance set manager (§4.7) -------------------------------------------------------
STARVATION_READY_TICKS = 300
STARVATION_SCAN_LIMIT = 16
STARVATION_BOOST_LIMIT = 10
STARVATION_BOOST_PRIORITY = LOW_REALTIME_PRIORITY - 1  # 15

# ---- Wait results and Win32 errors ----------------------------------------------------
WAIT_OBJECT_0 = 0x0
WAIT_ABANDONED = 0x80
WAIT_TIMEOUT = 0x102
STILL_ACTIVE = 259
MAXIMUM_SUSPEND_COUNT = 127

ERROR_ACCESS_DENIED = 5
ERROR_INVALID_HANDLE = 6
ERROR_NOT_SUPPORTED = 50
ERROR_INVALID_PARAMETER = 87
ERROR_SIGNAL_REFUSED = 156  # what STATUS_SUSPEND_COUNT_EXCEEDED maps to
ERROR_NO_MORE_ITEMS = 259  # FlsAlloc with every index taken (ReactOS, §7.6)
ERROR_NOT_OWNER = 288
ERROR_TOO_MANY_POSTS = 298
ERROR_ALREADY_FIBER = 1280
ERROR_ALREADY_THREAD = 1281
ERROR_COMMITMENT_LIMIT = 1455  # STATUS_COMMITMENT_LIMIT: a commit over a job memory limit
ERROR_NOT_ENOUGH_QUOTA = 1816  # STATUS_QUOTA_EXCEEDED: the job's active-process limit (§6.3)
ERROR_NAMES = {
    ERROR_ACCESS_DENIED: "ERROR_ACCESS_DENIED",
    ERROR_INVALID_HANDLE: "ERROR_INVALID_HANDLE",
    ERROR_NOT_SUPPORTED: "ERROR_NOT_SUPPORTED",
    ERROR_INVALID_PARAMETER: "ERROR_INVALID_PARAMETER",
    ERROR_SIGNAL_REFUSED: "ERROR_SIGNAL_REFUSED",
    ERROR_NO_MORE_ITEMS: "ERROR_NO_MORE_ITEMS",
    ERROR_NOT_OWNER: "ERROR_NOT_OWNER",
    ERROR_TOO_MANY_POSTS: "ERROR_TOO_MANY_POSTS",
    ERROR_ALREADY_FIBER: "ERROR_ALREADY_FIBER",
    ERROR_ALREADY_THREAD: "ERROR_ALREADY_THREAD",
    ERROR_COMMITMENT_LIMIT: "ERROR_COMMITMENT_LIMIT",
    ERROR_NOT_ENOUGH_QUOTA: "ERROR_NOT_ENOUGH_QUOTA",
}

# ---- Job objects (§6) -------------------------------------------------------------------
# JOB_OBJECT_LIMIT_* (§6.2)
JOB_OBJECT_LIMIT_WORKINGSET = 0x1
JOB_OBJECT_LIMIT_PROCESS_TIME = 0x2
JOB_OBJECT_LIMIT_JOB_TIME = 0x4
JOB_OBJECT_LIMIT_ACTIVE_PROCESS = 0x8
JOB_OBJECT_LIMIT_AFFINITY = 0x10
JOB_OBJECT_LIMIT_PRIORITY_CLASS = 0x20
JOB_OBJECT_LIMIT_PRESERVE_JOB_TIME = 0x40
JOB_OBJECT_LIMIT_SCHEDULING_CLASS = 0x80
JOB_OBJECT_LIMIT_PROCESS_MEMORY = 0x100
JOB_OBJECT_LIMIT_JOB_MEMORY = 0x200
JOB_OBJECT_LIMIT_DIE_ON_UNHANDLED_EXCEPTION = 0x400
JOB_OBJECT_LIMIT_BREAKAWAY_OK = 0x800
JOB_OBJECT_LIMIT_SILENT_BREAKAWAY_OK = 0x1000
JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE = 0x2000
JOB_OBJECT_LIMIT_SUBSET_AFFINITY = 0x4000
JOB_OBJECT_BASIC_LIMIT_VALID_FLAGS = 0xFF
JOB_OBJECT_EXTENDED_LIMIT_VALID_FLAGS = 0x7FFF
# JOBOBJECT_CPU_RATE_CONTROL_INFORMATION.ControlFlags (§6.13)
JOB_OBJECT_CPU_RATE_CONTROL_ENABLE = 0x1
JOB_OBJECT_CPU_RATE_CONTROL_WEIGHT_BASED = 0x2
JOB_OBJECT_CPU_RATE_CONTROL_HARD_CAP = 0x4
JOB_OBJECT_CPU_RATE_CONTROL_NOTIFY = 0x8
JOB_OBJECT_CPU_RATE_CONTROL_MIN_MAX_RATE = 0x10
# EndOfJobTimeAction (§6.5)
JOB_OBJECT_TERMINATE_AT_END_OF_JOB = 0
JOB_OBJECT_POST_AT_END_OF_JOB = 1
# Completion-port messages, JOB_OBJECT_MSG_* (§6.15): number -> name without the prefix
JOB_OBJECT_MSG = {
    1: "END_OF_JOB_TIME", 2: "END_OF_PROCESS_TIME", 3: "ACTIVE_PROCESS_LIMIT",
    4: "ACTIVE_PROCESS_ZERO", 6: "NEW_PROCESS", 7: "EXIT_PROCESS",
    8: "ABNORMAL_EXIT_PROCESS", 9: "PROCESS_MEMORY_LIMIT", 10: "JOB_MEMORY_LIMIT",
    11: "NOTIFICATION_LIMIT", 12: "JOB_CYCLE_TIME_LIMIT", 13: "SILO_TERMINATED",
}
JOB_MSG_CODE = {name: code for code, name in JOB_OBJECT_MSG.items()}
# The exit statuses JOBOBJECT_ASSOCIATE_COMPLETION_PORT lists as abnormal: such an exit is
# ABNORMAL_EXIT_PROCESS, any other EXIT_PROCESS (§6.15, §6.17).  Number -> NTSTATUS name.
ABNORMAL_EXIT_STATUSES = {
    0x80000001: "STATUS_GUARD_PAGE_VIOLATION", 0x80000002: "STATUS_DATATYPE_MISALIGNMENT",
    0x80000003: "STATUS_BREAKPOINT", 0x80000004: "STATUS_SINGLE_STEP",
    0xC0000005: "STATUS_ACCESS_VIOLATION", 0xC0000006: "STATUS_IN_PAGE_ERROR",
    0xC000001D: "STATUS_ILLEGAL_INSTRUCTION", 0xC0000025: "STATUS_NONCONTINUABLE_EXCEPTION",
    0xC0000026: "STATUS_INVALID_DISPOSITION", 0xC000008C: "STATUS_ARRAY_BOUNDS_EXCEEDED",
    0xC000008D: "STATUS_FLOAT_DENORMAL_OPERAND", 0xC000008E: "STATUS_FLOAT_DIVIDE_BY_ZERO",
    0xC000008F: "STATUS_FLOAT_INEXACT_RESULT", 0xC0000090: "STATUS_FLOAT_INVALID_OPERATION",
    0xC0000091: "STATUS_FLOAT_OVERFLOW", 0xC0000092: "STATUS_FLOAT_STACK_CHECK",
    0xC0000093: "STATUS_FLOAT_UNDERFLOW", 0xC0000094: "STATUS_INTEGER_DIVIDE_BY_ZERO",
    0xC0000095: "STATUS_INTEGER_OVERFLOW", 0xC0000096: "STATUS_PRIVILEGED_INSTRUCTION",
    0xC00000FD: "STATUS_STACK_OVERFLOW", 0xC000013A: "STATUS_CONTROL_C_EXIT",
    0xC00002B4: "STATUS_FLOAT_MULTIPLE_FAULTS", 0xC00002B5: "STATUS_FLOAT_MULTIPLE_TRAPS",
    0xC00002C9: "STATUS_REG_NAT_CONSUMPTION",
}
CREATE_BREAKAWAY_FROM_JOB = 0x01000000
# JOBOBJECT_BASIC_LIMIT_INFORMATION.SchedulingClass: 0..9, default 5; with fixed quanta the
# quantum is 6*(class+1) units (PspJobSchedulingClasses, §6.12)
DEFAULT_SCHEDULING_CLASS = 5
JOB_SCHEDULING_CLASS_QUANTUM_UNITS = tuple(6 * (c + 1) for c in range(10))

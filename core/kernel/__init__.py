"""The simulated NT kernel: thread dispatcher, processes, threads and dispatcher objects.

Plain Python (no Qt).  Entry point: Machine.  Thread programs are built with the step
constructors in `program`; rule references (§) point to nt-facts.md.
"""

from . import constants, program
from .constants import (
    CYCLES_PER_NS,
    KTHREAD_STATE,
    KWAIT_REASON,
    STILL_ACTIVE,
    WAIT_ABANDONED,
    WAIT_OBJECT_0,
    WAIT_TIMEOUT,
    base_priority,
    cycles_to_us,
    cycles_to_us_text,
    decode_priority_separation,
    ms,
    quantum_table,
    sec,
    us,
)
from .dispatcher import ProgramLivelock
from .machine import (
    SLEEP0_ANY,
    SLEEP0_EQUAL_OR_HIGHER,
    WAIT_QUANTUM_CLASSIC,
    WAIT_QUANTUM_VISTA,
    KernelError,
    Machine,
)
from .objects import (
    NOTIFICATION,
    SYNCHRONIZATION,
    DispatcherObject,
    Event,
    Mutex,
    Process,
    Semaphore,
    Thread,
)
from .trace import BYTES_PER_SWITCH, CSV_HEADER, ContextSwitchTrace

__all__ = [
    "BYTES_PER_SWITCH", "CSV_HEADER", "CYCLES_PER_NS", "ContextSwitchTrace", "DispatcherObject",
    "Event", "KTHREAD_STATE", "KWAIT_REASON", "KernelError", "Machine", "Mutex", "NOTIFICATION",
    "Process", "ProgramLivelock", "SLEEP0_ANY", "SLEEP0_EQUAL_OR_HIGHER", "STILL_ACTIVE",
    "SYNCHRONIZATION", "Semaphore", "Thread", "WAIT_ABANDONED", "WAIT_OBJECT_0",
    "WAIT_QUANTUM_CLASSIC", "WAIT_QUANTUM_VISTA", "WAIT_TIMEOUT", "base_priority", "constants",
    "cycles_to_us", "cycles_to_us_text", "decode_priority_separation", "ms", "program",
    "quantum_table", "sec", "us",
]

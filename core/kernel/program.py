"""Thread programs: compact steps a simulated thread executes in order.

A step is a plain tuple whose first item is an opcode int, so the dispatcher's hot path
indexes tuples instead of calling methods.  Durations are stored in cycles
(constants.CYCLES_PER_NS per ns).  Build steps with the constructors below (durations
in integer ns) rather than by hand; formats.md §2 lists the scenario spelling of each.

    (OP_CPU, cycles)              cpu DUR   (user time)
    (OP_KCPU, cycles)             kcpu DUR  (kernel time)
    (OP_WAIT, obj, cycles|-1)     wait OBJ [timeout]; -1 = INFINITE
    (OP_SLEEP, cycles)            sleep DUR; 0 = Sleep(0)
    (OP_YIELD,)                   SwitchToThread()
    (OP_IO, increment, cycles, device)  io DEVICE DUR
    (OP_SET, event) / (OP_RESET, event) / (OP_PULSE, event)
    (OP_RELEASE_SEM, sem, n)      release SEM [N]
    (OP_RELEASE_MUTEX, mutex)
    (OP_SET_PRIORITY, relative)   SetThreadPriority(self, relative)
    (OP_EXIT, code)               ExitThread(code)
    (OP_REPEAT,)                  start again at step 0
    (OP_CALL, fn, args)           kernel code in Python: fn(*args) runs in the thread's
                                  context at no cost; it may return a kernel CPU cost in ns
                                  (ExQueueWorkItem routines, PsCreateSystemThread bodies)
    (OP_FIBER, what, ...)         the fiber and FLS API (fibers.py): `what` is "convert",
                                  "create", "switch", "delete", "to_thread", "fls_alloc",
                                  "fls_set" or "fls_free"
    (OP_COMMIT, bytes)            commit (bytes > 0) or decommit (< 0) private memory
"""

from __future__ import annotations

from .constants import CYCLES_PER_NS, DEVICE_INCREMENT, parse_relative_priority

OP_CPU = 0
OP_KCPU = 1
OP_WAIT = 2
OP_SLEEP = 3
OP_YIELD = 4
OP_IO = 5
OP_SET = 6
OP_RESET = 7
OP_PULSE = 8
OP_RELEASE_SEM = 9
OP_RELEASE_MUTEX = 10
OP_SET_PRIORITY = 11
OP_EXIT = 12
OP_REPEAT = 13
OP_CALL = 14
OP_FIBER = 15
OP_COMMIT = 16

OP_NAMES = (
    "cpu", "kcpu", "wait", "sleep", "yield", "io", "set", "reset", "pulse", "release",
    "release_mutex", "set_priority", "exit", "repeat", "call", "fiber", "commit",
)


def _cycles(duration_ns: int) -> int:
    if duration_ns < 0:
        raise ValueError(f"negative duration {duration_ns}")
    return int(duration_ns) * CYCLES_PER_NS


def cpu(duration_ns: int) -> tuple:
    return (OP_CPU, _cycles(duration_ns))


def kcpu(duration_ns: int) -> tuple:
    return (OP_KCPU, _cycles(duration_ns))


def wait(obj, timeout_ns: int | None = None) -> tuple:
    return (OP_WAIT, obj, -1 if timeout_ns is None else _cycles(timeout_ns))


def sleep(duration_ns: int) -> tuple:
    return (OP_SLEEP, _cycles(duration_ns))


def yield_() -> tuple:
    return (OP_YIELD,)


def io(device: str | int, duration_ns: int) -> tuple:
    """`device` is a name from constants.DEVICE_INCREMENT or a raw boost increment."""
    if isinstance(device, str):
        device = device.lower()
        try:
            increment = DEVICE_INCREMENT[device]
        except KeyError:
            raise ValueError(f"unknown device {device!r}") from None
    else:
        increment = int(device)
        device = None
    return (OP_IO, increment, _cycles(duration_ns), device)


def set_event(event) -> tuple:
    return (OP_SET, event)


def reset_event(event) -> tuple:
    return (OP_RESET, event)


def pulse_event(event) -> tuple:
    return (OP_PULSE, event)


def release_semaphore(semaphore, count: int = 1) -> tuple:
    return (OP_RELEASE_SEM, semaphore, int(count))


def release_mutex(mutex) -> tuple:
    return (OP_RELEASE_MUTEX, mutex)


def set_priority(level: str | int) -> tuple:
    return (OP_SET_PRIORITY, parse_relative_priority(level))


def exit_thread(code: int = 0) -> tuple:
    return (OP_EXIT, int(code))


def repeat() -> tuple:
    return (OP_REPEAT,)


def call(fn, *args) -> tuple:
    """Run `fn(*args)` on the thread (kernel code written in Python).  If it returns a
    positive number of ns, the thread then spends that long in kernel mode."""
    return (OP_CALL, fn, args)


def commit(size_bytes: int) -> tuple:
    """VirtualAlloc(MEM_COMMIT) of `size_bytes` private bytes; job memory limits apply."""
    return (OP_COMMIT, int(size_bytes))


def decommit(size_bytes: int) -> tuple:
    """VirtualFree(MEM_DECOMMIT) of `size_bytes` (never below zero)."""
    return (OP_COMMIT, -int(size_bytes))


# ---- fibers and FLS (§7; fibers.py executes them) ---------------------------------------
def fiber_convert(parameter: int = 0, flags: int = 0) -> tuple:
    """ConvertThreadToFiberEx(parameter, flags): the thread becomes a fiber named after
    itself (fails with ERROR_ALREADY_FIBER the second time)."""
    return (OP_FIBER, "convert", int(parameter), int(flags))


def fiber_create(name: str, program, parameter: int = 0, stack_reserve: int = 0) -> tuple:
    """CreateFiberEx: a fiber `name` running `program` (steps, or a zero-argument callable
    returning them, resolved when the step runs); it first runs when switched to.  A
    stack_reserve of 0 is the 1 MB default."""
    if not callable(program):
        program = tuple(program)
    return (OP_FIBER, "create", name, program, int(parameter), int(stack_reserve))


def fiber_switch(name) -> tuple:
    """SwitchToFiber(name): continue in that fiber of the process; the scheduler sees
    nothing."""
    return (OP_FIBER, "switch", name)


def fiber_delete(name) -> tuple:
    """DeleteFiber(name): runs the fiber's FLS callbacks; deleting the running fiber ends
    the thread with exit code 1."""
    return (OP_FIBER, "delete", name)


def fiber_to_thread() -> tuple:
    """ConvertFiberToThread (fails with ERROR_ALREADY_THREAD if not a fiber)."""
    return (OP_FIBER, "to_thread")


def fls_alloc(slot: str) -> tuple:
    """FlsAlloc(callback): later steps name the index `slot`."""
    return (OP_FIBER, "fls_alloc", slot)


def fls_set(slot: str, value: int) -> tuple:
    """FlsSetValue(slot, value) on the running fiber (the thread itself if not a fiber)."""
    return (OP_FIBER, "fls_set", slot, int(value))


def fls_free(slot: str) -> tuple:
    """FlsFree(slot): the callback runs for every non-zero value, then the index is free."""
    return (OP_FIBER, "fls_free", slot)

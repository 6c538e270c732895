"""Dispatcher objects: events, semaphores, mutexes, and the process and thread objects.

These hold state only; the Machine changes them (waits and signals need the
dispatcher).  Every class uses __slots__ because the dispatcher touches them on its
hot path.  Each waitable object has `signaled` and a FIFO `waiters` list of threads
(§6 of the brief: a set synchronization event releases the first waiter).
"""

from __future__ import annotations

from collections import deque

from .constants import KTHREAD_STATE, KWAIT_REASON, STILL_ACTIVE, WAITING

NOTIFICATION = "notification"
SYNCHRONIZATION = "synchronization"


class DispatcherObject:
    __slots__ = ("name", "signaled", "waiters", "refs")

    kind = "object"

    def __init__(self, name: str | None = None, signaled: bool = False) -> None:
        self.name = name
        self.signaled = signaled
        self.waiters: list = []
        self.refs = 0  # handles/references held through Machine.open_handle()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r} signaled={self.signaled}>"


class Event(DispatcherObject):
    """A notification (manual-reset) or synchronization (auto-reset) event."""

    __slots__ = ("notification",)
    kind = "event"

    def __init__(self, name: str | None = None, kind: str = NOTIFICATION, signaled: bool = False):
        super().__init__(name, signaled)
        if kind not in (NOTIFICATION, SYNCHRONIZATION):
            raise ValueError(f"event kind must be notification or synchronization, not {kind!r}")
        self.notification = kind == NOTIFICATION


class Semaphore(DispatcherObject):
    __slots__ = ("count", "maximum")
    kind = "semaphore"

    def __init__(self, name: str | None = None, initial: int = 0, maximum: int = 1):
        if maximum <= 0 or not 0 <= initial <= maximum:
            raise ValueError(f"semaphore needs 0 <= initial ({initial}) <= maximum ({maximum}), maximum > 0")
        super().__init__(name, initial > 0)
        self.count = initial
        self.maximum = maximum


class Mutex(DispatcherObject):
    """A mutant: owned by one thread, recursively acquirable, abandoned if the owner exits."""

    __slots__ = ("owner", "recursion", "abandoned")
    kind = "mutex"

    def __init__(self, name: str | None = None):
        super().__init__(name, True)
        self.owner = None
        self.recursion = 0
        self.abandoned = False


class Process(DispatcherObject):
    """A simulated EPROCESS/KPROCESS.  Signaled when it exits (§8.4)."""

    __slots__ = (
        "pid", "parent_pid", "priority_class", "affinity", "foreground", "disable_boost",
        "threads", "live_threads", "exit_code", "exited", "quantum_reset", "thread_seed",
        "protection", "create_time", "exit_time", "image_path", "minimal", "subsystem",
        "creator", "create_notified", "jobs", "job_limit_failed", "commit", "peak_commit",
        "handles", "fls_slots", "pico_context", "rate_throttled",
    )
    kind = "process"

    def __init__(self, pid: int, name: str, priority_class: str, affinity: int,
                 parent_pid: int | None, foreground: bool, disable_boost: bool,
                 thread_seed: int, protection: str, create_time: int) -> None:
        super().__init__(name, False)
        self.pid = pid
        self.parent_pid = parent_pid
        self.priority_class = priority_class
        self.affinity = affinity
        self.foreground = foreground
        self.disable_boost = disable_boost
        self.threads: list[Thread] = []
        self.live_threads = 0
        self.exit_code = STILL_ACTIVE
        self.exited = False
        self.quantum_reset = 0  # cycles; set by the machine from the quantum table (§2.3)
        self.thread_seed = thread_seed  # next ideal processor (KeInitializeThread)
        self.protection = protection
        self.create_time = create_time
        self.exit_time = None
        self.image_path = name  # FullImageName given to image-load callbacks
        self.minimal = False  # no user address space, PEB or TEBs (Registry, MemCompression)
        self.subsystem = "win32"  # SUBSYSTEM_INFORMATION_TYPE: "win32" or "wsl" (pico)
        self.creator = None  # the thread whose CreateProcess made it (None: the kernel)
        # process-notify routines that saw the creation; only they see the exit (§8.2)
        self.create_notified: list | None = None
        # Jobs the process belongs to, innermost first (jobs.py); a process never leaves one
        self.jobs: list[Job] = []
        # The jobs whose active-process limit it broke: it still counts there as active
        # until its object is deleted (exited, no handle left, §6.3)
        self.job_limit_failed: list[Job] = []
        self.commit = 0  # committed private bytes (what job memory limits act on, §6.6)
        self.peak_commit = 0
        self.handles = None  # its HandleTable (handles.py), made on first use
        self.fls_slots: dict = {}  # FLS index allocation, per process (fibers.py, §7.6)
        self.pico_context = 0  # EPROCESS.PicoContext of a pico process (§9.6)
        self.rate_throttled = 0  # how many of its jobs hold it for CPU rate control (§6.13)

    def __repr__(self) -> str:
        return f"<Process {self.pid} {self.name!r} {self.priority_class}>"


class Thread(DispatcherObject):
    """A simulated ETHREAD/KTHREAD.  Signaled when it exits."""

    __slots__ = (
        "tid", "pid", "process", "priority", "base", "relative", "decrement", "quantum",
        "state", "wait_reason", "cpu", "ideal", "affinity", "suspend_count", "program",
        "pc", "step_rem", "kmode", "user", "kernel", "cswitches", "ready_tick",
        "preempted", "disable_boost", "exit_code", "wait_obj", "wait_gen", "wait_inc",
        "wait_status", "owned", "last_result", "is_idle", "out_reason", "resume_status",
        "create_time", "where", "fiber", "fibers", "fls", "io_device",
    )
    kind = "thread"

    def __init__(self, tid: int, process: Process, name: str | None, base: int, relative: int,
                 affinity: int, ideal: int, disable_boost: bool, program: tuple,
                 create_time: int, is_idle: bool = False) -> None:
        super().__init__(name, False)
        self.tid = tid
        self.pid = process.pid
        self.process = process
        self.priority = base
        self.base = base
        self.relative = relative
        self.decrement = 0  # PriorityDecrement: special boost to drop at quantum end (§2.7)
        self.quantum = process.quantum_reset  # remaining quantum, cycles
        self.state = 0  # Initialized
        self.wait_reason = -1
        self.cpu = -1  # processor it last ran on
        self.ideal = ideal
        self.affinity = affinity
        self.suspend_count = 0
        self.program = program
        self.pc = 0
        self.step_rem = 0  # cycles left in the current cpu/kcpu step
        self.kmode = False
        self.user = 0  # cycles
        self.kernel = 0
        self.cswitches = 0
        self.ready_tick = 0  # KeTickCount when it last became ready (§4.7 WaitTime)
        self.preempted = False
        self.disable_boost = disable_boost
        self.exit_code = STILL_ACTIVE
        self.wait_obj = None
        self.wait_gen = 0  # bumped to cancel a pending timeout/IO completion
        self.wait_inc = 0
        self.wait_status = 0
        self.owned: list[Mutex] = []
        self.last_result = None  # result of the last wait/yield/API step
        self.is_idle = is_idle
        self.out_reason = -1  # wait reason recorded for the trace when it leaves a CPU
        self.resume_status = None  # wait result held while suspended after a satisfied wait
        self.create_time = create_time
        self.where = -1  # CPU whose ready queue / standby slot / processor holds it
        # Fibers (fibers.py, §7): the selected fiber (None: not a fiber thread), the fibers
        # this thread created or converted, and its FLS values when it is not a fiber
        self.fiber: Fiber | None = None
        self.fibers: list[Fiber] = []
        self.fls: dict = {}
        self.io_device: str | None = None  # device of the last `io` step (io_complete)

    @property
    def state_name(self) -> str:
        return KTHREAD_STATE[self.state]

    @property
    def wait_reason_name(self) -> str:
        if self.state != WAITING or self.wait_reason < 0:
            return ""
        return KWAIT_REASON[self.wait_reason]

    @property
    def affinity_list(self) -> list[int]:
        return mask_to_list(self.affinity)

    def __repr__(self) -> str:
        return (f"<Thread {self.tid} {self.name!r} pid={self.pid} {KTHREAD_STATE[self.state]}"
                f" pri={self.priority}/{self.base}>")


class Fiber:
    """A user-mode fiber (§7): its own program position and FLS values; the kernel
    scheduler never sees it, only the thread that has it selected."""

    __slots__ = ("name", "address", "parameter", "flags", "owner", "thread", "program", "pc",
                 "step_rem", "kmode", "fls", "stack_reserve", "stack_commit", "converted",
                 "deleted", "started")

    def __init__(self, name: str, address: int, parameter: int, owner: "Thread",
                 program: tuple = (), stack_reserve: int = 0, stack_commit: int = 0,
                 flags: int = 0, converted: bool = False) -> None:
        self.name = name
        self.address = address  # what CreateFiber / GetCurrentFiber return
        self.parameter = parameter  # lpParameter: GetFiberData
        self.flags = flags  # FIBER_FLAG_FLOAT_SWITCH
        self.owner = owner  # the thread that created (or converted into) it
        self.thread: Thread | None = None  # the thread that has it selected now
        self.program = program
        self.pc = 0
        self.step_rem = 0
        self.kmode = False
        self.fls: dict = {}  # FLS index -> value, for this fiber
        self.stack_reserve = stack_reserve
        self.stack_commit = stack_commit
        self.converted = converted  # made by ConvertThreadToFiber (runs the thread's program)
        self.deleted = False
        self.started = converted

    def __repr__(self) -> str:
        return f"<Fiber {self.name!r} 0x{self.address:x}>"


class Job(DispatcherObject):
    """A job object (§6): limits, accounting, member processes, nested jobs.

    Signaled when its processes were terminated for the end-of-job time limit (§6.5).
    Times are cycles, memory bytes; None means "no such limit".  jobs.py enforces."""

    __slots__ = (
        "jid", "parent", "children", "members", "pending", "limit_flags",
        "active_process_limit", "affinity", "priority_class", "scheduling_class",
        "per_process_user_time", "per_job_user_time", "end_of_job_time_action",
        "process_memory_limit", "job_memory_limit", "cpu_rate", "completion_port",
        "total_processes", "active_processes", "total_terminated_processes",
        "baselines", "period_base", "peak_process_memory", "peak_job_memory",
        "terminating", "closed", "create_time", "messages", "rate_mark", "rate_held",
        "throttled",
    )
    kind = "job"

    def __init__(self, jid: int, name: str | None, parent: "Job | None", create_time: int,
                 completion_port: bool = False) -> None:
        super().__init__(name, False)
        self.jid = jid
        self.parent = parent
        self.children: list[Job] = []
        self.members: list[Process] = []  # every process ever associated, in order
        self.pending: list[Process] = []  # limit-failed processes still counted (§6.3)
        self.limit_flags = 0
        self.active_process_limit = 0
        self.affinity = 0
        self.priority_class: str | None = None
        self.scheduling_class = 5
        self.per_process_user_time = 0
        self.per_job_user_time = 0
        self.end_of_job_time_action = 0  # JOB_OBJECT_TERMINATE_AT_END_OF_JOB
        self.process_memory_limit = 0
        self.job_memory_limit = 0
        self.cpu_rate: dict | None = None  # control_flags, rate, weight, min_rate, max_rate
        self.completion_port = completion_port
        self.total_processes = 0
        self.active_processes = 0
        self.total_terminated_processes = 0
        self.baselines: dict[int, tuple[int, int]] = {}  # id(process) -> (user, kernel) at join
        self.period_base = (0, 0)  # (user, kernel) totals when the period began
        self.peak_process_memory = 0
        self.peak_job_memory = 0
        self.terminating = False
        self.closed = False  # destroyed: last handle closed and no process left
        self.create_time = create_time
        # (time, code, pid) of the messages posted, the latest kept for the views (the
        # events output has them all)
        self.messages: deque[tuple[int, int, int | None]] = deque(maxlen=256)
        # CPU rate control: job CPU cycles when the interval began (None: not yet read),
        # whether the job is held until the next interval, and the threads it holds
        self.rate_mark: int | None = None
        self.rate_held = False
        self.throttled: list[Thread] = []  # threads waiting in WrCpuRateControl

    def chain(self):
        """This job and its ancestors, innermost first."""
        j = self
        while j is not None:
            yield j
            j = j.parent

    def __repr__(self) -> str:
        return f"<Job {self.name!r} active={self.active_processes}>"


def mask_to_list(mask: int) -> list[int]:
    out = []
    i = 0
    while mask:
        if mask & 1:
            out.append(i)
        mask >>= 1
        i += 1
    return out


def list_to_mask(cpus) -> int:
    mask = 0
    for c in cpus:
        mask |= 1 << int(c)
    return mask

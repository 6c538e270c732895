"""Machine: the public API of the simulated NT kernel (processes, threads, dispatcher
objects, settings, running, events out, trace, state snapshot).

Section numbers (§) refer to /work/shared/reference/nt-facts.md.  Durations and times in
the public API are integer nanoseconds unless a name says cycles.
"""

from __future__ import annotations

import random
from datetime import datetime, timezone

from .constants import (
    CLASS_BASE_PRIORITY,
    CLIENT_PRIORITY_SEPARATION,
    CYCLES_PER_NS,
    CYCLES_PER_S,
    DEFAULT_CLOCK_INTERVAL_NS,
    DelayExecution,
    Executive,
    UserRequest,
    ERROR_ACCESS_DENIED,
    ERROR_INVALID_HANDLE,
    ERROR_INVALID_PARAMETER,
    ERROR_NOT_OWNER,
    ERROR_SIGNAL_REFUSED,
    ERROR_TOO_MANY_POSTS,
    EVENT_INCREMENT,
    KTHREAD_STATE,
    KWAIT_REASON,
    MAXIMUM_SUSPEND_COUNT,
    MUTANT_INCREMENT,
    QUANTUM_UNITS_PER_TICK,
    READY,
    RUNNING,
    SEMAPHORE_INCREMENT,
    STANDBY,
    Suspended,
    TERMINATED,
    WAITING,
    WrQueue,
    base_priority,
    cycles_to_us,
    decode_priority_separation,
    parse_priority_class,
    parse_relative_priority,
    process_base_priority,
    quantum_table,
)
from .dispatcher import EV_BALANCE, EV_CALL, EV_TIMER, LEAVE_BLOCK, LEAVE_READY, Dispatcher
from .fibers import DEFAULT_FLS_MAXIMUM, FiberOps
from .handles import HandleOps, check_dominance_mode, check_protection_name
from .jobs import DEFAULT_CPU_RATE_INTERVAL_NS, JobOps
from .ntapi import NtKernel, dos_error
from .objects import (
    NOTIFICATION,
    Event,
    Mutex,
    Process,
    Semaphore,
    Thread,
    list_to_mask,
    mask_to_list,
)
from . import program as program_ops
from .program import wait as wait_step
from .trace import ContextSwitchTrace

SLEEP0_ANY = "any"
SLEEP0_EQUAL_OR_HIGHER = "equal_or_higher"
WAIT_QUANTUM_VISTA = "vista"
WAIT_QUANTUM_CLASSIC = "classic"


# When the simulated machine was switched on, unless Machine(boot_time=...) says otherwise:
# the origin of every FILETIME it reports (CreateTime, KeBootTime).
DEFAULT_BOOT_TIME = datetime(2026, 1, 5, 8, 0, 0, tzinfo=timezone.utc)


class KernelError(ValueError):
    """Invalid arguments to a creation call (bad class, affinity, CPU count...)."""


class Machine(Dispatcher, JobOps, FiberOps, HandleOps):
    """A simulated Windows NT machine running the thread dispatcher.

    Parameters
    ----------
    cpus : 1..64 logical processors.
    clock_interval_ns : the clock tick (§2.1).
    win32_priority_separation : the registry value (§2.5); 0x2 client, 0x18 server preset.
    server : product type, which decides what AA/BB = 00/11 mean (§2.5).
    starvation_quantum_units : quantum given with a starvation boost, 3 (WI6/7, the default:
        the Vista+ baseline) or 4 (ReactOS) (§4.7).
    sleep0 : "any" (Sleep(0) yields to any ready thread, the current docs) or
        "equal_or_higher" (XP-era folklore) (§3.12).
    wait_quantum : "vista" (a completed wait costs no quantum, default) or "classic"
        (WAIT_QUANTUM_DECREMENT = 1 unit per completed wait) (§2.2, §4.10).
    starvation_honours_disable_boost : whether DisableBoost also blocks the starvation
        boost (ReactOS: it does not, the default) (§4.8).
    system_threads : extra idle threads of the System process (pid 4), waiting in WrQueue
        (boot.boot_bare gives System its real set of threads).
    boot_time : wall-clock time of simulated time 0, the origin of FILETIMEs.
    job_nesting : Windows 8+ nested jobs (default); False: a process in a job cannot be
        assigned to another (ERROR_ACCESS_DENIED, Windows 7 and earlier) (§6.10).
    job_time_check_ns : how often job time limits are checked (None: every clock tick;
        Windows says "periodically") (§6.4).
    cpu_rate_interval_ns : the CPU rate control scheduling interval (undocumented;
        100 ms by default) (§6.13).
    fls_maximum : FLS_MAXIMUM_AVAILABLE, 128 (phnt and older SDK headers, default) or
        4080 (newer SDK headers) (§7.6).
    windows_build, windows_arch : the Windows the machine is: decides where UMS exists
        (§7.7) and, for "x86", that fiber addresses are 32-bit pointers (memory layouts
        are chosen separately, kmemory.bind).
    ppl_dominance : how a protected caller's signer dominates a protected target's:
        "windows-internals" or "system-informer" (handles.py, §9.3).
    ppl_unkillable : whether Antimalware/Lsa/WinTcb PPLs deny PROCESS_TERMINATE to
        callers they are not dominated by (WI, masks unverified; default: Microsoft's
        documented list, which leaves TERMINATE obtainable) (§9.2).
    seed : seeds `rng`; the dispatcher itself is fully deterministic.
    """

    def __init__(self, cpus: int = 1, clock_interval_ns: int = DEFAULT_CLOCK_INTERVAL_NS,
                 win32_priority_separation: int = CLIENT_PRIORITY_SEPARATION,
                 server: bool = False, starvation_quantum_units: int = 3,
                 sleep0: str = SLEEP0_ANY, wait_quantum: str = WAIT_QUANTUM_VISTA,
                 starvation_honours_disable_boost: bool = False, system_threads: int = 0,
                 boot_time: datetime = DEFAULT_BOOT_TIME, job_nesting: bool = True,
                 job_time_check_ns: int | None = None,
                 cpu_rate_interval_ns: int = DEFAULT_CPU_RATE_INTERVAL_NS,
                 fls_maximum: int = DEFAULT_FLS_MAXIMUM, windows_build: str = "10.0.19041.3570",
                 windows_arch: str = "x64", ppl_dominance: str = "windows-internals",
                 ppl_unkillable: bool = False, seed: int = 0) -> None:
        if not 1 <= cpus <= 64:
            raise KernelError(f"cpus must be 1..64, not {cpus}")
        if clock_interval_ns <= 0:
            raise KernelError("clock_interval_ns must be positive")
        if starvation_quantum_units not in (3, 4):
            raise KernelError("starvation_quantum_units must be 3 or 4")
        if sleep0 not in (SLEEP0_ANY, SLEEP0_EQUAL_OR_HIGHER):
            raise KernelError(f"sleep0 must be {SLEEP0_ANY!r} or {SLEEP0_EQUAL_OR_HIGHER!r}")
        if wait_quantum not in (WAIT_QUANTUM_VISTA, WAIT_QUANTUM_CLASSIC):
            raise KernelError(f"wait_quantum must be {WAIT_QUANTUM_VISTA!r} or {WAIT_QUANTUM_CLASSIC!r}")
        tick = clock_interval_ns * CYCLES_PER_NS
        # one unit = a third of a tick = clock_interval_ns cycles (§2.2)
        self._init_dispatcher(cpus, tick, tick // QUANTUM_UNITS_PER_TICK)
        self.clock_interval_ns = clock_interval_ns
        self.server = server
        self.starvation_quantum_units = starvation_quantum_units
        self.sleep0 = sleep0
        self.sleep0_equal_or_higher = sleep0 == SLEEP0_EQUAL_OR_HIGHER
        self.wait_quantum = wait_quantum
        self.classic_wait_quantum = wait_quantum == WAIT_QUANTUM_CLASSIC
        self.starvation_honours_disable_boost = starvation_honours_disable_boost
        self.seed = seed
        self.boot_time = boot_time
        self.rng = random.Random(seed)
        self.nt = NtKernel(self)  # the driver-facing routines (formats.md §7)
        self.memory = None  # typed kernel memory, bound on demand by kmemory.bind()
        self.last_error = 0
        self.last_error_reason: str | None = None  # why, when the failing call said
        self.trace = ContextSwitchTrace()
        self._trace_extend = self.trace.extend
        self._trace_stage = self.trace._stage
        self.processes: dict[int, Process] = {}
        self.threads: dict[int, Thread] = {}
        self._init_jobs(job_nesting, job_time_check_ns, cpu_rate_interval_ns)
        self.fls_maximum = fls_maximum
        self._tool_handles = None  # handles of a tool outside the machine (handles.py)
        self.windows_build = windows_build
        self.windows_arch = windows_arch
        try:
            self.ppl_dominance = check_dominance_mode(ppl_dominance)
        except ValueError as e:
            raise KernelError(str(e)) from None
        self.ppl_unkillable = ppl_unkillable
        self._next_cid = 8  # CIDs are multiples of 4; 0 = Idle, 4 = System
        self._next_seed = 0
        self.quantum_units: tuple[int, int, int] = (6, 12, 18)
        self.ps_priority_separation = 2
        self.win32_priority_separation = win32_priority_separation
        self._apply_separation(win32_priority_separation)
        all_cpus = (1 << cpus) - 1
        self.all_cpus_mask = all_cpus
        # Idle process (pid 0) with one idle thread per CPU, tid 0 (§3.7)
        idle = Process(0, "Idle", "idle", all_cpus, None, False, True, 0, "none", 0)
        self._set_quantum_reset(idle)
        self.idle_process = idle
        self.processes[0] = idle
        self.idle_threads = []
        for c in range(cpus):
            t = Thread(0, idle, f"Idle{c}", 0, 0, 1 << c, c, True, (), 0, is_idle=True)
            t.priority = t.base = 0
            t.state = RUNNING
            t.cpu = t.where = c
            idle.threads.append(t)
            self.idle_threads.append(t)
            self.running[c] = t
        idle.live_threads = cpus
        self.idle_mask = all_cpus
        # System (pid 4), protected WinSystem; its workers wait on a never-signaled queue
        system = Process(4, "System", "normal", all_cpus, 0, False, False, self._take_seed(),
                         "pp-winsystem", 0)
        self._set_quantum_reset(system)
        self.system_process = system
        self.processes[4] = system
        self._system_queue = Event("SystemWorkQueue", NOTIFICATION, False)
        for i in range(system_threads):
            t = self._new_thread(system, 0, f"SystemWorker{i}", all_cpus, None, False,
                                 (wait_step(self._system_queue) + (WrQueue,),), False, base=13)
        self._push(CYCLES_PER_S, EV_BALANCE, None, None)

    # ------------------------------------------------------------------ time
    @property
    def time_ns(self) -> float:
        return self.now / CYCLES_PER_NS

    @property
    def time_us(self) -> float:
        return cycles_to_us(self.now)

    def run_until(self, time_ns: int) -> None:
        """Run the simulation up to `time_ns` (inclusive of events at that instant)."""
        if self._torun:
            self._drain()
        self.run_until_cycles(int(time_ns) * CYCLES_PER_NS)

    def run_for(self, duration_ns: int) -> None:
        self.run_until_cycles(self.now + int(duration_ns) * CYCLES_PER_NS)

    def at(self, time_ns: int, fn, *args) -> None:
        """Call fn(*args) at simulated time `time_ns` (an external action, `[[at]]`)."""
        when = int(time_ns) * CYCLES_PER_NS
        if when < self.now:
            raise KernelError("cannot schedule an action in the past")
        self._push(when, EV_CALL, fn, args)

    # ------------------------------------------------------------------ events out
    def subscribe(self, callback) -> None:
        """callback(event_dict) for every kernel event (formats.md §3 events)."""
        self._subs.append(callback)

    def unsubscribe(self, callback) -> None:
        self._subs.remove(callback)

    # ------------------------------------------------------------------ quantum settings
    def _apply_separation(self, value: int) -> None:
        table, sep = quantum_table(value, self.server)
        self.win32_priority_separation = value
        self.quantum_units = table
        self.ps_priority_separation = sep
        self.fixed_quantum = not decode_priority_separation(value, self.server)[1]

    def _set_quantum_reset(self, proc: Process) -> None:
        # PspComputeQuantum: with fixed quanta a job's scheduling class decides (§6.12);
        # else foreground index = PsPrioritySeparation, background 0 (§2.3)
        units = self.job_quantum_units(proc)
        if units is None:
            units = self.quantum_units[self.ps_priority_separation if proc.foreground else 0]
        proc.quantum_reset = units * self.unit

    def set_priority_separation(self, value: int) -> None:
        """Change Win32PrioritySeparation at run time (PsChangeQuantumTable, §2.5):
        every quantum reset from now on uses the new table."""
        self._apply_separation(int(value))
        for p in self.processes.values():
            self._set_quantum_reset(p)

    def set_foreground(self, process: Process | None) -> None:
        """Make `process` the foreground process (None: no foreground process)."""
        for p in self.processes.values():
            if p.foreground and p is not process:
                p.foreground = False
                self._set_quantum_reset(p)
        if process is not None:
            process.foreground = True
            self._set_quantum_reset(process)

    # ------------------------------------------------------------------ processes
    def _alloc_cid(self) -> int:
        cid = self._next_cid
        self._next_cid += 4
        return cid

    def _take_seed(self) -> int:
        s = self._next_seed
        self._next_seed = (s + 1) % self.ncpu
        return s

    def _mask(self, cpus, default: int) -> int:
        if cpus is None:
            return default
        mask = cpus if isinstance(cpus, int) else list_to_mask(cpus)
        if mask <= 0 or mask & ~self.all_cpus_mask:
            raise KernelError(f"affinity {mask_to_list(mask) if mask > 0 else cpus} is not a "
                              f"non-empty set of CPUs 0..{self.ncpu - 1}")
        return mask

    def create_process(self, name: str, priority_class: str | int | None = None,
                       affinity=None, foreground: bool = False, disable_boost: bool = False,
                       parent: Process | None = None, protection: str = "none",
                       image_path: str | None = None, minimal: bool = False,
                       subsystem: str = "win32", breakaway: bool = False) -> Process | None:
        """Create a process (no threads yet).  Without a class, a child of an IDLE or
        BELOW_NORMAL parent inherits the parent's class, otherwise NORMAL (§1.6).
        Without an affinity, it inherits the parent's (§8.1), else all CPUs.

        The parent's first live thread is the creator: process-notify routines run in its
        context when the first thread is created (formats.md §7).  `image_path` is the
        FullImageName load-image routines see; `minimal` makes a minimal process (no
        user address space: Registry, MemCompression); `subsystem` "wsl" a pico process.

        A child joins its parent's jobs unless it breaks away (`breakaway` is
        CREATE_BREAKAWAY_FROM_JOB, §6.9).  When the job forbids that, or is at its
        active-process limit, CreateProcess fails: None, with an api_error event."""
        if priority_class is None:
            if parent is not None and parent.priority_class in ("idle", "below_normal"):
                cls = parent.priority_class
            else:
                cls = "normal"
        else:
            try:
                cls = parse_priority_class(priority_class)
            except ValueError as e:
                raise KernelError(str(e)) from None
        try:
            check_protection_name(protection)
        except ValueError as e:
            raise KernelError(str(e)) from None
        if subsystem not in ("win32", "wsl"):
            raise KernelError(f"subsystem must be 'win32' or 'wsl', not {subsystem!r}")
        default_aff = parent.affinity if parent is not None else self.all_cpus_mask
        mask = self._mask(affinity, default_aff)
        job, error = self._inherit_jobs(parent, breakaway)
        if error:
            creator = next((t for t in parent.threads if t.state != TERMINATED), None)
            self.api_error("create_process", error, name=name,
                           **({"tid": creator.tid} if creator else {}))
            return None
        pid = self._alloc_cid()
        proc = Process(pid, name, cls, mask, parent.pid if parent is not None else None,
                       False, disable_boost, self._take_seed(), protection, self.now)
        proc.image_path = image_path or name
        # a pico process is built on a minimal one (§9.5: "the pico base")
        proc.minimal = minimal or subsystem != "win32"
        proc.subsystem = subsystem
        if parent is not None:
            proc.creator = next((t for t in parent.threads if t.state != TERMINATED), None)
        self.processes[pid] = proc
        self._set_quantum_reset(proc)
        if self._subs:
            self._emit("process_create", pid=pid, name=name,
                       parent_pid=parent.pid if parent is not None else None)
        if foreground:
            self.set_foreground(proc)
        if job is not None:
            self._join(proc, job, list(job.chain()))
        if self.nt.image_routines and not minimal and subsystem == "win32":
            # MmInitializeProcessAddressSpace maps the image, then ntdll (§8.1 stage 3)
            self.nt._image_loaded(proc, proc.image_path, 0x7FF6_0000_0000, 0x10_0000,
                                  proc.creator)
            self.nt._image_loaded(proc, "\\SystemRoot\\System32\\ntdll.dll",
                                  0x7FFE_0000_0000, 0x1F_8000, proc.creator)
        return proc

    def set_priority_class(self, process: Process, priority_class: str | int) -> bool:
        """SetPriorityClass: recompute every thread's base from its relative priority."""
        try:
            cls = parse_priority_class(priority_class)
        except ValueError:
            self.api_error("set_priority_class", ERROR_INVALID_PARAMETER, pid=process.pid)
            return False
        if process.exited:
            self.api_error("set_priority_class", ERROR_ACCESS_DENIED, pid=process.pid)
            return False
        if not self.job_allows_class_change(process):
            return True  # a job's class limit: succeeds but is silently ignored (§6.7)
        self._set_class(process, cls)
        return True

    def _set_class(self, process: Process, cls: str) -> None:
        process.priority_class = cls
        for t in process.threads:
            if t.state == TERMINATED:
                continue
            base = base_priority(cls, t.relative)
            if base is None:  # a REALTIME-only relative value: clamp into the class's range
                lo, hi = (16, 31) if cls == "realtime" else (1, 15)
                base = max(lo, min(hi, CLASS_BASE_PRIORITY[cls] + t.relative))
            self._set_base(t, base, "set_priority_class")

    def set_process_priority_boost(self, process: Process, disable: bool) -> bool:
        """SetProcessPriorityBoost(P, DisablePriorityBoost) (§4.8)."""
        process.disable_boost = bool(disable)
        return True

    def get_process_priority_boost(self, process: Process) -> bool:
        return process.disable_boost

    def set_process_affinity(self, process: Process, cpus) -> bool:
        """SetProcessAffinityMask: every thread's affinity is narrowed to the new mask."""
        try:
            mask = self._mask(cpus, 0)
        except KernelError:
            self.api_error("set_process_affinity", ERROR_INVALID_PARAMETER, pid=process.pid)
            return False
        if not self.job_process_affinity_check(process, mask):
            # a job's affinity limit: processes cannot set their own mask (§6.8, S18)
            self.api_error("set_process_affinity", ERROR_ACCESS_DENIED, pid=process.pid)
            return False
        process.affinity = mask
        for t in process.threads:
            if t.state != TERMINATED:
                self._apply_affinity(t, (t.affinity & mask) or mask)
        return True

    def terminate_process(self, process: Process, exit_code: int) -> bool:
        """TerminateProcess: every thread exits with exit_code; so does the process."""
        if process.exited or process.pid == 0:
            self.api_error("terminate_process", ERROR_ACCESS_DENIED, pid=process.pid)
            return False
        live = [t for t in process.threads if t.state != TERMINATED]
        if not live:
            self._exit_process(process, exit_code)
            return True
        for t in live:
            self._exit_thread(t, exit_code, terminated=True)
        return True

    def get_exit_code_process(self, process: Process) -> int:
        return process.exit_code

    # ------------------------------------------------------------------ threads
    def _new_thread(self, process: Process, relative: int, name: str | None, affinity: int,
                    ideal_cpu: int | None, disable_boost: bool, program, suspended: bool,
                    base: int | None = None) -> Thread:
        if base is None:
            base = base_priority(process.priority_class, relative)
        if ideal_cpu is None:
            # KeInitializeThread: ideal processors handed out round-robin from the
            # process's seed, within the affinity
            seed = process.thread_seed
            ideal = seed
            for k in range(self.ncpu):
                cand = (seed + k) % self.ncpu
                if (affinity >> cand) & 1:
                    ideal = cand
                    break
            process.thread_seed = (ideal + 1) % self.ncpu
        else:
            ideal = ideal_cpu
        tid = self._alloc_cid()
        t = Thread(tid, process, name, base, relative, affinity, ideal, disable_boost,
                   tuple(program), self.now)
        process.threads.append(t)
        process.live_threads += 1
        self.threads[tid] = t
        if self._subs:
            self._emit("thread_create", pid=process.pid, tid=tid, name=name)
        nt = self.nt
        if nt.process_routines and process.create_notified is None and process.pid > 4:
            # Process-notify routines run once the first thread exists, on the creator (§8.2)
            status = nt._process_created(process, t)
            if status:
                self._veto(process, t, status)
                return t
        if nt.thread_routines:
            creator = nt.current if nt.current is not None else process.creator
            nt._thread_changed(t, True, creator)
        if suspended:
            # CREATE_SUSPENDED: waiting on its suspension (S24: Waiting / Suspended)
            t.suspend_count = 1
            t.state = WAITING
            t.wait_reason = Suspended
        else:
            self._ready(t)  # new threads get no boost and join the tail
        if any(j.cpu_rate for j in process.jobs):
            self._rate_check()  # one more thread can spend the job's budget faster
        return t

    def create_waiting_thread(self, process: Process, program, priority: str | int = "normal",
                              name: str | None = None, base: int | None = None) -> Thread:
        """A thread found already waiting when the machine starts (boot sets): its
        program's first step, a wait or a sleep, is taken as begun at time 0 without the
        thread ever having run, as a booted machine's idle threads are."""
        program = tuple(program)
        op = program[0][0] if program else None
        if op not in (program_ops.OP_WAIT, program_ops.OP_SLEEP) or (
                op == program_ops.OP_SLEEP and program[0][1] == 0):
            raise KernelError("a thread created waiting must start with a wait or a sleep")
        relative = parse_relative_priority(priority)
        t = self._new_thread(process, relative, name, process.affinity, None, False, program,
                             True, base=base)
        if t.state == TERMINATED:  # a process-notify routine vetoed its process
            return t
        t.suspend_count = 0
        st = program[0]
        t.pc = 1
        deadline = -1
        if op == program_ops.OP_WAIT:
            obj = st[1]
            t.wait_reason = st[3] if len(st) > 3 else UserRequest
            t.wait_obj = obj
            obj.waiters.append(t)
            if st[2] >= 0:
                deadline = st[2]
        else:
            t.wait_reason = DelayExecution
            deadline = st[1]
        if deadline >= 0:
            tick = self.tick
            t.wait_gen += 1
            self._push(-(-(self.now + deadline) // tick) * tick, EV_TIMER, t, t.wait_gen)
        return t

    def _veto(self, process: Process, first: Thread, status: int) -> None:
        """A process-notify routine set CreationStatus: the process ends before any of
        its threads runs, and the creator's CreateProcess fails."""
        first.state = TERMINATED
        first.exit_code = status
        first.signaled = True
        if self._subs:
            self._emit("thread_exit", pid=process.pid, tid=first.tid, name=first.name,
                       exit_code=status)
        process.live_threads -= 1
        process.create_notified = []  # vetoed: no exit notification either
        self._exit_process(process, status)
        creator = process.creator
        self.api_error("create_process", dos_error(status), name=process.name,
                       pid=process.pid, **({"tid": creator.tid} if creator else {}))

    def create_thread(self, process: Process, priority: str | int = "normal", affinity=None,
                      ideal_cpu: int | None = None, disable_boost: bool = False, program=(),
                      suspended: bool = False, name: str | None = None) -> Thread:
        """Create a thread running `program` (a sequence of program.py steps).

        `priority` is a relative priority (name or -15..15, §1.4); the base comes from the
        §1.5 table.  `affinity` (CPU list or mask) must be a subset of the process's.
        """
        if process.exited:
            raise KernelError(f"process {process.pid} has exited")
        try:
            relative = parse_relative_priority(priority)
        except ValueError as e:
            raise KernelError(str(e)) from None
        if base_priority(process.priority_class, relative) is None:
            raise KernelError(f"relative priority {relative} is not valid for class "
                              f"{process.priority_class}")
        mask = self._mask(affinity, process.affinity)
        if mask & ~process.affinity:
            raise KernelError("thread affinity must be a subset of the process affinity (§3.8)")
        if ideal_cpu is not None and not (mask >> ideal_cpu) & 1:
            raise KernelError(f"ideal CPU {ideal_cpu} is outside the thread's affinity")
        return self._new_thread(process, relative, name, mask, ideal_cpu, disable_boost,
                                program, suspended)

    def _set_base(self, t: Thread, base: int, reason: str) -> None:
        # KeSetBasePriorityThread: the new base becomes the current priority and any
        # outstanding boost is dropped
        t.base = base
        t.decrement = 0
        if t.priority != base:
            self._change_priority(t, base, reason)
        elif self._subs:
            self._prio_event(t, reason)

    def set_thread_priority(self, thread: Thread, priority: str | int) -> bool:
        """SetThreadPriority (§1.4, §3.5).  Invalid levels fail with ERROR_INVALID_PARAMETER."""
        try:
            relative = parse_relative_priority(priority)
        except ValueError:
            relative = None
        base = None if relative is None else base_priority(thread.process.priority_class, relative)
        if base is None:
            self.api_error("set_priority", ERROR_INVALID_PARAMETER, tid=thread.tid,
                            name=thread.name)
            return False
        if thread.state == TERMINATED:
            self.api_error("set_priority", ERROR_ACCESS_DENIED, tid=thread.tid, name=thread.name)
            return False
        thread.relative = relative
        self._set_base(thread, base, "set_priority")
        return True

    def get_thread_priority(self, thread: Thread) -> int:
        return thread.relative

    def set_thread_priority_boost(self, thread: Thread, disable: bool) -> bool:
        """SetThreadPriorityBoost(T, DisablePriorityBoost) (§4.8)."""
        thread.disable_boost = bool(disable)
        return True

    def get_thread_priority_boost(self, thread: Thread) -> bool:
        """GetThreadPriorityBoost: True if boosts are disabled for the thread."""
        return thread.disable_boost or thread.process.disable_boost

    def _apply_affinity(self, t: Thread, mask: int) -> None:
        t.affinity = mask
        if not (mask >> t.ideal) & 1:
            t.ideal = (mask & -mask).bit_length() - 1
        st = t.state
        if st == RUNNING:
            c = t.cpu
            if not (mask >> c) & 1:
                self._charge(c)
                t.state = READY
                self._leave(c, t, LEAVE_READY, -1)
        elif st == READY:
            if not (mask >> t.where) & 1 or self.idle_mask & mask:
                self._dequeue(t)
                self._ready(t)
        elif st == STANDBY:
            if not (mask >> t.where) & 1:
                self._unstandby(t)
                self._ready(t)

    def set_thread_affinity(self, thread: Thread, cpus) -> int:
        """SetThreadAffinityMask: returns the previous mask, or 0 on failure (the mask must
        be a non-empty subset of the process affinity, §3.8)."""
        try:
            mask = self._mask(cpus, 0)
        except KernelError:
            mask = 0
        if not mask or mask & ~thread.process.affinity or thread.state == TERMINATED:
            self.api_error("set_affinity", ERROR_INVALID_PARAMETER, tid=thread.tid,
                            name=thread.name)
            return 0
        old = thread.affinity
        self._apply_affinity(thread, mask)
        return old

    def set_ideal_processor(self, thread: Thread, cpu: int) -> int:
        """SetThreadIdealProcessor: returns the previous ideal CPU, or -1 on failure."""
        if not 0 <= cpu < self.ncpu or not (thread.affinity >> cpu) & 1:
            self.api_error("set_ideal_processor", ERROR_INVALID_PARAMETER, tid=thread.tid,
                            name=thread.name)
            return -1
        old = thread.ideal
        thread.ideal = cpu
        return old

    def suspend_thread(self, thread: Thread) -> int:
        """SuspendThread (§8.5): returns the previous count, or -1 (count limit 127)."""
        if thread.state == TERMINATED:
            self.api_error("suspend", ERROR_ACCESS_DENIED, tid=thread.tid, name=thread.name)
            return -1
        prev = thread.suspend_count
        if prev >= MAXIMUM_SUSPEND_COUNT:
            self.api_error("suspend", ERROR_SIGNAL_REFUSED, tid=thread.tid, name=thread.name)
            return -1
        thread.suspend_count = prev + 1
        if prev == 0:
            st = thread.state
            if st == RUNNING:
                c = thread.cpu
                self._charge(c)
                thread.state = WAITING
                thread.wait_reason = Suspended
                self._leave(c, thread, LEAVE_BLOCK, Suspended)
            elif st in (READY, STANDBY):
                if st == READY:
                    self._dequeue(thread)
                else:
                    self._unstandby(thread)
                thread.state = WAITING
                thread.wait_reason = Suspended
            # A waiting thread keeps its wait; when it is satisfied it stays suspended.
        return prev

    def resume_thread(self, thread: Thread) -> int:
        """ResumeThread (§8.5): returns the previous count (-1 for an exited thread)."""
        if thread.state == TERMINATED:
            self.api_error("resume", ERROR_ACCESS_DENIED, tid=thread.tid, name=thread.name)
            return -1
        prev = thread.suspend_count
        if prev == 0:
            return 0
        thread.suspend_count = prev - 1
        if (prev == 1 and thread.state == WAITING and thread.wait_reason == Suspended
                and thread.wait_obj is None):
            thread.resume_status = None
            self._wake(thread, 0)
        return prev

    def io_complete(self, thread: Thread, device: str) -> bool:
        """Complete the thread's outstanding `io DEVICE` now, with the device's boost
        (the `io_complete` action).  False, with an api_error event, if it has none."""
        if (thread.state != WAITING or thread.wait_reason != Executive
                or thread.wait_obj is not None or thread.io_device != device.lower()):
            self.api_error("io_complete", ERROR_INVALID_PARAMETER, tid=thread.tid,
                           name=thread.name, device=device)
            return False
        self._unwait(thread, 0, thread.wait_inc)
        return True

    def terminate_thread(self, thread: Thread, exit_code: int) -> bool:
        """TerminateThread."""
        if thread.state == TERMINATED or thread.is_idle:
            self.api_error("terminate_thread", ERROR_ACCESS_DENIED, tid=thread.tid,
                            name=thread.name)
            return False
        self._exit_thread(thread, exit_code, terminated=True)
        return True

    def get_exit_code_thread(self, thread: Thread) -> int:
        return thread.exit_code

    def raise_unhandled_exception(self, thread: Thread, code: int) -> bool:
        """An exception `code` (an NTSTATUS such as 0xC0000005, STATUS_ACCESS_VIOLATION)
        that no handler of `thread` handles: its process ends with the code as exit
        status (§8.4, §6.17).  The other threads end first and the faulting one last,
        as the ExitProcess of the top-level handler does; they end as terminated
        threads (no FLS callbacks; DLL detach is not modelled).  In a job the exit is
        ABNORMAL_EXIT_PROCESS when the code is on the documented list
        (STATUS_ACCESS_VIOLATION, STATUS_STACK_OVERFLOW..., jobs.is_abnormal_exit), else
        EXIT_PROCESS (§6.15); it is no limit violation, so TotalTerminatedProcesses does
        not count it (§6.14).

        A job with DIE_ON_UNHANDLED_EXCEPTION forces SEM_NOGPFAULTERRORBOX (§6.17).
        Without it, and unless the process set SEM_NOGPFAULTERRORBOX itself (KOI models
        no error mode), Windows Error Reporting would show its dialog first and the
        process would end with the code once WER is done.  KOI models no WER delay: the
        process ends at once either way.  The `unhandled_exception` event (pid, tid,
        name, code, die_on_unhandled_exception) comes before the exits.

        False, with an api_error event, for a thread that has exited, a thread of Idle
        or System (a kernel-mode exception is a bugcheck, not modelled) or a code that
        is not 32 bits."""
        process = thread.process
        if thread.state == TERMINATED or process.pid in (0, 4):
            self.api_error("unhandled_exception", ERROR_ACCESS_DENIED, tid=thread.tid,
                           name=thread.name,
                           reason=("the thread has exited" if thread.state == TERMINATED
                                   else "a kernel-mode exception is a bugcheck (not modelled)"))
            return False
        if not 0 <= code <= 0xFFFFFFFF:
            self.api_error("unhandled_exception", ERROR_INVALID_PARAMETER, tid=thread.tid,
                           name=thread.name, reason=f"exception code {code} is not 32 bits")
            return False
        if self._subs:
            self._emit("unhandled_exception", pid=process.pid, tid=thread.tid,
                       name=thread.name, code=code,
                       die_on_unhandled_exception=self.job_suppresses_fault_error_box(process))
        for t in [t for t in process.threads if t is not thread and t.state != TERMINATED]:
            self._exit_thread(t, code, terminated=True)
        # the last thread's exit status becomes the process's (§8.4)
        self._exit_thread(thread, code, terminated=True)
        return True

    # ------------------------------------------------------------------ handles
    def open_handle(self, obj):
        """Take a reference: an exited process/thread stays visible while referenced."""
        obj.refs += 1
        return obj

    def close_handle(self, obj) -> bool:
        if obj.refs <= 0:
            self.api_error("close_handle", ERROR_INVALID_HANDLE, object=getattr(obj, "name", None))
            return False
        obj.refs -= 1
        if obj.refs == 0:
            self._object_released(obj)
        return True

    # ------------------------------------------------------------------ dispatcher objects
    def create_event(self, name: str | None = None, kind: str = NOTIFICATION,
                     signaled: bool = False) -> Event:
        return Event(name, kind, signaled)

    def create_semaphore(self, name: str | None = None, initial: int = 0,
                         maximum: int = 1) -> Semaphore:
        try:
            return Semaphore(name, initial, maximum)
        except ValueError as e:
            raise KernelError(str(e)) from None

    def create_mutex(self, name: str | None = None, owner: Thread | None = None) -> Mutex:
        m = Mutex(name)
        if owner is not None:
            m.owner = owner
            m.recursion = 1
            m.signaled = False
            owner.owned.append(m)
        return m

    def set_event(self, event: Event, _cur: int = -1) -> bool:
        """SetEvent: a notification event wakes every waiter and stays set; a
        synchronization event releases one waiter (FIFO), or stays set if none."""
        event.signaled = True
        if event.waiters:
            self._signal(event, EVENT_INCREMENT, _cur)
        return True

    def reset_event(self, event: Event) -> bool:
        event.signaled = False
        return True

    def pulse_event(self, event: Event, _cur: int = -1) -> bool:
        """PulseEvent: release the current waiters (all, or one for a synchronization
        event), then leave the event reset."""
        event.signaled = True
        if event.waiters:
            self._signal(event, EVENT_INCREMENT, _cur)
        event.signaled = False
        return True

    def release_semaphore(self, semaphore: Semaphore, count: int = 1, _cur: int = -1,
                          _by: Thread | None = None) -> int | None:
        """ReleaseSemaphore: returns the previous count, or None with ERROR_TOO_MANY_POSTS
        if the count would exceed the maximum (the count is then unchanged)."""
        prev = semaphore.count
        if count <= 0:
            self.api_error("release", ERROR_INVALID_PARAMETER, object=semaphore.name,
                            **_subject(_by))
            return None
        if prev + count > semaphore.maximum:
            self.api_error("release", ERROR_TOO_MANY_POSTS, object=semaphore.name,
                            **_subject(_by))
            return None
        semaphore.count = prev + count
        semaphore.signaled = True
        if semaphore.waiters:
            self._signal(semaphore, SEMAPHORE_INCREMENT, _cur)
        return prev

    def release_mutex(self, mutex: Mutex, thread: Thread, _cur: int = -1) -> bool:
        """ReleaseMutex by `thread`; a non-owner gets ERROR_NOT_OWNER."""
        if mutex.owner is not thread:
            self.api_error("release_mutex", ERROR_NOT_OWNER, object=mutex.name,
                            **_subject(thread))
            return False
        mutex.recursion -= 1
        if mutex.recursion == 0:
            mutex.owner = None
            thread.owned.remove(mutex)
            mutex.signaled = True
            if mutex.waiters:
                self._signal(mutex, MUTANT_INCREMENT, _cur)
        return True

    # ------------------------------------------------------------------ objects and kernel code
    def visible(self, obj) -> bool:
        """Whether a process or thread object still exists: alive, or referenced by a
        handle after its exit (Idle and System always)."""
        if isinstance(obj, Process):
            return not obj.exited or obj.refs > 0 or obj.pid in (0, 4)
        return obj.state != TERMINATED or obj.refs > 0 or obj.is_idle

    def filetime(self, cycles: int) -> int:
        """The FILETIME (100 ns since 1601 UTC) of simulated time `cycles`."""
        from core.values import to_filetime

        return to_filetime(self.boot_time) + cycles // (100 * CYCLES_PER_NS)

    def peb_address(self, process: Process) -> int | None:
        """The process's PEB address in typed memory (None: no PEB, or memory not bound)."""
        mem = self.memory
        return None if mem is None else mem.peb_address(process)

    def teb_address(self, thread: Thread) -> int | None:
        mem = self.memory
        return None if mem is None else mem.teb_address(thread)

    def _kernel_call(self, t: Thread, fn, args) -> int:
        """Run kernel code fn(*args) on thread t (program.call); its cost in ns."""
        nt = self.nt
        saved = nt.current
        nt.current = t
        try:
            cost = fn(*args)
        finally:
            nt.current = saved
        if cost is None:
            return 0
        if not isinstance(cost, int) or cost < 0:
            raise KernelError(f"kernel code {fn!r} returned {cost!r}, not a cost in ns")
        return cost

    def _emit_driver(self, etype: str, routine: str, message: str) -> None:
        cur = self.nt.current
        if self._subs:
            self._emit(etype, routine=routine, message=message,
                       pid=cur.pid if cur is not None else None,
                       tid=cur.tid if cur is not None else None)

    # ------------------------------------------------------------------ outputs
    def cswitch_csv(self) -> str:
        """The --cswitch-csv text (formats.md §3)."""
        return self.trace.to_csv()

    def _charge_all(self) -> None:
        for c in range(self.ncpu):
            self._charge(c)

    # Keys of state() that make up the --state-json contract (formats.md §3), in order.
    STATE_JSON_PROCESS_KEYS = ("pid", "name", "priority_class", "exit_code", "jobs",
                               "protection", "threads")
    STATE_JSON_THREAD_KEYS = ("tid", "name", "state", "wait_reason", "priority",
                              "base_priority", "user_time_us", "kernel_time_us",
                              "context_switches", "ideal_cpu", "affinity", "suspend_count",
                              "fiber")
    STATE_JSON_JOB_KEYS = ("name", "active_processes", "total_processes",
                           "total_terminated_processes", "total_user_time_us", "parent")

    def state(self) -> dict:
        """Everything the views show about every visible process, thread and job, as
        plain data: the live ones, exited ones still referenced by a handle, and always
        Idle (pid 0) and System (pid 4).  Times are microseconds; `cpu` is the processor
        a thread last ran on (-1: never ran).  docs/kernel.md lists every key."""
        self._charge_all()
        to_us = cycles_to_us
        procs = []
        for pid in sorted(self.processes):
            p = self.processes[pid]
            if p.exited and p.refs <= 0 and pid not in (0, 4):
                continue
            threads = []
            user = kernel = 0
            for t in p.threads:
                user += t.user
                kernel += t.kernel
                if t.state == TERMINATED and t.refs <= 0:
                    continue
                fiber, fibers = self._fiber_state(t)
                threads.append({
                    "tid": t.tid, "pid": p.pid, "name": t.name, "state": KTHREAD_STATE[t.state],
                    "wait_reason": (KWAIT_REASON[t.wait_reason]
                                    if t.state == WAITING and t.wait_reason >= 0 else ""),
                    "priority": t.priority, "base_priority": t.base,
                    "user_time_us": to_us(t.user), "kernel_time_us": to_us(t.kernel),
                    "context_switches": t.cswitches, "cpu": t.cpu, "ideal_cpu": t.ideal,
                    "affinity": mask_to_list(t.affinity), "suspend_count": t.suspend_count,
                    "fiber": fiber, "fibers": fibers, "create_time_us": to_us(t.create_time),
                    "exit_code": t.exit_code,
                })
            procs.append({
                "pid": p.pid, "name": p.name, "parent_pid": p.parent_pid,
                "priority_class": p.priority_class,
                "base_priority": process_base_priority(pid, p.priority_class),
                "exit_code": p.exit_code, "exited": p.exited,
                "jobs": [self.job_name(j) for j in p.jobs],
                "protection": p.protection, "affinity": mask_to_list(p.affinity),
                "foreground": p.foreground, "create_time_us": to_us(p.create_time),
                "exit_time_us": None if p.exit_time is None else to_us(p.exit_time),
                "user_time_us": to_us(user), "kernel_time_us": to_us(kernel),
                "commit": p.commit, "peak_commit": p.peak_commit,
                "handle_count": self._handle_count(p), "minimal": p.minimal,
                "subsystem": p.subsystem,
                "threads": threads,
            })
        return {"time_us": to_us(self.now), "cpus": self.ncpu, "processes": procs,
                "jobs": self._job_states()}

    def snapshot(self) -> dict:
        """The --state-json document (formats.md §3): state() cut to the contract's keys."""
        full = self.state()
        pk, tk = self.STATE_JSON_PROCESS_KEYS, self.STATE_JSON_THREAD_KEYS
        procs = []
        for p in full["processes"]:
            row = {k: p[k] for k in pk}
            row["threads"] = [{k: t[k] for k in tk} for t in p["threads"]]
            procs.append(row)
        jk = self.STATE_JSON_JOB_KEYS
        jobs = [{k: j[k] for k in jk} for j in full["jobs"]]
        return {"time_us": full["time_us"], "processes": procs, "jobs": jobs}

    def cpu_times(self) -> list[tuple[int, int]]:
        """Per CPU (busy cycles, idle cycles) up to now."""
        self._charge_all()
        return list(zip(self.busy_time, self.idle_time))

    # ------------------------------------------------------------------ invariants
    def check_invariants(self) -> None:
        """Assert the dispatcher's structural invariants (used by the property tests)."""
        self._charge_all()
        now = self.now
        seen: dict[int, str] = {}
        for c in range(self.ncpu):
            r = self.running[c]
            assert r is not None and r.state == RUNNING and r.cpu == c, (c, r)
            assert (r.affinity >> c) & 1, ("affinity violated", c, r)
            if not r.is_idle:
                assert id(r) not in seen, ("thread on two CPUs", r)
                seen[id(r)] = "running"
            sb = self.standby[c]
            if sb is not None:
                assert sb.state == STANDBY and sb.where == c and (sb.affinity >> c) & 1, (c, sb)
                assert id(sb) not in seen, ("standby thread elsewhere too", sb)
                seen[id(sb)] = "standby"
                assert not self.pending[c] or c in self._pending
            idle = r.is_idle and sb is None
            assert bool((self.idle_mask >> c) & 1) == idle, ("idle mask", c)
            top = r if sb is None else sb
            s = 0
            for p in range(32):
                q = self.queues[c][p]
                if q:
                    s |= 1 << p
                for t in q:
                    assert t.state == READY and t.where == c and t.priority == p, (c, p, t)
                    assert (t.affinity >> c) & 1, ("queued on a CPU outside affinity", c, t)
                    assert id(t) not in seen, ("thread in two places", t)
                    seen[id(t)] = "ready"
                    # No ready thread on this CPU's queues outranks what runs there (§3.2),
                    # except right after a yield to a lower thread (§3.11)
                    if not self._pending and not self.yielded[c]:
                        assert p <= top.priority, ("ready outranks running", c, t, top)
            assert s == self.summary[c], ("summary", c, bin(s), bin(self.summary[c]))
            assert self.busy_time[c] + self.idle_time[c] == now, ("cpu time", c)
        if not self._pending:
            # An idle CPU never coexists with a ready thread allowed on it
            for c in range(self.ncpu):
                if (self.idle_mask >> c) & 1:
                    for d in range(self.ncpu):
                        for q in self.queues[d]:
                            for t in q:
                                assert not (t.affinity >> c) & 1, ("idle CPU with work", c, t)
        total = 0
        for t in self.threads.values():
            st = t.state
            if st in (READY, RUNNING, STANDBY):
                assert id(t) in seen, ("lost thread", t)
            elif st == WAITING:
                assert id(t) not in seen, ("waiting thread scheduled", t)
                if t.wait_obj is not None:
                    assert t.wait_obj.waiters.count(t) == 1, ("not in waiters", t)
            elif st == TERMINATED:
                assert id(t) not in seen, ("terminated thread scheduled", t)
            assert 1 <= t.priority <= 31 and t.base <= t.priority, t
            if t.base < 16:
                assert t.priority <= 15, t
            else:
                assert t.priority == t.base, t
            total += t.user + t.kernel
        assert total == sum(self.busy_time), "thread times do not add up to busy time"


def _subject(thread: Thread | None) -> dict:
    if thread is None:
        return {}
    return {"tid": thread.tid, "name": thread.name}

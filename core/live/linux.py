"""Linux: every process and thread, read straight from /proc.

What is read (docs/live.md, "How the Linux source reads /proc", has the reasoning):

* per process: ``/proc/PID/stat`` (identity, parent, aggregated times, thread count,
  leader's state), and once per process or after an exec, ``cmdline``; ``cgroup``
  (its jobs) on discovery, after an exec, and on its turn in the rotation;
* per thread: ``task/TID/schedstat`` (precise run time, time spent runnable, times
  scheduled in) and, when that shows the thread ran, ``task/TID/stat`` (state,
  priority, last CPU, times), ``status`` (voluntary and involuntary switches) and,
  for a sleeping thread, ``wchan`` (where it sleeps). A thread's first read leaves
  out ``status`` where schedstat gives the switch total and a system call the
  affinity: its voluntary/involuntary split is marked pending (native "pending") until
  its process's turn in the rotation, or until it runs.

Work is skipped only where the kernel guarantees nothing changed:

* A process whose CPU clock (clock_gettime on its process CPU-time clock: the exact
  sum of every thread's run time, in ns) has not moved since the previous sample had
  no thread run in between; no thread can have started, ended, slept elsewhere or
  been switched, so its previous record is reused without reading a file.
* A thread whose schedstat has not moved has not run: its times, last CPU, switch
  counts and wait location are unchanged; its stat is read again only when its state
  was not a settled sleep.

What a sleeping thread can undergo without running (a renice, a new affinity, a
change of policy by another process; a wake-up it has not yet been scheduled for)
is caught by a rotation: every `full_every` samples each process is re-read in full
and its threads' scheduling parameters checked with cheap system calls.

Files read every sample are kept open and re-read with pread: one system call instead
of three, and an open /proc file stays bound to the task it was opened for, so a
recycled PID or TID is never read through it (the read fails with ESRCH). Identity is
(id, start time in clock ticks since boot).
"""

from __future__ import annotations

import errno
import os
import resource
import time
from functools import cache, lru_cache

from core.kernel.constants import STILL_ACTIVE

from .cgroups import CgroupReader, parse_cpu_list
from .model import (
    SCHED_POLICIES,
    CpuTimes,
    LiveError,
    ProcessInfo,
    Snapshot,
    ThreadInfo,
    apply_deltas,
    class_base_priority,
    nt_priority,
    nt_priority_class,
)

CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
PF_KTHREAD = 0x00200000           # include/linux/sched.h
SCHED_RESET_ON_FORK = 0x40000000  # or'ed into sched_getscheduler's result
REALTIME = frozenset({1, 2})      # SCHED_FIFO, SCHED_RR
CPUCLOCK_SCHED = 2                # a process CPU-time clock id: ((~pid) << 3) | 2
_O_READ = os.O_RDONLY | os.O_CLOEXEC


def process_cpu_clock(pid: int) -> int:
    """The clock id of process `pid`'s CPU-time clock (clock_getcpuclockid(3))."""
    return ((~pid) << 3) | CPUCLOCK_SCHED


# Fields of /proc/PID/stat, counted after "pid (comm) ": proc(5) field N is index N-3.
F_STATE, F_PPID, F_PGRP, F_SESSION, F_TTY, F_TPGID, F_FLAGS = 0, 1, 2, 3, 4, 5, 6
F_UTIME, F_STIME, F_PRIORITY, F_NICE, F_THREADS, F_START = 11, 12, 15, 16, 17, 19
F_VSIZE, F_RSS, F_PROCESSOR, F_RT_PRIORITY, F_POLICY, F_EXIT_CODE = 20, 21, 36, 37, 38, 49

# Linux task state letter -> (KTHREAD_STATE name, wait reason when wchan says nothing).
# R is "running or runnable": Linux does not say which, so it is Running.
TASK_STATES = {
    "R": ("Running", ""),
    "S": ("Waiting", "UserRequest"),   # interruptible: like an alertable user-mode wait
    "D": ("Waiting", "Executive"),     # uninterruptible: like a kernel-mode wait
    "I": ("Waiting", "Executive"),     # an idle kernel thread (TASK_IDLE)
    "K": ("Waiting", "Executive"),     # wakekill (2.6.33-3.13)
    "T": ("Waiting", "Suspended"),     # stopped by a signal (SIGSTOP): suspended
    "t": ("Waiting", "Suspended"),     # stopped by a tracer
    "P": ("Waiting", "Suspended"),     # a parked kernel thread
    "W": ("Ready", ""),                # waking (2.6.33-3.13)
    "Z": ("Terminated", ""),
    "X": ("Terminated", ""),
    "x": ("Terminated", ""),
}
# Letters a thread can only leave by running, which its schedstat would show (bar a
# wake-up not yet scheduled, which the rotation catches).
_SETTLED = frozenset("SITtPZXx")
_SETTLED_BYTES = frozenset(b"SITtPZXx")  # the same, as a stat field's first byte
_STOPPED = frozenset("TtP")
_WAITING = frozenset("SDIK")
_EXITED = frozenset("ZXx")
_NO_STATE = (None, None)
# A thread's native "pending": the fields (None meanwhile) its first sample left for its
# process's turn in the rotation, so a view shows them as not read yet.
PENDING_SWITCHES = ("voluntary_switches", "involuntary_switches")

# Where a thread sleeps (/proc/TID/wchan, compiler suffixes such as .constprop.0
# removed) -> the KWAIT_REASON with the same meaning. docs/live.md lists them.
WCHAN_WAIT_REASONS = {
    # nanosleep, clock_nanosleep: Sleep()
    "hrtimer_nanosleep": "DelayExecution", "do_nanosleep": "DelayExecution",
    "common_nsleep": "DelayExecution", "clock_nanosleep": "DelayExecution",
    # futexes (pthread mutexes, condition variables, joins), waitpid, select/poll,
    # pause, sigsuspend: a user-mode wait on objects, WaitForSingle/MultipleObjects
    "futex_wait_queue": "UserRequest", "futex_wait_queue_me": "UserRequest",
    "futex_do_wait": "UserRequest", "futex_wait": "UserRequest",
    "do_wait": "UserRequest", "kernel_wait4": "UserRequest",
    "do_select": "UserRequest", "core_sys_select": "UserRequest",
    "do_sys_poll": "UserRequest", "poll_schedule_timeout": "UserRequest",
    "pause": "UserRequest", "sigsuspend": "UserRequest", "rt_sigsuspend": "UserRequest",
    "do_sigtimedwait": "UserRequest",
    # epoll: a queue of completions, like GetQueuedCompletionStatus
    "ep_poll": "WrQueue", "do_epoll_wait": "WrQueue",
    # kernel threads waiting for work items, like NT's system worker threads
    "worker_thread": "WrQueue", "rescuer_thread": "WrQueue",
    "kthread_worker_fn": "WrQueue", "smpboot_thread_fn": "WrQueue", "kthreadd": "WrQueue",
    # I/O on pipes, sockets, terminals and disks: the Executive wait of a synchronous read
    "pipe_read": "Executive", "anon_pipe_read": "Executive", "pipe_write": "Executive",
    "anon_pipe_write": "Executive", "pipe_wait": "Executive", "wait_for_partner": "Executive",
    "unix_stream_read_generic": "Executive", "unix_stream_data_wait": "Executive",
    "sk_wait_data": "Executive", "inet_csk_accept": "Executive", "wait_woken": "Executive",
    "n_tty_read": "Executive", "io_schedule": "Executive", "io_schedule_timeout": "Executive",
    # a page being read in
    "folio_wait_bit_common": "PageIn", "wait_on_page_bit_common": "PageIn",
    # sleeping locks: mutexes, and reader/writer semaphores (NT's ERESOURCE)
    "__mutex_lock": "WrMutex", "mutex_lock": "WrMutex",
    "rwsem_down_read_slowpath": "WrResource", "rwsem_down_write_slowpath": "WrResource",
    # stopped, traced, frozen, parked
    "do_signal_stop": "Suspended", "ptrace_stop": "Suspended", "__refrigerator": "Suspended",
    "do_freezer_trap": "Suspended", "kthread_parkme": "Suspended",
}
_SYSCALL_PREFIXES = ("__x64_sys_", "__arm64_sys_", "__ia32_sys_", "__se_sys_", "__do_sys_",
                     "sys_")


def wait_reason_for(letter: str, wchan: str | None, kernel_thread: bool = False) -> str:
    """The KWAIT_REASON name for a thread in state `letter` sleeping in `wchan`.
    Unknown places fall back on the state: an interruptible sleep is UserRequest, an
    uninterruptible one (or any kernel thread's sleep) Executive."""
    if letter in _STOPPED:
        return "Suspended"
    if letter not in _WAITING:
        return TASK_STATES.get(letter, ("", ""))[1]
    if wchan:
        name = wchan.split(".", 1)[0]
        for prefix in _SYSCALL_PREFIXES:
            if name.startswith(prefix):
                name = name[len(prefix):]
                break
        reason = WCHAN_WAIT_REASONS.get(name)
        if reason is not None:
            return reason
    return "Executive" if kernel_thread else TASK_STATES[letter][1]


# Pure mappings run for every thread read, with few distinct arguments among all
# threads: cached. Names can be many over a long run, so theirs is bounded.
@cache
def _state_and_reason(letter: str, wchan: str | None,
                      kthread: bool) -> tuple[str | None, str | None]:
    """(KTHREAD_STATE name, KWAIT_REASON name) of a thread in state `letter`."""
    state = TASK_STATES.get(letter, _NO_STATE)[0]
    if state == "Waiting":
        return state, wait_reason_for(letter, wchan, kthread)
    return state, None if state is None else ""


@cache
def _sched_params(policy: bytes, nice: bytes,
                  rt_priority: bytes) -> tuple[int, int, int, int | None, str]:
    """(policy, nice, real-time priority, NT priority, policy name) from a thread's
    stat fields."""
    p, n, rt = int(policy), int(nice), int(rt_priority)
    return p, n, rt, nt_priority(p, n, rt), SCHED_POLICIES.get(p, str(p))


@cache
def _cpu_tuple(cpus: frozenset[int]) -> tuple[int, ...]:
    """A CPU set as the sorted tuple a record holds; one tuple shared by every thread
    with that set."""
    return tuple(sorted(cpus))


@lru_cache(maxsize=4096)
def _task_name(raw: bytes) -> str:
    return raw.decode("utf-8", "replace")


@lru_cache(maxsize=1024)
def _wchan_name(raw: bytes) -> str | None:
    """The function a thread sleeps in, from its wchan file (None: none given)."""
    text = raw.decode("ascii", "replace").strip()
    return None if text in ("", "0") else text


@cache
def _process_class(policy: int, nice: int) -> tuple[str | None, int | None, str]:
    """(priority class, its base priority, policy name) of a process's parameters."""
    cls = nt_priority_class(policy, nice)
    return cls, class_base_priority(cls), SCHED_POLICIES.get(policy, str(policy))


def raise_open_file_limit(wanted: int = 1 << 16) -> int:
    """Raise this process's soft RLIMIT_NOFILE towards `wanted` (never above the hard
    limit), so the sampler can keep a file open per thread. Returns the new soft limit.
    The app and ``koi live`` call it; a library user decides for itself."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    return soft


def default_fd_budget() -> int:
    """How many /proc files to keep open: of the descriptors this process has free
    under its soft limit, all but a quarter of the limit (at least 256), which are
    left to everything else."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        soft = 1 << 20
    try:
        in_use = len(os.listdir("/proc/self/fd"))
    except OSError:
        in_use = 0
    return max(0, soft - in_use - max(256, soft // 4))


class _Gone(Exception):
    """The task exited (or its id now names another task)."""


# The records below keep the descriptors of their files that are kept open in slots
# named for them (-1: not kept), rather than in an object per file: a first sample makes
# a record per thread, and each object more is work for the garbage collector.
class _Task:
    __slots__ = ("tid", "pid", "base", "start", "stat_fd", "sched_fd", "stat_raw", "sched_raw",
                 "letter", "wchan", "voluntary", "involuntary", "pending", "affinity", "nice",
                 "policy", "rt_priority", "info")

    def __init__(self, tid: int, pid: int, base: str):
        self.tid, self.pid, self.base = tid, pid, base
        self.start: int | None = None
        self.stat_fd = self.sched_fd = -1
        self.stat_raw = self.sched_raw = b""
        self.letter = ""
        self.wchan: str | None = None
        self.voluntary: int | None = None
        self.involuntary: int | None = None
        self.pending = False  # its switch counts are yet to be read
        self.affinity: tuple[int, ...] | None = None
        self.nice = self.policy = self.rt_priority = 0
        self.info: ThreadInfo | None = None


class _Proc:
    __slots__ = ("pid", "base", "start", "stat_fd", "stat_raw", "clock", "comm", "uid",
                 "cmdline", "cgroup_raw", "jobs", "tids", "info", "seen")

    def __init__(self, pid: int, base: str):
        self.pid, self.base = pid, base
        self.start: int | None = None
        self.stat_fd = -1
        self.stat_raw = b""
        self.clock: int | None = None
        self.comm: str | None = None
        self.uid: int | None = None
        self.cmdline: str | None = None
        self.cgroup_raw: bytes | None = None
        self.jobs: tuple[str, ...] = ()
        self.tids: list[int] = []
        self.info: ProcessInfo | None = None
        self.seen = 0


class LinuxSource:
    """Samples this Linux host.

    `proc_root` lets the tests point it at a /proc of their own making. Process CPU
    clocks and the scheduling system calls take ids of this process's PID namespace,
    so they are used only when `proc_root` shows that namespace (it is /proc, and its
    "self" is this process); otherwise every file is read.
    `full_every`: each process is re-read in full at least every this many samples;
    1 re-reads every process and every thread's stat at every sample, skipping nothing
    (about twice the cost). `max_open_files`: how many /proc files may be kept open
    (default: default_fd_budget()); past it, files are opened for each read.
    `defer_split`: a thread's first read leaves its voluntary/involuntary switch split
    pending where it can (see _first_read); False reads it at once, for about a third
    more on a first sample.
    """

    host = "linux"
    name = "procfs"

    def __init__(self, proc_root: str = "/proc", *, full_every: int = 5,
                 max_open_files: int | None = None, cgroups: CgroupReader | None = None,
                 defer_split: bool = True):
        if full_every < 1:
            raise ValueError("full_every must be at least 1")
        self.proc = proc_root.rstrip("/") or "/"
        self.full_every = full_every
        self.defer_split = defer_split
        self._real = _same_pid_namespace(self.proc)
        self._budget = default_fd_budget() if max_open_files is None else max_open_files
        self._open = 0
        self.base, self.stat_fd = self.proc, -1  # /proc/stat, kept open
        try:
            self._read(self, "stat_fd", "/stat", 1 << 16)
        except (OSError, _Gone):
            raise LiveError(f"cannot read {self.proc}/stat: this is not a Linux /proc") \
                from None
        self._cgroups = cgroups if cgroups is not None else CgroupReader(self.proc)
        self._boot_epoch = time.time() - time.clock_gettime(time.CLOCK_BOOTTIME)
        self._procs: dict[int, _Proc] = {}
        self._tasks: dict[int, _Task] = {}
        self._has_schedstat: bool | None = None
        self._online: frozenset[int] = frozenset()  # the CPUs /proc/stat lists
        self._cpu_lists: dict[bytes, tuple[int, ...] | None] = {}  # parsed Cpus_allowed_lists
        self._gen = 0
        self._turn = 0
        self._previous: Snapshot | None = None

    # ---- file access ------------------------------------------------------------------
    def _read(self, rec, slot: str, name: str, size: int = 4096, keep: bool = True) -> bytes:
        """The content of file `name` of `rec` (its directory is rec.base), through the
        descriptor in its slot `slot` if kept, else opened (and kept in that slot if
        `keep` and the budget allows). Raises _Gone when the task has exited,
        PermissionError when access is denied."""
        fd = getattr(rec, slot)
        if fd >= 0:
            try:
                data = os.pread(fd, size, 0)
            except OSError:
                data = b""
            if data:
                return data
            self._close(rec, slot)
            raise _Gone
        path = rec.base + name
        try:
            fd = os.open(path, _O_READ)
        except PermissionError:
            raise
        except OSError as exc:
            if exc.errno not in (errno.EMFILE, errno.ENFILE):
                raise _Gone from None  # ENOENT, ESRCH: it exited
            fd = self._open_short_of_descriptors(path)
        try:
            data = os.read(fd, size)
        except OSError as exc:
            os.close(fd)
            if isinstance(exc, PermissionError):
                raise
            raise _Gone from None
        if keep and self._open < self._budget:
            setattr(rec, slot, fd)
            self._open += 1
        else:
            os.close(fd)
        if not data:
            raise _Gone
        return data

    def _open_short_of_descriptors(self, path: str) -> int:
        """The process ran out of descriptors (something else opened many since the
        budget was set): give back the half kept longest, keep fewer from now on, and
        try once more. Running out with none kept is an error, not a vanished task."""
        self._budget = self._open // 2
        for rec in list(self._tasks.values()):
            if self._open <= self._budget:
                break
            self._close(rec, "sched_fd")
            self._close(rec, "stat_fd")
        try:
            return os.open(path, _O_READ)
        except OSError as exc:
            if exc.errno in (errno.EMFILE, errno.ENFILE):
                raise LiveError("too many open files: the process cannot open /proc files "
                                "(raise the open-file limit, ulimit -n)") from None
            if isinstance(exc, PermissionError):
                raise
            raise _Gone from None

    def _read_once(self, path: str, size: int = 4096) -> bytes | None:
        """A file read once and not kept open; None if it cannot be read."""
        try:
            fd = os.open(path, _O_READ)
        except OSError as exc:
            if exc.errno not in (errno.EMFILE, errno.ENFILE):
                return None
            try:
                fd = self._open_short_of_descriptors(path)
            except (_Gone, PermissionError):
                return None
        try:
            return os.read(fd, size)
        except OSError:
            return None
        finally:
            os.close(fd)

    def _close(self, rec, slot: str) -> None:
        """Close the descriptor kept in `rec`'s slot `slot`, if any."""
        fd = getattr(rec, slot)
        if fd >= 0:
            try:
                os.close(fd)
            finally:
                setattr(rec, slot, -1)
                self._open -= 1

    def _drop_task(self, rec: _Task) -> None:
        self._close(rec, "stat_fd")
        self._close(rec, "sched_fd")
        if self._tasks.get(rec.tid) is rec:
            del self._tasks[rec.tid]

    def _drop_proc(self, rec: _Proc) -> None:
        self._close(rec, "stat_fd")
        for tid in rec.tids:
            task = self._tasks.get(tid)
            if task is not None and task.pid == rec.pid:
                self._drop_task(task)
        if self._procs.get(rec.pid) is rec:
            del self._procs[rec.pid]

    def open_files(self) -> int:
        """How many /proc files are kept open now."""
        return self._open

    def pending(self) -> int:
        """How many threads still have fields to be read (a first sample leaves the
        voluntary/involuntary switch split to each process's turn in the rotation)."""
        return sum(1 for rec in self._tasks.values() if rec.pending)

    def tracked(self) -> tuple[int, int]:
        """(processes, threads) this source holds state for: no more than are alive."""
        return len(self._procs), len(self._tasks)

    def close(self) -> None:
        for rec in list(self._tasks.values()):
            self._drop_task(rec)
        for prec in list(self._procs.values()):
            self._drop_proc(prec)
        self._close(self, "stat_fd")
        self._previous = None

    def __enter__(self) -> LinuxSource:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ---- CPUs ---------------------------------------------------------------------------
    def _cpu_times(self) -> list[CpuTimes]:
        try:
            text = self._read(self, "stat_fd", "/stat", 1 << 16)
        except (OSError, _Gone):
            raise LiveError(f"cannot read {self.proc}/stat") from None
        out = []
        for line in text.split(b"\n"):
            if not line.startswith(b"cpu") or line[3:4] == b" ":
                if out:
                    break  # the per-CPU lines are together; stop at the first other line
                continue
            parts = line.split()
            try:
                cpu = int(parts[0][3:])
                v = [int(x) for x in parts[1:]] + [0] * 10
            except ValueError:
                continue
            user, nice, system, idle, iowait, irq, softirq, steal = v[:8]
            out.append(CpuTimes(
                cpu=cpu, user_s=(user + nice) / CLK_TCK,
                kernel_s=(system + irq + softirq) / CLK_TCK,
                idle_s=(idle + iowait) / CLK_TCK, other_s=steal / CLK_TCK,
                native={"user": user, "nice": nice, "system": system, "idle": idle,
                        "iowait": iowait, "irq": irq, "softirq": softirq, "steal": steal,
                        "guest": v[8], "guest_nice": v[9], "unit": "USER_HZ ticks"}))
        return out

    # ---- threads ------------------------------------------------------------------------
    def _affinity(self, rec: _Task, status: bytes | None) -> tuple[int, ...] | None:
        """The CPUs the thread may run on: from its status when that was read (its
        Cpus_allowed_list, less CPUs that are not online, as sched_getaffinity gives
        it), else from the system call, else what was known."""
        if status is not None:
            at = status.rfind(b"\nCpus_allowed_list:")
            if at >= 0:
                end = status.find(b"\n", at + 19)
                raw = status[at + 19:end if end >= 0 else None]
                if raw not in self._cpu_lists:
                    listed = parse_cpu_list(raw.decode("ascii", "replace")) or ()
                    self._cpu_lists[raw] = tuple(c for c in listed if c in self._online) or None
                return self._cpu_lists[raw]
        if self._real:
            try:
                cpus = os.sched_getaffinity(rec.tid)
            except OSError:
                return rec.affinity
            known = rec.affinity
            if known is not None and len(cpus) == len(known) and all(c in cpus for c in known):
                return known
            return _cpu_tuple(frozenset(cpus))
        return rec.affinity

    def _params_unchanged(self, rec: _Task) -> bool:
        """On a sleeping thread's turn in the rotation: are its nice, policy, real-time
        priority and affinity what its last stat said? Cheap system calls instead of a
        stat read. Never true for a made-up /proc, whose threads are not real."""
        if not self._real:
            return False
        tid = rec.tid
        try:
            policy = os.sched_getscheduler(tid) & ~SCHED_RESET_ON_FORK
            if policy != rec.policy or os.getpriority(os.PRIO_PROCESS, tid) != rec.nice:
                return False
            if policy in REALTIME and os.sched_getparam(tid).sched_priority != rec.rt_priority:
                return False
            cpus = os.sched_getaffinity(tid)
        except OSError:
            return False
        known = rec.affinity
        return known is not None and len(cpus) == len(known) and all(c in cpus for c in known)

    def _threads(self, pid: int, tids: list[int], full: bool, kthread: bool,
                 skipped: dict, still: bool = False) -> list[ThreadInfo]:
        """Every thread of `tids`. The common case, a settled sleeper whose schedstat has
        not moved, is handled inline: one pread and a comparison, or none if `still`
        (no thread of the process has run since the previous sample)."""
        tasks = self._tasks
        pread = os.pread
        out = []
        append = out.append
        for tid in tids:
            rec = tasks.get(tid)
            sched = None
            if rec is not None and rec.pid == pid and rec.sched_fd >= 0 \
                    and rec.letter in _SETTLED and rec.info is not None:
                if still:
                    sched = rec.sched_raw
                else:
                    try:
                        sched = pread(rec.sched_fd, 256, 0)
                    except OSError:
                        sched = None
                if sched and sched == rec.sched_raw and not full:
                    append(rec.info)
                    continue
                if not sched:
                    sched = None  # gone: the slow path looks again
            t = self._thread(pid, tid, full, kthread, skipped, sched)
            if t is not None:
                append(t)
        return out

    def _thread(self, pid: int, tid: int, full: bool, kthread: bool, skipped: dict,
                sched: bytes | None = None) -> ThreadInfo | None:
        """A new thread, or one that may have changed. `sched` is its schedstat if the
        caller has read it already."""
        rec = self._tasks.get(tid)
        if rec is not None and rec.pid != pid:
            self._drop_task(rec)  # the tid now belongs to a thread of another process
            rec = None
        for _attempt in (0, 1):
            fresh = rec is None
            if fresh:
                rec = _Task(tid, pid, f"{self.proc}/{pid}/task/{tid}")
                self._tasks[tid] = rec
                sched = None
            try:
                return self._first_read(rec, kthread) if fresh else \
                    self._reread(rec, full, kthread, sched)
            except _Gone:
                self._drop_task(rec)
                if fresh:
                    skipped["vanished"] += 1
                    return None
                rec = None  # the kept file named a task that is gone: look again
            except PermissionError:
                self._drop_task(rec)
                skipped["denied"] += 1
                return ThreadInfo(tid=tid, pid=pid, start_stamp=0,
                                  native={"readable": False})
        return None

    def _schedstat(self, rec: _Task) -> bytes:
        """The thread's schedstat, b"" on a kernel without one (no CONFIG_SCHED_INFO)."""
        if self._has_schedstat is False:
            return b""
        try:
            sched = self._read(rec, "sched_fd", "/schedstat", 256)
        except _Gone:
            if self._has_schedstat is None and os.path.exists(rec.base + "/stat"):
                self._has_schedstat = False
                return b""
            raise
        self._has_schedstat = True
        return sched

    def _first_read(self, rec: _Task, kthread: bool) -> ThreadInfo:
        """A thread seen for the first time (every thread, on a source's first sample):
        schedstat, kept open for the samples to come, stat, and wchan if it sleeps.
        Where schedstat gives the switch total and a system call the affinity, status
        would add only the voluntary/involuntary split, so unless `defer_split` is off
        the split is marked pending and read on the process's turn in the rotation:
        status is the dearest file of a first sample (docs/live.md, Costs)."""
        sched = self._schedstat(rec)
        stat = self._read(rec, "stat_fd", "/stat", 4096, keep=False)
        f = stat[stat.rfind(b")") + 2:].split()
        rec.start = int(f[F_START])
        status = None
        if sched and self._real and self.defer_split:
            rec.pending = True
        else:
            status = self._read_status(rec)
        return self._publish(rec, stat, f, sched, kthread, status, True)

    def _reread(self, rec: _Task, full: bool, kthread: bool,
                sched: bytes | None) -> ThreadInfo:
        """A thread read before; `sched` is its schedstat if the caller has read it."""
        if sched is None:
            sched = self._schedstat(rec)
        ran = sched != rec.sched_raw or not sched
        if not ran and rec.info is not None and rec.letter in _SETTLED:
            if not full:
                return rec.info
            if self.full_every > 1 and self._params_unchanged(rec):
                return self._complete(rec) if rec.pending else rec.info
        # Keep stat open only for threads read every sample (running, runnable or in
        # a disk wait, or all with full_every=1); a settled sleeper's is read rarely.
        every_sample = self.full_every == 1
        stat = self._read(rec, "stat_fd", "/stat", 4096,
                          keep=every_sample or rec.letter not in _SETTLED)
        if not ran and stat == rec.stat_raw and rec.info is not None and not rec.pending:
            return rec.info
        f = stat[stat.rfind(b")") + 2:].split()
        if int(f[F_START]) != rec.start:
            raise _Gone  # a read by path reached a new task with the same id
        if f[F_STATE][0] in _SETTLED_BYTES and not every_sample:
            self._close(rec, "stat_fd")
        # Switch counts and the wait location change only when the thread runs.
        status = self._read_status(rec) if ran or rec.pending else None
        return self._publish(rec, stat, f, sched, kthread, status, ran)

    def _publish(self, rec: _Task, stat: bytes, f: list[bytes], sched: bytes, kthread: bool,
                 status: bytes | None, ran: bool) -> ThreadInfo:
        """Record what was read of the thread, reading its wchan if it sleeps where it
        may not have slept before, and make its ThreadInfo. Runs for every thread of a
        first sample, so the work of its parsing is cached where the inputs repeat."""
        letter = chr(f[F_STATE][0])
        if letter in _WAITING:
            if ran or letter != rec.letter or rec.wchan is None:
                raw = self._read_once(rec.base + "/wchan", 256)
                rec.wchan = _wchan_name(raw) if raw else None
        else:
            rec.wchan = None
        affinity = rec.affinity = self._affinity(rec, status)
        rec.letter = letter
        rec.stat_raw, rec.sched_raw = stat, sched
        policy, nice, rt_priority, priority, policy_name = _sched_params(
            f[F_POLICY], f[F_NICE], f[F_RT_PRIORITY])
        rec.policy, rec.nice, rec.rt_priority = policy, nice, rt_priority
        state, reason = _state_and_reason(letter, rec.wchan, kthread)
        run_ns = run_delay = None
        voluntary, involuntary = rec.voluntary, rec.involuntary
        if sched:
            s = sched.split()
            run_ns, run_delay, switches = int(s[0]), int(s[1]), int(s[2])
        elif voluntary is not None and involuntary is not None:
            switches = voluntary + involuntary
        else:
            switches = None
        start = rec.start or 0
        native = {"state": letter, "wchan": rec.wchan, "nice": nice, "policy": policy_name,
                  "rt_priority": rt_priority, "kernel_priority": int(f[F_PRIORITY]),
                  "voluntary_switches": voluntary, "involuntary_switches": involuntary,
                  "run_delay_ns": run_delay, "kernel_thread": kthread}
        if rec.pending:
            native["pending"] = PENDING_SWITCHES
        rec.info = ThreadInfo(
            tid=rec.tid, pid=rec.pid, start_stamp=start,
            name=_task_name(stat[stat.find(b"(") + 1:stat.rfind(b")")]),
            state=state, wait_reason=reason, priority=priority, base_priority=priority,
            user_time_s=int(f[F_UTIME]) / CLK_TCK, kernel_time_s=int(f[F_STIME]) / CLK_TCK,
            run_time_ns=run_ns, context_switches=switches, cpu=int(f[F_PROCESSOR]),
            affinity=affinity,
            create_time=self._boot_epoch + start / CLK_TCK,
            create_time_us=start * 1e6 / CLK_TCK,
            exit_code=_exit_status(f) if state == "Terminated" else STILL_ACTIVE,
            native=native,
        )
        return rec.info

    def _read_status(self, rec: _Task) -> bytes | None:
        """The thread's status, its switch counts taken from it (None: unreadable)."""
        status = self._read_once(rec.base + "/status", 16384)
        rec.pending = False
        if status is not None:
            rec.voluntary, rec.involuntary = _switch_counts(status)
        return status

    def _complete(self, rec: _Task) -> ThreadInfo:
        """A thread that has not run since its first sample, on its turn in the
        rotation: its record with the switch counts that were left pending."""
        self._read_status(rec)
        native = dict(rec.info.native, voluntary_switches=rec.voluntary,
                      involuntary_switches=rec.involuntary)
        native.pop("pending", None)
        rec.info = rec.info._replace(native=native)
        return rec.info

    # ---- processes ----------------------------------------------------------------------
    def _process(self, pid: int, full: bool, skipped: dict) -> ProcessInfo | None:
        rec = self._procs.get(pid)
        clock = None
        if self._real:
            try:
                clock = time.clock_gettime_ns(process_cpu_clock(pid))
            except OSError:
                clock = None  # gone, or a zombie: read the files
            if rec is not None and clock and clock == rec.clock and not full \
                    and rec.info is not None:
                rec.seen = self._gen
                return rec.info  # no thread ran: nothing in the process changed
        raw = None
        for _attempt in (0, 1):
            fresh = rec is None
            if fresh:
                rec = _Proc(pid, f"{self.proc}/{pid}")
                self._procs[pid] = rec
            try:
                raw = self._read(rec, "stat_fd", "/stat")
                break
            except _Gone:
                self._drop_proc(rec)
                if fresh:
                    skipped["vanished"] += 1
                    return None
                rec = None
            except PermissionError:
                self._drop_proc(rec)
                skipped["denied"] += 1
                return self._denied_process(pid)
        assert rec is not None and raw is not None
        lp, rp = raw.find(b"("), raw.rfind(b")")
        f = raw[rp + 2:].split()
        start = int(f[F_START])
        if rec.start is not None and start != rec.start:
            self._drop_proc(rec)  # the pid was recycled: a new process
            rec = _Proc(pid, f"{self.proc}/{pid}")
            self._procs[pid] = rec
            fresh = True
        rec.start = start
        rec.seen = self._gen
        comm = raw[lp + 1:rp].decode("utf-8", "replace")
        letter = chr(f[F_STATE][0])
        kthread = bool(int(f[F_FLAGS]) & PF_KTHREAD)
        exec_seen = comm != rec.comm  # an exec, or the main thread renamed itself
        if fresh or exec_seen:
            try:
                rec.uid = os.stat(rec.base).st_uid
            except OSError:
                rec.uid = None
            if not kthread:
                cmd = self._read_once(rec.base + "/cmdline", 4096)
                rec.cmdline = None if cmd is None else \
                    cmd.rstrip(b"\0").replace(b"\0", b" ").decode("utf-8", "replace")
            rec.comm = comm
        if fresh or exec_seen or full:
            cg = self._read_once(rec.base + "/cgroup", 8192)
            if cg is not None and cg != rec.cgroup_raw:
                rec.cgroup_raw = cg
                rec.jobs = self._cgroups.jobs_of(cg)

        nthreads = int(f[F_THREADS])
        # The thread list is read again only when it may have changed: if the count is
        # what it was and every thread known is still there, no thread can have come.
        if nthreads == 1 and letter not in _EXITED:
            tids, listed = [pid], True
        elif letter not in _EXITED and len(rec.tids) == nthreads:
            tids, listed = rec.tids, False
        else:
            tids, listed = self._list_tasks(rec), True
            if tids is None:
                self._drop_proc(rec)
                skipped["vanished"] += 1
                return None
        # On its turn in the rotation, a process whose CPU clock has not moved had no
        # thread run: their schedstats cannot have moved, so they are not read.
        still = not fresh and clock is not None and clock == rec.clock
        threads = self._threads(pid, tids, full, kthread, skipped, still)
        if not listed and len(threads) != nthreads:
            tids = self._list_tasks(rec) or []
            threads = self._threads(pid, tids, full, kthread, skipped, still)
        if not threads and tids and not os.path.exists(rec.base):
            self._drop_proc(rec)  # it exited while its threads were read
            skipped["vanished"] += 1
            return None
        new_tids = [t.tid for t in threads]
        if new_tids != rec.tids:
            current = set(new_tids)
            for tid in rec.tids:
                task = self._tasks.get(tid)
                if tid not in current and task is not None and task.pid == pid:
                    self._drop_task(task)  # a thread that ended
            rec.tids = new_tids
        rec.clock = clock
        threads_t = tuple(threads)
        old = rec.info
        if old is not None and raw == rec.stat_raw and old.jobs == rec.jobs \
                and len(old.threads) == len(threads_t) \
                and all(a is b for a, b in zip(old.threads, threads_t)):
            return old
        rec.stat_raw = raw
        policy, nice = int(f[F_POLICY]), int(f[F_NICE])
        cls, base_priority, policy_name = _process_class(policy, nice)
        # tids are listed in order, so the leader (tid = pid) is first, bar a wrapped pid
        leader = threads_t[0] if threads_t and threads_t[0].tid == pid else \
            next((t for t in threads_t if t.tid == pid), None)
        exited = letter in _EXITED
        rec.info = ProcessInfo(
            pid=pid, start_stamp=start, ppid=int(f[F_PPID]), name=comm,
            create_time=self._boot_epoch + start / CLK_TCK,
            create_time_us=start * 1e6 / CLK_TCK,
            user_time_s=int(f[F_UTIME]) / CLK_TCK, kernel_time_s=int(f[F_STIME]) / CLK_TCK,
            priority_class=cls, base_priority=base_priority,
            exited=exited, exit_code=_exit_status(f) if exited else STILL_ACTIVE,
            affinity=None if leader is None else leader.affinity,
            jobs=rec.jobs, threads=threads_t,
            native={"state": letter, "kernel_thread": kthread, "uid": rec.uid,
                    "cmdline": rec.cmdline, "nice": nice, "policy": policy_name,
                    "num_threads": nthreads, "pgrp": int(f[F_PGRP]),
                    "session": int(f[F_SESSION]), "tty_nr": int(f[F_TTY]),
                    "vsize_bytes": int(f[F_VSIZE]),
                    "rss_bytes": int(f[F_RSS]) * PAGE_SIZE,
                    "protection": None},
        )
        return rec.info

    def _list_tasks(self, rec: _Proc) -> list[int] | None:
        """The process's thread ids; [] if they cannot be listed, None if it is gone."""
        try:
            return sorted(int(t) for t in os.listdir(rec.base + "/task"))
        except PermissionError:
            return []
        except OSError:
            return None

    def _denied_process(self, pid: int) -> ProcessInfo:
        """What can be said of a process whose stat cannot be read (hidepid=1)."""
        base = f"{self.proc}/{pid}"
        try:
            uid = os.stat(base).st_uid
        except OSError:
            uid = None
        raw = self._read_once(base + "/comm", 64)
        name = raw.decode("utf-8", "replace").rstrip("\n") if raw else None
        return ProcessInfo(pid=pid, start_stamp=0, name=name, readable=False,
                           native={"uid": uid, "readable": False})

    # ---- one sample ---------------------------------------------------------------------
    def sample(self) -> Snapshot:
        """Sample every process and thread now."""
        self._gen += 1
        self._turn = self._gen % self.full_every
        every, turn = self.full_every, self._turn
        mono = time.monotonic()
        wall = time.time()
        uptime = time.clock_gettime(time.CLOCK_BOOTTIME)
        cpu_times = self._cpu_times()
        online = frozenset(c.cpu for c in cpu_times) or frozenset(range(os.cpu_count() or 1))
        if online != self._online:
            self._online, self._cpu_lists = online, {}
        try:
            names = os.listdir(self.proc)
        except OSError as exc:
            raise LiveError(f"cannot list {self.proc}: {exc.strerror or exc}") from None
        skipped = {"vanished": 0, "denied": 0}
        processes = []
        members: dict[str, int] = {}
        for name in names:
            if not name.isdigit():
                continue
            pid = int(name)
            info = self._process(pid, pid % every == turn, skipped)
            if info is None:
                continue
            processes.append(info)
            for job in info.jobs:
                members[job] = members.get(job, 0) + 1
        gen = self._gen
        for prec in [r for r in self._procs.values() if r.seen != gen]:
            self._drop_proc(prec)  # exited since the previous sample
        ncpu = max((c.cpu for c in cpu_times), default=-1) + 1 or (os.cpu_count() or 1)
        jobs = self._cgroups.read_jobs(members, ncpu) if members else []
        snap = Snapshot(host=self.host, source=self.name, wall_time=wall, uptime_s=uptime,
                        monotonic=mono, cpus=ncpu, processes=processes, cpu_times=cpu_times,
                        jobs=jobs, skipped=skipped)
        apply_deltas(self._previous, snap)
        self._previous = snap
        return snap


def _same_pid_namespace(proc: str) -> bool:
    """Does `proc` show this process's PID namespace, so that its ids can be handed to
    system calls? (A /proc mounted from another namespace numbers processes its way.)"""
    try:
        return os.readlink(os.path.join(proc, "self")) == str(os.getpid())
    except OSError:
        return False


def _switch_counts(status: bytes) -> tuple[int | None, int | None]:
    """(voluntary, involuntary) context switches from a status file, whose last lines
    they are (some kernels add lines after them)."""
    at = status.rfind(b"\nvoluntary_ctxt_switches:")
    if at < 0:
        return None, None
    words = status[at:at + 128].split()
    try:
        voluntary = int(words[1])
    except (IndexError, ValueError):
        return None, None
    try:
        involuntary = int(words[3]) if words[2] == b"nonvoluntary_ctxt_switches:" else None
    except (IndexError, ValueError):
        involuntary = None
    return voluntary, involuntary


def _exit_status(f: list[bytes]) -> int | None:
    """The wait status of an exited task (stat field 52, Linux 3.5+) as an exit code:
    the code it exited with, or minus the signal that killed it."""
    if len(f) <= F_EXIT_CODE:
        return None
    status = int(f[F_EXIT_CODE])
    if status & 0x7F:
        return -(status & 0x7F)
    return (status >> 8) & 0xFF

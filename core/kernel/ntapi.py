"""What a driver sees: the kernel routines of formats.md §7 under their real names.

A "driver" is Python code loaded into a simulated machine through ``machine.nt``::

    def on_process(process, pid, create_info):
        if create_info is not None and create_info.ImageFileName.endswith("evil.exe"):
            create_info.CreationStatus = STATUS_ACCESS_DENIED   # veto (§8.2)

    machine.nt.PsSetCreateProcessNotifyRoutineEx(on_process, False)

Rules followed (nt-facts §8.2-8.3 and the WDK pages they cite):

- Process-notify routines run when the process's *first thread* is created, in the
  context of the creating thread (``PsGetCurrentThreadId()`` is the creator's TID), and at
  exit in the context of the last thread to exit.  Only routines that saw a creation see
  its exit.  Setting ``CreationStatus`` to an error stops the process before any of its
  threads runs; the creator's CreateProcess fails with the matching Win32 error.
- Thread-notify routines: ``PsSetCreateThreadNotifyRoutine`` runs on the creating thread,
  ``...Ex(PsCreateThreadNotifyNonSystem)`` on the new thread and never for System threads.
- Up to 64 routines of each kind; a second registration of one routine is
  STATUS_INVALID_PARAMETER (process) and removing an unknown one STATUS_PROCEDURE_NOT_FOUND.
- Callbacks run inside a critical region and must not block: a callback that calls a
  waiting routine (``KeWaitForSingleObject`` with a timeout other than 0,
  ``KeDelayExecutionThread``) is reported as a ``driver_violation`` event and gets
  STATUS_TIMEOUT back at once instead of hanging the machine.  A callback that raises is
  reported as ``driver_fault`` and unregistered (where Windows would bugcheck).
- Kernel code runs at no simulated cost unless it says otherwise: a work item or system
  thread routine may return a cost in ns, spent in kernel mode by the thread running it.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from .constants import CYCLES_PER_NS, PRIORITY_CLASS_CODE, WrQueue, process_base_priority
from .objects import Process, Semaphore, Thread
from .program import call, repeat
from .program import wait as wait_step

# ---- NTSTATUS values (ntstatus.h) -------------------------------------------------------
STATUS_SUCCESS = 0x00000000
STATUS_TIMEOUT = 0x00000102
STATUS_PENDING = 0x00000103
STATUS_INVALID_CID = 0xC000000B
STATUS_INVALID_PARAMETER = 0xC000000D
STATUS_ACCESS_DENIED = 0xC0000022
STATUS_PROCEDURE_NOT_FOUND = 0xC000007A
STATUS_INSUFFICIENT_RESOURCES = 0xC000009A
STATUS_INVALID_INFO_CLASS = 0xC0000003
STATUS_INFO_LENGTH_MISMATCH = 0xC0000004

NTSTATUS_NAMES = {
    STATUS_SUCCESS: "STATUS_SUCCESS", STATUS_TIMEOUT: "STATUS_TIMEOUT",
    STATUS_PENDING: "STATUS_PENDING", STATUS_INVALID_CID: "STATUS_INVALID_CID",
    STATUS_INVALID_PARAMETER: "STATUS_INVALID_PARAMETER",
    STATUS_ACCESS_DENIED: "STATUS_ACCESS_DENIED",
    STATUS_PROCEDURE_NOT_FOUND: "STATUS_PROCEDURE_NOT_FOUND",
    STATUS_INSUFFICIENT_RESOURCES: "STATUS_INSUFFICIENT_RESOURCES",
    STATUS_INVALID_INFO_CLASS: "STATUS_INVALID_INFO_CLASS",
}

# RtlNtStatusToDosError for the statuses a veto is likely to use
_DOS_ERROR = {
    STATUS_ACCESS_DENIED: 5,  # ERROR_ACCESS_DENIED
    STATUS_INVALID_PARAMETER: 87,  # ERROR_INVALID_PARAMETER
    STATUS_INSUFFICIENT_RESOURCES: 1450,  # ERROR_NO_SYSTEM_RESOURCES
}
ERROR_MR_MID_NOT_FOUND = 317  # what RtlNtStatusToDosError returns for an unmapped status


def nt_success(status: int) -> bool:
    """NT_SUCCESS(): success and informational statuses (severity 0 or 1)."""
    return (status & 0xFFFFFFFF) < 0x80000000


def dos_error(status: int) -> int:
    return _DOS_ERROR.get(status & 0xFFFFFFFF, ERROR_MR_MID_NOT_FOUND)


# ---- enumerations -----------------------------------------------------------------------
CriticalWorkQueue, DelayedWorkQueue, HyperCriticalWorkQueue = 0, 1, 2
WORK_QUEUE_NAMES = ("CriticalWorkQueue", "DelayedWorkQueue", "HyperCriticalWorkQueue")
# Worker priorities and counts: ReactOS ntoskrnl/ex/work.c (EX_CRITICAL_QUEUE_PRIORITY 13,
# EX_DELAYED_QUEUE_PRIORITY 12, hypercritical 15; ExCriticalWorkerThreads 5,
# ExDelayedWorkerThreads 3).  Windows 10 grows the pools on demand; KOI keeps them fixed.
WORKER_PRIORITY = (13, 12, 15)
WORKER_COUNT = (5, 3, 1)

PsCreateProcessNotifySubsystems = 0
PsCreateThreadNotifyNonSystem, PsCreateThreadNotifySubsystems = 0, 1

ProcessBasicInformation = 0
ProcessTimes = 4
ProcessPriorityClass = 18
ProcessSubsystemInformation = 75
ThreadBasicInformation = 0
ThreadTimes = 1
ThreadSubsystemInformation = 45
SubsystemInformationTypeWin32, SubsystemInformationTypeWSL = 0, 1
_SUBSYSTEM = {"win32": SubsystemInformationTypeWin32, "wsl": SubsystemInformationTypeWSL}

NOTIFY_ROUTINE_LIMIT = 64  # raised from 8 by KB2919355 (nt-facts §8.3)
FILETIME_PER_CYCLE_DIVISOR = 100 * CYCLES_PER_NS  # 100 ns units


@dataclass
class ClientId:
    UniqueProcess: int
    UniqueThread: int


@dataclass
class PsCreateNotifyInfo:
    """PS_CREATE_NOTIFY_INFO: what a process-creation callback gets, and may veto."""

    ParentProcessId: int | None
    CreatingThreadId: ClientId
    ImageFileName: str
    CommandLine: str
    IsSubsystemProcess: bool = False
    FileOpenNameAvailable: bool = True
    CreationStatus: int = STATUS_SUCCESS
    Size: int = 0x48  # sizeof(PS_CREATE_NOTIFY_INFO) on x64


@dataclass
class ImageInfo:
    """IMAGE_INFO for a load-image callback."""

    ImageBase: int
    ImageSize: int
    SystemModeImage: bool = False
    ImageSignatureLevel: int = 0


@dataclass
class _Routine:
    fn: object
    kind: str  # "process", "process_ex", "process_ex2", "thread", "thread_ex", "image"


@dataclass
class _WorkQueue:
    items: deque = field(default_factory=deque)
    count: Semaphore | None = None  # KQUEUE: its count is the number of queued items


class NtKernel:
    """The driver-facing routines of one machine (``machine.nt``)."""

    def __init__(self, machine) -> None:
        self.m = machine
        self.process_routines: list[_Routine] = []
        self.thread_routines: list[_Routine] = []
        self.image_routines: list[_Routine] = []
        self.current: Thread | None = None  # context of the kernel code running now
        self._callback_depth = 0
        self._callback_name = ""
        self.queues = [_WorkQueue(count=Semaphore(f"\\KernelObjects\\{n}", 0, 0x7FFFFFFF))
                       for n in WORK_QUEUE_NAMES]

    # ------------------------------------------------------------------ context
    def PsGetCurrentThreadId(self) -> int:
        return self.current.tid if self.current is not None else 0

    def PsGetCurrentProcessId(self) -> int:
        return self.current.pid if self.current is not None else 4

    def PsGetCurrentThread(self) -> Thread | None:
        return self.current

    def PsGetCurrentProcess(self) -> Process:
        return self.current.process if self.current is not None else self.m.system_process

    def _run(self, context: Thread | None, label: str, fn, *args, notify: bool = True):
        """Call driver code `fn` in `context`; a raise is a driver fault, not a crash.
        `notify`: a notify routine, which must not block (work items and system thread
        bodies may, by returning wait steps)."""
        saved = (self.current, self._callback_name, self._callback_depth)
        self.current = context
        self._callback_depth = self._callback_depth + 1 if notify else 0
        self._callback_name = label
        try:
            return fn(*args), True
        except Exception as exc:  # noqa: BLE001 - driver code is the user's; report it
            self.m._emit_driver("driver_fault", label, f"{type(exc).__name__}: {exc}")
            return None, False
        finally:
            self.current, self._callback_name, self._callback_depth = saved

    # ------------------------------------------------------------------ registration
    def _register(self, table: list, fn, kind: str, remove: bool, duplicate_status: int) -> int:
        for r in table:
            if r.fn is fn:
                if remove:
                    table.remove(r)
                    return STATUS_SUCCESS
                return duplicate_status
        if remove:
            return STATUS_PROCEDURE_NOT_FOUND
        if sum(1 for r in table if r.kind.split("_")[0] == kind.split("_")[0]) >= \
                NOTIFY_ROUTINE_LIMIT:
            return (STATUS_INVALID_PARAMETER if kind.startswith("process")
                    else STATUS_INSUFFICIENT_RESOURCES)
        table.append(_Routine(fn, kind))
        return STATUS_SUCCESS

    def PsSetCreateProcessNotifyRoutine(self, routine, remove: bool = False) -> int:
        """routine(ParentId, ProcessId, Create)."""
        return self._register(self.process_routines, routine, "process", remove,
                              STATUS_INVALID_PARAMETER)

    def PsSetCreateProcessNotifyRoutineEx(self, routine, remove: bool = False) -> int:
        """routine(Process, ProcessId, CreateInfo or None at exit); may veto creation."""
        return self._register(self.process_routines, routine, "process_ex", remove,
                              STATUS_INVALID_PARAMETER)

    def PsSetCreateProcessNotifyRoutineEx2(self, notify_type: int, routine,
                                           remove: bool = False) -> int:
        """As Ex, and also called for subsystem (pico) processes with IsSubsystemProcess."""
        if notify_type != PsCreateProcessNotifySubsystems:
            return STATUS_INVALID_PARAMETER
        return self._register(self.process_routines, routine, "process_ex2", remove,
                              STATUS_INVALID_PARAMETER)

    def PsSetCreateThreadNotifyRoutine(self, routine) -> int:
        """routine(ProcessId, ThreadId, Create), on the creating thread."""
        return self._register(self.thread_routines, routine, "thread", False,
                              STATUS_INVALID_PARAMETER)

    def PsSetCreateThreadNotifyRoutineEx(self, notify_type: int, routine) -> int:
        if notify_type not in (PsCreateThreadNotifyNonSystem, PsCreateThreadNotifySubsystems):
            return STATUS_INVALID_PARAMETER
        kind = "thread_ex" if notify_type == PsCreateThreadNotifyNonSystem else "thread_sub"
        return self._register(self.thread_routines, routine, kind, False,
                              STATUS_INVALID_PARAMETER)

    def PsRemoveCreateThreadNotifyRoutine(self, routine) -> int:
        return self._register(self.thread_routines, routine, "thread", True, STATUS_SUCCESS)

    def PsSetLoadImageNotifyRoutine(self, routine) -> int:
        """routine(FullImageName, ProcessId, ImageInfo)."""
        return self._register(self.image_routines, routine, "image", False,
                              STATUS_INVALID_PARAMETER)

    def PsRemoveLoadImageNotifyRoutine(self, routine) -> int:
        return self._register(self.image_routines, routine, "image", True, STATUS_SUCCESS)

    # ------------------------------------------------------------------ notifications
    def _process_created(self, proc: Process, first: Thread) -> int:
        """Run the process-notify routines for a creation; return the CreationStatus."""
        creator = proc.creator
        notified: list = []
        proc.create_notified = notified
        status = STATUS_SUCCESS
        pico = proc.subsystem != "win32"
        for r in list(self.process_routines):
            if pico and r.kind != "process_ex2":
                continue  # only Ex2 routines see subsystem processes (nt-facts §9)
            if r.kind == "process":
                _, ok = self._run(creator, "process-notify",
                                  r.fn, proc.parent_pid or 0, proc.pid, True)
            else:
                info = PsCreateNotifyInfo(
                    ParentProcessId=proc.parent_pid,
                    CreatingThreadId=ClientId(creator.pid if creator else 4,
                                              creator.tid if creator else 0),
                    ImageFileName=None if pico else proc.image_path,
                    CommandLine=None if pico else proc.image_path,
                    IsSubsystemProcess=pico, FileOpenNameAvailable=not pico)
                _, ok = self._run(creator, "process-notify", r.fn, proc, proc.pid, info)
                if ok and not nt_success(info.CreationStatus):
                    status = info.CreationStatus & 0xFFFFFFFF
            if ok:
                notified.append(r)
            else:
                self._drop(r)
            if status != STATUS_SUCCESS:
                break
        return status

    def _process_exited(self, proc: Process, last: Thread | None) -> None:
        for r in proc.create_notified or ():
            if r not in self.process_routines:
                continue  # unregistered since
            if r.kind == "process":
                _, ok = self._run(last, "process-notify", r.fn, proc.parent_pid or 0,
                                  proc.pid, False)
            else:
                _, ok = self._run(last, "process-notify", r.fn, proc, proc.pid, None)
            if not ok:
                self._drop(r)

    def _thread_changed(self, t: Thread, create: bool, creator: Thread | None) -> None:
        system = t.process is self.m.system_process
        for r in list(self.thread_routines):
            if r.kind == "thread_ex" and system:
                continue  # PsCreateThreadNotifyNonSystem
            context = creator if (create and r.kind == "thread") else t
            _, ok = self._run(context, "thread-notify", r.fn, t.pid, t.tid, create)
            if not ok:
                self._drop(r)

    def _image_loaded(self, proc: Process, path: str, base: int, size: int,
                      context: Thread | None) -> None:
        for r in list(self.image_routines):
            _, ok = self._run(context, "load-image-notify", r.fn, path, proc.pid,
                              ImageInfo(base, size))
            if not ok:
                self._drop(r)

    def _drop(self, r: _Routine) -> None:
        for table in (self.process_routines, self.thread_routines, self.image_routines):
            if r in table:
                table.remove(r)

    # ------------------------------------------------------------------ blocking
    def _blocking(self, routine: str) -> bool:
        """True (and a violation reported) when kernel code may not block here."""
        if self._callback_depth:
            self.m._emit_driver(
                "driver_violation", self._callback_name,
                f"{routine} called from a {self._callback_name} callback: notify routines run "
                "in a critical region on someone else's thread and must not block")
            return True
        return False

    def KeWaitForSingleObject(self, obj, timeout_ns: int | None = None) -> int:
        """Only a poll (timeout 0) can be answered synchronously; kernel code that waits
        returns wait steps instead (see call())."""
        if timeout_ns == 0:
            return 0 if obj.signaled else STATUS_TIMEOUT
        if self._blocking("KeWaitForSingleObject"):
            return STATUS_TIMEOUT
        raise RuntimeError("KeWaitForSingleObject with a timeout: return "
                           "program.wait(obj, timeout) steps from the routine instead")

    def KeDelayExecutionThread(self, interval_ns: int) -> int:
        if self._blocking("KeDelayExecutionThread"):
            return STATUS_TIMEOUT
        raise RuntimeError("KeDelayExecutionThread: return program.sleep(ns) steps from "
                           "the routine instead")

    # ------------------------------------------------------------------ system threads
    def PsCreateSystemThread(self, start_routine, start_context=None, name: str | None = None,
                             priority: int = 8):
        """Create a thread of the System process.  ``start_routine(start_context)`` runs
        on it and returns either a cost in ns or a sequence of program steps (kcpu, wait,
        sleep, call(...), ...) for the thread to run next; falling off the end is
        PsTerminateSystemThread(STATUS_SUCCESS).  Returns (status, thread)."""
        m = self.m
        program = (call(self._start_system_thread, start_routine, start_context),)
        t = m._new_thread(m.system_process, 0, name, m.system_process.affinity, None,
                          False, program, False, base=priority)
        return STATUS_SUCCESS, t

    def _start_system_thread(self, routine, context):
        t = self.current
        result, ok = self._run(t, "system-thread", routine, context, notify=False)
        if not ok:
            self.m._exit_thread(t, STATUS_ACCESS_DENIED)
            return 0
        if isinstance(result, (list, tuple)):
            t.program = t.program[:t.pc] + tuple(result)
            return 0
        return int(result or 0)

    def PsTerminateSystemThread(self, exit_status: int = STATUS_SUCCESS) -> int:
        t = self.current
        if t is None or t.process is not self.m.system_process:
            return STATUS_INVALID_PARAMETER
        self.m._exit_thread(t, exit_status)
        return STATUS_SUCCESS

    def KeSetPriorityThread(self, thread: Thread, priority: int) -> int:
        """Set a kernel thread's priority (and base); returns the old priority."""
        if not 1 <= priority <= 31:
            raise ValueError("KeSetPriorityThread: priority must be 1..31")
        old = thread.priority
        self.m._set_base(thread, priority, "KeSetPriorityThread")
        return old

    # ------------------------------------------------------------------ work items
    def start_workers(self) -> list[Thread]:
        """The executive worker threads of the System process (waiting in WrQueue)."""
        m = self.m
        out = []
        for q, (prio, count) in enumerate(zip(WORKER_PRIORITY, WORKER_COUNT)):
            queue = self.queues[q]
            body = (wait_step(queue.count) + (WrQueue,), call(self._run_work_item, q))
            for _ in range(count):
                out.append(m.create_waiting_thread(m.system_process, body + (repeat(),),
                                                   name="ExpWorkerThread", base=prio))
        return out

    def ExQueueWorkItem(self, routine, queue_type: int = DelayedWorkQueue,
                        parameter=None) -> None:
        """Queue ``routine(parameter)`` to a system worker thread; it may return a cost
        in ns.  The worker wakes in WrQueue and runs it at its queue's priority."""
        if queue_type not in (CriticalWorkQueue, DelayedWorkQueue, HyperCriticalWorkQueue):
            raise ValueError(f"ExQueueWorkItem: unknown queue type {queue_type}")
        queue = self.queues[queue_type]
        queue.items.append((routine, parameter))
        # KeInsertQueue: one more item; it wakes one waiter, with no priority boost
        count = queue.count
        count.count += 1
        count.signaled = True
        if count.waiters:
            cur = self.current
            self.m._signal(count, 0, cur.cpu if cur is not None and cur.state == 2 else -1)

    def _run_work_item(self, q: int):
        queue = self.queues[q]
        if not queue.items:
            return 0
        routine, parameter = queue.items.popleft()
        result, ok = self._run(self.current, "work-item", routine, parameter, notify=False)
        return int(result or 0) if ok and isinstance(result, (int, float)) else 0

    # ------------------------------------------------------------------ lookups
    def PsLookupProcessByProcessId(self, pid: int):
        """(status, process); the reference taken must be dropped with ObDereferenceObject."""
        p = self.m.processes.get(pid)
        if p is None or not self.m.visible(p):
            return STATUS_INVALID_PARAMETER, None
        p.refs += 1
        return STATUS_SUCCESS, p

    def PsLookupThreadByThreadId(self, tid: int):
        t = self.m.threads.get(tid)
        if t is None or not self.m.visible(t):
            return STATUS_INVALID_PARAMETER, None
        t.refs += 1
        return STATUS_SUCCESS, t

    def ObDereferenceObject(self, obj) -> None:
        self.m.close_handle(obj)

    def PsGetProcessExitStatus(self, process: Process) -> int:
        return process.exit_code

    # ------------------------------------------------------------------ queries
    def NtQueryInformationProcess(self, process: Process, info_class: int):
        """(status, information as a dict named after the structure's fields)."""
        m = self.m
        m._charge_all()
        if info_class == ProcessBasicInformation:
            return STATUS_SUCCESS, {
                "ExitStatus": process.exit_code,
                "PebBaseAddress": m.peb_address(process),
                "AffinityMask": process.affinity,
                "BasePriority": process_base_priority(process.pid, process.priority_class),
                "UniqueProcessId": process.pid,
                "InheritedFromUniqueProcessId": process.parent_pid or 0,
            }
        if info_class == ProcessTimes:
            user = sum(t.user for t in process.threads)
            kernel = sum(t.kernel for t in process.threads)
            return STATUS_SUCCESS, {
                "CreateTime": m.filetime(process.create_time),
                "ExitTime": 0 if process.exit_time is None else m.filetime(process.exit_time),
                "KernelTime": kernel // FILETIME_PER_CYCLE_DIVISOR,
                "UserTime": user // FILETIME_PER_CYCLE_DIVISOR,
            }
        if info_class == ProcessPriorityClass:
            return STATUS_SUCCESS, {"Foreground": process.foreground,
                                    "PriorityClass": PRIORITY_CLASS_CODE.get(
                                        process.priority_class, 0)}
        if info_class == ProcessSubsystemInformation:
            return STATUS_SUCCESS, {"SubsystemInformationType": _SUBSYSTEM[process.subsystem]}
        return STATUS_INVALID_INFO_CLASS, None

    def NtQueryInformationThread(self, thread: Thread, info_class: int):
        m = self.m
        m._charge_all()
        if info_class == ThreadBasicInformation:
            return STATUS_SUCCESS, {
                "ExitStatus": thread.exit_code,
                "TebBaseAddress": m.teb_address(thread),
                "ClientId": ClientId(thread.pid, thread.tid),
                "AffinityMask": thread.affinity,
                "Priority": thread.priority,
                # THREAD_BASIC_INFORMATION.BasePriority is relative to the process's
                "BasePriority": thread.base - process_base_priority(
                    thread.pid, thread.process.priority_class),
            }
        if info_class == ThreadTimes:
            return STATUS_SUCCESS, {
                "CreateTime": m.filetime(thread.create_time),
                "ExitTime": 0,
                "KernelTime": thread.kernel // FILETIME_PER_CYCLE_DIVISOR,
                "UserTime": thread.user // FILETIME_PER_CYCLE_DIVISOR,
            }
        if info_class == ThreadSubsystemInformation:
            return STATUS_SUCCESS, {
                "SubsystemInformationType": _SUBSYSTEM[thread.process.subsystem]}
        return STATUS_INVALID_INFO_CLASS, None


"""Windows: NtQuerySystemInformation(SystemProcessInformation) through ctypes.

One call returns every process with its threads: the data Process Explorer shows
(thread states, wait reasons, dynamic and base priorities, context switches, times).
The buffer is a chain of SYSTEM_PROCESS_INFORMATION entries, each followed by its
SYSTEM_THREAD_INFORMATION array; the structures below are the documented x64 layout
(winternl.h for the public part, the rest as Windows has laid it out since Vista),
checked field by field at import. Per-CPU times come from
SystemProcessorPerformanceInformation, the boot time from SystemTimeOfDayInformation.

The parsers take plain bytes and the address the buffer had, so they run (and are
tested) on any OS; only `WindowsSource` needs Windows. Job membership: IsProcessInJob
per process, and for the job this process is in, its limits, accounting and member
list through QueryInformationJobObject(NULL, ...): Windows gives no way to name or
query another process's job without a handle to that job.
"""

from __future__ import annotations

import ctypes
import os
import struct
import sys
import time
from ctypes import c_int32, c_int64, c_uint16, c_uint32, c_uint64

from core.kernel.constants import KTHREAD_STATE, KWAIT_REASON, STILL_ACTIVE, WAITING

from .model import (
    CpuTimes,
    JobInfo,
    LiveError,
    ProcessInfo,
    Snapshot,
    ThreadInfo,
    apply_deltas,
    priority_class_from_base,
)

SystemProcessInformation = 5
SystemProcessorPerformanceInformation = 8
SystemTimeOfDayInformation = 3
STATUS_INFO_LENGTH_MISMATCH = 0xC0000004
EPOCH_AS_FILETIME = 116444736000000000   # 1970-01-01 in 100 ns units since 1601
HUNDRED_NS_PER_S = 10_000_000


class WindowsParseError(ValueError):
    """A SystemProcessInformation buffer that does not hold what the layout says."""


class UNICODE_STRING64(ctypes.Structure):
    _fields_ = [("Length", c_uint16), ("MaximumLength", c_uint16), ("_pad", c_uint32),
                ("Buffer", c_uint64)]


class CLIENT_ID64(ctypes.Structure):
    _fields_ = [("UniqueProcess", c_uint64), ("UniqueThread", c_uint64)]


class SYSTEM_THREAD_INFORMATION(ctypes.Structure):
    _fields_ = [
        ("KernelTime", c_int64), ("UserTime", c_int64), ("CreateTime", c_int64),
        ("WaitTime", c_uint32), ("_pad0", c_uint32), ("StartAddress", c_uint64),
        ("ClientId", CLIENT_ID64), ("Priority", c_int32), ("BasePriority", c_int32),
        ("ContextSwitches", c_uint32), ("ThreadState", c_uint32), ("WaitReason", c_uint32),
        ("_pad1", c_uint32),
    ]


class SYSTEM_PROCESS_INFORMATION(ctypes.Structure):
    _fields_ = [
        ("NextEntryOffset", c_uint32), ("NumberOfThreads", c_uint32),
        ("WorkingSetPrivateSize", c_int64), ("HardFaultCount", c_uint32),
        ("NumberOfThreadsHighWatermark", c_uint32), ("CycleTime", c_uint64),
        ("CreateTime", c_int64), ("UserTime", c_int64), ("KernelTime", c_int64),
        ("ImageName", UNICODE_STRING64), ("BasePriority", c_int32), ("_pad0", c_uint32),
        ("UniqueProcessId", c_uint64), ("InheritedFromUniqueProcessId", c_uint64),
        ("HandleCount", c_uint32), ("SessionId", c_uint32), ("UniqueProcessKey", c_uint64),
        ("PeakVirtualSize", c_uint64), ("VirtualSize", c_uint64),
        ("PageFaultCount", c_uint32), ("_pad1", c_uint32),
        ("PeakWorkingSetSize", c_uint64), ("WorkingSetSize", c_uint64),
        ("QuotaPeakPagedPoolUsage", c_uint64), ("QuotaPagedPoolUsage", c_uint64),
        ("QuotaPeakNonPagedPoolUsage", c_uint64), ("QuotaNonPagedPoolUsage", c_uint64),
        ("PagefileUsage", c_uint64), ("PeakPagefileUsage", c_uint64),
        ("PrivatePageCount", c_uint64),
        ("ReadOperationCount", c_int64), ("WriteOperationCount", c_int64),
        ("OtherOperationCount", c_int64), ("ReadTransferCount", c_int64),
        ("WriteTransferCount", c_int64), ("OtherTransferCount", c_int64),
    ]


class SYSTEM_PROCESSOR_PERFORMANCE_INFORMATION(ctypes.Structure):
    _fields_ = [("IdleTime", c_int64), ("KernelTime", c_int64), ("UserTime", c_int64),
                ("DpcTime", c_int64), ("InterruptTime", c_int64),
                ("InterruptCount", c_uint32), ("_pad0", c_uint32)]


class SYSTEM_TIMEOFDAY_INFORMATION(ctypes.Structure):
    _fields_ = [("BootTime", c_int64), ("CurrentTime", c_int64), ("TimeZoneBias", c_int64),
                ("TimeZoneId", c_uint32), ("Reserved", c_uint32), ("BootTimeBias", c_uint64),
                ("SleepTimeBias", c_uint64)]


# The documented x64 offsets; a layout that drifted would misread every field.
_LAYOUT = {
    SYSTEM_PROCESS_INFORMATION: (0x100, {
        "NumberOfThreads": 0x04, "CycleTime": 0x18, "CreateTime": 0x20, "UserTime": 0x28,
        "KernelTime": 0x30, "ImageName": 0x38, "BasePriority": 0x48,
        "UniqueProcessId": 0x50, "InheritedFromUniqueProcessId": 0x58,
        "HandleCount": 0x60, "SessionId": 0x64, "PeakVirtualSize": 0x70,
        "PageFaultCount": 0x80, "WorkingSetSize": 0x90, "PrivatePageCount": 0xC8,
        "ReadOperationCount": 0xD0, "OtherTransferCount": 0xF8}),
    SYSTEM_THREAD_INFORMATION: (0x50, {
        "CreateTime": 0x10, "WaitTime": 0x18, "StartAddress": 0x20, "ClientId": 0x28,
        "Priority": 0x38, "BasePriority": 0x3C, "ContextSwitches": 0x40,
        "ThreadState": 0x44, "WaitReason": 0x48}),
    SYSTEM_PROCESSOR_PERFORMANCE_INFORMATION: (0x30, {"InterruptCount": 0x28}),
    SYSTEM_TIMEOFDAY_INFORMATION: (0x30, {"CurrentTime": 0x08, "BootTimeBias": 0x20}),
}
for _struct, (_size, _offsets) in _LAYOUT.items():
    assert ctypes.sizeof(_struct) == _size, (_struct.__name__, ctypes.sizeof(_struct))
    for _name, _offset in _offsets.items():
        assert getattr(_struct, _name).offset == _offset, (_struct.__name__, _name)

PROCESS_ENTRY_SIZE = ctypes.sizeof(SYSTEM_PROCESS_INFORMATION)
THREAD_ENTRY_SIZE = ctypes.sizeof(SYSTEM_THREAD_INFORMATION)


def filetime_to_epoch(value: int) -> float | None:
    """A FILETIME count (100 ns since 1601) as seconds since 1970; None for 0."""
    if value <= 0:
        return None
    return (value - EPOCH_AS_FILETIME) / HUNDRED_NS_PER_S


def parse_process_buffer(buf, base_address: int) -> list[tuple[SYSTEM_PROCESS_INFORMATION,
                                                                str | None,
                                                                list[SYSTEM_THREAD_INFORMATION]]]:
    """The entries of a SystemProcessInformation buffer: (process, image name, threads).

    `base_address` is where the buffer was when the kernel filled it: ImageName.Buffer
    points into the buffer itself. A name pointing elsewhere is returned as None;
    anything else out of bounds raises WindowsParseError."""
    view = memoryview(buf).cast("B")
    size = len(view)
    out = []
    offset = 0
    while True:  # NextEntryOffset is unsigned and non-zero: offsets only grow
        if offset + PROCESS_ENTRY_SIZE > size:
            raise WindowsParseError(f"process entry at {offset:#x} runs past the end of the "
                                    f"{size}-byte buffer")
        proc = SYSTEM_PROCESS_INFORMATION.from_buffer_copy(view, offset)
        if proc.NextEntryOffset and proc.NextEntryOffset < PROCESS_ENTRY_SIZE:
            raise WindowsParseError(f"entry at {offset:#x} has NextEntryOffset "
                                    f"{proc.NextEntryOffset:#x}, shorter than an entry")
        threads_end = offset + PROCESS_ENTRY_SIZE + proc.NumberOfThreads * THREAD_ENTRY_SIZE
        limit = offset + proc.NextEntryOffset if proc.NextEntryOffset else size
        if threads_end > min(limit, size):
            raise WindowsParseError(
                f"process entry at {offset:#x} declares {proc.NumberOfThreads} threads, "
                f"more than fit before {'the next entry' if proc.NextEntryOffset else 'the end'}")
        threads = [SYSTEM_THREAD_INFORMATION.from_buffer_copy(
            view, offset + PROCESS_ENTRY_SIZE + i * THREAD_ENTRY_SIZE)
            for i in range(proc.NumberOfThreads)]
        name = None
        length = proc.ImageName.Length
        if length and proc.ImageName.Buffer:
            start = proc.ImageName.Buffer - base_address
            if 0 <= start and start + length <= size and length % 2 == 0:
                name = bytes(view[start:start + length]).decode("utf-16-le", "replace")
        out.append((proc, name, threads))
        if not proc.NextEntryOffset:
            return out
        offset += proc.NextEntryOffset


def parse_processor_performance(buf) -> list[CpuTimes]:
    """SystemProcessorPerformanceInformation: one entry per CPU. KernelTime includes
    the idle time, which is taken out of the kernel figure."""
    view = memoryview(buf).cast("B")
    n = len(view) // ctypes.sizeof(SYSTEM_PROCESSOR_PERFORMANCE_INFORMATION)
    out = []
    for cpu in range(n):
        e = SYSTEM_PROCESSOR_PERFORMANCE_INFORMATION.from_buffer_copy(
            view, cpu * ctypes.sizeof(SYSTEM_PROCESSOR_PERFORMANCE_INFORMATION))
        out.append(CpuTimes(
            cpu=cpu, user_s=e.UserTime / HUNDRED_NS_PER_S,
            kernel_s=max(0, e.KernelTime - e.IdleTime) / HUNDRED_NS_PER_S,
            idle_s=e.IdleTime / HUNDRED_NS_PER_S,
            native={"dpc_time_s": e.DpcTime / HUNDRED_NS_PER_S,
                    "interrupt_time_s": e.InterruptTime / HUNDRED_NS_PER_S,
                    "interrupts": e.InterruptCount}))
    return out


def processes_from_buffer(buf, base_address: int, boot_filetime: int,
                          job_of: dict[int, tuple[str, ...]] | None = None,
                          in_job: dict[int, bool | None] | None = None) -> list[ProcessInfo]:
    """ProcessInfo for every entry of a SystemProcessInformation buffer."""
    return processes_from_entries(parse_process_buffer(buf, base_address), boot_filetime,
                                  job_of, in_job)


def processes_from_entries(entries, boot_filetime: int,
                           job_of: dict[int, tuple[str, ...]] | None = None,
                           in_job: dict[int, bool | None] | None = None) -> list[ProcessInfo]:
    """ProcessInfo for parsed entries. `boot_filetime` is the boot time as a FILETIME
    (the view's time base); `job_of` and `in_job` come from the job queries."""
    job_of = job_of or {}
    in_job = in_job or {}
    out = []
    for proc, name, threads in entries:
        pid = proc.UniqueProcessId
        if name is None and pid == 0:
            name = "Idle"  # the kernel gives the Idle process no image name here
        tinfos = []
        for t in threads:
            state = KTHREAD_STATE[t.ThreadState] if t.ThreadState < len(KTHREAD_STATE) else None
            reason = ""
            if t.ThreadState == WAITING:
                reason = KWAIT_REASON[t.WaitReason] if t.WaitReason < len(KWAIT_REASON) \
                    else f"WaitReason {t.WaitReason}"
            tinfos.append(ThreadInfo(
                tid=t.ClientId.UniqueThread, pid=pid, start_stamp=t.CreateTime,
                state=state, wait_reason=reason, priority=t.Priority,
                base_priority=t.BasePriority,
                user_time_s=t.UserTime / HUNDRED_NS_PER_S,
                kernel_time_s=t.KernelTime / HUNDRED_NS_PER_S,
                context_switches=t.ContextSwitches,
                create_time=filetime_to_epoch(t.CreateTime),
                create_time_us=(t.CreateTime - boot_filetime) / 10
                if t.CreateTime > 0 and boot_filetime else None,
                exit_code=STILL_ACTIVE,
                native={"state": t.ThreadState, "wait_reason": t.WaitReason,
                        "wait_time_ticks": t.WaitTime,
                        "start_address": f"{t.StartAddress:#018x}"}))
        cls = priority_class_from_base(proc.BasePriority)
        out.append(ProcessInfo(
            pid=pid, start_stamp=proc.CreateTime, ppid=proc.InheritedFromUniqueProcessId,
            name=name, create_time=filetime_to_epoch(proc.CreateTime),
            create_time_us=(proc.CreateTime - boot_filetime) / 10
            if proc.CreateTime > 0 and boot_filetime else None,
            user_time_s=proc.UserTime / HUNDRED_NS_PER_S,
            kernel_time_s=proc.KernelTime / HUNDRED_NS_PER_S,
            priority_class=cls, base_priority=proc.BasePriority,
            exit_code=STILL_ACTIVE, jobs=job_of.get(pid, ()), threads=tuple(tinfos),
            native={"handle_count": proc.HandleCount, "session_id": proc.SessionId,
                    "cycle_time": proc.CycleTime, "hard_faults": proc.HardFaultCount,
                    "page_faults": proc.PageFaultCount,
                    "working_set_bytes": proc.WorkingSetSize,
                    "private_bytes": proc.PrivatePageCount,
                    "virtual_size_bytes": proc.VirtualSize,
                    "in_job": in_job.get(pid), "protection": None}))
    return out


# ---- the live source (Windows only) ---------------------------------------------------------

THIS_JOB = "(this process's job)"
PROCESS_QUERY_LIMITED_INFORMATION = 0x1000
JobObjectBasicAccountingInformation = 1
JobObjectBasicProcessIdList = 3
JobObjectExtendedLimitInformation = 9
JOB_OBJECT_LIMIT_ACTIVE_PROCESS = 0x8
JOB_OBJECT_LIMIT_AFFINITY = 0x10
JOB_OBJECT_LIMIT_JOB_MEMORY = 0x200


class _BasicLimit(ctypes.Structure):
    _fields_ = [("PerProcessUserTimeLimit", c_int64), ("PerJobUserTimeLimit", c_int64),
                ("LimitFlags", c_uint32), ("MinimumWorkingSetSize", ctypes.c_size_t),
                ("MaximumWorkingSetSize", ctypes.c_size_t), ("ActiveProcessLimit", c_uint32),
                ("Affinity", ctypes.c_size_t), ("PriorityClass", c_uint32),
                ("SchedulingClass", c_uint32)]


class _IoCounters(ctypes.Structure):
    _fields_ = [(n, c_uint64) for n in ("ReadOperationCount", "WriteOperationCount",
                                        "OtherOperationCount", "ReadTransferCount",
                                        "WriteTransferCount", "OtherTransferCount")]


class _ExtendedLimit(ctypes.Structure):
    _fields_ = [("BasicLimitInformation", _BasicLimit), ("IoInfo", _IoCounters),
                ("ProcessMemoryLimit", ctypes.c_size_t), ("JobMemoryLimit", ctypes.c_size_t),
                ("PeakProcessMemoryUsed", ctypes.c_size_t),
                ("PeakJobMemoryUsed", ctypes.c_size_t)]


class _BasicAccounting(ctypes.Structure):
    _fields_ = [("TotalUserTime", c_int64), ("TotalKernelTime", c_int64),
                ("ThisPeriodTotalUserTime", c_int64), ("ThisPeriodTotalKernelTime", c_int64),
                ("TotalPageFaultCount", c_uint32), ("TotalProcesses", c_uint32),
                ("ActiveProcesses", c_uint32), ("TotalTerminatedProcesses", c_uint32)]


class WindowsSource:
    """Samples this Windows host. Built on Windows only."""

    host = "windows"
    name = "ntquery"

    def __init__(self):
        if sys.platform != "win32":
            raise LiveError("the Windows source runs on Windows only")
        self._ntdll = ctypes.WinDLL("ntdll")
        self._kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)
        self._ntdll.NtQuerySystemInformation.restype = c_uint32
        self._kernel32.OpenProcess.restype = ctypes.c_void_p
        self._buffer = ctypes.create_string_buffer(1 << 20)
        self._ncpu = os.cpu_count() or 1
        self._previous: Snapshot | None = None

    def _query(self, info_class: int, buffer) -> tuple[object, int]:
        """NtQuerySystemInformation into `buffer`, growing it until the data fits."""
        needed = c_uint32(0)
        while True:
            status = self._ntdll.NtQuerySystemInformation(
                info_class, buffer, len(buffer), ctypes.byref(needed))
            if status == STATUS_INFO_LENGTH_MISMATCH:
                buffer = ctypes.create_string_buffer(max(needed.value, len(buffer)) + (1 << 16))
                continue
            if status != 0:
                raise LiveError(f"NtQuerySystemInformation({info_class}) failed: "
                                f"NTSTATUS {status:#010x}")
            return buffer, needed.value

    def _in_job(self, pid: int) -> bool | None:
        k = self._kernel32
        handle = k.OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, False, pid)
        if not handle:
            return None  # access denied (protected processes, other sessions)
        try:
            result = ctypes.c_int(0)
            if not k.IsProcessInJob(ctypes.c_void_p(handle), None, ctypes.byref(result)):
                return None
            return bool(result.value)
        finally:
            k.CloseHandle(ctypes.c_void_p(handle))

    def _own_job(self) -> tuple[JobInfo | None, set[int]]:
        """The job this process is in (QueryInformationJobObject with a NULL handle)."""
        k = self._kernel32
        acct = _BasicAccounting()
        if not k.QueryInformationJobObject(None, JobObjectBasicAccountingInformation,
                                           ctypes.byref(acct), ctypes.sizeof(acct), None):
            return None, set()
        limit = _ExtendedLimit()
        limits: dict = {}
        if k.QueryInformationJobObject(None, JobObjectExtendedLimitInformation,
                                       ctypes.byref(limit), ctypes.sizeof(limit), None):
            flags = limit.BasicLimitInformation.LimitFlags
            if flags & JOB_OBJECT_LIMIT_ACTIVE_PROCESS:
                limits["active_process"] = limit.BasicLimitInformation.ActiveProcessLimit
            if flags & JOB_OBJECT_LIMIT_AFFINITY:
                mask = limit.BasicLimitInformation.Affinity
                limits["affinity"] = [c for c in range(64) if mask >> c & 1]
            if flags & JOB_OBJECT_LIMIT_JOB_MEMORY:
                limits["job_memory"] = limit.JobMemoryLimit
        members = self._own_job_members(acct.ActiveProcesses + 64)
        job = JobInfo(name=THIS_JOB, active_processes=acct.ActiveProcesses,
                      total_processes=acct.TotalProcesses,
                      total_terminated_processes=acct.TotalTerminatedProcesses,
                      total_user_time_us=acct.TotalUserTime / 10,
                      total_kernel_time_us=acct.TotalKernelTime / 10, limits=limits,
                      native={"limit_flags": limit.BasicLimitInformation.LimitFlags})
        return job, members

    def _own_job_members(self, capacity: int) -> set[int]:
        """JOBOBJECT_BASIC_PROCESS_ID_LIST: two DWORD counts, then ULONG_PTR ids."""
        pointer = ctypes.sizeof(ctypes.c_void_p)
        buf = ctypes.create_string_buffer(8 + pointer * capacity)
        if not self._kernel32.QueryInformationJobObject(
                None, JobObjectBasicProcessIdList, buf, len(buf), None):
            return set()
        _assigned, listed = struct.unpack_from("<II", buf, 0)
        listed = min(listed, capacity)
        return set(struct.unpack_from(f"<{listed}{'Q' if pointer == 8 else 'I'}", buf, 8))

    def sample(self) -> Snapshot:
        mono, wall = time.monotonic(), time.time()
        tod = SYSTEM_TIMEOFDAY_INFORMATION()
        tod_buf = (ctypes.c_char * ctypes.sizeof(tod))()
        self._query(SystemTimeOfDayInformation, tod_buf)
        tod = SYSTEM_TIMEOFDAY_INFORMATION.from_buffer_copy(tod_buf)
        perf = (ctypes.c_char * (ctypes.sizeof(SYSTEM_PROCESSOR_PERFORMANCE_INFORMATION)
                                 * self._ncpu))()
        perf, used = self._query(SystemProcessorPerformanceInformation, perf)
        cpu_times = parse_processor_performance(bytes(perf)[:used])
        self._buffer, used = self._query(SystemProcessInformation, self._buffer)
        base = ctypes.addressof(self._buffer)
        job, members = self._own_job()
        entries = parse_process_buffer(memoryview(self._buffer)[:used], base)
        in_job = {e[0].UniqueProcessId: self._in_job(e[0].UniqueProcessId) for e in entries}
        job_of = {pid: (THIS_JOB,) for pid in members}
        processes = processes_from_entries(entries, tod.BootTime, job_of, in_job)
        snap = Snapshot(host=self.host, source=self.name, wall_time=wall,
                        uptime_s=(tod.CurrentTime - tod.BootTime) / HUNDRED_NS_PER_S,
                        monotonic=mono, cpus=len(cpu_times) or self._ncpu,
                        processes=processes, cpu_times=cpu_times,
                        jobs=[job] if job is not None else [],
                        skipped={"vanished": 0, "denied": 0})
        apply_deltas(self._previous, snap)
        self._previous = snap
        return snap

    def close(self) -> None:
        self._previous = None

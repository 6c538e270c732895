"""Handle tables and OpenProcess/OpenThread access checks (§9): HandleOps, mixed into Machine.

Every process gets a HandleTable on first use (`Process.handles`).  A handle holds one
reference to its object (`obj.refs`): an exited process or thread stays visible while a
handle to it is open (formats.md §3 "exited ones whose objects are still referenced"), and
an exiting process's own handles are closed (§8.4, dispatcher._exit_process).  When an
object's last reference goes, the Machine's `_object_released(obj)` hook runs (jobs.py:
kill-on-close, a limit-failed process leaving its job's count).  A handle to a thread also
references the thread's process, as an ETHREAD references its EPROCESS until it is deleted
([ROS] ntoskrnl/ps/kill.c PspDeleteThread dereferences the process).

`open_process(caller, target, access)` / `open_thread(...)` apply the protected-process
rules of §9.2-9.3 before anything else; security descriptors (DACLs) are not modelled, so
every caller passes the DACL.  `caller=None` is an administrator's tool outside the
simulation holding SeDebugPrivilege, which does not bypass protection (§9.2); its handles
live in a table of the machine's own (`handles_of(None)`).

Settings, Machine(ppl_dominance=..., ppl_unkillable=...):

- ``ppl_dominance``: which signer may open which (§9.3; the kernel's RtlProtectedAccess
  DominateMask table was not read, so both readings are offered):
  ``"windows-internals"`` (default): RtlTestProtectedAccess with the dominance described by
  Windows Internals / Ionescu: a signer dominates itself and every lower signer, except that
  Lsa and Antimalware do not dominate each other (and WinTcb does not dominate WinSystem,
  which the ordering already gives).  App (8, store apps, outside that description)
  dominates only itself and is dominated by no other signer.
  ``"system-informer"``: System Informer's KPH rule: refused whenever the target is
  protected and its type is >= the caller's type, whatever the signers.
- ``ppl_unkillable`` (default False): whether the Antimalware, Lsa and WinTcb signers'
  denied masks also hold PROCESS_TERMINATE / THREAD_TERMINATE (WI/Ionescu's "unkillable"
  PPLs; the mask values are not verified, §9.2).  The default follows Microsoft's documented
  list, which leaves PROCESS_TERMINATE obtainable.

A caller that fails RtlTestProtectedAccess is treated as unprotected: it can still get the
rights §9.2 leaves obtainable (the denied masks apply, not a blanket refusal), so a PPL is
never worse off than an unprotected tool.  A process always has full access to itself and
its own threads (GetCurrentProcess's pseudo-handle is PROCESS_ALL_ACCESS).

Targets are objects, not PIDs: an exited process that a handle still references can be
opened (its object exists); once unreferenced it is gone, and opening it fails with
ERROR_INVALID_PARAMETER as OpenProcess does for a PID that no longer exists.  The Idle
process cannot be opened (ERROR_INVALID_PARAMETER, [MS-DOC] OpenProcess).

Access masks are taken literally: generic rights, MAXIMUM_ALLOWED and
ACCESS_SYSTEM_SECURITY need a generic mapping and security descriptors, which are not
modelled, so a mask with bits outside PROCESS_ALL_ACCESS fails with ERROR_NOT_SUPPORTED.
"""

from __future__ import annotations

from heapq import heappop, heappush

from .constants import (
    ERROR_ACCESS_DENIED,
    ERROR_INVALID_HANDLE,
    ERROR_INVALID_PARAMETER,
    ERROR_NAMES,
    ERROR_NOT_SUPPORTED,
    TERMINATED,
)
from .objects import Job, Process, Thread

# ---- access rights (winnt.h) -------------------------------------------------------------
DELETE = 0x00010000
READ_CONTROL = 0x00020000
WRITE_DAC = 0x00040000
WRITE_OWNER = 0x00080000
SYNCHRONIZE = 0x00100000
STANDARD_RIGHTS_REQUIRED = 0x000F0000

PROCESS_TERMINATE = 0x0001
PROCESS_CREATE_THREAD = 0x0002
PROCESS_SET_SESSIONID = 0x0004
PROCESS_VM_OPERATION = 0x0008
PROCESS_VM_READ = 0x0010
PROCESS_VM_WRITE = 0x0020
PROCESS_DUP_HANDLE = 0x0040
PROCESS_CREATE_PROCESS = 0x0080
PROCESS_SET_QUOTA = 0x0100
PROCESS_SET_INFORMATION = 0x0200
PROCESS_QUERY_INFORMATION = 0x0400
PROCESS_SUSPEND_RESUME = 0x0800
PROCESS_QUERY_LIMITED_INFORMATION = 0x1000
PROCESS_SET_LIMITED_INFORMATION = 0x2000
PROCESS_ALL_ACCESS = STANDARD_RIGHTS_REQUIRED | SYNCHRONIZE | 0xFFFF  # 0x1FFFFF (Vista+)

THREAD_TERMINATE = 0x0001
THREAD_SUSPEND_RESUME = 0x0002
THREAD_GET_CONTEXT = 0x0008
THREAD_SET_CONTEXT = 0x0010
THREAD_SET_INFORMATION = 0x0020
THREAD_QUERY_INFORMATION = 0x0040
THREAD_SET_THREAD_TOKEN = 0x0080
THREAD_IMPERSONATE = 0x0100
THREAD_DIRECT_IMPERSONATION = 0x0200
THREAD_SET_LIMITED_INFORMATION = 0x0400
THREAD_QUERY_LIMITED_INFORMATION = 0x0800
THREAD_ALL_ACCESS = STANDARD_RIGHTS_REQUIRED | SYNCHRONIZE | 0xFFFF  # 0x1FFFFF (Vista+)

# What an unprotected (or non-dominating) caller can still get on a protected process (§9.2);
# everything else (DELETE, READ_CONTROL, WRITE_DAC, WRITE_OWNER, VM_*, CREATE_*, DUP_HANDLE,
# QUERY/SET_INFORMATION, SET_QUOTA, so PROCESS_ALL_ACCESS too) is refused.
PROTECTED_PROCESS_OBTAINABLE = (PROCESS_QUERY_LIMITED_INFORMATION | PROCESS_SET_LIMITED_INFORMATION
                                | PROCESS_TERMINATE | PROCESS_SUSPEND_RESUME | SYNCHRONIZE)
# "The same restriction applies to threads" (§9.2): the thread counterparts of that list.
PROTECTED_THREAD_OBTAINABLE = (THREAD_QUERY_LIMITED_INFORMATION | THREAD_SET_LIMITED_INFORMATION
                               | THREAD_TERMINATE | THREAD_SUSPEND_RESUME | SYNCHRONIZE)
# Rights with a meaning here: specific and standard rights (see the module docstring).
MODELLED_ACCESS = PROCESS_ALL_ACCESS

# ---- PS_PROTECTION (§9.1) ----------------------------------------------------------------
PS_PROTECTED_TYPE = ("None", "ProtectedLight", "Protected")
PsProtectedTypeNone, PsProtectedTypeProtectedLight, PsProtectedTypeProtected = 0, 1, 2
PS_PROTECTED_SIGNER = ("None", "Authenticode", "CodeGen", "Antimalware", "Lsa", "Windows",
                       "WinTcb", "WinSystem", "App")
(PsProtectedSignerNone, PsProtectedSignerAuthenticode, PsProtectedSignerCodeGen,
 PsProtectedSignerAntimalware, PsProtectedSignerLsa, PsProtectedSignerWindows,
 PsProtectedSignerWinTcb, PsProtectedSignerWinSystem, PsProtectedSignerApp) = range(9)

# The protection values a process can have: the scenario file's `protection` (formats.md §2)
PROTECTION_NAMES = ("none", "pp-winsystem", "pp-wintcb", "ppl-wintcb", "ppl-windows", "ppl-lsa",
                    "ppl-antimalware", "ppl-authenticode")
_NAME_TYPE = {"ppl": PsProtectedTypeProtectedLight, "pp": PsProtectedTypeProtected}
_NAME_SIGNER = {s.lower(): i for i, s in enumerate(PS_PROTECTED_SIGNER) if i}

DOMINANCE_WINDOWS_INTERNALS = "windows-internals"
DOMINANCE_SYSTEM_INFORMER = "system-informer"
DOMINANCE_MODES = (DOMINANCE_WINDOWS_INTERNALS, DOMINANCE_SYSTEM_INFORMER)
# Signers whose denied masks hold TERMINATE under `ppl_unkillable` (WI/Ionescu, §9.2)
UNKILLABLE_SIGNERS = frozenset({PsProtectedSignerAntimalware, PsProtectedSignerLsa,
                                PsProtectedSignerWinTcb})

# NT object type names, as handle views show them
_TYPE_NAMES = {"process": "Process", "thread": "Thread", "job": "Job", "event": "Event",
               "semaphore": "Semaphore", "mutex": "Mutant"}


def check_protection_name(name) -> str:
    """`name` if it is a protection value, else ValueError naming the valid ones."""
    if name not in PROTECTION_NAMES:
        raise ValueError(f"unknown protection {name!r}: must be one of "
                         + ", ".join(PROTECTION_NAMES))
    return name


def protection_type_signer(name: str) -> tuple[int, int]:
    """(PS_PROTECTED_TYPE, PS_PROTECTED_SIGNER) of a protection name ("ppl-lsa" -> (1, 4))."""
    check_protection_name(name)
    if name == "none":
        return PsProtectedTypeNone, PsProtectedSignerNone
    kind, signer = name.split("-", 1)
    return _NAME_TYPE[kind], _NAME_SIGNER[signer]


def protection_level(name: str, audit: bool = False) -> int:
    """The PS_PROTECTION byte: Type | Audit << 3 | Signer << 4 (§9.1)."""
    ptype, signer = protection_type_signer(name)
    return ptype | (int(bool(audit)) << 3) | (signer << 4)


def parse_protection(level: int) -> tuple[int, int]:
    """(type, signer) of a PS_PROTECTION byte; the Audit bit is ignored."""
    if isinstance(level, bool) or not isinstance(level, int) or not 0 <= level <= 0xFF:
        raise ValueError(f"PS_PROTECTION must be a byte 0..0xFF, not {level!r}")
    ptype, signer = level & 0x7, level >> 4
    if ptype >= len(PS_PROTECTED_TYPE) or signer >= len(PS_PROTECTED_SIGNER):
        raise ValueError(f"PS_PROTECTION 0x{level:02x} has type {ptype} / signer {signer}; "
                         f"types are 0..{len(PS_PROTECTED_TYPE) - 1}, signers "
                         f"0..{len(PS_PROTECTED_SIGNER) - 1}")
    return ptype, signer


def check_dominance_mode(mode) -> str:
    if mode not in DOMINANCE_MODES:
        raise ValueError(f"ppl_dominance must be one of {', '.join(DOMINANCE_MODES)}, "
                         f"not {mode!r}")
    return mode


def signer_dominates(caller_signer: int, target_signer: int) -> bool:
    """The Windows Internals / Ionescu reading of RtlProtectedAccess[].DominateMask (§9.3,
    not verified): higher signers dominate lower ones and themselves, Lsa and Antimalware
    not each other, WinTcb not WinSystem (lower than it); App only itself."""
    if target_signer == PsProtectedSignerNone:
        return True
    if PsProtectedSignerApp in (caller_signer, target_signer):
        return caller_signer == target_signer
    if {caller_signer, target_signer} == {PsProtectedSignerAntimalware, PsProtectedSignerLsa}:
        return False
    return target_signer <= caller_signer


def rtl_test_protected_access(caller_level: int, target_level: int,
                              mode: str = DOMINANCE_WINDOWS_INTERNALS) -> bool:
    """RtlTestProtectedAccess(caller, target) (§9.3) in one of DOMINANCE_MODES."""
    check_dominance_mode(mode)
    ctype, csigner = parse_protection(caller_level)
    ttype, tsigner = parse_protection(target_level)
    if ttype == PsProtectedTypeNone:
        return True
    if mode == DOMINANCE_SYSTEM_INFORMER:
        return ttype < ctype  # KPH: refused whenever target.Type >= caller.Type
    if ctype < ttype:
        return False  # a PPL never fully opens a PP
    return signer_dominates(csigner, tsigner)


def refused_rights(caller_level: int, target_level: int, access: int, *, thread: bool = False,
                   mode: str = DOMINANCE_WINDOWS_INTERNALS, unkillable: bool = False) -> int:
    """The rights in `access` that protection refuses (0: none).  A caller that fails
    RtlTestProtectedAccess keeps only the §9.2 obtainable rights, less TERMINATE for the
    "unkillable" signers when `unkillable` is set."""
    if rtl_test_protected_access(caller_level, target_level, mode):
        return 0
    obtainable = PROTECTED_THREAD_OBTAINABLE if thread else PROTECTED_PROCESS_OBTAINABLE
    if unkillable and parse_protection(target_level)[1] in UNKILLABLE_SIGNERS:
        obtainable &= ~(THREAD_TERMINATE if thread else PROCESS_TERMINATE)
    return access & ~obtainable


def handle_type_name(obj) -> str:
    """The object type name a handle view shows (Process, Thread, Job, Event, Mutant...)."""
    return _TYPE_NAMES.get(getattr(obj, "kind", ""), type(obj).__name__)


class HandleEntry:
    __slots__ = ("obj", "access", "inherit")

    def __init__(self, obj, access: int, inherit: bool) -> None:
        self.obj = obj
        self.access = access  # the granted access mask
        self.inherit = inherit  # OBJ_INHERIT: copied into children created with inheritance

    def __repr__(self) -> str:
        return f"<HandleEntry {handle_type_name(self.obj)} {self.obj.name!r} 0x{self.access:x}>"


class HandleTable:
    """One process's handles: values 4, 8, 12, ... (multiples of 4, 0 is never a handle).
    A freed value is reused before a new one is taken, lowest first (nt-facts has no rule
    on the order; lowest first keeps values compact and runs deterministic)."""

    __slots__ = ("entries", "_free", "_next")

    def __init__(self) -> None:
        self.entries: dict[int, HandleEntry] = {}
        self._free: list[int] = []  # heap of freed values
        self._next = 4

    def __len__(self) -> int:
        return len(self.entries)

    @property
    def count(self) -> int:
        return len(self.entries)

    def insert(self, obj, access: int, inherit: bool = False, value: int | None = None) -> int:
        if value is None:
            if self._free:
                value = heappop(self._free)
            else:
                value = self._next
                self._next += 4
        else:  # a given value (inherited handles keep theirs): claim it
            if value in self.entries or value <= 0 or value % 4:
                raise ValueError(f"handle value {value:#x} is taken or not a multiple of 4")
            while self._next <= value:
                if self._next != value:
                    heappush(self._free, self._next)
                self._next += 4
            if value in self._free:
                self._free.remove(value)
                self._free.sort()  # a sorted list is a valid heap
        self.entries[value] = HandleEntry(obj, access, inherit)
        return value

    def get(self, value) -> HandleEntry | None:
        return self.entries.get(value)

    def remove(self, value: int) -> HandleEntry:
        entry = self.entries.pop(value)
        heappush(self._free, value)
        return entry

    def take_all(self) -> list[HandleEntry]:
        """Empty the table; its entries in handle order."""
        out = [self.entries[v] for v in sorted(self.entries)]
        for v in sorted(self.entries):
            heappush(self._free, v)
        self.entries.clear()
        return out


class HandleOps:
    # ------------------------------------------------------------------ tables
    def _table_of(self, owner, create: bool = False) -> HandleTable | None:
        """`owner`'s handle table (owner None: the outside tool's)."""
        if owner is None:
            table = self._tool_handles
            if table is None and create:
                table = self._tool_handles = HandleTable()
            return table
        if owner.handles is None and create:
            owner.handles = HandleTable()
        return owner.handles

    def _object_exists(self, obj) -> bool:
        if isinstance(obj, (Process, Thread)):
            return self.visible(obj)
        if isinstance(obj, Job):
            return not obj.closed
        return True

    def create_handle(self, owner: Process | None, obj, access: int,
                      inherit: bool = False) -> int | None:
        """Put a handle to `obj` with `access` in `owner`'s table (None: the outside tool's);
        it holds a reference to `obj`.  Returns the handle value, or None: an exited owner's
        table is gone (STATUS_PROCESS_IS_TERMINATING, ERROR_ACCESS_DENIED), a deleted object
        cannot be referenced (ERROR_INVALID_HANDLE)."""
        if owner is not None and owner.exited:
            self.api_error("create_handle", ERROR_ACCESS_DENIED, pid=owner.pid,
                           reason="the process has exited")
            return None
        if not self._object_exists(obj):
            self.api_error("create_handle", ERROR_INVALID_HANDLE,
                           object=getattr(obj, "name", None), reason="the object no longer exists")
            return None
        value = self._table_of(owner, create=True).insert(obj, access, inherit)
        self._reference(obj)
        return value

    def _reference(self, obj) -> None:
        obj.refs += 1
        if isinstance(obj, Thread):
            obj.process.refs += 1  # the thread object references its process

    def _dereference(self, obj) -> None:
        released = []
        obj.refs -= 1
        if obj.refs == 0:
            released.append(obj)
        if isinstance(obj, Thread):
            proc = obj.process
            proc.refs -= 1
            if proc.refs == 0:
                released.append(proc)
        for o in released:
            self._object_released(o)

    def close_process_handle(self, owner: Process | None, handle: int) -> bool:
        """CloseHandle(handle) in `owner` (None: the outside tool).  A value that is not an
        open handle of that table fails with ERROR_INVALID_HANDLE."""
        table = self._table_of(owner)
        if table is None or table.get(handle) is None:
            self.api_error("close_handle", ERROR_INVALID_HANDLE, handle=handle,
                           pid=owner.pid if owner is not None else None)
            return False
        entry = table.remove(handle)
        self._dereference(entry.obj)
        return True

    def _close_all_handles(self, process) -> None:
        """Close every handle of an exiting process (§8.4), in handle order."""
        table = process.handles
        if table is None:
            return
        for entry in table.take_all():
            self._dereference(entry.obj)

    def _handle_count(self, process) -> int:
        table = process.handles if process is not None else self._tool_handles
        return 0 if table is None else len(table)

    def inherit_handles(self, parent: Process, child: Process) -> int:
        """CreateProcess with bInheritHandles: the child gets every inheritable handle of
        the parent at the same value and access.  Returns how many were copied."""
        src = parent.handles
        if src is None:
            return 0
        table = self._table_of(child, create=True)
        copied = 0
        for value in sorted(src.entries):
            entry = src.entries[value]
            if entry.inherit:
                table.insert(entry.obj, entry.access, True, value=value)
                self._reference(entry.obj)
                copied += 1
        return copied

    def handles_of(self, process: Process | None) -> list[dict]:
        """`process`'s handles (None: the outside tool's) as rows for the views, in
        handle order: handle, type, name, access, inherit, pid, tid, exited."""
        table = self._table_of(process)
        if table is None:
            return []
        rows = []
        for value in sorted(table.entries):
            e = table.entries[value]
            obj = e.obj
            pid = tid = exited = None
            if isinstance(obj, Process):
                pid, exited = obj.pid, obj.exited
            elif isinstance(obj, Thread):
                pid, tid, exited = obj.pid, obj.tid, obj.state == TERMINATED
            name = self.job_name(obj) if isinstance(obj, Job) else obj.name
            rows.append({"handle": value, "type": handle_type_name(obj), "name": name,
                         "access": e.access, "inherit": e.inherit, "pid": pid, "tid": tid,
                         "exited": exited})
        return rows

    # ------------------------------------------------------------------ opening
    def open_process(self, caller: Process | None, target: Process, access: int) -> int | None:
        """OpenProcess(access) by `caller` (None: an unprotected administrator's tool with
        SeDebugPrivilege) on `target`: the §9.2/9.3 protection checks, then a handle in
        the caller's table with the requested access.  Returns the handle value or None
        (GetLastError in `last_error`); emits an `open_process` event either way."""
        return self._open(caller, target, target, access, thread=False)

    def open_thread(self, caller: Process | None, target: Thread, access: int) -> int | None:
        """OpenThread: as open_process, with the thread counterparts of the §9.2 rights,
        checked against the protection of the thread's process.  Emits `open_thread`."""
        return self._open(caller, target, target.process, access, thread=True)

    def _open(self, caller, target, target_process, access, thread: bool):
        subject = {"caller": caller.name if caller is not None else None,
                   "caller_pid": caller.pid if caller is not None else None,
                   "target": target.name}
        if thread:
            subject.update(target_pid=target.pid, target_tid=target.tid)
        else:
            subject["target_pid"] = target.pid
        error, detail = self._open_check(caller, target, target_process, access, thread)
        # the checks above are create_handle's own, so it cannot fail here
        handle = None if error else self.create_handle(caller, target, access)
        if self._subs:
            self._emit("open_thread" if thread else "open_process", **subject, access=access,
                       result="ok" if not error else ERROR_NAMES.get(error, str(error)),
                       handle=handle)
        if error:
            self.api_error("open_thread" if thread else "open_process", error, **subject,
                           access=access, **detail)
            return None
        return handle

    def _open_check(self, caller, target, target_process, access, thread: bool):
        """(error or 0, extra api_error fields) for an open of `target`."""
        if isinstance(access, bool) or not isinstance(access, int) or not 0 <= access <= 0xFFFFFFFF:
            return ERROR_INVALID_PARAMETER, {"reason": "access must be a 32-bit mask"}
        if access & ~MODELLED_ACCESS:
            return ERROR_NOT_SUPPORTED, {
                "reason": "generic rights, MAXIMUM_ALLOWED and ACCESS_SYSTEM_SECURITY are "
                          "not modelled (no generic mapping or security descriptors)",
                "unsupported": access & ~MODELLED_ACCESS}
        if target_process.pid == 0:
            # OpenProcess on the System Idle Process fails with ERROR_INVALID_PARAMETER
            # ([MS-DOC] OpenProcess); its idle threads cannot be opened either
            return ERROR_INVALID_PARAMETER, {"reason": "the Idle process cannot be opened"}
        if not self.visible(target):
            # its CID is gone: STATUS_INVALID_CID -> ERROR_INVALID_PARAMETER
            return ERROR_INVALID_PARAMETER, {"reason": "the object no longer exists"}
        if caller is not None and caller.exited:
            return ERROR_ACCESS_DENIED, {"reason": "the caller has exited"}
        if caller is target_process:
            return 0, {}  # a process always has full access to itself
        caller_level = protection_level(caller.protection) if caller is not None else 0
        refused = refused_rights(caller_level, protection_level(target_process.protection),
                                 access, thread=thread, mode=self.ppl_dominance,
                                 unkillable=self.ppl_unkillable)
        if refused:
            return ERROR_ACCESS_DENIED, {"denied": refused}
        return 0, {}

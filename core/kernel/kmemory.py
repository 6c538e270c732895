"""The simulated kernel's objects in typed kernel memory (core.memory).

``KernelMemory(machine, build)`` gives every visible process an ``_EPROCESS`` (with its
``_KPROCESS`` Pcb) linked on ``nt!PsActiveProcessHead``, every thread an ``_ETHREAD``
(with its ``_KTHREAD`` Tcb) on both thread lists of its process, user processes a
``_PEB`` and each of their threads a ``_TEB``, and every job an ``_EJOB`` linked on
``nt!PspJobList``.  A job's ProcessListHead links the processes whose innermost job it is
(through ``_EPROCESS.JobLinks``, the one link a process has); from Windows 8 its
ChildJobListHead links its child jobs (through SiblingJobLinks).

Identity, names and links are stored once; everything the dispatcher changes (state,
priorities, times, counts) is served by providers that read the kernel object when
someone looks at the bytes, so the simulation never pays for memory nobody reads.
``sync()`` adds objects created and removes objects deleted since the last call (a
process stays on the list while a handle references it, as on Windows, where the
EPROCESS leaves ActiveProcessLinks only when the object is deleted).

Members the simulation has no value for (StartAddress, WaitListEntry, the PEB's loader
data; Token and ObjectTable, whose _TOKEN and _HANDLE_TABLE layouts are not shipped; the
job's locks, I/O counters, completion port and CPU rate control; the TEB's stack bounds,
exception list and FlsData, see _teb_values) stay unset and read as "not modelled";
members a build lacks are skipped.  A fiber's own context (parameter, stack, FLS) lives
in user memory behind the fiber address, with no shipped layout: `fiber_info` gives it.
Shapes that change across builds (Affinity: ULONG_PTR, _KAFFINITY_EX, _GROUP_AFFINITY
or a pointer) are written in the shape of the build being shown.
"""

from __future__ import annotations

import re
from datetime import timedelta

from core.layouts import Build
from core.memory import AddressSpace, KObject
from core.values import Ref

from .constants import (
    CYCLES_PER_NS,
    JOB_OBJECT_LIMIT_AFFINITY,
    KTHREAD_STATE,
    PRIORITY_CLASS_CODE,
    TERMINATED,
    WAITING,
    process_base_priority,
)

# PS_PROTECTION.Level = Type | Audit << 3 | Signer << 4 (nt-facts §9.1)
PROTECTION_LEVEL = {"none": 0x00, "ppl-authenticode": 0x11, "ppl-antimalware": 0x31,
                    "ppl-lsa": 0x41, "ppl-windows": 0x51, "ppl-wintcb": 0x61,
                    "pp-wintcb": 0x62, "pp-winsystem": 0x72}
_VERSION = re.compile(r"(\d+)\.(\d+)\.(\d+)")
PAGE_SHIFT = 12  # x86 and x64: the job keeps its memory limits and usage in pages
HUNDRED_NS = 100 * CYCLES_PER_NS  # cycles per 100 ns unit (job time limits)


def _since_boot(cycles: int) -> timedelta:
    return timedelta(microseconds=cycles // (1000 * CYCLES_PER_NS))


def _pages(size: int) -> int:
    return -(-size >> PAGE_SHIFT)  # bytes -> pages, rounded up


class KernelMemory:
    """A machine's processes, threads and jobs as structures of one Windows build."""

    def __init__(self, machine, build: Build) -> None:
        self.m = machine
        self.space = AddressSpace(build)
        self.head = self.space.create_global("PsActiveProcessHead", "_LIST_ENTRY")
        self.active = self.space.new_list(self.head, "", "_EPROCESS", "ActiveProcessLinks")
        self.eprocess: dict[int, KObject] = {}  # id(kernel Process) -> _EPROCESS
        self.ethread: dict[int, KObject] = {}  # id(kernel Thread) -> _ETHREAD
        self.peb: dict[int, KObject] = {}
        self.teb: dict[int, KObject] = {}
        self._thread_lists: dict[int, tuple] = {}  # id(process) -> (ThreadListHead, Pcb's)
        self._affinity: dict[tuple[int, str], KObject] = {}  # separate _KAFFINITY_EX (24H2)
        # Jobs: every _EJOB is on nt!PspJobList through its JobLinks
        self.job_head = self.space.create_global("PspJobList", "_LIST_ENTRY")
        self.job_list = self.space.new_list(self.job_head, "", "_EJOB", "JobLinks")
        self.ejob: dict[int, KObject] = {}  # id(kernel Job) -> _EJOB
        self._jobs: dict[int, object] = {}  # id(Job) -> Job (held, so the id stays its own)
        self._process_lists: dict[int, object] = {}  # id(Job) -> its ProcessListHead
        self._child_lists: dict[int, object] = {}  # id(Job) -> its ChildJobListHead (8+)
        self._linked_job: dict[int, tuple] = {}  # id(process) -> (process, job whose list holds it)
        self._linked_parent: dict[int, object] = {}  # id(job) -> parent whose list holds it
        machine.memory = self
        self.sync()

    @property
    def build(self) -> Build:
        return self.space.build

    def set_build(self, build: Build) -> None:
        """Show the same objects as `build` lays them out."""
        self.space.set_build(build)
        for objects in (self.eprocess, self.ethread, self.ejob):
            for obj in list(objects.values()):
                obj.touch()
        self._sync_job_tree()  # a build with ChildJobListHead gets the child-job lists

    # ------------------------------------------------------------------ lookups
    def process_object(self, process) -> KObject | None:
        return self.eprocess.get(id(process))

    def thread_object(self, thread) -> KObject | None:
        return self.ethread.get(id(thread))

    def peb_address(self, process) -> int | None:
        peb = self.peb.get(id(process))
        return peb.address if peb is not None and peb.placed else None

    def teb_address(self, thread) -> int | None:
        teb = self.teb.get(id(thread))
        return teb.address if teb is not None and teb.placed else None

    def job_object(self, job) -> KObject | None:
        """The _EJOB of a job that exists (None once the job is destroyed)."""
        return self.ejob.get(id(job))

    def fiber_info(self, fiber) -> dict:
        """A fiber's own context, for the views.  On Windows it is the structure at the
        fiber address (GetFiberData reads its first field, §7.5) with the saved registers,
        stack bounds and FLS block; no layout of it is shipped, so it is given as values:
        the address CreateFiber returned, lpParameter, the stack sizes asked for (0 commit:
        the executable's default), FIBER_FLAG_* flags, and the FLS values (index -> value,
        zero values not stored)."""
        return {
            "name": fiber.name,
            "address": fiber.address,
            "parameter": fiber.parameter,
            "flags": fiber.flags,
            "stack_reserve": fiber.stack_reserve,
            "stack_commit": fiber.stack_commit,
            "fls": dict(sorted(fiber.fls.items())),
            "converted": fiber.converted,  # made by ConvertThreadToFiber
            "deleted": fiber.deleted,
            "owner_tid": fiber.owner.tid if fiber.owner is not None else None,
            "selected_on_tid": fiber.thread.tid if fiber.thread is not None else None,
        }

    # ------------------------------------------------------------------ sync
    def sync(self) -> None:
        """Bring memory up to the machine: new objects in, deleted ones out."""
        m = self.m
        for pid in sorted(m.processes):
            p = m.processes[pid]
            if m.visible(p):
                if id(p) not in self.eprocess:
                    self._add_process(p)
                for t in p.threads:
                    if m.visible(t):
                        if id(t) not in self.ethread:
                            self._add_thread(t)
                    elif id(t) in self.ethread:
                        self._remove_thread(t)
            elif id(p) in self.eprocess:
                self._remove_process(p)
        self._sync_jobs()

    def _add_process(self, p) -> None:
        sp = self.space
        values = {
            "UniqueProcessId": p.pid,
            "ImageFileName": p.name.encode("ascii", "replace")[:14],
            "CreateTime": self.m.boot_time + _since_boot(p.create_time),
            "Pcb.Header.Type": "ProcessObject",
            # PS_PROTECTION (8.1+): one byte, Type:3 | Audit:1 | Signer:4 (§9.1); the
            # bitfields read back from the Level written here
            "Protection.Level": PROTECTION_LEVEL.get(p.protection, 0),
            "Minimal": int(p.minimal),  # Flags3.Minimal (8.1+, §9.5)
            "PicoCreated": int(p.subsystem == "wsl"),  # Flags2.PicoCreated (§9.6)
        }
        if p.parent_pid is not None:
            values["InheritedFromUniqueProcessId"] = p.parent_pid
        label = "Idle" if p.pid == 0 else p.name
        # Token and ObjectTable stay not modelled: the shipped layouts have no _TOKEN or
        # _HANDLE_TABLE for them to point at.  Job and PicoContext come from the provider.
        obj = sp.create("_EPROCESS", values, label=label, provider=lambda: self._process_values(p))
        if p.pid > 4 and not p.minimal and p.subsystem == "win32":
            major, minor, number = (int(x) for x in _VERSION.match(self.build.id).groups())
            peb = sp.create("_PEB", {"BeingDebugged": 0, "OSMajorVersion": major,
                                     "OSMinorVersion": minor, "OSBuildNumber": number,
                                     "NumberOfProcessors": self.m.ncpu},
                            label=f"{p.name} PEB", process=obj)
            obj.set("Peb", peb)
            self.peb[id(p)] = peb
        else:
            obj.set("Peb", None)  # System, Idle and minimal processes have no PEB
        lists = (sp.new_list(obj, "ThreadListHead", "_ETHREAD", "ThreadListEntry"),
                 sp.new_list(obj, "Pcb.ThreadListHead", "_ETHREAD", "Tcb.ThreadListEntry"))
        self._thread_lists[id(p)] = lists
        if p.pid != 0:  # the Idle process is not on PsActiveProcessHead
            self.active.append(obj)
        self.eprocess[id(p)] = obj

    def _add_job(self, job) -> None:
        sp = self.space
        obj = sp.create("_EJOB", {"Event.Header.Type": "EventNotificationObject"},
                        label=self.m.job_name(job), provider=lambda: self._job_values(job))
        self._process_lists[id(job)] = sp.new_list(obj, "ProcessListHead", "_EPROCESS", "JobLinks")
        self.job_list.append(obj)  # InsertTailList(&PspJobList, &Job->JobLinks)
        self.ejob[id(job)] = obj
        self._jobs[id(job)] = job

    def _remove_job(self, key: int) -> None:
        obj = self.ejob.pop(key)
        self._jobs.pop(key)
        self._process_lists.pop(key, None)
        self._child_lists.pop(key, None)
        self._linked_parent.pop(key, None)
        for k in [k for k, (_, j) in self._linked_job.items() if id(j) == key]:
            del self._linked_job[k]  # free() below empties its ProcessListHead
        for k in [k for k, j in self._linked_parent.items() if id(j) == key]:
            del self._linked_parent[k]
        for k in [k for k in self._affinity if k[0] == key]:
            self.space.free(self._affinity.pop(k))
        self.space.free(obj)  # off PspJobList and its parent's child list

    def _sync_jobs(self) -> None:
        """_EJOBs for the jobs that exist, and who is on which job's lists."""
        m = self.m
        live = {id(j) for j in m.jobs}
        for key in [k for k in self.ejob if k not in live]:
            self._remove_job(key)
        for job in m.jobs:
            if id(job) not in self.ejob:
                self._add_job(job)
        # A process is on its innermost job's ProcessListHead (§6.10: nesting can move it
        # into a job created later), in the order it joined
        for key, (p, job) in list(self._linked_job.items()):
            if p.jobs[0] is not job:
                self._process_lists[id(job)].remove(self.eprocess[key])
                del self._linked_job[key]
        for job in m.jobs:
            head = self._process_lists[id(job)]
            for p in job.members:
                obj = self.eprocess.get(id(p))
                if obj is not None and p.jobs[0] is job and id(p) not in self._linked_job:
                    head.append(obj)
                    self._linked_job[id(p)] = (p, job)
        self._sync_job_tree()

    def _sync_job_tree(self) -> None:
        """Child jobs on their parent's ChildJobListHead (builds from Windows 8)."""
        plan = self.space.plan("_EJOB")
        if plan.try_field("ChildJobListHead") is None or plan.try_field("SiblingJobLinks") is None:
            return
        for key, obj in self.ejob.items():
            if key not in self._child_lists:
                self._child_lists[key] = self.space.new_list(obj, "ChildJobListHead", "_EJOB",
                                                             "SiblingJobLinks")
        for key, parent in list(self._linked_parent.items()):
            job = self._jobs[key]
            if job.parent is not parent:
                self._child_lists[id(parent)].remove(self.ejob[key])
                del self._linked_parent[key]
        for parent in self.m.jobs:
            for child in parent.children:
                if id(child) in self.ejob and id(child) not in self._linked_parent:
                    self._child_lists[id(parent)].append(self.ejob[id(child)])
                    self._linked_parent[id(child)] = parent

    def _add_thread(self, t) -> None:
        sp = self.space
        proc = self.eprocess[id(t.process)]
        values = {
            "Cid.UniqueProcess": t.pid,
            "Cid.UniqueThread": t.tid,
            "CreateTime": self.m.boot_time + _since_boot(t.create_time),
            "Tcb.Header.Type": "ThreadObject",
            "Tcb.Process": proc,
            "Tcb.ApcState.Process": proc,
        }
        label = f"{t.process.name}:{t.tid}" if not t.is_idle else f"Idle thread {t.ideal}"
        obj = sp.create("_ETHREAD", values, label=label, process=proc,
                        provider=lambda: self._thread_values(t))
        peb = self.peb.get(id(t.process))
        if peb is not None:
            teb = sp.create("_TEB", {"ClientId.UniqueProcess": t.pid,
                                     "ClientId.UniqueThread": t.tid,
                                     "ProcessEnvironmentBlock": peb},
                            label=f"TEB {t.tid}", process=proc,
                            provider=lambda: self._teb_values(t))
            teb.set("NtTib.Self", Ref(teb, "NtTib"))  # NtCurrentTeb reads it: the TEB itself
            obj.set("Tcb.Teb", teb)
            self.teb[id(t)] = teb
        else:
            obj.set("Tcb.Teb", None)  # kernel threads have no TEB
        for lst in self._thread_lists[id(t.process)]:
            lst.append(obj)
        self.ethread[id(t)] = obj

    def _remove_thread(self, t) -> None:
        teb = self.teb.pop(id(t), None)
        if teb is not None:
            self.space.free(teb)
        for key in [k for k in self._affinity if k[0] == id(t)]:
            self.space.free(self._affinity.pop(key))
        self.space.free(self.ethread.pop(id(t)))

    def _remove_process(self, p) -> None:
        for t in p.threads:
            if id(t) in self.ethread:
                self._remove_thread(t)
        obj = self.eprocess.pop(id(p))
        self._linked_job.pop(id(p), None)  # free() below takes it off its job's list
        self.peb.pop(id(p), None)
        self._thread_lists.pop(id(p), None)
        for key in [k for k in self._affinity if k[0] == id(p)]:
            self.space.free(self._affinity.pop(key))
        self.space.free(obj)  # frees its PEB/TEBs with its user space, unlinks it

    # ------------------------------------------------------------------ live values
    def _affinity_values(self, owner, path: str, mask: int, type_name: str) -> dict:
        """Affinity in the shape the shown build gives `path`."""
        f = self.space.plan(type_name).try_field(path)
        if f is None:
            return {}
        if f.kind == "int":
            return {path: mask}
        layout = f.layout.name if f.layout is not None else None
        if f.kind == "struct" and layout == "_GROUP_AFFINITY":
            return {f"{path}.Mask": mask, f"{path}.Group": 0}
        if f.kind == "struct" and layout == "_KAFFINITY_EX":
            return self._kaffinity(f"{path}.", mask, f.layout)
        if f.kind == "pointer":  # 24H2: a separately allocated _KAFFINITY_EX
            key = (id(owner), path)
            target = self._affinity.get(key)
            if target is None:
                target = self._affinity[key] = self.space.create(
                    "_KAFFINITY_EX", label=f"{path} of {getattr(owner, 'name', '')}")
            target.update(self._kaffinity("", mask, target.layout))
            return {path: target}
        return {}

    def _kaffinity(self, prefix: str, mask: int, layout) -> dict:
        bitmap = next((m for m in layout.members if m.name == "Bitmap"), None)
        size = bitmap.type.count if bitmap is not None and bitmap.type.count else 1
        return {f"{prefix}Count": 1, f"{prefix}Size": size, f"{prefix}Bitmap[0]": mask}

    def _process_values(self, p) -> dict:
        m = self.m
        m._charge_all()
        tick = m.tick
        user = sum(t.user for t in p.threads)
        kernel = sum(t.kernel for t in p.threads)
        values = {
            "ExitStatus": p.exit_code,
            "ActiveThreads": p.live_threads,
            "PriorityClass": PRIORITY_CLASS_CODE.get(p.priority_class, 0),
            "Pcb.BasePriority": process_base_priority(p.pid, p.priority_class),
            "Pcb.QuantumReset": p.quantum_reset // m.unit,
            "Pcb.KernelTime": kernel // tick,
            "Pcb.UserTime": user // tick,
            "Pcb.Header.SignalState": 1 if p.signaled else 0,
        }
        if p.exit_time is not None:
            values["ExitTime"] = m.boot_time + _since_boot(p.exit_time)
        values.update(self._affinity_values(p, "Pcb.Affinity", p.affinity, "_EPROCESS"))
        if p.pid != 0:
            # Job: the innermost job (PsGetProcessJob); a process is assigned at any time
            if not p.jobs:
                values["Job"] = None
            elif id(p.jobs[0]) in self.ejob:
                values["Job"] = self.ejob[id(p.jobs[0])]
            # else: jobs.py destroyed the job while this exited process is still
            # referenced; Windows keeps the job alive then, so the pointer is not modelled
        if p.subsystem != "wsl":
            values["PicoContext"] = None
        elif p.pico_context:
            # the pico provider's context (§9.6); 0 means the scenario gave none: no
            # address is invented for it, the member stays not modelled
            values["PicoContext"] = p.pico_context
        return values

    def _job_values(self, job) -> dict:
        """The _EJOB members the simulation keeps (§6): limits, accounting, hierarchy."""
        m = self.m
        acct = m.query_job_accounting(job)  # 100 ns units (§6.14)
        values = {key: acct[key] for key in (
            "TotalUserTime", "TotalKernelTime", "ThisPeriodTotalUserTime",
            "ThisPeriodTotalKernelTime", "TotalProcesses", "ActiveProcesses",
            "TotalTerminatedProcesses")}
        used = m.job_memory_used(job)
        values.update({
            "Event.Header.SignalState": 1 if job.signaled else 0,
            "LimitFlags": job.limit_flags,
            "ActiveProcessLimit": job.active_process_limit,
            "PerProcessUserTimeLimit": job.per_process_user_time // HUNDRED_NS,
            "PerJobUserTimeLimit": job.per_job_user_time // HUNDRED_NS,
            # the PROCESS_PRIORITY_CLASS code, copied as is into EPROCESS.PriorityClass
            "PriorityClass": PRIORITY_CLASS_CODE.get(job.priority_class, 0),
            "SchedulingClass": job.scheduling_class,
            "EndOfJobTimeAction": job.end_of_job_time_action,
            # Memory limits are kept in pages (Job->ProcessMemoryLimit = bytes >> PAGE_SHIFT);
            # usage is charged in whole pages
            "ProcessMemoryLimit": job.process_memory_limit >> PAGE_SHIFT,
            "JobMemoryLimit": job.job_memory_limit >> PAGE_SHIFT,
            "PeakProcessMemoryUsed": _pages(job.peak_process_memory),
            "PeakJobMemoryUsed": _pages(job.peak_job_memory),
            "CurrentJobMemoryUsed": _pages(used),
            "EffectiveSchedulingClass": m._effective_scheduling_class(job),
            "ParentJob": self.ejob.get(id(job.parent)) if job.parent is not None else None,
        })
        if job.limit_flags & JOB_OBJECT_LIMIT_AFFINITY:
            values.update(self._affinity_values(job, "Affinity", job.affinity, "_EJOB"))
        effective = m._effective_affinity(job)
        if effective:
            values.update(self._affinity_values(job, "EffectiveAffinity", effective, "_EJOB"))
        effective_class = m._effective_class(job)
        if effective_class is not None:
            values["EffectivePriorityClass"] = PRIORITY_CLASS_CODE[effective_class]
        if job.parent is not None:
            # a nested job's RootJob is the top of its chain.  Whether a top-level job's
            # RootJob is NULL or itself, and NestingDepth's base (0 or 1), no source at
            # hand says (searched: Microsoft's Nested Jobs page, Geoff Chappell's EJOB
            # study, public ReactOS and WRK job code; none gives it): both stay not
            # modelled rather than guessed.
            values["RootJob"] = self.ejob.get(id(list(job.chain())[-1]))
        return values

    def _teb_values(self, t) -> dict:
        """TEB members that change as the thread's fibers switch (§7.2, §7.5), read from
        the kernel state whenever the TEB's bytes are made, so they change exactly when
        ConvertThreadToFiber, SwitchToFiber, ConvertFiberToThread or a DeleteFiber that
        ends the thread changes it.

        HasFiberData (IsThreadAFiber) is set by ConvertThreadToFiber and cleared by
        ConvertFiberToThread.  NtTib (_NT_TIB, from the layout supplement where a build's
        data lacks it) holds FiberData, GetCurrentFiber's value: the selected fiber's
        address, written by ConvertThreadToFiber and SwitchToFiber (ReactOS fiber.c).
        While the thread is not a fiber it is not modelled: the union then holds Version,
        whose value no source at hand gives, and the NULL ConvertFiberToThread writes
        there is not told apart from it.  A fiber address wider than the shown build's
        pointers (a 64-bit machine shown as an x86 build) is not modelled rather than cut.
        NtTib.Self is the TEB's own address (set once, in _add_thread).  StackBase and
        StackLimit, which SwitchToFiber loads from the fiber, are not modelled: KOI keeps
        the stack sizes asked for, never a stack's addresses; ExceptionList, SubSystemTib
        and ArbitraryUserPointer are not modelled either.

        FlsData points at the FLS data block (RTL_FLS_DATA) that FlsAlloc/FlsSetValue
        allocate on the process heap apart from the fiber (ReactOS fiber.c).  KOI keeps
        FLS values as values (`fiber_info`), with no block in the simulated memory and no
        shipped layout for one: not modelled rather than an address with nothing behind it."""
        fiber = t.fiber
        values = {"HasFiberData": 1 if fiber is not None else 0}
        if fiber is not None and fiber.address < 1 << (8 * self.build.pointer_size):
            values["NtTib.FiberData"] = fiber.address
        return values

    def _thread_values(self, t) -> dict:
        m = self.m
        m._charge_all()
        tick = m.tick
        values = {
            "ExitStatus": t.exit_code,
            "Tcb.State": KTHREAD_STATE[t.state],
            "Tcb.Priority": t.priority,
            "Tcb.BasePriority": t.base,
            "Tcb.PriorityDecrement": t.decrement,
            "Tcb.IdealProcessor": t.ideal,
            "Tcb.ContextSwitches": t.cswitches,
            "Tcb.SuspendCount": t.suspend_count,
            "Tcb.KernelTime": t.kernel // tick,
            "Tcb.UserTime": t.user // tick,
            "Tcb.Header.SignalState": 1 if t.signaled else 0,
        }
        if t.cpu >= 0:
            values["Tcb.NextProcessor"] = t.cpu
        if t.state == WAITING and t.wait_reason >= 0:
            values["Tcb.WaitReason"] = t.wait_reason
        if t.state == TERMINATED:
            values["Tcb.State"] = "Terminated"
        values.update(self._affinity_values(t, "Tcb.Affinity", t.affinity, "_ETHREAD"))
        return values


def bind(machine, build: Build) -> KernelMemory:
    """Put `machine`'s objects in typed memory laid out as `build` (machine.memory)."""
    return KernelMemory(machine, build)

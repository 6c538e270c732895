"""The simulated kernel's objects in typed kernel memory (core.memory).

``KernelMemory(machine, build)`` gives every visible process an ``_EPROCESS`` (with its
``_KPROCESS`` Pcb) linked on ``nt!PsActiveProcessHead``, every thread an ``_ETHREAD``
(with its ``_KTHREAD`` Tcb) on both thread lists of its process, and user processes a
``_PEB``, each of their threads a ``_TEB``, a ``_TOKEN`` and a ``_HANDLE_TABLE``.

Identity, names and links are stored once; everything the dispatcher changes (state,
priorities, times, counts) is served by providers that read the kernel object when
someone looks at the bytes, so the simulation never pays for memory nobody reads.
``sync()`` adds objects created and removes objects deleted since the last call (a
process stays on the list while a handle references it, as on Windows, where the
EPROCESS leaves ActiveProcessLinks only when the object is deleted).

Members the simulation has no value for (StartAddress, WaitListEntry, the PEB's loader
data; Token and ObjectTable, whose _TOKEN and _HANDLE_TABLE layouts are not shipped) stay unset and read as "not modelled"; members a build lacks are skipped.
Shapes that change across builds (Affinity: ULONG_PTR, _KAFFINITY_EX, _GROUP_AFFINITY
or a pointer) are written in the shape of the build being shown.
"""

from __future__ import annotations

import re
from datetime import timedelta

from core.layouts import Build
from core.memory import AddressSpace, KObject

from .constants import (
    CYCLES_PER_NS,
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


def _since_boot(cycles: int) -> timedelta:
    return timedelta(microseconds=cycles // (1000 * CYCLES_PER_NS))


class KernelMemory:
    """A machine's processes and threads as structures of one Windows build."""

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
        machine.memory = self
        self.sync()

    @property
    def build(self) -> Build:
        return self.space.build

    def set_build(self, build: Build) -> None:
        """Show the same objects as `build` lays them out."""
        self.space.set_build(build)
        for obj in list(self.eprocess.values()) + list(self.ethread.values()):
            obj.touch()

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

    def _add_process(self, p) -> None:
        sp = self.space
        values = {
            "UniqueProcessId": p.pid,
            "ImageFileName": p.name.encode("ascii", "replace")[:14],
            "CreateTime": self.m.boot_time + _since_boot(p.create_time),
            "Pcb.Header.Type": "ProcessObject",
        }
        if p.parent_pid is not None:
            values["InheritedFromUniqueProcessId"] = p.parent_pid
        values["Protection.Level"] = PROTECTION_LEVEL.get(p.protection, 0)  # Vista+
        label = "Idle" if p.pid == 0 else p.name
        obj = sp.create("_EPROCESS", values, label=label, provider=lambda: self._process_values(p))
        if p.pid != 0:
            # Token and ObjectTable stay not modelled: the shipped layouts have no _TOKEN
            # or _HANDLE_TABLE for them to point at.  No job yet: a NULL Job.
            obj.set("Job", None)
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
                            label=f"TEB {t.tid}", process=proc)
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

"""Boot sets: the processes a machine has before a scenario's own (formats.md §2 `boot`).

``bare``: Idle (pid 0, one idle thread per CPU) and System (pid 4, protected WinSystem)
with its threads: the executive worker threads (waiting in WrQueue, ntapi.ExQueueWorkItem
feeds them), the balance set manager and the swapper.

``desktop``: a Windows 10 22H2 machine after logon, created in the order Windows
starts it, so PIDs and TIDs come out as multiples of 4 in that order and the parent
tree is Windows's, including parents that have already exited (the per-session smss
instances, userinit), which Process Explorer shows as roots.  Threads mostly wait as
idle Windows threads do (thread pools in WrQueue, ALPC servers in WrLpcReceive, GUI
threads in WrUserRequest); a few wake periodically for a little CPU or I/O so the
machine is alive.  Periods and costs come from the machine's seeded RNG: the same seed
boots the same machine.

What the desktop set models is the shape (names, tree, classes, protection, thread
states); its thread counts are smaller than a real machine's (System alone has ~200
threads on Windows 10) to keep the views readable.  Protection levels use the
PS_PROTECTION encodings of nt-facts §9 (lsass as PPL-Lsa, i.e. with LSA protection on);
which signer Registry and MemCompression carry was not checked against a real machine.
"""

from __future__ import annotations

from .constants import (
    Executive,
    UserRequest,
    WrLpcReceive,
    WrQueue,
    WrUserRequest,
    ms,
    us,
)
from .objects import NOTIFICATION, Event
from . import program as P

BOOT_SETS = ("bare", "desktop")
# What a scenario's `parent` may name in each boot set: the first process of each name
# (the persistent smss.exe, session 0's csrss.exe, the DcomLaunch svchost.exe...).
BOOT_PROCESS_NAMES = {
    "bare": ("System",),
    "desktop": (
        "System", "Registry", "smss.exe", "csrss.exe", "wininit.exe", "winlogon.exe",
        "services.exe", "lsass.exe", "fontdrvhost.exe", "MemCompression", "svchost.exe",
        "svchost.exe -k DcomLaunch", "svchost.exe -k RpcSs",
        "svchost.exe -k LocalServiceNetworkRestricted", "svchost.exe -k netsvcs",
        "svchost.exe -k LocalService", "svchost.exe -k NetworkService", "MsMpEng.exe",
        "spoolsv.exe", "SearchIndexer.exe", "dwm.exe", "userinit.exe", "explorer.exe",
        "RuntimeBroker.exe", "StartMenuExperienceHost.exe", "SecurityHealthSystray.exe",
        "OneDrive.exe", "Taskmgr.exe", "notepad.exe",
    ),
}

# Priorities of System's own threads (ReactOS ntoskrnl/ke/balmgr.c: the balance set
# manager runs at 16 (LOW_REALTIME_PRIORITY), the swapper at 23 (+7)).
BALANCE_SET_MANAGER_PRIORITY = 16
SWAPPER_PRIORITY = 23


def boot(machine, kind: str) -> dict[str, object]:
    """Boot `machine` (fresh, time 0) with the `kind` set; returns the processes made,
    by name (the first of each name)."""
    if kind not in BOOT_SETS:
        raise ValueError(f"boot set must be one of {', '.join(BOOT_SETS)}, not {kind!r}")
    made = {"System": machine.system_process}
    _system_threads(machine)
    if kind == "desktop":
        _Desktop(machine, made).build()
    machine.dispatch()
    return made


def _forever(label: str) -> Event:
    """A never-signaled object for threads that wait for work that does not come."""
    return Event(label, NOTIFICATION, False)


def _system_threads(machine) -> None:
    system = machine.system_process
    nt = machine.nt
    # KeBalanceSetManager and KeSwapProcessOrStack wait with reason Executive.  The
    # starvation scan itself runs on the clock (dispatcher._balance) and costs no CPU time.
    for name, prio in (("KeBalanceSetManager", BALANCE_SET_MANAGER_PRIORITY),
                       ("KeSwapProcessOrStack", SWAPPER_PRIORITY)):
        machine.create_waiting_thread(system, (P.wait(_forever(name)) + (Executive,),),
                                      name=name, base=prio)
    nt.start_workers()


class _Desktop:
    """The Windows 10 desktop boot set, created in Windows's order."""

    def __init__(self, machine, made: dict) -> None:
        self.m = machine
        self.made = made
        self.rng = machine.rng
        self.pending_exits = []  # transient processes' threads, ended once their children exist

    # threads ---------------------------------------------------------------------------
    def idle_waits(self, proc, count: int, reason: int, label: str) -> None:
        obj = _forever(f"{proc.name}:{label}")
        for _ in range(count):
            self.m.create_waiting_thread(proc, [P.wait(obj) + (reason,)])

    def periodic(self, proc, period_ms: tuple[int, int], cpu_us: tuple[int, int],
                 priority="normal", kernel: bool = False, io: str | None = None) -> None:
        """A thread that wakes every ~period for a little CPU (and maybe an I/O)."""
        period = ms(self.rng.randint(*period_ms))
        cost = us(self.rng.randint(*cpu_us))
        steps = [P.sleep(period), (P.kcpu if kernel else P.cpu)(cost)]
        if io is not None:
            steps.append(P.io(io, ms(self.rng.randint(2, 8))))
        steps.append(P.repeat())
        self.m.create_waiting_thread(proc, steps, priority=priority)

    def process(self, name: str, parent, klass: str | None = None, protection: str = "none",
                path: str | None = None, minimal: bool = False):
        image = path or f"\\SystemRoot\\System32\\{name}"
        proc = self.m.create_process(name, klass, parent=parent, protection=protection,
                                     image_path=image, minimal=minimal)
        self.made.setdefault(name, proc)
        return proc

    def server(self, name: str, parent, klass=None, protection="none", *, pool=4, alpc=0,
               gui=0, activity=(), path=None):
        """A typical service process: an initial thread waiting, a thread pool, ALPC
        ports, GUI threads, and the periodic activity given as (period, cpu, extras)."""
        proc = self.process(name, parent, klass, protection, path)
        self.idle_waits(proc, 1, UserRequest, "main")
        if pool:
            self.idle_waits(proc, pool, WrQueue, "TpWorkerFactory")
        if alpc:
            self.idle_waits(proc, alpc, WrLpcReceive, "AlpcPort")
        if gui:
            self.idle_waits(proc, gui, WrUserRequest, "MessageQueue")
        for period, cpu, extra in activity:
            self.periodic(proc, period, cpu, **extra)
        return proc

    def transient(self, name: str, parent, klass=None, protection="none"):
        """A process that starts others and exits (smss instances, userinit)."""
        proc = self.process(name, parent, klass, protection)
        first = self.m.create_waiting_thread(proc, [P.wait(_forever(name))])
        self.pending_exits.append(first)
        return proc

    # the set ---------------------------------------------------------------------------
    def build(self) -> None:
        m = self.m
        system = m.system_process
        user = "\\Device\\HarddiskVolume3\\"
        registry = self.process("Registry", system, protection="pp-winsystem",
                                path="Registry", minimal=True)
        self.idle_waits(registry, 4, WrQueue, "CmpWorker")
        smss = self.process("smss.exe", system, protection="pp-wintcb")
        self.idle_waits(smss, 2, WrLpcReceive, "SmApiPort")
        # Session 0: an smss instance starts csrss and wininit, then exits
        smss0 = self.transient("smss.exe", smss, protection="pp-wintcb")
        self.server("csrss.exe", smss0, "high", "ppl-wintcb", pool=2, alpc=4)
        wininit = self.server("wininit.exe", smss0, "high", "ppl-wintcb", pool=1, alpc=1)
        # Session 1: csrss and winlogon, then the instance exits
        smss1 = self.transient("smss.exe", smss, protection="pp-wintcb")
        self.server("csrss.exe", smss1, "high", "ppl-wintcb", pool=2, alpc=4,
                             gui=2, activity=[((400, 900), (30, 120), {"kernel": True})])
        winlogon = self.server("winlogon.exe", smss1, "high", pool=2, alpc=1, gui=1)
        services = self.server("services.exe", wininit, None, "ppl-wintcb", pool=4, alpc=2,
                               activity=[((2000, 4000), (100, 400), {})])
        self.server("lsass.exe", wininit, None, "ppl-lsa", pool=5, alpc=3,
                    activity=[((1500, 3000), (100, 600), {})])
        self.server("fontdrvhost.exe", wininit, None, pool=1)
        memcomp = self.process("MemCompression", system, protection="pp-winsystem",
                               path="MemCompression", minimal=True)
        self.idle_waits(memcomp, 2, WrQueue, "SmStore")
        svchost = []
        for group, pool, activity in (
                ("DcomLaunch", 4, [((1000, 2500), (50, 300), {})]),
                ("RpcSs", 3, []),
                ("LocalServiceNetworkRestricted", 4, [((800, 1600), (40, 200), {})]),
                ("netsvcs", 8, [((500, 1500), (100, 800), {}),
                                ((3000, 6000), (200, 900), {"io": "network"})]),
                ("LocalService", 3, [((2000, 5000), (50, 250), {})]),
                ("NetworkService", 3, [((1000, 3000), (80, 400), {"io": "network"})])):
            proc = self.server("svchost.exe", services, pool=pool, alpc=1, activity=activity)
            svchost.append(proc)
            self.made.setdefault(f"svchost.exe -k {group}", proc)
        self.server("MsMpEng.exe", services, None, "ppl-antimalware", pool=6, alpc=1,
                    path=user + "ProgramData\\Microsoft\\Windows Defender\\Platform\\"
                               "4.18.24090.11-0\\MsMpEng.exe",
                    activity=[((700, 1300), (500, 2500), {"io": "disk"})])
        self.server("spoolsv.exe", services, pool=3, alpc=1)
        self.server("SearchIndexer.exe", services, pool=3, alpc=1,
                    activity=[((2000, 4000), (300, 1500), {"io": "disk", "priority": "idle"})])
        self.server("dwm.exe", winlogon, "high", pool=3, gui=2,
                          activity=[((90, 110), (200, 600), {"priority": "above_normal"})])
        self.server("fontdrvhost.exe", winlogon, None, pool=1)
        userinit = self.transient("userinit.exe", winlogon)
        explorer = self.server("explorer.exe", userinit, pool=8, alpc=1, gui=6,
                               path=user + "Windows\\explorer.exe",
                               activity=[((400, 700), (200, 900), {})])
        self.server("RuntimeBroker.exe", svchost[0], pool=2, gui=1)
        self.server("StartMenuExperienceHost.exe", svchost[0], pool=3, gui=2,
                    path=user + "Windows\\SystemApps\\StartMenuExperienceHost.exe")
        self.server("SecurityHealthSystray.exe", explorer, pool=1, gui=1,
                    path=user + "Windows\\System32\\SecurityHealthSystray.exe")
        self.server("OneDrive.exe", explorer, pool=4, gui=1,
                    path=user + "Users\\user\\AppData\\Local\\Microsoft\\OneDrive\\OneDrive.exe",
                    activity=[((3000, 8000), (300, 1200), {"io": "network"})])
        self.server("Taskmgr.exe", explorer, "high", pool=2, gui=2,
                    path=user + "Windows\\System32\\Taskmgr.exe",
                    activity=[((1000, 1000), (1500, 3000), {})])
        self.server("notepad.exe", explorer, pool=1, gui=1,
                    path=user + "Windows\\System32\\notepad.exe")
        for t in self.pending_exits:  # they did their work during boot
            m._exit_thread(t, 0)
        m.set_foreground(explorer)

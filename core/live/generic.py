"""Any OS psutil supports (macOS in particular): processes, their threads' times, and
the per-CPU counters.

psutil gives less than /proc or NtQuerySystemInformation: per thread only the id and
user/system time, so thread state, priority, last CPU and context switches are None
here (never guessed). Per process it gives the parent, times, nice (the NT class is
derived from it as on Linux), status, affinity where the OS has one, and the context
switches (kept under "native": a process total, not a thread's).
"""

from __future__ import annotations

import os
import sys
import time

import psutil

from core.kernel.constants import STILL_ACTIVE

from .model import (
    CpuTimes,
    ProcessInfo,
    Snapshot,
    ThreadInfo,
    apply_deltas,
    class_base_priority,
    nt_priority_class,
)

_ATTRS = ["pid", "ppid", "name", "create_time", "cpu_times", "nice", "status",
          "num_ctx_switches", "num_threads", "threads", "username"]
if hasattr(psutil.Process, "cpu_affinity"):
    _ATTRS.append("cpu_affinity")


def _host() -> str:
    if sys.platform.startswith("linux"):
        return "linux"
    if sys.platform == "win32":
        return "windows"
    return sys.platform


class PsutilSource:
    """Samples this host through psutil."""

    name = "psutil"

    def __init__(self):
        self.host = _host()
        self._boot = psutil.boot_time()
        self._previous: Snapshot | None = None

    def _cpu_times(self) -> list[CpuTimes]:
        out = []
        for cpu, t in enumerate(psutil.cpu_times(percpu=True)):
            d = t._asdict()
            user = d.get("user", 0.0) + d.get("nice", 0.0)
            kernel = d.get("system", 0.0) + d.get("irq", 0.0) + d.get("softirq", 0.0)
            idle = d.get("idle", 0.0) + d.get("iowait", 0.0)
            out.append(CpuTimes(cpu=cpu, user_s=user, kernel_s=kernel, idle_s=idle,
                                other_s=d.get("steal", 0.0), native=d))
        return out

    def _process(self, proc: psutil.Process, skipped: dict) -> ProcessInfo | None:
        try:
            with proc.oneshot():
                info = proc.as_dict(attrs=_ATTRS, ad_value=None)
        except psutil.NoSuchProcess:
            skipped["vanished"] += 1
            return None
        pid = proc.pid
        created = info.get("create_time")
        start = round(created * 1e6) if created is not None else 0
        times = info.get("cpu_times")
        status = info.get("status")
        exited = status in (psutil.STATUS_ZOMBIE, getattr(psutil, "STATUS_DEAD", "dead"))
        readable = times is not None and info.get("threads") is not None
        if not readable:
            skipped["denied"] += 1
        nice = info.get("nice")
        cls = nt_priority_class(0, nice) if isinstance(nice, int) else None
        threads = []
        for t in info.get("threads") or ():
            threads.append(ThreadInfo(
                tid=t.id, pid=pid, start_stamp=0, user_time_s=t.user_time,
                kernel_time_s=t.system_time,
                exit_code=None if exited else STILL_ACTIVE))
        switches = info.get("num_ctx_switches")
        affinity = info.get("cpu_affinity")
        return ProcessInfo(
            pid=pid, start_stamp=start, ppid=info.get("ppid"), name=info.get("name"),
            create_time=created,
            create_time_us=None if created is None else (created - self._boot) * 1e6,
            user_time_s=None if times is None else times.user,
            kernel_time_s=None if times is None else times.system,
            priority_class=cls, base_priority=class_base_priority(cls),
            exited=exited, exit_code=None if exited else STILL_ACTIVE,
            affinity=None if affinity is None else tuple(sorted(affinity)),
            threads=tuple(threads), readable=readable,
            native={"status": status, "nice": nice, "user": info.get("username"),
                    "num_threads": info.get("num_threads"),
                    "voluntary_switches": None if switches is None else switches.voluntary,
                    "involuntary_switches": None if switches is None else switches.involuntary,
                    "protection": None})

    def sample(self) -> Snapshot:
        mono, wall = time.monotonic(), time.time()
        cpu_times = self._cpu_times()
        skipped = {"vanished": 0, "denied": 0}
        processes = []
        for proc in psutil.process_iter():
            info = self._process(proc, skipped)
            if info is not None:
                processes.append(info)
        processes.sort(key=lambda p: p.pid)
        snap = Snapshot(host=self.host, source=self.name, wall_time=wall,
                        uptime_s=wall - self._boot, monotonic=mono,
                        cpus=len(cpu_times) or (os.cpu_count() or 1), processes=processes,
                        cpu_times=cpu_times, skipped=skipped)
        apply_deltas(self._previous, snap)
        self._previous = snap
        return snap

    def close(self) -> None:
        self._previous = None

"""Linux control groups read as NT jobs, read only.

A cgroup groups processes and limits them as a whole, which is what a job object does.
Each cgroup a process sits in, and each ancestor of it up to (not including) the root,
is one job; like nested jobs, a process is in all of them, innermost first. Limits map
as follows (docs/live.md has the table, and what does not map):

===================  ==========================  ======================================
job limit            cgroup v2                   cgroup v1
===================  ==========================  ======================================
active_process       pids.max                    pids.max            (counts tasks, not
                                                                      processes)
cpu_rate.hard_cap    cpu.max quota/period        cpu.cfs_quota_us / cpu.cfs_period_us
affinity             cpuset.cpus                 cpuset.cpus
job_memory           memory.max                  memory.limit_in_bytes
===================  ==========================  ======================================

A v2 job is named by its path (``/user.slice/app.scope``); a v1 job by its hierarchy's
controllers and its path (``memory:/docker/ab12``), since each v1 hierarchy groups
processes its own way. Named v1 hierarchies without controllers (``name=systemd``) only
track processes, so they are not jobs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from .model import JobInfo

# cgroup v1 writes "no limit" as the largest page-aligned long
_V1_UNLIMITED_MEMORY = 1 << 62
_READ_LIMIT = 65536


@dataclass(frozen=True, slots=True)
class Hierarchy:
    """One mounted cgroup hierarchy."""
    version: int                   # 1 or 2
    controllers: frozenset[str]    # v1 controllers of the mount; empty for v2
    root: str                      # the hierarchy path mounted (mountinfo field 4)
    mountpoint: str

    @property
    def label(self) -> str:
        return ",".join(sorted(self.controllers))

    def directory(self, path: str) -> str | None:
        """Where cgroup `path` (as /proc/PID/cgroup names it) is in the filesystem,
        or None when this mount does not show it (a container seeing part of a tree)."""
        root = self.root.rstrip("/")
        if root and path != root and not path.startswith(root + "/"):
            return None
        return self.mountpoint.rstrip("/") + path[len(root):]


def _unescape(field: str) -> str:
    """mountinfo escapes space, tab, newline and backslash as octal (\\040)."""
    if "\\" not in field:
        return field
    out, i = [], 0
    while i < len(field):
        if field[i] == "\\" and i + 3 < len(field) and field[i + 1:i + 4].isdigit():
            out.append(chr(int(field[i + 1:i + 4], 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def parse_mountinfo(text: str) -> list[Hierarchy]:
    """The cgroup hierarchies in a /proc/PID/mountinfo text."""
    found = []
    for line in text.splitlines():
        left, sep, right = line.partition(" - ")
        if not sep:
            continue
        fields, tail = left.split(), right.split()
        if len(fields) < 5 or len(tail) < 1:
            continue
        fstype = tail[0]
        if fstype == "cgroup2":
            found.append(Hierarchy(2, frozenset(), _unescape(fields[3]), _unescape(fields[4])))
        elif fstype == "cgroup" and len(tail) >= 3:
            options = set(tail[2].split(","))
            controllers = frozenset(o for o in options
                                    if o not in ("rw", "ro") and "=" not in o
                                    and o not in ("noprefix", "clone_children", "xattr",
                                                  "cpuset_v2_mode", "favordynmods"))
            named = any(o.startswith("name=") for o in options)
            if controllers or named:
                found.append(Hierarchy(1, controllers, _unescape(fields[3]),
                                       _unescape(fields[4])))
    return found


def parse_membership(text: str) -> list[tuple[int, frozenset[str], str]]:
    """/proc/PID/cgroup lines as (hierarchy id, controllers, path)."""
    out = []
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        try:
            hid = int(parts[0])
        except ValueError:
            continue
        controllers = frozenset(c for c in parts[1].split(",") if c and not c.startswith("name="))
        if hid != 0 and not controllers:
            continue  # a named tracking hierarchy (name=systemd): no limits, not a job
        out.append((hid, controllers, parts[2]))
    return out


def _ancestors(path: str) -> list[str]:
    """`path` and its ancestors, innermost first, without the root."""
    out = []
    while path and path != "/":
        out.append(path)
        path = path.rsplit("/", 1)[0] or "/"
    return out


def job_name(version: int, controllers: frozenset[str], path: str) -> str:
    return path if version == 2 else f"{','.join(sorted(controllers))}:{path}"


def parse_cpu_list(text: str) -> tuple[int, ...] | None:
    """A Linux CPU list ("0-3,8,10-11") as CPU numbers; None when empty or malformed."""
    cpus: list[int] = []
    for part in text.strip().split(","):
        if not part:
            continue
        lo, sep, hi = part.partition("-")
        try:
            if sep:
                cpus.extend(range(int(lo), int(hi) + 1))
            else:
                cpus.append(int(lo))
        except ValueError:
            return None
    return tuple(cpus) or None


def _read(path: str) -> str | None:
    try:
        with open(path, "rb") as f:
            return f.read(_READ_LIMIT).decode("utf-8", "replace").strip()
    except OSError:
        return None


def _int(text: str | None) -> int | None:
    if text is None:
        return None
    try:
        return int(text.split()[0])
    except (ValueError, IndexError):
        return None


def _keyed(text: str | None) -> dict[str, int]:
    """A flat-keyed file (cpu.stat, cpuacct.stat) as a dict."""
    out: dict[str, int] = {}
    for line in (text or "").splitlines():
        key, _, value = line.partition(" ")
        try:
            out[key] = int(value)
        except ValueError:
            pass
    return out


class CgroupReader:
    """Maps /proc/PID/cgroup contents to job names, and reads those jobs' limits.

    `proc_root` and the mount table are parameters so the tests can stand up a
    cgroup tree of their own.
    """

    def __init__(self, proc_root: str = "/proc", hierarchies: list[Hierarchy] | None = None):
        if hierarchies is None:
            text = _read(os.path.join(proc_root, "self", "mountinfo")) or ""
            hierarchies = parse_mountinfo(text)
        self.hierarchies = hierarchies
        self._v2 = next((h for h in hierarchies if h.version == 2), None)
        self._membership_cache: dict[bytes, tuple[str, ...]] = {}

    def _hierarchy(self, hid: int, controllers: frozenset[str]) -> Hierarchy | None:
        if hid == 0:
            return self._v2
        for h in self.hierarchies:
            if h.version == 1 and h.controllers == controllers:
                return h
        return None

    def jobs_of(self, raw: bytes) -> tuple[str, ...]:
        """The job names, innermost first, for one /proc/PID/cgroup content."""
        cached = self._membership_cache.get(raw)
        if cached is not None:
            return cached
        names: list[str] = []
        for hid, controllers, path in parse_membership(raw.decode("utf-8", "replace")):
            version = 2 if hid == 0 else 1
            names.extend(job_name(version, controllers, p) for p in _ancestors(path))
        result = tuple(names)
        if len(self._membership_cache) > 4096:  # contents are few; keep the cache small anyway
            self._membership_cache.clear()
        self._membership_cache[raw] = result
        return result

    def locate(self, name: str) -> tuple[Hierarchy | None, str]:
        """The hierarchy and path a job name stands for (see job_name)."""
        if name.startswith("/"):
            return self._v2, name
        label, _, path = name.partition(":")
        return self._hierarchy(-1, frozenset(label.split(","))), path

    def read_jobs(self, members: dict[str, int], ncpu: int) -> list[JobInfo]:
        """JobInfo for each job named in `members` (job name -> member process count)."""
        jobs = []
        for name in sorted(members):
            h, path = self.locate(name)
            parent_path = path.rsplit("/", 1)[0]
            parent = None
            if parent_path and h is not None:
                parent = job_name(h.version, h.controllers, parent_path)
            directory = h.directory(path) if h is not None else None
            if directory is None or not os.path.isdir(directory):
                jobs.append(JobInfo(name=name, parent=parent, active_processes=members[name],
                                    native={"path": path, "readable": False}))
                continue
            if h.version == 2:
                jobs.append(self._v2_job(name, parent, path, directory, members[name], ncpu))
            else:
                jobs.append(self._v1_job(name, parent, path, h, directory, members[name], ncpu))
        return jobs

    def _v2_job(self, name, parent, path, d, members, ncpu) -> JobInfo:
        files = {f: _read(os.path.join(d, f)) for f in (
            "pids.max", "pids.current", "cpu.max", "cpu.weight", "cpuset.cpus",
            "cpuset.cpus.effective", "memory.max", "memory.current", "cgroup.freeze")}
        stat = _keyed(_read(os.path.join(d, "cpu.stat")))
        limits: dict = {}
        pids_max = files["pids.max"]
        if pids_max not in (None, "max"):
            limits["active_process"] = _int(pids_max)
        cpu_max = files["cpu.max"]
        if cpu_max and not cpu_max.startswith("max"):
            quota, _, period = cpu_max.partition(" ")
            rate = _hard_cap(_int(quota), _int(period) or 100000, ncpu)
            if rate is not None:
                limits["cpu_rate"] = {"hard_cap": rate}
        if files["cpuset.cpus"]:
            cpus = parse_cpu_list(files["cpuset.cpus"])
            if cpus:
                limits["affinity"] = list(cpus)
        memory_max = files["memory.max"]
        if memory_max not in (None, "max"):
            limits["job_memory"] = _int(memory_max)
        native = {"path": path, "version": 2, "directory": d,
                  **{k: v for k, v in files.items() if v is not None}}
        if stat:
            native["cpu.stat"] = stat
        return JobInfo(
            name=name, parent=parent, active_processes=members,
            total_user_time_us=float(stat["user_usec"]) if "user_usec" in stat else None,
            total_kernel_time_us=float(stat["system_usec"]) if "system_usec" in stat else None,
            limits=limits, native=native)

    def _v1_job(self, name, parent, path, h, d, members, ncpu) -> JobInfo:
        c = h.controllers
        files: dict[str, str | None] = {}
        if "pids" in c:
            files["pids.max"] = _read(os.path.join(d, "pids.max"))
            files["pids.current"] = _read(os.path.join(d, "pids.current"))
        if "cpu" in c:
            files["cpu.cfs_quota_us"] = _read(os.path.join(d, "cpu.cfs_quota_us"))
            files["cpu.cfs_period_us"] = _read(os.path.join(d, "cpu.cfs_period_us"))
            files["cpu.shares"] = _read(os.path.join(d, "cpu.shares"))
        if "cpuset" in c:
            files["cpuset.cpus"] = _read(os.path.join(d, "cpuset.cpus"))
            files["cpuset.effective_cpus"] = _read(os.path.join(d, "cpuset.effective_cpus"))
        if "memory" in c:
            files["memory.limit_in_bytes"] = _read(os.path.join(d, "memory.limit_in_bytes"))
            files["memory.usage_in_bytes"] = _read(os.path.join(d, "memory.usage_in_bytes"))
        if "cpuacct" in c:
            files["cpuacct.usage_user"] = _read(os.path.join(d, "cpuacct.usage_user"))
            files["cpuacct.usage_sys"] = _read(os.path.join(d, "cpuacct.usage_sys"))
        if "freezer" in c:
            files["freezer.state"] = _read(os.path.join(d, "freezer.state"))
        limits: dict = {}
        pids_max = files.get("pids.max")
        if pids_max not in (None, "max"):
            limits["active_process"] = _int(pids_max)
        quota = _int(files.get("cpu.cfs_quota_us"))
        if quota is not None and quota > 0:
            rate = _hard_cap(quota, _int(files.get("cpu.cfs_period_us")) or 100000, ncpu)
            if rate is not None:
                limits["cpu_rate"] = {"hard_cap": rate}
        if files.get("cpuset.cpus"):
            cpus = parse_cpu_list(files["cpuset.cpus"] or "")
            if cpus:
                limits["affinity"] = list(cpus)
        memory = _int(files.get("memory.limit_in_bytes"))
        if memory is not None and memory < _V1_UNLIMITED_MEMORY:
            limits["job_memory"] = memory
        user_ns = _int(files.get("cpuacct.usage_user"))
        sys_ns = _int(files.get("cpuacct.usage_sys"))
        native = {"path": path, "version": 1, "controllers": sorted(c), "directory": d,
                  **{k: v for k, v in files.items() if v is not None}}
        return JobInfo(
            name=name, parent=parent, active_processes=members,
            total_user_time_us=None if user_ns is None else user_ns / 1000,
            total_kernel_time_us=None if sys_ns is None else sys_ns / 1000,
            limits=limits, native=native)


def _hard_cap(quota: int | None, period: int, ncpu: int) -> int | None:
    """A CFS quota as JOBOBJECT_CPU_RATE_CONTROL's hard cap: hundredths of a percent
    of the whole machine (10000 = every CPU), at least 1."""
    if quota is None or quota <= 0 or period <= 0:
        return None
    return max(1, min(10000, round(quota / period / max(ncpu, 1) * 10000)))

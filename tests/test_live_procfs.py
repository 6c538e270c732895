"""The Linux source on a /proc this test writes itself: the cases a live machine will
not produce on demand (recycled PIDs, unreadable processes, odd names, real-time
policies, a kernel without schedstat, threads replaced between samples)."""

from __future__ import annotations

import errno
import os

import pytest

from core.live.cgroups import CgroupReader
from core.live.linux import LinuxSource, wait_reason_for


def stat_line(pid, comm, state="S", *, ppid=1, utime=0, stime=0, nice=0, threads=1,
              start=100, cpu=0, rt=0, policy=0, flags=0, exit_status=0) -> str:
    """A /proc/PID/stat line: pid, (comm), then fields 3..52 of proc(5)."""
    f = ["0"] * 50
    f[0], f[1], f[6] = state, str(ppid), str(flags)
    f[11], f[12] = str(utime), str(stime)
    f[15], f[16], f[17], f[19] = str(20 + nice), str(nice), str(threads), str(start)
    f[36], f[37], f[38], f[49] = str(cpu), str(rt), str(policy), str(exit_status)
    return f"{pid} ({comm}) " + " ".join(f) + "\n"


class FakeProc:
    """Writes /proc-shaped files under a directory."""

    def __init__(self, root):
        self.root = root
        (root / "stat").write_text("cpu  10 0 10 80 0 0 0 0 0 0\n"
                                   "cpu0 5 0 5 40 0 0 0 0 0 0\ncpu1 5 0 5 40 0 0 0 0 0 0\n"
                                   "intr 0\nbtime 1700000000\n")

    def process(self, pid, comm, threads=None, *, state="S", start=100, **kw):
        """`threads`: {tid: dict(comm=, state=, wchan=, sched=(run_ns, delay, count), ...)}"""
        threads = threads if threads is not None else {pid: {}}
        d = self.root / str(pid)
        (d / "task").mkdir(parents=True, exist_ok=True)
        (d / "stat").write_text(stat_line(pid, comm, state, threads=len(threads),
                                          start=start, **kw))
        (d / "cmdline").write_bytes(comm.encode() + b"\0--flag\0")
        (d / "comm").write_text(comm + "\n")
        (d / "cgroup").write_text("0::/\n")
        for tid, t in threads.items():
            self.thread(pid, tid, start=start, **t)
        return d

    def thread(self, pid, tid, *, comm="t", state="S", wchan="0", sched=(1000, 10, 3),
               voluntary=2, involuntary=1, cpus="0-1", start=100, schedstat=True, **kw):
        d = self.root / str(pid) / "task" / str(tid)
        d.mkdir(parents=True, exist_ok=True)
        (d / "stat").write_text(stat_line(tid, comm, state, start=start, **kw))
        if schedstat:
            (d / "schedstat").write_text("%d %d %d\n" % sched)
        (d / "status").write_text(f"Name:\t{comm}\nCpus_allowed_list:\t{cpus}\n"
                                  f"voluntary_ctxt_switches:\t{voluntary}\n"
                                  f"nonvoluntary_ctxt_switches:\t{involuntary}\n")
        (d / "wchan").write_text(wchan)

    def remove(self, *parts):
        path = self.root.joinpath(*map(str, parts))
        for p in sorted(path.rglob("*"), key=lambda p: len(p.parts), reverse=True):
            p.rmdir() if p.is_dir() else p.unlink()
        path.rmdir()


@pytest.fixture
def fake(tmp_path):
    return FakeProc(tmp_path)


def source(fake, **kw) -> LinuxSource:
    return LinuxSource(str(fake.root), cgroups=CgroupReader(hierarchies=[]), **kw)


def by_path(fake) -> LinuxSource:
    """A source that keeps no file open. A kept /proc file fails once its task is gone;
    a kept file of this fake would still read, so tests that remove tasks read by path
    (where the start-time check is what tells a recycled id)."""
    return source(fake, max_open_files=0)


def test_names_with_spaces_and_parentheses(fake):
    fake.process(10, "a) b (c", {10: {"comm": "x) (y"}})
    with source(fake) as s:
        p = s.sample().find(10)
    assert p.name == "a) b (c" and p.threads[0].name == "x) (y"
    assert p.native["cmdline"] == "a) b (c --flag"


def test_states_wait_reasons_and_switches(fake):
    fake.process(20, "app", {
        20: {"comm": "main", "state": "S", "wchan": "futex_wait_queue"},
        21: {"comm": "poll", "state": "S", "wchan": "ep_poll"},
        22: {"comm": "disk", "state": "D", "wchan": "0"},
        23: {"comm": "run", "state": "R", "cpu": 1},
        24: {"comm": "stop", "state": "T", "wchan": "do_signal_stop"},
        25: {"comm": "odd", "state": "S", "wchan": "some_driver_wait.isra.0"},
    })
    with source(fake) as s:
        threads = {t.name: t for t in s.sample().find(20).threads}
        pending = s.pending()
    got = {n: (t.state, t.wait_reason) for n, t in threads.items()}
    assert got == {"main": ("Waiting", "UserRequest"), "poll": ("Waiting", "WrQueue"),
                   "disk": ("Waiting", "Executive"), "run": ("Running", ""),
                   "stop": ("Waiting", "Suspended"), "odd": ("Waiting", "UserRequest")}
    assert threads["run"].cpu == 1
    assert threads["main"].context_switches == 3  # schedstat's count of times run
    assert threads["main"].native["voluntary_switches"] == 2
    assert threads["main"].native["involuntary_switches"] == 1
    assert threads["main"].run_time_ns == 1000 and threads["main"].native["run_delay_ns"] == 10
    assert threads["main"].affinity == (0, 1)
    # Not this PID namespace: affinity comes from status, so a first read reads it all.
    assert pending == 0 and not any("pending" in t.native for t in threads.values())


def test_affinity_leaves_out_cpus_that_are_not_online(fake):
    """status lists the CPUs a thread is allowed, online or not (a VM's possible CPUs);
    sched_getaffinity, and KOI, give those online: the ones /proc/stat lists."""
    fake.process(30, "app", {30: {"cpus": "0-63"}, 31: {"cpus": "1,5-7"}})
    with source(fake) as s:
        threads = {t.tid: t for t in s.sample().find(30).threads}
    assert threads[30].affinity == (0, 1) and threads[31].affinity == (1,)


def test_switch_counts_with_lines_after_them(fake):
    """Newer kernels print lines after the switch counts (x86_Thread_features ...)."""
    fake.process(40, "app")
    status = fake.root / "40" / "task" / "40" / "status"
    status.write_text(status.read_text() + "x86_Thread_features:\t\nuntag_mask:\t0x0\n")
    fake.process(41, "old")
    status = fake.root / "41" / "task" / "41" / "status"
    status.write_text("Name:\told\nCpus_allowed_list:\t0\nvoluntary_ctxt_switches:\t9\n")
    with source(fake) as s:
        snap = s.sample()
    [t40], [t41] = snap.find(40).threads, snap.find(41).threads
    assert (t40.native["voluntary_switches"], t40.native["involuntary_switches"]) == (2, 1)
    assert (t41.native["voluntary_switches"], t41.native["involuntary_switches"]) == (9, None)


def test_wait_reason_fallbacks():
    assert wait_reason_for("S", "hrtimer_nanosleep") == "DelayExecution"
    assert wait_reason_for("S", "__x64_sys_pause") == "UserRequest"
    assert wait_reason_for("S", "poll_schedule_timeout.constprop.0") == "UserRequest"
    assert wait_reason_for("S", None) == "UserRequest"
    assert wait_reason_for("S", None, kernel_thread=True) == "Executive"
    assert wait_reason_for("D", "unknown_fn") == "Executive"
    assert wait_reason_for("I", "worker_thread", kernel_thread=True) == "WrQueue"
    assert wait_reason_for("t", "ptrace_stop") == "Suspended"
    assert wait_reason_for("R", "anything") == ""


def test_real_time_and_idle_policies(fake):
    fake.process(30, "rt", {30: {"policy": 1, "rt": 99}, 31: {"policy": 2, "rt": 1},
                            32: {"policy": 5}, 33: {"nice": -20}, 34: {"nice": 19}},
                 policy=1, rt=99)
    with source(fake) as s:
        p = s.sample().find(30)
    assert [t.priority for t in p.threads] == [31, 16, 1, 15, 1]
    assert p.priority_class == "realtime" and p.base_priority == 24
    assert p.threads[0].native["policy"] == "SCHED_FIFO"


def test_recycled_pid_is_a_new_process(fake):
    fake.process(40, "old", {40: {"utime": 500, "sched": (5_000_000_000, 0, 50)}},
                 start=100, utime=500)
    with by_path(fake) as s:
        first = s.sample().find(40)
        fake.remove(40)
        fake.process(40, "new", {40: {"utime": 1, "sched": (10_000_000, 0, 1)}},
                     start=900, utime=1)
        snap = s.sample()
    second = snap.find(40)
    assert first.key != second.key and second.name == "new"
    assert second.threads[0].key == (40, 900)
    # the old process's 5 s of CPU are never subtracted from the new one's
    assert all(v >= 0 for v in snap.thread_cpu_percent.values())
    assert second.key not in snap.process_cpu_percent or \
        snap.process_cpu_percent[second.key] >= 0


def test_thread_replaced_between_samples_is_seen(fake):
    fake.process(50, "app", {50: {}, 51: {"comm": "a"}})
    with by_path(fake) as s:
        assert [t.tid for t in s.sample().find(50).threads] == [50, 51]
        fake.remove(50, "task", 51)  # same count, another thread
        fake.thread(50, 52, comm="b")
        p = s.sample().find(50)
        assert [t.tid for t in p.threads] == [50, 52]
        assert s.tracked() == (1, 2)


def test_vanished_process_and_thread_are_skipped(fake):
    fake.process(60, "ok", {60: {}, 61: {}}, )
    (fake.root / "61000").mkdir()  # listed, but gone before its stat is read
    fake.remove(60, "task", 61)    # listed in the count, gone from the task directory
    (fake.root / "60" / "task" / "61").mkdir()  # ... or present with no files
    with source(fake) as s:
        snap = s.sample()
    assert [p.pid for p in snap.processes] == [60]
    assert [t.tid for t in snap.find(60).threads] == [60]
    assert snap.skipped["vanished"] == 2


def test_unreadable_process_is_listed_with_what_could_be_read(fake, monkeypatch):
    fake.process(70, "secret")
    fake.process(71, "open")
    real_open = os.open
    denied = str(fake.root / "70" / "stat")

    def guarded(path, *a, **kw):
        if str(path) == denied:
            raise PermissionError(errno.EACCES, "Permission denied", path)
        return real_open(path, *a, **kw)

    monkeypatch.setattr("core.live.linux.os.open", guarded)
    with source(fake) as s:
        snap = s.sample()
    p = snap.find(70)
    assert p is not None and not p.readable and p.name == "secret" and p.threads == ()
    assert snap.find(71).readable
    assert snap.skipped["denied"] == 1


def test_zombie_leader_with_a_live_thread(fake):
    fake.process(80, "half", {80: {"state": "Z", "exit_status": 0},
                              81: {"state": "S", "comm": "last"}}, state="Z")
    # the count excludes the dead leader: the task directory is listed anyway
    (fake.root / "80" / "stat").write_text(stat_line(80, "half", "Z", threads=1))
    with source(fake) as s:
        p = s.sample().find(80)
    assert [t.tid for t in p.threads] == [80, 81]
    assert p.exited and p.threads[0].state == "Terminated"
    assert p.threads[1].state == "Waiting"


def test_killed_zombie_reports_the_signal(fake):
    fake.process(85, "killed", {85: {"state": "Z", "exit_status": 9}}, state="Z",
                 exit_status=9)
    with source(fake) as s:
        p = s.sample().find(85)
    assert p.exited and p.exit_code == -9


def test_kernel_without_schedstat_counts_switches_from_status(fake):
    fake.process(90, "old", {90: {"schedstat": False, "voluntary": 7, "involuntary": 5}})
    with source(fake) as s:
        t = s.sample().find(90).threads[0]
    assert t.context_switches == 12 and t.run_time_ns is None


def test_kernel_thread_flag(fake):
    fake.process(2, "kthreadd", {2: {"flags": 0x00200000, "wchan": "kthreadd"}},
                 flags=0x00200000, ppid=0)
    with source(fake) as s:
        p = s.sample().find(2)
    assert p.native["kernel_thread"] and p.native["cmdline"] is None
    assert p.threads[0].wait_reason == "WrQueue"


def test_files_kept_open_are_bounded_and_released(fake):
    for pid in range(100, 130):
        fake.process(pid, f"p{pid}", {pid: {"state": "R"}})
    with source(fake, max_open_files=10) as s:
        s.sample()
        s.sample()
        assert s.open_files() <= 10
        snap = s.sample()
        assert len(snap.processes) == 30
    assert s.open_files() == 0


def test_not_a_proc_directory(tmp_path):
    from core.live import LiveError
    with pytest.raises(LiveError, match="not a Linux /proc"):
        LinuxSource(str(tmp_path))

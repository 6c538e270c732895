"""The Linux /proc source against real processes this test starts itself: a child whose
named threads sleep, spin, block on a pipe and wait on a lock; a stopped child; a
zombie; and 500 short-lived processes started and killed while a sampler runs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading

import pytest

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux") or
                                not os.path.isfile("/proc/self/stat"),
                                reason="needs a Linux /proc")

from core.live import Sampler, to_json_document, to_view_state  # noqa: E402
from core.live.linux import CLK_TCK, LinuxSource  # noqa: E402

# Each thread names itself (prctl PR_SET_NAME sets the comm /proc shows), then does
# one thing forever; "ready" is printed once all of them run.
CHILD = r"""
import ctypes, os, sys, threading, time
libc = ctypes.CDLL(None)
def named(name, work):
    def run():
        libc.prctl(15, name.encode(), 0, 0, 0)
        started.release()
        work()
    return run
started = threading.Semaphore(0)
r, w = os.pipe()
lock = threading.Lock(); lock.acquire()
def spin():
    while True:
        pass
jobs = [("sleeper", lambda: time.sleep(1000)), ("spinner", spin),
        ("piper", lambda: os.read(r, 1)), ("locker", lock.acquire)]
for name, work in jobs:
    threading.Thread(target=named(name, work), daemon=True).start()
for _ in jobs:
    started.acquire()
time.sleep(0.05)  # let each thread reach its wait
print("ready", flush=True)
sys.stdin.read()
"""

EXPECTED = {  # thread name -> (state, wait reason)
    "sleeper": ("Waiting", "DelayExecution"),
    "spinner": ("Running", ""),
    "piper": ("Waiting", "Executive"),
    "locker": ("Waiting", "UserRequest"),
}


@pytest.fixture(scope="module")
def children():
    worker = subprocess.Popen([sys.executable, "-c", CHILD], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    stopped = subprocess.Popen(["sleep", "300"])
    zombie = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
    try:
        assert worker.stdout.readline().strip() == "ready"
        os.kill(stopped.pid, signal.SIGSTOP)
        _wait_for_state(stopped.pid, "T")
        _wait_for_state(zombie.pid, "Z")  # exited; not reaped while the Popen is held
        yield {"worker": worker.pid, "stopped": stopped.pid, "zombie": zombie.pid}
    finally:
        worker.kill()
        os.kill(stopped.pid, signal.SIGKILL)
        for p in (worker, stopped, zombie):
            p.wait()
        worker.stdin.close()
        worker.stdout.close()


def _wait_for_state(pid: int, letter: str) -> None:
    """Block until /proc says `pid` is in state `letter` (a waitid-free, sleep-free poll
    bounded by an Event timeout)."""
    idle = threading.Event()
    for _ in range(500):
        with open(f"/proc/{pid}/stat") as f:
            if f.read().rsplit(")", 1)[1].split()[0] == letter:
                return
        idle.wait(0.01)
    raise AssertionError(f"pid {pid} never reached state {letter}")


@pytest.fixture(scope="module")
def sampled(children):
    with LinuxSource() as source:
        first = source.sample()
        threading.Event().wait(0.3)  # an interval for the CPU figures
        second = source.sample()
        yield first, second, source


def test_children_appear_with_their_parent_and_threads(sampled, children):
    _, snap, _ = sampled
    me = os.getpid()
    worker = snap.find(children["worker"])
    assert worker is not None and worker.ppid == me
    assert worker.name == os.path.basename(sys.executable)[:15]  # comm: 15 characters
    assert len(worker.threads) == 5  # main + the four named threads
    assert snap.find(children["stopped"]).ppid == me
    assert snap.find(children["zombie"]).ppid == me


def test_thread_states_and_wait_reasons(sampled, children):
    _, snap, _ = sampled
    by_name = {t.name: t for t in snap.find(children["worker"]).threads}
    for name, (state, reason) in EXPECTED.items():
        t = by_name[name]
        assert (t.state, t.wait_reason) == (state, reason), (name, t.native)
    assert by_name["sleeper"].native["wchan"] is None or \
        "nanosleep" in by_name["sleeper"].native["wchan"]
    assert by_name["spinner"].native["state"] == "R"
    assert all(t.exit_code == 259 for t in by_name.values())  # STILL_ACTIVE


def test_stopped_process_is_suspended(sampled, children):
    _, snap, _ = sampled
    p = snap.find(children["stopped"])
    [t] = p.threads
    assert (t.state, t.wait_reason, t.native["state"]) == ("Waiting", "Suspended", "T")
    from inspector.cli_live import process_state
    assert process_state(p) == "Suspended"


def test_zombie_is_exited_with_its_exit_code(sampled, children):
    _, snap, _ = sampled
    p = snap.find(children["zombie"])
    assert p.exited and p.exit_code == 3 and p.native["state"] == "Z"
    assert all(t.state == "Terminated" for t in p.threads)


def test_identity_is_pid_and_start_time(sampled, children):
    _, snap, _ = sampled
    pid = children["worker"]
    with open(f"/proc/{pid}/stat") as f:
        start = int(f.read().rsplit(")", 1)[1].split()[19])
    p = snap.find(pid)
    assert p.key == (pid, start)
    assert p.create_time_us == pytest.approx(start / CLK_TCK * 1e6)
    assert all(t.key[0] == t.tid for t in p.threads)


def test_spinning_thread_has_cpu_and_the_who_ran_strip_sees_it(sampled, children):
    _, snap, _ = sampled
    spinner = next(t for t in snap.find(children["worker"]).threads if t.name == "spinner")
    assert snap.thread_cpu_percent[spinner.key] > 1.0
    assert snap.process_cpu_percent[snap.find(children["worker"]).key] >= \
        snap.thread_cpu_percent[spinner.key] * 0.99
    assert any((children["worker"], spinner.tid) == (pid, tid)
               for ran in snap.who_ran for pid, tid, _ in ran)
    assert len(snap.cpu_usage) == snap.cpus
    assert all(0.0 <= u.busy_percent <= 100.0 for u in snap.cpu_usage)


def _switch_counts(pid: int, tid: int) -> tuple[int, int]:
    with open(f"/proc/{pid}/task/{tid}/status") as f:
        fields = dict(line.split(":", 1) for line in f if ":" in line)
    return (int(fields["voluntary_ctxt_switches"]),
            int(fields["nonvoluntary_ctxt_switches"]))


def test_unchanged_records_are_shared_between_samples(children):
    stopped = children["stopped"]
    with LinuxSource(full_every=3) as source:
        source.sample()
        for _ in range(3):  # its switch split is read on its turn in the rotation
            settled = source.sample().find(stopped)
        assert "pending" not in settled.threads[0].native
        assert source.sample().find(stopped) is settled  # it cannot have run


def test_first_sample_leaves_the_switch_split_pending_until_the_rotation(children):
    """A first sample reads no thread's status: the switch total is schedstat's, the
    voluntary/involuntary split is marked pending, then read within full_every
    samples, with the counts the kernel has."""
    stopped = children["stopped"]
    with LinuxSource(full_every=3) as source:
        first = source.sample()
        [t] = first.find(stopped).threads
        if t.run_time_ns is None:
            pytest.skip("a kernel without schedstat: status is read at once")
        assert t.native["pending"] == ("voluntary_switches", "involuntary_switches")
        assert t.native["voluntary_switches"] is None
        assert t.native["involuntary_switches"] is None
        assert t.context_switches is not None and t.context_switches > 0
        pending = {t.key for p in first.processes for t in p.threads if "pending" in t.native}
        assert source.pending() == len(pending) > 0
        for _ in range(3):
            snap = source.sample()
    # Threads that started since the first sample may still be pending; none of the first's.
    assert not any("pending" in t.native for p in snap.processes for t in p.threads
                   if t.key in pending)
    [t] = snap.find(stopped).threads
    voluntary, involuntary = _switch_counts(stopped, t.tid)  # stopped: they cannot move
    assert (t.native["voluntary_switches"], t.native["involuntary_switches"]) == \
        (voluntary, involuntary)


def test_with_full_every_1_the_second_sample_reads_what_the_first_left(children):
    stopped = children["stopped"]
    with LinuxSource(full_every=1) as source:
        [first] = source.sample().find(stopped).threads
        [second] = source.sample().find(stopped).threads
    if first.run_time_ns is None:
        pytest.skip("a kernel without schedstat: status is read at once")
    assert "pending" in first.native and "pending" not in second.native
    assert (second.native["voluntary_switches"], second.native["involuntary_switches"]) \
        == _switch_counts(stopped, second.tid)


def test_without_deferral_the_first_sample_has_the_split(children):
    stopped = children["stopped"]
    with LinuxSource(defer_split=False) as source:
        snap = source.sample()
        assert source.pending() == 0
    assert not any("pending" in t.native for p in snap.processes for t in p.threads)
    [t] = snap.find(stopped).threads
    assert (t.native["voluntary_switches"], t.native["involuntary_switches"]) == \
        _switch_counts(stopped, t.tid)


def test_affinity_is_the_cpus_a_thread_may_run_on(children):
    """From sched_getaffinity on a first read, from status once the thread has run."""
    pid = children["worker"]
    cpus = sorted(os.sched_getaffinity(0))
    with LinuxSource() as source:
        [spinner] = [t for t in source.sample().find(pid).threads if t.name == "spinner"]
        assert spinner.affinity == tuple(sorted(os.sched_getaffinity(spinner.tid)))
        os.sched_setaffinity(spinner.tid, {cpus[-1]})
        try:
            threading.Event().wait(0.05)  # it runs, so its status is read again
            [again] = [t for t in source.sample().find(pid).threads if t.tid == spinner.tid]
        finally:
            os.sched_setaffinity(spinner.tid, set(cpus))
    assert again.affinity == (cpus[-1],)


def test_priorities_follow_nice(sampled, children):
    _, snap, _ = sampled
    p = snap.find(children["worker"])
    assert p.priority_class == "normal" and p.base_priority == 8
    assert {t.priority for t in p.threads} == {8}  # nice 0, SCHED_OTHER


def test_renice_of_a_sleeping_thread_shows_within_the_rotation(children):
    pid = children["stopped"]
    with LinuxSource(full_every=2) as source:
        before = source.sample().find(pid)
        os.setpriority(os.PRIO_PROCESS, pid, 10)
        try:
            later = [source.sample().find(pid) for _ in range(2)]
        finally:
            os.setpriority(os.PRIO_PROCESS, pid, 0)
    assert before.threads[0].priority == 8
    assert later[-1].threads[0].native["nice"] == 10
    assert later[-1].threads[0].priority == 5 and later[-1].priority_class == "below_normal"


def test_a_process_whose_clock_has_not_moved_has_no_schedstat_read(children, monkeypatch):
    """On its rotation turn a stopped process (its CPU clock cannot move) has its
    threads' parameters checked, but not their schedstats: none of them ran."""
    pid = children["stopped"]
    with LinuxSource(full_every=2) as source:
        source.sample()
        [rec] = [r for r in source._tasks.values() if r.pid == pid]
        kept = rec.sched_fd
        reads = []
        real_pread = os.pread
        monkeypatch.setattr(os, "pread", lambda fd, n, at: reads.append(fd) or
                            real_pread(fd, n, at))
        for _ in range(2):  # one of them is its turn
            [t] = source.sample().find(pid).threads
    assert kept >= 0 and kept not in reads
    assert t is rec.info and "pending" not in t.native  # its turn came, and read the split


def test_kernel_threads_are_marked(sampled):
    _, snap, _ = sampled
    kthreadd = snap.find(2)
    if kthreadd is None or kthreadd.name != "kthreadd":
        pytest.skip("no kernel threads visible here (a container's /proc)")
    assert kthreadd.native["kernel_thread"] and kthreadd.native["cmdline"] is None
    workers = [p for p in snap.processes if p.ppid == 2]
    assert workers and all(p.native["kernel_thread"] for p in workers)


def test_projections_of_a_real_sample(sampled, children):
    _, snap, _ = sampled
    doc = to_json_document(snap)
    worker = next(p for p in doc["processes"] if p["pid"] == children["worker"])
    assert worker["ppid"] == os.getpid() and len(worker["threads"]) == 5
    view = to_view_state(snap)
    vp = next(p for p in view["processes"] if p["pid"] == children["worker"])
    assert vp["parent_pid"] == os.getpid()
    assert {t["state"] for t in vp["threads"]} == {"Running", "Waiting"}


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_churn_of_500_processes_while_sampling():
    """500 processes started and killed under a 100ms sampler: no error, and afterwards
    no state or file kept for any of them."""
    fds_before = _open_fds()
    source = LinuxSource()
    errors: list[BaseException] = []
    seen_pids: set[int] = set()
    got = threading.Event()

    def on_snapshot(snap) -> None:
        seen_pids.update(p.pid for p in snap.processes)
        got.set()

    sampler = Sampler(source, 0.1, history=20, callback=on_snapshot, on_error=errors.append)
    sampler.start()
    started: list[int] = []
    try:
        for batch in range(10):
            procs = [subprocess.Popen(["sleep", "30"]) for _ in range(50)]
            started += [p.pid for p in procs]
            got.clear()
            got.wait(2)  # let a sample see some of them alive
            for p in procs:
                p.kill()
            for p in procs:
                p.wait()
    finally:
        sampler.stop()
    assert not sampler.running
    assert errors == [] and sampler.errors == 0
    assert sampler.samples >= 10 and len(sampler.history) <= 20
    assert seen_pids & set(started), "the sampler never saw a churned process"
    final = source.sample()
    alive = {p.pid for p in final.processes}
    assert not alive & set(started)
    procs_tracked, threads_tracked = source.tracked()
    assert procs_tracked == len(final.processes)
    assert threads_tracked == final.thread_count()
    assert _open_fds() == fds_before + source.open_files() + 0
    source.close()
    assert source.open_files() == 0 and _open_fds() == fds_before

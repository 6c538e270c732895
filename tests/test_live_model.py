"""core.live's data model: the NT priority mapping, deltas between samples, the two
projections (formats.md section 6, and Machine.state()'s shape), the bounded history
and the background sampler."""

from __future__ import annotations

import threading

import pytest

from core.kernel import Machine
from core.live import (
    CpuTimes,
    History,
    ProcessInfo,
    Sampler,
    Snapshot,
    ThreadInfo,
    ViewStateBuilder,
    apply_deltas,
    lifecycle_events,
    nt_priority,
    nt_priority_class,
    to_json_document,
    to_view_state,
)


@pytest.mark.parametrize("policy, nice, rt, expected", [
    (0, 0, 0, 8), (0, -20, 0, 15), (0, 19, 0, 1), (0, -15, 0, 13), (0, -5, 0, 10),
    (0, 5, 0, 6), (0, 10, 0, 5), (3, 0, 0, 8),          # BATCH is time-shared too
    (5, 0, 0, 1),                                        # IDLE
    (1, 0, 1, 16), (1, 0, 99, 31), (2, 0, 50, 24),       # FIFO / RR
    (6, 0, 0, 31),                                       # DEADLINE
    (None, 0, 0, None),
])
def test_nt_priority(policy, nice, rt, expected):
    assert nt_priority(policy, nice, rt) == expected


def test_nt_priority_stays_in_range():
    assert all(1 <= nt_priority(0, n, 0) <= 15 for n in range(-20, 20))
    assert all(16 <= nt_priority(1, 0, r) <= 31 for r in range(1, 100))


@pytest.mark.parametrize("policy, nice, expected", [
    (0, -20, "high"), (0, -10, "above_normal"), (0, 0, "normal"), (0, 4, "normal"),
    (0, 5, "below_normal"), (0, 19, "idle"), (5, 0, "idle"), (1, 0, "realtime"),
    (6, 0, "realtime"),
])
def test_nt_priority_class(policy, nice, expected):
    assert nt_priority_class(policy, nice) == expected


# ---- snapshots made by hand -----------------------------------------------------------------

def thread(tid, pid, run_ns, *, start=1, cpu=0, switches=0, created_us=1.0):
    return ThreadInfo(tid=tid, pid=pid, start_stamp=start, name=f"t{tid}", state="Waiting",
                      wait_reason="UserRequest", priority=8, base_priority=8,
                      user_time_s=run_ns / 2e9, kernel_time_s=run_ns / 2e9, run_time_ns=run_ns,
                      context_switches=switches, cpu=cpu, affinity=(0, 1),
                      create_time=1.7e9, create_time_us=created_us, exit_code=259,
                      native={"state": "S"})


def process(pid, threads, *, start=1, total_ns=None, created_us=1.0):
    total = sum(t.run_time_ns for t in threads) if total_ns is None else total_ns
    return ProcessInfo(pid=pid, start_stamp=start, ppid=1, name=f"p{pid}", create_time=1.7e9,
                       create_time_us=created_us, user_time_s=total / 2e9,
                       kernel_time_s=total / 2e9, priority_class="normal", base_priority=8,
                       exit_code=259, affinity=(0, 1), jobs=("/app.slice",),
                       threads=tuple(threads), native={"state": "S"})


def snapshot(processes, *, at, cpu_busy=(0.0, 0.0)):
    cpus = [CpuTimes(cpu=c, user_s=busy, kernel_s=0.0, idle_s=at - busy)
            for c, busy in enumerate(cpu_busy)]
    return Snapshot(host="linux", source="test", wall_time=1.7e9 + at, uptime_s=at,
                    monotonic=at, cpus=len(cpus), processes=processes, cpu_times=cpus,
                    skipped={"vanished": 0, "denied": 0})


def test_records_are_read_only_and_keyed_by_id_and_start():
    """Sources share an unchanged record between snapshots, so none may be changed."""
    t = thread(7, 5, 10, start=42)
    p = process(5, [t], start=40)
    assert (t.key, p.key) == ((7, 42), (5, 40))
    with pytest.raises(AttributeError):
        t.state = "Running"
    with pytest.raises(AttributeError):
        p.threads = ()
    with pytest.raises(TypeError):
        ThreadInfo(tid=1, pid=1, start_stamp=1).native["x"] = 1  # the default is shared
    assert t._replace(state="Running").state == "Running" and t.state == "Waiting"


def test_deltas_give_cpu_percent_of_the_whole_machine():
    idle = thread(11, 10, 5_000_000)
    busy_before = thread(12, 10, 1_000_000_000, cpu=1, switches=10)
    before = snapshot([process(10, [idle, busy_before])], at=100.0, cpu_busy=(10.0, 20.0))
    busy_after = thread(12, 10, 1_500_000_000, cpu=1, switches=25)  # 0.5 s of CPU in 1 s
    after = snapshot([process(10, [idle, busy_after])], at=101.0, cpu_busy=(10.0, 20.5))
    apply_deltas(before, after)
    assert after.interval_s == pytest.approx(1.0)
    assert after.thread_cpu_percent == {(12, 1): pytest.approx(25.0)}  # 0.5 of 2 CPUs
    assert after.process_cpu_percent == {(10, 1): pytest.approx(25.0)}
    assert after.thread_switch_delta == {(12, 1): 15}
    assert after.who_ran == [[], [(10, 12, pytest.approx(25.0))]]
    assert [u.busy_percent for u in after.cpu_usage] == [pytest.approx(0.0),
                                                         pytest.approx(50.0)]


def test_a_thread_born_during_the_interval_counts_all_its_time():
    before = snapshot([process(10, [thread(11, 10, 0)])], at=100.0)
    born = thread(13, 10, 200_000_000, created_us=100.5e6)
    after = snapshot([process(10, [thread(11, 10, 0), born])], at=101.0)
    apply_deltas(before, after)
    assert after.thread_cpu_percent[(13, 1)] == pytest.approx(10.0)


def test_an_old_thread_seen_for_the_first_time_gets_no_figure():
    before = snapshot([process(10, [thread(11, 10, 0)])], at=100.0)
    found = thread(14, 10, 50_000_000_000, created_us=5e6)  # started long before
    after = snapshot([process(10, [thread(11, 10, 0), found])], at=101.0)
    apply_deltas(before, after)
    assert (14, 1) not in after.thread_cpu_percent


def test_a_recycled_pid_is_never_compared_with_its_predecessor():
    before = snapshot([process(10, [thread(10, 10, 9_000_000_000)], start=1)], at=100.0)
    reborn = process(10, [thread(10, 10, 1_000, start=7)], start=7, created_us=5e6)
    after = snapshot([reborn], at=101.0)
    apply_deltas(before, after)
    assert after.thread_cpu_percent == {} and after.process_cpu_percent == {}


def test_a_process_keeps_the_time_of_threads_that_ended():
    before = snapshot([process(10, [thread(10, 10, 0), thread(11, 10, 0)])], at=100.0)
    # thread 11 ran 0.4 s and ended: only the process total still holds it
    after = snapshot([process(10, [thread(10, 10, 0)], total_ns=400_000_000)], at=101.0)
    apply_deltas(before, after)
    assert after.process_cpu_percent[(10, 1)] == pytest.approx(20.0)


def test_a_process_total_in_coarse_ticks_does_not_inflate_its_threads():
    before = snapshot([process(10, [thread(10, 10, 0)], total_ns=0)], at=100.0)
    # 5 ms of precise thread time; the process total moved a whole 10 ms tick
    after = snapshot([process(10, [thread(10, 10, 5_000_000)], total_ns=10_000_000)],
                     at=101.0)
    apply_deltas(before, after)
    assert after.process_cpu_percent[(10, 1)] == pytest.approx(0.25)


def _exited(p, code):
    return p._replace(exited=True, exit_code=code)


def test_lifecycle_events_between_two_samples():
    """What came and went, as formats.md events, dated as well as sampling allows."""
    stays = process(4, [thread(40, 4, 0), thread(41, 4, 0)])
    goes = process(8, [thread(80, 8, 0)])
    zombie = process(12, [thread(120, 12, 0)])
    first = snapshot([stays, goes, zombie], at=10.0)
    assert lifecycle_events(None, first) == []  # a first sample is not a birth of everything
    born = process(16, [thread(160, 16, 0, created_us=10.4e6)], created_us=10.4e6)
    old_unread = process(20, [thread(200, 20, 0)], created_us=1.0)  # there all along
    new_thread = thread(42, 4, 0, created_us=10.7e6)
    stays2 = stays._replace(threads=(stays.threads[0], new_thread))  # 41 ended, 42 began
    second = snapshot([stays2, _exited(zombie, 3), born, old_unread], at=11.0)
    events = lifecycle_events(first, second)
    assert [(e["type"], e.get("pid"), e.get("tid"), e["time_us"]) for e in events] == [
        ("process_create", 16, None, 10.4e6), ("thread_create", 16, 160, 10.4e6),
        ("thread_create", 4, 42, 10.7e6),
        ("thread_exit", 4, 41, 11e6),
        ("process_exit", 12, None, 11e6),
        ("thread_exit", 8, 80, 11e6), ("process_exit", 8, None, 11e6),
    ]
    by_type = {(e["type"], e["pid"]): e for e in events}
    assert by_type[("process_exit", 12)]["exit_code"] == 3  # the zombie still had it
    assert by_type[("process_exit", 8)]["exit_code"] is None  # reaped before it was seen
    assert by_type[("process_create", 16)]["parent_pid"] == 1
    assert all(e["sampled"] is True for e in events)
    # the zombie reaped by the next sample: its exit is not told twice
    third = snapshot([stays2, born, old_unread], at=12.0)
    assert lifecycle_events(second, third) == []
    # a source's snapshots carry them, as their other per-interval figures
    assert apply_deltas(first, second).events == events and first.events is None


def test_a_reused_pid_is_an_exit_and_a_creation():
    before = snapshot([process(8, [thread(8, 8, 0)], start=100)], at=5.0)
    again = process(8, [thread(8, 8, 0, start=480, created_us=5.2e6)], start=480,
                    created_us=5.2e6)
    events = lifecycle_events(before, snapshot([again], at=6.0))
    assert [(e["type"], e["time_us"]) for e in events] == [
        ("process_create", 5.2e6), ("thread_create", 5.2e6),
        ("thread_exit", 6e6), ("process_exit", 6e6)]


def test_a_process_that_becomes_readable_has_not_exited():
    """One the OS refused to show (hidepid) is keyed (pid, 0) until it can be read."""
    hidden = ProcessInfo(pid=8, start_stamp=0, name="secret", readable=False)
    before = snapshot([hidden], at=5.0)
    shown = process(8, [thread(8, 8, 0, start=40)], start=40)  # there all along
    assert lifecycle_events(before, snapshot([shown], at=6.0)) == []


def test_a_creation_dated_a_tick_before_the_previous_sample_is_still_new():
    """Linux dates a start in 10 ms clock ticks, so a process begun just after a sample
    can carry a time just before it: its event is dated at that sample, keeping order."""
    before = snapshot([], at=5.0)
    p = process(8, [thread(8, 8, 0, created_us=4.995e6)], created_us=4.995e6)
    events = lifecycle_events(before, snapshot([p], at=6.0))
    assert [(e["type"], e["time_us"]) for e in events] == [
        ("process_create", 5e6), ("thread_create", 5e6)]


def test_first_sample_has_no_interval_figures():
    snap = apply_deltas(None, snapshot([process(10, [thread(10, 10, 5)])], at=1.0))
    assert snap.interval_s is None and snap.cpu_usage is None and snap.who_ran is None


# ---- projections ------------------------------------------------------------------------------

SECTION_6_TOP = {"time", "host", "cpus", "processes"}
SECTION_6_PROCESS = {"pid", "ppid", "name", "create_time", "user_time_s", "kernel_time_s",
                     "threads"}
SECTION_6_THREAD = {"tid", "state", "priority", "cpu", "user_time_s", "kernel_time_s",
                    "context_switches"}


def test_json_document_has_exactly_the_contract_keys():
    unreadable = ProcessInfo(pid=99, start_stamp=0, name="secret", readable=False)
    snap = snapshot([process(10, [thread(10, 10, 2_000_000_000, cpu=1, switches=100)]),
                     unreadable], at=1.0)
    doc = to_json_document(snap)
    assert set(doc) == SECTION_6_TOP
    assert doc["time"].endswith("Z") and doc["host"] == "linux" and doc["cpus"] == 2
    assert all(set(p) == SECTION_6_PROCESS for p in doc["processes"])
    t = doc["processes"][0]["threads"][0]
    assert set(t) == SECTION_6_THREAD
    assert t == {"tid": 10, "state": "Waiting", "priority": 8, "cpu": 1,
                 "user_time_s": 1.0, "kernel_time_s": 1.0, "context_switches": 100}
    assert doc["processes"][1] == {"pid": 99, "ppid": None, "name": "secret",
                                   "create_time": None, "user_time_s": None,
                                   "kernel_time_s": None, "threads": []}


def test_view_state_has_the_shape_of_machine_state():
    sim = Machine(cpus=1).state()
    sim_process_keys = set(sim["processes"][0])
    sim_thread_keys = set(sim["processes"][0]["threads"][0])
    view = to_view_state(snapshot([process(10, [thread(10, 10, 5)])], at=2.0))
    assert set(sim) <= set(view)
    assert sim_process_keys <= set(view["processes"][0])
    assert sim_thread_keys <= set(view["processes"][0]["threads"][0])
    t = view["processes"][0]["threads"][0]
    assert t["ideal_cpu"] is None and t["fiber"] is None and t["suspend_count"] is None
    assert t["native"] == {"state": "S"}
    assert view["time_us"] == 2_000_000.0 and view["who_ran_is_sampled"] is True


def test_view_state_builder_reuses_unchanged_views():
    a = thread(10, 10, 5)
    steady = process(20, [thread(20, 20, 7)])
    first = snapshot([process(10, [a]), steady], at=1.0)
    builder = ViewStateBuilder()
    v1 = builder.build(first)
    changed = process(10, [a, thread(11, 10, 3)])
    v2 = builder.build(snapshot([changed, steady], at=2.0))
    assert v2["processes"][1] is v1["processes"][1]                   # same record
    assert v2["processes"][0]["threads"][0] is v1["processes"][0]["threads"][0]
    assert v2 == to_view_state(snapshot([changed, steady], at=2.0))  # same content


# ---- history and sampler ----------------------------------------------------------------------

def test_history_is_bounded_and_gives_series():
    history = History(maxlen=5)
    prev = None
    for i in range(12):
        snap = snapshot([process(10, [thread(10, 10, i * 100_000_000)])], at=float(i),
                        cpu_busy=(i * 0.5, 0.0))
        apply_deltas(prev, snap)
        history.append(snap)
        prev = snap
    assert len(history) == 5
    times, busy = history.cpu_series(0)
    assert list(times) == [7.0, 8.0, 9.0, 10.0, 11.0]
    assert list(busy) == pytest.approx([50.0] * 5)
    times, pct = history.process_series((10, 1))
    assert list(pct) == pytest.approx([5.0] * 5)
    assert history.who_ran_strip(0) == [(float(t), 10, 10) for t in range(7, 12)]


class CountingSource:
    """A source whose samples are made up, to drive the Sampler."""

    def __init__(self, fail_on=()):
        self.calls = 0
        self.fail_on = set(fail_on)

    def sample(self):
        self.calls += 1
        if self.calls in self.fail_on:
            raise OSError("transient")
        return snapshot([process(10, [thread(10, 10, self.calls)])], at=float(self.calls))


def test_sampler_calls_back_on_its_thread_and_stops_cleanly():
    got, threads = [], set()
    enough = threading.Event()

    def on_snapshot(snap):
        got.append(snap)
        threads.add(threading.current_thread().name)
        if len(got) >= 3:
            enough.set()

    sampler = Sampler(CountingSource(), 0.1, history=2, callback=on_snapshot)
    sampler.start()
    assert enough.wait(5)
    sampler.stop()
    assert not sampler.running
    calls = sampler.samples
    assert threads == {"koi-live-sampler"}
    assert len(sampler.history) == 2 and sampler.latest is got[-1]
    assert sampler.cpu_seconds >= 0.0
    assert sampler.samples == calls  # the thread is joined: nothing after stop


def test_sampler_reports_errors_and_keeps_going():
    errors = []
    recovered = threading.Event()
    sampler = Sampler(CountingSource(fail_on={2}), 0.1, on_error=errors.append,
                      callback=lambda s: recovered.set() if errors else None)
    with sampler:
        assert recovered.wait(5)
    assert len(errors) == 1 and isinstance(errors[0], OSError) and sampler.errors == 1


def test_sampler_refuses_intervals_below_100ms():
    with pytest.raises(ValueError, match="100ms"):
        Sampler(CountingSource(), 0.05)

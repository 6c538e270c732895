"""Unit tests of core.kernel, one or more per dispatcher rule (nt-facts.md §)."""

from __future__ import annotations

import pytest

from core.kernel import (
    CSV_HEADER,
    KernelError,
    Machine,
    ProgramLivelock,
    WAIT_ABANDONED,
    WAIT_OBJECT_0,
    WAIT_TIMEOUT,
    decode_priority_separation,
    ms,
    quantum_table,
    sec,
    us,
)
from core.kernel import program as P
from core.kernel.constants import CYCLES_PER_NS, STILL_ACTIVE, cycles_to_us_text
from core.kernel.trace import BYTES_PER_SWITCH

T = 15.625  # ms per tick


def sw(m):
    return [(r[0] / CYCLES_PER_NS / 1e6, r[1], r[3], r[8]) for r in m.trace.rows()]


def busy(m, proc, name=None, priority="normal", **kw):
    return m.create_thread(proc, priority, program=[P.cpu(sec(100))], name=name, **kw)


# ---- §2.3-2.6 quantum tables ----------------------------------------------------------
@pytest.mark.parametrize("value,fg,bg", [
    (0x26, 18, 6), (0x25, 12, 6), (0x24, 6, 6), (0x28, 18, 18), (0x29, 18, 18), (0x2A, 18, 18),
    (0x18, 36, 36), (0x19, 36, 36), (0x1A, 36, 36), (0x14, 12, 12), (0x15, 24, 12),
    (0x16, 36, 12), (0x2, 18, 6), (0x3, 18, 6),
])
def test_priority_separation_worked_values(value, fg, bg):
    table, sep = quantum_table(value)
    assert (table[sep], table[0]) == (fg, bg)


def test_priority_separation_decode_and_server_defaults():
    assert decode_priority_separation(0x2) == (False, True, 2)
    assert decode_priority_separation(0x18) == (True, False, 0)
    assert decode_priority_separation(0x0, server=True) == (True, False, 0)
    assert decode_priority_separation(0x3F) == (False, True, 2)
    with pytest.raises(ValueError):
        decode_priority_separation(0x40)
    assert Machine(win32_priority_separation=0x18).quantum_units == (36, 36, 36)


def test_foreground_quantum_stretching():
    m = Machine(cpus=1)
    fg = m.create_process("fg", foreground=True)
    bg = m.create_process("bg")
    a = busy(m, fg, "A")
    b = busy(m, bg, "B")
    m.run_until(ms(200))
    times = [s[0] for s in sw(m)]
    assert times[:3] == [0.0, 93.75, 125.0]  # 18 units foreground, 6 background
    assert sw(m)[1][3] == b.tid and sw(m)[2][3] == a.tid


def test_priority_separation_change_takes_effect_at_next_reload():
    m = Machine(cpus=1)
    p = m.create_process("p")
    a, b = busy(m, p, "A"), busy(m, p, "B")
    m.at(ms(10), m.set_priority_separation, 0x18)  # 36 units for everyone
    m.run_until(ms(300))
    times = [s[0] for s in sw(m)]
    # B still holds the quantum it was created with; A reloads 36 units at 62.5
    assert times[:4] == [0.0, 31.25, 62.5, 62.5 + 187.5]


# ---- §3.2-3.4 preemption and queue position -------------------------------------------
def test_equal_priority_never_preempts_strictly_higher_does():
    m = Machine(cpus=1)
    p = m.create_process("p")
    a = busy(m, p, "A")
    m.run_until(ms(1))
    b = busy(m, p, "B")
    m.run_until(ms(2))
    assert m.running[0] is a and b.state_name == "Ready"
    c = busy(m, p, "C", "above_normal")
    assert c.state_name == "Standby"
    m.run_until(ms(2))
    assert m.running[0] is c
    assert list(m.queues[0][8]) == [a, b]  # preempted A at the head


def test_standby_displaced_by_higher_goes_to_head():
    m = Machine(cpus=1)
    p = m.create_process("p")
    a = busy(m, p, "A")
    m.run_until(ms(1))
    x = busy(m, p, "X", "lowest")  # queued
    b = busy(m, p, "B", "above_normal")  # standby over A
    c = busy(m, p, "C", "highest")  # displaces B from standby
    assert c.state_name == "Standby" and b.state_name == "Ready"
    m.run_until(ms(1))
    assert m.running[0] is c
    assert list(m.queues[0][9]) == [b] and list(m.queues[0][8]) == [a]
    assert x.priority == 6



def test_a_thread_queued_behind_a_withdrawn_standby_preempts():
    # C takes the standby slot over A and B queues behind it; when C drops below A,
    # B still outranks A and must not wait for A's quantum to end (§3.2)
    m = Machine(cpus=1)
    p = m.create_process("p")
    a = busy(m, p, "A")
    m.run_until(ms(1))
    c = busy(m, p, "C", "highest")
    b = busy(m, p, "B", "above_normal")
    assert c.state_name == "Standby" and b.state_name == "Ready"
    m.set_thread_priority(c, "lowest")
    assert b.state_name == "Standby" and c.state_name == "Ready"
    m.run_until(ms(2))
    assert m.running[0] is b and a.state_name == "Ready"

# ---- §3.9 processor selection -------------------------------------------------------
def test_processor_selection_prefers_idle_ideal_then_previous():
    m = Machine(cpus=4)
    p = m.create_process("p")
    t = m.create_thread(p, program=[P.cpu(ms(1)), P.sleep(ms(1)), P.cpu(ms(1))], ideal_cpu=2)
    m.run_until(ms(0.5))
    assert t.cpu == 2
    m.set_ideal_processor(t, 3)
    blocker = m.create_thread(p, program=[P.cpu(sec(1))], ideal_cpu=3)
    m.run_until(ms(20))
    assert blocker.cpu == 3
    assert t.cpu == 2  # ideal 3 busy -> previous processor 2, idle


def test_no_idle_cpu_queues_on_ideal_or_preempts_lower_there():
    m = Machine(cpus=2)
    p = m.create_process("p")
    a = busy(m, p, "A", ideal_cpu=0)
    b = busy(m, p, "B", "lowest", ideal_cpu=1)
    m.run_until(ms(1))
    c = busy(m, p, "C", ideal_cpu=1)  # 8 > 6 on its ideal CPU 1: preempts B
    m.run_until(ms(1))
    assert m.running[1] is c and list(m.queues[1][6]) == [b]
    d = busy(m, p, "D", ideal_cpu=0)  # equal to A: queued on CPU 0
    assert list(m.queues[0][8]) == [d]
    assert m.running[0] is a


def test_affinity_always_honoured_and_must_be_subset():
    m = Machine(cpus=4)
    p = m.create_process("p", affinity=[1, 2])
    t = busy(m, p, "T", affinity=[2])
    u = busy(m, p, "U", affinity=[2])
    m.run_until(ms(100))
    assert t.cpu == 2 and u.cpu == 2 and not (m.idle_mask >> 2) & 1
    with pytest.raises(KernelError):
        busy(m, p, "V", affinity=[0])
    assert m.set_thread_affinity(t, [3]) == 0
    assert m.set_thread_affinity(t, [1]) == 1 << 2
    m.run_until(ms(101))
    assert t.cpu == 1
    m.check_invariants()


def test_idle_cpu_steals_ready_thread_queued_elsewhere():
    m = Machine(cpus=2)
    p = m.create_process("p")
    a = m.create_thread(p, program=[P.cpu(ms(10))], ideal_cpu=0)
    b = m.create_thread(p, program=[P.cpu(ms(50))], ideal_cpu=1)
    c = m.create_thread(p, program=[P.cpu(ms(50))], ideal_cpu=0)
    m.run_until(ms(11))
    assert m.running[0] is c  # A exits; CPU 0 takes C from its own queue
    m.run_until(ms(70))
    assert c.state_name == "Terminated" and b.state_name == "Terminated"


# ---- §3.11, §3.12 yield and Sleep(0) ----------------------------------------------------
def test_switch_to_thread_yields_only_on_current_cpu():
    m = Machine(cpus=2)
    p = m.create_process("p")
    y = m.create_thread(p, program=[P.cpu(ms(1)), P.yield_(), P.cpu(ms(1))], ideal_cpu=0,
                        affinity=[0])
    m.run_until(ms(1.5))
    assert y.last_result == 0  # nothing ready: no switch, continues
    m2 = Machine(cpus=2)
    p2 = m2.create_process("p")
    y2 = m2.create_thread(p2, program=[P.cpu(ms(1)), P.yield_(), P.cpu(ms(1))], ideal_cpu=0)
    low = m2.create_thread(p2, "idle", program=[P.cpu(ms(5))], affinity=[0])
    m2.create_thread(p2, program=[P.cpu(sec(1))], affinity=[1])
    m2.run_until(ms(1))
    assert y2.last_result == 1 and m2.running[0] is low  # any priority, same CPU
    assert y2.state_name == "Ready" and y2.where == 0  # never migrates
    rows = list(m2.trace.rows())
    assert rows[-1][5:7] == ("Ready", "WrYieldExecution")


@pytest.mark.parametrize("mode,switched", [("any", True), ("equal_or_higher", False)])
def test_sleep0_semantics_setting(mode, switched):
    m = Machine(cpus=1, sleep0=mode)
    p = m.create_process("p")
    s = m.create_thread(p, program=[P.cpu(ms(1)), P.sleep(0), P.cpu(ms(10))])
    low = busy(m, p, "low", "lowest")
    m.run_until(ms(1))
    assert (m.running[0] is low) == switched


def test_sleep_wakes_at_tick_granularity():
    m = Machine(cpus=1)
    p = m.create_process("p")
    t = m.create_thread(p, program=[P.sleep(ms(1)), P.cpu(ms(1)), P.sleep(ms(16)), P.cpu(1)])
    m.run_until(ms(100))
    times = [s[0] for s in sw(m)]
    # 16 ms after 16.625 ms is 32.625 ms: the wait ends at tick 3
    assert times == [0.0, 0.0, T, T + 1, 3 * T, pytest.approx(3 * T + 1e-6)]
    rows = list(m.trace.rows())
    assert rows[1][5:7] == ("Waiting", "DelayExecution")


# ---- §2.7, §3.5 priority and quantum ---------------------------------------------------
def test_set_priority_on_ready_thread_requeues_at_tail():
    m = Machine(cpus=1)
    p = m.create_process("p")
    a = busy(m, p, "A", "highest")
    b, c = busy(m, p, "B", "above_normal"), busy(m, p, "C")
    m.run_until(ms(1))
    m.set_thread_priority(c, "above_normal")
    assert list(m.queues[0][9]) == [b, c]
    m.set_thread_priority(b, "highest")  # 10 == running A: queued, no preemption
    m.run_until(ms(1))
    assert m.running[0] is a and list(m.queues[0][10]) == [b]


def test_priority_class_change_recomputes_bases():
    m = Machine(cpus=1)
    p = m.create_process("p")
    t = busy(m, p, "T", "highest")
    assert m.set_priority_class(p, "high")
    assert t.base == 15 and t.priority == 15
    assert m.set_priority_class(p, "idle") and t.base == 6
    assert not m.set_priority_class(p, "bogus")


def test_foreground_wake_boost_decrement_vanishes_at_quantum_end():
    m = Machine(cpus=1)
    fg = m.create_process("fg", foreground=True)
    t = m.create_thread(fg, program=[P.io("disk", ms(10)), P.cpu(sec(1))])
    m.run_until(ms(10))
    m.dispatch()
    assert t.priority == 8 + 1 + 2 and t.decrement == 2
    m.run_until(ms(10 + 93.75 + 1))
    assert t.priority == 8  # PriorityDecrement + 1 removed at once (§2.7)


def test_boost_only_if_higher_and_from_base():
    m = Machine(cpus=1)
    p = m.create_process("p")
    ev = m.create_event("e", "synchronization")
    t = m.create_thread(p, program=[P.io("keyboard", ms(1)), P.cpu(ms(40)), P.wait(ev),
                                    P.cpu(sec(1))])
    m.run_until(ms(1))
    m.dispatch()
    assert t.priority == 14
    m.run_until(ms(41))  # one quantum end (13) then it waits
    assert t.priority == 13
    m.set_event(ev)  # 8 + 1 = 9 < 13: no change
    m.dispatch()
    assert t.priority == 13


def test_classic_wait_quantum_decrement():
    m = Machine(cpus=1, wait_quantum="classic")
    p = m.create_process("p", disable_boost=True)
    t = m.create_thread(p, program=[P.cpu(ms(1)), P.io("disk", ms(1)), P.cpu(sec(1))])
    m.run_until(ms(2))
    m.dispatch()
    m.cpu_times()
    assert t.quantum == 6 * m.unit - ms(1) * CYCLES_PER_NS - m.unit
    mv = Machine(cpus=1)
    pv = mv.create_process("p", disable_boost=True)
    tv = mv.create_thread(pv, program=[P.cpu(ms(1)), P.io("disk", ms(1)), P.cpu(sec(1))])
    mv.run_until(ms(2))
    mv.dispatch()
    mv.cpu_times()
    assert tv.quantum == 6 * mv.unit - ms(1) * CYCLES_PER_NS


def test_starvation_scan_limits_and_resume_point():
    m = Machine(cpus=1)
    p = m.create_process("p")
    busy(m, p, "A")
    starving = [busy(m, p, f"S{i}", "below_normal") for i in range(12)]
    boosts = []
    m.subscribe(lambda e: e["type"] == "priority" and e["reason"] == "starvation"
                and boosts.append((e["time_us"], e["tid"])))
    m.run_until(sec(6))
    at5 = [tid for t, tid in boosts if t == 5e6]
    at6 = [tid for t, tid in boosts if t == 6e6]
    assert at5 == [s.tid for s in starving[:10]]  # at most 10 boosted per pass
    assert at6 == [s.tid for s in starving[10:]]


# ---- §8.5 suspend / resume, exits ----------------------------------------------------
def test_suspend_running_thread_and_resume():
    m = Machine(cpus=1)
    p = m.create_process("p")
    a, b = busy(m, p, "A"), busy(m, p, "B")
    m.run_until(ms(5))
    assert m.suspend_thread(a) == 0 and m.suspend_thread(a) == 1
    m.run_until(ms(5))
    assert m.running[0] is b and (a.state_name, a.wait_reason_name) == ("Waiting", "Suspended")
    assert m.resume_thread(a) == 2 and a.state_name == "Waiting"
    assert m.resume_thread(a) == 1 and a.state_name == "Ready"
    assert m.resume_thread(a) == 0


def test_suspended_waiter_stays_suspended_after_wait_completes():
    m = Machine(cpus=1)
    p = m.create_process("p")
    t = m.create_thread(p, program=[P.sleep(ms(10)), P.cpu(ms(1))])
    m.run_until(ms(1))
    m.suspend_thread(t)
    m.run_until(ms(40))
    assert (t.state_name, t.wait_reason_name) == ("Waiting", "Suspended")
    m.resume_thread(t)
    m.run_until(ms(50))
    assert t.state_name == "Terminated"


def test_terminate_process_and_exit_codes():
    m = Machine(cpus=2)
    p = m.create_process("p")
    t1, t2 = busy(m, p, "A"), busy(m, p, "B")
    waiter_p = m.create_process("w")
    w = m.create_thread(waiter_p, program=[P.wait(p), P.wait(t1), P.exit_thread(5)])
    m.run_until(ms(10))
    assert m.get_exit_code_process(p) == STILL_ACTIVE == m.get_exit_code_thread(t1)
    assert m.terminate_process(p, 42)
    m.run_until(ms(11))
    assert p.exit_code == 42 and t1.exit_code == t2.exit_code == 42
    assert w.exit_code == 5 and waiter_p.exit_code == 5
    assert not m.terminate_process(p, 1)


def test_ids_are_multiples_of_four_after_system():
    m = Machine(cpus=2, system_threads=2)
    assert [t.tid for t in m.system_process.threads] == [8, 12]
    p = m.create_process("p")
    t = busy(m, p)
    assert (p.pid, t.tid) == (16, 20)
    snap = m.snapshot()
    assert [q["pid"] for q in snap["processes"]][:2] == [0, 4]
    assert [th["tid"] for th in snap["processes"][0]["threads"]] == [0, 0]
    sys_threads = snap["processes"][1]["threads"]
    m.run_until(ms(1))
    assert m.snapshot()["processes"][1]["threads"][0]["wait_reason"] == "WrQueue"
    assert sys_threads[0]["base_priority"] == 13


# ---- §6 dispatcher objects --------------------------------------------------------------
def _waiters(m, p, obj, n, timeout=None, then=()):
    return [m.create_thread(p, program=[P.wait(obj, timeout), *then], name=f"w{i}")
            for i in range(n)]


def test_synchronization_event_releases_one_waiter_fifo():
    m = Machine(cpus=1)
    p = m.create_process("p")
    ev = m.create_event("e", "synchronization")
    ws = _waiters(m, p, ev, 3, then=[P.cpu(ms(1))])
    m.run_until(ms(1))
    m.set_event(ev)
    m.run_until(ms(3))
    assert [w.state_name for w in ws] == ["Terminated", "Waiting", "Waiting"]
    assert not ev.signaled
    m.set_event(ev)
    m.set_event(ev)
    m.run_until(ms(10))
    assert all(w.state_name == "Terminated" for w in ws) and not ev.signaled
    m.set_event(ev)
    assert ev.signaled  # no waiter: stays set


def test_notification_event_and_pulse():
    m = Machine(cpus=1)
    p = m.create_process("p")
    ev = m.create_event("e", "notification")
    _waiters(m, p, m.create_event("never"), 1)  # keeps the process alive
    ws = _waiters(m, p, ev, 3)
    m.run_until(ms(1))
    m.pulse_event(ev)
    assert not ev.signaled
    m.run_until(ms(2))
    assert all(w.state_name == "Terminated" for w in ws)
    ws2 = _waiters(m, p, ev, 2)
    m.run_until(ms(3))
    m.set_event(ev)
    m.reset_event(ev)
    m.run_until(ms(4))
    assert all(w.state_name == "Terminated" for w in ws2) and not ev.signaled


def test_semaphore_counts_and_too_many_posts():
    m = Machine(cpus=1)
    errors = []
    m.subscribe(lambda e: e["type"] == "api_error" and errors.append(e))
    p = m.create_process("p")
    sem = m.create_semaphore("s", 0, 3)
    ws = _waiters(m, p, sem, 3)
    m.run_until(ms(1))
    assert m.release_semaphore(sem, 2) == 0
    m.run_until(ms(2))
    assert [w.state_name for w in ws] == ["Terminated", "Terminated", "Waiting"]
    assert m.release_semaphore(sem, 4) is None and sem.count == 0
    assert errors[-1]["error"] == "ERROR_TOO_MANY_POSTS" and errors[-1]["code"] == 298
    assert m.release_semaphore(sem, 3) == 0
    m.run_until(ms(3))
    assert sem.count == 2 and ws[2].state_name == "Terminated"


def test_mutex_recursion_not_owner_and_abandonment():
    m = Machine(cpus=2)
    errors = []
    m.subscribe(lambda e: e["type"] == "api_error" and errors.append(e))
    p = m.create_process("p")
    mx = m.create_mutex("m")
    owner = m.create_thread(p, program=[P.wait(mx), P.wait(mx), P.release_mutex(mx),
                                        P.cpu(ms(5)), P.exit_thread(9)], name="owner")
    other = m.create_thread(p, program=[P.release_mutex(mx), P.wait(mx), P.cpu(ms(1))],
                            name="other")
    m.run_until(ms(1))
    assert mx.owner is owner and mx.recursion == 1
    assert errors[0]["error"] == "ERROR_NOT_OWNER" and errors[0]["code"] == 288
    assert other.state_name == "Waiting"
    m.run_until(ms(20))
    assert owner.exit_code == 9
    assert other.last_result == WAIT_ABANDONED and other.state_name == "Terminated"
    assert mx.owner is None and mx.signaled  # other exited owning it: abandoned again
    assert mx.abandoned


def test_wait_timeout_at_tick_and_immediate():
    m = Machine(cpus=1)
    p = m.create_process("p")
    ev = m.create_event("e")
    t = m.create_thread(p, program=[P.wait(ev, 0), P.cpu(ms(1)), P.wait(ev, ms(20)),
                                    P.cpu(ms(1))])
    m.run_until(ms(1))
    assert t.last_result == WAIT_TIMEOUT
    m.run_until(ms(31.25))
    assert t.last_result == WAIT_TIMEOUT and t.state_name == "Running"  # 21 ms -> tick 2
    assert sw(m)[-1][0] == 31.25
    ev.signaled = True
    assert m.create_thread(p, program=[P.wait(ev), P.exit_thread(WAIT_OBJECT_0 + 1)])


# ---- programs ---------------------------------------------------------------------------
def test_kcpu_counts_kernel_time_and_repeat():
    m = Machine(cpus=1)
    p = m.create_process("p")
    t = m.create_thread(p, program=[P.cpu(ms(1)), P.kcpu(ms(2)), P.repeat()])
    m.run_until(ms(30))
    m.cpu_times()
    assert t.user == ms(10) * CYCLES_PER_NS and t.kernel == ms(20) * CYCLES_PER_NS


def test_livelocked_program_is_reported():
    m = Machine(cpus=1)
    p = m.create_process("p")
    ev = m.create_event("e", signaled=True)
    m.create_thread(p, program=[P.wait(ev), P.repeat()])
    with pytest.raises(ProgramLivelock):
        m.run_until(ms(1))


# ---- outputs ----------------------------------------------------------------------------
def test_csv_format():
    assert cycles_to_us_text(ms(41.25) * CYCLES_PER_NS) == "41250.000"
    assert cycles_to_us_text(15_625_000) == "5208.333"
    m = Machine(cpus=1)
    p = m.create_process("p")
    m.create_thread(p, program=[P.cpu(ms(5)), P.sleep(ms(1)), P.cpu(us(1))])
    m.run_until(ms(50))
    lines = m.cswitch_csv().splitlines()
    assert lines[0] == CSV_HEADER
    assert lines[1:] == [
        "0.000,0,0,0,0,Ready,,8,12,8",
        "5000.000,0,8,12,8,Waiting,DelayExecution,0,0,0",
        "15625.000,0,0,0,0,Ready,,8,12,8",
        "15626.000,0,8,12,8,Terminated,,0,0,0",
    ]
    assert BYTES_PER_SWITCH <= 64
    assert m.trace.nbytes() > 0


def test_events_out():
    m = Machine(cpus=1)
    events = []
    m.subscribe(events.append)
    p = m.create_process("p")
    t = m.create_thread(p, program=[P.cpu(ms(1))], name="T")
    m.run_until(ms(2))
    assert [e["type"] for e in events] == ["process_create", "thread_create", "thread_exit",
                                           "process_exit"]
    assert events[-1] == {"time_us": 1000.0, "type": "process_exit", "pid": p.pid,
                          "name": "p", "exit_code": 0}
    assert events[1] == {"time_us": 0.0, "type": "thread_create", "pid": p.pid, "tid": t.tid,
                         "name": "T"}


def test_snapshot_fields():
    m = Machine(cpus=2)
    p = m.create_process("app.exe")
    m.create_thread(p, program=[P.cpu(ms(10)), P.wait(m.create_event("e"))], name="A",
                    affinity=[0])
    m.run_until(ms(20))
    snap = m.snapshot()
    assert snap["time_us"] == 20000.0 and snap["jobs"] == []
    app = snap["processes"][2]
    assert app["name"] == "app.exe" and app["exit_code"] == 259 and app["priority_class"] == "normal"
    th = app["threads"][0]
    assert th == {"tid": 12, "name": "A", "state": "Waiting", "wait_reason": "UserRequest",
                  "priority": 8, "base_priority": 8, "user_time_us": 10000.0,
                  "kernel_time_us": 0.0, "context_switches": 1, "ideal_cpu": 0, "affinity": [0],
                  "suspend_count": 0, "fiber": None}


def test_deterministic():
    def run():
        m = Machine(cpus=3)
        ev = m.create_event("e", "synchronization")
        for i in range(4):
            p = m.create_process(f"p{i}")
            m.create_thread(p, program=[P.cpu(ms(3)), P.set_event(ev), P.sleep(ms(2)),
                                        P.repeat()])
            m.create_thread(p, program=[P.wait(ev), P.io("disk", ms(4)), P.cpu(ms(7)),
                                        P.repeat()])
        m.run_until(sec(2))
        return m.cswitch_csv()

    assert run() == run()


def test_trace_columns_since_matches_the_tail_while_running():
    import numpy as np

    m = Machine(cpus=2)
    p = m.create_process("a")
    for _ in range(3):
        m.create_thread(p, program=[P.cpu(ms(5)), P.sleep(ms(1)), P.repeat()])
    seen = 0
    for step in range(1, 5):
        m.run_until(ms(300 * step))
        new = m.trace.columns_since(seen)  # a frame takes only what is new
        seen += len(new["time"])
        full = m.trace.columns()
        assert all(np.array_equal(new[k], full[k][len(full[k]) - len(new[k]):]) for k in full)
    assert seen == len(m.trace) > 100

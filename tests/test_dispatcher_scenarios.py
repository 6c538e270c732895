"""Worked scenarios of /work/shared/reference/scenarios.md as exact tests of core.kernel."""

from __future__ import annotations

import pytest

from core.kernel import KernelError, Machine, ms, sec
from core.kernel import program as P
from core.kernel.constants import CYCLES_PER_NS, STILL_ACTIVE

TABLE = {  # §1.5, rows: class; columns: IDLE, LOWEST, BELOW, NORMAL, ABOVE, HIGHEST, TIME_CRITICAL
    "idle": (1, 2, 3, 4, 5, 6, 15),
    "below_normal": (1, 4, 5, 6, 7, 8, 15),
    "normal": (1, 6, 7, 8, 9, 10, 15),
    "above_normal": (1, 8, 9, 10, 11, 12, 15),
    "high": (1, 11, 12, 13, 14, 15, 15),
    "realtime": (16, 22, 23, 24, 25, 26, 31),
}
LEVELS = ("idle", "lowest", "below_normal", "normal", "above_normal", "highest", "time_critical")


def switches(m):
    """(time_ms, old_tid, new_tid) for every context switch."""
    return [(r[0] / CYCLES_PER_NS / 1e6, r[3], r[8]) for r in m.trace.rows()]


def cpu_bound(m, proc, name, priority="normal", **kw):
    return m.create_thread(proc, priority, program=[P.cpu(sec(100))], name=name, **kw)


# ---- S01 -------------------------------------------------------------------------------
@pytest.mark.parametrize("cls", list(TABLE))
@pytest.mark.parametrize("level", range(7))
def test_s01_base_priority_table(cls, level):
    m = Machine()
    p = m.create_process("p", cls)
    t = m.create_thread(p, "normal", program=[P.cpu(ms(1))])
    assert m.set_thread_priority(t, LEVELS[level])
    assert t.base == TABLE[cls][level]
    t2 = m.create_thread(p, LEVELS[level], program=[P.cpu(ms(1))])
    assert t2.base == TABLE[cls][level] == t2.priority


def test_s01_realtime_extras_and_rejection():
    m = Machine()
    rt = m.create_process("rt", "realtime")
    t = m.create_thread(rt, program=[P.cpu(ms(1))])
    for rel, base in zip((-7, -6, -5, -4, -3, 3, 4, 5, 6), (17, 18, 19, 20, 21, 27, 28, 29, 30)):
        assert m.set_thread_priority(t, rel)
        assert t.base == base
    errors = []
    m.subscribe(errors.append)
    for cls in ("idle", "below_normal", "normal", "above_normal", "high"):
        p = m.create_process(cls, cls)
        u = m.create_thread(p, program=[P.cpu(ms(1))])
        for rel in (-7, -6, -5, -4, -3, 3, 4, 5, 6):
            assert not m.set_thread_priority(u, rel)
            assert u.base == TABLE[cls][3]
        with pytest.raises(KernelError):
            m.create_thread(p, -5)
    assert {e["error"] for e in errors if e["type"] == "api_error"} == {"ERROR_INVALID_PARAMETER"}
    assert errors[-1]["code"] == 87


def test_s01_class_inheritance():
    m = Machine()
    idle_parent = m.create_process("ip", "idle")
    child = m.create_process("c1", parent=idle_parent)
    assert child.priority_class == "idle"
    assert m.create_thread(child, program=[P.cpu(1)]).base == 4
    bn = m.create_process("bn", "below_normal")
    assert m.create_process("c2", parent=bn).priority_class == "below_normal"
    high = m.create_process("hp", "high")
    c3 = m.create_process("c3", parent=high)
    assert c3.priority_class == "normal"
    assert m.create_thread(c3, program=[P.cpu(1)]).base == 8
    c4 = m.create_process("c4", "above_normal", parent=idle_parent)
    assert m.create_thread(c4, program=[P.cpu(1)]).base == 10


# ---- S03 -------------------------------------------------------------------------------
def test_s03_round_robin():
    m = Machine(cpus=1)
    p = m.create_process("app")
    a, b, c = (cpu_bound(m, p, n) for n in "ABC")
    m.run_until(ms(300))
    sw = switches(m)
    assert sw[0] == (0.0, 0, a.tid)
    expect = [a.tid, b.tid, c.tid] * 4
    for i, (t, old, new) in enumerate(sw[1:10], start=1):
        assert t == pytest.approx(31.25 * i)
        assert new == expect[i] and old == expect[i - 1]
    rows = list(m.trace.rows())
    assert all(r[5] == "Ready" and r[6] == "WrQuantumEnd" for r in rows[1:])
    assert a.priority == b.priority == c.priority == 8
    m.run_until(ms(93.75 * 3))
    assert a.user == b.user == c.user  # 1/3 each over aligned 93.75 ms windows


# ---- S04 / S05 -------------------------------------------------------------------------
def test_s04_no_switch_with_only_lower_ready():
    m = Machine(cpus=1)
    p = m.create_process("app")
    a = cpu_bound(m, p, "A")
    b = cpu_bound(m, p, "B", "below_normal")
    assert b.base == 7
    m.run_until(ms(4999))
    assert [s[2] for s in switches(m)] == [a.tid]  # only idle -> A
    assert b.user == 0 and b.state_name == "Ready"
    assert a.priority == 8
    m.cpu_times()  # charge the running thread up to now
    # reloaded every 31.25 ms without a switch: 4999 = 159 * 31.25 + 30.25
    assert a.quantum == 6 * m.unit - ms(30.25) * CYCLES_PER_NS


@pytest.mark.parametrize("units", [3, 4])
def test_s05_starvation_boost(units):
    m = Machine(cpus=1, starvation_quantum_units=units)
    p = m.create_process("app")
    a = cpu_bound(m, p, "A")
    b = cpu_bound(m, p, "B", "below_normal")
    prios = []
    m.subscribe(lambda e: e["type"] == "priority" and prios.append((e["time_us"], e["tid"],
                                                                    e["priority"], e["reason"])))
    m.run_until(sec(6))
    sw = switches(m)
    # B is boosted by the balance set manager at 5 s (300 ticks ready), runs one short
    # quantum at 15, then drops straight back to 7 (§4.7, §2.7)
    assert sw[1] == (5000.0, a.tid, b.tid)
    assert sw[2][0] == pytest.approx(5000 + units * 15.625 / 3)
    assert sw[2][1:] == (b.tid, a.tid)
    assert prios[0] == (5_000_000.0, b.tid, 15, "starvation")
    assert prios[1][1:] == (b.tid, 7, "decay")
    assert b.priority == 7 and b.user == units * m.unit
    assert len(sw) == 3


def test_s05_starvation_repeats_after_another_300_ticks():
    m = Machine(cpus=1)
    p = m.create_process("app")
    a = cpu_bound(m, p, "A")
    b = cpu_bound(m, p, "B", "below_normal")
    m.run_until(sec(11))
    boosts = [s[0] for s in switches(m) if s[2] == b.tid]
    assert boosts == [5000.0, 10000.0]


# ---- S06 -------------------------------------------------------------------------------
def _s06(device, **mk):
    m = Machine(cpus=1, **mk)
    p = m.create_process("app")
    t = m.create_thread(p, program=[P.io(device, ms(100)), P.cpu(sec(100))], name="T")
    h = cpu_bound(m, p, "H")
    return m, p, t, h


def test_s06_keyboard_boost_and_decay():
    m, p, t, h = _s06("keyboard")
    prios = []
    m.subscribe(lambda e: e["type"] == "priority" and prios.append(
        (round(e["time_us"] / 1000, 3), e["priority"], e["reason"])))
    m.run_until(ms(400))
    assert prios[0] == (100.0, 14, "boost")
    assert prios[1:7] == [(100 + 31.25 * k, 14 - k, "decay") for k in range(1, 7)]
    sw = switches(m)
    # 0: idle->T, T waits at once -> H; at 100 T preempts H; at 287.5 H (head) runs again
    assert sw[:3] == [(0.0, 0, t.tid), (0.0, t.tid, h.tid), (100.0, h.tid, t.tid)]
    assert sw[3] == (287.5, t.tid, h.tid)
    rows = list(m.trace.rows())
    assert rows[1][5:7] == ("Waiting", "Executive")
    assert rows[2][5:7] == ("Ready", "WrPreempted")
    assert rows[3][5:7] == ("Ready", "WrQuantumEnd") and rows[3][4] == 8


def test_s06_preempted_thread_keeps_remaining_quantum():
    m, p, t, h = _s06("keyboard")
    m.run_until(ms(100))
    m.dispatch()
    # H ran 0..100 with reloads at 31.25/62.5/93.75: 6.25 ms of its slice used
    assert h.state_name == "Ready"
    assert h.quantum == 6 * m.unit - ms(6.25) * CYCLES_PER_NS
    assert m.queues[0][8][0] is h


def test_s06_disk_variant():
    m, p, t, h = _s06("disk")
    m.run_until(ms(200))
    sw = switches(m)
    assert sw[2] == (100.0, h.tid, t.tid)  # 9 > 8 preempts
    assert sw[3] == (131.25, t.tid, h.tid)  # one quantum, back to 8, round robin
    assert t.priority == 8


def test_s06_sound_variant_capped():
    m, p, t, h = _s06("sound")
    m.run_until(ms(100))
    m.dispatch()
    assert t.priority == 15 and m.running[0] is t  # 8 + 8 = 16, capped at 15
    m.run_until(ms(132))
    assert t.priority == 14


# ---- S07 -------------------------------------------------------------------------------
def _wake_with(m, cls, rel, device):
    p = m.create_process(cls, cls)
    t = m.create_thread(p, rel, program=[P.io(device, ms(10)), P.cpu(sec(10))])
    m.run_until(ms(10))
    m.dispatch()
    return t


def test_s07a_high_keyboard_capped_at_15():
    m = Machine()
    t = _wake_with(m, "high", "normal", "keyboard")
    assert t.base == 13 and t.priority == 15


def test_s07b_above_normal_highest_sound():
    m = Machine()
    t = _wake_with(m, "above_normal", "highest", "sound")
    assert t.base == 12 and t.priority == 15


def test_s07c_realtime_never_boosted_but_round_robins():
    m = Machine()
    t = _wake_with(m, "realtime", "normal", "keyboard")
    assert t.priority == 24 and t.quantum == 6 * m.unit  # full reload after the wait
    rt = t.process
    u = m.create_thread(rt, program=[P.cpu(sec(10))])
    m.run_until(ms(10 + 31.25 * 2))
    sw = switches(m)
    assert sw[-2][1:] == (t.tid, u.tid) and sw[-1][1:] == (u.tid, t.tid)
    assert t.priority == u.priority == 24


def test_s07d_time_critical_stays_15():
    m = Machine()
    t = _wake_with(m, "normal", "time_critical", "mouse")
    assert t.base == 15 and t.priority == 15


# ---- S09 -------------------------------------------------------------------------------
@pytest.mark.parametrize("per", ["thread", "process"])
def test_s09_boost_disabled(per):
    m = Machine(cpus=1)
    p = m.create_process("app", disable_boost=(per == "process"))
    t = m.create_thread(p, program=[P.io("keyboard", ms(100)), P.cpu(sec(100))], name="T",
                        disable_boost=(per == "thread"))
    h = cpu_bound(m, p, "H")
    assert m.get_thread_priority_boost(t) is True
    m.run_until(ms(100))
    m.dispatch()
    assert t.priority == 8 and t.state_name == "Ready"
    assert m.running[0] is h
    assert list(m.queues[0][8]) == [t]  # tail of queue 8, no preemption
    assert [s[2] for s in switches(m)][-1] == h.tid


def test_s09_starvation_boost_ignores_disable_boost_by_default():
    m = Machine(cpus=1)
    p = m.create_process("app")
    cpu_bound(m, p, "A")
    b = cpu_bound(m, p, "B", "below_normal", disable_boost=True)
    m.run_until(sec(5))
    m.dispatch()
    assert m.running[0] is b and b.priority == 15
    m2 = Machine(cpus=1, starvation_honours_disable_boost=True)
    p2 = m2.create_process("app")
    cpu_bound(m2, p2, "A")
    b2 = cpu_bound(m2, p2, "B", "below_normal", disable_boost=True)
    m2.run_until(sec(6))
    assert b2.user == 0 and b2.priority == 7


# ---- S12 -------------------------------------------------------------------------------
def _s12():
    m = Machine(cpus=1)
    hp = m.create_process("hi", "high")
    a = m.create_thread(hp, program=[P.cpu(ms(1)), P.set_priority("lowest"), P.cpu(sec(1))],
                        name="A")
    b = m.create_thread(m.create_process("b", "above_normal"), "highest",
                        program=[P.cpu(sec(1))], name="B")
    c = m.create_thread(m.create_process("c", "above_normal"), "above_normal",
                        program=[P.cpu(sec(1))], name="C")
    assert (a.base, b.base, c.base) == (13, 12, 11)
    return m, a, b, c


def test_s12_lowering_running_thread():
    m, a, b, c = _s12()
    m.run_until(ms(1))
    assert a.base == 11
    assert m.running[0] is b
    assert list(m.queues[0][11]) == [c, a]
    row = list(m.trace.rows())[-1]
    assert row[5:7] == ("Ready", "")


def test_s12_variant_equal_keeps_running():
    m = Machine(cpus=1)
    hp = m.create_process("hi", "high")
    a = m.create_thread(hp, program=[P.cpu(ms(1)), P.set_priority("below_normal"),
                                     P.cpu(sec(1))], name="A")
    b = m.create_thread(m.create_process("b", "above_normal"), "highest",
                        program=[P.cpu(sec(1))], name="B")
    m.run_until(ms(2))
    assert a.base == 12 == b.priority
    assert m.running[0] is a


# ---- S24 -------------------------------------------------------------------------------
def test_s24_lifecycle_states_and_suspend():
    m = Machine(cpus=1)
    events = []
    m.subscribe(events.append)
    parent = m.create_process("P")
    c = m.create_process("C", parent=parent)
    ev = m.create_event("ev", "notification")
    t1 = m.create_thread(c, program=[P.sleep(ms(100)), P.wait(ev), P.exit_thread(3)],
                         suspended=True, name="T1")
    assert (t1.state_name, t1.wait_reason_name) == ("Waiting", "Suspended")
    assert m.get_exit_code_process(c) == STILL_ACTIVE
    assert m.resume_thread(t1) == 1
    assert t1.state_name == "Standby"  # picked by the idle CPU, not switched in yet
    m.dispatch()
    m.run_until(ms(1))
    assert (t1.state_name, t1.wait_reason_name) == ("Waiting", "DelayExecution")
    m.run_until(ms(110))
    assert (t1.state_name, t1.wait_reason_name) == ("Waiting", "UserRequest")
    t2 = m.create_thread(c, program=[P.wait(ev), P.exit_thread(7)], name="T2")
    m.run_until(ms(111))
    assert [m.suspend_thread(t2) for _ in range(127)] == list(range(127))
    assert m.suspend_thread(t2) == -1 and t2.suspend_count == 127
    assert events[-1]["type"] == "api_error"
    m.open_handle(t1)
    m.open_handle(c)
    m.set_event(ev)
    m.run_until(ms(120))
    assert t1.state_name == "Terminated" and t1.exit_code == 3
    assert m.get_exit_code_process(c) == STILL_ACTIVE  # T2 still alive (suspended)
    assert (t2.state_name, t2.wait_reason_name) == ("Waiting", "Suspended")
    for i in range(127):
        assert m.resume_thread(t2) == 127 - i
    m.run_until(ms(130))
    assert t2.exit_code == 7 and m.get_exit_code_process(c) == 7 and c.signaled
    kinds = [(e["type"], e.get("exit_code")) for e in events
             if e["type"] in ("thread_exit", "process_exit")]
    assert kinds == [("thread_exit", 3), ("thread_exit", 7), ("process_exit", 7)]
    snap = m.snapshot()
    cs = [p for p in snap["processes"] if p["pid"] == c.pid][0]
    assert cs["exit_code"] == 7
    assert [t["state"] for t in cs["threads"]] == ["Terminated"]  # T1 still referenced
    assert not parent.exited  # a parent is untouched by its child's exit
    m.close_handle(c)
    assert c.pid not in [p["pid"] for p in m.snapshot()["processes"]]

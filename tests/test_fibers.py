"""Fibers, FLS and UMS (nt-facts §7; scenario S23): core/kernel/fibers.py on a real Machine."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.kernel import KernelError, Machine, ProgramLivelock, ms, us
from core.kernel import program as P
from core.kernel.constants import (
    CYCLES_PER_NS,
    ERROR_ALREADY_FIBER,
    ERROR_ALREADY_THREAD,
    ERROR_INVALID_PARAMETER,
    ERROR_NO_MORE_ITEMS,
    ERROR_NOT_SUPPORTED,
)
from core.kernel.fibers import DEFAULT_STACK_RESERVE, FLS_OUT_OF_INDEXES

MB = 1 << 20


def machine(cpus=1, **settings_):
    m = Machine(cpus=cpus)
    for k, v in settings_.items():
        setattr(m, k, v)
    events = []
    m.subscribe(events.append)
    return m, events


def of_type(events, etype):
    return [e for e in events if e["type"] == etype]


def callbacks(events):
    return [(e["slot"], e["index"], e["value"], e["fiber"], e["tid"])
            for e in of_type(events, "fls_callback")]


def errors(events):
    return [(e["op"], e["error"], e.get("tid")) for e in of_type(events, "api_error")]


def thread_row(m, t):
    for p in m.state()["processes"]:
        for row in p["threads"]:
            if row["tid"] == t.tid:
                return row
    raise AssertionError(f"thread {t.tid} not in state()")


def trace(m):
    """(time ms, old tid, old state, old wait reason, new tid, new priority) per switch."""
    return [(r[0] / CYCLES_PER_NS / 1e6, r[3], r[5], r[6], r[8], r[9]) for r in m.trace.rows()]


# ---- S23 ------------------------------------------------------------------------------------
V0, V1, V2 = 0xA0, 0xB1, 0xC2


def test_s23_fibers_are_invisible_to_the_scheduler_and_fls_follows_the_fiber():
    m, events = machine(cpus=1)
    p = m.create_process("app.exe", "above_normal")  # class base 10
    ev, never = m.create_event("ev"), m.create_event("never")
    seen = {}
    box = {}

    def note(key, fn):
        return P.call(lambda: seen.__setitem__(key, fn()))

    def exhaust():
        count = 0
        while m.fls_alloc(box["T"], f"x{count}") != FLS_OUT_OF_INDEXES:
            count += 1
        seen["exhausted"] = (count, m.last_error)

    f1 = [P.fls_set("i", V1), note("get F1", lambda: m.fls_get_value(box["T"], "i")),
          P.cpu(ms(2)), P.fiber_switch("F2"), P.exit_thread(98)]
    f2 = [P.fls_set("i", V2),
          note("in F2", lambda: (m.fls_get_value(box["T"], "i"),
                                 m.get_current_fiber(box["T"]), m.get_fiber_data(box["T"]))),
          P.cpu(ms(20)),
          note("resumed in", lambda: box["T"].fiber.name),
          P.fiber_delete("F1"),
          note("after delete F1", lambda: callbacks(events)),
          P.fls_free("i"),
          note("after free", lambda: callbacks(events)),
          P.call(exhaust),
          P.fiber_delete("F2"),  # itself: ExitThread(1)
          P.exit_thread(97)]
    t = m.create_thread(p, "normal", name="T", program=[
        P.fiber_convert(parameter=0xF0),
        note("is fiber", lambda: m.is_thread_a_fiber(box["T"])),
        P.fiber_convert(),  # second time: NULL, ERROR_ALREADY_FIBER
        note("second convert", lambda: (box["T"].last_result, m.last_error)),
        P.fiber_create("F1", f1, parameter=0x11),
        P.fiber_create("F2", f2, parameter=0x22),
        P.fls_alloc("i"),
        note("index", lambda: box["T"].last_result),
        P.fls_set("i", V0),
        note("get F0", lambda: m.fls_get_value(box["T"], "i")),
        P.cpu(ms(1)),
        P.fiber_switch("F1"),
        P.exit_thread(99)])
    box["T"] = t
    h = m.create_waiting_thread(p, [P.wait(ev), P.cpu(ms(3)), P.fiber_to_thread(), P.wait(never)],
                                "highest", name="H")
    assert (t.base, h.base) == (10, 12)
    m.at(ms(10), m.set_event, ev)
    reset = p.quantum_reset

    m.run_until(us(500))  # F1 and F2 exist but have not run
    assert seen["is fiber"] is True and seen["second convert"] == (None, ERROR_ALREADY_FIBER)
    assert seen["index"] == 1 and seen["get F0"] == V0
    row = thread_row(m, t)
    assert row["fiber"] == "T"
    assert [(f["name"], f["started"], f["current"], f["stack_reserve"], f["fls"])
            for f in row["fibers"]] == [
        ("T", True, True, DEFAULT_STACK_RESERVE, {"i": V0}),
        ("F1", False, False, MB, {}), ("F2", False, False, MB, {})]
    assert "get F1" not in seen

    m.run_until(ms(2))  # inside F1
    row = thread_row(m, t)
    assert (row["fiber"], row["state"], row["priority"], row["tid"], row["context_switches"]) \
        == ("F1", "Running", 10, t.tid, 1)
    assert t.quantum == reset - ms(2) * CYCLES_PER_NS
    assert seen["get F1"] == V1

    m.run_until(ms(5))  # inside F2: still one thread, Running, 10, same countdown
    row = thread_row(m, t)
    assert (row["fiber"], row["state"], row["priority"], row["tid"], row["context_switches"]) \
        == ("F2", "Running", 10, t.tid, 1)
    assert t.quantum == reset - ms(5) * CYCLES_PER_NS
    f2_address = [f["address"] for f in row["fibers"] if f["name"] == "F2"][0]
    assert seen["in F2"] == (V2, f2_address, 0x22)
    assert [(f["name"], f["fls"], f["selected_by"]) for f in row["fibers"]] == [
        ("T", {"i": V0}, None), ("F1", {"i": V1}, None), ("F2", {"i": V2}, t.tid)]

    m.run_until(ms(11))  # H woke while F2 is selected: T preempted to the head of queue 10
    row = thread_row(m, t)
    assert (row["state"], row["fiber"]) == ("Ready", "F2")
    assert m.queues[0][10][0] is t

    m.run_until(ms(14))  # H blocked: T resumes inside F2
    assert thread_row(m, t)["fiber"] == "F2" and thread_row(m, t)["state"] == "Running"
    assert errors(events) == [("fiber_convert", "ERROR_ALREADY_FIBER", t.tid),
                              ("fiber_to_thread", "ERROR_ALREADY_THREAD", h.tid)]

    m.run_until(ms(40))
    assert seen["resumed in"] == "F2"
    assert seen["after delete F1"] == [("i", 1, V1, "F1", t.tid)]  # cb(v1), once
    # FlsFree: cb(v2) and cb(v0) (F0 set one), blocks in first-value order
    assert seen["after free"][1:] == [("i", 1, V0, "T", t.tid), ("i", 1, V2, "F2", t.tid)]
    assert seen["exhausted"] == (127, ERROR_NO_MORE_ITEMS)  # index 0 never handed out
    assert ("fls_alloc", "ERROR_NO_MORE_ITEMS", t.tid) in errors(events)
    assert len(callbacks(events)) == 3  # nothing more ran at the thread's exit
    # DeleteFiber(F2) from F2: T exits with code 1
    assert (t.state_name, t.exit_code) == ("Terminated", 1)
    assert [e["exit_code"] for e in of_type(events, "thread_exit")] == [1]
    assert trace(m) == [
        (0.0, 0, "Ready", "", t.tid, 10),
        (10.0, t.tid, "Ready", "WrPreempted", h.tid, 13),  # H: base 12 + event boost
        (13.0, h.tid, "Waiting", "UserRequest", t.tid, 10),
        (26.0, t.tid, "Terminated", "", 0, 0),  # 1 + 2 + 20 ms of CPU, 3 ms of H
    ]
    assert t.user == ms(23) * CYCLES_PER_NS and t.cswitches == 2


# ---- ConvertThreadToFiber / ConvertFiberToThread (§7.2) --------------------------------------
def test_convert_flags_and_already_fiber():
    m, events = machine()
    p = m.create_process("p")
    t = m.create_thread(p, name="T", program=[P.sleep(ms(100))])
    assert m.convert_thread_to_fiber(t, 5, flags=0x2) is None
    assert m.last_error == ERROR_INVALID_PARAMETER and not m.is_thread_a_fiber(t)
    address = m.convert_thread_to_fiber(t, 5, flags=0x1)  # FIBER_FLAG_FLOAT_SWITCH
    assert address is not None and m.get_current_fiber(t) == address
    assert (m.get_fiber_data(t), t.fiber.name, t.fiber.flags, t.fiber.converted) \
        == (5, "T", 1, True)
    # bad flags are checked first, then "already a fiber" (ReactOS order)
    assert m.convert_thread_to_fiber(t, flags=0x4) is None
    assert m.last_error == ERROR_INVALID_PARAMETER
    assert m.convert_thread_to_fiber(t) is None and m.last_error == ERROR_ALREADY_FIBER
    assert [e[:2] for e in errors(events)] == [
        ("fiber_convert", "ERROR_INVALID_PARAMETER"), ("fiber_convert", "ERROR_INVALID_PARAMETER"),
        ("fiber_convert", "ERROR_ALREADY_FIBER")]


def test_convert_fiber_to_thread_frees_the_fiber_and_keeps_fls():
    m, events = machine()
    p = m.create_process("p")
    t = m.create_thread(p, name="T", program=[P.sleep(ms(100))])
    assert m.convert_fiber_to_thread(t) is False and m.last_error == ERROR_ALREADY_THREAD
    m.fls_alloc(t, "s")
    m.fls_set_value(t, "s", 7)  # before conversion: the thread's own block
    first = m.convert_thread_to_fiber(t)
    assert m.fls_get_value(t, "s") == 7  # the block went to the fiber
    assert m.convert_fiber_to_thread(t) is True
    assert not m.is_thread_a_fiber(t) and m.get_current_fiber(t) is None
    assert m.get_fiber_data(t) is None
    assert thread_row(m, t)["fiber"] is None and thread_row(m, t)["fibers"] == []
    assert m.fls_get_value(t, "s") == 7  # ... and stays with the thread
    assert callbacks(events) == []  # freeing the fiber data runs no callback
    second = m.convert_thread_to_fiber(t)  # a thread may convert again
    assert second != first and t.fiber.name == "T"


def test_converting_back_from_a_created_fiber_leaves_the_first_fiber_alive():
    m, _ = machine()
    p = m.create_process("p")
    t = m.create_thread(p, name="T", program=[
        P.fiber_convert(), P.fiber_create("F", [P.fiber_to_thread(), P.fiber_convert(),
                                                 P.sleep(ms(100))]),
        P.fiber_switch("F")])
    m.run_until(ms(1))
    row = thread_row(m, t)
    # F was freed; "T" (the first conversion) still exists, so the new one is "T#2"
    assert row["fiber"] == "T#2"
    assert [(f["name"], f["current"]) for f in row["fibers"]] == [("T", False), ("T#2", True)]


# ---- CreateFiber (§7.3) ------------------------------------------------------------------------
def test_create_fiber_defaults_and_validation():
    m, events = machine()
    p = m.create_process("p")
    t = m.create_thread(p, name="T", program=[P.sleep(ms(100))])
    made = []

    def program():
        made.append(m.now)
        return [P.cpu(ms(1))]

    a = m.create_fiber(t, "A", program, parameter=3)  # a non-fiber thread may create fibers
    assert made == [0]  # the callable is resolved at creation
    b = m.create_fiber(t, "B", [P.cpu(ms(1))], stack_reserve=256 * 1024, stack_commit=8192)
    assert a != b and m.get_current_fiber(t) is None
    fibers = {f.name: f for f in t.fibers}
    assert fibers["A"].stack_reserve == MB and fibers["A"].parameter == 3
    assert (fibers["B"].stack_reserve, fibers["B"].stack_commit) == (256 * 1024, 8192)
    assert not fibers["A"].started and fibers["A"].program == (P.cpu(ms(1)),)
    assert m.create_fiber(t, "C", [], flags=0x2) is None
    assert m.create_fiber(t, "D", [], stack_reserve=-1) is None
    assert [e[:2] for e in errors(events)] == [("fiber_create", "ERROR_INVALID_PARAMETER")] * 2
    with pytest.raises(KernelError, match="not a program step"):
        m.create_fiber(t, "E", ["cpu 1ms"])


def test_a_created_fiber_runs_only_when_switched_to():
    m, _ = machine()
    p = m.create_process("p")
    ran = []
    t = m.create_thread(p, name="T", program=[
        P.fiber_convert(), P.fiber_create("F", [P.call(ran.append, "F"), P.sleep(ms(100))]),
        P.cpu(ms(5)), P.call(ran.append, "T"), P.fiber_switch("F")])
    m.run_until(ms(4))
    assert ran == [] and thread_row(m, t)["fiber"] == "T"
    m.run_until(ms(6))
    assert ran == ["T", "F"] and thread_row(m, t)["fiber"] == "F"


def test_fiber_function_returning_ends_the_thread():
    m, events = machine()
    p = m.create_process("p")
    t = m.create_thread(p, name="T", program=[
        P.fiber_convert(), P.fiber_create("F", [P.cpu(ms(2))]), P.fiber_switch("F"),
        P.cpu(ms(50))])  # never reached: T's own fiber is never switched back to
    m.run_until(ms(10))
    assert (t.state_name, t.exit_code, t.user) == ("Terminated", 0, ms(2) * CYCLES_PER_NS)
    assert p.exited and p.exit_code == 0


def test_repeat_in_a_fiber_restarts_that_fibers_program():
    m, _ = machine()
    p = m.create_process("p")
    count = []
    t = m.create_thread(p, name="T", program=[
        P.fiber_convert(), P.fiber_create("F", [P.cpu(ms(1)), P.call(count.append, 1), P.repeat()]),
        P.fiber_switch("F"), P.call(count.append, "T again"), P.exit_thread(5)])
    m.run_until(us(10_500))
    assert count == [1] * 10 and t.state_name == "Running" and t.fiber.name == "F"


def test_switching_back_resumes_after_the_switch():
    m, _ = machine()
    p = m.create_process("p")
    order = []
    m.create_thread(p, name="T", program=[
        P.fiber_convert(),
        P.fiber_create("F", [P.call(order.append, "F1"), P.fiber_switch("T"),
                             P.call(order.append, "F2"), P.fiber_switch("T")]),
        P.call(order.append, "T1"), P.fiber_switch("F"), P.call(order.append, "T2"),
        P.fiber_switch("F"), P.call(order.append, "T3"), P.sleep(ms(100))])
    m.run_until(ms(1))
    assert order == ["T1", "F1", "T2", "F2", "T3"]


def test_fibers_switching_without_cpu_are_a_livelock():
    m, _ = machine()
    p = m.create_process("p")
    with pytest.raises(ProgramLivelock):
        m.create_thread(p, name="T", program=[
            P.fiber_convert(), P.fiber_create("F", [P.fiber_switch("T"), P.repeat()]),
            P.fiber_switch("F"), P.repeat()])
        m.run_until(ms(1))


# ---- SwitchToFiber (§7.1, §7.3) ----------------------------------------------------------------
def test_switch_errors():
    m, events = machine()
    p = m.create_process("p")
    t = m.create_thread(p, name="T", program=[P.sleep(ms(100))])
    m.create_fiber(t, "F", [P.sleep(ms(100))])
    assert m.switch_to_fiber(t, "F") is False  # T is not a fiber
    m.convert_thread_to_fiber(t)
    assert m.switch_to_fiber(t, "ghost") is False
    assert m.switch_to_fiber(t, 0x1234) is False
    assert m.switch_to_fiber(t, "T") is True and t.fiber.name == "T"  # itself: nothing happens
    assert [e[:2] for e in errors(events)] == [("fiber_switch", "ERROR_INVALID_PARAMETER")] * 3
    assert of_type(events, "api_error")[1]["fiber"] == "ghost"


def test_switch_by_address_and_fiber_object():
    m, _ = machine()
    p = m.create_process("p")
    t = m.create_thread(p, name="T", program=[P.sleep(ms(100))])
    m.convert_thread_to_fiber(t)
    address = m.create_fiber(t, "F", [P.sleep(ms(100))])
    assert m.switch_to_fiber(t, address) and m.get_current_fiber(t) == address
    assert m.switch_to_fiber(t, t.fibers[0]) and t.fiber.name == "T"


def test_another_thread_of_the_process_may_switch_to_a_fiber():
    m, events = machine(cpus=2)
    p = m.create_process("p")
    other = m.create_process("q")
    ran = []
    go = m.create_event("go")
    t = m.create_thread(p, name="T", program=[
        P.fiber_convert(),
        P.fiber_create("W", [P.call(lambda: ran.append(m.nt.PsGetCurrentThreadId())),
                             P.sleep(ms(100))]),
        P.set_event(go), P.sleep(ms(100))])
    u = m.create_thread(p, name="U", program=[P.wait(go), P.fiber_convert(), P.fiber_switch("W")])
    x = m.create_thread(other, name="X", program=[P.wait(go), P.fiber_convert(),
                                                  P.fiber_switch("W")])
    m.run_until(ms(1))
    assert ran == [u.tid] and u.fiber.name == "W" and t.fiber.name == "T"
    row = thread_row(m, t)  # W is T's (it created it) and selected by U
    assert [(f["name"], f["selected_by"], f["current"]) for f in row["fibers"]] == [
        ("T", t.tid, True), ("W", u.tid, False)]
    assert thread_row(m, u)["fiber"] == "W"
    # another process has no fiber "W"
    assert ("fiber_switch", "ERROR_INVALID_PARAMETER", x.tid) in errors(events)
    # a fiber selected on another thread cannot be switched to or deleted
    assert m.switch_to_fiber(t, "W") is False and m.delete_fiber(t, "W") is False
    assert u.fiber.name == "W" and not u.fiber.deleted


def test_switch_from_outside_a_cpu_step_is_refused():
    m, _ = machine()
    p = m.create_process("p")
    t = m.create_thread(p, name="T", program=[P.fiber_convert(), P.fiber_create("F", []),
                                              P.cpu(ms(10))])
    m.run_until(ms(1))
    with pytest.raises(KernelError, match="inside a CPU step"):
        m.switch_to_fiber(t, "F")


# ---- DeleteFiber (§7.4) ------------------------------------------------------------------------
def test_delete_running_fiber_exits_thread_with_code_1():
    m, events = machine()
    p = m.create_process("p")
    t = m.create_thread(p, name="T", program=[
        P.fiber_convert(), P.fls_alloc("s"), P.fls_set("s", 9), P.cpu(ms(1)),
        P.fiber_delete("T"), P.cpu(ms(10))])
    m.run_until(ms(20))
    assert (t.state_name, t.exit_code, p.exit_code) == ("Terminated", 1, 1)
    assert t.user == ms(1) * CYCLES_PER_NS
    assert callbacks(events) == [("s", 1, 9, "T", t.tid)]  # thread exit: its FLS callbacks


def test_delete_other_fiber_runs_its_callbacks_once_and_unlists_it():
    m, events = machine()
    p = m.create_process("p")
    t = m.create_thread(p, name="T", program=[P.sleep(ms(100))])
    m.convert_thread_to_fiber(t)
    m.fls_alloc(t, "a")
    m.fls_alloc(t, "b")
    m.create_fiber(t, "F", [P.fls_set("a", 1), P.fls_set("b", 0), P.fls_set("a", 2),
                            P.fiber_switch("T")])
    m.create_fiber(t, "G", [])
    m.switch_to_fiber(t, "F")  # T is not running yet: F runs its steps when it does
    m.run_until(ms(1))
    assert t.fiber.name == "T"
    assert m.delete_fiber(t, "F") is True
    assert m.delete_fiber(t, "G") is True  # never started, no FLS data: no callback
    assert callbacks(events) == [("a", 1, 2, "F", t.tid)]  # the 0 value in "b" is skipped
    assert [f["name"] for f in thread_row(m, t)["fibers"]] == ["T"]
    assert m.delete_fiber(t, "F") is False and m.last_error == ERROR_INVALID_PARAMETER
    assert m.switch_to_fiber(t, "F") is False


# ---- FLS (§7.6) --------------------------------------------------------------------------------
def test_fls_indexes_per_process_lowest_free_never_zero():
    m, events = machine()
    p, q = m.create_process("p"), m.create_process("q")
    t = m.create_thread(p, name="T", program=[P.sleep(ms(100))])
    u = m.create_thread(q, name="U", program=[P.sleep(ms(100))])
    assert [m.fls_alloc(t, n) for n in "abc"] == [1, 2, 3]
    assert m.fls_alloc(u, "a") == 1  # indexes are per process
    assert m.fls_free(t, "b") is True
    assert m.fls_alloc(t, "d") == 2  # the lowest free index again
    assert p.fls_slots == {1: "a", 2: "d", 3: "c"} and q.fls_slots == {1: "a"}
    assert m.fls_get_value(t, "b") is None and m.last_error == ERROR_INVALID_PARAMETER
    assert m.fls_set_value(t, 0, 1) is False  # index 0 is never allocated
    assert m.fls_free(t, 99) is False
    assert [e[:2] for e in errors(events)] == [("fls_get", "ERROR_INVALID_PARAMETER"),
                                               ("fls_set", "ERROR_INVALID_PARAMETER"),
                                               ("fls_free", "ERROR_INVALID_PARAMETER")]
    assert m.fls_set_value(t, 3, 5) and m.fls_get_value(t, "c") == 5  # by index or name
    assert m.last_error == 0  # FlsGetValue sets ERROR_SUCCESS


@pytest.mark.parametrize("maximum,usable", [(None, 127), (4080, 4079)])
def test_fls_maximum_is_a_setting(maximum, usable):
    m, events = machine() if maximum is None else machine(fls_maximum=maximum)
    p = m.create_process("p")
    t = m.create_thread(p, name="T", program=[P.sleep(ms(100))])
    got = [m.fls_alloc(t, f"s{i}") for i in range(usable)]
    assert got == list(range(1, usable + 1))
    assert m.fls_alloc(t, "one more") == FLS_OUT_OF_INDEXES == 0xFFFFFFFF
    assert m.last_error == ERROR_NO_MORE_ITEMS
    m.fls_free(t, "s5")
    assert m.fls_alloc(t, "again") == 6


def test_fls_without_fibers_is_per_thread_like_tls():
    m, events = machine()
    p = m.create_process("p")
    t = m.create_thread(p, name="T", program=[P.sleep(ms(100))])
    u = m.create_thread(p, name="U", program=[P.sleep(ms(100))])
    m.fls_alloc(t, "s")
    assert m.fls_get_value(u, "s") == 0  # allocated for the process, 0 everywhere
    m.fls_set_value(t, "s", 1)
    m.fls_set_value(u, "s", 2)
    assert (m.fls_get_value(t, "s"), m.fls_get_value(u, "s")) == (1, 2)
    m.fls_free(u, "s")  # the callbacks run on the caller, for every thread's value
    assert callbacks(events) == [("s", 1, 1, None, u.tid), ("s", 1, 2, None, u.tid)]
    m.fls_alloc(t, "s")
    assert (m.fls_get_value(t, "s"), m.fls_get_value(u, "s")) == (0, 0)  # cleared


def test_fls_alloc_without_callback_runs_none():
    m, events = machine()
    p = m.create_process("p")
    t = m.create_thread(p, name="T", program=[P.sleep(ms(100))])
    m.fls_alloc(t, "quiet", callback=False)
    m.fls_set_value(t, "quiet", 3)
    m.fls_free(t, "quiet")
    assert callbacks(events) == [] and m.fls_alloc(t, "loud") == 1
    m.fls_set_value(t, "loud", 4)
    m.fls_free(t, "loud")
    assert callbacks(events) == [("loud", 1, 4, None, t.tid)]


def test_thread_exit_runs_callbacks_of_its_current_block_only():
    m, events = machine()
    p = m.create_process("p")
    done = m.create_event("done")
    t = m.create_thread(p, name="T", program=[
        P.fiber_convert(), P.fls_alloc("s"), P.fls_set("s", 10),
        P.fiber_create("A", [P.fls_set("s", 11), P.fiber_switch("T"), P.sleep(ms(100))]),
        P.fiber_create("B", [P.fls_set("s", 12), P.cpu(ms(1)), P.set_event(done),
                             P.exit_thread(3)]),
        P.fiber_switch("A"), P.fiber_switch("B")])
    u = m.create_thread(p, name="U", program=[P.wait(done), P.fiber_convert(),
                                              P.fiber_switch("A"), P.sleep(ms(100))])
    m.run_until(ms(5))
    assert t.exit_code == 3
    # T's exit: only B's value (B was selected); A's stays, A lives on and U runs it
    assert callbacks(events) == [("s", 1, 12, "B", t.tid)]
    assert u.fiber.name == "A" and m.fls_get_value(u, "s") == 11
    m.fls_free(u, "s")
    assert callbacks(events)[1:] == [("s", 1, 10, "T", u.tid), ("s", 1, 11, "A", u.tid)]


def test_plain_thread_exit_runs_fls_callbacks():
    m, events = machine()
    p = m.create_process("p")
    t = m.create_thread(p, name="T", program=[P.fls_alloc("s"), P.fls_set("s", 0x42),
                                              P.cpu(ms(1))])
    m.run_until(ms(2))
    assert callbacks(events) == [("s", 1, 0x42, None, t.tid)]
    e = events.index(of_type(events, "fls_callback")[0])
    assert events[e + 1]["type"] == "thread_exit"  # callbacks run before the thread is gone


def test_exit_hook_without_callbacks_for_terminate_thread():
    # TerminateThread runs no user-mode code in the thread (§8.4): the dispatcher's exit
    # hook takes run_callbacks=False for it; the selected fiber still ends with the thread
    m, events = machine()
    p = m.create_process("p")
    t = m.create_thread(p, name="T", program=[P.sleep(ms(100))])
    m.convert_thread_to_fiber(t)
    m.fls_alloc(t, "s")
    m.fls_set_value(t, "s", 5)
    m._fiber_thread_exit(t, run_callbacks=False)
    assert callbacks(events) == [] and t.fiber is None and t.fibers == []
    assert m._fiber_table(p).fls_blocks == {}


@pytest.mark.parametrize("how", ["thread", "process"])
def test_terminate_runs_no_fls_callbacks_but_exit_does(how):
    m, events = machine()
    p = m.create_process("p")
    t = m.create_thread(p, name="T", program=[P.fiber_convert(), P.fls_alloc("s"),
                                              P.fls_set("s", 7), P.sleep(ms(100))])
    m.run_until(ms(1))
    if how == "thread":
        m.terminate_thread(t, 3)
    else:
        m.terminate_process(p, 3)
    assert t.exit_code == 3 and callbacks(events) == []


def test_fls_values_are_pointers():
    m, _ = machine()
    p = m.create_process("p")
    t = m.create_thread(p, name="T", program=[P.sleep(ms(100))])
    m.fls_alloc(t, "s")
    assert m.fls_set_value(t, "s", 2**64 - 1) and m.fls_get_value(t, "s") == 2**64 - 1
    with pytest.raises(KernelError, match="pointer-sized"):
        m.fls_set_value(t, "s", -1)


# ---- state() -----------------------------------------------------------------------------------
def test_state_lists_fibers_of_the_owning_thread_without_deleted_ones():
    m, _ = machine()
    p = m.create_process("p")
    t = m.create_thread(p, name="T", program=[
        P.fiber_convert(parameter=0x10), P.fiber_create("A", [], parameter=0x20),
        P.fiber_create("B", [], parameter=0x30), P.fiber_delete("A"), P.sleep(ms(100))])
    other = m.create_thread(p, name="O", program=[P.sleep(ms(100))])
    m.run_until(ms(1))
    row = thread_row(m, t)
    assert row["fiber"] == "T"
    assert row["fibers"] == [
        {"name": "T", "address": row["fibers"][0]["address"], "parameter": 0x10,
         "selected_by": t.tid, "current": True, "converted": True, "started": True,
         "deleted": False, "stack_reserve": MB, "fls": {}},
        {"name": "B", "address": row["fibers"][1]["address"], "parameter": 0x30,
         "selected_by": None, "current": False, "converted": False, "started": False,
         "deleted": False, "stack_reserve": MB, "fls": {}}]
    a, b = (f["address"] for f in row["fibers"])
    assert a != b and a == thread_row(m, t)["fibers"][0]["address"]  # stable
    assert thread_row(m, other)["fiber"] is None and thread_row(m, other)["fibers"] == []
    assert m.snapshot()["processes"][-1]["threads"][0]["fiber"] == "T"


def test_fiber_addresses_are_per_process_and_deterministic():
    def addresses():
        m, _ = machine()
        out = []
        for name in ("p", "q"):
            proc = m.create_process(name)
            t = m.create_thread(proc, name="T", program=[P.sleep(ms(100))])
            out.append((m.convert_thread_to_fiber(t), m.create_fiber(t, "F", [])))
        return out

    first = addresses()
    assert first == addresses()
    assert first[0] == first[1]  # each process has its own heap
    assert len(set(first[0])) == 2


# ---- UMS (§7.7) --------------------------------------------------------------------------------
@pytest.mark.parametrize("build,arch,supported", [
    ("10.0.19041", "x64", True), ("10.0.20348.1", "x64", True), ("6.1.7600", "x64", True),
    ("10.0.22000", "x64", False), ("10.0.22621.2861", "x64", False), ("22631", "x64", False),
    ("10.0.19041", "x86", False), ("10.0.19041", "arm64", False), ("6.0.6002", "x64", False),
])
def test_ums_exists_only_on_x64_windows_7_to_10(build, arch, supported):
    m, events = machine(windows_build=build, windows_arch=arch)
    t = m.create_thread(m.create_process("p"), name="T", program=[P.sleep(ms(100))])
    assert m.ums_supported() is supported
    if supported:
        with pytest.raises(KernelError, match="not simulated"):
            m.ums_call(t, "EnterUmsSchedulingMode")
    else:
        assert m.ums_call(t, "CreateUmsCompletionList") is False
        assert m.last_error == ERROR_NOT_SUPPORTED
        assert of_type(events, "api_error")[0]["call"] == "CreateUmsCompletionList"


def test_ums_default_build_is_supported():
    m, _ = machine()
    assert m.ums_supported()


# ---- program constructors -----------------------------------------------------------------------
def test_program_constructors_build_fiber_steps():
    worker = [P.cpu(ms(1))]
    assert P.fiber_convert() == (P.OP_FIBER, "convert", 0, 0)
    assert P.fiber_create("F", worker, 5, MB) == (P.OP_FIBER, "create", "F", tuple(worker), 5, MB)
    assert P.fiber_switch("F") == (P.OP_FIBER, "switch", "F")
    assert P.fiber_delete("F") == (P.OP_FIBER, "delete", "F")
    assert P.fiber_to_thread() == (P.OP_FIBER, "to_thread")
    assert P.fls_alloc("s") == (P.OP_FIBER, "fls_alloc", "s")
    assert P.fls_set("s", 0x10) == (P.OP_FIBER, "fls_set", "s", 16)
    assert P.fls_free("s") == (P.OP_FIBER, "fls_free", "s")


# ---- property: a fiber switch never changes what the scheduler sees (§7.1) ---------------------
STEP_KINDS = ("cpu", "kcpu", "sleep", "sleep0", "wait", "set", "yield", "io", "prio")
LEVELS = ("lowest", "below_normal", "normal", "above_normal", "highest")


@st.composite
def fiber_workloads(draw):
    cpus = draw(st.integers(1, 2))
    nobj = draw(st.integers(1, 2))
    step = st.tuples(st.sampled_from(STEP_KINDS), st.integers(0, nobj - 1),
                     st.integers(1, 30_000), st.sampled_from(LEVELS))
    segments = draw(st.lists(st.lists(step, min_size=1, max_size=4), min_size=1, max_size=4))
    fls_ops = draw(st.lists(st.booleans(), min_size=len(segments), max_size=len(segments)))
    others = draw(st.lists(st.tuples(st.sampled_from(LEVELS), st.lists(step, min_size=1,
                                                                       max_size=5),
                                     st.booleans()), min_size=1, max_size=3))
    actions = draw(st.lists(st.tuples(st.integers(1, 150), st.sampled_from(
        ("suspend", "resume", "prio", "set")), st.integers(0, 100)), max_size=4))
    return (cpus, nobj, draw(st.sampled_from(LEVELS)), segments, fls_ops, draw(st.booleans()),
            others, actions)


def _steps(spec, objs):
    out = [P.cpu(us(20))]  # every segment uses CPU, so no loop is zero-time
    for kind, oi, dur, level in spec:
        obj = objs[oi]
        if kind == "cpu":
            out.append(P.cpu(us(dur)))
        elif kind == "kcpu":
            out.append(P.kcpu(us(dur)))
        elif kind == "sleep":
            out.append(P.sleep(us(dur)))
        elif kind == "sleep0":
            out.append(P.sleep(0))
        elif kind == "wait":
            out.append(P.wait(obj, us(dur * 3) if dur % 2 else None))
        elif kind == "set":
            out.append(P.set_event(obj))
        elif kind == "yield":
            out.append(P.yield_())
        elif kind == "io":
            out.append(P.io("keyboard" if dur % 2 else "disk", us(dur)))
        else:
            out.append(P.set_priority(level))
    return out


def _build(spec, fibers: bool):
    cpus, nobj, level, segments, fls_ops, repeat, others, actions = spec
    m = Machine(cpus=cpus)
    objs = [m.create_event(f"e{i}", "synchronization") for i in range(nobj)]
    p = m.create_process("app")
    segs = [_steps(s, objs) for s in segments]
    if fibers:
        n = len(segs)
        prologue = [P.fiber_convert(), P.fls_alloc("s")]
        for k, seg in enumerate(segs):
            body = ([P.fls_set("s", k + 1)] if fls_ops[k] else []) + seg
            body.append(P.fiber_switch(f"F{(k + 1) % n}") if repeat or k + 1 < n
                        else P.fls_set("s", 0))
            if repeat:
                body.append(P.repeat())  # resumed after its switch: run the segment again
            prologue.append(P.fiber_create(f"F{k}", body))
        program = prologue + [P.fiber_switch("F0")]
    else:
        program = [s for seg in segs for s in seg] + ([P.repeat()] if repeat else [])
    subject = m.create_thread(p, level, name="S", program=program)
    threads = [subject]
    for lvl, steps, rep in others:
        threads.append(m.create_thread(p, lvl, program=_steps(steps, objs)
                                       + ([P.repeat()] if rep else [])))
    for when, what, arg in actions:
        t = threads[arg % len(threads)]
        if what == "suspend":
            m.at(ms(when), m.suspend_thread, t)
        elif what == "resume":
            m.at(ms(when), m.resume_thread, t)
        elif what == "prio":
            m.at(ms(when), m.set_thread_priority, t, LEVELS[arg % len(LEVELS)])
        else:
            m.at(ms(when), m.set_event, objs[arg % nobj])
    return m, threads


def _scheduler_view(m, threads):
    m._charge_all()
    return [(t.tid, t.state_name, t.wait_reason_name, t.priority, t.base, t.quantum,
             t.cswitches, t.user, t.kernel, t.exit_code, t.affinity, t.cpu) for t in threads]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fiber_workloads())
def test_fiber_switches_never_change_what_the_scheduler_sees(spec):
    plain, plain_threads = _build(spec, fibers=False)
    fiber, fiber_threads = _build(spec, fibers=True)
    for end in (ms(3), ms(40), ms(120), ms(400)):
        plain.run_until(end)
        fiber.run_until(end)
        assert _scheduler_view(fiber, fiber_threads) == _scheduler_view(plain, plain_threads)
        assert fiber.cswitch_csv() == plain.cswitch_csv()
    fiber.check_invariants()

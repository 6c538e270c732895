"""Job objects (nt-facts §6): worked scenarios S15, S18, S20 and a test per rule."""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.kernel import STILL_ACTIVE, Machine, ms, sec
from core.kernel import program as P
from core.kernel.constants import (
    CYCLES_PER_NS,
    ERROR_ACCESS_DENIED,
    ERROR_COMMITMENT_LIMIT,
    ERROR_INVALID_HANDLE,
    ERROR_INVALID_PARAMETER,
    ERROR_NOT_ENOUGH_QUOTA,
    TERMINATED,
    WrCpuRateControl,
)
from core.kernel.jobs import is_abnormal_exit
from core.runner import run_scenario
from core.scenario import ScenarioError, parse_scenario


def machine(cpus=1, **kw):
    m = Machine(cpus=cpus, **kw)
    events = []
    m.subscribe(events.append)
    return m, events


def proc(m, name, program=None, threads=1, parent=None, **kw):
    p = m.create_process(name, parent=parent, **kw)
    if p is None:
        return None
    for i in range(threads):
        m.create_thread(p, program=program or [P.sleep(sec(100))], name=f"{name}.{i}")
    m.dispatch()
    return p


def messages(events, job="J"):
    return [(e["message"], e["pid"]) for e in events
            if e["type"] == "job_message" and e["job"] == job]


def errors(events, op=None):
    return [e["error"] for e in events if e["type"] == "api_error" and (op is None or e["op"] == op)]


# ---- S15: active-process limit --------------------------------------------------------------

def test_s15_active_process_limit():
    m, ev = machine()
    j = m.create_job("J", completion_port=True)
    assert m.set_job_limits(j, active_process=2)
    p1, p2, p3, p4 = (proc(m, n) for n in ("P1", "P2", "P3", "P4"))
    assert m.assign_process_to_job(j, p1) and m.assign_process_to_job(j, p2)
    assert messages(ev) == [("NEW_PROCESS", p1.pid), ("NEW_PROCESS", p2.pid)]

    m.open_handle(p3)  # the handle to P3 is kept open
    assert not m.assign_process_to_job(j, p3)
    assert errors(ev, "assign") == ["ERROR_NOT_ENOUGH_QUOTA"]
    assert p3.exited and p3.exit_code == ERROR_NOT_ENOUGH_QUOTA
    assert messages(ev)[2:] == [("ACTIVE_PROCESS_LIMIT", None)]  # no NEW_PROCESS for P3
    acct = m.query_job_accounting(j)
    assert (acct["TotalProcesses"], acct["ActiveProcesses"]) == (3, 3)
    assert acct["TotalTerminatedProcesses"] >= 1

    # P4 cannot be assigned while the P3 handle keeps the slot in use
    assert not m.assign_process_to_job(j, p4) and p4.exited
    m.close_handle(p3)
    m.terminate_process(p1, 0)
    acct = m.query_job_accounting(j)
    assert acct["ActiveProcesses"] == 1
    p5 = proc(m, "P5")
    assert m.assign_process_to_job(j, p5)
    assert m.query_job_accounting(j)["ActiveProcesses"] == 2


def test_s15_create_process_inside_a_job_at_its_limit_fails():
    m, ev = machine()
    j = m.create_job("J")
    m.set_job_limits(j, active_process=1)
    p2 = proc(m, "P2")
    assert m.assign_process_to_job(j, p2)
    assert proc(m, "child", parent=p2) is None
    assert errors(ev, "create_process") == ["ERROR_NOT_ENOUGH_QUOTA"]
    assert not [e for e in ev if e["type"] == "process_create" and e["name"] == "child"]
    assert m.query_job_accounting(j)["ActiveProcesses"] == 1


def test_s15_through_a_scenario():
    text = """
[system]
until = "50ms"
[[job]]
name = "J"
completion_port = true
  [job.limits]
  active_process = 2
[[process]]
name = "holder"
  [[process.thread]]
  name = "H"
  program = ["sleep 1s"]
[[process]]
name = "P1"
job = "J"
  [[process.thread]]
  name = "T1"
  program = ["sleep 20ms", "exit 0"]
[[process]]
name = "P2"
job = "J"
  [[process.thread]]
  name = "T2"
  program = ["sleep 1s"]
[[process]]
name = "P3"
start = "1ms"
  [[process.thread]]
  name = "T3"
  program = ["sleep 1s"]
[[at]]
time = "2ms"
do = "open_process holder P3 0x1000"
[[at]]
time = "3ms"
do = "assign P3 J"
"""
    r = run_scenario(parse_scenario(text, "s15.toml"))
    msgs = [(e["message"], e["code"]) for e in r.events if e["type"] == "job_message"]
    assert msgs == [("NEW_PROCESS", 6), ("NEW_PROCESS", 6), ("ACTIVE_PROCESS_LIMIT", 3),
                    ("EXIT_PROCESS", 7)]
    job = r.state()["jobs"][0]
    # P1 exited at 20 ms; P3 still counts while holder's handle keeps it referenced
    assert (job["total_processes"], job["active_processes"]) == (3, 2)
    names = [p["name"] for p in r.state()["processes"]]
    assert "P3" in names and "P1" not in names


# ---- S18: priority class, affinity, nesting ---------------------------------------------------

def test_s18_priority_class_and_affinity_limits():
    m, ev = machine(cpus=2)
    j = m.create_job("J")
    assert m.set_job_limits(j, priority_class="below_normal", affinity=[0])
    p = proc(m, "P", threads=2)
    assert m.assign_process_to_job(j, p)
    t = p.threads[0]
    assert p.priority_class == "below_normal" and t.base == 6
    assert m.set_priority_class(p, "high") is True  # silently ignored
    assert p.priority_class == "below_normal" and t.base == 6
    assert errors(ev) == []
    assert all(th.affinity == 0b01 for th in p.threads)
    assert m.set_thread_affinity(t, [0]) == 0b01
    assert m.set_thread_affinity(t, [1]) == 0
    assert m.set_process_affinity(p, [0]) is False
    assert errors(ev, "set_process_affinity") == ["ERROR_ACCESS_DENIED"]


@pytest.mark.parametrize("child_class,effective", [("above_normal", "below_normal"),
                                                   ("idle", "idle")])
def test_s18_nested_priority_class_lowest_wins(child_class, effective):
    m, _ = machine(cpus=2)
    j = m.create_job("J")
    m.set_job_limits(j, priority_class="below_normal", affinity=[0])
    j2 = m.create_job("J2", parent=j)
    m.set_job_limits(j2, priority_class=child_class)
    p = proc(m, "P")
    assert m.assign_process_to_job(j2, p)
    assert p.priority_class == effective
    assert [x.name for x in p.jobs] == ["J2", "J"]


def test_s18_nested_superset_affinity_uses_the_parents():
    m, ev = machine(cpus=2)
    j = m.create_job("J")
    m.set_job_limits(j, affinity=[0])
    j2 = m.create_job("J2", parent=j)
    assert m.set_job_limits(j2, affinity=[0, 1])  # accepted
    p = proc(m, "P")
    m.assign_process_to_job(j2, p)
    assert p.affinity == 0b01 and p.threads[0].affinity == 0b01
    assert m.state()["jobs"][1]["effective"]["affinity"] == [0]


def test_s18_job_affinity_outside_the_system_fails():
    m, ev = machine(cpus=2)
    j = m.create_job("J")
    assert m.set_job_limits(j, affinity=[0, 2]) is False
    assert errors(ev, "set_job_limits") == ["ERROR_INVALID_PARAMETER"]
    assert j.limit_flags == 0


def test_subset_affinity_lets_a_process_narrow_its_mask():
    m, _ = machine(cpus=4)
    j = m.create_job("J")
    assert m.set_job_limits(j, affinity=[0, 1], subset_affinity=True)
    p = proc(m, "P")
    m.assign_process_to_job(j, p)
    assert m.set_process_affinity(p, [1]) is True
    assert m.set_process_affinity(p, [2]) is False


# ---- S20: termination, kill on close, accounting ----------------------------------------------

def _s20(cpus=1):
    m, ev = machine(cpus=cpus)
    j = m.create_job("J", completion_port=True)
    p1 = proc(m, "P1", program=[P.cpu(ms(5)), P.sleep(sec(100))])
    p2 = proc(m, "P2", program=[P.cpu(ms(5)), P.sleep(sec(100))], threads=3)
    m.assign_process_to_job(j, p1)
    m.assign_process_to_job(j, p2)
    m.open_handle(p1)
    m.run_until(ms(100))
    return m, ev, j, p1, p2


def test_s20_terminate_job_exit_codes_messages_accounting():
    m, ev, j, p1, p2 = _s20()
    assert m.get_exit_code_process(p1) == STILL_ACTIVE
    before = m.query_job_accounting(j)
    assert m.terminate_job(j, 42)
    assert p1.exit_code == p2.exit_code == 42 and p1.signaled and p2.signaled
    assert all(t.exit_code == 42 for t in p1.threads + p2.threads)
    tail = messages(ev)[2:]
    assert tail == [("EXIT_PROCESS", p1.pid), ("EXIT_PROCESS", p2.pid),
                    ("ACTIVE_PROCESS_ZERO", None)]
    acct = m.query_job_accounting(j)
    assert (acct["ActiveProcesses"], acct["TotalProcesses"]) == (0, 2)
    # terminated processes' time stays: 4 threads x 5 ms of user time
    assert acct["TotalUserTime"] == before["TotalUserTime"] == 20 * 10_000


def test_s20_nested_termination_is_bottom_up():
    m, ev = machine()
    j = m.create_job("J", completion_port=True)
    j2 = m.create_job("J2", parent=j)
    outer = proc(m, "outer")
    inner = proc(m, "inner")
    m.assign_process_to_job(j, outer)
    m.assign_process_to_job(j2, inner)
    m.terminate_job(j, 1)
    exits = [e["name"] for e in ev if e["type"] == "process_exit"]
    assert exits == ["inner", "outer"]


def test_s20_kill_on_job_close():
    m, ev, j, p1, p2 = _s20()
    m.set_job_limits(j, kill_on_job_close=True)
    assert m.close_job_handle(j)
    assert p1.exited and p2.exited and p1.exit_code == 0  # ReactOS: STATUS_SUCCESS
    assert not j.closed  # P1's process object, still referenced, references the job
    m.close_handle(p1)
    assert j.closed and j not in m.jobs


def test_s20_without_kill_on_close_the_job_outlives_its_handle():
    m, ev, j, p1, p2 = _s20()
    assert m.close_job_handle(j)
    assert not p1.exited and not j.closed and [x["name"] for x in m.state()["jobs"]] == ["J"]
    m.terminate_process(p1, 0)
    m.terminate_process(p2, 0)
    m.close_handle(p1)
    assert j.closed and m.state()["jobs"] == []
    assert not m.close_job_handle(j)  # no handle left
    assert errors(ev, "close_job_handle") == ["ERROR_INVALID_HANDLE"]


# ---- other rules --------------------------------------------------------------------------

def test_children_inherit_the_job_and_breakaway_rules():
    m, ev = machine()
    j = m.create_job("J")
    parent = proc(m, "parent")
    m.assign_process_to_job(j, parent)
    child = proc(m, "child", parent=parent)
    assert child.jobs == [j]
    assert proc(m, "free", parent=parent, breakaway=True) is None  # no BREAKAWAY_OK
    assert errors(ev, "create_process") == ["ERROR_ACCESS_DENIED"]
    m.set_job_limits(j, breakaway_ok=True)
    assert proc(m, "free", parent=parent, breakaway=True).jobs == []
    assert proc(m, "stays", parent=parent).jobs == [j]
    m.set_job_limits(j, silent_breakaway_ok=True)
    assert proc(m, "silent", parent=parent).jobs == []


def test_nested_breakaway_stops_at_the_first_job_that_forbids_it():
    m, _ = machine()
    outer = m.create_job("outer")
    inner = m.create_job("inner", parent=outer)
    m.set_job_limits(inner, breakaway_ok=True)
    p = proc(m, "p")
    m.assign_process_to_job(inner, p)
    child = proc(m, "c", parent=p, breakaway=True)
    assert child.jobs == [outer]


def test_a_process_in_a_job_nests_a_new_empty_job_and_never_leaves():
    m, ev = machine()
    j = m.create_job("J")
    other = m.create_job("other")
    p = proc(m, "p")
    m.assign_process_to_job(j, p)
    assert m.assign_process_to_job(other, p)  # Windows 8+: "other" nests under J
    assert other.parent is j and p.jobs == [other, j]
    sibling = m.create_job("sibling")
    q = proc(m, "q")
    m.assign_process_to_job(sibling, q)
    assert not m.assign_process_to_job(sibling, p)  # not in p's hierarchy
    assert errors(ev, "assign") == ["ERROR_ACCESS_DENIED"]


def test_before_windows_8_a_process_is_in_one_job_only():
    m, ev = machine(job_nesting=False)
    j, k = m.create_job("J"), m.create_job("K")
    p = proc(m, "p")
    assert m.assign_process_to_job(j, p)
    assert not m.assign_process_to_job(k, p)
    assert errors(ev, "assign") == ["ERROR_ACCESS_DENIED"]


def test_per_process_user_time_terminates_the_process():
    m, ev = machine()
    j = m.create_job("J", completion_port=True)
    m.set_job_limits(j, per_process_user_time_ns=ms(40))
    p = proc(m, "spin", program=[P.cpu(sec(10))])
    m.assign_process_to_job(j, p)
    m.run_until(ms(200))
    assert p.exited and p.exit_code == ERROR_NOT_ENOUGH_QUOTA
    # checked every tick: at most one tick over the limit
    assert ms(40) <= p.exit_time // CYCLES_PER_NS <= ms(40) + 15_625_000
    assert messages(ev)[1:] == [("END_OF_PROCESS_TIME", p.pid), ("EXIT_PROCESS", p.pid),
                                ("ACTIVE_PROCESS_ZERO", None)]
    assert m.query_job_accounting(j)["TotalTerminatedProcesses"] == 1


def test_per_job_user_time_terminate_signals_the_job_and_blocks_assignment():
    m, ev = machine()
    j = m.create_job("J", completion_port=True)
    m.set_job_limits(j, per_job_user_time_ns=ms(30))
    a = proc(m, "a", program=[P.cpu(sec(10))])
    b = proc(m, "b", program=[P.cpu(sec(10))])
    m.assign_process_to_job(j, a)
    m.assign_process_to_job(j, b)
    m.run_until(ms(100))
    assert a.exited and b.exited and a.exit_code == ERROR_NOT_ENOUGH_QUOTA
    assert j.signaled
    assert m.query_job_accounting(j)["TotalTerminatedProcesses"] == 2
    c = proc(m, "c")
    assert not m.assign_process_to_job(j, c) and c.exited
    m.set_job_limits(j, per_job_user_time_ns=ms(30))  # resetting the limit un-signals
    assert not j.signaled and m.query_job_accounting(j)["ThisPeriodTotalUserTime"] == 0
    d = proc(m, "d")
    assert m.assign_process_to_job(j, d)


def test_per_job_user_time_post_clears_the_limit_and_keeps_running():
    m, ev = machine()
    j = m.create_job("J", completion_port=True)
    m.set_job_limits(j, per_job_user_time_ns=ms(30), end_of_job_time_action="post")
    a = proc(m, "a", program=[P.cpu(sec(10))])
    m.assign_process_to_job(j, a)
    m.run_until(ms(100))
    assert not a.exited and ("END_OF_JOB_TIME", None) in messages(ev)
    assert m.state()["jobs"][0]["limits"]["per_job_user_time_us"] is None


def test_job_time_limit_adds_to_the_time_already_used():
    m, _ = machine()
    j = m.create_job("J")
    a = proc(m, "a", program=[P.cpu(ms(50)), P.sleep(sec(100))])
    m.assign_process_to_job(j, a)
    m.run_until(ms(60))
    m.set_job_limits(j, per_job_user_time_ns=ms(10))  # 50 ms used + 10 ms limit
    b = proc(m, "b", program=[P.cpu(ms(8)), P.sleep(sec(100))])
    m.assign_process_to_job(j, b)
    m.run_until(ms(200))
    assert not b.exited


def test_memory_limits_fail_the_commit_and_post_a_message():
    m, ev = machine()
    j = m.create_job("J", completion_port=True)
    m.set_job_limits(j, process_memory=64 << 20, job_memory=100 << 20)
    a = proc(m, "a", program=[P.sleep(ms(1)), P.commit(60 << 20), P.commit(8 << 20),
                              P.sleep(sec(100))])
    m.assign_process_to_job(j, a)
    b = proc(m, "b", program=[P.sleep(ms(20)), P.commit(50 << 20), P.sleep(sec(100))])
    m.assign_process_to_job(j, b)
    m.run_until(ms(50))
    assert a.commit == 60 << 20 and b.commit == 0
    assert [e["code"] for e in ev if e["type"] == "api_error"] == [ERROR_COMMITMENT_LIMIT] * 2
    assert ("PROCESS_MEMORY_LIMIT", a.pid) in messages(ev)
    assert ("JOB_MEMORY_LIMIT", b.pid) in messages(ev)
    assert not a.exited and not b.exited  # a failed commit kills nothing


def test_commits_made_before_joining_are_not_examined():
    m, ev = machine()
    a = proc(m, "a", program=[P.commit(80 << 20), P.sleep(ms(10)), P.commit(1 << 20),
                              P.sleep(sec(100))])
    m.run_until(ms(1))
    j = m.create_job("J")
    m.set_job_limits(j, process_memory=64 << 20)
    m.assign_process_to_job(j, a)
    m.run_until(ms(50))
    assert errors(ev) == ["ERROR_COMMITMENT_LIMIT"]  # the later commit is examined


def test_scheduling_class_sets_the_quantum_only_with_fixed_quanta():
    server, _ = machine(win32_priority_separation=0x18)  # fixed quanta
    client, _ = machine()
    for m, expected in ((server, 6 * 3), (client, None)):
        j = m.create_job("J")
        m.set_job_limits(j, scheduling_class=2)
        p = proc(m, "p")
        before = p.quantum_reset
        m.assign_process_to_job(j, p)
        units = p.quantum_reset // m.unit
        assert units == (expected if expected is not None else before // m.unit)


def test_hard_cap_throttles_in_wr_cpu_rate_control_and_idles_the_cpu():
    m, ev = machine()
    j = m.create_job("J")
    assert m.set_job_cpu_rate(j, hard_cap=2000)  # 20 %
    p = proc(m, "spin", program=[P.cpu(sec(10))])
    m.assign_process_to_job(j, p)
    m.run_until(ms(50))
    t = p.threads[0]
    assert t.state == 5 and t.wait_reason == WrCpuRateControl  # Waiting
    m.run_until(sec(1))
    share = t.user / (sec(1) * CYCLES_PER_NS)
    assert 0.19 <= share <= 0.21, share
    busy, idle = m.cpu_times()[0]
    assert idle > busy  # the CPU idles rather than run the capped job
    assert "WrCpuRateControl" in m.cswitch_csv()


def test_cpu_rate_validation():
    m, ev = machine()
    j = m.create_job("J")
    assert not m.set_job_cpu_rate(j, hard_cap=0)
    assert not m.set_job_cpu_rate(j, weight=10)
    assert not m.set_job_cpu_rate(j, hard_cap=100, weight=5)
    assert not m.set_job_cpu_rate(j, min_rate=5000, max_rate=4000)
    assert m.set_job_cpu_rate(j, min_rate=6000, max_rate=9000)
    k = m.create_job("K")
    assert not m.set_job_cpu_rate(k, min_rate=5000, max_rate=9000)  # MinRates > 10000
    assert errors(ev) == ["ERROR_INVALID_PARAMETER"] * 5


def test_weights_share_the_cpu_between_busy_jobs():
    m, _ = machine()
    heavy, light = m.create_job("heavy"), m.create_job("light")
    m.set_job_cpu_rate(heavy, weight=6)
    m.set_job_cpu_rate(light, weight=2)
    a = proc(m, "a", program=[P.cpu(sec(10))])
    b = proc(m, "b", program=[P.cpu(sec(10))])
    m.assign_process_to_job(heavy, a)
    m.assign_process_to_job(light, b)
    m.run_until(sec(2))
    ratio = a.threads[0].user / b.threads[0].user
    assert 2.5 <= ratio <= 3.5, ratio


def test_abnormal_exit_codes():
    assert is_abnormal_exit(0xC0000005) and not is_abnormal_exit(42)
    m, ev = machine()
    j = m.create_job("J", completion_port=True)
    p = proc(m, "p")
    m.assign_process_to_job(j, p)
    m.terminate_process(p, 0xC0000005)
    assert ("ABNORMAL_EXIT_PROCESS", p.pid) in messages(ev)


def test_abnormal_exit_is_the_documented_list_not_the_severity():
    # JOBOBJECT_ASSOCIATE_COMPLETION_PORT lists the abnormal exit codes (§6.15)
    assert is_abnormal_exit(0x80000003)  # STATUS_BREAKPOINT: warning severity, still listed
    assert is_abnormal_exit(0xC00000FD)  # STATUS_STACK_OVERFLOW
    assert not is_abnormal_exit(0xC0000409)  # STATUS_STACK_BUFFER_OVERRUN (fast fail): not listed
    assert not is_abnormal_exit(ERROR_NOT_ENOUGH_QUOTA)
    m, ev = machine()
    j = m.create_job("J", completion_port=True)
    p, q = proc(m, "p"), proc(m, "q")
    m.assign_process_to_job(j, p)
    m.assign_process_to_job(j, q)
    m.terminate_process(p, 0xC0000409)
    m.terminate_process(q, 0x80000003)
    assert messages(ev)[2:] == [("EXIT_PROCESS", p.pid), ("ABNORMAL_EXIT_PROCESS", q.pid),
                                ("ACTIVE_PROCESS_ZERO", None)]


def test_messages_go_to_every_port_up_the_chain():
    m, ev = machine()
    j = m.create_job("J", completion_port=True)
    j2 = m.create_job("J2", parent=j, completion_port=True)
    p = proc(m, "p")
    m.assign_process_to_job(j2, p)
    got = [(e["job"], e["message"], e.get("source_job")) for e in ev if e["type"] == "job_message"]
    assert got == [("J2", "NEW_PROCESS", None), ("J", "NEW_PROCESS", "J2")]
    acct_outer = m.query_job_accounting(j)
    assert acct_outer["TotalProcesses"] == acct_outer["ActiveProcesses"] == 1


def test_state_json_jobs_keys():
    m, _ = machine()
    j = m.create_job("J")
    p = proc(m, "p")
    m.assign_process_to_job(j, p)
    snap = m.snapshot()
    assert snap["jobs"] == [{"name": "J", "active_processes": 1, "total_processes": 1,
                             "total_terminated_processes": 0, "total_user_time_us": 0.0,
                             "parent": None}]
    assert next(x for x in snap["processes"] if x["name"] == "p")["jobs"] == ["J"]


# ---- properties -------------------------------------------------------------------------------

ops = st.lists(st.tuples(st.sampled_from(["create", "assign", "child", "exit", "advance"]),
                         st.integers(0, 5), st.integers(1, 30)), max_size=40)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(limit=st.integers(1, 4), steps=ops)
def test_property_limits_hold_and_accounting_adds_up(limit, steps):
    m, _ = machine(cpus=2)
    j = m.create_job("J")
    m.set_job_limits(j, active_process=limit)
    procs = []
    joined_at: dict[int, int] = {}  # pid -> its user cycles when it joined (the oracle)

    def user(p):
        m.cpu_times()  # charge what runs now
        return sum(t.user for t in p.threads)

    for op, k, d in steps:
        if op == "create":
            procs.append(proc(m, f"p{len(procs)}", program=[P.cpu(ms(d)), P.sleep(ms(d))]))
        elif op == "assign" and procs:
            p = procs[k % len(procs)]
            before = user(p)
            if m.assign_process_to_job(j, p):
                joined_at[p.pid] = before
        elif op == "child" and procs:
            parent = procs[k % len(procs)]
            c = proc(m, f"c{len(procs)}", parent=parent, program=[P.cpu(ms(d))])
            if c is not None:
                procs.append(c)
                if j in c.jobs:
                    joined_at[c.pid] = 0  # joined at creation, before running
        elif op == "exit" and procs:
            p = procs[k % len(procs)]
            if not p.exited:
                m.terminate_process(p, 0)
        else:
            m.run_for(ms(d))
        live = [p for p in procs if j in p.jobs and not p.exited]
        # the limit is never exceeded by the processes actually running in the job
        assert len(live) <= limit
        assert m.query_job_accounting(j)["ActiveProcesses"] == len(live) + len(j.pending)
        # accounting is the members' user time since they joined, exited ones included
        members = [p for p in procs if p.pid in joined_at]
        expected = sum(user(p) - joined_at[p.pid] for p in members)
        assert m.job_times(j)[0] == expected
        assert m.query_job_accounting(j)["TotalUserTime"] == expected // (100 * CYCLES_PER_NS)
        m.check_invariants()


def test_a_referenced_member_keeps_its_job_alive():
    m, _ = machine()
    j = m.create_job("J")
    p = proc(m, "p")
    m.assign_process_to_job(j, p)
    m.open_handle(p)
    m.close_job_handle(j)
    m.terminate_process(p, 0)
    assert not j.closed and [x["name"] for x in m.state()["jobs"]] == ["J"]
    m.close_handle(p)
    assert j.closed and m.state()["jobs"] == []


# ---- unhandled exceptions (§6.17) ------------------------------------------------------------

STATUS_ACCESS_VIOLATION = 0xC0000005


def exits(events):
    """(type, tid or pid, exit code) of each exit event, in order."""
    return [(e["type"], e.get("tid", e["pid"]), e["exit_code"]) for e in events
            if e["type"] in ("thread_exit", "process_exit")]


def test_unhandled_exception_in_a_die_on_unhandled_exception_job():
    m, ev = machine(cpus=2)
    j = m.create_job("J", completion_port=True)
    assert m.set_job_limits(j, die_on_unhandled_exception=True)
    p = proc(m, "p", program=[P.cpu(sec(10))], threads=3)
    assert m.assign_process_to_job(j, p)
    m.run_until(ms(50))
    faulting, others = p.threads[1], [p.threads[0], p.threads[2]]
    del ev[:]
    assert m.raise_unhandled_exception(faulting, STATUS_ACCESS_VIOLATION)
    # the exception code is the exit status of the process and of every thread (§6.17, §8.4)
    assert p.exited and m.get_exit_code_process(p) == STATUS_ACCESS_VIOLATION
    assert all(t.state == TERMINATED and t.exit_code == STATUS_ACCESS_VIOLATION
               for t in p.threads)
    assert ev[0] == {"time_us": 50000.0, "type": "unhandled_exception", "pid": p.pid,
                     "tid": faulting.tid, "name": faulting.name, "code": STATUS_ACCESS_VIOLATION,
                     "die_on_unhandled_exception": True}
    # the other threads end first, the faulting one last, then the process
    assert exits(ev) == [("thread_exit", others[0].tid, STATUS_ACCESS_VIOLATION),
                         ("thread_exit", others[1].tid, STATUS_ACCESS_VIOLATION),
                         ("thread_exit", faulting.tid, STATUS_ACCESS_VIOLATION),
                         ("process_exit", p.pid, STATUS_ACCESS_VIOLATION)]
    assert messages(ev) == [("ABNORMAL_EXIT_PROCESS", p.pid), ("ACTIVE_PROCESS_ZERO", None)]
    # an exception is not a limit violation: TotalTerminatedProcesses does not count it (§6.14)
    acct = m.query_job_accounting(j)
    assert (acct["TotalProcesses"], acct["ActiveProcesses"],
            acct["TotalTerminatedProcesses"]) == (1, 0, 0)
    assert acct["TotalUserTime"] > 0  # the time it ran stays charged to the job
    m.check_invariants()


def test_unhandled_exception_without_a_job():
    m, ev = machine()
    p = proc(m, "p", program=[P.cpu(sec(10))])
    waiter = proc(m, "w", program=[P.wait(p), P.sleep(sec(100))])
    m.run_until(ms(10))
    t = p.threads[0]
    assert m.raise_unhandled_exception(t, 0xC00000FD)  # STATUS_STACK_OVERFLOW
    unhandled = [e for e in ev if e["type"] == "unhandled_exception"]
    assert [(e["pid"], e["code"], e["die_on_unhandled_exception"]) for e in unhandled] == [
        (p.pid, 0xC00000FD, False)]
    assert p.exit_code == t.exit_code == 0xC00000FD and p.signaled
    assert not any(e["type"] == "job_message" for e in ev)
    m.run_until(ms(20))
    assert waiter.threads[0].pc == 2  # the process object was signaled: its waiter went on
    m.check_invariants()


def test_unhandled_exception_in_a_nested_job_reaches_every_port():
    m, ev = machine()
    outer = m.create_job("J", completion_port=True)
    inner = m.create_job("J2", parent=outer, completion_port=True)
    m.set_job_limits(outer, die_on_unhandled_exception=True)  # the flag on the parent only
    p = proc(m, "p")
    assert m.assign_process_to_job(inner, p)
    del ev[:]
    assert m.raise_unhandled_exception(p.threads[0], STATUS_ACCESS_VIOLATION)
    unhandled = next(e for e in ev if e["type"] == "unhandled_exception")
    assert unhandled["die_on_unhandled_exception"] is True
    got = [(e["job"], e["message"], e["pid"], e.get("source_job")) for e in ev
           if e["type"] == "job_message"]
    assert got == [("J2", "ABNORMAL_EXIT_PROCESS", p.pid, None),
                   ("J", "ABNORMAL_EXIT_PROCESS", p.pid, "J2"),
                   ("J2", "ACTIVE_PROCESS_ZERO", None, None),
                   ("J", "ACTIVE_PROCESS_ZERO", None, "J2"),
                   ("J", "ACTIVE_PROCESS_ZERO", None, None)]
    for job in (inner, outer):
        acct = m.query_job_accounting(job)
        assert (acct["TotalProcesses"], acct["ActiveProcesses"],
                acct["TotalTerminatedProcesses"]) == (1, 0, 0)


def test_an_exception_code_off_the_list_is_a_normal_exit_message():
    m, ev = machine()
    j = m.create_job("J", completion_port=True)
    m.set_job_limits(j, die_on_unhandled_exception=True)
    p = proc(m, "p")
    m.assign_process_to_job(j, p)
    assert m.raise_unhandled_exception(p.threads[0], 0xE06D7363)  # a C++ exception
    assert p.exit_code == 0xE06D7363
    assert messages(ev)[1:] == [("EXIT_PROCESS", p.pid), ("ACTIVE_PROCESS_ZERO", None)]


def test_unhandled_exception_refusals_give_error_and_reason():
    m, ev = machine()
    p = proc(m, "p")
    t = p.threads[0]
    assert not m.raise_unhandled_exception(t, 1 << 32)
    assert (m.last_error, m.last_error_reason) == (ERROR_INVALID_PARAMETER,
                                                   "exception code 4294967296 is not 32 bits")
    assert not p.exited
    m.terminate_process(p, 0)
    assert not m.raise_unhandled_exception(t, STATUS_ACCESS_VIOLATION)
    assert (m.last_error, m.last_error_reason) == (ERROR_ACCESS_DENIED, "the thread has exited")
    assert p.exit_code == 0
    assert not m.raise_unhandled_exception(m.idle_threads[0], STATUS_ACCESS_VIOLATION)
    assert errors(ev, "unhandled_exception") == ["ERROR_INVALID_PARAMETER",
                                                 "ERROR_ACCESS_DENIED", "ERROR_ACCESS_DENIED"]
    assert not any(e["type"] == "unhandled_exception" for e in ev)


# ---- why a call failed: last_error_reason ----------------------------------------------------

def test_last_error_reason_says_why_set_information_job_object_failed():
    m, ev = machine(cpus=2)
    j = m.create_job("J")
    assert m.last_error_reason is None
    assert not m.set_job_limits(j, affinity=[5])
    assert m.last_error == ERROR_INVALID_PARAMETER
    assert m.last_error_reason == "affinity [5] is not a non-empty subset of CPUs 0..1"
    # the api_error event still carries the same reason
    refused = [e for e in ev if e["type"] == "api_error"]
    assert [(e["op"], e["reason"]) for e in refused] == [("set_job_limits", m.last_error_reason)]
    assert not m.set_job_cpu_rate(j, weight=10)
    assert m.last_error_reason == "weight 10 is not 1..9"
    # a later failure that gives no reason leaves none behind
    p = proc(m, "p")
    m.terminate_process(p, 0)
    assert not m.terminate_process(p, 0)
    assert (m.last_error, m.last_error_reason) == (ERROR_ACCESS_DENIED, None)
    m.close_job_handle(j)
    assert not m.close_job_handle(j)
    assert (m.last_error, m.last_error_reason) == (ERROR_INVALID_HANDLE, None)


def test_runner_reports_the_kernels_reason_for_a_refused_limit():
    text = """
[system]
cpus = 2

[[job]]
name = "J"
[job.cpu_rate]
min_rate = 6000
max_rate = 8000

[[job]]
name = "K"
[job.cpu_rate]
min_rate = 5000
max_rate = 8000
"""
    with pytest.raises(ScenarioError) as info:
        run_scenario(parse_scenario(text, "rates.toml"))
    assert str(info.value) == ("rates.toml:13: job[1].cpu_rate: job 'K': SetInformationJobObject "
                               "fails: the jobs' MinRates would add up to 11000 (> 10000)")

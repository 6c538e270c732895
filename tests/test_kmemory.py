"""The simulated kernel's objects in typed memory (core/kernel/kmemory.py)."""

from datetime import timedelta

import pytest

from core.kernel import Machine, ms
from core.kernel import program as P
from core.kernel.boot import boot
from core.kernel.kmemory import bind
from core.kernel.ntapi import ProcessBasicInformation, ThreadBasicInformation
from core.layouts import catalogue

WIN10 = ("10.0.19041.3570", "x64")


@pytest.fixture
def machine():
    m = Machine(cpus=2)
    boot(m, "bare")
    app = m.create_process("app.exe", "high", affinity=[1])
    a = m.create_thread(app, program=[P.cpu(ms(30)), P.sleep(ms(100))], name="A")
    b = m.create_thread(app, priority="above_normal", program=[P.cpu(ms(5))], name="B")
    m.run_until(ms(50))
    return m, app, a, b


def build(bid=WIN10):
    return catalogue().find(*bid)


def walk(km, head_address, type_name, link):
    return [e.object for e in km.space.walk_list(head_address, type_name, link)]


def test_eprocess_fields_have_the_kernel_values(machine):
    m, app, a, b = machine
    km = bind(m, build())
    e = km.process_object(app)
    f = e.field
    assert f("UniqueProcessId").value == app.pid
    assert f("InheritedFromUniqueProcessId").modelled is False  # no parent
    assert f("ImageFileName").display.endswith('"app.exe"')
    assert f("CreateTime").meaning == m.boot_time
    assert f("ExitStatus").value == 259 and f("ActiveThreads").value == 1  # B has exited
    assert f("PriorityClass").value == 3  # PROCESS_PRIORITY_CLASS_HIGH
    assert f("Pcb.BasePriority").value == 13
    assert f("Pcb.QuantumReset").value == 6  # client, background: 2 ticks = 6 units
    assert f("Pcb.Affinity.Bitmap[0]").value == 0b10
    assert f("Pcb.UserTime").value == (30 + 5) * 1_000_000 // 15_625_000  # whole ticks
    assert f("Pcb.Header.Type").meaning == "ProcessObject"
    assert f("Protection.Level").value == 0 and f("Job").value == 0
    peb = f("Peb").value
    assert peb == km.peb_address(app) and peb != 0
    assert not f("Token").modelled  # no _TOKEN layout is shipped
    status, info = m.nt.NtQueryInformationProcess(app, ProcessBasicInformation)
    assert info["PebBaseAddress"] == peb


def test_ethread_fields_and_their_changes(machine):
    m, app, a, b = machine
    km = bind(m, build())
    t = km.thread_object(a)
    f = t.field
    assert f("Cid.UniqueProcess").value == app.pid and f("Cid.UniqueThread").value == a.tid
    assert f("Tcb.State").meaning == "Waiting" and f("Tcb.WaitReason").meaning == "DelayExecution"
    assert f("Tcb.Priority").value == a.priority and f("Tcb.BasePriority").value == 13
    assert f("Tcb.Affinity.Mask").value == 0b10 and f("Tcb.NextProcessor").value == 1
    assert f("Tcb.ContextSwitches").value == a.cswitches > 0
    assert f("Tcb.Process").value == km.process_object(app).address
    assert f("Tcb.ApcState.Process").value == km.process_object(app).address
    assert f("Tcb.Teb").value == km.teb_address(a) != 0
    assert not f("StartAddress").modelled
    _, tinfo = m.nt.NtQueryInformationThread(a, ThreadBasicInformation)
    assert tinfo["TebBaseAddress"] == f("Tcb.Teb").value
    m.open_handle(a)
    m.run_until(ms(200))  # A wakes and exits: the provider shows it without a sync
    assert t.field("Tcb.State").meaning == "Terminated" and t.field("ExitStatus").value == 0
    assert t.field("Tcb.Header.SignalState").value == 1


def test_lists_match_the_machine(machine):
    m, app, a, b = machine
    km = bind(m, build())
    procs = walk(km, km.head.address, "_EPROCESS", "ActiveProcessLinks")
    assert [p.field("UniqueProcessId").value for p in procs] == [4, app.pid]  # no Idle
    e = km.process_object(app)
    threads = walk(km, e.address_of("ThreadListHead"), "_ETHREAD", "ThreadListEntry")
    assert threads == [km.thread_object(a)]  # B exited and nobody holds it
    kthreads = walk(km, e.address_of("Pcb.ThreadListHead"), "_ETHREAD", "Tcb.ThreadListEntry")
    assert kthreads == threads
    system = walk(km, km.process_object(m.system_process).address_of("ThreadListHead"),
                  "_ETHREAD", "ThreadListEntry")
    assert len(system) == 11 and all(not t.field("Tcb.Teb").value for t in system)


def test_exited_objects_stay_while_referenced(machine):
    m, app, a, b = machine
    km = bind(m, build())
    m.open_handle(app)
    m.run_until(ms(300))
    assert app.exited
    km.sync()
    e = km.process_object(app)
    assert e is not None and e.field("ExitStatus").value == 0
    assert e.field("ExitTime").meaning > m.boot_time
    assert e.field("Pcb.Header.SignalState").value == 1
    assert app.pid in [p.field("UniqueProcessId").value
                       for p in walk(km, km.head.address, "_EPROCESS", "ActiveProcessLinks")]
    m.close_handle(app)
    km.sync()
    assert km.process_object(app) is None
    assert [p.field("UniqueProcessId").value
            for p in walk(km, km.head.address, "_EPROCESS", "ActiveProcessLinks")] == [4]


def test_new_objects_appear_on_sync(machine):
    m, app, a, b = machine
    km = bind(m, build())
    late = m.create_process("late.exe")
    t = m.create_thread(late, program=[P.sleep(ms(10))])
    km.sync()
    assert km.process_object(late).field("ActiveThreads").value == 1
    assert km.thread_object(t).field("Cid.UniqueThread").value == t.tid


@pytest.mark.parametrize("bid", [("5.1.2600.5512", "x86"), ("6.1.7601.17514", "x64"),
                                 ("10.0.22631.2428", "x64"), ("10.0.26100", "x64")])
def test_every_build_lays_the_same_objects_out(machine, bid):
    m, app, a, b = machine
    km = bind(m, build())
    km.set_build(build(bid))
    e, t = km.process_object(app), km.thread_object(a)
    assert e.field("UniqueProcessId").value == app.pid
    assert t.field("Tcb.Priority").value == a.priority
    assert t.field("Tcb.State").meaning == "Waiting"
    aff = t.field("Tcb.Affinity")
    shown = aff.value if aff.kind in ("int", "pointer") else aff.find("Mask").value
    if aff.kind == "pointer":  # Windows 11: a separately allocated _KAFFINITY_EX
        target = km.space.locate(shown).object
        shown = target.field("Bitmap[0]").value
    assert shown == 0b10
    procs = walk(km, km.head.address, "_EPROCESS", "ActiveProcessLinks")
    assert len(procs) == 2
    # members the build lacks are skipped, and said so
    assert all("no such member" in p for p in e.problems())

"""The simulated kernel's objects in typed memory (core/kernel/kmemory.py)."""

import json

import pytest

from core.dt import format_dt
from core.kernel import Machine, ms
from core.kernel import program as P
from core.kernel.boot import boot
from core.kernel.kmemory import bind
from core.kernel.ntapi import ProcessBasicInformation, ThreadBasicInformation
from core.layouts import SUPPLEMENT_FILE, Catalogue, catalogue
from core.resources import resource_path
from core.values import format_address

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


# ---- jobs: _EJOB and _EPROCESS.Job ---------------------------------------------------------
EVERY_BUILD = [("5.1.2600.5512", "x86"), ("6.1.7601.17514", "x64"), WIN10,
               ("10.0.22631.2428", "x64"), ("10.0.26100", "x64")]
MB = 1 << 20


def affinity_mask(node):
    """An affinity member's mask in whatever shape the build gives it."""
    return node.value if node.kind == "int" else node.find("Bitmap[0]").value


def job_names(km, head_address):
    return [e.object.label for e in km.space.walk_list(head_address, "_EJOB", "JobLinks")]


@pytest.fixture
def jobbed(machine):
    m, app, a, b = machine
    job = m.create_job("sandbox")
    assert m.set_job_limits(job, active_process=3, affinity=[1], priority_class="below_normal",
                            scheduling_class=3, per_process_user_time_ns=ms(500),
                            process_memory=2 * MB, job_memory=5 * MB)
    assert m.assign_process_to_job(job, app)
    t = m.create_thread(app, program=[P.commit(MB + 100), P.cpu(ms(20))], name="C")
    m.run_until(ms(120))
    return m, app, a, t, job


def test_ejob_has_the_limits_and_accounting_of_the_job(jobbed):
    m, app, a, t, job = jobbed
    km = bind(m, build())
    e = km.job_object(job)
    f = e.field
    assert e.label == "sandbox" and e.type == "_EJOB"
    acct = m.query_job_accounting(job)
    assert acct["TotalUserTime"] > 0
    for key in ("TotalUserTime", "TotalKernelTime", "ThisPeriodTotalUserTime",
                "ThisPeriodTotalKernelTime", "TotalProcesses", "ActiveProcesses",
                "TotalTerminatedProcesses"):
        assert f(key).value == acct[key], key
    assert f("TotalProcesses").value == 1 and f("ActiveProcesses").value == 1
    assert f("LimitFlags").value == job.limit_flags == 0x3BA
    assert f("ActiveProcessLimit").value == 3
    assert affinity_mask(f("Affinity")) == 0b10 and affinity_mask(f("EffectiveAffinity")) == 0b10
    assert f("PriorityClass").value == 5 == f("EffectivePriorityClass").value  # BELOW_NORMAL
    assert f("SchedulingClass").value == 3 == f("EffectiveSchedulingClass").value
    assert f("PerProcessUserTimeLimit").value == ms(500) // 100  # 100 ns units
    assert f("PerJobUserTimeLimit").value == 0
    assert f("EndOfJobTimeAction").value == 0
    # memory limits and usage in pages; the commit of 1 MB + 100 bytes charges 257 pages
    assert f("ProcessMemoryLimit").value == 512 and f("JobMemoryLimit").value == 1280
    assert f("CurrentJobMemoryUsed").value == 257
    assert f("PeakProcessMemoryUsed").value == 257 == f("PeakJobMemoryUsed").value
    assert f("Event.Header.Type").meaning == "EventNotificationObject"
    assert f("Event.Header.SignalState").value == 0
    assert f("ParentJob").modelled and f("ParentJob").value == 0  # a top-level job
    # what the simulation does not have stays not modelled
    for path in ("JobLock", "CompletionPort", "CpuRateControl", "ReadOperationCount",
                 "TotalPageFaultCount", "WakeFilter", "NotificationInfo", "AccessState",
                 "RootJob", "NestingDepth"):
        assert not f(path).modelled, path
    # the process points at its job and is on its list
    proc = km.process_object(app)
    assert proc.field("Job").value == e.address
    assert walk(km, e.address_of("ProcessListHead"), "_EPROCESS", "JobLinks") == [proc]
    assert [x.object for x in f("ProcessListHead").walk()] == [proc]
    assert job_names(km, km.job_head.address) == ["sandbox"]
    assert km.space.symbol("nt!PspJobList") is km.job_head
    assert km.process_object(m.system_process).field("Job").value == 0  # in no job
    assert e.problems() == []


def test_ejob_values_are_live(jobbed):
    m, app, a, t, job = jobbed
    km = bind(m, build())
    e = km.job_object(job)
    before = e.field("TotalUserTime").value
    late = m.create_thread(app, program=[P.cpu(ms(40))], name="late")
    m.run_until(ms(300))
    assert late.state_name == "Terminated"
    assert e.field("TotalUserTime").value == m.query_job_accounting(job)["TotalUserTime"] > before
    m.terminate_job(job, 7)
    m.run_until(ms(310))
    assert e.field("ActiveProcesses").value == 0 and e.field("TotalProcesses").value == 1
    assert e.field("CurrentJobMemoryUsed").value == 0
    assert e.field("PeakJobMemoryUsed").value == 257  # peaks stay


def test_process_assigned_after_bind_gets_its_job_on_sync(machine):
    m, app, a, b = machine
    km = bind(m, build())
    proc = km.process_object(app)
    assert proc.field("Job").modelled and proc.field("Job").value == 0
    job = m.create_job("late")
    assert m.assign_process_to_job(job, app)
    km.sync()
    e = km.job_object(job)
    assert proc.field("Job").value == e.address
    assert [x.object for x in e.field("ProcessListHead").walk()] == [proc]
    child = m.create_process("child.exe", parent=app)  # children join the parent's job (§6.9)
    km.sync()
    kid = km.process_object(child)
    assert kid.field("Job").value == e.address
    assert [x.object for x in e.field("ProcessListHead").walk()] == [proc, kid]
    assert e.field("TotalProcesses").value == 2 and e.field("ActiveProcesses").value == 2


def test_nested_jobs_link_parent_root_and_children(machine):
    m, app, a, b = machine
    outer = m.create_job("outer")
    middle = m.create_job("middle", parent=outer)
    inner = m.create_job("inner", parent=middle)
    other = m.create_job("other", parent=outer)
    assert m.set_job_limits(outer, priority_class="normal", affinity=[0, 1])
    assert m.set_job_limits(middle, priority_class="above_normal", affinity=[1])
    assert m.assign_process_to_job(inner, app)
    km = bind(m, build())
    eo, em, ei, ex = (km.job_object(j) for j in (outer, middle, inner, other))
    assert ei.field("ParentJob").value == em.address and em.field("ParentJob").value == eo.address
    assert ei.field("RootJob").value == eo.address == ex.field("RootJob").value
    assert eo.field("ParentJob").value == 0 and not eo.field("RootJob").modelled
    children = [x.object for x in eo.field("ChildJobListHead").walk()]
    assert children == [em, ex]
    assert [x.object for x in em.field("ChildJobListHead").walk()] == [ei]
    assert list(ei.field("ChildJobListHead").walk()) == []
    # the process's one JobLinks is on its innermost job's list only
    proc = km.process_object(app)
    assert proc.field("Job").value == ei.address
    assert [x.object for x in ei.field("ProcessListHead").walk()] == [proc]
    assert list(eo.field("ProcessListHead").walk()) == []
    assert eo.field("TotalProcesses").value == 1  # accounting counts nested members (§6.14)
    # the effective limits are the chain's (§6.7, §6.8)
    assert em.field("EffectivePriorityClass").value == 2  # NORMAL beats ABOVE_NORMAL
    assert em.field("PriorityClass").value == 6
    assert affinity_mask(ei.field("EffectiveAffinity")) == 0b10
    assert not ei.field("Affinity").modelled  # inner sets no affinity limit of its own
    assert job_names(km, km.job_head.address) == ["outer", "middle", "inner", "other"]


def test_a_process_moves_to_a_job_nested_under_its_own(machine):
    m, app, a, b = machine
    first = m.create_job("first")
    assert m.assign_process_to_job(first, app)
    km = bind(m, build())
    proc = km.process_object(app)
    ef = km.job_object(first)
    second = m.create_job("second")  # empty and top-level: nests under "first" (§6.10)
    km.sync()
    es = km.job_object(second)
    assert es.field("ParentJob").value == 0 and list(ef.field("ChildJobListHead").walk()) == []
    assert m.assign_process_to_job(second, app)
    km.sync()
    assert es.field("ParentJob").value == ef.address
    assert [x.object for x in ef.field("ChildJobListHead").walk()] == [es]
    assert proc.field("Job").value == es.address
    assert [x.object for x in es.field("ProcessListHead").walk()] == [proc]
    assert list(ef.field("ProcessListHead").walk()) == []


def test_destroyed_jobs_leave_memory(machine):
    m, app, a, b = machine
    job = m.create_job("short")
    assert m.assign_process_to_job(job, app)
    km = bind(m, build())
    e = km.job_object(job)
    m.open_handle(app)  # keeps the exited process's EPROCESS
    m.run_until(ms(300))
    assert app.exited
    # the exited process's object still references its job, which lives on (§6.11)
    assert m.close_job_handle(job) and job in m.jobs
    km.sync()
    proc = km.process_object(app)
    assert proc.field("Job").value == e.address
    m.close_handle(app)
    km.sync()
    assert km.process_object(app) is None and job not in m.jobs
    assert km.job_object(job) is None and job_names(km, km.job_head.address) == []


def test_jobs_of_a_sync_before_bind_and_after_build_switch(machine):
    m, app, a, b = machine
    outer = m.create_job("outer")
    inner = m.create_job("inner", parent=outer)
    assert m.assign_process_to_job(inner, app)
    km = bind(m, build(("6.1.7601.17514", "x64")))  # Windows 7: no job nesting members
    eo, ei = km.job_object(outer), km.job_object(inner)
    assert km.space.plan("_EJOB").try_field("ParentJob") is None
    km.set_build(build())  # the child-job lists appear with a build that has them
    assert [x.object for x in eo.field("ChildJobListHead").walk()] == [ei]
    assert ei.field("ParentJob").value == eo.address


@pytest.mark.parametrize("bid", EVERY_BUILD)
def test_ejob_on_every_build(jobbed, bid):
    m, app, a, t, job = jobbed
    km = bind(m, build(bid))
    e = km.job_object(job)
    f = e.field
    acct = m.query_job_accounting(job)
    assert f("TotalUserTime").value == acct["TotalUserTime"]
    assert f("ActiveProcesses").value == 1 and f("LimitFlags").value == 0x3BA
    assert f("PriorityClass").value == 5 and f("SchedulingClass").value == 3
    assert affinity_mask(f("Affinity")) == 0b10
    assert f("ProcessMemoryLimit").value == 512 and f("CurrentJobMemoryUsed").value == 257
    assert f("Event.Header.SignalState").value == 0
    proc = km.process_object(app)
    assert proc.field("Job").value == e.address
    assert walk(km, e.address_of("ProcessListHead"), "_EPROCESS", "JobLinks") == [proc]
    assert job_names(km, km.job_head.address) == ["sandbox"]
    plan = km.space.plan("_EJOB")
    nesting = plan.try_field("ParentJob") is not None
    version = tuple(int(x) for x in bid[0].split(".")[:2])
    assert nesting == (version >= (6, 2))  # Windows 8 brought nested jobs
    if nesting:
        assert f("ParentJob").value == 0 and affinity_mask(f("EffectiveAffinity")) == 0b10
        assert f("EffectiveSchedulingClass").value == 3
    # members the build lacks are skipped, and said so
    assert all("no such member" in p for p in e.problems())
    assert bool(e.problems()) == (not nesting)


# ---- protection, minimal, pico --------------------------------------------------------------
@pytest.mark.parametrize("bid", [("6.3.9600.16384", "x64"), WIN10, ("10.0.26100", "x64")])
def test_ps_protection_bitfields_read_back(machine, bid):
    m, app, a, b = machine
    lsa = m.create_process("lsass.exe", protection="ppl-lsa")
    system_like = m.create_process("smss.exe", protection="pp-winsystem")
    km = bind(m, build(bid))
    p = km.process_object(lsa).field("Protection")
    assert p.find("Level").value == 0x41
    assert p.find("Type").value == 1 and p.find("Type").enum == "PsProtectedTypeProtectedLight"
    assert p.find("Signer").value == 4 and p.find("Signer").enum == "PsProtectedSignerLsa"
    assert p.find("Audit").value == 0 and p.find("Audit").modelled
    q = km.process_object(system_like).field("Protection")
    assert (q.find("Type").value, q.find("Signer").value, q.find("Level").value) == (2, 7, 0x72)
    assert km.process_object(app).field("Protection.Level").value == 0


@pytest.mark.parametrize("bid", [("5.1.2600.5512", "x86"), ("6.1.7601.17514", "x64"),
                                 ("6.2.9200.16384", "x64")])
def test_builds_without_protection_skip_it(machine, bid):
    m, app, a, b = machine
    lsa = m.create_process("lsass.exe", protection="ppl-lsa")
    km = bind(m, build(bid))
    e = km.process_object(lsa)
    assert km.space.plan("_EPROCESS").try_field("Protection") is None
    assert any(p.startswith("Protection.Level: no such member") for p in e.problems())
    km.set_build(build())  # the value was kept: a build with the member shows it
    assert e.field("Protection.Level").value == 0x41


def test_minimal_and_pico_flags(machine):
    m, app, a, b = machine
    registry = m.create_process("Registry", minimal=True)
    pico = m.create_process("bash", subsystem="wsl")
    km = bind(m, build())
    r, w, n = (km.process_object(p) for p in (registry, pico, app))
    assert r.field("Minimal").value == 1 and r.field("Flags3").value & 1
    assert n.field("Minimal").value == 0 and n.field("Minimal").modelled
    assert w.field("PicoCreated").value == 1 and n.field("PicoCreated").value == 0
    assert w.field("Flags2").value >> w.field("PicoCreated").bit_position & 1
    # no context given: not modelled, no invented address; an ordinary process: NULL
    assert not w.field("PicoContext").modelled
    assert n.field("PicoContext").modelled and n.field("PicoContext").value == 0
    pico.pico_context = 0xFFFFB80C_51230000
    assert w.field("PicoContext").value == 0xFFFFB80C_51230000
    assert r.field("Peb").value == 0 and w.field("Peb").value == 0
    km.set_build(build(("5.1.2600.5512", "x86")))  # XP: no Flags2/Flags3 bits, skipped
    assert all("no such member" in p for p in w.problems())


# ---- fibers ---------------------------------------------------------------------------------
XP = ("5.1.2600.5512", "x86")
WIN11_24H2 = ("10.0.26100", "x64")
NT_TIB_SIZE = {"x86": 0x1C, "x64": 0x38}  # winnt.h NT_TIB (NT_TIB32: 0x1C on both)


def fiber_machine(arch="x64"):
    """A machine of `arch` with one user thread F that has not become a fiber."""
    m = Machine(cpus=2, windows_arch=arch)
    boot(m, "bare")
    app = m.create_process("app.exe")
    t = m.create_thread(app, program=[P.sleep(ms(100))], name="F")
    return m, app, t


def fiber_data(teb):
    """(modelled, value) of the TEB's NtTib.FiberData."""
    node = teb.field("NtTib.FiberData")
    return node.modelled, node.value


def test_teb_nttib_fiber_data_follows_the_fiber_calls():
    m, app, t = fiber_machine()
    km = bind(m, build())
    teb = km.teb[id(t)]
    has = teb.field("HasFiberData")
    assert has.kind == "bits" and has.modelled and has.value == 0
    # not a fiber: the union holds Version, whose value KOI does not have
    assert fiber_data(teb) == (False, 0) and not teb.field("NtTib.Version").modelled
    main = m.convert_thread_to_fiber(t, 0x1234)
    assert main is not None
    assert teb.field("HasFiberData").value == 1  # read live: no sync needed
    assert teb.field("SameTebFlags").value >> teb.field("HasFiberData").bit_position & 1
    assert fiber_data(teb) == (True, main) == (True, m.get_current_fiber(t))
    worker = m.create_fiber(t, "worker", [P.cpu(ms(1))], parameter=0x55)
    assert fiber_data(teb) == (True, main)  # CreateFiber selects nothing
    assert m.switch_to_fiber(t, "worker")
    assert fiber_data(teb) == (True, worker) == (True, m.get_current_fiber(t))
    assert m.switch_to_fiber(t, main)
    assert fiber_data(teb) == (True, main)
    assert m.delete_fiber(t, "worker")  # not the running fiber: the TEB does not change
    assert fiber_data(teb) == (True, main) and teb.field("HasFiberData").value == 1
    assert m.convert_fiber_to_thread(t)
    assert teb.field("HasFiberData").value == 0 and fiber_data(teb) == (False, 0)
    assert m.get_current_fiber(t) is None
    assert teb.problems() == []


def test_deleting_the_running_fiber_ends_the_thread_and_its_fiber_data():
    m, app, t = fiber_machine()
    km = bind(m, build())
    teb = km.teb[id(t)]
    m.convert_thread_to_fiber(t)
    worker = m.create_fiber(t, "worker", [P.cpu(ms(1))])
    assert m.switch_to_fiber(t, "worker") and fiber_data(teb) == (True, worker)
    assert m.delete_fiber(t, worker)  # its thread calls ExitThread(1) (§7.4)
    assert t.exit_code == 1 and t.fiber is None
    assert teb.field("HasFiberData").value == 0 and fiber_data(teb) == (False, 0)


def test_teb_nttib_self_stack_and_fls_data():
    m, app, t = fiber_machine()
    km = bind(m, build())
    teb = km.teb[id(t)]
    tib = teb.field("NtTib")
    assert tib.kind == "struct" and [c.name for c in tib.children] == [
        "ExceptionList", "StackBase", "StackLimit", "SubSystemTib", "FiberData", "Version",
        "ArbitraryUserPointer", "Self"]
    self_ = teb.field("NtTib.Self")
    assert self_.modelled and self_.value == teb.address == km.teb_address(t)
    assert self_.target.object is teb
    m.convert_thread_to_fiber(t)
    assert m.fls_alloc(t, "slot") == 1 and m.fls_set_value(t, "slot", 0x77)
    # no stack addresses, exception chain or FLS block in the simulation
    for path in ("NtTib.ExceptionList", "NtTib.StackBase", "NtTib.StackLimit",
                 "NtTib.SubSystemTib", "NtTib.ArbitraryUserPointer", "FlsData"):
        assert not teb.field(path).modelled, path
    km.set_build(build(XP))  # Self follows the TEB to its new address
    assert teb.field("NtTib.Self").value == teb.address == km.teb_address(t)
    assert teb.field("NtTib.Self").offset == 0x18


@pytest.mark.parametrize("bid", [XP, ("6.1.7601.17514", "x86"), ("6.1.7601.17514", "x64"),
                                 WIN10, WIN11_24H2])
def test_fiber_data_lies_where_nt_tib_puts_it(bid):
    arch = bid[1]
    m, app, t = fiber_machine(arch)
    km = bind(m, build(bid))
    teb = km.teb[id(t)]
    address = m.convert_thread_to_fiber(t)
    ptr = km.build.pointer_size
    assert address < 1 << (8 * ptr)  # a 32-bit Windows gives 32-bit fiber addresses
    at = {"x86": 0x10, "x64": 0x20}[arch]
    raw = km.space.read(teb.address + at, ptr, process=teb)
    assert int.from_bytes(raw, "little") == address == teb.field("NtTib.FiberData").value
    self_at = {"x86": 0x18, "x64": 0x30}[arch]
    raw = km.space.read(teb.address + self_at, ptr, process=teb)
    assert int.from_bytes(raw, "little") == teb.address
    assert teb.field("NtTib").size == NT_TIB_SIZE[arch]
    m.create_fiber(t, "worker", [P.cpu(ms(1))])
    assert m.switch_to_fiber(t, "worker")
    raw = km.space.read(teb.address + at, ptr, process=teb)
    assert int.from_bytes(raw, "little") == address + 0x100  # the next fiber of the process
    assert teb.problems() == []


def test_x86_fiber_addresses_are_32_bit():
    m, app, t = fiber_machine("x86")
    assert m.convert_thread_to_fiber(t) == 0x01F0_0000
    assert m.create_fiber(t, "worker", [P.cpu(ms(1))]) == 0x01F0_0100


def test_a_64_bit_fiber_address_is_not_cut_to_fit_an_x86_build():
    m, app, t = fiber_machine("x64")
    km = bind(m, build(XP))  # an x64 machine shown as a 32-bit build
    teb = km.teb[id(t)]
    m.convert_thread_to_fiber(t)
    assert teb.field("HasFiberData").value == 1
    assert fiber_data(teb) == (False, 0) and teb.problems() == []


@pytest.mark.parametrize("bid", [XP, WIN11_24H2])
def test_dt_text_shows_the_nt_tib_fields(bid):
    arch = bid[1]
    b = build(bid)
    p = "Ptr64" if arch == "x64" else "Ptr32"
    o = (lambda i: i * 8) if arch == "x64" else (lambda i: i * 4)
    lines = format_dt(b, "_TEB", depth=1).splitlines()
    assert lines[1:10] == [
        "   +0x000 NtTib            : _NT_TIB",
        f"      +0x000 ExceptionList    : {p} _EXCEPTION_REGISTRATION_RECORD",
        f"      +0x{o(1):03x} StackBase        : {p} Void",
        f"      +0x{o(2):03x} StackLimit       : {p} Void",
        f"      +0x{o(3):03x} SubSystemTib     : {p} Void",
        f"      +0x{o(4):03x} FiberData        : {p} Void",
        f"      +0x{o(4):03x} Version          : Uint4B",
        f"      +0x{o(5):03x} ArbitraryUserPointer : {p} Void",
        f"      +0x{o(6):03x} Self             : {p} _NT_TIB",
    ]
    assert lines[10] == f"   +0x{NT_TIB_SIZE[arch]:03x} EnvironmentPointer : {p} Void"
    # the values as the object view shows them
    m, app, t = fiber_machine(arch)
    km = bind(m, b)
    teb = km.teb[id(t)]
    address = m.convert_thread_to_fiber(t)
    assert teb.field("NtTib.FiberData").display == format_address(address, arch)
    assert teb.field("NtTib.Self").display == format_address(teb.address, arch)


def test_nt_tib_supplement_fits_every_shipped_teb():
    """Every build's _TEB/_TEB32 leaves NtTib exactly the room the supplement's
    _NT_TIB/_NT_TIB32 takes on that architecture (measured to the next member, not by
    the supplement's own size)."""
    supplement = json.loads(resource_path(SUPPLEMENT_FILE).read_text(encoding="utf-8"))
    checked = 0
    for b in catalogue().builds:
        own = supplement["structs"][b.arch]
        assert own["_NT_TIB"][0] == NT_TIB_SIZE[b.arch] and own["_NT_TIB32"][0] == 0x1C
        assert b.supplemented == {"_NT_TIB", "_NT_TIB32"}  # no build's own data has them
        assert b.struct_source("_NT_TIB") != b.source and b.struct_source("_TEB") == b.source
        for teb, tib in (("_TEB", "_NT_TIB"), ("_TEB32", "_NT_TIB32")):
            if not b.has_struct(teb):
                continue
            layout = b.struct(teb)
            member = layout.member("NtTib")
            following = min(m.offset for m in layout.top_level if m.offset > member.offset)
            room = following - member.offset
            assert (member.offset, member.type.name, room) == (0, tib, own[tib][0]), (b.label, teb)
            checked += 1
    assert checked >= 100


def test_a_build_own_layout_wins_over_the_supplement():
    supplement = {"source": "winnt.h", "structs": {"x64": {
        "_NT_TIB": [0x38, "struct", [["Self", 0x30, "Ptr _NT_TIB", None, None, ""]]],
        "_NT_TIB32": [0x1C, "struct", [["Self", 0x18, "Uint4B", None, None, ""]]]}}}
    own = [0x40, "struct", [["Self", 0x38, "Ptr _NT_TIB", None, None, ""]]]
    data = {"structs": [own], "builds": [
        {"id": "10.0.1.1", "arch": "x64", "name": "test", "source": "own data",
         "source_format": "", "licence": "", "bit_positions": "exact", "pdb_guid": None,
         "pdb_age": None, "notes": "", "structs": {"_NT_TIB": 0}}]}
    b = Catalogue(data, supplement).builds[0]
    assert b.struct("_NT_TIB").size == 0x40 and b.struct_source("_NT_TIB") == "own data"
    assert b.supplemented == {"_NT_TIB32"} and b.struct_source("_nt_tib32") == "winnt.h"
    assert Catalogue(data).builds[0].struct_names == ["_NT_TIB"]  # no supplement given


def test_xp_teb_has_fiber_data_byte(machine):
    m, app, a, b = machine
    t = m.create_thread(app, program=[P.sleep(ms(100))], name="F")
    km = bind(m, build(("5.1.2600.5512", "x86")))
    teb = km.teb[id(t)]
    assert teb.field("HasFiberData").kind == "int" and teb.field("HasFiberData").value == 0
    m.convert_thread_to_fiber(t)
    assert teb.field("HasFiberData").value == 1
    assert km.space.plan("_TEB").try_field("FlsData") is None  # FLS came with Vista


def test_fiber_info_shows_the_fiber_context(machine):
    m, app, a, b = machine
    t = m.create_thread(app, program=[P.sleep(ms(100))], name="F")
    km = bind(m, build())
    main = m.convert_thread_to_fiber(t, 0x1234)
    worker = m.create_fiber(t, "worker", [P.cpu(ms(1))], parameter=0x55, stack_reserve=64 * 1024)
    assert m.fls_alloc(t, "slot") == 1 and m.fls_set_value(t, "slot", 0x77)
    assert m.switch_to_fiber(t, "worker") and m.fls_set_value(t, "slot", 0x88)
    selected = km.fiber_info(t.fiber)
    assert selected["address"] == worker and selected["parameter"] == 0x55
    assert selected["stack_reserve"] == 64 * 1024 and selected["stack_commit"] == 0
    assert selected["fls"] == {1: 0x88} and selected["selected_on_tid"] == t.tid
    assert not selected["converted"] and selected["owner_tid"] == t.tid
    first = km.fiber_info(next(f for f in t.fibers if f.address == main))
    assert first["parameter"] == 0x1234 and first["converted"] and first["fls"] == {1: 0x77}
    assert first["selected_on_tid"] is None and first["stack_reserve"] == 1 << 20
    assert km.teb[id(t)].field("HasFiberData").value == 1

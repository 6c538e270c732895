"""The driver-facing kernel API (formats.md §7, nt-facts §8.2-8.3) and S24's notify parts."""

from core.kernel import Machine, STILL_ACTIVE, ms
from core.kernel import program as P
from core.kernel.boot import boot
from core.kernel.ntapi import (
    CriticalWorkQueue,
    DelayedWorkQueue,
    ProcessBasicInformation,
    ProcessSubsystemInformation,
    ProcessTimes,
    PsCreateProcessNotifySubsystems,
    PsCreateThreadNotifyNonSystem,
    STATUS_ACCESS_DENIED,
    STATUS_INVALID_PARAMETER,
    STATUS_PROCEDURE_NOT_FOUND,
    STATUS_SUCCESS,
    STATUS_TIMEOUT,
    ThreadBasicInformation,
)


def booted(cpus=1):
    m = Machine(cpus=cpus)
    boot(m, "bare")
    events = []
    m.subscribe(events.append)
    return m, events


def test_s24_process_notify_runs_on_the_creating_thread():
    m, _ = booted()
    seen = []

    def on_process(process, pid, info):
        seen.append((pid, info is not None, m.nt.PsGetCurrentThreadId(),
                     m.nt.PsGetCurrentProcessId(),
                     None if info is None else (info.ParentProcessId,
                                                info.CreatingThreadId.UniqueProcess,
                                                info.CreatingThreadId.UniqueThread)))

    assert m.nt.PsSetCreateProcessNotifyRoutineEx(on_process, False) == STATUS_SUCCESS
    parent = m.create_process("P.exe")
    pt = m.create_thread(parent, program=[P.sleep(ms(1000))])
    child = m.create_process("C.exe", parent=parent)
    ct = m.create_thread(child, program=[P.exit_thread(7)], suspended=True)
    # Parent's own creation: no creator thread (the kernel), then the child's on P's thread
    assert seen[-1] == (child.pid, True, pt.tid, parent.pid, (parent.pid, parent.pid, pt.tid))
    assert (ct.state_name, ct.wait_reason_name) == ("Waiting", "Suspended")
    m.resume_thread(ct)
    m.run_until(ms(10))
    # Exit: CreateInfo NULL, in the context of the last thread to exit
    assert seen[-1] == (child.pid, False, ct.tid, child.pid, None)
    assert m.get_exit_code_process(child) == 7


def test_s24_veto_fails_create_process_and_no_thread_runs():
    m, events = booted()

    def deny(process, pid, info):
        if info is not None and info.ImageFileName.endswith("evil.exe"):
            info.CreationStatus = STATUS_ACCESS_DENIED

    m.nt.PsSetCreateProcessNotifyRoutineEx(deny, False)
    parent = m.create_process("P.exe")
    m.create_thread(parent, program=[P.sleep(ms(1000))])
    evil = m.create_process("evil.exe", parent=parent)
    t = m.create_thread(evil, program=[P.cpu(ms(5))])
    m.run_until(ms(50))
    assert t.state_name == "Terminated" and t.cswitches == 0 and t.user == 0
    assert evil.exited and evil.exit_code == STATUS_ACCESS_DENIED
    err = [e for e in events if e["type"] == "api_error"]
    assert err[-1]["op"] == "create_process" and err[-1]["code"] == 5
    assert err[-1]["error"] == "ERROR_ACCESS_DENIED"
    good = m.create_process("good.exe", parent=parent)
    g = m.create_thread(good, program=[P.cpu(ms(1))])
    m.run_until(ms(100))
    assert g.exit_code == 0 and good.exit_code == 0


def test_thread_notify_create_and_delete_with_contexts():
    m, _ = booted()
    calls, calls_ex = [], []
    m.nt.PsSetCreateThreadNotifyRoutine(
        lambda pid, tid, create: calls.append((pid, tid, create, m.nt.PsGetCurrentThreadId())))
    m.nt.PsSetCreateThreadNotifyRoutineEx(
        PsCreateThreadNotifyNonSystem,
        lambda pid, tid, create: calls_ex.append((tid, create, m.nt.PsGetCurrentThreadId())))
    p = m.create_process("app.exe")
    t1 = m.create_thread(p, program=[P.cpu(ms(1)), P.exit_thread(3)])
    t2 = m.create_thread(p, program=[P.cpu(ms(1)), P.exit_thread(7)])
    m.run_until(ms(50))
    assert [(c[0], c[1], c[2]) for c in calls] == [
        (p.pid, t1.tid, True), (p.pid, t2.tid, True), (p.pid, t1.tid, False),
        (p.pid, t2.tid, False)]
    assert calls[2][3] == t1.tid and calls[3][3] == t2.tid  # deletion: the exiting thread
    assert [(c[0], c[2]) for c in calls_ex if c[1]] == [(t1.tid, t1.tid), (t2.tid, t2.tid)]
    # Ex (NonSystem) routines never see System threads
    m.nt.PsCreateSystemThread(lambda ctx: None, name="DriverThread")
    assert all(c[0] != m.threads[max(m.threads)].tid for c in calls_ex)


def test_registration_rules():
    m, _ = booted()
    f = lambda *a: None  # noqa: E731
    nt = m.nt
    assert nt.PsSetCreateProcessNotifyRoutineEx(f, False) == STATUS_SUCCESS
    assert nt.PsSetCreateProcessNotifyRoutineEx(f, False) == STATUS_INVALID_PARAMETER
    assert nt.PsSetCreateProcessNotifyRoutineEx(f, True) == STATUS_SUCCESS
    assert nt.PsSetCreateProcessNotifyRoutineEx(f, True) == STATUS_PROCEDURE_NOT_FOUND
    assert nt.PsSetCreateProcessNotifyRoutineEx2(5, f, False) == STATUS_INVALID_PARAMETER
    routines = [(lambda i: (lambda *a: None))(i) for i in range(65)]
    results = [nt.PsSetCreateProcessNotifyRoutine(r, False) for r in routines]
    assert results[:64] == [STATUS_SUCCESS] * 64 and results[64] == STATUS_INVALID_PARAMETER


def test_blocking_callback_is_a_violation_not_a_hang():
    m, events = booted()
    ev = m.create_event("never")

    def blocks(process, pid, info):
        return m.nt.KeWaitForSingleObject(ev, None)

    m.nt.PsSetCreateProcessNotifyRoutineEx(blocks, False)
    p = m.create_process("app.exe")
    t = m.create_thread(p, program=[P.cpu(ms(2))])
    m.run_until(ms(20))
    assert t.exit_code == 0  # the machine went on
    # once at creation, once at exit: each time reported, and each time the wait fails
    v = [e for e in events if e["type"] == "driver_violation"]
    assert len(v) == 2 and all("KeWaitForSingleObject" in e["message"] for e in v)
    assert v[0]["tid"] is None and v[1]["tid"] == t.tid
    assert m.nt.KeWaitForSingleObject(ev, 0) == STATUS_TIMEOUT  # a poll is fine anywhere


def test_faulting_callback_is_reported_and_unregistered():
    m, events = booted()

    def broken(process, pid, info):
        raise ZeroDivisionError("oops")

    m.nt.PsSetCreateProcessNotifyRoutineEx(broken, False)
    for name in ("a.exe", "b.exe"):
        m.create_thread(m.create_process(name), program=[P.cpu(ms(1))])
    faults = [e for e in events if e["type"] == "driver_fault"]
    assert len(faults) == 1 and "ZeroDivisionError: oops" in faults[0]["message"]


def test_work_items_run_on_system_workers_in_wrqueue():
    m, _ = booted()
    ran = []

    def work(param):
        t = m.nt.PsGetCurrentThread()
        ran.append((param, t.process.pid, t.priority, m.time_ns))
        return 500_000  # 0.5 ms of kernel time

    workers = [t for t in m.system_process.threads if t.name == "ExpWorkerThread"]
    assert {(t.state_name, t.wait_reason_name) for t in workers} == {("Waiting", "WrQueue")}
    m.nt.ExQueueWorkItem(work, DelayedWorkQueue, "d")
    m.nt.ExQueueWorkItem(work, CriticalWorkQueue, "c")
    m.run_until(ms(10))
    assert sorted((r[0], r[1], r[2]) for r in ran) == [("c", 4, 13), ("d", 4, 12)]
    busy = [t for t in workers if t.kernel > 0]
    assert len(busy) == 2 and all(t.kernel == 500_000 * 3 for t in busy)
    assert {(t.state_name, t.wait_reason_name) for t in workers} == {("Waiting", "WrQueue")}


def test_system_thread_runs_steps_and_terminates():
    m, _ = booted()
    status, t = m.nt.PsCreateSystemThread(
        lambda ctx: [P.kcpu(ms(2)), P.sleep(ms(20)), P.call(m.nt.PsTerminateSystemThread, 9)],
        name="MyDriverThread")
    assert status == STATUS_SUCCESS and t.process is m.system_process
    m.run_until(ms(10))
    assert (t.state_name, t.wait_reason_name) == ("Waiting", "DelayExecution")
    m.run_until(ms(60))
    assert t.state_name == "Terminated" and t.exit_code == 9 and t.kernel == ms(2) * 3
    assert m.nt.PsTerminateSystemThread(0) == STATUS_INVALID_PARAMETER  # not on a system thread


def test_lookups_reference_and_queries():
    m, _ = booted()
    p = m.create_process("app.exe", "high")
    t = m.create_thread(p, program=[P.cpu(ms(3)), P.exit_thread(4)])
    m.run_until(ms(20))
    assert p.exited
    status, proc = m.nt.PsLookupProcessByProcessId(p.pid)
    assert status == STATUS_INVALID_PARAMETER and proc is None  # gone: nothing references it
    p2 = m.create_process("b.exe")
    t2 = m.create_thread(p2, program=[P.cpu(ms(2)), P.exit_thread(5)])
    status, proc = m.nt.PsLookupProcessByProcessId(p2.pid)
    assert status == STATUS_SUCCESS and proc is p2
    m.run_until(ms(40))
    status, info = m.nt.NtQueryInformationProcess(p2, ProcessBasicInformation)
    assert info["ExitStatus"] == 5 and info["UniqueProcessId"] == p2.pid
    assert info["BasePriority"] == 8 and info["InheritedFromUniqueProcessId"] == 0
    _, times = m.nt.NtQueryInformationProcess(p2, ProcessTimes)
    assert times["UserTime"] == 20_000 and times["ExitTime"] > times["CreateTime"]
    _, sub = m.nt.NtQueryInformationProcess(p2, ProcessSubsystemInformation)
    assert sub == {"SubsystemInformationType": 0}
    status, th = m.nt.PsLookupThreadByThreadId(t2.tid)
    assert status == STATUS_INVALID_PARAMETER  # the lookup above held the process, not it
    _, tinfo = m.nt.NtQueryInformationThread(t, ThreadBasicInformation)
    assert tinfo["ExitStatus"] == 4 and tinfo["ClientId"].UniqueThread == t.tid
    assert tinfo["BasePriority"] == 0 and tinfo["Priority"] >= 13
    m.nt.ObDereferenceObject(proc)
    assert m.nt.PsLookupProcessByProcessId(p2.pid)[0] == STATUS_INVALID_PARAMETER


def test_ex2_sees_pico_processes_and_ex_does_not():
    m, _ = booted()
    ex, ex2 = [], []
    m.nt.PsSetCreateProcessNotifyRoutineEx(lambda p, pid, i: ex.append(pid), False)
    m.nt.PsSetCreateProcessNotifyRoutineEx2(
        PsCreateProcessNotifySubsystems,
        lambda p, pid, i: ex2.append((pid, None if i is None else i.IsSubsystemProcess)), False)
    pico = m.create_process("bash", subsystem="wsl")
    m.create_thread(pico, program=[P.cpu(ms(1))])
    win = m.create_process("cmd.exe")
    m.create_thread(win, program=[P.cpu(ms(1))])
    assert ex == [win.pid]
    assert ex2 == [(pico.pid, True), (win.pid, False)]
    assert m.get_exit_code_process(win) == STILL_ACTIVE


def test_load_image_notify_for_exe_and_ntdll():
    m, _ = booted()
    images = []
    m.nt.PsSetLoadImageNotifyRoutine(lambda name, pid, info: images.append((name, pid)))
    p = m.create_process("app.exe", image_path="\\Device\\HarddiskVolume3\\app.exe")
    assert images == [("\\Device\\HarddiskVolume3\\app.exe", p.pid),
                      ("\\SystemRoot\\System32\\ntdll.dll", p.pid)]
    m.create_process("Registry", minimal=True)
    assert len(images) == 2  # a minimal process maps no image

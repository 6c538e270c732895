"""The Create Process dialog (inspector/process_dialog.py) and carrying out its request
on a booted simulated machine."""

import pytest
from PySide6.QtWidgets import QDialog

from core import scenario as sc
from core.kernel import cycles_to_us
from core.kernel import program as P
from core.kernel.constants import ERROR_ACCESS_DENIED, ERROR_NOT_ENOUGH_QUOTA
from core.kernel.objects import Semaphore
from core.runner import build_machine
from core.scenario import parse_scenario
from inspector.process_dialog import (
    DEFAULT_PROGRAM, CreateProcessDialog, ProcessRequest, ProgramError, ThreadRequest,
    create_from_request, kernel_program, parse_programs, split_steps,
)

MS = 1_000_000

# A desktop machine with a named event, a semaphore, an empty job, a job with room for
# one process (taken by full.exe) and a job that lets children break away.
SCENARIO = """
[system]
cpus = 4
boot = "desktop"

[[event]]
name = "go"
kind = "notification"

[[semaphore]]
name = "slots"
maximum = 4

[[job]]
name = "sandbox"

[[job]]
name = "one"
[job.limits]
active_process = 1

[[job]]
name = "open"
[job.limits]
breakaway_ok = true

[[process]]
name = "shell.exe"
  [[process.thread]]
  name = "shell"
  program = ["sleep 1s", "repeat"]

[[process]]
name = "full.exe"
job = "one"
  [[process.thread]]
  name = "full"
  program = ["sleep 1s", "repeat"]

[[process]]
name = "idler.exe"
priority_class = "idle"
job = "open"
  [[process.thread]]
  name = "idler"
  program = ["sleep 1s", "repeat"]
"""


@pytest.fixture
def run():
    return build_machine(parse_scenario(SCENARIO, "dialog.toml"))


@pytest.fixture
def dialog(qtbot, run):
    d = CreateProcessDialog(run.machine, selected_pid=run.processes["shell.exe"].pid,
                            objects=run.objects)
    qtbot.addWidget(d)
    return d


def steps(*texts, objects=None):
    """Steps as the scenario parser reads them in a thread's program."""
    return parse_programs(["\n".join(texts)], objects=objects)[0]


def job(run, name):
    return run.jobs[name]


def thread_states(m, proc):
    """The process's threads in Machine.state(), by name."""
    return {t["name"]: t for p in m.state()["processes"] if p["pid"] == proc.pid
            for t in p["threads"]}


# ---- the form

def test_default_form_is_one_thread_under_the_selected_process(dialog, run):
    assert dialog.thread_count == 1 and dialog.ok_button.isEnabled()
    assert dialog.error_label.text() == ""
    assert dialog.parent_combo.currentText() == f"shell.exe ({run.processes['shell.exe'].pid})"
    assert len(dialog.cpu_checks) == 4
    dialog.accept()
    assert dialog.result() == QDialog.DialogCode.Accepted
    assert dialog.request == ProcessRequest(
        name="app.exe", parent_pid=run.processes["shell.exe"].pid,
        threads=[ThreadRequest("normal", (sc.Cpu(200 * MS), sc.Sleep(50 * MS), sc.Repeat()),
                               "main")])
    assert DEFAULT_PROGRAM.splitlines() == ["cpu 200ms", "sleep 50ms", "repeat"]


def test_choosers_list_live_processes_and_jobs(dialog, run):
    pids = [dialog.parent_combo.itemData(i) for i in range(dialog.parent_combo.count())]
    assert pids[0] is None and 0 not in pids  # Idle creates nothing
    assert 4 in pids and run.processes["full.exe"].pid in pids
    jobs = [dialog.job_combo.itemData(i) for i in range(dialog.job_combo.count())]
    assert jobs == [None, "sandbox", "one", "open"]
    protections = [dialog.protection_combo.itemData(i)
                   for i in range(dialog.protection_combo.count())]
    assert protections[0] == "none" and "ppl-antimalware" in protections


def test_every_field_round_trips_into_the_request(dialog, run):
    dialog.name_edit.setText("  scanner.exe ")
    dialog.parent_combo.setCurrentIndex(dialog.parent_combo.findData(4))
    dialog.class_combo.setCurrentIndex(dialog.class_combo.findData("high"))
    dialog.job_combo.setCurrentIndex(dialog.job_combo.findData("sandbox"))
    dialog.breakaway_check.setChecked(True)
    dialog.protection_combo.setCurrentIndex(dialog.protection_combo.findData("ppl-antimalware"))
    dialog.boost_check.setChecked(True)
    dialog.foreground_check.setChecked(True)
    dialog.inherit_affinity.setChecked(False)
    for cpu, check in enumerate(dialog.cpu_checks):
        check.setChecked(cpu in (1, 3))
    row = dialog.add_thread()
    combo = dialog.priority_combo(row)
    combo.setCurrentIndex(combo.findData("highest"))
    dialog.program_edit(row).setPlainText("kcpu 1ms; release slots 2\n\nwait go 5ms; exit 3")
    dialog.thread_name_edit(row).setText("worker")
    dialog.accept()
    assert dialog.result() == QDialog.DialogCode.Accepted
    assert dialog.request == ProcessRequest(
        name="scanner.exe", priority_class="high", parent_pid=4, job="sandbox",
        breakaway=True, protection="ppl-antimalware", affinity=[1, 3], disable_boost=True,
        foreground=True, threads=[
            ThreadRequest("normal", (sc.Cpu(200 * MS), sc.Sleep(50 * MS), sc.Repeat()), "main"),
            ThreadRequest("highest", (sc.Cpu(MS, kernel=True), sc.ReleaseSemaphore("slots", 2),
                                      sc.Wait("go", "event", 5 * MS), sc.Exit(3)), "worker")])


def test_a_bad_step_disables_ok_and_says_which_thread_step_and_why(dialog):
    row = dialog.add_thread()
    dialog.program_edit(row).setPlainText("cpu 1ms\nsleep 2ms; cpu 5 parsecs\nrepeat")
    assert not dialog.ok_button.isEnabled()
    assert dialog.error_label.text() == (
        "Thread 2, step 3 (line 2): 'cpu 5 parsecs': unknown duration unit 'parsecs' in "
        "'5 parsecs' (use ns, us, ms or s)")
    dialog.accept()  # refused: the dialog stays open with the reason
    assert dialog.result() != QDialog.DialogCode.Accepted and dialog.request is None
    dialog.program_edit(row).setPlainText("cpu 1ms\nsleep 2ms; cpu 5ms\nrepeat")
    assert dialog.ok_button.isEnabled() and dialog.error_label.text() == ""


def test_other_problems_keep_ok_disabled(dialog):
    dialog.name_edit.setText("   ")
    assert dialog.validate() == "Give the image name (e.g. app.exe)"
    assert not dialog.ok_button.isEnabled()
    dialog.name_edit.setText("a.exe")
    dialog.inherit_affinity.setChecked(False)
    for check in dialog.cpu_checks:
        check.setChecked(False)
    assert dialog.validate() == "Affinity: choose at least one CPU"
    dialog.cpu_checks[2].setChecked(True)
    assert dialog.validate() == "" and dialog.ok_button.isEnabled()


def test_affinity_follows_the_parent_while_inherited(dialog, run):
    m = run.machine
    shell = run.processes["shell.exe"]
    m.set_process_affinity(shell, [0, 2])
    dialog.parent_combo.setCurrentIndex(0)
    dialog.parent_combo.setCurrentIndex(dialog.parent_combo.findData(shell.pid))
    assert [c.isChecked() for c in dialog.cpu_checks] == [True, False, True, False]
    assert not any(c.isEnabled() for c in dialog.cpu_checks)
    dialog.parent_combo.setCurrentIndex(0)  # no parent: every CPU
    assert all(c.isChecked() for c in dialog.cpu_checks)
    dialog.inherit_affinity.setChecked(False)
    assert all(c.isEnabled() for c in dialog.cpu_checks)
    dialog.cpu_checks[0].setChecked(False)
    dialog.accept()
    assert dialog.request.affinity == [1, 2, 3] and dialog.request.parent_pid is None


def test_thread_rows_are_added_and_removed_but_one_stays(dialog):
    dialog.add_thread("lowest", "sleep 1ms", "b")
    dialog.add_thread("idle", "sleep 2ms", "c")
    dialog.remove_thread(1)
    names = [dialog.thread_name_edit(r).text() for r in range(dialog.thread_count)]
    assert names == ["main", "c"]
    dialog.threads_table.selectRow(0)
    dialog.remove_button.click()
    dialog.remove_button.click()  # the last thread is the initial thread: it stays
    assert dialog.thread_count == 1 and dialog.thread_name_edit(0).text() == "c"
    dialog.add_button.click()
    assert dialog.thread_count == 2 and dialog.program_edit(1).toPlainText() == DEFAULT_PROGRAM


def test_job_hint_says_what_the_child_inherits(dialog, run):
    assert dialog.job_hint.text() == ""
    idler = run.processes["idler.exe"]
    dialog.parent_combo.setCurrentIndex(dialog.parent_combo.findData(idler.pid))
    assert dialog.job_hint.text().startswith("The parent is in job open: the child joins it")
    dialog.breakaway_check.setChecked(True)
    assert "breaks away if the job allows it" in dialog.job_hint.text()


# ---- programs in the scenario syntax

def test_steps_are_read_exactly_as_a_scenario_reads_them(run):
    texts = ["cpu 10ms", "kcpu 1.5ms", "sleep 0", "yield", "io disk 2ms", "set go",
             "reset go", "pulse go", "release slots", "commit 64KiB", "decommit 4KiB",
             "set_priority highest", "wait go 3ms", "exit 0xC0000005"]
    scenario = parse_scenario(SCENARIO + "\n[[process]]\nname = \"x.exe\"\n"
                              "  [[process.thread]]\n  name = \"x\"\n  program = ["
                              + ", ".join(f'"{t}"' for t in texts) + "]\n")
    ours = parse_programs(["; ".join(texts[:5]) + "\n" + "\n".join(texts[5:])], ["x"],
                          run.objects)
    assert ours == [scenario.thread("x").program]
    assert split_steps(" cpu 1ms ;; sleep 1ms\n\n repeat ") == [
        (1, "cpu 1ms"), (1, "sleep 1ms"), (3, "repeat")]


@pytest.mark.parametrize("text, message", [
    ("cpu 1ms; repeat; sleep 1ms",
     "Thread 1, step 3 (line 1): 'sleep 1ms' is never reached: it follows 'repeat'"),
    ("wait nothing",
     "Thread 1, step 1 (line 1): 'wait nothing': no event, semaphore, mutex, process or "
     "thread named 'nothing'"),
    ("cpu 1ms\nfiber_create f body",
     "Thread 1, step 2 (line 2): 'fiber_create f body': no program named 'body' in [programs]"),
    ("frob 3", "Thread 1, step 1 (line 1): 'frob 3': unknown step 'frob'"),
    ("set go; sleep 0\nrepeat",
     "Thread 1, step 3 (line 2): the program repeats without using time: it needs a cpu, "
     "kcpu, sleep or io step longer than 0, or a wait"),
])
def test_program_errors_name_the_step_and_the_reason(run, text, message):
    with pytest.raises(ProgramError) as info:
        parse_programs([text], ["t"], run.objects)
    assert str(info.value).startswith(message)
    assert info.value.thread == 0


def test_a_thread_may_switch_to_its_own_fiber_by_its_name():
    programs = parse_programs(["fiber_convert; fiber_switch main", "cpu 1ms"], ["main", "main"])
    assert programs[0] == (sc.FiberConvert(), sc.FiberSwitch("main"))
    with pytest.raises(ProgramError, match="Thread 1, step 2 .*no fiber or thread named 'w'"):
        parse_programs(["fiber_convert; fiber_switch w"], ["main"])


def test_kernel_program_resolves_named_objects(run):
    program = kernel_program(steps("wait go", "release slots 2", "cpu 1ms", "repeat",
                                   objects=run.objects), run.objects)
    assert program == (P.wait(run.objects["go"]), P.release_semaphore(run.objects["slots"], 2),
                       P.cpu(MS), P.repeat())
    assert isinstance(run.objects["slots"], Semaphore)
    with pytest.raises(ValueError, match="no object named 'go'"):
        kernel_program((sc.SetEvent("go"),), {})


def test_an_io_step_keeps_its_device_for_io_complete(run):
    m = run.machine
    proc, error = create_from_request(m, ProcessRequest(
        name="typist.exe", threads=[ThreadRequest(program=steps("io keyboard 1s", "cpu 1ms"))]))
    assert error is None
    m.run_for(10 * MS)
    typist = proc.threads[0]
    assert m.io_complete(typist, "keyboard")  # completed early, with the keyboard's boost
    m.run_for(10 * MS)
    assert typist.exit_code == 0 and cycles_to_us(typist.user) == 1_000


# ---- carrying out a request

def test_create_from_request_makes_the_process_and_its_threads_run(run):
    m = run.machine
    shell = run.processes["shell.exe"]
    request = ProcessRequest(
        name="scanner.exe", priority_class="high", parent_pid=shell.pid,
        protection="ppl-antimalware", affinity=[1, 2], disable_boost=True, foreground=True,
        threads=[ThreadRequest("normal", steps("cpu 20ms", "sleep 5ms", "repeat"), "main"),
                 ThreadRequest("highest", steps("wait go", "cpu 30ms", "exit 7",
                                                          objects=run.objects), "waiter")])
    proc, error = create_from_request(m, request, run.objects)
    assert error is None
    assert (proc.name, proc.priority_class, proc.parent_pid, proc.protection) == (
        "scanner.exe", "high", shell.pid, "ppl-antimalware")
    assert (proc.affinity, proc.disable_boost, proc.foreground) == (0b110, True, True)
    main, waiter = proc.threads
    assert (main.name, main.base, waiter.name, waiter.base) == ("main", 13, "waiter", 15)
    # each new thread is dispatched at once: one runs, the other is already waiting
    assert [(t["name"], t["state"]) for t in thread_states(m, proc).values()] == [
        ("main", "Running"), ("waiter", "Waiting")]
    m.run_for(100 * MS)
    state = thread_states(m, proc)
    assert state["main"]["user_time_us"] >= 50_000  # 20 ms, then a sleep to the next tick
    assert state["waiter"]["state"] == "Waiting" and state["waiter"]["user_time_us"] == 0
    m.set_event(run.objects["go"])
    m.run_for(100 * MS)
    assert "waiter" not in thread_states(m, proc)  # exited, and no handle keeps it
    assert cycles_to_us(waiter.user) == 30_000 and waiter.exit_code == 7


def test_default_class_comes_from_an_idle_parent(run):
    m = run.machine
    idler = run.processes["idler.exe"]
    proc, error = create_from_request(m, ProcessRequest(
        name="child.exe", parent_pid=idler.pid, threads=[ThreadRequest(program=steps("cpu 1ms"))]))
    assert error is None and proc.priority_class == "idle"
    assert proc.jobs == [job(run, "open")]  # a child joins its parent's job (§6.9)


def test_the_process_joins_the_job_before_its_threads_exist(run):
    m = run.machine
    jobs_at_thread_creation = []

    def on_event(event):
        if event["type"] == "thread_create" and m.processes[event["pid"]].name == "boxed.exe":
            jobs_at_thread_creation.append(list(m.processes[event["pid"]].jobs))

    m.subscribe(on_event)
    proc, error = create_from_request(m, ProcessRequest(
        name="boxed.exe", job="sandbox",
        threads=[ThreadRequest(program=steps("cpu 10ms", "sleep 10ms", "repeat"), name="t")]))
    assert error is None and proc.jobs == [job(run, "sandbox")]
    assert jobs_at_thread_creation == [[job(run, "sandbox")]]
    m.run_for(100 * MS)
    thread_us = thread_states(m, proc)["t"]["user_time_us"]
    assert thread_us >= 30_000
    # the job is charged its member's time (100 ns units)
    assert m.query_job_accounting(job(run, "sandbox"))["TotalUserTime"] == int(thread_us * 10)


def test_a_job_at_its_active_process_limit_refuses_the_process(run):
    m = run.machine
    before = {p.pid for p in m.processes.values() if not p.exited}
    proc, error = create_from_request(m, ProcessRequest(
        name="extra.exe", job="one", threads=[ThreadRequest(program=steps("cpu 1ms"))]))
    assert proc is None
    assert error == "AssignProcessToJobObject(one) failed: ERROR_NOT_ENOUGH_QUOTA (1816)"
    assert m.last_error == ERROR_NOT_ENOUGH_QUOTA
    assert {p.pid for p in m.processes.values() if not p.exited} == before
    # A child of full.exe inherits the full job: CreateProcess itself fails (S15)
    proc, error = create_from_request(m, ProcessRequest(
        name="child.exe", parent_pid=run.processes["full.exe"].pid,
        threads=[ThreadRequest(program=steps("cpu 1ms"))]))
    assert proc is None and error == "CreateProcess failed: ERROR_NOT_ENOUGH_QUOTA (1816)"


def test_breakaway_needs_the_jobs_permission(run):
    m = run.machine
    full, idler = run.processes["full.exe"], run.processes["idler.exe"]
    proc, error = create_from_request(m, ProcessRequest(
        name="out.exe", parent_pid=full.pid, breakaway=True,
        threads=[ThreadRequest(program=steps("cpu 1ms"))]))
    assert proc is None and error == "CreateProcess failed: ERROR_ACCESS_DENIED (5)"
    assert m.last_error == ERROR_ACCESS_DENIED
    proc, error = create_from_request(m, ProcessRequest(
        name="out.exe", parent_pid=idler.pid, breakaway=True,
        threads=[ThreadRequest(program=steps("cpu 1ms"))]))
    assert error is None and proc.jobs == []


def test_failures_before_creation_create_nothing(run):
    m = run.machine
    count = len(m.processes)
    gone = m.create_process("gone.exe")
    m.terminate_process(gone, 0)
    count += 1
    cases = [
        (ProcessRequest(name="a.exe", parent_pid=gone.pid), f"Parent process {gone.pid} no "
                                                            f"longer exists"),
        (ProcessRequest(name="a.exe", job="nope"), "Job nope no longer exists"),
        (ProcessRequest(name="a.exe", threads=[ThreadRequest(program=(sc.SetEvent("go"),))]),
         "Thread 1: no object named 'go'"),
        (ProcessRequest(name="a.exe", threads=[ThreadRequest(program=(sc.Yield(), sc.Repeat()))]),
         "Thread 1: the program repeats without using time"),
        (ProcessRequest(name="a.exe", affinity=[7]), "CreateProcess: affinity [7] is not"),
    ]
    for request, message in cases:
        proc, error = create_from_request(m, request)
        assert proc is None and error.startswith(message), error
    assert len(m.processes) == count


def test_a_priority_the_class_rejects_ends_the_half_made_process(run):
    m = run.machine
    proc, error = create_from_request(m, ProcessRequest(
        name="rt.exe", priority_class="normal",
        threads=[ThreadRequest(program=steps("cpu 1ms")),
                 ThreadRequest(priority=5, program=steps("cpu 1ms"))]))
    assert proc is None
    assert error == ("Thread 2: SetThreadPriority failed: ERROR_INVALID_PARAMETER (87): "
                     "relative priority 5 is not valid in class normal")
    made = [p for p in m.processes.values() if p.name == "rt.exe"]
    assert len(made) == 1 and made[0].exited and made[0].threads == []
    # In a REALTIME process the same value is valid (§1.4)
    proc, error = create_from_request(m, ProcessRequest(
        name="rt.exe", priority_class="realtime",
        threads=[ThreadRequest(priority=5, program=steps("sleep 1ms"))]))
    assert error is None and proc.threads[0].base == 29


def test_dialog_request_runs_on_the_machine(dialog, run):
    m = run.machine
    dialog.job_combo.setCurrentIndex(dialog.job_combo.findData("sandbox"))
    dialog.program_edit(0).setPlainText("cpu 5ms; sleep 5ms; repeat")
    dialog.accept()
    proc, error = create_from_request(m, dialog.request, run.objects)
    assert error is None and proc.parent_pid == run.processes["shell.exe"].pid
    assert proc.jobs == [job(run, "sandbox")] and [t.name for t in proc.threads] == ["main"]
    m.run_for(50 * MS)
    assert thread_states(m, proc)["main"]["user_time_us"] >= 15_000

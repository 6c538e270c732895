"""The desktop app's start-up (``inspector.app.main``) and main window."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from PySide6.QtWidgets import QApplication, QMessageBox

from core import __version__
from core.layouts import catalogue
from inspector import app
from inspector.main_window import WINDOW_TITLE, MainWindow

ROOT = Path(__file__).resolve().parent.parent


def run_python(code: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=ROOT, env=env, timeout=120)


@pytest.fixture
def window(qtbot, tmp_path):
    from PySide6.QtCore import QSettings

    win = MainWindow(settings=QSettings(str(tmp_path / "koi.ini"), QSettings.Format.IniFormat))
    win.load_default()
    qtbot.addWidget(win)
    win.show()
    qtbot.waitExposed(win)
    return win


# ---- main()

def test_version_is_printed_without_loading_qt():
    proc = run_python(
        "import sys\n"
        "from inspector.app import main\n"
        "status = main(['--version'])\n"
        "print('QT', any(m.split('.')[0] == 'PySide6' for m in sys.modules), file=sys.stderr)\n"
        "sys.exit(status)\n")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == f"koi-inspector {__version__}\n"
    assert "QT False" in proc.stderr


def test_version_and_help_in_process(capsys):
    widgets_before = set(QApplication.topLevelWidgets()) if QApplication.instance() else set()
    assert app.main(["--version"]) == 0
    assert capsys.readouterr().out == f"koi-inspector {__version__}\n"
    assert app.main(["--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: koi-inspector") and "FILE" in out and "--version" in out
    after = set(QApplication.topLevelWidgets()) if QApplication.instance() else set()
    assert after == widgets_before  # no window was made


def test_unknown_option_is_a_usage_error(capsys):
    assert app.main(["--frobnicate"]) == 2
    assert "unrecognized arguments: --frobnicate" in capsys.readouterr().err


def test_a_file_is_refused_with_exit_2_and_a_clear_message(capsys, tmp_path):
    other = tmp_path / "boot.json"
    other.write_text("{}")
    assert app.main([str(other)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert f"cannot open {other}" in captured.err
    assert "the app opens scenarios (.toml) and saved sessions (.koi)" in captured.err
    assert "Traceback" not in captured.err


def test_a_file_that_is_not_a_session_is_refused_untouched(capsys, tmp_path):
    fake = tmp_path / "boot.koi"
    fake.write_text("{}")
    before = fake.read_bytes()
    assert app.main([str(fake)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("koi-inspector: ") and "boot.koi" in err
    assert "not a KOI session" in err or "not a session" in err
    assert "Traceback" not in err and err.count("\n") == 1
    assert fake.read_bytes() == before


def test_a_bad_scenario_is_refused_before_a_window(capsys, tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[system]\ncpus = 99\n")
    assert app.main([str(bad)]) == 2
    err = capsys.readouterr().err
    assert "bad.toml:2" in err and "cpus" in err and "Traceback" not in err


def test_a_file_is_refused_in_a_fresh_process_without_traceback():
    proc = run_python("import sys\nfrom inspector.app import main\n"
                      "sys.exit(main(['no-such-session.sqlite']))\n")
    assert proc.returncode == 2
    assert "cannot open no-such-session.sqlite" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stderr.count("\n") == 1  # one line


def test_without_a_console_the_refusal_is_a_dialog(qapp, monkeypatch):
    shown = []
    monkeypatch.setattr(sys, "stderr", None)  # pythonw on Windows has no stderr
    monkeypatch.setattr(QMessageBox, "critical", lambda *args: shown.append(args))
    assert app.main(["x.json"]) == 2
    assert len(shown) == 1 and "cannot open x.json" in shown[0][2]


def test_main_opens_the_window_and_exits_with_the_event_loop(qapp, monkeypatch):
    seen = {}

    def fake_exec(self):
        windows = [w for w in QApplication.topLevelWidgets()
                   if isinstance(w, MainWindow) and w.isVisible()]
        seen["titles"] = [w.windowTitle() for w in windows]
        for w in windows:
            w.close()
        return 0

    monkeypatch.setattr(QApplication, "exec", fake_exec)
    assert app.main([]) == 0
    assert seen["titles"] == [f"demo (desktop) — {WINDOW_TITLE}"]
    assert qapp.applicationName() == "KOI"
    assert qapp.organizationName() == "KOI"
    assert qapp.applicationVersion() == __version__


# ---- The main window

def test_window_opens_and_closes(window):
    assert window.windowTitle() == "demo (desktop) — KOI — Kernel Object Inspector"
    assert window.width() >= 1000 and window.height() >= 700
    assert [a.text() for a in window.menuBar().actions()] == [
        "&File", "&Edit", "&View", "S&ource", "&Simulation", "&Process", "&Thread", "&Job",
        "&Help"]
    assert window.centralWidget() is window.tabs
    assert window.tabs.widget(1) is window.browser
    assert window.close()
    assert not window.isVisible()


def test_quit_action_closes_the_window(window):
    window.quit_action.trigger()
    assert not window.isVisible()


def test_status_bar_names_the_build(window):
    text = window.build_label.text()
    assert "Windows 10 22H2" in text and "10.0.19041.3570 x64" in text
    assert "bit positions exact" in text
    assert not window.warning_label.isVisible()

    window.browser.set_build(catalogue().find("5.1.2600.5512", "x86"))
    assert "Windows XP SP3 · 5.1.2600.5512 x86" in window.build_label.text()
    assert "derived" in window.build_label.text()
    assert not window.warning_label.isVisible()


def test_partly_inferred_build_shows_a_warning(window):
    window.browser.set_build(catalogue().find("10.0.26100", "x64"))
    assert window.warning_label.isVisible()
    assert "Partly inferred" in window.warning_label.text()
    assert "partly inferred" in window.build_label.text()
    window.browser.set_build(catalogue().find())
    assert not window.warning_label.isVisible()


def test_about_dialog(window, monkeypatch):
    shown = []
    monkeypatch.setattr(QMessageBox, "about", lambda *args: shown.append(args))
    window.about_action.trigger()
    assert len(shown) == 1
    parent, title, text = shown[0]
    assert parent is window and title == "About KOI"
    assert f"KOI {__version__}" in text
    assert "Kernel Object Inspector" in text
    for source in ("BSD-3-Clause (JPCERTCC/Windows-Symbol-Tables)",
                   "Apache-2.0 (novafacing/vergilius-rs; data from vergiliusproject.com)",
                   "MIT (Rickebo/ntoskrnlib)"):
        assert source in text
    assert f"{len(catalogue().builds)} Windows builds" in text


def test_copy_message_reaches_the_status_bar(window):
    window.browser.copy_dt_action.trigger()
    assert window.statusBar().currentMessage().startswith("Copied dt nt!_EPROCESS")


# ---- the simulated machine in the window

class FakeDialogs:
    """Answers the window's questions (window.dialogs) without modal dialogs."""

    def __init__(self, **answers):
        self.answers = answers
        self.errors = []

    def choose(self, title, label, items, current):
        return self.answers.get("choose")

    def integer(self, title, label, value, low, high):
        return self.answers.get("integer")

    def text(self, title, label, value=""):
        return self.answers.get("text")

    def open_file(self, title, filters):
        return self.answers.get("open")

    def save_file(self, title, filters, suggested=""):
        return self.answers.get("save")

    def error(self, title, message):
        self.errors.append((title, message))

    def process_form(self, machine, selected_pid, objects):
        """The real Create Process form, filled in with the `text` and `choose` answers."""
        from inspector.process_dialog import CreateProcessDialog

        dialog = CreateProcessDialog(machine, None, selected_pid=selected_pid, objects=objects)
        dialog.name_edit.setText(self.answers.get("text"))
        dialog.class_combo.setCurrentIndex(dialog.class_combo.findData(self.answers["choose"]))
        dialog.accept()
        request = dialog.request
        dialog.deleteLater()
        return request


def frames(window, n=3):
    window.sim.set_speed(None)
    for _ in range(n):
        window.sim._frame()


def pick_thread(window, process_name):
    m = window.sim.machine
    t = next(t for t in m.threads.values() if t.process.name == process_name)
    window.select_thread(t.pid, t.tid)
    return t


def test_frames_fill_every_view(window):
    frames(window)
    assert window.sim.now_ns > 0
    assert window.processes.model.process_count() >= 30
    assert window.event_log.model.rowCount() > 0
    assert window.timeline.timeline is not None
    assert "paused" in window.time_label.text()


def test_selecting_a_process_shows_threads_and_eprocess(window, qtbot):
    frames(window, 1)
    assert window.processes.select_pid(4)
    assert window.object_view.current_object.type == "_EPROCESS"
    assert window.object_view.current_object.label == "System"
    assert window.threads.model.rowCount() == 11


def test_selecting_a_thread_shows_ethread(window):
    frames(window, 1)
    t = pick_thread(window, "render.exe")
    obj = window.object_view.current_object
    assert obj.type == "_ETHREAD" and obj.field("Cid.UniqueThread").value == t.tid


def test_run_pause_action(window, qtbot):
    window.sim.set_speed(None)
    with qtbot.waitSignal(window.sim.runningChanged):
        window.run_action.trigger()
    assert window.run_action.isChecked() and window.run_action.text() == "&Pause"
    qtbot.waitUntil(lambda: window.sim.now_ns > 100_000_000, timeout=10000)
    window.run_action.trigger()
    assert not window.sim.running and window.run_action.text() == "&Run"


def test_step_actions(window):
    window.step_tick_action.trigger()
    assert window.sim.now_ns == 15_625_000
    before = len(window.sim.machine.trace)
    window.step_switch_action.trigger()
    assert len(window.sim.machine.trace) == before + 1
    window.step_event_action.trigger()


def test_speed_combo_and_menu_agree(window):
    window.set_speed(0.001)
    assert window.sim.speed == 0.001 and window.speed_combo.currentText() == "0.001x"
    assert window.speed_actions[0].isChecked()


def test_set_priority_and_suspend_resume(window):
    frames(window, 1)
    window.dialogs = FakeDialogs(choose="highest")
    t = pick_thread(window, "editor.exe")
    window.set_priority_action.trigger()
    assert t.base == 10
    window.suspend_action.trigger()
    assert t.suspend_count == 1
    window.resume_action.trigger()
    assert t.suspend_count == 0
    assert window.dialogs.errors == []


def test_failed_call_is_shown_with_its_windows_name(window):
    frames(window, 1)
    window.dialogs = FakeDialogs(integer=5)
    t = pick_thread(window, "editor.exe")
    window.terminate_thread_action.trigger()
    assert t.state_name == "Terminated"
    window.resume_action.trigger()  # resuming a terminated thread is still fine (count 0)
    window.dialogs.answers["choose"] = "highest"
    window.set_priority_action.trigger()
    assert window.dialogs.errors and "ERROR_ACCESS_DENIED" in window.dialogs.errors[-1][1]


def test_process_actions(window):
    frames(window, 1)
    window.processes.select_pid(
        next(p.pid for p in window.sim.machine.processes.values() if p.name == "notepad.exe"))
    window.dialogs = FakeDialogs(choose="high", integer=3)
    window.set_class_action.trigger()
    p = window.selected_process()
    assert p.priority_class == "high"
    window.set_foreground_action.trigger()
    assert p.foreground
    window.terminate_process_action.trigger()
    assert p.exited and p.exit_code == 3


def test_create_process_and_thread(window):
    frames(window, 1)
    window.processes.select_pid(
        next(p.pid for p in window.sim.machine.processes.values() if p.name == "explorer.exe"))
    window.dialogs = FakeDialogs(text="new.exe", choose="above_normal")
    window.create_process_action.trigger()
    p = window.selected_process()
    assert p.name == "new.exe" and p.priority_class == "above_normal"
    assert window.sim.machine.processes[p.parent_pid].name == "explorer.exe"
    window.dialogs.answers["choose"] = "lowest"
    window.create_thread_action.trigger()
    assert len(p.threads) == 2 and p.threads[1].base == 10 - 2


def test_nothing_selected_is_an_error_not_a_crash(window):
    window.dialogs = FakeDialogs()
    window.suspend_action.trigger()
    assert window.dialogs.errors[0][0] == "Nothing selected"


def test_open_scenario_and_recent(window, tmp_path):
    path = tmp_path / "one.toml"
    path.write_text('[[process]]\nname = "p.exe"\n  [[process.thread]]\n  name = "T"\n'
                    '  program = ["cpu 10ms"]\n')
    window.dialogs = FakeDialogs(open=str(path))
    window.open_action.trigger()
    assert window.windowTitle().startswith("one.toml")
    assert [a.text() for a in window.recent_menu.actions()] == [str(path)]
    bad = tmp_path / "bad.toml"
    bad.write_text("[system]\ncpus = 0\n")
    assert not window.open_path(str(bad))
    assert "bad.toml:2" in window.dialogs.errors[-1][1]
    assert window.windowTitle().startswith("one.toml")  # the machine stayed


def test_save_session_and_exports(window, tmp_path):
    frames(window, 2)
    from core.session import open_session

    window.dialogs = FakeDialogs(save=str(tmp_path / "s.koi"))
    assert window.save_action.isEnabled()
    path = window.save_session_dialog()
    with open_session(path) as session:
        info = session.info()
    assert info.switches > 0 and info.processes >= 30
    window.dialogs.answers["save"] = str(tmp_path / "p.csv")
    out = window.export_csv("processes")
    assert Path(out).read_text().startswith("pid,parent_pid,name")
    window.dialogs.answers["save"] = str(tmp_path / "t.csv")
    assert "context_switches" in Path(window.export_csv("threads")).read_text().splitlines()[0]
    window.dialogs.answers["save"] = str(tmp_path / "t.png")
    assert Path(window.export_timeline_png()).read_bytes()[:4] == b"\x89PNG"


def test_build_switch_relays_out_the_shown_object(window):
    frames(window, 1)
    window.processes.select_pid(4)
    obj = window.object_view.current_object
    window.browser.set_build(catalogue().find("5.1.2600.5512", "x86"))
    assert obj.space.build.id == "5.1.2600.5512"
    assert obj.field("UniqueProcessId").offset == 0x84


def test_every_action_has_an_object_name(window):
    def walk(actions):
        for a in actions:
            if a.menu() is not None:
                yield from walk(a.menu().actions())
            elif not a.isSeparator():
                yield a

    actions = list(walk(window.menuBar().actions()))
    assert len(actions) > 30
    assert [a.text() for a in actions if not a.objectName()] == []


# ---- jobs and fibers

class JobDialogs(FakeDialogs):
    """FakeDialogs that also fill in the job form (`job_form`: a JobRequest or None)."""

    def __init__(self, **answers):
        super().__init__(**answers)
        self.forms = []

    def job_form(self, title, jobs, current, create):
        self.forms.append((title, list(jobs), current, create))
        return self.answers.get("job_form")


JOBS_SCENARIO = """
[system]
cpus = 2
until = "1s"

[[job]]
name = "outer"
completion_port = true
  [job.limits]
  active_process = 3

[[job]]
name = "inner"
parent = "outer"
completion_port = true

[[process]]
name = "a.exe"
job = "inner"
  [[process.thread]]
  name = "A"
  program = ["cpu 5ms", "sleep 20ms", "repeat"]

[[process]]
name = "b.exe"
  [[process.thread]]
  name = "B"
  program = ["cpu 3ms", "sleep 10ms", "repeat"]

[[process]]
name = "c.exe"
  [[process.thread]]
  name = "C"
  program = ["sleep 10ms", "repeat"]
"""

# F converts itself, then lives in fibers m (sleeps) and w (works), switching by hand
FIBER_SCENARIO = """
[system]
cpus = 1

[[process]]
name = "fib.exe"
  [[process.thread]]
  name = "F"
  program = ["fiber_convert", "fls_alloc ctx", "fls_set ctx 7", "fiber_create w work",
             "fiber_create m main", "fiber_switch m"]

[[process]]
name = "b.exe"
  [[process.thread]]
  name = "B"
  program = ["cpu 3ms", "sleep 10ms", "repeat"]

[programs]
main = ["fiber_switch w", "sleep 50ms", "repeat"]
work = ["cpu 1ms", "fls_set ctx 9", "fiber_switch m", "repeat"]
"""


@pytest.fixture
def jobs_window(window, tmp_path):
    path = tmp_path / "jobs.toml"
    path.write_text(JOBS_SCENARIO)
    assert window.open_path(str(path))
    frames(window, 1)
    return window


def named_process(window, name):
    return next(p for p in window.sim.machine.processes.values() if p.name == name)


def named_job(window, name):
    return window._find_job(name)


def test_jobs_dock_shows_the_nested_jobs_and_selects_members(jobs_window, qtbot):
    win = jobs_window
    assert win.job_dock.objectName() == "jobs_dock" and win.job_dock.isVisible()
    model = win.jobs.model
    outer = model.index_of_key(model.key_of_name("outer"))
    assert model.index(0, 0, outer).data() == "inner"
    assert win.jobs.select_job("inner")
    a = named_process(win, "a.exe")
    assert win.jobs.details.members.texts(0) == [str(a.pid)]
    obj = win.object_view.current_object  # the selected job's object
    assert obj.type == "_EJOB" and obj.label == "inner"
    win.jobs.processActivated.emit(a.pid)  # a click in the Processes tab
    assert win.selected_process() is a
    win.jobs.processActivated.emit(99999)
    assert "no longer running" in win.statusBar().currentMessage()


def test_create_job_with_limits_and_assign(jobs_window):
    from inspector.job_view import JobRequest

    win = jobs_window
    m = win.sim.machine
    win.dialogs = JobDialogs(job_form=JobRequest(
        name="capped", parent="outer", completion_port=True,
        limits={"priority_class": "below_normal", "kill_on_job_close": True},
        cpu_rate={"hard_cap": 2500}))
    win.create_job_action.trigger()
    assert win.dialogs.forms[0][1:] == (["outer", "inner"], None, True)
    job = named_job(win, "capped")
    assert job.parent is named_job(win, "outer") and job.cpu_rate["rate"] == 2500
    assert win.jobs.selected_job()["name"] == "capped"  # refreshed and selected
    assert win.dialogs.errors == []
    b = named_process(win, "b.exe")
    win.processes.select_pid(b.pid)
    win.dialogs.answers["choose"] = "capped"
    win.assign_job_action.trigger()
    assert b.jobs == [job, named_job(win, "outer")]
    assert b.priority_class == "below_normal"  # the job's class applies (§6.7)
    assert win.jobs.details.members.texts(0) == [str(b.pid)]
    assert win.dialogs.errors == []
    # the same name again is refused before the kernel is asked
    win.create_job_action.trigger()
    assert win.dialogs.errors[-1] == ("Create Job", "A job named capped already exists")
    assert len(m.jobs) == 3


def test_failed_job_calls_show_their_windows_names(jobs_window):
    from core.kernel import program as P
    from inspector.job_view import JobRequest

    win = jobs_window
    m = win.sim.machine
    b = named_process(win, "b.exe")
    win.processes.select_pid(b.pid)
    # outer allows 3 active processes: a.exe is in; b.exe and c.exe fit, a fourth not
    win.dialogs = JobDialogs(choose="outer")
    win.assign_job_action.trigger()
    assert win.dialogs.errors == []
    win.processes.select_pid(named_process(win, "c.exe").pid)
    win.assign_job_action.trigger()
    assert win.dialogs.errors == []
    extra = m.create_process("extra.exe")
    m.create_thread(extra, program=[P.sleep(1_000_000_000)])
    win.refresh()
    win.processes.select_pid(extra.pid)
    win.assign_job_action.trigger()
    assert win.dialogs.errors[-1] == ("AssignProcessToJobObject",
                                      "AssignProcessToJobObject failed: "
                                      "ERROR_NOT_ENOUGH_QUOTA (1816)")
    assert extra.exited and extra.exit_code == 1816  # terminated by the failed assign (§6.3)
    system = m.processes[4]
    win.processes.select_pid(system.pid)
    win.assign_job_action.trigger()
    assert win.dialogs.errors[-1][0] == "AssignProcessToJobObject"
    assert "ERROR_ACCESS_DENIED (5)" in win.dialogs.errors[-1][1]
    # an affinity outside the machine's CPUs: ERROR_INVALID_PARAMETER, with the reason
    win.jobs.select_job("inner")
    win.dialogs.answers["job_form"] = JobRequest(limits={"affinity": [7]})
    win.set_job_limits_action.trigger()
    title, current, create = win.dialogs.forms[-1][0], win.dialogs.forms[-1][2], \
        win.dialogs.forms[-1][3]
    assert title == "Set Limits of inner" and current["name"] == "inner" and not create
    assert win.dialogs.errors[-1][0] == "SetInformationJobObject"
    assert "ERROR_INVALID_PARAMETER (87): affinity [7]" in win.dialogs.errors[-1][1]


def test_set_limits_terminate_and_close_a_job(jobs_window):
    from inspector.job_view import JobRequest

    win = jobs_window
    m = win.sim.machine
    inner = named_job(win, "inner")
    a = named_process(win, "a.exe")
    win.jobs.select_job("inner")
    win.dialogs = JobDialogs(job_form=JobRequest(limits={"affinity": [1]},
                                                 cpu_rate={"weight": 3}), integer=42)
    win.set_job_limits_action.trigger()
    assert a.affinity == 0b10 and inner.cpu_rate["weight"] == 3
    assert win.jobs.details.limits.texts(1)[1] == "1"
    win.terminate_job_action.trigger()
    assert a.exited and a.exit_code == 42
    assert win.dialogs.errors == []
    # the scenario's handle, then none left: ERROR_INVALID_HANDLE
    win.close_job_action.trigger()
    assert inner not in m.jobs  # no handle, no active process: destroyed (§6.11)
    win.jobs.clear_selection()
    win.dialogs.answers["choose"] = "outer"
    win.close_job_action.trigger()
    assert win.dialogs.errors == []
    outer = named_job(win, "outer")
    assert outer is None  # its last handle went and it had no process left
    win.dialogs.answers["choose"] = None
    win.terminate_job_action.trigger()  # no job left: said so, nothing done
    assert win.dialogs.errors[-1] == ("Terminate Job",
                                      "There is no job: create one with Job > Create Job.")


def test_close_job_handle_twice_is_invalid_handle(jobs_window):
    win = jobs_window
    win.jobs.select_job("outer")  # outer still holds inner: it outlives its handle
    win.dialogs = JobDialogs()
    win.close_job_action.trigger()
    assert win.dialogs.errors == [] and named_job(win, "outer") is not None
    win.close_job_action.trigger()
    assert win.dialogs.errors[-1] == (
        "CloseHandle", "CloseHandle failed: ERROR_INVALID_HANDLE (6)")


def test_job_actions_need_a_simulated_machine(qtbot, tmp_path):
    from PySide6.QtCore import QSettings

    win = MainWindow(settings=QSettings(str(tmp_path / "k.ini"), QSettings.Format.IniFormat))
    qtbot.addWidget(win)
    assert not any(a.isEnabled() for a in win.job_actions)  # nothing loaded yet
    win.load_default()
    assert all(a.isEnabled() for a in win.job_actions)
    assert {a.objectName() for a in win.job_actions} == {
        "create_job", "assign_process_to_job", "set_job_limits", "terminate_job",
        "close_job_handle"}
    win.dialogs = JobDialogs()
    win.assign_job_action.trigger()
    assert win.dialogs.errors[0][0] == "Nothing selected"


def test_fibers_dock_follows_the_selected_thread(window, tmp_path):
    from core.kernel import program as P

    if not hasattr(P, "fiber_convert"):
        pytest.skip("core.kernel.program has no fiber_convert yet")
    from inspector.fiber_view import F_NAME, F_STATE

    path = tmp_path / "fibers.toml"
    path.write_text(FIBER_SCENARIO)
    assert window.open_path(str(path))
    frames(window, 1)
    win = window
    assert win.fiber_dock.objectName() == "fibers_dock" and win.fiber_dock.isVisible()
    t = pick_thread(win, "fib.exe")
    assert win.fibers.tid == t.tid
    assert win.fibers.model.texts(F_NAME) == ["F", "w", "m"]
    assert win.fibers.model.texts(F_STATE)[0] == "Switched out"  # it ran, then switched
    assert "Current" in win.fibers.model.texts(F_STATE)
    pick_thread(win, "b.exe")
    assert win.fibers.model.rowCount() == 0
    assert "not a fiber thread" in win.fibers.title.text()
    win.processes.select_pid(named_process(win, "fib.exe").pid)
    assert win.fibers.pid is None and win.fibers.title.text() == "No thread selected"


def test_dialogs_job_form_returns_the_forms_request(qtbot, monkeypatch):
    from PySide6.QtWidgets import QWidget

    from inspector.job_view import JobLimitsDialog, JobRequest
    from inspector.main_window import Dialogs

    parent = QWidget()
    qtbot.addWidget(parent)
    seen = []

    def answer(dialog):  # instead of a modal loop: fill in, press OK
        seen.append((dialog.windowTitle(), dialog.parent_combo.count()))
        dialog.name_edit.setText("new")
        dialog.checks["active_process"].setChecked(True)
        dialog.active_spin.setValue(2)
        dialog.accept()
        return dialog.result()

    monkeypatch.setattr(JobLimitsDialog, "exec", answer)
    request = Dialogs(parent).job_form("Create Job", ["a", "b"], None, True)
    assert seen == [("Create Job", 3)]
    assert request == JobRequest(name="new", completion_port=True,
                                 limits={"active_process": 2})
    monkeypatch.setattr(JobLimitsDialog, "exec", lambda dialog: dialog.reject() or 0)
    assert Dialogs(parent).job_form("Set Limits of a", ["a"], {"name": "a"}, False) is None


def test_following_a_pointer_to_a_process_selects_it_everywhere(window):
    m = window.sim.machine
    thread = next(t for t in m.threads.values() if t.process.name == "explorer.exe")
    window.processes.select_pid(4)
    window.object_view.show_object(window.sim.memory.thread_object(thread))
    assert window.object_view.select_path("Tcb.Process") and window.object_view.follow()
    assert window.object_view.current_object.type == "_EPROCESS"
    assert window.processes.selected_pid() == thread.pid
    assert window.threads.model.rowCount() == len(thread.process.threads)
    # and Back still goes to the thread: selecting did not reset the history
    window.object_view.back()
    assert window.object_view.current_object.type == "_ETHREAD"


def test_the_real_forms_return_their_request_or_none(window, answer_next_dialog):
    """Dialogs runs each form modally: accepted, its request; cancelled, None."""
    from inspector.main_window import Dialogs

    answer = answer_next_dialog
    dialogs = Dialogs(window)
    m = window.sim.machine
    answer(False)
    assert dialogs.job_form("Create Job", [], None, True) is None
    answer(True, lambda d: d.name_edit.setText("batch"))
    request = dialogs.job_form("Create Job", [], None, True)
    assert request is not None and request.name == "batch"
    answer(True, lambda d: d.name_edit.setText("tool.exe"))
    request = dialogs.process_form(m, 4, window.sim.run.objects)
    assert request.name == "tool.exe" and request.parent_pid == 4 and len(request.threads) == 1


def test_recording_retention_is_a_remembered_setting(window, qtbot):
    minute = 60 * 1_000_000_000
    assert window.sim.recorder.retention_ns == 30 * minute  # the default
    window.dialogs = FakeDialogs(integer=5)
    window.retention_action.trigger()
    assert window.sim.recorder.retention_ns == 5 * minute
    assert window.live.retention_ns == 5 * minute
    # a window opened later records with it from the start
    later = MainWindow(settings=window.settings)
    qtbot.addWidget(later)
    later.load_default()
    assert later.sim.recorder.retention_ns == 5 * minute
    # and the recording really forgets what is older
    later.sim.set_retention(minute // 60)  # one second
    later.sim.set_speed(None)
    later.sim.advance_by(5 * 1_000_000_000, budget_s=60)
    rec = later.sim.recorder
    with rec.to_session() as s:
        times = s.sample_times()
    assert times[-1] - times[0] < 3_000_000  # µs: a second or so kept (whole keyframe groups)

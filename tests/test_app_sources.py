"""The window's three sources: the simulated machine, a saved session replayed with a
time slider, and this machine sampled live."""

from __future__ import annotations

import os
import subprocess
import sys
import threading

import pytest
from PySide6.QtCore import QSettings

from core.kernel.constants import CYCLES_PER_NS
from core.resources import resource_path
from core.scenario import load_scenario
from core.session import open_session, record_scenario
from inspector import app
from inspector.main_window import LIVE, SESSION, SIMULATION, MainWindow


@pytest.fixture(scope="module")
def jobs_session(tmp_path_factory):
    """jobs.toml recorded: processes come and go, jobs are made, capped and killed."""
    path = tmp_path_factory.mktemp("sessions") / "jobs.koi"
    record_scenario(load_scenario(str(resource_path("scenarios/jobs.toml")))).save(path)
    return str(path)


@pytest.fixture
def window(qtbot, tmp_path):
    win = MainWindow(settings=QSettings(str(tmp_path / "koi.ini"), QSettings.Format.IniFormat))
    qtbot.addWidget(win)
    win.load_default()
    yield win
    win.live.close()


@pytest.fixture
def replaying(window, jobs_session):
    assert window.open_path(jobs_session)
    return window


def shown_pids(win) -> set[int]:
    """The processes the tree shows (the newest node of each PID)."""
    return set(win.processes.model._by_pid)


def state_pids(state) -> set[int]:
    return {p["pid"] for p in state["processes"]}


# ---- opening a session

def test_opening_a_session_replays_it_from_its_first_sample(replaying, jobs_session):
    win = replaying
    with open_session(jobs_session) as s:
        times = list(s.sample_times())
        first = s.state_at(times[0])
    assert win.mode == SESSION and win.source_session_action.isChecked()
    assert win.windowTitle().startswith("jobs.koi (session)")
    assert win.replay_toolbar.isVisibleTo(win) and not win.live_toolbar.isVisibleTo(win)
    assert win.time_slider.minimum() == 0 and win.time_slider.maximum() == len(times) - 1
    assert win.replay.time_us == times[0] and win.time_slider.value() == 0
    assert shown_pids(win) == state_pids(first)
    assert not win.run_action.isChecked() and win.run_action.text() == "&Play"
    # the simulated kernel takes no orders while a recording is shown
    assert not win.set_priority_action.isEnabled() and not win.create_job_action.isEnabled()
    assert not win.step_tick_action.isEnabled() and not win.save_action.isEnabled()
    assert win.compare_action.isEnabled() and win.rerun_action.isEnabled()


def test_the_slider_moves_every_view_to_that_moment(replaying, jobs_session):
    win = replaying
    with open_session(jobs_session) as s:
        times = list(s.sample_times())
        i = len(times) // 2
        state = s.state_at(times[i])
        events = s.events(times[0] - 1, times[i])
    win.time_slider.setValue(i)
    assert win.replay.time_us == times[i]
    assert shown_pids(win) == state_pids(state)
    assert win.jobs.model.job_count() == len(state["jobs"])
    # the event log holds what happened up to the moment, nothing after it
    assert win.event_log.model.rowCount() == len(events)
    assert all(row[0] <= times[i] for row in win.event_log.model.rows)
    # the timeline keeps the whole trace and marks the moment
    assert win.timeline.cursor_cycles == round(times[i] * 1000) * CYCLES_PER_NS
    assert all(line.isVisible() for line in win.timeline.cursor_lines)
    assert f"sample {i + 1} of {len(times)}" in win.time_label.text()


def test_going_back_in_time_shows_the_earlier_state_and_events(replaying, jobs_session):
    win = replaying
    win.replay.seek_sample(len(win.replay.times) - 1)
    late_rows = win.event_log.model.rowCount()
    win.next_sample_action.trigger()  # at the end already: stays
    assert win.replay.sample_index() == len(win.replay.times) - 1
    win.previous_sample_action.trigger()
    win.replay.seek_sample(3)
    with open_session(jobs_session) as s:
        t = s.sample_times()[3]
        assert shown_pids(win) == state_pids(s.state_at(t))
        assert win.event_log.model.rowCount() == len(s.events(-1, t)) < late_rows


def test_playback_advances_the_moment_and_stops_at_the_end(replaying, qtbot):
    win = replaying
    win.replay.set_speed(None)  # one sample per frame
    win.run_action.trigger()
    assert win.replay.running and win.run_action.text() == "&Pause"
    qtbot.waitUntil(lambda: not win.replay.running, timeout=20_000)
    assert win.replay.time_us == win.replay.end_us
    assert win.time_slider.value() == win.time_slider.maximum()
    assert win.run_action.text() == "&Play"


def test_a_selected_process_shows_its_eprocess_as_the_rerun_had_it(replaying, qtbot):
    win = replaying
    win.replay.seek_sample(len(win.replay.times) // 2)
    state = win.replay.state()
    proc = next(p for p in state["processes"] if p["name"] == "crunch.exe")
    assert win.processes.select_pid(proc["pid"])
    qtbot.waitUntil(lambda: win.object_view.current_object is not None, timeout=10_000)
    assert win.object_stack.currentWidget() is win.object_view
    obj = win.object_view.current_object
    assert obj.type == "_EPROCESS"
    assert obj["UniqueProcessId"] == proc["pid"]
    # the re-run machine is at the sample shown and agrees with the recording
    rerun = win.replay.machine_at()
    assert rerun.machine.now == round(win.replay.times[win.replay.sample_index()] * 1000) \
        * CYCLES_PER_NS
    assert rerun.machine.state() == state
    # a later moment: the same object, refreshed
    win.replay.step(2)
    qtbot.waitUntil(lambda: win.replay.machine_at().machine is not None, timeout=10_000)
    assert win.object_view.current_object["UniqueProcessId"] == proc["pid"]


def test_a_recording_changed_in_the_app_shows_recorded_fields_after_the_change(
        window, qtbot, tmp_path):
    win = window
    m = win.sim.machine
    win.sim.advance_by(200_000_000, budget_s=60)
    explorer = next(p for p in m.processes.values() if p.name == "explorer.exe")
    m.set_priority_class(explorer, "high")  # what the scenario text does not say
    win.sim.advance_by(200_000_000, budget_s=60)
    path = str(tmp_path / "changed.koi")
    win.sim.save_session(path)
    assert win.open_path(path)
    win.processes.select_pid(explorer.pid)
    win.replay.seek_sample(1)  # before the change: the re-run matches
    qtbot.waitUntil(lambda: win.object_stack.currentWidget() is win.object_view
                    and win.object_view.current_object is not None, timeout=20_000)
    win.replay.seek_sample(len(win.replay.times) - 1)  # after it: it does not
    qtbot.waitUntil(lambda: win.object_stack.currentWidget() is win.fields_view,
                    timeout=20_000)
    assert "differs from the recording" in win.fields_view.note_label.text()
    assert win.fields_view.value_text("priority_class") == "high"
    assert win.fields_view.title_label.text() == f"explorer.exe ({explorer.pid})"


def test_rerun_to_this_moment_loads_the_simulator_there_paused(replaying):
    win = replaying
    win.replay.seek_sample(10)
    t_us = win.replay.times[10]
    expected = win.replay.state()
    assert win.rerun_to_moment()
    assert win.mode == SIMULATION and not win.sim.running
    m = win.sim.machine
    assert m.now == round(t_us * 1000) * CYCLES_PER_NS
    assert m.state() == expected
    assert shown_pids(win) == state_pids(expected)
    assert win.set_priority_action.isEnabled()


def test_a_file_that_is_not_a_session_is_refused_and_nothing_changes(window, tmp_path):
    errors = []
    window.dialogs.error = lambda title, message: errors.append((title, message))
    fake = tmp_path / "notes.koi"
    fake.write_bytes(b"just some text, not SQLite")
    assert not window.open_path(str(fake))
    assert fake.read_bytes() == b"just some text, not SQLite"
    assert window.mode == SIMULATION and not window.source_session_action.isEnabled()
    assert errors and errors[0][0] == "Cannot open session" and "notes.koi" in errors[0][1]


def test_the_app_opens_a_session_given_on_the_command_line(qapp, monkeypatch, jobs_session):
    seen = {}

    def fake_exec(self):
        from PySide6.QtWidgets import QApplication

        win = next(w for w in QApplication.topLevelWidgets()
                   if isinstance(w, MainWindow) and w.isVisible())
        seen.update(mode=win.mode, title=win.windowTitle(), running=win.replay.running,
                    sim_running=win.sim.running)
        win.close()
        return 0

    from PySide6.QtWidgets import QApplication

    monkeypatch.setattr(QApplication, "exec", fake_exec)
    assert app.main([jobs_session]) == 0
    assert seen["mode"] == SESSION and seen["title"].startswith("jobs.koi (session)")
    assert not seen["running"] and not seen["sim_running"]


def test_switching_back_to_the_simulation_keeps_its_machine(replaying):
    win = replaying
    machine = win.sim.machine
    win.source_simulation_action.trigger()
    assert win.mode == SIMULATION and win.sim.machine is machine
    assert shown_pids(win) == state_pids(machine.state())
    win.source_session_action.trigger()
    assert win.mode == SESSION


# ---- this machine, live

needs_proc = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="the live views are checked against /proc")


@needs_proc
def test_this_machine_shows_its_real_processes(window, qtbot):
    win = window
    with qtbot.waitSignal(win.live.sampled, timeout=20_000):
        assert win.show_live()
    assert win.mode == LIVE and win.source_live_action.isChecked()
    assert win.live_toolbar.isVisibleTo(win) and not win.replay_toolbar.isVisibleTo(win)
    assert os.getpid() in shown_pids(win)
    assert not win.sim.running
    assert not win.set_priority_action.isEnabled() and not win.create_job_action.isEnabled()
    assert "processes" in win.time_label.text() and "sampling" in win.time_label.text()
    # selecting our own process shows what was sampled of it, said to be sampled
    assert win.processes.select_pid(os.getpid())
    assert win.object_stack.currentWidget() is win.fields_view
    assert win.fields_view.value_text("pid") == str(os.getpid())
    assert "sampled" in win.fields_view.note_label.text()
    # the CPU Timeline dock shows this machine's sampled graphs, following the selection
    assert win.timeline_stack.currentWidget() is win.live_graphs
    assert win.live_graphs.history is win.live.history
    assert f"({os.getpid()})" in win.live_graphs.selection_label.text()
    assert win.live_graphs._process_key[0] == os.getpid()


@needs_proc
def test_pausing_and_leaving_live_stops_the_sampler(window, qtbot):
    win = window
    with qtbot.waitSignal(win.live.sampled, timeout=20_000):
        win.show_live()
    win.run_action.trigger()
    assert not win.live.running and win.run_action.text() == "&Sample"
    win.run_action.trigger()
    assert win.live.running
    win.source_simulation_action.trigger()
    assert not win.live.running and win.mode == SIMULATION


@needs_proc
def test_a_live_recording_saves_as_a_session_that_replays(window, qtbot, tmp_path):
    win = window
    win.live.set_interval(0.1)
    with qtbot.waitSignal(win.live.sampled, timeout=20_000):
        win.show_live()
    qtbot.waitUntil(lambda: win.live.recording.recorder is not None
                    and win.live.recording.recorder.samples >= 2, timeout=20_000)
    path = str(tmp_path / "here.koi")
    win.dialogs.save_file = lambda *a: path
    assert win.save_session_dialog() == path
    with open_session(path) as s:
        assert s.info().source == "live" and s.info().samples >= 2
    assert win.open_path(path)
    assert win.mode == SESSION and not win.live.running
    assert os.getpid() in shown_pids(win)
    assert not win.rerun_action.isEnabled()  # nothing to re-run: it was a real machine
    win.processes.select_pid(os.getpid())
    assert win.object_stack.currentWidget() is win.fields_view
    assert "live machine" in win.fields_view.note_label.text()


@needs_proc
def test_processes_seen_to_come_and_go_are_in_the_event_log(window, qtbot, tmp_path):
    """Live, the event log lists the processes and threads that came and went between
    samples (sampled, not traced), and a saved session keeps them."""
    win = window
    win.live.set_interval(0.1)
    with qtbot.waitSignal(win.live.sampled, timeout=20_000):
        win.show_live()

    def logged(kind: str, pid: int) -> bool:
        return any(r[1] == kind and r[2] == pid for r in win.event_log.model.rows)

    child = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"],
                             stdin=subprocess.PIPE)
    try:
        qtbot.waitUntil(lambda: logged("process_create", child.pid), timeout=20_000)
        assert logged("thread_create", child.pid)
    finally:
        child.stdin.close()
        child.wait()  # reaped: the next samples see it gone
    qtbot.waitUntil(lambda: logged("process_exit", child.pid), timeout=20_000)
    # a thread of a process that was there before: named from the first state shown
    done = threading.Event()
    worker = threading.Thread(target=done.wait, name="koi-test-worker")
    worker.start()
    try:
        qtbot.waitUntil(lambda: logged("thread_create", os.getpid()), timeout=20_000)
    finally:
        done.set()
        worker.join()
    [row] = [r for r in win.event_log.model.rows
             if r[1] == "thread_create" and r[2] == os.getpid()]
    assert row[4].endswith(f" ({os.getpid()})")  # "name (pid)", not the bare pid
    path = str(tmp_path / "here.koi")
    win.dialogs.save_file = lambda *a: path
    assert win.save_session_dialog() == path
    with open_session(path) as s:
        mine = [e for e in s.events() if e.get("pid") == child.pid]
    assert [e["type"] for e in mine if e["type"].startswith("process")] == \
        ["process_create", "process_exit"]
    assert all(e["sampled"] for e in mine)


def test_a_machine_that_cannot_be_sampled_is_reported_and_nothing_changes(window):
    from core.live import LiveError

    def refuse():
        raise LiveError("no /proc here")

    window.live._open_source = refuse
    messages = []
    window.live.failed.connect(messages.append)
    assert not window.show_live()
    assert window.mode == SIMULATION and window.source_simulation_action.isChecked()
    assert messages == ["Cannot sample this machine: no /proc here"]


def test_compare_moments_opens_on_the_start_and_the_moment_shown(replaying, qtbot):
    from PySide6.QtWidgets import QApplication

    from inspector.compare_view import CompareDialog

    win = replaying
    last = len(win.replay.times) - 1
    win.replay.seek_sample(last)
    win.compare_action.trigger()
    dialog = next(w for w in QApplication.topLevelWidgets()
                  if isinstance(w, CompareDialog) and w.isVisible())
    qtbot.addWidget(dialog)
    assert dialog.moment_a.slider.value() == 0 and dialog.moment_b.slider.value() == last
    # a process the comparison lists selects it in the window
    pid = max(shown_pids(win))
    dialog.view.objectActivated.emit("process", pid, -1)
    assert win.processes.selected_pid() == pid
    dialog.close()

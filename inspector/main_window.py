"""KOI's main window: the simulated machine's processes, threads, objects, CPU timeline
and events, with the controls that run it.

Layout (every pane is a dock the user can move; QSettings keeps the arrangement):
Processes and Jobs on the left, the Object inspector and the Layouts browser in the
centre, Threads, CPU timeline and Event log along the bottom with the selected thread's
Fibers beside them.  Selecting a process shows its threads and its _EPROCESS; selecting
a thread (in the table, the timeline or the event log) shows its _ETHREAD and its
fibers; selecting a job shows its _EJOB, and clicking one of its processes selects it.
After every simulation frame each view takes what changed.
"""

from __future__ import annotations

import csv
import html
import io
from pathlib import Path

from PySide6 import __version__ as pyside_version
from PySide6.QtCore import QSettings, Qt, QTimer, qVersion
from PySide6.QtGui import QAction, QActionGroup, QKeySequence
from PySide6.QtWidgets import (
    QApplication, QComboBox, QDockWidget, QFileDialog, QInputDialog, QLabel, QMainWindow,
    QMessageBox, QSlider, QStackedWidget, QTabWidget, QToolBar, QWidget,
)

from core import __version__
from core.kernel.constants import CYCLES_PER_NS, TERMINATED
from core.layouts import Build, Catalogue, catalogue
from core.scenario import ScenarioError
from core.units import format_duration
from inspector.event_log import EventLogView
from inspector.fiber_view import FiberView, pointer_text, process_fibers
from inspector.fields_view import FieldsView
from inspector.job_view import JobLimitsDialog, JobRequest, JobView
from inspector.layout_browser import LayoutBrowser
from inspector.live_graphs import LiveGraphsWidget
from inspector.live_source import INTERVALS_S, LiveController
from inspector.object_view import ObjectView
from inspector.process_model import ProcessTreeView
from inspector.replay import SPEEDS as REPLAY_SPEEDS
from inspector.replay import ReplayController
from inspector.simulation import SPEEDS, SimulationController, speed_label
from inspector.thread_model import ThreadTableView
from inspector.timeline import TimelineWidget

WINDOW_TITLE = "KOI — Kernel Object Inspector"
MAX_RECENT = 8
# What the window shows: the simulated machine, a saved session, or this machine
SIMULATION, SESSION, LIVE = "simulation", "session", "live"
DEFAULT_RETENTION_MIN = 30  # what the app keeps recorded, unless the user says otherwise
MAX_RETENTION_MIN = 24 * 60
REPLAY_EVENTS = 2_000  # a replay's log after a jump: this many of the latest events

BIT_POSITIONS = {
    "exact": "bit positions exact (from Microsoft symbols)",
    "derived": "bit positions derived from bitfield widths",
    "partly inferred": "bit positions partly inferred",
}
RELATIVE_PRIORITIES = ("idle", "lowest", "below_normal", "normal", "above_normal", "highest",
                       "time_critical")
PRIORITY_CLASSES = ("idle", "below_normal", "normal", "above_normal", "high", "realtime")
# Exceptions a user may raise unhandled in a thread (the code is the process's exit status)
EXCEPTION_CODES = {
    "0xC0000005 STATUS_ACCESS_VIOLATION": 0xC0000005,
    "0xC00000FD STATUS_STACK_OVERFLOW": 0xC00000FD,
    "0xC0000094 STATUS_INTEGER_DIVIDE_BY_ZERO": 0xC0000094,
    "0x80000003 STATUS_BREAKPOINT": 0x80000003,
    "0xC0000409 STATUS_STACK_BUFFER_OVERRUN (fail fast)": 0xC0000409,
    "0xE06D7363 C++ exception": 0xE06D7363,
}


class Dialogs:
    """Every question the window asks the user, in one patchable place (tests replace
    these methods instead of driving modal dialogs)."""

    def __init__(self, parent: QWidget) -> None:
        self.parent = parent

    def choose(self, title: str, label: str, items: tuple[str, ...], current: str) -> str | None:
        index = items.index(current) if current in items else 0
        text, ok = QInputDialog.getItem(self.parent, title, label, list(items), index, False)
        return text if ok else None

    def integer(self, title: str, label: str, value: int, low: int, high: int) -> int | None:
        number, ok = QInputDialog.getInt(self.parent, title, label, value, low, high)
        return number if ok else None

    def text(self, title: str, label: str, value: str = "") -> str | None:
        text, ok = QInputDialog.getText(self.parent, title, label, text=value)
        return text if ok else None

    def open_file(self, title: str, filters: str) -> str | None:
        path, _ = QFileDialog.getOpenFileName(self.parent, title, "", filters)
        return path or None

    def save_file(self, title: str, filters: str, suggested: str = "") -> str | None:
        path, _ = QFileDialog.getSaveFileName(self.parent, title, suggested, filters)
        return path or None

    def error(self, title: str, message: str) -> None:
        QMessageBox.warning(self.parent, title, message)

    def process_form(self, machine, selected_pid: int, objects) -> object | None:
        """The Create Process form; its ProcessRequest, or None if cancelled."""
        from inspector.process_dialog import CreateProcessDialog

        return self._request(CreateProcessDialog(machine, self.parent,
                                                 selected_pid=selected_pid, objects=objects))

    def job_form(self, title: str, jobs: list[str], current: dict | None,
                 create: bool) -> JobRequest | None:
        """The Create Job / Set Job Limits form; `current` is the job's state entry."""
        return self._request(JobLimitsDialog(self.parent, title=title, jobs=jobs,
                                             initial=current, create=create))

    def convert_fiber_form(self, title: str) -> object | None:
        """The Convert Thread to Fiber form; its ConvertRequest, or None if cancelled."""
        from inspector.fiber_dialog import ConvertFiberDialog

        return self._request(ConvertFiberDialog(self.parent, title=title))

    def fiber_form(self, thread, objects) -> object | None:
        """The Create Fiber form for `thread`'s process; its FiberRequest, or None."""
        from inspector.fiber_dialog import CreateFiberDialog

        return self._request(CreateFiberDialog(
            thread, self.parent, objects=objects,
            title=f"Create Fiber (thread {thread.tid} of {thread.process.name})"))

    @staticmethod
    def _request(dialog):
        """Run a form dialog: its `request` when accepted, else None."""
        try:
            accepted = dialog.exec() == dialog.DialogCode.Accepted
            return dialog.request if accepted else None
        finally:
            dialog.deleteLater()


class MainWindow(QMainWindow):
    def __init__(self, cat: Catalogue | None = None, parent: QWidget | None = None,
                 controller: SimulationController | None = None,
                 settings: QSettings | None = None) -> None:
        super().__init__(parent)
        self._catalogue = cat or catalogue()
        self.settings = settings or QSettings()
        self.dialogs = Dialogs(self)
        self.setWindowTitle(WINDOW_TITLE)
        self.resize(1400, 900)
        self.setDockNestingEnabled(True)

        self.sim = controller or SimulationController(self)
        self.replay = ReplayController(self)
        self.live = LiveController(self)
        self.mode = SIMULATION
        self.processes = ProcessTreeView()
        self.threads = ThreadTableView()
        self.object_view = ObjectView()
        self.fields_view = FieldsView()
        self.browser = LayoutBrowser(self._catalogue)
        self.timeline = TimelineWidget()
        self.live_graphs = LiveGraphsWidget()
        # The CPU Timeline dock: the scheduler's trace, or this machine's sampled graphs
        self.timeline_stack = QStackedWidget()
        self.timeline_stack.setObjectName("timeline_stack")
        self.timeline_stack.addWidget(self.timeline)
        self.timeline_stack.addWidget(self.live_graphs)
        self.event_log = EventLogView()
        self.jobs = JobView()
        self.fibers = FiberView()
        self._trace_rows = 0
        self._selected_pid = -1
        self._selected_tid = -1
        self._selected_job_name: str | None = None  # a job selected in the Jobs dock
        self._events_until = -float("inf")  # replay: events shown up to this time (µs)
        self._log_names_due = False  # the event log is to learn names from the next state
        # A session's re-run to the moment shown goes on in slices between events
        self._rerun_timer = QTimer(self)
        self._rerun_timer.setSingleShot(True)
        self._rerun_timer.setInterval(0)
        self._rerun_timer.timeout.connect(self._show_selected_object)

        # The Object tab: kernel structures when there are some, else the fields the
        # source recorded or sampled
        self.object_stack = QStackedWidget()
        self.object_stack.setObjectName("object_stack")
        self.object_stack.addWidget(self.object_view)
        self.object_stack.addWidget(self.fields_view)
        self.tabs = QTabWidget()
        self.tabs.setObjectName("central_tabs")
        self.tabs.addTab(self.object_stack, "Object")
        self.tabs.addTab(self.browser, "Layouts")
        self.setCentralWidget(self.tabs)
        self.process_dock = self._dock("Processes", self.processes,
                                       Qt.DockWidgetArea.LeftDockWidgetArea)
        self.thread_dock = self._dock("Threads", self.threads,
                                      Qt.DockWidgetArea.BottomDockWidgetArea)
        self.timeline_dock = self._dock("CPU Timeline", self.timeline_stack,
                                        Qt.DockWidgetArea.BottomDockWidgetArea)
        self.event_dock = self._dock("Event Log", self.event_log,
                                     Qt.DockWidgetArea.BottomDockWidgetArea)
        self.job_dock = self._dock("Jobs", self.jobs, Qt.DockWidgetArea.LeftDockWidgetArea)
        self.fiber_dock = self._dock("Fibers", self.fibers,
                                     Qt.DockWidgetArea.BottomDockWidgetArea)
        self.splitDockWidget(self.process_dock, self.job_dock, Qt.Orientation.Vertical)
        # Fibers beside the threads: split before tabifying (a tabbed dock takes tabs)
        self.splitDockWidget(self.thread_dock, self.fiber_dock, Qt.Orientation.Horizontal)
        self.tabifyDockWidget(self.thread_dock, self.timeline_dock)
        self.tabifyDockWidget(self.timeline_dock, self.event_dock)
        self.thread_dock.raise_()
        self.resizeDocks([self.process_dock], [640], Qt.Orientation.Horizontal)
        self.resizeDocks([self.process_dock, self.job_dock], [320, 300],
                         Qt.Orientation.Vertical)
        self.resizeDocks([self.thread_dock], [300], Qt.Orientation.Vertical)
        self.resizeDocks([self.thread_dock, self.fiber_dock], [600, 400],
                         Qt.Orientation.Horizontal)

        self.time_label = QLabel()
        self.time_label.setObjectName("sim_time")
        self.build_label = QLabel()
        self.build_label.setObjectName("build_status")
        self.warning_label = QLabel()
        self.warning_label.setObjectName("build_warning")
        # Fixed colours: the warning must read the same in light and dark themes.
        self.warning_label.setStyleSheet(
            "QLabel { background: #fff3cd; color: #664d03; border: 1px solid #d9b949;"
            " border-radius: 3px; padding: 0px 6px; }")
        self.statusBar().addPermanentWidget(self.time_label)
        self.statusBar().addPermanentWidget(self.warning_label)
        self.statusBar().addPermanentWidget(self.build_label)

        self._make_actions()
        self._make_menus()
        self._make_toolbar()
        self._connect()
        self._update_mode_actions()
        self._on_build_changed(self.browser.build)
        self._restore_settings()

    # ------------------------------------------------------------------ construction
    def _dock(self, title: str, widget: QWidget, area) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(title.lower().replace(" ", "_") + "_dock")
        dock.setWidget(widget)
        dock.toggleViewAction().setObjectName("toggle_" + dock.objectName())
        self.addDockWidget(area, dock)
        return dock

    def _action(self, text: str, name: str, slot, shortcut=None, tip: str = "") -> QAction:
        action = QAction(text, self)
        action.setObjectName(name)
        if shortcut is not None:
            action.setShortcut(shortcut)
        if tip:
            action.setStatusTip(tip)
            action.setToolTip(tip)
        action.triggered.connect(lambda _checked=False: slot())  # slots take no `checked`
        return action

    def _make_actions(self) -> None:
        A = self._action
        self.open_action = A("&Open...", "open_scenario", self.open_scenario_dialog,
                             QKeySequence.StandardKey.Open,
                             "Open a scenario (.toml) or a saved session (.koi)")
        self.save_action = A("&Save Session...", "save_session", self.save_session_dialog,
                             QKeySequence.StandardKey.Save,
                             "Save what ran so far as a session file (.koi)")
        self.retention_action = A("Recording &Retention...", "recording_retention",
                                  self.set_recording_retention,
                                  tip="How much of what runs the app keeps for Save Session")
        self.export_processes_action = A("Export &Processes as CSV...", "export_processes",
                                         lambda: self.export_csv("processes"))
        self.export_threads_action = A("Export &Threads as CSV...", "export_threads",
                                       lambda: self.export_csv("threads"))
        self.export_timeline_action = A("Export CPU Timeline as &PNG...", "export_timeline",
                                        self.export_timeline_png)
        self.quit_action = A("&Quit", "quit", self.close, QKeySequence.StandardKey.Quit,
                             "Quit KOI")
        self.run_action = A("&Run", "run_pause", self.toggle_running, QKeySequence("F5"),
                            "Run or pause the simulation (F5)")
        self.run_action.setCheckable(True)
        self.step_event_action = A("Step &Event", "step_event", self.sim.step_event,
                                   QKeySequence("Shift+F10"), "Process one kernel event")
        self.step_tick_action = A("Step &Tick", "step_tick", self.sim.step_tick,
                                  QKeySequence("F10"), "Run one clock tick (15.625 ms)")
        self.step_switch_action = A("Step to Next &Switch", "step_switch",
                                    self.sim.step_to_switch, QKeySequence("F11"),
                                    "Run until the next context switch")
        self.restart_action = A("Res&tart", "restart", self.restart, QKeySequence("Ctrl+R"),
                                "Load the current scenario again from time 0")
        self.speed_group = QActionGroup(self)
        self.speed_actions = []
        for speed in SPEEDS:
            act = QAction(speed_label(speed), self, checkable=True)
            act.setObjectName(f"speed_{speed_label(speed)}")
            act.triggered.connect(lambda _=False, s=speed: self.set_speed(s))
            self.speed_group.addAction(act)
            self.speed_actions.append(act)
        self.speed_actions[SPEEDS.index(1.0)].setChecked(True)
        # actions on the selection
        self.set_priority_action = A("Set &Priority...", "set_priority", self.set_priority)
        self.suspend_action = A("&Suspend", "suspend_thread", self.suspend_thread)
        self.resume_action = A("R&esume", "resume_thread", self.resume_thread)
        self.terminate_thread_action = A("&Terminate Thread...", "terminate_thread",
                                         self.terminate_thread)
        self.raise_exception_action = A(
            "Raise &Unhandled Exception...", "raise_unhandled_exception",
            self.raise_unhandled_exception,
            tip="The selected thread meets an exception nothing handles: its process ends "
                "with the code (a job may report it as an abnormal exit)")
        self.set_ideal_action = A("Set &Ideal CPU...", "set_ideal_cpu", self.set_ideal_cpu)
        self.set_affinity_action = A("Set &Affinity...", "set_affinity", self.set_affinity)
        self.set_class_action = A("Set Priority &Class...", "set_priority_class",
                                  self.set_priority_class)
        self.set_foreground_action = A("Make &Foreground", "set_foreground",
                                       self.set_foreground)
        self.terminate_process_action = A("Terminate &Process...", "terminate_process",
                                          self.terminate_process)
        self.create_process_action = A("&Create Process...", "create_process",
                                       self.create_process)
        self.create_thread_action = A("Create &Thread...", "create_thread", self.create_thread)
        # fibers: the Fibers dock's thread makes the call, as its own program would (§7)
        self.convert_fiber_action = A("&Convert Thread to Fiber...", "convert_thread_to_fiber",
                                      self.convert_thread_to_fiber,
                                      tip="ConvertThreadToFiberEx: the thread becomes its "
                                          "first fiber, named after it")
        self.create_fiber_action = A("C&reate Fiber...", "create_fiber", self.create_fiber,
                                     tip="CreateFiberEx: a fiber of the thread's process that "
                                         "first runs when switched to")
        self.switch_fiber_action = A("&Switch to Fiber", "switch_to_fiber",
                                     self.switch_to_fiber,
                                     tip="SwitchToFiber to the fiber chosen in the Fibers dock "
                                         "(else pick one); between the thread's steps, not "
                                         "inside a CPU step")
        self.delete_fiber_action = A("&Delete Fiber...", "delete_fiber", self.delete_fiber,
                                     tip="DeleteFiber; deleting the running fiber ends the "
                                         "thread (ExitThread(1))")
        self.fiber_to_thread_action = A("Convert Fiber to &Thread", "convert_fiber_to_thread",
                                        self.convert_fiber_to_thread,
                                        tip="ConvertFiberToThread: the thread goes on with its "
                                            "code and its FLS")
        self.fiber_actions = (self.convert_fiber_action, self.create_fiber_action,
                              self.switch_fiber_action, self.delete_fiber_action,
                              self.fiber_to_thread_action)
        # jobs (simulated machines only)
        self.create_job_action = A("&Create Job...", "create_job", self.create_job,
                                   tip="CreateJobObject, nested or not, with its limits")
        self.assign_job_action = A("&Assign Process to Job...", "assign_process_to_job",
                                   self.assign_process_to_job,
                                   tip="AssignProcessToJobObject: the selected process joins "
                                       "a job (for good)")
        self.set_job_limits_action = A("Set Job &Limits...", "set_job_limits",
                                       self.set_job_limits,
                                       tip="SetInformationJobObject: limits and CPU rate of "
                                           "the selected job")
        self.terminate_job_action = A("&Terminate Job...", "terminate_job", self.terminate_job,
                                      tip="TerminateJobObject: every process of the job and "
                                          "its child jobs exits")
        self.close_job_action = A("Close Job &Handle", "close_job_handle", self.close_job_handle,
                                  tip="CloseHandle on the job: the last one applies "
                                      "kill-on-close")
        self.job_actions = (self.create_job_action, self.assign_job_action,
                            self.set_job_limits_action, self.terminate_job_action,
                            self.close_job_action)
        # where the views' objects come from
        self.source_group = QActionGroup(self)
        self.source_simulation_action = A("&Simulated Machine", "source_simulation",
                                          self.show_simulation,
                                          tip="The simulated kernel running a scenario")
        self.source_live_action = A("&This Machine (live)", "source_live", self.show_live,
                                    tip="This computer's real processes and threads, "
                                        "sampled on a background thread")
        self.source_session_action = A("Saved S&ession", "source_session",
                                       self.show_session,
                                       tip="The saved session last opened (File > Open)")
        for act in (self.source_simulation_action, self.source_live_action,
                    self.source_session_action):
            act.setCheckable(True)
            self.source_group.addAction(act)
        self.source_simulation_action.setChecked(True)
        self.source_session_action.setEnabled(False)
        # replaying a session
        self.previous_sample_action = A("&Previous Sample", "previous_sample",
                                        lambda: self.replay.step(-1), QKeySequence("Alt+Left"),
                                        "Show the recording one sample earlier")
        self.next_sample_action = A("&Next Sample", "next_sample",
                                    lambda: self.replay.step(1), QKeySequence("Alt+Right"),
                                    "Show the recording one sample later")
        self.compare_action = A("&Compare Moments...", "compare_moments", self.compare_dialog,
                                tip="What changed between two moments of the session, or "
                                    "between two sessions")
        self.rerun_action = A("&Re-run to This Moment", "rerun_to_moment",
                              self.rerun_to_moment,
                              tip="Load the recorded scenario into the simulator at the "
                                  "moment shown, paused, to go on from there")
        self.about_action = A("&About KOI", "about", self.show_about,
                              tip="Version, purpose and the sources of the layout data")

    def _make_menus(self) -> None:
        bar = self.menuBar()
        file_menu = bar.addMenu("&File")
        file_menu.addAction(self.open_action)
        self.recent_menu = file_menu.addMenu("Open &Recent")
        self.recent_menu.setObjectName("recent_menu")
        file_menu.addAction(self.save_action)
        file_menu.addAction(self.compare_action)
        file_menu.addAction(self.retention_action)
        file_menu.addSeparator()
        for act in (self.export_processes_action, self.export_threads_action,
                    self.export_timeline_action):
            file_menu.addAction(act)
        file_menu.addSeparator()
        file_menu.addAction(self.quit_action)

        b = self.browser
        edit_menu = bar.addMenu("&Edit")
        edit_menu.addAction(self.object_view.copy_dt_action)
        edit_menu.addAction(b.copy_rows_action)
        edit_menu.addAction(b.copy_dt_action)
        edit_menu.addSeparator()
        edit_menu.addAction(self.processes.filter_action)
        edit_menu.addAction(b.find_type_action)

        view_menu = bar.addMenu("&View")
        view_menu.addAction(self.object_view.back_action)
        view_menu.addAction(self.object_view.forward_action)
        view_menu.addSeparator()
        for dock in (self.process_dock, self.job_dock, self.thread_dock, self.fiber_dock,
                     self.timeline_dock, self.event_dock):
            view_menu.addAction(dock.toggleViewAction())
        view_menu.addSeparator()
        view_menu.addAction(b.open_type_action)
        status_action = QAction("&Status Bar", self, checkable=True, checked=True)
        status_action.setObjectName("toggle_status_bar")
        status_action.toggled.connect(self.statusBar().setVisible)
        view_menu.addAction(status_action)

        source_menu = bar.addMenu("S&ource")
        for act in (self.source_simulation_action, self.source_live_action,
                    self.source_session_action):
            source_menu.addAction(act)
        source_menu.addSeparator()
        for act in (self.previous_sample_action, self.next_sample_action, self.rerun_action):
            source_menu.addAction(act)

        sim_menu = bar.addMenu("&Simulation")
        for act in (self.run_action, self.step_event_action, self.step_tick_action,
                    self.step_switch_action, self.restart_action):
            sim_menu.addAction(act)
        speed_menu = sim_menu.addMenu("S&peed")
        for act in self.speed_actions:
            speed_menu.addAction(act)

        proc_menu = bar.addMenu("&Process")
        for act in (self.create_process_action, self.set_class_action,
                    self.set_foreground_action, self.terminate_process_action):
            proc_menu.addAction(act)
        thread_menu = bar.addMenu("&Thread")
        for act in (self.create_thread_action, self.set_priority_action, self.set_affinity_action,
                    self.set_ideal_action, self.suspend_action, self.resume_action,
                    self.terminate_thread_action, self.raise_exception_action):
            thread_menu.addAction(act)
        thread_menu.addSeparator()
        fiber_menu = thread_menu.addMenu("Fi&ber")
        fiber_menu.setObjectName("fiber_menu")
        for act in self.fiber_actions:
            fiber_menu.addAction(act)
        self.fibers.add_context_actions(self.fiber_actions)
        job_menu = bar.addMenu("&Job")
        for act in self.job_actions:
            job_menu.addAction(act)
        self._update_job_actions()

        help_menu = bar.addMenu("&Help")
        help_menu.addAction(self.about_action)
        about_qt = QAction("About &Qt", self)
        about_qt.setObjectName("about_qt")
        about_qt.triggered.connect(QApplication.aboutQt)
        help_menu.addAction(about_qt)

    def _make_toolbar(self) -> None:
        bar = QToolBar("Simulation", self)
        bar.setObjectName("simulation_toolbar")
        for act in (self.run_action, self.step_event_action, self.step_tick_action,
                    self.step_switch_action, self.restart_action):
            bar.addAction(act)
        self.speed_combo = QComboBox()
        self.speed_combo.setObjectName("speed_combo")
        self.speed_combo.setToolTip("Simulation speed: simulated time per wall-clock time")
        for speed in SPEEDS:
            self.speed_combo.addItem(speed_label(speed), speed)
        self.speed_combo.setCurrentIndex(SPEEDS.index(1.0))
        self.speed_combo.activated.connect(
            lambda i: self.set_speed(self.speed_combo.itemData(i)))
        self.speed_label = QLabel(" Speed ")
        self.speed_action = bar.addWidget(self.speed_label)
        self.speed_combo_action = bar.addWidget(self.speed_combo)
        self.addToolBar(bar)
        self.simulation_toolbar = bar

        # A session: the time slider over its samples, and the playback speed
        replay_bar = QToolBar("Replay", self)
        replay_bar.setObjectName("replay_toolbar")
        replay_bar.addAction(self.previous_sample_action)
        self.time_slider = QSlider(Qt.Orientation.Horizontal)
        self.time_slider.setObjectName("time_slider")
        self.time_slider.setMinimumWidth(320)
        self.time_slider.setToolTip("The moment of the recording every view shows")
        self.time_slider.valueChanged.connect(self._on_slider)
        replay_bar.addWidget(self.time_slider)
        replay_bar.addAction(self.next_sample_action)
        self.replay_speed_combo = QComboBox()
        self.replay_speed_combo.setObjectName("replay_speed_combo")
        self.replay_speed_combo.setToolTip("Playback speed: recorded time per wall-clock "
                                           "time (Fastest: one sample per frame)")
        for speed in REPLAY_SPEEDS:
            self.replay_speed_combo.addItem(speed_label(speed), speed)
        self.replay_speed_combo.setCurrentIndex(REPLAY_SPEEDS.index(1.0))
        self.replay_speed_combo.activated.connect(
            lambda i: self.replay.set_speed(self.replay_speed_combo.itemData(i)))
        replay_bar.addWidget(QLabel(" Playback "))
        replay_bar.addWidget(self.replay_speed_combo)
        replay_bar.addAction(self.compare_action)
        self.addToolBar(Qt.ToolBarArea.TopToolBarArea, replay_bar)
        self.replay_toolbar = replay_bar

        # This machine: how often it is sampled
        live_bar = QToolBar("Live", self)
        live_bar.setObjectName("live_toolbar")
        self.interval_combo = QComboBox()
        self.interval_combo.setObjectName("live_interval_combo")
        self.interval_combo.setToolTip("How often this machine is sampled")
        for seconds in INTERVALS_S:
            self.interval_combo.addItem(format_duration(round(seconds * 1e9)), seconds)
        self.interval_combo.setCurrentIndex(INTERVALS_S.index(self.live.interval_s))
        self.interval_combo.activated.connect(
            lambda i: self._set_live_interval(self.interval_combo.itemData(i)))
        live_bar.addWidget(QLabel(" Sample every "))
        live_bar.addWidget(self.interval_combo)
        self.addToolBar(Qt.ToolBarArea.TopToolBarArea, live_bar)
        self.live_toolbar = live_bar

    def _connect(self) -> None:
        self.sim.frameAdvanced.connect(self._on_sim_frame)
        self.sim.loaded.connect(self._on_loaded)
        self.sim.runningChanged.connect(self._on_running)
        self.replay.frameAdvanced.connect(self._on_replay_frame)
        self.replay.runningChanged.connect(self._on_running)
        self.live.sampled.connect(self._on_live_sample)
        self.live.runningChanged.connect(self._on_running)
        self.live.failed.connect(self._on_live_failed)
        self.processes.processSelected.connect(self.select_process)
        self.threads.threadSelected.connect(self.select_thread)
        self.timeline.threadClicked.connect(self.select_thread)
        self.live_graphs.threadClicked.connect(self.select_thread)
        self.event_log.objectActivated.connect(self._on_event_object)
        self.jobs.processActivated.connect(self._on_job_process)
        self.jobs.jobSelected.connect(self._on_job_selected)
        self.fibers.shown.connect(self._update_fiber_actions)
        self.browser.sig_build_changed.connect(self._on_build_changed)
        self.browser.sig_message.connect(lambda text: self.statusBar().showMessage(text, 4000))
        self.object_view.objectActivated.connect(self._on_object_followed)
        self.object_view.sig_message.connect(
            lambda text: self.statusBar().showMessage(text, 4000))

    # ------------------------------------------------------------------ loading
    def load_default(self) -> None:
        self.sim.load_default()

    def open_path(self, path: str) -> bool:
        """Open a scenario (.toml) or a saved session (.koi); a bad file is reported and
        what is shown stays."""
        suffix = Path(path).suffix.lower()
        if suffix == ".koi":
            return self.open_session(path)
        if suffix != ".toml":
            self.dialogs.error("Cannot open", f"{path}: KOI opens scenarios (.toml) and "
                                              "saved sessions (.koi).")
            return False
        try:
            self.sim.load_scenario(path)
        except (ScenarioError, OSError) as exc:
            self.dialogs.error("Cannot open scenario", str(exc))
            return False
        self._remember_recent(path)
        self.show_simulation()
        return True

    def open_session(self, path: str) -> bool:
        """Replay a saved session; a file that is not one (or is damaged, or newer) is
        refused untouched, with the reason."""
        from core.session import SessionError

        try:
            self.replay.open(path)
        except (SessionError, OSError) as exc:
            self.dialogs.error("Cannot open session", str(exc))
            return False
        self._remember_recent(path)
        self.source_session_action.setEnabled(True)
        self._load_replay_views()
        self.show_session()
        return True

    def open_scenario_dialog(self) -> None:
        path = self.dialogs.open_file(
            "Open", "Scenarios and sessions (*.toml *.koi);;Scenarios (*.toml);;"
                    "Sessions (*.koi);;All files (*)")
        if path:
            self.open_path(path)

    def restart(self) -> None:
        """The scenario again from time 0 (read again from its file, if it has one)."""
        source = self.sim.source
        if source == "default" or not source:
            self.sim.load_default()
        elif Path(source).suffix.lower() == ".toml":
            self.open_path(source)
        else:  # re-run from a session: the scenario the session recorded
            self.sim.reload()

    def _on_loaded(self, source: str) -> None:
        self._trace_rows = 0
        if self.mode == SIMULATION:
            self._load_simulation_views()

    def _clear_selection(self) -> None:
        self.object_view.show_object(None)
        self.fields_view.show_fields(None)
        self._selected_pid = self._selected_tid = -1
        self._selected_job_name = None
        self.fibers.set_thread(None)

    def _load_simulation_views(self) -> None:
        m = self.sim.machine
        self._trace_rows = len(m.trace)
        self.timeline.set_cursor(None)
        self.timeline.set_trace(m.trace.columns(), m.now, m.state, cpus=m.ncpu)
        self._restart_event_log()
        self._clear_selection()
        self._update_title()
        self._update_job_actions()

    def _restart_event_log(self) -> None:
        """An empty event log for another machine, or another source: its ids name other
        processes and threads, so the log learns the names of those whose creation it
        does not show from the first state shown."""
        self.event_log.model.clear()
        self.event_log.model.forget_names()
        self._log_names_due = True

    def _load_replay_views(self) -> None:
        r = self.replay
        trace = r.trace()
        end = max(round(r.end_us * 1000) * CYCLES_PER_NS,
                  int(trace["time"].max()) if len(trace["time"]) else 0)
        self.timeline.set_trace(trace, end, self._replay_names(), cpus=r.info.cpus or None)
        self.timeline.set_cursor(r.now_cycles)
        self._restart_event_log()
        self._events_until = -float("inf")
        self.time_slider.blockSignals(True)
        self.time_slider.setRange(0, len(r.times) - 1)
        self.time_slider.setValue(r.sample_index())
        self.time_slider.blockSignals(False)
        self._clear_selection()

    def _replay_names(self):
        """Every process and thread the recording saw, for the timeline's labels."""
        from core.timeline import NameLookup

        procs, threads = {}, {}
        for life in self.replay.session.objects():
            if life["kind"] == "process" and life["name"] is not None:
                procs[life["pid"]] = life["name"]
            elif life["kind"] == "thread" and life["name"] is not None and life["tid"]:
                threads[life["tid"]] = life["name"]
        return NameLookup(procs, threads)

    # ------------------------------------------------------------------ sources
    def show_simulation(self) -> None:
        if self.sim.machine is None:
            self.sim.load_default()  # started on a session: the demo, when asked for
        self._switch(SIMULATION)

    def show_live(self) -> bool:
        if not self.live.start():
            self._source_action(self.mode).setChecked(True)  # still showing what it was
            return False
        self._switch(LIVE)
        return True

    def show_session(self) -> None:
        if self.replay.is_open:
            self._switch(SESSION)

    def _switch(self, mode: str) -> None:
        """Show another source. The one left keeps its place: a simulation pauses, a
        session stays at its moment; this machine stops being sampled."""
        if mode != SIMULATION:
            self.sim.pause()
        if mode != SESSION:
            self.replay.pause()
        if mode != LIVE:
            self.live.stop()
        changed = mode != self.mode
        self.mode = mode
        self._source_action(mode).setChecked(True)
        if changed:
            self._clear_selection()
            self._restart_event_log()
            if mode == SIMULATION and self.sim.machine is not None:
                self._load_simulation_views()
            elif mode == SESSION:
                self._load_replay_views()
            elif mode == LIVE:
                self.live_graphs.set_history(self.live.history, self._live_name,
                                             self.live.interval_s)
        self.timeline_stack.setCurrentWidget(self.live_graphs if mode == LIVE
                                             else self.timeline)
        self._update_mode_actions()
        self._update_title()
        self.refresh()

    def _source_action(self, mode: str) -> QAction:
        return {SIMULATION: self.source_simulation_action, LIVE: self.source_live_action,
                SESSION: self.source_session_action}[mode]

    def _update_mode_actions(self) -> None:
        sim, session, live = (self.mode == m for m in (SIMULATION, SESSION, LIVE))
        for act in (self.step_event_action, self.step_tick_action, self.step_switch_action,
                    self.restart_action, *self.speed_actions):
            act.setEnabled(sim)
        for act in (self.create_process_action, self.set_class_action,
                    self.set_foreground_action, self.terminate_process_action,
                    self.create_thread_action, self.set_priority_action,
                    self.set_affinity_action, self.set_ideal_action, self.suspend_action,
                    self.resume_action, self.terminate_thread_action,
                    self.raise_exception_action):
            act.setEnabled(sim)  # only the simulated kernel takes orders
        for act in (self.previous_sample_action, self.next_sample_action,
                    self.compare_action):
            act.setEnabled(session)
        self.rerun_action.setEnabled(session and self.replay.rerunnable)
        self.save_action.setEnabled(not session)
        self.speed_label.setEnabled(sim)
        self.speed_combo.setEnabled(sim)
        self.replay_toolbar.setVisible(session)
        self.live_toolbar.setVisible(live)
        self._update_job_actions()
        self._update_fiber_actions()
        running = {SIMULATION: self.sim, SESSION: self.replay, LIVE: self.live}[self.mode]
        self._show_running(running.running)
        tips = {SIMULATION: "Run or pause the simulation (F5)",
                SESSION: "Play or pause the recording (F5)",
                LIVE: "Sample this machine, or pause sampling (F5)"}
        self.run_action.setStatusTip(tips[self.mode])
        self.run_action.setToolTip(tips[self.mode])

    def _update_title(self) -> None:
        if self.mode == SIMULATION:
            source = self.sim.source
            name = "demo (desktop)" if source == "default" else Path(source).name
        elif self.mode == SESSION:
            name = f"{Path(self.replay.path).name} (session)"
        else:
            import platform

            name = f"{platform.node() or 'this machine'} (live)"
        self.setWindowTitle(f"{name} — {WINDOW_TITLE}")

    def _set_live_interval(self, seconds: float) -> None:
        self.live.set_interval(seconds)
        if self.mode == LIVE:
            self.live_graphs.set_history(self.live.history, self._live_name, seconds)

    def toggle_running(self) -> None:
        {SIMULATION: self.sim, SESSION: self.replay, LIVE: self.live}[self.mode].toggle()

    # ------------------------------------------------------------------ frames
    def _on_sim_frame(self) -> None:
        if self.mode == SIMULATION:
            self.refresh()

    def _on_replay_frame(self) -> None:
        if self.mode == SESSION:
            self.refresh()

    def _on_live_sample(self) -> None:
        if self.mode == LIVE:
            self.refresh()

    def _live_name(self, pid: int) -> str | None:
        snap = self.live.latest
        proc = snap.find(pid) if snap is not None else None
        return None if proc is None else proc.name

    def _select_in_live_graphs(self) -> None:
        """The live graphs' selection: the process (and thread) selected, by identity."""
        snap = self.live.latest
        proc = snap.find(self._selected_pid) if snap is not None else None
        if proc is None:
            self.live_graphs.set_selection(None, None)
            return
        thread = next((t for t in proc.threads if t.tid == self._selected_tid), None)
        label = f"{proc.name} ({proc.pid})" + (f", thread {thread.tid}" if thread else "")
        self.live_graphs.set_selection(proc.key, None if thread is None else thread.key, label)

    def _on_live_failed(self, message: str) -> None:
        self.statusBar().showMessage(message, 8000)

    def refresh(self) -> None:
        """Bring every view up to the source shown."""
        if self.mode == SIMULATION:
            self._refresh_simulation()
        elif self.mode == SESSION:
            self._refresh_replay()
        else:
            self._refresh_live()

    def _update_views(self, state: dict) -> None:
        if self._log_names_due:
            self.event_log.model.note_state(state)
            self._log_names_due = False
        self.processes.update_state(state)
        self.threads.update_state(state)
        self.jobs.update_state(state)
        self.fibers.update_state(state)

    def _refresh_simulation(self) -> None:
        m = self.sim.machine
        if m is None:
            return
        state = m.state()
        new = self.sim.take_new_events()
        for event in new:  # so a process that came and went between frames still shows
            self.processes.model.note_event(event)
        self._update_views(state)
        if new:
            self.event_log.model.append_events(new)
        rows = m.trace.columns_since(self._trace_rows)
        self.timeline.update_trace(rows, m.now, first_row=self._trace_rows)
        self._trace_rows += len(rows["time"])
        if self.object_view.current_object is not None:
            self.object_view.refresh()
        self.time_label.setText(
            f"{format_duration(m.now // CYCLES_PER_NS)}  ·  "
            f"{'running' if self.sim.running else 'paused'} at {speed_label(self.sim.speed)}")

    def _refresh_replay(self) -> None:
        r = self.replay
        if not r.is_open:
            return
        state = r.state()
        self._update_views(state)
        t = r.time_us
        forward = t >= self._events_until
        new = r.events_between(self._events_until if forward else -float("inf"), t,
                               REPLAY_EVENTS)
        if not forward or len(new) == REPLAY_EVENTS:
            # back in time, or far ahead: the log starts over with the latest events
            self.event_log.model.clear()
        self._events_until = t
        if new:
            self.event_log.model.append_events(new)
        self.timeline.set_cursor(r.now_cycles)
        self.time_slider.blockSignals(True)
        self.time_slider.setValue(r.sample_index())
        self.time_slider.blockSignals(False)
        self._show_selected_object()
        self.time_label.setText(
            f"{format_duration(round(t * 1000))} of {format_duration(round(r.end_us * 1000))}"
            f"  ·  sample {r.sample_index() + 1} of {len(r.times)}  ·  "
            f"{'playing' if r.running else 'paused'} at {speed_label(r.speed)}")

    def _refresh_live(self) -> None:
        state = self.live.state()
        if state is None:
            self.time_label.setText("This machine: taking the first sample...")
            return
        self._update_views(state)
        new = self.live.take_new_events()
        if new:
            self.event_log.model.append_events(new)
        self._show_selected_object()
        self.live_graphs.refresh()
        n_threads = sum(len(p["threads"]) for p in state["processes"])
        cost = self.live.cost_percent
        self.time_label.setText(
            f"This machine ({state['host']})  ·  {len(state['processes'])} processes, "
            f"{n_threads} threads"
            f"  ·  {'sampling' if self.live.running else 'paused'} every "
            f"{format_duration(round(self.live.interval_s * 1e9))}"
            + (f"  ·  sampling uses {cost:.1f} % of a core" if cost is not None else ""))

    def _on_running(self, running: bool) -> None:
        sender = {SIMULATION: self.sim, SESSION: self.replay, LIVE: self.live}[self.mode]
        self._show_running(sender.running)
        self.refresh()

    def _show_running(self, running: bool) -> None:
        self.run_action.setChecked(running)
        verb = {SIMULATION: ("&Pause", "&Run"), SESSION: ("&Pause", "&Play"),
                LIVE: ("&Pause", "&Sample")}[self.mode]
        self.run_action.setText(verb[0] if running else verb[1])

    def set_speed(self, speed: float | None) -> None:
        self.sim.set_speed(speed)
        self.speed_combo.setCurrentIndex(SPEEDS.index(speed))
        self.speed_actions[SPEEDS.index(speed)].setChecked(True)
        self.refresh()

    def _on_slider(self, index: int) -> None:
        if self.mode == SESSION:
            self.replay.seek_sample(index)

    # ------------------------------------------------------------------ selection
    def select_process(self, pid: int) -> None:
        self._selected_pid = pid
        self._selected_tid = -1
        self._selected_job_name = None
        self.threads.set_process(pid if pid >= 0 else None)
        if self.fibers.pid != pid:
            self.fibers.set_thread(None)
        self._show_selected_object(activate=True)

    def select_thread(self, pid: int, tid: int) -> None:
        if pid != self._selected_pid:
            self.processes.select_pid(pid)
        self._selected_pid, self._selected_tid = pid, tid
        self._selected_job_name = None
        self.threads.select_tid(tid)
        self.timeline.select_thread(pid, tid)
        self.fibers.set_thread(pid, tid)
        self._show_selected_object(activate=True)

    def _on_job_selected(self, name: str) -> None:
        """A job selected in the Jobs dock: its _EJOB (or its fields) in the Object tab."""
        self._selected_job_name = name or None
        self._show_selected_object(activate=True)

    def _show_selected_object(self, activate: bool = False) -> None:
        """Show the selection in the Object tab: kernel structures where the source has
        them (the simulated machine; a session's re-run), else the recorded fields."""
        if activate and self.mode == LIVE:
            self._select_in_live_graphs()
        machine = memory = None
        reason = None
        if self.mode == SIMULATION:
            machine, memory = self.sim.machine, self.sim.memory
        elif self.mode == SESSION and self._has_selection():
            rerun = self.replay.machine_at()
            machine, memory, reason = rerun.machine, rerun.memory, rerun.reason
            if rerun.pending:  # not there yet: go on after the events waiting now
                self._rerun_timer.start()
        elif self.mode == LIVE:
            reason = ("this machine's own fields, as sampled (states, priorities on the NT "
                      "scale, times); Linux names them in 'native'")
        obj = self._kernel_object(machine, memory) if machine is not None else None
        if obj is not None:
            if obj is not self.object_view.current_object:
                self.object_view.show_object(obj)
            elif self.mode != SIMULATION:
                self.object_view.refresh()  # the simulation's frame refreshed it already
            self.object_stack.setCurrentWidget(self.object_view)
        elif machine is None and self._has_selection():
            doc, title = self._selected_document()
            self.fields_view.show_fields(doc, title, reason or "")
            self.object_stack.setCurrentWidget(self.fields_view)
        if activate and self._has_selection():
            self.tabs.setCurrentWidget(self.object_stack)

    def _has_selection(self) -> bool:
        return self._selected_job_name is not None or self._selected_pid >= 0

    def _kernel_object(self, machine, memory):
        if memory is None:
            return None
        if self._selected_job_name is not None:
            job = next((j for j in machine.jobs if machine.job_name(j) == self._selected_job_name),
                       None)
            return None if job is None else memory.job_object(job)
        if self._selected_tid > 0:
            thread = machine.threads.get(self._selected_tid)
            return None if thread is None else memory.thread_object(thread)
        proc = machine.processes.get(self._selected_pid)
        return None if proc is None else memory.process_object(proc)

    def _current_state(self) -> dict | None:
        if self.mode == SIMULATION:
            m = self.sim.machine
            return None if m is None else m.state()
        if self.mode == SESSION:
            return self.replay.state() if self.replay.is_open else None
        return self.live.state()

    def _selected_document(self) -> tuple[dict | None, str]:
        """The selected object's entry in the current state, and a title for it."""
        state = self._current_state() or {}
        if self._selected_job_name is not None:
            job = next((j for j in state.get("jobs", ()) if j.get("name") == self._selected_job_name),
                       None)
            return job, f"Job {self._selected_job_name}" + ("" if job else " (gone)")
        proc = next((p for p in state.get("processes", ()) if p["pid"] == self._selected_pid),
                    None)
        if proc is None:
            return None, f"Process {self._selected_pid} (gone)"
        if self._selected_tid > 0:
            thread = next((t for t in proc["threads"] if t["tid"] == self._selected_tid), None)
            return thread, (f"Thread {self._selected_tid} of {proc['name']} "
                            f"({proc['pid']})" + ("" if thread else " (gone)"))
        return proc, f"{proc['name']} ({proc['pid']})"

    def _on_object_followed(self, obj) -> None:
        """A pointer followed in the Object view to a process or thread: the other views
        select it too (the Object view shows it already)."""
        kind = getattr(obj, "type", None)
        if kind == "_EPROCESS":
            pid = obj.get("UniqueProcessId")
            if isinstance(pid, int) and pid != self._selected_pid:
                self.processes.select_pid(pid)
        elif kind == "_ETHREAD":
            pid, tid = obj.get("Cid.UniqueProcess"), obj.get("Cid.UniqueThread")
            if isinstance(pid, int) and isinstance(tid, int) and tid != self._selected_tid:
                self.select_thread(pid, tid)

    def _on_event_object(self, kind: str, pid: int, tid: int) -> None:
        if kind == "thread" and tid >= 0:
            self.select_thread(pid, tid)
        elif pid >= 0:
            self.processes.select_pid(pid)

    def selected_process(self):
        m = self.sim.machine
        if m is None or self.mode != SIMULATION:
            return None
        return m.processes.get(self._selected_pid)

    def selected_thread(self):
        m = self.sim.machine
        if m is None or self.mode != SIMULATION or self._selected_tid <= 0:
            return None
        return m.threads.get(self._selected_tid)

    # ------------------------------------------------------------------ sessions
    def compare_dialog(self) -> None:
        if not self.replay.is_open:
            return
        from inspector.compare_view import CompareDialog

        dialog = CompareDialog(self.replay.session, self,
                               initial_a_us=self.replay.start_us,
                               initial_b_us=self.replay.time_us)
        dialog.view.objectActivated.connect(self._on_event_object)
        dialog.view.jobActivated.connect(self.jobs.select_job)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.show()

    def rerun_to_moment(self) -> bool:
        """Load the recorded scenario into the simulator, run it to the moment shown and
        pause there: from a recording to a machine one can change."""
        r = self.replay
        if not r.rerunnable:
            return False
        from core.scenario import parse_scenario

        try:
            scenario = parse_scenario(r.info.description, r.info.name or "session")
        except ScenarioError as exc:
            self.dialogs.error("Re-run to This Moment", str(exc))
            return False
        target_ns = round(r.times[r.sample_index()] * 1000)
        self.sim.load_parsed(scenario, source=r.path, seed=(r.info.extra or {}).get("seed"))
        self.show_simulation()
        self.sim.advance_to(target_ns)
        return True

    # ------------------------------------------------------------------ actions
    def _need(self, what):
        if what is None:
            self.dialogs.error("Nothing selected", "Select a thread or process first.")
        return what

    def _report_last_error(self, ok, op: str) -> None:
        if not ok and self.sim.machine.last_error:
            self._show_last_error(op)
        self.refresh()

    def _show_last_error(self, op: str) -> None:
        """The kernel's last error, by its Windows name, with its reason if it gave one."""
        from core.kernel.constants import ERROR_NAMES

        code, reason = self.sim.machine.last_error, self.sim.machine.last_error_reason
        self.dialogs.error(op, f"{op} failed: {ERROR_NAMES.get(code, code)} ({code})"
                           + (f": {reason}" if reason else ""))

    def set_priority(self) -> None:
        t = self._need(self.selected_thread())
        if t is None:
            return
        level = self.dialogs.choose("Set Priority", f"Relative priority of thread {t.tid}:",
                                    RELATIVE_PRIORITIES, "normal")
        if level is not None:
            self._report_last_error(self.sim.machine.set_thread_priority(t, level),
                                    "SetThreadPriority")

    def set_ideal_cpu(self) -> None:
        t = self._need(self.selected_thread())
        if t is None:
            return
        m = self.sim.machine
        cpu = self.dialogs.integer("Set Ideal CPU", f"Ideal processor of thread {t.tid}:",
                                   t.ideal, 0, m.ncpu - 1)
        if cpu is not None:
            self._report_last_error(m.set_ideal_processor(t, cpu) >= 0,
                                    "SetThreadIdealProcessor")

    def set_affinity(self) -> None:
        t = self._need(self.selected_thread())
        if t is None:
            return
        text = self.dialogs.text("Set Affinity", "CPUs (e.g. 0,1):",
                                 ",".join(map(str, t.affinity_list)))
        if text is None:
            return
        try:
            cpus = [int(x) for x in text.replace(" ", "").split(",") if x]
        except ValueError:
            self.dialogs.error("Set Affinity", f"{text!r} is not a list of CPU numbers")
            return
        self._report_last_error(self.sim.machine.set_thread_affinity(t, cpus) != 0,
                                "SetThreadAffinityMask")

    def suspend_thread(self) -> None:
        t = self._need(self.selected_thread())
        if t is not None:
            self._report_last_error(self.sim.machine.suspend_thread(t) >= 0, "SuspendThread")

    def resume_thread(self) -> None:
        t = self._need(self.selected_thread())
        if t is not None:
            self._report_last_error(self.sim.machine.resume_thread(t) >= 0, "ResumeThread")

    def terminate_thread(self) -> None:
        t = self._need(self.selected_thread())
        if t is None:
            return
        code = self.dialogs.integer("Terminate Thread", f"Exit code for thread {t.tid}:",
                                    1, -2**31, 2**31 - 1)
        if code is not None:
            self._report_last_error(self.sim.machine.terminate_thread(t, code),
                                    "TerminateThread")

    def raise_unhandled_exception(self) -> None:
        t = self._need(self.selected_thread())
        if t is None:
            return
        names = tuple(EXCEPTION_CODES)
        name = self.dialogs.choose("Raise Unhandled Exception",
                                   f"Exception in thread {t.tid} of {t.process.name}:",
                                   names, names[0])
        if name is not None:
            self._report_last_error(
                self.sim.machine.raise_unhandled_exception(t, EXCEPTION_CODES[name]),
                "Unhandled exception")

    def set_priority_class(self) -> None:
        p = self._need(self.selected_process())
        if p is None:
            return
        cls = self.dialogs.choose("Set Priority Class", f"Priority class of {p.name}:",
                                  PRIORITY_CLASSES, p.priority_class)
        if cls is not None:
            self._report_last_error(self.sim.machine.set_priority_class(p, cls),
                                    "SetPriorityClass")

    def set_foreground(self) -> None:
        p = self._need(self.selected_process())
        if p is not None:
            self.sim.machine.set_foreground(p)
            self.refresh()

    def terminate_process(self) -> None:
        p = self._need(self.selected_process())
        if p is None:
            return
        code = self.dialogs.integer("Terminate Process", f"Exit code for {p.name}:",
                                    1, -2**31, 2**31 - 1)
        if code is not None:
            self._report_last_error(self.sim.machine.terminate_process(p, code),
                                    "TerminateProcess")

    def create_process(self) -> None:
        """CreateProcess with every choice (class, parent, job, protection, affinity,
        threads and their programs); the kernel's refusal is shown by its Win32 name."""
        m = self.sim.machine
        if m is None:
            return
        from inspector.process_dialog import create_from_request

        objects = self.sim.run.objects
        request = self.dialogs.process_form(m, self._selected_pid, objects)
        if request is None:
            return
        proc, error = create_from_request(m, request, objects)
        self.sim.memory.sync()
        self.refresh()
        if error is not None:
            self.dialogs.error("Create Process", error)
        if proc is not None and proc.pid in m.processes:
            self.processes.select_pid(proc.pid)

    def create_thread(self) -> None:
        p = self._need(self.selected_process())
        if p is None:
            return
        m = self.sim.machine
        level = self.dialogs.choose("Create Thread", f"Relative priority in {p.name}:",
                                    RELATIVE_PRIORITIES, "normal")
        if level is None:
            return
        from core.kernel import KernelError
        from core.kernel import program as P

        try:
            t = m.create_thread(p, level, program=[P.cpu(100_000_000), P.sleep(20_000_000),
                                                   P.repeat()])
        except KernelError as exc:
            self.dialogs.error("Create Thread", str(exc))
            return
        m.dispatch()
        self.sim.memory.sync()
        self.refresh()
        self.select_thread(p.pid, t.tid)

    # ------------------------------------------------------------------ fibers
    def _fiber_thread(self):
        """The thread the Fiber actions act on: the one whose fibers the Fibers dock shows
        (the selected thread), while it can call the fiber API: alive, with a user mode
        (a TEB; threads of the kernel and of minimal and pico processes have none)."""
        m, memory, tid = self.sim.machine, self.sim.memory, self.fibers.tid
        if self.mode != SIMULATION or m is None or memory is None or tid is None:
            return None
        t = m.threads.get(tid)
        if (t is None or t.pid != self.fibers.pid or t.state == TERMINATED
                or id(t) not in memory.teb):
            return None
        return t

    @staticmethod
    def _fiber_targets(t, deleting: bool) -> list:
        """The fibers of t's process that t may switch to, or delete (then its running
        fiber too): never one another thread runs (a crash on Windows, refused here)."""
        return [f for f in process_fibers(t.process)
                if f.thread is None or (deleting and f.thread is t)]

    def _update_fiber_actions(self) -> None:
        """Each fiber call is offered only where the kernel takes it from the thread."""
        t = self._fiber_thread()
        is_fiber = t is not None and t.fiber is not None
        self.convert_fiber_action.setEnabled(t is not None and not is_fiber)
        self.create_fiber_action.setEnabled(t is not None)
        # SwitchToFiber runs between the thread's steps, never inside a CPU step
        self.switch_fiber_action.setEnabled(is_fiber and t.step_rem <= 0
                                            and bool(self._fiber_targets(t, False)))
        self.delete_fiber_action.setEnabled(t is not None and bool(self._fiber_targets(t, True)))
        self.fiber_to_thread_action.setEnabled(is_fiber)

    def _pick_fiber(self, t, title: str, fibers: list, ask: bool):
        """The fiber chosen in the Fibers dock if it is one of `fibers` (unless `ask`),
        else the one the user picks from them (None: cancelled, or none to pick)."""
        labels = {}
        for f in fibers:
            label = f"{f.name} at {pointer_text(f.address)}"
            if f.owner is not t:
                label += f", made by thread {f.owner.tid}"
            if f.thread is t:
                label += " (running: deleting it ends the thread)"
            labels[label] = f
        chosen = self.fibers.chosen_address()
        current = next((label for label, f in labels.items() if f.address == chosen), None)
        if current is not None and not ask:
            return labels[current]
        if not labels:
            self.dialogs.error(title, f"No fiber of {t.process.name} is left to choose from.")
            return None
        label = self.dialogs.choose(title, f"Fiber for thread {t.tid} ({t.name or 'unnamed'}):",
                                    tuple(labels), current or next(iter(labels)))
        return labels.get(label)

    def _fiber_call(self, op: str, call) -> bool:
        """Make one fiber call as the thread; a refusal is shown with its Windows error
        name, a call the simulation cannot make now (the thread inside a CPU step, or
        gone meanwhile) with the kernel's reason."""
        from core.kernel import KernelError

        m = self.sim.machine
        try:
            ok = bool(call())
        except KernelError as exc:
            self.dialogs.error(op, f"{op}: {exc}")
            self.refresh()
            return False
        m.dispatch()  # DeleteFiber of the running fiber ends the thread
        self.sim.memory.sync()
        self._report_last_error(ok, op)
        return ok

    def convert_thread_to_fiber(self) -> None:
        t = self._need(self._fiber_thread())
        if t is None:
            return
        request = self.dialogs.convert_fiber_form(f"Convert Thread {t.tid} to Fiber")
        if request is not None:
            m = self.sim.machine
            self._fiber_call("ConvertThreadToFiberEx", lambda: m.convert_thread_to_fiber(
                t, request.parameter, request.flags) is not None)

    def create_fiber(self) -> None:
        t = self._need(self._fiber_thread())
        if t is None:
            return
        objects = self.sim.run.objects
        request = self.dialogs.fiber_form(t, objects)
        if request is None:
            return
        from inspector.process_dialog import kernel_program

        try:
            steps = kernel_program(request.program, objects)
        except ValueError as exc:
            self.dialogs.error("Create Fiber", str(exc))
            return
        m = self.sim.machine
        if self._fiber_call("CreateFiberEx", lambda: m.create_fiber(
                t, request.name, steps, request.parameter, request.stack_reserve) is not None):
            self.fibers.choose_fiber(request.name)

    def switch_to_fiber(self) -> None:
        self._on_chosen_fiber("Switch to Fiber", "SwitchToFiber", deleting=False)

    def delete_fiber(self) -> None:
        self._on_chosen_fiber("Delete Fiber", "DeleteFiber", deleting=True)

    def _on_chosen_fiber(self, title: str, api: str, deleting: bool) -> None:
        """SwitchToFiber or DeleteFiber on the fiber picked (a deletion asks first)."""
        t = self._need(self._fiber_thread())
        if t is None:
            return
        fiber = self._pick_fiber(t, title, self._fiber_targets(t, deleting), ask=deleting)
        if fiber is not None:
            m = self.sim.machine
            call = m.delete_fiber if deleting else m.switch_to_fiber
            self._fiber_call(api, lambda: call(t, fiber))

    def convert_fiber_to_thread(self) -> None:
        t = self._need(self._fiber_thread())
        if t is not None:
            self._fiber_call("ConvertFiberToThread",
                             lambda: self.sim.machine.convert_fiber_to_thread(t))

    # ------------------------------------------------------------------ jobs
    def _update_job_actions(self) -> None:
        # Jobs are changed through the simulated kernel's API; nothing else has one
        simulated = self.sim.machine is not None and self.mode == SIMULATION
        for act in self.job_actions:
            act.setEnabled(simulated)

    def _job_names(self) -> list[str]:
        m = self.sim.machine
        return [] if m is None else [m.job_name(j) for j in m.jobs]

    def _find_job(self, name: str):
        m = self.sim.machine
        return None if m is None else next((j for j in m.jobs if m.job_name(j) == name), None)

    def _selected_job(self):
        """The kernel's Job selected in the Jobs dock (None: none, or it is destroyed)."""
        m = self.sim.machine
        key = self.jobs.selected_key()
        if m is None or key is None:
            return None
        return next((j for j in m.jobs if (j.jid, m.job_name(j)) == key), None)

    def _target_job(self, title: str):
        """The job selected in the Jobs dock, else one the user picks."""
        if self.sim.machine is None:
            return None
        job = self._selected_job()
        if job is not None:
            return job
        names = tuple(self._job_names())
        if not names:
            self.dialogs.error(title, "There is no job: create one with Job > Create Job.")
            return None
        name = self.dialogs.choose(title, "Job:", names, names[0])
        return None if name is None else self._find_job(name)

    def _job_call(self, op: str, call) -> bool:
        """Make one job API call; a failure is shown with its Windows error name and,
        when the kernel gave one, the reason."""
        ok = bool(call())
        self.sim.machine.dispatch()  # a limit may have changed what runs where
        if not ok:
            self._show_last_error(op)
        return ok

    def _jobs_changed(self) -> None:
        if self.sim.memory is not None:
            self.sim.memory.sync()
        self.refresh()

    def create_job(self) -> None:
        m = self.sim.machine
        if m is None:
            return
        names = self._job_names()
        request = self.dialogs.job_form("Create Job", names, None, True)
        if request is None:
            return
        if request.name is not None and (request.name in names
                                         or request.name.startswith("Job#")):
            self.dialogs.error("Create Job", f"A job named {request.name} already exists"
                               if request.name in names else
                               "Job#N names the unnamed jobs: choose another name")
            return
        parent = None
        if request.parent is not None:
            parent = self._find_job(request.parent)
            if parent is None:
                self.dialogs.error("Create Job", f"Job {request.parent} no longer exists")
                return
        try:
            job = m.create_job(request.name, parent, completion_port=request.completion_port)
        except ValueError as exc:
            self.dialogs.error("Create Job", f"CreateJobObject failed: {exc}")
            return
        ok = True
        if request.limits:
            ok = self._job_call("SetInformationJobObject",
                                lambda: m.set_job_limits(job, **request.limits))
        if ok and request.cpu_rate:
            self._job_call("SetInformationJobObject",
                           lambda: m.set_job_cpu_rate(job, **request.cpu_rate))
        self._jobs_changed()
        self.jobs.select_job(m.job_name(job))

    def set_job_limits(self) -> None:
        job = self._target_job("Set Job Limits")
        if job is None:
            return
        m = self.sim.machine
        name = m.job_name(job)
        request = self.dialogs.job_form(f"Set Limits of {name}", self._job_names(),
                                        self.jobs.model.job((job.jid, name)), False)
        if request is None:
            return
        # Every limit is replaced; an empty cpu_rate turns rate control off
        if self._job_call("SetInformationJobObject",
                          lambda: m.set_job_limits(job, **request.limits)):
            self._job_call("SetInformationJobObject",
                           lambda: m.set_job_cpu_rate(job, **request.cpu_rate))
        self._jobs_changed()

    def assign_process_to_job(self) -> None:
        p = self._need(self.selected_process())
        if p is None:
            return
        names = tuple(self._job_names())
        if not names:
            self.dialogs.error("Assign Process to Job",
                               "There is no job: create one with Job > Create Job.")
            return
        selected = self.jobs.selected_key()
        current = selected[1] if selected is not None and selected[1] in names else names[0]
        name = self.dialogs.choose("Assign Process to Job", f"Job for {p.name} ({p.pid}):",
                                   names, current)
        job = None if name is None else self._find_job(name)
        if job is None:
            return
        m = self.sim.machine
        self._job_call("AssignProcessToJobObject", lambda: m.assign_process_to_job(job, p))
        self._jobs_changed()

    def terminate_job(self) -> None:
        job = self._target_job("Terminate Job")
        if job is None:
            return
        m = self.sim.machine
        code = self.dialogs.integer("Terminate Job",
                                    f"Exit code for every process of {m.job_name(job)}:",
                                    1, -2**31, 2**31 - 1)
        if code is not None:
            self._job_call("TerminateJobObject", lambda: m.terminate_job(job, code))
            self._jobs_changed()

    def close_job_handle(self) -> None:
        job = self._target_job("Close Job Handle")
        if job is None:
            return
        m = self.sim.machine
        self._job_call("CloseHandle", lambda: m.close_job_handle(job))
        self._jobs_changed()

    def _on_job_process(self, pid: int) -> None:
        if not self.processes.select_pid(pid):
            self.statusBar().showMessage(f"Process {pid} is no longer running", 4000)

    # ------------------------------------------------------------------ files
    def save_session_dialog(self) -> str | None:
        """Save what the simulation ran, or what was sampled of this machine, so far."""
        if self.mode == SESSION or (self.mode == SIMULATION and self.sim.recorder is None):
            return None
        path = self.dialogs.save_file("Save Session", "KOI sessions (*.koi)", "session.koi")
        if not path:
            return None
        if not path.endswith(".koi"):
            path += ".koi"
        from core.session import SessionError

        try:
            if self.mode == LIVE:
                self.live.save_session(path)
            else:
                self.sim.save_session(path)
        except (SessionError, OSError, ValueError) as exc:
            self.dialogs.error("Save Session", str(exc))
            return None
        self.statusBar().showMessage(f"Saved the session to {path}", 4000)
        return path

    def set_recording_retention(self) -> None:
        minutes = self.dialogs.integer(
            "Recording Retention", "Keep the last N minutes (simulated time for the "
            "simulation, wall time for this machine):", self._retention_minutes(), 1,
            MAX_RETENTION_MIN)
        if minutes is not None:
            self.settings.setValue("recording_retention_min", minutes)
            self._apply_retention()

    def _retention_minutes(self) -> int:
        try:
            minutes = int(self.settings.value("recording_retention_min",
                                              DEFAULT_RETENTION_MIN))
        except (TypeError, ValueError):
            minutes = DEFAULT_RETENTION_MIN
        return min(max(minutes, 1), MAX_RETENTION_MIN)

    def _apply_retention(self) -> None:
        ns = self._retention_minutes() * 60 * 1_000_000_000
        self.sim.set_retention(ns)
        self.live.set_retention(ns)

    def export_csv(self, what: str) -> str | None:
        """The processes or threads of the source shown, as CSV."""
        state = self._current_state()
        if state is None:
            return None
        path = self.dialogs.save_file(f"Export {what.title()}", "CSV (*.csv)", f"{what}.csv")
        if not path:
            return None
        out = io.StringIO()
        writer = csv.writer(out)
        if what == "processes":
            keys = ("pid", "parent_pid", "name", "priority_class", "base_priority",
                    "protection", "exit_code", "user_time_us", "kernel_time_us")
            writer.writerow(keys + ("threads",))
            for p in state["processes"]:
                writer.writerow([p[k] for k in keys] + [len(p["threads"])])
        else:
            keys = ("pid", "tid", "name", "state", "wait_reason", "priority", "base_priority",
                    "cpu", "ideal_cpu", "context_switches", "user_time_us", "kernel_time_us",
                    "suspend_count")
            writer.writerow(keys)
            for p in state["processes"]:
                for t in p["threads"]:
                    writer.writerow([t[k] for k in keys])
        from inspector.cli import write_atomically

        write_atomically(path, out.getvalue())
        self.statusBar().showMessage(f"Exported {what} to {path}", 4000)
        return path

    def export_timeline_png(self) -> str | None:
        path = self.dialogs.save_file("Export CPU Timeline", "PNG image (*.png)", "timeline.png")
        if not path:
            return None
        if not self.timeline_stack.currentWidget().grab().save(path, "PNG"):
            self.dialogs.error("Export CPU Timeline", f"Could not write {path}")
            return None
        self.statusBar().showMessage(f"Exported the CPU timeline to {path}", 4000)
        return path

    def _remember_recent(self, path: str) -> None:
        recent = [p for p in self._recent() if p != path]
        recent.insert(0, path)
        self.settings.setValue("recent_files", recent[:MAX_RECENT])
        self._fill_recent_menu()

    def _recent(self) -> list[str]:
        value = self.settings.value("recent_files", [])
        if isinstance(value, str):
            value = [value]
        return [str(v) for v in value or []]

    def _fill_recent_menu(self) -> None:
        self.recent_menu.clear()
        for path in self._recent():
            act = self.recent_menu.addAction(path)
            act.triggered.connect(lambda _=False, p=path: self.open_path(p))
        self.recent_menu.setEnabled(bool(self._recent()))

    # ------------------------------------------------------------------ drag and drop
    def dragEnterEvent(self, event) -> None:  # noqa: N802 - Qt override
        urls = event.mimeData().urls()
        if urls and urls[0].isLocalFile():
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:  # noqa: N802 - Qt override
        urls = event.mimeData().urls()
        if urls and urls[0].isLocalFile():
            self.open_path(urls[0].toLocalFile())

    # ------------------------------------------------------------------ settings
    def _restore_settings(self) -> None:
        self.setAcceptDrops(True)
        geometry = self.settings.value("geometry")
        if geometry is not None:
            self.restoreGeometry(geometry)
        dock_state = self.settings.value("dock_state")
        if dock_state is not None:
            self.restoreState(dock_state)
        for key, view in (("process_columns", self.processes), ("thread_columns", self.threads)):
            data = self.settings.value(key)
            if data is not None:
                view.restore_header_state(data)
        self._fill_recent_menu()
        self._apply_retention()

    def closeEvent(self, event) -> None:  # noqa: N802 - Qt override
        self.sim.pause()
        self.live.close()
        self.replay.close()
        self.settings.setValue("geometry", self.saveGeometry())
        self.settings.setValue("dock_state", self.saveState())
        self.settings.setValue("process_columns", self.processes.header_state())
        self.settings.setValue("thread_columns", self.threads.header_state())
        super().closeEvent(event)
        if event.isAccepted():
            self.processes.model.release_items()

    # ------------------------------------------------------------------ build
    def _on_build_changed(self, build: Build) -> None:
        self.sim.set_build(build)
        self.replay.set_build(build)
        if self.object_view.current_object is not None:
            self.object_view.refresh()
        self.build_label.setText(
            f"{build.name} · {build.id} {build.arch} · "
            f"{BIT_POSITIONS.get(build.bit_positions, 'bit positions ' + build.bit_positions)}")
        self.build_label.setToolTip(
            f"Source: {build.source}\nFormat: {build.source_format}\nLicence: {build.licence}"
            + (f"\nKernel PDB: {build.pdb_guid}-{build.pdb_age}" if build.pdb_guid else ""))
        partly = build.bit_positions == "partly inferred"
        self.warning_label.setVisible(partly)
        if partly:
            self.warning_label.setText("⚠ Partly inferred layout: some types and bit "
                                       "positions are guesses (italic grey rows)")
            self.warning_label.setToolTip(build.notes)

    def show_about(self) -> None:
        QMessageBox.about(self, "About KOI", about_text(self._catalogue))


def about_text(cat: Catalogue) -> str:
    """The About box: version, what KOI is, where its layout data comes from."""
    groups: dict[str, list[Build]] = {}
    for build in cat.builds:
        groups.setdefault(build.licence, []).append(build)
    sources = []
    for licence, builds in sorted(groups.items(), key=lambda item: -len(item[1])):
        first = builds[0]
        arches = "/".join(sorted({b.arch for b in builds}))
        span = builds[0].id if len(builds) == 1 else f"{builds[0].id} to {builds[-1].id}"
        count = f"{len(builds)} build{'s' if len(builds) > 1 else ''}"
        sources.append(
            f"<li><b>{html.escape(licence)}</b>: {count} ({arches}, {span}); "
            f"{html.escape(first.source_format)}; "
            f"{BIT_POSITIONS.get(first.bit_positions, first.bit_positions)}.</li>")
    return (
        f"<h3>KOI {__version__}</h3>"
        "<p><b>Kernel Object Inspector</b> shows the Windows NT process and thread manager "
        "at work: a simulated kernel's processes, threads and scheduler decisions, with its "
        "objects laid out as real Windows builds lay them out.</p>"
        f"<p>Structure layouts of {len(cat.builds)} Windows builds, as WinDbg's "
        "<code>dt</code> shows them.</p>"
        f"<p><b>Layout data</b></p><ul>{''.join(sources)}</ul>"
        "<p>Italic grey members mark data that KOI filled in or the source inferred; "
        "their tooltips say from where.</p>"
        f"<p>Qt {qVersion()}, PySide6 {pyside_version}.</p>")

"""Thread > Fiber: ConvertThreadToFiber, CreateFiber, SwitchToFiber, DeleteFiber and
ConvertFiberToThread on the thread whose fibers the Fibers dock shows (pytest-qt)."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QSettings, Qt
from PySide6.QtWidgets import QDialog

from core.kernel import program as P
from core.kernel.constants import TERMINATED, WAITING, ms
from core.kernel.fibers import FIBER_FLAG_FLOAT_SWITCH
from inspector.fiber_dialog import (
    ConvertFiberDialog, CreateFiberDialog, parse_fiber_program, parse_pointer,
)
from inspector.fiber_view import F_NAME, F_PARAMETER, F_STACK, F_STATE
from inspector.main_window import SESSION, SIMULATION, Dialogs, MainWindow
from inspector.object_model import VALUE
from inspector.process_dialog import ProgramError

# main and helper sleep between their steps (a fiber call can land there); busy is
# inside a CPU step most of the time
SCENARIO = """
[system]
cpus = 2

[[event]]
name = "go"
kind = "notification"

[[process]]
name = "app.exe"
  [[process.thread]]
  name = "main"
  program = ["sleep 50ms", "repeat"]
  [[process.thread]]
  name = "helper"
  program = ["sleep 30ms", "repeat"]
  [[process.thread]]
  name = "busy"
  program = ["sleep 20ms", "cpu 5ms", "repeat"]
"""

ACTIONS = ("convert_thread_to_fiber", "create_fiber", "switch_to_fiber", "delete_fiber",
           "convert_fiber_to_thread")


class FiberDialogs:
    """The window's questions answered without modal loops: the forms are the real ones,
    filled in by `convert` / `create` (each takes the dialog; None cancels), and `pick`
    chooses a fiber among the labels offered."""

    def __init__(self, convert=None, create=None, pick=None):
        self.convert, self.create, self.pick = convert, create, pick
        self.errors, self.chosen, self.forms = [], [], []

    def convert_fiber_form(self, title):
        dialog = ConvertFiberDialog(None, title=title)
        self.forms.append(title)
        return self._fill(dialog, self.convert)

    def fiber_form(self, thread, objects):
        dialog = CreateFiberDialog(thread, None, objects=objects)
        self.forms.append(dialog.windowTitle())
        return self._fill(dialog, self.create)

    @staticmethod
    def _fill(dialog, fill):
        try:
            if fill is None:  # cancelled
                return None
            fill(dialog)
            dialog.accept()
            assert dialog.result() == QDialog.DialogCode.Accepted, dialog.error_label.text()
            return dialog.request
        finally:
            dialog.deleteLater()

    def choose(self, title, label, items, current):
        self.chosen.append((title, items, current))
        return self.pick(items) if self.pick is not None else None

    def error(self, title, message):
        self.errors.append((title, message))


@pytest.fixture
def win(qtbot, tmp_path):
    window = MainWindow(settings=QSettings(str(tmp_path / "koi.ini"),
                                           QSettings.Format.IniFormat))
    qtbot.addWidget(window)
    path = tmp_path / "fibers.toml"
    path.write_text(SCENARIO)
    assert window.open_path(str(path))
    window.sim.advance_to(60_000_000)  # every thread has run and sleeps again
    window.show()
    qtbot.waitExposed(window)
    return window


def thread_named(win, name):
    t = next(t for t in win.sim.machine.threads.values() if t.name == name)
    win.select_thread(t.pid, t.tid)
    return t


def menu_action(win, name):
    """The action `name` as the Thread > Fiber menu holds it."""
    thread_menu = next(a.menu() for a in win.menuBar().actions() if a.text() == "&Thread")
    fiber_menu = next(a.menu() for a in thread_menu.actions()
                      if a.menu() is not None and a.menu().objectName() == "fiber_menu")
    return next(a for a in fiber_menu.actions() if a.objectName() == name)


def enabled(win):
    return {name: menu_action(win, name).isEnabled() for name in ACTIONS}


def trigger(win, name):
    action = menu_action(win, name)
    assert action.isEnabled(), name
    action.trigger()


def has_fiber_data(win):
    return win.object_view.model.index_for_path("HasFiberData").siblingAtColumn(VALUE).data()


def pick(name):
    return lambda items: next(i for i in items if i.startswith(f"{name} at "))


def test_the_fiber_menu_and_the_docks_context_menu(win):
    thread_menu = next(a.menu() for a in win.menuBar().actions() if a.text() == "&Thread")
    fiber_menu = next(a.menu() for a in thread_menu.actions() if a.menu() is not None)
    assert fiber_menu.title() == "Fi&ber" and fiber_menu.objectName() == "fiber_menu"
    assert [a.objectName() for a in fiber_menu.actions()] == list(ACTIONS)
    assert all(a.shortcut().isEmpty() for a in fiber_menu.actions())
    table = win.fibers.table
    assert table.contextMenuPolicy() == Qt.ContextMenuPolicy.ActionsContextMenu
    assert table.actions() == fiber_menu.actions()
    # nothing selected: nothing to act on
    assert not any(enabled(win).values())
    thread_named(win, "main")
    assert enabled(win) == {"convert_thread_to_fiber": True, "create_fiber": True,
                            "switch_to_fiber": False, "delete_fiber": False,
                            "convert_fiber_to_thread": False}
    # the System process's threads have no user mode (no TEB): no fiber calls
    system = next(t for t in win.sim.machine.threads.values() if t.pid == 4)
    win.select_thread(4, system.tid)
    assert not any(enabled(win).values())


def test_a_fiber_life_through_the_menu(win):
    t = thread_named(win, "main")
    assert win.object_view.select_path("Tcb.Teb") and win.object_view.follow()
    assert win.object_view.current_object.type == "_TEB" and has_fiber_data(win) == "0y0"

    def convert(dialog):
        dialog.parameter_edit.setText("0x10")
        dialog.float_check.setChecked(True)

    win.dialogs = FiberDialogs(convert=convert)
    trigger(win, "convert_thread_to_fiber")
    assert win.dialogs.forms == [f"Convert Thread {t.tid} to Fiber"]
    main = t.fiber
    assert main.name == "main" and main.converted
    assert (main.parameter, main.flags) == (0x10, FIBER_FLAG_FLOAT_SWITCH)
    assert win.fibers.model.texts(F_STATE) == ["Current"]
    assert has_fiber_data(win) == "0y1"  # the _TEB shown follows (IsThreadAFiber)
    assert enabled(win) == {"convert_thread_to_fiber": False, "create_fiber": True,
                            "switch_to_fiber": False, "delete_fiber": True,
                            "convert_fiber_to_thread": True}

    def create(dialog):
        assert dialog.name_edit.text() == "fiber1"  # the first free fiberN
        assert dialog.program_edit.toPlainText() == "cpu 10ms\nfiber_switch main\nrepeat"
        assert dialog.validate() == "" and "the fibers main" in dialog.hint.text()
        dialog.name_edit.setText("w")
        dialog.program_edit.setPlainText("cpu 2ms; set go\nfiber_switch main; repeat")
        dialog.parameter_edit.setText("0x20")
        dialog.reserve_edit.setText("64KiB")

    win.dialogs = FiberDialogs(create=create)
    trigger(win, "create_fiber")
    w = next(f for f in t.fibers if f.name == "w")
    assert (w.parameter, w.stack_reserve, w.thread, w.started) == (0x20, 64 << 10, None, False)
    go = win.sim.run.objects["go"]
    assert w.program == (P.cpu(ms(2)), P.set_event(go), P.fiber_switch("main"), P.repeat())
    assert win.fibers.model.texts(F_NAME) == ["main", "w"]
    assert win.fibers.model.texts(F_STATE) == ["Current", "Not yet run"]
    assert win.fibers.model.texts(F_PARAMETER) == ["0x10", "0x20"]
    assert win.fibers.model.texts(F_STACK) == ["1MiB", "64KiB"]
    assert win.fibers.chosen_address() == w.address  # the new fiber is chosen in the dock

    # the chosen fiber is switched to without a question; the thread sleeps (between steps)
    assert t.state == WAITING and t.step_rem <= 0
    win.dialogs = FiberDialogs()
    trigger(win, "switch_to_fiber")
    assert win.dialogs.chosen == [] and win.dialogs.errors == []
    assert t.fiber is w and w.started and main.thread is None
    assert win.fibers.model.texts(F_STATE) == ["Switched out", "Current"]
    # when the thread runs again it runs w, which switches back to main
    win.sim.advance_to(win.sim.now_ns + 60_000_000)
    assert go.signaled and t.fiber is main
    assert win.fibers.model.texts(F_STATE) == ["Current", "Switched out"]

    # DeleteFiber always asks, the dock's fiber first; the running fiber says what it costs
    win.dialogs = FiberDialogs(pick=pick("w"))
    trigger(win, "delete_fiber")
    (title, items, current), = win.dialogs.chosen
    assert title == "Delete Fiber" and current.startswith("w at ")
    assert any(i.startswith("main at ") and i.endswith("(running: deleting it ends the thread)")
               for i in items)
    assert w.deleted and t.state != TERMINATED and win.fibers.model.texts(F_NAME) == ["main"]
    assert not menu_action(win, "switch_to_fiber").isEnabled()  # nothing left to switch to

    win.dialogs = FiberDialogs()
    trigger(win, "convert_fiber_to_thread")
    assert t.fiber is None and main.deleted and win.dialogs.errors == []
    assert win.fibers.model.rowCount() == 0 and "not a fiber thread" in win.fibers.title.text()
    assert has_fiber_data(win) == "0y0"
    assert enabled(win)["convert_thread_to_fiber"] and not enabled(win)["delete_fiber"]


def test_deleting_the_running_fiber_ends_the_thread(win):
    m = win.sim.machine
    t = thread_named(win, "helper")
    m.convert_thread_to_fiber(t)
    win.refresh()
    win.dialogs = FiberDialogs(pick=pick("helper"))
    trigger(win, "delete_fiber")
    assert t.state_name == "Terminated" and t.exit_code == 1  # ExitThread(1), §7.4
    assert t.fiber is None and t.fibers == []
    assert not any(enabled(win).values())  # an exited thread calls nothing


def test_a_fiber_another_thread_made_is_picked_from_the_process(win):
    m = win.sim.machine
    helper = thread_named(win, "helper")
    m.convert_thread_to_fiber(helper)
    m.create_fiber(helper, "shared", [P.sleep(ms(10)), P.repeat()])
    t = thread_named(win, "main")
    win.dialogs = FiberDialogs(convert=lambda dialog: None)
    trigger(win, "convert_thread_to_fiber")
    assert win.fibers.chosen_address() is None  # nothing picked in the dock: a chooser
    win.dialogs = FiberDialogs(pick=pick("shared"))
    trigger(win, "switch_to_fiber")
    (title, items, _current), = win.dialogs.chosen
    # helper's own fiber runs on helper: not offered (a crash on Windows)
    assert title == "Switch to Fiber" and len(items) == 1
    assert items[0].endswith(f", made by thread {helper.tid}")
    assert t.fiber.name == "shared" and t.fiber.owner is helper
    assert win.fibers.model.texts(F_NAME) == ["main"]  # the dock lists t's own fibers


def test_kernel_refusals_are_shown_by_their_windows_names(win):
    m = win.sim.machine
    t = thread_named(win, "main")

    def program_converts_first(dialog):  # the thread's own program converts meanwhile
        m.convert_thread_to_fiber(t)

    win.dialogs = FiberDialogs(convert=program_converts_first)
    trigger(win, "convert_thread_to_fiber")
    assert win.dialogs.errors == [("ConvertThreadToFiberEx",
                                   "ConvertThreadToFiberEx failed: ERROR_ALREADY_FIBER (1280)")]
    m.create_fiber(t, "w", [P.sleep(ms(5)), P.repeat()])
    helper = next(h for h in m.threads.values() if h.name == "helper")
    m.convert_thread_to_fiber(helper)
    win.refresh()

    def helper_takes_it(items):  # while the chooser is open, helper switches to w
        assert m.switch_to_fiber(helper, "w")
        return pick("w")(items)

    win.dialogs = FiberDialogs(pick=helper_takes_it)
    trigger(win, "switch_to_fiber")
    assert win.dialogs.errors == [("SwitchToFiber",
                                   "SwitchToFiber failed: ERROR_INVALID_PARAMETER (87)")]
    assert t.fiber.name == "main" and helper.fiber.name == "w"
    # w, selected on helper, is not offered for deletion from main; helper's switched-out
    # fiber is
    win.dialogs = FiberDialogs(pick=lambda items: None)
    trigger(win, "delete_fiber")
    assert [i.split(" at ")[0] for i in win.dialogs.chosen[0][1]] == ["main", "helper"]


def test_switching_waits_for_the_thread_to_be_between_steps(win):
    sim, m = win.sim, win.sim.machine
    busy = thread_named(win, "busy")
    while busy.state != WAITING:
        sim.step_event()
    win.dialogs = FiberDialogs(convert=lambda dialog: None)
    trigger(win, "convert_thread_to_fiber")
    m.create_fiber(busy, "other", [P.sleep(ms(5)), P.repeat()])
    win.refresh()
    assert menu_action(win, "switch_to_fiber").isEnabled()

    def run_into_a_cpu_step(items):  # the simulation goes on while the chooser is open
        while busy.step_rem <= 0:
            sim.step_event()
        return pick("other")(items)

    win.dialogs = FiberDialogs(pick=run_into_a_cpu_step)
    trigger(win, "switch_to_fiber")
    (title, message), = win.dialogs.errors
    assert title == "SwitchToFiber" and "inside a CPU step" in message
    assert busy.fiber.name == "busy"
    assert not menu_action(win, "switch_to_fiber").isEnabled()  # until the step is done


def test_the_create_form_checks_the_program_as_you_type(win):
    m = win.sim.machine
    t = thread_named(win, "main")
    m.convert_thread_to_fiber(t)
    m.fls_alloc(t, "ctx")
    dialog = CreateFiberDialog(t, None, objects=win.sim.run.objects)
    try:
        edit = dialog.program_edit
        edit.setPlainText("cpu 1ms\nfls_set ctx 7; fiber_switch main\nrepeat")
        assert dialog.validate() == "" and dialog.ok_button.isEnabled()
        assert dialog.hint.text() == "Steps may name the fibers main and the FLS slots ctx."
        edit.setPlainText("cpu 1ms\nfiber_switch nowhere")
        assert not dialog.ok_button.isEnabled()
        assert dialog.error_label.text().startswith("Step 2 (line 2): 'fiber_switch nowhere'")
        edit.setPlainText("fls_set ctx 1; repeat")
        assert "repeats without using time" in dialog.error_label.text()
        edit.setPlainText("fiber_create x work")
        assert "no program named 'work'" in dialog.error_label.text()
        edit.setPlainText("wait go; fiber_switch main")
        dialog.name_edit.setText("two words")
        assert dialog.error_label.text().startswith("Give the fiber a name without spaces")
        dialog.name_edit.setText("main")
        assert "A fiber named main exists" in dialog.hint.text() and dialog.ok_button.isEnabled()
        dialog.reserve_edit.setText("1 MB")
        assert dialog.error_label.text().startswith("Stack reserve: ambiguous size unit")
        dialog.reserve_edit.setText("")
        dialog.parameter_edit.setText("0x1`0000`0000`0000`0000")
        assert "outside 0..0xFFFFFFFFFFFFFFFF" in dialog.error_label.text()
        dialog.parameter_edit.setText("")
        dialog.accept()
        assert dialog.result() == QDialog.DialogCode.Accepted
        assert dialog.request.name == "main" and dialog.request.stack_reserve == 0
        assert dialog.request.parameter == 0 and len(dialog.request.program) == 2
    finally:
        dialog.deleteLater()


def test_parsers():
    assert parse_pointer("0x000001f0`00001000", "P") == 0x1F000001000
    assert parse_pointer(" 42 ", "P") == 42 and parse_pointer("", "P") == 0
    with pytest.raises(ValueError, match="P: 'x1' is not a number"):
        parse_pointer("x1", "P")
    with pytest.raises(ValueError, match="outside"):
        parse_pointer("-1", "P")
    # the fibers and slots named are known to the parser; names that are no words are not
    steps = parse_fiber_program("fiber_switch a; fls_set s 1; fiber_switch n", "n",
                                fibers=["a", "n", "b c"], slots=["s"])
    assert [str(s) for s in steps] == ["fiber_switch a", "fls_set s 1", "fiber_switch n"]
    with pytest.raises(ProgramError) as error:
        parse_fiber_program("cpu 1ms\nfls_set t 1", "n", slots=["s"])
    assert (error.value.step, error.value.line) == (1, 2) and "no FLS slot named 't'" in str(
        error.value)


def test_session_and_live_sources_take_no_fiber_calls(win, tmp_path):
    t = thread_named(win, "main")
    assert enabled(win)["convert_thread_to_fiber"]
    path = str(tmp_path / "fibers.koi")
    win.sim.save_session(path)
    assert win.open_path(path) and win.mode == SESSION
    win.select_thread(t.pid, t.tid)
    assert win.fibers.tid == t.tid and not any(enabled(win).values())
    win.show_simulation()
    assert win.mode == SIMULATION
    win.select_thread(t.pid, t.tid)
    assert enabled(win)["convert_thread_to_fiber"]


def test_the_real_forms_through_the_menu(win, answer_next_dialog):
    """Dialogs runs the fiber forms modally: accepted, the call is made; cancelled, not."""
    t = thread_named(win, "main")
    win.dialogs = Dialogs(win)

    answer = answer_next_dialog

    answer(False)
    trigger(win, "convert_thread_to_fiber")
    assert t.fiber is None
    answer(True, lambda d: d.parameter_edit.setText("7"))
    trigger(win, "convert_thread_to_fiber")
    assert t.fiber is not None and t.fiber.parameter == 7 and t.fiber.flags == 0

    def fill(dialog):
        assert dialog.objectName() == "create_fiber_dialog"
        assert dialog.windowTitle() == f"Create Fiber (thread {t.tid} of app.exe)"
        dialog.name_edit.setText("modal")

    answer(True, fill)
    trigger(win, "create_fiber")
    made = next(f for f in t.fibers if f.name == "modal")
    assert made.program == (P.cpu(ms(10)), P.fiber_switch("main"), P.repeat())
    assert win.fibers.model.texts(F_NAME) == ["main", "modal"]
    answer(False)
    trigger(win, "create_fiber")
    assert [f.name for f in t.fibers] == ["main", "modal"]

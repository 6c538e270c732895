"""The threads table of the selected process (pytest-qt)."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt

from core.kernel import program as P
from core.kernel.machine import Machine
from inspector.process_model import EXITED_COLOR, NEW_COLOR, SORT_ROLE
from inspector.thread_model import (
    AFFINITY, CONTEXT_SWITCHES, CPU, CPU_PERCENT, CPU_TIME, EXIT_CODE, FIBER, IDEAL_CPU,
    NAME, PRIORITY, STATE, SUSPEND_COUNT, THREAD_COLUMN_COUNT, TID, USER_TIME, WAIT_REASON,
    ThreadTableModel, ThreadTableView,
)

BG = Qt.ItemDataRole.BackgroundRole


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def thread(tid, name=None, state="Waiting", wait="UserRequest", priority=8, base=8, cpu=0,
           user=0.0, switches=0, **extra):
    t = {"tid": tid, "pid": 8, "name": name, "state": state,
         "wait_reason": wait if state == "Waiting" else "", "priority": priority,
         "base_priority": base, "user_time_us": user, "kernel_time_us": 0.0,
         "context_switches": switches, "cpu": cpu, "ideal_cpu": 0, "affinity": [0, 1],
         "suspend_count": 0, "fiber": None, "create_time_us": 0.0, "exit_code": 259}
    t.update(extra)
    return t


def state(time_us, threads, other=(), cpus=2):
    idle = {"pid": 0, "name": "Idle", "threads": [
        thread(0, "Idle0", state="Running", cpu=0), thread(0, "Idle1", state="Running", cpu=1)]}
    app = {"pid": 8, "name": "app.exe", "threads": list(threads)}
    return {"time_us": time_us, "cpus": cpus, "processes": [idle, app, *other], "jobs": []}


def column(model, c):
    return [model.index(r, c).data() for r in range(model.rowCount())]


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def model(clock):
    m = ThreadTableModel(clock=clock)
    m.update(state(0, [thread(16, "ui"), thread(20, "worker", state="Running", cpu=1,
                                                  priority=10, affinity=[0, 1, 2, 3])]))
    m.set_process(8)
    return m


def test_shows_the_selected_process_threads(model, qtmodeltester):
    qtmodeltester.check(model)
    assert column(model, TID) == ["16", "20"]
    assert column(model, NAME) == ["ui", "worker"]
    assert column(model, STATE) == ["Waiting", "Running"]
    assert column(model, WAIT_REASON) == ["UserRequest", ""]
    assert column(model, AFFINITY) == ["0-1", "0-3"]
    assert column(model, FIBER) == ["", ""]
    assert model.index(1, PRIORITY).data(Qt.ItemDataRole.ToolTipRole) == \
        "Priority 10, base 8 (boosted by 2)"
    assert model.index(0, EXIT_CODE).data() == ""  # STILL_ACTIVE is not an exit code
    assert model.index(0, TID).data(BG) is None  # shown, not just created


def test_a_thread_that_never_ran_has_no_cpu(clock):
    m = ThreadTableModel(clock=clock)
    m.update(state(0, [thread(16, cpu=-1)]))
    m.set_process(8)
    assert m.index(0, CPU).data() == ""


def test_idle_threads_all_tid_0_are_separate_rows(clock, qtmodeltester):
    m = ThreadTableModel(clock=clock)
    m.update(state(0, []))
    m.set_process(0)
    qtmodeltester.check(m)
    assert column(m, NAME) == ["Idle0", "Idle1"] and column(m, CPU) == ["0", "1"]


def test_update_changes_only_changed_cells(clock, qtbot, qtmodeltester):
    model = ThreadTableModel(clock=clock)
    idle = [thread(16, "ui"), thread(20, "worker", state="Running", cpu=1, priority=10),
            thread(24, "io")]
    model.update(state(0, idle))
    model.set_process(8)
    model.update(state(500, idle))
    qtmodeltester.check(model)
    changes = []
    model.dataChanged.connect(lambda tl, br, roles=(): changes.append(
        (tl.row(), br.row(), tl.column(), br.column())))
    with qtbot.assertNotEmitted(model.modelReset), qtbot.assertNotEmitted(model.rowsInserted), \
            qtbot.assertNotEmitted(model.rowsRemoved):
        model.update(state(1000, [
            thread(16, "ui", state="Ready", priority=9), idle[1],
            thread(24, "io", user=500.0, switches=3)]))
    # Thread 16: state..priority; 20 unchanged; 24: context switches..user time.
    assert changes == [(0, 0, STATE, PRIORITY), (2, 2, CONTEXT_SWITCHES, USER_TIME)]
    assert model.index(2, CPU_PERCENT).data() == "50.00"  # 500 µs of 2 x 500 µs
    # Milliseconds as Process Explorer shows them; the tooltip has the exact figure.
    assert model.index(2, CPU_TIME).data() == "0:00:00.000"
    assert "User 500.000 µs" in model.index(2, CPU_TIME).data(Qt.ItemDataRole.ToolTipRole)
    assert model.index(0, WAIT_REASON).data() == ""
    # Adjacent changed rows are reported together, over the columns that changed:
    # 16's context switches, 20's priority, 24's CPU % (back to nothing).
    changes.clear()
    model.update(state(1500, [thread(16, "ui", state="Ready", priority=9, switches=1),
                              thread(20, "worker", state="Running", cpu=1, priority=11),
                              thread(24, "io", user=500.0, switches=3)]))
    assert changes == [(0, 2, PRIORITY, CPU_PERCENT)]


def test_new_threads_are_green_and_gone_ones_red_then_removed(model, clock, qtbot,
                                                              qtmodeltester):
    qtmodeltester.check(model)
    with qtbot.waitSignal(model.rowsInserted) as inserted:
        model.update(state(1000, [thread(16, "ui"), thread(24, "new")]))
    assert inserted.args[1:] == [2, 2]
    assert column(model, TID) == ["16", "20", "24"]
    assert model.index(2, TID).data(BG) == NEW_COLOR
    assert model.index(1, STATE).data(BG) == EXITED_COLOR  # 20 left the state: red
    clock.now += 2
    with qtbot.waitSignal(model.rowsRemoved) as removed, \
            qtbot.assertNotEmitted(model.modelReset):
        model.expire_highlights()
    assert removed.args[1:] == [1, 1]
    assert column(model, TID) == ["16", "24"]
    assert model.index(1, TID).data(BG) is None
    qtmodeltester.check(model)


def test_switching_process_replaces_rows_without_reset(model, qtbot, qtmodeltester):
    qtmodeltester.check(model)
    with qtbot.assertNotEmitted(model.modelReset), \
            qtbot.waitSignal(model.rowsRemoved), qtbot.waitSignal(model.rowsInserted):
        model.set_process(0)
    assert column(model, NAME) == ["Idle0", "Idle1"]
    model.set_process(-1)
    assert model.rowCount() == 0
    model.set_process(12345)  # not running: nothing, no error
    assert model.rowCount() == 0 and model.process is None


def test_bad_state_is_a_one_line_error(model):
    with pytest.raises(ValueError, match="must be a dict"):
        model.update(None)


def test_unknown_values_are_blank(clock, qtmodeltester):
    m = ThreadTableModel(clock=clock)
    live = {"tid": 5, "state": None, "priority": None, "affinity": None, "cpu": None,
            "user_time_us": None, "kernel_time_us": None, "extra": object()}
    odd = {"tid": 9, "state": ["Running"], "affinity": "all", "priority": "high",
           "create_time_us": [1], "user_time_us": "1"}
    m.update({"time_us": None, "cpus": None,
              "processes": [{"pid": 1, "threads": [live, "junk", {"tid": "x"}, odd]}]})
    m.set_process(1)
    qtmodeltester.check(m)
    assert column(m, TID) == ["5", "9"]
    assert all(m.index(0, c).data() == "" for c in range(THREAD_COLUMN_COUNT) if c != TID)
    assert m.index(1, STATE).data() == "['Running']" and m.index(1, AFFINITY).data() == "all"
    for c in range(THREAD_COLUMN_COUNT):  # tooltips and sort keys of odd values
        m.index(1, c).data(Qt.ItemDataRole.ToolTipRole)
        m.index(1, c).data(SORT_ROLE)


@pytest.fixture
def view(qtbot, clock):
    widget = ThreadTableView(model=ThreadTableModel(clock=clock))
    qtbot.addWidget(widget)
    widget.resize(900, 300)
    widget.show()
    qtbot.waitExposed(widget)
    widget.update_state(state(0, [thread(16, "ui"), thread(20, "worker")]))
    widget.set_process(8)
    return widget


def test_view_title_columns_and_sorting(view):
    assert view.title.text() == "app.exe (8): 2 threads"
    header = view.table.horizontalHeader()
    assert header.isSectionHidden(CPU_PERCENT) and not header.isSectionHidden(SUSPEND_COUNT)
    assert not header.isSectionHidden(IDEAL_CPU)
    view.table.sortByColumn(TID, Qt.SortOrder.DescendingOrder)
    assert view.proxy.index(0, TID).data() == "20"
    actions = {a.text(): a for a in view.column_chooser.menu().actions() if a.text()}
    actions["CPU %"].trigger()
    assert not header.isSectionHidden(CPU_PERCENT)
    saved = view.header_state()
    actions["CPU %"].trigger()
    assert view.restore_header_state(saved) and not header.isSectionHidden(CPU_PERCENT)
    view.set_process(999)
    assert view.title.text() == "Process 999 is no longer running"


def test_selecting_a_thread_emits_thread_selected(view, qtbot):
    with qtbot.waitSignal(view.threadSelected) as blocker:
        assert view.select_tid(20)
    assert blocker.args == [8, 20]
    rect = view.table.visualRect(view.proxy.index(0, TID))
    with qtbot.waitSignal(view.threadSelected) as blocker:
        qtbot.mouseClick(view.table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert blocker.args == [8, 16]
    assert not view.select_tid(4242)
    # Back from another process, the same thread selected again is announced again.
    view.set_process(0)
    view.set_process(8)
    with qtbot.waitSignal(view.threadSelected) as blocker:
        assert view.select_tid(16)
    assert blocker.args == [8, 16]


def test_a_simulated_machine_drives_the_table(clock, qtmodeltester):
    machine = Machine(cpus=2)
    app = machine.create_process("app.exe")
    busy = machine.create_thread(app, program=[P.cpu(20_000_000), P.exit_thread(3)], name="busy")
    machine.create_thread(app, program=[P.sleep(5_000_000), P.repeat()], name="sleeper",
                          affinity=[0])
    model = ThreadTableModel(clock=clock)
    machine.run_until(1_000_000)
    model.update(machine.state())
    model.set_process(app.pid)
    qtmodeltester.check(model)
    assert column(model, NAME) == ["busy", "sleeper"]
    assert column(model, WAIT_REASON) == ["", "DelayExecution"]
    assert column(model, AFFINITY) == ["0-1", "0"]
    machine.run_until(11_000_000)
    model.update(machine.state())
    assert model.index(0, CPU_PERCENT).data() == "50.00"  # one CPU of two
    assert model.index(0, USER_TIME).data() == "0:00:00.011"
    machine.run_until(30_000_000)
    model.update(machine.state())
    # The busy thread exited and nothing holds it: red for now, then removed.
    assert model.index(0, TID).data() == str(busy.tid)
    assert model.index(0, TID).data(BG) == EXITED_COLOR
    clock.now += 5
    model.update(machine.state())
    assert column(model, NAME) == ["sleeper"]
    qtmodeltester.check(model)

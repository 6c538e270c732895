"""The Jobs dock: the job tree, the selected job's details and the limits form (pytest-qt)."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QModelIndex, Qt
from PySide6.QtWidgets import QDialog

from core.kernel import program as P
from core.kernel.machine import Machine
from inspector.job_view import (
    J_ACTIVE, J_CPU_RATE, J_LIMITS, J_NAME, J_TOTAL, J_USER_TIME, JOB_NAME_ROLE, NOT_AVAILABLE,
    JobDetails, JobLimitsDialog, JobRequest, JobTreeModel, JobView,
    cpu_rate_text, limits_summary, parse_cpus,
)
from inspector.keyed_table import KeyedTableModel, TableRow
from inspector.process_model import EXITED_COLOR, NEW_COLOR, Column

BG = Qt.ItemDataRole.BackgroundRole


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


NO_LIMITS = {
    "active_process": None, "affinity": None, "priority_class": None, "scheduling_class": None,
    "per_process_user_time_us": None, "per_job_user_time_us": None,
    "end_of_job_time_action": "terminate", "process_memory": None, "job_memory": None,
    "kill_on_job_close": False, "breakaway_ok": False, "silent_breakaway_ok": False,
    "die_on_unhandled_exception": False,
}


def job(name, jid, parent=None, children=(), active=0, total=0, terminated=0, user=0.0,
        limits=None, effective=None, cpu_rate=None, messages=(), processes=(), live=None,
        **extra):
    """A job entry shaped as Machine.state()'s."""
    j = {
        "name": name, "jid": jid, "parent": parent, "children": list(children),
        "active_processes": active, "total_processes": total,
        "total_terminated_processes": terminated, "total_user_time_us": user,
        "total_kernel_time_us": 0.0, "this_period_user_time_us": user,
        "this_period_kernel_time_us": 0.0, "processes": list(processes),
        "live_processes": list(processes if live is None else live), "limit_flags": 0,
        "limits": {**NO_LIMITS, **(limits or {})},
        "effective": effective or {"priority_class": None, "affinity": None,
                                   "scheduling_class": 5},
        "cpu_rate": cpu_rate, "cpu_rate_throttled": False, "job_memory_used": 0,
        "peak_process_memory": 0, "peak_job_memory": 0, "signaled": False,
        "completion_port": True, "handles": 1, "messages": list(messages),
    }
    j.update(extra)
    return j


def process(pid, name, jobs=(), exited=False, exit_code=259):
    return {"pid": pid, "name": name, "jobs": list(jobs), "exited": exited,
            "exit_code": exit_code, "threads": []}


def state(jobs, processes=(), time_us=0.0):
    return {"time_us": time_us, "cpus": 2, "processes": list(processes), "jobs": list(jobs)}


def names(model, parent=QModelIndex()):
    """The tree as nested (name, [children]) lists."""
    out = []
    for row in range(model.rowCount(parent)):
        index = model.index(row, J_NAME, parent)
        out.append((index.data(), names(model, index)))
    return out


def find(model, name, parent=QModelIndex()):
    for row in range(model.rowCount(parent)):
        index = model.index(row, J_NAME, parent)
        if index.data() == name:
            return index
        found = find(model, name, index)
        if found is not None:
            return found
    return None


@pytest.fixture
def clock():
    return FakeClock()


SANDBOX = job("sandbox", 1, children=["capped"], active=2, total=3, terminated=1,
              user=12_500.0, limits={"active_process": 3, "kill_on_job_close": True},
              processes=[8, 12], live=[8])
CAPPED = job("capped", 2, parent="sandbox", active=1, total=1, user=4_000.0,
             cpu_rate={"mode": "hard_cap", "rate": 2500, "control_flags": 5},
             processes=[12])
TIMED = job("timed", 3, limits={"per_process_user_time_us": 50_000.0})


@pytest.fixture
def model(clock):
    m = JobTreeModel(clock=clock)
    m.update(state([SANDBOX, CAPPED, TIMED]))
    return m


# ---- formatters

def test_limits_summary_and_cpu_rate_text():
    assert limits_summary(SANDBOX) == "Active ≤ 3, Kill on job close"
    assert limits_summary(job("j", 1, limits={
        "affinity": [0, 1], "priority_class": "below_normal", "scheduling_class": 3,
        "per_job_user_time_us": 1_000_000.0, "end_of_job_time_action": "post",
        "process_memory": 64 << 20, "breakaway_ok": True})) == (
        "CPUs 0-1, Class Below normal, Sched. class 3, Job time 1s (post), "
        "Process mem. 64MiB, Breakaway OK")
    assert limits_summary({"name": "x"}) == NOT_AVAILABLE
    assert cpu_rate_text({"mode": "weight", "weight": 7}) == "Weight 7"
    assert cpu_rate_text({"mode": "min_max", "min_rate": 1000, "max_rate": 5000},
                         throttled=True) == "Min 10.00%, max 50.00% · throttled"
    assert cpu_rate_text({"hard_cap": 2500}) == "Hard cap 25.00%"  # a live source's spelling
    assert cpu_rate_text(None) == ""


def test_parse_cpus():
    assert parse_cpus("0, 2-3,2") == [0, 2, 3]
    for bad in ("", "a", "3-1", "-1"):
        with pytest.raises(ValueError, match="affinity"):
            parse_cpus(bad)


# ---- the tree

def test_jobs_are_a_tree_by_nesting(model, qtmodeltester):
    qtmodeltester.check(model)
    assert names(model) == [("sandbox", [("capped", [])]), ("timed", [])]
    sandbox = find(model, "sandbox")
    row = [model.index(sandbox.row(), c).data() for c in range(model.columnCount())]
    assert row == ["sandbox", "2", "3", "1", "0:00:00.012", "Active ≤ 3, Kill on job close", ""]
    capped = find(model, "capped")
    assert capped.siblingAtColumn(J_CPU_RATE).data() == "Hard cap 25.00%"
    assert capped.parent() == sandbox
    assert capped.data(JOB_NAME_ROLE) == "capped"
    assert find(model, "timed").siblingAtColumn(J_LIMITS).data() == "Process time 50ms"
    assert "JID 1" in sandbox.data(Qt.ItemDataRole.ToolTipRole)
    assert sandbox.data(BG) is None  # the first state is shown, not "new"


def test_update_changes_only_changed_cells(model, qtbot, qtmodeltester):
    changes = []
    model.dataChanged.connect(lambda tl, br, roles=(): changes.append(
        (tl.data(JOB_NAME_ROLE), tl.column(), br.column())))
    busier = dict(CAPPED, active_processes=2, total_processes=2, total_user_time_us=9_000.0)
    with qtbot.assertNotEmitted(model.modelReset), qtbot.assertNotEmitted(model.rowsInserted), \
            qtbot.assertNotEmitted(model.rowsRemoved), qtbot.assertNotEmitted(model.rowsMoved):
        model.update(state([SANDBOX, busier, TIMED]))
    assert changes == [("capped", J_ACTIVE, J_USER_TIME)]
    changes.clear()
    model.update(state([SANDBOX, busier, TIMED]))
    assert changes == []
    qtmodeltester.check(model)


def test_new_jobs_are_green_and_destroyed_ones_red_then_removed(model, clock, qtbot,
                                                                 qtmodeltester):
    inner = job("inner", 4, parent="capped")
    with qtbot.waitSignal(model.rowsInserted) as inserted:
        model.update(state([SANDBOX, CAPPED, inner]))
    assert inserted.args[0] == find(model, "capped") and inserted.args[1:] == [0, 0]
    assert names(model) == [("sandbox", [("capped", [("inner", [])])]), ("timed", [])]
    assert find(model, "inner").data(BG) == NEW_COLOR
    assert find(model, "timed").data(BG) == EXITED_COLOR  # destroyed: red for now
    assert "Destroyed" in find(model, "timed").data(Qt.ItemDataRole.ToolTipRole)
    assert model.job_at(find(model, "timed")) is None
    qtmodeltester.check(model)
    clock.now += 2
    with qtbot.waitSignal(model.rowsRemoved) as removed, \
            qtbot.assertNotEmitted(model.modelReset):
        model.expire_highlights()
    assert removed.args[1:] == [1, 1]
    assert names(model) == [("sandbox", [("capped", [("inner", [])])])]
    assert find(model, "inner").data(BG) is None
    qtmodeltester.check(model)


def test_a_job_nested_later_moves_under_its_parent(clock, qtbot, qtmodeltester):
    model = JobTreeModel(clock=clock)
    outer, empty = job("outer", 1), job("empty", 2)
    model.update(state([outer, empty]))
    assert names(model) == [("outer", []), ("empty", [])]
    qtmodeltester.check(model)
    # An empty top-level job given a process that is in `outer` nests under it (§6.10)
    with qtbot.waitSignal(model.rowsMoved) as moved, \
            qtbot.assertNotEmitted(model.rowsRemoved), qtbot.assertNotEmitted(model.modelReset):
        model.update(state([dict(outer, children=["empty"]), dict(empty, parent="outer")]))
    assert moved.args[1:3] == [1, 1] and moved.args[3] == find(model, "outer")
    assert names(model) == [("outer", [("empty", [])])]
    # Turned around in one step (outer under empty): still a tree, no loop
    model.update(state([dict(outer, parent="empty"), empty]))
    assert names(model) == [("empty", [("outer", [])])]
    qtmodeltester.check(model)


def test_a_destroyed_parent_lets_its_children_go_to_the_top(model, clock, qtmodeltester):
    orphan = dict(CAPPED, parent=None)
    model.update(state([orphan, TIMED]))
    assert names(model) == [("sandbox", []), ("timed", []), ("capped", [])]
    clock.now += 2
    model.expire_highlights()
    assert names(model) == [("timed", []), ("capped", [])]
    qtmodeltester.check(model)


def test_without_highlights_a_destroyed_job_goes_at_once(clock, qtmodeltester):
    model = JobTreeModel(clock=clock, highlight_seconds=0)
    model.update(state([SANDBOX, CAPPED]))
    model.update(state([]))
    assert names(model) == []
    qtmodeltester.check(model)


def test_odd_and_live_jobs(clock, qtmodeltester):
    """A live source's jobs (cgroups) have fewer keys; junk is skipped, loops broken."""
    model = JobTreeModel(clock=clock)
    live = {"name": "0::/user.slice", "active_processes": 4, "total_processes": None,
            "total_terminated_processes": None, "total_user_time_us": 1_500_000.0,
            "parent": "0::/", "limits": {"active_process": 100, "cpu_rate": {"hard_cap": 5000}},
            "native": {}}
    loop_a = {"name": "a", "parent": "b", "children": [["x"]]}
    odd = {"name": "odd", "parent": ["a"], "jid": "7", "limits": {"affinity": "all"}}
    loop_b = {"name": "b", "parent": "a"}
    model.update({"processes": [], "jobs": [live, "junk", {"name": 5}, loop_a, loop_b, live,
                                            odd]})
    qtmodeltester.check(model)
    # Its parent is not listed; a loop of parents is broken: all at the top level
    assert names(model) == [("0::/user.slice", []), ("a", []), ("b", []), ("odd", [])]
    assert find(model, "odd").siblingAtColumn(J_LIMITS).data() == "CPUs all"
    index = find(model, "0::/user.slice")
    row = [index.siblingAtColumn(c).data() for c in range(model.columnCount())]
    assert row == ["0::/user.slice", "4", NOT_AVAILABLE, NOT_AVAILABLE, "0:00:01.500",
                   "Active ≤ 100", "Hard cap 50.00%"]
    loop = find(model, "a")
    assert loop.siblingAtColumn(J_TOTAL).data() == NOT_AVAILABLE
    assert loop.siblingAtColumn(J_CPU_RATE).data() == NOT_AVAILABLE
    with pytest.raises(ValueError, match="must be a dict"):
        model.update(None)


# ---- a flat keyed table

def test_keyed_table_diffs_by_key(qtbot, qtmodeltester):
    model = KeyedTableModel((Column("K", ""), Column("V", "", True)))
    model.set_rows([TableRow("a", ("a", "1")), TableRow("b", ("b", "2")),
                    TableRow("c", ("c", "3")), TableRow("d", ("d", "4"))])
    qtmodeltester.check(model)
    changes, removed = [], []
    model.dataChanged.connect(lambda tl, br, roles=(): changes.append(
        (tl.row(), br.row(), tl.column(), br.column())))
    model.rowsRemoved.connect(lambda _p, first, last: removed.append((first, last)))
    with qtbot.assertNotEmitted(model.modelReset), qtbot.waitSignal(model.rowsInserted):
        model.set_rows([TableRow("a", ("a", "1")), TableRow("d", ("d", "40")),
                        TableRow("e", ("e", "5")), TableRow("e", ("e", "6"))])
    assert removed == [(1, 2)]  # b and c, one run
    assert changes == [(1, 1, 1, 1)]
    assert model.texts(0) == ["a", "d", "e", "e"] and model.texts(1) == ["1", "40", "5", "6"]
    assert model.index(3, 1).data(Qt.ItemDataRole.TextAlignmentRole) is not None
    qtmodeltester.check(model)
    model.clear()
    assert model.rowCount() == 0


# ---- details

def test_details_show_limits_accounting_members_and_messages(qtbot, qtmodeltester):
    details = JobDetails()
    qtbot.addWidget(details)
    msgs = [{"time_us": 0.0, "message": "NEW_PROCESS", "code": 6, "pid": 8},
            {"time_us": 100_000.0, "message": "ACTIVE_PROCESS_LIMIT", "code": 3, "pid": None}]
    j = job("sandbox", 1, limits={"active_process": 3, "priority_class": "above_normal",
                                  "affinity": [0, 1, 2, 3]},
            effective={"priority_class": "below_normal", "affinity": [0, 1],
                       "scheduling_class": 5},
            processes=[8, 12], live=[8], messages=msgs, limit_flags=0x38,
            cpu_rate={"mode": "weight", "weight": 3, "control_flags": 3})
    procs = {8: process(8, "a.exe", ["sandbox"]),
             12: process(12, "b.exe", ["sandbox"], exited=True, exit_code=1816)}
    details.show_job(j, procs)
    for model in (details.limits, details.accounting, details.members, details.messages):
        qtmodeltester.check(model)
    limits = dict(zip(details.limits.texts(0), zip(details.limits.texts(1),
                                                    details.limits.texts(2))))
    assert limits["Priority class"] == ("Above normal", "Below normal")  # the chain's lowest
    assert limits["Affinity"] == ("0-3", "0-1")
    assert limits["Active processes"] == ("3", "")
    assert limits["Scheduling class"] == ("not set", "5")
    assert limits["Kill on job close"] == ("no", "")
    assert limits["CPU rate"] == ("Weight 3", "")
    assert limits["LimitFlags"] == ("0x00000038", "")
    accounting = dict(zip(details.accounting.texts(0), details.accounting.texts(1)))
    assert accounting["Total processes"] == "0" and accounting["Completion port"] == "yes"
    assert details.members.texts(2) == ["Running", "Exited 1816"]
    assert details.messages.texts(1) == ["JOB_OBJECT_MSG_NEW_PROCESS",
                                         "JOB_OBJECT_MSG_ACTIVE_PROCESS_LIMIT"]
    assert details.messages.texts(3) == ["8", ""]
    assert "sandbox" in details.title.text()
    # the next state: one more message, a member exits; only those rows change
    with qtbot.assertNotEmitted(details.messages.rowsRemoved), \
            qtbot.waitSignal(details.messages.rowsInserted):
        details.show_job(dict(j, live_processes=[], messages=msgs + [
            {"time_us": 200_000.0, "message": "ACTIVE_PROCESS_ZERO", "code": 4, "pid": None}]),
            procs)
    assert details.members.texts(2)[0] == "Exited"
    details.show_job(None, {}, "Job sandbox no longer exists")
    assert details.members.rowCount() == 0 and "no longer" in details.title.text()
    # a malformed document: shown as far as it goes, never a traceback
    details.show_job(dict(j, processes=[[8], "x", 8], messages=[{"time_us": [1], "pid": {}},
                                                               "junk"]), procs)
    assert details.members.texts(0) == ["8"] and details.messages.rowCount() == 1


def test_details_of_a_live_job_say_what_the_source_lacks(qtbot):
    details = JobDetails()
    qtbot.addWidget(details)
    live = {"name": "0::/user.slice", "active_processes": 2, "total_processes": None,
            "limits": {"job_memory": 1 << 30}, "parent": None}
    procs = {5: process(5, "bash", ["0::/user.slice"]), 6: process(6, "vim", [])}
    details.show_job(live, procs)
    limits = dict(zip(details.limits.texts(0), details.limits.texts(1)))
    assert limits["Job memory"] == "1GiB"
    assert limits["Active processes"] == NOT_AVAILABLE
    assert limits["Kill on job close"] == NOT_AVAILABLE
    assert dict(zip(details.accounting.texts(0), details.accounting.texts(1)))[
        "Total processes"] == NOT_AVAILABLE
    assert details.members.texts(1) == ["bash"]  # from the processes' job lists
    index = details.tabs.indexOf(details.message_table)
    assert not details.tabs.isTabEnabled(index)
    assert "does not see" in details.tabs.tabToolTip(index)


@pytest.fixture
def view(qtbot, clock):
    widget = JobView(model=JobTreeModel(clock=clock))
    qtbot.addWidget(widget)
    widget.resize(700, 600)
    widget.show()
    qtbot.waitExposed(widget)
    widget.update_state(state([SANDBOX, CAPPED, TIMED], [
        process(8, "a.exe", ["sandbox"]), process(12, "crunch.exe", ["capped", "sandbox"])]))
    return widget


def test_view_selects_a_job_and_a_member_process(view, qtbot):
    assert view.summary.text() == "3 jobs"
    with qtbot.waitSignal(view.jobSelected) as selected:
        assert view.select_job("capped")
    assert selected.args == ["capped"]
    assert view.selected_job()["jid"] == 2
    assert view.details.members.texts(0) == ["12"]
    assert view.details.members.texts(3) == ["capped, sandbox"]
    view.details.tabs.setCurrentWidget(view.details.member_table)
    table = view.details.member_table
    rect = table.visualRect(view.details.members.index(0, 0))
    with qtbot.waitSignal(view.processActivated) as activated:
        qtbot.mouseClick(table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert activated.args == [12]
    assert not view.select_job("nope")
    # the selected job is destroyed: the details say so
    view.update_state(state([SANDBOX, TIMED]))
    assert view.selected_job() is None
    assert view.details.title.text() == "Job capped no longer exists"
    view.clear_selection()
    assert view.selected_key() is None and view.details.title.text() == "No job selected"


# ---- the limits form

def test_limits_form_fills_in_a_job_and_returns_its_request(qtbot):
    j = job("sandbox", 1, limits={"active_process": 3, "affinity": [0, 1],
                                  "per_job_user_time_us": 1_500_000.0,
                                  "end_of_job_time_action": "post", "job_memory": 256 << 20,
                                  "kill_on_job_close": True},
            cpu_rate={"mode": "hard_cap", "rate": 2500, "control_flags": 5})
    dialog = JobLimitsDialog(title="Set Job Limits", initial=j)
    qtbot.addWidget(dialog)
    assert dialog.job_time_edit.text() == "1.5s" and dialog.affinity_edit.text() == "0-1"
    assert not dialog.process_time_edit.isEnabled()
    dialog.accept()
    assert dialog.result() == QDialog.DialogCode.Accepted
    assert dialog.request == JobRequest(limits={
        "active_process": 3, "affinity": [0, 1], "per_job_user_time_ns": 1_500_000_000,
        "end_of_job_time_action": "post", "job_memory": 256 << 20,
        "kill_on_job_close": True}, cpu_rate={"hard_cap": 2500})


def test_limits_form_for_a_new_job_and_bad_entries(qtbot):
    dialog = JobLimitsDialog(title="Create Job", jobs=["sandbox", "capped"], create=True)
    qtbot.addWidget(dialog)
    dialog.name_edit.setText(" worker ")
    dialog.parent_combo.setCurrentIndex(dialog.parent_combo.findText("capped"))
    dialog.checks["per_process_user_time"].setChecked(True)
    dialog.process_time_edit.setText("10 parsecs")
    dialog.accept()
    assert dialog.result() != QDialog.DialogCode.Accepted  # still open, saying why
    assert "per-process user time" in dialog.error_label.text()
    assert dialog.request is None
    dialog.process_time_edit.setText("20ms")
    dialog.checks["priority_class"].setChecked(True)
    dialog.class_combo.setCurrentIndex(dialog.class_combo.findData("idle"))
    dialog.rate_mode.setCurrentIndex(dialog.rate_mode.findData("min_max"))
    dialog.min_rate_spin.setValue(10)
    dialog.max_rate_spin.setValue(40.5)
    assert not dialog.weight_spin.isEnabled() and dialog.max_rate_spin.isEnabled()
    dialog.accept()
    assert dialog.result() == QDialog.DialogCode.Accepted and dialog.error_label.text() == ""
    assert dialog.request == JobRequest(
        name="worker", parent="capped", completion_port=True,
        limits={"per_process_user_time_ns": 20_000_000, "priority_class": "idle"},
        cpu_rate={"min_rate": 1000, "max_rate": 4050})


# ---- a simulated machine

def test_a_simulated_machine_drives_the_dock(qtbot, clock, qtmodeltester):
    m = Machine(cpus=2)
    m.subscribe(lambda e: None)  # messages are kept either way
    sandbox = m.create_job("sandbox", completion_port=True)
    capped = m.create_job("capped", sandbox, completion_port=True)
    assert m.set_job_limits(sandbox, active_process=3, affinity=[0])
    assert m.set_job_cpu_rate(capped, hard_cap=2500)
    a = m.create_process("a.exe")
    m.create_thread(a, program=[P.cpu(5_000_000), P.sleep(20_000_000), P.repeat()])
    crunch = m.create_process("crunch.exe")
    m.create_thread(crunch, program=[P.cpu(10_000_000_000)])
    assert m.assign_process_to_job(sandbox, a)
    assert m.assign_process_to_job(capped, crunch)
    view = JobView(model=JobTreeModel(clock=clock))
    qtbot.addWidget(view)
    m.run_until(300_000_000)
    view.update_state(m.state())
    qtmodeltester.check(view.model)
    assert names(view.model) == [("sandbox", [("capped", [])])]
    index = find(view.model, "sandbox")
    assert index.siblingAtColumn(J_ACTIVE).data() == "2"
    assert index.siblingAtColumn(J_LIMITS).data() == "Active ≤ 3, CPUs 0"
    assert find(view.model, "capped").siblingAtColumn(J_CPU_RATE).data().startswith(
        "Hard cap 25.00%")
    view.select_job("capped")
    limits = dict(zip(view.details.limits.texts(0), view.details.limits.texts(2)))
    assert limits["Affinity"] == "0"  # the parent's affinity applies to the nested job
    assert view.details.messages.texts(1) == ["JOB_OBJECT_MSG_NEW_PROCESS"]
    # TerminateJobObject ends both (bottom-up, §6.11); closing the handles destroys them
    assert m.terminate_job(sandbox, 42)
    view.update_state(m.state())
    assert find(view.model, "sandbox").siblingAtColumn(J_ACTIVE).data() == "0"
    assert crunch.exit_code == 42
    # crunch.exe's object is gone (nothing holds it): its last entry names it
    assert view.details.members.texts(1) == ["crunch.exe"]
    assert view.details.members.texts(2) == ["Exited"]
    m.close_job_handle(capped)
    m.close_job_handle(sandbox)
    view.update_state(m.state())
    assert find(view.model, "sandbox").data(BG) == EXITED_COLOR
    clock.now += 2
    view.update_state(m.state())
    assert names(view.model) == [] and view.summary.text() == "No jobs"
    assert view.details.title.text() == "Job capped no longer exists"
    qtmodeltester.check(view.model)


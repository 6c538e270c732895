"""The Compare view and dialog: what changed between two moments of a recorded session,
or between two sessions (pytest-qt)."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import QModelIndex, Qt
from PySide6.QtGui import QAction, QColor, QGuiApplication, QPalette
from PySide6.QtWidgets import QLabel, QPushButton, QSlider

from core.scenario import load_scenario
from core.session import SessionError, compare_sessions, open_session, record_scenario
from core.units import format_duration
from inspector.compare_view import (
    AFTER_COLUMN, BEFORE_COLUMN, NOT_PRESENT, CompareDialog, CompareView, change_colours,
    sub_changes, value_text,
)

ROOT = Path(__file__).resolve().parent.parent

# base.exe runs from 0 in job "pool"; brief.exe exits at about 10 ms; late.exe starts at
# 50 ms; the worker thread is raised to "highest" at 100 ms.
SMALL = """
[system]
cpus = 2
until = "200ms"

[[job]]
name = "pool"

  [job.limits]
  active_process = 4

[[process]]
name = "base.exe"
job = "pool"

  [[process.thread]]
  name = "worker"
  program = ["cpu 5ms", "sleep 20ms", "repeat"]

[[process]]
name = "brief.exe"

  [[process.thread]]
  name = "brief"
  program = ["cpu 10ms", "exit 3"]

[[process]]
name = "late.exe"
start = "50ms"

  [[process.thread]]
  name = "late"
  program = ["sleep 10s"]

[[at]]
time = "100ms"
do = "set_priority worker highest"
"""


@pytest.fixture(scope="module")
def session_files(tmp_path_factory):
    """Two recorded sessions: the small scenario above and resources' jobs.toml."""
    folder = tmp_path_factory.mktemp("sessions")
    scenario = folder / "small.toml"
    scenario.write_text(SMALL, encoding="utf-8")
    small, jobs = folder / "small.koi", folder / "jobs.koi"
    record_scenario(load_scenario(scenario)).save(small)
    record_scenario(load_scenario(ROOT / "resources" / "scenarios" / "jobs.toml")).save(jobs)
    return small, jobs


@pytest.fixture
def session(session_files):
    with open_session(session_files[0]) as s:
        yield s


@pytest.fixture
def view(qtbot):
    v = CompareView()
    qtbot.addWidget(v)
    return v


# ---- helpers

def rows(view, parent=QModelIndex()):
    """What the tree shows: [(name, before, after, [children])], through the filter."""
    model = view.model
    out = []
    for row in range(model.rowCount(parent)):
        index = model.index(row, 0, parent)
        out.append((index.data(), index.siblingAtColumn(BEFORE_COLUMN).data(),
                    index.siblingAtColumn(AFTER_COLUMN).data(), rows(view, index)))
    return out


def group(view, title_start):
    return next(r for r in rows(view) if r[0].startswith(title_start))


def group_index(view, title_start):
    model = view.model
    return next(model.index(row, 0) for row in range(model.rowCount())
                if model.index(row, 0).data().startswith(title_start))


def find(view, text, parent=QModelIndex()):
    """The index of the first row whose first column is `text`."""
    model = view.model
    for row in range(model.rowCount(parent)):
        index = model.index(row, 0, parent)
        if index.data() == text:
            return index
        found = find(view, text, index)
        if found is not None:
            return found
    return None


def thread_doc(state, name):
    return next(t for p in state["processes"] for t in p["threads"] if t["name"] == name)


def first_and_last(session):
    times = session.sample_times()
    return float(times[0]), float(times[-1])


# ---- formatting

def test_values_read_as_koi_shows_them():
    assert value_text("user_time_us", 35_000.0) == "35ms"
    assert value_text("create_time_us", 15_625.0) == "15.625ms"
    assert value_text("time_us", 0.0) == "0ms"
    assert value_text("priority", 10) == "10"
    assert value_text("exit_code", None) == NOT_PRESENT == "—"
    assert value_text("foreground", False) == "no"
    assert value_text("wait_reason", "") == "(empty)"
    assert value_text("commit", 65536) == "64KiB"
    assert value_text("affinity", [0, 1, 2, 5]) == "0-2,5"
    assert value_text("live_processes", [52, 60]) == "52, 60"
    assert value_text("messages", [{"code": 6}, {"code": 4}]) == "2 entries"
    assert value_text("limits.per_process_user_time_us", 50_000.0) == "50ms"
    long_name = value_text("name", "x" * 500)
    assert long_name.endswith("…") and len(long_name) == 120
    # Dicts on both sides become the sub-fields that differ, to any depth
    before = {"active_process": 3, "affinity": None, "deep": {"a": 1, "b": 2}}
    after = {"active_process": 4, "affinity": None, "deep": {"a": 1, "b": 3}, "new": True}
    assert list(sub_changes("limits", before, after)) == [
        ("limits.active_process", 3, 4), ("limits.deep.b", 2, 3), ("limits.new", None, True)]
    assert list(sub_changes("priority", 8, 10)) == [("priority", 8, 10)]


def contrast(a: QColor, b: QColor) -> float:
    def luminance(c: QColor) -> float:
        def channel(v: float) -> float:
            return v / 12.92 if v <= 0.03928 else ((v + 0.055) / 1.055) ** 2.4
        return (0.2126 * channel(c.redF()) + 0.7152 * channel(c.greenF())
                + 0.0722 * channel(c.blueF()))
    hi, lo = sorted((luminance(a), luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


@pytest.mark.parametrize("base", ["#ffffff", "#f0f0f0", "#2d2d2d", "#1e1e1e", "#000000"])
def test_created_and_gone_colours_are_readable_on_light_and_dark_bases(base):
    palette = QPalette()
    palette.setColor(QPalette.ColorRole.Base, QColor(base))
    created, gone = change_colours(palette)
    assert created.green() > created.red() and gone.red() > gone.green()
    assert contrast(created, QColor(base)) >= 4.5
    assert contrast(gone, QColor(base)) >= 4.5


# ---- the view

def test_view_shows_what_was_created_gone_and_changed(view, session, qtmodeltester):
    ta, tb = first_and_last(session)
    view.set_comparison(session.compare(ta, tb), "0ms", "200ms")
    qtmodeltester.check(view.model)

    late = session.state_at(tb)["processes"]
    late_pid = next(p["pid"] for p in late if p["name"] == "late.exe")
    name, before, after, fields = group(view, "Processes created")[3][0]
    assert (name, before, after) == (f"late.exe ({late_pid})", "—", "created at 50ms")
    assert ("name", "—", "late.exe", []) in fields
    gone = group(view, "Processes gone")
    assert gone[0] == "Processes gone (1)" and gone[3][0][0].startswith("brief.exe (")
    assert [r[0] for r in group(view, "Threads created")[3]] == [
        f"late.exe ({late_pid}) › late ({late_pid + 4})"]
    assert "Jobs created" not in [r[0].split(" (")[0] for r in rows(view)]

    summary = view.summary_label.text()
    assert "A: 0ms → B: 200ms" in summary
    assert "1 process created, 1 gone, 1 thread created, 1 gone, 0 jobs created, 0 gone" \
        in summary
    assert f"{len(view.comparison.changes)} field changes in 4 objects" in summary

    # Created and gone rows are coloured with the view's palette colours
    created_colour, gone_colour = change_colours(view.tree.palette())
    created_row = find(view, f"late.exe ({late_pid})")
    assert created_row.data(Qt.ItemDataRole.ForegroundRole) == created_colour
    gone_row = find(view, gone[3][0][0])
    assert gone_row.data(Qt.ItemDataRole.ForegroundRole) == gone_colour


def test_a_dark_palette_recolours_created_and_gone_rows(view, session, qtbot):
    ta, tb = first_and_last(session)
    view.set_comparison(session.compare(ta, tb), "A", "B")
    created = group_index(view, "Processes created")
    light_green = created.data(Qt.ItemDataRole.ForegroundRole)
    dark = QPalette(view.palette())
    dark.setColor(QPalette.ColorRole.Base, QColor("#1e1e1e"))
    with qtbot.waitSignal(view.model.dataChanged):
        view.setPalette(dark)
    assert created.data(Qt.ItemDataRole.ForegroundRole) == change_colours(dark)[0] != light_green
    gone = group_index(view, "Processes gone")
    assert gone.data(Qt.ItemDataRole.ForegroundRole) == change_colours(dark)[1]
    assert view.model.index(0, 0, gone).data(Qt.ItemDataRole.ForegroundRole) \
        == change_colours(dark)[1]


def test_changed_fields_show_the_values_state_at_has_at_both_moments(view, session):
    ta, tb = first_and_last(session)
    view.set_comparison(session.compare(ta, tb), "A", "B")
    worker_a = thread_doc(session.state_at(ta), "worker")
    worker_b = thread_doc(session.state_at(tb), "worker")
    label = f"base.exe ({worker_a['pid']}) › worker ({worker_a['tid']})"
    changed = {r[0]: r for r in group(view, "Changed")[3]}
    fields = {f[0]: (f[1], f[2]) for f in changed[label][3]}
    # raised to "highest" (+2) at 100 ms: 8 -> 10
    assert (worker_a["priority"], worker_b["priority"]) == (8, 10)
    assert fields["priority"] == (str(worker_a["priority"]), str(worker_b["priority"]))
    assert fields["state"] == (worker_a["state"], worker_b["state"])
    assert fields["user_time_us"] == (format_duration(round(worker_a["user_time_us"] * 1000)),
                                      format_duration(round(worker_b["user_time_us"] * 1000)))
    assert fields["context_switches"] == (str(worker_a["context_switches"]),
                                          str(worker_b["context_switches"]))
    # unchanged fields are not listed
    assert "affinity" not in fields and "name" not in fields
    assert changed["Machine"][3] == [("time_us", "0ms", "200ms", [])]
    assert "job pool" in changed


def test_filter_keeps_matching_objects_and_fields(view, session, qtbot, qtmodeltester):
    ta, tb = first_and_last(session)
    view.set_comparison(session.compare(ta, tb), "A", "B")
    everything = rows(view)
    edit = view.findChild(type(view.filter_edit), "compare_filter")
    qtbot.keyClicks(edit, "PRIORITY")
    qtmodeltester.check(view.model)
    shown = rows(view)
    assert [g[0] for g in shown] == ["Processes created (1)", "Processes gone (1)",
                                     "Threads created (1)", "Threads gone (1)", "Changed (4)"]
    changed = group(view, "Changed")[3]
    assert [(o[0].split(" › ")[-1], [f[0] for f in o[3]]) for o in changed] == [
        ("worker (56)", ["priority", "base_priority"])]
    # an object that matches keeps all its fields
    view.set_filter("late.exe")
    created = group(view, "Processes created")[3]
    assert len(created) == 1 and len(created[0][3]) == len(view.comparison.processes_created[0])
    assert "Processes gone" not in [g[0].split(" (")[0] for g in rows(view)]
    # group titles do not match: "created" is no process's or field's name
    view.set_filter("created")
    assert rows(view) == []
    view.set_filter("")
    assert rows(view) == everything


def test_copy_as_text_puts_a_plain_report_on_the_clipboard(view, session, qtbot):
    ta, tb = first_and_last(session)
    view.set_comparison(session.compare(ta, tb), "0ms", "200ms")
    QGuiApplication.clipboard().clear()
    action = view.findChild(QAction, "copy_compare_text")
    assert action is not None and action.isEnabled()
    action.trigger()
    text = QGuiApplication.clipboard().text()
    assert text == view.report_text()
    lines = text.splitlines()
    assert lines[0] == "A: 0ms → B: 200ms"
    assert lines[1].startswith("1 process created, 1 gone")
    assert "Processes created (1)" in lines
    assert any(line.startswith("  late.exe (") and line.endswith(": — → created at 50ms")
               for line in lines)
    assert "    priority: 8 → 10" in lines
    assert "    time_us: 0ms → 200ms" in lines
    # filtered: only what is shown
    view.set_filter("priority")
    action.trigger()
    filtered = QGuiApplication.clipboard().text().splitlines()
    assert "Filter: priority" in filtered and "    priority: 8 → 10" in filtered
    assert "    time_us: 0ms → 200ms" not in filtered


def test_double_click_activates_processes_threads_and_jobs(view, session, qtbot):
    ta, tb = first_and_last(session)
    view.set_comparison(session.compare(ta, tb), "A", "B")
    view.resize(900, 1200)
    view.show()
    qtbot.waitExposed(view)
    worker = thread_doc(session.state_at(tb), "worker")
    pid, tid = worker["pid"], worker["tid"]

    def double_click(index):
        view.tree.scrollTo(index)
        rect = view.tree.visualRect(index)
        assert rect.isValid()
        # a double click starts with a press on the row (QTest's double click has none)
        qtbot.mouseClick(view.tree.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
        qtbot.mouseDClick(view.tree.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())

    with qtbot.waitSignal(view.objectActivated) as activated:
        double_click(find(view, f"base.exe ({pid}) › worker ({tid})"))
    assert activated.args == ["thread", pid, tid]
    with qtbot.waitSignal(view.objectActivated) as activated:
        double_click(find(view, f"base.exe ({pid})"))
    assert activated.args == ["process", pid, -1]
    # a field row goes to its object
    priority = find(view, "priority", find(view, f"base.exe ({pid}) › worker ({tid})"))
    with qtbot.waitSignal(view.objectActivated) as activated:
        double_click(priority)
    assert activated.args == ["thread", pid, tid]
    emitted = []
    view.objectActivated.connect(lambda *args: emitted.append(args))
    view.jobActivated.connect(lambda *args: emitted.append(args))
    with qtbot.waitSignal(view.jobActivated):
        double_click(find(view, "job pool"))
    assert emitted == [("job", -1, -1), ("pool",)]
    # a group row is nothing to go to
    with qtbot.assertNotEmitted(view.objectActivated):
        double_click(find(view, "Changed (4)"))


# ---- the dialog

def test_dialog_compares_first_and_last_sample_and_recomputes_when_a_moment_moves(
        qtbot, session):
    dialog = CompareDialog(session)
    qtbot.addWidget(dialog)
    times = session.sample_times()
    slider_a = dialog.findChild(QSlider, "moment_a_slider")
    slider_b = dialog.findChild(QSlider, "moment_b_slider")
    assert (slider_a.value(), slider_b.value()) == (0, len(times) - 1)
    n = len(times)
    assert dialog.findChild(QLabel, "moment_b_label").text() == f"200ms  (sample {n} of {n})"
    assert dialog.view.comparison.as_dict() == session.compare(times[0], times[-1]).as_dict()
    assert "A: 0ms → B: 200ms" in dialog.view.summary_label.text()

    # B back to 46.875 ms, before late.exe started: nothing created any more
    with qtbot.waitSignal(dialog.comparisonChanged):
        slider_b.setValue(3)
    assert float(times[3]) == 46_875.0
    assert dialog.view.comparison.as_dict() == session.compare(times[0], times[3]).as_dict()
    assert dialog.view.comparison.processes_created == []
    assert dialog.findChild(QLabel, "moment_b_label").text().startswith("46.875ms")
    assert "A: 0ms → B: 46.875ms" in dialog.view.summary_label.text()
    with qtbot.waitSignal(dialog.comparisonChanged):
        slider_a.setValue(3)
    assert dialog.view.comparison.changes == []
    assert rows(dialog.view) == []


def test_dialog_starts_at_the_samples_at_or_before_the_initial_moments(qtbot, session):
    dialog = CompareDialog(session, initial_a_us=20_000.0, initial_b_us=120_000.0)
    qtbot.addWidget(dialog)
    comparison = dialog.view.comparison
    assert (comparison.time_a_us, comparison.time_b_us) == (15_625.0, 109_375.0)
    assert dialog.moment_a.text() == "15.625ms" and dialog.moment_b.text() == "109.375ms"
    # moved from outside (the lead's time slider): recomputed at once
    with qtbot.waitSignal(dialog.comparisonChanged):
        dialog.set_moments(time_b_us=50_000.0)
    assert (dialog.view.comparison.time_a_us, dialog.view.comparison.time_b_us) == (
        15_625.0, 46_875.0)
    assert dialog.findChild(QLabel, "moment_b_label").text().startswith("46.875ms")
    # before the first sample: the first sample
    dialog.set_moments(time_a_us=-5.0)
    assert dialog.view.comparison.time_a_us == 0.0


def test_dialog_compares_with_another_session(qtbot, session, session_files):
    dialog = CompareDialog(session)
    qtbot.addWidget(dialog)
    dialog.choose_file = lambda: str(session_files[1])
    with qtbot.waitSignal(dialog.comparisonChanged):
        qtbot.mouseClick(dialog.findChild(QPushButton, "compare_other_button"),
                         Qt.MouseButton.LeftButton)
    other = dialog.other
    assert other is not None and dialog.error_label.isHidden()
    ta, _ = first_and_last(session)
    tb = float(other.sample_times()[-1])
    with open_session(session_files[1]) as jobs:
        expected = compare_sessions(session, ta, jobs, tb)
    assert dialog.view.comparison.as_dict() == expected.as_dict()
    assert [r[0] for r in group(dialog.view, "Jobs created")[3]] == [
        "job sandbox", "job capped", "job timed"]
    assert [r[0] for r in group(dialog.view, "Jobs gone")[3]] == ["job pool"]
    assert "B: 1s in jobs.koi" in dialog.view.summary_label.text()
    assert dialog.findChild(QLabel, "compare_b_source").text() == str(session_files[1])
    # moment B moves over the other session's samples
    with qtbot.waitSignal(dialog.comparisonChanged):
        dialog.moment_b.slider.setValue(0)
    assert dialog.view.comparison.as_dict() == compare_sessions(
        session, ta, other, 0.0).as_dict()
    # back to this session: the other one is closed
    same = dialog.findChild(QPushButton, "compare_same_button")
    assert same.isEnabled()
    with qtbot.waitSignal(dialog.comparisonChanged):
        qtbot.mouseClick(same, Qt.MouseButton.LeftButton)
    assert dialog.other is None and not same.isEnabled()
    with pytest.raises(SessionError, match="closed"):
        other.state_at(0.0)
    assert dialog.view.comparison.as_dict() == session.compare(ta, 200_000.0).as_dict()


def test_a_file_that_is_not_a_session_shows_an_error_in_the_dialog(qtbot, session, tmp_path):
    bad = tmp_path / "notes.koi"
    bad.write_text("not a session at all\n" * 20, encoding="utf-8")
    dialog = CompareDialog(session)
    qtbot.addWidget(dialog)
    before = dialog.view.comparison.as_dict()
    dialog.choose_file = lambda: str(bad)
    with qtbot.assertNotEmitted(dialog.comparisonChanged):
        dialog.findChild(QPushButton, "compare_other_button").click()
    error = dialog.findChild(QLabel, "compare_error")
    assert not error.isHidden()
    assert error.text() == f"{bad}: not a KOI session (not an SQLite database)"
    assert dialog.other is None
    assert dialog.view.comparison.as_dict() == before
    # cancelling the file chooser changes nothing
    dialog.choose_file = lambda: None
    dialog.findChild(QPushButton, "compare_other_button").click()
    assert dialog.other is None
    # a good file afterwards clears the error
    dialog.choose_file = lambda: str(session.path)
    dialog.findChild(QPushButton, "compare_other_button").click()
    assert error.isHidden() and dialog.other is not None


def test_closing_the_dialog_closes_the_session_it_opened_not_the_callers(
        qtbot, session, session_files):
    dialog = CompareDialog(session)
    qtbot.addWidget(dialog)
    assert dialog.open_other(session_files[1])
    other = dialog.other
    dialog.reject()
    assert dialog.other is None
    with pytest.raises(SessionError, match="closed"):
        other.state_at(0.0)
    assert session.state_at(0.0)["time_us"] == 0.0

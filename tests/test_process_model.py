"""The process tree: keyed-diff model, highlights, filter, columns, selection (pytest-qt)."""

from __future__ import annotations

import gc
import sys
import weakref

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PySide6.QtCore import QModelIndex, QObject, Qt
from PySide6.QtWidgets import QApplication
from shiboken6 import Shiboken

from core.kernel import program as P
from core.kernel.machine import Machine
from inspector.process_model import (
    AFFINITY, CLASS, CPU_PERCENT, CPU_TIME, EXIT_CODE, EXITED_COLOR, JOB, NAME, NEW_COLOR,
    PARENT_PID, PID, PID_ROLE, PROTECTION, SORT_ROLE, THREADS, USER_TIME, ZOMBIE_TEXT_COLOR,
    ProcessTreeModel, ProcessTreeView, TextFilter, cpu_time_text, cpus_text, exit_code_text,
    protection_text,
)

BG = Qt.ItemDataRole.BackgroundRole
FG = Qt.ItemDataRole.ForegroundRole


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def proc(pid, name, parent=None, cpu=0.0, created=0.0, threads=1, **extra):
    p = {"pid": pid, "name": name, "parent_pid": parent, "priority_class": "normal",
         "base_priority": 8, "exit_code": 259, "exited": False, "jobs": [], "protection": "none",
         "affinity": [0, 1], "foreground": False, "create_time_us": created,
         "exit_time_us": None, "user_time_us": cpu, "kernel_time_us": 0.0,
         "threads": [{"tid": pid + 1000 + i} for i in range(threads)]}
    p.update(extra)
    return p


def state(time_us, *procs, cpus=2):
    return {"time_us": time_us, "cpus": cpus, "processes": list(procs), "jobs": []}


BOOT = (proc(0, "Idle"), proc(4, "System", parent=0), proc(8, "smss.exe", parent=4),
        proc(12, "csrss.exe", parent=8), proc(16, "orphan.exe", parent=999))


def tree(model, parent=QModelIndex(), column=NAME):
    """{name: subtree} of the model as a view walks it."""
    out = {}
    for r in range(model.rowCount(parent)):
        ix = model.index(r, column, parent)
        out[ix.data()] = tree(model, model.index(r, 0, parent), column)
    return out


def find(model, name, parent=QModelIndex()):
    for r in range(model.rowCount(parent)):
        ix = model.index(r, 0, parent)
        if ix.data() == name:
            return ix
        hit = find(model, name, ix)
        if hit.isValid():
            return hit
    return QModelIndex()


def cell(model, name, column):
    ix = find(model, name)
    return model.index(ix.row(), column, ix.parent()).data()


def ordered(model, parent=QModelIndex()):
    """[(name, [children...])] in the order a view shows them."""
    out = []
    for r in range(model.rowCount(parent)):
        ix = model.index(r, 0, parent)
        out.append((ix.data(), ordered(model, ix)))
    return out


def pids(model, parent=QModelIndex()):
    """[(pid, [children...])] in the order a view shows them."""
    return [(model.index(r, 0, parent).data(PID_ROLE), pids(model, model.index(r, 0, parent)))
            for r in range(model.rowCount(parent))]


def sort_keys_per_level(model, column, parent=QModelIndex()):
    """The SORT_ROLE keys of `column`, one list per parent, in view order."""
    keys = [model.index(r, column, parent).data(SORT_ROLE) for r in range(model.rowCount(parent))]
    levels = [keys]
    for r in range(model.rowCount(parent)):
        levels.extend(sort_keys_per_level(model, column, model.index(r, 0, parent)))
    return levels


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def model(clock):
    return ProcessTreeModel(clock=clock, highlight_seconds=1.0)


# ---- The model

def test_first_fill_builds_the_parent_child_tree(model, qtmodeltester):
    model.update(state(0, *BOOT))
    qtmodeltester.check(model)
    # Idle parents nothing on screen; a process whose parent is gone is a root.
    assert tree(model) == {"Idle": {}, "System": {"smss.exe": {"csrss.exe": {}}},
                           "orphan.exe": {}}
    smss = find(model, "smss.exe")
    assert [model.index(smss.row(), c, smss.parent()).data() for c in (PID, CLASS, THREADS)] \
        == ["8", "Normal", "1"]
    assert model.index(smss.row(), PARENT_PID, smss.parent()).data() == "4"
    assert smss.data(PID_ROLE) == 8
    assert model.parent(find(model, "csrss.exe")) == smss
    # Nothing is highlighted at start-up: those processes were not "just created".
    assert find(model, "csrss.exe").data(BG) is None


def test_reused_parent_pid_does_not_adopt_an_older_process(model):
    # PID 40 was reused by a process created after its "child": not its creator.
    model.update(state(0, proc(40, "new-owner.exe", created=500.0),
                       proc(44, "old-child.exe", parent=40, created=100.0)))
    assert tree(model) == {"new-owner.exe": {}, "old-child.exe": {}}


def test_update_is_a_keyed_diff_never_a_reset(model, qtbot, qtmodeltester, clock):
    model.update(state(0, *BOOT))
    model.update(state(500, *BOOT))  # the first interval: CPU % goes from unknown to 0
    qtmodeltester.check(model)
    changes = []
    model.dataChanged.connect(lambda tl, br, roles=(): changes.append(
        (tl.data(PID_ROLE), tl.column(), br.column())))
    inserted = []
    model.rowsInserted.connect(lambda parent, a, b: inserted.append(
        (parent.data(PID_ROLE), a, b)))
    with qtbot.assertNotEmitted(model.modelReset), \
            qtbot.assertNotEmitted(model.layoutChanged):
        model.update(state(1000, *BOOT[:3], proc(12, "csrss.exe", parent=8, cpu=400.0),
                           BOOT[4], proc(20, "wininit.exe", parent=8, created=700.0),
                           proc(24, "winlogon.exe", parent=8, created=800.0)))
    # Only csrss.exe's CPU %, CPU time and user time changed; the two children of
    # smss.exe came in one insertion at the end of its children, green from the start.
    assert changes == [(12, CPU_PERCENT, USER_TIME)]
    assert find(model, "wininit.exe").data(BG) == NEW_COLOR
    assert inserted == [(8, 1, 2)]
    assert tree(model)["System"] == {"smss.exe": {"csrss.exe": {}, "wininit.exe": {},
                                                  "winlogon.exe": {}}}
    qtmodeltester.check(model)


def test_a_process_listed_twice_is_one_row(model, qtmodeltester):
    model.update(state(0, *BOOT, BOOT[3]))
    assert tree(model)["System"] == {"smss.exe": {"csrss.exe": {}}}
    # Listed twice in a later state, known or new, it is still one row, and the
    # first entry wins.
    model.update(state(1000, *BOOT, proc(12, "csrss.exe", parent=8, cpu=500.0),
                       proc(20, "new.exe", parent=8, created=900.0),
                       proc(20, "new.exe", parent=8, created=900.0, cpu=300.0)))
    assert tree(model)["System"] == {"smss.exe": {"csrss.exe": {}, "new.exe": {}}}
    assert cell(model, "csrss.exe", CPU_TIME) == "0:00:00.000"
    assert cell(model, "new.exe", CPU_TIME) == "0:00:00.000"
    qtmodeltester.check(model)


def test_cpu_percent_is_the_time_delta_over_elapsed_time_and_cpus(model):
    model.update(state(0, proc(8, "a.exe", cpu=0.0), proc(12, "b.exe", cpu=100.0)))
    assert cell(model, "a.exe", CPU_PERCENT) == ""  # no interval yet
    # 1 ms on 2 CPUs = 2 ms of CPU: 500 µs is 25 %; a process born in the interval
    # counts all its time.
    model.update(state(1000, proc(8, "a.exe", cpu=500.0), proc(12, "b.exe", cpu=100.004),
                       proc(16, "c.exe", cpu=1000.0, created=10.0)))
    assert cell(model, "a.exe", CPU_PERCENT) == "25.00"
    assert cell(model, "b.exe", CPU_PERCENT) == "< 0.01"
    assert cell(model, "c.exe", CPU_PERCENT) == "50.00"
    assert cell(model, "c.exe", CPU_TIME) == "0:00:00.001"
    # A paused source (same time) keeps the last figures instead of dividing by zero.
    model.update(state(1000, proc(8, "a.exe", cpu=500.0), proc(12, "b.exe", cpu=100.004),
                       proc(16, "c.exe", cpu=1000.0, created=10.0)))
    assert cell(model, "a.exe", CPU_PERCENT) == "25.00"
    model.update(state(2000, proc(8, "a.exe", cpu=500.0), proc(12, "b.exe", cpu=100.004),
                       proc(16, "c.exe", cpu=3000.0, created=10.0)))
    assert cell(model, "a.exe", CPU_PERCENT) == ""
    assert cell(model, "c.exe", CPU_PERCENT) == "100.00"


def test_new_processes_are_green_then_plain(model, clock, qtbot):
    model.update(state(0, *BOOT))
    model.update(state(1000, *BOOT, proc(20, "new.exe", parent=4, created=900.0)))
    new = find(model, "new.exe")
    assert new.data(BG) == NEW_COLOR
    clock.now += 0.5
    model.expire_highlights()
    assert find(model, "new.exe").data(BG) == NEW_COLOR
    clock.now += 0.6
    with qtbot.waitSignal(model.dataChanged):
        model.expire_highlights()
    assert find(model, "new.exe").data(BG) is None


def test_exited_processes_stay_red_then_go_and_orphans_move_to_the_top(
        model, clock, qtbot, qtmodeltester):
    model.update(state(0, *BOOT))
    qtmodeltester.check(model)
    without_smss = (BOOT[0], BOOT[1], BOOT[3], BOOT[4])
    model.update(state(1000, *without_smss))
    smss = find(model, "smss.exe")
    assert smss.isValid() and smss.data(BG) == EXITED_COLOR
    assert tree(model)["System"] == {"smss.exe": {"csrss.exe": {}}}
    model.update(state(2000, *without_smss))  # still inside its highlight
    assert find(model, "smss.exe").isValid()
    clock.now += 1.5
    moved = []
    model.orphansAdopted.connect(lambda indexes: moved.extend(
        (ix.parent().isValid(), ix.data()) for ix in indexes))
    # The rows go in one layout change (see ProcessTreeModel._remove_nodes).
    with qtbot.waitSignal(model.layoutChanged), qtbot.assertNotEmitted(model.modelReset):
        model.expire_highlights()
    assert moved == [(False, "csrss.exe")]  # the orphan went to the top level
    assert not find(model, "smss.exe").isValid()
    assert tree(model) == {"Idle": {}, "System": {}, "orphan.exe": {}, "csrss.exe": {}}
    assert model.index_for_pid(8) == QModelIndex()
    qtmodeltester.check(model)


def test_orphans_of_several_parents_keep_their_order(model, clock, qtmodeltester):
    family = [proc(8, "a.exe"), proc(12, "a1"), proc(16, "a2"), proc(20, "b.exe"),
              proc(24, "b1")]
    family[1]["parent_pid"] = family[2]["parent_pid"] = 8
    family[4]["parent_pid"] = 20
    model.update(state(0, *family))
    qtmodeltester.check(model)
    model.update(state(1000, family[1], family[2], family[4]))  # a.exe and b.exe exit
    clock.now += 2
    model.expire_highlights()
    assert list(tree(model)) == ["a1", "a2", "b1"]
    qtmodeltester.check(model)


def test_the_model_sorts_every_level_keeps_it_sorted_and_returns_to_tree_order(
        model, clock, qtbot, qtmodeltester):
    family = (*BOOT, proc(20, "wininit.exe", parent=8), proc(24, "services.exe", parent=20))
    model.update(state(0, *family))
    qtmodeltester.check(model)  # and the tester stays on, checking each layout change
    with qtbot.waitSignal(model.layoutChanged), qtbot.assertNotEmitted(model.modelReset):
        model.sort(PID, Qt.SortOrder.DescendingOrder)
    assert ordered(model) == [
        ("orphan.exe", []),
        ("System", [("smss.exe", [("wininit.exe", [("services.exe", [])]),
                                  ("csrss.exe", [])])]),
        ("Idle", [])]
    # A new process lands in its place; one that exits goes once its red is over.
    rest = [p for p in family if p["pid"] != 16]
    model.update(state(1000, *rest, proc(28, "lsass.exe", parent=8, created=900.0)))
    assert [name for name, _ in ordered(model)[1][1][0][1]] == \
        ["lsass.exe", "wininit.exe", "csrss.exe"]
    clock.now += 2
    model.update(state(2000, *rest, proc(28, "lsass.exe", parent=8, created=900.0)))
    assert [name for name, _ in ordered(model)] == ["System", "Idle"]
    # Back to the tree's own order: the newcomer last among its siblings.
    model.sort(-1)
    assert ordered(model) == [
        ("Idle", []),
        ("System", [("smss.exe", [("csrss.exe", []), ("wininit.exe", [("services.exe", [])]),
                                  ("lsass.exe", [])])])]
    qtmodeltester.check(model)


def test_sorting_by_exit_code_puts_ntstatus_codes_after_small_ones(model):
    # 0xC0000005 needs a 64-bit integer, 7 and 1 fit in 32 bits: Qt must still order them.
    dead = [proc(8 + 4 * i, name, exited=True, exit_code=code, exit_time_us=10.0, threads=0)
            for i, (name, code) in enumerate((("crash.exe", 0xC0000005), ("seven.exe", 7),
                                              ("one.exe", 1)))]
    model.update(state(0, *dead))
    model.sort(EXIT_CODE, Qt.SortOrder.AscendingOrder)
    assert list(tree(model)) == ["one.exe", "seven.exe", "crash.exe"]
    model.sort(EXIT_CODE, Qt.SortOrder.DescendingOrder)
    assert list(tree(model)) == ["crash.exe", "seven.exe", "one.exe"]


def test_exit_codes_read_as_windows_and_linux_write_them():
    assert [exit_code_text(c) for c in (None, 0, 259, 0xC0000005, 0xFFFFFFFF)] == \
        ["", "0", "259", "0xC0000005", "0xFFFFFFFF"]
    # a live Linux process killed by a signal: minus its number (docs/live.md)
    assert exit_code_text(-9) == "SIGKILL (-9)" and exit_code_text(-15) == "SIGTERM (-15)"
    assert exit_code_text(-200) == "signal 200 (-200)"  # no such signal here


def test_an_exited_process_kept_by_a_handle_stays_visible_and_greyed(model, clock):
    model.update(state(0, *BOOT))
    zombie = proc(12, "csrss.exe", parent=8, exited=True, exit_code=0xC0000005,
                  exit_time_us=900.0, threads=0)
    model.update(state(1000, *BOOT[:3], zombie, BOOT[4]))
    csrss = find(model, "csrss.exe")
    assert csrss.data(BG) == EXITED_COLOR
    assert model.index(csrss.row(), EXIT_CODE, csrss.parent()).data() == "0xC0000005"
    clock.now += 2
    model.update(state(2000, *BOOT[:3], zombie, BOOT[4]))
    csrss = find(model, "csrss.exe")
    assert csrss.data(BG) is None and csrss.data(FG) == ZOMBIE_TEXT_COLOR
    assert "Still referenced by a handle" in csrss.data(Qt.ItemDataRole.ToolTipRole)
    # When the last handle goes it disappears at once: it had its red moment.
    model.update(state(3000, *BOOT[:3], BOOT[4]))
    assert not find(model, "csrss.exe").isValid()


def test_a_process_that_lived_between_two_refreshes_still_shows(model, clock, qtbot):
    model.update(state(0, *BOOT))
    for event in ({"time_us": 100.0, "type": "process_create", "pid": 60, "name": "flash.exe",
                   "parent_pid": 8},
                  {"time_us": 100.0, "type": "process_create", "pid": 64, "name": "child.exe",
                   "parent_pid": 60},
                  {"time_us": 150.0, "type": "process_exit", "pid": 64, "exit_code": 0},
                  {"time_us": 200.0, "type": "process_exit", "pid": 60, "exit_code": 1},
                  {"time_us": 300.0, "type": "process_create", "pid": 68, "name": "live.exe",
                   "parent_pid": 8}):
        model.note_event(event)
    with qtbot.assertNotEmitted(model.modelReset):
        model.update(state(1000, *BOOT, proc(68, "live.exe", parent=8, created=300.0)))
    assert tree(model)["System"]["smss.exe"] == {
        "csrss.exe": {}, "live.exe": {}, "flash.exe": {"child.exe": {}}}
    flash = find(model, "flash.exe")
    assert flash.data(BG) == EXITED_COLOR and find(model, "live.exe").data(BG) == NEW_COLOR
    assert "between two refreshes" in flash.data(Qt.ItemDataRole.ToolTipRole)
    assert model.index(flash.row(), EXIT_CODE, flash.parent()).data() == "1"
    clock.now += 2
    model.update(state(2000, *BOOT, proc(68, "live.exe", parent=8, created=300.0)))
    assert tree(model)["System"]["smss.exe"] == {"csrss.exe": {}, "live.exe": {}}


def test_highlight_ends_on_its_own_timer(qtbot):
    model = ProcessTreeModel(highlight_seconds=0.05)  # real clock and timer
    model.update(state(0, *BOOT))
    model.update(state(1000, *BOOT, proc(20, "quick.exe", created=900.0)))
    assert find(model, "quick.exe").data(BG) == NEW_COLOR
    qtbot.waitUntil(lambda: find(model, "quick.exe").data(BG) is None, timeout=2000)


def test_a_live_source_with_unknown_fields_shows_blanks(model, qtmodeltester):
    live = {"pid": 8, "name": "python", "parent_pid": None, "priority_class": None,
            "base_priority": None, "threads": None, "user_time_us": None,
            "kernel_time_us": None, "create_time_us": None, "jobs": None, "protection": None,
            "affinity": None, "cmdline": ["python", "-m", "x"]}
    model.update({"time_us": None, "cpus": None, "processes": [live, {"name": "no pid"}, 7]})
    model.update({"time_us": None, "cpus": None, "processes": [live]})
    qtmodeltester.check(model)
    ix = find(model, "python")
    texts = [model.index(ix.row(), c).data() for c in range(model.columnCount())]
    assert texts[PID] == "8" and texts[NAME] == "python"
    assert all(t == "" for i, t in enumerate(texts) if i not in (NAME, PID))


def test_malformed_entries_are_shown_or_skipped_never_fatal(model, qtmodeltester):
    odd = {"pid": 8, "name": ["not", "a", "string"], "parent_pid": [4], "priority_class": [1],
           "base_priority": "8", "threads": "many", "user_time_us": "1", "kernel_time_us": True,
           "create_time_us": [0], "jobs": "J", "protection": 3, "affinity": "all",
           "exited": True, "exit_code": "oops"}
    model.update(state(0, odd, {"pid": "12", "name": "string pid"}, {"pid": None}))
    model.update(state(1000, odd))
    qtmodeltester.check(model)
    assert model.rowCount() == 1
    texts = [model.index(0, c).data() for c in range(model.columnCount())]
    assert texts[NAME] == "['not', 'a', 'string']" and texts[JOB] == "J"
    assert texts[CLASS] == "[1]" and texts[EXIT_CODE] == "oops"
    for c in range(model.columnCount()):
        model.index(0, c).data(Qt.ItemDataRole.ToolTipRole)
        model.index(0, c).data(SORT_ROLE)


def test_bad_state_is_a_one_line_error(model):
    with pytest.raises(ValueError, match="must be a dict with a 'processes' list"):
        model.update({"processes": "nope"})


def test_emitting_from_python_keeps_true_alive(qtbot):
    # PySide6 6.12.0's emit() takes a reference from the bool it returns, and a few
    # hundred refreshes abort the interpreter (bool_dealloc): pyproject excludes it.
    model = ProcessTreeModel()
    model.update(state(0, *BOOT))
    before = sys.getrefcount(True)
    for _ in range(2000):
        model.dataChanged.emit(model.index(0, 0), model.index(0, 1))
    assert sys.getrefcount(True) >= before


def test_formatters():
    assert cpu_time_text(3_723_456_000.0) == "1:02:03.456"
    assert cpus_text([0, 1, 2, 3, 6, 8, 9]) == "0-3,6,8-9"
    assert protection_text("pp-winsystem") == "PsProtectedSignerWinSystem"
    assert protection_text("ppl-antimalware") == "PsProtectedSignerAntimalware-Light"
    assert protection_text("none") == ""


# ---- The filter: in the model, a hidden row is out of it

# BOOT, plus: smss.exe 8 > svchost.exe 20 (job ServiceJob), svchost.exe 24 > child.exe 32;
# csrss.exe 12 > a.exe 36 > b.exe 40.
FAMILY = (*BOOT, proc(20, "svchost.exe", parent=8, jobs=["ServiceJob"]),
          proc(24, "svchost.exe", parent=8), proc(32, "child.exe", parent=24),
          proc(36, "a.exe", parent=12), proc(40, "b.exe", parent=36))
FAMILY_TREE = [(0, []), (4, [(8, [(12, [(36, [(40, [])])]), (20, []), (24, [(32, [])])])]),
               (16, [])]


def test_the_filter_keeps_the_ancestors_of_every_match_and_nothing_else(
        model, qtbot, qtmodeltester):
    model.update(state(0, *FAMILY))
    qtmodeltester.check(model)  # and the tester stays on through every change below
    assert pids(model) == FAMILY_TREE
    with qtbot.assertNotEmitted(model.modelReset):
        model.set_row_filter(TextFilter("B.EXE"))
    assert pids(model) == [(4, [(8, [(12, [(36, [(40, [])])])])])]
    assert model.process_count() == 10  # hidden, still known
    assert model.filtered_out(24) and not model.index_for_pid(24).isValid()
    assert not model.filtered_out(40) and model.index_for_pid(40).data(PID_ROLE) == 40
    assert not model.filtered_out(4444)
    # A negation shows the rows that do not match and their ancestors: svchost.exe 24
    # stays for its child, 20 has none.
    model.set_row_filter(TextFilter("!svchost"))
    assert pids(model) == [(0, []), (4, [(8, [(12, [(36, [(40, [])])]), (24, [(32, [])])])]),
                           (16, [])]
    model.set_row_filter(TextFilter("re:^(idle|child)"))
    assert pids(model) == [(0, []), (4, [(8, [(24, [(32, [])])])])]
    model.set_row_filter(TextFilter("servicej"))  # the job names match too
    assert pids(model) == [(4, [(8, [(20, [])])])]
    model.set_row_filter(TextFilter("16"))  # and the PID
    assert pids(model) == [(16, [])]
    # Every row comes back where it was: the tree's own order.
    model.set_row_filter(TextFilter())
    assert pids(model) == FAMILY_TREE


def test_a_filtered_refresh_moves_only_the_rows_whose_visibility_changed(
        model, clock, qtbot, qtmodeltester):
    model.update(state(0, *FAMILY))
    model.update(state(1000, *FAMILY))  # the first interval: every CPU % known
    model.set_row_filter(TextFilter("b.exe"))
    qtmodeltester.check(model)
    inserted = []
    model.rowsInserted.connect(lambda parent, first, last: inserted.append(
        (parent.data(PID_ROLE), first, last)))
    changed = []
    model.dataChanged.connect(lambda tl, br, roles=(): changed.append(tl.data(PID_ROLE)))
    # A match is born under svchost.exe 20, hidden so far: 20 comes back with it, in one
    # insertion, after csrss.exe as in the tree's own order. The hidden svchost.exe 24
    # used CPU time unseen.
    busy = [dict(p, user_time_us=500.0) if p["pid"] in (24, 40) else p for p in FAMILY]
    born = proc(44, "b.exe", parent=20, created=1500.0)
    with qtbot.assertNotEmitted(model.modelReset), \
            qtbot.assertNotEmitted(model.layoutChanged):
        model.update(state(2000, *busy, born))
    assert inserted == [(8, 1, 1)]
    assert changed == [40]
    assert pids(model) == [(4, [(8, [(12, [(36, [(40, [])])]), (20, [(44, [])])])])]
    assert model.index_for_pid(44).data(BG) == NEW_COLOR
    # b.exe 40 exits: red for a moment, then it goes, and a.exe and csrss.exe, which
    # only it kept, go with it, in one layout change.
    rest = [p for p in busy if p["pid"] != 40] + [born]
    model.update(state(3000, *rest))
    assert find(model, "b.exe").data(PID_ROLE) == 40
    assert find(model, "b.exe").data(BG) == EXITED_COLOR
    clock.now += 2
    with qtbot.waitSignal(model.layoutChanged), qtbot.assertNotEmitted(model.modelReset):
        model.update(state(4000, *rest))
    assert pids(model) == [(4, [(8, [(20, [(44, [])])])])]
    # A row whose name changes is tested again.
    renamed = [dict(p, name="b.exe") if p["pid"] == 16 else p for p in rest]
    model.update(state(5000, *renamed))
    assert pids(model) == [(4, [(8, [(20, [(44, [])])])]), (16, [])]
    # A hidden process exits unseen: no layout change for it.
    without_child = [p for p in renamed if p["pid"] != 32]
    model.update(state(6000, *without_child))
    clock.now += 2
    with qtbot.assertNotEmitted(model.layoutChanged):
        model.update(state(7000, *without_child))
    assert model.process_count() == 9
    model.set_row_filter(TextFilter())
    assert pids(model) == [(0, []), (4, [(8, [(12, [(36, [])]), (20, [(44, [])]), (24, [])])]),
                           (16, [])]
    qtmodeltester.check(model)


class CountingFilter(TextFilter):
    """A TextFilter that notes the PID of every row it tests."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.tested: list[str] = []

    def matches(self, fields) -> bool:
        self.tested.append(fields[1])
        return super().matches(fields)


def test_a_refresh_tests_only_new_rows_and_rows_whose_texts_changed(model):
    model.update(state(0, *FAMILY))
    counting = CountingFilter("exe")
    model.set_row_filter(counting)
    assert sorted(counting.tested, key=int) == [
        "0", "4", "8", "12", "16", "20", "24", "32", "36", "40"]
    counting.tested.clear()
    # Every row used CPU time; orphan.exe 16 got a new name, svchost.exe 20 a new job.
    busy = [dict(p, user_time_us=700.0) for p in FAMILY]
    busy = [dict(p, name="renamed") if p["pid"] == 16 else
            dict(p, jobs=["Other"]) if p["pid"] == 20 else p for p in busy]
    model.update(state(1000, *busy, proc(44, "new.exe", parent=8, created=900.0)))
    assert sorted(counting.tested, key=int) == ["16", "20", "44"]
    assert model.filtered_out(16) and not model.filtered_out(44)


def test_rows_a_filter_shows_again_take_their_sorted_place(model, qtmodeltester):
    model.update(state(0, *FAMILY))
    model.update(state(1000, *FAMILY))  # CPU %: 0 everywhere
    qtmodeltester.check(model)
    # Among equal keys rows stay in the tree's own order, and come back to it.
    model.sort(CPU_PERCENT, Qt.SortOrder.DescendingOrder)
    assert pids(model) == FAMILY_TREE
    model.set_row_filter(TextFilter("re:svchost|b.exe"))
    model.set_row_filter(TextFilter())
    assert pids(model) == FAMILY_TREE
    model.sort(PID, Qt.SortOrder.DescendingOrder)
    by_pid = [(16, []), (4, [(8, [(24, [(32, [])]), (20, []), (12, [(36, [(40, [])])])])]),
              (0, [])]
    assert pids(model) == by_pid
    model.set_row_filter(TextFilter("svchost"))
    assert pids(model) == [(4, [(8, [(24, []), (20, [])])])]
    model.set_row_filter(TextFilter("re:svchost|csrss"))
    assert pids(model) == [(4, [(8, [(24, []), (20, []), (12, [])])])]
    model.set_row_filter(TextFilter())
    assert pids(model) == by_pid
    # A new match lands in its place.
    model.set_row_filter(TextFilter("svchost"))
    born = proc(22, "svchost.exe", parent=8, created=1500.0)
    model.update(state(2000, *FAMILY, born))
    assert pids(model) == [(4, [(8, [(24, []), (22, []), (20, [])])])]
    qtmodeltester.check(model)


def test_orphans_of_a_removed_process_keep_their_visibility(model, clock, qtmodeltester):
    model.update(state(0, *FAMILY))
    model.set_row_filter(TextFilter("re:csrss|^b"))
    qtmodeltester.check(model)
    assert pids(model) == [(4, [(8, [(12, [(36, [(40, [])])])])])]
    moved = []
    model.orphansAdopted.connect(lambda indexes: moved.extend(
        ix.data(PID_ROLE) for ix in indexes))
    # smss.exe exits: its children go to the top level, csrss.exe shown, the
    # svchost.exe hidden; System, left without a match, goes.
    without_smss = [p for p in FAMILY if p["pid"] != 8]
    model.update(state(1000, *without_smss))
    clock.now += 2
    model.update(state(2000, *without_smss))
    assert moved == [12]
    assert pids(model) == [(12, [(36, [(40, [])])])]
    model.set_row_filter(TextFilter())
    assert pids(model) == [(0, []), (4, []), (16, []), (12, [(36, [(40, [])])]), (20, []),
                           (24, [(32, [])])]
    qtmodeltester.check(model)


def test_a_dropped_model_takes_the_wrappers_of_its_items_along(qapp):
    """A wrapper that outlives its QStandardItem can be handed out for a later Qt object
    at the same address (a view once got a "QStandardItem" as its selection model). The
    tree holds no reference cycles, so its wrappers go with the model, without waiting
    for the cycle collector."""
    model = ProcessTreeModel()
    model.update(state(0, *FAMILY))
    model.set_row_filter(TextFilter("b.exe"))
    wrappers = [weakref.ref(model.invisibleRootItem())]
    wrappers += [weakref.ref(model.itemFromIndex(model.index_for_pid(pid))) for pid in (4, 40)]
    gc.disable()
    try:
        del model
        assert [ref() for ref in wrappers] == [None, None, None]
    finally:
        gc.enable()



def test_the_items_of_gone_rows_are_deleted(model, clock, qtbot):
    """takeRow() leaves an item owned by C++, so a model that only dropped its wrapper
    would keep every process that ever exited (a leak without end in a live session)."""
    model.update(state(0, *BOOT, proc(20, "a.exe", parent=4), proc(24, "b.exe", parent=4)))
    model.set_row_filter(TextFilter("b.exe"))  # a.exe's row is out of the model, hidden
    items = {pid: model._by_pid[pid].item for pid in (20, 24)}
    model.update(state(1000, *BOOT))  # both exit: red for a moment, then gone
    clock.now += 2
    model.expire_highlights()
    model.update(state(2000, *BOOT))
    assert model.index_for_pid(20) == QModelIndex() and model.index_for_pid(24) == QModelIndex()
    assert [Shiboken.isValid(item) for item in items.values()] == [False, False]
    # and release_items deletes everything, the rows a filter hides included
    model.update(state(3000, *BOOT, proc(28, "c.exe", parent=4)))
    kept = [node.item for node in model._by_uid.values() if node.item is not
            model.invisibleRootItem()]
    model.release_items()
    assert kept and not any(Shiboken.isValid(item) for item in kept)


def test_the_root_items_wrapper_goes_with_the_model(qtbot):
    """Qt deletes the invisible root item with the model without shiboken knowing; a
    wrapper left valid let PySide hand a later object at that address back as a
    "QStandardItem" (a view's selectionModel() in a later test: AttributeError)."""
    owner = QObject()
    model = ProcessTreeModel(owner)
    root = model._root.item
    assert Shiboken.isValid(root)
    Shiboken.delete(owner)  # the window that owned the model closes
    assert not Shiboken.isValid(model) and not Shiboken.isValid(root)


NAMES = ("a.exe", "b.exe", "ab.exe", "svc.exe", "B")
FILTERS = ("", "a", "B", "!a", "-b", "re:^a", "re:exe$", "!re:^(a|svc)", "j", "1", "re:[")
SORTS = ((-1, Qt.SortOrder.AscendingOrder), (PID, Qt.SortOrder.DescendingOrder),
         (NAME, Qt.SortOrder.AscendingOrder), (CPU_PERCENT, Qt.SortOrder.DescendingOrder))
# (parent: index among the live processes, or -1 for none; name; in a job)
births = st.lists(st.tuples(st.integers(-1, 40), st.sampled_from(NAMES), st.booleans()),
                  max_size=4)
steps = st.lists(st.fixed_dictionaries({
    "exits": st.lists(st.integers(0, 40), max_size=3),
    "births": births,
    "renames": st.lists(st.tuples(st.integers(0, 40), st.sampled_from(NAMES)), max_size=2),
    "busy": st.lists(st.integers(0, 40), max_size=3),
    "seconds": st.sampled_from((0.0, 0.6, 2.0)),  # highlight clock: red rows end or not
    "filter": st.none() | st.sampled_from(FILTERS),
    "sort": st.none() | st.sampled_from(SORTS),
}), max_size=8)


def searchable_tree(model, parent=QModelIndex()):
    """[(pid, (name, pid, jobs) as shown, [children...])]."""
    out = []
    for r in range(model.rowCount(parent)):
        ix = model.index(r, 0, parent)
        texts = tuple(model.index(r, c, parent).data() for c in (NAME, PID, JOB))
        out.append((ix.data(PID_ROLE), texts, searchable_tree(model, ix)))
    return out


def pruned(nodes, text_filter):
    """What a filter proxy over the tree showed: each row that passes, and its ancestors."""
    out = []
    for pid, texts, children in nodes:
        kept = pruned(children, text_filter)
        if kept or text_filter.matches(texts):
            out.append((pid, kept))
    return out


def as_sets(nodes):
    return frozenset((pid, as_sets(children)) for pid, children in nodes)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(first=births.filter(bool), steps=steps)
def test_the_filtered_tree_is_the_unfiltered_tree_pruned(qapp, first, steps):
    """Whatever happens, the filtered model shows exactly what a filter proxy in front of
    an unfiltered one would: in the tree's own order the same rows in the same order,
    sorted the same rows, each level in order."""
    clock = FakeClock()
    plain = ProcessTreeModel(clock=clock)
    filtered = ProcessTreeModel(clock=clock)
    live: dict[int, dict] = {}
    next_pid = 8
    now = 0.0
    text_filter, sort = TextFilter(), SORTS[0]

    def born(spec):
        nonlocal next_pid
        parent, name, in_job = spec
        order = sorted(live)
        ppid = order[parent % len(order)] if parent >= 0 and order else None
        live[next_pid] = proc(next_pid, name, parent=ppid, created=now,
                              jobs=["Jb"] if in_job else [])
        next_pid += 4

    def check():
        expected = pruned(searchable_tree(plain), text_filter)
        if sort[0] < 0:
            assert pids(filtered) == expected
        else:
            assert as_sets(pids(filtered)) == as_sets(expected)
            for keys in sort_keys_per_level(filtered, sort[0]):
                assert keys == sorted(keys, reverse=sort[1] == Qt.SortOrder.DescendingOrder)
        assert filtered.process_count() == plain.process_count()

    for spec in first:
        born(spec)
    for model in (plain, filtered):
        model.update(state(now, *live.values()))
    check()
    for step in steps:
        now += 1000.0
        order = sorted(live)
        for i in step["exits"] if order else ():
            live.pop(order[i % len(order)], None)
        for i, name in step["renames"]:
            if live:
                pid = sorted(live)[i % len(live)]
                live[pid] = dict(live[pid], name=name)
        for i in step["busy"]:
            if live:
                pid = sorted(live)[i % len(live)]
                live[pid] = dict(live[pid], user_time_us=live[pid]["user_time_us"] + 100.0)
        for spec in step["births"]:
            born(spec)
        clock.now += step["seconds"]
        for model in (plain, filtered):
            model.update(state(now, *live.values()))
        check()
        if step["filter"] is not None:
            text_filter = TextFilter(step["filter"])
            filtered.set_row_filter(text_filter)
            check()
        if step["sort"] is not None:
            sort = step["sort"]
            for model in (plain, filtered):
                model.sort(*sort)
            check()


# ---- The view

@pytest.fixture
def view(qtbot, clock):
    widget = ProcessTreeView(model=ProcessTreeModel(clock=clock))
    qtbot.addWidget(widget)
    widget.resize(900, 500)
    widget.show()
    qtbot.waitExposed(widget)
    widget.update_state(state(0, *BOOT, proc(20, "svchost.exe", parent=8, jobs=["ServiceJob"]),
                              proc(24, "svchost.exe", parent=8),
                              proc(28, "explorer.exe", parent=999)))
    return widget


def visible_names(view, parent=QModelIndex()):
    model = view.tree.model()
    names = []
    for r in range(model.rowCount(parent)):
        ix = model.index(r, 0, parent)
        names.append(ix.data())
        names.extend(visible_names(view, ix))
    return names


def test_tree_is_expanded_and_new_children_show(view):
    smss = view.model.index_for_pid(8)
    assert view.tree.isExpanded(smss)
    view.update_state(state(1000, *BOOT, proc(36, "child.exe", parent=16, created=900.0)))
    orphan = view.model.index_for_pid(16)
    assert view.tree.isExpanded(orphan)


def test_orphans_keep_their_subtree_open(view, clock):
    # smss.exe (8) exits; csrss.exe and its new child move to the top level, open.
    rest = [p for p in BOOT if p["pid"] != 8]
    grandchild = proc(40, "conhost.exe", parent=12, created=10.0)
    view.update_state(state(1000, *BOOT, grandchild))
    view.update_state(state(2000, *rest, grandchild))
    clock.now += 5
    view.update_state(state(3000, *rest, grandchild))
    csrss = view.model.index_for_pid(12)
    assert csrss.parent() == QModelIndex() and view.tree.isExpanded(csrss)
    assert view.model.index(0, NAME, csrss).data() == "conhost.exe"


def test_filter_substring_keeps_ancestors(view, qtbot):
    qtbot.keyClicks(view.filter_edit, "CSRSS")  # applied once typing pauses
    qtbot.waitUntil(lambda: visible_names(view) == ["System", "smss.exe", "csrss.exe"])
    view.filter_edit.setText("servicej")  # the job name matches too
    assert visible_names(view) == ["System", "smss.exe", "svchost.exe"]
    view.filter_edit.setText("28")  # and the PID
    assert visible_names(view) == ["explorer.exe"]


def test_filter_regex_and_negation(view):
    view.filter_edit.setText("re:^(idle|explorer)")
    assert visible_names(view) == ["Idle", "explorer.exe"]
    view.filter_edit.setText("!svchost")
    assert "svchost.exe" not in visible_names(view)
    assert "csrss.exe" in visible_names(view)
    view.filter_edit.setText("-re:\\.exe$")
    assert visible_names(view) == ["Idle", "System"]


def test_an_invalid_regex_says_so_and_filters_nothing(view):
    everything = visible_names(view)
    view.filter_edit.setText("re:([")
    assert visible_names(view) == everything
    assert view.filter_edit.current.error.startswith("invalid regular expression '(['")
    assert "\n" not in view.filter_edit.toolTip()


def test_text_filter_rules():
    assert TextFilter("").matches(["x"])
    assert TextFilter("ab").matches(["xABy"]) and not TextFilter("ab").matches(["a b"])
    assert TextFilter("!ab").matches(["zz"]) and not TextFilter("- ab").matches(["ab"])
    assert TextFilter("re:a.c").matches(["ABC"])
    assert not TextFilter("!").active


def test_sorting_by_cpu_and_back_to_tree_order(view):
    view.update_state(state(1000, *BOOT, proc(20, "svchost.exe", parent=8, cpu=900.0),
                            proc(24, "svchost.exe", parent=8, cpu=100.0),
                            proc(28, "explorer.exe", parent=999, cpu=1500.0)))
    view.tree.sortByColumn(CPU_PERCENT, Qt.SortOrder.DescendingOrder)
    roots = [view.model.index(r, 0).data() for r in range(view.model.rowCount())]
    assert roots[0] == "explorer.exe"
    smss = view.model.index_for_pid(8)
    kids = [view.model.index(r, PID, smss).data() for r in range(view.model.rowCount(smss))]
    assert kids == ["20", "24", "12"]
    view.tree.header().setSortIndicator(-1, Qt.SortOrder.AscendingOrder)
    assert [view.model.index(r, 0).data() for r in range(view.model.rowCount())] == \
        ["Idle", "System", "orphan.exe", "explorer.exe"]


def busy(time_us, cpu, *more):
    """The view fixture's processes at `time_us`, with cumulative CPU times {pid: µs}."""
    extra = {20: {"jobs": ["ServiceJob"]}}
    parents = {20: 8, 24: 8, 28: 999}
    names = {20: "svchost.exe", 24: "svchost.exe", 28: "explorer.exe"}
    procs = [proc(p["pid"], p["name"], parent=p["parent_pid"], cpu=cpu.get(p["pid"], 0.0))
             for p in BOOT]
    procs += [proc(pid, names[pid], parent=parents[pid], cpu=cpu.get(pid, 0.0),
                   **extra.get(pid, {})) for pid in (20, 24, 28)]
    return state(time_us, *procs, *more)


def child_pids(view, pid):
    parent = view.model.index_for_pid(pid)
    return [view.model.index(r, 0, parent).data(PID_ROLE)
            for r in range(view.model.rowCount(parent))]


def top_pids(view):
    return [view.model.index(r, 0).data(PID_ROLE) for r in range(view.model.rowCount())]


def test_sorted_by_cpu_a_refresh_reorders_and_keeps_the_selection(view, qtbot, qtmodeltester):
    # 1 ms on 2 CPUs: 1 µs of CPU time is 0.05 %.
    view.update_state(busy(1000, {12: 300.0, 20: 900.0, 24: 100.0, 28: 1500.0}))
    view.tree.sortByColumn(CPU_PERCENT, Qt.SortOrder.DescendingOrder)
    assert child_pids(view, 8) == [20, 12, 24]  # 45 %, 15 %, 5 %
    assert top_pids(view) == [28, 0, 4, 16]  # 75 %, then the idle ones in tree order
    with qtbot.waitSignal(view.processSelected):
        assert view.select_pid(24)
    qtmodeltester.check(view.model)
    # svchost 24 gets busy, 20 idles, orphan.exe wakes up, and new.exe is born busy.
    with qtbot.assertNotEmitted(view.processSelected), \
            qtbot.assertNotEmitted(view.model.modelReset):
        view.update_state(busy(2000, {12: 500.0, 20: 900.0, 24: 2000.0, 28: 1600.0,
                                      16: 1000.0},
                               proc(40, "new.exe", parent=8, cpu=600.0, created=1500.0)))
    assert child_pids(view, 8) == [24, 40, 12, 20]  # 95 %, 30 %, 10 %, 0 %
    assert top_pids(view) == [16, 28, 0, 4]  # 50 %, 5 %, 0 %, 0 %
    for keys in sort_keys_per_level(view.model, CPU_PERCENT):
        assert keys == sorted(keys, reverse=True)
    # The selection followed its process; the newcomer is green where it landed.
    assert view.selected_pid() == 24
    assert view.tree.currentIndex().data(PID_ROLE) == 24
    new = view.model.index_for_pid(40)
    assert new.data(BG) == NEW_COLOR and view.tree.isExpanded(new.parent())
    qtmodeltester.check(view.model)


def test_exited_rows_go_together_and_a_selection_stays_or_clears(view, clock, qtbot):
    assert view.select_pid(28)
    view.update_state(busy(1000, {}))
    view.update_state(state(2000, *BOOT, proc(28, "explorer.exe", parent=999)))
    assert find(view.model, "svchost.exe").data(BG) == EXITED_COLOR
    clock.now += 2
    removals = []
    view.model.rowsRemoved.connect(lambda *args: removals.append(args))
    # Both rows go in one layout change: a removal each would walk every expanded row.
    with qtbot.waitSignal(view.model.layoutChanged), \
            qtbot.assertNotEmitted(view.processSelected):
        view.model.expire_highlights()
    assert "svchost.exe" not in visible_names(view) and removals == []
    assert view.selected_pid() == 28
    assert view.tree.currentIndex().data(PID_ROLE) == 28
    # When the selected process has gone, nothing is selected.
    view.update_state(state(3000, *BOOT))
    clock.now += 2
    with qtbot.waitSignal(view.processSelected) as blocker:
        view.model.expire_highlights()
    assert blocker.args == [-1]
    assert not view.tree.currentIndex().isValid() and view.selected_pid() == -1


def test_the_filter_holds_while_sorted(view):
    view.update_state(busy(1000, {20: 900.0, 24: 100.0}))
    view.tree.sortByColumn(CPU_PERCENT, Qt.SortOrder.DescendingOrder)
    view.filter_edit.setText("svchost")
    assert visible_names(view) == ["System", "smss.exe", "svchost.exe", "svchost.exe"]
    assert child_pids(view, 8) == [20, 24]
    view.update_state(busy(2000, {20: 900.0, 24: 1100.0}))
    assert child_pids(view, 8) == [24, 20]
    view.filter_edit.setText("!svchost")
    assert "svchost.exe" not in visible_names(view)
    assert top_pids(view) == [0, 4, 16, 28]  # all idle: the tree's own order


def test_the_filtered_view_opens_what_it_shows_and_keeps_a_shown_selection(view, qtbot):
    assert view.select_pid(12)
    view.filter_edit.setText("csrss")
    assert visible_names(view) == ["System", "smss.exe", "csrss.exe"]
    assert view.selected_pid() == 12 and view.tree.currentIndex().data(PID_ROLE) == 12
    # A match is born under explorer.exe, hidden so far: explorer.exe comes back, open.
    view.update_state(busy(1000, {}, proc(44, "csrss.exe", parent=28, created=900.0)))
    assert visible_names(view) == ["System", "smss.exe", "csrss.exe", "explorer.exe",
                                   "csrss.exe"]
    assert view.tree.isExpanded(view.model.index_for_pid(28))
    # A filter that hides the selected row leaves nothing selected.
    with qtbot.waitSignal(view.processSelected) as blocker:
        view.filter_edit.setText("explorer")
    assert blocker.args == [-1] and visible_names(view) == ["explorer.exe"]
    # Cleared, every row is back where it was, the parents open.
    view.filter_edit.setText("")
    assert visible_names(view) == ["Idle", "System", "smss.exe", "csrss.exe", "svchost.exe",
                                   "svchost.exe", "orphan.exe", "explorer.exe", "csrss.exe"]
    assert all(view.tree.isExpanded(view.model.index_for_pid(pid)) for pid in (4, 8, 28))


def test_a_filter_keeps_the_scroll_offset(qtbot, clock):
    view = ProcessTreeView(model=ProcessTreeModel(clock=clock))
    qtbot.addWidget(view)
    view.resize(600, 300)
    view.show()
    qtbot.waitExposed(view)
    # 20 parents of 10 children each, all open.
    parents = [proc(1000 + 4 * i, f"parent{i}.exe") for i in range(20)]
    children = [proc(4 + 4 * (10 * i + j), f"child{i}-{j}.exe", parent=1000 + 4 * i)
                for i in range(20) for j in range(10)]
    view.update_state(state(0, *parents, *children))
    view.tree.executeDelayedItemsLayout()
    bar = view.tree.verticalScrollBar()
    bar.setValue(bar.maximum() // 2)
    offset = bar.value()
    view.filter_edit.setText("!child3-")  # 10 rows go, the other 210 stay
    assert offset > 0 and bar.value() == offset


def test_column_chooser_shows_hides_and_round_trips(view, qtbot):
    header = view.tree.header()
    assert header.isSectionHidden(PARENT_PID) and header.isSectionHidden(AFFINITY)
    assert not header.isSectionHidden(JOB) and not header.isSectionHidden(PROTECTION)
    menu = view.column_chooser.menu()
    actions = {a.text(): a for a in menu.actions() if a.text()}
    assert not actions["Name"].isEnabled()  # the tree column stays
    actions["Parent PID"].trigger()
    actions["Protection"].trigger()
    assert not header.isSectionHidden(PARENT_PID) and header.isSectionHidden(PROTECTION)
    saved = view.header_state()

    other = ProcessTreeView()
    qtbot.addWidget(other)
    assert other.tree.header().isSectionHidden(PARENT_PID)
    assert other.restore_header_state(saved)
    assert not other.tree.header().isSectionHidden(PARENT_PID)
    assert other.tree.header().isSectionHidden(PROTECTION)
    # Never every column: hiding the last shown one is refused.
    for c in range(header.count()):
        view.column_chooser.set_column_visible(c, False)
    assert not header.isSectionHidden(NAME)


def test_names_three_levels_down_fit_the_default_name_column(view):
    """The Name column leaves room for the tree's nesting, as Process Explorer's does."""
    tree = view.tree
    metrics = tree.header().fontMetrics()
    needed = 3 * tree.indentation() + metrics.horizontalAdvance("MsMpEngService.exe")
    assert tree.header().sectionSize(NAME) >= needed + tree.indentation()


def test_selection_emits_process_selected(view, qtbot):
    with qtbot.waitSignal(view.processSelected) as blocker:
        assert view.select_pid(12)
    assert blocker.args == [12]
    csrss = view.model.index_for_pid(24)
    rect = view.tree.visualRect(csrss)
    with qtbot.waitSignal(view.processSelected) as blocker:
        qtbot.mouseClick(view.tree.viewport(), Qt.MouseButton.LeftButton,
                         pos=rect.center())
    assert blocker.args == [24]
    assert view.selected_pid() == 24
    # Selecting a process the filter hides clears the filter.
    view.filter_edit.setText("explorer")
    assert view.select_pid(12) and view.filter_edit.text() == ""
    assert not view.select_pid(4444)


def test_ctrl_f_focuses_the_filter(view, qtbot):
    view.activateWindow()
    view.tree.setFocus()
    qtbot.waitUntil(lambda: QApplication.focusWidget() is view.tree)
    qtbot.keyClick(view.tree, Qt.Key.Key_F, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: view.filter_edit.hasFocus())
    assert view.filter_action.objectName() == "process_filter_action"


# ---- The whole path: a simulated machine's state

def test_a_simulated_machine_drives_the_tree(qtbot, qtmodeltester, clock):
    machine = Machine(cpus=2)
    shell = machine.create_process("shell.exe")
    worker = machine.create_process("worker.exe", parent=shell, priority_class="high")
    machine.create_thread(shell, program=[P.sleep(1_000_000_000)], name="ui")
    machine.create_thread(worker, program=[P.cpu(30_000_000), P.exit_thread(7)])
    machine.create_thread(worker, program=[P.cpu(10_000_000), P.sleep(1_000_000_000)])
    model = ProcessTreeModel(clock=clock)
    machine.run_until(5_000_000)
    model.update(machine.state())
    qtmodeltester.check(model)
    assert tree(model) == {"Idle": {}, "System": {}, "shell.exe": {"worker.exe": {}}}
    worker_ix = find(model, "worker.exe")
    row = lambda c: model.index(worker_ix.row(), c, worker_ix.parent()).data()  # noqa: E731
    assert (row(CLASS), row(THREADS)) == ("High", "2")
    assert row(PROTECTION) == ""
    assert find(model, "System").sibling(find(model, "System").row(), PROTECTION).data() \
        == "PsProtectedSignerWinSystem"
    # Until 10 ms both worker threads run, one per CPU: the whole machine.
    machine.run_until(10_000_000)
    model.update(machine.state())
    assert row(CPU_PERCENT) == "100.00"
    machine.run_until(20_000_000)  # one thread left: one CPU of two
    model.update(machine.state())
    assert row(CPU_PERCENT) == "50.00"
    # The first thread exits at 30 ms: 10 ms of CPU in 40 ms on 2 CPUs.
    machine.run_until(60_000_000)
    model.update(machine.state())
    assert row(CPU_PERCENT) == "12.50"
    assert row(CPU_TIME) == "0:00:00.040"
    # Terminate the worker: it leaves the state, turns red, and goes. A process that
    # lives 1 ms between two refreshes is shown too, from the kernel's events.
    machine.subscribe(model.note_event)
    machine.terminate_process(worker, 1)
    blip = machine.create_process("blip.exe", parent=shell)
    machine.create_thread(blip, program=[P.cpu(1_000_000), P.exit_thread(0)])
    machine.run_until(70_000_000)
    model.update(machine.state())
    assert find(model, "worker.exe").data(BG) == EXITED_COLOR
    assert find(model, "blip.exe").data(BG) == EXITED_COLOR
    clock.now += 5
    model.update(machine.state())
    assert tree(model) == {"Idle": {}, "System": {}, "shell.exe": {}}
    qtmodeltester.check(model)

"""The Fibers dock: the selected thread's fibers and their FLS slots (pytest-qt)."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt

from core.kernel import program as P
from core.kernel.machine import Machine
from inspector.fiber_view import (
    F_ADDRESS, F_FLS, F_KIND, F_NAME, F_PARAMETER, F_STACK, F_STATE, FiberView, fiber_rows,
    pointer_text, value_text,
)

FONT = Qt.ItemDataRole.FontRole


def fiber(name, address, current=False, selected_by=None, converted=False, started=True,
          parameter=0, stack_reserve=1 << 20, fls=None):
    return {"name": name, "address": address, "parameter": parameter,
            "selected_by": selected_by, "current": current, "converted": converted,
            "started": started, "deleted": False, "stack_reserve": stack_reserve,
            "fls": dict(fls or {})}


def thread(tid, fibers, name="T", create=0.0):
    current = next((f["name"] for f in fibers or () if isinstance(f, dict) and f.get("current")),
                   None)
    return {"tid": tid, "pid": 8, "name": name, "fiber": current, "fibers": fibers,
            "create_time_us": create}


def state(*threads):
    return {"time_us": 0.0, "cpus": 1,
            "processes": [{"pid": 8, "name": "app.exe", "threads": list(threads)}], "jobs": []}


F0 = fiber("T", 0x1F000001000, current=True, selected_by=12, converted=True, parameter=0x10,
           fls={"ctx": 7})
F1 = fiber("F1", 0x1F000001100, started=False, parameter=0x20, stack_reserve=64 << 10)
F2 = fiber("F2", 0x1F000001200, selected_by=16, parameter=0xDEADBEEF, fls={"ctx": 9, "log": 1})


@pytest.fixture
def view(qtbot):
    widget = FiberView()
    qtbot.addWidget(widget)
    widget.resize(900, 300)
    widget.show()
    qtbot.waitExposed(widget)
    widget.update_state(state(thread(12, [F0, F1, F2]), thread(16, [], name="H"),
                              thread(20, None, name="live")))
    return widget


def test_formatters():
    assert pointer_text(0x1F000001000) == "0x000001f0`00001000"
    assert pointer_text(0x1000) == "0x00001000"
    assert value_text(-1) == "0xFFFFFFFFFFFFFFFF"
    assert value_text(None) == ""


def test_shows_the_threads_fibers_with_the_current_one_marked(view, qtmodeltester):
    assert view.model.rowCount() == 0 and view.title.text() == "No thread selected"
    view.set_thread(8, 12)
    qtmodeltester.check(view.model)
    qtmodeltester.check(view.fls_model)
    m = view.model
    assert m.texts(F_NAME) == ["T", "F1", "F2"]
    assert m.texts(F_STATE) == ["Current", "Not yet run", "Selected by thread 16"]
    assert m.texts(F_ADDRESS)[0] == "0x000001f0`00001000"
    assert m.texts(F_PARAMETER) == ["0x10", "0x20", "0xDEADBEEF"]
    assert m.texts(F_STACK) == ["1MiB", "64KiB", "1MiB"]
    assert m.texts(F_KIND) == ["Converted thread", "CreateFiber", "CreateFiber"]
    assert m.texts(F_FLS) == ["ctx = 0x7", "", "ctx = 0x9, log = 0x1"]
    assert m.index(0, F_NAME).data(FONT).bold() and m.index(1, F_NAME).data(FONT) is None
    assert view.title.text() == "Thread 12 (T): 3 fibers, running fiber T"
    # FLS: the current fiber's by default, another fiber's when chosen
    assert view.fls_title.text() == "FLS of fiber T"
    assert view.fls_model.texts(0) == ["ctx"] and view.fls_model.texts(1) == ["0x7"]
    assert view.choose_fiber("F2")
    assert view.fls_title.text() == "FLS of fiber F2"
    assert view.fls_model.texts(0) == ["ctx", "log"]
    assert not view.choose_fiber("nope")


def test_a_switch_changes_only_the_changed_cells(view, qtbot, qtmodeltester):
    view.set_thread(8, 12)
    changes = []
    view.model.dataChanged.connect(lambda tl, br, roles=(): changes.append(
        (tl.row(), br.row(), tl.column(), br.column())))
    switched = [dict(F0, current=False, selected_by=None),
                dict(F1, current=True, selected_by=12, started=True, fls={"ctx": 3}), F2]
    with qtbot.assertNotEmitted(view.model.modelReset), \
            qtbot.assertNotEmitted(view.model.rowsInserted), \
            qtbot.assertNotEmitted(view.model.rowsRemoved):
        view.update_state(state(thread(12, switched)))
    # bold moved from T to F1: whole rows (the font is every cell's)
    assert changes == [(0, 1, 0, 6)]
    assert view.model.texts(F_STATE)[:2] == ["Switched out", "Current"]
    assert view.title.text().endswith("running fiber F1")
    assert view.fls_title.text() == "FLS of fiber F1" and view.fls_model.texts(1) == ["0x3"]
    # a deleted fiber leaves the list
    with qtbot.waitSignal(view.model.rowsRemoved) as removed:
        view.update_state(state(thread(12, switched[:2])))
    assert removed.args[1:] == [2, 2]
    qtmodeltester.check(view.model)


def test_other_threads_and_sources(view, qtbot, qtmodeltester):
    view.set_thread(8, 12)
    with qtbot.waitSignal(view.model.rowsRemoved), \
            qtbot.assertNotEmitted(view.model.modelReset):
        view.set_thread(8, 16)
    assert view.model.rowCount() == 0
    assert view.title.text() == "Thread 16 (H) is not a fiber thread (no ConvertThreadToFiber)"
    assert view.fls_title.text() == "FLS: no fiber"
    view.set_thread(8, 20)
    assert "cannot see fibers" in view.title.text()
    view.set_thread(8, 99)
    assert view.title.text() == "Thread 99 is no longer running"
    view.set_thread(None)
    assert view.title.text() == "No thread selected" and view.pid is None
    with pytest.raises(ValueError, match="must be a dict"):
        view.update_state(None)
    qtmodeltester.check(view.model)


def test_a_reused_tid_is_another_thread():
    a = fiber_rows((8, 12, 0.0), thread(12, [F0]))
    b = fiber_rows((8, 12, 5.0), thread(12, [F0], create=5.0))
    assert a[0].key != b[0].key and a[0].texts == b[0].texts


def test_junk_fibers_are_skipped(view, qtmodeltester):
    view.update_state(state(thread(12, ["junk", {"name": None, "address": "x", "fls": "?",
                                                 "stack_reserve": -1},
                                        {"name": ["odd"], "address": [1], "current": True,
                                         "fls": {"s": [2]}}])))
    view.set_thread(8, 12)
    qtmodeltester.check(view.model)
    assert view.model.texts(F_ADDRESS) == ["x", "[1]"]
    assert view.fls_model.texts(1) == ["[2]"]


def test_a_simulated_fiber_thread_end_to_end(qtbot, qtmodeltester):
    if not hasattr(P, "fiber_convert"):  # the fiber API lands in core/kernel/fibers.py
        pytest.skip("core.kernel.program has no fiber_convert yet")
    m = Machine(cpus=1)
    app = m.create_process("fib.exe")
    worker = [P.fls_set("ctx", 9), P.cpu(1_000_000), P.fiber_switch("main"), P.repeat()]
    t = m.create_thread(app, name="main", program=[
        P.fiber_convert(0x10), P.fls_alloc("ctx"), P.fls_set("ctx", 7),
        P.fiber_create("worker", worker, parameter=0x20, stack_reserve=64 << 10),
        P.fiber_switch("worker"), P.cpu(2_000_000), P.sleep(10_000_000), P.repeat()])
    view = FiberView()
    qtbot.addWidget(view)
    m.run_until(5_000_000)
    view.update_state(m.state())
    view.set_thread(app.pid, t.tid)
    qtmodeltester.check(view.model)
    assert view.model.texts(F_NAME) == ["main", "worker"]
    assert view.model.texts(F_STATE) == ["Current", "Switched out"]
    assert view.model.texts(F_PARAMETER) == ["0x10", "0x20"]
    assert view.model.texts(F_STACK) == ["1MiB", "64KiB"]  # 0 at creation is the 1 MB default
    assert view.model.texts(F_FLS) == ["ctx = 0x7", "ctx = 0x9"]
    assert view.title.text() == f"Thread {t.tid} (main): 2 fibers, running fiber main"

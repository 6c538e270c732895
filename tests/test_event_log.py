"""The event log: batched bounded model, readable details, filters, activation (pytest-qt)."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt

from core.kernel import program as P
from core.kernel.machine import Machine
from inspector.event_log import (
    DETAILS, EVENT_TYPES, PROCESS, THREAD, TIME, TYPE, EventLogModel, EventLogView,
)


def ev(time_us, etype, **fields):
    return {"time_us": time_us, "type": etype, **fields}


BOOT_EVENTS = [
    ev(0.0, "process_create", pid=8, name="app.exe", parent_pid=None),
    ev(0.0, "process_create", pid=12, name="child.exe", parent_pid=8),
    ev(0.0, "thread_create", pid=12, tid=16, name="worker"),
    ev(40.0, "priority", tid=16, name="worker", priority=14, base_priority=8, reason="boost"),
    ev(71.25, "priority", tid=16, name="worker", priority=13, base_priority=8, reason="decay"),
    ev(90.0, "api_error", op="release_mutex", error="ERROR_NOT_OWNER", code=288, tid=16,
       name="worker", object="M"),
    ev(95.0, "job_message", job="J", message="NEW_PROCESS", code=6, pid=12),
    ev(96.0, "open_process", caller="app.exe", caller_pid=8, target="System", target_pid=4,
       access=0x1F0FFF, result="ERROR_ACCESS_DENIED", handle=None),
    ev(5000.0, "thread_exit", pid=12, tid=16, name="worker", exit_code=3),
    ev(5000.0, "process_exit", pid=12, name="child.exe", exit_code=0xC0000005),
]


def rows(model, column):
    return [model.index(r, column).data() for r in range(model.rowCount())]


def test_a_batch_is_one_insertion_and_reads_like_a_log(qtbot, qtmodeltester):
    model = EventLogModel()
    qtmodeltester.check(model)
    with qtbot.waitSignal(model.rowsInserted) as inserted, \
            qtbot.assertNotEmitted(model.modelReset):
        assert model.append_events(BOOT_EVENTS) == len(BOOT_EVENTS)
    assert inserted.args[1:] == [0, len(BOOT_EVENTS) - 1]
    qtmodeltester.check(model)
    assert rows(model, TIME)[3] == "0.000040"
    assert rows(model, TYPE)[0] == "process_create"
    assert rows(model, PROCESS) == [
        "app.exe (8)", "child.exe (12)", "child.exe (12)", "child.exe (12)", "child.exe (12)",
        "child.exe (12)", "child.exe (12)", "app.exe (8)", "child.exe (12)", "child.exe (12)"]
    assert rows(model, THREAD)[2:6] == ["worker (16)"] * 4
    assert rows(model, DETAILS) == [
        "created (no parent process)",
        "created by app.exe (8)",
        "created",
        "priority 8 → 14 (boost), base 8",  # a new thread starts at its base
        "priority 14 → 13 (decay), base 8",
        "release_mutex failed: ERROR_NOT_OWNER (288), object M",
        "job J: JOB_OBJECT_MSG_NEW_PROCESS (6)",
        "OpenProcess(4, access 0x1F0FFF): ERROR_ACCESS_DENIED",
        "exited, exit code 3",
        "exited, exit code 0xC0000005",
    ]
    assert model.index(0, TIME).data(Qt.ItemDataRole.ToolTipRole) == "0.000 µs"


def test_state_supplies_names_and_priorities_of_older_objects():
    model = EventLogModel()
    model.note_state({"processes": [{"pid": 4, "name": "System", "threads": [
        {"tid": 24, "name": "SystemWorker0", "priority": 13}]}]})
    model.append_events([ev(1.0, "priority", tid=24, name="SystemWorker0", priority=15,
                            base_priority=13, reason="set_priority")])
    assert model.index(0, PROCESS).data() == "System (4)"
    assert model.index(0, DETAILS).data() == "priority 13 → 15 (SetThreadPriority), base 13"


def test_sampled_exits_say_when_they_were_seen_and_what_is_unknown():
    """A live exit is dated by the sample that saw it; reaped unseen, it has no code."""
    model = EventLogModel()
    model.append_events([
        ev(1e6, "process_create", pid=40, name="sh", parent_pid=1, sampled=True),
        ev(2e6, "process_exit", pid=40, name="sh", exit_code=None, sampled=True),
        ev(2e6, "process_exit", pid=44, name="make", exit_code=2, sampled=True),
    ])
    assert rows(model, DETAILS) == [
        "created by 1", "gone by this sample (its exit code was not seen)",
        "exited, exit code 2 (seen at this sample)"]
    # make was never seen created: its exit names it
    assert rows(model, PROCESS)[2] == "make (44)"
    model.forget_names()  # another machine: its pid 40 is some other process
    model.append_events([ev(3e6, "thread_create", pid=40, tid=41, name="w", sampled=True)])
    assert rows(model, PROCESS)[3] == "40"


def test_unknown_and_malformed_events_do_not_break_the_log(qtbot, qtmodeltester):
    model = EventLogModel()
    qtmodeltester.check(model)
    with qtbot.waitSignal(model.typeSeen) as seen:
        model.append_events([ev(1.0, "io_complete", tid=99, device="disk"), "junk", None,
                             {"type": "priority"}])
    assert seen.args == ["io_complete"]
    assert rows(model, DETAILS) == ["device disk", "priority None"]
    assert rows(model, TIME) == ["0.000001", ""]
    assert "io_complete" in model.types()


def test_the_log_is_bounded_and_drops_the_oldest(qtbot, qtmodeltester):
    model = EventLogModel(max_rows=5)
    qtmodeltester.check(model)
    model.append_events(BOOT_EVENTS[:3])
    with qtbot.waitSignal(model.rowsRemoved) as removed, \
            qtbot.waitSignal(model.rowsInserted) as inserted:
        model.append_events(BOOT_EVENTS[3:7])
    assert removed.args[1:] == [0, 1] and inserted.args[1:] == [1, 4]
    assert model.rowCount() == 5 and model.dropped == 2
    assert rows(model, TYPE)[0] == "thread_create"
    model.append_events(BOOT_EVENTS)  # a batch larger than the bound keeps its newest
    assert model.rowCount() == 5 and rows(model, TYPE)[-1] == "process_exit"
    assert model.dropped == 2 + 5 + 5
    qtmodeltester.check(model)
    with pytest.raises(ValueError, match="max_rows"):
        EventLogModel(max_rows=0)


def test_enqueued_events_arrive_in_one_batch(qtbot):
    model = EventLogModel(flush_interval_ms=1)
    insertions = []
    model.rowsInserted.connect(lambda parent, a, b: insertions.append((a, b)))
    for e in BOOT_EVENTS:
        model.enqueue(e)
    assert model.rowCount() == 0  # the kernel's callback only queues
    qtbot.waitUntil(lambda: model.rowCount() == len(BOOT_EVENTS))
    assert insertions == [(0, len(BOOT_EVENTS) - 1)]


@pytest.fixture
def view(qtbot):
    widget = EventLogView()
    qtbot.addWidget(widget)
    widget.resize(900, 400)
    widget.show()
    qtbot.waitExposed(widget)
    widget.model.append_events(BOOT_EVENTS)
    return widget


def shown(view, column=TYPE):
    return [view.proxy.index(r, column).data() for r in range(view.proxy.rowCount())]


def test_type_filter(view):
    view.type_actions["priority"].trigger()  # uncheck
    view.type_actions["process_create"].trigger()
    assert "priority" not in shown(view) and "process_create" not in shown(view)
    assert len(shown(view)) == len(BOOT_EVENTS) - 4
    assert view.count_label.text() == f"6 of {len(BOOT_EVENTS)} events"
    assert view.types_button.text() == f"Types ({len(EVENT_TYPES) - 2} of {len(EVENT_TYPES)})"
    # New events of a hidden type stay hidden.
    view.model.append_events([ev(6000.0, "priority", tid=16, priority=9, base_priority=8,
                                 reason="decay")])
    assert "priority" not in shown(view)
    view.show_all_types()
    assert shown(view).count("priority") == 3


def test_typing_filters_once_typing_pauses(view, qtbot):
    qtbot.keyClicks(view.filter_edit, "worker")
    # Not after every key: re-filtering 100,000 rows per keystroke would stall.
    assert len(shown(view)) == len(BOOT_EVENTS)
    qtbot.waitUntil(lambda: len(shown(view)) == 5)
    assert view.count_label.text() == f"5 of {len(BOOT_EVENTS)} events"


def test_text_filter_substring_regex_and_negation(view):
    view.filter_edit.setText("worker")
    assert len(shown(view)) == 5
    view.filter_edit.setText("re:ERROR_(ACCESS|NOT)")
    assert shown(view) == ["api_error", "open_process"]
    view.filter_edit.setText("!child.exe")
    assert shown(view, PROCESS) == ["app.exe (8)", "app.exe (8)"]
    view.filter_edit.setText("re:(")
    assert len(shown(view)) == len(BOOT_EVENTS)
    assert view.filter_edit.current.error


def test_clicking_an_event_activates_its_object(view, qtbot):
    def click(row):
        rect = view.table.visualRect(view.proxy.index(row, DETAILS))
        with qtbot.waitSignal(view.objectActivated) as blocker:
            qtbot.mouseClick(view.table.viewport(), Qt.MouseButton.LeftButton,
                             pos=rect.center())
        return blocker.args

    assert click(1) == ["process", 12, -1]
    assert click(4) == ["thread", 12, 16]  # priority events name no pid: learnt from tid
    assert click(7) == ["process", 8, -1]  # open_process: the caller


def test_follows_the_tail_and_clears(view, qtbot):
    view.model.append_events([ev(6000.0 + i, "priority", tid=16, priority=9, base_priority=8,
                                 reason="decay") for i in range(500)])
    bar = view.table.verticalScrollBar()
    assert bar.maximum() > 0 and bar.value() == bar.maximum()
    bar.setValue(0)
    view.model.append_events([ev(7000.0, "thread_create", pid=8, tid=40)])
    assert bar.value() == 0  # reading older events: the view stays put
    view.clear_button.click()
    assert view.model.rowCount() == 0 and view.count_label.text() == "0 events"


def test_a_simulated_machine_feeds_the_log(qtbot):
    machine = Machine(cpus=1)
    model = EventLogModel(flush_interval_ms=1)
    model.note_state(machine.state())
    machine.subscribe(model.enqueue)
    app = machine.create_process("typist.exe")
    machine.create_thread(app, program=[P.io("keyboard", 10_000_000), P.cpu(100_000_000),
                                        P.exit_thread(0)], name="T")
    hog = machine.create_process("hog.exe")
    machine.create_thread(hog, program=[P.cpu(200_000_000), P.exit_thread(0)], name="H")
    machine.run_until(300_000_000)
    with qtbot.waitSignal(model.rowsInserted):
        pass
    details = rows(model, DETAILS)
    types = rows(model, TYPE)
    # The keyboard boost (+6) and its decay one level per quantum end.
    boost = types.index("priority")
    assert details[boost] == "priority 8 → 14 (boost), base 8"
    assert details[boost + 1] == "priority 14 → 13 (decay), base 8"
    assert rows(model, THREAD)[boost] == f"T ({app.threads[0].tid})"
    assert rows(model, PROCESS)[boost] == f"typist.exe ({app.pid})"
    assert types.count("process_exit") == 2


def test_open_thread_and_fls_callback_read_like_a_log(qtmodeltester):
    model = EventLogModel()
    model.append_events(BOOT_EVENTS[:3] + [
        ev(10.0, "open_thread", caller=None, caller_pid=None, target="child.exe", target_pid=12,
           target_tid=16, access=0x1, result="ok", handle=4),
        ev(11.0, "fls_callback", pid=12, tid=16, slot="s", index=1, value=0x42, fiber="F1"),
        ev(12.0, "job_message", job="J", message="NEW_PROCESS", code=6, pid=12, source_job="J2"),
    ])
    qtmodeltester.check(model)
    assert rows(model, DETAILS)[3:] == [
        "OpenThread(16 of child.exe (12), access 0x1): ok",
        "FLS callback for slot s (index 1), value 0x42, fiber F1",
        "job J: JOB_OBJECT_MSG_NEW_PROCESS (6), about job J2",
    ]

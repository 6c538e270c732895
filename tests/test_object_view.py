"""The object inspector: live structure tree, lists, links, history, hex view, dt text."""

from __future__ import annotations

import re

import pytest
from PySide6.QtCore import QModelIndex, QPoint, Qt
from PySide6.QtGui import QFontMetrics, QGuiApplication, QPalette

import core.kernel.program as P
from core.kernel import Machine, ms
from core.kernel.boot import boot
from core.kernel.kmemory import bind
from core.layouts import catalogue
from core.memory import AddressSpace
from core.values import Ref, format_address
from inspector import object_model
from inspector.field_help import FIELD_HELP, field_help
from inspector.hex_view import BYTES_PER_LINE, HexView
from inspector.object_model import (
    FIELD, FLASH_ROLE, FLASH_SECONDS, LINK_ROLE, MODELLED_ROLE, NOT_MODELLED, TYPE, VALUE,
    ObjectTreeModel, dt_value, value_text,
)
from inspector.object_view import ObjectView

WIN10 = ("10.0.19041.3570", "x64")
XP = ("5.1.2600.5512", "x86")
DT_LINE = re.compile(r"^(\s*)\+0x([0-9a-f]+) (\S+)\s*: (.+)$")  # shared/reference/anchors.md §4


class FakeClock:
    """Seconds that pass only when a test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def sim():
    """A booted machine with a busy app process, bound to typed memory (19041 x64)."""
    m = Machine(cpus=2)
    boot(m, "bare")
    app = m.create_process("app.exe", "normal")
    worker = m.create_thread(app, program=[P.cpu(ms(3)), P.sleep(ms(1)), P.repeat()], name="worker")
    m.run_until(ms(50))
    km = bind(m, catalogue().find(*WIN10))
    return m, km, app, worker


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def view(qtbot, clock):
    widget = ObjectView(clock=clock)
    qtbot.addWidget(widget)
    widget.resize(1000, 700)
    return widget


def cells(index):
    return [index.siblingAtColumn(c).data() for c in range(4)]


def child_rows(model, parent):
    return [cells(model.index(r, 0, parent)) for r in range(model.rowCount(parent))]


def show_all(model, parent=QModelIndex()):
    """Ask for every cell below `parent`, as a view scrolled over all of it would."""
    count = 0
    for r in range(model.rowCount(parent)):
        index = model.index(r, 0, parent)
        cells(index)
        count += 1 + show_all(model, index)
    return count


# ---- The tree of a bound System _EPROCESS

def test_known_members_of_system_eprocess(sim, view):
    m, km, *_ = sim
    system = km.process_object(m.processes[4])
    view.show_object(system)
    model = view.model
    assert view.current_object is system
    assert cells(model.index_for_path("UniqueProcessId")) == [
        "+0x440", "UniqueProcessId", "Ptr64 Void", "0x00000000`00000004 Void"]
    assert cells(model.index_for_path("ImageFileName")) == [
        "+0x5a8", "ImageFileName", "[15] UChar", '[15]  "System"']
    # nested: offsets relative to the containing structure, as dt -r prints them
    assert cells(model.index_for_path("Pcb.Header.Type")) == [
        "+0x000", "Type", "UChar", "0x3 '' (ProcessObject)"]
    assert cells(model.index_for_path("Pcb.BasePriority"))[1:] == ["BasePriority", "Char", "8 ''"]
    # bitfields: dt's Pos/Bits and 0y values
    assert cells(model.index_for_path("JobNotReallyActive"))[::2] == ["+0x460", "Pos 0, 1 Bit"]
    assert cells(model.index_for_path("DefaultPagePriority"))[2:] == ["Pos 12, 3 Bits", "0y000"]
    # a pointer into simulated memory is a link that says where it leads
    flink = model.index_for_path("ActiveProcessLinks.Flink")
    order = list(km.active)
    assert order[0] is system  # so Flink leads to the second process
    nxt = order[1]
    assert flink.siblingAtColumn(VALUE).data() == (
        f"{format_address(nxt.address_of('ActiveProcessLinks'), 'x64')} _LIST_ENTRY → "
        f"_EPROCESS {nxt.label} +0x448 ActiveProcessLinks")
    assert model.data(flink, LINK_ROLE) == (nxt, "ActiveProcessLinks")
    assert model.rowCount() == len(system.layout.top_level)


def test_not_modelled_members_look_different(sim, view):
    m, km, *_ = sim
    view.show_object(km.process_object(m.processes[4]))
    model = view.model
    token = model.index_for_path("Token")  # no _TOKEN layout ships: KOI leaves it unset
    pid = model.index_for_path("UniqueProcessId")
    grey = QGuiApplication.palette().color(QPalette.ColorRole.PlaceholderText)
    assert model.data(token, MODELLED_ROLE) is False and model.data(pid, MODELLED_ROLE) is True
    for column in (FIELD, TYPE, VALUE):
        assert model.data(token.siblingAtColumn(column), Qt.ItemDataRole.FontRole).italic()
        assert model.data(token.siblingAtColumn(column), Qt.ItemDataRole.ForegroundRole) == grey
        assert NOT_MODELLED in model.data(token.siblingAtColumn(column), Qt.ItemDataRole.ToolTipRole)
        font = model.data(pid.siblingAtColumn(column), Qt.ItemDataRole.FontRole)
        assert font is None or not font.italic()
        assert model.data(pid.siblingAtColumn(column), Qt.ItemDataRole.ForegroundRole) != grey
        assert NOT_MODELLED not in (model.data(pid.siblingAtColumn(column), Qt.ItemDataRole.ToolTipRole) or "")


def test_tooltips_explain_important_fields(sim, view):
    m, km, app, worker = sim
    view.show_object(km.thread_object(worker))
    model = view.model
    tip = model.data(model.index_for_path("Tcb.WaitReason").siblingAtColumn(FIELD), Qt.ItemDataRole.ToolTipRole)
    assert "KWAIT_REASON" in tip and "Waiting (5)" in tip
    tip = model.data(model.index_for_path("Tcb.PriorityDecrement").siblingAtColumn(VALUE),
                     Qt.ItemDataRole.ToolTipRole)
    assert "quantum end" in tip
    view.show_object(km.process_object(app))
    for path, words in (("ActiveProcessLinks", "PsActiveProcessHead"), ("Pcb.QuantumReset", "quantum units")):
        tip = model.data(model.index_for_path(path).siblingAtColumn(FIELD), Qt.ItemDataRole.ToolTipRole)
        assert words in tip


def test_every_help_entry_names_a_real_member():
    # A typo in field_help would silently never show: each key must exist in some build.
    names: dict[str, set[str]] = {}
    structs = {struct for struct, _ in FIELD_HELP}
    for build in catalogue().builds:
        for struct in structs:
            if build.has_struct(struct):
                names.setdefault(struct, set()).update(
                    mm.name.rpartition(".")[2] for mm in build.struct(struct).members)
    missing = [key for key in FIELD_HELP if key[1] not in names.get(key[0], ())]
    assert missing == []
    assert field_help("_KTHREAD", "WaitReason") and field_help("_KTHREAD", "NoSuchMember") is None


# ---- WinDbg's value spellings

def test_dt_value_spellings():
    space = AddressSpace(catalogue().find(*WIN10))
    process = space.create("_EPROCESS", {"UniqueProcessId": 8}, label="p")
    thread = space.create("_KTHREAD", {"Priority": -2, "State": "Waiting", "Process": process,
                                       "WaitStatus": -1, "SuspendCount": 65})
    node = thread.decode()
    assert dt_value(node.find("Priority")) == "-2 ''"          # Char: decimal
    assert dt_value(node.find("SuspendCount")) == "65 'A'"     # Char, printable
    assert dt_value(node.find("State")) == "0x5 ''"            # UChar: hex
    assert value_text(node.find("State")) == "0x5 '' (Waiting)"
    assert dt_value(node.find("WaitStatus")) == "0n-1"         # Int8B: 0n
    assert dt_value(node.find("ContextSwitches")) == "0"       # unsigned zero
    assert dt_value(node.find("Teb")) == "(null) "             # with dt's trailing space
    assert dt_value(node.find("Process")) == f"{format_address(process.address, 'x64')} _KPROCESS"
    assert value_text(node.find("Process")).endswith("→ _EPROCESS p")
    assert dt_value(node.find("WaitListEntry")) == (
        "_LIST_ENTRY [ 0x00000000`00000000 - 0x00000000`00000000 ]")


# ---- Following pointers, history

def test_following_a_pointer_opens_the_object_and_back_returns(sim, view, qtbot):
    m, km, app, worker = sim
    thread = km.thread_object(worker)
    process = km.process_object(app)
    view.show_object(thread)
    model = view.model
    index = model.index_for_path("Tcb.Process")
    view.select_path("Tcb.Process")
    assert model.data(index.siblingAtColumn(VALUE), Qt.ItemDataRole.ForegroundRole) == \
        QGuiApplication.palette().color(QPalette.ColorRole.Link)
    assert view.follow_action.isEnabled() and "_EPROCESS app.exe" in view.follow_action.text()
    with qtbot.waitSignal(view.objectActivated) as blocker:
        view.tree.activated.emit(index)  # double-click / Enter
    assert blocker.args == [process]
    assert view.current_object is process and model.object is process
    assert cells(model.index_for_path("UniqueProcessId"))[3].startswith(f"0x00000000`{app.pid:08x}")
    assert view.back_action.isEnabled() and not view.forward_action.isEnabled()
    view.back_action.trigger()
    assert view.current_object is thread
    assert view.tree.currentIndex() == model.index_for_path("Tcb.Process")  # selection restored
    assert view.tree.isExpanded(model.index_for_path("Tcb"))
    view.forward()
    assert view.current_object is process
    assert view.history == ([thread], [])


def test_list_entry_expands_into_its_entries(sim, view):
    m, km, app, worker = sim
    second = m.create_thread(app, program=[P.sleep(ms(5)), P.repeat()], name="second")
    km.sync()
    process = km.process_object(app)
    view.show_object(process)
    model = view.model
    # ActiveProcessLinks of a process: the head (nt!PsActiveProcessHead), then every process
    links = model.index_for_path("ActiveProcessLinks")
    rows = child_rows(model, links)
    assert [r[1] for r in rows[:3]] == ["Flink", "Blink", "(list head)"]
    assert rows[2][3].endswith("_LIST_ENTRY nt!PsActiveProcessHead")
    entries = rows[3:]
    assert [r[3].split(" ", 1)[1] for r in entries] == [
        f"{p.label} (PID {p.get('UniqueProcessId')})" + (" (this object)" if p is process else "")
        for p in km.active]
    assert all(r[2] == "_EPROCESS" for r in entries)
    # ThreadListHead gives the threads, in creation order
    threads = model.index_for_path("ThreadListHead")
    names = [r[3] for r in child_rows(model, threads)[2:]]
    assert names == [f"{format_address(km.thread_object(t).address, 'x64')} app.exe:{t.tid} "
                     f"(Cid {app.pid:04x}.{t.tid:04x})" for t in (worker, second)]
    # an entry is a link to its record, selecting the link member
    first = model.index(2, 0, threads)
    assert model.link(first) == (km.thread_object(worker), "ThreadListEntry")
    view.follow(first)
    assert view.current_object is km.thread_object(worker)
    assert view.tree.currentIndex() == view.model.index_for_path("ThreadListEntry")


def test_list_head_global_lists_every_process(sim, view):
    m, km, *_ = sim
    view.show_object(km.space.symbol("PsActiveProcessHead"))
    model = view.model
    rows = child_rows(model, QModelIndex())
    assert [r[1] for r in rows[:2]] == ["Flink", "Blink"]
    assert len(rows) - 2 == len(km.active) and rows[2][2] == "_EPROCESS"
    assert view.dt_text().splitlines()[0].startswith("dt nt!_LIST_ENTRY fffff803`")


def test_user_mode_pointer_and_long_arrays(sim, view, qtbot, monkeypatch):
    m, km, app, worker = sim
    view.show_object(km.thread_object(worker))
    teb = km.teb[id(worker)]
    view.select_path("Tcb.Teb")
    assert view.follow()  # a user-mode address: found in the owning process's space
    assert view.current_object is teb
    model = view.model
    assert model.index_for_path("ClientId.UniqueThread").siblingAtColumn(VALUE).data() == (
        f"0x00000000`{worker.tid:08x} Void")
    peb = model.index_for_path("ProcessEnvironmentBlock")
    assert model.link(peb) == (km.peb[id(app)], "")
    # long arrays come in chunks when the view asks for more (a small chunk here)
    monkeypatch.setattr(object_model, "ARRAY_CHUNK", 100)
    table = model.index_for_path("glDispatchTable")
    assert model.rowCount(table) == 100 and model.canFetchMore(table)
    with qtbot.waitSignal(model.rowsInserted):
        model.fetchMore(table)
    assert model.rowCount(table) == 200
    assert model.index_for_path("glDispatchTable[230]").isValid()  # fetches the rest
    assert model.rowCount(table) == 233 and not model.canFetchMore(table)
    assert cells(model.index(230, 0, table))[:3] == [f"+0x{230 * 8:03x}", "[230]", "Ptr64 Void"]
    view.back()
    assert view.model.index_for_path("ClientId") == QModelIndex()  # an _ETHREAD has no ClientId


def test_unknown_list_is_walked_through_memory():
    space = AddressSpace(catalogue().find(*WIN10))
    a = space.create("_EPROCESS", {"UniqueProcessId": 8}, label="a")
    b = space.create("_EPROCESS", {"UniqueProcessId": 12}, label="b")
    a.set("ActiveProcessLinks.Flink", Ref(b, "ActiveProcessLinks"))
    a.set("ActiveProcessLinks.Blink", Ref(b, "ActiveProcessLinks"))
    b.set("ActiveProcessLinks.Flink", Ref(a, "ActiveProcessLinks"))
    b.set("ActiveProcessLinks.Blink", Ref(a, "ActiveProcessLinks"))
    model = ObjectTreeModel()
    model.set_object(a)
    links = model.index_for_path("ActiveProcessLinks")
    rows = child_rows(model, links)
    assert len(rows) == 3 and rows[2][1:] == [
        "[0]", "_EPROCESS", f"{format_address(b.address_of('ActiveProcessLinks'), 'x64')} "
                            "_EPROCESS b +0x448 ActiveProcessLinks"]
    assert model.link(model.index(2, 0, links)) == (b, "ActiveProcessLinks")
    b.set("ActiveProcessLinks.Flink", None)  # a broken chain says so
    model.set_object(a)
    links = model.index_for_path("ActiveProcessLinks")
    assert child_rows(model, links)[3][1:3] == ["(list)", ""]
    assert "NULL Flink" in child_rows(model, links)[3][3]
    # an empty wait list points to itself: nothing below Flink and Blink
    header = model.index_for_path("Pcb.Header.WaitListHead")
    assert model.rowCount(header) == 2


# ---- Refresh: in place, flashing, lists that change

def test_qtmodeltester_fresh_and_after_refresh(sim, qtmodeltester, clock):
    m, km, app, worker = sim
    fresh = ObjectTreeModel(clock=clock)
    fresh.set_object(km.thread_object(worker))
    qtmodeltester.check(fresh, force_py=False)
    model = ObjectTreeModel(clock=clock)
    model.set_object(km.thread_object(worker))
    assert show_all(model) > 800  # every member of an _ETHREAD and its nested ones, lists included
    m.create_thread(app, program=[P.sleep(ms(5)), P.repeat()])
    m.run_until(ms(120))
    km.sync()
    assert model.refresh() > 0
    qtmodeltester.check(model, force_py=False)


def test_qtmodeltester_watches_list_updates(sim, qtmodeltester, qtbot, clock):
    # The tester stays attached and checks every signal a refresh emits.
    m, km, *_ = sim
    model = ObjectTreeModel(clock=clock)
    model.set_object(km.space.symbol("PsActiveProcessHead"))
    qtmodeltester.check(model, force_py=False)
    before = show_all(model)
    blink = model.index(1, VALUE)
    old_blink = blink.data()
    extra = m.create_process("extra.exe")
    m.create_thread(extra, program=[P.cpu(ms(1))])
    km.sync()
    with qtbot.waitSignal(model.rowsInserted), qtbot.waitSignal(model.dataChanged):
        model.refresh()
    assert model.rowCount() == before + 1 and blink.data() != old_blink  # the new tail
    assert model.index(before, VALUE).data().endswith(f"extra.exe (PID {extra.pid})")
    m.run_until(ms(100))  # it exits, nothing holds a handle: the EPROCESS is deleted
    km.sync()
    with qtbot.waitSignal(model.rowsRemoved), qtbot.assertNotEmitted(model.modelReset):
        model.refresh()
    assert model.rowCount() == before


def test_refresh_updates_values_in_place_and_flashes(sim, view, qtbot, clock):
    m, km, app, worker = sim
    thread = km.thread_object(worker)
    view.show_object(thread)
    model = view.model
    watched = ["Tcb.ContextSwitches", "Tcb.UserTime", "Tcb.CycleTime", "Tcb.Priority", "Cid"]
    before = {p: model.index_for_path(p).siblingAtColumn(VALUE).data() for p in watched}
    changes = []
    model.dataChanged.connect(lambda top, bottom, roles: changes.append((top, bottom, roles)))
    m.run_until(ms(150))
    with qtbot.assertNotEmitted(model.modelReset), qtbot.assertNotEmitted(model.layoutChanged):
        view.refresh()
    after = {p: model.index_for_path(p).siblingAtColumn(VALUE).data() for p in watched}
    assert after["Tcb.ContextSwitches"] == f"0x{worker.cswitches:x}" != before["Tcb.ContextSwitches"]
    assert after["Cid"] == before["Cid"]
    changed = {p for p in watched if after[p] != before[p]}
    reported = {model.row_of(model.index(r, 0, top.parent())).path
                for top, bottom, _ in changes for r in range(top.row(), bottom.row() + 1)}
    assert changed <= reported and "Cid" not in reported
    assert all(top.column() == VALUE == bottom.column() for top, bottom, _ in changes)
    cswitches = model.index_for_path("Tcb.ContextSwitches").siblingAtColumn(VALUE)
    assert model.data(cswitches, FLASH_ROLE)
    assert model.data(cswitches, Qt.ItemDataRole.BackgroundRole) is not None
    assert not model.data(model.index_for_path("Cid").siblingAtColumn(VALUE), FLASH_ROLE)
    assert model.flash_timer.isActive()
    strength = model.data(cswitches, Qt.ItemDataRole.BackgroundRole).alpha()
    clock.now += FLASH_SECONDS / 2
    model.flash_tick()
    assert 0 < model.data(cswitches, Qt.ItemDataRole.BackgroundRole).alpha() < strength  # fading
    clock.now += FLASH_SECONDS
    model.flash_tick()
    assert not model.data(cswitches, FLASH_ROLE)
    assert model.data(cswitches, Qt.ItemDataRole.BackgroundRole) is None
    assert not model.flash_timer.isActive() and model.flashing_count == 0
    # the hex view flashed the bytes that changed, on the same clock
    hex_view = view.hex_view
    offset = km.space.plan("_ETHREAD").field("Tcb.ContextSwitches").offset
    assert hex_view.data() == thread.bytes()
    assert not hex_view.is_flashing(offset)  # its time is over too
    m.run_until(ms(250))
    view.refresh()
    assert hex_view.is_flashing(offset)
    clock.now += FLASH_SECONDS + 0.1
    hex_view.flash_tick()
    assert hex_view.flashing_count == 0


def test_refresh_inserts_and_removes_list_entries(sim, view, qtbot):
    m, km, app, worker = sim
    view.show_object(km.process_object(app))
    model = view.model
    threads = model.index_for_path("ThreadListHead")
    view.tree.expand(threads)
    assert model.rowCount(threads) == 3  # Flink, Blink, the worker
    brief = m.create_thread(app, program=[P.cpu(ms(1))], name="brief")
    km.sync()
    assert km.thread_object(brief) is not None
    with qtbot.waitSignal(model.rowsInserted) as inserted, qtbot.assertNotEmitted(model.modelReset):
        view.refresh()
    assert inserted.args[0] == threads and inserted.args[1] == inserted.args[2] == 3
    assert model.rowCount(threads) == 4
    m.run_until(ms(100))  # it exits; nothing holds a handle: its ETHREAD is deleted
    km.sync()
    assert km.thread_object(brief) is None
    with qtbot.waitSignal(model.rowsRemoved) as removed, qtbot.assertNotEmitted(model.modelReset):
        view.refresh()
    assert removed.args[1] == removed.args[2] == 3 and model.rowCount(threads) == 3


def test_freed_object_shows_why(sim, view):
    m, km, *_ = sim
    short = m.create_process("short.exe")
    m.create_thread(short, program=[P.cpu(ms(1))])
    km.sync()
    view.show_object(km.process_object(short))
    assert view.model.rowCount() > 0
    m.run_until(ms(100))
    km.sync()
    view.refresh()
    assert view.model.rowCount() == 0 and view.model.error
    assert "cannot be shown" in view.message_label.text()
    assert not view.copy_dt_action.isEnabled()


# ---- Another build: same object, new offsets

def test_build_switch_lays_the_object_out_again(sim, view):
    m, km, app, worker = sim
    system = km.process_object(m.processes[4])
    view.show_object(system)
    model = view.model
    view.tree.expand(model.index_for_path("Pcb"))
    view.select_path("UniqueProcessId")
    assert model.index_for_path("UniqueProcessId").data() == "+0x440"
    km.set_build(catalogue().find(*XP))
    view.refresh()
    assert view.current_object is system and model.build.label == "5.1.2600.5512 x86"
    pid = model.index_for_path("UniqueProcessId")
    assert cells(pid) == ["+0x084", "UniqueProcessId", "Ptr32 Void", "0x00000004 Void"]
    assert view.tree.currentIndex() == pid and view.tree.isExpanded(model.index_for_path("Pcb"))
    assert view.hex_view.data() == system.bytes() and len(system.bytes()) == system.size
    assert view.hex_view.highlight() == (0x84, 4)
    assert "5.1.2600.5512 x86" in view.title_label.text()
    assert view.dt_text().splitlines()[0] == f"dt nt!_EPROCESS {system.address:08x}"


# ---- Hex view

def test_hex_view_shows_bytes_and_highlights_selection(sim, view, qtbot):
    m, km, *_ = sim
    system = km.process_object(m.processes[4])
    view.show()
    qtbot.waitExposed(view)
    view.show_object(system)
    hex_view = view.hex_view
    assert hex_view.data() == system.bytes() and hex_view.address == system.address
    data = system.bytes()
    first = hex_view.line_text(0)
    assert first.startswith(format_address(system.address, "x64")[2:] + "  ")
    assert first[19:19 + 47] == " ".join(f"{b:02x}" for b in data[:8]) + "-" + \
        " ".join(f"{b:02x}" for b in data[8:16])
    view.select_path("UniqueProcessId")
    assert hex_view.highlight() == (0x440, 8)
    assert hex_view.line_text(0x440 // BYTES_PER_LINE).split("  ")[1].startswith("04 00 00 00")
    view.select_path("DefaultPagePriority")  # bits 12..14 of Flags2: its second byte
    assert hex_view.highlight() == (0x461, 1)
    # clicking a byte selects the member it belongs to
    fm = QFontMetrics(hex_view.font())
    line = hex_view.verticalScrollBar().value()
    offset = line * BYTES_PER_LINE + 3
    x = (19 + 3 * 3) * fm.horizontalAdvance("0") + 2
    pos = QPoint(x, fm.lineSpacing() // 2)
    assert hex_view.offset_at(pos) == offset
    qtbot.mouseClick(hex_view.viewport(), Qt.MouseButton.LeftButton, pos=pos)
    selected = view.model.row_of(view.tree.currentIndex())
    assert selected.field.offset <= offset < selected.field.offset + selected.field.size
    # grey for bytes no value wrote: Token (not modelled) vs UniqueProcessId
    mask = view.model.modelled_mask()
    assert mask[0x440:0x448] == b"\1" * 8 and mask[0x4b8:0x4c0] == b"\0" * 8


def test_hex_view_alone(qtbot):
    view = HexView()
    qtbot.addWidget(view)
    view.set_bytes(0x89A00080, bytes(range(20)), arch="x86")
    assert view.line_count() == 2
    assert view.line_text(0) == ("89a00080  00 01 02 03 04 05 06 07-08 09 0a 0b 0c 0d 0e 0f  "
                                 "................")
    assert view.line_text(1).startswith("89a00090  10 11 12 13    ")
    view.set_highlight(18, 10)
    assert view.highlight() == (18, 2) and view.highlighted_text() == view.line_text(1)
    view.copy_action.trigger()
    assert QGuiApplication.clipboard().text() == view.line_text(1)
    view.set_highlight(None)
    assert view.highlight() is None


# ---- Copy as dt text

def test_copy_as_dt_text(sim, view):
    m, km, *_ = sim
    system = km.process_object(m.processes[4])
    view.show_object(system)
    view.copy_dt_action.trigger()
    text = QGuiApplication.clipboard().text()
    lines = text.splitlines()
    assert lines[0] == f"dt nt!_EPROCESS {format_address(system.address, 'x64')[2:]}"
    assert len(lines) == 1 + len(system.layout.top_level)
    assert all(DT_LINE.match(line) for line in lines[1:])
    flink, blink = system.field("ActiveProcessLinks").value
    for expected in (
        "   +0x000 Pcb              : _KPROCESS",
        "   +0x440 UniqueProcessId  : 0x00000000`00000004 Void",
        f"   +0x448 ActiveProcessLinks : _LIST_ENTRY [ {format_address(flink, 'x64')} - "
        f"{format_address(blink, 'x64')} ]",
        '   +0x5a8 ImageFileName    : [15]  "System"',
        "   +0x4b8 Token            : _EX_FAST_REF",
        "   +0x550 Peb              : (null) ",
        "   +0x460 JobNotReallyActive : 0y0",
    ):
        assert expected in lines
    # selected rows copy as dt -r lines, indented by depth
    view.select_path("Pcb.BasePriority")
    view.copy_rows_action.trigger()
    assert QGuiApplication.clipboard().text() == "      +0x280 BasePriority     : 8 ''"


def test_actions_have_object_names(view):
    names = {a.objectName() for a in view.actions()}
    assert {"object_back", "object_forward", "object_copy_dt", "object_copy_rows",
            "object_copy_value", "object_follow", "object_expand_all"} <= names
    assert not view.back_action.isEnabled() and not view.copy_dt_action.isEnabled()
    view.show_object(None)
    assert view.model.rowCount() == 0 and "Select a process" in view.message_label.text()

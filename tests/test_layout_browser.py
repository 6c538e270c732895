"""The structure layout browser and its lazy tree model (pytest-qt, offscreen)."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QModelIndex, Qt
from PySide6.QtGui import QFontDatabase, QGuiApplication, QPalette
from PySide6.QtWidgets import QLabel

from core.dt import format_dt
from core.layouts import catalogue
from inspector.layout_browser import LayoutBrowser
from inspector.layout_model import MEMBER, OFFSET, SIZE, TYPE, LayoutTreeModel

WIN10 = ("10.0.19041.3570", "x64")
XP = ("5.1.2600.5512", "x86")
WIN11_24H2 = ("10.0.26100", "x64")  # the "partly inferred" build


def build(which):
    return catalogue().find(*which)


@pytest.fixture
def browser(qtbot):
    widget = LayoutBrowser()
    qtbot.addWidget(widget)
    widget.resize(1100, 700)
    widget.show()
    qtbot.waitExposed(widget)
    return widget


def row(model, index):
    """The four cells of a row, as displayed."""
    return [model.index(index.row(), c, index.parent()).data() for c in range(4)]


def child_names(model, parent):
    return [model.index(r, MEMBER, parent).data() for r in range(model.rowCount(parent))]


def count_rows(model, parent=QModelIndex()):
    """Every row below `parent`, walked through the Qt API as a view would."""
    n = model.rowCount(parent)
    return n + sum(count_rows(model, model.index(r, 0, parent)) for r in range(n))


# ---- The model

@pytest.mark.parametrize("which, type_name", [
    (WIN10, "_EPROCESS"), (XP, "_EPROCESS"), (XP, "_ETHREAD"), (WIN11_24H2, "_KPROCESS"),
    (WIN10, "_LARGE_INTEGER"),
])
def test_model_passes_qtmodeltester(qtmodeltester, which, type_name):
    # Qt's own QAbstractItemModelTester. pytest-qt's pure-Python tester (force_py)
    # passes each case alone, but running several in one process aborts the
    # interpreter at exit (bool_dealloc: a reference PySide6 6.12 drops in its
    # signal connections), so it is not used.
    model = LayoutTreeModel()
    model.set_layout(build(which), type_name)
    qtmodeltester.check(model, force_py=False)
    # Walking every level creates the rows on the way; the tester re-checks after
    # each reset below (a new type, a new build, nothing shown, shown again).
    assert count_rows(model) == model.row_count_below() > len(model.layout.top_level)
    model.set_layout(build(WIN10), "_KTHREAD")
    model.set_layout(build(XP), "_ETHREAD")
    model.clear()
    assert model.rowCount() == 0
    model.set_layout(build(WIN11_24H2), "_EJOB")


def test_model_creates_rows_lazily_without_resets(qtbot):
    model = LayoutTreeModel()
    model.set_layout(build(WIN10), "_EPROCESS")
    pcb = model.index(0, 0)
    node = model.node(pcb)
    assert model.hasChildren(pcb) and node.children is None  # the arrow costs nothing
    with qtbot.assertNotEmitted(model.modelReset), qtbot.assertNotEmitted(model.layoutChanged):
        assert model.rowCount(pcb) == len(build(WIN10).struct("_KPROCESS").top_level)
    assert node.children is not None
    assert model.parent(model.index(3, 2, pcb)) == pcb


def test_leaves_have_no_children_and_pointers_do_not_expand():
    model = LayoutTreeModel()
    model.set_layout(build(WIN10), "_EPROCESS")
    pid = model.index_for_path(("UniqueProcessId",))
    assert not model.hasChildren(pid)
    assert model.flags(pid) & Qt.ItemFlag.ItemNeverHasChildren


# ---- The tree as the user sees it

def test_eprocess_x64_shows_unique_process_id(browser):
    assert browser.build.label == "10.0.19041.3570 x64"
    assert browser.type_name == "_EPROCESS"
    model = browser.tree.model()
    index = model.index_for_path(("UniqueProcessId",))
    assert row(model, index) == ["+0x440", "UniqueProcessId", "Ptr64 Void", "8"]
    assert index.parent() == QModelIndex()
    first = [model.index(0, c).data() for c in range(4)]
    assert first == ["+0x000", "Pcb", "_KPROCESS", "1080"]
    assert [model.headerData(c, Qt.Orientation.Horizontal) for c in range(4)] == \
        ["Offset", "Member", "Type", "Size"]
    # The listing is exactly dt's: same offsets, names and type spellings.
    dt_lines = format_dt(browser.build, "_EPROCESS").splitlines()[1:]
    shown = [model.dt_text(model.index(r, 0)) for r in range(model.rowCount())]
    assert shown == dt_lines


def test_expanding_pcb_shows_kprocess_members(browser):
    model = browser.tree.model()
    pcb = model.index_for_path(("Pcb",))
    browser.tree.expand(pcb)
    assert browser.tree.isExpanded(pcb)
    kprocess = build(WIN10).struct("_KPROCESS")
    assert child_names(model, pcb) == [m.name for m in kprocess.top_level]
    header = model.index(0, 0, pcb)
    assert row(model, header) == ["+0x000", "Header", "_DISPATCHER_HEADER", "24"]
    assert model.hasChildren(header)


def test_nested_offsets_are_relative_with_absolute_tooltip(browser):
    model = browser.tree.model()
    links = model.index_for_path(("ActiveProcessLinks",))
    browser.tree.expand(links)
    blink = model.index_for_path(("ActiveProcessLinks", "Blink"))
    assert row(model, blink) == ["+0x008", "Blink", "Ptr64 _LIST_ENTRY", "8"]
    tip = blink.siblingAtColumn(OFFSET).data(Qt.ItemDataRole.ToolTipRole)
    assert "+0x008 into ActiveProcessLinks (_LIST_ENTRY)" in tip
    assert "+0x450 from the start of _EPROCESS" in tip


def test_bitfields_arrays_and_anonymous_members(browser):
    model = browser.tree.model()
    exit_reported = model.index_for_path(("ExitProcessReported",))
    assert row(model, exit_reported) == ["+0x460", "ExitProcessReported", "Pos 3, 1 Bit", "4"]
    tip = exit_reported.siblingAtColumn(TYPE).data(Qt.ItemDataRole.ToolTipRole)
    assert "Uint4B" in tip and "mask 0x00000008" in tip

    image = model.index_for_path(("ImageFileName",))
    assert row(model, image)[2:] == ["[15] UChar", "15 (15 × 1)"]

    # SecureState is a named member of anonymous type: its dotted children nest.
    secure = model.index_for_path(("Pcb", "SecureState", "Flags", "SecureProcess"))
    assert row(model, secure) == ["+0x000", "SecureProcess", "Pos 0, 1 Bit", "8"]
    state = model.index_for_path(("Pcb", "SecureState"))
    assert row(model, state)[:3] == ["+0x3e0", "SecureState", "<unnamed-tag>"]


def test_arrays_of_structures_expand_into_elements(browser):
    browser.show_type("_KTHREAD")
    model = browser.tree.model()
    layout = build(WIN10).struct("_KTHREAD")
    array = next(m for m in layout.top_level
                 if m.type.kind == "array" and m.type.target.kind == "struct"
                 and build(WIN10).has_struct(m.type.target.name))
    index = model.index_for_path((array.name,))
    browser.tree.expand(index)
    element = build(WIN10).sizeof(array.type.target)
    assert model.rowCount(index) == array.type.count
    second = model.index(1, 0, index)
    assert row(model, second) == [f"+0x{element:03x}", "[1]", array.type.target.name,
                                  str(element)]
    assert model.hasChildren(second)


def test_switching_to_xp_x86_relays_out_the_type(browser, qtbot):
    model = browser.tree.model()
    pcb = model.index_for_path(("Pcb",))
    browser.tree.expand(pcb)
    xp = build(XP)
    with qtbot.waitSignal(browser.sig_build_changed):
        browser.build_combo.setCurrentIndex(catalogue().builds.index(xp))
    assert browser.build is xp
    assert browser.type_name == "_EPROCESS"
    expected = xp.struct("_EPROCESS").member("UniqueProcessId")
    index = model.index_for_path(("UniqueProcessId",))
    assert row(model, index) == [f"+0x{expected.offset:03x}", "UniqueProcessId",
                                 "Ptr32 Void", "4"]
    assert row(model, index)[0] != "+0x440"
    # The expanded Pcb is expanded again in the new layout.
    pcb = model.index_for_path(("Pcb",))
    assert browser.tree.isExpanded(pcb)
    assert child_names(model, pcb) == [m.name for m in xp.struct("_KPROCESS").top_level]


def test_build_combo_lists_every_build(browser):
    combo = browser.build_combo
    assert combo.count() == len(catalogue().builds)
    assert combo.currentText() == "Windows 10 22H2 — 10.0.19041.3570 x64"
    assert combo.findText("Windows XP SP3 — 5.1.2600.5512 x86") >= 0


def test_type_missing_from_new_build_shows_a_message(browser, qtbot):
    win10, xp = build(WIN10), build(XP)
    missing = sorted(set(win10.struct_names) - set(xp.struct_names))[0]
    browser.show_type(missing)
    browser.set_build(xp)
    assert browser.missing_label.isVisible()
    assert not browser.tree.isVisible()
    assert missing in browser.missing_label.text()
    assert "5.1.2600.5512 x86" in browser.missing_label.text()
    assert browser.tree.model().rowCount() == 0
    assert not browser.copy_dt_action.isEnabled()
    browser.set_build(win10)  # the remembered type comes back
    assert browser.tree.isVisible()
    assert browser.tree.model().layout.name == missing


def test_filter_box_filters_types(browser, qtbot):
    qtbot.keyClicks(browser.filter_edit, "thread")
    shown = [browser.type_list.model().index(r, 0).data()
             for r in range(browser.type_list.model().rowCount())]
    assert shown == ["_ETHREAD", "_KTHREAD"]
    assert browser.type_name == "_EPROCESS"  # filtering alone does not switch the type
    browser.filter_edit.clear()
    assert browser.type_list.model().rowCount() == len(build(WIN10).struct_names)
    qtbot.keyClicks(browser.filter_edit, "KAPC_s")
    qtbot.keyClick(browser.filter_edit, Qt.Key.Key_Return)  # Enter opens the first match
    assert browser.type_name == "_KAPC_STATE"
    assert browser.tree.model().layout.name == "_KAPC_STATE"


def test_choosing_a_type_in_the_list_shows_it(browser):
    types = browser.type_list.model()
    kthread = next(types.index(r, 0) for r in range(types.rowCount())
                   if types.index(r, 0).data() == "_KTHREAD")
    browser.type_list.setCurrentIndex(kthread)
    assert browser.tree.model().layout.name == "_KTHREAD"
    assert browser.tree.model().index(0, MEMBER).data() == "Header"


def test_copy_as_dt_text(browser, qtbot):
    assert browser.copy_dt_action.shortcut().toString() == "Ctrl+Shift+C"
    browser.copy_dt_action.trigger()
    assert QGuiApplication.clipboard().text() == format_dt(build(WIN10), "_EPROCESS")
    browser.set_build(build(XP))
    browser.copy_dt_action.trigger()
    assert QGuiApplication.clipboard().text() == format_dt(build(XP), "_EPROCESS")


def test_copy_rows_as_dt_lines(browser):
    model = browser.tree.model()
    browser.tree.setCurrentIndex(model.index_for_path(("UniqueProcessId",)))
    browser.copy_rows_action.trigger()
    line = QGuiApplication.clipboard().text()
    assert line in format_dt(build(WIN10), "_EPROCESS").splitlines()
    assert line == "   +0x440 UniqueProcessId  : Ptr64 Void"


def test_open_member_type_and_go_back(browser):
    model = browser.tree.model()
    browser.tree.setCurrentIndex(model.index_for_path(("Peb",)))  # Ptr64 _PEB
    assert browser.open_type_action.isEnabled()
    browser.open_type_action.trigger()
    assert browser.type_name == "_PEB"
    assert browser.type_list.currentIndex().data() == "_PEB"
    browser.back_action.trigger()
    assert browser.type_name == "_EPROCESS"
    browser.forward_action.trigger()
    assert browser.type_name == "_PEB"


def test_expand_all(browser):
    browser.expand_all_action.trigger()
    model = browser.tree.model()
    header = model.index_for_path(("Pcb", "Header"))
    assert browser.tree.isExpanded(header)
    browser.collapse_all_action.trigger()
    assert not browser.tree.isExpanded(model.index_for_path(("Pcb",)))


def test_flagged_members_look_different_and_say_why(browser):
    browser.set_build(build(WIN11_24H2))
    model = browser.tree.model()
    grey = QGuiApplication.palette().color(QPalette.ColorRole.PlaceholderText)

    pid = model.index_for_path(("UniqueProcessId",))  # flag T
    assert pid.data(Qt.ItemDataRole.FontRole).italic()
    assert pid.data(Qt.ItemDataRole.ForegroundRole) == grey
    tip = pid.siblingAtColumn(TYPE).data(Qt.ItemDataRole.ToolTipRole)
    assert "Type filled in by KOI from Windows" in tip

    layout = build(WIN11_24H2).struct("_EPROCESS")
    inferred = next(m for m in layout.top_level if m.flags == "B")
    tip = model.index_for_path((inferred.name,)).data(Qt.ItemDataRole.ToolTipRole)
    assert "Bit position inferred" in tip
    unknown = next(m for m in layout.top_level if m.flags == "U")
    tip = model.index_for_path((unknown.name,)).siblingAtColumn(SIZE).data(
        Qt.ItemDataRole.ToolTipRole)
    assert "Bit position not recorded by the source" in tip

    plain = model.index_for_path(("Pcb",))
    assert not plain.data(Qt.ItemDataRole.FontRole).italic()
    assert plain.data(Qt.ItemDataRole.ForegroundRole) is None


def test_offsets_and_types_use_a_fixed_pitch_font(browser):
    fixed = QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont)
    index = browser.tree.model().index(0, 0)
    for column in (OFFSET, TYPE, SIZE):
        assert index.siblingAtColumn(column).data(Qt.ItemDataRole.FontRole) == fixed


def test_flag_legend_shows_only_where_flagged_members_are(browser):
    legend = browser.findChild(QLabel, "flag_legend")
    assert not legend.isVisible()  # no flagged member in or below _EPROCESS here
    browser.show_type("_KAPC")  # KOI filled its routine pointers' return types
    assert legend.isVisible()
    browser.set_build(build(WIN11_24H2))
    browser.show_type("_EPROCESS")
    assert legend.isVisible()


def test_filter_survives_a_build_switch(browser, qtbot):
    qtbot.keyClicks(browser.filter_edit, "kthread")
    browser.set_build(build(XP))
    assert browser.filter_edit.text() == "kthread"
    assert browser.type_list.model().rowCount() == 1
    assert browser.tree.model().layout.name == "_EPROCESS"  # still shown, not listed


def test_copy_as_dt_keyboard_shortcut(browser, qtbot):
    browser.activateWindow()
    qtbot.waitActive(browser)
    browser.tree.setFocus()
    QGuiApplication.clipboard().clear()
    qtbot.keyClick(browser.tree, Qt.Key.Key_C,
                   Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    assert QGuiApplication.clipboard().text() == format_dt(build(WIN10), "_EPROCESS")


def test_a_supplementary_layout_says_where_it_comes_from(browser):
    title = browser.findChild(QLabel, "type_title")
    browser.show_type("_EPROCESS")
    assert "supplementary" not in title.text() and title.toolTip() == ""
    browser.show_type("_NT_TIB")  # no build's own data has it: winnt.h lays it out
    assert browser.tree.model().layout.name == "_NT_TIB"
    assert "supplementary layout" in title.text()
    assert "winnt.h" in title.toolTip()

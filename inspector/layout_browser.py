"""The structure layout browser: WinDbg's ``dt`` as a window.

A build selector, a filterable list of the build's structures, and the chosen
structure as a lazily expanded tree (`LayoutTreeModel`).
"""

from __future__ import annotations

import re

from PySide6.QtCore import (
    QItemSelectionModel, QModelIndex, QSortFilterProxyModel, QStringListModel, Qt, Signal,
)
from PySide6.QtGui import (
    QAction, QFontDatabase, QFontMetrics, QGuiApplication, QKeySequence, QPalette,
)
from PySide6.QtWidgets import (
    QAbstractItemView, QComboBox, QFrame, QHBoxLayout, QHeaderView, QLabel, QLineEdit, QListView, QMenu,
    QSplitter, QStackedWidget, QTreeView, QVBoxLayout, QWidget,
)

from core.dt import format_dt
from core.layouts import Build, Catalogue, StructLayout, catalogue
from inspector.layout_model import MEMBER, OFFSET, TYPE, LayoutTreeModel, build_title

DEFAULT_TYPE = "_EPROCESS"


class LayoutBrowser(QWidget):
    """Browse the structure layouts of every shipped build."""

    sig_build_changed = Signal(object)
    """The selected Build changed (also emitted once at start-up)."""

    sig_message = Signal(str)
    """A short confirmation for a status bar (e.g. what was copied)."""

    def __init__(self, cat: Catalogue | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._catalogue = cat or catalogue()
        self._build: Build = self._catalogue.find()
        self._type = DEFAULT_TYPE
        self._back: list[str] = []
        self._forward: list[str] = []
        self._syncing_list = False
        self._mono = QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont)

        self._build_combo = QComboBox()
        self._build_combo.setObjectName("build_combo")
        self._build_combo.setToolTip("Windows build whose structure layouts are shown")
        self._build_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self._build_combo.setMaxVisibleItems(30)
        for i, build in enumerate(self._catalogue.builds):
            self._build_combo.addItem(build_title(build), i)
            self._build_combo.setItemData(i, _build_tooltip(build), Qt.ItemDataRole.ToolTipRole)

        self._filter = QLineEdit()
        self._filter.setObjectName("type_filter")
        self._filter.setPlaceholderText("Filter types")
        self._filter.setClearButtonEnabled(True)
        self._filter.setToolTip("Show only the types whose name contains this text "
                                "(any case); Enter opens the first match")

        self._names = QStringListModel(self)
        self._proxy = QSortFilterProxyModel(self)
        self._proxy.setSourceModel(self._names)
        self._proxy.setFilterCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        self._types = QListView()
        self._types.setObjectName("type_list")
        self._types.setModel(self._proxy)
        self._types.setFont(self._mono)
        self._types.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self._types.setUniformItemSizes(True)

        self._title = QLabel()
        self._title.setObjectName("type_title")
        self._title.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        self.model = LayoutTreeModel(self)
        self._tree = QTreeView()
        self._tree.setObjectName("layout_tree")
        self._tree.setModel(self.model)
        self._tree.setUniformRowHeights(True)
        self._tree.setAlternatingRowColors(True)
        self._tree.setAllColumnsShowFocus(True)
        self._tree.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self._tree.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        header = self._tree.header()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setStretchLastSection(True)  # sizes stay next to their types
        header.setDefaultAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
        self._size_columns()

        self._missing = QLabel()
        self._missing.setObjectName("missing_type")
        self._missing.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self._missing.setWordWrap(True)
        # Framed on the view's background, so it reads as the tree's place.
        self._missing.setFrameShape(QFrame.Shape.StyledPanel)
        self._missing.setBackgroundRole(QPalette.ColorRole.Base)
        self._missing.setAutoFillBackground(True)
        self._stack = QStackedWidget()
        self._stack.addWidget(self._tree)
        self._stack.addWidget(self._missing)

        self._legend = QLabel("<i>Italic grey rows</i> were filled in by KOI or inferred by "
                              "the layout source; hover one for details.")
        self._legend.setObjectName("flag_legend")

        self._make_actions()
        self._lay_out()

        self._build_combo.currentIndexChanged.connect(self._on_build_chosen)
        self._filter.textChanged.connect(self._on_filter_changed)
        self._filter.returnPressed.connect(self._on_filter_return)
        self._types.selectionModel().currentChanged.connect(self._on_type_chosen)
        self._tree.customContextMenuRequested.connect(self._on_context_menu)
        self._tree.expanded.connect(lambda _ix: self._tree.resizeColumnToContents(OFFSET))
        self._tree.selectionModel().currentChanged.connect(lambda *_: self._update_actions())

        self._build_combo.setCurrentIndex(self._catalogue.builds.index(self._build))
        self._apply_build(self._build)

    # ---- Layout and actions

    def _lay_out(self) -> None:
        top = QHBoxLayout()
        label = QLabel("&Build:")
        label.setBuddy(self._build_combo)
        top.addWidget(label)
        top.addWidget(self._build_combo)
        top.addStretch(1)

        left = QWidget()
        left_box = QVBoxLayout(left)
        left_box.setContentsMargins(0, 0, 0, 0)
        left_box.addWidget(self._filter)
        left_box.addWidget(self._types)

        right = QWidget()
        right_box = QVBoxLayout(right)
        right_box.setContentsMargins(0, 0, 0, 0)
        right_box.addWidget(self._title)
        right_box.addWidget(self._stack, 1)
        right_box.addWidget(self._legend)

        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.addWidget(left)
        self.splitter.addWidget(right)
        self.splitter.setStretchFactor(0, 0)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setChildrenCollapsible(False)
        self.splitter.setSizes([self._types.fontMetrics().horizontalAdvance("_" * 36), 900])

        box = QVBoxLayout(self)
        box.addLayout(top)
        box.addWidget(self.splitter, 1)

    def _make_actions(self) -> None:
        def action(text: str, slot, shortcut=None, tip: str = "") -> QAction:
            act = QAction(text, self)
            # "Copy as &dt Text" -> layout_copy_as_dt_text: names for tests and macros
            act.setObjectName("layout_" + re.sub(r"\W+", "_", text.replace("&", "")).strip("_").lower())
            if shortcut is not None:
                act.setShortcut(QKeySequence(shortcut))
            act.setStatusTip(tip)
            act.triggered.connect(slot)
            # shortcuts work inside the browser only: the object view uses the same keys
            act.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            self.addAction(act)
            return act

        self.copy_dt_action = action(
            "Copy as &dt Text", self.copy_dt_text, "Ctrl+Shift+C",
            "Copy the shown type as WinDbg's dt nt!TYPE prints it")
        self.copy_rows_action = action(
            "&Copy Rows", self.copy_rows, QKeySequence.StandardKey.Copy,
            "Copy the selected rows as dt -r lines")
        self.find_type_action = action(
            "&Find Type…", self.focus_filter, QKeySequence.StandardKey.Find,
            "Filter the list of types")
        self.open_type_action = action(
            "&Open Member's Type", self.open_current_type, "F12",
            "Show the structure the current member is or points to")
        self.back_action = action("&Back", self.go_back, QKeySequence.StandardKey.Back,
                                  "Show the previously shown type")
        self.forward_action = action("&Forward", self.go_forward,
                                     QKeySequence.StandardKey.Forward,
                                     "Show the type shown before going back")
        self.expand_all_action = action("&Expand All", self.expand_all, None,
                                        "Expand every nested member of the shown type")
        self.collapse_all_action = action("C&ollapse All", self._tree.collapseAll, None,
                                          "Collapse every nested member")

    def _size_columns(self) -> None:
        text = self._tree.fontMetrics()
        mono = QFontMetrics(self._mono)
        # Room for two levels of nesting; expanding deeper widens the column.
        self._tree.setColumnWidth(OFFSET, self._tree.indentation() * 3
                                  + mono.horizontalAdvance("+0x0000"))
        self._tree.setColumnWidth(MEMBER, text.horizontalAdvance("ProcessQuotaUsage") * 2)
        self._tree.setColumnWidth(TYPE, mono.horizontalAdvance("Ptr64 _ALPC_PROCESS_CONTEXT")
                                  * 3 // 2)

    # ---- Public API

    @property
    def build(self) -> Build:
        return self._build

    @property
    def type_name(self) -> str:
        """The selected type (possibly absent from the current build)."""
        return self._type

    @property
    def tree(self) -> QTreeView:
        return self._tree

    @property
    def type_list(self) -> QListView:
        return self._types

    @property
    def filter_edit(self) -> QLineEdit:
        return self._filter

    @property
    def build_combo(self) -> QComboBox:
        return self._build_combo

    @property
    def missing_label(self) -> QLabel:
        return self._missing

    def set_build(self, build: Build) -> None:
        """Select `build`; the shown type is laid out again for it."""
        self._build_combo.setCurrentIndex(self._catalogue.builds.index(build))

    def show_type(self, name: str) -> None:
        """Show structure `name` of the current build (case-insensitive)."""
        if self._build.has_struct(name):
            name = self._build.struct(name).name
        if name != self._type:
            self._back.append(self._type)
            self._forward.clear()
        self._type = name
        self._select_in_list(name)
        self._show_current()

    def copy_dt_text(self) -> None:
        if not self._build.has_struct(self._type):
            return
        text = format_dt(self._build, self._type)
        QGuiApplication.clipboard().setText(text)
        self.sig_message.emit(f"Copied dt nt!{self._type} ({text.count(chr(10))} members)")

    def copy_rows(self) -> None:
        rows = sorted(self._tree.selectionModel().selectedRows(OFFSET), key=self._visual_order)
        if not rows:
            return
        QGuiApplication.clipboard().setText("\n".join(self.model.dt_text(ix) for ix in rows))
        self.sig_message.emit(f"Copied {len(rows)} row{'s' if len(rows) != 1 else ''}")

    def focus_filter(self) -> None:
        self._filter.setFocus(Qt.FocusReason.ShortcutFocusReason)
        self._filter.selectAll()

    def open_current_type(self) -> None:
        target = self._target_type(self._tree.currentIndex())
        if target:
            self.show_type(target)

    def go_back(self) -> None:
        if self._back:
            self._forward.append(self._type)
            self._type = self._back.pop()
            self._select_in_list(self._type)
            self._show_current()

    def go_forward(self) -> None:
        if self._forward:
            self._back.append(self._type)
            self._type = self._forward.pop()
            self._select_in_list(self._type)
            self._show_current()

    def expand_all(self) -> None:
        rows = self.model.row_count_below()
        self._tree.expandAll()
        self._tree.resizeColumnToContents(OFFSET)
        self.sig_message.emit(f"Expanded {rows} rows")

    # ---- Handlers

    def _on_build_chosen(self, combo_index: int) -> None:
        if combo_index < 0:
            return
        build = self._catalogue.builds[self._build_combo.itemData(combo_index)]
        if build is not self._build:
            self._apply_build(build)

    def _apply_build(self, build: Build) -> None:
        expanded, current = self._view_state()
        self._build = build
        self._syncing_list = True
        try:
            self._names.setStringList(build.struct_names)
        finally:
            self._syncing_list = False
        self._select_in_list(self._type)
        self._show_current()
        self._restore_view_state(expanded, current)
        self.sig_build_changed.emit(build)

    def _on_type_chosen(self, current: QModelIndex, _previous: QModelIndex) -> None:
        if current.isValid() and not self._syncing_list:
            name = current.data()
            if name != self._type or self.model.layout is None:
                self.show_type(name)

    def _on_filter_changed(self, text: str) -> None:
        # Filtering out the current row moves the list's current index to a
        # neighbour; that is not the user choosing a type.
        self._syncing_list = True
        try:
            self._proxy.setFilterFixedString(text)
        finally:
            self._syncing_list = False
        self._select_in_list(self._type)

    def _on_filter_return(self) -> None:
        if self._proxy.rowCount() > 0:
            first = self._proxy.index(0, 0)
            self._types.setCurrentIndex(first)
            self._tree.setFocus(Qt.FocusReason.OtherFocusReason)

    def _on_context_menu(self, pos) -> None:
        self._update_actions()
        menu = QMenu(self)
        menu.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        menu.addAction(self.copy_rows_action)
        menu.addAction(self.copy_dt_action)
        menu.addSeparator()
        menu.addAction(self.open_type_action)
        menu.addSeparator()
        menu.addAction(self.expand_all_action)
        menu.addAction(self.collapse_all_action)
        menu.popup(self._tree.viewport().mapToGlobal(pos))

    # ---- Helpers

    def _show_current(self) -> None:
        build = self._build
        if build.has_struct(self._type):
            self.model.set_layout(build, self._type)
            layout = self.model.layout
            # a supplementary layout is not from this build's symbols: say where it is from
            source = build.struct_source(layout.name)
            supplemented = source != build.source
            self._title.setText(
                f"<b style='font-family:monospace'>nt!{layout.name}</b>&nbsp;&nbsp;"
                f"{layout.kind}, 0x{layout.size:x} ({layout.size}) bytes, "
                f"{len(layout.top_level)} members &nbsp;·&nbsp; {build_title(build)}"
                + (" &nbsp;·&nbsp; <i>supplementary layout</i>" if supplemented else ""))
            self._title.setToolTip(f"Not in this build's layout data; laid out from {source}"
                                   if supplemented else "")
            self._fit_member_column(layout)
            self._stack.setCurrentWidget(self._tree)
            self._legend.setVisible(_reaches_flagged_member(build, layout))
        else:
            self.model.clear()
            self._title.setText(f"<b style='font-family:monospace'>nt!{self._type}</b>")
            self._missing.setText(
                f"<p><b>{self._type}</b> is not among the layouts shipped for "
                f"{build_title(build)}.</p><p>This build has {len(build.struct_names)} "
                f"types: choose one from the list, or another build.</p>")
            self._stack.setCurrentWidget(self._missing)
            self._legend.setVisible(False)
        self._update_actions()

    def _fit_member_column(self, layout: StructLayout) -> None:
        """Widen the Member column to the longest top-level name (within reason);
        the user's own wider setting is kept."""
        fm = self._tree.fontMetrics()
        longest = max((fm.horizontalAdvance(m.name) for m in layout.top_level), default=0)
        wanted = min(longest + 4 * fm.averageCharWidth(), 30 * fm.averageCharWidth() + 200)
        if wanted > self._tree.columnWidth(MEMBER):
            self._tree.setColumnWidth(MEMBER, wanted)

    def _select_in_list(self, name: str) -> None:
        rows = self._names.stringList()
        index = QModelIndex()
        if name in rows:  # and not hidden by the filter
            index = self._proxy.mapFromSource(self._names.index(rows.index(name), 0))
        self._syncing_list = True  # the caller shows the type itself
        try:
            self._types.selectionModel().setCurrentIndex(
                index, QItemSelectionModel.SelectionFlag.ClearAndSelect)
        finally:
            self._syncing_list = False
        if index.isValid():
            self._types.scrollTo(index)

    def _update_actions(self) -> None:
        shown = self.model.layout is not None
        self.copy_dt_action.setEnabled(shown)
        self.expand_all_action.setEnabled(shown)
        self.collapse_all_action.setEnabled(shown)
        self.back_action.setEnabled(bool(self._back))
        self.forward_action.setEnabled(bool(self._forward))
        target = self._target_type(self._tree.currentIndex()) if shown else None
        self.open_type_action.setEnabled(bool(target))
        self.open_type_action.setText(f"&Open {target}" if target else "&Open Member's Type")

    def _target_type(self, index: QModelIndex) -> str | None:
        """The structure a row is, contains or points to, if this build has it."""
        if not index.isValid():
            return None
        node = self.model.node(index)
        t = node.member.type if node.member is not None else None
        while t is not None and t.kind in ("pointer", "array"):
            t = t.target
        if t is None and node.expand is not None and node.expand[0] == "struct":
            return node.expand[1].name
        if t is not None and t.kind == "struct" and self._build.has_struct(t.name):
            return self._build.struct(t.name).name
        return None

    def _visual_order(self, index: QModelIndex) -> tuple[int, ...]:
        rows = []
        while index.isValid():
            rows.append(index.row())
            index = index.parent()
        return tuple(reversed(rows))

    def _view_state(self) -> tuple[list[tuple[str, ...]], tuple[str, ...] | None]:
        """Expanded rows and the current row, by member path (survives a rebuild)."""
        expanded = []
        pending = [QModelIndex()]
        while pending:
            parent = pending.pop()
            for row in range(self.model.rowCount(parent)):
                index = self.model.index(row, 0, parent)
                if self._tree.isExpanded(index):
                    expanded.append(self.model.node(index).path)
                    pending.append(index)
        current = self._tree.currentIndex()
        return expanded, (self.model.node(current).path if current.isValid() else None)

    def _restore_view_state(self, expanded: list[tuple[str, ...]],
                            current: tuple[str, ...] | None) -> None:
        if self.model.layout is None:
            return
        for path in sorted(expanded, key=len):
            index = self.model.index_for_path(path)
            if index.isValid():
                self._tree.expand(index)
        if current is not None:
            index = self.model.index_for_path(current)
            if index.isValid():
                self._tree.setCurrentIndex(index)
                self._tree.scrollTo(index)


def _build_tooltip(build: Build) -> str:
    return (f"{build.name} {build.id} {build.arch}\nBit positions: {build.bit_positions}\n"
            f"Source: {build.source_format}\nLicence: {build.licence}")


def _reaches_flagged_member(build: Build, layout: StructLayout) -> bool:
    """Does `layout`, or a structure nested in it, have a flagged (T/B/U) member?"""
    seen, pending = set(), [layout]
    while pending:
        current = pending.pop()
        if current.name in seen:
            continue
        seen.add(current.name)
        for m in current.members:
            if m.flags:
                return True
            t = m.type
            while t.kind == "array":
                t = t.target
            if t.kind == "struct" and build.has_struct(t.name):
                pending.append(build.struct(t.name))
    return False

"""The object inspector: one kernel object's structure tree and its bytes.

`ObjectView` shows a `core.memory.KObject` (the _EPROCESS of the selected process,
an _ETHREAD, a _PEB, …) as WinDbg's ``dt nt!TYPE address`` would, with live values
(`ObjectTreeModel`), above a hex view of the same bytes (`HexView`) where the
selected member is highlighted. Pointers are links: double-click (or Enter) opens
the object they point at, with back/forward history like a browser. The view
holds no build of its own: it shows whatever build the object's address space is
laid out by, and lays the object out again the moment that changes.

The main window calls `show_object()` when the selection changes and `refresh()`
after the simulation advanced.
"""

from __future__ import annotations

import html
import time
from dataclasses import dataclass, field
from typing import Callable

from PySide6.QtCore import QModelIndex, Qt, Signal
from PySide6.QtGui import QAction, QFontDatabase, QFontMetrics, QGuiApplication, QKeySequence
from PySide6.QtWidgets import (
    QAbstractItemView, QHBoxLayout, QLabel, QMenu, QSplitter, QStackedWidget, QStyle, QToolButton,
    QTreeView, QVBoxLayout, QWidget,
)

from core.memory import KObject
from inspector.hex_view import HexView
from inspector.object_model import FIELD, OFFSET, TYPE, VALUE, ObjectTreeModel

HISTORY_LIMIT = 100
EMPTY_TEXT = ("Select a process or thread to see its kernel structure here, "
              "as WinDbg's dt shows it.")


@dataclass
class _Visit:
    """One place in the history: an object, and how the tree looked there."""

    object: KObject
    selected: str | None = None
    expanded: list[str] = field(default_factory=list)


class ObjectView(QWidget):
    """A kernel object's members (tree) and bytes (hex), with history."""

    objectActivated = Signal(object)
    """The user followed a link to this KObject (the view has opened it already)."""

    sig_message = Signal(str)
    """A short confirmation for a status bar (e.g. what was copied)."""

    def __init__(self, parent: QWidget | None = None, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(parent)
        self._current: _Visit | None = None
        self._back: list[_Visit] = []
        self._forward: list[_Visit] = []
        self._mono = QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont)

        self.model = ObjectTreeModel(self, clock=clock)
        self._tree = QTreeView()
        self._tree.setObjectName("object_tree")
        self._tree.setModel(self.model)
        self._tree.setUniformRowHeights(True)
        self._tree.setAllColumnsShowFocus(True)
        self._tree.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self._tree.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self._tree.header().setStretchLastSection(True)

        self._hex = HexView(clock=clock)
        self._hex.setObjectName("object_hex")

        self._title = QLabel()
        self._title.setObjectName("object_title")
        self._title.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        self._message = QLabel(EMPTY_TEXT)
        self._message.setObjectName("object_message")
        self._message.setWordWrap(True)
        self._message.setAlignment(Qt.AlignmentFlag.AlignCenter)

        self.splitter = QSplitter(Qt.Orientation.Vertical)
        self.splitter.setObjectName("object_splitter")
        self.splitter.addWidget(self._tree)
        self.splitter.addWidget(self._hex)
        self.splitter.setStretchFactor(0, 3)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setChildrenCollapsible(True)

        self._stack = QStackedWidget()
        self._stack.addWidget(self.splitter)
        self._stack.addWidget(self._message)
        self._stack.setCurrentWidget(self._message)

        self._make_actions()
        self._lay_out()
        self._size_columns()

        self._tree.selectionModel().currentChanged.connect(self._on_current_changed)
        self._tree.activated.connect(self.follow)
        self._tree.customContextMenuRequested.connect(self._on_context_menu)
        self._hex.offsetClicked.connect(self._on_offset_clicked)
        self.model.modelReset.connect(self._update_actions)
        self._update_actions()

    # ---- Layout and actions

    def _lay_out(self) -> None:
        top = QHBoxLayout()
        top.setContentsMargins(0, 0, 0, 0)
        for action in (self.back_action, self.forward_action):
            button = QToolButton()
            button.setDefaultAction(action)
            button.setAutoRaise(True)
            top.addWidget(button)
        top.addWidget(self._title, 1)
        copy = QToolButton()
        copy.setDefaultAction(self.copy_dt_action)
        copy.setAutoRaise(True)
        copy.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        top.addWidget(copy)
        box = QVBoxLayout(self)
        box.setContentsMargins(0, 0, 0, 0)
        box.addLayout(top)
        box.addWidget(self._stack, 1)

    def _make_actions(self) -> None:
        def action(name: str, text: str, slot, shortcut=None, tip: str = "", icon=None) -> QAction:
            act = QAction(text, self)
            act.setObjectName(name)
            if icon is not None:
                act.setIcon(self.style().standardIcon(icon))
            if shortcut is not None:
                act.setShortcut(QKeySequence(shortcut))
                # only while the inspector has focus: the layout browser uses the same keys
                act.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            act.setStatusTip(tip)
            act.setToolTip(tip)
            act.triggered.connect(lambda _checked=False: slot())
            self.addAction(act)
            return act

        self.back_action = action("object_back", "&Back", self.back, QKeySequence.StandardKey.Back,
                                  "Show the previously shown object", QStyle.StandardPixmap.SP_ArrowBack)
        self.forward_action = action("object_forward", "&Forward", self.forward,
                                     QKeySequence.StandardKey.Forward,
                                     "Show the object shown before going back",
                                     QStyle.StandardPixmap.SP_ArrowForward)
        self.copy_dt_action = action("object_copy_dt", "Copy as &dt Text", self.copy_dt_text,
                                     "Ctrl+Shift+C",
                                     "Copy the object as WinDbg's dt nt!TYPE address prints it, "
                                     "with values")
        self.copy_rows_action = action("object_copy_rows", "&Copy Rows", self.copy_rows,
                                       QKeySequence.StandardKey.Copy,
                                       "Copy the selected rows as dt -r lines with values")
        self.copy_value_action = action("object_copy_value", "Copy &Value", self.copy_value, None,
                                        "Copy the current row's value")
        self.follow_action = action("object_follow", "&Open Pointed-to Object", self.follow, None,
                                    "Open the object the current pointer or list entry leads to")
        self.expand_all_action = action("object_expand_all", "&Expand All", self.expand_all, None,
                                        "Expand the nested members of the current row")

    def _size_columns(self) -> None:
        text = self._tree.fontMetrics()
        mono = QFontMetrics(self._mono)
        self._tree.setColumnWidth(OFFSET, self._tree.indentation() * 3 + mono.horizontalAdvance("+0x0000"))
        self._tree.setColumnWidth(FIELD, text.horizontalAdvance("ProcessQuotaUsage") * 3 // 2)
        self._tree.setColumnWidth(TYPE, mono.horizontalAdvance("Ptr64 _EPROCESS_QUOTA"))
        self._tree.setColumnWidth(VALUE, mono.horizontalAdvance("0xffffb80c`4f203040 → _EPROCESS System"))

    # ---- Public API

    @property
    def tree(self) -> QTreeView:
        return self._tree

    @property
    def hex_view(self) -> HexView:
        return self._hex

    @property
    def title_label(self) -> QLabel:
        return self._title

    @property
    def message_label(self) -> QLabel:
        return self._message

    @property
    def current_object(self) -> KObject | None:
        return self._current.object if self._current is not None else None

    @property
    def history(self) -> tuple[list[KObject], list[KObject]]:
        """(objects back, objects forward), nearest last / nearest first."""
        return [v.object for v in self._back], [v.object for v in reversed(self._forward)]

    def show_object(self, obj: KObject | None, select: str | None = None) -> None:
        """Show `obj` (None: nothing), selecting member `select`; the object shown so
        far goes on the back history. Showing the current object again only selects."""
        if obj is not None and self._current is not None and obj is self._current.object:
            if select is not None:
                self.select_path(select)
            return
        if self._current is not None:
            self._remember()
            self._back.append(self._current)
            del self._back[:-HISTORY_LIMIT]
        self._forward.clear()
        self._current = _Visit(obj, select) if obj is not None else None
        self._display()

    def refresh(self) -> None:
        """Re-read the shown object after the simulation advanced: changed values are
        updated in place (and flash); a new build lays the object out again."""
        if self._current is None:
            return
        if not self.model.layout_is_current():
            self._remember()
            self._display()
            return
        if self.model.error is not None:
            return
        self.model.refresh()
        if self.model.error is not None:  # freed while shown
            self._display()
            return
        self._update_hex()

    def back(self) -> None:
        if not self._back:
            return
        self._remember()
        self._forward.append(self._current)
        self._current = self._back.pop()
        self._display()

    def forward(self) -> None:
        if not self._forward:
            return
        self._remember()
        self._back.append(self._current)
        self._current = self._forward.pop()
        self._display()

    def follow(self, index: QModelIndex | None = None) -> bool:
        """Open what the row at `index` (default: the current row) links to; False
        when it links nowhere."""
        if index is None or not isinstance(index, QModelIndex):
            index = self._tree.currentIndex()
        link = self.model.link(index)
        if link is None:
            return False
        target, member = link
        if target is self.current_object:
            self.select_path(member)
            return True
        self.show_object(target, select=member or None)
        self.objectActivated.emit(target)
        return True

    def select_path(self, path: str, *, center: bool = False) -> bool:
        """Make member `path` the current row (expanding its parents); `center`
        scrolls it to the middle even when it is visible already."""
        index = self.model.index_for_path(path) if path else QModelIndex()
        if not index.isValid():
            return False
        parent = index.parent()
        while parent.isValid():
            self._tree.expand(parent)
            parent = parent.parent()
        self._tree.setCurrentIndex(index)
        self._tree.scrollTo(index, QAbstractItemView.ScrollHint.PositionAtCenter if center
                            else QAbstractItemView.ScrollHint.EnsureVisible)
        return True

    def dt_text(self) -> str:
        return self.model.dt_text()

    def copy_dt_text(self) -> None:
        text = self.model.dt_text()
        if not text:
            return
        QGuiApplication.clipboard().setText(text)
        self.sig_message.emit(f"Copied {text.splitlines()[0]} ({text.count(chr(10))} members)")

    def copy_rows(self) -> None:
        rows = sorted(self._tree.selectionModel().selectedRows(0), key=self._visual_order)
        lines = self.model.dt_lines(rows)
        if not lines:
            return
        QGuiApplication.clipboard().setText("\n".join(lines))
        self.sig_message.emit(f"Copied {len(lines)} row{'s' if len(lines) != 1 else ''}")

    def copy_value(self) -> None:
        index = self._tree.currentIndex()
        if not index.isValid():
            return
        text = index.siblingAtColumn(VALUE).data() or ""
        QGuiApplication.clipboard().setText(text)
        self.sig_message.emit("Copied the value")

    def expand_all(self) -> None:
        index = self._tree.currentIndex()
        if index.isValid():
            self._tree.expandRecursively(index.siblingAtColumn(0), 4)

    # ---- Handlers

    def _on_current_changed(self, current: QModelIndex, _previous: QModelIndex) -> None:
        span = self.model.byte_range(current)
        if span is None:
            self._hex.set_highlight(None)
        else:
            self._hex.set_highlight(*span)
        self._update_actions()

    def _on_offset_clicked(self, offset: int) -> None:
        obj = self.current_object
        if obj is None or self.model.error is not None:
            return
        where = obj.space.locate(obj.address + offset, process=self.model.process_context)
        if where is not None and where.object is obj and where.region == "body" and where.path:
            self.select_path(where.path)

    def _on_context_menu(self, pos) -> None:
        self._update_actions()
        menu = QMenu(self)
        menu.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        menu.addAction(self.follow_action)
        menu.addSeparator()
        menu.addAction(self.copy_value_action)
        menu.addAction(self.copy_rows_action)
        menu.addAction(self.copy_dt_action)
        menu.addSeparator()
        menu.addAction(self.expand_all_action)
        menu.addSeparator()
        menu.addAction(self.back_action)
        menu.addAction(self.forward_action)
        menu.popup(self._tree.viewport().mapToGlobal(pos))

    # ---- Helpers

    def _display(self) -> None:
        """Show the current visit: a fresh model, its expansion and selection."""
        visit = self._current
        self.model.set_object(visit.object if visit is not None else None)
        if visit is None:
            self._title.setText("")
            self._message.setText(EMPTY_TEXT)
            self._stack.setCurrentWidget(self._message)
            self._hex.clear()
        elif self.model.error is not None:
            self._set_title()
            self._message.setText(f"{self.model.title()} cannot be shown: {self.model.error}.")
            self._stack.setCurrentWidget(self._message)
            self._hex.clear()
        else:
            self._set_title()
            self._fit_field_column()
            self._stack.setCurrentWidget(self.splitter)
            self._update_hex()
            for path in sorted(visit.expanded, key=len):
                index = self.model.index_for_path(path)
                if index.isValid():
                    self._tree.expand(index)
            if not visit.selected or not self.select_path(visit.selected, center=True):
                self._tree.scrollToTop()
                self._hex.set_highlight(None)
        self._update_actions()

    def _set_title(self) -> None:
        title = self.model.title()
        name, sep, rest = title.partition(" at ")
        self._title.setText(f"<b style='font-family:monospace'>{html.escape(name)}</b>"
                            + (f"&nbsp; at {html.escape(rest)}" if sep else ""))
        self._title.setToolTip(title)

    def _fit_field_column(self) -> None:
        """Widen the Field column to the longest top-level name (within reason); a
        wider column the user chose is kept."""
        root = self.model.root_node
        if root is None:
            return
        fm = self._tree.fontMetrics()
        longest = max((fm.horizontalAdvance(n.name) for n in root.children), default=0)
        wanted = min(longest + self._tree.indentation() * 2 + 2 * fm.averageCharWidth(),
                     32 * fm.averageCharWidth())
        if wanted > self._tree.columnWidth(FIELD):
            self._tree.setColumnWidth(FIELD, wanted)

    def _remember(self) -> None:
        """Keep the current visit's expansion and selection (by member path)."""
        visit = self._current
        if visit is None or self.model.error is not None:
            return
        visit.expanded = self.model.expanded_paths(self._tree.isExpanded)
        index = self._tree.currentIndex()
        while index.isValid() and self.model.node(index) is None:
            index = index.parent()  # a list row: remember the list
        visit.selected = self.model.row_of(index).path if index.isValid() else None

    def _update_hex(self) -> None:
        obj = self.current_object
        root = self.model.root_node
        if obj is None or root is None:
            self._hex.clear()
            return
        self._hex.set_bytes(obj.address, root.raw, self.model.modelled_mask(), obj.space.arch)

    def _update_actions(self) -> None:
        shown = self.model.object is not None and self.model.error is None
        self.back_action.setEnabled(bool(self._back))
        self.forward_action.setEnabled(bool(self._forward))
        self.copy_dt_action.setEnabled(shown)
        self.copy_rows_action.setEnabled(shown)
        current = self._tree.currentIndex()
        self.copy_value_action.setEnabled(shown and current.isValid())
        self.expand_all_action.setEnabled(shown and current.isValid() and self.model.hasChildren(
            current.siblingAtColumn(0)))
        link = self.model.link(current) if shown else None
        self.follow_action.setEnabled(link is not None)
        if link is not None:
            target = link[0]
            self.follow_action.setText(f"&Open {target.type}" + (f" {target.label}" if target.label else ""))
        else:
            self.follow_action.setText("&Open Pointed-to Object")
        for act in (self.back_action, self.forward_action):
            visits = self._back if act is self.back_action else self._forward
            if visits:
                obj = visits[-1].object
                act.setToolTip(f"{act.statusTip()}: {obj.type} {obj.label or ''}".rstrip())

    @staticmethod
    def _visual_order(index: QModelIndex) -> tuple[int, ...]:
        rows = []
        while index.isValid():
            rows.append(index.row())
            index = index.parent()
        return tuple(reversed(rows))

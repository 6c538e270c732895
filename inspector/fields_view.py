"""The fields a source recorded or sampled for one object, when there are no kernel
structures to show: a process, thread or job of this machine (live), or of a session
that cannot be re-run.  A tree of Field / Value with nested values (``native``: what the
OS itself calls them) expanded; values update in place from one state to the next.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication, QStandardItem, QStandardItemModel
from PySide6.QtWidgets import QLabel, QTreeView, QVBoxLayout, QWidget

from core.units import format_duration

NOT_SAMPLED = "not sampled"
# Fields of another view (threads have their own dock) left out of an object's tree
SKIPPED = {"threads", "fibers"}


def format_value(field: str, value) -> str:
    if value is None:
        return NOT_SAMPLED
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float) and field.endswith("_us"):
        return format_duration(round(value * 1000))
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value) if value else "(none)"
    return str(value)


def _rows(doc: dict, prefix: str = ""):
    """(path, field, value, children) for every entry, in the document's order."""
    for key, value in doc.items():
        if key in SKIPPED:
            continue
        path = f"{prefix}{key}"
        if isinstance(value, dict):
            yield path, key, None, list(_rows(value, path + "."))
        else:
            yield path, key, value, None


class FieldsView(QWidget):
    """Title, a note saying where the values come from, and the Field / Value tree."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("fields_view")
        self.title_label = QLabel()
        self.title_label.setObjectName("fields_title")
        self.title_label.setTextFormat(Qt.TextFormat.PlainText)
        font = self.title_label.font()
        font.setBold(True)
        self.title_label.setFont(font)
        self.note_label = QLabel()
        self.note_label.setObjectName("fields_note")
        self.note_label.setWordWrap(True)
        self.model = QStandardItemModel(0, 2, self)
        self.model.setHorizontalHeaderLabels(["Field", "Value"])
        self.tree = QTreeView()
        self.tree.setObjectName("fields_tree")
        self.tree.setModel(self.model)
        self.tree.setUniformRowHeights(True)
        self.tree.setAlternatingRowColors(True)
        self.tree.setColumnWidth(0, 220)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.title_label)
        layout.addWidget(self.note_label)
        layout.addWidget(self.tree)
        self._items: dict[str, QStandardItem] = {}  # path -> its Value item
        self._paths: list[str] = []
        self.show_fields(None)

    def show_fields(self, doc: dict | None, title: str = "", note: str = "") -> None:
        """Show `doc` (a state document's entry); None: nothing selected."""
        self.title_label.setText(title or "Select a process, thread or job")
        self.note_label.setText(note)
        self.note_label.setVisible(bool(note))
        rows = list(_rows(doc)) if doc else []
        paths = self._flat_paths(rows)
        if paths == self._paths:
            self._update(rows)  # same fields: values change in place
            return
        self.model.removeRows(0, self.model.rowCount())
        self._items.clear()
        self._append(self.model.invisibleRootItem(), rows)
        self._paths = paths
        self.tree.expandAll()

    def _flat_paths(self, rows) -> list[str]:
        out = []
        for path, _field, _value, children in rows:
            out.append(path)
            if children is not None:
                out.extend(self._flat_paths(children))
        return out

    def _append(self, parent: QStandardItem, rows) -> None:
        for path, field, value, children in rows:
            name = QStandardItem(field)
            name.setEditable(False)
            shown = QStandardItem("" if children is not None else format_value(field, value))
            shown.setEditable(False)
            if value is None and children is None:
                shown.setForeground(self.palette().placeholderText())
            self._items[path] = shown
            parent.appendRow([name, shown])
            if children is not None:
                self._append(name, children)

    def _update(self, rows) -> None:
        for path, field, value, children in rows:
            if children is not None:
                self._update(children)
                continue
            text = format_value(field, value)
            item = self._items[path]
            if item.text() != text:
                item.setText(text)

    def value_text(self, path: str) -> str | None:
        """The shown value of a field (``native.state`` for nested ones)."""
        item = self._items.get(path)
        return None if item is None else item.text()

    def copy_text(self) -> str:
        lines = [self.title_label.text()]
        for path in self._paths:
            depth = path.count(".")
            lines.append("  " * depth + f"{path.rsplit('.', 1)[-1]}: {self._items[path].text()}")
        text = "\n".join(lines)
        QGuiApplication.clipboard().setText(text)
        return text

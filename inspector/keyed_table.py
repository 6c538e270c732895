"""A flat table model refreshed by keyed diffs (never a reset), shared by the job and
fiber views: each refresh gives the rows as `TableRow`s and the model diffs them by key."""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Sequence
from typing import NamedTuple

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QObject, QPersistentModelIndex, Qt
from PySide6.QtGui import QFont
from PySide6.QtWidgets import QAbstractItemView, QTableView

from inspector.process_model import NUMERIC_ALIGNMENT, Column, column_header, row_runs

Index = QModelIndex | QPersistentModelIndex

PAYLOAD_ROLE = Qt.ItemDataRole.UserRole + 20
"""A table row's payload (a member row's PID, a fiber row's name)."""


def plain(value):
    """`value` usable in a row key: a malformed document's list or dict as its repr."""
    return value if value is None or isinstance(value, (int, float, str)) else repr(value)


class TableRow(NamedTuple):
    key: Hashable
    texts: tuple
    tips: tuple | None = None
    payload: object = None
    bold: bool = False


class _Row:
    __slots__ = ("key", "row")

    def __init__(self, key, row: TableRow) -> None:
        self.key = key
        self.row = row


class KeyedTableModel(QAbstractTableModel):
    """Rows given as `TableRow`s; `set_rows` diffs them by key against what is shown:
    rows whose key went are removed, rows whose cells changed get one dataChanged per
    run of adjacent rows, new rows are appended. Never a reset."""

    def __init__(self, columns: Sequence[Column], parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.columns = tuple(columns)
        self._rows: list[_Row] = []
        self._bold = QFont()
        self._bold.setBold(True)

    def set_rows(self, rows: Iterable[TableRow]) -> None:
        width = len(self.columns)
        wanted: dict = {}
        seen: dict = {}
        for row in rows:
            n = seen.get(row.key, 0)  # equal keys stay apart, in order
            seen[row.key] = n + 1
            texts = tuple(row.texts[:width]) + ("",) * (width - len(row.texts))
            wanted[(row.key, n)] = row._replace(texts=texts)
        # Removed rows, bottom-up in runs
        doomed = [i for i, r in enumerate(self._rows) if r.key not in wanted]
        while doomed:
            last = doomed.pop()
            first = last
            while doomed and doomed[-1] == first - 1:
                first = doomed.pop()
            self.beginRemoveRows(QModelIndex(), first, last)
            del self._rows[first:last + 1]
            self.endRemoveRows()
        # Changed cells
        spans = []
        for i, r in enumerate(self._rows):
            new = wanted.pop(r.key)
            old = r.row
            if new != old:
                r.row = new
                cols = [c for c in range(width) if new.texts[c] != old.texts[c]
                        or (new.tips or ())[c:c + 1] != (old.tips or ())[c:c + 1]]
                if new.bold != old.bold or new.payload != old.payload or not cols:
                    cols = [0, width - 1]
                spans.append((i, cols[0], cols[-1]))
        for top, bottom, first, last in row_runs(spans):
            self.dataChanged.emit(self.index(top, first), self.index(bottom, last))
        # New rows (what is left of `wanted`, in the order given)
        if wanted:
            first = len(self._rows)
            self.beginInsertRows(QModelIndex(), first, first + len(wanted) - 1)
            self._rows.extend(_Row(k, r) for k, r in wanted.items())
            self.endInsertRows()

    def clear(self) -> None:
        self.set_rows(())

    def row_at(self, row: int) -> TableRow | None:
        return self._rows[row].row if 0 <= row < len(self._rows) else None

    def texts(self, column: int) -> list[str]:
        return [r.row.texts[column] for r in self._rows]

    # ---- Reimplemented Qt methods

    def rowCount(self, parent: Index = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: Index = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self.columns)

    def headerData(self, section: int, orientation: Qt.Orientation,
                   role: int = Qt.ItemDataRole.DisplayRole):
        return column_header(self.columns, section, orientation, role)

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole):
        if not index.isValid() or not 0 <= index.row() < len(self._rows):
            return None
        row = self._rows[index.row()].row
        column = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            return row.texts[column]
        if role == Qt.ItemDataRole.ToolTipRole:
            return row.tips[column] if row.tips and column < len(row.tips) else None
        if role == Qt.ItemDataRole.TextAlignmentRole:
            return NUMERIC_ALIGNMENT if self.columns[column].numeric else None
        if role == Qt.ItemDataRole.FontRole:
            return self._bold if row.bold else None
        if role == PAYLOAD_ROLE:
            return row.payload
        return None

    def flags(self, index: Index) -> Qt.ItemFlag:
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        return (Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable
                | Qt.ItemFlag.ItemNeverHasChildren)


def make_table(model: KeyedTableModel, name: str) -> QTableView:
    table = QTableView()
    table.setObjectName(name)
    table.setModel(model)
    table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
    table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    table.verticalHeader().setVisible(False)
    table.verticalHeader().setDefaultSectionSize(table.fontMetrics().height() + 6)
    table.horizontalHeader().setStretchLastSection(True)
    metrics = table.fontMetrics()
    for i, col in enumerate(model.columns):
        table.horizontalHeader().resizeSection(i, max(
            metrics.horizontalAdvance(col.title) + 24, metrics.horizontalAdvance(col.sample) + 16))
    return table

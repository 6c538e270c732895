"""Compare: what changed between two moments of a saved session, or between two sessions.

`CompareView` shows a `core.session.Comparison` (docs/sessions.md): a summary line and a
tree with a group per kind of difference, "Processes created", "Processes gone",
"Threads created", "Threads gone", "Jobs created", "Jobs gone" and "Changed", whose
objects hold one row per field (field | before | after). A created or gone object's rows
are its document's fields, one side empty. A changed field whose value is a dict on both
sides (a job's ``limits``) is shown as the sub-fields that differ (``limits.active_process``).
Created objects are green, gone ones red, in shades picked for the palette's base colour
so that both stay readable on light and dark themes.

Values read as the rest of KOI shows them: ``*_us`` fields as durations (``25ms``), byte
counts as sizes, CPU lists as ranges, a missing value (None) as "—"; the raw value is in
the cell's tooltip when the text abbreviates it.

`CompareDialog` picks moment A and moment B over a session's sample times (B optionally in
another session file), and recomputes the view when either moves.
"""

from __future__ import annotations

import bisect
import json
import math
import os

from PySide6.QtCore import (
    QAbstractItemModel, QEvent, QModelIndex, QObject, QPersistentModelIndex, Qt, QTimer, Signal,
)
from PySide6.QtGui import QAction, QColor, QFont, QGuiApplication, QPalette
from PySide6.QtWidgets import (
    QAbstractItemView, QDialog, QDialogButtonBox, QFileDialog, QGridLayout, QHBoxLayout,
    QLabel, QLineEdit, QPushButton, QSlider, QToolButton, QTreeView, QVBoxLayout, QWidget,
)

from core.session import Comparison, SessionError, open_session
from core.units import format_duration, format_size
from inspector.process_model import cpus_text, is_number

Index = QModelIndex | QPersistentModelIndex

NOT_PRESENT = "—"  # None, or the side where the object does not exist
EMPTY = "(empty)"
MAX_TEXT = 120  # longer values are cut with "…" (the tooltip has them whole)
MAX_TIP = 4000

# Fields that count bytes (Machine.state(): processes, jobs, fibers; job limits)
BYTE_FIELDS = frozenset({
    "commit", "peak_commit", "job_memory_used", "peak_process_memory", "peak_job_memory",
    "process_memory", "job_memory", "stack_commit", "stack_reserve",
})

COLUMN_TITLES = ("Object / Field", "Before (A)", "After (B)")
COLUMN_TIPS = ("The object (process, thread, job) and its fields",
               "The value at moment A", "The value at moment B")
OBJECT_COLUMN, BEFORE_COLUMN, AFTER_COLUMN = range(3)

GROUP, OBJECT, FIELD = range(3)
CREATED, GONE = "created", "gone"

RECOMPUTE_DELAY_MS = 40  # a dragged slider recomputes once it rests this long


# ---- Values as text

def plural(n: int, word: str, words: str | None = None) -> str:
    return f"{n} {word if n == 1 else words or word + 's'}"


def us_text(us) -> str:
    """A time or duration in µs, spelled exactly (``15.625ms``, ``1s``)."""
    if not is_number(us) or not math.isfinite(us) or us < 0:
        return str(us)
    return format_duration(round(us * 1000))


def _cut(text: str) -> str:
    return text if len(text) <= MAX_TEXT else text[:MAX_TEXT - 1] + "…"


def _scalar(value) -> bool:
    return value is None or isinstance(value, (bool, int, float, str))


def value_text(field: str, value) -> str:
    """`value` of `field` (a dotted path for sub-fields) as the view shows it."""
    leaf = field.rsplit(".", 1)[-1]
    if value is None:
        return NOT_PRESENT
    if isinstance(value, bool):
        return "yes" if value else "no"
    if is_number(value):
        if leaf.endswith("_us"):
            return us_text(value)
        if leaf in BYTE_FIELDS and value >= 0 and float(value).is_integer():
            return format_size(int(value))
        if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
            return str(int(value))
        return str(value)
    if isinstance(value, str):
        return _cut(value) if value else EMPTY
    if isinstance(value, list):
        if not value:
            return EMPTY
        if leaf == "affinity" and all(type(c) is int for c in value):
            return cpus_text(value)
        if all(_scalar(v) for v in value):
            return _cut(", ".join(value_text(leaf, v) for v in value))
        return plural(len(value), "entry", "entries")
    if isinstance(value, dict):
        if not value:
            return EMPTY
        return _cut(", ".join(f"{k}: {value_text(str(k), v)}" for k, v in value.items()))
    return _cut(str(value))


def value_tip(field: str, value) -> str | None:
    """The raw value, when the text shows less of it (lists, dicts, cut strings)."""
    if value is None or isinstance(value, (bool, int, float)):
        return None
    if isinstance(value, str) and len(value) <= MAX_TEXT:
        return None
    raw = json.dumps(value, ensure_ascii=False, default=str)
    return raw if len(raw) <= MAX_TIP else raw[:MAX_TIP - 1] + "…"


def sub_changes(field: str, before, after):
    """(field, before, after) for a changed field: dicts on both sides are split into the
    sub-fields that differ, recursively; anything else is the field itself."""
    if not (isinstance(before, dict) and isinstance(after, dict)):
        yield field, before, after
        return
    for key in list(after) + [k for k in before if k not in after]:
        a, b = before.get(key), after.get(key)
        if type(a) is not type(b) or a != b:  # 1 -> 1.0 is a change, as in core.session
            yield from sub_changes(f"{field}.{key}", a, b)


def change_colours(palette: QPalette) -> tuple[QColor, QColor]:
    """(created, gone) text colours with enough contrast (WCAG 4.5:1 or better) on the
    palette's base colour: dark shades on a light base, light ones on a dark base."""
    if palette.color(QPalette.ColorRole.Base).lightness() >= 128:
        return QColor(0, 110, 0), QColor(176, 0, 0)
    return QColor(110, 220, 110), QColor(255, 128, 128)


# ---- Object labels

def process_label(pid, name) -> str:
    return f"{name} ({pid})" if name else f"process {pid}"


def thread_label(pid, tid, name, process_names: dict) -> str:
    owner = process_label(pid, process_names.get(pid))
    return f"{owner} › {name} ({tid})" if name else f"{owner} › thread {tid}"


def job_label(name) -> str:
    return f"job {name}"


# ---- The model

class _Node:
    __slots__ = ("uid", "parent", "every", "children", "row", "level", "texts", "tips", "mark",
                 "target")

    def __init__(self, uid: int, parent: _Node | None, level: int, texts: tuple,
                 tips: tuple = (None, None, None), mark: str | None = None,
                 target: tuple | None = None) -> None:
        self.uid = uid
        self.parent = parent
        self.every: list[_Node] = []  # all the children; `children` are those shown
        self.children: list[_Node] = []
        self.row = 0  # among the shown
        self.level = level
        self.texts = texts
        self.tips = tips
        self.mark = mark
        self.target = target  # (kind, pid, tid, job name) of the object a row belongs to
        if parent is not None:
            parent.every.append(self)


class CompareModel(QAbstractItemModel):
    """A Comparison as a tree: groups, objects, fields, filtered by a text. A comparison or
    a filter replaces the rows shown (a reset): there is nothing in common worth keeping,
    and filtering here rather than in a QSortFilterProxyModel keeps a keystroke cheap (the
    proxy asks a Python model for parents hundreds of thousands of times)."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._nodes: list[_Node] = []  # by uid - 1
        self._root = _Node(0, None, -1, ("", "", ""))
        self._colours = {CREATED: QColor(0, 110, 0), GONE: QColor(176, 0, 0)}
        self._bold = QFont()
        self._bold.setBold(True)
        self.comparison: Comparison | None = None
        self.filter_text = ""

    # ---- Public API

    def set_comparison(self, comparison: Comparison | None) -> None:
        self.beginResetModel()
        self.comparison = comparison
        self._nodes = []
        self._root = _Node(0, None, -1, ("", "", ""))
        if comparison is not None:
            self._build(comparison)
        self._apply_filter()
        self.endResetModel()

    def set_filter(self, text: str) -> None:
        """Show the objects whose name, and the fields whose name, contain `text` (any
        case); an object that matches keeps all its fields, a group stays while one of its
        rows does. Group titles are not matched ("created" is in every created row's)."""
        text = text.strip()
        if text == self.filter_text:
            return
        self.beginResetModel()
        self.filter_text = text
        self._apply_filter()
        self.endResetModel()

    def set_colours(self, created: QColor, gone: QColor) -> None:
        self._colours = {CREATED: QColor(created), GONE: QColor(gone)}
        for group in self._root.children:
            if group.mark:
                self._node_changed(group)
                first, last = group.children[0], group.children[-1]
                self.dataChanged.emit(self._index(first, 0), self._index(last, 2),
                                      [Qt.ItemDataRole.ForegroundRole])

    def target_at(self, index: Index) -> tuple | None:
        """(kind, pid, tid, job name) of the object the row at `index` is or belongs to."""
        node = self._node(index)
        return None if node is None else node.target

    def mark_at(self, index: Index) -> str | None:
        """CREATED or GONE for the rows of those groups, else None."""
        node = self._node(index)
        return None if node is None else node.mark

    # ---- Reimplemented Qt methods

    def index(self, row: int, column: int, parent: Index = QModelIndex()) -> QModelIndex:
        if not self.hasIndex(row, column, parent):
            return QModelIndex()
        node = self._node(parent) if parent.isValid() else self._root
        if node is None or not 0 <= row < len(node.children):
            return QModelIndex()
        return self._index(node.children[row], column)

    def parent(self, index: Index = QModelIndex()) -> QModelIndex:  # type: ignore[override]
        node = self._node(index)
        if node is None or node.parent is None or node.parent is self._root:
            return QModelIndex()
        return self._index(node.parent, 0)

    def rowCount(self, parent: Index = QModelIndex()) -> int:
        if parent.column() > 0:
            return 0
        node = self._node(parent) if parent.isValid() else self._root
        return 0 if node is None else len(node.children)

    def columnCount(self, parent: Index = QModelIndex()) -> int:
        return len(COLUMN_TITLES)

    def headerData(self, section: int, orientation: Qt.Orientation,
                   role: int = Qt.ItemDataRole.DisplayRole):
        if orientation != Qt.Orientation.Horizontal or not 0 <= section < len(COLUMN_TITLES):
            return None
        if role == Qt.ItemDataRole.DisplayRole:
            return COLUMN_TITLES[section]
        if role == Qt.ItemDataRole.ToolTipRole:
            return COLUMN_TIPS[section]
        return None

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole):
        node = self._node(index)
        if node is None:
            return None
        column = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            return node.texts[column]
        if role == Qt.ItemDataRole.ToolTipRole:
            return node.tips[column]
        if role == Qt.ItemDataRole.ForegroundRole and node.mark and node.level < FIELD:
            return self._colours[node.mark]
        if role == Qt.ItemDataRole.FontRole and node.level == GROUP:
            return self._bold
        return None

    def flags(self, index: Index) -> Qt.ItemFlag:
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        return Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable

    # ---- Internals

    def _node(self, index: Index) -> _Node | None:
        if not index.isValid() or index.model() is not self:
            return None
        uid = index.internalId()
        return self._nodes[uid - 1] if 0 < uid <= len(self._nodes) else None

    def _index(self, node: _Node, column: int) -> QModelIndex:
        return self.createIndex(node.row, column, node.uid)

    def _node_changed(self, node: _Node) -> None:
        self.dataChanged.emit(self._index(node, 0), self._index(node, 2),
                              [Qt.ItemDataRole.ForegroundRole])

    def _apply_filter(self) -> None:
        pattern = self.filter_text.casefold()

        def shown(nodes: list[_Node]) -> list[_Node]:
            for row, node in enumerate(nodes):
                node.row = row
            return nodes

        groups = []
        for group in self._root.every:
            objects = []
            for obj in group.every:
                if not pattern or pattern in obj.texts[0].casefold():
                    obj.children = shown(list(obj.every))
                else:
                    obj.children = shown([f for f in obj.every
                                          if pattern in f.texts[0].casefold()])
                    if not obj.children:
                        continue
                objects.append(obj)
            group.children = shown(objects)
            if objects:
                groups.append(group)
        self._root.children = shown(groups)

    def _add(self, parent: _Node | None, level: int, texts: tuple, **kw) -> _Node:
        node = _Node(len(self._nodes) + 1, parent or self._root, level, texts, **kw)
        self._nodes.append(node)
        return node

    def _group(self, title: str, count: int, mark: str | None = None) -> _Node:
        return self._add(None, GROUP, (f"{title} ({count})", "", ""), mark=mark)

    def _fields(self, parent: _Node, doc: dict, created: bool) -> None:
        for field, value in doc.items():
            if field == "threads":
                continue  # listed as objects of their own
            text, tip = value_text(field, value), value_tip(field, value)
            texts = (field, NOT_PRESENT, text) if created else (field, text, NOT_PRESENT)
            tips = (None, None, tip) if created else (None, tip, None)
            self._add(parent, FIELD, texts, tips=tips, target=parent.target)

    def _present_texts(self, doc: dict, created: bool) -> tuple[str, str]:
        """(before, after) of a created or gone object's own row."""
        if not created:
            return "present", NOT_PRESENT
        born = doc.get("create_time_us")
        return NOT_PRESENT, (f"created at {us_text(born)}" if is_number(born) else "present")

    def _build(self, c: Comparison) -> None:
        names: dict = {}
        for doc in c.processes_gone + c.processes_created:
            if isinstance(doc.get("name"), str):
                names[doc.get("pid")] = doc["name"]
        for change in c.changes:
            if change.kind == "process" and change.name:
                names.setdefault(change.key, change.name)

        for title, docs, created in (("Processes created", c.processes_created, True),
                                     ("Processes gone", c.processes_gone, False)):
            if not docs:
                continue
            group = self._group(title, len(docs), CREATED if created else GONE)
            for doc in docs:
                pid = doc.get("pid")
                obj = self._add(group, OBJECT,
                                (process_label(pid, doc.get("name")),
                                 *self._present_texts(doc, created)),
                                mark=group.mark, target=("process", pid, -1, None))
                self._fields(obj, doc, created)
        for title, docs, created in (("Threads created", c.threads_created, True),
                                     ("Threads gone", c.threads_gone, False)):
            if not docs:
                continue
            group = self._group(title, len(docs), CREATED if created else GONE)
            for doc in docs:
                pid, tid = doc.get("pid"), doc.get("tid")
                obj = self._add(group, OBJECT,
                                (thread_label(pid, tid, doc.get("name"), names),
                                 *self._present_texts(doc, created)),
                                mark=group.mark, target=("thread", pid, tid, None))
                self._fields(obj, doc, created)
        for title, docs, created in (("Jobs created", c.jobs_created, True),
                                     ("Jobs gone", c.jobs_gone, False)):
            if not docs:
                continue
            group = self._group(title, len(docs), CREATED if created else GONE)
            for doc in docs:
                name = doc.get("name")
                obj = self._add(group, OBJECT,
                                (job_label(name), *self._present_texts(doc, created)),
                                mark=group.mark, target=("job", -1, -1, name))
                self._fields(obj, doc, created)

        if not c.changes:
            return
        objects: dict = {}
        for change in c.changes:
            objects.setdefault((change.kind, json.dumps(change.key)), []).append(change)
        group = self._group("Changed", len(objects))
        for changes in objects.values():
            first = changes[0]
            kind, key = first.kind, first.key
            if kind == "process":
                label, target = process_label(key, first.name), ("process", key, -1, None)
            elif kind == "thread":
                pid, tid = key
                label = thread_label(pid, tid, first.name, names)
                target = ("thread", pid, tid, None)
            elif kind == "job":
                label, target = job_label(key), ("job", -1, -1, key)
            else:
                label, target = "Machine", None
            obj = self._add(group, OBJECT, (label, "", ""), target=target,
                            tips=(plural(len(changes), "field") + " changed", None, None))
            for change in changes:
                for field, before, after in sub_changes(change.field, change.before,
                                                        change.after):
                    self._add(obj, FIELD,
                              (field, value_text(field, before), value_text(field, after)),
                              tips=(None, value_tip(field, before), value_tip(field, after)),
                              target=target)


# ---- The view

class CompareView(QWidget):
    """A comparison as a summary and a filterable tree; double-click an object (or one of
    its fields) to go to it."""

    objectActivated = Signal(str, int, int)  # kind ("process", "thread", "job"), pid, tid
    jobActivated = Signal(str)  # the job's name, after objectActivated("job", -1, -1)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("compare_view")
        self.label_a = self.label_b = ""
        self.model = CompareModel(self)

        self.summary_label = QLabel()
        self.summary_label.setObjectName("compare_summary")
        self.summary_label.setWordWrap(True)
        self.summary_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        self.filter_edit = QLineEdit()
        self.filter_edit.setObjectName("compare_filter")
        self.filter_edit.setPlaceholderText("Filter objects and fields")
        self.filter_edit.setClearButtonEnabled(True)
        self.filter_edit.textChanged.connect(self.set_filter)

        self.copy_action = QAction("Copy as Text", self)
        self.copy_action.setObjectName("copy_compare_text")
        self.copy_action.setToolTip("Copy the rows shown (filtered, as expanded) as a plain-text "
                                    "report")
        self.copy_action.triggered.connect(self.copy_text)
        self.copy_action.setEnabled(False)
        copy_button = QToolButton()
        copy_button.setObjectName("compare_copy_button")
        copy_button.setDefaultAction(self.copy_action)

        self.tree = QTreeView()
        self.tree.setObjectName("compare_tree")
        self.tree.setModel(self.model)
        self.tree.setUniformRowHeights(True)
        self.tree.setAlternatingRowColors(True)
        self.tree.setExpandsOnDoubleClick(False)  # double-click goes to the object
        self.tree.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.tree.setContextMenuPolicy(Qt.ContextMenuPolicy.ActionsContextMenu)
        self.tree.addAction(self.copy_action)
        self.tree.doubleClicked.connect(self._on_double_click)
        chars = self.tree.fontMetrics().horizontalAdvance("0")
        self.tree.header().resizeSection(OBJECT_COLUMN, 40 * chars)
        self.tree.header().resizeSection(BEFORE_COLUMN, 22 * chars)

        bar = QHBoxLayout()
        bar.addWidget(self.filter_edit, 1)
        bar.addWidget(copy_button)
        box = QVBoxLayout(self)
        box.setContentsMargins(0, 0, 0, 0)
        box.addWidget(self.summary_label)
        box.addLayout(bar)
        box.addWidget(self.tree, 1)
        self.addAction(self.copy_action)
        self._apply_palette()

    # ---- Public API

    def set_comparison(self, comparison: Comparison | None, label_a: str = "",
                       label_b: str = "") -> None:
        """Show `comparison` (None: nothing) of moment A, `label_a`, and B, `label_b`."""
        self.label_a, self.label_b = label_a, label_b
        self.model.set_comparison(comparison)
        self.summary_label.setText(self.summary_text())
        self.copy_action.setEnabled(comparison is not None)
        self._expand()

    def clear(self) -> None:
        self.set_comparison(None)

    @property
    def comparison(self) -> Comparison | None:
        return self.model.comparison

    def set_filter(self, text: str) -> None:
        if self.filter_edit.text() != text:
            self.filter_edit.setText(text)  # comes back here through textChanged
            return
        self.model.set_filter(text)
        self._expand()

    def summary_text(self) -> str:
        c = self.model.comparison
        if c is None:
            return "Nothing compared"
        heading = f"A: {self.label_a} → B: {self.label_b}\n" if self.label_a or self.label_b \
            else ""
        parts = [f"{plural(len(created), what, whats)} created, {len(gone)} gone"
                 for what, whats, created, gone in (
                     ("process", "processes", c.processes_created, c.processes_gone),
                     ("thread", "threads", c.threads_created, c.threads_gone),
                     ("job", "jobs", c.jobs_created, c.jobs_gone))]
        objects = len({(ch.kind, json.dumps(ch.key)) for ch in c.changes})
        parts.append(f"{plural(len(c.changes), 'field change')} in "
                     f"{plural(objects, 'object')}")
        return heading + ", ".join(parts)

    def report_text(self) -> str:
        """The summary and the rows shown (those the filter keeps, children of expanded
        rows only) as plain text."""
        lines = [self.summary_text()]
        if self.model.filter_text:
            lines.append(f"Filter: {self.model.filter_text}")

        def walk(parent: QModelIndex, depth: int) -> None:
            for row in range(self.model.rowCount(parent)):
                index = self.model.index(row, OBJECT_COLUMN, parent)
                name = index.data()
                before = index.siblingAtColumn(BEFORE_COLUMN).data()
                after = index.siblingAtColumn(AFTER_COLUMN).data()
                if depth == 0:
                    lines.append("")
                    lines.append(name)
                elif before or after:
                    lines.append(f"{'  ' * depth}{name}: {before or NOT_PRESENT} → "
                                 f"{after or NOT_PRESENT}")
                else:
                    lines.append(f"{'  ' * depth}{name}")
                if self.tree.isExpanded(index):
                    walk(index, depth + 1)

        walk(QModelIndex(), 0)
        return "\n".join(lines) + "\n"

    def copy_text(self) -> None:
        QGuiApplication.clipboard().setText(self.report_text())

    # ---- Internals

    def _expand(self) -> None:
        """Groups open; with a filter everything it kept, else the changed objects (a
        created or gone object's fields are its whole document: opened on demand)."""
        model, filtered = self.model, bool(self.model.filter_text)
        for row in range(model.rowCount()):
            group = model.index(row, 0)
            self.tree.expand(group)
            for child in range(model.rowCount(group)):
                index = model.index(child, 0, group)
                self.tree.setExpanded(index, filtered or model.mark_at(index) is None)

    def _on_double_click(self, index: QModelIndex) -> None:
        target = self.model.target_at(index)
        if target is None:
            return
        kind, pid, tid, job = target
        if kind == "job":
            self.objectActivated.emit("job", -1, -1)
            self.jobActivated.emit(str(job))
        elif type(pid) is int and type(tid) is int:
            self.objectActivated.emit(kind, pid, tid)

    def _apply_palette(self) -> None:
        # the view's own palette: its children inherit a new one after this event
        self.model.set_colours(*change_colours(self.palette()))

    def changeEvent(self, event: QEvent) -> None:
        if event.type() == QEvent.Type.PaletteChange:
            self._apply_palette()
        super().changeEvent(event)


# ---- The dialog

def _name_of(session) -> str:
    return os.path.basename(str(getattr(session, "path", "")) or "session")


class _MomentPicker(QWidget):
    """A slider over sample times and the time it points at."""

    moved = Signal()

    def __init__(self, name: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.times: list[float] = []
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setObjectName(f"moment_{name}_slider")
        self.slider.setMinimumWidth(240)
        self.label = QLabel()
        self.label.setObjectName(f"moment_{name}_label")
        chars = self.label.fontMetrics().horizontalAdvance("0")
        self.label.setMinimumWidth(30 * chars)
        box = QHBoxLayout(self)
        box.setContentsMargins(0, 0, 0, 0)
        box.addWidget(self.slider, 1)
        box.addWidget(self.label)
        self.slider.valueChanged.connect(self._on_value)

    def set_times(self, times: list[float], time_us: float | None, default_last: bool) -> None:
        """Slide over `times`, at the sample at or before `time_us` (None: the first or,
        with `default_last`, the last); quietly: `moved` is for the user's moves."""
        self.times = times
        self.slider.setEnabled(bool(times))
        self.slider.blockSignals(True)
        self.slider.setRange(0, max(0, len(times) - 1))
        self.slider.setValue(self.index_for(time_us, default_last))
        self.slider.blockSignals(False)
        self._show()

    def index_for(self, time_us: float | None, default_last: bool) -> int:
        """The sample at or before `time_us` (the first if it is earlier than all)."""
        if not self.times:
            return 0
        if time_us is None:
            return len(self.times) - 1 if default_last else 0
        return max(0, bisect.bisect_right(self.times, time_us) - 1)

    def time_us(self) -> float | None:
        return self.times[self.slider.value()] if self.times else None

    def text(self) -> str:
        t = self.time_us()
        return NOT_PRESENT if t is None else us_text(t)

    def _show(self) -> None:
        if not self.times:
            self.label.setText("no samples")
            return
        self.label.setText(f"{self.text()}  (sample {self.slider.value() + 1} of "
                           f"{len(self.times)})")

    def _on_value(self, _value: int) -> None:
        self._show()
        self.moved.emit()


class CompareDialog(QDialog):
    """Compare moment A of `session` with moment B of it, or of another session file.
    The session stays the caller's; a session opened here is closed with the dialog."""

    comparisonChanged = Signal()  # the view shows a new comparison

    def __init__(self, session, parent: QWidget | None = None,
                 initial_a_us: float | None = None, initial_b_us: float | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("compare_dialog")
        self.setWindowTitle(f"Compare — {_name_of(session)}")
        self.session = session
        self.other = None  # a second session, opened (and owned) by the dialog
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(RECOMPUTE_DELAY_MS)
        self._timer.timeout.connect(self.recompute)

        self.moment_a = _MomentPicker("a")
        self.moment_b = _MomentPicker("b")
        self.source_b_label = QLabel()
        self.source_b_label.setObjectName("compare_b_source")
        self.other_button = QPushButton("Compare with Another Session…")
        self.other_button.setObjectName("compare_other_button")
        self.other_button.setToolTip("Take moment B from another session file (.koi)")
        self.other_button.clicked.connect(self.choose_other_session)
        self.same_button = QPushButton("Same Session")
        self.same_button.setObjectName("compare_same_button")
        self.same_button.setToolTip("Take moment B from this session again")
        self.same_button.clicked.connect(self.use_same_session)

        grid = QGridLayout()
        grid.addWidget(QLabel("Moment A:"), 0, 0)
        grid.addWidget(self.moment_a, 0, 1, 1, 3)
        grid.addWidget(QLabel("Moment B:"), 1, 0)
        grid.addWidget(self.moment_b, 1, 1, 1, 3)
        grid.addWidget(QLabel("B from:"), 2, 0)
        grid.addWidget(self.source_b_label, 2, 1)
        grid.addWidget(self.other_button, 2, 2)
        grid.addWidget(self.same_button, 2, 3)
        grid.setColumnStretch(1, 1)

        self.error_label = QLabel()
        self.error_label.setObjectName("compare_error")
        self.error_label.setWordWrap(True)
        self.error_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.error_label.hide()

        self.view = CompareView()
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.setObjectName("compare_buttons")
        buttons.rejected.connect(self.reject)

        box = QVBoxLayout(self)
        box.addLayout(grid)
        box.addWidget(self.error_label)
        box.addWidget(self.view, 1)
        box.addWidget(buttons)
        self.resize(900, 640)

        self.moment_a.moved.connect(self._timer.start)
        self.moment_b.moved.connect(self._timer.start)
        times = self._times(session)
        self.moment_a.set_times(times, initial_a_us, default_last=False)
        self.moment_b.set_times(times, initial_b_us, default_last=True)
        self._show_source()
        self.recompute()

    # ---- Public API

    def choose_file(self) -> str | None:
        """Ask for the other session's file (tests replace this)."""
        path, _ = QFileDialog.getOpenFileName(self, "Compare with Session", "",
                                              "KOI sessions (*.koi);;All files (*)")
        return path or None

    def choose_other_session(self) -> None:
        path = self.choose_file()
        if path:
            self.open_other(path)

    def open_other(self, path: str) -> bool:
        """Take moment B from the session file at `path` (its last sample at first). A file
        that cannot be used is reported in the dialog; B stays where it was."""
        try:
            other = open_session(path)
        except SessionError as exc:
            self._show_error(str(exc))
            return False
        try:
            times = self._times(other)
        except SessionError as exc:
            other.close()
            self._show_error(str(exc))
            return False
        if not times:
            other.close()
            self._show_error(f"{path}: the session holds no states to compare")
            return False
        self._close_other()
        self.other = other
        self.moment_b.set_times(times, None, default_last=True)
        self._show_source()
        self.recompute()
        return True

    def use_same_session(self) -> None:
        if self.other is None:
            return
        self._close_other()
        self.moment_b.set_times(self._times(self.session), None, default_last=True)
        self._show_source()
        self.recompute()

    def set_moments(self, time_a_us: float | None = None, time_b_us: float | None = None) -> None:
        """Move A and/or B to the samples at or before these times; recomputes at once."""
        for picker, t in ((self.moment_a, time_a_us), (self.moment_b, time_b_us)):
            if t is not None:
                picker.set_times(picker.times, t, default_last=False)
        self.recompute()

    def recompute(self) -> None:
        """Compare the two moments now (the sliders ask for it after a short rest)."""
        self._timer.stop()
        ta, tb = self.moment_a.time_us(), self.moment_b.time_us()
        if ta is None or tb is None:  # only a session without samples has no moment
            self.view.clear()
            self._show_error(f"{self.session.path}: the session holds no states to compare")
            return
        try:
            comparison = self.session.compare(ta, tb, other=self.other)
        except SessionError as exc:
            self.view.clear()
            self._show_error(str(exc))
            return
        self._show_error("")
        in_b = f" in {_name_of(self.other)}" if self.other is not None else ""
        in_a = f" in {_name_of(self.session)}" if self.other is not None else ""
        self.view.set_comparison(comparison, self.moment_a.text() + in_a,
                                 self.moment_b.text() + in_b)
        self.comparisonChanged.emit()

    def done(self, result: int) -> None:
        self._timer.stop()
        if self.other is not None:
            self.use_same_session()
        super().done(result)

    # ---- Internals

    @staticmethod
    def _times(session) -> list[float]:
        return [float(t) for t in session.sample_times()]

    def _close_other(self) -> None:
        if self.other is not None:
            self.other.close()
            self.other = None

    def _show_source(self) -> None:
        if self.other is None:
            self.source_b_label.setText(f"this session ({_name_of(self.session)})")
        else:
            self.source_b_label.setText(str(self.other.path))
        self.same_button.setEnabled(self.other is not None)

    def _show_error(self, text: str) -> None:
        self.error_label.setText(text)
        self.error_label.setVisible(bool(text))
        if text:
            colour = change_colours(self.error_label.palette())[1]
            self.error_label.setStyleSheet(f"QLabel {{ color: {colour.name()}; }}")

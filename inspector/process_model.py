"""The process tree: Process Explorer's main view over the kernel's state document.

`ProcessTreeModel.update(state)` takes a `Machine.state()`-shaped dict (a live source's
has the same shape, possibly with None where it knows nothing, and extra keys) and
applies a keyed diff: rows are inserted, removed, moved to the top level when their
parent goes, and only the cells whose value changed are reported. The model is never
reset, so expansion, selection and scroll position survive refreshes. Processes that
start are green for a moment, ones that exit red, then gone; given the kernel's events
(`note_event`), even a process that lived and died between two refreshes shows, red.
Sorted by a column (the header), the tree stays a tree, each process's children in
order; the model sorts itself, once per refresh (`ProcessTreeModel.sort`). It filters
itself too (`ProcessTreeModel.set_row_filter`): a row the filter hides is out of the
model, and one that matches keeps its ancestors shown, as in Process Explorer.

A process is keyed by (pid, create time), psutil's identity rule, so a reused PID is a
new process rather than a changed one; for the same reason a process whose "parent"
was created after it is shown as a root (the parent PID was reused), as Process
Explorer does.

This module also holds what the thread table and the event log share: the text filter
(substring, ``re:`` regex, ``!``/``-`` negation), the highlight colours and their
timing, the column chooser and the value formatters.
"""

from __future__ import annotations

import re
import signal
import time
from collections.abc import Callable, Iterable, Sequence
from typing import NamedTuple

from PySide6.QtCore import (
    QByteArray, QModelIndex, QObject, QPersistentModelIndex, QSignalBlocker, Qt, QTimer, Signal,
)
from PySide6.QtGui import QAction, QColor, QKeySequence, QStandardItem, QStandardItemModel
from PySide6.QtWidgets import (
    QAbstractItemView, QHeaderView, QLineEdit, QMenu, QTreeView, QVBoxLayout, QWidget,
)
from shiboken6 import Shiboken, getCppPointer

Index = QModelIndex | QPersistentModelIndex


# ---- Roles and colours shared by the views

SORT_ROLE = Qt.ItemDataRole.UserRole + 1
"""A plain number or string to sort by (display text such as "0:00:01.250" would sort wrong)."""
PID_ROLE = Qt.ItemDataRole.UserRole + 2
TID_ROLE = Qt.ItemDataRole.UserRole + 3

# Plain ints: comparing with Qt's enum members costs an attribute lookup per cell.
_DISPLAY = int(Qt.ItemDataRole.DisplayRole)
_BACKGROUND = int(Qt.ItemDataRole.BackgroundRole)
_FOREGROUND = int(Qt.ItemDataRole.ForegroundRole)
_ALIGNMENT = int(Qt.ItemDataRole.TextAlignmentRole)
_TOOLTIP = int(Qt.ItemDataRole.ToolTipRole)

# Process Explorer's defaults: new objects green, deleted objects red. The text on them
# is forced black so a highlighted row reads the same in the dark palette.
NEW_COLOR = QColor(70, 210, 70)
EXITED_COLOR = QColor(235, 80, 80)
HIGHLIGHT_TEXT_COLOR = QColor(0, 0, 0)
# An exited process that a handle keeps alive (a "zombie"): greyed once its red is over.
ZOMBIE_TEXT_COLOR = QColor(128, 128, 128)

DEFAULT_HIGHLIGHT_SECONDS = 1.0

NUMERIC_ALIGNMENT = int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)

MARK_NONE, MARK_NEW, MARK_EXITED = 0, 1, 2


class Column(NamedTuple):
    title: str
    tip: str
    numeric: bool = False
    shown: bool = True  # shown by default; the others wait in the column chooser
    sample: str = ""  # a typical wide value, to size the column


# ---- Formatters (None, meaning "the source does not know", is always blank)

def is_number(value) -> bool:
    t = type(value)
    if t is float or t is int:  # the common case, without isinstance's MRO walk
        return True
    return isinstance(value, (int, float)) and t is not bool


def number_text(value) -> str:
    if value is None:
        return ""
    return str(value)


def cpu_time_text(us) -> str:
    """Process Explorer's CPU time: ``h:mm:ss.mmm`` (truncated, never rounded up)."""
    if not is_number(us):
        return "" if us is None else str(us)
    ms = int(us // 1000)
    seconds, ms = divmod(ms, 1000)
    minutes, seconds = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}.{ms:03d}"


def percent_text(value) -> str:
    """CPU % as Process Explorer shows it: blank for none, ``< 0.01`` for a trace."""
    if not is_number(value) or value <= 0:
        return ""
    if value < 0.01:
        return "< 0.01"
    return f"{value:.2f}"


def seconds_text(us) -> str:
    """A simulated instant given in µs, as seconds with µs precision."""
    if not is_number(us):
        return "" if us is None else str(us)
    return f"{us / 1e6:.6f}"


def us_text(us) -> str:
    if not is_number(us):
        return "n/a"
    return f"{us:,.3f} µs"


def cpus_text(cpus) -> str:
    """A CPU list as ranges: ``0-3,6``."""
    if cpus is None:
        return ""
    if not isinstance(cpus, (list, tuple)):
        return str(cpus)
    numbers = sorted(c for c in cpus if type(c) is int)
    parts: list[str] = []
    i = 0
    while i < len(numbers):
        j = i
        while j + 1 < len(numbers) and numbers[j + 1] == numbers[j] + 1:
            j += 1
        parts.append(str(numbers[i]) if i == j else f"{numbers[i]}-{numbers[j]}")
        i = j + 1
    parts.extend(str(c) for c in cpus if type(c) is not int)  # whatever else, as given
    return ",".join(parts)


def cpu_mask(cpus) -> int | None:
    """The affinity mask of a CPU list; None unless it is a list of CPU numbers."""
    if not isinstance(cpus, (list, tuple)) or not all(type(c) is int and 0 <= c < 64
                                                      for c in cpus):
        return None
    mask = 0
    for c in cpus:
        mask |= 1 << c
    return mask


def exit_code_text(code) -> str:
    """Small codes in decimal, NTSTATUS-sized ones in hex (0xC0000005). A negative code
    is a live Linux process killed by a signal (minus its number, docs/live.md: the
    simulated kernel's codes are DWORDs): the signal's name, as "SIGKILL (-9)"."""
    if code is None:
        return ""
    if not isinstance(code, int):
        return str(code)
    if code < 0:
        try:
            return f"{signal.Signals(-code).name} ({code})"
        except ValueError:
            return f"signal {-code} ({code})"
    unsigned = code & 0xFFFFFFFF
    return str(unsigned) if unsigned < 0x10000 else f"0x{unsigned:08X}"


PRIORITY_CLASS_NAMES = {
    "idle": "Idle", "below_normal": "Below normal", "normal": "Normal",
    "above_normal": "Above normal", "high": "High", "realtime": "Realtime",
}
PRIORITY_CLASS_RANK = {name: rank for rank, name in enumerate(PRIORITY_CLASS_NAMES)}


def class_text(priority_class) -> str:
    if priority_class is None:
        return ""
    if not isinstance(priority_class, str):
        return str(priority_class)
    return PRIORITY_CLASS_NAMES.get(priority_class, priority_class)


# The PS_PROTECTED_SIGNER names Process Explorer prints in its Protection column.
_SIGNERS = {
    "authenticode": "Authenticode", "codegen": "CodeGen", "antimalware": "Antimalware",
    "lsa": "Lsa", "windows": "Windows", "wintcb": "WinTcb", "winsystem": "WinSystem",
    "app": "App",
}


def protection_text(protection) -> str:
    """``pp-winsystem`` → ``PsProtectedSignerWinSystem``, ``ppl-lsa`` →
    ``PsProtectedSignerLsa-Light``; unprotected is blank."""
    if protection is None or protection == "none" or protection == "":
        return ""
    text = str(protection)
    kind, _, signer = text.partition("-")
    if kind in ("pp", "ppl") and signer in _SIGNERS:
        return f"PsProtectedSigner{_SIGNERS[signer]}" + ("-Light" if kind == "ppl" else "")
    return text


def as_tuple(value) -> tuple:
    if value is None:
        return ()
    if isinstance(value, (list, tuple)):
        return tuple(value)
    return (value,)


def cpu_total(user, kernel) -> float | None:
    """User + kernel time; None when the source knows neither."""
    if is_number(user):
        return user + kernel if is_number(kernel) else user
    return kernel if is_number(kernel) else None


def percent_rate(elapsed_us, cpus) -> float | None:
    """Percent per µs of CPU time over an interval of `elapsed_us` on `cpus` CPUs:
    CPU % is the share of the whole machine (all CPUs = 100 %), as Process Explorer's."""
    if not is_number(elapsed_us) or not is_number(cpus) or elapsed_us <= 0 or cpus <= 0:
        return None
    return 100.0 / (elapsed_us * cpus)


def percent_from(prev_total, total, rate) -> float | None:
    """CPU % from two CPU-time totals and a percent_rate()."""
    if rate is None or total is None or prev_total is None:
        return None
    delta = total - prev_total
    if delta < 0:  # a counter that went backwards is a different object: no figure
        return None
    percent = delta * rate
    return percent if percent < 100.0 else 100.0


# ---- The text filter

class TextFilter:
    """What the filter boxes accept: a substring (any case), ``re:`` and a regular
    expression, and either one negated by a leading ``!`` or ``-``."""

    HELP = ("Text: show rows containing it (any case); re:PATTERN: a regular expression; "
            "a leading ! or - shows the rows that do not match")

    def __init__(self, text: str = "") -> None:
        self.text = text
        self.negate = False
        self.error: str | None = None
        self._needle = ""
        self._regex: re.Pattern | None = None
        body = text.strip()
        if body[:1] in ("!", "-"):
            self.negate = True
            body = body[1:].lstrip()
        if body[:3].lower() == "re:":
            pattern = body[3:]
            if pattern:
                try:
                    # MULTILINE: ^ and $ also anchor at each field of a joined row
                    self._regex = re.compile(pattern, re.IGNORECASE | re.MULTILINE)
                except re.error as e:
                    self.error = f"invalid regular expression {pattern!r}: {e}"
        else:
            self._needle = body.casefold()

    @property
    def active(self) -> bool:
        return self._regex is not None or bool(self._needle)

    def matches(self, fields: Iterable[str]) -> bool:
        """Whether a row whose searchable texts are `fields` passes the filter."""
        if not self.active:
            return True
        if self._regex is not None:
            search = self._regex.search
            hit = any(search(f) for f in fields)
        else:
            needle = self._needle
            hit = any(needle in f.casefold() for f in fields)
        return hit != self.negate

    def matches_folded(self, folded: str) -> bool:
        """matches() for a row given as its fields casefolded and joined by
        FIELD_SEPARATOR: one test per row instead of one per field."""
        if self._regex is not None:
            return bool(self._regex.search(folded)) != self.negate
        if self._needle:
            return (self._needle in folded) != self.negate
        return True


# Lines: a filter box cannot type one, and a MULTILINE regex anchors at each field.
FIELD_SEPARATOR = "\n"


class FilterEdit(QLineEdit):
    """A filter box that parses its text into a `TextFilter` and shows a bad regex.

    While the user types, the filter is applied once typing pauses for `typing_delay_ms`:
    re-filtering 100,000 log rows on every keystroke would stall the window."""

    filterChanged = Signal(object)
    """The new TextFilter (an invalid regex gives an inactive one, with its error)."""

    def __init__(self, placeholder: str, parent: QWidget | None = None, *,
                 typing_delay_ms: int = 150) -> None:
        super().__init__(parent)
        self.setPlaceholderText(placeholder)
        self.setClearButtonEnabled(True)
        self.setToolTip(TextFilter.HELP)
        self.current = TextFilter()
        self._typing = False
        self._delay = QTimer(self)
        self._delay.setSingleShot(True)
        self._delay.setInterval(typing_delay_ms)
        self._delay.timeout.connect(self.apply)
        self.textChanged.connect(self._on_text_changed)

    def apply(self) -> None:
        """Parse the text and emit filterChanged now."""
        self._delay.stop()
        self.current = TextFilter(self.text())
        if self.current.error:
            self.setStyleSheet("QLineEdit { border: 1px solid #d9534f; }")
            self.setToolTip(self.current.error)
        else:
            self.setStyleSheet("")
            self.setToolTip(TextFilter.HELP)
        self.filterChanged.emit(self.current)

    def keyPressEvent(self, event) -> None:
        self._typing = True
        try:
            super().keyPressEvent(event)
        finally:
            self._typing = False

    def _on_text_changed(self, _text: str) -> None:
        if self._typing and self._delay.interval() > 0:
            self._delay.start()
        else:  # set by the program, pasted or cleared: at once
            self.apply()


# ---- The column chooser

def row_runs(spans):
    """Merge (row, first column, last column) spans, sorted by row, into runs of adjacent
    rows: (top, bottom, first, last) each, one dataChanged per run instead of per row."""
    i = 0
    while i < len(spans):
        top, first, last = spans[i]
        bottom = top
        while i + 1 < len(spans) and spans[i + 1][0] == bottom + 1:
            i += 1
            bottom = spans[i][0]
            first, last = min(first, spans[i][1]), max(last, spans[i][2])
        yield top, bottom, first, last
        i += 1


def column_header(columns, section: int, orientation: Qt.Orientation, role: int):
    """headerData for a table whose columns are `Column`s: title, tip, alignment."""
    if orientation != Qt.Orientation.Horizontal or not 0 <= section < len(columns):
        return None
    col = columns[section]
    if role == Qt.ItemDataRole.DisplayRole:
        return col.title
    if role == Qt.ItemDataRole.ToolTipRole:
        return col.tip
    if role == Qt.ItemDataRole.TextAlignmentRole and col.numeric:
        return NUMERIC_ALIGNMENT
    return None


class ColumnChooser(QObject):
    """Header context menu with a checkable entry per column (Process Explorer's
    "Select Columns"); the header's saveState()/restoreState() keep the choice."""

    def __init__(self, header: QHeaderView, columns: Sequence[Column],
                 always_shown: Iterable[int] = (0,), indent: int = 0) -> None:
        """`indent`: room added to the first column for a tree's nesting."""
        super().__init__(header)
        self._header = header
        self._columns = tuple(columns)
        self._always = frozenset(always_shown)
        self._indent = indent
        header.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        header.customContextMenuRequested.connect(self._show_menu)

    def reset(self) -> None:
        """The default columns, each wide enough for its title and a typical value."""
        header = self._header
        metrics = header.fontMetrics()
        for i, col in enumerate(self._columns):
            header.setSectionHidden(i, not col.shown)
            # Room for the sort arrow beside the title.
            width = max(metrics.horizontalAdvance(col.title) + 28,
                        metrics.horizontalAdvance(col.sample) + 16)
            header.resizeSection(i, width + (self._indent if i == 0 else 0))

    def set_column_visible(self, column: int, visible: bool) -> bool:
        """Show or hide `column`; refused for a mandatory column or the last shown one."""
        if not visible:
            shown = [i for i in range(len(self._columns)) if not self._header.isSectionHidden(i)]
            if column in self._always or shown == [column]:
                return False
        self._header.setSectionHidden(column, not visible)
        return True

    def menu(self) -> QMenu:
        """A fresh menu reflecting the current columns (shown by the header's context menu)."""
        menu = QMenu(self._header)
        for i, col in enumerate(self._columns):
            act = QAction(col.title, menu, checkable=True)
            act.setObjectName(f"column_{i}")
            act.setChecked(not self._header.isSectionHidden(i))
            act.setEnabled(i not in self._always)
            act.setStatusTip(col.tip)
            act.toggled.connect(lambda on, i=i: self.set_column_visible(i, on))
            menu.addAction(act)
        menu.addSeparator()
        reset = QAction("Default Columns", menu)
        reset.setObjectName("columns_default")
        reset.triggered.connect(self.reset)
        menu.addAction(reset)
        return menu

    def _show_menu(self, pos) -> None:
        menu = self.menu()
        menu.exec(self._header.mapToGlobal(pos))
        menu.deleteLater()


# ---- Highlight timing

class Highlights:
    """Which rows are green (new) or red (exited), and until when.

    `clock` is injectable so tests drive time instead of sleeping; `schedule(delay_s)`
    asks the owner to call back when the earliest highlight ends."""

    def __init__(self, clock: Callable[[], float], seconds: float,
                 schedule: Callable[[float], None]) -> None:
        self.clock = clock
        self.seconds = seconds
        self._schedule = schedule
        self.marked: dict[int, object] = {}  # uid -> row object with .mark/.mark_until

    def mark(self, uid: int, row, kind: int) -> None:
        if self.seconds <= 0:  # highlighting switched off
            return
        row.mark = kind
        row.mark_until = self.clock() + self.seconds
        self.marked[uid] = row
        self._schedule(self.seconds)

    def due(self) -> list:
        """Rows whose highlight is over, and re-arm the timer for the rest."""
        now = self.clock()
        done = [row for row in self.marked.values() if row.mark_until <= now]
        for row in done:
            self.marked.pop(row.uid, None)
        if self.marked:
            self._schedule(max(0.0, min(r.mark_until for r in self.marked.values()) - now))
        return done


def mark_colours(mark: int, role: int):
    """Background/foreground of a highlighted row, or None."""
    if mark == MARK_NONE:
        return None
    if role == _BACKGROUND:
        return NEW_COLOR if mark == MARK_NEW else EXITED_COLOR
    if role == _FOREGROUND:
        return HIGHLIGHT_TEXT_COLOR
    return None



def make_timer(owner: QObject, slot) -> Callable[[float], None]:
    """A single-shot timer that fires at the earliest requested delay."""
    timer = QTimer(owner)
    timer.setSingleShot(True)
    timer.timeout.connect(slot)

    def schedule(delay_s: float) -> None:
        ms = max(0, int(delay_s * 1000) + 1)
        if not timer.isActive() or timer.remainingTime() > ms:
            timer.start(ms)
    return schedule


# ---- The model

PROCESS_COLUMNS = (
    Column("Name", "Image name of the process", sample="MsMpEngService.exe"),
    Column("PID", "Process ID (the CID of its EPROCESS)", True, sample="99999"),
    Column("Class", "Priority class (SetPriorityClass)", sample="Below normal"),
    Column("Base priority", "The process's base priority (KPROCESS.BasePriority), from its class",
           True, sample="31"),
    Column("Threads", "Thread objects of the process, including exited ones still referenced",
           True, sample="9999"),
    Column("CPU %", "Share of all CPUs used since the previous refresh "
                    "(user + kernel time delta / elapsed time / CPU count)", True,
           sample="100.00"),
    Column("CPU time", "User + kernel time the process's threads have used (h:mm:ss.mmm)", True,
           sample="0:00:00.000"),
    Column("Job", "Jobs the process belongs to, innermost first", sample="ServiceJob"),
    Column("Protection", "Protected process level (PS_PROTECTION): PP or PPL and signer",
           sample="PsProtectedSignerWinTcb-Light"),
    Column("Parent PID", "PID of the creating process (it may have exited)", True, False,
           sample="99999"),
    Column("Create time", "When the process was created (simulated seconds)", True, False,
           sample="000.000000"),
    Column("Exit time", "When the process exited (simulated seconds)", True, False,
           sample="000.000000"),
    Column("Exit code", "Exit status of an exited process", True, False, sample="0xC0000005"),
    Column("Affinity", "Processors the process's threads may run on", False, False,
           sample="0-3,8-11"),
    Column("User time", "User-mode CPU time (h:mm:ss.mmm)", True, False, sample="0:00:00.000"),
    Column("Kernel time", "Kernel-mode CPU time (h:mm:ss.mmm)", True, False,
           sample="0:00:00.000"),
)
(NAME, PID, CLASS, BASE, THREADS, CPU_PERCENT, CPU_TIME, JOB, PROTECTION, PARENT_PID,
 CREATE_TIME, EXIT_TIME, EXIT_CODE, AFFINITY, USER_TIME, KERNEL_TIME) = range(len(PROCESS_COLUMNS))
PROCESS_COLUMN_COUNT = len(PROCESS_COLUMNS)


def _name_text(name) -> str:
    return "" if name is None else str(name)


def _jobs_text(jobs: tuple) -> str:
    return ", ".join(str(j) for j in jobs)


_PROCESS_TEXT = (
    _name_text, number_text, class_text, number_text, number_text, percent_text,
    cpu_time_text, _jobs_text, protection_text, number_text, seconds_text, seconds_text,
    exit_code_text, cpus_text, cpu_time_text, cpu_time_text,
)


def _number_key(value):
    return value if is_number(value) else -1


def _process_sort_key(column: int, value):
    if column == NAME:
        return _name_text(value).casefold()
    if column == CLASS:
        return PRIORITY_CLASS_RANK.get(value, -1) if isinstance(value, str) else -1
    if column == JOB:
        return _jobs_text(value).casefold()
    if column == PROTECTION:
        return protection_text(value)
    if column == AFFINITY:
        mask = cpu_mask(value)
        return -1.0 if mask is None else float(mask)
    return _number_key(value)


def process_values(p: dict, percent: float | None, total: float | None) -> tuple:
    """The raw value of every column of process `p` (diffed between refreshes);
    `total` is cpu_total() of its user and kernel times."""
    get = p.get
    threads = get("threads")
    jobs = get("jobs")
    affinity = get("affinity")
    return (
        get("name"), get("pid"), get("priority_class"), get("base_priority"),
        len(threads) if type(threads) is list else None, percent, total,
        tuple(jobs) if type(jobs) is list else as_tuple(jobs), get("protection"),
        get("parent_pid"), get("create_time_us"), get("exit_time_us"),
        get("exit_code") if get("exited") else None,
        tuple(affinity) if type(affinity) is list else as_tuple(affinity),
        get("user_time_us"), get("kernel_time_us"),
    )


def process_total(p: dict) -> float | None:
    return cpu_total(p.get("user_time_us"), p.get("kernel_time_us"))


class _ProcessNode:
    __slots__ = ("uid", "key", "pid", "create_time", "item", "address", "parent", "children",
                 "values", "info", "total", "exited", "gone", "mark", "mark_until", "seq",
                 "seen", "texts", "hit", "hits", "shown")

    def __init__(self, uid: int, item: QStandardItem, key=None, info: dict | None = None) -> None:
        self.uid = uid
        self.key = key
        self.info = info or {}
        self.pid = self.info.get("pid")
        self.create_time = self.info.get("create_time_us")
        self.item = item  # the row's column-0 item: Qt keeps the tree's structure
        self.address = getCppPointer(item)[0]  # what child indexes carry as internalId
        self.parent: _ProcessNode | None = None
        # The uid of every child, shown or filtered out, in the tree's own order (a dict
        # as an ordered set). Uids, not nodes: without reference cycles the nodes go as
        # soon as the model does, and with them the wrappers of its items, which must
        # not outlive the items (see _take_subtree).
        self.children: dict[int, None] = {}
        self.values: tuple = ()
        self.total: float | None = None
        self.exited = bool(self.info.get("exited"))
        self.gone = False  # no longer in the state: shown red until its highlight ends
        self.mark = MARK_NONE
        self.mark_until = 0.0
        self.seq = 0  # when the row was last added under its parent: the tree's own order
        self.seen = 0  # the last refresh (generation) whose state listed it
        self.texts: tuple[str, ...] | None = None  # what the filter matches, once asked
        self.hit = True  # passes the row filter
        self.hits = 0  # rows of its subtree, itself included, that pass: shown while > 0
        self.shown = False  # its item is in the model


def identity_time(value):
    """A create time usable in a key: a number, else None (a source that cannot
    say when an object was created)."""
    return value if is_number(value) else None


def _process_key(p: dict):
    return (p.get("pid"), identity_time(p.get("create_time_us")))


_ROW_FLAGS = Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable
# What a row is ordered by among its siblings, stored in its column-0 item so that
# QStandardItem::sortChildren() compares in C++ without a data() call per comparison.
_ORDER_ROLE = int(Qt.ItemDataRole.UserRole) + 9
_UNSERVED_ROLES = frozenset(int(r) for r in (
    Qt.ItemDataRole.DecorationRole, Qt.ItemDataRole.FontRole, Qt.ItemDataRole.CheckStateRole,
    Qt.ItemDataRole.EditRole, Qt.ItemDataRole.SizeHintRole, Qt.ItemDataRole.StatusTipRole,
    Qt.ItemDataRole.WhatsThisRole, Qt.ItemDataRole.AccessibleTextRole))


def _unique(nodes: Iterable[_ProcessNode]) -> list[_ProcessNode]:
    """`nodes` without repeats, in first-seen order."""
    return list({node.uid: node for node in nodes}.values())


def _free_item(item: QStandardItem) -> None:
    """Delete an item that is out of the model for good.  takeRow() leaves a taken item
    owned by C++ (PySide does not hand it back), so dropping the last Python reference
    only frees the wrapper: without this, every process that ever exited would stay in
    memory (~700 bytes each, without end in a long live session)."""
    if item.model() is None and item.parent() is None and not item.hasChildren():
        Shiboken.delete(item)


def _take_subtree(parent: QStandardItem, row: int) -> None:
    """Remove a row and everything below it by taking each item out, to be deleted
    through shiboken (_free_item).  removeRows() would delete them in C++ behind its back,
    leaving stale wrappers whose addresses a later QObject can reuse (pyqtgraph then
    met a "QStandardItem" among a widget's children).  The row leaves the model first,
    in one removal; its descendants are then taken out of the detached item, unseen."""
    stack = [item for item in parent.takeRow(row) if item is not None]
    while stack:
        item = stack.pop()
        for r in range(item.rowCount() - 1, -1, -1):
            stack.extend(child for child in item.takeRow(r) if child is not None)


class ProcessTreeModel(QStandardItemModel):
    """Processes as a parent/child tree, refreshed from state documents by keyed diff.

    The tree's structure lives in Qt: one QStandardItem per process (column 0; the other
    columns have no item) so that views and proxies walk it in C++. A view re-lays out
    every expanded row after any insertion or removal, and with the structure in Python
    that walk alone took ~100 ms for 5,000 processes. The cells' contents stay in Python:
    data() renders them from each node's raw values.

    A QStandardItemModel index carries its parent item's address as internalId; the
    model maps that address to the parent node, and the parent's child item to the node.

    The row filter (`set_row_filter`) is applied here too, not by a filter proxy: a row
    is shown while it or one of its descendants passes (Process Explorer keeps a match's
    ancestors), and a hidden row's item is out of the model. Each node remembers whether
    it passes and how many rows of its subtree do, so a refresh tests only the rows that
    are new or whose name or jobs changed, and moves only the rows whose visibility did.
    A proxy re-filtered every row through Python callbacks after each layout change,
    walking the subtree of every row that did not match: 100-300 ms a refresh with
    5,000 processes.
    """

    orphansAdopted = Signal(list)
    """Indexes (column 0) of processes just moved to the top level because their parent
    went. A move takes a row out and puts it back, so their subtrees arrive collapsed,
    and when the move was part of a layout change no rowsInserted announced them."""

    def __init__(self, parent: QObject | None = None, *,
                 clock: Callable[[], float] = time.monotonic,
                 highlight_seconds: float = DEFAULT_HIGHLIGHT_SECONDS) -> None:
        super().__init__(parent)
        self.setColumnCount(PROCESS_COLUMN_COUNT)
        root_item = self.invisibleRootItem()
        self._root = _ProcessNode(0, root_item)
        # Qt deletes the invisible root item with the model, and shiboken hears of an
        # item's deletion only for items made in Python: the root's wrapper, held by the
        # root node, would outlive it, and a later object at its address would come back
        # from PySide as that "QStandardItem" (a view's selectionModel(), say).
        self.destroyed.connect(lambda *_: Shiboken.invalidate(root_item))
        self._root.shown = True
        self._by_uid: dict[int, _ProcessNode] = {0: self._root}
        self._by_address: dict[int, _ProcessNode] = {self._root.address: self._root}
        self._by_item: dict[int, _ProcessNode] = {}  # id(item wrapper) -> node
        self._by_key: dict[tuple, _ProcessNode] = {}  # nodes present in the last state
        self._by_pid: dict[int, _ProcessNode] = {}  # the newest node of each PID
        self._next_uid = 1
        self._next_seq = 0
        self._generation = 0  # refreshes applied by diff (see _ProcessNode.seen)
        self._sort_column = -1  # -1: the tree's own order (see sort())
        self._sort_order = Qt.SortOrder.AscendingOrder
        self._reorder_due = False
        self._doomed: list[_ProcessNode] = []  # removed at the end of the refresh
        self.setSortRole(_ORDER_ROLE)
        self._filled = False
        self._last_time_us: float | None = None
        self._last_wall: float | None = None
        self._cpus = None
        self._events: dict[int, dict] = {}  # pid -> process seen created by note_event()
        self.row_filter = TextFilter()  # see set_row_filter()
        # Nodes whose `hits` went from 0 or to 0 since the rows were last shown or hidden.
        self._crossed: list[_ProcessNode] = []
        self.highlights = Highlights(clock, highlight_seconds,
                                     make_timer(self, self.expire_highlights))

    # ---- Public API

    @property
    def highlight_seconds(self) -> float:
        return self.highlights.seconds

    @highlight_seconds.setter
    def highlight_seconds(self, seconds: float) -> None:
        self.highlights.seconds = max(0.0, float(seconds))

    def update(self, state: dict) -> None:
        """Show `state` (a Machine.state()-shaped dict) by keyed diff: rows inserted,
        removed, moved, and dataChanged for the changed cells; never a reset."""
        if not isinstance(state, dict) or not isinstance(state.get("processes"), list):
            raise ValueError("a process state must be a dict with a 'processes' list")
        # A process without an integer PID cannot be told apart from the others: skipped.
        procs = [p for p in state["processes"]
                 if isinstance(p, dict) and isinstance(p.get("pid"), int)]
        now_us = state.get("time_us")
        wall = self.highlights.clock()
        if is_number(now_us) and is_number(self._last_time_us):
            elapsed = now_us - self._last_time_us
        elif self._last_wall is not None:  # a source without a clock: wall time
            elapsed = (wall - self._last_wall) * 1e6
        else:
            elapsed = None
        self._cpus = state.get("cpus")
        if not self._filled:
            self._events.clear()  # before the first state: nothing to compare with
            self._first_fill(procs)
        else:
            self._expire()
            self._apply_diff(procs, elapsed, self._last_time_us)
        if elapsed is None or elapsed > 0:  # a paused source keeps the last CPU %
            self._last_time_us = now_us if is_number(now_us) else None
            self._last_wall = wall
        self._settle()

    def note_event(self, event: dict) -> None:
        """Take a kernel event (formats.md §3; a Machine.subscribe callback). A process
        that starts and exits between two states is then shown at the next update(),
        red for a moment, instead of never: what Process Explorer misses."""
        if not isinstance(event, dict) or not isinstance(event.get("pid"), int):
            return
        kind, pid = event.get("type"), event["pid"]
        if kind == "process_create":
            self._events[pid] = {
                "pid": pid, "name": event.get("name"), "parent_pid": event.get("parent_pid"),
                "create_time_us": event.get("time_us"), "exited": False,
                "exit_time_us": None, "exit_code": None, "jobs": [],
                "short_lived": True}
        elif kind == "process_exit" and pid in self._events:
            info = self._events[pid]
            info.update(exited=True, exit_code=event.get("exit_code"),
                        exit_time_us=event.get("time_us"))

    def expire_highlights(self) -> None:
        """End the highlights whose time is over: new rows lose their green, exited
        rows their red, and processes no longer in the state are removed."""
        self._expire()
        self._settle()

    def _expire(self) -> None:
        gone: list[_ProcessNode] = []
        plain: list[tuple[_ProcessNode, int, int]] = []
        for node in self.highlights.due():
            was = node.mark
            node.mark = MARK_NONE
            if node.uid not in self._by_uid:
                continue
            if was == MARK_EXITED and node.gone:
                gone.append(node)
            else:
                plain.append((node, 0, PROCESS_COLUMN_COUNT - 1))
        self._report_changes(plain)
        self._doomed.extend(gone)

    def index_for_pid(self, pid: int, column: int = 0) -> QModelIndex:
        """The row of process `pid`; invalid when there is none or the filter hides it."""
        node = self._by_pid.get(pid)
        if node is None or node.uid not in self._by_uid:
            return QModelIndex()
        return self._index_of(node, column)

    def filtered_out(self, pid: int) -> bool:
        """Whether process `pid` is known but hidden by the row filter."""
        node = self._by_pid.get(pid)
        return node is not None and node.uid in self._by_uid and not node.shown

    def pid_at(self, index: Index) -> int | None:
        node = self._node(index)
        return None if node is None else node.pid

    def process(self, pid: int) -> dict | None:
        """The last state entry of process `pid`, as given to update()."""
        node = self._by_pid.get(pid)
        return None if node is None else node.info

    def search_texts(self, node: _ProcessNode) -> tuple[str, ...]:
        """What the filter box matches: name, PID and job names."""
        v = node.values
        return (_name_text(v[NAME]), number_text(v[PID]), _jobs_text(v[JOB]))

    def process_count(self) -> int:
        """Processes known, the ones the filter hides included."""
        return len(self._by_uid) - 1

    def set_row_filter(self, text_filter: TextFilter) -> None:
        """Show only the rows that pass `text_filter` (see TextFilter) and their
        ancestors; an inactive filter shows every row.

        Every row is tested once here; refreshes then test only new rows and rows whose
        name or jobs changed. Rows that go are taken out in one layout change, like exited
        ones (see _remove_nodes); rows that come back are inserted where they were, with
        rowsInserted, and arrive collapsed."""
        self.row_filter = text_filter
        nodes = [node for node in self._by_uid.values() if node is not self._root]
        for node in nodes:
            node.hit = self._passes(node)
        self._count_hits(nodes)
        self._crossed = []
        self._hide([node for node in nodes if node.shown and not node.hits])
        self._show([node for node in nodes if node.hits and not node.shown])
        if self._reorder_due:
            self._reorder()

    def sort(self, column: int, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:
        """Order each process's children (and the top level) by `column`; -1 restores the
        tree's own order, in which the rows came. The order is kept through refreshes.

        The model sorts itself rather than leaving it to a sorting proxy: the proxy
        re-sorts once per changed run of rows, each time remapping every persistent index
        (one per expanded row), which cost ~100 ms a refresh with 5,000 processes. Here a
        refresh re-sorts once, in C++ (see _ORDER_ROLE)."""
        column = column if 0 <= column < PROCESS_COLUMN_COUNT else -1
        order = order if column >= 0 else Qt.SortOrder.AscendingOrder
        if (column, order) == (self._sort_column, self._sort_order):
            return  # the view asks again whenever the header's indicator is set
        self._sort_column, self._sort_order = column, order
        self._set_order_keys(n for n in self._by_uid.values() if n is not self._root)
        self._reorder()

    # ---- Reimplemented Qt methods (structure: QStandardItemModel's, in C++)

    def headerData(self, section: int, orientation: Qt.Orientation,
                   role: int = Qt.ItemDataRole.DisplayRole):
        return column_header(PROCESS_COLUMNS, section, orientation, role)

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole):
        if role in _UNSERVED_ROLES:  # asked for every painted cell: answer before lookups
            return None
        if role == _ALIGNMENT:  # the column's alone, also asked for every painted cell
            column = index.column()
            return (NUMERIC_ALIGNMENT if 0 <= column < PROCESS_COLUMN_COUNT
                    and PROCESS_COLUMNS[column].numeric and index.isValid() else None)
        node = self._node(index)
        if node is None:
            return None
        column = index.column()
        if role == _DISPLAY:
            return _PROCESS_TEXT[column](node.values[column])
        if role == _BACKGROUND or role == _FOREGROUND:
            colour = mark_colours(node.mark, role)
            if colour is None and role == _FOREGROUND and node.exited:
                return ZOMBIE_TEXT_COLOR
            return colour
        if role == SORT_ROLE:
            return _process_sort_key(column, node.values[column])
        if role == PID_ROLE:
            return node.pid
        if role == _TOOLTIP:
            return self._tooltip(node, column)
        return None

    def setData(self, index: Index, value, role: int = Qt.ItemDataRole.EditRole) -> bool:
        return False  # the kernel's state is the only writer

    # flags() is QStandardItemModel's, in C++: a row's column-0 item carries its flags
    # (enabled, selectable), and the tree view asks for them for every row at each
    # relayout (isIndexExpanded), which in Python cost 8 ms with 5,000 processes. The
    # cells beside it, which have no item, get Qt's default flags; setData() refuses
    # every edit and the view has no edit triggers.

    # ---- Tree bookkeeping

    def _node(self, index: Index) -> _ProcessNode | None:
        # An invalid index has internalId 0, which no item's address is.
        pnode = self._by_address.get(index.internalId())
        if pnode is None:
            return None
        return self._by_item.get(id(pnode.item.child(index.row())))

    def _index_of(self, node: _ProcessNode, column: int = 0) -> QModelIndex:
        if node is self._root or not node.shown:
            return QModelIndex()
        index = self.indexFromItem(node.item)
        return index if column == 0 else index.siblingAtColumn(column)

    def _new_node(self, p: dict) -> _ProcessNode:
        item = QStandardItem()
        item.setFlags(_ROW_FLAGS)
        item.setColumnCount(PROCESS_COLUMN_COUNT)  # room for the cells of its children
        node = _ProcessNode(self._next_uid, item, _process_key(p), p)
        self._next_uid += 1
        return node

    def _adopt(self, node: _ProcessNode) -> None:
        self._by_uid[node.uid] = node
        self._by_address[node.address] = node
        self._by_item[id(node.item)] = node

    def _place(self, node: _ProcessNode, parent: _ProcessNode) -> None:
        """Make `node` the last child of `parent` in the tree's own order, and when
        sorted give it its key; its item is outside the model (no signal), and goes in
        when shown (see _show)."""
        node.parent = parent
        parent.children[node.uid] = None
        node.seq = self._next_seq
        self._next_seq += 1
        if self._sort_column >= 0:
            node.item.setData(self._order_key(node), _ORDER_ROLE)

    def _order_key(self, node: _ProcessNode):
        if self._sort_column < 0:
            return node.seq
        key = _process_sort_key(self._sort_column, node.values[self._sort_column])
        # Numbers as floats: PySide stores an int as a 32- or 64-bit integer by its size,
        # and Qt misorders the two (an exit code such as 0xC0000005 needs 64 bits).
        return float(key) if type(key) is int else key

    def _set_order_keys(self, nodes: Iterable[_ProcessNode]) -> None:
        # The key role is the model's own business: views and proxies never read it, and
        # a dataChanged per item would make each of them walk the tree again.
        blocker = QSignalBlocker(self)
        try:
            for node in nodes:
                node.item.setData(self._order_key(node), _ORDER_ROLE)
        finally:
            blocker.unblock()

    def _settle(self) -> None:
        """The end of a refresh: remove the rows whose time is over and hide the rows
        left without a match, then re-sort if rows came or sort keys changed; one layout
        change for all."""
        doomed, self._doomed = self._doomed, []
        self._remove_nodes(doomed)
        if self._reorder_due:
            self._reorder()

    def _reorder(self) -> None:
        """Order the children of every parent in C++, moving the persistent indexes
        (selection, expanded rows) along; one layout change."""
        self._reorder_due = False
        QStandardItemModel.sort(self, 0, self._sort_order)

    def _parent_for(self, node: _ProcessNode, candidates: dict) -> _ProcessNode:
        """The node's parent among `candidates` (pid -> node), else the root."""
        ppid = node.info.get("parent_pid")
        # Idle (pid 0) parents nothing on screen: System and orphans are roots.
        if not isinstance(ppid, int) or ppid == 0 or ppid == node.pid:
            return self._root
        parent = candidates.get(ppid)
        if parent is None or parent is node:
            return self._root
        # A parent younger than its child is a reused PID, not the creator.
        if (is_number(parent.create_time) and is_number(node.create_time)
                and parent.create_time > node.create_time):
            return self._root
        return parent

    def _first_fill(self, procs: list[dict]) -> None:
        nodes = []
        for p in procs:
            if _process_key(p) in self._by_key:
                continue  # a duplicate entry: the first one wins
            node = self._new_node(p)
            nodes.append(node)
            self._by_key[node.key] = node
            self._by_pid[node.pid] = node
        for node in nodes:
            node.total = process_total(node.info)
            node.values = process_values(node.info, None, node.total)
            parent = self._parent_for(node, self._by_pid)
            # A cycle in bad data (a parent of its own ancestor) becomes a root.
            up = parent
            while up is not None and up is not self._root:
                if up is node:
                    parent = self._root
                    break
                up = up.parent
            self._adopt(node)
            self._place(node, parent)
            node.hit = self._passes(node)
        self._filled = True
        self._count_hits(nodes)
        self._show([node for node in nodes if node.hits])  # the whole tree in one insertion

    def _apply_diff(self, procs: list[dict], elapsed, last_time_us) -> None:
        rate = percent_rate(elapsed, self._cpus)
        paused = elapsed == 0
        by_key = self._by_key
        new: list[_ProcessNode] = []
        changed: list[tuple[_ProcessNode, int, int]] = []  # node, first and last column
        sort_column = self._sort_column
        rekeyed: list[_ProcessNode] = []  # sorted, and the sort column's value changed
        # A mark on each node listed, rather than a set of keys: one hash a process.
        self._generation += 1
        generation = self._generation
        new_keys: set = set()
        for p in procs:
            created = p.get("create_time_us")
            key = (p["pid"], created if type(created) is float else identity_time(created))
            node = by_key.get(key)
            if node is None:
                if key in new_keys:
                    continue  # a duplicate entry: the first one wins
                new_keys.add(key)
            elif node.seen == generation:
                continue
            else:
                node.seen = generation
            user, kernel = p.get("user_time_us"), p.get("kernel_time_us")
            if type(user) is float and type(kernel) is float:  # the simulator's case
                total = user + kernel
            else:
                total = cpu_total(user, kernel)
            if node is None:
                node = self._new_node(p)
                # Born since the last refresh: all of its CPU time is in this interval.
                created = node.create_time
                born_after = (not is_number(created) or not is_number(last_time_us)
                              or created >= last_time_us)
                percent = percent_from(0, total, rate) if born_after else None
                node.total = total
                node.values = process_values(p, percent, total)
                new.append(node)
                continue
            node.info = p
            prev = node.total
            if rate is not None and total is not None and prev is not None and total >= prev:
                percent = (total - prev) * rate
                if percent > 100.0:
                    percent = 100.0
            elif paused:
                percent = node.values[CPU_PERCENT]
            else:
                percent = None
            node.total = total
            values = process_values(p, percent, total)
            old = node.values
            first = last = -1
            if values != old:
                node.values = values
                for c in range(PROCESS_COLUMN_COUNT):
                    if values[c] != old[c]:
                        if first < 0:
                            first = c
                        last = c
                if sort_column >= 0 and values[sort_column] != old[sort_column]:
                    rekeyed.append(node)
                if values[NAME] != old[NAME] or values[JOB] != old[JOB]:
                    self._retest(node)  # what the filter matches changed
            if p.get("exited") and not node.exited:
                node.exited = True
                self.highlights.mark(node.uid, node, MARK_EXITED)
                first, last = 0, PROCESS_COLUMN_COUNT - 1  # the whole row turns red
            if first >= 0:
                changed.append((node, first, last))
        self._report_changes(changed)
        if rekeyed:
            self._set_order_keys(rekeyed)
            self._reorder_due = True
        # Processes gone from the state: red for a moment, then removed.
        vanished = [node for node in by_key.values() if node.seen != generation]
        remove_now: list[_ProcessNode] = []
        turned_red: list[tuple[_ProcessNode, int, int]] = []
        for node in vanished:
            del by_key[node.key]
            node.gone = True
            if self._by_pid.get(node.pid) is node:
                del self._by_pid[node.pid]
            if node.mark == MARK_EXITED:
                continue  # already red: removed when that ends
            if node.exited or self.highlights.seconds <= 0:
                remove_now.append(node)  # had its red moment when it exited
            else:
                self.highlights.mark(node.uid, node, MARK_EXITED)
                turned_red.append((node, 0, PROCESS_COLUMN_COUNT - 1))
        self._report_changes(turned_red)
        self._doomed.extend(remove_now)
        if new:
            self._insert_nodes(new)
        flashes = self._short_lived()
        if flashes:
            self._insert_nodes(flashes, MARK_EXITED)
        # Rows that got a match below them or became one: new rows, hidden ancestors.
        self._show([node for node in _unique(self._crossed) if node.hits and not node.shown])

    def _short_lived(self) -> list[_ProcessNode]:
        """Nodes for the processes that note_event() saw start and exit since the last
        state: no state ever lists them, and without this no refresh would show them."""
        events, self._events = self._events, {}
        if self.highlights.seconds <= 0:
            return []
        flashes = []
        for info in events.values():
            key = _process_key(info)
            if not info["exited"] or key in self._by_key:  # new ones are in it by now
                continue
            node = self._new_node(info)
            node.values = process_values(info, None, None)
            node.exited = node.gone = True
            flashes.append(node)
        return flashes

    def _report_changes(self, changed: list[tuple[_ProcessNode, int, int]]) -> None:
        """One dataChanged per run of adjacent changed siblings, over the columns that
        changed in that run: each signal costs the view a walk, and the first interval
        after a fill changes every row's CPU %."""
        by_parent: dict[int, list[tuple[int, int, int]]] = {}
        for node, first, last in changed:
            if node.shown:  # a hidden row has no index
                by_parent.setdefault(node.parent.uid, []).append((node.item.row(), first, last))
        for uid, rows in by_parent.items():
            parent_index = self._index_of(self._by_uid[uid])
            rows.sort()
            for top, bottom, first, last in row_runs(rows):
                self.dataChanged.emit(self.index(top, first, parent_index),
                                      self.index(bottom, last, parent_index))

    def _insert_nodes(self, new: list[_ProcessNode], kind: int = MARK_NEW) -> None:
        """Add processes new in the state (green), or ones that started and exited
        between two states (red, and not part of the state: `kind` MARK_EXITED). They
        join the tree here; the ones the filter shows go into the model at the end of
        the diff (see _show)."""
        if kind == MARK_NEW:
            for node in new:
                self._by_key[node.key] = node
                self._by_pid[node.pid] = node
            candidates = self._by_pid
        else:  # a live process that reused the PID stays the owner of that PID
            candidates = {node.pid: node for node in new}
            candidates.update(self._by_pid)
        pending = {node.uid: node for node in new}
        # Level by level, a parent before its children (whose hits it counts), siblings
        # born together in the order they came.
        while pending:
            groups: dict[int, list[_ProcessNode]] = {}
            parents: dict[int, _ProcessNode] = {}
            for node in pending.values():
                parent = self._parent_for(node, candidates)
                if parent.uid in pending:
                    continue  # after its parent
                groups.setdefault(parent.uid, []).append(node)
                parents[parent.uid] = parent
            if not groups:  # only a cycle is left: break it at the top level
                groups = {0: list(pending.values())}
                parents = {0: self._root}
            for uid, nodes in groups.items():
                parent = parents[uid]
                for node in nodes:  # coloured from the start: no dataChanged needed
                    self.highlights.mark(node.uid, node, kind)
                    self._adopt(node)
                    self._place(node, parent)
                    node.hit = self._passes(node)
                    if node.hit:
                        self._add_hits(node, 1)
                    del pending[node.uid]

    # ---- Filtering: which rows are in the model

    def _passes(self, node: _ProcessNode) -> bool:
        """Whether the row passes the row filter (its texts are kept for the next test)."""
        if not self.row_filter.active:
            return True
        if node.texts is None:
            node.texts = self.search_texts(node)
        return self.row_filter.matches(node.texts)

    def _retest(self, node: _ProcessNode) -> None:
        """A row's searchable texts changed: test it again."""
        node.texts = None
        hit = self._passes(node)
        if hit != node.hit:
            node.hit = hit
            self._add_hits(node, 1 if hit else -1)

    def _count_hits(self, nodes: list[_ProcessNode]) -> None:
        """`hits` from scratch for `nodes`, a whole tree or a whole first fill."""
        root = self._root
        for node in nodes:
            node.hits = 0
        for node in nodes:
            if node.hit:
                up = node
                while up is not root:
                    up.hits += 1
                    up = up.parent

    def _add_hits(self, node: _ProcessNode, delta: int) -> None:
        """Add `delta` to the hits of `node` and of its ancestors, noting the ones whose
        hits become or stop being 0 (their rows are shown or hidden at the end of the
        refresh)."""
        root = self._root
        crossed = self._crossed
        while node is not root:
            before = node.hits
            node.hits = before + delta
            if not before or not node.hits:
                crossed.append(node)
            node = node.parent

    def _show(self, nodes: list[_ProcessNode]) -> None:
        """Put hidden rows into the model, each under its parent, which is shown or one
        of `nodes`: a subtree arrives whole, with one insertion (rowsInserted) per run of
        siblings, each run where it belongs among the shown siblings."""
        if not nodes:
            return
        showing = {node.uid for node in nodes}
        tops: dict[int, list[_ProcessNode]] = {}  # shown parent uid -> its new rows
        for node in sorted(nodes, key=lambda n: n.seq):  # siblings in the tree's order
            node.shown = True
            parent = node.parent
            if parent.uid in showing:
                parent.item.appendRow(node.item)  # outside the model yet: no signal
                if self._sort_column >= 0:
                    self._reorder_due = True  # a subtree in the tree's order
            else:
                tops.setdefault(parent.uid, []).append(node)
        for uid, group in tops.items():
            parent = self._by_uid[uid]
            if self._sort_column >= 0:
                runs = self._sorted_runs(parent, group)
            else:
                runs = self._tree_runs(parent, showing)
            for row, items in runs:
                parent.item.insertRows(row, items)

    def _tree_runs(self, parent: _ProcessNode,
                   showing: set[int]) -> list[tuple[int, list[QStandardItem]]]:
        """Where the rows of `showing` go among the shown children of `parent`, in the
        tree's own order: (row, items) per run of them, each row counting the runs
        before it."""
        by_uid = self._by_uid
        runs: list[tuple[int, list[QStandardItem]]] = []
        run: list[QStandardItem] = []
        row = 0
        for uid in parent.children:
            child = by_uid[uid]
            if uid in showing:
                if not run:
                    runs.append((row, run))
                run.append(child.item)
            elif child.shown:
                run = []
            else:
                continue
            row += 1
        return runs

    def _sorted_runs(self, parent: _ProcessNode,
                     group: list[_ProcessNode]) -> list[tuple[int, list[QStandardItem]]]:
        """_tree_runs() when sorted: each row where the sort puts it among the shown
        children of `parent` (found by bisection: they are sorted, or a re-sort is due
        anyway), rows with equal keys in the tree's own order, as a stable re-sort of
        rows that were never hidden leaves them."""
        descending = self._sort_order == Qt.SortOrder.DescendingOrder
        keys = {node.uid: self._order_key(node) for node in group}
        group = sorted(sorted(group, key=lambda n: n.seq), key=lambda n: keys[n.uid],
                       reverse=descending)
        item, by_item, order_key = parent.item, self._by_item, self._order_key
        count = item.rowCount()
        runs: list[tuple[int, list[QStandardItem]]] = []
        placed = 0
        last = -1
        for node in group:
            key = keys[node.uid]
            low, high = 0, count
            while low < high:
                middle = (low + high) // 2
                sibling = by_item[id(item.child(middle))]
                sibling_key = order_key(sibling)
                if sibling_key == key:
                    after = sibling.seq > node.seq
                else:
                    after = sibling_key < key if descending else sibling_key > key
                if after:
                    high = middle
                else:
                    low = middle + 1
            if low != last:
                runs.append((low + placed, []))
                last = low
            runs[-1][1].append(node.item)
            placed += 1
        return runs

    def _hide(self, nodes: list[_ProcessNode]) -> None:
        """Take rows out of the model in one layout change (see _remove_nodes)."""
        if not nodes:
            return
        self.layoutAboutToBeChanged.emit()
        blocker = QSignalBlocker(self)
        try:
            self._take_out(nodes)
        finally:
            blocker.unblock()
        self.layoutChanged.emit()

    def _take_out(self, leaving: list[_ProcessNode]) -> None:
        """Take shown rows out of the model, leaving each item alone, out of its parent
        and without children, as the item of a hidden row is.

        Only the highest rows leave the model (a row takes its subtree along, and each
        removal costs Qt a walk over every persistent index); the rest is done on the
        detached items, unseen. An item's children are either leaving too or orphans of
        a removed process, which the caller puts back."""
        out = {node.uid for node in leaving}
        tops = []  # no leaving ancestor
        for node in leaving:
            up = node.parent
            while up is not None and up.uid not in out:
                up = up.parent
            if up is None:
                tops.append(node)
        for node in sorted(tops, key=lambda n: n.item.row(), reverse=True):
            node.parent.item.takeRow(node.item.row())  # bottom-up: rows stay valid
        for node in leaving:
            item = node.item
            for row in range(item.rowCount() - 1, -1, -1):
                item.takeRow(row)
        for node in leaving:  # an orphan may still hold one
            holder = node.item.parent()
            if holder is not None:
                holder.takeRow(node.item.row())
            node.shown = False

    def _remove_nodes(self, nodes: list[_ProcessNode]) -> None:
        """Remove processes, and hide the rows left without a match; the surviving
        children of a removed process go to the top level, as Process Explorer shows
        orphans.

        One layout change for them all, the re-sort included when one is due: each
        removal a model reports makes the views check every persistent index (one per
        expanded row) up to the root, ~2 ms with 5,000 processes, where a layout change
        costs ~3 ms whatever it holds. The model's signals are blocked meanwhile; Qt
        still moves or invalidates the persistent indexes (selection, expanded rows) as
        rows go, that bookkeeping is not signal-driven. A removed current row leaves no
        current row behind, rather than the neighbour a removal would select."""
        removing = {node.uid for node in nodes if node.uid in self._by_uid}
        doomed = [node for node in nodes if node.uid in removing]
        # Their ancestors lose their hits and the orphans' (done before any row moves).
        orphans: list[_ProcessNode] = []
        for node in doomed:
            if node.hit:
                self._add_hits(node, -1)
        for node in doomed:
            for uid in node.children:
                if uid not in removing:
                    child = self._by_uid[uid]
                    if child.hits:
                        self._add_hits(node, -child.hits)
                    orphans.append(child)
        leaving = [node for node in doomed if node.shown]
        leaving.extend(node for node in _unique(self._crossed)
                       if node.shown and not node.hits and node.uid not in removing)
        self._crossed = []
        moved = []  # shown orphans: out of the removed rows, back at the top level
        if leaving:
            self.layoutAboutToBeChanged.emit()
            blocker = QSignalBlocker(self)
            try:
                self._take_out(leaving)
                self._adopt_orphans(doomed, orphans)
                moved = [child for child in orphans if child.shown]
                if moved:
                    self._root.item.appendRows([child.item for child in moved])
                    if self._sort_column >= 0:
                        self._reorder_due = True
                if self._reorder_due:
                    self._reorder()
            finally:
                blocker.unblock()
            self.layoutChanged.emit()
        else:  # the orphans, if any, are hidden: no row moves
            self._adopt_orphans(doomed, orphans)
        for node in doomed:  # after the views were told: data() answered meanwhile
            self._forget(node)
        if moved:
            self.orphansAdopted.emit([self._index_of(node) for node in moved])

    def _adopt_orphans(self, doomed: list[_ProcessNode], orphans: list[_ProcessNode]) -> None:
        """The tree without the removed processes: their surviving children become
        the last top-level rows, in order."""
        for node in doomed:
            node.parent.children.pop(node.uid, None)
        for child in orphans:
            self._place(child, self._root)

    def release_items(self) -> None:
        """Take every item out before the model goes and delete it, the rows the filter
        hides included (see _take_subtree, _free_item); the model is empty afterwards and
        can be filled again."""
        root = self._root.item
        for row in range(root.rowCount() - 1, -1, -1):
            _take_subtree(root, row)
        for node in self._by_uid.values():
            if node is not self._root:
                _free_item(node.item)
        self._by_uid = {0: self._root}
        self._by_address = {self._root.address: self._root}
        self._root.children = {}
        self._by_item.clear()
        self._by_key.clear()
        self._by_pid.clear()
        self._doomed.clear()
        self._crossed = []
        self._reorder_due = False
        self._filled = False

    def _forget(self, node: _ProcessNode) -> None:
        """Drop a removed node (its item is gone: never touch it again)."""
        self._by_uid.pop(node.uid, None)
        self._by_address.pop(node.address, None)
        self._by_item.pop(id(node.item), None)
        self.highlights.marked.pop(node.uid, None)
        if self._by_key.get(node.key) is node:
            del self._by_key[node.key]
        if self._by_pid.get(node.pid) is node:
            del self._by_pid[node.pid]
        node.parent = None
        node.children = {}
        _free_item(node.item)  # out of the model by now

    def _tooltip(self, node: _ProcessNode, column: int) -> str | None:
        v = node.values
        if column == NAME:
            lines = [f"{_name_text(v[NAME])} (PID {number_text(v[PID])})"]
            parent = node.parent
            ppid = v[PARENT_PID]
            if parent is not None and parent is not self._root:
                lines.append(f"Parent: {_name_text(parent.values[NAME])} ({number_text(ppid)})")
            elif ppid is not None:
                lines.append(f"Parent PID {ppid} (no longer running)")
            lines.append(f"Class: {class_text(v[CLASS]) or 'n/a'}, base priority "
                         f"{number_text(v[BASE]) or 'n/a'}")
            lines.append(f"Created at {seconds_text(v[CREATE_TIME]) or 'n/a'} s")
            if node.info.get("short_lived"):
                lines.append("Started and exited between two refreshes (seen in the "
                             "kernel's events)")
            if node.exited or node.gone:
                lines.append(f"Exited at {seconds_text(v[EXIT_TIME]) or 'n/a'} s, exit code "
                             f"{exit_code_text(v[EXIT_CODE]) or 'n/a'}")
                if not node.gone:
                    lines.append("Still referenced by a handle (the object lives on)")
            if node.info.get("foreground"):
                lines.append("Foreground process (gets the foreground quantum)")
            return "\n".join(lines)
        if column in (CPU_TIME, USER_TIME, KERNEL_TIME):
            return f"User {us_text(v[USER_TIME])}\nKernel {us_text(v[KERNEL_TIME])}"
        if column == AFFINITY:
            mask = cpu_mask(v[AFFINITY])
            return None if mask is None else f"Affinity mask 0x{mask:X}"
        if column == JOB and v[JOB]:
            return "Innermost first: " + " ⊂ ".join(str(j) for j in v[JOB])
        if column == PROTECTION and v[PROTECTION] not in (None, "none"):
            return str(v[PROTECTION])
        return None


# ---- The view

class ProcessTreeView(QWidget):
    """Filter box over the process tree; selection drives the rest of the window."""

    processSelected = Signal(int)
    """PID of the newly selected process; -1 when nothing is selected any more."""

    def __init__(self, parent: QWidget | None = None, *,
                 model: ProcessTreeModel | None = None) -> None:
        super().__init__(parent)
        # No proxy in front: the model filters and sorts itself (see ProcessTreeModel).
        self.model = model or ProcessTreeModel(self)
        self._selected_pid = -1

        self.filter_edit = FilterEdit("Filter processes (text, re:regex, !negate)  Ctrl+F")
        self.filter_edit.setObjectName("process_filter")
        self.filter_edit.filterChanged.connect(self._on_filter_changed)

        self.tree = QTreeView()
        self.tree.setObjectName("process_tree")
        self.tree.setModel(self.model)
        self.tree.setUniformRowHeights(True)  # needed to stay fast with thousands of rows
        self.tree.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.tree.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.tree.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.tree.setAllColumnsShowFocus(True)
        header = self.tree.header()
        header.setSectionsMovable(True)
        header.setStretchLastSection(False)
        # Clicking a sorted header a third time returns to the tree's own order.
        header.setSortIndicatorClearable(True)
        header.setSortIndicator(-1, Qt.SortOrder.AscendingOrder)
        self.tree.setSortingEnabled(True)
        # Names stay readable three levels down (wininit.exe > services.exe > svchost.exe)
        self.column_chooser = ColumnChooser(header, PROCESS_COLUMNS, always_shown=(NAME,),
                                            indent=(3 + 1) * self.tree.indentation())
        self.column_chooser.reset()

        self.filter_action = QAction("&Filter Processes", self)
        self.filter_action.setObjectName("process_filter_action")
        self.filter_action.setShortcut(QKeySequence.StandardKey.Find)
        # Only while the focus is in this view: the window may own Ctrl+F elsewhere.
        self.filter_action.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        self.filter_action.setStatusTip("Type to filter the process tree")
        self.filter_action.triggered.connect(self.focus_filter)
        self.addAction(self.filter_action)

        box = QVBoxLayout(self)
        box.setContentsMargins(0, 0, 0, 0)
        box.addWidget(self.filter_edit)
        box.addWidget(self.tree, 1)

        self.model.rowsInserted.connect(self._on_rows_inserted)
        self.model.orphansAdopted.connect(self._on_orphans_adopted)
        self.tree.selectionModel().currentRowChanged.connect(self._on_current_changed)
        self.model.rowsRemoved.connect(self._check_selection)
        # Rows removed or filtered out in a layout change (see
        # ProcessTreeModel._remove_nodes) take the current row with them without a
        # currentRowChanged.
        self.model.layoutChanged.connect(self._check_selection)

    # ---- Public API

    def update_state(self, state: dict) -> None:
        """Show a new state document (see ProcessTreeModel.update)."""
        self.model.update(state)

    def selected_pid(self) -> int:
        return self._selected_pid

    def select_pid(self, pid: int) -> bool:
        """Select and show process `pid` (clearing a filter that hides it)."""
        if self.model.filtered_out(pid):
            self.filter_edit.clear()  # applied at once
        index = self.model.index_for_pid(pid)
        if not index.isValid():
            return False
        self.tree.setCurrentIndex(index)
        self.tree.scrollTo(index)
        return True

    def expand_all(self, below: QModelIndex = QModelIndex()) -> None:
        """Expand every process (below `below`) that has children. Unlike
        QTreeView.expandAll() this leaves the leaves alone: the view re-lays out every
        expanded row after each insertion or removal, and expanded leaves would triple
        that work."""
        model, tree = self.model, self.tree
        stack = [below]
        while stack:
            parent = stack.pop()
            for row in range(model.rowCount(parent)):
                index = model.index(row, 0, parent)
                if model.rowCount(index):
                    tree.expand(index)
                    stack.append(index)

    def focus_filter(self) -> None:
        self.filter_edit.setFocus(Qt.FocusReason.ShortcutFocusReason)
        self.filter_edit.selectAll()

    def header_state(self) -> QByteArray:
        """Column order, widths, hidden columns and sort, for QSettings."""
        return self.tree.header().saveState()

    def restore_header_state(self, data: QByteArray | bytes) -> bool:
        return self.tree.header().restoreState(QByteArray(data))

    # ---- Slots

    def _on_filter_changed(self, text_filter: TextFilter) -> None:
        if not text_filter.active:
            self.model.set_row_filter(text_filter)
            return
        # Every row a filter shows is expanded below, so none needs its expansion kept,
        # and with no expanded rows the rows it hides leave the model at a fraction of
        # the cost: Qt walks every persistent index (one per expanded row) up to the
        # root for each row that goes (~0.5 ms with 5,000 processes).
        scrolled = self.tree.verticalScrollBar().value()
        self.tree.collapseAll()
        self.model.set_row_filter(text_filter)
        self.expand_all()
        # Collapsing scrolled to the top: back to the same offset, as without it.
        self.tree.executeDelayedItemsLayout()
        self.tree.verticalScrollBar().setValue(scrolled)

    def _on_rows_inserted(self, parent: QModelIndex, first: int, last: int) -> None:
        # Show a process's first children; leave a tree the user collapsed alone.
        if parent.isValid() and first == 0 and self.model.rowCount(parent) == last + 1:
            self.tree.expand(parent)
        # Rows can come with their subtrees (the first fill, rows a filter shows again):
        # open those too.
        for row in range(first, last + 1):
            self._open_subtree(self.model.index(row, 0, parent))

    def _on_orphans_adopted(self, indexes: list) -> None:
        for index in indexes:
            self._open_subtree(index)

    def _open_subtree(self, index: QModelIndex) -> None:
        if index.isValid() and self.model.rowCount(index):
            self.tree.expand(index)
            self.expand_all(index)

    def _on_current_changed(self, current: QModelIndex, _previous: QModelIndex) -> None:
        pid = current.data(PID_ROLE) if current.isValid() else None
        self._emit_selection(pid if isinstance(pid, int) else -1)

    def _check_selection(self) -> None:
        if not self.tree.currentIndex().isValid():
            self._emit_selection(-1)

    def _emit_selection(self, pid: int) -> None:
        if pid != self._selected_pid:
            self._selected_pid = pid
            self.processSelected.emit(pid)

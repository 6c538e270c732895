"""The event log: the kernel's events (formats.md §3) as a bounded, filterable table.

`EventLogModel` is append-only: `append_events(events)` adds a whole batch with one
beginInsertRows, and once `max_rows` is exceeded the oldest rows are dropped with one
beginRemoveRows. `enqueue(event)` suits `Machine.subscribe`: the kernel calls it inside
run_until, and the queued events reach the view in one batch when the event loop runs.

Each event is rendered once, on arrival, into the texts the view shows, because the
details depend on what was known at that moment: a `priority` event carries only the
new priority, so the model remembers each thread's last one to write "9 → 10".
"""

from __future__ import annotations

from collections.abc import Iterable

from PySide6.QtCore import (
    QAbstractTableModel, QByteArray, QModelIndex, QObject, QSortFilterProxyModel, Qt, QTimer,
    Signal,
)
from PySide6.QtGui import QAction
from PySide6.QtWidgets import (
    QAbstractItemView, QHBoxLayout, QHeaderView, QLabel, QMenu, QTableView, QToolButton,
    QVBoxLayout, QWidget,
)

from inspector.process_model import (
    FIELD_SEPARATOR, NUMERIC_ALIGNMENT, PID_ROLE, TID_ROLE, FilterEdit, Index, TextFilter,
    exit_code_text, is_number,
)

EVENT_TYPES = ("process_create", "process_exit", "thread_create", "thread_exit", "priority",
               "api_error", "job_message", "open_process", "open_thread", "fls_callback",
               "unhandled_exception")
EVENT_TYPE_TIPS = {
    "process_create": "A process was created",
    "process_exit": "A process exited",
    "thread_create": "A thread was created",
    "thread_exit": "A thread exited",
    "priority": "A thread's current priority was set: boost, decay, starvation boost, "
                "SetThreadPriority, SetPriorityClass",
    "api_error": "A call failed; the Win32 error it returned",
    "job_message": "A job posted a JOB_OBJECT_MSG_ message to its completion port",
    "open_process": "OpenProcess, and whether protection or access checks refused it",
    "open_thread": "OpenThread, and whether protection or access checks refused it",
    "fls_callback": "An FLS callback ran: a fiber was deleted, a thread exited or an FLS "
                    "index was freed with data in its slot",
    "unhandled_exception": "No handler took a thread's exception: its process ends with the "
                           "exception code as exit status",
}

LOG_COLUMNS = ("Time (s)", "Type", "Process", "Thread", "Details")
TIME, TYPE, PROCESS, THREAD, DETAILS = range(len(LOG_COLUMNS))
LOG_COLUMN_TIPS = (
    "Time of the event in seconds: simulated, or since boot for this machine live",
    "Event type, as koi run --events-jsonl names it",
    "Process the event is about: name (PID)",
    "Thread the event is about: name (TID)",
    "What happened",
)

DEFAULT_MAX_ROWS = 100_000

PRIORITY_REASONS = {
    "boost": "boost",
    "decay": "decay",
    "starvation": "starvation boost",
    "set_priority": "SetThreadPriority",
    "set_priority_class": "SetPriorityClass",
}

# Row tuple fields; _R_SEARCH is the texts casefolded and joined, for the text filter
_R_TIME, _R_TYPE, _R_PID, _R_TID, _R_PROCESS, _R_THREAD, _R_DETAILS, _R_SEARCH = range(8)
_KNOWN_KEYS = frozenset(("time_us", "type"))
_AT_BASE = object()  # a thread created since the log started: still at its base priority
_BASE_KEEPING_REASONS = frozenset(("boost", "decay", "starvation"))


def _hex(value) -> str:
    return f"0x{value:X}" if isinstance(value, int) else str(value)


class EventLogModel(QAbstractTableModel):
    """Kernel events, oldest first, at most `max_rows` of them."""

    typeSeen = Signal(str)
    """An event type not seen before arrived (the view adds it to its type menu)."""

    def __init__(self, parent: QObject | None = None, *, max_rows: int = DEFAULT_MAX_ROWS,
                 flush_interval_ms: int = 30) -> None:
        super().__init__(parent)
        if max_rows < 1:
            raise ValueError("max_rows must be at least 1")
        self.max_rows = max_rows
        self.dropped = 0  # rows dropped from the front to stay within max_rows
        self._rows: list[tuple] = []
        self._pending: list[dict] = []
        self._types: set[str] = set(EVENT_TYPES)
        self._process_names: dict[int, str] = {}
        self._threads: dict[int, tuple[int | None, str | None]] = {}  # tid -> (pid, name)
        self._priorities: dict[int, int] = {}  # tid -> last known current priority
        self._flush_timer = QTimer(self)
        self._flush_timer.setSingleShot(True)
        self._flush_timer.setInterval(flush_interval_ms)
        self._flush_timer.timeout.connect(self.flush)

    # ---- Public API

    def enqueue(self, event: dict) -> None:
        """Queue one event (a Machine.subscribe callback, on this model's thread);
        the queue is appended in one batch when the event loop next runs."""
        self._pending.append(event)
        if not self._flush_timer.isActive():
            self._flush_timer.start()

    def flush(self) -> None:
        """Append the queued events now."""
        self._flush_timer.stop()
        if self._pending:
            pending, self._pending = self._pending, []
            self.append_events(pending)

    def note_state(self, state: dict) -> None:
        """Learn the names, owners and priorities of processes and threads that existed
        before the log started. What events have already taught is kept: a state is
        sampled after the events still queued, so its priorities are too new for them."""
        procs = state.get("processes") if isinstance(state, dict) else None
        for p in procs if isinstance(procs, list) else ():
            if not isinstance(p, dict) or not isinstance(p.get("pid"), int):
                continue
            pid = p["pid"]
            if p.get("name") is not None:
                self._process_names.setdefault(pid, str(p["name"]))
            threads = p.get("threads")
            for t in threads if isinstance(threads, list) else ():
                # TID 0 is every CPU's idle thread: not one thread to name.
                if not isinstance(t, dict) or not isinstance(t.get("tid"), int) or t["tid"] == 0:
                    continue
                self._threads.setdefault(t["tid"], (pid, t.get("name")))
                if is_number(t.get("priority")):
                    self._priorities.setdefault(t["tid"], t["priority"])

    def append_events(self, events: Iterable[dict]) -> int:
        """Append a batch of event dicts; returns how many were appended. Entries that
        are not dicts are skipped."""
        rows = [self._render(ev) for ev in events if isinstance(ev, dict)]
        if not rows:
            return 0
        if len(rows) > self.max_rows:
            self.dropped += len(rows) - self.max_rows
            rows = rows[-self.max_rows:]
        overflow = len(self._rows) + len(rows) - self.max_rows
        if overflow > 0:
            self.beginRemoveRows(QModelIndex(), 0, overflow - 1)
            del self._rows[:overflow]
            self.dropped += overflow
            self.endRemoveRows()
        first = len(self._rows)
        self.beginInsertRows(QModelIndex(), first, first + len(rows) - 1)
        self._rows.extend(rows)
        self.endInsertRows()
        return len(rows)

    def forget_names(self) -> None:
        """Forget the names, owners and priorities learnt: for another machine, whose
        ids mean other processes and threads."""
        self._process_names.clear()
        self._threads.clear()
        self._priorities.clear()

    def clear(self) -> None:
        """Forget the shown events (names and priorities learnt stay known)."""
        self._pending.clear()
        if self._rows:
            self.beginRemoveRows(QModelIndex(), 0, len(self._rows) - 1)
            self._rows.clear()  # the same list: the filter proxy holds it
            self.endRemoveRows()

    def types(self) -> list[str]:
        """Every event type known: the documented ones and any seen since."""
        return list(EVENT_TYPES) + sorted(self._types - set(EVENT_TYPES))

    @property
    def rows(self) -> list[tuple]:
        """The rows: (time_us, type, pid, tid, process text, thread text, details,
        search text). Always the same list object; read it, never change it."""
        return self._rows

    def object_at(self, row: int) -> tuple[str, int, int] | None:
        """What clicking `row` selects: ("thread", pid, tid), ("process", pid, -1) or None."""
        if not 0 <= row < len(self._rows):
            return None
        r = self._rows[row]
        pid, tid = r[_R_PID], r[_R_TID]
        if not isinstance(pid, int):
            return None
        if isinstance(tid, int):
            return ("thread", pid, tid)
        return ("process", pid, -1)

    # ---- Reimplemented Qt methods

    def rowCount(self, parent: Index = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: Index = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(LOG_COLUMNS)

    def headerData(self, section: int, orientation: Qt.Orientation,
                   role: int = Qt.ItemDataRole.DisplayRole):
        if orientation != Qt.Orientation.Horizontal or not 0 <= section < len(LOG_COLUMNS):
            return None
        if role == Qt.ItemDataRole.DisplayRole:
            return LOG_COLUMNS[section]
        if role == Qt.ItemDataRole.ToolTipRole:
            return LOG_COLUMN_TIPS[section]
        return None

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole):
        if not index.isValid() or not 0 <= index.row() < len(self._rows):
            return None
        r = self._rows[index.row()]
        column = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            if column == TIME:
                t = r[_R_TIME]
                return f"{t / 1e6:.6f}" if is_number(t) else ""
            return r[(_R_TYPE, _R_PROCESS, _R_THREAD, _R_DETAILS)[column - 1]]
        if role == Qt.ItemDataRole.ToolTipRole:
            if column == TIME:
                t = r[_R_TIME]
                return f"{t:,.3f} µs" if is_number(t) else None
            if column == TYPE:
                return EVENT_TYPE_TIPS.get(r[_R_TYPE])
            if column == DETAILS:
                return r[_R_DETAILS] or None
            return None
        if role == Qt.ItemDataRole.TextAlignmentRole and column == TIME:
            return NUMERIC_ALIGNMENT
        if role == PID_ROLE:
            return r[_R_PID] if isinstance(r[_R_PID], int) else None
        if role == TID_ROLE:
            return r[_R_TID] if isinstance(r[_R_TID], int) else None
        return None

    def flags(self, index: Index) -> Qt.ItemFlag:
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        return (Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable
                | Qt.ItemFlag.ItemNeverHasChildren)

    # ---- Rendering

    def _process_text(self, pid) -> str:
        if pid is None:
            return ""
        name = self._process_names.get(pid) if isinstance(pid, int) else None
        return f"{name} ({pid})" if name else str(pid)

    def _thread_text(self, tid, name=None) -> str:
        if tid is None:
            return ""
        if name is None and isinstance(tid, int):
            name = self._threads.get(tid, (None, None))[1]
        return f"{name} ({tid})" if name else str(tid)

    def _render(self, ev: dict) -> tuple:
        etype = str(ev.get("type", "unknown"))
        if etype not in self._types:
            self._types.add(etype)
            self.typeSeen.emit(etype)
        get = ev.get
        pid, tid = get("pid"), get("tid")
        name = get("name")
        details: str
        if etype == "process_create":
            if isinstance(pid, int) and name is not None:
                self._process_names[pid] = str(name)
            ppid = get("parent_pid")
            details = ("created by " + self._process_text(ppid) if ppid is not None
                       else "created (no parent process)")
            thread_name = None
        elif etype == "process_exit":
            if isinstance(pid, int) and name is not None:
                self._process_names[pid] = str(name)  # a live log may not have seen it begin
            details = _exit_text(ev)
            thread_name = None
        elif etype == "thread_create":
            if isinstance(tid, int):
                self._threads[tid] = (pid, name)
                self._priorities[tid] = _AT_BASE
            details = "created"
            thread_name = name
        elif etype == "thread_exit":
            details = _exit_text(ev)
            thread_name = name
            if isinstance(tid, int):
                self._priorities.pop(tid, None)
        elif etype == "priority":
            if pid is None and isinstance(tid, int):
                pid = self._threads.get(tid, (None, None))[0]
            new = get("priority")
            reason = get("reason")
            reason_text = PRIORITY_REASONS.get(reason, str(reason)) if reason else ""
            old = self._priorities.get(tid) if isinstance(tid, int) else None
            if old is _AT_BASE:
                # A new thread starts at its base (KeInitializeThread); a boost or decay
                # leaves the base alone, so the event's base is where it was.
                old = get("base_priority") if reason in _BASE_KEEPING_REASONS else None
            change = f"priority {old} → {new}" if old is not None else f"priority {new}"
            details = change + (f" ({reason_text})" if reason_text else "")
            if get("base_priority") is not None:
                details += f", base {get('base_priority')}"
            if isinstance(tid, int) and is_number(new):
                self._priorities[tid] = new
            thread_name = name
        elif etype == "api_error":
            if pid is None and isinstance(tid, int):
                pid = self._threads.get(tid, (None, None))[0]
            details = f"{get('op', '?')} failed: {get('error', '?')}"
            if get("code") is not None:
                details += f" ({get('code')})"
            extra = {k: v for k, v in ev.items()
                     if k not in _KNOWN_KEYS | {"op", "error", "code", "pid", "tid", "name"}}
            if extra:
                details += ", " + ", ".join(f"{k} {v}" for k, v in extra.items())
            thread_name = name
        elif etype == "job_message":
            details = f"job {get('job', '?')}: JOB_OBJECT_MSG_{get('message', '?')}"
            if get("code") is not None:
                details += f" ({get('code')})"
            if get("source_job"):
                details += f", about job {get('source_job')}"
            thread_name = None
        elif etype in ("open_process", "open_thread"):
            if pid is None:
                pid = get("caller_pid")  # the caller; None for a tool outside the machine
            access = get("access")
            target_pid = get("target_pid")
            target_text = (self._process_text(target_pid) if isinstance(target_pid, int)
                           else str(get("target", "?")))
            if etype == "open_thread":
                call = f"OpenThread({get('target_tid', '?')} of {target_text}"
            else:
                call = f"OpenProcess({target_text}"
            details = f"{call}, access {_hex(access)}): {get('result', '?')}"
            thread_name = name
        elif etype == "fls_callback":
            fiber = get("fiber")
            details = (f"FLS callback for slot {get('slot', '?')} (index {get('index', '?')}), "
                       f"value {_hex(get('value'))}" + (f", fiber {fiber}" if fiber else ""))
            thread_name = name
        elif etype == "unhandled_exception":
            details = f"unhandled exception {exit_code_text(get('code'))}: the process ends"
            if get("die_on_unhandled_exception"):
                details += " (its job has DIE_ON_UNHANDLED_EXCEPTION: no error box)"
            thread_name = name
        else:
            details = ", ".join(f"{k} {v}" for k, v in ev.items()
                                if k not in _KNOWN_KEYS | {"pid", "tid", "name"})
            thread_name = name
        process_text = self._process_text(pid)
        thread_text = self._thread_text(tid, thread_name)
        folded = FIELD_SEPARATOR.join((etype, process_text, thread_text, details)).casefold()
        return (get("time_us"), etype, pid, tid, process_text, thread_text, details, folded)


def _exit_text(ev: dict) -> str:
    """An exit's details. A live one is sampled: dated by the sample that saw it, and
    without an exit code when the process was reaped before a sample saw it exited."""
    code = ev.get("exit_code")
    if not ev.get("sampled"):
        return f"exited, exit code {exit_code_text(code)}"
    if code is None:
        return "gone by this sample (its exit code was not seen)"
    return f"exited, exit code {exit_code_text(code)} (seen at this sample)"


class EventLogFilterProxy(QSortFilterProxyModel):
    """Hides event types and filters on the texts of a row."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._filter = TextFilter()
        self._hidden: frozenset[str] = frozenset()
        self._rows: list[tuple] = []

    @property
    def hidden_types(self) -> frozenset[str]:
        return self._hidden

    def setSourceModel(self, model: EventLogModel) -> None:
        # The rows themselves, not data(): filtering 100,000 rows calls this per row.
        self._rows = model.rows
        super().setSourceModel(model)

    def set_hidden_types(self, types: Iterable[str]) -> None:
        self.beginFilterChange()
        self._hidden = frozenset(types)
        self.endFilterChange(QSortFilterProxyModel.Direction.Rows)

    def set_text_filter(self, text_filter: TextFilter) -> None:
        self.beginFilterChange()
        self._filter = text_filter
        self.endFilterChange(QSortFilterProxyModel.Direction.Rows)

    def filterAcceptsRow(self, source_row: int, source_parent: Index) -> bool:
        r = self._rows[source_row]
        if r[_R_TYPE] in self._hidden:
            return False
        text_filter = self._filter
        if not text_filter.active:
            return True
        return text_filter.matches_folded(r[_R_SEARCH])


class EventLogView(QWidget):
    """The event log with a type menu and a text filter; follows new events while
    scrolled to the bottom."""

    objectActivated = Signal(str, int, int)
    """(kind, pid, tid) of the object an event is about: kind is "process" (tid -1)
    or "thread"."""

    def __init__(self, parent: QWidget | None = None, *,
                 model: EventLogModel | None = None) -> None:
        super().__init__(parent)
        self.model = model or EventLogModel(self)
        self.proxy = EventLogFilterProxy(self)
        self.proxy.setSourceModel(self.model)

        self.types_button = QToolButton()
        self.types_button.setObjectName("event_types")
        self.types_button.setText("Types")
        self.types_button.setToolTip("Event types to show")
        self.types_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        self.types_menu = QMenu(self.types_button)
        self.types_button.setMenu(self.types_menu)
        self.type_actions: dict[str, QAction] = {}
        for etype in self.model.types():
            self._add_type_action(etype)
        self.types_menu.addSeparator()
        show_all = self.types_menu.addAction("Show All Types")
        show_all.setObjectName("event_types_all")
        show_all.triggered.connect(self.show_all_types)
        self.model.typeSeen.connect(self._add_type_action)

        self.filter_edit = FilterEdit("Filter events (text, re:regex, !negate)")
        self.filter_edit.setObjectName("event_filter")
        self.filter_edit.filterChanged.connect(self._on_filter_changed)

        self.count_label = QLabel()
        self.count_label.setObjectName("event_count")

        self.clear_button = QToolButton()
        self.clear_button.setObjectName("event_clear")
        self.clear_button.setText("Clear")
        self.clear_button.setToolTip("Remove every event shown so far")
        self.clear_button.clicked.connect(self.model.clear)

        self.table = QTableView()
        self.table.setObjectName("event_table")
        self.table.setModel(self.proxy)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setWordWrap(False)
        vertical = self.table.verticalHeader()
        vertical.setVisible(False)
        # Fixed row heights keep 100,000 rows cheap to scroll.
        vertical.setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        vertical.setDefaultSectionSize(self.table.fontMetrics().height() + 6)
        header = self.table.horizontalHeader()
        header.setStretchLastSection(True)
        metrics = self.table.fontMetrics()
        header.resizeSection(TIME, metrics.horizontalAdvance("00000.000000") + 16)
        header.resizeSection(TYPE, metrics.horizontalAdvance("process_create") + 16)
        header.resizeSection(PROCESS, metrics.horizontalAdvance("W" * 14))
        header.resizeSection(THREAD, metrics.horizontalAdvance("W" * 10))

        top = QHBoxLayout()
        top.addWidget(self.types_button)
        top.addWidget(self.filter_edit, 1)
        top.addWidget(self.count_label)
        top.addWidget(self.clear_button)
        box = QVBoxLayout(self)
        box.setContentsMargins(0, 0, 0, 0)
        box.addLayout(top)
        box.addWidget(self.table, 1)

        self._follow = True
        self.proxy.rowsAboutToBeInserted.connect(self._remember_follow)
        self.proxy.rowsInserted.connect(self._after_insert)
        # The source's signals: they arrive after the proxy has caught up (the proxy
        # drops removed rows already when the source is about to remove them).
        self.model.rowsRemoved.connect(self._update_count)
        self.table.clicked.connect(self._activate)
        self.table.activated.connect(self._activate)
        self._update_count()

    # ---- Public API

    def set_type_visible(self, etype: str, visible: bool) -> None:
        action = self.type_actions.get(etype)
        if action is None:
            self._add_type_action(etype)
            action = self.type_actions[etype]
        action.setChecked(visible)

    def show_all_types(self) -> None:
        for action in self.type_actions.values():
            action.setChecked(True)

    def header_state(self) -> QByteArray:
        """Column order and widths, for QSettings."""
        return self.table.horizontalHeader().saveState()

    def restore_header_state(self, data: QByteArray | bytes) -> bool:
        return self.table.horizontalHeader().restoreState(QByteArray(data))

    # ---- Slots

    def _add_type_action(self, etype: str) -> None:
        if etype in self.type_actions:
            return
        action = QAction(etype, self.types_menu, checkable=True, checked=True)
        action.setObjectName(f"event_type_{etype}")
        action.setStatusTip(EVENT_TYPE_TIPS.get(etype, ""))
        action.toggled.connect(self._on_types_changed)
        actions = self.types_menu.actions()
        # Before the separator and "Show All Types" once they exist.
        self.types_menu.insertAction(actions[-2] if len(actions) >= 2 else None, action)
        self.type_actions[etype] = action

    def _on_types_changed(self) -> None:
        hidden = [t for t, a in self.type_actions.items() if not a.isChecked()]
        self.proxy.set_hidden_types(hidden)
        self.types_button.setText(f"Types ({len(self.type_actions) - len(hidden)} of "
                                  f"{len(self.type_actions)})" if hidden else "Types")
        self._update_count()

    def _on_filter_changed(self, text_filter: TextFilter) -> None:
        self.proxy.set_text_filter(text_filter)
        self._update_count()

    def _remember_follow(self) -> None:
        bar = self.table.verticalScrollBar()
        self._follow = bar.value() >= bar.maximum()

    def _after_insert(self) -> None:
        self._update_count()
        if self._follow:
            self.table.scrollToBottom()

    def _update_count(self) -> None:
        total = self.model.rowCount()
        shown = self.proxy.rowCount()
        text = f"{total:,} events" if shown == total else f"{shown:,} of {total:,} events"
        if self.model.dropped:
            text += f" ({self.model.dropped:,} older dropped)"
        self.count_label.setText(text)

    def _activate(self, index: QModelIndex) -> None:
        if not index.isValid():
            return
        target = self.model.object_at(self.proxy.mapToSource(index).row())
        if target is not None:
            self.objectActivated.emit(*target)

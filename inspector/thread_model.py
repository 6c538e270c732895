"""The threads of the selected process: Process Explorer's Threads tab as a table.

`ThreadTableModel` shows the threads of one process (`set_process(pid)`) out of the
state documents given to `update(state)`, refreshed by keyed diff like the process
tree: new threads are appended (green for a moment), threads that leave the state stay
red for a moment and are then removed, and only changed cells are reported. Switching
to another process removes the old rows and inserts the new ones; the model is never
reset.

A thread is keyed by (TID, create time, occurrence): the Idle process has one thread
per CPU and every one of them is TID 0.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from PySide6.QtCore import (
    QAbstractTableModel, QByteArray, QModelIndex, QObject, QSortFilterProxyModel, Qt, Signal,
)
from PySide6.QtWidgets import QAbstractItemView, QLabel, QTableView, QVBoxLayout, QWidget

from inspector.process_model import (
    DEFAULT_HIGHLIGHT_SECONDS, MARK_EXITED, MARK_NEW, MARK_NONE, NUMERIC_ALIGNMENT, PID_ROLE,
    SORT_ROLE, TID_ROLE, Column, ColumnChooser, Highlights, Index, as_tuple, column_header,
    cpu_mask, cpu_time_text, cpu_total, cpus_text, exit_code_text, identity_time, is_number,
    make_timer, mark_colours, number_text, percent_from, percent_rate, percent_text,
    row_runs, seconds_text, us_text,
)

THREAD_COLUMNS = (
    Column("TID", "Thread ID (the CID of its ETHREAD)", True, sample="99999"),
    Column("Name", "Thread description (SetThreadDescription)", sample="SystemWorker0"),
    Column("State", "KTHREAD_STATE: Running, Ready, Standby, Waiting, Terminated, ...",
           sample="Terminated"),
    Column("Wait reason", "KWAIT_REASON of a waiting thread", sample="WrCpuRateControl"),
    Column("Priority", "Current (dynamic) priority, boosts included", True, sample="31"),
    Column("Base", "Base priority: class base + relative priority", True, sample="31"),
    Column("CPU", "Processor the thread runs or last ran on (blank: never ran)", True,
           sample="63"),
    Column("Ideal CPU", "Ideal processor (SetThreadIdealProcessor)", True, sample="63"),
    Column("Affinity", "Processors the thread may run on", sample="0-3,8-11"),
    Column("Context switches", "Times the thread was switched in", True, sample="999999"),
    Column("CPU time", "User + kernel time (h:mm:ss.mmm)", True, sample="0:00:00.000"),
    Column("Suspend count", "SuspendThread count; non-zero means it cannot run", True,
           sample="127"),
    Column("Fiber", "The thread's current fiber", sample="MainFiber"),
    Column("CPU %", "Share of all CPUs used since the previous refresh", True, False,
           sample="100.00"),
    Column("User time", "User-mode CPU time (h:mm:ss.mmm)", True, False, sample="0:00:00.000"),
    Column("Kernel time", "Kernel-mode CPU time (h:mm:ss.mmm)", True, False,
           sample="0:00:00.000"),
    Column("Create time", "When the thread was created (simulated seconds)", True, False,
           sample="000.000000"),
    Column("Exit code", "Exit status of a terminated thread", True, False, sample="0xC0000005"),
)
(TID, NAME, STATE, WAIT_REASON, PRIORITY, BASE, CPU, IDEAL_CPU, AFFINITY, CONTEXT_SWITCHES,
 CPU_TIME, SUSPEND_COUNT, FIBER, CPU_PERCENT, USER_TIME, KERNEL_TIME, CREATE_TIME,
 EXIT_CODE) = range(len(THREAD_COLUMNS))
THREAD_COLUMN_COUNT = len(THREAD_COLUMNS)

STILL_ACTIVE = 259


def _text(value) -> str:
    return "" if value is None else str(value)


def _cpu_text(cpu) -> str:
    # -1: the thread has never run
    return "" if cpu is None or cpu == -1 else str(cpu)


_THREAD_TEXT = (
    number_text, _text, _text, _text, number_text, number_text, _cpu_text, number_text,
    cpus_text, number_text, cpu_time_text, number_text, _text, percent_text, cpu_time_text,
    cpu_time_text, seconds_text, exit_code_text,
)
_TEXT_COLUMNS = frozenset((NAME, STATE, WAIT_REASON, FIBER))


def _thread_sort_key(column: int, value):
    if column in _TEXT_COLUMNS:
        return _text(value).casefold()
    if column == AFFINITY:
        mask = cpu_mask(value)
        return -1.0 if mask is None else float(mask)
    return value if is_number(value) else -1


def thread_values(t: dict, percent: float | None) -> tuple:
    """The raw value of every column of thread `t` (diffed between refreshes)."""
    get = t.get
    user, kernel = get("user_time_us"), get("kernel_time_us")
    exit_code = get("exit_code")
    return (
        get("tid"), get("name"), get("state"), get("wait_reason") or None, get("priority"),
        get("base_priority"), get("cpu"), get("ideal_cpu"), as_tuple(get("affinity")),
        get("context_switches"), cpu_total(user, kernel), get("suspend_count"), get("fiber"),
        percent, user, kernel, get("create_time_us"),
        None if exit_code == STILL_ACTIVE else exit_code,
    )


class _ThreadRow:
    __slots__ = ("uid", "key", "values", "total", "gone", "mark", "mark_until")

    def __init__(self, uid: int, key: tuple, values: tuple) -> None:
        self.uid = uid
        self.key = key
        self.values = values
        self.total = values[CPU_TIME]
        self.gone = False
        self.mark = MARK_NONE
        self.mark_until = 0.0


def _keyed_threads(threads) -> list[tuple[tuple, dict]]:
    out = []
    seen: dict[tuple, int] = {}
    for t in threads if isinstance(threads, list) else ():
        if not isinstance(t, dict):
            continue
        if not isinstance(t.get("tid"), int):
            continue  # cannot be told apart from the others
        base = (t["tid"], identity_time(t.get("create_time_us")))
        n = seen.get(base, 0)
        seen[base] = n + 1
        out.append((base + (n,), t))
    return out


class ThreadTableModel(QAbstractTableModel):
    """The threads of one process, refreshed from state documents by keyed diff."""

    def __init__(self, parent: QObject | None = None, *,
                 clock: Callable[[], float] = time.monotonic,
                 highlight_seconds: float = DEFAULT_HIGHLIGHT_SECONDS) -> None:
        super().__init__(parent)
        self._pid: int | None = None
        self._process: dict | None = None
        self._rows: list[_ThreadRow] = []
        self._by_key: dict[tuple, _ThreadRow] = {}
        self._next_uid = 1
        self._state: dict | None = None
        self._last_time_us: float | None = None
        self.highlights = Highlights(clock, highlight_seconds,
                                     make_timer(self, self.expire_highlights))

    # ---- Public API

    @property
    def pid(self) -> int | None:
        return self._pid

    @property
    def process(self) -> dict | None:
        """The shown process's last state entry (None: not in the last state)."""
        return self._process

    def set_process(self, pid: int | None) -> None:
        """Show the threads of process `pid` (None or -1: none) from the last state."""
        if pid == -1:
            pid = None
        if pid == self._pid:
            return
        self._pid = pid
        if self._rows:
            self.beginRemoveRows(QModelIndex(), 0, len(self._rows) - 1)
            self._rows = []
            self._by_key = {}
            self.highlights.marked.clear()
            self.endRemoveRows()
        self._process = None
        if self._state is None or pid is None:
            return
        self._process = _find_process(self._state, pid)
        if self._process is None:
            return
        # No previous sample of these threads: CPU % appears at the next refresh.
        rows = []
        for key, t in _keyed_threads(self._process.get("threads")):
            rows.append(self._new_row(key, thread_values(t, None)))
        if rows:
            self.beginInsertRows(QModelIndex(), 0, len(rows) - 1)
            self._rows = rows
            self._by_key = {r.key: r for r in rows}
            self.endInsertRows()

    def update(self, state: dict) -> None:
        """Refresh from `state` (a Machine.state()-shaped dict) by keyed diff."""
        if not isinstance(state, dict) or not isinstance(state.get("processes"), list):
            raise ValueError("a process state must be a dict with a 'processes' list")
        now_us = state.get("time_us")
        elapsed = (now_us - self._last_time_us
                   if is_number(now_us) and is_number(self._last_time_us) else None)
        self._state = state
        if elapsed is None or elapsed > 0:
            self._last_time_us = now_us if is_number(now_us) else None
        self.expire_highlights()
        if self._pid is None:
            return
        self._process = _find_process(state, self._pid)
        threads = self._process.get("threads") if self._process is not None else None
        rate = percent_rate(elapsed, state.get("cpus"))
        seen = set()
        new = []
        changed: list[tuple[_ThreadRow, int, int]] = []
        for key, t in _keyed_threads(threads):
            seen.add(key)
            row = self._by_key.get(key)
            if row is None:
                new.append(self._new_row(key, thread_values(t, None)))
                continue
            values = thread_values(t, None)
            percent = percent_from(row.total, values[CPU_TIME], rate)
            if percent is None and elapsed == 0:
                percent = row.values[CPU_PERCENT]
            row.total = values[CPU_TIME]
            values = values[:CPU_PERCENT] + (percent,) + values[CPU_PERCENT + 1:]
            old = row.values
            if values != old:
                row.values = values
                cols = [c for c in range(THREAD_COLUMN_COUNT) if values[c] != old[c]]
                changed.append((row, cols[0], cols[-1]))
        remove_now = []
        for key in [k for k in self._by_key if k not in seen]:
            row = self._by_key.pop(key)
            row.gone = True
            if row.mark == MARK_EXITED:
                continue
            if self.highlights.seconds <= 0:
                remove_now.append(row)
            else:
                self.highlights.mark(row.uid, row, MARK_EXITED)
                changed.append((row, 0, THREAD_COLUMN_COUNT - 1))
        self._report_changes(changed)
        if remove_now:
            self._remove_rows(remove_now)
        if new:
            for row in new:  # green from the start: no dataChanged needed
                self.highlights.mark(row.uid, row, MARK_NEW)
            first = len(self._rows)
            self.beginInsertRows(QModelIndex(), first, first + len(new) - 1)
            self._rows.extend(new)
            for row in new:
                self._by_key[row.key] = row
            self.endInsertRows()

    def expire_highlights(self) -> None:
        """End the highlights whose time is over; threads no longer in the state go."""
        gone = []
        plain = []
        for row in self.highlights.due():
            was = row.mark
            row.mark = MARK_NONE
            if was == MARK_EXITED and row.gone:
                gone.append(row)
            else:
                plain.append((row, 0, THREAD_COLUMN_COUNT - 1))
        self._report_changes(plain)
        if gone:
            self._remove_rows(gone)

    def tid_at(self, row: int) -> int | None:
        if not 0 <= row < len(self._rows):
            return None
        return self._rows[row].values[TID]

    def row_of_tid(self, tid: int) -> int:
        for i, row in enumerate(self._rows):
            if row.values[TID] == tid and not row.gone:
                return i
        return -1

    # ---- Reimplemented Qt methods

    def rowCount(self, parent: Index = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: Index = QModelIndex()) -> int:
        return 0 if parent.isValid() else THREAD_COLUMN_COUNT

    def headerData(self, section: int, orientation: Qt.Orientation,
                   role: int = Qt.ItemDataRole.DisplayRole):
        return column_header(THREAD_COLUMNS, section, orientation, role)

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole):
        if not index.isValid() or not 0 <= index.row() < len(self._rows):
            return None
        row = self._rows[index.row()]
        column = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            return _THREAD_TEXT[column](row.values[column])
        if role == SORT_ROLE:
            return _thread_sort_key(column, row.values[column])
        if role == TID_ROLE:
            return row.values[TID]
        if role == PID_ROLE:
            return self._pid
        if role in (Qt.ItemDataRole.BackgroundRole, Qt.ItemDataRole.ForegroundRole):
            return mark_colours(row.mark, role)
        if role == Qt.ItemDataRole.TextAlignmentRole:
            return NUMERIC_ALIGNMENT if THREAD_COLUMNS[column].numeric else None
        if role == Qt.ItemDataRole.ToolTipRole:
            return self._tooltip(row, column)
        return None

    def flags(self, index: Index) -> Qt.ItemFlag:
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        return (Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable
                | Qt.ItemFlag.ItemNeverHasChildren)

    # ---- Internals

    def _new_row(self, key: tuple, values: tuple) -> _ThreadRow:
        row = _ThreadRow(self._next_uid, key, values)
        self._next_uid += 1
        return row

    def _remove_rows(self, rows: list[_ThreadRow]) -> None:
        doomed = {r.uid for r in rows}
        indexes = sorted((i for i, r in enumerate(self._rows) if r.uid in doomed), reverse=True)
        i = 0
        while i < len(indexes):
            last = first = indexes[i]
            while i + 1 < len(indexes) and indexes[i + 1] == first - 1:
                i += 1
                first = indexes[i]
            self.beginRemoveRows(QModelIndex(), first, last)
            del self._rows[first:last + 1]
            self.endRemoveRows()
            i += 1
        for r in rows:
            self.highlights.marked.pop(r.uid, None)

    def _report_changes(self, changed: list[tuple[_ThreadRow, int, int]]) -> None:
        """One dataChanged per run of adjacent changed rows: a sorted proxy re-sorts
        (a layout change) once per signal."""
        if not changed:
            return
        positions = {r.uid: i for i, r in enumerate(self._rows)}
        spans = sorted((positions[row.uid], first, last) for row, first, last in changed
                       if row.uid in positions)
        for top, bottom, first, last in row_runs(spans):
            self.dataChanged.emit(self.index(top, first), self.index(bottom, last))

    def _tooltip(self, row: _ThreadRow, column: int) -> str | None:
        v = row.values
        if column in (CPU_TIME, USER_TIME, KERNEL_TIME):
            return f"User {us_text(v[USER_TIME])}\nKernel {us_text(v[KERNEL_TIME])}"
        if column == AFFINITY:
            mask = cpu_mask(v[AFFINITY])
            return None if mask is None else f"Affinity mask 0x{mask:X}"
        if column in (PRIORITY, BASE) and is_number(v[PRIORITY]) and is_number(v[BASE]):
            boost = v[PRIORITY] - v[BASE]
            return (f"Priority {v[PRIORITY]}, base {v[BASE]}"
                    + (f" (boosted by {boost})" if boost > 0 else ""))
        if column == TID:
            name = v[NAME]
            text = f"Thread {number_text(v[TID])}" + (f" ({name})" if name else "")
            if row.gone:
                text += "\nNo longer in the process's thread list"
            return text
        return None


def _find_process(state: dict, pid: int) -> dict | None:
    # The newest entry wins if a source lists a reused PID twice.
    found = None
    for p in state.get("processes") or ():
        if isinstance(p, dict) and p.get("pid") == pid:
            found = p
    return found


class ThreadTableView(QWidget):
    """The threads table of the selected process, sortable, with a column chooser."""

    threadSelected = Signal(int, int)
    """(pid, tid) of the newly selected thread."""

    def __init__(self, parent: QWidget | None = None, *,
                 model: ThreadTableModel | None = None) -> None:
        super().__init__(parent)
        self.model = model or ThreadTableModel(self)
        self.proxy = QSortFilterProxyModel(self)
        self.proxy.setSourceModel(self.model)
        self.proxy.setSortRole(SORT_ROLE)
        self.proxy.setDynamicSortFilter(True)
        self._selected: tuple[int, int] | None = None

        self.title = QLabel("No process selected")
        self.title.setObjectName("threads_title")

        self.table = QTableView()
        self.table.setObjectName("thread_table")
        self.table.setModel(self.proxy)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        self.table.verticalHeader().setDefaultSectionSize(
            self.table.fontMetrics().height() + 6)
        header = self.table.horizontalHeader()
        header.setSectionsMovable(True)
        header.setSortIndicatorClearable(True)
        header.setSortIndicator(-1, Qt.SortOrder.AscendingOrder)
        self.table.setSortingEnabled(True)
        self.column_chooser = ColumnChooser(header, THREAD_COLUMNS, always_shown=(TID,))
        self.column_chooser.reset()

        box = QVBoxLayout(self)
        box.setContentsMargins(0, 0, 0, 0)
        box.addWidget(self.title)
        box.addWidget(self.table, 1)

        self.table.selectionModel().currentRowChanged.connect(self._on_current_changed)

    # ---- Public API

    def set_process(self, pid: int | None) -> None:
        self._selected = None  # a thread selected again after a switch is news again
        self.model.set_process(pid)
        self._update_title()

    def update_state(self, state: dict) -> None:
        self.model.update(state)
        self._update_title()

    def select_tid(self, tid: int) -> bool:
        row = self.model.row_of_tid(tid)
        if row < 0:
            return False
        index = self.proxy.mapFromSource(self.model.index(row, 0))
        self.table.setCurrentIndex(index)
        self.table.scrollTo(index)
        return True

    def header_state(self) -> QByteArray:
        return self.table.horizontalHeader().saveState()

    def restore_header_state(self, data: QByteArray | bytes) -> bool:
        return self.table.horizontalHeader().restoreState(QByteArray(data))

    # ---- Slots

    def _update_title(self) -> None:
        pid = self.model.pid
        proc = self.model.process
        if pid is None:
            self.title.setText("No process selected")
        elif proc is None:
            self.title.setText(f"Process {pid} is no longer running")
        else:
            count = self.model.rowCount()
            self.title.setText(f"{proc.get('name') or 'PID'} ({pid}): "
                               f"{count} thread{'s' if count != 1 else ''}")

    def _on_current_changed(self, current: QModelIndex, _previous: QModelIndex) -> None:
        if not current.isValid():
            return
        tid = current.data(TID_ROLE)
        pid = self.model.pid
        if tid is None or pid is None:
            return
        if self._selected != (pid, tid):
            self._selected = (pid, tid)
            self.threadSelected.emit(pid, tid)

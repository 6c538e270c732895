"""The Jobs dock: job objects as a tree by nesting, and the selected job's details.

`JobTreeModel.update(state)` takes the ``jobs`` list of a `Machine.state()`-shaped
document and applies a keyed diff, like the process tree: jobs that appear are inserted
(green for a moment), jobs that are destroyed stay red for a moment and are then
removed, a job nested under another later (an empty job assigned a process that is
already in a job nests under that job, §6.10) is moved, and only changed cells are
reported. The model is never reset. A simulated job is keyed by (JID, name); a live
source's jobs (Linux cgroups) have no JID and are keyed by name.

`JobDetails` shows one job: its limits as set and as in effect (the strictest in the
chain, §6.7, §6.8, §6.12), its accounting (§6.14), its member processes (clicking one
selects it in the window) and its completion-port messages (§6.15). Each table is a
`KeyedTableModel`, a flat table refreshed by the same kind of keyed diff (the Fibers
dock uses it too).

A live source's job dicts have fewer keys: what a source does not have reads "—".

`JobLimitsDialog` is the Create Job / Set Job Limits form; it returns a `JobRequest`
whose `limits` and `cpu_rate` are the keyword arguments of `Machine.set_job_limits`
and `Machine.set_job_cpu_rate`.
"""

from __future__ import annotations

import html
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from PySide6.QtCore import (
    QAbstractItemModel, QModelIndex, QObject, QPersistentModelIndex, Qt, Signal,
)
from PySide6.QtWidgets import (
    QAbstractItemView, QCheckBox, QComboBox, QDialog, QDialogButtonBox, QDoubleSpinBox,
    QFormLayout, QGridLayout, QGroupBox, QHBoxLayout, QLabel, QLineEdit, QSpinBox, QSplitter,
    QTabWidget, QTreeView, QVBoxLayout, QWidget,
)

from core.units import UnitError, format_duration, format_size, parse_duration, parse_size
from inspector.keyed_table import PAYLOAD_ROLE, KeyedTableModel, TableRow, make_table, plain
from inspector.process_model import (
    DEFAULT_HIGHLIGHT_SECONDS, MARK_EXITED, MARK_NEW, MARK_NONE, NUMERIC_ALIGNMENT,
    PRIORITY_CLASS_NAMES, Column, Highlights, class_text, column_header, cpu_time_text, cpus_text,
    exit_code_text, is_number, make_timer, mark_colours,
)

Index = QModelIndex | QPersistentModelIndex

NOT_AVAILABLE = "—"  # the source does not have this figure
NOT_SET = "not set"

JOB_NAME_ROLE = Qt.ItemDataRole.UserRole + 21


# ---- Formatters

def count_text(value) -> str:
    """An accounting number; None or a missing key is something the source lacks."""
    if value is None:
        return NOT_AVAILABLE
    return str(value)


def us_duration_text(us) -> str:
    """A limit given in µs, spelled exactly (``50ms``, ``1.5s``)."""
    if not is_number(us):
        return NOT_AVAILABLE if us is None else str(us)
    ns = int(round(us * 1000))
    return format_duration(ns) if ns >= 0 else str(us)


def bytes_text(size) -> str:
    if not is_number(size) or isinstance(size, float) and not size.is_integer():
        return NOT_AVAILABLE if size is None else str(size)
    size = int(size)
    return format_size(size) if size >= 0 else str(size)


def rate_percent_text(rate) -> str:
    """A CPU rate in hundredths of a percent (2500) as ``25.00%`` (§6.13)."""
    if not is_number(rate):
        return NOT_AVAILABLE if rate is None else str(rate)
    return f"{rate / 100:.2f}%"


def cpu_rate_of(job: dict):
    """The job's CPU rate control: the simulated kernel's ``cpu_rate`` dict, or a live
    source's ``limits.cpu_rate`` (``{"hard_cap": N}``); ``...`` when the source has none."""
    if "cpu_rate" in job:
        return job["cpu_rate"]
    limits = job.get("limits")
    if isinstance(limits, dict):
        return limits.get("cpu_rate")
    return ...


def cpu_rate_text(rate, throttled=None) -> str:
    if rate is ...:
        return NOT_AVAILABLE
    if not rate:
        return ""
    if not isinstance(rate, dict):
        return str(rate)
    mode = rate.get("mode")
    if mode is None:  # a live source's spelling: the key is the mode
        mode = next((k for k in ("hard_cap", "weight", "min_rate", "max_rate") if k in rate), None)
    if mode == "hard_cap":
        text = f"Hard cap {rate_percent_text(rate.get('rate', rate.get('hard_cap')))}"
    elif mode == "weight":
        text = f"Weight {rate.get('weight')}"
    elif mode in ("min_max", "min_rate", "max_rate"):
        text = (f"Min {rate_percent_text(rate.get('min_rate', 0))}, "
                f"max {rate_percent_text(rate.get('max_rate', 10000))}")
    else:
        text = str(rate)
    if throttled:
        text += " · throttled"
    return text


# (key, label, short label for the summary, formatter); the order of the Limits table
LIMITS = (
    ("active_process", "Active processes", "Active ≤", count_text),
    ("affinity", "Affinity", "CPUs", cpus_text),
    ("priority_class", "Priority class", "Class", class_text),
    ("scheduling_class", "Scheduling class", "Sched. class", count_text),
    ("per_process_user_time_us", "Per-process user time", "Process time", us_duration_text),
    ("per_job_user_time_us", "Per-job user time", "Job time", us_duration_text),
    ("process_memory", "Process memory", "Process mem.", bytes_text),
    ("job_memory", "Job memory", "Job mem.", bytes_text),
)
LIMIT_SWITCHES = (
    ("kill_on_job_close", "Kill on job close"),
    ("breakaway_ok", "Breakaway OK"),
    ("silent_breakaway_ok", "Silent breakaway OK"),
    ("die_on_unhandled_exception", "Die on unhandled exception"),
)
EFFECTIVE = {"priority_class": class_text, "affinity": cpus_text, "scheduling_class": count_text}


def limits_summary(job: dict) -> str:
    """The job's own limits in one line (``Active ≤ 3, CPUs 0-1, Kill on close``)."""
    limits = job.get("limits")
    if not isinstance(limits, dict):
        return NOT_AVAILABLE
    parts = []
    for key, _label, short, fmt in LIMITS:
        value = limits.get(key)
        if value is None:
            continue
        text = f"{short} {fmt(value)}"
        if key == "per_job_user_time_us" and limits.get("end_of_job_time_action") == "post":
            text += " (post)"
        parts.append(text)
    for key, label in LIMIT_SWITCHES:
        if limits.get(key):
            parts.append(label)
    return ", ".join(parts)


def job_key(job: dict) -> tuple:
    jid = job.get("jid")
    return (jid if type(jid) is int else None, job.get("name"))


# ---- The job tree

JOB_COLUMNS = (
    Column("Name", "The job's name (unnamed jobs: Job#JID); nested jobs under their parent",
           sample="sandbox-children"),
    Column("Active", "ActiveProcesses: member processes that have not exited (§6.14)", True,
           sample="9999"),
    Column("Total", "TotalProcesses: every association ever, failed ones included (§6.14)",
           True, sample="9999"),
    Column("Terminated", "TotalTerminatedProcesses: processes killed for breaking a limit",
           True, sample="9999"),
    Column("User time", "TotalUserTime of the job's processes, exited ones included "
                        "(h:mm:ss.mmm)", True, sample="0:00:00.000"),
    Column("Limits", "The limits this job sets itself (the Limits tab shows what is in "
                     "effect)", sample="Active ≤ 3, CPUs 0-1"),
    Column("CPU rate", "CPU rate control (Windows 8+): hard cap, weight or min/max rate",
           sample="Hard cap 25.00% · throttled"),
)
(J_NAME, J_ACTIVE, J_TOTAL, J_TERMINATED, J_USER_TIME, J_LIMITS, J_CPU_RATE) = range(
    len(JOB_COLUMNS))
JOB_COLUMN_COUNT = len(JOB_COLUMNS)


def job_texts(job: dict) -> tuple:
    get = job.get
    user = get("total_user_time_us")
    return (
        str(get("name")), count_text(get("active_processes")), count_text(get("total_processes")),
        count_text(get("total_terminated_processes")),
        NOT_AVAILABLE if user is None else cpu_time_text(user), limits_summary(job),
        cpu_rate_text(cpu_rate_of(job), get("cpu_rate_throttled")),
    )


class _JobNode:
    __slots__ = ("uid", "key", "parent", "children", "row", "texts", "info", "gone", "mark",
                 "mark_until")

    def __init__(self, uid: int, key=None, info: dict | None = None) -> None:
        self.uid = uid
        self.key = key
        self.parent: _JobNode | None = None
        self.children: list[_JobNode] = []
        self.row = 0
        self.info = info or {}
        self.texts = job_texts(info) if info else ()
        self.gone = False
        self.mark = MARK_NONE
        self.mark_until = 0.0


class JobTreeModel(QAbstractItemModel):
    """Jobs as a tree by nesting, refreshed from state documents by keyed diff.

    Indexes carry a node's never-reused uid as their internal id (not a pointer), so a
    stale index resolves to nothing instead of a freed object."""

    def __init__(self, parent: QObject | None = None, *,
                 clock: Callable[[], float] = time.monotonic,
                 highlight_seconds: float = DEFAULT_HIGHLIGHT_SECONDS) -> None:
        super().__init__(parent)
        self._root = _JobNode(0)
        self._by_uid: dict[int, _JobNode] = {}
        self._by_key: dict[tuple, _JobNode] = {}  # jobs in the last state
        self._next_uid = 1
        self._filled = False
        self.highlights = Highlights(clock, highlight_seconds,
                                     make_timer(self, self.expire_highlights))

    # ---- Public API

    def update(self, state: dict) -> None:
        """Show the ``jobs`` of `state` by keyed diff: rows inserted, moved, removed and
        dataChanged for the changed cells; never a reset."""
        if not isinstance(state, dict):
            raise ValueError("a state must be a dict with a 'jobs' list")
        jobs = state.get("jobs")
        entries: dict[tuple, dict] = {}
        for j in jobs if isinstance(jobs, list) else ():
            if isinstance(j, dict) and isinstance(j.get("name"), str):
                entries.setdefault(job_key(j), j)  # a repeated job cannot be told apart
        by_name: dict[str, tuple] = {}
        for key in entries:
            by_name.setdefault(key[1], key)
        wanted_parent = {key: self._parent_key(key, entries, by_name) for key in entries}
        self.expire_highlights()

        first_fill = not self._filled
        self._filled = True
        # Jobs that were destroyed: red for a moment (their present children move out)
        gone = [n for k, n in self._by_key.items() if k not in entries]
        for node in gone:
            del self._by_key[node.key]
            node.gone = True
        # Changed cells
        changed = []
        for key, node in self._by_key.items():
            job = entries[key]
            node.info = job
            texts = job_texts(job)
            if texts != node.texts:
                cols = [c for c in range(JOB_COLUMN_COUNT) if texts[c] != node.texts[c]]
                node.texts = texts
                changed.append((node, cols[0], cols[-1]))
        for node, first, last in changed:
            self.dataChanged.emit(self._index_of(node, first), self._index_of(node, last))
        # New jobs, parents first
        new_keys = [k for k in entries if k not in self._by_key]
        for key in sorted(new_keys, key=lambda k: self._depth(k, wanted_parent)):
            node = _JobNode(self._next_uid, key, entries[key])
            self._next_uid += 1
            parent = self._by_key.get(wanted_parent[key]) or self._root
            self._insert(node, parent)
            if not first_fill:
                self.highlights.mark(node.uid, node, MARK_NEW)
        # Jobs nested elsewhere now: out to the top level, then in under their parent
        movers = [n for k, n in self._by_key.items()
                  if (self._by_key.get(wanted_parent[k]) or self._root) is not n.parent]
        for node in movers:
            if node.parent is not self._root:
                self._move(node, self._root)
        for node in sorted(movers, key=lambda n: self._depth(n.key, wanted_parent)):
            target = self._by_key.get(wanted_parent[node.key]) or self._root
            if target is not node.parent:
                self._move(node, target)
        for node in gone:
            if node.mark == MARK_EXITED:
                continue
            if self.highlights.seconds <= 0:
                self._remove(node)
            else:
                self.highlights.mark(node.uid, node, MARK_EXITED)
                self.dataChanged.emit(self._index_of(node, 0),
                                      self._index_of(node, JOB_COLUMN_COUNT - 1))

    def expire_highlights(self) -> None:
        """End the highlights whose time is over; destroyed jobs go."""
        for node in self.highlights.due():
            node.mark = MARK_NONE
            if node.uid not in self._by_uid:
                continue  # went with its parent
            if node.gone:
                self._remove(node)
            else:
                self.dataChanged.emit(self._index_of(node, 0),
                                      self._index_of(node, JOB_COLUMN_COUNT - 1))

    def job_at(self, index: Index) -> dict | None:
        """The state entry of the job at `index` (None for a destroyed job)."""
        node = self._node(index) if index.isValid() else None
        return None if node is None or node.gone else node.info

    def key_at(self, index: Index) -> tuple | None:
        node = self._node(index) if index.isValid() else None
        return None if node is None else node.key

    def job(self, key: tuple) -> dict | None:
        node = self._by_key.get(key)
        return None if node is None else node.info

    def index_of_key(self, key: tuple, column: int = 0) -> QModelIndex:
        node = self._by_key.get(key)
        return QModelIndex() if node is None else self._index_of(node, column)

    def key_of_name(self, name: str) -> tuple | None:
        return next((k for k in self._by_key if k[1] == name), None)

    def job_count(self) -> int:
        return len(self._by_key)

    # ---- Reimplemented Qt methods

    def index(self, row: int, column: int, parent: Index = QModelIndex()) -> QModelIndex:
        if not self.hasIndex(row, column, parent):
            return QModelIndex()
        node = self._node(parent) if parent.isValid() else self._root
        if node is None or not 0 <= row < len(node.children):
            return QModelIndex()
        return self.createIndex(row, column, node.children[row].uid)

    def parent(self, child: Index | None = None):
        if child is None:  # QObject.parent()
            return super().parent()
        node = self._node(child) if child.isValid() else None
        if node is None or node.parent is None or node.parent is self._root:
            return QModelIndex()
        return self.createIndex(node.parent.row, 0, node.parent.uid)

    def rowCount(self, parent: Index = QModelIndex()) -> int:
        if parent.column() > 0:
            return 0
        node = self._node(parent) if parent.isValid() else self._root
        return 0 if node is None else len(node.children)

    def columnCount(self, parent: Index = QModelIndex()) -> int:
        return JOB_COLUMN_COUNT

    def headerData(self, section: int, orientation: Qt.Orientation,
                   role: int = Qt.ItemDataRole.DisplayRole):
        return column_header(JOB_COLUMNS, section, orientation, role)

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole):
        node = self._node(index) if index.isValid() else None
        if node is None:
            return None
        column = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            return node.texts[column]
        if role in (Qt.ItemDataRole.BackgroundRole, Qt.ItemDataRole.ForegroundRole):
            return mark_colours(node.mark, role)
        if role == Qt.ItemDataRole.TextAlignmentRole:
            return NUMERIC_ALIGNMENT if JOB_COLUMNS[column].numeric else None
        if role == Qt.ItemDataRole.ToolTipRole:
            return self._tooltip(node, column)
        if role == JOB_NAME_ROLE:
            return node.key[1]
        return None

    def flags(self, index: Index) -> Qt.ItemFlag:
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        return Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable

    # ---- Internals

    def _node(self, index: Index) -> _JobNode | None:
        if index.model() is not self:
            return None
        return self._by_uid.get(index.internalId())

    def _index_of(self, node: _JobNode, column: int = 0) -> QModelIndex:
        if node is self._root:
            return QModelIndex()
        return self.createIndex(node.row, column, node.uid)

    @staticmethod
    def _parent_key(key: tuple, entries: dict, by_name: dict) -> tuple | None:
        """The key of the job's parent in this state; None (top level) for a parent the
        source does not list, or for a loop of parents."""
        def parent_of(k):
            name = entries[k].get("parent")
            return by_name.get(name) if isinstance(name, str) else None

        parent = parent_of(key)
        seen = {key}
        step = parent
        while step is not None:
            if step in seen:
                return None
            seen.add(step)
            step = parent_of(step)
        return parent

    @staticmethod
    def _depth(key: tuple, parents: dict) -> int:
        depth = 0
        while (key := parents.get(key)) is not None:
            depth += 1
        return depth

    def _insert(self, node: _JobNode, parent: _JobNode) -> None:
        row = len(parent.children)
        self.beginInsertRows(self._index_of(parent), row, row)
        node.parent = parent
        node.row = row
        parent.children.append(node)
        self._by_uid[node.uid] = node
        self._by_key[node.key] = node
        self.endInsertRows()

    def _move(self, node: _JobNode, target: _JobNode) -> None:
        source = node.parent
        row = node.row
        dest = len(target.children)
        if not self.beginMoveRows(self._index_of(source), row, row, self._index_of(target), dest):
            return  # a move into its own subtree: cannot happen with the loop check
        del source.children[row]
        for i in range(row, len(source.children)):
            source.children[i].row = i
        node.parent = target
        node.row = len(target.children)
        target.children.append(node)
        self.endMoveRows()

    def _remove(self, node: _JobNode) -> None:
        parent = node.parent
        row = node.row
        self.beginRemoveRows(self._index_of(parent), row, row)
        del parent.children[row]
        for i in range(row, len(parent.children)):
            parent.children[i].row = i
        self.endRemoveRows()
        stack = [node]
        while stack:  # the uids go after endRemoveRows: views may still ask about them
            n = stack.pop()
            stack.extend(n.children)
            self._by_uid.pop(n.uid, None)
            self.highlights.marked.pop(n.uid, None)
            if self._by_key.get(n.key) is n:
                del self._by_key[n.key]

    def _tooltip(self, node: _JobNode, column: int) -> str | None:
        job = node.info
        if column == J_NAME:
            lines = [f"Job {job.get('name')}" + (f" (JID {job['jid']})"
                                                 if type(job.get("jid")) is int else "")]
            if job.get("parent"):
                lines.append(f"Nested in {job['parent']}")
            if "handles" in job:
                lines.append(f"Handles: {job['handles']}")
            if job.get("signaled"):
                lines.append("Signaled: its job-time limit was used up (§6.5)")
            if node.gone:
                lines.append("Destroyed: no handle and no active process left")
            return "\n".join(lines)
        if column == J_LIMITS:
            return limits_summary(job).replace(", ", "\n") or "No limits set"
        return None


# ---- The selected job's details

LIMIT_COLUMNS = (
    Column("Limit", "JOBOBJECT_EXTENDED_LIMIT_INFORMATION and CPU rate control",
           sample="Die on unhandled exception"),
    Column("Set", "What this job sets", sample="Below normal"),
    Column("Effective", "What applies to its processes: the strictest in the job chain "
                        "(priority class §6.7, affinity §6.8, scheduling class §6.12)",
           sample="Below normal"),
)
ACCOUNTING_COLUMNS = (
    Column("Figure", "JOBOBJECT_BASIC_ACCOUNTING_INFORMATION and memory use",
           sample="This period kernel time"),
    Column("Value", "", True, sample="0:00:00.000"),
)
MEMBER_COLUMNS = (
    Column("PID", "Process ID; click to select the process", True, sample="99999"),
    Column("Name", "Image name", sample="MsMpEngService.exe"),
    Column("Status", "Running, or the exit code of an exited member", sample="Exited 0xC0000005"),
    Column("Jobs", "Every job the process is in, innermost first", sample="capped, sandbox"),
)
MESSAGE_COLUMNS = (
    Column("Time", "Simulated time the message was posted (seconds)", True, sample="000.000000"),
    Column("Message", "JOB_OBJECT_MSG_* posted to the job's completion port (§6.15)",
           sample="ABNORMAL_EXIT_PROCESS"),
    Column("Code", "The message number (lpNumberOfBytesTransferred)", True, sample="99"),
    Column("PID", "The process it is about (lpOverlapped); blank: none", True, sample="99999"),
)

ACCOUNTING = (
    ("active_processes", "Active processes", count_text),
    ("total_processes", "Total processes", count_text),
    ("total_terminated_processes", "Terminated for a limit", count_text),
    ("total_user_time_us", "Total user time", cpu_time_text),
    ("total_kernel_time_us", "Total kernel time", cpu_time_text),
    ("this_period_user_time_us", "This period user time", cpu_time_text),
    ("this_period_kernel_time_us", "This period kernel time", cpu_time_text),
    ("job_memory_used", "Committed memory", bytes_text),
    ("peak_process_memory", "Peak process memory", bytes_text),
    ("peak_job_memory", "Peak job memory", bytes_text),
    ("handles", "Open handles", count_text),
    ("signaled", "Signaled", None),
    ("completion_port", "Completion port", None),
    ("cpu_rate_throttled", "Held by its CPU rate", None),
)


def limit_rows(job: dict) -> list[TableRow]:
    limits = job.get("limits")
    effective = job.get("effective")
    # The simulated kernel lists every limit (None: not set); a live source only the
    # ones it can read, so a limit it does not list is unknown
    full = "limit_flags" in job
    rows = []
    for key, label, _short, fmt in LIMITS:
        if not isinstance(limits, dict) or key not in limits and not full:
            set_text = NOT_AVAILABLE
        else:
            value = limits.get(key)
            set_text = NOT_SET if value is None else fmt(value)
        eff = ""
        if key in EFFECTIVE:
            if not isinstance(effective, dict) or key not in effective:
                eff = NOT_AVAILABLE
            else:
                value = effective[key]
                eff = NOT_SET if value is None else EFFECTIVE[key](value)
        rows.append(TableRow(key, (label, set_text, eff)))
    if isinstance(limits, dict) and "end_of_job_time_action" in limits:
        action = limits["end_of_job_time_action"]
        rows.append(TableRow("end_of_job_time_action", (
            "End of job time", "post a message" if action == "post" else "terminate", ""),
            ("", "§6.5: terminate every process, or post END_OF_JOB_TIME and go on", "")))
    for key, label in LIMIT_SWITCHES:
        if not isinstance(limits, dict) or key not in limits and not full:
            text = NOT_AVAILABLE
        else:
            text = "yes" if limits.get(key) else "no"
        rows.append(TableRow(key, (label, text, "")))
    rows.append(TableRow("cpu_rate", ("CPU rate", cpu_rate_text(cpu_rate_of(job)) or NOT_SET,
                                      "")))
    flags = job.get("limit_flags")
    if is_number(flags):
        rows.append(TableRow("limit_flags", ("LimitFlags", f"0x{int(flags):08X}", "")))
    return rows


def accounting_rows(job: dict) -> list[TableRow]:
    rows = []
    for key, label, fmt in ACCOUNTING:
        value = job.get(key)
        if value is None:
            text = NOT_AVAILABLE
        elif fmt is None:
            text = "yes" if value else "no"
        else:
            text = fmt(value)
        rows.append(TableRow(key, (label, text)))
    return rows


def member_rows(job: dict, processes: dict[int, dict]) -> list[TableRow]:
    """Every process the job ever had (the simulated kernel's ``processes``), or, for a
    source without that list, the processes whose ``jobs`` name this job."""
    name = job.get("name")
    pids = job.get("processes")
    if not isinstance(pids, list):
        pids = [pid for pid, p in processes.items()
                if isinstance(p.get("jobs"), list) and name in p["jobs"]]
    live = job.get("live_processes")
    rows = []
    for pid in pids:
        if type(pid) is not int:
            continue
        p = processes.get(pid, {})
        if isinstance(live, list):
            running = pid in live
        else:
            running = not p.get("exited") if p else None
        if running:
            status = "Running"
        elif running is None:
            status = NOT_AVAILABLE
        elif p.get("exit_code") is not None and p.get("exited"):
            status = f"Exited {exit_code_text(p['exit_code'])}"
        else:
            status = "Exited"
        jobs = p.get("jobs")
        rows.append(TableRow(pid, (str(pid), str(p.get("name") or ""), status,
                                   ", ".join(map(str, jobs)) if isinstance(jobs, list) else ""),
                             payload=pid))
    return rows


def message_rows(job: dict) -> list[TableRow]:
    rows = []
    for m in job.get("messages") or ():
        if not isinstance(m, dict):
            continue
        t, code, pid = m.get("time_us"), m.get("code"), m.get("pid")
        text = m.get("message")
        rows.append(TableRow((plain(t), plain(code), plain(pid)), (
            f"{t / 1e6:.6f}" if is_number(t) else "", f"JOB_OBJECT_MSG_{text}" if text else "",
            "" if code is None else str(code), "" if pid is None else str(pid)), payload=pid))
    return rows


class JobDetails(QWidget):
    """The selected job: limits, accounting, member processes and messages."""

    processActivated = Signal(int)
    """PID of a member process the user clicked."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.title = QLabel("No job selected")
        self.title.setObjectName("job_details_title")
        self.title.setWordWrap(True)
        self.limits = KeyedTableModel(LIMIT_COLUMNS, self)
        self.accounting = KeyedTableModel(ACCOUNTING_COLUMNS, self)
        self.members = KeyedTableModel(MEMBER_COLUMNS, self)
        self.messages = KeyedTableModel(MESSAGE_COLUMNS, self)
        self.tabs = QTabWidget()
        self.tabs.setObjectName("job_details_tabs")
        self.member_table = make_table(self.members, "job_members")
        self.message_table = make_table(self.messages, "job_messages")
        self.tabs.addTab(make_table(self.limits, "job_limits"), "Limits")
        self.tabs.addTab(make_table(self.accounting, "job_accounting"), "Accounting")
        self.tabs.addTab(self.member_table, "Processes")
        self.tabs.addTab(self.message_table, "Messages")
        self.member_table.clicked.connect(self._on_process_row)
        self.member_table.activated.connect(self._on_process_row)
        self.message_table.activated.connect(self._on_process_row)  # the PID it is about
        box = QVBoxLayout(self)
        box.setContentsMargins(0, 0, 0, 0)
        box.addWidget(self.title)
        box.addWidget(self.tabs, 1)

    def show_job(self, job: dict | None, processes: dict[int, dict], gone: str = "") -> None:
        """Show `job` (a state entry); None shows nothing, with `gone` as the reason."""
        if job is None:
            self.title.setText(gone or "No job selected")
            for model in (self.limits, self.accounting, self.members, self.messages):
                model.clear()
            return
        parent = job.get("parent")
        children = job.get("children")
        parts = [f"<b>{_escape(job.get('name'))}</b>"]
        if type(job.get("jid")) is int:
            parts.append(f"JID {job['jid']}")
        parts.append(f"in {_escape(parent)}" if parent else "top level")
        if isinstance(children, list) and children:
            parts.append("holds " + ", ".join(_escape(c) for c in children))
        self.title.setText(" · ".join(parts))
        self.limits.set_rows(limit_rows(job))
        self.accounting.set_rows(accounting_rows(job))
        self.members.set_rows(member_rows(job, processes))
        has_messages = isinstance(job.get("messages"), list)
        self.messages.set_rows(message_rows(job))
        index = self.tabs.indexOf(self.message_table)
        self.tabs.setTabEnabled(index, has_messages)
        self.tabs.setTabToolTip(index, (
            "Completion-port messages (§6.15)" if job.get("completion_port")
            else "This job has no completion port: nothing is posted" if has_messages
            else "This source does not see completion-port messages"))

    def _on_process_row(self, index: QModelIndex) -> None:
        pid = index.data(PAYLOAD_ROLE)
        if isinstance(pid, int):
            self.processActivated.emit(pid)


def _escape(text) -> str:
    return html.escape(str(text))


class JobView(QWidget):
    """The Jobs dock: the job tree above the selected job's details."""

    jobSelected = Signal(str)
    """Name of the newly selected job ("" when none is)."""
    processActivated = Signal(int)

    def __init__(self, parent: QWidget | None = None, *,
                 model: JobTreeModel | None = None) -> None:
        super().__init__(parent)
        self.model = model or JobTreeModel(self)
        self._selected: tuple | None = None
        self._processes: dict[int, dict] = {}
        self._members_seen: dict[tuple, dict] = {}  # (job name, pid) -> last process entry

        self.tree = QTreeView()
        self.tree.setObjectName("job_tree")
        self.tree.setModel(self.model)
        self.tree.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.tree.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.tree.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.tree.setAllColumnsShowFocus(True)
        self.tree.setUniformRowHeights(True)
        header = self.tree.header()
        header.setStretchLastSection(True)
        metrics = self.tree.fontMetrics()
        for i, col in enumerate(JOB_COLUMNS):
            header.resizeSection(i, max(metrics.horizontalAdvance(col.title) + 24,
                                        metrics.horizontalAdvance(col.sample) + 16))
        self.details = JobDetails()
        self.details.processActivated.connect(self.processActivated)

        self.summary = QLabel("No jobs")
        self.summary.setObjectName("jobs_summary")
        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.setObjectName("job_splitter")
        splitter.addWidget(self.tree)
        splitter.addWidget(self.details)
        splitter.setStretchFactor(0, 2)
        splitter.setStretchFactor(1, 3)
        box = QVBoxLayout(self)
        box.setContentsMargins(0, 0, 0, 0)
        box.addWidget(self.summary)
        box.addWidget(splitter, 1)

        self.model.rowsInserted.connect(self._on_rows_inserted)
        self.tree.selectionModel().currentRowChanged.connect(self._on_current_changed)

    # ---- Public API

    def update_state(self, state: dict) -> None:
        self.model.update(state)
        self._processes = {p["pid"]: p for p in state.get("processes") or ()
                           if isinstance(p, dict) and isinstance(p.get("pid"), int)}
        self._remember_members(state.get("jobs"))
        count = self.model.job_count()
        self.summary.setText("No jobs" if not count else f"{count} job{'s' if count != 1 else ''}")
        self._show_selected()

    def selected_key(self) -> tuple | None:
        return self._selected

    def selected_job(self) -> dict | None:
        """The selected job's last state entry (None if none, or it was destroyed)."""
        return None if self._selected is None else self.model.job(self._selected)

    def select_job(self, name: str) -> bool:
        key = self.model.key_of_name(name)
        if key is None:
            return False
        index = self.model.index_of_key(key)
        self.tree.setCurrentIndex(index)
        self.tree.scrollTo(index)
        return True

    def clear_selection(self) -> None:
        self.tree.setCurrentIndex(QModelIndex())
        self._set_selected(None)

    # ---- Slots

    def _on_rows_inserted(self, parent: QModelIndex, _first: int, _last: int) -> None:
        if parent.isValid():  # nested jobs show
            self.tree.expand(parent)

    def _on_current_changed(self, current: QModelIndex, _previous: QModelIndex) -> None:
        self._set_selected(self.model.key_at(current) if current.isValid() else None)

    def _set_selected(self, key: tuple | None) -> None:
        if key != self._selected:
            self._selected = key
            self._show_selected()
            self.jobSelected.emit("" if key is None else str(key[1]))

    def _remember_members(self, jobs) -> None:
        """Keep the last entry of each member process: a member that exited and whose
        object went still shows its name (a process never leaves its jobs, §6.10)."""
        seen = {}
        for job in jobs if isinstance(jobs, list) else ():
            if not isinstance(job, dict) or not isinstance(job.get("processes"), list):
                continue
            name = job.get("name")
            for pid in job["processes"]:
                p = self._processes.get(pid)
                if p is not None and name in (p.get("jobs") or ()):
                    seen[(name, pid)] = p
                elif (name, pid) in self._members_seen:  # not a reused PID's new process
                    seen[(name, pid)] = self._members_seen[(name, pid)]
        self._members_seen = seen

    def _show_selected(self) -> None:
        key = self._selected
        job = None if key is None else self.model.job(key)
        gone = "" if key is None or job is not None else f"Job {key[1]} no longer exists"
        processes = self._processes
        if job is not None and isinstance(job.get("processes"), list):
            processes = {pid: self._members_seen.get((key[1], pid), {})
                         for pid in job["processes"]}
        self.details.show_job(job, processes, gone)


# ---- The Create Job / Set Job Limits form

PRIORITY_CLASS_KEYS = tuple(PRIORITY_CLASS_NAMES)
CPU_RATE_MODES = ("none", "hard_cap", "weight", "min_max")
CPU_RATE_MODE_NAMES = {"none": "No rate control", "hard_cap": "Hard cap",
                       "weight": "Weight", "min_max": "Min/max rate"}


@dataclass
class JobRequest:
    """What the form asks for: `limits` and `cpu_rate` are keyword arguments of
    Machine.set_job_limits and Machine.set_job_cpu_rate ({} turns rate control off)."""

    name: str | None = None
    parent: str | None = None
    completion_port: bool = False
    limits: dict = field(default_factory=dict)
    cpu_rate: dict = field(default_factory=dict)


def parse_cpus(text: str) -> list[int]:
    """``0,2-3`` → [0, 2, 3]; ValueError with a one-line message otherwise."""
    cpus: list[int] = []
    for part in text.replace(" ", "").split(","):
        if not part:
            continue
        lo, dash, hi = part.partition("-")
        try:
            first, last = int(lo), int(hi) if dash else int(lo)
        except ValueError:
            raise ValueError(f"affinity {text!r} is not a list of CPU numbers "
                             "(e.g. 0,1 or 0-3)") from None
        if first < 0 or last < first:
            raise ValueError(f"affinity {text!r}: {part!r} is not a CPU range")
        cpus.extend(range(first, last + 1))
    if not cpus:
        raise ValueError("affinity: give at least one CPU (e.g. 0,1)")
    return sorted(set(cpus))


def _duration_ns(text: str, what: str) -> int:
    try:
        return parse_duration(text.strip())
    except UnitError as e:
        raise ValueError(f"{what}: {e}") from None


def _size(text: str, what: str) -> int:
    try:
        return parse_size(text.strip())
    except UnitError as e:
        raise ValueError(f"{what}: {e}") from None


class JobLimitsDialog(QDialog):
    """The limits form. With `create`, also the job's name, parent and completion port.
    `initial` (a job's state entry) fills it in; accept() keeps the dialog open with
    the problem shown while an entry is invalid; `request` is the result."""

    def __init__(self, parent: QWidget | None = None, *, title: str = "Job Limits",
                 jobs: Sequence[str] = (), initial: dict | None = None,
                 create: bool = False) -> None:
        super().__init__(parent)
        self.setObjectName("job_limits_dialog")
        self.setWindowTitle(title)
        self.request: JobRequest | None = None
        self._create = create
        box = QVBoxLayout(self)

        self.name_edit = QLineEdit()
        self.name_edit.setObjectName("job_name")
        self.name_edit.setPlaceholderText("unnamed (shown as Job#JID)")
        self.parent_combo = QComboBox()
        self.parent_combo.setObjectName("job_parent")
        self.parent_combo.addItem("(none: a top-level job)", None)
        for name in jobs:
            self.parent_combo.addItem(name, name)
        self.port_check = QCheckBox("Associate a completion port (messages in the Messages tab)")
        self.port_check.setObjectName("job_completion_port")
        self.port_check.setChecked(True)
        if create:
            form = QFormLayout()
            form.addRow("Name:", self.name_edit)
            form.addRow("Nested in:", self.parent_combo)
            form.addRow(self.port_check)
            box.addLayout(form)

        group = QGroupBox("Limits (JOBOBJECT_EXTENDED_LIMIT_INFORMATION)")
        grid = QGridLayout(group)
        self.checks: dict[str, QCheckBox] = {}
        self.editors: dict[str, QWidget] = {}

        def row(key: str, label: str, editor: QWidget, tip: str, extra: QWidget | None = None):
            check = QCheckBox(label)
            check.setObjectName(f"limit_{key}")
            check.setToolTip(tip)
            editor.setObjectName(f"limit_{key}_value")
            editor.setEnabled(False)
            check.toggled.connect(editor.setEnabled)
            r = grid.rowCount()
            grid.addWidget(check, r, 0)
            grid.addWidget(editor, r, 1)
            if extra is not None:
                extra.setEnabled(False)
                check.toggled.connect(extra.setEnabled)
                grid.addWidget(extra, r, 2)
            self.checks[key] = check
            self.editors[key] = editor

        self.active_spin = QSpinBox()
        self.active_spin.setRange(0, 2**31 - 1)
        self.active_spin.setValue(1)
        row("active_process", "Active processes", self.active_spin,
            "ActiveProcessLimit: assigning one more fails and terminates it (§6.3)")
        self.affinity_edit = QLineEdit("0")
        row("affinity", "Affinity", self.affinity_edit,
            "CPUs the job's threads may use, e.g. 0,1 or 0-3; a subset of the system's (§6.8)")
        self.class_combo = QComboBox()
        for cls in PRIORITY_CLASS_KEYS:
            self.class_combo.addItem(PRIORITY_CLASS_NAMES[cls], cls)
        self.class_combo.setCurrentIndex(PRIORITY_CLASS_KEYS.index("normal"))
        row("priority_class", "Priority class", self.class_combo,
            "Every process in the job runs at this class (§6.7)")
        self.scheduling_spin = QSpinBox()
        self.scheduling_spin.setRange(0, 9)
        self.scheduling_spin.setValue(5)
        row("scheduling_class", "Scheduling class", self.scheduling_spin,
            "0..9 (default 5); sets the quantum only with fixed quanta (§6.12)")
        self.process_time_edit = QLineEdit("100ms")
        row("per_process_user_time", "Per-process user time", self.process_time_edit,
            "A process over this much user time is terminated (§6.4)")
        self.job_time_edit = QLineEdit("1s")
        self.end_action_combo = QComboBox()
        self.end_action_combo.setObjectName("limit_end_of_job_time_action")
        self.end_action_combo.addItem("terminate all", "terminate")
        self.end_action_combo.addItem("post a message", "post")
        row("per_job_user_time", "Per-job user time", self.job_time_edit,
            "When the job's processes used this much user time: the end-of-job action (§6.5)",
            self.end_action_combo)
        self.process_memory_edit = QLineEdit("64MiB")
        row("process_memory", "Process memory", self.process_memory_edit,
            "Commit limit per process; a commit over it fails (§6.6)")
        self.job_memory_edit = QLineEdit("256MiB")
        row("job_memory", "Job memory", self.job_memory_edit,
            "Commit limit of all the job's processes together (§6.6)")

        self.switches: dict[str, QCheckBox] = {}
        for key, label, tip in (
                ("kill_on_job_close", "Kill on job close",
                 "Closing the last handle terminates every process (§6.11)"),
                ("breakaway_ok", "Breakaway OK",
                 "Children created with CREATE_BREAKAWAY_FROM_JOB leave the job (§6.9)"),
                ("silent_breakaway_ok", "Silent breakaway OK",
                 "Every child is created outside the job (§6.9)"),
                ("die_on_unhandled_exception", "Die on unhandled exception",
                 "An unhandled exception ends the process with its code (§6.17)"),
                ("subset_affinity", "Subset affinity",
                 "Processes may narrow the job's affinity (needs Affinity, §6.8)"),
                ("preserve_job_time", "Keep the job-time limit",
                 "PRESERVE_JOB_TIME: the current per-job time limit and its period stay "
                 "(cannot go with a new per-job time, §6.5)")):
            check = QCheckBox(label)
            check.setObjectName(f"limit_{key}")
            check.setToolTip(tip)
            self.switches[key] = check
            r = grid.rowCount()
            grid.addWidget(check, r, 0, 1, 3)
        box.addWidget(group)

        rate_group = QGroupBox("CPU rate control (JOBOBJECT_CPU_RATE_CONTROL_INFORMATION)")
        rate_box = QHBoxLayout(rate_group)
        self.rate_mode = QComboBox()
        self.rate_mode.setObjectName("cpu_rate_mode")
        for mode in CPU_RATE_MODES:
            self.rate_mode.addItem(CPU_RATE_MODE_NAMES[mode], mode)
        self.rate_spin = _percent_spin("cpu_rate_percent", 0.01, 25.0)
        self.weight_spin = QSpinBox()
        self.weight_spin.setObjectName("cpu_rate_weight")
        self.weight_spin.setRange(1, 9)
        self.weight_spin.setValue(5)
        self.min_rate_spin = _percent_spin("cpu_rate_min", 0.0, 0.0)
        self.max_rate_spin = _percent_spin("cpu_rate_max", 0.01, 100.0)
        rate_box.addWidget(self.rate_mode)
        for label, widget in (("Cap", self.rate_spin), ("Weight", self.weight_spin),
                              ("Min", self.min_rate_spin), ("Max", self.max_rate_spin)):
            rate_box.addWidget(QLabel(label))
            rate_box.addWidget(widget)
        self.rate_mode.currentIndexChanged.connect(self._on_rate_mode)
        box.addWidget(rate_group)

        self.error_label = QLabel()
        self.error_label.setObjectName("job_form_error")
        self.error_label.setWordWrap(True)
        self.error_label.setStyleSheet("QLabel { color: #b02a37; }")
        box.addWidget(self.error_label)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok
                                   | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        box.addWidget(buttons)
        if initial is not None:
            self.fill(initial)
        self._on_rate_mode()

    def fill(self, job: dict) -> None:
        """Show a job's current limits (its state entry)."""
        limits = job.get("limits") if isinstance(job.get("limits"), dict) else {}
        values = {
            "active_process": limits.get("active_process"),
            "affinity": limits.get("affinity"),
            "priority_class": limits.get("priority_class"),
            "scheduling_class": limits.get("scheduling_class"),
            "per_process_user_time": limits.get("per_process_user_time_us"),
            "per_job_user_time": limits.get("per_job_user_time_us"),
            "process_memory": limits.get("process_memory"),
            "job_memory": limits.get("job_memory"),
        }
        for key, value in values.items():
            self.checks[key].setChecked(value is not None)
            if value is None:
                continue
            if key == "active_process":
                self.active_spin.setValue(int(value))
            elif key == "affinity":
                self.affinity_edit.setText(cpus_text(value))
            elif key == "priority_class" and value in PRIORITY_CLASS_KEYS:
                self.class_combo.setCurrentIndex(PRIORITY_CLASS_KEYS.index(value))
            elif key == "scheduling_class":
                self.scheduling_spin.setValue(int(value))
            elif key in ("per_process_user_time", "per_job_user_time"):
                edit = self.process_time_edit if key == "per_process_user_time" \
                    else self.job_time_edit
                edit.setText(us_duration_text(value))
            else:
                edit = self.process_memory_edit if key == "process_memory" \
                    else self.job_memory_edit
                edit.setText(bytes_text(value))
        if limits.get("end_of_job_time_action") == "post":
            self.end_action_combo.setCurrentIndex(1)
        for key, check in self.switches.items():
            check.setChecked(bool(limits.get(key)))
        rate = job.get("cpu_rate")
        mode = rate.get("mode") if isinstance(rate, dict) else None
        self.rate_mode.setCurrentIndex(CPU_RATE_MODES.index(mode) if mode in CPU_RATE_MODES
                                       else 0)
        if mode == "hard_cap":
            self.rate_spin.setValue(rate.get("rate", 2500) / 100)
        elif mode == "weight":
            self.weight_spin.setValue(int(rate.get("weight", 5)))
        elif mode == "min_max":
            self.min_rate_spin.setValue(rate.get("min_rate", 0) / 100)
            self.max_rate_spin.setValue(rate.get("max_rate", 10000) / 100)

    def make_request(self) -> JobRequest:
        """The form as a JobRequest; ValueError (one line for the user) if an entry is bad."""
        on = {key: check.isChecked() for key, check in self.checks.items()}
        limits: dict = {}
        if on["active_process"]:
            limits["active_process"] = self.active_spin.value()
        if on["affinity"]:
            limits["affinity"] = parse_cpus(self.affinity_edit.text())
        if on["priority_class"]:
            limits["priority_class"] = self.class_combo.currentData()
        if on["scheduling_class"]:
            limits["scheduling_class"] = self.scheduling_spin.value()
        if on["per_process_user_time"]:
            limits["per_process_user_time_ns"] = _duration_ns(self.process_time_edit.text(),
                                                              "per-process user time")
        if on["per_job_user_time"]:
            limits["per_job_user_time_ns"] = _duration_ns(self.job_time_edit.text(),
                                                          "per-job user time")
            limits["end_of_job_time_action"] = self.end_action_combo.currentData()
        if on["process_memory"]:
            limits["process_memory"] = _size(self.process_memory_edit.text(), "process memory")
        if on["job_memory"]:
            limits["job_memory"] = _size(self.job_memory_edit.text(), "job memory")
        for key, check in self.switches.items():
            if check.isChecked():
                limits[key] = True
        mode = self.rate_mode.currentData()
        cpu_rate: dict = {}
        if mode == "hard_cap":
            cpu_rate["hard_cap"] = round(self.rate_spin.value() * 100)
        elif mode == "weight":
            cpu_rate["weight"] = self.weight_spin.value()
        elif mode == "min_max":
            cpu_rate["min_rate"] = round(self.min_rate_spin.value() * 100)
            cpu_rate["max_rate"] = round(self.max_rate_spin.value() * 100)
        name = self.name_edit.text().strip() or None
        return JobRequest(name=name if self._create else None,
                          parent=self.parent_combo.currentData() if self._create else None,
                          completion_port=self.port_check.isChecked() if self._create else False,
                          limits=limits, cpu_rate=cpu_rate)

    def accept(self) -> None:
        try:
            self.request = self.make_request()
        except ValueError as e:
            self.request = None
            self.error_label.setText(str(e))
            return
        self.error_label.clear()
        super().accept()

    def _on_rate_mode(self, _index: int = 0) -> None:
        mode = self.rate_mode.currentData()
        self.rate_spin.setEnabled(mode == "hard_cap")
        self.weight_spin.setEnabled(mode == "weight")
        self.min_rate_spin.setEnabled(mode == "min_max")
        self.max_rate_spin.setEnabled(mode == "min_max")


def _percent_spin(name: str, low: float, value: float) -> QDoubleSpinBox:
    """A rate in percent with two decimals: the kernel's unit is 1/100 % (§6.13)."""
    spin = QDoubleSpinBox()
    spin.setObjectName(name)
    spin.setRange(low, 100.0)
    spin.setDecimals(2)
    spin.setSuffix(" %")
    spin.setValue(value)
    return spin

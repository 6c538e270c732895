"""The Fibers dock: the fibers of the selected thread and their FLS slots.

A fiber is scheduled by its program, never by the kernel (§7.1): the scheduler sees only
the thread, so this is the one place its fibers show. The thread's state entry lists the
fibers it created or converted (``fibers``) and names the one it runs now (``fiber``).
Each row says where the fiber is: current (selected by this thread, in bold), selected by
another thread (SwitchToFiber may pick a fiber created elsewhere, §7.3), not yet run
(CreateFiber does not schedule it), or switched out. The FLS table shows the slot values
of the fiber chosen in the table (the current one by default): FLS values belong to the
fiber, not the thread (§7.6).

Both tables are `KeyedTableModel`s refreshed by keyed diff; a fiber is keyed by its
thread's identity, its address and its name, so showing another thread removes and
inserts rows instead of resetting. A live source cannot see fibers (``fibers`` is None).

The fiber table's context menu holds the actions it is given (`add_context_actions`: the
main window's Fiber actions); `chosen_address` is the fiber row the user picked, and
`shown` is emitted whenever the view shows another thread or state.
"""

from __future__ import annotations

from PySide6.QtCore import QModelIndex, Qt, Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QLabel, QSplitter, QVBoxLayout, QWidget

from core.units import format_size
from core.values import format_address
from inspector.keyed_table import PAYLOAD_ROLE, KeyedTableModel, TableRow, make_table, plain
from inspector.process_model import Column, identity_time

FIBER_COLUMNS = (
    Column("Fiber", "The fiber's name (a converted thread's fiber is named after the thread)",
           sample="worker-fiber"),
    Column("State", "Current: the thread runs it now; Selected by: another thread runs it; "
                    "Not yet run: created, never switched to; Switched out",
           sample="Selected by thread 99999"),
    Column("Address", "What CreateFiber / GetCurrentFiber return", sample="0x000001f0`00001000"),
    Column("Parameter", "lpParameter: what GetFiberData returns (§7.5)", True,
           sample="0xDEADBEEF"),
    Column("FLS", "Fiber-local storage values of this fiber (slot = value, §7.6)",
           sample="ctx = 0x7, log = 0x1"),
    Column("Stack reserve", "Reserved stack (0 at creation means the 1 MB default, §7.3)", True,
           sample="1024KiB"),
    Column("Kind", "ConvertThreadToFiber (the thread's own code) or CreateFiber",
           sample="Converted thread"),
)
(F_NAME, F_STATE, F_ADDRESS, F_PARAMETER, F_FLS, F_STACK, F_KIND) = range(len(FIBER_COLUMNS))

FLS_COLUMNS = (
    Column("Slot", "FLS index, by the name the program gave it (FlsAlloc)", sample="context"),
    Column("Value", "FlsGetValue in this fiber (zero values are not listed)", True,
           sample="0x00000000DEADBEEF"),
)

NO_THREAD = "No thread selected"


def pointer_text(value) -> str:
    """A pointer-sized value in hex (a fiber address as WinDbg prints it)."""
    if type(value) is not int:
        return "" if value is None else str(value)
    if value < 0:
        value &= 0xFFFFFFFFFFFFFFFF
    return format_address(value, "x64" if value > 0xFFFFFFFF else "x86")


def value_text(value) -> str:
    if type(value) is not int:
        return "" if value is None else str(value)
    return f"0x{value & 0xFFFFFFFFFFFFFFFF:X}"


def fiber_state_text(fiber: dict, tid) -> str:
    selected_by = fiber.get("selected_by")
    if fiber.get("deleted"):
        return "Deleted"
    if fiber.get("current"):
        return "Current"
    if selected_by is not None and selected_by != tid:
        return f"Selected by thread {selected_by}"
    if not fiber.get("started"):
        return "Not yet run"
    return "Switched out"


def fls_text(fls) -> str:
    if not isinstance(fls, dict):
        return ""
    return ", ".join(f"{slot} = {value_text(v)}" for slot, v in fls.items())


def fiber_rows(thread_key: tuple, thread: dict) -> list[TableRow]:
    tid = thread.get("tid")
    rows = []
    for f in thread.get("fibers") or ():
        if not isinstance(f, dict):
            continue
        name = f.get("name")
        reserve = f.get("stack_reserve")
        kind = "Converted thread" if f.get("converted") else "CreateFiber"
        texts = (
            "" if name is None else str(name), fiber_state_text(f, tid),
            pointer_text(f.get("address")), value_text(f.get("parameter")),
            fls_text(f.get("fls")),
            format_size(reserve) if type(reserve) is int and reserve >= 0 else "", kind,
        )
        rows.append(TableRow(thread_key + (plain(f.get("address")), plain(name)), texts,
                             payload=name, bold=bool(f.get("current"))))
    return rows


def process_fibers(process) -> list:
    """The live fibers of a simulated process (kernel Fiber objects), by the thread that
    made them.  A fiber outlives the thread that created it until DeleteFiber or the end
    of the process (§7.3), so the lists of exited threads count too."""
    return [f for t in process.threads for f in t.fibers if not f.deleted]


def _find_thread(state: dict, pid: int, tid: int) -> dict | None:
    found = None
    for p in state.get("processes") or ():
        if isinstance(p, dict) and p.get("pid") == pid:
            for t in p.get("threads") or ():
                if isinstance(t, dict) and t.get("tid") == tid:
                    found = t  # the newest entry wins, as in the thread table
    return found


class FiberView(QWidget):
    """The fibers of one thread (`set_thread`), from the state documents given to
    `update_state`."""

    shown = Signal()  # another thread or state is shown

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._pid: int | None = None
        self._tid: int | None = None
        self._thread: dict | None = None
        self._state: dict | None = None
        self._chosen: str | None = None  # the fiber whose FLS is shown (None: the current)

        self.title = QLabel(NO_THREAD)
        self.title.setObjectName("fibers_title")
        self.title.setWordWrap(True)
        self.model = KeyedTableModel(FIBER_COLUMNS, self)
        self.fls_model = KeyedTableModel(FLS_COLUMNS, self)
        self.table = make_table(self.model, "fiber_table")
        self.fls_table = make_table(self.fls_model, "fls_table")
        self.table.setContextMenuPolicy(Qt.ContextMenuPolicy.ActionsContextMenu)
        self.fls_title = QLabel("")
        self.fls_title.setObjectName("fls_title")
        fls_box = QWidget()
        inner = QVBoxLayout(fls_box)
        inner.setContentsMargins(0, 0, 0, 0)
        inner.addWidget(self.fls_title)
        inner.addWidget(self.fls_table, 1)
        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.setObjectName("fiber_splitter")
        splitter.addWidget(self.table)
        splitter.addWidget(fls_box)
        splitter.setStretchFactor(0, 3)
        splitter.setStretchFactor(1, 2)
        box = QVBoxLayout(self)
        box.setContentsMargins(0, 0, 0, 0)
        box.addWidget(self.title)
        box.addWidget(splitter, 1)
        self.table.selectionModel().currentRowChanged.connect(self._on_current_changed)

    # ---- Public API

    @property
    def pid(self) -> int | None:
        return self._pid

    @property
    def tid(self) -> int | None:
        return self._tid

    def set_thread(self, pid: int | None, tid: int | None = None) -> None:
        """Show the fibers of thread `tid` of process `pid` (None: no thread)."""
        if pid is None or tid is None or pid < 0 or tid < 0:
            pid = tid = None
        if (pid, tid) == (self._pid, self._tid):
            return
        self._pid, self._tid = pid, tid
        self._chosen = None
        self._show()

    def update_state(self, state: dict) -> None:
        if not isinstance(state, dict):
            raise ValueError("a state must be a dict with a 'processes' list")
        self._state = state
        self._show()

    def choose_fiber(self, name: str) -> bool:
        """Show the FLS slots of fiber `name` of the thread (selects its row)."""
        row = next((i for i in range(self.model.rowCount())
                    if self.model.row_at(i).payload == name), -1)
        if row < 0:
            return False
        self.table.setCurrentIndex(self.model.index(row, 0))
        return True

    def chosen_address(self) -> int | None:
        """The address of the fiber whose row the user picked (None: no row picked)."""
        row = self.model.row_at(self.table.currentIndex().row())
        address = None if row is None else row.key[-2]  # keys end (address, name)
        return address if type(address) is int else None

    def add_context_actions(self, actions: tuple[QAction, ...]) -> None:
        """Put `actions` in the fiber table's context menu."""
        self.table.addActions(list(actions))

    # ---- Internals

    def _show(self) -> None:
        thread = None
        if self._state is not None and self._pid is not None:
            thread = _find_thread(self._state, self._pid, self._tid)
        self._thread = thread
        rows: list[TableRow] = []
        if self._pid is None:
            title = NO_THREAD
        elif thread is None:
            title = f"Thread {self._tid} is no longer running"
        elif thread.get("fibers") is None:
            title = (f"Thread {self._tid}: this source cannot see fibers (they live in the "
                     "process's user-mode memory)")
        else:
            key = (self._pid, self._tid, identity_time(thread.get("create_time_us")))
            rows = fiber_rows(key, thread)
            name = thread.get("name")
            who = f"Thread {self._tid}" + (f" ({name})" if name else "")
            if not rows:
                title = f"{who} is not a fiber thread (no ConvertThreadToFiber)"
            else:
                current = thread.get("fiber")
                title = (f"{who}: {len(rows)} fiber{'s' if len(rows) != 1 else ''}, "
                         + (f"running fiber {current}" if current else "no fiber selected"))
        self.title.setText(title)
        self.model.set_rows(rows)
        self._show_fls()
        self.shown.emit()

    def _show_fls(self) -> None:
        thread = self._thread
        fibers = [f for f in (thread.get("fibers") or ()) if isinstance(f, dict)] \
            if isinstance(thread, dict) else []
        chosen = None
        if self._chosen is not None:
            chosen = next((f for f in fibers if f.get("name") == self._chosen), None)
        if chosen is None:
            chosen = next((f for f in fibers if f.get("current")), None)
        if chosen is None:
            self.fls_title.setText("FLS: no fiber" if not fibers else "FLS: choose a fiber")
            self.fls_model.clear()
            return
        self.fls_title.setText(f"FLS of fiber {chosen.get('name')}")
        fls = chosen.get("fls") if isinstance(chosen.get("fls"), dict) else {}
        base = (self._pid, self._tid, plain(chosen.get("address")), plain(chosen.get("name")))
        self.fls_model.set_rows(TableRow(base + (plain(slot),), (str(slot), value_text(v)))
                                for slot, v in fls.items())

    def _on_current_changed(self, current: QModelIndex, _previous: QModelIndex) -> None:
        name = current.data(PAYLOAD_ROLE) if current.isValid() else None
        if name is not None and name != self._chosen:
            self._chosen = name
            self._show_fls()


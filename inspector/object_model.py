"""The structure tree of one kernel object, with live values, as WinDbg's ``dt`` shows it.

`ObjectTreeModel` shows a `core.memory.KObject` (an _EPROCESS, _ETHREAD, _PEB, …) of
the simulated kernel: Offset, Field, Type and Value per member, nested structures
and arrays expandable, bitfields as ``Pos 3, 1 Bit`` / ``0y1``. A ``_LIST_ENTRY``
expands into its Flink and Blink and then into the entries of its list. Pointers
that lead to a simulated object are links (`link()`).

Rows are made when a view first asks how many a node has, and a row's value is
worked out only when it is shown. `refresh()` decodes the object again after the
simulation ran and reports just the Value cells that changed (``dataChanged``; list
entries that came or went are inserted and removed), never a reset; changed cells
flash, fading over `FLASH_SECONDS` on an injectable clock. A new object, or the
same object laid out by another build, is a new document: the model is reset.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from typing import Any, Callable, Iterable, NamedTuple

from PySide6.QtCore import QModelIndex, QObject, QPersistentModelIndex, Qt, QTimer
from PySide6.QtGui import QColor, QFont, QFontDatabase, QGuiApplication, QPalette

from core.layouts import Build
from core.memory import FieldRef, KernelMemoryError, KObject, ListHead, Location, Node
from core.values import (TICK_100NS, FastRefValue, ListLink, format_address, format_duration,
                         format_filetime)
from inspector.field_help import field_help
from inspector.layout_model import StructTreeModel, build_title, dt_line, flag_explanation, offset_text

COLUMNS = ("Offset", "Field", "Type", "Value")
OFFSET, FIELD, TYPE, VALUE = range(len(COLUMNS))

COLUMN_TIPS = (
    "Offset from the start of the containing structure, as WinDbg's dt -r prints it "
    "(hover a row for the offset from the start of the object and the address)",
    "Member name; list entries are numbered in list order",
    "Type exactly as WinDbg's dt spells it for this build's architecture",
    "The value as WinDbg's dt prints it, and what it means where KOI knows "
    "(enum names, times, what a pointer points at)",
)

# Custom roles, for the view and for tests.
LINK_ROLE = Qt.ItemDataRole.UserRole + 1      # (KObject, member path) the row leads to, or None
PATH_ROLE = Qt.ItemDataRole.UserRole + 2      # member path of the row ("" for list rows)
RANGE_ROLE = Qt.ItemDataRole.UserRole + 3     # (offset, size) of the row's bytes in the object
MODELLED_ROLE = Qt.ItemDataRole.UserRole + 4  # False for members KOI has no value for
FLASH_ROLE = Qt.ItemDataRole.UserRole + 5     # True while the Value cell flashes

NOT_MODELLED = "not modelled by KOI"
NOT_MODELLED_TIP = (f"{NOT_MODELLED}: the simulation keeps no value for this member, "
                    "so its bytes are zeros")
FLASH_SECONDS = 1.0
FLASH_INTERVAL_MS = 50   # repaint rate while a flash fades
FLASH_COLOR = QColor(255, 176, 0)  # amber: reads on light and dark palettes alike
ARRAY_CHUNK = 256        # array elements made per fetchMore
LIST_LIMIT = 100_000     # entries a list walk follows before it calls the list broken
_CHAR_ARRAYS = ("UChar", "Char", "Wchar")

Index = QModelIndex | QPersistentModelIndex


# ---- WinDbg's value spellings ------------------------------------------------------

def _hex(value: int) -> str:
    return "0" if value == 0 else f"0x{value:x}"


def _char(value: int) -> str:
    c = value & 0xFF
    return f"'{chr(c)}'" if 0x20 <= c < 0x7F else "''"


def _pointee(node: Node) -> str:
    """What ``dt`` prints after a non-NULL pointer: the pointed-at type (``Void``)."""
    spelled = node.type_name
    return spelled.split(" ", 1)[1] if " " in spelled else spelled


def dt_value(node: Node) -> str:
    """The value exactly as ``dt nt!TYPE address`` prints it after ``: ``:
    ``0x00000000`00000004 Void``, ``(null) ``, ``0y1``, ``0x5 ''``, ``0n-3``,
    ``_LIST_ENTRY [ 0x… - 0x… ]``, ``[15]  "System"``, ``_KPROCESS``."""
    f = node.field
    kind = f.kind
    arch = node.object.space.arch
    if kind == "int":
        v = node.value
        base = f.type.name
        if base == "UChar":
            return f"{_hex(v)} {_char(v)}"
        if base == "Char":
            return f"{v} {_char(v)}"
        return f"0n{v}" if f.signed else _hex(v)
    if kind == "bits":
        return f"0y{node.value:0{f.member.bit_length}b}"
    if kind == "pointer":
        v = node.value
        return "(null) " if v == 0 else f"{format_address(v, arch)} {_pointee(node)}"
    if kind == "float":
        return f"{node.value:g}"
    if kind == "uncertain":
        return node.display
    if kind == "array":
        count = f.type.count
        element = f.type.target
        if element.kind == "base" and element.name in _CHAR_ARRAYS:
            text = node.meaning or ""
            return f'[{count}]  "{text}"'
        if count == 0:
            return f"[0] {element.spell(arch)}"
        return f"[{count}] {dt_value(node.children[0])}"
    if kind == "struct":
        name = f.layout.name
        if name == "_LIST_ENTRY":
            flink, blink = node.value
            return f"{name} [ {format_address(flink, arch)} - {format_address(blink, arch)} ]"
        if name == "_UNICODE_STRING":
            text = node.value
            if text is None:
                buffer = node.find("Buffer").value
                return f'{name} "--- memory read error at address {format_address(buffer, arch)} ---"'
            return f'{name} "{text}"'
        if name == "_LARGE_INTEGER":
            return f"{name} 0x{node.value & 0xFFFF_FFFF_FFFF_FFFF:016x}"
        return name
    if kind == "anonymous":
        return "<unnamed-tag>"
    return node.type_name


_UNSET: Any = object()


def meaning_text(node: Node, target: Any = _UNSET) -> str:
    """What KOI knows the value means (``Waiting``, a date, ``_EPROCESS System``), or "".
    `target`: where a pointer leads, when the caller worked it out (`pointer_target`)."""
    f = node.field
    kind = f.kind
    if kind == "pointer" and target is not _UNSET:
        return f"→ {target}" if target is not None else ""
    try:
        meaning = node.meaning
    except KernelMemoryError:
        return ""
    if kind in ("int", "bits"):
        if isinstance(meaning, str):
            return meaning
        if isinstance(meaning, timedelta):
            return f"{node.value} ticks = {format_duration(node.value * TICK_100NS)}"
        return ""
    if kind == "pointer":
        return f"→ {meaning}" if meaning is not None else ""
    if kind != "struct":
        return ""
    name = f.layout.name
    if name == "_LARGE_INTEGER":
        if isinstance(meaning, datetime) and node.value:
            return format_filetime(node.value)
        if isinstance(meaning, timedelta):
            return format_duration(node.value)
        return ""
    if name == "_EX_FAST_REF" and isinstance(meaning, FastRefValue):
        arch = node.object.space.arch
        where = f" → {meaning.target}" if meaning.target is not None else ""
        return f"Object {format_address(meaning.object, arch)}, RefCnt {meaning.refcnt}{where}"
    if name == "_DISPATCHER_HEADER":
        kobject = meaning or f"type {node.value}"
        return f"{kobject}, SignalState {node.find('SignalState').value}"
    if name == "_PS_PROTECTION":
        return str(meaning) if meaning else ""
    if name == "_CLIENT_ID":
        pid, tid = node.value
        return f"Cid {pid:04x}.{tid:04x}"
    return ""


def value_text(node: Node, target: Any = _UNSET) -> str:
    """The Value cell: dt's spelling and, in parentheses, the meaning."""
    text = dt_value(node).rstrip()
    extra = meaning_text(node, target)
    if not extra:
        return text
    return f"{text} {extra}" if extra.startswith("→") else f"{text} ({extra})"


def describe_object(obj: KObject) -> str:
    """A short name for an object as a list entry: ``System (PID 4)``, ``Cid 0004.0008``."""
    label = obj.label or ""
    if obj.type == "_EPROCESS":
        pid = obj.get("UniqueProcessId")
        return f"{label} (PID {pid})" if isinstance(pid, int) else label
    if obj.type == "_ETHREAD":
        pid, tid = obj.get("Cid.UniqueProcess"), obj.get("Cid.UniqueThread")
        if isinstance(pid, int) and isinstance(tid, int):
            return f"{label} (Cid {pid:04x}.{tid:04x})"
    return label


def process_context(obj: KObject) -> KObject | None:
    """The process whose user space `obj`'s user-mode pointers point into: its own
    (``obj.process``), else the process a thread names (KTHREAD.Process), as
    WinDbg's ``.process`` context would be set for it."""
    if obj.process is not None:
        return obj.process
    for path in ("Tcb.Process", "Process", "Tcb.ApcState.Process", "ApcState.Process"):
        value = obj.values.get(path)
        if isinstance(value, KObject) and value.type == "_EPROCESS":
            return value
    return None


def pointer_target(node: Node, context: KObject | None = None) -> Location | None:
    """Where a pointer (or _EX_FAST_REF) leads in the simulated memory; a user-mode
    address is looked up in `context`'s space when the object has none of its own."""
    try:
        location = node.target
        if location is None and context is not None and node.field.kind == "pointer":
            address = node.value
            space = node.object.space
            if address and not space.is_kernel_address(address):
                location = space.locate(address, process=context)
    except KernelMemoryError:
        return None
    return location


def _link_of(location: Location | None) -> tuple[KObject, str] | None:
    """The object (and member) a location is in, for following a link."""
    if location is None or location.object is None:
        return None
    member = location.member if location.member is not None else (location.path or "")
    return location.object, member


def modelled_mask(root: Node) -> bytes:
    """Per byte of the object: 1 where a member KOI has a value for lies, else 0
    (the hex view greys the rest). Bitfields mark the bytes their bits touch."""
    mask = bytearray(root.size)
    base = root.offset
    pending = [root]
    while pending:
        node = pending.pop()
        if not node.modelled:
            continue
        f = node.field
        start = f.offset - base
        if f.kind in ("struct", "anonymous") and node.children:
            pending.extend(node.children)
        elif f.kind == "bits":
            first = f.member.bit_position // 8
            last = (f.member.bit_position + f.member.bit_length - 1) // 8
            mask[start + first:start + last + 1] = b"\1" * (last - first + 1)
        else:
            mask[start:start + f.size] = b"\1" * f.size
    return bytes(mask)


# ---- Rows --------------------------------------------------------------------------

MEMBER, HEAD, ENTRY, NOTE = range(4)


class _Spec(NamedTuple):
    """A list row as worked out from the list: rows are matched to specs by key."""

    key: Any
    kind: int
    name: str
    type_text: str
    text: str
    link: tuple[KObject, str] | None
    tip: str
    is_self: bool = False


class Row:
    """One row: a member of the object (MEMBER), the head of the list an entry is
    on (HEAD), an entry of a list (ENTRY) or a message (NOTE).

    `children` is None until first asked for. A member row's `text`/`modelled`/
    `link` belong to decode generation `gen`; they are worked out when shown."""

    __slots__ = ("parent", "row", "kind", "path", "field", "depth", "key", "children", "total",
                 "members", "gen", "text", "modelled", "link", "flash_until", "name", "type_text",
                 "tip", "is_self")

    def __init__(self, parent: Row | None, row: int, kind: int, field: FieldRef | None = None) -> None:
        self.parent = parent
        self.row = row
        self.kind = kind
        self.field = field
        self.path = field.path if field is not None else ""
        self.depth = -1 if parent is None else parent.depth + 1
        self.key: Any = self.path if kind == MEMBER else None
        self.children: list[Row] | None = None
        self.total = 0     # arrays: elements in all (children holds those fetched)
        self.members = 0   # _LIST_ENTRY: rows before the list rows (Flink, Blink)
        self.gen = -1
        self.text: str | None = None
        self.modelled = True
        self.link: tuple[KObject, str] | None = None
        self.flash_until: float | None = None
        self.name = field.name if field is not None else ""
        self.type_text = ""
        self.tip = ""
        self.is_self = False

    @classmethod
    def from_spec(cls, parent: Row, row: int, spec: _Spec) -> Row:
        r = cls(parent, row, spec.kind)
        r.key = spec.key
        r.apply(spec)
        return r

    def apply(self, spec: _Spec) -> bool:
        """Take a spec's values; True when what the Value cell shows changed."""
        changed = spec.text != self.text or spec.is_self != self.is_self
        self.name, self.type_text, self.text = spec.name, spec.type_text, spec.text
        self.link, self.tip, self.is_self = spec.link, spec.tip, spec.is_self
        return changed


def _is_prefix(path: str, target: str) -> bool:
    return (path == "" or target == path or target.startswith(path + ".")
            or target.startswith(path + "["))


# ---- The model ---------------------------------------------------------------------

class ObjectTreeModel(StructTreeModel):
    """The members of one kernel object, with their current values."""

    columns, column_tips = COLUMNS, COLUMN_TIPS

    def __init__(self, parent: QObject | None = None, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(parent)
        self.clock = clock
        self._object: KObject | None = None
        self._build: Build | None = None
        self._plan = None  # core.memory.Plan of the object's type in self._build
        self._context: KObject | None = None  # the process user-mode pointers point into
        self._error: str | None = None
        self._root = self._empty_root()
        self._decoded: Node | None = None
        self._nodes: dict[str, Node] = {}
        self._gen = 0
        self._flashing: set[Row] = set()
        self._graveyard: list[Row] = []  # removed rows stay referenced until the next refresh
        self._flash_timer = QTimer(self)
        self._flash_timer.setInterval(FLASH_INTERVAL_MS)
        self._flash_timer.timeout.connect(self.flash_tick)
        self._mono = QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont)
        self._mono_italic = QFont(self._mono)
        self._mono_italic.setItalic(True)
        self._mono_bold = QFont(self._mono)
        self._mono_bold.setBold(True)
        self._italic = QFont()
        self._italic.setItalic(True)
        self._bold = QFont()
        self._bold.setBold(True)

    @staticmethod
    def _empty_root() -> Row:
        root = Row(None, 0, MEMBER)
        root.children = []
        return root

    # ---- Public API

    @property
    def object(self) -> KObject | None:
        return self._object

    @property
    def build(self) -> Build | None:
        """The build the rows are laid out for."""
        return self._build

    @property
    def error(self) -> str | None:
        """Why the object cannot be shown (freed, absent in the build), or None."""
        return self._error

    @property
    def process_context(self) -> KObject | None:
        """The _EPROCESS whose user space the object's user-mode pointers use."""
        return self._context

    @property
    def root_node(self) -> Node | None:
        """The object decoded by the last fill or refresh."""
        return self._decoded

    def layout_is_current(self) -> bool:
        """False once the object's address space was laid out by another build."""
        return self._object is None or self._object.space.build is self._build

    def set_object(self, obj: KObject | None) -> None:
        """Show `obj` (None: nothing). A new document: the model is reset."""
        old = self._root
        self.beginResetModel()
        self._object = obj
        self._flashing.clear()
        self._flash_timer.stop()
        self._graveyard = []
        self._root = self._empty_root()
        self._decoded = None
        self._nodes = {}
        self._error = None
        self._build = obj.space.build if obj is not None else None
        self._plan = None
        if obj is not None:
            try:
                # Rows keep FieldRefs of this plan; they must never meet another
                # build's plan (Plan caches what it is given), so the plan is pinned.
                self._plan = obj.space.plan(obj.type)
                self._context = process_context(obj)
                self._decode()
            except KernelMemoryError as exc:
                self._error = str(exc)
            else:
                self._root = Row(None, 0, MEMBER, self._decoded.field)
        self.endResetModel()
        del old

    def relayout(self) -> None:
        """Lay the same object out again (after the build changed)."""
        self.set_object(self._object)

    def refresh(self) -> int:
        """Decode the object again and report what changed: Value cells by
        ``dataChanged`` (and a flash), list entries by row inserts and removes.
        Returns the number of rows whose value changed. Lays out again (a reset)
        when the build changed; an object that no longer exists empties the model."""
        obj = self._object
        if obj is None:
            return 0
        if not self.layout_is_current():
            self.relayout()
            return 0
        if self._error is not None:  # freed, or absent from this build: stays so until a new build
            return 0
        try:
            self._decode()
        except KernelMemoryError:
            self.relayout()  # freed or gone from this build: the error page
            return 0
        self._graveyard = []
        now = self.clock()
        changed: dict[int, tuple[Row, list[Row]]] = {}  # id(parent) -> (parent, changed rows)
        restyled: list[Row] = []
        pending = [self._root]
        while pending:
            row = pending.pop()
            if row.kind == MEMBER and row.parent is not None and row.text is not None:
                before = (row.text, row.modelled)
                self._evaluate(row)
                if row.text != before[0]:
                    changed.setdefault(id(row.parent), (row.parent, []))[1].append(row)
                    self._flash(row, now)
                if row.modelled != before[1]:
                    restyled.append(row)
            if row.children is None:
                continue
            if row.members:  # a _LIST_ENTRY whose entries are shown
                for moved in self._sync_list(row, now):
                    changed.setdefault(id(row), (row, []))[1].append(moved)
            pending.extend(row.children)
        for parent, rows in changed.values():
            self._emit_rows(parent, rows, VALUE, VALUE)
        for row in restyled:
            self._emit_rows(row.parent, [row], 0, len(COLUMNS) - 1)
        if self._flashing and not self._flash_timer.isActive():
            self._flash_timer.start()
        return sum(len(rows) for _, rows in changed.values())

    def flash_tick(self) -> None:
        """Fade the flashing Value cells one step; end the flashes whose time is over
        (the timer calls this; tests call it after moving their clock)."""
        if not self._flashing:
            self._flash_timer.stop()
            return
        now = self.clock()
        rows = list(self._flashing)
        for row in rows:
            if row.flash_until is None or row.flash_until <= now:
                row.flash_until = None
                self._flashing.discard(row)
        by_parent: dict[int, tuple[Row, list[Row]]] = {}
        for row in rows:
            if row.parent is not None and self._attached(row):
                by_parent.setdefault(id(row.parent), (row.parent, []))[1].append(row)
        for parent, group in by_parent.values():
            self._emit_rows(parent, group, VALUE, VALUE, [Qt.ItemDataRole.BackgroundRole, FLASH_ROLE])
        if not self._flashing:
            self._flash_timer.stop()

    def is_flashing(self, index: Index) -> bool:
        if not index.isValid():
            return False
        row: Row = index.internalPointer()
        return row.flash_until is not None and row.flash_until > self.clock()

    @property
    def flashing_count(self) -> int:
        return len(self._flashing)

    @property
    def flash_timer(self) -> QTimer:
        return self._flash_timer

    def row_of(self, index: Index) -> Row:
        """The row behind `index` (the invisible root for an invalid index)."""
        return self._row_at(index)

    def index_of(self, row: Row, column: int = 0) -> QModelIndex:
        if row.parent is None:
            return QModelIndex()
        return self.createIndex(row.row, column, row)

    def index_for_path(self, path: str) -> QModelIndex:
        """The row of member `path` (``Pcb.Header.Type``, ``Tcb.Affinity.Bitmap[0]``),
        making the rows on the way; invalid when the object has no such member."""
        if self._object is None or self._error is not None:
            return QModelIndex()
        row = self._root
        while row.path != path:
            kids = self._children_of(row)
            nxt = next((c for c in kids[:row.members or None]
                        if c.kind == MEMBER and c.path != row.path and _is_prefix(c.path, path)), None)
            if nxt is None and row.total > len(kids):  # an element beyond the fetched ones
                while self.canFetchMore(self.index_of(row)) and nxt is None:
                    self.fetchMore(self.index_of(row))
                    nxt = next((c for c in row.children if _is_prefix(c.path, path)), None)
            if nxt is None:
                return QModelIndex()
            row = nxt
        return self.index_of(row)

    def node(self, index: Index) -> Node | None:
        """The decoded member behind a member row (None for list rows)."""
        row = self.row_of(index)
        if row.kind != MEMBER or self._decoded is None:
            return None
        return self._node(row.path)

    def link(self, index: Index) -> tuple[KObject, str] | None:
        """The object (and member path to select in it) a row leads to, or None."""
        if not index.isValid():
            return None
        row: Row = index.internalPointer()
        if row.kind == MEMBER:
            self._ensure(row)
        return row.link

    def byte_range(self, index: Index) -> tuple[int, int] | None:
        """(offset from the object's start, length) of a member row's bytes; for a
        bitfield, the bytes its bits lie in. None for list rows."""
        if not index.isValid():
            return None
        row: Row = index.internalPointer()
        if row.kind != MEMBER:
            return None
        f = row.field
        if f.kind == "bits":
            first = f.member.bit_position // 8
            last = (f.member.bit_position + f.member.bit_length - 1) // 8
            return f.offset + first, last - first + 1
        return f.offset, f.size

    def relative_offset(self, row: Row) -> int:
        """The offset dt -r prints: from the containing structure (or, inside an
        array or a named member of anonymous type, from that member)."""
        f = row.field
        parent = row.parent
        if parent is not None and parent.field is not None and parent.field.kind in ("array", "anonymous"):
            return f.offset - parent.field.offset
        return f.offset - f.origin

    def dt_text(self) -> str:
        """The object as ``dt nt!TYPE address`` prints it: one line per top-level
        member, ``   +0x440 UniqueProcessId  : 0x00000000`00000004 Void``."""
        obj, root = self._object, self._decoded
        if obj is None or root is None:
            return ""
        address = format_address(obj.address, obj.space.arch)[2:]
        lines = [f"dt nt!{obj.type} {address}"]
        for node in root.children:
            lines.append(dt_line(0, node.relative_offset, node.name, dt_value(node)))
        return "\n".join(lines)

    def dt_lines(self, indexes: Iterable[Index]) -> list[str]:
        """Rows as ``dt -r`` lines with values, indented by depth."""
        out = []
        for index in indexes:
            row = self.row_of(index)
            if row.parent is None:
                continue
            if row.kind == MEMBER:
                node = self._node(row.path)
                out.append(dt_line(row.depth, self.relative_offset(row), row.name, dt_value(node)))
            else:
                out.append(f"{'   ' * (row.depth + 1)}{row.name} {row.text}")
        return out

    def expanded_paths(self, is_expanded: Callable[[QModelIndex], bool]) -> list[str]:
        """Member paths of the made rows for which `is_expanded(index)` holds (a
        view's expansion, by path, so it survives a relayout or a trip through history)."""
        out, pending = [], [self._root]
        while pending:
            row = pending.pop()
            if row.children is None:
                continue
            for child in row.children:
                if child.kind == MEMBER and child.children and is_expanded(self.index_of(child)):
                    out.append(child.path)
                    pending.append(child)
        return out

    def modelled_mask(self) -> bytes:
        return modelled_mask(self._decoded) if self._decoded is not None else b""

    def title(self) -> str:
        obj = self._object
        if obj is None:
            return ""
        name = f"nt!{obj.type}" + (f" {obj.label}" if obj.label else "")
        if self._error is not None:
            return name
        size = obj.size
        return (f"{name} at {format_address(obj.address, obj.space.arch)} · "
                f"0x{size:x} ({size}) bytes · {build_title(obj.space.build)}")

    # ---- Reimplemented Qt functions

    def hasChildren(self, parent: Index = QModelIndex()) -> bool:
        if parent.column() > 0:
            return False
        row = self.row_of(parent)
        if row.children is not None:
            return bool(row.children) or row.total > 0
        return self._expandable(row)

    def canFetchMore(self, parent: Index) -> bool:
        row = self.row_of(parent)
        return row.children is not None and row.total > len(row.children)

    def fetchMore(self, parent: Index) -> None:
        row = self.row_of(parent)
        if row.children is None or row.total <= len(row.children):
            return
        start = len(row.children)
        end = min(row.total, start + ARRAY_CHUNK)
        plan = self._plan
        self.beginInsertRows(parent, start, end - 1)
        row.children.extend(Row(row, i, MEMBER, plan.element(row.field, i)) for i in range(start, end))
        self.endInsertRows()

    def flags(self, index: Index) -> Qt.ItemFlag:
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        flags = Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable
        row: Row = index.internalPointer()
        if row.kind != MEMBER or not self._expandable(row):
            flags |= Qt.ItemFlag.ItemNeverHasChildren
        return flags

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        row: Row = index.internalPointer()
        column = index.column()
        if row.kind == MEMBER:
            self._ensure(row)
        if role == Qt.ItemDataRole.DisplayRole:
            return self._display(row, column)
        if role == Qt.ItemDataRole.FontRole:
            return self._font(row, column)
        if role == Qt.ItemDataRole.ForegroundRole:
            return self._foreground(row, column)
        if role == Qt.ItemDataRole.BackgroundRole:
            if column == VALUE and row.flash_until is not None:
                left = row.flash_until - self.clock()
                if left > 0:
                    color = QColor(FLASH_COLOR)
                    color.setAlpha(int(40 + 180 * min(1.0, left / FLASH_SECONDS)))
                    return color
            return None
        if role == Qt.ItemDataRole.ToolTipRole:
            return self._tooltip(row, column)
        if role == LINK_ROLE:
            return row.link
        if role == PATH_ROLE:
            return row.path if row.kind == MEMBER else ""
        if role == RANGE_ROLE:
            return self.byte_range(index)
        if role == MODELLED_ROLE:
            return row.modelled
        if role == FLASH_ROLE:
            return self.is_flashing(index)
        return None

    # ---- Cells

    def _display(self, row: Row, column: int) -> str | None:
        if row.kind == MEMBER:
            if column == OFFSET:
                return offset_text(self.relative_offset(row))
            if column == FIELD:
                return row.name
            if column == TYPE:
                return self._type_text(row.field)
            return row.text
        if column == OFFSET:
            return ""
        if column == FIELD:
            return row.name
        if column == TYPE:
            return row.type_text
        return row.text

    def _font(self, row: Row, column: int) -> QFont | None:
        if row.kind == NOTE:
            return self._italic if column == FIELD else self._mono_italic
        if row.kind == ENTRY and row.is_self:
            return self._bold if column == FIELD else self._mono_bold
        flagged = row.kind == MEMBER and row.field.member is not None and bool(row.field.member.flags)
        italic = not row.modelled or (flagged and column == TYPE)
        if column == FIELD:
            return self._italic if italic else None
        return self._mono_italic if italic else self._mono

    def _foreground(self, row: Row, column: int) -> QColor | None:
        palette = QGuiApplication.palette()
        if row.kind == NOTE or not row.modelled:
            return palette.color(QPalette.ColorRole.PlaceholderText)
        if row.kind == MEMBER and column == TYPE and row.field.member is not None and row.field.member.flags:
            return palette.color(QPalette.ColorRole.PlaceholderText)
        if column == VALUE and row.link is not None:
            return palette.color(QPalette.ColorRole.Link)
        return None

    def _tooltip(self, row: Row, column: int) -> str:
        if row.kind != MEMBER:
            return row.tip
        f = row.field
        obj = self._object
        parts = []
        if not row.modelled:
            parts.append(NOT_MODELLED_TIP)
        if column == OFFSET:
            container = (f"{row.parent.name} ({self._type_text(row.parent.field)})"
                         if row.parent is not None and row.parent.parent is not None else obj.type)
            parts.append(f"{offset_text(self.relative_offset(row))} into {container}\n"
                         f"{offset_text(f.offset)} from the start of {obj.type}\n"
                         f"address {format_address(obj.address + f.offset, obj.space.arch)}")
        elif column == TYPE:
            m = f.member
            text = self._type_text(f)
            if f.kind == "bits":
                mask = ((1 << m.bit_length) - 1) << m.bit_position
                text = (f"Bitfield in a {m.type.spell(obj.space.arch)}: bit {m.bit_position}, "
                        f"{m.bit_length} bit{'s' if m.bit_length != 1 else ''} wide, "
                        f"mask 0x{mask:0{f.size * 2}x}")
            parts.append(text)
            if m is not None and m.flags and obj.space.build.has_struct(f.struct):
                parts.append(flag_explanation(obj.space.build, obj.space.build.struct(f.struct), m))
        else:
            if column == FIELD:
                parts.append(f"{obj.type}.{f.path}" if f.path else obj.type)
            else:
                parts.append(row.text or "")
            help_text = field_help(f.struct, f.name) if f.member is not None else None
            if help_text:
                parts.append(help_text)
        if row.link is not None:
            target, member = row.link
            where = f"{target.type} {target.label or ''}".rstrip() + (f", member {member}" if member else "")
            parts.append(f"Double-click to open {where}")
        return "\n\n".join(p for p in parts if p)

    def _type_text(self, f: FieldRef) -> str:
        arch = self._object.space.arch
        if f.kind == "bits":
            return f.member.spell(arch)
        return f.type.spell(arch)

    # ---- Rows

    def _decode(self) -> None:
        self._decoded = self._object.decode()
        self._nodes = {"": self._decoded}
        self._gen += 1

    def _node(self, path: str) -> Node:
        node = self._nodes.get(path)
        if node is None:
            node = self._nodes[path] = self._decoded.find(path)
        return node

    def _ensure(self, row: Row) -> None:
        if row.gen != self._gen and self._decoded is not None:
            self._evaluate(row)

    def _evaluate(self, row: Row) -> None:
        node = self._node(row.path)
        kind = row.field.kind
        if kind == "pointer" or (kind == "struct" and row.field.layout.name == "_EX_FAST_REF"):
            target = pointer_target(node, self._context)
            row.text = value_text(node, target) if kind == "pointer" else value_text(node)
            row.link = _link_of(target)
        else:
            row.text = value_text(node)
            row.link = None
        row.modelled = node.modelled
        row.gen = self._gen

    def _expandable(self, row: Row) -> bool:
        if row.kind != MEMBER or self._plan is None:
            return False
        f = row.field
        if f.kind in ("struct", "anonymous"):
            return bool(self._plan.children(f))
        return self._expandable_array(f)

    @staticmethod
    def _expandable_array(f: FieldRef) -> bool:
        if f.kind != "array" or f.type.count <= 0:
            return False
        element = f.type.target
        return not (element.kind == "base" and element.name in _CHAR_ARRAYS)

    def _children_of(self, row: Row) -> list[Row]:
        """The rows below `row`, made on first use. Rows that appear this way were
        there all along as far as views are concerned: no insert signals are due."""
        if row.children is None:
            row.children = self._make_children(row) if self._expandable(row) else []
        return row.children

    def _make_children(self, row: Row) -> list[Row]:
        plan = self._plan
        f = row.field
        if f.kind == "array":
            row.total = f.type.count
            count = min(row.total, ARRAY_CHUNK)
            return [Row(row, i, MEMBER, plan.element(f, i)) for i in range(count)]
        kids = [Row(row, i, MEMBER, c) for i, c in enumerate(plan.children(f))]
        if f.kind == "struct" and f.layout.name == "_LIST_ENTRY":
            row.members = len(kids)
            kids.extend(Row.from_spec(row, len(kids) + i, spec)
                        for i, spec in enumerate(self._list_specs(row)))
        return kids

    # ---- Lists

    def _list_specs(self, row: Row) -> list[_Spec]:
        """The rows a _LIST_ENTRY adds below its Flink and Blink: the list's head (for
        an entry) and its entries in Flink order, or why they cannot be listed."""
        obj = self._object
        value = obj.values.get(row.path)
        try:
            if isinstance(value, ListHead):
                return self._known_list(value, is_head=True)
            if isinstance(value, ListLink):
                return self._known_list(value.list, is_head=False)
            return self._walked_list(row)
        except KernelMemoryError as exc:
            return [_Spec(("note",), NOTE, "(list)", "", str(exc), None, str(exc))]

    def _known_list(self, head: ListHead, *, is_head: bool) -> list[_Spec]:
        """A list KOI keeps (ListHead): its entries straight from the list's order."""
        obj = self._object
        space = obj.space
        arch = space.arch
        specs: list[_Spec] = []
        if not is_head:
            owner = head.owner
            address = owner.address_of(head.path)
            where = space.locate(address)
            text = format_address(address, arch) + (f" {where}" if where is not None else "")
            specs.append(_Spec(("head", id(head)), HEAD, "(list head)", "_LIST_ENTRY", text,
                               (owner, head.path),
                               f"The head of the list this entry is on: {where}.\nDouble-click to open it."))
        total = len(head)
        for i, entry in enumerate(head):
            if not entry.placed:
                continue
            is_self = entry is obj
            text = f"{format_address(entry.address, arch)} {describe_object(entry)}"
            if is_self:
                text += " (this object)"
            specs.append(_Spec(("entry", id(entry)), ENTRY, f"[{i}]", entry.type, text, (entry, head.link),
                               f"Entry {i} of {total} on this list, linked through "
                               f"{entry.type}.{head.link}.\nDouble-click to open it.", is_self))
        return specs

    def _walked_list(self, row: Row) -> list[_Spec]:
        """A list KOI does not know the entry type of: Flink by Flink through memory
        (as ``dt -l`` does), each link named by what lies at its address."""
        obj = self._object
        space = obj.space
        arch = space.arch
        node = self._node(row.path)
        head = node.address
        flink = node.find("Flink").value
        if flink in (0, head):
            return []  # not linked (not modelled), or an empty list pointing to itself
        flink_at = space.plan("_LIST_ENTRY").field("Flink").offset
        specs, seen, address = [], set(), flink
        while address != head:
            problem = None
            if address == 0:
                problem = f"the list ends in a NULL Flink after {len(specs)} entries"
            elif address in seen or len(seen) >= LIST_LIMIT:
                problem = f"the list loops without coming back to {format_address(head, arch)}"
            if problem is not None:  # the links found so far stay listed
                specs.append(_Spec(("note",), NOTE, "(list)", "", problem, None, problem))
                break
            seen.add(address)
            where = space.locate(address, process=self._context)
            target = None
            type_text = "?"
            if where is not None and where.object is not None:
                member = where.member if where.member is not None else (where.path or "")
                target, type_text = (where.object, member), where.object.type
            text = format_address(address, arch) + (f" {where}" if where is not None
                                                     else " (nothing simulated here)")
            specs.append(_Spec(("link", address), ENTRY, f"[{len(specs)}]", type_text, text, target,
                               f"Link {len(specs)} of the list, found by following Flink.", False))
            try:
                address = space.read_pointer(address + flink_at, process=self._context)
            except KernelMemoryError as exc:
                specs.append(_Spec(("note",), NOTE, "(list)", "", str(exc), None, str(exc)))
                break
        return specs

    def _sync_list(self, row: Row, now: float) -> list[Row]:
        """Bring a shown list's entry rows up to date by key: remove rows that left,
        insert rows that came, in list order; returns rows whose text changed."""
        specs = self._list_specs(row)
        start = row.members
        kids = row.children
        parent = self.index_of(row)
        wanted = {spec.key for spec in specs}
        # 1. rows whose key left the list, in runs from the end
        i = len(kids) - 1
        while i >= start:
            if kids[i].key in wanted:
                i -= 1
                continue
            j = i
            while j - 1 >= start and kids[j - 1].key not in wanted:
                j -= 1
            self._remove_rows(row, parent, j, i)
            i = j - 1
        # 2. the rest must be in the list's order, else they go too (rare: a re-sort)
        remaining = [r.key for r in kids[start:]]
        present = set(remaining)
        if remaining != [spec.key for spec in specs if spec.key in present]:
            if len(kids) > start:
                self._remove_rows(row, parent, start, len(kids) - 1)
        # 3. merge: keep matching rows (new values), insert runs of new ones
        changed = []
        pos, k = start, 0
        while k < len(specs):
            if pos < len(kids) and kids[pos].key == specs[k].key:
                if kids[pos].apply(specs[k]):
                    changed.append(kids[pos])
                    self._flash(kids[pos], now)
                pos += 1
                k += 1
                continue
            run = []
            while k < len(specs) and not (pos < len(kids) and kids[pos].key == specs[k].key):
                run.append(specs[k])
                k += 1
            self.beginInsertRows(parent, pos, pos + len(run) - 1)
            kids[pos:pos] = [Row.from_spec(row, pos + n, spec) for n, spec in enumerate(run)]
            for n in range(pos + len(run), len(kids)):
                kids[n].row = n
            self.endInsertRows()
            pos += len(run)
        return changed

    def _remove_rows(self, row: Row, parent: QModelIndex, first: int, last: int) -> None:
        kids = row.children
        self.beginRemoveRows(parent, first, last)
        gone = kids[first:last + 1]
        del kids[first:last + 1]
        for n in range(first, len(kids)):
            kids[n].row = n
        self.endRemoveRows()
        for r in gone:
            self._flashing.discard(r)
        self._graveyard.extend(gone)

    # ---- Helpers

    def _flash(self, row: Row, now: float) -> None:
        row.flash_until = now + FLASH_SECONDS
        self._flashing.add(row)

    def _attached(self, row: Row) -> bool:
        """Is `row` still in the tree (not removed by a list update or a reset)?"""
        while row.parent is not None:
            kids = row.parent.children
            if kids is None or row.row >= len(kids) or kids[row.row] is not row:
                return False
            row = row.parent
        return row is self._root

    def _emit_rows(self, parent: Row, rows: list[Row], first_col: int, last_col: int,
                   roles: list | None = None) -> None:
        """One dataChanged for `rows` of one parent, spanning the first to the last
        (rows between that did not change cost a repaint, not a signal each)."""
        numbers = [r.row for r in rows]
        top = self.createIndex(min(numbers), first_col, parent.children[min(numbers)])
        bottom = self.createIndex(max(numbers), last_col, parent.children[max(numbers)])
        self.dataChanged.emit(top, bottom, roles or [])

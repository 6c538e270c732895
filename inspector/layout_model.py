"""A lazy Qt tree model of one structure layout, shown as WinDbg's ``dt -r`` would.

Rows are `LayoutNode` objects created only when a view first asks how many rows a
node has (``rowCount``); ``hasChildren`` answers without creating them, so the
expand arrows show at no cost. Indexes carry the node itself as their internal
pointer; PySide6 does not take a reference for it, so every node stays referenced
from its parent's ``children`` list and the root from the model until the next
reset (a new structure or build is a new document, the only time we reset).
"""

from __future__ import annotations

from functools import lru_cache

from PySide6.QtCore import QAbstractItemModel, QModelIndex, QObject, QPersistentModelIndex, Qt
from PySide6.QtGui import QFont, QFontDatabase, QGuiApplication, QPalette

from core.layouts import Build, Member, StructLayout, TypeRef, catalogue

COLUMNS = ("Offset", "Member", "Type", "Size")
OFFSET, MEMBER, TYPE, SIZE = range(len(COLUMNS))

COLUMN_TIPS = (
    "Offset from the start of the containing structure, as WinDbg's dt -r prints it "
    "(hover a row for the offset from the start of the shown type)",
    "Member name",
    "Type exactly as WinDbg's dt spells it for this build's architecture",
    "Bytes the member occupies",
)

Index = QModelIndex | QPersistentModelIndex


def offset_text(offset: int) -> str:
    """``+0x440``: dt's spelling, at least three hex digits."""
    return f"+0x{offset:03x}"


def dt_line(depth: int, offset: int, name: str, type_text: str) -> str:
    """One line of ``dt -r`` output; `depth` 0 is a member of the shown type."""
    return f"{'   ' * (depth + 1)}{offset_text(offset)} {name:<16} : {type_text}"


def build_title(build: Build) -> str:
    """How a build is named in the UI: ``Windows 10 22H2 — 10.0.19041.3570 x64``."""
    return f"{build.name} — {build.id} {build.arch}"


def _bytes(n: int) -> str:
    return f"{n} byte" if n == 1 else f"{n} bytes"


# -- Where flagged data came from ------------------------------------------------

def _version_key(version: str) -> tuple[int, ...]:
    parts = tuple(int(p) for p in version.split(".") if p.isdigit())
    return (parts + (0, 0, 0, 0))[:4]


def _nearest_builds(build: Build) -> list[Build]:
    """Other builds of the same arch, nearest first, in the order the layout
    importer (packaging/import_layouts.py) searched them when filling types."""
    here = _version_key(build.id)

    def distance(other: Build) -> tuple[int, ...]:
        there = _version_key(other.id)
        return (abs(there[2] - here[2]), -there[2], -there[3])

    return sorted((b for b in catalogue().builds if b is not build and b.arch == build.arch),
                  key=distance)


@lru_cache(maxsize=4096)
def _recorded_in(build_id: str, arch: str, struct: str, member: str, want: str) -> str | None:
    """Title of the nearest build whose own source records `member` of `struct`
    as `want` ("type" spelling or "Pos x, n Bits"), or None."""
    build = catalogue().find(build_id, arch)
    for other in _nearest_builds(build):
        if not other.has_struct(struct):
            continue
        layout = other.struct(struct)
        if not layout.has_member(member):
            continue
        m = layout.member(member)
        if m.flags:
            continue
        if m.spell(arch) == want:
            return build_title(other)
    return None


def flag_explanation(build: Build, owner: StructLayout, m: Member) -> str:
    """Why a flagged member (T/B/U) is shown differently, in words."""
    lines = []
    if "T" in m.flags:
        source = _recorded_in(build.id, build.arch, owner.name, m.name, m.spell(build.arch))
        where = f"from {source}, the nearest build whose source records it" if source \
            else "from the nearest build whose source records it"
        lines.append(f"Type filled in by KOI {where}: this build's source "
                     f"did not record it (pointer target or return type).")
    if "B" in m.flags:
        source = _recorded_in(build.id, build.arch, owner.name, m.name, m.spell(build.arch))
        also = f" {source} records the same position." if source else ""
        lines.append("Bit position inferred: this build's source does not record bit "
                     "positions; it was copied from a reference build where the "
                     "neighbouring member names match." + also)
    if "U" in m.flags:
        lines.append("Bit position not recorded by the source: this member shares its "
                     "offset with an integer field and may be a bitfield of unknown "
                     "position and width.")
    return "\n".join(lines)


# -- Nodes --------------------------------------------------------------------------

class LayoutNode:
    """One row: a member, a nested member, or an element of an array of structures.

    `children` is None until first asked for. `expand` says what the children are:
    ``("struct", StructLayout)``, ``("anonymous", StructLayout, Member)`` (the dotted
    members of a named member of anonymous type) or ``("array", TypeRef, count,
    element size)``; None for a leaf.
    """

    __slots__ = ("parent", "row", "depth", "name", "offset", "absolute", "type_text", "size",
                 "size_text", "member", "owner", "expand", "children")

    def __init__(self, parent: LayoutNode | None, row: int, name: str, offset: int,
                 absolute: int, type_text: str, size: int, size_text: str,
                 member: Member | None, owner: StructLayout | None, expand: tuple | None):
        self.parent = parent
        self.row = row  # kept so parent() is O(1), not list.index()
        self.depth = -1 if parent is None else parent.depth + 1
        self.name = name
        self.offset = offset  # relative to the containing structure, as dt -r shows
        self.absolute = absolute  # from the start of the shown type
        self.type_text = type_text
        self.size = size
        self.size_text = size_text
        self.member = member
        self.owner = owner
        self.expand = expand
        self.children: list[LayoutNode] | None = None

    @property
    def flags(self) -> str:
        return self.member.flags if self.member is not None else ""

    @property
    def path(self) -> tuple[str, ...]:
        """Member names from the shown type down to this row (stable across builds)."""
        names = []
        node: LayoutNode | None = self
        while node is not None and node.parent is not None:
            names.append(node.name)
            node = node.parent
        return tuple(reversed(names))


def _expansion(build: Build, t: TypeRef) -> tuple | None:
    """What a member of type `t` expands into, or None."""
    if t.kind == "struct" and build.has_struct(t.name):
        layout = build.struct(t.name)
        return ("struct", layout) if layout.top_level else None
    if t.kind == "array" and t.count > 0 and _expansion(build, t.target) is not None:
        # Only arrays of structures: [16] UChar as 16 rows would be noise.
        return ("array", t.target, t.count, build.sizeof(t.target))
    return None


def _size_text(build: Build, t: TypeRef, size: int) -> str:
    if t.kind == "array" and build.sizeof(t.target) is not None:
        return f"{size} ({t.count} × {build.sizeof(t.target)})"
    return str(size)


def _member_nodes(build: Build, parent: LayoutNode, owner: StructLayout,
                  members: tuple[Member, ...], base: int, origin: int) -> list[LayoutNode]:
    """Rows for `members` of `owner`; `base` is the owner's absolute offset and
    `origin` the owner-relative offset that displays as +0x000 (a named member
    of anonymous type shows its children relative to itself, as dt -r does)."""
    nodes = []
    for row, m in enumerate(members):
        size = owner.member_size(m)
        if m.type.kind == "anonymous":
            expand = ("anonymous", owner, m) if owner.children(m.name) else None
        elif m.is_bitfield:
            expand = None
        else:
            expand = _expansion(build, m.type)
        nodes.append(LayoutNode(parent, row, m.name.rpartition(".")[2], m.offset - origin,
                                base + m.offset, m.spell(build.arch), size,
                                _size_text(build, m.type, size), m, owner, expand))
    return nodes


def _children(build: Build, node: LayoutNode) -> list[LayoutNode]:
    kind = node.expand[0]
    if kind == "struct":
        layout = node.expand[1]
        return _member_nodes(build, node, layout, layout.top_level, node.absolute, 0)
    if kind == "anonymous":
        _, owner, m = node.expand
        owner_base = node.absolute - m.offset
        return _member_nodes(build, node, owner, owner.children(m.name), owner_base, m.offset)
    _, element, count, size = node.expand
    expand = _expansion(build, element)
    text = element.spell(build.arch)
    return [LayoutNode(node, i, f"[{i}]", i * size, node.absolute + i * size, text, size,
                       str(size), None, None, expand)
            for i in range(count)]


# -- The model --------------------------------------------------------------------

class StructTreeModel(QAbstractItemModel):
    """What the layout and the object trees share: four columns with tooltips, and
    rows that know their ``parent`` and ``row`` and whose children a subclass makes on
    first use (``_children_of``); ``_root`` is the invisible root."""

    columns: tuple[str, ...] = ()
    column_tips: tuple[str, ...] = ()
    _root: object

    def _row_at(self, index: Index):
        return index.internalPointer() if index.isValid() else self._root

    def columnCount(self, parent: Index = QModelIndex()) -> int:
        return len(self.columns)

    def rowCount(self, parent: Index = QModelIndex()) -> int:
        if parent.column() > 0:
            return 0
        return len(self._children_of(self._row_at(parent)))

    def index(self, row: int, column: int, parent: Index = QModelIndex()) -> QModelIndex:
        if not self.hasIndex(row, column, parent):
            return QModelIndex()
        return self.createIndex(row, column, self._children_of(self._row_at(parent))[row])

    def parent(self, index: Index | None = None):  # noqa: D102 - Qt overload
        if index is None:  # QObject.parent()
            return super().parent()
        if not index.isValid():
            return QModelIndex()
        parent = index.internalPointer().parent
        if parent is None or parent.parent is None:
            return QModelIndex()
        return self.createIndex(parent.row, 0, parent)

    def headerData(self, section: int, orientation: Qt.Orientation,
                   role: int = Qt.ItemDataRole.DisplayRole):
        if orientation != Qt.Orientation.Horizontal or not 0 <= section < len(self.columns):
            return None
        if role == Qt.ItemDataRole.DisplayRole:
            return self.columns[section]
        if role == Qt.ItemDataRole.ToolTipRole:
            return self.column_tips[section]
        return None


class LayoutTreeModel(StructTreeModel):
    """The members of one structure of one build, nested as ``dt -r`` nests them."""

    columns, column_tips = COLUMNS, COLUMN_TIPS

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._build: Build | None = None
        self._layout: StructLayout | None = None
        self._root = self._empty_root()
        self._mono = QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont)
        self._mono_italic = QFont(self._mono)
        self._mono_italic.setItalic(True)
        self._italic = QFont()
        self._italic.setItalic(True)

    @staticmethod
    def _empty_root() -> LayoutNode:
        root = LayoutNode(None, 0, "", 0, 0, "", 0, "", None, None, None)
        root.children = []
        return root

    # ---- Public API

    @property
    def build(self) -> Build | None:
        return self._build

    @property
    def layout(self) -> StructLayout | None:
        """The shown structure, or None when nothing is shown."""
        return self._layout

    def set_layout(self, build: Build, type_name: str) -> None:
        """Show `type_name` of `build` (a new document: the model is reset).

        Raises core.layouts.LayoutError when the build has no such type.
        """
        layout = build.struct(type_name)
        root = self._empty_root()
        root.expand = ("struct", layout)
        root.children = _member_nodes(build, root, layout, layout.top_level, 0, 0)
        old = self._root  # keep the old nodes alive until views have let go of them
        self.beginResetModel()
        self._build, self._layout, self._root = build, layout, root
        self.endResetModel()
        del old

    def clear(self) -> None:
        """Show nothing (the selected type does not exist in the selected build)."""
        old = self._root
        self.beginResetModel()
        self._layout = None
        self._root = self._empty_root()
        self.endResetModel()
        del old

    def node(self, index: Index) -> LayoutNode:
        """The node behind `index` (the invisible root for an invalid index)."""
        return self._row_at(index)

    def index_of(self, node: LayoutNode, column: int = 0) -> QModelIndex:
        if node.parent is None:
            return QModelIndex()
        return self.createIndex(node.row, column, node)

    def index_for_path(self, path: tuple[str, ...]) -> QModelIndex:
        """The row reached by following member names (creating rows on the way), or
        an invalid index when this layout has no such path."""
        node = self._root
        for name in path:
            node = next((c for c in self._children_of(node) if c.name == name), None)
            if node is None:
                return QModelIndex()
        return self.index_of(node)

    def dt_text(self, index: Index) -> str:
        """The ``dt -r`` line of one row."""
        node = self.node(index)
        return dt_line(node.depth, node.offset, node.name, node.type_text)

    def row_count_below(self, index: Index = QModelIndex()) -> int:
        """Rows below `index` when every level is expanded (creates them all)."""
        pending, count = [self.node(index)], 0
        while pending:
            children = self._children_of(pending.pop())
            count += len(children)
            pending.extend(children)
        return count

    # ---- Reimplemented Qt functions

    def hasChildren(self, parent: Index = QModelIndex()) -> bool:
        if parent.column() > 0:
            return False
        node = self.node(parent)
        if node.children is None:
            return node.expand is not None  # answered without creating the rows
        return len(node.children) > 0

    def flags(self, index: Index) -> Qt.ItemFlag:
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        flags = Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable
        if index.internalPointer().expand is None:
            flags |= Qt.ItemFlag.ItemNeverHasChildren
        return flags

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        node: LayoutNode = index.internalPointer()
        column = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            if column == OFFSET:
                return offset_text(node.offset)
            if column == MEMBER:
                return node.name
            if column == TYPE:
                return node.type_text
            return node.size_text
        if role == Qt.ItemDataRole.FontRole:
            flagged = bool(node.flags)
            if column == MEMBER:
                return self._italic if flagged else None
            return self._mono_italic if flagged else self._mono
        if role == Qt.ItemDataRole.ForegroundRole:
            if node.flags:
                return QGuiApplication.palette().color(QPalette.ColorRole.PlaceholderText)
            return None
        if role == Qt.ItemDataRole.ToolTipRole:
            return self._tooltip(node, column)
        return None

    # ---- Non-Qt helpers

    def _children_of(self, node: LayoutNode) -> list[LayoutNode]:
        """The rows below `node`, created on first use. A layout never changes,
        so rows that appear this way were there all along as far as views are
        concerned: no insert signals are due."""
        if node.children is None:
            node.children = _children(self._build, node) if node.expand is not None else []
        return node.children

    def _tooltip(self, node: LayoutNode, column: int) -> str:
        root = self._layout.name if self._layout is not None else ""
        parent = node.parent
        container = f"{parent.name} ({parent.type_text})" if parent.parent is not None else root
        if column == OFFSET:
            tip = f"{offset_text(node.offset)} into {container}"
            if node.depth > 0:
                tip += f"\n{offset_text(node.absolute)} from the start of {root}"
        elif column == MEMBER:
            tip = ".".join(node.path)
        elif column == TYPE:
            tip = node.type_text
            m = node.member
            if m is not None and m.is_bitfield:
                mask = ((1 << m.bit_length) - 1) << m.bit_position
                tip = (f"Bitfield in a {m.type.spell(self._build.arch)}: bit {m.bit_position}, "
                       f"{m.bit_length} bit{'s' if m.bit_length != 1 else ''} wide, "
                       f"mask 0x{mask:0{node.size * 2}x}")
            elif node.expand is not None and node.expand[0] == "anonymous":
                tip = "Anonymous structure or union: expand to see its members"
        else:
            tip = f"{_bytes(node.size)} (0x{node.size:x})"
            m = node.member
            if m is not None and m.type.kind == "array" and self._build.sizeof(m.type.target):
                tip = (f"{m.type.count} elements × {_bytes(self._build.sizeof(m.type.target))} "
                       f"= {tip}")
            elif m is not None and self._build.sizeof(m.type) is None:
                tip += "\nSize not recorded: the room up to the next member"
        if node.flags:
            tip += "\n\n" + flag_explanation(self._build, node.owner, node.member)
        return tip

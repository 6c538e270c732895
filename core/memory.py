"""Simulated kernel memory: typed objects laid out byte for byte as a Windows build does.

An object is *semantic*: a structure type and a dict of member paths -> values
(core/values.py). Bytes are made from the values by the chosen build's layout only
when someone looks (hex view, structure tree, list walk) and are cached until the
values change, so a simulation may change ``_KTHREAD.State`` as often as it likes.
Switching the build re-lays out every object; values stay, pointers follow their
targets' new addresses.

    >>> from core.layouts import catalogue
    >>> space = AddressSpace(catalogue().find("10.0.19041.3570", "x64"))
    >>> head = space.create_global("PsActiveProcessHead", "_LIST_ENTRY")
    >>> processes = space.new_list(head, "", "_EPROCESS", "ActiveProcessLinks")
    >>> system = space.create("_EPROCESS", {"UniqueProcessId": 4, "ImageFileName": b"System"}, label="System")
    >>> processes.append(system)
    >>> [e.object.label for e in space.walk_list(head.address, "_EPROCESS", "ActiveProcessLinks")]
    ['System']
    >>> system.field("UniqueProcessId").value
    4
"""

from __future__ import annotations

import bisect
import re
import struct
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from types import MappingProxyType
from typing import Any, Callable, Iterator, Mapping, NamedTuple, Sequence

from core.layouts import (BASE_SIZES, SIGNED_BASES, Build, LayoutError, Member, StructLayout,
                          TypeRef, catalogue)
from core.values import (KOBJECTS, TICK_100NS, TIME_MEMBERS, FastRef, FastRefValue, ListLink, Ref,
                         UnicodeString, enum_of, enum_value, format_address, format_duration,
                         format_filetime, from_100ns, from_filetime, to_100ns, to_filetime)

__all__ = [
    "AddressSpace", "KObject", "ListHead", "Node", "Location", "Extent", "ListEntry", "FieldRef", "Plan",
    "KernelMemoryError", "UnmappedError", "PathError", "BadValueError",
    "resolve", "iter_fields", "USER_TYPES",
]

PAGE = 0x1000
USER_TYPES = frozenset({"_PEB", "_TEB", "_PEB32", "_TEB32"})  # live in a process's user space


# --- errors --------------------------------------------------------------------

class KernelMemoryError(Exception):
    """Anything KOI's simulated memory refuses; the message is one line for a user."""


class UnmappedError(KernelMemoryError):
    """A read touched an address where nothing is mapped (WinDbg: memory access error)."""

    def __init__(self, address: int, message: str | None = None) -> None:
        self.address = address
        super().__init__(message or f"memory at 0x{address:x} is not mapped")


class PathError(KernelMemoryError):
    """A member path that names nothing in the type."""


class BadValueError(KernelMemoryError):
    """A value that cannot be written into the member it was given for."""


# --- fields: member paths resolved against one build's layout ------------------------

@dataclass(frozen=True, slots=True, eq=False)
class FieldRef:
    """Where a member path lies in an object of one build, and how to read it.

    kind: ``struct`` (a type with a layout), ``anonymous`` (an unnamed struct/union),
    ``array``, ``pointer``, ``int``, ``float``, ``bits``, ``opaque`` (a type the
    build has no layout for: raw bytes only) or ``uncertain`` (a bitfield whose
    position the build's source did not record: never written).
    """

    path: str
    name: str
    offset: int       # from the start of the object
    size: int
    kind: str
    type: TypeRef
    struct: str       # the structure that declares the member ("" for the object itself)
    member: Member | None
    base: str         # path of the structure instance that declares the member
    origin: int       # offset of that instance
    layout: StructLayout | None  # for "struct": the member type's layout; "anonymous": the declaring one
    signed: bool = False

    @property
    def bit_position(self) -> int | None:
        return self.member.bit_position if self.kind == "bits" else None

    @property
    def bit_length(self) -> int | None:
        return self.member.bit_length if self.kind == "bits" else None


_PIECE = re.compile(r"([A-Za-z_$][A-Za-z0-9_$]*)((?:\[\d+\])*)")
_INDEX = re.compile(r"\[(\d+)\]")


def _split(path: str) -> list[tuple[str, list[int]]]:
    pieces = []
    for part in path.split("."):
        m = _PIECE.fullmatch(part)
        if m is None:
            raise PathError(f"bad member path {path!r} (expected names like Pcb.Header.Type or Member[3])")
        pieces.append((m.group(1), [int(i) for i in _INDEX.findall(m.group(2))]))
    return pieces


def _join(base: str, name: str) -> str:
    if not base:
        return name
    return base + name if name.startswith("[") else f"{base}.{name}"


@cache
def _bitfields_anywhere(struct_name: str) -> frozenset[str]:
    """Names of `struct_name` that some shipped build records as bitfields."""
    names = set()
    for b in catalogue().builds:
        if b.has_struct(struct_name):
            names.update(m.name for m in b.struct(struct_name).members
                         if m.is_bitfield and "U" not in m.flags)
    return frozenset(names)


class Plan:
    """One structure type of one build: member paths resolved once and cached."""

    def __init__(self, build: Build, type_name: str) -> None:
        self.build = build
        self.layout = build.struct(type_name)
        self.size = self.layout.size
        root = FieldRef("", self.layout.name, 0, self.size, "struct", TypeRef("struct", self.layout.name),
                        "", None, "", 0, self.layout)
        self.root = root
        self._fields: dict[str, FieldRef | None] = {"": root}
        self._children: dict[str, tuple[FieldRef, ...]] = {}
        self._dispatchers: tuple[str, ...] | None = None

    # resolution
    def field(self, path: str) -> FieldRef:
        f = self._fields.get(path)
        if f is None:
            f = self._resolve(path)
            self._fields[path] = f
        return f

    def try_field(self, path: str) -> FieldRef | None:
        """The field, or None when the path names nothing in this build (bad syntax still raises)."""
        try:
            return self._fields[path] or None
        except KeyError:
            pass
        try:
            f = self._resolve(path)
        except PathError:
            _split(path)  # re-raises on bad syntax
            f = None
        self._fields[path] = f
        return f

    def _resolve(self, path: str) -> FieldRef:
        pieces = _split(path)
        layout, origin, base = self.layout, 0, ""
        f: FieldRef = self.root
        i = 0
        while i < len(pieces):
            for j in range(len(pieces), i, -1):
                if j - 1 > i and any(pieces[k][1] for k in range(i, j - 1)):
                    continue
                name = ".".join(p[0] for p in pieces[i:j])
                if layout.has_member(name):
                    break
            else:
                raise PathError(f"{layout.name} has no member {pieces[i][0]} in build {self.build.label}"
                                + (f" (path {path})" if path != pieces[i][0] else ""))
            f = self._member(layout, layout.member(name), origin, base)
            for index in pieces[j - 1][1]:
                if f.kind != "array":
                    raise PathError(f"{f.path} is not an array (path {path})")
                f = self.element(f, index)
            i = j
            if i < len(pieces):
                if f.kind != "struct":
                    raise PathError(f"{f.path} is {self._spell(f)}; it has no member {pieces[i][0]}"
                                    f" in build {self.build.label}")
                layout, origin, base = f.layout, f.offset, f.path
        return f

    def _spell(self, f: FieldRef) -> str:
        return f.member.spell(self.build.arch) if f.member and f.kind == "bits" else f.type.spell(self.build.arch)

    def _member(self, layout: StructLayout, m: Member, origin: int, base: str) -> FieldRef:
        path = _join(base, m.name)
        cached = self._fields.get(path)
        if cached is not None:
            return cached
        t = m.type
        sub = None
        signed = False
        if m.is_bitfield:
            kind = "bits"
            size = BASE_SIZES.get(t.name) or layout.member_size(m)
        elif t.kind == "anonymous":
            kind, sub = "anonymous", layout
            size = self._extent(layout, m)
        else:
            kind, sub, signed = self._kind(t)
            size = layout.member_size(m)
            if kind == "int" and "U" in m.flags and m.name in _bitfields_anywhere(layout.name):
                kind = "uncertain"
        short = m.name.rpartition(".")[2]
        f = FieldRef(path, short, origin + m.offset, size, kind, t, layout.name, m, base, origin, sub, signed)
        self._fields[path] = f
        return f

    def _kind(self, t: TypeRef) -> tuple[str, StructLayout | None, bool]:
        if t.kind == "base":
            if t.name in ("Float", "Double"):
                return "float", None, False
            if t.name in BASE_SIZES:
                return "int", None, t.name in SIGNED_BASES
            return "opaque", None, False
        if t.kind == "pointer":
            return "pointer", None, False
        if t.kind == "array":
            return "array", None, False
        if t.kind == "struct" and self.build.has_struct(t.name):
            return "struct", self.build.struct(t.name), False
        return "opaque", None, False

    def _extent(self, layout: StructLayout, m: Member) -> int:
        # Bytes an anonymous member spans: up to the end of its furthest descendant.
        prefix = m.name + "."
        ends = [d.offset + (BASE_SIZES.get(d.type.name, 0) if d.is_bitfield else layout.member_size(d))
                for d in layout.members if d.name.startswith(prefix) and d.type.kind != "anonymous"]
        return (max(ends) - m.offset) if ends else layout.member_size(m)

    def element(self, f: FieldRef, index: int) -> FieldRef:
        """Element `index` of array field `f`."""
        path = f"{f.path}[{index}]"
        cached = self._fields.get(path)
        if cached is not None:
            return cached
        count = f.type.count
        if not 0 <= index < count:
            raise PathError(f"{f.path} has {count} elements; no element [{index}]")
        et = f.type.target
        esize = self.build.sizeof(et) or (f.size // count)
        kind, sub, signed = self._kind(et)
        e = FieldRef(path, f"[{index}]", f.offset + index * esize, esize, kind, et, f.struct, f.member,
                     f.base, f.origin, sub, signed)
        self._fields[path] = e
        return e

    def children(self, f: FieldRef) -> tuple[FieldRef, ...]:
        """Direct members of a struct/anonymous field (as ``dt`` lists them), or array elements."""
        kids = self._children.get(f.path)
        if kids is None:
            mine = self._fields.get(f.path) or (self.try_field(f.path) if f.path else None)
            if mine is not f and (mine is None or mine.offset != f.offset
                                  or mine.layout is not f.layout):
                # a field of another build's plan would cache its offsets here
                raise PathError(f"{f.path or f.name}: a field of another build's plan")
            if f.kind == "struct":
                kids = tuple(self._member(f.layout, m, f.offset, f.path) for m in f.layout.top_level)
            elif f.kind == "anonymous":
                kids = tuple(self._member(f.layout, m, f.origin, f.base) for m in f.layout.children(f.member.name))
            elif f.kind == "array":
                kids = tuple(self.element(f, i) for i in range(f.type.count))
            else:
                kids = ()
            self._children[f.path] = kids
        return kids

    def dispatcher_headers(self) -> tuple[str, ...]:
        """Paths of every embedded _DISPATCHER_HEADER (they get an empty wait list)."""
        if self._dispatchers is None:
            found: list[str] = []

            def visit(f: FieldRef, depth: int) -> None:
                if f.layout.name == "_DISPATCHER_HEADER":
                    found.append(f.path)
                    return
                if depth < 6:
                    for c in self.children(f):
                        if c.kind == "struct":
                            visit(c, depth + 1)
            visit(self.root, 0)
            self._dispatchers = tuple(found)
        return self._dispatchers

    def chain_at(self, offset: int, mask: bytes | None = None) -> list[FieldRef]:
        """The members containing byte `offset`, outermost first. Where a union has
        several, one with a value is preferred, else the first in ``dt`` order."""
        chain: list[FieldRef] = []
        f = self.root
        while True:
            if f.kind == "array":
                if not f.type.count or f.size == 0:
                    break
                esize = f.size // f.type.count
                index = (offset - f.offset) // esize
                if not 0 <= index < f.type.count:
                    break
                pick = self.element(f, index)
            elif f.kind in ("struct", "anonymous"):
                cands = [c for c in self.children(f) if c.kind not in ("bits", "uncertain")
                         and c.offset <= offset < c.offset + c.size]
                if not cands:
                    break
                pick = cands[0]
                if mask is not None and len(cands) > 1:
                    # a member its value wholly wrote, else one partly written, else the first
                    zeros = [mask.count(0, c.offset, c.offset + c.size) for c in cands]
                    pick = next((c for c, z in zip(cands, zeros) if z == 0),
                                next((c for c, z in zip(cands, zeros) if z != c.size), pick))
            else:
                break
            chain.append(pick)
            f = pick
        return chain


_plans: dict[tuple[Build, str], Plan] = {}


def _plan(build: Build, type_name: str) -> Plan:
    key = (build, type_name)
    plan = _plans.get(key)
    if plan is None:
        try:
            plan = Plan(build, type_name)
        except LayoutError as exc:
            raise PathError(str(exc)) from None
        _plans[key] = _plans[(build, plan.layout.name)] = plan
    return plan


def resolve(build: Build, type_name: str, path: str) -> FieldRef:
    """Where member `path` of `type_name` lies in `build` (PathError when it does not)."""
    return _plan(build, type_name).field(path)


def iter_fields(build: Build, type_name: str, *, arrays: bool = False) -> Iterator[FieldRef]:
    """Every member of `type_name` in `build`, depth first through nested structures
    (and through array elements when `arrays`)."""
    plan = _plan(build, type_name)
    stack = list(reversed(plan.children(plan.root)))
    while stack:
        f = stack.pop()
        yield f
        if f.kind in ("struct", "anonymous") or (arrays and f.kind == "array"):
            stack.extend(reversed(plan.children(f)))


@cache
def _known_anywhere(type_name: str, path: str) -> bool:
    """Whether some shipped build has member `path` in `type_name` (so a value for it
    is kept, and reported absent, in builds that lack it)."""
    for b in catalogue().builds:
        if b.has_struct(type_name) and _plan(b, type_name).try_field(path) is not None:
            return True
    return False


# --- allocations and address ranges -------------------------------------------------

def _round(value: int, align: int) -> int:
    return (value + align - 1) // align * align


class Allocation:
    """One placed block: a body at `address` with unmodelled headers right before it."""

    __slots__ = ("seq", "kind", "owner", "size", "headers", "address", "slot", "path", "chunk")

    def __init__(self, seq: int, kind: str, owner: Any, size: int = 0, slot: int = 0, path: str = "") -> None:
        self.seq, self.kind, self.owner, self.size, self.slot, self.path = seq, kind, owner, size, slot, path
        self.headers: tuple[tuple[str, int], ...] = ()
        self.address: int | None = None
        self.chunk = 0  # headers + body, rounded to the arena's alignment

    @property
    def start(self) -> int:
        return self.address - sum(size for _, size in self.headers)


class _Arena:
    """A range of addresses where blocks are placed in order (a bump allocator, so the
    same sequence of allocations always gets the same addresses)."""

    def __init__(self, base: int, limit: int, align: int) -> None:
        self.base, self.limit, self.align = base, limit, align
        self.next = base
        self.allocs: list[Allocation] = []
        self.starts: list[int] = []
        self.pages: dict[int, int] = {}

    def contains(self, address: int) -> bool:
        return self.base <= address < self.limit

    def place(self, a: Allocation, at: int | None = None) -> None:
        header = sum(size for _, size in a.headers)
        chunk = _round(header + a.size, self.align)
        if at is None:
            start = _round(self.next, self.align)
            # Small pool blocks never straddle a page; big ones start on one.
            if chunk > PAGE or start // PAGE != (start + chunk - 1) // PAGE:
                start = _round(start, PAGE)
            self.next = start + chunk
        else:
            start = at - header
        if start + chunk > self.limit:
            raise KernelMemoryError("the simulated address range is full")
        a.address = start + header
        a.chunk = chunk
        i = bisect.bisect_left(self.starts, start)
        self.starts.insert(i, start)
        self.allocs.insert(i, a)
        for page in range(start // PAGE, (start + max(chunk, 1) - 1) // PAGE + 1):
            self.pages[page] = self.pages.get(page, 0) + 1

    def remove(self, a: Allocation) -> None:
        start = a.start
        i = bisect.bisect_left(self.starts, start)
        while self.allocs[i] is not a:
            i += 1
        del self.starts[i], self.allocs[i]
        for page in range(start // PAGE, (start + max(a.chunk, 1) - 1) // PAGE + 1):
            left = self.pages[page] - 1
            if left:
                self.pages[page] = left
            else:
                del self.pages[page]
        a.address = None

    def find(self, address: int) -> Allocation | None:
        # Blocks never overlap, so only the last one starting at or below can hold it.
        i = bisect.bisect_right(self.starts, address) - 1
        if i < 0:
            return None
        a = self.allocs[i]
        return a if address < a.address + a.size else None

    def overlapping(self, start: int, end: int) -> Iterator[Allocation]:
        i = max(bisect.bisect_right(self.starts, start) - 1, 0)
        for a in self.allocs[i:]:
            if a.start >= end:
                break
            if a.address + a.size > start:
                yield a

    def mapped(self, address: int) -> bool:
        return (address // PAGE) in self.pages


def _mix(n: int) -> int:
    """splitmix64: deterministic scatter for per-process user addresses."""
    z = (n * 0x9E3779B97F4A7C15 + 0x632BE59BD9B4E019) & 0xFFFFFFFFFFFFFFFF
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
    return z ^ (z >> 31)


def _version(build: Build) -> tuple[int, int]:
    major, minor = build.id.split(".")[:2]
    return int(major), int(minor)


class _Kernel:
    """Where a build puts kernel pool and the kernel image's data, and the header sizes."""

    def __init__(self, build: Build) -> None:
        old = _version(build) < (6, 2)
        if build.arch == "x64":
            self.pool_header, self.object_header, self.align = 0x10, 0x30, 0x10
            if old:  # Vista/7: nonpaged pool in the fffffa80 range
                pool, image = 0xFFFFFA80_01A00000, 0xFFFFF800_02C40000
            elif _version(build) < (10, 0):  # 8/8.1
                pool, image = 0xFFFFE000_01A00000, 0xFFFFF801_2C860000
            else:  # 10/11: randomised regions, such as these
                pool, image = 0xFFFFB80C_4F200000, 0xFFFFF803_1EC00000
            self.pool = _Arena(pool, pool + 0x40_0000_0000, self.align)
            self.image = _Arena(image, image + 0x0100_0000, 0x10)
            self.user_limit = 0x0000_8000_0000_0000
            self.kernel_base = 0xFFFF_8000_0000_0000
        else:
            self.pool_header, self.object_header, self.align = 0x8, 0x18, 0x8
            pool, image = (0x89A00000, 0x80550000) if _version(build) < (6, 0) else (0x84A00000, 0x82980000)
            self.pool = _Arena(pool, 0xFFBF0000, self.align)
            self.image = _Arena(image, image + 0x0100_0000, 0x8)
            self.user_limit = self.kernel_base = 0x8000_0000


class _User:
    """One process's user address space: PEB, TEBs on the pages Windows uses, and a heap."""

    def __init__(self, build: Build, index: int) -> None:
        self.index = index
        h = _mix(index)
        teb = build.struct("_TEB").size if build.has_struct("_TEB") else PAGE
        self.teb_stride = _round(teb, PAGE)
        if build.arch == "x64":
            self.peb = ((0x10 + (h >> 56) % 0xE0) << 32) | (((h >> 8) & 0xEFFFF) << 12)
            self.teb_base, self.teb_step = self.peb + PAGE, self.teb_stride
            heap = 0x0000_0100_0000_0000 | (((h >> 20) & 0xFFFFFF) << 16)
            self.heap_header, align, limit = 0x10, 0x10, 0x0000_7FFF_FFFF_0000
        else:  # PEB at 0x7ffdX000, TEBs on the pages below it
            self.peb = 0x7FFD0000 + (1 + h % 15) * PAGE
            self.teb_base, self.teb_step = self.peb - PAGE, -PAGE
            heap = 0x00140000 + (h % 16) * 0x10000
            self.heap_header, align, limit = 0x8, 0x8, 0x7FFE0000
        self.arena = _Arena(0, limit, align)
        self.arena.next = heap

    def teb_address(self, slot: int) -> int:
        return self.teb_base + slot * self.teb_step


# --- objects -----------------------------------------------------------------------

class KObject:
    """One structure instance in the simulated memory: a type name and member values.

    Values are semantic (see core/values.py) and build independent; `bytes()` and
    `decode()` lay them out by the space's current build. `provider`, when given, is
    called at materialisation and returns values that override the stored ones: a
    simulation can serve fast-changing members without calling `set` at all.
    """

    __slots__ = ("space", "type", "label", "process", "provider", "_values", "_alloc", "_img",
                 "_version", "__weakref__")

    def __init__(self, space: AddressSpace, type_name: str, label: str | None,
                 process: KObject | None, provider: Callable[[], Mapping[str, Any]] | None) -> None:
        self.space = space
        self.type = type_name
        self.label = label
        self.process = process
        self.provider = provider
        self._values: dict[str, Any] = {}
        self._alloc: Allocation | None = None
        self._img: _Image | None = None
        self._version = 0

    def __repr__(self) -> str:
        where = format_address(self._alloc.address, self.space.arch) if self.placed else "unplaced"
        name = f" {self.label}" if self.label else ""
        return f"<{self.type}{name} at {where}>"

    # where it is
    @property
    def placed(self) -> bool:
        return self._alloc is not None and self._alloc.address is not None

    @property
    def address(self) -> int:
        """Address of the structure (after its unmodelled headers)."""
        if not self.placed:
            raise KernelMemoryError(f"{self.type} {self.label or ''} has no address in build "
                                    f"{self.space.build.label}".replace("  ", " "))
        return self._alloc.address

    @property
    def size(self) -> int:
        return self.space.plan(self.type).size

    @property
    def layout(self) -> StructLayout:
        return self.space.plan(self.type).layout

    @property
    def version(self) -> int:
        """Bumped whenever its bytes may have changed (not for provider values)."""
        return self._version

    def address_of(self, path: str) -> int:
        return self.address + self.space.plan(self.type).field(path).offset

    # values
    @property
    def values(self) -> Mapping[str, Any]:
        """The stored values, path -> value (read only: use `set`)."""
        return MappingProxyType(self._values)

    def get(self, path: str, default: Any = None) -> Any:
        return self._values.get(path, default)

    def set(self, path: str, value: Any) -> None:
        """Give member `path` a value; a dict value sets sub-members (``{"Type": 3}``).

        Raises PathError for a path no shipped build has, BadValueError for a value
        that cannot be written into the member in the current build. A path the
        current build lacks (but others have) is kept and reported by `absent()`.
        """
        if isinstance(value, Mapping):
            for key, sub in value.items():
                self.set(_join(path, key), sub)
            return
        if isinstance(value, (ListLink, ListHead)):
            raise BadValueError(f"{path}: list links are made by ListHead.append/remove, not set")
        if self._alloc is None:
            raise KernelMemoryError(f"{self.type} {self.label or ''} was freed".replace("  ", " "))
        plan = self.space.plan(self.type)
        f = plan.try_field(path)
        if f is None:
            if not _known_anywhere(self.type, path):
                raise PathError(f"{self.type} has no member {path} in any shipped build")
        else:
            if isinstance(value, str) and f.kind == "struct" and f.layout.name == "_UNICODE_STRING":
                value = UnicodeString(value)
            self.space._check(self, f, value)
        old = self._values.get(path)
        if isinstance(value, UnicodeString):
            value = self.space._bind_string(self, path, value, old)
        elif isinstance(old, UnicodeString):
            self.space._free_string(old)
        self._values[path] = value
        self._changed()

    __setitem__ = set

    def __getitem__(self, path: str) -> Any:
        try:
            return self._values[path]
        except KeyError:
            raise PathError(f"{self.type} {self.label or ''}: no value for {path}") from None

    def update(self, values: Mapping[str, Any]) -> None:
        for path, value in values.items():
            self.set(path, value)

    def unset(self, path: str) -> None:
        """Forget a value: the member reads as not modelled again."""
        old = self._values.pop(path, None)
        if isinstance(old, (ListLink, ListHead)):
            self._values[path] = old
            raise BadValueError(f"{path}: use the list's remove() to unlink")
        if isinstance(old, UnicodeString):
            self.space._free_string(old)
        self._changed()

    def touch(self) -> None:
        """Say that provider values changed, so cached bytes are made again."""
        self._changed()

    def _changed(self) -> None:
        self._version += 1

    # bytes and trees
    def bytes(self) -> bytes:
        """The structure's bytes in the current build."""
        return self._image().data

    def decode(self) -> Node:
        """The structure as a field tree (children built when asked)."""
        return Node(self._image(), self.space.plan(self.type).root)

    def field(self, path: str) -> Node:
        """The decoded node of member `path`."""
        img = self._image()
        return Node(img, img.plan.field(path))

    def absent(self) -> list[str]:
        """Paths that have a value but no member in the current build."""
        plan = self.space.plan(self.type)
        return [p for p in self._values if plan.try_field(p) is None]

    def problems(self) -> list[str]:
        """What could not be written as given in the current build (absent members,
        truncated values, unknown bit positions, pointers to freed objects)."""
        return list(self._image().problems)

    def _image(self) -> _Image:
        space = self.space
        img = self._img
        if self.provider is None:
            if img is not None and img.epoch == space._epoch and img.version == self._version:
                return img
            values = self._values
            snapshot = None
        else:
            values = dict(self._values)
            values.update(self.provider())
            if (img is not None and img.epoch == space._epoch and img.version == self._version
                    and img.snapshot == values):
                return img
            snapshot = values
        img = space._materialize(self, values)
        img.snapshot = snapshot
        self._img = img
        return img


class ListHead:
    """A circular doubly linked list as NT keeps them: a head ``_LIST_ENTRY`` (member
    `path` of `owner`, "" when the owner is a bare _LIST_ENTRY such as
    nt!PsActiveProcessHead) and entries linked through their member `link`.

    Flink/Blink are written from list order when bytes are made; an empty list
    points to itself.
    """

    def __init__(self, owner: KObject, path: str, entry_type: str, link: str) -> None:
        self.owner, self.path, self.entry_type, self.link = owner, path, entry_type, link
        self._next: dict[Any, Any] = {self: self}
        self._prev: dict[Any, Any] = {self: self}

    def __repr__(self) -> str:
        return f"<ListHead {self.owner.type}{'.' + self.path if self.path else ''} of {len(self)} {self.entry_type}>"

    def __len__(self) -> int:
        return len(self._next) - 1

    def __contains__(self, obj: object) -> bool:
        return obj is not self and obj in self._next

    def __iter__(self) -> Iterator[KObject]:
        node = self._next[self]
        while node is not self:
            yield node
            node = self._next[node]

    def append(self, obj: KObject) -> None:
        """InsertTailList."""
        self._insert(obj, self._prev[self], self)

    def prepend(self, obj: KObject) -> None:
        """InsertHeadList."""
        self._insert(obj, self, self._next[self])

    def remove(self, obj: KObject) -> None:
        """RemoveEntryList; the entry's link reads as not modelled afterwards."""
        if obj not in self:
            raise KernelMemoryError(f"{obj!r} is not in {self!r}")
        prev, nxt = self._prev.pop(obj), self._next.pop(obj)
        self._next[prev], self._prev[nxt] = nxt, prev
        obj._values.pop(self.link, None)
        for o in (obj, prev, nxt):
            self._touch(o)

    def _insert(self, obj: KObject, prev: Any, nxt: Any) -> None:
        if obj.space is not self.owner.space:
            raise KernelMemoryError("an object can only be linked into lists of its own address space")
        if obj in self:
            raise KernelMemoryError(f"{obj!r} is already in {self!r}")
        if obj.type != self.entry_type:
            raise BadValueError(f"{self!r} links {self.entry_type} entries, not {obj.type}")
        current = obj._values.get(self.link)
        if isinstance(current, ListLink):
            raise KernelMemoryError(f"{obj!r}: {self.link} is already linked into another list")
        self._next[prev] = self._prev[nxt] = obj
        self._prev[obj], self._next[obj] = prev, nxt
        obj._values[self.link] = ListLink(self)
        for o in (obj, prev, nxt):
            self._touch(o)

    def _touch(self, node: Any) -> None:
        (self.owner if node is self else node)._changed()

    def _clear(self) -> None:
        for obj in list(self):
            obj._values.pop(self.link, None)
            obj._changed()
        self._next = {self: self}
        self._prev = {self: self}


# --- materialisation -------------------------------------------------------------------

class _Image:
    """One materialisation of an object: its bytes, which bits were written, and notes."""

    __slots__ = ("obj", "plan", "space", "address", "data", "mask", "problems", "epoch", "version",
                 "snapshot", "process")

    def __init__(self, obj: KObject, plan: Plan, data: bytes, mask: bytes, problems: list[str]) -> None:
        self.obj, self.plan, self.space = obj, plan, obj.space
        self.address = obj._alloc.address
        self.data, self.mask, self.problems = data, mask, problems
        self.epoch, self.version = obj.space._epoch, obj._version
        self.snapshot = None
        self.process = obj.process


_FLOATS = {"Float": "<f", "Double": "<d"}


class _Writer:
    """Writes semantic values into an object's bytes by a plan; records or raises problems."""

    def __init__(self, space: AddressSpace, plan: Plan, obj: KObject, size: int, strict: bool) -> None:
        self.space, self.plan, self.obj, self.strict = space, plan, obj, strict
        self.buf = bytearray(size)
        self.mask = bytearray(size)
        self.problems: list[str] = []
        self.ptr = space.build.pointer_size

    def fail(self, f: FieldRef, message: str) -> None:
        text = f"{f.path or f.name}: {message}"
        if self.strict:
            raise BadValueError(text)
        self.problems.append(text)

    def store(self, offset: int, size: int, value: int) -> None:
        self.buf[offset:offset + size] = value.to_bytes(size, "little")
        self.mask[offset:offset + size] = b"\xff" * size

    def raw(self, f: FieldRef, data: bytes) -> None:
        if len(data) > f.size:
            self.fail(f, f"{len(data)} bytes do not fit in {f.size}; truncated")
            data = data[:f.size]
        self.buf[f.offset:f.offset + f.size] = data.ljust(f.size, b"\0")
        self.mask[f.offset:f.offset + f.size] = b"\xff" * f.size

    def integer(self, f: FieldRef, value: Any, bits: int) -> int | None:
        """`value` as an unsigned `bits`-bit number (enum names and bools accepted)."""
        if isinstance(value, str) and f.member is not None:
            number = enum_value(f.struct, f.member.name, value)
            if number is None:
                self.fail(f, f"{value!r} is not a name this member knows")
                return None
            value = number
        if not isinstance(value, int):
            self.fail(f, f"expected an integer, got {type(value).__name__}")
            return None
        if not -(1 << (bits - 1)) <= value < (1 << bits):
            self.fail(f, f"{value} does not fit in {bits} bits; truncated")
        return value & ((1 << bits) - 1)

    def write(self, f: FieldRef, value: Any) -> None:
        kind = f.kind
        if isinstance(value, (bytes, bytearray, memoryview)) and kind not in ("int", "bits", "float", "pointer"):
            self.raw(f, bytes(value))
        elif kind == "int":
            number = self.integer(f, value, f.size * 8)
            if number is not None:
                self.store(f.offset, f.size, number)
        elif kind == "bits":
            self.bits(f, value)
        elif kind == "pointer":
            address = self.address(f, value)
            if address is not None:
                self.store(f.offset, f.size, address)
        elif kind == "float":
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                struct.pack_into(_FLOATS[f.type.name], self.buf, f.offset, value)
                self.mask[f.offset:f.offset + f.size] = b"\xff" * f.size
            else:
                self.fail(f, f"expected a number, got {type(value).__name__}")
        elif kind == "array":
            self.array(f, value)
        elif kind == "struct" and self.special(f, value):
            pass
        elif kind == "uncertain":
            self.fail(f, f"build {self.space.build.label} does not record where this bitfield lies; not written")
        elif isinstance(value, int) and not isinstance(value, bool) and f.size in (1, 2, 4, 8):
            number = self.integer(f, value, f.size * 8)
            if number is not None:
                self.store(f.offset, f.size, number)
        else:
            what = f.layout.name if kind == "struct" else f.type.spell(self.space.arch)
            self.fail(f, f"cannot write a {type(value).__name__} into {what}"
                         + (" (give its members, or bytes)" if kind in ("struct", "anonymous") else ""))

    def bits(self, f: FieldRef, value: Any) -> None:
        m = f.member
        number = self.integer(f, value, m.bit_length)
        if number is None:
            return
        o, s = f.offset, f.size
        field_mask = ((1 << m.bit_length) - 1) << m.bit_position
        container = int.from_bytes(self.buf[o:o + s], "little")
        container = (container & ~field_mask) | (number << m.bit_position)
        self.buf[o:o + s] = container.to_bytes(s, "little")
        written = int.from_bytes(self.mask[o:o + s], "little") | field_mask
        self.mask[o:o + s] = written.to_bytes(s, "little")

    def address(self, f: FieldRef, value: Any) -> int | None:
        """What a pointer value points at, in the current layout."""
        if value is None:
            return 0
        if isinstance(value, bool):
            self.fail(f, "expected an address or an object, got bool")
            return None
        if isinstance(value, int):
            limit = 1 << (self.ptr * 8)
            if not 0 <= value < limit:
                self.fail(f, f"0x{value:x} does not fit in a {self.ptr * 8}-bit pointer; truncated")
            return value & (limit - 1)
        if isinstance(value, KObject):
            return self.target(f, value, "", 0)
        if isinstance(value, Ref):
            if not isinstance(value.target, KObject):
                self.fail(f, "a Ref must point at a KObject")
                return None
            return self.target(f, value.target, value.path, value.delta)
        if isinstance(value, UnicodeString):
            if value._buffer is None or value._buffer.address is None:
                self.fail(f, "string buffer not placed")
                return 0
            return value._buffer.address
        self.fail(f, f"expected an address or an object, got {type(value).__name__}")
        return None

    def target(self, f: FieldRef, obj: KObject, path: str, delta: int) -> int:
        if obj.space is not self.space:
            self.fail(f, "points into another address space")
            return 0
        if not obj.placed:
            self.fail(f, f"points to {obj.type} {obj.label or ''}, which has no address in this build; NULL written")
            return 0
        offset = 0
        if path:
            target_field = self.space.plan(obj.type).try_field(path)
            if target_field is None:
                self.fail(f, f"points to {obj.type}.{path}, absent in build {self.space.build.label}; "
                             "the structure's start written")
            else:
                offset = target_field.offset
        return obj._alloc.address + offset + delta

    def array(self, f: FieldRef, value: Any) -> None:
        et = f.type.target
        if isinstance(value, str):
            if et.kind == "base" and et.name in ("UChar", "Char"):
                try:
                    data = value.encode("latin-1")
                except UnicodeEncodeError:
                    self.fail(f, "text has characters that are not single bytes")
                    return
            elif et.kind == "base" and et.name == "Wchar":
                data = value.encode("utf-16-le")
            else:
                self.fail(f, f"text cannot be written into {f.type.spell(self.space.arch)}")
                return
            self.raw(f, data)
        elif isinstance(value, (list, tuple)):
            count = f.type.count
            if len(value) > count:
                self.fail(f, f"{len(value)} elements do not fit in {count}; truncated")
            for i, item in enumerate(value[:count]):
                if item is not None:
                    self.write(self.plan.element(f, i), item)
        else:
            self.fail(f, f"expected a list, bytes or text for an array, got {type(value).__name__}")

    def sub(self, f: FieldRef, name: str) -> FieldRef:
        return self.plan.field(_join(f.path, name))

    def special(self, f: FieldRef, value: Any) -> bool:
        """The structures KOI knows how to fill from one value; False if not one of them."""
        name = f.layout.name
        if name == "_LIST_ENTRY":
            if isinstance(value, ListHead):
                flink, blink = self.space._list_neighbours(value, value)
            elif isinstance(value, ListLink):
                flink, blink = self.space._list_neighbours(value.list, self.obj)
            elif value is None:
                flink = blink = 0
            else:
                return False
            for member, address in (("Flink", flink), ("Blink", blink)):
                sf = self.sub(f, member)
                if address is None:
                    self.fail(sf, "the list neighbour has no address in this build; NULL written")
                    address = 0
                self.store(sf.offset, sf.size, address)
            return True
        if name == "_UNICODE_STRING":
            if isinstance(value, str):
                self.fail(f, "set strings with set(), which places their buffer")
                return True
            if not isinstance(value, UnicodeString):
                return False
            length, maximum = value.length, value.maximum_length
            if maximum > 0xFFFF or length > maximum:
                self.fail(f, f"a {length}-byte string does not fit a _UNICODE_STRING of {maximum} bytes")
                return True
            for member, number in (("Length", length), ("MaximumLength", maximum)):
                sf = self.sub(f, member)
                self.store(sf.offset, sf.size, number)
            sf = self.sub(f, "Buffer")
            self.store(sf.offset, sf.size, self.address(sf, value) or 0)
            return True
        if name == "_LARGE_INTEGER":
            if isinstance(value, datetime):
                value = to_filetime(value)
            elif isinstance(value, timedelta):
                value = to_100ns(value)
            if not isinstance(value, int) or isinstance(value, bool):
                return False
            number = self.integer(f, value, 64)
            if number is not None:
                self.store(f.offset, 8, number)
            return True
        if name == "_EX_FAST_REF":
            refcnt = 0
            if isinstance(value, FastRef):
                refcnt, value = value.refcnt, value.target
            if not (value is None or isinstance(value, (KObject, Ref, int))) or isinstance(value, bool):
                return False
            sf = self.sub(f, "Object") if f.layout.has_member("Object") else self.sub(f, "Value")
            address = self.address(sf, value)
            if address is None:
                return True
            bits = f.layout.member("RefCnt").bit_length if f.layout.has_member("RefCnt") else 3
            top = (1 << bits) - 1
            if not 0 <= refcnt <= top:
                self.fail(f, f"RefCnt {refcnt} does not fit in {bits} bits; {min(max(refcnt, 0), top)} written")
                refcnt = min(max(refcnt, 0), top)
            if address & top and refcnt:
                self.fail(f, "object address is not aligned for a reference count")
            self.store(f.offset, self.ptr, address | refcnt)
            return True
        return False

    def empty_wait_list(self, header: str) -> None:
        f = self.plan.try_field(_join(header, "WaitListHead"))
        if f is None:
            return
        address = self.obj._alloc.address + f.offset
        for member in ("Flink", "Blink"):
            sf = self.sub(f, member)
            self.store(sf.offset, sf.size, address)


# --- decoding --------------------------------------------------------------------------

class ListEntry(NamedTuple):
    """One record found by walking a list: its address (CONTAINING_RECORD) and the
    object there, if KOI has one of the entry type at exactly that address."""

    address: int
    object: KObject | None


class Extent(NamedTuple):
    """A stretch of addresses for a hex view: a structure's body, a string buffer, an
    unmodelled header (region = its name), free pool ("free") or nothing ("unmapped")."""

    start: int
    end: int
    region: str
    object: KObject | None


@dataclass(frozen=True)
class Location:
    """What lies at an address: which object (or unmodelled header) and which member."""

    address: int
    object: KObject | None
    region: str          # "body", "buffer" (a string's characters) or an unmodelled header's name
    offset: int          # from the start of the body / buffer (negative inside a header)
    path: str | None     # innermost member containing the address
    member: str | None   # outermost member starting exactly at the address ("" = the object itself)
    modelled: bool

    def __str__(self) -> str:
        obj = self.object
        name = (obj.type + (f" {obj.label}" if obj.label else "")) if obj is not None else "?"
        if self.region == "body":
            if self.member == "":
                return name
            shown = self.member or self.path
            return f"{name} +0x{self.offset:x}" + (f" {shown}" if shown else "")
        if self.region == "buffer":
            return f"string buffer of {name}.{self.path} +0x{self.offset:x}"
        return f"{self.region} of {name} (not modelled)"


class _Elements(Sequence):
    """Array elements as nodes, made one at a time (arrays can be long)."""

    def __init__(self, img: _Image, f: FieldRef) -> None:
        self._img, self._f = img, f

    def __len__(self) -> int:
        return self._f.type.count

    def __getitem__(self, index):  # type: ignore[override]
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(index)
        return Node(self._img, self._img.plan.element(self._f, index))

    def __iter__(self) -> Iterator[Node]:
        return (self[i] for i in range(len(self)))


_BASE_FORMATS = {"UChar": "B", "Char": "b", "Bool": "B", "Int2B": "h", "Uint2B": "H", "Wchar": "H",
                 "Int4B": "i", "Uint4B": "I", "Int8B": "q", "Uint8B": "Q", "Float": "f", "Double": "d"}


class Node:
    """One member of a decoded object: where it is, its bytes, what they say, and
    whether KOI modelled it (a value was written) or the bytes are just zeros."""

    __slots__ = ("_img", "field", "_kids")

    def __init__(self, img: _Image, field: FieldRef) -> None:
        self._img = img
        self.field = field
        self._kids: Sequence[Node] | None = None

    def __repr__(self) -> str:
        return f"<Node {self.path or self.name} +0x{self.offset:x} {self.type_name}: {self.display}>"

    # where and what
    name = property(lambda self: self.field.name)
    path = property(lambda self: self.field.path)
    offset = property(lambda self: self.field.offset, doc="from the start of the object")
    relative_offset = property(lambda self: self.field.offset - self.field.origin,
                               doc="from the start of the structure that declares it, as dt -r shows")
    size = property(lambda self: self.field.size)
    kind = property(lambda self: self.field.kind)
    type = property(lambda self: self.field.type)
    member = property(lambda self: self.field.member)
    bit_position = property(lambda self: self.field.bit_position)
    bit_length = property(lambda self: self.field.bit_length)
    object = property(lambda self: self._img.obj)

    @property
    def address(self) -> int:
        return self._img.address + self.field.offset

    @property
    def type_name(self) -> str:
        """As ``dt`` spells it: ``Ptr64 _EJOB``, ``Pos 3, 2 Bits``, ``_KPROCESS``."""
        f = self.field
        if f.kind == "bits":
            return f.member.spell(self._img.space.arch)
        return f.type.spell(self._img.space.arch)

    @property
    def raw(self) -> bytes:
        o = self.field.offset
        return bytes(self._img.data[o:o + self.field.size])

    @property
    def modelled(self) -> bool:
        """True when some value wrote (part of) this member; False: zeros KOI did not model."""
        f, mask = self.field, self._img.mask
        if f.kind == "bits":
            bits = int.from_bytes(mask[f.offset:f.offset + f.size], "little") >> f.member.bit_position
            return bool(bits & ((1 << f.member.bit_length) - 1))
        if f.kind == "uncertain":
            return False
        return mask.count(0, f.offset, f.offset + f.size) != f.size

    # children
    @property
    def children(self) -> Sequence[Node]:
        if self._kids is None:
            f = self.field
            if f.kind == "array":
                self._kids = _Elements(self._img, f)
            elif f.kind in ("struct", "anonymous"):
                self._kids = [Node(self._img, c) for c in self._img.plan.children(f)]
            else:
                self._kids = ()
        return self._kids

    def find(self, path: str) -> Node:
        """The descendant at `path` relative to this node (``Header.Type``, ``[2]``)."""
        return Node(self._img, self._img.plan.field(_join(self.field.path, path)))

    def _sub(self, name: str) -> Node:
        return self.find(name)

    def _int(self, offset: int, size: int, signed: bool = False) -> int:
        return int.from_bytes(self._img.data[offset:offset + size], "little", signed=signed)

    # values
    @property
    def value(self) -> Any:
        """The bytes read as the member's type: int, float, bytes (byte arrays), list
        (arrays of numbers), str (_UNICODE_STRING, Wchar arrays), a tuple (Flink,
        Blink) for _LIST_ENTRY, QuadPart for _LARGE_INTEGER; None for other structures."""
        f = self.field
        kind, o = f.kind, f.offset
        if kind in ("int", "pointer"):
            return self._int(o, f.size, f.signed)
        if kind == "bits":
            return (self._int(o, f.size) >> f.member.bit_position) & ((1 << f.member.bit_length) - 1)
        if kind == "float":
            return struct.unpack_from(_FLOATS[f.type.name], self._img.data, o)[0]
        if kind == "array":
            et = f.type.target
            count = f.type.count
            if et.kind == "base" and et.name in ("UChar", "Char"):
                return self.raw
            if et.kind == "base" and et.name == "Wchar":
                return self.raw.decode("utf-16-le", "replace")
            if et.kind == "base" and et.name in _BASE_FORMATS and count * BASE_SIZES[et.name] == f.size:
                return list(struct.unpack_from(f"<{count}{_BASE_FORMATS[et.name]}", self._img.data, o))
            if et.kind == "pointer" and count * self._img.space.build.pointer_size == f.size:
                fmt = "Q" if self._img.space.build.pointer_size == 8 else "I"
                return list(struct.unpack_from(f"<{count}{fmt}", self._img.data, o))
            return None
        if kind == "struct":
            name = f.layout.name
            if name == "_LIST_ENTRY":
                return (self._sub("Flink").value, self._sub("Blink").value)
            if name == "_UNICODE_STRING":
                return self._text()
            if name == "_LARGE_INTEGER":
                return self._int(o, 8, True)
            if name == "_EX_FAST_REF":
                return self._int(o, self._img.space.build.pointer_size)
            if name == "_DISPATCHER_HEADER":
                return self._sub("Type").value
            if name == "_PS_PROTECTION":
                return self._sub("Level").value
            if name == "_CLIENT_ID":
                return (self._sub("UniqueProcess").value, self._sub("UniqueThread").value)
        return None

    def _text(self) -> str | None:
        length = self._sub("Length").value
        buffer = self._sub("Buffer").value
        if length == 0:
            return ""
        try:
            data = self._img.space.read(buffer, length, process=self._img.process)
        except KernelMemoryError:
            return None
        return data.decode("utf-16-le", "replace")

    @property
    def enum(self) -> str | None:
        """The enum constant's name for known enum members (``Running``)."""
        f = self.field
        if f.kind in ("int", "bits") and f.member is not None:
            table = enum_of(f.struct, f.member.name)
            if table is not None:
                return table.get(self.value)
        return None

    @property
    def target(self) -> Location | None:
        """For a pointer: what it points at, when that is in the simulated memory."""
        f = self.field
        if f.kind == "pointer":
            address = self.value
        elif f.kind == "struct" and f.layout.name == "_EX_FAST_REF":
            address = self.meaning.object
        else:
            return None
        if not address:
            return None
        return self._img.space.locate(address, process=self._img.process)

    @property
    def meaning(self) -> Any:
        """What the value means where KOI knows: an enum name, a datetime (dates),
        a timedelta (durations, ticks), the text of strings, a FastRefValue, the
        KOBJECTS name of a dispatcher header, the target Location of a pointer."""
        f = self.field
        kind = f.kind
        if kind in ("int", "bits"):
            if self.enum is not None:
                return self.enum
            if f.member is not None and TIME_MEMBERS.get((f.struct, f.member.name)) == "ticks":
                return timedelta(microseconds=self.value * TICK_100NS / 10)
            return None
        if kind == "pointer":
            return self.target
        if kind == "array":
            et = f.type.target
            if et.kind == "base" and et.name in ("UChar", "Char"):
                return self.raw.split(b"\0", 1)[0].decode("latin-1")
            if et.kind == "base" and et.name == "Wchar":
                return self.value.split("\0", 1)[0]
            return None
        if kind == "struct":
            name = f.layout.name
            if name == "_LARGE_INTEGER" and f.member is not None:
                how = TIME_MEMBERS.get((f.struct, f.member.name))
                if how == "date":
                    return from_filetime(self.value) if self.value >= 0 else None
                if how == "duration":
                    return from_100ns(self.value)
                return None
            if name == "_UNICODE_STRING":
                return self.value
            if name == "_EX_FAST_REF":
                bits = f.layout.member("RefCnt").bit_length if f.layout.has_member("RefCnt") else 3
                raw = self.value
                address = raw & ~((1 << bits) - 1)
                target = self._img.space.locate(address, process=self._img.process) if address else None
                return FastRefValue(address, raw & ((1 << bits) - 1), target)
            if name == "_DISPATCHER_HEADER":
                return KOBJECTS.get(self.value)
            if name == "_PS_PROTECTION":
                t, s = self._sub("Type"), self._sub("Signer")
                return f"{t.enum or t.value}, {s.enum or s.value}" + (", Audit" if self._sub("Audit").value else "")
        return None

    @property
    def display(self) -> str:
        """One line, as WinDbg's ``dt`` shows the value, plus what it means."""
        f = self.field
        kind = f.kind
        arch = self._img.space.arch
        if kind == "int":
            v = self.value
            text = f"0n{v}" if f.signed else f"0x{v:x}"
            extra = self.meaning
            if isinstance(extra, timedelta):
                return f"{text} ({self.value} ticks = {format_duration(self.value * TICK_100NS)})"
            return f"{text} ({extra})" if extra else text
        if kind == "bits":
            text = f"0y{self.value:0{f.member.bit_length}b}"
            return f"{text} ({self.enum})" if self.enum else text
        if kind == "pointer":
            return format_address(self.value, arch)
        if kind == "float":
            return repr(self.value)
        if kind == "uncertain":
            return "<bit position not recorded for this build>"
        if kind == "array":
            meaning = self.meaning
            if meaning is not None:
                return f"[{f.type.count}] {meaning!r}".replace("'", '"')
            return f"[{f.type.count}] {f.type.target.spell(arch)}"
        if kind == "struct":
            name = f.layout.name
            if name == "_LIST_ENTRY":
                flink, blink = self.value
                return f"[ {format_address(flink, arch)} - {format_address(blink, arch)} ]"
            if name == "_UNICODE_STRING":
                text = self.value
                return f'"{text}"' if text is not None else "<buffer not readable>"
            if name == "_LARGE_INTEGER":
                v = self.value
                text = f"0x{v & 0xFFFFFFFFFFFFFFFF:016x}"
                how = TIME_MEMBERS.get((f.struct, f.member.name)) if f.member is not None else None
                if how == "date" and v:
                    return f"{text} ({format_filetime(v)})"
                if how == "duration":
                    return f"{text} ({format_duration(v)})"
                return text
            if name == "_EX_FAST_REF":
                m = self.meaning
                return f"{format_address(self.value, arch)} (Object {format_address(m.object, arch)}, RefCnt {m.refcnt})"
            if name == "_DISPATCHER_HEADER":
                kobj = self.meaning or f"type {self.value}"
                return f"_DISPATCHER_HEADER ({kobj}, SignalState {self._sub('SignalState').value})"
            if name == "_PS_PROTECTION":
                return f"_PS_PROTECTION ({self.meaning})"
            if name == "_CLIENT_ID":
                pid, tid = self.value
                return f"_CLIENT_ID (Cid {pid:04x}.{tid:04x})"
            return name
        if kind == "anonymous":
            return "<unnamed-tag>"
        return f.type.spell(arch)

    # lists
    def walk(self, entry_type: str | None = None, link: str | None = None, *,
             limit: int = 1_000_000) -> Iterator[ListEntry]:
        """The records of the list whose head is this _LIST_ENTRY (``dt -l``): follows
        Flink through memory and subtracts `link`'s offset in `entry_type`. Without
        them, the types the object's ListHead declares are used."""
        f = self.field
        if not (f.kind == "struct" and f.layout.name == "_LIST_ENTRY"):
            raise KernelMemoryError(f"{f.path or f.name} is not a _LIST_ENTRY")
        if entry_type is None or link is None:
            head = self._img.obj._values.get(f.path)
            if not isinstance(head, ListHead):
                raise KernelMemoryError(f"say which type {f.path or f.name} links (entry type and member)")
            entry_type, link = entry_type or head.entry_type, link or head.link
        return self._img.space.walk_list(self.address, entry_type, link, process=self._img.process, limit=limit)


# --- the address space ------------------------------------------------------------------

class AddressSpace:
    """A machine's simulated virtual memory for one build: kernel pool, the kernel
    image's data (globals such as nt!PsActiveProcessHead) and a user address space
    per process (PEB, TEBs, heap). Everything in it is a KObject or a string buffer."""

    def __init__(self, build: Build) -> None:
        self.build = build
        self._epoch = 0
        self._seq = 0
        self._allocs: dict[int, Allocation] = {}      # seq -> live allocation
        self._objects: dict[int, KObject] = {}        # seq -> live object
        self._globals: dict[str, KObject] = {}
        self._users: dict[KObject, _User] = {}
        self._user_count = 0
        self._lists: list[ListHead] = []
        self._teb_slots: dict[KObject, set[int]] = {}
        self._configure()

    # build
    @property
    def arch(self) -> str:
        return self.build.arch

    @property
    def pointer_size(self) -> int:
        return self.build.pointer_size

    def plan(self, type_name: str) -> Plan:
        return _plan(self.build, type_name)

    def set_build(self, build: Build) -> None:
        """Lay everything out again for `build`: the same values, new addresses."""
        if build is self.build:
            return
        self.build = build
        self._configure()
        self._epoch += 1
        for seq in sorted(self._allocs):
            self._place(self._allocs[seq])

    def _configure(self) -> None:
        self._kernel = _Kernel(self.build)
        for process, user in list(self._users.items()):
            self._users[process] = _User(self.build, user.index)

    def is_kernel_address(self, address: int) -> bool:
        return address >= self._kernel.kernel_base

    # creating objects
    def create(self, type_name: str, values: Mapping[str, Any] | None = None, *, label: str | None = None,
               process: KObject | None = None,
               provider: Callable[[], Mapping[str, Any]] | None = None) -> KObject:
        """A new object of `type_name` in pool (or, for _PEB/_TEB, in `process`'s user
        space). `process` also gives user pointers of the object their context; an
        _EPROCESS is its own. `label` names it in locations (``System``)."""
        name = self.plan(type_name).layout.name
        if name in USER_TYPES and process is None:
            raise KernelMemoryError(f"a {name} lives in a process's user space: pass process=")
        if process is not None and process.type != "_EPROCESS" and process.process is not None:
            process = process.process  # any object of a process stands for it
        obj = KObject(self, name, label, process, provider)
        if name == "_EPROCESS" and process is None:
            obj.process = obj
        slot = 0
        kind = {"_PEB": "peb", "_TEB": "teb"}.get(name, "user" if name in USER_TYPES else "object")
        if kind == "teb":  # the lowest free TEB page, as Windows reuses them
            used = self._teb_slots.setdefault(process, set())
            slot = next(i for i in range(len(used) + 1) if i not in used)
            used.add(slot)
        obj._alloc = self._new_allocation(kind, obj, slot=slot)
        self._objects[obj._alloc.seq] = obj
        if values:
            obj.update(values)
        return obj

    def create_global(self, symbol: str, type_name: str, values: Mapping[str, Any] | None = None) -> KObject:
        """A kernel global in the kernel image's data (``PsActiveProcessHead``)."""
        if symbol in self._globals:
            raise KernelMemoryError(f"nt!{symbol} already exists")
        name = self.plan(type_name).layout.name
        obj = KObject(self, name, f"nt!{symbol}", None, None)
        obj._alloc = self._new_allocation("global", obj)
        self._objects[obj._alloc.seq] = obj
        self._globals[symbol] = obj
        if values:
            obj.update(values)
        return obj

    def symbol(self, name: str) -> KObject:
        """A global made by create_global (``nt!`` optional)."""
        key = name[3:] if name.startswith("nt!") else name
        try:
            return self._globals[key]
        except KeyError:
            raise KernelMemoryError(f"no symbol {name}") from None

    def new_list(self, owner: KObject, path: str, entry_type: str, link: str) -> ListHead:
        """Make member `path` of `owner` the head of a list of `entry_type` records
        linked through their member `link` (an empty list until entries are added)."""
        head_field = self.plan(owner.type).field(path)
        entry = self.plan(entry_type)
        link_field = entry.field(link)
        for f, what in ((head_field, "head"), (link_field, "link")):
            if not (f.kind == "struct" and f.layout.name == "_LIST_ENTRY"):
                raise BadValueError(f"list {what} {f.path or f.name} is not a _LIST_ENTRY")
        if isinstance(owner._values.get(path), (ListHead, ListLink)):
            raise KernelMemoryError(f"{owner!r}.{path} is already a list")
        head = ListHead(owner, path, entry.layout.name, link)
        owner._values[path] = head
        owner._changed()
        self._lists.append(head)
        return head

    def objects(self, type_name: str | None = None) -> list[KObject]:
        """Live objects in creation order (of one type, if given)."""
        return [o for _, o in sorted(self._objects.items()) if type_name is None or o.type == type_name]

    def free(self, obj: KObject) -> None:
        """Release an object: unlink it from lists, empty the lists it heads, release its
        string buffers (and, for a process, its user space). Pointers to it then write NULL."""
        if obj.space is not self or obj._alloc is None or obj._alloc.seq not in self._objects:
            raise KernelMemoryError(f"{obj!r} is not a live object of this address space")
        for value in list(obj._values.values()):
            if isinstance(value, ListLink):
                value.list.remove(obj)
            elif isinstance(value, UnicodeString):
                self._free_string(value)
        for head in [h for h in self._lists if h.owner is obj]:
            head._clear()
            self._lists.remove(head)
        if obj in self._users:
            for other in [o for o in self._objects.values() if o.process is obj and o.type in USER_TYPES]:
                if other is not obj:
                    self.free(other)
            del self._users[obj]
        if obj._alloc.kind == "teb":
            self._teb_slots[obj.process].discard(obj._alloc.slot)
        self._teb_slots.pop(obj, None)
        self._release(obj._alloc)
        del self._objects[obj._alloc.seq]
        if obj.label and obj._alloc.kind == "global":
            self._globals.pop(obj.label[3:], None)
        obj._alloc = None
        obj._changed()
        self._epoch += 1  # pointers to it must be written again

    # placement
    def _new_allocation(self, kind: str, owner: Any, slot: int = 0, path: str = "") -> Allocation:
        self._seq += 1
        a = Allocation(self._seq, kind, owner, slot=slot, path=path)
        self._allocs[a.seq] = a
        self._place(a)
        return a

    def _user(self, process: KObject) -> _User:
        user = self._users.get(process)
        if user is None:
            user = self._users[process] = _User(self.build, self._user_count)
            self._user_count += 1
        return user

    def _place(self, a: Allocation) -> None:
        k = self._kernel
        if a.kind == "string":
            a.size = a.owner.maximum_length
            obj = a.owner._owner
            if obj.type in USER_TYPES:
                user = self._user(obj.process)
                a.headers = (("_HEAP_ENTRY", user.heap_header),)
                user.arena.place(a)
            else:
                a.headers = (("POOL_HEADER", k.pool_header),)
                k.pool.place(a)
            return
        obj: KObject = a.owner
        if not self.build.has_struct(obj.type):
            a.address = None
            return
        a.size = self.plan(obj.type).size
        if a.kind == "global":
            a.headers = ()
            k.image.place(a)
        elif a.kind == "object":
            big = k.pool_header + k.object_header + a.size > PAGE
            a.headers = ((("OBJECT_HEADER", k.object_header),) if big else
                         (("POOL_HEADER", k.pool_header), ("OBJECT_HEADER", k.object_header)))
            k.pool.place(a)
        else:
            user = self._user(obj.process)
            if a.kind == "peb":
                a.headers = ()
                user.arena.place(a, at=user.peb)
            elif a.kind == "teb":
                a.headers = ()
                user.arena.place(a, at=user.teb_address(a.slot))
            else:
                a.headers = (("_HEAP_ENTRY", user.heap_header),)
                user.arena.place(a)

    def _arena_of(self, a: Allocation) -> _Arena:
        if a.kind in ("peb", "teb", "user") or (a.kind == "string" and a.owner._owner.type in USER_TYPES):
            obj = a.owner if a.kind != "string" else a.owner._owner
            return self._users[obj.process].arena
        if a.kind == "global":
            return self._kernel.image
        return self._kernel.pool

    def _release(self, a: Allocation) -> None:
        if a.address is not None:
            self._arena_of(a).remove(a)
        self._allocs.pop(a.seq, None)

    # strings
    def _bind_string(self, obj: KObject, path: str, value: UnicodeString, old: Any) -> UnicodeString:
        if value._buffer is not None:  # already placed for another member: give this one its own copy
            value = UnicodeString(value.text, value.capacity)
        if len(value.text.encode("utf-16-le")) > 0xFFFE:
            raise BadValueError(f"{path}: a _UNICODE_STRING holds at most 32767 characters")
        if isinstance(old, UnicodeString) and old._buffer is not None:
            if value.capacity is None and value.length + 2 <= old.maximum_length:
                value.capacity = old.maximum_length  # the old buffer is big enough: reuse it
                value._buffer, old._buffer = old._buffer, None
                value._buffer.owner = value
                value._owner = obj
                obj._changed()
                return value
            self._free_string(old)
        value._owner = obj
        value._buffer = self._new_allocation("string", value, path=path)
        return value

    def _free_string(self, value: UnicodeString) -> None:
        if value._buffer is not None:
            self._release(value._buffer)
            value._buffer = None

    # checking values when they are set
    def _check(self, obj: KObject, f: FieldRef, value: Any) -> None:
        kind = f.kind
        if type(value) is int and kind in ("int", "bits"):
            bits = f.member.bit_length if kind == "bits" else f.size * 8
            if -(1 << (bits - 1)) <= value < (1 << bits):
                return
        if kind == "uncertain":
            return  # kept; reported by problems() in this build
        if isinstance(value, UnicodeString):
            if not (kind == "struct" and f.layout.name == "_UNICODE_STRING"):
                raise BadValueError(f"{f.path}: a UnicodeString needs a _UNICODE_STRING member")
            return
        writer = _Writer(self, self.plan(obj.type), obj, f.offset + f.size, strict=True)
        writer.write(f, value)

    # making bytes
    def _materialize(self, obj: KObject, values: Mapping[str, Any]) -> _Image:
        if not obj.placed:
            raise KernelMemoryError(f"{obj.type} {obj.label or ''} does not exist in build {self.build.label}"
                                    if obj._alloc is not None else f"{obj!r} was freed")
        plan = self.plan(obj.type)
        writer = _Writer(self, plan, obj, plan.size, strict=False)
        items = []
        for path, value in values.items():
            f = plan.try_field(path)
            if f is None:
                if obj.provider is not None and not _known_anywhere(obj.type, path):
                    raise PathError(f"{obj.type} has no member {path} in any shipped build")
                writer.problems.append(f"{path}: no such member in build {self.build.label}; not written")
                continue
            items.append((f.kind == "bits", -f.size, f, value))
        items.sort(key=lambda item: item[:2])  # whole members first, then narrower ones, bits last
        for _, _, f, value in items:
            writer.write(f, value)
        for header in plan.dispatcher_headers():
            # A header with values but no waiters: its wait list is empty, pointing to itself.
            prefix = header + "." if header else ""
            wait = prefix + "WaitListHead"
            given = [p for p in values if p.startswith(prefix)]
            if given and not any(p == wait or p.startswith(wait + ".") or p.startswith(wait + "[")
                                 for p in given):
                writer.empty_wait_list(header)
        return _Image(obj, plan, bytes(writer.buf), bytes(writer.mask), writer.problems)

    def _list_neighbours(self, head: ListHead, node: Any) -> tuple[int | None, int | None]:
        return self._link_address(head, head._next[node]), self._link_address(head, head._prev[node])

    def _link_address(self, head: ListHead, node: Any) -> int | None:
        obj, path = (head.owner, head.path) if node is head else (node, head.link)
        if not obj.placed:
            return None
        f = self.plan(obj.type).try_field(path)
        return None if f is None else obj._alloc.address + f.offset

    # reading memory
    def _arena_for(self, address: int, process: KObject | None) -> _Arena:
        k = self._kernel
        if address < 0 or address >= 1 << (self.build.pointer_size * 8):
            raise UnmappedError(address, f"0x{address:x} is not an address on {self.arch}")
        if address >= k.kernel_base:
            for arena in (k.pool, k.image):
                if arena.contains(address):
                    return arena
            raise UnmappedError(address, f"memory at {format_address(address, self.arch)} is not mapped")
        if address >= k.user_limit:
            raise UnmappedError(address, f"{format_address(address, self.arch)} is not a canonical address")
        if process is not None and process.type != "_EPROCESS":
            process = process.process
        user = self._users.get(process) if process is not None else None
        if user is None:
            raise UnmappedError(address, f"{format_address(address, self.arch)} is a user-mode address:"
                                         " it needs a process context")
        return user.arena

    def _body(self, a: Allocation) -> bytes:
        if a.kind == "string":
            text = a.owner.text.encode("utf-16-le")
            return (text + b"\0\0")[:a.size].ljust(a.size, b"\0")
        return a.owner._image().data

    def read(self, address: int, length: int, *, process: KObject | None = None) -> bytes:
        """`length` bytes at `address` across whatever is there: structures as their
        current bytes, unmodelled headers and free pool as zeros. UnmappedError where
        a page holds nothing. User addresses need `process` (its _EPROCESS or any
        object of it)."""
        if length <= 0:
            return b""
        arena = self._arena_for(address, process)
        end = address + length
        a = arena.find(address)
        if a is not None and a.address <= address and end <= a.address + a.size:
            body = self._body(a)  # the common case: inside one structure
            return body[address - a.address:end - a.address]
        for page in range(address // PAGE, (end - 1) // PAGE + 1):
            if page not in arena.pages:
                raise UnmappedError(max(address, page * PAGE),
                                    f"memory at {format_address(max(address, page * PAGE), self.arch)} is not mapped")
        out = bytearray(length)
        for a in arena.overlapping(address, end):
            start, stop = max(address, a.address), min(end, a.address + a.size)
            if start < stop:
                body = self._body(a)
                out[start - address:stop - address] = body[start - a.address:stop - a.address]
        return bytes(out)

    def extents(self, address: int, length: int, *, process: KObject | None = None) -> list[Extent]:
        """What occupies [address, address + length), in order, without gaps: bodies,
        buffers, unmodelled headers, free and unmapped space (for hex-view colours)."""
        end = address + length
        k = self._kernel
        # the pool or image range the stretch overlaps, even when it starts before it
        probe = next((max(address, r.base) for r in (k.pool, k.image)
                      if address >= k.kernel_base and r.base < end and address < r.limit), address)
        try:
            arena = self._arena_for(probe, process)
        except UnmappedError:
            return [Extent(address, end, "unmapped", None)] if length > 0 else []
        out: list[Extent] = []

        def gap(start: int, stop: int) -> None:
            while start < stop:
                page_end = min(stop, (start // PAGE + 1) * PAGE)
                region = "free" if arena.mapped(start) else "unmapped"
                if out and out[-1].region == region and out[-1].end == start:
                    out[-1] = out[-1]._replace(end=page_end)
                else:
                    out.append(Extent(start, page_end, region, None))
                start = page_end

        pos = address
        for a in arena.overlapping(address, end):
            obj = a.owner._owner if a.kind == "string" else a.owner
            at = a.start
            parts = []
            for name, size in a.headers:
                parts.append((at, at + size, name))
                at += size
            parts.append((a.address, a.address + a.size, "buffer" if a.kind == "string" else "body"))
            for start, stop, region in parts:
                start, stop = max(start, pos), min(stop, end)
                if start >= stop:
                    continue
                gap(pos, start)
                out.append(Extent(start, stop, region, obj))
                pos = stop
        gap(pos, end)
        return out

    def read_pointer(self, address: int, *, process: KObject | None = None) -> int:
        return int.from_bytes(self.read(address, self.pointer_size, process=process), "little")

    def is_mapped(self, address: int, *, process: KObject | None = None) -> bool:
        try:
            return self._arena_for(address, process).mapped(address)
        except UnmappedError:
            return False

    def locate(self, address: int, *, process: KObject | None = None) -> Location | None:
        """Which object and member hold `address` (None where nothing is allocated)."""
        try:
            arena = self._arena_for(address, process)
        except UnmappedError:
            return None
        a = arena.find(address)
        if a is None or a.address is None:
            return None
        obj = a.owner._owner if a.kind == "string" else a.owner
        if address < a.address:
            at = a.start
            for name, size in a.headers:
                if address < at + size:
                    return Location(address, obj, name, address - a.address, None, None, False)
                at += size
        offset = address - a.address
        if a.kind == "string":
            return Location(address, obj, "buffer", offset, a.path, None, True)
        img = obj._image()
        chain = img.plan.chain_at(offset, img.mask)
        path = chain[-1].path if chain else None
        member = "" if offset == 0 else next((f.path for f in chain if f.offset == offset), path)
        modelled = bool(img.mask[offset]) if offset < len(img.mask) else False
        return Location(address, obj, "body", offset, path, member, modelled)

    def walk_list(self, head: int, entry_type: str, link: str, *, process: KObject | None = None,
                  limit: int = 1_000_000) -> Iterator[ListEntry]:
        """Every record of the list headed at address `head`, as ``dt -l`` finds them:
        Flink by Flink through memory, each minus `link`'s offset in `entry_type`
        (CONTAINING_RECORD). Stops with KernelMemoryError on a NULL or looping chain."""
        plan = self.plan(entry_type)
        offset = plan.field(link).offset
        flink_at = self.plan("_LIST_ENTRY").field("Flink").offset
        seen = set()
        address = self.read_pointer(head + flink_at, process=process)
        while address != head:
            if address == 0:
                raise KernelMemoryError(f"list at {format_address(head, self.arch)} ends in a NULL Flink")
            if address in seen or len(seen) >= limit:
                raise KernelMemoryError(f"list at {format_address(head, self.arch)} loops without reaching its head")
            seen.add(address)
            record = address - offset
            yield ListEntry(record, self._object_at(record, plan.layout.name, process))
            address = self.read_pointer(address + flink_at, process=process)

    def _object_at(self, address: int, type_name: str, process: KObject | None) -> KObject | None:
        try:
            a = self._arena_for(address, process).find(address)
        except UnmappedError:
            return None
        if a is not None and a.address == address and a.kind != "string" and a.owner.type == type_name:
            return a.owner
        return None

    def format_address(self, address: int) -> str:
        return format_address(address, self.arch)

"""Windows kernel structure layouts of real builds, as shipped in resources/layouts.

    >>> from core.layouts import catalogue
    >>> build = catalogue().find("10.0.19041.3570", "x64")
    >>> eprocess = build.struct("_EPROCESS")
    >>> eprocess.member("UniqueProcessId").offset
    1088

Every member type is kept in one arch-neutral spelling close to WinDbg's
(``Ptr _EJOB``, ``[16] UChar``, ``Ptr Fn void``); `TypeRef.spell` renders it for
an architecture exactly as WinDbg's ``dt`` does (``Ptr64 _EJOB``).

A few public structures that other structures embed (``_TEB.NtTib`` is an
``_NT_TIB``) are missing from every build's data; resources/layouts/supplement.json
lays them out per architecture from their public declaration, and a build takes one
only where its own data has no structure of that name (`Build.supplemented`).
"""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass, field
from functools import cache, cached_property
from pathlib import Path

from core.resources import resource_path

# Sizes of WinDbg's base types, in bytes (Void has none).
BASE_SIZES = {
    "UChar": 1, "Char": 1, "Bool": 1, "Int2B": 2, "Uint2B": 2, "Wchar": 2,
    "Int4B": 4, "Uint4B": 4, "Float": 4, "Int8B": 8, "Uint8B": 8, "Double": 8,
}
SIGNED_BASES = frozenset({"Char", "Int2B", "Int4B", "Int8B"})
POINTER_SIZES = {"x64": 8, "x86": 4}
UNKNOWN = "?"  # a part of a type the source data did not record

DEFAULT_BUILD = "10.0.19041.3570"
DEFAULT_ARCH = "x64"


class LayoutError(LookupError):
    """An unknown build or type; the message is one line meant for a user."""


@dataclass(frozen=True, slots=True)
class TypeRef:
    """A member type.

    kind is one of: ``base`` (name = WinDbg base spelling), ``pointer`` (target),
    ``array`` (count, target = element), ``struct`` (name), ``function`` (name =
    return type), ``anonymous`` (an unnamed struct/union; its members follow as
    dotted names) or ``unknown`` (the source did not record it).
    """

    kind: str
    name: str = ""
    target: TypeRef | None = None
    count: int = 0

    def spell(self, arch: str) -> str:
        """The type as WinDbg's ``dt`` prints it on `arch`."""
        if self.kind == "pointer":
            ptr = "Ptr64" if arch == "x64" else "Ptr32"
            if self.target.kind == "function":
                return f"{ptr}     {self.target.name} "
            return f"{ptr} {self.target.spell(arch)}"
        if self.kind == "array":
            return f"[{self.count}] {self.target.spell(arch)}"
        if self.kind == "anonymous":
            return "<unnamed-tag>"
        if self.kind == "unknown":
            return "<type not recorded>"
        return self.name

    @property
    def is_pointer(self) -> bool:
        return self.kind == "pointer"


@cache
def parse_type(spelling: str) -> TypeRef:
    """Parse KOI's canonical type spelling (see packaging/import_layouts.py)."""
    if spelling.startswith("["):
        count, _, rest = spelling[1:].partition("] ")
        return TypeRef("array", target=parse_type(rest), count=int(count))
    if spelling.startswith("Ptr "):
        return TypeRef("pointer", target=parse_type(spelling[4:]))
    if spelling.startswith("Fn "):
        ret = spelling[3:]
        return TypeRef("function", name="<return type not recorded>" if ret == UNKNOWN else ret)
    if spelling == "<unnamed-tag>":
        return TypeRef("anonymous")
    if spelling == UNKNOWN:
        return TypeRef("unknown")
    if spelling in BASE_SIZES or spelling == "Void":
        return TypeRef("base", name=spelling)
    return TypeRef("struct", name=spelling)


@dataclass(frozen=True, slots=True)
class Member:
    """One member of a structure, as the layout data records it.

    Members of anonymous unions/structs are flattened into the parent (as ``dt``
    shows them); members of a *named* member of anonymous type carry a dotted
    name (``u.LowPart``) and are not part of the ``dt`` listing.
    """

    name: str
    offset: int
    type: TypeRef
    bit_position: int | None = None
    bit_length: int | None = None
    # "T": type filled from another build; "B": bit position inferred from another
    # build; "U": may be a bitfield whose position the source did not record.
    flags: str = ""

    @property
    def is_bitfield(self) -> bool:
        return self.bit_length is not None

    @property
    def is_top_level(self) -> bool:
        return "." not in self.name

    def spell(self, arch: str) -> str:
        """The text after ``: `` on this member's ``dt`` line."""
        if self.is_bitfield:
            bits = "Bit" if self.bit_length == 1 else "Bits"
            return f"Pos {self.bit_position}, {self.bit_length} {bits}"
        return self.type.spell(arch)


@dataclass(eq=False)
class StructLayout:
    """One structure (or union) of one build."""

    name: str
    size: int
    kind: str  # "struct" | "union"
    members: tuple[Member, ...]
    build: Build = field(repr=False)

    @cached_property
    def _by_name(self) -> dict[str, Member]:
        return {m.name: m for m in self.members}

    def member(self, name: str) -> Member:
        try:
            return self._by_name[name]
        except KeyError:
            raise LayoutError(f"{self.name} has no member {name} in build {self.build.label}") from None

    def has_member(self, name: str) -> bool:
        return name in self._by_name

    @cached_property
    def top_level(self) -> tuple[Member, ...]:
        """The members ``dt`` lists, in offset order."""
        return tuple(m for m in self.members if m.is_top_level)

    def children(self, parent: str) -> tuple[Member, ...]:
        """Members of the named member `parent` of anonymous type (``u`` -> ``u.LowPart``)."""
        prefix = parent + "."
        depth = parent.count(".") + 1
        return tuple(m for m in self.members
                     if m.name.startswith(prefix) and m.name.count(".") == depth)

    def member_size(self, m: Member) -> int:
        """Bytes `m` occupies: its type's size or, where the data has no layout
        for its type, the room up to the next member at a higher offset."""
        size = self.build.sizeof(m.type)
        if size is not None:
            return size
        parent = m.name.rpartition(".")[0]
        siblings = self.children(parent) if parent else self.top_level
        following = [s.offset for s in siblings if s.offset > m.offset]
        if following:
            return min(following) - m.offset
        if parent:  # the last member of an anonymous member ends where that member ends
            outer = self.member(parent)
            return outer.offset + self.member_size(outer) - m.offset
        return self.size - m.offset


@dataclass(eq=False)
class Build:
    """The layouts of one Windows kernel build for one architecture."""

    id: str
    arch: str
    name: str
    source: str
    source_format: str
    licence: str
    bit_positions: str  # "exact" | "derived" | "partly inferred"
    pdb_guid: str | None
    pdb_age: int | None
    notes: str
    _struct_index: dict[str, int] = field(repr=False)
    _defs: list = field(repr=False)
    _structs: dict[str, StructLayout] = field(default_factory=dict, repr=False)  # parsed lazily
    # structures taken from the supplement, not from this build's source
    supplemented: frozenset[str] = field(default=frozenset(), repr=False)
    supplement_source: str = field(default="", repr=False)

    @property
    def label(self) -> str:
        return f"{self.id} {self.arch}"

    @property
    def pointer_size(self) -> int:
        return POINTER_SIZES[self.arch]

    @property
    def struct_names(self) -> list[str]:
        return sorted(self._struct_index)

    @cached_property
    def _casefold(self) -> dict[str, str]:
        return {n.casefold(): n for n in self._struct_index}

    def has_struct(self, name: str) -> bool:
        return name.casefold() in self._casefold

    def struct_source(self, name: str) -> str:
        """Where the layout of `name` comes from: the supplement's source for a
        supplementary structure, else the build's own."""
        supplemented = self.struct(name).name in self.supplemented
        return self.supplement_source if supplemented else self.source

    def struct(self, name: str) -> StructLayout:
        """The layout of `name` (case-insensitive, like WinDbg; ``nt!`` optional)."""
        if name.casefold().startswith("nt!"):
            name = name[3:]
        canonical = self._casefold.get(name.casefold())
        if canonical is None:
            hint = ""
            if self.has_struct("_" + name):
                hint = f" (did you mean _{self._casefold[('_' + name).casefold()][1:]}?)"
            raise LayoutError(f"unknown type {name} in build {self.label}{hint}")
        layout = self._structs.get(canonical)
        if layout is None:
            size, kind, raw = self._defs[self._struct_index[canonical]]
            members = tuple(Member(n, off, parse_type(t), bp, bl, fl) for n, off, t, bp, bl, fl in raw)
            layout = self._structs[canonical] = StructLayout(canonical, size, kind, members, self)
        return layout

    def sizeof(self, t: TypeRef) -> int | None:
        """Size of `t` in bytes on this build, or None when the data cannot tell."""
        if t.kind == "base":
            return BASE_SIZES.get(t.name)
        if t.kind == "pointer":
            return self.pointer_size
        if t.kind == "array":
            elem = self.sizeof(t.target)
            return None if elem is None else elem * t.count
        if t.kind == "struct" and self.has_struct(t.name):
            return self.struct(t.name).size
        return None


class Catalogue:
    """Every shipped build, each with the supplementary structures its data lacks."""

    def __init__(self, data: dict, supplement: dict | None = None) -> None:
        defs = list(data["structs"])
        extra: dict[str, dict[str, int]] = {}  # arch -> supplementary struct -> index in defs
        for arch, structs in (supplement or {}).get("structs", {}).items():
            for name, definition in structs.items():
                extra.setdefault(arch, {})[name] = len(defs)
                defs.append(definition)
        source = (supplement or {}).get("source", "")
        self.builds: list[Build] = []
        for b in data["builds"]:
            own = b["structs"]
            added = {n: i for n, i in extra.get(b["arch"], {}).items() if n not in own}
            self.builds.append(Build(
                id=b["id"], arch=b["arch"], name=b["name"], source=b["source"],
                source_format=b["source_format"], licence=b["licence"],
                bit_positions=b["bit_positions"], pdb_guid=b["pdb_guid"], pdb_age=b["pdb_age"],
                notes=b["notes"], _struct_index={**own, **added} if added else own, _defs=defs,
                supplemented=frozenset(added), supplement_source=source if added else ""))

    def find(self, build: str | None = None, arch: str | None = None) -> Build:
        """Resolve a user's build designation.

        `build` may be the full version (``10.0.19041.3570``), the part after
        ``10.0.`` (``19041.3570``), a build number alone (``19041``: the newest
        shipped revision of it) or a kernel PDB GUID. With no `build`, the default
        (Windows 10 22H2 x64). With no `arch`, x64 where the build has it, else x86.
        """
        if arch is not None and arch not in POINTER_SIZES:
            raise LayoutError(f"unknown architecture {arch} (use x64 or x86)")
        wanted = build or DEFAULT_BUILD
        key = wanted.strip().upper()
        candidates = [b for b in self.builds
                      if b.id == wanted or b.id.endswith("." + wanted)
                      or (b.pdb_guid and b.pdb_guid.upper() == key)]
        if not candidates:  # a build number alone: the newest revision of it
            candidates = [b for b in self.builds if ("." + wanted + ".") in (b.id + ".")
                          and wanted.isdigit() and len(wanted) >= 4]
        if not candidates:
            raise LayoutError(f"unknown build {wanted} (see 'koi layouts')")
        if arch is not None:
            matching = [b for b in candidates if b.arch == arch]
            if not matching:
                have = ", ".join(sorted({b.arch for b in candidates}))
                raise LayoutError(f"build {wanted} is not shipped for {arch} (only {have})")
            candidates = matching
        elif any(b.arch == DEFAULT_ARCH for b in candidates):
            candidates = [b for b in candidates if b.arch == DEFAULT_ARCH]
        return max(candidates, key=lambda b: _version_key(b.id))


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in version.split(".") if p.isdigit())


LAYOUTS_FILE = "layouts/layouts.json.gz"
SUPPLEMENT_FILE = "layouts/supplement.json"


@cache
def catalogue() -> Catalogue:
    """The shipped layouts with their supplement, loaded once per process."""
    path: Path = resource_path(LAYOUTS_FILE)
    with gzip.open(path, "rb") as fh:
        data = json.loads(fh.read())
    supplement = json.loads(resource_path(SUPPLEMENT_FILE).read_text(encoding="utf-8"))
    return Catalogue(data, supplement)

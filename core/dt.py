"""WinDbg's ``dt nt!TYPE`` text for a structure of a shipped build."""

from __future__ import annotations

from core.layouts import Build, Member, StructLayout


def format_dt(build: Build, type_name: str, depth: int = 0) -> str:
    """Exactly what WinDbg prints for ``dt nt!TYPE`` (``dt -rN`` with `depth`).

    One line per member in offset order: ``   +0x%03x %-16s : TYPE``. Members of
    named members of anonymous type (``u.LowPart``) are listed only when
    recursing, as WinDbg does. With `depth` N, embedded structures (and those
    anonymous members) are expanded N levels, indented three more spaces each,
    with offsets relative to the enclosing member. Raises LayoutError for an
    unknown type.
    """
    layout = build.struct(type_name)
    lines = [f"nt!{layout.name}"]
    _member_lines(build, layout, layout.top_level, 0, "   ", depth, lines)
    return "\n".join(lines)


def _member_lines(build: Build, layout: StructLayout, members: tuple[Member, ...], base: int,
                  indent: str, depth: int, out: list[str]) -> None:
    for m in members:
        out.append(f"{indent}+0x{m.offset - base:03x} {m.name.rpartition('.')[2]:<16} : "
                   f"{m.spell(build.arch)}")
        if depth <= 0 or m.is_bitfield:
            continue
        if m.type.kind == "anonymous":
            _member_lines(build, layout, layout.children(m.name), m.offset, indent + "   ",
                          depth - 1, out)
        elif m.type.kind == "struct" and build.has_struct(m.type.name):
            nested = build.struct(m.type.name)
            _member_lines(build, nested, nested.top_level, 0, indent + "   ", depth - 1, out)

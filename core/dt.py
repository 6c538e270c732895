"""WinDbg's ``dt nt!TYPE`` text for a structure of a shipped build."""

from __future__ import annotations

from core.layouts import Build


def format_dt(build: Build, type_name: str) -> str:
    """Exactly what WinDbg prints for ``dt nt!TYPE`` (no trailing newline).

    One line per member in offset order: ``   +0x%03x %-16s : TYPE``; members
    of named members of anonymous type (``u.LowPart``) are not listed, as in
    WinDbg without ``-r``. Raises LayoutError for an unknown type.
    """
    layout = build.struct(type_name)
    lines = [f"nt!{layout.name}"]
    lines += [f"   +0x{m.offset:03x} {m.name:<16} : {m.spell(build.arch)}" for m in layout.top_level]
    return "\n".join(lines)

"""Convert the research layout files into the compact file KOI ships.

Developer tool, run by hand when the layout data changes:

    python packaging/import_layouts.py ../shared/layouts resources/layouts/layouts.json.gz

It reads the per-build JSON files (three source dialects: Volatility ISF from
JPCERT/CC, Vergilius headers, ntoskrnlib C#), normalises every member type into
one arch-neutral spelling close to WinDbg's (``Ptr _EJOB``, ``[16] UChar``,
``Ptr Fn void``), fills types a source did not record from the nearest build
that did (flagged), de-duplicates identical structures across builds and writes
one gzip-compressed JSON file.  KOI never reads the research files at run time.
"""

from __future__ import annotations

import gzip
import json
import re
import sys
from pathlib import Path

FORMAT_VERSION = 1

# Base type spellings per source dialect -> WinDbg's spelling.
_BASES = {
    "isf": {
        "void": "Void", "char": "Char", "unsigned char": "UChar", "short": "Int2B",
        "unsigned short": "Uint2B", "long": "Int4B", "unsigned long": "Uint4B",
        "int": "Int4B", "unsigned int": "Uint4B", "long long": "Int8B",
        "unsigned long long": "Uint8B", "wchar": "Wchar", "float": "Float", "double": "Double",
        "bool": "Bool",
    },
    "vergilius": {
        "VOID": "Void", "CHAR": "Char", "UCHAR": "UChar", "SHORT": "Int2B", "USHORT": "Uint2B",
        "LONG": "Int4B", "ULONG": "Uint4B", "LONGLONG": "Int8B", "ULONGLONG": "Uint8B",
        "WCHAR": "Wchar", "FLOAT": "Float", "DOUBLE": "Double",
    },
    # C#: long/ulong are 64-bit, char is UTF-16.
    "ntoskrnlib": {
        "byte": "UChar", "sbyte": "Char", "short": "Int2B", "ushort": "Uint2B", "int": "Int4B",
        "uint": "Uint4B", "long": "Int8B", "ulong": "Uint8B", "char": "Wchar",
        "float": "Float", "double": "Double",
    },
}
# Return types of function pointers, as WinDbg spells them after "Ptr64     ".
_RETURNS = {"VOID": "void", "LONG": "long", "UCHAR": "unsigned char", "ULONG": "unsigned long"}

UNKNOWN = "?"  # a pointer target / function return the source did not record

# Windows release names, by kernel version prefix (most specific first).
_NAMES = [
    ("5.1.2600", "Windows XP SP3"),
    ("5.2.3790", "Windows Server 2003 SP2 / XP x64"),
    ("6.0.6000", "Windows Vista RTM"),
    ("6.0.6001", "Windows Vista SP1 / Server 2008"),
    ("6.0.6002", "Windows Vista SP2 / Server 2008 SP2"),
    ("6.1.7600", "Windows 7 RTM"),
    ("6.1.7601", "Windows 7 SP1 / Server 2008 R2 SP1"),
    ("6.2.9200", "Windows 8 / Server 2012"),
    ("6.3.9600", "Windows 8.1 / Server 2012 R2"),
    ("10.0.10240", "Windows 10 1507"),
    ("10.0.10586", "Windows 10 1511"),
    ("10.0.14393", "Windows 10 1607 / Server 2016"),
    ("10.0.15063", "Windows 10 1703"),
    ("10.0.16299", "Windows 10 1709"),
    ("10.0.17134", "Windows 10 1803"),
    ("10.0.17763", "Windows 10 1809 / Server 2019"),
    ("10.0.18362", "Windows 10 1903"),
    ("10.0.19041.264", "Windows 10 2004"),
    ("10.0.19041.508", "Windows 10 2004 / 20H2"),
    ("10.0.19041.928", "Windows 10 20H2 / 21H1"),
    ("10.0.19041.1288", "Windows 10 21H1 / 21H2"),
    ("10.0.19041.3570", "Windows 10 22H2"),
    ("10.0.19045", "Windows 10 22H2"),
    ("10.0.20348", "Windows Server 2022"),
    ("10.0.22000", "Windows 11 21H2"),
    ("10.0.22621", "Windows 11 22H2"),
    ("10.0.22631", "Windows 11 23H2"),
    ("10.0.26100", "Windows 11 24H2 / Server 2025"),
]

_LICENCES = {
    "isf": "BSD-3-Clause (JPCERTCC/Windows-Symbol-Tables)",
    "vergilius": "Apache-2.0 (novafacing/vergilius-rs; data from vergiliusproject.com)",
    "ntoskrnlib": "MIT (Rickebo/ntoskrnlib)",
}
_BIT_POSITIONS = {"isf": "exact", "vergilius": "derived", "ntoskrnlib": "partly inferred"}


def dialect_of(path: Path) -> str:
    if path.name.startswith("vergilius_"):
        return "vergilius"
    if "ntoskrnlib" in path.name:
        return "ntoskrnlib"
    return "isf"


def windows_name(version: str) -> str:
    for prefix, name in _NAMES:
        if version == prefix or version.startswith(prefix + "."):
            return name
    raise ValueError(f"no Windows name known for {version}")


_FN_RE = re.compile(r"^(\w+) \(\*\)\(.*\)$")


def canonical_type(raw: str, dialect: str) -> str:
    """One source type spelling -> KOI's arch-neutral WinDbg-like spelling."""
    t = raw.strip()
    if t.startswith("IntPtr"):  # ntoskrnlib: a pointer whose target was not recorded
        m = re.fullmatch(r"IntPtr(?: \(.*\))?((?:\[\d+\])*)", t)
        dims = re.findall(r"\[(\d+)\]", m.group(1))
        return "".join(f"[{d}] " for d in dims) + "Ptr " + UNKNOWN
    if t.startswith("anonymous struct/union"):
        return "<unnamed-tag>"
    t = t.replace("volatile", "").strip()
    m = _FN_RE.match(t)
    if m:
        return "Ptr Fn " + _RETURNS[m.group(1)]
    dims = []
    while t.endswith("]"):
        t, _, d = t[:-1].rpartition("[")
        dims.insert(0, int(d))
        t = t.strip()
    stars = len(t) - len(t.rstrip("*"))
    t = t.rstrip("*").strip()
    if t == "function":  # ISF: function pointer, return type not recorded
        base, stars = "Fn " + UNKNOWN, stars  # 'function*' -> Ptr Fn ?
    elif t in ("struct <anonymous>", "union <anonymous>"):
        base = "<unnamed-tag>"
    elif t.startswith("struct ") or t.startswith("union "):
        base = t.split(" ", 1)[1]
    elif t.startswith("_") or t == "LIST_ENTRY32":
        base = t
    else:
        base = _BASES[dialect][t]
    return "".join(f"[{d}] " for d in dims) + "Ptr " * stars + base


def _has_unknown(t: str) -> bool:
    return t.endswith(UNKNOWN)


def _compatible(unknown: str, candidate: str) -> bool:
    """Can `candidate` fill the unrecorded part of `unknown`?"""
    if _has_unknown(candidate):
        return False
    # e.g. "[3] Ptr " or "Ptr Fn "; "Ptr ?" also takes "Ptr Fn void" (C# records
    # function pointers as IntPtr too)
    return candidate.startswith(unknown[: -len(UNKNOWN)])


def _version_key(v: str) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", v)[:4])


def _declaration_order(builds: list[dict]) -> None:
    """Order members that share an offset as they were declared.

    ISF keeps members in a name-keyed map, so members at one offset (union
    arms, bitfields) lose their declaration order, which WinDbg shows. Vergilius
    headers keep it: where the nearest Vergilius build of the same arch has the
    very same members at an offset, take its order; bitfields otherwise follow
    their bit positions after the member they share storage with.
    """
    vergilius = [b for b in builds if b["source_format"].startswith("C header")]
    for b in builds:
        if b in vergilius:
            continue
        here = _version_key(b["id"])
        refs = sorted((v for v in vergilius if v["arch"] == b["arch"]),
                      key=lambda v: (abs(_version_key(v["id"])[2] - here[2]),
                                     -_version_key(v["id"])[2]))
        for sname, sdef in b["structs"].items():
            fields = sdef[2]
            groups: dict[tuple[str, int], list] = {}
            for f in fields:
                groups.setdefault((f[0].rpartition(".")[0], f[1]), []).append(f)
            rank: dict[str, int] = {}
            for key, group in groups.items():
                names = {f[0] for f in group}
                for v in refs:
                    vfields = v["structs"].get(sname, (0, 0, []))[2]
                    vnames = [f[0] for f in vfields
                              if f[1] == key[1] and f[0].rpartition(".")[0] == key[0]]
                    if set(vnames) == names:
                        rank.update((n, i) for i, n in enumerate(vnames))
                        break
                else:
                    ordered = sorted(group, key=lambda f: (f[3] is not None, f[3] or 0))
                    rank.update((f[0], i) for i, f in enumerate(ordered))
            fields.sort(key=lambda f: (f[1], rank[f[0]]))


def convert(src: Path) -> dict:
    files = sorted(p for p in src.glob("*.json")
                   if p.name not in ("MANIFEST.json", "index_jpcert_all_x64_builds.json"))
    builds = []
    for path in files:
        d = json.loads(path.read_text())
        dialect = dialect_of(path)
        version = d["build"]
        if dialect == "ntoskrnlib":
            version = re.match(r"[\d.]+\d", version).group(0)  # "10.0.26100.x (...)" -> "10.0.26100"
        structs = {}
        for sname, s in d["structs"].items():
            fields = []
            for f in s["fields"]:
                flags = ""
                if f.get("bitfield_inferred_from"):
                    flags += "B"
                if f.get("possibly_bitfield_positions_unknown"):
                    flags += "U"
                bit = f["bitfield"] or (None, None)
                fields.append([f["name"], f["offset"], canonical_type(f["type"], dialect),
                               bit[0], bit[1], flags])
            structs[sname] = [s["size"], s["kind"], fields]
        pdb = d.get("pdb") or {}
        builds.append({
            "id": version, "arch": d["arch"], "name": windows_name(version),
            "source": d["source"], "source_format": d["source_format"],
            "licence": _LICENCES[dialect], "bit_positions": _BIT_POSITIONS[dialect],
            "pdb_guid": pdb.get("guid"), "pdb_age": pdb.get("age"),
            "notes": d.get("notes", ""), "research_file": path.name, "structs": structs,
        })

    # Fill unrecorded pointer targets / return types from the nearest build of the
    # same arch that recorded the same member (nearest by version, newer first on ties).
    for b in builds:
        inferred = 0
        here = _version_key(b["id"]) + (0,)

        def distance(o: dict) -> tuple[int, ...]:
            there = _version_key(o["id"]) + (0,)
            return (abs(there[2] - here[2]), -there[2], -there[3])

        others = sorted((o for o in builds if o is not b and o["arch"] == b["arch"]),
                        key=distance)
        for sname, (_, _, fields) in b["structs"].items():
            for f in fields:
                if not _has_unknown(f[2]):
                    continue
                for o in others:
                    cand = next((g[2] for g in o["structs"].get(sname, (0, 0, []))[2]
                                 if g[0] == f[0]), None)
                    if cand and _compatible(f[2], cand):
                        f[2] = cand
                        f[5] += "T"
                        inferred += 1
                        break
        if inferred:
            b["notes"] += (f" KOI filled {inferred} member types the source did not record "
                           "(pointer targets, function return types) from the nearest build "
                           "that recorded the same member; such members are flagged.")

    _declaration_order(builds)

    # De-duplicate identical structures across builds.
    defs: list = []
    index: dict[str, int] = {}
    for b in builds:
        for sname, sdef in list(b["structs"].items()):
            key = json.dumps(sdef, separators=(",", ":"))
            if key not in index:
                index[key] = len(defs)
                defs.append(sdef)
            b["structs"][sname] = index[key]
    builds.sort(key=lambda b: (_version_key(b["id"]), b["arch"]))
    return {"format": FORMAT_VERSION, "builds": builds, "structs": defs}


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    data = convert(Path(argv[1]))
    raw = json.dumps(data, separators=(",", ":")).encode()
    out = Path(argv[2])
    tmp = out.with_suffix(out.suffix + ".tmp")
    tmp.write_bytes(gzip.compress(raw, compresslevel=9, mtime=0))  # reproducible bytes
    tmp.replace(out)
    unknown = sum(1 for s in data["structs"] for f in s[2] if f[2].endswith(UNKNOWN))
    print(f"{len(data['builds'])} builds, {len(data['structs'])} distinct structures, "
          f"{len(raw)} bytes JSON, {out.stat().st_size} bytes gzip, "
          f"{unknown} members still of unrecorded type")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

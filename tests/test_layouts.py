"""The shipped structure layouts and WinDbg-exact dt text."""

import re

import pytest

from core.dt import format_dt
from core.layouts import LayoutError, catalogue, parse_type

DT_LINE = re.compile(r"^(?P<indent>(?:   )+)\+0x(?P<off>[0-9a-f]{3,}) (?P<name>\S+) *: (?P<type>.+)$")

# Builds the foundation issue names, as (id, arch, Windows name fragment).
REQUIRED = [
    ("5.1.2600.5512", "x86", "XP SP3"),
    ("5.2.3790.3959", "x64", "Server 2003"),
    ("6.0.6002.18005", "x86", "Vista SP2"),
    ("6.0.6002.18005", "x64", "Vista SP2"),
    ("6.1.7601.17514", "x86", "7 SP1"),
    ("6.1.7601.17514", "x64", "7 SP1"),
    ("6.1.7601.24540", "x64", "7 SP1"),
    ("6.2.9200.16384", "x64", "Windows 8"),
    ("6.3.9600.20237", "x64", "8.1"),
    ("10.0.10240.16384", "x64", "1507"),
    ("10.0.14393.6343", "x64", "1607"),
    ("10.0.17763.5933", "x64", "1809"),
    ("10.0.18362.836", "x64", "1903"),
    ("10.0.19041.3570", "x64", "22H2"),
    ("10.0.19045.2965", "x86", "22H2"),
    ("10.0.20348.2529", "x64", "Server 2022"),
    ("10.0.22000.2538", "x64", "21H2"),
    ("10.0.22621.382", "x64", "22H2"),
    ("10.0.22631.2428", "x64", "23H2"),
    ("10.0.26100", "x64", "24H2"),
]


@pytest.fixture(scope="module")
def win10():
    return catalogue().find("10.0.19041.3570", "x64")


@pytest.mark.parametrize("build_id,arch,name", REQUIRED)
def test_required_builds_are_shipped(build_id, arch, name):
    build = catalogue().find(build_id, arch)
    assert (build.id, build.arch) == (build_id, arch)
    assert name in build.name
    for struct in ("_EPROCESS", "_KPROCESS", "_ETHREAD", "_KTHREAD", "_EJOB", "_PEB", "_TEB"):
        assert build.has_struct(struct)


def test_build_identity_and_exactness():
    builds = {(b.id, b.arch): b for b in catalogue().builds}
    assert builds["10.0.19041.3570", "x64"].pdb_guid == "606FF669409B00F7FC8C61A9C1670129"
    assert builds["10.0.19041.3570", "x64"].bit_positions == "exact"
    assert builds["5.1.2600.5512", "x86"].bit_positions == "derived"
    assert builds["10.0.26100", "x64"].bit_positions == "partly inferred"
    assert all(b.source and b.licence for b in builds.values())


def test_find_accepts_the_ways_users_name_builds():
    cat = catalogue()
    assert cat.find().label == "10.0.19041.3570 x64"
    assert cat.find("19041.3570").label == "10.0.19041.3570 x64"
    assert cat.find("606ff669409b00f7fc8c61a9c1670129").label == "10.0.19041.3570 x64"
    assert cat.find("19041").label == "10.0.19041.3570 x64"  # newest revision shipped
    assert cat.find("19041", "x86").label == "10.0.19041.1288 x86"
    assert cat.find("5.1.2600.5512").arch == "x86"  # XP ships only for x86
    assert cat.find("26100").id == "10.0.26100"


@pytest.mark.parametrize("build,arch,message", [
    ("1.2.3", None, "unknown build 1.2.3"),
    ("10.0.22631.2428", "x86", "not shipped for x86"),
    (None, "arm64", "unknown architecture arm64"),
])
def test_find_rejects_with_one_clear_line(build, arch, message):
    with pytest.raises(LayoutError, match=message) as err:
        catalogue().find(build, arch)
    assert "\n" not in str(err.value)


def test_unknown_type_names_the_build_and_suggests(win10):
    with pytest.raises(LayoutError) as err:
        format_dt(win10, "EPROCESS")
    assert str(err.value) == ("unknown type EPROCESS in build 10.0.19041.3570 x64 "
                              "(did you mean _EPROCESS?)")
    with pytest.raises(LayoutError, match="unknown type _NOPE"):
        format_dt(win10, "_NOPE")


def test_type_names_are_case_insensitive_with_optional_module(win10):
    assert format_dt(win10, "nt!_eprocess") == format_dt(win10, "_EPROCESS")


# Lines as WinDbg prints them for dt nt!_EPROCESS on Windows 10 19041 x64
# (checked against a captured kernel-debugger session).
EPROCESS_19041_LINES = """\
nt!_EPROCESS
   +0x000 Pcb              : _KPROCESS
   +0x438 ProcessLock      : _EX_PUSH_LOCK
   +0x440 UniqueProcessId  : Ptr64 Void
   +0x448 ActiveProcessLinks : _LIST_ENTRY
   +0x458 RundownProtect   : _EX_RUNDOWN_REF
   +0x460 Flags2           : Uint4B
   +0x460 JobNotReallyActive : Pos 0, 1 Bit
   +0x460 AccountingFolded : Pos 1, 1 Bit""".splitlines()

EPROCESS_19041_SOME = [
    "   +0x460 DefaultPagePriority : Pos 12, 3 Bits",
    "   +0x468 CreateTime       : _LARGE_INTEGER",
    "   +0x470 ProcessQuotaUsage : [2] Uint8B",
    "   +0x4b0 ExceptionPortData : Ptr64 Void",
    "   +0x4b0 ExceptionPortValue : Uint8B",
    "   +0x4b0 ExceptionPortState : Pos 0, 3 Bits",
    "   +0x4b8 Token            : _EX_FAST_REF",
    "   +0x510 Job              : Ptr64 _EJOB",
    "   +0x5a8 ImageFileName    : [15] UChar",
    "   +0x5b7 PriorityClass    : UChar",
    "   +0x5e0 ThreadListHead   : _LIST_ENTRY",
    "   +0x87a Protection       : _PS_PROTECTION",
    "   +0x920 LastAppStateUptime : Pos 0, 61 Bits",
    "   +0x9d0 MitigationFlagsValues : <unnamed-tag>",
    "   +0xa28 PathRedirectionHashes : Ptr64 Uint4B",
]


def test_eprocess_19041_is_windbg_text(win10):
    lines = format_dt(win10, "_EPROCESS").splitlines()
    assert lines[: len(EPROCESS_19041_LINES)] == EPROCESS_19041_LINES
    for line in EPROCESS_19041_SOME:
        assert line in lines
    # 235 lines as WinDbg lists them; the data's other 64 members belong to the two
    # anonymous-type members and print with -r1, at the data's offsets.
    assert len(lines) - 1 == 235
    layout = win10.struct("_EPROCESS")
    assert len(layout.members) == 299
    recursive = format_dt(win10, "_EPROCESS", depth=1).splitlines()
    nested = [ln for ln in recursive if ln.startswith("      +0x")]
    flags_values = layout.children("MitigationFlagsValues") + layout.children("MitigationFlags2Values")
    assert len(flags_values) == 64
    for member in flags_values:
        short = member.name.rpartition(".")[2]
        assert any(re.match(rf"      \+0x000 {short} +: Pos {member.bit_position}, ", ln)
                   for ln in nested), member.name


def test_x86_prints_ptr32_and_x86_offsets():
    xp = catalogue().find("5.1.2600.5512", "x86")
    text = format_dt(xp, "_EPROCESS")
    assert "   +0x084 UniqueProcessId  : Ptr32 Void" in text.splitlines()
    assert "Ptr64" not in text


def test_function_pointers_and_unions(win10):
    lines = format_dt(win10, "_KAPC").splitlines()
    assert "   +0x020 KernelRoutine    : Ptr64     void " in lines
    assert "   +0x020 Reserved         : [3] Ptr64 Void" in lines
    li = format_dt(win10, "_LARGE_INTEGER").splitlines()
    assert li == ["nt!_LARGE_INTEGER", "   +0x000 LowPart          : Uint4B",
                  "   +0x000 u                : <unnamed-tag>", "   +0x000 QuadPart         : Int8B",
                  "   +0x004 HighPart         : Int4B"]


def test_recursion_expands_embedded_structs_relative(win10):
    lines = format_dt(win10, "_KPROCESS", depth=1).splitlines()
    assert lines[1] == "   +0x000 Header           : _DISPATCHER_HEADER"
    assert lines[2] == "      +0x000 Lock             : Int4B"
    assert "   +0x018 ProfileListHead  : _LIST_ENTRY" in lines
    assert "      +0x000 Flink            : Ptr64 _LIST_ENTRY" in lines
    # depth 1 stops there: no third level of indentation
    assert not any(ln.startswith("         +0x") for ln in lines)


def test_every_struct_of_every_build_prints():
    total = 0
    for build in catalogue().builds:
        for name in build.struct_names:
            layout = build.struct(name)
            lines = format_dt(build, name).splitlines()
            assert lines[0] == f"nt!{name}"
            assert len(lines) - 1 == len(layout.top_level)
            offsets = []
            for line in lines[1:]:
                m = DT_LINE.match(line)
                assert m, (build.label, name, line)
                offsets.append(int(m["off"], 16))
                assert ("Ptr32 " if build.arch == "x64" else "Ptr64 ") not in m["type"]
            assert offsets == sorted(offsets)
            assert all(o < max(layout.size, 1) for o in offsets)
            total += 1
    assert total > 2000


def test_members_fit_in_their_struct():
    for build in catalogue().builds:
        for name in build.struct_names:
            layout = build.struct(name)
            for m in layout.members:
                size = build.sizeof(m.type)
                if size is not None and not m.is_bitfield:
                    assert m.offset + size <= layout.size, (build.label, name, m.name)
                if m.is_bitfield:
                    storage = build.sizeof(m.type) or 8
                    assert m.bit_position + m.bit_length <= storage * 8, (build.label, name, m.name)


def test_24h2_unrecorded_parts_are_flagged_not_invented():
    build = catalogue().find("26100")
    eprocess = build.struct("_EPROCESS")
    filled = [m for m in eprocess.members if "T" in m.flags]
    assert filled and all(m.type.kind == "pointer" for m in filled)
    maybe_bits = [m for m in eprocess.members if "U" in m.flags]
    assert maybe_bits and not any(m.is_bitfield for m in maybe_bits)
    kprocess = build.struct("_KPROCESS")
    assert kprocess.member("Affinity").type.spell("x64") == "Ptr64 <type not recorded>"


@pytest.mark.parametrize("spelling,x64,x86", [
    ("Ptr _EJOB", "Ptr64 _EJOB", "Ptr32 _EJOB"),
    ("[15] UChar", "[15] UChar", "[15] UChar"),
    ("[2] Ptr _KAPC_STATE", "[2] Ptr64 _KAPC_STATE", "[2] Ptr32 _KAPC_STATE"),
    ("Ptr Ptr Void", "Ptr64 Ptr64 Void", "Ptr32 Ptr32 Void"),
    ("Ptr Fn void", "Ptr64     void ", "Ptr32     void "),
    ("<unnamed-tag>", "<unnamed-tag>", "<unnamed-tag>"),
])
def test_type_spelling(spelling, x64, x86):
    t = parse_type(spelling)
    assert t.spell("x64") == x64
    assert t.spell("x86") == x86

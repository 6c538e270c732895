"""core/memory.py: objects laid out by real builds, read back, walked and re-laid out."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.layouts import catalogue
from core.memory import (AddressSpace, BadValueError, KernelMemoryError, PathError, UnmappedError,
                         iter_fields, resolve)
from core.values import (ENUM_MEMBERS, ENUM_TYPES, KWAIT_REASON, FastRef, Ref, UnicodeString,
                         enum_of, format_filetime, to_filetime)

ROUND_TRIP_BUILDS = [
    ("10.0.19041.3570", "x64"),
    ("5.1.2600.5512", "x86"),
    ("6.1.7601.17514", "x86"),
    ("10.0.26100", "x64"),
    ("10.0.22631.2428", "x64"),
]
WHEN = datetime(2024, 5, 1, 12, 30, 15, 123456, tzinfo=timezone.utc)


def build(version: str, arch: str):
    return catalogue().find(version, arch)


@pytest.fixture
def x64():
    return AddressSpace(build("10.0.19041.3570", "x64"))


def machine(space: AddressSpace, names=("System", "Registry", "smss.exe")):
    """PsActiveProcessHead and a few processes on it, as a simulation would make them."""
    head = space.create_global("PsActiveProcessHead", "_LIST_ENTRY")
    processes = space.new_list(head, "", "_EPROCESS", "ActiveProcessLinks")
    procs = []
    for i, name in enumerate(names):
        p = space.create("_EPROCESS", {"UniqueProcessId": 4 * (i + 1), "ImageFileName": name.encode(),
                                       "Pcb.Header.Type": 3}, label=name)
        processes.append(p)
        procs.append(p)
    return head, processes, procs


# --- address space ----------------------------------------------------------------

def test_x64_pool_addresses_are_canonical_aligned_and_after_unmodelled_headers(x64):
    objs = [x64.create("_EPROCESS"), x64.create("_ETHREAD"), x64.create("_EJOB")]
    for obj in objs:
        assert obj.address >> 40 == 0xFFFFB8  # nonpaged-pool-like, sign-extended canonical
        assert obj.address % 16 == 0
        pool = x64.locate(obj.address - 0x40)
        header = x64.locate(obj.address - 0x30)
        assert (pool.region, pool.modelled, pool.object) == ("POOL_HEADER", False, obj)
        assert (header.region, header.modelled) == ("OBJECT_HEADER", False)
        assert "not modelled" in str(header)
        assert x64.read(obj.address - 0x40, 0x40) == bytes(0x40)  # never invented
    assert objs[0].address < objs[1].address < objs[2].address


def test_allocation_is_deterministic():
    spaces = [AddressSpace(build("10.0.19041.3570", "x64")) for _ in range(2)]
    addresses = []
    for space in spaces:
        _, _, procs = machine(space)
        thread = space.create("_ETHREAD", process=procs[0])
        peb = space.create("_PEB", process=procs[1])
        addresses.append([o.address for o in procs + [thread, peb]])
    assert addresses[0] == addresses[1]


def test_x86_uses_four_byte_pointers_and_8xxxxxxx_addresses():
    space = AddressSpace(build("5.1.2600.5512", "x86"))
    _, _, procs = machine(space)
    for p in procs:
        assert 0x80000000 <= p.address < 0xFFFFFFFF
        assert p.address % 8 == 0
        assert space.locate(p.address - 0x18).region == "OBJECT_HEADER"
        assert space.locate(p.address - 0x20).region == "POOL_HEADER"
    field = resolve(space.build, "_EPROCESS", "Peb")
    assert field.size == 4 and field.kind == "pointer"
    node = procs[0].field("ActiveProcessLinks.Flink")
    assert len(node.raw) == 4 and node.type_name == "Ptr32 _LIST_ENTRY"
    assert node.value == procs[1].address_of("ActiveProcessLinks")
    assert space.pointer_size == 4
    assert space.format_address(procs[0].address).startswith("0x8")


def test_user_space_peb_and_tebs_on_following_pages(x64):
    proc = x64.create("_EPROCESS", label="a.exe")
    peb = x64.create("_PEB", {"ImageBaseAddress": 0x7FF6_1234_0000}, process=proc)
    tebs = [x64.create("_TEB", {"ProcessEnvironmentBlock": peb}, process=proc) for _ in range(3)]
    assert peb.address % 0x1000 == 0 and peb.address < 0x0000_0100_0000_0000
    assert [t.address - peb.address for t in tebs] == [0x1000, 0x3000, 0x5000]  # 0x1838-byte TEBs
    assert tebs[2].field("ProcessEnvironmentBlock").target.object is peb
    with pytest.raises(UnmappedError, match="process context"):
        x64.read(peb.address, 8)
    assert x64.read(peb.address + 0x10, 8, process=proc) == (0x7FF6_1234_0000).to_bytes(8, "little")
    x64.free(tebs[1])
    again = x64.create("_TEB", process=proc)
    assert again.address == peb.address + 0x3000  # the freed TEB page is reused
    with pytest.raises(KernelMemoryError, match="process="):
        x64.create("_PEB")


def test_x86_peb_at_7ffdx000_with_tebs_below():
    space = AddressSpace(build("6.1.7601.17514", "x86"))
    proc = space.create("_EPROCESS")
    peb = space.create("_PEB", process=proc)
    teb = space.create("_TEB", process=proc)
    assert peb.address & 0xFFFF0FFF == 0x7FFD0000
    assert teb.address == peb.address - 0x1000


def test_read_spans_objects_and_reports_unmapped(x64):
    _, _, procs = machine(x64)
    a, b = procs[0], procs[1]
    data = x64.read(a.address, b.address + 8 - a.address)
    assert data[:a.size] == a.bytes()
    assert data[-8:] == b.bytes()[:8]
    assert data[a.size:b.address - a.address] == bytes(b.address - a.address - a.size)
    with pytest.raises(UnmappedError) as info:
        x64.read(0xFFFFB80C_00000000, 16)
    assert info.value.address == 0xFFFFB80C_00000000
    with pytest.raises(UnmappedError, match="canonical"):
        x64.read(0x0000_9000_0000_0000, 8)
    assert x64.locate(0xFFFFB80C_00000000) is None
    assert not x64.is_mapped(0xFFFFB80C_00000000) and x64.is_mapped(a.address)


def test_extents_cover_a_range_for_the_hex_view(x64):
    a, b = x64.create("_EPROCESS"), x64.create("_EPROCESS")  # 0xa80-byte blocks: one a page
    start = a.address - 0x1000
    parts = x64.extents(start, b.address + 0x100 - start)
    assert parts[0].region == "unmapped" and parts[0].end == a.address - 0x40
    assert [p.region for p in parts[1:]] == ["POOL_HEADER", "OBJECT_HEADER", "body", "free",
                                             "POOL_HEADER", "OBJECT_HEADER", "body"]
    assert parts[3].start == a.address and parts[3].end == a.address + a.size and parts[3].object is a
    assert all(p.end == q.start for p, q in zip(parts, parts[1:]))
    assert parts[-1].end == b.address + 0x100


def test_locate_finds_object_and_member(x64):
    _, _, procs = machine(x64)
    p = procs[1]
    loc = x64.locate(p.address_of("ActiveProcessLinks") + 8)
    assert loc.object is p and loc.path == "ActiveProcessLinks.Blink" and loc.modelled
    loc = x64.locate(p.address_of("ActiveProcessLinks"))
    assert loc.member == "ActiveProcessLinks" and str(loc) == "_EPROCESS Registry +0x448 ActiveProcessLinks"
    loc = x64.locate(p.address_of("Pcb.Header.Type"))
    assert loc.member == "" and loc.path == "Pcb.Header.Type"  # prefers the member with a value
    assert not x64.locate(p.address_of("VirtualSize")).modelled


# --- values in, values out --------------------------------------------------------------

def semantic_values(space, peb, job, token):
    return {
        "UniqueProcessId": 0x1234,
        "InheritedFromUniqueProcessId": 4,
        "ImageFileName": b"svchost.exe",
        "CreateTime": WHEN,
        "ExitStatus": -1073741510,
        "Pcb.Header.Type": "ProcessObject",
        "Pcb.Header.SignalState": 1,
        "Pcb.BasePriority": 8,
        "Pcb.KernelTime": 1234,
        "Pcb.UserTime": 77,
        "PriorityClass": 2,
        "ActiveThreads": 3,
        "ProcessExiting": 1,
        "BreakOnTermination": 1,
        "Peb": peb,
        "Job": job,
        "Token": FastRef(token, 5),
        "Protection.Type": 1,
        "Protection.Signer": "PsProtectedSignerWinTcb",
        "Cookie": 0xDEADBEEF,
        "ReadOperationCount": 99,
        "VirtualSize": 0x12345000,
    }


def check_reads_back(obj, path, value):
    node = obj.field(path)
    assert node.modelled, path
    if isinstance(value, FastRef):
        assert node.meaning.object == value.target.address and node.meaning.refcnt == value.refcnt
        assert node.meaning.target.object is value.target
    elif hasattr(value, "address"):  # a KObject
        assert node.value == value.address and node.target.object is value
    elif isinstance(value, datetime):
        assert node.meaning == value and node.value == to_filetime(value)
    elif isinstance(value, bytes):
        assert node.value == value.ljust(node.size, b"\0")
    elif isinstance(value, str):
        assert node.enum == value
    else:
        assert node.value == value, path


@pytest.mark.parametrize("version,arch", ROUND_TRIP_BUILDS)
def test_eprocess_round_trip(version, arch):
    space = AddressSpace(build(version, arch))
    _, _, procs = machine(space, ["System"])
    proc = space.create("_EPROCESS", label="svchost.exe")
    peb = space.create("_PEB", process=proc)
    job, token = space.create("_EJOB"), space.create("_EJOB", label="token")
    written = {p: v for p, v in semantic_values(space, peb, job, token).items()
               if space.plan("_EPROCESS").try_field(p) is not None}
    assert len(written) >= 17
    proc.update(written)
    assert proc.problems() == []
    for path, value in written.items():
        check_reads_back(proc, path, value)
    # every top-level member decodes, and unwritten ones say so
    tree = proc.decode()
    assert tree.name == "_EPROCESS" and tree.size == space.plan("_EPROCESS").size
    ranges = [(f.offset, f.offset + f.size) for f in map(space.plan("_EPROCESS").field, written)]
    for node in tree.children:
        assert node.display
        if all(node.offset + node.size <= lo or node.offset >= hi for lo, hi in ranges):
            assert not node.modelled, node.path


def leaves(version, arch):
    b = build(version, arch)
    return [f for f in iter_fields(b, "_EPROCESS") if f.kind in ("int", "bits", "pointer")]


def bit_range(f):
    if f.kind == "bits":
        start = f.offset * 8 + f.bit_position
        return start, start + f.bit_length
    return f.offset * 8, (f.offset + f.size) * 8


@pytest.mark.parametrize("version,arch", ROUND_TRIP_BUILDS)
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_random_integer_members_round_trip(version, arch, data):
    fields = leaves(version, arch)
    picks = data.draw(st.lists(st.integers(0, len(fields) - 1), min_size=1, max_size=40, unique=True))
    chosen, taken = [], []
    for i in picks:  # members of one union share bits: keep those that do not overlap
        lo, hi = bit_range(fields[i])
        if all(hi <= a or lo >= b for a, b in taken):
            chosen.append(fields[i])
            taken.append((lo, hi))
    values = {}
    for f in chosen:
        if f.kind == "bits":
            values[f.path] = data.draw(st.integers(0, (1 << f.bit_length) - 1))
        elif f.signed:
            values[f.path] = data.draw(st.integers(-(1 << (f.size * 8 - 1)), (1 << (f.size * 8 - 1)) - 1))
        else:
            values[f.path] = data.draw(st.integers(0, (1 << (f.size * 8)) - 1))
    space = AddressSpace(build(version, arch))
    obj = space.create("_EPROCESS", values)
    for path, value in values.items():
        node = obj.field(path)
        assert node.value == value and node.modelled, path
    waits = [resolve(space.build, "_EPROCESS", h + ".WaitListHead")
             for h in space.plan("_EPROCESS").dispatcher_headers()]
    for f in fields:  # members nobody wrote: zeros, flagged not modelled
        lo, hi = bit_range(f)
        if f.path not in values and all(hi <= a or lo >= b for a, b in taken) \
                and not any(w.offset <= f.offset < w.offset + w.size for w in waits):
            node = obj.field(f.path)
            assert node.value == 0 and not node.modelled, f.path


def test_bitfields_set_only_their_bits(x64):
    obj = x64.create("_EPROCESS", {"Flags2": 0xFFFFFFFF, "DefaultPagePriority": 2, "InPrivate": 0})
    flags2 = obj.field("Flags2").value
    assert (flags2 >> 12) & 7 == 2 and flags2 >> 31 == 0
    assert flags2 & 0x7FFF8FFF == 0x7FFF8FFF  # every other bit as Flags2 gave it
    assert obj.field("DefaultPagePriority").display == "0y010"
    assert obj.field("JobNotReallyActive").modelled


def test_anonymous_members_and_unions(x64):
    proc = x64.create("_EPROCESS", {"MitigationFlagsValues.ControlFlowGuardEnabled": 1,
                                    "Pcb.SecureState.Flags.SecureProcess": 1, "ReadOperationCount.u.HighPart": -2})
    assert proc.field("MitigationFlags").value == 1
    group = proc.field("MitigationFlagsValues")
    assert group.kind == "anonymous" and group.type_name == "<unnamed-tag>" and group.size == 4
    assert group.children[0].name == "ControlFlowGuardEnabled" and group.children[0].value == 1
    secure = proc.field("Pcb.SecureState")
    assert sorted(c.name for c in secure.children) == ["Flags", "SecureHandle"]
    assert proc.field("Pcb.SecureState.SecureHandle").value == 1
    assert proc.field("ReadOperationCount").value == -2 << 32
    assert proc.field("ReadOperationCount.HighPart").value == -2


def test_arrays_by_index_list_and_text(x64):
    obj = x64.create("_EPROCESS", {"Pcb.IdealProcessor[3]": 7, "ProcessQuotaUsage": [1, 2],
                                    "ImageFileName": "explorer.exe"})
    assert obj.field("Pcb.IdealProcessor").value[:4] == [0, 0, 0, 7]
    elements = obj.field("Pcb.IdealProcessor").children
    assert len(elements) == 20 and elements[3].value == 7 and elements[3].name == "[3]"
    assert elements[3].modelled and not elements[2].modelled
    assert obj.field("ProcessQuotaUsage[1]").value == 2
    assert obj.field("ImageFileName").meaning == "explorer.exe"
    assert obj.field("ImageFileName").display == '[15] "explorer.exe"'
    with pytest.raises(BadValueError, match="do not fit"):
        obj.set("ImageFileName", b"a_very_long_process_name.exe")


def test_unicode_string_has_its_own_buffer(x64):
    job = x64.create("_EJOB")
    proc = x64.create("_EPROCESS")
    peb = x64.create("_PEB", {"CSDVersion": "Service Pack 1"}, process=proc)
    node = peb.field("CSDVersion")
    assert node.value == node.meaning == "Service Pack 1" and node.display == '"Service Pack 1"'
    assert node.find("Length").value == 28 and node.find("MaximumLength").value == 30
    buffer = node.find("Buffer").value
    assert x64.read(buffer, 28, process=proc) == "Service Pack 1".encode("utf-16-le")
    assert x64.locate(buffer, process=proc).region == "buffer"
    peb.set("CSDVersion", "SP2")  # fits: the buffer is reused, as RtlCopyUnicodeString does
    assert peb.field("CSDVersion.Buffer").value == buffer and peb.field("CSDVersion").value == "SP2"
    assert peb.field("CSDVersion.MaximumLength").value == 30
    peb.set("CSDVersion", UnicodeString("A much longer service pack name"))
    assert peb.field("CSDVersion.Buffer").value != buffer
    assert peb.field("CSDVersion").value == "A much longer service pack name"
    assert job.address > 0  # kernel objects are unaffected by user-space strings


def test_large_integer_dates_and_durations(x64):
    proc = x64.create("_EPROCESS", {"CreateTime": WHEN, "ExitTime": 0, "Pcb.KernelTime": 64})
    node = proc.field("CreateTime")
    assert node.meaning == WHEN and node.value == to_filetime(WHEN)
    assert "2024-05-01 12:30:15.1234560 UTC" in node.display
    assert format_filetime(0) == "1601-01-01 00:00:00.0000000 UTC"
    assert proc.field("Pcb.KernelTime").meaning == timedelta(seconds=1)  # 64 ticks of 15.625 ms
    job = x64.create("_EJOB", {"TotalUserTime": timedelta(seconds=90), "TotalKernelTime": 15_000_000})
    assert job.field("TotalUserTime").meaning == timedelta(seconds=90)
    assert job.field("TotalKernelTime").display.endswith("(0:00:01.5000000)")


@pytest.mark.parametrize("version,arch,bits", [("10.0.19041.3570", "x64", 4), ("5.1.2600.5512", "x86", 3)])
def test_fast_ref_pointer_plus_refcount(version, arch, bits):
    space = AddressSpace(build(version, arch))
    token = space.create("_EJOB", label="token")
    proc = space.create("_EPROCESS", {"Token": FastRef(token, (1 << bits) - 1)})
    node = proc.field("Token")
    assert node.value == token.address | ((1 << bits) - 1)
    assert node.meaning.object == token.address and node.meaning.refcnt == (1 << bits) - 1
    assert node.target.object is token and f"RefCnt {(1 << bits) - 1}" in node.display
    assert node.find("RefCnt").value == (1 << bits) - 1
    with pytest.raises(BadValueError, match="RefCnt"):
        proc.set("Token", FastRef(token, 1 << bits))


def test_dispatcher_header_and_empty_wait_list(x64):
    _, _, procs = machine(x64, ["System"])
    header = procs[0].field("Pcb.Header")
    assert header.meaning == "ProcessObject" and "ProcessObject" in header.display
    assert header.find("SignalState").relative_offset == 4
    assert header.find("SignalState").offset == resolve(x64.build, "_EPROCESS", "Pcb.Header").offset + 4
    wait = header.find("WaitListHead")
    assert wait.value == (wait.address, wait.address) and wait.modelled
    untouched = procs[0].field("Pcb.ProfileListHead")
    assert untouched.value == (0, 0) and not untouched.modelled
    event = x64.create("_KEVENT", {"Header.Type": "EventNotificationObject", "Header.SignalState": 1})
    assert event.field("Header.Type").display == "0x0 (EventNotificationObject)"
    assert event.field("Header.WaitListHead.Flink").value == event.address_of("Header.WaitListHead")


def test_enums_by_number_and_by_name(x64):
    thread = x64.create("_ETHREAD", {"Tcb.State": "Waiting", "Tcb.WaitReason": 37, "Tcb.WaitMode": 1})
    assert thread.field("Tcb.State").enum == "Waiting" and thread.field("Tcb.State").value == 5
    assert thread.field("Tcb.State").display == "0x5 (Waiting)"
    assert thread.field("Tcb.WaitReason").meaning == "WrAlertByThreadId"
    assert thread.field("Tcb.WaitMode").meaning == "UserMode"
    thread.set("Tcb.WaitReason", "WrSpare0")
    assert thread.field("Tcb.WaitReason").value == 14
    proc = x64.create("_EPROCESS", {"Protection.Type": "PsProtectedTypeProtectedLight",
                                    "Protection.Signer": 6})
    assert proc.field("Protection").value == 0x61
    assert proc.field("Protection.Signer").meaning == "PsProtectedSignerWinTcb"
    assert proc.field("Protection").meaning == "PsProtectedTypeProtectedLight, PsProtectedSignerWinTcb"
    with pytest.raises(BadValueError, match="not a name"):
        thread.set("Tcb.State", "Sleeping")
    assert enum_of("_KTHREAD", "WaitReason") is KWAIT_REASON and len(KWAIT_REASON) == 42
    assert all(name in ENUM_TYPES for name in ENUM_MEMBERS.values())


# --- lists -------------------------------------------------------------------------------

def test_list_walk_with_containing_record(x64):
    head, processes, procs = machine(x64)
    offset = resolve(x64.build, "_EPROCESS", "ActiveProcessLinks").offset
    entries = list(x64.walk_list(head.address, "_EPROCESS", "ActiveProcessLinks"))
    assert [e.address for e in entries] == [p.address for p in procs]
    assert [e.object for e in entries] == procs
    # the raw links, as dt -l follows them
    assert x64.read_pointer(head.address) == procs[0].address + offset
    assert procs[2].field("ActiveProcessLinks.Flink").value == head.address
    assert procs[0].field("ActiveProcessLinks.Blink").value == head.address
    assert procs[1].field("ActiveProcessLinks.Blink").target.object is procs[0]
    assert [e.object.label for e in head.decode().walk()] == ["System", "Registry", "smss.exe"]
    processes.remove(procs[1])
    assert [e.object for e in head.decode().walk()] == [procs[0], procs[2]]
    assert not procs[1].field("ActiveProcessLinks").modelled
    processes.prepend(procs[1])
    assert [e.object.label for e in head.decode().walk()] == ["Registry", "System", "smss.exe"]


def test_thread_list_from_eprocess_through_ethread(x64):
    proc = x64.create("_EPROCESS", label="a.exe")
    threads = x64.new_list(proc, "ThreadListHead", "_ETHREAD", "ThreadListEntry")
    empty = proc.field("ThreadListHead")
    assert empty.value == (empty.address, empty.address) and list(empty.walk()) == []
    made = [x64.create("_ETHREAD", {"Cid": {"UniqueProcess": 8, "UniqueThread": 12 + 4 * i}},
                       process=proc) for i in range(4)]
    for t in made:
        threads.append(t)
    walked = list(proc.field("ThreadListHead").walk())
    assert [e.object for e in walked] == made
    assert [e.address for e in walked] == [t.address for t in made]
    assert made[0].field("Cid").display == "_CLIENT_ID (Cid 0008.000c)"
    assert len(threads) == 4 and made[2] in threads


def test_broken_list_is_an_error(x64):
    head = x64.create_global("PsActiveProcessHead", "_LIST_ENTRY", {"Flink": 0})
    with pytest.raises(KernelMemoryError, match="NULL"):
        list(x64.walk_list(head.address, "_EPROCESS", "ActiveProcessLinks"))
    with pytest.raises(KernelMemoryError, match="which type"):
        list(head.decode().walk())


# --- switching builds -----------------------------------------------------------------------

def test_switching_build_keeps_values_and_moves_pointers():
    space = AddressSpace(build("10.0.19041.3570", "x64"))
    head, processes, procs = machine(space)
    system = procs[0]
    peb = space.create("_PEB", process=system)
    token = space.create("_EJOB")
    system.update({"Peb": peb, "Token": FastRef(token, 3), "Protection.Signer": 7, "CreateTime": WHEN})
    before = {o: o.bytes() for o in space.objects()}
    for version, arch in [("5.1.2600.5512", "x86"), ("6.1.7601.17514", "x64"), ("10.0.26100", "x64")]:
        space.set_build(build(version, arch))
        assert [e.object for e in space.walk_list(head.address, "_EPROCESS", "ActiveProcessLinks")] == procs
        assert system.field("Peb").value == peb.address
        assert system.field("Token").meaning.object == token.address
        assert system.field("ImageFileName").meaning == "System"
        assert system.field("CreateTime").meaning == WHEN
        assert system.field("UniqueProcessId").value == 4
        assert system.get("Protection.Signer") == 7  # values stay even where absent
        assert system.size == space.plan("_EPROCESS").size
    space.set_build(build("5.1.2600.5512", "x86"))
    assert system.absent() == ["Protection.Signer"]
    assert any("Protection.Signer" in p for p in system.problems())
    assert system.address < 1 << 32 and system.field("Token").meaning.refcnt == 3
    space.set_build(build("10.0.19041.3570", "x64"))
    assert {o: o.bytes() for o in space.objects()} == before  # same build, same bytes


def test_uncertain_bitfields_are_not_guessed():
    space = AddressSpace(build("10.0.19041.3570", "x64"))
    proc = space.create("_EPROCESS", {"Flags2": 0, "InPrivate": 1})
    assert proc.field("Flags2").value == 1 << 31
    space.set_build(build("10.0.26100", "x64"))
    node = proc.field("InPrivate")
    assert node.kind == "uncertain" and not node.modelled
    assert proc.field("Flags2").value == 0  # InPrivate's unknown bit is not written over Flags2
    assert any("InPrivate" in p and "does not record" in p for p in proc.problems())


# --- errors and laziness --------------------------------------------------------------------------

@pytest.mark.parametrize("path", ["NoSuchMember", "Pcb.Nope", "ImageFileName[20]", "Pcb..Header",
                                  "UniqueProcessId.Foo", "CreateTime[0]", "Vm.Anything"])
def test_bad_paths_raise_a_clear_error(x64, path):
    obj = x64.create("_EPROCESS")
    with pytest.raises(PathError) as info:
        obj.set(path, 1)
    assert not isinstance(info.value, KeyError)
    assert isinstance(info.value, KernelMemoryError) and "\n" not in str(info.value)
    with pytest.raises(PathError):
        obj.field(path)


def test_bad_values_raise(x64):
    obj = x64.create("_EPROCESS")
    with pytest.raises(BadValueError, match="does not fit"):
        obj.set("ActiveThreads", 1 << 32)
    with pytest.raises(BadValueError, match="integer"):
        obj.set("ActiveThreads", 1.5)
    with pytest.raises(BadValueError):
        obj.set("Pcb.Header", 3)
    with pytest.raises(PathError):
        obj["ActiveThreads"]
    with pytest.raises(KernelMemoryError):
        x64.create("_NOT_A_TYPE")


def test_not_modelled_members_are_flagged(x64):
    obj = x64.create("_EPROCESS", {"UniqueProcessId": 4})
    tree = obj.decode()
    modelled = [n.path for n in tree.children if n.modelled]
    assert modelled == ["UniqueProcessId"]
    assert tree.modelled and not tree.find("Pcb").modelled
    assert obj.field("VirtualSize").value == 0 and obj.field("VirtualSize").display == "0x0"


def test_provider_values_are_lazy_and_cached(x64):
    state = {"Tcb.State": 2}
    calls = []

    def provider():
        calls.append(1)
        return dict(state)

    thread = x64.create("_ETHREAD", {"Cid.UniqueThread": 8}, provider=provider)
    assert calls == []  # nothing is made until someone looks
    first = thread.bytes()
    assert thread.field("Tcb.State").enum == "Running"
    assert thread.bytes() is first  # same values, same bytes
    state["Tcb.State"] = 5
    assert thread.field("Tcb.State").enum == "Waiting" and thread.bytes() is not first
    bad = x64.create("_ETHREAD", provider=lambda: {"Tcb.Nope": 1})
    with pytest.raises(PathError):
        bad.bytes()


def test_pointers_to_members_and_freed_objects(x64):
    proc = x64.create("_EPROCESS", label="p")
    thread = x64.create("_ETHREAD", {"Tcb.Process": Ref(proc, "Pcb"), "Tcb.ApcState.Process": proc,
                                     "StartAddress": 0x7FF6_0000_1000})
    assert thread.field("Tcb.Process").target.object is proc
    job = x64.create("_EJOB")
    thread.set("Tcb.Queue", Ref(job, "Event"))
    assert str(thread.field("Tcb.Queue").target) == "_EJOB"  # Event is at offset 0: the object itself
    x64.free(proc)
    assert thread.field("Tcb.Process").value == 0
    assert any("no address" in p for p in thread.problems())
    with pytest.raises(KernelMemoryError):
        proc.bytes()


def test_every_shipped_build_lays_out_and_decodes_the_main_objects():
    for b in catalogue().builds:
        space = AddressSpace(b)
        _, _, procs = machine(space, ["System"])
        thread = space.create("_ETHREAD", {"Tcb.State": 2, "Tcb.Header.Type": 6}, process=procs[0])
        for obj in procs + [thread]:
            tree = obj.decode()
            assert len(obj.bytes()) == tree.size
            for node in tree.children:
                node.display
        assert thread.field("Tcb.State").enum == "Running", b.label

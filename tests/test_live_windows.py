"""The Windows parser on SystemProcessInformation buffers built here, on any OS, to the
documented x64 layout. The offsets below are written out from the documentation
(SYSTEM_PROCESS_INFORMATION 0x100 bytes, SYSTEM_THREAD_INFORMATION 0x50), not taken
from the parser's ctypes structures, so a drift in either shows."""

from __future__ import annotations

import struct

import pytest

from core.live import to_json_document, to_view_state
from core.live.model import Snapshot
from core.live.windows import (
    EPOCH_AS_FILETIME,
    WindowsParseError,
    parse_process_buffer,
    parse_processor_performance,
    processes_from_buffer,
)

BASE = 0x0000_01F0_0000_0000  # where the "kernel" put the buffer
BOOT = EPOCH_AS_FILETIME + 1_700_000_000 * 10_000_000  # boot at 2023-11-14 22:13:20 UTC
PROCESS_SIZE, THREAD_SIZE = 0x100, 0x50


def thread_bytes(tid, pid, *, state, reason=0, priority=8, base=8, switches=0,
                 user=0, kernel=0, created=BOOT) -> bytes:
    b = bytearray(THREAD_SIZE)
    struct.pack_into("<qqq", b, 0x00, kernel, user, created)   # Kernel, User, CreateTime
    struct.pack_into("<I", b, 0x18, 77)                          # WaitTime
    struct.pack_into("<Q", b, 0x20, 0x7FF6_1234_0000)            # StartAddress
    struct.pack_into("<QQ", b, 0x28, pid, tid)                   # ClientId
    struct.pack_into("<iiIII", b, 0x38, priority, base, switches, state, reason)
    return bytes(b)


def build(processes) -> bytes:
    """processes: [(pid, ppid, name or None, base_priority, [thread bytes], extra)]."""
    entries = []
    for pid, ppid, name, base, threads, extra in processes:
        name_bytes = (name or "").encode("utf-16-le")
        size = PROCESS_SIZE + THREAD_SIZE * len(threads) + len(name_bytes)
        size += -size % 8
        entries.append((pid, ppid, name_bytes, base, threads, extra, size))
    out = bytearray(sum(e[-1] for e in entries))
    offset = 0
    for i, (pid, ppid, name_bytes, base, threads, extra, size) in enumerate(entries):
        last = i == len(entries) - 1
        struct.pack_into("<II", out, offset, 0 if last else size, len(threads))
        struct.pack_into("<Q", out, offset + 0x18, extra.get("cycles", 0))  # CycleTime
        struct.pack_into("<qqq", out, offset + 0x20, extra.get("created", BOOT),
                         extra.get("user", 0), extra.get("kernel", 0))
        name_at = offset + PROCESS_SIZE + THREAD_SIZE * len(threads)
        struct.pack_into("<HH", out, offset + 0x38, len(name_bytes), len(name_bytes))
        struct.pack_into("<Q", out, offset + 0x40,
                         extra.get("name_pointer", BASE + name_at if name_bytes else 0))
        struct.pack_into("<i", out, offset + 0x48, base)                   # BasePriority
        struct.pack_into("<QQ", out, offset + 0x50, pid, ppid)
        struct.pack_into("<II", out, offset + 0x60, extra.get("handles", 0), 1)  # SessionId
        struct.pack_into("<Q", out, offset + 0x90, extra.get("working_set", 0))
        for j, t in enumerate(threads):
            out[offset + PROCESS_SIZE + j * THREAD_SIZE:
                offset + PROCESS_SIZE + (j + 1) * THREAD_SIZE] = t
        out[name_at:name_at + len(name_bytes)] = name_bytes
        offset += size
    return bytes(out)


SECOND = 10_000_000  # 100 ns units
BUFFER = build([
    (0, 0, None, 0, [thread_bytes(0, 0, state=2, priority=0, base=0, created=0),
                     thread_bytes(0, 0, state=2, priority=0, base=0, created=0)],
     {"created": 0}),
    (4, 0, "System", 8, [thread_bytes(8, 4, state=5, reason=15, priority=13, base=13)],
     {"handles": 3000}),
    (1234, 900, "app.exe", 8, [
        thread_bytes(1240, 1234, state=5, reason=6, priority=10, base=8, switches=42,
                     user=2 * SECOND, kernel=SECOND, created=BOOT + 5 * SECOND),
        thread_bytes(1244, 1234, state=1, priority=9, base=8, switches=3,
                     created=BOOT + 6 * SECOND),
        thread_bytes(1248, 1234, state=5, reason=5, priority=8, base=8),
    ], {"created": BOOT + 5 * SECOND, "user": 2 * SECOND, "kernel": SECOND,
        "working_set": 8 << 20}),
])


def test_entries_and_names():
    entries = parse_process_buffer(BUFFER, BASE)
    assert [(p.UniqueProcessId, name, len(ts)) for p, name, ts in entries] == [
        (0, None, 2), (4, "System", 1), (1234, "app.exe", 3)]


def test_processes_and_threads():
    idle, system, app = processes_from_buffer(BUFFER, BASE, BOOT)
    assert idle.name == "Idle" and idle.base_priority == 0 and idle.priority_class is None
    assert system.threads[0].state == "Waiting" and system.threads[0].wait_reason == "WrQueue"
    assert (app.pid, app.ppid, app.name, app.priority_class) == (1234, 900, "app.exe", "normal")
    assert app.key == (1234, BOOT + 5 * SECOND)
    assert app.create_time == pytest.approx(1_700_000_005.0)
    assert app.create_time_us == pytest.approx(5e6)
    assert (app.user_time_s, app.kernel_time_s) == (2.0, 1.0)
    assert app.native["working_set_bytes"] == 8 << 20 and app.native["session_id"] == 1
    main, ready, suspended = app.threads
    assert (main.tid, main.state, main.wait_reason, main.priority, main.base_priority,
            main.context_switches) == (1240, "Waiting", "UserRequest", 10, 8, 42)
    assert (ready.state, ready.wait_reason) == ("Ready", "")
    assert (suspended.state, suspended.wait_reason) == ("Waiting", "Suspended")
    assert main.native["wait_time_ticks"] == 77
    assert main.native["start_address"] == "0x00007ff612340000"
    assert main.cpu is None and main.affinity is None  # not in this information class


def test_projections_of_a_windows_sample():
    procs = processes_from_buffer(BUFFER, BASE, BOOT)
    snap = Snapshot(host="windows", source="ntquery", wall_time=1_700_000_100.0,
                    uptime_s=100.0, monotonic=1.0, cpus=2, processes=procs, cpu_times=[])
    doc = to_json_document(snap)
    app = doc["processes"][2]
    assert app["threads"][0] == {"tid": 1240, "state": "Waiting", "priority": 10, "cpu": None,
                                 "user_time_s": 2.0, "kernel_time_s": 1.0,
                                 "context_switches": 42}
    view = to_view_state(snap)
    assert [p["pid"] for p in view["processes"]] == [0, 4, 1234]


def test_parses_from_a_ctypes_buffer_as_the_source_does():
    import ctypes
    buf = ctypes.create_string_buffer(len(BUFFER) + 64)
    ctypes.memmove(buf, BUFFER, len(BUFFER))
    procs = processes_from_buffer(memoryview(buf)[:len(BUFFER)], BASE, BOOT)
    assert [p.name for p in procs] == ["Idle", "System", "app.exe"]


def test_name_pointing_outside_the_buffer_is_no_name():
    buf = build([(9, 4, "x.exe", 8, [], {"name_pointer": BASE + 10_000_000})])
    [(proc, name, threads)] = parse_process_buffer(buf, BASE)
    assert proc.UniqueProcessId == 9 and name is None and threads == []


def test_too_many_threads_is_an_error():
    buf = bytearray(build([(9, 4, "x.exe", 8, [], {})]))
    struct.pack_into("<I", buf, 4, 50)
    with pytest.raises(WindowsParseError, match="declares 50 threads"):
        parse_process_buffer(bytes(buf), BASE)


def test_a_chain_leading_out_of_the_buffer_is_an_error():
    buf = bytearray(build([(9, 4, "a.exe", 8, [], {}), (10, 4, "b.exe", 8, [], {})]))
    first_size = struct.unpack_from("<I", buf, 0)[0]
    struct.pack_into("<I", buf, first_size, 0x10000)  # the last entry points past the end
    with pytest.raises(WindowsParseError, match="runs past the end"):
        parse_process_buffer(bytes(buf), BASE)


def test_an_entry_shorter_than_the_structure_is_an_error():
    buf = bytearray(build([(9, 4, "a.exe", 8, [], {}), (10, 4, "b.exe", 8, [], {})]))
    struct.pack_into("<I", buf, 0, 0x40)
    with pytest.raises(WindowsParseError, match="shorter than an entry"):
        parse_process_buffer(bytes(buf), BASE)


def test_truncated_buffer_is_an_error():
    with pytest.raises(WindowsParseError, match="runs past the end"):
        parse_process_buffer(BUFFER[:0x80], BASE)


def test_processor_performance():
    buf = struct.pack("<qqqqqIi", 30 * SECOND, 50 * SECOND, 20 * SECOND, SECOND, SECOND,
                      1234, 0) * 2
    cpus = parse_processor_performance(buf)
    assert len(cpus) == 2
    assert (cpus[0].idle_s, cpus[0].kernel_s, cpus[0].user_s) == (30.0, 20.0, 20.0)
    assert cpus[1].native["interrupts"] == 1234

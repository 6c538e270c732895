"""Times core/memory.py: making an _EPROCESS's bytes, decoding it, walking a long list.

    PYTHONPATH=. python bench/bench_memory.py

Prints one line per figure; nothing is asserted (the tests check behaviour).
"""

from __future__ import annotations

import sys
import time
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from core.layouts import catalogue  # noqa: E402
from core.memory import AddressSpace  # noqa: E402
from core.values import FastRef  # noqa: E402

BUILDS = [("10.0.19041.3570", "x64"), ("10.0.26100", "x64"), ("5.1.2600.5512", "x86")]
LIST_LENGTH = 500


def per_call(fn, repeat: int) -> float:
    """Best of three runs, in microseconds per call."""
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        for _ in range(repeat):
            fn()
        best = min(best, time.perf_counter() - start)
    return best / repeat * 1e6


def process_values(i: int, token) -> dict:
    return {
        "UniqueProcessId": 4 * (i + 1), "InheritedFromUniqueProcessId": 4,
        "ImageFileName": f"proc{i}.exe".encode(), "Pcb.Header.Type": 3, "Pcb.Header.SignalState": 0,
        "Pcb.BasePriority": 8, "Pcb.KernelTime": 100 + i, "Pcb.UserTime": 50 + i,
        "CreateTime": datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc), "ActiveThreads": 3,
        "PriorityClass": 2, "Token": FastRef(token, 5), "ExitStatus": 0x103,
    }


def bench(version: str, arch: str) -> None:
    space = AddressSpace(catalogue().find(version, arch))
    head = space.create_global("PsActiveProcessHead", "_LIST_ENTRY")
    processes = space.new_list(head, "", "_EPROCESS", "ActiveProcessLinks")
    token = space.create("_EJOB", label="token")
    procs = []
    for i in range(LIST_LENGTH):
        p = space.create("_EPROCESS", process_values(i, token), label=f"proc{i}.exe")
        processes.append(p)
        procs.append(p)
    target = procs[0]
    size = target.size

    def materialize():
        target.touch()
        target.bytes()

    def decode_top():
        return target.decode().children

    def decode_top_displayed():
        return [n.display for n in target.decode().children]

    def walk():
        return sum(1 for _ in space.walk_list(head.address, "_EPROCESS", "ActiveProcessLinks"))

    def walk_cold():
        for p in procs:
            p.touch()
        return walk()

    def set_state():
        target.set("Pcb.KernelTime", 7)

    decode_top()  # resolve the layout once, as any first look does
    print(f"{version} {arch}: _EPROCESS 0x{size:x} bytes, {len(target.decode().children)} top-level members")
    print(f"  materialize _EPROCESS (13 values)       {per_call(materialize, 2000):9.1f} us")
    print(f"  decode top level (nodes, cached bytes)  {per_call(decode_top, 2000):9.1f} us")
    print(f"  materialize + decode top level          {per_call(lambda: (materialize(), decode_top()), 1000):9.1f} us")
    print(f"  decode top level with every display     {per_call(decode_top_displayed, 200):9.1f} us")
    print(f"  walk {LIST_LENGTH}-entry list, bytes cached    {per_call(walk, 20) / 1000:9.2f} ms")
    print(f"  walk {LIST_LENGTH}-entry list, all re-made     {per_call(walk_cold, 5) / 1000:9.2f} ms")
    print(f"  set() one integer member                {per_call(set_state, 20000):9.2f} us")


def main() -> None:
    for version, arch in BUILDS:
        bench(version, arch)


if __name__ == "__main__":
    main()

"""Session files: save 1,000,000 context switches and ~100,000 events, reopen, travel.

A recorded simulation (8 CPUs: ping-pong thread pairs that switch constantly, threads
that flip their priority with SetThreadPriority, background CPU hogs) is run until its
trace holds --switches context switches, sampled every clock tick. Then:

- save: Recorder.save (encoding the trace, writing SQLite, fsync, rename), its size on
  disk per context switch (whole file, and the trace chunks alone);
- open: open_session + info + the state at the middle + a 100 ms trace window and its
  events, in this process and in a fresh interpreter (imports included);
- slider: state_at at random times (a jump, worst case: a keyframe and up to 63 deltas)
  and at consecutive samples (playback).

    PYTHONPATH=. python bench/bench_session.py [--switches 1000000] [--check]

--check exits 1 if a target is missed: save <= 3 s, <= 40 bytes per switch on disk,
open + first state + window < 1 s, a slider jump <= 100 ms.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from core.kernel import Machine, ms, us  # noqa: E402
from core.kernel import program as P  # noqa: E402
from core.session import Recorder, open_session  # noqa: E402


def build(cpus: int = 8, pairs: int = 32, flippers: int = 2) -> Machine:
    m = Machine(cpus=cpus)
    for i in range(pairs):
        proc = m.create_process(f"pingpong{i}.exe", disable_boost=True)
        a = m.create_event(f"a{i}", "synchronization")
        b = m.create_event(f"b{i}", "synchronization")
        m.create_thread(proc, "normal", name=f"ping{i}",
                        program=[P.cpu(us(40 + i)), P.set_event(a), P.wait(b), P.repeat()])
        m.create_thread(proc, "normal", name=f"pong{i}",
                        program=[P.wait(a), P.cpu(us(30 + i)), P.set_event(b), P.repeat()])
    flip = m.create_process("flipper.exe")
    for j in range(flippers):
        m.create_thread(flip, "above_normal", name=f"flip{j}", program=[
            P.cpu(us(160 + 10 * j)), P.set_priority("highest"),
            P.cpu(us(160)), P.set_priority("above_normal"), P.repeat()])
    for i in range(8):
        proc = m.create_process(f"background{i}.exe", "below_normal")
        for j in range(4):
            m.create_thread(proc, "normal", name=f"bg{i}.{j}",
                            program=[P.cpu(ms(3 + j)), P.sleep(ms(1 + i)), P.repeat()])
    return m


COLD_OPEN = r"""
import sys, time
t0 = time.perf_counter()
sys.path.insert(0, {root!r})
from core.session import open_session
s = open_session({path!r})
info = s.info()
mid = (info.start_us + info.end_us) / 2
s.state_at(mid)
s.trace_window(mid, mid + 100_000)
s.events(mid, mid + 100_000)
print(time.perf_counter() - t0)
"""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--switches", type=int, default=1_000_000)
    ap.add_argument("--check", action="store_true", help="exit 1 if a target is missed")
    args = ap.parse_args()

    events: list = []
    m = build()
    m.subscribe(events.append)
    rec = Recorder(m, past_events=list(events))
    m.unsubscribe(events.append)
    t0 = time.perf_counter()
    step = ms(100)
    until = 0
    while len(m.trace) < args.switches:
        until += step
        rec.run_until(until)
    sim = time.perf_counter() - t0
    n = len(m.trace)

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "bench.koi")
        t0 = time.perf_counter()
        rec.save(path)
        save = time.perf_counter() - t0
        size = os.path.getsize(path)

        t0 = time.perf_counter()
        s = open_session(path)
        info = s.info()
        mid = (info.start_us + info.end_us) / 2
        s.state_at(mid)
        window = s.trace_window(mid, mid + 100_000)
        evs = s.events(mid, mid + 100_000)
        open_first = time.perf_counter() - t0
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
            trace_bytes = db.execute("SELECT SUM(LENGTH(data)) FROM trace_chunk").fetchone()[0]

        cold = float(subprocess.run([sys.executable, "-c", COLD_OPEN.format(root=ROOT, path=path)],
                                    check=True, capture_output=True, text=True).stdout)

        times = s.sample_times()
        rnd = random.Random(1)
        jumps = []
        for _ in range(100):
            t = rnd.choice(times)
            t0 = time.perf_counter()
            s.state_at(t)
            jumps.append(time.perf_counter() - t0)
        play = []
        for t in times[:200]:
            t0 = time.perf_counter()
            s.state_at(t)
            play.append(time.perf_counter() - t0)
        threads = sum(len(p["threads"]) for p in s.state_at(mid)["processes"])
        s.close()

    print(f"recorded: {info.end_us / 1e6:.1f} s simulated on 8 CPUs, {threads} threads, "
          f"{n:,} context switches, {info.events:,} events, {info.samples:,} state samples "
          f"({sim:.1f} s wall, recorder included)")
    print(f"save:   {save:.2f} s  (target <= 3 s)")
    print(f"disk:   {size:,} bytes = {size / n:.1f} bytes/switch for the whole file "
          f"(target <= 40); trace chunks alone {trace_bytes / n:.1f} bytes/switch")
    print(f"open + info + state at the middle + 100 ms window ({len(window['time']):,} switches, "
          f"{len(evs):,} events): {open_first * 1000:.0f} ms in process, "
          f"{cold * 1000:.0f} ms in a fresh interpreter with imports (target < 1 s)")
    print(f"slider jump (state_at at a random sample): median {statistics.median(jumps) * 1000:.1f} ms, "
          f"max {max(jumps) * 1000:.1f} ms (target <= 100 ms)")
    print(f"playback (consecutive samples): median {statistics.median(play) * 1000:.2f} ms, "
          f"max {max(play) * 1000:.1f} ms")
    missed = [name for name, ok in (
        ("save", save <= 3), ("bytes/switch", size / n <= 40), ("open", max(open_first, cold) < 1),
        ("slider", max(jumps) <= 0.1)) if not ok]
    if missed:
        print("missed: " + ", ".join(missed))
    return 1 if args.check and missed else 0


if __name__ == "__main__":
    sys.exit(main())

"""Live sampling cost on this machine (Linux).

1. One full snapshot of every process and thread, against
   ``ps -eLo pid,tid,stat,pri,psr,utime,stime,nvcsw,comm`` side by side: our CPU time
   inside this running process (time.process_time around sample(), no interpreter
   start), ps's from resource.getrusage(RUSAGE_CHILDREN). Both "warm" (a source that
   has sampled before, as the app's is) and "cold" (a new source, made and sampled
   once). A cold sample leaves each thread's voluntary/involuntary switch split
   pending, read on its process's turn in the rotation: the samples that read it are
   measured too, so the cost moved out of the cold sample is shown, not hidden, and
   so is a cold sample that reads the split at once (defer_split=False).
2. Sampling every second for --seconds with the load running: the sampling thread's
   CPU time and the whole process's (getrusage(RUSAGE_SELF)) as a share of one core,
   and the cost of turning each snapshot into the view state the app shows.

The load: --processes child processes, --heavy of them with --threads threads each,
all blocked reading a pipe (they exit when it closes). Defaults: 1,000 processes and
about 10,000 threads, on top of what the machine already runs.

    PYTHONPATH=. python bench/bench_live.py [--processes 1000] [--heavy 9] [--threads 1000]
                                            [--seconds 10] [--repeat 5] [--no-load]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from core.live import Sampler, ViewStateBuilder, raise_open_file_limit  # noqa: E402
from core.live.linux import LinuxSource  # noqa: E402

PS_ARGS = ["ps", "-eLo", "pid,tid,stat,pri,psr,utime,stime,nvcsw,comm"]

# Forks the children; each heavy one starts its threads; all block on the pipe.
LOAD = r"""
import os, sys, threading
processes, heavy, threads = map(int, sys.argv[1:4])
r = 0  # stdin: EOF when the benchmark closes it
threading.stack_size(64 * 1024)
children = []
for i in range(processes):
    pid = os.fork()
    if pid == 0:
        if i < heavy:
            for _ in range(threads - 1):
                threading.Thread(target=os.read, args=(r, 1), daemon=True).start()
        os.write(1, b".")
        os.read(r, 1)
        os._exit(0)
    children.append(pid)
for _ in children:
    os.wait()
"""


def start_load(processes: int, heavy: int, threads: int) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", LOAD, str(processes), str(heavy),
                             str(threads)], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    ready = 0
    while ready < processes:  # each child writes a dot once its threads are up
        chunk = proc.stdout.read1(65536)
        if not chunk:
            raise SystemExit("the load generator died")
        ready += len(chunk)
    return proc


def add_load_arguments(ap: argparse.ArgumentParser) -> None:
    """The load's options, shared with bench_live_app.py."""
    ap.add_argument("--processes", type=int, default=1000)
    ap.add_argument("--heavy", type=int, default=9, help="processes with many threads")
    ap.add_argument("--threads", type=int, default=1000, help="threads per heavy process")
    ap.add_argument("--no-load", action="store_true", help="measure the machine as it is")


def stop_load(proc: subprocess.Popen) -> None:
    proc.stdin.close()
    proc.wait(60)


def ps_cpu_ms() -> float:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(PS_ARGS, stdout=subprocess.DEVNULL, check=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ((after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)) * 1e3


def snapshot_cpu_ms(source: LinuxSource) -> tuple[float, int, int]:
    began = time.process_time()
    snap = source.sample()
    return (time.process_time() - began) * 1e3, len(snap.processes), snap.thread_count()


def cold_cpu_ms(defer_split: bool = True) -> tuple[float, int, list[float]]:
    """A new source, made and sampled once (CPU ms); how many threads it left pending;
    then the CPU ms of each of the full_every samples that read what was pending."""
    began = time.process_time()
    source = LinuxSource(defer_split=defer_split)
    source.sample()
    cold = (time.process_time() - began) * 1e3
    pending = source.pending()
    completing = []
    # every process has had its turn after these
    for _ in range(source.full_every if defer_split else 0):
        time.sleep(0.2)
        completing.append(snapshot_cpu_ms(source)[0])
    source.close()
    return cold, pending, completing


def side_by_side(repeat: int) -> None:
    """ps, and five kinds of KOI snapshot: warm (a source that has sampled before and
    read everything a first sample left pending, as the app's has), warm with nothing
    skipped (full_every=1: every stat re-read), cold (a new source's first sample:
    every file opened), the samples right after a cold one, which also read what it
    left pending, and a cold sample that leaves nothing pending. Runs of ps and of each kind alternate, so a machine that gets
    busier or quieter weighs on all alike; one source at a time, so each has the
    open-file budget to itself."""
    results: dict[str, list[float]] = {label: [] for label in (
        "ps -eLo ...", "KOI snapshot, warm", "KOI, warm, full_every=1", "KOI snapshot, cold",
        "KOI, 5 samples after cold", "KOI, cold, split at once")}
    pending, firsts = [], []
    for _ in range(repeat):
        results["ps -eLo ..."].append(ps_cpu_ms())
        for label, every in (("KOI snapshot, warm", 5), ("KOI, warm, full_every=1", 1)):
            with LinuxSource(full_every=every) as source:
                for _ in range(every + 1):  # a first sample, and every process's turn
                    source.sample()
                time.sleep(0.2)
                ms, *counts = snapshot_cpu_ms(source)
            results[label].append(ms)
        cold, left, completing = cold_cpu_ms()
        results["KOI snapshot, cold"].append(cold)
        results["KOI, 5 samples after cold"] += completing
        pending.append(left)
        firsts.append(cold + sum(completing))
        results["KOI, cold, split at once"].append(cold_cpu_ms(defer_split=False)[0])
    print(f"  {counts[0]} processes, {counts[1]} threads; CPU ms, min / median of {repeat}"
          f" (of {len(results['KOI, 5 samples after cold'])} for the samples after cold)")
    ps = statistics.median(results["ps -eLo ..."])
    for label, values in results.items():
        print(f"  {label:26} {min(values):8.1f} {statistics.median(values):8.1f}"
              f"   {statistics.median(values) / ps:5.2f} x ps")
    warm = statistics.median(results["KOI snapshot, warm"])
    after = statistics.median(results["KOI, 5 samples after cold"])
    print(f"  a cold sample left {statistics.median(pending):.0f} threads' switch split "
          f"pending (median), read by the 5 samples after it: {5 * (after - warm):.0f} ms "
          f"more than 5 warm samples; a new source's first 6 samples "
          f"{statistics.median(firsts):.0f} ms in all")


def sampling_every_second(seconds: float) -> None:
    view_ms: list[float] = []
    views = ViewStateBuilder()

    def to_view(snap) -> None:  # what the app's view does with each snapshot
        began = time.thread_time()
        views.build(snap)
        view_ms.append((time.thread_time() - began) * 1e3)

    source = LinuxSource()
    sampler = Sampler(source, 1.0, callback=to_view)
    # The cold sample and the ones that read what it left pending are not part of the
    # steady state (section 1 measures them).
    for _ in range(source.full_every + 1):
        to_view(sampler.sample_now())
    sampler.cpu_seconds, sampler.samples = 0.0, 0
    view_ms.clear()
    usage0 = resource.getrusage(resource.RUSAGE_SELF)
    wall0 = time.monotonic()
    sampler.start()
    time.sleep(seconds)
    sampler.stop()
    wall = time.monotonic() - wall0
    usage1 = resource.getrusage(resource.RUSAGE_SELF)
    process_cpu = (usage1.ru_utime - usage0.ru_utime) + (usage1.ru_stime - usage0.ru_stime)
    snap = sampler.latest
    sampling = sampler.cpu_seconds  # source.sample() alone, on the sampling thread
    print(f"  {len(snap.processes)} processes, {snap.thread_count()} threads, "
          f"{sampler.samples} samples in {wall:.1f} s, {source.open_files()} files kept open")
    print(f"  sampling thread: {sampling / wall * 100:.2f}% of one core "
          f"({sampling / max(sampler.samples, 1) * 1e3:.1f} ms per sample)")
    print(f"  view state per snapshot: {statistics.median(view_ms):.1f} ms median "
          f"({sum(view_ms) / 1e3 / wall * 100:.2f}% of one core)")
    print(f"  whole process (sampling + view state + idle main thread): "
          f"{process_cpu / wall * 100:.2f}% of one core")
    source.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_load_arguments(ap)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    if not sys.platform.startswith("linux"):
        raise SystemExit("bench_live.py measures the Linux /proc source")
    limit = raise_open_file_limit()
    print(f"open-file limit {limit}; {os.cpu_count()} CPUs")

    print("\n1. one snapshot vs ps, as the machine is")
    side_by_side(args.repeat)
    if args.no_load:
        print("\n2. sampling every second, as the machine is")
        sampling_every_second(args.seconds)
        return
    began = time.monotonic()
    load = start_load(args.processes, args.heavy, args.threads)
    print(f"\nload: {args.processes} processes, {args.heavy} with {args.threads} threads "
          f"(started in {time.monotonic() - began:.1f} s)")
    try:
        print("\n1b. one snapshot vs ps, with the load")
        side_by_side(args.repeat)
        print("\n2. sampling every second, with the load")
        sampling_every_second(args.seconds)
    finally:
        stop_load(load)


if __name__ == "__main__":
    main()

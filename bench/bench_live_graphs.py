"""Live CPU timelines: `LiveGraphsWidget.refresh()` with a full history of 600 samples
of 16 CPUs, one new sample per refresh (the history wraps every time).

A synthetic History shaped like a busy host's (--processes processes of which about a
sixth use CPU in each interval, their busiest threads, 1-4 threads seen per CPU) goes
into inspector.live_graphs.LiveGraphsWidget, rendered offscreen, with a process and one
of its threads selected so the selection graph is drawn too. It reports:

- the first `set_history` (every point converted);
- `refresh()` after each new sample, as the app calls it on the GUI thread: min,
  median, max over --refreshes (wall and CPU time). Target: median < 10 ms;
- a forced repaint of the whole widget (`grab()`) after a refresh, for scale.

    QT_QPA_PLATFORM=offscreen python bench/bench_live_graphs.py [--cpus 16] [--samples 600]
                                                               [--refreshes 300] [--check]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from core.live import CpuUsage, History, Snapshot  # noqa: E402
from inspector.live_graphs import LiveGraphsWidget  # noqa: E402

TARGET_MS = 10.0


class SyntheticHost:
    """Per-interval figures of a made-up busy host, one Snapshot per call."""

    def __init__(self, cpus: int, processes: int, seed: int = 1):
        self.rng = np.random.default_rng(seed)
        self.cpus = cpus
        self.pids = 4 * np.arange(1, processes + 1) + 1000
        self.i = 0

    def sample(self) -> Snapshot:
        rng, cpus, i = self.rng, self.cpus, self.i
        self.i += 1
        snap = Snapshot(host="linux", source="bench", wall_time=1.7e9 + i, uptime_s=1e5 + i,
                        monotonic=1e5 + i, cpus=cpus, processes=[], cpu_times=[])
        busy = rng.uniform(0, 100, cpus)
        kernel = busy * rng.uniform(0.1, 0.4, cpus)
        snap.interval_s = 1.0
        snap.cpu_usage = [CpuUsage(c, float(busy[c]), float(busy[c] - kernel[c]),
                                   float(kernel[c]), float(100 - busy[c])) for c in range(cpus)]
        active = rng.choice(self.pids, max(1, len(self.pids) // 6), replace=False)
        pct = rng.exponential(2.0, len(active))
        snap.process_cpu_percent = {(int(p), 1): float(v) for p, v in zip(active, pct)}
        snap.thread_cpu_percent = {(int(p) + 1, 1): float(v) for p, v in zip(active, pct)}
        snap.who_ran = []
        for c in range(cpus):
            seen = rng.choice(active, rng.integers(1, 5))
            snap.who_ran.append(sorted(((int(p), int(p) + 1, float(rng.exponential(2.0)))
                                        for p in seen), key=lambda r: -r[2]))
        return snap


def stats(values: list[float]) -> str:
    return (f"min {min(values):.2f} ms, median {statistics.median(values):.2f} ms, "
            f"max {max(values):.2f} ms")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cpus", type=int, default=16)
    ap.add_argument("--samples", type=int, default=600, help="history length")
    ap.add_argument("--processes", type=int, default=600)
    ap.add_argument("--refreshes", type=int, default=300)
    ap.add_argument("--check", action="store_true", help=f"exit 1 if the median refresh "
                                                          f"is not under {TARGET_MS:g} ms")
    args = ap.parse_args()

    app = QApplication.instance() or QApplication(sys.argv)
    host = SyntheticHost(args.cpus, args.processes)
    history = History(args.samples)
    for _ in range(args.samples):
        history.append(host.sample())
    widget = LiveGraphsWidget()
    widget.resize(1400, 900)
    widget.show()
    app.processEvents()
    names = {int(p): f"proc{p}" for p in host.pids}
    pid = int(host.pids[0])
    widget.set_selection((pid, 1), (pid + 1, 1), f"proc{pid} ({pid})")

    began = time.perf_counter()
    widget.set_history(history, names, 1.0)
    first_ms = (time.perf_counter() - began) * 1e3
    widget.grab()

    wall, cpu, paint = [], [], []
    for _ in range(args.refreshes):
        history.append(host.sample())
        w0, c0 = time.perf_counter(), time.process_time()
        widget.refresh()
        wall.append((time.perf_counter() - w0) * 1e3)
        cpu.append((time.process_time() - c0) * 1e3)
        p0 = time.perf_counter()
        widget.grab()
        paint.append((time.perf_counter() - p0) * 1e3)
    assert widget.data.rebuilds == 0 and len(widget.data) == args.samples

    print(f"{args.samples} samples x {args.cpus} CPUs, {args.processes} processes, "
          f"{widget.strip_item.blocks_drawn} strip blocks, "
          f"{len(widget.strip_item.pids_drawn())} process colours")
    print(f"first set_history:      {first_ms:.1f} ms")
    print(f"refresh (wall):         {stats(wall)}")
    print(f"refresh (CPU):          {stats(cpu)}")
    print(f"repaint of the widget:  {stats(paint)}")
    ok = statistics.median(wall) < TARGET_MS
    print(f"target: median refresh < {TARGET_MS:g} ms: {'met' if ok else 'MISSED'}")
    widget.close()
    return 0 if ok or not args.check else 1


if __name__ == "__main__":
    sys.exit(main())

"""CPU timeline with 1,000,000 segments on 8 CPUs: repaint after a zoom.

Wall-clock figures depend on the load of the machine, so the CPU time of the process is
printed too.

A synthetic, consistent context-switch trace (per CPU a chain of threads of 60 processes,
about a quarter of the time idle) goes into inspector.timeline.TimelineWidget, rendered
offscreen.  For a series of zooms from the whole trace down to a few microseconds (and
random windows in between) it sets the range and times a forced repaint of the timeline
plot (`grab()`: level of detail for the new window plus painting).  Target: median
repaint after a zoom <= 50 ms.

    QT_QPA_PLATFORM=offscreen python bench/bench_timeline.py [--segments N] [--check]
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from core.kernel.constants import CYCLES_PER_NS, READY, WAITING, UserRequest, WrPreempted  # noqa: E402
from core.timeline import TRACE_COLUMNS, Timeline  # noqa: E402

TARGET_MS = 50.0
US = 1000 * CYCLES_PER_NS


def synthetic_trace(switches: int, cpus: int, processes: int = 60, seed: int = 1):
    """Columns shaped like Machine.trace.columns(), in time order."""
    rng = np.random.default_rng(seed)
    per = switches // cpus
    parts = []
    for c in range(cpus):
        t = np.cumsum(rng.exponential(20 * US, per).astype(np.int64) + 30)
        idle = rng.random(per) < 0.25
        pid = np.where(idle, 0, 8 + 44 * rng.integers(0, processes, per))
        tid = np.where(idle, 0, pid + 4 * (1 + rng.integers(0, 10, per)))
        pri = np.where(idle, 0, rng.integers(1, 16, per))
        state = rng.choice([READY, WAITING], per)
        wait = np.where(state == WAITING, UserRequest, WrPreempted)

        def prev(a):
            return np.concatenate(([0], a[:-1]))
        parts.append((t, np.full(per, c), prev(tid), tid, prev(pid), pid, prev(pri), pri,
                      state, wait))
    cols = [np.concatenate(k) for k in zip(*parts)]
    order = np.argsort(cols[0], kind="stable")
    dtypes = (np.int64, np.uint16, np.int32, np.int32, np.int32, np.int32, np.int8, np.int8,
              np.int8, np.int8)
    return {n: c[order].astype(dt) for n, c, dt in zip(TRACE_COLUMNS, cols, dtypes)}


def ms(seconds: float) -> str:
    return f"{seconds * 1e3:.1f} ms"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--segments", type=int, default=1_000_000)
    ap.add_argument("--cpus", type=int, default=8)
    ap.add_argument("--width", type=int, default=1600)
    ap.add_argument("--height", type=int, default=900)
    ap.add_argument("--random-zooms", type=int, default=30)
    ap.add_argument("--check", action="store_true", help=f"exit 1 if the median repaint "
                    f"after a zoom exceeds {TARGET_MS:.0f} ms")
    args = ap.parse_args()

    app = QApplication.instance() or QApplication(sys.argv)
    from inspector.timeline import TimelineWidget

    t = time.perf_counter()
    cols = synthetic_trace(args.segments, args.cpus)
    now = int(cols["time"][-1]) + 10 * US
    made = time.perf_counter() - t

    t = time.perf_counter()
    tl = Timeline.from_columns(cols, now, cpus=args.cpus)
    built = time.perf_counter() - t

    # the live path: 10,000 switches appended to a timeline that already holds the rest
    tail = 10_000
    grow = Timeline(args.cpus)
    grow.extend({k: v[:-tail] for k, v in cols.items()}, int(cols["time"][-tail - 1]))
    t = time.perf_counter()
    grow.extend(cols, now)
    appended = time.perf_counter() - t

    w = TimelineWidget()
    w.resize(args.width, args.height)
    w.show()
    app.processEvents()
    w.set_trace(cols, now, cpus=args.cpus)
    w.zoom_to_fit()
    app.processEvents()
    w.timeline_plot.grab()
    plot_px = int(w.timeline_plot.getPlotItem().getViewBox().width())

    span = now
    centre = now * 0.5
    windows = [(0.0, float(now))]
    for frac in (0.5, 0.2, 0.1, 0.05, 0.01, 1e-3, 1e-4, 1e-5):
        windows.append((centre - span * frac / 2, centre + span * frac / 2))
    rng = np.random.default_rng(7)
    for _ in range(args.random_zooms):
        frac = 10 ** rng.uniform(-5, 0)
        mid = rng.uniform(0, now)
        windows.append((mid - span * frac / 2, mid + span * frac / 2))

    repaint, repaint_cpu, lod_only, visible, rects = [], [], [], [], []
    for t0, t1 in windows:
        w.set_x_range_cycles(t0, t1)
        t, c = time.perf_counter(), time.process_time()
        w.timeline_plot.grab()
        repaint.append(time.perf_counter() - t)
        repaint_cpu.append(time.process_time() - c)
        rects.append(w.timeline_item.rects_drawn)
        lo, hi = max(t0, 0.0), min(t1, float(now))
        visible.append(sum(np.subtract(*tl.visible_range(c, lo, hi)[::-1])
                           for c in range(args.cpus)))
        t = time.perf_counter()
        for c in range(args.cpus):
            tl.lod(c, lo, hi, plot_px)
        lod_only.append(time.perf_counter() - t)

    still = []
    for _ in range(10):  # nothing changed: the cached cut is drawn again
        t = time.perf_counter()
        w.timeline_plot.grab()
        still.append(time.perf_counter() - t)

    usage = []
    for t0, t1 in windows[:9]:
        w.set_x_range_cycles(t0, t1)
        t = time.perf_counter()
        w.refresh_usage()
        usage.append(time.perf_counter() - t)

    full = repaint[0]
    med = statistics.median(repaint)
    print(f"segments: {len(tl):,} on {args.cpus} CPUs, {len(tl.pids()) - 1} processes; "
          f"timeline plot {plot_px} px wide")
    print(f"synthetic trace generated       {ms(made)}")
    print(f"Timeline.from_columns (1 shot)  {ms(built)}")
    print(f"extend by {tail:,} switches       {ms(appended)}")
    print(f"repaint after a zoom ({len(windows)} zooms): median {ms(med)}, "
          f"min {ms(min(repaint))}, max {ms(max(repaint))}")
    # CPU time of this process: what the repaint costs when other processes compete
    print(f"  same, process CPU time: median {ms(statistics.median(repaint_cpu))}, "
          f"max {ms(max(repaint_cpu))}")
    print(f"  whole trace in view ({visible[0]:,} segments): {ms(full)}")
    print(f"  of which level of detail (8 rows): median {ms(statistics.median(lod_only))}, "
          f"max {ms(max(lod_only))}")
    print(f"  rectangles handed to Qt: max {max(rects):,} "
          f"(bound: {plot_px} px x {args.cpus} rows = {plot_px * args.cpus:,})")
    print(f"repaint with an unchanged view: median {ms(statistics.median(still))}")
    print(f"usage plots refresh: median {ms(statistics.median(usage))}, max {ms(max(usage))}")
    ok = med <= TARGET_MS / 1e3
    print(f"target: median repaint after a zoom <= {TARGET_MS:.0f} ms: "
          f"{'met' if ok else 'MISSED'}")
    w.close()
    # pyqtgraph's items sit in reference cycles: free them while the QApplication is
    # still up, not in the interpreter's last collection after it (a crash on exit)
    del w
    gc.collect()
    return 0 if ok or not args.check else 1


if __name__ == "__main__":
    sys.exit(main())

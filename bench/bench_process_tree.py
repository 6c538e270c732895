"""How fast the process tree fills and refreshes with 5,000 processes and 50,000 threads.

Builds Machine.state()-shaped documents (10 threads per process; a random tree up to 8
levels deep in which half the processes have children, a harsher case than a real
machine, where a few dozen processes parent all the others, because the view re-lays
out every expanded row), then measures, median and max over --refreshes runs:

1. first fill: ProcessTreeModel.update() on an empty model (target ≤ 1 s), and the
   same through the whole view (filter proxy, expanded QTreeView, first paint);
2. the first interval after it, where every process's CPU % goes from unknown to a
   figure (so every row changes once);
3. incremental refresh: 1 % of the processes used CPU time, 10 were created and 10
   exited (target ≤ 50 ms), for the model alone, the view in tree order, and the view
   sorted by CPU % (the model re-sorts once per refresh), each including the view's
   relayout and repaint.

The highlight clock advances one interval per refresh, as in the app refreshing once a
second: each refresh also ends the previous one's highlights, removing the processes
that exited then (red for a second). On the wall clock the refreshes come back to back
and no highlight would end before the run does.

Figures are wall time and the process's CPU time (the machine may be shared).

    QT_QPA_PLATFORM=offscreen python bench/bench_process_tree.py [--refreshes N] [--check]

--check exits 1 when a target is missed. The state documents are built before timing.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import QEvent, Qt  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from inspector.process_model import CPU_PERCENT, ProcessTreeModel, ProcessTreeView  # noqa: E402

PROCESSES = 5_000
THREADS_PER_PROCESS = 10
FILL_TARGET_S = 1.0
REFRESH_TARGET_S = 0.050
INTERVAL_US = 1_000_000.0  # one refresh a second, as Process Explorer's default
CPUS = 8
MAX_DEPTH = 8


def make_thread(pid: int, tid: int, rng: random.Random) -> dict:
    return {"tid": tid, "pid": pid, "name": None, "state": "Waiting",
            "wait_reason": "UserRequest", "priority": 8, "base_priority": 8,
            "user_time_us": rng.random() * 1e6, "kernel_time_us": 0.0,
            "context_switches": rng.randrange(1000), "cpu": rng.randrange(CPUS),
            "ideal_cpu": rng.randrange(CPUS), "affinity": list(range(CPUS)), "suspend_count": 0,
            "fiber": None, "create_time_us": 0.0, "exit_code": 259}


def make_process(pid: int, parent: int | None, created: float, rng: random.Random) -> dict:
    threads = [make_thread(pid, pid * 100 + i, rng) for i in range(THREADS_PER_PROCESS)]
    return {"pid": pid, "name": f"proc{pid}.exe", "parent_pid": parent,
            "priority_class": rng.choice(("normal", "normal", "high", "below_normal")),
            "base_priority": 8, "exit_code": 259, "exited": False,
            "jobs": ["Svc"] if pid % 7 == 0 else [], "protection": "none",
            "affinity": list(range(CPUS)), "foreground": False, "create_time_us": created,
            "exit_time_us": None, "user_time_us": sum(t["user_time_us"] for t in threads),
            "kernel_time_us": 0.0, "threads": threads}


def states(refreshes: int, seed: int = 1) -> list[dict]:
    """The first document, then one per refresh: 1 % busier, 10 born, 10 gone."""
    rng = random.Random(seed)
    procs = {}
    depth: dict[int, int] = {}
    parents: list[int] = []  # processes shallow enough to have children
    for i in range(PROCESSES):
        pid = 8 + 4 * i
        # A real tree's shape: a few roots, fan-out, at most MAX_DEPTH levels.
        parent = rng.choice(parents[-300:]) if parents and rng.random() > 0.01 else None
        depth[pid] = 0 if parent is None else depth[parent] + 1
        if depth[pid] < MAX_DEPTH:
            parents.append(pid)
        procs[pid] = make_process(pid, parent, 0.0, rng)
    next_pid = 8 + 4 * PROCESSES
    docs = []
    now = 0.0
    for r in range(refreshes + 1):
        if r:
            now += INTERVAL_US
            for pid in rng.sample(sorted(procs), PROCESSES // 100):
                p = dict(procs[pid])
                p["user_time_us"] += rng.random() * INTERVAL_US
                procs[pid] = p
            for pid in rng.sample(sorted(procs), 10):
                del procs[pid]
            live = sorted(procs)
            for _ in range(10):
                procs[next_pid] = make_process(next_pid, rng.choice(live), now - 1.0, rng)
                next_pid += 4
        docs.append({"time_us": now, "cpus": CPUS,
                     "processes": [procs[pid] for pid in sorted(procs)], "jobs": []})
    return docs


class DocumentClock:
    """The highlight clock, set to each state document's time before it is shown."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def timed(fn) -> tuple[float, float]:
    """(wall, CPU) seconds: the machine may be shared, so the process's own CPU time
    is reported beside the wall clock."""
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def run(docs: list[dict], app: QApplication, with_view: bool, sort_by_cpu: bool = False):
    clock = DocumentClock()
    model = ProcessTreeModel(clock=clock)
    if with_view:
        view = ProcessTreeView(model=model)
        view.resize(1200, 800)
        view.show()
        app.processEvents()

        def show(doc):
            clock.now = doc["time_us"] / 1e6
            view.update_state(doc)
            # What the event loop does next: the view's relayout, then the paint.
            view.tree.executeDelayedItemsLayout()
            app.processEvents()
    else:
        view = None

        def show(doc):
            clock.now = doc["time_us"] / 1e6
            model.update(doc)
    fill = timed(lambda: show(docs[0]))
    if view is not None and sort_by_cpu:
        view.tree.sortByColumn(CPU_PERCENT, Qt.SortOrder.DescendingOrder)
        app.processEvents()
    # The first interval after the fill turns every CPU % from unknown to a figure;
    # it is timed apart from the steady refreshes.
    first = timed(lambda: show(docs[1]))
    refresh = [timed(lambda d=d: show(d)) for d in docs[2:]]
    assert model.process_count() >= PROCESSES
    if view is not None:
        # Gone for good before the next run, as the main window closes it: a view left
        # to deleteLater() (which processEvents() does not carry out) would keep its
        # highlight timer, and the next run would time its expiries.
        view.close()
        model.release_items()
        view.deleteLater()
        app.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    return fill, first, refresh


def ms(seconds: float) -> str:
    return f"{seconds * 1000:6.1f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--refreshes", type=int, default=21)
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args()
    app = QApplication.instance() or QApplication([])
    docs = states(args.refreshes)
    nthreads = sum(len(p["threads"]) for p in docs[0]["processes"])
    print(f"{len(docs[0]['processes']):,} processes, {nthreads:,} threads, "
          f"{args.refreshes} refreshes (1% CPU changed, 10 created, 10 exited each)")
    ok = True
    rows = [("model only", False, False), ("view, tree order", True, False),
            ("view, sorted by CPU %", True, True)]
    print(f"{'':22s} {'first fill':>16s} {'1st interval':>16s} {'refresh median':>16s} "
          f"{'refresh max':>16s}   (ms, wall / CPU)")
    for label, with_view, sort in rows:
        fill, first, refresh = run(docs, app, with_view, sort)
        med = (statistics.median(r[0] for r in refresh), statistics.median(r[1] for r in refresh))
        worst = (max(r[0] for r in refresh), max(r[1] for r in refresh))
        print(f"{label:22s} " + " ".join(f"{ms(a)} / {ms(b)}" for a, b in
                                         (fill, first, med, worst)))
        ok &= fill[0] <= FILL_TARGET_S and med[0] <= REFRESH_TARGET_S
    print(f"targets (wall medians): first fill ≤ {FILL_TARGET_S * 1000:.0f} ms, "
          f"refresh ≤ {REFRESH_TARGET_S * 1000:.0f} ms: {'met' if ok else 'MISSED'}")
    return 0 if ok or not args.check else 1


if __name__ == "__main__":
    sys.exit(main())

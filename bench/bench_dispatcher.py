"""Dispatcher throughput: context switches per wall-clock second, bytes per switch.

8 CPUs, 40 processes x 10 threads running mixed cpu / sleep / io / event programs for
20 simulated seconds with the full context-switch trace recorded.

    PYTHONPATH=. python bench/bench_dispatcher.py [--seconds 20] [--cpus 8]
"""

from __future__ import annotations

import argparse
import random
import time

from core.kernel import Machine, ms, sec, us
from core.kernel import program as P
from core.kernel.trace import BYTES_PER_SWITCH

CLASSES = ("idle", "below_normal", "normal", "normal", "normal", "above_normal", "high")
LEVELS = ("lowest", "below_normal", "normal", "normal", "above_normal", "highest")
DEVICES = ("disk", "network", "keyboard", "sound", "disk", "namedpipe")


def build(cpus: int = 8, processes: int = 40, threads: int = 10, seed: int = 1) -> Machine:
    rng = random.Random(seed)
    m = Machine(cpus=cpus)
    for i in range(processes):
        proc = m.create_process(f"app{i}.exe", CLASSES[i % len(CLASSES)],
                                foreground=(i == 0))
        ev = m.create_event(f"ev{i}", "synchronization")
        sem = m.create_semaphore(f"sem{i}", 0, 1000)
        for j in range(threads):
            kind = (i + j) % 5
            if kind == 0:  # CPU bursts with sleeps
                prog = [P.cpu(us(rng.randint(200, 3000))), P.sleep(ms(rng.choice((1, 2, 5)))),
                        P.repeat()]
            elif kind == 1:  # I/O bound
                prog = [P.cpu(us(rng.randint(50, 500))),
                        P.io(rng.choice(DEVICES), us(rng.randint(300, 4000))), P.repeat()]
            elif kind == 2:  # producer
                prog = [P.cpu(us(rng.randint(100, 800))), P.set_event(ev),
                        P.release_semaphore(sem, 1), P.cpu(us(rng.randint(100, 800))),
                        P.repeat()]
            elif kind == 3:  # consumers
                prog = [P.wait(ev), P.cpu(us(rng.randint(50, 400))), P.wait(sem, ms(20)),
                        P.cpu(us(rng.randint(50, 300))), P.repeat()]
            else:  # long CPU with yields
                prog = [P.cpu(ms(rng.randint(5, 40))), P.yield_(), P.repeat()]
            m.create_thread(proc, LEVELS[rng.randrange(len(LEVELS))], program=prog,
                            name=f"t{i}.{j}")
    return m


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--cpus", type=int, default=8)
    args = ap.parse_args()
    m = build(args.cpus)
    t0 = time.perf_counter()
    m.run_until(sec(args.seconds))
    wall = time.perf_counter() - t0
    n = len(m.trace)
    cols = m.trace.columns()
    held = sum(a.nbytes for a in cols.values())
    print(f"simulated {args.seconds:g} s on {args.cpus} CPUs, 400 threads")
    print(f"context switches: {n:,} in {wall:.2f} s wall -> {n / wall:,.0f} switches/s")
    print(f"trace memory: {held:,} bytes = {held / max(n, 1):.1f} bytes/switch "
          f"(schema {BYTES_PER_SWITCH} bytes)")


if __name__ == "__main__":
    main()

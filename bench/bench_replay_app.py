"""Replaying a large session in the app: open it and paint, then move the time slider.

The session is bench_session.py's: a recorded simulation with --switches context
switches (default 1,000,000) and ~100,000 events, sampled every clock tick.  Then, in one
app window (offscreen unless there is a display: run it under xvfb-run for a real X
server):

- **open**: File > Open of the .koi to the window painted with it (the session opened,
  the whole trace read into the CPU timeline, the state and events of the first sample
  in every view).  Target: <= 1 s.
- **slider**: the time slider moved to a random sample, to every view refreshed and the
  window painted (grab()), median and max over 30 moves.  Target: <= 100 ms.

    PYTHONPATH=. python bench/bench_replay_app.py [--switches 1000000] [--check]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "bench"))
if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from bench_session import build  # noqa: E402

from core.kernel import ms  # noqa: E402
from core.session import Recorder  # noqa: E402


def record(path: str, switches: int) -> int:
    events: list = []
    m = build()
    m.subscribe(events.append)
    rec = Recorder(m, past_events=list(events))
    m.unsubscribe(events.append)
    until = 0
    while len(m.trace) < switches:
        until += ms(100)
        rec.run_until(until)
    rec.save(path)
    return len(m.trace)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--switches", type=int, default=1_000_000)
    ap.add_argument("--moves", type=int, default=30)
    ap.add_argument("--check", action="store_true", help="exit 1 if a target is missed")
    args = ap.parse_args()

    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    from inspector.main_window import MainWindow

    app = QApplication([])
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "bench.koi")
        n = record(path, args.switches)
        win = MainWindow(settings=QSettings(os.path.join(tmp, "k.ini"),
                                            QSettings.Format.IniFormat))
        win.resize(1400, 900)
        win.show()
        app.processEvents()

        t0 = time.perf_counter()
        assert win.open_path(path)
        app.processEvents()
        win.grab()
        opened = time.perf_counter() - t0

        samples = len(win.replay.times)
        rnd = random.Random(1)
        moves = []
        for _ in range(args.moves):
            i = rnd.randrange(samples)
            t0 = time.perf_counter()
            win.time_slider.setValue(i)
            app.processEvents()
            win.grab()
            moves.append(time.perf_counter() - t0)
        info = win.replay.info
        win.close()

    print(f"session: {n:,} context switches, {info.events:,} events, {samples:,} samples, "
          f"{os.environ.get('QT_QPA_PLATFORM') or 'display'}")
    print(f"open to painted window: {opened * 1000:.0f} ms (target <= 1000 ms)")
    print(f"slider move to every view painted: median {statistics.median(moves) * 1000:.1f} ms, "
          f"max {max(moves) * 1000:.1f} ms (target <= 100 ms)")
    missed = [name for name, ok in (("open", opened <= 1.0),
                                    ("slider", statistics.median(moves) <= 0.1)) if not ok]
    if missed:
        print("missed: " + ", ".join(missed))
    return 1 if args.check and missed else 0


if __name__ == "__main__":
    sys.exit(main())

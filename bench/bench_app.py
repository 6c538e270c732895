"""The desktop app: startup to the first painted window, and frames per second at full
simulation speed on the demo desktop.

    .venv/bin/python bench/bench_app.py                 # 5 startups, 10 s at full speed
    .venv/bin/python bench/bench_app.py --repeat 10 --seconds 20
    xvfb-run -a .venv/bin/python bench/bench_app.py     # a real X server instead of offscreen

Every measurement runs in a fresh Python process, as a user's start would.

- **startup**: from spawning `python` to the main window's first paint event, with the
  demo machine booted and running (what `koi-inspector` does).  Target: <= 2 s.
- **frames at full speed**: the app running the demo at "Fastest" for N seconds; how
  many frames the window produced per second (each frame simulates for up to 12 ms,
  then every view refreshes and repaints), and the longest gap between two frames, the
  stall a user would feel.  Target: >= 30 frames per second.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CHILD = r"""
import json, sys, time
T_SPAWN = float(sys.argv[1])
MODE = sys.argv[2]
SECONDS = float(sys.argv[3])
from PySide6.QtCore import QEvent, QObject, QTimer
from PySide6.QtWidgets import QApplication
from inspector.main_window import MainWindow

app = QApplication([])
window = MainWindow()
window.load_default()
result = {}

class FirstPaint(QObject):
    def eventFilter(self, obj, event):
        if event.type() == QEvent.Type.Paint and "first_paint" not in result:
            result["first_paint"] = time.time() - T_SPAWN
            if MODE == "startup":
                QTimer.singleShot(0, app.quit)
        return False

watch = FirstPaint()
window.installEventFilter(watch)
frames = []
if MODE == "fps":
    window.sim.set_speed(None)
    window.sim.frameAdvanced.connect(lambda: frames.append(time.perf_counter()))
    QTimer.singleShot(int(SECONDS * 1000), app.quit)
window.show()
window.sim.start()
app.exec()
if frames:
    # a frame ends when its views have refreshed: the next frame's signal comes after
    gaps = [b - a for a, b in zip(frames, frames[1:])]
    result["frames"] = len(frames)
    result["fps"] = (len(frames) - 1) / (frames[-1] - frames[0])
    result["max_gap_ms"] = max(gaps) * 1000
    result["p95_gap_ms"] = sorted(gaps)[int(len(gaps) * 0.95)] * 1000
    result["simulated_s"] = window.sim.now_ns / 1e9
window.close()
print(json.dumps(result))
"""


def child(mode: str, seconds: float) -> dict:
    env = dict(os.environ)
    if not env.get("DISPLAY") and not env.get("WAYLAND_DISPLAY"):
        env.setdefault("QT_QPA_PLATFORM", "offscreen")  # no display: render offscreen
    env["PYTHONPATH"] = str(ROOT)
    spawn = time.time()
    out = subprocess.run([sys.executable, "-c", CHILD, repr(spawn), mode, str(seconds)],
                         capture_output=True, text=True, env=env, cwd=ROOT, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--check", action="store_true", help="exit 1 if a target is missed")
    args = ap.parse_args()
    platform = os.environ.get("QT_QPA_PLATFORM") or (
        "the display's" if os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
        else "offscreen")
    print(f"platform: {platform}")
    starts = [child("startup", 0)["first_paint"] for _ in range(args.repeat)]
    print(f"startup to first paint: min {min(starts):.2f} s, "
          f"median {statistics.median(starts):.2f} s ({args.repeat} runs)")
    fps = child("fps", args.seconds)
    print(f"full speed for {args.seconds:g} s: {fps['fps']:.1f} frames/s, longest gap "
          f"{fps['max_gap_ms']:.0f} ms, 95th percentile {fps['p95_gap_ms']:.0f} ms, "
          f"{fps['simulated_s']:.1f} s simulated")
    ok = statistics.median(starts) <= 2.0 and fps["fps"] >= 30
    if args.check and not ok:
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The app showing this machine live: the whole process's CPU use while it samples every
second, with --processes processes and about --heavy x --threads threads on top of what
the machine runs (the load of bench_live.py: children blocked reading a pipe).

The app is started as a user starts it (a fresh Python, the main window, the demo
loaded), switched to View > Source > This machine, and left to take its first samples
(--warmup seconds: the cold one and the rotation that completes it). Then the process
with the most threads is selected, as a user looking at it would, and the whole app
(sampler thread, recording for File > Save Session, every view refreshing, painting) is
measured for --seconds: its CPU time (getrusage) as a share of one core. Target: < 5 %.

    PYTHONPATH=. python bench/bench_live_app.py [--seconds 30] [--warmup 8] [--no-load]
    xvfb-run -a python bench/bench_live_app.py   # a real X server instead of offscreen
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench_live import add_load_arguments, start_load, stop_load  # noqa: E402

CHILD = r"""
import json, resource, sys, time
WARMUP, SECONDS = float(sys.argv[1]), float(sys.argv[2])
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication
from inspector.main_window import MainWindow

app = QApplication([])
window = MainWindow()
window.load_default()
window.show()
result = {}
refreshes = []
window.live.sampled.connect(lambda: refreshes.append(time.thread_time()))

def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime

def sampler_thread_cpu():  # all the sampling thread does: sampling, view state, recording
    clock = time.pthread_getcpuclockid(window.live.sampler._thread.ident)
    return time.clock_gettime(clock)

def begin():
    snap = window.live.latest
    heavy = max(snap.processes, key=lambda p: len(p.threads))
    window.processes.select_pid(heavy.pid)
    result.update(processes=len(snap.processes), threads=snap.thread_count(),
                  selected_threads=len(heavy.threads))
    result["t0"], result["cpu0"] = time.monotonic(), cpu()
    result["gui0"], result["thread0"] = time.thread_time(), sampler_thread_cpu()
    result["samples0"], result["sampler0"] = len(refreshes), window.live.sampler.cpu_seconds
    QTimer.singleShot(int(SECONDS * 1000), end)

def end():
    wall = time.monotonic() - result.pop("t0")
    result["wall_s"] = wall
    result["process_percent"] = (cpu() - result.pop("cpu0")) / wall * 100
    result["sampler_percent"] = (window.live.sampler.cpu_seconds
                                 - result.pop("sampler0")) / wall * 100
    result["gui_percent"] = (time.thread_time() - result.pop("gui0")) / wall * 100
    result["thread_percent"] = (sampler_thread_cpu() - result.pop("thread0")) / wall * 100
    result["samples"] = len(refreshes) - result.pop("samples0")
    app.quit()

QTimer.singleShot(0, window.show_live)
QTimer.singleShot(int(WARMUP * 1000), begin)
app.exec()
window.live.close()
window.close()
import gc
gc.collect()  # pyqtgraph's cycles, while Qt is still up
print(json.dumps(result))
"""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_load_arguments(ap)
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--warmup", type=float, default=8.0)
    ap.add_argument("--check", action="store_true", help="exit 1 if the target is missed")
    args = ap.parse_args()
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    if not env.get("DISPLAY") and not env.get("WAYLAND_DISPLAY"):
        env.setdefault("QT_QPA_PLATFORM", "offscreen")
    load = None if args.no_load else start_load(args.processes, args.heavy, args.threads)
    try:
        out = subprocess.run([sys.executable, "-c", CHILD, str(args.warmup), str(args.seconds)],
                             capture_output=True, text=True, env=env, cwd=ROOT)
    finally:
        if load is not None:
            stop_load(load)
    if out.returncode != 0:
        sys.stderr.write(out.stderr)
        return out.returncode
    r = json.loads(out.stdout.strip().splitlines()[-1])
    print(f"platform: {env.get('QT_QPA_PLATFORM') or 'the display'}")
    print(f"{r['processes']} processes, {r['threads']} threads; selected a process with "
          f"{r['selected_threads']} threads")
    print(f"{r['samples']} samples shown in {r['wall_s']:.1f} s")
    print(f"whole app: {r['process_percent']:.2f} % of one core")
    print(f"  sampling thread {r['thread_percent']:.2f} % (reading /proc "
          f"{r['sampler_percent']:.2f} %, the rest the view state and the recording)")
    print(f"  GUI thread {r['gui_percent']:.2f} % (every view refreshing, painting)")
    print(f"  the rest {r['process_percent'] - r['thread_percent'] - r['gui_percent']:.2f} %"
          f" (Qt's own threads, the garbage collector's share elsewhere)")
    return 1 if args.check and r["process_percent"] >= 5 else 0


if __name__ == "__main__":
    sys.exit(main())

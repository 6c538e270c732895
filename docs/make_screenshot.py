"""Make docs/screenshot.png, the README's picture: the demo desktop at 3 s, paused, with
fibers.exe's thread selected (its _ETHREAD and hex view, its fibers and FLS), and the
CPU-capped search-indexer job selected in the Jobs dock. Run it under a display:

    xvfb-run -a -s "-screen 0 1700x1100x24" python docs/make_screenshot.py

Window settings come from a fresh temporary file, not the user's.
"""

from __future__ import annotations

import gc
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from PySide6.QtCore import QSettings, QTimer  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from inspector.main_window import MainWindow  # noqa: E402

OUT = ROOT / "docs" / "screenshot.png"
FIBER_PROCESS, FIBER_THREAD = "fibers.exe", "fiber-host"


def main() -> int:
    app = QApplication([])
    with tempfile.TemporaryDirectory() as tmp:
        settings = QSettings(str(Path(tmp) / "koi.ini"), QSettings.Format.IniFormat)
        window = MainWindow(settings=settings)
        window.load_default()
        window.resize(1600, 1000)
        window.show()

        def pose() -> None:
            window.sim.advance_to(3_000_000_000)
            window.refresh()
            state = window.sim.machine.state()
            proc = next(p for p in state["processes"] if p["name"] == FIBER_PROCESS)
            thread = next(t for t in proc["threads"] if t["name"] == FIBER_THREAD)
            window.processes.select_pid(proc["pid"])
            window.select_thread(proc["pid"], thread["tid"])
            window.jobs.select_job("search-indexer")
            window.select_thread(proc["pid"], thread["tid"])  # the Object tab shows it
            QTimer.singleShot(500, shoot)

        def shoot() -> None:
            window.grab().save(str(OUT))
            app.quit()

        QTimer.singleShot(200, pose)
        app.exec()
        window.close()
        gc.collect()  # pyqtgraph's cycles, while Qt is still up
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

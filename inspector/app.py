"""``koi-inspector``: start KOI's desktop app.

``--help`` and ``--version`` are answered before Qt is imported, so they work
without a display and return at once.
"""

from __future__ import annotations

import argparse
import gc
import sys

from core import __version__

PROG = "koi-inspector"

# File types the app opens: scenarios run on the simulated kernel, sessions replay
OPENABLE_FILE_TYPES: tuple[str, ...] = (".toml", ".koi")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="KOI (Kernel Object Inspector): watch a simulated Windows kernel's "
                    "processes, threads and scheduler, with its objects laid out as real "
                    "Windows builds lay them out. Without FILE it opens a booted Windows 10 "
                    "desktop running the demo scenario.")
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    parser.add_argument(
        "file", nargs="?", metavar="FILE",
        help="a scenario (.toml) to run, or a saved session (.koi) to replay, instead "
             "of the demo")
    parser.add_argument("--quit-after", metavar="MS", type=int,
                        help="quit by itself after MS milliseconds (smoke test of an "
                             "installed build)")
    return parser


def unsupported_file_message(path: str) -> str:
    supported = ", ".join(OPENABLE_FILE_TYPES)
    return (f"{PROG}: cannot open {path}: the app opens scenarios (.toml) and saved "
            f"sessions (.koi) ({supported}). Start {PROG} without a FILE for the demo "
            f"machine.")


def _report(message: str) -> None:
    """Tell the user: on stderr when there is one, else (a windowed start on
    Windows has no console) in a message box."""
    if sys.stderr is not None:
        print(message, file=sys.stderr)
        return
    from PySide6.QtWidgets import QApplication, QMessageBox

    _app = QApplication.instance() or QApplication([PROG])
    QMessageBox.critical(None, "KOI", message)


def _check_file(path: str) -> str | None:
    """Why `path` cannot be opened (None: it can): a scenario that does not load, or a
    file that is not a session KOI reads (checked read-only: the file is not touched)."""
    import os

    if os.path.splitext(path)[1].lower() == ".koi":
        from core.session import SessionError, open_session

        try:
            open_session(path).close()
        except (SessionError, OSError) as exc:
            return str(exc)
        return None
    from core.scenario import ScenarioError, load_scenario

    try:
        load_scenario(path)
    except ScenarioError as exc:
        return str(exc)
    return None


def main(argv: list[str] | None = None) -> int:
    """Run the app; returns the process exit status."""
    try:
        args = _parser().parse_args(sys.argv[1:] if argv is None else argv)
    except SystemExit as stop:  # --help, --version, or a usage error already printed
        return stop.code if isinstance(stop.code, int) else 0 if stop.code is None else 2

    import os

    if args.file is not None and os.path.splitext(args.file)[1].lower() not in \
            OPENABLE_FILE_TYPES:
        _report(unsupported_file_message(args.file))
        return 2
    if args.file is not None:
        problem = _check_file(args.file)  # a bad file is reported before any window opens
        if problem is not None:
            _report(f"{PROG}: {problem}")
            return 2

    from PySide6.QtWidgets import QApplication

    from inspector.main_window import MainWindow

    app = QApplication.instance() or QApplication([sys.argv[0] if sys.argv else PROG])
    app.setApplicationName("KOI")
    app.setOrganizationName("KOI")
    app.setApplicationVersion(__version__)
    # The installed .desktop entry (Wayland app_id) and KOI's icon for every window
    from PySide6.QtGui import QIcon

    from core.resources import resource_path

    app.setDesktopFileName("io.github.koi_inspector.KOI")
    app.setWindowIcon(QIcon(str(resource_path("icons/koi.svg"))))
    window = MainWindow()  # referenced until exec() returns, then freed with this frame
    if args.file is not None:
        window.open_path(args.file)
    else:
        window.load_default()
    if args.quit_after is not None:
        from PySide6.QtCore import QTimer

        QTimer.singleShot(max(0, args.quit_after), app.quit)
    window.show()
    if window.mode == "simulation":
        window.sim.start()  # a session opens paused at its start, like a recording
    status = app.exec()
    # pyqtgraph's items sit in reference cycles: free them while Qt is still up, not in
    # the interpreter's last collection after QApplication is gone (a crash on exit)
    del window
    gc.collect()
    return status


if __name__ == "__main__":
    sys.exit(main())

"""``koi-inspector``: start KOI's desktop app.

``--help`` and ``--version`` are answered before Qt is imported, so they work
without a display and return at once.
"""

from __future__ import annotations

import argparse
import sys

from core import __version__

PROG = "koi-inspector"

# File types this version can open. None yet: scenarios and recorded sessions
# come with the object inspector.
OPENABLE_FILE_TYPES: tuple[str, ...] = ()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="KOI (Kernel Object Inspector): browse the Windows kernel structure "
                    "layouts KOI ships for real Windows builds, as WinDbg's dt shows them.")
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    parser.add_argument(
        "file", nargs="?", metavar="FILE",
        help="a file to open (this version opens no file types yet; scenarios and "
             "recorded sessions come in a later version)")
    return parser


def unsupported_file_message(path: str) -> str:
    supported = ", ".join(OPENABLE_FILE_TYPES) or "none yet"
    return (f"{PROG}: cannot open {path}: KOI {__version__} opens no files (supported file "
            f"types: {supported}; scenarios and recorded sessions come in a later version). "
            f"Start {PROG} without a FILE to browse structure layouts.")


def _report(message: str) -> None:
    """Tell the user: on stderr when there is one, else (a windowed start on
    Windows has no console) in a message box."""
    if sys.stderr is not None:
        print(message, file=sys.stderr)
        return
    from PySide6.QtWidgets import QApplication, QMessageBox

    _app = QApplication.instance() or QApplication([PROG])
    QMessageBox.critical(None, "KOI", message)


def main(argv: list[str] | None = None) -> int:
    """Run the app; returns the process exit status."""
    try:
        args = _parser().parse_args(sys.argv[1:] if argv is None else argv)
    except SystemExit as stop:  # --help, --version, or a usage error already printed
        return stop.code if isinstance(stop.code, int) else 0 if stop.code is None else 2

    if args.file is not None:
        _report(unsupported_file_message(args.file))
        return 2

    from PySide6.QtWidgets import QApplication

    from inspector.main_window import MainWindow

    app = QApplication.instance() or QApplication([sys.argv[0] if sys.argv else PROG])
    app.setApplicationName("KOI")
    app.setOrganizationName("KOI")
    app.setApplicationVersion(__version__)
    window = MainWindow()  # referenced until exec() returns, then freed with this frame
    window.show()
    return app.exec()


if __name__ == "__main__":
    sys.exit(main())

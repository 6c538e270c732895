"""KOI's main window: menus, status bar and the structure layout browser."""

from __future__ import annotations

import html

from PySide6 import __version__ as pyside_version
from PySide6.QtCore import qVersion
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QApplication, QLabel, QMainWindow, QMessageBox, QWidget

from core import __version__
from core.layouts import Build, Catalogue, catalogue
from inspector.layout_browser import LayoutBrowser

WINDOW_TITLE = "KOI — Kernel Object Inspector"

BIT_POSITIONS = {
    "exact": "bit positions exact (from Microsoft symbols)",
    "derived": "bit positions derived from bitfield widths",
    "partly inferred": "bit positions partly inferred",
}


class MainWindow(QMainWindow):
    def __init__(self, cat: Catalogue | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._catalogue = cat or catalogue()
        self.setWindowTitle(WINDOW_TITLE)
        self.resize(1200, 800)

        self.browser = LayoutBrowser(self._catalogue)
        self.setCentralWidget(self.browser)

        self.build_label = QLabel()
        self.build_label.setObjectName("build_status")
        self.warning_label = QLabel()
        self.warning_label.setObjectName("build_warning")
        # Fixed colours: the warning must read the same in light and dark themes.
        self.warning_label.setStyleSheet(
            "QLabel { background: #fff3cd; color: #664d03; border: 1px solid #d9b949;"
            " border-radius: 3px; padding: 0px 6px; }")
        self.statusBar().addPermanentWidget(self.warning_label)
        self.statusBar().addPermanentWidget(self.build_label)

        self._make_menus()
        self.browser.sig_build_changed.connect(self._on_build_changed)
        self.browser.sig_message.connect(lambda text: self.statusBar().showMessage(text, 4000))
        self._on_build_changed(self.browser.build)

    def _make_menus(self) -> None:
        b = self.browser
        file_menu = self.menuBar().addMenu("&File")
        self.quit_action = QAction("&Quit", self)
        self.quit_action.setShortcut(QKeySequence.StandardKey.Quit)
        self.quit_action.setStatusTip("Quit KOI")
        self.quit_action.triggered.connect(self.close)
        file_menu.addAction(self.quit_action)

        edit_menu = self.menuBar().addMenu("&Edit")
        edit_menu.addAction(b.copy_rows_action)
        edit_menu.addAction(b.copy_dt_action)
        edit_menu.addSeparator()
        edit_menu.addAction(b.find_type_action)

        view_menu = self.menuBar().addMenu("&View")
        view_menu.addAction(b.back_action)
        view_menu.addAction(b.forward_action)
        view_menu.addSeparator()
        view_menu.addAction(b.open_type_action)
        view_menu.addAction(b.expand_all_action)
        view_menu.addAction(b.collapse_all_action)
        view_menu.addSeparator()
        status_action = QAction("&Status Bar", self, checkable=True, checked=True)
        status_action.toggled.connect(self.statusBar().setVisible)
        view_menu.addAction(status_action)

        help_menu = self.menuBar().addMenu("&Help")
        self.about_action = QAction("&About KOI", self)
        self.about_action.setStatusTip("Version, purpose and the sources of the layout data")
        self.about_action.triggered.connect(self.show_about)
        help_menu.addAction(self.about_action)
        about_qt = QAction("About &Qt", self)
        about_qt.triggered.connect(QApplication.aboutQt)
        help_menu.addAction(about_qt)

    def _on_build_changed(self, build: Build) -> None:
        self.build_label.setText(
            f"{build.name} · {build.id} {build.arch} · "
            f"{BIT_POSITIONS.get(build.bit_positions, 'bit positions ' + build.bit_positions)}")
        self.build_label.setToolTip(
            f"Source: {build.source}\nFormat: {build.source_format}\nLicence: {build.licence}"
            + (f"\nKernel PDB: {build.pdb_guid}-{build.pdb_age}" if build.pdb_guid else ""))
        partly = build.bit_positions == "partly inferred"
        self.warning_label.setVisible(partly)
        if partly:
            self.warning_label.setText("⚠ Partly inferred layout: some types and bit "
                                       "positions are guesses (italic grey rows)")
            self.warning_label.setToolTip(build.notes)

    def show_about(self) -> None:
        QMessageBox.about(self, "About KOI", about_text(self._catalogue))


def about_text(cat: Catalogue) -> str:
    """The About box: version, what KOI is, where its layout data comes from."""
    groups: dict[str, list[Build]] = {}
    for build in cat.builds:
        groups.setdefault(build.licence, []).append(build)
    sources = []
    for licence, builds in sorted(groups.items(), key=lambda item: -len(item[1])):
        first = builds[0]
        arches = "/".join(sorted({b.arch for b in builds}))
        span = builds[0].id if len(builds) == 1 else f"{builds[0].id} to {builds[-1].id}"
        count = f"{len(builds)} build{'s' if len(builds) > 1 else ''}"
        sources.append(
            f"<li><b>{html.escape(licence)}</b>: {count} ({arches}, {span}); "
            f"{html.escape(first.source_format)}; "
            f"{BIT_POSITIONS.get(first.bit_positions, first.bit_positions)}.</li>")
    return (
        f"<h3>KOI {__version__}</h3>"
        "<p><b>Kernel Object Inspector</b> shows the Windows NT kernel objects of a "
        "simulated kernel (processes, threads, jobs), laid out as real Windows builds "
        "lay them out.</p>"
        f"<p>This version browses the structure layouts of {len(cat.builds)} Windows "
        "builds, as WinDbg's <code>dt</code> shows them.</p>"
        f"<p><b>Layout data</b></p><ul>{''.join(sources)}</ul>"
        "<p>Italic grey members mark data that KOI filled in or the source inferred; "
        "their tooltips say from where.</p>"
        f"<p>Qt {qVersion()}, PySide6 {pyside_version}.</p>")

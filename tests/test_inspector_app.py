"""The desktop app's start-up (``inspector.app.main``) and main window."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from PySide6.QtWidgets import QApplication, QMessageBox

from core import __version__
from core.layouts import catalogue
from inspector import app
from inspector.main_window import WINDOW_TITLE, MainWindow

ROOT = Path(__file__).resolve().parent.parent


def run_python(code: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=ROOT, env=env, timeout=120)


@pytest.fixture
def window(qtbot):
    win = MainWindow()
    qtbot.addWidget(win)
    win.show()
    qtbot.waitExposed(win)
    return win


# ---- main()

def test_version_is_printed_without_loading_qt():
    proc = run_python(
        "import sys\n"
        "from inspector.app import main\n"
        "status = main(['--version'])\n"
        "print('QT', any(m.split('.')[0] == 'PySide6' for m in sys.modules), file=sys.stderr)\n"
        "sys.exit(status)\n")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == f"koi-inspector {__version__}\n"
    assert "QT False" in proc.stderr


def test_version_and_help_in_process(capsys):
    widgets_before = set(QApplication.topLevelWidgets()) if QApplication.instance() else set()
    assert app.main(["--version"]) == 0
    assert capsys.readouterr().out == f"koi-inspector {__version__}\n"
    assert app.main(["--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: koi-inspector") and "FILE" in out and "--version" in out
    after = set(QApplication.topLevelWidgets()) if QApplication.instance() else set()
    assert after == widgets_before  # no window was made


def test_unknown_option_is_a_usage_error(capsys):
    assert app.main(["--frobnicate"]) == 2
    assert "unrecognized arguments: --frobnicate" in capsys.readouterr().err


def test_a_file_is_refused_with_exit_2_and_a_clear_message(capsys, tmp_path):
    scenario = tmp_path / "boot.koi"
    scenario.write_text("{}")
    assert app.main([str(scenario)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert f"cannot open {scenario}" in captured.err
    assert "supported file types: none yet" in captured.err
    assert "Traceback" not in captured.err


def test_a_file_is_refused_in_a_fresh_process_without_traceback():
    proc = run_python("import sys\nfrom inspector.app import main\n"
                      "sys.exit(main(['no-such-session.sqlite']))\n")
    assert proc.returncode == 2
    assert "cannot open no-such-session.sqlite" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stderr.count("\n") == 1  # one line


def test_without_a_console_the_refusal_is_a_dialog(qapp, monkeypatch):
    shown = []
    monkeypatch.setattr(sys, "stderr", None)  # pythonw on Windows has no stderr
    monkeypatch.setattr(QMessageBox, "critical", lambda *args: shown.append(args))
    assert app.main(["x.koi"]) == 2
    assert len(shown) == 1 and "cannot open x.koi" in shown[0][2]


def test_main_opens_the_window_and_exits_with_the_event_loop(qapp, monkeypatch):
    seen = {}

    def fake_exec(self):
        windows = [w for w in QApplication.topLevelWidgets()
                   if isinstance(w, MainWindow) and w.isVisible()]
        seen["titles"] = [w.windowTitle() for w in windows]
        for w in windows:
            w.close()
        return 0

    monkeypatch.setattr(QApplication, "exec", fake_exec)
    assert app.main([]) == 0
    assert seen["titles"] == [WINDOW_TITLE]
    assert qapp.applicationName() == "KOI"
    assert qapp.organizationName() == "KOI"
    assert qapp.applicationVersion() == __version__


# ---- The main window

def test_window_opens_and_closes(window):
    assert window.windowTitle() == "KOI — Kernel Object Inspector"
    assert window.width() >= 1000 and window.height() >= 700
    assert [a.text() for a in window.menuBar().actions()] == ["&File", "&Edit", "&View", "&Help"]
    assert window.centralWidget() is window.browser
    assert window.close()
    assert not window.isVisible()


def test_quit_action_closes_the_window(window):
    window.quit_action.trigger()
    assert not window.isVisible()


def test_status_bar_names_the_build(window):
    text = window.build_label.text()
    assert "Windows 10 22H2" in text and "10.0.19041.3570 x64" in text
    assert "bit positions exact" in text
    assert not window.warning_label.isVisible()

    window.browser.set_build(catalogue().find("5.1.2600.5512", "x86"))
    assert "Windows XP SP3 · 5.1.2600.5512 x86" in window.build_label.text()
    assert "derived" in window.build_label.text()
    assert not window.warning_label.isVisible()


def test_partly_inferred_build_shows_a_warning(window):
    window.browser.set_build(catalogue().find("10.0.26100", "x64"))
    assert window.warning_label.isVisible()
    assert "Partly inferred" in window.warning_label.text()
    assert "partly inferred" in window.build_label.text()
    window.browser.set_build(catalogue().find())
    assert not window.warning_label.isVisible()


def test_about_dialog(window, monkeypatch):
    shown = []
    monkeypatch.setattr(QMessageBox, "about", lambda *args: shown.append(args))
    window.about_action.trigger()
    assert len(shown) == 1
    parent, title, text = shown[0]
    assert parent is window and title == "About KOI"
    assert f"KOI {__version__}" in text
    assert "Kernel Object Inspector" in text
    for source in ("BSD-3-Clause (JPCERTCC/Windows-Symbol-Tables)",
                   "Apache-2.0 (novafacing/vergilius-rs; data from vergiliusproject.com)",
                   "MIT (Rickebo/ntoskrnlib)"):
        assert source in text
    assert f"{len(catalogue().builds)} Windows builds" in text


def test_copy_message_reaches_the_status_bar(window):
    window.browser.copy_dt_action.trigger()
    assert window.statusBar().currentMessage().startswith("Copied dt nt!_EPROCESS")

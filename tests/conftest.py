"""Shared test set-up: Qt renders offscreen, so the suite needs no display."""

import os

import pytest

# Before anything imports Qt (pytest-qt does at plugin load, after this conftest is read).
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


@pytest.fixture(autouse=True, scope="session")
def _private_settings(tmp_path_factory):
    """QSettings written by the app under test go to a temporary directory, never the
    user's own configuration."""
    try:
        from PySide6.QtCore import QSettings
    except ImportError:
        yield
        return
    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope,
                      str(tmp_path_factory.mktemp("settings")))
    yield


@pytest.fixture
def no_mouse_rate_limit():
    """pyqtgraph drops mouse moves closer than 1/mouseRateLimit s; tests move at once."""
    import pyqtgraph as pg

    old = pg.getConfigOption("mouseRateLimit")
    pg.setConfigOption("mouseRateLimit", -1)
    yield
    pg.setConfigOption("mouseRateLimit", old)


@pytest.fixture
def answer_next_dialog():
    """answer(accept, fill=None): once the event loop runs (inside a modal exec), fill
    in the visible dialog with `fill(dialog)` and accept or reject it, as a user would."""
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication, QDialog

    def answer(accept: bool, fill=None) -> None:
        def act():
            dialog = next(w for w in QApplication.topLevelWidgets()
                          if isinstance(w, QDialog) and w.isVisible())
            if fill is not None:
                fill(dialog)
            dialog.accept() if accept else dialog.reject()
        QTimer.singleShot(0, act)
    return answer

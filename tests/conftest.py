import pytest
"""Shared test set-up: Qt renders offscreen, so the suite needs no display."""

import os

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

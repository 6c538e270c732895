"""Shared test set-up: Qt renders offscreen, so the suite needs no display."""

import os

# Before anything imports Qt (pytest-qt does at plugin load, after this conftest is read).
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

"""Where KOI's shipped data lives: ``resources/`` beside ``core/``.

The same relation holds in a source checkout, an installed wheel (both are
installed side by side) and a PyInstaller bundle (both are collected into it).
"""

from __future__ import annotations

from pathlib import Path

RESOURCES = Path(__file__).resolve().parent.parent / "resources"


def resource_path(relative: str) -> Path:
    return RESOURCES / relative

"""KOI's product shell: the desktop app (``inspector.app``) and the ``koi`` command (``inspector.cli``).

Nothing is imported here, Qt least of all: ``koi dt`` and ``koi layouts`` stay fast because
only ``koi gui`` (and the ``koi-inspector`` entry point) load ``inspector.app`` and PySide6.
"""

"""The frame clock the simulation and a session's playback share: a QTimer that fires
a frame every `frame_ms` while running, and the wall time since the last frame, which
the frame turns into simulated or recorded time at the chosen speed."""

from __future__ import annotations

import time

from PySide6.QtCore import QObject, QTimer, Signal


class PacedController(QObject):
    """Run, pause, toggle and the frame timer; a subclass's `_frame` advances by
    `_elapsed_s()` (times the speed) and says so with `frameAdvanced`."""

    frameAdvanced = Signal()
    runningChanged = Signal(bool)

    def __init__(self, parent: QObject | None, frame_ms: int, clock=time.perf_counter) -> None:
        super().__init__(parent)
        self._clock = clock
        self._last_wall: float | None = None
        self._timer = QTimer(self)
        self._timer.setInterval(frame_ms)
        self._timer.timeout.connect(self._frame)

    @property
    def running(self) -> bool:
        return self._timer.isActive()

    def start(self) -> None:
        if self.running:
            return
        self._last_wall = self._clock()
        self._timer.start()
        self.runningChanged.emit(True)

    def pause(self) -> None:
        if self.running:
            self._timer.stop()
            self.runningChanged.emit(False)

    def toggle(self) -> None:
        self.pause() if self.running else self.start()

    def _elapsed_s(self) -> float:
        """Wall seconds since the previous frame (or the start)."""
        now = self._clock()
        elapsed = now - (self._last_wall if self._last_wall is not None else now)
        self._last_wall = now
        return elapsed

    def _frame(self) -> None:  # the timer's slot; subclasses advance here
        self.frameAdvanced.emit()

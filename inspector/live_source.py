"""This machine, live, in the app: core.live's Sampler on its background thread, its
samples handed to the GUI thread as view states.

Everything per sample that costs (reading /proc or NtQuerySystemInformation, building
the Machine.state()-shaped view state, recording it for File > Save Session) runs on the
sampler's thread; the GUI thread only takes the finished view state (`sampled`) and
repaints.  The recording is bounded (`RETENTION_NS`) and so is the sampler's history,
so watching for hours does not grow.
"""

from __future__ import annotations

import threading
import time

from PySide6.QtCore import QObject, Qt, Signal

from inspector.cli_live import LiveRecording

DEFAULT_INTERVAL_S = 1.0
INTERVALS_S = (0.1, 0.25, 0.5, 1.0, 2.0, 5.0)
HISTORY_SAMPLES = 600  # the graphs' memory: 10 minutes at the default interval
RETENTION_NS = 30 * 60 * 1_000_000_000  # a saved live session keeps the last 30 minutes


def _open_source():
    from core.live import open_source, raise_open_file_limit

    raise_open_file_limit()
    return open_source()


class LiveController(QObject):
    """Samples this machine while started; `state()` is the newest view state."""

    sampled = Signal()  # on the GUI thread: state() and history are newer
    failed = Signal(str)  # a sample (or opening the source) failed: why
    runningChanged = Signal(bool)
    _delivered = Signal(object, object)  # sampler thread -> GUI thread: (snapshot, view)
    _errored = Signal(str)

    def __init__(self, parent: QObject | None = None, open_source=_open_source) -> None:
        super().__init__(parent)
        self._open_source = open_source
        self.interval_s = DEFAULT_INTERVAL_S
        self.source = None
        self.sampler = None
        self.recording: LiveRecording | None = None
        self.latest = None  # the newest Snapshot
        self._state: dict | None = None
        self._new_events: list[dict] = []  # processes and threads seen to come and go
        self._lock = threading.Lock()  # the recording: sampler thread adds, GUI saves
        self._started_wall: float | None = None
        self._history = None  # kept across pauses, so the graphs go on
        self.retention_ns = RETENTION_NS
        self._delivered.connect(self._deliver, Qt.ConnectionType.QueuedConnection)
        self._errored.connect(self.failed, Qt.ConnectionType.QueuedConnection)

    # ------------------------------------------------------------------ control
    @property
    def running(self) -> bool:
        return self.sampler is not None and self.sampler.running

    def start(self) -> bool:
        """Start sampling (a first sample comes at once); False, with `failed`, if this
        machine cannot be read."""
        if self.running:
            return True
        from core.live import LiveError, Sampler

        if self.source is None:
            try:
                self.source = self._open_source()
            except (LiveError, OSError) as exc:
                self.failed.emit(f"Cannot sample this machine: {exc}")
                return False
        if self.recording is None:
            self.recording = LiveRecording(round(self.interval_s * 1e9), self.retention_ns)
        self.sampler = Sampler(self.source, self.interval_s, history=HISTORY_SAMPLES,
                               callback=self._on_snapshot, on_error=self._on_error)
        if self._history is not None:
            self.sampler.history = self._history
        self._history = self.sampler.history
        self._started_wall = time.monotonic()
        self.sampler.start()
        self.runningChanged.emit(True)
        return True

    def stop(self) -> None:
        """Stop sampling (the sample in progress completes first); the state shown and
        the recording stay."""
        if self.sampler is not None:
            self.sampler.stop()
            self.sampler = None
            self.runningChanged.emit(False)

    def toggle(self) -> None:
        self.stop() if self.running else self.start()

    def close(self) -> None:
        """Stop and let go of the source (it holds open files on some systems)."""
        self.stop()
        if self.source is not None:
            self.source.close()
            self.source = None

    def set_interval(self, seconds: float) -> None:
        if not seconds >= INTERVALS_S[0]:
            raise ValueError(f"the interval must be at least {INTERVALS_S[0] * 1000:g} ms")
        self.interval_s = float(seconds)
        if self.running:  # a new pace: restart the thread (history and recording stay)
            self.stop()
            self.start()

    # ------------------------------------------------------------------ samples
    def _on_snapshot(self, snap) -> None:
        """Sampler thread: build and record the view state, then hand it over."""
        with self._lock:
            view = self.recording.add(snap)
        self._delivered.emit(snap, view)

    def _on_error(self, exc: BaseException) -> None:
        self._errored.emit(f"A sample of this machine failed: {exc}")

    def _deliver(self, snap, view: dict) -> None:
        if self.sampler is None:
            return  # stopped meanwhile: a late sample is not shown
        self.latest, self._state = snap, view
        self._new_events.extend(snap.events or ())
        self.sampled.emit()

    def state(self) -> dict | None:
        return self._state

    def take_new_events(self) -> list[dict]:
        """The events of the samples delivered since the last call (formats.md section 3,
        sampled: see core.live.lifecycle_events)."""
        events, self._new_events = self._new_events, []
        return events

    @property
    def history(self):
        return self._history

    @property
    def cost_percent(self) -> float | None:
        """CPU time the sampling thread used, as a share of one core since it started."""
        if self.sampler is None or self._started_wall is None:
            return None
        elapsed = time.monotonic() - self._started_wall
        return 100.0 * self.sampler.cpu_seconds / elapsed if elapsed > 0 else None

    def set_retention(self, retention_ns: int) -> None:
        """Keep at least this much wall time of samples in the recording."""
        with self._lock:
            self.retention_ns = retention_ns
            if self.recording is not None:
                self.recording.retention_ns = retention_ns
                if self.recording.recorder is not None:
                    self.recording.recorder.retention_ns = retention_ns

    def save_session(self, path: str) -> int:
        """Write what was sampled so far as a session (atomically); returns how many
        samples.  SessionError/OSError propagate; ValueError when nothing was sampled."""
        with self._lock:
            if self.recording is None or self.recording.recorder is None:
                raise ValueError("nothing has been sampled yet")
            self.recording.recorder.save(path)
            return self.recording.recorder.samples

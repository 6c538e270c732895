"""Sampling on a background thread, with a bounded history for the CPU timelines.

    sampler = Sampler(open_source(), interval_s=1.0, callback=on_snapshot)
    sampler.start()
    ...
    sampler.stop()

`callback` runs on the sampler's thread with each Snapshot (a Qt view marshals it to
the GUI thread; a recorder can write it directly; ``queue.put`` turns it into a
queue). The history keeps per-CPU utilisation, the non-zero per-process and
per-thread CPU % and the sampled "who ran" strip of the last `history` samples only,
so a long run does not grow; full snapshots are not kept, except the latest.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .model import Key, Snapshot

MIN_INTERVAL_S = 0.1
DEFAULT_INTERVAL_S = 1.0
DEFAULT_HISTORY = 600


@dataclass(frozen=True, slots=True)
class HistoryPoint:
    """What the timelines need of one sample."""
    uptime_s: float
    wall_time: float
    cpu_busy: tuple[float, ...]         # per CPU, percent; () for a first sample
    cpu_kernel: tuple[float, ...]
    process_cpu: dict[Key, float]       # non-zero only
    thread_cpu: dict[Key, float]        # non-zero only
    who_ran: tuple[tuple[tuple[int, int, float], ...], ...]  # per CPU, busiest first


class History:
    """The last `maxlen` samples' figures; safe to read while the sampler appends."""

    def __init__(self, maxlen: int = DEFAULT_HISTORY):
        if maxlen < 1:
            raise ValueError("history must hold at least one sample")
        self._points: deque[HistoryPoint] = deque(maxlen=maxlen)
        self._lock = threading.Lock()

    @property
    def maxlen(self) -> int:
        return self._points.maxlen or 0

    def __len__(self) -> int:
        return len(self._points)

    def append(self, snap: Snapshot) -> HistoryPoint:
        usage = snap.cpu_usage or []
        point = HistoryPoint(
            uptime_s=snap.uptime_s, wall_time=snap.wall_time,
            cpu_busy=tuple(u.busy_percent for u in usage),
            cpu_kernel=tuple(u.kernel_percent for u in usage),
            process_cpu=dict(snap.process_cpu_percent or {}),
            thread_cpu=dict(snap.thread_cpu_percent or {}),
            who_ran=tuple(tuple(c) for c in (snap.who_ran or ())),
        )
        with self._lock:
            self._points.append(point)
        return point

    def points(self) -> list[HistoryPoint]:
        with self._lock:
            return list(self._points)

    def clear(self) -> None:
        with self._lock:
            self._points.clear()

    def times(self) -> np.ndarray:
        """Seconds since boot of each sample."""
        return np.fromiter((p.uptime_s for p in self.points()), float)

    def cpu_series(self, cpu: int) -> tuple[np.ndarray, np.ndarray]:
        """(times, busy %) of one CPU; samples without a figure are left out."""
        pts = [p for p in self.points() if len(p.cpu_busy) > cpu]
        return (np.fromiter((p.uptime_s for p in pts), float, len(pts)),
                np.fromiter((p.cpu_busy[cpu] for p in pts), float, len(pts)))

    def process_series(self, key: Key) -> tuple[np.ndarray, np.ndarray]:
        """(times, CPU %) of one process, 0 where it used none."""
        pts = [p for p in self.points() if p.cpu_busy]
        return (np.fromiter((p.uptime_s for p in pts), float, len(pts)),
                np.fromiter((p.process_cpu.get(key, 0.0) for p in pts), float, len(pts)))

    def thread_series(self, key: Key) -> tuple[np.ndarray, np.ndarray]:
        pts = [p for p in self.points() if p.cpu_busy]
        return (np.fromiter((p.uptime_s for p in pts), float, len(pts)),
                np.fromiter((p.thread_cpu.get(key, 0.0) for p in pts), float, len(pts)))

    def who_ran_strip(self, cpu: int) -> list[tuple[float, int, int]]:
        """Per sample, the busiest thread last seen on `cpu`: (time, pid, tid).
        Sampled: it says which thread ran there most among those that ran and were
        last on that CPU when sampled, not every thread that did."""
        out = []
        for p in self.points():
            if len(p.who_ran) > cpu and p.who_ran[cpu]:
                pid, tid, _ = p.who_ran[cpu][0]
                out.append((p.uptime_s, pid, tid))
        return out


class Sampler:
    """Calls `source.sample()` every `interval_s` on a background thread.

    A sample that fails is reported to `on_error` (and kept in `last_error`) and the
    next one is tried on time; a callback that raises is reported the same way. A
    sample that takes longer than the interval delays the next one rather than
    making samples pile up. `cpu_seconds` is the CPU time the sampling thread itself
    has used, so callers can show what watching costs.
    """

    def __init__(self, source, interval_s: float = DEFAULT_INTERVAL_S, *,
                 history: int = DEFAULT_HISTORY,
                 callback: Callable[[Snapshot], None] | None = None,
                 on_error: Callable[[BaseException], None] | None = None):
        if not interval_s >= MIN_INTERVAL_S:
            raise ValueError(f"the interval must be at least {MIN_INTERVAL_S * 1000:g}ms")
        self.source = source
        self.interval_s = float(interval_s)
        self.history = History(history)
        self.callback = callback
        self.on_error = on_error
        self.latest: Snapshot | None = None
        self.samples = 0
        self.errors = 0
        self.last_error: BaseException | None = None
        self.cpu_seconds = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        if self.running:
            raise RuntimeError("the sampler is already running")
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="koi-live-sampler", daemon=True)
        self._thread.start()

    def stop(self, timeout: float | None = 10.0) -> None:
        """Ask the thread to stop and wait for it (a sample in progress completes)."""
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
        self._thread = None

    def __enter__(self) -> Sampler:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def sample_now(self) -> Snapshot:
        """Take one sample on the calling thread (the sampler must not be running)."""
        if self.running:
            raise RuntimeError("the sampler is running on its own thread")
        return self._take()

    def _take(self) -> Snapshot:
        began = time.thread_time()
        try:
            snap = self.source.sample()
        finally:
            self.cpu_seconds += time.thread_time() - began
        self.latest = snap
        self.samples += 1
        self.history.append(snap)
        return snap

    def _report(self, exc: BaseException) -> None:
        self.errors += 1
        self.last_error = exc
        if self.on_error is not None:
            try:
                self.on_error(exc)
            except Exception:  # noqa: BLE001 - an error handler must not stop sampling
                pass

    def _run(self) -> None:
        due = time.monotonic()
        while not self._stop.is_set():
            try:
                snap = self._take()
            except Exception as exc:  # noqa: BLE001 - reported; the next sample may work
                self._report(exc)
            else:
                if self.callback is not None:
                    try:
                        self.callback(snap)
                    except Exception as exc:  # noqa: BLE001
                        self._report(exc)
            due += self.interval_s
            now = time.monotonic()
            if due < now:  # behind: start the next interval now, do not catch up
                due = now + self.interval_s
            self._stop.wait(due - now)
